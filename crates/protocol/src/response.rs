//! The authorization response (RFC 6749 §4.1.2, §4.1.2.1) delivered to the client: as query
//! parameters on a redirect, or as an auto-submitting form (OAuth 2.0 Form Post Response
//! Mode). Every response carries `iss` (RFC 9207) so a client talking to several
//! authorization servers can tell which one answered (mix-up attacks).

use crate::error::OAuthError;

/// How the authorization response travels (OAuth 2.0 Multiple Response Type Encoding
/// Practices §2.1; Form Post Response Mode §2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ResponseMode {
    /// `query`: parameters appended to the redirect URI's query. The default for `code`.
    #[default]
    Query,
    /// `form_post`: an HTML form that POSTs the parameters to the redirect URI.
    FormPost,
}

impl ResponseMode {
    /// The `response_mode` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::FormPost => "form_post",
        }
    }
}

/// The script that submits a form-post page. The server serves it at [`AUTO_SUBMIT_SCRIPT_PATH`]
/// so the page loads it from its own origin and the Content-Security-Policy needs to allow no
/// inline script at all.
pub const AUTO_SUBMIT_SCRIPT: &str = "document.forms[0].submit();\n";

/// Where the server serves [`AUTO_SUBMIT_SCRIPT`].
pub const AUTO_SUBMIT_SCRIPT_PATH: &str = "/assets/form-post.js";

/// An authorization response ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationResponse {
    /// Answer `303 See Other` (or 302) with this `Location`.
    Redirect {
        /// The complete target URL.
        location: String,
    },
    /// Answer `200` with this `text/html` page. The server must send `Cache-Control:
    /// no-store`: the response is for one use only (Form Post Response Mode §2).
    FormPost {
        /// The complete HTML page.
        html: String,
    },
}

/// The successful response: `code`, then `state` when the request had one, then `iss`.
pub fn success(
    issuer: &str,
    redirect_uri: &str,
    response_mode: ResponseMode,
    code: &str,
    state: Option<&str>,
) -> AuthorizationResponse {
    let mut params = vec![("code", code)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    deliver(redirect_uri, response_mode, &params)
}

/// The error response: `error`, `error_description`, `state`, `iss` (RFC 6749 §4.1.2.1,
/// RFC 9207 §2 which requires `iss` in error responses too).
pub fn error(
    issuer: &str,
    redirect_uri: &str,
    response_mode: ResponseMode,
    state: Option<&str>,
    error: &OAuthError,
) -> AuthorizationResponse {
    let mut params = vec![("error", error.code.as_str())];
    if let Some(description) = &error.description {
        params.push(("error_description", description));
    }
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    deliver(redirect_uri, response_mode, &params)
}

fn deliver(
    redirect_uri: &str,
    response_mode: ResponseMode,
    params: &[(&str, &str)],
) -> AuthorizationResponse {
    match response_mode {
        ResponseMode::Query => AuthorizationResponse::Redirect {
            location: append_query(redirect_uri, params),
        },
        ResponseMode::FormPost => AuthorizationResponse::FormPost {
            html: form_post_page(redirect_uri, params),
        },
    }
}

/// `redirect_uri` with `params` form-urlencoded onto its query, keeping any query it already
/// has: RFC 6749 §3.1.2 lets a registered redirect URI carry a query, which "MUST be retained
/// when adding additional query parameters". Registered URIs have no fragment (RFC 6749
/// §3.1.2); should one slip through, the parameters still go before it.
pub fn append_query(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let (before_fragment, fragment) = match redirect_uri.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (redirect_uri, None),
    };
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        encoded.append_pair(name, value);
    }
    let encoded = encoded.finish();

    let mut location = String::with_capacity(redirect_uri.len() + encoded.len() + 1);
    location.push_str(before_fragment);
    if !encoded.is_empty() {
        match before_fragment.find('?') {
            None => location.push('?'),
            Some(at) if at + 1 == before_fragment.len() || before_fragment.ends_with('&') => {}
            Some(_) => location.push('&'),
        }
        location.push_str(&encoded);
    }
    if let Some(fragment) = fragment {
        location.push('#');
        location.push_str(fragment);
    }
    location
}

/// An HTML page whose form POSTs `params` to `action` as soon as it loads, with a button for
/// browsers that run no script. Every attribute value is HTML-escaped.
pub fn form_post_page(action: &str, params: &[(&str, &str)]) -> String {
    let mut inputs = String::new();
    for (name, value) in params {
        inputs.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            escape_html(name),
            escape_html(value)
        ));
    }
    format!(
        "<!DOCTYPE html>\n\
         <html>\n\
         <head><meta charset=\"utf-8\"><title>Submit This Form</title></head>\n\
         <body>\n\
         <form method=\"post\" action=\"{action}\">\n\
         {inputs}\
         <noscript><p>JavaScript is off. Press Continue to go on.</p>\
         <button type=\"submit\">Continue</button></noscript>\n\
         </form>\n\
         <script src=\"{AUTO_SUBMIT_SCRIPT_PATH}\"></script>\n\
         </body>\n\
         </html>\n",
        action = escape_html(action),
    )
}

