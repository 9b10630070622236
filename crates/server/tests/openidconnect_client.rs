//! The whole flow driven by an OpenID Connect client library we did not write (the
//! `openidconnect` crate): discovery, authorization with PKCE, sign-in, code exchange, ID token
//! signature and claims against the published JWKS, UserInfo, refresh, and RP-initiated logout.
//! The client authenticates with the library's default (HTTP Basic) and with a secret in the
//! body (openid-client's default), each against an application registered the other way.
//! A client the library registers itself (RFC 7591, with an initial access token) runs the
//! same flow and is told of its logout on its back-channel logout URI; a second one asks for
//! `client_secret_post` and redeems its code with the secret in the body.

mod common;

use std::net::TcpListener;

use common::{Browser, query_of};
use domain::application::OidcConfig;
use domain::{NewUser, Profile};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use server::{Config, RunningServer};

const TOKEN: &str = "test-admin-token-0123456789abcdef";
const CALLBACK: &str = "https://app.example.com/callback";
const SIGNED_OUT: &str = "https://app.example.com/signed-out";

/// The library's HTTP client, over our reqwest (no redirects followed, as the library expects).
async fn http_client(request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).expect("a response rebuilds"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_client_library_completes_the_flow() {
    let cases = [
        ("RS256", "client_secret_basic", AuthType::BasicAuth),
        ("ES256", "client_secret_post", AuthType::BasicAuth),
        ("ES256", "client_secret_basic", AuthType::RequestBody),
    ];
    for (alg, registered, library_auth) in cases {
        run_flow(alg, registered, library_auth).await;
    }
}

async fn run_flow(alg: &str, registered_auth_method: &str, library_auth: AuthType) {
    let h = eventstore::testing::sqlite().await;
    // The issuer must be the very URL the client discovers from.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = Config::default();
    config.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.server.external_url = format!("http://127.0.0.1:{port}");
    config.admin.initial_token = Some(TOKEN.into());
    config.database.data_dir = h.data_dir().join("data");
    let server = RunningServer::start(config).await.unwrap();
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let profile = Profile {
        email: Some("alice@example.com".into()),
        email_verified: true,
        ..Profile::default()
    };
    let password = "correct horse battery".to_owned();
    domain
        .add_user(
            &admin,
            NewUser {
                username: "alice".into(),
                profile,
                password: password.clone(),
            },
        )
        .await
        .unwrap();
    let app_config: OidcConfig = serde_json::from_value(serde_json::json!({
        "name": "Library App",
        "client_type": "confidential",
        "auth_method": registered_auth_method,
        "redirect_uris": [CALLBACK],
        "post_logout_redirect_uris": [SIGNED_OUT],
        "grant_types": ["authorization_code", "refresh_token"],
        "id_token_signing_alg": alg,
        "access_token_lifetime_secs": 3600,
        "id_token_lifetime_secs": 600,
        "refresh_token_lifetime_secs": 86400
    }))
    .unwrap();
    let (app, secret) = domain.add_application(&admin, app_config).await.unwrap();

    let issuer = IssuerUrl::new(server.external_url.clone()).unwrap();
    let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http_client)
        .await
        .expect("discovery");
    let end_session = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("end_session_endpoint");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.client_id.clone()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap())
    .set_auth_type(library_auth.clone());

    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(pkce_challenge)
        .url();
    let mut browser = Browser::new(&server);
    let callback = browser
        .sign_in(authorize_url.as_str(), "alice", &password)
        .await;
    let back = query_of(&callback);
    assert_eq!(&back["state"], state.secret());

    let tokens = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request_async(&http_client)
        .await
        .unwrap_or_else(|error| {
            panic!("code exchange with {library_auth:?}, registered {registered_auth_method}: {error:?}")
        });
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![jws_alg(alg)]);
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token verifies against the JWKS");
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    assert!(claims.auth_time().is_some());

    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(
        userinfo.email().map(|email| email.as_str()),
        Some("alice@example.com")
    );

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );

    let logout_url = LogoutRequest::from(end_session)
        .set_id_token_hint(id_token)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(SIGNED_OUT.into()).unwrap())
        .set_state(CsrfToken::new("bye".into()))
        .http_get_url();
    let response = browser.get(logout_url.as_str()).await;
    assert_eq!(
        common::location(&response),
        format!("{SIGNED_OUT}?state=bye")
    );
    server.stop().await.unwrap();
}

/// The library's name for a JWS algorithm.
fn jws_alg(name: &str) -> openidconnect::core::CoreJwsSigningAlgorithm {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).expect("a known algorithm")
}

/// The logout metadata the library's core registration types do not model.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LogoutMetadata {
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backchannel_logout_uri: Option<String>,
    #[serde(default)]
    backchannel_logout_session_required: bool,
}

impl openidconnect::registration::AdditionalClientMetadata for LogoutMetadata {}

type RegistrationRequest = openidconnect::registration::ClientRegistrationRequest<
    LogoutMetadata,
    openidconnect::registration::EmptyAdditionalClientRegistrationResponse,
    openidconnect::core::CoreApplicationType,
    openidconnect::core::CoreClientAuthMethod,
    openidconnect::core::CoreRegisterErrorResponseType,
    openidconnect::core::CoreGrantType,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJweKeyManagementAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreResponseType,
    openidconnect::core::CoreSubjectIdentifierType,
>;

