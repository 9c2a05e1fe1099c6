//! The write decisions: STORE, ROTATE, DELETE, and which versions a secret retains.
//!
//! A backend reads the live state of the secret (absent or expired: `None`), asks these
//! functions what the write creates, then seals and persists exactly that.

use super::{PAST_EXPIRY, RuleError};
use avp_protocol::{ExpiryChange, Labels, Limits, Timestamp};

/// What the rules need to know of a live secret: its current head.
#[derive(Debug, Clone, Copy)]
pub struct Live<'a> {
    /// The current version number.
    pub version: u32,
    /// When the secret was first created.
    pub created_at: Timestamp,
    /// Its labels.
    pub labels: &'a Labels,
    /// Its expiry.
    pub expires_at: Option<Timestamp>,
}

/// The version a write creates, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The new version number; 1 starts the secret afresh.
    pub version: u32,
    /// Kept across versions; `now` for a new secret.
    pub created_at: Timestamp,
    /// The labels from this version on.
    pub labels: Labels,
    /// The expiry from this version on.
    pub expires_at: Option<Timestamp>,
}

impl Head {
    /// True when the write creates the secret (STORE's `created`). The backend must then
    /// check the workspace has room ([`check_room`]).
    pub fn creates(&self) -> bool {
        self.version == 1
    }
}

/// The value-size limit.
pub fn check_value(limits: Limits, value_len: usize) -> Result<(), RuleError> {
    if value_len > limits.max_secret_value_length as usize {
        return Err(RuleError::ValueTooLarge);
    }
    Ok(())
}

/// The version after `current`; a secret whose number cannot grow is full.
pub fn next_version(current: u32) -> Result<u32, RuleError> {
    current.checked_add(1).ok_or(RuleError::CapacityExceeded)
}

/// The checks of a STORE that do not depend on what is stored: value size, then an expiry
/// set at or before `now`. A backend whose state is remote makes them before reading it.
pub fn check_store(
    limits: Limits,
    value_len: usize,
    expires_at: ExpiryChange,
    now: Timestamp,
) -> Result<(), RuleError> {
    check_value(limits, value_len)?;
    if expires_at.is_past(now) {
        return Err(RuleError::InvalidRequest(PAST_EXPIRY));
    }
    Ok(())
}

/// STORE: a new secret at version 1, or version old+1 keeping `created_at`; `labels: None`
/// keeps, `Some(empty)` clears; the expiry is kept, set or cleared, and one set at or before
/// `now` is refused. Checks in this order: [`check_store`], then the version.
pub fn store(
    limits: Limits,
    live: Option<Live<'_>>,
    value_len: usize,
    labels: Option<Labels>,
    expires_at: ExpiryChange,
    now: Timestamp,
) -> Result<Head, RuleError> {
    check_store(limits, value_len, expires_at, now)?;
    Ok(match live {
        Some(live) => Head {
            version: next_version(live.version)?,
            created_at: live.created_at,
            labels: labels.unwrap_or_else(|| live.labels.clone()),
            expires_at: expires_at.apply(live.expires_at),
        },
        None => Head {
            version: 1,
            created_at: now,
            labels: labels.unwrap_or_default(),
            expires_at: expires_at.apply(None),
        },
    })
}

/// ROTATE: a new version of a live secret, labels and expiry kept. Checks in this order:
/// the secret exists, value size, version. Returns the new head and the version it replaces.
pub fn rotate(
    limits: Limits,
    live: Option<Live<'_>>,
    value_len: usize,
) -> Result<(Head, u32), RuleError> {
    let live = live.ok_or(RuleError::NotFound)?;
    check_value(limits, value_len)?;
    let head = Head {
        version: next_version(live.version)?,
        created_at: live.created_at,
        labels: live.labels.clone(),
        expires_at: live.expires_at,
    };
    Ok((head, live.version))
}

/// DELETE answers whether a live secret was there; every version goes either way (an
/// expired one is purged on the way).
pub fn delete(live: Option<Live<'_>>) -> bool {
    live.is_some()
}

/// A new secret needs room: the workspace may hold at most `max_secrets_per_workspace` live
/// secrets. `stored` counts expired ones too, so `live` (which may cost a walk) is only
/// asked when it could make the difference.
pub fn check_room(
    limits: Limits,
    stored: usize,
    live: impl FnOnce() -> usize,
) -> Result<(), RuleError> {
    let max = limits.max_secrets_per_workspace as usize;
    if stored >= max && live() >= max {
        return Err(RuleError::CapacityExceeded);
    }
    Ok(())
}

/// The versions a secret keeps: the newest `history` (at least one).
pub fn retained(history: usize) -> usize {
    history.max(1)
}

/// How many of the oldest versions to drop once a secret holds `versions`.
pub fn excess(versions: usize, history: usize) -> usize {
    versions.saturating_sub(retained(history))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix(secs)
    }

    #[test]
    fn store_checks_the_value_before_the_expiry_and_the_version() {
        let labels = Labels::default();
        let live = Live {
            version: u32::MAX,
            created_at: at(1),
            labels: &labels,
            expires_at: None,
        };
        let big = Limits::AVP.max_secret_value_length as usize + 1;
        let past = ExpiryChange::Set(at(5));
        assert_eq!(
            store(Limits::AVP, Some(live), big, None, past, at(10)),
            Err(RuleError::ValueTooLarge)
        );
        assert_eq!(
            store(Limits::AVP, Some(live), 1, None, past, at(10)),
            Err(RuleError::InvalidRequest(PAST_EXPIRY))
        );
        assert_eq!(
            store(Limits::AVP, Some(live), 1, None, ExpiryChange::Keep, at(10)),
            Err(RuleError::CapacityExceeded)
        );
    }

    #[test]
    fn rotate_of_nothing_is_not_found_before_the_value_is_checked() {
        let big = Limits::AVP.max_secret_value_length as usize + 1;
        assert_eq!(rotate(Limits::AVP, None, big), Err(RuleError::NotFound));
    }

    #[test]
    fn room_counts_live_secrets_only_when_it_matters() {
        let limits = Limits::AVP;
        let max = limits.max_secrets_per_workspace as usize;
        assert_eq!(check_room(limits, max - 1, || unreachable!()), Ok(()));
        assert_eq!(check_room(limits, max + 3, || max - 1), Ok(()));
        assert_eq!(
            check_room(limits, max, || max),
            Err(RuleError::CapacityExceeded)
        );
    }

    #[test]
    fn at_least_one_version_is_retained() {
        assert_eq!(excess(3, 0), 2);
        assert_eq!(excess(11, 10), 1);
        assert_eq!(excess(4, 10), 0);
    }
}
