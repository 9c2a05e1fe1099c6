//! What the reliability tests observe of the agent process from outside, through `/proc`:
//! resident memory, open descriptors, and a scan of its memory for a marker. The tests run
//! as root (in CI too), which is what reading a non-dumpable process's memory takes.

use std::fs;
use std::io::{Read, Seek, SeekFrom};

/// A `kB` field of `/proc/<pid>/status` (e.g. `VmRSS`, `VmHWM`, `VmLck`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resident memory of `pid`, in bytes.
pub fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS").expect("VmRSS of the agent")
}

/// Open file descriptors of `pid`. Reading a non-dumpable process's (the agent's)
/// `/proc/<pid>/fd` takes root: a test that counts them starts with `require_root!`.
pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the agent's fd directory")
        .count()
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// Where `needle` occurs in `pid`'s memory: one line per hit naming the mapping (address
/// range, permissions, path). Every readable mapping of `/proc/<pid>/maps` is read through
/// `/proc/<pid>/mem`; mappings the kernel refuses to read (`[vvar]`…) are skipped.
pub fn scan_memory(pid: u32, needle: &[u8]) -> Vec<String> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let mut mem = fs::File::open(format!("/proc/{pid}/mem")).expect("open /proc/<pid>/mem");
    let mut hits = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with('r') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        let mut region = vec![0u8; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_err() {
            continue;
        }
        // A short or failed read (a guard page, `[vvar]`) leaves the rest zero.
        let mut filled = 0;
        while filled < region.len() {
            match mem.read(&mut region[filled..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => filled += n,
            }
        }
        let count = region[..filled]
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count();
        if count > 0 {
            hits.push(format!("{count}× in {line}"));
        }
    }
    hits
}

/// The address ranges of `pid`'s mappings that the kernel holds locked in RAM (`Locked:`
/// above 0 kB in `/proc/<pid>/smaps`).
pub fn locked_ranges(pid: u32) -> Vec<(u64, u64)> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let mut ranges = Vec::new();
    let mut current = None;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            current = Some((start, end));
            continue;
        }
        if let (Some(range), Some(kib)) = (current, line.strip_prefix("Locked:")) {
            let kib: u64 = kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            if kib > 0 {
                ranges.push(range);
            }
        }
    }
    ranges
}

/// The hits of [`scan_memory`] in mappings that are not locked in RAM (see
/// [`locked_ranges`]): where `needle` could be swapped out.
pub fn scan_unlocked_memory(pid: u32, needle: &[u8]) -> Vec<String> {
    let locked = locked_ranges(pid);
    scan_memory(pid, needle)
        .into_iter()
        .filter(|hit| {
            let range = hit.split(" in ").nth(1).and_then(|l| l.split(' ').next());
            let parsed = range.and_then(|r| r.split_once('-')).and_then(|(a, b)| {
                Some((
                    u64::from_str_radix(a, 16).ok()?,
                    u64::from_str_radix(b, 16).ok()?,
                ))
            });
            !parsed.is_some_and(|r| locked.contains(&r))
        })
        .collect()
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (children inherit it), so
/// a test can hold a thousand sockets.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    hard
}

/// True when this process runs as root, as CI does.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips the rest of the calling test, saying why on stderr, unless it runs as root: switching
/// uid, mounting, `chattr` and reading a non-dumpable process's memory all take it. CI runs as
/// root, so these tests run there; a contributor who is not root gets
/// `skipped: needs root: <why>` (shown with `--nocapture`) and a passing suite. A macro, not a
/// function, because skipping means returning from the test itself.
#[macro_export]
macro_rules! require_root {
    ($why:expr) => {
        if !$crate::sys::is_root() {
            eprintln!("skipped: needs root: {}", $why);
            return;
        }
    };
}
