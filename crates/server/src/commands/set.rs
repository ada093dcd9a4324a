//! Set commands: membership, random picks and pops, SMOVE, the set algebra (SINTER, SUNION,
//! SDIFF and their STORE forms, SINTERCARD) and SSCAN.
//!
//! Semantics, replies and error lines follow Redis 7.0's `t_set.c`. A set starts as an intset
//! while every member is a canonical integer and converts to a hashtable past
//! `set-max-intset-entries` members or on the first non-integer member (see
//! [`flowkv_store::set_value`]). A set left without members is deleted, as Redis deletes
//! empty collections.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

use flowkv_protocol::{Args, Reply};
use flowkv_store::glob::glob_match;
use flowkv_store::num::{parse_cursor, parse_i64};
use flowkv_store::set_value::SetValue;
use flowkv_store::{Entry, Keys, Kind, Value, ValueMut, ValueRef};
use rand::seq::SliceRandom;

use super::collection_args::{random_count, scan_options};
use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group, KeyPositions};
use crate::config::notify::{GENERIC, SET};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;

const fn set_cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    h: crate::command::Handler,
) -> Command {
    Command::new(name, arity, Group::Set)
        .flags(flags)
        .acl(acl::SET)
        .handler(h)
}

/// Complexity line shared by the intersection commands.
const INTER_COMPLEXITY: &str =
    "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.";
/// Complexity line shared by the union and difference commands.
const TOTAL_COMPLEXITY: &str = "O(N) where N is the total number of elements in all given sets.";

pub static COMMANDS: &[Command] = &[
    set_cmd("sadd", -3, WRITE | DENYOOM | FAST, sadd)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::INSERT)])
        .doc(
            "Add one or more members to a set",
            "1.0.0",
            "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        ),
    set_cmd("srem", -3, WRITE | FAST, srem)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .doc(
            "Remove one or more members from a set",
            "1.0.0",
            "O(N) where N is the number of members to be removed.",
        ),
    set_cmd("smembers", 2, READONLY, sinter)
        .keys(1, 1, 1)
        .tips(&["nondeterministic_output_order"])
        .doc(
            "Get all the members in a set",
            "1.0.0",
            "O(N) where N is the set cardinality.",
        ),
    set_cmd("sismember", 3, READONLY | FAST, sismember)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RO)])
        .doc(
            "Determine if a given value is a member of a set",
            "1.0.0",
            "O(1)",
        ),
    set_cmd("smismember", -3, READONLY | FAST, smismember).keys(1, 1, 1).doc(
        "Returns the membership associated with the given elements for a set",
        "6.2.0",
        "O(N) where N is the number of elements being checked for membership",
    ),
    set_cmd("scard", 2, READONLY | FAST, scard)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RO)])
        .doc(
            "Get the number of members in a set",
            "1.0.0",
            "O(1)",
        ),
    set_cmd("spop", -2, WRITE | FAST, spop)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE)])
        .tips(&["nondeterministic_output"])
        .doc(
            "Remove and return one or multiple random members from a set",
            "1.0.0",
            "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.",
        ),
    set_cmd("srandmember", -2, READONLY, srandmember)
        .keys(1, 1, 1)
        .tips(&["nondeterministic_output"])
        .doc(
            "Get one or multiple random members from a set",
            "1.0.0",
            "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.",
        ),
    set_cmd("smove", 4, WRITE | FAST, smove)
        .keys(1, 2, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE),
            ks::key_at(2, ks::RW | ks::INSERT),
        ])
        .doc(
            "Move a member from one set to another",
            "1.0.0",
            "O(1)",
        ),
    set_cmd("sinter", -2, READONLY, sinter)
        .keys(1, -1, 1)
        .tips(&["nondeterministic_output_order"])
        .doc(
            "Intersect multiple sets",
            "1.0.0",
            INTER_COMPLEXITY,
        ),
    set_cmd("sintercard", -3, READONLY, sintercard)
        .movable_keys(sintercard_keys)
        .key_specs(&[ks::spec(ks::RO | ks::ACCESS, ks::index(1), ks::keynum(0, 1, 1))])
        .doc(
            "Intersect multiple sets and return the cardinality of the result",
            "7.0.0",
            INTER_COMPLEXITY,
        ),
    set_cmd("sinterstore", -3, WRITE | DENYOOM, sinterstore)
        .keys(1, -1, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::UPDATE),
            ks::spec(ks::RO | ks::ACCESS, ks::index(2), ks::range(-1, 1, 0)),
        ])
        .doc(
            "Intersect multiple sets and store the resulting set in a key",
            "1.0.0",
            INTER_COMPLEXITY,
        ),
    set_cmd("sunion", -2, READONLY, sunion)
        .keys(1, -1, 1)
        .tips(&["nondeterministic_output_order"])
        .doc(
            "Add multiple sets",
            "1.0.0",
            TOTAL_COMPLEXITY,
        ),
    set_cmd("sunionstore", -3, WRITE | DENYOOM, sunionstore)
        .keys(1, -1, 1)
        .key_specs(&[
            ks::key_at(1, ks::OW | ks::UPDATE),
            ks::spec(ks::RO | ks::ACCESS, ks::index(2), ks::range(-1, 1, 0)),
        ])
        .doc(
            "Add multiple sets and store the resulting set in a key",
            "1.0.0",
            TOTAL_COMPLEXITY,
        ),
    set_cmd("sdiff", -2, READONLY, sdiff)
        .keys(1, -1, 1)
        .tips(&["nondeterministic_output_order"])
        .doc(
            "Subtract multiple sets",
            "1.0.0",
            TOTAL_COMPLEXITY,
        ),
    set_cmd("sdiffstore", -3, WRITE | DENYOOM, sdiffstore)
        .keys(1, -1, 1)
        .key_specs(&[
            ks::key_at(1, ks::OW | ks::UPDATE),
            ks::spec(ks::RO | ks::ACCESS, ks::index(2), ks::range(-1, 1, 0)),
        ])
        .doc(
            "Subtract multiple sets and store the resulting set in a key",
            "1.0.0",
            TOTAL_COMPLEXITY,
        ),
    set_cmd("sscan", -3, READONLY, sscan)
        .keys(1, 1, 1)
        .tips(&["nondeterministic_output"])
        .doc(
            "Incrementally iterate Set elements",
            "2.8.0",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
        ),
];

