//! List commands (the non-blocking ones): pushes and pops at both ends, ranges, indexed
//! access, LINSERT/LREM/LTRIM/LPOS, and the moves between lists (LMOVE, RPOPLPUSH, LMPOP).
//!
//! Semantics, replies and error lines follow Redis 7.0's `t_list.c`: arguments are validated
//! before the key is looked up where Redis does so (which decides which error wins), a list
//! emptied by a command is deleted, and `dirty` counts one change per element pushed or
//! removed.

use std::sync::atomic::Ordering::Relaxed;

use flowkv_protocol::{Args, Reply};
use flowkv_store::list_value::{ListValue, NodeLimit};
use flowkv_store::num::parse_i64;
use flowkv_store::{Entry, Keys, Value, ValueMut, ValueRef};

use super::string::int_arg;
use crate::blocking::{self, Served, WaitOp};
use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group, KeyPositions};
use crate::config::notify::{GENERIC, LIST};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;
use crate::server::Server;

const PUSH_COMPLEXITY: &str = "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.";
const POP_COMPLEXITY: &str = "O(N) where N is the number of elements returned";

pub static COMMANDS: &[Command] = &[
    Command::new("lpush", -3, Group::List)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::INSERT)])
        .handler(lpush)
        .doc("Prepend one or multiple elements to a list", "1.0.0", PUSH_COMPLEXITY),
    Command::new("rpush", -3, Group::List)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::INSERT)])
        .handler(rpush)
        .doc("Append one or multiple elements to a list", "1.0.0", PUSH_COMPLEXITY),
    Command::new("lpushx", -3, Group::List)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::INSERT)])
        .handler(lpushx)
        .doc(
            "Prepend an element to a list, only if the list exists",
            "2.2.0",
            PUSH_COMPLEXITY,
        ),
    Command::new("rpushx", -3, Group::List)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::INSERT)])
        .handler(rpushx)
        .doc(
            "Append an element to a list, only if the list exists",
            "2.2.0",
            PUSH_COMPLEXITY,
        ),
    Command::new("lpop", -2, Group::List)
        .flags(WRITE | FAST)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE)])
        .handler(lpop)
        .doc("Remove and get the first elements in a list", "1.0.0", POP_COMPLEXITY),
    Command::new("rpop", -2, Group::List)
        .flags(WRITE | FAST)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE)])
        .handler(rpop)
        .doc("Remove and get the last elements in a list", "1.0.0", POP_COMPLEXITY),
    Command::new("llen", 2, Group::List)
        .flags(READONLY | FAST)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RO)])
        .handler(llen)
        .doc("Get the length of a list", "1.0.0", "O(1)"),
    Command::new("lrange", 4, Group::List)
        .flags(READONLY)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .handler(lrange)
        .doc(
            "Get a range of elements from a list",
            "1.0.0",
            "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
        ),
    Command::new("lindex", 3, Group::List)
        .flags(READONLY)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .handler(lindex)
        .doc(
            "Get an element from a list by its index",
            "1.0.0",
            "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).",
        ),
    Command::new("lset", 4, Group::List)
        .flags(WRITE | DENYOOM)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .handler(lset)
        .doc(
            "Set the value of an element in a list by its index",
            "1.0.0",
            "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).",
        ),
    Command::new("linsert", 5, Group::List)
        .flags(WRITE | DENYOOM)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::INSERT)])
        .handler(linsert)
        .doc(
            "Insert an element before or after another element in a list",
            "2.2.0",
            "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).",
        ),
    Command::new("lrem", 4, Group::List)
        .flags(WRITE)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .handler(lrem)
        .doc(
            "Remove elements from a list",
            "1.0.0",
            "O(N+M) where N is the length of the list and M is the number of elements removed.",
        ),
    Command::new("ltrim", 4, Group::List)
        .flags(WRITE)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .handler(ltrim)
        .doc(
            "Trim a list to the specified range",
            "1.0.0",
            "O(N) where N is the number of elements to be removed by the operation.",
        ),
    Command::new("lpos", -3, Group::List)
        .flags(READONLY)
        .acl(acl::LIST)
        .keys(1, 1, 1)
        .handler(lpos)
        .doc(
            "Return the index of matching elements on a list",
            "6.0.6",
            "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.",
        ),
    Command::new("lmove", 5, Group::List)
        .flags(WRITE | DENYOOM)
        .acl(acl::LIST)
        .keys(1, 2, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE),
            ks::key_at(2, ks::RW | ks::INSERT),
        ])
        .handler(lmove)
        .doc(
            "Pop an element from a list, push it to another list and return it",
            "6.2.0",
            "O(1)",
        ),
    Command::new("rpoplpush", 3, Group::List)
        .flags(WRITE | DENYOOM)
        .acl(acl::LIST)
        .keys(1, 2, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE),
            ks::key_at(2, ks::RW | ks::INSERT),
        ])
        .handler(rpoplpush)
        .doc(
            "Remove the last element in a list, prepend it to another list and return it",
            "1.2.0",
            "O(1)",
        ),
    Command::new("lmpop", -4, Group::List)
        .flags(WRITE)
        .acl(acl::LIST)
        .movable_keys(lmpop_keys)
        .key_specs(&[ks::spec(ks::RW | ks::ACCESS | ks::DELETE, ks::index(1), ks::keynum(0, 1, 1))])
        .handler(lmpop)
        .doc(
            "Pop elements from a list",
            "7.0.0",
            "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
        ),
    Command::new("blpop", -3, Group::List)
        .flags(WRITE | NOSCRIPT | BLOCKING)
        .acl(acl::LIST | acl::BLOCKING)
        .keys(1, -2, 1)
        .key_specs(&[ks::spec(ks::RW | ks::ACCESS | ks::DELETE, ks::index(1), ks::range(-2, 1, 0))])
        .handler(blpop)
        .doc(
            "Remove and get the first element in a list, or block until one is available",
            "2.0.0",
            "O(N) where N is the number of provided keys.",
        ),
    Command::new("brpop", -3, Group::List)
        .flags(WRITE | NOSCRIPT | BLOCKING)
        .acl(acl::LIST | acl::BLOCKING)
        .keys(1, -2, 1)
        .key_specs(&[ks::spec(ks::RW | ks::ACCESS | ks::DELETE, ks::index(1), ks::range(-2, 1, 0))])
        .handler(brpop)
        .doc(
            "Remove and get the last element in a list, or block until one is available",
            "2.0.0",
            "O(N) where N is the number of provided keys.",
        ),
    Command::new("blmove", 6, Group::List)
        .flags(WRITE | DENYOOM | NOSCRIPT | BLOCKING)
        .acl(acl::LIST)
        .keys(1, 2, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE),
            ks::key_at(2, ks::RW | ks::INSERT),
        ])
        .handler(blmove)
        .doc(
            "Pop an element from a list, push it to another list and return it; or block until one is available",
            "6.2.0",
            "O(1)",
        ),
    Command::new("brpoplpush", 4, Group::List)
        .flags(WRITE | DENYOOM | NOSCRIPT | BLOCKING)
        .acl(acl::LIST)
        .keys(1, 2, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE),
            ks::key_at(2, ks::RW | ks::INSERT),
        ])
        .handler(brpoplpush)
        .doc(
            "Pop an element from a list, push it to another list and return it; or block until one is available",
            "2.2.0",
            "O(1)",
        ),
    Command::new("blmpop", -5, Group::List)
        .flags(WRITE | BLOCKING)
        .acl(acl::LIST | acl::BLOCKING)
        .movable_keys(blmpop_keys)
        .key_specs(&[ks::spec(ks::RW | ks::ACCESS | ks::DELETE, ks::index(2), ks::keynum(0, 1, 1))])
        .handler(blmpop)
        .doc(
            "Pop elements from a list, or block until one is available",
            "7.0.0",
            "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
        ),
];

