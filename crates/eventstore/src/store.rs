//! The event store interface both back ends implement.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::{AggregateAppend, AggregateRef, EventQuery, Position, StoredEvent};
use crate::projection::{BatchOutcome, Projection};
use crate::read_model::{SqlRow, SqlValue};

/// The append-only log, projection bookkeeping and read-model queries.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and errors.
    fn backend(&self) -> &'static str;

    /// Whether other processes may write to the same database (replicas), so read models
    /// can change without this process applying anything.
    fn shared(&self) -> bool;

    /// Appends events to one or more aggregates in one transaction. Fails with
    /// `StoreError::Conflict`, appending nothing, when any aggregate's last sequence is not the
    /// expected one.
    async fn append(&self, appends: &[AggregateAppend]) -> Result<Vec<StoredEvent>, StoreError>;

    /// All events of one aggregate, by sequence.
    async fn aggregate_events(
        &self,
        aggregate: &AggregateRef,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// All events of several aggregates of one type in one instance, by aggregate id then
    /// sequence: one round trip where loading each would take one per aggregate.
    async fn aggregates_events(
        &self,
        instance_id: &str,
        aggregate_type: &str,
        aggregate_ids: &[String],
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Events matching `query`, in position order, never past an event that an unfinished
    /// transaction could still precede.
    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;

    /// Whether every event up to `position` can be read (no transaction before it is open).
    async fn is_visible(&self, position: Position) -> Result<bool, StoreError>;

    /// Every instance that has events.
    async fn instances(&self) -> Result<Vec<String>, StoreError>;

    /// Creates a projection's tables and, the first time, records where it starts.
    async fn install_projection(&self, projection: Arc<dyn Projection>) -> Result<(), StoreError>;

    /// Takes over `projections` (installed already) so that every later append updates their
    /// read models in its own transaction, after catching them up; returns the names taken.
    /// `on_applied` is called with a projection's name after a commit that changed it.
    /// The default takes none: on PostgreSQL a reader must respect the visibility horizon,
    /// so its projections stay with the runner.
    async fn write_inline(
        &self,
        projections: Vec<Arc<dyn Projection>>,
        on_applied: InlineApplied,
    ) -> Result<Vec<&'static str>, StoreError> {
        let _ = (projections, on_applied);
        Ok(Vec::new())
    }

    /// Applies up to `limit` pending events of one instance to a projection, under the
    /// projection's lock for that instance, and advances its position in the same transaction.
    async fn project(
        &self,
        projection: Arc<dyn Projection>,
        instance_id: &str,
        limit: u32,
    ) -> Result<BatchOutcome, StoreError>;

    /// [`EventStore::project`] for several projections of one instance in one transaction, so
    /// that one commit (one fsync on SQLite) carries the work of all of them. Returns one
    /// outcome per projection, in order. Any failure rolls back the whole transaction.
    async fn project_many(
        &self,
        projections: &[Arc<dyn Projection>],
        instance_id: &str,
        limit: u32,
    ) -> Result<Vec<BatchOutcome>, StoreError>;

    /// Where a projection stands for an instance, if it has started there.
    async fn projection_position(
        &self,
        projection: &str,
        instance_id: &str,
    ) -> Result<Option<Position>, StoreError>;

    /// Writes to a table a component owns outside any projection (for example the notifier's
    /// delivery claims), in its own transaction; returns the rows affected. Never the log.
    async fn execute(&self, sql: &'static str, params: &[SqlValue]) -> Result<u64, StoreError>;

    /// Reads from read-model tables.
    async fn query(
        &self,
        sql: &'static str,
        params: &[SqlValue],
    ) -> Result<Vec<SqlRow>, StoreError>;

    /// Succeeds when the database answers and its schema is the one this binary expects.
    async fn check_ready(&self) -> Result<(), StoreError>;

    /// A counter bumped whenever events may have been appended (by this process, or by
    /// another one where the back end can tell).
    fn subscribe(&self) -> watch::Receiver<u64>;
}

/// Called with a projection's name after a commit that changed its read model inline.
pub type InlineApplied = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Wakes subscribers when events may have been appended.
#[derive(Clone)]
pub(crate) struct AppendSignal(std::sync::Arc<watch::Sender<u64>>);

impl AppendSignal {
    pub(crate) fn new() -> Self {
        AppendSignal(std::sync::Arc::new(watch::Sender::new(0)))
    }

    /// Bumps the counter every subscriber watches.
    pub(crate) fn notify(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    /// A handle that does not keep the signal alive (for background listeners).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<watch::Sender<u64>> {
        std::sync::Arc::downgrade(&self.0)
    }
}

/// Instances this store has seen recorded in `event_instances`.
pub(crate) type KnownInstances = std::sync::Mutex<std::collections::HashSet<String>>;

/// How far each (projection, instance) is known to have nothing left to apply: the position
/// of its last applied event, or further when the events after it are of types it does not
/// read. Kept in memory so an idle projection is checked without the write lock and does not
/// rescan the same foreign events on every pass; losing it only costs one rescan.
pub(crate) type ScanCursors =
    std::sync::Mutex<std::collections::HashMap<(&'static str, String), crate::event::Position>>;
