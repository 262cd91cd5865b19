//! Runs under leases, on both databases: fencing (a former holder writes nothing, neither events
//! nor an answer's message), claims (one winner among concurrent claimers), numbering (no gap,
//! no duplicate, in order), recovery of expired leases, stops asked for by another instance,
//! the retention's deletion (one round per period, among instances), and the Postgres
//! announcements.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use chrono::Utc;
use db::ids::RunId;
use db::queries::runs::{NewRun, NewRunEvent, RunLease, RunSignal};
use db::sea_orm::{ActiveModelTrait, ActiveValue::Set};
use db::tables::messages::{MessageRole, MessageStatus};
use db::tables::runs::{self, RunState};
use db::testing::{TestDatabase, backends};
use db::{Backend, Database, Error};

const LONG_LEASE: Duration = Duration::from_secs(60);
const SHORT_LEASE: Duration = Duration::from_millis(50);

fn new_run(kind: &str) -> NewRun {
    NewRun {
        kind: kind.to_owned(),
        owner_user_id: None,
        subject: Some("subject".to_owned()),
    }
}

fn events(texts: &[&str]) -> Vec<NewRunEvent> {
    texts
        .iter()
        .map(|text| NewRunEvent {
            kind: "text".to_owned(),
            payload: serde_json::json!({ "text": text }).to_string(),
        })
        .collect()
}

/// A `chat_answer` run held by `instance` (token 1).
async fn held_run(database: &Database, instance: &str, lease: Duration) -> runs::Model {
    database
        .create_run(new_run("chat_answer"), instance, lease)
        .await
        .unwrap()
}

/// Checks that a write was refused as coming from a former holder.
#[track_caller]
fn assert_lease_lost<T: std::fmt::Debug>(result: Result<T, Error>, backend: Backend) {
    assert!(
        matches!(result, Err(Error::LeaseLost)),
        "{backend:?}: {result:?}"
    );
}

/// Sets a run's `updated_at` (when it ended, for the retention).
async fn age(database: &Database, run_id: RunId, days: i64) {
    let mut run: runs::ActiveModel = database.run(run_id).await.unwrap().unwrap().into();
    run.updated_at = Set(Utc::now() - chrono::Duration::days(days));
    run.update(database.connection()).await.unwrap();
}

/// Ends a run's lease now, as if its holder had stopped renewing it long ago.
async fn expire(database: &Database, run_id: RunId) {
    let mut run: runs::ActiveModel = database.run(run_id).await.unwrap().unwrap().into();
    run.lease_expires_at = Set(Some(Utc::now() - chrono::Duration::seconds(1)));
    run.update(database.connection()).await.unwrap();
}

async fn payloads(database: &Database, run_id: RunId) -> Vec<(i64, String)> {
    database
        .run_events_after(run_id, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.seq, event.payload))
        .collect()
}

