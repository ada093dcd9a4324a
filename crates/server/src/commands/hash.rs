//! Hash commands: HSET and friends, counters, whole-hash reads, HRANDFIELD and HSCAN.
//!
//! Semantics, replies and error lines follow Redis 7.0's `t_hash.c`. A hash starts in the
//! compact listpack encoding and converts to a hashtable past `hash-max-listpack-entries`
//! fields or a field/value longer than `hash-max-listpack-value` bytes (see
//! [`flowkv_store::hash_value`]). A hash left without fields is deleted, as Redis deletes
//! empty collections.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

use flowkv_protocol::Args;
use flowkv_store::glob::glob_match;
use flowkv_store::hash_value::{HashLimits, HashValue};
use flowkv_store::num::{format_incr_float, parse_cursor, parse_f64, parse_i64, ulp};
use flowkv_store::{Entry, Value, ValueMut, ValueRef};
use rand::seq::SliceRandom;

use super::collection_args::{random_count, scan_options};
use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::commands::string::int_arg;
use crate::config::notify::{GENERIC, HASH};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;

const fn hash_cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    h: crate::command::Handler,
) -> Command {
    Command::new(name, arity, Group::Hash)
        .flags(flags)
        .acl(acl::HASH)
        .keys(1, 1, 1)
        .handler(h)
}

pub static COMMANDS: &[Command] = &[
    hash_cmd("hset", -4, WRITE | DENYOOM | FAST, hset).doc(
        "Set the string value of a hash field",
        "2.0.0",
        "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
    ),
    hash_cmd("hsetnx", 4, WRITE | DENYOOM | FAST, hsetnx)
        .key_specs(&[ks::key_at(1, ks::RW | ks::INSERT)])
        .doc(
            "Set the value of a hash field, only if the field does not exist",
            "2.0.0",
            "O(1)",
        ),
    hash_cmd("hmset", -4, WRITE | DENYOOM | FAST, hset).doc(
        "Set multiple hash fields to multiple values",
        "2.0.0",
        "O(N) where N is the number of fields being set.",
    ),
    hash_cmd("hget", 3, READONLY | FAST, hget).doc(
        "Get the value of a hash field",
        "2.0.0",
        "O(1)",
    ),
    hash_cmd("hmget", -3, READONLY | FAST, hmget).doc(
        "Get the values of all the given hash fields",
        "2.0.0",
        "O(N) where N is the number of fields being requested.",
    ),
    hash_cmd("hgetall", 2, READONLY, hgetall)
        .tips(&["nondeterministic_output_order"])
        .doc(
            "Get all the fields and values in a hash",
            "2.0.0",
            "O(N) where N is the size of the hash.",
        ),
    hash_cmd("hkeys", 2, READONLY, hkeys)
        .tips(&["nondeterministic_output_order"])
        .doc(
            "Get all the fields in a hash",
            "2.0.0",
            "O(N) where N is the size of the hash.",
        ),
    hash_cmd("hvals", 2, READONLY, hvals)
        .tips(&["nondeterministic_output_order"])
        .doc(
            "Get all the values in a hash",
            "2.0.0",
            "O(N) where N is the size of the hash.",
        ),
    hash_cmd("hdel", -3, WRITE | FAST, hdel)
        .key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .doc(
            "Delete one or more hash fields",
            "2.0.0",
            "O(N) where N is the number of fields to be removed.",
        ),
    hash_cmd("hexists", 3, READONLY | FAST, hexists)
        .key_specs(&[ks::key_at(1, ks::RO)])
        .doc(
            "Determine if a hash field exists",
            "2.0.0",
            "O(1)",
        ),
    hash_cmd("hlen", 2, READONLY | FAST, hlen)
        .key_specs(&[ks::key_at(1, ks::RO)])
        .doc(
            "Get the number of fields in a hash",
            "2.0.0",
            "O(1)",
        ),
    hash_cmd("hstrlen", 3, READONLY | FAST, hstrlen)
        .key_specs(&[ks::key_at(1, ks::RO)])
        .doc(
            "Get the length of the value of a hash field",
            "3.2.0",
            "O(1)",
        ),
    hash_cmd("hincrby", 4, WRITE | DENYOOM | FAST, hincrby)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .doc(
            "Increment the integer value of a hash field by the given number",
            "2.0.0",
            "O(1)",
        ),
    hash_cmd("hincrbyfloat", 4, WRITE | DENYOOM | FAST, hincrbyfloat)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .doc(
            "Increment the float value of a hash field by the given amount",
            "2.6.0",
            "O(1)",
        ),
    hash_cmd("hrandfield", -2, READONLY, hrandfield)
        .tips(&["nondeterministic_output"])
        .doc(
            "Get one or multiple random fields from a hash",
            "6.2.0",
            "O(N) where N is the number of fields returned",
        ),
    hash_cmd("hscan", -3, READONLY, hscan)
        .tips(&["nondeterministic_output"])
        .doc(
            "Incrementally iterate hash fields and associated values",
            "2.8.0",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
        ),
];

