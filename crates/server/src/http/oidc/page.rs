//! Server-rendered pages: the sign-in form and error pages. Plain HTML with every dynamic value
//! escaped; no scripts, so they work with a keyboard alone and without JavaScript.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use protocol::response::escape_html;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;\
min-height:100vh;align-items:center;justify-content:center}main{background:#fff;padding:2rem 2.5rem;\
border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);width:min(22rem,90vw)}h1{font-size:1.3rem;\
margin-top:0}label{display:block;margin:.8rem 0 .3rem;font-weight:600}input{width:100%;box-sizing:border-box;\
padding:.55rem;font-size:1rem;border:1px solid #999;border-radius:4px}input:focus,button:focus{outline:3px \
solid #2a6df4;outline-offset:1px}button{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem;border:0;\
border-radius:4px;background:#2a6df4;color:#fff;cursor:pointer}.error{color:#a00;background:#fdecec;\
padding:.5rem;border-radius:4px}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
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
