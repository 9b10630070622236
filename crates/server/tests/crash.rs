//! Crash safety, proven on the real binary: SIGKILL in the middle of a burst of concurrent
//! code flows and logouts from many clients. After the restart every acknowledged command is
//! there (its tokens work, its logout happened), none is half there, and every session that
//! ended — acknowledged or not — has its application told.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use common::process::{Process, portcullis};
use common::{Browser, CALLBACK, TOKEN, VERIFIER, authorize_path, form, location, query_of};
use jose::{JwkSet, Validation, Verifier};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const PASSWORD: &str = "correct horse battery";
const CLIENTS: usize = 12;

/// What the clients were told before the crash.
#[derive(Default)]
struct Acknowledged {
    /// Token responses received: (sid, access token).
    tokens: Vec<(String, String)>,
    /// Sessions whose logout was sent (answered or not).
    logout_sent: HashSet<String>,
    /// Sessions whose logout was answered.
    logged_out: HashSet<String>,
}

/// An application's logout endpoint: forwards every logout token.
async fn logout_endpoint(sender: mpsc::UnboundedSender<String>) -> String {
    let app = axum::Router::new()
        .route(
            "/logout",
            post(
                |State(sender): State<mpsc::UnboundedSender<String>>, body: String| async move {
                    let token = form_urlencoded::parse(body.as_bytes())
                        .find(|(name, _)| name == "logout_token")
                        .map(|(_, value)| value.into_owned())
                        .unwrap_or_default();
                    let _ = sender.send(token);
                },
            ),
        )
        .with_state(sender);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/logout", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    uri
}

fn start(dir: &std::path::Path) -> Process {
    let envs = [
        ("PORTCULLIS_ADMIN__INITIAL_TOKEN", TOKEN),
        // Claims of the killed process lapse after 2 × timeout + 2 s.
        ("PORTCULLIS_BACK_CHANNEL__TIMEOUT_MS", "1000"),
        ("PORTCULLIS_LOG__FORMAT", "json"),
    ];
    let mut command = portcullis(dir, &envs);
    command.arg("start");
    Process::spawn(command)
}

