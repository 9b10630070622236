//! Dynamic Client Registration: `POST /oidc/v1/register` (RFC 7591 §3, OpenID Connect Dynamic
//! Client Registration 1.0) and the client configuration endpoint `GET|PUT|DELETE
//! /oidc/v1/register/{client_id}` (RFC 7592 §2). The metadata rules are
//! `protocol::registration`'s; the application is the domain's, validated as the admin API's
//! are. Here: the bearer tokens, the body limit, and the responses.
//!
//! Status codes: 201 with the client information on registration (RFC 7591 §3.2.1); 200 on read
//! and update, 204 on delete (RFC 7592 §2.1–2.3); 400 with `invalid_redirect_uri` or
//! `invalid_client_metadata` and a description (RFC 7591 §3.2.2); 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"` for an initial or registration access token
//! that is unknown, expired, used up or revoked, and for a client that does not exist (RFC 7592
//! §2.1 answers that with 401 too, so nobody learns which client_ids exist); 401 with a bare
//! `Bearer` challenge when a token is required and none was sent (RFC 6750 §3.1).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::application::{
    AuthMethod, ClientType, GrantType, OidcConfig, RegistrationGrant, SigningAlgorithm,
};
use domain::{DomainError, Feature};
use protocol::claims::JwsAlgorithm;
use protocol::client::{self, TokenEndpointAuthMethod};
use protocol::discovery::EndpointPaths;
use protocol::registration::{ClientRegistration, MAX_BODY_BYTES, check_update};
use protocol::{ErrorCode, OAuthError};
use serde_json::{Map, Value};

use super::Issuer;
use crate::http::AppState;
use crate::http::admin::application_settings::{
    DEFAULT_REFRESH_TOKEN_LIFETIME_SECS, DEFAULT_TOKEN_LIFETIME_SECS,
};
use crate::http::error::ApiError;

/// A JSON answer that must not be cached (RFC 7591 §3.2.1: it may hold credentials).
fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
            (PRAGMA, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// 400 with an RFC 7591 §3.2.2 error.
fn refused(error: &OAuthError) -> Response {
    json_response(StatusCode::BAD_REQUEST, error.to_json_body())
}

/// 401 for a bad token (`invalid_token`, RFC 6750 §3.1) or none at all (a bare challenge).
fn unauthorized(description: &str, token_presented: bool) -> Response {
    let challenge = if token_presented {
        r#"Bearer error="invalid_token""#
    } else {
        "Bearer"
    };
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        OAuthError::new(ErrorCode::InvalidToken, description).to_json_body(),
    );
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// The metadata name of a domain setting, for descriptions a registering client understands.
fn metadata_name(field: &str) -> &str {
    match field {
        "name" => "client_name",
        "auth_method" | "client_type" => "token_endpoint_auth_method",
        "id_token_signing_alg" => "id_token_signed_response_alg",
        "back_channel_logout_uri" => "backchannel_logout_uri",
        "front_channel_logout_uri" => "frontchannel_logout_uri",
        "client_credentials_scopes" => "scope",
        other => other,
    }
}

/// A domain refusal as RFC 7591 §3.2.2 and RFC 7592 name it.
fn domain_refusal(error: DomainError) -> Response {
    match error {
        DomainError::Unauthorized(reason) => unauthorized(&reason, true),
        DomainError::NotFound(_) => unauthorized("no such client", true),
        DomainError::Invalid { field, reason } => {
            let code = match field {
                "redirect_uris" | "post_logout_redirect_uris" => ErrorCode::InvalidRedirectUri,
                _ => ErrorCode::InvalidClientMetadata,
            };
            refused(&OAuthError::new(
                code,
                format!("{}: {reason}", metadata_name(field)),
            ))
        }
        other => ApiError::from(other).into_response(),
    }
}

/// The bearer token of `Authorization: Bearer …`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()
        .and_then(protocol::bearer::bearer_token)
}

/// The 401 that asks a client configuration request for its registration access token, with
/// a bare challenge (RFC 6750 §3.1: no error code when none was sent).
fn no_registration_access_token() -> Response {
    unauthorized(
        "send the registration access token as a Bearer token",
        false,
    )
}

/// The request body, at most `MAX_BODY_BYTES`.
async fn read_body(body: Body) -> Result<Vec<u8>, Response> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|_| {
            refused(&OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                format!("the request is larger than {MAX_BODY_BYTES} bytes"),
            ))
        })
}

