//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, RENAME, RENAMENX, COPY, MOVE, KEYS, SCAN,
//! RANDOMKEY, TOUCH and OBJECT.

use flowkv_protocol::{Args, Reply};
use flowkv_store::glob::glob_match;
use flowkv_store::keyspace::idle_seconds;
use flowkv_store::num::{parse_cursor, parse_i64};
use flowkv_store::{Entry, Keys};

use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::config::notify::GENERIC;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::{event as notify, event_in as notify_in};

pub static COMMANDS: &[Command] = &[
    Command::new("del", -2, Group::Generic)
        .flags(WRITE)
        .acl(acl::KEYSPACE)
        .keys(1, -1, 1)
        .key_specs(&[ks::spec(ks::RM | ks::DELETE, ks::index(1), ks::range(-1, 1, 0))])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .handler(del)
        .doc(
            "Delete a key",
            "1.0.0",
            "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
        ),
    Command::new("unlink", -2, Group::Generic)
        .flags(WRITE | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, -1, 1)
        .key_specs(&[ks::spec(ks::RM | ks::DELETE, ks::index(1), ks::range(-1, 1, 0))])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .handler(unlink)
        .doc(
            "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
            "4.0.0",
            "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.",
        ),
    Command::new("exists", -2, Group::Generic)
        .flags(READONLY | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, -1, 1)
        .key_specs(&[ks::spec(ks::RO, ks::index(1), ks::range(-1, 1, 0))])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .handler(exists)
        .doc(
            "Determine if a key exists",
            "1.0.0",
            "O(N) where N is the number of keys to check.",
        ),
    Command::new("type", 2, Group::Generic)
        .flags(READONLY | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RO)])
        .handler(type_)
        .doc("Determine the type stored at key", "1.0.0", "O(1)"),
    Command::new("rename", 3, Group::Generic)
        .flags(WRITE)
        .acl(acl::KEYSPACE)
        .keys(1, 2, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE),
            ks::key_at(2, ks::OW | ks::UPDATE),
        ])
        .handler(rename)
        .doc("Rename a key", "1.0.0", "O(1)"),
    Command::new("renamenx", 3, Group::Generic)
        .flags(WRITE | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 2, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::DELETE),
            ks::key_at(2, ks::OW | ks::INSERT),
        ])
        .handler(renamenx)
        .doc(
            "Rename a key, only if the new key does not exist",
            "1.0.0",
            "O(1)",
        ),
    Command::new("copy", -3, Group::Generic)
        .flags(WRITE | DENYOOM)
        .acl(acl::KEYSPACE)
        .keys(1, 2, 1)
        .key_specs(&[ks::key_at(1, ks::RO | ks::ACCESS), ks::key_at(2, ks::OW | ks::UPDATE)])
        .handler(copy)
        .doc(
            "Copy a key",
            "6.2.0",
            "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
        ),
    Command::new("move", 3, Group::Generic)
        .flags(WRITE | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .handler(move_)
        .doc("Move a key to another database", "1.0.0", "O(1)"),
    Command::new("keys", 2, Group::Generic)
        .flags(READONLY | ALL_SHARDS)
        .acl(acl::KEYSPACE | acl::DANGEROUS)
        .tips(&["request_policy:all_shards", "nondeterministic_output_order"])
        .handler(keys)
        .doc(
            "Find all keys matching the given pattern",
            "1.0.0",
            "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.",
        ),
    Command::new("scan", -2, Group::Generic)
        .flags(READONLY | ALL_SHARDS)
        .acl(acl::KEYSPACE)
        .tips(&["nondeterministic_output", "request_policy:special"])
        .handler(scan)
        .doc(
            "Incrementally iterate the keys space",
            "2.8.0",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        ),
    Command::new("randomkey", 1, Group::Generic)
        .flags(READONLY | ALL_SHARDS)
        .acl(acl::KEYSPACE)
        .tips(&["request_policy:all_shards", "nondeterministic_output"])
        .handler(randomkey)
        .doc("Return a random key from the keyspace", "1.0.0", "O(1)"),
    Command::new("touch", -2, Group::Generic)
        .flags(READONLY | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, -1, 1)
        .key_specs(&[ks::spec(ks::RO, ks::index(1), ks::range(-1, 1, 0))])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .handler(touch)
        .doc(
            "Alters the last access time of a key(s). Returns the number of existing keys specified.",
            "3.2.1",
            "O(N) where N is the number of keys that will be touched.",
        ),
    Command::new("object", -2, Group::Generic)
        .subcommands(OBJECT_SUBCOMMANDS)
        .doc(
            "A container for object introspection commands",
            "2.2.3",
            "Depends on subcommand.",
        ),
];

