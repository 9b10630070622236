//! Server-rendered pages: the sign-in form and error pages. Plain HTML with every dynamic value
//! escaped; no scripts, so they work with a keyboard alone and without JavaScript. The style
//! sheet is served from this origin (`crate::http::assets`), never inline, so the pages'
//! Content-Security-Policy allows no inline code at all.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use protocol::response::escape_html;

use crate::http::assets::STYLE_SHEET_PATH;

fn page(title: &str, body: &str) -> String {
    page_with_head(title, "", body)
}

/// [`page`] with `head` (markup the caller built, dynamic values escaped) in the `<head>`.
fn page_with_head(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"{STYLE_SHEET_PATH}\">{head}\
         </head><body><main>{body}</main></body></html>",
        title = escape_html(title),
    )
}

/// The sign-in form.
pub fn login(
    application: &str,
    return_to: &str,
    csrf: &str,
    login_hint: &str,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|message| {
            format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                escape_html(message)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in to {application}</h1>{error}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\
         <label for=\"login\">Username or e-mail</label>\
         <input id=\"login\" name=\"login\" autocomplete=\"username\" required autofocus value=\"{login_hint}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        application = escape_html(application),
        csrf = escape_html(csrf),
        return_to = escape_html(return_to),
        login_hint = escape_html(login_hint),
    );
    Html(page("Sign in", &body)).into_response()
}

/// An error shown to the user instead of redirecting anywhere.
pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p>",
        escape_html(title),
        escape_html(message)
    );
    (status, Html(page(title, &body))).into_response()
}

/// A page whose body the caller built, escaping every dynamic value itself.
pub fn html(status: StatusCode, title: &str, body: &str) -> Response {
    (status, Html(page(title, body))).into_response()
}

/// [`html`] with `head` added to the `<head>` (built by the caller, values escaped).
pub fn html_with_head(status: StatusCode, title: &str, head: &str, body: &str) -> Response {
    (status, Html(page_with_head(title, head, body))).into_response()
}
