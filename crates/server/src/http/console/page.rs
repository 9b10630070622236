//! The console's page shell: the shared style sheet, a navigation bar and a sign-out form for
//! a signed-in admin. Plain HTML with every dynamic value escaped; no scripts and no `style`
//! attributes, so the pages' Content-Security-Policy allows no inline code at all.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use protocol::response::escape_html;

use super::{PREFIX, SIGN_IN_PATH, SIGN_OUT_PATH};
use crate::http::assets::STYLE_SHEET_PATH;

/// The console's pages, in navigation order: the overview, then the pages issue 15 adds
/// next (until a page exists its link answers "not built yet").
const NAVIGATION: [(&str, &str); 6] = [
    ("Overview", PREFIX),
    ("Users", "/console/users"),
    ("Applications", "/console/applications"),
    ("Sessions", "/console/sessions"),
    ("Deliveries", "/console/deliveries"),
    ("Instance", "/console/instance"),
];

/// A whole page; `header` is the navigation (empty when signed out, and then the page is a
/// narrow card like the other sign-in pages).
fn document(title: &str, header: &str, body: &str) -> String {
    document_with(title, "", header, body)
}

/// [`document`] with `head` (trusted markup, no dynamic values) added to the `<head>`.
fn document_with(title: &str, head: &str, header: &str, body: &str) -> String {
    let class = if header.is_empty() {
        " class=\"narrow\""
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Portcullis console</title>\
         <link rel=\"stylesheet\" href=\"{STYLE_SHEET_PATH}\">{head}\
         </head><body class=\"console\">{header}<main{class}>{body}</main></body></html>",
        title = escape_html(title),
    )
}

/// The navigation and the sign-out form (carrying the session's CSRF token); `current` is the
/// path of the page shown, marked for assistive technology.
fn navigation(current: &str, csrf: &str) -> String {
    let links: String = NAVIGATION
        .iter()
        .map(|(label, path)| {
            let marker = if *path == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<li><a href=\"{path}\"{marker}>{label}</a></li>")
        })
        .collect();
    format!(
        "<header class=\"console\"><nav aria-label=\"Console\"><ul>{links}</ul></nav>\
         <form method=\"post\" action=\"{SIGN_OUT_PATH}\" class=\"sign-out\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"secondary\">Sign out</button></form></header>",
        csrf = escape_html(csrf),
    )
}

/// A signed-in admin's page at `current`, whose body the caller built, escaping every
/// dynamic value itself.
pub fn signed_in(
    status: StatusCode,
    current: &str,
    csrf: &str,
    title: &str,
    body: &str,
) -> Response {
    let header = navigation(current, csrf);
    (status, Html(document(title, &header, body))).into_response()
}

/// [`signed_in`] that the browser loads again every second (a `<meta http-equiv="refresh">`:
/// no script, so the Content-Security-Policy has nothing to allow), for a page showing
/// progress while it is made.
pub fn signed_in_refreshing(
    status: StatusCode,
    current: &str,
    csrf: &str,
    title: &str,
    body: &str,
) -> Response {
    let header = navigation(current, csrf);
    let head = "<meta http-equiv=\"refresh\" content=\"1\">";
    (status, Html(document_with(title, head, &header, body))).into_response()
}

/// The sign-in form, with an error above it after a failed attempt. The token field is
/// never filled in again: a secret is not echoed back into a page (where it would sit in the
/// browser's cache and history of form values).
pub fn sign_in(status: StatusCode, csrf: &str, error: Option<&str>) -> Response {
    let error = error
        .map(|message| {
            format!(
                "<p class=\"error\" id=\"token-error\" role=\"alert\">{}</p>",
                escape_html(message)
            )
        })
        .unwrap_or_default();
    let described = if error.is_empty() {
        ""
    } else {
        " aria-describedby=\"token-error\" aria-invalid=\"true\""
    };
    let body = format!(
        "<h1>Sign in to the console</h1>{error}\
         <form method=\"post\" action=\"{SIGN_IN_PATH}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"token\">Admin token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
         required autofocus{described}>\
         <button type=\"submit\">Sign in</button></form>",
        csrf = escape_html(csrf),
    );
    (status, Html(document("Sign in", "", &body))).into_response()
}

/// An error page without navigation (the admin may not be signed in).
pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"{PREFIX}\">Back to the console</a></p>",
        escape_html(title),
        escape_html(message)
    );
    (status, Html(document(title, "", &body))).into_response()
}

/// A path segment, percent-encoded (the console's links carry ids the person did not type, but
/// an application's client_id may hold any character).
pub(super) fn segment(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// A failure that is not the person's fault: logged, and a page that says so without details.
pub(super) fn failed(what: &str, cause: impl std::fmt::Debug) -> Response {
    tracing::error!(error = ?cause, "console: {what} failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again later.",
    )
}

/// 303 to `path` (after a form was handled).
pub(super) fn see_other(path: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, path.to_owned())],
    )
        .into_response()
}
