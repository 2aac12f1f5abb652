//! Raising the open-files limit: every subscriber (or, in the bench, every
//! simulated one) is one descriptor, and distributions default the soft
//! `RLIMIT_NOFILE` to 1024, far below what a push server holds.

use std::fs;

use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};

/// Where Linux publishes the largest value `RLIMIT_NOFILE` may take; used
/// when the hard limit is "unlimited", which the kernel refuses as a soft
/// limit for this resource.
pub const NR_OPEN_PATH: &str = "/proc/sys/fs/nr_open";

/// Raise the `RLIMIT_NOFILE` soft limit to the hard limit (to
/// [`NR_OPEN_PATH`]'s value when the hard limit is unlimited) and return
/// the soft limit now in force. Failures leave the limit as it was and are
/// logged as a warning; the caller sizes itself by the returned value.
pub fn raise_fd_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let mut target = hard;
    if target == RLIM_INFINITY {
        match fs::read_to_string(NR_OPEN_PATH)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
        {
            Some(nr_open) => target = nr_open,
            None => return soft,
        }
    }
    if target <= soft {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => target,
        Err(err) => {
            tracing::warn!(error = %err, soft, hard, "could not raise the open-file limit");
            soft
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_limit_is_raised_to_the_hard_limit() {
        let soft = raise_fd_limit();
        let (now_soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, now_soft);
        if hard != RLIM_INFINITY {
            assert_eq!(now_soft, hard);
        }
        // Idempotent.
        assert_eq!(raise_fd_limit(), soft);
    }
}
