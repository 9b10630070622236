//! Back-Channel Logout against the real server and real HTTP receivers on 127.0.0.1: a session
//! signed in to several applications ends, and each application with a logout URI receives a
//! logout token it can verify against the published JWKS.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::exposition::scrape;
use common::process::{Process, portcullis};
use common::{Browser, CALLBACK, TOKEN, VERIFIER, authorize_path, form, location, query_of};
use domain::application::OidcConfig;
use domain::session_logout::DeliveryStage;
use domain::{NewUser, Profile};
use eventstore::testing::Harness;
use jose::{JwkSet, Validation, Verifier};
use serde_json::{Value, json};
use server::{Config, RunningServer};
use tokio::sync::mpsc;

const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The post-logout redirect URI every test application registers.
const SIGNED_OUT: &str = "https://app.example.com/signed-out";

/// What a receiver got: the application's name, the content type, the logout token.
type Received = (String, String, String);

/// Per application, the (status, body) answers still to give.
type Answers = Arc<Mutex<HashMap<String, Vec<(u16, String)>>>>;

/// Applications' logout endpoints on one local port. Each answers the statuses queued for it
/// (then 200) and reports every request.
struct Receiver {
    base: String,
    received: mpsc::UnboundedReceiver<Received>,
    answers: Answers,
}

#[derive(Clone)]
struct ReceiverState {
    sender: mpsc::UnboundedSender<Received>,
    answers: Answers,
}

async fn receive(
    State(state): State<ReceiverState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let content_type = headers
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let _ = state.sender.send((app.clone(), content_type, token));
    if app.starts_with("slow") {
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    if app.starts_with("dead") {
        // An application that accepts the request and never answers.
        std::future::pending::<()>().await;
    }
    let answer = {
        let mut answers = state.answers.lock().unwrap();
        let queue = answers.entry(app).or_default();
        if queue.is_empty() {
            None
        } else {
            Some(queue.remove(0))
        }
    };
    let (status, body) = answer.unwrap_or((200, String::new()));
    (StatusCode::from_u16(status).unwrap(), body)
}

impl Receiver {
    async fn start() -> Receiver {
        let (sender, received) = mpsc::unbounded_channel();
        let answers = Arc::new(Mutex::new(HashMap::new()));
        let state = ReceiverState {
            sender,
            answers: answers.clone(),
        };
        let app = axum::Router::new()
            .route("/logout/{app}", post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            base,
            received,
            answers,
        }
    }

    fn uri(&self, app: &str) -> String {
        format!("{}/logout/{app}", self.base)
    }

    fn answer(&self, app: &str, answers: &[(u16, &str)]) {
        self.answers.lock().unwrap().insert(
            app.to_owned(),
            answers
                .iter()
                .map(|(status, body)| (*status, (*body).to_owned()))
                .collect(),
        );
    }

    /// The next `count` requests, or a panic naming what arrived after 15 s.
    async fn next(&mut self, count: usize) -> Vec<Received> {
        let mut got = Vec::new();
        while got.len() < count {
            match tokio::time::timeout(Duration::from_secs(15), self.received.recv()).await {
                Ok(Some(received)) => got.push(received),
                _ => panic!(
                    "expected {count} logout requests, got {}: {got:?}",
                    got.len()
                ),
            }
        }
        got
    }
}

fn config(h: &Harness, back_channel_logout: bool) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.initial_token = Some(TOKEN.into());
    config.features.back_channel_logout = back_channel_logout;
    config.database.url = h.postgres_url();
    config.database.data_dir = h.data_dir().join("data");
    config
}

fn app_config(name: &str, alg: &str, logout_uri: Option<String>) -> OidcConfig {
    serde_json::from_value(json!({
        "name": name,
        "client_type": "confidential",
        "auth_method": "client_secret_basic",
        "redirect_uris": [CALLBACK],
        "post_logout_redirect_uris": [SIGNED_OUT],
        "grant_types": ["authorization_code", "refresh_token"],
        "id_token_signing_alg": alg,
        "access_token_lifetime_secs": 3600,
        "id_token_lifetime_secs": 600,
        "refresh_token_lifetime_secs": 86400,
        "back_channel_logout_uri": logout_uri,
    }))
    .unwrap()
}

struct App {
    name: String,
    client_id: String,
    secret: String,
}

/// A server with alice and the given applications (name, alg, with a logout URI?).
async fn arrange(
    h: &Harness,
    flag: bool,
    receiver: &Receiver,
    apps: &[(&str, &str, bool)],
) -> (RunningServer, Vec<App>) {
    let apps: Vec<(&str, &str, Option<String>)> = apps
        .iter()
        .map(|(name, alg, with_uri)| (*name, *alg, with_uri.then(|| receiver.uri(name))))
        .collect();
    arrange_with(config(h, flag), &apps).await
}

/// A server started with `config`, with alice and the given applications (name, alg, logout
/// URI).
async fn arrange_with(
    config: Config,
    apps: &[(&str, &str, Option<String>)],
) -> (RunningServer, Vec<App>) {
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
                password,
            },
        )
        .await
        .unwrap();
    let mut created = Vec::new();
    for (name, alg, uri) in apps {
        let (app, secret) = domain
            .add_application(&admin, app_config(name, alg, uri.clone()))
            .await
            .unwrap();
        created.push(App {
            name: (*name).to_owned(),
            client_id: app.client_id,
            secret: secret.unwrap(),
        });
    }
    (server, created)
}

/// Signs alice in to every application in one browser session; returns the browser and the
/// ID token each application received.
async fn sign_in_to_all(server: &RunningServer, apps: &[App]) -> (Browser, Vec<String>) {
    sign_in_with(Browser::new(server), apps).await
}

