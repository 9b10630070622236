//! The SQLite writer: one thread owns the read-write connection, and every write reaches it
//! as one unit of work (a command's appends with their expected sequences, a projection
//! batch, a claim), never statement by statement.
//!
//! Group commit: while one transaction commits (and fsyncs), arriving work queues on the
//! channel; the thread then takes everything queued into the next transaction, each unit in
//! its own SAVEPOINT, so a conflict or error rolls back that unit alone. Every reply waits
//! until COMMIT has returned: nothing is acknowledged that a crash could lose. There are no
//! timers; batches grow only when callers are concurrent. A failed COMMIT fails every unit of
//! its batch with `StoreError::CommitFailed`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use chrono::SubsecRound;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::sql;
use crate::error::StoreError;
use crate::event::{AggregateAppend, Position, StoredEvent};
use crate::projection::{BatchOutcome, Projection, reads};
use crate::store::{AppendSignal, InlineApplied};

/// At most this many units share one transaction, so one batch's replies are never held back
/// behind an unbounded queue.
const MAX_BATCH: usize = 1_024;

/// Events per projection batch when the writer catches an inline projection up.
const CATCH_UP_BATCH: u32 = 1_000;

/// A unit of work and where its answer goes.
trait Job: Send {
    /// Does the work inside the unit's savepoint; `false` when it failed (the savepoint is
    /// then rolled back).
    fn run(&mut self, writer: &mut WriterState) -> bool;
    /// Sends the answer once the batch's COMMIT returned (`Err` with the reason it failed).
    fn finish(self: Box<Self>, committed: Result<(), &str>);
}

struct Call<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Call<T, F>
where
    T: Send,
    F: FnOnce(&mut WriterState) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, writer: &mut WriterState) -> bool {
        let work = self.work.take().expect("a unit of work runs once");
        let result = work(writer);
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn finish(self: Box<Self>, committed: Result<(), &str>) {
        let answer = match (self.result, committed) {
            // The unit's own failure is its answer, whatever happened to the batch.
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(reason)) => Err(StoreError::CommitFailed(reason.to_owned())),
            (None, Ok(())) => Err(StoreError::WriterStopped),
        };
        // The caller may have given up waiting; the work is committed either way.
        let _ = self.reply.send(answer);
    }
}

/// The sending side: hands work to the writer thread and waits for its answer.
pub(super) struct Writer {
    jobs: Option<Sender<Box<dyn Job>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn start(conn: Connection, appended: AppendSignal) -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let state = WriterState::new(conn);
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(state, &queue, &appended))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `work` in its own savepoint of the writer's next transaction; answers after that
    /// transaction committed.
    pub(super) async fn call<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriterState) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Call {
            work: Some(work),
            result: None,
            reply,
        });
        self.jobs
            .as_ref()
            .ok_or(StoreError::WriterStopped)?
            .send(job)
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the work already queued; waiting for it
        // closes the file before another store may open it.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut writer: WriterState, queue: &Receiver<Box<dyn Job>>, appended: &AppendSignal) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = writer.run_batch(&mut batch);
        if let Err(reason) = &committed {
            tracing::error!(%reason, units = batch.len(), "SQLite commit failed; every write of the batch failed");
        }
        let published = writer.settle(committed.is_ok());
        // Before any reply: a caller that reads right after its answer must find every
        // cache keyed on these read models already invalidated.
        if let Some(hook) = &writer.on_inline_applied {
            for name in published.applied {
                hook(name);
            }
        }
        for job in batch {
            job.finish(committed.as_ref().map(drop).map_err(String::as_str));
        }
        if published.appended {
            appended.notify();
        }
    }
}

/// What the open transaction did that others may only learn after it commits.
#[derive(Default)]
struct Pending {
    instances: Vec<String>,
    appended: bool,
    applied: Vec<&'static str>,
}

/// Where `Pending` stood before a unit, to undo what a rolled-back unit added.
struct Mark {
    instances: usize,
    appended: bool,
    applied: usize,
}

impl Pending {
    fn mark(&self) -> Mark {
        Mark {
            instances: self.instances.len(),
            appended: self.appended,
            applied: self.applied.len(),
        }
    }

    fn reset(&mut self, mark: &Mark) {
        self.instances.truncate(mark.instances);
        self.appended = mark.appended;
        self.applied.truncate(mark.applied);
    }
}

/// The writer thread's connection and what it knows about the file.
pub(super) struct WriterState {
    pub(super) conn: Connection,
    /// The position the next append takes; `None` when it must be read from the file.
    next_tx: Option<i64>,
    /// `PRAGMA data_version` after this writer's last transaction: a change means another
    /// connection wrote to the file (the store is meant to be alone on it; this keeps it
    /// correct when it is not).
    data_version: Option<i64>,
    known_instances: HashSet<String>,
    /// Projections whose read models every append updates in its own savepoint.
    inline: Vec<Arc<dyn Projection>>,
    /// Whether the inline projections may be behind the log (another writer appended, or a
    /// commit failed after they advanced) and must catch up before the next unit.
    inline_behind: bool,
    on_inline_applied: Option<InlineApplied>,
    pending: Pending,
}

