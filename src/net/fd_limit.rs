//! The process's open-file limit: the server needs one descriptor per client,
//! the load generator one per client plus the in-process server's side, and
//! the default soft limit (often 1024) would silently cap both.

use std::io;

/// Raises the soft `RLIMIT_NOFILE` toward `need`: up to the hard limit, or
/// past it where the process may raise the hard limit too (root). Returns the
/// soft limit now in force, which may still be below `need`; the caller
/// decides whether that is an error or a warning.
pub fn raise(need: u64) -> io::Result<u64> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if current.rlim_cur >= need {
        return Ok(current.rlim_cur);
    }
    let beyond_hard = libc::rlimit {
        rlim_cur: need,
        rlim_max: current.rlim_max.max(need),
    };
    let up_to_hard = libc::rlimit {
        rlim_cur: need.min(current.rlim_max),
        rlim_max: current.rlim_max,
    };
    for wanted in [beyond_hard, up_to_hard] {
        // SAFETY: setrlimit reads only the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            return Ok(wanted.rlim_cur);
        }
    }
    Ok(current.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_small_need_is_met() {
        assert!(super::raise(16).is_ok_and(|limit| limit >= 16));
    }
}
