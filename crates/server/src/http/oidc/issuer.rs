//! Which instance a request is for: found by the origin (scheme, host, port) it came in on.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use domain::{DomainError, InstanceView};

use crate::http::AppState;
use crate::http::error::ApiError;

/// The instance a request addresses (found by the origin it came in on).
pub struct Issuer {
    /// The instance.
    pub instance: InstanceView,
}

impl Issuer {
    /// What a session end caused by this request records as its origin, which becomes the
    /// logout tokens' `iss`: the instance's issuer. A request on one of the instance's own
    /// origins came in on exactly that URL; one with an unexpected `Host` (answered by the only
    /// instance there is) must not put that host into tokens relying parties then cannot
    /// verify.
    pub fn termination_origin(&self) -> &str {
        &self.instance.external_url
    }
}

/// The origin (`scheme://host[:port]`) a request came in on: the Host header with the scheme
/// of the configured external URL (TLS ends in front of us, so the socket cannot tell).
pub struct RequestOrigin(pub String);

impl FromRequestParts<AppState> for RequestOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| parts.uri.authority().map(|authority| authority.as_str()))
            .filter(|host| !host.is_empty() && host.chars().all(|c| c.is_ascii_graphic()))
            .ok_or_else(|| ApiError::Invalid {
                field: "Host".into(),
                message: "the request has no usable Host header".into(),
            })?;
        let scheme = if state.settings.https {
            "https"
        } else {
            "http"
        };
        Ok(RequestOrigin(format!(
            "{scheme}://{}",
            host.to_ascii_lowercase()
        )))
    }
}

impl FromRequestParts<AppState> for Issuer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let RequestOrigin(origin) = RequestOrigin::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match state.domain.instance_for_origin(&origin).await {
            Ok(instance) => Ok(Issuer { instance }),
            // A host no instance answers on: a plain 404 that names nothing of any instance
            // (no JSON error, no page in some instance's name).
            Err(DomainError::NotFound(_)) => Err((
                StatusCode::NOT_FOUND,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Not Found: no issuer answers on this host.\n",
            )
                .into_response()),
            Err(error) => Err(ApiError::from(error).into_response()),
        }
    }
}