/// The node size limit from `list-max-listpack-size` (the config's hot-path mirror: one
/// atomic load per command).
pub(crate) fn node_limit(ctx: &Ctx<'_>) -> NodeLimit {
    server_node_limit(ctx.srv)
}

fn server_node_limit(srv: &Server) -> NodeLimit {
    NodeLimit::from_config(srv.config.hot.list_max_listpack_size.load(Relaxed))
}

/// The list a key holds, or WRONGTYPE.
fn list_of(e: &Entry) -> Result<&ListValue, CmdError> {
    match e.value() {
        ValueRef::List(l) => Ok(l),
        _ => Err(CmdError::WrongType),
    }
}

/// The list a key holds, for modification, or WRONGTYPE.
fn list_mut(e: &mut Entry) -> Result<&mut ListValue, CmdError> {
    match e.value_mut() {
        Some(ValueMut::List(l)) => Ok(l),
        _ => Err(CmdError::WrongType),
    }
}

/// Stores a new list under `key`.
fn insert_list(keys: &mut Keys<'_, '_>, key: &[u8], list: ListValue) {
    keys.insert(Entry::new_value(key, Value::List(Box::new(list)), None, 0));
}

/// Deletes `key` if its list is now empty: Redis never keeps an empty list.
fn delete_if_empty(keys: &mut Keys<'_, '_>, key: &[u8]) {
    let empty = keys
        .peek(key)
        .is_some_and(|e| matches!(e.value(), ValueRef::List(l) if l.is_empty()));
    if empty {
        keys.remove(key);
        keys.notify(GENERIC, "del", key);
    }
}