/// A back-channel logout endpoint on a local port: every `logout_token` it receives.
async fn logout_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (sender, received) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: String| {
            let sender = sender.clone();
            async move {
                let token = form_urlencoded::parse(body.as_bytes())
                    .find(|(name, _)| name == "logout_token")
                    .map(|(_, value)| value.into_owned())
                    .unwrap_or_default();
                let _ = sender.send(token);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/backchannel", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (uri, received)
}

/// The claims of a compact JWS, unverified (the test only reads what was sent).
fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a compact JWS");
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in payload.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url"),
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_the_library_registers_signs_in_refreshes_and_is_told_of_logout() {
    let h = eventstore::testing::sqlite().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = Config::default();
    config.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.server.external_url = format!("http://127.0.0.1:{port}");
    config.admin.initial_token = Some(TOKEN.into());
    config.database.data_dir = h.data_dir().join("data");
    let server = RunningServer::start(config).await.unwrap();
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let password = "correct horse battery".to_owned();
    domain
        .add_user(
            &admin,
            NewUser {
                username: "alice".into(),
                profile: Profile::default(),
                password: password.clone(),
            },
        )
        .await
        .unwrap();
    // The administrator's part: an initial access token, issued through the admin API.
    let issued: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/admin/v1/registration-tokens",
            server.external_url
        ))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"description": "library test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let initial_access_token = issued["token"].as_str().expect("a token").to_owned();
    assert!(!issued["one_time"].as_bool().unwrap(), "{issued}");

    let issuer = IssuerUrl::new(server.external_url.clone()).unwrap();
    let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http_client)
        .await
        .expect("discovery");
    let registration_endpoint = metadata
        .registration_endpoint()
        .expect("registration_endpoint in discovery")
        .clone();
    let end_session = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("end_session_endpoint");

    let (backchannel_uri, mut logout_tokens) = logout_receiver().await;
    let registered = RegistrationRequest::new(
        vec![RedirectUrl::new(CALLBACK.into()).unwrap()],
        LogoutMetadata {
            post_logout_redirect_uris: vec![SIGNED_OUT.into()],
            backchannel_logout_uri: Some(backchannel_uri),
            backchannel_logout_session_required: true,
        },
    )
    .set_client_name(Some(
        vec![(
            None,
            openidconnect::ClientName::new("Library-registered app".into()),
        )]
        .into_iter()
        .collect(),
    ))
    .set_grant_types(Some(vec![
        openidconnect::core::CoreGrantType::AuthorizationCode,
        openidconnect::core::CoreGrantType::RefreshToken,
    ]))
    .set_id_token_signed_response_alg(Some(jws_alg("ES256")))
    .set_initial_access_token(Some(openidconnect::AccessToken::new(
        initial_access_token.clone(),
    )))
    .register_async(&registration_endpoint, &http_client)
    .await
    .expect("registration");
    assert!(registered.registration_access_token().is_some());
    assert!(registered.registration_client_uri().is_some());
    assert!(
        registered
            .additional_metadata()
            .backchannel_logout_session_required
    );
    let client_id = registered.client_id().clone();

    let client = CoreClient::from_provider_metadata(
        metadata,
        client_id.clone(),
        registered.client_secret().cloned(),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, _state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(pkce_challenge)
        .url();
    let mut browser = Browser::new(&server);
    let callback = browser
        .sign_in(authorize_url.as_str(), "alice", &password)
        .await;
    let back = query_of(&callback);
    let tokens = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request_async(&http_client)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![jws_alg("ES256")]);
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token verifies against the JWKS");
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );

    let logout_url = LogoutRequest::from(end_session)
        .set_id_token_hint(id_token)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(SIGNED_OUT.into()).unwrap())
        .http_get_url();
    let response = browser.get(logout_url.as_str()).await;
    assert!(
        common::location(&response).starts_with(SIGNED_OUT),
        "{response:?}"
    );
    let logout_token =
        tokio::time::timeout(std::time::Duration::from_secs(15), logout_tokens.recv())
            .await
            .expect("a logout token within 15 s")
            .expect("the receiver runs");
    let logout_claims = jwt_claims(&logout_token);
    assert_eq!(logout_claims["aud"], serde_json::json!(client_id.as_str()));
    assert_eq!(
        logout_claims["sub"],
        serde_json::json!(claims.subject().as_str())
    );
    assert!(logout_claims["sid"].is_string(), "{logout_claims}");

    // A second client asks for client_secret_post and redeems its code with the secret in the
    // body, as the library sends it for that method.
    let metadata = ProviderMetadataWithLogout::discover_async(
        IssuerUrl::new(server.external_url.clone()).unwrap(),
        &http_client,
    )
    .await
    .expect("discovery");
    let registered = RegistrationRequest::new(
        vec![RedirectUrl::new(CALLBACK.into()).unwrap()],
        LogoutMetadata {
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
        },
    )
    .set_token_endpoint_auth_method(Some(
        openidconnect::core::CoreClientAuthMethod::ClientSecretPost,
    ))
    .set_initial_access_token(Some(openidconnect::AccessToken::new(
        initial_access_token.clone(),
    )))
    .register_async(&registration_endpoint, &http_client)
    .await
    .expect("registration with client_secret_post");
    assert_eq!(
        registered.token_endpoint_auth_method(),
        Some(&openidconnect::core::CoreClientAuthMethod::ClientSecretPost)
    );
    let client = CoreClient::from_provider_metadata(
        metadata,
        registered.client_id().clone(),
        registered.client_secret().cloned(),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap())
    .set_auth_type(AuthType::RequestBody);
    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, _state, _nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(pkce_challenge)
        .url();
    let callback = browser
        .sign_in(authorize_url.as_str(), "alice", &password)
        .await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(query_of(&callback)["code"].clone()))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request_async(&http_client)
        .await
        .expect("code exchange with client_secret_post");
    assert!(tokens.id_token().is_some());
    server.stop().await.unwrap();
}