/// The domain's settings for a registration; lifetimes are not client metadata, so a new
/// client gets the admin API's defaults and an updated one keeps its own.
fn into_config(registration: ClientRegistration, lifetimes: Option<&OidcConfig>) -> OidcConfig {
    let (client_type, auth_method) = match registration.token_endpoint_auth_method {
        TokenEndpointAuthMethod::ClientSecretBasic => {
            (ClientType::Confidential, AuthMethod::ClientSecretBasic)
        }
        TokenEndpointAuthMethod::ClientSecretPost => {
            (ClientType::Confidential, AuthMethod::ClientSecretPost)
        }
        TokenEndpointAuthMethod::None => (ClientType::Public, AuthMethod::None),
    };
    OidcConfig {
        name: registration.client_name,
        client_type,
        auth_method,
        redirect_uris: registration.redirect_uris,
        post_logout_redirect_uris: registration.post_logout_redirect_uris,
        grant_types: registration
            .grant_types
            .iter()
            .map(|grant| match grant {
                client::GrantType::AuthorizationCode => GrantType::AuthorizationCode,
                client::GrantType::RefreshToken => GrantType::RefreshToken,
                client::GrantType::ClientCredentials => GrantType::ClientCredentials,
            })
            .collect(),
        id_token_signing_alg: match registration.id_token_signed_response_alg {
            JwsAlgorithm::RS256 => SigningAlgorithm::RS256,
            JwsAlgorithm::ES256 => SigningAlgorithm::ES256,
            JwsAlgorithm::EdDSA => SigningAlgorithm::EdDSA,
        },
        access_token_lifetime_secs: lifetimes.map_or(DEFAULT_TOKEN_LIFETIME_SECS, |c| {
            c.access_token_lifetime_secs
        }),
        id_token_lifetime_secs: lifetimes
            .map_or(DEFAULT_TOKEN_LIFETIME_SECS, |c| c.id_token_lifetime_secs),
        refresh_token_lifetime_secs: lifetimes.map_or(DEFAULT_REFRESH_TOKEN_LIFETIME_SECS, |c| {
            c.refresh_token_lifetime_secs
        }),
        back_channel_logout_uri: registration.backchannel_logout_uri,
        back_channel_logout_session_required: registration.backchannel_logout_session_required,
        front_channel_logout_uri: registration.frontchannel_logout_uri,
        front_channel_logout_session_required: registration.frontchannel_logout_session_required,
        client_credentials_scopes: registration.scope,
    }
}

/// The registration metadata of an application, as registered or as an admin changed it.
fn registration_of(config: &OidcConfig) -> ClientRegistration {
    ClientRegistration {
        client_name: config.name.clone(),
        redirect_uris: config.redirect_uris.clone(),
        post_logout_redirect_uris: config.post_logout_redirect_uris.clone(),
        grant_types: super::client::policy("", config).grant_types,
        token_endpoint_auth_method: super::client::policy("", config).token_endpoint_auth_method,
        id_token_signed_response_alg: super::token::signing_algorithm(config.id_token_signing_alg)
            .1,
        backchannel_logout_uri: config.back_channel_logout_uri.clone(),
        backchannel_logout_session_required: config.back_channel_logout_session_required,
        frontchannel_logout_uri: config.front_channel_logout_uri.clone(),
        frontchannel_logout_session_required: config.front_channel_logout_session_required,
        scope: config.client_credentials_scopes.clone(),
    }
}

