//! Code exchanges per second with an already signed-in browser session (authorize + token per
//! iteration) for ES256 and RS256 clients, and resident memory after many issued token sets.
//! The server runs in this process on its embedded SQLite store; the client talks HTTP over
//! loopback. Run: `cargo bench -p server --bench code_flow` (`BENCH_SCALE=0.1` for a quick run,
//! `BENCH_DURABILITY=normal` for SQLite's normal synchronous mode, `BENCH_CLIENTS=64` for the
//! number of concurrent clients). Figures are printed, with SQLite statements and commits per
//! flow from `eventstore::sqlite_activity`.

mod common;

use common::flow::{CALLBACK, Client, clients, drive, form, scale, sign_in};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::application::OidcConfig;
use domain::{NewUser, Profile};
use server::{Config, RunningServer};

const TOKEN: &str = "bench-admin-token-0123456789abcdef";
/// Concurrent clients: `BENCH_CLIENTS`, 16 unless set.
fn concurrency() -> usize {
    clients(16)
}

/// Runs `count` iterations with [`concurrency`] clients; returns (per second, p50, p99).
async fn run(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    client: Arc<Client>,
    count: usize,
) -> (f64, Duration, Duration) {
    let per_worker = count / concurrency();
    drive(http, base, cookie, client, concurrency(), move |done| {
        done < per_worker
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    server::allocator::keep_large_allocations_out_of_the_heap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.initial_token = Some(TOKEN.into());
    config.database.data_dir = dir.path().join("data");
    let durability = std::env::var("BENCH_DURABILITY").unwrap_or_else(|_| "full".into());
    config.database.sqlite_durability =
        serde_json::from_value(serde_json::Value::String(durability.clone())).unwrap();
    config.log.level = "warn".into();
    server::telemetry::init(&config.log);
    let server = RunningServer::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr);
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
    let mut clients = HashMap::new();
    for alg in ["ES256", "RS256"] {
        let config: OidcConfig = serde_json::from_value(serde_json::json!({
            "name": format!("bench {alg}"),
            "client_type": "confidential",
            "auth_method": "client_secret_basic",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "id_token_signing_alg": alg,
            "access_token_lifetime_secs": 3600,
            "id_token_lifetime_secs": 600,
            "refresh_token_lifetime_secs": 86400
        }))
        .unwrap();
        let (app, secret) = domain.add_application(&admin, config).await.unwrap();
        let authorize = format!(
            "/oauth/v2/authorize?{}",
            form(&[
                ("response_type", "code"),
                ("client_id", &app.client_id),
                ("redirect_uri", CALLBACK),
                ("scope", "openid email"),
                ("nonce", "n")
            ])
        );
        clients.insert(
            alg,
            Arc::new(Client {
                id: app.client_id,
                secret: secret.unwrap(),
                authorize,
            }),
        );
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let cookie = sign_in(&http, &base, &clients["ES256"].authorize).await;

    let clients_n = concurrency();
    let count = ((3_000.0 * scale()) as usize).max(clients_n);
    println!(
        "| figure (SQLite, durability {durability}, {clients_n} concurrent clients) | value |"
    );
    println!("|---|---:|");
    for alg in ["ES256", "RS256"] {
        run(&http, &base, &cookie, clients[alg].clone(), 200).await; // warm-up: keys, caches, pools
        let before = eventstore::sqlite_activity();
        let (rate, p50, p99) = run(&http, &base, &cookie, clients[alg].clone(), count).await;
        let after = eventstore::sqlite_activity();
        let flows = (count / clients_n * clients_n) as f64;
        println!(
            "| code exchanges/s, {alg} (authorize + token, {count} iterations) | {rate:.0}/s (p50 {:.1} ms, p99 {:.1} ms; per flow {:.1} SQLite statements, {:.2} commits) |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            (after.statements - before.statements) as f64 / flows,
            (after.commits - before.commits) as f64 / flows,
        );
    }
    let token_sets = ((100_000.0 * scale()) as usize).max(clients_n);
    let before = common::rss_mib();
    let started = Instant::now();
    let (rate, _, _) = run(&http, &base, &cookie, clients["ES256"].clone(), token_sets).await;
    println!(
        "| resident memory after {token_sets} more token sets (ES256; server and client in one process) | {:.1} MiB (was {before:.1} MiB; {rate:.0}/s over {:.0} s) |",
        common::rss_mib(),
        started.elapsed().as_secs_f64()
    );
    server.stop().await.unwrap();
}
