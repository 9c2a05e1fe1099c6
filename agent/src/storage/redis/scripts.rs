//! The Redis side of every operation: Lua scripts, each atomic on the server, and typed
//! wrappers around them.
//!
//! Redis cannot decrypt anything, so it cannot decide a write itself. A write is
//! therefore optimistic: the agent reads the secret's state, decides the new version and
//! encrypts it, then a script applies it only if the secret's current-version tag is still
//! the one it read (compare-and-set). A concurrent writer makes the script answer
//! `conflict` and the agent starts over from a fresh read, so no update is lost and no
//! version number is issued twice. Everything a write changes — the value record, the
//! history trim, the metadata, the workspace generation — changes in the one script, so
//! Redis never holds half a write.
//!
//! Every write also appends `<generation>:<S>:<version tag>` to the workspace's log (the
//! last [`LOG_LEN`] writes), so an agent whose listing is a few generations behind fetches
//! only the secrets that changed ([`sync`]) instead of the whole workspace. The version
//! tag is random, so the entry for a generation also tells two histories apart (after
//! Redis is restored from a backup, say): a listing whose entry is gone is rebuilt.
//!
//! The counter and the log are written first in each script: Redis does not undo a
//! script's earlier commands when a later one fails (a misconfigured ACL, say), and a
//! bumped counter with a missing log entry only makes other agents re-read everything,
//! whereas data changed under an unbumped counter would leave their listings stale.
//!
//! Every write script is idempotent, so the connection layer may run it twice after a
//! broken link: `put` answers `done` when the tag it was about to install is already
//! there — current, or a retained older version because another agent wrote on top of it
//! between the first attempt and the retry (tags are 128 random bits, so only this write
//! can have installed it; were it trimmed from the history meanwhile, the retry would see a
//! conflict and write the value once more, as a newer version); `delete`, told it is a retry, answers `done` when the secret is already gone.

use super::keys::{SecretKeys, WORKSPACES, WorkspaceKeys};
use ::redis::{Connection, RedisResult, Script};
use std::sync::LazyLock;

/// Writes kept in a workspace's log: a listing at most this far behind catches up with
/// only the changed records.
pub const LOG_LEN: u64 = 1024;

/// KEYS: meta hash, secret hash, generation, workspace set, log.
/// ARGV: S, expected current tag ("" = none), new tag, value record, meta record,
/// max secrets per workspace, W, mode ("restart" | "append"), log length, tags to drop...
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('HGET', KEYS[2], 'c') or ''
if cur == ARGV[3] or redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return {'done', 0} end
if cur ~= ARGV[2] then return {'conflict', 0} end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
   and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then
  return {'full', 0}
end
local g = redis.call('INCR', KEYS[3])
redis.call('RPUSH', KEYS[5], g .. ':' .. ARGV[1] .. ':' .. ARGV[3])
redis.call('LTRIM', KEYS[5], -tonumber(ARGV[9]), -1)
if ARGV[8] == 'restart' then
  redis.call('DEL', KEYS[2])
else
  for i = 10, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4], 'c', ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
redis.call('SADD', KEYS[4], ARGV[7])
return {'ok', g}
",
    )
});

/// KEYS: meta hash, secret hash, generation, workspace set, log.
/// ARGV: S, expected current tag, W, "retry" | "first", log length.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('HGET', KEYS[2], 'c') or ''
if cur == '' and ARGV[4] == 'retry' then return {'done', 0} end
if cur ~= ARGV[2] then return {'conflict', 0} end
local g = redis.call('INCR', KEYS[3])
redis.call('RPUSH', KEYS[5], g .. ':' .. ARGV[1] .. ':' .. ARGV[2])
redis.call('LTRIM', KEYS[5], -tonumber(ARGV[5]), -1)
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[4], ARGV[3]) end
return {'ok', g}
",
    )
});

/// KEYS: meta hash, secret hash. ARGV: S, "value" | "meta".
/// Answers {} when absent, else {current tag, meta record[, current value record]}, read
/// at one instant.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local c = redis.call('HGET', KEYS[2], 'c')
if not c then return {} end
local m = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == 'value' then return {c, m, redis.call('HGET', KEYS[2], c)} end
return {c, m}
",
    )
});

