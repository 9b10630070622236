//! Instances: tenants, each with its own issuer, settings and feature values.

mod commands;
mod projection;

pub use commands::{CreatedInstance, RemovalProgress, SetupOutcome, SetupRequest};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use projection::{InstanceProjection, InstanceView};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};
use crate::error::DomainError;
use crate::features::Feature;

/// An instance was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceAdded {
    /// A display name.
    pub name: String,
    /// The issuer: the URL applications reach the instance on.
    pub external_url: String,
    /// Whether this is the instance created on first start.
    pub default: bool,
}

/// The instance's external URL (its issuer) changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalUrlChanged {
    /// The new URL.
    pub external_url: String,
}

/// The name people see for the instance (on the sign-in and sign-out pages) changed; unset
/// means the host of its issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayNameChanged {
    /// The new name, or `None` for the issuer's host.
    pub display_name: Option<String>,
}

/// Removing the instance began: it no longer answers on its issuer, and its live sessions are
/// being ended (their applications told) before its data goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemovalStarted {}

/// The instance is gone: every session it had ended and every logout delivery settled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removed {}

/// Longest display name, in characters.
pub const DISPLAY_NAME_MAX_CHARS: usize = 100;

/// A feature was set for the instance. The name stays a string so that events naming a
/// feature this binary does not know still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSet {
    /// The feature's name.
    pub feature: String,
    /// Its instance value.
    pub enabled: bool,
}

/// A feature's instance value was removed; the system value applies again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureReset {
    /// The feature's name.
    pub feature: String,
}

/// Events of the `instance` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceEvent {
    /// `instance.added`
    Added(InstanceAdded),
    /// `instance.external_url.changed`
    ExternalUrlChanged(ExternalUrlChanged),
    /// `instance.display_name.changed`
    DisplayNameChanged(DisplayNameChanged),
    /// `instance.feature.set`
    FeatureSet(FeatureSet),
    /// `instance.feature.reset`
    FeatureReset(FeatureReset),
    /// `instance.removal.started`
    RemovalStarted(RemovalStarted),
    /// `instance.removed`
    Removed(Removed),
}

