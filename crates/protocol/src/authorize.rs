//! The authorization request of the code flow (OpenID Connect Core §3.1.2.1–3.1.2.2,
//! RFC 6749 §4.1.1, RFC 7636 §4.3).
//!
//! Validation happens in two steps because the client lives in storage and this crate does no
//! I/O: [`requested_client_id`] reads the `client_id` the server must look up, then
//! [`validate`] takes that lookup's result and decides everything else.
//!
//! Errors come in two kinds (RFC 6749 §4.1.2.1): while the client or the redirect URI is not
//! established, the server MUST NOT redirect and shows an error page ([`NoRedirect`]); after
//! that every error goes back to the client's redirect URI ([`AuthorizeError::Redirect`]).

use std::collections::BTreeSet;
use std::fmt;

use crate::client::{ClientPolicy, GrantType};
use crate::error::{ErrorCode, OAuthError};
use crate::params::{self, ParamError, Params};
use crate::pkce::{self, CodeChallenge};
use crate::response::ResponseMode;
use crate::scope::{OPENID, ScopeSet};

/// A `prompt` value (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Prompt {
    /// `none`: show no page; fail with `login_required` and friends instead.
    None,
    /// `login`: authenticate again even with a session.
    Login,
    /// `consent`: ask for consent again.
    Consent,
    /// `select_account`: let the user choose among sessions.
    SelectAccount,
}

impl Prompt {
    /// Every prompt value we understand.
    pub const ALL: &'static [Prompt] = &[
        Prompt::None,
        Prompt::Login,
        Prompt::Consent,
        Prompt::SelectAccount,
    ];

    /// The `prompt` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Prompt::None => "none",
            Prompt::Login => "login",
            Prompt::Consent => "consent",
            Prompt::SelectAccount => "select_account",
        }
    }

    fn from_name(name: &str) -> Option<Prompt> {
        Prompt::ALL.iter().copied().find(|p| p.as_str() == name)
    }
}

/// A validated authorization request: every field has been checked against the spec and the
/// client's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The client, as registered.
    pub client_id: String,
    /// A registered redirect URI, exactly as sent.
    pub redirect_uri: String,
    /// How to deliver the response.
    pub response_mode: ResponseMode,
    /// The requested scope; contains `openid`. Unknown values are kept: OpenID Connect Core
    /// §3.1.2.1 says to ignore them, which is the caller's filtering by what it grants.
    pub scope: ScopeSet,
    /// Opaque client state to echo back.
    pub state: Option<String>,
    /// Value to put in the ID token's `nonce`.
    pub nonce: Option<String>,
    /// The PKCE `S256` challenge.
    pub code_challenge: Option<CodeChallenge>,
    /// The `prompt` values; `none` never comes with another.
    pub prompt: BTreeSet<Prompt>,
    /// Maximum seconds since the user last actively authenticated.
    pub max_age: Option<u64>,
    /// Preferred languages for our pages, most preferred first (BCP 47 tags).
    pub ui_locales: Vec<String>,
    /// Preferred languages for claims, most preferred first.
    pub claims_locales: Vec<String>,
    /// A hint at the login identifier.
    pub login_hint: Option<String>,
    /// A previously issued ID token, as sent; the server verifies it.
    pub id_token_hint: Option<String>,
    /// Requested Authentication Context Class References, in order of preference.
    pub acr_values: Vec<String>,
}

/// Why the server must show an error page instead of redirecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoRedirect {
    /// No `client_id`.
    MissingClientId,
    /// `client_id` repeated.
    DuplicatedClientId,
    /// `client_id` longer than the parameter limit.
    OverlongClientId,
    /// No client is registered with this `client_id`.
    UnknownClient,
    /// No `redirect_uri` (required by OpenID Connect Core §3.1.2.1).
    MissingRedirectUri,
    /// `redirect_uri` repeated.
    DuplicatedRedirectUri,
    /// `redirect_uri` longer than the parameter limit.
    OverlongRedirectUri,
    /// `redirect_uri` is not exactly one of the client's registered URIs.
    UnregisteredRedirectUri,
}

