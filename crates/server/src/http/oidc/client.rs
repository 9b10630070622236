//! The protocol's view of a registered application.

use domain::application::{AuthMethod, ClientType, GrantType, OidcConfig};
use protocol::client::{self, ClientPolicy, TokenEndpointAuthMethod};

/// What the protocol layer needs to know about an application.
pub fn policy(client_id: &str, config: &OidcConfig) -> ClientPolicy {
    let client_type = match config.client_type {
        ClientType::Confidential => client::ClientType::Confidential,
        ClientType::Public => client::ClientType::Public,
    };
    ClientPolicy {
        client_id: client_id.to_owned(),
        redirect_uris: config.redirect_uris.clone(),
        post_logout_redirect_uris: config.post_logout_redirect_uris.clone(),
        client_type,
        grant_types: config
            .grant_types
            .iter()
            .map(|grant| match grant {
                GrantType::AuthorizationCode => client::GrantType::AuthorizationCode,
                GrantType::RefreshToken => client::GrantType::RefreshToken,
                GrantType::ClientCredentials => client::GrantType::ClientCredentials,
            })
            .collect(),
        token_endpoint_auth_method: match config.auth_method {
            AuthMethod::ClientSecretBasic => TokenEndpointAuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost => TokenEndpointAuthMethod::ClientSecretPost,
            AuthMethod::None => TokenEndpointAuthMethod::None,
        },
        // Public clients must use PKCE (they have no secret); confidential ones may.
        require_pkce: config.client_type == ClientType::Public,
    }
}
