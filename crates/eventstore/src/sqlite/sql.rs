//! The embedded back end's SQL on `rusqlite`: event rows, reads of the log, projection
//! bookkeeping, and read-model statements with their `$N` parameters. Everything here is
//! synchronous and runs on whichever thread holds the connection (the writer thread, or the
//! caller's own thread for reads), so no statement is handed to another thread and back.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::ValueRef;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{CachedStatement, Connection, OptionalExtension, Statement};

use crate::error::StoreError;
use crate::event::{AggregateRef, EventQuery, Position, StoredEvent, json_list};
use crate::projection::{BatchOutcome, EventKind, Projection, StartFrom, batch_query};
use crate::read_model::{ReadModelTx, SqlRow, SqlValue};

/// Statements this process ran on SQLite and transactions it committed there, for
/// benchmarks that report statements and commits (so fsyncs) per command.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// What this process's SQLite stores have done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Statements run (reads and writes, transaction control included).
    pub statements: u64,
    /// Transactions committed by writers (each one fsync under `Durability::Full`).
    pub commits: u64,
}

/// The counters so far.
pub fn activity() -> Activity {
    Activity {
        statements: STATEMENTS.load(Ordering::Relaxed),
        commits: COMMITS.load(Ordering::Relaxed),
    }
}

/// Counts one transaction committed.
pub(super) fn count_commit() {
    COMMITS.fetch_add(1, Ordering::Relaxed);
}

/// A cached prepared statement, counted.
pub(super) fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
) -> rusqlite::Result<CachedStatement<'c>> {
    STATEMENTS.fetch_add(1, Ordering::Relaxed);
    conn.prepare_cached(sql)
}

/// Runs statements without results (transaction control), counted.
pub(super) fn run_batch(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    STATEMENTS.fetch_add(sql.matches(';').count() as u64 + 1, Ordering::Relaxed);
    conn.execute_batch(sql)
}

const EVENT_COLUMNS: &str = "instance_id, aggregate_type, aggregate_id, sequence, position, \
     in_tx_order, event_type, revision, CAST(payload AS TEXT), creator, created_at";

/// The filters of a log read after `(position, in_tx_order) > (?2, ?3)`. A row-value
/// comparison, so the index seeks straight past the events already read.
macro_rules! log_filters {
    () => {
        "(position, in_tx_order) > (?2, ?3) \
         AND (?4 = '[]' OR aggregate_type IN (SELECT value FROM json_each(?4))) \
         AND (?5 = '[]' OR event_type IN (SELECT value FROM json_each(?5))) \
         ORDER BY position, in_tx_order LIMIT ?6"
    };
}

const EVENTS_OF_INSTANCE: &str = concat!(
    "SELECT instance_id, aggregate_type, aggregate_id, sequence, position, in_tx_order, \
     event_type, revision, CAST(payload AS TEXT), creator, created_at \
     FROM events WHERE instance_id = ?1 AND ",
    log_filters!()
);
// `?1 = ?1` keeps the parameter numbering of both reads the same.
const EVENTS_ALL: &str = concat!(
    "SELECT instance_id, aggregate_type, aggregate_id, sequence, position, in_tx_order, \
     event_type, revision, CAST(payload AS TEXT), creator, created_at \
     FROM events WHERE ?1 = ?1 AND ",
    log_filters!()
);

/// How many recent events one look at their kinds covers (see `project_many`); a projection
/// further behind than that looks on its own.
pub(super) const RECENT_KINDS: usize = 64;

/// The format sqlx wrote `created_at` in, kept so that files written before and after the
/// move to rusqlite read the same (RFC 3339, microseconds, `+00:00`).
pub(super) fn format_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .map(|at| at.and_utc())
        })
        .map_err(|error| format!("created_at {text:?}: {error}"))
}

fn decode_event(row: &rusqlite::Row<'_>) -> Result<StoredEvent, StoreError> {
    let aggregate = AggregateRef {
        instance_id: row.get(0)?,
        aggregate_type: row.get(1)?,
        aggregate_id: row.get(2)?,
    };
    let sequence: i64 = row.get(3)?;
    let position = Position {
        tx: row.get(4)?,
        in_tx_order: row.get(5)?,
    };
    let created_at: String = row.get(10)?;
    let created_at = parse_time(&created_at).map_err(|reason| StoreError::CorruptEvent {
        aggregate: aggregate.clone(),
        sequence,
        position,
        reason,
    })?;
    Ok(StoredEvent {
        sequence,
        position,
        event_type: row.get(6)?,
        revision: row.get(7)?,
        payload: row.get(8)?,
        creator: row.get(9)?,
        created_at,
        aggregate,
    })
}

