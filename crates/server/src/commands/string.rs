//! String commands: GET, SET and its variants, counters, ranges and LCS.
//!
//! Semantics, replies and error lines follow Redis 7.0's `t_string.c`. Writes to a key of
//! another type are WRONGTYPE except for the commands that replace the value outright (SET,
//! MSET…). In-place edits (APPEND, SETRANGE) keep the key's TTL; the counters rewrite the
//! value in the entry, which keeps the TTL too.

use std::sync::atomic::Ordering::Relaxed;

use flowkv_protocol::num::fmt_i64;
use flowkv_protocol::Args;
use flowkv_store::num::{format_incr_float, parse_f64, parse_i64, ulp};
use flowkv_store::{Entry, Expire, Kind, Value};

use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::config::notify::{GENERIC, STRING};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;

pub static COMMANDS: &[Command] = &[
    Command::new("get", 2, Group::String)
        .flags(READONLY | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .handler(get)
        .doc("Get the value of a key", "1.0.0", "O(1)"),
    Command::new("set", -3, Group::String)
        .flags(WRITE | DENYOOM)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE | ks::VARIABLE_FLAGS)
                .notes("RW and ACCESS due to the optional `GET` argument"),
        ])
        .handler(set)
        .doc("Set the string value of a key", "1.0.0", "O(1)"),
    Command::new("setnx", 3, Group::String)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::OW | ks::INSERT)])
        .handler(setnx)
        .doc(
            "Set the value of a key, only if the key does not exist",
            "1.0.0",
            "O(1)",
        ),
    Command::new("setex", 4, Group::String)
        .flags(WRITE | DENYOOM)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::OW | ks::UPDATE)])
        .handler(setex)
        .doc("Set the value and expiration of a key", "2.0.0", "O(1)"),
    Command::new("psetex", 4, Group::String)
        .flags(WRITE | DENYOOM)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::OW | ks::UPDATE)])
        .handler(psetex)
        .doc(
            "Set the value and expiration in milliseconds of a key",
            "2.6.0",
            "O(1)",
        ),
    Command::new("getset", 3, Group::String)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .handler(getset)
        .doc(
            "Set the string value of a key and return its old value",
            "1.0.0",
            "O(1)",
        ),
    Command::new("getdel", 2, Group::String)
        .flags(WRITE | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE)])
        .handler(getdel)
        .doc("Get the value of a key and delete the key", "6.2.0", "O(1)"),
    Command::new("getex", -2, Group::String)
        .flags(WRITE | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)
                .notes("RW and UPDATE because it changes the TTL"),
        ])
        .handler(getex)
        .doc(
            "Get the value of a key and optionally set its expiration",
            "6.2.0",
            "O(1)",
        ),
    Command::new("mget", -2, Group::String)
        .flags(READONLY | FAST)
        .acl(acl::STRING)
        .keys(1, -1, 1)
        .tips(&["request_policy:multi_shard"])
        .handler(mget)
        .doc(
            "Get the values of all the given keys",
            "1.0.0",
            "O(N) where N is the number of keys to retrieve.",
        ),
    Command::new("mset", -3, Group::String)
        .flags(WRITE | DENYOOM)
        .acl(acl::STRING)
        .keys(1, -1, 2)
        .key_specs(&[ks::spec(ks::OW | ks::UPDATE, ks::index(1), ks::range(-1, 2, 0))])
        .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"])
        .handler(mset)
        .doc(
            "Set multiple keys to multiple values",
            "1.0.1",
            "O(N) where N is the number of keys to set.",
        ),
    Command::new("msetnx", -3, Group::String)
        .flags(WRITE | DENYOOM)
        .acl(acl::STRING)
        .keys(1, -1, 2)
        .key_specs(&[ks::spec(ks::OW | ks::INSERT, ks::index(1), ks::range(-1, 2, 0))])
        .tips(&["request_policy:multi_shard", "response_policy:agg_min"])
        .handler(msetnx)
        .doc(
            "Set multiple keys to multiple values, only if none of the keys exist",
            "1.0.1",
            "O(N) where N is the number of keys to set.",
        ),
    Command::new("append", 3, Group::String)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::INSERT)])
        .handler(append)
        .doc(
            "Append a value to a key",
            "2.0.0",
            "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.",
        ),
    Command::new("strlen", 2, Group::String)
        .flags(READONLY | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RO)])
        .handler(strlen)
        .doc("Get the length of the value stored in a key", "2.2.0", "O(1)"),
    Command::new("incr", 2, Group::String)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .handler(incr)
        .doc("Increment the integer value of a key by one", "1.0.0", "O(1)"),
    Command::new("decr", 2, Group::String)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .handler(decr)
        .doc("Decrement the integer value of a key by one", "1.0.0", "O(1)"),
    Command::new("incrby", 3, Group::String)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .handler(incrby)
        .doc(
            "Increment the integer value of a key by the given amount",
            "1.0.0",
            "O(1)",
        ),
    Command::new("decrby", 3, Group::String)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .handler(decrby)
        .doc(
            "Decrement the integer value of a key by the given number",
            "1.0.0",
            "O(1)",
        ),
    Command::new("incrbyfloat", 3, Group::String)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .handler(incrbyfloat)
        .doc(
            "Increment the float value of a key by the given amount",
            "2.6.0",
            "O(1)",
        ),
    Command::new("getrange", 4, Group::String)
        .flags(READONLY)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .handler(getrange)
        .doc(
            "Get a substring of the string stored at a key",
            "2.4.0",
            "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
        ),
    Command::new("setrange", 4, Group::String)
        .flags(WRITE | DENYOOM)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .handler(setrange)
        .doc(
            "Overwrite part of a string at key starting at the specified offset",
            "2.2.0",
            "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.",
        ),
    Command::new("substr", 4, Group::String)
        .flags(READONLY)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .handler(getrange)
        .doc(
            "Get a substring of the string stored at a key",
            "1.0.0",
            "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
        ),
    Command::new("lcs", -3, Group::String)
        .flags(READONLY)
        .acl(acl::STRING)
        .keys(1, 2, 1)
        .handler(lcs)
        .doc(
            "Find longest common substring",
            "7.0.0",
            "O(N*M) where N and M are the lengths of s1 and s2, respectively",
        ),
];

