//! What the end of a session does to the tokens issued in it, over HTTP as a client sees it
//! (Back-Channel Logout 1.0 §2.7): its access tokens stop at once whatever the scope; its
//! refresh tokens stop unless the grant has `offline_access`, and such a refresh then issues
//! access tokens bound to the offline grant. Also the token-use rules beside it: a refresh
//! with a narrower `scope` narrows the new access token (RFC 6749 §6), and UserInfo takes the
//! access token in a form-encoded POST body (RFC 6750 §2.2). On SQLite and PostgreSQL.

mod common;

use common::{Browser, TOKEN, config, form, location, oidc_config, query_of};
use domain::{NewUser, Profile};
use eventstore::testing::Harness;
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};
use server::RunningServer;

const CALLBACK: &str = "https://app.example.com/callback";
const SIGNED_OUT: &str = "https://app.example.com/signed-out";
const PASSWORD: &str = "correct horse battery";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

eventstore::on_both_backends!(
    a_sessions_end_stops_its_access_tokens_and_only_offline_refresh_survives,
    a_narrower_refresh_scope_narrows_the_new_access_token,
    userinfo_takes_the_token_from_a_form_body_once,
);

/// A relying party: a confidential client of a running server, and the browser of its user.
struct Rp {
    server: RunningServer,
    browser: Browser,
    http: reqwest::Client,
    client_id: String,
    secret: String,
}

impl Rp {
    async fn start(h: &Harness) -> Rp {
        let server = RunningServer::start(config(h)).await.unwrap();
        let domain = server.domain();
        let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
        let profile = Profile {
            email: Some("alice@example.com".into()),
            email_verified: true,
            ..Profile::default()
        };
        let alice = NewUser {
            username: "alice".into(),
            profile,
            password: PASSWORD.into(),
        };
        domain.add_user(&admin, alice).await.unwrap();
        let app_config = oidc_config(json!({
            "name": "Example App",
            "redirect_uris": [CALLBACK],
            "post_logout_redirect_uris": [SIGNED_OUT],
        }));
        let (app, secret) = domain.add_application(&admin, app_config).await.unwrap();
        Rp {
            browser: Browser::new(&server),
            server,
            http: reqwest::Client::new(),
            client_id: app.client_id,
            secret: secret.unwrap(),
        }
    }

