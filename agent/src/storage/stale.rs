//! Whether the request being answered on this thread was served from a backend's
//! last-known state instead of its storage (the Redis backend while Redis is away), so
//! the audit line can say so without every backend call returning a flag.
//!
//! Each request is answered on one thread, start to end: the dispatcher calls [`take`]
//! before (to clear) and after the backend call; a backend calls [`mark`].

use std::cell::Cell;

thread_local! {
    static SERVED_STALE: Cell<bool> = const { Cell::new(false) };
}

/// The answer being built comes from last-known state.
pub fn mark() {
    SERVED_STALE.with(|stale| stale.set(true));
}

/// Whether [`mark`] was called since the last `take`; clears it.
pub fn take() -> bool {
    SERVED_STALE.with(Cell::take)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mark_is_per_thread_and_taken_once() {
        assert!(!super::take());
        super::mark();
        std::thread::spawn(|| assert!(!super::take()))
            .join()
            .unwrap();
        assert!(super::take());
        assert!(!super::take());
    }
}
