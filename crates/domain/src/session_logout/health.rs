//! The `back_channel_health` read model: how deliveries to each application went lately, for
//! operators (the admin API's back-channel health, `portcullis delivery health`).
//!
//! Two tables, folded from the `sent`, `failed` and `retry_scheduled` events:
//! - `back_channel_health_minutes`: per (instance, application, minute) the deliveries sent,
//!   the attempts that failed and were retried, and the deliveries given up; a day of minutes
//!   is kept. Counted from events rather than from `back_channel_deliveries` rows, because a
//!   row keeps only its delivery's latest outcome: retries leave no count there, and a
//!   redelivery wipes the failure it repairs.
//! - `back_channel_health`: per (instance, application) the current run of failed attempts
//!   (retried or given up since the application last acknowledged one), the last error and
//!   when it happened, and when the last delivery was sent.
//!
//! Both live in the store, so a restarted process and every replica show the same numbers.
//! The latency from a session's end to the application's acknowledgement is read from
//! `back_channel_deliveries`, which holds both times of every sent delivery.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use eventstore::{ApplyError, BoxError, EventStore, Projection, ReadModelTx, StoredEvent};

use super::{AttemptRecord, SessionLogout, SessionLogoutEvent};
use crate::aggregate::{Aggregate, decode};
use crate::application::ApplicationView;
use crate::error::DomainError;
use crate::minutes::{KEPT_MS, Windows, minute_of};
use crate::service::Domain;

/// Folds delivery outcomes into `back_channel_health` and `back_channel_health_minutes`.
pub struct BackChannelHealthProjection;

/// Adds a batch's counts to one application's minute.
const ADD_TO_MINUTE: &str = "INSERT INTO back_channel_health_minutes
        (instance_id, client_id, minute_ms, sent, retried, failed)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (instance_id, client_id, minute_ms) DO UPDATE SET
        sent = back_channel_health_minutes.sent + excluded.sent,
        retried = back_channel_health_minutes.retried + excluded.retried,
        failed = back_channel_health_minutes.failed + excluded.failed";

/// Forgets an application's minutes older than a day before its newest.
const FORGET_MINUTES: &str = "DELETE FROM back_channel_health_minutes
     WHERE instance_id = $1 AND client_id = $2 AND minute_ms < $3";

