//! OAuth 2.0 and OpenID Connect error codes and the RFC 6749 §5.2 error body.

use std::fmt;

use serde::{Serialize, Serializer};

/// An error code exactly as RFC 6749 (§4.1.2.1, §5.2), OpenID Connect Core 1.0 (§3.1.2.6),
/// RFC 6750 (§3.1), RFC 7009 (§2.2.1) and RFC 7591 (§3.2.2) spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    InvalidRequest,
    /// The client may not use this grant or response type.
    UnauthorizedClient,
    /// The resource owner or the authorization server denied the request.
    AccessDenied,
    /// The authorization server does not support this `response_type`.
    UnsupportedResponseType,
    /// The requested scope is invalid, unknown or malformed.
    InvalidScope,
    /// An unexpected condition prevented the authorization server from answering.
    ServerError,
    /// The authorization server is overloaded or under maintenance.
    TemporarilyUnavailable,
    /// `prompt=none` was sent but the user must interact.
    InteractionRequired,
    /// `prompt=none` was sent but the user must authenticate.
    LoginRequired,
    /// `prompt=none` was sent but the user must choose an account.
    AccountSelectionRequired,
    /// `prompt=none` was sent but the user must consent.
    ConsentRequired,
    /// The `request_uri` is invalid or its content unreachable.
    InvalidRequestUri,
    /// The `request` parameter holds an invalid Request Object.
    InvalidRequestObject,
    /// The OP does not support the `request` parameter.
    RequestNotSupported,
    /// The OP does not support the `request_uri` parameter.
    RequestUriNotSupported,
    /// The OP does not support the `registration` parameter.
    RegistrationNotSupported,
    /// Client authentication failed.
    InvalidClient,
    /// The authorization code or refresh token is invalid, expired, revoked or not the client's.
    InvalidGrant,
    /// The authorization server does not support this `grant_type`.
    UnsupportedGrantType,
    /// The access token is expired, revoked or malformed (RFC 6750).
    InvalidToken,
    /// The authorization server cannot revoke this type of token (RFC 7009).
    UnsupportedTokenType,
    /// A registration's redirection URIs are invalid (RFC 7591 §3.2.2).
    InvalidRedirectUri,
    /// A registration's client metadata is invalid (RFC 7591 §3.2.2).
    InvalidClientMetadata,
}

impl ErrorCode {
    /// Every error code, in the order of the specs that define them.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidRequest,
        ErrorCode::UnauthorizedClient,
        ErrorCode::AccessDenied,
        ErrorCode::UnsupportedResponseType,
        ErrorCode::InvalidScope,
        ErrorCode::ServerError,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::InteractionRequired,
        ErrorCode::LoginRequired,
        ErrorCode::AccountSelectionRequired,
        ErrorCode::ConsentRequired,
        ErrorCode::InvalidRequestUri,
        ErrorCode::InvalidRequestObject,
        ErrorCode::RequestNotSupported,
        ErrorCode::RequestUriNotSupported,
        ErrorCode::RegistrationNotSupported,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidToken,
        ErrorCode::UnsupportedTokenType,
        ErrorCode::InvalidRedirectUri,
        ErrorCode::InvalidClientMetadata,
    ];

    /// The code as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::AccountSelectionRequired => "account_selection_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::RegistrationNotSupported => "registration_not_supported",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
        }
    }

    /// The code with this wire spelling, if there is one.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == name)
    }

    /// The HTTP status of this error when the token endpoint (and the introspection and
    /// revocation endpoints, which share its error format) returns it.
    ///
    /// RFC 6749 §5.2 answers 400 for everything except `invalid_client`, which is 401: the
    /// server must then also send `WWW-Authenticate` when the client used the `Authorization`
    /// header.
    pub fn token_endpoint_status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient => 401,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A protocol error: the code the client acts on and a description for its developer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    /// The error code.
    #[serde(rename = "error")]
    pub code: ErrorCode,
    /// Human-readable detail; never includes secrets or internals.
    #[serde(rename = "error_description", skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl OAuthError {
    /// An error with a description. Characters RFC 6749 §5.2 forbids in `error_description`
    /// (outside `%x20-21 / %x23-5B / %x5D-7E`, so also `"` and `\`) become `?`, because the
    /// description may be shown in a redirect as well as in JSON.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let description: String = description
            .into()
            .chars()
            .map(|c| if is_description_char(c) { c } else { '?' })
            .collect();
        OAuthError {
            code,
            description: Some(description),
        }
    }

    /// An error with no description.
    pub fn bare(code: ErrorCode) -> Self {
        OAuthError {
            code,
            description: None,
        }
    }

    /// An `invalid_request` error.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    /// The RFC 6749 §5.2 JSON body: `{"error": …, "error_description": …}`.
    pub fn to_json_body(&self) -> String {
        // Serializing a struct of strings cannot fail.
        serde_json::to_string(self).expect("an OAuthError always serializes")
    }

    /// The HTTP status at the token endpoint; see [`ErrorCode::token_endpoint_status`].
    pub fn token_endpoint_status(&self) -> u16 {
        self.code.token_endpoint_status()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(description) => write!(f, "{}: {}", self.code, description),
            None => write!(f, "{}", self.code),
        }
    }
}