static OBJECT_SUBCOMMANDS: &[Command] = &[
    Command::new("encoding", 3, Group::Generic)
        .flags(READONLY)
        .acl(acl::KEYSPACE)
        .keys(2, 2, 1)
        .key_specs(&[ks::key_at(2, ks::RO)])
        .tips(&["nondeterministic_output"])
        .handler(object_encoding)
        .doc(
            "Inspect the internal encoding of a Redis object",
            "2.2.3",
            "O(1)",
        ),
    Command::new("freq", 3, Group::Generic)
        .flags(READONLY)
        .acl(acl::KEYSPACE)
        .keys(2, 2, 1)
        .key_specs(&[ks::key_at(2, ks::RO)])
        .tips(&["nondeterministic_output"])
        .handler(object_freq)
        .doc(
            "Get the logarithmic access frequency counter of a Redis object",
            "4.0.0",
            "O(1)",
        ),
    Command::new("idletime", 3, Group::Generic)
        .flags(READONLY)
        .acl(acl::KEYSPACE)
        .keys(2, 2, 1)
        .key_specs(&[ks::key_at(2, ks::RO)])
        .tips(&["nondeterministic_output"])
        .handler(object_idletime)
        .doc(
            "Get the time since a Redis object was last accessed",
            "2.2.3",
            "O(1)",
        ),
    Command::new("refcount", 3, Group::Generic)
        .flags(READONLY)
        .acl(acl::KEYSPACE)
        .keys(2, 2, 1)
        .key_specs(&[ks::key_at(2, ks::RO)])
        .tips(&["nondeterministic_output"])
        .handler(object_refcount)
        .doc(
            "Get the number of references to the value of the key",
            "2.2.3",
            "O(1)",
        ),
    Command::new("help", 2, Group::Generic)
        .flags(LOADING | STALE)
        .acl(acl::KEYSPACE)
        .handler(object_help)
        .doc(
            "Show helpful text about the different subcommands",
            "6.2.0",
            "O(1)",
        ),
];

/// Redis's reply when a command's source and destination are the same key in the same DB.
const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// A view of database `db` through this command's locks: COPY's and MOVE's target. Keys
/// hash to the same shard whatever their database, so the source's locks cover the target.
fn db_view<'c, 'a>(ctx: &'c mut Ctx<'a>, db: usize) -> Keys<'c, 'a> {
    ctx.locked
        .as_mut()
        .expect("COPY and MOVE lock their keys' shards")
        .db(db, ctx.now_ms, ctx.stats)
}

/// Parses a database index as Redis does for COPY and MOVE: a 32-bit integer, then a range
/// check against `databases`.
fn parse_db(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, CmdError> {
    let n = parse_i64(arg)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or(CmdError::NotInteger)?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n < ctx.srv.keyspace.num_dbs())
        .ok_or(CmdError::msg("ERR DB index is out of range"))
}

/// DEL key [key ...]: the number of keys removed. Values are freed in place, unless
/// `lazyfree-lazy-user-del` makes DEL behave as UNLINK.
fn del(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.srv.evictor.lazy(crate::evict::lazy::USER_DEL) {
        return unlink(ctx, args);
    }
    let mut n = 0;
    for k in args.iter().skip(1) {
        if ctx.keys().remove(k).is_some() {
            notify(ctx, GENERIC, "del", k);
            n += 1;
        }
    }
    if n == 0 {
        // Deleting nothing changes nothing: not replayed, as in Redis.
        ctx.prevent_propagation();
    }
    ctx.out.int(n);
    Ok(())
}

/// UNLINK key [key ...]: like DEL, but the removed values are freed after the shard locks
/// are released — big ones on the lazy-free thread — so a large value holds up neither
/// the other clients of those shards nor those of this worker.
fn unlink(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut removed: Vec<Entry> = Vec::new();
    for k in args.iter().skip(1) {
        if let Some(e) = ctx.keys().remove(k) {
            notify(ctx, GENERIC, "del", k);
            removed.push(e);
        }
    }
    // Inside EXEC or a script the locks are the transaction's and must stay. Otherwise
    // WATCHers learn of the removals before the locks go, as dispatch would do.
    if !ctx.deny_blocking {
        if let Some(mut locked) = ctx.locked.take() {
            ctx.srv.watches.touch_changed(&mut locked);
        }
    }
    if removed.is_empty() {
        ctx.prevent_propagation();
    }
    ctx.out.int(removed.len() as i64);
    crate::commands::server::free_entries_async(removed);
    Ok(())
}

