//! The admin API's view of an OIDC application's settings. The domain's `OidcConfig` stays free
//! of HTTP and schema crates, so these mirror it for the OpenAPI document; the conversions are
//! exhaustive matches, so a new domain variant fails to compile here rather than go missing.

use domain::application::{self, OidcConfig};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether the client can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// A server-side application with a secret.
    Confidential,
    /// A browser or native application; uses PKCE instead of a secret.
    Public,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// The authorization code grant.
    AuthorizationCode,
    /// The refresh token grant.
    RefreshToken,
    /// The client credentials grant (RFC 6749 §4.4; confidential clients only).
    ClientCredentials,
}

/// The JWS algorithm of the client's ID and logout tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (what every client supports).
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

/// Default access and ID token lifetime: one hour.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u32 = 3600;
/// Default refresh token lifetime: 30 days.
pub const DEFAULT_REFRESH_TOKEN_LIFETIME_SECS: u32 = 30 * 24 * 3600;

/// An application's settings as a request sets them. `PUT` replaces all settings: an omitted
/// field takes its default, as on creation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSettings {
    /// Display name (shown on the sign-in page).
    pub name: String,
    /// `confidential` (the default) or `public`.
    #[serde(default = "confidential")]
    #[schema(default = "confidential")]
    pub client_type: ClientType,
    /// Token endpoint authentication; defaults to `client_secret_basic` for confidential
    /// clients and `none` for public ones.
    #[serde(default)]
    pub auth_method: Option<AuthMethod>,
    /// Registered redirect URIs, compared exactly.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs, compared exactly.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grants; defaults to `authorization_code` and `refresh_token`.
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
    /// ID token signing algorithm; defaults to `RS256`.
    #[serde(default = "rs256")]
    #[schema(default = "RS256")]
    pub id_token_signing_alg: SigningAlgorithm,
    /// Access token lifetime in seconds (1 to 86400; default 3600).
    #[serde(default = "default_token_lifetime")]
    #[schema(default = 3600)]
    pub access_token_lifetime_secs: u32,
    /// ID token lifetime in seconds (1 to 86400; default 3600).
    #[serde(default = "default_token_lifetime")]
    #[schema(default = 3600)]
    pub id_token_lifetime_secs: u32,
    /// Refresh token lifetime in seconds (1 to 31536000; default 2592000).
    #[serde(default = "default_refresh_token_lifetime")]
    #[schema(default = 2592000)]
    pub refresh_token_lifetime_secs: u32,
    /// Where back-channel logout tokens are POSTed, if anywhere.
    #[serde(default)]
    pub back_channel_logout_uri: Option<String>,
    /// Whether the application requires `sid` in logout tokens.
    #[serde(default)]
    pub back_channel_logout_session_required: bool,
    /// The page a browser loads in a hidden iframe when the person signs out here
    /// (Front-Channel Logout 1.0), if any.
    #[serde(default)]
    pub front_channel_logout_uri: Option<String>,
    /// Whether that page needs `iss` and `sid` in its query.
    #[serde(default)]
    pub front_channel_logout_session_required: bool,
    /// The scopes the application may request with the client credentials grant (none by
    /// default); a request without `scope` gets them all.
    #[serde(default)]
    pub client_credentials_scopes: Vec<String>,
}

fn confidential() -> ClientType {
    ClientType::Confidential
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

fn rs256() -> SigningAlgorithm {
    SigningAlgorithm::RS256
}

fn default_token_lifetime() -> u32 {
    DEFAULT_TOKEN_LIFETIME_SECS
}

fn default_refresh_token_lifetime() -> u32 {
    DEFAULT_REFRESH_TOKEN_LIFETIME_SECS
}

impl ApplicationSettings {
    /// The settings of a request that names only the application: every default filled in
    /// (the console's new-application form starts from these).
    pub fn defaults() -> Self {
        ApplicationSettings {
            name: String::new(),
            client_type: confidential(),
            auth_method: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: default_grant_types(),
            id_token_signing_alg: rs256(),
            access_token_lifetime_secs: default_token_lifetime(),
            id_token_lifetime_secs: default_token_lifetime(),
            refresh_token_lifetime_secs: default_refresh_token_lifetime(),
            back_channel_logout_uri: None,
            back_channel_logout_session_required: false,
            front_channel_logout_uri: None,
            front_channel_logout_session_required: false,
            client_credentials_scopes: Vec::new(),
        }
    }

    /// The domain's settings, with defaults filled in; the domain validates them.
    pub fn into_config(self) -> OidcConfig {
        let auth_method = self.auth_method.unwrap_or(match self.client_type {
            ClientType::Confidential => AuthMethod::ClientSecretBasic,
            ClientType::Public => AuthMethod::None,
        });
        OidcConfig {
            name: self.name,
            client_type: self.client_type.into(),
            auth_method: auth_method.into(),
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types.into_iter().map(Into::into).collect(),
            id_token_signing_alg: self.id_token_signing_alg.into(),
            access_token_lifetime_secs: self.access_token_lifetime_secs,
            id_token_lifetime_secs: self.id_token_lifetime_secs,
            refresh_token_lifetime_secs: self.refresh_token_lifetime_secs,
            back_channel_logout_uri: self.back_channel_logout_uri,
            back_channel_logout_session_required: self.back_channel_logout_session_required,
            front_channel_logout_uri: self.front_channel_logout_uri,
            front_channel_logout_session_required: self.front_channel_logout_session_required,
            client_credentials_scopes: self.client_credentials_scopes,
        }
    }
}

/// An application's settings as responses show them (defaults filled in).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApplicationConfig {
    /// Display name.
    pub name: String,
    /// Confidential or public.
    pub client_type: ClientType,
    /// Token endpoint authentication.
    pub auth_method: AuthMethod,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
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
    pub back_channel_logout_uri: Option<String>,
    /// Whether the application requires `sid` in logout tokens.
    pub back_channel_logout_session_required: bool,
    /// The page a browser loads in a hidden iframe on sign-out, if any.
    pub front_channel_logout_uri: Option<String>,
    /// Whether that page needs `iss` and `sid` in its query.
    pub front_channel_logout_session_required: bool,
    /// The scopes the application may request with the client credentials grant.
    #[serde(default)]
    pub client_credentials_scopes: Vec<String>,
}

