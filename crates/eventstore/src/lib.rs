//! The event log at the heart of Portcullis, and the projections that read it.
//!
//! Every change is an event appended to one ordered log; read models are folded from it by
//! projections that remember, per instance, how far they got. Two back ends implement
//! [`EventStore`]: SQLite (embedded, one process) and PostgreSQL (many processes).
//!
//! This crate knows nothing of identities, sessions or HTTP: event types and payloads are
//! opaque strings to it, and read-model SQL comes from the projections.

mod error;
mod event;
mod postgres;
mod projection;
mod read_model;
mod runner;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{BoxError, StoreError};
pub use event::{AggregateAppend, AggregateRef, EventQuery, NewEvent, Position, StoredEvent};
pub use postgres::PostgresEventStore;
pub use projection::{
    ApplyError, BatchOutcome, Projection, Run, StartFrom, apply_each, apply_runs, runs,
};
pub use read_model::{
    KEYS_PER_STATEMENT, ReadModelTx, SqlRow, SqlValue, execute_for_keys, key_placeholders,
};
pub use runner::{PassSummary, ProjectionRunner, RunnerOptions, WaitError};
pub use sqlite::{
    Activity as SqliteActivity, Durability, SqliteEventStore, activity as sqlite_activity,
};
pub use store::{EventStore, InlineApplied};
