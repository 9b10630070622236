//! The `portcullis` binary as an operator meets it: first start, restarts, bad settings.

use std::path::Path;
use std::process::{Command, Stdio};

mod common;

use common::process::{Process, portcullis};

/// Runs the binary expecting it to fail; returns its stderr.
fn fails(command: &mut Command) -> String {
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(!output.status.success(), "expected a failure");
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8(output.stderr).unwrap()
}

fn readyz(address: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::get(format!("http://{address}/readyz"))
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn first_start_creates_the_store_and_shows_the_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Process::spawn({
        let mut command = portcullis(dir.path(), &[]);
        command.arg("start");
        command
    });
    let address = first.address();
    assert_eq!(readyz(&address), 200);
    let log = first.stop();
    assert!(
        dir.path().join("data/portcullis.db").is_file(),
        "the SQLite store lives in ./data"
    );
    assert_eq!(
        log.iter()
            .filter(|line| line.contains("admin_token=pcat_"))
            .count(),
        1,
        "{log:#?}"
    );
    assert!(
        log.iter().any(|line| line.contains("store=\"sqlite\"")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|line| line.contains("listening") && line.contains("back_channel_logout=true")),
        "a first start says applications are told of logouts: {log:#?}"
    );

    let mut second = Process::spawn({
        let mut command = portcullis(dir.path(), &[]);
        command.arg("start");
        command
    });
    assert_eq!(readyz(&second.address()), 200);
    let log = second.stop();
    assert!(
        !log.iter().any(|line| line.contains("admin_token=")),
        "the token is shown only on first start: {log:#?}"
    );
}

#[test]
fn a_config_file_is_read_and_the_environment_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        r#"
[server]
listen = "127.0.0.1:1"
external_url = "http://127.0.0.1:9999/"

[database]
data_dir = "state"
sqlite_durability = "normal"

[log]
format = "json"
"#,
    )
    .unwrap();
    let mut process = Process::spawn({
        let mut command = portcullis(dir.path(), &[]);
        command.args(["start", "--config", "portcullis.toml"]);
        command
    });
    // The environment's listen address (port 0) won over the file's port 1.
    let address = process.address();
    let log = process.stop();
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":1"),
        "{address}"
    );
    assert!(dir.path().join("state/portcullis.db").is_file());
    let listening = log.iter().find(|line| line.contains("listening")).unwrap();
    let json: serde_json::Value = serde_json::from_str(listening).expect("json log lines");
    assert_eq!(json["issuer"], "http://127.0.0.1:9999");
}

#[test]
fn bad_settings_fail_with_one_line_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    /// Environment, arguments, and what the error must mention.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (
            &[("PORTCULLIS_SERVER__LISTEN", "nonsense")],
            &["start"],
            "LISTEN",
        ),
        (
            &[("PORTCULLIS_SERVRE__LISTEN", "x")],
            &["start"],
            "unknown field",
        ),
        (
            &[("PORTCULLIS_SERVER__EXTERNAL_URL", "localhost:8080")],
            &["start"],
            "server.external_url",
        ),
        (
            &[("PORTCULLIS_DATABASE__URL", "mysql://x")],
            &["start"],
            "database.url",
        ),
        (
            &[("PORTCULLIS_ADMIN__INITIAL_TOKEN", "short")],
            &["start"],
            "admin.initial_token",
        ),
        (
            &[(
                "PORTCULLIS_BACK_CHANNEL__ALLOWED_NETWORKS",
                "127.0.0.0/8,nonsense",
            )],
            &["start"],
            "back_channel.allowed_networks",
        ),
        (
            &[("PORTCULLIS_LOG__LEVEL", "info,[")],
            &["start"],
            "log.level",
        ),
        (
            &[],
            &["start", "--config", "missing.toml"],
            "missing.toml does not exist",
        ),
    ];
    for (envs, args, expected) in cases {
        let stderr = fails(portcullis(dir.path(), envs).args(*args));
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{expected}: {stderr}"
        );
    }
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn a_list_setting_is_read_from_a_comma_separated_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut process = Process::spawn({
        let mut command = portcullis(
            dir.path(),
            &[(
                "PORTCULLIS_BACK_CHANNEL__ALLOWED_NETWORKS",
                "127.0.0.0/8, 10.0.0.0/8",
            )],
        );
        command.arg("start");
        command
    });
    assert_eq!(readyz(&process.address()), 200);
    process.stop();
}

#[test]
fn a_port_in_use_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let stderr =
        fails(portcullis(dir.path(), &[("PORTCULLIS_SERVER__LISTEN", &address)]).arg("start"));
    assert!(
        stderr.contains(&format!("cannot listen on {address}")) && stderr.contains("in use"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_database_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{unused}/test");
    let stderr = fails(portcullis(dir.path(), &[("PORTCULLIS_DATABASE__URL", &url)]).arg("start"));
    assert!(
        stderr.contains("cannot connect to the postgres database")
            && stderr.contains(&unused.to_string()),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn a_store_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Process::spawn({
        let mut command = portcullis(dir.path(), &[]);
        command.arg("start");
        command
    });
    first.address();
    first.stop();
    let file = dir.path().join("data/portcullis.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let count_events = || {
        runtime.block_on(async {
            let pool = sqlx_pool(&file).await;
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
                .fetch_one(&pool)
                .await
                .unwrap();
            count
        })
    };
    let before = count_events();
    runtime.block_on(async {
        let pool = sqlx_pool(&file).await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99990101000000, 'from a newer portcullis', TRUE, X'00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
    });
    let stderr = fails(portcullis(dir.path(), &[]).arg("start"));
    assert!(
        stderr.contains("newer than this binary") && stderr.contains("99990101000000"),
        "{stderr}"
    );
    assert_eq!(count_events(), before);
}

async fn sqlx_pool(file: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap()
}
