//! OIDC applications (clients): settings, a hashed secret, lifecycle.

mod commands;
mod config;
mod projection;
mod registration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use config::{AuthMethod, ClientType, GrantType, OidcConfig, SigningAlgorithm};
pub use projection::{ApplicationProjection, ApplicationView};
pub use registration::{DYNAMIC_REGISTRATION, RegisteredApplication, RegistrationGrant};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};
use crate::error::DomainError;

/// A new client secret: 256 random bits, hex-encoded. We generate every secret, so a fast
/// hash is enough to store it (a slow one would cap the token endpoint; see DESIGN.md).
pub fn generate_client_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The stored form of a client secret.
pub fn hash_client_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` matches a stored hash, compared in constant time.
pub fn client_secret_matches(stored_hash: &str, secret: &str) -> bool {
    hash_client_secret(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// An application was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OidcAdded {
    /// Its settings.
    pub config: OidcConfig,
    /// SHA-256 of the secret, for confidential clients.
    pub client_secret_hash: Option<String>,
}

/// Settings were replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OidcChanged {
    /// The new settings.
    pub config: OidcConfig,
}

/// A new secret replaced the old one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretChanged {
    /// SHA-256 of the new secret.
    pub client_secret_hash: String,
}

/// The application was removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationRemoved {}

/// A registration access token (RFC 7592) was issued for a dynamically registered
/// application; it replaces any earlier one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationAccessTokenIssued {
    /// SHA-256 of the token (a random 256-bit value we generated, like a client secret).
    pub token_hash: String,
}

/// Events of the `application` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplicationEvent {
    /// `application.oidc.added`
    Added(OidcAdded),
    /// `application.oidc.changed`
    Changed(OidcChanged),
    /// `application.oidc.secret.changed`
    SecretChanged(SecretChanged),
    /// `application.removed`
    Removed(ApplicationRemoved),
    /// `application.oidc.registration_access_token.issued`
    RegistrationAccessTokenIssued(RegistrationAccessTokenIssued),
}

impl DomainEvent for ApplicationEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ApplicationEvent::Added(_) => "application.oidc.added",
            ApplicationEvent::Changed(_) => "application.oidc.changed",
            ApplicationEvent::SecretChanged(_) => "application.oidc.secret.changed",
            ApplicationEvent::Removed(_) => "application.removed",
            ApplicationEvent::RegistrationAccessTokenIssued(_) => {
                "application.oidc.registration_access_token.issued"
            }
        }
    }

    fn payload(&self) -> String {
        match self {
            ApplicationEvent::Added(payload) => to_json(payload),
            ApplicationEvent::Changed(payload) => to_json(payload),
            ApplicationEvent::SecretChanged(payload) => to_json(payload),
            ApplicationEvent::Removed(payload) => to_json(payload),
            ApplicationEvent::RegistrationAccessTokenIssued(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "application.oidc.added" => ApplicationEvent::Added(serde_json::from_str(payload)?),
            "application.oidc.changed" => ApplicationEvent::Changed(serde_json::from_str(payload)?),
            "application.oidc.secret.changed" => {
                ApplicationEvent::SecretChanged(serde_json::from_str(payload)?)
            }
            "application.removed" => ApplicationEvent::Removed(serde_json::from_str(payload)?),
            "application.oidc.registration_access_token.issued" => {
                ApplicationEvent::RegistrationAccessTokenIssued(serde_json::from_str(payload)?)
            }
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// An application's state, as commands see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Application {
    /// Settings, once created (and until removed).
    pub config: Option<OidcConfig>,
    /// Whether it was removed.
    pub removed: bool,
    /// SHA-256 of the current registration access token, for a dynamically registered
    /// application (RFC 7592).
    pub registration_access_token_hash: Option<String>,
}

impl Aggregate for Application {
    const TYPE: &'static str = "application";
    type Event = ApplicationEvent;

    fn apply(&mut self, event: &ApplicationEvent) {
        match event {
            ApplicationEvent::Added(added) => self.config = Some(added.config.clone()),
            ApplicationEvent::Changed(changed) => self.config = Some(changed.config.clone()),
            ApplicationEvent::SecretChanged(_) => {}
            ApplicationEvent::Removed(_) => {
                self.config = None;
                self.removed = true;
                self.registration_access_token_hash = None;
            }
            ApplicationEvent::RegistrationAccessTokenIssued(issued) => {
                self.registration_access_token_hash = Some(issued.token_hash.clone());
            }
        }
    }
}

impl Application {
    fn current(&self) -> Result<&OidcConfig, DomainError> {
        self.config
            .as_ref()
            .ok_or_else(|| DomainError::NotFound("application".into()))
    }

    /// Decides `AddOidcApplication`; returns the events and, for confidential clients, the
    /// secret to show once.
    pub fn add(
        &self,
        config: OidcConfig,
    ) -> Result<(Vec<ApplicationEvent>, Option<String>), DomainError> {
        if self.config.is_some() || self.removed {
            return Err(DomainError::Invalid {
                field: "client_id",
                reason: "the application already exists".into(),
            });
        }
        config.validate()?;
        let secret = (config.client_type == ClientType::Confidential).then(generate_client_secret);
        let client_secret_hash = secret.as_deref().map(hash_client_secret);
        Ok((
            vec![ApplicationEvent::Added(OidcAdded {
                config,
                client_secret_hash,
            })],
            secret,
        ))
    }

    /// Decides `ChangeOidcApplication`; the client type cannot change (a secret would appear
    /// or vanish under running clients).
    pub fn change(&self, config: OidcConfig) -> Result<Vec<ApplicationEvent>, DomainError> {
        let current = self.current()?;
        if current.client_type != config.client_type {
            return Err(DomainError::Invalid {
                field: "client_type",
                reason: "cannot change between confidential and public; create a new application"
                    .into(),
            });
        }
        config.validate()?;
        if *current == config {
            return Ok(vec![]);
        }
        Ok(vec![ApplicationEvent::Changed(OidcChanged { config })])
    }

    /// Decides `RegenerateClientSecret`.
    pub fn regenerate_secret(&self) -> Result<(Vec<ApplicationEvent>, String), DomainError> {
        if self.current()?.client_type != ClientType::Confidential {
            return Err(DomainError::Invalid {
                field: "client_type",
                reason: "a public client has no secret".into(),
            });
        }
        let secret = generate_client_secret();
        let event = ApplicationEvent::SecretChanged(SecretChanged {
            client_secret_hash: hash_client_secret(&secret),
        });
        Ok((vec![event], secret))
    }

    /// Whether `token` is this live application's registration access token (constant-time
    /// comparison of the hashes).
    pub fn registration_access_token_matches(&self, token: &str) -> bool {
        self.config.is_some()
            && self
                .registration_access_token_hash
                .as_deref()
                .is_some_and(|hash| client_secret_matches(hash, token))
    }

    /// Decides `IssueRegistrationAccessToken`: a new token (shown once) that replaces any
    /// earlier one.
    pub fn issue_registration_access_token(
        &self,
    ) -> Result<(Vec<ApplicationEvent>, String), DomainError> {
        self.current()?;
        Ok(Self::registration_access_token_event())
    }

    /// A fresh registration access token and the event that records its hash.
    fn registration_access_token_event() -> (Vec<ApplicationEvent>, String) {
        let token = generate_client_secret();
        let event =
            ApplicationEvent::RegistrationAccessTokenIssued(RegistrationAccessTokenIssued {
                token_hash: hash_client_secret(&token),
            });
        (vec![event], token)
    }

    /// Decides `RegisterApplication` (RFC 7591): the application as [`Application::add`]
    /// creates it, plus its registration access token. Returns the events, the client secret
    /// (confidential clients) and the registration access token, both shown once.
    pub fn register(
        &self,
        config: OidcConfig,
    ) -> Result<(Vec<ApplicationEvent>, Option<String>, String), DomainError> {
        let (mut events, secret) = self.add(config)?;
        let (token_events, token) = Self::registration_access_token_event();
        events.extend(token_events);
        Ok((events, secret, token))
    }

    /// Decides `RemoveApplication`.
    pub fn remove(&self) -> Result<Vec<ApplicationEvent>, DomainError> {
        self.current()?;
        Ok(vec![ApplicationEvent::Removed(ApplicationRemoved {})])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcConfig {
        serde_json::from_value(serde_json::json!({
            "name": "Web app",
            "client_type": "confidential",
            "auth_method": "client_secret_basic",
            "redirect_uris": ["https://app.example.com/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "id_token_signing_alg": "ES256",
            "access_token_lifetime_secs": 3600,
            "id_token_lifetime_secs": 3600,
            "refresh_token_lifetime_secs": 86400
        }))
        .unwrap()
    }

    #[test]
    fn confidential_clients_get_a_secret_stored_only_as_a_hash() {
        let (events, secret) = Application::default().add(config()).unwrap();
        let secret = secret.expect("a confidential client gets a secret");
        let ApplicationEvent::Added(added) = &events[0] else {
            panic!()
        };
        let hash = added.client_secret_hash.clone().unwrap();
        assert!(client_secret_matches(&hash, &secret));
        assert!(!client_secret_matches(&hash, "guess"));
        assert!(!events[0].payload().contains(&secret));
    }

    #[test]
    fn client_type_is_fixed_and_unchanged_settings_record_nothing() {
        let mut app = Application::default();
        app.apply(&Application::default().add(config()).unwrap().0[0]);
        assert!(app.change(config()).unwrap().is_empty());
        let mut public = config();
        public.client_type = ClientType::Public;
        public.auth_method = AuthMethod::None;
        assert!(matches!(
            app.change(public),
            Err(DomainError::Invalid {
                field: "client_type",
                ..
            })
        ));
        app.apply(&app.remove().unwrap()[0]);
        assert!(matches!(app.remove(), Err(DomainError::NotFound(_))));
        assert!(app.add(config()).is_err(), "a removed id is not reused");
    }
}
