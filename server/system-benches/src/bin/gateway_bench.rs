//! Gateway benchmark: Async Coder's AI gateway (`POST /v1/chat/completions` of the `server`
//! binary, with a personal access token) and LiteLLM's proxy, side by side, in front of the same
//! fast local upstream that speaks OpenAI's chat completions wire format, with the upstream alone
//! as the baseline. Requests alternate between the targets so that drift of the machine affects
//! each equally. Everything runs on 127.0.0.1 and the run is bounded in time.
//!
//! Measured, for each gateway:
//! - added latency, one request at a time (non-streaming): gateway p50/p99 minus upstream p50/p99;
//!   measured back to back, and again with each request waiting until the gateway asked before it
//!   is idle (the CPU that gateway used after answering is printed), so that one gateway's
//!   leftover work does not slow the other's request;
//! - streaming (64 chunks 20 ms apart by default): added time to first content chunk and added
//!   p99 gap between chunks, with every chunk counted;
//! - CPU time per request of the gateway's whole process tree;
//! - the highest request rate whose p99 stays under 10 ms and under 100 ms (closed loop,
//!   concurrency 1, 2, 4, … for a few seconds each);
//! - resident memory of the process tree, idle and while holding 200 streams open, and the
//!   anonymous part of it (heap and stacks; the rest is mapped files, mostly code).
//!
//! Run: `scripts/bench-gateway` (installs LiteLLM in a virtualenv, builds the server and this
//! example, passes both paths). `scripts/bench-gateway --quick` is a smoke run;
//! `--only litellm` or `--only async-coder` measures one gateway; `--help` lists every knob.

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use system_benches::{
    CpuSample, Machine, Process, Scratch, chunk_event, clock_ticks_per_second, free_port,
    percentile, process_tree, save_local_provider, server_function, sign_up_first_account, snippet,
    sorted, threads_cpu_ns, tree_anonymous_kib, tree_cpu, tree_rss_kib, wait_until_ready,
};

/// What the upstream answers to a non-streaming request.
const ANSWER: &str = "Hello from the mock upstream.";
/// The model name both gateways are configured to route to the upstream.
const MODEL: &str = "mock-model";
/// The key the gateways send to the upstream (which accepts anything).
const UPSTREAM_KEY: &str = "sk-mock-upstream-key";

/// Appends one formatted line to a String.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

// ------------------------------------------------------------------------------------------------
// Flags

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Only {
    /// Both gateways.
    Both,
    /// LiteLLM alone (no Async Coder server needed).
    Litellm,
    /// Async Coder alone (no LiteLLM needed).
    AsyncCoder,
}

#[derive(Clone, Debug, Parser)]
#[command(
    name = "gateway_bench",
    about = "Async Coder's AI gateway against LiteLLM's proxy, side by side, in front of one local mock upstream."
)]
struct Args {
    /// LiteLLM's `litellm` executable (scripts/bench-gateway installs it in a virtualenv).
    #[arg(long, env = "BENCH_LITELLM", value_name = "FILE")]
    litellm: Option<PathBuf>,

    /// Async Coder's `server` binary (a release build).
    #[arg(long, env = "BENCH_SERVER", value_name = "FILE")]
    server: Option<PathBuf>,

    /// Which gateways to measure.
    #[arg(long, env = "BENCH_ONLY", value_enum, default_value_t = Only::Both)]
    only: Only,

    /// Small counts and short steps: a smoke run of about a minute. Explicit counts still win.
    #[arg(long, env = "BENCH_QUICK")]
    quick: bool,

    /// Warm-up requests per target before measuring [default: 200, quick 20].
    #[arg(long, env = "BENCH_WARMUP", value_name = "COUNT")]
    warmup: Option<usize>,

    /// Non-streaming requests per target, one at a time, for the added latency [default: 2000,
    /// quick 200].
    #[arg(long, env = "BENCH_REQUESTS", value_name = "COUNT")]
    requests: Option<usize>,

    /// Streams per target for time to first chunk and gaps [default: 32, quick 6].
    #[arg(long, env = "BENCH_STREAMS", value_name = "COUNT")]
    streams: Option<usize>,

    /// Streams open at once per target in the streaming measurement.
    #[arg(
        long,
        env = "BENCH_STREAM_CONCURRENCY",
        default_value_t = 1,
        value_name = "COUNT"
    )]
    stream_concurrency: usize,

    /// Content chunks the upstream sends per stream.
    #[arg(long, env = "BENCH_CHUNKS", default_value_t = 64, value_name = "COUNT")]
    chunks: usize,

    /// Time between two content chunks of the upstream, in milliseconds.
    #[arg(
        long,
        env = "BENCH_CHUNK_INTERVAL_MS",
        default_value_t = 20,
        value_name = "MS"
    )]
    chunk_interval_ms: u64,

    /// Requests per gateway for the CPU time per request [default: 2000, quick 400].
    #[arg(long, env = "BENCH_CPU_REQUESTS", value_name = "COUNT")]
    cpu_requests: Option<usize>,

    /// Requests in flight during the CPU measurement.
    #[arg(
        long,
        env = "BENCH_CPU_CONCURRENCY",
        default_value_t = 4,
        value_name = "COUNT"
    )]
    cpu_concurrency: usize,

    /// Seconds measured per concurrency step of the throughput test (after a short warm-up)
    /// [default: 3, quick 1].
    #[arg(long, env = "BENCH_STEP_SECS", value_name = "SECONDS")]
    step_secs: Option<f64>,

    /// Highest concurrency of the throughput test (steps double from 1) [default: 256, quick 64].
    #[arg(long, env = "BENCH_MAX_CONCURRENCY", value_name = "COUNT")]
    max_concurrency: Option<usize>,

    /// Streams held open at once for the memory measurement.
    #[arg(
        long,
        env = "BENCH_HELD_STREAMS",
        default_value_t = 200,
        value_name = "COUNT"
    )]
    held_streams: usize,

    /// LiteLLM's worker processes (`--num_workers`).
    #[arg(
        long,
        env = "BENCH_LITELLM_WORKERS",
        default_value_t = 1,
        value_name = "COUNT"
    )]
    litellm_workers: usize,

    /// Threads of the mock upstream's own runtime.
    #[arg(
        long,
        env = "BENCH_MOCK_THREADS",
        default_value_t = 2,
        value_name = "COUNT"
    )]
    mock_threads: usize,

    /// The whole run is stopped after this many seconds.
    #[arg(
        long,
        env = "BENCH_DEADLINE_SECS",
        default_value_t = 540,
        value_name = "SECONDS"
    )]
    deadline_secs: u64,

    /// Keep the temporary folder (configurations, databases, logs of both gateways).
    #[arg(long, env = "BENCH_KEEP")]
    keep: bool,
}

