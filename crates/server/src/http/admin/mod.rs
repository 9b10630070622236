//! The admin API under `/admin/v1`, authenticated by bearer admin tokens and scoped to the
//! token's instance. Every route is registered through `utoipa_axum`, so the OpenAPI document
//! served at `/admin/v1/openapi.json` lists exactly the routes that exist.

pub mod admin_tokens;
pub mod application_settings;
pub mod applications;
mod auth;
pub(crate) mod body;
pub mod deliveries;
pub mod delivery_health;
pub mod features;
mod openapi;
pub mod registration_tokens;
pub mod sessions;
pub mod sign_out;
pub mod users;

/// How the admin API and the console name the issuer an admin's actions carry.
pub(crate) use auth::instance_issuer;

use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::AppState;

/// Where the admin API lives.
pub const PREFIX: &str = "/admin/v1";

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::AdminApiDoc::openapi()).nest(
        PREFIX,
        OpenApiRouter::default()
            .merge(users::router())
            .merge(applications::router())
            .merge(sessions::router())
            .merge(sign_out::router())
            .merge(deliveries::router())
            .merge(delivery_health::router())
            .merge(admin_tokens::router())
            .merge(registration_tokens::router())
            .merge(features::router()),
    )
}

/// The admin API's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// Every admin route, with `/admin/v1` already prefixed, and the OpenAPI document at
/// `/admin/v1/openapi.json` (unauthenticated: it describes the API, it holds no data).
pub fn router() -> Router<AppState> {
    let (router, document) = routes().split_for_parts();
    // The document is plain strings and maps with string keys; serializing it cannot fail.
    let document: Arc<str> = document
        .to_pretty_json()
        .expect("an OpenAPI document always serializes")
        .into();
    router.route(
        &format!("{PREFIX}/openapi.json"),
        get(move || {
            let document = document.clone();
            async move { ([(CONTENT_TYPE, "application/json")], document.to_string()) }
        }),
    )
}
