//! `/admin/v1/admin-tokens`: issue, list and revoke the bearer tokens of this API. A token is
//! shown once, when issued; a token cannot revoke itself, so one live token always remains.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use domain::AdminTokenView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::body::{JsonBody, QueryParams};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The admin token routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

/// An admin token as listings show it: never the token or its hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminTokenBody {
    /// The token's id.
    pub token_id: String,
    /// What the token is for.
    pub description: String,
    /// Whether it was revoked.
    pub revoked: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl From<AdminTokenView> for AdminTokenBody {
    fn from(view: AdminTokenView) -> Self {
        AdminTokenBody {
            token_id: view.token_id,
            description: view.description,
            revoked: view.revoked,
            created_at: view.created_at,
        }
    }
}

/// The body of `POST /admin-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminToken {
    /// What the token is for (1 to 200 characters).
    pub description: String,
}

/// A newly issued token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedAdminToken {
    /// The bearer token, in clear; store it now, it cannot be read again.
    pub token: String,
    /// Its listing entry.
    #[serde(flatten)]
    pub admin_token: AdminTokenBody,
}

/// The instance's admin tokens.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminTokenList {
    /// Oldest first.
    pub admin_tokens: Vec<AdminTokenBody>,
}

/// Issues an admin token for this instance.
#[utoipa::path(
    post,
    path = "/admin-tokens",
    operation_id = "create_admin_token",
    tag = "admin-tokens",
    request_body = CreateAdminToken,
    responses(
        (status = 201, description = "Issued; `token` is shown only now", body = CreatedAdminToken),
        (status = 400, description = "The description is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<CreateAdminToken>,
) -> Result<impl IntoResponse, ApiError> {
    let issued = state
        .domain
        .add_admin_token(&admin, &body.description)
        .await?;
    let location = format!("/admin/v1/admin-tokens/{}", issued.view.token_id);
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        Json(CreatedAdminToken {
            token: issued.token,
            admin_token: issued.view.into(),
        }),
    ))
}

/// Lists this instance's admin tokens.
#[utoipa::path(
    get,
    path = "/admin-tokens",
    operation_id = "list_admin_tokens",
    tag = "admin-tokens",
    params(("include_revoked" = Option<bool>, Query, description = "Also list revoked tokens (default false)")),
    responses(
        (status = 200, description = "The tokens", body = AdminTokenList),
        (status = 400, description = "A query parameter is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    Admin(admin): Admin,
    RawQuery(query): RawQuery,
) -> Result<Json<AdminTokenList>, ApiError> {
    let include_revoked =
        QueryParams::parse(query.as_deref(), &["include_revoked"])?.flag("include_revoked")?;
    let tokens = state
        .domain
        .admin_tokens(&admin.instance_id, include_revoked)
        .await?;
    Ok(Json(AdminTokenList {
        admin_tokens: tokens.into_iter().map(Into::into).collect(),
    }))
}

/// Revokes an admin token; revoking a revoked token succeeds. The token making the request
/// cannot revoke itself (400, field `token_id`).
#[utoipa::path(
    delete,
    path = "/admin-tokens/{token_id}",
    operation_id = "revoke_admin_token",
    tag = "admin-tokens",
    params(("token_id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The token tried to revoke itself", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    )
)]
async fn revoke(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(token_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.domain.revoke_admin_token(&admin, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
