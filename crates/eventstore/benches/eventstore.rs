//! Throughput figures for the event store, printed as a Markdown table.
//!
//! ```text
//! TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p eventstore --bench eventstore
//! ```
//!
//! Measures:
//! 1. appends per second, one event per transaction, on SQLite with a single writer, for
//!    `Durability::Full` and `Durability::Normal`;
//! 2. appends per second, one event per transaction, on PostgreSQL with 8 concurrent writers;
//! 3. projection catch-up (events applied per second by `ProjectionRunner::run_pass`) over a
//!    log loaded in batches of 1,000 events per transaction: 1,000,000 events on SQLite and
//!    200,000 on PostgreSQL.
//!
//! `BENCH_SCALE` (default 1) scales every count, e.g. `BENCH_SCALE=0.1` for a quick run.
//! PostgreSQL figures need `TEST_POSTGRES_URL`; each run uses a throw-away schema
//! `pc_bench_<uuid>` that is dropped afterwards. SQLite files go in a temporary directory
//! (`TMPDIR` picks where, which matters for the fsync cost of `Durability::Full`).
//!
//! These are throughput figures over many thousands of operations, so a plain `main` times
//! them once rather than using a micro-benchmark harness.

use std::collections::HashMap;
use std::error::Error;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use eventstore::{
    AggregateAppend, AggregateRef, ApplyError, BoxError, Durability, EventStore, NewEvent,
    Position, PostgresEventStore, Projection, ProjectionRunner, ReadModelTx, RunnerOptions,
    SqlValue, SqliteEventStore, StoredEvent,
};
use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;

type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const POSTGRES_URL_VAR: &str = "TEST_POSTGRES_URL";

/// Full-scale counts; `BENCH_SCALE` multiplies them.
const ROUND_TRIPS: usize = 20_000;
const SQLITE_APPENDS: usize = 20_000;
const POSTGRES_APPENDS: usize = 20_000;
const POSTGRES_WRITERS: usize = 8;
const SQLITE_CATCH_UP_EVENTS: usize = 1_000_000;
const POSTGRES_CATCH_UP_EVENTS: usize = 200_000;
/// Appends made before timing starts (connections opened, statements prepared, caches warm).
const WARM_UP_APPENDS: usize = 200;

/// How the catch-up log is shaped: every load transaction appends `EVENTS_PER_AGGREGATE`
/// events to each of `AGGREGATES_PER_TX` new user aggregates of one instance, instances in
/// turn.
const INSTANCES: usize = 4;
const AGGREGATES_PER_TX: usize = 100;
const EVENTS_PER_AGGREGATE: usize = 10;
const EVENTS_PER_TX: usize = AGGREGATES_PER_TX * EVENTS_PER_AGGREGATE;
/// Events applied per projection transaction.
const CATCH_UP_BATCH: u32 = 1_000;

const SQLITE_APPEND_AIM: f64 = 5_000.0;
const POSTGRES_APPEND_AIM: f64 = 2_000.0;
const SQLITE_CATCH_UP_AIM: f64 = 50_000.0;

