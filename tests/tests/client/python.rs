//! The Python package `avp-backend-agent` (`client/python/`, import `avp_agent`): its pytest
//! suite — the blocking and asyncio clients through `BackendTestSuite`, the socket trust
//! checks (the squatter peer check as root), `get_secret`'s sources, and avp-sdk's
//! `AVPClient(AgentBackend())` — against the agent binary under test.
//!
//! The interpreter is `AVP_PYTHON` (CI sets it to a venv with `pip install
//! './client/python[sdk]' pytest`): it must have pytest and the package, or the test fails.
//! Without `AVP_PYTHON`, `python3` runs the tests from the source tree (`PYTHONPATH`) if it
//! has pytest, and the test is skipped with a message saying how to run it otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository")
        .to_path_buf()
}

/// Whether `python` can import every module of `modules`.
fn imports(python: &Path, modules: &str, pythonpath: Option<&Path>) -> bool {
    let mut command = Command::new(python);
    command.args(["-c", &format!("import {modules}")]);
    if let Some(path) = pythonpath {
        command.env("PYTHONPATH", path);
    }
    command.output().is_ok_and(|out| out.status.success())
}

#[test]
fn the_python_package_passes_its_tests_against_the_agent() {
    let repo = repo_root();
    let source = repo.join("client/python/src");
    let (python, pythonpath) = match std::env::var_os("AVP_PYTHON") {
        Some(python) => {
            let python = PathBuf::from(python);
            assert!(
                imports(&python, "pytest, avp_agent", None),
                "AVP_PYTHON={} cannot import pytest and avp_agent: \
                 run `{0} -m pip install './client/python[sdk]' pytest`",
                python.display()
            );
            (python, None)
        }
        None => {
            let python = PathBuf::from("python3");
            if !imports(&python, "pytest", None) {
                eprintln!(
                    "skipped: needs a Python with pytest: set AVP_PYTHON to one with \
                     `pip install './client/python[sdk]' pytest` (as .ci/run does)"
                );
                return;
            }
            (python, Some(source.as_path()))
        }
    };
    let mut command = Command::new(&python);
    command
        .current_dir(&repo)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"])
        .arg("client/python/tests")
        .env("AVP_AGENT_BIN", avp_tests::agent_bin())
        .env("AVP_SQUATTER_BIN", env!("CARGO_BIN_EXE_avp-squatter"))
        .env_remove("AVP_SOCK")
        .env_remove("AVP_SOURCE")
        .env_remove("AVP_WORKSPACE")
        .env_remove("AVP_SECRETS_DIR");
    if let Some(path) = pythonpath {
        command.env("PYTHONPATH", path);
    }
    let out = command.output().expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains(" passed"), "no test ran:\n{stdout}");
}
