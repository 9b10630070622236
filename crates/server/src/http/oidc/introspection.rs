//! Token introspection (RFC 7662) and revocation (RFC 7009), for authenticated clients and
//! only for their own tokens.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use domain::grant::{GrantSubject, TokenView};
use protocol::introspection::{IntrospectionRequest, IntrospectionResponse};
use protocol::revocation::RevocationRequest;
use protocol::scope::ScopeSet;

use super::Issuer;
use super::token::{authenticate_client, oauth_error};
use crate::http::AppState;

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
}

/// `POST /oauth/v2/introspect`
pub async fn introspect(
    State(state): State<AppState>,
    issuer: Issuer,
    headers: HeaderMap,
    body: String,
) -> Response {
    let authorization = authorization(&headers);
    let request = match IntrospectionRequest::parse(
        authorization,
        &protocol::params::parse_form_urlencoded(&body),
    ) {
        Ok(request) => request,
        Err(error) => return oauth_error(&error, authorization.is_some()),
    };
    let instance_id = &issuer.instance.instance_id;
    let client = match authenticate_client(&state, instance_id, &request.client).await {
        Ok(client) => client,
        Err(error) => return oauth_error(&error, authorization.is_some()),
    };
    let answer = match state.domain.token(instance_id, &request.token).await {
        // Another client's token is, to this client, as good as unknown.
        Ok(Some((view, true))) if view.client_id == client.client_id => {
            active(&view, &issuer.instance.external_url)
        }
        Ok(_) => IntrospectionResponse::inactive(),
        Err(error) => {
            tracing::error!(%error, "introspection failed");
            return oauth_error(
                &protocol::OAuthError::new(
                    protocol::ErrorCode::ServerError,
                    "introspection failed",
                ),
                false,
            );
        }
    };
    (
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
        ],
        answer.to_json_body(),
    )
        .into_response()
}

/// What an active token's introspection shows (RFC 7662 §2.2).
///
/// A client credentials token has no user and no session, so no `sid`; its `sub` is the
/// client_id, as RFC 9068 §2.2 says for tokens "obtained through grants where no resource owner
/// is involved, such as the client credentials grant" (RFC 7662 leaves `sub` open). The risk
/// of that choice, a client_id read as some user's `sub`, cannot arise here: client_ids are
/// UUIDs without dashes and user ids hyphenated UUIDs, so the two never share a value.
fn active(view: &TokenView, issuer: &str) -> IntrospectionResponse {
    let (sub, sid) = match &view.subject {
        GrantSubject::User {
            user_id,
            session_id,
            ..
        } => (user_id.clone(), Some(session_id.clone())),
        GrantSubject::Client => (view.client_id.clone(), None),
    };
    IntrospectionResponse {
        active: true,
        scope: Some(ScopeSet::from_tokens(view.scopes.iter())),
        client_id: Some(view.client_id.clone()),
        token_type: Some("Bearer".into()),
        exp: Some(view.expires_at.timestamp().max(0) as u64),
        sub: Some(sub),
        aud: Some(view.client_id.clone()),
        iss: Some(issuer.to_owned()),
        sid,
        ..IntrospectionResponse::default()
    }
}

/// `POST /oauth/v2/revoke`: revokes the grant the token belongs to; unknown tokens succeed too
/// (RFC 7009 §2.2).
pub async fn revoke(
    State(state): State<AppState>,
    issuer: Issuer,
    headers: HeaderMap,
    body: String,
) -> Response {
    let authorization = authorization(&headers);
    let request = match RevocationRequest::parse(
        authorization,
        &protocol::params::parse_form_urlencoded(&body),
    ) {
        Ok(request) => request,
        Err(error) => return oauth_error(&error, authorization.is_some()),
    };
    let instance_id = &issuer.instance.instance_id;
    let client = match authenticate_client(&state, instance_id, &request.client).await {
        Ok(client) => client,
        Err(error) => return oauth_error(&error, authorization.is_some()),
    };
    match state
        .domain
        .revoke_token(instance_id, &client.client_id, &request.token)
        .await
    {
        Ok(()) => (axum::http::StatusCode::OK, [(CACHE_CONTROL, "no-store")]).into_response(),
        Err(error) => {
            tracing::error!(%error, "revocation failed");
            oauth_error(
                &protocol::OAuthError::new(protocol::ErrorCode::ServerError, "revocation failed"),
                false,
            )
        }
    }
}
