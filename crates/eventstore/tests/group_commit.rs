//! Many commands at once: on SQLite they share transactions (group commit, each command in its
//! own savepoint); on PostgreSQL each has its own. Either way every command succeeds or fails
//! on its own, and what was acknowledged is there to read.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{Harness, LEDGER_SCHEMA, Ledger, aggregate, append_one, ledger};
use eventstore::{
    BoxError, EventQuery, Projection, ProjectionRunner, ReadModelTx, RunnerOptions, StartFrom,
    StoreError, StoredEvent,
};

eventstore::on_both_backends!(
    conflicting_command_fails_alone,
    a_thousand_commands_at_once,
    every_acknowledged_command_is_read_back,
);

/// Spawns `appends` all at once, so that on SQLite they queue behind one another's commits.
async fn append_all(
    h: &Harness,
    appends: Vec<eventstore::AggregateAppend>,
) -> Vec<Result<Vec<StoredEvent>, StoreError>> {
    let tasks: Vec<_> = appends
        .into_iter()
        .map(|append| {
            let store = h.store.clone();
            tokio::spawn(async move { store.append(&[append]).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn conflicting_command_fails_alone(h: Harness) {
    for id in ["taken-1", "taken-2"] {
        h.store
            .append(&[append_one("i1", id, 0, "thing.created")])
            .await
            .unwrap();
    }
    // Two stale commands among fifty good ones.
    let mut appends: Vec<_> = (0..50)
        .map(|n| append_one("i1", &format!("fresh-{n}"), 0, "thing.created"))
        .collect();
    appends.insert(10, append_one("i1", "taken-1", 0, "thing.created"));
    appends.insert(30, append_one("i1", "taken-2", 0, "thing.created"));
    let results = append_all(&h, appends).await;
    for (index, result) in results.iter().enumerate() {
        match (index, result) {
            (
                10 | 30,
                Err(StoreError::Conflict {
                    expected: 0,
                    actual: 1,
                    ..
                }),
            ) => {}
            (10 | 30, other) => panic!("a stale command must conflict, got {other:?}"),
            (_, Ok(stored)) => assert_eq!(stored.len(), 1),
            (_, Err(error)) => panic!("command {index} failed with the stale ones: {error}"),
        }
    }
    for n in 0..50 {
        let events = h
            .store
            .aggregate_events(&aggregate("i1", &format!("fresh-{n}")))
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "fresh-{n}");
    }
    for id in ["taken-1", "taken-2"] {
        let events = h
            .store
            .aggregate_events(&aggregate("i1", id))
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "the stale command wrote nothing to {id}");
    }
}

async fn a_thousand_commands_at_once(h: Harness) {
    let appends = (0..1_000)
        .map(|n| append_one("i1", &format!("a-{n}"), 0, "thing.created"))
        .collect();
    let results = append_all(&h, appends).await;
    let mut positions: Vec<_> = results
        .into_iter()
        .map(|result| result.expect("every command succeeds")[0].position)
        .collect();
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), 1_000, "each event has its own position");
    let last = *positions.last().unwrap();
    common::settle(h.store.as_ref(), last).await;
    let mut read = 0;
    let mut query = EventQuery {
        instance_id: Some("i1".into()),
        limit: 400,
        ..EventQuery::default()
    };
    loop {
        let events = h.store.events(&query).await.unwrap();
        let Some(event) = events.last() else { break };
        query.after = event.position;
        read += events.len();
    }
    assert_eq!(read, 1_000);
}

/// The ledger, as a read model commands read right after writing.
struct HotLedger;

#[async_trait]
impl Projection for HotLedger {
    fn name(&self) -> &'static str {
        "test_hot_ledger"
    }
    fn on_hot_path(&self) -> bool {
        true
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["thing"]
    }
    fn schema(&self) -> &'static [&'static str] {
        LEDGER_SCHEMA
    }
    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        Ledger {
            start: StartFrom::Beginning,
        }
        .apply(tx, event)
        .await
    }
}

async fn has_row(h: &Harness, id: &str) -> bool {
    ledger(h.store.as_ref())
        .await
        .iter()
        .any(|(_, aggregate_id, _)| aggregate_id == id)
}

/// Right after each command is acknowledged, the log and the hot read model show it: on
/// SQLite at once (written in the command's transaction), on PostgreSQL once `wait_for`
/// returns.
async fn every_acknowledged_command_is_read_back(h: Harness) {
    // Events from before the runner starts are caught up, not skipped.
    let early = h
        .store
        .append(&[append_one("i1", "early", 0, "thing.created")])
        .await
        .unwrap();
    let runner = Arc::new(ProjectionRunner::new(
        h.store.clone(),
        vec![Arc::new(HotLedger)],
        RunnerOptions::default(),
    ));
    runner.install().await.unwrap();
    runner
        .wait_for("i1", early[0].position, &["thing"], Duration::from_secs(10))
        .await
        .unwrap();
    assert!(has_row(&h, "early").await);
    let h = Arc::new(h);
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let (h, runner) = (h.clone(), runner.clone());
            tokio::spawn(async move {
                let id = format!("rw-{n}");
                let stored = h
                    .store
                    .append(&[append_one("i1", &id, 0, "thing.created")])
                    .await
                    .unwrap();
                let events = h
                    .store
                    .aggregate_events(&aggregate("i1", &id))
                    .await
                    .unwrap();
                assert_eq!(events, stored, "the log shows {id} as acknowledged");
                if h.store.backend() == "sqlite" {
                    assert!(has_row(&h, &id).await, "{id} is in the read model at once");
                }
                runner
                    .wait_for(
                        "i1",
                        stored[0].position,
                        &["thing"],
                        Duration::from_secs(10),
                    )
                    .await
                    .unwrap();
                assert!(has_row(&h, &id).await, "{id} is in the read model");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(ledger(h.store.as_ref()).await.len(), 101);
}