/// SPOP with a count pops members one by one while the set keeps more than 1/5 of the
/// popped count; past that it rebuilds the set from the survivors (Redis's threshold).
const SPOP_MOVE_FACTOR: usize = 5;

/// The configured `set-max-intset-entries`.
fn max_intset(ctx: &Ctx<'_>) -> usize {
    let v = ctx.srv.config.hot.set_max_intset_entries.load(Relaxed);
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// The set held by an entry, or WRONGTYPE.
fn as_set(e: &Entry) -> Result<&SetValue, CmdError> {
    match e.value() {
        ValueRef::Set(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// Deletes `key` if its set is now empty (Redis never keeps one). Returns whether it did.
fn s_emptied(keys: &mut Keys<'_, '_>, key: &[u8]) -> bool {
    let empty = keys
        .peek(key)
        .is_some_and(|e| matches!(e.value(), ValueRef::Set(s) if s.is_empty()));
    empty && keys.remove(key).is_some()
}

/// Stores `set` at `key` (replacing any value and TTL), or deletes `key` if `set` is empty.
/// Returns true if the keyspace changed.
fn store(keys: &mut Keys<'_, '_>, key: &[u8], set: SetValue) -> bool {
    if set.is_empty() {
        keys.delete(key)
    } else {
        keys.insert(Entry::new_value(key, Value::Set(Box::new(set)), None, 0));
        true
    }
}

/// SADD key member...: the number of members added.
fn sadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let max = max_intset(ctx);
    let key = args.get(1);
    let mut keys = ctx.keys();
    let added = match keys.write(key) {
        Some(e) => {
            let Some(ValueMut::Set(s)) = e.value_mut() else {
                return Err(CmdError::WrongType);
            };
            args.iter().skip(2).filter(|m| s.insert(m, max)).count()
        }
        None => {
            let mut s = SetValue::default();
            let added = args.iter().skip(2).filter(|m| s.insert(m, max)).count();
            store(&mut keys, key, s);
            added
        }
    };
    if added > 0 {
        notify(ctx, SET, "sadd", key);
    }
    ctx.dirty += added as u64;
    ctx.out.int(added as i64);
    Ok(())
}

/// SREM key member...: the number of members removed; the key goes with its last member.
fn srem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let removed = {
        let mut keys = ctx.keys();
        let Some(e) = keys.write(key) else {
            ctx.out.int(0);
            return Ok(());
        };
        let Some(ValueMut::Set(s)) = e.value_mut() else {
            return Err(CmdError::WrongType);
        };
        let removed = args.iter().skip(2).filter(|m| s.remove(m)).count();
        if removed > 0 {
            keys.notify(SET, "srem", key);
        }
        if s_emptied(&mut keys, key) {
            keys.notify(GENERIC, "del", key);
        }
        removed
    };
    ctx.dirty += removed as u64;
    ctx.out.int(removed as i64);
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let s = keys.read(args.get(1)).map(as_set).transpose()?;
    out.int(i64::from(s.is_some_and(|s| s.contains(args.get(2)))));
    Ok(())
}

/// SMISMEMBER key member...: 1 or 0 per member (all 0 for a missing key).
fn smismember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let s = keys.read(args.get(1)).map(as_set).transpose()?;
    out.array(args.len() - 2);
    for m in args.iter().skip(2) {
        out.int(i64::from(s.is_some_and(|s| s.contains(m))));
    }
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let s = keys.read(args.get(1)).map(as_set).transpose()?;
    out.int(s.map_or(0, SetValue::len) as i64);
    Ok(())
}

/// Writes `members` as a RESP3 set (an array in RESP2).
fn reply_set<M: AsRef<[u8]>>(out: &mut Reply<'_>, members: &[M]) {
    out.set(members.len());
    for m in members {
        out.bulk(m.as_ref());
    }
}

/// SPOP key [count]: without a count one member (null if missing); with one, up to `count`
/// distinct members as a set. Each popped member is one change.
fn spop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(
            parse_i64(args.get(2))
                .and_then(|n| u64::try_from(n).ok())
                .ok_or(CmdError::msg("ERR value is out of range, must be positive"))?,
        ),
        _ => return Err(CmdError::Syntax),
    };
    let key = args.get(1);
    let max = max_intset(ctx);
    let mut rng = rand::thread_rng();
    let popped = {
        let mut keys = ctx.keys();
        let Some(e) = keys.write(key) else {
            match count {
                None => ctx.out.null(),
                Some(_) => ctx.out.set(0),
            }
            // Nothing popped, nothing changed: nothing to replay.
            ctx.prevent_propagation();
            return Ok(());
        };
        let Some(ValueMut::Set(s)) = e.value_mut() else {
            return Err(CmdError::WrongType);
        };
        let n = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let popped: Vec<Vec<u8>> = if n >= s.len() {
            let all = s.iter().map(Cow::into_owned).collect();
            *s = SetValue::default();
            all
        } else if (s.len() - n).saturating_mul(SPOP_MOVE_FACTOR) > n {
            (0..n).filter_map(|_| s.pop_random(&mut rng)).collect()
        } else {
            // Most of the set goes: move the few survivors to a new set and return the old
            // one, as Redis does (so the new set gets the encoding its members call for).
            let mut kept = SetValue::default();
            for _ in n..s.len() {
                if let Some(m) = s.pop_random(&mut rng) {
                    kept.insert(&m, max);
                }
            }
            let popped = s.iter().map(Cow::into_owned).collect();
            *s = kept;
            popped
        };
        if !popped.is_empty() {
            keys.notify(SET, "spop", key);
        }
        if s_emptied(&mut keys, key) {
            keys.notify(GENERIC, "del", key);
        }
        popped
    };
    ctx.dirty += popped.len() as u64;
    // Randomness does not replay: propagated as the SREMs of what was popped (a DEL when
    // the whole set went, as Redis 7.0 does).
    if crate::propagate::active() {
        if count.is_some() && popped.len() > 1 && !ctx.keys().contains(key) {
            ctx.propagate_as(&[b"DEL", key]);
        } else if count.is_some() {
            for m in &popped {
                ctx.also_propagate(&[b"SREM", key, m]);
            }
            ctx.prevent_propagation();
        } else if let Some(m) = popped.first() {
            ctx.propagate_as(&[b"SREM", key, m]);
        }
    }
    match (count, popped.first()) {
        (None, Some(m)) => ctx.out.bulk(m),
        (None, None) => ctx.out.null(),
        (Some(_), _) => reply_set(&mut ctx.out, &popped),
    }
    Ok(())
}

