//! The production back end: PostgreSQL, shared by any number of server processes.
//!
//! Positions are transaction ids (`pg_current_xact_id`). Transactions commit out of id order,
//! so a reader that has seen transaction 10 may later find 9 committed. Readers therefore only
//! read events below the oldest transaction id still running (`pg_snapshot_xmin`): everything
//! below it has committed or rolled back, and every later transaction gets a larger id. A slow
//! transaction delays readers; it never makes them skip. Projections lock their work per
//! (projection, instance) with a transaction-scoped advisory lock, which, unlike a row lock,
//! does not give the reading transaction an id of its own before it reads. Appends send
//! `NOTIFY portcullis_events` so other processes wake at once.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::store::{AppendSignal, KnownInstances, ScanCursors};

#[path = "sql_core.rs"]
mod sql_core;

type Db = sqlx::Postgres;
type Store = PostgresEventStore;
const BACKEND: &str = "postgres";
const CHANNEL: &str = "portcullis_events";
static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// The PostgreSQL event store.
pub struct PostgresEventStore {
    pool: PgPool,
    appended: AppendSignal,
    known_instances: KnownInstances,
    scan_cursors: ScanCursors,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresEventStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresEventStore {
    /// Connects to the database at `url` and applies migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::Connect {
            backend: BACKEND,
            target: "the configured URL (it does not parse)".into(),
            source: source.into(),
        })?;
        Self::connect_with(options, max_connections).await
    }

    /// Connects with prepared options (tests use them to pick a schema) and applies migrations.
    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)")
        );
        let listener_options = options.clone();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                backend: BACKEND,
                target,
                source: source.into(),
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(StoreError::from_migrate)?;
        let appended = AppendSignal::new();
        // The listener holds its connection for good, so it gets its own, outside the pool
        // that serves requests.
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(listener_options);
        let listener = tokio::spawn(listen_for_appends(listener_pool, appended.downgrade()));
        Ok(PostgresEventStore {
            pool,
            appended,
            known_instances: KnownInstances::default(),
            scan_cursors: ScanCursors::default(),
            listener,
        })
    }

    /// The connection pool, for tests and benchmarks that need raw access.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
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

/// Wakes local subscribers whenever any process appends. Reconnects after errors; polling in
/// the projection runner covers what is missed meanwhile.
async fn listen_for_appends(pool: PgPool, appended: std::sync::Weak<watch::Sender<u64>>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let result: Result<(), sqlx::Error> = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            loop {
                listener.recv().await?;
                let Some(appended) = appended.upgrade() else {
                    return Ok(());
                };
                appended.send_modify(|count| *count = count.wrapping_add(1));
            }
        }
        .await;
        match result {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "lost the PostgreSQL notification listener; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
