//! The `session_expiries` read model: live sessions by the time they run out, so the server
//! can end them itself when they do (a session that merely lapses still ends everywhere).

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use eventstore::{
    ApplyError, BoxError, EventStore, Projection, ReadModelTx, SqlValue, StoredEvent,
};

use super::{Session, SessionEvent};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;

/// Folds session events into `session_expiries`.
pub struct SessionExpiryProjection;

/// Forgets many ended sessions of one instance ($1) at once (a mass sign-out).
static FORGET_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "DELETE FROM session_expiries WHERE instance_id = $1 AND session_id IN ({})",
        eventstore::key_placeholders(2)
    )
});

#[async_trait]
impl Projection for SessionExpiryProjection {
    fn name(&self) -> &'static str {
        "session_expiries"
    }

    fn on_hot_path(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[Session::TYPE]
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS session_expiries (
                instance_id   TEXT   NOT NULL,
                session_id    TEXT   NOT NULL,
                expires_at_ms BIGINT NOT NULL,
                PRIMARY KEY (instance_id, session_id)
            )",
            "CREATE INDEX IF NOT EXISTS session_expiries_by_time ON session_expiries (expires_at_ms)",
            // Counting an instance's live sessions (the console's overview) from the index
            // alone, instead of visiting every live session's row for its instance.
            "CREATE INDEX IF NOT EXISTS session_expiries_by_instance ON session_expiries (instance_id, expires_at_ms)",
        ]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let instance_id = SqlValue::from(event.aggregate.instance_id.as_str());
        let session_id = SqlValue::from(event.aggregate.aggregate_id.as_str());
        match decode::<SessionEvent>(event)? {
            SessionEvent::Created(created) => {
                tx.execute(
                    "INSERT INTO session_expiries (instance_id, session_id, expires_at_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (instance_id, session_id) DO NOTHING",
                    &[instance_id, session_id, created.expires_at.timestamp_millis().into()],
                )
                .await?;
            }
            SessionEvent::Terminated(_) => {
                tx.execute(
                    "DELETE FROM session_expiries WHERE instance_id = $1 AND session_id = $2",
                    &[instance_id, session_id],
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn apply_batch(
        &self,
        tx: &mut dyn ReadModelTx,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError> {
        let runs = super::termination_runs(events);
        eventstore::apply_runs(self, tx, runs, |instance_id| {
            (FORGET_MANY.as_str(), vec![(*instance_id).into()])
        })
        .await
    }
}

/// Live sessions whose lifetime ended at or before `now`: (instance id, session id), oldest
/// first.
pub async fn expired_sessions(
    store: &dyn EventStore,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<(String, String)>, DomainError> {
    let rows = store
        .query(
            "SELECT instance_id, session_id FROM session_expiries WHERE expires_at_ms <= $1
             ORDER BY expires_at_ms LIMIT $2",
            &[now.timestamp_millis().into(), i64::from(limit).into()],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.text(0)?.to_owned(), row.text(1)?.to_owned())))
        .collect()
}
