//! The admin API over HTTP against the real server on a random port: users, applications,
//! sessions, admin tokens and the OpenAPI document, with their error answers. Every test runs
//! on SQLite and on PostgreSQL.

use std::collections::BTreeSet;
use std::time::Duration;

use eventstore::testing::Harness;
use eventstore::{AggregateRef, EventQuery, Position};
use reqwest::{Method, StatusCode};
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

/// What an answer consists of.
struct Answer {
    status: StatusCode,
    body: Value,
    headers: reqwest::header::HeaderMap,
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

    /// Sends `body` as JSON text exactly as given, so malformed bodies can be tested.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        host: Option<&str>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{path}: the answer is not JSON: {text}"))
        };
        Answer {
            status,
            body,
            headers,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|body| body.to_string());
        self.raw(method, path, Some(TOKEN), body.as_deref(), None)
            .await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }
}

/// Asserts a 400 naming `field`.
#[track_caller]
fn assert_invalid(answer: &Answer, field: &str) {
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{}",
        answer.body
    );
    assert_eq!(answer.body["field"], field, "{}", answer.body);
    assert!(
        !answer.body["error_description"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
}

#[track_caller]
fn assert_not_found(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    assert_eq!(answer.body["error"], "not_found");
}

/// How many events the admin API's aggregates hold. (Signing keys are left out: the server
/// creates them in the background after startup.)
async fn event_count(server: &RunningServer) -> usize {
    server
        .domain()
        .store()
        .events(&EventQuery {
            instance_id: None,
            after: Position::START,
            aggregate_types: [
                "user",
                "username",
                "application",
                "session",
                "admin_token",
                "instance",
            ]
            .map(String::from)
            .to_vec(),
            event_types: vec![],
            limit: 100_000,
        })
        .await
        .unwrap()
        .len()
}

fn alice() -> Value {
    json!({
        "username": "alice",
        "password": "correct horse battery",
        "email": "alice@example.com",
        "given_name": "Alice",
    })
}

fn web_app() -> Value {
    json!({
        "name": "Web app",
        "redirect_uris": ["https://app.example.com/callback"],
        "post_logout_redirect_uris": ["https://app.example.com/"],
        "id_token_signing_alg": "ES256",
        "back_channel_logout_uri": "https://app.example.com/logout",
        "back_channel_logout_session_required": true,
    })
}

eventstore::on_both_backends!(
    users_are_created_read_changed_and_removed,
    user_requests_name_the_field_at_fault,
    applications_show_their_secret_once,
    application_requests_name_the_field_at_fault,
    sessions_are_listed_and_ended_with_the_request_origin,
    deactivating_or_removing_a_user_ends_their_sessions,
    admin_tokens_are_issued_listed_and_revoked,
    every_documented_route_requires_a_valid_token,
    openapi_document_describes_the_api,
    failed_requests_write_nothing,
    the_system_api_is_off_without_a_system_token,
);

/// Without `admin.system_token` no token can open the system API: it answers 404 saying how to
/// turn it on (a 401 challenge would invite a token that cannot work), and the admin token
/// does not open it either.
async fn the_system_api_is_off_without_a_system_token(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    for (method, path) in [
        (Method::GET, "/system/v1/instances"),
        (Method::POST, "/system/v1/instances"),
        (Method::GET, "/system/v1/instances/some-id"),
        (Method::DELETE, "/system/v1/instances/some-id"),
    ] {
        let body = (method == Method::POST).then_some("{}");
        let answer = client.raw(method, path, Some(TOKEN), body, None).await;
        assert_not_found(&answer);
        assert!(
            answer.body["error_description"]
                .as_str()
                .unwrap()
                .contains("admin.system_token"),
            "{}",
            answer.body
        );
    }
    server.stop().await.unwrap();
}

async fn users_are_created_read_changed_and_removed(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    let domain = server.domain();

    let created = client.post("/admin/v1/users", alice()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let user_id = created.body["user_id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"],
        format!("/admin/v1/users/{user_id}").as_str()
    );
    assert_eq!(created.body["username"], "alice");
    assert_eq!(created.body["state"], "active");
    assert_eq!(created.body["email"], "alice@example.com");
    assert_eq!(created.body["given_name"], "Alice");
    let text = created.body.to_string();
    assert!(
        !text.contains("password") && !text.contains("argon2") && !text.contains("correct horse"),
        "{text}"
    );

    let shown = client.get(&format!("/admin/v1/users/{user_id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body, created.body);

    // Paging by login name.
    for name in ["bob", "carol"] {
        let mut user = alice();
        user["username"] = json!(name);
        user["email"] = Value::Null;
        assert_eq!(
            client.post("/admin/v1/users", user).await.status,
            StatusCode::CREATED
        );
    }
    let first = client.get("/admin/v1/users?limit=2").await;
    let names: Vec<&str> = first.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(first.body["next_after"], "bob");
    let rest = client.get("/admin/v1/users?limit=2&after=bob").await;
    assert_eq!(rest.body["users"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["users"][0]["username"], "carol");
    assert_eq!(rest.body["next_after"], Value::Null);
    assert!(!first.body.to_string().contains("argon2"));

    // The profile is replaced as a whole.
    let changed = client
        .put(
            &format!("/admin/v1/users/{user_id}"),
            json!({"email": "a@example.org", "email_verified": true}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["email"], "a@example.org");
    assert_eq!(changed.body["email_verified"], true);
    assert_eq!(changed.body["given_name"], Value::Null);
    assert_eq!(changed.body["username"], "alice");

    // A new password works for signing in; the old one no longer does.
    let set = client
        .post(
            &format!("/admin/v1/users/{user_id}/password"),
            json!({"password": "new password 123"}),
        )
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.body);
    let instance = domain.default_instance().await.unwrap().instance_id;
    let check = |password: &str| domain.check_password(&instance, "alice", password.to_owned());
    assert!(check("new password 123").await.unwrap().is_some());
    assert!(check("correct horse battery").await.unwrap().is_none());

    let deactivated = client
        .post(&format!("/admin/v1/users/{user_id}/deactivate"), json!({}))
        .await;
    assert_eq!(deactivated.status, StatusCode::OK);
    assert_eq!(deactivated.body["state"], "inactive");
    assert!(check("new password 123").await.unwrap().is_none());
    let reactivated = client
        .call(
            Method::POST,
            &format!("/admin/v1/users/{user_id}/reactivate"),
            None,
        )
        .await;
    assert_eq!(reactivated.body["state"], "active");
    assert!(check("new password 123").await.unwrap().is_some());

    let removed = client.delete(&format!("/admin/v1/users/{user_id}")).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(removed.body, Value::Null);
    assert_not_found(&client.get(&format!("/admin/v1/users/{user_id}")).await);
    assert_not_found(&client.delete(&format!("/admin/v1/users/{user_id}")).await);
    // The login name is free again.
    assert_eq!(
        client.post("/admin/v1/users", alice()).await.status,
        StatusCode::CREATED
    );
    server.stop().await.unwrap();
}

async fn user_requests_name_the_field_at_fault(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    let post = |body: &'static str| {
        client.raw(
            Method::POST,
            "/admin/v1/users",
            Some(TOKEN),
            Some(body),
            None,
        )
    };
    let cases = [
        ("{\"username\": \"alice\",", "body"),
        ("", "body"),
        ("[1, 2]", "body"),
        (r#"{"username": "alice"}"#, "password"),
        (
            r#"{"username": "alice", "password": "long enough", "emial": "a@b.c"}"#,
            "emial",
        ),
        (r#"{"username": 7, "password": "long enough"}"#, "username"),
        (
            r#"{"username": "has space", "password": "long enough"}"#,
            "username",
        ),
        (r#"{"username": "alice", "password": "short"}"#, "password"),
        (
            r#"{"username": "alice", "password": "long enough", "email": "not-an-address"}"#,
            "email",
        ),
        (
            r#"{"username": "alice", "password": "long enough", "email_verified": "yes"}"#,
            "email_verified",
        ),
    ];
    for (body, field) in cases {
        let answer = post(body).await;
        assert_invalid(&answer, field);
    }
    let form = client
        .http
        .post(format!("{}/admin/v1/users", client.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::BAD_REQUEST);
    assert_eq!(form.json::<Value>().await.unwrap()["field"], "Content-Type");

    assert_eq!(
        client.post("/admin/v1/users", alice()).await.status,
        StatusCode::CREATED
    );
    let mut shouting = alice();
    shouting["username"] = json!("ALICE");
    assert_invalid(&client.post("/admin/v1/users", shouting).await, "username");

    let user_id = client.get("/admin/v1/users").await.body["users"][0]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_path = format!("/admin/v1/users/{user_id}");
    assert_invalid(
        &client.put(&user_path, json!({"username": "renamed"})).await,
        "username",
    );
    assert_invalid(
        &client
            .put(&user_path, json!({"given_name": "x\u{7}"}))
            .await,
        "given_name",
    );
    assert_invalid(
        &client
            .post(
                &format!("/admin/v1/users/{user_id}/password"),
                json!({"password": "short"}),
            )
            .await,
        "password",
    );
    assert_invalid(&client.get("/admin/v1/users?limit=0").await, "limit");
    assert_invalid(&client.get("/admin/v1/users?limit=501").await, "limit");
    assert_invalid(&client.get("/admin/v1/users?page=2").await, "page");

    for answer in [
        client.get("/admin/v1/users/no-such-user").await,
        client.put("/admin/v1/users/no-such-user", json!({})).await,
        client
            .post(
                "/admin/v1/users/no-such-user/password",
                json!({"password": "long enough"}),
            )
            .await,
        client
            .post("/admin/v1/users/no-such-user/deactivate", json!({}))
            .await,
        client
            .post("/admin/v1/users/no-such-user/reactivate", json!({}))
            .await,
        client.delete("/admin/v1/users/no-such-user").await,
    ] {
        assert_not_found(&answer);
    }
    server.stop().await.unwrap();
}

async fn applications_show_their_secret_once(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;

    let created = client.post("/admin/v1/applications", web_app()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let client_id = created.body["client_id"].as_str().unwrap().to_owned();
    let secret = created.body["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"],
        format!("/admin/v1/applications/{client_id}").as_str()
    );
    // Defaults filled in, given settings kept.
    assert_eq!(created.body["client_type"], "confidential");
    assert_eq!(created.body["auth_method"], "client_secret_basic");
    assert_eq!(
        created.body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(created.body["id_token_signing_alg"], "ES256");
    assert_eq!(created.body["access_token_lifetime_secs"], 3600);
    assert_eq!(created.body["back_channel_logout_session_required"], true);
    assert_eq!(created.body["has_client_secret"], true);
    assert!(
        domain
            .authenticate_client(&instance, &client_id, &secret)
            .await
            .unwrap()
            .is_some()
    );

    let hash = domain::application::hash_client_secret(&secret);
    let shown = client
        .get(&format!("/admin/v1/applications/{client_id}"))
        .await;
    let listed = client.get("/admin/v1/applications").await;
    assert_eq!(
        listed.body["applications"][0]["client_id"],
        client_id.as_str()
    );
    for answer in [&shown, &listed] {
        assert_eq!(answer.status, StatusCode::OK);
        let text = answer.body.to_string();
        assert!(!text.contains(&secret) && !text.contains(&hash), "{text}");
    }
    assert!(shown.body.get("client_secret").is_none());
    assert!(
        listed.body["applications"][0]
            .get("client_secret")
            .is_none()
    );
    assert_eq!(shown.body["has_client_secret"], true);

    // A new secret is shown once and replaces the old one.
    let renewed = client
        .call(
            Method::POST,
            &format!("/admin/v1/applications/{client_id}/secret"),
            None,
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    let new_secret = renewed.body["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let authenticates = |secret: String| {
        let (domain, instance, client_id) = (domain.clone(), instance.clone(), client_id.clone());
        async move {
            domain
                .authenticate_client(&instance, &client_id, &secret)
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(authenticates(new_secret.to_owned()).await);
    assert!(!authenticates(secret.clone()).await);

    // PUT replaces the settings; omitted ones return to their defaults.
    let replaced = client
        .call(
            Method::PUT,
            &format!("/admin/v1/applications/{client_id}"),
            Some(json!({
                "name": "Renamed",
                "redirect_uris": ["https://app.example.com/cb2"],
                "auth_method": "client_secret_post",
                "id_token_signing_alg": "EdDSA",
            })),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["name"], "Renamed");
    assert_eq!(replaced.body["auth_method"], "client_secret_post");
    assert_eq!(replaced.body["id_token_signing_alg"], "EdDSA");
    assert_eq!(replaced.body["back_channel_logout_uri"], Value::Null);
    assert!(replaced.body.get("client_secret").is_none());
    assert!(authenticates(new_secret.to_owned()).await);

    // A public client has no secret to show or renew.
    let spa = client
        .post(
            "/admin/v1/applications",
            json!({"name": "SPA", "client_type": "public", "redirect_uris": ["http://localhost:3000/cb"]}),
        )
        .await;
    assert_eq!(spa.status, StatusCode::CREATED, "{}", spa.body);
    assert_eq!(spa.body["client_secret"], Value::Null);
    assert_eq!(spa.body["auth_method"], "none");
    assert_eq!(spa.body["has_client_secret"], false);
    let spa_id = spa.body["client_id"].as_str().unwrap();
    assert_invalid(
        &client
            .call(
                Method::POST,
                &format!("/admin/v1/applications/{spa_id}/secret"),
                None,
            )
            .await,
        "client_type",
    );

    let page = client.get("/admin/v1/applications?limit=1").await;
    assert_eq!(page.body["applications"].as_array().unwrap().len(), 1);
    let after = page.body["next_after"].as_str().unwrap();
    let next = client
        .get(&format!("/admin/v1/applications?limit=1&after={after}"))
        .await;
    assert_eq!(next.body["applications"].as_array().unwrap().len(), 1);
    assert_ne!(
        next.body["applications"][0]["client_id"],
        page.body["applications"][0]["client_id"]
    );

    let removed = client
        .delete(&format!("/admin/v1/applications/{client_id}"))
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_not_found(
        &client
            .get(&format!("/admin/v1/applications/{client_id}"))
            .await,
    );
    assert!(!authenticates(new_secret.to_owned()).await);
    server.stop().await.unwrap();
}

async fn application_requests_name_the_field_at_fault(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    let with = |key: &str, value: Value| {
        let mut app = web_app();
        app[key] = value;
        app
    };
    let cases = [
        (json!({"redirect_uris": []}), "name"),
        (with("name", json!(" ")), "name"),
        (with("nmae", json!("x")), "nmae"),
        (with("client_type", json!("secret")), "client_type"),
        (with("auth_method", json!("none")), "auth_method"),
        (
            with("id_token_signing_alg", json!("HS256")),
            "id_token_signing_alg",
        ),
        (with("redirect_uris", json!([])), "redirect_uris"),
        (
            with("redirect_uris", json!(["https://app.example.com/cb#frag"])),
            "redirect_uris",
        ),
        (with("redirect_uris", json!(["ok", 5])), "redirect_uris[1]"),
        (
            with("post_logout_redirect_uris", json!(["ftp://x"])),
            "post_logout_redirect_uris",
        ),
        (with("grant_types", json!([])), "grant_types"),
        (with("grant_types", json!(["implicit"])), "grant_types[0]"),
        (
            with("access_token_lifetime_secs", json!(0)),
            "access_token_lifetime_secs",
        ),
        (
            with("refresh_token_lifetime_secs", json!(-1)),
            "refresh_token_lifetime_secs",
        ),
        (
            with("back_channel_logout_uri", json!("not a uri")),
            "back_channel_logout_uri",
        ),
    ];
    for (body, field) in cases {
        assert_invalid(&client.post("/admin/v1/applications", body).await, field);
    }

    let created = client.post("/admin/v1/applications", web_app()).await;
    let client_id = created.body["client_id"].as_str().unwrap();
    let public =
        json!({"name": "x", "client_type": "public", "redirect_uris": ["http://localhost/cb"]});
    assert_invalid(
        &client
            .put(&format!("/admin/v1/applications/{client_id}"), public)
            .await,
        "client_type",
    );
    for answer in [
        client.get("/admin/v1/applications/nope").await,
        client.put("/admin/v1/applications/nope", web_app()).await,
        client.delete("/admin/v1/applications/nope").await,
        client
            .call(Method::POST, "/admin/v1/applications/nope/secret", None)
            .await,
    ] {
        assert_not_found(&answer);
    }
    server.stop().await.unwrap();
}

/// Creates a user and `count` live sessions for it; returns the user id and session ids.
async fn user_with_sessions(
    server: &RunningServer,
    client: &Client,
    name: &str,
    count: usize,
) -> (String, Vec<String>) {
    let mut user = alice();
    user["username"] = json!(name);
    user["email"] = Value::Null;
    let user_id = client.post("/admin/v1/users", user).await.body["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;
    let mut sessions = Vec::new();
    for _ in 0..count {
        let (session, _cookie) = domain
            .create_session(
                &instance,
                &user_id,
                Duration::from_secs(3600),
                Some("test-agent".into()),
            )
            .await
            .unwrap();
        sessions.push(session.session_id);
    }
    (user_id, sessions)
}

/// The `session.terminated` payload of a session.
async fn termination(server: &RunningServer, session_id: &str) -> Value {
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;
    let events = domain
        .store()
        .aggregate_events(&AggregateRef::new(&instance, "session", session_id))
        .await
        .unwrap();
    let ended = events
        .iter()
        .find(|event| event.event_type == "session.terminated")
        .unwrap_or_else(|| panic!("session {session_id} did not end"));
    serde_json::from_str(&ended.payload).unwrap()
}

async fn sessions_are_listed_and_ended_with_the_request_origin(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    let (user_id, sessions) = user_with_sessions(&server, &client, "dave", 3).await;
    let path = format!("/admin/v1/users/{user_id}/sessions");

    let listed = client.get(&path).await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed_ids: Vec<&str> = listed.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| session["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed_ids, sessions);
    assert_eq!(listed.body["sessions"][0]["user_agent"], "test-agent");
    assert_eq!(listed.body["sessions"][0]["terminated"], false);
    assert!(!listed.body.to_string().contains("cookie"));

    // Ending one session records the instance's issuer as the origin, also when the request
    // came in on a host that is not the instance's own: logout tokens must stay verifiable.
    let ended = client
        .raw(
            Method::DELETE,
            &format!("/admin/v1/sessions/{}", sessions[0]),
            Some(TOKEN),
            None,
            Some("id.example.com:8443"),
        )
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.body);
    assert_eq!(
        termination(&server, &sessions[0]).await,
        json!({"reason": "admin", "triggered_at_origin": server.external_url})
    );
    // Again: nothing to end, still fine.
    assert_eq!(
        client
            .delete(&format!("/admin/v1/sessions/{}", sessions[0]))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        client.get(&path).await.body["sessions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let all = client.get(&format!("{path}?include_ended=true")).await;
    assert_eq!(all.body["sessions"].as_array().unwrap().len(), 3);
    assert_eq!(all.body["sessions"][0]["terminated"], true);

    // Signing the user out ends the rest.
    let signed_out = client.delete(&path).await;
    assert_eq!(signed_out.status, StatusCode::OK);
    assert_eq!(signed_out.body, json!({"terminated": 2}));
    assert!(
        client.get(&path).await.body["sessions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let origin = server.external_url.clone();
    for session in &sessions[1..] {
        assert_eq!(
            termination(&server, session).await,
            json!({"reason": "admin", "triggered_at_origin": origin})
        );
    }
    assert_eq!(client.delete(&path).await.body, json!({"terminated": 0}));

    assert_invalid(
        &client.get(&format!("{path}?include_ended=maybe")).await,
        "include_ended",
    );
    assert_not_found(&client.delete("/admin/v1/sessions/no-such-session").await);
    assert_not_found(&client.get("/admin/v1/users/nobody/sessions").await);
    assert_not_found(&client.delete("/admin/v1/users/nobody/sessions").await);
    server.stop().await.unwrap();
}

async fn deactivating_or_removing_a_user_ends_their_sessions(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);

    let (erin, erin_sessions) = user_with_sessions(&server, &client, "erin", 2).await;
    let deactivated = client
        .post(&format!("/admin/v1/users/{erin}/deactivate"), json!({}))
        .await;
    assert_eq!(deactivated.status, StatusCode::OK);
    let live = client
        .get(&format!("/admin/v1/users/{erin}/sessions"))
        .await;
    assert!(
        live.body["sessions"].as_array().unwrap().is_empty(),
        "{}",
        live.body
    );
    for session in &erin_sessions {
        assert_eq!(
            termination(&server, session).await["reason"],
            "user_deactivated"
        );
    }

    let (frank, frank_sessions) = user_with_sessions(&server, &client, "frank", 1).await;
    assert_eq!(
        client
            .delete(&format!("/admin/v1/users/{frank}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        termination(&server, &frank_sessions[0]).await,
        json!({"reason": "user_removed", "triggered_at_origin": server.external_url})
    );

    // A new password signs out whoever held the old one.
    let (grace, grace_sessions) = user_with_sessions(&server, &client, "grace", 2).await;
    let set = client
        .post(
            &format!("/admin/v1/users/{grace}/password"),
            json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT);
    for session in &grace_sessions {
        assert_eq!(
            termination(&server, session).await,
            json!({"reason": "credential_changed", "triggered_at_origin": server.external_url})
        );
    }
    server.stop().await.unwrap();
}

async fn admin_tokens_are_issued_listed_and_revoked(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);

    let created = client
        .post(
            "/admin/v1/admin-tokens",
            json!({"description": "deploy pipeline"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let token_id = created.body["token_id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["description"], "deploy pipeline");
    assert_eq!(created.body["revoked"], false);

    // The new token works at once.
    let with_new = client
        .raw(
            Method::GET,
            "/admin/v1/admin-tokens",
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(with_new.status, StatusCode::OK);
    let listed = with_new.body["admin_tokens"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["description"], "initial admin token");
    assert_eq!(listed[1]["token_id"], token_id.as_str());
    let text = with_new.body.to_string();
    let hash = domain::admin_token::hash_token(&token);
    assert!(
        !text.contains(&token) && !text.contains(&hash) && !text.contains(TOKEN),
        "{text}"
    );

    // The initial token cannot revoke itself; the new one can revoke it, and vice versa.
    let initial_id = listed[0]["token_id"].as_str().unwrap().to_owned();
    assert_invalid(
        &client
            .delete(&format!("/admin/v1/admin-tokens/{initial_id}"))
            .await,
        "token_id",
    );
    let revoked = client
        .delete(&format!("/admin/v1/admin-tokens/{token_id}"))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let rejected = client
        .raw(Method::GET, "/admin/v1/users", Some(&token), None, None)
        .await;
    assert_eq!(rejected.status, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected.body["error"], "invalid_token");
    // Revoking again succeeds.
    assert_eq!(
        client
            .delete(&format!("/admin/v1/admin-tokens/{token_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let live = client.get("/admin/v1/admin-tokens").await;
    assert_eq!(live.body["admin_tokens"].as_array().unwrap().len(), 1);
    let all = client
        .get("/admin/v1/admin-tokens?include_revoked=true")
        .await;
    assert_eq!(all.body["admin_tokens"][1]["revoked"], true);

    assert_invalid(
        &client
            .post("/admin/v1/admin-tokens", json!({"description": ""}))
            .await,
        "description",
    );
    assert_invalid(
        &client
            .post(
                "/admin/v1/admin-tokens",
                json!({"description": "x", "scope": "all"}),
            )
            .await,
        "scope",
    );
    assert_invalid(
        &client.post("/admin/v1/admin-tokens", json!({})).await,
        "description",
    );
    assert_not_found(&client.delete("/admin/v1/admin-tokens/nope").await);
    server.stop().await.unwrap();
}

/// Each operation of the OpenAPI document, with its path parameters filled in.
fn documented_operations(document: &Value) -> Vec<(Method, String)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let path = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "some-id"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            operations.push((method, path));
        }
    }
    operations
}

async fn every_documented_route_requires_a_valid_token(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    let document = client
        .raw(Method::GET, "/admin/v1/openapi.json", None, None, None)
        .await
        .body;
    let operations = documented_operations(&document);
    assert_eq!(operations.len(), 39, "{operations:?}");
    let before = event_count(&server).await;
    for (method, path) in operations {
        let body = matches!(method, Method::POST | Method::PUT).then_some("{}");
        let missing = client.raw(method.clone(), &path, None, body, None).await;
        assert_eq!(
            (missing.status, missing.body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_request")),
            "{method} {path} without a token"
        );
        assert!(missing.headers.contains_key("www-authenticate"));
        let wrong = client
            .raw(
                method.clone(),
                &path,
                Some("pcat_not-a-token-but-long-enough"),
                body,
                None,
            )
            .await;
        assert_eq!(
            (wrong.status, wrong.body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token")),
            "{method} {path} with a wrong token"
        );
    }
    assert_eq!(event_count(&server).await, before, "nothing was written");
    server.stop().await.unwrap();
}

async fn openapi_document_describes_the_api(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    let answer = client
        .raw(Method::GET, "/admin/v1/openapi.json", None, None, None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/json");
    let document = answer.body;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));

    let paths: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    let expected: BTreeSet<String> = [
        "GET /admin/v1/users",
        "POST /admin/v1/users",
        "GET /admin/v1/users/{user_id}",
        "PUT /admin/v1/users/{user_id}",
        "DELETE /admin/v1/users/{user_id}",
        "POST /admin/v1/users/{user_id}/password",
        "POST /admin/v1/users/{user_id}/deactivate",
        "POST /admin/v1/users/{user_id}/reactivate",
        "GET /admin/v1/users/{user_id}/sessions",
        "DELETE /admin/v1/users/{user_id}/sessions",
        "DELETE /admin/v1/sessions/{session_id}",
        "GET /admin/v1/applications",
        "POST /admin/v1/applications",
        "GET /admin/v1/applications/{client_id}",
        "PUT /admin/v1/applications/{client_id}",
        "DELETE /admin/v1/applications/{client_id}",
        "POST /admin/v1/applications/{client_id}/secret",
        "GET /admin/v1/applications/{client_id}/back-channel-deliveries",
        "POST /admin/v1/applications/{client_id}/back-channel-deliveries/redeliver",
        "GET /admin/v1/back-channel-deliveries",
        "GET /admin/v1/back-channel-health",
        "GET /admin/v1/applications/{client_id}/back-channel-health",
        "GET /admin/v1/sessions/{session_id}/back-channel-deliveries",
        "GET /admin/v1/sessions/{session_id}/back-channel-deliveries/{client_id}",
        "POST /admin/v1/sessions/{session_id}/back-channel-deliveries/{client_id}/redeliver",
        "POST /admin/v1/sessions/{session_id}/back-channel-deliveries/redeliver",
        "POST /admin/v1/sign-out-everyone",
        "GET /admin/v1/sign-out-everyone",
        "GET /admin/v1/sign-out-everyone/{operation_id}",
        "GET /admin/v1/admin-tokens",
        "POST /admin/v1/admin-tokens",
        "DELETE /admin/v1/admin-tokens/{token_id}",
        "GET /admin/v1/registration-tokens",
        "POST /admin/v1/registration-tokens",
        "DELETE /admin/v1/registration-tokens/{token_id}",
        "GET /admin/v1/features",
        "GET /admin/v1/features/{name}",
        "PUT /admin/v1/features/{name}",
        "DELETE /admin/v1/features/{name}",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paths, expected);

    assert_eq!(
        document["components"]["securitySchemes"]["admin_token"],
        json!({
            "type": "http",
            "scheme": "bearer",
            "description": "An admin token: the initial one from first start, or one issued by POST /admin/v1/admin-tokens"
        })
    );
    assert_eq!(document["security"], json!([{"admin_token": []}]));

    let mut operation_ids = BTreeSet::new();
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id.to_owned()),
                "duplicate operationId {id}"
            );
            assert!(operation["responses"]["401"].is_object(), "{id} lacks 401");
        }
    }

    // Bodies are described, and none of them has a place for a hash.
    let schemas = &document["components"]["schemas"];
    for name in [
        "CreateUser",
        "UserBody",
        "ApplicationSettings",
        "CreatedApplication",
        "SessionBody",
        "CreatedAdminToken",
        "ErrorBody",
        "FeatureBody",
    ] {
        assert!(schemas[name].is_object(), "no schema {name}");
    }
    assert_eq!(schemas["CreateUser"]["additionalProperties"], false);
    assert_eq!(
        schemas["SigningAlgorithm"]["enum"],
        json!(["RS256", "ES256", "EdDSA"])
    );
    for (name, schema) in schemas.as_object().unwrap() {
        for property in schema["properties"].as_object().into_iter().flatten() {
            assert!(!property.0.contains("hash"), "{name}.{}", property.0);
        }
    }
    server.stop().await.unwrap();
}

async fn failed_requests_write_nothing(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
    let client = Client::new(&server);
    let created = client.post("/admin/v1/users", alice()).await;
    let user_id = created.body["user_id"].as_str().unwrap().to_owned();
    let app = client.post("/admin/v1/applications", web_app()).await;
    let client_id = app.body["client_id"].as_str().unwrap().to_owned();
    let before = event_count(&server).await;

    let mut bad_user = alice();
    bad_user["email"] = json!("nope");
    let mut duplicate = alice();
    duplicate["email"] = Value::Null;
    let mut bad_app = web_app();
    bad_app["redirect_uris"] = json!(["https://x.example/cb#f"]);
    let failures = [
        client.post("/admin/v1/users", bad_user).await,
        client.post("/admin/v1/users", duplicate).await,
        client
            .put(
                &format!("/admin/v1/users/{user_id}"),
                json!({"email": "still not an address"}),
            )
            .await,
        client
            .post(
                &format!("/admin/v1/users/{user_id}/password"),
                json!({"password": "short"}),
            )
            .await,
        client.post("/admin/v1/applications", bad_app.clone()).await,
        client
            .put(&format!("/admin/v1/applications/{client_id}"), bad_app)
            .await,
        client
            .post("/admin/v1/admin-tokens", json!({"description": "\u{0}"}))
            .await,
        client.delete("/admin/v1/users/nobody").await,
        client.delete("/admin/v1/applications/nothing").await,
        client.delete("/admin/v1/sessions/nothing").await,
    ];
    for answer in &failures {
        assert!(answer.status.is_client_error(), "{}", answer.body);
    }
    assert_eq!(event_count(&server).await, before);
    assert_eq!(
        client.get(&format!("/admin/v1/users/{user_id}")).await.body,
        created.body,
        "the user is unchanged"
    );
    server.stop().await.unwrap();
}
