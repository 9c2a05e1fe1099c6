//! The JSON-lines wire (PROTOCOL.md §12) plus request handling: arbitrary bytes after a
//! connection's first byte `{`, as one client's connection to a fresh, unlocked agent state.
//! A finding is a panic in the agent, an answer that is not a whole JSON line with its `ok`
//! flag, or memory past libFuzzer's limits (a line is bounded at 1 MiB and its growth past
//! 16 KiB by the frame budget, whatever the input). Inputs name the session
//! `avp_fuzz::PLACEHOLDER_SESSION`, swapped for the live one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static HARNESS: OnceLock<avp_fuzz::Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    HARNESS.get_or_init(avp_fuzz::Harness::new).run_json(data);
});
