//! The admin console at `/console` (issue 15): server-rendered pages for an instance's
//! admins, signed in with an admin token. No scripts, no inline styles, nothing from another
//! origin: the pages use the embedded style sheet (`crate::http::assets`) and the same
//! Content-Security-Policy as every other page (`crate::http::security_headers`).
//!
//! A console session lives in this process' memory only ([`ConsoleSessions`]); the browser
//! holds nothing but its random id. Every form that changes something carries the session's
//! CSRF token.

mod application_form;
mod applications;
mod auth;
mod chart;
mod deliveries;
mod form;
mod instance;
mod live_sessions;
mod overview;
mod page;
mod redelivery;
mod sessions;
mod sign_in;
mod users;

use axum::Router;
use axum::routing::get;

pub use sessions::ConsoleSessions;

use super::AppState;

/// Where the console lives.
pub const PREFIX: &str = "/console";
/// The sign-in page.
pub const SIGN_IN_PATH: &str = "/console/sign-in";
/// The sign-out form's target.
pub const SIGN_OUT_PATH: &str = "/console/sign-out";

/// The console's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PREFIX, get(overview::show))
        .route(SIGN_IN_PATH, get(sign_in::show).post(sign_in::submit))
        .route(SIGN_OUT_PATH, axum::routing::post(sign_in::sign_out))
        .route(deliveries::PATH, get(deliveries::list))
        .route(
            "/console/deliveries/{session_id}/{client_id}",
            get(deliveries::show),
        )
        .route(
            "/console/deliveries/{session_id}/{client_id}/redeliver",
            axum::routing::post(deliveries::redeliver),
        )
        .route(
            redelivery::APPLICATION_PATH,
            axum::routing::post(redelivery::application),
        )
        .route(
            "/console/deliveries/{session_id}/redeliver-all",
            axum::routing::post(redelivery::session),
        )
        .route(instance::PATH, get(instance::show))
        .route(
            "/console/instance/features/{name}",
            axum::routing::post(instance::set_feature),
        )
        .route(
            instance::SIGN_OUT_PATH,
            axum::routing::post(instance::sign_out_everyone),
        )
        .route(
            "/console/instance/sign-out/{operation_id}",
            get(instance::progress),
        )
        .route(users::PATH, get(users::list).post(users::create))
        .route("/console/users/{user_id}", get(users::show))
        .route(
            "/console/users/{user_id}/{action}",
            axum::routing::post(users::action),
        )
        .route(
            "/console/users/{user_id}/sessions/{session_id}/sign-out",
            axum::routing::post(users::sign_out_session),
        )
        .route(
            applications::PATH,
            get(applications::list).post(applications::create),
        )
        .route(
            "/console/applications/{client_id}",
            get(applications::show).post(applications::change),
        )
        .route(
            "/console/applications/{client_id}/{action}",
            axum::routing::post(applications::action),
        )
        .route(live_sessions::PATH, get(live_sessions::list))
        .route(
            "/console/sessions/{session_id}/end",
            axum::routing::post(live_sessions::end),
        )
        .route("/console/{*rest}", get(overview::not_built))
}
