//! Subcommand arguments clap builds only when their subcommand is the one used.
//!
//! Why. clap's derive builds every subcommand's arguments before it parses anything: for
//! avp's two dozen subcommands that is a few hundred heap allocations and a hundred-odd
//! page faults on every run — a third of what `avp get NAME` or `avp --version` costs over
//! the process start itself. [`Deferred`] hands a subcommand's arguments to clap's
//! [`Command::defer`], so only the subcommand being run (and `--help`, man pages and
//! completion, which build the whole tree) pays for its own.

use clap::{ArgMatches, Args, Command, FromArgMatches, Id};

/// `T`'s arguments, added to its subcommand only once clap builds that subcommand.
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Self)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl<T: Args> Args for Deferred<T> {
    fn group_id() -> Option<Id> {
        T::group_id()
    }

    fn augment_args(cmd: Command) -> Command {
        cmd.defer(T::augment_args)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        cmd.defer(T::augment_args_for_update)
    }
}