impl From<OidcConfig> for ApplicationConfig {
    fn from(config: OidcConfig) -> Self {
        ApplicationConfig {
            name: config.name,
            client_type: config.client_type.into(),
            auth_method: config.auth_method.into(),
            redirect_uris: config.redirect_uris,
            post_logout_redirect_uris: config.post_logout_redirect_uris,
            grant_types: config.grant_types.into_iter().map(Into::into).collect(),
            id_token_signing_alg: config.id_token_signing_alg.into(),
            access_token_lifetime_secs: config.access_token_lifetime_secs,
            id_token_lifetime_secs: config.id_token_lifetime_secs,
            refresh_token_lifetime_secs: config.refresh_token_lifetime_secs,
            back_channel_logout_uri: config.back_channel_logout_uri,
            back_channel_logout_session_required: config.back_channel_logout_session_required,
            front_channel_logout_uri: config.front_channel_logout_uri,
            front_channel_logout_session_required: config.front_channel_logout_session_required,
            client_credentials_scopes: config.client_credentials_scopes,
        }
    }
}

/// Two-way conversions between a mirrored enum and the domain's, variant by variant.
macro_rules! mirror {
    ($ours:ident, $theirs:ty, [$($variant:ident),+]) => {
        impl From<$ours> for $theirs {
            fn from(value: $ours) -> Self {
                match value {
                    $($ours::$variant => <$theirs>::$variant,)+
                }
            }
        }

        impl From<$theirs> for $ours {
            fn from(value: $theirs) -> Self {
                match value {
                    $(<$theirs>::$variant => $ours::$variant,)+
                }
            }
        }
    };
}

mirror!(ClientType, application::ClientType, [Confidential, Public]);
mirror!(
    AuthMethod,
    application::AuthMethod,
    [ClientSecretBasic, ClientSecretPost, None]
);
mirror!(
    GrantType,
    application::GrantType,
    [AuthorizationCode, RefreshToken, ClientCredentials]
);
mirror!(
    SigningAlgorithm,
    application::SigningAlgorithm,
    [RS256, ES256, EdDSA]
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::admin::body::parse_json;

    #[test]
    fn defaults_follow_the_client_type() {
        let confidential: ApplicationSettings =
            parse_json(br#"{"name": "Web", "redirect_uris": ["https://app.example/cb"]}"#).unwrap();
        let config = confidential.into_config();
        assert_eq!(
            config.auth_method,
            application::AuthMethod::ClientSecretBasic
        );
        assert_eq!(
            config.id_token_signing_alg,
            application::SigningAlgorithm::RS256
        );
        assert_eq!(config.grant_types.len(), 2);
        config.validate().unwrap();

        let public: ApplicationSettings = parse_json(
            br#"{"name": "SPA", "client_type": "public", "redirect_uris": ["http://localhost:3000/cb"]}"#,
        )
        .unwrap();
        assert_eq!(
            public.into_config().auth_method,
            application::AuthMethod::None
        );
    }

    #[test]
    fn the_defaults_are_those_of_a_request_naming_only_the_application() {
        let named: ApplicationSettings = parse_json(br#"{"name": ""}"#).unwrap();
        assert_eq!(
            ApplicationSettings::defaults().into_config(),
            named.into_config()
        );
    }

    #[test]
    fn settings_round_trip_through_the_domain() {
        let settings: ApplicationSettings = parse_json(
            br#"{"name": "Web", "client_type": "confidential", "auth_method": "client_secret_post",
                "redirect_uris": ["https://app.example/cb"], "post_logout_redirect_uris": ["https://app.example/"],
                "grant_types": ["authorization_code"], "id_token_signing_alg": "EdDSA",
                "access_token_lifetime_secs": 60, "id_token_lifetime_secs": 120,
                "refresh_token_lifetime_secs": 180, "back_channel_logout_uri": "https://app.example/bcl",
                "back_channel_logout_session_required": true}"#,
        )
        .unwrap();
        let shown = ApplicationConfig::from(settings.into_config());
        assert_eq!(shown.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(shown.id_token_signing_alg, SigningAlgorithm::EdDSA);
        assert_eq!(shown.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(
            (
                shown.access_token_lifetime_secs,
                shown.id_token_lifetime_secs,
                shown.refresh_token_lifetime_secs
            ),
            (60, 120, 180)
        );
        assert!(shown.back_channel_logout_session_required);
        assert!(shown.client_credentials_scopes.is_empty());

        let machine: ApplicationSettings = parse_json(
            br#"{"name": "Worker", "grant_types": ["client_credentials"],
                "client_credentials_scopes": ["reports:read"]}"#,
        )
        .unwrap();
        let config = machine.into_config();
        config.validate().unwrap();
        let shown = ApplicationConfig::from(config);
        assert_eq!(shown.grant_types, [GrantType::ClientCredentials]);
        assert_eq!(shown.client_credentials_scopes, ["reports:read"]);
    }
}
