//! `/admin/v1/applications`: OIDC applications (clients). A client secret is shown once, when
//! it is made; only its hash is stored and no response ever carries the hash.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use domain::application::ApplicationView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::application_settings::{ApplicationConfig, ApplicationSettings};
use super::auth::Admin;
use super::body::{JsonBody, QueryParams};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The application routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create, list))
        .routes(routes!(show, replace, remove))
        .routes(routes!(new_secret))
}

/// An application as the API shows it: settings and identifiers, never the secret's hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicationBody {
    /// The OAuth client_id.
    pub client_id: String,
    /// Whether the client has a secret (confidential clients).
    pub has_client_secret: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Its settings.
    #[serde(flatten)]
    pub config: ApplicationConfig,
}

impl From<ApplicationView> for ApplicationBody {
    fn from(view: ApplicationView) -> Self {
        ApplicationBody {
            client_id: view.client_id,
            has_client_secret: view.client_secret_hash.is_some(),
            created_at: view.created_at,
            config: view.config.into(),
        }
    }
}

/// The answer to creating an application: the application and, for a confidential client,
/// its secret (shown only here).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApplication {
    /// The client secret, in clear; store it now, it cannot be read again.
    pub client_secret: Option<String>,
    /// The application.
    #[serde(flatten)]
    pub application: ApplicationBody,
}

/// A page of applications.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicationList {
    /// Applications ordered by client_id.
    pub applications: Vec<ApplicationBody>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// A newly generated client secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewClientSecret {
    /// The application.
    pub client_id: String,
    /// The new secret, in clear; the old one stops working now.
    pub client_secret: String,
}

/// Creates an application.
#[utoipa::path(
    post,
    path = "/applications",
    operation_id = "create_application",
    tag = "applications",
    request_body = ApplicationSettings,
    responses(
        (status = 201, description = "Created; `client_secret` is shown only now", body = CreatedApplication),
        (status = 400, description = "A setting is wrong; `field` names it", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(settings): JsonBody<ApplicationSettings>,
) -> Result<impl IntoResponse, ApiError> {
    let (view, client_secret) = state
        .domain
        .add_application(&admin, settings.into_config())
        .await?;
    let location = format!("/admin/v1/applications/{}", view.client_id);
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        Json(CreatedApplication {
            client_secret,
            application: view.into(),
        }),
    ))
}

/// Lists applications, a page at a time.
#[utoipa::path(
    get,
    path = "/applications",
    operation_id = "list_applications",
    tag = "applications",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 500 (default 100)"),
        ("after" = Option<String>, Query, description = "Start after this client_id (`next_after` of the previous page)"),
    ),
    responses(
        (status = 200, description = "A page of applications", body = ApplicationList),
        (status = 400, description = "A query parameter is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    Admin(admin): Admin,
    RawQuery(query): RawQuery,
) -> Result<Json<ApplicationList>, ApiError> {
    let query = QueryParams::parse(query.as_deref(), &["limit", "after"])?;
    let limit = query.number("limit", 1, 500, 100)?;
    let after = query.text("after").unwrap_or_default();
    let applications = state
        .domain
        .applications(&admin.instance_id, after, limit)
        .await?;
    let next_after = (applications.len() == limit as usize)
        .then(|| applications.last().map(|app| app.client_id.clone()))
        .flatten();
    Ok(Json(ApplicationList {
        applications: applications.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

/// Shows one application.
#[utoipa::path(
    get,
    path = "/applications/{client_id}",
    operation_id = "get_application",
    tag = "applications",
    params(("client_id" = String, Path, description = "The application's client_id")),
    responses(
        (status = 200, description = "The application", body = ApplicationBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(client_id): Path<String>,
) -> Result<Json<ApplicationBody>, ApiError> {
    let view = state
        .domain
        .application(&admin.instance_id, &client_id)
        .await?;
    Ok(Json(view.into()))
}

/// Replaces an application's settings; omitted fields take their defaults. The client type
/// cannot change.
#[utoipa::path(
    put,
    path = "/applications/{client_id}",
    operation_id = "replace_application",
    tag = "applications",
    params(("client_id" = String, Path, description = "The application's client_id")),
    request_body = ApplicationSettings,
    responses(
        (status = 200, description = "The changed application", body = ApplicationBody),
        (status = 400, description = "A setting is wrong; `field` names it", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
async fn replace(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(client_id): Path<String>,
    JsonBody(settings): JsonBody<ApplicationSettings>,
) -> Result<Json<ApplicationBody>, ApiError> {
    let view = state
        .domain
        .change_application(&admin, &client_id, settings.into_config())
        .await?;
    Ok(Json(view.into()))
}

/// Removes an application.
#[utoipa::path(
    delete,
    path = "/applications/{client_id}",
    operation_id = "remove_application",
    tag = "applications",
    params(("client_id" = String, Path, description = "The application's client_id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
async fn remove(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.domain.remove_application(&admin, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a confidential application's secret; the new one is shown only now.
#[utoipa::path(
    post,
    path = "/applications/{client_id}/secret",
    operation_id = "regenerate_client_secret",
    tag = "applications",
    params(("client_id" = String, Path, description = "The application's client_id")),
    responses(
        (status = 200, description = "The new secret, shown only now", body = NewClientSecret),
        (status = 400, description = "A public client has no secret", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
async fn new_secret(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(client_id): Path<String>,
) -> Result<Json<NewClientSecret>, ApiError> {
    let client_secret = state
        .domain
        .regenerate_client_secret(&admin, &client_id)
        .await?;
    Ok(Json(NewClientSecret {
        client_id,
        client_secret,
    }))
}