/// The keyspace event of a pop from one end.
fn pop_event(front: bool) -> &'static str {
    if front {
        "lpop"
    } else {
        "rpop"
    }
}

/// The keyspace event of a push onto one end.
fn push_event(front: bool) -> &'static str {
    if front {
        "lpush"
    } else {
        "rpush"
    }
}

/// Records the pop event for `key`, then deletes the list if the pop emptied it.
fn popped(keys: &mut Keys<'_, '_>, key: &[u8], front: bool) {
    keys.notify(LIST, pop_event(front), key);
    delete_if_empty(keys, key);
}

/// LEFT or RIGHT (any case): true for LEFT, the head.
fn parse_side(arg: &[u8]) -> Result<bool, CmdError> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Parses an integer that must lie in `min..`, with `msg` as the whole error for anything
/// else (Redis's getRangeLongFromObjectOrReply: a non-number gets the same message).
fn int_at_least(arg: &[u8], min: i64, msg: &'static str) -> Result<i64, CmdError> {
    match parse_i64(arg) {
        Some(v) if v >= min => Ok(v),
        _ => Err(CmdError::msg(msg)),
    }
}

/// Resolves a Redis index (negative counts from the tail) against `len`.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { len + index } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// Clamps a `start..=end` range (negative from the tail) as LRANGE and LTRIM do: the
/// (start, count) it covers, count 0 when empty.
fn resolve_range(start: i64, end: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { len + end } else { end.min(len - 1) };
    if start > end || start >= len {
        (0, 0)
    } else {
        (start as usize, (end - start + 1) as usize)
    }
}

/// LPUSH/RPUSH/LPUSHX/RPUSHX: pushes every element in argument order; the reply is the new
/// length (0 when `only_existing` and the key is missing).
fn push(ctx: &mut Ctx<'_>, args: Args<'_>, front: bool, only_existing: bool) -> CmdResult {
    let limit = node_limit(ctx);
    let key = args.get(1);
    let elems = args.iter().skip(2);
    let len = {
        let mut keys = ctx.keys();
        match keys.write(key) {
            Some(e) => {
                let list = list_mut(e)?;
                elems.for_each(|el| list.push(front, el, limit));
                list.len()
            }
            None if only_existing => 0,
            None => {
                let mut list = ListValue::new();
                elems.for_each(|el| list.push(front, el, limit));
                let len = list.len();
                insert_list(&mut keys, key, list);
                len
            }
        }
    };
    if len > 0 {
        ctx.dirty += (args.len() - 2) as u64;
        notify(ctx, LIST, push_event(front), key);
    }
    ctx.out.int(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push(ctx, args, true, false)
}

fn rpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push(ctx, args, false, false)
}