#[tokio::test]
async fn a_former_holder_writes_nothing() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;

        let run = held_run(database, "instance-a", LONG_LEASE).await;
        assert_eq!(run.fencing_token, 1);
        assert_eq!(run.state, RunState::Running);
        let last = database
            .append_run_events(run.id, "instance-a", 1, &events(&["one", "two"]))
            .await
            .unwrap();
        assert_eq!(last, 2, "{backend:?}");

        // While the lease lasts nobody else can take the run.
        let held = held_run(database, "instance-a", LONG_LEASE).await;
        assert!(
            database
                .claim_run(held.id, "instance-b", LONG_LEASE)
                .await
                .unwrap()
                .is_none(),
            "{backend:?}: a live lease was taken"
        );

        // Once it expired, B takes it with a new token.
        expire(database, run.id).await;
        let claimed = database
            .claim_run(run.id, "instance-b", LONG_LEASE)
            .await
            .unwrap()
            .expect("an expired lease is claimable");
        assert_eq!(claimed.fencing_token, 2, "{backend:?}");
        assert_eq!(claimed.lease_owner.as_deref(), Some("instance-b"));

        // A is refused everything, and nothing of it is written.
        let refused = database
            .append_run_events(run.id, "instance-a", 1, &events(&["stale"]))
            .await;
        assert_lease_lost(refused, backend);
        let refused = database
            .heartbeat_run(run.id, "instance-a", 1, LONG_LEASE)
            .await;
        assert_lease_lost(refused, backend);
        let refused = database
            .finish_run(
                run.id,
                "instance-a",
                1,
                RunState::Finished,
                &events(&["stale end"]),
            )
            .await;
        assert_lease_lost(refused, backend);
        let refused = database
            .release_run(run.id, "instance-a", 1, &events(&["stale"]))
            .await;
        assert_lease_lost(refused, backend);
        // The right token from the wrong instance is refused as well.
        let refused = database
            .append_run_events(run.id, "instance-a", 2, &events(&["stale"]))
            .await;
        assert_lease_lost(refused, backend);

        let stored = database.run(run.id).await.unwrap().unwrap();
        assert_eq!(
            stored.last_seq, 2,
            "{backend:?}: the stale writes moved last_seq"
        );
        assert_eq!(stored.state, RunState::Running);
        assert_eq!(stored.lease_owner.as_deref(), Some("instance-b"));
        assert_eq!(payloads(database, run.id).await.len(), 2, "{backend:?}");

        // B goes on from where A stopped, and ends the run.
        let last = database
            .append_run_events(run.id, "instance-b", 2, &events(&["three"]))
            .await
            .unwrap();
        assert_eq!(last, 3);
        let last = database
            .finish_run(
                run.id,
                "instance-b",
                2,
                RunState::Interrupted,
                &events(&["end"]),
            )
            .await
            .unwrap();
        assert_eq!(last, 4);
        let ended = database.run(run.id).await.unwrap().unwrap();
        assert_eq!(ended.state, RunState::Interrupted);
        assert_eq!(ended.lease_owner, None);
        assert_eq!(ended.lease_expires_at, None);
        let stored: Vec<i64> = payloads(database, run.id)
            .await
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(stored, vec![1, 2, 3, 4], "{backend:?}");

        // An ended run can be neither written nor claimed.
        let refused = database
            .append_run_events(run.id, "instance-b", 2, &events(&["late"]))
            .await;
        assert_lease_lost(refused, backend);
        assert!(
            database
                .claim_run(run.id, "instance-c", LONG_LEASE)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn an_expired_lease_refuses_appends_until_renewed_and_heartbeats_extend_it() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let run = held_run(database, "instance-a", SHORT_LEASE).await;
        let renewed_until = database
            .heartbeat_run(run.id, "instance-a", 1, LONG_LEASE)
            .await
            .unwrap();
        assert!(renewed_until.expires_at > run.lease_expires_at.unwrap());
        assert!(!renewed_until.stop_requested);
        tokio::time::sleep(SHORT_LEASE * 3).await;
        // The heartbeat gave it a long lease: the append passes.
        database
            .append_run_events(run.id, "instance-a", 1, &events(&["one"]))
            .await
            .unwrap();

        let short = held_run(database, "instance-a", SHORT_LEASE).await;
        tokio::time::sleep(SHORT_LEASE * 3).await;
        let refused = database
            .append_run_events(short.id, "instance-a", 1, &events(&["late"]))
            .await;
        assert_lease_lost(refused, backend);
        assert_eq!(payloads(database, short.id).await.len(), 0);
    }
}

