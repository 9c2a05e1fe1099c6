//! Environment variables that change what code a program loads or runs. `avp run` does not
//! inject a secret with one of these names unless the user named it with `--only`.
//!
//! Threat: whoever can put a secret in the workspace (or an agent impersonator, before the
//! socket check existed) would otherwise choose code for every `avp run` child: a stored
//! `LD_PRELOAD` or `PATH` runs the attacker's code as the user. Secrets are credentials,
//! not loader settings, so skipping these costs nothing in normal use.
//!
//! The rule: a variable is denied when it names code to load or run, a place code is
//! loaded from, or an option that makes an interpreter run code. Names are matched exactly
//! (environment names are case-sensitive), prefixes cover whole families.

/// Families: the dynamic loader (glibc and musl `LD_*`, macOS `DYLD_*`) and bash's
/// exported functions.
pub const DENIED_PREFIXES: &[&str] = &["LD_", "DYLD_", "BASH_FUNC_"];

/// Single variables, grouped by who reads them.
pub const DENIED_NAMES: &[&str] = &[
    // glibc: character-set modules and loader tunables.
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    // Shells: where commands are found, word splitting, start-up files, traced prompts.
    "PATH",
    "IFS",
    "ENV",
    "BASH_ENV",
    "CDPATH",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "ZDOTDIR",
    // Programs that other programs start.
    "SHELL",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "SSH_ASKPASS",
    // Interpreters: module paths, start-up scripts and option variables.
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PYTHONBREAKPOINT",
    "PYTHONWARNINGS",
    "PYTHONINSPECT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "PERL5DB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "LUA_INIT",
    "LUA_PATH",
    "LUA_CPATH",
    // git runs these programs and reads this configuration.
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_ASKPASS",
    "GIT_EDITOR",
    "GIT_PAGER",
    "GIT_EXTERNAL_DIFF",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
];

/// True when a variable called `name` changes what code the command loads or runs.
pub fn changes_loaded_code(name: &str) -> bool {
    DENIED_NAMES.contains(&name) || DENIED_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_shell_and_interpreter_variables_are_denied() {
        for name in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "LD_AUDIT",
            "DYLD_INSERT_LIBRARIES",
            "PATH",
            "IFS",
            "BASH_ENV",
            "ENV",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "NODE_OPTIONS",
            "PERL5OPT",
            "RUBYOPT",
            "GIT_SSH_COMMAND",
        ] {
            assert!(changes_loaded_code(name), "{name}");
        }
    }

    #[test]
    fn ordinary_secrets_pass() {
        for name in [
            "DB_PASSWORD",
            "API_TOKEN",
            "GITHUB_TOKEN",
            "path",
            "MY_PATH",
            "LD",
            "PYTHON_API_KEY",
            "ENVIRONMENT",
        ] {
            assert!(!changes_loaded_code(name), "{name}");
        }
    }
}
