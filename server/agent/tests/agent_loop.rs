#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The real loop through the real `llm::Gateway` against scripted upstreams speaking each
//! provider's wire format, on a temporary worktree, with a runner that really runs `sh -c`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent::{
    Agent, AgentConfig, BudgetKind, BudgetLimits, CommandOutcome, CommandRunner, CommandStatus,
    Control, DirectoryWorkspace, Entry, Failpoint, Journal, MemoryBudget, MemoryJournal, Model,
    Outcome, PauseReason, StuckReason, TaskState, ToolStatus,
};
use llm::testing::{End, Reply, Upstream, anthropic, gemini, loopback_policy, openai};
use llm::{Gateway, ProviderKind, RetryPolicy, Timeouts};
use serde_json::{Value, json};

const TASK: &str = "task-1";

struct ShellRunner {
    root: PathBuf,
}

#[async_trait::async_trait]
impl CommandRunner for ShellRunner {
    async fn run(&self, command: &str, timeout: Duration) -> agent::Result<CommandOutcome> {
        let started = Instant::now();
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.root)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let mut output = String::new();
        let status = match tokio::time::timeout(timeout, child).await {
            Err(_) => CommandStatus::TimedOut,
            Ok(Err(error)) => return Err(agent::Error::Io(error.to_string())),
            Ok(Ok(done)) => {
                output.push_str(&String::from_utf8_lossy(&done.stdout));
                output.push_str(&String::from_utf8_lossy(&done.stderr));
                CommandStatus::Exited {
                    code: done.status.code(),
                }
            }
        };
        Ok(CommandOutcome {
            status,
            duration_milliseconds: started.elapsed().as_millis() as u64,
            output,
        })
    }
}

fn gateway() -> Gateway {
    Gateway::new(
        loopback_policy(),
        Timeouts {
            connect: Duration::from_secs(2),
            first_byte: Duration::from_secs(10),
            between_chunks: Duration::from_secs(10),
        },
        RetryPolicy {
            max_retries: 1,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(2),
        },
    )
}

fn target(upstream: &Upstream, kind: ProviderKind, model: &str) -> llm::Target {
    llm::Target {
        endpoint: llm::Endpoint::new(
            kind,
            Some(&upstream.base_url(kind)),
            Some(secrecy::SecretString::from("test-key-0123456789")),
            &loopback_policy(),
        )
        .unwrap(),
        model: model.to_owned(),
    }
}

fn default_model(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "claude-haiku-4-5",
        ProviderKind::Gemini => "gemini-2.5-flash",
        _ => "gpt-4o",
    }
}

struct Harness {
    directory: tempfile::TempDir,
    upstream: Upstream,
    journal: Arc<MemoryJournal>,
    budget: Arc<MemoryBudget>,
    model: Arc<dyn Model>,
    config: AgentConfig,
}

impl Harness {
    async fn new(kind: ProviderKind) -> Self {
        let upstream = Upstream::start().await.unwrap();
        let model = Arc::new(agent::GatewayModel::new(
            gateway(),
            vec![target(&upstream, kind, default_model(kind))],
            Arc::new(llm::Catalog::builtin().unwrap()),
        ));
        Self::with_model(upstream, model)
    }

    fn with_model(upstream: Upstream, model: Arc<dyn Model>) -> Self {
        Self {
            directory: tempfile::tempdir().unwrap(),
            upstream,
            journal: Arc::new(MemoryJournal::new()),
            budget: Arc::new(MemoryBudget::new(BudgetLimits::default())),
            model,
            config: AgentConfig {
                model_attempts: 2,
                command_timeout: Duration::from_secs(20),
                ..AgentConfig::default()
            },
        }
    }

    fn file(&self, path: &str, content: &str) {
        let full = self.directory.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.directory.path().join(path)).unwrap_or_default()
    }

    async fn start(&self, instructions: &str) {
        agent::start_task(self.journal.as_ref(), TASK, instructions)
            .await
            .unwrap();
    }

    fn agent(&self, control: Control, failpoints: Option<agent::FailpointHook>) -> Agent {
        Agent {
            task: TASK.to_owned(),
            workspace: Arc::new(DirectoryWorkspace::new(self.directory.path()).unwrap()),
            runner: Arc::new(ShellRunner {
                root: self.directory.path().to_path_buf(),
            }),
            model: self.model.clone(),
            journal: self.journal.clone(),
            budget: self.budget.clone(),
            control,
            config: self.config.clone(),
            failpoints,
        }
    }

    async fn run(&self) -> agent::Result<Outcome> {
        self.agent(Control::new(), None).run().await
    }

    async fn entries(&self) -> Vec<Entry> {
        self.journal.entries(TASK).await.unwrap()
    }

    fn requests(&self) -> Vec<Value> {
        self.upstream
            .received()
            .iter()
            .map(llm::testing::Received::json)
            .collect()
    }
}

/// An OpenAI streamed call of one tool.
fn call(id: &str, name: &str, arguments: &Value) -> Reply {
    Reply::sse(openai::tool_call_stream(
        id,
        name,
        &[&arguments.to_string()],
    ))
}