/// Escapes the five characters that can end or change an HTML attribute or element.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const ISSUER: &str = "https://op.example";

    #[test]
    fn query_keeps_the_registered_query() {
        let cases = [
            (
                "https://rp.example/cb",
                "https://rp.example/cb?code=c1&state=s1&iss=https%3A%2F%2Fop.example",
            ),
            (
                "https://rp.example/cb?tenant=a%20b",
                "https://rp.example/cb?tenant=a%20b&code=c1&state=s1&iss=https%3A%2F%2Fop.example",
            ),
            (
                "https://rp.example/cb?",
                "https://rp.example/cb?code=c1&state=s1&iss=https%3A%2F%2Fop.example",
            ),
            (
                "https://rp.example/cb?a=1&",
                "https://rp.example/cb?a=1&code=c1&state=s1&iss=https%3A%2F%2Fop.example",
            ),
            (
                "https://rp.example/cb#frag",
                "https://rp.example/cb?code=c1&state=s1&iss=https%3A%2F%2Fop.example#frag",
            ),
        ];
        for (redirect_uri, expected) in cases {
            let response = success(ISSUER, redirect_uri, ResponseMode::Query, "c1", Some("s1"));
            assert_eq!(
                response,
                AuthorizationResponse::Redirect {
                    location: expected.to_string()
                },
                "{redirect_uri}"
            );
        }
    }

    #[test]
    fn query_values_are_encoded() {
        let response = success(
            ISSUER,
            "https://rp.example/cb",
            ResponseMode::Query,
            "a+b/c=",
            Some("x y&z=1#"),
        );
        let AuthorizationResponse::Redirect { location } = response else {
            panic!("expected a redirect");
        };
        assert_eq!(
            location,
            "https://rp.example/cb?code=a%2Bb%2Fc%3D&state=x+y%26z%3D1%23&iss=https%3A%2F%2Fop.example"
        );
    }

    #[test]
    fn state_is_left_out_when_absent() {
        let response = success(
            ISSUER,
            "https://rp.example/cb",
            ResponseMode::Query,
            "c",
            None,
        );
        assert_eq!(
            response,
            AuthorizationResponse::Redirect {
                location: "https://rp.example/cb?code=c&iss=https%3A%2F%2Fop.example".into()
            }
        );
    }

    #[test]
    fn error_response_carries_error_state_and_iss() {
        let failure = OAuthError::new(ErrorCode::InvalidScope, "scope must include openid");
        let response = error(
            ISSUER,
            "https://rp.example/cb?t=1",
            ResponseMode::Query,
            Some("s"),
            &failure,
        );
        assert_eq!(
            response,
            AuthorizationResponse::Redirect {
                location: "https://rp.example/cb?t=1&error=invalid_scope\
                           &error_description=scope+must+include+openid&state=s\
                           &iss=https%3A%2F%2Fop.example"
                    .into()
            }
        );
        let bare = error(
            ISSUER,
            "https://rp.example/cb",
            ResponseMode::Query,
            None,
            &OAuthError::bare(ErrorCode::AccessDenied),
        );
        assert_eq!(
            bare,
            AuthorizationResponse::Redirect {
                location: "https://rp.example/cb?error=access_denied&iss=https%3A%2F%2Fop.example"
                    .into()
            }
        );
    }

    #[test]
    fn form_post_escapes_every_value() {
        let response = success(
            ISSUER,
            "https://rp.example/cb?a=1&b=\"2\"",
            ResponseMode::FormPost,
            "c<1>",
            Some("\"><script>alert('x')</script>&"),
        );
        let AuthorizationResponse::FormPost { html } = response else {
            panic!("expected a form post");
        };
        assert!(html.contains(
            "<form method=\"post\" action=\"https://rp.example/cb?a=1&amp;b=&quot;2&quot;\">"
        ));
        assert!(html.contains("<input type=\"hidden\" name=\"code\" value=\"c&lt;1&gt;\">"));
        assert!(html.contains(
            "<input type=\"hidden\" name=\"state\" \
             value=\"&quot;&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;\">"
        ));
        assert!(html.contains("<input type=\"hidden\" name=\"iss\" value=\"https://op.example\">"));
        assert!(html.contains("<noscript>"));
        assert!(html.contains("<button type=\"submit\">Continue</button>"));
        assert!(html.contains(&format!(
            "<script src=\"{AUTO_SUBMIT_SCRIPT_PATH}\"></script>"
        )));
        // The only script on the page is ours, and none is inline.
        assert_eq!(html.matches("<script").count(), 1);
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn escape_html_table() {
        let cases = [
            ("plain", "plain"),
            ("a&b", "a&amp;b"),
            ("<>", "&lt;&gt;"),
            ("\"'", "&quot;&#x27;"),
            ("&amp;", "&amp;amp;"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_html(input), expected);
        }
    }

    #[test]
    fn response_mode_names() {
        assert_eq!(ResponseMode::default(), ResponseMode::Query);
        assert_eq!(ResponseMode::Query.as_str(), "query");
        assert_eq!(ResponseMode::FormPost.as_str(), "form_post");
    }
}