#[tokio::main]
async fn main() -> BenchResult<()> {
    let scale: f64 = match std::env::var("BENCH_SCALE") {
        Ok(text) => text
            .parse()
            .map_err(|_| format!("BENCH_SCALE must be a positive number, not {text:?}"))?,
        Err(_) => 1.0,
    };
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(format!("BENCH_SCALE must be a positive number, not {scale}").into());
    }
    let scaled = |count: usize, multiple: usize| {
        let count = ((count as f64 * scale).round() as usize).max(multiple);
        count.div_ceil(multiple) * multiple
    };
    let postgres_url = std::env::var(POSTGRES_URL_VAR).ok();
    // `BENCH_ONLY=sqlite-append,postgres-catch-up` runs only the named sections.
    let only = std::env::var("BENCH_ONLY").ok();
    let wanted = |section: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|name| name.trim() == section))
    };

    eprintln!(
        "eventstore benchmark: scale {scale}, {} CPUs, SQLite files under {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::temp_dir().display()
    );
    let mut rows: Vec<Row> = Vec::new();

    // 1. SQLite appends, one event per transaction, one writer.
    for durability in [Durability::Full, Durability::Normal]
        .into_iter()
        .filter(|_| wanted("sqlite-append"))
    {
        let count = scaled(SQLITE_APPENDS, 1);
        eprintln!("SQLite appends ({durability:?}): {count} appends, one writer…");
        let run = sqlite_appends(durability, count).await?;
        rows.push(Row::rate(
            format!(
                "SQLite appends, 1 event/tx, 1 writer, Durability::{durability:?} ({} appends)",
                fmt_int(count)
            ),
            &run,
            "appends/s",
            Some(SQLITE_APPEND_AIM),
        ));
    }

    // 2. PostgreSQL appends, one event per transaction, 8 writers.
    let mut postgres_notes = Vec::new();
    match &postgres_url {
        None => {
            eprintln!("PostgreSQL benchmarks skipped: {POSTGRES_URL_VAR} not set");
            postgres_notes.push(format!(
                "PostgreSQL benchmarks skipped: {POSTGRES_URL_VAR} not set"
            ));
        }
        Some(url) => {
            postgres_notes.push(postgres_settings(url).await?);
        }
    }
    if let Some(url) = postgres_url
        .as_deref()
        .filter(|_| wanted("postgres-append"))
    {
        let count = scaled(POSTGRES_APPENDS, POSTGRES_WRITERS);
        eprintln!("PostgreSQL appends: {count} appends over {POSTGRES_WRITERS} writers…");
        let run = postgres_appends(url, count).await?;
        rows.push(Row::rate(
            format!("PostgreSQL appends, 1 event/tx, {POSTGRES_WRITERS} concurrent writers ({} appends)", fmt_int(count)),
            &run,
            "appends/s",
            Some(POSTGRES_APPEND_AIM),
        ));
    }

    // 3. Projection catch-up on SQLite.
    if wanted("sqlite-catch-up") {
        let count = scaled(SQLITE_CATCH_UP_EVENTS, EVENTS_PER_TX);
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn EventStore> = Arc::new(
            SqliteEventStore::open(&dir.path().join("events.db"), Durability::Normal).await?,
        );
        eprintln!("SQLite catch-up: loading {count} events, {EVENTS_PER_TX} per transaction…");
        let (load, last) = load_log(&store, count, 1).await?;
        rows.push(Row::rate(
            format!(
                "SQLite load, {} events/tx, Durability::Normal ({} events)",
                fmt_int(EVENTS_PER_TX),
                fmt_int(count)
            ),
            &load,
            "events/s",
            None,
        ));
        eprintln!("SQLite catch-up: projecting {count} events…");
        for folded in [false, true] {
            let run = catch_up(&store, count, last, folded).await?;
            let style = if folded {
                "batch folded per user"
            } else {
                "one upsert per event"
            };
            rows.push(Row::rate(
                format!(
                    "SQLite projection catch-up, {style}, batch {CATCH_UP_BATCH} ({} events)",
                    fmt_int(count)
                ),
                &run,
                "events/s",
                Some(SQLITE_CATCH_UP_AIM),
            ));
        }
    }

    // 3b. Projection catch-up on PostgreSQL.
    if let Some(url) = postgres_url
        .as_deref()
        .filter(|_| wanted("postgres-catch-up"))
    {
        let count = scaled(POSTGRES_CATCH_UP_EVENTS, EVENTS_PER_TX);
        let (store, _scratch) = postgres_store(url, POSTGRES_WRITERS as u32 + 1).await?;
        let store: Arc<dyn EventStore> = Arc::new(store);
        eprintln!(
            "PostgreSQL catch-up: loading {count} events, {EVENTS_PER_TX} per transaction, 4 loaders…"
        );
        let (load, last) = load_log(&store, count, 4).await?;
        rows.push(Row::rate(
            format!(
                "PostgreSQL load, {} events/tx, 4 concurrent loaders ({} events)",
                fmt_int(EVENTS_PER_TX),
                fmt_int(count)
            ),
            &load,
            "events/s",
            None,
        ));
        eprintln!("PostgreSQL catch-up: projecting {count} events…");
        for folded in [false, true] {
            let run = catch_up(&store, count, last, folded).await?;
            let style = if folded {
                "batch folded per user"
            } else {
                "one upsert per event"
            };
            rows.push(Row::rate(
                format!(
                    "PostgreSQL projection catch-up, {style}, batch {CATCH_UP_BATCH} ({} events)",
                    fmt_int(count)
                ),
                &run,
                "events/s",
                None,
            ));
        }
        drop(store);
    }

    // Reference: the cost of one statement round trip through the driver, which the figures
    // above are mostly made of.
    if wanted("round-trip") {
        let count = scaled(ROUND_TRIPS, 1);
        eprintln!("Round trips: {count} × SELECT 1…");
        let run = sqlite_round_trips(count).await?;
        rows.push(Row::rate(
            format!(
                "reference: sqlx SQLite statement round trip, SELECT 1 ({} statements)",
                fmt_int(count)
            ),
            &run,
            "statements/s",
            None,
        ));
        if let Some(url) = &postgres_url {
            let run = postgres_round_trips(url, count).await?;
            rows.push(Row::rate(
                format!(
                    "reference: sqlx PostgreSQL statement round trip, SELECT 1 ({} statements)",
                    fmt_int(count)
                ),
                &run,
                "statements/s",
                None,
            ));
        }
    }

    println!();
    println!("| figure | value | aim |");
    println!("|---|---:|---|");
    for row in &rows {
        println!("| {} | {} | {} |", row.figure, row.value, row.aim);
    }
    println!();
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "Load average when done: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    for note in postgres_notes {
        println!("{note}");
    }
    Ok(())
}

