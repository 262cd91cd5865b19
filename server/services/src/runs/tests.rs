#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use chrono::Utc;
use db::Backend;
use db::ids::RunId;
use db::queries::runs::NewRun;
use db::sea_orm::{ActiveModelTrait, ActiveValue::Set};
use db::tables::runs::{self, RunState};
use db::testing::{TestDatabase, backends};
use serde::{Deserialize, Serialize};

use super::*;

const KIND: &str = "test_run";

/// Text deltas merge; marks do not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TestEvent {
    Text { text: String },
    Mark { number: u32 },
}

impl RunEvent for TestEvent {
    fn kind(&self) -> &str {
        match self {
            TestEvent::Text { .. } => "text",
            TestEvent::Mark { .. } => "mark",
        }
    }

    fn merge(&mut self, next: Self) -> Result<(), Self> {
        match (self, next) {
            (TestEvent::Text { text }, TestEvent::Text { text: more }) => {
                text.push_str(&more);
                Ok(())
            }
            (_, next) => Err(next),
        }
    }

    fn buffered_bytes(&self) -> usize {
        match self {
            TestEvent::Text { text } => text.len(),
            TestEvent::Mark { .. } => 16,
        }
    }
}

fn text(text: &str) -> TestEvent {
    TestEvent::Text {
        text: text.to_owned(),
    }
}

fn new_run() -> NewRun {
    NewRun {
        kind: KIND.to_owned(),
        owner_user_id: None,
        subject: None,
    }
}

/// Settings that never renew or poll within a test, unless it says otherwise.
fn quiet_config() -> RunsConfig {
    RunsConfig {
        lease: LeaseConfig {
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(3600),
        },
        flush: FlushConfig {
            interval: Duration::from_millis(20),
            bytes: 1 << 20,
            events: 10_000,
        },
        poll_interval: Duration::from_secs(3600),
        page_size: 7,
    }
}

/// Ends a run's lease now, as if its holder had stopped renewing it long ago.
async fn expire(database: &db::Database, run_id: RunId) {
    let mut run: runs::ActiveModel = database.run(run_id).await.unwrap().unwrap().into();
    run.lease_expires_at = Set(Some(Utc::now() - chrono::Duration::seconds(1)));
    run.update(database.connection()).await.unwrap();
}

async fn read_all(reader: &mut RunReader<TestEvent>) -> Vec<RunEventRecord<TestEvent>> {
    let mut records = Vec::new();
    while let Some(record) = tokio::time::timeout(Duration::from_secs(20), reader.next())
        .await
        .expect("the reader is woken within 20 s")
        .unwrap()
    {
        records.push(record);
    }
    records
}

fn joined_text(records: &[RunEventRecord<TestEvent>]) -> String {
    records
        .iter()
        .filter_map(|record| match &record.event {
            TestEvent::Text { text } => Some(text.as_str()),
            TestEvent::Mark { .. } => None,
        })
        .collect()
}

#[tokio::test]
async fn text_deltas_are_coalesced_into_few_rows() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let runs = Runs::with_instance(test_database.database.clone(), "a", quiet_config());
        let writer = runs.start::<TestEvent>(new_run()).await.unwrap();
        let run_id = writer.run_id();
        let mut expected = String::new();
        for delta in 0..2000 {
            let delta = format!("{} ", delta % 10);
            expected.push_str(&delta);
            writer.push(text(&delta)).unwrap();
            if delta.starts_with('0') {
                tokio::task::yield_now().await;
            }
        }
        writer.push(TestEvent::Mark { number: 1 }).unwrap();
        writer.push(text("end")).unwrap();
        expected.push_str("end");
        writer.finish(RunState::Finished).await.unwrap();

        let mut reader = runs.follow::<TestEvent>(run_id, 0);
        let records = read_all(&mut reader).await;
        assert!(
            records.len() < 20,
            "{backend:?}: {} rows for 2002 events",
            records.len()
        );
        assert_eq!(joined_text(&records), expected, "{backend:?}");
        let seqs: Vec<i64> = records.iter().map(|record| record.seq).collect();
        let expected_seqs: Vec<i64> = (1..=i64::try_from(records.len()).unwrap()).collect();
        assert_eq!(seqs, expected_seqs);
        assert!(records.iter().any(|record| record.kind == "mark"));
    }
}

