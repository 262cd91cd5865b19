//! Agent tasks on both databases: the journal (in order, one entry per key), step reservations
//! (a step counts once, every limit stops them, exact under concurrency), usage recorded once
//! per key, state changes that cannot undo a cancel, and scoping by owner.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use chrono::Utc;
use db::ids::UserId;
use db::queries::agent_tasks::{
    NewAgentTask, StepReservation, TaskLimit, TaskLimits, TaskStateChange,
};
use db::tables::agent_tasks::{self, TaskState};
use db::testing::{TestDatabase, backends};
use db::{Database, NewUser, ProjectFields};

async fn user(database: &Database, email: &str) -> UserId {
    database
        .create_user(
            NewUser {
                email: email.to_owned(),
                name: email.to_owned(),
                password_hash: "hash".to_owned(),
            },
            Utc::now(),
        )
        .await
        .unwrap()
        .id
}

async fn task(database: &Database, owner: UserId, limits: TaskLimits) -> agent_tasks::Model {
    let project = database
        .create_project(
            owner,
            ProjectFields {
                name: "demo".to_owned(),
                description: None,
                repository_url: None,
            },
            Utc::now(),
            None,
        )
        .await
        .unwrap();
    database
        .create_agent_task(NewAgentTask {
            project_id: project.id,
            owner_user_id: owner,
            title: "Fix the bug".to_owned(),
            instructions: "Fix the bug in main.rs".to_owned(),
            base: "{}".to_owned(),
            limits,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn the_journal_keeps_order_and_one_entry_per_key() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let owner = user(database, "ada@example.com").await;
        let first = task(database, owner, TaskLimits::default()).await;
        let second = task(database, owner, TaskLimits::default()).await;

        assert!(
            database
                .append_agent_journal(first.id, "a", "1")
                .await
                .unwrap()
        );
        assert!(
            database
                .append_agent_journal(first.id, "b", "2")
                .await
                .unwrap()
        );
        assert!(
            !database
                .append_agent_journal(first.id, "a", "again")
                .await
                .unwrap()
        );
        assert!(
            database
                .append_agent_journal(second.id, "a", "other")
                .await
                .unwrap()
        );
        assert!(
            database
                .append_agent_journal(first.id, "c", "3")
                .await
                .unwrap()
        );
        assert_eq!(
            database.agent_journal(first.id).await.unwrap(),
            ["1", "2", "3"],
            "{backend:?}"
        );
        assert_eq!(database.agent_journal(second.id).await.unwrap(), ["other"]);

        // Concurrent writers of the same keys: each key once, numbered without a gap.
        let mut writers = Vec::new();
        for _ in 0..4 {
            let database = database.clone();
            let task = second.id;
            writers.push(tokio::spawn(async move {
                let mut written = 0;
                for key in 0..10 {
                    let entry = format!("{key}");
                    loop {
                        match database
                            .append_agent_journal(task, &format!("k{key}"), &entry)
                            .await
                        {
                            Ok(true) => {
                                written += 1;
                                break;
                            }
                            Ok(false) => break,
                            // Two writers numbering the same entry: one of them retries.
                            Err(_) => tokio::task::yield_now().await,
                        }
                    }
                }
                written
            }));
        }
        let mut written = 0;
        for writer in writers {
            written += writer.await.unwrap();
        }
        assert_eq!(written, 10, "{backend:?}");
        assert_eq!(database.agent_journal(second.id).await.unwrap().len(), 11);
    }
}

#[tokio::test]
async fn steps_are_reserved_once_and_every_limit_stops_them() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let owner = user(database, "ada@example.com").await;
        let limited = task(
            database,
            owner,
            TaskLimits {
                steps: Some(2),
                tokens: Some(1_000),
                cost_micros: Some(500),
                wall_time_seconds: None,
            },
        )
        .await;
        let id = limited.id;
        assert_eq!(
            database.reserve_agent_step(id, 1).await.unwrap(),
            StepReservation::Reserved
        );
        assert_eq!(
            database.reserve_agent_step(id, 1).await.unwrap(),
            StepReservation::Reserved
        );
        assert_eq!(
            database.reserve_agent_step(id, 2).await.unwrap(),
            StepReservation::Reserved
        );
        assert_eq!(
            database.reserve_agent_step(id, 3).await.unwrap(),
            StepReservation::Exceeded(TaskLimit::Steps),
            "{backend:?}"
        );
        let row = database.agent_task(id).await.unwrap().unwrap();
        assert_eq!((row.steps_used, row.last_step), (2, 2));

        // More budget: the task goes on.
        database
            .set_agent_task_limits(
                id,
                TaskLimits {
                    steps: Some(10),
                    tokens: Some(1_000),
                    cost_micros: Some(500),
                    wall_time_seconds: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            database.reserve_agent_step(id, 3).await.unwrap(),
            StepReservation::Reserved
        );

        // Usage once per key; the cost limit then stops the next step.
        assert!(
            database
                .record_agent_usage(id, "step-3", 100, 300)
                .await
                .unwrap()
        );
        assert!(
            !database
                .record_agent_usage(id, "step-3", 100, 300)
                .await
                .unwrap()
        );
        assert_eq!(
            database.reserve_agent_step(id, 4).await.unwrap(),
            StepReservation::Reserved
        );
        assert!(
            database
                .record_agent_usage(id, "step-4", 100, 300)
                .await
                .unwrap()
        );
        let row = database.agent_task(id).await.unwrap().unwrap();
        assert_eq!((row.tokens_used, row.cost_used_micros), (200, 600));
        assert_eq!(
            database.reserve_agent_step(id, 5).await.unwrap(),
            StepReservation::Exceeded(TaskLimit::Cost)
        );
        assert!(
            database
                .record_agent_usage(id, "step-5", 900, 0)
                .await
                .unwrap()
        );
        database
            .set_agent_task_limits(
                id,
                TaskLimits {
                    steps: None,
                    tokens: Some(1_000),
                    cost_micros: None,
                    wall_time_seconds: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            database.reserve_agent_step(id, 5).await.unwrap(),
            StepReservation::Exceeded(TaskLimit::Tokens)
        );
        database
            .set_agent_task_limits(
                id,
                TaskLimits {
                    wall_time_seconds: Some(0),
                    ..TaskLimits::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            database.reserve_agent_step(id, 5).await.unwrap(),
            StepReservation::Exceeded(TaskLimit::WallTime)
        );

        // Concurrent reservers of new steps against a limit of 5 more: exactly 5 pass.
        let racing = task(
            database,
            owner,
            TaskLimits {
                steps: Some(5),
                ..TaskLimits::default()
            },
        )
        .await;
        let mut reservers = Vec::new();
        for step in 1..=20_u64 {
            let database = database.clone();
            reservers.push(tokio::spawn(async move {
                database.reserve_agent_step(racing.id, step).await.unwrap()
            }));
        }
        let mut reserved = 0;
        for reserver in reservers {
            if reserver.await.unwrap() == StepReservation::Reserved {
                reserved += 1;
            }
        }
        // A later step can pass an earlier one, which then finds itself reserved already
        // (`last_step` passed it): never more than the limit counted.
        let row = database.agent_task(racing.id).await.unwrap().unwrap();
        assert!(row.steps_used <= 5, "{backend:?}: {}", row.steps_used);
        assert!(reserved >= 5, "{backend:?}: {reserved}");
    }
}

#[tokio::test]
async fn states_change_only_from_the_states_named_and_reads_are_scoped_by_owner() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        let ada = user(database, "ada@example.com").await;
        let bob = user(database, "bob@example.com").await;
        let mine = task(database, ada, TaskLimits::default()).await;

        assert!(
            database
                .agent_task_of(ada, mine.id)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            database
                .agent_task_of(bob, mine.id)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(database.agent_tasks_of(ada, None).await.unwrap().len(), 1);
        assert!(database.agent_tasks_of(bob, None).await.unwrap().is_empty());
        assert_eq!(
            database
                .agent_tasks_of(ada, Some(mine.project_id))
                .await
                .unwrap()
                .len(),
            1
        );

        let cancelled = TaskStateChange {
            state: TaskState::Cancelled,
            pause_reason: None,
            summary: None,
        };
        assert!(
            database
                .set_agent_task_state(mine.id, cancelled, &[TaskState::Running, TaskState::Paused])
                .await
                .unwrap()
        );
        // A late "finished" from the loop does not undo the cancel.
        let finished = TaskStateChange {
            state: TaskState::Finished,
            pause_reason: None,
            summary: Some("done".to_owned()),
        };
        assert!(
            !database
                .set_agent_task_state(mine.id, finished, &[TaskState::Running])
                .await
                .unwrap(),
            "{backend:?}"
        );
        let row = database.agent_task(mine.id).await.unwrap().unwrap();
        assert_eq!(row.state, TaskState::Cancelled);
        assert!(row.ended_at.is_some());
        assert_eq!(row.summary, None);
    }
}