impl std::error::Error for OAuthError {}

fn is_description_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelled_as_the_specs_spell_them() {
        let expected = [
            "invalid_request",
            "unauthorized_client",
            "access_denied",
            "unsupported_response_type",
            "invalid_scope",
            "server_error",
            "temporarily_unavailable",
            "interaction_required",
            "login_required",
            "account_selection_required",
            "consent_required",
            "invalid_request_uri",
            "invalid_request_object",
            "request_not_supported",
            "request_uri_not_supported",
            "registration_not_supported",
            "invalid_client",
            "invalid_grant",
            "unsupported_grant_type",
            "invalid_token",
            "unsupported_token_type",
            "invalid_redirect_uri",
            "invalid_client_metadata",
        ];
        let spelled: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(spelled, expected);
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(*code));
        }
        assert_eq!(ErrorCode::from_name("Invalid_Request"), None);
    }

    #[test]
    fn only_invalid_client_is_401_at_the_token_endpoint() {
        for code in ErrorCode::ALL {
            let expected = if *code == ErrorCode::InvalidClient {
                401
            } else {
                400
            };
            assert_eq!(code.token_endpoint_status(), expected, "{code}");
        }
    }

    #[test]
    fn json_body_has_the_rfc_6749_shape() {
        let cases = [
            (
                OAuthError::new(ErrorCode::InvalidGrant, "code expired"),
                r#"{"error":"invalid_grant","error_description":"code expired"}"#,
            ),
            (
                OAuthError::bare(ErrorCode::InvalidClient),
                r#"{"error":"invalid_client"}"#,
            ),
        ];
        for (error, body) in cases {
            assert_eq!(error.to_json_body(), body);
        }
    }

    #[test]
    fn description_drops_characters_the_rfc_forbids() {
        let cases = [
            ("plain text!", "plain text!"),
            ("say \"hi\"", "say ?hi?"),
            ("back\\slash", "back?slash"),
            ("new\nline", "new?line"),
            ("caf\u{e9}", "caf?"),
        ];
        for (given, expected) in cases {
            let error = OAuthError::invalid_request(given);
            assert_eq!(error.description.as_deref(), Some(expected), "{given:?}");
        }
    }

    #[test]
    fn display_shows_code_and_description() {
        assert_eq!(
            OAuthError::invalid_request("state is duplicated").to_string(),
            "invalid_request: state is duplicated"
        );
        assert_eq!(
            OAuthError::bare(ErrorCode::ServerError).to_string(),
            "server_error"
        );
    }
}
