//! Drives projections: wakes on appends (or a poll), applies pending events per instance.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::Position;
use crate::projection::{BatchOutcome, Projection};
use crate::store::EventStore;

/// Settings for a projection runner.
#[derive(Debug, Clone, Copy)]
pub struct RunnerOptions {
    /// Events applied per transaction.
    pub batch_size: u32,
    /// How often to look for work when no wake-up arrives.
    pub poll_interval: Duration,
    /// How long a background pass waits after a wake-up, so that one pass takes the appends
    /// of a burst together. Commands that read their own writes do not wait for it: `wait_for`
    /// applies what they need itself.
    pub settle: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            batch_size: 1_000,
            poll_interval: Duration::from_secs(1),
            settle: Duration::from_millis(2),
        }
    }
}

/// What one pass over all projections and instances did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassSummary {
    /// Events applied in the pass.
    pub applied: usize,
    /// Whether some (projection, instance) was left to another process holding its lock.
    pub busy: bool,
}

/// Runs a set of projections against one store.
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    projections: Vec<Arc<dyn Projection>>,
    options: RunnerOptions,
    /// Per projection (same order), bumped whenever its read model changed as far as this
    /// process can tell (see [`ProjectionRunner::applied`]).
    applied: Arc<Vec<watch::Sender<u64>>>,
    /// Where each (projection, instance) stood at the last look, on a shared database.
    positions_seen: std::sync::Mutex<std::collections::HashMap<(String, String), Position>>,
    /// Projections the store writes with the events themselves (see
    /// [`EventStore::write_inline`]); the runner leaves them alone.
    inline: std::sync::OnceLock<Vec<&'static str>>,
}

impl ProjectionRunner {
    /// A runner for `projections`; call [`ProjectionRunner::install`] before running.
    pub fn new(
        store: Arc<dyn EventStore>,
        projections: Vec<Arc<dyn Projection>>,
        options: RunnerOptions,
    ) -> Self {
        let applied = Arc::new(projections.iter().map(|_| watch::Sender::new(0)).collect());
        ProjectionRunner {
            store,
            projections,
            options,
            applied,
            inline: std::sync::OnceLock::new(),
            positions_seen: Default::default(),
        }
    }

    /// A counter bumped whenever the read model of the projection named `name` changed as far
    /// as this process can tell: it applied events (a pass, a `wait_for`, a `catch_up`), the
    /// store applied them with the append (SQLite; bumped after the commit, before the
    /// command's answer), or, on a shared database, a pass found that another process
    /// advanced the projection. For caches and components that act on a read model. `None`
    /// for an unknown name.
    pub fn applied(&self, name: &str) -> Option<watch::Receiver<u64>> {
        let index = self
            .projections
            .iter()
            .position(|projection| projection.name() == name)?;
        Some(self.applied[index].subscribe())
    }

    fn signal_applied(&self, projection: &dyn Projection) {
        bump(&self.projections, &self.applied, projection.name());
    }

    /// Creates the projections' tables and records where new ones start; then hands the
    /// projections on the hot path to the store where it writes them with the events.
    pub async fn install(&self) -> Result<(), StoreError> {
        for projection in &self.projections {
            self.store.install_projection(projection.clone()).await?;
        }
        let hot: Vec<Arc<dyn Projection>> = self
            .projections
            .iter()
            .filter(|projection| projection.on_hot_path())
            .cloned()
            .collect();
        let (projections, applied) = (self.projections.clone(), self.applied.clone());
        let on_applied: crate::store::InlineApplied =
            Arc::new(move |name| bump(&projections, &applied, name));
        let inline = if hot.is_empty() || self.inline.get().is_some() {
            Vec::new()
        } else {
            self.store.write_inline(hot, on_applied).await?
        };
        let _ = self.inline.set(inline);
        Ok(())
    }

    /// Whether the store writes this projection with the events (the runner leaves it).
    fn is_inline(&self, name: &str) -> bool {
        self.inline
            .get()
            .is_some_and(|inline| inline.contains(&name))
    }

    /// Applies everything currently visible, for every projection and instance.
    pub async fn run_pass(&self) -> Result<PassSummary, StoreError> {
        let mut summary = PassSummary::default();
        for instance_id in self.store.instances().await? {
            let instance = self.catch_up_instance(&instance_id).await?;
            summary.applied += instance.applied;
            summary.busy |= instance.busy;
        }
        self.notice_other_processes().await?;
        Ok(summary)
    }

    /// On a shared database, bumps the `applied` counter of every projection another process
    /// advanced since the last look (one read of the stored positions).
    async fn notice_other_processes(&self) -> Result<(), StoreError> {
        if !self.store.shared() {
            return Ok(());
        }
        let rows = self
            .store
            .query(
                "SELECT projection, instance_id, position, in_tx_order FROM current_states",
                &[],
            )
            .await?;
        let mut changed = Vec::new();
        {
            let mut seen = self
                .positions_seen
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for row in &rows {
                let key = (row.text(0)?.to_owned(), row.text(1)?.to_owned());
                let position = Position {
                    tx: row.int(2)?,
                    in_tx_order: i32::try_from(row.int(3)?).unwrap_or(i32::MAX),
                };
                // A first sight counts as a change: a cache may have been filled before it.
                if seen.insert(key.clone(), position) != Some(position) {
                    changed.push(key.0);
                }
            }
        }
        changed.sort_unstable();
        changed.dedup();
        for name in changed {
            bump(&self.projections, &self.applied, &name);
        }
        Ok(())
    }

