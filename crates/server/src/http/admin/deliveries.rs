//! Back-channel deliveries for admins: the instance-wide listing
//! (`/admin/v1/back-channel-deliveries`, filtered and paginated), those of a session or to an
//! application, one delivery with every attempt, and redelivery of one, of a session's, or of
//! an application's failed ones.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use domain::session_logout::{
    DeliveryCursor, DeliveryFilter, DeliveryStage, DeliveryView, Registration, SessionLogoutEvent,
};
use notify::back_channel::lifecycle::DeliveryState;
use notify::back_channel::{DomainDeliveries, Redeliver, Redelivered, RedeliveryError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::body::{JsonBody, QueryParams};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The most deliveries one listing returns.
const MAX_LIMIT: u32 = 500;

/// The delivery routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(of_instance))
        .routes(routes!(of_session))
        .routes(routes!(one))
        .routes(routes!(of_application))
        .routes(routes!(redeliver_one))
        .routes(routes!(redeliver_session))
        .routes(routes!(redeliver_application))
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
    /// `registered` (the session is live), `due`, `in_flight`, `retry_at` (see
    /// `next_attempt_at`), `sent` or `failed`.
    pub state: String,
    /// When a delivery waiting for a retry is attempted next (RFC 3339).
    pub next_attempt_at: Option<String>,
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
    /// Every attempt and redelivery request, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// One entry of a delivery's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// `attempt` or `redelivery_requested`.
    pub kind: String,
    /// When the attempt started, or the redelivery was asked (RFC 3339; absent for attempts
    /// recorded before attempts were kept).
    pub at: Option<String>,
    /// For an attempt: `sent`, `failed` or `retry_scheduled`.
    pub outcome: Option<String>,
    /// For an attempt: the HTTP status the application answered with.
    pub http_status: Option<u16>,
    /// For an attempt: the transport error or refusal, readable.
    pub error: Option<String>,
    /// For an attempt: how long it took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// For a retry: when the next attempt is made (RFC 3339).
    pub retry_at: Option<String>,
    /// For a redelivery: the id of the admin token that asked.
    pub requested_by: Option<String>,
}

impl HistoryEntry {
    fn of(event: &SessionLogoutEvent) -> Option<Self> {
        let blank = || HistoryEntry {
            kind: "attempt".into(),
            at: None,
            outcome: None,
            http_status: None,
            error: None,
            duration_ms: None,
            retry_at: None,
            requested_by: None,
        };
        let attempt =
            |outcome: &str, record: Option<&domain::session_logout::AttemptRecord>| HistoryEntry {
                outcome: Some(outcome.into()),
                at: record.map(|record| record.at.to_rfc3339()),
                http_status: record.and_then(|record| record.status),
                error: record.and_then(|record| record.error.clone()),
                duration_ms: record.map(|record| record.duration_ms),
                ..blank()
            };
        Some(match event {
            SessionLogoutEvent::Registered(_) => return None,
            SessionLogoutEvent::Sent(sent) => attempt("sent", sent.attempt.as_ref()),
            SessionLogoutEvent::Failed(failed) => HistoryEntry {
                error: failed
                    .attempt
                    .as_ref()
                    .and_then(|record| record.error.clone())
                    .or_else(|| Some(failed.reason.clone())),
                ..attempt("failed", failed.attempt.as_ref())
            },
            SessionLogoutEvent::RetryScheduled(retry) => HistoryEntry {
                retry_at: Some(retry.retry_at.to_rfc3339()),
                ..attempt("retry_scheduled", Some(&retry.attempt))
            },
            SessionLogoutEvent::RedeliveryRequested(asked) => HistoryEntry {
                kind: "redelivery_requested".into(),
                at: Some(asked.at.to_rfc3339()),
                requested_by: Some(asked.requested_by.clone()),
                ..blank()
            },
        })
    }
}