/// One code exchange: the token response, or `None` when the server did not answer.
async fn exchange(browser: &Browser, client: &(String, String), code: &str) -> Option<Value> {
    let response = browser
        .http
        .post(format!("{}/oauth/v2/token", browser.base))
        .basic_auth(&client.0, Some(&client.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// The `sid` of an ID token (the signature is checked by the other suites).
fn sid_of(verifier: &Verifier, id_token: &str) -> String {
    verifier
        .verify(id_token, &Validation::new(), chrono::Utc::now().timestamp())
        .unwrap()
        .claims["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn verifier_of(base: &str) -> Verifier {
    let jwks: JwkSet = reqwest::get(format!("{base}/oauth/v2/keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Verifier::new(&jwks).unwrap()
}

/// The browser's session cookie, as a `Cookie` header value.
fn session_cookie(browser: &Browser) -> String {
    format!(
        "portcullis_session={}",
        browser.cookies["portcullis_session"]
    )
}

/// One client: signs in, runs code flows on its session, logs out after `flows` of them.
/// Stops quietly at the first request the (killed) server does not answer.
async fn client_burst(
    base: String,
    client: (String, String),
    verifier: Arc<Verifier>,
    flows: usize,
    acknowledged: Arc<Mutex<Acknowledged>>,
    signed_in: Arc<tokio::sync::Barrier>,
) {
    let mut browser = Browser::at(base);
    let callback = browser
        .sign_in(&authorize_path(&client.0), "alice", PASSWORD)
        .await;
    let first = query_of(&callback)["code"].clone();
    signed_in.wait().await;
    let mut code = first;
    let mut last_id_token = None;
    for flow in 0..=flows {
        if flow > 0 {
            let Ok(response) = browser
                .http
                .get(format!("{}{}", browser.base, authorize_path(&client.0)))
                .header(
                    "cookie",
                    format!(
                        "portcullis_session={}",
                        browser.cookies["portcullis_session"]
                    ),
                )
                .send()
                .await
            else {
                return;
            };
            if !response.status().is_redirection() {
                return;
            }
            code = query_of(&location(&response))["code"].clone();
        }
        let Some(tokens) = exchange(&browser, &client, &code).await else {
            return;
        };
        let id_token = tokens["id_token"].as_str().unwrap().to_owned();
        let sid = sid_of(&verifier, &id_token);
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        acknowledged.lock().unwrap().tokens.push((sid, access));
        last_id_token = Some(id_token);
    }
    let id_token = last_id_token.expect("at least one flow");
    let sid = sid_of(&verifier, &id_token);
    acknowledged.lock().unwrap().logout_sent.insert(sid.clone());
    let ended = browser
        .http
        .get(format!(
            "{}/oidc/v1/end_session?{}",
            browser.base,
            form(&[("id_token_hint", &id_token)])
        ))
        .header("cookie", session_cookie(&browser))
        .send()
        .await;
    if ended.is_ok_and(|response| response.status().is_success()) {
        acknowledged.lock().unwrap().logged_out.insert(sid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_burst_loses_no_acknowledged_command() {
    let dir = tempfile::tempdir().unwrap();
    let (sender, mut logout_tokens) = mpsc::unbounded_channel();
    let logout_uri = logout_endpoint(sender).await;
    let mut process = start(dir.path());
    let base = format!("http://{}", process.address());
    let admin = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        admin
            .post(format!("{base}/admin/v1{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let alice: Value = post("/users", json!({"username": "alice", "password": PASSWORD}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = alice["user_id"].as_str().unwrap().to_owned();
    let app: Value = post(
        "/applications",
        json!({"name": "app", "redirect_uris": [CALLBACK], "back_channel_logout_uri": logout_uri}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let client = (
        app["client_id"].as_str().unwrap().to_owned(),
        app["client_secret"].as_str().unwrap().to_owned(),
    );
    let verifier = Arc::new(verifier_of(&base).await);

    // Every client signs in first (the slow argon2 part), then all burst at once; client i
    // logs out after 2 + 3i flows, so logouts are spread over the burst.
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let signed_in = Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|index| {
            tokio::spawn(client_burst(
                base.clone(),
                client.clone(),
                verifier.clone(),
                2 + 3 * index,
                acknowledged.clone(),
                signed_in.clone(),
            ))
        })
        .collect();
    signed_in.wait().await;
    // Kill once some clients have logged out and others are still mid-flow.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ended = acknowledged.lock().unwrap().logged_out.len();
        if ended >= CLIENTS / 3 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.kill();
    for client in clients {
        // A client cut off by the kill may have panicked inside the scripted browser.
        let _ = client.await;
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(
        acknowledged.logged_out.len() < CLIENTS,
        "the kill came after the burst: nothing was tested"
    );

    // Shown with --nocapture: how much the burst had done when it was cut.
    println!(
        "killed after {} acknowledged token responses, {} logouts sent, {} answered",
        acknowledged.tokens.len(),
        acknowledged.logout_sent.len(),
        acknowledged.logged_out.len()
    );

    let mut process = start(dir.path());
    let base = format!("http://{}", process.address());
    let introspect = |token: String| {
        let request = admin
            .post(format!("{base}/oauth/v2/introspect"))
            .basic_auth(&client.0, Some(&client.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("token", &token)]));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // Acknowledged tokens of sessions nobody tried to end work; those of ended sessions do not.
    for (sid, access) in &acknowledged.tokens {
        let active = introspect(access.clone()).await["active"] == true;
        if !acknowledged.logout_sent.contains(sid) {
            assert!(
                active,
                "an acknowledged token of live session {sid} was lost"
            );
        } else if acknowledged.logged_out.contains(sid) {
            assert!(
                !active,
                "session {sid} was logged out, its token still works"
            );
        }
    }
    // Acknowledged logouts happened, and every session that ended, acknowledged or not, is
    // told to its application (its registration was committed with its tokens).
    let sessions: Value = admin
        .get(format!(
            "{base}/admin/v1/users/{user_id}/sessions?include_ended=true"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ended: BTreeSet<String> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|session| session["terminated"] == true)
        .map(|session| session["session_id"].as_str().unwrap().to_owned())
        .collect();
    for sid in &acknowledged.logged_out {
        assert!(ended.contains(sid), "acknowledged logout of {sid} was lost");
    }
    let verifier = verifier_of(&base).await;
    let mut told = BTreeSet::new();
    while !ended.is_subset(&told) {
        let token = tokio::time::timeout(Duration::from_secs(20), logout_tokens.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "sessions ended but never told: {:?}",
                    ended.difference(&told)
                )
            })
            .unwrap();
        told.insert(sid_of(&verifier, &token));
    }
    assert!(
        told.is_subset(&ended),
        "a logout token for a session that did not end: {:?}",
        told.difference(&ended)
    );
    process.stop();
}
