//! The HTTP surface: one router per concern, merged here.

pub mod admin;
pub mod assets;
pub mod console;
pub mod error;
mod health;
mod metrics;
pub mod oidc;
pub mod security_headers;
pub mod system;

use std::sync::Arc;

use axum::Router;
use axum::http::Uri;
use domain::Domain;

use crate::keys::KeyRing;
use tower_http::trace::TraceLayer;

use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Commands and queries.
    pub domain: Arc<Domain>,
    /// Signing keys.
    pub keys: Arc<KeyRing>,
    /// Settings the handlers need.
    pub settings: Arc<Settings>,
    /// Slows down repeated sign-in failures.
    pub throttle: Arc<oidc::LoginThrottle>,
    /// What `/metrics` serves (the back-channel notifier's series included).
    pub metrics: Arc<crate::metrics::ServerMetrics>,
    /// The stored back-channel deliveries, as the notifier sees them.
    pub deliveries: Arc<notify::back_channel::DomainDeliveries>,
    /// Wakes the "sign out everyone" worker when an operation starts.
    pub sign_out_wake: Arc<tokio::sync::Notify>,
    /// The admin console's signed-in sessions (this process only).
    pub console: Arc<console::ConsoleSessions>,
}

/// Run-time settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether the server is reached over https (cookies get `Secure`, pages get HSTS).
    pub https: bool,
    /// How long a sign-in lasts.
    pub session_lifetime: std::time::Duration,
    /// How long the end-session response may wait for the session's back-channel deliveries
    /// (zero: do not wait).
    pub end_session_wait: std::time::Duration,
    /// Failed delivery attempts in a row at which an application counts as alerting.
    pub alert_consecutive_failures: u32,
    /// The system API's token; `None` turns the system API off.
    pub system_token: Option<system::SystemToken>,
    /// How long removing an instance over the system API waits for its sessions' logout
    /// deliveries to settle before answering 202 (the removal then finishes in the background).
    pub instance_removal_wait: std::time::Duration,
}

/// The whole application, without a socket (tests and `serve` both use it).
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(assets::router())
        .merge(oidc::router())
        .merge(admin::router())
        .merge(system::router())
        .merge(console::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers::add,
        ))
        // Added with `layer`, so it runs per route, after routing, where the matched route's
        // template is known.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A request's media type without parameters, lowercased (`application/json` of
/// `Application/JSON; charset=utf-8`); `None` without a readable `Content-Type`.
pub fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    let essence = value.split(';').next().unwrap_or_default();
    Some(essence.trim().to_ascii_lowercase())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at {}", uri.path()))
}
