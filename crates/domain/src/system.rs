//! The system aggregate: facts about the whole installation, such as first-start setup and
//! which origin each instance created over the system API answers on.

use std::collections::BTreeMap;

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

/// An instance created over the system API took an origin: requests are routed by origin, so
/// no other instance may answer on it. Recorded in the same transaction as the instance, on
/// this one aggregate, so two creations racing for one origin conflict and one of them loses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginClaimed {
    /// The origin (`scheme://host[:port]`).
    pub origin: String,
    /// The instance.
    pub instance_id: String,
}

/// A removed instance's origin is free again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OriginReleased {
    /// The origin.
    pub origin: String,
}

/// Events of the `system` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemEvent {
    /// `system.setup.completed`
    SetupCompleted(SetupCompleted),
    /// `system.origin.claimed`
    OriginClaimed(OriginClaimed),
    /// `system.origin.released`
    OriginReleased(OriginReleased),
}

impl DomainEvent for SystemEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SystemEvent::SetupCompleted(_) => "system.setup.completed",
            SystemEvent::OriginClaimed(_) => "system.origin.claimed",
            SystemEvent::OriginReleased(_) => "system.origin.released",
        }
    }

    fn payload(&self) -> String {
        match self {
            SystemEvent::SetupCompleted(payload) => to_json(payload),
            SystemEvent::OriginClaimed(payload) => to_json(payload),
            SystemEvent::OriginReleased(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        match event_type {
            "system.setup.completed" => {
                Ok(SystemEvent::SetupCompleted(serde_json::from_str(payload)?))
            }
            "system.origin.claimed" => {
                Ok(SystemEvent::OriginClaimed(serde_json::from_str(payload)?))
            }
            "system.origin.released" => {
                Ok(SystemEvent::OriginReleased(serde_json::from_str(payload)?))
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
    /// The instance each claimed origin belongs to.
    pub origins: BTreeMap<String, String>,
}

impl Aggregate for System {
    const TYPE: &'static str = "system";
    type Event = SystemEvent;

    fn apply(&mut self, event: &SystemEvent) {
        match event {
            SystemEvent::SetupCompleted(done) => {
                self.default_instance_id = Some(done.default_instance_id.clone())
            }
            SystemEvent::OriginClaimed(claimed) => {
                self.origins
                    .insert(claimed.origin.clone(), claimed.instance_id.clone());
            }
            SystemEvent::OriginReleased(released) => {
                self.origins.remove(&released.origin);
            }
        }
    }
}

impl System {
    /// Decides `ClaimOrigin`: the instance that holds `origin` already, if any, refuses it.
    pub fn claim_origin(
        &self,
        origin: &str,
        instance_id: &str,
    ) -> Result<Vec<SystemEvent>, crate::error::DomainError> {
        if let Some(owner) = self.origins.get(origin) {
            return Err(crate::error::DomainError::StateConflict(format!(
                "{origin} is the origin of instance {owner}; requests are routed by host, so \
                 choose another host or port"
            )));
        }
        Ok(vec![SystemEvent::OriginClaimed(OriginClaimed {
            origin: origin.to_owned(),
            instance_id: instance_id.to_owned(),
        })])
    }

    /// Decides `ReleaseOrigin`: nothing to record unless `instance_id` holds it.
    pub fn release_origin(&self, origin: &str, instance_id: &str) -> Vec<SystemEvent> {
        if self.origins.get(origin).map(String::as_str) != Some(instance_id) {
            return vec![];
        }
        vec![SystemEvent::OriginReleased(OriginReleased {
            origin: origin.to_owned(),
        })]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_held_by_one_instance_until_released() {
        let mut system = System::default();
        let claimed = system.claim_origin("https://a.example", "one").unwrap();
        system.apply(&claimed[0]);
        assert!(matches!(
            system.claim_origin("https://a.example", "two"),
            Err(crate::error::DomainError::StateConflict(_))
        ));
        assert_eq!(system.release_origin("https://a.example", "two"), []);
        let released = system.release_origin("https://a.example", "one");
        assert_eq!(released.len(), 1);
        system.apply(&released[0]);
        assert_eq!(
            system
                .claim_origin("https://a.example", "two")
                .unwrap()
                .len(),
            1
        );
        for event in [claimed[0].clone(), released[0].clone()] {
            assert_eq!(
                SystemEvent::decode(event.event_type(), &event.payload()).unwrap(),
                event
            );
        }
    }
}