impl DeliveryBody {
    /// The body of `view`, whose state `deliveries` judges (claims held in memory count), with
    /// the history recorded in `registration`.
    pub fn new(
        view: DeliveryView,
        deliveries: &DomainDeliveries,
        registration: Option<&Registration>,
    ) -> Self {
        let history = registration
            .map(|registration| {
                registration
                    .history
                    .iter()
                    .filter_map(HistoryEntry::of)
                    .collect()
            })
            .unwrap_or_default();
        let state = deliveries.state_of(&view);
        let next_attempt_at = match &state {
            DeliveryState::RetryAt { at, .. } => Some(at.to_rfc3339()),
            _ => None,
        };
        DeliveryBody {
            session_id: view.session_id,
            client_id: view.client_id,
            uri: view.uri,
            state: state.name().to_owned(),
            next_attempt_at,
            attempts: view.attempts,
            last_error: view.last_error,
            triggered_at_origin: view.triggered_at_origin,
            registered_at: view.registered_at.to_rfc3339(),
            ended_at: view.ended_at.map(|at| at.to_rfc3339()),
            settled_at: view.settled_at.map(|at| at.to_rfc3339()),
            history,
        }
    }
}

/// A list of deliveries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// The deliveries.
    pub deliveries: Vec<DeliveryBody>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The deliveries' bodies, each with its history (one read of the sessions' events).
pub(crate) async fn bodies(
    state: &AppState,
    instance_id: &str,
    views: Vec<DeliveryView>,
) -> Result<Vec<DeliveryBody>, ApiError> {
    let mut sessions: Vec<String> = views.iter().map(|view| view.session_id.clone()).collect();
    sessions.sort();
    sessions.dedup();
    let logouts = state.domain.session_logouts(instance_id, &sessions).await?;
    let by_session: std::collections::HashMap<&str, &domain::session_logout::SessionLogout> =
        sessions.iter().map(String::as_str).zip(&logouts).collect();
    Ok(views
        .into_iter()
        .map(|view| {
            let registration = by_session
                .get(view.session_id.as_str())
                .and_then(|logout| logout.registrations.get(&view.client_id));
            DeliveryBody::new(view, &state.deliveries, registration)
        })
        .collect())
}

async fn list(
    state: &AppState,
    instance_id: &str,
    views: Vec<DeliveryView>,
) -> Result<Json<DeliveryList>, ApiError> {
    Ok(Json(DeliveryList {
        deliveries: bodies(state, instance_id, views).await?,
        next_cursor: None,
    }))
}

/// A cursor as the API shows it: `<registered ms>~<session id>~<client id>` (URL-safe).
pub(crate) fn encode_cursor(cursor: &DeliveryCursor) -> String {
    format!(
        "{}~{}~{}",
        cursor.registered_at_ms, cursor.session_id, cursor.client_id
    )
}

pub(crate) fn decode_cursor(raw: &str) -> Result<DeliveryCursor, ApiError> {
    let mut parts = raw.splitn(3, '~');
    let parsed = (|| {
        Some(DeliveryCursor {
            registered_at_ms: parts.next()?.parse().ok()?,
            session_id: parts.next()?.to_owned(),
            client_id: parts.next()?.to_owned(),
        })
    })();
    parsed.ok_or_else(|| ApiError::Invalid {
        field: "cursor".into(),
        message:
            "not a cursor this API gave out; pass `next_cursor` from the previous page as it was"
                .into(),
    })
}

/// The `state` filter: a lifecycle state as the API shows it, mapped to what is stored.
pub(crate) fn state_filter(
    raw: &str,
    filter: &mut DeliveryFilter,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    match raw {
        "registered" => filter.stage = Some(DeliveryStage::Registered),
        "sent" => filter.stage = Some(DeliveryStage::Sent),
        "failed" => filter.stage = Some(DeliveryStage::Failed),
        "unsettled" => filter.stage = Some(DeliveryStage::Due),
        "due" => {
            filter.stage = Some(DeliveryStage::Due);
            filter.next_attempt_by = Some(now);
        }
        "retry_at" => {
            filter.stage = Some(DeliveryStage::Due);
            filter.next_attempt_after = Some(now);
        }
        other => {
            return Err(ApiError::Invalid {
                field: "state".into(),
                message: format!(
                    "unknown state {other:?}; use registered, due, retry_at, unsettled (due, in flight or waiting for a retry), sent or failed"
                ),
            });
        }
    }
    Ok(())
}

