//! The UserInfo endpoint (OIDC Core §5.3): the standard claims the access token's scopes
//! release, for a bearer token presented per RFC 6750 (header, or a form-encoded POST body).

use axum::Json;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::bearer::{BearerError, PresentedCredentials, presented_token};
use protocol::claims::StandardClaims;
use protocol::scope::ScopeSet;

use super::Issuer;
use crate::http::{AppState, media_type};

fn bearer_error(status: StatusCode, code: &'static str, description: &str) -> Response {
    let challenge = format!("Bearer error=\"{code}\", error_description=\"{description}\"");
    let mut response = (
        status,
        Json(serde_json::json!({ "error": code, "error_description": description })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// `GET` or `POST /oidc/v1/userinfo`
pub async fn userinfo(
    State(state): State<AppState>,
    issuer: Issuer,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    let is_form = media_type(&headers).as_deref() == Some("application/x-www-form-urlencoded");
    let form =
        (method == Method::POST && is_form).then(|| protocol::params::parse_form_urlencoded(&body));
    let presented = presented_token(PresentedCredentials {
        authorization: headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok()),
        form_body: form.as_deref(),
    });
    let token = match presented {
        Ok(token) => token,
        Err(BearerError::Missing) => {
            let mut response = (StatusCode::UNAUTHORIZED, "").into_response();
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        Err(BearerError::InvalidRequest(description)) => {
            return bearer_error(StatusCode::BAD_REQUEST, "invalid_request", &description);
        }
    };
    let instance_id = &issuer.instance.instance_id;
    let view = match state.domain.token(instance_id, token).await {
        Ok(Some((view, true))) if view.kind == domain::grant::TokenKind::Access => view,
        Ok(_) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token is invalid or expired",
            );
        }
        Err(error) => {
            tracing::error!(%error, "userinfo lookup failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({ "error": "server_error" })),
            )
                .into_response();
        }
    };
    // A client credentials token speaks for the client alone: there is no user to describe.
    // RFC 6750 §3.1: a token that cannot be used here is `invalid_token`, 401.
    let Some(user_id) = view.user_id() else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token was issued to a client for itself and has no user",
        );
    };
    let scope = ScopeSet::from_tokens(view.scopes.iter());
    if !scope.contains("openid") {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the access token was not granted the openid scope",
        );
    }
    let user = match state.domain.user(instance_id, user_id).await {
        Ok(user) => user,
        Err(_) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the user no longer exists",
            );
        }
    };
    let name = match (&user.profile.given_name, &user.profile.family_name) {
        (Some(given), Some(family)) => Some(format!("{given} {family}")),
        (Some(only), None) | (None, Some(only)) => Some(only.clone()),
        (None, None) => None,
    };
    let claims = StandardClaims {
        name,
        given_name: user.profile.given_name.clone(),
        family_name: user.profile.family_name.clone(),
        preferred_username: Some(user.username.clone()),
        email: user.profile.email.clone(),
        email_verified: user
            .profile
            .email
            .as_ref()
            .map(|_| user.profile.email_verified),
        ..StandardClaims::default()
    };
    Json(claims.released_for(&user.user_id, &scope)).into_response()
}
