//! The embedded back end: one SQLite file in WAL mode, on `rusqlite`.
//!
//! Writes go to one writer thread that owns the read-write connection and commits whatever
//! work is queued as one transaction (group commit, see `writer.rs`); positions are assigned
//! by that thread, so they grow in commit order and every committed event is visible at once.
//! Reads run on the caller's own thread, on a read-only connection taken from a small pool:
//! a point read costs no hand-off to another thread. One process per file.
//!
//! PostgreSQL stays on sqlx (`postgres.rs`): there the database is a server and every
//! statement is a network round trip anyway, while here each statement through sqlx's
//! worker thread was a hand-off that cost more than the statement itself.

mod readers;
mod sql;
mod writer;

pub use sql::{Activity, activity};

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::{AggregateAppend, AggregateRef, EventQuery, Position, StoredEvent, validate};
use crate::projection::{BatchOutcome, Projection, batch_query, first_read};
use crate::read_model::{SqlRow, SqlValue};
use crate::store::{AppendSignal, EventStore, InlineApplied, ScanCursors};
use readers::Readers;
use writer::Writer;

const BACKEND: &str = "sqlite";
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// When a committed append reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync on every commit: nothing committed is lost, even on power failure.
    #[default]
    Full,
    /// fsync at WAL checkpoints: survives a process crash; a power failure may lose the last
    /// commits (never corrupts).
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// How long a connection waits for another connection's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements cached per connection (each connection prepares each statement once).
const STATEMENT_CACHE: usize = 128;

/// The SQLite event store.
pub struct SqliteEventStore {
    writer: Writer,
    readers: Readers,
    appended: AppendSignal,
    scan_cursors: ScanCursors,
}

impl SqliteEventStore {
    /// Opens (creating if missing) the database file at `path` and applies migrations.
    pub async fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        migrate(path).await?;
        let connect_error = |source: rusqlite::Error| StoreError::Connect {
            backend: BACKEND,
            target: path.display().to_string(),
            source: source.into(),
        };
        let conn =
            open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(connect_error)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -8192;",
            durability.pragma()
        ))
        .map_err(connect_error)?;
        let appended = AppendSignal::new();
        let writer =
            Writer::start(conn, appended.clone()).map_err(|error| StoreError::Connect {
                backend: BACKEND,
                target: path.display().to_string(),
                source: error.into(),
            })?;
        Ok(SqliteEventStore {
            writer,
            readers: Readers::new(path.to_owned()),
            appended,
            scan_cursors: ScanCursors::default(),
        })
    }

    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.readers.read(work)
    }

    fn advance_cursor(&self, projection: &'static str, instance_id: &str, to: Position) {
        let mut cursors = self
            .scan_cursors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let cursor = cursors
            .entry((projection, instance_id.to_owned()))
            .or_insert(to);
        *cursor = (*cursor).max(to);
    }

    fn cursor(&self, projection: &'static str, instance_id: &str) -> Option<Position> {
        self.scan_cursors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&(projection, instance_id.to_owned()))
            .copied()
    }

    /// Which projections have events to apply, looked up without the writer: `(index, where
    /// its batch starts, its first pending event)`. Idle ones get their cursor advanced.
    fn pending_work(
        &self,
        conn: &Connection,
        projections: &[Arc<dyn Projection>],
        instance_id: &str,
    ) -> Result<Vec<(usize, Position, Position)>, StoreError> {
        let end = sql::end_of_log(conn)?;
        let mut behind = Vec::new();
        for (index, projection) in projections.iter().enumerate() {
            let after = match self.cursor(projection.name(), instance_id) {
                Some(cursor) => cursor,
                None => sql::start_position(conn, projection.name(), instance_id)?,
            };
            if after < Position::end_of_tx(end) {
                behind.push((index, after));
            }
        }
        // One look at the kinds of the events after the earliest of them usually settles
        // every projection at once (most appends are of types most projections do not read).
        let recent = match behind.iter().map(|(_, after)| *after).min() {
            None => Some(Vec::new()),
            Some(earliest) => {
                let kinds = sql::recent_kinds(conn, instance_id, earliest, end)?;
                (kinds.len() < sql::RECENT_KINDS).then_some(kinds)
            }
        };
        let mut pending = Vec::new();
        for (index, after) in behind {
            let projection = projections[index].as_ref();
            let first = match &recent {
                Some(recent) => first_read(projection, recent, after),
                None => sql::read_events(conn, &batch_query(projection, instance_id, after, 1))?
                    .first()
                    .map(|event| event.position),
            };
            match first {
                Some(position) => pending.push((index, after, position)),
                // Every event up to `end` was committed before the look: none is for it.
                None => self.advance_cursor(
                    projection.name(),
                    instance_id,
                    Position::end_of_tx(end).max(after),
                ),
            }
        }
        Ok(pending)
    }
}

