//! The system aggregate: facts about the whole installation, such as first-start setup.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};

/// The system aggregate lives outside every instance.
pub const SYSTEM_INSTANCE_ID: &str = "";
/// The system aggregate's id.
pub const SYSTEM_AGGREGATE_ID: &str = "system";

/// First-start setup finished; recorded in the transaction that created the default instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupCompleted {
    /// The instance created on first start.
    pub default_instance_id: String,
}

/// Events of the `system` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemEvent {
    /// `system.setup.completed`
    SetupCompleted(SetupCompleted),
}

impl DomainEvent for SystemEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SystemEvent::SetupCompleted(_) => "system.setup.completed",
        }
    }

    fn payload(&self) -> String {
        match self {
            SystemEvent::SetupCompleted(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        match event_type {
            "system.setup.completed" => {
                Ok(SystemEvent::SetupCompleted(serde_json::from_str(payload)?))
            }
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

/// The installation's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct System {
    /// Set once first-start setup completed.
    pub default_instance_id: Option<String>,
}

impl Aggregate for System {
    const TYPE: &'static str = "system";
    type Event = SystemEvent;

    fn apply(&mut self, event: &SystemEvent) {
        match event {
            SystemEvent::SetupCompleted(done) => {
                self.default_instance_id = Some(done.default_instance_id.clone())
            }
        }
    }
}