/// Parses an integer argument with Redis's strict rules.
pub(crate) fn int_arg(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// The configured `proto-max-bulk-len`: the largest string a command may build.
pub(crate) fn max_string_len(ctx: &Ctx<'_>) -> u64 {
    ctx.srv.config.hot.proto_max_bulk_len.load(Relaxed)
}

/// "ERR string exceeds maximum allowed size" unless `size + add` fits in `max`.
pub(crate) fn check_string_len(size: u64, add: u64, max: u64) -> Result<(), CmdError> {
    match size.checked_add(add) {
        Some(total) if total <= max => Ok(()),
        _ => Err(CmdError::msg(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// How an expire argument of SET / GETEX is expressed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TtlUnit {
    /// EX: seconds from now.
    Ex,
    /// PX: milliseconds from now.
    Px,
    /// EXAT: unix time in seconds.
    ExAt,
    /// PXAT: unix time in milliseconds.
    PxAt,
}

/// The options SET and GETEX share (each command accepts its own subset).
#[derive(Default)]
struct ExtOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(TtlUnit, &'a [u8])>,
}

/// Parses `SET key value [opts]` (`is_set`) or `GETEX key [opts]`. Any repeated, conflicting
/// or foreign option is "ERR syntax error", as Redis reports it.
fn parse_ext_opts(args: Args<'_>, is_set: bool) -> Result<ExtOpts<'_>, CmdError> {
    let mut o = ExtOpts::default();
    let mut i = if is_set { 3 } else { 2 };
    while i < args.len() {
        let opt = args.get(i);
        let next = args.try_get(i + 1);
        let has_ttl = o.expire.is_some();
        let unit = match opt.to_ascii_uppercase().as_slice() {
            b"NX" if is_set && !o.xx => {
                o.nx = true;
                None
            }
            b"XX" if is_set && !o.nx => {
                o.xx = true;
                None
            }
            b"GET" if is_set => {
                o.get = true;
                None
            }
            b"KEEPTTL" if is_set && !has_ttl => {
                o.keepttl = true;
                None
            }
            b"PERSIST" if !is_set && !has_ttl => {
                o.persist = true;
                None
            }
            b"EX" => Some(TtlUnit::Ex),
            b"PX" => Some(TtlUnit::Px),
            b"EXAT" => Some(TtlUnit::ExAt),
            b"PXAT" => Some(TtlUnit::PxAt),
            _ => return Err(CmdError::Syntax),
        };
        if let Some(unit) = unit {
            // The same unit may be repeated (the last value wins); a different one may not.
            let clash = o.keepttl || o.persist || o.expire.is_some_and(|(u, _)| u != unit);
            match next {
                Some(v) if !clash => o.expire = Some((unit, v)),
                _ => return Err(CmdError::Syntax),
            }
            i += 1;
        }
        i += 1;
    }
    Ok(o)
}

/// Turns an expire argument into an absolute unix time in ms. Zero, negative and overflowing
/// values are "ERR invalid expire time in '<cmd>' command".
fn expire_at(ctx: &Ctx<'_>, unit: TtlUnit, arg: &[u8]) -> Result<u64, CmdError> {
    let v = int_arg(arg)?;
    let invalid = || {
        CmdError::msg(format!(
            "ERR invalid expire time in '{}' command",
            ctx.cmd.name
        ))
    };
    if v <= 0 {
        return Err(invalid());
    }
    let ms = match unit {
        TtlUnit::Ex | TtlUnit::ExAt => v.checked_mul(1000).ok_or_else(invalid)?,
        TtlUnit::Px | TtlUnit::PxAt => v,
    };
    let at = match unit {
        TtlUnit::Ex | TtlUnit::Px => ms.checked_add(ctx.now_ms as i64).ok_or_else(invalid)?,
        TtlUnit::ExAt | TtlUnit::PxAt => ms,
    };
    Ok(at as u64)
}

/// Replies with a string key's value (null if missing). Returns whether the key existed.
fn reply_value(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<bool, CmdError> {
    let (mut keys, out) = ctx.keys_out();
    match keys.read(key) {
        None => {
            out.null();
            Ok(false)
        }
        Some(e) => {
            out.bulk(e.string().ok_or(CmdError::WrongType)?);
            Ok(true)
        }
    }
}

fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_value(ctx, args.get(1)).map(drop)
}

/// SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT t|KEEPTTL]. With GET the old value is the
/// reply (checked for type before anything is written); otherwise OK, or null when NX/XX
/// prevented the write.
fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let o = parse_ext_opts(args, true)?;
    let at = o.expire.map(|(u, v)| expire_at(ctx, u, v)).transpose()?;
    let key = args.get(1);
    let found = if o.get {
        reply_value(ctx, key)?
    } else {
        ctx.keys().contains(key)
    };
    if (o.nx && found) || (o.xx && !found) {
        if !o.get {
            ctx.out.null();
        }
        return Ok(());
    }
    let expire = match at {
        Some(at) => Expire::At(at),
        None if o.keepttl => Expire::Keep,
        None => Expire::Clear,
    };
    ctx.keys().set_string(key, args.get(2), expire);
    ctx.dirty += 1;
    notify(ctx, STRING, "set", key);
    if at.is_some() {
        notify(ctx, GENERIC, "expire", key);
    }
    // Propagated with an absolute deadline, or without GET, as Redis 7.0 does.
    if let Some(at) = at.filter(|_| crate::propagate::active()) {
        ctx.propagate_as(&[
            b"SET",
            key,
            args.get(2),
            b"PXAT",
            &crate::propagate::num(at),
        ]);
    } else if o.get && crate::propagate::active() {
        let kept: Vec<&[u8]> = args
            .iter()
            .enumerate()
            .filter(|(i, a)| *i < 3 || !a.eq_ignore_ascii_case(b"get"))
            .map(|(_, a)| a)
            .collect();
        ctx.propagate_as(&kept);
    }
    if !o.get {
        ctx.out.ok();
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let done = {
        let mut keys = ctx.keys();
        let done = !keys.contains(args.get(1));
        if done {
            keys.set_string(args.get(1), args.get(2), Expire::Clear);
        }
        done
    };
    if done {
        notify(ctx, STRING, "set", args.get(1));
    }
    ctx.dirty += u64::from(done);
    ctx.out.int(i64::from(done));
    Ok(())
}

/// SETEX / PSETEX: SET with a relative TTL in the given unit.
fn set_with_ttl(ctx: &mut Ctx<'_>, args: Args<'_>, unit: TtlUnit) -> CmdResult {
    let at = expire_at(ctx, unit, args.get(2))?;
    ctx.keys()
        .set_string(args.get(1), args.get(3), Expire::At(at));
    ctx.dirty += 1;
    if crate::propagate::active() {
        let at = crate::propagate::num(at);
        ctx.propagate_as(&[b"SET", args.get(1), args.get(3), b"PXAT", &at]);
    }
    notify(ctx, STRING, "set", args.get(1));
    notify(ctx, GENERIC, "expire", args.get(1));
    ctx.out.ok();
    Ok(())
}

fn setex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    set_with_ttl(ctx, args, TtlUnit::Ex)
}

fn psetex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    set_with_ttl(ctx, args, TtlUnit::Px)
}

fn getset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_value(ctx, args.get(1))?;
    ctx.keys()
        .set_string(args.get(1), args.get(2), Expire::Clear);
    ctx.dirty += 1;
    notify(ctx, STRING, "set", args.get(1));
    ctx.propagate_as(&[b"SET", args.get(1), args.get(2)]);
    Ok(())
}

fn getdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if reply_value(ctx, args.get(1))? {
        ctx.keys().remove(args.get(1));
        ctx.dirty += 1;
        notify(ctx, GENERIC, "del", args.get(1));
        ctx.propagate_as(&[b"DEL", args.get(1)]);
    }
    Ok(())
}

/// GETEX key [EX|PX|EXAT|PXAT t|PERSIST]: GET that also sets or clears the TTL. An absolute
/// time already in the past deletes the key (after replying with its value).
fn getex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let o = parse_ext_opts(args, false)?;
    let key = args.get(1);
    // Type and TTL errors come before the reply; the lookup that counts as the read is the
    // one that replies.
    let found = ctx.keys().peek(key).map(|e| (e.kind(), e.expire_at()));
    let had_ttl = match found {
        None => return reply_value(ctx, key).map(drop),
        Some((kind, _)) if kind != Kind::String => return Err(CmdError::WrongType),
        Some((_, ttl)) => ttl.is_some(),
    };
    let at = o.expire.map(|(u, v)| expire_at(ctx, u, v)).transpose()?;
    reply_value(ctx, key)?;
    let now = ctx.now_ms;
    let (changed, event) = {
        let mut keys = ctx.keys();
        match (o.expire, at) {
            (Some((TtlUnit::ExAt | TtlUnit::PxAt, _)), Some(at)) if at <= now => {
                (keys.delete_expired(key), "del")
            }
            (_, Some(at)) => (keys.set_expire(key, Some(at)), "expire"),
            _ if o.persist && had_ttl => (keys.set_expire(key, None), "persist"),
            _ => (false, ""),
        }
    };
    if changed {
        notify(ctx, GENERIC, event, key);
    }
    ctx.dirty += u64::from(changed);
    // Never propagated as is: as the PEXPIREAT, DEL or PERSIST it amounted to, or not at all.
    match (event, at) {
        ("expire", Some(at)) if crate::propagate::active() => {
            ctx.propagate_as(&[b"PEXPIREAT", key, &crate::propagate::num(at)]);
        }
        ("del", _) => ctx.propagate_as(&[b"DEL", key]),
        ("persist", _) => ctx.propagate_as(&[b"PERSIST", key]),
        _ => ctx.prevent_propagation(),
    }
    Ok(())
}

