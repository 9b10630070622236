//! The `session_activity` read model: per (instance, minute) how many sessions began and how
//! many ended, a day of minutes kept, for the console overview's "sign-ins and session ends in
//! the last hour and day". Counted from events because the `sessions` table records when a
//! session began but not when it ended; a minute table keeps each figure one bounded query
//! however many sessions a day sees (a mass sign-out adds to one row, not 100,000).

use std::collections::BTreeMap;

use async_trait::async_trait;
use eventstore::{ApplyError, BoxError, Projection, ReadModelTx, StoredEvent};

use super::{Session, SessionEvent};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;
use crate::minutes::{KEPT_MS, Windows, minute_of};
use crate::service::Domain;

/// Folds session starts and ends into `session_activity_minutes`.
pub struct SessionActivityProjection;

/// Adds a batch's counts to one instance's minute.
const ADD_TO_MINUTE: &str =
    "INSERT INTO session_activity_minutes (instance_id, minute_ms, started, ended)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (instance_id, minute_ms) DO UPDATE SET
        started = session_activity_minutes.started + excluded.started,
        ended = session_activity_minutes.ended + excluded.ended";

/// Forgets an instance's minutes older than a day before its newest.
const FORGET_MINUTES: &str =
    "DELETE FROM session_activity_minutes WHERE instance_id = $1 AND minute_ms < $2";

/// The counts since `$2` (the hour) and since `$3` (the day).
const WINDOW_COUNTS: &str = "SELECT
        CAST(COALESCE(SUM(CASE WHEN minute_ms >= $2 THEN started ELSE 0 END), 0) AS BIGINT),
        CAST(COALESCE(SUM(CASE WHEN minute_ms >= $2 THEN ended ELSE 0 END), 0) AS BIGINT),
        CAST(COALESCE(SUM(started), 0) AS BIGINT),
        CAST(COALESCE(SUM(ended), 0) AS BIGINT)
     FROM session_activity_minutes WHERE instance_id = $1 AND minute_ms >= $3";

/// A batch's (started, ended) per (instance, minute), and each instance's newest minute.
#[derive(Debug, Default, PartialEq)]
struct Folded<'a> {
    minutes: BTreeMap<(&'a str, i64), (i64, i64)>,
    newest: BTreeMap<&'a str, i64>,
}

fn fold(events: &[StoredEvent]) -> Result<Folded<'_>, ApplyError> {
    let mut folded = Folded::default();
    for (index, event) in events.iter().enumerate() {
        let ended = match decode::<SessionEvent>(event) {
            Ok(SessionEvent::Created(_)) => false,
            Ok(SessionEvent::Terminated(_)) => true,
            Err(error) => {
                return Err(ApplyError {
                    index,
                    source: error.into(),
                });
            }
        };
        let instance_id = event.aggregate.instance_id.as_str();
        let minute_ms = minute_of(event.created_at.timestamp_millis());
        let counts = folded.minutes.entry((instance_id, minute_ms)).or_default();
        if ended {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
        let newest = folded.newest.entry(instance_id).or_insert(minute_ms);
        *newest = (*newest).max(minute_ms);
    }
    Ok(folded)
}

impl Folded<'_> {
    async fn write(self, tx: &mut dyn ReadModelTx) -> Result<(), BoxError> {
        for ((instance_id, minute_ms), (started, ended)) in self.minutes {
            tx.execute(
                ADD_TO_MINUTE,
                &[
                    instance_id.into(),
                    minute_ms.into(),
                    started.into(),
                    ended.into(),
                ],
            )
            .await?;
        }
        for (instance_id, newest) in self.newest {
            tx.execute(
                FORGET_MINUTES,
                &[instance_id.into(), (newest - KEPT_MS).into()],
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Projection for SessionActivityProjection {
    fn name(&self) -> &'static str {
        "session_activity"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[Session::TYPE]
    }

    // Starts at the beginning of the log (the default): installed on a store with history,
    // the last day's figures are right at once.

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS session_activity_minutes (
                instance_id TEXT   NOT NULL,
                minute_ms   BIGINT NOT NULL,
                started     BIGINT NOT NULL,
                ended       BIGINT NOT NULL,
                PRIMARY KEY (instance_id, minute_ms)
            )"]
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
        fold(events)?
            .write(tx)
            .await
            .map_err(|source| ApplyError { index: 0, source })
    }
}

/// Sessions begun and ended in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounts {
    /// Sessions begun (sign-ins).
    pub started: u64,
    /// Sessions ended, for any reason (logout, sign-out, an admin, expiry).
    pub ended: u64,
}