/// The counts in force, after `--quick` and the explicit flags.
#[derive(Clone, Debug)]
struct Params {
    warmup: usize,
    requests: usize,
    streams: usize,
    stream_concurrency: usize,
    chunks: usize,
    chunk_interval: Duration,
    cpu_requests: usize,
    cpu_concurrency: usize,
    step: Duration,
    step_warmup: Duration,
    max_concurrency: usize,
    held_streams: usize,
    deadline: Instant,
}

impl Params {
    fn resolve(args: &Args, started: Instant) -> Self {
        let quick = args.quick;
        let pick = |value: Option<usize>, normal: usize, small: usize| {
            value.unwrap_or(if quick { small } else { normal }).max(1)
        };
        let step_secs = args
            .step_secs
            .unwrap_or(if quick { 1.0 } else { 3.0 })
            .max(0.2);
        Params {
            warmup: pick(args.warmup, 200, 20),
            requests: pick(args.requests, 2000, 200),
            streams: pick(args.streams, 32, 6),
            stream_concurrency: args.stream_concurrency.max(1),
            chunks: args.chunks.max(1),
            chunk_interval: Duration::from_millis(args.chunk_interval_ms),
            cpu_requests: pick(args.cpu_requests, 2000, 400),
            cpu_concurrency: args.cpu_concurrency.max(1),
            step: Duration::from_secs_f64(step_secs),
            step_warmup: Duration::from_secs_f64((step_secs / 6.0).clamp(0.1, 0.5)),
            max_concurrency: pick(args.max_concurrency, 256, 64),
            held_streams: args.held_streams.max(1),
            deadline: started + Duration::from_secs(args.deadline_secs),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Entry point

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let params = Params::resolve(&args, started);
    let mock = start_mock(
        args.mock_threads.max(1),
        MockConfig {
            chunks: params.chunks,
            interval: params.chunk_interval,
        },
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-client")
        .build()
        .context("starting the client runtime")?;
    let deadline = Duration::from_secs(args.deadline_secs);
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = tokio::time::timeout(deadline, run(&args, &params, mock)) => match result {
                Ok(result) => result,
                Err(_) => Err(anyhow!(
                    "the benchmark did not finish within {} s (--deadline-secs); stopped",
                    args.deadline_secs
                )),
            },
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    // The children and the temporary folder were cleaned up when `run` returned or was dropped.
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Err(error) = &outcome {
        eprintln!("\ngateway benchmark failed: {error:#}");
        std::process::exit(1);
    }
    Ok(())
}

async fn run(args: &Args, params: &Params, mock_port: u16) -> Result<()> {
    let scratch = Scratch::new("gateway-bench", args.keep)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(4096)
        // Under uvicorn's 5 s keep-alive, so that no request goes out on a connection LiteLLM
        // has just closed.
        .pool_idle_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;

    let mock_base = format!("http://127.0.0.1:{mock_port}");
    let direct = Arc::new(Target::new(
        "mock direct",
        format!("{mock_base}/v1/chat/completions"),
        Some(UPSTREAM_KEY.to_owned()),
        MODEL,
        None,
    ));
    check_completion(&client, &direct)
        .await
        .context("the mock upstream does not answer")?;

    let machine = Machine::describe();
    let mut versions = Vec::new();

    // LiteLLM
    let mut litellm_child = None;
    let mut litellm = None;
    if args.only != Only::AsyncCoder {
        let executable = args.litellm.clone().ok_or_else(|| {
            anyhow!("--litellm <path of the litellm executable> is needed (or --only async-coder)")
        })?;
        let (child, target, version) = start_litellm(
            &client,
            &scratch,
            &executable,
            mock_port,
            args.litellm_workers,
        )
        .await
        .context("LiteLLM's proxy could not be set up")?;
        eprintln!(
            "LiteLLM {version} answers on {} (pid {})",
            target.url,
            child.pid()
        );
        versions.push(format!(
            "LiteLLM {version} ({} worker{}, LITELLM_LOG=ERROR)",
            args.litellm_workers,
            if args.litellm_workers == 1 { "" } else { "s" }
        ));
        litellm = Some(Arc::new(target));
        litellm_child = Some(child);
    }

    // Async Coder
    let mut ours_child = None;
    let mut ours = None;
    if args.only != Only::Litellm {
        let executable = args.server.clone().ok_or_else(|| {
            anyhow!("--server <path of the server binary> is needed (or --only litellm)")
        })?;
        let (child, target, version) = start_async_coder(&client, &scratch, &executable, mock_port)
            .await
            .context("Async Coder's gateway could not be set up")?;
        eprintln!(
            "Async Coder ({version}) answers on {} with model {:?} (pid {})",
            target.url,
            target.model,
            child.pid()
        );
        versions.push(format!("Async Coder {version} (RUST_LOG=warn)"));
        ours = Some(Arc::new(target));
        ours_child = Some(child);
    }

    let gateways: Vec<Arc<Target>> = [ours.clone(), litellm.clone()]
        .into_iter()
        .flatten()
        .collect();
    let mut everyone = vec![direct.clone()];
    everyone.extend(gateways.iter().cloned());
    let mut report = Report::default();

    // e (first half): memory at rest, right after start-up and set-up; and CPU used meanwhile
    // (background work, which the CPU time per request would otherwise hide).
    let clock_ticks = clock_ticks_per_second();
    let idle_before: Vec<Option<CpuSample>> = gateways
        .iter()
        .map(|target| target.pid.map(tree_cpu))
        .collect();
    let idle_window = Duration::from_secs(2);
    tokio::time::sleep(idle_window).await;
    for (target, before) in gateways.iter().zip(idle_before) {
        if let (Some(pid), Some(before)) = (target.pid, before) {
            let seconds = CpuSample::seconds_between(&before, &tree_cpu(pid), clock_ticks);
            report.set(
                target.name,
                "cpu_idle",
                seconds * 100.0 / idle_window.as_secs_f64(),
            );
            report.set(target.name, "rss_idle", tree_rss_kib(pid) as f64 / 1024.0);
            report.set(
                target.name,
                "anon_idle",
                tree_anonymous_kib(pid) as f64 / 1024.0,
            );
        }
    }

    // Warm-up.
    eprintln!(
        "warming up ({} requests and 2 streams each)…",
        params.warmup
    );
    for target in &everyone {
        let (_, errors, first) = batch(&client, target, params.warmup, 4).await?;
        if errors > 0 {
            bail!(
                "{}: {errors} of {} warm-up requests failed: {}",
                target.name,
                params.warmup,
                first.unwrap_or_default()
            );
        }
        for _ in 0..2 {
            one_stream(&client, target)
                .await
                .with_context(|| format!("{}: a warm-up stream failed", target.name))?;
        }
    }

    // a. Added latency, one request at a time, interleaved request by request; twice: back to
    // back, then with each request starting once the gateway asked before it has gone idle.
    // Work a gateway does after answering (LiteLLM's logging and spend callbacks) is its own CPU
    // cost (c.); back to back it also slows the next request, which may be the other gateway's.
    let trees: HashMap<&str, Vec<u32>> = gateways
        .iter()
        .filter_map(|target| Some((target.name, process_tree(target.pid?))))
        .collect();
    for (settled, prefix) in [(false, "b2b_"), (true, "")] {
        eprintln!(
            "a. latency: {} non-streaming requests per target, one at a time, interleaved, {}…",
            params.requests,
            if settled {
                "each once the previous gateway is idle"
            } else {
                "back to back"
            }
        );
        let mut latencies: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut errors: HashMap<&str, (usize, Option<String>)> = HashMap::new();
        let mut after_answer: HashMap<&str, (Duration, Duration)> = HashMap::new();
        for round in 0..params.requests {
            for offset in 0..everyone.len() {
                let target = &everyone[(round + offset) % everyone.len()];
                match one_completion(&client, target).await {
                    Ok(ms) => latencies.entry(target.name).or_default().push(ms),
                    Err(error) => {
                        let entry = errors.entry(target.name).or_default();
                        entry.0 += 1;
                        entry.1.get_or_insert(format!("{error:#}"));
                    }
                }
                if settled && let Some(tree) = trees.get(target.name) {
                    let (cpu, wall) = settle(tree).await;
                    let entry = after_answer.entry(target.name).or_default();
                    entry.0 += cpu;
                    entry.1 += wall;
                }
            }
        }
        for (name, (cpu, wall)) in &after_answer {
            let count = params.requests.max(1) as f64;
            report.set(name, "after_cpu", cpu.as_secs_f64() * 1e3 / count);
            report.set(name, "after_wall", wall.as_secs_f64() * 1e3 / count);
        }
        for target in &everyone {
            let samples = sorted(latencies.remove(target.name).unwrap_or_default());
            report.set(
                target.name,
                &format!("{prefix}lat_p50"),
                percentile(&samples, 0.50),
            );
            report.set(
                target.name,
                &format!("{prefix}lat_p99"),
                percentile(&samples, 0.99),
            );
            if let Some((count, first)) = errors.get(target.name) {
                report.error(target.name, *count, first.clone());
            }
        }
        for target in &gateways {
            for quantile in ["p50", "p99"] {
                let raw = format!("{prefix}lat_{quantile}");
                let value = report.get(target.name, &raw) - report.get(direct.name, &raw);
                report.set(target.name, &format!("{prefix}lat_add_{quantile}"), value);
            }
        }
    }

    // b. Streaming: time to first content chunk and gaps, in rounds of a few streams per target.
    eprintln!(
        "b. streaming: {} streams of {} chunks {} ms apart per target, {} at a time, interleaved…",
        params.streams,
        params.chunks,
        params.chunk_interval.as_millis(),
        params.stream_concurrency
    );
    let mut ttfts: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut gaps: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut missing: HashMap<&str, usize> = HashMap::new();
    let mut stream_errors: HashMap<&str, (usize, Option<String>)> = HashMap::new();
    let rounds = params.streams.div_ceil(params.stream_concurrency);
    for round in 0..rounds {
        let in_round = params
            .stream_concurrency
            .min(params.streams - round * params.stream_concurrency);
        for offset in 0..everyone.len() {
            let target = &everyone[(round + offset) % everyone.len()];
            let outcomes = streams(&client, target, in_round).await?;
            for outcome in outcomes {
                match outcome {
                    Ok(outcome) => {
                        *missing.entry(target.name).or_default() +=
                            params.chunks.saturating_sub(outcome.content_chunks)
                                + usize::from(!outcome.done);
                        if outcome.ttft_ms.is_finite() {
                            ttfts.entry(target.name).or_default().push(outcome.ttft_ms);
                        }
                        gaps.entry(target.name).or_default().extend(outcome.gaps_ms);
                    }
                    Err(error) => {
                        *missing.entry(target.name).or_default() += params.chunks;
                        let entry = stream_errors.entry(target.name).or_default();
                        entry.0 += 1;
                        entry.1.get_or_insert(format!("{error:#}"));
                    }
                }
            }
        }
    }
    for target in &everyone {
        let ttft = sorted(ttfts.remove(target.name).unwrap_or_default());
        let gap = sorted(gaps.remove(target.name).unwrap_or_default());
        report.set(target.name, "ttft_p50", percentile(&ttft, 0.50));
        report.set(target.name, "ttft_p99", percentile(&ttft, 0.99));
        report.set(target.name, "gap_p50", percentile(&gap, 0.50));
        report.set(target.name, "gap_p99", percentile(&gap, 0.99));
        report.set(
            target.name,
            "missing",
            missing.get(target.name).copied().unwrap_or(0) as f64,
        );
        if let Some((count, first)) = stream_errors.get(target.name) {
            report.error(target.name, *count, first.clone());
        }
    }
    for target in &gateways {
        for (added, raw) in [
            ("ttft_add_p50", "ttft_p50"),
            ("ttft_add_p99", "ttft_p99"),
            ("gap_add_p99", "gap_p99"),
        ] {
            let value = report.get(target.name, raw) - report.get(direct.name, raw);
            report.set(target.name, added, value);
        }
    }

    // c. CPU time per request of each gateway's process tree, in alternating batches.
    eprintln!(
        "c. CPU: {} requests per gateway, {} in flight, in alternating batches…",
        params.cpu_requests, params.cpu_concurrency
    );
    let batches = 4usize.min(params.cpu_requests);
    let mut cpu_seconds: HashMap<&str, f64> = HashMap::new();
    let mut cpu_requests: HashMap<&str, usize> = HashMap::new();
    for round in 0..batches {
        let size =
            params.cpu_requests / batches + usize::from(round < params.cpu_requests % batches);
        for offset in 0..gateways.len() {
            let target = &gateways[(round + offset) % gateways.len()];
            let Some(pid) = target.pid else { continue };
            let before = tree_cpu(pid);
            let (samples, failed, first) =
                batch(&client, target, size, params.cpu_concurrency).await?;
            let after = tree_cpu(pid);
            *cpu_seconds.entry(target.name).or_default() +=
                CpuSample::seconds_between(&before, &after, clock_ticks);
            *cpu_requests.entry(target.name).or_default() += samples.len();
            if failed > 0 {
                report.error(target.name, failed, first);
            }
        }
    }
    for target in &gateways {
        let count = cpu_requests.get(target.name).copied().unwrap_or(0);
        if count > 0 {
            let seconds = cpu_seconds.get(target.name).copied().unwrap_or(0.0);
            report.set(target.name, "cpu_ms", seconds * 1e3 / count as f64);
        }
    }

    // e (second half): memory while holding many streams open, one gateway at a time.
    eprintln!(
        "e. memory: {} streams held open at once, one gateway at a time…",
        params.held_streams
    );
    for target in &gateways {
        let Some(pid) = target.pid else { continue };
        let ((peak_kib, anonymous_kib), outcomes) =
            hold_streams(&client, target, params.held_streams, pid).await?;
        let complete = outcomes
            .iter()
            .filter(|outcome| {
                outcome
                    .as_ref()
                    .is_ok_and(|o| o.content_chunks == params.chunks && o.done)
            })
            .count();
        let failed: Vec<&anyhow::Error> = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().err())
            .collect();
        report.set(target.name, "rss_streams", peak_kib as f64 / 1024.0);
        report.set(target.name, "anon_streams", anonymous_kib as f64 / 1024.0);
        report.set(target.name, "held_complete", complete as f64);
        if let Some(first) = failed.first() {
            report.error(target.name, failed.len(), Some(format!("{first:#}")));
        }
    }

    // d. Throughput while p99 stays under a bound: closed loop, concurrency doubling.
    eprintln!(
        "d. throughput: concurrency 1, 2, 4 … {} for {:.1} s each, interleaved per step…",
        params.max_concurrency,
        params.step.as_secs_f64()
    );
    let mut active: Vec<Arc<Target>> = everyone.clone();
    let mut steps: HashMap<&str, Vec<StepResult>> = HashMap::new();
    let mut concurrency = 1usize;
    let mut cut_short = false;
    while concurrency <= params.max_concurrency && !active.is_empty() {
        let needed =
            (params.step + params.step_warmup + Duration::from_millis(500)) * active.len() as u32;
        if Instant::now() + needed + Duration::from_secs(10) > params.deadline {
            cut_short = true;
            break;
        }
        let mut still_active = Vec::new();
        let rotation = concurrency.trailing_zeros() as usize;
        for offset in 0..active.len() {
            let target = &active[(rotation + offset) % active.len()];
            let step = load_step(
                &client,
                target,
                concurrency,
                params.step_warmup,
                params.step,
            )
            .await?;
            eprintln!(
                "   {:<12} concurrency {:>4}: {:>8.0} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  errors {}",
                target.name, concurrency, step.rps, step.p50, step.p99, step.errors
            );
            let over = step.p99 > 100.0 || step.errors * 100 > step.completed.max(1);
            steps.entry(target.name).or_default().push(step);
            if !over {
                still_active.push(target.clone());
            }
        }
        // Keep the interleaving order stable.
        active.retain(|target| still_active.iter().any(|t| t.name == target.name));
        concurrency *= 2;
    }
    if cut_short {
        report.note(format!(
            "throughput stepping stopped at concurrency {concurrency} to stay within --deadline-secs"
        ));
    }
    for target in &everyone {
        let results = steps.remove(target.name).unwrap_or_default();
        for (key, bound) in [("rps_10", 10.0), ("rps_100", 100.0)] {
            let best = results
                .iter()
                .filter(|step| step.p99 < bound && step.errors == 0)
                .max_by(|a, b| a.rps.total_cmp(&b.rps));
            report.set(target.name, key, best.map_or(0.0, |step| step.rps));
            report.set(
                target.name,
                &format!("{key}_at"),
                best.map_or(0.0, |step| step.concurrency as f64),
            );
        }
        if let Some(peak) = results.iter().max_by(|a, b| a.rps.total_cmp(&b.rps)) {
            report.set(target.name, "rps_peak", peak.rps);
            report.set(target.name, "rps_peak_at", peak.concurrency as f64);
            report.set(target.name, "rps_peak_p99", peak.p99);
        }
    }

    // Stop the gateways before printing (and before the scratch folder goes).
    drop(ours_child);
    drop(litellm_child);

    print_report(
        &report,
        params,
        &machine,
        &versions,
        ours.is_some(),
        litellm.is_some(),
    );
    drop(scratch);
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Targets and requests

/// Somewhere chat completions can be sent: the upstream itself or a gateway in front of it.
#[derive(Debug)]
struct Target {
    name: &'static str,
    url: String,
    auth: Option<String>,
    model: String,
    plain: Bytes,
    streaming: Bytes,
    /// The gateway's process (its tree is measured); none for the upstream.
    pid: Option<u32>,
}

impl Target {
    fn new(
        name: &'static str,
        url: String,
        auth: Option<String>,
        model: &str,
        pid: Option<u32>,
    ) -> Self {
        let messages = json!([
            {"role": "system", "content": "You are a benchmark. Answer briefly."},
            {"role": "user", "content": "Say hello."}
        ]);
        let plain = json!({"model": model, "messages": messages, "stream": false});
        let streaming = json!({
            "model": model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true}
        });
        Target {
            name,
            url,
            auth,
            model: model.to_owned(),
            plain: Bytes::from(plain.to_string()),
            streaming: Bytes::from(streaming.to_string()),
            pid,
        }
    }

    fn request(&self, client: &reqwest::Client, body: &Bytes) -> reqwest::RequestBuilder {
        let builder = client
            .post(&self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        match &self.auth {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }
}

/// Waits until these processes have used no CPU for a whole millisecond (at most 250 ms); the
/// CPU they used meanwhile and how long that took.
async fn settle(pids: &[u32]) -> (Duration, Duration) {
    let started = Instant::now();
    let first = threads_cpu_ns(pids);
    let mut last = first;
    loop {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let now = threads_cpu_ns(pids);
        if now == last || started.elapsed() > Duration::from_millis(250) {
            return (
                Duration::from_nanos(now.saturating_sub(first)),
                started.elapsed(),
            );
        }
        last = now;
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// One non-streaming completion; its latency in milliseconds (the whole answer read).
async fn one_completion(client: &reqwest::Client, target: &Target) -> Result<f64> {
    let started = Instant::now();
    let response = target.request(client, &target.plain).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    let elapsed = ms(started.elapsed());
    if !status.is_success() {
        bail!("{} answered {status}: {}", target.name, snippet(&body));
    }
    Ok(elapsed)
}

/// One non-streaming completion whose answer is checked field by field.
async fn check_completion(client: &reqwest::Client, target: &Target) -> Result<()> {
    let response = target.request(client, &target.plain).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "POST {} (model {:?}) answered {status}: {}",
            target.url,
            target.model,
            snippet(&body)
        );
    }
    let answer: Value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "POST {} answered something that is not JSON: {}",
            target.url,
            snippet(&body)
        )
    })?;
    let content = answer["choices"][0]["message"]["content"].as_str();
    if content != Some(ANSWER) {
        bail!(
            "POST {} answered without the upstream's text: {}",
            target.url,
            snippet(&body)
        );
    }
    Ok(())
}

#[derive(Debug, Default)]
struct StreamOutcome {
    /// Time to the first content chunk.
    ttft_ms: f64,
    /// Times between consecutive content chunks.
    gaps_ms: Vec<f64>,
    content_chunks: usize,
    /// `data: [DONE]` arrived.
    done: bool,
}

fn is_content_chunk(data: &[u8]) -> bool {
    serde_json::from_slice::<Value>(data).is_ok_and(|event| {
        event["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    })
}

/// One streaming completion, read event by event as it arrives.
async fn one_stream(client: &reqwest::Client, target: &Target) -> Result<StreamOutcome> {
    let started = Instant::now();
    let mut response = target.request(client, &target.streaming).send().await?;
    let status = response.status();
    if !status.is_success() {
        let body = response.bytes().await.unwrap_or_default();
        bail!(
            "{} answered {status} to a stream: {}",
            target.name,
            snippet(&body)
        );
    }
    let mut outcome = StreamOutcome {
        ttft_ms: f64::NAN,
        ..StreamOutcome::default()
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut last: Option<Instant> = None;
    while let Some(chunk) = response.chunk().await? {
        let now = Instant::now();
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Some(data) = line.trim_ascii().strip_prefix(b"data:") else {
                continue;
            };
            let data = data.trim_ascii();
            if data == b"[DONE]" {
                outcome.done = true;
            } else if is_content_chunk(data) {
                outcome.content_chunks += 1;
                match last {
                    None => outcome.ttft_ms = ms(now - started),
                    Some(previous) => outcome.gaps_ms.push(ms(now - previous)),
                }
                last = Some(now);
            }
        }
    }
    Ok(outcome)
}

/// `count` streams at once to one target.
async fn streams(
    client: &reqwest::Client,
    target: &Arc<Target>,
    count: usize,
) -> Result<Vec<Result<StreamOutcome>>> {
    let mut set = JoinSet::new();
    for _ in 0..count {
        let (client, target) = (client.clone(), target.clone());
        set.spawn(async move { one_stream(&client, &target).await });
    }
    let mut outcomes = Vec::with_capacity(count);
    while let Some(joined) = set.join_next().await {
        outcomes.push(joined.context("a stream task failed")?);
    }
    Ok(outcomes)
}

/// Holds `count` streams open at once and samples the process tree's resident memory meanwhile;
/// the peak and the anonymous part of it then, in KiB, and each stream's outcome.
async fn hold_streams(
    client: &reqwest::Client,
    target: &Arc<Target>,
    count: usize,
    pid: u32,
) -> Result<((u64, u64), Vec<Result<StreamOutcome>>)> {
    let mut set = JoinSet::new();
    for _ in 0..count {
        let (client, target) = (client.clone(), target.clone());
        set.spawn(async move { one_stream(&client, &target).await });
    }
    let sample = || (tree_rss_kib(pid), tree_anonymous_kib(pid));
    let mut peak = sample();
    let mut outcomes = Vec::with_capacity(count);
    let mut sampler = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            joined = set.join_next() => match joined {
                Some(joined) => outcomes.push(joined.context("a stream task failed")?),
                None => break,
            },
            _ = sampler.tick() => peak = peak.max(sample()),
        }
    }
    Ok((peak, outcomes))
}

/// `total` non-streaming requests with `concurrency` in flight: latencies, failures, first error.
async fn batch(
    client: &reqwest::Client,
    target: &Arc<Target>,
    total: usize,
    concurrency: usize,
) -> Result<(Vec<f64>, usize, Option<String>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..concurrency.clamp(1, total.max(1)) {
        let (client, target, next) = (client.clone(), target.clone(), next.clone());
        set.spawn(async move {
            let mut samples = Vec::new();
            let mut failed = 0usize;
            let mut first = None;
            while next.fetch_add(1, Ordering::Relaxed) < total {
                match one_completion(&client, &target).await {
                    Ok(ms) => samples.push(ms),
                    Err(error) => {
                        failed += 1;
                        first.get_or_insert(format!("{error:#}"));
                    }
                }
            }
            (samples, failed, first)
        });
    }
    let mut samples = Vec::with_capacity(total);
    let mut failed = 0;
    let mut first = None;
    while let Some(joined) = set.join_next().await {
        let (part, part_failed, part_first) = joined.context("a request task failed")?;
        samples.extend(part);
        failed += part_failed;
        if first.is_none() {
            first = part_first;
        }
    }
    Ok((samples, failed, first))
}

#[derive(Clone, Debug)]
struct StepResult {
    concurrency: usize,
    rps: f64,
    p50: f64,
    p99: f64,
    completed: usize,
    errors: usize,
}

/// Closed loop: `concurrency` clients send one request after another for `warmup + measure`;
/// only requests that start after the warm-up and end within the window count.
async fn load_step(
    client: &reqwest::Client,
    target: &Arc<Target>,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<StepResult> {
    let origin = Instant::now();
    let window_start = origin + warmup;
    let window_end = window_start + measure;
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let (client, target) = (client.clone(), target.clone());
        set.spawn(async move {
            let mut samples = Vec::new();
            let mut failed = 0usize;
            loop {
                let started = Instant::now();
                if started >= window_end {
                    break;
                }
                let result = one_completion(&client, &target).await;
                let ended = Instant::now();
                if started >= window_start && ended <= window_end {
                    match result {
                        Ok(ms) => samples.push(ms),
                        Err(_) => failed += 1,
                    }
                } else if result.is_err() {
                    // Outside the window a failure still says the gateway is past its limit;
                    // back off a little so that a refusing gateway is not spun against.
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            (samples, failed)
        });
    }
    let mut samples = Vec::new();
    let mut errors = 0;
    while let Some(joined) = set.join_next().await {
        let (part, part_failed) = joined.context("a load task failed")?;
        samples.extend(part);
        errors += part_failed;
    }
    let samples = sorted(samples);
    Ok(StepResult {
        concurrency,
        rps: samples.len() as f64 / measure.as_secs_f64(),
        p50: percentile(&samples, 0.50),
        p99: percentile(&samples, 0.99),
        completed: samples.len(),
        errors,
    })
}

// ------------------------------------------------------------------------------------------------
// The mock upstream: OpenAI's chat completions wire format, on its own runtime.

#[derive(Clone, Debug)]
struct MockConfig {
    chunks: usize,
    interval: Duration,
}

/// Starts the upstream on 127.0.0.1 on its own thread and runtime; its port.
fn start_mock(threads: usize, config: MockConfig) -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding the mock upstream")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let (ready_sender, ready) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("mock-upstream".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("mock-upstream")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    ready_sender.send(Err(error.to_string())).ok();
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => {
                        ready_sender.send(Err(error.to_string())).ok();
                        return;
                    }
                };
                let app = Router::new()
                    .route("/v1/chat/completions", post(mock_chat))
                    .route("/v1/models", get(mock_models))
                    .with_state(Arc::new(config));
                ready_sender.send(Ok(())).ok();
                // As a provider's server, each chunk goes out as soon as it is written.
                let listener = listener.tap_io(|connection| {
                    if let Err(error) = connection.set_nodelay(true) {
                        eprintln!("TCP_NODELAY could not be set: {error}");
                    }
                });
                if let Err(error) = axum::serve(listener, app).await {
                    eprintln!("the mock upstream stopped: {error}");
                }
            });
        })
        .context("starting the mock upstream's thread")?;
    ready
        .recv()
        .context("the mock upstream's thread ended")?
        .map_err(|error| anyhow!("the mock upstream did not start: {error}"))?;
    Ok(port)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