/// MGET: a null for missing keys and for keys of other types.
fn mget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    out.array(args.len() - 1);
    for key in args.iter().skip(1) {
        match keys.read(key).and_then(Entry::string) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
    Ok(())
}

/// Key/value pairs must come in pairs; the arity error names the command as Redis does.
fn check_pairs(ctx: &Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Arity(ctx.cmd.name.to_string()));
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    check_pairs(ctx, args)?;
    set_pairs(ctx, args);
    ctx.out.ok();
    Ok(())
}

/// Sets every key/value pair of MSET / MSETNX.
fn set_pairs(ctx: &mut Ctx<'_>, args: Args<'_>) {
    ctx.dirty += (args.len() / 2) as u64;
    for i in (1..args.len()).step_by(2) {
        ctx.keys()
            .set_string(args.get(i), args.get(i + 1), Expire::Clear);
        notify(ctx, STRING, "set", args.get(i));
    }
}

/// MSETNX: all or nothing — 0 and no write if any key exists.
fn msetnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    check_pairs(ctx, args)?;
    let any = {
        let mut keys = ctx.keys();
        (1..args.len())
            .step_by(2)
            .any(|i| keys.contains(args.get(i)))
    };
    if !any {
        set_pairs(ctx, args);
    }
    ctx.out.int(i64::from(!any));
    Ok(())
}

