//! What to run, with which limits and which layers.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The unprivileged identity commands run as. Never root: RLIMIT_NPROC is not enforced for root,
/// and root could undo the other layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// User id (on the host; inside the user namespace it is mapped to itself).
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Identity {
    /// `nobody` / `nogroup` (65534).
    pub const NOBODY: Identity = Identity {
        uid: 65534,
        gid: 65534,
    };
}

impl Default for Identity {
    fn default() -> Self {
        Identity::NOBODY
    }
}

/// How the command is cut off from the host's namespaces and file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Isolation {
    /// Bubblewrap: every namespace unshared, a new root with only the bound folders.
    Bubblewrap,
    /// The helper unshares user, mount, pid, network, IPC, UTS and cgroup namespaces itself,
    /// mounts a new `/proc` and a private `/tmp`; the rest of the file system stays visible
    /// (Landlock confines it). Used when bubblewrap cannot run.
    Namespaces,
    /// No namespaces (only for tests that prove the other layers alone).
    None,
}

/// Which layers a run uses. [`Layers::all`] is the production setting; tests turn layers off
/// to prove each one alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layers {
    /// Namespaces and file-system view.
    pub isolation: Isolation,
    /// Landlock file-system (and, from ABI 4, TCP) rules.
    pub landlock: bool,
    /// The seccomp filter (and so `no_new_privs`).
    pub seccomp: bool,
    /// The rlimits of [`Limits`].
    pub rlimits: bool,
}

impl Layers {
    /// Every layer, with bubblewrap.
    pub const fn all() -> Self {
        Layers {
            isolation: Isolation::Bubblewrap,
            landlock: true,
            seccomp: true,
            rlimits: true,
        }
    }

    /// No optional layer: only the unprivileged uid, the new session, the cleared environment,
    /// the timeout and the output cap (what every run has). For tests that add one layer.
    pub const fn none() -> Self {
        Layers {
            isolation: Isolation::None,
            landlock: false,
            seccomp: false,
            rlimits: false,
        }
    }
}

impl Default for Layers {
    fn default() -> Self {
        Layers::all()
    }
}

/// Whether a command may use the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// None but its own loopback: a network namespace of its own, TCP denied by Landlock (ABI
    /// 4 and later) and sockets other than Unix ones by the seccomp filter. Every command.
    #[default]
    Off,
    /// The host's network, for a project's setup that downloads its dependencies (an
    /// administrator's choice, off by default): the host's network namespace (its loopback
    /// included), TCP and IP sockets allowed. Files, processes and resources stay confined as
    /// with [`Network::Off`].
    Host,
}

/// Resource limits of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock time before SIGTERM to the group.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// RLIMIT_AS: address space per process, bytes.
    pub address_space_bytes: u64,
    /// RLIMIT_CPU: CPU seconds per process.
    pub cpu_seconds: u64,
    /// RLIMIT_FSIZE: largest file a process may write, bytes.
    pub file_size_bytes: u64,
    /// RLIMIT_NOFILE: open descriptors per process.
    pub open_files: u64,
    /// RLIMIT_NPROC: processes (and threads) of the sandbox's uid.
    pub processes: u64,
    /// Output kept from the start of each stream, bytes (streamed live).
    pub output_head_bytes: usize,
    /// Output kept from the end of each stream, bytes (sent when the stream ends).
    pub output_tail_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(600),
            grace: Duration::from_secs(2),
            address_space_bytes: 3 << 30,
            cpu_seconds: 600,
            file_size_bytes: 1 << 30,
            open_files: 1024,
            processes: 256,
            output_head_bytes: 1 << 20,
            output_tail_bytes: 256 << 10,
        }
    }
}

/// One command to run in a worktree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program (looked up in `PATH` inside the sandbox when it has no `/`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The worktree: an absolute path to an existing folder, writable by the sandbox's
    /// [`Identity`]. The command starts there; it is the only host folder it may write.
    pub worktree: PathBuf,
    /// Environment variables given to the command on top of the allow-list (`PATH`, `LANG`,
    /// `HOME`, `TMPDIR`); nothing else is inherited from the server.
    pub env: Vec<(String, String)>,
    /// More folders the command may read and execute (toolchains such as a Rust or Node
    /// installation), bound read-only at the same path.
    pub read_only_paths: Vec<PathBuf>,
    /// Limits.
    pub limits: Limits,
    /// The network it may use.
    pub network: Network,
}

impl CommandSpec {
    /// A spec with default limits, no extra environment and no extra read-only folders.
    pub fn new(program: impl Into<String>, args: &[&str], worktree: impl Into<PathBuf>) -> Self {
        CommandSpec {
            program: program.into(),
            args: args.iter().map(|argument| (*argument).to_owned()).collect(),
            worktree: worktree.into(),
            env: Vec::new(),
            read_only_paths: Vec::new(),
            limits: Limits::default(),
            network: Network::Off,
        }
    }

    /// `sh -c script` in `worktree`.
    pub fn shell(script: &str, worktree: impl Into<PathBuf>) -> Self {
        CommandSpec::new("/bin/sh", &["-c", script], worktree)
    }
}

/// `PATH` inside the sandbox.
pub(crate) const SANDBOX_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// HOME, relative to the worktree.
pub(crate) const HOME_IN_WORKTREE: &str = ".sandbox/home";

/// TMPDIR, relative to the worktree.
pub(crate) const TMP_IN_WORKTREE: &str = ".sandbox/tmp";