/// The configured listpack thresholds.
///
/// Read from the configuration on each write: two directive lookups, which are cheap next
/// to a network round trip; a hot cache in `config::Hot` would make them two atomic loads.
fn limits(ctx: &Ctx<'_>) -> HashLimits {
    let hot = &ctx.srv.config.hot;
    let clamp = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    HashLimits {
        max_entries: clamp(hot.hash_max_listpack_entries.load(Relaxed)),
        max_value: clamp(hot.hash_max_listpack_value.load(Relaxed)),
    }
}

/// The hash held by an entry, or WRONGTYPE.
fn as_hash(e: &Entry) -> Result<&HashValue, CmdError> {
    match e.value() {
        ValueRef::Hash(h) => Ok(h),
        _ => Err(CmdError::WrongType),
    }
}

/// Runs `f` on the hash at `key` for modification, creating an empty one if the key is
/// missing (kept only if `f` left fields in it). WRONGTYPE for another type. Deletes the key
/// if `f` emptied the hash.
fn update<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut HashValue) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let mut keys = ctx.keys();
    match keys.write(key) {
        Some(e) => {
            let Some(ValueMut::Hash(h)) = e.value_mut() else {
                return Err(CmdError::WrongType);
            };
            let r = f(h)?;
            if h.is_empty() {
                keys.remove(key);
            }
            Ok(r)
        }
        None => {
            let mut h = HashValue::default();
            let r = f(&mut h)?;
            if !h.is_empty() {
                keys.insert(Entry::new_value(key, Value::Hash(h), None, 0));
            }
            Ok(r)
        }
    }
}

/// HSET / HMSET key field value [field value ...]: HSET replies with the number of new
/// fields, HMSET with OK. Every pair counts as one change.
fn hset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Arity(ctx.cmd.name.to_string()));
    }
    let lim = limits(ctx);
    let created = update(ctx, args.get(1), |h| {
        let mut created = 0;
        for i in (2..args.len()).step_by(2) {
            created += i64::from(h.set(args.get(i), args.get(i + 1), lim));
        }
        Ok(created)
    })?;
    ctx.dirty += (args.len() as u64 - 2) / 2;
    notify(ctx, HASH, "hset", args.get(1));
    if ctx.cmd.name == "hset" {
        ctx.out.int(created);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

/// HSETNX: sets the field only if it is absent; 1 if it did.
fn hsetnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let lim = limits(ctx);
    let (field, value) = (args.get(2), args.get(3));
    let done = update(ctx, args.get(1), |h| {
        Ok(!h.contains(field) && h.set(field, value, lim))
    })?;
    if done {
        notify(ctx, HASH, "hset", args.get(1));
    }
    ctx.dirty += u64::from(done);
    ctx.out.int(i64::from(done));
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    match keys.read(args.get(1)) {
        None => out.null(),
        Some(e) => match as_hash(e)?.get(args.get(2)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        },
    }
    Ok(())
}

