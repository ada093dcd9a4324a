//! Sorted-set commands: ZADD and friends, ranks and ranges (by rank, score and lex, in both
//! directions, with ZRANGESTORE), range removals, pops, ZRANDMEMBER, the set algebra (ZUNION,
//! ZINTER, ZDIFF, their STORE forms and ZINTERCARD; plain sets are accepted as inputs with
//! score 1) and ZSCAN.
//!
//! Semantics, replies and error lines follow Redis 7.0's `t_zset.c`: options are parsed
//! before the key is looked up, WITHSCORES replies are a flat array in RESP2 and an array of
//! [member, score] pairs in RESP3, and scores are doubles (bulk strings in RESP2). Encodings
//! and conversions live in [`flowkv_store::zset_value`]. A sorted set left without members
//! is deleted. The blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) reuse [`pop_reply`].

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

use flowkv_protocol::{format_double, Args, Reply};
use flowkv_store::glob::glob_match;
use flowkv_store::num::{parse_cursor, parse_f64, parse_i64};
use flowkv_store::set_value::SetValue;
use flowkv_store::zset_value::{LexBound, ScoreBound, ZSetLimits, ZSetValue};
use flowkv_store::{Entry, Keys, Kind, Value, ValueMut, ValueRef};
use rand::seq::SliceRandom;

use super::collection_args::{random_count, scan_options};
use crate::blocking::{self, Served, WaitOp};
use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group, KeyPositions};
use crate::commands::string::int_arg;
use crate::config::notify::{GENERIC, ZSET};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;

const fn z(name: &'static str, arity: i32, flags: u32, h: crate::command::Handler) -> Command {
    Command::new(name, arity, Group::SortedSet)
        .flags(flags)
        .acl(acl::SORTEDSET)
        .handler(h)
}

const LOG_N: &str = "O(log(N))";
const RANGE_COMPLEXITY: &str =
    "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.";
const REMRANGE_COMPLEXITY: &str =
    "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.";
const UNION_COMPLEXITY: &str =
    "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.";
const INTER_COMPLEXITY: &str =
    "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.";
const DIFF_COMPLEXITY: &str =
    "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.";
const POP_COMPLEXITY: &str =
    "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.";

