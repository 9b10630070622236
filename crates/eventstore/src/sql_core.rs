//! The PostgreSQL back end's SQL and its `EventStore` implementation (the embedded back end
//! has its own, on rusqlite, in `sqlite/`). The parent module supplies `Db`, `Store` (with
//! `writer()`, `reader()` and `appended()`), `BACKEND` and `MIGRATOR`.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::SubsecRound;
use sqlx::{AssertSqlSafe, Column, Row, SqlSafeStr, SqlStr, TypeInfo, ValueRef};
use tokio::sync::watch;

use super::{BACKEND, Db, MIGRATOR, Store};
use crate::error::StoreError;
use crate::event::{AggregateAppend, AggregateRef, EventQuery, NewEvent, Position, StoredEvent};
use crate::event::{json_list, validate};
use crate::projection::{BatchOutcome, Projection, StartFrom};
use crate::projection::{batch_query, first_read};
use crate::read_model::{ReadModelTx, SqlRow, SqlValue};
use crate::store::EventStore;

type Conn = <Db as sqlx::Database>::Connection;
type DbRow = <Db as sqlx::Database>::Row;

const EVENT_COLUMNS: &str = "instance_id, aggregate_type, aggregate_id, sequence, position, in_tx_order, \
     event_type, revision, CAST(payload AS TEXT) AS payload, creator, created_at";

/// Statements built once from the dialect.
struct Statements {
    events_all: SqlStr,
    events_of_instance: SqlStr,
    insert_event: SqlStr,
    events_of_aggregate: SqlStr,
    events_of_aggregates: SqlStr,
    end_of_log: SqlStr,
    recent_kinds: SqlStr,
    is_visible: SqlStr,
    save_current_state: SqlStr,
}

/// How many recent events one look at their kinds covers (see `project_many`); a projection
/// further behind than that looks on its own.
const RECENT_KINDS: usize = 64;

/// The number of the current appending transaction: its id.
const NEXT_TX: &str = "CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)";

/// No event below this transaction number can still appear: the oldest running transaction.
const HORIZON: &str =
    "(SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT))";

/// Run inside an appending transaction to wake other processes once it commits.
const NOTIFY: &str = "SELECT pg_notify('portcullis_events', '')";

/// Whether this transaction got a projection's lock for an instance ($1, $2). Keyed by schema
/// too, so deployments sharing a database in separate schemas never wait on each other.
const TRY_LOCK_PROJECTION: &str =
    "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '/' || $1), hashtext($2))";

/// Serializes projection installs between processes.
const LOCK_INSTALLS: &str =
    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/projection_installs'))";

/// A subquery yielding the strings of the JSON array bound at parameter `param`.
fn json_text_list(param: usize) -> String {
    format!("SELECT jsonb_array_elements_text(CAST(${param} AS JSONB))")
}

static STATEMENTS: LazyLock<Statements> = LazyLock::new(statements);