impl NoRedirect {
    /// A description for the error page.
    pub fn description(self) -> &'static str {
        match self {
            NoRedirect::MissingClientId => "client_id is missing",
            NoRedirect::DuplicatedClientId => "client_id is included more than once",
            NoRedirect::OverlongClientId => "client_id is too long",
            NoRedirect::UnknownClient => "client_id does not identify a registered client",
            NoRedirect::MissingRedirectUri => "redirect_uri is missing",
            NoRedirect::DuplicatedRedirectUri => "redirect_uri is included more than once",
            NoRedirect::OverlongRedirectUri => "redirect_uri is too long",
            NoRedirect::UnregisteredRedirectUri => "redirect_uri is not registered for this client",
        }
    }

    /// The OAuth error to show: `invalid_request`, or `invalid_client` for an unknown client.
    pub fn to_oauth_error(self) -> OAuthError {
        let code = match self {
            NoRedirect::UnknownClient => ErrorCode::InvalidClient,
            _ => ErrorCode::InvalidRequest,
        };
        OAuthError::new(code, self.description())
    }
}

impl fmt::Display for NoRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A refused authorization request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeError {
    /// Show an error page; never redirect (the redirect URI is not trustworthy).
    #[error("{0}")]
    MustNotRedirect(NoRedirect),
    /// Send `error` to the client's redirect URI (see `response::error`).
    #[error("{error}")]
    Redirect {
        /// The registered redirect URI the request named.
        redirect_uri: String,
        /// How to deliver the error.
        response_mode: ResponseMode,
        /// The request's `state`, if it could be read.
        state: Option<String>,
        /// The error for the client.
        error: OAuthError,
    },
}

/// Step one: the `client_id` the server must look up. Missing, repeated or overlong is
/// [`AuthorizeError::MustNotRedirect`].
pub fn requested_client_id(raw: &[(String, String)]) -> Result<&str, AuthorizeError> {
    let no_redirect = AuthorizeError::MustNotRedirect;
    match params::single(raw, "client_id") {
        Ok(Some(client_id)) => Ok(client_id),
        Ok(None) => Err(no_redirect(NoRedirect::MissingClientId)),
        Err(ParamError::Duplicated { .. }) => Err(no_redirect(NoRedirect::DuplicatedClientId)),
        Err(ParamError::TooLong { .. }) => Err(no_redirect(NoRedirect::OverlongClientId)),
    }
}

/// Step two: validates the request against the client found for [`requested_client_id`]
/// (`None` when there is no such client).
pub fn validate(
    raw: &[(String, String)],
    client: Option<&ClientPolicy>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let client_id = requested_client_id(raw)?;
    let client = match client {
        Some(client) if client.client_id == client_id => client,
        _ => return Err(AuthorizeError::MustNotRedirect(NoRedirect::UnknownClient)),
    };
    let redirect_uri = registered_redirect_uri(raw, client)?;

    // From here on errors go to the client. Read what the error redirect needs on its own, so
    // a fault elsewhere in the request still reaches the client with its state.
    let state = params::single(raw, "state")
        .ok()
        .flatten()
        .map(str::to_string);
    let requested_mode = params::single(raw, "response_mode").ok().flatten();
    let response_mode = match requested_mode.map(parse_response_mode) {
        Some(Ok(mode)) => mode,
        _ => ResponseMode::Query,
    };
    let redirect = |error: OAuthError| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.to_string(),
        response_mode,
        state: state.clone(),
        error,
    };

    let params = Params::parse(raw).map_err(|e| redirect(e.to_oauth_error()))?;
    check_response_type(&params, client).map_err(redirect)?;
    if let Some(Err(error)) = requested_mode.map(parse_response_mode) {
        return Err(redirect(error));
    }
    check_unsupported_features(&params).map_err(redirect)?;
    let scope = parse_scope(&params).map_err(redirect)?;
    let code_challenge = parse_code_challenge(&params, client).map_err(redirect)?;
    let prompt = parse_prompt(&params).map_err(redirect)?;
    let max_age = parse_max_age(&params).map_err(redirect)?;

    let text = |name: &str| params.get(name).map(str::to_string);
    let list = |name: &str| {
        params
            .get(name)
            .map(|value| {
                value
                    .split(' ')
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        response_mode,
        scope,
        state,
        nonce: text("nonce"),
        code_challenge,
        prompt,
        max_age,
        ui_locales: list("ui_locales"),
        claims_locales: list("claims_locales"),
        login_hint: text("login_hint"),
        id_token_hint: text("id_token_hint"),
        acr_values: list("acr_values"),
    })
}

