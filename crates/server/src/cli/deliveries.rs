//! `portcullis delivery …`: back-channel deliveries — list with filters, show one with its
//! attempts, re-send, and each application's delivery health.

use clap::{ArgGroup, Subcommand};
use serde_json::json;

use super::client::ApiClient;
use super::output::{self, or_dash};
use crate::http::admin::deliveries::{DeliveryBody, DeliveryList, RedeliveryBody};
use crate::http::admin::delivery_health::{DeliveryHealthBody, DeliveryHealthList, WindowBody};

/// Delivery subcommands.
#[derive(Debug, Subcommand)]
pub enum DeliveryCommand {
    /// List the instance's deliveries, newest first.
    List {
        /// registered, due, retry_at, unsettled, sent or failed.
        #[arg(long)]
        state: Option<String>,
        /// Only this application's (client_id).
        #[arg(long)]
        app: Option<String>,
        /// Only this session's.
        #[arg(long)]
        session: Option<String>,
        /// Only those registered at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only those registered before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Page size (1 to 500).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue from a previous page's cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one delivery and every attempt.
    Show {
        /// The session's id.
        session_id: String,
        /// The application's client_id.
        client_id: String,
    },
    /// Re-send deliveries that failed or are waiting, each with a freshly signed token: one
    /// (--session and --app), a session's (--session), or an application's failed ones
    /// (--app and --failed-since).
    #[command(group(ArgGroup::new("which").required(true).multiple(true).args(["session", "app"])))]
    Redeliver {
        /// The session.
        #[arg(long)]
        session: Option<String>,
        /// The application (client_id).
        #[arg(long)]
        app: Option<String>,
        /// With --app alone: re-send those that failed at or after this time (RFC 3339).
        #[arg(long, requires = "app", conflicts_with = "session")]
        failed_since: Option<String>,
    },
    /// How deliveries to each application went in the last hour and day: sent, retried,
    /// failed, latency, the current run of failed attempts and the last error.
    Health {
        /// Only this application (client_id), in detail.
        #[arg(long)]
        app: Option<String>,
    },
}

/// Runs a delivery subcommand.
pub async fn run(client: &ApiClient, json: bool, command: DeliveryCommand) -> anyhow::Result<()> {
    match command {
        DeliveryCommand::List {
            state,
            app,
            session,
            since,
            until,
            limit,
            cursor,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            for (name, value) in [
                ("state", state),
                ("client_id", app),
                ("session_id", session),
                ("since", since),
                ("until", until),
                ("cursor", cursor),
            ] {
                if let Some(value) = value {
                    query.push((name, value));
                }
            }
            let answer = client.get(&["back-channel-deliveries"], &query).await?;
            if json {
                output::json(&answer.body);
                return Ok(());
            }
            let list: DeliveryList = answer.parse()?;
            let rows: Vec<Vec<String>> = list
                .deliveries
                .iter()
                .map(|delivery| {
                    vec![
                        delivery.session_id.clone(),
                        delivery.client_id.clone(),
                        delivery.state.clone(),
                        delivery.attempts.to_string(),
                        or_dash(delivery.ended_at.as_deref()),
                        or_dash(delivery.last_error.as_deref()),
                    ]
                })
                .collect();
            output::table(
                &[
                    "SESSION_ID",
                    "CLIENT_ID",
                    "STATE",
                    "ATTEMPTS",
                    "ENDED_AT",
                    "LAST_ERROR",
                ],
                &rows,
            );
            if let Some(next) = list.next_cursor {
                println!("More: --cursor {next}");
            }
        }
        DeliveryCommand::Show {
            session_id,
            client_id,
        } => {
            let answer = client
                .get(
                    &[
                        "sessions",
                        &session_id,
                        "back-channel-deliveries",
                        &client_id,
                    ],
                    &[],
                )
                .await?;
            if json {
                output::json(&answer.body);
                return Ok(());
            }
            let delivery: DeliveryBody = answer.parse()?;
            show(&delivery);
        }
        DeliveryCommand::Redeliver {
            session,
            app,
            failed_since,
        } => {
            let answer = match (session, app, failed_since) {
                (Some(session), Some(app), None) => {
                    client
                        .post(
                            &[
                                "sessions",
                                &session,
                                "back-channel-deliveries",
                                &app,
                                "redeliver",
                            ],
                            None,
                        )
                        .await?
                }
                (Some(session), None, None) => {
                    client
                        .post(
                            &["sessions", &session, "back-channel-deliveries", "redeliver"],
                            None,
                        )
                        .await?
                }
                (None, Some(app), Some(since)) => {
                    client
                        .post(
                            &["applications", &app, "back-channel-deliveries", "redeliver"],
                            Some(&json!({ "failed_since": since })),
                        )
                        .await?
                }
                _ => anyhow::bail!(
                    "say which deliveries: --session S --app C (one), --session S (a session's), or --app C --failed-since TIME (an application's failed ones)"
                ),
            };
            if json {
                output::json(&answer.body);
                return Ok(());
            }
            let done: RedeliveryBody = answer.parse()?;
            println!("Queued {} deliveries again.", done.redelivered);
            for skipped in done.skipped {
                println!(
                    "Skipped {} in session {}: {}",
                    skipped.client_id, skipped.session_id, skipped.reason
                );
            }
        }
        DeliveryCommand::Health { app: Some(app) } => {
            let answer = client
                .get(&["applications", &app, "back-channel-health"], &[])
                .await?;
            if json {
                output::json(&answer.body);
                return Ok(());
            }
            let health: DeliveryHealthBody = answer.parse()?;
            show_health(&health);
        }
        DeliveryCommand::Health { app: None } => {
            let answer = client.get(&["back-channel-health"], &[]).await?;
            if json {
                output::json(&answer.body);
                return Ok(());
            }
            let list: DeliveryHealthList = answer.parse()?;
            health_table(&list);
        }
    }
    Ok(())
}

/// A latency in milliseconds for display.
fn millis(value: Option<u64>) -> String {
    value.map_or_else(|| "-".into(), |ms| format!("{ms} ms"))
}

fn health_table(list: &DeliveryHealthList) {
    let rows: Vec<Vec<String>> = list
        .applications
        .iter()
        .map(|app| {
            vec![
                app.client_id.clone(),
                app.name.clone(),
                app.last_hour.sent.to_string(),
                app.last_hour.retried.to_string(),
                app.last_hour.failed.to_string(),
                app.last_day.sent.to_string(),
                app.last_day.retried.to_string(),
                app.last_day.failed.to_string(),
                millis(app.last_day.latency_median_ms),
                millis(app.last_day.latency_p99_ms),
                app.consecutive_failures.to_string(),
                if app.alerting { "yes" } else { "no" }.into(),
                or_dash(app.last_error.as_deref()),
            ]
        })
        .collect();
    output::table(
        &[
            "CLIENT_ID",
            "NAME",
            "SENT_1H",
            "RETRIED_1H",
            "FAILED_1H",
            "SENT_24H",
            "RETRIED_24H",
            "FAILED_24H",
            "P50_24H",
            "P99_24H",
            "FAILING_RUN",
            "ALERT",
            "LAST_ERROR",
        ],
        &rows,
    );
    println!(
        "An application alerts after {} failed attempts in a row.",
        list.alert_consecutive_failures
    );
}

fn show_health(health: &DeliveryHealthBody) {
    let window = |window: &WindowBody| {
        format!(
            "{} sent, {} retried, {} failed; latency median {}, p99 {} ({} measured)",
            window.sent,
            window.retried,
            window.failed,
            millis(window.latency_median_ms),
            millis(window.latency_p99_ms),
            window.latency_samples
        )
    };
    output::fields(&[
        ("client_id", health.client_id.clone()),
        ("name", health.name.clone()),
        ("uri", or_dash(health.back_channel_logout_uri.as_deref())),
        ("last_hour", window(&health.last_hour)),
        ("last_day", window(&health.last_day)),
        (
            "consecutive_failures",
            health.consecutive_failures.to_string(),
        ),
        ("alerting", health.alerting.to_string()),
        ("last_error", or_dash(health.last_error.as_deref())),
        ("last_error_at", or_dash(health.last_error_at.as_deref())),
        ("last_sent_at", or_dash(health.last_sent_at.as_deref())),
    ]);
}

fn show(delivery: &DeliveryBody) {
    output::fields(&[
        ("session_id", delivery.session_id.clone()),
        ("client_id", delivery.client_id.clone()),
        ("uri", delivery.uri.clone()),
        ("state", delivery.state.clone()),
        ("attempts", delivery.attempts.to_string()),
        (
            "next_attempt_at",
            or_dash(delivery.next_attempt_at.as_deref()),
        ),
        ("last_error", or_dash(delivery.last_error.as_deref())),
        ("issuer", or_dash(delivery.triggered_at_origin.as_deref())),
        ("registered_at", delivery.registered_at.clone()),
        ("ended_at", or_dash(delivery.ended_at.as_deref())),
        ("settled_at", or_dash(delivery.settled_at.as_deref())),
    ]);
    let rows: Vec<Vec<String>> = delivery
        .history
        .iter()
        .map(|entry| {
            let what = match &entry.requested_by {
                Some(by) => format!("redelivery asked by token {by}"),
                None => or_dash(entry.outcome.as_deref()),
            };
            vec![
                or_dash(entry.at.as_deref()),
                what,
                entry
                    .http_status
                    .map(|status| status.to_string())
                    .unwrap_or_else(|| "-".into()),
                entry
                    .duration_ms
                    .map(|ms| format!("{ms} ms"))
                    .unwrap_or_else(|| "-".into()),
                or_dash(entry.error.as_deref()),
            ]
        })
        .collect();
    println!();
    output::table(&["AT", "EVENT", "HTTP", "DURATION", "ERROR"], &rows);
}