/// SRANDMEMBER key [count]. Without a count: one member (null if missing). A positive count
/// returns distinct members (at most the set's size), a negative one that many picks with
/// repeats; a missing key gives an empty array.
fn srandmember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut rng = rand::thread_rng();
    if args.len() == 2 {
        let (mut keys, out) = ctx.keys_out();
        let s = keys.read(args.get(1)).map(as_set).transpose()?;
        match s.and_then(|s| s.random(&mut rng)) {
            Some(m) => out.bulk(&m),
            None => out.null(),
        }
        return Ok(());
    }
    let (l, _) = random_count(args, None)?;
    let (mut keys, out) = ctx.keys_out();
    let Some(s) = keys.read(args.get(1)).map(as_set).transpose()? else {
        out.array(0);
        return Ok(());
    };
    let count = usize::try_from(l.unsigned_abs()).unwrap_or(usize::MAX);
    if l < 0 || count == 1 {
        out.array(count);
        for _ in 0..count {
            if let Some(m) = s.random(&mut rng) {
                out.bulk(&m);
            }
        }
        return Ok(());
    }
    let size = s.len();
    let picks: Vec<Cow<'_, [u8]>> = if count >= size {
        s.iter().collect()
    } else if count * 3 > size {
        // Many of the members: shuffle them all and keep a prefix.
        let mut all: Vec<_> = s.iter().collect();
        all.partial_shuffle(&mut rng, count);
        all.truncate(count);
        all
    } else {
        // Few of many: random picks until `count` distinct members (expected O(count)).
        let mut seen = HashSet::with_capacity(count);
        let mut picks = Vec::with_capacity(count);
        while picks.len() < count {
            if let Some(m) = s.random(&mut rng) {
                if seen.insert(m.clone()) {
                    picks.push(m);
                }
            }
        }
        picks
    };
    out.array(picks.len());
    for m in &picks {
        out.bulk(m);
    }
    Ok(())
}

