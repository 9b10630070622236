//! Back-channel logout bookkeeping, one `session_logout` aggregate per session (same id):
//! which applications must be told when the session ends, and what came of telling them.
//!
//! A registration is recorded in the same append as the tokens that caused it, so an
//! application that holds tokens of a session is always known to the notifier. After that the
//! aggregate keeps each registration's history — every attempt, outcome and redelivery
//! request — and the notifier's lifecycle (`notify::back_channel::lifecycle`) decides which
//! event may be appended to it (`Domain::append_delivery_events`), so an outcome is recorded
//! once however many notifiers raced to deliver it.

mod commands;
mod health;
mod hourly;
mod projection;
mod queue;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use health::{BackChannelHealthProjection, DeliveryHealth, Latency, WindowHealth};
pub use hourly::{DeliveryHour, HOURS, empty_day};
pub use projection::{
    BackChannelDeliveryProjection, DeliveryCounts, DeliveryCursor, DeliveryFilter, DeliveryStage,
    DeliveryView,
};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};

/// An application received tokens in the session and wants back-channel logout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackChannelRegistered {
    /// The application.
    pub client_id: String,
    /// Its `back_channel_logout_uri` when it received the tokens.
    pub uri: String,
    /// The session's user (the logout token's `sub`).
    pub user_id: String,
    /// The algorithm its ID tokens are signed with; its logout token uses the same.
    pub signing_alg: String,
}

/// What one delivery attempt met, for the delivery's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// When the attempt started.
    pub at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The HTTP status the application answered with, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong, readable by an admin (none when delivered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The application acknowledged a logout token (200 or 204).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackChannelSent {
    /// The application.
    pub client_id: String,
    /// Delivery attempts in this round, this one included.
    pub attempts: u32,
    /// The attempt that succeeded (absent in events recorded before attempts were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<AttemptRecord>,
}

/// Delivery was given up: the application refused, or retries ran out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackChannelFailed {
    /// The application.
    pub client_id: String,
    /// Delivery attempts made in this round.
    pub attempts: u32,
    /// Why, readable by an admin.
    pub reason: String,
    /// The last attempt (absent in events recorded before attempts were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<AttemptRecord>,
}

/// An attempt failed in a way that may recover; the next one is scheduled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackChannelRetryScheduled {
    /// The application.
    pub client_id: String,
    /// Delivery attempts made in this round.
    pub attempts: u32,
    /// When the next attempt may be made.
    pub retry_at: DateTime<Utc>,
    /// The attempt that failed.
    pub attempt: AttemptRecord,
}

/// An admin asked for a delivery to be sent again: a new round of attempts, each with a
/// freshly signed logout token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackChannelRedeliveryRequested {
    /// The application.
    pub client_id: String,
    /// The admin token that asked (its id).
    pub requested_by: String,
    /// When it was asked.
    pub at: DateTime<Utc>,
}

/// Events of the `session_logout` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionLogoutEvent {
    /// See [`BackChannelRegistered`].
    Registered(BackChannelRegistered),
    /// See [`BackChannelSent`].
    Sent(BackChannelSent),
    /// See [`BackChannelFailed`].
    Failed(BackChannelFailed),
    /// See [`BackChannelRetryScheduled`].
    RetryScheduled(BackChannelRetryScheduled),
    /// See [`BackChannelRedeliveryRequested`].
    RedeliveryRequested(BackChannelRedeliveryRequested),
}

impl DomainEvent for SessionLogoutEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SessionLogoutEvent::Registered(_) => "session_logout.back_channel.registered",
            SessionLogoutEvent::Sent(_) => "session_logout.back_channel.sent",
            SessionLogoutEvent::Failed(_) => "session_logout.back_channel.failed",
            SessionLogoutEvent::RetryScheduled(_) => "session_logout.back_channel.retry_scheduled",
            SessionLogoutEvent::RedeliveryRequested(_) => {
                "session_logout.back_channel.redelivery_requested"
            }
        }
    }

    fn payload(&self) -> String {
        match self {
            SessionLogoutEvent::Registered(payload) => to_json(payload),
            SessionLogoutEvent::Sent(payload) => to_json(payload),
            SessionLogoutEvent::Failed(payload) => to_json(payload),
            SessionLogoutEvent::RetryScheduled(payload) => to_json(payload),
            SessionLogoutEvent::RedeliveryRequested(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "session_logout.back_channel.registered" => {
                SessionLogoutEvent::Registered(serde_json::from_str(payload)?)
            }
            "session_logout.back_channel.sent" => {
                SessionLogoutEvent::Sent(serde_json::from_str(payload)?)
            }
            "session_logout.back_channel.failed" => {
                SessionLogoutEvent::Failed(serde_json::from_str(payload)?)
            }
            "session_logout.back_channel.retry_scheduled" => {
                SessionLogoutEvent::RetryScheduled(serde_json::from_str(payload)?)
            }
            "session_logout.back_channel.redelivery_requested" => {
                SessionLogoutEvent::RedeliveryRequested(serde_json::from_str(payload)?)
            }
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

impl SessionLogoutEvent {
    /// The application the event is about.
    pub fn client_id(&self) -> &str {
        match self {
            SessionLogoutEvent::Registered(event) => &event.client_id,
            SessionLogoutEvent::Sent(event) => &event.client_id,
            SessionLogoutEvent::Failed(event) => &event.client_id,
            SessionLogoutEvent::RetryScheduled(event) => &event.client_id,
            SessionLogoutEvent::RedeliveryRequested(event) => &event.client_id,
        }
    }
}

/// One application's registration in a session and everything recorded about its delivery
/// since. The notifier's lifecycle (`notify::back_channel::lifecycle`) reads where delivery
/// stands from this history; the domain only keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// As registered.
    pub registered: BackChannelRegistered,
    /// Attempts, outcomes and redelivery requests, oldest first.
    pub history: Vec<SessionLogoutEvent>,
}

/// A session's back-channel registrations, by client id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionLogout {
    /// Every registration, by client id.
    pub registrations: BTreeMap<String, Registration>,
}

impl Aggregate for SessionLogout {
    const TYPE: &'static str = "session_logout";
    type Event = SessionLogoutEvent;

    fn apply(&mut self, event: &SessionLogoutEvent) {
        match event {
            SessionLogoutEvent::Registered(registered) => {
                self.registrations
                    .entry(registered.client_id.clone())
                    .or_insert_with(|| Registration {
                        registered: registered.clone(),
                        history: Vec::new(),
                    });
            }
            other => {
                if let Some(registration) = self.registrations.get_mut(other.client_id()) {
                    registration.history.push(other.clone());
                }
            }
        }
    }
}

impl SessionLogout {
    /// Decides `Register`: nothing when the application is already registered in the session
    /// (signing in to it twice registers it once).
    pub fn register(&self, registered: BackChannelRegistered) -> Vec<SessionLogoutEvent> {
        if self.registrations.contains_key(&registered.client_id) {
            vec![]
        } else {
            vec![SessionLogoutEvent::Registered(registered)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(client_id: &str) -> BackChannelRegistered {
        BackChannelRegistered {
            client_id: client_id.into(),
            uri: format!("https://{client_id}.example.com/logout"),
            user_id: "u".into(),
            signing_alg: "ES256".into(),
        }
    }

    #[test]
    fn an_application_is_registered_once_per_session() {
        let mut logout = SessionLogout::default();
        let events = logout.register(registered("a"));
        assert_eq!(events.len(), 1);
        logout.apply(&events[0]);
        assert!(logout.register(registered("a")).is_empty());
        assert_eq!(logout.register(registered("b")).len(), 1);
    }
}
