//! The admin API under `/admin/v1`, authenticated by bearer admin tokens.

mod auth;
mod features;

use axum::Router;

use super::AppState;

/// Every admin route, to be nested under `/admin/v1`.
pub fn router() -> Router<AppState> {
    Router::new().merge(features::router())
}
