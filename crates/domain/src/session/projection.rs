//! The `sessions` read model: session by cookie, a user's sessions.

use std::sync::LazyLock;

use async_trait::async_trait;
use eventstore::{
    ApplyError, BoxError, EventStore, Projection, ReadModelTx, SqlRow, SqlValue, StoredEvent,
};

use super::{Session, SessionEvent};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;

/// Folds session events into `sessions`.
pub struct SessionProjection;

/// Marks many sessions of one instance ($1) ended at once (a mass sign-out).
static TERMINATE_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE sessions SET terminated = $2 WHERE instance_id = $1 AND session_id IN ({})",
        eventstore::key_placeholders(3)
    )
});

#[async_trait]
impl Projection for SessionProjection {
    fn name(&self) -> &'static str {
        "sessions"
    }

    fn on_hot_path(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[Session::TYPE]
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS sessions (
                instance_id  TEXT NOT NULL,
                session_id   TEXT NOT NULL,
                user_id      TEXT NOT NULL,
                cookie_hash  TEXT NOT NULL,
                auth_time    TEXT NOT NULL,
                expires_at   TEXT NOT NULL,
                user_agent   TEXT,
                terminated   BOOLEAN NOT NULL,
                created_at   TEXT NOT NULL,
                PRIMARY KEY (instance_id, session_id)
            )",
            "CREATE INDEX IF NOT EXISTS sessions_by_cookie ON sessions (cookie_hash)",
            "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (instance_id, user_id)",
            // An instance's live sessions, for "sign out everyone" and the console's Sessions
            // page: ended ones drop out, so each chunk finds the next live ones without walking
            // the ended; `session_id` last, so a page newest first continues after its last row
            // (created_at, session_id) from the index alone, without sorting the instance's
            // sessions. It replaces `sessions_live` (instance_id, created_at), which it covers.
            "DROP INDEX IF EXISTS sessions_live",
            "CREATE INDEX IF NOT EXISTS sessions_live_newest ON sessions (instance_id, created_at, session_id) WHERE terminated = false",
        ]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let instance_id = SqlValue::from(event.aggregate.instance_id.as_str());
        let session_id = SqlValue::from(event.aggregate.aggregate_id.as_str());
        match decode::<SessionEvent>(event)? {
            SessionEvent::Created(created) => {
                tx.execute(
                    "INSERT INTO sessions (instance_id, session_id, user_id, cookie_hash, auth_time, expires_at,
                        user_agent, terminated, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (instance_id, session_id) DO NOTHING",
                    &[
                        instance_id,
                        session_id,
                        created.user_id.into(),
                        created.cookie_hash.into(),
                        created.auth_time.to_rfc3339().into(),
                        created.expires_at.to_rfc3339().into(),
                        created.user_agent.into(),
                        false.into(),
                        event.created_at.to_rfc3339().into(),
                    ],
                )
                .await?;
            }
            SessionEvent::Terminated(_) => {
                tx.execute(
                    "UPDATE sessions SET terminated = $3 WHERE instance_id = $1 AND session_id = $2",
                    &[instance_id, session_id, true.into()],
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
            (
                TERMINATE_MANY.as_str(),
                vec![(*instance_id).into(), true.into()],
            )
        })
        .await
    }
}

/// A session as read models show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The instance.
    pub instance_id: String,
    /// The session id (the `sid` claim).
    pub session_id: String,
    /// Who signed in.
    pub user_id: String,
    /// When (RFC 3339).
    pub auth_time: String,
    /// When it expires at the latest (RFC 3339).
    pub expires_at: String,
    /// The browser's User-Agent.
    pub user_agent: Option<String>,
    /// Whether it ended.
    pub terminated: bool,
}

macro_rules! select_sessions {
    ($tail:literal) => {
        concat!(
            "SELECT instance_id, session_id, user_id, auth_time, expires_at, user_agent, terminated FROM sessions ",
            $tail
        )
    };
}