fn collect_events(statement: &mut Statement<'_>) -> Result<Vec<StoredEvent>, StoreError> {
    let mut rows = statement.raw_query();
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(decode_event(row)?);
    }
    Ok(events)
}

/// Events matching `query`, in position order.
pub(super) fn read_events(
    conn: &Connection,
    query: &EventQuery,
) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = match query.instance_id {
        Some(_) => EVENTS_OF_INSTANCE,
        None => EVENTS_ALL,
    };
    let mut statement = prepare(conn, sql)?;
    statement.raw_bind_parameter(1, query.instance_id.as_deref().unwrap_or_default())?;
    statement.raw_bind_parameter(2, query.after.tx)?;
    statement.raw_bind_parameter(3, query.after.in_tx_order)?;
    statement.raw_bind_parameter(4, json_list(&query.aggregate_types))?;
    statement.raw_bind_parameter(5, json_list(&query.event_types))?;
    statement.raw_bind_parameter(6, i64::from(query.limit))?;
    collect_events(&mut statement)
}

/// All events of one aggregate, by sequence.
pub(super) fn aggregate_events(
    conn: &Connection,
    aggregate: &AggregateRef,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut statement = prepare(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events \
         WHERE instance_id = ?1 AND aggregate_type = ?2 AND aggregate_id = ?3 ORDER BY sequence"
        ),
    )?;
    statement.raw_bind_parameter(1, &aggregate.instance_id)?;
    statement.raw_bind_parameter(2, &aggregate.aggregate_type)?;
    statement.raw_bind_parameter(3, &aggregate.aggregate_id)?;
    collect_events(&mut statement)
}

/// All events of several aggregates of one type, by aggregate id then sequence.
pub(super) fn aggregates_events(
    conn: &Connection,
    instance_id: &str,
    aggregate_type: &str,
    aggregate_ids: &[String],
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut statement = prepare(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events \
         WHERE instance_id = ?1 AND aggregate_type = ?2 \
         AND aggregate_id IN (SELECT value FROM json_each(?3)) ORDER BY aggregate_id, sequence"
        ),
    )?;
    statement.raw_bind_parameter(1, instance_id)?;
    statement.raw_bind_parameter(2, aggregate_type)?;
    statement.raw_bind_parameter(3, json_list(aggregate_ids))?;
    collect_events(&mut statement)
}

/// The aggregate's last sequence (0 when it has no events).
pub(super) fn last_sequence(
    conn: &Connection,
    aggregate: &AggregateRef,
) -> Result<i64, StoreError> {
    let mut statement = prepare(
        conn,
        "SELECT COALESCE(MAX(sequence), 0) FROM events \
         WHERE instance_id = ?1 AND aggregate_type = ?2 AND aggregate_id = ?3",
    )?;
    Ok(statement.query_row(
        (
            &aggregate.instance_id,
            &aggregate.aggregate_type,
            &aggregate.aggregate_id,
        ),
        |row| row.get(0),
    )?)
}

/// The largest position in the log (0 when empty).
pub(super) fn end_of_log(conn: &Connection) -> Result<i64, StoreError> {
    let mut statement = prepare(conn, "SELECT COALESCE(MAX(position), 0) FROM events")?;
    Ok(statement.query_row([], |row| row.get(0))?)
}

/// Inserts one event; the caller has checked the aggregate's sequence.
pub(super) fn insert_event(conn: &Connection, event: &StoredEvent) -> Result<(), StoreError> {
    let mut statement = prepare(
        conn,
        "INSERT INTO events (instance_id, aggregate_type, aggregate_id, sequence, position, \
         in_tx_order, event_type, revision, payload, creator, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    statement.execute((
        &event.aggregate.instance_id,
        &event.aggregate.aggregate_type,
        &event.aggregate.aggregate_id,
        event.sequence,
        event.position.tx,
        event.position.in_tx_order,
        &event.event_type,
        event.revision,
        &event.payload,
        &event.creator,
        format_time(&event.created_at),
    ))?;
    Ok(())
}

