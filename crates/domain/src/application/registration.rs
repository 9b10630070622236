//! Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592): the same
//! `application` aggregate and validation as an administrator's application, plus a
//! registration access token bound to the client.
//!
//! The registration access token is random, stored only as SHA-256 on the application's own
//! events (`application.oidc.registration_access_token.issued`) and checked against them, never
//! a read model. It is replaced on every update (RFC 7592 §2.2 lets the server issue a new one),
//! so a token that leaked before an update stops working at the update; it never expires
//! otherwise, since the client has no other way to reach its configuration.

use chrono::{DateTime, Utc};

use crate::aggregate::{Loaded, create};
use crate::application::{Application, ApplicationView, OidcConfig};
use crate::error::DomainError;
use crate::registration_token::{RegistrationToken, split_token};
use crate::service::{Domain, retry_on_conflict};

/// The creator recorded on what an open registration or a registration access token changes.
pub const DYNAMIC_REGISTRATION: &str = "dynamic registration";

/// What authorises a registration request.
#[derive(Debug, Clone, Copy)]
pub enum RegistrationGrant<'a> {
    /// The instance's registration is open: no token needed.
    Open,
    /// An initial access token the request presented.
    InitialAccessToken(&'a str),
}

/// A newly registered application and the credentials shown once.
#[derive(Debug, Clone)]
pub struct RegisteredApplication {
    /// The application as the read model shows it.
    pub view: ApplicationView,
    /// The client secret, for a confidential client.
    pub client_secret: Option<String>,
    /// The registration access token (RFC 7592).
    pub registration_access_token: String,
    /// When the client_id was issued.
    pub issued_at: DateTime<Utc>,
}

fn invalid_access_token() -> DomainError {
    DomainError::Unauthorized(
        "the registration access token is not this client's current one".into(),
    )
}

impl Domain {
    /// Registers an application (RFC 7591 §3). With an initial access token, its use is
    /// appended in the same transaction (so a one-time token registers one client) and the
    /// application's creator names the token.
    pub async fn register_application(
        &self,
        instance_id: &str,
        grant: RegistrationGrant<'_>,
        config: OidcConfig,
    ) -> Result<RegisteredApplication, DomainError> {
        let client_id = uuid::Uuid::now_v7().simple().to_string();
        retry_on_conflict(|| async {
            let mut appends = Vec::new();
            let creator = match grant {
                RegistrationGrant::Open => DYNAMIC_REGISTRATION.to_owned(),
                RegistrationGrant::InitialAccessToken(token) => {
                    let (token_id, secret) = split_token(token).ok_or_else(|| {
                        DomainError::Unauthorized("the initial access token is unknown".into())
                    })?;
                    let loaded = Loaded::<RegistrationToken>::load(
                        self.store.as_ref(),
                        instance_id,
                        token_id,
                    )
                    .await?;
                    let used = loaded.state.use_for(secret, self.now(), &client_id)?;
                    let creator = format!("registration_token:{token_id}");
                    appends.push(loaded.append(&used, &self.stamp(&creator)));
                    creator
                }
            };
            self.check_back_channel_scheme(instance_id, &config).await?;
            let (events, client_secret, registration_access_token) =
                Application::default().register(config.clone())?;
            let stamp = self.stamp(&creator);
            appends.push(create::<Application>(
                instance_id,
                &client_id,
                &events,
                &stamp,
            ));
            self.commit(&appends).await?;
            Ok(RegisteredApplication {
                view: self.application(instance_id, &client_id).await?,
                client_secret,
                registration_access_token,
                issued_at: stamp.at,
            })
        })
        .await
    }

    /// The application `registration_access_token` belongs to (RFC 7592 §2.1).
    pub async fn registered_application(
        &self,
        instance_id: &str,
        client_id: &str,
        registration_access_token: &str,
    ) -> Result<ApplicationView, DomainError> {
        let app = Loaded::<Application>::load(self.store.as_ref(), instance_id, client_id).await?;
        if !app
            .state
            .registration_access_token_matches(registration_access_token)
        {
            return Err(invalid_access_token());
        }
        self.application(instance_id, client_id).await
    }

    /// Replaces a registered application's settings (RFC 7592 §2.2) and its registration
    /// access token; returns the application and the new token.
    pub async fn update_registered_application(
        &self,
        instance_id: &str,
        client_id: &str,
        registration_access_token: &str,
        config: OidcConfig,
    ) -> Result<(ApplicationView, String), DomainError> {
        self.check_back_channel_scheme(instance_id, &config).await?;
        let app = Loaded::<Application>::load(self.store.as_ref(), instance_id, client_id).await?;
        if !app
            .state
            .registration_access_token_matches(registration_access_token)
        {
            return Err(invalid_access_token());
        }
        let mut events = app.state.change(config)?;
        let (token_events, token) = app.state.issue_registration_access_token()?;
        events.extend(token_events);
        self.commit(&[app.append(&events, &self.stamp(DYNAMIC_REGISTRATION))])
            .await?;
        Ok((self.application(instance_id, client_id).await?, token))
    }

    /// Removes a registered application (RFC 7592 §2.3), as an administrator's removal does.
    pub async fn remove_registered_application(
        &self,
        instance_id: &str,
        client_id: &str,
        registration_access_token: &str,
    ) -> Result<(), DomainError> {
        let app = Loaded::<Application>::load(self.store.as_ref(), instance_id, client_id).await?;
        if !app
            .state
            .registration_access_token_matches(registration_access_token)
        {
            return Err(invalid_access_token());
        }
        let events = app.state.remove()?;
        self.commit(&[app.append(&events, &self.stamp(DYNAMIC_REGISTRATION))])
            .await?;
        Ok(())
    }
}
