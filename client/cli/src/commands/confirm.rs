//! `rm`'s question on a terminal: `Delete NAME from workspace W? [y/N]`. Asked only when
//! standard input is a terminal and neither `-f` nor `--yes` was given; a script (no
//! terminal) deletes as before, without asking.

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

/// Prints `question` on stderr and reads one line: true only for `y` or `yes` (any case).
/// End of input (Ctrl-D) is a no.
fn yes(question: &str) -> Result<bool, Failure> {
    let mut err = io::stderr().lock();
    let _ = err.write_all(question.as_bytes());
    let _ = err.flush();
    let mut answer = String::new();
    let read = io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::io("cannot read the answer from the terminal", e))?;
    if read == 0 {
        let _ = err.write_all(b"\n");
    }
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
