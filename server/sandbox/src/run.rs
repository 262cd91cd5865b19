//! Starting a command in the sandbox and supervising it: timeout, stop, output, result.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Error;
use crate::helper::{
    FIRST_TOOLCHAIN_DESCRIPTOR, HELPER_DESCRIPTOR, HELPER_MARKER, HelperConfig, STATUS_DESCRIPTOR,
    WORKTREE_DESCRIPTOR,
};
use crate::output::{Event, Stream, StreamTotals, pump};
use crate::probe::{SandboxReport, effective_identity, find_bubblewrap};
use crate::spec::{
    CommandSpec, HOME_IN_WORKTREE, Identity, Isolation, Layers, Network, SANDBOX_PATH,
    TMP_IN_WORKTREE,
};
use crate::sys::{self, ChildSetup, Rlimit};

/// System folders bound read-only (or recreated as the same symbolic links) in the sandbox and
/// allowed read-only by Landlock.
const SYSTEM_FOLDERS: [&str; 5] = ["/usr", "/bin", "/lib", "/lib64", "/sbin"];

/// What of `/etc` the sandbox sees (the rest of `/etc` is not there): users and groups for
/// tools that look themselves up, the dynamic linker's cache, time zone, certificates, Debian's
/// alternatives (`cc`, `java`, …) and shell and Python defaults.
const ETC_ENTRIES: [&str; 20] = [
    "passwd",
    "group",
    "hosts",
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "alternatives",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "mime.types",
    "os-release",
    "debian_version",
    "bash.bashrc",
    "profile",
];

/// Where the helper's status pipe and other passed descriptors are kept in the server before
/// they are placed at their fixed numbers (above every fixed number, so placing one never
/// overwrites another).
const FIRST_STAGING_DESCRIPTOR: RawFd = 64;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The exit code; inside bubblewrap or the helper's namespaces a command killed by signal N
    /// reports 128 + N, as a shell does.
    pub exit_code: Option<i32>,
    /// The signal that ended the sandbox's outermost process (SIGKILL after the grace period).
    pub signal: Option<i32>,
    /// From start to end.
    pub duration: Duration,
    /// The wall-clock timeout ended it.
    pub timed_out: bool,
    /// [`RunHandle::stop`] ended it.
    pub stopped: bool,
    /// Bytes written to standard output.
    pub stdout_bytes: u64,
    /// Bytes written to standard error.
    pub stderr_bytes: u64,
    /// Bytes left out of the events (between each stream's head and tail).
    pub omitted_bytes: u64,
    /// The isolation the run had.
    pub isolation: Isolation,
}

impl RunResult {
    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// How to start sandboxed commands on this machine.
#[derive(Clone, Debug)]
pub struct Sandbox {
    helper: PathBuf,
    bubblewrap: Option<PathBuf>,
    identity: Identity,
    layers: Layers,
}

impl Sandbox {
    /// A sandbox whose helper is the executable `helper` (the server's own binary, started with
    /// [`HELPER_MARKER`]), running commands as `identity` (when the server is root; otherwise as
    /// the server's own uid) with `layers`.
    pub fn new(
        helper: impl Into<PathBuf>,
        identity: Identity,
        layers: Layers,
    ) -> Result<Self, Error> {
        let helper = helper.into();
        if !helper.is_file() {
            return Err(Error::InvalidSpec(format!(
                "the helper {} is not a file",
                helper.display()
            )));
        }
        let bubblewrap = find_bubblewrap();
        if layers.isolation == Isolation::Bubblewrap && bubblewrap.is_none() {
            return Err(Error::SandboxSetup(
                "bubblewrap is not installed".to_owned(),
            ));
        }
        let identity = effective_identity(identity);
        if identity.uid == 0 {
            return Err(Error::SandboxSetup(
                "commands may not run as root".to_owned(),
            ));
        }
        Ok(Sandbox {
            helper,
            bubblewrap,
            identity,
            layers,
        })
    }

    /// A sandbox with the strongest layers `report` found.
    pub fn from_report(helper: impl Into<PathBuf>, report: &SandboxReport) -> Result<Self, Error> {
        Sandbox::new(helper, report.identity, report.strongest_layers())
    }

    /// The layers runs get.
    pub fn layers(&self) -> Layers {
        self.layers
    }

