//! The command line (README "The avp CLI"), as clap derive definitions only.

pub use crate::commands::audit::AuditArgs;
pub use crate::commands::copy::CopyArgs;
pub use crate::commands::edit::EditArgs;
pub use crate::commands::restore::RestoreArgs;
use crate::complete;
use crate::deferred::Deferred;
use crate::generate::Charset;
use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCompleter;
use std::ffi::OsString;
use std::path::PathBuf;

/// avp: your secrets, held unlocked by the avp agent for the length of your login.
///
/// Exit codes: 0 success; 1 the agent (or avp, before sending) refused, with the AVP code;
/// 2 usage error; 3 no agent answers on the socket; 4 the vault is locked.
#[derive(Debug, Parser)]
#[command(name = "avp", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct Global {
    /// The agent's socket [default: $AVP_SOCK, else $XDG_RUNTIME_DIR/avp/agent.sock, else
    /// /tmp/avp-$UID/agent.sock]
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub socket: Option<PathBuf>,

    /// The workspace of the secret commands (set, get, ls, rm, rotate, history, import,
    /// export, run, edit, cp, mv, restore) [default: default; `avp audit`: every workspace];
    /// the commands on the whole vault refuse it
    #[arg(
        short = 'w',
        long,
        global = true,
        env = "AVP_WORKSPACE",
        value_name = "WS",
        help_heading = "Global options",
        add = ArgValueCompleter::new(complete::workspaces)
    )]
    pub workspace: Option<String>,

    /// Print one JSON document on stdout (errors as {"error":{"code","message"}} on stderr)
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// Never ask for the passphrase on the terminal: a locked vault fails with exit 4
    #[arg(
        long,
        global = true,
        env = "AVP_NO_PROMPT",
        // `AVP_NO_PROMPT=1` (or true/yes/on) sets it; 0/false/no/off leaves prompts on.
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Global options"
    )]
    pub no_prompt: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the vault and leave it unlocked
    Init(Deferred<InitArgs>),
    /// Unlock the vault
    Unlock(Deferred<PassphraseArgs>),
    /// Lock the vault now (ends every session)
    Lock,
    /// Change the vault's passphrase
    Passwd(Deferred<PasswdArgs>),
    /// Show whether the vault is locked, its counts and timers, and client and agent versions
    Status,
    /// Show what the agent is and can do (AVP DISCOVER)
    Discover,
    /// Store a secret (a new one, or a new version)
    Set(Deferred<SetArgs>),
    /// Print a secret's value, byte for byte
    Get(Deferred<GetArgs>),
    /// List the workspace's secrets (names and metadata, never values)
    Ls(Deferred<LsArgs>),
    /// Delete a secret and all its versions (asks first on a terminal)
    Rm(Deferred<RmArgs>),
    /// Give an existing secret a new value, keeping its labels and expiry
    Rotate(Deferred<RotateArgs>),
    /// List a secret's retained versions
    History(Deferred<NameArg>),
    /// Edit a secret's value in $VISUAL or $EDITOR (a private file on a tmpfs, wiped after)
    Edit(Deferred<EditArgs>),
    /// Copy a secret (value, labels, expiry) to another name or workspace
    Cp(Deferred<CopyArgs>),
    /// Move a secret to another name or workspace (deleted only once the copy is stored)
    Mv(Deferred<CopyArgs>),
    /// Store a retained older version's value again, as a new version (undo a bad `set`)
    Restore(Deferred<RestoreArgs>),
    /// List the workspaces that hold secrets, with their counts
    Workspaces,
    /// Show the agent's audit log as a table (`--json`: its JSON lines as written)
    Audit(Deferred<AuditArgs>),
    /// Store every entry of a dotenv or JSON file; the whole file is checked before the
    /// first write
    Import(Deferred<ImportArgs>),
    /// Write the workspace's secrets as a dotenv or JSON file
    Export(Deferred<ExportArgs>),
    /// Run a command with the workspace's secrets in its environment
    #[command(override_usage = "avp run [OPTIONS] -- <CMD> [ARGS]...")]
    Run(Deferred<RunArgs>),
    /// Print a shell completion script (subcommands and flags; for secret names too, see
    /// `COMPLETE=bash avp` in the README)
    Completions(Deferred<CompletionsArgs>),
    /// Check the setup (agent, versions, permissions, limits, units, audit log, Redis): one
    /// line per check with the fix; exits 1 if any check fails
    Doctor(Deferred<DoctorArgs>),
    /// Write the man pages (avp.1 and one page per subcommand) to a directory
    Man(Deferred<ManArgs>),
    /// Internal: clears the clipboard after `get --clip`'s delay if it still holds the value
    /// (read from standard input, never the command line)
    #[command(name = "__clip-clear", hide = true)]
    ClipClear(Deferred<ClipClearArgs>),
}

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Read the passphrase as one line from standard input instead of prompting
    #[arg(long)]
    pub passphrase_stdin: bool,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the passphrases from standard input instead of prompting: the current one on
    /// the first line, the new one on the second
    #[arg(long)]
    pub passphrase_stdin: bool,
}

