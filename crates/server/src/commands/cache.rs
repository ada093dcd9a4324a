//! CACHE.*: server-side cache-stampede protection with refresh leases, after memcached's
//! meta-protocol leases (win / stale / recache) and Facebook's memcache leases. The protocol
//! and the client loop are documented in docs/CACHE.md.
//!
//! - `CACHE.GET key [LEASE ms] [WAIT ms]` → `[status, value, token, ttl]`. Status `HIT`
//!   (fresh value), `WIN` (the caller holds the refresh lease `token`: recompute and fill; the
//!   stale or early value, if any, comes along), `STALE` (someone else is refreshing: use the
//!   stale value) or `PENDING` (nothing to serve yet, someone else is refreshing). With WAIT
//!   a `PENDING` read blocks until the entry is filled or its lease ends, at most `ms`; a
//!   null reply means the wait ran out: read again.
//! - `CACHE.FILL key token value ttl-ms [JITTER ms] [GRACE ms] [EARLY ms]` → 1 if stored, 0
//!   if `token` is not the current lease (the fill lost a race with an invalidation or a
//!   lease takeover). Wakes the waiters.
//! - `CACHE.INVALIDATE key [key ...]` → how many entries were marked stale (and their leases
//!   revoked); readers keep getting the stale value while one of them refreshes.
//! - `CACHE.RELEASE key token` → 1 if the lease was dropped (a lease holder giving up).
//!
//! Entries are `flowcache` values (see `flowkv_store::cache_value`); the key's TTL is the hard
//! expiry (fresh time plus grace), and every decision happens under the key's shard lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use flowkv_protocol::{Args, Reply};
use flowkv_store::cache_value::{CacheRead, CacheValue};
use flowkv_store::num::parse_i64;
use flowkv_store::{Entry, Keys, Value, ValueMut, ValueRef};
use rand::Rng;

use crate::blocking::{self, FamilyWait, Served, WaitOp};
use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::server::{unix_ms, Server};

pub static COMMANDS: &[Command] = &[
    Command::new("cache.get", -2, Group::String)
        .flags(WRITE | DENYOOM | FAST | BLOCKING)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .handler(get)
        .doc(
            "Reads a cache entry, granting one caller a refresh lease when it is missing, stale or due for early refresh",
            "7.0.0",
            "O(1)",
        ),
    Command::new("cache.fill", -5, Group::String)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .handler(fill)
        .doc(
            "Stores a recomputed cache value, if the given refresh lease is still current",
            "7.0.0",
            "O(1)",
        ),
    Command::new("cache.invalidate", -2, Group::String)
        .flags(WRITE | FAST)
        .acl(acl::STRING)
        .keys(1, -1, 1)
        .handler(invalidate)
        .doc(
            "Marks cache entries stale and revokes their refresh leases",
            "7.0.0",
            "O(N) where N is the number of keys",
        ),
    Command::new("cache.release", 3, Group::String)
        .flags(WRITE | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .handler(release)
        .doc("Gives up a refresh lease", "7.0.0", "O(1)"),
];

/// Default lease length: how long others wait for a refresh before taking it over.
const DEFAULT_LEASE_MS: u64 = 5_000;
/// Upper bound of any time argument (lease, wait, TTL, jitter, grace): one year.
const MAX_MS: u64 = 365 * 24 * 3600 * 1000;

/// A fresh lease token: unique for the life of the process and, being seeded from the start
/// time, unlikely to repeat a token handed out before a restart. Stays below 2^53 so that
/// clients holding it as a double (JavaScript) keep it exact.
fn next_token() -> u64 {
    static BASE: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| (unix_ms() % (1 << 42)) << 10);
    base + NEXT.fetch_add(1, Relaxed) + 1
}

/// A time argument in ms: 0 to [`MAX_MS`] (`min` 1 where zero makes no sense).
fn ms_arg(arg: &[u8], what: &str, min: u64) -> Result<u64, CmdError> {
    parse_i64(arg)
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| (min..=MAX_MS).contains(v))
        .ok_or_else(|| {
            CmdError::msg(format!(
                "ERR {what} must be an integer number of milliseconds between {min} and {MAX_MS}"
            ))
        })
}

fn token_arg(arg: &[u8]) -> Result<u64, CmdError> {
    parse_i64(arg)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or(CmdError::msg("ERR invalid lease token"))
}