/// SMOVE source destination member: 1 if the member was moved (or, when source and
/// destination are the same set, is there). Both keys are type-checked first; removing from
/// the source and adding to the destination are one change each.
fn smove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let max = max_intset(ctx);
    let (reply, dirty) = move_member(&mut ctx.keys(), args.get(1), args.get(2), args.get(3), max)?;
    ctx.dirty += dirty;
    ctx.out.int(reply);
    Ok(())
}

/// SMOVE's work: (reply, changes).
fn move_member(
    keys: &mut Keys<'_, '_>,
    src: &[u8],
    dst: &[u8],
    member: &[u8],
    max: usize,
) -> Result<(i64, u64), CmdError> {
    match keys.kind(src) {
        None => return Ok((0, 0)),
        Some(k) if k != Kind::Set => return Err(CmdError::WrongType),
        Some(_) => {}
    }
    if keys.kind(dst).is_some_and(|k| k != Kind::Set) {
        return Err(CmdError::WrongType);
    }
    if src == dst {
        let s = keys.read(src).map(as_set).transpose()?;
        return Ok((i64::from(s.is_some_and(|s| s.contains(member))), 0));
    }
    let Some(ValueMut::Set(s)) = keys.write(src).and_then(Entry::value_mut) else {
        return Err(CmdError::WrongType);
    };
    if !s.remove(member) {
        return Ok((0, 0));
    }
    keys.notify(SET, "srem", src);
    if s_emptied(keys, src) {
        keys.notify(GENERIC, "del", src);
    }
    // A destination that already has the member is left untouched (no WATCH or keyspace
    // event), as in Redis.
    let present = keys
        .peek(dst)
        .is_some_and(|e| matches!(e.value(), ValueRef::Set(d) if d.contains(member)));
    let added = !present
        && match keys.write(dst).and_then(Entry::value_mut) {
            Some(ValueMut::Set(d)) => d.insert(member, max),
            Some(_) => return Err(CmdError::WrongType),
            None => {
                let mut d = SetValue::default();
                d.insert(member, max);
                store(keys, dst, d)
            }
        };
    if added {
        keys.notify(SET, "sadd", dst);
    }
    Ok((1, 1 + u64::from(added)))
}

