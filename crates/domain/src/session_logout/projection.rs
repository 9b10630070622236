//! The `back_channel_deliveries` read model: one row per (session, application) registration,
//! from `registered` through `pending` (the session ended) to `sent` or `failed`. The notifier
//! finds its work here and keeps its claims and retry schedule in the same rows (columns no
//! event writes), so a restarted or second process sees what is due and what is being worked.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use eventstore::{
    ApplyError, BoxError, EventStore, Projection, ReadModelTx, SqlRow, SqlValue, StartFrom,
    StoredEvent,
};

use super::{SessionLogout, SessionLogoutEvent};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;
use crate::session::{Session, SessionEvent};

/// Folds `session_logout` and `session` events into `back_channel_deliveries`.
pub struct BackChannelDeliveryProjection;

/// Consecutive events of a batch that one statement writes together.
#[derive(Debug, PartialEq)]
enum RunKey<'a> {
    /// Sessions of one instance ended at one moment at one origin (a mass sign-out).
    Ended {
        instance_id: &'a str,
        origin: String,
        at_ms: i64,
    },
    /// One application's deliveries settled alike (the notifier records them in batches).
    Settled {
        instance_id: &'a str,
        client_id: String,
        state: &'static str,
        attempts: u32,
        error: Option<String>,
        at_ms: i64,
    },
}

/// Many sessions' registrations of one instance ($1) become pending at once.
static ENDED_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE back_channel_deliveries SET state = 'pending', triggered_at_origin = $2, ended_at_ms = $3
         WHERE instance_id = $1 AND state = 'registered' AND session_id IN ({})",
        eventstore::key_placeholders(4)
    )
});

/// One application's ($2) deliveries in many sessions of one instance ($1) settle alike.
static SETTLED_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE back_channel_deliveries SET state = $3, attempts = $4, last_error = $5, settled_at_ms = $6
         WHERE instance_id = $1 AND client_id = $2 AND session_id IN ({})",
        eventstore::key_placeholders(7)
    )
});

impl RunKey<'_> {
    /// The statement that writes a run with this key, and its parameters before the session
    /// ids.
    fn statement(&self) -> (&'static str, Vec<SqlValue>) {
        match self {
            RunKey::Ended {
                instance_id,
                origin,
                at_ms,
            } => (
                ENDED_MANY.as_str(),
                vec![
                    (*instance_id).into(),
                    origin.as_str().into(),
                    (*at_ms).into(),
                ],
            ),
            RunKey::Settled {
                instance_id,
                client_id,
                state,
                attempts,
                error,
                at_ms,
            } => (
                SETTLED_MANY.as_str(),
                vec![
                    (*instance_id).into(),
                    client_id.as_str().into(),
                    (*state).into(),
                    i64::from(*attempts).into(),
                    error.clone().into(),
                    (*at_ms).into(),
                ],
            ),
        }
    }
}

fn run_key(event: &StoredEvent) -> Option<RunKey<'_>> {
    let instance_id = event.aggregate.instance_id.as_str();
    let at_ms = event.created_at.timestamp_millis();
    if event.aggregate.aggregate_type == Session::TYPE {
        let Ok(SessionEvent::Terminated(ended)) = decode::<SessionEvent>(event) else {
            return None;
        };
        return Some(RunKey::Ended {
            instance_id,
            origin: ended.triggered_at_origin,
            at_ms,
        });
    }
    let (client_id, state, attempts, error) = match decode::<SessionLogoutEvent>(event).ok()? {
        SessionLogoutEvent::Registered(_)
        | SessionLogoutEvent::RetryScheduled(_)
        | SessionLogoutEvent::RedeliveryRequested(_) => return None,
        SessionLogoutEvent::Sent(sent) => (sent.client_id, "sent", sent.attempts, None),
        SessionLogoutEvent::Failed(failed) => (
            failed.client_id,
            "failed",
            failed.attempts,
            Some(failed.reason),
        ),
    };
    Some(RunKey::Settled {
        instance_id,
        client_id,
        state,
        attempts,
        error,
        at_ms,
    })
}