#[tokio::test]
async fn concurrent_claimers_have_exactly_one_winner() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let run = database.queue_run(new_run("agent_task")).await.unwrap();
        assert_eq!(run.state, RunState::Queued);

        for round in 1..=4_i64 {
            let claimers: Vec<_> = (0..24)
                .map(|claimer| {
                    let database = database.clone();
                    tokio::spawn(async move {
                        let instance = format!("instance-{claimer}");
                        database
                            .claim_run(run.id, &instance, LONG_LEASE)
                            .await
                            .map(|claimed| claimed.map(|claimed| (instance, claimed)))
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for claimer in claimers {
                if let Some(winner) = claimer.await.unwrap().unwrap() {
                    winners.push(winner);
                }
            }
            assert_eq!(winners.len(), 1, "{backend:?} round {round}: {winners:?}");
            let (instance, claimed) = winners.remove(0);
            assert_eq!(claimed.fencing_token, round, "{backend:?}");
            assert_eq!(claimed.lease_owner.as_deref(), Some(instance.as_str()));
            let stored = database.run(run.id).await.unwrap().unwrap();
            assert_eq!(stored.fencing_token, round);
            assert_eq!(stored.lease_owner, Some(instance.clone()));
            // Handing the lease back makes the run claimable again at once.
            database
                .release_run(run.id, &instance, round, &[])
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn events_come_in_order_without_gaps_or_duplicates() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let run = held_run(database, "instance-a", LONG_LEASE).await;
        let mut expected = Vec::new();
        for batch in 0..12 {
            let texts: Vec<String> = (0..(batch % 4))
                .map(|item| format!("{batch}.{item}"))
                .collect();
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            expected.extend(texts.iter().map(|text| (*text).to_owned()));
            let last = database
                .append_run_events(run.id, "instance-a", 1, &events(&texts))
                .await
                .unwrap();
            assert_eq!(last, i64::try_from(expected.len()).unwrap());
        }
        // Pages of every size, from every starting point, give the rest exactly once, in order.
        let total = i64::try_from(expected.len()).unwrap();
        for after in [0, 1, 5, total - 1, total] {
            for limit in [1_u64, 3, 7, 100] {
                let mut seen = Vec::new();
                let mut last_seen = after;
                loop {
                    let page = database
                        .run_events_after(run.id, last_seen, limit)
                        .await
                        .unwrap();
                    if page.is_empty() {
                        break;
                    }
                    assert!(page.len() as u64 <= limit);
                    for event in page {
                        assert_eq!(event.seq, last_seen + 1, "{backend:?}: gap or disorder");
                        last_seen = event.seq;
                        let text: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
                        seen.push(text["text"].as_str().unwrap().to_owned());
                    }
                }
                let start = usize::try_from(after).unwrap();
                assert_eq!(
                    seen,
                    expected[start..],
                    "{backend:?} after {after} limit {limit}"
                );
            }
        }
    }
}

#[tokio::test]
async fn recovery_finds_runs_whose_owner_died() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let dead = held_run(database, "dead-instance", LONG_LEASE).await;
        database
            .append_run_events(dead.id, "dead-instance", 1, &events(&["partial"]))
            .await
            .unwrap();
        expire(database, dead.id).await;
        let alive = held_run(database, "live-instance", LONG_LEASE).await;
        let other_kind = database
            .create_run(new_run("agent_task"), "dead-instance", LONG_LEASE)
            .await
            .unwrap();
        expire(database, other_kind.id).await;
        let ended = held_run(database, "dead-instance", LONG_LEASE).await;
        database
            .finish_run(ended.id, "dead-instance", 1, RunState::Finished, &[])
            .await
            .unwrap();

        let claimable: Vec<_> = database
            .claimable_runs("chat_answer", 100)
            .await
            .unwrap()
            .into_iter()
            .map(|run| run.id)
            .collect();
        assert_eq!(claimable, vec![dead.id], "{backend:?}");
        assert!(!claimable.contains(&alive.id) && !claimable.contains(&other_kind.id));

        let recovered = database
            .claim_run(dead.id, "rescuer", LONG_LEASE)
            .await
            .unwrap()
            .unwrap();
        database
            .finish_run(
                dead.id,
                "rescuer",
                recovered.fencing_token,
                RunState::Interrupted,
                &[],
            )
            .await
            .unwrap();
        let stored = database.run(dead.id).await.unwrap().unwrap();
        assert_eq!(stored.state, RunState::Interrupted);
        assert_eq!(
            payloads(database, dead.id).await.len(),
            1,
            "the partial stays"
        );
        assert!(
            database
                .claimable_runs("chat_answer", 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn postgres_announces_writes() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let test_database = TestDatabase::migrated(Backend::Postgres).await;
    let database = &test_database.database;
    let mut listener = database
        .listen_to_runs()
        .await
        .unwrap()
        .expect("Postgres listens");
    let run = held_run(database, "instance-a", LONG_LEASE).await;
    database
        .append_run_events(run.id, "instance-a", 1, &events(&["one", "two"]))
        .await
        .unwrap();
    // A refused write announces nothing.
    let refused = database
        .append_run_events(run.id, "instance-x", 1, &events(&["stale"]))
        .await;
    assert!(matches!(refused, Err(Error::LeaseLost)));
    database
        .finish_run(
            run.id,
            "instance-a",
            1,
            RunState::Finished,
            &events(&["end"]),
        )
        .await
        .unwrap();
    let mut notices = Vec::new();
    while notices.len() < 2 {
        let notice = tokio::time::timeout(Duration::from_secs(5), listener.next())
            .await
            .expect("a notice within 5 s")
            .unwrap();
        match notice {
            Some(RunSignal::Written(notice)) => notices.push((notice.run_id, notice.last_seq)),
            Some(RunSignal::StopRequested(run_id)) => panic!("no stop was asked for {run_id}"),
            None => {}
        }
    }
    assert_eq!(notices, vec![(run.id, 2), (run.id, 3)]);

    // A stop asked for is announced as one (once: asking again announces nothing), and the
    // holder's next write is announced after it.
    let stopping = held_run(database, "instance-a", LONG_LEASE).await;
    assert!(database.request_run_stop(stopping.id).await.unwrap());
    assert!(database.request_run_stop(stopping.id).await.unwrap());
    database
        .append_run_events(stopping.id, "instance-a", 1, &events(&["last"]))
        .await
        .unwrap();
    let mut signals = Vec::new();
    while signals.len() < 2 {
        let signal = tokio::time::timeout(Duration::from_secs(5), listener.next())
            .await
            .expect("a notice within 5 s")
            .unwrap();
        signals.extend(signal);
    }
    assert_eq!(
        signals,
        vec![
            RunSignal::StopRequested(stopping.id),
            RunSignal::Written(db::RunNotice {
                run_id: stopping.id,
                last_seq: 1
            })
        ]
    );

    let sqlite = TestDatabase::migrated(Backend::Sqlite).await;
    assert!(sqlite.database.listen_to_runs().await.unwrap().is_none());
}

#[tokio::test]
async fn a_stop_asked_for_elsewhere_reaches_the_holder_at_its_heartbeat() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let run = held_run(database, "owner", LONG_LEASE).await;
        let beat = database
            .heartbeat_run(run.id, "owner", 1, LONG_LEASE)
            .await
            .unwrap();
        assert!(!beat.stop_requested, "{backend:?}");

        // Asked for on another instance: recorded on the row, seen at the next heartbeat.
        assert!(database.request_run_stop(run.id).await.unwrap());
        let stored = database.run(run.id).await.unwrap().unwrap();
        assert!(stored.stop_requested_at.is_some(), "{backend:?}");
        assert_eq!(stored.lease_owner.as_deref(), Some("owner"), "{backend:?}");
        let beat = database
            .heartbeat_run(run.id, "owner", 1, LONG_LEASE)
            .await
            .unwrap();
        assert!(beat.stop_requested, "{backend:?}");
        // Asking again is asking once; the request changes nothing else.
        assert!(database.request_run_stop(run.id).await.unwrap());
        assert_eq!(
            database
                .run(run.id)
                .await
                .unwrap()
                .unwrap()
                .stop_requested_at,
            stored.stop_requested_at,
            "{backend:?}"
        );

        // The holder ends the run: there is nothing left to stop.
        database
            .finish_run(run.id, "owner", 1, RunState::Interrupted, &[])
            .await
            .unwrap();
        assert!(
            !database.request_run_stop(run.id).await.unwrap(),
            "{backend:?}"
        );
        assert!(!database.request_run_stop(RunId::new()).await.unwrap());
        let other = held_run(database, "owner", LONG_LEASE).await;
        assert!(
            !database
                .heartbeat_run(other.id, "owner", 1, LONG_LEASE)
                .await
                .unwrap()
                .stop_requested,
            "{backend:?}: a stop is of one run only"
        );
    }
}

#[tokio::test]
async fn a_stale_holders_message_save_is_refused_and_changes_nothing() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let user = database
            .create_user(
                db::NewUser {
                    email: "ada@example.com".into(),
                    name: "Ada".into(),
                    password_hash: "hash".into(),
                },
                Utc::now(),
            )
            .await
            .unwrap();
        let conversation = database
            .create_conversation(
                user.id,
                None,
                "Chat".into(),
                "chat".into(),
                None,
                Utc::now(),
            )
            .await
            .unwrap();
        let answer = database
            .append_messages(
                conversation.id,
                vec![db::NewMessage {
                    role: MessageRole::Assistant,
                    content: String::new(),
                    status: MessageStatus::Streaming,
                    metadata: None,
                }],
                Utc::now(),
            )
            .await
            .unwrap()
            .remove(0);
        let run = held_run(database, "stale", LONG_LEASE).await;
        let stale = RunLease {
            run_id: run.id,
            instance: "stale".into(),
            token: 1,
        };
        // While it holds the lease, its saves go through.
        database
            .update_message_under_lease(
                &stale,
                answer.id,
                Some("Partial".into()),
                None,
                None,
                Utc::now(),
            )
            .await
            .unwrap();

        // Another instance recovers the answer and saves what it found.
        expire(database, run.id).await;
        let claimed = database
            .claim_run(run.id, "rescuer", LONG_LEASE)
            .await
            .unwrap()
            .unwrap();
        let rescuer = RunLease {
            run_id: run.id,
            instance: "rescuer".into(),
            token: claimed.fencing_token,
        };
        database
            .update_message_under_lease(
                &rescuer,
                answer.id,
                Some("Partial".into()),
                Some(MessageStatus::Interrupted),
                Some(serde_json::json!({ "reason": "went away" })),
                Utc::now(),
            )
            .await
            .unwrap();
        let (saved, _) = database
            .find_message(user.id, answer.id)
            .await
            .unwrap()
            .unwrap();

        // The former holder's final save is refused and changes nothing; so is the right
        // token from another instance.
        let refuses = |lease: RunLease, text: &'static str| {
            let saved = saved.clone();
            async move {
                let refused = database
                    .update_message_under_lease(
                        &lease,
                        answer.id,
                        Some(text.into()),
                        Some(MessageStatus::Complete),
                        Some(serde_json::json!({})),
                        Utc::now(),
                    )
                    .await;
                assert_lease_lost(refused, backend);
                let (after, _) = database
                    .find_message(user.id, answer.id)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    after, saved,
                    "{backend:?}: the save of {lease:?} changed the message"
                );
            }
        };
        refuses(stale.clone(), "Partial and the whole rest").await;
        refuses(
            RunLease {
                instance: "stale".into(),
                ..rescuer.clone()
            },
            "Overwritten",
        )
        .await;
        assert_eq!(saved.status, MessageStatus::Interrupted);
        assert_eq!(saved.content, "Partial");

        // Once the run has ended, not even its last holder saves.
        database
            .finish_run(run.id, "rescuer", rescuer.token, RunState::Interrupted, &[])
            .await
            .unwrap();
        refuses(rescuer, "Late").await;

        // The same instance's former claim (an older token) is refused too.
        let again = held_run(database, "owner", LONG_LEASE).await;
        expire(database, again.id).await;
        let reclaimed = database
            .claim_run(again.id, "owner", LONG_LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reclaimed.fencing_token, 2);
        refuses(
            RunLease {
                run_id: again.id,
                instance: "owner".into(),
                token: 1,
            },
            "Former",
        )
        .await;
    }
}