/// The cache entry at `key`, WRONGTYPE for another type.
fn cache_of(e: &Entry) -> Result<&CacheValue, CmdError> {
    match e.value() {
        ValueRef::Cache(c) => Ok(c),
        _ => Err(CmdError::WrongType),
    }
}

/// Wakes clients blocked on `key`, if any.
fn wake(ctx: &mut Ctx<'_>, key: &[u8]) {
    if ctx.srv.blocked.any_waiting() {
        let db = ctx.client.db;
        if let Some(locked) = ctx.locked.as_mut() {
            locked.mark_ready(db, key);
        }
    }
}

/// One read: classifies it, takes the lease when this reader should refresh (creating an
/// empty entry for a miss), and writes `[status, value, token, ttl]` — except for a
/// `PENDING` read when `reply_pending` is false, whose reply the caller decides. Returns the
/// outcome and whether the dataset changed.
fn read(
    keys: &mut Keys<'_, '_>,
    key: &[u8],
    lease_ms: u64,
    out: &mut Reply<'_>,
    reply_pending: bool,
) -> Result<(CacheRead, bool), CmdError> {
    let now = keys.now_ms();
    let class = keys
        .read(key)
        .map(cache_of)
        .transpose()?
        .map(|c| c.classify(now));
    let mut created = false;
    let outcome = match class.flatten() {
        Some(r) => r,
        None => {
            let token = next_token();
            let until = now.saturating_add(lease_ms);
            match keys.write(key) {
                Some(e) => {
                    if let Some(ValueMut::Cache(c)) = e.value_mut() {
                        c.grant(token, until);
                    }
                    // The lease must outlive the entry's hard expiry.
                    if e.expire_at().is_some_and(|at| at < until) {
                        keys.set_expire(key, Some(until));
                    }
                }
                None => {
                    let mut c = CacheValue::placeholder();
                    c.grant(token, until);
                    keys.insert(Entry::new_value(
                        key,
                        Value::Cache(Box::new(c)),
                        Some(until),
                        0,
                    ));
                    created = true;
                }
            }
            CacheRead::Win(token)
        }
    };
    if outcome == CacheRead::Pending && !reply_pending {
        return Ok((outcome, created));
    }
    let (status, token) = match outcome {
        CacheRead::Hit => ("HIT", None),
        CacheRead::Win(t) => ("WIN", Some(t)),
        CacheRead::Stale => ("STALE", None),
        CacheRead::Pending => ("PENDING", None),
    };
    let c = keys.peek(key).map(cache_of).transpose()?;
    out.array(4);
    out.simple(status.as_bytes());
    match c.and_then(|c| c.value.as_deref()) {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
    match token {
        Some(t) => out.int(t as i64),
        None => out.null(),
    }
    out.int(c.map_or(-2, |c| c.ttl_ms(now)));
    Ok((outcome, created))
}

/// CACHE.GET key [LEASE ms] [WAIT ms].
fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut lease_ms, mut wait_ms) = (DEFAULT_LEASE_MS, 0);
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        let val = args.try_get(i + 1).ok_or(CmdError::Syntax)?;
        if opt.eq_ignore_ascii_case(b"lease") {
            lease_ms = ms_arg(val, "LEASE", 1)?;
        } else if opt.eq_ignore_ascii_case(b"wait") {
            wait_ms = ms_arg(val, "WAIT", 0)?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let key = args.get(1);
    let (mut keys, out) = ctx.keys_out();
    let (outcome, created) = read(&mut keys, key, lease_ms, out, wait_ms == 0)?;
    let lease_end = keys
        .peek(key)
        .and_then(|e| cache_of(e).ok())
        .and_then(|c| c.lease)
        .map(|l| l.until);
    ctx.dirty += u64::from(created);
    // Leases are not data (a restart drops them): nothing to replay.
    ctx.prevent_propagation();
    if outcome == CacheRead::Pending && wait_ms > 0 {
        // Wait for the fill, but no longer than the lease: once it ends, a new read may win.
        let deadline = ctx.now_ms.saturating_add(wait_ms);
        let deadline = lease_end.map_or(deadline, |end| deadline.min(end));
        let op = WaitOp::Family(Arc::new(CacheWait { lease_ms }));
        blocking::block(ctx, &[key], op, deadline);
    }
    Ok(())
}

