//! `import --from avp-sdk FILE [--password-stdin]`: the Python AVP SDK's `FileBackend` vault
//! (`avp-sdk` on PyPI, `avp/backends/file.py`).
//!
//! That file is one Fernet token (AES-128-CBC + HMAC-SHA256) under a key derived from the
//! password with PBKDF2-HMAC-SHA256, 480,000 iterations, the SDK's fixed salt
//! `avp_file_backend_v1`, 32 bytes, urlsafe-base64'd as Fernet wants. Inside is JSON:
//! `{"version": 1, "workspaces": {WS: {NAME: {"value": base64, "metadata": {"labels": {…},
//! "expires_at": naive-UTC ISO 8601 or null, …}}}}}`.
//!
//! The SDK workspace named by `-w` (default `default`) goes into the avp workspace of the
//! same name; its labels and expiry come along. Secrets already expired are left out, as the
//! SDK itself no longer returns them. The SDK keeps one version per secret, so one version
//! is imported. Like every import it is all or nothing: a wrong password, a damaged file or
//! an entry avp cannot hold stops it before the first write.

use crate::cli::ImportArgs;
use crate::context::{self, Ctx};
use crate::fail::Failure;
use crate::input;
use crate::transfer::Entry;
use avp_client::{ErrorCode, ExpiryChange, SecretValue, StoreOptions, Timestamp};
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use time::PrimitiveDateTime;
use time::format_description::well_known::Iso8601;
use zeroize::Zeroizing;

/// The SDK's fixed PBKDF2 salt (`FileBackend._create_fernet`).
const SALT: &[u8] = b"avp_file_backend_v1";
/// The SDK's PBKDF2 iteration count.
const ITERATIONS: u32 = 480_000;
/// The largest vault file read (every workspace at the SDK's limits is far below it).
const MAX_FILE: u64 = 256 * 1024 * 1024;

#[derive(Deserialize)]
struct Vault {
    #[serde(default)]
    workspaces: BTreeMap<String, BTreeMap<String, SdkSecret>>,
}

#[derive(Deserialize)]
struct SdkSecret {
    /// Base64 of the value. Moved into a wiped buffer as soon as it is read.
    value: String,
    #[serde(default)]
    metadata: SdkMetadata,
}

#[derive(Deserialize, Default)]
struct SdkMetadata {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    expires_at: Option<String>,
}

impl std::fmt::Debug for SdkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdkSecret(..)")
    }
}

/// The vault's password: one line of stdin with `--password-stdin`, else a hidden prompt.
fn password(args: &ImportArgs) -> Result<avp_client::Passphrase, Failure> {
    if args.password_stdin {
        input::passphrase_from_stdin("avp-sdk vault password")
    } else if input::stdin_is_terminal() {
        input::prompt_passphrase("avp-sdk vault password: ", false)
    } else {
        Err(Failure::usage(
            "standard input is not a terminal, so avp cannot ask for the vault's password",
            "pass --password-stdin and give the password as one line on standard input",
        ))
    }
}

/// The Fernet key string the SDK derives from `password`.
fn fernet_key(password: &[u8]) -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, SALT, ITERATIONS, raw.as_mut());
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE.encode(raw.as_ref()))
}

fn damaged(path: &Path, why: impl std::fmt::Display) -> Failure {
    Failure::refused(
        ErrorCode::InvalidRequest,
        format!(
            "{} is not an avp-sdk FileBackend vault: {why}",
            path.display()
        ),
        "give the file the SDK's FileBackend(path=…) writes; nothing was imported",
    )
}

/// Decrypts the vault file into its JSON text, in a wiped buffer.
fn decrypt(path: &Path, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let context = || format!("cannot read {}", path.display());
    let meta = std::fs::metadata(path).map_err(|err| Failure::io(context(), err))?;
    if meta.len() > MAX_FILE {
        return Err(damaged(path, "it is larger than 256 MiB"));
    }
    let token = std::fs::read(path).map_err(|err| Failure::io(context(), err))?;
    let token =
        std::str::from_utf8(&token).map_err(|_| damaged(path, "it is not a Fernet token"))?;
    let key = fernet_key(password);
    let fernet = fernet::Fernet::new(&key).expect("a 32-byte key, urlsafe base64");
    let plaintext = fernet
        .decrypt(token.trim())
        .map(Zeroizing::new)
        .map_err(|_| {
            Failure::refused(
                ErrorCode::AuthenticationFailed,
                format!(
                    "cannot decrypt {}: wrong password, or the file is damaged",
                    path.display()
                ),
                "give the password the SDK's FileBackend was created with; nothing was imported",
            )
        })?;
    Ok(plaintext)
}

