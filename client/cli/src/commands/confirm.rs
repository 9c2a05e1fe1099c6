//! `rm`'s question on a terminal: `Delete NAME from workspace W? [y/N]`. Asked only when
//! standard input is a terminal and neither `-f` nor `--yes` was given; a script (no
//! terminal) deletes as before, without asking. The question is on the terminal, the outcome
//! where every outcome goes (under `--json`, a refusal is the JSON error document on stderr).

use crate::fail::Failure;
use avp_client::{Client, ErrorCode, SecretName, Session, WorkspaceId};
use std::io::{self, BufRead, Write};

/// Asks before `name` is deleted; `Ok` to go ahead. A missing secret is not asked about
/// (the delete then reports it, or succeeds quietly under `-f`).
pub fn delete(
    client: &mut Client,
    session: &Session,
    name: &SecretName,
    workspace: &WorkspaceId,
) -> Result<(), Failure> {
    if !super::exists(client, session, name)? {
        return Ok(());
    }
    let question = format!("Delete {name} from workspace {workspace}? [y/N] ");
    if yes(&question)? {
        return Ok(());
    }
    Err(Failure::refused(
        ErrorCode::InvalidRequest,
        format!("not confirmed: {name} was not deleted"),
        "answer y to delete it, or pass --yes",
    ))
}

/// Prints `question` on the terminal and reads one line from standard input: true only for
/// `y` or `yes` (any case). End of input (Ctrl-D) is a no. The question goes to `/dev/tty`
/// (stderr only when there is none), so a redirected stderr — under `--json`, the error
/// document — holds the outcome alone, and a person whose stderr is redirected still sees it.
fn yes(question: &str) -> Result<bool, Failure> {
    let mut out: Box<dyn Write> = match crate::unlock_prompt::terminal() {
        Some(tty) => Box::new(tty),
        None => Box::new(io::stderr().lock()),
    };
    let _ = out.write_all(question.as_bytes());
    let _ = out.flush();
    let mut answer = String::new();
    let read = io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::io("cannot read the answer from the terminal", e))?;
    if read == 0 {
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
