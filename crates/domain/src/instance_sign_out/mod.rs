//! "Sign out everyone": an admin ends every live session of an instance at once, for incident
//! response. One `instance_sign_out` aggregate per instance (same id) records each operation:
//! started (by which admin token, how many sessions were live), one `progressed` per chunk of
//! sessions ended — appended in the same transaction as those sessions' ends, so a restart
//! resumes exactly where the last chunk stopped — and completed. At most one operation runs per
//! instance: starting while one runs returns the running one.

mod commands;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};

pub use commands::SignOutProgress;

/// An operation began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOutStarted {
    /// The operation's id.
    pub operation_id: String,
    /// The admin token that asked (its id).
    pub requested_by: String,
    /// The issuer the logout tokens carry.
    pub origin: String,
    /// Sessions live when it began.
    pub total: u64,
    /// When it began; sessions that begin later are not ended by it.
    pub started_at: DateTime<Utc>,
}

/// A chunk of sessions was ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOutProgressed {
    /// The operation.
    pub operation_id: String,
    /// Sessions this chunk ended.
    pub ended: u64,
}

/// No session live at the start is left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOutCompleted {
    /// The operation.
    pub operation_id: String,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
}

/// Events of the `instance_sign_out` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceSignOutEvent {
    /// See [`SignOutStarted`].
    Started(SignOutStarted),
    /// See [`SignOutProgressed`].
    Progressed(SignOutProgressed),
    /// See [`SignOutCompleted`].
    Completed(SignOutCompleted),
}

impl DomainEvent for InstanceSignOutEvent {
    fn event_type(&self) -> &'static str {
        match self {
            InstanceSignOutEvent::Started(_) => "instance_sign_out.started",
            InstanceSignOutEvent::Progressed(_) => "instance_sign_out.progressed",
            InstanceSignOutEvent::Completed(_) => "instance_sign_out.completed",
        }
    }

    fn payload(&self) -> String {
        match self {
            InstanceSignOutEvent::Started(payload) => to_json(payload),
            InstanceSignOutEvent::Progressed(payload) => to_json(payload),
            InstanceSignOutEvent::Completed(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "instance_sign_out.started" => {
                InstanceSignOutEvent::Started(serde_json::from_str(payload)?)
            }
            "instance_sign_out.progressed" => {
                InstanceSignOutEvent::Progressed(serde_json::from_str(payload)?)
            }
            "instance_sign_out.completed" => {
                InstanceSignOutEvent::Completed(serde_json::from_str(payload)?)
            }
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// One operation as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct SignOutOperation {
    /// How it began.
    pub started: SignOutStarted,
    /// Sessions ended so far.
    pub ended: u64,
    /// When it finished, once it has.
    pub finished_at: Option<DateTime<Utc>>,
}

impl SignOutOperation {
    /// Whether sessions are still being ended.
    pub fn running(&self) -> bool {
        self.finished_at.is_none()
    }
}

/// Every sign-out-everyone operation of an instance, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceSignOut {
    /// The operations.
    pub operations: Vec<SignOutOperation>,
}

impl Aggregate for InstanceSignOut {
    const TYPE: &'static str = "instance_sign_out";
    type Event = InstanceSignOutEvent;

    fn apply(&mut self, event: &InstanceSignOutEvent) {
        match event {
            InstanceSignOutEvent::Started(started) => self.operations.push(SignOutOperation {
                started: started.clone(),
                ended: 0,
                finished_at: None,
            }),
            InstanceSignOutEvent::Progressed(progressed) => {
                if let Some(operation) = self.operation_mut(&progressed.operation_id) {
                    operation.ended += progressed.ended;
                }
            }
            InstanceSignOutEvent::Completed(completed) => {
                if let Some(operation) = self.operation_mut(&completed.operation_id) {
                    operation.finished_at = Some(completed.finished_at);
                }
            }
        }
    }
}

impl InstanceSignOut {
    fn operation_mut(&mut self, operation_id: &str) -> Option<&mut SignOutOperation> {
        self.operations
            .iter_mut()
            .find(|operation| operation.started.operation_id == operation_id)
    }

    /// The operation with this id.
    pub fn operation(&self, operation_id: &str) -> Option<&SignOutOperation> {
        self.operations
            .iter()
            .find(|operation| operation.started.operation_id == operation_id)
    }

    /// The operation still running, if one is.
    pub fn running(&self) -> Option<&SignOutOperation> {
        self.operations.iter().find(|operation| operation.running())
    }

    /// Decides `Start`: nothing when an operation runs already (that one stands).
    pub fn start(&self, started: SignOutStarted) -> Vec<InstanceSignOutEvent> {
        if self.running().is_some() {
            vec![]
        } else {
            vec![InstanceSignOutEvent::Started(started)]
        }
    }

    /// Decides recording a chunk of `ended` sessions of the running operation, or its
    /// completion when the chunk is empty; nothing when no operation runs.
    pub fn advance(&self, ended: u64, now: DateTime<Utc>) -> Vec<InstanceSignOutEvent> {
        let Some(running) = self.running() else {
            return vec![];
        };
        let operation_id = running.started.operation_id.clone();
        if ended == 0 {
            vec![InstanceSignOutEvent::Completed(SignOutCompleted {
                operation_id,
                finished_at: now,
            })]
        } else {
            vec![InstanceSignOutEvent::Progressed(SignOutProgressed {
                operation_id,
                ended,
            })]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(id: &str) -> SignOutStarted {
        SignOutStarted {
            operation_id: id.into(),
            requested_by: "token".into(),
            origin: "https://id.example".into(),
            total: 3,
            started_at: Utc::now(),
        }
    }

    #[test]
    fn one_operation_runs_at_a_time_and_counts_its_chunks() {
        let mut state = InstanceSignOut::default();
        let events = state.start(started("a"));
        state.apply(&events[0]);
        assert!(state.start(started("b")).is_empty(), "a runs");
        for event in state.advance(2, Utc::now()) {
            state.apply(&event);
        }
        for event in state.advance(1, Utc::now()) {
            state.apply(&event);
        }
        assert_eq!(state.running().unwrap().ended, 3);
        for event in state.advance(0, Utc::now()) {
            state.apply(&event);
        }
        assert!(state.running().is_none());
        assert!(state.advance(5, Utc::now()).is_empty(), "nothing runs");
        assert_eq!(state.start(started("b")).len(), 1);
        assert!(!state.operation("a").unwrap().running());
    }
}
