//! The `oidc_grants` read model: which clients received tokens in which session.

use async_trait::async_trait;
use eventstore::{BoxError, EventStore, Projection, ReadModelTx, SqlValue, StoredEvent};

use super::{Grant, GrantEvent};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;

/// The names of the applications that received a code or tokens in a session, sorted.
pub async fn application_names_of_session(
    store: &dyn EventStore,
    instance_id: &str,
    session_id: &str,
) -> Result<Vec<String>, DomainError> {
    let rows = store
        .query(
            "SELECT DISTINCT a.name FROM oidc_grants g JOIN applications a
               ON a.instance_id = g.instance_id AND a.client_id = g.client_id
             WHERE g.instance_id = $1 AND g.session_id = $2 ORDER BY a.name",
            &[instance_id.into(), session_id.into()],
        )
        .await?;
    rows.iter().map(|row| Ok(row.text(0)?.to_owned())).collect()
}

/// The client ids of the applications that received a code or tokens in a session, sorted.
pub async fn client_ids_of_session(
    store: &dyn EventStore,
    instance_id: &str,
    session_id: &str,
) -> Result<Vec<String>, DomainError> {
    let rows = store
        .query(
            "SELECT DISTINCT client_id FROM oidc_grants
             WHERE instance_id = $1 AND session_id = $2 ORDER BY client_id",
            &[instance_id.into(), session_id.into()],
        )
        .await?;
    rows.iter().map(|row| Ok(row.text(0)?.to_owned())).collect()
}

/// Folds grant events into `oidc_grants`.
pub struct GrantProjection;

#[async_trait]
impl Projection for GrantProjection {
    fn name(&self) -> &'static str {
        "oidc_grants"
    }

    fn on_hot_path(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[Grant::TYPE]
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS oidc_grants (
                instance_id TEXT NOT NULL,
                grant_id    TEXT NOT NULL,
                session_id  TEXT NOT NULL,
                client_id   TEXT NOT NULL,
                user_id     TEXT NOT NULL,
                scopes      TEXT NOT NULL,
                nonce       TEXT,
                auth_time   TEXT NOT NULL,
                offline     BOOLEAN NOT NULL,
                revoked     BOOLEAN NOT NULL,
                PRIMARY KEY (instance_id, grant_id)
            )",
            "CREATE INDEX IF NOT EXISTS oidc_grants_by_session ON oidc_grants (instance_id, session_id)",
        ]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let instance_id = || SqlValue::from(event.aggregate.instance_id.as_str());
        let grant_id = || SqlValue::from(event.aggregate.aggregate_id.as_str());
        match decode::<GrantEvent>(event)? {
            GrantEvent::CodeIssued(code) => {
                let offline = code.scopes.iter().any(|scope| scope == "offline_access");
                tx.execute(
                    "INSERT INTO oidc_grants (instance_id, grant_id, session_id, client_id, user_id, scopes, nonce,
                        auth_time, offline, revoked)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (instance_id, grant_id) DO NOTHING",
                    &[
                        instance_id(),
                        grant_id(),
                        code.session_id.into(),
                        code.client_id.into(),
                        code.user_id.into(),
                        code.scopes.join(" ").into(),
                        code.nonce.into(),
                        code.auth_time.to_rfc3339().into(),
                        offline.into(),
                        false.into(),
                    ],
                )
                .await?;
            }
            // Tokens are checked against the grant's own events (see `TokenView::load`).
            GrantEvent::TokensIssued(_) => {}
            // The read model lists what was issued in a session; a client's own grant has none.
            GrantEvent::ClientCredentialsGranted(_) => {}
            GrantEvent::Revoked(_) => {
                tx.execute(
                    "UPDATE oidc_grants SET revoked = $3 WHERE instance_id = $1 AND grant_id = $2",
                    &[instance_id(), grant_id(), true.into()],
                )
                .await?;
            }
        }
        Ok(())
    }
}