/// An OpenAI streamed response with several tool calls.
fn calls(list: &[(&str, &str, Value)]) -> Reply {
    let tool_calls: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(index, (id, name, arguments))| {
            json!({"index": index, "id": id, "type": "function",
                   "function": {"name": name, "arguments": arguments.to_string()}})
        })
        .collect();
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    Reply::sse(vec![
        chunk(
            json!({"role": "assistant", "tool_calls": tool_calls}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        "data: [DONE]\n\n".to_owned(),
    ])
}

fn raw_call(id: &str, name: &str, arguments: &str) -> Reply {
    Reply::sse(openai::tool_call_stream(id, name, &[arguments]))
}

fn finish(id: &str, summary: &str) -> Reply {
    call(id, "finish", &json!({"summary": summary}))
}

/// Every string inside a JSON value.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| strings(item, out)),
        _ => {}
    }
}

fn contains(request: &Value, needle: &str) -> bool {
    let mut all = Vec::new();
    strings(request, &mut all);
    all.iter().any(|text| text.contains(needle))
}

/// The OpenAI tool messages of a request.
fn openai_tool_results(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["role"] == "tool")
        .map(|message| {
            (
                message["tool_call_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                message["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn happy_path_with_a_failing_then_passing_test_run() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.file("value.txt", "1\n");
    harness.file("AGENTS.md", "Always run the tests with sh check.sh.\n");
    harness.file("check.sh", "seq 1 3000\ntest \"$(cat value.txt)\" = 2\n");
    harness.upstream.push(call(
        "c1",
        "update_plan",
        &json!({"items": [{"text": "make the check pass", "status": "in_progress"}]}),
    ));
    harness
        .upstream
        .push(call("c2", "run", &json!({"command": "sh check.sh"})));
    harness.upstream.push(call(
        "c3",
        "edit",
        &json!({"path": "value.txt", "old_text": "1", "new_text": "2"}),
    ));
    harness
        .upstream
        .push(call("c4", "run", &json!({"command": "sh check.sh"})));
    harness
        .upstream
        .push(finish("c5", "value is 2; sh check.sh passes"));
    harness.start("Make sh check.sh pass.").await;

    let outcome = harness.run().await.unwrap();

    assert_eq!(
        outcome,
        Outcome::Finished {
            summary: "value is 2; sh check.sh passes".into()
        }
    );
    assert_eq!(harness.read("value.txt"), "2\n");
    let requests = harness.requests();
    assert_eq!(requests.len(), 5);
    // The project's rules are in the system prompt, the tools in every request.
    assert_eq!(requests[0]["messages"][0]["role"], "system");
    assert!(contains(
        &requests[0]["messages"][0],
        "Always run the tests with sh check.sh."
    ));
    assert_eq!(requests[0]["tools"].as_array().unwrap().len(), 10);
    // The failing run's result went back capped: head and tail, the rest counted.
    let results = openai_tool_results(&requests[2]);
    let (id, failing) = &results[1];
    assert_eq!(id, "c2");
    assert!(failing.starts_with("exit code 1 after"), "{failing}");
    assert!(failing.contains("lines ("), "{failing}");
    assert!(failing.contains("\n1\n2\n"), "{failing}");
    assert!(failing.contains("2999\n3000\n"), "{failing}");
    assert!(!failing.contains("\n1500\n"));
    assert!(failing.lines().count() < 420);
    let results = openai_tool_results(&requests[4]);
    assert!(results[3].1.starts_with("exit code 0"), "{:?}", results[3]);
    // The evidence: both runs with their exit codes.
    let state = TaskState::replay(&harness.entries().await);
    let codes: Vec<CommandStatus> = state
        .commands
        .iter()
        .map(|(_, run)| run.status.clone())
        .collect();
    assert_eq!(
        codes,
        vec![
            CommandStatus::Exited { code: Some(1) },
            CommandStatus::Exited { code: Some(0) }
        ]
    );
    assert_eq!(state.plan.len(), 1);
    // A finished task asks nothing more.
    assert_eq!(harness.run().await.unwrap(), outcome);
    assert_eq!(harness.requests().len(), 5);
}

/// Kills the loop at `point` of `step`, then resumes with a fresh loop on the same journal.
async fn kill_and_resume(point: Failpoint, step: u64) {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.file("notes.txt", "first\n");
    let patch = "*** Begin Patch\n*** Update File: notes.txt\n@@\n first\n+added\n*** End Patch";
    harness
        .upstream
        .push(call("c1", "apply_patch", &json!({"patch": patch})));
    harness.upstream.push(call(
        "c2",
        "run",
        &json!({"command": "echo ran >> runs.log"}),
    ));
    harness.upstream.push(finish("c3", "done"));
    harness.start("Add a line and log a run.").await;

    let fired = Arc::new(AtomicBool::new(false));
    let hook_fired = fired.clone();
    let hook: agent::FailpointHook = Arc::new(move |at, at_step| {
        at == point && at_step == step && !hook_fired.swap(true, Ordering::SeqCst)
    });
    let first = harness.agent(Control::new(), Some(hook)).run().await;
    assert_eq!(
        first,
        Err(agent::Error::Aborted(point)),
        "{point:?} at {step}"
    );
    assert!(fired.load(Ordering::SeqCst));

    let outcome = harness.run().await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Finished {
            summary: "done".into()
        },
        "{point:?} at {step}"
    );
    // No model response was requested twice: three steps, three requests.
    let requests = harness.requests();
    assert_eq!(requests.len(), 3, "{point:?} at {step}");
    // The patch was applied exactly once.
    assert_eq!(
        harness.read("notes.txt"),
        "first\nadded\n",
        "{point:?} at {step}"
    );
    // The command ran at most once, and an interrupted one is reported as such.
    let runs = harness.read("runs.log").lines().count();
    let run_result = openai_tool_results(&requests[2])
        .into_iter()
        .find(|(id, _)| id == "c2")
        .unwrap()
        .1;
    let interrupted = step == 2
        && matches!(
            point,
            Failpoint::AfterToolStart | Failpoint::BeforeResultSaved
        );
    if interrupted {
        assert!(
            run_result.contains("interrupted"),
            "{point:?}: {run_result}"
        );
        let expected = usize::from(point == Failpoint::BeforeResultSaved);
        assert_eq!(runs, expected, "{point:?} at {step}");
    } else {
        assert!(
            run_result.starts_with("exit code 0"),
            "{point:?} at {step}: {run_result}"
        );
        assert_eq!(runs, 1, "{point:?} at {step}");
    }
    // Each call has exactly one result in the journal.
    let done = harness
        .entries()
        .await
        .iter()
        .filter(|entry| matches!(entry, Entry::ToolDone { .. }))
        .count();
    assert_eq!(done, 3);
}

#[tokio::test]
async fn kill_at_each_boundary_then_resume() {
    for step in [1, 2] {
        for point in Failpoint::ALL {
            kill_and_resume(point, step).await;
        }
    }
}

#[tokio::test]
async fn an_edit_whose_file_changed_during_the_stop_is_a_conflict() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.file("a.txt", "old\n");
    harness.upstream.push(call(
        "c1",
        "edit",
        &json!({"path": "a.txt", "old_text": "old", "new_text": "agent"}),
    ));
    harness.upstream.push(call(
        "c2",
        "edit",
        &json!({"path": "a.txt", "old_text": "missing text", "new_text": "x"}),
    ));
    harness.upstream.push(finish("c3", "gave up"));
    harness.start("Edit a.txt").await;
    let hook: agent::FailpointHook =
        Arc::new(|at, step| at == Failpoint::AfterToolStart && step == 1);
    assert!(
        harness
            .agent(Control::new(), Some(hook))
            .run()
            .await
            .is_err()
    );
    // The person saves the file while the agent is stopped.
    harness.file("a.txt", "person\n");
    harness.run().await.unwrap();
    assert_eq!(harness.read("a.txt"), "person\n");
    let requests = harness.requests();
    let results = openai_tool_results(&requests[1]);
    assert!(
        results[0].1.starts_with("conflict: a.txt changed"),
        "{results:?}"
    );
    let results = openai_tool_results(&requests[2]);
    assert!(
        results[1].1.contains("old_text was not found in a.txt"),
        "{results:?}"
    );
    let statuses: Vec<ToolStatus> = harness
        .entries()
        .await
        .iter()
        .filter_map(|entry| match entry {
            Entry::ToolDone { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        vec![ToolStatus::Conflict, ToolStatus::Error, ToolStatus::Ok]
    );
}

#[tokio::test]
async fn a_stuck_loop_pauses_but_polling_does_not() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness
        .upstream
        .always(call("same", "run", &json!({"command": "echo same"})));
    harness.start("Loop forever").await;
    let outcome = harness.run().await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Paused(PauseReason::Stuck {
            reason: StuckReason::RepeatedAction,
            steps: vec![1, 2, 3, 4],
        })
    );
    assert_eq!(harness.requests().len(), 4);

    let polling = Harness::new(ProviderKind::OpenAi).await;
    for index in 0..6 {
        polling.upstream.push(call(
            &format!("p{index}"),
            "run",
            &json!({"command": "echo $$; date +%s%N"}),
        ));
    }
    polling.upstream.push(finish("f", "the job ended"));
    polling.start("Wait for the job").await;
    assert_eq!(
        polling.run().await.unwrap(),
        Outcome::Finished {
            summary: "the job ended".into()
        }
    );
}

#[tokio::test]
async fn a_monologue_pauses() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.upstream.always(Reply::sse(openai::text_stream(
        &["I will think more."],
        10,
        5,
    )));
    harness.start("Talk").await;
    let outcome = harness.run().await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Paused(PauseReason::Stuck {
                reason: StuckReason::Monologue,
                ..
            })
        ),
        "{outcome:?}"
    );
    // Each text-only turn got a nudge back.
    let requests = harness.requests();
    assert_eq!(requests.len(), 3);
    assert!(contains(&requests[1], agent::agent::NO_TOOL_NUDGE));
}

