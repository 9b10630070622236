//! The `username` aggregate: one per normalized login name, so uniqueness is decided by the
//! event store's optimistic concurrency rather than by a read model that may lag.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};
use crate::error::DomainError;

/// The form a login name is compared in: Unicode lowercase. Rejects empty names, names over
/// 200 characters and names with white space or control characters.
pub fn normalize_username(raw: &str) -> Result<String, DomainError> {
    let length = raw.chars().count();
    if length == 0 || length > 200 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::Invalid {
            field: "username",
            reason: "1 to 200 characters without spaces or control characters".into(),
        });
    }
    Ok(raw.to_lowercase())
}

/// A user took the name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsernameClaimed {
    /// The user holding it.
    pub user_id: String,
}

/// The name became free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsernameReleased {
    /// The user that held it.
    pub user_id: String,
}

/// Events of the `username` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum UsernameEvent {
    /// `username.claimed`
    Claimed(UsernameClaimed),
    /// `username.released`
    Released(UsernameReleased),
}

impl DomainEvent for UsernameEvent {
    fn event_type(&self) -> &'static str {
        match self {
            UsernameEvent::Claimed(_) => "username.claimed",
            UsernameEvent::Released(_) => "username.released",
        }
    }

    fn payload(&self) -> String {
        match self {
            UsernameEvent::Claimed(payload) => to_json(payload),
            UsernameEvent::Released(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "username.claimed" => UsernameEvent::Claimed(serde_json::from_str(payload)?),
            "username.released" => UsernameEvent::Released(serde_json::from_str(payload)?),
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// Who holds a login name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Username {
    /// The holder, if any.
    pub holder: Option<String>,
}

impl Aggregate for Username {
    const TYPE: &'static str = "username";
    type Event = UsernameEvent;

    fn apply(&mut self, event: &UsernameEvent) {
        self.holder = match event {
            UsernameEvent::Claimed(claimed) => Some(claimed.user_id.clone()),
            UsernameEvent::Released(_) => None,
        };
    }
}

impl Username {
    /// Decides `ClaimUsername`.
    pub fn claim(&self, user_id: &str) -> Result<Vec<UsernameEvent>, DomainError> {
        match &self.holder {
            Some(holder) if holder == user_id => Ok(vec![]),
            Some(_) => Err(DomainError::Invalid {
                field: "username",
                reason: "this login name is already taken".into(),
            }),
            None => Ok(vec![UsernameEvent::Claimed(UsernameClaimed {
                user_id: user_id.to_owned(),
            })]),
        }
    }

    /// Decides `ReleaseUsername`; only the holder releases.
    pub fn release(&self, user_id: &str) -> Vec<UsernameEvent> {
        match &self.holder {
            Some(holder) if holder == user_id => {
                vec![UsernameEvent::Released(UsernameReleased {
                    user_id: user_id.to_owned(),
                })]
            }
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_has_one_holder_at_a_time() {
        let free = Username::default();
        let claimed = free.claim("u1").unwrap();
        let mut taken = Username::default();
        taken.apply(&claimed[0]);
        assert!(matches!(
            taken.claim("u2"),
            Err(DomainError::Invalid {
                field: "username",
                ..
            })
        ));
        assert!(taken.claim("u1").unwrap().is_empty());
        assert!(taken.release("u2").is_empty());
        taken.apply(&taken.release("u1")[0]);
        assert_eq!(taken.claim("u2").unwrap().len(), 1);
    }

    #[test]
    fn names_compare_case_insensitively() {
        assert_eq!(
            normalize_username("Alice").unwrap(),
            normalize_username("aLICE").unwrap()
        );
        assert!(normalize_username("two words").is_err());
        assert!(normalize_username(&"x".repeat(201)).is_err());
    }
}
