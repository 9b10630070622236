//! `portcullis sign-out-everyone`: start ending every live session of the instance and follow
//! it with a progress bar until every session has ended and every application was told (or
//! given up on).

use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::client::ApiClient;
use super::output;
use crate::http::admin::sign_out::{SignOutBody, SignOutList};

/// How often the progress is read.
const POLL: Duration = Duration::from_millis(250);

/// Options of `sign-out-everyone`.
#[derive(Debug, Args)]
pub struct SignOutArgs {
    /// Start (or find the running operation) and return at once instead of following it.
    #[arg(long)]
    no_wait: bool,
    /// Start nothing: list the instance's operations, newest first.
    #[arg(long, conflicts_with_all = ["no_wait", "show"])]
    list: bool,
    /// Start nothing: show one operation's progress.
    #[arg(long, value_name = "OPERATION_ID", conflicts_with = "no_wait")]
    show: Option<String>,
}

/// Runs `sign-out-everyone`.
pub async fn run(client: &ApiClient, json: bool, args: SignOutArgs) -> anyhow::Result<()> {
    if args.list {
        let answer = client.get(&["sign-out-everyone"], &[]).await?;
        if json {
            output::json(&answer.body);
            return Ok(());
        }
        let list: SignOutList = answer.parse()?;
        let rows: Vec<Vec<String>> = list
            .operations
            .iter()
            .map(|operation| {
                vec![
                    operation.operation_id.clone(),
                    operation.state.clone(),
                    format!("{}/{}", operation.sessions_ended, operation.sessions_total),
                    format!(
                        "{}/{}/{}",
                        operation.deliveries_sent,
                        operation.deliveries_failed,
                        operation.deliveries_pending
                    ),
                ]
            })
            .collect();
        output::table(
            &[
                "OPERATION_ID",
                "STATE",
                "SESSIONS_ENDED",
                "SENT/FAILED/PENDING",
            ],
            &rows,
        );
        return Ok(());
    }
    if let Some(id) = &args.show {
        let answer = client.get(&["sign-out-everyone", id], &[]).await?;
        let operation: SignOutBody = answer.parse()?;
        return report(json, &answer.body, &operation);
    }
    let answer = client.post(&["sign-out-everyone"], None).await?;
    let started: SignOutBody = answer.parse()?;
    let id = started.operation_id.clone();
    if answer.status == reqwest::StatusCode::OK && !json {
        println!("An operation was running already; following it ({id}).");
    }
    if args.no_wait {
        return report(json, &answer.body, &started);
    }
    let bar = ProgressBar::new(started.sessions_total.max(1));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} sessions ended · {msg}")
            .expect("a valid template"),
    );
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    loop {
        let answer = client.get(&["sign-out-everyone", &id], &[]).await?;
        let now: SignOutBody = answer.parse()?;
        bar.set_length(now.sessions_total.max(now.sessions_ended).max(1));
        bar.set_position(now.sessions_ended);
        bar.set_message(format!(
            "deliveries: {} sent, {} failed, {} pending",
            now.deliveries_sent, now.deliveries_failed, now.deliveries_pending
        ));
        if now.state == "completed" && now.deliveries_pending == 0 {
            bar.finish();
            return report(json, &answer.body, &now);
        }
        tokio::time::sleep(POLL).await;
    }
}

fn report(json: bool, body: &serde_json::Value, operation: &SignOutBody) -> anyhow::Result<()> {
    if json {
        output::json(body);
        return Ok(());
    }
    output::fields(&[
        ("operation_id", operation.operation_id.clone()),
        ("state", operation.state.clone()),
        (
            "sessions",
            format!(
                "{} of {} ended",
                operation.sessions_ended, operation.sessions_total
            ),
        ),
        (
            "deliveries",
            format!(
                "{} sent, {} failed, {} pending",
                operation.deliveries_sent,
                operation.deliveries_failed,
                operation.deliveries_pending
            ),
        ),
    ]);
    Ok(())
}
