//! `/admin/v1/registration-tokens`: initial access tokens for Dynamic Client Registration
//! (RFC 7591 §3). Issue one (shown once) with an expiry and, optionally, for one registration
//! only; list them with the clients each registered; revoke one (its clients stay).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use domain::registration_token::RegistrationTokenView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::body::JsonBody;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The initial access token routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

/// An initial access token as listings show it: never the token or its hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegistrationTokenBody {
    /// The token's id.
    pub token_id: String,
    /// What the token is for.
    pub description: String,
    /// When it was issued (RFC 3339).
    pub created_at: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
    /// Whether it is good for one registration only.
    pub one_time: bool,
    /// The client_ids registered with it.
    pub used_by: Vec<String>,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl From<RegistrationTokenView> for RegistrationTokenBody {
    fn from(view: RegistrationTokenView) -> Self {
        RegistrationTokenBody {
            token_id: view.token_id,
            description: view.description,
            created_at: view.created_at.to_rfc3339(),
            expires_at: view.expires_at.to_rfc3339(),
            one_time: view.one_time,
            used_by: view.used_by,
            revoked: view.revoked,
        }
    }
}

/// The body of `POST /registration-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegistrationToken {
    /// What (or whom) the token is for (1 to 200 characters).
    pub description: String,
    /// How long it works, in seconds (1 to 7776000, 90 days; default 86400, a day).
    #[serde(default = "one_day")]
    pub expires_in_secs: u64,
    /// Good for one registration only (default false).
    #[serde(default)]
    pub one_time: bool,
}

fn one_day() -> u64 {
    86_400
}

/// A newly issued initial access token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedRegistrationToken {
    /// The token, in clear; hand it to the client's developer now, it cannot be read again.
    pub token: String,
    /// Its listing entry.
    #[serde(flatten)]
    pub registration_token: RegistrationTokenBody,
}

/// The instance's initial access tokens.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegistrationTokenList {
    /// Oldest first, revoked and expired ones included.
    pub registration_tokens: Vec<RegistrationTokenBody>,
}

/// Issues an initial access token for Dynamic Client Registration.
#[utoipa::path(
    post,
    path = "/registration-tokens",
    operation_id = "create_registration_token",
    tag = "registration-tokens",
    request_body = CreateRegistrationToken,
    responses(
        (status = 201, description = "Issued; `token` is shown only now", body = CreatedRegistrationToken),
        (status = 400, description = "The description or lifetime is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<CreateRegistrationToken>,
) -> Result<impl IntoResponse, ApiError> {
    let issued = state
        .domain
        .issue_registration_token(
            &admin,
            &body.description,
            body.expires_in_secs,
            body.one_time,
        )
        .await?;
    let location = format!("/admin/v1/registration-tokens/{}", issued.view.token_id);
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        Json(CreatedRegistrationToken {
            token: issued.token,
            registration_token: issued.view.into(),
        }),
    ))
}

/// Lists this instance's initial access tokens.
#[utoipa::path(
    get,
    path = "/registration-tokens",
    operation_id = "list_registration_tokens",
    tag = "registration-tokens",
    responses(
        (status = 200, description = "The tokens", body = RegistrationTokenList),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> Result<Json<RegistrationTokenList>, ApiError> {
    let tokens = state.domain.registration_tokens(&admin.instance_id).await?;
    Ok(Json(RegistrationTokenList {
        registration_tokens: tokens.into_iter().map(Into::into).collect(),
    }))
}

/// Revokes an initial access token; revoking a revoked token succeeds. Clients it registered
/// stay registered.
#[utoipa::path(
    delete,
    path = "/registration-tokens/{token_id}",
    operation_id = "revoke_registration_token",
    tag = "registration-tokens",
    params(("token_id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    )
)]
async fn revoke(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(token_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .domain
        .revoke_registration_token(&admin, &token_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
