//! `/admin/v1/sessions/{session_id}/back-channel-deliveries` and
//! `/admin/v1/applications/{client_id}/back-channel-deliveries`: what became of the logout
//! notifications of a session or to an application.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use domain::session_logout::DeliveryView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::body::QueryParams;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The most deliveries one listing returns.
const MAX_LIMIT: u32 = 500;

/// The delivery routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(of_session))
        .routes(routes!(of_application))
}

/// One application's back-channel notification for one session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryBody {
    /// The session (the logout token's `sid`).
    pub session_id: String,
    /// The application (the logout token's `aud`).
    pub client_id: String,
    /// The application's back-channel logout URI when it was registered.
    pub uri: String,
    /// `registered` (the session is live), `pending`, `sent` or `failed`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// The issuer the logout token carries: the origin the session was ended on.
    pub triggered_at_origin: Option<String>,
    /// When the application was registered in the session (RFC 3339).
    pub registered_at: String,
    /// When the session ended (RFC 3339).
    pub ended_at: Option<String>,
    /// When the delivery was sent or given up (RFC 3339).
    pub settled_at: Option<String>,
}

impl From<DeliveryView> for DeliveryBody {
    fn from(view: DeliveryView) -> Self {
        DeliveryBody {
            session_id: view.session_id,
            client_id: view.client_id,
            uri: view.uri,
            state: view.state,
            attempts: view.attempts,
            last_error: view.last_error,
            triggered_at_origin: view.triggered_at_origin,
            registered_at: view.registered_at.to_rfc3339(),
            ended_at: view.ended_at.map(|at| at.to_rfc3339()),
            settled_at: view.settled_at.map(|at| at.to_rfc3339()),
        }
    }
}

/// A list of deliveries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// The deliveries.
    pub deliveries: Vec<DeliveryBody>,
}

fn list(views: Vec<DeliveryView>) -> Json<DeliveryList> {
    Json(DeliveryList {
        deliveries: views.into_iter().map(Into::into).collect(),
    })
}

/// Lists a session's back-channel deliveries.
#[utoipa::path(
    get,
    path = "/sessions/{session_id}/back-channel-deliveries",
    operation_id = "list_session_deliveries",
    tag = "back-channel logout",
    params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session's deliveries, by client id", body = DeliveryList),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn of_session(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(session_id): Path<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    let views = state
        .domain
        .deliveries_of_session(&admin.instance_id, &session_id)
        .await?;
    Ok(list(views))
}

/// Lists an application's back-channel deliveries, newest registration first.
#[utoipa::path(
    get,
    path = "/applications/{client_id}/back-channel-deliveries",
    operation_id = "list_application_deliveries",
    tag = "back-channel logout",
    params(
        ("client_id" = String, Path, description = "The application's client id"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 500, default 100)"),
    ),
    responses(
        (status = 200, description = "The application's deliveries", body = DeliveryList),
        (status = 400, description = "A query parameter is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
async fn of_application(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(client_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryList>, ApiError> {
    let params = QueryParams::parse(query.as_deref(), &["limit"])?;
    let limit = params.number("limit", 1, MAX_LIMIT, 100)?;
    state
        .domain
        .application(&admin.instance_id, &client_id)
        .await?;
    let views = state
        .domain
        .deliveries_of_client(&admin.instance_id, &client_id, limit)
        .await?;
    Ok(list(views))
}
