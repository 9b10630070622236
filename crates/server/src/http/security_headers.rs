//! The headers browsers rely on, on every HTML page the server sends (sign-in, sign-out,
//! error and `form_post` pages): a Content-Security-Policy that allows no inline code and no
//! framing, no referrer (the authorize URL in `return_to` carries `state` and PKCE values),
//! no content sniffing, no caching (the pages carry CSRF tokens), and HSTS when the issuer is
//! https. JSON answers set their own caching rules and are left alone.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, PRAGMA, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Scripts and styles only from this origin, nothing inline; no plugins, no framing.
/// `form-action` is deliberately absent: browsers apply it to the redirects that follow a
/// form (sign-in → authorize → the application's redirect URI), which would break sign-in.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// One year, for the issuer's host only (an issuer does not speak for its subdomains).
const HSTS_VALUE: &str = "max-age=31536000";

/// Adds the page headers to HTML responses.
pub async fn add(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let is_html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let headers = response.headers_mut();
    let fixed = [
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "no-referrer"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (CACHE_CONTROL, "no-store"),
        (PRAGMA, "no-cache"),
    ];
    for (name, value) in fixed {
        // A page that frames other origins (front-channel logout) brings its own policy.
        if name == CONTENT_SECURITY_POLICY && headers.contains_key(CONTENT_SECURITY_POLICY) {
            continue;
        }
        headers.insert(name, HeaderValue::from_static(value));
    }
    if state.settings.https {
        headers.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS_VALUE),
        );
    }
    response
}
