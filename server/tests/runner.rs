//! Running a project's commands end to end: the server's own binary as the sandbox's helper, a
//! Python project whose test fails and then passes, the output as numbered run events (through
//! the runs reader and `GET /api/runs/<id>/events`), the tier's concurrent-run reservation,
//! stop, the audit log and the list of last runs; across two instances of one database (each
//! with its own pool, runner and runs), a stop asked for on the instance that does not
//! supervise the run, and many concurrent starts admitting exactly the plan's concurrent runs.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use db::testing::{TestDatabase, backends};
use services::runner::{CommandRunEvent, Runner, RunnerSettings, StartRun};
use services::runs::{FlushConfig, LeaseConfig, Runs, RunsConfig};

const CALC_BROKEN: &str = "def add(a, b):\n    return a - b\n";
const CALC_FIXED: &str = "def add(a, b):\n    return a + b\n";
const TEST_CALC: &str = "import unittest\n\nfrom calc import add\n\n\nclass AddTest(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n\nif __name__ == '__main__':\n    unittest.main()\n";

fn services_with_runner(
    database: &TestDatabase,
    worktrees: &std::path::Path,
) -> services::Services {
    with_runner(support::services_for(database), worktrees)
}

fn with_runner(services: services::Services, worktrees: &std::path::Path) -> services::Services {
    with_runner_settings(services, RunnerSettings::new(worktrees.to_path_buf()))
}

fn with_runner_settings(
    mut services: services::Services,
    settings: RunnerSettings,
) -> services::Services {
    let runner = Runner::probe(
        settings,
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_server")),
    );
    let status = runner.status();
    assert!(
        status.available,
        "this machine must run sandboxed commands for this test: {:?} (fix: {:?})",
        status.reason, status.fix
    );
    services.runner = std::sync::Arc::new(runner);
    services
}

/// Every event of the run, until it ends.
async fn events_of(
    services: &services::Services,
    user: &services::AuthenticatedUser,
    run: db::ids::RunId,
) -> Vec<(i64, CommandRunEvent)> {
    let mut reader = services.follow_command_run(user, run, 0).await.unwrap();
    let mut events = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(60), reader.next())
            .await
            .expect("the run ended within a minute")
            .unwrap();
        match next {
            Some(record) => events.push((record.seq, record.event)),
            None => return events,
        }
    }
}

