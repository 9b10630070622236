//! The event store contract: every test here runs against SQLite and against PostgreSQL.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{Harness, Ledger, aggregate, append_one, event, ledger, settle};
use eventstore::{
    AggregateAppend, BatchOutcome, BoxError, EventQuery, Position, Projection, ProjectionRunner,
    ReadModelTx, RunnerOptions, SqlValue, StartFrom, StoreError, StoredEvent,
};
use serde_json::json;

eventstore::on_both_backends!(
    appends_and_reads_an_aggregate,
    reads_several_aggregates_at_once,
    reads_a_large_transaction_in_small_batches,
    stale_expected_sequence_conflicts_and_writes_nothing,
    concurrent_writers_to_one_aggregate_one_wins,
    rejects_malformed_appends,
    queries_filter_by_instance_types_and_position,
    projection_applies_once_and_resumes_after_restart,
    projection_installed_at_end_skips_old_events,
    failing_projection_changes_nothing,
    projections_apply_together_and_fail_alone,
    no_event_is_skipped_under_concurrent_appends,
    two_runners_apply_each_event_once,
    wait_for_sees_own_writes,
    subscribers_wake_on_append,
    store_is_ready_after_migrations,
);

async fn appends_and_reads_an_aggregate(h: Harness) {
    let appended = h
        .store
        .append(&[AggregateAppend {
            aggregate: aggregate("i1", "a"),
            expected_sequence: 0,
            events: vec![
                event("thing.created", json!({"name": "a"})),
                event("thing.renamed", json!({"name": "b"})),
            ],
        }])
        .await
        .unwrap();
    assert_eq!(
        appended.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(appended[0].position < appended[1].position);
    h.store
        .append(&[append_one("i1", "a", 2, "thing.touched")])
        .await
        .unwrap();

    let read = h
        .store
        .aggregate_events(&aggregate("i1", "a"))
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(read[..2], appended[..]);
    let payload: serde_json::Value = serde_json::from_str(&read[1].payload).unwrap();
    assert_eq!(payload, json!({"name": "b"}));
    assert_eq!(read[2].sequence, 3);
    assert!(read[1].position < read[2].position);
    assert!(
        h.store
            .aggregate_events(&aggregate("i2", "a"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reads_several_aggregates_at_once(h: Harness) {
    h.store
        .append(&[
            append_one("i1", "a", 0, "thing.created"),
            append_one("i1", "b", 0, "thing.created"),
            append_one("i2", "a", 0, "thing.created"),
        ])
        .await
        .unwrap();
    h.store
        .append(&[append_one("i1", "a", 1, "thing.touched")])
        .await
        .unwrap();
    let ids = ["b", "a", "missing"].map(String::from);
    let read = h
        .store
        .aggregates_events("i1", "thing", &ids)
        .await
        .unwrap();
    let seen: Vec<(&str, &str, i64)> = read
        .iter()
        .map(|e| {
            (
                e.aggregate.instance_id.as_str(),
                e.aggregate.aggregate_id.as_str(),
                e.sequence,
            )
        })
        .collect();
    assert_eq!(seen, [("i1", "a", 1), ("i1", "a", 2), ("i1", "b", 1)]);
    assert!(
        h.store
            .aggregates_events("i1", "thing", &[])
            .await
            .unwrap()
            .is_empty()
    );
}

/// A reader that resumes inside one large transaction gets the rest of it, in order.
async fn reads_a_large_transaction_in_small_batches(h: Harness) {
    let appends: Vec<AggregateAppend> = (0..50)
        .map(|n| append_one("i1", &format!("t{n:02}"), 0, "thing.created"))
        .collect();
    h.store.append(&appends).await.unwrap();
    let mut after = Position::START;
    let mut read = Vec::new();
    loop {
        let batch = h
            .store
            .events(&EventQuery {
                instance_id: Some("i1".into()),
                after,
                limit: 7,
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        read.extend(batch);
    }
    let ids: Vec<String> = read
        .iter()
        .map(|e| e.aggregate.aggregate_id.clone())
        .collect();
    let expected: Vec<String> = (0..50).map(|n| format!("t{n:02}")).collect();
    assert_eq!(ids, expected);
}

async fn stale_expected_sequence_conflicts_and_writes_nothing(h: Harness) {
    h.store
        .append(&[append_one("i1", "a", 0, "thing.created")])
        .await
        .unwrap();
    // A two-aggregate append whose second part is stale must write neither part.
    let error = h
        .store
        .append(&[
            append_one("i1", "b", 0, "thing.created"),
            append_one("i1", "a", 0, "thing.created"),
        ])
        .await
        .unwrap_err();
    match error {
        StoreError::Conflict {
            aggregate: conflicted,
            expected,
            actual,
        } => {
            assert_eq!(conflicted, aggregate("i1", "a"));
            assert_eq!((expected, actual), (0, 1));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(
        h.store
            .aggregate_events(&aggregate("i1", "b"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        h.store
            .aggregate_events(&aggregate("i1", "a"))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn concurrent_writers_to_one_aggregate_one_wins(h: Harness) {
    let attempts = (0..10).map(|_| {
        let store = h.store.clone();
        tokio::spawn(async move {
            store
                .append(&[append_one("i1", "contended", 0, "thing.created")])
                .await
        })
    });
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => panic!("a lost race must be a conflict, got {other}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        h.store
            .aggregate_events(&aggregate("i1", "contended"))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn rejects_malformed_appends(h: Harness) {
    let mut not_json = append_one("i1", "a", 0, "thing.created");
    not_json.events[0].payload = "{not json".into();
    assert!(h.store.append(&[not_json]).await.is_err());
    let empty = AggregateAppend {
        aggregate: aggregate("i1", "a"),
        expected_sequence: 0,
        events: vec![],
    };
    assert!(matches!(
        h.store.append(&[empty]).await,
        Err(StoreError::InvalidAppend(_))
    ));
    let twice = [
        append_one("i1", "a", 0, "thing.created"),
        append_one("i1", "a", 0, "thing.created"),
    ];
    assert!(matches!(
        h.store.append(&twice).await,
        Err(StoreError::InvalidAppend(_))
    ));
    assert!(
        h.store
            .aggregate_events(&aggregate("i1", "a"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn queries_filter_by_instance_types_and_position(h: Harness) {
    h.store
        .append(&[append_one("i1", "a", 0, "thing.created")])
        .await
        .unwrap();
    let mut other_type = append_one("i2", "u", 0, "user.created");
    other_type.aggregate.aggregate_type = "user".into();
    h.store.append(&[other_type]).await.unwrap();
    h.store
        .append(&[append_one("i1", "a", 1, "thing.renamed")])
        .await
        .unwrap();
    let last = h
        .store
        .append(&[append_one("i2", "b", 0, "thing.created")])
        .await
        .unwrap();
    settle(h.store.as_ref(), last[0].position).await;

    let all = h
        .store
        .events(&EventQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert!(
        all.windows(2)
            .all(|pair| pair[0].position < pair[1].position)
    );

    let of_i1 = EventQuery {
        instance_id: Some("i1".into()),
        limit: 100,
        ..Default::default()
    };
    let i1 = h.store.events(&of_i1).await.unwrap();
    assert_eq!(
        i1.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(),
        ["thing.created", "thing.renamed"]
    );

    let after_first = EventQuery {
        after: i1[0].position,
        ..of_i1.clone()
    };
    assert_eq!(h.store.events(&after_first).await.unwrap().len(), 1);

    let users = EventQuery {
        aggregate_types: vec!["user".into()],
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        h.store.events(&users).await.unwrap()[0]
            .aggregate
            .instance_id,
        "i2"
    );

    let created = EventQuery {
        event_types: vec!["thing.created".into()],
        limit: 100,
        ..Default::default()
    };
    assert_eq!(h.store.events(&created).await.unwrap().len(), 2);

    let limited = EventQuery {
        limit: 3,
        ..Default::default()
    };
    assert_eq!(h.store.events(&limited).await.unwrap(), all[..3]);

    assert_eq!(h.store.instances().await.unwrap(), ["i1", "i2"]);
}

fn runner(h: &Harness, start: StartFrom, batch_size: u32) -> ProjectionRunner {
    runner_on(h.store.clone(), start, batch_size)
}

fn runner_on(
    store: Arc<dyn eventstore::EventStore>,
    start: StartFrom,
    batch_size: u32,
) -> ProjectionRunner {
    let projections: Vec<Arc<dyn Projection>> = vec![Arc::new(Ledger { start })];
    ProjectionRunner::new(
        store,
        projections,
        RunnerOptions {
            batch_size,
            poll_interval: Duration::from_millis(50),
            ..RunnerOptions::default()
        },
    )
}

async fn projection_applies_once_and_resumes_after_restart(h: Harness) {
    for n in 0..5 {
        let stored = h
            .store
            .append(&[append_one("i1", "a", n, "thing.touched")])
            .await
            .unwrap();
        settle(h.store.as_ref(), stored[0].position).await;
    }
    let first = runner(&h, StartFrom::Beginning, 2);
    first.install().await.unwrap();
    assert_eq!(first.run_pass().await.unwrap().applied, 5);
    assert_eq!(first.run_pass().await.unwrap().applied, 0);

    // A restart: a new store and runner on the same database resume where the first stopped.
    let stored = h
        .store
        .append(&[append_one("i1", "a", 5, "thing.touched")])
        .await
        .unwrap();
    settle(h.store.as_ref(), stored[0].position).await;
    let reopened = h.reopen.open().await.unwrap();
    let second = runner_on(reopened.clone(), StartFrom::Beginning, 2);
    second.install().await.unwrap();
    assert_eq!(second.run_pass().await.unwrap().applied, 1);
    let rows = ledger(reopened.as_ref()).await;
    assert_eq!(
        rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    let last = h
        .store
        .aggregate_events(&aggregate("i1", "a"))
        .await
        .unwrap()
        .pop()
        .unwrap()
        .position;
    assert_eq!(
        reopened
            .projection_position("test_ledger", "i1")
            .await
            .unwrap(),
        Some(last)
    );
}

async fn projection_installed_at_end_skips_old_events(h: Harness) {
    h.store
        .append(&[append_one("old", "a", 0, "thing.created")])
        .await
        .unwrap();
    h.store
        .append(&[append_one("i1", "a", 0, "thing.created")])
        .await
        .unwrap();
    let late = runner(&h, StartFrom::End, 100);
    late.install().await.unwrap();
    h.store
        .append(&[append_one("i1", "a", 1, "thing.touched")])
        .await
        .unwrap();
    let stored = h
        .store
        .append(&[append_one("new", "a", 0, "thing.created")])
        .await
        .unwrap();
    settle(h.store.as_ref(), stored[0].position).await;
    late.run_pass().await.unwrap();
    let rows = ledger(h.store.as_ref()).await;
    assert_eq!(
        rows,
        [
            ("i1".to_string(), "a".to_string(), 2),
            ("new".to_string(), "a".to_string(), 1)
        ]
    );

    // Installing again (a restart) keeps the original starting point.
    late.install().await.unwrap();
    assert_eq!(late.run_pass().await.unwrap().applied, 0);
}

/// Counts the `thing` events of each instance; never fails.
struct Tally;

#[async_trait]
impl Projection for Tally {
    fn name(&self) -> &'static str {
        "test_tally"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["thing"]
    }
    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS test_tally (instance_id TEXT PRIMARY KEY, events BIGINT NOT NULL)",
        ]
    }
    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        tx.execute(
            "INSERT INTO test_tally (instance_id, events) VALUES ($1, 1) \
             ON CONFLICT (instance_id) DO UPDATE SET events = test_tally.events + 1",
            &[SqlValue::from(event.aggregate.instance_id.as_str())],
        )
        .await?;
        Ok(())
    }
}

async fn tally(h: &Harness) -> i64 {
    let rows = h
        .store
        .query(
            "SELECT events FROM test_tally WHERE instance_id = 'i1'",
            &[],
        )
        .await
        .unwrap();
    rows.first().map_or(0, |row| row.int(0).unwrap())
}

/// Several projections advance in one transaction; a failure rolls back all of that
/// transaction, but the runner then lets the healthy projection go on alone.
async fn projections_apply_together_and_fail_alone(h: Harness) {
    let ledger_projection: Arc<dyn Projection> = Arc::new(Ledger {
        start: StartFrom::Beginning,
    });
    h.store
        .install_projection(ledger_projection.clone())
        .await
        .unwrap();
    h.store.install_projection(Arc::new(Tally)).await.unwrap();
    let stored = h
        .store
        .append(&[append_one("i1", "a", 0, "thing.created")])
        .await
        .unwrap();
    settle(h.store.as_ref(), stored[0].position).await;
    let both: [Arc<dyn Projection>; 2] = [ledger_projection.clone(), Arc::new(Tally)];
    let outcomes = h.store.project_many(&both, "i1", 10).await.unwrap();
    let applied = BatchOutcome::Applied {
        count: 1,
        position: stored[0].position,
    };
    assert_eq!(outcomes, [applied, applied]);
    assert_eq!(
        h.store.project_many(&both, "i1", 10).await.unwrap(),
        [BatchOutcome::Idle, BatchOutcome::Idle]
    );

    let poisoned = h
        .store
        .append(&[append_one("i1", "a", 1, "thing.poisoned")])
        .await
        .unwrap();
    settle(h.store.as_ref(), poisoned[0].position).await;
    assert!(h.store.project_many(&both, "i1", 10).await.is_err());
    assert_eq!(tally(&h).await, 1, "the shared transaction is rolled back");

    let projections: Vec<Arc<dyn Projection>> = vec![
        Arc::new(Ledger {
            start: StartFrom::Beginning,
        }),
        Arc::new(Tally),
    ];
    let runner = ProjectionRunner::new(h.store.clone(), projections, RunnerOptions::default());
    let error = runner.run_pass().await.unwrap_err();
    assert!(error.to_string().contains("thing.poisoned"), "{error}");
    assert_eq!(tally(&h).await, 2, "the healthy projection went on alone");
    assert_eq!(
        h.store
            .projection_position("test_tally", "i1")
            .await
            .unwrap(),
        Some(poisoned[0].position)
    );
    assert_eq!(ledger(h.store.as_ref()).await.len(), 1);
}

async fn failing_projection_changes_nothing(h: Harness) {
    h.store
        .append(&[append_one("i1", "a", 0, "thing.created")])
        .await
        .unwrap();
    let stored = h
        .store
        .append(&[append_one("i1", "a", 1, "thing.poisoned")])
        .await
        .unwrap();
    settle(h.store.as_ref(), stored[0].position).await;
    let projection: Arc<dyn Projection> = Arc::new(Ledger {
        start: StartFrom::Beginning,
    });
    h.store
        .install_projection(projection.clone())
        .await
        .unwrap();
    let error = h
        .store
        .project(projection.clone(), "i1", 10)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("thing.poisoned") && message.contains("#2"),
        "{message}"
    );
    assert!(
        ledger(h.store.as_ref()).await.is_empty(),
        "the whole batch is rolled back"
    );
    assert_eq!(
        h.store
            .projection_position("test_ledger", "i1")
            .await
            .unwrap(),
        None
    );
    // Nothing in the log changed either.
    assert_eq!(
        h.store
            .aggregate_events(&aggregate("i1", "a"))
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn no_event_is_skipped_under_concurrent_appends(h: Harness) {
    const WRITERS: usize = 8;
    const APPENDS: i64 = 60;
    let runner = Arc::new(runner(&h, StartFrom::Beginning, 7));
    runner.install().await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(runner.clone().run(stopped));
    let writers = (0..WRITERS).map(|w| {
        let store = h.store.clone();
        tokio::spawn(async move {
            for n in 0..APPENDS {
                // Alternate single- and multi-aggregate appends so transactions differ in size.
                let mut batch = vec![append_one("i1", &format!("w{w}"), n, "thing.touched")];
                if n % 3 == 0 {
                    batch.push(append_one(
                        &format!("i{}", w % 2 + 2),
                        &format!("w{w}"),
                        n / 3,
                        "thing.touched",
                    ));
                }
                store.append(&batch).await.unwrap();
            }
        })
    });
    for writer in writers {
        writer.await.unwrap();
    }
    // Let the live runner finish, then check nothing is left and nothing was doubled (the
    // ledger's primary key would have failed the projection).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let expected = WRITERS * (APPENDS as usize + (APPENDS as usize).div_ceil(3));
    while ledger(h.store.as_ref()).await.len() < expected && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(runner.run_pass().await.unwrap().applied, 0);
    let rows = ledger(h.store.as_ref()).await;
    assert_eq!(rows.len(), expected);
    let distinct: BTreeSet<_> = rows.iter().collect();
    assert_eq!(distinct.len(), expected);
}

async fn two_runners_apply_each_event_once(h: Harness) {
    let other_process = h.reopen.open().await.unwrap();
    let runners = [
        runner(&h, StartFrom::Beginning, 5),
        runner_on(other_process, StartFrom::Beginning, 5),
    ];
    for runner in &runners {
        runner.install().await.unwrap();
    }
    let runners: Vec<_> = runners.into_iter().map(Arc::new).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running: Vec<_> = runners
        .iter()
        .map(|r| tokio::spawn(r.clone().run(stopped.clone())))
        .collect();
    for n in 0..100 {
        h.store
            .append(&[
                append_one("i1", "a", n, "thing.touched"),
                append_one("i2", "b", n, "thing.touched"),
            ])
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ledger(h.store.as_ref()).await.len() < 200 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    for task in running {
        task.await.unwrap();
    }
    assert_eq!(ledger(h.store.as_ref()).await.len(), 200);
}

async fn wait_for_sees_own_writes(h: Harness) {
    let runner = runner(&h, StartFrom::Beginning, 100);
    runner.install().await.unwrap();
    let stored = h
        .store
        .append(&[append_one("i1", "a", 0, "thing.created")])
        .await
        .unwrap();
    runner
        .wait_for("i1", stored[0].position, &[], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ledger(h.store.as_ref()).await.len(), 1);
}

async fn subscribers_wake_on_append(h: Harness) {
    let mut woken = h.store.subscribe();
    woken.mark_unchanged();
    h.store
        .append(&[append_one("i1", "a", 0, "thing.created")])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken.changed())
        .await
        .unwrap()
        .unwrap();
}

async fn store_is_ready_after_migrations(h: Harness) {
    h.store.check_ready().await.unwrap();
    assert!(h.store.is_visible(Position::START).await.unwrap());
    let projection: Arc<dyn Projection> = Arc::new(Ledger {
        start: StartFrom::Beginning,
    });
    assert!(matches!(
        h.store.project(projection.clone(), "i1", 1).await,
        Err(StoreError::NotInstalled(_))
    ));
    h.store
        .install_projection(projection.clone())
        .await
        .unwrap();
    assert_eq!(
        h.store.project(projection.clone(), "i1", 1).await.unwrap(),
        BatchOutcome::Idle
    );
}
