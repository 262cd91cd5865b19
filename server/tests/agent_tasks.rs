//! Async agent tasks through the HTTP API, with a scripted upstream speaking OpenAI's wire
//! format, on SQLite and Postgres (the agent crate's own scenarios are in
//! `server/agent/tests/agent_loop.rs`):
//!
//! - happy path: a task edits a file and finishes; its timeline follows as server-sent events;
//!   the change set has the one hunk; applying it writes a new revision (source `agent`); every
//!   tool action is in the audit log; an api_usage row is written per model call;
//! - a file the user changed since the base: a hunk overlapping that change is a conflict and
//!   nothing is written; a hunk elsewhere is merged;
//! - a step budget pauses the task (needs input, with the reason); resuming with more budget
//!   finishes it; a follow-up starts a finished task again and cancel ends it;
//! - isolation: another user cannot see, follow, cancel, review or apply the task (404);
//! - an instance killed mid-task: another instance claims the run and resumes the task from its
//!   journal, asking the model only for what was not answered yet; the same for an instance
//!   frozen at each step boundary (six tasks at once): no response asked twice, no edit applied
//!   twice; and a real server process killed with SIGKILL mid-task, resumed by another process
//!   within the lease and a recovery round;
//! - cancelling a task no loop runs (paused, or its instance died): the journal ends with the
//!   cancel, as the row does, once (recovery writes no second one);
//! - editing a file before accepting: the text is saved as is when the file did not change since
//!   the base, merged in three ways when it did, a conflict (by the hunk of base to text) and
//!   nothing written when the text overlaps the change made since;
//! - a follow-up (sent twice with one key) and a pause through another instance than the one
//!   running the task: the loop gets the follow-up once, at its next step boundary, after the
//!   results it waited for; the pause stops it; resumed elsewhere, it finishes;
//! - a step the task's budget refuses gives the plan's daily request back;
//! - two tasks on one project at once, each with its own worktree and change set; both applied;
//! - a command the sandbox refuses: the refusal reaches the model as the tool's result and is in
//!   the task page's evidence;
//! - hunks rejected with a comment over HTTP: the next request carries the rejection, the comment
//!   and the hunk; the agent edits again and finishes; the change set has the new edit;
//! - a follow-up after finish over HTTP: the task runs again from the whole conversation;
//! - a loop repeating one call pauses as `stuck` (shown by `GET /api/tasks/{id}`);
//! - a provider failing mid-task: the next model of the list answers the later steps;
//! - a malformed tool call and an unknown tool get error results and the task goes on.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::Failpoint;

use axum::Router;
use axum::http::StatusCode;
use chrono::Utc;
use db::ids::ProjectId;
use db::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use db::tables::file_revisions::RevisionSource;
use db::tables::users::{self, Tier};
use db::testing::{TestDatabase, backends};
use db::{Authorship, FileBody};
use llm::testing::{Reply, Upstream, openai};
use serde_json::{Value, json};
use services::runs::{FlushConfig, LeaseConfig, Runs, RunsConfig};
use services::{AuthenticatedUser, Services};
use support::{Reply as HttpReply, same_origin_request, send};

const LIB: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\npub fn double(a: i32) -> i32 {\n    a * 3\n}\n";

fn call(id: &str, name: &str, arguments: &Value) -> Reply {
    Reply::sse(openai::tool_call_stream(
        id,
        name,
        &[&arguments.to_string()],
    ))
}

fn fix_add() -> Reply {
    call(
        "call-1",
        "edit",
        &json!({"path": "src/lib.rs", "old_text": "a - b", "new_text": "a + b"}),
    )
}

fn fix_double() -> Reply {
    call(
        "call-2",
        "edit",
        &json!({"path": "src/lib.rs", "old_text": "a * 3", "new_text": "a * 2"}),
    )
}

fn finish() -> Reply {
    call(
        "call-3",
        "finish",
        &json!({"summary": "Fixed add and double."}),
    )
}

/// A premium user (async mode is in their plan) with the upstream as provider `local`.
async fn premium_user(
    services: &Services,
    email: &str,
    upstream: &Upstream,
) -> (AuthenticatedUser, String) {
    let (mut user, cookie) = support::sign_up_with(services, email).await;
    users::Entity::update_many()
        .col_expr(
            users::Column::Tier,
            db::sea_orm::sea_query::Expr::value(Tier::Premium),
        )
        .filter(users::Column::Id.eq(user.id))
        .exec(services.database.connection())
        .await
        .unwrap();
    user.tier = Tier::Premium;
    support::add_local_provider(services, &user, "local", upstream).await;
    (user, cookie)
}

async fn project_with_lib(services: &Services, user: &AuthenticatedUser) -> ProjectId {
    db::testing::project_with_file(&services.database, user.id, "calc", "src/lib.rs", LIB).await
}

async fn request(
    router: &Router,
    method: &str,
    path: &str,
    cookie: &str,
    body: Value,
) -> HttpReply {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let mut request = same_origin_request(method, path, cookie, bytes);
    request.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    send(router, request).await
}

fn body_of(reply: &HttpReply) -> Value {
    serde_json::from_str(&reply.body)
        .unwrap_or_else(|error| panic!("{error}: {} {}", reply.status, reply.body))
}

