//! The admin subcommands of the real `portcullis` binary against a server started in the test
//! on port 0; what they did is checked through the HTTP API and the domain.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use eventstore::testing::{Harness, sqlite};
use serde_json::{Value, json};
use server::{Config, RunningServer};

const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");
const TOKEN: &str = "cli-test-admin-token-0123456789abcdef";

async fn start(h: &Harness) -> RunningServer {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.initial_token = Some(TOKEN.into());
    config.projections.poll_interval_ms = 100;
    config.database.data_dir = h.data_dir().join("data");
    RunningServer::start(config).await.unwrap()
}

/// What a run of the binary printed and how it ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The run succeeded; its stdout.
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:?}");
        &self.stdout
    }

    /// The run succeeded; its stdout as JSON.
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|_| panic!("not JSON: {self:?}"))
    }

    /// The run failed with exit code 1 and exactly one `error: …` line; that line.
    #[track_caller]
    fn error(&self) -> &str {
        assert_eq!(self.code, Some(1), "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{self:?}");
        assert!(lines[0].starts_with("error: "), "{self:?}");
        lines[0]
    }
}

/// A run of the binary against `server`, with the token and URL in the environment, as an
/// operator would set them.
struct Cli {
    url: String,
}

impl Cli {
    fn new(server: &RunningServer) -> Self {
        Cli {
            url: format!("http://{}", server.local_addr),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None, &[]).await
    }

    /// Runs on a blocking thread, so the in-process server keeps answering meanwhile.
    async fn run_with(&self, args: &[&str], stdin: Option<&str>, envs: &[(&str, &str)]) -> Run {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .env("PORTCULLIS_URL", &self.url)
            .env("PORTCULLIS_ADMIN_TOKEN", TOKEN)
            .env_remove("PORTCULLIS_USER_PASSWORD")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let stdin = stdin.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().unwrap();
            // Dropping stdin closes it, so a command reading it sees the end.
            let mut input = child.stdin.take().unwrap();
            if let Some(stdin) = stdin {
                input.write_all(stdin.as_bytes()).unwrap();
            }
            drop(input);
            let output = child.wait_with_output().unwrap();
            Run {
                code: output.status.code(),
                stdout: String::from_utf8(output.stdout).unwrap(),
                stderr: String::from_utf8(output.stderr).unwrap(),
            }
        })
        .await
        .unwrap()
    }
}

