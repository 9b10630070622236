//! The HTTP surface: one router per concern, merged here.

mod admin;
pub mod error;
mod health;

use std::sync::Arc;

use axum::Router;
use axum::http::Uri;
use domain::Domain;
use tower_http::trace::TraceLayer;

use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Commands and queries.
    pub domain: Arc<Domain>,
}

/// The whole application, without a socket (tests and `serve` both use it).
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .nest("/admin/v1", admin::router())
        .fallback(not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at {}", uri.path()))
}
