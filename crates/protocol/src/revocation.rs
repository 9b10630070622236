//! Token revocation requests (RFC 7009 §2.1). The response is always `200` with an empty
//! body once the client authenticated, whether or not the token was valid (§2.2), so the
//! server needs no response type from here.

use crate::error::OAuthError;
use crate::params::Params;
use crate::token::{ClientAuthentication, client_authentication};

/// A `token_type_hint` value (RFC 7009 §2.1, registry of §4.1.2; reused by RFC 7662).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenTypeHint {
    /// The hint value.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }

    /// Reads a hint. Unknown values are `None`, not an error: RFC 7009 §2.2 says "an invalid
    /// token type hint value is ignored", and a hint only orders the search (§2.1: the server
    /// MUST extend its search to all token types if the hint is wrong).
    pub fn parse(value: Option<&str>) -> Option<TokenTypeHint> {
        match value? {
            "access_token" => Some(TokenTypeHint::AccessToken),
            "refresh_token" => Some(TokenTypeHint::RefreshToken),
            _ => None,
        }
    }
}

/// A parsed revocation request.
#[derive(Clone, PartialEq, Eq)]
pub struct RevocationRequest {
    /// Who is asking; the server authenticates it and revokes only that client's tokens.
    pub client: ClientAuthentication,
    /// The token to revoke.
    pub token: String,
    /// Where to look first.
    pub token_type_hint: Option<TokenTypeHint>,
}

impl std::fmt::Debug for RevocationRequest {
    // The token is a credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationRequest")
            .field("client", &self.client)
            .field("token_type_hint", &self.token_type_hint)
            .finish_non_exhaustive()
    }
}

impl RevocationRequest {
    /// Parses the form and client authentication (same rules as the token endpoint). A missing
    /// `token` is `invalid_request`.
    pub fn parse(
        authorization: Option<&str>,
        form: &[(String, String)],
    ) -> Result<RevocationRequest, OAuthError> {
        let params = Params::parse(form)?;
        let client = client_authentication(authorization, &params)?;
        Ok(RevocationRequest {
            client,
            token: params.required("token")?.to_string(),
            token_type_hint: TokenTypeHint::parse(params.get("token_type_hint")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::params::tests::pairs;

    #[test]
    fn revocation_request_table() {
        type Form<'a> = Vec<(&'a str, &'a str)>;
        type Expected<'a> = Result<(&'a str, Option<TokenTypeHint>), ErrorCode>;
        let cases: Vec<(Form, Expected)> = vec![
            (
                vec![("client_id", "native"), ("token", "t")],
                Ok(("t", None)),
            ),
            (
                vec![
                    ("client_id", "native"),
                    ("token", "t"),
                    ("token_type_hint", "refresh_token"),
                ],
                Ok(("t", Some(TokenTypeHint::RefreshToken))),
            ),
            (
                vec![
                    ("client_id", "native"),
                    ("token", "t"),
                    ("token_type_hint", "access_token"),
                ],
                Ok(("t", Some(TokenTypeHint::AccessToken))),
            ),
            // An unknown hint is ignored, not an error.
            (
                vec![
                    ("client_id", "native"),
                    ("token", "t"),
                    ("token_type_hint", "id_token"),
                ],
                Ok(("t", None)),
            ),
            (
                vec![("client_id", "native")],
                Err(ErrorCode::InvalidRequest),
            ),
            (
                vec![("client_id", "native"), ("token", "t"), ("token", "u")],
                Err(ErrorCode::InvalidRequest),
            ),
            (vec![("token", "t")], Err(ErrorCode::InvalidClient)),
        ];
        for (form, expected) in cases {
            let outcome = RevocationRequest::parse(None, &pairs(&form))
                .map(|request| (request.token.clone(), request.token_type_hint))
                .map_err(|e| e.code);
            let expected = expected.map(|(token, hint)| (token.to_string(), hint));
            assert_eq!(outcome, expected, "{form:?}");
        }
    }

    #[test]
    fn hint_names_and_debug() {
        for hint in [TokenTypeHint::AccessToken, TokenTypeHint::RefreshToken] {
            assert_eq!(TokenTypeHint::parse(Some(hint.as_str())), Some(hint));
        }
        assert_eq!(TokenTypeHint::parse(None), None);
        let request =
            RevocationRequest::parse(None, &pairs(&[("client_id", "c"), ("token", "secret-t")]))
                .unwrap();
        assert!(!format!("{request:?}").contains("secret-t"));
    }
}
