//! Browser sessions: created at sign-in, ended by logout, sign-out, an admin, a user's
//! deactivation or removal, or expiry. Every end records the origin it was triggered at,
//! which later becomes the logout token's issuer.

mod activity;
mod commands;
mod expiry;
mod listing;
mod live;
mod projection;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use activity::{SessionActivity, SessionActivityProjection, SessionCounts};
pub use expiry::{SessionExpiryProjection, expired_sessions};
pub use listing::{LiveSession, SessionCursor, SessionFilter};
pub use projection::{SessionProjection, SessionView};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, decode, to_json};
use crate::error::DomainError;

/// Splits a batch into runs of consecutive session ends of one instance (the key), for read
/// models that write a mass sign-out with one statement per many sessions.
pub(crate) fn termination_runs(
    events: &[eventstore::StoredEvent],
) -> Vec<eventstore::Run<'_, &str>> {
    eventstore::runs(events, |event| {
        (event.aggregate.aggregate_type == Session::TYPE
            && matches!(
                decode::<SessionEvent>(event),
                Ok(SessionEvent::Terminated(_))
            ))
        .then_some(event.aggregate.instance_id.as_str())
    })
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminationReason {
    /// RP-Initiated Logout at the end_session endpoint.
    RpInitiatedLogout,
    /// The user signed out of all sessions.
    UserSignedOut,
    /// An administrator ended it.
    Admin,
    /// The user was deactivated.
    UserDeactivated,
    /// The user was removed.
    UserRemoved,
    /// The user's password (or another credential) was changed; sessions opened with the old
    /// one end unless the instance turns `end_sessions_on_credential_change` off.
    CredentialChanged,
    /// The idle or absolute lifetime ran out.
    Expired,
    /// An admin signed out everyone of the instance (the event's creator is the admin token
    /// that asked).
    InstanceSignOut,
}

/// A session began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionCreated {
    /// Who signed in.
    pub user_id: String,
    /// SHA-256 of the browser cookie's secret.
    pub cookie_hash: String,
    /// When the user authenticated (the `auth_time` claim).
    pub auth_time: DateTime<Utc>,
    /// The session ends at this time at the latest.
    pub expires_at: DateTime<Utc>,
    /// The browser's User-Agent, for the admin API.
    pub user_agent: Option<String>,
}

/// A session ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionTerminated {
    /// Why.
    pub reason: TerminationReason,
    /// The origin (scheme://host[:port]) the ending request came in on; the issuer to use in
    /// logout tokens. For expiry, the instance's own external URL.
    pub triggered_at_origin: String,
}

/// Events of the `session` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// `session.created`
    Created(SessionCreated),
    /// `session.terminated`
    Terminated(SessionTerminated),
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SessionEvent::Created(_) => "session.created",
            SessionEvent::Terminated(_) => "session.terminated",
        }
    }

    fn payload(&self) -> String {
        match self {
            SessionEvent::Created(payload) => to_json(payload),
            SessionEvent::Terminated(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "session.created" => SessionEvent::Created(serde_json::from_str(payload)?),
            "session.terminated" => SessionEvent::Terminated(serde_json::from_str(payload)?),
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// A session's state, as commands see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    /// The user, once created.
    pub user_id: Option<String>,
    /// When it expires at the latest.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether it ended.
    pub terminated: bool,
}

impl Aggregate for Session {
    const TYPE: &'static str = "session";
    type Event = SessionEvent;

    fn apply(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Created(created) => {
                self.user_id = Some(created.user_id.clone());
                self.expires_at = Some(created.expires_at);
            }
            SessionEvent::Terminated(_) => self.terminated = true,
        }
    }
}

impl Session {
    /// Whether the session is live at `now`: created, not ended, not expired.
    pub fn is_live(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        !self.terminated && self.expires_at.is_some_and(|expires_at| expires_at > now)
    }

    /// Decides `CreateSession`.
    pub fn create(&self, created: SessionCreated) -> Result<Vec<SessionEvent>, DomainError> {
        if self.user_id.is_some() {
            return Err(DomainError::Invalid {
                field: "session_id",
                reason: "the session already exists".into(),
            });
        }
        Ok(vec![SessionEvent::Created(created)])
    }

    /// Decides `TerminateSession`; ending an ended session records nothing (logout is
    /// idempotent).
    pub fn terminate(
        &self,
        reason: TerminationReason,
        triggered_at_origin: &str,
    ) -> Result<Vec<SessionEvent>, DomainError> {
        if self.user_id.is_none() {
            return Err(DomainError::NotFound("session".into()));
        }
        if self.terminated {
            return Ok(vec![]);
        }
        Ok(vec![SessionEvent::Terminated(SessionTerminated {
            reason,
            triggered_at_origin: triggered_at_origin.to_owned(),
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminating_twice_records_once() {
        let mut session = Session::default();
        assert!(matches!(
            session.terminate(TerminationReason::Admin, "http://x"),
            Err(DomainError::NotFound(_))
        ));
        let now = Utc::now();
        let created = SessionCreated {
            user_id: "u".into(),
            cookie_hash: "h".into(),
            auth_time: now,
            expires_at: now,
            user_agent: None,
        };
        session.apply(&session.create(created.clone()).unwrap()[0]);
        assert!(session.create(created).is_err());
        let ended = session
            .terminate(
                TerminationReason::RpInitiatedLogout,
                "https://id.example.com",
            )
            .unwrap();
        let SessionEvent::Terminated(terminated) = &ended[0] else {
            panic!()
        };
        assert_eq!(terminated.triggered_at_origin, "https://id.example.com");
        session.apply(&ended[0]);
        assert!(
            session
                .terminate(TerminationReason::Admin, "https://id.example.com")
                .unwrap()
                .is_empty()
        );
    }
}