fn output_of(events: &[(i64, CommandRunEvent)]) -> String {
    events
        .iter()
        .filter_map(|(_, event)| match event {
            CommandRunEvent::Output { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn outcome_of(events: &[(i64, CommandRunEvent)]) -> services::runner::RunOutcome {
    events
        .iter()
        .find_map(|(_, event)| match event {
            CommandRunEvent::Finished(outcome) => Some(outcome.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no finished event in {events:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_then_a_passing_one_streamed_limited_stopped_and_audited() {
    for backend in backends() {
        failing_then_passing(backend).await;
    }
}

/// The whole of a person's use of Run on one database backend.
async fn failing_then_passing(backend: db::Backend) {
    let database = TestDatabase::migrated(backend).await;
    let folder = tempfile::tempdir().unwrap();
    // The sandbox uid must be able to search every folder above the worktrees.
    std::fs::set_permissions(
        folder.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let services = services_with_runner(&database, &folder.path().join("worktrees"));
    let (_admin, _) = support::sign_up_with(&services, "admin@example.com").await;
    let (ada, ada_cookie) = support::sign_up_with(&services, "ada@example.com").await;
    let (bob, bob_cookie) = support::sign_up_with(&services, "bob@example.com").await;
    let meta = services::RequestMeta::default();
    let project = services
        .create_project(
            &ada,
            services::projects::ProjectInput {
                name: "calc".into(),
                description: String::new(),
                repository_url: String::new(),
            },
            &meta,
        )
        .await
        .unwrap()
        .id;
    let calc = services
        .create_file(&ada, project, "calc.py", CALC_BROKEN.into())
        .await
        .unwrap();
    services
        .create_file(&ada, project, "test_calc.py", TEST_CALC.into())
        .await
        .unwrap();

    // Suggested from the files, not saved, not run.
    let view = services.project_commands(&ada, project).await.unwrap();
    assert!(view.saved.is_empty());
    assert!(
        view.suggested
            .iter()
            .any(|command| command.name == "test" && command.command_line.contains("pytest")),
        "{view:?}"
    );
    assert!(
        services
            .command_runs(&ada, project)
            .await
            .unwrap()
            .is_empty()
    );

    services
        .save_project_command(&ada, project, "test", "python3 -m unittest -v", &meta)
        .await
        .unwrap();
    // Another person's project is not found; free text is for administrators.
    assert!(matches!(
        services
            .start_command_run(&bob, project, StartRun::Named("test".into()), &meta)
            .await,
        Err(services::Error::NotFound)
    ));
    assert!(matches!(
        services
            .start_command_run(&ada, project, StartRun::FreeText("id".into()), &meta)
            .await,
        Err(services::Error::Forbidden)
    ));

    let failing = services
        .start_command_run(&ada, project, StartRun::Named("test".into()), &meta)
        .await
        .unwrap();
    let events = events_of(&services, &ada, failing).await;
    let numbers: Vec<i64> = events.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(numbers, (1..=numbers.len() as i64).collect::<Vec<_>>());
    assert!(
        matches!(&events[0].1, CommandRunEvent::Started { command_name, files, .. } if command_name == "test" && *files == 2),
        "{events:?}"
    );
    let output = output_of(&events);
    assert!(output.contains("FAILED"), "{output}");
    assert!(output.contains("test_calc.py"), "{output}");
    let outcome = outcome_of(&events);
    assert_eq!(outcome.exit_code, Some(1), "{output}");
    assert!(!outcome.timed_out && !outcome.stopped);

    // The same events over HTTP, numbered; after the last one, 204.
    let router = support::router_for(services.clone());
    let path = format!("/api/runs/{failing}/events");
    let reply = support::send(
        &router,
        support::same_origin_request("GET", &path, &ada_cookie, Vec::new()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("event: run"), "{}", reply.body);
    assert!(reply.body.contains("id: 1\n"), "{}", reply.body);
    assert!(
        reply.body.contains("\"type\":\"finished\""),
        "{}",
        reply.body
    );
    let last = numbers.last().copied().unwrap();
    let mut request = support::same_origin_request("GET", &path, &ada_cookie, Vec::new());
    request
        .headers_mut()
        .insert("last-event-id", last.to_string().parse().unwrap());
    assert_eq!(
        support::send(&router, request).await.status,
        StatusCode::NO_CONTENT
    );
    let stolen = support::send(
        &router,
        support::same_origin_request("GET", &path, &bob_cookie, Vec::new()),
    )
    .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);

    // The free tier runs one command at a time: a second (in another project) is refused while
    // one runs; stop ends it.
    let other = slow_projects(&services, &ada, 1).await[0];
    let slow = services
        .start_command_run(&ada, other, StartRun::Named("slow".into()), &meta)
        .await
        .unwrap();
    let refused = services
        .start_command_run(&ada, project, StartRun::Named("test".into()), &meta)
        .await;
    assert!(
        matches!(refused, Err(services::Error::LimitReached(_))),
        "{refused:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    services.stop_command_run(&ada, slow).await.unwrap();
    let stopped = outcome_of(&events_of(&services, &ada, slow).await);
    assert!(stopped.stopped, "{stopped:?}");
    assert!(stopped.duration_ms < 20_000, "{stopped:?}");

    // The fix is saved: the next run uses it and passes.
    services
        .save_file(&ada, project, calc.id, calc.version, CALC_FIXED.into())
        .await
        .unwrap();
    let passing = services
        .start_command_run(&ada, project, StartRun::Named("test".into()), &meta)
        .await
        .unwrap();
    let events = events_of(&services, &ada, passing).await;
    assert_eq!(
        outcome_of(&events).exit_code,
        Some(0),
        "{}",
        output_of(&events)
    );
    assert!(output_of(&events).contains("OK"));

    // The last runs, newest first, each with how it ended; every run audited.
    let runs = services.command_runs(&ada, project).await.unwrap();
    assert_eq!(runs.len(), 2, "the slow run was another project's");
    assert_eq!(runs[0].run_id, passing);
    assert_eq!(
        runs[1]
            .outcome
            .as_ref()
            .and_then(|outcome| outcome.exit_code),
        Some(1)
    );
    assert_eq!(runs[1].command_line, "python3 -m unittest -v");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let audited: Vec<serde_json::Value> = database
        .database
        .audit_entries_of(ada.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == "project.command.run")
        .filter_map(|entry| entry.detail)
        .collect();
    assert_eq!(audited.len(), 3, "{audited:?}");
    assert!(audited.iter().any(|detail| {
        detail["exit_code"] == 1
            && detail["command"] == "test"
            && detail["revision"]
                .as_str()
                .is_some_and(|revision| revision.len() == 12)
    }));
    // The concurrent-run reservation was given back each time.
    assert_eq!(
        database
            .database
            .plan_counter(ada.id, services::policy::ACTIVE_RUNS_COUNTER)
            .await
            .unwrap(),
        Some(0)
    );
}

/// Connects to the port given on the loopback and says whether it could, as `<who> connected`
/// or `<who> failed` (`python3 connect.py <who> <port>`).
const CONNECT_PY: &str = "import socket, sys\nwho, port = sys.argv[1], int(sys.argv[2])\ntry:\n    socket.create_connection(('127.0.0.1', port), 2).close()\n    print(who, 'connected')\nexcept OSError:\n    print(who, 'failed')\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_has_the_network_only_where_the_administrator_allows_it_and_a_command_never() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for allowed in [false, true] {
        let database = TestDatabase::migrated(db::Backend::Sqlite).await;
        let folder = worktrees_folder();
        let mut settings = RunnerSettings::new(folder.path().join("worktrees"));
        settings.setup_network = allowed;
        let services = with_runner_settings(support::services_for(&database), settings);
        let (_admin, _) = support::sign_up_with(&services, "admin@example.com").await;
        let (ada, _) = support::sign_up_with(&services, "ada@example.com").await;
        let meta = services::RequestMeta::default();
        let project = services
            .create_project(
                &ada,
                services::projects::ProjectInput {
                    name: "downloads".into(),
                    description: String::new(),
                    repository_url: String::new(),
                },
                &meta,
            )
            .await
            .unwrap()
            .id;
        services
            .create_file(&ada, project, "connect.py", CONNECT_PY.into())
            .await
            .unwrap();
        for (name, who) in [("setup", "setup"), ("test", "command")] {
            services
                .save_project_command(
                    &ada,
                    project,
                    name,
                    &format!("python3 connect.py {who} {port}"),
                    &meta,
                )
                .await
                .unwrap();
        }
        let run = services
            .start_command_run(&ada, project, StartRun::Named("test".into()), &meta)
            .await
            .unwrap();
        let events = events_of(&services, &ada, run).await;
        let output = output_of(&events);
        let setup = if allowed {
            "setup connected"
        } else {
            "setup failed"
        };
        assert!(output.contains(setup), "allowed {allowed}: {output}");
        assert!(
            output.contains("command failed"),
            "allowed {allowed}: {output}"
        );
        assert_eq!(outcome_of(&events).exit_code, Some(0), "{output}");
    }
}

/// A folder for worktrees that the sandbox uid can search.
fn worktrees_folder() -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        folder.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    folder
}

/// An instance named `name` over a pool of its own, with its own runner (worktrees in
/// `worktrees`) and runs (short leases: a stop asked for elsewhere is seen within 200 ms on
/// SQLite, where no notification wakes it). Free accounts may run `concurrent_runs` at once.
async fn instance(
    url: &str,
    name: &str,
    worktrees: &std::path::Path,
    concurrent_runs: u64,
) -> services::Services {
    let database = db::Database::connect(url).await.unwrap();
    let mut services = with_runner(
        services::Services::new(
            database.clone(),
            services::secrets::MasterKey::generate(1).unwrap(),
        ),
        worktrees,
    );
    services.runs = Runs::with_instance(
        database,
        name,
        RunsConfig {
            lease: LeaseConfig {
                lease: Duration::from_secs(2),
                heartbeat: Duration::from_millis(200),
            },
            flush: FlushConfig::default(),
            poll_interval: Duration::from_millis(100),
            page_size: 500,
        },
    );
    services.runs.listen().await.unwrap();
    let tiers = include_str!("../services/data/tiers.toml")
        .replace("max_projects = 3\n", "max_projects = 50\n")
        .replace(
            "concurrent_runs = 1\n",
            &format!("concurrent_runs = {concurrent_runs}\n"),
        );
    services.tiers = std::sync::Arc::new(services::policy::TierPolicy::parse(&tiers).unwrap());
    services
}

/// `count` projects of `user`, each with a command `slow` that prints and sleeps.
async fn slow_projects(
    services: &services::Services,
    user: &services::AuthenticatedUser,
    count: usize,
) -> Vec<db::ids::ProjectId> {
    let meta = services::RequestMeta::default();
    let mut projects = Vec::new();
    for number in 0..count {
        let project = services
            .create_project(
                user,
                services::projects::ProjectInput {
                    name: format!("slow-{number}"),
                    description: String::new(),
                    repository_url: String::new(),
                },
                &meta,
            )
            .await
            .unwrap()
            .id;
        services
            .save_project_command(user, project, "slow", "echo started; sleep 30", &meta)
            .await
            .unwrap();
        projects.push(project);
    }
    projects
}

async fn active_runs(services: &services::Services, user: &services::AuthenticatedUser) -> u64 {
    services
        .database
        .plan_counter(user.id, services::policy::ACTIVE_RUNS_COUNTER)
        .await
        .unwrap()
        .unwrap_or(0)
}

/// Waits (at most 10 s) until the user's concurrent runs are all given back.
async fn all_given_back(services: &services::Services, user: &services::AuthenticatedUser) {
    for _ in 0..100 {
        if active_runs(services, user).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        active_runs(services, user).await,
        0,
        "the runs were given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_stopped_from_the_instance_that_does_not_supervise_it() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let folder = worktrees_folder();
        let supervisor = instance(&database.url, "supervisor", &folder.path().join("a"), 1).await;
        let other = instance(&database.url, "other", &folder.path().join("b"), 1).await;
        support::sign_up_with(&supervisor, "admin@example.com").await;
        let (ada, _) = support::sign_up_with(&supervisor, "ada@example.com").await;
        let (eve, _) = support::sign_up_with(&supervisor, "eve@example.com").await;
        let project = slow_projects(&supervisor, &ada, 1).await[0];
        let run = supervisor
            .start_command_run(
                &ada,
                project,
                StartRun::Named("slow".into()),
                &services::RequestMeta::default(),
            )
            .await
            .unwrap();
        let mut reader = other.follow_command_run(&ada, run, 0).await.unwrap();
        // Once the command printed, it runs.
        loop {
            let record = tokio::time::timeout(Duration::from_secs(30), reader.next())
                .await
                .expect("the command starts")
                .unwrap()
                .expect("the run goes on");
            if matches!(&record.event, CommandRunEvent::Output { text, .. } if text.contains("started"))
            {
                break;
            }
        }

        let context = format!("{backend:?}");
        assert!(
            matches!(
                other.stop_command_run(&eve, run).await,
                Err(services::Error::NotFound)
            ),
            "{context}: only its owner stops a run"
        );
        let asked = std::time::Instant::now();
        other.stop_command_run(&ada, run).await.unwrap();
        let events = events_of(&other, &ada, run).await;
        let waited = asked.elapsed();
        let outcome = outcome_of(&events);
        assert!(outcome.stopped, "{context}: {outcome:?}");
        assert_ne!(outcome.exit_code, Some(0), "{context}: {outcome:?}");
        assert!(
            waited < Duration::from_secs(10),
            "{context}: stopped after {waited:?}"
        );
        let stored = other.runs.run(run).await.unwrap().unwrap();
        assert!(stored.state.is_terminal(), "{context}: {stored:?}");
        assert!(stored.stop_requested_at.is_some(), "{context}");
        all_given_back(&other, &ada).await;
        // An ended run: stopping it again changes nothing.
        other.stop_command_run(&ada, run).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_starts_over_two_instances_admit_exactly_the_plans_concurrent_runs() {
    const LIMIT: u64 = 3;
    const STARTS: usize = 24;
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let folder = worktrees_folder();
        let first = instance(&database.url, "first", &folder.path().join("a"), LIMIT).await;
        let second = instance(&database.url, "second", &folder.path().join("b"), LIMIT).await;
        support::sign_up_with(&first, "admin@example.com").await;
        let (ada, _) = support::sign_up_with(&first, "ada@example.com").await;
        let projects = slow_projects(&first, &ada, STARTS).await;

        // Every start at once, half on each instance, each for a project of its own.
        let starts: Vec<_> = projects
            .iter()
            .enumerate()
            .map(|(number, project)| {
                let services = if number % 2 == 0 { &first } else { &second }.clone();
                let (ada, project) = (ada.clone(), *project);
                tokio::spawn(async move {
                    services
                        .start_command_run(
                            &ada,
                            project,
                            StartRun::Named("slow".into()),
                            &services::RequestMeta::default(),
                        )
                        .await
                })
            })
            .collect();
        let mut admitted = Vec::new();
        for start in starts {
            match start.await.unwrap() {
                Ok(run) => admitted.push(run),
                Err(services::Error::LimitReached(_)) => {}
                Err(other) => panic!("{backend:?}: a start failed otherwise: {other:?}"),
            }
        }
        let context = format!("{backend:?}");
        assert_eq!(admitted.len() as u64, LIMIT, "{context}: {admitted:?}");
        assert_eq!(active_runs(&first, &ada).await, LIMIT, "{context}");
        // While they run, one more is refused on either instance.
        for services in [&first, &second] {
            let refused = services
                .start_command_run(
                    &ada,
                    projects[0],
                    StartRun::Named("slow".into()),
                    &services::RequestMeta::default(),
                )
                .await;
            assert!(
                matches!(
                    refused,
                    Err(services::Error::LimitReached(_) | services::Error::Conflict(_))
                ),
                "{context}: {refused:?}"
            );
        }
        assert_eq!(active_runs(&first, &ada).await, LIMIT, "{context}");

        // Stopped from the first instance, whichever supervises them: each slot comes back.
        for run in &admitted {
            first.stop_command_run(&ada, *run).await.unwrap();
        }
        for run in &admitted {
            assert!(
                outcome_of(&events_of(&first, &ada, *run).await).stopped,
                "{context}"
            );
        }
        all_given_back(&first, &ada).await;
    }
}