    /// Applies everything currently visible to the one projection named `name`, for every
    /// instance (for a component that reads only that projection and was just woken).
    pub async fn catch_up(&self, name: &str) -> Result<PassSummary, StoreError> {
        let mut summary = PassSummary::default();
        let Some(projection) = self
            .projections
            .iter()
            .find(|projection| projection.name() == name && !self.is_inline(name))
        else {
            return Ok(summary);
        };
        for instance_id in self.store.instances().await? {
            self.drain(std::slice::from_ref(projection), &instance_id, &mut summary)
                .await?;
        }
        Ok(summary)
    }

    /// Applies batches of `projections` for one instance, all of them in one transaction per
    /// batch (one commit instead of one per projection), until each is idle or another process
    /// holds its lock (then `summary.busy`).
    async fn drain(
        &self,
        projections: &[Arc<dyn Projection>],
        instance_id: &str,
        summary: &mut PassSummary,
    ) -> Result<(), StoreError> {
        let mut active = projections.to_vec();
        while !active.is_empty() {
            let outcomes = match self
                .store
                .project_many(&active, instance_id, self.options.batch_size)
                .await
            {
                Ok(outcomes) => outcomes,
                Err(error) if active.len() == 1 => return Err(error),
                // One failing projection must not hold back the others: take them one at a
                // time, so the others advance and the failure is reported by its own.
                Err(_) => return self.drain_each(&active, instance_id, summary).await,
            };
            let mut may_have_more = Vec::new();
            for (projection, outcome) in active.iter().zip(outcomes) {
                match outcome {
                    BatchOutcome::Applied { count, .. } => {
                        summary.applied += count;
                        self.signal_applied(projection.as_ref());
                        may_have_more.push(projection.clone());
                    }
                    BatchOutcome::Idle => {}
                    BatchOutcome::Busy => summary.busy = true,
                }
            }
            active = may_have_more;
        }
        Ok(())
    }

    /// Drains each projection on its own; returns the first failure after trying them all.
    async fn drain_each(
        &self,
        projections: &[Arc<dyn Projection>],
        instance_id: &str,
        summary: &mut PassSummary,
    ) -> Result<(), StoreError> {
        let mut first_error = None;
        for projection in projections {
            if let Err(error) =
                Box::pin(self.drain(std::slice::from_ref(projection), instance_id, summary)).await
            {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn catch_up_instance(&self, instance_id: &str) -> Result<PassSummary, StoreError> {
        let mut summary = PassSummary::default();
        self.drain(&self.relevant(&[]), instance_id, &mut summary)
            .await?;
        Ok(summary)
    }

    /// The projections the runner keeps that read any of `aggregate_types` (all when empty).
    fn relevant(&self, aggregate_types: &[&str]) -> Vec<Arc<dyn Projection>> {
        self.projections
            .iter()
            .filter(|projection| {
                let reads = projection.aggregate_types();
                !self.is_inline(projection.name())
                    && (aggregate_types.is_empty()
                        || reads.is_empty()
                        || reads.iter().any(|read| aggregate_types.contains(read)))
            })
            .cloned()
            .collect()
    }

    /// Waits until every projection that reads `aggregate_types` (all projections when empty)
    /// has applied everything of `instance_id` up to `position` (read-your-writes after a
    /// command), doing the work itself where no other process is.
    pub async fn wait_for(
        &self,
        instance_id: &str,
        position: Position,
        aggregate_types: &[&str],
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        let relevant = self.relevant(aggregate_types);
        loop {
            // Visibility first: an idle pass after it proves the position was applied.
            if self.store.is_visible(position).await? {
                let mut summary = PassSummary::default();
                self.drain(&relevant, instance_id, &mut summary).await?;
                if !summary.busy {
                    // Whoever applied the write (this process, or another on a shared
                    // database), caches keyed on these read models learn of it before the
                    // command answers.
                    for projection in &relevant {
                        self.signal_applied(projection.as_ref());
                    }
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(WaitError::Timeout(timeout));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Runs until `shutdown` turns true: a pass on every wake-up and every poll interval.
    /// Errors are logged and retried with backoff; a projection never skips an event.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut appended = self.store.subscribe();
        let mut backoff = Duration::from_millis(100);
        let mut next_wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(next_wait) => {}
                changed = appended.changed() => if changed.is_err() { return },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            appended.mark_unchanged();
            tokio::time::sleep(self.options.settle).await;
            next_wait = match self.run_pass().await {
                Ok(summary) => {
                    backoff = Duration::from_millis(100);
                    // Something was (or may be) left: another process's lock, or on PostgreSQL
                    // a commit that is not yet below the horizon. Look again soon.
                    if summary.busy || summary.applied == 0 {
                        Duration::from_millis(20).min(self.options.poll_interval)
                    } else {
                        Duration::ZERO
                    }
                }
                Err(error) => {
                    tracing::error!(%error, retry_in = ?backoff, "projection pass failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            if next_wait.is_zero() {
                continue;
            }
            // After the short re-check, fall back to the poll interval.
            tokio::select! {
                _ = tokio::time::sleep(next_wait) => {}
                changed = appended.changed() => if changed.is_err() { return },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            appended.mark_unchanged();
            if let Err(error) = self.run_pass().await {
                tracing::error!(%error, "projection pass failed");
            }
            next_wait = self.options.poll_interval;
        }
    }
}

/// Bumps the `applied` counter of the projection named `name`.
fn bump(projections: &[Arc<dyn Projection>], applied: &[watch::Sender<u64>], name: &str) {
    if let Some(index) = projections.iter().position(|known| known.name() == name) {
        applied[index].send_modify(|count| *count = count.wrapping_add(1));
    }
}

/// Why waiting for projections failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The store failed while catching up.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The projections did not catch up in time (another process may be slow or stuck).
    #[error("read models did not catch up within {0:?}")]
    Timeout(Duration),
}