/// Records that `instance_id` has events.
pub(super) fn record_instance(conn: &Connection, instance_id: &str) -> Result<(), StoreError> {
    prepare(conn, "INSERT INTO event_instances (instance_id) VALUES (?1) ON CONFLICT (instance_id) DO NOTHING")?
        .execute([instance_id])?;
    Ok(())
}

/// Every instance that has events.
pub(super) fn instances(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement = prepare(
        conn,
        "SELECT instance_id FROM event_instances ORDER BY instance_id",
    )?;
    let instances = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(instances)
}

/// Where a projection stands for an instance, if it has started there.
pub(super) fn projection_position(
    conn: &Connection,
    projection: &str,
    instance_id: &str,
) -> Result<Option<Position>, StoreError> {
    let mut statement = prepare(
        conn,
        "SELECT position, in_tx_order FROM current_states WHERE projection = ?1 AND instance_id = ?2",
    )?;
    Ok(statement
        .query_row((projection, instance_id), |row| {
            Ok(Position {
                tx: row.get(0)?,
                in_tx_order: row.get(1)?,
            })
        })
        .optional()?)
}

/// Where a projection's next batch starts: its stored position, or where it was installed.
pub(super) fn start_position(
    conn: &Connection,
    projection: &str,
    instance_id: &str,
) -> Result<Position, StoreError> {
    if let Some(position) = projection_position(conn, projection, instance_id)? {
        return Ok(position);
    }
    let installed_at: Option<i64> = prepare(
        conn,
        "SELECT installed_at FROM projection_installs WHERE projection = ?1",
    )?
    .query_row([projection], |row| row.get(0))
    .optional()?;
    match installed_at {
        Some(tx) => Ok(Position::end_of_tx(tx)),
        None => Err(StoreError::NotInstalled(projection.to_owned())),
    }
}

/// Records how far a projection got for an instance.
pub(super) fn save_position(
    conn: &Connection,
    projection: &str,
    instance_id: &str,
    position: Position,
) -> Result<(), StoreError> {
    prepare(
        conn,
        "INSERT INTO current_states (projection, instance_id, position, in_tx_order, updated_at) \
         VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
         ON CONFLICT (projection, instance_id) DO UPDATE \
         SET position = excluded.position, in_tx_order = excluded.in_tx_order, \
         updated_at = excluded.updated_at",
    )?
    .execute((projection, instance_id, position.tx, position.in_tx_order))?;
    Ok(())
}