#[async_trait]
impl Projection for BackChannelDeliveryProjection {
    fn name(&self) -> &'static str {
        "back_channel_deliveries"
    }

    fn on_hot_path(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[SessionLogout::TYPE, Session::TYPE]
    }

    /// Installed on a store that already holds ended sessions, it must not notify them again
    /// (or for the first time, years late): it starts at the end of the log.
    fn start_from(&self) -> StartFrom {
        StartFrom::End
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS back_channel_deliveries (
                instance_id         TEXT    NOT NULL,
                session_id          TEXT    NOT NULL,
                client_id           TEXT    NOT NULL,
                uri                 TEXT    NOT NULL,
                user_id             TEXT    NOT NULL,
                signing_alg         TEXT    NOT NULL,
                state               TEXT    NOT NULL,
                triggered_at_origin TEXT,
                registered_at_ms    BIGINT  NOT NULL,
                ended_at_ms         BIGINT,
                settled_at_ms       BIGINT,
                attempts            BIGINT  NOT NULL,
                last_error          TEXT,
                next_attempt_at_ms  BIGINT  NOT NULL,
                claimed_until_ms    BIGINT  NOT NULL,
                claimed_by          TEXT,
                PRIMARY KEY (instance_id, session_id, client_id)
            )",
            // Partial indexes over pending rows only: the notifier's claims walk them in the
            // order sessions ended, and settled rows drop out. An index led by `state` made the
            // planner pick it for "this session's registered rows", a scan of every registered
            // row per ended session (quadratic in a mass logout).
            "DROP INDEX IF EXISTS back_channel_due",
            "CREATE INDEX IF NOT EXISTS back_channel_pending ON back_channel_deliveries (ended_at_ms) WHERE state = 'pending'",
            "CREATE INDEX IF NOT EXISTS back_channel_claims ON back_channel_deliveries (claimed_by) WHERE state = 'pending'",
            "CREATE INDEX IF NOT EXISTS back_channel_by_client ON back_channel_deliveries (instance_id, client_id)",
            // The instance-wide listing, newest registration first, page by page.
            "CREATE INDEX IF NOT EXISTS back_channel_by_time ON back_channel_deliveries (instance_id, registered_at_ms, session_id, client_id)",
            // Sent deliveries by the time they were acknowledged: the latency figures of the
            // back-channel health read the last hour's and day's (`health.rs`).
            // It covers what the latency figures read (client and end time), so ranking a
            // day's latencies never visits the rows; it replaced `back_channel_sent_by_time`.
            "DROP INDEX IF EXISTS back_channel_sent_by_time",
            "CREATE INDEX IF NOT EXISTS back_channel_sent_latency ON back_channel_deliveries (instance_id, settled_at_ms, client_id, ended_at_ms) WHERE state = 'sent'",
            // Counting an instance's failed and pending deliveries without visiting its
            // registered ones (partial, so only a query naming the state can use them; see
            // `counts_of_instance`). `back_channel_pending` has no instance column, so the
            // planner walked the instance's every row for the pending count.
            "CREATE INDEX IF NOT EXISTS back_channel_failed ON back_channel_deliveries (instance_id) WHERE state = 'failed'",
            "CREATE INDEX IF NOT EXISTS back_channel_pending_of_instance ON back_channel_deliveries (instance_id) WHERE state = 'pending'",
        ]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let instance_id = || SqlValue::from(event.aggregate.instance_id.as_str());
        let session_id = || SqlValue::from(event.aggregate.aggregate_id.as_str());
        let at = SqlValue::from(event.created_at.timestamp_millis());
        if event.aggregate.aggregate_type == Session::TYPE {
            if let SessionEvent::Terminated(ended) = decode::<SessionEvent>(event)? {
                tx.execute(
                    "UPDATE back_channel_deliveries SET state = 'pending', triggered_at_origin = $3, ended_at_ms = $4
                     WHERE instance_id = $1 AND session_id = $2 AND state = 'registered'",
                    &[instance_id(), session_id(), ended.triggered_at_origin.into(), at],
                )
                .await?;
            }
            return Ok(());
        }
        let (client_id, state, attempts, error) = match decode::<SessionLogoutEvent>(event)? {
            SessionLogoutEvent::Registered(registered) => {
                tx.execute(
                    "INSERT INTO back_channel_deliveries (instance_id, session_id, client_id, uri, user_id, signing_alg,
                        state, registered_at_ms, attempts, next_attempt_at_ms, claimed_until_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, 'registered', $7, 0, 0, 0)
                     ON CONFLICT (instance_id, session_id, client_id) DO NOTHING",
                    &[
                        instance_id(),
                        session_id(),
                        registered.client_id.into(),
                        registered.uri.into(),
                        registered.user_id.into(),
                        registered.signing_alg.into(),
                        at,
                    ],
                )
                .await?;
                return Ok(());
            }
            SessionLogoutEvent::RetryScheduled(retry) => {
                tx.execute(
                    "UPDATE back_channel_deliveries
                     SET attempts = $4, next_attempt_at_ms = $5, last_error = $6, claimed_until_ms = 0, claimed_by = NULL
                     WHERE instance_id = $1 AND session_id = $2 AND client_id = $3 AND state = 'pending'",
                    &[
                        instance_id(),
                        session_id(),
                        retry.client_id.into(),
                        i64::from(retry.attempts).into(),
                        retry.retry_at.timestamp_millis().into(),
                        retry.attempt.error.into(),
                    ],
                )
                .await?;
                return Ok(());
            }
            SessionLogoutEvent::RedeliveryRequested(asked) => {
                // A new round: due at once, with its own attempt count.
                tx.execute(
                    "UPDATE back_channel_deliveries
                     SET state = 'pending', attempts = 0, next_attempt_at_ms = 0, claimed_until_ms = 0,
                         claimed_by = NULL, settled_at_ms = NULL
                     WHERE instance_id = $1 AND session_id = $2 AND client_id = $3 AND state IN ('pending', 'failed')",
                    &[instance_id(), session_id(), asked.client_id.into()],
                )
                .await?;
                return Ok(());
            }
            SessionLogoutEvent::Sent(sent) => (sent.client_id, "sent", sent.attempts, None),
            SessionLogoutEvent::Failed(failed) => (
                failed.client_id,
                "failed",
                failed.attempts,
                Some(failed.reason),
            ),
        };
        tx.execute(
            "UPDATE back_channel_deliveries SET state = $4, attempts = $5, last_error = $6, settled_at_ms = $7
             WHERE instance_id = $1 AND session_id = $2 AND client_id = $3",
            &[
                instance_id(),
                session_id(),
                client_id.into(),
                state.into(),
                i64::from(attempts).into(),
                error.into(),
                at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn apply_batch(
        &self,
        tx: &mut dyn ReadModelTx,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError> {
        eventstore::apply_runs(
            self,
            tx,
            eventstore::runs(events, run_key),
            RunKey::statement,
        )
        .await
    }
}

/// One back-channel delivery as the notifier and admins see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryView {
    /// The instance.
    pub instance_id: String,
    /// The session that ended (the logout token's `sid`).
    pub session_id: String,
    /// The application to tell (the logout token's `aud`).
    pub client_id: String,
    /// Where to POST the logout token.
    pub uri: String,
    /// The user (the logout token's `sub`).
    pub user_id: String,
    /// The algorithm to sign with.
    pub signing_alg: String,
    /// Where the delivery stands as stored.
    pub stage: DeliveryStage,
    /// The origin the session was ended on (the logout token's `iss`).
    pub triggered_at_origin: Option<String>,
    /// When the application was registered.
    pub registered_at: DateTime<Utc>,
    /// When the session ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// When it was sent or given up.
    pub settled_at: Option<DateTime<Utc>>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The last failure, readable.
    pub last_error: Option<String>,
    /// When a due delivery may next be attempted (a retry or a deferral).
    pub next_attempt_at: DateTime<Utc>,
    /// Until when a replica holds it under a lease (PostgreSQL; the past when none does).
    pub leased_until: DateTime<Utc>,
}

/// A delivery's stored stage. The notifier's lifecycle
/// (`notify::back_channel::lifecycle::DeliveryState`) refines `Due` with the schedule and
/// the claims into due, in flight and retry-at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStage {
    /// The session is live; nothing to send.
    Registered,
    /// The session ended (or a redelivery was asked): to be sent.
    Due,
    /// The application acknowledged.
    Sent,
    /// Given up.
    Failed,
}

