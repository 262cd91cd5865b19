//! The Landlock ruleset the helper applies to itself before it executes the command.

use std::os::fd::AsFd;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

use crate::spec::Network;

/// The newest ABI these rules are written for; older kernels get what they support (reported by
/// the probe; the policy decides whether that is enough).
const TARGET_ABI: ABI = ABI::V6;

/// A folder a rule applies to: a path (opened here) or a descriptor already open.
pub enum Place<'a> {
    /// Opened by path.
    Path(&'a std::path::Path),
    /// An open descriptor (a toolchain or the worktree passed by the server).
    Descriptor(std::os::fd::BorrowedFd<'a>),
}

/// What the ruleset allows; everything else on the file system is denied, and TCP bind and
/// connect are denied from ABI 4 unless the command has the host's network.
pub struct Rules<'a> {
    /// Read and execute.
    pub read_only: Vec<Place<'a>>,
    /// Read, write, create, remove.
    pub read_write: Vec<Place<'a>>,
    /// Read and write existing files and use device ioctls (`/dev`).
    pub devices: Vec<Place<'a>>,
    /// The network the command may use: TCP is left unrestricted with [`Network::Host`].
    pub network: Network,
}

fn rule<'a>(
    place: &Place<'a>,
    access: BitFlags<AccessFs>,
) -> Result<Option<PathBeneath<Box<dyn AsFd + 'a>>>, String> {
    let descriptor: Box<dyn AsFd + 'a> = match place {
        Place::Path(path) => match PathFd::new(path) {
            Ok(descriptor) => Box::new(descriptor),
            // A system folder this machine does not have (e.g. /lib64): nothing to allow.
            Err(_) if !path.exists() => return Ok(None),
            Err(error) => return Err(format!("landlock: cannot open {}: {error}", path.display())),
        },
        Place::Descriptor(descriptor) => Box::new(*descriptor),
    };
    Ok(Some(PathBeneath::new(descriptor, access)))
}

/// Restricts this process (and what it executes) to `rules`. Fails unless the kernel enforces
/// the file-system rules at least partly.
pub fn restrict(rules: &Rules<'_>) -> Result<(), String> {
    let fail = |error: landlock::RulesetError| format!("landlock: {error}");
    let read = AccessFs::from_read(TARGET_ABI);
    let all = AccessFs::from_all(TARGET_ABI);
    let devices = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::ReadDir | AccessFs::IoctlDev;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(fail)?;
    if rules.network == Network::Off {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(TARGET_ABI))
            .map_err(fail)?;
    }
    let mut created = ruleset
        .scope(Scope::from_all(TARGET_ABI))
        .map_err(fail)?
        .create()
        .map_err(fail)?;
    for (places, access) in [
        (&rules.read_only, read),
        (&rules.read_write, all),
        (&rules.devices, devices),
    ] {
        for place in places {
            if let Some(rule) = rule(place, access)? {
                created = created.add_rule(rule).map_err(fail)?;
            }
        }
    }
    let status = created.restrict_self().map_err(fail)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err("landlock: the kernel does not enforce it (not enabled at boot?)".to_owned());
    }
    if !status.no_new_privs {
        return Err("landlock: no_new_privs could not be set".to_owned());
    }
    Ok(())
}