impl DomainEvent for InstanceEvent {
    fn event_type(&self) -> &'static str {
        match self {
            InstanceEvent::Added(_) => "instance.added",
            InstanceEvent::ExternalUrlChanged(_) => "instance.external_url.changed",
            InstanceEvent::DisplayNameChanged(_) => "instance.display_name.changed",
            InstanceEvent::FeatureSet(_) => "instance.feature.set",
            InstanceEvent::FeatureReset(_) => "instance.feature.reset",
            InstanceEvent::RemovalStarted(_) => "instance.removal.started",
            InstanceEvent::Removed(_) => "instance.removed",
        }
    }

    fn payload(&self) -> String {
        match self {
            InstanceEvent::Added(payload) => to_json(payload),
            InstanceEvent::ExternalUrlChanged(payload) => to_json(payload),
            InstanceEvent::DisplayNameChanged(payload) => to_json(payload),
            InstanceEvent::FeatureSet(payload) => to_json(payload),
            InstanceEvent::FeatureReset(payload) => to_json(payload),
            InstanceEvent::RemovalStarted(payload) => to_json(payload),
            InstanceEvent::Removed(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "instance.added" => InstanceEvent::Added(serde_json::from_str(payload)?),
            "instance.external_url.changed" => {
                InstanceEvent::ExternalUrlChanged(serde_json::from_str(payload)?)
            }
            "instance.display_name.changed" => {
                InstanceEvent::DisplayNameChanged(serde_json::from_str(payload)?)
            }
            "instance.feature.set" => InstanceEvent::FeatureSet(serde_json::from_str(payload)?),
            "instance.feature.reset" => InstanceEvent::FeatureReset(serde_json::from_str(payload)?),
            "instance.removal.started" => {
                InstanceEvent::RemovalStarted(serde_json::from_str(payload)?)
            }
            "instance.removed" => InstanceEvent::Removed(serde_json::from_str(payload)?),
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// An instance's state, as commands see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instance {
    /// Whether `instance.added` happened.
    pub exists: bool,
    /// Whether it is the instance created on first start (which cannot be removed).
    pub default: bool,
    /// Whether its removal began (it may have finished: see `removed`).
    pub removing: bool,
    /// Whether it was removed.
    pub removed: bool,
    /// The issuer URL.
    pub external_url: String,
    /// The configured display name, if any.
    pub display_name: Option<String>,
    /// Instance-level feature values by name.
    pub features: BTreeMap<String, bool>,
}

impl Aggregate for Instance {
    const TYPE: &'static str = "instance";
    type Event = InstanceEvent;

    fn apply(&mut self, event: &InstanceEvent) {
        match event {
            InstanceEvent::Added(added) => {
                self.exists = true;
                self.default = added.default;
                self.external_url = added.external_url.clone();
            }
            InstanceEvent::RemovalStarted(_) => self.removing = true,
            InstanceEvent::Removed(_) => self.removed = true,
            InstanceEvent::ExternalUrlChanged(changed) => {
                self.external_url = changed.external_url.clone()
            }
            InstanceEvent::DisplayNameChanged(changed) => {
                self.display_name = changed.display_name.clone()
            }
            InstanceEvent::FeatureSet(set) => {
                self.features.insert(set.feature.clone(), set.enabled);
            }
            InstanceEvent::FeatureReset(reset) => {
                self.features.remove(&reset.feature);
            }
        }
    }
}

impl Instance {
    /// Decides `AddInstance`.
    pub fn add(
        &self,
        name: &str,
        external_url: &str,
        default: bool,
    ) -> Result<Vec<InstanceEvent>, DomainError> {
        if self.exists {
            return Err(DomainError::Invalid {
                field: "instance_id",
                reason: "the instance already exists".into(),
            });
        }
        Ok(vec![InstanceEvent::Added(InstanceAdded {
            name: name.to_owned(),
            external_url: external_url.to_owned(),
            default,
        })])
    }

    /// Decides `ChangeExternalUrl`; nothing to record when it is unchanged.
    pub fn change_external_url(
        &self,
        external_url: &str,
    ) -> Result<Vec<InstanceEvent>, DomainError> {
        self.require_exists()?;
        if self.external_url == external_url {
            return Ok(vec![]);
        }
        Ok(vec![InstanceEvent::ExternalUrlChanged(
            ExternalUrlChanged {
                external_url: external_url.to_owned(),
            },
        )])
    }

    /// Decides `ChangeDisplayName`; nothing to record when it is unchanged. The name is
    /// trimmed; it must be 1 to [`DISPLAY_NAME_MAX_CHARS`] characters without control
    /// characters.
    pub fn change_display_name(
        &self,
        display_name: Option<&str>,
    ) -> Result<Vec<InstanceEvent>, DomainError> {
        self.require_exists()?;
        let display_name = display_name.map(Self::check_display_name).transpose()?;
        if self.display_name.as_deref() == display_name {
            return Ok(vec![]);
        }
        Ok(vec![InstanceEvent::DisplayNameChanged(
            DisplayNameChanged {
                display_name: display_name.map(str::to_owned),
            },
        )])
    }

    /// The trimmed display name, if it is 1 to [`DISPLAY_NAME_MAX_CHARS`] characters without
    /// control characters.
    pub fn check_display_name(name: &str) -> Result<&str, DomainError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > DISPLAY_NAME_MAX_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(DomainError::Invalid {
                field: "display_name",
                reason: format!(
                    "must be 1 to {DISPLAY_NAME_MAX_CHARS} characters without control characters"
                ),
            });
        }
        Ok(name)
    }

    /// Decides `SetInstanceFeature`; nothing to record when the value is already set.
    pub fn set_feature(
        &self,
        feature: Feature,
        enabled: bool,
    ) -> Result<Vec<InstanceEvent>, DomainError> {
        self.require_exists()?;
        if self.features.get(feature.name()) == Some(&enabled) {
            return Ok(vec![]);
        }
        Ok(vec![InstanceEvent::FeatureSet(FeatureSet {
            feature: feature.name().to_owned(),
            enabled,
        })])
    }

    /// Decides `ResetInstanceFeature`; nothing to record when no instance value is set.
    pub fn reset_feature(&self, feature: Feature) -> Result<Vec<InstanceEvent>, DomainError> {
        self.require_exists()?;
        if !self.features.contains_key(feature.name()) {
            return Ok(vec![]);
        }
        Ok(vec![InstanceEvent::FeatureReset(FeatureReset {
            feature: feature.name().to_owned(),
        })])
    }

    /// Decides `StartInstanceRemoval`; nothing to record when it already began. The default
    /// instance cannot be removed: the server's own configuration names it.
    pub fn start_removal(&self) -> Result<Vec<InstanceEvent>, DomainError> {
        self.require_exists()?;
        if self.default {
            return Err(DomainError::StateConflict(
                "the default instance cannot be removed: it is the one the server's \
                 configuration (server.external_url) names"
                    .into(),
            ));
        }
        if self.removing {
            return Ok(vec![]);
        }
        Ok(vec![InstanceEvent::RemovalStarted(RemovalStarted {})])
    }

    /// Decides `FinishInstanceRemoval`: only after removal began, once.
    pub fn finish_removal(&self) -> Result<Vec<InstanceEvent>, DomainError> {
        self.require_exists()?;
        if !self.removing {
            return Err(DomainError::Invalid {
                field: "instance_id",
                reason: "the instance's removal has not begun".into(),
            });
        }
        Ok(vec![InstanceEvent::Removed(Removed {})])
    }

    fn require_exists(&self) -> Result<(), DomainError> {
        if self.exists && !self.removed {
            Ok(())
        } else {
            Err(DomainError::NotFound("instance".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(events: &[InstanceEvent]) -> Instance {
        let mut instance = Instance::default();
        events.iter().for_each(|event| instance.apply(event));
        instance
    }

    fn added() -> InstanceEvent {
        InstanceEvent::Added(InstanceAdded {
            name: "default".into(),
            external_url: "http://localhost:8080".into(),
            default: true,
        })
    }

    #[test]
    fn a_display_name_is_checked_and_recorded_when_it_changes() {
        let instance = given(&[added()]);
        assert_eq!(instance.change_display_name(None).unwrap(), []);
        let events = instance.change_display_name(Some(" Example ID ")).unwrap();
        assert_eq!(
            events,
            [InstanceEvent::DisplayNameChanged(DisplayNameChanged {
                display_name: Some("Example ID".into())
            })]
        );
        let named = given(&[added(), events[0].clone()]);
        assert_eq!(named.change_display_name(Some("Example ID")).unwrap(), []);
        assert_eq!(named.change_display_name(None).unwrap().len(), 1);
        let too_long = "x".repeat(DISPLAY_NAME_MAX_CHARS + 1);
        for bad in ["", "  ", "a\nb", too_long.as_str()] {
            assert!(
                matches!(
                    instance.change_display_name(Some(bad)),
                    Err(DomainError::Invalid {
                        field: "display_name",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn setting_a_feature_records_it_once() {
        let instance = given(&[added()]);
        let events = instance
            .set_feature(Feature::BackChannelLogout, true)
            .unwrap();
        assert_eq!(
            events,
            [InstanceEvent::FeatureSet(FeatureSet {
                feature: "back_channel_logout".into(),
                enabled: true
            })]
        );
        let instance = given(&[added(), events[0].clone()]);
        assert!(
            instance
                .set_feature(Feature::BackChannelLogout, true)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            instance
                .set_feature(Feature::BackChannelLogout, false)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn resetting_an_unset_feature_records_nothing() {
        let instance = given(&[added()]);
        assert!(
            instance
                .reset_feature(Feature::BackChannelLogout)
                .unwrap()
                .is_empty()
        );
        let set = InstanceEvent::FeatureSet(FeatureSet {
            feature: "back_channel_logout".into(),
            enabled: false,
        });
        let instance = given(&[added(), set]);
        assert_eq!(
            instance
                .reset_feature(Feature::BackChannelLogout)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn commands_on_a_missing_instance_are_rejected() {
        let missing = Instance::default();
        assert!(matches!(
            missing.set_feature(Feature::BackChannelLogout, true),
            Err(DomainError::NotFound(_))
        ));
        assert!(matches!(
            given(&[added()]).add("x", "http://x", false),
            Err(DomainError::Invalid { .. })
        ));
    }

    #[test]
    fn removal_begins_once_finishes_once_and_spares_the_default_instance() {
        assert!(matches!(
            given(&[added()]).start_removal(),
            Err(DomainError::StateConflict(_))
        ));
        let tenant = InstanceEvent::Added(InstanceAdded {
            name: "tenant".into(),
            external_url: "https://tenant.example".into(),
            default: false,
        });
        let instance = given(std::slice::from_ref(&tenant));
        assert!(matches!(
            instance.finish_removal(),
            Err(DomainError::Invalid { .. })
        ));
        let started = instance.start_removal().unwrap();
        assert_eq!(started, [InstanceEvent::RemovalStarted(RemovalStarted {})]);
        let removing = given(&[tenant.clone(), started[0].clone()]);
        assert_eq!(removing.start_removal().unwrap(), []);
        let removed_event = removing.finish_removal().unwrap();
        let removed = given(&[tenant, started[0].clone(), removed_event[0].clone()]);
        assert!(matches!(
            removed.finish_removal(),
            Err(DomainError::NotFound(_))
        ));
        assert!(matches!(
            removed.set_feature(Feature::BackChannelLogout, true),
            Err(DomainError::NotFound(_))
        ));
    }

    #[test]
    fn events_round_trip_and_unknown_ones_are_refused() {
        let events = [
            added(),
            InstanceEvent::ExternalUrlChanged(ExternalUrlChanged {
                external_url: "https://id.example".into(),
            }),
            InstanceEvent::FeatureSet(FeatureSet {
                feature: "future_flag".into(),
                enabled: true,
            }),
            InstanceEvent::FeatureReset(FeatureReset {
                feature: "back_channel_logout".into(),
            }),
            InstanceEvent::RemovalStarted(RemovalStarted {}),
            InstanceEvent::Removed(Removed {}),
        ];
        for event in events {
            assert_eq!(
                InstanceEvent::decode(event.event_type(), &event.payload()).unwrap(),
                event
            );
        }
        assert!(matches!(
            InstanceEvent::decode("instance.exploded", "{}"),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            InstanceEvent::decode("instance.added", r#"{"name": 3}"#),
            Err(DecodeError::Payload(_))
        ));
    }
}