/// The batch's failures lengthen the stored run (no delivery was sent in the batch).
const LENGTHEN_RUN: &str = "INSERT INTO back_channel_health
        (instance_id, client_id, consecutive_failures, last_error, last_error_at_ms, last_sent_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (instance_id, client_id) DO UPDATE SET
        consecutive_failures = back_channel_health.consecutive_failures + excluded.consecutive_failures,
        last_error = COALESCE(excluded.last_error, back_channel_health.last_error),
        last_error_at_ms = COALESCE(excluded.last_error_at_ms, back_channel_health.last_error_at_ms),
        last_sent_at_ms = COALESCE(excluded.last_sent_at_ms, back_channel_health.last_sent_at_ms)";

/// A delivery sent in the batch ended the stored run; the failures after it start a new one.
const RESTART_RUN: &str = "INSERT INTO back_channel_health
        (instance_id, client_id, consecutive_failures, last_error, last_error_at_ms, last_sent_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (instance_id, client_id) DO UPDATE SET
        consecutive_failures = excluded.consecutive_failures,
        last_error = COALESCE(excluded.last_error, back_channel_health.last_error),
        last_error_at_ms = COALESCE(excluded.last_error_at_ms, back_channel_health.last_error_at_ms),
        last_sent_at_ms = COALESCE(excluded.last_sent_at_ms, back_channel_health.last_sent_at_ms)";

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Retried,
    Failed,
}

/// One attempt as the health read model counts it.
struct Attempt {
    client_id: String,
    outcome: Outcome,
    /// When the attempt started (when the event was recorded, for events from before
    /// attempts were kept).
    at_ms: i64,
    error: Option<String>,
}

fn attempt_of(event: &StoredEvent) -> Result<Option<Attempt>, DomainError> {
    let at_ms = |record: Option<&AttemptRecord>| {
        record
            .map_or(event.created_at, |record| record.at)
            .timestamp_millis()
    };
    Ok(Some(match decode::<SessionLogoutEvent>(event)? {
        SessionLogoutEvent::Sent(sent) => Attempt {
            at_ms: at_ms(sent.attempt.as_ref()),
            client_id: sent.client_id,
            outcome: Outcome::Sent,
            error: None,
        },
        SessionLogoutEvent::Failed(failed) => Attempt {
            at_ms: at_ms(failed.attempt.as_ref()),
            client_id: failed.client_id,
            outcome: Outcome::Failed,
            // The reason says why it was given up ("gave up after 8 attempts; the last: …").
            error: Some(failed.reason),
        },
        SessionLogoutEvent::RetryScheduled(retry) => Attempt {
            at_ms: at_ms(Some(&retry.attempt)),
            client_id: retry.client_id,
            outcome: Outcome::Retried,
            error: Some(
                retry
                    .attempt
                    .error
                    .unwrap_or_else(|| "the attempt failed".to_owned()),
            ),
        },
        SessionLogoutEvent::Registered(_) | SessionLogoutEvent::RedeliveryRequested(_) => {
            return Ok(None);
        }
    }))
}

/// A batch's counts for one application's minute: sent, retried, failed.
type MinuteCounts = [i64; 3];

/// What a batch did to one application's run of failures.
#[derive(Debug, Default)]
struct RunChange {
    /// A delivery was sent: the stored run ended, and `failures` counts from zero after it.
    restarted: bool,
    failures: i64,
    last_error: Option<(String, i64)>,
    last_sent_at_ms: Option<i64>,
    newest_minute_ms: i64,
}

/// A batch folded in memory, so each row it touches is written once.
#[derive(Default)]
struct Folded<'a> {
    minutes: BTreeMap<(&'a str, String, i64), MinuteCounts>,
    runs: BTreeMap<(&'a str, String), RunChange>,
}

impl<'a> Folded<'a> {
    fn add(&mut self, instance_id: &'a str, attempt: Attempt) {
        let minute_ms = minute_of(attempt.at_ms);
        let counts = self
            .minutes
            .entry((instance_id, attempt.client_id.clone(), minute_ms))
            .or_default();
        let slot = match attempt.outcome {
            Outcome::Sent => 0,
            Outcome::Retried => 1,
            Outcome::Failed => 2,
        };
        counts[slot] += 1;
        let run = self
            .runs
            .entry((instance_id, attempt.client_id))
            .or_default();
        run.newest_minute_ms = run.newest_minute_ms.max(minute_ms);
        match attempt.outcome {
            Outcome::Sent => {
                run.restarted = true;
                run.failures = 0;
                run.last_sent_at_ms = Some(attempt.at_ms);
            }
            Outcome::Retried | Outcome::Failed => {
                run.failures += 1;
                run.last_error = attempt.error.map(|error| (error, attempt.at_ms));
            }
        }
    }

    async fn write(self, tx: &mut dyn ReadModelTx) -> Result<(), BoxError> {
        for ((instance_id, client_id, minute_ms), [sent, retried, failed]) in self.minutes {
            tx.execute(
                ADD_TO_MINUTE,
                &[
                    instance_id.into(),
                    client_id.into(),
                    minute_ms.into(),
                    sent.into(),
                    retried.into(),
                    failed.into(),
                ],
            )
            .await?;
        }
        for ((instance_id, client_id), run) in self.runs {
            let (last_error, last_error_at_ms) = run.last_error.unzip();
            tx.execute(
                if run.restarted {
                    RESTART_RUN
                } else {
                    LENGTHEN_RUN
                },
                &[
                    instance_id.into(),
                    client_id.as_str().into(),
                    run.failures.into(),
                    last_error.into(),
                    eventstore::SqlValue::Int(last_error_at_ms),
                    eventstore::SqlValue::Int(run.last_sent_at_ms),
                ],
            )
            .await?;
            // Once per application and batch: the minutes stay a day's worth.
            tx.execute(
                FORGET_MINUTES,
                &[
                    instance_id.into(),
                    client_id.into(),
                    (run.newest_minute_ms - KEPT_MS).into(),
                ],
            )
            .await?;
        }
        Ok(())
    }
}

fn fold(events: &[StoredEvent]) -> Result<Folded<'_>, ApplyError> {
    let mut folded = Folded::default();
    for (index, event) in events.iter().enumerate() {
        let attempt = attempt_of(event).map_err(|error| ApplyError {
            index,
            source: error.into(),
        })?;
        if let Some(attempt) = attempt {
            folded.add(&event.aggregate.instance_id, attempt);
        }
    }
    Ok(folded)
}

#[async_trait]
impl Projection for BackChannelHealthProjection {
    fn name(&self) -> &'static str {
        "back_channel_health"
    }

    /// Nothing reads it right after a write, but the notifier's outcome records wait for every
    /// read model of `session_logout` events: where the store can, it writes this one in the
    /// same transaction instead of making each record wait for a second commit.
    fn on_hot_path(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[SessionLogout::TYPE]
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            "session_logout.back_channel.sent",
            "session_logout.back_channel.failed",
            "session_logout.back_channel.retry_scheduled",
        ]
    }

    // Starts at the beginning of the log (the default): installed on a store with history,
    // the last day's figures and the current runs are right at once.

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS back_channel_health_minutes (
                instance_id TEXT   NOT NULL,
                client_id   TEXT   NOT NULL,
                minute_ms   BIGINT NOT NULL,
                sent        BIGINT NOT NULL,
                retried     BIGINT NOT NULL,
                failed      BIGINT NOT NULL,
                PRIMARY KEY (instance_id, client_id, minute_ms)
            )",
            "CREATE TABLE IF NOT EXISTS back_channel_health (
                instance_id          TEXT   NOT NULL,
                client_id            TEXT   NOT NULL,
                consecutive_failures BIGINT NOT NULL,
                last_error           TEXT,
                last_error_at_ms     BIGINT,
                last_sent_at_ms      BIGINT,
                PRIMARY KEY (instance_id, client_id)
            )",
        ]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let folded = fold(std::slice::from_ref(event)).map_err(|failure| failure.source)?;
        folded.write(tx).await
    }

    async fn apply_batch(
        &self,
        tx: &mut dyn ReadModelTx,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError> {
        // A write error is the batch's, not one event's: blame its first.
        fold(events)?
            .write(tx)
            .await
            .map_err(|source| ApplyError { index: 0, source })
    }
}