async fn mock_models() -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": unix_now(), "owned_by": "mock"}]
    }))
    .into_response()
}

async fn mock_chat(State(config): State<Arc<MockConfig>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "the body is not JSON", "type": "invalid_request_error", "param": null, "code": null}})),
        )
            .into_response();
    };
    let model = request["model"].as_str().unwrap_or(MODEL).to_owned();
    let created = unix_now();
    let id = format!("chatcmpl-mock{}", uuid::Uuid::new_v4().simple());
    let prompt_tokens = 12u64;
    if request["stream"].as_bool() != Some(true) {
        return axum::Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 7, "total_tokens": prompt_tokens + 7}
        }))
        .into_response();
    }
    let chunks = config.chunks;
    let interval = config.interval;
    let start = tokio::time::Instant::now();
    // Step 0: the role and the first content chunk at once; step k: content chunk k at
    // k × interval; step `chunks`: the finish chunk, the usage chunk and [DONE].
    let events = futures::stream::unfold(0usize, move |step| {
        let (id, model) = (id.clone(), model.clone());
        async move {
            if step > chunks {
                return None;
            }
            let mut text = String::new();
            if step == 0 {
                text.push_str(&chunk_event(
                    &id,
                    created,
                    &model,
                    json!({"role": "assistant", "content": ""}),
                    Value::Null,
                ));
            } else if step < chunks {
                tokio::time::sleep_until(start + interval * step as u32).await;
            }
            if step < chunks {
                text.push_str(&chunk_event(
                    &id,
                    created,
                    &model,
                    json!({"content": format!("tok{step} ")}),
                    Value::Null,
                ));
            } else {
                text.push_str(&chunk_event(&id, created, &model, json!({}), json!("stop")));
                let usage = json!({
                    "id": id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": null,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": chunks,
                        "total_tokens": prompt_tokens + chunks as u64
                    }
                });
                text.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
            }
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(text)),
                step + 1,
            ))
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

