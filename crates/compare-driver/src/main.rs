//! Load driver of the side-by-side benchmark (`bench/compare/run.sh`). One invocation is one
//! run against one server: it starts the server command given after `--`, times it to ready,
//! then runs the same workloads over plain HTTP whatever the server is, and prints one JSON
//! line per figure on stdout (progress goes to stderr).
//!
//! ```text
//! compare-driver --target portcullis|oidc-provider --store sqlite --port 8080 \
//!     --credential SECRET [--alg ES256] [--quick] -- <server command…>
//! ```
//!
//! The credential is Portcullis's admin token, or oidc-provider's initial access token for
//! dynamic registration. The server's own settings come from the environment the driver
//! passes on.

mod browser;
mod process;
mod receivers;
mod target;
mod workloads;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use serde::Serialize;

use process::ServerProcess;
use receivers::Receivers;
use target::{Kind, Server};

#[derive(Parser)]
#[command(about = "Runs the comparison workloads against one OpenID Provider")]
struct Args {
    /// Which server the command starts.
    #[arg(long, value_enum)]
    target: Kind,
    /// The server's store, as a label for the results (sqlite, postgres, memory).
    #[arg(long)]
    store: String,
    /// The port the server listens on (127.0.0.1).
    #[arg(long)]
    port: u16,
    /// Admin token (Portcullis) or initial access token (oidc-provider).
    #[arg(long)]
    credential: String,
    /// ID token and logout token signing algorithm of every client.
    #[arg(long, default_value = "ES256")]
    alg: String,
    /// Short runs, to check the set-up rather than to measure.
    #[arg(long)]
    quick: bool,
    /// The command that starts the server.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// One result line.
#[derive(Serialize)]
struct Figure<'a> {
    target: &'a str,
    store: &'a str,
    figure: String,
    label: String,
    value: f64,
    unit: &'static str,
    better: &'static str,
}

struct Report<'a> {
    target: &'a str,
    store: &'a str,
}

impl Report<'_> {
    fn emit(
        &self,
        figure: String,
        label: String,
        value: f64,
        unit: &'static str,
        better: &'static str,
    ) {
        let line = Figure {
            target: self.target,
            store: self.store,
            figure,
            label,
            value,
            unit,
            better,
        };
        println!(
            "{}",
            serde_json::to_string(&line).expect("a figure serializes")
        );
    }

    fn higher(&self, figure: &str, label: &str, value: f64, unit: &'static str) {
        self.emit(figure.into(), label.into(), value, unit, "higher");
    }

    fn lower(&self, figure: &str, label: &str, value: f64, unit: &'static str) {
        self.emit(figure.into(), label.into(), value, unit, "lower");
    }
}

/// How long and how many, full or quick.
struct Sizes {
    flow_duration: Duration,
    fan_out_runs: usize,
    logout_sessions: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let sizes = if args.quick {
        Sizes {
            flow_duration: Duration::from_secs(1),
            fan_out_runs: 3,
            logout_sessions: 100,
        }
    } else {
        Sizes {
            flow_duration: Duration::from_secs(5),
            fan_out_runs: 20,
            logout_sessions: 2000,
        }
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(256)
        .build()?;
    let base = url::Url::parse(&format!("http://127.0.0.1:{}/", args.port))?;
    let report = Report {
        target: args.target.name(),
        store: &args.store,
    };

    eprintln!("[{}] starting {:?}", report.target, args.command);
    let (process, ready) =
        ServerProcess::start(&args.command, &target::discovery_url(&base), &http).await?;
    report.lower(
        "startup_ms",
        "start to ready",
        ready.as_secs_f64() * 1e3,
        "ms",
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.lower(
        "rss_idle_mib",
        "memory, idle after start (RSS)",
        process.rss_mib(),
        "MiB",
    );

    let outcome = run(&args, &sizes, &http, base, &report, &process).await;
    report.lower(
        "rss_loaded_mib",
        "memory, peak under the workloads (RSS)",
        process.peak_rss_mib(),
        "MiB",
    );
    process.stop().await?;
    outcome
}

async fn run(
    args: &Args,
    sizes: &Sizes,
    http: &reqwest::Client,
    base: url::Url,
    report: &Report<'_>,
    process: &ServerProcess,
) -> Result<()> {
    let server = Arc::new(Server::prepare(args.target, base, args.credential.clone(), http).await?);
    let alg = args.alg.as_str();

    let flow_client = server.register("code flow", alg, None).await?;
    for clients in [1, 8, 64] {
        eprintln!(
            "[{}] code flow, {clients} clients (RSS {:.1} MiB)",
            report.target,
            process.rss_mib()
        );
        let flow =
            workloads::code_flow(&server, http, &flow_client, clients, sizes.flow_duration).await?;
        let what = format!("code flow, {clients} clients");
        report.higher(
            &format!("code_flow_rps_c{clients}"),
            &format!("{what}: flows/s (authorize + token)"),
            flow.flows_per_sec,
            "flows/s",
        );
        report.lower(
            &format!("code_flow_p50_ms_c{clients}"),
            &format!("{what}: p50"),
            flow.p50_ms,
            "ms",
        );
        report.lower(
            &format!("code_flow_p99_ms_c{clients}"),
            &format!("{what}: p99"),
            flow.p99_ms,
            "ms",
        );
    }

    for apps in [10, 100] {
        eprintln!(
            "[{}] fan-out to {apps} applications (RSS {:.1} MiB)",
            report.target,
            process.rss_mib()
        );
        let mut receivers = Receivers::start(apps).await?;
        let mut clients = Vec::with_capacity(apps);
        for (index, uri) in receivers.uris.iter().enumerate() {
            clients.push(
                server
                    .register(&format!("fan-out {apps}/{index}"), alg, Some(uri))
                    .await?,
            );
        }
        let times =
            workloads::fan_out(&server, http, &clients, &mut receivers, sizes.fan_out_runs).await?;
        let what = format!("fan-out, 1 session → {apps} applications, logout request → last token");
        report.lower(
            &format!("fanout_{apps}_median_ms"),
            &format!("{what}: median"),
            workloads::quantile_ms(&times, 0.5),
            "ms",
        );
        report.lower(
            &format!("fanout_{apps}_p99_ms"),
            &format!("{what}: p99"),
            workloads::quantile_ms(&times, 0.99),
            "ms",
        );
    }

    eprintln!(
        "[{}] sustained logout, {} sessions",
        report.target, sizes.logout_sessions
    );
    let mut receivers = Receivers::start(1).await?;
    let client = server
        .register("logout", alg, Some(&receivers.uris[0]))
        .await?;
    let rate = workloads::logout_rate(
        &server,
        http,
        &client,
        &mut receivers,
        sizes.logout_sessions,
        32,
    )
    .await?;
    report.higher(
        "logout_rate",
        &format!("sustained logout ({} sessions, 32 at a time, one application each): sessions ended and notified per second", sizes.logout_sessions),
        rate,
        "sessions/s",
    );
    Ok(())
}