/// How deliveries to one application went in one window.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowHealth {
    /// Deliveries the application acknowledged.
    pub sent: u64,
    /// Attempts that failed in a way that may recover, and were scheduled again.
    pub retried: u64,
    /// Deliveries given up (refused, or out of attempts).
    pub failed: u64,
    /// Time from the session's end to the acknowledgement, over the deliveries sent in the
    /// window; none when none was.
    pub latency: Option<Latency>,
}

/// Time from a session's end to its application acknowledging the logout token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Latency {
    /// Sent deliveries measured.
    pub samples: u64,
    /// The median (nearest rank), in milliseconds.
    pub median_ms: u64,
    /// The 99th percentile (nearest rank), in milliseconds.
    pub p99_ms: u64,
}

/// How deliveries to one application went lately.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryHealth {
    /// The application.
    pub client_id: String,
    /// The minute in progress and the 59 before it.
    pub last_hour: WindowHealth,
    /// The minute in progress and the 1,439 before it.
    pub last_day: WindowHealth,
    /// Attempts failed (retried or given up) since the application last acknowledged one.
    pub consecutive_failures: u64,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// When that attempt started.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When the last acknowledged attempt started.
    pub last_sent_at: Option<DateTime<Utc>>,
}

impl DeliveryHealth {
    /// The health of an application nothing was ever delivered to.
    pub fn unrecorded(client_id: &str) -> Self {
        DeliveryHealth {
            client_id: client_id.to_owned(),
            last_hour: WindowHealth::default(),
            last_day: WindowHealth::default(),
            consecutive_failures: 0,
            last_error: None,
            last_error_at: None,
            last_sent_at: None,
        }
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn millis(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(value).unwrap_or_default()
}

/// The latencies of the deliveries sent since `$3`, per application: the rows at the median's
/// and the 99th percentile's nearest rank. Computed by the database over the window's rows
/// (through `back_channel_sent_latency`), so no more than two rows per application travel,
/// however many deliveries the window holds.
const LATENCY_RANKS: &str = "SELECT client_id, samples, latency_ms FROM (
        SELECT client_id, settled_at_ms - ended_at_ms AS latency_ms,
            ROW_NUMBER() OVER (PARTITION BY client_id ORDER BY settled_at_ms - ended_at_ms) AS nth,
            COUNT(*) OVER (PARTITION BY client_id) AS samples
        FROM back_channel_deliveries
        WHERE instance_id = $1 AND ($2 IS NULL OR client_id = $2) AND state = 'sent'
          AND settled_at_ms >= $3 AND ended_at_ms IS NOT NULL
     ) ranked
     WHERE nth = (samples + 1) / 2 OR nth = (99 * samples + 99) / 100
     ORDER BY client_id, nth";

/// Per application, the counts since `$3` (the hour) and since `$4` (the day).
const WINDOW_COUNTS: &str = "SELECT client_id,
        CAST(SUM(CASE WHEN minute_ms >= $3 THEN sent ELSE 0 END) AS BIGINT),
        CAST(SUM(CASE WHEN minute_ms >= $3 THEN retried ELSE 0 END) AS BIGINT),
        CAST(SUM(CASE WHEN minute_ms >= $3 THEN failed ELSE 0 END) AS BIGINT),
        CAST(SUM(sent) AS BIGINT), CAST(SUM(retried) AS BIGINT), CAST(SUM(failed) AS BIGINT)
     FROM back_channel_health_minutes
     WHERE instance_id = $1 AND ($2 IS NULL OR client_id = $2) AND minute_ms >= $4
     GROUP BY client_id";

const RUNS: &str =
    "SELECT client_id, consecutive_failures, last_error, last_error_at_ms, last_sent_at_ms
     FROM back_channel_health WHERE instance_id = $1 AND ($2 IS NULL OR client_id = $2)";

/// The entry of `client_id`, made when it has none yet.
fn of_application<'a>(
    health: &'a mut BTreeMap<String, DeliveryHealth>,
    client_id: &str,
) -> &'a mut DeliveryHealth {
    health
        .entry(client_id.to_owned())
        .or_insert_with(|| DeliveryHealth::unrecorded(client_id))
}

