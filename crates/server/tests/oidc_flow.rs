//! The authorization code flow over HTTP against the real server, as a browser and a client
//! application would drive it; on SQLite and PostgreSQL.

mod common;

use common::{Browser, TOKEN, config, form, hidden_field, location, oidc_config, query_of};
use domain::{NewUser, Profile};
use eventstore::testing::Harness;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::json;
use server::RunningServer;
use std::time::Duration;

const CALLBACK: &str = "https://app.example.com/callback";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn authorize_path(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email"),
        ("state", "af0ifjsldkj"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    format!("/oauth/v2/authorize?{}", form(&params))
}

eventstore::on_both_backends!(
    code_flow_signs_in_issues_verifiable_tokens_and_refreshes,
    client_credentials_issue_a_token_for_the_client_alone,
    dynamic_registration_needs_an_initial_access_token_unless_open,
    a_registered_client_secret_post_client_redeems_its_code,
    a_registered_client_is_read_updated_and_deleted_with_its_token,
    bad_registrations_get_rfc_7591_errors_and_store_nothing,
);

async fn code_flow_signs_in_issues_verifiable_tokens_and_refreshes(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let user = domain
        .add_user(
            &admin,
            NewUser {
                username: "alice".into(),
                profile: Profile {
                    email: Some("alice@example.com".into()),
                    email_verified: true,
                    given_name: Some("Alice".into()),
                    family_name: Some("Liddell".into()),
                },
                password: "correct horse battery".into(),
            },
        )
        .await
        .unwrap();
    let app_config = oidc_config(serde_json::json!({
        "name": "Example App",
        "redirect_uris": [CALLBACK],
        "post_logout_redirect_uris": ["https://app.example.com/signed-out"],
    }));
    let (app, secret) = domain.add_application(&admin, app_config).await.unwrap();
    let secret = secret.unwrap();
    let mut browser = Browser::new(&server);
    let issuer = server.external_url.clone();

    // prompt=none without a session: login_required at the client, with state and iss.
    let response = browser
        .get(&authorize_path(&app.client_id, &[("prompt", "none")]))
        .await;
    let back = query_of(&location(&response));
    assert_eq!(
        (
            back["error"].as_str(),
            back["state"].as_str(),
            back["iss"].as_str()
        ),
        ("login_required", "af0ifjsldkj", issuer.as_str())
    );

    // An unregistered redirect_uri is an error page, never a redirect.
    let evil = format!(
        "/oauth/v2/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", &app.client_id),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "openid")
        ])
    );
    let response = browser.get(&evil).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());

    // Authorize → sign-in page → wrong password → right password → back with a code.
    let response = browser.get(&authorize_path(&app.client_id, &[])).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let login_page = location(&response);
    assert!(login_page.starts_with("/login?"), "{login_page}");
    let page = browser.get(&login_page).await.text().await.unwrap();
    assert!(page.contains("Sign in to Example App"), "{page}");
    let (csrf, return_to) = (
        hidden_field(&page, "csrf"),
        hidden_field(&page, "return_to"),
    );
    let wrong = browser
        .post_form(
            "/login",
            form(&[
                ("csrf", &csrf),
                ("return_to", &return_to),
                ("login", "alice"),
                ("password", "nope"),
            ]),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Wrong username or password.")
    );
    let forged = browser
        .post_form(
            "/login",
            form(&[
                ("csrf", "forged"),
                ("return_to", &return_to),
                ("login", "alice"),
                ("password", "correct horse battery"),
            ]),
        )
        .await;
    assert_eq!(
        forged.status(),
        StatusCode::BAD_REQUEST,
        "a missing CSRF match is refused"
    );
    let page = browser.get(&login_page).await.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf");
    let signed_in = browser
        .post_form(
            "/login",
            form(&[
                ("csrf", &csrf),
                ("return_to", &return_to),
                ("login", "ALICE@example.com"),
                ("password", "correct horse battery"),
            ]),
        )
        .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session_cookie = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("portcullis_session="))
        .unwrap();
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );
    let response = browser.get(&location(&signed_in)).await;
    let callback = location(&response);
    assert!(callback.starts_with(CALLBACK), "{callback}");
    let back = query_of(&callback);
    assert_eq!(
        (back["state"].as_str(), back["iss"].as_str()),
        ("af0ifjsldkj", issuer.as_str())
    );
    let code = back["code"].clone();

    // The code exchange, with HTTP Basic client authentication and the PKCE verifier.
    let http = reqwest::Client::new();
    let base = browser.base.clone();
    let exchange = |code: String, verifier: &'static str| {
        http.post(format!("{base}/oauth/v2/token"))
            .basic_auth(&app.client_id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier),
            ]))
            .send()
    };
    let bad_verifier = exchange(
        code.clone(),
        "wrong-verifier-wrong-verifier-wrong-verifier-x",
    )
    .await
    .unwrap();
    assert_eq!(bad_verifier.status(), StatusCode::BAD_REQUEST);
    let tokens: serde_json::Value = exchange(code.clone(), VERIFIER)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let id_token = tokens["id_token"].as_str().unwrap();

    // The ID token verifies against the published keys and carries the expected claims.
    let jwks: jose::JwkSet = browser.get("/oauth/v2/keys").await.json().await.unwrap();
    let verifier = jose::Verifier::new(&jwks).unwrap();
    let now = chrono::Utc::now().timestamp();
    let verified = verifier
        .verify(
            id_token,
            &jose::Validation::new()
                .issuer(&issuer)
                .audience(&app.client_id),
            now,
        )
        .unwrap();
    assert_eq!(verified.header.alg, jose::Algorithm::ES256);
    let claims = verified.claims;
    assert_eq!(claims["sub"], user.user_id.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert!(
        claims["sid"].is_string() && claims["auth_time"].is_u64() && claims["at_hash"].is_string()
    );
    assert_eq!(
        claims["at_hash"],
        protocol::claims::at_hash(protocol::claims::JwsAlgorithm::ES256, &access_token).as_str()
    );

    // UserInfo releases what the scopes allow.
    let info: serde_json::Value = http
        .get(format!("{base}/oidc/v1/userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            info["sub"].as_str(),
            info["email"].as_str(),
            info["preferred_username"].as_str()
        ),
        (
            Some(user.user_id.as_str()),
            Some("alice@example.com"),
            Some("alice")
        )
    );
    let anonymous = http
        .get(format!("{base}/oidc/v1/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // A replayed code fails and revokes what it issued.
    let replay = exchange(code, VERIFIER).await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        replay.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let revoked = http
        .get(format!("{base}/oidc/v1/userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);

    // Single sign-on: the next authorization needs no sign-in; its refresh token rotates.
    let response = browser.get(&authorize_path(&app.client_id, &[])).await;
    let code = query_of(&location(&response))["code"].clone();
    let tokens: serde_json::Value = exchange(code, VERIFIER)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = |token: String| {
        http.post(format!("{base}/oauth/v2/token"))
            .basic_auth(&app.client_id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &token),
            ]))
            .send()
    };
    let refreshed = refresh(tokens["refresh_token"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: serde_json::Value = refreshed.json().await.unwrap();
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    let stale = refresh(tokens["refresh_token"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::BAD_REQUEST);

    // A wrong client secret is invalid_client with a Basic challenge.
    let wrong_secret = http
        .post(format!("{base}/oauth/v2/token"))
        .basic_auth(&app.client_id, Some("not-the-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong_secret.headers().contains_key("www-authenticate"));

    // Introspection answers the owning client; revocation ends the grant. The grant above was
    // revoked when its rotated refresh token was replayed, so use a fresh one.
    let response = browser.get(&authorize_path(&app.client_id, &[])).await;
    let code = query_of(&location(&response))["code"].clone();
    let refreshed: serde_json::Value = exchange(code, VERIFIER)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = refreshed["access_token"].as_str().unwrap().to_owned();
    let client_post = |path: &'static str, body: String| {
        http.post(format!("{base}{path}"))
            .basic_auth(&app.client_id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let introspected: serde_json::Value =
        client_post("/oauth/v2/introspect", form(&[("token", &access)]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        (
            introspected["active"].as_bool(),
            introspected["sub"].as_str()
        ),
        (Some(true), Some(user.user_id.as_str()))
    );
    let revoked = client_post("/oauth/v2/revoke", form(&[("token", &access)]))
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let introspected: serde_json::Value =
        client_post("/oauth/v2/introspect", form(&[("token", &access)]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(introspected, serde_json::json!({"active": false}));

    // RP-initiated logout with an id_token_hint: no confirmation, the session ends with the
    // request's origin, the cookie goes, and the registered URI gets the state back.
    let hint = refreshed["id_token"].as_str().unwrap().to_owned();
    let logout = format!(
        "/oidc/v1/end_session?{}",
        form(&[
            ("id_token_hint", &hint),
            (
                "post_logout_redirect_uri",
                "https://app.example.com/signed-out"
            ),
            ("state", "bye")
        ])
    );
    let unregistered = format!(
        "/oidc/v1/end_session?{}",
        form(&[
            ("id_token_hint", &hint),
            (
                "post_logout_redirect_uri",
                "https://app.example.com/signed-out?x=1"
            )
        ])
    );
    let refused = browser.get(&unregistered).await;
    assert_eq!(
        refused.status(),
        StatusCode::BAD_REQUEST,
        "an altered post-logout URI is never redirected to"
    );
    let response = browser.get(&logout).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "https://app.example.com/signed-out?state=bye"
    );
    assert!(!browser.cookies.contains_key("portcullis_session"));
    let sid = claims["sid"].as_str().unwrap();
    let events = domain
        .store()
        .aggregate_events(&eventstore::AggregateRef::new(
            &admin.instance_id,
            "session",
            sid,
        ))
        .await
        .unwrap();
    let ended: serde_json::Value = serde_json::from_str(&events.last().unwrap().payload).unwrap();
    assert_eq!(ended["reason"], "rp_initiated_logout");
    assert_eq!(
        ended["triggered_at_origin"],
        issuer.as_str(),
        "the request came in on 127.0.0.1, not the instance's own host: its issuer is recorded"
    );
    let response = browser
        .get(&authorize_path(&app.client_id, &[("prompt", "none")]))
        .await;
    assert_eq!(
        query_of(&location(&response))["error"],
        "login_required",
        "signed out everywhere in this browser"
    );

    // Discovery names these endpoints.
    let discovery: serde_json::Value = browser
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer.as_str());
    assert!(
        discovery["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth/v2/token")
    );
    server.stop().await.unwrap();
}

/// Applications are served from memory on every replica; a change made through one replica
/// reaches the other's cache when its log-follower wakes (LISTEN/NOTIFY), not at a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_application_is_used_by_the_other_replica() {
    let Some(h) = eventstore::testing::postgres().await else {
        return;
    };
    let (a, b) = tokio::join!(
        RunningServer::start(config(&h)),
        RunningServer::start(config(&h))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let domain = a.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let first = "https://app.example.com/first";
    let second = "https://app.example.com/second";
    let settings =
        |uri: &str| oidc_config(json!({ "name": "Replicated App", "redirect_uris": [uri] }));
    let (app, _) = domain
        .add_application(&admin, settings(first))
        .await
        .unwrap();
    let authorize = |redirect_uri: &str| {
        format!(
            "/oauth/v2/authorize?{}",
            form(&[
                ("response_type", "code"),
                ("client_id", &app.client_id),
                ("redirect_uri", redirect_uri),
                ("scope", "openid"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
        )
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let status_on_b = |path: String| {
        let (http, url) = (http.clone(), format!("http://{}{path}", b.local_addr));
        async move { http.get(url).send().await.unwrap().status() }
    };
    let accepted_on_b = async |redirect_uri: &str, failure: &str| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while status_on_b(authorize(redirect_uri)).await != StatusCode::SEE_OTHER {
            assert!(tokio::time::Instant::now() < deadline, "{failure}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // Replica b reads the application (and so caches it) before the change.
    accepted_on_b(first, "b never saw the new application").await;

    domain
        .change_application(&admin, &app.client_id, settings(second))
        .await
        .unwrap();
    accepted_on_b(second, "b kept the old application").await;
    assert_eq!(
        status_on_b(authorize(first)).await,
        StatusCode::BAD_REQUEST,
        "b no longer accepts the removed redirect URI"
    );
    // Replica a, which made the change, never answered from the old settings.
    let on_a = http
        .get(format!("http://{}{}", a.local_addr, authorize(first)))
        .send()
        .await
        .unwrap();
    assert_eq!(on_a.status(), StatusCode::BAD_REQUEST);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// The client credentials grant (RFC 6749 §4.4): a confidential application registered for it
/// (through the admin API) gets an access token for itself, within its allowed scopes, with no
/// refresh or ID token; introspection shows it with the client as subject and no session;
/// UserInfo refuses it; revocation ends it. Others are refused with the §5.2 codes.
async fn client_credentials_issue_a_token_for_the_client_alone(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.local_addr);
    let created: serde_json::Value = http
        .post(format!("{base}/admin/v1/applications"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "name": "Report worker",
            "grant_types": ["client_credentials"],
            "client_credentials_scopes": ["reports:read", "reports:write"],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        created["client_credentials_scopes"],
        json!(["reports:read", "reports:write"]),
        "{created}"
    );
    let machine = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let public_refused = http
        .post(format!("{base}/admin/v1/applications"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "name": "SPA",
            "client_type": "public",
            "redirect_uris": ["http://localhost:3000/cb"],
            "grant_types": ["authorization_code", "client_credentials"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(public_refused.status(), StatusCode::BAD_REQUEST);
    let refusal: serde_json::Value = public_refused.json().await.unwrap();
    assert_eq!(refusal["field"], "grant_types", "{refusal}");
    let (web, web_secret) = domain
        .add_application(
            &admin,
            oidc_config(json!({ "name": "Web", "redirect_uris": [CALLBACK] })),
        )
        .await
        .unwrap();
    let web_secret = web_secret.unwrap();
    let (spa, _) = domain
        .add_application(
            &admin,
            oidc_config(json!({
                "name": "SPA",
                "client_type": "public",
                "auth_method": "none",
                "redirect_uris": ["http://localhost:3000/cb"],
                "grant_types": ["authorization_code"],
            })),
        )
        .await
        .unwrap();

    let token_request = |auth: Option<(&str, &str)>, fields: &[(&str, &str)]| {
        let request = http
            .post(format!("{base}/oauth/v2/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields));
        match auth {
            Some((id, secret)) => request.basic_auth(id, Some(secret)),
            None => request,
        }
        .send()
    };
    let error_of = async |response: reqwest::Response| {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        (
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
        )
    };

    // HTTP Basic, no scope: every allowed scope; an access token and nothing else.
    let response = token_request(
        Some((&machine, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: serde_json::Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "reports:read reports:write");
    assert!(
        tokens.get("refresh_token").is_none() && tokens.get("id_token").is_none(),
        "RFC 6749 §4.4.3: no refresh token; no user, so no ID token: {tokens}"
    );
    let first = tokens["access_token"].as_str().unwrap().to_owned();

    // client_secret_post with a narrower scope.
    let tokens: serde_json::Value = token_request(
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &machine),
            ("client_secret", &secret),
            ("scope", "reports:read"),
        ],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(tokens["scope"], "reports:read", "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // Introspection: active, the client's scope, the client as subject, no session.
    let client_post = |path: &'static str, body: String| {
        http.post(format!("{base}{path}"))
            .basic_auth(&machine, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let introspected: serde_json::Value =
        client_post("/oauth/v2/introspect", form(&[("token", &access)]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        (
            introspected["active"].as_bool(),
            introspected["scope"].as_str(),
            introspected["client_id"].as_str(),
            introspected["sub"].as_str(),
            introspected["token_type"].as_str(),
            introspected["iss"].as_str(),
        ),
        (
            Some(true),
            Some("reports:read"),
            Some(machine.as_str()),
            Some(machine.as_str()),
            Some("Bearer"),
            Some(server.external_url.as_str()),
        ),
        "{introspected}"
    );
    assert!(introspected["exp"].is_u64(), "{introspected}");
    assert!(
        introspected.get("sid").is_none() && introspected.get("username").is_none(),
        "{introspected}"
    );

    // UserInfo: there is no user behind the token.
    let info = http
        .get(format!("{base}/oidc/v1/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
    let challenge = info.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{challenge}"
    );

    // The token is no refresh token.
    let (status, error) = error_of(
        token_request(
            Some((&machine, &secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", &access)],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "unauthorized_client"),
        "the application may not use refresh_token at all"
    );

    // Revocation ends this token; the other one stays active.
    let revoked = client_post("/oauth/v2/revoke", form(&[("token", &access)]))
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let introspect = async |token: &str| -> serde_json::Value {
        client_post("/oauth/v2/introspect", form(&[("token", token)]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    assert_eq!(introspect(&access).await, json!({"active": false}));
    assert_eq!(introspect(&first).await["active"], true);

    // Refusals: a scope beyond the allowed set, a user's scope, an application without the
    // grant, a public client, a wrong secret.
    for (scope, expected) in [
        ("reports:read admin", "invalid_scope"),
        ("openid", "invalid_scope"),
    ] {
        let (status, error) = error_of(
            token_request(
                Some((&machine, &secret)),
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, expected)
        );
    }
    let (status, error) = error_of(
        token_request(
            Some((&web.client_id, &web_secret)),
            &[("grant_type", "client_credentials")],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
    // A public client authenticates with its client_id alone (OIDC Core §9 `none`); it is
    // the grant it may not use (RFC 6749 §4.4, §5.2 `unauthorized_client`).
    let (status, error) = error_of(
        token_request(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &spa.client_id),
            ],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
    let (status, error) = error_of(
        token_request(
            Some((&machine, "not-the-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );

    // Discovery lists the grant.
    let discovery: serde_json::Value = http
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_credentials")),
        "{discovery}"
    );
    server.stop().await.unwrap();
}

/// Dynamic Client Registration (RFC 7591, RFC 7592) over HTTP.
struct Registrar {
    http: reqwest::Client,
    base: String,
}

/// An answer: status, `WWW-Authenticate`, JSON body (Null when empty).
type Answer = (StatusCode, Option<String>, serde_json::Value);

impl Registrar {
    fn new(server: &RunningServer) -> Self {
        Registrar {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.local_addr),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, challenge, body)
    }

    async fn register(&self, token: Option<&str>, metadata: serde_json::Value) -> Answer {
        self.send(
            reqwest::Method::POST,
            "/oidc/v1/register",
            token,
            Some(metadata.to_string()),
        )
        .await
    }

    /// Path of a client's configuration endpoint, from its `registration_client_uri`.
    fn client_path(registered: &serde_json::Value) -> String {
        let uri = registered["registration_client_uri"].as_str().unwrap();
        let path = uri.split_once("/oidc/").unwrap().1;
        format!("/oidc/{path}")
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        self.send(method, path, Some(TOKEN), body.map(|b| b.to_string()))
            .await
    }

    async fn issue_token(&self, body: serde_json::Value) -> String {
        let (status, _, created) = self
            .admin(
                reqwest::Method::POST,
                "/admin/v1/registration-tokens",
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["token"].as_str().unwrap().to_owned()
    }

    async fn application_count(&self) -> usize {
        let (status, _, list) = self
            .admin(reqwest::Method::GET, "/admin/v1/applications", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        list["applications"].as_array().unwrap().len()
    }

    async fn set_open(&self, open: bool) {
        let (status, _, body) = self
            .admin(
                reqwest::Method::PUT,
                "/admin/v1/features/open_registration",
                Some(json!({ "enabled": open })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn web_client() -> serde_json::Value {
    json!({
        "client_name": "Registered App",
        "redirect_uris": [CALLBACK],
        "post_logout_redirect_uris": ["https://app.example.com/signed-out"],
        "grant_types": ["authorization_code", "refresh_token"],
    })
}

async fn dynamic_registration_needs_an_initial_access_token_unless_open(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let registrar = Registrar::new(&server);
    let discovery: serde_json::Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        registrar.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        discovery["registration_endpoint"],
        json!(format!(
            "{}/oidc/v1/register",
            server.external_url.trim_end_matches('/')
        ))
    );

    // By default registration needs an initial access token: none is 401 with a bare
    // challenge (RFC 6750 §3.1), an unknown one `invalid_token`.
    let (status, challenge, body) = registrar.register(None, web_client()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    assert_eq!(body["error"], "invalid_token");
    let (status, challenge, body) = registrar
        .register(Some("pcit_0123.abcd"), web_client())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(registrar.application_count().await, 0);

    // An administrator issues a one-time token through the admin API.
    let one_time = registrar
        .issue_token(json!({"description": "partner onboarding", "one_time": true}))
        .await;
    assert!(one_time.starts_with("pcit_"), "{one_time}");
    let (status, _, registered) = registrar.register(Some(&one_time), web_client()).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    assert!(registered["client_secret"].is_string());
    assert_eq!(registered["client_secret_expires_at"], 0);
    assert!(registered["client_id_issued_at"].as_i64().unwrap() > 0);
    assert!(registered["registration_access_token"].is_string());
    assert_eq!(
        registered["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert_eq!(registered["id_token_signed_response_alg"], "RS256");
    assert_eq!(registered["response_types"], json!(["code"]));
    let (status, _, again) = registrar.register(Some(&one_time), web_client()).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );

    // The client is an application like any other, created by the token.
    let (status, _, app) = registrar
        .admin(
            reqwest::Method::GET,
            &format!("/admin/v1/applications/{client_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{app}");
    assert_eq!(app["name"], "Registered App");
    let (_, _, listed) = registrar
        .admin(reqwest::Method::GET, "/admin/v1/registration-tokens", None)
        .await;
    let entry = &listed["registration_tokens"][0];
    assert_eq!(
        (&entry["one_time"], &entry["used_by"]),
        (&json!(true), &json!([client_id]))
    );
    let token_id = entry["token_id"].as_str().unwrap().to_owned();
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let events = domain
        .store()
        .aggregate_events(&eventstore::AggregateRef::new(
            &admin.instance_id,
            "application",
            &client_id,
        ))
        .await
        .unwrap();
    assert_eq!(events[0].creator, format!("registration_token:{token_id}"));

    // A reusable token works until it expires or is revoked.
    let reusable = registrar
        .issue_token(json!({"description": "ci", "expires_in_secs": 2}))
        .await;
    for _ in 0..2 {
        let (status, _, body) = registrar.register(Some(&reusable), web_client()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _, expired) = registrar.register(Some(&reusable), web_client()).await;
    assert_eq!(
        (status, expired["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let revoked = registrar
        .issue_token(json!({"description": "revoked"}))
        .await;
    let revoked_id = revoked
        .trim_start_matches("pcit_")
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, _) = registrar
        .admin(
            reqwest::Method::DELETE,
            &format!("/admin/v1/registration-tokens/{revoked_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = registrar.register(Some(&revoked), web_client()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, refused) = registrar
        .admin(
            reqwest::Method::POST,
            "/admin/v1/registration-tokens",
            Some(json!({"description": "forever", "expires_in_secs": 100_000_000})),
        )
        .await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("expires_in_secs"))
    );

    // Open registration: no token needed.
    registrar.set_open(true).await;
    let (status, _, body) = registrar.register(None, web_client()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(registrar.application_count().await, 4);
    server.stop().await.unwrap();
}

async fn a_registered_client_secret_post_client_redeems_its_code(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    domain
        .add_user(
            &admin,
            NewUser {
                username: "alice".into(),
                profile: Profile::default(),
                password: "correct horse battery".into(),
            },
        )
        .await
        .unwrap();
    let registrar = Registrar::new(&server);
    let token = registrar
        .issue_token(json!({"description": "post client"}))
        .await;
    let mut metadata = web_client();
    metadata["token_endpoint_auth_method"] = json!("client_secret_post");
    metadata["id_token_signed_response_alg"] = json!("ES256");
    let (status, _, registered) = registrar.register(Some(&token), metadata).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(
        registered["token_endpoint_auth_method"],
        "client_secret_post"
    );
    let client_id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();

    let mut browser = Browser::new(&server);
    let callback = browser
        .sign_in(
            &authorize_path(client_id, &[]),
            "alice",
            "correct horse battery",
        )
        .await;
    let code = query_of(&callback)["code"].clone();
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/v2/token", registrar.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
            ("client_secret", secret),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: serde_json::Value = response.json().await.unwrap();
    assert!(tokens["id_token"].is_string(), "{tokens}");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    server.stop().await.unwrap();
}

async fn a_registered_client_is_read_updated_and_deleted_with_its_token(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let registrar = Registrar::new(&server);
    registrar.set_open(true).await;
    let (status, _, registered) = registrar.register(None, web_client()).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let token = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = Registrar::client_path(&registered);
    assert_eq!(path, format!("/oidc/v1/register/{client_id}"));

    let (status, _, read) = registrar
        .send(reqwest::Method::GET, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["client_id"], json!(client_id));
    assert_eq!(read["redirect_uris"], json!([CALLBACK]));
    assert_eq!(read["registration_access_token"], json!(token));
    assert!(read.get("client_secret").is_none(), "stored only as a hash");

    // A wrong token, no token, or another client's path: 401 invalid_token.
    for (path, bearer) in [
        (path.as_str(), Some("wrong")),
        ("/oidc/v1/register/no-such-client", Some(token.as_str())),
    ] {
        let (status, challenge, body) = registrar
            .send(reqwest::Method::GET, path, bearer, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
        assert_eq!(body["error"], "invalid_token");
    }
    let (status, challenge, _) = registrar
        .send(reqwest::Method::DELETE, &path, None, None)
        .await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );

    // Update: the full metadata with client_id; a new token replaces the old one.
    let mut update = web_client();
    update["client_id"] = json!(client_id);
    update["client_name"] = json!("Renamed App");
    update["backchannel_logout_uri"] = json!("https://app.example.com/backchannel");
    update["backchannel_logout_session_required"] = json!(true);
    let mut without_id = update.clone();
    without_id.as_object_mut().unwrap().remove("client_id");
    let (status, _, body) = registrar
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&token),
            Some(without_id.to_string()),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_metadata"))
    );
    // A client_secret sent with an update must be the current one (RFC 7592 §2.2).
    let mut chosen_secret = update.clone();
    chosen_secret["client_secret"] = json!("a secret of my own choosing");
    let (status, _, body) = registrar
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&token),
            Some(chosen_secret.to_string()),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_metadata")),
        "{body}"
    );
    update["client_secret"] = registered["client_secret"].clone();
    let (status, _, updated) = registrar
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&token),
            Some(update.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["client_name"], "Renamed App");
    assert_eq!(
        updated["backchannel_logout_uri"],
        "https://app.example.com/backchannel"
    );
    let new_token = updated["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_token, token);
    let (status, _, body) = registrar
        .send(reqwest::Method::GET, &path, Some(&token), None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let (_, _, app) = registrar
        .admin(
            reqwest::Method::GET,
            &format!("/admin/v1/applications/{client_id}"),
            None,
        )
        .await;
    assert_eq!(app["name"], "Renamed App");

    // Delete: 204, and the application is gone as an admin's removal leaves it.
    let (status, _, _) = registrar
        .send(reqwest::Method::DELETE, &path, Some(&new_token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = registrar
        .admin(
            reqwest::Method::GET,
            &format!("/admin/v1/applications/{client_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = registrar
        .send(reqwest::Method::GET, &path, Some(&new_token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await.unwrap();
}

async fn bad_registrations_get_rfc_7591_errors_and_store_nothing(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let registrar = Registrar::new(&server);
    let token = registrar
        .issue_token(json!({"description": "bad input"}))
        .await;
    let with = |fields: serde_json::Value| {
        let mut metadata = web_client();
        for (name, value) in fields.as_object().unwrap() {
            metadata[name] = value.clone();
        }
        metadata.to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "malformed JSON",
            r#"{"redirect_uris": ["#.into(),
            "invalid_client_metadata",
        ),
        ("not an object", "[1, 2]".into(), "invalid_client_metadata"),
        (
            "a redirect URI with a fragment",
            with(json!({"redirect_uris": ["https://app.example.com/cb#frag"]})),
            "invalid_redirect_uri",
        ),
        (
            "no redirect URI for the code grant",
            with(json!({"redirect_uris": []})),
            "invalid_redirect_uri",
        ),
        (
            "an http back-channel logout URI on a network host",
            with(json!({"backchannel_logout_uri": "http://app.example.com/logout"})),
            "invalid_client_metadata",
        ),
        (
            "an http front-channel logout URI on a network host",
            with(json!({"frontchannel_logout_uri": "http://app.example.com/logout"})),
            "invalid_client_metadata",
        ),
        (
            "an unsupported response type",
            with(json!({"response_types": ["id_token"]})),
            "invalid_client_metadata",
        ),
        (
            "conflicting grant and response types",
            with(json!({"grant_types": ["client_credentials"], "response_types": ["code"]})),
            "invalid_client_metadata",
        ),
        (
            "an unsupported authentication method",
            with(json!({"token_endpoint_auth_method": "private_key_jwt"})),
            "invalid_client_metadata",
        ),
        (
            "an unsupported signing algorithm",
            with(json!({"id_token_signed_response_alg": "HS256"})),
            "invalid_client_metadata",
        ),
        (
            "a public client asking for client_credentials",
            with(
                json!({"token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "client_credentials"]}),
            ),
            "invalid_client_metadata",
        ),
        (
            "an oversized body",
            with(json!({"client_name": "x".repeat(70 * 1024)})),
            "invalid_client_metadata",
        ),
    ];
    for (case, body, code) in cases {
        let (status, _, answer) = registrar
            .send(
                reqwest::Method::POST,
                "/oidc/v1/register",
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{case}: {answer}"
        );
        assert!(
            !answer["error_description"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{case}: {answer}"
        );
    }
    assert_eq!(registrar.application_count().await, 0, "nothing was stored");
    // Unknown metadata is ignored (RFC 7591 §2), not refused.
    let (status, _, registered) = registrar
        .send(
            reqwest::Method::POST,
            "/oidc/v1/register",
            Some(&token),
            Some(with(
                json!({"logo_uri": "https://app.example.com/logo.png", "x_custom": 1}),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert!(registered.get("x_custom").is_none());
    server.stop().await.unwrap();
}
