//! The OpenID Provider Metadata document (OpenID Connect Discovery 1.0 §3), with the metadata
//! of RFC 8414 (PKCE, introspection, revocation), RFC 9207 (`iss` in responses), RP-Initiated
//! Logout 1.0 §2.1 and Back-Channel Logout 1.0 §2.1 that we implement.

use serde::Serialize;
use url::Url;

use crate::authorize::Prompt;
use crate::claims::{CLAIMS_BY_SCOPE, JwsAlgorithm};
use crate::client::{GrantType, TokenEndpointAuthMethod};
use crate::pkce;
use crate::response::ResponseMode;

/// Where each endpoint lives, as a path below the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPaths {
    /// The authorization endpoint.
    pub authorization: String,
    /// The token endpoint.
    pub token: String,
    /// The UserInfo endpoint.
    pub userinfo: String,
    /// The JSON Web Key Set.
    pub jwks: String,
    /// The RP-Initiated Logout endpoint.
    pub end_session: String,
    /// The RFC 7662 introspection endpoint.
    pub introspection: String,
    /// The RFC 7009 revocation endpoint.
    pub revocation: String,
    /// The RFC 7591 registration endpoint; a client's configuration endpoint (RFC 7592) is
    /// this path followed by `/{client_id}`.
    pub registration: String,
}

impl Default for EndpointPaths {
    fn default() -> Self {
        EndpointPaths {
            authorization: "/oauth/v2/authorize".into(),
            token: "/oauth/v2/token".into(),
            userinfo: "/oidc/v1/userinfo".into(),
            jwks: "/oauth/v2/keys".into(),
            end_session: "/oidc/v1/end_session".into(),
            introspection: "/oauth/v2/introspect".into(),
            revocation: "/oauth/v2/revoke".into(),
            registration: "/oidc/v1/register".into(),
        }
    }
}

/// Why no metadata document could be built; these are configuration mistakes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The issuer is not an absolute URL.
    #[error("issuer {0} is not an absolute URL")]
    IssuerNotAUrl(String),
    /// Discovery §3: the issuer is an https URL "with no query or fragment components".
    #[error("issuer {0} must not have a query or fragment")]
    IssuerHasQueryOrFragment(String),
    /// Discovery §3 requires https; plain http is accepted only for loopback hosts in
    /// development.
    #[error("issuer {0} must use https (http only for localhost)")]
    IssuerNotHttps(String),
    /// Every endpoint path starts with `/`.
    #[error("endpoint path {0} must start with /")]
    PathNotAbsolute(String),
    /// Core §15.1 and Discovery §3: RS256 "MUST be included".
    #[error("id_token_signing_alg_values_supported must include RS256")]
    MissingRs256,
}

/// The OpenID Provider Metadata, ready to serialize as the discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderMetadata {
    /// The issuer identifier; identical to every `iss` we issue.
    pub issuer: String,
    /// The authorization endpoint URL.
    pub authorization_endpoint: String,
    /// The token endpoint URL.
    pub token_endpoint: String,
    /// The UserInfo endpoint URL.
    pub userinfo_endpoint: String,
    /// The JWK Set URL.
    pub jwks_uri: String,
    /// The RP-Initiated Logout endpoint URL.
    pub end_session_endpoint: String,
    /// The introspection endpoint URL (RFC 8414).
    pub introspection_endpoint: String,
    /// The revocation endpoint URL (RFC 8414).
    pub revocation_endpoint: String,
    /// The Dynamic Client Registration endpoint URL (RFC 7591, Discovery §3).
    pub registration_endpoint: String,
    /// Scope values we understand.
    pub scopes_supported: Vec<&'static str>,
    /// Only `code`.
    pub response_types_supported: Vec<&'static str>,
    /// `query` and `form_post`.
    pub response_modes_supported: Vec<&'static str>,
    /// `authorization_code` and `refresh_token`.
    pub grant_types_supported: Vec<&'static str>,
    /// Only `public` subject identifiers.
    pub subject_types_supported: Vec<&'static str>,
    /// The algorithms ID tokens may be signed with.
    pub id_token_signing_alg_values_supported: Vec<JwsAlgorithm>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication methods at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication methods at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Only `S256`.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// Claims we may release.
    pub claims_supported: Vec<&'static str>,
    /// `prompt` values we understand (Initiating User Registration 1.0 §4.1).
    pub prompt_values_supported: Vec<&'static str>,
    /// We do not support the `claims` request parameter.
    pub claims_parameter_supported: bool,
    /// We do not support Request Objects by value.
    pub request_parameter_supported: bool,
    /// We do not support Request Objects by reference. Published explicitly: Discovery §3
    /// makes an omitted value mean `true`.
    pub request_uri_parameter_supported: bool,
    /// RFC 9207: every authorization response carries `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// Back-Channel Logout §2.1; present only when the feature is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_supported: Option<bool>,
    /// Back-Channel Logout §2.1: logout tokens and ID tokens carry `sid`; only when on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_supported: Option<bool>,
    /// Front-Channel Logout §3: the signed-out page loads each application's logout URI.
    pub frontchannel_logout_supported: bool,
    /// Front-Channel Logout §3: `iss` and `sid` go to applications that require them, and ID
    /// tokens carry both.
    pub frontchannel_logout_session_supported: bool,
}

