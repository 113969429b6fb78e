//! What a buffer may take: the memory the machine and the process's limits leave, checked
//! before an allocation that a file's claims or an input's size decide, so that a request too
//! large for the machine is a clear error rather than an abort.

use crate::{Error, Result};

/// Fails unless a buffer of `bytes` fits in the memory available (physical memory not in use
/// plus free swap, and the process's address-space limit), naming what it was for. Buffers
/// under 64 MiB pass without a look at the system, which costs a file read.
///
/// ```
/// use annpage_engine::memory::check_memory;
/// assert!(check_memory(1 << 20, "a small buffer").is_ok());
/// let e = check_memory(u64::MAX, "everything").unwrap_err();
/// assert!(e.to_string().contains("everything needs"));
/// ```
pub fn check_memory(bytes: u64, what: &str) -> Result<()> {
    if bytes < 64 << 20 {
        return Ok(());
    }
    match available_memory() {
        Some(avail) if bytes > avail => Err(Error::invalid(format!(
            "{what} needs {bytes} bytes, more than the {avail} bytes of memory available"
        ))),
        _ => Ok(()),
    }
}

/// The memory a new allocation can use, if it can be told.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.as_deref()?.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb.saturating_mul(1024))
    };
    let system = field("MemAvailable:").map(|m| m.saturating_add(field("SwapFree:").unwrap_or(0)));
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the valid struct passed.
    let address_space = (unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0
        && limit.rlim_cur != libc::RLIM_INFINITY)
        .then_some(limit.rlim_cur);
    match (system, address_space) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_beyond_the_memory_available_are_refused() {
        check_memory(1 << 20, "a test buffer").unwrap();
        let err = check_memory(u64::MAX, "reading /X whole").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("reading /X whole needs 18446744073709551615 bytes"),
            "{msg}"
        );
        assert!(available_memory().is_some_and(|m| m > 1 << 20));
    }
}