fn lpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push(ctx, args, true, true)
}

fn rpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push(ctx, args, false, true)
}

/// Pops up to `count` elements from one end and replies with them as an array, in pop
/// order. Returns how many were popped.
fn pop_into_reply(out: &mut Reply<'_>, list: &mut ListValue, front: bool, count: usize) -> usize {
    let n = count.min(list.len());
    let start = if front { 0 } else { list.len() - n };
    out.array(n);
    if front {
        list.range(start, n).for_each(|e| out.bulk(e));
    } else {
        let popped: Vec<&[u8]> = list.range(start, n).collect();
        popped.iter().rev().for_each(|e| out.bulk(e));
    }
    list.remove_range(start, n);
    n
}

/// LPOP/RPOP key [count]: one element as a bulk string, or with a count an array (null
/// array for a missing key, empty array for count 0).
fn pop(ctx: &mut Ctx<'_>, args: Args<'_>, front: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Arity(ctx.cmd.name.to_string()));
    }
    let count = match args.try_get(2) {
        Some(a) => Some(int_at_least(
            a,
            0,
            "ERR value is out of range, must be positive",
        )?),
        None => None,
    };
    let key = args.get(1);
    let removed = {
        let (mut keys, out) = ctx.keys_out();
        let Some(e) = keys.write(key) else {
            match count {
                Some(_) => out.null_array(),
                None => out.null(),
            }
            return Ok(());
        };
        let list = list_mut(e)?;
        let removed = match count {
            Some(0) => {
                out.array(0);
                0
            }
            Some(n) => pop_into_reply(out, list, front, n as usize),
            None => match list.pop(front) {
                Some(v) => {
                    out.bulk(&v);
                    1
                }
                None => {
                    out.null();
                    0
                }
            },
        };
        if removed > 0 {
            popped(&mut keys, key, front);
        }
        removed
    };
    ctx.dirty += removed as u64;
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop(ctx, args, true)
}

fn rpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop(ctx, args, false)
}

fn llen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let len = match ctx.keys().read(args.get(1)) {
        Some(e) => list_of(e)?.len(),
        None => 0,
    };
    ctx.out.int(len as i64);
    Ok(())
}

/// LRANGE key start stop: both ends inclusive, negative from the tail, clamped.
fn lrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let start = int_arg(args.get(2))?;
    let end = int_arg(args.get(3))?;
    let (mut keys, out) = ctx.keys_out();
    let Some(e) = keys.read(args.get(1)) else {
        out.array(0);
        return Ok(());
    };
    let list = list_of(e)?;
    let (from, n) = resolve_range(start, end, list.len());
    out.array(n);
    list.range(from, n).for_each(|e| out.bulk(e));
    Ok(())
}

/// LINDEX key index: null when missing or out of range. The key is looked up before the
/// index is parsed, as in Redis.
fn lindex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let Some(e) = keys.read(args.get(1)) else {
        out.null();
        return Ok(());
    };
    let list = list_of(e)?;
    let index = int_arg(args.get(2))?;
    match resolve_index(index, list.len()).and_then(|i| list.get(i)) {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
    Ok(())
}

/// LSET key index element: "ERR no such key" for a missing key (checked first), then the
/// index.
fn lset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let limit = node_limit(ctx);
    {
        let mut keys = ctx.keys();
        let list = list_mut(keys.write(args.get(1)).ok_or(CmdError::NoSuchKey)?)?;
        let index = int_arg(args.get(2))?;
        let i = resolve_index(index, list.len()).ok_or(CmdError::OutOfRange)?;
        list.set(i, args.get(3), limit);
    }
    notify(ctx, LIST, "lset", args.get(1));
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

