//! Back-channel logout bookkeeping, one `session_logout` aggregate per session (same id):
//! which applications must be told when the session ends, and what came of telling them.
//!
//! A registration is recorded in the same append as the tokens that caused it, so an
//! application that holds tokens of a session is always known to the notifier. Outcomes are
//! recorded once: a second `sent` or `failed` for the same application is refused, which is
//! what lets several notifier processes race without sending twice.

mod commands;
mod local_claims;
mod projection;
mod queue;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub(crate) use local_claims::LocalClaims;
pub use projection::{BackChannelDeliveryProjection, DeliveryView};
pub use queue::DeliveryQueue;

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

/// The application acknowledged a logout token (200 or 204).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackChannelSent {
    /// The application.
    pub client_id: String,
    /// Delivery attempts, this one included.
    pub attempts: u32,
}

/// Delivery was given up: the application refused, or retries ran out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackChannelFailed {
    /// The application.
    pub client_id: String,
    /// Delivery attempts made.
    pub attempts: u32,
    /// Why, readable by an admin.
    pub reason: String,
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
}

impl DomainEvent for SessionLogoutEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SessionLogoutEvent::Registered(_) => "session_logout.back_channel.registered",
            SessionLogoutEvent::Sent(_) => "session_logout.back_channel.sent",
            SessionLogoutEvent::Failed(_) => "session_logout.back_channel.failed",
        }
    }

    fn payload(&self) -> String {
        match self {
            SessionLogoutEvent::Registered(payload) => to_json(payload),
            SessionLogoutEvent::Sent(payload) => to_json(payload),
            SessionLogoutEvent::Failed(payload) => to_json(payload),
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
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// Where one application's notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Registered; not delivered (yet).
    Pending,
    /// Delivered.
    Sent,
    /// Given up.
    Failed,
}

/// One application's registration in a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// As registered.
    pub registered: BackChannelRegistered,
    /// Where delivery stands.
    pub state: DeliveryState,
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
        let mut settle = |client_id: &str, state| {
            if let Some(registration) = self.registrations.get_mut(client_id) {
                registration.state = state;
            }
        };
        match event {
            SessionLogoutEvent::Registered(registered) => {
                self.registrations
                    .entry(registered.client_id.clone())
                    .or_insert_with(|| Registration {
                        registered: registered.clone(),
                        state: DeliveryState::Pending,
                    });
            }
            SessionLogoutEvent::Sent(sent) => settle(&sent.client_id, DeliveryState::Sent),
            SessionLogoutEvent::Failed(failed) => settle(&failed.client_id, DeliveryState::Failed),
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

    /// Decides `RecordOutcome`: nothing unless the application's notification is pending, so
    /// an outcome is recorded once however many notifiers raced to deliver it.
    pub fn record(&self, outcome: SessionLogoutEvent) -> Vec<SessionLogoutEvent> {
        let client_id = match &outcome {
            SessionLogoutEvent::Sent(sent) => &sent.client_id,
            SessionLogoutEvent::Failed(failed) => &failed.client_id,
            SessionLogoutEvent::Registered(_) => return vec![],
        };
        match self.registrations.get(client_id) {
            Some(registration) if registration.state == DeliveryState::Pending => vec![outcome],
            _ => vec![],
        }
    }

    /// The registrations still waiting for delivery.
    pub fn pending(&self) -> impl Iterator<Item = &BackChannelRegistered> {
        self.registrations
            .values()
            .filter(|registration| registration.state == DeliveryState::Pending)
            .map(|registration| &registration.registered)
    }
}

/// When a delivery attempt may next be made: exponential backoff from `base`, doubled per
/// attempt up to `cap`, with up to 50 % random jitter subtracted so that retries of one mass
/// logout do not arrive in lockstep.
pub fn retry_at(
    now: DateTime<Utc>,
    attempts: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
    jitter: f64,
) -> DateTime<Utc> {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    let delay = base.saturating_mul(factor).min(cap);
    let delay = delay.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0));
    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
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
        assert_eq!(logout.pending().count(), 1);
    }

    #[test]
    fn an_outcome_is_recorded_once_and_only_for_a_registration() {
        let mut logout = SessionLogout::default();
        let sent = || {
            SessionLogoutEvent::Sent(BackChannelSent {
                client_id: "a".into(),
                attempts: 1,
            })
        };
        assert!(logout.record(sent()).is_empty(), "not registered");
        logout.apply(&logout.register(registered("a"))[0]);
        let events = logout.record(sent());
        assert_eq!(events.len(), 1);
        logout.apply(&events[0]);
        assert!(logout.record(sent()).is_empty());
        let failed = SessionLogoutEvent::Failed(BackChannelFailed {
            client_id: "a".into(),
            attempts: 2,
            reason: "x".into(),
        });
        assert!(logout.record(failed).is_empty());
        assert_eq!(logout.pending().count(), 0);
        assert_eq!(logout.registrations["a"].state, DeliveryState::Sent);
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let now = Utc::now();
        let base = std::time::Duration::from_millis(100);
        let cap = std::time::Duration::from_secs(10);
        let delay = |attempts, jitter| {
            (retry_at(now, attempts, base, cap, jitter) - now).num_milliseconds()
        };
        assert_eq!(delay(1, 0.0), 100);
        assert_eq!(delay(2, 0.0), 200);
        assert_eq!(delay(4, 0.0), 800);
        assert_eq!(delay(30, 0.0), 10_000);
        assert_eq!(delay(2, 1.0), 100);
    }
}
