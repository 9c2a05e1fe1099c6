//! `avp`: the command-line client of the avp agent (README "The avp CLI"). Wiring only: parse,
//! dispatch to one module per command group, print the failure and exit with its code.
#![forbid(unsafe_code)]

mod cli;
mod clip;
mod code_env;
mod complete;
mod context;
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

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};
use context::Ctx;
use fail::Failure;
use std::process::ExitCode;

fn dispatch(ctx: &Ctx, command: Command) -> Result<(), Failure> {
    match command {
        Command::Init(args) => lock_commands::init(ctx, args),
        Command::Unlock(args) => lock_commands::unlock(ctx, args),
        Command::Lock => lock_commands::lock(ctx),
        Command::Passwd(args) => lock_commands::passwd(ctx, args),
        Command::Status => lock_commands::status(ctx),
        Command::Discover => lock_commands::discover(ctx),
        Command::Set(args) => secrets::set(ctx, args),
        Command::Get(args) => secrets::get(ctx, args),
        Command::Ls(args) => secrets::ls(ctx, args),
        Command::Rm(args) => secrets::rm(ctx, args),
        Command::Rotate(args) => secrets::rotate(ctx, args),
        Command::History(args) => secrets::history(ctx, args),
        Command::Import(args) => transfer::import(ctx, args),
        Command::Export(args) => transfer::export(ctx, args),
        Command::Run(args) => run::run(ctx, args),
        Command::Completions(args) => {
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "avp", &mut out);
            output::print(&String::from_utf8_lossy(&out))
        }
        Command::Doctor(args) => doctor::doctor(ctx, args),
        Command::Man(args) => man::man(ctx.json, args),
        Command::ClipClear(args) => clip::clear_later(args),
    }
}

fn main() -> ExitCode {
    // Before anything else, so no secret ever lives in a dumpable process.
    let hardened = harden::harden_process();
    // `COMPLETE=bash avp -- avp get AP`: the shell asks for candidates; answer and exit.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    // clap prints usage errors itself and exits 2; --help and --version exit 0.
    let cli = Cli::parse();
    let ctx = Ctx::new(cli.global);
    match hardened.and_then(|()| dispatch(&ctx, cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            output::print_failure(&failure, ctx.json);
            ExitCode::from(failure.exit_code())
        }
    }
}