/// HMGET: a missing key is an empty hash, so every field is null.
fn hmget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let h = keys.read(args.get(1)).map(as_hash).transpose()?;
    out.array(args.len() - 2);
    for field in args.iter().skip(2) {
        match h.and_then(|h| h.get(field)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
    Ok(())
}

/// What HGETALL / HKEYS / HVALS return of each pair.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Fields,
    Values,
    Both,
}

/// HGETALL (a map in RESP3), HKEYS, HVALS (arrays).
fn get_all(ctx: &mut Ctx<'_>, key: &[u8], part: Part) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let h = keys.read(key).map(as_hash).transpose()?;
    let n = h.map_or(0, HashValue::len);
    if part == Part::Both {
        out.map(n);
    } else {
        out.array(n);
    }
    for (f, v) in h.into_iter().flat_map(HashValue::iter) {
        if part != Part::Values {
            out.bulk(f);
        }
        if part != Part::Fields {
            out.bulk(v);
        }
    }
    Ok(())
}

fn hgetall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    get_all(ctx, args.get(1), Part::Both)
}

fn hkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    get_all(ctx, args.get(1), Part::Fields)
}

fn hvals(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    get_all(ctx, args.get(1), Part::Values)
}

/// HDEL: the number of fields removed; the key goes when its last field does.
fn hdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let deleted = {
        let mut keys = ctx.keys();
        let Some(e) = keys.write(key) else {
            ctx.out.int(0);
            return Ok(());
        };
        let Some(ValueMut::Hash(h)) = e.value_mut() else {
            return Err(CmdError::WrongType);
        };
        let deleted = args.iter().skip(2).filter(|f| h.remove(f)).count();
        let emptied = h.is_empty();
        if emptied {
            keys.remove(key);
        }
        (deleted, emptied)
    };
    let (deleted, emptied) = deleted;
    if deleted > 0 {
        notify(ctx, HASH, "hdel", key);
        if emptied {
            notify(ctx, GENERIC, "del", key);
        }
    }
    ctx.dirty += deleted as u64;
    ctx.out.int(deleted as i64);
    Ok(())
}

/// Replies with an integer computed from the hash at `key` (0 if the key is missing).
fn int_of(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(&HashValue) -> usize) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let n = match keys.read(key) {
        None => 0,
        Some(e) => f(as_hash(e)?),
    };
    out.int(n as i64);
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    int_of(ctx, args.get(1), |h| usize::from(h.contains(args.get(2))))
}

fn hlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    int_of(ctx, args.get(1), HashValue::len)
}

fn hstrlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    int_of(ctx, args.get(1), |h| {
        h.get(args.get(2)).map_or(0, <[u8]>::len)
    })
}

/// HINCRBY: a missing field counts as 0; the stored value must be a strict integer.
fn hincrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let by = int_arg(args.get(3))?;
    let lim = limits(ctx);
    let field = args.get(2);
    let new = update(ctx, args.get(1), |h| {
        let old = match h.get(field) {
            None => 0,
            Some(v) => parse_i64(v).ok_or(CmdError::msg("ERR hash value is not an integer"))?,
        };
        let new = old.checked_add(by).ok_or(CmdError::Overflow)?;
        h.set(field, new.to_string().as_bytes(), lim);
        Ok(new)
    })?;
    ctx.dirty += 1;
    notify(ctx, HASH, "hincrby", args.get(1));
    ctx.out.int(new);
    Ok(())
}