/// What varies between instances' discovery documents.
#[derive(Debug, Clone, Copy)]
pub struct DiscoveryInput<'a> {
    /// The instance's issuer URL.
    pub issuer: &'a str,
    /// Endpoint paths below the issuer.
    pub paths: &'a EndpointPaths,
    /// Algorithms the instance can sign ID tokens with; must include RS256.
    pub signing_algs: &'a [JwsAlgorithm],
    /// Whether the instance's `back_channel_logout` feature is on.
    pub backchannel_logout: bool,
}

/// The claims we may put in ID tokens and UserInfo responses.
const ID_TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "sid",
    "at_hash",
    "azp",
];

impl ProviderMetadata {
    /// Builds the document for one instance.
    pub fn build(input: DiscoveryInput<'_>) -> Result<ProviderMetadata, DiscoveryError> {
        check_issuer(input.issuer)?;
        if !input.signing_algs.contains(&JwsAlgorithm::RS256) {
            return Err(DiscoveryError::MissingRs256);
        }
        let base = input.issuer.trim_end_matches('/');
        let endpoint = |path: &str| {
            if path.starts_with('/') {
                Ok(format!("{base}{path}"))
            } else {
                Err(DiscoveryError::PathNotAbsolute(path.to_string()))
            }
        };
        let paths = input.paths;
        let mut signing_algs = input.signing_algs.to_vec();
        signing_algs.sort();
        signing_algs.dedup();
        let secret_methods = vec![
            TokenEndpointAuthMethod::ClientSecretBasic.as_str(),
            TokenEndpointAuthMethod::ClientSecretPost.as_str(),
        ];
        let backchannel = input.backchannel_logout.then_some(true);
        Ok(ProviderMetadata {
            issuer: input.issuer.to_string(),
            authorization_endpoint: endpoint(&paths.authorization)?,
            token_endpoint: endpoint(&paths.token)?,
            userinfo_endpoint: endpoint(&paths.userinfo)?,
            jwks_uri: endpoint(&paths.jwks)?,
            end_session_endpoint: endpoint(&paths.end_session)?,
            introspection_endpoint: endpoint(&paths.introspection)?,
            revocation_endpoint: endpoint(&paths.revocation)?,
            registration_endpoint: endpoint(&paths.registration)?,
            scopes_supported: scopes_supported(),
            response_types_supported: vec!["code"],
            response_modes_supported: vec![
                ResponseMode::Query.as_str(),
                ResponseMode::FormPost.as_str(),
            ],
            grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: signing_algs,
            token_endpoint_auth_methods_supported: TokenEndpointAuthMethod::ALL
                .iter()
                .map(|m| m.as_str())
                .collect(),
            introspection_endpoint_auth_methods_supported: secret_methods.clone(),
            // RFC 7009 §5: public clients may revoke their own tokens with only a client_id.
            revocation_endpoint_auth_methods_supported: TokenEndpointAuthMethod::ALL
                .iter()
                .map(|m| m.as_str())
                .collect(),
            code_challenge_methods_supported: vec![pkce::S256],
            claims_supported: claims_supported(),
            prompt_values_supported: Prompt::ALL.iter().map(|p| p.as_str()).collect(),
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            authorization_response_iss_parameter_supported: true,
            backchannel_logout_supported: backchannel,
            backchannel_logout_session_supported: backchannel,
            frontchannel_logout_supported: true,
            frontchannel_logout_session_supported: true,
        })
    }

