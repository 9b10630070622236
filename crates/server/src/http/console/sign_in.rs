//! Signing in to the console with an admin token, and signing out.
//!
//! The sign-in form has a CSRF token of its own (double-submit: a SameSite=Strict cookie and
//! a hidden field), so no other site can sign a browser in to the console with the other
//! site's token. Admin tokens are long random strings, so failed attempts are not throttled
//! here as passwords are on `/login`.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::auth::{COOKIE, ConsoleAdmin, cookie, to_sign_in};
use super::{PREFIX, page};
use crate::http::AppState;

/// The sign-in form's CSRF cookie.
const CSRF_COOKIE: &str = "portcullis_console_csrf";

/// The sign-in form as submitted; missing fields are empty, so they get the form back with
/// an error rather than a bare rejection.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// A form that only carries the session's CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// The form with a fresh CSRF token, its cookie set.
fn form(state: &AppState, jar: CookieJar, status: StatusCode, error: Option<&str>) -> Response {
    let csrf = hex::encode(rand::random::<[u8; 32]>());
    let jar = jar.add(cookie(state, CSRF_COOKIE, csrf.clone()));
    (jar, page::sign_in(status, &csrf, error)).into_response()
}

/// `GET /console/sign-in`
pub async fn show(State(state): State<AppState>, jar: CookieJar) -> Response {
    form(&state, jar, StatusCode::OK, None)
}

/// `POST /console/sign-in`: on a valid token a console session and its cookie, then the
/// overview.
pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(submitted): Form<SignInForm>,
) -> Response {
    let csrf_matches = jar.get(CSRF_COOKIE).is_some_and(|cookie| {
        bool::from(cookie.value().as_bytes().ct_eq(submitted.csrf.as_bytes()))
    });
    if !csrf_matches {
        return form(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired. Enter the admin token again."),
        );
    }
    let token = submitted.token.trim();
    if token.is_empty() {
        return form(
            &state,
            jar,
            StatusCode::UNAUTHORIZED,
            Some("Admin token: enter an admin token."),
        );
    }
    let principal = match state.domain.authenticate_admin(token).await {
        Ok(principal) => principal,
        Err(error) => {
            tracing::error!(%error, "console sign-in: checking the admin token failed");
            return page::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again later.",
            );
        }
    };
    let Some(principal) = principal else {
        return form(
            &state,
            jar,
            StatusCode::UNAUTHORIZED,
            Some("Admin token: this token is unknown or has been revoked."),
        );
    };
    tracing::info!(
        instance_id = %principal.instance_id,
        token_id = %principal.token_id,
        "console sign-in"
    );
    // A new sign-in in the same browser replaces its session rather than leaving the old
    // one to idle out.
    if let Some(previous) = jar.get(COOKIE) {
        state.console.remove(previous.value());
    }
    let id = state.console.create(token.to_owned(), principal);
    let jar = jar
        .remove(Cookie::build(CSRF_COOKIE).path(PREFIX))
        .add(cookie(&state, COOKIE, id));
    (StatusCode::SEE_OTHER, jar, [(LOCATION, PREFIX)]).into_response()
}

/// `POST /console/sign-out`: ends the console session (with the session's CSRF token only).
pub async fn sign_out(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    jar: CookieJar,
    Form(submitted): Form<CsrfForm>,
) -> Response {
    if !admin.csrf_matches(submitted.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    state.console.remove(&admin.id);
    let jar = jar.remove(Cookie::build(COOKIE).path(PREFIX));
    (jar, to_sign_in()).into_response()
}
