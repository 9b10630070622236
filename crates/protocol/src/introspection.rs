//! Token introspection (RFC 7662): the request (§2.1) and the response (§2.2).

use serde::Serialize;

use crate::error::OAuthError;
use crate::params::Params;
use crate::revocation::TokenTypeHint;
use crate::scope::ScopeSet;
use crate::token::{ClientAuthentication, client_authentication};

/// A parsed introspection request.
#[derive(Clone, PartialEq, Eq)]
pub struct IntrospectionRequest {
    /// The protected resource asking, authenticated like a client at the token endpoint.
    pub client: ClientAuthentication,
    /// The token to describe.
    pub token: String,
    /// Where to look first; unknown hints are ignored (see [`TokenTypeHint::parse`]).
    pub token_type_hint: Option<TokenTypeHint>,
}

impl std::fmt::Debug for IntrospectionRequest {
    // The token is a credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionRequest")
            .field("client", &self.client)
            .field("token_type_hint", &self.token_type_hint)
            .finish_non_exhaustive()
    }
}

impl IntrospectionRequest {
    /// Parses the form and client authentication. A missing `token` is `invalid_request`.
    pub fn parse(
        authorization: Option<&str>,
        form: &[(String, String)],
    ) -> Result<IntrospectionRequest, OAuthError> {
        let params = Params::parse(form)?;
        let client = client_authentication(authorization, &params)?;
        Ok(IntrospectionRequest {
            client,
            token: params.required("token")?.to_string(),
            token_type_hint: TokenTypeHint::parse(params.get("token_type_hint")),
        })
    }
}

/// The introspection response (RFC 7662 §2.2). Build inactive answers with
/// [`IntrospectionResponse::inactive`]: §2.2 says to reveal nothing else about such tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IntrospectionResponse {
    /// Whether the token is currently active.
    pub active: bool,
    /// The token's scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeSet>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A human-readable identifier of the user who authorized the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issue time, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The session the token belongs to (not in RFC 7662's list; an extension member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl IntrospectionResponse {
    /// `{"active": false}` and nothing else.
    pub fn inactive() -> IntrospectionResponse {
        IntrospectionResponse::default()
    }

    /// The JSON body.
    pub fn to_json_body(&self) -> String {
        // Strings, integers and booleans only: serialization cannot fail.
        serde_json::to_string(self).expect("an IntrospectionResponse always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::params::tests::pairs;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn introspection_request_table() {
        let header = format!("Basic {}", STANDARD.encode("rs:secret"));
        type Form<'a> = Vec<(&'a str, &'a str)>;
        type Expected = Result<Option<TokenTypeHint>, ErrorCode>;
        let cases: Vec<(Option<&str>, Form, Expected)> = vec![
            (Some(&header), vec![("token", "t")], Ok(None)),
            (
                Some(&header),
                vec![("token", "t"), ("token_type_hint", "access_token")],
                Ok(Some(TokenTypeHint::AccessToken)),
            ),
            (
                Some(&header),
                vec![("token", "t"), ("token_type_hint", "bogus")],
                Ok(None),
            ),
            (Some(&header), vec![], Err(ErrorCode::InvalidRequest)),
            (None, vec![("token", "t")], Err(ErrorCode::InvalidClient)),
            (
                Some("Bearer x"),
                vec![("token", "t")],
                Err(ErrorCode::InvalidClient),
            ),
        ];
        for (authorization, form, expected) in cases {
            let outcome = IntrospectionRequest::parse(authorization, &pairs(&form))
                .map(|request| request.token_type_hint)
                .map_err(|e| e.code);
            assert_eq!(outcome, expected, "{authorization:?} {form:?}");
        }
    }

    #[test]
    fn inactive_response_reveals_nothing() {
        assert_eq!(
            IntrospectionResponse::inactive().to_json_body(),
            r#"{"active":false}"#
        );
    }

    #[test]
    fn active_response_serializes_per_rfc_7662() {
        let response = IntrospectionResponse {
            active: true,
            scope: Some(ScopeSet::parse("openid email").unwrap()),
            client_id: Some("web".into()),
            username: Some("alice".into()),
            token_type: Some("Bearer".into()),
            exp: Some(1_700_000_300),
            iat: Some(1_700_000_000),
            sub: Some("u1".into()),
            aud: Some("web".into()),
            iss: Some("https://op.example".into()),
            sid: Some("s1".into()),
        };
        assert_eq!(
            response.to_json_body(),
            r#"{"active":true,"scope":"email openid","client_id":"web","username":"alice","token_type":"Bearer","exp":1700000300,"iat":1700000000,"sub":"u1","aud":"web","iss":"https://op.example","sid":"s1"}"#
        );
    }
}
