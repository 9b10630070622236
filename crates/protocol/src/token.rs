//! Token endpoint requests (RFC 6749 §4.1.3, §4.4.2, §6; RFC 7636 §4.5), client authentication
//! (RFC 6749 §2.3.1; OpenID Connect Core §9) and the successful response (RFC 6749 §5.1).
//!
//! The server verifies the secret (it holds only a hash) and looks up codes and refresh
//! tokens; this module only reads the request and says what was asked, by whom.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::client::{ClientPolicy, ClientType, GrantType, TokenEndpointAuthMethod};
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::pkce::CodeVerifier;
use crate::scope::ScopeSet;

/// How the client identified itself, before its secret is checked.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// HTTP Basic: id and secret from the `Authorization` header, already form-urldecoded.
    ClientSecretBasic {
        /// The client identifier.
        client_id: String,
        /// The secret to verify.
        client_secret: String,
    },
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost {
        /// The client identifier.
        client_id: String,
        /// The secret to verify.
        client_secret: String,
    },
    /// A public client naming itself with `client_id` and no secret.
    None {
        /// The client identifier.
        client_id: String,
    },
}

impl std::fmt::Debug for ClientAuthentication {
    // Keeps secrets out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuthentication")
            .field("method", &self.method().as_str())
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

impl ClientAuthentication {
    /// The client identifier, whichever the method.
    pub fn client_id(&self) -> &str {
        match self {
            ClientAuthentication::ClientSecretBasic { client_id, .. }
            | ClientAuthentication::ClientSecretPost { client_id, .. }
            | ClientAuthentication::None { client_id } => client_id,
        }
    }

    /// The secret to verify, if the method has one.
    pub fn client_secret(&self) -> Option<&str> {
        match self {
            ClientAuthentication::ClientSecretBasic { client_secret, .. }
            | ClientAuthentication::ClientSecretPost { client_secret, .. } => Some(client_secret),
            ClientAuthentication::None { .. } => None,
        }
    }

    /// The method used.
    pub fn method(&self) -> TokenEndpointAuthMethod {
        match self {
            ClientAuthentication::ClientSecretBasic { .. } => {
                TokenEndpointAuthMethod::ClientSecretBasic
            }
            ClientAuthentication::ClientSecretPost { .. } => {
                TokenEndpointAuthMethod::ClientSecretPost
            }
            ClientAuthentication::None { .. } => TokenEndpointAuthMethod::None,
        }
    }

    /// Checks that `client` is the client named and that it authenticated the way its type
    /// allows; the server then verifies the secret. Anything else is `invalid_client`.
    ///
    /// A client registered with a secret may present it either way (HTTP Basic or in the
    /// body), as oidc-provider and Keycloak accept: client libraries pick one by default
    /// (openid-client v6 posts it, most others send Basic) and the registered
    /// `token_endpoint_auth_method` only says which one the client prefers. A public client
    /// must send no secret, and a client with a secret must send it.
    pub fn check_method(&self, client: &ClientPolicy) -> Result<(), OAuthError> {
        if client.client_id != self.client_id() {
            return Err(OAuthError::new(ErrorCode::InvalidClient, "unknown client"));
        }
        let registered = client.token_endpoint_auth_method;
        match (registered.uses_secret(), self.method().uses_secret()) {
            (true, true) | (false, false) => Ok(()),
            (true, false) => Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "the client has a secret: authenticate with client_secret_basic or \
                 client_secret_post",
            )),
            (false, true) => Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "the client is public and has no secret: send only client_id",
            )),
        }
    }
}