impl DeliveryStage {
    /// The label stored in `back_channel_deliveries.state`. `Due` is stored as `pending`,
    /// its name in the first release, so existing rows and indexes keep working.
    pub fn label(self) -> &'static str {
        match self {
            DeliveryStage::Registered => "registered",
            DeliveryStage::Due => "pending",
            DeliveryStage::Sent => "sent",
            DeliveryStage::Failed => "failed",
        }
    }

    fn from_label(label: &str) -> Result<Self, DomainError> {
        Ok(match label {
            "registered" => DeliveryStage::Registered,
            "pending" => DeliveryStage::Due,
            "sent" => DeliveryStage::Sent,
            "failed" => DeliveryStage::Failed,
            other => {
                return Err(DomainError::Invalid {
                    field: "back_channel_deliveries.state",
                    reason: format!(
                        "unknown delivery state {other:?}; was the store written by a newer release?"
                    ),
                });
            }
        })
    }
}

/// Which deliveries of an instance a listing shows; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only this stored stage.
    pub stage: Option<DeliveryStage>,
    /// Only those whose next attempt is due by then (due now, not waiting for a retry).
    pub next_attempt_by: Option<DateTime<Utc>>,
    /// Only those whose next attempt is after then (waiting for a retry).
    pub next_attempt_after: Option<DateTime<Utc>>,
    /// Only this application's.
    pub client_id: Option<String>,
    /// Only this session's.
    pub session_id: Option<String>,
    /// Only those registered at or after then.
    pub registered_since: Option<DateTime<Utc>>,
    /// Only those registered before then.
    pub registered_before: Option<DateTime<Utc>>,
    /// Only those settled (sent or failed) at or after then.
    pub settled_since: Option<DateTime<Utc>>,
    /// Only those settled before then.
    pub settled_before: Option<DateTime<Utc>>,
}