// ------------------------------------------------------------------------------------------------
// LiteLLM

async fn start_litellm(
    client: &reqwest::Client,
    scratch: &Scratch,
    executable: &Path,
    mock_port: u16,
    workers: usize,
) -> Result<(Process, Target, String)> {
    if !executable.is_file() {
        bail!("{} does not exist", executable.display());
    }
    let version = python_package_version(executable, "litellm")
        .unwrap_or_else(|| "(unknown version)".to_owned());
    let folder = scratch.path.join("litellm");
    std::fs::create_dir_all(&folder)?;
    let config = folder.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: openai/{MODEL}\n      api_base: http://127.0.0.1:{mock_port}/v1\n      api_key: {UPSTREAM_KEY}\n"
        ),
    )?;
    // LiteLLM refuses well-known master keys: a random one.
    let master_key = format!(
        "sk-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let port = free_port()?;
    let mut command = Command::new(executable);
    command
        .current_dir(&folder)
        .args(["--config"])
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--num_workers", &workers.max(1).to_string()])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_MASTER_KEY", &master_key)
        // LiteLLM's production setting: errors only (this also silences uvicorn's access log).
        .env("LITELLM_LOG", "ERROR")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_HOST")
        .env_remove("REDIS_URL");
    let mut process = Process::spawn("LiteLLM", command, folder.join("litellm.log"))?;
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(
        client,
        &mut process,
        &format!("{base}/health/liveliness"),
        Duration::from_secs(180),
    )
    .await?;
    let target = Target::new(
        "LiteLLM",
        format!("{base}/v1/chat/completions"),
        Some(master_key),
        MODEL,
        Some(process.pid()),
    );
    check_completion(client, &target).await.with_context(|| {
        format!(
            "LiteLLM did not relay a completion — the end of its output:\n{}",
            process.log_tail(30)
        )
    })?;
    Ok((process, target, version))
}