#[tokio::test]
async fn a_writer_whose_run_was_claimed_writes_nothing_and_stops() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let first = Runs::with_instance(database.clone(), "first", quiet_config());
        let second = Runs::with_instance(database.clone(), "second", quiet_config());

        let stale = first.start::<TestEvent>(new_run()).await.unwrap();
        let run_id = stale.run_id();
        stale.push(text("before")).unwrap();
        stale.flush().await.unwrap();
        // Nobody may take a run whose lease lasts.
        assert!(
            second
                .claim::<TestEvent>(stale.run_id())
                .await
                .unwrap()
                .is_none()
        );

        expire(database, stale.run_id()).await;
        let taker = second
            .claim::<TestEvent>(stale.run_id())
            .await
            .unwrap()
            .expect("an expired run is claimable");
        assert_eq!(taker.token(), 2);

        stale.push(text("stale")).unwrap();
        let refused = stale.flush().await;
        assert!(
            matches!(refused, Err(RunError::LeaseLost)),
            "{backend:?}: {refused:?}"
        );
        assert!(stale.is_lost());
        tokio::time::timeout(Duration::from_secs(1), stale.lost())
            .await
            .expect("lost() returns once the lease is lost");
        assert!(matches!(stale.push(text("more")), Err(RunError::LeaseLost)));

        taker.push(text(" after")).unwrap();
        taker.finish(RunState::Finished).await.unwrap();
        let refused = stale.finish(RunState::Failed).await;
        assert!(
            matches!(refused, Err(RunError::LeaseLost)),
            "{backend:?}: {refused:?}"
        );

        let run = database.run(run_id).await.unwrap().unwrap();
        assert_eq!(run.state, RunState::Finished, "{backend:?}");
        let mut reader = first.follow::<TestEvent>(run.id, 0);
        assert_eq!(joined_text(&read_all(&mut reader).await), "before after");
    }
}

#[tokio::test]
async fn heartbeats_notice_a_lost_lease_without_any_write() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let mut config = quiet_config();
        config.lease.heartbeat = Duration::from_millis(30);
        let first = Runs::with_instance(database.clone(), "first", config);
        let second = Runs::with_instance(database.clone(), "second", quiet_config());
        let writer = first.start::<TestEvent>(new_run()).await.unwrap();

        // Heartbeats keep renewing the lease; expire it until the other instance wins a claim.
        let mut taker = None;
        for _ in 0..100 {
            expire(database, writer.run_id()).await;
            taker = second.claim::<TestEvent>(writer.run_id()).await.unwrap();
            if taker.is_some() {
                break;
            }
        }
        let taker = taker.expect("the other instance claims the run");
        tokio::time::timeout(Duration::from_secs(5), writer.lost())
            .await
            .expect("the next heartbeat finds the lease lost");
        assert!(
            matches!(writer.push(text("x")), Err(RunError::LeaseLost)),
            "{backend:?}"
        );
        taker.finish(RunState::Interrupted).await.unwrap();
    }
}

#[tokio::test]
async fn heartbeats_keep_a_lease_longer_than_its_duration() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let mut config = quiet_config();
        config.lease = LeaseConfig {
            lease: Duration::from_millis(600),
            heartbeat: Duration::from_millis(100),
        };
        let first = Runs::with_instance(database.clone(), "first", config);
        let second = Runs::with_instance(database.clone(), "second", quiet_config());
        let writer = first.start::<TestEvent>(new_run()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            second
                .claim::<TestEvent>(writer.run_id())
                .await
                .unwrap()
                .is_none(),
            "{backend:?}: a renewed lease was taken"
        );
        writer.push(text("still mine")).unwrap();
        writer.finish(RunState::Finished).await.unwrap();
    }
}

/// Writes `marks` marks with text between them, flushing now and then, and finishes.
async fn write_marks(writer: RunWriter<TestEvent>, marks: u32) {
    for number in 1..=marks {
        writer.push(TestEvent::Mark { number }).unwrap();
        writer.push(text("a")).unwrap();
        writer.push(text("b")).unwrap();
        if number % 5 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if number % 17 == 0 {
            writer.flush().await.unwrap();
        }
    }
    writer.finish(RunState::Finished).await.unwrap();
}

