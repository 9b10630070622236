//! Read-model values kept in memory and never served once the read model has changed.
//!
//! Each cache follows one projection's change counter (`ProjectionRunner::applied`): on
//! SQLite it is bumped after the commit that changed the read model and before that
//! command's answer; on PostgreSQL by this process's own writes and by every pass that finds
//! another replica advanced the projection (woken by LISTEN/NOTIFY). An entry remembers the
//! counter as it stood *before* its value was read, so a value read just before a change is
//! stored under the old counter and never served. Only read models whose staleness would be
//! a configuration lag are cached (instances, applications, signing keys); session liveness
//! and token validity never are.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

use tokio::sync::watch;

/// Entries one cache holds at most; past it the cache starts over (a burst of lookups of
/// unknown client_ids cannot grow memory without bound).
const MAX_ENTRIES: usize = 10_000;

/// Values read from one read model, keyed by what they were looked up with.
pub(crate) struct ReadCache<K, V> {
    changes: watch::Receiver<u64>,
    entries: RwLock<HashMap<K, (u64, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> ReadCache<K, V> {
    /// A cache invalidated whenever `changes` moves.
    pub(crate) fn new(changes: watch::Receiver<u64>) -> Self {
        ReadCache {
            changes,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The read model's change counter now.
    pub(crate) fn version(&self) -> u64 {
        *self.changes.borrow()
    }

    /// The value for `key`: from memory while the read model is unchanged, else from `load`
    /// (which reads the read model), remembered under the counter taken before the read.
    pub(crate) async fn get_or_load<E>(
        &self,
        key: &K,
        load: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        let version = self.version();
        if let Some((at, value)) = self.read().get(key)
            && *at == version
        {
            return Ok(value.clone());
        }
        let value = load.await?;
        if self.version() == version {
            let mut entries = self.write();
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (at, _)| *at == version);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key.clone(), (version, value.clone()));
        }
        Ok(value)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<K, (u64, V)>> {
        self.entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<K, (u64, V)>> {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn load(value: &str) -> Result<String, ()> {
        Ok(value.to_owned())
    }

    #[tokio::test]
    async fn a_change_is_never_served_stale() {
        let (changes, watched) = watch::channel(0u64);
        let cache = ReadCache::new(watched);
        assert_eq!(cache.get_or_load(&"k", load("v1")).await, Ok("v1".into()));
        // Served from memory: the loader's value is not used.
        assert_eq!(
            cache.get_or_load(&"k", load("other")).await,
            Ok("v1".into())
        );
        changes.send_modify(|count| *count += 1);
        assert_eq!(cache.get_or_load(&"k", load("v2")).await, Ok("v2".into()));
    }

    #[tokio::test]
    async fn a_value_read_across_a_change_is_not_kept() {
        let (changes, watched) = watch::channel(0u64);
        let cache = ReadCache::new(watched);
        // The read model changes while the old value is being read.
        let racing = async {
            changes.send_modify(|count| *count += 1);
            Ok::<_, ()>("old".to_owned())
        };
        assert_eq!(cache.get_or_load(&"k", racing).await, Ok("old".into()));
        assert_eq!(cache.get_or_load(&"k", load("new")).await, Ok("new".into()));
    }

    #[tokio::test]
    async fn memory_stays_bounded() {
        let (_changes, watched) = watch::channel(0u64);
        let cache = ReadCache::new(watched);
        for n in 0..MAX_ENTRIES + 10 {
            cache.get_or_load(&n, load("v")).await.unwrap();
        }
        assert!(cache.read().len() <= MAX_ENTRIES);
    }
}
