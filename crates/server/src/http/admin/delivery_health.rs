//! Back-channel delivery health for admins: per application, the deliveries sent, the attempts
//! retried and the deliveries failed in the last hour and day, the time from a session's end
//! to the application's acknowledgement (median and 99th percentile), the last error and the
//! current run of failed attempts (`/admin/v1/back-channel-health`,
//! `/admin/v1/applications/{client_id}/back-channel-health`).
//!
//! Read from the store (`domain::session_logout::DeliveryHealth`), so every replica answers
//! alike, also right after a restart; `/metrics` has the same application's counters as this
//! process saw them.

use axum::Json;
use axum::extract::{Path, State};
use domain::application::ApplicationView;
use domain::session_logout::{DeliveryHealth, WindowHealth};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(of_instance))
        .routes(routes!(of_application))
}

/// How deliveries to an application went in one window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WindowBody {
    /// Deliveries the application acknowledged.
    pub sent: u64,
    /// Attempts that failed in a way that may recover (5xx, 429, timeouts, connection
    /// errors) and were scheduled again.
    pub retried: u64,
    /// Deliveries given up: refused, or out of attempts.
    pub failed: u64,
    /// Deliveries sent in the window whose latency was measured.
    pub latency_samples: u64,
    /// Median time from the session's end to the acknowledgement, in milliseconds; absent
    /// when nothing was sent in the window.
    pub latency_median_ms: Option<u64>,
    /// 99th percentile of that time, in milliseconds; absent when nothing was sent.
    pub latency_p99_ms: Option<u64>,
}

impl From<WindowHealth> for WindowBody {
    fn from(window: WindowHealth) -> Self {
        WindowBody {
            sent: window.sent,
            retried: window.retried,
            failed: window.failed,
            latency_samples: window.latency.as_ref().map_or(0, |latency| latency.samples),
            latency_median_ms: window.latency.as_ref().map(|latency| latency.median_ms),
            latency_p99_ms: window.latency.as_ref().map(|latency| latency.p99_ms),
        }
    }
}

/// How back-channel deliveries to one application went lately.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryHealthBody {
    /// The application.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Its back-channel logout URI now (absent when it has none).
    pub back_channel_logout_uri: Option<String>,
    /// The minute in progress and the 59 before it.
    pub last_hour: WindowBody,
    /// The minute in progress and the 1,439 before it.
    pub last_day: WindowBody,
    /// Attempts that failed in a row (retried or given up) since the application last
    /// acknowledged one.
    pub consecutive_failures: u64,
    /// Whether that run has reached `back_channel.alert_consecutive_failures`.
    pub alerting: bool,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// When that attempt started (RFC 3339).
    pub last_error_at: Option<String>,
    /// When the last acknowledged attempt started (RFC 3339).
    pub last_sent_at: Option<String>,
}

impl DeliveryHealthBody {
    fn new(app: &ApplicationView, health: DeliveryHealth, alert_after: u32) -> Self {
        DeliveryHealthBody {
            client_id: app.client_id.clone(),
            name: app.config.name.clone(),
            back_channel_logout_uri: app.config.back_channel_logout_uri.clone(),
            last_hour: health.last_hour.into(),
            last_day: health.last_day.into(),
            alerting: health.consecutive_failures >= u64::from(alert_after),
            consecutive_failures: health.consecutive_failures,
            last_error: health.last_error,
            last_error_at: health.last_error_at.map(|at| at.to_rfc3339()),
            last_sent_at: health.last_sent_at.map(|at| at.to_rfc3339()),
        }
    }
}

/// The health of an instance's applications.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryHealthList {
    /// Failed attempts in a row at which an application is `alerting`
    /// (`back_channel.alert_consecutive_failures`).
    pub alert_consecutive_failures: u32,
    /// Every application with a back-channel logout URI or with deliveries recorded, by
    /// client id.
    pub applications: Vec<DeliveryHealthBody>,
}

/// Shows how back-channel deliveries to each of the instance's applications went lately.
#[utoipa::path(
    get,
    path = "/back-channel-health",
    operation_id = "list_back_channel_health",
    tag = "back-channel logout",
    responses(
        (status = 200, description = "Every application with a back-channel logout URI or with deliveries recorded", body = DeliveryHealthList),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn of_instance(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> Result<Json<DeliveryHealthList>, ApiError> {
    let alert_after = state.settings.alert_consecutive_failures;
    let applications = state
        .domain
        .delivery_health_of_applications(&admin.instance_id)
        .await?
        .into_iter()
        .map(|(app, health)| DeliveryHealthBody::new(&app, health, alert_after))
        .collect();
    Ok(Json(DeliveryHealthList {
        alert_consecutive_failures: alert_after,
        applications,
    }))
}

/// Shows how back-channel deliveries to one application went lately.
#[utoipa::path(
    get,
    path = "/applications/{client_id}/back-channel-health",
    operation_id = "show_back_channel_health",
    tag = "back-channel logout",
    params(("client_id" = String, Path, description = "The application's client id")),
    responses(
        (status = 200, description = "The application's delivery health", body = DeliveryHealthBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such application in this instance", body = ErrorBody),
    )
)]
async fn of_application(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(client_id): Path<String>,
) -> Result<Json<DeliveryHealthBody>, ApiError> {
    let app = state
        .domain
        .application(&admin.instance_id, &client_id)
        .await?;
    let health = state
        .domain
        .delivery_health(&admin.instance_id, Some(&client_id))
        .await?
        .remove(&client_id)
        .unwrap_or_else(|| DeliveryHealth::unrecorded(&client_id));
    Ok(Json(DeliveryHealthBody::new(
        &app,
        health,
        state.settings.alert_consecutive_failures,
    )))
}