/// Checks that `records` are the events after `after_seq`, numbered without gaps, marks in order.
fn check_sequence(records: &[RunEventRecord<TestEvent>], after_seq: i64, context: &str) {
    for (offset, record) in records.iter().enumerate() {
        assert_eq!(
            record.seq,
            after_seq + 1 + i64::try_from(offset).unwrap(),
            "{context}: gap or duplicate"
        );
    }
    let marks: Vec<u32> = records
        .iter()
        .filter_map(|record| match record.event {
            TestEvent::Mark { number } => Some(number),
            TestEvent::Text { .. } => None,
        })
        .collect();
    assert!(
        marks.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "{context}: marks out of order: {marks:?}"
    );
}

#[tokio::test]
async fn a_reader_on_another_instance_follows_a_run_without_gaps_or_duplicates() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let writer_side = Runs::with_instance(database.clone(), "writer", quiet_config());
        // On Postgres the other instance never polls within the test: only NOTIFY wakes it.
        // On SQLite (one process in production) it polls.
        let mut reader_config = quiet_config();
        if backend == Backend::Sqlite {
            reader_config.poll_interval = Duration::from_millis(20);
        }
        let reader_side = Runs::with_instance(database.clone(), "reader", reader_config);
        reader_side.listen().await.unwrap();

        let writer = writer_side.start::<TestEvent>(new_run()).await.unwrap();
        let run_id = writer.run_id();
        // Some events before the readers come.
        writer.push(text("first")).unwrap();
        writer.flush().await.unwrap();
        writer.push(text("second")).unwrap();
        writer.flush().await.unwrap();

        let whole: Vec<_> = (0..3)
            .map(|_| reader_side.follow::<TestEvent>(run_id, 0))
            .collect();
        let from_two = reader_side.follow::<TestEvent>(run_id, 2);
        let readers: Vec<_> = whole
            .into_iter()
            .map(|reader| (0, reader))
            .chain([(2, from_two)])
            .map(|(after, mut reader)| {
                tokio::spawn(async move { (after, read_all(&mut reader).await) })
            })
            .collect();
        write_marks(writer, 60).await;

        let mut lengths = Vec::new();
        for reader in readers {
            let (after, records) = reader.await.unwrap();
            check_sequence(&records, after, &format!("{backend:?} after {after}"));
            lengths.push(i64::try_from(records.len()).unwrap() + after);
        }
        let last_seq = database.run(run_id).await.unwrap().unwrap().last_seq;
        assert!(
            lengths.iter().all(|length| *length == last_seq),
            "{lengths:?} vs {last_seq}"
        );

        // A reader arriving after the end, from an arbitrary number, gets the rest once.
        for after in [0, 1, last_seq / 2, last_seq - 1, last_seq] {
            let mut late = reader_side.follow::<TestEvent>(run_id, after);
            let records = read_all(&mut late).await;
            check_sequence(&records, after, &format!("{backend:?} late after {after}"));
            assert_eq!(i64::try_from(records.len()).unwrap(), last_seq - after);
        }
        assert_eq!(
            reader_side.notifier().followed_runs(),
            0,
            "subscriptions are dropped"
        );
    }
}

#[tokio::test]
async fn a_local_reader_is_woken_in_memory() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        // Never polls, and never listens: only the local writer's wake-ups move the reader.
        let runs = Runs::with_instance(test_database.database.clone(), "one", quiet_config());
        let writer = runs.start::<TestEvent>(new_run()).await.unwrap();
        let mut reader = runs.follow::<TestEvent>(writer.run_id(), 0);
        let reading = tokio::spawn(async move { read_all(&mut reader).await });
        write_marks(writer, 30).await;
        let records = reading.await.unwrap();
        check_sequence(&records, 0, &format!("{backend:?}"));
        assert_eq!(joined_text(&records), "ab".repeat(30));
    }
}

