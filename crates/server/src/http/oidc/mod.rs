//! The OpenID Provider's public endpoints. Paths are `protocol::discovery::EndpointPaths`'s
//! defaults, and discovery publishes exactly these.

mod authorize;
mod client;
mod discovery;
mod end_session;
pub mod front_channel;
mod introspection;
mod issuer;
mod login;
mod logout_receipt;
mod page;
mod registration;
mod session;
mod token;
mod userinfo;

use axum::Router;
use axum::routing::{get, post};

use super::AppState;

pub use issuer::{Issuer, RequestOrigin};
pub use login::LoginThrottle;

/// Every OIDC route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/oauth/v2/keys", get(discovery::keys))
        .route(
            "/oauth/v2/authorize",
            get(authorize::get).post(authorize::post),
        )
        .route("/login", get(login::show).post(login::submit))
        .route("/oauth/v2/token", post(token::token))
        .route(
            "/oidc/v1/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/oauth/v2/introspect", post(introspection::introspect))
        .route("/oauth/v2/revoke", post(introspection::revoke))
        .route(
            "/oidc/v1/end_session",
            get(end_session::get).post(end_session::post),
        )
        .route("/oidc/v1/end_session/confirm", post(end_session::confirm))
        .route("/oidc/v1/register", post(registration::register))
        .route(
            "/oidc/v1/register/{client_id}",
            get(registration::read)
                .put(registration::update)
                .delete(registration::delete),
        )
}