impl SessionView {
    fn from_row(row: &SqlRow) -> Result<Self, DomainError> {
        Ok(SessionView {
            instance_id: row.text(0)?.to_owned(),
            session_id: row.text(1)?.to_owned(),
            user_id: row.text(2)?.to_owned(),
            auth_time: row.text(3)?.to_owned(),
            expires_at: row.text(4)?.to_owned(),
            user_agent: row.opt_text(5)?.map(str::to_owned),
            terminated: row.bool(6)?,
        })
    }

    /// The live session a cookie's hash belongs to.
    pub async fn by_cookie_hash(
        store: &dyn EventStore,
        instance_id: &str,
        cookie_hash: &str,
    ) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(
                select_sessions!("WHERE cookie_hash = $1 AND instance_id = $2 AND terminated = $3"),
                &[cookie_hash.into(), instance_id.into(), false.into()],
            )
            .await?;
        rows.first().map(Self::from_row).transpose()
    }

    /// The session with this id.
    pub async fn by_id(
        store: &dyn EventStore,
        instance_id: &str,
        session_id: &str,
    ) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(
                select_sessions!("WHERE instance_id = $1 AND session_id = $2"),
                &[instance_id.into(), session_id.into()],
            )
            .await?;
        rows.first().map(Self::from_row).transpose()
    }

    /// How many sessions of an instance are live (not ended, whether or not their lifetime ran
    /// out: the expiry sweeper has yet to end those, and their applications to hear of it).
    pub async fn count_live(store: &dyn EventStore, instance_id: &str) -> Result<u64, DomainError> {
        let rows = store
            .query(
                "SELECT COUNT(*) FROM sessions WHERE instance_id = $1 AND terminated = false",
                &[instance_id.into()],
            )
            .await?;
        let count = rows.first().map(|row| row.int(0)).transpose()?.unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// How many sessions of an instance that began before `before` are live.
    pub async fn count_live_before(
        store: &dyn EventStore,
        instance_id: &str,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, DomainError> {
        let rows = store
            .query(
                "SELECT COUNT(*) FROM sessions
                 WHERE instance_id = $1 AND terminated = false AND created_at < $2",
                &[instance_id.into(), before.to_rfc3339().into()],
            )
            .await?;
        let count = rows.first().map(|row| row.int(0)).transpose()?.unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Up to `limit` ids of an instance's live sessions that began before `before`, oldest
    /// first.
    pub async fn live_ids_before(
        store: &dyn EventStore,
        instance_id: &str,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<String>, DomainError> {
        let rows = store
            .query(
                "SELECT session_id FROM sessions
                 WHERE instance_id = $1 AND terminated = false AND created_at < $2
                 ORDER BY created_at LIMIT $3",
                &[
                    instance_id.into(),
                    before.to_rfc3339().into(),
                    i64::from(limit).into(),
                ],
            )
            .await?;
        rows.iter().map(|row| Ok(row.text(0)?.to_owned())).collect()
    }

    /// The ids of a user's live sessions, oldest first.
    pub async fn live_ids_of_user(
        store: &dyn EventStore,
        instance_id: &str,
        user_id: &str,
    ) -> Result<Vec<String>, DomainError> {
        let rows = store
            .query(
                "SELECT session_id FROM sessions WHERE instance_id = $1 AND user_id = $2 AND terminated = $3
                 ORDER BY created_at",
                &[instance_id.into(), user_id.into(), false.into()],
            )
            .await?;
        rows.iter().map(|row| Ok(row.text(0)?.to_owned())).collect()
    }

    /// A user's sessions, oldest first; live ones only unless `include_ended`.
    pub async fn of_user(
        store: &dyn EventStore,
        instance_id: &str,
        user_id: &str,
        include_ended: bool,
    ) -> Result<Vec<Self>, DomainError> {
        let rows = store
            .query(
                select_sessions!("WHERE instance_id = $1 AND user_id = $2 AND (terminated = $3 OR $4) ORDER BY created_at"),
                &[instance_id.into(), user_id.into(), false.into(), include_ended.into()],
            )
            .await?;
        rows.iter().map(Self::from_row).collect()
    }
}
