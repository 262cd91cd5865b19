//! The system calls the sandbox makes, each behind a small safe function.
//!
//! This is the crate's only `unsafe` code. Every call is a plain system call through `libc` with
//! arguments built here (valid pointers to live, NUL-terminated buffers, or integers); nothing
//! here keeps a pointer past the call. The functions marked "after fork" are called in a child
//! between `fork` and `exec` (through `pre_exec`) or in the single-threaded helper, where only
//! async-signal-safe calls are allowed: they make system calls and allocate nothing.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// A failed call as an `io::Error` with the OS error, or `Ok` with the call's value.
fn check(value: libc::c_long) -> io::Result<libc::c_long> {
    if value < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

fn check_int(value: libc::c_int) -> io::Result<libc::c_int> {
    if value < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

/// The Landlock ABI version the kernel offers: `Ok(0)` when Landlock is built in but disabled
/// (`EOPNOTSUPP`) or not built in (`ENOSYS`).
pub fn landlock_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag the kernel only returns
    // its ABI version; no memory is read or written.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if version < 0 { 0 } else { version }
}

/// Sends `signal` to every process of the process group `group`. A group that no longer exists
/// is not an error.
pub fn kill_group(group: u32, signal: i32) -> io::Result<()> {
    let group =
        libc::pid_t::try_from(group).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if group <= 1 {
        // kill(-1) or kill(0) would signal far more than the group: never.
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: kill takes integers only.
    let result = unsafe { libc::kill(-group, signal) };
    if result < 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(error);
    }
    Ok(())
}

/// An rlimit to set: resource and value (soft and hard alike).
#[derive(Clone, Copy, Debug)]
pub struct Rlimit {
    /// `libc::RLIMIT_*`.
    pub resource: libc::__rlimit_resource_t,
    /// The limit, soft and hard.
    pub value: u64,
}

/// What the child does between fork and exec, prepared beforehand so that nothing is allocated
/// after the fork.
#[derive(Clone, Debug)]
pub struct ChildSetup {
    /// Descriptors to place at fixed numbers (source, target), without close-on-exec.
    pub descriptors: Vec<(RawFd, RawFd)>,
    /// Limits to set.
    pub rlimits: Vec<Rlimit>,
}

impl ChildSetup {
    /// Runs in the child after fork (async-signal-safe): a new session (and so a process group
    /// led by the child), SIGTERM ignored (the helper restores it for the command; the wrappers
    /// in between must outlive the command's grace period), SIGKILL when the parent thread dies,
    /// the descriptors at their numbers and the limits.
    pub fn apply(&self) -> io::Result<()> {
        // SAFETY: setsid, signal, prctl, dup2, fcntl and setrlimit are async-signal-safe system
        // calls with integer arguments or a pointer to a local struct.
        unsafe {
            check_int(libc::setsid())?;
            if libc::signal(libc::SIGTERM, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
            check_int(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            for &(source, target) in &self.descriptors {
                if source == target {
                    let flags = check_int(libc::fcntl(target, libc::F_GETFD))?;
                    check_int(libc::fcntl(
                        target,
                        libc::F_SETFD,
                        flags & !libc::FD_CLOEXEC,
                    ))?;
                } else {
                    check_int(libc::dup2(source, target))?;
                }
            }
            for limit in &self.rlimits {
                let value = libc::rlimit {
                    rlim_cur: limit.value,
                    rlim_max: limit.value,
                };
                check_int(libc::setrlimit(limit.resource, &value))?;
            }
        }
        Ok(())
    }
}

impl ChildSetup {
    /// Makes `command` run [`ChildSetup::apply`] between fork and exec.
    pub fn install(self, command: &mut tokio::process::Command) {
        // SAFETY: the closure only makes async-signal-safe system calls on data prepared
        // before the fork (see `apply`).
        unsafe {
            command.pre_exec(move || self.apply());
        }
    }
}

/// Makes `command` call `unshare(flags)` between fork and exec (one system call).
pub fn unshare_before_exec(command: &mut std::process::Command, flags: libc::c_int) {
    use std::os::unix::process::CommandExt;
    // SAFETY: unshare is one async-signal-safe system call.
    unsafe {
        command.pre_exec(move || unshare(flags));
    }
}

/// A close-on-exec copy of `descriptor` numbered `lowest` or above.
pub fn duplicate_above(descriptor: RawFd, lowest: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl with integer arguments; the new descriptor is owned by nobody else.
    unsafe {
        let copy = check_int(libc::fcntl(descriptor, libc::F_DUPFD_CLOEXEC, lowest))?;
        Ok(OwnedFd::from_raw_fd(copy))
    }
}

/// Sets close-on-exec on `descriptor`.
pub fn set_close_on_exec(descriptor: RawFd) -> io::Result<()> {
    // SAFETY: fcntl with integer arguments.
    unsafe {
        let flags = check_int(libc::fcntl(descriptor, libc::F_GETFD))?;
        check_int(libc::fcntl(
            descriptor,
            libc::F_SETFD,
            flags | libc::FD_CLOEXEC,
        ))?;
    }
    Ok(())
}

/// Whether `descriptor` is open in this process.
pub fn is_open(descriptor: RawFd) -> bool {
    // SAFETY: fcntl with integer arguments.
    unsafe { libc::fcntl(descriptor, libc::F_GETFD) >= 0 }
}

/// Takes ownership of a descriptor this process inherited at a known number.
///
/// The caller must know that `descriptor` is open and owned by nobody else in this process
/// (the helper's fixed descriptors, checked with [`is_open`] first).
pub fn adopt(descriptor: RawFd) -> io::Result<OwnedFd> {
    if !is_open(descriptor) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the descriptor is open and, being one the parent placed at this number for the
    // helper, nothing else in the helper owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(descriptor) })
}

/// Closes every descriptor from `first` up, except `keep` (set close-on-exec instead).
pub fn close_descriptors_from(first: RawFd, keep: RawFd) -> io::Result<()> {
    let last = libc::c_uint::MAX;
    let first =
        libc::c_uint::try_from(first).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let keep =
        libc::c_uint::try_from(keep).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: close_range takes integers; the descriptors closed belong to nothing that is used
    // afterwards (the helper owns none of them but `keep`).
    unsafe {
        if keep >= first {
            if keep > first {
                check(libc::syscall(libc::SYS_close_range, first, keep - 1, 0))?;
            }
            check(libc::syscall(libc::SYS_close_range, keep + 1, last, 0))?;
        } else {
            check(libc::syscall(libc::SYS_close_range, first, last, 0))?;
        }
    }
    Ok(())
}

/// Restores the default action of the signals the wrappers ignore, and unblocks all signals.
pub fn restore_signals() -> io::Result<()> {
    // SAFETY: signal and sigprocmask with a local, initialised set.
    unsafe {
        for signal in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGPIPE,
            libc::SIGQUIT,
        ] {
            if libc::signal(signal, libc::SIG_DFL) == libc::SIG_ERR {
                return Err(io::Error::last_os_error());
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        check_int(libc::sigemptyset(&mut set))?;
        check_int(libc::sigprocmask(
            libc::SIG_SETMASK,
            &set,
            std::ptr::null_mut(),
        ))?;
    }
    Ok(())
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: nothing executed from here on gains privileges (setuid
/// bits and file capabilities are ignored).
pub fn set_no_new_privileges() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    unsafe { check_int(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))? };
    Ok(())
}

/// `unshare(flags)`.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes an integer.
    unsafe { check_int(libc::unshare(flags))? };
    Ok(())
}

/// What `fork` returned.
pub enum Forked {
    /// In the parent, with the child's process id.
    Parent(libc::pid_t),
    /// In the child.
    Child,
}

/// `fork()`. Only called by the helper, which is single-threaded.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the helper is single-threaded, so the child is a full copy of the only thread.
    let pid = unsafe { libc::fork() };
    match pid {
        pid if pid < 0 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// How a waited-for process ended.
#[derive(Clone, Copy, Debug)]
pub enum Ended {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signalled(i32),
}

impl Ended {
    /// The exit code a shell would report (128 + signal for a signal).
    pub fn shell_code(self) -> i32 {
        match self {
            Ended::Exited(code) => code,
            Ended::Signalled(signal) => 128 + signal,
        }
    }
}

/// Waits for any child; returns its pid and how it ended, or `None` when there is no child left.
pub fn wait_any() -> io::Result<Option<(libc::pid_t, Ended)>> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status into the local integer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(error),
            }
        }
        if libc::WIFEXITED(status) {
            return Ok(Some((pid, Ended::Exited(libc::WEXITSTATUS(status)))));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Some((pid, Ended::Signalled(libc::WTERMSIG(status)))));
        }
    }
}

