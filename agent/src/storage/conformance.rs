//! The conformance suite: every rule of PROTOCOL.md §9.2–§9.7 and §10 that lives below the session layer, as
//! one public function per rule, runnable against any [`Backend`] — the Rust counterpart of
//! AVP's `BackendTestSuite`. Every backend in the tree runs it through
//! [`backend_conformance!`](crate::backend_conformance), which makes one `#[test]` per rule:
//!
//! ```ignore
//! avp_agent::backend_conformance!(|settings| {
//!     Subject::new(Box::new(MemoryBackend::in_memory(settings)))
//! });
//! ```
//!
//! Time is passed explicitly (every backend call takes `now`), so expiry is tested without
//! waiting. A rule panics with a message naming what broke.

use super::{Backend, BackendError, BackendSettings};
use avp_protocol::{
    ErrorCode, ExpiryChange, Labels, Limits, SecretName, SecretValue, StoreResult, Timestamp,
    WorkspaceId,
};
use std::collections::BTreeMap;

/// A backend under test, and whatever must outlive it (a temp directory, a server).
pub struct Subject {
    /// The backend.
    pub backend: Box<dyn Backend>,
    _keep_alive: Option<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Subject {
    /// A backend that needs nothing else.
    pub fn new(backend: Box<dyn Backend>) -> Self {
        Self {
            backend,
            _keep_alive: None,
        }
    }

    /// A backend with something to keep alive until it is dropped (dropped after it).
    pub fn with_guard(backend: Box<dyn Backend>, guard: impl std::any::Any + Send) -> Self {
        Self {
            backend,
            _keep_alive: Some(Box::new(guard)),
        }
    }
}

/// Builds a fresh, empty backend with the given settings.
pub type Make<'a> = &'a dyn Fn(BackendSettings) -> Subject;

/// Calls the exported macro `$callback` with `($args)` and the name of every rule, so the
/// list of rules exists once.
#[macro_export]
macro_rules! conformance_rules {
    ($callback:ident ($($args:tt)*)) => {
        $crate::$callback!(($($args)*);
            store_creates_at_version_one,
            store_updates_and_keeps_created_at,
            labels_are_kept_when_omitted_and_cleared_when_empty,
            expiry_is_kept_when_omitted,
            store_rejects_an_expiry_in_the_past,
            expiry_is_removed_by_clear,
            values_round_trip_byte_exact,
            values_over_the_limit_are_refused,
            ten_versions_are_retained_and_retrievable,
            the_history_setting_is_honoured,
            rotate_of_a_missing_secret_is_not_found,
            rotate_keeps_labels_and_expiry,
            rotate_enforces_the_value_limit,
            delete_removes_every_version_and_restarts_numbering,
            list_is_sorted_by_byte_order_and_holds_metadata,
            list_filter_requires_every_pair,
            list_pagination_is_keyset_and_stable,
            list_pages_fit_a_frame,
            expired_secrets_are_invisible,
            workspaces_are_isolated,
            the_secret_count_per_workspace_is_enforced,
            counts_report_live_secrets,
            workspaces_list_live_secrets_by_id
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __avp_conformance_tests {
    (($make:expr); $($rule:ident),*) => {
        $(
            #[test]
            fn $rule() {
                $crate::storage::conformance::$rule(&$make);
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __avp_conformance_call {
    (($make:expr); $($rule:ident),*) => {
        $( $crate::storage::conformance::$rule($make); )*
    };
}

/// One `#[test]` per conformance rule for the backend built by `$make`
/// (a `Fn(BackendSettings) -> Subject`).
#[macro_export]
macro_rules! backend_conformance {
    ($make:expr) => {
        $crate::conformance_rules!(__avp_conformance_tests($make));
    };
}

/// Runs every rule in turn.
pub fn run_all(make: Make<'_>) {
    crate::conformance_rules!(__avp_conformance_call(make));
}

const T0: Timestamp = Timestamp::from_unix(1_800_000_000);

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix(T0.unix() + seconds)
}

fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::new(id).expect("valid workspace")
}

fn name(n: &str) -> SecretName {
    SecretName::new(n).expect("valid name")
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Labels::new(map).expect("valid labels")
}

fn value(bytes: &[u8]) -> SecretValue {
    SecretValue::from_slice(bytes)
}

fn fresh(make: Make<'_>) -> Subject {
    make(BackendSettings::default())
}

fn put(b: &dyn Backend, w: &str, n: &str, v: &[u8], now: Timestamp) -> StoreResult {
    b.store(&ws(w), &name(n), value(v), None, ExpiryChange::Keep, now)
        .unwrap_or_else(|e| panic!("store {w}/{n}: {e}"))
}

fn get(b: &dyn Backend, w: &str, n: &str, now: Timestamp) -> Result<Vec<u8>, ErrorCode> {
    b.retrieve(&ws(w), &name(n), None, now)
        .map(|s| s.value.expose_secret().to_vec())
        .map_err(|e| e.code())
}

fn code<T>(result: Result<T, BackendError>) -> ErrorCode {
    match result {
        Ok(_) => panic!("expected an error, got success"),
        Err(err) => err.code(),
    }
}

fn names(b: &dyn Backend, w: &str, filter: &Labels, now: Timestamp) -> Vec<String> {
    b.list(&ws(w), filter, None, 1000, now)
        .expect("list")
        .secrets
        .into_iter()
        .map(|m| m.name.as_str().to_owned())
        .collect()
}

/// STORE of a new secret: `created`, version 1, times set.
pub fn store_creates_at_version_one(make: Make<'_>) {
    let s = fresh(make);
    let r = put(&*s.backend, "w", "API_KEY", b"v1", at(0));
    assert!(r.created, "a new secret is created");
    assert_eq!(r.version, 1);
    assert_eq!((r.created_at, r.updated_at), (at(0), at(0)));
    assert_eq!(get(&*s.backend, "w", "API_KEY", at(1)), Ok(b"v1".to_vec()));
}

/// STORE of an existing secret: a new version, `created_at` kept.
pub fn store_updates_and_keeps_created_at(make: Make<'_>) {
    let s = fresh(make);
    put(&*s.backend, "w", "k", b"v1", at(0));
    let r = put(&*s.backend, "w", "k", b"v2", at(5));
    assert!(!r.created);
    assert_eq!(r.version, 2);
    assert_eq!(r.created_at, at(0), "created_at is kept across versions");
    assert_eq!(r.updated_at, at(5));
    let secret = s
        .backend
        .retrieve(&ws("w"), &name("k"), None, at(6))
        .expect("retrieve");
    assert_eq!(secret.value.expose_secret(), b"v2");
    assert_eq!(
        (secret.version, secret.created_at, secret.updated_at),
        (2, at(0), at(5))
    );
}

/// Labels: omitted → kept; an explicit empty map → cleared; given → replaced.
pub fn labels_are_kept_when_omitted_and_cleared_when_empty(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    let env = labels(&[("env", "prod"), ("team", "a")]);
    b.store(
        &ws("w"),
        &name("k"),
        value(b"1"),
        Some(env.clone()),
        ExpiryChange::Keep,
        at(0),
    )
    .expect("store");
    b.store(
        &ws("w"),
        &name("k"),
        value(b"2"),
        None,
        ExpiryChange::Keep,
        at(1),
    )
    .expect("store");
    let got = b
        .retrieve(&ws("w"), &name("k"), None, at(2))
        .expect("retrieve");
    assert_eq!(got.labels, env, "omitted labels are kept");
    let other = labels(&[("env", "dev")]);
    b.store(
        &ws("w"),
        &name("k"),
        value(b"3"),
        Some(other.clone()),
        ExpiryChange::Keep,
        at(3),
    )
    .expect("store");
    assert_eq!(
        b.retrieve(&ws("w"), &name("k"), None, at(4))
            .expect("r")
            .labels,
        other
    );
    b.store(
        &ws("w"),
        &name("k"),
        value(b"4"),
        Some(Labels::empty()),
        ExpiryChange::Keep,
        at(5),
    )
    .expect("store");
    let got = b
        .retrieve(&ws("w"), &name("k"), None, at(6))
        .expect("retrieve");
    assert!(got.labels.is_empty(), "an empty map clears the labels");
}

/// `Keep` on update → the existing expiry is kept; `Set` replaces it.
pub fn expiry_is_kept_when_omitted(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    b.store(
        &ws("w"),
        &name("k"),
        value(b"1"),
        None,
        ExpiryChange::Set(at(100)),
        at(0),
    )
    .expect("store");
    b.store(
        &ws("w"),
        &name("k"),
        value(b"2"),
        None,
        ExpiryChange::Keep,
        at(1),
    )
    .expect("store");
    let got = b
        .retrieve(&ws("w"), &name("k"), None, at(2))
        .expect("retrieve");
    assert_eq!(got.expires_at, Some(at(100)), "omitted expiry is kept");
    b.store(
        &ws("w"),
        &name("k"),
        value(b"3"),
        None,
        ExpiryChange::Set(at(200)),
        at(3),
    )
    .expect("store");
    let got = b
        .retrieve(&ws("w"), &name("k"), None, at(4))
        .expect("retrieve");
    assert_eq!(got.expires_at, Some(at(200)));
}

/// A STORE that sets an expiry at or before now is refused (the secret could never be read,
/// and an update would take the whole history with it): a new secret is not created, an
/// existing one keeps its value, versions and expiry.
pub fn store_rejects_an_expiry_in_the_past(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    for past in [at(0), at(10)] {
        let r = b.store(
            &ws("w"),
            &name("k"),
            value(b"1"),
            None,
            ExpiryChange::Set(past),
            at(10),
        );
        assert_eq!(code(r), ErrorCode::InvalidRequest, "expiry {past:?} at 10");
    }
    assert_eq!(get(b, "w", "k", at(10)), Err(ErrorCode::SecretNotFound));
    put(b, "w", "k", b"1", at(10));
    put(b, "w", "k", b"2", at(11));
    let r = b.store(
        &ws("w"),
        &name("k"),
        value(b"3"),
        None,
        ExpiryChange::Set(at(12)),
        at(12),
    );
    assert_eq!(
        code(r),
        ErrorCode::InvalidRequest,
        "expiry now on an update"
    );
    let got = b
        .retrieve(&ws("w"), &name("k"), None, at(100))
        .expect("the secret survives the refused update");
    assert_eq!(
        (got.value.expose_secret(), got.version, got.expires_at),
        (&b"2"[..], 2, None)
    );
    let versions = b.history(&ws("w"), &name("k"), at(100)).expect("history");
    assert_eq!(versions.versions.len(), 2, "history kept");
}

/// `Clear` removes an existing expiry, so the secret outlives it; on a new secret it sets
/// none; and a later `Keep` keeps the secret without expiry.
pub fn expiry_is_removed_by_clear(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    b.store(
        &ws("w"),
        &name("k"),
        value(b"1"),
        None,
        ExpiryChange::Set(at(100)),
        at(0),
    )
    .expect("store");
    let r = b
        .store(
            &ws("w"),
            &name("k"),
            value(b"2"),
            None,
            ExpiryChange::Clear,
            at(1),
        )
        .expect("store with Clear");
    assert_eq!((r.created, r.version), (false, 2));
    b.store(
        &ws("w"),
        &name("k"),
        value(b"3"),
        None,
        ExpiryChange::Keep,
        at(2),
    )
    .expect("store with Keep");
    let got = b
        .retrieve(&ws("w"), &name("k"), None, at(1_000))
        .expect("alive past the cleared expiry");
    assert_eq!((got.version, got.expires_at), (3, None));
    let listed = b
        .list(&ws("w"), &Labels::empty(), None, 10, at(1_000))
        .expect("list");
    assert_eq!(listed.secrets[0].expires_at, None);
    b.store(
        &ws("w"),
        &name("n"),
        value(b"v"),
        None,
        ExpiryChange::Clear,
        at(3),
    )
    .expect("Clear on a new secret");
    let got = b
        .retrieve(&ws("w"), &name("n"), None, at(4))
        .expect("retrieve");
    assert_eq!((got.version, got.expires_at), (1, None));
}

/// Any byte string round-trips exactly: empty, non-UTF-8, NUL, the maximum size.
pub fn values_round_trip_byte_exact(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    let max = Limits::AVP.max_secret_value_length as usize;
    let big: Vec<u8> = (0..max).map(|i| (i * 7 % 256) as u8).collect();
    let cases: [(&str, &[u8]); 5] = [
        ("empty", b""),
        ("binary", b"\x00\xff\xfe\x80 \n\r\x00"),
        ("utf8", "clé 名前".as_bytes()),
        ("newline", b"line\n"),
        ("max", &big),
    ];
    for (n, v) in cases {
        put(b, "w", n, v, at(0));
    }
    for (n, v) in cases {
        assert_eq!(get(b, "w", n, at(1)).as_deref(), Ok(v), "value {n} changed");
    }
}

/// A value over the limit is `VALUE_TOO_LARGE` and stores nothing.
pub fn values_over_the_limit_are_refused(make: Make<'_>) {
    let s = fresh(make);
    let too_big = vec![0u8; Limits::AVP.max_secret_value_length as usize + 1];
    let r = s.backend.store(
        &ws("w"),
        &name("k"),
        value(&too_big),
        None,
        ExpiryChange::Keep,
        at(0),
    );
    assert_eq!(code(r), ErrorCode::ValueTooLarge);
    assert_eq!(
        get(&*s.backend, "w", "k", at(1)),
        Err(ErrorCode::SecretNotFound)
    );
}

/// The last 10 versions are kept; older ones are gone; HISTORY lists the kept ones.
pub fn ten_versions_are_retained_and_retrievable(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    for i in 1..=12u32 {
        put(b, "w", "k", format!("v{i}").as_bytes(), at(i64::from(i)));
    }
    for i in 3..=12u32 {
        let old = b
            .retrieve(&ws("w"), &name("k"), Some(i), at(20))
            .expect("retained version");
        assert_eq!(old.value.expose_secret(), format!("v{i}").as_bytes());
        assert_eq!(old.version, i);
    }
    for gone in [1, 2, 13, 0] {
        let r = b.retrieve(&ws("w"), &name("k"), Some(gone), at(20));
        assert_eq!(code(r), ErrorCode::SecretNotFound, "version {gone}");
    }
    let history = b.history(&ws("w"), &name("k"), at(20)).expect("history");
    let numbers: Vec<u32> = history.versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, (3..=12).collect::<Vec<_>>(), "oldest first");
    assert_eq!(history.versions[0].created_at, at(3));
}

/// `history` in the settings bounds the retained versions.
pub fn the_history_setting_is_honoured(make: Make<'_>) {
    let s = make(BackendSettings {
        history: 3,
        ..BackendSettings::default()
    });
    for i in 1..=5 {
        put(&*s.backend, "w", "k", b"v", at(i));
    }
    let history = s
        .backend
        .history(&ws("w"), &name("k"), at(10))
        .expect("history");
    let numbers: Vec<u32> = history.versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, vec![3, 4, 5]);
}

/// ROTATE of a secret that does not exist is `SECRET_NOT_FOUND`.
pub fn rotate_of_a_missing_secret_is_not_found(make: Make<'_>) {
    let s = fresh(make);
    let r = s
        .backend
        .rotate(&ws("w"), &name("nope"), value(b"x"), at(0));
    assert_eq!(code(r), ErrorCode::SecretNotFound);
    assert_eq!(
        get(&*s.backend, "w", "nope", at(1)),
        Err(ErrorCode::SecretNotFound)
    );
}

/// ROTATE writes a new version, keeps labels and expiry, reports both version numbers.
pub fn rotate_keeps_labels_and_expiry(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    let l = labels(&[("env", "prod")]);
    b.store(
        &ws("w"),
        &name("k"),
        value(b"old"),
        Some(l.clone()),
        ExpiryChange::Set(at(1000)),
        at(0),
    )
    .expect("store");
    let r = b
        .rotate(&ws("w"), &name("k"), value(b"new"), at(5))
        .expect("rotate");
    assert_eq!(
        (r.previous_version, r.new_version, r.updated_at),
        (1, 2, at(5))
    );
    let got = b
        .retrieve(&ws("w"), &name("k"), None, at(6))
        .expect("retrieve");
    assert_eq!(got.value.expose_secret(), b"new");
    assert_eq!(got.labels, l, "labels kept");
    assert_eq!(got.expires_at, Some(at(1000)), "expiry kept");
    let old = b
        .retrieve(&ws("w"), &name("k"), Some(1), at(6))
        .expect("old version");
    assert_eq!(old.value.expose_secret(), b"old");
}

/// ROTATE enforces the value limit like STORE and changes nothing when it refuses.
pub fn rotate_enforces_the_value_limit(make: Make<'_>) {
    let s = fresh(make);
    put(&*s.backend, "w", "k", b"v1", at(0));
    let too_big = vec![1u8; Limits::AVP.max_secret_value_length as usize + 1];
    let r = s
        .backend
        .rotate(&ws("w"), &name("k"), value(&too_big), at(1));
    assert_eq!(code(r), ErrorCode::ValueTooLarge);
    let got = s
        .backend
        .retrieve(&ws("w"), &name("k"), None, at(2))
        .expect("retrieve");
    assert_eq!((got.version, got.value.expose_secret()), (1, &b"v1"[..]));
}

/// DELETE: `true` then `false` without error; every version goes; numbering restarts.
pub fn delete_removes_every_version_and_restarts_numbering(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    put(b, "w", "k", b"v1", at(0));
    put(b, "w", "k", b"v2", at(1));
    assert!(b.delete(&ws("w"), &name("k"), at(2)).expect("delete"));
    assert!(
        !b.delete(&ws("w"), &name("k"), at(3))
            .expect("second delete is not an error")
    );
    assert_eq!(get(b, "w", "k", at(3)), Err(ErrorCode::SecretNotFound));
    assert_eq!(
        code(b.retrieve(&ws("w"), &name("k"), Some(1), at(3))),
        ErrorCode::SecretNotFound,
        "old versions go with the secret"
    );
    assert_eq!(
        code(b.history(&ws("w"), &name("k"), at(3))),
        ErrorCode::SecretNotFound
    );
    let r = put(b, "w", "k", b"again", at(4));
    assert!(r.created);
    assert_eq!(r.version, 1, "a later store starts again at version 1");
    assert_eq!(r.created_at, at(4));
}

/// LIST: byte order of the name, metadata of the current version.
pub fn list_is_sorted_by_byte_order_and_holds_metadata(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    for n in ["b", "a", "B", "a.b", "a-b", "Z_1"] {
        put(b, "w", n, b"v", at(0));
    }
    put(b, "w", "a", b"v2", at(7));
    let page = b
        .list(&ws("w"), &Labels::empty(), None, 100, at(10))
        .expect("list");
    let got: Vec<&str> = page.secrets.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(got, ["B", "Z_1", "a", "a-b", "a.b", "b"], "byte order");
    let a = &page.secrets[2];
    assert_eq!((a.version, a.created_at, a.updated_at), (2, at(0), at(7)));
    assert!(page.next_cursor.is_none(), "one page holds everything");
}

/// LIST with a label filter returns only secrets carrying every pair exactly.
pub fn list_filter_requires_every_pair(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    let store = |n: &str, l: Labels| {
        b.store(
            &ws("w"),
            &name(n),
            value(b"v"),
            Some(l),
            ExpiryChange::Keep,
            at(0),
        )
        .expect("store");
    };
    store("both", labels(&[("env", "prod"), ("team", "a")]));
    store("env_only", labels(&[("env", "prod")]));
    store("other", labels(&[("env", "dev"), ("team", "a")]));
    store("none", Labels::empty());
    let filter = labels(&[("env", "prod"), ("team", "a")]);
    assert_eq!(names(b, "w", &filter, at(1)), ["both"]);
    assert_eq!(
        names(b, "w", &labels(&[("env", "prod")]), at(1)),
        ["both", "env_only"]
    );
    assert_eq!(names(b, "w", &Labels::empty(), at(1)).len(), 4);
    assert!(
        names(b, "w", &labels(&[("env", "PROD")]), at(1)).is_empty(),
        "exact match"
    );
}

/// The workspace of the "LIST fails for good" report: 20 secrets, each with 64 labels of a
/// 128-byte key and a 1,024-byte value — all within the limits, about 1.5 MB of metadata.
/// Asked for up to 1,000 items, the backend cuts each page to fit one frame, and following
/// the cursor returns every secret once, in order.
pub fn list_pages_fit_a_frame(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    let wide: BTreeMap<String, String> = (0..64)
        .map(|l| (format!("{l:0128}"), "v".repeat(1024)))
        .collect();
    let wide = Labels::new(wide).expect("within the limits");
    let all: Vec<String> = (0..20).map(|i| format!("S{i:02}")).collect();
    for n in &all {
        b.store(
            &ws("w"),
            &name(n),
            value(&[b'x'; 1024]),
            Some(wide.clone()),
            ExpiryChange::Keep,
            at(0),
        )
        .expect("store");
    }
    let mut seen = Vec::new();
    let mut after: Option<SecretName> = None;
    let mut pages = 0;
    loop {
        let page = b
            .list(&ws("w"), &Labels::empty(), after.as_ref(), 1000, at(1))
            .expect("list");
        pages += 1;
        assert!(!page.secrets.is_empty(), "a page makes progress");
        seen.extend(page.secrets.iter().map(|m| m.name.as_str().to_owned()));
        after = page.secrets.last().map(|m| m.name.clone());
        let more = page.next_cursor.is_some();
        let listed = avp_protocol::Response::Listed(page);
        avp_protocol::frame::encode(&listed).expect("every page fits a frame");
        if !more {
            break;
        }
    }
    assert_eq!(seen, all, "every secret once, in order");
    assert!(pages > 1, "20 such secrets do not fit one frame");
}

/// Keyset pagination: pages of `limit`, and a cursor that stays valid when secrets are
/// inserted or deleted between pages (including the one it points after).
pub fn list_pagination_is_keyset_and_stable(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    for n in ["k1", "k3", "k5", "k7", "k9"] {
        put(b, "w", n, b"v", at(0));
    }
    let first = b
        .list(&ws("w"), &Labels::empty(), None, 2, at(1))
        .expect("page 1");
    let got: Vec<&str> = first.secrets.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(got, ["k1", "k3"]);
    let cursor = first.next_cursor.expect("more pages");
    // Between pages: insert before and after the cursor, delete the cursor's own secret.
    put(b, "w", "k0", b"v", at(2));
    put(b, "w", "k4", b"v", at(2));
    assert!(b.delete(&ws("w"), &name("k3"), at(2)).expect("delete"));
    let after = cursor
        .position()
        .expect("a cursor we issued is well-formed");
    let second = b
        .list(&ws("w"), &Labels::empty(), Some(&after), 2, at(3))
        .expect("page 2");
    let got: Vec<&str> = second.secrets.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(got, ["k4", "k5"], "continues right after the cursor");
    let after = second
        .next_cursor
        .expect("more")
        .position()
        .expect("cursor");
    let third = b
        .list(&ws("w"), &Labels::empty(), Some(&after), 2, at(3))
        .expect("page 3");
    let got: Vec<&str> = third.secrets.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(got, ["k7", "k9"]);
    assert!(third.next_cursor.is_none(), "no cursor on the last page");
}

/// Past `expires_at` a secret is invisible to RETRIEVE, LIST, ROTATE, HISTORY and DELETE,
/// and a new STORE starts it again at version 1.
pub fn expired_secrets_are_invisible(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    b.store(
        &ws("w"),
        &name("k"),
        value(b"v"),
        None,
        ExpiryChange::Set(at(10)),
        at(0),
    )
    .expect("store");
    put(b, "w", "stays", b"v", at(0));
    assert_eq!(
        get(b, "w", "k", at(9)),
        Ok(b"v".to_vec()),
        "visible until it expires"
    );
    assert_eq!(get(b, "w", "k", at(10)), Err(ErrorCode::SecretNotFound));
    assert_eq!(names(b, "w", &Labels::empty(), at(10)), ["stays"]);
    assert_eq!(
        code(b.rotate(&ws("w"), &name("k"), value(b"x"), at(11))),
        ErrorCode::SecretNotFound
    );
    assert_eq!(
        code(b.history(&ws("w"), &name("k"), at(11))),
        ErrorCode::SecretNotFound
    );
    assert!(
        !b.delete(&ws("w"), &name("k"), at(11)).expect("delete"),
        "nothing live to delete"
    );
    let r = put(b, "w", "k", b"new", at(12));
    assert!(
        r.created && r.version == 1,
        "an expired secret counts as absent"
    );
    assert_eq!(get(b, "w", "k", at(13)), Ok(b"new".to_vec()));
    let got = b
        .retrieve(&ws("w"), &name("k"), None, at(13))
        .expect("retrieve");
    assert_eq!(
        got.expires_at, None,
        "the old expiry went with the old secret"
    );
}

/// The same name in two workspaces is two secrets; `team` and `team/job` are unrelated.
pub fn workspaces_are_isolated(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    put(b, "team", "k", b"team", at(0));
    put(b, "team/job", "k", b"job", at(0));
    put(b, "team/job", "only_job", b"x", at(0));
    assert_eq!(get(b, "team", "k", at(1)), Ok(b"team".to_vec()));
    assert_eq!(get(b, "team/job", "k", at(1)), Ok(b"job".to_vec()));
    assert_eq!(
        get(b, "team", "only_job", at(1)),
        Err(ErrorCode::SecretNotFound)
    );
    assert_eq!(names(b, "team", &Labels::empty(), at(1)), ["k"]);
    assert!(b.delete(&ws("team"), &name("k"), at(2)).expect("delete"));
    assert_eq!(
        get(b, "team/job", "k", at(3)),
        Ok(b"job".to_vec()),
        "delete stays in its workspace"
    );
}

/// The per-workspace secret count is enforced (`CAPACITY_EXCEEDED`); updates, other
/// workspaces and expired secrets are not affected.
pub fn the_secret_count_per_workspace_is_enforced(make: Make<'_>) {
    let limits = Limits {
        max_secrets_per_workspace: 3,
        ..Limits::AVP
    };
    let s = make(BackendSettings {
        limits,
        ..BackendSettings::default()
    });
    let b = &*s.backend;
    put(b, "w", "a", b"v", at(0));
    put(b, "w", "b", b"v", at(0));
    b.store(
        &ws("w"),
        &name("c"),
        value(b"v"),
        None,
        ExpiryChange::Set(at(50)),
        at(0),
    )
    .expect("store");
    let r = b.store(
        &ws("w"),
        &name("d"),
        value(b"v"),
        None,
        ExpiryChange::Keep,
        at(1),
    );
    assert_eq!(code(r), ErrorCode::CapacityExceeded);
    put(b, "w", "a", b"update", at(2));
    put(b, "other", "d", b"v", at(2));
    put(b, "w", "d", b"v", at(60));
    let r = b.store(
        &ws("w"),
        &name("e"),
        value(b"v"),
        None,
        ExpiryChange::Keep,
        at(61),
    );
    assert_eq!(code(r), ErrorCode::CapacityExceeded);
    assert!(b.delete(&ws("w"), &name("a"), at(62)).expect("delete"));
    put(b, "w", "e", b"v", at(63));
}

/// `counts` reports live secrets and the workspaces holding them.
pub fn counts_report_live_secrets(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    assert_eq!(b.counts(at(0)).secrets, 0);
    put(b, "a", "k1", b"v", at(0));
    put(b, "a", "k2", b"v", at(0));
    b.store(
        &ws("b"),
        &name("k"),
        value(b"v"),
        None,
        ExpiryChange::Set(at(5)),
        at(0),
    )
    .expect("store");
    let before = b.counts(at(1));
    assert_eq!((before.workspaces, before.secrets), (2, 3));
    let after = b.counts(at(5));
    assert_eq!(
        (after.workspaces, after.secrets),
        (1, 2),
        "expired secrets do not count"
    );
}

/// `workspaces` lists each workspace holding live secrets, sorted by id, with its count.
pub fn workspaces_list_live_secrets_by_id(make: Make<'_>) {
    let s = fresh(make);
    let b = &*s.backend;
    assert_eq!(b.workspaces(at(0)).expect("workspaces"), vec![]);
    put(b, "team/b", "k1", b"v", at(0));
    put(b, "a", "k1", b"v", at(0));
    put(b, "a", "k2", b"v", at(0));
    b.store(
        &ws("c"),
        &name("k"),
        value(b"v"),
        None,
        ExpiryChange::Set(at(5)),
        at(0),
    )
    .expect("store");
    assert_eq!(
        b.workspaces(at(1)).expect("workspaces"),
        vec![(ws("a"), 2), (ws("c"), 1), (ws("team/b"), 1)]
    );
    assert_eq!(
        b.workspaces(at(5)).expect("workspaces"),
        vec![(ws("a"), 2), (ws("team/b"), 1)],
        "a workspace whose secrets all expired is not listed"
    );
    assert!(b.delete(&ws("team/b"), &name("k1"), at(6)).expect("delete"));
    assert_eq!(b.workspaces(at(6)).expect("workspaces"), vec![(ws("a"), 2)]);
}
