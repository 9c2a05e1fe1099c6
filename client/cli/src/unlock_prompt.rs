//! Unlocking on the terminal when a command finds the vault locked (README "Running the
//! agent"): a command that needs the vault asks for the passphrase on `/dev/tty`, without
//! echo, unlocks and carries on — up to three tries, each wrong one costing the agent's
//! backoff. Never with `--no-prompt` / `AVP_NO_PROMPT=1` or without a controlling terminal
//! (exit 4 as before). Only `/dev/tty` is used: stdin may be the value being stored and
//! stdout the secret being printed.
//!
//! Single flight across terminals: the prompt is taken under an exclusive `flock` on the
//! socket's directory (private to the user, and there whatever starts the agent), and the
//! vault's state is read again once it is held. A second `avp` that meets the locked vault
//! while the first is prompting waits for the lock, finds the vault unlocked and carries on
//! without asking; if the first gave up, it asks in turn.

use crate::fail::Failure;
use avp_client::{Client, ErrorCode, Passphrase, VaultState};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Passphrases asked before giving up, like sudo and ssh-add.
const TRIES: u32 = 3;

/// The terminal, if this process has one to ask on.
pub fn terminal() -> Option<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

/// Asks on `tty` for the passphrase and unlocks through `client`, unless another `avp`
/// unlocked meanwhile. `Ok` once the vault is open.
pub fn unlock_on_terminal(
    socket: &Path,
    client: &mut Client,
    mut tty: File,
) -> Result<(), Failure> {
    let _turn = take_turn(socket, &mut tty);
    match client.status()?.state {
        VaultState::Unlocked => return Ok(()),
        VaultState::Uninitialized => return Err(avp_client::Error::VaultNotInitialized.into()),
        VaultState::Locked => {}
    }
    let _ = writeln!(tty, "avp: the vault is locked.");
    for attempt in 1..=TRIES {
        let passphrase = ask(&mut tty)?;
        match client.unlock(passphrase) {
            Ok(()) => return Ok(()),
            Err(err) if err.code() == Some(ErrorCode::AuthenticationFailed) && attempt < TRIES => {
                let _ = writeln!(tty, "Wrong passphrase, try again.");
            }
            Err(err) => return Err(err.into()),
        }
    }
    unreachable!("the last try returns")
}

/// The exclusive lock on the socket's directory, waited for (saying so on the terminal).
/// `None` when the directory cannot be locked: then there is no single flight, only the
/// prompt.
fn take_turn(socket: &Path, tty: &mut File) -> Option<Flock<File>> {
    let dir = socket.parent().filter(|d| !d.as_os_str().is_empty())?;
    let dir = File::open(dir).ok()?;
    match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Some(lock),
        Err((dir, _)) => {
            let _ = writeln!(tty, "avp: waiting for the unlock in another terminal…");
            Flock::lock(dir, FlockArg::LockExclusive).ok()
        }
    }
}

/// One hidden line from the terminal (rpassword reads and writes `/dev/tty`).
fn ask(tty: &mut File) -> Result<Passphrase, Failure> {
    match rpassword::prompt_password("Vault passphrase: ") {
        Ok(text) => Ok(Passphrase::from_string(text)),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            // Ctrl-D: the user gave up; the command fails as it would have without a prompt.
            let _ = writeln!(tty);
            Err(avp_client::Error::VaultLocked.into())
        }
        Err(err) => Err(Failure::io(
            "cannot read the passphrase from the terminal",
            err,
        )),
    }
}
