//! Initial access token commands and queries: issue, list, revoke. Their use is part of
//! registering an application (`application/registration.rs`).

use chrono::{DateTime, Utc};
use eventstore::{EventQuery, Position};

use super::{MAX_LIFETIME_SECS, RegistrationToken, RegistrationTokenEvent, TOKEN_PREFIX};
use crate::admin_token::AdminPrincipal;
use crate::aggregate::{Aggregate, create, decode};
use crate::error::DomainError;
use crate::service::Domain;

/// An initial access token as listings show it: never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationTokenView {
    /// The token's id (also its second part).
    pub token_id: String,
    /// What it is for.
    pub description: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whether it is good for one registration only.
    pub one_time: bool,
    /// The clients registered with it.
    pub used_by: Vec<String>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A newly issued initial access token: its listing entry and the token, shown once.
#[derive(Debug, Clone)]
pub struct IssuedRegistrationToken {
    /// What listings show of it.
    pub view: RegistrationTokenView,
    /// The token in clear; only its hash is stored.
    pub token: String,
}

/// Events read per query while listing.
const LIST_BATCH: u32 = 1_000;

impl Domain {
    /// Issues an initial access token for the actor's instance, good for `lifetime_secs`
    /// (1 second to 90 days) and, if `one_time`, for one registration.
    pub async fn issue_registration_token(
        &self,
        actor: &AdminPrincipal,
        description: &str,
        lifetime_secs: u64,
        one_time: bool,
    ) -> Result<IssuedRegistrationToken, DomainError> {
        if lifetime_secs == 0 || lifetime_secs > MAX_LIFETIME_SECS {
            return Err(DomainError::Invalid {
                field: "expires_in_secs",
                reason: format!("between 1 and {MAX_LIFETIME_SECS} seconds (90 days)"),
            });
        }
        let token_id = uuid::Uuid::now_v7().simple().to_string();
        let stamp = self.stamp(&actor.token_id);
        // Bounded above, so the addition cannot overflow.
        let expires_at = stamp.at + chrono::Duration::seconds(lifetime_secs as i64);
        let (events, secret) =
            RegistrationToken::default().issue(description, expires_at, one_time)?;
        self.commit(&[create::<RegistrationToken>(
            &actor.instance_id,
            &token_id,
            &events,
            &stamp,
        )])
        .await?;
        Ok(IssuedRegistrationToken {
            view: RegistrationTokenView {
                token_id: token_id.clone(),
                description: description.into(),
                created_at: stamp.at,
                expires_at,
                one_time,
                used_by: vec![],
                revoked: false,
            },
            token: format!("{TOKEN_PREFIX}{token_id}.{secret}"),
        })
    }

    /// An instance's initial access tokens, oldest first, folded from their events (they are
    /// few, and listed only by administrators).
    pub async fn registration_tokens(
        &self,
        instance_id: &str,
    ) -> Result<Vec<RegistrationTokenView>, DomainError> {
        let mut views: Vec<RegistrationTokenView> = Vec::new();
        let mut after = Position::START;
        loop {
            let events = self
                .store
                .events(&EventQuery {
                    instance_id: Some(instance_id.into()),
                    after,
                    aggregate_types: vec![RegistrationToken::TYPE.into()],
                    event_types: vec![],
                    limit: LIST_BATCH,
                })
                .await?;
            for event in &events {
                let token_id = &event.aggregate.aggregate_id;
                match decode::<RegistrationTokenEvent>(event)? {
                    RegistrationTokenEvent::Added(added) => views.push(RegistrationTokenView {
                        token_id: token_id.clone(),
                        description: added.description,
                        created_at: event.created_at,
                        expires_at: added.expires_at,
                        one_time: added.one_time,
                        used_by: vec![],
                        revoked: false,
                    }),
                    RegistrationTokenEvent::Used(used) => {
                        if let Some(view) = views.iter_mut().find(|v| &v.token_id == token_id) {
                            view.used_by.push(used.client_id);
                        }
                    }
                    RegistrationTokenEvent::Revoked(_) => {
                        if let Some(view) = views.iter_mut().find(|v| &v.token_id == token_id) {
                            view.revoked = true;
                        }
                    }
                }
            }
            match events.last() {
                Some(last) if events.len() == LIST_BATCH as usize => after = last.position,
                _ => return Ok(views),
            }
        }
    }

    /// Revokes an initial access token; revoking a revoked token succeeds. Clients it
    /// registered stay registered.
    pub async fn revoke_registration_token(
        &self,
        actor: &AdminPrincipal,
        token_id: &str,
    ) -> Result<(), DomainError> {
        self.execute::<RegistrationToken, _>(
            &actor.instance_id,
            token_id,
            &actor.token_id,
            RegistrationToken::revoke,
        )
        .await
    }
}