/// How many deliveries stand where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Acknowledged.
    pub sent: u64,
    /// Given up.
    pub failed: u64,
    /// Still to be sent (due, in flight or waiting for a retry).
    pub pending: u64,
}

/// Where the next page of a listing starts: after this delivery, in the listing's order
/// (newest registration first). Registration times never change, so pages neither skip nor
/// repeat a delivery while others change state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryCursor {
    /// The last delivery's registration time, in milliseconds.
    pub registered_at_ms: i64,
    /// Its session.
    pub session_id: String,
    /// Its application.
    pub client_id: String,
}

impl DeliveryCursor {
    /// The cursor after `view`.
    pub fn after(view: &DeliveryView) -> Self {
        DeliveryCursor {
            registered_at_ms: view.registered_at.timestamp_millis(),
            session_id: view.session_id.clone(),
            client_id: view.client_id.clone(),
        }
    }
}

macro_rules! select_deliveries {
    ($tail:literal) => {
        concat!(
            "SELECT instance_id, session_id, client_id, uri, user_id, signing_alg, state, triggered_at_origin,
                registered_at_ms, ended_at_ms, settled_at_ms, attempts, last_error, next_attempt_at_ms, claimed_until_ms
             FROM back_channel_deliveries ",
            $tail
        )
    };
}

fn millis(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(value).unwrap_or_default()
}

/// The time in milliseconds in the first column of the first row, if any (a `MIN`).
fn first_time(rows: &[SqlRow]) -> Result<Option<DateTime<Utc>>, DomainError> {
    Ok(rows
        .first()
        .map(|row| row.opt_int(0))
        .transpose()?
        .flatten()
        .map(millis))
}

