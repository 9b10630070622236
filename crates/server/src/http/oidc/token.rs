//! The token endpoint (RFC 6749 §3.2, OIDC Core §3.1.3): client authentication, code exchange
//! with PKCE, refresh token rotation, the signed ID token, and the client credentials grant
//! (RFC 6749 §4.4).

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::application::{ApplicationView, ClientType, SigningAlgorithm};
use domain::grant::GrantRejection;
use domain::{DomainError, IssuedTokens};
use protocol::claims::{IdTokenClaims, JwsAlgorithm, at_hash};
use protocol::pkce::{self, CodeChallenge};
use protocol::scope::ScopeSet;
use protocol::token::{
    GrantRequest, TokenRequest, TokenResponse, check_client_credentials, check_refresh_scope,
};
use protocol::{ErrorCode, OAuthError};

use super::{Issuer, client};
use crate::http::AppState;
use crate::metrics::GrantType;

/// An RFC 6749 §5.2 error; 401 with a Basic challenge when the client used that scheme.
pub fn oauth_error(error: &OAuthError, basic_challenge: bool) -> Response {
    let status =
        StatusCode::from_u16(error.token_endpoint_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
            (PRAGMA, "no-cache"),
        ],
        error.to_json_body(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED && basic_challenge {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"portcullis\""),
        );
    }
    response
}

fn server_error(error: impl std::fmt::Display) -> OAuthError {
    tracing::error!(%error, "token request failed");
    OAuthError::new(
        ErrorCode::ServerError,
        "the server could not complete the request",
    )
}

/// A grant the domain refused, as RFC 6749 §5.2 names it; anything else is the server's fault.
fn domain_refusal(error: DomainError) -> OAuthError {
    match error {
        DomainError::Grant(GrantRejection::ScopeExceeded) => OAuthError::new(
            ErrorCode::InvalidScope,
            GrantRejection::ScopeExceeded.to_string(),
        ),
        DomainError::Grant(rejection) => {
            OAuthError::new(ErrorCode::InvalidGrant, rejection.to_string())
        }
        // The domain's own check that the application may use the grant (the protocol layer
        // checked first, so this answers only a settings change between the two).
        DomainError::Invalid {
            field: "grant_type",
            reason,
        } => OAuthError::new(ErrorCode::UnauthorizedClient, reason),
        other => server_error(other),
    }
}

/// The JOSE algorithm of an application's ID tokens.
pub fn signing_algorithm(alg: SigningAlgorithm) -> (jose::Algorithm, JwsAlgorithm) {
    match alg {
        SigningAlgorithm::RS256 => (jose::Algorithm::RS256, JwsAlgorithm::RS256),
        SigningAlgorithm::ES256 => (jose::Algorithm::ES256, JwsAlgorithm::ES256),
        SigningAlgorithm::EdDSA => (jose::Algorithm::EdDSA, JwsAlgorithm::EdDSA),
    }
}

/// Authenticates the client a token-endpoint style request names (also used by introspection
/// and revocation).
pub async fn authenticate_client(
    state: &AppState,
    instance_id: &str,
    client: &protocol::token::ClientAuthentication,
) -> Result<ApplicationView, OAuthError> {
    let unknown = || OAuthError::new(ErrorCode::InvalidClient, "client authentication failed");
    let application = match state
        .domain
        .application(instance_id, client.client_id())
        .await
    {
        Ok(application) => application,
        Err(DomainError::NotFound(_)) => return Err(unknown()),
        Err(error) => return Err(server_error(error)),
    };
    client.check_method(&client::policy(&application.client_id, &application.config))?;
    if application.config.client_type == ClientType::Confidential {
        let secret = client.client_secret().ok_or_else(unknown)?;
        if !application.secret_matches(secret) {
            return Err(unknown());
        }
    }
    Ok(application)
}

/// `POST /oauth/v2/token`
pub async fn token(
    State(state): State<AppState>,
    issuer: Issuer,
    headers: HeaderMap,
    body: String,
) -> Response {
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let basic = authorization.is_some();
    match exchange(&state, &issuer, authorization, &body).await {
        Ok(response) => (
            [
                (CONTENT_TYPE, "application/json"),
                (CACHE_CONTROL, "no-store"),
                (PRAGMA, "no-cache"),
            ],
            response.to_json_body(),
        )
            .into_response(),
        Err(error) => oauth_error(&error, basic),
    }
}

