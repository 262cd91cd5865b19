//! What this machine allows, layer by layer, and whether that meets a [`Policy`].

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::spec::{Identity, Isolation, Layers};
use crate::sys;

/// One layer's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerState {
    /// Whether the layer can be used.
    pub available: bool,
    /// What was found, in words (the version, or why not).
    pub detail: String,
}

impl LayerState {
    fn yes(detail: impl Into<String>) -> Self {
        LayerState {
            available: true,
            detail: detail.into(),
        }
    }

    fn no(detail: impl Into<String>) -> Self {
        LayerState {
            available: false,
            detail: detail.into(),
        }
    }
}

/// Each layer of the sandbox on this machine, as [`probe`] found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxReport {
    /// The identity commands run as.
    pub identity: Identity,
    /// Whether the server runs as root (it then drops to `identity`; otherwise commands run as
    /// the server's own uid).
    pub server_is_root: bool,
    /// Creating a user namespace as `identity`.
    pub user_namespaces: LayerState,
    /// Creating a network namespace inside it.
    pub network_namespace: LayerState,
    /// Bubblewrap found and able to start a sandbox with every namespace unshared.
    pub bubblewrap: LayerState,
    /// Where bubblewrap is, when found.
    pub bubblewrap_path: Option<PathBuf>,
    /// Landlock, with its ABI version (0 when absent).
    pub landlock: LayerState,
    /// The Landlock ABI version the kernel offers (0: none).
    pub landlock_abi: u32,
    /// seccomp filters.
    pub seccomp: LayerState,
    /// A delegated cgroup v2 for memory and process limits beyond rlimits.
    pub cgroup_v2: LayerState,
}

/// The least a machine must offer before commands may run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Namespaces (bubblewrap's or the helper's own) are required.
    pub require_namespaces: bool,
    /// Bubblewrap itself is required (not only the helper's own namespaces).
    pub require_bubblewrap: bool,
    /// The lowest Landlock ABI accepted (0: Landlock not required).
    pub minimum_landlock_abi: u32,
    /// seccomp is required.
    pub require_seccomp: bool,
}

impl Default for Policy {
    /// Namespaces, Landlock (ABI 1 or newer) and seccomp; bubblewrap preferred, not required.
    fn default() -> Self {
        Policy {
            require_namespaces: true,
            require_bubblewrap: false,
            minimum_landlock_abi: 1,
            require_seccomp: true,
        }
    }
}

/// Why commands may not run here, and what an operator can do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The layer that is missing.
    pub layer: String,
    /// What is missing.
    pub reason: String,
    /// What to change.
    pub fix: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{}: {} Fix: {}",
            self.layer, self.reason, self.fix
        )
    }
}

impl SandboxReport {
    /// `Ok` when this machine offers at least what `policy` requires, else the first missing
    /// layer with its reason and fix.
    pub fn minimum_met(&self, policy: &Policy) -> Result<(), Refusal> {
        if self.identity.uid == 0 {
            return Err(Refusal {
                layer: "identity".to_owned(),
                reason: "commands would run as root, for whom process limits are not enforced.".to_owned(),
                fix: "run the server as root (it then drops to the configured sandbox uid) or as an unprivileged user, never with a sandbox uid of 0.".to_owned(),
            });
        }
        if policy.require_namespaces && !self.user_namespaces.available {
            return Err(Refusal {
                layer: "user namespaces".to_owned(),
                reason: format!(
                    "an unprivileged user namespace cannot be created ({}).",
                    self.user_namespaces.detail
                ),
                fix: user_namespace_fix(),
            });
        }
        if policy.require_namespaces && !self.network_namespace.available {
            return Err(Refusal {
                layer: "network namespace".to_owned(),
                reason: format!("a network namespace cannot be created ({}).", self.network_namespace.detail),
                fix: "allow CLONE_NEWNET in user namespaces (a container's seccomp profile or an LSM may forbid it).".to_owned(),
            });
        }
        if policy.require_bubblewrap && !self.bubblewrap.available {
            return Err(Refusal {
                layer: "bubblewrap".to_owned(),
                reason: format!(
                    "bubblewrap cannot start a sandbox ({}).",
                    self.bubblewrap.detail
                ),
                fix: if self.bubblewrap_path.is_none() {
                    "install it: apt-get install bubblewrap (Debian, Ubuntu), dnf install bubblewrap (Fedora).".to_owned()
                } else {
                    user_namespace_fix()
                },
            });
        }
        if self.landlock_abi < policy.minimum_landlock_abi {
            return Err(Refusal {
                layer: "Landlock".to_owned(),
                reason: format!(
                    "Landlock ABI {} is required, this kernel offers {} ({}).",
                    policy.minimum_landlock_abi, self.landlock_abi, self.landlock.detail
                ),
                fix: "use Linux 5.13 or newer (6.7 or newer for TCP rules) with Landlock enabled: CONFIG_SECURITY_LANDLOCK=y and `landlock` in the boot parameter `lsm=` (e.g. lsm=landlock,lockdown,yama,integrity,apparmor,bpf).".to_owned(),
            });
        }
        if policy.require_seccomp && !self.seccomp.available {
            return Err(Refusal {
                layer: "seccomp".to_owned(),
                reason: format!(
                    "seccomp filters are not available ({}).",
                    self.seccomp.detail
                ),
                fix: "use a kernel built with CONFIG_SECCOMP_FILTER=y.".to_owned(),
            });
        }
        Ok(())
    }

