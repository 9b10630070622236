//! Aggregates and their typed events: loading by folding, deciding, appending.

use eventstore::{AggregateAppend, AggregateRef, EventStore, NewEvent, Position, StoredEvent};
use serde::Serialize;

use crate::error::DomainError;

/// A typed event of one aggregate type, stored as a type name plus JSON payload.
pub trait DomainEvent: Sized {
    /// The stored type name, e.g. `instance.added`.
    fn event_type(&self) -> &'static str;
    /// The payload as JSON text.
    fn payload(&self) -> String;
    /// Reads a stored event back; unknown types and foreign payloads are errors, never
    /// guesses.
    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError>;
}

/// Why a stored event could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The type name is not one this binary knows for the aggregate.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// The payload does not have the expected shape.
    #[error("payload does not match the event type: {0}")]
    Payload(#[from] serde_json::Error),
}

/// Serializes an event payload; payload types are plain structs, so this cannot fail.
pub(crate) fn to_json<T: Serialize>(payload: &T) -> String {
    serde_json::to_string(payload).expect("event payloads are plain data and always serialize")
}

/// Decodes a stored event of aggregate type `A`, naming the event on failure.
pub fn decode<E: DomainEvent>(event: &StoredEvent) -> Result<E, DomainError> {
    E::decode(&event.event_type, &event.payload).map_err(|error| DomainError::UnreadableEvent {
        event_type: event.event_type.clone(),
        aggregate: format!("{} #{}", event.aggregate, event.sequence),
        reason: error.to_string(),
    })
}

/// State folded from one aggregate's events. Applying cannot fail: deciding already did.
pub trait Aggregate: Default + Send {
    /// The stored aggregate type.
    const TYPE: &'static str;
    /// Its events.
    type Event: DomainEvent + Send;
    /// Folds one event into the state.
    fn apply(&mut self, event: &Self::Event);
}

/// An aggregate's state together with the sequence it was loaded at.
#[derive(Debug)]
pub struct Loaded<A> {
    /// Where the aggregate lives.
    pub aggregate: AggregateRef,
    /// The folded state.
    pub state: A,
    /// The last sequence folded (0 when the aggregate has no events).
    pub sequence: i64,
    /// The position of the last event folded.
    pub position: Position,
}

impl<A: Aggregate> Loaded<A> {
    /// An aggregate with no events folded yet.
    fn empty(aggregate: AggregateRef) -> Self {
        Loaded {
            aggregate,
            state: A::default(),
            sequence: 0,
            position: Position::START,
        }
    }

    /// Folds the next stored event of this aggregate.
    fn fold(&mut self, stored: &StoredEvent) -> Result<(), DomainError> {
        self.state.apply(&decode::<A::Event>(stored)?);
        (self.sequence, self.position) = (stored.sequence, stored.position);
        Ok(())
    }

    /// Loads an aggregate by folding its events.
    pub async fn load(
        store: &dyn EventStore,
        instance_id: &str,
        aggregate_id: &str,
    ) -> Result<Self, DomainError> {
        let mut loaded = Self::empty(AggregateRef::new(instance_id, A::TYPE, aggregate_id));
        for stored in store.aggregate_events(&loaded.aggregate).await? {
            loaded.fold(&stored)?;
        }
        Ok(loaded)
    }

    /// Loads several aggregates with one read, in the order of `aggregate_ids` (one with no
    /// events yet is the default state).
    pub async fn load_many(
        store: &dyn EventStore,
        instance_id: &str,
        aggregate_ids: &[String],
    ) -> Result<Vec<Self>, DomainError> {
        let mut loaded: std::collections::HashMap<&str, Self> = aggregate_ids
            .iter()
            .map(|id| {
                let empty = Self::empty(AggregateRef::new(instance_id, A::TYPE, id));
                (id.as_str(), empty)
            })
            .collect();
        for stored in store
            .aggregates_events(instance_id, A::TYPE, aggregate_ids)
            .await?
        {
            if let Some(entry) = loaded.get_mut(stored.aggregate.aggregate_id.as_str()) {
                entry.fold(&stored)?;
            }
        }
        Ok(aggregate_ids
            .iter()
            .filter_map(|id| loaded.remove(id.as_str()))
            .collect())
    }

    /// The append that records `events` after the loaded sequence.
    pub fn append(&self, events: &[A::Event], stamp: &Stamp) -> AggregateAppend {
        AggregateAppend {
            aggregate: self.aggregate.clone(),
            expected_sequence: self.sequence,
            events: stamp.events(events),
        }
    }
}

/// Who and when, as recorded on every event of one command.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// The acting principal.
    pub creator: String,
    /// The command's time.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Stamp {
    /// Turns typed events into events to append.
    pub fn events<E: DomainEvent>(&self, events: &[E]) -> Vec<NewEvent> {
        events
            .iter()
            .map(|event| NewEvent {
                event_type: event.event_type().to_owned(),
                revision: 1,
                payload: event.payload(),
                creator: self.creator.clone(),
                created_at: self.at,
            })
            .collect()
    }
}

/// The append that creates a new aggregate with `events`.
pub fn create<A: Aggregate>(
    instance_id: &str,
    aggregate_id: &str,
    events: &[A::Event],
    stamp: &Stamp,
) -> AggregateAppend {
    AggregateAppend {
        aggregate: AggregateRef::new(instance_id, A::TYPE, aggregate_id),
        expected_sequence: 0,
        events: stamp.events(events),
    }
}
