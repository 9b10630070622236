//! Signing key commands and queries.

use crate::aggregate::{Aggregate, Loaded};
use crate::error::DomainError;
use crate::keys::{SigningKeyAdded, SigningKeyRecord, SigningKeys};
use crate::service::{Domain, retry_on_conflict};

impl Domain {
    /// An instance's signing keys that are still published, newest first.
    pub async fn signing_keys(
        &self,
        instance_id: &str,
    ) -> Result<Vec<SigningKeyRecord>, DomainError> {
        let now = self.clock.now();
        let keys = self
            .caches
            .signing_keys
            .get_or_load(
                &instance_id.to_owned(),
                SigningKeyRecord::of_instance(self.store.as_ref(), instance_id),
            )
            .await?;
        Ok(keys
            .into_iter()
            .filter(|key| key.publish_until > now)
            .collect())
    }

    /// A counter that moves whenever an instance's signing keys may have changed (here or,
    /// on PostgreSQL, through another replica), for caches built on [`Domain::signing_keys`].
    pub fn signing_keys_version(&self) -> u64 {
        self.caches.signing_keys.version()
    }

    /// Adds a signing key unless one for its algorithm is current (another process may have
    /// just added one); returns whether this one was added.
    pub async fn add_signing_key(
        &self,
        instance_id: &str,
        key: SigningKeyAdded,
    ) -> Result<bool, DomainError> {
        let key = &key;
        retry_on_conflict(|| async move {
            let keys =
                Loaded::<SigningKeys>::load(self.store.as_ref(), instance_id, instance_id).await?;
            let events = keys.state.add(key.clone(), self.clock.now());
            if events.is_empty() {
                // Make sure this process's read model shows the key that won.
                self.runner
                    .wait_for(
                        instance_id,
                        keys.position,
                        &[SigningKeys::TYPE],
                        self.options.read_your_writes_timeout,
                    )
                    .await?;
                return Ok(false);
            }
            self.commit(&[keys.append(&events, &self.stamp("system"))])
                .await
                .map(|_| true)
        })
        .await
    }
}