    /// The strongest layers this machine offers: bubblewrap when it works, else the helper's own
    /// namespaces when user namespaces work, else none; Landlock and seccomp when available.
    pub fn strongest_layers(&self) -> Layers {
        let isolation = if self.bubblewrap.available {
            Isolation::Bubblewrap
        } else if self.user_namespaces.available && self.network_namespace.available {
            Isolation::Namespaces
        } else {
            Isolation::None
        };
        Layers {
            isolation,
            landlock: self.landlock.available,
            seccomp: self.seccomp.available,
            rlimits: true,
        }
    }
}

fn user_namespace_fix() -> String {
    let mut fix = String::new();
    if read_trimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
        == Some("1")
    {
        fix.push_str(
            "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+): either \
             `sysctl kernel.apparmor_restrict_unprivileged_userns=0`, or an AppArmor profile for \
             /usr/bin/bwrap that allows `userns,`. ",
        );
    }
    if read_trimmed("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        fix.push_str("`sysctl user.max_user_namespaces=15000` (it is 0). ");
    }
    if read_trimmed("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        fix.push_str("`sysctl kernel.unprivileged_userns_clone=1` (Debian's older kernels). ");
    }
    fix.push_str(
        "Inside a container, its seccomp profile must allow unshare/clone with CLONE_NEWUSER \
         (Docker: a profile that allows them, or --security-opt seccomp=unconfined).",
    );
    fix
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_owned())
}

/// Bubblewrap's usual places.
const BUBBLEWRAP_PLACES: [&str; 2] = ["/usr/bin/bwrap", "/usr/local/bin/bwrap"];

/// Where bubblewrap is installed, if it is.
pub(crate) fn find_bubblewrap() -> Option<PathBuf> {
    BUBBLEWRAP_PLACES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// The identity commands really run as: `wanted` when the server is root, else the server's own.
pub(crate) fn effective_identity(wanted: Identity) -> Identity {
    if sys::user_id() == 0 {
        wanted
    } else {
        Identity {
            uid: sys::user_id(),
            gid: sys::group_id(),
        }
    }
}

/// Runs `/bin/true` as `identity` after `unshare(flags)` in the child.
fn try_unshare(identity: Identity, flags: libc::c_int) -> Result<(), String> {
    let mut command = Command::new("/bin/true");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_clear();
    if sys::user_id() == 0 {
        command.uid(identity.uid).gid(identity.gid);
    }
    sys::unshare_before_exec(&mut command, flags);
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("the test process ended with {status}")),
        Err(error) => Err(error.to_string()),
    }
}

