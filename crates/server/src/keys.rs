//! Signing keys at run time: the master key, and per instance the parsed signing keys and the
//! published JWK set, cached in memory (keys are never parsed per request), created on demand
//! and rotated on schedule.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use domain::keys::SigningKeyAdded;
use domain::{Domain, DomainError};
use jose::rand_core::UnwrapErr;
use jose::{Algorithm, JwkSet, MasterKey, SealedKey, SigningKey, Verifier};

/// How long cached keys are kept at most. A new key (here or through another replica) is seen
/// at once through `Domain::signing_keys_version`; this only bounds how long a parsed key set
/// lives without a fresh look.
const CACHE_SECONDS: i64 = 60;

/// A key problem.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The domain failed.
    #[error(transparent)]
    Domain(#[from] Box<DomainError>),
    /// A key could not be generated, sealed, opened or used.
    #[error("signing key: {0}")]
    Jose(#[from] jose::JoseError),
    /// A stored key or the key machinery is in a state it should never be in.
    #[error("signing key: {0}")]
    Broken(String),
    /// The master key file could not be read or written.
    #[error("master key file {path}: {reason}")]
    MasterKeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

fn rng() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

/// The master key from configuration, else from `data_dir/master.key`, which is created
/// (mode 0600) on first start. Replicas sharing a database must share the master key.
pub fn load_master_key(configured: Option<&str>, data_dir: &Path) -> Result<MasterKey, KeyError> {
    if let Some(text) = configured {
        return Ok(MasterKey::from_base64(text.trim())?);
    }
    let path = data_dir.join("master.key");
    let file_error = |reason: String| KeyError::MasterKeyFile {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(MasterKey::from_base64(text.trim())?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(|error| file_error(error.to_string()))?;
            let key = MasterKey::generate(&mut rng());
            write_private(&path, key.to_base64().as_bytes())
                .map_err(|error| file_error(error.to_string()))?;
            Ok(key)
        }
        Err(error) => Err(file_error(error.to_string())),
    }
}

/// Creates a file only its owner can read; fails if it exists (never overwrites a key).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// One instance's keys, ready to use.
pub struct InstanceKeys {
    signers: HashMap<Algorithm, Arc<SigningKey>>,
    /// The published public keys.
    pub jwks: JwkSet,
    /// Verifies tokens this instance signed (e.g. an `id_token_hint`).
    pub verifier: Verifier,
    refresh_after: DateTime<Utc>,
    /// `Domain::signing_keys_version` before the keys were read: once it moves (a key was
    /// added here or through another replica) these keys are read again.
    version: u64,
}

impl From<DomainError> for KeyError {
    fn from(error: DomainError) -> Self {
        KeyError::Domain(Box::new(error))
    }
}

impl InstanceKeys {
    /// The current key for `alg`, if there is one.
    pub fn signer(&self, alg: Algorithm) -> Option<Arc<SigningKey>> {
        self.signers.get(&alg).cloned()
    }
}

/// Every instance's keys, cached.
pub struct KeyRing {
    domain: Arc<Domain>,
    master: MasterKey,
    rotation: chrono::Duration,
    overlap: chrono::Duration,
    cache: RwLock<HashMap<String, Arc<InstanceKeys>>>,
    creating: tokio::sync::Mutex<()>,
}

impl KeyRing {
    /// A key ring; keys are used for `rotation` and stay published `overlap` longer.
    pub fn new(
        domain: Arc<Domain>,
        master: MasterKey,
        rotation: chrono::Duration,
        overlap: chrono::Duration,
    ) -> Self {
        KeyRing {
            domain,
            master,
            rotation,
            overlap,
            cache: RwLock::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
        }
    }

    /// An instance's keys, from the cache while fresh.
    pub async fn instance_keys(&self, instance_id: &str) -> Result<Arc<InstanceKeys>, KeyError> {
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(instance_id)
            .cloned();
        match cached {
            Some(keys)
                if keys.refresh_after > self.domain.now()
                    && keys.version == self.domain.signing_keys_version() =>
            {
                Ok(keys)
            }
            _ => self.reload(instance_id).await,
        }
    }

    async fn reload(&self, instance_id: &str) -> Result<Arc<InstanceKeys>, KeyError> {
        let now = self.domain.now();
        let version = self.domain.signing_keys_version();
        let records = self.domain.signing_keys(instance_id).await?;
        let mut signers = HashMap::new();
        let mut published = Vec::new();
        let mut refresh_after = now + chrono::Duration::seconds(CACHE_SECONDS);
        for record in records {
            let sealed: SealedKey =
                serde_json::from_value(record.sealed.clone()).map_err(|error| {
                    KeyError::Broken(format!("sealed key {} is malformed: {error}", record.kid))
                })?;
            let key = sealed.open(&self.master)?;
            published.push(key.public_jwk().clone());
            if record.use_until > now {
                refresh_after = refresh_after.min(record.use_until);
                // Newest first: the first current key of an algorithm signs.
                signers.entry(key.alg()).or_insert_with(|| Arc::new(key));
            }
        }
        let jwks: JwkSet = published.into_iter().collect();
        let verifier = Verifier::new(&jwks)?;
        let keys = Arc::new(InstanceKeys {
            signers,
            jwks,
            verifier,
            refresh_after,
            version,
        });
        self.cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(instance_id.to_owned(), keys.clone());
        Ok(keys)
    }

    /// The key that signs for `alg` now, creating (and sealing and recording) one if the
    /// instance has none current.
    pub async fn signer(
        &self,
        instance_id: &str,
        alg: Algorithm,
    ) -> Result<Arc<SigningKey>, KeyError> {
        if let Some(key) = self.instance_keys(instance_id).await?.signer(alg) {
            return Ok(key);
        }
        let _one_at_a_time = self.creating.lock().await;
        if let Some(key) = self.reload(instance_id).await?.signer(alg) {
            return Ok(key);
        }
        let kid = uuid::Uuid::new_v4().simple().to_string();
        // RSA key generation takes a while: keep it off the async workers.
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(alg, kid))
            .await
            .map_err(|error| KeyError::Broken(format!("key generation stopped: {error}")))??;
        let sealed = SealedKey::seal(&self.master, &key, &mut rng())?;
        let now = self.domain.now();
        let added = SigningKeyAdded {
            kid: key.kid().to_owned(),
            alg: alg.name().to_owned(),
            sealed: serde_json::to_value(&sealed).expect("a sealed key serializes"),
            use_until: now + self.rotation,
            publish_until: now + self.rotation + self.overlap,
        };
        self.domain.add_signing_key(instance_id, added).await?;
        self.reload(instance_id)
            .await?
            .signer(alg)
            .ok_or_else(|| KeyError::Broken(format!("no {alg} key after creating one")))
    }
}

#[async_trait::async_trait]
impl notify::back_channel::LogoutSigner for KeyRing {
    async fn sign(
        &self,
        instance_id: &str,
        alg: &str,
        claims: &protocol::claims::LogoutTokenClaims,
    ) -> Result<String, String> {
        let alg = Algorithm::from_name(alg)
            .ok_or_else(|| format!("unknown signing algorithm {alg:?}"))?;
        let key = self
            .signer(instance_id, alg)
            .await
            .map_err(|error| error.to_string())?;
        // Back-Channel Logout 1.0 §2.4: the explicit type keeps a logout token from passing
        // for an ID token.
        key.sign(Some("logout+jwt"), claims)
            .map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{DateTime, TimeZone, Utc};
    use domain::{Clock, DomainOptions, SetupRequest};

    use super::*;

    /// A clock the test moves forward.
    struct SteppingClock(Mutex<DateTime<Utc>>);

    impl Clock for SteppingClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    fn kids(keys: &InstanceKeys) -> Vec<String> {
        keys.jwks.keys.iter().map(|jwk| jwk.kid.clone()).collect()
    }

    #[tokio::test]
    async fn keys_rotate_on_schedule_and_stay_published_for_the_overlap() {
        let harness = eventstore::testing::sqlite().await;
        let start = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
        let clock = Arc::new(SteppingClock(Mutex::new(start)));
        let domain = Arc::new(Domain::new(
            harness.store.clone(),
            clock.clone(),
            DomainOptions::default(),
        ));
        domain.install().await.unwrap();
        let setup = domain
            .setup(&SetupRequest {
                external_url: "http://localhost:8080".into(),
                initial_admin_token: None,
                display_name: None,
            })
            .await
            .unwrap();
        let instance = setup.instance.instance_id;
        let ring = KeyRing::new(
            domain.clone(),
            MasterKey::generate(&mut rng()),
            chrono::Duration::days(1),
            chrono::Duration::days(2),
        );
        let first = ring.signer(&instance, Algorithm::ES256).await.unwrap();
        assert_eq!(
            ring.signer(&instance, Algorithm::ES256)
                .await
                .unwrap()
                .kid(),
            first.kid()
        );

        // Past its use period the key is replaced, and both are published.
        *clock.0.lock().unwrap() = start + chrono::Duration::days(1) + chrono::Duration::seconds(1);
        let second = ring.signer(&instance, Algorithm::ES256).await.unwrap();
        assert_ne!(second.kid(), first.kid());
        let published = kids(&ring.instance_keys(&instance).await.unwrap());
        assert!(
            published.contains(&first.kid().to_owned())
                && published.contains(&second.kid().to_owned())
        );

        // Once tokens it signed can no longer be valid, the old key is withdrawn.
        *clock.0.lock().unwrap() = start + chrono::Duration::days(3) + chrono::Duration::seconds(1);
        let published = kids(&ring.instance_keys(&instance).await.unwrap());
        assert!(
            !published.contains(&first.kid().to_owned()),
            "{published:?}"
        );
        assert!(published.contains(&second.kid().to_owned()));
    }
}
