//! The helper: the innermost stage, run inside bubblewrap (or as the namespaces' creator), which
//! applies Landlock, `no_new_privs` and seccomp to itself and then executes the command.
//!
//! The server re-executes its own binary with [`HELPER_MARKER`] as the first argument; its `main`
//! calls [`helper_main`] when [`is_helper_invocation`] says so, before anything else (no runtime,
//! no threads: the helper forks). `src/bin/sandbox-helper.rs` is the same for this crate's tests.
//!
//! Descriptors the server places at fixed numbers: 3 the helper's own executable (executed as
//! `/proc/self/fd/3`, so the sandbox uid needs no path to it), 4 the worktree, 5 the status
//! pipe, 6 and up the read-only toolchain folders. The helper closes all of them but the status
//! pipe (close-on-exec) before the command starts. On the status pipe it writes `R` just before
//! `exec`, or `E` and the reason when a layer cannot be set up (and then exits with 125 without
//! running anything).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::landlock_rules::{Place, Rules};
use crate::spec::{HOME_IN_WORKTREE, Identity, Isolation, Network, TMP_IN_WORKTREE};
use crate::sys;

/// The first argument that makes a binary act as the sandbox helper.
pub const HELPER_MARKER: &str = "--async-coder-sandbox-helper";

pub(crate) const HELPER_DESCRIPTOR: RawFd = 3;
pub(crate) const WORKTREE_DESCRIPTOR: RawFd = 4;
pub(crate) const STATUS_DESCRIPTOR: RawFd = 5;
pub(crate) const FIRST_TOOLCHAIN_DESCRIPTOR: RawFd = 6;

/// Exit code of a helper that refused to run the command.
pub(crate) const SETUP_FAILED_EXIT: i32 = 125;

/// What the helper is told (as JSON, its second argument).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HelperConfig {
    pub isolation: Isolation,
    pub landlock: bool,
    pub seccomp: bool,
    pub identity: Identity,
    /// The worktree's path (inside bubblewrap it is bound at the same path).
    pub worktree: PathBuf,
    /// System folders to allow read-only (those that exist).
    pub system_read_only: Vec<PathBuf>,
    /// Toolchain folders: their paths, and their descriptors from [`FIRST_TOOLCHAIN_DESCRIPTOR`]
    /// on in the same order.
    pub toolchains: Vec<PathBuf>,
    pub program: String,
    pub args: Vec<String>,
    /// The network the command may use.
    pub network: Network,
}

/// Whether this process was started as the sandbox helper.
pub fn is_helper_invocation() -> bool {
    std::env::args_os()
        .nth(1)
        .is_some_and(|argument| argument == HELPER_MARKER)
}

/// The helper's entry point: sets up the inner layers and executes the command, or reports why
/// it cannot and exits with 125. Never returns. Call it before starting threads or a runtime.
pub fn helper_main() -> ! {
    let message = match run_helper() {
        Ok(never) => match never {},
        Err(message) => message,
    };
    // Nothing else can be done if the status pipe is gone: the exit code still says it.
    if sys::write_all(STATUS_DESCRIPTOR, format!("E{message}").as_bytes()).is_err() {
        eprintln!("sandbox: {message}");
    }
    sys::exit_now(SETUP_FAILED_EXIT)
}

fn run_helper() -> Result<std::convert::Infallible, String> {
    sys::set_close_on_exec(STATUS_DESCRIPTOR).map_err(|error| format!("status pipe: {error}"))?;
    let config_text = std::env::args()
        .nth(2)
        .ok_or_else(|| "the helper was started without its configuration".to_owned())?;
    let config: HelperConfig = serde_json::from_str(&config_text)
        .map_err(|error| format!("helper configuration: {error}"))?;
    if config.identity.uid == 0 || sys::user_id() == 0 {
        return Err("refusing to run a command as root".to_owned());
    }
    // Bubblewrap has used (and closed) the worktree's and toolchains' descriptors for its
    // binds; elsewhere they are the only way to them (the sandbox uid may not be able to walk
    // their paths).
    let bubblewrap = config.isolation == Isolation::Bubblewrap;
    let mut worktree_descriptor = None;
    let mut toolchain_descriptors = Vec::new();
    if !bubblewrap {
        worktree_descriptor = Some(
            sys::adopt(WORKTREE_DESCRIPTOR)
                .map_err(|error| format!("worktree descriptor: {error}"))?,
        );
        for index in 0..config.toolchains.len() {
            let number = FIRST_TOOLCHAIN_DESCRIPTOR
                + RawFd::try_from(index).map_err(|error| error.to_string())?;
            toolchain_descriptors.push(
                sys::adopt(number).map_err(|error| format!("toolchain descriptor: {error}"))?,
            );
        }
    }
    let helper_descriptor =
        sys::adopt(HELPER_DESCRIPTOR).map_err(|error| format!("helper descriptor: {error}"))?;
    drop(helper_descriptor);

    let mut worktree_at_its_path = bubblewrap;
    if config.isolation == Isolation::Namespaces {
        worktree_at_its_path = enter_namespaces(&config)?;
    }

    // The working folder: by path where the worktree is mounted at its path in a new root or
    // tmp (inside it, the descriptor points at the host's mount, outside the new view), by
    // descriptor otherwise.
    if worktree_at_its_path {
        std::env::set_current_dir(&config.worktree)
    } else {
        std::env::set_current_dir(format!("/proc/self/fd/{WORKTREE_DESCRIPTOR}"))
    }
    .map_err(|error| {
        format!(
            "cannot enter the worktree {}: {error}",
            config.worktree.display()
        )
    })?;
    for folder in [HOME_IN_WORKTREE, TMP_IN_WORKTREE] {
        std::fs::create_dir_all(folder)
            .map_err(|error| format!("cannot create {folder} in the worktree: {error}"))?;
    }

    if config.landlock {
        apply_landlock(
            &config,
            worktree_descriptor.as_ref(),
            &toolchain_descriptors,
        )?;
    }
    drop(worktree_descriptor);
    drop(toolchain_descriptors);
    sys::close_descriptors_from(3, STATUS_DESCRIPTOR)
        .map_err(|error| format!("closing descriptors: {error}"))?;

    let filter = if config.seccomp {
        Some(crate::seccomp::program(config.network)?)
    } else {
        None
    };
    sys::restore_signals().map_err(|error| format!("signals: {error}"))?;
    if let Some(filter) = &filter {
        crate::seccomp::install(filter)?;
    } else {
        sys::set_no_new_privileges().map_err(|error| format!("no_new_privs: {error}"))?;
    }
    sys::write_all(STATUS_DESCRIPTOR, b"R").map_err(|error| format!("status pipe: {error}"))?;
    let error = std::process::Command::new(&config.program)
        .args(&config.args)
        .exec();
    // The sandbox is set up; the command itself could not start (like a shell's 127).
    eprintln!("sandbox: cannot run {}: {error}", config.program);
    sys::exit_now(127)
}

