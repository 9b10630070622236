//! Human users: login name, profile, argon2id password hash, lifecycle.
//!
//! Login names are unique per instance. The guarantee comes from the `username` aggregate
//! (see `username.rs`): claiming a name appends to it in the same transaction as the user's
//! own events, so two concurrent registrations of one name conflict in the event store.

mod commands;
mod password;
mod projection;
mod username;

pub use commands::NewUser;

use serde::{Deserialize, Serialize};

pub use password::{
    HashingInterrupted, PasswordError, hash_password, on_hashing_thread, verify_password,
};
pub use projection::{UserProjection, UserView};
pub use username::{Username, UsernameEvent, normalize_username};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};
use crate::error::DomainError;

/// Profile data a user has, besides the login name and password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// E-mail address.
    pub email: Option<String>,
    /// Whether the address was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Given name(s).
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
}

impl Profile {
    /// Checks the values a user can cause to be wrong.
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(email) = &self.email {
            let valid = email.len() <= 320
                && email
                    .split_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
                && !email.chars().any(|c| c.is_whitespace() || c.is_control());
            if !valid {
                return Err(DomainError::Invalid {
                    field: "email",
                    reason: format!("{email:?} is not an e-mail address"),
                });
            }
        }
        for (field, value) in [
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
        ] {
            if value.as_ref().is_some_and(|value| {
                value.chars().count() > 200 || value.chars().any(char::is_control)
            }) {
                return Err(DomainError::Invalid {
                    field,
                    reason: "at most 200 characters, no control characters".into(),
                });
            }
        }
        Ok(())
    }
}

/// A human user was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanAdded {
    /// The login name as entered.
    pub username: String,
    /// Profile data.
    pub profile: Profile,
    /// PHC-format argon2id hash.
    pub password_hash: String,
}

/// The profile was replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileChanged {
    /// The new profile.
    pub profile: Profile,
}

/// The password was replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordChanged {
    /// PHC-format argon2id hash.
    pub password_hash: String,
}

/// A lifecycle change without data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleChanged {}

/// Events of the `user` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum UserEvent {
    /// `user.human.added`
    HumanAdded(HumanAdded),
    /// `user.human.profile.changed`
    ProfileChanged(ProfileChanged),
    /// `user.human.password.changed`
    PasswordChanged(PasswordChanged),
    /// `user.deactivated`
    Deactivated(LifecycleChanged),
    /// `user.reactivated`
    Reactivated(LifecycleChanged),
    /// `user.removed`
    Removed(LifecycleChanged),
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            UserEvent::HumanAdded(_) => "user.human.added",
            UserEvent::ProfileChanged(_) => "user.human.profile.changed",
            UserEvent::PasswordChanged(_) => "user.human.password.changed",
            UserEvent::Deactivated(_) => "user.deactivated",
            UserEvent::Reactivated(_) => "user.reactivated",
            UserEvent::Removed(_) => "user.removed",
        }
    }

    fn payload(&self) -> String {
        match self {
            UserEvent::HumanAdded(payload) => to_json(payload),
            UserEvent::ProfileChanged(payload) => to_json(payload),
            UserEvent::PasswordChanged(payload) => to_json(payload),
            UserEvent::Deactivated(payload)
            | UserEvent::Reactivated(payload)
            | UserEvent::Removed(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "user.human.added" => UserEvent::HumanAdded(serde_json::from_str(payload)?),
            "user.human.profile.changed" => {
                UserEvent::ProfileChanged(serde_json::from_str(payload)?)
            }
            "user.human.password.changed" => {
                UserEvent::PasswordChanged(serde_json::from_str(payload)?)
            }
            "user.deactivated" => UserEvent::Deactivated(serde_json::from_str(payload)?),
            "user.reactivated" => UserEvent::Reactivated(serde_json::from_str(payload)?),
            "user.removed" => UserEvent::Removed(serde_json::from_str(payload)?),
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// Where a user is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    /// Never created.
    #[default]
    Unknown,
    /// Can sign in.
    Active,
    /// Cannot sign in until reactivated.
    Inactive,
    /// Gone; the login name is free again.
    Removed,
}

impl UserState {
    /// The name stored in read models and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Unknown => "unknown",
            UserState::Active => "active",
            UserState::Inactive => "inactive",
            UserState::Removed => "removed",
        }
    }
}

/// A user's state, as commands see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    /// Lifecycle state.
    pub state: UserState,
    /// The login name.
    pub username: String,
    /// Profile data.
    pub profile: Profile,
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Event = UserEvent;

    fn apply(&mut self, event: &UserEvent) {
        match event {
            UserEvent::HumanAdded(added) => {
                self.state = UserState::Active;
                self.username = added.username.clone();
                self.profile = added.profile.clone();
            }
            UserEvent::ProfileChanged(changed) => self.profile = changed.profile.clone(),
            UserEvent::PasswordChanged(_) => {}
            UserEvent::Deactivated(_) => self.state = UserState::Inactive,
            UserEvent::Reactivated(_) => self.state = UserState::Active,
            UserEvent::Removed(_) => self.state = UserState::Removed,
        }
    }
}