/// Ends this process at once with `code` (no destructors, no atexit handlers: the helper's
/// forked processes must not flush anything twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory.
    unsafe { libc::_exit(code) }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `mount(source, target, fstype, flags, data)` with optional strings.
pub fn mount(
    source: &str,
    target: &Path,
    file_system: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = CString::new(source).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let target = c_path(target)?;
    let file_system = file_system
        .map(CString::new)
        .transpose()
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let data = data
        .map(CString::new)
        .transpose()
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: every pointer is to a live NUL-terminated string or null.
    unsafe {
        check_int(libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            file_system
                .as_ref()
                .map_or(std::ptr::null(), |name| name.as_ptr()),
            flags,
            data.as_ref().map_or(std::ptr::null(), |text| {
                text.as_ptr().cast::<libc::c_void>()
            }),
        ))?;
    }
    Ok(())
}

/// `sethostname(name)`.
pub fn set_host_name(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe the string's bytes.
    unsafe {
        check_int(libc::sethostname(
            name.as_ptr().cast::<libc::c_char>(),
            name.len(),
        ))?
    };
    Ok(())
}

/// The real user id of this process.
pub fn user_id() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// The real group id of this process.
pub fn group_id() -> u32 {
    // SAFETY: getgid cannot fail.
    unsafe { libc::getgid() }
}

/// `prctl(PR_GET_SECCOMP)`: 0 when this process has no seccomp mode, 2 with a filter; an error
/// when the kernel has no seccomp.
pub fn seccomp_mode() -> io::Result<i32> {
    // SAFETY: prctl with integer arguments.
    unsafe { check_int(libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0)) }
}

/// A pipe whose both ends are close-on-exec (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut ends: [libc::c_int; 2] = [-1, -1];
    // SAFETY: pipe2 writes two descriptors into the local array.
    unsafe {
        check_int(libc::pipe2(
            ends.as_mut_ptr(),
            libc::O_CLOEXEC | libc::O_NONBLOCK,
        ))?
    };
    // SAFETY: pipe2 succeeded, so both are new descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) })
}

/// Writes all of `bytes` to `descriptor` (best effort on a failing descriptor: the error is
/// returned).
pub fn write_all(descriptor: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe the live slice.
        let written = unsafe {
            libc::write(
                descriptor,
                bytes.as_ptr().cast::<libc::c_void>(),
                bytes.len(),
            )
        };
        if written < 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(error);
        }
        let written =
            usize::try_from(written).map_err(|_| io::Error::from_raw_os_error(libc::EIO))?;
        bytes = bytes.get(written..).unwrap_or_default();
    }
    Ok(())
}
