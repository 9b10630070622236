//! `DeliveryStore`: the one narrow interface through which the notifier persists deliveries —
//! look for due ones, claim them, hand them back, record what an attempt came to. The
//! notifier owns it; [`DomainDeliveries`] implements it over the domain's event log and
//! `back_channel_deliveries` read model.
//!
//! What is stored where, and why:
//! - every attempt and every outcome is an event of the session's `session_logout`
//!   aggregate (`retry_scheduled`, `sent`, `failed`), as is an admin's redelivery request,
//!   so a delivery's history is its events;
//! - "in flight" is a claim: on PostgreSQL a lease in the read model (several replicas must
//!   not take the same delivery), on SQLite, where the process is alone, held in memory
//!   (`local_claims.rs`). A claim is coordination, not history: a crash forgets it, and the
//!   delivery is due again when it runs out;
//! - a deferral (the host is busy; no attempt was made) only moves the read model's schedule.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::session_logout::{
    AttemptRecord, BackChannelFailed, BackChannelRetryScheduled, BackChannelSent, DeliveryView,
    SessionLogoutEvent,
};
use domain::{Domain, DomainError};
use tokio::sync::watch;

use super::lifecycle::DeliveryState;
use super::local_claims::LocalClaims;

/// What one attempt came to, to be recorded.
#[derive(Debug, Clone)]
pub struct AttemptDone {
    /// The instance.
    pub instance_id: String,
    /// The session.
    pub session_id: String,
    /// The application.
    pub client_id: String,
    /// The state the lifecycle moved the delivery to: sent, failed or retry at.
    pub after: DeliveryState,
    /// The attempt.
    pub attempt: AttemptRecord,
    /// Why it failed, for a failed delivery.
    pub reason: Option<String>,
}

impl AttemptDone {
    /// The event that records it; `None` for a state an attempt cannot lead to.
    fn event(&self) -> Option<SessionLogoutEvent> {
        let client_id = self.client_id.clone();
        let attempt = self.attempt.clone();
        Some(match self.after {
            DeliveryState::Sent { attempts } => SessionLogoutEvent::Sent(BackChannelSent {
                client_id,
                attempts,
                attempt: Some(attempt),
            }),
            DeliveryState::Failed { attempts } => SessionLogoutEvent::Failed(BackChannelFailed {
                client_id,
                attempts,
                reason: self
                    .reason
                    .clone()
                    .or_else(|| attempt.error.clone())
                    .unwrap_or_default(),
                attempt: Some(attempt),
            }),
            DeliveryState::RetryAt { attempts, at } => {
                SessionLogoutEvent::RetryScheduled(BackChannelRetryScheduled {
                    client_id,
                    attempts,
                    retry_at: at,
                    attempt,
                })
            }
            _ => return None,
        })
    }
}

/// Everything the notifier may do with stored deliveries.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// The current time as the domain sees it.
    fn now(&self) -> DateTime<Utc>;

    /// Changes whenever the stored deliveries changed in this process; the notifier looks for
    /// work then.
    fn changes(&self) -> watch::Receiver<u64>;

    /// Brings the stored deliveries up to date with the log.
    async fn catch_up(&self) -> Result<(), DomainError>;

    /// Whether any due, unclaimed delivery exists at `now` (a read; claiming may write).
    async fn any_due(&self, now: DateTime<Utc>) -> Result<bool, DomainError>;

    /// When the next delivery falls due (or its claim runs out), if any is waiting.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, DomainError>;

    /// Claims up to `limit` due deliveries until `until` (the lifecycle's `Claimed`).
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, DomainError>;

    /// Hands a claimed delivery back without an attempt; due again at `at` (`Deferred`).
    async fn defer(&self, delivery: &DeliveryView, at: DateTime<Utc>) -> Result<(), DomainError>;

    /// Records what attempts came to, one transaction for the batch, and lets go of their
    /// claims. A delivery already settled by someone else records nothing.
    async fn record(&self, done: &[AttemptDone]) -> Result<(), DomainError>;
}

/// [`DeliveryStore`] over the domain.
pub struct DomainDeliveries {
    domain: Arc<Domain>,
    claims: LocalClaims,
}

impl DomainDeliveries {
    /// The store of `domain`'s deliveries.
    pub fn new(domain: Arc<Domain>) -> Self {
        DomainDeliveries {
            domain,
            claims: LocalClaims::default(),
        }
    }

    /// Where `delivery` stands now, counting claims held in this process.
    pub fn state_of(&self, delivery: &DeliveryView) -> DeliveryState {
        let held = self.claims.held_until(
            &delivery.instance_id,
            &delivery.session_id,
            &delivery.client_id,
        );
        DeliveryState::of(delivery, held, self.domain.now())
    }

    /// The domain the deliveries belong to.
    pub(super) fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Lets go of a claim held in memory (none is held on a shared database).
    pub(super) fn release(&self, instance_id: &str, session_id: &str, client_id: &str) {
        self.claims.release(instance_id, session_id, client_id);
    }
}

#[async_trait]
impl DeliveryStore for DomainDeliveries {
    fn now(&self) -> DateTime<Utc> {
        self.domain.now()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.domain.deliveries_changed()
    }

    async fn catch_up(&self) -> Result<(), DomainError> {
        self.domain.catch_up_deliveries().await
    }

    async fn any_due(&self, now: DateTime<Utc>) -> Result<bool, DomainError> {
        if self.domain.deliveries_shared() {
            return self.domain.any_delivery_due(now).await;
        }
        let held = self.claims.held(now);
        Ok(!self
            .domain
            .due_deliveries_except(now, &held, 1)
            .await?
            .is_empty())
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, DomainError> {
        if self.domain.deliveries_shared() {
            return self.domain.next_delivery_due_at().await;
        }
        let held = self.claims.held(self.domain.now());
        let next = self.domain.next_delivery_due_except(&held).await?;
        // A held claim that runs out makes its delivery due again.
        let expiry = self
            .claims
            .earliest_expiry()
            .map(|until| until + chrono::Duration::milliseconds(1));
        Ok(next.into_iter().chain(expiry).min())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, DomainError> {
        if self.domain.deliveries_shared() {
            let claim = uuid::Uuid::new_v4().simple().to_string();
            return self
                .domain
                .lease_due_deliveries(now, until, &claim, limit)
                .await;
        }
        let held = self.claims.held(now);
        let due = self.domain.due_deliveries_except(now, &held, limit).await?;
        self.claims.hold(&due, until);
        Ok(due)
    }

    async fn defer(&self, delivery: &DeliveryView, at: DateTime<Utc>) -> Result<(), DomainError> {
        self.domain.defer_delivery(delivery, at).await?;
        self.release(
            &delivery.instance_id,
            &delivery.session_id,
            &delivery.client_id,
        );
        Ok(())
    }

    async fn record(&self, done: &[AttemptDone]) -> Result<(), DomainError> {
        let entries: Vec<(String, String, SessionLogoutEvent)> = done
            .iter()
            .filter_map(|done| {
                let event = done.event()?;
                Some((done.instance_id.clone(), done.session_id.clone(), event))
            })
            .collect();
        // An attempt's record is admitted while the delivery is unsettled: of two notifiers
        // that raced (a lease ran out mid-attempt), the first outcome stands.
        self.domain
            .append_delivery_events(&entries, "back_channel_notifier", &|registration, _| {
                !DeliveryState::settled_by(registration)
            })
            .await?;
        for done in done {
            self.release(&done.instance_id, &done.session_id, &done.client_id);
        }
        Ok(())
    }
}
