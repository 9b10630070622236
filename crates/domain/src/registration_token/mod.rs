//! Initial access tokens (RFC 7591 §3): what an administrator hands a developer so that their
//! client may register itself while the instance's registration is not open. Stored only as
//! SHA-256, like admin tokens; each has an expiry and may be good for one registration only.
//!
//! A token reads `pcit_<token id>.<256 random bits, hex>`, so the one aggregate it names is
//! loaded and checked from the log itself (no read model between an issue and its first use,
//! and a one-time token's use is appended with the aggregate's expected sequence, so two
//! registrations racing for it cannot both win).

mod commands;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use commands::{IssuedRegistrationToken, RegistrationTokenView};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};
use crate::application::{client_secret_matches, hash_client_secret};
use crate::error::DomainError;

/// The prefix of every initial access token.
pub const TOKEN_PREFIX: &str = "pcit_";

/// The longest lifetime an initial access token may be given: 90 days.
pub const MAX_LIFETIME_SECS: u64 = 90 * 86_400;

/// A token was issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationTokenAdded {
    /// Hex SHA-256 of the secret part.
    pub token_hash: String,
    /// What (or whom) the token is for.
    pub description: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whether it is good for one registration only.
    pub one_time: bool,
}

/// A client registered with the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationTokenUsed {
    /// The client it registered.
    pub client_id: String,
}

/// The token was revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationTokenRevoked {}

/// Events of the `registration_token` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrationTokenEvent {
    /// `registration_token.added`
    Added(RegistrationTokenAdded),
    /// `registration_token.used`
    Used(RegistrationTokenUsed),
    /// `registration_token.revoked`
    Revoked(RegistrationTokenRevoked),
}

