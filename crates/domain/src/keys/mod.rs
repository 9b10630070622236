//! An instance's signing keys. The domain stores each private key only in sealed form (an
//! opaque JSON value the server produced under its master key) and decides when a new key is
//! needed; generating, sealing and signing happen in the server.

mod commands;
mod projection;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use projection::{SigningKeyProjection, SigningKeyRecord};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};

/// A key was added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKeyAdded {
    /// The key id (`kid`).
    pub kid: String,
    /// The JWS algorithm name (`RS256`, `ES256`, `EdDSA`).
    pub alg: String,
    /// The sealed private key, opaque to the domain.
    pub sealed: serde_json::Value,
    /// New tokens are signed with it until then.
    pub use_until: DateTime<Utc>,
    /// Its public key stays published until then, so tokens it signed still verify.
    pub publish_until: DateTime<Utc>,
}

/// Events of the `signing_keys` aggregate (one per instance).
#[derive(Debug, Clone, PartialEq)]
pub enum SigningKeyEvent {
    /// `signing_key.added`
    Added(SigningKeyAdded),
}

impl DomainEvent for SigningKeyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SigningKeyEvent::Added(_) => "signing_key.added",
        }
    }

    fn payload(&self) -> String {
        match self {
            SigningKeyEvent::Added(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        match event_type {
            "signing_key.added" => Ok(SigningKeyEvent::Added(serde_json::from_str(payload)?)),
            other => Err(DecodeError::UnknownType(other.to_owned())),
        }
    }
}

/// The keys an instance has had: (alg, use_until) is all deciding needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SigningKeys {
    /// Each key's algorithm and end of use.
    pub keys: Vec<(String, DateTime<Utc>)>,
}

impl Aggregate for SigningKeys {
    const TYPE: &'static str = "signing_keys";
    type Event = SigningKeyEvent;

    fn apply(&mut self, event: &SigningKeyEvent) {
        match event {
            SigningKeyEvent::Added(added) => self.keys.push((added.alg.clone(), added.use_until)),
        }
    }
}

impl SigningKeys {
    /// Whether a key for `alg` is still in use at `now`.
    pub fn has_current(&self, alg: &str, now: DateTime<Utc>) -> bool {
        self.keys
            .iter()
            .any(|(key_alg, use_until)| key_alg == alg && *use_until > now)
    }

    /// Decides `AddSigningKey`: only when no key for the algorithm is current, so replicas
    /// racing to create one end up with one.
    pub fn add(&self, key: SigningKeyAdded, now: DateTime<Utc>) -> Vec<SigningKeyEvent> {
        if self.has_current(&key.alg, now) {
            vec![]
        } else {
            vec![SigningKeyEvent::Added(key)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_current_key_per_algorithm() {
        let now = Utc::now();
        let key = |alg: &str, days: i64| SigningKeyAdded {
            kid: format!("{alg}-{days}"),
            alg: alg.into(),
            sealed: serde_json::json!({}),
            use_until: now + chrono::Duration::days(days),
            publish_until: now + chrono::Duration::days(days + 1),
        };
        let mut keys = SigningKeys::default();
        let first = keys.add(key("ES256", 90), now);
        keys.apply(&first[0]);
        assert!(keys.add(key("ES256", 90), now).is_empty());
        assert_eq!(keys.add(key("RS256", 90), now).len(), 1);
        let later = now + chrono::Duration::days(91);
        assert_eq!(
            keys.add(key("ES256", 200), later).len(),
            1,
            "rotation after use_until"
        );
    }
}
