//! Running a project's commands, sandboxed (issue 23's server side).
//!
//! - [`Runner`]: what this instance can do: the sandbox report probed at start, the refusal
//!   (reason and fix) when the machine is below the configured minimum (then nothing runs), the
//!   [`worktree::Worktrees`], and the runs this process supervises (to stop them).
//! - `worktree.rs`: a project's saved files written incrementally into its worktree.
//! - `commands.rs`: named commands, their checks and the defaults suggested from the files.
//! - `execute.rs`: the use cases: save / delete commands, start a run (tier reservations, the
//!   worktree, the sandbox, the output into a durable run of kind [`COMMAND_RUN`]), stop it,
//!   list the last runs, follow one, recover runs an instance left.

pub mod commands;
mod execute;
pub mod worktree;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use db::ids::{ProjectId, RunId};
use serde::{Deserialize, Serialize};

pub use execute::{CommandsView, RunSummary, StartRun};

/// The kind of the runs that hold a command's output.
pub const COMMAND_RUN: &str = "command_run";

/// How many ended runs are kept per project (with their output).
pub const KEPT_RUNS: u64 = 10;

/// Output kept per stream: the head streamed live, and the tail.
const OUTPUT_HEAD_BYTES: usize = 256 * 1024;
const OUTPUT_TAIL_BYTES: usize = 64 * 1024;

/// Which stream a chunk of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl From<sandbox::Stream> for OutputStream {
    fn from(stream: sandbox::Stream) -> Self {
        match stream {
            sandbox::Stream::Stdout => OutputStream::Stdout,
            sandbox::Stream::Stderr => OutputStream::Stderr,
        }
    }
}

/// How a command run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The exit code (128 + N for a command killed by signal N inside the sandbox).
    pub exit_code: Option<i32>,
    /// The signal that ended the sandbox's outermost process.
    pub signal: Option<i32>,
    pub duration_ms: u64,
    pub timed_out: bool,
    pub stopped: bool,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Bytes left out between each stream's head and tail.
    pub omitted_bytes: u64,
}

/// An event of a command run, numbered by the runs mechanism.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandRunEvent {
    /// The worktree is ready and the command starts.
    Started {
        project_id: String,
        command_name: String,
        command_line: String,
        /// The saved files' revision the run uses.
        revision: String,
        files: u64,
        files_written: u64,
        files_removed: u64,
        materialise_ms: u64,
        /// The isolation used (`Bubblewrap`, `Namespaces`).
        isolation: String,
    },
    /// Output, as text (UTF-8; a character split between chunks is kept whole).
    Output { stream: OutputStream, text: String },
    /// Bytes of a stream left out.
    Omitted { stream: OutputStream, bytes: u64 },
    /// The end, with how it ended.
    Finished(RunOutcome),
    /// The run could not start or was cut off (the sandbox could not be set up, the server
    /// stopped): the message says why.
    Failed { message: String },
}

impl crate::runs::RunEvent for CommandRunEvent {
    fn kind(&self) -> &str {
        match self {
            CommandRunEvent::Started { .. } => "started",
            CommandRunEvent::Output { .. } => "output",
            CommandRunEvent::Omitted { .. } => "omitted",
            CommandRunEvent::Finished(_) => "finished",
            CommandRunEvent::Failed { .. } => "failed",
        }
    }

    fn merge(&mut self, next: Self) -> Result<(), Self> {
        match (self, next) {
            (
                CommandRunEvent::Output { stream, text },
                CommandRunEvent::Output {
                    stream: next_stream,
                    text: next_text,
                },
            ) if *stream == next_stream => {
                text.push_str(&next_text);
                Ok(())
            }
            (_, next) => Err(next),
        }
    }

    fn buffered_bytes(&self) -> usize {
        match self {
            CommandRunEvent::Output { text, .. } => text.len(),
            _ => 0,
        }
    }
}

/// The runner's settings, from the server's flags.
#[derive(Clone, Debug)]
pub struct RunnerSettings {
    /// Where worktrees live (`<data dir>/worktrees`).
    pub worktrees: PathBuf,
    /// The unprivileged identity commands run as when the server is root.
    pub identity: sandbox::Identity,
    /// The least the machine must offer.
    pub policy: sandbox::Policy,
    /// Toolchain folders commands may read and execute (bound read-only at the same path).
    pub toolchains: Vec<PathBuf>,
    /// The longest any run may last, whatever the tier says.
    pub max_timeout: std::time::Duration,
    /// Whether a project's `setup` may use the host's network (an administrator's choice, off
    /// by default); the commands themselves never have it.
    pub setup_network: bool,
}

impl RunnerSettings {
    /// Settings with worktrees under `worktrees` and the defaults otherwise (uid 65534, the
    /// default policy, no toolchains, 30 minutes at most, no network for the setup).
    pub fn new(worktrees: PathBuf) -> Self {
        Self {
            worktrees,
            identity: sandbox::Identity::NOBODY,
            policy: sandbox::Policy::default(),
            toolchains: Vec::new(),
            max_timeout: std::time::Duration::from_secs(30 * 60),
            setup_network: false,
        }
    }
}