/// Lists the instance's back-channel deliveries, newest registration first, with filters.
#[utoipa::path(
    get,
    path = "/back-channel-deliveries",
    operation_id = "list_deliveries",
    tag = "back-channel logout",
    params(
        ("state" = Option<String>, Query, description = "registered, due, retry_at, unsettled, sent or failed"),
        ("client_id" = Option<String>, Query, description = "Only this application's"),
        ("session_id" = Option<String>, Query, description = "Only this session's"),
        ("since" = Option<String>, Query, description = "Only those registered (signed in) at or after this time (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Only those registered before this time (RFC 3339)"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 500, default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of deliveries, each with its history", body = DeliveryList),
        (status = 400, description = "A query parameter is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn of_instance(
    State(state): State<AppState>,
    Admin(admin): Admin,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryList>, ApiError> {
    let params = QueryParams::parse(
        query.as_deref(),
        &[
            "state",
            "client_id",
            "session_id",
            "since",
            "until",
            "limit",
            "cursor",
        ],
    )?;
    let limit = params.number("limit", 1, MAX_LIMIT, 100)?;
    let mut filter = DeliveryFilter {
        client_id: params.text("client_id").map(str::to_owned),
        session_id: params.text("session_id").map(str::to_owned),
        registered_since: params.time("since")?,
        registered_before: params.time("until")?,
        ..DeliveryFilter::default()
    };
    if let Some(raw) = params.text("state") {
        state_filter(raw, &mut filter, state.domain.now())?;
    }
    let cursor = params.text("cursor").map(decode_cursor).transpose()?;
    let views = state
        .domain
        .deliveries_of_instance(&admin.instance_id, &filter, cursor.as_ref(), limit)
        .await?;
    let next_cursor = (views.len() == limit as usize)
        .then(|| {
            views
                .last()
                .map(|last| encode_cursor(&DeliveryCursor::after(last)))
        })
        .flatten();
    Ok(Json(DeliveryList {
        deliveries: bodies(&state, &admin.instance_id, views).await?,
        next_cursor,
    }))
}

/// Shows one delivery with every attempt.
#[utoipa::path(
    get,
    path = "/sessions/{session_id}/back-channel-deliveries/{client_id}",
    operation_id = "show_delivery",
    tag = "back-channel logout",
    params(
        ("session_id" = String, Path, description = "The session's id"),
        ("client_id" = String, Path, description = "The application's client id"),
    ),
    responses(
        (status = 200, description = "The delivery and its history", body = DeliveryBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
    )
)]
async fn one(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((session_id, client_id)): Path<(String, String)>,
) -> Result<Json<DeliveryBody>, ApiError> {
    let views: Vec<DeliveryView> = state
        .domain
        .deliveries_of_session(&admin.instance_id, &session_id)
        .await?
        .into_iter()
        .filter(|view| view.client_id == client_id)
        .collect();
    if views.is_empty() {
        return Err(ApiError::NotFound(format!(
            "session {session_id} has no back-channel delivery to application {client_id}"
        )));
    }
    let mut bodies = bodies(&state, &admin.instance_id, views).await?;
    Ok(Json(bodies.remove(0)))
}

/// What a redelivery did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RedeliveryBody {
    /// How many deliveries were queued again (each is sent with a freshly signed token).
    pub redelivered: usize,
    /// Deliveries left as they were, and why.
    pub skipped: Vec<SkippedBody>,
}

/// A delivery a redelivery left alone.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SkippedBody {
    /// The session.
    pub session_id: String,
    /// The application.
    pub client_id: String,
    /// Why it was not re-sent.
    pub reason: String,
}