impl DeliveryView {
    fn from_row(row: &SqlRow) -> Result<Self, DomainError> {
        Ok(DeliveryView {
            instance_id: row.text(0)?.to_owned(),
            session_id: row.text(1)?.to_owned(),
            client_id: row.text(2)?.to_owned(),
            uri: row.text(3)?.to_owned(),
            user_id: row.text(4)?.to_owned(),
            signing_alg: row.text(5)?.to_owned(),
            stage: DeliveryStage::from_label(row.text(6)?)?,
            triggered_at_origin: row.opt_text(7)?.map(str::to_owned),
            registered_at: millis(row.int(8)?),
            ended_at: row.opt_int(9)?.map(millis),
            settled_at: row.opt_int(10)?.map(millis),
            attempts: u32::try_from(row.int(11)?).unwrap_or(u32::MAX),
            last_error: row.opt_text(12)?.map(str::to_owned),
            next_attempt_at: millis(row.int(13)?),
            leased_until: millis(row.int(14)?),
        })
    }

    fn from_rows(rows: &[SqlRow]) -> Result<Vec<Self>, DomainError> {
        rows.iter().map(Self::from_row).collect()
    }

    /// Claims up to `limit` due, unclaimed deliveries until `until` for the caller that holds
    /// `claim` (a value unique to this attempt) and returns them. One UPDATE claims them all,
    /// so of several processes each row goes to exactly one, and a fan-out of a hundred
    /// applications costs one write, not a hundred.
    pub async fn claim_due(
        store: &dyn EventStore,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        claim: &str,
        limit: u32,
    ) -> Result<Vec<Self>, DomainError> {
        let now = now.timestamp_millis();
        let claimed = store
            .execute(
                "UPDATE back_channel_deliveries SET claimed_until_ms = $2, claimed_by = $3
                 WHERE state = 'pending' AND next_attempt_at_ms <= $1 AND claimed_until_ms < $1
                   AND (instance_id, session_id, client_id) IN (
                     SELECT instance_id, session_id, client_id FROM back_channel_deliveries
                     WHERE state = 'pending' AND next_attempt_at_ms <= $1 AND claimed_until_ms < $1
                     ORDER BY ended_at_ms LIMIT $4)",
                &[
                    now.into(),
                    until.timestamp_millis().into(),
                    claim.into(),
                    i64::from(limit).into(),
                ],
            )
            .await?;
        if claimed == 0 {
            return Ok(vec![]);
        }
        let rows = store
            .query(
                select_deliveries!(
                    "WHERE claimed_by = $1 AND state = 'pending' ORDER BY ended_at_ms"
                ),
                &[claim.into()],
            )
            .await?;
        Self::from_rows(&rows)
    }

    /// Up to `limit` due deliveries, oldest session end first, other than those in `held` (a
    /// JSON list of `LocalClaims` keys): taking work where this
    /// process is alone on an SQLite database, without a write.
    pub async fn due_except(
        store: &dyn EventStore,
        now: DateTime<Utc>,
        held: &str,
        limit: u32,
    ) -> Result<Vec<Self>, DomainError> {
        let rows = store
            .query(
                select_deliveries!(
                    "WHERE state = 'pending' AND next_attempt_at_ms <= $1 AND claimed_until_ms < $1
                       AND instance_id || '|' || session_id || '|' || client_id
                           NOT IN (SELECT value FROM json_each($2))
                     ORDER BY ended_at_ms LIMIT $3"
                ),
                &[
                    now.timestamp_millis().into(),
                    held.into(),
                    i64::from(limit).into(),
                ],
            )
            .await?;
        Self::from_rows(&rows)
    }

