//! Process hardening and locked memory — the only `unsafe` code in the agent.
//!
//! Threat model. The agent holds every secret of its user in plaintext while unlocked, so
//! the process itself is the thing to protect:
//! - **Core dumps** would write that plaintext to disk: `RLIMIT_CORE=0` stops the kernel
//!   writing one, and `PR_SET_DUMPABLE=0` stops it even if a later `setrlimit` raises the
//!   limit (and makes `/proc/<pid>/mem` and `ptrace` unavailable to other processes of the
//!   same user, who could otherwise simply read the memory).
//! - **Swap** would write plaintext to disk: the vault's plaintext lives in [`LockedRegion`]s,
//!   anonymous mappings that are `mlock`ed (never swapped) and `MADV_DONTDUMP` (left out of
//!   any dump). If `RLIMIT_MEMLOCK` is too small the agent warns once and carries on
//!   unlocked: refusing to serve would make the agent useless on default-configured systems.
//!   `mlockall` is deliberately not used: it would lock every library page and the whole
//!   heap, quickly hitting the limit and failing for everything.
//! - **Freed memory**: plaintext passes briefly through buffers the agent does not own
//!   (age's stream chunk, serde temporaries, frame buffers). [`ZeroizingAllocator`] wipes
//!   every heap block when it is freed or moved, so no copy outlives its owner in the heap.
//! - **Files created by the agent** (socket, vault, audit log) must not be readable by other
//!   users even for an instant: the umask is set to 077 before anything is created.
//! - **Resident memory must follow what the agent holds**, or the frame budget would bound
//!   live buffers but not the process: glibc raises its mmap threshold after a large block
//!   is freed, so later 1 MiB frames come from per-thread heap arenas that keep the pages
//!   after the free (the reliability suite saw 64 MiB of budgeted frames cost 100 MiB of
//!   RSS). The threshold is pinned at 128 KiB: large buffers are mapped for themselves and
//!   unmapped — wiped — when freed.
//! - **A file-size limit** (`RLIMIT_FSIZE`, e.g. set by a service manager) must not kill
//!   the agent: a write past it raises `SIGXFSZ`, whose default action terminates the process
//!   in the middle of a request. The signal gets a handler that does nothing, so the write
//!   fails with `EFBIG`, the request answers `BACKEND_ERROR` with nothing acknowledged, and
//!   everything already unlocked keeps being served. (A handler, not `SIG_IGN`: an ignored
//!   signal would stay ignored in the `-- CMD` child, a handled one is reset by `exec`.)
//!
//! - **Descriptors reaching `-- CMD`**: every descriptor the agent opens is close-on-exec
//!   (std does it; raw `pipe2` calls pass `O_CLOEXEC`), and those inherited from
//!   whoever started the agent are marked close-on-exec at start-up, so CMD gets 0, 1 and 2
//!   only — it can neither poke the agent's internals nor keep the agent alive by holding a
//!   pipe end.
//!
//! What it does not protect against: root, the kernel, or code running as this user before
//! the agent started (e.g. an `LD_PRELOAD` in the service environment).
//!
//! Every `unsafe` block below carries a `// SAFETY:` comment.

use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::alloc::{GlobalAlloc, Layout, System};
use std::num::NonZeroUsize;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use zeroize::Zeroize;

/// Applies the start-up hardening: no core dumps, not dumpable, umask 077.
///
/// Called first thing in `main`, before any file or secret exists.
pub fn harden_process() -> anyhow::Result<()> {
    // Threat: a crash (or `kill -SEGV`) writing the unlocked vault into a core file.
    setrlimit(Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| anyhow::anyhow!("cannot set RLIMIT_CORE to 0: {e}"))?;
    // Threat: another process of the same user reading our memory through ptrace or
    // /proc/<pid>/mem, and the kernel dumping us despite the rlimit.
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| anyhow::anyhow!("cannot clear the dumpable flag: {e}"))?;
    // Threat: a socket, vault or audit file readable by others between create and chmod.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    ignore_file_size_signal()?;
    pin_mmap_threshold();
    inherited_fds_close_on_exec();
    Ok(())
}