/// Checks each layer on this machine for commands run as `identity` (as the effective identity:
/// a server that is not root runs commands as itself). Starts a few short processes; call it
/// once at start (it blocks for some milliseconds).
pub fn probe(identity: Identity) -> SandboxReport {
    let identity = effective_identity(identity);
    let user_namespaces = match try_unshare(identity, libc::CLONE_NEWUSER) {
        Ok(()) => LayerState::yes("unprivileged user namespaces work"),
        Err(error) => LayerState::no(error),
    };
    let network_namespace = match try_unshare(identity, libc::CLONE_NEWUSER | libc::CLONE_NEWNET) {
        Ok(()) => LayerState::yes("a network namespace with only its own loopback"),
        Err(error) => LayerState::no(error),
    };
    let bubblewrap_path = find_bubblewrap();
    let bubblewrap = match &bubblewrap_path {
        None => LayerState::no("not installed (Debian package `bubblewrap`)"),
        Some(path) => probe_bubblewrap(path, identity),
    };
    let landlock_abi = u32::try_from(sys::landlock_abi()).unwrap_or(0);
    let landlock = if landlock_abi == 0 {
        LayerState::no("not offered by this kernel (absent or not enabled at boot)")
    } else {
        LayerState::yes(format!(
            "ABI {landlock_abi}{}",
            if landlock_abi >= 4 {
                ", TCP rules"
            } else {
                ", no TCP rules (ABI < 4)"
            }
        ))
    };
    let seccomp = probe_seccomp();
    let cgroup_v2 = probe_cgroup();
    SandboxReport {
        identity,
        server_is_root: sys::user_id() == 0,
        user_namespaces,
        network_namespace,
        bubblewrap,
        bubblewrap_path,
        landlock,
        landlock_abi,
        seccomp,
        cgroup_v2,
    }
}

fn probe_bubblewrap(path: &Path, identity: Identity) -> LayerState {
    let version = Command::new(path)
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut command = Command::new(path);
    command
        .args([
            "--unshare-all",
            "--die-with-parent",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--",
            "/usr/bin/true",
        ])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if sys::user_id() == 0 {
        command.uid(identity.uid).gid(identity.gid);
    }
    match command.output() {
        Ok(output) if output.status.success() => LayerState::yes(format!("{version} works")),
        Ok(output) => LayerState::no(format!(
            "{version} found but cannot start a sandbox: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => LayerState::no(format!("{} cannot be started: {error}", path.display())),
    }
}

fn probe_seccomp() -> LayerState {
    match sys::seccomp_mode() {
        Err(error) => LayerState::no(format!("prctl(PR_GET_SECCOMP): {error}")),
        Ok(_) => match read_trimmed("/proc/sys/kernel/seccomp/actions_avail") {
            Some(actions) if actions.split(' ').any(|action| action == "errno") => {
                LayerState::yes(format!("filters with actions: {actions}"))
            }
            Some(actions) => LayerState::no(format!("no errno action (only {actions})")),
            None => {
                LayerState::no("/proc/sys/kernel/seccomp/actions_avail is missing (no filter mode)")
            }
        },
    }
}

fn probe_cgroup() -> LayerState {
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers");
    if !unified.exists() {
        let v1 = std::fs::read_to_string("/proc/self/mounts")
            .map(|mounts| {
                mounts
                    .lines()
                    .any(|line| line.split(' ').nth(2) == Some("cgroup"))
            })
            .unwrap_or(false);
        return LayerState::no(if v1 {
            "cgroups v1 only: no cgroup v2 hierarchy, so memory and process limits rely on rlimits"
        } else {
            "no cgroup v2 hierarchy mounted at /sys/fs/cgroup: limits rely on rlimits"
        });
    }
    // cgroup v2: our own cgroup must be writable (delegated) to create a child per run.
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("0::").map(str::to_owned))
        });
    let Some(own) = own else {
        return LayerState::no("cgroup v2 is mounted but this process's cgroup is unknown");
    };
    let folder = Path::new("/sys/fs/cgroup").join(own.trim_start_matches('/'));
    let subtree = folder.join("cgroup.subtree_control");
    match std::fs::OpenOptions::new().append(true).open(&subtree) {
        Ok(_) => LayerState::no(format!(
            "cgroup v2 at {} is writable (delegated), but this version does not use it yet: limits rely on rlimits",
            folder.display()
        )),
        Err(error) => LayerState::no(format!(
            "cgroup v2 without delegation ({}: {error}): limits rely on rlimits",
            subtree.display()
        )),
    }
}