/// EXISTS key [key ...]: how many of the arguments exist; a key named twice counts twice.
fn exists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut keys = ctx.keys();
    let n = args
        .iter()
        .skip(1)
        .filter(|k| keys.read_no_touch(k).is_some())
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

/// TYPE key: the type name, or `none`, as a simple string.
fn type_(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let name = keys
        .read_no_touch(args.get(1))
        .map_or("none", |e| e.kind().name());
    out.simple(name.as_bytes());
    Ok(())
}

/// TOUCH key [key ...]: refreshes the access time of the keys that exist and counts them.
fn touch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut keys = ctx.keys();
    let n = args
        .iter()
        .skip(1)
        .filter(|k| keys.read(k).is_some())
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

fn rename(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rename_generic(ctx, args, true)
}

/// RENAME / RENAMENX: the value moves (no copy) and takes the source's TTL, or none; the
/// destination's old value and TTL are dropped. A missing source is an error even when both
/// names are the same; an existing one renamed onto itself is a no-op.
fn rename_generic(ctx: &mut Ctx<'_>, args: Args<'_>, nx: bool) -> CmdResult {
    let (src, dst) = (args.get(1), args.get(2));
    let (mut keys, out) = ctx.keys_out();
    if !keys.contains(src) {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst || (nx && keys.contains(dst)) {
        if nx {
            out.int(0);
        } else {
            out.ok();
        }
        return Ok(());
    }
    let entry = keys.remove(src).ok_or(CmdError::NoSuchKey)?;
    keys.insert(entry.renamed(dst));
    if nx {
        out.int(1);
    } else {
        out.ok();
    }
    notify(ctx, GENERIC, "rename_from", src);
    notify(ctx, GENERIC, "rename_to", dst);
    Ok(())
}

/// COPY source destination [DB index] [REPLACE]: 1 if copied, 0 if the source is missing
/// or the destination exists without REPLACE. The copy keeps the TTL.
fn copy(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (src, dst) = (args.get(1), args.get(2));
    let mut target = ctx.client.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if opt.eq_ignore_ascii_case(b"db") && i + 1 < args.len() {
            target = parse_db(ctx, args.get(i + 1))?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if target == ctx.client.db && src == dst {
        return Err(CmdError::msg(SAME_OBJECT));
    }
    let Some(copy) = ctx.keys().read(src).map(|e| e.clone_as(dst)) else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut to = db_view(ctx, target);
    let copied = replace || !to.contains(dst);
    if copied {
        to.insert(copy);
        notify_in(ctx, target, GENERIC, "copy_to", dst);
    }
    ctx.out.int(i64::from(copied));
    Ok(())
}

/// MOVE key db: 1 if moved, 0 if the key is missing or exists in the target database.
fn move_(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let target = parse_db(ctx, args.get(2))?;
    if target == ctx.client.db {
        return Err(CmdError::msg(SAME_OBJECT));
    }
    let moved = ctx.keys().move_to_db(args.get(1), target);
    if moved {
        notify(ctx, GENERIC, "move_from", args.get(1));
        notify_in(ctx, target, GENERIC, "move_to", args.get(1));
    }
    ctx.out.int(i64::from(moved));
    Ok(())
}

/// KEYS pattern: every live key matching the glob, in no particular order.
fn keys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let pattern = args.get(1);
    let all = pattern == b"*";
    let (keys, out) = ctx.keys_out();
    let matched: Vec<&[u8]> = keys
        .iter()
        .map(Entry::key)
        .filter(|k| all || glob_match(pattern, k, false))
        .collect();
    out.array(matched.len());
    for k in matched {
        out.bulk(k);
    }
    Ok(())
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: one step of a cursor iteration.
/// A key present for the whole iteration is returned at least once; duplicates are possible.
fn scan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(1)).ok_or(CmdError::msg("ERR invalid cursor"))?;
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let (opt, val) = match args.try_get(i + 1) {
            Some(val) => (args.get(i), val),
            None => return Err(CmdError::Syntax),
        };
        if opt.eq_ignore_ascii_case(b"count") {
            let n = parse_i64(val).ok_or(CmdError::NotInteger)?;
            count = usize::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or(CmdError::Syntax)?;
        } else if opt.eq_ignore_ascii_case(b"match") {
            pattern = (val != b"*").then_some(val);
        } else if opt.eq_ignore_ascii_case(b"type") {
            type_name = Some(val);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let mut found: Vec<Box<[u8]>> = Vec::new();
    let next = ctx.keys().scan(cursor, count, |e| {
        let key = e.key();
        if pattern.is_some_and(|p| !glob_match(p, key, false)) {
            return;
        }
        if type_name.is_some_and(|t| !t.eq_ignore_ascii_case(e.kind().name().as_bytes())) {
            return;
        }
        found.push(key.into());
    });
    let out = &mut ctx.out;
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(found.len());
    for k in &found {
        out.bulk(k);
    }
    Ok(())
}

/// RANDOMKEY: a random live key, or null if the database is empty.
fn randomkey(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let key = ctx.keys().random_key(&mut rand::thread_rng());
    match key {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
    Ok(())
}

/// Runs `f` on the entry OBJECT's key names, or replies null if it does not exist. The
/// lookup counts a hit or miss but leaves the access time alone, as Redis's does.
fn with_object(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    f: impl FnOnce(&Entry, &mut Reply<'_>) -> CmdResult,
) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    match keys.read_no_touch(args.get(2)) {
        Some(e) => f(e, out),
        None => {
            out.null();
            Ok(())
        }
    }
}

/// OBJECT ENCODING key: Redis's name for the value's internal representation.
fn object_encoding(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_object(ctx, args, |e, out| {
        out.bulk(e.encoding().as_bytes());
        Ok(())
    })
}

/// The integers Redis keeps as shared objects (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: std::ops::Range<i64> = 0..10_000;
/// The reference count Redis reports for a shared object (`OBJ_SHARED_REFCOUNT`).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// OBJECT REFCOUNT key: values are never shared here, so 1 — except that Redis shares the
/// integers 0..9999 (unless `maxmemory` is set with an LRU/LFU policy, which needs per-key
/// access data) and clients and its test suite can observe that, so those report Redis's
/// shared count.
fn object_refcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    use flowkv_store::evict::Rank;
    let per_key_access = matches!(ctx.srv.evictor.policy().rank(), Rank::Lru | Rank::Lfu);
    let sharing = !per_key_access || ctx.srv.evictor.maxmemory() == 0;
    with_object(ctx, args, |e, out| {
        let shared = sharing
            && e.encoding() == "int"
            && e.string()
                .and_then(parse_i64)
                .is_some_and(|n| SHARED_INTEGERS.contains(&n));
        out.int(if shared { SHARED_REFCOUNT } else { 1 });
        Ok(())
    })
}

/// OBJECT IDLETIME key: seconds since the last access; an error under an LFU policy, where
/// the access bits hold frequency data instead.
fn object_idletime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let lfu = ctx.srv.keyspace.lfu().is_some();
    let now = ctx.now_ms;
    with_object(ctx, args, |e, out| {
        if lfu {
            return Err(CmdError::msg(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ));
        }
        out.int(idle_seconds(e.lru(), now) as i64);
        Ok(())
    })
}

/// OBJECT FREQ key: the logarithmic access counter, only tracked under an LFU policy.
/// The counter is reported decayed to now, as eviction sees it.
fn object_freq(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let lfu = ctx.srv.keyspace.lfu();
    let now = ctx.now_ms;
    with_object(ctx, args, |e, out| {
        let Some(lfu) = lfu else {
            return Err(CmdError::msg(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ));
        };
        out.int(i64::from(lfu.counter(e.lru(), now)));
        Ok(())
    })
}

/// OBJECT HELP.
fn object_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the name of the internal representation of the value stored at <key>.",
        "FREQ <key>",
        "    Return the logarithmic access frequency counter of <key> (LFU policies only).",
        "IDLETIME <key>",
        "    Return the number of seconds since <key> was last accessed (not with LFU policies).",
        "REFCOUNT <key>",
        "    Return the number of references to the value stored at <key>.",
        "HELP",
        "    Print this help.",
    ];
    ctx.help(LINES);
    Ok(())
}