/// The latency of each application's deliveries sent since `since_ms`.
async fn latencies(
    store: &dyn EventStore,
    instance_id: &str,
    client_id: Option<&str>,
    since_ms: i64,
) -> Result<BTreeMap<String, Latency>, DomainError> {
    let rows = store
        .query(
            LATENCY_RANKS,
            &[
                instance_id.into(),
                eventstore::SqlValue::Text(client_id.map(str::to_owned)),
                since_ms.into(),
            ],
        )
        .await?;
    let mut latencies: BTreeMap<String, Latency> = BTreeMap::new();
    for row in &rows {
        let latency_ms = count(row.int(2)?);
        // Rows come median first: the first sets both, a second (a higher rank) the p99.
        latencies
            .entry(row.text(0)?.to_owned())
            .and_modify(|latency| latency.p99_ms = latency_ms)
            .or_insert(Latency {
                samples: count(row.int(1)?),
                median_ms: latency_ms,
                p99_ms: latency_ms,
            });
    }
    Ok(latencies)
}

/// Applications read per page while pairing them with their health.
const APPLICATION_PAGE: u32 = 500;

impl Domain {
    /// Every application of the instance with a back-channel logout URI or with deliveries
    /// recorded, by client id, with how deliveries to it went lately (none recorded yet:
    /// [`DeliveryHealth::unrecorded`]). Applications removed since are left out, with their
    /// history.
    pub async fn delivery_health_of_applications(
        &self,
        instance_id: &str,
    ) -> Result<Vec<(ApplicationView, DeliveryHealth)>, DomainError> {
        let mut health = self.delivery_health(instance_id, None).await?;
        let mut paired = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .applications(instance_id, &after, APPLICATION_PAGE)
                .await?;
            let full = page.len() == APPLICATION_PAGE as usize;
            if let Some(last) = page.last() {
                after = last.client_id.clone();
            }
            for app in page {
                let recorded = health.remove(&app.client_id);
                if recorded.is_none() && app.config.back_channel_logout_uri.is_none() {
                    continue;
                }
                let recorded =
                    recorded.unwrap_or_else(|| DeliveryHealth::unrecorded(&app.client_id));
                paired.push((app, recorded));
            }
            if !full {
                return Ok(paired);
            }
        }
    }

    /// How deliveries to the instance's applications (or to `client_id` alone) went lately, by
    /// client id. An application nothing was ever delivered to is absent.
    pub async fn delivery_health(
        &self,
        instance_id: &str,
        client_id: Option<&str>,
    ) -> Result<BTreeMap<String, DeliveryHealth>, DomainError> {
        let store = self.store.as_ref();
        let Windows {
            hour_from,
            day_from,
        } = Windows::ending_at(self.now());
        let client = || eventstore::SqlValue::Text(client_id.map(str::to_owned));
        let mut health: BTreeMap<String, DeliveryHealth> = BTreeMap::new();
        let counts = store
            .query(
                WINDOW_COUNTS,
                &[
                    instance_id.into(),
                    client(),
                    hour_from.into(),
                    day_from.into(),
                ],
            )
            .await?;
        for row in &counts {
            let window = |first: usize| -> Result<WindowHealth, DomainError> {
                Ok(WindowHealth {
                    sent: count(row.int(first)?),
                    retried: count(row.int(first + 1)?),
                    failed: count(row.int(first + 2)?),
                    latency: None,
                })
            };
            let app = of_application(&mut health, row.text(0)?);
            app.last_hour = window(1)?;
            app.last_day = window(4)?;
        }
        let runs = store.query(RUNS, &[instance_id.into(), client()]).await?;
        for row in &runs {
            let app = of_application(&mut health, row.text(0)?);
            app.consecutive_failures = count(row.int(1)?);
            app.last_error = row.opt_text(2)?.map(str::to_owned);
            app.last_error_at = row.opt_int(3)?.map(millis);
            app.last_sent_at = row.opt_int(4)?.map(millis);
        }
        for (client_id, latency) in latencies(store, instance_id, client_id, hour_from).await? {
            of_application(&mut health, &client_id).last_hour.latency = Some(latency);
        }
        for (client_id, latency) in latencies(store, instance_id, client_id, day_from).await? {
            of_application(&mut health, &client_id).last_day.latency = Some(latency);
        }
        Ok(health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(client_id: &str, outcome: Outcome, at_ms: i64, error: Option<&str>) -> Attempt {
        Attempt {
            client_id: client_id.into(),
            outcome,
            at_ms,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn a_batch_counts_by_minute_and_a_sent_delivery_restarts_the_run() {
        let mut folded = Folded::default();
        folded.add(
            "i",
            attempt("a", Outcome::Retried, 61_000, Some("HTTP 503")),
        );
        folded.add("i", attempt("a", Outcome::Sent, 62_000, None));
        folded.add(
            "i",
            attempt("a", Outcome::Failed, 130_000, Some("HTTP 400")),
        );
        folded.add("i", attempt("b", Outcome::Retried, 1_000, Some("timeout")));
        assert_eq!(folded.minutes[&("i", "a".into(), 60_000)], [1, 1, 0]);
        assert_eq!(folded.minutes[&("i", "a".into(), 120_000)], [0, 0, 1]);
        let a = &folded.runs[&("i", "a".into())];
        assert!(a.restarted);
        assert_eq!(a.failures, 1);
        assert_eq!(a.last_error, Some(("HTTP 400".into(), 130_000)));
        assert_eq!(
            (a.last_sent_at_ms, a.newest_minute_ms),
            (Some(62_000), 120_000)
        );
        let b = &folded.runs[&("i", "b".into())];
        assert!(!b.restarted);
        assert_eq!((b.failures, b.newest_minute_ms), (1, 0));
    }
}
