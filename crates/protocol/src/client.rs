//! What the protocol needs to know about a registered client. Storage is elsewhere: the server
//! loads a client from the domain's read model and hands a [`ClientPolicy`] in.

use serde::{Deserialize, Serialize};

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// Runs on the user's device and holds no secret; must use PKCE.
    Public,
    /// Runs on a server and authenticates with a secret.
    Confidential,
}

/// A grant type a client may use at the token endpoint (RFC 6749 §4.1.3, §4.4, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code`.
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
    /// `client_credentials`: the client acting on its own behalf (RFC 6749 §4.4).
    ClientCredentials,
}

impl GrantType {
    /// Every supported grant type, in the order discovery lists them.
    pub const ALL: &'static [GrantType] = &[
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    /// The grant type with this `grant_type` value, if supported.
    pub fn from_name(name: &str) -> Option<GrantType> {
        GrantType::ALL
            .iter()
            .copied()
            .find(|grant| grant.as_str() == name)
    }
}

/// How a client authenticates at the token endpoint (OpenID Connect Core §9; the names of the
/// `token_endpoint_auth_method` registration parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded id and secret.
    ClientSecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// `none`: a public client that sends only its `client_id`.
    None,
}

impl TokenEndpointAuthMethod {
    /// Every supported method, in the order discovery lists them.
    pub const ALL: &'static [TokenEndpointAuthMethod] = &[
        TokenEndpointAuthMethod::ClientSecretBasic,
        TokenEndpointAuthMethod::ClientSecretPost,
        TokenEndpointAuthMethod::None,
    ];

    /// The method's registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenEndpointAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenEndpointAuthMethod::ClientSecretPost => "client_secret_post",
            TokenEndpointAuthMethod::None => "none",
        }
    }

    /// Whether the method presents a client secret (either secret method does).
    pub fn uses_secret(self) -> bool {
        match self {
            TokenEndpointAuthMethod::ClientSecretBasic
            | TokenEndpointAuthMethod::ClientSecretPost => true,
            TokenEndpointAuthMethod::None => false,
        }
    }
}

/// A registered client, as far as the protocol rules are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPolicy {
    /// The client identifier.
    pub client_id: String,
    /// Registered redirection URIs; a request's `redirect_uri` must equal one exactly.
    pub redirect_uris: Vec<String>,
    /// Registered `post_logout_redirect_uris`, matched exactly as well.
    pub post_logout_redirect_uris: Vec<String>,
    /// Public or confidential.
    pub client_type: ClientType,
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// How this client prefers to authenticate at the token endpoint; either secret method
    /// is accepted from a client with a secret.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// Whether authorization requests must carry a PKCE challenge even from a confidential
    /// client (public clients always must).
    pub require_pkce: bool,
}

impl ClientPolicy {
    /// Whether `uri` is registered as a redirection URI, by simple string comparison
    /// (OpenID Connect Core §3.1.2.1: no normalization, so no added query, no case folding).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| registered == uri)
    }

    /// Whether `uri` is a registered post-logout redirection URI, compared exactly.
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|registered| registered == uri)
    }

    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether an authorization request from this client must carry a `code_challenge`.
    pub fn must_use_pkce(&self) -> bool {
        self.require_pkce || self.client_type == ClientType::Public
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A confidential web client used across the crate's tests.
    pub(crate) fn web_client() -> ClientPolicy {
        ClientPolicy {
            client_id: "web".into(),
            redirect_uris: vec![
                "https://rp.example/cb".into(),
                "https://rp.example/cb?tenant=a".into(),
            ],
            post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
            client_type: ClientType::Confidential,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
            require_pkce: false,
        }
    }

    /// A public native client used across the crate's tests.
    pub(crate) fn native_client() -> ClientPolicy {
        ClientPolicy {
            client_id: "native".into(),
            redirect_uris: vec!["http://127.0.0.1:8400/cb".into()],
            post_logout_redirect_uris: vec![],
            client_type: ClientType::Public,
            grant_types: vec![GrantType::AuthorizationCode],
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            require_pkce: false,
        }
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let client = web_client();
        let cases = [
            ("https://rp.example/cb", true),
            ("https://rp.example/cb?tenant=a", true),
            ("https://rp.example/cb?tenant=b", false),
            ("https://rp.example/cb/", false),
            ("https://RP.example/cb", false),
            ("https://rp.example/cb?", false),
            ("https://rp.example:443/cb", false),
        ];
        for (uri, registered) in cases {
            assert_eq!(client.has_redirect_uri(uri), registered, "{uri}");
        }
        assert!(client.has_post_logout_redirect_uri("https://rp.example/bye"));
        assert!(!client.has_post_logout_redirect_uri("https://rp.example/bye?x=1"));
    }

    #[test]
    fn pkce_is_required_for_public_clients_and_on_request() {
        let mut web = web_client();
        assert!(!web.must_use_pkce());
        web.require_pkce = true;
        assert!(web.must_use_pkce());
        assert!(native_client().must_use_pkce());
    }

    #[test]
    fn grant_types_round_trip() {
        for grant in GrantType::ALL {
            assert_eq!(GrantType::from_name(grant.as_str()), Some(*grant));
        }
        assert_eq!(GrantType::from_name("password"), None);
        assert!(!native_client().allows_grant(GrantType::RefreshToken));
    }
}
