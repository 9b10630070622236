//! The `applications` read model: looked up by client_id on every authorization and token
//! request.

use async_trait::async_trait;
use eventstore::{BoxError, EventStore, Projection, ReadModelTx, SqlRow, SqlValue, StoredEvent};

use super::{Application, ApplicationEvent, OidcConfig};
use crate::aggregate::{Aggregate, decode, to_json};
use crate::error::DomainError;

/// Folds application events into `applications`.
pub struct ApplicationProjection;

#[async_trait]
impl Projection for ApplicationProjection {
    fn name(&self) -> &'static str {
        "applications"
    }

    fn on_hot_path(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[Application::TYPE]
    }

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS applications (
                instance_id             TEXT NOT NULL,
                client_id               TEXT NOT NULL,
                name                    TEXT NOT NULL,
                config                  TEXT NOT NULL,
                client_secret_hash      TEXT,
                back_channel_logout_uri TEXT,
                created_at              TEXT NOT NULL,
                updated_at              TEXT NOT NULL,
                PRIMARY KEY (instance_id, client_id)
            )"]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let instance_id = SqlValue::from(event.aggregate.instance_id.as_str());
        let client_id = SqlValue::from(event.aggregate.aggregate_id.as_str());
        let at = SqlValue::from(event.created_at.to_rfc3339());
        match decode::<ApplicationEvent>(event)? {
            ApplicationEvent::Added(added) => {
                tx.execute(
                    "INSERT INTO applications (instance_id, client_id, name, config, client_secret_hash,
                        back_channel_logout_uri, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (instance_id, client_id) DO NOTHING",
                    &[
                        instance_id,
                        client_id,
                        added.config.name.as_str().into(),
                        to_json(&added.config).into(),
                        added.client_secret_hash.into(),
                        added.config.back_channel_logout_uri.into(),
                        at,
                    ],
                )
                .await?;
            }
            ApplicationEvent::Changed(changed) => {
                tx.execute(
                    "UPDATE applications SET name = $3, config = $4, back_channel_logout_uri = $5, updated_at = $6
                     WHERE instance_id = $1 AND client_id = $2",
                    &[
                        instance_id,
                        client_id,
                        changed.config.name.as_str().into(),
                        to_json(&changed.config).into(),
                        changed.config.back_channel_logout_uri.into(),
                        at,
                    ],
                )
                .await?;
            }
            ApplicationEvent::SecretChanged(changed) => {
                tx.execute(
                    "UPDATE applications SET client_secret_hash = $3, updated_at = $4 WHERE instance_id = $1 AND client_id = $2",
                    &[instance_id, client_id, changed.client_secret_hash.into(), at],
                )
                .await?;
            }
            ApplicationEvent::Removed(_) => {
                tx.execute(
                    "DELETE FROM applications WHERE instance_id = $1 AND client_id = $2",
                    &[instance_id, client_id],
                )
                .await?;
            }
            // Checked against the aggregate's events, never the read model (RFC 7592 requests
            // are rare and must see a rotation at once).
            ApplicationEvent::RegistrationAccessTokenIssued(_) => {}
        }
        Ok(())
    }
}

/// An application as read models show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationView {
    /// The instance it belongs to.
    pub instance_id: String,
    /// Its client_id.
    pub client_id: String,
    /// Its settings.
    pub config: OidcConfig,
    /// SHA-256 of its secret (confidential clients).
    pub client_secret_hash: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl ApplicationView {
    /// Whether `secret` is this application's current secret (constant-time comparison); never
    /// for a public client.
    pub fn secret_matches(&self, secret: &str) -> bool {
        self.client_secret_hash
            .as_deref()
            .is_some_and(|hash| super::client_secret_matches(hash, secret))
    }

    fn from_row(row: &SqlRow) -> Result<Self, DomainError> {
        let client_id = row.text(1)?.to_owned();
        let config =
            serde_json::from_str(row.text(2)?).map_err(|error| DomainError::UnreadableEvent {
                event_type: "application read model".into(),
                aggregate: format!("application {client_id}"),
                reason: error.to_string(),
            })?;
        Ok(ApplicationView {
            instance_id: row.text(0)?.to_owned(),
            client_id,
            config,
            client_secret_hash: row.opt_text(3)?.map(str::to_owned),
            created_at: row.text(4)?.to_owned(),
        })
    }

    /// The application with this client_id.
    pub async fn by_client_id(
        store: &dyn EventStore,
        instance_id: &str,
        client_id: &str,
    ) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(
                "SELECT instance_id, client_id, config, client_secret_hash, created_at FROM applications
                 WHERE instance_id = $1 AND client_id = $2",
                &[instance_id.into(), client_id.into()],
            )
            .await?;
        rows.first().map(Self::from_row).transpose()
    }

    /// A page of an instance's applications, by client_id.
    pub async fn list(
        store: &dyn EventStore,
        instance_id: &str,
        after_client_id: &str,
        limit: i64,
    ) -> Result<Vec<Self>, DomainError> {
        let rows = store
            .query(
                "SELECT instance_id, client_id, config, client_secret_hash, created_at FROM applications
                 WHERE instance_id = $1 AND client_id > $2 ORDER BY client_id LIMIT $3",
                &[instance_id.into(), after_client_id.into(), limit.into()],
            )
            .await?;
        rows.iter().map(Self::from_row).collect()
    }
}
