//! The sign-in page: a CSRF-protected form; on success a session cookie and back to the
//! authorization request. Failed attempts for one login name slow down further attempts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::header::{LOCATION, USER_AGENT};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::session::{SESSION_COOKIE, cookie};
use super::{Issuer, page};
use crate::http::AppState;
use crate::metrics::SignIn;

/// The CSRF cookie's name (double-submit: the form must carry the same value).
const CSRF_COOKIE: &str = "portcullis_csrf";
/// Failures after which each further attempt waits.
const FREE_FAILURES: u32 = 3;
/// Failures older than this are forgotten.
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Recent sign-in failures per login name, in this process.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    /// How long an attempt for `login` waits: nothing for the first few failures, then doubling
    /// from half a second up to eight seconds.
    fn delay(&self, login: &str) -> Duration {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match failures.get(login) {
            Some((count, last)) if *count >= FREE_FAILURES && last.elapsed() < FAILURE_WINDOW => {
                Duration::from_millis(500u64.saturating_mul(1 << (count - FREE_FAILURES).min(4)))
            }
            _ => Duration::ZERO,
        }
    }

    fn failed(&self, login: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, (_, last)| last.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures
            .entry(login.to_owned())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            entry.0 = 0;
        }
        *entry = (entry.0 + 1, Instant::now());
    }

    fn succeeded(&self, login: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(login);
    }
}

/// `GET /login` parameters.
#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: String,
}

/// `POST /login` form.
#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    return_to: String,
    login: String,
    password: String,
}

/// Only our own authorization endpoint is a place to return to (no open redirect).
fn valid_return_to(return_to: &str) -> bool {
    return_to.starts_with("/oauth/v2/authorize?") && !return_to.contains(['\r', '\n'])
}

fn query_value(return_to: &str, name: &str) -> Option<String> {
    let query = return_to.split_once('?')?.1;
    protocol::params::parse_form_urlencoded(query)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

async fn application_name(state: &AppState, issuer: &Issuer, return_to: &str) -> String {
    match query_value(return_to, "client_id") {
        Some(client_id) => match state
            .domain
            .application(&issuer.instance.instance_id, &client_id)
            .await
        {
            Ok(application) => application.config.name,
            Err(_) => issuer.instance.name.clone(),
        },
        None => issuer.instance.name.clone(),
    }
}

fn invalid_link() -> Response {
    page::error(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        "Start again from the application you came from.",
    )
}

/// Shows the form.
pub async fn show(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    if !valid_return_to(&query.return_to) {
        return invalid_link();
    }
    let csrf = hex::encode(rand::random::<[u8; 32]>());
    let name = application_name(&state, &issuer, &query.return_to).await;
    let hint = query_value(&query.return_to, "login_hint").unwrap_or_default();
    let jar = jar.add(cookie(&state, CSRF_COOKIE, csrf.clone()));
    (
        jar,
        page::login(&name, &query.return_to, &csrf, &hint, None),
    )
        .into_response()
}

/// Checks the form; on success starts a session and returns to the authorization request.
pub async fn submit(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !valid_return_to(&form.return_to) {
        return invalid_link();
    }
    let csrf_matches = jar
        .get(CSRF_COOKIE)
        .is_some_and(|cookie| bool::from(cookie.value().as_bytes().ct_eq(form.csrf.as_bytes())));
    if !csrf_matches {
        return page::error(
            StatusCode::BAD_REQUEST,
            "The sign-in form expired",
            "Go back to the application and sign in again.",
        );
    }
    let instance_id = &issuer.instance.instance_id;
    let login = form.login.trim().to_lowercase();
    tokio::time::sleep(state.throttle.delay(&login)).await;
    let user = match state
        .domain
        .check_password(instance_id, &login, form.password)
        .await
    {
        Ok(user) => user,
        Err(error) => {
            tracing::error!(%error, "sign-in check failed");
            return page::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again later.",
            );
        }
    };
    let Some(user) = user else {
        state.throttle.failed(&login);
        state.metrics.sign_in(SignIn::Failed);
        let name = application_name(&state, &issuer, &form.return_to).await;
        let mut response = page::login(
            &name,
            &form.return_to,
            &form.csrf,
            &form.login,
            Some("Wrong username or password."),
        );
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    };
    state.throttle.succeeded(&login);
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let created = state
        .domain
        .create_session(
            instance_id,
            &user.user_id,
            state.settings.session_lifetime,
            user_agent,
        )
        .await;
    match created {
        Ok((_, secret)) => {
            state.metrics.sign_in(SignIn::Succeeded);
            let jar = jar
                .add(cookie(&state, SESSION_COOKIE, secret))
                .remove(CSRF_COOKIE);
            (StatusCode::SEE_OTHER, [(LOCATION, form.return_to)], jar).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "could not start a session");
            page::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again later.",
            )
        }
    }
}
