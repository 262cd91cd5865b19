//! Runs under leases, on both databases: fencing (a former holder writes nothing), claims (one
//! winner among concurrent claimers), numbering (no gap, no duplicate, in order), recovery of
//! expired leases, and the Postgres announcements.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use chrono::Utc;
use db::queries::runs::{NewRun, NewRunEvent};
use db::sea_orm::{ActiveModelTrait, ActiveValue::Set};
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

/// Ends a run's lease now, as if its holder had stopped renewing it long ago.
async fn expire(database: &Database, run_id: db::ids::RunId) {
    let mut run: runs::ActiveModel = database.run(run_id).await.unwrap().unwrap().into();
    run.lease_expires_at = Set(Some(Utc::now() - chrono::Duration::seconds(1)));
    run.update(database.connection()).await.unwrap();
}

async fn payloads(database: &Database, run_id: db::ids::RunId) -> Vec<(i64, String)> {
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

        let run = database
            .create_run(new_run("chat_answer"), "instance-a", LONG_LEASE)
            .await
            .unwrap();
        assert_eq!(run.fencing_token, 1);
        assert_eq!(run.state, RunState::Running);
        let last = database
            .append_run_events(run.id, "instance-a", 1, &events(&["one", "two"]))
            .await
            .unwrap();
        assert_eq!(last, 2, "{backend:?}");

        // While the lease lasts nobody else can take the run.
        let held = database
            .create_run(new_run("chat_answer"), "instance-a", LONG_LEASE)
            .await
            .unwrap();
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
        assert!(
            matches!(refused, Err(Error::LeaseLost)),
            "{backend:?}: {refused:?}"
        );
        let refused = database
            .heartbeat_run(run.id, "instance-a", 1, LONG_LEASE)
            .await;
        assert!(
            matches!(refused, Err(Error::LeaseLost)),
            "{backend:?}: {refused:?}"
        );
        let refused = database
            .finish_run(
                run.id,
                "instance-a",
                1,
                RunState::Finished,
                &events(&["stale end"]),
            )
            .await;
        assert!(
            matches!(refused, Err(Error::LeaseLost)),
            "{backend:?}: {refused:?}"
        );
        let refused = database
            .release_run(run.id, "instance-a", 1, &events(&["stale"]))
            .await;
        assert!(
            matches!(refused, Err(Error::LeaseLost)),
            "{backend:?}: {refused:?}"
        );
        // The right token from the wrong instance is refused as well.
        let refused = database
            .append_run_events(run.id, "instance-a", 2, &events(&["stale"]))
            .await;
        assert!(
            matches!(refused, Err(Error::LeaseLost)),
            "{backend:?}: {refused:?}"
        );

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
        assert!(
            matches!(refused, Err(Error::LeaseLost)),
            "{backend:?}: {refused:?}"
        );
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
        let run = database
            .create_run(new_run("chat_answer"), "instance-a", SHORT_LEASE)
            .await
            .unwrap();
        let renewed_until = database
            .heartbeat_run(run.id, "instance-a", 1, LONG_LEASE)
            .await
            .unwrap();
        assert!(renewed_until > run.lease_expires_at.unwrap());
        tokio::time::sleep(SHORT_LEASE * 3).await;
        // The heartbeat gave it a long lease: the append passes.
        database
            .append_run_events(run.id, "instance-a", 1, &events(&["one"]))
            .await
            .unwrap();

        let short = database
            .create_run(new_run("chat_answer"), "instance-a", SHORT_LEASE)
            .await
            .unwrap();
        tokio::time::sleep(SHORT_LEASE * 3).await;
        let refused = database
            .append_run_events(short.id, "instance-a", 1, &events(&["late"]))
            .await;
        assert!(
            matches!(refused, Err(Error::LeaseLost)),
            "{backend:?}: {refused:?}"
        );
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
        let run = database
            .create_run(new_run("chat_answer"), "instance-a", LONG_LEASE)
            .await
            .unwrap();
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
        let dead = database
            .create_run(new_run("chat_answer"), "dead-instance", LONG_LEASE)
            .await
            .unwrap();
        database
            .append_run_events(dead.id, "dead-instance", 1, &events(&["partial"]))
            .await
            .unwrap();
        expire(database, dead.id).await;
        let alive = database
            .create_run(new_run("chat_answer"), "live-instance", LONG_LEASE)
            .await
            .unwrap();
        let other_kind = database
            .create_run(new_run("agent_task"), "dead-instance", LONG_LEASE)
            .await
            .unwrap();
        expire(database, other_kind.id).await;
        let ended = database
            .create_run(new_run("chat_answer"), "dead-instance", LONG_LEASE)
            .await
            .unwrap();
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
    let run = database
        .create_run(new_run("chat_answer"), "instance-a", LONG_LEASE)
        .await
        .unwrap();
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
        if let Some(notice) = notice {
            notices.push((notice.run_id, notice.last_seq));
        }
    }
    assert_eq!(notices, vec![(run.id, 2), (run.id, 3)]);

    let sqlite = TestDatabase::migrated(Backend::Sqlite).await;
    assert!(sqlite.database.listen_to_runs().await.unwrap().is_none());
}
