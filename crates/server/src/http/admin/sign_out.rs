//! `/admin/v1/sign-out-everyone`: end every live session of the token's instance at once (for
//! incident response), in the background, and follow its progress.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::instance_sign_out::SignOutProgress;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, instance_issuer};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The sign-out-everyone routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(start, list))
        .routes(routes!(show))
}

/// A "sign out everyone" operation and how far it got.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignOutBody {
    /// The operation's id.
    pub operation_id: String,
    /// `running` while sessions are being ended, then `completed`.
    pub state: String,
    /// The id of the admin token that asked.
    pub requested_by: String,
    /// When it began (RFC 3339); sessions that began later are not ended by it.
    pub started_at: String,
    /// When the last session was ended (RFC 3339).
    pub finished_at: Option<String>,
    /// Sessions ended so far.
    pub sessions_ended: u64,
    /// Sessions that were live when it began.
    pub sessions_total: u64,
    /// Logout notifications to the ended sessions' applications that were acknowledged.
    pub deliveries_sent: u64,
    /// Notifications given up.
    pub deliveries_failed: u64,
    /// Notifications still being sent (due, in flight or waiting for a retry).
    pub deliveries_pending: u64,
}

impl From<SignOutProgress> for SignOutBody {
    fn from(progress: SignOutProgress) -> Self {
        let SignOutProgress {
            operation,
            deliveries,
        } = progress;
        SignOutBody {
            state: if operation.running() {
                "running"
            } else {
                "completed"
            }
            .into(),
            operation_id: operation.started.operation_id,
            requested_by: operation.started.requested_by,
            started_at: operation.started.started_at.to_rfc3339(),
            finished_at: operation.finished_at.map(|at| at.to_rfc3339()),
            sessions_ended: operation.ended,
            sessions_total: operation.started.total,
            deliveries_sent: deliveries.sent,
            deliveries_failed: deliveries.failed,
            deliveries_pending: deliveries.pending,
        }
    }
}

/// The instance's operations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignOutList {
    /// Newest first, each with its progress.
    pub operations: Vec<SignOutBody>,
}

/// Starts ending every live session of the instance; each session's applications are told.
#[utoipa::path(
    post,
    path = "/sign-out-everyone",
    operation_id = "sign_out_everyone",
    tag = "sessions",
    responses(
        (status = 202, description = "Started; it runs in the background", body = SignOutBody),
        (status = 200, description = "One was running already: that one", body = SignOutBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn start(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> Result<(StatusCode, Json<SignOutBody>), ApiError> {
    let origin = instance_issuer(&state, &admin).await?;
    let (operation, started) = state.domain.sign_out_everyone(&admin, &origin).await?;
    if started {
        state.sign_out_wake.notify_one();
    }
    let progress = state
        .domain
        .progress_of(&admin.instance_id, operation)
        .await?;
    let status = if started {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(progress.into())))
}

/// Lists the instance's sign-out-everyone operations, newest first.
#[utoipa::path(
    get,
    path = "/sign-out-everyone",
    operation_id = "list_sign_out_everyone",
    tag = "sessions",
    responses(
        (status = 200, description = "The operations", body = SignOutList),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> Result<Json<SignOutList>, ApiError> {
    let mut operations = Vec::new();
    for operation in state.domain.sign_out_operations(&admin.instance_id).await? {
        let progress = state
            .domain
            .progress_of(&admin.instance_id, operation)
            .await?;
        operations.push(progress.into());
    }
    Ok(Json(SignOutList { operations }))
}

/// Shows one operation's progress.
#[utoipa::path(
    get,
    path = "/sign-out-everyone/{operation_id}",
    operation_id = "show_sign_out_everyone",
    tag = "sessions",
    params(("operation_id" = String, Path, description = "The operation's id")),
    responses(
        (status = 200, description = "Its progress", body = SignOutBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such operation in this instance", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(operation_id): Path<String>,
) -> Result<Json<SignOutBody>, ApiError> {
    let progress = state
        .domain
        .sign_out_progress(&admin.instance_id, &operation_id)
        .await?;
    Ok(Json(progress.into()))
}
