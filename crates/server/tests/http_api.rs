//! The real server on a random port, driven over HTTP as a client would; every test runs on
//! SQLite and on PostgreSQL.

use std::time::Duration;

use eventstore::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::{Config, RunningServer};

const TOKEN: &str = "test-admin-token-0123456789abcdef";

fn config(h: &Harness) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.initial_token = Some(TOKEN.into());
    config.projections.poll_interval_ms = 100;
    config.database.url = h.postgres_url();
    config.database.data_dir = h.data_dir().join("data");
    config
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(server: &RunningServer) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.local_addr),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, Some(TOKEN), None)
            .await
    }
}

eventstore::on_both_backends!(
    health_and_readiness,
    features_can_be_set_and_reset,
    admin_api_requires_a_valid_token,
    bad_requests_name_what_is_wrong,
    system_feature_comes_from_config,
    state_survives_a_restart,
);

async fn health_and_readiness(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    assert_eq!(
        client
            .send(reqwest::Method::GET, "/healthz", None, None)
            .await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        client
            .send(reqwest::Method::GET, "/readyz", None, None)
            .await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
    server.stop().await.unwrap();
}

/// What discovery says of back-channel logout: both flags, or neither.
async fn backchannel_published(client: &Client) -> bool {
    let (status, discovery) = client
        .send(
            reqwest::Method::GET,
            "/.well-known/openid-configuration",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let supported = discovery.get("backchannel_logout_supported").cloned();
    assert_eq!(
        supported,
        discovery
            .get("backchannel_logout_session_supported")
            .cloned()
    );
    match supported {
        Some(Value::Bool(true)) => true,
        None => false,
        other => panic!("backchannel_logout_supported is {other:?}"),
    }
}

async fn features_can_be_set_and_reset(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    assert!(
        backchannel_published(&client).await,
        "a fresh server publishes back-channel logout"
    );
    let (status, list) = client.get("/admin/v1/features").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["features"],
        json!([
            {"name": "back_channel_logout", "system": true, "instance": null, "effective": true},
            {"name": "back_channel_logout_allow_http", "system": true, "instance": null, "effective": true},
            {"name": "end_sessions_on_credential_change", "system": true, "instance": null, "effective": true},
            {"name": "open_registration", "system": false, "instance": null, "effective": false}
        ])
    );

    let (status, set) = client
        .send(
            reqwest::Method::PUT,
            "/admin/v1/features/back_channel_logout",
            Some(TOKEN),
            Some(r#"{"enabled": false}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        set,
        json!({"name": "back_channel_logout", "system": true, "instance": false, "effective": false})
    );
    // Read-your-writes: the very next read shows it.
    assert_eq!(
        client.get("/admin/v1/features/back_channel_logout").await.1,
        set
    );
    assert!(
        !backchannel_published(&client).await,
        "an instance switched off no longer publishes it"
    );

    let (status, reset) = client
        .send(
            reqwest::Method::DELETE,
            "/admin/v1/features/back_channel_logout",
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reset["effective"],
        json!(true),
        "the system value applies again"
    );
    assert_eq!(reset["instance"], Value::Null);
    assert!(backchannel_published(&client).await);
    server.stop().await.unwrap();
}

async fn admin_api_requires_a_valid_token(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    for token in [None, Some("not-a-real-token-but-long-enough")] {
        let response = client
            .http
            .get(format!("{}/admin/v1/features", client.base));
        let response = match token {
            Some(token) => response.bearer_auth(token),
            None => response,
        };
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        match token {
            None => assert_eq!(body["error"], "invalid_request"),
            Some(_) => {
                assert_eq!(body["error"], "invalid_token");
                assert!(
                    challenge.contains(r#"error="invalid_token""#),
                    "{challenge}"
                );
            }
        }
    }
    let basic = client
        .http
        .get(format!("{}/admin/v1/features", client.base))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    server.stop().await.unwrap();
}

async fn bad_requests_name_what_is_wrong(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    let put = |body: &'static str| {
        client.send(
            reqwest::Method::PUT,
            "/admin/v1/features/back_channel_logout",
            Some(TOKEN),
            Some(body),
        )
    };
    for body in [
        "{not json",
        r#"{"enabled": "yes"}"#,
        r#"{"enable": true}"#,
        "{}",
    ] {
        let (status, error) = put(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error["error"], "invalid_request");
        assert_eq!(error["field"], "enabled");
    }
    let (status, error) = client.get("/admin/v1/features/warp_drive").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["error_description"]
            .as_str()
            .unwrap()
            .contains("back_channel_logout")
    );
    assert_eq!(
        client.get("/no/such/endpoint").await.0,
        StatusCode::NOT_FOUND
    );
    // Nothing was changed by the rejected requests.
    assert_eq!(
        client.get("/admin/v1/features/back_channel_logout").await.1["instance"],
        Value::Null
    );
    server.stop().await.unwrap();
}

async fn system_feature_comes_from_config(h: Harness) {
    let mut config = config(&h);
    config.features.back_channel_logout = false;
    let server = RunningServer::start(config).await.unwrap();
    let client = Client::new(&server);
    let (_, feature) = client.get("/admin/v1/features/back_channel_logout").await;
    assert_eq!(
        feature,
        json!({"name": "back_channel_logout", "system": false, "instance": null, "effective": false})
    );
    let (_, on) = client
        .send(
            reqwest::Method::PUT,
            "/admin/v1/features/back_channel_logout",
            Some(TOKEN),
            Some(r#"{"enabled": true}"#),
        )
        .await;
    assert_eq!(on["effective"], json!(true), "the instance value wins");
    server.stop().await.unwrap();
}

async fn state_survives_a_restart(h: Harness) {
    let first = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&first);
    client
        .send(
            reqwest::Method::PUT,
            "/admin/v1/features/back_channel_logout",
            Some(TOKEN),
            Some(r#"{"enabled": false}"#),
        )
        .await;
    let instance = client.get("/admin/v1/features").await.1["instance_id"].clone();
    first.stop().await.unwrap();

    let second = RunningServer::start(config(&h)).await.unwrap();
    assert_eq!(second.generated_admin_token, None);
    let client = Client::new(&second);
    let (_, list) = client.get("/admin/v1/features").await;
    assert_eq!(list["instance_id"], instance);
    assert_eq!(list["features"][0]["instance"], json!(false));
    second.stop().await.unwrap();
}

/// Two replicas on one PostgreSQL database: one default instance between them, and a change
/// made through one is seen by the other (woken by LISTEN/NOTIFY, not a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_postgres_database() {
    let Some(h) = eventstore::testing::postgres().await else {
        return;
    };
    let (a, b) = tokio::join!(
        RunningServer::start(config(&h)),
        RunningServer::start(config(&h))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (client_a, client_b) = (Client::new(&a), Client::new(&b));
    assert_eq!(
        client_a.get("/admin/v1/features").await.1["instance_id"],
        client_b.get("/admin/v1/features").await.1["instance_id"]
    );

    client_a
        .send(
            reqwest::Method::PUT,
            "/admin/v1/features/back_channel_logout",
            Some(TOKEN),
            Some(r#"{"enabled": false}"#),
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, feature) = client_b.get("/admin/v1/features/back_channel_logout").await;
        if feature["effective"] == json!(false) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica b never saw the change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