/// Reads client authentication from the `Authorization` header value (if any) and the form.
///
/// A Basic header together with `client_secret` in the form is two methods at once:
/// `invalid_request` (RFC 6749 §2.3: "MUST NOT use more than one authentication method in each
/// request"). A `client_id` in the form beside a Basic header is tolerated when it names the
/// same client, as many client libraries send it. A malformed header, or no client at all, is
/// `invalid_client`.
pub fn client_authentication(
    authorization: Option<&str>,
    params: &Params,
) -> Result<ClientAuthentication, OAuthError> {
    let form_client_id = params.get("client_id");
    let form_secret = params.get("client_secret");
    if let Some(header) = authorization {
        let (client_id, client_secret) = parse_basic(header)?;
        if form_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use either HTTP Basic or client_secret in the body, not both",
            ));
        }
        if form_client_id.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the one in the Authorization header",
            ));
        }
        return Ok(ClientAuthentication::ClientSecretBasic {
            client_id,
            client_secret,
        });
    }
    match (form_client_id, form_secret) {
        (Some(client_id), Some(client_secret)) => Ok(ClientAuthentication::ClientSecretPost {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
        }),
        (Some(client_id), None) => Ok(ClientAuthentication::None {
            client_id: client_id.to_string(),
        }),
        (None, _) => Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "no client authentication included",
        )),
    }
}

/// Decodes `Basic base64(urlencode(client_id) ":" urlencode(client_secret))`.
///
/// RFC 6749 §2.3.1 form-urlencodes id and secret *before* Basic encoding, so a `:` in either
/// arrives as `%3A` and the first literal `:` is the separator.
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let malformed =
        || OAuthError::new(ErrorCode::InvalidClient, "malformed HTTP Basic credentials");
    let (scheme, credentials) = header.trim().split_once(' ').ok_or_else(malformed)?;
    // Authentication schemes are case-insensitive (RFC 9110 §11.1).
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "only the Basic authentication scheme is supported",
        ));
    }
    let decoded = STANDARD
        .decode(credentials.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let client_id = form_urldecode(id).ok_or_else(malformed)?;
    let client_secret = form_urldecode(secret).ok_or_else(malformed)?;
    if client_id.is_empty() || client_secret.is_empty() {
        return Err(malformed());
    }
    Ok((client_id, client_secret))
}

/// Strict `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a
/// byte; a broken escape or invalid UTF-8 is `None` rather than a guess, since the result is
/// compared with a credential.
fn form_urldecode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hex = bytes.get(index + 1..index + 3)?;
                // `from_str_radix` alone would also take a sign such as `%+1`.
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                index += 2;
            }
            other => decoded.push(other),
        }
        index += 1;
    }
    String::from_utf8(decoded).ok()
}

/// What the client asks for at the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum GrantRequest {
    /// `grant_type=authorization_code`.
    AuthorizationCode {
        /// The authorization code.
        code: String,
        /// Must equal the authorization request's `redirect_uri`; see [`check_redirect_uri`].
        redirect_uri: Option<String>,
        /// The PKCE verifier, syntax-checked; see [`crate::pkce::verify`].
        code_verifier: Option<CodeVerifier>,
    },
    /// `grant_type=refresh_token`.
    RefreshToken {
        /// The refresh token.
        refresh_token: String,
        /// A narrower scope, if asked; see [`check_refresh_scope`].
        scope: Option<ScopeSet>,
    },
    /// `grant_type=client_credentials` (RFC 6749 §4.4.2): the client asks for itself.
    ClientCredentials {
        /// The scope asked for, if any; see [`check_client_credentials`].
        scope: Option<ScopeSet>,
    },
}

impl std::fmt::Debug for GrantRequest {
    // Codes and refresh tokens are bearer credentials: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrantRequest::AuthorizationCode { redirect_uri, .. } => f
                .debug_struct("AuthorizationCode")
                .field("redirect_uri", redirect_uri)
                .finish_non_exhaustive(),
            GrantRequest::RefreshToken { scope, .. } => f
                .debug_struct("RefreshToken")
                .field("scope", scope)
                .finish_non_exhaustive(),
            GrantRequest::ClientCredentials { scope } => f
                .debug_struct("ClientCredentials")
                .field("scope", scope)
                .finish(),
        }
    }
}

