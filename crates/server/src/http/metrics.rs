//! `GET /metrics` (the Prometheus text exposition of `crate::metrics::ServerMetrics`) and the
//! middleware that counts and times every HTTP request.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::metrics::{CONTENT_TYPE, UNMATCHED, method_label};

/// The metrics route.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Counted at each scrape (an index range of live rows) rather than followed from events,
    // so it is right after a restart and on every replica.
    let live = match state.domain.live_sessions().await {
        Ok(live) => Some(live),
        Err(error) => {
            tracing::warn!(%error, "could not count live sessions for /metrics; the gauge keeps its last value");
            None
        }
    };
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(live),
    )
}

/// Counts and times a request under its route's template (`/admin/v1/users/{user_id}`, never
/// the path itself, so ids add no series); requests no route matched share one label.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.http_request(
        method,
        route.as_deref().unwrap_or(UNMATCHED),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