/// The version of a Python package in the virtualenv of `executable` (its sibling `python`).
fn python_package_version(executable: &Path, package: &str) -> Option<String> {
    let python = executable.parent()?.join("python");
    let output = Command::new(python)
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version('{package}'))"),
        ])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

// ------------------------------------------------------------------------------------------------
// Async Coder

async fn start_async_coder(
    client: &reqwest::Client,
    scratch: &Scratch,
    executable: &Path,
    mock_port: u16,
) -> Result<(Process, Target, String)> {
    if !executable.is_file() {
        bail!("{} does not exist", executable.display());
    }
    let version = Command::new(executable)
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "server (unknown version)".to_owned());
    let revision = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    let version = match revision {
        Some(revision) => format!("{version}, commit {revision}"),
        None => version,
    };
    let folder = scratch.path.join("async-coder");
    let data = folder.join("data");
    std::fs::create_dir_all(&data)?;
    // No tier limit may stop the benchmark: every limit is lifted.
    let tiers = folder.join("tiers.toml");
    std::fs::write(
        &tiers,
        "[public]\nrequests_per_day = 0\ntokens_per_month = 0\nmodes = []\nmax_projects = 0\n\n\
         [free]\nmodes = [\"*\"]\n\n[premium]\nmodes = [\"*\"]\n\n[enterprise]\nmodes = [\"*\"]\n",
    )?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(executable);
    command
        .current_dir(&folder)
        .args(["--site-addr", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data)
        .arg("--database-url")
        .arg(format!("sqlite://{}/bench.db?mode=rwc", data.display()))
        .arg("--tiers-file")
        .arg(&tiers)
        .args(["--sign-ups-per-address-per-hour", "1000"])
        .args(["--allow-local-endpoint", &format!("127.0.0.1:{mock_port}")])
        .env("RUST_LOG", "warn")
        .env_remove("ASYNC_CODER_MASTER_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("LEPTOS_SITE_ADDR");
    let mut process = Process::spawn("Async Coder's server", command, folder.join("server.log"))?;
    wait_until_ready(
        client,
        &mut process,
        &format!("{base}/readyz"),
        Duration::from_secs(60),
    )
    .await?;

    // Set up as a person would: the first account, a personal access token, a local provider.
    let cookie = sign_up_first_account(client, &base).await?;
    let (_, created) = server_function(
        client,
        &base,
        "/api/tokens/create",
        &[("name", "gateway-bench"), ("days", "1")],
        Some(&cookie),
    )
    .await
    .context("creating a personal access token failed")?;
    let token = created["secret"]
        .as_str()
        .ok_or_else(|| anyhow!("the new access token has no secret: {created}"))?
        .to_owned();
    save_local_provider(client, &base, &cookie, mock_port, UPSTREAM_KEY).await?;

    // The gateway: its model list, then the first model name that reaches the upstream.
    let response = client
        .get(format!("{base}/v1/models"))
        .bearer_auth(&token)
        .send()
        .await
        .context("GET /v1/models")?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "GET /v1/models with the access token answered {status} (is the gateway in this \
             build of the server?): {}",
            snippet(&body)
        );
    }
    let listed: Vec<String> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|models| {
            models["data"].as_array().map(|data| {
                data.iter()
                    .filter_map(|model| model["id"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    let mut candidates = vec![MODEL.to_owned(), format!("bench/{MODEL}")];
    candidates.extend(listed.iter().filter(|id| id.contains(MODEL)).cloned());
    let mut seen = HashSet::new();
    candidates.retain(|candidate| seen.insert(candidate.clone()));
    let mut refusals = Vec::new();
    for model in candidates {
        let target = Target::new(
            "Async Coder",
            format!("{base}/v1/chat/completions"),
            Some(token.clone()),
            &model,
            Some(process.pid()),
        );
        match check_completion(client, &target).await {
            Ok(()) => return Ok((process, target, version)),
            Err(error) => refusals.push(format!("  model {model:?}: {error:#}")),
        }
    }
    bail!(
        "no model name reached the upstream through POST /v1/chat/completions (GET /v1/models \
         listed {listed:?}):\n{}\n— the end of the server's output:\n{}",
        refusals.join("\n"),
        process.log_tail(30)
    )
}

// ------------------------------------------------------------------------------------------------
// Process-tree figures from /proc

// ------------------------------------------------------------------------------------------------
// The report

#[derive(Default)]
struct Report {
    values: HashMap<(String, String), f64>,
    errors: HashMap<String, (usize, Option<String>)>,
    notes: Vec<String>,
}

impl Report {
    fn set(&mut self, target: &str, key: &str, value: f64) {
        self.values
            .insert((target.to_owned(), key.to_owned()), value);
    }

    fn get(&self, target: &str, key: &str) -> f64 {
        self.values
            .get(&(target.to_owned(), key.to_owned()))
            .copied()
            .unwrap_or(f64::NAN)
    }

    fn error(&mut self, target: &str, count: usize, first: Option<String>) {
        let entry = self.errors.entry(target.to_owned()).or_default();
        entry.0 += count;
        if entry.1.is_none() {
            entry.1 = first;
        }
    }

    fn note(&mut self, note: String) {
        self.notes.push(note);
    }
}

/// Whether lower or higher is better for a row, which decides the ratio's direction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
    /// Informational: no ratio.
    Neither,
}

fn print_report(
    report: &Report,
    params: &Params,
    machine: &Machine,
    versions: &[String],
    ours: bool,
    litellm: bool,
) {
    let direct = "mock direct";
    let (ac, ll) = ("Async Coder", "LiteLLM");
    let figure = |target: &str, key: &str, present: bool, decimals: usize| -> String {
        if !present {
            return "skipped".to_owned();
        }
        let value = report.get(target, key);
        if value.is_nan() {
            "—".to_owned()
        } else {
            format!("{value:.decimals$}")
        }
    };
    let ratio = |key: &str, better: Better| -> String {
        if !(ours && litellm) || better == Better::Neither {
            return String::new();
        }
        let (a, l) = (report.get(ac, key), report.get(ll, key));
        let value = match better {
            Better::Lower => l / a,
            Better::Higher => a / l,
            Better::Neither => f64::NAN,
        };
        if a.is_nan() || l.is_nan() {
            "—".to_owned()
        } else if a <= 0.0 || l <= 0.0 {
            if better == Better::Lower && a <= 0.0 && l > 0.0 {
                "∞ (ours ≤ 0)".to_owned()
            } else if better == Better::Higher && l <= 0.0 && a > 0.0 {
                "∞ (theirs 0)".to_owned()
            } else {
                "n/a".to_owned()
            }
        } else {
            format!("{value:.1}×")
        }
    };
    // (label, key, decimals, direct column?, which way is better)
    let rows: Vec<(String, &str, usize, bool, Better)> = vec![
        (
            "latency p50, one at a time (ms)".into(),
            "lat_p50",
            3,
            true,
            Better::Neither,
        ),
        (
            "latency p99, one at a time (ms)".into(),
            "lat_p99",
            3,
            true,
            Better::Neither,
        ),
        (
            "a. added latency p50 (ms)".into(),
            "lat_add_p50",
            3,
            false,
            Better::Lower,
        ),
        (
            "a. added latency p99 (ms)".into(),
            "lat_add_p99",
            3,
            false,
            Better::Lower,
        ),
        (
            "a′. back to back: latency p50 (ms)".into(),
            "b2b_lat_p50",
            3,
            true,
            Better::Neither,
        ),
        (
            "a′. back to back: latency p99 (ms)".into(),
            "b2b_lat_p99",
            3,
            true,
            Better::Neither,
        ),
        (
            "a′. back to back: added latency p50 (ms)".into(),
            "b2b_lat_add_p50",
            3,
            false,
            Better::Lower,
        ),
        (
            "a′. back to back: added latency p99 (ms)".into(),
            "b2b_lat_add_p99",
            3,
            false,
            Better::Lower,
        ),
        (
            "   CPU used after answering (ms per request)".into(),
            "after_cpu",
            3,
            false,
            Better::Lower,
        ),
        (
            "   … until idle again (ms per request)".into(),
            "after_wall",
            2,
            false,
            Better::Neither,
        ),
        (
            "time to first chunk p50 (ms)".into(),
            "ttft_p50",
            2,
            true,
            Better::Neither,
        ),
        (
            "b. added time to first chunk p50 (ms)".into(),
            "ttft_add_p50",
            2,
            false,
            Better::Lower,
        ),
        (
            "b. added time to first chunk p99 (ms)".into(),
            "ttft_add_p99",
            2,
            false,
            Better::Lower,
        ),
        (
            "gap between chunks p99 (ms)".into(),
            "gap_p99",
            2,
            true,
            Better::Neither,
        ),
        (
            "b. added gap between chunks p99 (ms)".into(),
            "gap_add_p99",
            2,
            false,
            Better::Lower,
        ),
        (
            format!(
                "b. chunks missing (of {} × {})",
                params.streams, params.chunks
            ),
            "missing",
            0,
            true,
            Better::Neither,
        ),
        (
            "c. CPU time per request (ms)".into(),
            "cpu_ms",
            3,
            false,
            Better::Lower,
        ),
        (
            "d. req/s with p99 < 10 ms".into(),
            "rps_10",
            0,
            true,
            Better::Higher,
        ),
        (
            "   … at concurrency".into(),
            "rps_10_at",
            0,
            true,
            Better::Neither,
        ),
        (
            "d. req/s with p99 < 100 ms".into(),
            "rps_100",
            0,
            true,
            Better::Higher,
        ),
        (
            "   … at concurrency".into(),
            "rps_100_at",
            0,
            true,
            Better::Neither,
        ),
        (
            "peak req/s (any p99)".into(),
            "rps_peak",
            0,
            true,
            Better::Higher,
        ),
        (
            "   … its p99 (ms)".into(),
            "rps_peak_p99",
            1,
            true,
            Better::Neither,
        ),
        (
            "CPU at rest, % of one core".into(),
            "cpu_idle",
            2,
            false,
            Better::Neither,
        ),
        (
            "e. resident memory idle (MiB)".into(),
            "rss_idle",
            1,
            false,
            Better::Lower,
        ),
        (
            format!(
                "e. resident memory, {} streams open (MiB)",
                params.held_streams
            ),
            "rss_streams",
            1,
            false,
            Better::Lower,
        ),
        (
            "   of which anonymous, idle (MiB)".into(),
            "anon_idle",
            1,
            false,
            Better::Lower,
        ),
        (
            format!(
                "   of which anonymous, {} streams (MiB)",
                params.held_streams
            ),
            "anon_streams",
            1,
            false,
            Better::Lower,
        ),
        (
            format!("   streams complete of {}", params.held_streams),
            "held_complete",
            0,
            false,
            Better::Neither,
        ),
    ];

    let mut out = String::new();
    put!(
        out,
        "\nGateway benchmark — both gateways in front of the same mock upstream on 127.0.0.1, \
         requests interleaved"
    );
    put!(
        out,
        "machine: {} CPUs ({}), {:.1} GiB, Linux {}",
        machine.cpus,
        machine.model,
        machine.memory_gib,
        machine.kernel
    );
    for version in versions {
        put!(out, "         {version}");
    }
    put!(
        out,
        "counts: {} requests one at a time per target after {} warm-up; {} streams of {} chunks \
         {} ms apart ({} at a time); {} requests for CPU ({} in flight); throughput steps of \
         {:.1} s up to concurrency {}; {} streams held",
        params.requests,
        params.warmup,
        params.streams,
        params.chunks,
        params.chunk_interval.as_millis(),
        params.stream_concurrency,
        params.cpu_requests,
        params.cpu_concurrency,
        params.step.as_secs_f64(),
        params.max_concurrency,
        params.held_streams
    );
    out.push('\n');
    put!(
        out,
        "| {:<44} | {:>12} | {:>12} | {:>12} | {:>13} |",
        "figure",
        "mock direct",
        "Async Coder",
        "LiteLLM",
        "ratio*"
    );
    put!(
        out,
        "|{}|{}|{}|{}|{}|",
        "-".repeat(46),
        "-".repeat(14),
        "-".repeat(14),
        "-".repeat(14),
        "-".repeat(15)
    );
    for (label, key, decimals, with_direct, better) in rows {
        let direct_text = if with_direct {
            figure(direct, key, true, decimals)
        } else {
            String::new()
        };
        put!(
            out,
            "| {:<44} | {:>12} | {:>12} | {:>12} | {:>13} |",
            label,
            direct_text,
            figure(ac, key, ours, decimals),
            figure(ll, key, litellm, decimals),
            ratio(key, better)
        );
    }
    put!(
        out,
        "\n* ratio > 1 means Async Coder is better: LiteLLM / Async Coder for costs (latency, CPU, \
         memory), Async Coder / LiteLLM for request rates."
    );
    put!(
        out,
        "  added = gateway percentile minus the same percentile of the upstream alone; CPU and \
         memory cover each gateway's whole process tree (/proc).\n  \
         a. each request starts once the gateway asked before it has used no CPU for 1 ms; \
         a′. the same, back to back (a gateway's work after answering slows whatever comes next)."
    );
    for (target, (count, first)) in &report.errors {
        put!(
            out,
            "  errors, {target}: {count} (first: {})",
            first.as_deref().unwrap_or("?")
        );
    }
    for note in &report.notes {
        put!(out, "  note: {note}");
    }
    print!("{out}");
}