    /// The identity commands run as.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// Starts `spec` (within a Tokio runtime; call it from a runtime's task, not from a
    /// blocking thread: the sandbox is killed when the thread that started it ends). Nothing runs
    /// if a layer cannot be set up: [`RunHandle::finish`] then returns
    /// [`Error::SandboxSetup`].
    pub fn run(&self, spec: CommandSpec) -> Result<RunHandle, Error> {
        let worktree = validate(&spec)?;
        let open_folder = |path: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(path)
                .map_err(|error| Error::system(format!("opening {}", path.display()), error))
        };
        let helper = File::open(&self.helper).map_err(|error| {
            Error::system(
                format!("opening the helper {}", self.helper.display()),
                error,
            )
        })?;
        let worktree_folder = open_folder(&worktree)?;
        let mut toolchains = Vec::new();
        for path in &spec.read_only_paths {
            toolchains.push(open_folder(path)?);
        }
        let (status_reader, status_writer) =
            sys::pipe().map_err(|error| Error::system("status pipe", error))?;

        // Every passed descriptor staged above the fixed numbers, then placed by the child.
        let stage = |descriptor: &dyn AsRawFd| {
            sys::duplicate_above(descriptor.as_raw_fd(), FIRST_STAGING_DESCRIPTOR)
                .map_err(|error| Error::system("duplicating a descriptor", error))
        };
        let mut staged: Vec<(OwnedFd, RawFd)> = vec![
            (stage(&helper)?, HELPER_DESCRIPTOR),
            (stage(&worktree_folder)?, WORKTREE_DESCRIPTOR),
            (stage(&status_writer)?, STATUS_DESCRIPTOR),
        ];
        for (index, toolchain) in toolchains.iter().enumerate() {
            let number = FIRST_TOOLCHAIN_DESCRIPTOR
                + RawFd::try_from(index)
                    .map_err(|_| Error::InvalidSpec("too many read-only paths".to_owned()))?;
            if number >= FIRST_STAGING_DESCRIPTOR {
                return Err(Error::InvalidSpec("too many read-only paths".to_owned()));
            }
            staged.push((stage(toolchain)?, number));
        }
        drop(status_writer);