impl User {
    fn require_present(&self) -> Result<(), DomainError> {
        match self.state {
            UserState::Active | UserState::Inactive => Ok(()),
            UserState::Unknown | UserState::Removed => Err(DomainError::NotFound("user".into())),
        }
    }

    /// Decides `AddHumanUser`; the password is already hashed (slowly, elsewhere).
    pub fn add(
        &self,
        username: &str,
        profile: Profile,
        password_hash: String,
    ) -> Result<Vec<UserEvent>, DomainError> {
        if self.state != UserState::Unknown {
            return Err(DomainError::Invalid {
                field: "user_id",
                reason: "the user already exists".into(),
            });
        }
        normalize_username(username)?;
        profile.validate()?;
        Ok(vec![UserEvent::HumanAdded(HumanAdded {
            username: username.to_owned(),
            profile,
            password_hash,
        })])
    }

    /// Decides `ChangeProfile`; nothing to record when unchanged.
    pub fn change_profile(&self, profile: Profile) -> Result<Vec<UserEvent>, DomainError> {
        self.require_present()?;
        profile.validate()?;
        if profile == self.profile {
            return Ok(vec![]);
        }
        Ok(vec![UserEvent::ProfileChanged(ProfileChanged { profile })])
    }

    /// Decides `SetPassword`.
    pub fn set_password(&self, password_hash: String) -> Result<Vec<UserEvent>, DomainError> {
        self.require_present()?;
        Ok(vec![UserEvent::PasswordChanged(PasswordChanged {
            password_hash,
        })])
    }

    /// Decides `DeactivateUser`.
    pub fn deactivate(&self) -> Result<Vec<UserEvent>, DomainError> {
        self.require_present()?;
        if self.state == UserState::Inactive {
            return Ok(vec![]);
        }
        Ok(vec![UserEvent::Deactivated(LifecycleChanged {})])
    }

    /// Decides `ReactivateUser`.
    pub fn reactivate(&self) -> Result<Vec<UserEvent>, DomainError> {
        self.require_present()?;
        if self.state == UserState::Active {
            return Ok(vec![]);
        }
        Ok(vec![UserEvent::Reactivated(LifecycleChanged {})])
    }

    /// Decides `RemoveUser`.
    pub fn remove(&self) -> Result<Vec<UserEvent>, DomainError> {
        self.require_present()?;
        Ok(vec![UserEvent::Removed(LifecycleChanged {})])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(events: &[UserEvent]) -> User {
        let mut user = User::default();
        events.iter().for_each(|event| user.apply(event));
        user
    }

    fn added() -> UserEvent {
        User::default()
            .add("alice", Profile::default(), "$argon2id$hash".into())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn lifecycle_commands_follow_the_state() {
        let active = given(&[added()]);
        assert!(active.reactivate().unwrap().is_empty());
        let inactive = given(&[added(), active.deactivate().unwrap().remove(0)]);
        assert_eq!(inactive.state, UserState::Inactive);
        assert!(inactive.deactivate().unwrap().is_empty());
        assert_eq!(inactive.reactivate().unwrap().len(), 1);
        let removed = given(&[added(), UserEvent::Removed(LifecycleChanged {})]);
        assert!(matches!(
            removed.set_password("x".into()),
            Err(DomainError::NotFound(_))
        ));
        assert!(matches!(removed.remove(), Err(DomainError::NotFound(_))));
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases = [
            ("", Profile::default(), "username"),
            ("has space", Profile::default(), "username"),
            (
                "bob",
                Profile {
                    email: Some("nope".into()),
                    ..Profile::default()
                },
                "email",
            ),
            (
                "bob",
                Profile {
                    given_name: Some("x\u{0}".into()),
                    ..Profile::default()
                },
                "given_name",
            ),
        ];
        for (username, profile, expected) in cases {
            match User::default().add(username, profile, "h".into()) {
                Err(DomainError::Invalid { field, .. }) => {
                    assert_eq!(field, expected, "{username}")
                }
                other => panic!("{username}: expected invalid {expected}, got {other:?}"),
            }
        }
    }

    #[test]
    fn unchanged_profile_records_nothing() {
        let user = given(&[added()]);
        assert!(user.change_profile(Profile::default()).unwrap().is_empty());
        let profile = Profile {
            email: Some("alice@example.com".into()),
            ..Profile::default()
        };
        assert_eq!(user.change_profile(profile).unwrap().len(), 1);
    }

    #[test]
    fn events_round_trip() {
        let events = [
            added(),
            UserEvent::ProfileChanged(ProfileChanged {
                profile: Profile::default(),
            }),
            UserEvent::PasswordChanged(PasswordChanged {
                password_hash: "h".into(),
            }),
            UserEvent::Deactivated(LifecycleChanged {}),
            UserEvent::Reactivated(LifecycleChanged {}),
            UserEvent::Removed(LifecycleChanged {}),
        ];
        for event in events {
            assert_eq!(
                UserEvent::decode(event.event_type(), &event.payload()).unwrap(),
                event
            );
        }
    }
}
