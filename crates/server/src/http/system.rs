//! The system API under `/system/v1`: creates, lists, shows and removes instances (tenants).
//! It is authenticated by the one system token from configuration (`admin.system_token`),
//! never by an instance's admin token, and it is off (404 on every route) without one.
//!
//! It is not part of the admin API's OpenAPI document: that document describes what an
//! instance's admin token may do, and its clients must not be offered routes their token can
//! never open.

use std::time::Instant;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::{DomainError, InstanceView};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::AppState;
use super::admin::body::JsonBody;
use super::error::ApiError;

/// Where the system API lives.
pub const PREFIX: &str = "/system/v1";

/// The configured system token; its `Debug` never shows it.
#[derive(Clone)]
pub struct SystemToken(std::sync::Arc<str>);

impl SystemToken {
    /// Wraps the configured token.
    pub fn new(token: &str) -> Self {
        SystemToken(token.into())
    }

    /// Whether `presented` is the token, compared in constant time (a timing difference must
    /// not reveal how much of a guess was right).
    fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl std::fmt::Debug for SystemToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SystemToken(<redacted>)")
    }
}

/// The system API's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{PREFIX}/instances"),
            get(list_instances).post(create_instance),
        )
        .route(
            &format!("{PREFIX}/instances/{{instance_id}}"),
            get(show_instance).delete(remove_instance),
        )
}

/// A request made with the system token.
struct SystemAdmin;

impl FromRequestParts<AppState> for SystemAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // 404 rather than 401: no token can ever succeed, so a challenge would mislead.
        let Some(expected) = &state.settings.system_token else {
            return Err(ApiError::NotFound(
                "the system API is off: set admin.system_token (PORTCULLIS_ADMIN__SYSTEM_TOKEN, \
                 at least 24 characters) and restart the server"
                    .into(),
            ));
        };
        let mut values = parts.headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(ApiError::SystemUnauthorized {
                token_presented: false,
            });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(protocol::bearer::bearer_token)
            .ok_or(ApiError::SystemUnauthorized {
                token_presented: false,
            })?;
        if expected.matches(token) {
            Ok(SystemAdmin)
        } else {
            Err(ApiError::SystemUnauthorized {
                token_presented: true,
            })
        }
    }
}

/// An instance as the system API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct InstanceBody {
    /// Its id.
    pub instance_id: String,
    /// Its issuer: requests are routed to it by this URL's host.
    pub external_url: String,
    /// The name its pages show.
    pub display_name: String,
    /// Whether it is the instance created on first start (it cannot be removed).
    pub default: bool,
    /// `active`, or `removing` while its sessions are ended and their logouts delivered.
    pub state: String,
}

impl From<InstanceView> for InstanceBody {
    fn from(view: InstanceView) -> Self {
        InstanceBody {
            instance_id: view.instance_id,
            external_url: view.external_url,
            display_name: view.display_name,
            default: view.is_default,
            state: if view.removing { "removing" } else { "active" }.into(),
        }
    }
}

/// Every instance.
#[derive(Debug, Serialize, Deserialize)]
pub struct InstanceList {
    /// The default instance first, then by creation.
    pub instances: Vec<InstanceBody>,
}

/// `POST /system/v1/instances`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    /// Its issuer URL: absolute http(s), no query or fragment; a trailing slash is dropped.
    pub external_url: String,
    /// The name its pages show.
    pub display_name: String,
}

/// A created instance with its first admin token, shown only in this answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedInstance {
    /// The instance.
    pub instance: InstanceBody,
    /// Its first admin token; only its hash is stored, so store it now.
    pub admin_token: String,
}

async fn list_instances(
    State(state): State<AppState>,
    _: SystemAdmin,
) -> Result<Json<InstanceList>, ApiError> {
    let instances = state.domain.list_instances().await?;
    Ok(Json(InstanceList {
        instances: instances.into_iter().map(InstanceBody::from).collect(),
    }))
}

async fn create_instance(
    State(state): State<AppState>,
    _: SystemAdmin,
    JsonBody(request): JsonBody<CreateInstance>,
) -> Result<Response, ApiError> {
    let external_url =
        crate::config::normalize_external_url(request.external_url.trim()).map_err(|reason| {
            ApiError::Invalid {
                field: "external_url".into(),
                message: reason,
            }
        })?;
    let created = state
        .domain
        .create_instance(&external_url, &request.display_name)
        .await?;
    let location = format!("{PREFIX}/instances/{}", created.instance.instance_id);
    let mut response = (
        StatusCode::CREATED,
        Json(CreatedInstance {
            instance: created.instance.into(),
            admin_token: created.admin_token,
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

async fn show_instance(
    State(state): State<AppState>,
    _: SystemAdmin,
    Path(instance_id): Path<String>,
) -> Result<Json<InstanceBody>, ApiError> {
    Ok(Json(state.domain.instance(&instance_id).await?.into()))
}

/// Removes an instance: it stops answering at once; its live sessions are ended (their
/// applications told with its issuer); once every delivery settled it is gone (204). If that
/// takes longer than the configured wait, the answer is 202 with the instance `removing`, and
/// the removal finishes in the background.
async fn remove_instance(
    State(state): State<AppState>,
    _: SystemAdmin,
    Path(instance_id): Path<String>,
) -> Result<Response, ApiError> {
    state.domain.start_instance_removal(&instance_id).await?;
    state.sign_out_wake.notify_one();
    let deadline = Instant::now() + state.settings.instance_removal_wait;
    loop {
        match state.domain.instance(&instance_id).await {
            Err(DomainError::NotFound(_)) => return Ok(StatusCode::NO_CONTENT.into_response()),
            Err(other) => return Err(other.into()),
            Ok(instance) if Instant::now() >= deadline => {
                return Ok(
                    (StatusCode::ACCEPTED, Json(InstanceBody::from(instance))).into_response()
                );
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}