/// Marks every descriptor above 2 close-on-exec: whatever the agent's launcher left open
/// stays usable here (a systemd socket, the `--daemon` readiness pipe) but is not handed on
/// to `-- CMD`.
fn inherited_fds_close_on_exec() {
    // SAFETY: `close_range` with CLOSE_RANGE_CLOEXEC only sets a flag on open descriptors;
    // it closes nothing and touches no memory.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let flagged = unsafe {
        nix::libc::close_range(
            3,
            nix::libc::c_uint::MAX,
            nix::libc::CLOSE_RANGE_CLOEXEC as _,
        )
    } == 0;
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let flagged = false;
    if flagged {
        return;
    }
    // Kernels before 5.11: one descriptor at a time.
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        tracing::warn!("cannot list /proc/self/fd; inherited descriptors may reach -- CMD");
        return;
    };
    let fds: Vec<RawFd> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a number that may no longer be open (the listing's own
        // descriptor) fails with EBADF and changes nothing; no memory is involved.
        unsafe {
            nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC);
        }
    }
}

/// Large allocations always get their own mapping, returned to the kernel when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn pin_mmap_threshold() {
    // SAFETY: `mallopt` only changes allocator tuning; called before any other thread
    // exists, with a parameter and value glibc documents.
    let ok = unsafe { nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 128 << 10) };
    if ok != 1 {
        tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_mmap_threshold() {}

/// Catches `SIGXFSZ` with a handler that does nothing, so exceeding `RLIMIT_FSIZE` is an
/// `EFBIG` error, not death.
fn ignore_file_size_signal() -> anyhow::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    extern "C" fn nothing(_: nix::libc::c_int) {}
    let action = SigAction::new(
        SigHandler::Handler(nothing),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler touches nothing at all, so it is async-signal-safe; it is
    // installed before any other thread exists.
    unsafe { sigaction(Signal::SIGXFSZ, &action) }
        .map_err(|e| anyhow::anyhow!("cannot catch SIGXFSZ: {e}"))?;
    Ok(())
}

/// Facts for STATUS, read back from the kernel rather than assumed.
pub fn hardening_facts() -> avp_protocol::Hardening {
    let dumpable = nix::sys::prctl::get_dumpable().unwrap_or(true);
    let core_limit = getrlimit(Resource::RLIMIT_CORE).map_or(u64::MAX, |(soft, _)| soft);
    let memlock = getrlimit(Resource::RLIMIT_MEMLOCK).map_or(0, |(soft, _)| soft);
    avp_protocol::Hardening {
        dumpable,
        core_limit,
        locked_memory_bytes: vm_locked_bytes().unwrap_or_else(locked_bytes),
        memlock_limit: (memlock != nix::libc::RLIM_INFINITY).then_some(memlock),
    }
}

/// `VmLck` of `/proc/self/status`: what the kernel actually holds locked for us.
fn vm_locked_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmLck:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes currently locked by [`LockedRegion`]s.
static LOCKED_BYTES: AtomicU64 = AtomicU64::new(0);
/// Set once the first `mlock` failure has been reported.
static MLOCK_WARNED: AtomicBool = AtomicBool::new(false);

/// Bytes currently locked by this process's [`LockedRegion`]s.
pub fn locked_bytes() -> u64 {
    LOCKED_BYTES.load(Ordering::Relaxed)
}

/// The system page size.
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4096)
}

/// A private anonymous mapping holding plaintext: page-aligned, `mlock`ed when the limit
/// allows, excluded from core dumps, zeroed before it is unmapped. Owning its own pages
/// means unlocking it can never unlock a neighbour's memory, as `munlock` of a heap
/// allocation could.
pub struct LockedRegion {
    ptr: NonNull<u8>,
    len: usize,
    locked: bool,
}

// SAFETY: the region is exclusively owned memory, like a `Box<[u8]>`; access goes through
// `&self`/`&mut self`, so the usual borrow rules make sharing across threads sound.
unsafe impl Send for LockedRegion {}
// SAFETY: see `Send`: `&LockedRegion` only hands out `&[u8]`.
unsafe impl Sync for LockedRegion {}

