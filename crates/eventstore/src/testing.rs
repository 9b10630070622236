//! Fresh stores for tests of this crate and the crates above it: a temporary SQLite file, or
//! a throw-away schema on the PostgreSQL server named by `TEST_POSTGRES_URL`.

use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::{Durability, EventStore, Position, PostgresEventStore, SqliteEventStore, StoreError};

/// The environment variable naming the PostgreSQL server tests may use.
pub const POSTGRES_URL_VAR: &str = "TEST_POSTGRES_URL";

/// Keeps a test's database alive and removes it afterwards.
pub enum Scratch {
    /// The temporary directory holding the SQLite file.
    Sqlite(tempfile::TempDir),
    /// The server and the schema to drop.
    Postgres {
        /// The server's URL.
        url: String,
        /// The schema created for the test.
        schema: String,
        /// A temporary directory for whatever a server keeps beside the database (its master
        /// key file), so no test writes into the working directory.
        dir: tempfile::TempDir,
    },
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Scratch::Postgres { url, schema, .. } = self {
            let (url, schema) = (url.clone(), schema.clone());
            // Drop cannot await; a short-lived runtime on its own thread removes the schema.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
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
    /// The store under test.
    pub store: Arc<dyn EventStore>,
    /// Opens another store on the same database.
    pub reopen: Reopen,
    /// Removes the database when dropped.
    pub scratch: Scratch,
}

impl Harness {
    /// The PostgreSQL URL of this harness' schema, for a server to connect to.
    pub fn postgres_url(&self) -> Option<String> {
        match &self.scratch {
            Scratch::Postgres { url, schema, .. } => {
                let separator = if url.contains('?') { '&' } else { '?' };
                Some(format!("{url}{separator}options[search_path]={schema}"))
            }
            Scratch::Sqlite(_) => None,
        }
    }

    /// The harness' temporary directory, for a server's data directory (on PostgreSQL it
    /// holds only the master key file). Tests never write into the working directory.
    pub fn data_dir(&self) -> &std::path::Path {
        match &self.scratch {
            Scratch::Sqlite(dir) | Scratch::Postgres { dir, .. } => dir.path(),
        }
    }
}

/// How to open another store on a harness' database.
pub enum Reopen {
    /// The SQLite file.
    Sqlite(std::path::PathBuf),
    /// Options naming the PostgreSQL server and the test's schema.
    Postgres(Box<PgConnectOptions>),
}

impl Reopen {
    /// Opens another store on the same database, as a second process (or a restart) would.
    pub async fn open(&self) -> Result<Arc<dyn EventStore>, StoreError> {
        Ok(match self {
            Reopen::Sqlite(path) => {
                Arc::new(SqliteEventStore::open(path, Durability::Normal).await?)
            }
            Reopen::Postgres(options) => {
                Arc::new(PostgresEventStore::connect_with((**options).clone(), 8).await?)
            }
        })
    }
}

/// A store on a fresh SQLite file.
pub async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let reopen = Reopen::Sqlite(path);
    Harness {
        store: reopen.open().await.unwrap(),
        reopen,
        scratch: Scratch::Sqlite(dir),
    }
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
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let reopen = Reopen::Postgres(Box::new(options));
    Some(Harness {
        store: reopen.open().await.unwrap(),
        reopen,
        scratch: Scratch::Postgres {
            url,
            schema,
            dir: tempfile::tempdir().expect("a temporary directory"),
        },
    })
}

/// Waits until `position` is visible to readers. On PostgreSQL an unrelated open transaction
/// (another test, here) may hold the read horizon back for a moment.
pub async fn settle(store: &dyn EventStore, position: Position) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !store.is_visible(position).await.unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "position {position} never became visible"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Defines each named async test function `fn(Harness)` twice, as `on_sqlite::NAME` and
/// `on_postgres::NAME` (which announces and returns when no PostgreSQL server is configured).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::testing::sqlite().await).await })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(harness) = $crate::testing::postgres().await { super::$name(harness).await }
            })*
        }
    };
}