/// APPEND: edits the value in place (amortized O(1) growth), keeping the TTL.
fn append(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, add) = (args.get(1), args.get(2));
    let max = max_string_len(ctx);
    let len = {
        let mut keys = ctx.keys();
        match keys.write(key) {
            Some(e) => {
                let v = e.string_mut().ok_or(CmdError::WrongType)?;
                check_string_len(v.len() as u64, add.len() as u64, max)?;
                v.extend_from_slice(add);
                v.len()
            }
            None => {
                keys.set_string(key, add, Expire::Clear);
                add.len()
            }
        }
    };
    notify(ctx, STRING, "append", key);
    ctx.dirty += 1;
    ctx.out.int(len as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let len = match ctx.keys().read(args.get(1)) {
        None => 0,
        Some(e) => e.string().ok_or(CmdError::WrongType)?.len(),
    };

    ctx.out.int(len as i64);
    Ok(())
}

/// Adds `by` to the integer stored at `key` (0 if missing) and replies with the result. The
/// value is rewritten in the entry, so the TTL survives.
fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    // The counter is rewritten in place through the one lookup (no second probe, no heap
    // buffer for the digits): INCR is a hot path for rate limiters and counters.
    let mut digits = [0u8; 20];
    let new = {
        let mut keys = ctx.keys();
        match keys.write(key) {
            Some(e) => {
                let old = int_arg(e.string().ok_or(CmdError::WrongType)?)?;
                let new = old.checked_add(by).ok_or(CmdError::Overflow)?;
                e.set_string(fmt_i64(new, &mut digits));
                new
            }
            None => {
                keys.set_string(key, fmt_i64(by, &mut digits), Expire::Keep);
                by
            }
        }
    };
    notify(ctx, STRING, "incrby", key);
    ctx.dirty += 1;
    ctx.out.int(new);
    Ok(())
}

