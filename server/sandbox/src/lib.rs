//! Runs a project's commands sandboxed, fail-closed, and tells what the machine allows.
//!
//! Knows nothing of HTTP, Leptos or the database. [`probe`] checks each layer the machine
//! offers and [`SandboxReport::minimum_met`] refuses (with the reason and the fix) below a
//! [`Policy`]. [`Sandbox::run`] starts a [`CommandSpec`] in a worktree and returns a
//! [`RunHandle`] whose [`Event`]s stream the output and whose [`RunResult`] tells how it ended.
//!
//! The layers, outermost first (each can be turned off through [`Layers`] so that tests prove
//! each one alone):
//!
//! 1. Between fork and exec of the first process (`pre_exec`): the unprivileged uid and gid
//!    (supplementary groups dropped), a new session and process group, rlimits, SIGKILL when
//!    the server's thread dies, the environment cleared to an allow-list.
//! 2. Bubblewrap with every namespace unshared (user, mount, pid, network with only its own
//!    loopback, IPC, UTS, cgroup), only system folders and the given toolchains bound read-only,
//!    the worktree read-write, a private `/tmp`, a new `/proc` and a minimal `/dev`. Without
//!    bubblewrap the helper unshares the same namespaces itself (the file system stays the host's,
//!    so Landlock alone confines it).
//! 3. Inside, the helper (this crate's [`helper_main`], run by the server's own binary or
//!    `src/bin/sandbox-helper.rs`): Landlock (read-only system folders and toolchains, read-write
//!    worktree and private tmp, no TCP bind or connect from ABI 4, no signals or abstract sockets
//!    outside from ABI 6), `no_new_privs`, a seccomp filter, then `exec` of the command.
//!
//! Nothing runs when a layer that was asked for cannot be set up: the helper reports the
//! failure through a status pipe and the run ends in [`Error::SandboxSetup`].

mod helper;
mod landlock_rules;
mod output;
mod probe;
mod run;
mod seccomp;
mod spec;
mod sys;

pub use helper::{HELPER_MARKER, helper_main, is_helper_invocation};
pub use output::{Event, Stream};
pub use probe::{LayerState, Policy, Refusal, SandboxReport, probe};
pub use run::{RunHandle, RunResult, Sandbox};
pub use spec::{CommandSpec, Identity, Isolation, Layers, Limits, Network};

/// Everything that can go wrong starting or supervising a sandboxed command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command spec is not usable (the message says why).
    #[error("invalid command: {0}")]
    InvalidSpec(String),
    /// A system call of the supervising side failed.
    #[error("{action}: {source}")]
    System {
        /// What was being done.
        action: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The sandbox could not be set up, so the command never ran (fail-closed).
    #[error("the sandbox could not be set up, the command did not run: {0}")]
    SandboxSetup(String),
    /// The helper's configuration could not be encoded or decoded.
    #[error("helper configuration: {0}")]
    HelperConfig(#[from] serde_json::Error),
    /// The supervising task ended abnormally.
    #[error("the run's supervisor failed: {0}")]
    Supervisor(String),
}

impl Error {
    /// An [`Error::System`] for `action`.
    pub(crate) fn system(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::System {
            action: action.into(),
            source,
        }
    }
}