/// KEYS: generation, meta hash, log. ARGV: the caller's generation ("" = none), the log
/// entry it has for it, the log length.
/// Answers {generation, its log entry, mode, {S, record-or-nil, ...}} at one instant:
/// `same` (nothing changed), `delta` (the records of every secret written since, nil for
/// deleted ones) when the caller's entry is still in the log, else `full` (every record).
static SYNC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local g = tonumber(redis.call('GET', KEYS[1]) or '0')
local head = redis.call('LINDEX', KEYS[3], -1) or ''
if ARGV[1] ~= '' then
  local since = tonumber(ARGV[1])
  local n = g - since
  local want = n
  if since > 0 then want = n + 1 end
  if n >= 0 and want <= tonumber(ARGV[3]) then
    local entries = {}
    if want > 0 then entries = redis.call('LRANGE', KEYS[3], -want, -1) end
    local ok = #entries == want
    if ok and since > 0 then ok = entries[1] == ARGV[2] end
    if ok and since == 0 and n > 0 then ok = string.match(entries[1], '^(%d+):') == '1' end
    if ok then
      if n == 0 then return {g, head, 'same', {}} end
      local first = 1
      if since > 0 then first = 2 end
      local seen, fields = {}, {}
      for i = first, #entries do
        local s = string.match(entries[i], '^%d+:([^:]+):')
        if s and not seen[s] then
          seen[s] = true
          fields[#fields + 1] = s
        end
      end
      local out = {}
      if #fields > 0 then
        local records = redis.call('HMGET', KEYS[2], unpack(fields))
        for i, f in ipairs(fields) do
          out[#out + 1] = f
          out[#out + 1] = records[i]
        end
      end
      return {g, head, 'delta', out}
    end
  end
end
return {g, head, 'full', redis.call('HGETALL', KEYS[2])}
",
    )
});

/// KEYS: identity. ARGV: the new wrapped identity. Creates it unless a vault exists; a
/// retry finds its own (age output is random, so equal bytes are ours).
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return 1 end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
",
    )
});

/// KEYS: identity. ARGV: the wrapped identity read, its replacement.
static REWRAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[2] then return 1 end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Metadata records as (field `S`, ciphertext).
pub type Records = Vec<(String, Vec<u8>)>;

/// What a write script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; the workspace is now at this generation.
    Applied(u64),
    /// Already applied by an earlier attempt whose reply was lost.
    AlreadyApplied,
    /// The secret changed since it was read: read again and retry.
    Conflict,
    /// Creating the secret would exceed the per-workspace limit.
    Full,
}

fn outcome((status, generation): (String, u64)) -> Outcome {
    match status.as_str() {
        "ok" => Outcome::Applied(generation),
        "done" => Outcome::AlreadyApplied,
        "full" => Outcome::Full,
        _ => Outcome::Conflict,
    }
}

/// A new version, encrypted and ready to install.
#[derive(Debug)]
pub struct Put<'a> {
    /// The current-version tag read before planning; `None` when the secret was absent.
    pub expected: Option<&'a str>,
    /// The new version's tag.
    pub tag: &'a str,
    /// The new version's value record.
    pub value: &'a [u8],
    /// The secret's new metadata record.
    pub meta: &'a [u8],
    /// Start the secret afresh (drop every old version) rather than append.
    pub restart: bool,
    /// Version tags trimmed from the history (when appending).
    pub drop: &'a [String],
    /// The per-workspace secret limit.
    pub max_secrets: u32,
}

/// Installs a new version if the secret is still as read.
pub fn put(
    conn: &mut Connection,
    ws: &WorkspaceKeys,
    secret: &SecretKeys,
    put: &Put<'_>,
) -> RedisResult<Outcome> {
    let mut call = PUT.prepare_invoke();
    call.key(&ws.meta)
        .key(&secret.key)
        .key(&ws.generation)
        .key(WORKSPACES)
        .key(&ws.log)
        .arg(&secret.field)
        .arg(put.expected.unwrap_or(""))
        .arg(put.tag)
        .arg(put.value)
        .arg(put.meta)
        .arg(put.max_secrets)
        .arg(&ws.tag)
        .arg(if put.restart { "restart" } else { "append" })
        .arg(LOG_LEN);
    for tag in put.drop {
        call.arg(tag);
    }
    call.invoke(conn).map(outcome)
}

/// Deletes every version if the secret is still as read.
pub fn delete(
    conn: &mut Connection,
    ws: &WorkspaceKeys,
    secret: &SecretKeys,
    expected: &str,
    retry: bool,
) -> RedisResult<Outcome> {
    DELETE
        .key(&ws.meta)
        .key(&secret.key)
        .key(&ws.generation)
        .key(WORKSPACES)
        .key(&ws.log)
        .arg(&secret.field)
        .arg(expected)
        .arg(&ws.tag)
        .arg(if retry { "retry" } else { "first" })
        .arg(LOG_LEN)
        .invoke(conn)
        .map(outcome)
}