pub static COMMANDS: &[Command] = &[
    z("zadd", -4, WRITE | DENYOOM | FAST, zadd).keys(1, 1, 1).doc(
        "Add one or more members to a sorted set, or update its score if it already exists",
        "1.2.0",
        "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
    ),
    z("zincrby", 4, WRITE | DENYOOM | FAST, zincrby).keys(1, 1, 1).key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .doc(
            "Increment the score of a member in a sorted set",
            "1.2.0",
            "O(log(N)) where N is the number of elements in the sorted set.",
        ),
    z("zrem", -3, WRITE | FAST, zrem).keys(1, 1, 1).key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .doc(
        "Remove one or more members from a sorted set",
        "1.2.0",
        "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.",
    ),
    z("zcard", 2, READONLY | FAST, zcard).keys(1, 1, 1).key_specs(&[ks::key_at(1, ks::RO)])
        .doc(
        "Get the number of members in a sorted set",
        "1.2.0",
        "O(1)",
    ),
    z("zcount", 4, READONLY | FAST, zcount).keys(1, 1, 1).doc(
            "Count the members in a sorted set with scores within the given values",
            "2.0.0",
            "O(log(N)) with N being the number of elements in the sorted set.",
        ),
    z("zlexcount", 4, READONLY | FAST, zlexcount).keys(1, 1, 1).doc(
            "Count the number of members in a sorted set between a given lexicographical range",
            "2.8.9",
            "O(log(N)) with N being the number of elements in the sorted set.",
        ),
    z("zscore", 3, READONLY | FAST, zscore).keys(1, 1, 1).doc(
        "Get the score associated with the given member in a sorted set",
        "1.2.0",
        "O(1)",
    ),
    z("zmscore", -3, READONLY | FAST, zmscore).keys(1, 1, 1).doc(
        "Get the score associated with the given members in a sorted set",
        "6.2.0",
        "O(N) where N is the number of members being requested.",
    ),
    z("zrank", -3, READONLY | FAST, zrank).keys(1, 1, 1).doc(
        "Determine the index of a member in a sorted set",
        "2.0.0",
        LOG_N,
    ),
    z("zrevrank", -3, READONLY | FAST, zrevrank).keys(1, 1, 1).doc(
        "Determine the index of a member in a sorted set, with scores ordered from high to low",
        "2.0.0",
        LOG_N,
    ),
    z("zrange", -4, READONLY, zrange).keys(1, 1, 1).doc(
        "Return a range of members in a sorted set",
        "1.2.0",
        RANGE_COMPLEXITY,
    ),
    z("zrangestore", -5, WRITE | DENYOOM, zrangestore).keys(1, 2, 1).key_specs(&[ks::key_at(1, ks::OW | ks::UPDATE), ks::key_at(2, ks::RO | ks::ACCESS)])
        .doc(
        "Store a range of members from sorted set into another key",
        "6.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.",
    ),
    z("zrevrange", -4, READONLY, zrevrange).keys(1, 1, 1).doc(
        "Return a range of members in a sorted set, by index, with scores ordered from high to low",
        "1.2.0",
        RANGE_COMPLEXITY,
    ),
    z("zrangebyscore", -4, READONLY, zrangebyscore).keys(1, 1, 1).doc(
        "Return a range of members in a sorted set, by score",
        "1.0.5",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
    ),
    z("zrevrangebyscore", -4, READONLY, zrevrangebyscore).keys(1, 1, 1).doc(
        "Return a range of members in a sorted set, by score, with scores ordered from high to low",
        "2.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
    ),
    z("zrangebylex", -4, READONLY, zrangebylex).keys(1, 1, 1).doc(
        "Return a range of members in a sorted set, by lexicographical range",
        "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
    ),
    z("zrevrangebylex", -4, READONLY, zrevrangebylex).keys(1, 1, 1).doc(
        "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.",
        "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
    ),
    z("zremrangebyrank", 4, WRITE, zremrangebyrank).keys(1, 1, 1).key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .doc(
        "Remove all members in a sorted set within the given indexes",
        "2.0.0",
        REMRANGE_COMPLEXITY,
    ),
    z("zremrangebyscore", 4, WRITE, zremrangebyscore).keys(1, 1, 1).key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .doc(
        "Remove all members in a sorted set within the given scores",
        "1.2.0",
        REMRANGE_COMPLEXITY,
    ),
    z("zremrangebylex", 4, WRITE, zremrangebylex).keys(1, 1, 1).key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .doc(
        "Remove all members in a sorted set between the given lexicographical range",
        "2.8.9",
        REMRANGE_COMPLEXITY,
    ),
    z("zpopmin", -2, WRITE | FAST, zpopmin).keys(1, 1, 1).key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE)])
        .doc(
        "Remove and return members with the lowest scores in a sorted set",
        "5.0.0",
        POP_COMPLEXITY,
    ),
    z("zpopmax", -2, WRITE | FAST, zpopmax).keys(1, 1, 1).key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE)])
        .doc(
        "Remove and return members with the highest scores in a sorted set",
        "5.0.0",
        POP_COMPLEXITY,
    ),
    z("zmpop", -4, WRITE, zmpop).movable_keys(zmpop_keys).key_specs(&[ks::spec(ks::RW | ks::ACCESS | ks::DELETE, ks::index(1), ks::keynum(0, 1, 1))])
        .doc(
            "Remove and return members with scores in a sorted set",
            "7.0.0",
            "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        ),

    z("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, bzpopmin)
        .keys(1, -2, 1)
        .key_specs(&[ks::spec(ks::RW | ks::ACCESS | ks::DELETE, ks::index(1), ks::range(-2, 1, 0))])
        .doc(
            "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available",
            "5.0.0",
            "O(log(N)) with N being the number of elements in the sorted set.",
        ),
    z("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, bzpopmax)
        .keys(1, -2, 1)
        .key_specs(&[ks::spec(ks::RW | ks::ACCESS | ks::DELETE, ks::index(1), ks::range(-2, 1, 0))])
        .doc(
            "Remove and return the member with the highest score from one or more sorted sets, or block until one is available",
            "5.0.0",
            "O(log(N)) with N being the number of elements in the sorted set.",
        ),
    z("bzmpop", -5, WRITE | BLOCKING, bzmpop)
        .acl(acl::SORTEDSET | acl::BLOCKING)
        .movable_keys(bzmpop_keys)
        .key_specs(&[ks::spec(ks::RW | ks::ACCESS | ks::DELETE, ks::index(2), ks::keynum(0, 1, 1))])
        .doc(
            "Remove and return members with scores in a sorted set or block until one is available",
            "7.0.0",
            "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        ),

    z("zrandmember", -2, READONLY, zrandmember).keys(1, 1, 1).tips(&["nondeterministic_output"])
        .doc(
        "Get one or multiple random elements from a sorted set",
        "6.2.0",
        "O(N) where N is the number of elements returned",
    ),
    z("zunion", -3, READONLY, zunion).movable_keys(numkeys_at_1).key_specs(&[ks::spec(ks::RO | ks::ACCESS, ks::index(1), ks::keynum(0, 1, 1))])
        .doc(
        "Add multiple sorted sets",
        "6.2.0",
        UNION_COMPLEXITY,
    ),
    z("zinter", -3, READONLY, zinter).movable_keys(numkeys_at_1).key_specs(&[ks::spec(ks::RO | ks::ACCESS, ks::index(1), ks::keynum(0, 1, 1))])
        .doc(
        "Intersect multiple sorted sets",
        "6.2.0",
        INTER_COMPLEXITY,
    ),
    z("zdiff", -3, READONLY, zdiff).movable_keys(numkeys_at_1).key_specs(&[ks::spec(ks::RO | ks::ACCESS, ks::index(1), ks::keynum(0, 1, 1))])
        .doc(
        "Subtract multiple sorted sets",
        "6.2.0",
        DIFF_COMPLEXITY,
    ),
    z("zunionstore", -4, WRITE | DENYOOM, zunionstore).movable_keys(store_keys).key_specs(&[ks::key_at(1, ks::OW | ks::UPDATE), ks::spec(ks::RO | ks::ACCESS, ks::index(2), ks::keynum(0, 1, 1))])
        .doc(
            "Add multiple sorted sets and store the resulting sorted set in a new key",
            "2.0.0",
            "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
        ),
    z("zinterstore", -4, WRITE | DENYOOM, zinterstore).movable_keys(store_keys).key_specs(&[ks::key_at(1, ks::OW | ks::UPDATE), ks::spec(ks::RO | ks::ACCESS, ks::index(2), ks::keynum(0, 1, 1))])
        .doc(
        "Intersect multiple sorted sets and store the resulting sorted set in a new key",
        "2.0.0",
        INTER_COMPLEXITY,
    ),
    z("zdiffstore", -4, WRITE | DENYOOM, zdiffstore).movable_keys(store_keys).key_specs(&[ks::key_at(1, ks::OW | ks::UPDATE), ks::spec(ks::RO | ks::ACCESS, ks::index(2), ks::keynum(0, 1, 1))])
        .doc(
        "Subtract multiple sorted sets and store the resulting sorted set in a new key",
        "6.2.0",
        DIFF_COMPLEXITY,
    ),
    z("zintercard", -3, READONLY, zintercard).movable_keys(numkeys_at_1).key_specs(&[ks::spec(ks::RO | ks::ACCESS, ks::index(1), ks::keynum(0, 1, 1))])
        .doc(
        "Intersect multiple sorted sets and return the cardinality of the result",
        "7.0.0",
        "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.",
    ),
    z("zscan", -3, READONLY, zscan).keys(1, 1, 1).tips(&["nondeterministic_output"])
        .doc(
        "Incrementally iterate sorted sets elements and associated scores",
        "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
    ),
];

// ---------------------------------------------------------------------------------------
// Shared helpers

/// The configured conversion thresholds.
pub(crate) fn limits(ctx: &Ctx<'_>) -> ZSetLimits {
    let hot = &ctx.srv.config.hot;
    let get = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    ZSetLimits {
        max_listpack_entries: get(hot.zset_max_listpack_entries.load(Relaxed)),
        max_listpack_value: get(hot.zset_max_listpack_value.load(Relaxed)),
    }
}

/// The sorted set held by an entry, or WRONGTYPE.
pub(crate) fn as_zset(e: &Entry) -> Result<&ZSetValue, CmdError> {
    match e.value() {
        ValueRef::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

fn as_zset_mut(e: &mut Entry) -> Result<&mut ZSetValue, CmdError> {
    match e.value_mut() {
        Some(ValueMut::ZSet(z)) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

/// Parses a score or weight as Redis's `getDoubleFromObject` does: the whole string, no
/// leading space, `inf`/`-inf` allowed, NaN and out-of-range values (overflow to infinity,
/// underflow to zero) rejected.
fn parse_strict_float(s: &[u8]) -> Option<f64> {
    if let Some(v) = parse_hex_float(s) {
        return v.is_finite().then_some(v);
    }
    let v = parse_f64(s)?;
    let literal_inf = s.iter().any(|c| c.eq_ignore_ascii_case(&b'i'));
    if v.is_infinite() && !literal_inf {
        return None;
    }
    let mantissa = s.split(|&c| c == b'e' || c == b'E').next().unwrap_or(s);
    if v == 0.0 && mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) {
        return None;
    }
    Some(v)
}

fn parse_score(s: &[u8]) -> Result<f64, CmdError> {
    parse_strict_float(s).ok_or(CmdError::NotFloat)
}

/// C's `strtod` also reads hexadecimal floats (`0x10`, `-0x1.8p3`); so does Redis.
fn parse_hex_float(s: &[u8]) -> Option<f64> {
    let (neg, rest) = match s.split_first()? {
        (b'-', r) => (true, r),
        (b'+', r) => (false, r),
        _ => (false, s),
    };
    let rest = rest
        .strip_prefix(b"0x")
        .or_else(|| rest.strip_prefix(b"0X"))?;
    let (mant, exp) = match rest.iter().position(|c| c.eq_ignore_ascii_case(&b'p')) {
        Some(p) => (&rest[..p], Some(&rest[p + 1..])),
        None => (rest, None),
    };
    let mut v = 0f64;
    let mut scale = 0i32;
    let mut seen_dot = false;
    let mut digits = 0;
    for &c in mant {
        if c == b'.' && !seen_dot {
            seen_dot = true;
            continue;
        }
        let d = (c as char).to_digit(16)?;
        v = v * 16.0 + f64::from(d);
        digits += 1;
        if seen_dot {
            scale -= 4;
        }
    }
    if digits == 0 {
        return None;
    }
    let e = match exp {
        Some(e) => i32::try_from(parse_i64(e)?.clamp(-100_000, 100_000)).ok()?,
        None => 0,
    };
    let v = v * 2f64.powi(scale + e);
    Some(if neg { -v } else { v })
}

/// Parses a range end as C's `strtod` used by `zslParseRange`: leading spaces and the empty
/// string (0) are accepted, NaN is not.
fn parse_loose_float(s: &[u8]) -> Option<f64> {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let s = &s[start..];
    if s.is_empty() {
        return Some(0.0);
    }
    if let Some(v) = parse_hex_float(s) {
        return Some(v);
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        t if t.bytes().any(|c| c.is_ascii_alphabetic() && c != b'e') => return None,
        t => t.parse().ok()?,
    };
    (!v.is_nan()).then_some(v)
}

/// One end of a score range: `(` makes it exclusive.
fn parse_score_bound(s: &[u8]) -> Option<ScoreBound> {
    match s.split_first() {
        Some((b'(', rest)) => parse_loose_float(rest).map(|value| ScoreBound {
            value,
            exclusive: true,
        }),
        _ => parse_loose_float(s).map(|value| ScoreBound {
            value,
            exclusive: false,
        }),
    }
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<(ScoreBound, ScoreBound), CmdError> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(CmdError::msg("ERR min or max is not a float")),
    }
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
fn parse_lex_bound(s: &[u8]) -> Option<LexBound<'_>> {
    match s.split_first()? {
        (b'-', []) => Some(LexBound::NegInf),
        (b'+', []) => Some(LexBound::PosInf),
        (b'[', rest) => Some(LexBound::Incl(rest)),
        (b'(', rest) => Some(LexBound::Excl(rest)),
        _ => None,
    }
}

fn parse_lex_range<'a>(
    min: &'a [u8],
    max: &'a [u8],
) -> Result<(LexBound<'a>, LexBound<'a>), CmdError> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(CmdError::msg("ERR min or max not valid string range item")),
    }
}

/// Writes `n` (member, score) pairs: members only, or with scores as a flat array (RESP2)
/// or [member, score] pairs (RESP3).
fn reply_pairs<'a>(
    out: &mut Reply<'_>,
    n: usize,
    pairs: impl Iterator<Item = (&'a [u8], f64)>,
    withscores: bool,
) {
    let resp3 = out.is_resp3();
    out.array(if withscores && !resp3 { 2 * n } else { n });
    for (m, s) in pairs.take(n) {
        if withscores && resp3 {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(s);
        }
    }
}

/// Stores `z` at `key` (replacing any value and TTL) or deletes `key` if `z` is empty, and
/// counts the change as Redis does (a store is one change, deleting a missing key none).
/// `event` is the storing command's keyspace event ("del" replaces it for a deletion).
fn store_zset(ctx: &mut Ctx<'_>, key: &[u8], z: ZSetValue, event: &'static str) {
    let mut keys = ctx.keys();
    let changed = if z.is_empty() {
        let deleted = keys.delete(key);
        if deleted {
            keys.notify(GENERIC, "del", key);
        }
        deleted
    } else {
        keys.insert(Entry::new_value(key, Value::ZSet(Box::new(z)), None, 0));
        keys.notify(ZSET, event, key);
        true
    };
    ctx.dirty += u64::from(changed);
}

/// Records `event` on `key`, then deletes the key if its sorted set is now empty (with a
/// "del" event), as Redis does after removing members.
fn removed_from(keys: &mut Keys<'_, '_>, key: &[u8], event: &'static str) {
    keys.notify(ZSET, event, key);
    let empty = keys
        .peek(key)
        .is_some_and(|e| matches!(e.value(), ValueRef::ZSet(z) if z.is_empty()));
    if empty {
        keys.remove(key);
        keys.notify(GENERIC, "del", key);
    }
}

/// Builds a STORE result from pairs in order, in the encoding Redis 7.0 would give it.
fn build_zset(pairs: &[(Vec<u8>, f64)], limits: ZSetLimits) -> ZSetValue {
    let max_len = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = ZSetValue::with_hint(pairs.len(), max_len, limits);
    for (m, s) in pairs {
        z.insert(m, *s, limits);
    }
    z
}

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM

/// ZADD's options.
#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

fn zadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zadd_generic(ctx, args, false)
}

/// ZINCRBY key increment member: ZADD's INCR path, as in Redis.
fn zincrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zadd_generic(ctx, args, true)
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member...: every score is parsed before the
/// set is touched, so the command applies fully or not at all.
fn zadd_generic(ctx: &mut Ctx<'_>, args: Args<'_>, incr: bool) -> CmdResult {
    let mut f = AddFlags {
        incr,
        ..AddFlags::default()
    };
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i).to_ascii_lowercase();
        match opt.as_slice() {
            b"nx" => f.nx = true,
            b"xx" => f.xx = true,
            b"gt" => f.gt = true,
            b"lt" => f.lt = true,
            b"ch" => f.ch = true,
            b"incr" => f.incr = true,
            _ => break,
        }
        i += 1;
    }
    let rest = args.len() - i;
    if rest == 0 || !rest.is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::msg(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CmdError::msg(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && rest > 2 {
        return Err(CmdError::msg(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let pairs: Vec<(f64, &[u8])> = (i..args.len())
        .step_by(2)
        .map(|j| Ok((parse_score(args.get(j))?, args.get(j + 1))))
        .collect::<Result<_, CmdError>>()?;
    let limits = limits(ctx);
    let key = args.get(1);
    let (mut added, mut updated, mut processed) = (0u64, 0u64, 0u64);
    let mut last_score = 0.0;
    {
        let mut keys = ctx.keys();
        match keys.kind(key) {
            Some(Kind::ZSet) => {}
            Some(_) => return Err(CmdError::WrongType),
            None if f.xx => {}
            None => {
                let z = ZSetValue::with_hint(1, pairs[0].1.len(), limits);
                keys.insert(Entry::new_value(key, Value::ZSet(Box::new(z)), None, 0));
            }
        }
        if let Some(e) = keys.write(key) {
            let z = as_zset_mut(e)?;
            for &(score, member) in &pairs {
                match z.score(member) {
                    Some(_) if f.nx => {}
                    Some(cur) => {
                        let new = if f.incr { score + cur } else { score };
                        if new.is_nan() {
                            return Err(CmdError::msg("ERR resulting score is not a number (NaN)"));
                        }
                        if (f.lt && new >= cur) || (f.gt && new <= cur) {
                            continue;
                        }
                        if new != cur {
                            z.insert(member, new, limits);
                            updated += 1;
                        }
                        processed += 1;
                        last_score = new;
                    }
                    None if f.xx => {}
                    None => {
                        z.insert(member, score, limits);
                        added += 1;
                        processed += 1;
                        last_score = score;
                    }
                }
            }
        }
    }
    ctx.dirty += added + updated;
    if added + updated > 0 {
        notify(ctx, ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    if f.incr {
        if processed > 0 {
            ctx.out.double(last_score);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out
            .int((if f.ch { added + updated } else { added }) as i64);
    }
    Ok(())
}

/// ZREM key member...: the number removed; the key goes with its last member.
fn zrem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let removed = {
        let mut keys = ctx.keys();
        let Some(e) = keys.write(key) else {
            ctx.out.int(0);
            return Ok(());
        };
        let z = as_zset_mut(e)?;
        let mut removed = 0u64;
        for m in args.iter().skip(2) {
            removed += u64::from(z.remove(m));
            if z.is_empty() {
                break;
            }
        }
        if removed > 0 {
            removed_from(&mut keys, key, "zrem");
        }
        removed
    };
    ctx.dirty += removed;
    ctx.out.int(removed as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Point queries

fn zcard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let z = keys.read(args.get(1)).map(as_zset).transpose()?;
    out.int(z.map_or(0, ZSetValue::len) as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let z = keys.read(args.get(1)).map(as_zset).transpose()?;
    match z.and_then(|z| z.score(args.get(2))) {
        Some(s) => out.double(s),
        None => out.null(),
    }
    Ok(())
}

/// ZMSCORE key member...: a score or null per member (all null for a missing key).
fn zmscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let z = keys.read(args.get(1)).map(as_zset).transpose()?;
    out.array(args.len() - 2);
    for m in args.iter().skip(2) {
        match z.and_then(|z| z.score(m)) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
    Ok(())
}

/// ZRANK/ZREVRANK key member [WITHSCORE]: the member's rank, or [rank, score] with
/// WITHSCORE (Redis 7.2's option, accepted here as an extension). Like 7.2, the option is
/// checked before the key, more than one extra argument is an arity error, and a missing
/// member is a null array when WITHSCORE was asked for (a null bulk otherwise).
fn rank_generic(ctx: &mut Ctx<'_>, args: Args<'_>, rev: bool) -> CmdResult {
    let withscore = match args.len() {
        3 => false,
        4 if args.get(3).eq_ignore_ascii_case(b"withscore") => true,
        4 => return Err(CmdError::Syntax),
        _ => return Err(CmdError::Arity(ctx.cmd.name.to_string())),
    };
    let (mut keys, out) = ctx.keys_out();
    let z = keys.read(args.get(1)).map(as_zset).transpose()?;
    match z.and_then(|z| z.rank(args.get(2)).map(|(r, s)| (r, s, z.len()))) {
        Some((r, score, len)) => {
            let rank = (if rev { len - 1 - r } else { r }) as i64;
            if withscore {
                out.array(2);
                out.int(rank);
                out.double(score);
            } else {
                out.int(rank);
            }
        }
        None if withscore => out.null_array(),
        None => out.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rank_generic(ctx, args, true)
}

/// ZCOUNT key min max.
fn zcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (min, max) = parse_score_range(args.get(2), args.get(3))?;
    let (mut keys, out) = ctx.keys_out();
    let z = keys.read(args.get(1)).map(as_zset).transpose()?;
    out.int(z.map_or(0, |z| z.score_ranks(min, max).len()) as i64);
    Ok(())
}

/// ZLEXCOUNT key min max.
fn zlexcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (min, max) = parse_lex_range(args.get(2), args.get(3))?;
    let (mut keys, out) = ctx.keys_out();
    let z = keys.read(args.get(1)).map(as_zset).transpose()?;
    out.int(z.map_or(0, |z| z.lex_ranks(min, max).len()) as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Ranges

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeBy {
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range request over ranks, scores or members.
enum Bounds<'a> {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound<'a>, LexBound<'a>),
}

/// A parsed ZRANGE-family request.
struct RangeReq<'a> {
    bounds: Bounds<'a>,
    rev: bool,
    withscores: bool,
    offset: i64,
    /// Negative: no limit.
    limit: i64,
}

/// Parses `<src> <min> <max> [BYSCORE|BYLEX] [REV] [WITHSCORES] [LIMIT offset count]`
/// starting at the source key's index, for ZRANGE, ZRANGESTORE and the legacy forms (which
/// fix `by` and/or `rev`).
fn parse_range<'a>(
    args: Args<'a>,
    src: usize,
    store: bool,
    mut by: RangeBy,
    mut rev: Option<bool>,
) -> Result<RangeReq<'a>, CmdError> {
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut limited = false;
    let mut j = src + 3;
    while j < args.len() {
        let opt = args.get(j);
        let left = args.len() - j - 1;
        if !store && opt.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
        } else if opt.eq_ignore_ascii_case(b"limit") && left >= 2 {
            offset = int_arg(args.get(j + 1))?;
            limit = int_arg(args.get(j + 2))?;
            limited = true;
            j += 2;
        } else if rev.is_none() && opt.eq_ignore_ascii_case(b"rev") {
            rev = Some(true);
        } else if by == RangeBy::Auto && opt.eq_ignore_ascii_case(b"bylex") {
            by = RangeBy::Lex;
        } else if by == RangeBy::Auto && opt.eq_ignore_ascii_case(b"byscore") {
            by = RangeBy::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if by == RangeBy::Auto {
        by = RangeBy::Rank;
    }
    if limited && by == RangeBy::Rank {
        return Err(CmdError::msg(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == RangeBy::Lex {
        return Err(CmdError::msg(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (args.get(src + 1), args.get(src + 2));
    if rev && by != RangeBy::Rank {
        // Given as max, min.
        std::mem::swap(&mut lo, &mut hi);
    }
    let bounds = match by {
        RangeBy::Score => {
            let (a, b) = parse_score_range(lo, hi)?;
            Bounds::Score(a, b)
        }
        RangeBy::Lex => {
            let (a, b) = parse_lex_range(lo, hi)?;
            Bounds::Lex(a, b)
        }
        _ => Bounds::Rank(int_arg(lo)?, int_arg(hi)?),
    };
    Ok(RangeReq {
        bounds,
        rev,
        withscores,
        offset,
        limit,
    })
}

/// The ascending rank range a request selects in `z` (to be walked downwards when `rev`).
fn resolve_range(z: &ZSetValue, req: &RangeReq<'_>) -> std::ops::Range<usize> {
    let len = z.len() as i64;
    let r = match req.bounds {
        Bounds::Rank(mut start, mut end) => {
            if start < 0 {
                start += len;
            }
            if end < 0 {
                end += len;
            }
            start = start.max(0);
            if start > end || start >= len {
                return 0..0;
            }
            end = end.min(len - 1);
            let (s, e) = (start as usize, end as usize + 1);
            return if req.rev {
                z.len() - e..z.len() - s
            } else {
                s..e
            };
        }
        Bounds::Score(min, max) => z.score_ranks(min, max),
        Bounds::Lex(min, max) => z.lex_ranks(min, max),
    };
    // A negative offset selects nothing (Redis walks past the end), as does one past the set.
    if req.offset < 0 || (req.offset > 0 && req.offset >= len) {
        return 0..0;
    }
    let offset = req.offset as usize;
    let n = r.len().saturating_sub(offset);
    let n = if req.limit >= 0 {
        n.min(usize::try_from(req.limit).unwrap_or(usize::MAX))
    } else {
        n
    };
    if req.rev {
        let hi = r.end - offset.min(r.len());
        hi - n..hi
    } else {
        let lo = r.start + offset.min(r.len());
        lo..lo + n
    }
}

/// The read forms: ZRANGE, ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX.
fn range_reply(ctx: &mut Ctx<'_>, args: Args<'_>, by: RangeBy, rev: Option<bool>) -> CmdResult {
    let req = parse_range(args, 1, false, by, rev)?;
    let (mut keys, out) = ctx.keys_out();
    let Some(z) = keys.read(args.get(1)).map(as_zset).transpose()? else {
        out.array(0);
        return Ok(());
    };
    let r = resolve_range(z, &req);
    reply_pairs(
        out,
        r.len(),
        z.range(r.start, r.end, req.rev),
        req.withscores,
    );
    Ok(())
}

fn zrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_reply(ctx, args, RangeBy::Auto, None)
}

fn zrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_reply(ctx, args, RangeBy::Rank, Some(true))
}

fn zrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_reply(ctx, args, RangeBy::Score, Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_reply(ctx, args, RangeBy::Score, Some(true))
}

fn zrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_reply(ctx, args, RangeBy::Lex, Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_reply(ctx, args, RangeBy::Lex, Some(true))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]: the result is
/// created as a skiplist when a rank range is known to be too long for a listpack, as in
/// Redis, and the destination is deleted when the result is empty.
fn zrangestore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let req = parse_range(args, 2, true, RangeBy::Auto, None)?;
    let limits = limits(ctx);
    let result = {
        let mut keys = ctx.keys();
        match keys.read(args.get(2)).map(as_zset).transpose()? {
            None => ZSetValue::default(),
            Some(z) => {
                let r = resolve_range(z, &req);
                let hint = if matches!(req.bounds, Bounds::Rank(..)) {
                    r.len()
                } else {
                    0
                };
                let mut dst = ZSetValue::with_hint(hint, 0, limits);
                for (m, s) in z.range(r.start, r.end, req.rev) {
                    dst.insert(m, s, limits);
                }
                dst
            }
        }
    };
    let n = result.len();
    store_zset(ctx, args.get(1), result, "zrangestore");
    ctx.out.int(n as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Range removal

/// ZREMRANGEBYRANK / BYSCORE / BYLEX key min max: the number removed.
fn remrange(ctx: &mut Ctx<'_>, args: Args<'_>, by: RangeBy) -> CmdResult {
    let bounds = match by {
        RangeBy::Score => {
            let (a, b) = parse_score_range(args.get(2), args.get(3))?;
            Bounds::Score(a, b)
        }
        RangeBy::Lex => {
            let (a, b) = parse_lex_range(args.get(2), args.get(3))?;
            Bounds::Lex(a, b)
        }
        _ => Bounds::Rank(int_arg(args.get(2))?, int_arg(args.get(3))?),
    };
    let req = RangeReq {
        bounds,
        rev: false,
        withscores: false,
        offset: 0,
        limit: -1,
    };
    let key = args.get(1);
    let removed = {
        let mut keys = ctx.keys();
        let Some(e) = keys.write(key) else {
            ctx.out.int(0);
            return Ok(());
        };
        let z = as_zset_mut(e)?;
        let r = resolve_range(z, &req);
        let removed = z.remove_range(r.start, r.end);
        if removed > 0 {
            let event = match by {
                RangeBy::Score => "zremrangebyscore",
                RangeBy::Lex => "zremrangebylex",
                _ => "zremrangebyrank",
            };
            removed_from(&mut keys, key, event);
        }
        removed
    };
    ctx.dirty += removed as u64;
    ctx.out.int(removed as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remrange(ctx, args, RangeBy::Rank)
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remrange(ctx, args, RangeBy::Score)
}

fn zremrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remrange(ctx, args, RangeBy::Lex)
}

// ---------------------------------------------------------------------------------------
// Pops

/// Which end a pop takes members from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PopEnd {
    Min,
    Max,
}

/// The reply shape of a pop.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PopShape {
    /// member, score, member, score… (ZPOPMIN/ZPOPMAX in RESP2 or without a count).
    Flat,
    /// [[member, score]…] (ZPOPMIN/ZPOPMAX with a count in RESP3).
    Pairs,
    /// key, member, score (BZPOPMIN/BZPOPMAX).
    KeyFlat,
    /// [key, [[member, score]…]] (ZMPOP/BZMPOP).
    KeyPairs,
}

/// Pops up to `count` (>= 1) members from `end` of the sorted set at `key` and writes the
/// reply in `shape`. Returns `Ok(None)`, writing nothing, if the key does not exist;
/// WRONGTYPE if it is not a sorted set; otherwise how many members were popped (each one
/// change for the caller's dirty count). The key is deleted when emptied.
pub(crate) fn pop_reply(
    keys: &mut Keys<'_, '_>,
    out: &mut Reply<'_>,
    key: &[u8],
    end: PopEnd,
    count: usize,
    shape: PopShape,
) -> Result<Option<usize>, CmdError> {
    let Some(e) = keys.write(key) else {
        return Ok(None);
    };
    let z = as_zset_mut(e)?;
    let len = z.len();
    let n = count.min(len);
    let (start, stop) = match end {
        PopEnd::Min => (0, n),
        PopEnd::Max => (len - n, len),
    };
    match shape {
        PopShape::Flat => out.array(2 * n),
        PopShape::Pairs => out.array(n),
        PopShape::KeyFlat => {
            out.array(2 * n + 1);
            out.bulk(key);
        }
        PopShape::KeyPairs => {
            out.array(2);
            out.bulk(key);
            out.array(n);
        }
    }
    let pairs = matches!(shape, PopShape::Pairs | PopShape::KeyPairs);
    for (m, s) in z.range(start, stop, end == PopEnd::Max) {
        if pairs {
            out.array(2);
        }
        out.bulk(m);
        out.double(s);
    }
    z.remove_range(start, stop);
    let event = match end {
        PopEnd::Min => "zpopmin",
        PopEnd::Max => "zpopmax",
    };
    removed_from(keys, key, event);
    Ok(Some(n))
}

/// ZPOPMIN / ZPOPMAX key [count].
fn pop_generic(ctx: &mut Ctx<'_>, args: Args<'_>, end: PopEnd) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match args.try_get(2) {
        None => None,
        Some(c) => Some(
            parse_i64(c)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(CmdError::msg("ERR value is out of range, must be positive"))?,
        ),
    };
    let key = args.get(1);
    let (mut keys, out) = ctx.keys_out();
    if count == Some(0) {
        if keys.kind(key).is_some_and(|k| k != Kind::ZSet) {
            return Err(CmdError::WrongType);
        }
        out.array(0);
        return Ok(());
    }
    let shape = if count.is_some() && out.is_resp3() {
        PopShape::Pairs
    } else {
        PopShape::Flat
    };
    let popped = pop_reply(&mut keys, out, key, end, count.unwrap_or(1), shape)?;
    if popped.is_none() {
        out.array(0);
    }
    ctx.dirty += popped.unwrap_or(0) as u64;
    Ok(())
}

fn zpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop_generic(ctx, args, PopEnd::Min)
}

fn zpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop_generic(ctx, args, PopEnd::Max)
}

/// ZMPOP's keys (BZMPOP's one argument later): `numkeys` keys after it, when they fit
/// before a MIN|MAX argument.
fn zmpop_keys(args: Args<'_>) -> KeyPositions {
    super::numkeys_positions(args, 1, 1)
}

fn bzmpop_keys(args: Args<'_>) -> KeyPositions {
    super::numkeys_positions(args, 2, 1)
}

/// Parses ZMPOP/BZMPOP's `numkeys key... MIN|MAX [COUNT count]` starting at `numkeys_at`:
/// (number of keys, end, count).
pub(crate) fn parse_mpop(
    args: Args<'_>,
    numkeys_at: usize,
) -> Result<(usize, PopEnd, usize), CmdError> {
    let positive = |s: &[u8], msg: &'static str| {
        parse_i64(s)
            .filter(|&n| n >= 1)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(CmdError::msg(msg))
    };
    let numkeys = positive(args.get(numkeys_at), "ERR numkeys should be greater than 0")?;
    let where_at = numkeys_at
        .checked_add(numkeys)
        .and_then(|n| n.checked_add(1))
        .filter(|&w| w < args.len())
        .ok_or(CmdError::Syntax)?;
    let end = match args.get(where_at) {
        w if w.eq_ignore_ascii_case(b"min") => PopEnd::Min,
        w if w.eq_ignore_ascii_case(b"max") => PopEnd::Max,
        _ => return Err(CmdError::Syntax),
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        match args.try_get(j + 1) {
            Some(v) if count.is_none() && args.get(j).eq_ignore_ascii_case(b"count") => {
                count = Some(positive(v, "ERR count should be greater than 0")?);
            }
            _ => return Err(CmdError::Syntax),
        }
        j += 2;
    }
    Ok((numkeys, end, count.unwrap_or(1)))
}

/// ZMPOP numkeys key... MIN|MAX [COUNT count]: pops from the first non-empty sorted set;
/// null if there is none.
fn zmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (numkeys, end, count) = parse_mpop(args, 1)?;
    let (mut keys, out) = ctx.keys_out();
    let mut popped = None;
    for k in args.slice_from(2).iter().take(numkeys) {
        if let Some(n) = pop_reply(&mut keys, out, k, end, count, PopShape::KeyPairs)? {
            popped = Some((k, n));
            break;
        }
    }
    let Some((key, n)) = popped else {
        out.null_array();
        // Nothing changed, nothing to replay.
        ctx.prevent_propagation();
        return Ok(());
    };
    ctx.dirty += n as u64;
    // As Redis: the pop it did, with the count it got.
    let n = crate::propagate::num(n);
    ctx.propagate_as(&[zpop_name(end == PopEnd::Min), key, &n]);
    Ok(())
}

/// BZPOPMIN/BZPOPMAX key... timeout: pops one member from the first non-empty sorted set,
/// replying [key, member, score]; blocks on all the keys when every one is missing.
fn bpop(ctx: &mut Ctx<'_>, args: Args<'_>, end: PopEnd) -> CmdResult {
    let deadline = blocking::parse_timeout(args.get(args.len() - 1), ctx.now_ms)?;
    let names: Vec<&[u8]> = args.iter().skip(1).take(args.len() - 2).collect();
    {
        let (mut keys, out) = ctx.keys_out();
        for &key in &names {
            if let Some(n) = pop_reply(&mut keys, out, key, end, 1, PopShape::KeyFlat)? {
                ctx.dirty += n as u64;
                ctx.propagate_as(&[zpop_name(end == PopEnd::Min), key]);
                return Ok(());
            }
        }
    }
    ctx.prevent_propagation();
    let op = WaitOp::ZPop {
        min: end == PopEnd::Min,
    };
    blocking::block(ctx, &names, op, deadline);
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop(ctx, args, PopEnd::Min)
}

fn bzpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop(ctx, args, PopEnd::Max)
}

/// BZMPOP timeout numkeys key... MIN|MAX [COUNT count]: ZMPOP, or block on every key.
fn bzmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let deadline = blocking::parse_timeout(args.get(1), ctx.now_ms)?;
    let (numkeys, end, count) = parse_mpop(args, 2)?;
    let names: Vec<&[u8]> = args.slice_from(3).iter().take(numkeys).collect();
    {
        let (mut keys, out) = ctx.keys_out();
        for &key in &names {
            if let Some(n) = pop_reply(&mut keys, out, key, end, count, PopShape::KeyPairs)? {
                ctx.dirty += n as u64;
                let n = crate::propagate::num(n);
                ctx.propagate_as(&[zpop_name(end == PopEnd::Min), key, &n]);
                return Ok(());
            }
        }
    }
    ctx.prevent_propagation();
    let op = WaitOp::ZMultiPop {
        min: end == PopEnd::Min,
        count,
    };
    blocking::block(ctx, &names, op, deadline);
    Ok(())
}

/// Serves a client blocked in BZPOPMIN/BZPOPMAX/BZMPOP on `key`, which holds a non-empty
/// sorted set (the caller checked): the pop its command would have done.
pub(crate) fn serve_blocked(
    keys: &mut Keys<'_, '_>,
    key: &[u8],
    op: &WaitOp,
    out: &mut Reply<'_>,
) -> Served {
    let (min, count, shape) = match *op {
        WaitOp::ZPop { min } => (min, 1, PopShape::KeyFlat),
        WaitOp::ZMultiPop { min, count } => (min, count, PopShape::KeyPairs),
        _ => return Served::NotReady,
    };
    let end = if min { PopEnd::Min } else { PopEnd::Max };
    match pop_reply(keys, out, key, end, count, shape) {
        Ok(Some(n)) => {
            let n_arg = crate::propagate::num(n);
            crate::propagate::emit(keys.db_index(), &[zpop_name(min), key, &n_arg]);
            Served::Done(n as u64)
        }
        _ => Served::NotReady,
    }
}

/// The pop a blocking sorted-set pop propagates as.
fn zpop_name(min: bool) -> &'static [u8] {
    if min {
        b"ZPOPMIN"
    } else {
        b"ZPOPMAX"
    }
}

// ---------------------------------------------------------------------------------------
// ZRANDMEMBER

/// ZRANDMEMBER key [count [WITHSCORES]]. Without a count one member (null if missing). A
/// positive count returns distinct members (at most the set's size), a negative one that
/// many uniform picks with repeats.
fn zrandmember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut rng = rand::thread_rng();
    if args.len() == 2 {
        let (mut keys, out) = ctx.keys_out();
        let z = keys.read(args.get(1)).map(as_zset).transpose()?;
        match z.and_then(|z| z.random(&mut rng)) {
            Some((m, _)) => out.bulk(m),
            None => out.null(),
        }
        return Ok(());
    }
    let (l, withscores) = random_count(args, Some(b"withscores"))?;
    let (mut keys, out) = ctx.keys_out();
    let Some(z) = keys.read(args.get(1)).map(as_zset).transpose()? else {
        out.array(0);
        return Ok(());
    };
    let count = usize::try_from(l.unsigned_abs()).unwrap_or(usize::MAX);
    let size = z.len();
    if l < 0 || count == 1 {
        // Repeats allowed: uniform picks by rank (a listpack is decoded once).
        let all: Vec<(&[u8], f64)> = match z {
            ZSetValue::Listpack(_) => z.iter().collect(),
            ZSetValue::Skiplist(_) => Vec::new(),
        };
        let picks = (0..count).map(|_| {
            let r = rand::Rng::gen_range(&mut rng, 0..size);
            all.get(r)
                .copied()
                .or_else(|| z.get(r))
                .unwrap_or((b"", 0.0))
        });
        reply_pairs(out, count, picks, withscores);
        return Ok(());
    }
    if count >= size {
        // The whole set, from the highest score down as Redis walks it.
        reply_pairs(out, size, z.range(0, size, true), withscores);
        return Ok(());
    }
    // Distinct ranks, uniformly chosen, in random order.
    let mut ranks = rand::seq::index::sample(&mut rng, size, count).into_vec();
    ranks.shuffle(&mut rng);
    let picks: Vec<(&[u8], f64)> = match z {
        ZSetValue::Listpack(_) => {
            let all: Vec<_> = z.iter().collect();
            ranks.iter().map(|&r| all[r]).collect()
        }
        ZSetValue::Skiplist(_) => ranks.iter().filter_map(|&r| z.get(r)).collect(),
    };
    reply_pairs(out, picks.len(), picks.into_iter(), withscores);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD

/// An input of the set algebra: a sorted set, or a plain set whose members score 1.
enum Source {
    Missing,
    Z(ZSetValue),
    S(SetValue),
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::Z(z) => z.score(member),
            Source::S(s) => s.contains(member).then_some(1.0),
        }
    }

    /// Calls `f` on every (member, score).
    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Source::Missing => {}
            Source::Z(z) => z.iter().for_each(|(m, s)| f(m, s)),
            Source::S(s) => s.iter().for_each(|m| f(&m, 1.0)),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Folds `v` into `acc`; +inf + -inf gives 0, as in Redis.
    fn apply(self, acc: &mut f64, v: f64) {
        match self {
            Aggregate::Sum => {
                *acc += v;
                if acc.is_nan() {
                    *acc = 0.0;
                }
            }
            Aggregate::Min => {
                if v < *acc {
                    *acc = v;
                }
            }
            Aggregate::Max => {
                if v > *acc {
                    *acc = v;
                }
            }
        }
    }
}