    fn authorize_url(&self, scope: &str) -> String {
        format!(
            "/oauth/v2/authorize?{}",
            form(&[
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("redirect_uri", CALLBACK),
                ("scope", scope),
                ("state", "s"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
        )
    }

    /// Signs alice in (or uses her session) and exchanges the code: the token response.
    async fn tokens(&mut self, scope: &str) -> Value {
        let url = self.authorize_url(scope);
        let callback = if self.browser.cookies.contains_key("portcullis_session") {
            let response = self.browser.get(&url).await;
            location(&response)
        } else {
            self.browser.sign_in(&url, "alice", PASSWORD).await
        };
        let code = query_of(&callback)["code"].clone();
        let (status, tokens) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.browser.base))
            .basic_auth(&self.client_id, Some(&self.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn token(&self, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
        self.post("/oauth/v2/token", pairs).await
    }

    async fn refresh(&self, refresh_token: &Value, scope: Option<&str>) -> (StatusCode, Value) {
        let mut pairs = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str().unwrap()),
        ];
        pairs.extend(scope.map(|scope| ("scope", scope)));
        self.token(&pairs).await
    }

    async fn introspect(&self, token: &Value) -> Value {
        let (status, body) = self
            .post(
                "/oauth/v2/introspect",
                &[("token", token.as_str().unwrap())],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        body
    }

    /// UserInfo with the token in the Authorization header: status, claims and challenge.
    async fn userinfo(&self, access_token: &Value) -> (StatusCode, Value, String) {
        let response = self
            .http
            .get(format!("{}/oidc/v1/userinfo", self.browser.base))
            .bearer_auth(access_token.as_str().unwrap())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            challenge,
        )
    }

    /// RP-initiated logout with an ID token hint, back to the registered URI.
    async fn log_out(&mut self, id_token: &Value) {
        let url = format!(
            "/oidc/v1/end_session?{}",
            form(&[
                ("id_token_hint", id_token.as_str().unwrap()),
                ("post_logout_redirect_uri", SIGNED_OUT),
            ])
        );
        let response = self.browser.get(&url).await;
        assert_eq!(location(&response), SIGNED_OUT);
    }
}

async fn a_sessions_end_stops_its_access_tokens_and_only_offline_refresh_survives(h: Harness) {
    let mut rp = Rp::start(&h).await;
    let online = rp.tokens("openid email").await;
    let offline = rp.tokens("openid email offline_access").await;
    for tokens in [&online, &offline] {
        assert_eq!(rp.userinfo(&tokens["access_token"]).await.0, StatusCode::OK);
        assert_eq!(rp.introspect(&tokens["access_token"]).await["active"], true);
    }

    rp.log_out(&offline["id_token"]).await;

    // Access tokens of the ended session: inactive at once, offline_access or not.
    for tokens in [&online, &offline] {
        let (status, body, challenge) = rp.userinfo(&tokens["access_token"]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_token");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        assert_eq!(
            rp.introspect(&tokens["access_token"]).await,
            json!({"active": false})
        );
    }
    // The refresh token without offline_access died with the session.
    assert_eq!(
        rp.introspect(&online["refresh_token"]).await,
        json!({"active": false})
    );
    let (status, error) = rp.refresh(&online["refresh_token"], None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // The offline one survives, and what it issues now is bound to the grant.
    assert_eq!(
        rp.introspect(&offline["refresh_token"]).await["active"],
        true
    );
    let (status, renewed) = rp.refresh(&offline["refresh_token"], None).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let (status, claims, _) = rp.userinfo(&renewed["access_token"]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(
        rp.introspect(&renewed["access_token"]).await["active"],
        true
    );
    let (status, again) = rp.refresh(&renewed["refresh_token"], None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    rp.server.stop().await.unwrap();
}

async fn a_narrower_refresh_scope_narrows_the_new_access_token(h: Harness) {
    let mut rp = Rp::start(&h).await;
    let tokens = rp.tokens("openid email").await;

    // Asking for more than was granted is invalid_scope and spends nothing.
    let (status, error) = rp
        .refresh(&tokens["refresh_token"], Some("openid email profile"))
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );

    let (status, narrowed) = rp.refresh(&tokens["refresh_token"], Some("openid")).await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(narrowed["scope"], "openid");
    assert!(narrowed["id_token"].is_string());
    let (status, claims, _) = rp.userinfo(&narrowed["access_token"]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(claims["sub"].is_string());
    assert!(claims.get("email").is_none(), "email was dropped: {claims}");
    assert_eq!(
        rp.introspect(&narrowed["access_token"]).await["scope"],
        "openid"
    );
    // The first access token keeps its scope; the refresh token keeps the grant's (§6).
    assert_eq!(
        rp.introspect(&tokens["access_token"]).await["scope"],
        "email openid"
    );
    let (status, full) = rp.refresh(&narrowed["refresh_token"], None).await;
    assert_eq!(status, StatusCode::OK, "{full}");
    assert_eq!(full["scope"], "email openid");
    let (_, claims, _) = rp.userinfo(&full["access_token"]).await;
    assert_eq!(claims["email"], "alice@example.com");
    rp.server.stop().await.unwrap();
}

async fn userinfo_takes_the_token_from_a_form_body_once(h: Harness) {
    let mut rp = Rp::start(&h).await;
    let tokens = rp.tokens("openid email").await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let url = format!("{}/oidc/v1/userinfo", rp.browser.base);
    let in_body = rp
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("access_token", access_token)]))
        .send()
        .await
        .unwrap();
    assert_eq!(in_body.status(), StatusCode::OK);
    let claims: Value = in_body.json().await.unwrap();
    assert_eq!(claims["email"], "alice@example.com");

    let both = rp
        .http
        .post(&url)
        .bearer_auth(access_token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("access_token", access_token)]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        both.status(),
        StatusCode::BAD_REQUEST,
        "two methods at once"
    );
    assert_eq!(
        both.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let not_a_form = rp
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(json!({"access_token": access_token}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_form.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(not_a_form.headers()[WWW_AUTHENTICATE], "Bearer");
    rp.server.stop().await.unwrap();
}
