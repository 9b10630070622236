//! An OIDC application's settings and their validation.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Whether the client can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// A server-side application with a secret.
    Confidential,
    /// A browser or native application; uses PKCE instead of a secret.
    Public,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with client_id and secret.
    ClientSecretBasic,
    /// client_id and client_secret in the form body.
    ClientSecretPost,
    /// No authentication (public clients).
    None,
}

/// An OAuth grant the client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// The authorization code grant.
    AuthorizationCode,
    /// The refresh token grant.
    RefreshToken,
    /// The client credentials grant (RFC 6749 §4.4): tokens for the client itself, no user.
    ClientCredentials,
}

/// The JWS algorithm the client's ID tokens (and logout tokens) are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (mandatory to implement).
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlgorithm {
    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::EdDSA => "EdDSA",
        }
    }
}

/// Everything an administrator sets on an OIDC application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Display name (shown on the login page).
    pub name: String,
    /// Confidential or public.
    pub client_type: ClientType,
    /// Token endpoint authentication.
    pub auth_method: AuthMethod,
    /// Registered redirect URIs, compared exactly.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs, compared exactly.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grants.
    pub grant_types: Vec<GrantType>,
    /// ID token signing algorithm.
    pub id_token_signing_alg: SigningAlgorithm,
    /// Access token lifetime in seconds.
    pub access_token_lifetime_secs: u32,
    /// ID token lifetime in seconds.
    pub id_token_lifetime_secs: u32,
    /// Refresh token lifetime in seconds.
    pub refresh_token_lifetime_secs: u32,
    /// Where back-channel logout tokens are POSTed, if anywhere.
    #[serde(default)]
    pub back_channel_logout_uri: Option<String>,
    /// Whether the application requires `sid` in logout tokens.
    #[serde(default)]
    pub back_channel_logout_session_required: bool,
    /// The page the browser loads in a hidden iframe when a session ends there
    /// (Front-Channel Logout 1.0), if any.
    #[serde(default)]
    pub front_channel_logout_uri: Option<String>,
    /// Whether the application requires `iss` and `sid` on its front-channel logout URI.
    #[serde(default)]
    pub front_channel_logout_session_required: bool,
    /// The scopes the application may request with the client credentials grant; a request
    /// without `scope` gets them all. Events written before it existed have none, and an empty
    /// list is left out of new ones, so applications that do not use the grant write exactly
    /// what earlier releases wrote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_credentials_scopes: Vec<String>,
}

/// Scopes that speak of a signed-in user, so a client credentials token (which has none)
/// cannot carry them.
const USER_SCOPES: &[&str] = &["openid", "offline_access"];

