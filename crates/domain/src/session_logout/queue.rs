//! The deliveries read model as a work queue: the reads and lease writes the back-channel
//! notifier's store (`notify::back_channel::store`) is built from. Deciding what a delivery
//! may do next is the notifier's lifecycle; these only read and persist.
//!
//! On a shared database (PostgreSQL) claims are leases in the read model, so that of several
//! replicas exactly one takes each delivery; where the process is alone (SQLite) the notifier
//! holds claims in memory and takes work with a read (`due_deliveries_except`).

use chrono::{DateTime, Utc};
use eventstore::Projection;
use tokio::sync::watch;

use super::{BackChannelDeliveryProjection, DeliveryView};
use crate::error::DomainError;
use crate::service::Domain;

impl Domain {
    /// Changes whenever the deliveries read model changed in this process (a session ended,
    /// an outcome was recorded); the notifier looks for work then.
    pub fn deliveries_changed(&self) -> watch::Receiver<u64> {
        self.runner
            .applied(BackChannelDeliveryProjection.name())
            .unwrap_or_else(|| self.store.subscribe())
    }

    /// Brings the deliveries read model up to date with the log.
    pub async fn catch_up_deliveries(&self) -> Result<(), DomainError> {
        self.runner
            .catch_up(BackChannelDeliveryProjection.name())
            .await?;
        Ok(())
    }

    /// Whether other processes may work on the same database (then claims must be leases in
    /// the read model).
    pub fn deliveries_shared(&self) -> bool {
        self.store.shared()
    }

    /// Whether some due, unleased delivery exists (a read, for deciding whether to claim).
    pub async fn any_delivery_due(&self, now: DateTime<Utc>) -> Result<bool, DomainError> {
        DeliveryView::any_due(self.store.as_ref(), now).await
    }

    /// When the next due delivery falls due (or its lease runs out).
    pub async fn next_delivery_due_at(&self) -> Result<Option<DateTime<Utc>>, DomainError> {
        DeliveryView::next_due_at(self.store.as_ref()).await
    }

    /// Leases up to `limit` due deliveries to `claim` until `until` (one conditional UPDATE).
    pub async fn lease_due_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        claim: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, DomainError> {
        DeliveryView::claim_due(self.store.as_ref(), now, until, claim, limit).await
    }

    /// Up to `limit` due deliveries other than those in `held` (a JSON list of
    /// `instance|session|client` keys), oldest session end first: a read.
    pub async fn due_deliveries_except(
        &self,
        now: DateTime<Utc>,
        held: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, DomainError> {
        DeliveryView::due_except(self.store.as_ref(), now, held, limit).await
    }

    /// When the next due delivery not in `held` falls due.
    pub async fn next_delivery_due_except(
        &self,
        held: &str,
    ) -> Result<Option<DateTime<Utc>>, DomainError> {
        DeliveryView::next_due_except(self.store.as_ref(), held).await
    }

    /// Releases a delivery's lease without an attempt; due again at `at`.
    pub async fn defer_delivery(
        &self,
        delivery: &DeliveryView,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        delivery.defer(self.store.as_ref(), at).await
    }
}