async fn exchange(
    state: &AppState,
    issuer: &Issuer,
    authorization: Option<&str>,
    body: &str,
) -> Result<TokenResponse, OAuthError> {
    let instance_id = &issuer.instance.instance_id;
    let request = TokenRequest::parse(
        authorization,
        &protocol::params::parse_form_urlencoded(body),
    )?;
    let application = authenticate_client(state, instance_id, &request.client).await?;
    let policy = client::policy(&application.client_id, &application.config);
    request.check_grant_allowed(&policy)?;
    let (issued, scope, nonce, grant_type) = match &request.grant {
        GrantRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let verified = |challenge: Option<&str>| {
                let challenge = challenge.map(CodeChallenge::parse_s256);
                match challenge {
                    Some(Err(_)) => false,
                    Some(Ok(challenge)) => {
                        pkce::verify(Some(&challenge), code_verifier.as_ref()).is_ok()
                    }
                    None => pkce::verify(None, code_verifier.as_ref()).is_ok(),
                }
            };
            let issued = state
                .domain
                .redeem_code(
                    instance_id,
                    &application,
                    code,
                    redirect_uri.as_deref(),
                    &verified,
                )
                .await
                .map_err(domain_refusal)?;
            let scope = ScopeSet::from_tokens(issued.scopes.iter());
            let nonce = issued.code.nonce.clone();
            (issued, scope, nonce, GrantType::AuthorizationCode)
        }
        GrantRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            let narrow = |granted: &[String]| {
                let granted = ScopeSet::from_tokens(granted.iter());
                check_refresh_scope(&granted, scope.as_ref())
                    .ok()
                    .map(|scope| scope.iter().map(str::to_owned).collect())
            };
            let issued = state
                .domain
                .refresh(instance_id, &application, refresh_token, &narrow)
                .await
                .map_err(domain_refusal)?;
            let scope = ScopeSet::from_tokens(issued.scopes.iter());
            (issued, scope, None, GrantType::RefreshToken)
        }
        // No user, so no ID token and none of what follows: answered on its own.
        GrantRequest::ClientCredentials { scope } => {
            let response =
                client_credentials(state, instance_id, &application, &policy, scope.as_ref())
                    .await?;
            state.metrics.tokens_issued(GrantType::ClientCredentials);
            return Ok(response);
        }
    };
    let id_token = if scope.contains("openid") {
        Some(id_token(state, issuer, &application, &issued, nonce).await?)
    } else {
        None
    };
    let mut response = TokenResponse::bearer(issued.access_token, u64::from(issued.expires_in));
    response.refresh_token = issued.refresh_token;
    response.id_token = id_token;
    response.scope = Some(scope);
    state.metrics.tokens_issued(grant_type);
    Ok(response)
}

/// The client credentials grant (RFC 6749 §4.4.3): an access token and its scope; no refresh
/// token (§4.4.3: it "SHOULD NOT be included") and no ID token (there is no user to identify).
async fn client_credentials(
    state: &AppState,
    instance_id: &str,
    application: &ApplicationView,
    policy: &protocol::client::ClientPolicy,
    requested: Option<&ScopeSet>,
) -> Result<TokenResponse, OAuthError> {
    let allowed = ScopeSet::from_tokens(application.config.client_credentials_scopes.iter());
    let scope = check_client_credentials(policy, &allowed, requested)?;
    let issued = state
        .domain
        .issue_client_token(
            instance_id,
            application,
            scope.iter().map(str::to_owned).collect(),
        )
        .await
        .map_err(domain_refusal)?;
    let mut response = TokenResponse::bearer(issued.access_token, u64::from(issued.expires_in));
    response.scope = Some(scope);
    Ok(response)
}

async fn id_token(
    state: &AppState,
    issuer: &Issuer,
    application: &ApplicationView,
    issued: &IssuedTokens,
    nonce: Option<String>,
) -> Result<String, OAuthError> {
    let (alg, jws_alg) = signing_algorithm(application.config.id_token_signing_alg);
    let key = state
        .keys
        .signer(&issuer.instance.instance_id, alg)
        .await
        .map_err(server_error)?;
    let now = state.domain.now().timestamp().max(0) as u64;
    let claims = IdTokenClaims {
        iss: issuer.instance.external_url.clone(),
        sub: issued.code.user_id.clone(),
        aud: application.client_id.clone(),
        exp: now + u64::from(application.config.id_token_lifetime_secs),
        iat: now,
        auth_time: Some(issued.code.auth_time.timestamp().max(0) as u64),
        nonce,
        sid: Some(issued.code.session_id.clone()),
        at_hash: Some(at_hash(jws_alg, &issued.access_token)),
        azp: Some(application.client_id.clone()),
    };
    key.sign(Some("JWT"), &claims).map_err(server_error)
}