fn statements() -> Statements {
    // A row-value comparison, so the index seeks straight past the events already read: with
    // `position > $2 OR in_tx_order > $3` it scanned a large transaction from its start on
    // every batch (quadratic in the transaction's size).
    let filters = format!(
        "(position, in_tx_order) > ($2, $3) AND position < {horizon} \
         AND ($4 = '[]' OR aggregate_type IN ({types})) \
         AND ($5 = '[]' OR event_type IN ({event_types})) \
         ORDER BY position, in_tx_order LIMIT $6",
        horizon = HORIZON,
        types = json_text_list(4),
        event_types = json_text_list(5),
    );
    let sql = |s: String| AssertSqlSafe(s).into_sql_str();
    Statements {
        // `$1 = $1` keeps the parameter numbering of both statements the same.
        events_all: sql(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE $1 = $1 AND {filters}"
        )),
        events_of_instance: sql(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE instance_id = $1 AND {filters}"
        )),
        // One round trip per event: the transaction's position is computed by the first insert
        // ($5 NULL) and bound for the rest, and the guard inserts nothing unless the aggregate's
        // last sequence is the one before this event's (optimistic concurrency).
        insert_event: sql(format!(
            "INSERT INTO events (instance_id, aggregate_type, aggregate_id, sequence, position, in_tx_order, \
             event_type, revision, payload, creator, created_at) \
             SELECT $1, $2, $3, $4, COALESCE($5, {NEXT_TX}), $6, $7, $8, CAST($9 AS JSON), $10, $11 \
             WHERE (SELECT COALESCE(MAX(sequence), 0) FROM events \
                    WHERE instance_id = $1 AND aggregate_type = $2 AND aggregate_id = $3) = $4 - 1 \
             RETURNING position"
        )),
        events_of_aggregate: sql(format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE instance_id = $1 AND aggregate_type = $2 AND aggregate_id = $3 ORDER BY sequence"
        )),
        events_of_aggregates: sql(format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE instance_id = $1 AND aggregate_type = $2 AND aggregate_id IN ({ids}) \
             ORDER BY aggregate_id, sequence",
            ids = json_text_list(3),
        )),
        save_current_state: (
            "INSERT INTO current_states (projection, instance_id, position, in_tx_order, updated_at) \
             VALUES ($1, $2, $3, $4, now()) ON CONFLICT (projection, instance_id) DO UPDATE \
             SET position = excluded.position, in_tx_order = excluded.in_tx_order, updated_at = excluded.updated_at")
            .into_sql_str(),
        end_of_log: sql(format!(
            "SELECT COALESCE(MAX(position), 0) FROM events WHERE position < {HORIZON}"
        )),
        // $4 is the end of the log as read before: everything up to it is visible.
        recent_kinds: sql(format!(
            "SELECT position, in_tx_order, aggregate_type, event_type FROM events \
             WHERE instance_id = $1 AND (position, in_tx_order) > ($2, $3) AND position <= $4 \
             ORDER BY position, in_tx_order LIMIT {RECENT_KINDS}"
        )),
        is_visible: sql(format!("SELECT CAST($1 < {HORIZON} AS BOOLEAN)")),
    }
}

fn decode_event(row: &DbRow) -> Result<StoredEvent, StoreError> {
    let aggregate = AggregateRef {
        instance_id: row.try_get("instance_id")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
    };
    let sequence: i64 = row.try_get("sequence")?;
    let position = Position {
        tx: row.try_get("position")?,
        in_tx_order: row.try_get("in_tx_order")?,
    };
    let created_at = row
        .try_get("created_at")
        .map_err(|error| StoreError::CorruptEvent {
            aggregate: aggregate.clone(),
            sequence,
            position,
            reason: format!("created_at: {error}"),
        })?;
    Ok(StoredEvent {
        sequence,
        position,
        event_type: row.try_get("event_type")?,
        revision: row.try_get("revision")?,
        payload: row.try_get("payload")?,
        creator: row.try_get("creator")?,
        created_at,
        aggregate,
    })
}

async fn last_sequence(conn: &mut Conn, aggregate: &AggregateRef) -> Result<i64, StoreError> {
    let last: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(sequence), 0) FROM events \
         WHERE instance_id = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(&aggregate.instance_id)
    .bind(&aggregate.aggregate_type)
    .bind(&aggregate.aggregate_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(last)
}

/// Inserts one event if the aggregate's last sequence is the one before it; `Ok(None)` when
/// it is not (a conflict). `tx` is the transaction's position once known (`None` for the first
/// event, whose insert computes it).
async fn insert_event(
    conn: &mut Conn,
    aggregate: &AggregateRef,
    event: &NewEvent,
    sequence: i64,
    tx: Option<i64>,
    in_tx_order: i32,
) -> Result<Option<StoredEvent>, StoreError> {
    // Both back ends keep microseconds; what append returns must equal what is read.
    let created_at = event.created_at.trunc_subsecs(6);
    let inserted: Option<i64> = sqlx::query_scalar(STATEMENTS.insert_event.clone())
        .bind(&aggregate.instance_id)
        .bind(&aggregate.aggregate_type)
        .bind(&aggregate.aggregate_id)
        .bind(sequence)
        .bind(tx)
        .bind(in_tx_order)
        .bind(&event.event_type)
        .bind(event.revision)
        .bind(&event.payload)
        .bind(&event.creator)
        .bind(created_at)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(inserted.map(|position_tx| StoredEvent {
        aggregate: aggregate.clone(),
        sequence,
        position: Position {
            tx: position_tx,
            in_tx_order,
        },
        event_type: event.event_type.clone(),
        revision: event.revision,
        payload: event.payload.clone(),
        creator: event.creator.clone(),
        created_at,
    }))
}

