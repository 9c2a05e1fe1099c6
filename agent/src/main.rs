//! `avp-agent`: the binary. Everything it does is the library's `start::main`.
// `unsafe` belongs in the library's `harden` module, nowhere here.
#![deny(unsafe_code)]

use std::process::ExitCode;

/// Every heap block is wiped when freed: see `harden::ZeroizingAllocator`.
#[global_allocator]
static ALLOCATOR: avp_agent::harden::ZeroizingAllocator = avp_agent::harden::ZeroizingAllocator;

fn main() -> ExitCode {
    avp_agent::main()
}