#[tokio::test]
async fn ended_runs_past_the_retention_are_deleted_with_their_events_once() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        // Ended 20 days ago (three, to cross a batch), ended yesterday, still going 20 days on.
        let mut old = Vec::new();
        for _ in 0..3 {
            let run = held_run(database, "owner", LONG_LEASE).await;
            database
                .finish_run(run.id, "owner", 1, RunState::Finished, &events(&["a", "b"]))
                .await
                .unwrap();
            age(database, run.id, 20).await;
            old.push(run.id);
        }
        let recent = held_run(database, "owner", LONG_LEASE).await;
        database
            .finish_run(recent.id, "owner", 1, RunState::Failed, &events(&["c"]))
            .await
            .unwrap();
        age(database, recent.id, 1).await;
        let going = held_run(database, "owner", LONG_LEASE).await;
        database
            .append_run_events(going.id, "owner", 1, &events(&["d"]))
            .await
            .unwrap();
        age(database, going.id, 20).await;

        let cutoff = Utc::now() - chrono::Duration::days(14);
        assert_eq!(
            database.delete_runs_ended_before(cutoff, 2).await.unwrap(),
            3,
            "{backend:?}"
        );
        for run_id in &old {
            assert!(
                database.run(*run_id).await.unwrap().is_none(),
                "{backend:?}"
            );
            assert!(payloads(database, *run_id).await.is_empty(), "{backend:?}");
        }
        assert_eq!(payloads(database, recent.id).await.len(), 1, "{backend:?}");
        assert_eq!(payloads(database, going.id).await.len(), 1, "{backend:?}");
        assert!(database.run(going.id).await.unwrap().is_some());
        // Idempotent: again, nothing.
        assert_eq!(
            database.delete_runs_ended_before(cutoff, 2).await.unwrap(),
            0
        );
    }
}

#[tokio::test]
async fn of_instances_asking_at_once_exactly_one_takes_a_periodic_round() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let period = chrono::Duration::hours(1);
        let now = Utc::now();
        let askers: Vec<_> = (0..12)
            .map(|asker| {
                let database = database.clone();
                tokio::spawn(async move {
                    database
                        .take_periodic_round("cleanup", &format!("instance-{asker}"), period, now)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut taken = 0;
        for asker in askers {
            taken += usize::from(asker.await.unwrap());
        }
        assert_eq!(taken, 1, "{backend:?}");
        // Not again within the period; once it passed, again by one.
        let later = now + chrono::Duration::minutes(59);
        assert!(
            !database
                .take_periodic_round("cleanup", "instance-0", period, later)
                .await
                .unwrap()
        );
        let next = now + chrono::Duration::minutes(61);
        assert!(
            database
                .take_periodic_round("cleanup", "instance-1", period, next)
                .await
                .unwrap()
        );
        assert!(
            !database
                .take_periodic_round("cleanup", "instance-2", period, next)
                .await
                .unwrap()
        );
    }
}