impl From<PasswdArgs> for PassphraseArgs {
    fn from(args: PasswdArgs) -> Self {
        Self {
            passphrase_stdin: args.passphrase_stdin,
        }
    }
}

/// `--allow-empty`, shared by the commands that store values.
#[derive(Debug, Args)]
pub struct AllowEmpty {
    /// Store an empty value from a pipe, a file or the argument (refused otherwise, so a
    /// job whose standard input is /dev/null cannot blank a secret; never from a terminal)
    #[arg(long)]
    pub allow_empty: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub passphrase: PassphraseArgs,

    /// scrypt work factor (log2 N) protecting the passphrase; each step doubles the time
    /// and memory of an unlock — and of a guess
    #[arg(long, value_name = "N", default_value_t = 18,
          value_parser = clap::value_parser!(u8).range(10..=22))]
    pub work_factor: u8,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// The secret's name: an ASCII letter, then letters, digits, '_', '.' or '-'
    #[arg(add = ArgValueCompleter::new(complete::secret_names))]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The secret's name
    #[arg(add = ArgValueCompleter::new(complete::secret_names))]
    pub name: String,

    /// The value; omitted or '-': read from standard input — all of it, byte for byte
    /// (a trailing newline is kept), or one hidden line when standard input is a terminal
    #[arg(value_name = "VALUE|-")]
    pub value: Option<OsString>,

    /// Set a label (repeatable); without --label the existing labels are kept
    #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// Remove every label
    #[arg(long, conflicts_with = "labels")]
    pub clear_labels: bool,

    /// Expire the secret this long from now (e.g. 30m, 12h, 7d; at least 1s); without an
    /// expiry flag the existing expiry is kept
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub expires_in: Option<std::time::Duration>,

    /// Expire the secret at this time (RFC 3339, e.g. 2030-01-31T12:00:00Z; in the future)
    #[arg(long, value_name = "RFC3339", conflicts_with = "expires_in")]
    pub expires_at: Option<String>,

    /// Remove the secret's expiry. With no value given and standard input a terminal, the
    /// current value is stored again (a new version) without asking for it
    #[arg(long, conflicts_with_all = ["expires_in", "expires_at"])]
    pub no_expiry: bool,

    /// Generate the value from the operating system's random generator instead of reading
    /// one. Refuses to replace an existing secret unless --force, and never prints the
    /// value unless --print; read it with `avp get`
    #[arg(long, conflicts_with = "value", help_heading = "Generating a value")]
    pub generate: bool,

    /// Length of a generated value, in characters [default: 32]
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65_536),
          help_heading = "Generating a value")]
    pub length: Option<u32>,

    /// The characters a generated value is drawn from, uniformly [default: alnum]
    #[arg(long, value_enum, help_heading = "Generating a value")]
    pub charset: Option<Charset>,

    /// Also print the generated value on standard output
    #[arg(long, help_heading = "Generating a value")]
    pub print: bool,

    /// With --generate: replace the value of an existing secret (a new version; the old
    /// one stays in `avp history`)
    #[arg(short, long, help_heading = "Generating a value")]
    pub force: bool,

    #[command(flatten)]
    pub empty: AllowEmpty,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The secret's name
    #[arg(add = ArgValueCompleter::new(complete::secret_names))]
    pub name: String,

    /// A retained older version instead of the current one
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,

    /// Copy the value to the clipboard (wl-copy, xclip or xsel, whichever the session has)
    /// instead of printing it
    #[arg(short = 'c', long)]
    pub clip: bool,

    /// With --clip: clear the clipboard after this long if it still holds the value (e.g.
    /// 45s, 2m; 0 = never)
    #[arg(long, value_name = "DUR", default_value = "45s", requires = "clip",
          value_parser = humantime::parse_duration)]
    pub clear_after: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only secrets carrying this label (repeatable: all must match)
    #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// Show a masked preview of each value: its length and at most its first few
    /// characters (none for short or binary values), never the whole value
    #[arg(long)]
    pub values: bool,

    /// Show each value in full (implies --values)
    #[arg(long)]
    pub reveal: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The secret's name
    #[arg(add = ArgValueCompleter::new(complete::secret_names))]
    pub name: String,

    /// Succeed even if the secret does not exist, and do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,

    /// Do not ask for confirmation (asked only when standard input is a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The secret's name
    #[arg(add = ArgValueCompleter::new(complete::secret_names))]
    pub name: String,

    /// The new value; omitted or '-': read from standard input, as for `set`
    #[arg(value_name = "VALUE|-", conflicts_with = "generate")]
    pub value: Option<OsString>,

    /// Generate the new value from the operating system's random generator: LENGTH
    /// characters from A-Z, a-z and 0-9 (about 5.95 bits each). It is not printed; read it
    /// with `avp get`.
    #[arg(long)]
    pub generate: bool,

    /// Length of a generated value (with --generate) [default: 32]
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub length: Option<u32>,

    #[command(flatten)]
    pub empty: AllowEmpty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// NAME=VALUE lines (quotes, escapes and comments as the common dotenv parsers)
    Dotenv,
    /// One object: {"NAME": "value", "BIN": {"value": "<base64>", "encoding": "base64"}}
    Json,
}