impl GrantRequest {
    /// The grant type asked for.
    pub fn grant_type(&self) -> GrantType {
        match self {
            GrantRequest::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            GrantRequest::RefreshToken { .. } => GrantType::RefreshToken,
            GrantRequest::ClientCredentials { .. } => GrantType::ClientCredentials,
        }
    }
}

/// A parsed token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Who is asking.
    pub client: ClientAuthentication,
    /// What is asked.
    pub grant: GrantRequest,
}

impl TokenRequest {
    /// Parses a token request from the `Authorization` header value (if any) and the raw form
    /// pairs. Client authentication is read first so that an unauthenticated request learns
    /// nothing about its grant.
    pub fn parse(
        authorization: Option<&str>,
        form: &[(String, String)],
    ) -> Result<TokenRequest, OAuthError> {
        let params = Params::parse(form)?;
        let client = client_authentication(authorization, &params)?;
        let grant = parse_grant(&params)?;
        Ok(TokenRequest { client, grant })
    }

    /// Checks that `client` (the one named, already authenticated) may use the grant asked
    /// for: `unauthorized_client` otherwise.
    pub fn check_grant_allowed(&self, client: &ClientPolicy) -> Result<(), OAuthError> {
        if client.allows_grant(self.grant.grant_type()) {
            Ok(())
        } else {
            Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!(
                    "the client may not use grant_type {}",
                    self.grant.grant_type().as_str()
                ),
            ))
        }
    }
}

/// The optional `scope` parameter; bad syntax is `invalid_scope` (RFC 6749 §5.2).
fn optional_scope(params: &Params) -> Result<Option<ScopeSet>, OAuthError> {
    params
        .get("scope")
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))
}

fn parse_grant(params: &Params) -> Result<GrantRequest, OAuthError> {
    let grant_type = params.required("grant_type")?;
    match GrantType::from_name(grant_type) {
        Some(GrantType::AuthorizationCode) => Ok(GrantRequest::AuthorizationCode {
            code: params.required("code")?.to_string(),
            redirect_uri: params.get("redirect_uri").map(str::to_string),
            code_verifier: params
                .get("code_verifier")
                .map(CodeVerifier::parse)
                .transpose()?,
        }),
        Some(GrantType::RefreshToken) => Ok(GrantRequest::RefreshToken {
            refresh_token: params.required("refresh_token")?.to_string(),
            scope: optional_scope(params)?,
        }),
        Some(GrantType::ClientCredentials) => Ok(GrantRequest::ClientCredentials {
            scope: optional_scope(params)?,
        }),
        None => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type {grant_type} is not supported"),
        )),
    }
}

/// Checks the token request's `redirect_uri` against the authorization request's
/// (RFC 6749 §4.1.3: required when the authorization request had one, which in OpenID Connect
/// it always has; "their values MUST be identical"). Missing is `invalid_request`, different is
/// `invalid_grant`.
pub fn check_redirect_uri(
    authorized_redirect_uri: &str,
    given: Option<&str>,
) -> Result<(), OAuthError> {
    match given {
        None => Err(OAuthError::invalid_request("redirect_uri is missing")),
        Some(given) if given == authorized_redirect_uri => Ok(()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidGrant,
            "redirect_uri differs from the authorization request",
        )),
    }
}

/// The scope of a refreshed token: the asked scope if it is within the original grant
/// (RFC 6749 §6: it "MUST NOT include any scope not originally granted"), else the original.
pub fn check_refresh_scope(
    granted: &ScopeSet,
    requested: Option<&ScopeSet>,
) -> Result<ScopeSet, OAuthError> {
    match requested {
        None => Ok(granted.clone()),
        Some(requested) if requested.is_subset(granted) => Ok(requested.clone()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "scope exceeds the scope originally granted",
        )),
    }
}

