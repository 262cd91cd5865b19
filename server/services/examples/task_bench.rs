//! Agent task figures through the server's own use cases (printed, not a timed test): many tasks
//! at once, each created with `Services::create_task` and run as the server runs them (journal,
//! budget, usage rows and audit log in the database, a worktree per task, the run's lease),
//! against a scripted OpenAI-compatible upstream in this process whose every answer is a `read`
//! of another window of a file (no two steps alike, so no stuck pause). Prints the server's own
//! time per step (a step's wall time less its model call and its tool's work) p50 and p99, and
//! the process's CPU per step (the database, when SQLite, and the upstream included).
//!
//! `cargo run --release -p services --example task_bench [tasks] [steps] [sqlite|postgres]`
//! (defaults 100, 20 and sqlite; Postgres through `ASYNC_CODER_TEST_POSTGRES_URL`). The last line
//! repeats the figures as JSON.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::timing::{StepMarks, StepTimes, percentile, process_cpu_time};
use db::testing::TestDatabase;
use llm::testing::{Reply, Upstream, loopback_policy, openai};
use services::tasks::{LiveTasks, NewTask};
use services::{RequestMeta, Services};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let tasks: usize = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100);
    let steps: u64 = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(20);
    let backend = match arguments.next().as_deref() {
        Some("postgres") => db::Backend::Postgres,
        _ => db::Backend::Sqlite,
    };
    let test = TestDatabase::migrated(backend).await;
    let upstream = Upstream::start().await.unwrap();
    for index in 0..tasks as u64 * steps {
        let arguments = format!(
            r#"{{"path": "src/lib.rs", "offset": {}, "limit": 5}}"#,
            index % 900 + 1
        );
        upstream.push(Reply::sse(openai::tool_call_stream(
            &format!("call_{index}"),
            "read",
            &[&arguments],
        )));
    }

    let mut services = Services::new(
        test.database.clone(),
        services::secrets::MasterKey::generate(1).unwrap(),
    );
    services.ai = services::ai::Ai::new(
        loopback_policy(),
        llm::Timeouts::default(),
        llm::RetryPolicy::default(),
    );
    let marks = Arc::new(StepMarks::default());
    let hook_marks = marks.clone();
    services.tasks = Arc::new(LiveTasks::with_failpoints(Arc::new(
        move |task, point, step| {
            hook_marks.mark(&task.to_string(), step, point);
            false
        },
    )));
    // The first account: the administrator, on the top tier (no daily request limit).
    let (user, _) = services
        .sign_up(
            services::accounts::SignUp {
                email: "bench@example.com".into(),
                name: "Bench".into(),
                password: services::SecretString::from("correct horse battery staple".to_owned()),
            },
            &RequestMeta::default(),
        )
        .await
        .unwrap();
    services
        .save_credential(
            &user,
            services::providers::SaveCredential {
                provider: db::tables::provider_credentials::ProviderKind::OpenAiCompatible,
                label: "local".into(),
                api_key: None,
                base_url: Some(upstream.base_url(llm::ProviderKind::OpenAiCompatible)),
            },
            &RequestMeta::default(),
        )
        .await
        .unwrap();
    let text: String = (1..=1000)
        .map(|line| format!("pub fn line_{line}() -> u32 {{ {line} }}\n"))
        .collect();
    let project =
        db::testing::project_with_file(&test.database, user.id, "bench", "src/lib.rs", &text).await;

    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..tasks {
        let created = services
            .create_task(
                &user,
                NewTask {
                    project_id: project,
                    instructions: "Read src/lib.rs".into(),
                    models: vec!["local/gpt-4o".into()],
                    max_steps: Some(steps),
                    ..NewTask::default()
                },
                &RequestMeta::default(),
            )
            .await
            .unwrap();
        ids.push(created.id);
    }
    // Each task pauses when its step budget is spent.
    for task in &ids {
        loop {
            let row = test.database.agent_task(*task).await.unwrap().unwrap();
            if row.state != db::tables::agent_tasks::TaskState::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu_before);
    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let StepTimes {
        own: overheads,
        model_calls,
    } = marks.times(names.iter().map(String::as_str), steps);
    let total_steps = upstream.received().len() as u64;
    let cpu_per_step = cpu / u32::try_from(total_steps.max(1)).unwrap_or(u32::MAX);
    println!(
        "agent tasks through the server's use cases ({backend:?}): {tasks} at once x {steps} steps, {total_steps} model calls"
    );
    println!(
        "  server time per step (less model call and tool work): p50 {:?}, p99 {:?} over {} steps",
        percentile(&overheads, 0.5),
        percentile(&overheads, 0.99),
        overheads.len()
    );
    println!(
        "  model call (gateway and scripted upstream) p50 {:?}",
        percentile(&model_calls, 0.5)
    );
    println!(
        "  process CPU per step (server, database and upstream together): {cpu_per_step:?}; wall time {elapsed:?} ({:.0} steps/s)",
        total_steps as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{}",
        serde_json::json!({
            "tasks": tasks,
            "steps": steps,
            "backend": format!("{backend:?}"),
            "loop_p50_us": percentile(&overheads, 0.5).as_secs_f64() * 1e6,
            "loop_p99_us": percentile(&overheads, 0.99).as_secs_f64() * 1e6,
            "model_call_p50_us": percentile(&model_calls, 0.5).as_secs_f64() * 1e6,
            "cpu_per_step_us": cpu_per_step.as_secs_f64() * 1e6,
            "wall_seconds": elapsed.as_secs_f64(),
        })
    );
}
