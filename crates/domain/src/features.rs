//! Feature flags: set system-wide in configuration and per instance by events; the instance
//! value wins where set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A feature that can be switched on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// OpenID Connect Back-Channel Logout 1.0 notifications.
    BackChannelLogout,
    /// Accept plain-http back-channel logout URIs (development only; https otherwise).
    BackChannelLogoutAllowHttp,
    /// End a user's live sessions when the user's password (or another credential) changes.
    EndSessionsOnCredentialChange,
    /// Dynamic Client Registration (RFC 7591) without an initial access token. Off (the
    /// default), registering needs an initial access token an administrator issued.
    OpenRegistration,
}

impl Feature {
    /// Every feature, in display order.
    pub const ALL: &'static [Feature] = &[
        Feature::BackChannelLogout,
        Feature::BackChannelLogoutAllowHttp,
        Feature::EndSessionsOnCredentialChange,
        Feature::OpenRegistration,
    ];

    /// The feature's name in configuration, events and the admin API.
    pub fn name(self) -> &'static str {
        match self {
            Feature::BackChannelLogout => "back_channel_logout",
            Feature::BackChannelLogoutAllowHttp => "back_channel_logout_allow_http",
            Feature::EndSessionsOnCredentialChange => "end_sessions_on_credential_change",
            Feature::OpenRegistration => "open_registration",
        }
    }

    /// The feature with this name, if there is one.
    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL
            .iter()
            .copied()
            .find(|feature| feature.name() == name)
    }
}

/// System-level values, from configuration. Back-channel logout is on unless configured off
/// (it is the product's reason to exist); development-only flags are off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemFeatures {
    /// Default for [`Feature::BackChannelLogout`]; on unless configured off.
    #[serde(default = "on")]
    pub back_channel_logout: bool,
    /// Default for [`Feature::BackChannelLogoutAllowHttp`]; unset means off (the server turns
    /// it on when its external URL is on localhost).
    #[serde(default)]
    pub back_channel_logout_allow_http: Option<bool>,
    /// Default for [`Feature::EndSessionsOnCredentialChange`]; on unless configured off.
    #[serde(default = "on")]
    pub end_sessions_on_credential_change: bool,
    /// Default for [`Feature::OpenRegistration`]; off unless configured on.
    #[serde(default)]
    pub open_registration: bool,
}

fn on() -> bool {
    true
}

impl Default for SystemFeatures {
    fn default() -> Self {
        SystemFeatures {
            back_channel_logout: true,
            back_channel_logout_allow_http: None,
            end_sessions_on_credential_change: true,
            open_registration: false,
        }
    }
}

impl SystemFeatures {
    /// The system value of `feature`.
    pub fn get(&self, feature: Feature) -> bool {
        match feature {
            Feature::BackChannelLogout => self.back_channel_logout,
            Feature::BackChannelLogoutAllowHttp => {
                self.back_channel_logout_allow_http.unwrap_or(false)
            }
            Feature::EndSessionsOnCredentialChange => self.end_sessions_on_credential_change,
            Feature::OpenRegistration => self.open_registration,
        }
    }
}

/// One feature's values at both levels and the one in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeatureState {
    /// The feature.
    pub feature: Feature,
    /// The system value.
    pub system: bool,
    /// The instance value, if set.
    pub instance: Option<bool>,
    /// The value in force: the instance value where set, else the system value.
    pub effective: bool,
}

impl FeatureState {
    /// Resolves a feature from its two levels.
    pub fn resolve(
        feature: Feature,
        system: &SystemFeatures,
        instance: &BTreeMap<String, bool>,
    ) -> Self {
        let system_value = system.get(feature);
        let instance_value = instance.get(feature.name()).copied();
        FeatureState {
            feature,
            system: system_value,
            instance: instance_value,
            effective: instance_value.unwrap_or(system_value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_value_wins_where_set() {
        let system_off = SystemFeatures {
            back_channel_logout: false,
            ..SystemFeatures::default()
        };
        let cases = [
            (system_off, None, false),
            (system_off, Some(true), true),
            (SystemFeatures::default(), None, true),
            (SystemFeatures::default(), Some(false), false),
        ];
        for (system, instance, effective) in cases {
            let overrides: BTreeMap<String, bool> = instance
                .map(|value| ("back_channel_logout".to_string(), value))
                .into_iter()
                .collect();
            let state = FeatureState::resolve(Feature::BackChannelLogout, &system, &overrides);
            assert_eq!(
                state.effective, effective,
                "system {system:?}, instance {instance:?}"
            );
            assert_eq!(state.instance, instance);
        }
    }

    #[test]
    fn back_channel_logout_is_on_by_default_and_can_be_configured_off() {
        assert!(SystemFeatures::default().get(Feature::BackChannelLogout));
        assert!(!SystemFeatures::default().get(Feature::BackChannelLogoutAllowHttp));
        let unset: SystemFeatures = serde_json::from_str("{}").unwrap();
        assert_eq!(unset, SystemFeatures::default());
        let off: SystemFeatures =
            serde_json::from_str(r#"{"back_channel_logout": false}"#).unwrap();
        assert!(!off.get(Feature::BackChannelLogout));
    }

    #[test]
    fn names_round_trip() {
        for feature in Feature::ALL {
            assert_eq!(Feature::from_name(feature.name()), Some(*feature));
        }
        assert_eq!(Feature::from_name("Back_Channel_Logout"), None);
    }
}