impl WriterState {
    fn new(conn: Connection) -> Self {
        WriterState {
            conn,
            next_tx: None,
            data_version: None,
            known_instances: HashSet::new(),
            inline: Vec::new(),
            inline_behind: false,
            on_inline_applied: None,
            pending: Pending::default(),
        }
    }

    /// Runs a batch in one transaction, each unit in its own savepoint.
    fn run_batch(&mut self, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
        sql::run_batch(&self.conn, "BEGIN IMMEDIATE").map_err(|error| error.to_string())?;
        let result = self.run_units(batch);
        let result = result.and_then(|()| {
            sql::run_batch(&self.conn, "COMMIT")
                .map(|()| sql::count_commit())
                .map_err(|error| error.to_string())
        });
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = sql::run_batch(&self.conn, "ROLLBACK");
        }
        result
    }

    fn run_units(&mut self, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
        self.notice_other_writers()
            .map_err(|error| error.to_string())?;
        for job in batch.iter_mut() {
            let mark = self.pending.mark();
            sql::run_batch(&self.conn, "SAVEPOINT unit").map_err(|error| error.to_string())?;
            if job.run(self) {
                sql::run_batch(&self.conn, "RELEASE unit").map_err(|error| error.to_string())?;
                continue;
            }
            self.pending.reset(&mark);
            // Some errors (a full disk, I/O) make SQLite roll the whole transaction back;
            // then the batch as a whole has failed.
            if self.conn.is_autocommit() {
                return Err("the transaction was rolled back by SQLite after an error".into());
            }
            sql::run_batch(&self.conn, "ROLLBACK TO unit; RELEASE unit")
                .map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    /// Publishes (after COMMIT) or forgets (after a failure) what the transaction did.
    fn settle(&mut self, committed: bool) -> Pending {
        let pending = std::mem::take(&mut self.pending);
        if committed {
            self.known_instances
                .extend(pending.instances.iter().cloned());
            return pending;
        }
        // Whatever the failed transaction advanced is not on disk.
        self.next_tx = None;
        self.inline_behind = !self.inline.is_empty();
        Pending::default()
    }

    fn notice_other_writers(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))?;
        if self.data_version.is_some_and(|known| known != version) {
            self.next_tx = None;
            self.inline_behind = !self.inline.is_empty();
        }
        self.data_version = Some(version);
        if self.inline_behind {
            self.catch_up_inline()?;
            self.inline_behind = false;
        }
        Ok(())
    }

    fn next_tx(&mut self) -> Result<i64, StoreError> {
        match self.next_tx {
            Some(tx) => Ok(tx),
            None => Ok(sql::end_of_log(&self.conn)? + 1),
        }
    }

    /// Appends one command's events (all or none), updating the inline read models with them.
    pub(super) fn append(
        &mut self,
        appends: &[AggregateAppend],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let tx = self.next_tx()?;
        let mut stored = Vec::with_capacity(appends.iter().map(|append| append.events.len()).sum());
        for append in appends {
            let actual = sql::last_sequence(&self.conn, &append.aggregate)?;
            if actual != append.expected_sequence {
                return Err(StoreError::Conflict {
                    aggregate: append.aggregate.clone(),
                    expected: append.expected_sequence,
                    actual,
                });
            }
            for (offset, event) in append.events.iter().enumerate() {
                let event = StoredEvent {
                    aggregate: append.aggregate.clone(),
                    sequence: append.expected_sequence + 1 + offset as i64,
                    position: Position {
                        tx,
                        in_tx_order: stored.len() as i32,
                    },
                    event_type: event.event_type.clone(),
                    revision: event.revision,
                    payload: event.payload.clone(),
                    creator: event.creator.clone(),
                    // Microseconds, as stored: what append returns equals what is read.
                    created_at: event.created_at.trunc_subsecs(6),
                };
                sql::insert_event(&self.conn, &event)?;
                stored.push(event);
            }
        }
        for append in appends {
            let instance_id = &append.aggregate.instance_id;
            if !self.known_instances.contains(instance_id)
                && !self.pending.instances.contains(instance_id)
            {
                sql::record_instance(&self.conn, instance_id)?;
                self.pending.instances.push(instance_id.clone());
            }
        }
        self.apply_inline(&stored)?;
        self.next_tx = Some(tx + 1);
        self.pending.appended = true;
        Ok(stored)
    }

    fn apply_inline(&mut self, stored: &[StoredEvent]) -> Result<(), StoreError> {
        for projection in &self.inline {
            let read = |event: &StoredEvent| {
                reads(
                    projection.as_ref(),
                    &event.aggregate.aggregate_type,
                    &event.event_type,
                )
            };
            if !stored.iter().any(read) {
                continue;
            }
            // Consecutive events of one instance that the projection reads, as one batch.
            let mut start = 0;
            while start < stored.len() {
                let instance_id = &stored[start].aggregate.instance_id;
                let end = stored[start..]
                    .iter()
                    .position(|event| &event.aggregate.instance_id != instance_id)
                    .map_or(stored.len(), |offset| start + offset);
                let group = &stored[start..end];
                if group.iter().all(read) {
                    sql::apply_events(&mut self.conn, projection.as_ref(), group)?;
                } else {
                    let wanted: Vec<StoredEvent> =
                        group.iter().filter(|event| read(event)).cloned().collect();
                    sql::apply_events(&mut self.conn, projection.as_ref(), &wanted)?;
                }
                start = end;
            }
            if !self.pending.applied.contains(&projection.name()) {
                self.pending.applied.push(projection.name());
            }
        }
        Ok(())
    }

    /// Takes over `projections`: catches them up, then every append updates them.
    pub(super) fn adopt_inline(
        &mut self,
        projections: Vec<Arc<dyn Projection>>,
        on_applied: InlineApplied,
    ) -> Result<Vec<&'static str>, StoreError> {
        let names = projections
            .iter()
            .map(|projection| projection.name())
            .collect();
        self.inline = projections;
        self.on_inline_applied = Some(on_applied);
        if let Err(error) = self.catch_up_inline() {
            self.inline.clear();
            return Err(error);
        }
        Ok(names)
    }

    fn catch_up_inline(&mut self) -> Result<(), StoreError> {
        for instance_id in sql::instances(&self.conn)? {
            for projection in &self.inline {
                while let BatchOutcome::Applied { .. } = sql::project_batch(
                    &mut self.conn,
                    projection.as_ref(),
                    &instance_id,
                    None,
                    CATCH_UP_BATCH,
                )? {
                    if !self.pending.applied.contains(&projection.name()) {
                        self.pending.applied.push(projection.name());
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the next batch of each projection in `pending` (index, scanned up to).
    pub(super) fn project(
        &mut self,
        projections: &[Arc<dyn Projection>],
        pending: &[(usize, Position)],
        instance_id: &str,
        limit: u32,
    ) -> Result<Vec<(usize, BatchOutcome)>, StoreError> {
        pending
            .iter()
            .map(|&(index, scanned)| {
                let outcome = sql::project_batch(
                    &mut self.conn,
                    projections[index].as_ref(),
                    instance_id,
                    Some(scanned),
                    limit,
                )?;
                Ok((index, outcome))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AggregateRef, NewEvent};

    fn append(id: usize, payload: &str) -> AggregateAppend {
        AggregateAppend {
            aggregate: AggregateRef::new("i1", "thing", format!("a-{id}")),
            expected_sequence: 0,
            events: vec![NewEvent {
                event_type: "thing.created".into(),
                revision: 1,
                payload: serde_json::json!({ "filler": payload }).to_string(),
                creator: "test".into(),
                created_at: chrono::Utc::now(),
            }],
        }
    }

    /// A disk that fills up mid-burst: every command either is on disk and was acknowledged,
    /// or failed and left nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_fails_commands_and_acknowledges_nothing_unsaved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../migrations/sqlite/0001_events.sql"))
            .unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA max_page_count = 60;")
            .unwrap();
        let writer = Arc::new(Writer::start(conn, AppendSignal::new()).unwrap());
        let filler = "x".repeat(3_000);
        let tasks: Vec<_> = (0..300)
            .map(|id| {
                let (writer, append) = (writer.clone(), append(id, &filler));
                tokio::spawn(async move {
                    writer
                        .call(move |state| state.append(std::slice::from_ref(&append)))
                        .await
                })
            })
            .collect();
        let mut acknowledged = Vec::new();
        let mut failed = 0;
        for (id, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(_) => acknowledged.push(id),
                Err(StoreError::Sqlite(_) | StoreError::CommitFailed(_)) => failed += 1,
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert!(failed > 0, "the disk never filled up");
        drop(writer);
        let conn = Connection::open(&path).unwrap();
        let mut stored: Vec<usize> = conn
            .prepare("SELECT aggregate_id FROM events")
            .unwrap()
            .query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .map(|id| id.unwrap()["a-".len()..].parse().unwrap())
            .collect();
        stored.sort_unstable();
        assert_eq!(
            stored, acknowledged,
            "exactly the acknowledged commands are on disk"
        );
    }
}