/// Where a client's configuration lives (`registration_client_uri`).
fn client_uri(issuer: &Issuer, client_id: &str) -> String {
    format!(
        "{}{}/{client_id}",
        issuer.instance.external_url.trim_end_matches('/'),
        EndpointPaths::default().registration
    )
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
fn client_information(
    issuer: &Issuer,
    client_id: &str,
    config: &OidcConfig,
    client_secret: Option<String>,
    issued_at: Option<i64>,
    registration_access_token: &str,
) -> String {
    let mut body: Map<String, Value> = Map::new();
    body.insert("client_id".into(), client_id.into());
    if let Some(secret) = client_secret {
        body.insert("client_secret".into(), secret.into());
        // The secret does not expire.
        body.insert("client_secret_expires_at".into(), 0.into());
    }
    if let Some(issued_at) = issued_at {
        body.insert("client_id_issued_at".into(), issued_at.into());
    }
    body.insert(
        "registration_access_token".into(),
        registration_access_token.into(),
    );
    body.insert(
        "registration_client_uri".into(),
        client_uri(issuer, client_id).into(),
    );
    body.extend(registration_of(config).metadata());
    Value::Object(body).to_string()
}

/// When the application was created, as seconds since the epoch.
fn created_at_secs(created_at: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(created_at)
        .ok()
        .map(|at| at.timestamp())
}

/// `POST /oidc/v1/register`.
pub async fn register(
    State(state): State<AppState>,
    issuer: Issuer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let instance_id = &issuer.instance.instance_id;
    let open = match state
        .domain
        .feature(instance_id, Feature::OpenRegistration)
        .await
    {
        Ok(feature) => feature.effective,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let grant = match (bearer(&headers), open) {
        (Some(token), _) => RegistrationGrant::InitialAccessToken(token),
        (None, true) => RegistrationGrant::Open,
        (None, false) => {
            return unauthorized(
                "registration needs an initial access token from an administrator",
                false,
            );
        }
    };
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let registration = match ClientRegistration::parse(&body) {
        Ok(registration) => registration,
        Err(error) => return refused(&error),
    };
    let config = into_config(registration, None);
    match state
        .domain
        .register_application(instance_id, grant, config)
        .await
    {
        Ok(registered) => json_response(
            StatusCode::CREATED,
            client_information(
                &issuer,
                &registered.view.client_id,
                &registered.view.config,
                registered.client_secret,
                Some(registered.issued_at.timestamp()),
                &registered.registration_access_token,
            ),
        ),
        Err(error) => domain_refusal(error),
    }
}

/// `GET /oidc/v1/register/{client_id}` (RFC 7592 §2.1). The client secret is stored only as a
/// hash, so the answer leaves it out; the client keeps the one it was given.
pub async fn read(
    State(state): State<AppState>,
    issuer: Issuer,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return no_registration_access_token();
    };
    match state
        .domain
        .registered_application(&issuer.instance.instance_id, &client_id, token)
        .await
    {
        Ok(view) => json_response(
            StatusCode::OK,
            client_information(
                &issuer,
                &client_id,
                &view.config,
                None,
                created_at_secs(&view.created_at),
                token,
            ),
        ),
        Err(error) => domain_refusal(error),
    }
}

/// `PUT /oidc/v1/register/{client_id}` (RFC 7592 §2.2): the full metadata replaces the
/// registered one (omitted members take their defaults), and the answer carries a new
/// registration access token.
pub async fn update(
    State(state): State<AppState>,
    issuer: Issuer,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return no_registration_access_token();
    };
    let instance_id = &issuer.instance.instance_id;
    // The token first: nothing about the request is answered to someone without it.
    let current = match state
        .domain
        .registered_application(instance_id, &client_id, token)
        .await
    {
        Ok(view) => view,
        Err(error) => return domain_refusal(error),
    };
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let registration = match check_update(&body, &client_id).and_then(|secret| {
        // RFC 7592 §2.2: a client_secret sent with an update must be the current one (the
        // client cannot choose its own).
        match secret {
            Some(secret) if !current.secret_matches(&secret) => Err(protocol::OAuthError::new(
                protocol::ErrorCode::InvalidClientMetadata,
                "client_secret does not match the client's current secret; leave it out \
                     or send the one issued (RFC 7592 §2.2)",
            )),
            _ => ClientRegistration::parse(&body),
        }
    }) {
        Ok(registration) => registration,
        Err(error) => return refused(&error),
    };
    let config = into_config(registration, Some(&current.config));
    match state
        .domain
        .update_registered_application(instance_id, &client_id, token, config)
        .await
    {
        Ok((view, new_token)) => json_response(
            StatusCode::OK,
            client_information(
                &issuer,
                &client_id,
                &view.config,
                None,
                created_at_secs(&view.created_at),
                &new_token,
            ),
        ),
        Err(error) => domain_refusal(error),
    }
}

/// `DELETE /oidc/v1/register/{client_id}` (RFC 7592 §2.3): the application is removed as an
/// administrator's removal does; 204.
pub async fn delete(
    State(state): State<AppState>,
    issuer: Issuer,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return no_registration_access_token();
    };
    match state
        .domain
        .remove_registered_application(&issuer.instance.instance_id, &client_id, token)
        .await
    {
        Ok(()) => (
            StatusCode::NO_CONTENT,
            [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")],
        )
            .into_response(),
        Err(error) => domain_refusal(error),
    }
}
