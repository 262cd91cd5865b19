//! Agent loop figures (printed, not a timed test): the loop's own time per step (the step's time
//! less the model call and the tool's work), p50 and p99, and the process's CPU time per step,
//! for many concurrent tasks against a scripted OpenAI upstream in the same process (each step a
//! `read` of a small file), with the in-memory journal and budget.
//!
//! `cargo run -p agent --release --example agent_bench [tasks] [steps]` (defaults 100 and 20);
//! the last line repeats the figures as JSON. `scripts/bench-agent` runs it beside mini-swe-agent.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::{
    Agent, AgentConfig, BudgetLimits, CommandOutcome, CommandRunner, Control, DirectoryWorkspace,
    Failpoint, MemoryBudget, MemoryJournal, StuckThresholds,
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

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields
        .get(11..13)
        .map(|both| {
            both.iter()
                .filter_map(|field| field.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

type Marks = Arc<Mutex<HashMap<(String, u64, Failpoint), Instant>>>;

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
    let marks: Marks = Arc::new(Mutex::new(HashMap::new()));
    let cpu_before = cpu_time();
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
                hook_marks
                    .lock()
                    .unwrap()
                    .insert((hook_task.clone(), step, point), Instant::now());
                false
            })),
        };
        handles.push(tokio::spawn(async move { agent.run().await }));
    }
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let marks = marks.lock().unwrap();
    let mut overheads = Vec::new();
    let mut model_calls = Vec::new();
    for index in 0..tasks {
        let task = format!("task-{index}");
        for step in 1..steps {
            let at = |step: u64, point: Failpoint| marks.get(&(task.clone(), step, point)).copied();
            let (Some(begin), Some(model_done), Some(tool_begin), Some(tool_done), Some(next)) = (
                at(step, Failpoint::BeforeModelCall),
                at(step, Failpoint::AfterModelCall),
                at(step, Failpoint::AfterToolStart),
                at(step, Failpoint::BeforeResultSaved),
                at(step + 1, Failpoint::BeforeModelCall),
            ) else {
                continue;
            };
            let total = next - begin;
            let outside = (model_done - begin) + (tool_done - tool_begin);
            overheads.push(total.saturating_sub(outside));
            model_calls.push(model_done - begin);
        }
    }
    overheads.sort();
    model_calls.sort();
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