fn incr(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    incr_by(ctx, args.get(1), 1)
}

fn decr(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    incr_by(ctx, args.get(1), -1)
}

fn incrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let by = int_arg(args.get(2))?;
    incr_by(ctx, args.get(1), by)
}

fn decrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let by = int_arg(args.get(2))?;
    let neg = by
        .checked_neg()
        .ok_or(CmdError::msg("ERR decrement would overflow"))?;
    incr_by(ctx, args.get(1), neg)
}

/// INCRBYFLOAT: the stored value and the increment are parsed as floats, the sum must be
/// finite, and the result is stored as text (keeping the TTL).
fn incrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let text = {
        let mut keys = ctx.keys();
        let old = match keys.write(key) {
            None => 0.0,
            Some(e) => {
                parse_f64(e.string().ok_or(CmdError::WrongType)?).ok_or(CmdError::NotFloat)?
            }
        };
        let by = parse_f64(args.get(2)).ok_or(CmdError::NotFloat)?;
        let new = old + by;
        if !new.is_finite() {
            return Err(CmdError::msg("ERR increment would produce NaN or Infinity"));
        }
        let text = format_incr_float(new, ulp(old) + ulp(by) + ulp(new));
        keys.set_string(key, &text, Expire::Keep);
        text
    };
    notify(ctx, STRING, "incrbyfloat", key);
    ctx.dirty += 1;
    // The result, not the float arithmetic, is propagated (replicas and the AOF may
    // round differently).
    ctx.propagate_as(&[b"SET", key, &text, b"KEEPTTL"]);
    ctx.out.bulk(&text);
    Ok(())
}

