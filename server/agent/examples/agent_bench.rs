//! Agent loop figures (printed, not a timed test): the loop's own time per step (the step's time
//! less the model call and the tool's work), p50 and p99, and the process's CPU time per step,
//! for many concurrent tasks against a scripted OpenAI upstream in the same process (each step a
//! `read` of a small file), with the in-memory journal and budget.
//!
//! `cargo run -p agent --release --example agent_bench [tasks] [steps]` (defaults 100 and 20);
//! the last line repeats the figures as JSON. `scripts/bench-agent` runs it beside mini-swe-agent.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::timing::{StepMarks, StepTimes, percentile, process_cpu_time};
use agent::{
    Agent, AgentConfig, BudgetLimits, CommandOutcome, CommandRunner, Control, DirectoryWorkspace,
    MemoryBudget, MemoryJournal, StuckThresholds,
};
use llm::testing::{Reply, Upstream, loopback_policy, openai};
use llm::{Gateway, ProviderKind, RetryPolicy, Timeouts};

struct NoRunner;

#[async_trait::async_trait]
impl CommandRunner for NoRunner {
    async fn run(&self, _command: &str, _timeout: Duration) -> agent::Result<CommandOutcome> {
        Err(agent::Error::Io("no commands in the bench".into()))
    }
}

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
    let upstream = Upstream::start().await.unwrap();
    upstream.always(Reply::sse(openai::tool_call_stream(
        "call_1",
        "read",
        &[r#"{"path": "src/lib.rs"}"#],
    )));
    let directory = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(directory.path().join("src")).unwrap();
    std::fs::write(
        directory.path().join("src/lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n",
    )
    .unwrap();
    let gateway = Gateway::new(
        loopback_policy(),
        Timeouts::default(),
        RetryPolicy::default(),
    );
    let model = Arc::new(agent::GatewayModel::new(
        gateway,
        vec![llm::Target {
            endpoint: llm::Endpoint::new(
                ProviderKind::OpenAi,
                Some(&upstream.base_url(ProviderKind::OpenAi)),
                Some(secrecy::SecretString::from("bench-key-0123456789")),
                &loopback_policy(),
            )
            .unwrap(),
            model: "gpt-4o".into(),
        }],
        Arc::new(llm::Catalog::builtin().unwrap()),
    ));
    let journal = Arc::new(MemoryJournal::new());
    let budget = Arc::new(MemoryBudget::new(BudgetLimits {
        steps: Some(steps),
        ..BudgetLimits::default()
    }));
    let workspace = Arc::new(DirectoryWorkspace::new(directory.path()).unwrap());
    let marks = Arc::new(StepMarks::default());
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let mut handles = Vec::new();
    for index in 0..tasks {
        let task = format!("task-{index}");
        agent::start_task(journal.as_ref(), &task, "Read src/lib.rs")
            .await
            .unwrap();
        let hook_marks = marks.clone();
        let hook_task = task.clone();
        let agent = Agent {
            task,
            workspace: workspace.clone(),
            runner: Arc::new(NoRunner),
            model: model.clone(),
            journal: journal.clone(),
            budget: budget.clone(),
            control: Control::new(),
            config: AgentConfig {
                stuck: StuckThresholds {
                    repeated_action: 0,
                    repeated_error: 0,
                    ping_pong_cycles: 0,
                    monologue: 0,
                },
                ..AgentConfig::default()
            },
            failpoints: Some(Arc::new(move |point, step| {
                hook_marks.mark(&hook_task, step, point);
                false
            })),
        };
        handles.push(tokio::spawn(async move { agent.run().await }));
    }
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu_before);
    let names: Vec<String> = (0..tasks).map(|index| format!("task-{index}")).collect();
    let StepTimes {
        own: overheads,
        model_calls,
    } = marks.times(names.iter().map(String::as_str), steps);
    let total_steps = tasks as u64 * steps;
    println!(
        "agent loop: {tasks} concurrent tasks x {steps} steps against a scripted upstream in this process"
    );
    println!(
        "  loop time per step (less model call and tool work): p50 {:?}, p99 {:?} over {} steps",
        percentile(&overheads, 0.5),
        percentile(&overheads, 0.99),
        overheads.len()
    );
    let cpu_per_step = cpu / u32::try_from(total_steps.max(1)).unwrap_or(u32::MAX);
    println!(
        "  model call (gateway and scripted upstream) p50 {:?}",
        percentile(&model_calls, 0.5)
    );
    println!(
        "  process CPU per step (loop, gateway and upstream together): {:?}; wall time {:?} ({:.0} steps/s)",
        cpu_per_step,
        elapsed,
        total_steps as f64 / elapsed.as_secs_f64()
    );
    // One line for scripts/bench-agent, which sets these beside mini-swe-agent's.
    println!(
        "{}",
        serde_json::json!({
            "tasks": tasks,
            "steps": steps,
            "loop_p50_us": percentile(&overheads, 0.5).as_secs_f64() * 1e6,
            "loop_p99_us": percentile(&overheads, 0.99).as_secs_f64() * 1e6,
            "model_call_p50_us": percentile(&model_calls, 0.5).as_secs_f64() * 1e6,
            "cpu_per_step_us": cpu_per_step.as_secs_f64() * 1e6,
            "wall_seconds": elapsed.as_secs_f64(),
        })
    );
}