fn apply_landlock(
    config: &HelperConfig,
    worktree: Option<&OwnedFd>,
    toolchains: &[OwnedFd],
) -> Result<(), String> {
    let private_tmp = config.isolation != Isolation::None;
    let mut read_only: Vec<Place<'_>> = config
        .system_read_only
        .iter()
        .map(|path| Place::Path(path.as_path()))
        .collect();
    read_only.push(Place::Path(Path::new("/proc")));
    let bubblewrap = config.isolation == Isolation::Bubblewrap;
    if bubblewrap {
        read_only.extend(
            config
                .toolchains
                .iter()
                .map(|path| Place::Path(path.as_path())),
        );
    } else {
        read_only.extend(
            toolchains
                .iter()
                .map(|descriptor| Place::Descriptor(descriptor.as_fd())),
        );
    }
    let mut read_write = vec![match worktree {
        Some(descriptor) => Place::Descriptor(descriptor.as_fd()),
        None => Place::Path(config.worktree.as_path()),
    }];
    if private_tmp {
        read_write.push(Place::Path(Path::new("/tmp")));
    }
    let rules = Rules {
        read_only,
        read_write,
        devices: vec![Place::Path(Path::new("/dev"))],
        network: config.network,
    };
    crate::landlock_rules::restrict(&rules)
}

/// Unshares every namespace (a user namespace mapping the sandbox's uid and gid to themselves),
/// becomes the pid namespace's init in a child, mounts a new `/proc` and a private `/tmp`, and
/// returns in a grandchild (pid 2) that goes on to run the command. The processes that wait
/// exit with the command's status (128 + signal when a signal ended it); when the namespace's
/// init exits, the kernel kills whatever is left in it. Returns whether the worktree was bound
/// again at its path (it was under `/tmp`, which the private tmp hides).
fn enter_namespaces(config: &HelperConfig) -> Result<bool, String> {
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWCGROUP;
    if config.network == Network::Off {
        flags |= libc::CLONE_NEWNET;
    }
    sys::unshare(flags).map_err(|error| format!("unshare: {error}"))?;
    let Identity { uid, gid } = config.identity;
    let write = |file: &str, text: String| {
        std::fs::write(file, text).map_err(|error| format!("writing {file}: {error}"))
    };
    write("/proc/self/setgroups", "deny".to_owned())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;

    // The first child is the pid namespace's init.
    if let sys::Forked::Parent(init) = sys::fork().map_err(|error| format!("fork: {error}"))? {
        wait_for(init)
    }
    let no_flags = None;
    let rprivate = libc::MS_REC | libc::MS_PRIVATE;
    sys::mount("none", Path::new("/"), None, rprivate, no_flags)
        .map_err(|error| format!("making mounts private: {error}"))?;
    let hidden = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    sys::mount("proc", Path::new("/proc"), Some("proc"), hidden, no_flags)
        .map_err(|error| format!("mounting /proc: {error}"))?;
    let under_tmp = config.worktree.starts_with("/tmp");
    let worktree_here = if under_tmp {
        // Opened in this mount namespace (the inherited descriptor's mount is the host's, which
        // cannot be bound here).
        Some(
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(&config.worktree)
                .map_err(|error| format!("opening the worktree: {error}"))?,
        )
    } else {
        None
    };
    sys::mount(
        "tmpfs",
        Path::new("/tmp"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(|error| format!("mounting a private /tmp: {error}"))?;
    if let Some(worktree) = &worktree_here {
        std::fs::create_dir_all(&config.worktree)
            .map_err(|error| format!("making the worktree's place in the private /tmp: {error}"))?;
        let source = format!("/proc/self/fd/{}", worktree.as_raw_fd());
        sys::mount(
            &source,
            &config.worktree,
            None,
            libc::MS_BIND | libc::MS_REC,
            no_flags,
        )
        .map_err(|error| format!("binding the worktree into the private /tmp: {error}"))?;
    }
    sys::set_host_name("sandbox").map_err(|error| format!("sethostname: {error}"))?;
    match sys::fork().map_err(|error| format!("fork: {error}"))? {
        sys::Forked::Parent(command) => wait_for(command),
        sys::Forked::Child => Ok(under_tmp),
    }
}

/// Waits (reaping every other child meanwhile) until `child` ends, then exits with its status.
fn wait_for(child: libc::pid_t) -> ! {
    loop {
        match sys::wait_any() {
            Ok(Some((pid, ended))) if pid == child => sys::exit_now(ended.shell_code()),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => sys::exit_now(SETUP_FAILED_EXIT),
        }
    }
}
