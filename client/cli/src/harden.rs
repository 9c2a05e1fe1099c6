//! Process hardening, as the agent does it: `avp` holds passphrases and values too (an
//! `unlock`, a `get` blocked on a full stdout pipe, the environment `run` builds).
//!
//! - `RLIMIT_CORE=0` (soft and hard): a crash or `kill -ABRT` writes no core file holding
//!   them.
//! - `PR_SET_DUMPABLE=0`: the kernel dumps nothing even if something raises the limit, and
//!   other processes of the same user cannot `ptrace` us or read `/proc/<pid>/mem`.
//!
//! Both are reset by `execve` for `avp run`'s command, whose own process is its business.

use crate::fail::Failure;
use nix::sys::resource::{Resource, setrlimit};
use std::io;

/// Applies both; called first thing in `main`, before any secret is read.
pub fn harden_process() -> Result<(), Failure> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0)
        .map_err(|errno| Failure::io("cannot set RLIMIT_CORE to 0", io::Error::from(errno)))?;
    nix::sys::prctl::set_dumpable(false)
        .map_err(|errno| Failure::io("cannot clear the dumpable flag", io::Error::from(errno)))?;
    Ok(())
}
