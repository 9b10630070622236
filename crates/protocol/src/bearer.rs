//! How a resource request presents its access token (RFC 6750 §2): the `Authorization: Bearer`
//! header (§2.1) or the `access_token` parameter of a form-encoded POST body (§2.2). The URI
//! query form (§2.3) is not accepted: it leaks tokens into logs and `Referer` headers.

use crate::params::{ParamError, single};

/// Why no access token could be taken from a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No token at all: answered with a bare `WWW-Authenticate: Bearer` challenge (§3.1).
    #[error("no access token was presented")]
    Missing,
    /// More than one method, or a repeated `access_token`: `invalid_request` (§2, §3.1).
    #[error("{0}")]
    InvalidRequest(String),
}

/// The request as far as finding its token goes.
#[derive(Debug, Clone, Copy)]
pub struct PresentedCredentials<'a> {
    /// The `Authorization` header value, if any.
    pub authorization: Option<&'a str>,
    /// The body's pairs when the request is a POST with content type
    /// `application/x-www-form-urlencoded` (§2.2 allows the body nowhere else).
    pub form_body: Option<&'a [(String, String)]>,
}

/// The token of an `Authorization: Bearer <token>` header value (the scheme is
/// case-insensitive, RFC 9110 §11.1); `None` for another scheme or an empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    authorization
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// The access token the request presents, by exactly one method.
pub fn presented_token<'a>(request: PresentedCredentials<'a>) -> Result<&'a str, BearerError> {
    let from_header = request.authorization.and_then(bearer_token);
    let from_body = match request.form_body {
        Some(pairs) => single(pairs, "access_token").map_err(|error| match error {
            ParamError::Duplicated { .. } => {
                BearerError::InvalidRequest("access_token is repeated in the body".into())
            }
            other => BearerError::InvalidRequest(other.to_string()),
        })?,
        None => None,
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(BearerError::InvalidRequest(
            "present the access token once: in the Authorization header or in the body, not both"
                .into(),
        )),
        (Some(token), None) | (None, Some(token)) => Ok(token),
        (None, None) => Err(BearerError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::pairs;

    #[test]
    fn one_method_exactly() {
        let token_body = pairs(&[("access_token", "t2")]);
        let other_body = pairs(&[("foo", "bar")]);
        let repeated = pairs(&[("access_token", "a"), ("access_token", "b")]);
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a [(String, String)]>,
            Result<&'a str, bool>,
        );
        // (header, body, token or whether the error is invalid_request)
        let cases: Vec<Case> = vec![
            (Some("Bearer t1"), None, Ok("t1")),
            (Some("bearer  t1 "), None, Ok("t1")),
            (None, Some(&token_body), Ok("t2")),
            (Some("Bearer t1"), Some(&other_body), Ok("t1")),
            (Some("Bearer t1"), Some(&token_body), Err(true)),
            (None, Some(&repeated), Err(true)),
            (None, Some(&other_body), Err(false)),
            (Some("Basic dXNlcjpwYXNz"), None, Err(false)),
            (Some("Bearer "), None, Err(false)),
            (None, None, Err(false)),
        ];
        for (authorization, form_body, expected) in cases {
            let got = presented_token(PresentedCredentials {
                authorization,
                form_body,
            })
            .map_err(|error| matches!(error, BearerError::InvalidRequest(_)));
            assert_eq!(got, expected, "{authorization:?} {form_body:?}");
        }
    }
}
