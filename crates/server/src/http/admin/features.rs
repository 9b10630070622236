//! `/admin/v1/features`: read and set the instance's feature flags.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use domain::{Feature, FeatureState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The feature routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list))
        .routes(routes!(read, set, reset))
}

/// A feature as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeatureBody {
    /// The feature's name.
    pub name: String,
    /// The system value, from configuration.
    pub system: bool,
    /// The instance value, if set.
    pub instance: Option<bool>,
    /// The value in force.
    pub effective: bool,
}

impl From<FeatureState> for FeatureBody {
    fn from(state: FeatureState) -> Self {
        FeatureBody {
            name: state.feature.name().to_owned(),
            system: state.system,
            instance: state.instance,
            effective: state.effective,
        }
    }
}

/// The body of `GET /admin/v1/features`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeatureList {
    /// The instance the token administers.
    pub instance_id: String,
    /// Every feature.
    pub features: Vec<FeatureBody>,
}

/// The body of `PUT /admin/v1/features/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFeature {
    /// The instance value to set.
    pub enabled: bool,
}

/// The feature named `name`, or a 404 naming the known ones (the console parses names so too).
pub(crate) fn feature(name: &str) -> Result<Feature, ApiError> {
    Feature::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Feature::ALL.iter().map(|feature| feature.name()).collect();
        ApiError::NotFound(format!(
            "feature {name:?} does not exist; known features: {}",
            known.join(", ")
        ))
    })
}

/// Lists every feature's values for this instance.
#[utoipa::path(
    get,
    path = "/features",
    operation_id = "list_features",
    tag = "features",
    responses(
        (status = 200, description = "Every feature", body = FeatureList),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> Result<Json<FeatureList>, ApiError> {
    let features = state.domain.features(&admin.instance_id).await?;
    Ok(Json(FeatureList {
        instance_id: admin.instance_id,
        features: features.into_iter().map(Into::into).collect(),
    }))
}

/// Shows one feature's values.
#[utoipa::path(
    get,
    path = "/features/{name}",
    operation_id = "get_feature",
    tag = "features",
    params(("name" = String, Path, description = "The feature's name, e.g. `back_channel_logout`")),
    responses(
        (status = 200, description = "The feature", body = FeatureBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such feature", body = ErrorBody),
    )
)]
async fn read(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(name): Path<String>,
) -> Result<Json<FeatureBody>, ApiError> {
    Ok(Json(
        state
            .domain
            .feature(&admin.instance_id, feature(&name)?)
            .await?
            .into(),
    ))
}

/// Sets the feature's instance value.
#[utoipa::path(
    put,
    path = "/features/{name}",
    operation_id = "set_feature",
    tag = "features",
    params(("name" = String, Path, description = "The feature's name")),
    request_body = SetFeature,
    responses(
        (status = 200, description = "The feature", body = FeatureBody),
        (status = 400, description = "The body is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such feature", body = ErrorBody),
    )
)]
async fn set(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(name): Path<String>,
    body: Result<Json<SetFeature>, JsonRejection>,
) -> Result<Json<FeatureBody>, ApiError> {
    let feature = feature(&name)?;
    let Json(body) = body.map_err(|rejection| ApiError::Invalid {
        field: "enabled".into(),
        message: format!(
            "expected a JSON body like {{\"enabled\": true}}: {}",
            rejection.body_text()
        ),
    })?;
    Ok(Json(
        state
            .domain
            .set_feature(&admin, feature, body.enabled)
            .await?
            .into(),
    ))
}

/// Removes the feature's instance value, so the system value applies.
#[utoipa::path(
    delete,
    path = "/features/{name}",
    operation_id = "reset_feature",
    tag = "features",
    params(("name" = String, Path, description = "The feature's name")),
    responses(
        (status = 200, description = "The feature", body = FeatureBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such feature", body = ErrorBody),
    )
)]
async fn reset(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(name): Path<String>,
) -> Result<Json<FeatureBody>, ApiError> {
    Ok(Json(
        state
            .domain
            .reset_feature(&admin, feature(&name)?)
            .await?
            .into(),
    ))
}