#[tokio::test]
async fn a_budget_pause_then_continue_with_more_budget() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.budget.raise(BudgetLimits {
        steps: Some(2),
        ..BudgetLimits::default()
    });
    harness.file("a.txt", "a\n");
    harness
        .upstream
        .push(call("c1", "read", &json!({"path": "a.txt"})));
    harness.upstream.push(call("c2", "list", &json!({})));
    harness.upstream.push(finish("c3", "read it"));
    harness.start("Read a.txt").await;
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Paused(PauseReason::Budget {
            which: BudgetKind::Steps
        })
    );
    assert_eq!(harness.requests().len(), 2);
    // Paused stays paused without a decision.
    assert!(matches!(harness.run().await.unwrap(), Outcome::Paused(_)));
    assert_eq!(harness.requests().len(), 2);
    harness.budget.raise(BudgetLimits {
        steps: Some(5),
        ..BudgetLimits::default()
    });
    agent::resume(harness.journal.as_ref(), TASK, "1", None)
        .await
        .unwrap();
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "read it".into()
        }
    );
    assert_eq!(harness.requests().len(), 3);
    let results = openai_tool_results(&harness.requests()[1]);
    assert!(results[0].1.contains("     1\ta"), "{results:?}");
    // The tokens recorded: 100 per OpenAI step.
    assert_eq!(harness.budget.spent(TASK).0, 300);
}

