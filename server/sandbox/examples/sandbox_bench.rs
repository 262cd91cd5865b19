//! Sandbox figures (printed, not a timed test): the start overhead of `true` run sandboxed (every
//! layer with bubblewrap; the helper's own namespaces) against the same command run bare, p50 and
//! p99 over N runs with the ratio; and output throughput to a reader, sandboxed and bare.
//!
//! `cargo run -p sandbox --release --example sandbox_bench [runs]` as root (commands run as uid
//! 62100). Like the server, this binary is its own helper: started with the helper marker it
//! becomes the helper.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sandbox::{CommandSpec, Event, Identity, Isolation, Layers, Sandbox};
use tokio::io::AsyncReadExt;

const IDENTITY: Identity = Identity {
    uid: 62100,
    gid: 62100,
};
const OUTPUT_BYTES: u64 = 512 * 1024 * 1024;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn bare_true() -> Duration {
    let started = Instant::now();
    let status = tokio::process::Command::new("/bin/true")
        .uid(IDENTITY.uid)
        .gid(IDENTITY.gid)
        .env_clear()
        .stdin(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    started.elapsed()
}

async fn sandboxed(sandbox: &Sandbox, spec: CommandSpec) -> (Duration, u64) {
    let started = Instant::now();
    let mut handle = sandbox.run(spec).unwrap();
    let mut bytes = 0u64;
    while let Some(event) = handle.next_event().await {
        if let Event::Output { bytes: chunk, .. } = event {
            bytes += chunk.len() as u64;
        }
    }
    let result = handle.finish().await.unwrap();
    assert!(result.success(), "{result:?}");
    (started.elapsed(), bytes)
}

fn report(name: &str, mut times: Vec<Duration>, bare_p50: Option<Duration>) -> Duration {
    times.sort();
    let p50 = percentile(&times, 0.5);
    let p99 = percentile(&times, 0.99);
    let ratio = bare_p50.map_or(String::new(), |bare| {
        format!(
            "  ratio to bare (p50) {:.1}x",
            p50.as_secs_f64() / bare.as_secs_f64()
        )
    });
    println!(
        "{name:<34} p50 {:>7.2} ms  p99 {:>7.2} ms{ratio}",
        milliseconds(p50),
        milliseconds(p99)
    );
    p50
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if sandbox::is_helper_invocation() {
        sandbox::helper_main();
    }
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(100);
    let worktree = PathBuf::from(format!("/tmp/sandbox-bench-{}", std::process::id()));
    std::fs::create_dir_all(&worktree).unwrap();
    std::os::unix::fs::chown(&worktree, Some(IDENTITY.uid), Some(IDENTITY.gid)).unwrap();
    let helper = std::env::current_exe().unwrap();
    let report_of_machine = sandbox::probe(IDENTITY);
    println!("cgroup v2: {}", report_of_machine.cgroup_v2.detail);
    println!(
        "Landlock: {}; bubblewrap: {}",
        report_of_machine.landlock.detail, report_of_machine.bubblewrap.detail
    );
    println!("start overhead of `true`, {runs} runs each:");

    for _ in 0..5 {
        bare_true().await;
    }
    let mut bare = Vec::new();
    for _ in 0..runs {
        bare.push(bare_true().await);
    }
    let bare_p50 = report("bare", bare, None);
    for (name, layers) in [
        ("sandboxed (bubblewrap, all layers)", Layers::all()),
        (
            "sandboxed (own namespaces, all)",
            Layers {
                isolation: Isolation::Namespaces,
                ..Layers::all()
            },
        ),
        ("helper only (no optional layer)", Layers::none()),
    ] {
        let sandbox = Sandbox::new(&helper, IDENTITY, layers).unwrap();
        let spec = CommandSpec::new("/bin/true", &[], &worktree);
        for _ in 0..5 {
            sandboxed(&sandbox, spec.clone()).await;
        }
        let mut times = Vec::new();
        for _ in 0..runs {
            times.push(sandboxed(&sandbox, spec.clone()).await.0);
        }
        report(name, times, Some(bare_p50));
    }

    println!(
        "output throughput ({} MiB of zeros read to the end):",
        OUTPUT_BYTES >> 20
    );
    let started = Instant::now();
    let mut child = tokio::process::Command::new("head")
        .args(["-c", &OUTPUT_BYTES.to_string(), "/dev/zero"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let read = stdout.read(&mut buffer).await.unwrap();
        if read == 0 {
            break;
        }
        total += read as u64;
    }
    child.wait().await.unwrap();
    let bare_seconds = started.elapsed().as_secs_f64();
    println!(
        "{:<34} {:>8.0} MiB/s",
        "bare pipe",
        total as f64 / bare_seconds / 1048576.0
    );
    let sandbox = Sandbox::new(&helper, IDENTITY, Layers::all()).unwrap();
    let mut spec = CommandSpec::new(
        "head",
        &["-c", &OUTPUT_BYTES.to_string(), "/dev/zero"],
        &worktree,
    );
    spec.limits.output_head_bytes = usize::MAX;
    let (elapsed, bytes) = sandboxed(&sandbox, spec.clone()).await;
    assert_eq!(bytes, OUTPUT_BYTES);
    println!(
        "{:<34} {:>8.0} MiB/s  (every byte as events)",
        "sandboxed",
        bytes as f64 / elapsed.as_secs_f64() / 1048576.0
    );
    spec.limits = sandbox::Limits::default();
    let (elapsed, _) = sandboxed(&sandbox, spec).await;
    println!(
        "{:<34} {:>8.0} MiB/s  (capped: head and tail kept)",
        "sandboxed",
        OUTPUT_BYTES as f64 / elapsed.as_secs_f64() / 1048576.0
    );
    std::fs::remove_dir_all(&worktree).unwrap();
}
