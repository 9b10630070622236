//! Back-channel logout figures, with the server in this process on its embedded SQLite store and
//! every application's receiver a real HTTP listener on 127.0.0.1:
//! - fan-out: one session signed in to 100 applications (each its own receiver); time from the
//!   terminate call returning to the last logout token received, over 50 runs;
//! - the same with 10 of the 100 receivers never answering (the other 90 are timed);
//! - sustained delivery: many sessions of one user, each signed in to one application, ended at
//!   once by an admin sign-out; logout tokens received per second (ES256, RS256) and peak memory.
//!
//! Run: `cargo bench -p server --bench back_channel` (`BENCH_SCALE=0.2` for a quick run,
//! `BENCH_SCALE=20` for the 100,000-session mass logout; `BENCH_ONLY=fan-out`, `sustained`, `ES256`
//! or `RS256` for one part). Figures are printed, not judged.

mod common;

use common::flow::scale;
use common::sessions::{Bench, back_channel_server, receiver};

use std::time::{Duration, Instant};

use domain::application::ApplicationView;
use domain::{NewUser, Profile, TerminationReason};
use tokio::sync::mpsc;

const TOKEN: &str = "bench-admin-token-0123456789abcdef";
const ORIGIN: &str = "http://localhost:8080";

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

/// Fan-out runs: returns the sorted times from terminate-returned to the last expected arrival.
async fn fan_out(
    bench: &Bench,
    apps: &[ApplicationView],
    expected: usize,
    arrivals: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    runs: usize,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let session = bench.session_with(apps).await;
        while arrivals.try_recv().is_ok() {}
        bench
            .domain
            .terminate_session(
                &bench.instance_id,
                &session,
                TerminationReason::Admin,
                ORIGIN,
                &bench.admin.token_id,
            )
            .await
            .unwrap();
        let returned = Instant::now();
        let mut last = returned;
        for _ in 0..expected {
            let (_, at) = tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
                .await
                .unwrap()
                .unwrap();
            last = last.max(at);
        }
        times.push(last.saturating_duration_since(returned));
    }
    times.sort();
    times
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (server, _dir) = back_channel_server(TOKEN).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let password = "correct horse battery".to_owned();
    let user = domain
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
    let bench = Bench {
        domain: domain.clone(),
        instance_id: admin.instance_id.clone(),
        admin,
        user_id: user.user_id,
    };
    let runs = ((50.0 * scale()) as usize).max(5);

    println!("| figure (SQLite, durability full, in-process receivers on 127.0.0.1) | value |");
    println!("|---|---:|");

    // Fan-out to 100 applications.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    if only.is_empty() || only == "fan-out" {
        let mut uris = Vec::new();
        for index in 0..100 {
            uris.push(receiver(index, sender.clone(), false).await);
        }
        let apps = bench.apps(&uris, "ES256").await;
        fan_out(&bench, &apps, 100, &mut arrivals, 3).await; // warm-up: keys, connections
        let times = fan_out(&bench, &apps, 100, &mut arrivals, runs).await;
        println!(
            "| fan-out, 1 session → 100 applications (ES256), terminate returned → last token, {runs} runs | median {}, p99 {} |",
            ms(quantile(&times, 0.5)),
            ms(quantile(&times, 0.99))
        );

        // The same with 10 receivers that never answer.
        let mut uris = Vec::new();
        for index in 0..100 {
            uris.push(receiver(1000 + index, sender.clone(), index % 10 == 0).await);
        }
        let apps = bench.apps(&uris, "ES256").await;
        let times = fan_out(&bench, &apps, 90, &mut arrivals, runs).await;
        println!(
            "| fan-out, 100 applications of which 10 never answer: last of the other 90, {runs} runs | median {}, p99 {} |",
            ms(quantile(&times, 0.5)),
            ms(quantile(&times, 0.99))
        );
    }

    // Sustained delivery: many sessions ended at once, one application each.
    let sessions = ((5_000.0 * scale()) as usize).max(100);
    for alg in ["ES256", "RS256"] {
        if !only.is_empty() && only != "sustained" && only != alg {
            continue;
        }
        let (sender, mut arrivals) = mpsc::unbounded_channel();
        let uri = receiver(0, sender, false).await;
        let app = bench.apps(&[uri], alg).await;
        let user = domain
            .add_user(
                &bench.admin,
                NewUser {
                    username: format!("mass-{alg}").to_lowercase(),
                    profile: Profile::default(),
                    password: "correct horse battery".into(),
                },
            )
            .await
            .unwrap();
        let mass = Bench {
            domain: domain.clone(),
            instance_id: bench.instance_id.clone(),
            admin: bench.admin.clone(),
            user_id: user.user_id.clone(),
        };
        let setting_up = Instant::now();
        mass.sessions_with(&app, sessions).await;
        let before = common::rss_mib();
        eprintln!(
            "{alg}: {sessions} sessions set up in {:.1} s; signing out (pid {})",
            setting_up.elapsed().as_secs_f64(),
            std::process::id()
        );
        let activity = eventstore::sqlite_activity();
        let started = Instant::now();
        let ended = domain
            .sign_out_user(
                &bench.instance_id,
                &user.user_id,
                TerminationReason::Admin,
                ORIGIN,
                &bench.admin.token_id,
            )
            .await
            .unwrap();
        assert_eq!(ended, sessions);
        let signed_out = started.elapsed();
        let mut peak = common::rss_mib();
        for received in 0..sessions {
            tokio::time::timeout(Duration::from_secs(120), arrivals.recv())
                .await
                .unwrap()
                .unwrap();
            if received % 1000 == 0 {
                peak = peak.max(common::rss_mib());
            }
        }
        let elapsed = started.elapsed();
        peak = peak.max(common::rss_mib());
        let done = eventstore::sqlite_activity();
        println!(
            "| sustained delivery, {sessions} sessions ended by one admin sign-out, one application each ({alg}) | {:.0} tokens/s ({:.1} s, of which the sign-out call {:.1} s; RSS {before:.1} → peak {peak:.1} MiB; per session {:.1} SQLite statements, {:.3} commits) |",
            sessions as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            signed_out.as_secs_f64(),
            (done.statements - activity.statements) as f64 / sessions as f64,
            (done.commits - activity.commits) as f64 / sessions as f64,
        );
    }
    server.stop().await.unwrap();
}