#[tokio::test]
async fn a_token_budget_pauses_before_the_next_call() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.budget.raise(BudgetLimits {
        tokens: Some(150),
        ..BudgetLimits::default()
    });
    harness.upstream.always(call("c", "list", &json!({})));
    harness.start("List").await;
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Paused(PauseReason::Budget {
            which: BudgetKind::Tokens
        })
    );
    assert_eq!(harness.requests().len(), 2);
}

#[tokio::test]
async fn provider_fallback_mid_task() {
    let primary = Upstream::start().await.unwrap();
    let secondary = Upstream::start().await.unwrap();
    let model = Arc::new(agent::GatewayModel::new(
        gateway(),
        vec![
            target(&primary, ProviderKind::OpenAi, "gpt-4o"),
            target(&secondary, ProviderKind::Anthropic, "claude-haiku-4-5"),
        ],
        Arc::new(llm::Catalog::builtin().unwrap()),
    ));
    let harness = Harness::with_model(primary, model);
    harness.file("a.txt", "a\n");
    harness
        .upstream
        .push(call("call_1", "read", &json!({"path": "a.txt"})));
    // The primary is down from the second step on (its retry too).
    harness
        .upstream
        .always(openai::error(500, "server_error", None, "down"));
    secondary.push(Reply::sse(anthropic::thinking_and_tool_stream(
        "It is read.",
        "Finishing.",
        "toolu_2",
        "finish",
        &[r#"{"summary": "#, r#""read by the fallback"}"#],
    )));
    harness.start("Read a.txt").await;
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "read by the fallback".into()
        }
    );
    let responses: Vec<(String, Vec<agent::FailedModel>)> = harness
        .entries()
        .await
        .iter()
        .filter_map(|entry| match entry {
            Entry::ModelResponse { response, .. } => {
                Some((response.provider.clone(), response.fallbacks.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(responses[0].0, "openai");
    assert_eq!(responses[1].0, "anthropic");
    assert_eq!(responses[1].1.len(), 1, "{responses:?}");
    assert_eq!(responses[1].1[0].provider, "openai");
    // The Anthropic request carries the OpenAI step as tool_use and tool_result blocks.
    let received = secondary.received();
    assert_eq!(received.len(), 1);
    let body = received[0].json();
    let messages = body["messages"].as_array().unwrap();
    let assistant = messages
        .iter()
        .find(|message| message["role"] == "assistant")
        .unwrap();
    let tool_use = assistant["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|block| block["type"] == "tool_use")
        .unwrap();
    assert_eq!(tool_use["id"], "call_1");
    assert_eq!(tool_use["input"]["path"], "a.txt");
    assert!(contains(&body, "     1\ta"));
    // The turn began on OpenAI, without a thinking block: Anthropic would refuse thinking
    // switched on in its middle, so the fallback asks without it.
    assert!(body.get("thinking").is_none(), "{body}");
    // gpt-4o does not reason: the primary was never sent an effort.
    assert!(primary_requests_have_no_effort(&harness));
}

fn primary_requests_have_no_effort(harness: &Harness) -> bool {
    harness
        .requests()
        .iter()
        .all(|request| request.get("reasoning_effort").is_none())
}

#[tokio::test]
async fn follow_up_after_finish_and_while_running() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.upstream.push(finish("c1", "first part done"));
    harness.start("Do the first part").await;
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "first part done".into()
        }
    );
    agent::follow_up(harness.journal.as_ref(), TASK, "r1", "Now also write b.txt")
        .await
        .unwrap();
    harness.upstream.push(call(
        "c2",
        "write",
        &json!({"path": "b.txt", "content": "b\n"}),
    ));
    harness.upstream.push(finish("c3", "b.txt written"));
    let control = Control::new();
    control.send("and keep it short");
    assert_eq!(
        harness.agent(control, None).run().await.unwrap(),
        Outcome::Finished {
            summary: "b.txt written".into()
        }
    );
    assert_eq!(harness.read("b.txt"), "b\n");
    let requests = harness.requests();
    assert_eq!(requests.len(), 3);
    let messages = requests[1]["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|message| message["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        vec!["system", "user", "assistant", "tool", "user", "user"]
    );
    assert!(contains(&messages[4], "Now also write b.txt"));
    assert!(contains(&messages[5], "and keep it short"));
}

#[tokio::test]
async fn cancel_and_pause_at_the_next_boundary() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.upstream.always(call("c", "list", &json!({})));
    harness.start("List").await;
    let control = Control::new();
    control.pause();
    assert_eq!(
        harness.agent(control, None).run().await.unwrap(),
        Outcome::Paused(PauseReason::Requested)
    );
    agent::resume(harness.journal.as_ref(), TASK, "1", Some("go on"))
        .await
        .unwrap();
    let control = Control::new();
    control.cancel();
    assert_eq!(
        harness.agent(control, None).run().await.unwrap(),
        Outcome::Cancelled
    );
    assert_eq!(harness.requests().len(), 0);
    assert_eq!(harness.run().await.unwrap(), Outcome::Cancelled);
}

#[tokio::test]
async fn faults_429_cut_stream_malformed_arguments_and_unknown_tool() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.upstream.push(
        openai::error(429, "rate_limit_exceeded", None, "slow down").header("retry-after", "0"),
    );
    harness
        .upstream
        .push(raw_call("c1", "read", r#"{"path": "a.tx"#));
    // A stream cut in the middle of a tool call: output had started, so the loop asks again.
    let cut = Reply::sse(openai::tool_call_stream(
        "c2",
        "frobnicate",
        &[r#"{"x":"#, r#"1}"#],
    ))
    .cut_after(3, End::Abort);
    harness.upstream.push(cut);
    harness
        .upstream
        .push(call("c2", "frobnicate", &json!({"x": 1})));
    harness
        .upstream
        .push(call("c3", "read", &json!({"path": "../outside"})));
    harness.upstream.push(finish("c4", "survived"));
    harness.start("Survive").await;
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "survived".into()
        }
    );
    let requests = harness.requests();
    // 429 + retry, then the cut stream and its second try.
    assert_eq!(requests.len(), 6);
    let results = openai_tool_results(&requests[5]);
    assert!(results[0].1.contains("not valid JSON"), "{results:?}");
    assert!(
        results[1]
            .1
            .contains("there is no tool named \"frobnicate\""),
        "{results:?}"
    );
    assert!(
        results[2].1.contains("outside the task's worktree"),
        "{results:?}"
    );
    let steps = harness
        .entries()
        .await
        .iter()
        .filter(|entry| matches!(entry, Entry::ModelResponse { .. }))
        .count();
    assert_eq!(steps, 4);
}

#[tokio::test]
async fn anthropic_tool_round_trip() {
    let harness = Harness::new(ProviderKind::Anthropic).await;
    harness.file("a.txt", "hello\n");
    harness
        .upstream
        .push(Reply::sse(anthropic::thinking_and_tool_stream(
            "Let me read it.",
            "Reading.",
            "toolu_1",
            "read",
            &[r#"{"path":"#, r#""a.txt"}"#],
        )));
    harness
        .upstream
        .push(Reply::sse(anthropic::thinking_and_tool_stream(
            "Done.",
            "",
            "toolu_2",
            "finish",
            &[r#"{"summary":"read"}"#],
        )));
    harness.start("Read a.txt").await;
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "read".into()
        }
    );
    let requests = harness.requests();
    assert_eq!(requests.len(), 2);
    // Claude Haiku 4.5 reasons: every step asks for extended thinking (the turn began with it).
    for request in &requests {
        assert_eq!(
            request["thinking"],
            json!({"type": "enabled", "budget_tokens": agent::DEFAULT_THINKING_BUDGET}),
            "{request}"
        );
        assert!(
            request["max_tokens"].as_u64().unwrap() > u64::from(agent::DEFAULT_THINKING_BUDGET)
        );
    }
    let messages = requests[1]["messages"].as_array().unwrap();
    assert_eq!(messages[1]["role"], "assistant");
    let blocks = messages[1]["content"].as_array().unwrap();
    // The signed thinking block goes back first in its turn, as Anthropic requires.
    assert_eq!(blocks[0]["type"], "thinking", "{blocks:?}");
    assert_eq!(blocks[0]["thinking"], "Let me read it.");
    assert_eq!(blocks[0]["signature"], "sig-test");
    assert!(blocks.iter().any(|block| block["type"] == "tool_use"
        && block["id"] == "toolu_1"
        && block["input"]["path"] == "a.txt"));
    let results = messages[2]["content"].as_array().unwrap();
    assert_eq!(results[0]["type"], "tool_result");
    assert_eq!(results[0]["tool_use_id"], "toolu_1");
    assert!(results[0]["content"].as_str().unwrap().contains("hello"));
    assert!(
        requests[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tool| tool["name"] == "apply_patch")
    );
}

#[tokio::test]
async fn gemini_tool_round_trip_keeps_the_thought_signature() {
    let harness = Harness::new(ProviderKind::Gemini).await;
    harness.file("a.txt", "hello\n");
    harness
        .upstream
        .push(Reply::sse(gemini::function_call_stream(
            "Reading the file.",
            "read",
            &json!({"path": "a.txt"}),
        )));
    harness
        .upstream
        .push(Reply::sse(gemini::function_call_stream(
            "Done.",
            "finish",
            &json!({"summary": "read"}),
        )));
    harness.start("Read a.txt").await;
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "read".into()
        }
    );
    let requests = harness.requests();
    assert_eq!(requests.len(), 2);
    let contents = requests[1]["contents"].as_array().unwrap();
    let model_turn = contents
        .iter()
        .find(|turn| turn["role"] == "model")
        .unwrap();
    let part = model_turn["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|part| part.get("functionCall").is_some())
        .unwrap();
    assert_eq!(part["functionCall"]["name"], "read");
    assert_eq!(part["thoughtSignature"], gemini::FUNCTION_CALL_SIGNATURE);
    // Gemini 2.5 Flash reasons: the agent's thinking budget, with its thoughts returned.
    assert_eq!(
        requests[0]["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        agent::DEFAULT_THINKING_BUDGET
    );
    assert!(contains(&requests[1], "     1\thello"));
    assert!(contents.iter().any(|turn| {
        turn["parts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|part| part["functionResponse"]["name"] == "read")
    }));
}

#[tokio::test]
async fn openai_tool_round_trip_sends_tool_calls_back() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness
        .upstream
        .push(call("call_a", "grep", &json!({"pattern": "hel+o"})));
    harness.upstream.push(finish("call_b", "found"));
    harness.file("src/a.txt", "say hello\n");
    harness.start("Find hello").await;
    harness.run().await.unwrap();
    let requests = harness.requests();
    let messages = requests[1]["messages"].as_array().unwrap();
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_a");
    assert_eq!(messages[2]["tool_calls"][0]["function"]["name"], "grep");
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_call_id"], "call_a");
    assert_eq!(messages[3]["content"], "src/a.txt:1: say hello");
}

#[tokio::test]
async fn apply_patch_is_all_or_nothing() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.file("a.txt", "one\n");
    harness.file("b.txt", "two\n");
    let bad = "*** Begin Patch\n*** Update File: a.txt\n@@\n-one\n+ONE\n*** Update File: b.txt\n@@\n-absent\n+x\n*** End Patch";
    let good = "*** Begin Patch\n*** Update File: a.txt\n@@\n-one\n+ONE\n*** Add File: c/new.txt\n+new\n*** Delete File: b.txt\n*** End Patch";
    harness
        .upstream
        .push(call("c1", "apply_patch", &json!({"patch": bad})));
    harness
        .upstream
        .push(call("c2", "apply_patch", &json!({"patch": good})));
    harness.upstream.push(finish("c3", "patched"));
    harness.start("Patch").await;
    harness.run().await.unwrap();
    let results = openai_tool_results(&harness.requests()[2]);
    assert!(
        results[0].1.contains("hunk 1 of b.txt does not match"),
        "{results:?}"
    );
    assert_eq!(
        results[1].1,
        "patch applied: updated a.txt, added c/new.txt, deleted b.txt"
    );
    assert_eq!(harness.read("a.txt"), "ONE\n");
    assert_eq!(harness.read("c/new.txt"), "new\n");
    assert!(!harness.directory.path().join("b.txt").exists());
}