/// A secret as stored, read at one instant.
#[derive(Debug)]
pub struct Stored {
    /// The current version's tag.
    pub current: String,
    /// The metadata record (absent only if Redis was tampered with).
    pub meta: Option<Vec<u8>>,
    /// The current value record, when asked for.
    pub value: Option<Vec<u8>>,
}

/// Reads a secret's current tag and metadata, and its current value if `with_value`.
pub fn read(
    conn: &mut Connection,
    ws: &WorkspaceKeys,
    secret: &SecretKeys,
    with_value: bool,
) -> RedisResult<Option<Stored>> {
    let parts: Vec<Option<Vec<u8>>> = READ
        .key(&ws.meta)
        .key(&secret.key)
        .arg(&secret.field)
        .arg(if with_value { "value" } else { "meta" })
        .invoke(conn)?;
    let mut parts = parts.into_iter();
    let Some(Some(current)) = parts.next() else {
        return Ok(None);
    };
    Ok(Some(Stored {
        current: String::from_utf8_lossy(&current).into_owned(),
        meta: parts.next().flatten(),
        value: parts.next().flatten(),
    }))
}

/// One retained (non-current) version's value record.
pub fn read_version(
    conn: &mut Connection,
    secret: &SecretKeys,
    tag: &str,
) -> RedisResult<Option<Vec<u8>>> {
    ::redis::cmd("HGET").arg(&secret.key).arg(tag).query(conn)
}

/// The log entry a write that took a workspace to `generation` appended.
pub fn log_entry(generation: u64, field: &str, tag: &str) -> String {
    format!("{generation}:{field}:{tag}")
}

/// A point in a workspace's history: a generation and the log entry of the write that
/// made it ("" for generation 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The generation.
    pub generation: u64,
    /// Its log entry.
    pub head: String,
}

/// What changed in a workspace since a [`Position`].
#[derive(Debug)]
pub enum Changes {
    /// Nothing.
    Same,
    /// These secrets (field, record; `None` when deleted) and no others.
    Delta(Vec<(String, Option<Vec<u8>>)>),
    /// Everything: every metadata record of the workspace.
    Full(Records),
}

/// Brings a listing at `since` (if any) up to date: where the workspace is now, and what
/// changed.
pub fn sync(
    conn: &mut Connection,
    ws: &WorkspaceKeys,
    since: Option<&Position>,
) -> RedisResult<(Position, Changes)> {
    let (generation, head, mode, flat): (u64, String, String, Vec<Option<Vec<u8>>>) = SYNC
        .key(&ws.generation)
        .key(&ws.meta)
        .key(&ws.log)
        .arg(since.map_or(String::new(), |p| p.generation.to_string()))
        .arg(since.map_or("", |p| p.head.as_str()))
        .arg(LOG_LEN)
        .invoke(conn)?;
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(field), Some(record)) = (flat.next(), flat.next()) {
        let field = String::from_utf8_lossy(&field.unwrap_or_default()).into_owned();
        pairs.push((field, record));
    }
    let changes = match mode.as_str() {
        "same" => Changes::Same,
        "delta" => Changes::Delta(pairs),
        _ => Changes::Full(
            pairs
                .into_iter()
                .filter_map(|(field, record)| Some((field, record?)))
                .collect(),
        ),
    };
    Ok((Position { generation, head }, changes))
}

/// The tags of every workspace holding secrets.
pub fn workspaces(conn: &mut Connection) -> RedisResult<Vec<String>> {
    ::redis::cmd("SMEMBERS").arg(WORKSPACES).query(conn)
}

/// The wrapped identity, if a vault exists.
pub fn identity(conn: &mut Connection) -> RedisResult<Option<Vec<u8>>> {
    ::redis::cmd("GET").arg(super::keys::IDENTITY).query(conn)
}

/// Whether a vault exists.
pub fn has_identity(conn: &mut Connection) -> RedisResult<bool> {
    ::redis::cmd("EXISTS")
        .arg(super::keys::IDENTITY)
        .query(conn)
}

/// Stores the wrapped identity unless one exists; `false` if one did.
pub fn create_identity(conn: &mut Connection, wrapped: &[u8]) -> RedisResult<bool> {
    let created: i64 = CREATE
        .key(super::keys::IDENTITY)
        .arg(wrapped)
        .invoke(conn)?;
    Ok(created == 1)
}

/// Replaces the wrapped identity if it is still `old`; `false` if it changed meanwhile.
pub fn rewrap_identity(conn: &mut Connection, old: &[u8], new: &[u8]) -> RedisResult<bool> {
    let replaced: i64 = REWRAP
        .key(super::keys::IDENTITY)
        .arg(old)
        .arg(new)
        .invoke(conn)?;
    Ok(replaced == 1)
}