/// Resolves a Redis-style inclusive range (negative indexes count from the end) over `len`
/// items. `None` for an empty range.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 {
        (len + end).max(0)
    } else {
        end.min(len - 1)
    };
    (start <= end).then_some((start as usize, end as usize))
}

/// GETRANGE / SUBSTR: the bytes in an inclusive range; an empty string when out of range
/// or missing.
fn getrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let start = int_arg(args.get(2))?;
    let end = int_arg(args.get(3))?;
    let (mut keys, out) = ctx.keys_out();
    let Some(e) = keys.read(args.get(1)) else {
        out.bulk(b"");
        return Ok(());
    };
    let s = e.string().ok_or(CmdError::WrongType)?;
    match clamp_range(start, end, s.len()) {
        Some((a, b)) => out.bulk(&s[a..=b]),
        None => out.bulk(b""),
    }
    Ok(())
}

/// SETRANGE key offset value: overwrites from `offset`, zero-padding as needed; replies with
/// the new length. An empty value changes nothing (and creates no key).
fn setrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, val) = (args.get(1), args.get(3));
    let offset = int_arg(args.get(2))?;
    if offset < 0 {
        return Err(CmdError::msg("ERR offset is out of range"));
    }
    let offset = offset as u64;
    let max = max_string_len(ctx);
    let len = {
        let mut keys = ctx.keys();
        match keys.write(key) {
            None if val.is_empty() => 0,
            None => {
                check_string_len(offset, val.len() as u64, max)?;
                let mut v = vec![0u8; offset as usize];
                v.extend_from_slice(val);
                let len = v.len();
                keys.insert(Entry::new_value(key, Value::RawStr(Box::new(v)), None, 0));
                len
            }
            Some(e) => {
                let cur = e.string().ok_or(CmdError::WrongType)?.len();
                if val.is_empty() {
                    cur
                } else {
                    check_string_len(offset, val.len() as u64, max)?;
                    let v = e.string_mut().ok_or(CmdError::WrongType)?;
                    let (off, end) = (offset as usize, offset as usize + val.len());
                    if v.len() < end {
                        v.resize(end, 0);
                    }
                    v[off..end].copy_from_slice(val);
                    v.len()
                }
            }
        }
    };
    if !val.is_empty() {
        notify(ctx, STRING, "setrange", key);
        ctx.dirty += 1;
    }
    ctx.out.int(len as i64);
    Ok(())
}

