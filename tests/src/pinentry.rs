//! The scripted pinentry (`avp-pinentry-script`, see its source) as a `--pinentry PROGRAM`:
//! a wrapper script that runs it with a record file and a list of actions, and an agent
//! started with it, initialized and locked.

use crate::{AgentOptions, TestAgent, target_dir_binary};
use avp_protocol::{Request, Response};
use std::path::PathBuf;
use tempfile::TempDir;

/// A locked agent whose pinentry plays a script, and what the pinentry recorded.
#[derive(Debug)]
pub struct ScriptedAgent {
    /// The agent.
    pub agent: TestAgent,
    /// The record file the script appends to.
    pub record: PathBuf,
    /// The wrapper given to `--pinentry` (rewrite it to change later runs' actions).
    pub wrapper: PathBuf,
    _dir: TempDir,
}

/// Writes a wrapper that runs the scripted pinentry with `actions`, recording to `record`.
pub fn write_wrapper(wrapper: &std::path::Path, record: &std::path::Path, actions: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    let mut line = format!(
        "#!/bin/sh\nexec '{}' '{}'",
        target_dir_binary("avp-pinentry-script").display(),
        record.display()
    );
    for action in actions {
        line.push_str(&format!(" '{action}'"));
    }
    std::fs::write(wrapper, line + "\n").expect("write the pinentry wrapper");
    std::fs::set_permissions(wrapper, std::fs::Permissions::from_mode(0o700))
        .expect("make the wrapper executable");
}

impl ScriptedAgent {
    /// Starts an agent with `--pinentry` playing `actions`, extra `args` and `env`, creates
    /// its vault and locks it.
    pub fn start(actions: &[&str], args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let record = dir.path().join("record");
        let wrapper = dir.path().join("pinentry");
        write_wrapper(&wrapper, &record, actions);
        let mut options = AgentOptions {
            args: vec!["--pinentry".into(), wrapper.display().to_string()],
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..AgentOptions::default()
        };
        options.args.extend(args.iter().map(|a| (*a).to_owned()));
        let agent = TestAgent::start_with(options);
        agent.init();
        let locked = agent.connect().call(&Request::Lock);
        assert!(matches!(locked, Response::Locked), "lock: {locked:?}");
        Self {
            agent,
            record,
            wrapper,
            _dir: dir,
        }
    }

    /// Everything the pinentry runs recorded so far.
    pub fn record(&self) -> String {
        std::fs::read_to_string(&self.record).unwrap_or_default()
    }

    /// The command lines the pinentry received, in order.
    pub fn commands(&self) -> Vec<String> {
        self.record()
            .lines()
            .filter_map(|l| l.strip_prefix("CMD "))
            .map(str::to_owned)
            .collect()
    }

    /// How many times the pinentry was started.
    pub fn spawns(&self) -> usize {
        self.record()
            .lines()
            .filter(|l| l.starts_with("START "))
            .count()
    }

    /// The pid of the first pinentry run.
    pub fn first_pid(&self) -> u32 {
        let record = self.record();
        let start = record
            .lines()
            .find(|l| l.starts_with("START "))
            .expect("the pinentry ran");
        start
            .split(' ')
            .nth(1)
            .and_then(|pid| pid.parse().ok())
            .expect("START <pid> <pgid>")
    }
}
