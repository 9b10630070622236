//! The authorization endpoint (OIDC Core §3.1.2): validates the request, signs the user in if
//! needed (single sign-on through the session cookie), and answers with a code.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::CookieJar;
use domain::CodeRequest;
use protocol::authorize::{AuthorizeError, Prompt, requested_client_id, validate};
use protocol::response::{self, AuthorizationResponse};
use protocol::{ErrorCode, OAuthError};

use super::session::{SESSION_COOKIE, current_session};
use super::{Issuer, client, page};
use crate::http::AppState;

/// `GET /oauth/v2/authorize`
pub async fn get(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = protocol::params::parse_form_urlencoded(query.as_deref().unwrap_or_default());
    authorize(state, issuer, jar, raw).await
}

/// `POST /oauth/v2/authorize` (form-encoded, OIDC Core §3.1.2.1)
pub async fn post(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    body: String,
) -> Response {
    let raw = protocol::params::parse_form_urlencoded(&body);
    authorize(state, issuer, jar, raw).await
}

/// Sends an authorization response: a redirect, or the auto-submitting form_post page.
fn deliver(response: AuthorizationResponse) -> Response {
    match response {
        AuthorizationResponse::Redirect { location } => {
            (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
        }
        AuthorizationResponse::FormPost { html } => Html(html).into_response(),
    }
}

fn server_error(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "authorization request failed");
    page::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server failed; please try again later.",
    )
}

async fn authorize(
    state: AppState,
    issuer: Issuer,
    jar: CookieJar,
    raw: Vec<(String, String)>,
) -> Response {
    let instance = &issuer.instance;
    let application = match requested_client_id(&raw) {
        Ok(client_id) => match state
            .domain
            .application(&instance.instance_id, client_id)
            .await
        {
            Ok(application) => Some(application),
            Err(domain::DomainError::NotFound(_)) => None,
            Err(error) => return server_error(error),
        },
        Err(_) => None,
    };
    let policy = application
        .as_ref()
        .map(|app| client::policy(&app.client_id, &app.config));
    let request = match validate(&raw, policy.as_ref()) {
        Ok(request) => request,
        Err(AuthorizeError::MustNotRedirect(reason)) => {
            return page::error(
                StatusCode::BAD_REQUEST,
                "This sign-in link is not valid",
                reason.description(),
            );
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            response_mode,
            state: request_state,
            error,
        }) => {
            return deliver(response::error(
                &instance.external_url,
                &redirect_uri,
                response_mode,
                request_state.as_deref(),
                &error,
            ));
        }
    };
    let redirect_error = |error: OAuthError| {
        deliver(response::error(
            &instance.external_url,
            &request.redirect_uri,
            request.response_mode,
            request.state.as_deref(),
            &error,
        ))
    };

    let session = match current_session(&state, &instance.instance_id, &jar).await {
        Ok(session) => session,
        Err(error) => return server_error(error),
    };
    let now = state.domain.now();
    let fresh_enough = |auth_time: chrono::DateTime<chrono::Utc>| match request.max_age {
        Some(max_age) => {
            (now - auth_time).num_seconds() <= i64::try_from(max_age).unwrap_or(i64::MAX)
        }
        None => true,
    };
    let session = session.filter(|(_, auth_time)| {
        !request.prompt.contains(&Prompt::Login) && fresh_enough(*auth_time)
    });
    let Some((session, auth_time)) = session else {
        if request.prompt.contains(&Prompt::None) {
            return redirect_error(OAuthError::new(
                ErrorCode::LoginRequired,
                "the user is not signed in",
            ));
        }
        // Back here after signing in, without the demand for a fresh sign-in that was just met.
        let again: Vec<(String, String)> = raw
            .into_iter()
            .filter(|(name, _)| name != "prompt" && name != "max_age")
            .collect();
        let return_to = format!("/oauth/v2/authorize?{}", encode(&again));
        let login = format!("/login?{}", encode(&[("return_to".to_owned(), return_to)]));
        return (
            StatusCode::SEE_OTHER,
            [(LOCATION, login)],
            jar.remove(SESSION_COOKIE),
        )
            .into_response();
    };

    let code = state
        .domain
        .issue_code(
            &instance.instance_id,
            CodeRequest {
                session_id: session.session_id.clone(),
                client_id: request.client_id.clone(),
                user_id: session.user_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                scopes: request.scope.iter().map(str::to_owned).collect(),
                nonce: request.nonce.clone(),
                code_challenge: request
                    .code_challenge
                    .as_ref()
                    .map(|challenge| challenge.as_str().to_owned()),
                auth_time,
            },
        )
        .await;
    match code {
        Ok(code) => deliver(response::success(
            &instance.external_url,
            &request.redirect_uri,
            request.response_mode,
            &code,
            request.state.as_deref(),
        )),
        Err(error) => {
            tracing::error!(%error, "could not issue a code");
            redirect_error(OAuthError::new(
                ErrorCode::ServerError,
                "the server could not complete the request",
            ))
        }
    }
}

/// Form-encodes parameters.
pub fn encode(params: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}