/// Sign-ins and session ends lately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionActivity {
    /// The minute in progress and the 59 before it.
    pub last_hour: SessionCounts,
    /// The minute in progress and the 1,439 before it.
    pub last_day: SessionCounts,
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Domain {
    /// How many sessions of an instance began and ended in the last hour and day. The read
    /// model is caught up first, so a sign-in a moment ago is counted.
    pub async fn session_activity(
        &self,
        instance_id: &str,
    ) -> Result<SessionActivity, DomainError> {
        self.runner
            .catch_up(SessionActivityProjection.name())
            .await?;
        let Windows {
            hour_from,
            day_from,
        } = Windows::ending_at(self.now());
        let rows = self
            .store
            .query(
                WINDOW_COUNTS,
                &[instance_id.into(), hour_from.into(), day_from.into()],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(SessionActivity::default());
        };
        Ok(SessionActivity {
            last_hour: SessionCounts {
                started: count(row.int(0)?),
                ended: count(row.int(1)?),
            },
            last_day: SessionCounts {
                started: count(row.int(2)?),
                ended: count(row.int(3)?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use eventstore::{AggregateRef, Position};

    use super::*;
    use crate::aggregate::DomainEvent;
    use crate::session::{SessionCreated, TerminationReason};

    fn stored(instance_id: &str, event: &SessionEvent, at: &str) -> StoredEvent {
        StoredEvent {
            aggregate: AggregateRef::new(instance_id, Session::TYPE, "s"),
            sequence: 1,
            position: Position::default(),
            event_type: event.event_type().to_owned(),
            revision: 1,
            payload: event.payload(),
            creator: "test".into(),
            created_at: at.parse::<DateTime<Utc>>().unwrap(),
        }
    }

    /// Given a batch of sign-ins and ends in two minutes of one instance and one of another,
    /// the fold adds each minute's counts once and knows each instance's newest minute (from
    /// which a day is kept).
    #[test]
    fn a_batch_counts_starts_and_ends_per_instance_and_minute() {
        let now = Utc::now();
        let session = Session::default();
        let created = session
            .create(SessionCreated {
                user_id: "u".into(),
                cookie_hash: "h".into(),
                auth_time: now,
                expires_at: now,
                user_agent: None,
            })
            .unwrap()
            .remove(0);
        let mut live = Session::default();
        live.apply(&created);
        let ended = live
            .terminate(TerminationReason::Admin, "https://id.example.com")
            .unwrap()
            .remove(0);
        let events = [
            stored("i", &created, "2026-11-29T10:00:01Z"),
            stored("i", &created, "2026-11-29T10:00:59Z"),
            stored("i", &ended, "2026-11-29T10:00:30Z"),
            stored("i", &ended, "2026-11-29T10:01:00Z"),
            stored("j", &created, "2026-11-29T09:00:00Z"),
        ];
        let folded = fold(&events).unwrap_or_else(|_| panic!("session events fold"));
        let minute = |at: &str| at.parse::<DateTime<Utc>>().unwrap().timestamp_millis();
        let expected: BTreeMap<(&str, i64), (i64, i64)> = [
            (("i", minute("2026-11-29T10:00:00Z")), (2, 1)),
            (("i", minute("2026-11-29T10:01:00Z")), (0, 1)),
            (("j", minute("2026-11-29T09:00:00Z")), (1, 0)),
        ]
        .into_iter()
        .collect();
        assert_eq!(folded.minutes, expected);
        assert_eq!(folded.newest["i"], minute("2026-11-29T10:01:00Z"));
        assert_eq!(folded.newest["j"], minute("2026-11-29T09:00:00Z"));
    }
}
