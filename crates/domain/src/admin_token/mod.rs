//! Admin tokens: bearer credentials for the admin API, stored only as SHA-256 hashes.

mod commands;
mod projection;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use commands::IssuedAdminToken;
pub use projection::{AdminPrincipal, AdminTokenProjection, AdminTokenView};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};
use crate::error::DomainError;

/// The prefix of every generated token, so leaked tokens are easy to recognise.
pub const TOKEN_PREFIX: &str = "pcat_";

/// Shortest token accepted from configuration.
pub const MIN_TOKEN_LENGTH: usize = 24;

/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// A token was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminTokenAdded {
    /// Hex SHA-256 of the token. Tokens are long random values (or checked for length), so a
    /// fast hash suffices and keeps every admin request cheap.
    pub token_hash: String,
    /// What the token is for.
    pub description: String,
}

/// A token was revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminTokenRevoked {}

/// Events of the `admin_token` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminTokenEvent {
    /// `admin_token.added`
    Added(AdminTokenAdded),
    /// `admin_token.revoked`
    Revoked(AdminTokenRevoked),
}

impl DomainEvent for AdminTokenEvent {
    fn event_type(&self) -> &'static str {
        match self {
            AdminTokenEvent::Added(_) => "admin_token.added",
            AdminTokenEvent::Revoked(_) => "admin_token.revoked",
        }
    }

    fn payload(&self) -> String {
        match self {
            AdminTokenEvent::Added(payload) => to_json(payload),
            AdminTokenEvent::Revoked(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "admin_token.added" => AdminTokenEvent::Added(serde_json::from_str(payload)?),
            "admin_token.revoked" => AdminTokenEvent::Revoked(serde_json::from_str(payload)?),
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// An admin token's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminToken {
    /// Whether it was created.
    pub exists: bool,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl Aggregate for AdminToken {
    const TYPE: &'static str = "admin_token";
    type Event = AdminTokenEvent;

    fn apply(&mut self, event: &AdminTokenEvent) {
        match event {
            AdminTokenEvent::Added(_) => self.exists = true,
            AdminTokenEvent::Revoked(_) => self.revoked = true,
        }
    }
}

impl AdminToken {
    /// Decides `AddAdminToken` for a token the caller generated or was given.
    pub fn add(&self, token: &str, description: &str) -> Result<Vec<AdminTokenEvent>, DomainError> {
        if self.exists {
            return Err(DomainError::Invalid {
                field: "token_id",
                reason: "the token already exists".into(),
            });
        }
        check_description(description)?;
        check_token(token)?;
        Ok(vec![AdminTokenEvent::Added(AdminTokenAdded {
            token_hash: hash_token(token),
            description: description.into(),
        })])
    }

    /// Decides `RevokeAdminToken`; revoking a revoked token records nothing.
    pub fn revoke(&self) -> Result<Vec<AdminTokenEvent>, DomainError> {
        if !self.exists {
            return Err(DomainError::NotFound("admin token".into()));
        }
        if self.revoked {
            return Ok(vec![]);
        }
        Ok(vec![AdminTokenEvent::Revoked(AdminTokenRevoked {})])
    }
}

/// Rejects empty, overlong or control-character descriptions: they are shown in listings.
fn check_description(description: &str) -> Result<(), DomainError> {
    let length = description.trim().chars().count();
    if length == 0
        || description.chars().count() > MAX_DESCRIPTION_CHARS
        || description.chars().any(char::is_control)
    {
        return Err(DomainError::Invalid {
            field: "description",
            reason: format!(
                "say what the token is for in 1 to {MAX_DESCRIPTION_CHARS} characters, no control characters"
            ),
        });
    }
    Ok(())
}

/// Rejects tokens too short to resist guessing.
pub fn check_token(token: &str) -> Result<(), DomainError> {
    if token.len() < MIN_TOKEN_LENGTH || token.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(DomainError::Invalid {
            field: "admin.initial_token",
            reason: format!(
                "an admin token needs at least {MIN_TOKEN_LENGTH} characters and no spaces; leave it unset to have one generated"
            ),
        });
    }
    Ok(())
}

/// A new random token: 256 bits, hex-encoded, with the recognisable prefix.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hash_is_recorded() {
        let token = generate_token();
        let events = AdminToken::default().add(&token, "initial").unwrap();
        let AdminTokenEvent::Added(added) = &events[0] else {
            panic!("expected added")
        };
        assert_eq!(added.token_hash, hash_token(&token));
        assert!(!events[0].payload().contains(&token));
    }

    #[test]
    fn short_tokens_are_refused() {
        assert!(AdminToken::default().add("short", "x").is_err());
        assert!(
            AdminToken::default()
                .add("has a space in it but is long enough", "x")
                .is_err()
        );
        let existing = AdminToken {
            exists: true,
            revoked: false,
        };
        assert!(existing.add(&generate_token(), "x").is_err());
    }

    fn given(events: &[AdminTokenEvent]) -> AdminToken {
        let mut token = AdminToken::default();
        events.iter().for_each(|event| token.apply(event));
        token
    }

    #[test]
    fn revoking_follows_the_state() {
        assert!(matches!(
            AdminToken::default().revoke(),
            Err(DomainError::NotFound(_))
        ));
        let added = AdminToken::default()
            .add(&generate_token(), "deploy bot")
            .unwrap();
        let live = given(&added);
        let revoked = live.revoke().unwrap();
        assert_eq!(
            revoked,
            vec![AdminTokenEvent::Revoked(AdminTokenRevoked {})]
        );
        let events: Vec<_> = added.into_iter().chain(revoked).collect();
        let gone = given(&events);
        assert!(gone.revoked);
        assert!(gone.revoke().unwrap().is_empty(), "revoking is idempotent");
    }

    #[test]
    fn descriptions_are_checked() {
        for description in ["", "   ", "line\nbreak", &"x".repeat(201)] {
            assert!(
                matches!(
                    AdminToken::default().add(&generate_token(), description),
                    Err(DomainError::Invalid {
                        field: "description",
                        ..
                    })
                ),
                "{description:?}"
            );
        }
        assert!(
            AdminToken::default()
                .add(&generate_token(), &"x".repeat(200))
                .is_ok()
        );
    }
}