fn registered_redirect_uri<'a>(
    raw: &'a [(String, String)],
    client: &ClientPolicy,
) -> Result<&'a str, AuthorizeError> {
    let no_redirect = AuthorizeError::MustNotRedirect;
    match params::single(raw, "redirect_uri") {
        Ok(Some(uri)) if client.has_redirect_uri(uri) => Ok(uri),
        Ok(Some(_)) => Err(no_redirect(NoRedirect::UnregisteredRedirectUri)),
        Ok(None) => Err(no_redirect(NoRedirect::MissingRedirectUri)),
        Err(ParamError::Duplicated { .. }) => Err(no_redirect(NoRedirect::DuplicatedRedirectUri)),
        Err(ParamError::TooLong { .. }) => Err(no_redirect(NoRedirect::OverlongRedirectUri)),
    }
}

fn check_response_type(params: &Params, client: &ClientPolicy) -> Result<(), OAuthError> {
    let response_type = params.required("response_type")?;
    if response_type != "code" {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedResponseType,
            "only response_type code is supported",
        ));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the client may not use the authorization code flow",
        ));
    }
    Ok(())
}

fn parse_response_mode(value: &str) -> Result<ResponseMode, OAuthError> {
    match value {
        "query" => Ok(ResponseMode::Query),
        "form_post" => Ok(ResponseMode::FormPost),
        // The code must not travel in a fragment, and we answer only `code`
        // (Multiple Response Type Encoding Practices §2.1 allows it only as an error).
        "fragment" => Err(OAuthError::invalid_request(
            "response_mode fragment is not allowed for response_type code",
        )),
        _ => Err(OAuthError::invalid_request(
            "response_mode is not supported",
        )),
    }
}

/// Request Objects and the `registration` parameter are optional features we do not offer;
/// OpenID Connect Core §3.1.2.6 has a dedicated error for each.
fn check_unsupported_features(params: &Params) -> Result<(), OAuthError> {
    let unsupported = [
        ("request", ErrorCode::RequestNotSupported),
        ("request_uri", ErrorCode::RequestUriNotSupported),
        ("registration", ErrorCode::RegistrationNotSupported),
    ];
    for (name, code) in unsupported {
        if params.contains(name) {
            return Err(OAuthError::new(code, format!("{name} is not supported")));
        }
    }
    Ok(())
}

fn parse_scope(params: &Params) -> Result<ScopeSet, OAuthError> {
    let scope = ScopeSet::parse(params.get("scope").unwrap_or(""))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?;
    if !scope.contains(OPENID) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "scope must include openid",
        ));
    }
    Ok(scope)
}

fn parse_code_challenge(
    params: &Params,
    client: &ClientPolicy,
) -> Result<Option<CodeChallenge>, OAuthError> {
    let challenge = params.get("code_challenge");
    // RFC 7636 §4.3: an absent method means `plain`, which we do not support.
    let method = params.get("code_challenge_method");
    match (challenge, method) {
        (Some(challenge), Some(pkce::S256)) => Ok(Some(CodeChallenge::parse_s256(challenge)?)),
        (Some(_), None) => Err(OAuthError::invalid_request(
            "code_challenge_method is missing and plain is not supported; use S256",
        )),
        (Some(_), Some("plain")) => Err(OAuthError::invalid_request(
            "code_challenge_method plain is not supported; use S256",
        )),
        (_, Some(_)) if challenge.is_none() => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        (_, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method is not supported; use S256",
        )),
        (None, None) if client.must_use_pkce() => {
            Err(OAuthError::invalid_request("code_challenge is required"))
        }
        (None, None) => Ok(None),
    }
}

fn parse_prompt(params: &Params) -> Result<BTreeSet<Prompt>, OAuthError> {
    let mut prompt = BTreeSet::new();
    for value in params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        // Initiating User Registration 1.0 §4: an unsupported prompt value is invalid_request.
        let value = Prompt::from_name(value).ok_or_else(|| {
            OAuthError::invalid_request(format!("prompt value {value} is not supported"))
        })?;
        prompt.insert(value);
    }
    if prompt.contains(&Prompt::None) && prompt.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

