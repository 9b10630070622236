//! `/admin/v1/features`: read and set the instance's feature flags.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use domain::{Feature, FeatureState};
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use crate::http::AppState;
use crate::http::error::ApiError;

/// The feature routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/features", get(list))
        .route("/features/{name}", get(read).put(set).delete(reset))
}

/// A feature as the API shows it.
#[derive(Debug, Serialize)]
pub struct FeatureBody {
    /// The feature's name.
    pub name: &'static str,
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
            name: state.feature.name(),
            system: state.system,
            instance: state.instance,
            effective: state.effective,
        }
    }
}

/// The body of `GET /admin/v1/features`.
#[derive(Debug, Serialize)]
pub struct FeatureList {
    /// The instance the token administers.
    pub instance_id: String,
    /// Every feature.
    pub features: Vec<FeatureBody>,
}

/// The body of `PUT /admin/v1/features/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetFeature {
    /// The instance value to set.
    pub enabled: bool,
}

fn feature(name: &str) -> Result<Feature, ApiError> {
    Feature::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Feature::ALL.iter().map(|feature| feature.name()).collect();
        ApiError::NotFound(format!(
            "feature {name:?} does not exist; known features: {}",
            known.join(", ")
        ))
    })
}

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