/// LINSERT key BEFORE|AFTER pivot element: the new length, -1 if the pivot is absent, 0 if
/// the key is.
fn linsert(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let after = match args.get(2) {
        w if w.eq_ignore_ascii_case(b"after") => true,
        w if w.eq_ignore_ascii_case(b"before") => false,
        _ => return Err(CmdError::Syntax),
    };
    let limit = node_limit(ctx);
    let len = {
        let (mut keys, out) = ctx.keys_out();
        let Some(e) = keys.write(args.get(1)) else {
            out.int(0);
            return Ok(());
        };
        let list = list_mut(e)?;
        let pivot = list.iter().position(|e| e == args.get(3));
        match pivot {
            Some(at) => {
                list.insert(at + usize::from(after), args.get(4), limit);
                Some(list.len())
            }
            None => None,
        }
    };
    match len {
        Some(len) => {
            ctx.dirty += 1;
            notify(ctx, LIST, "linsert", args.get(1));
            ctx.out.int(len as i64);
        }
        None => ctx.out.int(-1),
    }
    Ok(())
}

/// LREM key count element: count > 0 removes from the head, < 0 from the tail, 0 all.
fn lrem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = int_arg(args.get(2))?;
    let key = args.get(1);
    let removed = {
        let (mut keys, out) = ctx.keys_out();
        let Some(e) = keys.write(key) else {
            out.int(0);
            return Ok(());
        };
        let list = list_mut(e)?;
        let max = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        let removed = list.remove_matching(args.get(3), max, count < 0);
        if removed > 0 {
            keys.notify(LIST, "lrem", key);
            delete_if_empty(&mut keys, key);
        }
        removed
    };
    ctx.dirty += removed as u64;
    ctx.out.int(removed as i64);
    Ok(())
}

/// LTRIM key start stop: keeps only the range; an empty range deletes the key.
fn ltrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let start = int_arg(args.get(2))?;
    let end = int_arg(args.get(3))?;
    let key = args.get(1);
    let removed = {
        let (mut keys, out) = ctx.keys_out();
        let Some(e) = keys.write(key) else {
            out.ok();
            return Ok(());
        };
        let list = list_mut(e)?;
        let len = list.len();
        let (from, n) = resolve_range(start, end, len);
        list.remove_range(from + n, len);
        list.remove_range(0, from);
        keys.notify(LIST, "ltrim", key);
        delete_if_empty(&mut keys, key);
        len - n
    };
    ctx.dirty += removed as u64;
    ctx.out.ok();
    Ok(())
}

/// LPOS's options: RANK (negative searches from the tail), COUNT (0 = all; given = array
/// reply), MAXLEN (0 = no limit).
struct LposOpts {
    rank: i64,
    count: Option<i64>,
    maxlen: i64,
}

