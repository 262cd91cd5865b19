//! Keeps only the machine code the server has run lately resident, by giving back the pages of
//! its own code once start-up is over and then once a minute.
//!
//! The kernel maps a program's code around every page it first runs (64 KB windows, whole large
//! folios), and keeps it mapped: after start-up about 18 of the binary's 23 MB of code are
//! resident (migrations, configuration, the database schema and every neighbour of what they
//! ran), and every page a rare request ever ran stays so. Dropping the mappings of the
//! executable's code (`MADV_DONTNEED`) leaves the pages in the page cache and lets whatever runs
//! next fault its own pages back in (minor faults from the page cache, one per window), so the
//! resident set holds the code that serving really uses: about 9 MB with 200 streams open. The
//! memory given back is file-backed (clean page cache), not heap.
//!
//! Only the executable's code segments are touched: they are private, read-only mappings of the
//! file that nothing ever writes (no copy-on-write pages to lose), so a page read back is the
//! same page. The kernel drops such pages itself under memory pressure; this does it on purpose.

#![allow(unsafe_code)]

use std::fs;
use std::time::Duration;

/// One executable mapping of the program's own file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CodeMapping {
    start: usize,
    end: usize,
}

impl CodeMapping {
    fn len(self) -> usize {
        self.end - self.start
    }
}

/// The executable, read-only, private mappings of the file `exe` in a `/proc/<pid>/maps`
/// listing (`start-end perms offset device inode path`).
fn code_mappings(maps: &str, exe: &str) -> Vec<CodeMapping> {
    maps.lines()
        .filter_map(|line| {
            let mut rest = line;
            let mut fields = [""; 5];
            for field in &mut fields {
                rest = rest.trim_start();
                let end = rest.find(' ')?;
                *field = &rest[..end];
                rest = &rest[end..];
            }
            let [range, permissions, ..] = fields;
            if permissions != "r-xp" || rest.trim() != exe {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (start < end).then_some(CodeMapping { start, end })
        })
        .collect()
}

/// Releases the program's code now and then every `period`, for as long as the server runs.
pub async fn release_every(period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let released = release();
        tracing::debug!(bytes = released, "the server's code mappings were released");
    }
}

/// Drops the resident pages of the program's own code (see the module's notes) and returns how
/// many bytes of mappings were advised. Failures are logged and change nothing: the pages
/// simply stay.
pub fn release() -> usize {
    let exe = match fs::read_link("/proc/self/exe") {
        Ok(path) => path,
        Err(error) => {
            tracing::debug!(%error, "the program's own path is unknown; its code stays resident");
            return 0;
        }
    };
    let maps = match fs::read_to_string("/proc/self/maps") {
        Ok(maps) => maps,
        Err(error) => {
            tracing::debug!(%error, "/proc/self/maps is unreadable; the code stays resident");
            return 0;
        }
    };
    let mut released = 0;
    for mapping in code_mappings(&maps, &exe.to_string_lossy()) {
        // SAFETY: the range is one whole mapping listed by the kernel for this process: a
        // private, read-only, executable mapping of the program's file (`r-xp`), which no one
        // writes, so it holds no copy-on-write page. MADV_DONTNEED on it only unmaps its pages;
        // the next access to one maps it again from the file, with the same contents, exactly
        // as after the kernel reclaimed it under memory pressure. No Rust reference points
        // into this memory as data.
        let outcome = unsafe {
            libc::madvise(
                mapping.start as *mut libc::c_void,
                mapping.len(),
                libc::MADV_DONTNEED,
            )
        };
        if outcome == 0 {
            released += mapping.len();
        } else {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "a code mapping could not be released"
            );
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0000000-55d0c0400000 r--p 00000000 fd:01 1234                       /srv/async coder/server
55d0c0400000-55d0c1c00000 r-xp 00400000 fd:01 1234                       /srv/async coder/server
55d0c1c00000-55d0c2000000 r--p 01c00000 fd:01 1234                       /srv/async coder/server
55d0c2000000-55d0c2010000 rw-p 02000000 fd:01 1234                       /srv/async coder/server
7f0000000000-7f0000200000 r-xp 00028000 fd:01 99                         /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000300000-7f0000400000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
";

    #[test]
    fn only_the_programs_own_code_is_chosen() {
        assert_eq!(
            code_mappings(MAPS, "/srv/async coder/server"),
            vec![CodeMapping {
                start: 0x55d0_c040_0000,
                end: 0x55d0_c1c0_0000
            }]
        );
        assert!(code_mappings(MAPS, "/srv/other").is_empty());
        assert!(code_mappings("garbage\n\n1-2 r-xp", "/srv/async coder/server").is_empty());
    }

    fn resident_file_kib() -> u64 {
        let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("RssFile:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .expect("RssFile in /proc/self/status")
    }

    #[test]
    fn released_code_leaves_the_resident_set_and_still_runs() {
        let before = resident_file_kib();
        let released = release();
        let after = resident_file_kib();
        assert!(released > 1 << 20, "only {released} bytes of code advised");
        assert!(
            after < before,
            "file-backed resident memory went from {before} to {after} KiB"
        );
        // The released code runs again from pages mapped back in on demand.
        assert_eq!(release(), released);
    }
}