/// What the runner can do on this instance, for `/readyz`, the admin page, the Run panel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunnerStatus {
    /// Whether commands may run.
    pub available: bool,
    /// Why not (the missing layer and what is missing).
    pub reason: Option<String>,
    /// What an operator can do about it.
    pub fix: Option<String>,
    /// Each layer as probed (none when the runner was not set up).
    pub report: Option<sandbox::SandboxReport>,
    /// The layers runs get.
    pub layers: Option<sandbox::Layers>,
    /// Whether a project's `setup` may use the host's network (`--sandbox-setup-network`).
    pub setup_network: bool,
}

/// A run this process supervises.
struct ActiveRun {
    project: ProjectId,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Running commands on this instance.
pub struct Runner {
    settings: RunnerSettings,
    status: RunnerStatus,
    sandbox: Option<sandbox::Sandbox>,
    worktrees: worktree::Worktrees,
    active: Mutex<HashMap<RunId, ActiveRun>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Runner")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Default for Runner {
    fn default() -> Self {
        Runner::disabled(
            "the runner is not set up on this server",
            "start the server normally (it probes the sandbox at start)",
        )
    }
}

impl Runner {
    /// A runner that runs nothing, for `reason`.
    pub fn disabled(reason: &str, fix: &str) -> Self {
        let settings = RunnerSettings::new(std::env::temp_dir().join("async-coder-worktrees"));
        Self {
            worktrees: worktree::Worktrees::new(settings.worktrees.clone(), None),
            settings,
            status: RunnerStatus {
                available: false,
                reason: Some(reason.to_owned()),
                fix: Some(fix.to_owned()),
                report: None,
                layers: None,
                setup_network: false,
            },
            sandbox: None,
            active: Mutex::default(),
        }
    }

    /// Probes the sandbox (blocking for some milliseconds: call it once at start) and sets the
    /// runner up with `helper` (the server's own executable) when the machine meets the policy.
    pub fn probe(settings: RunnerSettings, helper: PathBuf) -> Self {
        let report = sandbox::probe(settings.identity);
        Self::from_report(settings, report, helper)
    }

    /// The runner for a probed `report`.
    pub fn from_report(
        settings: RunnerSettings,
        report: sandbox::SandboxReport,
        helper: PathBuf,
    ) -> Self {
        let owner = report.server_is_root.then_some(worktree::Owner {
            uid: report.identity.uid,
            gid: report.identity.gid,
        });
        let worktrees = worktree::Worktrees::new(settings.worktrees.clone(), owner);
        let reachable = if report.server_is_root {
            reachable_by(&settings.worktrees, report.identity)
        } else {
            Ok(())
        };
        let (sandbox, reason, fix) = match (report.minimum_met(&settings.policy), reachable) {
            (Err(refusal), _) => (
                None,
                Some(format!("{}: {}", refusal.layer, refusal.reason)),
                Some(refusal.fix),
            ),
            (Ok(()), Err((reason, fix))) => (None, Some(reason), Some(fix)),
            (Ok(()), Ok(())) => match sandbox::Sandbox::from_report(helper, &report) {
                Ok(sandbox) => (Some(sandbox), None, None),
                Err(error) => (
                    None,
                    Some(error.to_string()),
                    Some("check the server's log and the sandbox report".to_owned()),
                ),
            },
        };
        let status = RunnerStatus {
            available: sandbox.is_some(),
            reason,
            fix,
            layers: sandbox.as_ref().map(sandbox::Sandbox::layers),
            report: Some(report),
            setup_network: settings.setup_network,
        };
        Self {
            settings,
            status,
            sandbox,
            worktrees,
            active: Mutex::default(),
        }
    }

    /// What this runner can do.
    pub fn status(&self) -> &RunnerStatus {
        &self.status
    }

    /// The worktrees.
    pub fn worktrees(&self) -> &worktree::Worktrees {
        &self.worktrees
    }

    /// The settings.
    pub fn settings(&self) -> &RunnerSettings {
        &self.settings
    }

