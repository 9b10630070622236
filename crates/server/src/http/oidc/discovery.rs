//! `/.well-known/openid-configuration` and the JWK set.

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use domain::Feature;
use jose::Algorithm;
use protocol::claims::JwsAlgorithm;
use protocol::discovery::{DiscoveryInput, EndpointPaths, ProviderMetadata};

use super::Issuer;
use crate::http::AppState;
use crate::http::error::ApiError;

/// The discovery document of the instance the request addresses.
pub async fn configuration(
    State(state): State<AppState>,
    issuer: Issuer,
) -> Result<Response, ApiError> {
    let instance_id = &issuer.instance.instance_id;
    let backchannel_logout = state
        .domain
        .feature(instance_id, Feature::BackChannelLogout)
        .await?
        .effective;
    let metadata = ProviderMetadata::build(DiscoveryInput {
        issuer: &issuer.instance.external_url,
        paths: &EndpointPaths::default(),
        signing_algs: &[
            JwsAlgorithm::RS256,
            JwsAlgorithm::ES256,
            JwsAlgorithm::EdDSA,
        ],
        backchannel_logout,
    })
    .map_err(|error| ApiError::Internal(format!("discovery document: {error}")))?;
    Ok((
        [(CONTENT_TYPE, "application/json")],
        metadata.to_json_body(),
    )
        .into_response())
}

/// The instance's published public keys (RFC 7517). Every algorithm discovery names has a key
/// here before any token is signed with it.
pub async fn keys(State(state): State<AppState>, issuer: Issuer) -> Result<Response, ApiError> {
    let instance_id = &issuer.instance.instance_id;
    for alg in Algorithm::ALL {
        state
            .keys
            .signer(instance_id, *alg)
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))?;
    }
    let keys = state
        .keys
        .instance_keys(instance_id)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(([(CACHE_CONTROL, "public, max-age=300")], Json(&keys.jwks)).into_response())
}
