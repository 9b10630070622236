//! Starting "sign out everyone", ending its sessions chunk by chunk, and reading its progress.

use eventstore::Projection;

use super::{InstanceSignOut, SignOutOperation, SignOutStarted};
use crate::admin_token::AdminPrincipal;
use crate::aggregate::Loaded;
use crate::error::DomainError;
use crate::service::{Domain, retry_on_conflict};
use crate::session::{SessionProjection, SessionView, TerminationReason};
use crate::session_logout::{DeliveryCounts, DeliveryView};

/// Sessions ended per transaction: memory stays bounded however many sessions the instance
/// has, and the notifier starts on the first chunk at once. Smaller than a user's sign-out
/// chunk (1,000) because this one runs beside everyone else's traffic: on SQLite a chunk is
/// one unit of the single writer, and other requests' commits wait behind it. Measured with
/// `benches/sign_out_everyone.rs` at 20,000 sessions: 1,000 per chunk took 6.1 s alone and let
/// 8 code-flow clients through at 38/s (p99 325 ms); 250 took 4.0 s and 64/s (p99 159 ms);
/// 100 took 4.6 s and 162/s (p99 84 ms). Beside the code flow a small chunk is worth more
/// than the last bit of speed alone; what still holds the code flow back is CPU (the notifier
/// signs and sends thousands of tokens a second on the same two cores).
const CHUNK: u32 = 100;

/// Where an operation stands: sessions ended so far and in total, and what became of the
/// logout notifications of the sessions it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SignOutProgress {
    /// The operation as recorded.
    pub operation: SignOutOperation,
    /// Deliveries to the applications of the sessions it ended.
    pub deliveries: DeliveryCounts,
}

impl Domain {
    /// The instance's `instance_sign_out` aggregate (its id is the instance's).
    async fn sign_outs_of(
        &self,
        instance_id: &str,
    ) -> Result<Loaded<InstanceSignOut>, DomainError> {
        Loaded::load(self.store.as_ref(), instance_id, instance_id).await
    }

    /// Starts signing out every live session of the admin's instance; the work runs in the
    /// background ([`Domain::continue_sign_out`]). Returns the operation and whether this call
    /// started it (false: one was running already, and that one is returned).
    pub async fn sign_out_everyone(
        &self,
        admin: &AdminPrincipal,
        origin: &str,
    ) -> Result<(SignOutOperation, bool), DomainError> {
        self.start_sign_out(&admin.instance_id, &admin.token_id, origin)
            .await
    }

    /// Starts signing out every live session of an instance on behalf of `requested_by` (an
    /// admin token's id, or `system` for an instance's removal).
    pub(crate) async fn start_sign_out(
        &self,
        instance_id: &str,
        requested_by: &str,
        origin: &str,
    ) -> Result<(SignOutOperation, bool), DomainError> {
        retry_on_conflict(|| async move {
            let loaded = self.sign_outs_of(instance_id).await?;
            if let Some(running) = loaded.state.running() {
                return Ok((running.clone(), false));
            }
            let now = self.clock.now();
            // Sessions that begin from this moment on are not this operation's.
            let total =
                SessionView::count_live_before(self.store.as_ref(), instance_id, now).await?;
            let started = SignOutStarted {
                operation_id: uuid::Uuid::new_v4().simple().to_string(),
                requested_by: requested_by.to_owned(),
                origin: origin.to_owned(),
                total,
                started_at: now,
            };
            let events = loaded.state.start(started.clone());
            self.commit(&[loaded.append(&events, &self.stamp(requested_by))])
                .await?;
            Ok((
                SignOutOperation {
                    started,
                    ended: 0,
                    finished_at: None,
                },
                true,
            ))
        })
        .await
    }

    /// Whether a "sign out everyone" operation is running on the instance.
    pub(crate) async fn sign_out_running(&self, instance_id: &str) -> Result<bool, DomainError> {
        Ok(self
            .sign_outs_of(instance_id)
            .await?
            .state
            .running()
            .is_some())
    }

    /// Ends the next chunk of sessions of the instance's running operation, recording the
    /// chunk in the same transaction (so a restart resumes where it stopped), or completes
    /// the operation when none is left. Returns whether work remains. Safe to run in several
    /// processes at once: a conflict reloads, and ending an ended session records nothing.
    pub async fn continue_sign_out(&self, instance_id: &str) -> Result<bool, DomainError> {
        retry_on_conflict(|| async move {
            let loaded = self.sign_outs_of(instance_id).await?;
            let Some(running) = loaded.state.running() else {
                return Ok(false);
            };
            let started = &running.started;
            let ids = SessionView::live_ids_before(
                self.store.as_ref(),
                instance_id,
                started.started_at,
                CHUNK,
            )
            .await?;
            let stamp = self.stamp(&started.requested_by);
            let mut appends = self
                .terminations_of(
                    instance_id,
                    &ids,
                    TerminationReason::InstanceSignOut,
                    &started.origin,
                    &stamp,
                )
                .await?;
            if !ids.is_empty() && appends.is_empty() {
                // Another process ended these and the read model has not shown it yet.
                self.runner.catch_up(SessionProjection.name()).await?;
                return Ok(true);
            }
            let ended = appends.len() as u64;
            let events = loaded.state.advance(ended, self.clock.now());
            appends.push(loaded.append(&events, &stamp));
            self.commit(&appends).await?;
            Ok(ended > 0)
        })
        .await
    }

    /// Ends one chunk of every instance's running operation; returns whether work remains
    /// anywhere (the background worker calls it again at once then).
    pub async fn continue_sign_outs(&self) -> Result<bool, DomainError> {
        let mut more = false;
        for instance in self.instances().await?.iter() {
            more |= self.continue_sign_out(&instance.instance_id).await?;
        }
        Ok(more)
    }

    /// The instance's operations, newest first.
    pub async fn sign_out_operations(
        &self,
        instance_id: &str,
    ) -> Result<Vec<SignOutOperation>, DomainError> {
        let loaded = self.sign_outs_of(instance_id).await?;
        let mut operations = loaded.state.operations;
        operations.reverse();
        Ok(operations)
    }

    /// One operation's progress, with the deliveries of the sessions that ended while it ran
    /// and were live when it began.
    pub async fn sign_out_progress(
        &self,
        instance_id: &str,
        operation_id: &str,
    ) -> Result<SignOutProgress, DomainError> {
        let loaded = self.sign_outs_of(instance_id).await?;
        let operation = loaded
            .state
            .operation(operation_id)
            .cloned()
            .ok_or_else(|| DomainError::NotFound(format!("sign-out operation {operation_id}")))?;
        self.progress_of(instance_id, operation).await
    }

    /// The progress of an operation already loaded (listings load the aggregate once).
    pub async fn progress_of(
        &self,
        instance_id: &str,
        operation: SignOutOperation,
    ) -> Result<SignOutProgress, DomainError> {
        let deliveries = DeliveryView::counts_of_ended_between(
            self.store.as_ref(),
            instance_id,
            operation.started.started_at,
            operation.finished_at.unwrap_or_else(|| self.clock.now()),
        )
        .await?;
        Ok(SignOutProgress {
            operation,
            deliveries,
        })
    }
}