/// `expires_at` of the SDK (naive UTC, `datetime.utcnow().isoformat()`) as a timestamp.
fn sdk_time(text: &str) -> Option<Timestamp> {
    let at = PrimitiveDateTime::parse(text, &Iso8601::DEFAULT).ok()?;
    Some(Timestamp::from_unix(at.assume_utc().unix_timestamp()))
}

fn entry(name: &str, secret: SdkSecret, path: &Path) -> Result<Option<Entry>, Failure> {
    let SdkSecret { value, metadata } = secret;
    let value = Zeroizing::new(value);
    let invalid = |what: &str| {
        Failure::refused(
            ErrorCode::InvalidRequest,
            format!("the avp-sdk secret `{name}` has {what}"),
            "fix or remove it with the SDK and import again; nothing was imported",
        )
    };
    let expires_at = match metadata.expires_at.as_deref() {
        None => ExpiryChange::Keep,
        Some(text) => {
            let at = sdk_time(text).ok_or_else(|| invalid("an expiry that is not ISO 8601"))?;
            if at <= Timestamp::now() {
                return Ok(None);
            }
            ExpiryChange::Set(at)
        }
    };
    let name = context::name(name).map_err(|_| {
        Failure::refused(
            ErrorCode::InvalidName,
            format!("the avp-sdk secret `{name}` has a name avp cannot hold"),
            "rename it with the SDK (letters, digits, '_', '.', '-', starting with a letter); nothing was imported",
        )
    })?;
    let labels = context::labels(metadata.labels.into_iter().collect())?;
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(value.as_bytes())
            .map_err(|_| damaged(path, format!("the value of `{name}` is not base64")))?,
    );
    if bytes.len() > input::max_value_len() {
        return Err(input::too_large(bytes.len()));
    }
    Ok(Some(Entry {
        workspace: None,
        name,
        value: SecretValue::from_slice(&bytes),
        options: StoreOptions {
            labels: Some(labels),
            expires_at,
        },
    }))
}

/// The `-w` workspace of the SDK vault at FILE, decrypted and validated.
pub fn read_vault(ctx: &Ctx, args: &ImportArgs) -> Result<Vec<Entry>, Failure> {
    let Some(path) = args.file.as_deref() else {
        return Err(Failure::usage(
            "--from avp-sdk needs the vault file",
            "avp import --from avp-sdk FILE",
        ));
    };
    let workspace = ctx.workspace()?;
    let password = password(args)?;
    let plaintext = decrypt(path, password.expose_secret().as_bytes())?;
    drop(password);
    let vault: Vault = serde_json::from_slice(&plaintext)
        .map_err(|err| damaged(path, format!("bad JSON ({err})")))?;
    drop(plaintext);
    let mut workspaces = vault.workspaces;
    let Some(secrets) = workspaces.remove(workspace.as_str()) else {
        let known: Vec<&str> = workspaces.keys().map(String::as_str).collect();
        return Err(Failure::refused(
            ErrorCode::InvalidWorkspace,
            format!(
                "the avp-sdk vault has no workspace `{workspace}` (it has: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
            "choose one with -w WS; nothing was imported",
        ));
    };
    let mut entries = Vec::with_capacity(secrets.len());
    for (name, secret) in secrets {
        entries.extend(entry(&name, secret, path)?);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_sdks() {
        // Python: base64.urlsafe_b64encode(hashlib.pbkdf2_hmac("sha256", b"pw",
        // b"avp_file_backend_v1", 480000, 32)), what FileBackend._create_fernet derives.
        let key = fernet_key(b"pw");
        assert_eq!(key.as_str(), "VuATB9LO4DumGjzmuBsHP0XR1XrRBx7CV1uW_pKdVes=");
        assert!(fernet::Fernet::new(&key).is_some());
    }

    #[test]
    fn sdk_times_are_naive_utc() {
        let at = sdk_time("2030-01-31T12:00:00.123456").unwrap();
        assert_eq!(at, Timestamp::from_unix(1_896_091_200));
        assert!(sdk_time("tomorrow").is_none());
    }
}
