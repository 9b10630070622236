//! `DeliveryQueue`: everything the back-channel notifier may do with the store, and nothing
//! more — look for due deliveries, claim them, hand them back or schedule a retry, record
//! outcomes. The notifier holds this port, never the raw store or the projection runner.
//! Where this process is alone on its database (SQLite) claims are held in memory
//! (`LocalClaims`) and taking work is a read; on PostgreSQL they are leases in the read model.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use eventstore::Projection;
use tokio::sync::watch;

use super::{BackChannelDeliveryProjection, DeliveryView, SessionLogoutEvent};
use crate::error::DomainError;
use crate::service::Domain;

/// The deliveries read model as a work queue, for the notifier.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// The current time as the domain sees it.
    fn now(&self) -> DateTime<Utc>;

    /// Changes whenever this process applied events to the deliveries (a session ended, an
    /// outcome was recorded); the notifier looks for work then.
    fn changes(&self) -> watch::Receiver<u64>;

    /// Brings the deliveries read model up to date with the log.
    async fn catch_up(&self) -> Result<(), DomainError>;

    /// Whether any pending, unclaimed delivery is due at `now` (a read; claiming is a write).
    async fn any_due(&self, now: DateTime<Utc>) -> Result<bool, DomainError>;

    /// When the next pending delivery falls due (or its claim runs out), if any is pending.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, DomainError>;

    /// Claims up to `limit` due deliveries under `claim` until `until`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        claim: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, DomainError>;

    /// Releases a claimed delivery without counting an attempt; due again at `at`.
    async fn defer(&self, delivery: &DeliveryView, at: DateTime<Utc>) -> Result<(), DomainError>;

    /// Releases a claimed delivery after a recoverable failure; attempt again at `at`.
    async fn schedule_retry(
        &self,
        delivery: &DeliveryView,
        attempts: u32,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), DomainError>;

    /// Records final outcomes as events, one transaction for the batch. Entries are
    /// (instance id, session id, outcome).
    async fn record_outcomes(
        &self,
        outcomes: &[(String, String, SessionLogoutEvent)],
    ) -> Result<(), DomainError>;
}

#[async_trait]
impl DeliveryQueue for Domain {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.runner
            .applied(BackChannelDeliveryProjection.name())
            .unwrap_or_else(|| self.store.subscribe())
    }

    async fn catch_up(&self) -> Result<(), DomainError> {
        self.runner
            .catch_up(BackChannelDeliveryProjection.name())
            .await?;
        Ok(())
    }

    async fn any_due(&self, now: DateTime<Utc>) -> Result<bool, DomainError> {
        if self.store.shared() {
            return DeliveryView::any_due(self.store.as_ref(), now).await;
        }
        let held = self.local_claims.held(now);
        Ok(
            !DeliveryView::due_except(self.store.as_ref(), now, &held, 1)
                .await?
                .is_empty(),
        )
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, DomainError> {
        if self.store.shared() {
            return DeliveryView::next_due_at(self.store.as_ref()).await;
        }
        let held = self.local_claims.held(self.clock.now());
        let next = DeliveryView::next_due_except(self.store.as_ref(), &held).await?;
        // A held claim that runs out makes its delivery due again.
        let expiry = self
            .local_claims
            .earliest_expiry()
            .map(|until| until + chrono::Duration::milliseconds(1));
        Ok(next.into_iter().chain(expiry).min())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        claim: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, DomainError> {
        if self.store.shared() {
            return DeliveryView::claim_due(self.store.as_ref(), now, until, claim, limit).await;
        }
        let held = self.local_claims.held(now);
        let due = DeliveryView::due_except(self.store.as_ref(), now, &held, limit).await?;
        self.local_claims.hold(&due, until);
        Ok(due)
    }

    async fn defer(&self, delivery: &DeliveryView, at: DateTime<Utc>) -> Result<(), DomainError> {
        delivery.defer(self.store.as_ref(), at).await?;
        self.release_local(delivery);
        Ok(())
    }

    async fn schedule_retry(
        &self,
        delivery: &DeliveryView,
        attempts: u32,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), DomainError> {
        delivery
            .schedule_retry(self.store.as_ref(), attempts, at, error)
            .await?;
        self.release_local(delivery);
        Ok(())
    }

    async fn record_outcomes(
        &self,
        outcomes: &[(String, String, SessionLogoutEvent)],
    ) -> Result<(), DomainError> {
        self.record_back_channel_outcomes(outcomes).await?;
        for (instance_id, session_id, outcome) in outcomes {
            let client_id = match outcome {
                SessionLogoutEvent::Sent(sent) => &sent.client_id,
                SessionLogoutEvent::Failed(failed) => &failed.client_id,
                SessionLogoutEvent::Registered(registered) => &registered.client_id,
            };
            self.local_claims
                .release(instance_id, session_id, client_id);
        }
        Ok(())
    }
}

impl Domain {
    /// Lets go of a claim held in memory (none is held on a shared database).
    fn release_local(&self, delivery: &DeliveryView) {
        self.local_claims.release(
            &delivery.instance_id,
            &delivery.session_id,
            &delivery.client_id,
        );
    }
}