/// What one timed run did.
struct Run {
    operations: usize,
    elapsed: Duration,
    /// Per-operation latencies, when each operation was timed.
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }
}

/// One line of the results table.
struct Row {
    figure: String,
    value: String,
    aim: String,
}

impl Row {
    fn rate(figure: String, run: &Run, unit: &str, aim: Option<f64>) -> Row {
        let rate = run.per_second();
        let mut value = format!(
            "{} {unit} ({:.1} s",
            fmt_int(rate.round() as usize),
            run.elapsed.as_secs_f64()
        );
        if !run.latencies.is_empty() {
            let mut latencies = run.latencies.clone();
            latencies.sort_unstable();
            let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
            value.push_str(&format!(
                ", p50 {}, p99 {}",
                fmt_latency(at(0.5)),
                fmt_latency(at(0.99))
            ));
        }
        value.push(')');
        let aim = match aim {
            None => "—".to_owned(),
            Some(aim) if rate >= aim => format!("≥ {} {unit}: met", fmt_int(aim as usize)),
            Some(aim) => format!("≥ {} {unit}: **MISSED**", fmt_int(aim as usize)),
        };
        Row { figure, value, aim }
    }
}

fn fmt_int(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn fmt_latency(duration: Duration) -> String {
    if duration < Duration::from_millis(1) {
        format!("{} µs", duration.as_micros())
    } else {
        format!("{:.2} ms", duration.as_secs_f64() * 1_000.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Events

fn user(instance: usize, id: &str) -> AggregateRef {
    AggregateRef::new(format!("instance-{instance}"), "user", id)
}

/// The `index`-th event of a user aggregate, with a payload of a realistic size and shape.
fn user_event(user_id: &str, index: usize) -> NewEvent {
    let (event_type, payload) = match index {
        0 => (
            "user.added",
            serde_json::json!({
                "username": user_id,
                "email": format!("{user_id}@example.com"),
                "display_name": format!("User {user_id}"),
                "preferred_language": "en",
                "email_verified": false,
            }),
        ),
        _ if index == EVENTS_PER_AGGREGATE - 1 => (
            "user.locked",
            serde_json::json!({ "reason": "too many failed sign-ins", "until": null }),
        ),
        _ => match index % 3 {
            0 => (
                "user.email.changed",
                serde_json::json!({ "email": format!("{user_id}+{index}@example.org") }),
            ),
            1 => (
                "user.password.changed",
                serde_json::json!({
                    "hash": "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
                    "change_required": false,
                }),
            ),
            _ => (
                "user.signed_in",
                serde_json::json!({ "session_id": format!("session-{user_id}-{index}"), "ip": "192.0.2.10" }),
            ),
        },
    };
    NewEvent {
        event_type: event_type.into(),
        revision: 1,
        payload: payload.to_string(),
        creator: "bench".into(),
        created_at: Utc::now(),
    }
}

/// One event appended to a new aggregate: the shape of a sign-up command.
fn single_append(instance: usize, user_id: &str) -> AggregateAppend {
    AggregateAppend {
        aggregate: user(instance, user_id),
        expected_sequence: 0,
        events: vec![user_event(user_id, 0)],
    }
}

// ---------------------------------------------------------------------------------------------
// 1. SQLite appends

async fn sqlite_appends(durability: Durability, count: usize) -> BenchResult<Run> {
    let dir = tempfile::tempdir()?;
    let store = SqliteEventStore::open(&dir.path().join("events.db"), durability).await?;
    for index in 0..WARM_UP_APPENDS {
        store
            .append(&[single_append(0, &format!("warm-{index}"))])
            .await?;
    }
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for index in 0..count {
        let append = single_append(0, &format!("user-{index}"));
        let sent = Instant::now();
        store.append(&[append]).await?;
        latencies.push(sent.elapsed());
    }
    Ok(Run {
        operations: count,
        elapsed: started.elapsed(),
        latencies,
    })
}

/// Times `SELECT 1` round trips on one open connection (a macro: sqlx's executor bounds do not
/// abstract over back ends gracefully).
macro_rules! time_round_trips {
    ($conn:expr, $count:expr) => {{
        let (conn, count) = ($conn, $count);
        for _ in 0..WARM_UP_APPENDS {
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
        }
        let mut latencies = Vec::with_capacity(count);
        let started = Instant::now();
        for _ in 0..count {
            let sent = Instant::now();
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            latencies.push(sent.elapsed());
        }
        Ok(Run {
            operations: count,
            elapsed: started.elapsed(),
            latencies,
        })
    }};
}

/// Times `SELECT 1` on one sqlx SQLite connection: the fixed cost of every statement (sqlx runs
/// each on a worker thread and hands the result back).
async fn sqlite_round_trips(count: usize) -> BenchResult<Run> {
    use sqlx::ConnectOptions;
    let dir = tempfile::tempdir()?;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("round_trip.db"))
        .create_if_missing(true)
        .connect()
        .await?;
    time_round_trips!(&mut conn, count)
}

async fn postgres_round_trips(url: &str, count: usize) -> BenchResult<Run> {
    use sqlx::ConnectOptions;
    let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
    time_round_trips!(&mut conn, count)
}

// ---------------------------------------------------------------------------------------------
// 2. PostgreSQL appends

/// Drops the benchmark's schema when dropped, even after a panic.
struct PgScratch {
    url: String,
    schema: String,
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop cannot await; a short-lived runtime on its own thread removes the schema.
        let dropped = std::thread::spawn(move || -> BenchResult<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&url).await?;
                let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                sqlx::query(sqlx::AssertSqlSafe(drop))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "warning: could not drop the benchmark schema {}; drop it by hand",
                self.schema
            );
        }
    }
}