#[tokio::test]
async fn recovery_takes_over_a_dead_owners_runs() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let dead_side = Runs::with_instance(database.clone(), "dead", quiet_config());
        let rescuer = Runs::with_instance(database.clone(), "rescuer", quiet_config());

        let dead = dead_side.start::<TestEvent>(new_run()).await.unwrap();
        dead.push(text("partial")).unwrap();
        dead.flush().await.unwrap();
        let run_id = dead.run_id();
        // The owner dies: its writer stops renewing.
        drop(dead);
        let alive = dead_side.start::<TestEvent>(new_run()).await.unwrap();

        // While the lease lasts, nothing is recovered.
        let recovered = rescuer
            .recover::<TestEvent, _, _>(KIND, |writer| writer.finish(RunState::Interrupted))
            .await
            .unwrap();
        assert_eq!(recovered, 0, "{backend:?}");

        expire(database, run_id).await;
        let recovered = rescuer
            .recover::<TestEvent, _, _>(KIND, |writer| async move {
                assert_eq!(
                    writer.run().last_seq,
                    1,
                    "the handler sees the events so far"
                );
                writer.finish(RunState::Interrupted).await
            })
            .await
            .unwrap();
        assert_eq!(recovered, 1, "{backend:?}");
        let run = database.run(run_id).await.unwrap().unwrap();
        assert_eq!(run.state, RunState::Interrupted);
        assert_eq!(run.lease_owner, None);
        let mut reader = rescuer.follow::<TestEvent>(run_id, 0);
        assert_eq!(joined_text(&read_all(&mut reader).await), "partial");

        // The live run was not touched.
        let live = database.run(alive.run_id()).await.unwrap().unwrap();
        assert_eq!(live.state, RunState::Running);
        assert_eq!(live.lease_owner.as_deref(), Some("dead"));
        alive.finish(RunState::Finished).await.unwrap();
    }
}

#[tokio::test]
async fn a_released_run_is_claimed_at_once_and_goes_on() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let leaving = Runs::with_instance(database.clone(), "leaving", quiet_config());
        let staying = Runs::with_instance(database.clone(), "staying", quiet_config());
        let writer = leaving.start::<TestEvent>(new_run()).await.unwrap();
        let run_id = writer.run_id();
        writer.push(text("one ")).unwrap();
        writer.release().await.unwrap();

        let writer = staying
            .claim::<TestEvent>(run_id)
            .await
            .unwrap()
            .expect("a released run is claimable at once");
        writer.push(text("two")).unwrap();
        writer.finish(RunState::Finished).await.unwrap();
        let mut reader = staying.follow::<TestEvent>(run_id, 0);
        assert_eq!(
            joined_text(&read_all(&mut reader).await),
            "one two",
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_stop_asked_for_elsewhere_reaches_the_writer_by_notification_or_heartbeat() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        // Without notifications (never listening) only the holder's heartbeat tells it.
        let mut beating = quiet_config();
        beating.lease.heartbeat = Duration::from_millis(50);
        let holder = Runs::with_instance(database.clone(), "holder", beating);
        let asker = Runs::with_instance(database.clone(), "asker", quiet_config());
        let writer = holder.start::<TestEvent>(new_run()).await.unwrap();
        assert!(!writer.is_stop_requested());
        assert!(asker.request_stop(writer.run_id()).await.unwrap());
        tokio::time::timeout(Duration::from_secs(5), writer.stop_requested())
            .await
            .expect("the next heartbeat sees the stop");
        assert!(writer.is_stop_requested(), "{backend:?}");
        // The holder still writes: it ends the run as its stop does.
        writer.push(text("stopped")).unwrap();
        writer.finish(RunState::Finished).await.unwrap();

        // With notifications (Postgres), at once, however rare the heartbeats.
        if backend == Backend::Postgres {
            let holder = Runs::with_instance(database.clone(), "listening", quiet_config());
            holder.listen().await.unwrap();
            let writer = holder.start::<TestEvent>(new_run()).await.unwrap();
            asker.request_stop(writer.run_id()).await.unwrap();
            tokio::time::timeout(Duration::from_secs(5), writer.stop_requested())
                .await
                .expect("the notification tells the holder");
            writer.finish(RunState::Finished).await.unwrap();
        }

        // Asked for on the holder's own instance: its writer is told at once.
        let writer = holder.start::<TestEvent>(new_run()).await.unwrap();
        let quiet = Runs::with_instance(database.clone(), "quiet", quiet_config());
        let quiet_writer = quiet.start::<TestEvent>(new_run()).await.unwrap();
        quiet.request_stop(quiet_writer.run_id()).await.unwrap();
        assert!(quiet_writer.is_stop_requested(), "{backend:?}");
        assert!(
            !writer.is_stop_requested(),
            "{backend:?}: a stop is of one run only"
        );
        // A run that has ended has nothing to stop.
        let run_id = quiet_writer.run_id();
        quiet_writer.finish(RunState::Finished).await.unwrap();
        assert!(!quiet.request_stop(run_id).await.unwrap(), "{backend:?}");
        writer.finish(RunState::Finished).await.unwrap();
    }
}
