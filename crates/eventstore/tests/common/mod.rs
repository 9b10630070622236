//! Fresh stores for tests: a temporary SQLite file, or a throw-away schema on the PostgreSQL
//! server named by `PORTCULLIS_TEST_POSTGRES_URL`.

#![allow(dead_code)]

use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Once};

use async_trait::async_trait;
use chrono::Utc;
use eventstore::{
    AggregateAppend, AggregateRef, BoxError, EventStore, NewEvent, PostgresEventStore, Projection, ReadModelTx,
    SqlValue, SqliteEventStore, StartFrom, StoredEvent,
};
use sqlx::postgres::PgConnectOptions;

/// The environment variable naming the PostgreSQL server tests may use.
pub const POSTGRES_URL_VAR: &str = "PORTCULLIS_TEST_POSTGRES_URL";

/// Keeps a test's database alive and removes it afterwards.
pub enum Scratch {
    Sqlite(tempfile::TempDir),
    Postgres { url: String, schema: String },
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Scratch::Postgres { url, schema } = self {
            let (url, schema) = (url.clone(), schema.clone());
            // Drop cannot await; a short-lived runtime on its own thread removes the schema.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await;
                    }
                });
            })
            .join();
        }
    }
}

/// A store under test and what keeps its database alive.
pub struct Harness {
    pub store: Arc<dyn EventStore>,
    /// Opens another store on the same database, as a second process (or a restart) would.
    pub reopen: Reopen,
    pub scratch: Scratch,
}

pub enum Reopen {
    Sqlite(std::path::PathBuf),
    Postgres(PgConnectOptions),
}

impl Reopen {
    pub async fn open(&self) -> Result<Arc<dyn EventStore>, eventstore::StoreError> {
        Ok(match self {
            Reopen::Sqlite(path) => Arc::new(SqliteEventStore::open(path, eventstore::Durability::Normal).await?),
            Reopen::Postgres(options) => Arc::new(PostgresEventStore::connect_with(options.clone(), 8).await?),
        })
    }
}

pub async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let reopen = Reopen::Sqlite(path);
    Harness { store: reopen.open().await.unwrap(), reopen, scratch: Scratch::Sqlite(dir) }
}

/// A store on a fresh schema, or `None` (with a plain notice) when no server is configured
/// outside CI. In CI a missing server fails the test.
pub async fn postgres() -> Option<Harness> {
    let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("{POSTGRES_URL_VAR} must be set in CI: the PostgreSQL suite may not be skipped");
        }
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            // Written past the test harness' capture on purpose, so the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "\nNOTICE: PostgreSQL tests DID NOT RUN: {POSTGRES_URL_VAR} is not set \
                 (e.g. postgres://postgres@127.0.0.1:5432/test; .ci/run sets it)\n"
            );
        });
        return None;
    };
    let schema = format!("pc_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&url).await.expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
    admin.close().await;
    let options = PgConnectOptions::from_str(&url).unwrap().options([("search_path", schema.as_str())]);
    let reopen = Reopen::Postgres(options);
    Some(Harness { store: reopen.open().await.unwrap(), reopen, scratch: Scratch::Postgres { url, schema } })
}

pub fn aggregate(instance: &str, id: &str) -> AggregateRef {
    AggregateRef::new(instance, "thing", id)
}

pub fn event(event_type: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        event_type: event_type.into(),
        revision: 1,
        payload: payload.to_string(),
        creator: "test".into(),
        created_at: Utc::now(),
    }
}

pub fn append_one(instance: &str, id: &str, expected: i64, event_type: &str) -> AggregateAppend {
    AggregateAppend {
        aggregate: aggregate(instance, id),
        expected_sequence: expected,
        events: vec![event(event_type, serde_json::json!({ "n": expected + 1 }))],
    }
}

/// Records every event it applies in a table keyed by the event, so applying one twice fails
/// loudly (primary key violation) instead of going unnoticed. Rejects `poison` events.
pub struct Ledger {
    pub start: StartFrom,
}

pub const LEDGER_SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS test_ledger (
        instance_id TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        event_type TEXT NOT NULL,
        PRIMARY KEY (instance_id, aggregate_id, sequence))"];

#[async_trait]
impl Projection for Ledger {
    fn name(&self) -> &'static str {
        "test_ledger"
    }
    fn start_from(&self) -> StartFrom {
        self.start
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["thing"]
    }
    fn schema(&self) -> &'static [&'static str] {
        LEDGER_SCHEMA
    }
    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        if event.event_type == "thing.poisoned" {
            return Err("this projection refuses thing.poisoned".into());
        }
        tx.execute(
            "INSERT INTO test_ledger (instance_id, aggregate_id, sequence, event_type) VALUES ($1, $2, $3, $4)",
            &[
                SqlValue::from(event.aggregate.instance_id.as_str()),
                event.aggregate.aggregate_id.as_str().into(),
                event.sequence.into(),
                event.event_type.as_str().into(),
            ],
        )
        .await?;
        Ok(())
    }
}

/// The ledger's rows as (instance, aggregate, sequence).
pub async fn ledger(store: &dyn EventStore) -> Vec<(String, String, i64)> {
    let rows = store
        .query("SELECT instance_id, aggregate_id, sequence FROM test_ledger ORDER BY instance_id, aggregate_id, sequence", &[])
        .await
        .unwrap();
    rows.iter().map(|row| (row.text(0).unwrap().into(), row.text(1).unwrap().into(), row.int(2).unwrap())).collect()
}

/// Waits until `position` is visible to readers. On PostgreSQL an unrelated open transaction
/// (another test, here) may hold the read horizon back for a moment.
pub async fn settle(store: &dyn EventStore, position: eventstore::Position) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !store.is_visible(position).await.unwrap() {
        assert!(tokio::time::Instant::now() < deadline, "position {position} never became visible");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
