//! The `signing_keys` read model.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use eventstore::{BoxError, EventStore, Projection, ReadModelTx, SqlRow, SqlValue, StoredEvent};

use super::{SigningKeyEvent, SigningKeys};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;

/// Folds key events into `signing_keys`.
pub struct SigningKeyProjection;

#[async_trait]
impl Projection for SigningKeyProjection {
    fn name(&self) -> &'static str {
        "signing_keys"
    }

    fn on_hot_path(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[SigningKeys::TYPE]
    }

    fn schema(&self) -> &'static [&'static str] {
        &["CREATE TABLE IF NOT EXISTS signing_keys (
                instance_id   TEXT NOT NULL,
                kid           TEXT NOT NULL,
                alg           TEXT NOT NULL,
                sealed        TEXT NOT NULL,
                use_until     TEXT NOT NULL,
                publish_until TEXT NOT NULL,
                created_at    TEXT NOT NULL,
                PRIMARY KEY (instance_id, kid)
            )"]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        match decode::<SigningKeyEvent>(event)? {
            SigningKeyEvent::Added(added) => {
                tx.execute(
                    "INSERT INTO signing_keys (instance_id, kid, alg, sealed, use_until, publish_until, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (instance_id, kid) DO NOTHING",
                    &[
                        SqlValue::from(event.aggregate.instance_id.as_str()),
                        added.kid.into(),
                        added.alg.into(),
                        added.sealed.to_string().into(),
                        added.use_until.to_rfc3339().into(),
                        added.publish_until.to_rfc3339().into(),
                        event.created_at.to_rfc3339().into(),
                    ],
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// A key as read models show it.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeyRecord {
    /// The key id.
    pub kid: String,
    /// The algorithm name.
    pub alg: String,
    /// The sealed private key.
    pub sealed: serde_json::Value,
    /// Used for new tokens until then.
    pub use_until: DateTime<Utc>,
    /// Published until then.
    pub publish_until: DateTime<Utc>,
}

impl SigningKeyRecord {
    fn from_row(row: &SqlRow) -> Result<Self, DomainError> {
        let unreadable = |what: &str| DomainError::UnreadableEvent {
            event_type: "signing_keys read model".into(),
            aggregate: format!("key {}", row.text(0).unwrap_or("?")),
            reason: format!("bad {what}"),
        };
        let time = |index: usize, what: &str| -> Result<DateTime<Utc>, DomainError> {
            DateTime::parse_from_rfc3339(row.text(index)?)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| unreadable(what))
        };
        Ok(SigningKeyRecord {
            kid: row.text(0)?.to_owned(),
            alg: row.text(1)?.to_owned(),
            sealed: serde_json::from_str(row.text(2)?).map_err(|_| unreadable("sealed key"))?,
            use_until: time(3, "use_until")?,
            publish_until: time(4, "publish_until")?,
        })
    }

    /// An instance's keys, newest first.
    pub async fn of_instance(
        store: &dyn EventStore,
        instance_id: &str,
    ) -> Result<Vec<Self>, DomainError> {
        let rows = store
            .query(
                "SELECT kid, alg, sealed, use_until, publish_until FROM signing_keys
                 WHERE instance_id = $1 ORDER BY created_at DESC, kid DESC",
                &[instance_id.into()],
            )
            .await?;
        rows.iter().map(Self::from_row).collect()
    }
}