/// The scope of a client credentials token (RFC 6749 §4.4), for a client already authenticated
/// and allowed the grant: only a confidential client may use it (§4.4: "MUST only be used by
/// confidential clients"; a public one is `unauthorized_client`, §5.2, since it did
/// authenticate the only way it can). The scope asked for must lie within `allowed`, the scopes
/// the client is registered to request this way, or it is `invalid_scope`; without a `scope`
/// the whole allowed set is granted (§3.3 lets the server apply a pre-defined default).
pub fn check_client_credentials(
    client: &ClientPolicy,
    allowed: &ScopeSet,
    requested: Option<&ScopeSet>,
) -> Result<ScopeSet, OAuthError> {
    if client.client_type != ClientType::Confidential {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "only confidential clients may use grant_type client_credentials",
        ));
    }
    match requested {
        None => Ok(allowed.clone()),
        Some(requested) if requested.is_subset(allowed) => Ok(requested.clone()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "scope exceeds what the client may request with client_credentials",
        )),
    }
}

/// The token type we issue (RFC 6750).
pub const BEARER: &str = "Bearer";

/// The successful token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3). The server must
/// send it with `Cache-Control: no-store`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// A refresh token, when issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The granted scope; RFC 6749 §5.1 requires it when it differs from the requested one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeSet>,
}

impl std::fmt::Debug for TokenResponse {
    // Every field but the lifetime and scope is a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// A Bearer token response without refresh token, ID token or scope.
    pub fn bearer(access_token: String, expires_in: u64) -> TokenResponse {
        TokenResponse {
            access_token,
            token_type: BEARER,
            expires_in,
            refresh_token: None,
            id_token: None,
            scope: None,
        }
    }

    /// The JSON body.
    pub fn to_json_body(&self) -> String {
        // Strings and integers only: serialization cannot fail.
        serde_json::to_string(self).expect("a TokenResponse always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::{native_client, web_client};
    use crate::params::tests::pairs;

    /// Form pairs as written in a table.
    type Form<'a> = Vec<(&'a str, &'a str)>;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(user_pass))
    }

    fn auth_of(
        header: Option<&str>,
        form: &[(&str, &str)],
    ) -> Result<ClientAuthentication, OAuthError> {
        client_authentication(header, &Params::parse(&pairs(form)).unwrap())
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let cases = [
            ("web:s3cret", "web", "s3cret"),
            // RFC 6749 §2.3.1: id and secret are form-urlencoded inside the Basic value.
            ("my%3Aclient:p%40ss%3Aword%25", "my:client", "p@ss:word%"),
            ("a+b:c+d", "a b", "c d"),
            ("a%2Bb:%C3%A9t%C3%A9", "a+b", "\u{e9}t\u{e9}"),
            // Only the first literal colon separates.
            ("web:with:colon", "web", "with:colon"),
        ];
        for (user_pass, client_id, client_secret) in cases {
            let header = basic(user_pass);
            assert_eq!(
                auth_of(Some(&header), &[]),
                Ok(ClientAuthentication::ClientSecretBasic {
                    client_id: client_id.into(),
                    client_secret: client_secret.into(),
                }),
                "{user_pass}"
            );
        }
        // The scheme is case-insensitive.
        let header = format!("bAsIc {}", STANDARD.encode("web:s"));
        assert!(auth_of(Some(&header), &[]).is_ok());
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        let not_utf8 = format!("Basic {}", STANDARD.encode([0xff, b':', b'x']));
        let cases = [
            "Basic".to_string(),
            "Basic !!!notbase64".to_string(),
            basic("no-colon"),
            basic(":secret"),
            basic("web:"),
            basic("web%zz:secret"),
            basic("web:secret%4"),
            basic("web:%ff"),
            basic("web:%+1"),
            not_utf8,
            "Bearer abc".to_string(),
            "Digest username=x".to_string(),
        ];
        for header in cases {
            let error = auth_of(Some(&header), &[]).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidClient, "{header}");
            assert_eq!(error.token_endpoint_status(), 401);
        }
    }