/// Applies the log's migrations with sqlx's migrator, which earlier releases used, so files
/// they wrote keep their migration history; the connection is closed afterwards.
async fn migrate(path: &Path) -> Result<(), StoreError> {
    let connect_error = |source: sqlx::Error| StoreError::Connect {
        backend: BACKEND,
        target: path.display().to_string(),
        source: source.into(),
    };
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(connect_error)?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(connect_error)?;
    let migrated = MIGRATOR.run(&pool).await.map_err(StoreError::from_migrate);
    pool.close().await;
    migrated
}

fn open_connection(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

#[async_trait]
impl EventStore for SqliteEventStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn shared(&self) -> bool {
        false
    }

    async fn append(&self, appends: &[AggregateAppend]) -> Result<Vec<StoredEvent>, StoreError> {
        validate(appends)?;
        let appends = appends.to_vec();
        self.writer
            .call(move |writer| writer.append(&appends))
            .await
    }

    async fn aggregate_events(
        &self,
        aggregate: &AggregateRef,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|conn| sql::aggregate_events(conn, aggregate))
    }

    async fn aggregates_events(
        &self,
        instance_id: &str,
        aggregate_type: &str,
        aggregate_ids: &[String],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if aggregate_ids.is_empty() {
            return Ok(vec![]);
        }
        self.read(|conn| sql::aggregates_events(conn, instance_id, aggregate_type, aggregate_ids))
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|conn| sql::read_events(conn, query))
    }

    async fn is_visible(&self, _position: Position) -> Result<bool, StoreError> {
        // Positions are assigned in commit order: whatever was appended is visible.
        Ok(true)
    }

    async fn instances(&self) -> Result<Vec<String>, StoreError> {
        self.read(sql::instances)
    }

    async fn install_projection(&self, projection: Arc<dyn Projection>) -> Result<(), StoreError> {
        self.writer
            .call(move |writer| sql::install(&writer.conn, projection.as_ref()))
            .await
    }

    async fn write_inline(
        &self,
        projections: Vec<Arc<dyn Projection>>,
        on_applied: InlineApplied,
    ) -> Result<Vec<&'static str>, StoreError> {
        self.writer
            .call(move |writer| writer.adopt_inline(projections, on_applied))
            .await
    }

    async fn project(
        &self,
        projection: Arc<dyn Projection>,
        instance_id: &str,
        limit: u32,
    ) -> Result<BatchOutcome, StoreError> {
        let mut outcomes = self.project_many(&[projection], instance_id, limit).await?;
        Ok(outcomes.pop().unwrap_or(BatchOutcome::Idle))
    }

    async fn project_many(
        &self,
        projections: &[Arc<dyn Projection>],
        instance_id: &str,
        limit: u32,
    ) -> Result<Vec<BatchOutcome>, StoreError> {
        let mut outcomes = vec![BatchOutcome::Idle; projections.len()];
        // Look without the writer first: most passes find nothing to do.
        let pending = self.read(|conn| self.pending_work(conn, projections, instance_id))?;
        if pending.is_empty() {
            return Ok(outcomes);
        }
        let work: Vec<(usize, Position)> = pending
            .iter()
            .map(|&(index, after, _)| (index, after))
            .collect();
        let owned = projections.to_vec();
        let instance = instance_id.to_owned();
        let done = self
            .writer
            .call(move |writer| writer.project(&owned, &work, &instance, limit))
            .await?;
        for (index, outcome) in done {
            outcomes[index] = outcome;
        }
        for &(index, _, first) in &pending {
            if let Some(to) = outcomes[index].scanned_to(first) {
                self.advance_cursor(projections[index].name(), instance_id, to);
            }
        }
        Ok(outcomes)
    }

    async fn projection_position(
        &self,
        projection: &str,
        instance_id: &str,
    ) -> Result<Option<Position>, StoreError> {
        self.read(|conn| sql::projection_position(conn, projection, instance_id))
    }

    async fn execute(&self, sql: &'static str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let params = params.to_vec();
        self.writer
            .call(move |writer| sql::execute(&writer.conn, sql, &params))
            .await
    }

    async fn query(
        &self,
        sql: &'static str,
        params: &[SqlValue],
    ) -> Result<Vec<SqlRow>, StoreError> {
        self.read(|conn| sql::query(conn, sql, params))
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let applied: Option<i64> = self.read(|conn| {
            Ok(conn.query_row(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
                [],
                |row| row.get(0),
            )?)
        })?;
        StoreError::check_schema(&MIGRATOR, applied)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}