/// `GET` on the admin API; the status and the JSON body.
async fn api_get(server: &RunningServer, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("http://{}{path}", server.local_addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_and_a_user_made_with_the_cli_are_seen_by_the_api() {
    let h = sqlite().await;
    let server = start(&h).await;
    let cli = Cli::new(&server);
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;

    let created = cli
        .run(&[
            "app",
            "create",
            "--name",
            "Web app",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--redirect-uri",
            "https://app.example.com/cb2",
            "--post-logout-redirect-uri",
            "https://app.example.com/",
            "--alg",
            "ES256",
            "--auth-method",
            "client_secret_post",
            "--access-token-lifetime",
            "600",
            "--back-channel-logout-uri",
            "https://app.example.com/logout",
            "--back-channel-logout-session-required",
            "--json",
        ])
        .await
        .json();
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let (status, app) = api_get(&server, &format!("/admin/v1/applications/{client_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(app["name"], "Web app");
    assert_eq!(
        app["redirect_uris"],
        serde_json::json!(["https://app.example.com/cb", "https://app.example.com/cb2"])
    );
    assert_eq!(
        app["post_logout_redirect_uris"],
        serde_json::json!(["https://app.example.com/"])
    );
    assert_eq!(app["id_token_signing_alg"], "ES256");
    assert_eq!(app["auth_method"], "client_secret_post");
    assert_eq!(app["access_token_lifetime_secs"], 600);
    assert_eq!(
        app["back_channel_logout_uri"],
        "https://app.example.com/logout"
    );
    assert_eq!(app["back_channel_logout_session_required"], true);
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
    assert!(authenticates(secret.clone()).await);

    // Human output: the secret once on creation, never on show.
    let spa = cli
        .run(&[
            "app",
            "create",
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            "http://localhost:3000/cb",
        ])
        .await;
    let spa_out = spa.ok();
    assert!(spa_out.starts_with("Created application SPA."), "{spa_out}");
    assert!(spa_out.contains("auth_method:") && spa_out.contains("none"));
    assert!(
        !spa_out
            .lines()
            .any(|line| line.starts_with("client_secret:")),
        "{spa_out}"
    );
    let other = cli
        .run(&[
            "app",
            "create",
            "--name",
            "Other",
            "--redirect-uri",
            "https://other.example.com/cb",
        ])
        .await;
    let field = |out: &str, label: &str| {
        out.lines()
            .find_map(|line| line.strip_prefix(label))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|| panic!("no {label} in {out}"))
    };
    let (other_id, other_secret) = (
        field(other.ok(), "client_id:"),
        field(&other.stdout, "client_secret:"),
    );
    assert!(
        domain
            .authenticate_client(&instance, &other_id, &other_secret)
            .await
            .unwrap()
            .is_some(),
        "the printed secret works"
    );
    let shown = cli.run(&["app", "show", &client_id]).await;
    assert!(shown.ok().contains("https://app.example.com/cb2"));
    assert!(!shown.stdout.contains(&secret));
    // An update changes what was given and keeps the rest.
    let updated = cli
        .run(&[
            "app",
            "update",
            &client_id,
            "--name",
            "Web app v2",
            "--back-channel-logout-uri",
            "https://app.example.com/bc",
            "--back-channel-logout-session-required",
            "true",
            "--json",
        ])
        .await
        .json();
    assert_eq!(updated["name"], "Web app v2");
    assert_eq!(
        updated["back_channel_logout_uri"],
        "https://app.example.com/bc"
    );
    assert_eq!(updated["back_channel_logout_session_required"], true);
    assert!(
        updated["redirect_uris"]
            .as_array()
            .unwrap()
            .iter()
            .any(|uri| uri == "https://app.example.com/cb2"),
        "kept: {updated}"
    );
    let cleared = cli
        .run(&[
            "app",
            "update",
            &client_id,
            "--no-back-channel-logout",
            "--json",
        ])
        .await
        .json();
    assert_eq!(cleared["back_channel_logout_uri"], Value::Null);
    assert_eq!(cleared["name"], "Web app v2");
    let refused = cli
        .run(&["app", "update", &client_id, "--redirect-uri", "not a uri"])
        .await;
    assert!(refused.error().contains("redirect_uris"), "{refused:?}");
    // A machine client for the client credentials grant: no redirect URI, its scopes.
    let worker = cli
        .run(&[
            "app",
            "create",
            "--name",
            "Worker",
            "--grant-type",
            "client_credentials",
            "--client-credentials-scope",
            "reports:read",
            "--client-credentials-scope",
            "reports:write",
            "--json",
        ])
        .await
        .json();
    assert_eq!(worker["grant_types"], json!(["client_credentials"]));
    assert_eq!(
        worker["client_credentials_scopes"],
        json!(["reports:read", "reports:write"])
    );
    let worker_id = worker["client_id"].as_str().unwrap();
    let narrowed = cli
        .run(&[
            "app",
            "update",
            worker_id,
            "--client-credentials-scope",
            "reports:read",
        ])
        .await;
    assert!(
        narrowed.ok().contains("client_credentials_scopes:"),
        "{narrowed:?}"
    );
    let (_, shown) = api_get(&server, &format!("/admin/v1/applications/{worker_id}")).await;
    assert_eq!(shown["client_credentials_scopes"], json!(["reports:read"]));
    let cleared = cli
        .run(&[
            "app",
            "update",
            worker_id,
            "--no-client-credentials-scopes",
            "--json",
        ])
        .await
        .json();
    assert_eq!(cleared["client_credentials_scopes"], json!([]));
    let public_worker = cli
        .run(&[
            "app",
            "create",
            "--name",
            "Public worker",
            "--public",
            "--grant-type",
            "client_credentials",
        ])
        .await;
    assert!(
        public_worker.error().contains("grant_types"),
        "{public_worker:?}"
    );
    let listed = cli.run(&["app", "list"]).await;
    assert!(listed.ok().starts_with("CLIENT_ID"), "{listed:?}");
    assert!(listed.stdout.contains("Web app v2") && listed.stdout.contains("SPA"));
    assert!(!listed.stdout.contains(&other_secret));

    let renewed = cli
        .run(&["app", "new-secret", &client_id, "--json"])
        .await
        .json();
    let new_secret = renewed["client_secret"].as_str().unwrap().to_owned();
    assert!(authenticates(new_secret).await);
    assert!(!authenticates(secret).await);

    // A user, with the password on stdin (a line end is not part of it).
    let alice = cli
        .run_with(
            &[
                "user",
                "create",
                "--username",
                "alice",
                "--email",
                "alice@example.com",
                "--given-name",
                "Alice",
                "--password-stdin",
            ],
            Some("pass word 1\n"),
            &[],
        )
        .await;
    assert!(alice.ok().starts_with("Created user alice."), "{alice:?}");
    let (_, users) = api_get(&server, "/admin/v1/users").await;
    assert_eq!(users["users"][0]["username"], "alice");
    assert_eq!(users["users"][0]["email"], "alice@example.com");
    assert_eq!(users["users"][0]["given_name"], "Alice");
    let alice_id = users["users"][0]["user_id"].as_str().unwrap().to_owned();
    let signs_in = |login: &'static str, password: &'static str| {
        let (domain, instance) = (domain.clone(), instance.clone());
        async move {
            domain
                .check_password(&instance, login, password.into())
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(signs_in("alice", "pass word 1").await);

    // …or in the environment.
    let bob = cli
        .run_with(
            &["user", "create", "--username", "bob", "--json"],
            None,
            &[("PORTCULLIS_USER_PASSWORD", "bob's password")],
        )
        .await
        .json();
    let bob_id = bob["user_id"].as_str().unwrap().to_owned();
    assert!(signs_in("bob", "bob's password").await);

    let listed = cli.run(&["user", "list"]).await;
    let lines: Vec<&str> = listed.ok().lines().collect();
    assert!(lines[0].starts_with("USER_ID"), "{listed:?}");
    assert!(lines[1].contains(&alice_id) && lines[1].contains("alice@example.com"));
    assert!(lines[2].contains(&bob_id));

    cli.run_with(
        &["user", "set-password", &alice_id, "--password-stdin"],
        Some("another pass\r\n"),
        &[],
    )
    .await
    .ok();
    assert!(signs_in("alice", "another pass").await);

    let deactivated = cli.run(&["user", "deactivate", &alice_id]).await;
    assert!(deactivated.ok().contains("Deactivated user alice"));
    assert_eq!(
        api_get(&server, &format!("/admin/v1/users/{alice_id}"))
            .await
            .1["state"],
        "inactive"
    );
    assert!(
        cli.run(&["user", "show", &alice_id])
            .await
            .ok()
            .contains("inactive")
    );
    cli.run(&["user", "reactivate", &alice_id]).await.ok();
    assert!(signs_in("alice", "another pass").await);

    cli.run(&["user", "delete", &bob_id]).await.ok();
    assert_eq!(
        api_get(&server, &format!("/admin/v1/users/{bob_id}"))
            .await
            .0,
        404
    );
    cli.run(&["app", "delete", &client_id]).await.ok();
    assert_eq!(
        api_get(&server, &format!("/admin/v1/applications/{client_id}"))
            .await
            .0,
        404
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_tokens_are_managed_with_the_cli() {
    let h = sqlite().await;
    let server = start(&h).await;
    let cli = Cli::new(&server);
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;

    let carol = cli
        .run_with(
            &["user", "create", "--username", "carol", "--json"],
            None,
            &[("PORTCULLIS_USER_PASSWORD", "carol's password")],
        )
        .await
        .json();
    let carol_id = carol["user_id"].as_str().unwrap().to_owned();
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let (session, _) = domain
            .create_session(&instance, &carol_id, Duration::from_secs(3600), None)
            .await
            .unwrap();
        sessions.push(session.session_id);
    }

    let listed = cli.run(&["session", "list", &carol_id]).await;
    assert!(listed.ok().contains(&sessions[0]) && listed.stdout.contains(&sessions[1]));
    let ended = cli.run(&["session", "terminate", &sessions[0]]).await;
    assert_eq!(ended.ok(), format!("Ended session {}.\n", sessions[0]));
    let all = cli
        .run(&["session", "list", &carol_id, "--include-ended", "--json"])
        .await
        .json();
    let terminated: Vec<bool> = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| session["terminated"].as_bool().unwrap())
        .collect();
    assert_eq!(terminated, [true, false]);
    let signed_out = cli
        .run(&["session", "terminate", "--user", &carol_id])
        .await;
    assert_eq!(
        signed_out.ok(),
        format!("Ended 1 session(s) of user {carol_id}.\n")
    );
    assert!(
        domain
            .sessions_of_user(&instance, &carol_id, false)
            .await
            .unwrap()
            .is_empty()
    );

    let issued = cli
        .run(&["token", "create", "--description", "ci bot", "--json"])
        .await
        .json();
    let token = issued["token"].as_str().unwrap().to_owned();
    let token_id = issued["token_id"].as_str().unwrap().to_owned();
    let listed = cli.run(&["token", "list"]).await;
    assert!(listed.ok().contains("ci bot") && listed.stdout.contains(&token_id));
    assert!(!listed.stdout.contains(&token));
    // The new token works, via --token (which wins over the environment).
    let with_new = cli
        .run(&["--token", &token, "user", "list", "--json"])
        .await;
    assert_eq!(with_new.json()["users"][0]["username"], "carol");
    // It cannot revoke itself, but the initial token can revoke it.
    let own = cli
        .run(&["token", "revoke", &token_id, "--token", &token])
        .await;
    assert_eq!(
        own.error(),
        "error: a token cannot revoke itself; revoke it with another admin token (field `token_id`)"
    );
    cli.run(&["token", "revoke", &token_id]).await.ok();
    let revoked = cli.run(&["--token", &token, "user", "list"]).await;
    assert_eq!(
        revoked.error(),
        "error: the admin token is unknown or revoked"
    );
    let all = cli
        .run(&["token", "list", "--include-revoked", "--json"])
        .await
        .json();
    assert_eq!(all["admin_tokens"][1]["revoked"], true);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_is_signed_out_and_deliveries_are_seen_with_the_cli() {
    let h = sqlite().await;
    let server = start(&h).await;
    let cli = Cli::new(&server);
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;
    let dave = cli
        .run_with(
            &["user", "create", "--username", "dave", "--json"],
            None,
            &[("PORTCULLIS_USER_PASSWORD", "dave's password")],
        )
        .await
        .json();
    let dave_id = dave["user_id"].as_str().unwrap().to_owned();
    for _ in 0..30 {
        domain
            .create_session(&instance, &dave_id, Duration::from_secs(3600), None)
            .await
            .unwrap();
    }

    // Followed until done: every session ended.
    let done = cli.run(&["sign-out-everyone", "--json"]).await.json();
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["sessions_ended"], 30);
    assert_eq!(done["sessions_total"], 30);
    assert!(
        domain
            .sessions_of_user(&instance, &dave_id, false)
            .await
            .unwrap()
            .is_empty()
    );
    // For a person: the outcome as fields.
    let again = cli.run(&["sign-out-everyone"]).await;
    assert!(again.ok().contains("0 of 0 ended"), "{again:?}");
    let (status, listed) = api_get(&server, "/admin/v1/sign-out-everyone").await;
    assert_eq!(status, 200);
    assert_eq!(listed["operations"].as_array().unwrap().len(), 2);
    // Past operations, without starting one: listed, and one shown.
    let operations = cli
        .run(&["sign-out-everyone", "--list", "--json"])
        .await
        .json();
    assert_eq!(operations, listed);
    let first = done["operation_id"].as_str().unwrap();
    let shown = cli
        .run(&["sign-out-everyone", "--show", first, "--json"])
        .await
        .json();
    assert_eq!(shown["sessions_ended"], 30, "{shown}");
    let table = cli.run(&["sign-out-everyone", "--list"]).await;
    assert!(table.ok().contains(first), "{table:?}");
    assert_eq!(
        api_get(&server, "/admin/v1/sign-out-everyone").await.1["operations"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "--list and --show start nothing"
    );

    // A profile changed field by field; the rest stays.
    let updated = cli
        .run(&[
            "user",
            "update",
            &dave_id,
            "--email",
            "dave@example.com",
            "--given-name",
            "Dave",
            "--json",
        ])
        .await
        .json();
    assert_eq!(updated["email"], "dave@example.com", "{updated}");
    assert_eq!(updated["given_name"], "Dave");
    let updated = cli
        .run(&["user", "update", &dave_id, "--family-name", "Doe", "--json"])
        .await
        .json();
    assert_eq!(
        (
            &updated["email"],
            &updated["given_name"],
            &updated["family_name"]
        ),
        (
            &serde_json::json!("dave@example.com"),
            &serde_json::json!("Dave"),
            &serde_json::json!("Doe")
        )
    );
    let cleared = cli
        .run(&["user", "update", &dave_id, "--no-email", "--json"])
        .await
        .json();
    assert_eq!(cleared["email"], serde_json::Value::Null, "{cleared}");
    assert_eq!(cleared["given_name"], "Dave");

    let deliveries = cli
        .run(&["delivery", "list", "--state", "failed", "--json"])
        .await
        .json();
    assert_eq!(deliveries["deliveries"], serde_json::json!([]));
    let by_alias = cli
        .run(&["deliveries", "list", "--state", "failed", "--json"])
        .await
        .json();
    assert_eq!(by_alias, deliveries);
    let unknown = cli
        .run(&[
            "delivery",
            "redeliver",
            "--session",
            "nope",
            "--app",
            "nobody",
        ])
        .await;
    assert!(
        unknown.error().contains("no back-channel delivery"),
        "{unknown:?}"
    );
    // Feature flags: set, seen in force, reset to the system value.
    let set = cli
        .run(&[
            "features",
            "set",
            "end_sessions_on_credential_change",
            "off",
            "--json",
        ])
        .await
        .json();
    assert_eq!(set["effective"], false, "{set}");
    let shown = cli
        .run(&[
            "features",
            "show",
            "end_sessions_on_credential_change",
            "--json",
        ])
        .await
        .json();
    assert_eq!(shown, set);
    let listed = cli.run(&["features", "list"]).await;
    let line = listed
        .ok()
        .lines()
        .find(|line| line.starts_with("end_sessions_on_credential_change"))
        .unwrap()
        .to_owned();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["end_sessions_on_credential_change", "off", "on", "off"]
    );
    let reset = cli
        .run(&[
            "features",
            "reset",
            "end_sessions_on_credential_change",
            "--json",
        ])
        .await
        .json();
    assert_eq!(reset["instance"], serde_json::Value::Null);
    assert_eq!(reset["effective"], true);
    let unknown = cli.run(&["features", "set", "warp_drive", "on"]).await;
    assert!(unknown.error().contains("known features"), "{unknown:?}");
    let bad_state = cli.run(&["delivery", "list", "--state", "lost"]).await;
    assert!(bad_state.error().contains("unknown state"), "{bad_state:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_print_one_line_and_exit_non_zero() {
    let h = sqlite().await;
    let server = start(&h).await;
    let cli = Cli::new(&server);
    let password = [("PORTCULLIS_USER_PASSWORD", "long enough")];
    cli.run_with(&["user", "create", "--username", "dana"], None, &password)
        .await
        .ok();

    let cases: Vec<(Run, &str)> = vec![
        (
            cli.run_with(&["user", "create", "--username", "DANA"], None, &password)
                .await,
            "error: this login name is already taken (field `username`)",
        ),
        (
            cli.run_with(
                &["user", "create", "--username", "erin"],
                None,
                &[("PORTCULLIS_USER_PASSWORD", "short")],
            )
            .await,
            "error: the password needs at least 8 characters (field `password`)",
        ),
        (
            // No password anywhere: fails at once rather than waiting for a terminal.
            cli.run(&["user", "create", "--username", "erin"]).await,
            "error: give the password on stdin with --password-stdin, or in PORTCULLIS_USER_PASSWORD",
        ),
        (
            cli.run(&[
                "app",
                "create",
                "--name",
                "x",
                "--redirect-uri",
                "https://x.example/cb#f",
            ])
            .await,
            "error: \"https://x.example/cb#f\" must not have a fragment (field `redirect_uris`)",
        ),
        (
            cli.run(&["user", "show", "nobody"]).await,
            "error: user nobody not found",
        ),
        (
            cli.run(&["app", "new-secret", "nothing"]).await,
            "error: application not found",
        ),
        (
            cli.run_with(&["user", "list"], None, &[("PORTCULLIS_ADMIN_TOKEN", "")])
                .await,
            "error: no admin token: pass --token or set PORTCULLIS_ADMIN_TOKEN",
        ),
        (
            cli.run(&[
                "user",
                "list",
                "--token",
                "pcat_wrong-but-long-enough-token",
            ])
            .await,
            "error: the admin token is unknown or revoked",
        ),
        (
            cli.run(&["user", "list", "--limit", "0"]).await,
            "error: expected a whole number from 1 to 500, got \"0\" (field `limit`)",
        ),
    ];
    for (run, expected) in &cases {
        assert_eq!(run.error(), *expected);
    }
    let unreachable = cli
        .run(&["--url", "http://127.0.0.1:1", "user", "list"])
        .await;
    assert!(
        unreachable
            .error()
            .starts_with("error: cannot reach the server at http://127.0.0.1:1/"),
        "{unreachable:?}"
    );
    // Nothing was created by the failures.
    let (_, users) = api_get(&server, "/admin/v1/users").await;
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
    let (_, apps) = api_get(&server, "/admin/v1/applications").await;
    assert!(apps["applications"].as_array().unwrap().is_empty());
    server.stop().await.unwrap();
}

/// `delivery health` shows each application's deliveries: zeros before any, then a delivery
/// refused at send time (its URI is on a network not allowed) as a failure, the run of
/// failures and the reason; an unknown application is one error line.
#[tokio::test]
async fn delivery_health_is_shown_with_the_cli() {
    let h = sqlite().await;
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.initial_token = Some(TOKEN.into());
    config.database.data_dir = h.data_dir().join("data");
    // Loopback is no longer allowed: the delivery fails at once, without a receiver.
    config.back_channel.allowed_networks = Some(vec!["10.99.0.0/16".into()]);
    let server = RunningServer::start(config).await.unwrap();
    let cli = Cli::new(&server);
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;
    let callback = "https://app.example.com/cb";
    let created = cli
        .run(&[
            "app",
            "create",
            "--name",
            "Web app",
            "--redirect-uri",
            callback,
            "--back-channel-logout-uri",
            "http://127.0.0.1:9/logout",
            "--json",
        ])
        .await
        .json();
    let client_id = created["client_id"].as_str().unwrap().to_owned();

    let before = cli.run(&["delivery", "health"]).await;
    let row = before
        .ok()
        .lines()
        .find(|line| line.starts_with(&client_id))
        .unwrap_or_else(|| panic!("{before:?}"))
        .to_owned();
    let columns: Vec<&str> = row.split_whitespace().collect();
    // CLIENT_ID, the name (two words), then the hour's and the day's counts.
    assert_eq!(columns[3..9], ["0"; 6], "{row}");

    // Dave signs in to the application and an admin ends the session.
    let dave = cli
        .run_with(
            &["user", "create", "--username", "dave", "--json"],
            None,
            &[("PORTCULLIS_USER_PASSWORD", "dave's password")],
        )
        .await
        .json();
    let dave_id = dave["user_id"].as_str().unwrap();
    let (session, _) = domain
        .create_session(&instance, dave_id, Duration::from_secs(3600), None)
        .await
        .unwrap();
    let app = domain.application(&instance, &client_id).await.unwrap();
    let code = domain
        .issue_code(
            &instance,
            domain::CodeRequest {
                session_id: session.session_id.clone(),
                client_id: client_id.clone(),
                user_id: dave_id.to_owned(),
                redirect_uri: callback.into(),
                scopes: vec!["openid".into()],
                nonce: None,
                code_challenge: None,
                auth_time: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    domain
        .redeem_code(&instance, &app, &code, Some(callback), &|_| true)
        .await
        .unwrap();
    cli.run(&["session", "terminate", &session.session_id])
        .await
        .ok();

    let mut health = Value::Null;
    for _ in 0..200 {
        health = cli
            .run(&["delivery", "health", "--app", &client_id, "--json"])
            .await
            .json();
        if health["last_day"]["failed"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health["last_day"]["failed"], 1, "{health}");
    assert_eq!(health["consecutive_failures"], 1);
    let shown = cli.run(&["delivery", "health", "--app", &client_id]).await;
    let shown = shown.ok();
    let field = |name: &str| {
        shown
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {shown}"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("consecutive_failures"), "1");
    assert_eq!(
        field("alerting"),
        "false",
        "below the default threshold of 5"
    );
    assert!(field("last_day").starts_with("0 sent, 0 retried, 1 failed"));
    assert!(
        field("last_error").contains("special-use address"),
        "{shown}"
    );
    assert_ne!(field("last_error_at"), "-");

    let missing = cli
        .run(&["delivery", "health", "--app", "no-such-app"])
        .await;
    assert!(missing.error().contains("no-such-app"), "{missing:?}");
    server.stop().await.unwrap();
}

/// The CLI's variables share the `PORTCULLIS_` prefix with settings; exporting them for the
/// admin commands must not make `portcullis start` refuse them as unknown settings.
#[test]
fn cli_variables_are_not_settings() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .arg("start")
        .current_dir(dir.path())
        .env("PORTCULLIS_URL", "http://127.0.0.1:9")
        .env("PORTCULLIS_ADMIN_TOKEN", TOKEN)
        .env("PORTCULLIS_USER_PASSWORD", "whatever")
        // A bad setting stops startup right after the environment is read, naming the setting.
        .env("PORTCULLIS_SERVER__EXTERNAL_URL", "ftp://id.example.com")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("server.external_url"), "{stderr}");
    assert!(!stderr.contains("unknown field"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_created_listed_and_removed_with_the_cli() {
    const SYSTEM_TOKEN: &str = "cli-test-system-token-0123456789abcdef";
    let h = sqlite().await;
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.initial_token = Some(TOKEN.into());
    config.admin.system_token = Some(SYSTEM_TOKEN.into());
    config.database.data_dir = h.data_dir().join("data");
    let server = RunningServer::start(config).await.unwrap();
    let cli = Cli::new(&server);
    let system = [("PORTCULLIS_SYSTEM_TOKEN", SYSTEM_TOKEN)];

    // The admin token in the environment is not the system token.
    let refused = cli.run(&["instance", "list"]).await;
    assert!(refused.error().contains("no system token"), "{refused:?}");
    let wrong = cli
        .run(&["instance", "list", "--system-token", TOKEN])
        .await;
    assert!(wrong.error().contains("not the system token"), "{wrong:?}");

    let created = cli
        .run_with(
            &[
                "instance",
                "create",
                "--external-url",
                "https://tenant.example.com/",
                "--name",
                "Tenant",
            ],
            None,
            &system,
        )
        .await;
    let printed = created.ok();
    assert!(printed.contains("https://tenant.example.com"), "{printed}");
    assert!(printed.contains("shown only now"), "{printed}");
    let token = printed
        .lines()
        .find_map(|line| line.strip_prefix("admin_token:"))
        .unwrap()
        .trim()
        .to_owned();
    // The first admin token works on the admin API and belongs to the new instance.
    let admin = server
        .domain()
        .authenticate_admin(&token)
        .await
        .unwrap()
        .unwrap();
    let again = cli
        .run_with(
            &[
                "instance",
                "create",
                "--external-url",
                "https://tenant.example.com",
                "--name",
                "Again",
            ],
            None,
            &system,
        )
        .await;
    assert!(again.error().contains("origin of instance"), "{again:?}");

    let list = cli
        .run_with(&["instance", "list", "--json"], None, &system)
        .await
        .json();
    let instances = list["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{list}");
    assert_eq!(instances[1]["instance_id"], admin.instance_id.as_str());
    let shown = cli
        .run_with(&["instance", "show", &admin.instance_id], None, &system)
        .await;
    assert!(shown.ok().contains("Tenant"), "{shown:?}");

    // Without --yes the command asks; anything but `yes` leaves the instance alone.
    let declined = cli
        .run_with(
            &["instance", "remove", &admin.instance_id],
            Some("no\n"),
            &system,
        )
        .await;
    assert_eq!(declined.code, Some(1), "{declined:?}");
    assert_eq!(
        declined.stderr.lines().last(),
        Some("error: not removed (pass --yes to skip this question)"),
        "{declined:?}"
    );
    let removed = cli
        .run_with(
            &["instance", "remove", &admin.instance_id, "--yes"],
            None,
            &system,
        )
        .await;
    assert!(removed.ok().contains("Removed instance"), "{removed:?}");
    let list = cli
        .run_with(&["instance", "list", "--json"], None, &system)
        .await
        .json();
    assert_eq!(list["instances"].as_array().unwrap().len(), 1, "{list}");
    let default_id = list["instances"][0]["instance_id"].as_str().unwrap();
    let kept = cli
        .run_with(&["instance", "remove", default_id, "--yes"], None, &system)
        .await;
    assert!(kept.error().contains("cannot be removed"), "{kept:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_access_tokens_are_managed_with_the_cli() {
    let h = sqlite().await;
    let server = start(&h).await;
    let cli = Cli::new(&server);
    let created = cli
        .run(&[
            "registration-token",
            "create",
            "--description",
            "partner onboarding",
            "--expires-in-secs",
            "3600",
            "--one-time",
        ])
        .await;
    let output = created.ok().to_owned();
    let token = output
        .lines()
        .find_map(|line| line.strip_prefix("token:"))
        .map(|rest| rest.trim().to_owned())
        .unwrap_or_else(|| panic!("no token line: {output}"));
    assert!(token.starts_with("pcit_"), "{output}");
    let token_id = output
        .lines()
        .find_map(|line| line.strip_prefix("token_id:"))
        .map(|rest| rest.trim().to_owned())
        .unwrap();

    // The token registers a client (RFC 7591) exactly once.
    let register = || {
        reqwest::Client::new()
            .post(format!("http://{}/oidc/v1/register", server.local_addr))
            .bearer_auth(&token)
            .json(&serde_json::json!({"redirect_uris": ["https://app.example.com/cb"]}))
            .send()
    };
    assert_eq!(register().await.unwrap().status(), 201);
    assert_eq!(register().await.unwrap().status(), 401);

    let listed = cli.run(&["registration-token", "list"]).await;
    assert!(
        listed.ok().contains(&token_id) && listed.stdout.contains("one-time"),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains(&token));
    let revoked = cli.run(&["registration-token", "revoke", &token_id]).await;
    assert_eq!(
        revoked.ok(),
        format!("Revoked initial access token {token_id}.\n")
    );
    let all = cli
        .run(&["registration-token", "list", "--json"])
        .await
        .json();
    let entry = &all["registration_tokens"][0];
    assert_eq!(entry["revoked"], true);
    assert_eq!(entry["used_by"].as_array().unwrap().len(), 1);
    server.stop().await.unwrap();
}
