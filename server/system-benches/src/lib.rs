//! What the benchmarks share: scratch folders, child processes in their own group, readiness
//! polling, server function calls as our pages make them, percentiles, and resident memory read
//! from /proc.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::http::header;
use serde_json::{Value, json};

pub fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.chars().count() > 400 {
        format!("{}…", text.chars().take(400).collect::<String>())
    } else {
        text.to_owned()
    }
}

pub fn sorted(mut samples: Vec<f64>) -> Vec<f64> {
    samples.sort_by(f64::total_cmp);
    samples
}

/// Nearest-rank percentile of sorted samples; NaN when there are none.
pub fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A temporary folder, removed at the end unless kept.
pub struct Scratch {
    pub path: PathBuf,
    keep: bool,
}

impl Scratch {
    pub fn new(name: &str, keep: bool) -> Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "{name}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch { path, keep })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else if let Err(error) = std::fs::remove_dir_all(&self.path) {
            eprintln!("could not remove {}: {error}", self.path.display());
        }
    }
}

/// A child in its own process group, ended with the whole group when dropped.
pub struct Process {
    pub name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Result<Self> {
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        Ok(Process { name, child, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the end of its log if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}) — the end of its output:\n{}",
                self.name,
                self.log_tail(30)
            );
        }
        Ok(())
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|line| format!("    {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn signal_group(&self, signal: &str) {
        Command::new("kill")
            .args([signal, "--", &format!("-{}", self.pid())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            // Its group may still hold workers.
            self.signal_group("-KILL");
            return;
        }
        self.signal_group("-TERM");
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                self.signal_group("-KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("-KILL");
        self.child.wait().ok();
    }
}

pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("looking for a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Polls `url` with GET until it answers 200, the process exits, or `limit` passes.
pub async fn wait_until_ready(
    client: &reqwest::Client,
    process: &mut Process,
    url: &str,
    limit: Duration,
) -> Result<()> {
    let until = Instant::now() + limit;
    let mut last = String::from("no answer yet");
    while Instant::now() < until {
        process.check_running()?;
        match client.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last = format!("answered {}", response.status()),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!(
        "{} did not answer GET {url} within {} s ({last}) — the end of its output:\n{}",
        process.name,
        limit.as_secs(),
        process.log_tail(30)
    )
}

/// Percent-encodes a form value.
pub fn form_value(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// A server function call as our own pages make it: form-encoded, from this origin.
pub async fn server_function(
    client: &reqwest::Client,
    base: &str,
    endpoint: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
) -> Result<(reqwest::header::HeaderMap, Value)> {
    let body = form
        .iter()
        .map(|(name, value)| format!("{name}={}", form_value(value)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = client
        .post(format!("{base}{endpoint}"))
        .header(header::ORIGIN, base)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {endpoint}"))?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        bail!("POST {endpoint} answered {status}: {}", snippet(&bytes));
    }
    let value = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "POST {endpoint} answered something that is not JSON: {}",
            snippet(&bytes)
        )
    })?;
    Ok((headers, value))
}

/// Each process's parent, from /proc/<pid>/stat.
pub fn parents() -> HashMap<u32, u32> {
    let mut parents = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(fields) = stat_fields(pid)
            && let Some(parent) = fields.get(1).and_then(|field| field.parse().ok())
        {
            parents.insert(pid, parent);
        }
    }
    parents
}

/// `root` and all its descendants.
pub fn process_tree(root: u32) -> Vec<u32> {
    let parents = parents();
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| **p == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    tree
}

/// The fields of /proc/<pid>/stat after the command name: index 0 is field 3 (state).
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Resident memory of the whole tree, in KiB.
pub fn tree_rss_kib(root: u32) -> u64 {
    tree_status_kib(root, "VmRSS:")
}

/// The anonymous part of [`tree_rss_kib`] (heap, stacks: not the program's files), in KiB.
pub fn tree_anonymous_kib(root: u32) -> u64 {
    tree_status_kib(root, "RssAnon:")
}

/// One `/proc/<pid>/status` field (given with its colon), summed over the process tree, in KiB.
fn tree_status_kib(root: u32, field: &str) -> u64 {
    process_tree(root)
        .into_iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        })
        .sum()
}

