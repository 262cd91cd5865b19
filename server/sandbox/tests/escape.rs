#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Tries to escape the real sandbox. Each attempt runs with every layer, and where one layer
//! alone should stop it, with only that layer (the others off), so a green run proves each
//! layer. Controls run the same attempt with no optional layer and expect it to succeed: they
//! show that the attempt itself works, so each test can fail.
//!
//! Needs root (to drop to the sandbox uids), bubblewrap, user namespaces, Landlock ABI 4+ and
//! seccomp, as the project's machines have. Each test uses its own uid, so that one test's
//! processes never count against another's RLIMIT_NPROC.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sandbox::{
    CommandSpec, Error, Event, Identity, Isolation, Layers, Limits, Network, RunResult, Sandbox,
    Stream,
};

const HELPER: &str = env!("CARGO_BIN_EXE_sandbox-helper");

fn identity(uid: u32) -> Identity {
    Identity { uid, gid: uid }
}

fn only(isolation: Isolation) -> Layers {
    Layers {
        isolation,
        ..Layers::none()
    }
}

fn landlock_only() -> Layers {
    Layers {
        landlock: true,
        ..Layers::none()
    }
}

fn seccomp_only() -> Layers {
    Layers {
        seccomp: true,
        ..Layers::none()
    }
}

fn rlimits_only() -> Layers {
    Layers {
        rlimits: true,
        ..Layers::none()
    }
}

/// A folder per test: `work/` (the worktree, owned by the test's uid), `outside/` (writable by
/// everyone, with a canary file anyone may change, so only the sandbox protects it) and
/// `secret.txt` (readable by everyone, so only the sandbox hides it).
struct Place {
    base: PathBuf,
    worktree: PathBuf,
    outside: PathBuf,
    secret: PathBuf,
    identity: Identity,
}

const SECRET: &str = "TOP-SECRET-CANARY-7f3a";
const CANARY: &str = "canary-still-here";

impl Place {
    fn new(name: &str, uid: u32) -> Place {
        let base = PathBuf::from(format!("/tmp/sandbox-escape-{}-{name}", std::process::id()));
        if base.exists() {
            std::fs::remove_dir_all(&base).unwrap();
        }
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let worktree = base.join("work");
        std::fs::create_dir(&worktree).unwrap();
        std::fs::write(worktree.join("file.txt"), "inside").unwrap();
        for path in [&worktree, &worktree.join("file.txt")] {
            std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
        }
        let outside = base.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(outside.join("canary"), CANARY).unwrap();
        std::fs::set_permissions(
            outside.join("canary"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let secret = base.join("secret.txt");
        std::fs::write(&secret, SECRET).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        Place {
            base,
            worktree,
            outside,
            secret,
            identity: identity(uid),
        }
    }

    fn assert_canaries_intact(&self) {
        assert_eq!(
            std::fs::read_to_string(self.outside.join("canary")).unwrap(),
            CANARY
        );
        assert_eq!(std::fs::read_to_string(&self.secret).unwrap(), SECRET);
        let mut names: Vec<String> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["canary"],
            "something was created outside the worktree"
        );
    }

    fn spec(&self, script: &str) -> CommandSpec {
        CommandSpec::shell(script, &self.worktree)
    }

    fn script(&self, template: &str) -> String {
        template
            .replace("OUTSIDE", &self.outside.to_string_lossy())
            .replace("SECRET", &self.secret.to_string_lossy())
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.base) {
            eprintln!("cleaning {}: {error}", self.base.display());
        }
    }
}

struct Outcome {
    stdout: String,
    stderr: String,
    result: RunResult,
    event_bytes: u64,
}

async fn try_run(
    layers: Layers,
    identity: Identity,
    spec: CommandSpec,
) -> (String, String, Result<RunResult, Error>, u64) {
    let sandbox = Sandbox::new(HELPER, identity, layers).unwrap();
    let mut handle = sandbox.run(spec).unwrap();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut event_bytes = 0u64;
    while let Some(event) = handle.next_event().await {
        if let Event::Output { stream, bytes } = event {
            event_bytes += bytes.len() as u64;
            let target = if stream == Stream::Stdout {
                &mut stdout
            } else {
                &mut stderr
            };
            if target.len() < 64 * 1024 {
                target.extend_from_slice(&bytes);
            }
        }
    }
    let result = handle.finish().await;
    (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
        result,
        event_bytes,
    )
}

