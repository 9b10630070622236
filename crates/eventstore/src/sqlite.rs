//! The embedded back end: one SQLite file in WAL mode, one writer connection and a pool of
//! read-only connections. Positions are assigned under the single writer, so they grow in
//! commit order and every committed event is visible at once. One process per file.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::dialect::Dialect;
use crate::error::StoreError;
use crate::store::{AppendSignal, KnownInstances, ScanCursors};

// The shared SQL, compiled once per back end on purpose (see the file's header).
#[allow(clippy::duplicate_mod)]
#[path = "sql_core.rs"]
mod sql_core;

type Db = sqlx::Sqlite;
type Store = SqliteEventStore;
const BACKEND: &str = "sqlite";
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
const DIALECT: Dialect = Dialect {
    begin_write: "BEGIN IMMEDIATE",
    next_tx: "(SELECT COALESCE(MAX(position), 0) + 1 FROM events)",
    horizon: "9223372036854775807",
    visible_at_commit: true,
    json_text_list: |param| format!("SELECT value FROM json_each(${param})"),
    json_param_9: "$9",
    now: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    notify: None,
    try_lock_projection: None,
    // SQLITE_BUSY and its extended codes (BUSY_SNAPSHOT, BUSY_RECOVERY, BUSY_TIMEOUT).
    is_busy: |code| code.parse::<i32>().is_ok_and(|code| code & 0xff == 5),
    lock_installs: None,
};

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

/// The SQLite event store.
pub struct SqliteEventStore {
    writer: SqlitePool,
    readers: SqlitePool,
    appended: AppendSignal,
    known_instances: KnownInstances,
    scan_cursors: ScanCursors,
}

impl SqliteEventStore {
    /// Opens (creating if missing) the database file at `path` and applies migrations.
    pub async fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let connect_error = |source| StoreError::Connect {
            backend: BACKEND,
            target: path.display().to_string(),
            source,
        };
        let synchronous = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(connect_error)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .pragma("cache_size", "-8192");
        // A local file needs no liveness check before each use: skipping it saves a round
        // trip to the connection's worker thread on every append.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(connect_error)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(StoreError::from_migrate)?;
        let readers = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(connect_error)?;
        Ok(SqliteEventStore {
            writer,
            readers,
            appended: AppendSignal::new(),
            known_instances: KnownInstances::default(),
            scan_cursors: ScanCursors::default(),
        })
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.readers
    }

    fn appended(&self) -> &AppendSignal {
        &self.appended
    }

    fn known_instances(&self) -> &KnownInstances {
        &self.known_instances
    }

    fn scan_cursors(&self) -> &ScanCursors {
        &self.scan_cursors
    }
}
