//! The one error type of the HTTP layer, rendered as JSON with a stable error code. Internal
//! details are logged, never shown.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::DomainError;
use serde::Serialize;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub enum ApiError {
    /// No or an unknown bearer token (RFC 6750).
    Unauthorized {
        /// Whether a token was presented (then it was invalid).
        token_presented: bool,
    },
    /// No or a wrong system token on the system API.
    SystemUnauthorized {
        /// Whether a token was presented (then it was wrong).
        token_presented: bool,
    },
    /// A request value is wrong; `field` names it.
    Invalid {
        /// The request field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The addressed thing does not exist.
    NotFound(String),
    /// Someone else changed the same thing at the same moment.
    Conflict(String),
    /// The server cannot answer right now.
    Unavailable(String),
    /// A failure that is not the client's fault.
    Internal(String),
}

/// The JSON body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// A stable code: `invalid_request`, `invalid_token`, `not_found`, `conflict`,
    /// `temporarily_unavailable` or `server_error`.
    pub error: &'a str,
    /// What went wrong, for a human.
    pub error_description: &'a str,
    /// The request field at fault, for `invalid_request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, description, field) = match &self {
            ApiError::Unauthorized {
                token_presented: false,
            } => (
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                "send an admin token as `Authorization: Bearer <token>`",
                None,
            ),
            ApiError::Unauthorized {
                token_presented: true,
            } => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the admin token is unknown or revoked",
                None,
            ),
            ApiError::SystemUnauthorized {
                token_presented: false,
            } => (
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                "send the system token (admin.system_token) as `Authorization: Bearer <token>`",
                None,
            ),
            ApiError::SystemUnauthorized {
                token_presented: true,
            } => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "that is not the system token; instance admin tokens do not work on the system API",
                None,
            ),
            ApiError::Invalid { field, message } => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                message.as_str(),
                Some(field.as_str()),
            ),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", what.as_str(), None),
            ApiError::Conflict(what) => (StatusCode::CONFLICT, "conflict", what.as_str(), None),
            ApiError::Unavailable(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                why.as_str(),
                None,
            ),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the server failed; see its log",
                    None,
                )
            }
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: code,
                error_description: description,
                field,
            }),
        )
            .into_response();
        let challenge = match self {
            ApiError::Unauthorized {
                token_presented: true,
            } => Some(r#"Bearer realm="portcullis-admin", error="invalid_token""#),
            ApiError::Unauthorized {
                token_presented: false,
            } => Some(r#"Bearer realm="portcullis-admin""#),
            ApiError::SystemUnauthorized {
                token_presented: true,
            } => Some(r#"Bearer realm="portcullis-system", error="invalid_token""#),
            ApiError::SystemUnauthorized {
                token_presented: false,
            } => Some(r#"Bearer realm="portcullis-system""#),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Invalid { field, reason } => ApiError::Invalid {
                field: field.into(),
                message: reason,
            },
            DomainError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            // Only the registration endpoints present these tokens, and they answer the
            // refusal themselves (RFC 6750); elsewhere it is a refused bearer token too.
            DomainError::Unauthorized(_) => ApiError::Unauthorized {
                token_presented: true,
            },
            DomainError::Conflict(error) => ApiError::Conflict(format!("{error}")),
            DomainError::StateConflict(reason) => ApiError::Conflict(reason),
            DomainError::Wait(error) => ApiError::Unavailable(error.to_string()),
            // The token endpoint answers these as `invalid_grant` itself; elsewhere they are
            // a bad request about the presented code or token.
            DomainError::Grant(rejection) => ApiError::Invalid {
                field: "grant".into(),
                message: rejection.to_string(),
            },
            other @ (DomainError::UnreadableEvent { .. } | DomainError::Store(_)) => {
                ApiError::Internal(other.to_string())
            }
        }
    }
}
