//! Events as they are appended and as they are read back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an event stands in the global order of the log.
///
/// `tx` numbers the appending transaction and `in_tx_order` the event within it. Ordering is
/// lexicographic. On PostgreSQL `tx` is the transaction id, so positions are not dense and a
/// reader only ever reads below the oldest transaction still running (see `postgres.rs`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position {
    /// The appending transaction's number.
    pub tx: i64,
    /// The event's index within its transaction.
    pub in_tx_order: i32,
}

impl Position {
    /// The position before every event.
    pub const START: Position = Position {
        tx: 0,
        in_tx_order: 0,
    };

    /// The last position a transaction numbered `tx` can hold.
    pub fn end_of_tx(tx: i64) -> Position {
        Position {
            tx,
            in_tx_order: i32::MAX,
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.tx, self.in_tx_order)
    }
}

/// Names one aggregate: the unit of consistency that commands load and append to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggregateRef {
    /// The tenant the aggregate belongs to (empty for system-wide aggregates).
    pub instance_id: String,
    /// The kind of aggregate, e.g. `instance` or `user`.
    pub aggregate_type: String,
    /// The aggregate's id, unique within its type and instance.
    pub aggregate_id: String,
}

impl AggregateRef {
    /// Builds a reference from its three parts.
    pub fn new(
        instance_id: impl Into<String>,
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
    ) -> Self {
        AggregateRef {
            instance_id: instance_id.into(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
        }
    }
}

impl std::fmt::Display for AggregateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (instance {:?})",
            self.aggregate_type, self.aggregate_id, self.instance_id
        )
    }
}

/// An event a command wants to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Past-tense type name, e.g. `instance.feature.set`.
    pub event_type: String,
    /// Version of the payload's shape, so old events can be upgraded when read.
    pub revision: i32,
    /// The payload as JSON text.
    pub payload: String,
    /// Who caused the event (a user id, `system`, …).
    pub creator: String,
    /// When the command decided on the event.
    pub created_at: DateTime<Utc>,
}

/// Events to append to one aggregate, with the sequence the command saw when it decided.
#[derive(Debug, Clone)]
pub struct AggregateAppend {
    /// The aggregate appended to.
    pub aggregate: AggregateRef,
    /// The aggregate's last sequence as the command saw it (0 for a new aggregate).
    pub expected_sequence: i64,
    /// The events, in order; they receive sequences `expected_sequence + 1 …`.
    pub events: Vec<NewEvent>,
}

/// An event as stored in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The aggregate the event belongs to.
    pub aggregate: AggregateRef,
    /// Gap-free number of the event within its aggregate, from 1.
    pub sequence: i64,
    /// The event's place in the global order.
    pub position: Position,
    /// Past-tense type name.
    pub event_type: String,
    /// Version of the payload's shape.
    pub revision: i32,
    /// The payload as JSON text.
    pub payload: String,
    /// Who caused the event.
    pub creator: String,
    /// When the event was decided.
    pub created_at: DateTime<Utc>,
}

/// A filter over the log, read in position order.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events of this instance; all instances when `None`.
    pub instance_id: Option<String>,
    /// Only events strictly after this position.
    pub after: Position,
    /// Only these aggregate types; all when empty.
    pub aggregate_types: Vec<String>,
    /// Only these event types; all when empty.
    pub event_types: Vec<String>,
    /// At most this many events.
    pub limit: u32,
}

/// Refuses appends that name no events, an aggregate twice, or a negative sequence.
pub(crate) fn validate(appends: &[AggregateAppend]) -> Result<(), crate::StoreError> {
    if appends.iter().all(|append| append.events.is_empty()) {
        return Err(crate::StoreError::InvalidAppend(
            "no events to append".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for append in appends {
        let key = (
            &append.aggregate.instance_id,
            &append.aggregate.aggregate_type,
            &append.aggregate.aggregate_id,
        );
        if !seen.insert(key) {
            return Err(crate::StoreError::InvalidAppend(format!(
                "{} is named twice in one append",
                append.aggregate
            )));
        }
        if append.expected_sequence < 0 {
            return Err(crate::StoreError::InvalidAppend(format!(
                "negative expected sequence for {}",
                append.aggregate
            )));
        }
    }
    Ok(())
}

/// A JSON array of strings, the form both back ends take a list parameter in.
pub(crate) fn json_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&items).expect("a list of strings always serializes")
}
