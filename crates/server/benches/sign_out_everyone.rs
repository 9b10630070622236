//! "Sign out everyone" at scale, with the server in this process on its embedded SQLite store
//! and a real HTTP receiver on 127.0.0.1 for the application:
//! - 100,000 live sessions, each signed in to one application, ended by one
//!   `POST /admin/v1/sign-out-everyone`: time until the application has every logout token,
//!   deliveries per second, and peak memory while it runs;
//! - the same again while 8 clients run the code flow: the code flow's rate and p99 during the
//!   operation, against the same clients just before it.
//!
//! Run: `cargo bench -p server --bench sign_out_everyone` (`BENCH_SCALE=0.1` for 10,000
//! sessions; `BENCH_CLIENTS` for the code-flow clients, 8 unless set). Figures are printed,
//! never judged.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::flow::{CALLBACK, Client, clients, drive, form, scale, sign_in};
use common::sessions::{Bench, back_channel_server, receiver};
use domain::{NewUser, Profile};
use tokio::sync::mpsc;

const TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// Starts the operation over HTTP, as an operator's CLI does.
async fn start_operation(http: &reqwest::Client, base: &str) {
    let started = http
        .post(format!("{base}/admin/v1/sign-out-everyone"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), reqwest::StatusCode::ACCEPTED);
}

/// Waits for `count` logout tokens; returns the peak RSS seen meanwhile (sampled every 1,000).
async fn receive_all(
    arrivals: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    count: usize,
) -> f64 {
    let mut peak = common::rss_mib();
    for received in 0..count {
        tokio::time::timeout(Duration::from_secs(300), arrivals.recv())
            .await
            .expect("every application is told")
            .unwrap();
        if received % 1000 == 0 {
            peak = peak.max(common::rss_mib());
        }
    }
    peak.max(common::rss_mib())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (server, _dir) = back_channel_server(TOKEN).await;
    let base = format!("http://{}", server.local_addr);
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let sessions = ((100_000.0 * scale()) as usize).max(100);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    // alice signs in to the code-flow client; bob holds the sessions to end.
    let mut users = Vec::new();
    for username in ["alice", "bob"] {
        let user = domain
            .add_user(
                &admin,
                NewUser {
                    username: username.into(),
                    profile: Profile::default(),
                    password: "correct horse battery".into(),
                },
            )
            .await
            .unwrap();
        users.push(user);
    }
    let bob = users.remove(1);
    let bench = Bench {
        domain: domain.clone(),
        instance_id: admin.instance_id.clone(),
        admin: admin.clone(),
        user_id: bob.user_id,
    };
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    let uri = receiver(0, sender, false).await;
    let app = bench.apps(&[uri], "ES256").await;
    let (flow_app, secret) = domain
        .add_application(
            &admin,
            serde_json::from_value(serde_json::json!({
                "name": "code flow",
                "client_type": "confidential",
                "auth_method": "client_secret_basic",
                "redirect_uris": [CALLBACK],
                "grant_types": ["authorization_code"],
                "id_token_signing_alg": "ES256",
                "access_token_lifetime_secs": 3600,
                "id_token_lifetime_secs": 600,
                "refresh_token_lifetime_secs": 86400
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let client = Arc::new(Client {
        id: flow_app.client_id.clone(),
        secret: secret.unwrap(),
        authorize: format!(
            "/oauth/v2/authorize?{}",
            form(&[
                ("response_type", "code"),
                ("client_id", &flow_app.client_id),
                ("redirect_uri", CALLBACK),
                ("scope", "openid email"),
                ("nonce", "n")
            ])
        ),
    });

    println!(
        "| figure (SQLite, durability full, receiver on 127.0.0.1, {sessions} sessions each signed in to one application) | value |"
    );
    println!("|---|---:|");

    // 1. Alone.
    let setting_up = Instant::now();
    bench.sessions_with(&app, sessions).await;
    eprintln!(
        "{sessions} sessions set up in {:.1} s",
        setting_up.elapsed().as_secs_f64()
    );
    let before = common::rss_mib();
    let started = Instant::now();
    start_operation(&http, &base).await;
    let peak = receive_all(&mut arrivals, sessions).await;
    let elapsed = started.elapsed();
    println!(
        "| sign out everyone: request → the application told of every session | {:.1} s, {:.0} deliveries/s (RSS {before:.1} → peak {peak:.1} MiB) |",
        elapsed.as_secs_f64(),
        sessions as f64 / elapsed.as_secs_f64(),
    );

    // 2. While the code flow runs.
    bench.sessions_with(&app, sessions).await;
    let cookie = sign_in(&http, &base, &client.authorize).await;
    let clients = clients(8);
    drive(&http, &base, &cookie, client.clone(), clients, |done| {
        done < 25
    })
    .await; // warm-up
    let (alone_rate, _, alone_p99) = {
        let until = Instant::now() + Duration::from_secs(10);
        drive(&http, &base, &cookie, client.clone(), clients, move |_| {
            Instant::now() < until
        })
        .await
    };
    let before = common::rss_mib();
    let started = Instant::now();
    start_operation(&http, &base).await;
    // Signed in after the operation began, so it is not one of the sessions it ends.
    let cookie = sign_in(&http, &base, &client.authorize).await;
    let done = Arc::new(AtomicBool::new(false));
    let flows = {
        let (http, base, client, done) = (http.clone(), base.clone(), client.clone(), done.clone());
        tokio::spawn(async move {
            drive(&http, &base, &cookie, client, clients, move |_| {
                !done.load(Ordering::Relaxed)
            })
            .await
        })
    };
    let peak = receive_all(&mut arrivals, sessions).await;
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (during_rate, _, during_p99) = flows.await.unwrap();
    println!(
        "| sign out everyone while {clients} clients run the code flow: request → every application told | {:.1} s, {:.0} deliveries/s (RSS {before:.1} → peak {peak:.1} MiB) |",
        elapsed.as_secs_f64(),
        sessions as f64 / elapsed.as_secs_f64(),
    );
    println!(
        "| code flow ({clients} clients), 10 s just before / during the operation | {alone_rate:.0}/s, p99 {:.1} ms / {during_rate:.0}/s, p99 {:.1} ms |",
        alone_p99.as_secs_f64() * 1e3,
        during_p99.as_secs_f64() * 1e3,
    );
    server.stop().await.unwrap();
}
