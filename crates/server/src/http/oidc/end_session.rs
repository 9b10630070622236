//! RP-Initiated Logout 1.0: ends the browser's session (recording the origin the request came
//! in on), revokes its tokens (offline ones live on), clears the cookie, and redirects only to
//! a registered post_logout_redirect_uri. Without a valid id_token_hint the user confirms first.

use axum::extract::{Form, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use domain::TerminationReason;
use protocol::end_session::{
    AfterLogout, Confirmation, CurrentSession, EndSessionRequest, VerifiedIdTokenHint,
};
use protocol::response::escape_html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::session::{SESSION_COOKIE, cookie, current_session};
use super::{Issuer, client, page};
use crate::http::AppState;

const CONFIRM_COOKIE: &str = "portcullis_logout";

/// `GET /oidc/v1/end_session`
pub async fn get(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    end_session(state, issuer, jar, query.unwrap_or_default(), false).await
}

/// `POST /oidc/v1/end_session` (form-encoded)
pub async fn post(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    body: String,
) -> Response {
    end_session(state, issuer, jar, body, false).await
}

/// The confirmation form's answer.
#[derive(Deserialize)]
pub struct Confirmed {
    csrf: String,
    request: String,
}

/// `POST /oidc/v1/end_session/confirm`: the user confirmed the logout.
pub async fn confirm(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    Form(form): Form<Confirmed>,
) -> Response {
    let matches = jar
        .get(CONFIRM_COOKIE)
        .is_some_and(|cookie| bool::from(cookie.value().as_bytes().ct_eq(form.csrf.as_bytes())));
    if !matches {
        return page::error(
            StatusCode::BAD_REQUEST,
            "The logout form expired",
            "Start the logout again from the application.",
        );
    }
    let jar = jar.remove(CONFIRM_COOKIE);
    end_session(state, issuer, jar, form.request, true).await
}

fn invalid(description: &str) -> Response {
    page::error(
        StatusCode::BAD_REQUEST,
        "This logout request is not valid",
        description,
    )
}

async fn end_session(
    state: AppState,
    issuer: Issuer,
    jar: CookieJar,
    raw_request: String,
    confirmed: bool,
) -> Response {
    let instance_id = issuer.instance.instance_id.clone();
    let raw = protocol::params::parse_form_urlencoded(&raw_request);
    let request = match EndSessionRequest::parse(&raw) {
        Ok(request) => request,
        Err(error) => return invalid(&error.to_oauth_error().description.unwrap_or_default()),
    };
    // The hint must be ours (signature and issuer); an expired one is fine.
    let hint = match &request.id_token_hint {
        None => None,
        Some(token) => {
            let keys = match state.keys.instance_keys(&instance_id).await {
                Ok(keys) => keys,
                Err(error) => return server_error(error),
            };
            let validation = jose::Validation::new()
                .issuer(&issuer.instance.external_url)
                .allow_expired();
            match keys
                .verifier
                .verify(token, &validation, state.domain.now().timestamp())
            {
                Ok(verified) => {
                    let claims = verified.claims;
                    let text = |name: &str| {
                        claims
                            .get(name)
                            .and_then(|value| value.as_str())
                            .map(str::to_owned)
                    };
                    let aud = match claims.get("aud") {
                        Some(serde_json::Value::String(aud)) => vec![aud.clone()],
                        Some(serde_json::Value::Array(auds)) => auds
                            .iter()
                            .filter_map(|aud| aud.as_str().map(str::to_owned))
                            .collect(),
                        _ => vec![],
                    };
                    Some(VerifiedIdTokenHint {
                        aud,
                        azp: text("azp"),
                        sub: text("sub").unwrap_or_default(),
                        sid: text("sid"),
                    })
                }
                Err(_) => return invalid("The id_token_hint was not issued by this server."),
            }
        }
    };
    let client_id = match request.client_to_resolve(hint.as_ref()) {
        Ok(client_id) => client_id.map(str::to_owned),
        Err(error) => return invalid(&error.to_oauth_error().description.unwrap_or_default()),
    };
    let application = match &client_id {
        Some(client_id) => state.domain.application(&instance_id, client_id).await.ok(),
        None => None,
    };
    let policy = application
        .as_ref()
        .map(|app| client::policy(&app.client_id, &app.config));
    let session = match current_session(&state, &instance_id, &jar).await {
        Ok(session) => session.map(|(session, _)| session),
        Err(error) => return server_error(error),
    };
    let current = session.as_ref().map(|session| CurrentSession {
        sub: session.user_id.clone(),
        sid: session.session_id.clone(),
    });
    let decision = match request.decide(hint.as_ref(), policy.as_ref(), current.as_ref()) {
        Ok(decision) => decision,
        Err(error) => return invalid(&error.to_oauth_error().description.unwrap_or_default()),
    };
    if decision.confirmation == Confirmation::Required && !confirmed && session.is_some() {
        let csrf = hex::encode(rand::random::<[u8; 32]>());
        let body = format!(
            "<h1>Sign out?</h1><p>Do you want to sign out of {name}?</p>\
             <form method=\"post\" action=\"/oidc/v1/end_session/confirm\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <button type=\"submit\" autofocus>Sign out</button></form>",
            name = escape_html(&issuer.instance.name),
            request = escape_html(&raw_request),
        );
        let jar = jar.add(cookie(&state, CONFIRM_COOKIE, csrf));
        return (jar, page::html(StatusCode::OK, "Sign out", &body)).into_response();
    }
    let mut jar = jar;
    if let Some(session) = &session {
        let ended = state
            .domain
            .terminate_session(
                &instance_id,
                &session.session_id,
                TerminationReason::RpInitiatedLogout,
                &issuer.origin,
                &session.user_id,
            )
            .await;
        if let Err(error) = ended {
            return server_error(error);
        }
        jar = jar.remove(SESSION_COOKIE);
        wait_for_deliveries(&state, &instance_id, &session.session_id).await;
    }
    match decision.after_logout {
        AfterLogout::Redirect { location } => {
            (StatusCode::SEE_OTHER, [(LOCATION, location)], jar).into_response()
        }
        AfterLogout::ShowLoggedOutPage => (
            jar,
            page::html(
                StatusCode::OK,
                "Signed out",
                "<h1>You are signed out</h1><p>You can close this window.</p>",
            ),
        )
            .into_response(),
    }
}

fn server_error(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "logout failed");
    page::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again later.",
    )
}

/// Waits, up to the configured deadline, until none of the session's back-channel deliveries is
/// still pending, so the user reaches the post-logout page after the applications have heard.
/// Delivery itself never depends on this wait.
async fn wait_for_deliveries(state: &AppState, instance_id: &str, session_id: &str) {
    let deadline = state.settings.end_session_wait;
    if deadline.is_zero() {
        return;
    }
    let settled = async {
        loop {
            match state
                .domain
                .deliveries_of_session(instance_id, session_id)
                .await
            {
                Ok(deliveries)
                    if deliveries
                        .iter()
                        .all(|delivery| delivery.state != "pending") =>
                {
                    return;
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                Err(error) => {
                    tracing::warn!(%error, "could not follow back-channel deliveries");
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(deadline, settled).await;
}
