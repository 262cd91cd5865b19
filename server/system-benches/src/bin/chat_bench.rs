//! Chat streaming benchmark: one Async Coder server (the release binary, SQLite) holding many
//! streaming conversations at once against a fast local upstream that speaks OpenAI's chat
//! completions wire format. Every chunk the upstream writes carries its index and the instant it
//! was written; every browser-side reader (`GET /api/chat/answers/<id>/events`, as EventSource
//! reads it) checks that it gets each chunk once, in order, and how long after it was written.
//!
//! Printed: added inter-chunk latency p50/p99/max (through the server, minus the same streams
//! read straight from the upstream), resident memory of the server idle and with every stream
//! open (per stream), dropped and duplicated chunks, and that every answer was stored complete.
//!
//! Run: `scripts/bench-chat` (builds the server and this example). `--streams`, `--chunks`,
//! `--gap-ms` change the load; `--quick` is a smoke run with 100 streams.

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::borrow::Cow;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use system_benches::{
    CpuSample, Machine, Process, Scratch, chunk_event, clock_ticks_per_second, free_port,
    percentile, save_local_provider, server_function, sign_up_first_account, snippet, sorted,
    tree_cpu, tree_rss_kib, wait_until_ready,
};

const MODEL: &str = "mock-model";

#[derive(Parser, Debug)]
#[command(about = "Async Coder chat streaming benchmark (many concurrent conversations)")]
struct Args {
    /// The release server binary.
    #[arg(long, env = "BENCH_SERVER", value_name = "FILE")]
    server: PathBuf,
    /// Conversations streaming at the same time.
    #[arg(long, env = "BENCH_STREAMS", default_value_t = 1000)]
    streams: usize,
    /// Chunks per answer.
    #[arg(long, env = "BENCH_CHUNKS", default_value_t = 64)]
    chunks: usize,
    /// Milliseconds between the upstream's chunks.
    #[arg(long, env = "BENCH_GAP_MS", default_value_t = 20)]
    gap_ms: u64,
    /// A smoke run: 100 streams.
    #[arg(long)]
    quick: bool,
    /// Keep the scratch folder (server log, database).
    #[arg(long)]
    keep: bool,
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
        })
}

// ------------------------------------------------------------------------------------------------
// The upstream: holds every answer until all streams asked, then streams them together.

struct Upstream {
    chunks: usize,
    gap: Duration,
    /// Answers start once this many requests arrived (or after a minute).
    expected: AtomicUsize,
    arrived: AtomicUsize,
    go: Notify,
}

async fn mock_models() -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 1, "owned_by": "bench"}]
    }))
    .into_response()
}

async fn mock_chat(State(upstream): State<Arc<Upstream>>, _body: Bytes) -> Response {
    let arrived = upstream.arrived.fetch_add(1, Ordering::SeqCst) + 1;
    if arrived >= upstream.expected.load(Ordering::SeqCst) {
        upstream.go.notify_waiters();
    } else {
        let notified = upstream.go.notified();
        if upstream.arrived.load(Ordering::SeqCst) < upstream.expected.load(Ordering::SeqCst) {
            tokio::time::timeout(Duration::from_secs(60), notified)
                .await
                .ok();
        }
    }
    let chunks = upstream.chunks;
    let gap = upstream.gap;
    let id = format!("chatcmpl-bench{arrived}");
    let stream = async_stream::stream! {
        let started = tokio::time::Instant::now();
        for index in 0..chunks {
            // Chunks on a fixed schedule: a late one does not push the rest back.
            tokio::time::sleep_until(started + gap * u32::try_from(index).unwrap_or(0)).await;
            let text = format!("{index}:{} ", unix_micros());
            yield Ok::<Bytes, std::io::Error>(Bytes::from(chunk_event(&id, 1, MODEL, json!({"content": text}), Value::Null)));
        }
        yield Ok(Bytes::from(chunk_event(&id, 1, MODEL, json!({}), json!("stop"))));
        let usage = json!({"id": id, "object": "chat.completion.chunk", "created": 1, "model": MODEL, "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}});
        yield Ok(Bytes::from(format!("data: {usage}\n\ndata: [DONE]\n\n")));
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

fn start_upstream(upstream: Arc<Upstream>) -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    std::thread::Builder::new()
        .name("bench-upstream".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the upstream");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("the upstream's socket");
                let app = Router::new()
                    .route("/v1/chat/completions", post(mock_chat))
                    .route("/v1/models", get(mock_models))
                    .with_state(upstream);
                if let Err(error) = axum::serve(listener, app).await {
                    eprintln!("the upstream stopped: {error}");
                }
            });
        })?;
    Ok(port)
}

