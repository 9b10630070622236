//! Fresh stores for tests: a temporary SQLite file, or a throw-away schema on the PostgreSQL
//! server named by `TEST_POSTGRES_URL`.

#![allow(dead_code)]

use async_trait::async_trait;
use chrono::Utc;
pub use eventstore::testing::{Harness, settle};
use eventstore::{
    AggregateAppend, AggregateRef, BoxError, EventStore, NewEvent, Projection, ReadModelTx,
    SqlValue, StartFrom, StoredEvent,
};

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
    rows.iter()
        .map(|row| {
            (
                row.text(0).unwrap().into(),
                row.text(1).unwrap().into(),
                row.int(2).unwrap(),
            )
        })
        .collect()
}