    /// The JSON document.
    pub fn to_json_body(&self) -> String {
        // Strings, booleans and lists of them: serialization cannot fail.
        serde_json::to_string(self).expect("ProviderMetadata always serializes")
    }
}

/// Where the document is served for `issuer` (Discovery §4.1: the issuer with any trailing `/`
/// removed, then `/.well-known/openid-configuration`).
pub fn configuration_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

fn check_issuer(issuer: &str) -> Result<(), DiscoveryError> {
    let url = Url::parse(issuer).map_err(|_| DiscoveryError::IssuerNotAUrl(issuer.into()))?;
    // `Url` drops an empty `?` or `#`; the raw text must not have them either.
    if url.query().is_some() || url.fragment().is_some() || issuer.contains(['?', '#']) {
        return Err(DiscoveryError::IssuerHasQueryOrFragment(issuer.into()));
    }
    let loopback = matches!(
        url.host_str(),
        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
    );
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(DiscoveryError::IssuerNotHttps(issuer.into())),
    }
}

fn scopes_supported() -> Vec<&'static str> {
    let mut scopes = vec![crate::scope::OPENID];
    scopes.extend(CLAIMS_BY_SCOPE.iter().map(|(scope, _)| *scope));
    scopes.push(crate::scope::OFFLINE_ACCESS);
    scopes
}

