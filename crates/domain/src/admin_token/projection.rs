//! The `admin_tokens` read model, looked up on every admin request and listed by admins.

use async_trait::async_trait;
use eventstore::{BoxError, EventStore, Projection, ReadModelTx, SqlRow, SqlValue, StoredEvent};

use super::{AdminToken, AdminTokenEvent, hash_token};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;

/// Folds admin token events into `admin_tokens`.
pub struct AdminTokenProjection;

#[async_trait]
impl Projection for AdminTokenProjection {
    fn name(&self) -> &'static str {
        "admin_tokens"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[AdminToken::TYPE]
    }

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS admin_tokens (
                instance_id TEXT NOT NULL,
                token_id    TEXT NOT NULL,
                token_hash  TEXT NOT NULL UNIQUE,
                description TEXT NOT NULL,
                revoked     BOOLEAN NOT NULL,
                created_at  TEXT NOT NULL,
                PRIMARY KEY (instance_id, token_id)
            )"]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let key = [
            SqlValue::from(event.aggregate.instance_id.as_str()),
            SqlValue::from(event.aggregate.aggregate_id.as_str()),
        ];
        match decode::<AdminTokenEvent>(event)? {
            AdminTokenEvent::Added(added) => {
                tx.execute(
                    "INSERT INTO admin_tokens (instance_id, token_id, token_hash, description, revoked, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (instance_id, token_id) DO NOTHING",
                    &[
                        key[0].clone(),
                        key[1].clone(),
                        added.token_hash.into(),
                        added.description.into(),
                        false.into(),
                        event.created_at.to_rfc3339().into(),
                    ],
                )
                .await?;
            }
            AdminTokenEvent::Revoked(_) => {
                tx.execute(
                    "UPDATE admin_tokens SET revoked = $3 WHERE instance_id = $1 AND token_id = $2",
                    &[key[0].clone(), key[1].clone(), true.into()],
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Who an admin request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPrincipal {
    /// The instance the token administers.
    pub instance_id: String,
    /// The token's id, recorded as the creator of what the request changes.
    pub token_id: String,
}

impl AdminPrincipal {
    /// The principal a presented token belongs to, if it is known and not revoked.
    pub async fn authenticate(
        store: &dyn EventStore,
        token: &str,
    ) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(
                "SELECT instance_id, token_id FROM admin_tokens WHERE token_hash = $1 AND revoked = $2",
                &[hash_token(token).into(), false.into()],
            )
            .await?;
        rows.first()
            .map(|row| {
                Ok(AdminPrincipal {
                    instance_id: row.text(0)?.to_owned(),
                    token_id: row.text(1)?.to_owned(),
                })
            })
            .transpose()
    }
}

/// An admin token as listings show it: never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenView {
    /// The instance the token administers.
    pub instance_id: String,
    /// The token's id.
    pub token_id: String,
    /// What the token is for.
    pub description: String,
    /// Whether it was revoked.
    pub revoked: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// A `SELECT` of the columns `AdminTokenView::from_row` reads, followed by `$tail`.
macro_rules! select_admin_tokens {
    ($tail:literal) => {
        concat!(
            "SELECT instance_id, token_id, description, revoked, created_at FROM admin_tokens ",
            $tail
        )
    };
}

impl AdminTokenView {
    fn from_row(row: &SqlRow) -> Result<Self, DomainError> {
        Ok(AdminTokenView {
            instance_id: row.text(0)?.to_owned(),
            token_id: row.text(1)?.to_owned(),
            description: row.text(2)?.to_owned(),
            revoked: row.bool(3)?,
            created_at: row.text(4)?.to_owned(),
        })
    }

    /// The token with this id.
    pub async fn by_id(
        store: &dyn EventStore,
        instance_id: &str,
        token_id: &str,
    ) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(
                select_admin_tokens!("WHERE instance_id = $1 AND token_id = $2"),
                &[instance_id.into(), token_id.into()],
            )
            .await?;
        rows.first().map(Self::from_row).transpose()
    }

    /// An instance's tokens, oldest first; live ones only unless `include_revoked`.
    pub async fn of_instance(
        store: &dyn EventStore,
        instance_id: &str,
        include_revoked: bool,
    ) -> Result<Vec<Self>, DomainError> {
        let rows = store
            .query(
                select_admin_tokens!(
                    "WHERE instance_id = $1 AND (revoked = $2 OR $3) ORDER BY created_at, token_id"
                ),
                &[instance_id.into(), false.into(), include_revoked.into()],
            )
            .await?;
        rows.iter().map(Self::from_row).collect()
    }
}