impl From<Redelivered> for RedeliveryBody {
    fn from(done: Redelivered) -> Self {
        RedeliveryBody {
            redelivered: done.queued.len(),
            skipped: done
                .skipped
                .into_iter()
                .map(|skipped| SkippedBody {
                    session_id: skipped.session_id,
                    client_id: skipped.client_id,
                    reason: skipped.reason.to_string(),
                })
                .collect(),
        }
    }
}

async fn redeliver(
    state: &AppState,
    admin: &domain::AdminPrincipal,
    what: Redeliver,
) -> Result<(StatusCode, Json<RedeliveryBody>), ApiError> {
    let done = state
        .deliveries
        .redeliver(&admin.instance_id, &admin.token_id, &what)
        .await
        .map_err(|error| match error {
            RedeliveryError::NotFound(what) => ApiError::NotFound(what),
            RedeliveryError::Refused(reason) => ApiError::Conflict(reason.to_string()),
            RedeliveryError::Domain(error) => error.into(),
        })?;
    Ok((StatusCode::ACCEPTED, Json(done.into())))
}

/// Re-sends one delivery that failed or is waiting, with a freshly signed logout token.
#[utoipa::path(
    post,
    path = "/sessions/{session_id}/back-channel-deliveries/{client_id}/redeliver",
    operation_id = "redeliver_delivery",
    tag = "back-channel logout",
    params(
        ("session_id" = String, Path, description = "The session's id"),
        ("client_id" = String, Path, description = "The application's client id"),
    ),
    responses(
        (status = 202, description = "Queued; the notifier sends it now", body = RedeliveryBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such delivery in this instance", body = ErrorBody),
        (status = 409, description = "Already sent, the session is live, or an attempt is running", body = ErrorBody),
    )
)]
async fn redeliver_one(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((session_id, client_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<RedeliveryBody>), ApiError> {
    redeliver(
        &state,
        &admin,
        Redeliver::One {
            session_id,
            client_id,
        },
    )
    .await
}

/// Re-sends every delivery of a session that failed or is waiting.
#[utoipa::path(
    post,
    path = "/sessions/{session_id}/back-channel-deliveries/redeliver",
    operation_id = "redeliver_session_deliveries",
    tag = "back-channel logout",
    params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 202, description = "Queued; those that cannot be re-sent are listed as skipped", body = RedeliveryBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "The session has no deliveries in this instance", body = ErrorBody),
    )
)]
async fn redeliver_session(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(session_id): Path<String>,
) -> Result<(StatusCode, Json<RedeliveryBody>), ApiError> {
    redeliver(&state, &admin, Redeliver::Session { session_id }).await
}

/// Which failed deliveries of an application to re-send.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverFailed {
    /// Re-send those that failed at or after this time (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub failed_since: chrono::DateTime<chrono::Utc>,
}

/// Re-sends every delivery to an application that failed since a given time.
#[utoipa::path(
    post,
    path = "/applications/{client_id}/back-channel-deliveries/redeliver",
    operation_id = "redeliver_application_deliveries",
    tag = "back-channel logout",
    params(("client_id" = String, Path, description = "The application's client id")),
    request_body = RedeliverFailed,
    responses(
        (status = 202, description = "Queued", body = RedeliveryBody),
        (status = 400, description = "The body is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
async fn redeliver_application(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(client_id): Path<String>,
    JsonBody(body): JsonBody<RedeliverFailed>,
) -> Result<(StatusCode, Json<RedeliveryBody>), ApiError> {
    state
        .domain
        .application(&admin.instance_id, &client_id)
        .await?;
    redeliver(
        &state,
        &admin,
        Redeliver::FailedOfApplication {
            client_id,
            since: body.failed_since,
        },
    )
    .await
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
    list(&state, &admin.instance_id, views).await
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
    list(&state, &admin.instance_id, views).await
}