fn claims_supported() -> Vec<&'static str> {
    let mut claims = ID_TOKEN_CLAIMS.to_vec();
    claims.extend(
        CLAIMS_BY_SCOPE
            .iter()
            .flat_map(|(_, claims)| claims.iter().copied()),
    );
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The token endpoint a valid issuer yields, or the error an invalid one gets.
    type Expected = Result<&'static str, fn(String) -> DiscoveryError>;

    fn build(issuer: &str, backchannel_logout: bool) -> Result<Value, DiscoveryError> {
        let paths = EndpointPaths::default();
        let metadata = ProviderMetadata::build(DiscoveryInput {
            issuer,
            paths: &paths,
            signing_algs: &[
                JwsAlgorithm::EdDSA,
                JwsAlgorithm::RS256,
                JwsAlgorithm::ES256,
            ],
            backchannel_logout,
        })?;
        Ok(serde_json::from_str(&metadata.to_json_body()).unwrap())
    }

    #[test]
    fn document_has_the_required_and_promised_fields() {
        let doc = build("https://op.example", false).unwrap();
        let expected = [
            ("issuer", json!("https://op.example")),
            (
                "authorization_endpoint",
                json!("https://op.example/oauth/v2/authorize"),
            ),
            ("token_endpoint", json!("https://op.example/oauth/v2/token")),
            (
                "userinfo_endpoint",
                json!("https://op.example/oidc/v1/userinfo"),
            ),
            ("jwks_uri", json!("https://op.example/oauth/v2/keys")),
            (
                "end_session_endpoint",
                json!("https://op.example/oidc/v1/end_session"),
            ),
            (
                "introspection_endpoint",
                json!("https://op.example/oauth/v2/introspect"),
            ),
            (
                "revocation_endpoint",
                json!("https://op.example/oauth/v2/revoke"),
            ),
            (
                "registration_endpoint",
                json!("https://op.example/oidc/v1/register"),
            ),
            ("response_types_supported", json!(["code"])),
            ("response_modes_supported", json!(["query", "form_post"])),
            (
                "grant_types_supported",
                json!(["authorization_code", "refresh_token", "client_credentials"]),
            ),
            ("subject_types_supported", json!(["public"])),
            (
                "id_token_signing_alg_values_supported",
                json!(["RS256", "ES256", "EdDSA"]),
            ),
            (
                "token_endpoint_auth_methods_supported",
                json!(["client_secret_basic", "client_secret_post", "none"]),
            ),
            ("code_challenge_methods_supported", json!(["S256"])),
            (
                "scopes_supported",
                json!([
                    "openid",
                    "profile",
                    "email",
                    "address",
                    "phone",
                    "offline_access"
                ]),
            ),
            (
                "prompt_values_supported",
                json!(["none", "login", "consent", "select_account"]),
            ),
            ("claims_parameter_supported", json!(false)),
            ("request_parameter_supported", json!(false)),
            ("request_uri_parameter_supported", json!(false)),
            (
                "authorization_response_iss_parameter_supported",
                json!(true),
            ),
        ];
        for (field, value) in expected {
            assert_eq!(doc[field], value, "{field}");
        }
        let claims = doc["claims_supported"].as_array().unwrap();
        for claim in [
            "sub",
            "iss",
            "sid",
            "email",
            "email_verified",
            "preferred_username",
        ] {
            assert!(claims.contains(&json!(claim)), "{claim}");
        }
        assert!(doc.get("backchannel_logout_supported").is_none());
        assert!(doc.get("backchannel_logout_session_supported").is_none());
    }

    #[test]
    fn back_channel_logout_is_published_only_when_on() {
        let doc = build("https://op.example", true).unwrap();
        assert_eq!(doc["backchannel_logout_supported"], json!(true));
        assert_eq!(doc["backchannel_logout_session_supported"], json!(true));
    }

    #[test]
    fn issuer_table() {
        let cases: &[(&str, Expected)] = &[
            (
                "https://op.example",
                Ok("https://op.example/oauth/v2/token"),
            ),
            (
                "https://op.example/",
                Ok("https://op.example/oauth/v2/token"),
            ),
            (
                "https://op.example/tenant",
                Ok("https://op.example/tenant/oauth/v2/token"),
            ),
            (
                "http://localhost:8080",
                Ok("http://localhost:8080/oauth/v2/token"),
            ),
            (
                "http://127.0.0.1:8080",
                Ok("http://127.0.0.1:8080/oauth/v2/token"),
            ),
            ("http://[::1]:8080", Ok("http://[::1]:8080/oauth/v2/token")),
            ("http://op.example", Err(DiscoveryError::IssuerNotHttps)),
            ("ftp://op.example", Err(DiscoveryError::IssuerNotHttps)),
            (
                "https://op.example?x=1",
                Err(DiscoveryError::IssuerHasQueryOrFragment),
            ),
            (
                "https://op.example/#",
                Err(DiscoveryError::IssuerHasQueryOrFragment),
            ),
            (
                "https://op.example?",
                Err(DiscoveryError::IssuerHasQueryOrFragment),
            ),
            ("op.example", Err(DiscoveryError::IssuerNotAUrl)),
        ];
        for (issuer, expected) in cases {
            let outcome = build(issuer, false).map(|doc| doc["token_endpoint"].clone());
            match expected {
                Ok(token_endpoint) => {
                    let doc_endpoint = outcome.unwrap_or_else(|e| panic!("{issuer}: {e}"));
                    assert_eq!(doc_endpoint, json!(token_endpoint), "{issuer}");
                }
                Err(make) => assert_eq!(outcome, Err(make(issuer.to_string())), "{issuer}"),
            }
        }
    }

    #[test]
    fn rs256_is_mandatory_and_paths_absolute() {
        let paths = EndpointPaths::default();
        let without_rs256 = ProviderMetadata::build(DiscoveryInput {
            issuer: "https://op.example",
            paths: &paths,
            signing_algs: &[JwsAlgorithm::ES256],
            backchannel_logout: false,
        });
        assert_eq!(without_rs256, Err(DiscoveryError::MissingRs256));
        let relative = EndpointPaths {
            token: "token".into(),
            ..EndpointPaths::default()
        };
        let outcome = ProviderMetadata::build(DiscoveryInput {
            issuer: "https://op.example",
            paths: &relative,
            signing_algs: &[JwsAlgorithm::RS256],
            backchannel_logout: false,
        });
        assert_eq!(
            outcome,
            Err(DiscoveryError::PathNotAbsolute("token".into()))
        );
    }

    #[test]
    fn configuration_url_appends_the_well_known_path() {
        let cases = [
            (
                "https://op.example",
                "https://op.example/.well-known/openid-configuration",
            ),
            (
                "https://op.example/",
                "https://op.example/.well-known/openid-configuration",
            ),
            (
                "https://op.example/t1",
                "https://op.example/t1/.well-known/openid-configuration",
            ),
        ];
        for (issuer, expected) in cases {
            assert_eq!(configuration_url(issuer), expected);
        }
    }
}
