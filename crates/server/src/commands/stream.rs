//! Stream commands without consumer groups: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM,
//! XSETID, XREAD (with BLOCK through [`crate::blocking`]) and XINFO (whose GROUPS and
//! CONSUMERS live with the consumer groups in [`super::stream_group`]).
//!
//! The data type itself (packed nodes, IDs, trimming) lives in
//! [`flowkv_store::stream_value`]; this file parses arguments, checks the ID rules and writes
//! Redis's exact replies and errors.

use flowkv_protocol::{Args, Reply};
use flowkv_store::num::parse_i64;
use flowkv_store::stream_value::{EntryRef, NodeLimits, StreamId, StreamValue, Trim};
use flowkv_store::{Entry, Keys, Value, ValueMut, ValueRef};

use std::sync::Arc;

use crate::blocking::{self, FamilyWait, Served, WaitOp};
use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group, KeyPositions};
use crate::commands::stream_group::{write_groups_full, xinfo_consumers, xinfo_groups};
use crate::commands::string::int_arg;
use crate::config::notify::STREAM;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;
use crate::server::Server;

pub static COMMANDS: &[Command] = &[
    Command::new("xadd", -5, Group::Stream)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::UPDATE)
            .notes("UPDATE instead of INSERT because of the optional trimming feature")])
        .tips(&["nondeterministic_output"])
        .handler(xadd)
        .doc(
            "Appends a new entry to a stream",
            "5.0.0",
            "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.",
        ),
    Command::new("xlen", 2, Group::Stream)
        .flags(READONLY | FAST)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RO)])
        .handler(xlen)
        .doc("Return the number of entries in a stream", "5.0.0", "O(1)"),
    Command::new("xrange", -4, Group::Stream)
        .flags(READONLY)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .handler(xrange)
        .doc(
            "Return a range of elements in a stream, with IDs matching the specified IDs interval",
            "5.0.0",
            "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
        ),
    Command::new("xrevrange", -4, Group::Stream)
        .flags(READONLY)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .handler(xrevrange)
        .doc(
            "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE",
            "5.0.0",
            "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
        ),
    Command::new("xdel", -3, Group::Stream)
        .flags(WRITE | FAST)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .handler(xdel)
        .doc(
            "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.",
            "5.0.0",
            "O(1) for each single item to delete in the stream, regardless of the stream size.",
        ),
    Command::new("xtrim", -4, Group::Stream)
        .flags(WRITE)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .tips(&["nondeterministic_output"])
        .handler(xtrim)
        .doc(
            "Trims the stream to (approximately if '~' is passed) a certain size",
            "5.0.0",
            "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.",
        ),
    Command::new("xsetid", -3, Group::Stream)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::UPDATE)])
        .handler(xsetid)
        .doc(
            "An internal command for replicating stream values",
            "5.0.0",
            "O(1)",
        ),
    Command::new("xread", -4, Group::Stream)
        .flags(READONLY | BLOCKING)
        .acl(acl::STREAM)
        .movable_keys(xread_keys)
        .key_specs(&[ks::spec(
            ks::RO | ks::ACCESS,
            ks::keyword("STREAMS", 1),
            ks::range(-1, 1, 2),
        )])
        .handler(xread)
        .doc(
            "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.",
            "5.0.0",
            "For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data.",
        ),
    Command::new("xinfo", -2, Group::Stream)
        .doc(
            "A container for stream introspection commands",
            "5.0.0",
            "Depends on subcommand.",
        )
        .subcommands(&[
            Command::new("consumers", 4, Group::Stream)
                .flags(READONLY)
                .acl(acl::STREAM)
                .keys(2, 2, 1)
                .key_specs(&[ks::key_at(2, ks::RO | ks::ACCESS)])
                .tips(&["nondeterministic_output"])
                .handler(xinfo_consumers)
                .doc("List the consumers in a consumer group", "5.0.0", "O(1)"),
            Command::new("groups", 3, Group::Stream)
                .flags(READONLY)
                .acl(acl::STREAM)
                .keys(2, 2, 1)
                .key_specs(&[ks::key_at(2, ks::RO | ks::ACCESS)])
                .handler(xinfo_groups)
                .doc("List the consumer groups of a stream", "5.0.0", "O(1)"),
            Command::new("stream", -3, Group::Stream)
                .flags(READONLY)
                .acl(acl::STREAM)
                .keys(2, 2, 1)
                .key_specs(&[ks::key_at(2, ks::RO | ks::ACCESS)])
                .handler(xinfo_stream)
                .doc("Get information about a stream", "5.0.0", "O(1)"),
            Command::new("help", 2, Group::Stream)
                .flags(LOADING | STALE)
                .acl(acl::STREAM)
                .handler(xinfo_help)
                .doc(
                    "Show helpful text about the different subcommands",
                    "5.0.0",
                    "O(1)",
                ),
        ]),
];

