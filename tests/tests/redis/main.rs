//! The Redis backend end to end, each test on its own `redis-server`: shared vaults, outages,
//! TLS, the CLI, and what stays in (locked) memory.
//!
//! One test binary per area (each file a module) so the suite links a few binaries instead of
//! one per file. Run one file's tests with its module path, e.g. `cargo test -p avp-tests
//! --test redis -- cli::`.

mod cli;
mod failover;
mod leaks;
mod memory;
mod outage;
mod replicas;
mod shared;
mod stale;
mod tls;
mod workspaces;

use avp_tests::redis::{RedisServer, agent_args};
use avp_tests::{AgentOptions, TestAgent};

/// An agent on `server`'s Redis, with the default options otherwise.
fn agent_on(server: &RedisServer) -> TestAgent {
    TestAgent::start_with(AgentOptions {
        args: agent_args(&server.url()),
        ..AgentOptions::default()
    })
}
