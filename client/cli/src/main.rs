//! `avp`: the command-line client of the avp agent (README "The avp CLI"). Wiring only: parse,
//! dispatch to one module per command group, print the failure and exit with its code.
#![forbid(unsafe_code)]

mod cli;
mod clip;
mod code_env;
mod commands;
mod complete;
mod context;
mod deferred;
mod doctor;
mod dotenv;
mod fail;
mod generate;
mod harden;
mod import_pass;
mod import_sdk;
mod input;
mod jsonfile;
mod lock_commands;
mod man;
mod output;
mod run;
mod secrets;
mod transfer;
mod unlock_prompt;

use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, Command};
use context::Ctx;
use deferred::Deferred;
use fail::Failure;
use std::process::ExitCode;

fn dispatch(ctx: &Ctx, command: Command) -> Result<(), Failure> {
    match command {
        Command::Init(Deferred(args)) => lock_commands::init(ctx, args),
        Command::Unlock(Deferred(args)) => lock_commands::unlock(ctx, args),
        Command::Lock => lock_commands::lock(ctx),
        Command::Passwd(Deferred(args)) => lock_commands::passwd(ctx, args),
        Command::Status => lock_commands::status(ctx),
        Command::Discover => lock_commands::discover(ctx),
        Command::Set(Deferred(args)) => secrets::set(ctx, args),
        Command::Get(Deferred(args)) => secrets::get(ctx, args),
        Command::Ls(Deferred(args)) => secrets::ls(ctx, args),
        Command::Rm(Deferred(args)) => secrets::rm(ctx, args),
        Command::Rotate(Deferred(args)) => secrets::rotate(ctx, args),
        Command::History(Deferred(args)) => secrets::history(ctx, args),
        Command::Edit(Deferred(args)) => commands::edit::edit(ctx, args),
        Command::Cp(Deferred(args)) => commands::copy::copy(ctx, args, commands::copy::Mode::Copy),
        Command::Mv(Deferred(args)) => commands::copy::copy(ctx, args, commands::copy::Mode::Move),
        Command::Restore(Deferred(args)) => commands::restore::restore(ctx, args),
        Command::Workspaces => commands::workspaces::list(ctx),
        Command::Audit(Deferred(args)) => commands::audit::audit(ctx, args),
        Command::Import(Deferred(args)) => transfer::import(ctx, args),
        Command::Export(Deferred(args)) => transfer::export(ctx, args),
        Command::Run(Deferred(args)) => run::run(ctx, args),
        Command::Completions(Deferred(args)) => {
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "avp", &mut out);
            output::print(&String::from_utf8_lossy(&out))
        }
        Command::Doctor(Deferred(args)) => doctor::doctor(ctx, args),
        Command::Man(Deferred(args)) => man::man(ctx.json, args),
        Command::ClipClear(Deferred(args)) => clip::clear_later(args),
    }
}

/// Parses the command line. `--help` and `--version` print and exit 0; a usage error exits
/// 2, printed by clap, or under `--json` as the JSON error document every failure uses.
fn parse() -> Result<Cli, (Failure, bool)> {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    match parsed {
        Ok((cli, matches)) => {
            let json = cli.global.json;
            cli::refuse_unused_workspace(&matches).map_err(|failure| (failure, json))?;
            Ok(cli)
        }
        Err(err) => {
            use clap::error::ErrorKind;
            let shown = matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if shown || !cli::json_requested() {
                // Help and version on stdout, exit 0; a usage error as clap words it, exit 2.
                err.exit();
            }
            Err((Failure::usage_from_clap(&err), true))
        }
    }
}

fn main() -> ExitCode {
    // Before anything else, so no secret ever lives in a dumpable process.
    let hardened = harden::harden_process();
    // `COMPLETE=bash avp -- avp get AP`: the shell asks for candidates; answer and exit.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = match parse() {
        Ok(cli) => cli,
        Err((failure, json)) => {
            output::print_failure(&failure, json);
            return ExitCode::from(failure.exit_code());
        }
    };
    let ctx = Ctx::new(cli.global);
    match hardened.and_then(|()| dispatch(&ctx, cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            output::print_failure(&failure, ctx.json);
            ExitCode::from(failure.exit_code())
        }
    }
}
