//! Frame decoding plus request handling: arbitrary bytes as one client's connection to a
//! fresh, unlocked agent state. A finding is a panic in the agent (the connection thread
//! panicking), an answer a client cannot decode, or memory past libFuzzer's limits
//! (`-rss_limit_mb`, `-malloc_limit_mb`): the agent must allocate only what its frame
//! limit and budget allow, whatever a frame claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static HARNESS: OnceLock<avp_fuzz::Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    HARNESS.get_or_init(avp_fuzz::Harness::new).run(data);
});