#[tokio::test]
async fn the_history_is_compacted_near_the_context_window() {
    let upstream = Upstream::start().await.unwrap();
    // A model the catalog does not know: the configured window applies.
    let model = Arc::new(agent::GatewayModel::new(
        gateway(),
        vec![target(
            &upstream,
            ProviderKind::OpenAi,
            "unlisted-test-model",
        )],
        Arc::new(llm::Catalog::builtin().unwrap()),
    ));
    let mut harness = Harness::with_model(upstream, model);
    harness.config.default_context_window = 16_000;
    harness.config.compaction_ratio = 0.5;
    harness.config.compaction_keep_messages = 2;
    let big: String = (1..=3000)
        .map(|line| format!("line number {line} of the big file\n"))
        .collect();
    harness.file("big.txt", &big);
    harness.upstream.push(call(
        "c1",
        "update_plan",
        &json!({"items": [{"text": "read the big file", "status": "in_progress"}]}),
    ));
    harness.upstream.push(call(
        "c2",
        "read",
        &json!({"path": "big.txt", "limit": 2000}),
    ));
    harness.upstream.push(call(
        "c3",
        "read",
        &json!({"path": "big.txt", "offset": 1000, "limit": 2000}),
    ));
    harness.upstream.push(Reply::sse(openai::text_stream(
        &["The big file was read twice."],
        10,
        5,
    )));
    harness.upstream.push(finish("c4", "compacted"));
    harness.start("Read big.txt").await;
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "compacted".into()
        }
    );
    let requests = harness.requests();
    assert_eq!(requests.len(), 5);
    // The summarising call: no tools, the old steps as a transcript.
    assert!(requests[3].get("tools").is_none_or(Value::is_null));
    assert!(contains(&requests[3], "(called read"));
    // The next step: the task, the summary with the plan, then the latest step kept whole.
    let messages = requests[4]["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|message| message["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["system", "user", "user", "assistant", "tool"]);
    assert!(contains(&messages[1], "Read big.txt"));
    assert!(contains(&messages[2], "The big file was read twice."));
    assert!(contains(&messages[2], "[~] read the big file"));
    assert_eq!(messages[3]["tool_calls"][0]["id"], "c3");
    // Resuming asks for neither the summary nor a step again.
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "compacted".into()
        }
    );
    assert_eq!(harness.requests().len(), 5);
}

