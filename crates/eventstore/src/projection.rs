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

    /// Whether commands read this read model right after writing (the authorize, token,
    /// logout and delivery paths). A store that can write such a read model in the command's
    /// own transaction does (SQLite), so those commands never wait for a projection.
    fn on_hot_path(&self) -> bool {
        false
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

/// Consecutive events of a batch that one statement can write together.
#[derive(Debug)]
pub struct Run<'a, K> {
    /// The index of the run's first event in the batch.
    pub first: usize,
    /// The events, in order.
    pub events: &'a [StoredEvent],
    /// What they share; `None` for an event that stands alone.
    pub key: Option<K>,
}

/// Splits a batch into runs, keeping order: consecutive events for which `key` gives the
/// same `Some` value form one run; an event for which it gives `None` is a run by itself.
pub fn runs<'a, K: PartialEq>(
    events: &'a [StoredEvent],
    key: impl Fn(&'a StoredEvent) -> Option<K>,
) -> Vec<Run<'a, K>> {
    let mut runs: Vec<Run<'a, K>> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let event_key = key(event);
        match runs.last_mut() {
            Some(run) if event_key.is_some() && run.key == event_key => {
                run.events = &events[run.first..=index];
            }
            _ => runs.push(Run {
                first: index,
                events: &events[index..=index],
                key: event_key,
            }),
        }
    }
    runs
}

/// Applies a run's events one at a time with [`Projection::apply`].
pub async fn apply_each<K: Sync>(
    projection: &(impl Projection + ?Sized),
    tx: &mut dyn ReadModelTx,
    run: &Run<'_, K>,
) -> Result<(), ApplyError> {
    for (offset, event) in run.events.iter().enumerate() {
        projection
            .apply(tx, event)
            .await
            .map_err(|source| ApplyError {
                index: run.first + offset,
                source,
            })?;
    }
    Ok(())
}

/// Applies a batch run by run: a run of several events whose key has a multi-row
/// `statement` is written by it ([`execute_for_keys`](crate::execute_for_keys): the
/// statement's parameters, then the events' aggregate ids); every other run event by event.
pub async fn apply_runs<K: Sync>(
    projection: &(impl Projection + ?Sized),
    tx: &mut dyn ReadModelTx,
    runs: Vec<Run<'_, K>>,
    statement: impl Fn(&K) -> (&'static str, Vec<crate::SqlValue>) + Send + Sync,
) -> Result<(), ApplyError> {
    for run in runs {
        match &run.key {
            Some(key) if run.events.len() > 1 => {
                let (sql, params) = statement(key);
                let ids: Vec<&str> = run
                    .events
                    .iter()
                    .map(|event| event.aggregate.aggregate_id.as_str())
                    .collect();
                crate::execute_for_keys(tx, sql, &params, &ids)
                    .await
                    .map_err(|error| ApplyError {
                        index: run.first,
                        source: error.into(),
                    })?;
            }
            _ => apply_each(projection, tx, &run).await?,
        }
    }
    Ok(())
}

/// A batch failed at `events[index]`; nothing of the batch is kept.
#[derive(Debug)]
pub struct ApplyError {
    /// The index of the event the projection could not apply.
    pub index: usize,
    /// Why.
    pub source: BoxError,
}

impl ApplyError {
    /// The store's error for a batch of `projection` that failed on one of `events`.
    pub(crate) fn into_store_error(
        self,
        projection: &str,
        events: &[StoredEvent],
    ) -> crate::StoreError {
        let event = &events[self.index.min(events.len() - 1)];
        crate::StoreError::Projection {
            projection: projection.to_owned(),
            aggregate: Box::new(event.aggregate.clone()),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            source: self.source,
        }
    }
}

/// A logged event's position, aggregate type and event type: enough to tell which
/// projections read it without reading its payload.
pub(crate) type EventKind = (Position, String, String);

/// The position of the first event in `recent` after `after` that `projection` reads.
pub(crate) fn first_read(
    projection: &dyn Projection,
    recent: &[EventKind],
    after: Position,
) -> Option<Position> {
    recent
        .iter()
        .find(|(position, aggregate_type, event_type)| {
            *position > after && reads(projection, aggregate_type, event_type)
        })
        .map(|event| event.0)
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

impl BatchOutcome {
    /// How far a projection's scan cursor may move after this outcome of a batch whose first
    /// pending event was at `first`. When the batch was idle, another process applied what
    /// the look found (it is not after the stored position), so the cursor may pass it.
    pub(crate) fn scanned_to(self, first: Position) -> Option<Position> {
        match self {
            BatchOutcome::Applied { position, .. } => Some(position),
            BatchOutcome::Idle => Some(first),
            BatchOutcome::Busy => None,
        }
    }
}

/// The query for a projection's next batch after `after`.
pub(crate) fn batch_query(
    projection: &dyn Projection,
    instance_id: &str,
    after: Position,
    limit: u32,
) -> crate::event::EventQuery {
    let owned = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
    crate::event::EventQuery {
        instance_id: Some(instance_id.to_owned()),
        after,
        aggregate_types: owned(projection.aggregate_types()),
        event_types: owned(projection.event_types()),
        limit,
    }
}

/// Whether `projection` reads events of this aggregate type and event type.
pub(crate) fn reads(projection: &dyn Projection, aggregate_type: &str, event_type: &str) -> bool {
    let takes = |kinds: &[&str], kind: &str| kinds.is_empty() || kinds.contains(&kind);
    takes(projection.aggregate_types(), aggregate_type)
        && takes(projection.event_types(), event_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AggregateRef;

    fn event(event_type: &str) -> StoredEvent {
        StoredEvent {
            aggregate: AggregateRef::new("i1", "thing", "a"),
            sequence: 1,
            position: Position {
                tx: 1,
                in_tx_order: 0,
            },
            event_type: event_type.into(),
            revision: 1,
            payload: "{}".into(),
            creator: "test".into(),
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn runs_group_consecutive_equal_keys_and_keep_order() {
        let events: Vec<StoredEvent> = ["a", "a", "x", "x", "a", "b", "b"]
            .into_iter()
            .map(event)
            .collect();
        // "x" stands alone; the others group by their type.
        let key = |event: &StoredEvent| (event.event_type != "x").then(|| event.event_type.clone());
        let shape: Vec<(usize, usize, Option<String>)> = runs(&events, key)
            .into_iter()
            .map(|run| (run.first, run.events.len(), run.key))
            .collect();
        assert_eq!(
            shape,
            [
                (0, 2, Some("a".into())),
                (2, 1, None),
                (3, 1, None),
                (4, 1, Some("a".into())),
                (5, 2, Some("b".into())),
            ]
        );
        assert!(runs(&[], key).is_empty());
    }
}