pub struct Machine {
    pub cpus: usize,
    pub model: String,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, name)| name.trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("MemTotal:"))
                    .and_then(|value| value.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            model,
            memory_gib,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|text| text.trim().to_owned())
                .unwrap_or_default(),
        }
    }
}

/// One chunk of an OpenAI chat completions stream, as an SSE frame.
pub fn chunk_event(id: &str, created: u64, model: &str, delta: Value, finish: Value) -> String {
    let event = json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    format!("data: {event}\n\n")
}

/// Signs up the instance's first account through the server function, as the sign-up page does;
/// returns its session cookie (`session=…`).
pub async fn sign_up_first_account(client: &reqwest::Client, base: &str) -> Result<String> {
    let (headers, _) = server_function(
        client,
        base,
        "/api/auth/sign-up",
        &[
            ("email", "bench@example.com"),
            ("name", "Bench"),
            ("password", "correct horse battery staple"),
        ],
        None,
    )
    .await
    .context("signing up the first account failed")?;
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|cookie| cookie.starts_with("session=") || cookie.starts_with("__Host-session="))
        .and_then(|cookie| cookie.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("signing up set no session cookie"))
}

/// Saves the upstream on 127.0.0.1 as the account's local provider labelled `bench`.
pub async fn save_local_provider(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    upstream_port: u16,
    key: &str,
) -> Result<()> {
    let upstream = format!("http://127.0.0.1:{upstream_port}/v1");
    server_function(
        client,
        base,
        "/api/providers/save",
        &[
            ("provider", "openai_compatible"),
            ("label", "bench"),
            ("api_key", key),
            ("base_url", &upstream),
        ],
        Some(cookie),
    )
    .await
    .with_context(|| format!("saving the local provider credential ({upstream}) failed"))?;
    Ok(())
}

#[derive(Clone, Debug, Default)]
pub struct CpuSample {
    /// utime + stime of every process (and cutime + cstime: children it has reaped), in clock
    /// ticks; includes threads that have ended.
    pub ticks: u64,
    /// Nanoseconds on CPU of every live thread (/proc/<pid>/task/<tid>/schedstat): precise, but
    /// blind to threads that have ended.
    pub nanoseconds: u64,
}

impl CpuSample {
    /// CPU seconds between two samples: the precise figure unless threads ended meanwhile (then
    /// the tick count is larger and wins).
    pub fn seconds_between(before: &CpuSample, after: &CpuSample, ticks_per_second: f64) -> f64 {
        let from_ticks = after.ticks.saturating_sub(before.ticks) as f64 / ticks_per_second;
        let precise = after.nanoseconds.saturating_sub(before.nanoseconds) as f64 / 1e9;
        if precise > 0.0 && from_ticks <= precise + 2.0 / ticks_per_second {
            precise
        } else {
            from_ticks
        }
    }
}

pub fn tree_cpu(root: u32) -> CpuSample {
    let pids = process_tree(root);
    let mut sample = CpuSample {
        ticks: 0,
        nanoseconds: threads_cpu_ns(&pids),
    };
    for pid in pids {
        if let Some(fields) = stat_fields(pid) {
            // utime, stime, cutime, cstime are fields 14..=17.
            sample.ticks += fields
                .get(11..15)
                .unwrap_or_default()
                .iter()
                .filter_map(|field| field.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    sample
}

/// Nanoseconds on CPU of every live thread of these processes
/// (/proc/<pid>/task/<tid>/schedstat).
pub fn threads_cpu_ns(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Some(on_cpu) = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
            {
                total += on_cpu;
            }
        }
    }
    total
}

pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