/// Refuses every command, as the sandbox does when it is not available.
struct DenyingRunner;

#[async_trait::async_trait]
impl CommandRunner for DenyingRunner {
    async fn run(&self, _command: &str, _timeout: Duration) -> agent::Result<CommandOutcome> {
        Ok(CommandOutcome {
            status: CommandStatus::Denied {
                reason: "the sandbox is not available on this server".into(),
            },
            duration_milliseconds: 0,
            output: String::new(),
        })
    }
}

#[tokio::test]
async fn a_sandbox_denial_is_surfaced_and_calls_after_finish_get_results() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness
        .upstream
        .push(call("c1", "run", &json!({"command": "make test"})));
    // One response with finish first and then a write: the write runs, finish ends the task.
    harness.upstream.push(calls(&[
        ("f1", "finish", json!({"summary": "no sandbox"})),
        ("w1", "write", json!({"path": "n.txt", "content": "n"})),
        ("f2", "finish", json!({"summary": "again"})),
    ]));
    harness.start("Run the tests").await;
    let mut agent = harness.agent(Control::new(), None);
    agent.runner = Arc::new(DenyingRunner);
    assert_eq!(
        agent.run().await.unwrap(),
        Outcome::Finished {
            summary: "no sandbox".into()
        }
    );
    let results = openai_tool_results(&harness.requests()[1]);
    assert!(
        results[0]
            .1
            .contains("denied by the sandbox: the sandbox is not available"),
        "{results:?}"
    );
    assert_eq!(harness.read("n.txt"), "n");
    let done: Vec<(String, ToolStatus)> = harness
        .entries()
        .await
        .iter()
        .filter_map(|entry| match entry {
            Entry::ToolDone {
                call_id, status, ..
            } => Some((call_id.clone(), *status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        done,
        vec![
            ("c1".to_owned(), ToolStatus::Error),
            ("w1".to_owned(), ToolStatus::Ok),
            ("f1".to_owned(), ToolStatus::Ok),
            ("f2".to_owned(), ToolStatus::Error),
        ]
    );
}

#[tokio::test]
async fn a_change_set_reviewed_hunk_by_hunk_and_rejected_hunks_fed_back() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    let base_text = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n";
    harness.file("a.txt", base_text);
    let workspace = DirectoryWorkspace::new(harness.directory.path()).unwrap();
    let base = agent::changeset::snapshot(&workspace).await.unwrap();
    let patch = "*** Begin Patch\n*** Update File: a.txt\n@@\n-one\n+ONE\n@@\n-seven\n+SEVEN\n*** Add File: b.txt\n+bee\n*** End Patch";
    harness
        .upstream
        .push(call("c1", "apply_patch", &json!({"patch": patch})));
    harness.upstream.push(finish("c2", "uppercased"));
    harness.start("Uppercase the first and last lines").await;
    harness.run().await.unwrap();

    let changes = agent::changeset::diff(
        &base,
        &agent::changeset::snapshot(&workspace).await.unwrap(),
    );
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].path, "a.txt");
    assert_eq!(changes[0].hunks.len(), 2);
    assert_eq!(changes[1].operation, agent::changeset::FileOperation::Added);
    // The person changed the project's a.txt since the base; the first hunk is accepted and
    // merged with that change, the second rejected.
    let live = "one\ntwo\nthree\nFOUR\nfive\nsix\nseven\n";
    let merged = changes[0].merge_onto(&[true, false], Some(live));
    assert_eq!(
        merged.content.as_deref(),
        Some("ONE\ntwo\nthree\nFOUR\nfive\nsix\nseven\n")
    );
    assert!(merged.conflicts.is_empty());
    let message = agent::changeset::rejection_message(
        &changes,
        &[("a.txt".to_owned(), 1)],
        "Leave the last line alone.",
    );
    agent::follow_up(harness.journal.as_ref(), TASK, "review-1", &message)
        .await
        .unwrap();
    harness.upstream.push(call(
        "c3",
        "edit",
        &json!({"path": "a.txt", "old_text": "SEVEN", "new_text": "seven"}),
    ));
    harness.upstream.push(finish("c4", "last line restored"));
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "last line restored".into()
        }
    );
    let requests = harness.requests();
    assert_eq!(requests.len(), 4);
    let messages = requests[2]["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last["role"], "user");
    assert!(contains(last, "Leave the last line alone."));
    assert!(contains(last, "-seven\n+SEVEN\n"), "{last}");
    assert_eq!(
        harness.read("a.txt"),
        "ONE\ntwo\nthree\nfour\nfive\nsix\nseven\n"
    );
}