/// Waits until the task is no longer running; its state then.
async fn settled(router: &Router, cookie: &str, task: &str) -> Value {
    for _ in 0..200 {
        let reply = request(
            router,
            "GET",
            &format!("/api/tasks/{task}"),
            cookie,
            Value::Null,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let detail = body_of(&reply);
        if detail["state"] != "running" {
            return detail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the task did not settle");
}

async fn create_task(router: &Router, cookie: &str, project: ProjectId) -> String {
    let reply = request(
        router,
        "POST",
        "/api/tasks",
        cookie,
        json!({
            "project_id": project,
            "instructions": "Fix add and double in src/lib.rs.",
            "models": ["local/gpt-4o"],
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    body_of(&reply)["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_task_edits_finishes_and_its_change_set_is_applied_as_new_revisions() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.push(fix_add());
        upstream.push(fix_double());
        upstream.push(finish());

        let task = create_task(&router, &cookie, project).await;
        let detail = settled(&router, &cookie, &task).await;
        assert_eq!(detail["state"], "finished", "{backend:?}: {detail}");
        assert_eq!(detail["summary"], "Fixed add and double.");
        assert_eq!(detail["steps"], 3);
        assert!(detail["tokens"].as_i64().unwrap() > 0);
        assert!(!detail["timeline"].as_array().unwrap().is_empty());
        // Three model calls, each request carrying the previous tool results.
        let received = upstream.received();
        assert_eq!(received.len(), 3, "{backend:?}");
        assert!(
            String::from_utf8_lossy(&received[1].body).contains("call-1"),
            "the second request carries the first tool's result"
        );

        // The list agrees with the task page.
        let list = body_of(&request(&router, "GET", "/api/tasks", &cookie, Value::Null).await);
        assert_eq!(list[0]["id"], task.as_str());
        assert_eq!(list[0]["state"], "finished");
        assert_eq!(list[0]["steps"], detail["steps"]);

        // The timeline as events, then the end; from the middle with Last-Event-ID.
        let events = request(
            &router,
            "GET",
            &format!("/api/tasks/{task}/events"),
            &cookie,
            Value::Null,
        )
        .await;
        assert_eq!(events.status, StatusCode::OK, "{}", events.body);
        assert!(events.body.contains("event: entry"));
        assert!(events.body.contains("event: state"));
        let mut middle = same_origin_request(
            "GET",
            &format!("/api/tasks/{task}/events"),
            &cookie,
            Vec::new(),
        );
        middle
            .headers_mut()
            .insert("last-event-id", axum::http::HeaderValue::from_static("2"));
        let rest = send(&router, middle).await;
        assert!(!rest.body.contains("id: 1\n") && !rest.body.contains("id: 2\n"));
        assert!(rest.body.contains("id: 3\n"), "{}", rest.body);

        // The change set: one file, two hunks.
        let changes = body_of(
            &request(
                &router,
                "GET",
                &format!("/api/tasks/{task}/changes"),
                &cookie,
                Value::Null,
            )
            .await,
        );
        assert_eq!(changes.as_array().unwrap().len(), 1, "{changes}");
        assert_eq!(changes[0]["path"], "src/lib.rs");
        assert_eq!(changes[0]["hunks"].as_array().unwrap().len(), 2);

        // The browser reads the same JSON into the app's wire types (nothing unknown).
        let page: app::types::TaskDetail = serde_json::from_value(detail.clone()).unwrap();
        assert_eq!(page.task.state, "finished");
        assert_eq!(
            page.timeline.len(),
            detail["timeline"].as_array().unwrap().len()
        );
        assert!(
            page.timeline
                .iter()
                .all(|item| item.entry != app::types::TaskEntry::Other),
            "{:?}",
            page.timeline
        );
        let listed: Vec<app::types::TaskSummary> = serde_json::from_value(list.clone()).unwrap();
        assert_eq!(listed[0], page.task);
        let files: Vec<app::types::TaskFileChange> =
            serde_json::from_value(changes.clone()).unwrap();
        assert_eq!(files[0].hunks.len(), 2);

        // Accept the first hunk only: a new revision, by the agent, with that hunk alone.
        let applied = request(
            &router,
            "POST",
            &format!("/api/tasks/{task}/changes/apply"),
            &cookie,
            json!({"files": [{"path": "src/lib.rs", "accepted": [true, false]}]}),
        )
        .await;
        assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
        assert_eq!(body_of(&applied)["applied"], json!(["src/lib.rs"]));
        let file = services
            .database
            .find_file_by_path(project, "src/lib.rs")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(file.content, LIB.replace("a - b", "a + b"));
        assert_eq!(file.version, 2);
        let revisions = services
            .database
            .latest_revisions(file.id, 1)
            .await
            .unwrap();
        assert_eq!(revisions[0].source, RevisionSource::Agent);

        // Every tool action is audited; every model call is an api_usage row.
        let audit = services.database.audit_entries_of(ada.id).await.unwrap();
        assert_eq!(
            audit
                .iter()
                .filter(|entry| entry.action == "agent.tool")
                .count(),
            3,
            "{backend:?}"
        );
        services.flush_usage().await;
        let usage = services.database.recent_usage(ada.id, 10).await.unwrap();
        assert_eq!(
            usage.iter().filter(|row| row.mode == "async").count(),
            3,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_hunk_over_a_change_made_since_the_base_is_a_conflict_and_others_merge() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.push(fix_add());
        upstream.push(fix_double());
        upstream.push(finish());
        let task = create_task(&router, &cookie, project).await;
        assert_eq!(settled(&router, &cookie, &task).await["state"], "finished");

        // The user fixes `add` their own way meanwhile.
        let file = services
            .database
            .find_file_by_path(project, "src/lib.rs")
            .await
            .unwrap()
            .unwrap();
        let theirs = LIB.replace("a - b", "b + a");
        services
            .database
            .save_file(
                project,
                file.id,
                file.version,
                FileBody::Text(theirs.clone()),
                Authorship {
                    author: Some(ada.id),
                    source: RevisionSource::User,
                },
                Utc::now(),
            )
            .await
            .unwrap()
            .unwrap();

        let path = format!("/api/tasks/{task}/changes/apply");
        let both = request(
            &router,
            "POST",
            &path,
            &cookie,
            json!({"files": [{"path": "src/lib.rs", "accepted": [true, true]}]}),
        )
        .await;
        let report = body_of(&both);
        assert_eq!(report["applied"], json!([]), "{backend:?}: {report}");
        assert_eq!(report["conflicts"][0]["hunks"], json!([0]));
        let unchanged = services
            .database
            .find_file_by_path(project, "src/lib.rs")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            unchanged.content, theirs,
            "nothing is written on a conflict"
        );

        // The other hunk alone merges onto their version.
        let second = request(
            &router,
            "POST",
            &path,
            &cookie,
            json!({"files": [{"path": "src/lib.rs", "accepted": [false, true]}]}),
        )
        .await;
        assert_eq!(body_of(&second)["applied"], json!(["src/lib.rs"]));
        let merged = services
            .database
            .find_file_by_path(project, "src/lib.rs")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(merged.content, theirs.replace("a * 3", "a * 2"));
    }
}

#[tokio::test]
async fn another_user_cannot_see_follow_cancel_or_review_a_task() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, ada_cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let (_bob, bob_cookie) = premium_user(&services, "bob@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        // The model takes its time: the task is running while Bob tries.
        upstream.push(fix_add().first_byte_delay(Duration::from_millis(1500)));
        upstream.push(finish());
        let task = create_task(&router, &ada_cookie, project).await;

        // Bob cannot start a task on Ada's project either.
        let on_hers = request(
            &router,
            "POST",
            "/api/tasks",
            &bob_cookie,
            json!({"project_id": project, "instructions": "Delete everything."}),
        )
        .await;
        assert_eq!(on_hers.status, StatusCode::NOT_FOUND, "{backend:?}");

        for (method, path, body) in [
            ("GET", format!("/api/tasks/{task}"), Value::Null),
            ("GET", format!("/api/tasks/{task}/events"), Value::Null),
            ("GET", format!("/api/tasks/{task}/changes"), Value::Null),
            ("POST", format!("/api/tasks/{task}/cancel"), Value::Null),
            ("POST", format!("/api/tasks/{task}/pause"), Value::Null),
            ("POST", format!("/api/tasks/{task}/resume"), json!({})),
            (
                "POST",
                format!("/api/tasks/{task}/follow-up"),
                json!({"text": "and also this"}),
            ),
            (
                "POST",
                format!("/api/tasks/{task}/changes/apply"),
                json!({"files": []}),
            ),
            (
                "POST",
                format!("/api/tasks/{task}/changes/reject"),
                json!({"hunks": [], "comment": "no"}),
            ),
        ] {
            let reply = request(&router, method, &path, &bob_cookie, body).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{backend:?}: {method} {path}: {}",
                reply.body
            );
        }
        let list = body_of(&request(&router, "GET", "/api/tasks", &bob_cookie, Value::Null).await);
        assert_eq!(list, json!([]));

        // Ada's task went on untouched.
        let detail = settled(&router, &ada_cookie, &task).await;
        assert_eq!(detail["state"], "finished", "{backend:?}: {detail}");

        // Without a session: refused.
        let anonymous = send(
            &router,
            axum::http::Request::builder()
                .method("GET")
                .uri(format!("/api/tasks/{task}"))
                .header("host", "127.0.0.1:3000")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    }
}

/// Short leases, so that recovery comes within a test.
fn runs_config() -> RunsConfig {
    RunsConfig {
        lease: LeaseConfig {
            lease: Duration::from_secs(1),
            heartbeat: Duration::from_millis(200),
        },
        flush: FlushConfig::default(),
        poll_interval: Duration::from_millis(100),
        page_size: 500,
    }
}

/// An instance on a runtime of its own, which the test kills: its tasks are dropped where they
/// stand and nothing of them runs again, as with `kill -9`.
struct DoomedInstance {
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    services: Services,
    runtime: tokio::runtime::Handle,
}

impl DoomedInstance {
    async fn start(url: &str) -> Self {
        Self::start_with(url, None).await
    }

    /// An instance whose tasks call `failpoints` at each step boundary.
    async fn start_with(url: &str, failpoints: Option<services::tasks::TaskFailpointHook>) -> Self {
        let (handle_sender, handle_receiver) = std::sync::mpsc::channel();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        // A frozen task blocks its worker for good: a second one drops the instance's other
        // tasks when it is killed (their transactions rolled back, as a dead process's are).
        let workers = if failpoints.is_some() { 2 } else { 1 };
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .unwrap();
            handle_sender.send(runtime.handle().clone()).unwrap();
            killed.recv().unwrap_or(());
            runtime.shutdown_background();
        });
        let runtime: tokio::runtime::Handle = handle_receiver.recv().unwrap();
        let url = url.to_owned();
        let services = runtime
            .spawn(async move {
                let database = db::Database::connect(&url).await.unwrap();
                let mut services = support::services_with_gateway_over(database.clone());
                services.runs = Runs::with_instance(database, "doomed", runs_config());
                if let Some(hook) = failpoints {
                    services.tasks = Arc::new(services::tasks::LiveTasks::with_failpoints(hook));
                }
                services
            })
            .await
            .unwrap();
        Self {
            kill: Some(kill),
            thread: Some(thread),
            services,
            runtime,
        }
    }

    /// Starts the task "Fix add and double" on this instance, as `user`.
    async fn start_task(
        &self,
        user: AuthenticatedUser,
        project: ProjectId,
    ) -> services::tasks::TaskSummary {
        let services = self.services.clone();
        self.runtime
            .spawn(async move {
                services
                    .create_task(
                        &user,
                        services::tasks::NewTask {
                            project_id: project,
                            instructions: "Fix add and double in src/lib.rs.".into(),
                            models: vec!["local/gpt-4o".into()],
                            ..services::tasks::NewTask::default()
                        },
                        &services::RequestMeta::default(),
                    )
                    .await
                    .unwrap()
            })
            .await
            .unwrap()
    }

    fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            kill.send(()).unwrap();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for DoomedInstance {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn a_task_whose_instance_dies_is_resumed_by_another_from_its_journal() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let upstream = Upstream::start().await.unwrap();
        let mut survivor = support::services_with_gateway(&database);
        survivor.runs = Runs::with_instance(database.database.clone(), "survivor", runs_config());
        let router = support::router_for(survivor.clone());
        let (ada, cookie) = premium_user(&survivor, "ada@example.com", &upstream).await;
        let project = project_with_lib(&survivor, &ada).await;

        // The first answer comes at once; the second never comes to the doomed instance.
        upstream.push(fix_add());
        upstream.push(fix_double().first_byte_delay(Duration::from_secs(30)));
        let mut doomed = DoomedInstance::start(&database.url).await;
        let created = doomed.start_task(ada.clone(), project).await;
        let task = created.id.to_string();
        // Wait for the first edit to be done and the second call to be asked.
        for _ in 0..100 {
            if upstream.received().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(upstream.received().len(), 2, "{backend:?}");
        doomed.kill();

        // The survivor's recovery claims the run once its lease expires, and resumes.
        upstream.push(fix_double());
        upstream.push(finish());
        let mut resumed = 0;
        for _ in 0..50 {
            resumed += survivor.recover_agent_tasks().await.unwrap();
            if resumed > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(resumed, 1, "{backend:?}");
        let detail = settled(&router, &cookie, &task).await;
        assert_eq!(detail["state"], "finished", "{backend:?}: {detail}");
        // The first model response was not asked again: 2 calls before the kill, 2 after.
        assert_eq!(upstream.received().len(), 4, "{backend:?}");
        let changes = body_of(
            &request(
                &router,
                "GET",
                &format!("/api/tasks/{task}/changes"),
                &cookie,
                Value::Null,
            )
            .await,
        );
        assert_eq!(
            changes[0]["current"].as_str().unwrap(),
            LIB.replace("a - b", "a + b").replace("a * 3", "a * 2"),
            "each edit applied exactly once"
        );
    }
}

/// Freezes the task for good at `point` of step 2, as `kill -9` at that instant would: the worker
/// thread running it blocks there, so nothing of it runs again (no journal write, no file
/// write); the test then kills the rest of the instance. Says so on `reached`.
fn freeze_at(
    point: Failpoint,
    reached: std::sync::mpsc::Sender<()>,
) -> services::tasks::TaskFailpointHook {
    let reached = Mutex::new(reached);
    Arc::new(move |_, at, step| {
        if at == point && step == 2 {
            reached.lock().unwrap().send(()).unwrap();
            loop {
                std::thread::park();
            }
        }
        false
    })
}

/// One task per boundary of a step (before and after the model call, before and after a tool
/// is recorded as started, before and after its result is saved), each on an instance frozen at
/// that boundary of the second step (an edit), all at once; the surviving instance claims each
/// run once its lease expires and resumes it from the database's journal. Each task asks the
/// model three times in all (no response asked twice), applies each edit once, has one result
/// per tool call, and finishes.
#[tokio::test]
async fn a_task_killed_at_any_step_boundary_is_resumed_from_its_journal_exactly_once() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let mut survivor = support::services_with_gateway(&database);
        survivor.runs = Runs::with_instance(database.database.clone(), "survivor", runs_config());
        let router = support::router_for(survivor.clone());
        let mut runs = Vec::new();
        for (index, point) in Failpoint::ALL.into_iter().enumerate() {
            let upstream = Upstream::start().await.unwrap();
            let (user, cookie) =
                premium_user(&survivor, &format!("user{index}@example.com"), &upstream).await;
            let project = project_with_lib(&survivor, &user).await;
            upstream.push(fix_add());
            upstream.push(fix_double());
            upstream.push(finish());
            let (reached, frozen) = std::sync::mpsc::channel();
            let doomed =
                DoomedInstance::start_with(&database.url, Some(freeze_at(point, reached))).await;
            let created = doomed.start_task(user, project).await;
            runs.push((
                point,
                upstream,
                cookie,
                created.id.to_string(),
                doomed,
                frozen,
            ));
        }
        for (point, upstream, _, _, doomed, frozen) in &mut runs {
            // Polled, not waited on: the upstreams answer on this test's thread.
            let mut reached = false;
            for _ in 0..400 {
                if frozen.try_recv().is_ok() {
                    reached = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                reached,
                "{backend:?} {point:?}: the boundary was not reached"
            );
            let expected_calls = usize::from(*point != Failpoint::BeforeModelCall) + 1;
            assert_eq!(
                upstream.received().len(),
                expected_calls,
                "{backend:?} {point:?}"
            );
            doomed.kill();
        }

        let mut resumed = 0;
        for _ in 0..100 {
            resumed += survivor.recover_agent_tasks().await.unwrap();
            if resumed >= runs.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(resumed, runs.len(), "{backend:?}");
        for (point, upstream, cookie, task, _, _) in &runs {
            let detail = settled(&router, cookie, task).await;
            assert_eq!(
                detail["state"], "finished",
                "{backend:?} {point:?}: {detail}"
            );
            assert_eq!(
                upstream.received().len(),
                3,
                "{backend:?} {point:?}: no model response asked twice"
            );
            let types = timeline_types(&detail);
            assert_eq!(
                types.iter().filter(|kind| *kind == "tool_done").count(),
                3,
                "{backend:?} {point:?}: one result per call: {types:?}"
            );
            let changes = body_of(
                &request(
                    &router,
                    "GET",
                    &format!("/api/tasks/{task}/changes"),
                    cookie,
                    Value::Null,
                )
                .await,
            );
            assert_eq!(
                changes[0]["current"].as_str().unwrap(),
                LIB.replace("a - b", "a + b").replace("a * 3", "a * 2"),
                "{backend:?} {point:?}: each edit applied exactly once"
            );
        }
    }
}

/// Two real server processes on Postgres: a task started on the first, killed with SIGKILL
/// while the model is answering its second step, is resumed by the second process once the
/// lease (3 s) runs out, asking the model only for the step that was not answered, and finishes
/// with each edit applied once. Prints how long after the kill the task was resumed.
#[tokio::test]
async fn a_task_survives_the_kill_9_of_its_server_process() {
    use services::ExposeSecret;
    use support::processes::{Children, ServerSettings};

    let Some(backend) = backends()
        .into_iter()
        .find(|backend| *backend == db::Backend::Postgres)
    else {
        eprintln!("NOTE: the kill -9 of a server process runs on Postgres only: skipped");
        return;
    };
    const LEASE: Duration = Duration::from_secs(3);
    let database = TestDatabase::migrated(backend).await;
    let folders = tempfile::tempdir().unwrap();
    let upstream = Upstream::start().await.unwrap();
    upstream.push(fix_add());
    // The first process never gets this answer: it dies waiting for it.
    upstream.push(fix_double().first_byte_delay(Duration::from_secs(60)));
    upstream.push(fix_double());
    upstream.push(finish());
    let key = services::secrets::MasterKey::generate(1).unwrap();
    let encoded_key = key.encode();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut children = Children::default();
    let (ports, _) = ServerSettings {
        database_url: &database.url,
        folder: folders.path(),
        upstream: upstream.address(),
        lease: LEASE,
        master_key: encoded_key.expose_secret(),
    }
    .start(2, &mut children, &client)
    .await;
    let mut services = Services::new(database.database.clone(), key);
    services.ai = support::services_with_gateway(&database).ai;
    let (user, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
    let project = project_with_lib(&services, &user).await;
    let call_on = |port: u16, method: reqwest::Method, path: &str, body: Option<Value>| {
        let base = format!("http://127.0.0.1:{port}");
        let mut request = client
            .request(method, format!("{base}{path}"))
            .header("cookie", &cookie)
            .header("origin", &base);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let reply = request.send().await.unwrap();
            let status = reply.status();
            let text = reply.text().await.unwrap();
            assert!(status.is_success(), "{status}: {text}");
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    let created = call_on(
        ports[0],
        reqwest::Method::POST,
        "/api/tasks",
        Some(json!({
            "project_id": project,
            "instructions": "Fix add and double in src/lib.rs.",
            "models": ["local/gpt-4o"],
        })),
    )
    .await;
    let task = created["id"].as_str().unwrap().to_owned();
    let waiting = Instant::now();
    while upstream.received().len() < 2 {
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "the second step was not asked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    children.kill(0);
    let killed_at = Instant::now();
    while upstream.received().len() < 3 {
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "the task was not resumed after the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed_after = killed_at.elapsed();
    eprintln!(
        "a task resumed {resumed_after:?} after the kill -9 of its process (lease {LEASE:?})"
    );
    // The lease, a recovery round (every half lease) and slack for a loaded machine.
    assert!(resumed_after < LEASE * 3, "{resumed_after:?}");
    let mut detail = Value::Null;
    for _ in 0..200 {
        detail = call_on(
            ports[1],
            reqwest::Method::GET,
            &format!("/api/tasks/{task}"),
            None,
        )
        .await;
        if detail["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(detail["state"], "finished", "{detail}");
    assert_eq!(
        upstream.received().len(),
        4,
        "no model response asked twice"
    );
    let changes = call_on(
        ports[1],
        reqwest::Method::GET,
        &format!("/api/tasks/{task}/changes"),
        None,
    )
    .await;
    assert_eq!(
        changes[0]["current"].as_str().unwrap(),
        LIB.replace("a - b", "a + b").replace("a * 3", "a * 2"),
        "each edit applied exactly once"
    );
}

#[tokio::test]
async fn a_budget_pauses_the_task_and_more_budget_continues_it_and_cancel_ends_it() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.push(fix_add());
        upstream.push(fix_double());
        upstream.push(finish());
        let reply = request(
            &router,
            "POST",
            "/api/tasks",
            &cookie,
            json!({
                "project_id": project,
                "instructions": "Fix add and double in src/lib.rs.",
                "models": ["local/gpt-4o"],
                "max_steps": 1,
            }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let task = body_of(&reply)["id"].as_str().unwrap().to_owned();

        // One step, then the step budget pauses it: needs input, not dead.
        let paused = settled(&router, &cookie, &task).await;
        assert_eq!(paused["state"], "paused", "{backend:?}: {paused}");
        assert_eq!(paused["pause_reason"]["kind"], "budget");
        assert_eq!(paused["pause_reason"]["which"], "steps");
        assert_eq!(upstream.received().len(), 1);

        // Continue with more budget: it finishes.
        let resumed = request(
            &router,
            "POST",
            &format!("/api/tasks/{task}/resume"),
            &cookie,
            json!({"max_steps": 10}),
        )
        .await;
        assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
        let finished = settled(&router, &cookie, &task).await;
        assert_eq!(finished["state"], "finished", "{backend:?}: {finished}");
        assert_eq!(upstream.received().len(), 3);

        // A finished task cannot be cancelled; a follow-up starts it again, and cancel ends it.
        let refused = request(
            &router,
            "POST",
            &format!("/api/tasks/{task}/cancel"),
            &cookie,
            Value::Null,
        )
        .await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
        upstream.push(fix_add().first_byte_delay(Duration::from_secs(30)));
        let again = request(
            &router,
            "POST",
            &format!("/api/tasks/{task}/follow-up"),
            &cookie,
            json!({"text": "Also check add again."}),
        )
        .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        assert_eq!(body_of(&again)["state"], "running");
        let cancelled = request(
            &router,
            "POST",
            &format!("/api/tasks/{task}/cancel"),
            &cookie,
            Value::Null,
        )
        .await;
        assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
        assert_eq!(body_of(&cancelled)["state"], "cancelled");
        let list = body_of(&request(&router, "GET", "/api/tasks", &cookie, Value::Null).await);
        assert_eq!(list[0]["state"], "cancelled", "{backend:?}");
    }
}

/// The `type` of each timeline entry of a task page.
fn timeline_types(detail: &Value) -> Vec<String> {
    detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["entry"]["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn cancelling_a_task_no_loop_runs_is_written_to_its_journal() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let upstream = Upstream::start().await.unwrap();
        let mut survivor = support::services_with_gateway(&database);
        survivor.runs = Runs::with_instance(database.database.clone(), "survivor", runs_config());
        let router = support::router_for(survivor.clone());
        let (ada, cookie) = premium_user(&survivor, "ada@example.com", &upstream).await;
        let project = project_with_lib(&survivor, &ada).await;

        // A paused task: no loop runs it.
        upstream.push(fix_add());
        let reply = request(
            &router,
            "POST",
            "/api/tasks",
            &cookie,
            json!({
                "project_id": project,
                "instructions": "Fix add and double in src/lib.rs.",
                "models": ["local/gpt-4o"],
                "max_steps": 1,
            }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let paused = body_of(&reply)["id"].as_str().unwrap().to_owned();
        assert_eq!(settled(&router, &cookie, &paused).await["state"], "paused");
        let cancelled = request(
            &router,
            "POST",
            &format!("/api/tasks/{paused}/cancel"),
            &cookie,
            Value::Null,
        )
        .await;
        assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
        let detail = settled(&router, &cookie, &paused).await;
        assert_eq!(detail["state"], "cancelled", "{backend:?}: {detail}");
        let types = timeline_types(&detail);
        assert_eq!(
            types.last().map(String::as_str),
            Some("cancelled"),
            "{backend:?}: the timeline ends as the row does: {types:?}"
        );

        // A task whose instance died: running on no live instance.
        upstream.push(fix_add().first_byte_delay(Duration::from_secs(30)));
        let mut doomed = DoomedInstance::start(&database.url).await;
        let created = doomed.start_task(ada.clone(), project).await;
        let orphan = created.id.to_string();
        for _ in 0..100 {
            if upstream.received().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(upstream.received().len(), 2, "{backend:?}");
        doomed.kill();
        // Its lease runs out; nobody claimed the run yet.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let cancelled = request(
            &router,
            "POST",
            &format!("/api/tasks/{orphan}/cancel"),
            &cookie,
            Value::Null,
        )
        .await;
        assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
        // Recovery claims the run afterwards: it writes no second cancel.
        let mut resumed = 0;
        for _ in 0..20 {
            resumed += survivor.recover_agent_tasks().await.unwrap();
            if resumed > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(resumed, 1, "{backend:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let detail = settled(&router, &cookie, &orphan).await;
        assert_eq!(detail["state"], "cancelled", "{backend:?}: {detail}");
        let types = timeline_types(&detail);
        assert_eq!(
            types.last().map(String::as_str),
            Some("cancelled"),
            "{types:?}"
        );
        assert_eq!(
            types.iter().filter(|kind| *kind == "cancelled").count(),
            1,
            "{backend:?}: {types:?}"
        );
        // Nothing more was asked of the model.
        assert_eq!(upstream.received().len(), 2, "{backend:?}");
    }
}

#[tokio::test]
async fn a_file_edited_before_accepting_is_saved_or_merged_in_three_ways() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.push(fix_add());
        upstream.push(fix_double());
        upstream.push(finish());
        let task = create_task(&router, &cookie, project).await;
        assert_eq!(settled(&router, &cookie, &task).await["state"], "finished");
        let path = format!("/api/tasks/{task}/changes/apply");
        let live = || async {
            services
                .database
                .find_file_by_path(project, "src/lib.rs")
                .await
                .unwrap()
                .unwrap()
        };

        // The file did not change since the base: the person's text is saved as it is, as a
        // revision by the agent with the person as author.
        let edited = format!(
            "{}\npub fn triple(a: i32) -> i32 {{\n    a * 3\n}}\n",
            LIB.replace("a - b", "a + b").replace("a * 3", "a * 2")
        );
        let reply = request(
            &router,
            "POST",
            &path,
            &cookie,
            json!({"files": [{"path": "src/lib.rs", "content": edited}]}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(
            body_of(&reply)["applied"],
            json!(["src/lib.rs"]),
            "{backend:?}"
        );
        let file = live().await;
        assert_eq!(file.content, edited, "{backend:?}");
        assert_eq!(file.version, 2);
        let revision = services
            .database
            .latest_revisions(file.id, 1)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(revision.source, RevisionSource::Agent);
        assert_eq!(revision.author_id, Some(ada.id));

        // The file changed since the base now: a text whose change (from the base) is elsewhere
        // is merged onto it.
        let header = format!("// calc\n{LIB}");
        let reply = request(
            &router,
            "POST",
            &path,
            &cookie,
            json!({"files": [{"path": "src/lib.rs", "accepted": [], "content": header}]}),
        )
        .await;
        assert_eq!(
            body_of(&reply)["applied"],
            json!(["src/lib.rs"]),
            "{backend:?}: {}",
            reply.body
        );
        let merged = format!("// calc\n{edited}");
        assert_eq!(live().await.content, merged, "{backend:?}");

        // A text whose change overlaps the change made since the base: a conflict, reported by
        // the index of its hunk (base to text), and nothing is written.
        let other = format!("// calc\n{}", LIB.replace("a - b", "b - a"));
        let reply = request(
            &router,
            "POST",
            &path,
            &cookie,
            json!({"files": [{"path": "src/lib.rs", "content": other}]}),
        )
        .await;
        let report = body_of(&reply);
        assert_eq!(report["applied"], json!([]), "{backend:?}: {report}");
        assert_eq!(report["conflicts"][0]["path"], "src/lib.rs");
        assert_eq!(report["conflicts"][0]["hunks"], json!([1]), "{report}");
        assert_eq!(
            live().await.content,
            merged,
            "nothing is written on a conflict"
        );
    }
}

/// The messages of the `index`th request the upstream received.
fn messages_of(upstream: &Upstream, index: usize) -> Vec<Value> {
    upstream.received()[index].json()["messages"]
        .as_array()
        .unwrap()
        .clone()
}

/// How many times `text` is in the `index`th request the upstream received.
fn occurrences(upstream: &Upstream, index: usize, text: &str) -> usize {
    String::from_utf8_lossy(&upstream.received()[index].body)
        .matches(text)
        .count()
}

#[tokio::test]
async fn a_follow_up_and_a_pause_reach_a_task_running_on_another_instance() {
    const FOLLOW_UP: &str = "Also keep the signatures as they are.";
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let upstream = Upstream::start().await.unwrap();
        let mut first = support::services_with_gateway(&database);
        first.runs = Runs::with_instance(database.database.clone(), "first", runs_config());
        let mut second = support::services_with_gateway(&database);
        second.runs = Runs::with_instance(database.database.clone(), "second", runs_config());
        let first_router = support::router_for(first.clone());
        let second_router = support::router_for(second.clone());
        let (ada, cookie) = premium_user(&first, "ada@example.com", &upstream).await;
        let project = project_with_lib(&first, &ada).await;
        upstream.push(fix_add().first_byte_delay(Duration::from_millis(1500)));
        upstream.push(fix_double().first_byte_delay(Duration::from_millis(1500)));
        let task = create_task(&first_router, &cookie, project).await;
        for _ in 0..100 {
            if !upstream.received().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!((first.tasks.count(), second.tasks.count()), (1, 0));

        // While the first model call is out, the follow-up reaches the other instance, twice
        // with the same key (a retried request).
        for _ in 0..2 {
            let reply = request(
                &second_router,
                "POST",
                &format!("/api/tasks/{task}/follow-up"),
                &cookie,
                json!({"text": FOLLOW_UP, "key": "follow-up-1"}),
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{backend:?}: {}", reply.body);
            assert_eq!(body_of(&reply)["state"], "running");
        }
        for _ in 0..200 {
            if upstream.received().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(upstream.received().len(), 2, "{backend:?}");
        assert_eq!(occurrences(&upstream, 0, FOLLOW_UP), 0);
        // The second call has it once, after the first call's result (the model had not seen
        // it when it answered the first).
        assert_eq!(occurrences(&upstream, 1, FOLLOW_UP), 1, "{backend:?}");
        let messages = messages_of(&upstream, 1);
        let roles: Vec<&str> = messages
            .iter()
            .map(|message| message["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            vec!["system", "user", "assistant", "tool", "user"],
            "{backend:?}"
        );
        assert!(messages[4].to_string().contains(FOLLOW_UP));

        // A pause through the other instance: the loop stops at its next boundary.
        let reply = request(
            &second_router,
            "POST",
            &format!("/api/tasks/{task}/pause"),
            &cookie,
            Value::Null,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{backend:?}: {}", reply.body);
        let paused = settled(&first_router, &cookie, &task).await;
        assert_eq!(paused["state"], "paused", "{backend:?}: {paused}");
        assert_eq!(paused["pause_reason"]["kind"], "requested");
        let user_messages = paused["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["entry"]["text"] == FOLLOW_UP)
            .count();
        assert_eq!(user_messages, 1, "{backend:?}: delivered once");

        // Resumed (on the other instance now), it finishes; the follow-up is still there once.
        upstream.push(finish());
        let reply = request(
            &second_router,
            "POST",
            &format!("/api/tasks/{task}/resume"),
            &cookie,
            json!({}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let finished = settled(&second_router, &cookie, &task).await;
        assert_eq!(finished["state"], "finished", "{backend:?}: {finished}");
        assert_eq!(upstream.received().len(), 3, "{backend:?}");
        assert_eq!(occurrences(&upstream, 2, FOLLOW_UP), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn a_step_the_task_budget_refuses_gives_the_plan_request_back() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.push(fix_add());
        upstream.push(fix_double());
        upstream.push(finish());
        let reply = request(
            &router,
            "POST",
            "/api/tasks",
            &cookie,
            json!({
                "project_id": project,
                "instructions": "Fix add and double in src/lib.rs.",
                "models": ["local/gpt-4o"],
                "max_steps": 1,
            }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let task = body_of(&reply)["id"].as_str().unwrap().to_owned();
        assert_eq!(settled(&router, &cookie, &task).await["state"], "paused");
        let requests_today = || async {
            services
                .database
                .plan_counter(ada.id, &services::policy::requests_counter(Utc::now()))
                .await
                .unwrap()
        };
        // One model call: one of the plan's requests, though the second step was asked for.
        assert_eq!(upstream.received().len(), 1);
        assert_eq!(requests_today().await, Some(1), "{backend:?}");

        let resumed = request(
            &router,
            "POST",
            &format!("/api/tasks/{task}/resume"),
            &cookie,
            json!({"max_steps": 10}),
        )
        .await;
        assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
        assert_eq!(settled(&router, &cookie, &task).await["state"], "finished");
        assert_eq!(upstream.received().len(), 3);
        assert_eq!(requests_today().await, Some(3), "{backend:?}");
    }
}

/// A tool call whose arguments are this raw text (not necessarily JSON).
fn raw_call(id: &str, name: &str, arguments: &str) -> Reply {
    Reply::sse(openai::tool_call_stream(id, name, &[arguments]))
}

async fn create_task_with(router: &Router, cookie: &str, body: Value) -> String {
    let reply = request(router, "POST", "/api/tasks", cookie, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    body_of(&reply)["id"].as_str().unwrap().to_owned()
}

async fn change_set(router: &Router, cookie: &str, task: &str) -> Value {
    let reply = request(
        router,
        "GET",
        &format!("/api/tasks/{task}/changes"),
        cookie,
        Value::Null,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    body_of(&reply)
}

#[tokio::test]
async fn two_tasks_on_one_project_run_at_once_each_with_its_worktree_and_both_apply() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let other_upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        support::add_local_provider(&services, &ada, "other", &other_upstream).await;
        let project = project_with_lib(&services, &ada).await;
        // Each task has its own upstream, so that the order they ask in does not matter.
        upstream.push(fix_add().first_byte_delay(Duration::from_millis(500)));
        upstream.push(finish());
        other_upstream.push(fix_double().first_byte_delay(Duration::from_millis(500)));
        other_upstream.push(finish());
        let first = create_task_with(
            &router,
            &cookie,
            json!({"project_id": project, "instructions": "Fix add.", "models": ["local/gpt-4o"]}),
        )
        .await;
        let second = create_task_with(
            &router,
            &cookie,
            json!({"project_id": project, "instructions": "Fix double.", "models": ["other/gpt-4o"]}),
        )
        .await;
        let mut running = 0;
        for _ in 0..50 {
            running = services.tasks.count();
            if running == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(running, 2, "{backend:?}: both run at once");
        assert_eq!(settled(&router, &cookie, &first).await["state"], "finished");
        assert_eq!(
            settled(&router, &cookie, &second).await["state"],
            "finished"
        );

        // Each change set has its own task's edit only.
        let first_changes = change_set(&router, &cookie, &first).await;
        let second_changes = change_set(&router, &cookie, &second).await;
        assert_eq!(
            first_changes[0]["current"],
            LIB.replace("a - b", "a + b"),
            "{backend:?}"
        );
        assert_eq!(second_changes[0]["current"], LIB.replace("a * 3", "a * 2"));
        assert_eq!(first_changes[0]["hunks"].as_array().unwrap().len(), 1);
        assert_eq!(second_changes[0]["hunks"].as_array().unwrap().len(), 1);

        // Both applied: the second merges onto the file the first changed.
        for task in [&first, &second] {
            let reply = request(
                &router,
                "POST",
                &format!("/api/tasks/{task}/changes/apply"),
                &cookie,
                json!({"files": [{"path": "src/lib.rs", "accepted": [true]}]}),
            )
            .await;
            assert_eq!(
                body_of(&reply)["applied"],
                json!(["src/lib.rs"]),
                "{backend:?}: {}",
                reply.body
            );
        }
        let file = services
            .database
            .find_file_by_path(project, "src/lib.rs")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            file.content,
            LIB.replace("a - b", "a + b").replace("a * 3", "a * 2")
        );
        assert_eq!(file.version, 3);
    }
}

#[tokio::test]
async fn a_command_the_sandbox_refuses_reaches_the_model_and_the_evidence() {
    const REASON: &str = "user namespaces are disabled on this machine";
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let mut services = support::services_with_gateway(&database);
        services.runner =
            std::sync::Arc::new(services::runner::Runner::disabled(REASON, "enable them"));
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.push(call("call-1", "run", &json!({"command": "cargo test"})));
        upstream.push(finish());
        let task = create_task(&router, &cookie, project).await;
        let detail = settled(&router, &cookie, &task).await;
        assert_eq!(detail["state"], "finished", "{backend:?}: {detail}");

        // The model was told, in the result of its call.
        let received = upstream.received();
        assert_eq!(received.len(), 2);
        let results: Vec<Value> = messages_of(&upstream, 1)
            .into_iter()
            .filter(|message| message["role"] == "tool")
            .collect();
        assert_eq!(results.len(), 1, "{backend:?}");
        let told = results[0]["content"].as_str().unwrap();
        assert!(
            told.contains("denied by the sandbox") && told.contains(REASON),
            "{backend:?}: {told}"
        );

        // The task page's evidence has the command and its refusal.
        let commands = detail["commands"].as_array().unwrap();
        assert_eq!(commands.len(), 1, "{detail}");
        assert_eq!(commands[0][0], "cargo test");
        assert_eq!(commands[0][1]["status"]["status"], "denied");
        assert!(
            commands[0][1]["status"]["reason"]
                .as_str()
                .unwrap()
                .contains(REASON)
        );
    }
}

#[tokio::test]
async fn rejected_hunks_go_back_to_the_agent_which_edits_again() {
    const COMMENT: &str = "Double with a shift instead.";
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.push(fix_add());
        upstream.push(fix_double());
        upstream.push(finish());
        let task = create_task(&router, &cookie, project).await;
        assert_eq!(settled(&router, &cookie, &task).await["state"], "finished");

        // The first answer after the rejection waits, so that the reply sees the task running
        // (with an immediate answer the loop may finish before the reply is read).
        upstream.push(
            call(
                "call-4",
                "edit",
                &json!({"path": "src/lib.rs", "old_text": "a * 2", "new_text": "a << 1"}),
            )
            .first_byte_delay(Duration::from_secs(2)),
        );
        upstream.push(call("call-5", "finish", &json!({"summary": "Shifted."})));
        let rejected = request(
            &router,
            "POST",
            &format!("/api/tasks/{task}/changes/reject"),
            &cookie,
            json!({"hunks": [{"path": "src/lib.rs", "index": 1}], "comment": COMMENT}),
        )
        .await;
        assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
        assert_eq!(body_of(&rejected)["state"], "running");
        let detail = settled(&router, &cookie, &task).await;
        assert_eq!(detail["state"], "finished", "{backend:?}: {detail}");
        assert_eq!(detail["summary"], "Shifted.");

        // The next request carried the rejection, the comment and the rejected hunk.
        assert_eq!(upstream.received().len(), 5, "{backend:?}");
        let messages = messages_of(&upstream, 3);
        let last = messages.last().unwrap();
        assert_eq!(last["role"], "user");
        let text = last["content"].as_str().unwrap();
        assert!(
            text.contains("The reviewer rejected these changes")
                && text.contains(COMMENT)
                && text.contains("+    a * 2")
                && text.contains("-    a * 3"),
            "{backend:?}: {text}"
        );
        assert!(!text.contains("a + b"), "only the rejected hunk: {text}");

        // The change set reflects the new edit.
        let changes = change_set(&router, &cookie, &task).await;
        assert_eq!(
            changes[0]["current"],
            LIB.replace("a - b", "a + b").replace("a * 3", "a << 1"),
            "{backend:?}"
        );
        let hunks = changes[0]["hunks"].as_array().unwrap();
        assert_eq!(hunks.len(), 2);
        assert_eq!(hunks[1]["added"], json!(["    a << 1\n"]));
    }
}

#[tokio::test]
async fn a_follow_up_after_finish_starts_the_task_again() {
    const FOLLOW_UP: &str = "Now fix double too.";
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.push(fix_add());
        upstream.push(call("call-2", "finish", &json!({"summary": "Fixed add."})));
        let task = create_task(&router, &cookie, project).await;
        let first = settled(&router, &cookie, &task).await;
        assert_eq!(first["state"], "finished", "{backend:?}: {first}");
        assert_eq!(first["summary"], "Fixed add.");

        // The first answer after the follow-up waits, so that the reply sees the task running
        // (with an immediate answer the loop may finish before the reply is read).
        upstream.push(fix_double().first_byte_delay(Duration::from_secs(2)));
        upstream.push(finish());
        let reply = request(
            &router,
            "POST",
            &format!("/api/tasks/{task}/follow-up"),
            &cookie,
            json!({"text": FOLLOW_UP}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(body_of(&reply)["state"], "running");
        let detail = settled(&router, &cookie, &task).await;
        assert_eq!(detail["state"], "finished", "{backend:?}: {detail}");
        assert_eq!(detail["summary"], "Fixed add and double.");
        assert_eq!(detail["steps"], 4);

        // The first request after the follow-up ends with it, after the finished conversation.
        assert_eq!(upstream.received().len(), 4, "{backend:?}");
        let messages = messages_of(&upstream, 2);
        let roles: Vec<&str> = messages
            .iter()
            .map(|message| message["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            vec![
                "system",
                "user",
                "assistant",
                "tool",
                "assistant",
                "tool",
                "user"
            ]
        );
        assert_eq!(messages[6]["content"], FOLLOW_UP);
        let changes = change_set(&router, &cookie, &task).await;
        assert_eq!(
            changes[0]["current"],
            LIB.replace("a - b", "a + b").replace("a * 3", "a * 2")
        );
    }
}

#[tokio::test]
async fn a_loop_repeating_one_call_pauses_as_stuck() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.always(call("call-1", "read", &json!({"path": "src/lib.rs"})));
        let task = create_task(&router, &cookie, project).await;
        let detail = settled(&router, &cookie, &task).await;
        assert_eq!(detail["state"], "paused", "{backend:?}: {detail}");
        assert_eq!(detail["pause_reason"]["kind"], "stuck", "{detail}");
        assert_eq!(detail["pause_reason"]["reason"], "repeated_action");
        assert!(
            !detail["pause_reason"]["steps"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        // Four identical calls with identical results, then no more model calls.
        assert_eq!(upstream.received().len(), 4, "{backend:?}");
        let types = timeline_types(&detail);
        assert_eq!(types.last().map(String::as_str), Some("paused"));
    }
}

#[tokio::test]
async fn a_failing_provider_falls_back_to_the_next_model_mid_task() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let backup = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        support::add_local_provider(&services, &ada, "backup", &backup).await;
        let project = project_with_lib(&services, &ada).await;
        // The first model answers once, then fails every time.
        upstream.push(fix_add());
        upstream.always(openai::error(
            500,
            "server_error",
            None,
            "the model is down",
        ));
        backup.push(fix_double());
        backup.push(finish());
        let task = create_task_with(
            &router,
            &cookie,
            json!({
                "project_id": project,
                "instructions": "Fix add and double in src/lib.rs.",
                "models": ["local/gpt-4o", "backup/gpt-4o-mini"],
            }),
        )
        .await;
        let detail = settled(&router, &cookie, &task).await;
        assert_eq!(detail["state"], "finished", "{backend:?}: {detail}");
        assert_eq!(backup.received().len(), 2, "{backend:?}");
        assert!(
            upstream.received().len() >= 3,
            "the first model was asked first"
        );
        // The later steps were answered by the second model, after the first failed.
        let responses: Vec<&Value> = detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["entry"]["type"] == "model_response")
            .map(|item| &item["entry"]["response"])
            .collect();
        assert_eq!(responses.len(), 3);
        assert_eq!(responses[0]["model"], "gpt-4o");
        assert_eq!(responses[1]["model"], "gpt-4o-mini");
        assert_eq!(responses[1]["fallbacks"][0]["model"], "gpt-4o", "{detail}");
        assert_eq!(responses[2]["model"], "gpt-4o-mini");
        let changes = change_set(&router, &cookie, &task).await;
        assert_eq!(
            changes[0]["current"],
            LIB.replace("a - b", "a + b").replace("a * 3", "a * 2")
        );
    }
}

#[tokio::test]
async fn a_malformed_call_and_an_unknown_tool_get_errors_and_the_task_goes_on() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_with_gateway(&database);
        let router = support::router_for(services.clone());
        let upstream = Upstream::start().await.unwrap();
        let (ada, cookie) = premium_user(&services, "ada@example.com", &upstream).await;
        let project = project_with_lib(&services, &ada).await;
        upstream.push(raw_call(
            "call-1",
            "edit",
            r#"{"path": "src/lib.rs", "old_te"#,
        ));
        upstream.push(call("call-2", "frobnicate", &json!({"x": 1})));
        upstream.push(fix_add());
        upstream.push(call("call-4", "finish", &json!({"summary": "Fixed add."})));
        let task = create_task(&router, &cookie, project).await;
        let detail = settled(&router, &cookie, &task).await;
        assert_eq!(detail["state"], "finished", "{backend:?}: {detail}");
        assert_eq!(upstream.received().len(), 4, "{backend:?}");
        let results: Vec<String> = messages_of(&upstream, 3)
            .into_iter()
            .filter(|message| message["role"] == "tool")
            .map(|message| message["content"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(results.len(), 3, "{backend:?}: {results:?}");
        assert!(
            results[0].starts_with("error:") && results[0].contains("not valid JSON"),
            "{results:?}"
        );
        assert!(
            results[1].starts_with("error:")
                && results[1].contains("there is no tool named \"frobnicate\""),
            "{results:?}"
        );
        assert!(results[2].contains("edited src/lib.rs"), "{results:?}");
        let changes = change_set(&router, &cookie, &task).await;
        assert_eq!(changes[0]["current"], LIB.replace("a - b", "a + b"));
    }
}