/// HINCRBYFLOAT: like INCRBYFLOAT on one field; the result is stored in plain decimal.
fn hincrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let by = parse_f64(args.get(3)).ok_or(CmdError::NotFloat)?;
    if !by.is_finite() {
        return Err(CmdError::msg("ERR value is NaN or Infinity"));
    }
    let lim = limits(ctx);
    let field = args.get(2);
    let text = update(ctx, args.get(1), |h| {
        let old = match h.get(field) {
            None => 0.0,
            Some(v) => parse_f64(v).ok_or(CmdError::msg("ERR hash value is not a float"))?,
        };
        let new = old + by;
        if !new.is_finite() {
            return Err(CmdError::msg("ERR increment would produce NaN or Infinity"));
        }
        let text = format_incr_float(new, ulp(old) + ulp(by) + ulp(new));
        h.set(field, &text, lim);
        Ok(text)
    })?;
    ctx.dirty += 1;
    notify(ctx, HASH, "hincrbyfloat", args.get(1));
    // The result is propagated, not the float arithmetic (as Redis does).
    ctx.propagate_as(&[b"HSET", args.get(1), args.get(2), &text]);
    ctx.out.bulk(&text);
    Ok(())
}

/// Writes one HRANDFIELD pick: the field, and with WITHVALUES its value (as a 2-element
/// array in RESP3, flat in RESP2).
fn reply_pick(out: &mut flowkv_protocol::Reply<'_>, with_values: bool, f: &[u8], v: &[u8]) {
    if with_values && out.is_resp3() {
        out.array(2);
    }
    out.bulk(f);
    if with_values {
        out.bulk(v);
    }
}

/// HRANDFIELD key [count [WITHVALUES]]. Without a count: one field (null if missing). A
/// positive count returns distinct fields (at most the hash's size), a negative one that
/// many picks with repeats.
fn hrandfield(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() == 2 {
        let (mut keys, out) = ctx.keys_out();
        let h = keys.read(args.get(1)).map(as_hash).transpose()?;
        match h.and_then(|h| h.random(&mut rand::thread_rng())) {
            Some((f, _)) => out.bulk(f),
            None => out.null(),
        }
        return Ok(());
    }
    let (l, with_values) = random_count(args, Some(b"withvalues"))?;
    let (mut keys, out) = ctx.keys_out();
    let Some(h) = keys.read(args.get(1)).map(as_hash).transpose()? else {
        out.array(0);
        return Ok(());
    };
    let count = l.unsigned_abs() as usize;
    let flat = if with_values && !out.is_resp3() { 2 } else { 1 };
    let mut rng = rand::thread_rng();
    if l < 0 || count == 1 {
        out.array(count * flat);
        for _ in 0..count {
            if let Some((f, v)) = h.random(&mut rng) {
                reply_pick(out, with_values, f, v);
            }
        }
        return Ok(());
    }
    let size = h.len();
    let picks: Vec<(&[u8], &[u8])> = if count >= size {
        h.iter().collect()
    } else if count * 3 > size {
        // Many of the fields: shuffle them all and keep a prefix.
        let mut all: Vec<_> = h.iter().collect();
        all.partial_shuffle(&mut rng, count);
        all.truncate(count);
        all
    } else {
        // Few of many: random picks until `count` distinct fields (expected O(count)).
        let mut seen = HashSet::with_capacity(count);
        let mut picks = Vec::with_capacity(count);
        while picks.len() < count {
            if let Some((f, v)) = h.random(&mut rng) {
                if seen.insert(f) {
                    picks.push((f, v));
                }
            }
        }
        picks
    };
    out.array(picks.len() * flat);
    for (f, v) in picks {
        reply_pick(out, with_values, f, v);
    }
    Ok(())
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]. The cursor is checked first, then the
/// key's type, then the options, in Redis's order. A listpack hash comes back whole with
/// cursor 0.
fn hscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2)).ok_or(CmdError::msg("ERR invalid cursor"))?;
    let (mut keys, out) = ctx.keys_out();
    let Some(h) = keys.read(args.get(1)).map(as_hash).transpose()? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let (count, pattern) = scan_options(args, 3)?;
    // Dict::scan lends each item only for the callback, so matches are copied out
    // (field, value, field, value…).
    let mut found: Vec<Box<[u8]>> = Vec::new();
    let next = h.scan(cursor, count, |f, v| {
        if pattern.is_none_or(|p| glob_match(p, f, false)) {
            found.push(f.into());
            found.push(v.into());
        }
    });
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(found.len());
    for s in &found {
        out.bulk(s);
    }
    Ok(())
}