fn parse_max_age(params: &Params) -> Result<Option<u64>, OAuthError> {
    let Some(value) = params.get("max_age") else {
        return Ok(None);
    };
    // `u64::from_str` would also take a leading `+`.
    let digits_only = value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<u64>() {
        Ok(seconds) if digits_only => Ok(Some(seconds)),
        _ => Err(OAuthError::invalid_request(
            "max_age must be a non-negative integer",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::{native_client, web_client};
    use crate::params::tests::pairs;

    /// Raw request pairs.
    type Raw = Vec<(String, String)>;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// A valid request from the web client, with `changes` applied: a pair replaces the
    /// parameter of that name (an empty value removes it) or is appended if new.
    fn web_request(changes: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut base = vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", "https://rp.example/cb"),
            ("scope", "openid profile"),
            ("state", "st"),
            ("nonce", "n-0S6"),
        ];
        for (name, value) in changes {
            match base.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value,
                None => base.push((name, value)),
            }
        }
        pairs(&base)
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .collect()
    }

    fn with_extra(
        mut raw: Vec<(String, String)>,
        name: &str,
        value: &str,
    ) -> Vec<(String, String)> {
        raw.push((name.to_string(), value.to_string()));
        raw
    }

    #[test]
    fn a_valid_request_is_accepted() {
        let client = web_client();
        let raw = web_request(&[
            ("prompt", "login consent"),
            ("max_age", "0"),
            ("ui_locales", "de-CH fr"),
            ("claims_locales", "en"),
            ("login_hint", "alice@example.com"),
            ("id_token_hint", "eyJ.x.y"),
            ("acr_values", "urn:a urn:b"),
            ("response_mode", "form_post"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("unknown_extension", "ignored"),
        ]);
        assert_eq!(requested_client_id(&raw), Ok("web"));
        let request = validate(&raw, Some(&client)).unwrap();
        assert_eq!(
            request,
            AuthorizationRequest {
                client_id: "web".into(),
                redirect_uri: "https://rp.example/cb".into(),
                response_mode: ResponseMode::FormPost,
                scope: ScopeSet::parse("openid profile").unwrap(),
                state: Some("st".into()),
                nonce: Some("n-0S6".into()),
                code_challenge: Some(CodeChallenge::parse_s256(CHALLENGE).unwrap()),
                prompt: [Prompt::Login, Prompt::Consent].into_iter().collect(),
                max_age: Some(0),
                ui_locales: vec!["de-CH".into(), "fr".into()],
                claims_locales: vec!["en".into()],
                login_hint: Some("alice@example.com".into()),
                id_token_hint: Some("eyJ.x.y".into()),
                acr_values: vec!["urn:a".into(), "urn:b".into()],
            }
        );
    }

    #[test]
    fn a_minimal_request_gets_defaults() {
        let raw = pairs(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", "https://rp.example/cb?tenant=a"),
            ("scope", "openid"),
        ]);
        let request = validate(&raw, Some(&web_client())).unwrap();
        assert_eq!(request.redirect_uri, "https://rp.example/cb?tenant=a");
        assert_eq!(request.response_mode, ResponseMode::Query);
        assert_eq!(request.state, None);
        assert_eq!(request.nonce, None);
        assert!(request.prompt.is_empty());
        assert_eq!(request.code_challenge, None);
    }

    #[test]
    fn errors_before_the_redirect_uri_is_trusted_do_not_redirect() {
        let client = web_client();
        let cases: Vec<(Raw, Option<&ClientPolicy>, NoRedirect)> = vec![
            (
                web_request(&[("client_id", "")]),
                Some(&client),
                NoRedirect::MissingClientId,
            ),
            (
                with_extra(web_request(&[]), "client_id", "web"),
                Some(&client),
                NoRedirect::DuplicatedClientId,
            ),
            (
                with_extra(web_request(&[]), "client_id", "other"),
                Some(&client),
                NoRedirect::DuplicatedClientId,
            ),
            (
                web_request(&[("client_id", &"w".repeat(5000))]),
                Some(&client),
                NoRedirect::OverlongClientId,
            ),
            (web_request(&[]), None, NoRedirect::UnknownClient),
            // The policy handed in must be the one the request names.
            (
                web_request(&[("client_id", "native")]),
                Some(&client),
                NoRedirect::UnknownClient,
            ),
            (
                web_request(&[("redirect_uri", "")]),
                Some(&client),
                NoRedirect::MissingRedirectUri,
            ),
            (
                with_extra(web_request(&[]), "redirect_uri", "https://rp.example/cb"),
                Some(&client),
                NoRedirect::DuplicatedRedirectUri,
            ),
            (
                web_request(&[("redirect_uri", "https://evil.example/cb")]),
                Some(&client),
                NoRedirect::UnregisteredRedirectUri,
            ),
            // Exact match: an added query, a trailing slash or case make it a different URI.
            (
                web_request(&[("redirect_uri", "https://rp.example/cb?x=1")]),
                Some(&client),
                NoRedirect::UnregisteredRedirectUri,
            ),
            (
                web_request(&[("redirect_uri", "https://rp.example/cb/")]),
                Some(&client),
                NoRedirect::UnregisteredRedirectUri,
            ),
            (
                web_request(&[("redirect_uri", "https://RP.example/cb")]),
                Some(&client),
                NoRedirect::UnregisteredRedirectUri,
            ),
        ];
        for (raw, client, expected) in cases {
            assert_eq!(
                validate(&raw, client),
                Err(AuthorizeError::MustNotRedirect(expected)),
                "{raw:?}"
            );
        }
        assert_eq!(
            requested_client_id(&pairs(&[("client_id", "")])),
            Err(AuthorizeError::MustNotRedirect(NoRedirect::MissingClientId))
        );
    }

    #[test]
    fn errors_after_the_redirect_uri_is_trusted_redirect() {
        let web = web_client();
        let native = native_client();
        let mut code_only = web_client();
        code_only.grant_types = vec![GrantType::RefreshToken];
        let mut strict = web_client();
        strict.require_pkce = true;
        let native_request = |changes: &[(&str, &str)]| {
            let mut all = vec![
                ("client_id", "native"),
                ("redirect_uri", "http://127.0.0.1:8400/cb"),
            ];
            all.extend_from_slice(changes);
            web_request(&all)
        };
        let cases: Vec<(Raw, &ClientPolicy, ErrorCode)> = vec![
            (
                web_request(&[("response_type", "")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                web_request(&[("response_type", "token")]),
                &web,
                ErrorCode::UnsupportedResponseType,
            ),
            (
                web_request(&[("response_type", "code id_token")]),
                &web,
                ErrorCode::UnsupportedResponseType,
            ),
            (
                web_request(&[("response_type", "CODE")]),
                &web,
                ErrorCode::UnsupportedResponseType,
            ),
            (web_request(&[]), &code_only, ErrorCode::UnauthorizedClient),
            (web_request(&[("scope", "")]), &web, ErrorCode::InvalidScope),
            (
                web_request(&[("scope", "profile email")]),
                &web,
                ErrorCode::InvalidScope,
            ),
            (
                web_request(&[("scope", "OpenID")]),
                &web,
                ErrorCode::InvalidScope,
            ),
            (
                web_request(&[("scope", "openid\tprofile")]),
                &web,
                ErrorCode::InvalidScope,
            ),
            (
                web_request(&[("request", "eyJ.x.y")]),
                &web,
                ErrorCode::RequestNotSupported,
            ),
            (
                web_request(&[("request_uri", "urn:ietf:params:oauth:request_uri:x")]),
                &web,
                ErrorCode::RequestUriNotSupported,
            ),
            (
                web_request(&[("registration", "{}")]),
                &web,
                ErrorCode::RegistrationNotSupported,
            ),
            (
                web_request(&[("response_mode", "fragment")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                web_request(&[("response_mode", "web_message")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                with_extra(web_request(&[]), "scope", "openid"),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                with_extra(web_request(&[]), "nonce", "other"),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                web_request(&[("nonce", &"n".repeat(4097))]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            // PKCE.
            (native_request(&[]), &native, ErrorCode::InvalidRequest),
            (web_request(&[]), &strict, ErrorCode::InvalidRequest),
            (
                native_request(&[("code_challenge", CHALLENGE)]),
                &native,
                ErrorCode::InvalidRequest,
            ),
            (
                native_request(&[
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "plain"),
                ]),
                &native,
                ErrorCode::InvalidRequest,
            ),
            (
                native_request(&[
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "s256"),
                ]),
                &native,
                ErrorCode::InvalidRequest,
            ),
            (
                native_request(&[("code_challenge_method", "S256")]),
                &native,
                ErrorCode::InvalidRequest,
            ),
            (
                native_request(&[
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256"),
                ]),
                &native,
                ErrorCode::InvalidRequest,
            ),
            // prompt.
            (
                web_request(&[("prompt", "none login")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                web_request(&[("prompt", "consent none")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                web_request(&[("prompt", "create")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            // max_age.
            (
                web_request(&[("max_age", "-1")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                web_request(&[("max_age", "+5")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                web_request(&[("max_age", "1.5")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
            (
                web_request(&[("max_age", "99999999999999999999999")]),
                &web,
                ErrorCode::InvalidRequest,
            ),
        ];
        for (raw, client, expected) in cases {
            match validate(&raw, Some(client)) {
                Err(AuthorizeError::Redirect {
                    redirect_uri,
                    error,
                    ..
                }) => {
                    assert_eq!(error.code, expected, "{raw:?}: {error}");
                    assert!(client.has_redirect_uri(&redirect_uri));
                }
                other => panic!("{raw:?}: expected a redirected {expected}, got {other:?}"),
            }
        }
    }

    #[test]
    fn error_redirects_keep_state_and_response_mode() {
        let client = web_client();
        let cases: Vec<(Raw, ResponseMode, Option<&str>)> = vec![
            (
                web_request(&[("scope", "profile")]),
                ResponseMode::Query,
                Some("st"),
            ),
            (
                web_request(&[("scope", "profile"), ("response_mode", "form_post")]),
                ResponseMode::FormPost,
                Some("st"),
            ),
            // An unusable response_mode falls back to the default for the error itself.
            (
                web_request(&[("response_mode", "fragment")]),
                ResponseMode::Query,
                Some("st"),
            ),
            // A repeated state cannot be echoed; the error still reaches the client.
            (
                with_extra(web_request(&[]), "state", "two"),
                ResponseMode::Query,
                None,
            ),
        ];
        for (raw, expected_mode, expected_state) in cases {
            let Err(AuthorizeError::Redirect {
                response_mode,
                state,
                ..
            }) = validate(&raw, Some(&client))
            else {
                panic!("{raw:?}: expected a redirect");
            };
            assert_eq!(response_mode, expected_mode, "{raw:?}");
            assert_eq!(state.as_deref(), expected_state, "{raw:?}");
        }
    }

    #[test]
    fn prompt_none_alone_and_max_age_bounds() {
        let client = web_client();
        let request = validate(&web_request(&[("prompt", "none")]), Some(&client)).unwrap();
        assert_eq!(request.prompt, [Prompt::None].into_iter().collect());
        let request =
            validate(&web_request(&[("prompt", "select_account")]), Some(&client)).unwrap();
        assert_eq!(
            request.prompt,
            [Prompt::SelectAccount].into_iter().collect()
        );
        let request = validate(
            &web_request(&[("max_age", "18446744073709551615")]),
            Some(&client),
        )
        .unwrap();
        assert_eq!(request.max_age, Some(u64::MAX));
    }

    #[test]
    fn a_public_client_with_s256_is_accepted() {
        let raw = pairs(&[
            ("response_type", "code"),
            ("client_id", "native"),
            ("redirect_uri", "http://127.0.0.1:8400/cb"),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        let request = validate(&raw, Some(&native_client())).unwrap();
        assert_eq!(request.code_challenge.unwrap().as_str(), CHALLENGE);
    }

    #[test]
    fn no_redirect_reasons_describe_themselves() {
        assert_eq!(
            NoRedirect::UnknownClient.to_oauth_error().code,
            ErrorCode::InvalidClient
        );
        assert_eq!(
            NoRedirect::UnregisteredRedirectUri.to_oauth_error().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            AuthorizeError::MustNotRedirect(NoRedirect::MissingRedirectUri).to_string(),
            "redirect_uri is missing"
        );
    }
}