impl DomainEvent for RegistrationTokenEvent {
    fn event_type(&self) -> &'static str {
        match self {
            RegistrationTokenEvent::Added(_) => "registration_token.added",
            RegistrationTokenEvent::Used(_) => "registration_token.used",
            RegistrationTokenEvent::Revoked(_) => "registration_token.revoked",
        }
    }

    fn payload(&self) -> String {
        match self {
            RegistrationTokenEvent::Added(payload) => to_json(payload),
            RegistrationTokenEvent::Used(payload) => to_json(payload),
            RegistrationTokenEvent::Revoked(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "registration_token.added" => {
                RegistrationTokenEvent::Added(serde_json::from_str(payload)?)
            }
            "registration_token.used" => {
                RegistrationTokenEvent::Used(serde_json::from_str(payload)?)
            }
            "registration_token.revoked" => {
                RegistrationTokenEvent::Revoked(serde_json::from_str(payload)?)
            }
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// An initial access token's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistrationToken {
    /// What it was issued with, once issued.
    pub added: Option<RegistrationTokenAdded>,
    /// The clients registered with it.
    pub used_by: Vec<String>,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl Aggregate for RegistrationToken {
    const TYPE: &'static str = "registration_token";
    type Event = RegistrationTokenEvent;

    fn apply(&mut self, event: &RegistrationTokenEvent) {
        match event {
            RegistrationTokenEvent::Added(added) => self.added = Some(added.clone()),
            RegistrationTokenEvent::Used(used) => self.used_by.push(used.client_id.clone()),
            RegistrationTokenEvent::Revoked(_) => self.revoked = true,
        }
    }
}

/// The token id and secret part of a presented token, if it has our shape.
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let (token_id, secret) = token.strip_prefix(TOKEN_PREFIX)?.split_once('.')?;
    let hex = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(token_id) && hex(secret)).then_some((token_id, secret))
}

fn unauthorized(reason: &str) -> DomainError {
    DomainError::Unauthorized(format!("the initial access token {reason}"))
}

impl RegistrationToken {
    /// Decides `IssueRegistrationToken`; returns the events and the secret part.
    pub fn issue(
        &self,
        description: &str,
        expires_at: DateTime<Utc>,
        one_time: bool,
    ) -> Result<(Vec<RegistrationTokenEvent>, String), DomainError> {
        if self.added.is_some() {
            return Err(DomainError::Invalid {
                field: "token_id",
                reason: "the token already exists".into(),
            });
        }
        let length = description.trim().chars().count();
        if length == 0
            || description.chars().count() > 200
            || description.chars().any(char::is_control)
        {
            return Err(DomainError::Invalid {
                field: "description",
                reason: "say what the token is for in 1 to 200 characters, no control characters"
                    .into(),
            });
        }
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let event = RegistrationTokenEvent::Added(RegistrationTokenAdded {
            token_hash: hash_client_secret(&secret),
            description: description.into(),
            expires_at,
            one_time,
        });
        Ok((vec![event], secret))
    }

    /// Decides `UseRegistrationToken`: the secret must match, the token be live, unexpired and,
    /// if one-time, unused.
    pub fn use_for(
        &self,
        secret: &str,
        now: DateTime<Utc>,
        client_id: &str,
    ) -> Result<Vec<RegistrationTokenEvent>, DomainError> {
        let Some(added) = &self.added else {
            return Err(unauthorized("is unknown"));
        };
        if !client_secret_matches(&added.token_hash, secret) {
            return Err(unauthorized("is unknown"));
        }
        if self.revoked {
            return Err(unauthorized("was revoked"));
        }
        if now >= added.expires_at {
            return Err(unauthorized("has expired"));
        }
        if added.one_time && !self.used_by.is_empty() {
            return Err(unauthorized("was good for one registration and is used"));
        }
        Ok(vec![RegistrationTokenEvent::Used(RegistrationTokenUsed {
            client_id: client_id.into(),
        })])
    }

    /// Decides `RevokeRegistrationToken`; revoking a revoked token records nothing.
    pub fn revoke(&self) -> Result<Vec<RegistrationTokenEvent>, DomainError> {
        if self.added.is_none() {
            return Err(DomainError::NotFound("registration token".into()));
        }
        if self.revoked {
            return Ok(vec![]);
        }
        Ok(vec![RegistrationTokenEvent::Revoked(
            RegistrationTokenRevoked {},
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(events: &[RegistrationTokenEvent]) -> RegistrationToken {
        let mut token = RegistrationToken::default();
        events.iter().for_each(|event| token.apply(event));
        token
    }

    #[test]
    fn a_token_works_until_expired_revoked_or_used_up() {
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        let (added, secret) = RegistrationToken::default()
            .issue("partner onboarding", later, true)
            .unwrap();
        assert!(
            !added[0].payload().contains(&secret),
            "only the hash is stored"
        );
        let live = given(&added);
        assert!(matches!(
            live.use_for("wrong", now, "c1"),
            Err(DomainError::Unauthorized(_))
        ));
        assert!(matches!(
            live.use_for(&secret, later, "c1"),
            Err(DomainError::Unauthorized(_))
        ));
        let used = live.use_for(&secret, now, "c1").unwrap();
        let events: Vec<_> = added.iter().cloned().chain(used).collect();
        assert!(
            given(&events).use_for(&secret, now, "c2").is_err(),
            "one-time"
        );
        let revoked: Vec<_> = added
            .iter()
            .cloned()
            .chain(live.revoke().unwrap())
            .collect();
        assert!(given(&revoked).use_for(&secret, now, "c2").is_err());
        assert!(given(&revoked).revoke().unwrap().is_empty());
    }

    #[test]
    fn reusable_tokens_register_many_clients() {
        let now = Utc::now();
        let (added, secret) = RegistrationToken::default()
            .issue("ci", now + chrono::Duration::hours(1), false)
            .unwrap();
        let mut events = added;
        for client in ["a", "b", "c"] {
            let used = given(&events).use_for(&secret, now, client).unwrap();
            events.extend(used);
        }
        assert_eq!(given(&events).used_by, ["a", "b", "c"]);
    }

    #[test]
    fn tokens_split_into_id_and_secret() {
        assert_eq!(split_token("pcit_0a1b.ff00"), Some(("0a1b", "ff00")));
        for malformed in [
            "0a1b.ff00",
            "pcit_0a1b",
            "pcit_.ff",
            "pcit_zz.ff",
            "pcit_0a.f f",
        ] {
            assert_eq!(split_token(malformed), None, "{malformed}");
        }
    }
}