fn invalid(field: &'static str, reason: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl OidcConfig {
    /// Whether the application may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Each scope a scope-token (RFC 6749 §3.3), once, and none that needs a user.
    fn check_client_credentials_scopes(&self) -> Result<(), DomainError> {
        let field = "client_credentials_scopes";
        for (index, scope) in self.client_credentials_scopes.iter().enumerate() {
            let scope_token = !scope.is_empty()
                && scope
                    .bytes()
                    .all(|byte| matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
            if !scope_token {
                return Err(invalid(
                    field,
                    format!(
                        "{scope:?} is not a scope: printable ASCII without spaces, '\"' or '\\'"
                    ),
                ));
            }
            if USER_SCOPES.contains(&scope.as_str()) {
                return Err(invalid(
                    field,
                    format!(
                        "{scope:?} needs a signed-in user; client credentials tokens have none"
                    ),
                ));
            }
            if self.client_credentials_scopes[..index].contains(scope) {
                return Err(invalid(field, format!("{scope:?} is listed twice")));
            }
        }
        Ok(())
    }

    /// Checks the settings for consistency; the error names the setting at fault.
    pub fn validate(&self) -> Result<(), DomainError> {
        let name_length = self.name.trim().chars().count();
        if name_length == 0 || name_length > 200 || self.name.chars().any(char::is_control) {
            return Err(invalid(
                "name",
                "1 to 200 characters, no control characters",
            ));
        }
        match (self.client_type, self.auth_method) {
            (ClientType::Public, AuthMethod::None) => {}
            (ClientType::Public, _) => {
                return Err(invalid(
                    "auth_method",
                    "a public client cannot keep a secret: use `none` (with PKCE)",
                ));
            }
            (ClientType::Confidential, AuthMethod::None) => {
                return Err(invalid(
                    "auth_method",
                    "a confidential client authenticates: use client_secret_basic or client_secret_post",
                ));
            }
            (ClientType::Confidential, _) => {}
        }
        if self.grant_types.is_empty() {
            return Err(invalid(
                "grant_types",
                "name at least one grant: authorization_code, refresh_token, client_credentials",
            ));
        }
        if self.client_type == ClientType::Public
            && self.grant_types.contains(&GrantType::ClientCredentials)
        {
            return Err(invalid(
                "grant_types",
                "a public client cannot use client_credentials: it has no secret to \
                 authenticate with (RFC 6749 §4.4); make the application confidential",
            ));
        }
        self.check_client_credentials_scopes()?;
        if self.grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty()
        {
            return Err(invalid(
                "redirect_uris",
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
        for uri in &self.redirect_uris {
            check_redirect_uri("redirect_uris", uri, self.client_type)?;
        }
        for uri in &self.post_logout_redirect_uris {
            check_redirect_uri("post_logout_redirect_uris", uri, self.client_type)?;
        }
        for (field, lifetime, max) in [
            (
                "access_token_lifetime_secs",
                self.access_token_lifetime_secs,
                86_400,
            ),
            (
                "id_token_lifetime_secs",
                self.id_token_lifetime_secs,
                86_400,
            ),
            (
                "refresh_token_lifetime_secs",
                self.refresh_token_lifetime_secs,
                31_536_000,
            ),
        ] {
            if lifetime == 0 || lifetime > max {
                return Err(invalid(field, format!("between 1 and {max} seconds")));
            }
        }
        if let Some(uri) = &self.back_channel_logout_uri {
            check_logout_uri("back_channel_logout_uri", uri)?;
        }
        if let Some(uri) = &self.front_channel_logout_uri {
            check_logout_uri("front_channel_logout_uri", uri)?;
        }
        Ok(())
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1" || host == "[::1]" || host.ends_with(".localhost")
}

/// A redirect URI: absolute, no fragment (RFC 6749 §3.1.2); `https`, or `http` for
/// confidential clients or loopback hosts (OIDC Core §3.1.2.1, RFC 8252 §7.3), or a private
/// scheme for public (native) clients (RFC 8252 §7.1).
fn check_redirect_uri(
    field: &'static str,
    uri: &str,
    client_type: ClientType,
) -> Result<(), DomainError> {
    let parsed = url::Url::parse(uri)
        .map_err(|error| invalid(field, format!("{uri:?} is not an absolute URI ({error})")))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(invalid(field, format!("{uri:?} must not have a fragment")));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http"
            if client_type == ClientType::Confidential
                || parsed.host_str().is_some_and(is_loopback) =>
        {
            Ok(())
        }
        "http" => Err(invalid(
            field,
            format!("{uri:?}: a public client may use http only on a loopback host; use https"),
        )),
        scheme if client_type == ClientType::Public && scheme.contains('.') => Ok(()),
        _ => Err(invalid(
            field,
            format!("{uri:?}: use https (or a reverse-domain private scheme for native apps)"),
        )),
    }
}

/// A back- or front-channel logout URI: absolute http(s), no fragment (Back-Channel Logout
/// 1.0 §2.2, Front-Channel Logout 1.0 §2; a query is allowed and kept). Whether plain http and
/// private addresses are acceptable for a back-channel delivery is decided at delivery; a
/// front-channel URI is loaded by the person's browser, never by the server.
fn check_logout_uri(field: &'static str, uri: &str) -> Result<(), DomainError> {
    let parsed = url::Url::parse(uri)
        .map_err(|error| invalid(field, format!("{uri:?} is not an absolute URI ({error})")))?;
    if parsed.fragment().is_some() || uri.contains('#') {
        return Err(invalid(field, format!("{uri:?} must not have a fragment")));
    }
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(invalid(field, format!("{uri:?} must be an https URL")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn web_app() -> OidcConfig {
        OidcConfig {
            name: "Web app".into(),
            client_type: ClientType::Confidential,
            auth_method: AuthMethod::ClientSecretBasic,
            redirect_uris: vec!["https://app.example.com/callback".into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            id_token_signing_alg: SigningAlgorithm::ES256,
            access_token_lifetime_secs: 3600,
            id_token_lifetime_secs: 3600,
            refresh_token_lifetime_secs: 2_592_000,
            back_channel_logout_uri: None,
            back_channel_logout_session_required: false,
            front_channel_logout_uri: None,
            front_channel_logout_session_required: false,
            client_credentials_scopes: vec![],
        }
    }

    #[test]
    fn validation_names_the_setting() {
        type Tweak = fn(&mut OidcConfig);
        let cases: [(Tweak, Option<&str>); 19] = [
            (|_| {}, None),
            (|c| c.name = " ".into(), Some("name")),
            (|c| c.auth_method = AuthMethod::None, Some("auth_method")),
            (|c| c.client_type = ClientType::Public, Some("auth_method")),
            (
                |c| c.redirect_uris = vec!["/relative".into()],
                Some("redirect_uris"),
            ),
            (
                |c| c.redirect_uris = vec!["https://app.example.com/cb#frag".into()],
                Some("redirect_uris"),
            ),
            (|c| c.redirect_uris.clear(), Some("redirect_uris")),
            (|c| c.grant_types.clear(), Some("grant_types")),
            (
                |c| c.access_token_lifetime_secs = 0,
                Some("access_token_lifetime_secs"),
            ),
            (
                |c| c.back_channel_logout_uri = Some("https://app.example.com/logout#x".into()),
                Some("back_channel_logout_uri"),
            ),
            (
                |c| c.back_channel_logout_uri = Some("not a uri".into()),
                Some("back_channel_logout_uri"),
            ),
            (
                |c| c.post_logout_redirect_uris = vec!["ftp://x".into()],
                Some("post_logout_redirect_uris"),
            ),
            (
                |c| {
                    c.grant_types = vec![GrantType::ClientCredentials];
                    c.redirect_uris.clear();
                    c.client_credentials_scopes = vec!["read".into(), "write".into()];
                },
                None,
            ),
            (
                |c| {
                    c.client_type = ClientType::Public;
                    c.auth_method = AuthMethod::None;
                    c.grant_types.push(GrantType::ClientCredentials);
                },
                Some("grant_types"),
            ),
            (
                |c| c.client_credentials_scopes = vec!["openid".into()],
                Some("client_credentials_scopes"),
            ),
            (
                |c| c.client_credentials_scopes = vec!["offline_access".into()],
                Some("client_credentials_scopes"),
            ),
            (
                |c| c.client_credentials_scopes = vec!["two words".into()],
                Some("client_credentials_scopes"),
            ),
            (
                |c| c.client_credentials_scopes = vec!["".into()],
                Some("client_credentials_scopes"),
            ),
            (
                |c| c.client_credentials_scopes = vec!["read".into(), "read".into()],
                Some("client_credentials_scopes"),
            ),
        ];
        for (index, (tweak, expected)) in cases.into_iter().enumerate() {
            let mut config = web_app();
            tweak(&mut config);
            match (config.validate(), expected) {
                (Ok(()), None) => {}
                (Err(DomainError::Invalid { field, .. }), Some(expected)) => {
                    assert_eq!(field, expected, "case {index}")
                }
                (other, expected) => panic!("case {index}: expected {expected:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn settings_stored_before_client_credentials_still_decode() {
        let stored = r#"{"name":"Web app","client_type":"confidential","auth_method":"client_secret_basic",
            "redirect_uris":["https://app.example.com/callback"],"grant_types":["authorization_code"],
            "id_token_signing_alg":"ES256","access_token_lifetime_secs":3600,
            "id_token_lifetime_secs":3600,"refresh_token_lifetime_secs":86400}"#;
        let config: OidcConfig = serde_json::from_str(stored).unwrap();
        assert!(config.client_credentials_scopes.is_empty());
        assert!(!config.allows(GrantType::ClientCredentials));
        // Unused, the new setting is not written, so older releases read new events too.
        assert!(
            !serde_json::to_string(&config)
                .unwrap()
                .contains("client_credentials")
        );
    }

    #[test]
    fn public_clients_use_loopback_http_or_private_schemes() {
        let mut spa = web_app();
        spa.client_type = ClientType::Public;
        spa.auth_method = AuthMethod::None;
        for (uri, ok) in [
            ("http://localhost:3000/cb", true),
            ("http://127.0.0.1:8000/cb", true),
            ("com.example.app:/oauth2redirect", true),
            ("http://app.example.com/cb", false),
            ("myapp:/cb", false),
        ] {
            spa.redirect_uris = vec![uri.into()];
            assert_eq!(spa.validate().is_ok(), ok, "{uri}");
        }
    }
}