#[tokio::test]
async fn a_pause_between_two_calls_runs_the_second_after_resume() {
    let harness = Harness::new(ProviderKind::OpenAi).await;
    harness.upstream.push(calls(&[
        ("w1", "write", json!({"path": "one.txt", "content": "1"})),
        ("w2", "write", json!({"path": "two.txt", "content": "2"})),
    ]));
    harness.upstream.push(finish("f", "both written"));
    harness.start("Write two files").await;
    let control = Control::new();
    let pauser = control.clone();
    let hook: agent::FailpointHook = Arc::new(move |at, _| {
        if at == Failpoint::AfterResultSaved {
            pauser.pause();
        }
        false
    });
    assert_eq!(
        harness.agent(control, Some(hook)).run().await.unwrap(),
        Outcome::Paused(PauseReason::Requested)
    );
    assert_eq!(harness.read("one.txt"), "1");
    assert!(!harness.directory.path().join("two.txt").exists());
    agent::resume(harness.journal.as_ref(), TASK, "1", None)
        .await
        .unwrap();
    assert_eq!(
        harness.run().await.unwrap(),
        Outcome::Finished {
            summary: "both written".into()
        }
    );
    assert_eq!(harness.read("two.txt"), "2");
    let requests = harness.requests();
    assert_eq!(requests.len(), 2);
    let results = openai_tool_results(&requests[1]);
    assert_eq!(results.len(), 2, "{results:?}");
}