        let config = HelperConfig {
            isolation: self.layers.isolation,
            landlock: self.layers.landlock,
            seccomp: self.layers.seccomp,
            identity: self.identity,
            worktree: worktree.clone(),
            system_read_only: system_read_only(),
            toolchains: spec.read_only_paths.clone(),
            program: spec.program.clone(),
            args: spec.args.clone(),
            network: spec.network,
        };
        let config_text = serde_json::to_string(&config)?;
        let helper_path = format!("/proc/self/fd/{HELPER_DESCRIPTOR}");
        let mut command = match (self.layers.isolation, &self.bubblewrap) {
            (Isolation::Bubblewrap, Some(bubblewrap)) => {
                let mut command = tokio::process::Command::new(bubblewrap);
                command.args(bubblewrap_arguments(
                    self.identity,
                    &worktree,
                    &spec.read_only_paths,
                    spec.network,
                ));
                command.arg("--").arg(&helper_path);
                command
            }
            (Isolation::Bubblewrap, None) => {
                return Err(Error::SandboxSetup(
                    "bubblewrap is not installed".to_owned(),
                ));
            }
            (Isolation::Namespaces | Isolation::None, _) => {
                tokio::process::Command::new(&helper_path)
            }
        };
        command.arg(HELPER_MARKER).arg(&config_text);
        command
            .env_clear()
            .env("PATH", SANDBOX_PATH)
            .env("LANG", "C.UTF-8")
            .env("HOME", worktree.join(HOME_IN_WORKTREE))
            .env("TMPDIR", worktree.join(TMP_IN_WORKTREE))
            .envs(
                spec.env
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        if sys::user_id() == 0 {
            command.uid(self.identity.uid).gid(self.identity.gid);
        }
        let limits = spec.limits;
        let rlimits = if self.layers.rlimits {
            vec![
                Rlimit {
                    resource: libc::RLIMIT_AS,
                    value: limits.address_space_bytes,
                },
                Rlimit {
                    resource: libc::RLIMIT_CPU,
                    value: limits.cpu_seconds,
                },
                Rlimit {
                    resource: libc::RLIMIT_FSIZE,
                    value: limits.file_size_bytes,
                },
                Rlimit {
                    resource: libc::RLIMIT_NOFILE,
                    value: limits.open_files,
                },
                Rlimit {
                    resource: libc::RLIMIT_NPROC,
                    value: limits.processes,
                },
                Rlimit {
                    resource: libc::RLIMIT_CORE,
                    value: 0,
                },
            ]
        } else {
            Vec::new()
        };
        ChildSetup {
            descriptors: staged
                .iter()
                .map(|(descriptor, target)| (descriptor.as_raw_fd(), *target))
                .collect(),
            rlimits,
        }
        .install(&mut command);

        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|error| Error::SandboxSetup(format!("cannot start the sandbox: {error}")))?;
        drop(staged);
        drop(helper);
        drop(worktree_folder);
        drop(toolchains);
        let process_group = child.id().ok_or_else(|| {
            Error::Supervisor("the sandbox ended before it could be watched".to_owned())
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Supervisor("no standard output pipe".to_owned()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| Error::Supervisor("no standard error pipe".to_owned()))?;
        let (event_sender, events) = mpsc::channel(64);
        let (stop_sender, stop_receiver) = oneshot::channel();
        let isolation = self.layers.isolation;
        let supervisor = tokio::spawn(async move {
            let readers = [
                tokio::spawn(pump(
                    stdout,
                    Stream::Stdout,
                    limits.output_head_bytes,
                    limits.output_tail_bytes,
                    event_sender.clone(),
                )),
                tokio::spawn(pump(
                    stderr,
                    Stream::Stderr,
                    limits.output_head_bytes,
                    limits.output_tail_bytes,
                    event_sender,
                )),
            ];
            supervise(Supervised {
                child,
                process_group,
                started,
                timeout: limits.timeout,
                grace: limits.grace,
                stop: stop_receiver,
                readers,
                status: status_reader,
                isolation,
            })
            .await
        });
        Ok(RunHandle {
            events,
            stop: Some(stop_sender),
            supervisor,
            process_group,
        })
    }
}

fn validate(spec: &CommandSpec) -> Result<PathBuf, Error> {
    if spec.program.is_empty() {
        return Err(Error::InvalidSpec("no program".to_owned()));
    }
    if !spec.worktree.is_absolute() {
        return Err(Error::InvalidSpec(
            "the worktree must be an absolute path".to_owned(),
        ));
    }
    let worktree = spec.worktree.canonicalize().map_err(|error| {
        Error::InvalidSpec(format!("the worktree {}: {error}", spec.worktree.display()))
    })?;
    if !worktree.is_dir() {
        return Err(Error::InvalidSpec(format!(
            "the worktree {} is not a folder",
            worktree.display()
        )));
    }
    if worktree == Path::new("/") {
        return Err(Error::InvalidSpec("the worktree cannot be /".to_owned()));
    }
    for path in &spec.read_only_paths {
        if !path.is_absolute() {
            return Err(Error::InvalidSpec(format!(
                "{} is not an absolute path",
                path.display()
            )));
        }
    }
    Ok(worktree)
}

/// The system folders and `/etc` entries this machine has.
fn system_read_only() -> Vec<PathBuf> {
    SYSTEM_FOLDERS
        .iter()
        .map(PathBuf::from)
        .chain(
            ETC_ENTRIES
                .iter()
                .map(|entry| Path::new("/etc").join(entry)),
        )
        .chain(etc_python_entries())
        .filter(|path| path.exists())
        .collect()
}

/// `/etc/python3*` (Debian's site configuration).
fn etc_python_entries() -> Vec<PathBuf> {
    std::fs::read_dir("/etc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with("python3"))
                .map(|entry| entry.path())
                .collect()
        })
        .unwrap_or_default()
}

fn bubblewrap_arguments(
    identity: Identity,
    worktree: &Path,
    toolchains: &[PathBuf],
    network: Network,
) -> Vec<String> {
    let mut arguments: Vec<String> = [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--hostname",
        "sandbox",
        "--uid",
        &identity.uid.to_string(),
        "--gid",
        &identity.gid.to_string(),
    ]
    .iter()
    .map(|argument| (*argument).to_owned())
    .collect();
    let mut push = |items: &[&str]| arguments.extend(items.iter().map(|item| (*item).to_owned()));
    if network == Network::Host {
        // Every namespace but the network's stays unshared.
        push(&["--share-net"]);
    }
    push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    for path in system_read_only() {
        let text = path.to_string_lossy().into_owned();
        match std::fs::read_link(&path) {
            // /bin -> usr/bin on merged-/usr systems: the same link inside.
            Ok(target) if SYSTEM_FOLDERS.contains(&text.as_str()) => {
                push(&["--symlink", &target.to_string_lossy(), &text]);
            }
            _ => push(&["--ro-bind", &text, &text]),
        }
    }
    for (index, path) in toolchains.iter().enumerate() {
        let descriptor = FIRST_TOOLCHAIN_DESCRIPTOR + RawFd::try_from(index).unwrap_or(RawFd::MAX);
        push(&[
            "--ro-bind-fd",
            &descriptor.to_string(),
            &path.to_string_lossy(),
        ]);
    }
    // Last, so that a worktree under /tmp is not hidden by the private /tmp.
    push(&[
        "--bind-fd",
        &WORKTREE_DESCRIPTOR.to_string(),
        &worktree.to_string_lossy(),
    ]);
    arguments
}

struct Supervised {
    child: tokio::process::Child,
    process_group: u32,
    started: Instant,
    timeout: Duration,
    grace: Duration,
    stop: oneshot::Receiver<()>,
    readers: [JoinHandle<std::io::Result<StreamTotals>>; 2],
    status: OwnedFd,
    isolation: Isolation,
}

async fn supervise(run: Supervised) -> Result<RunResult, Error> {
    let Supervised {
        mut child,
        process_group,
        started,
        timeout,
        grace,
        stop,
        readers,
        status: status_pipe,
        isolation,
    } = run;
    let deadline = tokio::time::sleep(timeout);
    let stop = async move {
        // A dropped handle does not stop the run (its timeout still does).
        if stop.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut timed_out = false;
    let mut stopped = false;
    let status = tokio::select! {
        status = child.wait() => status,
        () = deadline => {
            timed_out = true;
            terminate(&mut child, process_group, grace).await
        }
        () = stop => {
            stopped = true;
            terminate(&mut child, process_group, grace).await
        }
    }
    .map_err(|error| Error::system("waiting for the sandbox", error))?;
    let duration = started.elapsed();
    // Whatever is left in the group goes now (with a pid namespace the kernel already killed
    // everything inside when its init ended).
    sys::kill_group(process_group, libc::SIGKILL)
        .map_err(|error| Error::system("killing the process group", error))?;

    let mut totals: [StreamTotals; 2] = Default::default();
    let drain_time = grace.max(Duration::from_secs(1));
    for (index, reader) in readers.into_iter().enumerate() {
        let abort = reader.abort_handle();
        match tokio::time::timeout(drain_time, reader).await {
            Ok(Ok(Ok(stream_totals))) => {
                if let Some(slot) = totals.get_mut(index) {
                    *slot = stream_totals;
                }
            }
            Ok(Ok(Err(error))) => return Err(Error::system("reading the output", error)),
            Ok(Err(error)) => return Err(Error::Supervisor(error.to_string())),
            // Something outside the group still holds the pipe (only possible without a pid
            // namespace): stop reading.
            Err(_) => abort.abort(),
        }
    }
    let [stdout, stderr] = totals;

    let status_text = read_status(status_pipe)?;
    if let Some(reason) = status_text
        .find('E')
        .and_then(|start| status_text.get(start + 1..))
    {
        return Err(Error::SandboxSetup(reason.to_owned()));
    }
    if !status_text.starts_with('R') && !timed_out && !stopped {
        return Err(Error::SandboxSetup(format!(
            "the sandbox ended ({status}) before the command started; its standard error says: {}",
            String::from_utf8_lossy(&stderr.first_bytes).trim()
        )));
    }
    Ok(RunResult {
        exit_code: status.code(),
        signal: status.signal(),
        duration,
        timed_out,
        stopped,
        stdout_bytes: stdout.written,
        stderr_bytes: stderr.written,
        omitted_bytes: stdout.omitted + stderr.omitted,
        isolation,
    })
}

/// SIGTERM to the group, then SIGKILL to it after `grace`.
async fn terminate(
    child: &mut tokio::process::Child,
    process_group: u32,
    grace: Duration,
) -> std::io::Result<std::process::ExitStatus> {
    sys::kill_group(process_group, libc::SIGTERM)?;
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            sys::kill_group(process_group, libc::SIGKILL)?;
            child.wait().await
        }
    }
}

