//! Data this binary cannot read stops with an error that names it, and changes nothing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, Ledger, aggregate, append_one, ledger, settle};
use eventstore::testing::Reopen;
use eventstore::{BatchOutcome, Projection, StartFrom, StoreError};

async fn execute_raw(reopen: &Reopen, sqlite: &'static str, postgres: &'static str) {
    match reopen {
        Reopen::Sqlite(path) => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(sqlite).execute(&pool).await.unwrap();
        }
        Reopen::Postgres(options) => {
            let pool = sqlx::PgPool::connect_with((**options).clone())
                .await
                .unwrap();
            sqlx::query(postgres).execute(&pool).await.unwrap();
        }
    }
}

async fn newer_schema_is_refused_and_nothing_changes(h: Harness) {
    h.store
        .append(&[append_one("i1", "a", 0, "thing.created")])
        .await
        .unwrap();
    execute_raw(
        &h.reopen,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from a newer portcullis', TRUE, X'00', 0)",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from a newer portcullis', TRUE, decode('00', 'hex'), 0)",
    )
    .await;
    let error = h
        .reopen
        .open()
        .await
        .err()
        .expect("opening a newer schema must fail");
    assert!(
        matches!(
            error,
            StoreError::SchemaNewer {
                version: 99990101000000
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("newer than this binary"),
        "{error}"
    );
    // The already-open store reports it too, and the stored events are untouched.
    assert!(matches!(
        h.store.check_ready().await,
        Err(StoreError::SchemaNewer { .. })
    ));
    assert_eq!(
        h.store
            .aggregate_events(&aggregate("i1", "a"))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn sqlite_newer_schema_is_refused() {
    newer_schema_is_refused_and_nothing_changes(eventstore::testing::sqlite().await).await;
}

#[tokio::test]
async fn postgres_newer_schema_is_refused() {
    if let Some(harness) = eventstore::testing::postgres().await {
        newer_schema_is_refused_and_nothing_changes(harness).await;
    }
}

#[tokio::test]
async fn sqlite_corrupt_event_is_named_and_projection_stops_before_it() {
    let h = eventstore::testing::sqlite().await;
    h.store
        .append(&[append_one("i1", "a", 0, "thing.created")])
        .await
        .unwrap();
    h.store
        .append(&[append_one("i1", "a", 1, "thing.touched")])
        .await
        .unwrap();
    execute_raw(
        &h.reopen,
        "UPDATE events SET created_at = 'not a time' WHERE sequence = 2",
        "",
    )
    .await;

    let error = h
        .store
        .aggregate_events(&aggregate("i1", "a"))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, StoreError::CorruptEvent { sequence: 2, .. }),
        "{message}"
    );
    assert!(
        message.contains("thing a") && message.contains("created_at"),
        "{message}"
    );

    let projection: Arc<dyn Projection> = Arc::new(Ledger {
        start: StartFrom::Beginning,
    });
    h.store
        .install_projection(projection.clone())
        .await
        .unwrap();
    assert!(h.store.project(projection.clone(), "i1", 10).await.is_err());
    assert!(ledger(h.store.as_ref()).await.is_empty());
    assert_eq!(
        h.store
            .projection_position(projection.name(), "i1")
            .await
            .unwrap(),
        None
    );
}

/// A transaction that took its id first but commits last must still be read, and before the
/// later-numbered events it precedes.
#[tokio::test]
async fn postgres_late_commit_is_not_skipped() {
    let Some(h) = eventstore::testing::postgres().await else {
        return;
    };
    let Reopen::Postgres(options) = &h.reopen else {
        unreachable!()
    };
    let projection: Arc<dyn Projection> = Arc::new(Ledger {
        start: StartFrom::Beginning,
    });
    h.store
        .install_projection(projection.clone())
        .await
        .unwrap();
    // The instance exists already, as it would in practice (a brand-new instance's first
    // appends serialize on its `event_instances` row).
    let mut other = append_one("i1", "x", 0, "other.created");
    other.aggregate.aggregate_type = "other".into();
    h.store.append(&[other]).await.unwrap();

    // Writer A takes a transaction id and writes an event, but does not commit yet.
    let pool = sqlx::PgPool::connect_with((**options).clone())
        .await
        .unwrap();
    let mut slow = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (instance_id, aggregate_type, aggregate_id, sequence, position, in_tx_order,
                             event_type, revision, payload, creator, created_at)
         VALUES ('i1', 'thing', 'slow', 1, CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT), 0,
                 'thing.created', 1, '{}', 'test', now())",
    )
    .execute(&mut *slow)
    .await
    .unwrap();

    // Writer B appends after it and commits first.
    let fast = h
        .store
        .append(&[append_one("i1", "fast", 0, "thing.created")])
        .await
        .unwrap();
    assert!(!h.store.is_visible(fast[0].position).await.unwrap());
    assert_eq!(
        h.store.project(projection.clone(), "i1", 10).await.unwrap(),
        BatchOutcome::Idle,
        "B must wait for A"
    );

    tokio::time::sleep(Duration::from_millis(50)).await;
    slow.commit().await.unwrap();
    settle(h.store.as_ref(), fast[0].position).await;
    assert!(matches!(
        h.store.project(projection.clone(), "i1", 10).await.unwrap(),
        BatchOutcome::Applied { count: 2, .. }
    ));
    let rows: Vec<String> = ledger(h.store.as_ref())
        .await
        .into_iter()
        .map(|row| row.1)
        .collect();
    assert_eq!(rows, ["fast", "slow"]);
    let read = h
        .store
        .events(&eventstore::EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        read.iter()
            .map(|e| e.aggregate.aggregate_id.as_str())
            .collect::<Vec<_>>(),
        ["x", "slow", "fast"]
    );
}