/// [`sign_in_to_all`] with a given browser (for a server that runs as a separate process).
async fn sign_in_with(mut browser: Browser, apps: &[App]) -> (Browser, Vec<String>) {
    let mut id_tokens = Vec::new();
    for (index, app) in apps.iter().enumerate() {
        let redirect = if index == 0 {
            browser
                .sign_in(
                    &authorize_path(&app.client_id),
                    "alice",
                    "correct horse battery",
                )
                .await
        } else {
            location(&browser.get(&authorize_path(&app.client_id)).await)
        };
        let code = query_of(&redirect)["code"].clone();
        let tokens: Value = browser
            .http
            .post(format!("{}/oauth/v2/token", browser.base))
            .basic_auth(&app.client_id, Some(&app.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        id_tokens.push(tokens["id_token"].as_str().expect("an ID token").to_owned());
    }
    (browser, id_tokens)
}

async fn verifier(browser: &Browser) -> Verifier {
    let jwks: JwkSet = browser
        .http
        .get(format!("{}/oauth/v2/keys", browser.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Verifier::new(&jwks).unwrap()
}

/// A text claim of a token the server signed (an ID or a logout token).
async fn claim_of(browser: &Browser, token: &str, name: &str) -> String {
    verifier(browser)
        .await
        .verify(token, &Validation::new(), now())
        .unwrap()
        .claims[name]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `sid` of an ID token the server issued.
async fn sid_of(browser: &Browser, id_token: &str) -> String {
    claim_of(browser, id_token, "sid").await
}

/// RP-initiated logout with `id_token` as the hint.
async fn end_session(browser: &mut Browser, id_token: &str) -> reqwest::Response {
    browser
        .get(&format!(
            "/oidc/v1/end_session?{}",
            form(&[("id_token_hint", id_token)])
        ))
        .await
}

/// RP-initiated logout with `id_token` as the hint, back to [`SIGNED_OUT`] with `state`.
async fn end_session_to_signed_out(
    browser: &mut Browser,
    id_token: &str,
    state: &str,
) -> reqwest::Response {
    browser
        .get(&format!(
            "/oidc/v1/end_session?{}",
            form(&[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", SIGNED_OUT),
                ("state", state),
            ])
        ))
        .await
}

/// The items of the logout receipt's list with this id (`told`, `unreachable`), unescaped;
/// none when the page has no such list.
fn listed(html: &str, id: &str) -> Vec<String> {
    let Some(start) = html.find(&format!("<ul id=\"{id}\"")) else {
        return vec![];
    };
    let list = &html[start..];
    let list = &list[list.find('>').unwrap() + 1..list.find("</ul>").unwrap()];
    list.split("<li>")
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.trim_end_matches("</li>")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

eventstore::on_both_backends!(
    every_application_of_an_ended_session_gets_a_verifiable_logout_token,
    failed_deliveries_are_redelivered_with_fresh_tokens_and_every_attempt_is_kept,
    a_waited_logout_shows_a_receipt_that_links_on_to_the_post_logout_uri,
);

async fn every_application_of_an_ended_session_gets_a_verifiable_logout_token(h: Harness) {
    let mut receiver = Receiver::start().await;
    let apps = [
        ("rsa", "RS256", true),
        ("ec", "ES256", true),
        ("ed", "EdDSA", true),
        ("plain", "ES256", false),
    ];
    let (server, apps) = arrange(&h, true, &receiver, &apps).await;
    let (mut browser, id_tokens) = sign_in_to_all(&server, &apps).await;
    let verifier = verifier(&browser).await;
    let id_claims = verifier
        .verify(&id_tokens[0], &Validation::new(), now())
        .unwrap()
        .claims;

    // RP-initiated logout by the first application; every application hears of it, the
    // initiator included, and the one without a URI is skipped.
    let ended = end_session(&mut browser, &id_tokens[0]).await;
    assert!(
        ended.status().is_success() || ended.status().is_redirection(),
        "{}",
        ended.status()
    );
    // The request came in on 127.0.0.1, not the instance's own localhost: the tokens name the
    // instance's issuer, which relying parties can verify.
    let origin = server.external_url.clone();
    let mut received = receiver.next(3).await;
    received.sort();
    let names: Vec<&str> = received.iter().map(|(name, ..)| name.as_str()).collect();
    assert_eq!(names, ["ec", "ed", "rsa"]);
    let mut jtis = Vec::new();
    for (name, content_type, token) in &received {
        assert_eq!(content_type, "application/x-www-form-urlencoded");
        let app = apps.iter().find(|app| &app.name == name).unwrap();
        let verified = verifier
            .verify(
                token,
                &Validation::new()
                    .issuer(origin.clone())
                    .audience(app.client_id.clone())
                    .typ("logout+jwt"),
                now(),
            )
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let claims = verified.claims;
        let expected_alg = match name.as_str() {
            "rsa" => "RS256",
            "ec" => "ES256",
            _ => "EdDSA",
        };
        assert_eq!(verified.header.alg.name(), expected_alg);
        assert_eq!(verified.header.typ.as_deref(), Some("logout+jwt"));
        assert_eq!(claims["sub"], id_claims["sub"]);
        assert_eq!(claims["sid"], id_claims["sid"]);
        assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
        assert!(claims.get("nonce").is_none());
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            120
        );
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    jtis.dedup();
    assert_eq!(jtis.len(), 3, "every token has its own jti");

    // Admins see the outcomes; the counters say the same.
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let sid = id_claims["sid"].as_str().unwrap();
    let deliveries = wait_settled(&server, &admin.instance_id, sid, 3).await;
    assert!(
        deliveries
            .iter()
            .all(|delivery| delivery.stage == DeliveryStage::Sent && delivery.attempts == 1),
        "{deliveries:?}"
    );
    let listed: Value = browser
        .http
        .get(format!(
            "{}/admin/v1/sessions/{sid}/back-channel-deliveries",
            browser.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed["deliveries"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|delivery| delivery["state"] == "sent"
        && delivery["triggered_at_origin"] == origin.as_str()));
    let ec = &apps.iter().find(|app| app.name == "ec").unwrap().client_id;
    let of_app: Value = browser
        .http
        .get(format!(
            "{}/admin/v1/applications/{ec}/back-channel-deliveries?limit=5",
            browser.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(of_app["deliveries"][0]["session_id"], sid);
    assert_eq!(of_app["deliveries"][0]["attempts"], 1);
    let metrics = scrape(&browser.base).await;
    assert_eq!(metrics.sum("portcullis_back_channel_sent_total", &[]), 3.0);
    for app in apps.iter().filter(|app| app.name != "plain") {
        assert_eq!(
            metrics.value(
                "portcullis_back_channel_sent_total",
                &[("client_id", &app.client_id)]
            ),
            Some(1.0),
            "{}",
            app.name
        );
    }
    server.stop().await.unwrap();
}

/// The session's deliveries once `count` of them are sent or failed.
async fn wait_settled(
    server: &RunningServer,
    instance_id: &str,
    session_id: &str,
    count: usize,
) -> Vec<domain::session_logout::DeliveryView> {
    let domain = server.domain();
    for _ in 0..300 {
        let deliveries = domain
            .deliveries_of_session(instance_id, session_id)
            .await
            .unwrap();
        if deliveries
            .iter()
            .filter(|delivery| {
                delivery.stage == DeliveryStage::Sent || delivery.stage == DeliveryStage::Failed
            })
            .count()
            >= count
        {
            return deliveries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deliveries of {session_id} did not settle")
}

/// An admin ends alice's one live session; returns (instance id, session id).
async fn admin_ends_the_session(server: &RunningServer) -> (String, String) {
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let sessions = domain
        .sessions_of_user(&admin.instance_id, &user_id(server).await, false)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    let sid = sessions[0].session_id.clone();
    domain
        .terminate_session(
            &admin.instance_id,
            &sid,
            domain::TerminationReason::Admin,
            "http://localhost:8080",
            &admin.token_id,
        )
        .await
        .unwrap();
    (admin.instance_id, sid)
}

#[tokio::test]
async fn recoverable_failures_are_retried_and_refusals_are_not() {
    let h = eventstore::testing::sqlite().await;
    let mut receiver = Receiver::start().await;
    receiver.answer("flaky", &[(500, "down for a moment")]);
    receiver.answer(
        "refusing",
        &[(
            400,
            r#"{"error":"invalid_request","error_description":"unknown sid"}"#,
        )],
    );
    let apps = [("flaky", "ES256", true), ("refusing", "ES256", true)];
    let (server, apps) = arrange(&h, true, &receiver, &apps).await;
    let (_browser, id_tokens) = sign_in_to_all(&server, &apps).await;
    let (instance_id, sid) = admin_ends_the_session(&server).await;
    // flaky: 500, then 200 on the retry; refusing: 400 once, never again.
    let received = receiver.next(3).await;
    let count = |name: &str| received.iter().filter(|(app, ..)| app == name).count();
    assert_eq!((count("flaky"), count("refusing")), (2, 1), "{received:?}");
    let deliveries = wait_settled(&server, &instance_id, &sid, 2).await;
    let by_name = |name: &str| {
        let client_id = &apps.iter().find(|app| app.name == name).unwrap().client_id;
        deliveries
            .iter()
            .find(|delivery| &delivery.client_id == client_id)
            .unwrap()
            .clone()
    };
    let flaky = by_name("flaky");
    assert_eq!((flaky.stage, flaky.attempts), (DeliveryStage::Sent, 2));
    let refusing = by_name("refusing");
    assert_eq!(
        (refusing.stage, refusing.attempts),
        (DeliveryStage::Failed, 1)
    );
    assert_eq!(
        refusing.last_error.as_deref(),
        Some("HTTP 400: invalid_request (unknown sid)")
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        receiver.received.try_recv().is_err(),
        "a refusal is not retried"
    );
    drop(id_tokens);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn with_the_feature_off_nothing_is_registered_or_sent() {
    let h = eventstore::testing::sqlite().await;
    let mut receiver = Receiver::start().await;
    let (server, apps) = arrange(&h, false, &receiver, &[("app", "ES256", true)]).await;
    let (mut browser, id_tokens) = sign_in_to_all(&server, &apps).await;
    end_session(&mut browser, &id_tokens[0]).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let sessions = domain
        .sessions_of_user(&admin.instance_id, &user_id(&server).await, true)
        .await
        .unwrap();
    assert!(sessions[0].terminated);
    assert!(
        domain
            .deliveries_of_session(&admin.instance_id, &sessions[0].session_id)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received.try_recv().is_err());
    server.stop().await.unwrap();
}

async fn user_id(server: &RunningServer) -> String {
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let users = domain.users(&admin.instance_id, "", 10).await.unwrap();
    users
        .into_iter()
        .find(|user| user.username == "alice")
        .unwrap()
        .user_id
}

#[tokio::test]
async fn a_private_target_is_refused_with_the_reason_and_nothing_is_sent() {
    let h = eventstore::testing::sqlite().await;
    let mut receiver = Receiver::start().await;
    let mut config = config(&h, true);
    // Only a network the receiver is not on: loopback is no longer allowed.
    config.back_channel.allowed_networks = Some(vec!["10.99.0.0/16".into()]);
    // One by address, one by name: both resolve to loopback.
    let by_name = receiver.uri("named").replace("127.0.0.1", "localhost");
    let apps = [
        ("literal", "ES256", Some(receiver.uri("literal"))),
        ("named", "ES256", Some(by_name)),
    ];
    let (server, apps) = arrange_with(config, &apps).await;
    let admin = server
        .domain()
        .authenticate_admin(TOKEN)
        .await
        .unwrap()
        .unwrap();
    let (mut browser, id_tokens) = sign_in_to_all(&server, &apps).await;
    let sid = sid_of(&browser, &id_tokens[0]).await;
    end_session(&mut browser, &id_tokens[0]).await;
    let deliveries = wait_settled(&server, &admin.instance_id, &sid, 2).await;
    for delivery in &deliveries {
        assert_eq!(delivery.stage, DeliveryStage::Failed, "{delivery:?}");
        let reason = delivery.last_error.as_deref().unwrap();
        assert!(
            reason.contains("special-use address") && reason.contains("allowed_networks"),
            "{reason}"
        );
    }
    assert!(
        receiver.received.try_recv().is_err(),
        "nothing reached the private target"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_that_runs_out_is_ended_by_the_server_and_its_applications_told() {
    let h = eventstore::testing::sqlite().await;
    let mut receiver = Receiver::start().await;
    let mut config = config(&h, true);
    config.sessions.expiry_check_ms = 100;
    let apps = [("short", "ES256", Some(receiver.uri("short")))];
    let (server, apps) = arrange_with(config, &apps).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let user_id = user_id(&server).await;
    let app = domain
        .application(&admin.instance_id, &apps[0].client_id)
        .await
        .unwrap();
    // A session of one second, signed in to the application.
    let (session, _) = domain
        .create_session(&admin.instance_id, &user_id, Duration::from_secs(1), None)
        .await
        .unwrap();
    let code = domain
        .issue_code(
            &admin.instance_id,
            domain::CodeRequest {
                session_id: session.session_id.clone(),
                client_id: app.client_id.clone(),
                user_id: user_id.clone(),
                redirect_uri: CALLBACK.into(),
                scopes: vec!["openid".into()],
                nonce: None,
                code_challenge: None,
                auth_time: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    domain
        .redeem_code(&admin.instance_id, &app, &code, Some(CALLBACK), &|_| true)
        .await
        .unwrap();

    let received = receiver.next(1).await;
    let verified = verifier(&Browser::new(&server))
        .await
        .verify(
            &received[0].2,
            &Validation::new()
                .issuer(server.external_url.clone())
                .typ("logout+jwt"),
            now(),
        )
        .unwrap();
    assert_eq!(verified.claims["sid"], session.session_id.as_str());
    let sessions = domain
        .sessions_of_user(&admin.instance_id, &user_id, true)
        .await
        .unwrap();
    assert!(sessions[0].terminated);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_application_that_never_answers_does_not_hold_up_the_others() {
    let h = eventstore::testing::sqlite().await;
    let mut receiver = Receiver::start().await;
    let apps = [("dead", "ES256", true), ("alive", "ES256", true)];
    let (server, apps) = arrange(&h, true, &receiver, &apps).await;
    let (mut browser, id_tokens) = sign_in_to_all(&server, &apps).await;
    let sid = sid_of(&browser, &id_tokens[0]).await;
    end_session(&mut browser, &id_tokens[0]).await;
    let mut received = receiver.next(2).await;
    received.sort();
    assert_eq!(
        (received[0].0.as_str(), received[1].0.as_str()),
        ("alive", "dead")
    );
    // The live application's delivery is recorded while the dead one's attempt is still open
    // (its timeout is 5 s).
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let deliveries = wait_settled(&server, &admin.instance_id, &sid, 1).await;
    let state = |name: &str| {
        let client_id = &apps.iter().find(|app| app.name == name).unwrap().client_id;
        deliveries
            .iter()
            .find(|delivery| &delivery.client_id == client_id)
            .unwrap()
            .stage
    };
    assert_eq!(
        (state("alive"), state("dead")),
        (DeliveryStage::Sent, DeliveryStage::Due)
    );
    server.stop().await.unwrap();
}

/// Two servers on one PostgreSQL database (replicas): each notification is delivered once
/// between them.
#[tokio::test]
async fn two_replicas_deliver_each_notification_once() {
    let Some(h) = eventstore::testing::postgres().await else {
        return;
    };
    let mut receiver = Receiver::start().await;
    let names: Vec<String> = (0..20).map(|index| format!("app{index}")).collect();
    let specs: Vec<(&str, &str, bool)> = names
        .iter()
        .map(|name| (name.as_str(), "ES256", true))
        .collect();
    let (first, apps) = arrange(&h, true, &receiver, &specs).await;
    let second = RunningServer::start(config(&h, true)).await.unwrap();
    let domain = first.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let user = user_id(&first).await;
    // Five sessions, each signed in to every application; all ended at once.
    for _ in 0..5 {
        sign_in_to_all(&first, &apps).await;
    }
    let ended = second
        .domain()
        .sign_out_user(
            &admin.instance_id,
            &user,
            domain::TerminationReason::Admin,
            "http://localhost:8080",
            &admin.token_id,
        )
        .await
        .unwrap();
    assert_eq!(ended, 5);
    let received = receiver.next(100).await;
    // Every delivery recorded sent after one attempt, and nothing more arrives.
    for session in domain
        .sessions_of_user(&admin.instance_id, &user, true)
        .await
        .unwrap()
    {
        let deliveries = wait_settled(&first, &admin.instance_id, &session.session_id, 20).await;
        assert!(
            deliveries
                .iter()
                .all(|delivery| delivery.stage == DeliveryStage::Sent && delivery.attempts == 1),
            "{deliveries:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver.received.try_recv().is_err(),
        "a notification was delivered twice"
    );
    let verifier = verifier(&Browser::new(&first)).await;
    let mut pairs: Vec<(String, String)> = received
        .iter()
        .map(|(_, _, token)| {
            let claims = verifier
                .verify(token, &Validation::new(), now())
                .unwrap()
                .claims;
            (
                claims["sid"].as_str().unwrap().to_owned(),
                claims["aud"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 100, "one token per (session, application)");
    second.stop().await.unwrap();
    first.stop().await.unwrap();
}

/// The real binary killed with SIGKILL in the middle of a fan-out, then started again on the
/// same data: every application ends up notified and every delivery recorded as sent.
#[tokio::test]
async fn a_fan_out_cut_by_a_crash_is_finished_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start().await;
    let envs = [
        ("PORTCULLIS_ADMIN__INITIAL_TOKEN", TOKEN),
        ("PORTCULLIS_FEATURES__BACK_CHANNEL_LOGOUT", "true"),
        // One delivery at a time to the receiver's host, so the crash lands mid fan-out.
        ("PORTCULLIS_BACK_CHANNEL__PER_HOST_CONCURRENCY", "1"),
        // Claims of the killed process lapse after 2 × timeout + 2 s.
        ("PORTCULLIS_BACK_CHANNEL__TIMEOUT_MS", "1000"),
        ("PORTCULLIS_LOG__FORMAT", "json"),
    ];
    let mut process = Process::spawn(start(dir.path(), &envs));
    let base = format!("http://{}", process.address());
    let admin = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        admin
            .post(format!("{base}/admin/v1{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let created = post(
        "/users",
        json!({"username": "alice", "password": "correct horse battery"}),
    )
    .await
    .unwrap();
    assert!(
        created.status().is_success(),
        "{}",
        created.text().await.unwrap()
    );
    let mut apps = Vec::new();
    for index in 0..20 {
        let name = format!("slow{index}");
        let created: Value = post(
            "/applications",
            json!({"name": name, "redirect_uris": [CALLBACK], "back_channel_logout_uri": receiver.uri(&name)}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        apps.push(App {
            name,
            client_id: created["client_id"].as_str().unwrap().to_owned(),
            secret: created["client_secret"].as_str().unwrap().to_owned(),
        });
    }
    let (mut browser, id_tokens) = sign_in_with(Browser::at(base.clone()), &apps).await;
    let sid = sid_of(&browser, &id_tokens[0]).await;
    end_session(&mut browser, &id_tokens[0]).await;
    let before = receiver.next(3).await;
    process.kill();

    let mut process = Process::spawn(start(dir.path(), &envs));
    let base = format!("http://{}", process.address());
    let mut notified: std::collections::BTreeSet<String> =
        before.into_iter().map(|(name, ..)| name).collect();
    while notified.len() < apps.len() {
        let (name, ..) = receiver.next(1).await.remove(0);
        notified.insert(name);
    }
    let listed: Value = loop {
        let listed: Value = admin
            .get(format!(
                "{base}/admin/v1/sessions/{sid}/back-channel-deliveries"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let deliveries = listed["deliveries"].as_array().unwrap();
        if deliveries.len() == apps.len()
            && deliveries
                .iter()
                .all(|delivery| delivery["state"] == "sent")
        {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(listed["deliveries"].as_array().unwrap().len(), 20);
    process.stop();
}

fn start(dir: &std::path::Path, envs: &[(&str, &str)]) -> std::process::Command {
    let mut command = portcullis(dir, envs);
    command.arg("start");
    command
}

/// Deactivating or removing a user ends their sessions like any other end: each application
/// gets a logout token whose issuer is the instance's (the admin request came in on another
/// host).
#[tokio::test]
async fn deactivating_or_removing_a_user_notifies_their_applications() {
    let h = eventstore::testing::sqlite().await;
    let mut receiver = Receiver::start().await;
    let (server, apps) = arrange(&h, true, &receiver, &[("app", "ES256", true)]).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.local_addr);
    let origin = server.external_url.clone();
    let user = user_id(&server).await;
    for action in ["deactivate", "remove"] {
        sign_in_to_all(&server, &apps).await;
        let request = match action {
            "deactivate" => http
                .post(format!("{base}/admin/v1/users/{user}/deactivate"))
                .json(&json!({})),
            _ => http.delete(format!("{base}/admin/v1/users/{user}")),
        };
        let response = request.bearer_auth(TOKEN).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{action}: {}",
            response.status()
        );
        let (_, _, token) = receiver.next(1).await.remove(0);
        let claims = verifier(&Browser::new(&server))
            .await
            .verify(&token, &Validation::new(), now())
            .unwrap()
            .claims;
        assert_eq!(claims["iss"], origin.as_str(), "{action}");
        assert_eq!(claims["sub"], user.as_str(), "{action}");
        if action == "deactivate" {
            let reactivated = http
                .post(format!("{base}/admin/v1/users/{user}/reactivate"))
                .bearer_auth(TOKEN)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert!(reactivated.status().is_success());
        }
    }
    server.stop().await.unwrap();
}

/// Plain-http logout URIs are a development convenience: refused, naming the field, unless the
/// instance allows them (on by default only for a localhost issuer).
#[tokio::test]
async fn plain_http_logout_uris_need_the_development_setting() {
    let h = eventstore::testing::sqlite().await;
    let mut config = config(&h, true);
    config.server.external_url = "https://id.example.com".into();
    let server = RunningServer::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr);
    let http = reqwest::Client::new();
    let create = |uri: &str| {
        http.post(format!("{base}/admin/v1/applications"))
            .bearer_auth(TOKEN)
            .json(&json!({"name": "app", "redirect_uris": [CALLBACK], "back_channel_logout_uri": uri}))
            .send()
    };
    let refused = create("http://app.example.com/logout").await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["field"], "back_channel_logout_uri");
    assert!(
        create("https://app.example.com/logout")
            .await
            .unwrap()
            .status()
            .is_success()
    );
    for bad in ["not a uri", "https://app.example.com/logout#frag"] {
        let error: Value = create(bad).await.unwrap().json().await.unwrap();
        assert_eq!(error["field"], "back_channel_logout_uri", "{bad}");
    }
    let allowed = http
        .put(format!(
            "{base}/admin/v1/features/back_channel_logout_allow_http"
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert!(allowed.status().is_success());
    assert!(
        create("http://app.example.com/logout")
            .await
            .unwrap()
            .status()
            .is_success()
    );
    server.stop().await.unwrap();
}

/// With `end_session_wait_ms`, the end-session response comes after the applications have
/// heard; an application that never answers holds the user only until the deadline.
#[tokio::test]
async fn end_session_can_wait_for_the_fan_out_up_to_a_deadline() {
    let h = eventstore::testing::sqlite().await;
    let receiver = Receiver::start().await;
    let mut config = config(&h, true);
    config.back_channel.end_session_wait_ms = 1_000;
    let apps = [
        ("slow", "ES256", Some(receiver.uri("slow"))),
        ("dead", "ES256", Some(receiver.uri("dead"))),
    ];
    let (server, apps) = arrange_with(config, &apps).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let (mut browser, id_tokens) = sign_in_to_all(&server, &apps).await;
    let sid = sid_of(&browser, &id_tokens[0]).await;
    let ended = end_session(&mut browser, &id_tokens[0]).await;
    assert_eq!(ended.status(), reqwest::StatusCode::OK);
    let receipt = ended.text().await.unwrap();
    // Read at once, without waiting: the slow application was told before the response.
    let deliveries = domain
        .deliveries_of_session(&admin.instance_id, &sid)
        .await
        .unwrap();
    let state = |name: &str| {
        let client_id = &apps.iter().find(|app| app.name == name).unwrap().client_id;
        deliveries
            .iter()
            .find(|delivery| &delivery.client_id == client_id)
            .unwrap()
            .stage
    };
    assert_eq!(
        (state("slow"), state("dead")),
        (DeliveryStage::Sent, DeliveryStage::Due)
    );
    // The person saw the same, by name, and with no post-logout URI nowhere to continue to.
    assert!(receipt.contains("<h1>You are signed out</h1>"), "{receipt}");
    assert_eq!(listed(&receipt, "told"), ["slow"], "{receipt}");
    assert_eq!(listed(&receipt, "unreachable"), ["dead"], "{receipt}");
    assert!(receipt.contains("You can close this window."), "{receipt}");
    assert!(
        !receipt.contains("<a "),
        "no link without a post-logout URI: {receipt}"
    );
    for app in &apps {
        assert!(!receipt.contains(&app.client_id), "{receipt}");
    }
    server.stop().await.unwrap();
}

/// With the wait on, a logout with a post-logout URI ends on the receipt, whose link carries
/// the `state` exactly as the redirect would have; application names are escaped.
async fn a_waited_logout_shows_a_receipt_that_links_on_to_the_post_logout_uri(h: Harness) {
    let receiver = Receiver::start().await;
    let mut config = config(&h, true);
    // Long enough never to be reached: the one delivery settles first.
    config.back_channel.end_session_wait_ms = 10_000;
    let apps = [("Notes & <Tasks>", "ES256", Some(receiver.uri("notes")))];
    let (server, apps) = arrange_with(config, &apps).await;
    let (mut browser, id_tokens) = sign_in_to_all(&server, &apps).await;
    let ended = end_session_to_signed_out(&mut browser, &id_tokens[0], "a&b c").await;
    assert_eq!(ended.status(), reqwest::StatusCode::OK);
    assert!(
        ended.headers().contains_key("content-security-policy"),
        "the receipt carries the page headers"
    );
    assert!(
        !browser.cookies.contains_key("portcullis_session"),
        "the session cookie is cleared"
    );
    let receipt = ended.text().await.unwrap();
    assert!(receipt.contains("Notes &amp; &lt;Tasks&gt;"), "{receipt}");
    assert_eq!(listed(&receipt, "told"), ["Notes & <Tasks>"], "{receipt}");
    assert_eq!(listed(&receipt, "unreachable"), Vec::<String>::new());
    let link = receipt
        .split_once("<a class=\"continue\" href=\"")
        .unwrap_or_else(|| panic!("no Continue link: {receipt}"))
        .1;
    let (href, text) = link.split_once("\">").unwrap();
    assert!(text.starts_with("Continue</a>"), "{receipt}");
    let href = href.replace("&amp;", "&");
    assert!(href.starts_with(&format!("{SIGNED_OUT}?")), "{href}");
    let query = query_of(&href);
    assert_eq!(query.len(), 1, "{href}");
    assert_eq!(query["state"], "a&b c", "{href}");
    assert!(!receipt.contains("You can close this window."), "{receipt}");
    server.stop().await.unwrap();
}

/// With the wait on but nothing to tell (no application of the session has a logout URI),
/// the logout redirects as it does without the wait.
#[tokio::test]
async fn a_waited_logout_without_deliveries_redirects_as_before() {
    let h = eventstore::testing::sqlite().await;
    let mut config = config(&h, true);
    config.back_channel.end_session_wait_ms = 10_000;
    let (server, apps) = arrange_with(config, &[("quiet", "ES256", None)]).await;
    let (mut browser, id_tokens) = sign_in_to_all(&server, &apps).await;
    let ended = end_session_to_signed_out(&mut browser, &id_tokens[0], "xyz").await;
    assert_eq!(ended.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(location(&ended), format!("{SIGNED_OUT}?state=xyz"));
    server.stop().await.unwrap();
}

/// Answers that are not an acknowledgement: a huge refusal, a redirect, binary garbage, and a
/// peer that does not speak HTTP at all. Each ends as `failed` with a reason a person can read;
/// the redirect's target is never contacted, and a huge 200 still counts as delivered.
#[tokio::test]
async fn huge_redirecting_and_garbage_answers_are_failed_with_a_readable_reason() {
    use axum::response::{IntoResponse, Response};
    const HUGE: usize = 32 << 20;
    let redirected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = redirected.clone();
    let app = axum::Router::new()
        .route(
            "/huge-refusal",
            post(|| async { (StatusCode::BAD_REQUEST, vec![b'x'; HUGE]) }),
        )
        .route(
            "/huge-ok",
            post(|| async { (StatusCode::OK, vec![b'y'; HUGE]) }),
        )
        .route(
            "/redirect",
            post(|| async {
                (StatusCode::TEMPORARY_REDIRECT, [("location", "/target")]).into_response()
            }),
        )
        .route(
            "/target",
            post(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { StatusCode::OK }
            }),
        )
        .route(
            "/garbage",
            post(|| async {
                let junk: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
                Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .body(axum::body::Body::from(junk))
                    .unwrap()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // A peer that answers every connection with bytes that are not HTTP, then hangs up.
    let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let not_http = format!("http://{}/logout", raw.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut socket, _) = raw.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(b"SSH-2.0-not-http\r\n\x00\xff\xfe").await;
            });
        }
    });

    let h = eventstore::testing::sqlite().await;
    let mut config = config(&h, true);
    config.back_channel.max_attempts = 2;
    let uri = |path: &str| Some(format!("{base}/{path}"));
    let apps = [
        ("huge-refusal", "ES256", uri("huge-refusal")),
        ("huge-ok", "ES256", uri("huge-ok")),
        ("redirect", "ES256", uri("redirect")),
        ("garbage", "ES256", uri("garbage")),
        ("not-http", "ES256", Some(not_http)),
    ];
    let (server, apps) = arrange_with(config, &apps).await;
    let (_browser, _id_tokens) = sign_in_to_all(&server, &apps).await;
    let (instance_id, sid) = admin_ends_the_session(&server).await;
    let deliveries = wait_settled(&server, &instance_id, &sid, apps.len()).await;
    let outcome = |name: &str| {
        let client_id = &apps.iter().find(|app| app.name == name).unwrap().client_id;
        let delivery = deliveries
            .iter()
            .find(|delivery| &delivery.client_id == client_id)
            .unwrap();
        (
            delivery.stage.label(),
            delivery.last_error.clone().unwrap_or_default(),
        )
    };
    let readable = |reason: &str| {
        assert!(
            reason.len() <= 400 && !reason.chars().any(char::is_control),
            "unreadable reason: {reason:?}"
        );
    };

    let (state, reason) = outcome("huge-refusal");
    assert_eq!(state, "failed");
    assert!(reason.starts_with("HTTP 400: xxx"), "{reason}");
    readable(&reason);

    assert_eq!(outcome("huge-ok").0, "sent");

    let (state, reason) = outcome("redirect");
    assert_eq!(state, "failed");
    assert!(
        reason.contains("HTTP 307") && reason.contains("redirect"),
        "{reason}"
    );
    assert_eq!(redirected.load(std::sync::atomic::Ordering::SeqCst), 0);

    let (state, reason) = outcome("garbage");
    assert_eq!(state, "failed");
    assert!(reason.starts_with("HTTP 400"), "{reason}");
    readable(&reason);

    let (state, reason) = outcome("not-http");
    assert_eq!(state, "failed");
    assert!(reason.starts_with("gave up after 2 attempts"), "{reason}");
    readable(&reason);
    server.stop().await.unwrap();
}

/// A redelivery through the admin API, which must be accepted; its answer.
async fn redeliver(browser: &Browser, path: &str, body: Option<Value>) -> Value {
    let (status, body) = admin_call(browser, reqwest::Method::POST, path, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{path}: {body}");
    body
}

/// The admin API as a client sees it: (status, JSON body).
async fn admin_call(
    browser: &Browser,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = browser
        .http
        .request(method, format!("{}/admin/v1{path}", browser.base))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An admin re-sends a refused delivery: the application gets a new logout token, the
/// delivery's history shows both attempts and who asked; what was delivered is not re-sent,
/// unknown deliveries are 404, and the instance-wide listing filters and pages.
async fn failed_deliveries_are_redelivered_with_fresh_tokens_and_every_attempt_is_kept(h: Harness) {
    let mut receiver = Receiver::start().await;
    receiver.answer("refusing", &[(400, "not now")]);
    let apps = [
        ("refusing", "ES256", Some(receiver.uri("refusing"))),
        ("ok", "ES256", Some(receiver.uri("ok"))),
        // A special-use address: refused at send time, on every attempt.
        (
            "metadata",
            "ES256",
            Some("http://169.254.169.254/logout".into()),
        ),
    ];
    let (server, apps) = arrange_with(config(&h, true), &apps).await;
    let client_id = |name: &str| {
        apps.iter()
            .find(|app| app.name == name)
            .unwrap()
            .client_id
            .clone()
    };
    let (browser, _id_tokens) = sign_in_to_all(&server, &apps).await;
    let (instance_id, sid) = admin_ends_the_session(&server).await;
    let first = receiver.next(2).await;
    wait_settled(&server, &instance_id, &sid, 3).await;
    let (_, _, first_token) = first.iter().find(|(app, ..)| app == "refusing").unwrap();
    let first_jti = claim_of(&browser, first_token, "jti").await;

    // Bad input: nothing is sent.
    let refusing = client_id("refusing");
    let (status, body) = admin_call(
        &browser,
        reqwest::Method::POST,
        &format!(
            "/sessions/{sid}/back-channel-deliveries/{}/redeliver",
            client_id("ok")
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already acknowledged"),
        "{body}"
    );
    for path in [
        format!("/sessions/{sid}/back-channel-deliveries/nobody/redeliver"),
        format!("/sessions/no-such-session/back-channel-deliveries/{refusing}/redeliver"),
        "/sessions/no-such-session/back-channel-deliveries/redeliver".to_owned(),
    ] {
        let (status, body) = admin_call(&browser, reqwest::Method::POST, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    // Another instance's admin cannot reach this instance's deliveries.
    let other = notify::back_channel::DomainDeliveries::new(server.domain());
    let elsewhere = other
        .redeliver(
            "another-instance",
            "someone",
            &notify::back_channel::Redeliver::One {
                session_id: sid.clone(),
                client_id: refusing.clone(),
            },
        )
        .await;
    assert!(
        matches!(
            elsewhere,
            Err(notify::back_channel::RedeliveryError::NotFound(_))
        ),
        "{elsewhere:?}"
    );
    assert!(receiver.received.try_recv().is_err(), "nothing was sent");

    // The refused one again: a fresh token, and it is delivered this time.
    let body = redeliver(
        &browser,
        &format!("/sessions/{sid}/back-channel-deliveries/{refusing}/redeliver"),
        None,
    )
    .await;
    assert_eq!(body["redelivered"], 1);
    let again = receiver.next(1).await;
    assert_eq!(again[0].0, "refusing");
    assert_ne!(
        claim_of(&browser, &again[0].2, "jti").await,
        first_jti,
        "a new jti"
    );
    let deliveries = wait_settled(&server, &instance_id, &sid, 3).await;
    let stage = |name: &str| {
        deliveries
            .iter()
            .find(|delivery| delivery.client_id == client_id(name))
            .unwrap()
            .stage
    };
    assert_eq!(stage("refusing"), DeliveryStage::Sent);
    let (_, shown) = admin_call(
        &browser,
        reqwest::Method::GET,
        &format!("/sessions/{sid}/back-channel-deliveries/{refusing}"),
        None,
    )
    .await;
    assert_eq!(shown["state"], "sent", "{shown}");
    let history = shown["history"].as_array().unwrap();
    let summary: Vec<(&str, Option<&str>, Option<u64>)> = history
        .iter()
        .map(|entry| {
            (
                entry["kind"].as_str().unwrap(),
                entry["outcome"].as_str(),
                entry["http_status"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("attempt", Some("failed"), Some(400)),
            ("redelivery_requested", None, None),
            ("attempt", Some("sent"), Some(200)),
        ],
        "{shown}"
    );
    let admin = server
        .domain()
        .authenticate_admin(TOKEN)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history[1]["requested_by"], admin.token_id.as_str());
    assert!(history.iter().all(|entry| entry["at"].is_string()));
    assert!(history[0]["duration_ms"].is_u64());

    // A session's redelivery leaves what was delivered alone and names why.
    let body = redeliver(
        &browser,
        &format!("/sessions/{sid}/back-channel-deliveries/redeliver"),
        None,
    )
    .await;
    assert_eq!(body["redelivered"], 1, "only the failed one: {body}");
    assert_eq!(body["skipped"].as_array().unwrap().len(), 2, "{body}");

    // An application's failed ones since a time: refused at the address again, with the
    // same reason as on first delivery.
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    wait_settled(&server, &instance_id, &sid, 3).await;
    let body = redeliver(
        &browser,
        &format!(
            "/applications/{}/back-channel-deliveries/redeliver",
            client_id("metadata")
        ),
        Some(json!({ "failed_since": since })),
    )
    .await;
    assert_eq!(body["redelivered"], 1, "{body}");
    let deliveries = wait_settled(&server, &instance_id, &sid, 3).await;
    let metadata = deliveries
        .iter()
        .find(|delivery| delivery.client_id == client_id("metadata"))
        .unwrap();
    assert_eq!(metadata.stage, DeliveryStage::Failed);
    assert!(
        metadata
            .last_error
            .as_deref()
            .unwrap()
            .contains("special-use address"),
        "{metadata:?}"
    );
    let (_, shown) = admin_call(
        &browser,
        reqwest::Method::GET,
        &format!(
            "/sessions/{sid}/back-channel-deliveries/{}",
            client_id("metadata")
        ),
        None,
    )
    .await;
    let failures = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["outcome"] == "failed")
        .count();
    assert!(failures >= 2, "one failure per round: {shown}");

    // The instance-wide listing: filters, and pages that neither skip nor repeat.
    let list = |query: String| {
        let browser = &browser;
        async move {
            let (status, body) = admin_call(
                browser,
                reqwest::Method::GET,
                &format!("/back-channel-deliveries?{query}"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    let all = list(String::new()).await;
    assert_eq!(all["deliveries"].as_array().unwrap().len(), 3, "{all}");
    let sent = list("state=sent".into()).await;
    assert_eq!(sent["deliveries"].as_array().unwrap().len(), 2, "{sent}");
    let one_app = list(format!("client_id={refusing}&session_id={sid}")).await;
    assert_eq!(one_app["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(
        one_app["deliveries"][0]["history"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let later = list("since=2999-01-01T00:00:00Z".into()).await;
    assert!(later["deliveries"].as_array().unwrap().is_empty());
    let mut seen = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let page = list(query.clone()).await;
        for delivery in page["deliveries"].as_array().unwrap() {
            seen.push(delivery["client_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=1&{}", form(&[("cursor", cursor)])),
            None => break,
        }
    }
    seen.sort();
    let mut expected: Vec<String> = apps.iter().map(|app| app.client_id.clone()).collect();
    expected.sort();
    assert_eq!(seen, expected, "every delivery once");
    for bad in [
        "state=pending",
        "since=yesterday",
        "cursor=garbage",
        "limit=0",
    ] {
        let (status, body) = admin_call(
            &browser,
            reqwest::Method::GET,
            &format!("/back-channel-deliveries?{bad}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    server.stop().await.unwrap();
}

/// "Sign out everyone": every live session of the instance ends in the background, every
/// application of each is told, and the progress says so.
#[tokio::test]
async fn signing_out_everyone_tells_every_application_and_reports_progress() {
    let h = eventstore::testing::sqlite().await;
    let mut receiver = Receiver::start().await;
    let (server, apps) = arrange(&h, true, &receiver, &[("app", "ES256", true)]).await;
    let mut browsers = Vec::new();
    for _ in 0..3 {
        browsers.push(sign_in_to_all(&server, &apps).await.0);
    }
    let (status, started) = admin_call(
        &browsers[0],
        reqwest::Method::POST,
        "/sign-out-everyone",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["sessions_total"], 3);
    let id = started["operation_id"].as_str().unwrap().to_owned();
    let received = receiver.next(3).await;
    assert!(received.iter().all(|(app, ..)| app == "app"));
    let mut progress = Value::Null;
    for _ in 0..300 {
        progress = admin_call(
            &browsers[0],
            reqwest::Method::GET,
            &format!("/sign-out-everyone/{id}"),
            None,
        )
        .await
        .1;
        if progress["state"] == "completed" && progress["deliveries_sent"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(progress["state"], "completed", "{progress}");
    assert_eq!(progress["sessions_ended"], 3, "{progress}");
    assert_eq!(
        (
            &progress["deliveries_sent"],
            &progress["deliveries_failed"],
            &progress["deliveries_pending"]
        ),
        (&json!(3), &json!(0), &json!(0)),
        "{progress}"
    );
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    assert!(
        domain
            .sessions_of_user(&admin.instance_id, &user_id(&server).await, false)
            .await
            .unwrap()
            .is_empty()
    );
    let (status, _) = admin_call(
        &browsers[0],
        reqwest::Method::GET,
        "/sign-out-everyone/unknown",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}

/// Delivery health per application (admin API and `/metrics`).
mod delivery_health {
    use super::*;

    eventstore::on_both_backends!(delivery_health_counts_outcomes_and_alerts_on_a_run_of_failures);

    /// An application's health through the admin API, once `ready` accepts it (the read model
    /// may trail the deliveries by a projection pass on PostgreSQL).
    async fn health_once(
        browser: &Browser,
        client_id: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let (status, body) = admin_call(
                browser,
                reqwest::Method::GET,
                &format!("/applications/{client_id}/back-channel-health"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if ready(&body) {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the health of {client_id} never got there: {last}")
    }

    /// Signs alice in to `apps` in a fresh browser and logs out at the first; returns once
    /// every delivery of that session settled.
    async fn a_session_ends(server: &RunningServer, apps: &[&App], instance_id: &str) {
        let owned: Vec<App> = apps
            .iter()
            .map(|app| App {
                name: app.name.clone(),
                client_id: app.client_id.clone(),
                secret: app.secret.clone(),
            })
            .collect();
        let (mut browser, id_tokens) = sign_in_to_all(server, &owned).await;
        let sid = sid_of(&browser, &id_tokens[0]).await;
        let ended = end_session(&mut browser, &id_tokens[0]).await;
        assert!(ended.status().is_redirection() || ended.status().is_success());
        wait_settled(server, instance_id, &sid, apps.len()).await;
    }

    fn window(body: &Value, name: &str) -> (u64, u64, u64) {
        let window = &body[name];
        (
            window["sent"].as_u64().unwrap(),
            window["retried"].as_u64().unwrap(),
            window["failed"].as_u64().unwrap(),
        )
    }

    /// Sessions end three times. `good` always acknowledges, `flaky` fails once (500) and then
    /// acknowledges, `bad` refuses twice and then acknowledges. The health shows each one's
    /// counts, the latency of what was sent, `bad`'s run of failures with its last error, and
    /// its alert — in the admin API and as the `/metrics` gauge — until it recovers. Unknown
    /// applications and another instance's are 404.
    async fn delivery_health_counts_outcomes_and_alerts_on_a_run_of_failures(h: Harness) {
        let receiver = Receiver::start().await;
        let refusal = r#"{"error":"invalid_request","error_description":"unknown sid"}"#;
        receiver.answer("bad", &[(400, refusal), (400, refusal)]);
        receiver.answer("flaky", &[(500, "down for a moment")]);
        let mut config = config(&h, true);
        config.back_channel.alert_consecutive_failures = 2;
        let apps: Vec<(&str, &str, Option<String>)> = ["good", "bad", "flaky"]
            .into_iter()
            .map(|name| (name, "ES256", Some(receiver.uri(name))))
            .collect();
        let (server, apps) = arrange_with(config, &apps).await;
        let [good, bad, flaky] = [&apps[0], &apps[1], &apps[2]];
        let admin = server
            .domain()
            .authenticate_admin(TOKEN)
            .await
            .unwrap()
            .unwrap();
        let browser = Browser::new(&server);

        // Before any delivery: every application with a URI, at zero.
        let (status, list) =
            admin_call(&browser, reqwest::Method::GET, "/back-channel-health", None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["alert_consecutive_failures"], 2);
        assert_eq!(list["applications"].as_array().unwrap().len(), 3, "{list}");
        assert!(
            list["applications"]
                .as_array()
                .unwrap()
                .iter()
                .all(|app| window(app, "last_day") == (0, 0, 0)
                    && app["consecutive_failures"] == 0
                    && app["alerting"] == false)
        );

        a_session_ends(&server, &[good, bad, flaky], &admin.instance_id).await;
        let bad_health = health_once(&browser, &bad.client_id, |body| {
            body["consecutive_failures"] == 1
        })
        .await;
        assert_eq!(
            bad_health["alerting"], false,
            "one failure is below the threshold"
        );
        let metrics = scrape(&browser.base).await;
        let of_bad = [("client_id", bad.client_id.as_str())];
        assert_eq!(
            metrics.value("portcullis_back_channel_alert", &of_bad),
            Some(0.0)
        );

        a_session_ends(&server, &[good, bad], &admin.instance_id).await;
        let bad_health = health_once(&browser, &bad.client_id, |body| {
            body["consecutive_failures"] == 2
        })
        .await;
        for name in ["last_hour", "last_day"] {
            assert_eq!(window(&bad_health, name), (0, 0, 2), "{bad_health}");
        }
        assert_eq!(bad_health["alerting"], true);
        assert_eq!(
            bad_health["last_error"],
            "HTTP 400: invalid_request (unknown sid)"
        );
        assert!(bad_health["last_error_at"].is_string(), "{bad_health}");
        assert!(bad_health["last_sent_at"].is_null(), "{bad_health}");
        assert!(bad_health["last_day"]["latency_median_ms"].is_null());

        let good_health = health_once(&browser, &good.client_id, |body| {
            body["last_day"]["sent"] == 2
        })
        .await;
        assert_eq!(window(&good_health, "last_day"), (2, 0, 0));
        assert_eq!(good_health["last_day"]["latency_samples"], 2);
        // The figures are there; their size depends on the machine.
        assert!(good_health["last_day"]["latency_median_ms"].is_u64());
        assert!(good_health["last_day"]["latency_p99_ms"].is_u64());
        assert_eq!(good_health["consecutive_failures"], 0);
        let flaky_health = health_once(&browser, &flaky.client_id, |body| {
            body["last_day"]["sent"] == 1
        })
        .await;
        assert_eq!(window(&flaky_health, "last_hour"), (1, 1, 0));
        assert_eq!(
            flaky_health["consecutive_failures"], 0,
            "ended by the retry"
        );
        assert!(
            flaky_health["last_error"]
                .as_str()
                .unwrap()
                .starts_with("HTTP 500"),
            "{flaky_health}"
        );

        // The gauge an alerting rule watches, and the per-application counters beside it.
        let metrics = scrape(&browser.base).await;
        assert_eq!(
            metrics.value("portcullis_back_channel_alert", &of_bad),
            Some(1.0)
        );
        assert_eq!(
            metrics.value("portcullis_back_channel_consecutive_failures", &of_bad),
            Some(2.0)
        );
        assert_eq!(
            metrics.value("portcullis_back_channel_failed_total", &of_bad),
            Some(2.0)
        );
        let of_good = [("client_id", good.client_id.as_str())];
        assert_eq!(
            metrics.value("portcullis_back_channel_alert", &of_good),
            Some(0.0)
        );
        assert_eq!(
            metrics.value("portcullis_back_channel_sent_total", &of_good),
            Some(2.0)
        );
        assert_eq!(
            metrics.value(
                "portcullis_back_channel_retried_total",
                &[("client_id", flaky.client_id.as_str())]
            ),
            Some(1.0)
        );
        let (_, list) =
            admin_call(&browser, reqwest::Method::GET, "/back-channel-health", None).await;
        let alerting: Vec<&str> = list["applications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|app| app["alerting"] == true)
            .map(|app| app["client_id"].as_str().unwrap())
            .collect();
        assert_eq!(alerting, [bad.client_id.as_str()]);

        // bad acknowledges again: the run ends, the alert clears, the last error stays.
        a_session_ends(&server, &[bad], &admin.instance_id).await;
        let bad_health = health_once(&browser, &bad.client_id, |body| {
            body["last_day"]["sent"] == 1
        })
        .await;
        assert_eq!(bad_health["consecutive_failures"], 0);
        assert_eq!(bad_health["alerting"], false);
        assert_eq!(
            bad_health["last_error"],
            "HTTP 400: invalid_request (unknown sid)"
        );
        assert!(bad_health["last_sent_at"].is_string());
        let metrics = scrape(&browser.base).await;
        assert_eq!(
            metrics.value("portcullis_back_channel_alert", &of_bad),
            Some(0.0)
        );
        assert_eq!(
            metrics.value("portcullis_back_channel_consecutive_failures", &of_bad),
            Some(0.0)
        );

        // Unknown here: a client id that does not exist, and another instance's application.
        let (status, _) = admin_call(
            &browser,
            reqwest::Method::GET,
            "/applications/no-such-app/back-channel-health",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let domain = server.domain();
        let other = domain
            .add_instance("other", "https://other.example.com")
            .await
            .unwrap();
        let other_admin = domain::AdminPrincipal {
            instance_id: other.instance_id.clone(),
            token_id: "test".into(),
        };
        let (elsewhere, _) = domain
            .add_application(
                &other_admin,
                app_config("elsewhere", "ES256", Some(receiver.uri("elsewhere"))),
            )
            .await
            .unwrap();
        let (status, _) = admin_call(
            &browser,
            reqwest::Method::GET,
            &format!("/applications/{}/back-channel-health", elsewhere.client_id),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, list) =
            admin_call(&browser, reqwest::Method::GET, "/back-channel-health", None).await;
        assert!(
            list["applications"]
                .as_array()
                .unwrap()
                .iter()
                .all(|app| app["client_id"] != elsewhere.client_id.as_str()),
            "{list}"
        );
        server.stop().await.unwrap();
    }
}

/// Several instances on one server, told apart by host, created and removed over the system
/// API (issue 16, item 1).
mod instances {
    use super::*;

    const SYSTEM_TOKEN: &str = "test-system-token-0123456789abcdef";

    eventstore::on_both_backends!(instances_stay_apart_and_removal_tells_their_applications);

    /// A system API request.
    async fn system(
        http: &reqwest::Client,
        base: &str,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = http.request(method, format!("{base}/system/v1{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An admin API request on `base` (the instance's own host) with `token`.
    async fn admin(
        http: &reqwest::Client,
        base: &str,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = http
            .request(method, format!("{base}/admin/v1{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates alice and an application named `name` (logging out to `receiver`) in the
    /// instance of `token`, over the admin API.
    async fn populate(
        http: &reqwest::Client,
        base: &str,
        token: &str,
        name: &str,
        receiver: &Receiver,
    ) -> App {
        let user = json!({"username": "alice", "password": "correct horse battery"});
        let (status, body) = admin(
            http,
            base,
            reqwest::Method::POST,
            "/users",
            token,
            Some(user),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let app = json!({
            "name": name,
            "redirect_uris": [CALLBACK],
            "post_logout_redirect_uris": [SIGNED_OUT],
            "id_token_signing_alg": "ES256",
            "back_channel_logout_uri": receiver.uri(name),
        });
        let (status, body) = admin(
            http,
            base,
            reqwest::Method::POST,
            "/applications",
            token,
            Some(app),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        App {
            name: name.to_owned(),
            client_id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// Signs alice in to `app` through `browser`; returns the token response.
    async fn tokens_of(browser: &mut Browser, app: &App) -> Value {
        let redirect = browser
            .sign_in(
                &authorize_path(&app.client_id),
                "alice",
                "correct horse battery",
            )
            .await;
        let code = query_of(&redirect)["code"].clone();
        browser
            .http
            .post(format!("{}/oauth/v2/token", browser.base))
            .basic_auth(&app.client_id, Some(&app.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Whether `app`'s instance (at `base`) calls `access_token` active.
    async fn active_at(http: &reqwest::Client, base: &str, app: &App, access_token: &str) -> bool {
        let answer: Value = http
            .post(format!("{base}/oauth/v2/introspect"))
            .basic_auth(&app.client_id, Some(&app.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("token", access_token)]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["active"].as_bool().unwrap()
    }

    async fn userinfo_status(http: &reqwest::Client, base: &str, access_token: &str) -> StatusCode {
        http.get(format!("{base}/oidc/v1/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn instances_stay_apart_and_removal_tells_their_applications(h: Harness) {
        let mut receiver = Receiver::start().await;
        let mut config = config(&h, true);
        config.admin.system_token = Some(SYSTEM_TOKEN.into());
        let server = RunningServer::start(config).await.unwrap();
        let port = server.local_addr.port();
        // Both reach the same listener; the Host header tells the instances apart.
        let (url_a, url_b) = (
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        );
        let http = reqwest::Client::new();
        let get = reqwest::Method::GET;
        let post = reqwest::Method::POST;
        let delete = reqwest::Method::DELETE;

        // Only the system token opens the system API; an instance's admin token does not.
        for (token, error) in [
            (None, "invalid_request"),
            (Some("wrong-token-but-long-enough-0123"), "invalid_token"),
            (Some(TOKEN), "invalid_token"),
        ] {
            let (status, body) =
                system(&http, &url_a, get.clone(), "/instances", token, None).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::UNAUTHORIZED, Some(error))
            );
        }
        // ... nor does the system token open the admin API.
        let (status, _) = admin(&http, &url_a, get.clone(), "/users", SYSTEM_TOKEN, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let mut created = Vec::new();
        for (url, name) in [(&url_a, "Tenant A"), (&url_b, "Tenant B")] {
            let body = json!({"external_url": format!("{url}/"), "display_name": name});
            let (status, body) = system(
                &http,
                &url_a,
                post.clone(),
                "/instances",
                Some(SYSTEM_TOKEN),
                Some(body),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            assert_eq!(body["instance"]["external_url"], url.as_str());
            assert_eq!(body["instance"]["state"], "active");
            assert!(body["admin_token"].as_str().unwrap().starts_with("pcat_"));
            created.push((
                body["instance"]["instance_id"].as_str().unwrap().to_owned(),
                body["admin_token"].as_str().unwrap().to_owned(),
            ));
        }
        let [(_instance_a, token_a), (instance_b, token_b)] = created.try_into().unwrap();
        // A URL (or another path on the origin) another instance answers on is a conflict.
        for taken in [url_a.clone(), format!("{url_b}/tenant")] {
            let body = json!({"external_url": taken, "display_name": "Again"});
            let (status, body) = system(
                &http,
                &url_a,
                post.clone(),
                "/instances",
                Some(SYSTEM_TOKEN),
                Some(body),
            )
            .await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::CONFLICT, Some("conflict")),
                "{body}"
            );
        }
        for bad in ["not a url", "ftp://x.example", "https://x.example/?q=1"] {
            let body = json!({"external_url": bad, "display_name": "Bad"});
            let (status, body) = system(
                &http,
                &url_a,
                post.clone(),
                "/instances",
                Some(SYSTEM_TOKEN),
                Some(body),
            )
            .await;
            assert_eq!(
                (status, body["field"].as_str()),
                (StatusCode::BAD_REQUEST, Some("external_url")),
                "{bad}"
            );
        }
        let (_, list) = system(
            &http,
            &url_a,
            get.clone(),
            "/instances",
            Some(SYSTEM_TOKEN),
            None,
        )
        .await;
        let listed: Vec<&str> = list["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|instance| instance["external_url"].as_str().unwrap())
            .collect();
        assert_eq!(
            listed,
            ["http://localhost:8080", url_a.as_str(), url_b.as_str()]
        );
        let default_id = list["instances"][0]["instance_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, shown) = system(
            &http,
            &url_a,
            get.clone(),
            &format!("/instances/{instance_b}"),
            Some(SYSTEM_TOKEN),
            None,
        )
        .await;
        assert_eq!(
            (status, shown["display_name"].as_str()),
            (StatusCode::OK, Some("Tenant B"))
        );

        // A user and an application in each, through each instance's own admin token.
        let app_a = populate(&http, &url_a, &token_a, "a", &receiver).await;
        let app_b = populate(&http, &url_b, &token_b, "b", &receiver).await;
        // An admin token reaches its own instance only, whatever host it is sent to.
        let (_, apps) = admin(&http, &url_b, get.clone(), "/applications", &token_a, None).await;
        let names: Vec<&str> = apps["applications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|app| app["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a"]);
        let (status, _) = admin(
            &http,
            &url_a,
            get.clone(),
            &format!("/applications/{}", app_b.client_id),
            &token_a,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let mut browser_a = Browser::at(url_a.clone());
        let mut browser_b = Browser::at(url_b.clone());
        let tokens_a = tokens_of(&mut browser_a, &app_a).await;
        let tokens_b = tokens_of(&mut browser_b, &app_b).await;
        let (access_a, access_b) = (
            tokens_a["access_token"].as_str().unwrap(),
            tokens_b["access_token"].as_str().unwrap(),
        );
        let id_a = tokens_a["id_token"].as_str().unwrap();
        let id_b = tokens_b["id_token"].as_str().unwrap();
        assert_eq!(claim_of(&browser_a, id_a, "iss").await, url_a);
        assert_eq!(claim_of(&browser_b, id_b, "iss").await, url_b);
        // Each instance's tokens are good at home and unknown at the other.
        assert!(active_at(&http, &url_a, &app_a, access_a).await);
        assert!(!active_at(&http, &url_b, &app_b, access_a).await);
        assert!(!active_at(&http, &url_a, &app_a, access_b).await);
        assert_eq!(
            userinfo_status(&http, &url_a, access_a).await,
            StatusCode::OK
        );
        assert_eq!(
            userinfo_status(&http, &url_b, access_a).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            userinfo_status(&http, &url_a, access_b).await,
            StatusCode::UNAUTHORIZED
        );

        // A host no instance answers on gets a 404, never another instance's answer.
        let unknown = http
            .get(format!("{url_a}/.well-known/openid-configuration"))
            .header("host", format!("unknown.example:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            unknown.headers()["content-type"],
            "text/plain; charset=utf-8",
            "a plain 404"
        );
        let text = unknown.text().await.unwrap();
        assert!(!text.contains(&url_a) && !text.contains(&url_b), "{text}");

        // A's logout token carries A's issuer.
        end_session(&mut browser_a, id_a).await;
        let received = receiver.next(1).await;
        assert_eq!(received[0].0, "a");
        assert_eq!(claim_of(&browser_a, &received[0].2, "iss").await, url_a);

        // The default instance cannot be removed.
        let (status, body) = system(
            &http,
            &url_a,
            delete.clone(),
            &format!("/instances/{default_id}"),
            Some(SYSTEM_TOKEN),
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::CONFLICT, Some("conflict")),
            "{body}"
        );

        // Removing B ends its session: its application is told (with B's issuer) before the
        // removal answers, and then B is gone.
        let verifier_b = verifier(&browser_b).await;
        let (status, body) = system(
            &http,
            &url_a,
            delete.clone(),
            &format!("/instances/{instance_b}"),
            Some(SYSTEM_TOKEN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (app, _, logout_token) = receiver
            .received
            .try_recv()
            .expect("the logout token arrived before the removal answered");
        assert_eq!(app, "b");
        let claims = verifier_b
            .verify(&logout_token, &Validation::new(), now())
            .unwrap()
            .claims;
        assert_eq!(claims["iss"], url_b.as_str());
        assert_eq!(claims["aud"], app_b.client_id.as_str());
        let (_, list) = system(
            &http,
            &url_a,
            get.clone(),
            "/instances",
            Some(SYSTEM_TOKEN),
            None,
        )
        .await;
        assert_eq!(list["instances"].as_array().unwrap().len(), 2, "{list}");
        let (status, _) = system(
            &http,
            &url_a,
            get.clone(),
            &format!("/instances/{instance_b}"),
            Some(SYSTEM_TOKEN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = system(
            &http,
            &url_a,
            delete.clone(),
            &format!("/instances/{instance_b}"),
            Some(SYSTEM_TOKEN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Its host answers no more, its admin token opens nothing, A is untouched.
        let gone = http
            .get(format!("{url_b}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
        let (status, _) = admin(&http, &url_b, get.clone(), "/users", &token_b, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = admin(&http, &url_a, get.clone(), "/users", &token_a, None).await;
        assert_eq!(status, StatusCode::OK);
        server.stop().await.unwrap();
    }
}