/// What the helper wrote on its status pipe (all its writers are gone by now).
fn read_status(reader: OwnedFd) -> Result<String, Error> {
    let mut file = File::from(reader);
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => bytes.extend_from_slice(buffer.get(..read).unwrap_or_default()),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(Error::system("reading the status pipe", error)),
        }
        if bytes.len() > 64 * 1024 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A running sandboxed command.
#[derive(Debug)]
pub struct RunHandle {
    events: mpsc::Receiver<Event>,
    stop: Option<oneshot::Sender<()>>,
    supervisor: JoinHandle<Result<RunResult, Error>>,
    process_group: u32,
}

impl RunHandle {
    /// The next output event, or `None` once both streams have ended.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Asks the run to end: SIGTERM to its process group, SIGKILL after the grace period.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take()
            && stop.send(()).is_err()
        {
            // The run has ended already: there is nothing to stop.
        }
    }

    /// The process group (and pid) of the sandbox's outermost process, on the host.
    pub fn process_group(&self) -> u32 {
        self.process_group
    }

    /// Waits for the end, dropping the events not read yet, and returns how it ended.
    pub async fn finish(mut self) -> Result<RunResult, Error> {
        while self.events.recv().await.is_some() {}
        match self.supervisor.await {
            Ok(result) => result,
            Err(error) => Err(Error::Supervisor(error.to_string())),
        }
    }
}
