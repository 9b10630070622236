//! Dynamic Client Registration (RFC 7591, RFC 7592, OpenID Connect Dynamic Client Registration
//! 1.0): a registration request's JSON in, a typed [`ClientRegistration`] or the RFC 7591 §3.2.2
//! error out; and the client metadata a registration or read answers with.
//!
//! Which metadata is refused. RFC 7591 §2 says "The authorization server MUST ignore any client
//! metadata sent by the client that it does not understand (for instance, by silently removing
//! unknown metadata from the client's registration record during processing)." So members we do
//! not know are dropped, and the response (which carries the metadata as registered) does not
//! echo them. What we refuse is metadata we understand but whose value we cannot honour, under
//! §3.2.1 ("The authorization server MAY reject or replace any of the client's requested
//! metadata values") and §2.1 (`grant_types` and `response_types` must be consistent): a
//! `response_type` other than `code`, a grant without its response type or the reverse, an
//! authentication method, signing algorithm or subject type we do not offer, encrypted or
//! signed responses we never produce, and a value of the wrong JSON type. Each is
//! `invalid_client_metadata` (or `invalid_redirect_uri` for the redirection URIs) with a
//! description naming the member; a silent substitution would leave a client expecting what
//! it asked for.
//!
//! Logout URIs: a registration's `backchannel_logout_uri` and `frontchannel_logout_uri` must be
//! `https`, or `http` on a loopback host (`localhost`, `127.0.0.1`, `[::1]`): nobody vouches for
//! a dynamically registered client, so unlike an administrator's application it gets no plain
//! http on a network host. Redirect URIs follow the same rules as an administrator's
//! (the domain checks them).

use serde_json::{Map, Value, json};

use crate::claims::JwsAlgorithm;
use crate::client::{GrantType, TokenEndpointAuthMethod};
use crate::error::{ErrorCode, OAuthError};

/// The largest registration request we read. RFC 7591 sets no limit; a larger body is answered
/// as invalid metadata (400 `invalid_client_metadata`), the error §3.2.2 has for a request we
/// refuse, rather than 413, which clients of the RFC would not know to read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The name a client that sends no `client_name` is listed under.
pub const DEFAULT_CLIENT_NAME: &str = "Dynamically registered client";

/// Members that ask for something we never produce: honouring them is impossible and ignoring
/// them would hand the client responses it will not accept.
const UNSUPPORTED_MEMBERS: &[&str] = &[
    "id_token_encrypted_response_alg",
    "id_token_encrypted_response_enc",
    "userinfo_signed_response_alg",
    "userinfo_encrypted_response_alg",
    "userinfo_encrypted_response_enc",
];

/// Members a client must not send (RFC 7592 §2.2: they are the server's to set).
const SERVER_MEMBERS: &[&str] = &[
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// A registration request the server can honour, with RFC 7591 §2's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRegistration {
    /// `client_name`, or [`DEFAULT_CLIENT_NAME`].
    pub client_name: String,
    /// `redirect_uris`.
    pub redirect_uris: Vec<String>,
    /// `post_logout_redirect_uris` (RP-Initiated Logout 1.0 §3.1).
    pub post_logout_redirect_uris: Vec<String>,
    /// `grant_types`; default `authorization_code`.
    pub grant_types: Vec<GrantType>,
    /// `token_endpoint_auth_method`; default `client_secret_basic`. `none` makes a public
    /// client.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// `id_token_signed_response_alg`; default RS256 (OpenID Connect Dynamic Client
    /// Registration 1.0 §2).
    pub id_token_signed_response_alg: JwsAlgorithm,
    /// `backchannel_logout_uri` (Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    /// `backchannel_logout_session_required`; default false.
    pub backchannel_logout_session_required: bool,
    /// `frontchannel_logout_uri` (Front-Channel Logout 1.0 §2).
    pub frontchannel_logout_uri: Option<String>,
    /// `frontchannel_logout_session_required`; default false.
    pub frontchannel_logout_session_required: bool,
    /// `scope`, kept only for a client that uses `client_credentials` (the scopes it may ask
    /// for there); for others the user's consent decides.
    pub scope: Vec<String>,
}

fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

fn redirect_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, description)
}

/// A member's value, if present and not `null`.
fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|value| !value.is_null())
}

fn string(object: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    match member(object, name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(metadata_error(format!("{name} must be a string"))),
    }
}

fn strings(
    object: &Map<String, Value>,
    name: &str,
    error: fn(String) -> OAuthError,
) -> Result<Option<Vec<String>>, OAuthError> {
    match member(object, name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(value) => Ok(value.clone()),
                _ => Err(error(format!("{name} must be an array of strings"))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(error(format!("{name} must be an array of strings"))),
    }
}

fn boolean(object: &Map<String, Value>, name: &str) -> Result<bool, OAuthError> {
    match member(object, name) {
        None => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(metadata_error(format!("{name} must be true or false"))),
    }
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.ends_with(".localhost")
}

/// A logout URI of a registration: https, or http on a loopback host (see the module doc).
fn check_logout_uri(name: &str, uri: &str) -> Result<(), OAuthError> {
    let parsed = url::Url::parse(uri)
        .map_err(|error| metadata_error(format!("{name} is not an absolute URI ({error})")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if parsed.host_str().is_some_and(is_loopback) => Ok(()),
        _ => Err(metadata_error(format!(
            "{name} must be an https URL (http only on a loopback host)"
        ))),
    }
}

/// The `scope` member as a list of scope tokens.
fn scope_list(object: &Map<String, Value>) -> Result<Vec<String>, OAuthError> {
    Ok(string(object, "scope")?
        .map(|scope| {
            scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default())
}

impl ClientRegistration {
    /// Parses a registration request (RFC 7591 §3.1) or the full metadata of an update
    /// (RFC 7592 §2.2; the caller checks its `client_id` with [`check_update`]).
    pub fn parse(body: &[u8]) -> Result<ClientRegistration, OAuthError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(metadata_error(format!(
                "the request is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        let object: Map<String, Value> = serde_json::from_slice(body).map_err(|error| {
            metadata_error(format!("the request is not a JSON object ({error})"))
        })?;
        Self::from_object(&object)
    }

    fn from_object(object: &Map<String, Value>) -> Result<ClientRegistration, OAuthError> {
        for name in UNSUPPORTED_MEMBERS {
            if member(object, name).is_some() {
                return Err(metadata_error(format!(
                    "{name} is not supported: ID tokens are signed JWTs, never encrypted, and \
                     UserInfo answers plain JSON"
                )));
            }
        }
        let grant_types = match strings(object, "grant_types", metadata_error)? {
            None => vec![GrantType::AuthorizationCode],
            Some(names) => {
                let mut grants = Vec::new();
                for name in &names {
                    let grant = GrantType::from_name(name).ok_or_else(|| {
                        metadata_error(format!(
                            "grant_types: {name:?} is not supported (authorization_code, \
                             refresh_token, client_credentials)"
                        ))
                    })?;
                    if !grants.contains(&grant) {
                        grants.push(grant);
                    }
                }
                if grants.is_empty() {
                    return Err(metadata_error("grant_types must name at least one grant"));
                }
                grants
            }
        };
        let uses_code = grant_types.contains(&GrantType::AuthorizationCode);
        // §2.1: `code` goes with `authorization_code`. Omitted, response_types is `code` for a
        // client of the code grant and nothing for one without it.
        let response_types =
            strings(object, "response_types", metadata_error)?.unwrap_or_else(|| {
                if uses_code {
                    vec!["code".into()]
                } else {
                    vec![]
                }
            });
        if let Some(other) = response_types.iter().find(|r| r.as_str() != "code") {
            return Err(metadata_error(format!(
                "response_types: {other:?} is not supported; only code"
            )));
        }
        if response_types.is_empty() == uses_code {
            return Err(metadata_error(
                "grant_types and response_types conflict: the code response type goes with \
                 the authorization_code grant (RFC 7591 §2.1)",
            ));
        }
        let token_endpoint_auth_method = match string(object, "token_endpoint_auth_method")? {
            None => TokenEndpointAuthMethod::ClientSecretBasic,
            Some(name) => TokenEndpointAuthMethod::ALL
                .iter()
                .copied()
                .find(|method| method.as_str() == name)
                .ok_or_else(|| {
                    metadata_error(format!(
                        "token_endpoint_auth_method: {name:?} is not supported \
                         (client_secret_basic, client_secret_post, none)"
                    ))
                })?,
        };
        let id_token_signed_response_alg = match string(object, "id_token_signed_response_alg")? {
            None => JwsAlgorithm::RS256,
            Some(name) => [
                JwsAlgorithm::RS256,
                JwsAlgorithm::ES256,
                JwsAlgorithm::EdDSA,
            ]
            .into_iter()
            .find(|alg| alg.as_str() == name)
            .ok_or_else(|| {
                metadata_error(format!(
                    "id_token_signed_response_alg: {name:?} is not supported (RS256, ES256, \
                         EdDSA)"
                ))
            })?,
        };
        if let Some(subject_type) = string(object, "subject_type")?
            && subject_type != "public"
        {
            return Err(metadata_error(format!(
                "subject_type: {subject_type:?} is not supported; only public"
            )));
        }
        if let Some(application_type) = string(object, "application_type")?
            && !matches!(application_type.as_str(), "web" | "native")
        {
            return Err(metadata_error(format!(
                "application_type: {application_type:?} is neither web nor native"
            )));
        }
        let backchannel_logout_uri = string(object, "backchannel_logout_uri")?;
        if let Some(uri) = &backchannel_logout_uri {
            check_logout_uri("backchannel_logout_uri", uri)?;
        }
        let frontchannel_logout_uri = string(object, "frontchannel_logout_uri")?;
        if let Some(uri) = &frontchannel_logout_uri {
            check_logout_uri("frontchannel_logout_uri", uri)?;
        }
        let scope = if grant_types.contains(&GrantType::ClientCredentials) {
            scope_list(object)?
        } else {
            scope_list(object)?;
            vec![]
        };
        Ok(ClientRegistration {
            client_name: string(object, "client_name")?
                .unwrap_or_else(|| DEFAULT_CLIENT_NAME.into()),
            redirect_uris: strings(object, "redirect_uris", redirect_error)?.unwrap_or_default(),
            post_logout_redirect_uris: strings(
                object,
                "post_logout_redirect_uris",
                redirect_error,
            )?
            .unwrap_or_default(),
            grant_types,
            token_endpoint_auth_method,
            id_token_signed_response_alg,
            backchannel_logout_uri,
            backchannel_logout_session_required: boolean(
                object,
                "backchannel_logout_session_required",
            )?,
            frontchannel_logout_uri,
            frontchannel_logout_session_required: boolean(
                object,
                "frontchannel_logout_session_required",
            )?,
            scope,
        })
    }

    /// The client metadata as registered (RFC 7591 §3.2.1), every member with its value in
    /// force, defaults included.
    pub fn metadata(&self) -> Map<String, Value> {
        let response_types: Vec<&str> = if self.grant_types.contains(&GrantType::AuthorizationCode)
        {
            vec!["code"]
        } else {
            vec![]
        };
        let mut metadata = json!({
            "client_name": self.client_name,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "grant_types": self.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "response_types": response_types,
            "token_endpoint_auth_method": self.token_endpoint_auth_method.as_str(),
            "id_token_signed_response_alg": self.id_token_signed_response_alg.as_str(),
            "subject_type": "public",
            "backchannel_logout_session_required": self.backchannel_logout_session_required,
            "frontchannel_logout_session_required": self.frontchannel_logout_session_required,
        });
        // json! of an object literal is always an object.
        let Value::Object(map) = &mut metadata else {
            unreachable!("an object literal")
        };
        if let Some(uri) = &self.backchannel_logout_uri {
            map.insert("backchannel_logout_uri".into(), uri.clone().into());
        }
        if let Some(uri) = &self.frontchannel_logout_uri {
            map.insert("frontchannel_logout_uri".into(), uri.clone().into());
        }
        if !self.scope.is_empty() {
            map.insert("scope".into(), self.scope.join(" ").into());
        }
        std::mem::take(map)
    }
}

/// RFC 7592 §2.2: an update carries the client's `client_id`, and none of the members the
/// server sets. Returns the `client_secret` it carries, if any, which "MUST match the
/// currently issued client secret" (the caller holds only its hash, so it compares).
pub fn check_update(body: &[u8], client_id: &str) -> Result<Option<String>, OAuthError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(metadata_error(format!(
            "the request is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    let object: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|error| metadata_error(format!("the request is not a JSON object ({error})")))?;
    match member(&object, "client_id") {
        Some(Value::String(sent)) if sent == client_id => {}
        _ => {
            return Err(metadata_error(
                "client_id must be sent and match the client being updated (RFC 7592 §2.2)",
            ));
        }
    }
    if let Some(name) = SERVER_MEMBERS
        .iter()
        .find(|name| object.contains_key(**name))
    {
        return Err(metadata_error(format!(
            "{name} is set by the server and must not be sent (RFC 7592 §2.2)"
        )));
    }
    match member(&object, "client_secret") {
        None => Ok(None),
        Some(Value::String(secret)) => Ok(Some(secret.clone())),
        Some(_) => Err(metadata_error("client_secret must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Value) -> Result<ClientRegistration, OAuthError> {
        ClientRegistration::parse(value.to_string().as_bytes())
    }

    #[test]
    fn defaults_follow_the_specs() {
        let registration = parse(json!({"redirect_uris": ["https://rp.example/cb"]})).unwrap();
        assert_eq!(registration.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(
            registration.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(
            registration.id_token_signed_response_alg,
            JwsAlgorithm::RS256
        );
        assert_eq!(registration.client_name, DEFAULT_CLIENT_NAME);
        let metadata = registration.metadata();
        assert_eq!(metadata["response_types"], json!(["code"]));
        assert_eq!(metadata["subject_type"], json!("public"));
    }

    #[test]
    fn every_supported_member_is_read_and_echoed() {
        let request = json!({
            "client_name": "RP",
            "redirect_uris": ["https://rp.example/cb"],
            "post_logout_redirect_uris": ["https://rp.example/bye"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
            "id_token_signed_response_alg": "ES256",
            "backchannel_logout_uri": "https://rp.example/bc",
            "backchannel_logout_session_required": true,
            "frontchannel_logout_uri": "https://rp.example/fc",
            "frontchannel_logout_session_required": true,
            "subject_type": "public",
            "logo_uri": "https://rp.example/logo.png",
            "some_extension": {"ignored": true}
        });
        let registration = parse(request.clone()).unwrap();
        let metadata = registration.metadata();
        for (name, value) in request.as_object().unwrap() {
            match name.as_str() {
                "logo_uri" | "some_extension" => assert!(!metadata.contains_key(name), "{name}"),
                _ => assert_eq!(&metadata[name], value, "{name}"),
            }
        }
    }

    #[test]
    fn refusals_carry_the_rfc_7591_code() {
        let redirect = ErrorCode::InvalidRedirectUri;
        let metadata = ErrorCode::InvalidClientMetadata;
        let cases: Vec<(Value, ErrorCode)> = vec![
            (json!({"redirect_uris": "https://rp.example/cb"}), redirect),
            (json!({"redirect_uris": [1]}), redirect),
            (json!({"post_logout_redirect_uris": [true]}), redirect),
            (json!({"response_types": ["id_token"]}), metadata),
            (
                json!({"response_types": ["code"], "grant_types": ["client_credentials"]}),
                metadata,
            ),
            (
                json!({"response_types": [], "grant_types": ["authorization_code"]}),
                metadata,
            ),
            (json!({"grant_types": ["implicit"]}), metadata),
            (json!({"grant_types": []}), metadata),
            (
                json!({"token_endpoint_auth_method": "private_key_jwt"}),
                metadata,
            ),
            (json!({"id_token_signed_response_alg": "none"}), metadata),
            (json!({"id_token_signed_response_alg": "HS256"}), metadata),
            (json!({"subject_type": "pairwise"}), metadata),
            (json!({"application_type": "desktop"}), metadata),
            (
                json!({"id_token_encrypted_response_alg": "RSA-OAEP"}),
                metadata,
            ),
            (json!({"userinfo_signed_response_alg": "RS256"}), metadata),
            (
                json!({"backchannel_logout_uri": "http://rp.example/bc"}),
                metadata,
            ),
            (
                json!({"frontchannel_logout_uri": "http://rp.example/fc"}),
                metadata,
            ),
            (json!({"backchannel_logout_uri": "not a uri"}), metadata),
            (
                json!({"backchannel_logout_session_required": "yes"}),
                metadata,
            ),
            (json!({"client_name": 7}), metadata),
            (json!(["not", "an", "object"]), metadata),
        ];
        for (index, (request, code)) in cases.into_iter().enumerate() {
            let error = parse(request.clone()).expect_err(&format!("case {index}: {request}"));
            assert_eq!(error.code, code, "case {index}: {request}");
            assert!(error.description.is_some(), "case {index}");
        }
        let malformed = ClientRegistration::parse(b"{\"redirect_uris\": [").unwrap_err();
        assert_eq!(malformed.code, metadata);
        let oversized = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            ClientRegistration::parse(&oversized).unwrap_err().code,
            metadata
        );
    }

    #[test]
    fn loopback_logout_uris_may_use_http() {
        for uri in [
            "http://127.0.0.1:8080/bc",
            "http://localhost/bc",
            "https://rp.example/bc",
        ] {
            assert!(
                parse(json!({"backchannel_logout_uri": uri})).is_ok(),
                "{uri}"
            );
        }
    }

    #[test]
    fn client_credentials_clients_keep_their_scope() {
        let registration =
            parse(json!({"grant_types": ["client_credentials"], "scope": "read write"})).unwrap();
        assert_eq!(registration.scope, vec!["read", "write"]);
        assert_eq!(registration.metadata()["response_types"], json!([]));
        let code_client = parse(json!({"scope": "openid profile"})).unwrap();
        assert!(code_client.scope.is_empty());
    }

    #[test]
    fn updates_name_the_client_and_leave_server_members_alone() {
        let ok = json!({"client_id": "abc", "redirect_uris": []}).to_string();
        assert_eq!(check_update(ok.as_bytes(), "abc"), Ok(None));
        let with_secret = json!({"client_id": "abc", "client_secret": "s3cret"}).to_string();
        assert_eq!(
            check_update(with_secret.as_bytes(), "abc"),
            Ok(Some("s3cret".to_owned()))
        );
        for body in [
            json!({"redirect_uris": []}),
            json!({"client_id": "other"}),
            json!({"client_id": "abc", "registration_access_token": "x"}),
            json!({"client_id": "abc", "client_id_issued_at": 1}),
            json!({"client_id": "abc", "client_secret": 7}),
        ] {
            let error = check_update(body.to_string().as_bytes(), "abc").unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidClientMetadata, "{body}");
        }
    }
}