/// Keys of the numkeys commands with numkeys at argument 1 (ZUNION, ZINTER, ZDIFF,
/// ZINTERCARD): none when numkeys is invalid (the handler then fails before any lookup).
fn numkeys_at_1(args: Args<'_>) -> KeyPositions {
    super::numkeys_positions(args, 1, 0)
}

/// The STORE forms: the destination, then the numkeys source keys after argument 2.
fn store_keys(args: Args<'_>) -> KeyPositions {
    let mut keys = super::numkeys_positions(args, 2, 0);
    if !keys.is_empty() {
        keys.insert(0, 1);
    }
    keys
}

/// A parsed set-algebra request.
struct AlgebraReq {
    sources: Vec<(Source, f64)>,
    aggregate: Aggregate,
    withscores: bool,
    limit: usize,
}

/// Parses `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES] [LIMIT n]`
/// (which options apply depends on the command) and loads the inputs, checking their types
/// before the options as Redis does.
fn parse_algebra(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    at: usize,
    op: SetOp,
    store: bool,
    card: bool,
) -> Result<AlgebraReq, CmdError> {
    let setnum = int_arg(args.get(at))?;
    if setnum < 1 {
        let name = ctx.cmd.name;
        return Err(CmdError::msg(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    let setnum = usize::try_from(setnum)
        .ok()
        .filter(|&n| n < args.len() - at)
        .ok_or(CmdError::Syntax)?;
    let mut sources = Vec::with_capacity(setnum);
    {
        let mut keys = ctx.keys();
        for k in args.slice_from(at + 1).iter().take(setnum) {
            let src = match keys.read(k).map(Entry::value) {
                None => Source::Missing,
                Some(ValueRef::ZSet(z)) => Source::Z(z.clone()),
                Some(ValueRef::Set(s)) => Source::S(s.clone()),
                Some(_) => return Err(CmdError::WrongType),
            };
            sources.push((src, 1.0));
        }
    }
    let mut req = AlgebraReq {
        sources,
        aggregate: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = at + 1 + setnum;
    while j < args.len() {
        let opt = args.get(j);
        let remaining = args.len() - j;
        if op != SetOp::Diff && !card && remaining > setnum && opt.eq_ignore_ascii_case(b"weights")
        {
            for (i, src) in req.sources.iter_mut().enumerate() {
                src.1 = parse_strict_float(args.get(j + 1 + i))
                    .ok_or(CmdError::msg("ERR weight value is not a float"))?;
            }
            j += 1 + setnum;
        } else if op != SetOp::Diff
            && !card
            && remaining >= 2
            && opt.eq_ignore_ascii_case(b"aggregate")
        {
            let a = args.get(j + 1);
            req.aggregate = if a.eq_ignore_ascii_case(b"sum") {
                Aggregate::Sum
            } else if a.eq_ignore_ascii_case(b"min") {
                Aggregate::Min
            } else if a.eq_ignore_ascii_case(b"max") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if !store && !card && opt.eq_ignore_ascii_case(b"withscores") {
            req.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && opt.eq_ignore_ascii_case(b"limit") {
            req.limit = parse_i64(args.get(j + 1))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(CmdError::msg("ERR LIMIT can't be negative"))?;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(req)
}

/// `weight * score`, with NaN (0 * inf) taken as 0 as in Redis.
fn weighted(weight: f64, score: f64) -> f64 {
    let v = weight * score;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// Computes the result, sorted by (score, member); stops after `limit` members for
/// ZINTERCARD (0: no limit).
fn compute(req: &mut AlgebraReq, op: SetOp) -> Vec<(Vec<u8>, f64)> {
    let agg = req.aggregate;
    let mut out: Vec<(Vec<u8>, f64)> = Vec::new();
    match op {
        SetOp::Inter => {
            req.sources.sort_by_key(|(s, _)| s.len());
            let Some(((first, w0), rest)) = req.sources.split_first() else {
                return out;
            };
            first.for_each(|m, s| {
                if req.limit > 0 && out.len() >= req.limit {
                    return;
                }
                let mut acc = weighted(*w0, s);
                for (src, w) in rest {
                    match src.score(m) {
                        Some(v) => agg.apply(&mut acc, weighted(*w, v)),
                        None => return,
                    }
                }
                out.push((m.to_vec(), acc));
            });
        }
        SetOp::Union => {
            let mut acc: HashMap<Vec<u8>, f64, ahash::RandomState> = HashMap::default();
            for (src, w) in &req.sources {
                src.for_each(|m, s| {
                    let v = weighted(*w, s);
                    match acc.get_mut(m) {
                        Some(a) => agg.apply(a, v),
                        None => {
                            acc.insert(m.to_vec(), v);
                        }
                    }
                });
            }
            out = acc.into_iter().collect();
        }
        SetOp::Diff => {
            let Some(((first, _), rest)) = req.sources.split_first() else {
                return out;
            };
            first.for_each(|m, s| {
                if rest.iter().all(|(src, _)| src.score(m).is_none()) {
                    out.push((m.to_vec(), s));
                }
            });
        }
    }
    out.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// ZUNION / ZINTER / ZDIFF numkeys key...: the result as a range reply.
fn algebra_reply(ctx: &mut Ctx<'_>, args: Args<'_>, op: SetOp) -> CmdResult {
    let mut req = parse_algebra(ctx, args, 1, op, false, false)?;
    let result = compute(&mut req, op);
    reply_pairs(
        &mut ctx.out,
        result.len(),
        result.iter().map(|(m, s)| (m.as_slice(), *s)),
        req.withscores,
    );
    Ok(())
}

/// The STORE forms: stores the result (deleting the destination if it is empty) and
/// replies with its size.
fn algebra_store(ctx: &mut Ctx<'_>, args: Args<'_>, op: SetOp) -> CmdResult {
    let mut req = parse_algebra(ctx, args, 2, op, true, false)?;
    let result = compute(&mut req, op);
    let z = build_zset(&result, limits(ctx));
    let event = match op {
        SetOp::Union => "zunionstore",
        SetOp::Inter => "zinterstore",
        SetOp::Diff => "zdiffstore",
    };
    store_zset(ctx, args.get(1), z, event);
    ctx.out.int(result.len() as i64);
    Ok(())
}

fn zunion(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra_reply(ctx, args, SetOp::Union)
}

fn zinter(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra_reply(ctx, args, SetOp::Inter)
}

fn zdiff(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra_reply(ctx, args, SetOp::Diff)
}

fn zunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra_store(ctx, args, SetOp::Union)
}

fn zinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra_store(ctx, args, SetOp::Inter)
}

fn zdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    algebra_store(ctx, args, SetOp::Diff)
}

/// ZINTERCARD numkeys key... [LIMIT limit].
fn zintercard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut req = parse_algebra(ctx, args, 1, SetOp::Inter, false, true)?;
    let n = compute(&mut req, SetOp::Inter).len();
    ctx.out.int(n as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ZSCAN

/// A listpack score as Redis stores it (`d2string`): integers up to 2^62 in plain digits,
/// anything else like `%.17g`.
fn listpack_score_text(s: f64, buf: &mut Vec<u8>) {
    const SAFE: f64 = (i64::MAX / 2) as f64;
    if s != 0.0 && s.fract() == 0.0 && (-SAFE..=SAFE).contains(&s) {
        buf.extend_from_slice((s as i64).to_string().as_bytes());
    } else {
        format_double(s, buf);
    }
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: member, score pairs (scores as bulk
/// strings). The cursor is checked first, then the key, then the options, in Redis's order.
fn zscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2)).ok_or(CmdError::msg("ERR invalid cursor"))?;
    let (mut keys, out) = ctx.keys_out();
    let Some(z) = keys.read(args.get(1)).map(as_zset).transpose()? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let (count, pattern) = scan_options(args, 3)?;
    let listpack = matches!(z, ZSetValue::Listpack(_));
    // The scan lends members to the callback only, so matches are copied out.
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let next = z.scan(cursor, count, |m, s| {
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            let mut text = Vec::new();
            if listpack {
                listpack_score_text(s, &mut text);
            } else {
                format_double(s, &mut text);
            }
            found.push((m.to_vec(), text));
        }
    });
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(2 * found.len());
    for (m, s) in &found {
        out.bulk(m);
        out.bulk(s);
    }
    Ok(())
}