/// The position and kind (aggregate type, event type) of up to [`RECENT_KINDS`] events of an
/// instance after `after`, up to `end`.
pub(super) fn recent_kinds(
    conn: &Connection,
    instance_id: &str,
    after: Position,
    end: i64,
) -> Result<Vec<EventKind>, StoreError> {
    let mut statement = prepare(
        conn,
        &format!(
            "SELECT position, in_tx_order, aggregate_type, event_type FROM events \
         WHERE instance_id = ?1 AND (position, in_tx_order) > (?2, ?3) AND position <= ?4 \
         ORDER BY position, in_tx_order LIMIT {RECENT_KINDS}"
        ),
    )?;
    let kinds = statement
        .query_map((instance_id, after.tx, after.in_tx_order, end), |row| {
            Ok((
                Position {
                    tx: row.get(0)?,
                    in_tx_order: row.get(1)?,
                },
                row.get(2)?,
                row.get(3)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    Ok(kinds)
}

/// Creates a projection's tables and, the first time, records where it starts.
pub(super) fn install(conn: &Connection, projection: &dyn Projection) -> Result<(), StoreError> {
    for ddl in projection.schema() {
        conn.execute_batch(ddl)?;
    }
    let installed_at = match projection.start_from() {
        StartFrom::Beginning => 0,
        StartFrom::End => end_of_log(conn)?,
    };
    prepare(
        conn,
        "INSERT INTO projection_installs (projection, installed_at) VALUES (?1, ?2) \
         ON CONFLICT (projection) DO NOTHING",
    )?
    .execute((projection.name(), installed_at))?;
    Ok(())
}

/// Applies `events` (in order, all of one instance) to a projection and records its new
/// position, on the connection's open transaction.
pub(super) fn apply_events(
    conn: &mut Connection,
    projection: &dyn Projection,
    events: &[StoredEvent],
) -> Result<(), StoreError> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    // The projection's code is async (PostgreSQL awaits its statements); here every statement
    // completes before its future first returns, so polling it on this thread finishes it.
    futures_executor::block_on(projection.apply_batch(&mut ConnTx(conn), events))
        .map_err(|failure| failure.into_store_error(projection.name(), events))?;
    save_position(
        conn,
        projection.name(),
        &last.aggregate.instance_id,
        last.position,
    )
}

/// Applies a projection's next batch after `scanned` (or its stored position, if later).
pub(super) fn project_batch(
    conn: &mut Connection,
    projection: &dyn Projection,
    instance_id: &str,
    scanned: Option<Position>,
    limit: u32,
) -> Result<BatchOutcome, StoreError> {
    let stored = start_position(conn, projection.name(), instance_id)?;
    let after = scanned.map_or(stored, |scanned| scanned.max(stored));
    let events = read_events(conn, &batch_query(projection, instance_id, after, limit))?;
    let Some(last) = events.last().map(|event| event.position) else {
        return Ok(BatchOutcome::Idle);
    };
    apply_events(conn, projection, &events)?;
    Ok(BatchOutcome::Applied {
        count: events.len(),
        position: last,
    })
}

/// Binds read-model parameters by their `$N` names (SQLite numbers `$`-named parameters in
/// order of first appearance, not by N).
fn bind_values(statement: &mut Statement<'_>, params: &[SqlValue]) -> Result<(), StoreError> {
    for index in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix(['$', '?']))
            .and_then(|number| number.parse::<usize>().ok())
            .unwrap_or(index);
        let value = params.get(number - 1).ok_or_else(|| {
            StoreError::InvalidAppend(format!(
                "statement parameter ${number} has no value ({} given)",
                params.len()
            ))
        })?;
        match value {
            SqlValue::Int(value) => statement.raw_bind_parameter(index, value)?,
            SqlValue::Text(value) => statement.raw_bind_parameter(index, value)?,
            SqlValue::Bool(value) => statement.raw_bind_parameter(index, value)?,
        }
    }
    Ok(())
}

fn decode_value(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Text(None),
        ValueRef::Integer(value) => SqlValue::Int(Some(value)),
        // Read models hold no fractions; a REAL is an integer SQLite widened.
        ValueRef::Real(value) => SqlValue::Int(Some(value as i64)),
        ValueRef::Text(text) | ValueRef::Blob(text) => {
            SqlValue::Text(Some(String::from_utf8_lossy(text).into_owned()))
        }
    }
}

/// Runs a read-model statement; returns the rows it changed.
pub(super) fn execute(
    conn: &Connection,
    sql: &str,
    params: &[SqlValue],
) -> Result<u64, StoreError> {
    let mut statement = prepare(conn, sql)?;
    bind_values(&mut statement, params)?;
    Ok(statement.raw_execute()? as u64)
}

/// Runs a read-model query.
pub(super) fn query(
    conn: &Connection,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<SqlRow>, StoreError> {
    let mut statement = prepare(conn, sql)?;
    bind_values(&mut statement, params)?;
    let columns = statement.column_count();
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for index in 0..columns {
            values.push(decode_value(row.get_ref(index)?));
        }
        out.push(SqlRow(values));
    }
    Ok(out)
}

/// Read-model statements on a connection whose transaction the caller holds.
pub(super) struct ConnTx<'a>(pub &'a mut Connection);

#[async_trait]
impl ReadModelTx for ConnTx<'_> {
    async fn execute(&mut self, sql: &'static str, params: &[SqlValue]) -> Result<u64, StoreError> {
        execute(self.0, sql, params)
    }

    async fn fetch(
        &mut self,
        sql: &'static str,
        params: &[SqlValue],
    ) -> Result<Vec<SqlRow>, StoreError> {
        query(self.0, sql, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back_as_written() {
        let at = DateTime::parse_from_rfc3339("2026-11-29T18:06:06.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_time(&at), "2026-11-29T18:06:06.123456+00:00");
        assert_eq!(parse_time(&format_time(&at)), Ok(at));
    }

    #[test]
    fn parameters_bind_by_their_number() {
        let conn = Connection::open_in_memory().unwrap();
        let rows = query(
            &conn,
            "SELECT $2, $1, $2",
            &[SqlValue::from("one"), SqlValue::from(2)],
        )
        .unwrap();
        assert_eq!(
            rows,
            [SqlRow(vec![
                SqlValue::Int(Some(2)),
                SqlValue::from("one"),
                SqlValue::Int(Some(2)),
            ])]
        );
    }
}
