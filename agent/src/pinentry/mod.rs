//! Talking to a pinentry program (gnupg's passphrase dialog) over the Assuan protocol, as
//! gpg-agent does: which program and environment ([`setup`]), the escaping rules
//! ([`assuan`]) and one running dialog with every wait bounded by a deadline
//! ([`dialog`]). It knows nothing of vaults: the `prompt` module decides when to ask and
//! what to do with the answer.
//!
//! The protocol (gnupg's "pinentry" documentation): the program greets with `OK`; each
//! command line is answered by `OK`, or `ERR <code> <text>`, after any number of status
//! (`S`) and comment (`#`) lines; `GETPIN` sends the passphrase as `D <percent-escaped>`
//! before its `OK`; a cancelled dialog answers `ERR 83886179 Operation cancelled`.

pub mod assuan;
pub mod dialog;
pub mod setup;

pub use dialog::{Dialog, DialogError};
pub use setup::{PinentryChoice, PinentryCommand};
