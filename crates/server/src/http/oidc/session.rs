//! The browser session cookie.

use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Utc};
use domain::{DomainError, SessionView};

use crate::http::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "portcullis_session";

/// The live session the browser's cookie names, with its authentication time.
pub async fn current_session(
    state: &AppState,
    instance_id: &str,
    jar: &CookieJar,
) -> Result<Option<(SessionView, DateTime<Utc>)>, DomainError> {
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = state
        .domain
        .session_by_cookie(instance_id, cookie.value())
        .await?
    else {
        return Ok(None);
    };
    let auth_time =
        DateTime::parse_from_rfc3339(&session.auth_time).map(|time| time.with_timezone(&Utc));
    Ok(auth_time.ok().map(|auth_time| (session, auth_time)))
}

/// A cookie carrying `value`: HttpOnly, SameSite=Lax, Secure over https, for the whole site.
pub fn cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.https)
        .path("/")
        .build()
}