// ------------------------------------------------------------------------------------------------
// Readers

/// The fields of an answer event the readers look at.
#[derive(serde::Deserialize)]
struct WireEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
}

#[derive(Default)]
struct Outcome {
    /// Milliseconds from the upstream writing a chunk to the reader having it.
    latencies: Vec<f64>,
    received: usize,
    dropped: usize,
    duplicated: usize,
    /// How the answer ended (`complete`, …), when it did.
    finished: Option<String>,
    /// SSE ids that did not follow the previous one.
    id_gaps: usize,
}

/// Notes a chunk's text (`<index>:<micros> `, possibly several run together) in `outcome`.
fn note_chunks(text: &str, next: &mut usize, outcome: &mut Outcome) {
    let now = unix_micros();
    for piece in text.split_whitespace() {
        let Some((index, written)) = piece.split_once(':') else {
            continue;
        };
        let (Ok(index), Ok(written)) = (index.parse::<usize>(), written.parse::<u64>()) else {
            continue;
        };
        outcome.received += 1;
        outcome
            .latencies
            .push(now.saturating_sub(written) as f64 / 1000.0);
        match index.cmp(next) {
            std::cmp::Ordering::Equal => *next += 1,
            std::cmp::Ordering::Greater => {
                outcome.dropped += index - *next;
                *next = index + 1;
            }
            std::cmp::Ordering::Less => outcome.duplicated += 1,
        }
    }
}

/// Reads one answer's events as a browser's EventSource does.
async fn read_answer(client: reqwest::Client, url: String, cookie: String) -> Result<Outcome> {
    let response = client
        .get(&url)
        .header(header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("GET {url} answered {}", response.status());
    }
    let mut outcome = Outcome::default();
    let mut next = 0;
    let mut last_id = 0_u64;
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while let Some(part) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&part?));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut data = None;
            for line in frame.lines() {
                if let Some(id) = line.strip_prefix("id: ") {
                    let id: u64 = id.trim().parse().unwrap_or(0);
                    if id != last_id + 1 {
                        outcome.id_gaps += 1;
                    }
                    last_id = id;
                }
                if let Some(value) = line.strip_prefix("data: ") {
                    data = Some(value);
                }
            }
            let Some(data) = data else { continue };
            // Typed and borrowed: the readers share the machine with the server.
            let Ok(event) = serde_json::from_str::<WireEvent<'_>>(data) else {
                continue;
            };
            match event.kind.as_ref() {
                "text" => note_chunks(
                    event.text.as_deref().unwrap_or_default(),
                    &mut next,
                    &mut outcome,
                ),
                "finished" => outcome.finished = event.status.map(|status| status.into_owned()),
                "stored" => {
                    outcome.finished = serde_json::from_str::<Value>(data)
                        .ok()
                        .and_then(|stored| stored["message"]["status"].as_str().map(str::to_owned));
                }
                _ => {}
            }
        }
    }
    Ok(outcome)
}

/// Reads the upstream's stream straight (the baseline: what the machine adds on its own).
async fn read_direct(client: reqwest::Client, url: String) -> Result<Outcome> {
    let response = client
        .post(&url)
        .json(&json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "go"}]}))
        .send()
        .await?;
    let mut outcome = Outcome::default();
    let mut next = 0;
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while let Some(part) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&part?));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let Some(value) = frame.trim().strip_prefix("data: ") else {
                continue;
            };
            if let Ok(chunk) = serde_json::from_str::<Value>(value)
                && let Some(text) = chunk["choices"][0]["delta"]["content"].as_str()
            {
                note_chunks(text, &mut next, &mut outcome);
            }
        }
    }
    outcome.finished = Some("complete".into());
    Ok(outcome)
}

struct Summary {
    p50: f64,
    p99: f64,
    max: f64,
    received: usize,
    dropped: usize,
    duplicated: usize,
    id_gaps: usize,
    complete: usize,
    failed_readers: usize,
}