/// A store on a fresh schema. The scratch guard must outlive the store.
async fn postgres_store(
    url: &str,
    max_connections: u32,
) -> BenchResult<(PostgresEventStore, PgScratch)> {
    let schema = format!("pc_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    let scratch = PgScratch {
        url: url.to_owned(),
        schema: schema.clone(),
    };
    let options = PgConnectOptions::from_str(url)?.options([("search_path", schema.as_str())]);
    let store = PostgresEventStore::connect_with(options, max_connections).await?;
    Ok((store, scratch))
}

/// The server's version and the settings that decide commit cost, for the notes.
async fn postgres_settings(url: &str) -> BenchResult<String> {
    let admin = sqlx::PgPool::connect(url).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&admin)
        .await?;
    let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&admin)
        .await?;
    let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&admin).await?;
    admin.close().await;
    Ok(format!(
        "PostgreSQL {version}, synchronous_commit = {synchronous_commit}, fsync = {fsync}"
    ))
}

async fn postgres_appends(url: &str, count: usize) -> BenchResult<Run> {
    // The store's notification listener keeps one pool connection for itself, so one more than
    // the writers lets all of them hold a connection at once.
    let (store, _scratch) = postgres_store(url, POSTGRES_WRITERS as u32 + 1).await?;
    let store = Arc::new(store);
    for index in 0..WARM_UP_APPENDS {
        store
            .append(&[single_append(0, &format!("warm-{index}"))])
            .await?;
    }
    let per_writer = count / POSTGRES_WRITERS;
    let start = Arc::new(tokio::sync::Barrier::new(POSTGRES_WRITERS + 1));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..POSTGRES_WRITERS {
        let (store, start) = (store.clone(), start.clone());
        writers.spawn(async move {
            let mut latencies = Vec::with_capacity(per_writer);
            start.wait().await;
            for index in 0..per_writer {
                let append =
                    single_append(writer % INSTANCES, &format!("writer-{writer}-user-{index}"));
                let sent = Instant::now();
                store.append(&[append]).await?;
                latencies.push(sent.elapsed());
            }
            BenchResult::Ok(latencies)
        });
    }
    start.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(count);
    while let Some(done) = writers.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = started.elapsed();
    drop(store);
    Ok(Run {
        operations: per_writer * POSTGRES_WRITERS,
        elapsed,
        latencies,
    })
}

// ---------------------------------------------------------------------------------------------
// 3. Projection catch-up

