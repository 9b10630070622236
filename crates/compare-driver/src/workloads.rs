//! The workloads, each identical for every server: code flow at a given concurrency,
//! back-channel fan-out to N applications, and sustained logouts.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::Mutex;

use crate::browser::Browser;
use crate::receivers::{Receivers, claim};
use crate::target::{Client, Server};

/// `q`-quantile of sorted durations, in milliseconds.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e3
}

/// Code flow figures at one concurrency.
pub struct CodeFlow {
    pub flows_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `clients` browsers, each signed in once, then running authorize + code exchange in a loop
/// for `duration`.
pub async fn code_flow(
    server: &Arc<Server>,
    http: &reqwest::Client,
    client: &Client,
    clients: usize,
    duration: Duration,
) -> Result<CodeFlow> {
    let mut browsers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut browser = Browser::new(http);
        browser
            .code_flow(server, client)
            .await
            .context("first sign-in")?;
        browsers.push(browser);
    }
    // Warm-up: a second of the same load, not counted.
    run_flows(server, client, &mut browsers, Duration::from_secs(1)).await?;
    let started = Instant::now();
    let mut latencies = run_flows(server, client, &mut browsers, duration).await?;
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(CodeFlow {
        flows_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: quantile_ms(&latencies, 0.5),
        p99_ms: quantile_ms(&latencies, 0.99),
    })
}

async fn run_flows(
    server: &Arc<Server>,
    client: &Client,
    browsers: &mut Vec<Browser>,
    duration: Duration,
) -> Result<Vec<Duration>> {
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for mut browser in browsers.drain(..) {
        let (server, client) = (server.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let started = Instant::now();
                browser.code_flow(&server, &client).await?;
                latencies.push(started.elapsed());
            }
            anyhow::Ok((browser, latencies))
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let (browser, latencies) = task.await??;
        browsers.push(browser);
        all.extend(latencies);
    }
    Ok(all)
}

/// One browser signed in to every client; returns it, the first ID token, and the `sid` values
/// the clients were given (oidc-provider gives each client of a session its own).
async fn signed_in_to_all(
    server: &Server,
    http: &reqwest::Client,
    clients: &[Client],
) -> Result<(Browser, String, HashSet<String>)> {
    let mut browser = Browser::new(http);
    let mut first = None;
    let mut sids = HashSet::new();
    for client in clients {
        let tokens = browser.code_flow(server, client).await?;
        sids.insert(claim(&tokens.id_token, "sid").context("the ID token carries no sid")?);
        first.get_or_insert(tokens.id_token);
    }
    Ok((browser, first.context("no clients")?, sids))
}

/// Time from the start of the logout request to the last logout token received, per run,
/// sorted: one session signed in to every client in `clients` (each with its own receiver).
pub async fn fan_out(
    server: &Server,
    http: &reqwest::Client,
    clients: &[Client],
    receivers: &mut Receivers,
    runs: usize,
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (mut browser, id_token, sids) = signed_in_to_all(server, http, clients).await?;
        receivers.drain();
        let started = Instant::now();
        server.end_session(&mut browser, &id_token).await?;
        let last = receivers
            .wait_for(clients.len(), &sids, Duration::from_secs(60))
            .await?;
        times.push(last.saturating_duration_since(started));
    }
    times.sort();
    Ok(times)
}

/// Sessions ended per second: `sessions` browsers each signed in to `client`, all logged out
/// by `concurrency` workers at once; the clock stops at the last logout token received.
pub async fn logout_rate(
    server: &Arc<Server>,
    http: &reqwest::Client,
    client: &Client,
    receivers: &mut Receivers,
    sessions: usize,
    concurrency: usize,
) -> Result<f64> {
    let queue = Arc::new(Mutex::new(Vec::with_capacity(sessions)));
    let mut sids = HashSet::with_capacity(sessions);
    // Sign in with a few workers in parallel: setup, not measured.
    let setup: Vec<_> = (0..16)
        .map(|worker| {
            let (server, http, client, queue) =
                (server.clone(), http.clone(), client.clone(), queue.clone());
            tokio::spawn(async move {
                let mut made = Vec::new();
                for _ in (worker..sessions).step_by(16) {
                    let mut browser = Browser::new(&http);
                    let tokens = browser.code_flow(&server, &client).await?;
                    made.push((browser, tokens.id_token));
                }
                queue.lock().await.extend(made);
                anyhow::Ok(())
            })
        })
        .collect();
    for task in setup {
        task.await??;
    }
    for (_, id_token) in queue.lock().await.iter() {
        sids.insert(claim(id_token, "sid").context("the ID token carries no sid")?);
    }
    receivers.drain();
    // A marker for profiling only the measured phase (`perf record -p …` once it shows).
    eprintln!("signing out {sessions} sessions now");
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (server, queue) = (server.clone(), queue.clone());
            tokio::spawn(async move {
                loop {
                    let Some((mut browser, id_token)) = queue.lock().await.pop() else {
                        return anyhow::Ok(());
                    };
                    server.end_session(&mut browser, &id_token).await?;
                }
            })
        })
        .collect();
    let last = receivers
        .wait_for(sessions, &sids, Duration::from_secs(300))
        .await?;
    for worker in workers {
        worker.await??;
    }
    Ok(sessions as f64 / last.saturating_duration_since(started).as_secs_f64())
}
