//! Which admin a console request acts as: the session its cookie names, if that session has
//! not been idle too long and its admin token is still valid. Anything else goes to the
//! sign-in page, with nothing of the console shown.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq;

use super::sessions::ConsoleSession;
use super::{PREFIX, SIGN_IN_PATH, page};
use crate::http::AppState;

/// The console session cookie's name.
pub const COOKIE: &str = "portcullis_console";

/// A console cookie: HttpOnly, SameSite=Strict (no other site can make the browser send
/// it, not even by a link), only for `/console`, Secure over https.
pub fn cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.https)
        .path(PREFIX)
        .build()
}

/// To the sign-in page (303, so a POST becomes a GET there).
pub fn to_sign_in() -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, SIGN_IN_PATH)]).into_response()
}

/// The signed-in admin of a console request.
pub struct ConsoleAdmin {
    /// The session's id (the cookie's value).
    pub id: String,
    /// The session.
    pub session: ConsoleSession,
}

impl ConsoleAdmin {
    /// Whether a submitted form's `csrf` field is this session's token (constant time).
    pub fn csrf_matches(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|submitted| {
            bool::from(submitted.as_bytes().ct_eq(self.session.csrf.as_bytes()))
        })
    }

    /// The page answered to a form without the session's CSRF token: nothing was done.
    pub fn csrf_refused() -> Response {
        page::error(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Nothing was changed. Go back, reload the page and try again.",
        )
    }
}

impl FromRequestParts<AppState> for ConsoleAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(id) = jar.get(COOKIE).map(|cookie| cookie.value().to_owned()) else {
            return Err(to_sign_in());
        };
        let Some(session) = state.console.touch(&id) else {
            return Err(to_sign_in());
        };
        // Checked again on every request, so revoking the token ends the console session at
        // the next click rather than at the idle timeout.
        match state.domain.authenticate_admin(&session.token).await {
            Ok(Some(principal)) if principal == session.principal => {
                Ok(ConsoleAdmin { id, session })
            }
            Ok(_) => {
                state.console.remove(&id);
                Err(to_sign_in())
            }
            Err(error) => {
                tracing::error!(%error, "console: checking the admin token failed");
                Err(page::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Please try again later.",
                ))
            }
        }
    }
}
