//! The `admin_tokens` read model, looked up on every admin request.

use async_trait::async_trait;
use eventstore::{BoxError, EventStore, Projection, ReadModelTx, SqlValue, StoredEvent};

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