    /// The sandbox, or the refusal to show.
    pub(crate) fn sandbox(&self) -> Result<&sandbox::Sandbox, crate::Error> {
        self.sandbox.as_ref().ok_or_else(|| {
            crate::Error::Conflict(format!(
                "Running commands is disabled on this server: {} Fix: {}",
                self.status.reason.as_deref().unwrap_or("unknown reason."),
                self.status
                    .fix
                    .as_deref()
                    .unwrap_or("see the server's log.")
            ))
        })
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, ActiveRun>> {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Creates the worktrees folder (searchable, not listable, by others: `0711`) and checks that
/// `identity` can reach it: bubblewrap resolves the worktree's real path as the sandbox uid,
/// so every folder above it must be searchable by that uid. The reason and the fix when not.
fn reachable_by(
    worktrees: &std::path::Path,
    identity: sandbox::Identity,
) -> Result<(), (String, String)> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let refused = |folder: &std::path::Path, detail: String| {
        (
            format!(
                "worktrees: the sandbox uid {} cannot reach {} ({detail}).",
                identity.uid,
                worktrees.display()
            ),
            format!(
                "give {} search permission for others (`chmod o+x`, which lets nobody list it), or set --worktrees-dir to a folder whose parents the sandbox uid can search (such as /var/lib/async-coder-worktrees).",
                folder.display()
            ),
        )
    };
    if let Err(error) = std::fs::create_dir_all(worktrees)
        .and_then(|()| std::fs::set_permissions(worktrees, std::fs::Permissions::from_mode(0o711)))
    {
        return Err(refused(worktrees, format!("it cannot be created: {error}")));
    }
    let absolute = match std::fs::canonicalize(worktrees) {
        Ok(path) => path,
        Err(error) => return Err(refused(worktrees, error.to_string())),
    };
    for folder in absolute.ancestors() {
        let metadata = match std::fs::metadata(folder) {
            Ok(metadata) => metadata,
            Err(error) => return Err(refused(folder, error.to_string())),
        };
        let mode = metadata.mode();
        let searchable = if metadata.uid() == identity.uid {
            mode & 0o100 != 0
        } else if metadata.gid() == identity.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !searchable {
            return Err(refused(
                folder,
                format!("{} has mode {:o}", folder.display(), mode & 0o7777),
            ));
        }
    }
    Ok(())
}

/// Turns bytes into text across chunks: a UTF-8 character split at a chunk's end waits for
/// the next chunk; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
struct Utf8Carry {
    pending: Vec<u8>,
}

impl Utf8Carry {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::with_capacity(self.pending.len());
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    text.push_str(&String::from_utf8_lossy(valid));
                    match error.error_len() {
                        Some(length) => {
                            text.push('\u{FFFD}');
                            rest = &after[length..];
                        }
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        text
    }

    /// What is left at the end (an incomplete character), as replacement characters.
    fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::RunEvent;

    #[test]
    fn worktrees_the_sandbox_uid_cannot_reach_are_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("runner-reach-{}", RunId::new()));
        std::fs::create_dir_all(base.join("private")).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(base.join("private"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let nobody = sandbox::Identity::NOBODY;
        let refused = reachable_by(&base.join("private/worktrees"), nobody).unwrap_err();
        assert!(refused.0.contains("cannot reach"), "{refused:?}");
        assert!(refused.1.contains("private"), "{refused:?}");
        std::fs::set_permissions(base.join("private"), std::fs::Permissions::from_mode(0o711))
            .unwrap();
        assert!(reachable_by(&base.join("private/worktrees"), nobody).is_ok());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn characters_split_between_chunks_stay_whole() {
        let mut carry = Utf8Carry::default();
        let bytes = "é→ok".as_bytes();
        let mut text = String::new();
        for byte in bytes {
            text.push_str(&carry.push(std::slice::from_ref(byte)));
        }
        text.push_str(&carry.finish());
        assert_eq!(text, "é→ok");
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.push(b"a\xffb"), "a\u{FFFD}b");
        assert_eq!(carry.push(b"\xe2\x86"), "");
        assert_eq!(carry.finish(), "\u{FFFD}");
    }

    #[test]
    fn adjacent_output_of_one_stream_merges() {
        let output = |stream, text: &str| CommandRunEvent::Output {
            stream,
            text: text.to_owned(),
        };
        let mut first = output(OutputStream::Stdout, "a");
        assert!(first.merge(output(OutputStream::Stdout, "b")).is_ok());
        assert_eq!(first, output(OutputStream::Stdout, "ab"));
        assert_eq!(first.buffered_bytes(), 2);
        assert!(first.merge(output(OutputStream::Stderr, "c")).is_err());
        assert!(
            first
                .merge(CommandRunEvent::Omitted {
                    stream: OutputStream::Stdout,
                    bytes: 1
                })
                .is_err()
        );
        assert_eq!(first.kind(), "output");
    }

    #[test]
    fn a_machine_below_the_minimum_disables_running_with_the_reason_and_fix() {
        let layer = |available: bool| sandbox::LayerState {
            available,
            detail: if available { "works" } else { "refused" }.to_owned(),
        };
        let report = sandbox::SandboxReport {
            identity: sandbox::Identity::NOBODY,
            server_is_root: true,
            user_namespaces: layer(false),
            network_namespace: layer(false),
            bubblewrap: layer(false),
            bubblewrap_path: None,
            landlock: layer(true),
            landlock_abi: 4,
            seccomp: layer(true),
            cgroup_v2: layer(false),
        };
        let runner = Runner::from_report(
            RunnerSettings::new(std::env::temp_dir()),
            report,
            PathBuf::from("/proc/self/exe"),
        );
        let status = runner.status();
        assert!(!status.available);
        assert!(
            status
                .reason
                .as_deref()
                .is_some_and(|reason| reason.contains("user namespaces")),
            "{status:?}"
        );
        assert!(status.fix.as_deref().is_some_and(|fix| !fix.is_empty()));
        let refusal = runner.sandbox().err().map(|error| error.to_string());
        assert!(
            refusal
                .as_deref()
                .is_some_and(|text| text.contains("disabled") && text.contains("Fix:")),
            "{refusal:?}"
        );
    }
}