/// The sets at `names`, cloned out of the keyspace (`None` for a missing key), after checking
/// every key's type as Redis does before computing anything.
fn load_sets(keys: &mut Keys<'_, '_>, names: Args<'_>) -> Result<Vec<Option<SetValue>>, CmdError> {
    names
        .iter()
        .map(|k| keys.read(k).map(|e| as_set(e).cloned()).transpose())
        .collect()
}

/// The intersection of `sets`, stopping after `limit` members (0: no limit). Empty if any
/// set is missing. Walks the smallest set and probes the others.
fn intersect(sets: &[Option<SetValue>], limit: usize) -> Vec<Vec<u8>> {
    let Some(mut sets) = sets.iter().map(Option::as_ref).collect::<Option<Vec<_>>>() else {
        return Vec::new();
    };
    sets.sort_by_key(|s| s.len());
    let Some((first, rest)) = sets.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in first.iter() {
        if rest.iter().all(|s| s.contains(&m)) {
            out.push(m.into_owned());
            if out.len() == limit {
                break;
            }
        }
    }
    out
}

/// What a SUNION/SDIFF-style operation computes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Diff,
}

/// The union of `sets`, or the members of the first not in any other, as a set value
/// encoded the way Redis would store it.
fn union_diff(sets: &[Option<SetValue>], op: Op, max: usize) -> SetValue {
    let mut out = SetValue::default();
    match op {
        Op::Union => {
            for m in sets.iter().flatten().flat_map(SetValue::iter) {
                out.insert(&m, max);
            }
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else {
                return out;
            };
            for m in first.iter() {
                if !sets[1..].iter().flatten().any(|s| s.contains(&m)) {
                    out.insert(&m, max);
                }
            }
        }
    }
    out
}

/// SINTER key... (and SMEMBERS key): the members common to every set, as a set.
fn sinter(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    if args.len() == 2 {
        // One set (SMEMBERS): reply straight from it, without a copy.
        let s = keys.read(args.get(1)).map(as_set).transpose()?;
        out.set(s.map_or(0, SetValue::len));
        for m in s.into_iter().flat_map(SetValue::iter) {
            out.bulk(&m);
        }
        return Ok(());
    }
    let sets = load_sets(&mut keys, args.slice_from(1))?;
    reply_set(out, &intersect(&sets, 0));
    Ok(())
}

/// SINTERCARD's keys: `numkeys` keys after it, when `numkeys` is valid and fits in the
/// arguments (otherwise the handler fails before touching any key).
fn sintercard_keys(args: Args<'_>) -> KeyPositions {
    super::numkeys_positions(args, 1, 0)
}