fn summarize(outcomes: Vec<Result<Outcome>>) -> (Summary, Option<String>) {
    let mut latencies = Vec::new();
    let mut summary = Summary {
        p50: 0.0,
        p99: 0.0,
        max: 0.0,
        received: 0,
        dropped: 0,
        duplicated: 0,
        id_gaps: 0,
        complete: 0,
        failed_readers: 0,
    };
    let mut first_error = None;
    for outcome in outcomes {
        match outcome {
            Ok(outcome) => {
                latencies.extend(outcome.latencies);
                summary.received += outcome.received;
                summary.dropped += outcome.dropped;
                summary.duplicated += outcome.duplicated;
                summary.id_gaps += outcome.id_gaps;
                if outcome.finished.as_deref() == Some("complete") {
                    summary.complete += 1;
                }
            }
            Err(error) => {
                summary.failed_readers += 1;
                first_error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    let latencies = sorted(latencies);
    summary.p50 = percentile(&latencies, 0.5);
    summary.p99 = percentile(&latencies, 0.99);
    summary.max = latencies.last().copied().unwrap_or(f64::NAN);
    (summary, first_error)
}

// ------------------------------------------------------------------------------------------------
// The server

async fn start_server(
    client: &reqwest::Client,
    scratch: &Scratch,
    executable: &std::path::Path,
    upstream_port: u16,
) -> Result<(Process, String, String)> {
    let folder = scratch.path.join("server");
    let data = folder.join("data");
    std::fs::create_dir_all(&data)?;
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
        .arg("--tiers-file")
        .arg(&tiers)
        .args([
            "--allow-local-endpoint",
            &format!("127.0.0.1:{upstream_port}"),
        ])
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
    let cookie = sign_up_first_account(client, &base).await?;
    save_local_provider(client, &base, &cookie, upstream_port, "").await?;
    Ok((process, base, cookie))
}

async fn send_message(client: &reqwest::Client, base: &str, cookie: &str) -> Result<String> {
    let (_, conversation) = server_function(
        client,
        base,
        "/api/chat/new",
        &[("mode", "chat"), ("model", &format!("bench/{MODEL}"))],
        Some(cookie),
    )
    .await?;
    let id = conversation["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no conversation id"))?;
    let response = client
        .post(format!("{base}/api/chat/send"))
        .header(header::ORIGIN, base)
        .header(header::COOKIE, cookie)
        .json(&json!({"conversation_id": id, "text": "Stream, please.", "context": null}))
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("POST /api/chat/send answered {status}: {}", snippet(&body));
    }
    let sent: Value = serde_json::from_slice(&body)?;
    sent["answer"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no answer id: {sent}"))
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.streams = args.streams.min(100);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let scratch = Scratch::new("chat-bench", args.keep)?;
    let upstream = Arc::new(Upstream {
        chunks: args.chunks,
        gap: Duration::from_millis(args.gap_ms),
        expected: AtomicUsize::new(args.streams),
        arrived: AtomicUsize::new(0),
        go: Notify::new(),
    });
    let upstream_port = start_upstream(Arc::clone(&upstream))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.streams + 16)
        .build()?;

    // Baseline: the same streams read straight from the upstream.
    eprintln!(
        "baseline: {} streams straight from the upstream…",
        args.streams
    );
    let mut direct = JoinSet::new();
    for _ in 0..args.streams {
        direct.spawn(read_direct(
            client.clone(),
            format!("http://127.0.0.1:{upstream_port}/v1/chat/completions"),
        ));
    }
    let (baseline, baseline_error) = summarize(direct.join_all().await);
    if let Some(error) = baseline_error {
        bail!("the baseline failed: {error}");
    }

    eprintln!("starting the server…");
    let (process, base, cookie) =
        start_server(&client, &scratch, &args.server, upstream_port).await?;
    let pid = process.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_kib = tree_rss_kib(pid);

    upstream.arrived.store(0, Ordering::SeqCst);
    eprintln!(
        "sending {} messages and following their answers…",
        args.streams
    );
    let peak = Arc::new(AtomicU64::new(idle_kib));
    let sampling = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                peak.fetch_max(tree_rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let cpu_before = tree_cpu(pid);
    let started = Instant::now();
    let mut readers = JoinSet::new();
    let mut sends = JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    for _ in 0..args.streams {
        let client = client.clone();
        let base = base.clone();
        let cookie = cookie.clone();
        let limit = Arc::clone(&limit);
        sends.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            send_message(&client, &base, &cookie).await
        });
    }
    let mut send_errors = Vec::new();
    while let Some(sent) = sends.join_next().await {
        match sent.context("a send task")? {
            Ok(answer) => {
                readers.spawn(read_answer(
                    client.clone(),
                    format!("{base}/api/chat/answers/{answer}/events"),
                    cookie.clone(),
                ));
            }
            Err(error) => send_errors.push(format!("{error:#}")),
        }
    }
    // Failed sends never reach the upstream: let the others start.
    upstream
        .expected
        .fetch_sub(send_errors.len(), Ordering::SeqCst);
    upstream.go.notify_waiters();
    let sent_in = started.elapsed();
    let cpu_after_sends = tree_cpu(pid);
    let (through, reader_error) = summarize(readers.join_all().await);
    let streamed_in = started.elapsed();
    let cpu_after = tree_cpu(pid);
    let ticks = clock_ticks_per_second();
    let cpu_seconds = CpuSample::seconds_between(&cpu_before, &cpu_after, ticks);
    let cpu_sending = CpuSample::seconds_between(&cpu_before, &cpu_after_sends, ticks);
    let cpu_streaming = CpuSample::seconds_between(&cpu_after_sends, &cpu_after, ticks);
    sampling.abort();
    let peak_kib = peak.load(Ordering::Relaxed).max(tree_rss_kib(pid));
    let after_kib = tree_rss_kib(pid);
    drop(process);

    let machine = Machine::describe();
    let expected_chunks = args.streams * args.chunks;
    println!();
    println!(
        "Chat streaming benchmark — {} concurrent conversations, {} chunks each, {} ms apart",
        args.streams, args.chunks, args.gap_ms
    );
    println!(
        "Machine: {} CPUs ({}), {:.1} GiB, Linux {}",
        machine.cpus, machine.model, machine.memory_gib, machine.kernel
    );
    println!(
        "Server: {} (SQLite), the bench's clients and upstream on the same machine",
        args.server.display()
    );
    println!();
    println!("| Figure | Through the server | Upstream read directly | Added by the server |");
    println!("|---|---:|---:|---:|");
    println!(
        "| chunk latency p50 (ms) | {:.2} | {:.2} | {:.2} |",
        through.p50,
        baseline.p50,
        through.p50 - baseline.p50
    );
    println!(
        "| chunk latency p99 (ms) | {:.2} | {:.2} | {:.2} |",
        through.p99,
        baseline.p99,
        through.p99 - baseline.p99
    );
    println!(
        "| chunk latency max (ms) | {:.2} | {:.2} | {:.2} |",
        through.max,
        baseline.max,
        through.max - baseline.max
    );
    println!(
        "| chunks received / expected | {} / {expected_chunks} | {} / {expected_chunks} | |",
        through.received, baseline.received
    );
    println!(
        "| dropped / duplicated chunks | {} / {} | {} / {} | |",
        through.dropped, through.duplicated, baseline.dropped, baseline.duplicated
    );
    println!("| event ids out of sequence | {} | | |", through.id_gaps);
    println!(
        "| answers stored complete | {} / {} | | |",
        through.complete, args.streams
    );
    println!();
    println!("| Server memory | MiB |");
    println!("|---|---:|");
    println!(
        "| resident, idle (signed in, provider saved) | {:.1} |",
        idle_kib as f64 / 1024.0
    );
    println!(
        "| resident, peak with every stream open | {:.1} |",
        peak_kib as f64 / 1024.0
    );
    println!(
        "| resident, after the streams ended | {:.1} |",
        after_kib as f64 / 1024.0
    );
    println!(
        "| per open stream (KiB) | {:.1} |",
        (peak_kib.saturating_sub(idle_kib)) as f64 / args.streams as f64
    );
    println!();
    println!(
        "Messages stored and answers started in {:.1} s; all streams read in {:.1} s.",
        sent_in.as_secs_f64(),
        streamed_in.as_secs_f64()
    );
    println!(
        "Server CPU: {:.2} s in all; storing {} messages and starting their answers {:.2} s \
         ({:.2} ms each); streaming {:.2} s ({:.1} µs per chunk in and out); {:.0}% of one core \
         over the run.",
        cpu_seconds,
        args.streams,
        cpu_sending,
        cpu_sending * 1e3 / args.streams.max(1) as f64,
        cpu_streaming,
        cpu_streaming * 1e6 / expected_chunks.max(1) as f64,
        cpu_seconds * 100.0 / streamed_in.as_secs_f64().max(f64::EPSILON),
    );
    if !send_errors.is_empty() {
        println!(
            "{} sends failed; the first: {}",
            send_errors.len(),
            send_errors[0]
        );
    }
    if let Some(error) = reader_error {
        println!(
            "{} readers failed; the first: {error}",
            through.failed_readers
        );
    }
    if through.dropped + through.duplicated + through.id_gaps + through.failed_readers > 0
        || through.received != expected_chunks
        || !send_errors.is_empty()
    {
        bail!("chunks were lost, repeated or out of order (see above)");
    }
    Ok(())
}
