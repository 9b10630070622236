//! `/admin/v1/sessions` and `/admin/v1/users/{user_id}/sessions`: see and end browser
//! sessions. Each end is recorded with the origin the request came in on, which becomes the
//! issuer of the back-channel logout tokens it causes.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use domain::{SessionView, TerminationReason};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, instance_issuer};
use super::body::QueryParams;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The session routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(of_user, sign_out_user))
        .routes(routes!(terminate))
}

/// A browser session as the API shows it (never its cookie or the cookie's hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionBody {
    /// The session id (the `sid` claim).
    pub session_id: String,
    /// Who signed in.
    pub user_id: String,
    /// When the user authenticated (RFC 3339).
    pub auth_time: String,
    /// When the session ends at the latest (RFC 3339).
    pub expires_at: String,
    /// The browser's User-Agent.
    pub user_agent: Option<String>,
    /// Whether it ended.
    pub terminated: bool,
}

impl From<SessionView> for SessionBody {
    fn from(view: SessionView) -> Self {
        SessionBody {
            session_id: view.session_id,
            user_id: view.user_id,
            auth_time: view.auth_time,
            expires_at: view.expires_at,
            user_agent: view.user_agent,
            terminated: view.terminated,
        }
    }
}

/// A user's sessions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    /// Oldest first.
    pub sessions: Vec<SessionBody>,
}

/// How many sessions a sign-out ended.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedOut {
    /// The number of live sessions that were ended.
    pub terminated: usize,
}

/// Lists a user's sessions.
#[utoipa::path(
    get,
    path = "/users/{user_id}/sessions",
    operation_id = "list_user_sessions",
    tag = "sessions",
    params(
        ("user_id" = String, Path, description = "The user's id"),
        ("include_ended" = Option<bool>, Query, description = "Also list ended sessions (default false)"),
    ),
    responses(
        (status = 200, description = "The user's sessions", body = SessionList),
        (status = 400, description = "A query parameter is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn of_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<SessionList>, ApiError> {
    let include_ended =
        QueryParams::parse(query.as_deref(), &["include_ended"])?.flag("include_ended")?;
    state.domain.user(&admin.instance_id, &user_id).await?;
    let sessions = state
        .domain
        .sessions_of_user(&admin.instance_id, &user_id, include_ended)
        .await?;
    Ok(Json(SessionList {
        sessions: sessions.into_iter().map(Into::into).collect(),
    }))
}

/// Signs a user out of every session.
#[utoipa::path(
    delete,
    path = "/users/{user_id}/sessions",
    operation_id = "sign_out_user",
    tag = "sessions",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "How many sessions were ended", body = SignedOut),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn sign_out_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
) -> Result<Json<SignedOut>, ApiError> {
    let origin = instance_issuer(&state, &admin).await?;
    state.domain.user(&admin.instance_id, &user_id).await?;
    let terminated = state
        .domain
        .sign_out_user(
            &admin.instance_id,
            &user_id,
            TerminationReason::Admin,
            &origin,
            &admin.token_id,
        )
        .await?;
    Ok(Json(SignedOut { terminated }))
}

/// Ends one session; ending an ended session succeeds.
#[utoipa::path(
    delete,
    path = "/sessions/{session_id}",
    operation_id = "terminate_session",
    tag = "sessions",
    params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
    )
)]
async fn terminate(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(session_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let origin = instance_issuer(&state, &admin).await?;
    state
        .domain
        .terminate_session(
            &admin.instance_id,
            &session_id,
            TerminationReason::Admin,
            &origin,
            &admin.token_id,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
