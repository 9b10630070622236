//! `Domain`: what every command shares — the store, the projection runner, the clock, and
//! appending with read-your-writes. Each aggregate's commands live beside it
//! (`<aggregate>/commands.rs`).

use std::sync::Arc;
use std::time::Duration;

use eventstore::{
    AggregateAppend, EventStore, Projection, ProjectionRunner, RunnerOptions, StoreError,
    StoredEvent,
};

use crate::admin_token::AdminTokenProjection;
use crate::aggregate::{Aggregate, Loaded, Stamp};
use crate::application::{ApplicationProjection, ApplicationView};
use crate::cache::ReadCache;
use crate::clock::Clock;
use crate::error::DomainError;
use crate::features::SystemFeatures;
use crate::grant::GrantProjection;
use crate::instance::{InstanceProjection, InstanceView};
use crate::keys::{SigningKeyProjection, SigningKeyRecord};
use crate::observer::Observer;
use crate::session::SessionProjection;
use crate::session_logout::{BackChannelDeliveryProjection, BackChannelHealthProjection};
use crate::user::UserProjection;

/// How often a command is retried after losing a race to another writer.
const CONFLICT_RETRIES: usize = 5;

/// Runs a command's load → decide → append `attempt` again when it lost a race to another
/// writer (a `Conflict`), from a fresh load, at most [`CONFLICT_RETRIES`] more times; the last
/// conflict is returned. Every command that appends goes through here.
pub(crate) async fn retry_on_conflict<T, F>(attempt: impl FnMut() -> F) -> Result<T, DomainError>
where
    F: Future<Output = Result<T, DomainError>>,
{
    retry_conflicts(|_| true, attempt).await
}

/// [`retry_on_conflict`] for the conflicts `retry` accepts; any other is returned at once.
//
// The attempt is a closure returning a future (`|| async move { … }`, capturing references)
// rather than an async closure: the futures of async closures are not yet provably `Send`
// (a compiler limitation), and the server runs commands on a multi-threaded runtime.
pub(crate) async fn retry_conflicts<T, F>(
    retry: impl Fn(&StoreError) -> bool,
    mut attempt: impl FnMut() -> F,
) -> Result<T, DomainError>
where
    F: Future<Output = Result<T, DomainError>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(DomainError::Conflict(conflict))
                if retries < CONFLICT_RETRIES && retry(&conflict) =>
            {
                retries += 1;
            }
            other => return other,
        }
    }
}

/// Settings of the domain layer.
#[derive(Debug, Clone)]
pub struct DomainOptions {
    /// System-level feature values.
    pub system_features: SystemFeatures,
    /// How projections run.
    pub runner: RunnerOptions,
    /// How long a command waits for read models to show its own write.
    pub read_your_writes_timeout: Duration,
}

impl Default for DomainOptions {
    fn default() -> Self {
        DomainOptions {
            system_features: SystemFeatures::default(),
            runner: RunnerOptions::default(),
            read_your_writes_timeout: Duration::from_secs(5),
        }
    }
}

/// Commands and queries over one event store.
pub struct Domain {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) runner: Arc<ProjectionRunner>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: DomainOptions,
    pub(crate) caches: Caches,
    /// Told of what every append recorded (metrics); none in tests that do not ask.
    observer: Option<Arc<dyn Observer>>,
}

/// The read models served from memory (see `cache.rs`).
pub(crate) struct Caches {
    /// Every instance (there are few; each request resolves its host among them).
    pub(crate) instances: ReadCache<(), Arc<Vec<InstanceView>>>,
    /// Applications by (instance, client_id); `None` caches an unknown client_id.
    pub(crate) applications: ReadCache<(String, String), Option<ApplicationView>>,
    /// Signing keys by instance.
    pub(crate) signing_keys: ReadCache<String, Vec<SigningKeyRecord>>,
}

impl Caches {
    fn new(runner: &ProjectionRunner) -> Self {
        let changes = |projection: &dyn Projection| {
            runner
                .applied(projection.name())
                .expect("the domain's runner runs every domain projection")
        };
        Caches {
            instances: ReadCache::new(changes(&InstanceProjection)),
            applications: ReadCache::new(changes(&ApplicationProjection)),
            signing_keys: ReadCache::new(changes(&SigningKeyProjection)),
        }
    }
}