/// Longest ID argument Redis parses (its 128-byte buffer).
const MAX_ID_LEN: usize = 127;
/// Largest total size of one entry's fields and values (Redis's listpack limit).
const MAX_ENTRY_BYTES: usize = 1 << 30;
/// Entries a blocked XREAD / XREADGROUP without COUNT gets when served (Redis's default).
pub(crate) const BLOCKED_DEFAULT_COUNT: usize = 1000;

pub(crate) fn invalid_id() -> CmdError {
    CmdError::msg("ERR Invalid stream ID specified as stream command argument")
}

/// Parses `ms-seq`, `ms` (seq = `missing_seq`) and, unless `strict`, `-` / `+`. With
/// `allow_auto_seq`, `ms-*` parses with `seq_given` false.
fn parse_id_full(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_auto_seq: bool,
) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > MAX_ID_LEN {
        return Err(invalid_id());
    }
    match arg {
        b"-" if !strict => return Ok((StreamId::MIN, true)),
        b"+" if !strict => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let num = |s: &[u8]| -> Result<u64, CmdError> {
        std::str::from_utf8(s)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(invalid_id)
    };
    match arg.iter().position(|&b| b == b'-') {
        None => Ok((StreamId::new(num(arg)?, missing_seq), true)),
        Some(dash) => {
            let ms = num(&arg[..dash])?;
            match &arg[dash + 1..] {
                b"*" if allow_auto_seq => Ok((StreamId::new(ms, 0), false)),
                seq => Ok((StreamId::new(ms, num(seq)?), true)),
            }
        }
    }
}

/// An ID where `-` and `+` mean the smallest and largest (XGROUP SETID).
pub(crate) fn parse_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_id_full(arg, 0, false, false).map(|(id, _)| id)
}

/// A strict ID (`-` and `+` refused), as XDEL, XSETID and XREAD take them.
pub(crate) fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_id_full(arg, 0, true, false).map(|(id, _)| id)
}

/// One end of an XRANGE interval: `(` makes it exclusive (then `-`/`+` are refused).
pub(crate) fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id_full(&arg[1..], missing_seq, true, false)?.0, true))
    } else {
        Ok((parse_id_full(arg, missing_seq, false, false)?.0, false))
    }
}

