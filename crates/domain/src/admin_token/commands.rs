//! Admin token commands and queries: authenticate, issue, list, revoke.

use crate::admin_token::{self, AdminPrincipal, AdminToken, AdminTokenView};
use crate::aggregate::create;
use crate::error::DomainError;
use crate::service::Domain;

/// A newly issued admin token: its listing entry and the token itself, shown once.
#[derive(Debug, Clone)]
pub struct IssuedAdminToken {
    /// What listings show of it.
    pub view: AdminTokenView,
    /// The bearer token, in clear; only its hash is stored.
    pub token: String,
}

impl Domain {
    /// The principal a presented admin token belongs to; `None` for an unknown or revoked
    /// token, and for a token of an instance that is being (or was) removed.
    pub async fn authenticate_admin(
        &self,
        token: &str,
    ) -> Result<Option<AdminPrincipal>, DomainError> {
        let Some(principal) = AdminPrincipal::authenticate(self.store.as_ref(), token).await?
        else {
            return Ok(None);
        };
        let live =
            self.instances().await?.iter().any(|instance| {
                instance.instance_id == principal.instance_id && !instance.removing
            });
        Ok(live.then_some(principal))
    }

    /// Issues an admin token for the actor's instance.
    pub async fn add_admin_token(
        &self,
        actor: &AdminPrincipal,
        description: &str,
    ) -> Result<IssuedAdminToken, DomainError> {
        let token = admin_token::generate_token();
        let token_id = uuid::Uuid::now_v7().to_string();
        let events = AdminToken::default().add(&token, description)?;
        self.commit(&[create::<AdminToken>(
            &actor.instance_id,
            &token_id,
            &events,
            &self.stamp(&actor.token_id),
        )])
        .await?;
        Ok(IssuedAdminToken {
            view: self.admin_token(&actor.instance_id, &token_id).await?,
            token,
        })
    }

    /// The admin token with this id.
    pub async fn admin_token(
        &self,
        instance_id: &str,
        token_id: &str,
    ) -> Result<AdminTokenView, DomainError> {
        AdminTokenView::by_id(self.store.as_ref(), instance_id, token_id)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("admin token {token_id}")))
    }

    /// An instance's admin tokens, oldest first; live ones only unless `include_revoked`.
    pub async fn admin_tokens(
        &self,
        instance_id: &str,
        include_revoked: bool,
    ) -> Result<Vec<AdminTokenView>, DomainError> {
        AdminTokenView::of_instance(self.store.as_ref(), instance_id, include_revoked).await
    }

    /// Revokes an admin token of the actor's instance; revoking a revoked token succeeds.
    /// A token cannot revoke itself: every revocation is made by another live token, so the
    /// admin API never loses its last token.
    pub async fn revoke_admin_token(
        &self,
        actor: &AdminPrincipal,
        token_id: &str,
    ) -> Result<(), DomainError> {
        if token_id == actor.token_id {
            return Err(DomainError::Invalid {
                field: "token_id",
                reason: "a token cannot revoke itself; revoke it with another admin token".into(),
            });
        }
        self.execute::<AdminToken, _>(
            &actor.instance_id,
            token_id,
            &actor.token_id,
            AdminToken::revoke,
        )
        .await
    }
}