/// CACHE.FILL key token value ttl-ms [JITTER ms] [GRACE ms] [EARLY ms]: stores `value` as
/// fresh for `ttl-ms` plus a random 0..=JITTER, servable as stale for GRACE more, with
/// readers refreshing EARLY ms before it goes stale; only under the current lease.
fn fill(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let token = token_arg(args.get(2))?;
    let value = args.get(3);
    let ttl = ms_arg(args.get(4), "TTL", 1)?;
    let (mut jitter, mut grace, mut early) = (0, 0, 0);
    let mut i = 5;
    while i < args.len() {
        let opt = args.get(i);
        let val = args.try_get(i + 1).ok_or(CmdError::Syntax)?;
        if opt.eq_ignore_ascii_case(b"jitter") {
            jitter = ms_arg(val, "JITTER", 0)?;
        } else if opt.eq_ignore_ascii_case(b"grace") {
            grace = ms_arg(val, "GRACE", 0)?;
        } else if opt.eq_ignore_ascii_case(b"early") {
            early = ms_arg(val, "EARLY", 0)?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let key = args.get(1);
    let now = ctx.now_ms;
    let fresh_until = now + ttl + rand::thread_rng().gen_range(0..=jitter);
    let mut keys = ctx.keys();
    let stored = match keys.write(key) {
        None => false,
        Some(e) => match e.value_mut() {
            Some(ValueMut::Cache(c)) => c.fill(token, value, fresh_until, early),
            _ => return Err(CmdError::WrongType),
        },
    };
    if stored {
        keys.set_expire(key, Some(fresh_until + grace));
        ctx.dirty += 1;
        wake(ctx, key);
        // The token and the jittered TTL replay as the stored state.
        crate::propagate::key_state(ctx, key);
    }
    ctx.prevent_propagation();
    ctx.out.int(i64::from(stored));
    Ok(())
}

/// CACHE.INVALIDATE key [key ...]: marks each entry stale and revokes its lease; an entry
/// that never got a value is deleted. Counts the entries invalidated; keys of other types
/// are WRONGTYPE (checked before anything changes).
fn invalidate(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut keys = ctx.keys();
    for key in args.iter().skip(1) {
        if let Some(e) = keys.peek(key) {
            cache_of(e)?;
        }
    }
    let mut n = 0;
    for key in args.iter().skip(1) {
        let keep = match keys.write(key).and_then(Entry::value_mut) {
            Some(ValueMut::Cache(c)) => c.invalidate(),
            _ => continue,
        };
        if !keep {
            keys.remove(key);
        }
        n += 1;
    }
    ctx.dirty += n;
    for key in args.iter().skip(1) {
        wake(ctx, key);
        crate::propagate::key_state(ctx, key);
    }
    ctx.prevent_propagation();
    ctx.out.int(n as i64);
    Ok(())
}

/// CACHE.RELEASE key token: drops the lease if `token` holds it, so the next reader (or
/// the first waiter) takes it. 1 if dropped, 0 otherwise.
fn release(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let token = token_arg(args.get(2))?;
    let key = args.get(1);
    let mut keys = ctx.keys();
    let released = match keys.write(key).and_then(Entry::value_mut) {
        None => false,
        Some(ValueMut::Cache(c)) => c.release(token),
        Some(_) => return Err(CmdError::WrongType),
    };
    if released {
        wake(ctx, key);
    }
    ctx.prevent_propagation();
    ctx.out.int(i64::from(released));
    Ok(())
}

/// A CACHE.GET blocked on a refresh: served once the entry is filled (HIT), or when its
/// lease is dropped or the entry invalidated (the first waiter then wins the new lease).
#[derive(Debug)]
struct CacheWait {
    lease_ms: u64,
}

impl FamilyWait for CacheWait {
    /// True unless the read would still be PENDING.
    fn can_serve(&self, keys: &mut Keys<'_, '_>, key: &[u8]) -> bool {
        let now = keys.now_ms();
        match keys.peek(key).map(Entry::value) {
            Some(ValueRef::Cache(c)) => c.classify(now) != Some(CacheRead::Pending),
            _ => true,
        }
    }

    fn serve(
        &self,
        _: &Server,
        keys: &mut Keys<'_, '_>,
        key: &[u8],
        out: &mut Reply<'_>,
    ) -> Served {
        match read(keys, key, self.lease_ms, out, false) {
            Ok((CacheRead::Pending, _)) => Served::NotReady,
            Ok((_, created)) => Served::Done(u64::from(created)),
            Err(e) => {
                out.error(&e.to_string());
                Served::Done(0)
            }
        }
    }
}