/// SINTERCARD numkeys key... [LIMIT limit]: the size of the intersection, counting at most
/// `limit` members (0: no limit).
fn sintercard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let numkeys = parse_i64(args.get(1))
        .filter(|&n| n >= 1)
        .ok_or(CmdError::msg("ERR numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys)
        .ok()
        .filter(|&n| n <= args.len() - 2)
        .ok_or(CmdError::msg(
            "ERR Number of keys can't be greater than number of args",
        ))?;
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        match args.try_get(i + 1) {
            Some(v) if args.get(i).eq_ignore_ascii_case(b"limit") => {
                limit = parse_i64(v)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or(CmdError::msg("ERR LIMIT can't be negative"))?;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    let (mut keys, out) = ctx.keys_out();
    let names = args.slice_from(2);
    let sets: Vec<Option<SetValue>> = (0..numkeys)
        .map(|j| {
            keys.read(names.get(j))
                .map(|e| as_set(e).cloned())
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    out.int(intersect(&sets, limit).len() as i64);
    Ok(())
}

/// SINTERSTORE destination key...: stores the intersection (deleting the destination if it
/// is empty) and replies with its size.
fn sinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let max = max_intset(ctx);
    let mut keys = ctx.keys();
    let sets = load_sets(&mut keys, args.slice_from(2))?;
    let mut result = SetValue::default();
    for m in intersect(&sets, 0) {
        result.insert(&m, max);
    }
    store_result(ctx, args.get(1), result, "sinterstore")
}

/// Stores a STORE command's result, counts the change and replies with the size; `event`
/// is the command's keyspace event (a "del" instead if the empty result deleted the key).
fn store_result(ctx: &mut Ctx<'_>, dst: &[u8], result: SetValue, event: &'static str) -> CmdResult {
    let n = result.len();
    let changed = store(&mut ctx.keys(), dst, result);
    if n > 0 {
        notify(ctx, SET, event, dst);
    } else if changed {
        notify(ctx, GENERIC, "del", dst);
    }
    ctx.dirty += u64::from(changed);
    ctx.out.int(n as i64);
    Ok(())
}

/// SUNION / SDIFF key...: the computed set as a set reply.
fn union_diff_reply(ctx: &mut Ctx<'_>, args: Args<'_>, op: Op) -> CmdResult {
    let max = max_intset(ctx);
    let (mut keys, out) = ctx.keys_out();
    let sets = load_sets(&mut keys, args.slice_from(1))?;
    let result = union_diff(&sets, op, max);
    let members: Vec<_> = result.iter().collect();
    reply_set(out, &members);
    Ok(())
}

/// SUNIONSTORE / SDIFFSTORE destination key...
fn union_diff_store(ctx: &mut Ctx<'_>, args: Args<'_>, op: Op) -> CmdResult {
    let max = max_intset(ctx);
    let sets = load_sets(&mut ctx.keys(), args.slice_from(2))?;
    let event = match op {
        Op::Union => "sunionstore",
        Op::Diff => "sdiffstore",
    };
    store_result(ctx, args.get(1), union_diff(&sets, op, max), event)
}

fn sunion(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    union_diff_reply(ctx, args, Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    union_diff_reply(ctx, args, Op::Diff)
}

fn sunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    union_diff_store(ctx, args, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    union_diff_store(ctx, args, Op::Diff)
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]. The cursor is checked first, then the
/// key's type, then the options, in Redis's order. An intset comes back whole with cursor 0.
fn sscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2)).ok_or(CmdError::msg("ERR invalid cursor"))?;
    let (mut keys, out) = ctx.keys_out();
    let Some(s) = keys.read(args.get(1)).map(as_set).transpose()? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let (count, pattern) = scan_options(args, 3)?;
    // Dict::scan lends each member only for the callback, so matches are copied out.
    let mut found: Vec<Box<[u8]>> = Vec::new();
    let next = s.scan(cursor, count, |m| {
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            found.push(m.into());
        }
    });
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(found.len());
    for m in &found {
        out.bulk(m);
    }
    Ok(())
}