async fn run(layers: Layers, identity: Identity, spec: CommandSpec) -> Outcome {
    let (stdout, stderr, result, event_bytes) =
        tokio::time::timeout(Duration::from_secs(120), try_run(layers, identity, spec))
            .await
            .expect("the run did not return within 2 minutes");
    let result =
        result.unwrap_or_else(|error| panic!("{error}; stdout: {stdout}; stderr: {stderr}"));
    Outcome {
        stdout,
        stderr,
        result,
        event_bytes,
    }
}

/// Host processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|byte| byte.is_ascii_digit()) || name == std::process::id().to_string()
        {
            continue;
        }
        if let Ok(command_line) = std::fs::read(entry.path().join("cmdline")) {
            let command_line = String::from_utf8_lossy(&command_line).replace('\0', " ");
            if command_line.contains(marker) {
                found.push(format!("{name}: {command_line}"));
            }
        }
    }
    found
}

/// Host processes running as `uid`.
fn processes_of(uid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("status")).is_ok_and(|status| {
                status
                    .lines()
                    .find(|line| line.starts_with("Uid:"))
                    .and_then(|line| line.split_whitespace().nth(1))
                    == Some(uid.to_string().as_str())
            })
        })
        .count()
}

async fn eventually_none(marker: &str) -> Vec<String> {
    for _ in 0..40 {
        let left = processes_with(marker);
        if left.is_empty() {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    processes_with(marker)
}

#[tokio::test]
async fn the_result_reports_exit_code_signal_duration_and_no_truncation() {
    let place = Place::new("result", 62001);
    let outcome = run(
        Layers::all(),
        place.identity,
        place.spec("echo hello; echo oops >&2; exit 3"),
    )
    .await;
    assert_eq!(outcome.stdout, "hello\n");
    assert_eq!(outcome.stderr, "oops\n");
    assert_eq!(outcome.result.exit_code, Some(3));
    assert_eq!(outcome.result.signal, None);
    assert!(
        outcome.result.duration > Duration::ZERO
            && outcome.result.duration < Duration::from_secs(10)
    );
    assert_eq!(outcome.result.omitted_bytes, 0);
    assert!(!outcome.result.timed_out && !outcome.result.stopped);
    assert_eq!(outcome.result.isolation, Isolation::Bubblewrap);
}

const CONNECT: &str = r#"python3 -c "
import socket
for port in (PORT, 5432):
    try:
        socket.create_connection(('127.0.0.1', port), 2).close()
        print('connected', port)
    except OSError as error:
        print('failed', port, error.errno)
""#;

#[tokio::test]
async fn tcp_to_the_host_fails_under_each_layer() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = CONNECT.replace("PORT", &port.to_string());
    let place = Place::new("tcp", 62002);
    // Control: without the optional layers the connection is made.
    let control = run(Layers::none(), place.identity, place.spec(&script)).await;
    assert!(
        control.stdout.contains(&format!("connected {port}")),
        "{}",
        control.stdout
    );
    for (layers, errors) in [
        (Layers::all(), &["1"][..]),
        // Its own loopback, where nothing listens.
        (only(Isolation::Bubblewrap), &["111"][..]),
        // Its loopback is down: unreachable (or refused).
        (only(Isolation::Namespaces), &["101", "111"][..]),
        // Landlock ABI 4+: connect denied (EACCES).
        (landlock_only(), &["13"][..]),
        // socket(AF_INET) denied (EPERM).
        (seccomp_only(), &["1"][..]),
    ] {
        let outcome = run(layers, place.identity, place.spec(&script)).await;
        assert!(
            !outcome.stdout.contains("connected"),
            "{layers:?}: {}",
            outcome.stdout
        );
        let line = format!("failed {port} ");
        let errno = outcome
            .stdout
            .lines()
            .find_map(|text| text.strip_prefix(&line))
            .unwrap_or_else(|| panic!("{layers:?}: {} {}", outcome.stdout, outcome.stderr));
        assert!(
            errors.contains(&errno),
            "{layers:?}: errno {errno}, expected one of {errors:?}"
        );
    }
}

#[tokio::test]
async fn the_host_network_given_to_a_setup_connects_and_nothing_else_is_opened() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = CONNECT.replace("PORT", &port.to_string());
    let place = Place::new("setup-network", 62017);
    for layers in [
        Layers::all(),
        only(Isolation::Bubblewrap),
        only(Isolation::Namespaces),
        landlock_only(),
        seccomp_only(),
    ] {
        let mut spec = place.spec(&format!(
            "{script}; {}",
            place.script("cat SECRET; echo changed > OUTSIDE/canary; touch OUTSIDE/new")
        ));
        spec.network = Network::Host;
        let outcome = run(layers, place.identity, spec).await;
        assert!(
            outcome.stdout.contains(&format!("connected {port}")),
            "{layers:?}: {} {}",
            outcome.stdout,
            outcome.stderr
        );
        // Only the network is shared: the file system stays confined (by the layers that
        // confine it: bubblewrap's view and Landlock).
        if [Layers::all(), only(Isolation::Bubblewrap), landlock_only()].contains(&layers) {
            assert!(
                !outcome.stdout.contains(SECRET),
                "{layers:?}: {}",
                outcome.stdout
            );
            place.assert_canaries_intact();
        }
    }
    // The same command without it (every command but an allowed setup) does not connect.
    let mut spec = place.spec(&script);
    spec.network = Network::Off;
    let outcome = run(Layers::all(), place.identity, spec).await;
    assert!(
        !outcome.stdout.contains("connected") && outcome.stdout.contains(&format!("failed {port}")),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn dns_fails() {
    let place = Place::new("dns", 62003);
    let script = r#"python3 -c "
import socket
try:
    print('resolved', socket.getaddrinfo('crates.io', 443))
except OSError as error:
    print('failed', error)
""#;
    for layers in [Layers::all(), only(Isolation::Bubblewrap), seccomp_only()] {
        let outcome = run(layers, place.identity, place.spec(script)).await;
        assert!(
            outcome.stdout.starts_with("failed"),
            "{layers:?}: {} {}",
            outcome.stdout,
            outcome.stderr
        );
    }
}

#[tokio::test]
async fn a_secret_outside_the_worktree_cannot_be_read() {
    let place = Place::new("secret", 62004);
    let script = place.script("cat SECRET; echo; ls $(dirname SECRET)");
    let control = run(Layers::none(), place.identity, place.spec(&script)).await;
    assert!(
        control.stdout.contains(SECRET),
        "control: {}",
        control.stdout
    );
    for layers in [Layers::all(), only(Isolation::Bubblewrap), landlock_only()] {
        let outcome = run(layers, place.identity, place.spec(&script)).await;
        assert!(
            !outcome.stdout.contains(SECRET),
            "{layers:?} read the secret"
        );
        assert!(
            !outcome.stdout.contains("secret.txt"),
            "{layers:?} listed the secret's folder"
        );
        let expected = if layers.isolation == Isolation::Bubblewrap {
            "No such file"
        } else {
            "Permission denied"
        };
        assert!(
            outcome.stderr.contains(expected),
            "{layers:?}: {}",
            outcome.stderr
        );
    }
}

#[tokio::test]
async fn the_servers_environment_does_not_reach_the_command() {
    assert!(
        std::env::var("CARGO_MANIFEST_DIR").is_ok(),
        "the canary variable is set here"
    );
    let place = Place::new("environment", 62005);
    for layers in [Layers::all(), Layers::none()] {
        let outcome = run(layers, place.identity, place.spec("env")).await;
        assert!(
            !outcome.stdout.contains("CARGO_MANIFEST_DIR"),
            "{}",
            outcome.stdout
        );
        for line in outcome.stdout.lines() {
            let name = line.split('=').next().unwrap();
            assert!(
                [
                    "PATH", "LANG", "HOME", "TMPDIR", "PWD", "SHLVL", "_", "OLDPWD"
                ]
                .contains(&name),
                "{name} reached the command"
            );
        }
        let home = place.worktree.join(".sandbox/home");
        assert!(
            outcome.stdout.contains(&format!("HOME={}", home.display())),
            "{}",
            outcome.stdout
        );
    }
}

const WRITE_OUTSIDE: &str = "
echo x > OUTSIDE/new && echo wrote
mv OUTSIDE/canary OUTSIDE/renamed && echo renamed
ln -s /etc/passwd OUTSIDE/link && echo linked
mv file.txt OUTSIDE/moved && echo moved-out
ln -s OUTSIDE/canary inside-link && echo more >> inside-link && echo appended
true";

#[tokio::test]
async fn writing_renaming_and_symlinking_outside_the_worktree_fail() {
    let place = Place::new("write", 62006);
    let script = place.script(WRITE_OUTSIDE);
    for layers in [Layers::all(), only(Isolation::Bubblewrap), landlock_only()] {
        let outcome = run(layers, place.identity, place.spec(&script)).await;
        for word in ["wrote", "renamed", "linked", "moved-out", "appended"] {
            assert!(
                !outcome.stdout.contains(word),
                "{layers:?}: {word}: {}",
                outcome.stdout
            );
        }
        place.assert_canaries_intact();
        std::fs::remove_file(place.worktree.join("inside-link")).unwrap();
    }
    // Control: without the layers every attempt succeeds.
    let control = run(Layers::none(), place.identity, place.spec(&script)).await;
    for word in ["wrote", "renamed", "linked", "moved-out"] {
        assert!(
            control.stdout.contains(word),
            "control: {word}: {}",
            control.stdout
        );
    }
}

#[tokio::test]
async fn rm_rf_everywhere_touches_nothing_outside() {
    let place = Place::new("rm", 62007);
    let script =
        "rm -rf --no-preserve-root / 2>/dev/null; rm -rf ~ ..; rm -rf ../* 2>/dev/null; echo done";
    let mut spec = place.spec(script);
    spec.limits.timeout = Duration::from_secs(90);
    let outcome = run(Layers::all(), place.identity, spec).await;
    assert!(outcome.stdout.contains("done"), "{}", outcome.stderr);
    place.assert_canaries_intact();
    assert!(Path::new("/usr/bin/true").exists());
    // Landlock alone, on the worktree's parent.
    let outcome = run(
        landlock_only(),
        place.identity,
        place.spec("rm -rf .. ../*; echo done"),
    )
    .await;
    assert!(outcome.stdout.contains("done"));
    place.assert_canaries_intact();
}

#[tokio::test]
async fn a_fork_bomb_is_bounded_and_the_run_returns() {
    let place = Place::new("fork-bomb", 62008);
    for layers in [Layers::all(), rlimits_only()] {
        let mut spec = CommandSpec::new(
            "/bin/bash",
            &["-c", ":(){ :|:& };:; sleep 3"],
            &place.worktree,
        );
        spec.limits.processes = 64;
        spec.limits.timeout = Duration::from_secs(10);
        let outcome = run(layers, place.identity, spec).await;
        assert!(
            outcome.result.duration < Duration::from_secs(30),
            "{layers:?}"
        );
        assert!(
            outcome.stderr.contains("Resource temporarily unavailable")
                || outcome.stderr.contains("retry"),
            "{layers:?}: the limit was not reached: {}",
            outcome.stderr.chars().take(500).collect::<String>()
        );
        for _ in 0..40 {
            if processes_of(place.identity.uid) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            processes_of(place.identity.uid),
            0,
            "{layers:?}: processes left"
        );
    }
}

#[tokio::test]
async fn a_4_gib_allocation_dies() {
    let place = Place::new("memory", 62009);
    let script = "python3 -c \"b = bytearray(4 << 30); print('allocated')\"";
    for layers in [Layers::all(), rlimits_only()] {
        let outcome = run(layers, place.identity, place.spec(script)).await;
        assert!(!outcome.stdout.contains("allocated"), "{layers:?}");
        assert_ne!(outcome.result.exit_code, Some(0));
        assert!(
            outcome.stderr.contains("MemoryError"),
            "{layers:?}: {}",
            outcome.stderr
        );
    }
}

fn background_script(marker: &str) -> String {
    format!(
        "sh -c 'sleep 999; :' {marker}-a &
nohup sh -c 'sleep 999; :' {marker}-b >/dev/null 2>&1 &
setsid sh -c 'sleep 999; :' {marker}-c >/dev/null 2>&1 &
sleep 0.3; echo started"
    )
}

#[tokio::test]
async fn background_and_nohup_grandchildren_are_gone_after_return() {
    let place = Place::new("background", 62010);
    for (index, layers) in [
        Layers::all(),
        only(Isolation::Bubblewrap),
        only(Isolation::Namespaces),
    ]
    .into_iter()
    .enumerate()
    {
        let marker = format!("sandbox-marker-{}-{index}", std::process::id());
        let outcome = run(
            layers,
            place.identity,
            place.spec(&background_script(&marker)),
        )
        .await;
        assert!(
            outcome.stdout.contains("started"),
            "{layers:?}: {}",
            outcome.stderr
        );
        assert_eq!(
            eventually_none(&marker).await,
            Vec::<String>::new(),
            "{layers:?}"
        );
    }
    // Control: without a pid namespace, the process that left the group survives. The others
    // are killed with the group, but a kill is delivered asynchronously: wait for them to go.
    let marker = format!("sandbox-marker-{}-control", std::process::id());
    run(
        Layers::none(),
        place.identity,
        place.spec(&background_script(&marker)),
    )
    .await;
    let mut left = processes_with(&marker);
    for _ in 0..40 {
        if left.len() <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = processes_with(&marker);
    }
    assert_eq!(left.len(), 1, "control: {left:?}");
    assert!(
        left[0].contains(&format!("{marker}-c")),
        "control: {left:?}"
    );
    for process in left {
        let pid: i32 = process.split(':').next().unwrap().parse().unwrap();
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
}

#[tokio::test]
async fn the_timeout_ends_the_command_and_its_grandchildren() {
    let place = Place::new("timeout", 62011);
    for (index, layers) in [Layers::all(), only(Isolation::Namespaces)]
        .into_iter()
        .enumerate()
    {
        let marker = format!("sandbox-timeout-{}-{index}", std::process::id());
        let mut spec = place.spec(&format!(
            "sh -c 'sleep 999; :' {marker}-a & nohup sh -c 'sleep 999; :' {marker}-b >/dev/null 2>&1 & sleep 999"
        ));
        spec.limits.timeout = Duration::from_secs(1);
        spec.limits.grace = Duration::from_millis(500);
        let outcome = run(layers, place.identity, spec).await;
        assert!(outcome.result.timed_out, "{layers:?}");
        assert!(
            outcome.result.duration < Duration::from_secs(5),
            "{:?}",
            outcome.result.duration
        );
        // SIGTERM reached the command (exit 128 + 15 through the pid namespace's init).
        assert_eq!(
            outcome.result.exit_code,
            Some(143),
            "{layers:?}: {:?}",
            outcome.result
        );
        assert_eq!(
            eventually_none(&marker).await,
            Vec::<String>::new(),
            "{layers:?}"
        );
    }
}

#[tokio::test]
async fn stop_ends_a_run() {
    let place = Place::new("stop", 62012);
    let sandbox = Sandbox::new(HELPER, place.identity, Layers::all()).unwrap();
    let mut spec = place.spec("trap '' TERM; sleep 999");
    spec.limits.grace = Duration::from_millis(300);
    let mut handle = sandbox.run(spec).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.stop();
    let result = tokio::time::timeout(Duration::from_secs(10), handle.finish())
        .await
        .unwrap()
        .unwrap();
    assert!(result.stopped);
    // The shell ignores SIGTERM: SIGKILL after the grace period.
    assert_eq!(result.signal, Some(libc_sigkill()));
}

fn libc_sigkill() -> i32 {
    9
}

#[tokio::test]
async fn host_processes_are_invisible() {
    let place = Place::new("pids", 62013);
    let script = format!(
        "ls /proc | grep -c '^[0-9]'; test -e /proc/{}/status && echo visible || echo invisible",
        std::process::id()
    );
    let control = run(Layers::none(), place.identity, place.spec(&script)).await;
    assert!(
        control.stdout.contains("\nvisible"),
        "control: {}",
        control.stdout
    );
    for layers in [
        Layers::all(),
        only(Isolation::Bubblewrap),
        only(Isolation::Namespaces),
    ] {
        let outcome = run(layers, place.identity, place.spec(&script)).await;
        assert!(
            outcome.stdout.contains("invisible"),
            "{layers:?}: {}",
            outcome.stdout
        );
        let count: usize = outcome.stdout.lines().next().unwrap().parse().unwrap();
        assert!(count < 10, "{layers:?}: {count} processes visible");
    }
}

fn resident_kilobytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_gigabyte_of_output_is_capped_and_memory_stays_flat() {
    let place = Place::new("output", 62014);
    let before = resident_kilobytes();
    let mut spec = place.spec("head -c 1000000000 /dev/zero; echo end");
    spec.limits = Limits {
        timeout: Duration::from_secs(100),
        ..Limits::default()
    };
    let head = spec.limits.output_head_bytes as u64;
    let tail = spec.limits.output_tail_bytes as u64;
    let outcome = run(Layers::all(), place.identity, spec).await;
    let after = resident_kilobytes();
    assert!(outcome.result.success(), "{}", outcome.stderr);
    assert_eq!(outcome.result.stdout_bytes, 1_000_000_004);
    assert_eq!(outcome.result.omitted_bytes, 1_000_000_004 - head - tail);
    assert_eq!(outcome.event_bytes, head + tail);
    assert!(
        after < before + 100 * 1024,
        "resident memory grew from {before} kB to {after} kB"
    );
}

#[tokio::test]
async fn seccomp_alone_blocks_new_namespaces() {
    let place = Place::new("unshare", 62015);
    let script = "unshare --user --net true && echo unshared";
    let control = run(Layers::none(), place.identity, place.spec(script)).await;
    assert!(
        control.stdout.contains("unshared"),
        "control: {}",
        control.stderr
    );
    let outcome = run(seccomp_only(), place.identity, place.spec(script)).await;
    assert!(!outcome.stdout.contains("unshared"));
    assert!(
        outcome.stderr.contains("Operation not permitted"),
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn nothing_runs_when_the_sandbox_cannot_be_set_up() {
    let place = Place::new("fail-closed", 62016);
    let sandbox = Sandbox::new(HELPER, place.identity, Layers::all()).unwrap();
    // A toolchain folder that does not exist: refused before anything starts.
    let mut spec = place.spec("touch ran");
    spec.read_only_paths
        .push(PathBuf::from("/nonexistent-toolchain"));
    assert!(sandbox.run(spec).is_err());
    // A helper that is not the helper: the command never runs.
    let sandbox = Sandbox::new("/bin/true", place.identity, Layers::all()).unwrap();
    let result = sandbox.run(place.spec("touch ran")).unwrap().finish().await;
    assert!(matches!(result, Err(Error::SandboxSetup(_))), "{result:?}");
    assert!(!place.worktree.join("ran").exists());
    // Root is never the sandbox's identity.
    assert!(Sandbox::new(HELPER, identity(0), Layers::all()).is_err());
}

#[test]
fn the_probe_reports_each_layer_and_the_policy_refuses_with_a_fix() {
    let report = sandbox::probe(identity(62017));
    let json = serde_json::to_value(&report).unwrap();
    for layer in [
        "user_namespaces",
        "network_namespace",
        "bubblewrap",
        "landlock",
        "seccomp",
        "cgroup_v2",
    ] {
        assert!(json[layer]["detail"].is_string(), "{layer}");
    }
    assert!(report.bubblewrap.available, "{:?}", report.bubblewrap);
    assert!(report.landlock_abi >= 4);
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert!(!report.cgroup_v2.available);
        assert!(
            report.cgroup_v2.detail.contains("cgroups v1 only"),
            "{}",
            report.cgroup_v2.detail
        );
    }
    report.minimum_met(&sandbox::Policy::default()).unwrap();
    let refusal = report
        .minimum_met(&sandbox::Policy {
            minimum_landlock_abi: 99,
            ..sandbox::Policy::default()
        })
        .unwrap_err();
    assert!(refusal.reason.contains("99"), "{refusal}");
    assert!(refusal.fix.contains("lsm="), "{refusal}");
    assert_eq!(report.strongest_layers(), Layers::all());
}