#[tokio::test]
async fn two_tasks_share_a_journal_and_a_budget_without_mixing() {
    let first = Harness::new(ProviderKind::OpenAi).await;
    let second_upstream = Upstream::start().await.unwrap();
    let second_model: Arc<dyn Model> = Arc::new(agent::GatewayModel::new(
        gateway(),
        vec![target(
            &second_upstream,
            ProviderKind::Gemini,
            "gemini-2.5-flash",
        )],
        Arc::new(llm::Catalog::builtin().unwrap()),
    ));
    first.budget.raise(BudgetLimits {
        steps: Some(2),
        ..BudgetLimits::default()
    });
    first.upstream.push(call(
        "a1",
        "write",
        &json!({"path": "a.txt", "content": "a"}),
    ));
    first.upstream.push(finish("a2", "task one"));
    second_upstream.push(Reply::sse(gemini::function_call_stream(
        "Writing.",
        "write",
        &json!({"path": "b.txt", "content": "b"}),
    )));
    second_upstream.push(Reply::sse(gemini::function_call_stream(
        "Done.",
        "finish",
        &json!({"summary": "task two"}),
    )));
    first.start("One").await;
    agent::start_task(first.journal.as_ref(), "task-2", "Two")
        .await
        .unwrap();
    let mut second = first.agent(Control::new(), None);
    second.task = "task-2".into();
    second.model = second_model;
    let one = first.agent(Control::new(), None);
    let (one, two) = tokio::join!(one.run(), second.run());
    assert_eq!(
        one.unwrap(),
        Outcome::Finished {
            summary: "task one".into()
        }
    );
    assert_eq!(
        two.unwrap(),
        Outcome::Finished {
            summary: "task two".into()
        }
    );
    assert_eq!(first.read("a.txt"), "a");
    assert_eq!(first.read("b.txt"), "b");
    let second_entries = first.journal.entries("task-2").await.unwrap();
    assert!(matches!(&second_entries[0], Entry::UserMessage { text } if text == "Two"));
    assert_eq!(first.entries().await.len(), second_entries.len());
    assert_eq!(first.requests().len(), 2);
    assert_eq!(second_upstream.received().len(), 2);
}

#[test]
fn follow_ups_written_while_the_loop_ran_are_replayed_at_a_step_boundary() {
    let tool_call = |id: &str| llm::ToolCall {
        id: id.into(),
        name: "list".into(),
        arguments: "{}".into(),
        signature: None,
    };
    let response = |calls: Vec<llm::ToolCall>| agent::ModelResponse {
        text: String::new(),
        tool_calls: calls,
        ..agent::ModelResponse::default()
    };
    let done = |step: u64, id: &str| Entry::ToolDone {
        step,
        call_id: id.into(),
        name: "list".into(),
        status: ToolStatus::Ok,
        content: format!("result {id}"),
        plan: None,
        command: None,
    };
    let user = |text: &str| Entry::UserMessage { text: text.into() };
    let entries = vec![
        user("instructions"),
        // Written while the model answered step 1 (its request was built from one entry).
        user("sent during the call"),
        Entry::ModelResponse {
            step: 1,
            response: response(vec![tool_call("a"), tool_call("b")]),
            context_entries: Some(1),
        },
        done(1, "a"),
        // Written between the two calls' results.
        user("sent between results"),
        done(1, "b"),
    ];
    let state = TaskState::replay(&entries);
    let conversation: Vec<(String, String)> = state
        .messages
        .iter()
        .map(|message| (format!("{:?}", message.role), message.content.clone()))
        .collect();
    assert_eq!(
        conversation,
        vec![
            ("User".to_owned(), "instructions".to_owned()),
            ("Assistant".to_owned(), String::new()),
            ("Tool".to_owned(), "result a".to_owned()),
            ("Tool".to_owned(), "result b".to_owned()),
            ("User".to_owned(), "sent during the call".to_owned()),
            ("User".to_owned(), "sent between results".to_owned()),
        ]
    );
    assert!(state.pending_calls().is_empty());

    // A follow-up written after the finish call's result: the task goes on.
    let mut entries = entries;
    entries.push(Entry::ModelResponse {
        step: 2,
        response: response(vec![llm::ToolCall {
            id: "f".into(),
            name: "finish".into(),
            arguments: r#"{"summary": "done"}"#.into(),
            signature: None,
        }]),
        context_entries: Some(6),
    });
    entries.push(user("one more thing"));
    entries.push(Entry::ToolDone {
        step: 2,
        call_id: "f".into(),
        name: "finish".into(),
        status: ToolStatus::Ok,
        content: "done".into(),
        plan: None,
        command: None,
    });
    let state = TaskState::replay(&entries);
    assert_eq!(state.status, agent::TaskStatus::Running);
    assert_eq!(
        state
            .messages
            .last()
            .map(|message| message.content.as_str()),
        Some("one more thing")
    );
}
