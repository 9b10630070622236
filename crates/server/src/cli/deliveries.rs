//! `portcullis delivery …`: back-channel deliveries — list with filters, show one with its
//! attempts, re-send.

use clap::{ArgGroup, Subcommand};
use serde_json::json;

use super::client::ApiClient;
use super::output::{self, or_dash};
use crate::http::admin::deliveries::{DeliveryBody, DeliveryList, RedeliveryBody};

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
    }
    Ok(())
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