impl std::fmt::Debug for LockedRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockedRegion")
            .field("len", &self.len)
            .field("locked", &self.locked)
            .finish_non_exhaustive()
    }
}

impl LockedRegion {
    /// Maps at least `len` bytes (rounded up to whole pages; at least one page), zeroed.
    pub fn new(len: usize) -> std::io::Result<Self> {
        let page = page_size();
        let len = len.max(1).div_ceil(page) * page;
        let size = NonZeroUsize::new(len).ok_or_else(|| std::io::Error::other("empty region"))?;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing
        // aliases nothing; the result is checked and owned by the returned value.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .map_err(std::io::Error::from)?;
        // SAFETY: `ptr..ptr+len` is the mapping just created and owned by us.
        let dontdump = unsafe { nix::sys::mman::madvise(ptr, len, MmapAdvise::MADV_DONTDUMP) };
        if let Err(err) = dontdump {
            tracing::debug!(%err, "MADV_DONTDUMP refused");
        }
        // SAFETY: as above, the range is our own mapping.
        let locked = match unsafe { nix::sys::mman::mlock(ptr, len) } {
            Ok(()) => {
                LOCKED_BYTES.fetch_add(len as u64, Ordering::Relaxed);
                true
            }
            Err(err) => {
                if !MLOCK_WARNED.swap(true, Ordering::Relaxed) {
                    let limit = getrlimit(Resource::RLIMIT_MEMLOCK).map_or(0, |(soft, _)| soft);
                    tracing::warn!(
                        %err,
                        limit_bytes = limit,
                        "cannot lock memory: RLIMIT_MEMLOCK is too small for the vault, so \
                         some plaintext may be swapped to disk; raise it (systemd: \
                         LimitMEMLOCK=, shell: ulimit -l) or use encrypted swap"
                    );
                }
                false
            }
        };
        Ok(Self {
            ptr: ptr.cast(),
            len,
            locked,
        })
    }

    /// Size in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a region has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `mlock` succeeded for this region.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` initialised (zero-filled by the kernel) bytes that
        // live as long as `self`; shared access follows `&self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for LockedRegion {
    fn drop(&mut self) {
        self.as_mut_slice().zeroize();
        let ptr = self.ptr.cast();
        if self.locked {
            // SAFETY: the range is the mapping we locked in `new`.
            let _ = unsafe { nix::sys::mman::munlock(ptr, self.len) };
            LOCKED_BYTES.fetch_sub(self.len as u64, Ordering::Relaxed);
        }
        // SAFETY: the mapping was created in `new` with this length and nothing borrows it
        // any more (we are in `drop`).
        let _ = unsafe { nix::sys::mman::munmap(ptr, self.len) };
    }
}

/// The global allocator of the agent binary: the system allocator, except that every block
/// is zeroed before it is freed, and a reallocation never leaves the old block behind
/// un-wiped. Plaintext that passes through buffers owned by dependencies therefore does not
/// linger in freed heap memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZeroizingAllocator;

// SAFETY: every method forwards to `System` with the caller's layout; the only addition is
// writing zeros into a block the caller is giving up, which it owns until the free.
unsafe impl GlobalAlloc for ZeroizingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's (non-zero-sized) layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is a live block of `layout.size()` bytes that
        // it no longer uses; a volatile-free `write_bytes` followed by a compiler fence is
        // kept because the block escapes to `System.dealloc` right after.
        unsafe {
            std::ptr::write_bytes(ptr, 0, layout.size());
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `new_size` and `layout.align()` form a valid layout by the caller's
        // contract. The new block is filled from the old one, then the old one is wiped and
        // freed by `dealloc`, so no stale copy survives a move.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = System.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// Takes ownership of a file descriptor inherited from systemd socket activation.
///
/// The caller has checked `LISTEN_PID` and `LISTEN_FDS` and that `fd` is a listening Unix
/// stream socket.
pub fn adopt_inherited_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: systemd passes the fds 3.. to exactly this process (LISTEN_PID was checked by
    // the caller) and nothing else in the process owns or closes them.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
