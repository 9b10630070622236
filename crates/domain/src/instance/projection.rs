//! The `instances` and `instance_features` read models.

use std::collections::BTreeMap;

use async_trait::async_trait;
use eventstore::{BoxError, EventStore, Projection, ReadModelTx, SqlRow, SqlValue, StoredEvent};

use super::{Instance, InstanceEvent};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;

/// The host (and port, if any) of an issuer URL: the display name an instance has until one
/// is configured.
pub fn issuer_host(external_url: &str) -> String {
    let after_scheme = external_url
        .split_once("://")
        .map_or(external_url, |(_, rest)| rest);
    after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or(after_scheme)
        .to_owned()
}

/// Folds instance events into `instances`, `instance_settings` and `instance_features`.
pub struct InstanceProjection;

#[async_trait]
impl Projection for InstanceProjection {
    fn name(&self) -> &'static str {
        "instances"
    }

    fn on_hot_path(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[Instance::TYPE]
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS instances (
                instance_id  TEXT PRIMARY KEY,
                name         TEXT NOT NULL,
                external_url TEXT NOT NULL,
                is_default   BOOLEAN NOT NULL,
                created_at   TEXT NOT NULL
            )",
            // Settings added after `instances` was first created live here, so that stores
            // created by earlier versions need no table change.
            "CREATE TABLE IF NOT EXISTS instance_settings (
                instance_id  TEXT PRIMARY KEY,
                display_name TEXT
            )",
            // Instances whose removal began: they answer on no host any more. A table of its
            // own for the same reason as `instance_settings`.
            "CREATE TABLE IF NOT EXISTS instance_removals (
                instance_id TEXT PRIMARY KEY
            )",
            "CREATE TABLE IF NOT EXISTS instance_features (
                instance_id TEXT NOT NULL,
                feature     TEXT NOT NULL,
                enabled     BOOLEAN NOT NULL,
                PRIMARY KEY (instance_id, feature)
            )",
        ]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let instance_id = SqlValue::from(event.aggregate.aggregate_id.as_str());
        match decode::<InstanceEvent>(event)? {
            InstanceEvent::Added(added) => {
                tx.execute(
                    "INSERT INTO instances (instance_id, name, external_url, is_default, created_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (instance_id) DO UPDATE SET name = excluded.name,
                        external_url = excluded.external_url, is_default = excluded.is_default",
                    &[
                        instance_id,
                        added.name.into(),
                        added.external_url.into(),
                        added.default.into(),
                        event.created_at.to_rfc3339().into(),
                    ],
                )
                .await?;
            }
            InstanceEvent::ExternalUrlChanged(changed) => {
                tx.execute(
                    "UPDATE instances SET external_url = $2 WHERE instance_id = $1",
                    &[instance_id, changed.external_url.into()],
                )
                .await?;
            }
            InstanceEvent::DisplayNameChanged(changed) => {
                tx.execute(
                    "INSERT INTO instance_settings (instance_id, display_name) VALUES ($1, $2)
                     ON CONFLICT (instance_id) DO UPDATE SET display_name = excluded.display_name",
                    &[instance_id, changed.display_name.into()],
                )
                .await?;
            }
            InstanceEvent::FeatureSet(set) => {
                tx.execute(
                    "INSERT INTO instance_features (instance_id, feature, enabled) VALUES ($1, $2, $3)
                     ON CONFLICT (instance_id, feature) DO UPDATE SET enabled = excluded.enabled",
                    &[instance_id, set.feature.into(), set.enabled.into()],
                )
                .await?;
            }
            InstanceEvent::RemovalStarted(_) => {
                tx.execute(
                    "INSERT INTO instance_removals (instance_id) VALUES ($1)
                     ON CONFLICT (instance_id) DO NOTHING",
                    &[instance_id],
                )
                .await?;
            }
            InstanceEvent::Removed(_) => {
                // The instance's own read models go; its events stay, for audit.
                for table in [
                    "DELETE FROM instances WHERE instance_id = $1",
                    "DELETE FROM instance_settings WHERE instance_id = $1",
                    "DELETE FROM instance_features WHERE instance_id = $1",
                    "DELETE FROM instance_removals WHERE instance_id = $1",
                ] {
                    tx.execute(table, std::slice::from_ref(&instance_id))
                        .await?;
                }
            }
            InstanceEvent::FeatureReset(reset) => {
                tx.execute(
                    "DELETE FROM instance_features WHERE instance_id = $1 AND feature = $2",
                    &[instance_id, reset.feature.into()],
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// An instance as read models show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    /// The instance's id.
    pub instance_id: String,
    /// Its internal name (`default` for the first one).
    pub name: String,
    /// The name people see on its pages: the configured display name, else its issuer's host.
    pub display_name: String,
    /// Its issuer URL.
    pub external_url: String,
    /// Whether it was created on first start.
    pub is_default: bool,
    /// Whether its removal began: it then answers on no host and accepts no admin token.
    pub removing: bool,
}

/// The columns [`InstanceView::from_row`] reads, with the settings joined in.
macro_rules! select_instances {
    ($tail:literal) => {
        concat!(
            "SELECT i.instance_id, i.name, i.external_url, i.is_default, s.display_name,
                r.instance_id
             FROM instances i LEFT JOIN instance_settings s ON s.instance_id = i.instance_id
             LEFT JOIN instance_removals r ON r.instance_id = i.instance_id ",
            $tail
        )
    };
}

impl InstanceView {
    fn from_row(row: &SqlRow) -> Result<Self, DomainError> {
        let external_url = row.text(2)?.to_owned();
        let display_name = match row.opt_text(4)? {
            Some(name) => name.to_owned(),
            None => issuer_host(&external_url),
        };
        Ok(InstanceView {
            instance_id: row.text(0)?.to_owned(),
            name: row.text(1)?.to_owned(),
            display_name,
            external_url,
            is_default: row.bool(3)?,
            removing: row.opt_text(5)?.is_some(),
        })
    }

    /// The instance with this id.
    pub async fn by_id(
        store: &dyn EventStore,
        instance_id: &str,
    ) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(
                select_instances!("WHERE i.instance_id = $1"),
                &[instance_id.into()],
            )
            .await?;
        rows.first().map(Self::from_row).transpose()
    }

    /// Every instance.
    pub async fn all(store: &dyn EventStore) -> Result<Vec<Self>, DomainError> {
        let rows = store
            .query(select_instances!("ORDER BY i.instance_id"), &[])
            .await?;
        rows.iter().map(Self::from_row).collect()
    }

    /// The instance created on first start.
    pub async fn default_instance(store: &dyn EventStore) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(select_instances!("WHERE i.is_default = $1"), &[true.into()])
            .await?;
        rows.first().map(Self::from_row).transpose()
    }

    /// The instance-level feature values of an instance, by name.
    pub async fn feature_values(
        store: &dyn EventStore,
        instance_id: &str,
    ) -> Result<BTreeMap<String, bool>, DomainError> {
        let rows = store
            .query(
                "SELECT feature, enabled FROM instance_features WHERE instance_id = $1",
                &[instance_id.into()],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.text(0)?.to_owned(), row.bool(1)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_display_name_is_the_issuers_host() {
        let cases = [
            ("https://id.example.com", "id.example.com"),
            ("http://localhost:8080", "localhost:8080"),
            ("https://example.com/tenant/a", "example.com"),
        ];
        for (url, host) in cases {
            assert_eq!(issuer_host(url), host);
        }
    }
}