async fn conflict(conn: &mut Conn, append: &AggregateAppend) -> Result<StoreError, StoreError> {
    Ok(StoreError::Conflict {
        aggregate: append.aggregate.clone(),
        expected: append.expected_sequence,
        actual: last_sequence(conn, &append.aggregate).await?,
    })
}

async fn append_in_tx(
    conn: &mut Conn,
    appends: &[AggregateAppend],
    new_instances: &[&str],
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut tx: Option<i64> = None;
    let mut stored = Vec::with_capacity(appends.iter().map(|append| append.events.len()).sum());
    let mut in_tx_order = 0i32;
    for append in appends {
        for (offset, event) in append.events.iter().enumerate() {
            let sequence = append.expected_sequence + 1 + offset as i64;
            let Some(event) =
                insert_event(conn, &append.aggregate, event, sequence, tx, in_tx_order).await?
            else {
                return Err(conflict(conn, append).await?);
            };
            tx = Some(event.position.tx);
            stored.push(event);
            in_tx_order += 1;
        }
    }
    for instance_id in new_instances {
        sqlx::query("INSERT INTO event_instances (instance_id) VALUES ($1) ON CONFLICT (instance_id) DO NOTHING")
            .bind(instance_id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(NOTIFY).execute(&mut *conn).await?;
    Ok(stored)
}

/// The common case — one event, to an instance already recorded — as a single autocommit
/// statement (and the NOTIFY): the guarded INSERT is atomic by itself, which saves the BEGIN
/// and COMMIT round trips. `Ok(None)` asks the caller to take the transactional path (the
/// shape does not fit).
async fn append_single(
    store: &Store,
    appends: &[AggregateAppend],
    new_instances: &[&str],
) -> Result<Option<Vec<StoredEvent>>, StoreError> {
    let ([append], []) = (appends, new_instances) else {
        return Ok(None);
    };
    let [event] = append.events.as_slice() else {
        return Ok(None);
    };
    let mut conn = store.writer().acquire().await?;
    let sequence = append.expected_sequence + 1;
    match insert_event(&mut conn, &append.aggregate, event, sequence, None, 0).await? {
        Some(stored) => {
            sqlx::query(NOTIFY).execute(&mut *conn).await?;
            Ok(Some(vec![stored]))
        }
        None => Err(conflict(&mut conn, append).await?),
    }
}

/// Turns a unique-key violation (a concurrent writer inserted the same sequence first) into a
/// conflict naming the aggregate.
async fn explain_conflict(
    store: &Store,
    appends: &[AggregateAppend],
    error: StoreError,
) -> StoreError {
    let StoreError::Database(sqlx::Error::Database(db_error)) = &error else {
        return error;
    };
    if !db_error.is_unique_violation() {
        return error;
    }
    let Ok(mut conn) = store.reader().acquire().await else {
        return error;
    };
    for append in appends {
        if let Ok(actual) = last_sequence(&mut conn, &append.aggregate).await
            && actual != append.expected_sequence
        {
            return StoreError::Conflict {
                aggregate: append.aggregate.clone(),
                expected: append.expected_sequence,
                actual,
            };
        }
    }
    error
}

async fn read_events(conn: &mut Conn, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
    let statement = match query.instance_id {
        Some(_) => STATEMENTS.events_of_instance.clone(),
        None => STATEMENTS.events_all.clone(),
    };
    let rows = sqlx::query(statement)
        .bind(query.instance_id.clone().unwrap_or_default())
        .bind(query.after.tx)
        .bind(query.after.in_tx_order)
        .bind(json_list(&query.aggregate_types))
        .bind(json_list(&query.event_types))
        .bind(i64::from(query.limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(decode_event).collect()
}

async fn start_position(
    conn: &mut Conn,
    projection: &str,
    instance_id: &str,
) -> Result<Position, StoreError> {
    let current: Option<(i64, i32)> =
        sqlx::query_as("SELECT position, in_tx_order FROM current_states WHERE projection = $1 AND instance_id = $2")
            .bind(projection)
            .bind(instance_id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((tx, in_tx_order)) = current {
        return Ok(Position { tx, in_tx_order });
    }
    let installed_at: Option<i64> =
        sqlx::query_scalar("SELECT installed_at FROM projection_installs WHERE projection = $1")
            .bind(projection)
            .fetch_optional(&mut *conn)
            .await?;
    match installed_at {
        Some(tx) => Ok(Position::end_of_tx(tx)),
        None => Err(StoreError::NotInstalled(projection.to_owned())),
    }
}

/// Applies the next batch under the projection's lock. `scanned` is a position up to which
/// this process already knows there is nothing for the projection (its scan cursor).
async fn project_in_tx(
    conn: &mut Conn,
    projection: &dyn Projection,
    instance_id: &str,
    scanned: Option<Position>,
    limit: u32,
) -> Result<BatchOutcome, StoreError> {
    let locked: bool = sqlx::query_scalar(TRY_LOCK_PROJECTION)
        .bind(projection.name())
        .bind(instance_id)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(BatchOutcome::Busy);
    }
    let stored = start_position(conn, projection.name(), instance_id).await?;
    let after = scanned.map_or(stored, |scanned| scanned.max(stored));
    let events = read_events(conn, &batch_query(projection, instance_id, after, limit)).await?;
    let Some(last) = events.last().map(|event| event.position) else {
        return Ok(BatchOutcome::Idle);
    };
    projection
        .apply_batch(&mut ConnTx(&mut *conn), &events)
        .await
        .map_err(|failure| failure.into_store_error(projection.name(), &events))?;
    sqlx::query(STATEMENTS.save_current_state.clone())
        .bind(projection.name())
        .bind(instance_id)
        .bind(last.tx)
        .bind(last.in_tx_order)
        .execute(&mut *conn)
        .await?;
    Ok(BatchOutcome::Applied {
        count: events.len(),
        position: last,
    })
}

async fn install_in_tx(conn: &mut Conn, projection: &dyn Projection) -> Result<(), StoreError> {
    sqlx::query(LOCK_INSTALLS).execute(&mut *conn).await?;
    for ddl in projection.schema() {
        sqlx::query(*ddl).execute(&mut *conn).await?;
    }
    let installed_at = match projection.start_from() {
        StartFrom::Beginning => 0i64,
        StartFrom::End => {
            sqlx::query_scalar(STATEMENTS.end_of_log.clone())
                .fetch_one(&mut *conn)
                .await?
        }
    };
    sqlx::query(
        "INSERT INTO projection_installs (projection, installed_at) VALUES ($1, $2) \
         ON CONFLICT (projection) DO NOTHING",
    )
    .bind(projection.name())
    .bind(installed_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A read-model statement runner over one open transaction.
struct ConnTx<'a>(&'a mut Conn);

fn bind_values<'q>(
    mut query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
    params: &[SqlValue],
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
    for param in params {
        query = match param {
            SqlValue::Int(value) => query.bind(*value),
            SqlValue::Text(value) => query.bind(value.clone()),
            SqlValue::Bool(value) => query.bind(*value),
        };
    }
    query
}

fn decode_row(row: &DbRow) -> Result<SqlRow, StoreError> {
    let mut values = Vec::with_capacity(row.columns().len());
    for (index, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(index)?;
        let type_name = if raw.is_null() {
            column.type_info().name().to_ascii_uppercase()
        } else {
            raw.type_info().name().to_ascii_uppercase()
        };
        let value = match type_name.as_str() {
            "INTEGER" | "INT8" | "BIGINT" => SqlValue::Int(row.try_get(index)?),
            "INT4" | "INT" => SqlValue::Int(row.try_get::<Option<i32>, _>(index)?.map(i64::from)),
            "BOOL" | "BOOLEAN" => SqlValue::Bool(row.try_get(index)?),
            "NULL" => SqlValue::Text(None),
            _ => SqlValue::Text(row.try_get(index)?),
        };
        values.push(value);
    }
    Ok(SqlRow(values))
}

#[async_trait]
impl ReadModelTx for ConnTx<'_> {
    async fn execute(&mut self, sql: &'static str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let done = bind_values(sqlx::query(sql), params)
            .execute(&mut *self.0)
            .await?;
        Ok(done.rows_affected())
    }

    async fn fetch(
        &mut self,
        sql: &'static str,
        params: &[SqlValue],
    ) -> Result<Vec<SqlRow>, StoreError> {
        let rows = bind_values(sqlx::query(sql), params)
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter().map(decode_row).collect()
    }
}

#[async_trait]
impl EventStore for Store {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn shared(&self) -> bool {
        true
    }

    async fn append(&self, appends: &[AggregateAppend]) -> Result<Vec<StoredEvent>, StoreError> {
        validate(appends)?;
        // Instances already recorded in `event_instances` need no insert (rows are never
        // deleted); the set only grows after a commit.
        let new_instances: Vec<&str> = {
            let known = self
                .known_instances()
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut new: Vec<&str> = appends
                .iter()
                .map(|append| append.aggregate.instance_id.as_str())
                .filter(|instance_id| !known.contains(*instance_id))
                .collect();
            new.sort_unstable();
            new.dedup();
            new
        };
        let result = async {
            if let Some(stored) = append_single(self, appends, &new_instances).await? {
                return Ok(stored);
            }
            let mut tx = self.writer().begin().await?;
            let stored = append_in_tx(&mut tx, appends, &new_instances).await?;
            tx.commit().await?;
            Ok(stored)
        }
        .await;
        match result {
            Ok(stored) => {
                if !new_instances.is_empty() {
                    let mut known = self
                        .known_instances()
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    known.extend(
                        new_instances
                            .iter()
                            .map(|instance_id| (*instance_id).to_owned()),
                    );
                }
                self.appended().notify();
                Ok(stored)
            }
            Err(error) => Err(explain_conflict(self, appends, error).await),
        }
    }

    async fn aggregate_events(
        &self,
        aggregate: &AggregateRef,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(STATEMENTS.events_of_aggregate.clone())
            .bind(&aggregate.instance_id)
            .bind(&aggregate.aggregate_type)
            .bind(&aggregate.aggregate_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(decode_event).collect()
    }

    async fn aggregates_events(
        &self,
        instance_id: &str,
        aggregate_type: &str,
        aggregate_ids: &[String],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if aggregate_ids.is_empty() {
            return Ok(vec![]);
        }
        let rows = sqlx::query(STATEMENTS.events_of_aggregates.clone())
            .bind(instance_id)
            .bind(aggregate_type)
            .bind(json_list(aggregate_ids))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(decode_event).collect()
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        read_events(&mut conn, query).await
    }

    async fn is_visible(&self, position: Position) -> Result<bool, StoreError> {
        let visible: bool = sqlx::query_scalar(STATEMENTS.is_visible.clone())
            .bind(position.tx)
            .fetch_one(self.reader())
            .await?;
        Ok(visible)
    }

    async fn instances(&self) -> Result<Vec<String>, StoreError> {
        let instances =
            sqlx::query_scalar("SELECT instance_id FROM event_instances ORDER BY instance_id")
                .fetch_all(self.reader())
                .await?;
        Ok(instances)
    }

    async fn install_projection(
        &self,
        projection: std::sync::Arc<dyn Projection>,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        install_in_tx(&mut tx, projection.as_ref()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn project(
        &self,
        projection: std::sync::Arc<dyn Projection>,
        instance_id: &str,
        limit: u32,
    ) -> Result<BatchOutcome, StoreError> {
        let mut outcomes = self.project_many(&[projection], instance_id, limit).await?;
        Ok(outcomes.pop().unwrap_or(BatchOutcome::Idle))
    }

    async fn project_many(
        &self,
        projections: &[std::sync::Arc<dyn Projection>],
        instance_id: &str,
        limit: u32,
    ) -> Result<Vec<BatchOutcome>, StoreError> {
        let mut outcomes = vec![BatchOutcome::Idle; projections.len()];
        let key = |projection: &dyn Projection| (projection.name(), instance_id.to_owned());
        let advance = |projection: &dyn Projection, to: Position| {
            let mut cursors = self.scan_cursors().lock().expect("cursor lock");
            let cursor = cursors.entry(key(projection)).or_insert(to);
            *cursor = (*cursor).max(to);
        };
        // Look without the write lock first: most passes find nothing to do, and on SQLite the
        // write lock is the one every append waits for.
        let mut reader = self.reader().acquire().await?;
        let end: i64 = sqlx::query_scalar(STATEMENTS.end_of_log.clone())
            .fetch_one(&mut *reader)
            .await?;
        let mut behind = Vec::new();
        for (index, projection) in projections.iter().enumerate() {
            let cursor = self
                .scan_cursors()
                .lock()
                .expect("cursor lock")
                .get(&key(projection.as_ref()))
                .copied();
            let after = match cursor {
                Some(cursor) => cursor,
                None => start_position(&mut reader, projection.name(), instance_id).await?,
            };
            if after < Position::end_of_tx(end) {
                behind.push((index, after));
            }
        }
        // One look at the kinds of the events after the earliest of them usually settles
        // every projection at once, where a look each would cost a round trip each (on every
        // append, most projections find only events of types they do not read).
        let recent: Option<Vec<(Position, String, String)>> = match behind.iter().map(|b| b.1).min()
        {
            None => Some(Vec::new()),
            Some(earliest) => {
                let rows: Vec<(i64, i32, String, String)> =
                    sqlx::query_as(STATEMENTS.recent_kinds.clone())
                        .bind(instance_id)
                        .bind(earliest.tx)
                        .bind(earliest.in_tx_order)
                        .bind(end)
                        .fetch_all(&mut *reader)
                        .await?;
                (rows.len() < RECENT_KINDS).then(|| {
                    rows.into_iter()
                        .map(|(tx, in_tx_order, aggregate_type, event_type)| {
                            (Position { tx, in_tx_order }, aggregate_type, event_type)
                        })
                        .collect()
                })
            }
        };
        // (index, where its batch starts, the first pending event's position)
        let mut pending = Vec::new();
        for (index, after) in behind {
            let projection = projections[index].as_ref();
            let first = match &recent {
                Some(recent) => first_read(projection, recent, after),
                None => read_events(&mut reader, &batch_query(projection, instance_id, after, 1))
                    .await?
                    .first()
                    .map(|event| event.position),
            };
            match first {
                Some(position) => pending.push((index, after, position)),
                // Every event up to `end` was below the horizon before the read began, so the
                // read saw all of them: none of them is for this projection.
                None => advance(projection, Position::end_of_tx(end).max(after)),
            }
        }
        drop(reader);
        if pending.is_empty() {
            return Ok(outcomes);
        }
        let mut tx = self.writer().begin().await?;
        for &(index, after, _) in &pending {
            match project_in_tx(
                &mut tx,
                projections[index].as_ref(),
                instance_id,
                Some(after),
                limit,
            )
            .await
            {
                Ok(outcome) => outcomes[index] = outcome,
                Err(error) => {
                    // Roll back now rather than when the connection is next used, so the
                    // projections' locks are free for the caller's next attempt.
                    let _ = tx.rollback().await;
                    return Err(error);
                }
            }
        }
        if outcomes
            .iter()
            .any(|outcome| matches!(outcome, BatchOutcome::Applied { .. }))
        {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        for &(index, _, first) in &pending {
            if let Some(to) = outcomes[index].scanned_to(first) {
                advance(projections[index].as_ref(), to);
            }
        }
        Ok(outcomes)
    }

    async fn projection_position(
        &self,
        projection: &str,
        instance_id: &str,
    ) -> Result<Option<Position>, StoreError> {
        let current: Option<(i64, i32)> =
            sqlx::query_as("SELECT position, in_tx_order FROM current_states WHERE projection = $1 AND instance_id = $2")
                .bind(projection)
                .bind(instance_id)
                .fetch_optional(self.reader())
                .await?;
        Ok(current.map(|(tx, in_tx_order)| Position { tx, in_tx_order }))
    }

    async fn query(
        &self,
        sql: &'static str,
        params: &[SqlValue],
    ) -> Result<Vec<SqlRow>, StoreError> {
        let rows = bind_values(sqlx::query(sql), params)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn execute(&self, sql: &'static str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let done = bind_values(sqlx::query(sql), params)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(self.reader())
                .await?;
        StoreError::check_schema(&MIGRATOR, applied)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended().subscribe()
    }
}