/// LCS options.
#[derive(Default)]
struct LcsOpts {
    len: bool,
    idx: bool,
    withmatchlen: bool,
    minmatchlen: i64,
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common subsequence
/// by dynamic programming. The table is bounded by proto-max-bulk-len, as in Redis.
fn lcs(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let max = max_string_len(ctx);
    let (a, b) = {
        let mut keys = ctx.keys();
        let type_err = || CmdError::msg("ERR The specified keys must contain string values");
        let a = match keys.read(args.get(1)) {
            None => Vec::new(),
            Some(e) => e.string().ok_or_else(type_err)?.to_vec(),
        };
        let b = match keys.read(args.get(2)) {
            None => Vec::new(),
            Some(e) => e.string().ok_or_else(type_err)?.to_vec(),
        };
        (a, b)
    };
    let mut o = LcsOpts::default();
    let mut i = 3;
    while i < args.len() {
        match args.get(i).to_ascii_uppercase().as_slice() {
            b"IDX" => o.idx = true,
            b"LEN" => o.len = true,
            b"WITHMATCHLEN" => o.withmatchlen = true,
            b"MINMATCHLEN" if i + 1 < args.len() => {
                o.minmatchlen = int_arg(args.get(i + 1))?.max(0);
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    if o.len && o.idx {
        return Err(CmdError::msg(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let cells = (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1);
    if cells.saturating_mul(4) > max {
        return Err(CmdError::msg(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    lcs_reply(ctx, &a, &b, &o);
    Ok(())
}

/// Builds the LCS table for `a` and `b` and writes the reply the options ask for.
fn lcs_reply(ctx: &mut Ctx<'_>, a: &[u8], b: &[u8], o: &LcsOpts) {
    let w = b.len() + 1;
    let mut t = vec![0u32; (a.len() + 1) * w];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let total = t[a.len() * w + b.len()];
    if o.len {
        ctx.out.int(i64::from(total));
        return;
    }
    // Walk back from the end, collecting the subsequence and its contiguous match ranges
    // (latest first, as Redis reports them).
    let mut seq = vec![0u8; total as usize];
    let mut ranges: Vec<((usize, usize), (usize, usize))> = Vec::new();
    let mut cur: Option<((usize, usize), (usize, usize))> = None;
    let (mut i, mut j, mut k) = (a.len(), b.len(), total as usize);
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            k -= 1;
            seq[k] = a[i - 1];
            cur = match cur {
                Some(((sa, ea), (sb, eb))) if sa == i && sb == j => {
                    Some(((i - 1, ea), (j - 1, eb)))
                }
                Some(r) => {
                    ranges.push(r);
                    Some(((i - 1, i - 1), (j - 1, j - 1)))
                }
                None => Some(((i - 1, i - 1), (j - 1, j - 1))),
            };
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            ranges.extend(cur.take());
        }
    }
    ranges.extend(cur);
    if !o.idx {
        ctx.out.bulk(&seq);
        return;
    }
    let shown: Vec<_> = ranges
        .into_iter()
        .filter(|((sa, ea), _)| (ea - sa + 1) as i64 >= o.minmatchlen)
        .collect();
    let out = &mut ctx.out;
    out.map(2);
    out.bulk(b"matches");
    out.array(shown.len());
    for ((sa, ea), (sb, eb)) in shown {
        out.array(2 + usize::from(o.withmatchlen));
        out.array(2);
        out.int(sa as i64);
        out.int(ea as i64);
        out.array(2);
        out.int(sb as i64);
        out.int(eb as i64);
        if o.withmatchlen {
            out.int((ea - sa + 1) as i64);
        }
    }
    out.bulk(b"len");
    out.int(i64::from(total));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_format_matches_redis_common_cases() {
        let f = |a: f64, b: f64| {
            let v = a + b;
            String::from_utf8(format_incr_float(v, ulp(a) + ulp(b) + ulp(v))).unwrap()
        };
        assert_eq!(f(10.5, 0.1), "10.6");
        assert_eq!(f(0.1, 0.2), "0.3");
        assert_eq!(f(0.0, 3.0e3), "3000");
        assert_eq!(f(17179869184.0, 1.5), "17179869185.5");
        assert_eq!(f(1.0 / 41.0, -1.0 / 41.0), "0");
        assert_eq!(f(-0.0, 0.0), "0");
        assert_eq!(f(1.0, -1.1), "-0.1");
        assert_eq!(f(0.0, 1e-20), "0");
        assert_eq!(f(1e20, 0.0), "100000000000000000000");
    }

    #[test]
    fn ranges() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(clamp_range(-1, -3, 5), None);
        assert_eq!(clamp_range(3, 100, 5), Some((3, 4)));
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(-100, 0, 5), Some((0, 0)));
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 5), Some((0, 4)));
    }
}