/// Appends `count` events (a multiple of `EVENTS_PER_TX`) in transactions of `EVENTS_PER_TX`,
/// with `loaders` concurrent tasks. Returns the run and the last position written.
async fn load_log(
    store: &Arc<dyn EventStore>,
    count: usize,
    loaders: usize,
) -> BenchResult<(Run, Position)> {
    let batches = count / EVENTS_PER_TX;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for loader in 0..loaders {
        let store = store.clone();
        tasks.spawn(async move {
            let mut last = Position::START;
            for batch in (loader..batches).step_by(loaders) {
                let instance = batch % INSTANCES;
                let appends: Vec<AggregateAppend> = (0..AGGREGATES_PER_TX)
                    .map(|k| {
                        let user_id = format!("user-{batch}-{k}");
                        AggregateAppend {
                            aggregate: user(instance, &user_id),
                            expected_sequence: 0,
                            events: (0..EVENTS_PER_AGGREGATE)
                                .map(|index| user_event(&user_id, index))
                                .collect(),
                        }
                    })
                    .collect();
                let stored = store.append(&appends).await?;
                last = last.max(
                    stored
                        .last()
                        .map_or(Position::START, |event| event.position),
                );
            }
            BenchResult::Ok(last)
        });
    }
    let mut last = Position::START;
    while let Some(done) = tasks.join_next().await {
        last = last.max(done??);
    }
    let run = Run {
        operations: batches * EVENTS_PER_TX,
        elapsed: started.elapsed(),
        latencies: Vec::new(),
    };
    Ok((run, last))
}

/// A read model of the kind Portcullis keeps: one row per user. `folded: false` upserts on
/// every event (the default `apply_batch`); `folded: true` folds each batch in memory and
/// upserts each user once per batch.
struct UserSummary {
    folded: bool,
}

/// One user's changes within a batch.
#[derive(Default)]
struct UserFold {
    username: Option<String>,
    email: Option<String>,
    display_name: Option<String>,
    locked: bool,
    events: i64,
    last_sequence: i64,
    last_event_type: String,
}

impl UserFold {
    fn add(&mut self, event: &StoredEvent) -> Result<(), BoxError> {
        let payload: UserPayload = serde_json::from_str(&event.payload)?;
        self.username = payload.username.or(self.username.take());
        self.email = payload.email.or(self.email.take());
        self.display_name = payload.display_name.or(self.display_name.take());
        self.locked |= event.event_type == "user.locked";
        self.events += 1;
        self.last_sequence = event.sequence;
        self.last_event_type.clone_from(&event.event_type);
        Ok(())
    }

    async fn write(
        self,
        tx: &mut dyn ReadModelTx,
        instance_id: &str,
        user_id: &str,
    ) -> Result<(), BoxError> {
        tx.execute(
            UPSERT_USER_SUMMARY,
            &[
                SqlValue::from(instance_id),
                user_id.into(),
                self.username.into(),
                self.email.into(),
                self.display_name.into(),
                self.locked.into(),
                self.last_sequence.into(),
                self.last_event_type.into(),
                self.events.into(),
            ],
        )
        .await?;
        Ok(())
    }
}

const USER_SUMMARY_SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS bench_user_summary (
        instance_id     TEXT    NOT NULL,
        user_id         TEXT    NOT NULL,
        username        TEXT,
        email           TEXT,
        display_name    TEXT,
        locked          BOOLEAN NOT NULL,
        event_count     BIGINT  NOT NULL,
        last_sequence   BIGINT  NOT NULL,
        last_event_type TEXT    NOT NULL,
        PRIMARY KEY (instance_id, user_id))"];

const UPSERT_USER_SUMMARY: &str = "INSERT INTO bench_user_summary \
     (instance_id, user_id, username, email, display_name, locked, event_count, last_sequence, last_event_type) \
     VALUES ($1, $2, $3, $4, $5, $6, $9, $7, $8) \
     ON CONFLICT (instance_id, user_id) DO UPDATE SET \
     username = COALESCE(excluded.username, bench_user_summary.username), \
     email = COALESCE(excluded.email, bench_user_summary.email), \
     display_name = COALESCE(excluded.display_name, bench_user_summary.display_name), \
     locked = (bench_user_summary.locked OR excluded.locked), \
     event_count = bench_user_summary.event_count + excluded.event_count, \
     last_sequence = excluded.last_sequence, \
     last_event_type = excluded.last_event_type";