    #[test]
    fn authentication_method_table() {
        let header = basic("web:s");
        let cases: Vec<(
            Option<&str>,
            Form,
            Result<TokenEndpointAuthMethod, ErrorCode>,
        )> = vec![
            (
                Some(&header),
                vec![],
                Ok(TokenEndpointAuthMethod::ClientSecretBasic),
            ),
            (
                Some(&header),
                vec![("client_id", "web")],
                Ok(TokenEndpointAuthMethod::ClientSecretBasic),
            ),
            (
                Some(&header),
                vec![("client_id", "other")],
                Err(ErrorCode::InvalidRequest),
            ),
            (
                Some(&header),
                vec![("client_secret", "s")],
                Err(ErrorCode::InvalidRequest),
            ),
            (
                Some(&header),
                vec![("client_id", "web"), ("client_secret", "s")],
                Err(ErrorCode::InvalidRequest),
            ),
            (
                None,
                vec![("client_id", "web"), ("client_secret", "s")],
                Ok(TokenEndpointAuthMethod::ClientSecretPost),
            ),
            (
                None,
                vec![("client_id", "native")],
                Ok(TokenEndpointAuthMethod::None),
            ),
            (None, vec![], Err(ErrorCode::InvalidClient)),
            (
                None,
                vec![("client_secret", "s")],
                Err(ErrorCode::InvalidClient),
            ),
        ];
        for (header, form, expected) in cases {
            let outcome = auth_of(header, &form)
                .map(|auth| auth.method())
                .map_err(|e| e.code);
            assert_eq!(outcome, expected, "{header:?} {form:?}");
        }
    }

    #[test]
    fn check_method_accepts_either_secret_method_for_a_client_with_a_secret() {
        let mut web = web_client();
        let basic_auth = ClientAuthentication::ClientSecretBasic {
            client_id: "web".into(),
            client_secret: "s".into(),
        };
        let post_auth = ClientAuthentication::ClientSecretPost {
            client_id: "web".into(),
            client_secret: "s".into(),
        };
        let none_auth = ClientAuthentication::None {
            client_id: "web".into(),
        };
        for registered in [
            TokenEndpointAuthMethod::ClientSecretBasic,
            TokenEndpointAuthMethod::ClientSecretPost,
        ] {
            web.token_endpoint_auth_method = registered;
            assert_eq!(basic_auth.check_method(&web), Ok(()), "{registered:?}");
            assert_eq!(post_auth.check_method(&web), Ok(()), "{registered:?}");
            assert_eq!(
                none_auth.check_method(&web).unwrap_err().code,
                ErrorCode::InvalidClient,
                "{registered:?}"
            );
        }
        assert_eq!(basic_auth.client_secret(), Some("s"));
        let native = ClientAuthentication::None {
            client_id: "native".into(),
        };
        assert_eq!(native.check_method(&native_client()), Ok(()));
        assert_eq!(native.client_secret(), None);
        assert_eq!(
            native.check_method(&web).unwrap_err().code,
            ErrorCode::InvalidClient
        );
        for secret_auth in [
            ClientAuthentication::ClientSecretBasic {
                client_id: "native".into(),
                client_secret: "s".into(),
            },
            ClientAuthentication::ClientSecretPost {
                client_id: "native".into(),
                client_secret: "s".into(),
            },
        ] {
            assert_eq!(
                secret_auth.check_method(&native_client()).unwrap_err().code,
                ErrorCode::InvalidClient
            );
        }
        assert_eq!(
            basic_auth.check_method(&native_client()).unwrap_err().code,
            ErrorCode::InvalidClient,
            "another client's name"
        );
    }