impl Domain {
    /// The domain over `store`; call [`Domain::install`] before use.
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>, options: DomainOptions) -> Self {
        let runner = Arc::new(ProjectionRunner::new(
            store.clone(),
            Self::projections(),
            options.runner,
        ));
        Domain {
            caches: Caches::new(&runner),
            store,
            runner,
            clock,
            options,
            observer: None,
        }
    }

    /// This domain, reporting what it records to `observer` from now on.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Tells the observer, if any, what an append that succeeded recorded.
    fn observe(&self, stored: &[StoredEvent]) {
        if let Some(observer) = &self.observer {
            crate::observer::report(observer.as_ref(), stored);
        }
    }

    /// Every projection the domain's read models need.
    pub fn projections() -> Vec<Arc<dyn Projection>> {
        vec![
            Arc::new(InstanceProjection),
            Arc::new(AdminTokenProjection),
            Arc::new(UserProjection),
            Arc::new(ApplicationProjection),
            Arc::new(SessionProjection),
            Arc::new(GrantProjection),
            Arc::new(SigningKeyProjection),
            Arc::new(BackChannelDeliveryProjection),
            Arc::new(BackChannelHealthProjection),
            Arc::new(crate::session::SessionExpiryProjection),
            Arc::new(crate::session::SessionActivityProjection),
        ]
    }

    /// Installs the projections (their tables and starting points).
    pub async fn install(&self) -> Result<(), DomainError> {
        Ok(self.runner.install().await?)
    }

    /// Keeps the read models up to date until `shutdown` turns true: the task the server
    /// runs in the background. (The runner and the store themselves stay inside the domain;
    /// other crates get narrow ports such as the delivery queue.)
    pub fn run_projections(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.runner.clone().run(shutdown)
    }

    /// The event store, for tests that check what was recorded.
    #[cfg(feature = "testing")]
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub(crate) fn stamp(&self, creator: &str) -> Stamp {
        Stamp {
            creator: creator.to_owned(),
            at: self.clock.now(),
        }
    }

    /// Appends, then waits until the read models of every touched instance show the write.
    pub(crate) async fn commit(
        &self,
        appends: &[AggregateAppend],
    ) -> Result<Vec<StoredEvent>, DomainError> {
        let stored = self.store.append(appends).await?;
        self.observe(&stored);
        // One wait per instance, for the projections that read what was written.
        let mut touched: std::collections::BTreeMap<&str, (eventstore::Position, Vec<&str>)> =
            Default::default();
        for event in &stored {
            let entry = touched
                .entry(event.aggregate.instance_id.as_str())
                .or_insert((event.position, Vec::new()));
            entry.0 = entry.0.max(event.position);
            if !entry.1.contains(&event.aggregate.aggregate_type.as_str()) {
                entry.1.push(event.aggregate.aggregate_type.as_str());
            }
        }
        for (instance_id, (position, aggregate_types)) in touched {
            self.runner
                .wait_for(
                    instance_id,
                    position,
                    &aggregate_types,
                    self.options.read_your_writes_timeout,
                )
                .await?;
        }
        Ok(stored)
    }

    /// Appends without waiting for read models: for writes that are read back from the log
    /// itself (grants), where waiting would only add latency.
    pub(crate) async fn append(
        &self,
        appends: &[AggregateAppend],
    ) -> Result<Vec<StoredEvent>, DomainError> {
        let stored = self.store.append(appends).await?;
        self.observe(&stored);
        Ok(stored)
    }

    /// Loads an aggregate, decides, appends; retries from a fresh load when another writer won.
    /// Returns once the read models show the write.
    pub(crate) async fn execute<A, F>(
        &self,
        instance_id: &str,
        aggregate_id: &str,
        creator: &str,
        decide: F,
    ) -> Result<(), DomainError>
    where
        A: Aggregate,
        F: Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    {
        self.execute_with::<A, F>(instance_id, aggregate_id, creator, true, decide)
            .await
    }

    /// [`Domain::execute`]; `observed` false skips waiting for read models, for aggregates
    /// that are read back from the log itself (grants).
    pub(crate) async fn execute_with<A, F>(
        &self,
        instance_id: &str,
        aggregate_id: &str,
        creator: &str,
        observed: bool,
        decide: F,
    ) -> Result<(), DomainError>
    where
        A: Aggregate,
        F: Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    {
        let decide = &decide;
        retry_on_conflict(|| async move {
            let loaded = Loaded::<A>::load(self.store.as_ref(), instance_id, aggregate_id).await?;
            let events = decide(&loaded.state)?;
            if events.is_empty() {
                return Ok(());
            }
            let appends = [loaded.append(&events, &self.stamp(creator))];
            let appended = if observed {
                self.commit(&appends).await
            } else {
                self.append(&appends).await
            };
            appended.map(drop)
        })
        .await
    }

    /// Checks the store and that setup has completed.
    pub async fn check_ready(&self) -> Result<(), DomainError> {
        self.store.check_ready().await?;
        self.default_instance().await.map(drop)
    }

    /// The current time as the domain sees it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
