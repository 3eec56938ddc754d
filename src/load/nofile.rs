//! Raising this process's RLIMIT_NOFILE soft limit to its hard limit, as every load
//! process needs one descriptor per connection.
//!
//! One small function so that it can be swapped for the crate-wide `limits` module.

use std::io;

/// The descriptor limits after raising.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nofile {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft RLIMIT_NOFILE to the hard one (or to `fs.nr_open` when the hard limit
/// is unlimited, since the kernel refuses more) and returns the limits now in force.
pub fn raise_nofile() -> io::Result<Nofile> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes one `rlimit` into the struct we own and pass by
    // exclusive reference.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut target = lim.rlim_max;
    if target == libc::RLIM_INFINITY {
        target = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(lim.rlim_cur);
    }
    if lim.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass; a refusal leaves the limits
        // unchanged and is reported.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim.rlim_cur = target;
    }
    Ok(Nofile {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_is_idempotent_and_reaches_the_hard_limit() {
        let a = raise_nofile().unwrap();
        let b = raise_nofile().unwrap();
        assert_eq!(a, b);
        assert!(a.soft <= a.hard);
        if a.hard != libc::RLIM_INFINITY {
            assert_eq!(a.soft, a.hard);
        }
    }
}
