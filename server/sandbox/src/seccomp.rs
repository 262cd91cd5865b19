//! The seccomp filter: a deny-list in front of an allowing default.
//!
//! Denied with `EPERM` (so tools print "Operation not permitted" instead of dying): sockets of
//! any family but `AF_UNIX`; io_uring; ptrace and reading or writing other processes' memory;
//! mounting and the new mount API; `bpf`; the kernel keyring; `perf_event_open`; new namespaces
//! (`unshare`, `setns`, `clone` with a namespace flag); loading modules and kexec; `chroot` and
//! `pivot_root`; file handles (`open_by_handle_at`, a known container escape); `userfaultfd`;
//! clock and swap changes, `reboot`, `syslog`, `acct`, `quotactl`. `clone3` fails with `ENOSYS`
//! (its flags are behind a pointer the filter cannot read), so C libraries fall back to `clone`,
//! whose flags it checks. On x86-64 the x32 system-call numbers (bit 30) are refused as a whole,
//! and other architectures' calls kill the process (seccompiler's architecture check).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use crate::spec::Network;

/// The namespace flags `clone` may not carry.
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

/// System calls denied whatever their arguments.
const DENIED: &[libc::c_long] = &[
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_bpf,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_perf_event_open,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_userfaultfd,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_syslog,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_lookup_dcookie,
    libc::SYS_vhangup,
];

fn failed(error: impl std::fmt::Display) -> String {
    format!("seccomp: {error}")
}

fn condition(argument: u8, operator: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(argument, SeccompCmpArgLen::Qword, operator, value).map_err(failed)
}

/// The compiled filter for this machine's architecture. With [`Network::Host`] sockets of any
/// family are allowed (the command shares the host's network); everything else is denied alike.
pub fn program(network: Network) -> Result<BpfProgram, String> {
    let permission_denied = u32::try_from(libc::EPERM).map_err(failed)?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &call in DENIED {
        rules.insert(call, Vec::new());
    }
    if network == Network::Off {
        let unix = u64::try_from(libc::AF_UNIX).map_err(failed)?;
        rules.insert(
            libc::SYS_socket,
            vec![
                SeccompRule::new(vec![
                    SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, unix)
                        .map_err(failed)?,
                ])
                .map_err(failed)?,
            ],
        );
    }
    let mut clone_rules = Vec::new();
    for flag in NAMESPACE_FLAGS {
        let flag = u64::try_from(flag).map_err(failed)?;
        clone_rules.push(
            SeccompRule::new(vec![condition(0, SeccompCmpOp::MaskedEq(flag), flag)?])
                .map_err(failed)?,
        );
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let architecture: TargetArch = std::env::consts::ARCH.try_into().map_err(failed)?;
    let denying = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(permission_denied),
        architecture,
    )
    .map_err(failed)?;
    let mut program: BpfProgram = denying.try_into().map_err(failed)?;

    // clone3 -> ENOSYS, and (x86-64) the x32 numbers -> EPERM, ahead of seccompiler's program.
    let not_implemented = u32::try_from(libc::ENOSYS).map_err(failed)?;
    let clone3 = u32::try_from(libc::SYS_clone3).map_err(failed)?;
    let mut prefix = vec![
        statement(BPF_LD | BPF_W | BPF_ABS, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, clone3, 0, 1),
        statement(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | not_implemented),
    ];
    if architecture == TargetArch::x86_64 {
        prefix.extend([
            jump(BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, 0, 1),
            statement(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | permission_denied),
        ]);
    }
    prefix.append(&mut program);
    Ok(prefix)
}

const BPF_LD: u16 = 0x00;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JMP: u16 = 0x05;
const BPF_JEQ: u16 = 0x10;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;
const BPF_RET: u16 = 0x06;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn statement(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jump_if_true: u8, jump_if_false: u8) -> sock_filter {
    sock_filter {
        code,
        jt: jump_if_true,
        jf: jump_if_false,
        k,
    }
}

/// Installs the filter on this thread (sets `no_new_privs` first, as the kernel requires).
pub fn install(program: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter(program).map_err(failed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use crate::spec::Network;

    #[test]
    fn the_filter_compiles_for_this_machine() {
        let program = super::program(Network::Off).unwrap();
        assert!(program.len() > 20, "{} instructions", program.len());
        // With the host's network the socket rule is left out, nothing else.
        let with_network = super::program(Network::Host).unwrap();
        assert!(
            with_network.len() < program.len(),
            "{} instructions with the network, {} without",
            with_network.len(),
            program.len()
        );
    }
}
