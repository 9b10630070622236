//! Redelivery: an admin re-sends deliveries that failed or are still waiting. Each is moved by
//! the lifecycle (`RedeliveryRequested`: a new round, due at once) and recorded as an event
//! naming the admin token that asked; the notifier then signs a fresh logout token (new `jti`,
//! fresh `iat` and `exp`) for every attempt, as it always does.

use chrono::{DateTime, Utc};
use domain::DomainError;
use domain::session_logout::{
    BackChannelRedeliveryRequested, DeliveryFilter, DeliveryStage, DeliveryView, SessionLogoutEvent,
};

use super::lifecycle::{self, DeliveryState, Refused, RetryPolicy, Step};
use super::store::DomainDeliveries;

/// Deliveries of an application's failed ones taken per transaction.
const PAGE: u32 = 500;

/// What to re-send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeliver {
    /// One application's delivery for one session.
    One {
        /// The session.
        session_id: String,
        /// The application.
        client_id: String,
    },
    /// Every delivery of a session that failed or is waiting.
    Session {
        /// The session.
        session_id: String,
    },
    /// Every delivery to an application that failed at or after `since`.
    FailedOfApplication {
        /// The application.
        client_id: String,
        /// The earliest failure to re-send.
        since: DateTime<Utc>,
    },
}

/// A delivery that was not re-sent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The session.
    pub session_id: String,
    /// The application.
    pub client_id: String,
    /// Why.
    pub reason: Refused,
}

/// What a redelivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redelivered {
    /// Deliveries queued again, as (session id, client id).
    pub queued: Vec<(String, String)>,
    /// Deliveries left as they were.
    pub skipped: Vec<Skipped>,
}

/// Why a redelivery did nothing.
#[derive(Debug, thiserror::Error)]
pub enum RedeliveryError {
    /// No such delivery (or session) in the instance.
    #[error("{0}")]
    NotFound(String),
    /// The one delivery asked for cannot be re-sent.
    #[error("{0}")]
    Refused(Refused),
    /// The store failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// The lifecycle's policy does not matter for a redelivery (no attempt is judged); any will do.
const ANY_POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 1,
    base: std::time::Duration::ZERO,
    cap: std::time::Duration::ZERO,
};

impl DomainDeliveries {
    /// Re-sends what `what` names in `instance_id`, on behalf of admin token `requested_by`.
    pub async fn redeliver(
        &self,
        instance_id: &str,
        requested_by: &str,
        what: &Redeliver,
    ) -> Result<Redelivered, RedeliveryError> {
        match what {
            Redeliver::One {
                session_id,
                client_id,
            } => {
                let delivery = self
                    .domain()
                    .deliveries_of_session(instance_id, session_id)
                    .await?
                    .into_iter()
                    .find(|delivery| &delivery.client_id == client_id)
                    .ok_or_else(|| {
                        RedeliveryError::NotFound(format!(
                            "session {session_id} has no back-channel delivery to application {client_id}"
                        ))
                    })?;
                let done = self
                    .redeliver_views(instance_id, requested_by, vec![delivery])
                    .await?;
                match done.skipped.into_iter().next() {
                    Some(skipped) => Err(RedeliveryError::Refused(skipped.reason)),
                    None => Ok(Redelivered {
                        queued: done.queued,
                        skipped: vec![],
                    }),
                }
            }
            Redeliver::Session { session_id } => {
                let deliveries = self
                    .domain()
                    .deliveries_of_session(instance_id, session_id)
                    .await?;
                if deliveries.is_empty() {
                    return Err(RedeliveryError::NotFound(format!(
                        "session {session_id} has no back-channel deliveries"
                    )));
                }
                self.redeliver_views(instance_id, requested_by, deliveries)
                    .await
            }
            Redeliver::FailedOfApplication { client_id, since } => {
                let filter = DeliveryFilter {
                    stage: Some(DeliveryStage::Failed),
                    client_id: Some(client_id.clone()),
                    settled_since: Some(*since),
                    // Those that fail again after this started are not taken a second time.
                    settled_before: Some(self.domain().now() + chrono::Duration::milliseconds(1)),
                    ..DeliveryFilter::default()
                };
                let mut all = Redelivered::default();
                loop {
                    // Re-sent ones leave the filter (they are due again), so the first page
                    // is always the next one.
                    let page = self
                        .domain()
                        .deliveries_of_instance(instance_id, &filter, None, PAGE)
                        .await?;
                    if page.is_empty() {
                        return Ok(all);
                    }
                    let done = self
                        .redeliver_views(instance_id, requested_by, page)
                        .await?;
                    let stalled = done.queued.is_empty();
                    all.queued.extend(done.queued);
                    all.skipped.extend(done.skipped);
                    if stalled {
                        return Ok(all);
                    }
                }
            }
        }
    }

    async fn redeliver_views(
        &self,
        instance_id: &str,
        requested_by: &str,
        deliveries: Vec<DeliveryView>,
    ) -> Result<Redelivered, RedeliveryError> {
        let now = self.domain().now();
        let mut done = Redelivered::default();
        let mut entries = Vec::new();
        for delivery in deliveries {
            let state = self.state_of(&delivery);
            match lifecycle::next(&state, &Step::RedeliveryRequested, now, &ANY_POLICY, 0.0) {
                Ok(_) => entries.push((
                    instance_id.to_owned(),
                    delivery.session_id.clone(),
                    SessionLogoutEvent::RedeliveryRequested(BackChannelRedeliveryRequested {
                        client_id: delivery.client_id.clone(),
                        requested_by: requested_by.to_owned(),
                        at: now,
                    }),
                )),
                Err(reason) => done.skipped.push(Skipped {
                    session_id: delivery.session_id,
                    client_id: delivery.client_id,
                    reason,
                }),
            }
        }
        // Checked again against the history as it stands when appended: a delivery that was
        // acknowledged meanwhile is not re-sent.
        let recorded = self
            .domain()
            .append_delivery_events(&entries, requested_by, &|registration, _| {
                !DeliveryState::sent_by(registration)
            })
            .await?;
        for ((_, session_id, event), recorded) in entries.into_iter().zip(recorded) {
            let client_id = event.client_id().to_owned();
            if recorded {
                // A claim held in memory would hide the delivery from the notifier's reads.
                self.release(instance_id, &session_id, &client_id);
                done.queued.push((session_id, client_id));
            } else {
                done.skipped.push(Skipped {
                    session_id,
                    client_id,
                    reason: Refused::AlreadySent,
                });
            }
        }
        Ok(done)
    }
}
