//! Which instance a request is for: found by the origin (scheme, host, port) it came in on.

use axum::extract::FromRequestParts;
use axum::http::header::HOST;
use axum::http::request::Parts;
use domain::InstanceView;

use crate::http::AppState;
use crate::http::error::ApiError;

/// The instance a request addresses, and the origin it came in on.
pub struct Issuer {
    /// The instance.
    pub instance: InstanceView,
    /// `scheme://host[:port]` of the request, as recorded on session ends.
    pub origin: String,
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
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let RequestOrigin(origin) = RequestOrigin::from_request_parts(parts, state).await?;
        let instance = state.domain.instance_for_origin(&origin).await?;
        Ok(Issuer { instance, origin })
    }
}