fn parse_lpos(args: Args<'_>) -> Result<LposOpts, CmdError> {
    let mut o = LposOpts {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        let Some(val) = args.try_get(i + 1) else {
            return Err(CmdError::Syntax);
        };
        if opt.eq_ignore_ascii_case(b"rank") {
            o.rank = int_arg(val)?;
            if o.rank == 0 {
                return Err(CmdError::msg(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if opt.eq_ignore_ascii_case(b"count") {
            o.count = Some(int_at_least(val, 0, "ERR COUNT can't be negative")?);
        } else if opt.eq_ignore_ascii_case(b"maxlen") {
            o.maxlen = int_at_least(val, 0, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

/// LPOS key element [RANK r] [COUNT n] [MAXLEN m]: indexes (from the head) of matches.
fn lpos(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let o = parse_lpos(args)?;
    let (mut keys, out) = ctx.keys_out();
    let Some(e) = keys.read(args.get(1)) else {
        match o.count {
            Some(_) => out.array(0),
            None => out.null(),
        }
        return Ok(());
    };
    let list = list_of(e)?;
    let (len, elem) = (list.len(), args.get(2));
    let from_tail = o.rank < 0;
    // Redis negates the rank in a C long: i64::MIN stays negative, so every match qualifies.
    let rank = if from_tail {
        o.rank.wrapping_neg()
    } else {
        o.rank
    };
    let scan = if o.maxlen == 0 {
        len
    } else {
        len.min(o.maxlen as usize)
    };
    let elems: Box<dyn Iterator<Item = &[u8]>> = if from_tail {
        Box::new(list.iter_rev())
    } else {
        Box::new(list.iter())
    };
    let mut found = Vec::new();
    let mut matches = 0i64;
    for (i, e) in elems.take(scan).enumerate() {
        if e != elem {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(if from_tail { len - 1 - i } else { i });
        match o.count {
            None => break,
            Some(c) if c != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= c => break,
            Some(_) => {}
        }
    }
    match o.count {
        Some(_) => {
            out.array(found.len());
            found.iter().for_each(|&i| out.int(i as i64));
        }
        None => match found.first() {
            Some(&i) => out.int(i as i64),
            None => out.null(),
        },
    }
    Ok(())
}

/// Pops from `src`'s `from_left` end and pushes onto `dst`'s `to_left` end (the same list
/// when the keys are equal); returns the element, `None` when `src` is missing. A
/// wrong-typed destination fails before anything is popped.
fn move_one(
    keys: &mut Keys<'_, '_>,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    limit: NodeLimit,
) -> Result<Option<Vec<u8>>, CmdError> {
    let Some(e) = keys.write(src) else {
        return Ok(None);
    };
    list_of(e)?;
    if src != dst {
        if let Some(d) = keys.peek(dst) {
            list_of(d)?;
        }
    }
    let Some(value) = keys
        .write(src)
        .map(list_mut)
        .transpose()?
        .and_then(|l| l.pop(from_left))
    else {
        return Ok(None);
    };
    match keys.write(dst) {
        Some(d) => list_mut(d)?.push(to_left, &value, limit),
        None => {
            let mut list = ListValue::new();
            list.push(to_left, &value, limit);
            insert_list(keys, dst, list);
        }
    }
    keys.notify(LIST, push_event(to_left), dst);
    popped(keys, src, from_left);
    Ok(Some(value))
}

/// LMOVE/RPOPLPUSH: the element moved, or null when the source is missing.
fn move_element(ctx: &mut Ctx<'_>, args: Args<'_>, from_left: bool, to_left: bool) -> CmdResult {
    let limit = node_limit(ctx);
    let (mut keys, out) = ctx.keys_out();
    match move_one(
        &mut keys,
        args.get(1),
        args.get(2),
        from_left,
        to_left,
        limit,
    )? {
        Some(value) => out.bulk(&value),
        None => {
            out.null();
            return Ok(());
        }
    }
    ctx.dirty += 1;
    Ok(())
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT (directions checked before any lookup).
fn lmove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let from_left = parse_side(args.get(3))?;
    let to_left = parse_side(args.get(4))?;
    move_element(ctx, args, from_left, to_left)
}

/// RPOPLPUSH source destination: LMOVE source destination RIGHT LEFT.
fn rpoplpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    move_element(ctx, args, false, true)
}

/// LMPOP's keys: `numkeys` (argument 1) keys, leaving room for LEFT|RIGHT after them.
fn lmpop_keys(args: Args<'_>) -> KeyPositions {
    super::numkeys_positions(args, 1, 1)
}

/// BLMPOP's keys: as LMPOP's, one argument later (after the timeout).
fn blmpop_keys(args: Args<'_>) -> KeyPositions {
    super::numkeys_positions(args, 2, 1)
}

/// `numkeys key... LEFT|RIGHT [COUNT n]` from argument `at`: (key argument range, pop from
/// the head, count).
fn parse_mpop(
    args: Args<'_>,
    at: usize,
) -> Result<(std::ops::Range<usize>, bool, usize), CmdError> {
    let numkeys = int_at_least(args.get(at), 1, "ERR numkeys should be greater than 0")?;
    let side_at = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(at + 1))
        .filter(|&i| i < args.len())
        .ok_or(CmdError::Syntax)?;
    let front = parse_side(args.get(side_at))?;
    let mut count = None;
    let mut i = side_at + 1;
    while i < args.len() {
        match args.try_get(i + 1) {
            Some(v) if count.is_none() && args.get(i).eq_ignore_ascii_case(b"count") => {
                count = Some(int_at_least(v, 1, "ERR count should be greater than 0")?);
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    Ok((at + 1..side_at, front, count.unwrap_or(1) as usize))
}

/// Pops up to `count` from the first non-empty list among `keys` and replies [key,
/// [elements]]; returns how many were popped (0: nothing replied, every list is missing).
fn mpop_first<'n>(
    keys: &mut Keys<'_, '_>,
    out: &mut Reply<'_>,
    names: impl Iterator<Item = &'n [u8]>,
    front: bool,
    count: usize,
) -> Result<Option<(&'n [u8], usize)>, CmdError> {
    for key in names {
        let Some(e) = keys.write(key) else { continue };
        let list = list_mut(e)?;
        if list.is_empty() {
            continue;
        }
        out.array(2);
        out.bulk(key);
        let removed = pop_into_reply(out, list, front, count);
        popped(keys, key, front);
        return Ok(Some((key, removed)));
    }
    Ok(None)
}

/// LPOP/RPOP key n: what LMPOP and BLMPOP propagate, as Redis, with the count they got.
fn pop_with_count(ctx: &mut Ctx<'_>, front: bool, key: &[u8], n: usize) {
    ctx.dirty += n as u64;
    let n = crate::propagate::num(n);
    ctx.propagate_as(&[side_pop(front), key, &n]);
}

/// LMPOP numkeys key... LEFT|RIGHT [COUNT n]: pops up to n (default 1) elements from the
/// first non-empty list; replies [key, [elements]], or a null array if every list is
/// missing.
fn lmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (names, front, count) = parse_mpop(args, 1)?;
    let (mut keys, out) = ctx.keys_out();
    match mpop_first(&mut keys, out, names.map(|i| args.get(i)), front, count)? {
        Some((key, n)) => pop_with_count(ctx, front, key, n),
        None => {
            // Nothing changed, nothing to replay.
            out.null_array();
            ctx.prevent_propagation();
        }
    }
    Ok(())
}

/// BLPOP/BRPOP key... timeout: pops from the first non-empty list, replying [key, element];
/// blocks on all the keys when every one is missing.
fn bpop(ctx: &mut Ctx<'_>, args: Args<'_>, front: bool) -> CmdResult {
    let deadline = blocking::parse_timeout(args.get(args.len() - 1), ctx.now_ms)?;
    let names: Vec<&[u8]> = args.iter().skip(1).take(args.len() - 2).collect();
    {
        let (mut keys, out) = ctx.keys_out();
        for &key in &names {
            let Some(e) = keys.write(key) else { continue };
            let Some(value) = list_mut(e)?.pop(front) else {
                continue;
            };
            out.array(2);
            out.bulk(key);
            out.bulk(&value);
            popped(&mut keys, key, front);
            ctx.dirty += 1;
            ctx.propagate_as(&[side_pop(front), key]);
            return Ok(());
        }
    }
    ctx.prevent_propagation();
    blocking::block(ctx, &names, WaitOp::ListPop { front }, deadline);
    Ok(())
}

fn blpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop(ctx, args, true)
}

fn brpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop(ctx, args, false)
}

/// BLMOVE/BRPOPLPUSH: LMOVE when the source has an element, else block on the source.
fn bmove(ctx: &mut Ctx<'_>, args: Args<'_>, from_front: bool, to_front: bool) -> CmdResult {
    let deadline = blocking::parse_timeout(args.get(args.len() - 1), ctx.now_ms)?;
    let limit = node_limit(ctx);
    let (src, dst) = (args.get(1), args.get(2));
    {
        let (mut keys, out) = ctx.keys_out();
        if let Some(value) = move_one(&mut keys, src, dst, from_front, to_front, limit)? {
            out.bulk(&value);
            ctx.dirty += 1;
            ctx.propagate_as(&lmove_args(src, dst, from_front, to_front));
            return Ok(());
        }
    }
    ctx.prevent_propagation();
    let op = WaitOp::ListMove {
        from_front,
        dest: dst.into(),
        to_front,
    };
    blocking::block(ctx, &[src], op, deadline);
    Ok(())
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout.
fn blmove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let from_front = parse_side(args.get(3))?;
    let to_front = parse_side(args.get(4))?;
    bmove(ctx, args, from_front, to_front)
}

/// BRPOPLPUSH source destination timeout: BLMOVE source destination RIGHT LEFT timeout.
fn brpoplpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bmove(ctx, args, false, true)
}

/// BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT n]: LMPOP, or block on every key.
fn blmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let deadline = blocking::parse_timeout(args.get(1), ctx.now_ms)?;
    let (names, front, count) = parse_mpop(args, 2)?;
    {
        let (mut keys, out) = ctx.keys_out();
        let first = mpop_first(
            &mut keys,
            out,
            names.clone().map(|i| args.get(i)),
            front,
            count,
        )?;
        if let Some((key, n)) = first {
            pop_with_count(ctx, front, key, n);
            return Ok(());
        }
    }
    ctx.prevent_propagation();
    let names: Vec<&[u8]> = names.map(|i| args.get(i)).collect();
    blocking::block(ctx, &names, WaitOp::ListMultiPop { front, count }, deadline);
    Ok(())
}

/// The pop a blocking pop propagates as.
fn side_pop(front: bool) -> &'static [u8] {
    if front {
        b"LPOP"
    } else {
        b"RPOP"
    }
}

/// The LMOVE a blocking move propagates as.
fn lmove_args<'a>(src: &'a [u8], dst: &'a [u8], from_front: bool, to_front: bool) -> [&'a [u8]; 5] {
    let side = |front: bool| -> &'static [u8] {
        if front {
            b"LEFT"
        } else {
            b"RIGHT"
        }
    };
    [b"LMOVE", src, dst, side(from_front), side(to_front)]
}

/// Serves a client blocked in BLPOP/BRPOP/BLMPOP/BLMOVE on `key`, which holds a non-empty
/// list (the caller checked): the pop its command would have done, with the same reply. A
/// BLMOVE whose destination has meanwhile become another type gets WRONGTYPE, as in Redis.
pub(crate) fn serve_blocked(
    srv: &Server,
    keys: &mut Keys<'_, '_>,
    key: &[u8],
    op: &WaitOp,
    out: &mut Reply<'_>,
) -> Served {
    let popped = match op {
        WaitOp::ListPop { front } => {
            let Some(value) = keys
                .write(key)
                .and_then(|e| list_mut(e).ok())
                .and_then(|l| l.pop(*front))
            else {
                return Served::NotReady;
            };
            out.array(2);
            out.bulk(key);
            out.bulk(&value);
            popped(keys, key, *front);
            crate::propagate::emit(keys.db_index(), &[side_pop(*front), key]);
            1
        }
        WaitOp::ListMultiPop { front, count } => {
            match mpop_first(keys, out, std::iter::once(key), *front, *count) {
                Ok(None) | Err(_) => return Served::NotReady,
                Ok(Some((_, n))) => {
                    let n_arg = crate::propagate::num(n);
                    crate::propagate::emit(keys.db_index(), &[side_pop(*front), key, &n_arg]);
                    n
                }
            }
        }
        WaitOp::ListMove {
            from_front,
            dest,
            to_front,
        } => {
            match move_one(
                keys,
                key,
                dest,
                *from_front,
                *to_front,
                server_node_limit(srv),
            ) {
                Ok(Some(value)) => {
                    out.bulk(&value);
                    let cmd = lmove_args(key, dest, *from_front, *to_front);
                    crate::propagate::emit(keys.db_index(), &cmd);
                }
                Ok(None) => return Served::NotReady,
                Err(e) => {
                    srv.count_error("WRONGTYPE");
                    out.error(&e.to_string());
                    return Served::Done(0);
                }
            }
            1
        }
        _ => return Served::NotReady,
    };
    Served::Done(popped as u64)
}