/// Where `import --from` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// A `pass` password store: every `.gpg` file, decrypted with your gpg
    Pass,
    /// The Python AVP SDK's FileBackend vault file (PBKDF2-SHA256 and Fernet)
    #[value(name = "avp-sdk")]
    AvpSdk,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to read ('-': standard input); with --from avp-sdk, the SDK's vault file
    #[arg(required_unless_present = "from")]
    pub file: Option<PathBuf>,

    /// The file's format
    #[arg(long, value_enum, default_value_t = Format::Dotenv, conflicts_with = "from")]
    pub format: Format,

    /// Import from another secrets store instead of a dotenv or JSON file
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub from: Option<Source>,

    /// With --from pass: the password store [default: $PASSWORD_STORE_DIR, else
    /// ~/.password-store]
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// With --from pass: keep each entry whole, byte for byte, instead of its first line
    /// (the password, as `pass -c` copies it)
    #[arg(long)]
    pub whole_entry: bool,

    /// With --from pass: each entry's first directory is its workspace (`work/aws` →
    /// `aws` in workspace `work`); entries at the top of the store go into -w's
    #[arg(long)]
    pub workspaces_from_dirs: bool,

    /// With --from avp-sdk: read the vault's password as one line from standard input
    /// instead of prompting
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The format to write [default: dotenv; json under --json without -o]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write to this file (created or truncated, mode 0600) instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pass only this secret (repeatable); default: every secret of the workspace
    #[arg(long = "only", value_name = "NAME",
          add = ArgValueCompleter::new(complete::secret_names))]
    pub only: Vec<String>,

    /// The command and its arguments (after `--`, so its own options stay its own)
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate for
    pub shell: clap_complete::Shell,
}

/// True when `--json` is among the arguments before a `--` (for usage errors, found before
/// the arguments could be parsed).
pub fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

/// The commands that act on the whole vault, not on a workspace's secrets: `-w` given on
/// their command line would be silently ignored, so it is refused. (`AVP_WORKSPACE` in
/// the environment stays harmless.)
const VAULT_COMMANDS: &[&str] = &[
    "init",
    "unlock",
    "lock",
    "passwd",
    "status",
    "discover",
    "completions",
    "workspaces",
    "doctor",
    "man",
];

/// Refuses `-w/--workspace` on the command line of a command that has no workspace.
pub fn refuse_unused_workspace(matches: &clap::ArgMatches) -> Result<(), crate::fail::Failure> {
    let Some((command, sub)) = matches.subcommand() else {
        return Ok(());
    };
    let given = [matches, sub]
        .iter()
        .any(|m| m.value_source("workspace") == Some(clap::parser::ValueSource::CommandLine));
    if given && VAULT_COMMANDS.contains(&command) {
        return Err(crate::fail::Failure::usage(
            format!(
                "`avp {command}` acts on the whole vault, so -w/--workspace means nothing to it"
            ),
            "drop -w; it selects the workspace of secret commands such as `avp ls`",
        ));
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The audit log the agent writes [default: $XDG_STATE_HOME/avp/audit.jsonl]
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,

    /// The directory holding the systemd user units [default: ~/.config/systemd/user]
    #[arg(long, value_name = "DIR")]
    pub units_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where to write the pages [default: share/man/man1 beside the directory of the avp
    /// executable, e.g. ~/.cargo/share/man/man1, which `man` searches for ~/.cargo/bin]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClipClearArgs {
    /// Seconds to wait before clearing
    #[arg(long, value_name = "SECONDS")]
    pub after: u64,
}

/// `K=V` → `(K, V)`; the key must not be empty (the agent checks the lengths).
fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("expected K=V with a non-empty key".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn labels_split_at_the_first_equals_sign() {
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_label("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_label("=b").is_err());
        assert!(parse_label("ab").is_err());
    }

    #[test]
    fn run_takes_the_command_after_double_dash() {
        let cli =
            Cli::try_parse_from(["avp", "run", "--only", "A", "--", "sh", "-c", "x"]).unwrap();
        let Command::Run(Deferred(run)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.only, ["A"]);
        assert_eq!(run.command, ["sh", "-c", "x"]);
    }
}
