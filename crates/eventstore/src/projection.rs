//! Projections: code that folds events into read-model tables.

use async_trait::async_trait;

use crate::error::BoxError;
use crate::event::{Position, StoredEvent};
use crate::read_model::ReadModelTx;

/// Where a newly installed projection starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Fold every event in the log.
    Beginning,
    /// Skip everything already in the log when the projection is first installed (used by
    /// notifiers, so old events are not acted on again).
    End,
}

/// Folds events into read-model tables. Applying must be idempotent in effect: the store
/// applies each event once per projection and instance, inside the transaction that advances
/// the projection's position, so a crash never leaves one without the other.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// A stable name; progress is stored under it.
    fn name(&self) -> &'static str;

    /// Where the projection starts when first installed.
    fn start_from(&self) -> StartFrom {
        StartFrom::Beginning
    }

    /// Only events of these aggregate types reach `apply`; all when empty.
    fn aggregate_types(&self) -> &'static [&'static str] {
        &[]
    }

    /// Only events of these types reach `apply`; all when empty.
    fn event_types(&self) -> &'static [&'static str] {
        &[]
    }

    /// Idempotent DDL (`CREATE TABLE IF NOT EXISTS …`) for the projection's tables, in the
    /// dialect both back ends share.
    fn schema(&self) -> &'static [&'static str] {
        &[]
    }

    /// Applies one event to the read model.
    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError>;

    /// Applies a batch of events, in order, inside one transaction. The default applies them
    /// one by one; a projection may instead fold the batch in memory and write each row it
    /// touches once, which is what makes catching up over a long log fast.
    async fn apply_batch(
        &self,
        tx: &mut dyn ReadModelTx,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError> {
        for (index, event) in events.iter().enumerate() {
            self.apply(tx, event)
                .await
                .map_err(|source| ApplyError { index, source })?;
        }
        Ok(())
    }
}

/// A batch failed at `events[index]`; nothing of the batch is kept.
#[derive(Debug)]
pub struct ApplyError {
    /// The index of the event the projection could not apply.
    pub index: usize,
    /// Why.
    pub source: BoxError,
}

/// What one projection batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Events were applied; the projection now stands at `position`.
    Applied {
        /// How many events were applied.
        count: usize,
        /// The position of the last applied event.
        position: Position,
    },
    /// Nothing visible was left to apply.
    Idle,
    /// Another process holds this projection's lock for the instance.
    Busy,
}