/// The error for a container's subcommand with bad arguments (XINFO, XGROUP).
pub(crate) fn subcommand_syntax(args: Args<'_>, container: &str) -> CmdError {
    let sub = args.get(1);
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

/// Marks `key` ready for blocked XREAD / XREADGROUP clients, if anyone waits (see
/// [`crate::blocking`]).
pub(crate) fn wake_waiters(ctx: &mut Ctx<'_>, key: &[u8]) {
    if ctx.srv.blocked.any_waiting() {
        let db = ctx.client.db;
        if let Some(locked) = ctx.locked.as_mut() {
            locked.mark_ready(db, key);
        }
    }
}

/// The stream a key holds, or WRONGTYPE.
pub(crate) fn stream_of(e: &Entry) -> Result<&StreamValue, CmdError> {
    match e.value() {
        ValueRef::Stream(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

pub(crate) fn stream_mut(e: &mut Entry) -> Result<&mut StreamValue, CmdError> {
    match e.value_mut() {
        Some(ValueMut::Stream(s)) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// The node limits from `stream-node-max-bytes` / `stream-node-max-entries` (the config's
/// hot-path mirror: two atomic loads per XADD).
pub(crate) fn node_limits(srv: &Server) -> NodeLimits {
    let max = |v: &std::sync::atomic::AtomicU64| {
        usize::try_from(v.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(usize::MAX)
    };
    let hot = &srv.config.hot;
    NodeLimits {
        max_bytes: max(&hot.stream_node_max_bytes),
        max_entries: max(&hot.stream_node_max_entries),
    }
}

/// Writes one entry as `[id, [field, value, ...]]`.
pub(crate) fn write_entry(out: &mut Reply<'_>, e: &EntryRef<'_>) {
    out.array(2);
    out.bulk(e.id.to_string().as_bytes());
    out.array(e.len() * 2);
    for (f, v) in e.fields() {
        out.bulk(f);
        out.bulk(v);
    }
}

pub(crate) fn write_entries(out: &mut Reply<'_>, entries: &[EntryRef<'_>]) {
    out.array(entries.len());
    for e in entries {
        write_entry(out, e);
    }
}

/// XADD / XTRIM options.
#[derive(Default)]
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    /// Position of the MAXLEN/MINID threshold (an approximate trim propagates a rewritten
    /// one there).
    threshold_at: usize,
    /// Entries removed at most (0 = no limit).
    limit: u64,
    nomkstream: bool,
    /// XADD's explicit ID and whether its sequence was given (`ms-*` has none).
    id: Option<(StreamId, bool)>,
}

/// Parses XADD's or XTRIM's options from argument 2 on, as Redis does. Returns them and
/// the position of XADD's ID (the first argument that is not an option).
fn parse_trim_args(
    srv: &Server,
    args: Args<'_>,
    xadd: bool,
) -> Result<(TrimArgs, usize), CmdError> {
    const BOTH: &str =
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    let mut t = TrimArgs::default();
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args.get(i);
        if xadd && opt == b"*" {
            break;
        } else if (opt.eq_ignore_ascii_case(b"maxlen") || opt.eq_ignore_ascii_case(b"minid"))
            && more > 0
        {
            if t.trim.is_some() {
                return Err(CmdError::msg(BOTH));
            }
            t.approx = false;
            let next = args.get(i + 1);
            if more >= 2 && (next == b"~" || next == b"=") {
                t.approx = next == b"~";
                i += 1;
            }
            let val = args.get(i + 1);
            t.trim = Some(if opt.eq_ignore_ascii_case(b"maxlen") {
                let n = int_arg(val)?;
                if n < 0 {
                    return Err(CmdError::msg("ERR The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_strict_id(val)?)
            });
            t.threshold_at = i + 1;
            i += 1;
        } else if opt.eq_ignore_ascii_case(b"limit") && more > 0 {
            let n = int_arg(args.get(i + 1))?;
            if n < 0 {
                return Err(CmdError::msg("ERR The LIMIT argument must be >= 0."));
            }
            t.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            t.id = Some(parse_id_full(opt, 0, true, true)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if t.limit != 0 && t.trim.is_none() {
        return Err(CmdError::msg(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && t.trim.is_none() {
        return Err(CmdError::msg(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if crate::propagate::replaying() {
        // An AOF's trims were propagated exact (see [`exact_trim`]), maybe with the LIMIT
        // the client gave: replay them whole, as Redis does for its AOF and master.
        t.limit = 0;
    } else if limit_given {
        if !t.approx {
            return Err(CmdError::msg(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if t.approx {
        // Bounded work per command by default: 100 nodes' worth of entries.
        let per_node = node_limits(srv).max_entries as u64;
        t.limit = per_node.saturating_mul(100).clamp(1, 1_000_000);
        if per_node == 0 {
            t.limit = 10_000;
        }
    } else {
        t.limit = 0;
    }
    Ok((t, i))
}

/// The ID XADD gives the new entry: auto (`*`), `ms-*` or explicit, never at or below the
/// stream's last ID, so IDs stay monotonic even when the clock goes backwards.
fn next_id(
    last: StreamId,
    given: Option<(StreamId, bool)>,
    now_ms: u64,
) -> Result<StreamId, CmdError> {
    const NOT_GREATER: &str =
        "ERR The ID specified in XADD is equal or smaller than the target stream top item";
    let id = match given {
        Some((id, true)) => id,
        Some((id, false)) if id.ms == last.ms => StreamId::new(
            id.ms,
            last.seq.checked_add(1).ok_or(CmdError::msg(NOT_GREATER))?,
        ),
        Some((id, false)) => id,
        None if now_ms > last.ms => StreamId::new(now_ms, 0),
        None => last.incr().ok_or(CmdError::msg(NOT_GREATER))?,
    };
    if id <= last {
        return Err(CmdError::msg(NOT_GREATER));
    }
    Ok(id)
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
fn xadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (t, idpos) = parse_trim_args(ctx.srv, args, true)?;
    let fields_at = idpos + 1;
    if args.len() < fields_at + 2 || (args.len() - fields_at) % 2 == 1 {
        return Err(CmdError::Arity("xadd".into()));
    }
    if let Some((id, true)) = t.id {
        if id == StreamId::MIN {
            return Err(CmdError::msg(
                "ERR The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let pairs: Vec<&[u8]> = args.iter().skip(fields_at).collect();
    if pairs.iter().map(|p| p.len()).sum::<usize>() > MAX_ENTRY_BYTES {
        return Err(CmdError::msg("ERR Elements are too large to be stored"));
    }
    let limits = node_limits(ctx.srv);
    let key = args.get(1);
    let now = ctx.now_ms;
    let trimmed = {
        let (mut keys, out) = ctx.keys_out();
        let exists = match keys.write(key) {
            Some(e) => {
                if stream_of(e)?.last_id == StreamId::MAX {
                    return Err(CmdError::msg(
                        "ERR The stream has exhausted the last possible ID, unable to add more items",
                    ));
                }
                true
            }
            None if t.nomkstream => {
                out.null();
                return Ok(());
            }
            None => false,
        };
        if !exists {
            let id = next_id(StreamId::MIN, t.id, now)?;
            let s = Box::new(StreamValue::new());
            keys.insert(Entry::new_value(key, Value::Stream(s), None, 0));
            append(&mut keys, key, id, &pairs, limits, &t, out)
        } else {
            let last = keys
                .peek(key)
                .map(stream_of)
                .transpose()?
                .map(|s| s.last_id);
            let id = next_id(last.unwrap_or_default(), t.id, now)?;
            append(&mut keys, key, id, &pairs, limits, &t, out)
        }
    };
    ctx.dirty += 1;
    // Propagated with the ID it got, so the AOF and replicas hold the same entry.
    if crate::propagate::active() {
        let last = ctx
            .keys()
            .peek(key)
            .map(stream_of)
            .transpose()?
            .map(|s| s.last_id);
        if let Some(id) = last {
            let id = id.to_string().into_bytes();
            let mut cmd: Vec<Vec<u8>> = args.iter().map(<[u8]>::to_vec).collect();
            cmd[idpos] = id;
            exact_trim(ctx, &mut cmd, key, &t);
            ctx.propagate_as(&cmd);
        }
    }
    notify(ctx, STREAM, "xadd", key);
    if trimmed > 0 {
        notify(ctx, STREAM, "xtrim", key);
    }
    // Blocked XREADs and XREADGROUPs on this key may now be served.
    wake_waiters(ctx, key);
    Ok(())
}

/// Appends to the stream at `key` (which exists), replies with the ID and trims. Returns
/// how many entries trimming removed.
fn append(
    keys: &mut Keys<'_, '_>,
    key: &[u8],
    id: StreamId,
    pairs: &[&[u8]],
    limits: NodeLimits,
    t: &TrimArgs,
    out: &mut Reply<'_>,
) -> u64 {
    let Some(Ok(s)) = keys.write(key).map(stream_mut) else {
        return 0;
    };
    s.append(id, pairs, limits);
    out.bulk(id.to_string().as_bytes());
    t.trim.map_or(0, |how| s.trim(how, t.approx, t.limit))
}

fn xlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let n = match keys.read(args.get(1)) {
        Some(e) => stream_of(e)?.len(),
        None => 0,
    };
    out.int(n as i64);
    Ok(())
}

/// XRANGE / XREVRANGE key start end [COUNT n] (`end start` for XREVRANGE).
fn range(ctx: &mut Ctx<'_>, args: Args<'_>, rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (args.get(3), args.get(2))
    } else {
        (args.get(2), args.get(3))
    };
    let (mut start, start_ex) = parse_interval(start_arg, 0)?;
    if start_ex {
        start = start
            .incr()
            .ok_or(CmdError::msg("ERR invalid start ID for the interval"))?;
    }
    let (mut end, end_ex) = parse_interval(end_arg, u64::MAX)?;
    if end_ex {
        end = end
            .decr()
            .ok_or(CmdError::msg("ERR invalid end ID for the interval"))?;
    }
    let mut count: Option<i64> = None;
    let mut i = 4;
    while i < args.len() {
        if args.get(i).eq_ignore_ascii_case(b"count") && i + 1 < args.len() {
            count = Some(int_arg(args.get(i + 1))?.max(0));
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let (mut keys, out) = ctx.keys_out();
    let Some(e) = keys.read(args.get(1)) else {
        out.array(0);
        return Ok(());
    };
    let s = stream_of(e)?;
    match count {
        Some(0) => out.null_array(),
        c => {
            let n = usize::try_from(c.unwrap_or(0)).unwrap_or(usize::MAX);
            write_entries(out, &s.range(start, end, rev, n));
        }
    }
    Ok(())
}

fn xrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range(ctx, args, true)
}

/// XDEL key id...: the number of entries deleted.
fn xdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let deleted = {
        let mut keys = ctx.keys();
        let Some(e) = keys.write(key) else {
            ctx.out.int(0);
            return Ok(());
        };
        let s = stream_mut(e)?;
        let ids = args
            .iter()
            .skip(2)
            .map(parse_strict_id)
            .collect::<Result<Vec<_>, _>>()?;
        ids.into_iter().filter(|&id| s.delete(id)).count()
    };
    if deleted > 0 {
        ctx.dirty += deleted as u64;
        notify(ctx, STREAM, "xdel", key);
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]: the number of entries removed.
fn xtrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (t, _) = parse_trim_args(ctx.srv, args, false)?;
    let key = args.get(1);
    let removed = {
        let mut keys = ctx.keys();
        match keys.write(key) {
            None => 0,
            Some(e) => {
                let how = t.trim.ok_or(CmdError::Syntax)?;
                stream_mut(e)?.trim(how, t.approx, t.limit)
            }
        }
    };
    if removed > 0 {
        ctx.dirty += removed;
        notify(ctx, STREAM, "xtrim", key);
        if t.approx && crate::propagate::active() {
            let mut cmd: Vec<Vec<u8>> = args.iter().map(<[u8]>::to_vec).collect();
            exact_trim(ctx, &mut cmd, key, &t);
            ctx.propagate_as(&cmd);
        }
    } else {
        ctx.prevent_propagation();
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// An approximate trim (`~`) depends on how the stream's entries fall into nodes, which a
/// replay need not reproduce: as Redis does, it propagates as the exact trim to what it
/// left — `MAXLEN = <length now>` or `MINID = <first ID now>` — in `cmd`, the command's
/// arguments.
fn exact_trim(ctx: &mut Ctx<'_>, cmd: &mut [Vec<u8>], key: &[u8], t: &TrimArgs) {
    if !t.approx {
        return;
    }
    let mut keys = ctx.keys();
    let Some(Ok(s)) = keys.peek(key).map(stream_of) else {
        return;
    };
    let threshold = match t.trim {
        Some(Trim::MaxLen(_)) => s.len().to_string(),
        // An emptied stream: the highest ID, which removes everything on replay too.
        Some(Trim::MinId(_)) => s.edge_id(false).unwrap_or(StreamId::MAX).to_string(),
        None => return,
    };
    drop(keys);
    cmd[t.threshold_at - 1] = b"=".to_vec();
    cmd[t.threshold_at] = threshold.into_bytes();
}

/// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id].
fn xsetid(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let id = parse_strict_id(args.get(2))?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        if opt.eq_ignore_ascii_case(b"entriesadded") && i + 1 < args.len() {
            let n = int_arg(args.get(i + 1))?;
            if n < 0 {
                return Err(CmdError::msg("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if opt.eq_ignore_ascii_case(b"maxdeletedid") && i + 1 < args.len() {
            max_deleted = parse_strict_id(args.get(i + 1))?;
            if id < max_deleted {
                return Err(CmdError::msg(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    {
        let mut keys = ctx.keys();
        let s = stream_mut(keys.write(args.get(1)).ok_or(CmdError::NoSuchKey)?)?;
        if !s.is_empty() {
            if s.edge_id(true).is_some_and(|top| id < top) {
                return Err(CmdError::msg(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if entries_added.is_some_and(|n| s.len() > n) {
                return Err(CmdError::msg(
                    "ERR The entries_added specified in XSETID is smaller than the target stream length",
                ));
            }
        }
        s.last_id = id;
        if let Some(n) = entries_added {
            s.entries_added = n;
        }
        if max_deleted != StreamId::MIN {
            s.max_deleted_entry_id = max_deleted;
        }
    }
    ctx.dirty += 1;
    notify(ctx, STREAM, "xsetid", args.get(1));
    ctx.out.ok();
    Ok(())
}

/// Index of XREAD's / XREADGROUP's first key, as Redis finds it for key extraction: options
/// are skipped (BLOCK, COUNT and GROUP with their values, NOACK) up to STREAMS; None when
/// there is no STREAMS or the keys and IDs don't pair up.
fn xread_streams_at(args: Args<'_>) -> Option<usize> {
    let mut i = 1;
    while i < args.len() {
        let a = args.get(i);
        if a.eq_ignore_ascii_case(b"block") || a.eq_ignore_ascii_case(b"count") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"group") {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"noack") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"streams") {
            let rest = args.len() - i - 1;
            return (rest > 0 && rest.is_multiple_of(2)).then_some(i + 1);
        } else {
            return None;
        }
    }
    None
}

/// The keys of XREAD and XREADGROUP.
pub(crate) fn xread_keys(args: Args<'_>) -> KeyPositions {
    match xread_streams_at(args) {
        Some(at) => (at..at + (args.len() - at) / 2).collect(),
        None => KeyPositions::new(),
    }
}

/// Parsed XREAD / XREADGROUP options.
pub(crate) struct ReadArgs<'a> {
    /// COUNT (0 = no limit).
    pub count: usize,
    /// BLOCK's deadline in unix ms (0 = forever), None without BLOCK.
    pub deadline: Option<u64>,
    /// GROUP's group and consumer names (XREADGROUP).
    pub group: Option<(&'a [u8], &'a [u8])>,
    pub noack: bool,
    /// The stream keys, and the ID argument of each.
    pub keys: Vec<&'a [u8]>,
    pub ids: Vec<&'a [u8]>,
}

/// Parses XREAD's (or, with `readgroup`, XREADGROUP's) options as Redis does, in its order
/// of checks and with its errors. A script may not use BLOCK (`in_script`): Redis refuses
/// it there rather than answer as if it timed out, as it does for other blocking commands.
pub(crate) fn parse_read_args<'a>(
    args: Args<'a>,
    now_ms: u64,
    readgroup: bool,
    in_script: bool,
) -> Result<ReadArgs<'a>, CmdError> {
    let mut r = ReadArgs {
        count: 0,
        deadline: None,
        group: None,
        noack: false,
        keys: Vec::new(),
        ids: Vec::new(),
    };
    let mut streams_at = 0;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let o = args.get(i);
        if o.eq_ignore_ascii_case(b"block") && more > 0 {
            if in_script {
                return Err(CmdError::msg(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(args.get(0))
                )));
            }
            i += 1;
            let ms = parse_i64(args.get(i)).ok_or(CmdError::msg(
                "ERR timeout is not an integer or out of range",
            ))?;
            if ms < 0 {
                return Err(CmdError::msg("ERR timeout is negative"));
            }
            r.deadline = Some(if ms == 0 {
                0
            } else {
                now_ms.saturating_add(ms as u64)
            });
        } else if o.eq_ignore_ascii_case(b"count") && more > 0 {
            i += 1;
            r.count = usize::try_from(int_arg(args.get(i))?.max(0)).unwrap_or(usize::MAX);
        } else if o.eq_ignore_ascii_case(b"streams") && more > 0 {
            if !(args.len() - i - 1).is_multiple_of(2) {
                return Err(CmdError::msg("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            streams_at = i + 1;
            break;
        } else if o.eq_ignore_ascii_case(b"group") && more >= 2 {
            if !readgroup {
                return Err(CmdError::msg(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((args.get(i + 1), args.get(i + 2)));
            i += 2;
        } else if o.eq_ignore_ascii_case(b"noack") {
            if !readgroup {
                return Err(CmdError::msg(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    // The key finder must agree, or the handler would touch keys it did not lock.
    if streams_at == 0 || xread_streams_at(args) != Some(streams_at) {
        return Err(CmdError::Syntax);
    }
    if readgroup && r.group.is_none() {
        return Err(CmdError::msg("ERR Missing GROUP option for XREADGROUP"));
    }
    let n = (args.len() - streams_at) / 2;
    r.keys = (0..n).map(|j| args.get(streams_at + j)).collect();
    r.ids = (0..n).map(|j| args.get(streams_at + n + j)).collect();
    Ok(r)
}

/// XREAD [COUNT n] [BLOCK ms] STREAMS key... id...: entries above each ID, or block until
/// one of the streams gets one (`$`: above its last ID now).
fn xread(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let ReadArgs {
        count,
        deadline,
        keys: names,
        ids: id_args,
        ..
    } = parse_read_args(args, ctx.now_ms, false, ctx.in_script)?;
    let n = names.len();
    let mut ids = Vec::with_capacity(n);
    {
        let (mut keys, out) = ctx.keys_out();
        for (j, &key) in names.iter().enumerate() {
            let s = keys.read(key).map(stream_of).transpose()?;
            let arg = id_args[j];
            ids.push(match arg {
                b"$" => s.map_or(StreamId::MIN, |s| s.last_id),
                b">" => {
                    return Err(CmdError::msg("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
                }
                _ => parse_strict_id(arg)?,
            });
        }
        let ready: Vec<usize> = (0..n)
            .filter(|&j| {
                keys.read(names[j])
                    .and_then(|e| stream_of(e).ok())
                    .and_then(|s| s.edge_id(true))
                    .is_some_and(|top| top > ids[j])
            })
            .collect();
        if !ready.is_empty() {
            if out.is_resp3() {
                out.map(ready.len());
            } else {
                out.array(ready.len());
            }
            for j in ready {
                let s = keys.read(names[j]).map(stream_of).transpose()?;
                let entries = match (s, ids[j].incr()) {
                    (Some(s), Some(start)) => s.range(start, StreamId::MAX, false, count),
                    _ => Vec::new(),
                };
                if !out.is_resp3() {
                    out.array(2);
                }
                out.bulk(names[j]);
                write_entries(out, &entries);
            }
            return Ok(());
        }
    }
    let Some(deadline) = deadline else {
        ctx.out.null_array();
        return Ok(());
    };
    let waits = names
        .iter()
        .zip(&ids)
        .map(|(k, id)| (Box::<[u8]>::from(*k), *id))
        .collect();
    let count = if count == 0 {
        BLOCKED_DEFAULT_COUNT
    } else {
        count
    };
    let op = WaitOp::Family(Arc::new(XReadWait { ids: waits, count }));
    blocking::block(ctx, &names, op, deadline);
    Ok(())
}

/// A blocked XREAD: waits for an entry above the given ID on any of its streams (`$` already
/// resolved when blocking); replies [[key, entries]] with at most `count` entries.
#[derive(Debug)]
struct XReadWait {
    ids: Vec<(Box<[u8]>, StreamId)>,
    count: usize,
}

impl XReadWait {
    /// The ID this reader waits above on `key`.
    fn waited_id(&self, key: &[u8]) -> Option<StreamId> {
        self.ids
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|(_, id)| *id)
    }
}

impl FamilyWait for XReadWait {
    /// True if the stream at `key` has an ID above the one this reader waits for.
    fn can_serve(&self, keys: &mut Keys<'_, '_>, key: &[u8]) -> bool {
        match (keys.peek(key).map(Entry::value), self.waited_id(key)) {
            (Some(ValueRef::Stream(s)), Some(id)) => s.last_id > id,
            _ => false,
        }
    }

    /// The entries above the reader's ID, as `[[key, entries]]` (a one-entry map in RESP3).
    fn serve(
        &self,
        _: &Server,
        keys: &mut Keys<'_, '_>,
        key: &[u8],
        out: &mut Reply<'_>,
    ) -> Served {
        let (Some(ValueRef::Stream(s)), Some(id)) =
            (keys.peek(key).map(Entry::value), self.waited_id(key))
        else {
            return Served::NotReady;
        };
        let entries = id.incr().map_or_else(Vec::new, |start| {
            s.range(start, StreamId::MAX, false, self.count)
        });
        if out.is_resp3() {
            out.map(1);
        } else {
            out.array(1);
            out.array(2);
        }
        out.bulk(key);
        write_entries(out, &entries);
        Served::Done(0)
    }

    /// A later reader may wait for a lower ID and be servable already.
    fn holds_queue(&self) -> bool {
        false
    }
}

/// XINFO HELP.
fn xinfo_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.help(&[
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
    ]);
    Ok(())
}

/// XINFO STREAM key [FULL [COUNT n]]: the stream's counters and edge entries, or (FULL)
/// its first `n` entries (default 10, 0 for all) and its groups.
fn xinfo_stream(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let syntax = || subcommand_syntax(args, "XINFO");
    let full = match args.len() {
        3 => None,
        4 | 6 if !args.get(3).eq_ignore_ascii_case(b"full") => return Err(syntax()),
        4 => Some(10),
        6 if !args.get(4).eq_ignore_ascii_case(b"count") => return Err(syntax()),
        6 => Some(match int_arg(args.get(5))? {
            n if n < 0 => 10,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }),
        _ => return Err(syntax()),
    };
    let (mut keys, out) = ctx.keys_out();
    let s = stream_of(keys.read(args.get(2)).ok_or(CmdError::NoSuchKey)?)?;
    let groups = s.group_count();
    out.map(if full.is_some() { 9 } else { 10 });
    out.bulk(b"length");
    out.int(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.node_count() as i64);
    // Redis reports its radix tree's inner node count; a B-tree has none to match, so
    // report the closest figure: one node per key plus the root.
    out.bulk(b"radix-tree-nodes");
    out.int(s.node_count() as i64 + 1);
    for (name, id) in [
        ("last-generated-id", s.last_id),
        ("max-deleted-entry-id", s.max_deleted_entry_id),
    ] {
        out.bulk(name.as_bytes());
        out.bulk(id.to_string().as_bytes());
    }
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    out.bulk(s.first_id.to_string().as_bytes());
    match full {
        None => {
            out.bulk(b"groups");
            out.int(groups as i64);
            for (name, rev) in [("first-entry", false), ("last-entry", true)] {
                out.bulk(name.as_bytes());
                match s.range(StreamId::MIN, StreamId::MAX, rev, 1).first() {
                    Some(e) => write_entry(out, e),
                    None => out.null(),
                }
            }
        }
        Some(count) => {
            out.bulk(b"entries");
            write_entries(out, &s.range(StreamId::MIN, StreamId::MAX, false, count));
            out.bulk(b"groups");
            write_groups_full(out, s, count);
        }
    }
    Ok(())
}