    /// When the next pending delivery not in `held` falls due (see [`Self::due_except`]).
    pub async fn next_due_except(
        store: &dyn EventStore,
        held: &str,
    ) -> Result<Option<DateTime<Utc>>, DomainError> {
        let rows = store
            .query(
                "SELECT MIN(CASE WHEN next_attempt_at_ms > claimed_until_ms THEN next_attempt_at_ms
                        ELSE claimed_until_ms + 1 END)
                 FROM back_channel_deliveries WHERE state = 'pending'
                   AND instance_id || '|' || session_id || '|' || client_id
                       NOT IN (SELECT value FROM json_each($1))",
                &[held.into()],
            )
            .await?;
        first_time(&rows)
    }

    /// Whether some pending delivery is due now (a read, for deciding whether to claim).
    pub async fn any_due(store: &dyn EventStore, now: DateTime<Utc>) -> Result<bool, DomainError> {
        let rows = store
            .query(
                "SELECT 1 FROM back_channel_deliveries
                 WHERE state = 'pending' AND next_attempt_at_ms <= $1 AND claimed_until_ms < $1 LIMIT 1",
                &[now.timestamp_millis().into()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// When the next pending delivery that is waiting for a retry or a claim falls due.
    pub async fn next_due_at(store: &dyn EventStore) -> Result<Option<DateTime<Utc>>, DomainError> {
        let rows = store
            .query(
                "SELECT MIN(CASE WHEN next_attempt_at_ms > claimed_until_ms THEN next_attempt_at_ms
                        ELSE claimed_until_ms + 1 END)
                 FROM back_channel_deliveries WHERE state = 'pending'",
                &[],
            )
            .await?;
        first_time(&rows)
    }

    /// A session's deliveries.
    pub async fn of_session(
        store: &dyn EventStore,
        instance_id: &str,
        session_id: &str,
    ) -> Result<Vec<Self>, DomainError> {
        let rows = store
            .query(
                select_deliveries!("WHERE instance_id = $1 AND session_id = $2 ORDER BY client_id"),
                &[instance_id.into(), session_id.into()],
            )
            .await?;
        Self::from_rows(&rows)
    }

    /// An instance's deliveries that pass `filter`, newest registration first, after
    /// `cursor`, at most `limit`.
    pub async fn list(
        store: &dyn EventStore,
        instance_id: &str,
        filter: &DeliveryFilter,
        cursor: Option<&DeliveryCursor>,
        limit: u32,
    ) -> Result<Vec<Self>, DomainError> {
        // One statement for every filter (a NULL parameter leaves its filter out), so it is
        // prepared once. The cursor condition is (registered_at_ms, session_id, client_id) <
        // the cursor's, spelled out: row values compare alike on both back ends only so.
        const LIST: &str = select_deliveries!(
            "WHERE instance_id = $1
               AND ($2 IS NULL OR state = $2)
               AND ($3 IS NULL OR next_attempt_at_ms <= $3)
               AND ($4 IS NULL OR next_attempt_at_ms > $4)
               AND ($5 IS NULL OR client_id = $5)
               AND ($6 IS NULL OR session_id = $6)
               AND ($7 IS NULL OR registered_at_ms >= $7)
               AND ($8 IS NULL OR registered_at_ms < $8)
               AND ($9 IS NULL OR settled_at_ms >= $9)
               AND ($10 IS NULL OR settled_at_ms < $10)
               AND ($11 IS NULL OR registered_at_ms < $11
                    OR (registered_at_ms = $11 AND (session_id < $12
                        OR (session_id = $12 AND client_id < $13))))
             ORDER BY registered_at_ms DESC, session_id DESC, client_id DESC LIMIT $14"
        );
        let ms = |at: Option<DateTime<Utc>>| SqlValue::Int(at.map(|at| at.timestamp_millis()));
        let text = |value: Option<&str>| SqlValue::Text(value.map(str::to_owned));
        let params = [
            instance_id.into(),
            text(filter.stage.map(DeliveryStage::label)),
            ms(filter.next_attempt_by),
            ms(filter.next_attempt_after),
            text(filter.client_id.as_deref()),
            text(filter.session_id.as_deref()),
            ms(filter.registered_since),
            ms(filter.registered_before),
            ms(filter.settled_since),
            ms(filter.settled_before),
            SqlValue::Int(cursor.map(|cursor| cursor.registered_at_ms)),
            text(cursor.map(|cursor| cursor.session_id.as_str())),
            text(cursor.map(|cursor| cursor.client_id.as_str())),
            i64::from(limit).into(),
        ];
        let rows = store.query(LIST, &params).await?;
        Self::from_rows(&rows)
    }

    /// Counts, by outcome, the deliveries of an instance's sessions that were registered by
    /// `from` and whose session ended between `from` and `to` (an instance-wide sign-out's).
    pub async fn counts_of_ended_between(
        store: &dyn EventStore,
        instance_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<DeliveryCounts, DomainError> {
        let rows = store
            .query(
                "SELECT state, COUNT(*) FROM back_channel_deliveries
                 WHERE instance_id = $1 AND registered_at_ms <= $2 AND ended_at_ms >= $2 AND ended_at_ms <= $3
                 GROUP BY state",
                &[
                    instance_id.into(),
                    from.timestamp_millis().into(),
                    to.timestamp_millis().into(),
                ],
            )
            .await?;
        let mut counts = DeliveryCounts::default();
        for row in &rows {
            let count = u64::try_from(row.int(1)?).unwrap_or(0);
            match DeliveryStage::from_label(row.text(0)?)? {
                DeliveryStage::Sent => counts.sent += count,
                DeliveryStage::Failed => counts.failed += count,
                DeliveryStage::Due | DeliveryStage::Registered => counts.pending += count,
            }
        }
        Ok(counts)
    }

    /// Counts an instance's deliveries by outcome, in one grouped query (nothing is loaded):
    /// sent, failed, and due (to be sent, in flight or waiting for a retry). Registrations of
    /// live sessions have nothing to send and are not counted.
    pub async fn counts_of_instance(
        store: &dyn EventStore,
        instance_id: &str,
    ) -> Result<DeliveryCounts, DomainError> {
        // One count per settled or due state, each over its partial index: the registered
        // rows (one per live session and application, by far the most) are never visited.
        let rows = store
            .query(
                "SELECT
                    (SELECT COUNT(*) FROM back_channel_deliveries
                      WHERE instance_id = $1 AND state = 'sent'),
                    (SELECT COUNT(*) FROM back_channel_deliveries
                      WHERE instance_id = $1 AND state = 'failed'),
                    (SELECT COUNT(*) FROM back_channel_deliveries
                      WHERE instance_id = $1 AND state = 'pending')",
                &[instance_id.into()],
            )
            .await?;
        let count = |index: usize| -> Result<u64, DomainError> {
            let value = match rows.first() {
                Some(row) => row.int(index)?,
                None => 0,
            };
            Ok(u64::try_from(value).unwrap_or(0))
        };
        Ok(DeliveryCounts {
            sent: count(0)?,
            failed: count(1)?,
            pending: count(2)?,
        })
    }

    /// How many of an instance's deliveries are due, in flight or waiting for a retry: an
    /// instance being removed keeps its data until this is zero.
    pub async fn unsettled_of_instance(
        store: &dyn EventStore,
        instance_id: &str,
    ) -> Result<u64, DomainError> {
        let rows = store
            .query(
                "SELECT COUNT(*) FROM back_channel_deliveries WHERE instance_id = $1 AND state = $2",
                &[instance_id.into(), DeliveryStage::Due.label().into()],
            )
            .await?;
        match rows.first() {
            Some(row) => Ok(u64::try_from(row.int(0)?).unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// An application's deliveries, newest first.
    pub async fn of_client(
        store: &dyn EventStore,
        instance_id: &str,
        client_id: &str,
        limit: u32,
    ) -> Result<Vec<Self>, DomainError> {
        let rows = store
            .query(
                select_deliveries!(
                    "WHERE instance_id = $1 AND client_id = $2 ORDER BY registered_at_ms DESC LIMIT $3"
                ),
                &[instance_id.into(), client_id.into(), i64::from(limit).into()],
            )
            .await?;
        Self::from_rows(&rows)
    }

    /// Releases the claim without an attempt and makes the delivery due again at `at` (its
    /// target is busy with other deliveries).
    pub async fn defer(
        &self,
        store: &dyn EventStore,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        store
            .execute(
                "UPDATE back_channel_deliveries
                 SET next_attempt_at_ms = $4, claimed_until_ms = 0, claimed_by = NULL
                 WHERE instance_id = $1 AND session_id = $2 AND client_id = $3 AND state = 'pending'",
                &[
                    self.instance_id.as_str().into(),
                    self.session_id.as_str().into(),
                    self.client_id.as_str().into(),
                    at.timestamp_millis().into(),
                ],
            )
            .await?;
        Ok(())
    }
}