/// The payload fields the read model cares about; the rest is ignored.
#[derive(Deserialize)]
struct UserPayload {
    username: Option<String>,
    email: Option<String>,
    display_name: Option<String>,
}

#[async_trait]
impl Projection for UserSummary {
    fn name(&self) -> &'static str {
        if self.folded {
            "bench_user_summary_folded"
        } else {
            "bench_user_summary"
        }
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["user"]
    }

    fn schema(&self) -> &'static [&'static str] {
        USER_SUMMARY_SCHEMA
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let mut fold = UserFold::default();
        fold.add(event)?;
        fold.write(
            tx,
            &event.aggregate.instance_id,
            &event.aggregate.aggregate_id,
        )
        .await
    }

    async fn apply_batch(
        &self,
        tx: &mut dyn ReadModelTx,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError> {
        if !self.folded {
            for (index, event) in events.iter().enumerate() {
                self.apply(tx, event)
                    .await
                    .map_err(|source| ApplyError { index, source })?;
            }
            return Ok(());
        }
        // Users in first-seen order, each with the index of its last event (for errors).
        let mut folds: Vec<((&str, &str), UserFold, usize)> = Vec::new();
        let mut slots: HashMap<(&str, &str), usize> = HashMap::new();
        for (index, event) in events.iter().enumerate() {
            let key = (
                event.aggregate.instance_id.as_str(),
                event.aggregate.aggregate_id.as_str(),
            );
            let slot = *slots.entry(key).or_insert_with(|| {
                folds.push((key, UserFold::default(), index));
                folds.len() - 1
            });
            folds[slot]
                .1
                .add(event)
                .map_err(|source| ApplyError { index, source })?;
            folds[slot].2 = index;
        }
        for ((instance_id, user_id), fold, index) in folds {
            fold.write(tx, instance_id, user_id)
                .await
                .map_err(|source| ApplyError { index, source })?;
        }
        Ok(())
    }
}

/// The summary table's total event count and number of users.
async fn summary_totals(store: &Arc<dyn EventStore>) -> BenchResult<(i64, i64)> {
    let rows = store
        .query(
            "SELECT CAST(COALESCE(SUM(event_count), 0) AS BIGINT), COUNT(*) FROM bench_user_summary",
            &[],
        )
        .await?;
    Ok((rows[0].int(0)?, rows[0].int(1)?))
}

/// Installs the projection over the loaded log and times passes until it has applied `count`
/// events, then checks the read model accounts for every one of them.
async fn catch_up(
    store: &Arc<dyn EventStore>,
    count: usize,
    last: Position,
    folded: bool,
) -> BenchResult<Run> {
    let options = RunnerOptions {
        batch_size: CATCH_UP_BATCH,
        ..RunnerOptions::default()
    };
    let runner = ProjectionRunner::new(
        store.clone(),
        vec![Arc::new(UserSummary { folded })],
        options,
    );
    runner.install().await?;
    // On PostgreSQL a transaction still open anywhere on the server holds the read horizon
    // back; wait for the whole log to be readable so only the catch-up itself is timed.
    let deadline = Instant::now() + Duration::from_secs(600);
    let waiting = Instant::now();
    while !store.is_visible(last).await? {
        if Instant::now() > deadline {
            return Err(format!("the loaded log never became visible (up to {last})").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if waiting.elapsed() > Duration::from_millis(100) {
        eprintln!(
            "  waited {:.1} s for the log to become visible",
            waiting.elapsed().as_secs_f64()
        );
    }
    // Both styles write the same table, one after the other: count what was there before.
    let (counted_before, _) = summary_totals(store).await?;
    let started = Instant::now();
    let (mut applied, mut passes, mut idle_passes, mut busy_passes) = (0, 0, 0, 0);
    while applied < count {
        let pass = runner.run_pass().await?;
        passes += 1;
        applied += pass.applied;
        busy_passes += usize::from(pass.busy);
        if pass.applied == 0 {
            idle_passes += 1;
            if Instant::now() > deadline {
                return Err(format!("catch-up stalled after {applied} of {count} events").into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "  {passes} passes ({idle_passes} applied nothing, {busy_passes} found a lock taken)"
    );
    let (events, users) = summary_totals(store).await?;
    let events = events - counted_before;
    if events != count as i64 || users != (count / EVENTS_PER_AGGREGATE) as i64 || applied != count
    {
        return Err(format!(
            "the read model is off: {events} events over {users} users, {applied} applied; expected {count} events"
        )
        .into());
    }
    Ok(Run {
        operations: count,
        elapsed,
        latencies: Vec::new(),
    })
}