    #[test]
    fn grant_parsing_table() {
        let header = basic("web:s");
        let cases: Vec<(Form, Result<GrantRequest, ErrorCode>)> = vec![
            (
                vec![
                    ("grant_type", "authorization_code"),
                    ("code", "c"),
                    ("redirect_uri", "https://rp.example/cb"),
                    ("code_verifier", VERIFIER),
                ],
                Ok(GrantRequest::AuthorizationCode {
                    code: "c".into(),
                    redirect_uri: Some("https://rp.example/cb".into()),
                    code_verifier: Some(CodeVerifier::parse(VERIFIER).unwrap()),
                }),
            ),
            (
                vec![("grant_type", "authorization_code"), ("code", "c")],
                Ok(GrantRequest::AuthorizationCode {
                    code: "c".into(),
                    redirect_uri: None,
                    code_verifier: None,
                }),
            ),
            (
                vec![("grant_type", "authorization_code")],
                Err(ErrorCode::InvalidRequest),
            ),
            (
                vec![
                    ("grant_type", "authorization_code"),
                    ("code", "c"),
                    ("code_verifier", "short"),
                ],
                Err(ErrorCode::InvalidRequest),
            ),
            (
                vec![("grant_type", "refresh_token"), ("refresh_token", "r")],
                Ok(GrantRequest::RefreshToken {
                    refresh_token: "r".into(),
                    scope: None,
                }),
            ),
            (
                vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "r"),
                    ("scope", "openid email"),
                ],
                Ok(GrantRequest::RefreshToken {
                    refresh_token: "r".into(),
                    scope: Some(ScopeSet::parse("openid email").unwrap()),
                }),
            ),
            (
                vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "r"),
                    ("scope", "a\"b"),
                ],
                Err(ErrorCode::InvalidScope),
            ),
            (
                vec![("grant_type", "refresh_token")],
                Err(ErrorCode::InvalidRequest),
            ),
            (vec![], Err(ErrorCode::InvalidRequest)),
            (
                vec![("grant_type", "password")],
                Err(ErrorCode::UnsupportedGrantType),
            ),
            (
                vec![("grant_type", "client_credentials")],
                Ok(GrantRequest::ClientCredentials { scope: None }),
            ),
            (
                vec![
                    ("grant_type", "client_credentials"),
                    ("scope", "read write"),
                ],
                Ok(GrantRequest::ClientCredentials {
                    scope: Some(ScopeSet::parse("write read").unwrap()),
                }),
            ),
            (
                vec![("grant_type", "client_credentials"), ("scope", "a\\b")],
                Err(ErrorCode::InvalidScope),
            ),
            (
                vec![
                    ("grant_type", "client_credentials"),
                    ("scope", "read"),
                    ("scope", "write"),
                ],
                Err(ErrorCode::InvalidRequest),
            ),
            (
                vec![("grant_type", "Client_Credentials")],
                Err(ErrorCode::UnsupportedGrantType),
            ),
            (
                vec![("grant_type", "Authorization_Code"), ("code", "c")],
                Err(ErrorCode::UnsupportedGrantType),
            ),
            (
                vec![
                    ("grant_type", "authorization_code"),
                    ("code", "c"),
                    ("code", "d"),
                ],
                Err(ErrorCode::InvalidRequest),
            ),
        ];
        for (form, expected) in cases {
            let outcome = TokenRequest::parse(Some(&header), &pairs(&form))
                .map(|request| request.grant)
                .map_err(|e| e.code);
            assert_eq!(outcome, expected, "{form:?}");
        }
    }

    #[test]
    fn client_authentication_is_checked_before_the_grant() {
        let error = TokenRequest::parse(None, &pairs(&[("grant_type", "password")])).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn grant_must_be_allowed_for_the_client() {
        let request = TokenRequest::parse(
            None,
            &pairs(&[
                ("client_id", "native"),
                ("grant_type", "refresh_token"),
                ("refresh_token", "r"),
            ]),
        )
        .unwrap();
        assert_eq!(
            request
                .check_grant_allowed(&native_client())
                .unwrap_err()
                .code,
            ErrorCode::UnauthorizedClient
        );
        assert_eq!(request.check_grant_allowed(&web_client()), Ok(()));
    }

    #[test]
    fn redirect_uri_and_refresh_scope_checks() {
        let uri = "https://rp.example/cb";
        assert_eq!(check_redirect_uri(uri, Some(uri)), Ok(()));
        assert_eq!(
            check_redirect_uri(uri, None).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            check_redirect_uri(uri, Some("https://rp.example/cb?x"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidGrant
        );

        let granted = ScopeSet::parse("openid email offline_access").unwrap();
        let narrower = ScopeSet::parse("openid").unwrap();
        let wider = ScopeSet::parse("openid profile").unwrap();
        assert_eq!(check_refresh_scope(&granted, None), Ok(granted.clone()));
        assert_eq!(check_refresh_scope(&granted, Some(&narrower)), Ok(narrower));
        assert_eq!(
            check_refresh_scope(&granted, Some(&wider))
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn client_credentials_table() {
        let allowed = ScopeSet::parse("read write").unwrap();
        let scope = |value: &str| ScopeSet::parse(value).unwrap();
        let mut confidential = web_client();
        confidential.grant_types.push(GrantType::ClientCredentials);
        let mut public = native_client();
        public.grant_types.push(GrantType::ClientCredentials);
        // (client, requested scope, granted scope or error)
        let cases: Vec<(&ClientPolicy, Option<ScopeSet>, Result<ScopeSet, ErrorCode>)> = vec![
            (&confidential, None, Ok(scope("read write"))),
            (&confidential, Some(scope("read")), Ok(scope("read"))),
            (
                &confidential,
                Some(scope("write read")),
                Ok(scope("read write")),
            ),
            (
                &confidential,
                Some(scope("read admin")),
                Err(ErrorCode::InvalidScope),
            ),
            (
                &confidential,
                Some(scope("openid")),
                Err(ErrorCode::InvalidScope),
            ),
            (&public, None, Err(ErrorCode::UnauthorizedClient)),
            (
                &public,
                Some(scope("read")),
                Err(ErrorCode::UnauthorizedClient),
            ),
        ];
        for (client, requested, expected) in cases {
            let outcome =
                check_client_credentials(client, &allowed, requested.as_ref()).map_err(|e| e.code);
            assert_eq!(outcome, expected, "{} {requested:?}", client.client_id);
        }
        // Nothing allowed and nothing asked: a token with no scope.
        assert_eq!(
            check_client_credentials(&confidential, &ScopeSet::from_tokens::<_, &str>([]), None),
            Ok(ScopeSet::from_tokens::<_, &str>([]))
        );
    }

    #[test]
    fn client_credentials_needs_the_grant_on_the_client() {
        let request = TokenRequest::parse(
            Some(&basic("web:s")),
            &pairs(&[("grant_type", "client_credentials")]),
        )
        .unwrap();
        assert_eq!(
            request.check_grant_allowed(&web_client()).unwrap_err().code,
            ErrorCode::UnauthorizedClient
        );
        let mut allowed = web_client();
        allowed.grant_types.push(GrantType::ClientCredentials);
        assert_eq!(request.check_grant_allowed(&allowed), Ok(()));
    }

    #[test]
    fn token_response_serializes_per_rfc_6749() {
        let minimal = TokenResponse::bearer("at".into(), 300);
        assert_eq!(
            minimal.to_json_body(),
            r#"{"access_token":"at","token_type":"Bearer","expires_in":300}"#
        );
        let full = TokenResponse {
            refresh_token: Some("rt".into()),
            id_token: Some("h.p.s".into()),
            scope: Some(ScopeSet::parse("openid email").unwrap()),
            ..TokenResponse::bearer("at".into(), 300)
        };
        assert_eq!(
            full.to_json_body(),
            r#"{"access_token":"at","token_type":"Bearer","expires_in":300,"refresh_token":"rt","id_token":"h.p.s","scope":"email openid"}"#
        );
        assert!(!format!("{full:?}").contains("rt"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let auth = ClientAuthentication::ClientSecretPost {
            client_id: "web".into(),
            client_secret: "hunter2".into(),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
        let grant = GrantRequest::RefreshToken {
            refresh_token: "rt-secret".into(),
            scope: None,
        };
        assert!(!format!("{grant:?}").contains("rt-secret"));
    }
}
