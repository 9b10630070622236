//! Code exchanges per second with an already signed-in browser session (authorize + token per
//! iteration) for ES256 and RS256 clients, and resident memory after many issued token sets.
//! The server runs in this process on its embedded SQLite store; the client talks HTTP over
//! loopback. Run: `cargo bench -p server --bench code_flow` (`BENCH_SCALE=0.1` for a quick run,
//! `BENCH_DURABILITY=normal` for SQLite's normal synchronous mode, `BENCH_CLIENTS=64` for the
//! number of concurrent clients). Figures are printed, with SQLite statements and commits per
//! flow from `eventstore::sqlite_activity`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::application::OidcConfig;
use domain::{NewUser, Profile};
use server::{Config, RunningServer};

const TOKEN: &str = "bench-admin-token-0123456789abcdef";
const CALLBACK: &str = "https://app.example.com/callback";
/// Concurrent clients: `BENCH_CLIENTS`, 16 unless set.
fn concurrency() -> usize {
    std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|clients| clients.parse().ok())
        .filter(|clients| *clients > 0)
        .unwrap_or(16)
}

fn scale() -> f64 {
    std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1.0)
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn query_of(url: &str) -> HashMap<String, String> {
    form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes())
        .into_owned()
        .collect()
}

fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&")
}

/// A signed-in browser session: the cookie header to send with authorization requests.
async fn sign_in(http: &reqwest::Client, base: &str, authorize: &str) -> String {
    let cookie_of = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|value| {
                value
                    .to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .find(|pair| pair.starts_with(name))
    };
    let response = http.get(format!("{base}{authorize}")).send().await.unwrap();
    let login = location(&response);
    let page = http.get(format!("{base}{login}")).send().await.unwrap();
    let csrf_cookie = cookie_of(&page, "portcullis_csrf=").unwrap();
    let html = page.text().await.unwrap();
    let body = form(&[
        ("csrf", &hidden_field(&html, "csrf")),
        ("return_to", &hidden_field(&html, "return_to")),
        ("login", "alice"),
        ("password", "correct horse battery"),
    ]);
    let signed_in = http
        .post(format!("{base}/login"))
        .header("cookie", csrf_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    cookie_of(&signed_in, "portcullis_session=").expect("signed in")
}

struct Client {
    id: String,
    secret: String,
    authorize: String,
}

/// One iteration: authorize (session cookie) → code → token exchange. Returns its latency.
async fn iteration(http: &reqwest::Client, base: &str, cookie: &str, client: &Client) -> Duration {
    let started = Instant::now();
    let response = http
        .get(format!("{base}{}", client.authorize))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let code = query_of(&location(&response))
        .remove("code")
        .expect("a code");
    let tokens = http
        .post(format!("{base}/oauth/v2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ]))
        .send()
        .await
        .unwrap();
    assert!(
        tokens.status().is_success(),
        "token exchange failed: {}",
        tokens.text().await.unwrap()
    );
    let _ = tokens.bytes().await.unwrap();
    started.elapsed()
}

/// Runs `count` iterations with [`concurrency`] clients; returns (per second, p50, p99).
async fn run(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    client: Arc<Client>,
    count: usize,
) -> (f64, Duration, Duration) {
    let started = Instant::now();
    let per_worker = count / concurrency();
    let workers: Vec<_> = (0..concurrency())
        .map(|_| {
            let (http, base, cookie, client) = (
                http.clone(),
                base.to_owned(),
                cookie.to_owned(),
                client.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_worker);
                for _ in 0..per_worker {
                    latencies.push(iteration(&http, &base, &cookie, &client).await);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |quantile: f64| {
        latencies[((latencies.len() as f64 * quantile) as usize).min(latencies.len() - 1)]
    };
    (
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
    )
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
