//! DEBUG: the testing and introspection hooks Redis's own test suite and client libraries'
//! tests rely on. One command with free-form subcommands (as in Redis, where DEBUG is not a
//! container in the command table), gated by `enable-debug-command`.

use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use flowkv_protocol::Args;
use flowkv_store::keyspace::idle_seconds;
use flowkv_store::{Entry, ValueRef};

use crate::command::{flags::*, Command, Group, KeyPositions};
use crate::commands::persist;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[Command::new("debug", -2, Group::Server)
    .flags(ADMIN | NOSCRIPT | LOADING | STALE)
    .movable_keys(debug_keys)
    .locks_all_when(locks_all)
    .key_specs(&[])
    .handler(debug)
    .doc(
        "A container for debugging commands",
        "1.0.0",
        "Depends on subcommand.",
    )];

/// The keys a DEBUG subcommand reads, so dispatch locks their shards: OBJECT's key and
/// DIGEST-VALUE's keys. (DIGEST locks the whole keyspace itself.)
fn debug_keys(args: Args<'_>) -> KeyPositions {
    let sub = args.try_get(1).unwrap_or_default();
    if sub.eq_ignore_ascii_case(b"object") && args.len() == 3 {
        std::iter::once(2).collect()
    } else if sub.eq_ignore_ascii_case(b"digest-value") {
        (2..args.len()).collect()
    } else {
        KeyPositions::new()
    }
}

/// DEBUG RELOAD and DIGEST work on the whole keyspace: dispatch (or EXEC) locks every shard
/// for them, so they never lock shards a transaction already holds.
fn locks_all(args: Args<'_>) -> bool {
    let sub = args.try_get(1).unwrap_or_default();
    sub.eq_ignore_ascii_case(b"reload")
        || sub.eq_ignore_ascii_case(b"digest")
        || sub.eq_ignore_ascii_case(b"loadaof")
}

/// Subcommand, arity (Redis's: `n` exactly, `-n` at least) and handler.
type Sub = (&'static str, i32, fn(&mut Ctx<'_>, Args<'_>) -> CmdResult);

const SUBCOMMANDS: &[Sub] = &[
    ("help", 2, help),
    ("sleep", 3, sleep),
    ("set-active-expire", 3, set_active_expire),
    ("pause-cron", 3, pause_cron),
    ("set-disable-deny-scripts", 3, set_disable_deny_scripts),
    ("object", 3, object),
    ("log", 3, log),
    ("error", 3, error),
    ("protocol", 3, protocol),
    ("digest", 2, digest),
    ("digest-value", -2, digest_value),
    ("reload", -2, reload),
    ("loadaof", 2, loadaof),
    ("quicklist-packed-threshold", 3, quicklist_packed_threshold),
];

const HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
    "SET-DISABLE-DENY-SCRIPTS <0|1>",
    "    Setting it to 1 lets scripts run commands that are normally denied in scripts.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "HELP",
    "    Prints this help.",
];

/// DEBUG <subcommand> ...
fn debug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    check_allowed(ctx)?;
    let name = args.get(1);
    let sub = SUBCOMMANDS
        .iter()
        .find(|(n, arity, _)| {
            name.eq_ignore_ascii_case(n.as_bytes())
                && if *arity >= 0 {
                    args.len() == *arity as usize
                } else {
                    args.len() >= arity.unsigned_abs() as usize
                }
        })
        .ok_or_else(|| {
            CmdError::msg(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
                String::from_utf8_lossy(name)
            ))
        })?;
    (sub.2)(ctx, args)
}

/// `enable-debug-command`: `yes`, `local` (loopback clients only) or `no`.
fn check_allowed(ctx: &Ctx<'_>) -> CmdResult {
    let allowed = match ctx.srv.config.get("enable-debug-command").as_deref() {
        Some("yes") => true,
        Some("local") => ctx.client.shared.addr.ip().is_loopback(),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(CmdError::msg(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ))
    }
}

fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.help(HELP);
    Ok(())
}

/// The longest DEBUG SLEEP: it stalls a worker thread, so keep it bounded.
const MAX_SLEEP_SECS: f64 = 3600.0;

/// DEBUG SLEEP <seconds>: stalls this client's worker thread (Redis stalls its only one).
fn sleep(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let secs = flowkv_store::num::parse_f64(args.get(2)).ok_or(CmdError::NotFloat)?;
    if secs > MAX_SLEEP_SECS {
        return Err(CmdError::msg(
            "ERR DEBUG SLEEP accepts at most 3600 seconds",
        ));
    }
    if secs > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(secs));
    }
    ctx.out.ok();
    Ok(())
}

/// DEBUG SET-DISABLE-DENY-SCRIPTS 0|1: lets scripts run commands flagged `noscript` (the
/// suite uses it to test every command's reply conversion from Lua).
fn set_disable_deny_scripts(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = flowkv_store::num::parse_i64(args.get(2)).ok_or(CmdError::NotInteger)? != 0;
    crate::scripting::set_disable_deny_scripts(on);
    ctx.out.ok();
    Ok(())
}

/// DEBUG SET-ACTIVE-EXPIRE 0|1: turns the background expiry cycle off (0) or on.
fn set_active_expire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = flowkv_store::num::parse_i64(args.get(2)).ok_or(CmdError::NotInteger)? != 0;
    ctx.srv.active_expire.store(on, Relaxed);
    ctx.out.ok();
    Ok(())
}

/// DEBUG PAUSE-CRON 0|1: stops (1) or restarts the periodic work (see
/// [`crate::server::Server::cron_paused`]).
fn pause_cron(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = flowkv_store::num::parse_i64(args.get(2)).ok_or(CmdError::NotInteger)? != 0;
    ctx.srv.cron_paused.store(on, Relaxed);
    ctx.out.ok();
    Ok(())
}

/// DEBUG OBJECT <key>: Redis's one-line summary of the value. `at:` is the entry's
/// address, stable while the key is modified in place.
fn object(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let now = ctx.now_ms;
    let opts = persist::write_options(ctx.srv);
    let (mut keys, out) = ctx.keys_out();
    let e = keys.peek_stored(args.get(2)).ok_or(CmdError::NoSuchKey)?;
    let line = format!(
        "Value at:{:p} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
        e,
        e.encoding(),
        serialized_len(e, opts),
        e.lru(),
        idle_seconds(e.lru(), now)
    );
    out.simple(line.as_bytes());
    Ok(())
}

/// The size of the value's RDB encoding (type byte excluded), as Redis's
/// `serializedlength`: what SAVE would write for it, LZF compression included.
fn serialized_len(e: &Entry, opts: flowkv_persist::WriteOptions) -> usize {
    let mut buf = Vec::new();
    flowkv_persist::write::write_value(&mut buf, e, opts);
    buf.len() - 1
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: saves the dataset, empties memory and loads the
/// file back, as Redis does (the suite uses it to check that every encoding round-trips).
fn reload(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut merge, mut flush, mut save) = (false, true, true);
    for opt in args.iter().skip(2) {
        if opt.eq_ignore_ascii_case(b"merge") {
            merge = true;
        } else if opt.eq_ignore_ascii_case(b"noflush") {
            flush = false;
        } else if opt.eq_ignore_ascii_case(b"nosave") {
            save = false;
        } else {
            return Err(CmdError::msg(
                "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
            ));
        }
    }
    let (srv, now) = (ctx.srv, ctx.now_ms);
    let locked = ctx.locked.as_mut().expect("locks_all");
    if save {
        persist::save(srv, locked).map_err(|_| CmdError::msg("ERR"))?;
    }
    if flush {
        let mut stats = flowkv_store::KeyStats::default();
        for db in 0..srv.keyspace.num_dbs() {
            drop(locked.db(db, now, &mut stats).flush());
        }
        crate::scripting::clear_libraries();
    }
    match persist::load(srv, locked, merge) {
        Ok(Some(_)) => {
            eprintln!("DB reloaded by DEBUG RELOAD");
            ctx.out.ok();
            Ok(())
        }
        Ok(None) | Err(_) => Err(CmdError::msg("ERR Error trying to load the RDB dump")),
    }
}

/// DEBUG QUICKLIST-PACKED-THRESHOLD <size>: Redis stores list elements above the size in
/// nodes of their own. flowkv's lists keep every element as it is whatever its size, so
/// this checks the argument as Redis does and changes nothing: the suite's tests of big
/// list elements then run against flowkv's lists too.
fn quicklist_packed_threshold(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let size = std::str::from_utf8(args.get(2))
        .ok()
        .and_then(crate::config::parse_memory);
    match size {
        Some(n) if n <= (1 << 32) - (1 << 20) => {
            ctx.out.ok();
            Ok(())
        }
        _ => Err(CmdError::msg(
            "ERR argument must be a memory value bigger than 1 and smaller than 4gb",
        )),
    }
}

/// DEBUG LOADAOF: writes out the AOF buffer, empties memory and loads the AOF back, as
/// Redis does (the suite checks that commands propagate to the AOF faithfully).
fn loadaof(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    crate::aof::debug_loadaof(ctx).map_err(|e| {
        eprintln!("{e}");
        CmdError::msg("ERR Error loading the AOF")
    })?;
    ctx.out.ok();
    Ok(())
}

/// DEBUG LOG <message>: writes a line to the server log (the suite marks test starts).
fn log(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eprintln!("DEBUG LOG: {}", String::from_utf8_lossy(args.get(2)));
    ctx.out.ok();
    Ok(())
}

/// DEBUG ERROR <string>: replies with `<string>` as an error, for client tests.
fn error(_ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    Err(CmdError::msg(
        String::from_utf8_lossy(args.get(2)).into_owned(),
    ))
}

/// DEBUG PROTOCOL <type>: a sample reply of each RESP3 type (RESP2 gets the fallbacks).
// Redis's sample double is the literal 3.141, not an approximation of pi.
#[allow(clippy::approx_constant)]
fn protocol(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let t = args.get(2).to_ascii_lowercase();
    let out = &mut ctx.out;
    match t.as_slice() {
        b"string" => out.bulk(b"Hello World"),
        b"integer" => out.int(12345),
        b"double" => out.double(3.141),
        b"bignum" => out.big_number(b"1234567999999999999999999999999999999"),
        b"null" => out.null(),
        b"array" | b"set" | b"map" => {
            match t.as_slice() {
                b"array" => out.array(3),
                b"set" => out.set(3),
                _ => out.map(3),
            }
            for i in 0..3 {
                out.int(i);
                if t == b"map" {
                    out.boolean(i == 1);
                }
            }
        }
        b"attrib" => {
            // Attributes exist only in RESP3; RESP2 clients get just the reply after them.
            if out.is_resp3() {
                out.raw(b"|1\r\n");
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !out.is_resp3() {
                return Err(CmdError::msg("ERR RESP2 is not supported by this command"));
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            out.bulk(b"Some real reply following the push reply");
        }
        b"verbatim" => out.verbatim(b"txt", b"This is a verbatim\nstring"),
        b"true" => out.boolean(true),
        b"false" => out.boolean(false),
        _ => return Err(CmdError::msg(
            "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        )),
    }
    Ok(())
}

/// A 160-bit digest, printed as 40 hex digits like Redis's SHA1-based ones. Built from
/// SipHash (std's `DefaultHasher`, whose keys are fixed) run with four domain bytes, so equal
/// data gives equal digests for the life of the process. The values differ from Redis's.
type Digest = [u8; 20];

fn digest_of(parts: &[&[u8]]) -> Digest {
    let mut d = [0u8; 20];
    for (i, chunk) in d.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (i as u8).hash(&mut h);
        for p in parts {
            p.hash(&mut h);
        }
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
    d
}

/// The digest of a key's value (not its name or TTL), as DEBUG DIGEST-VALUE reports it.
/// `None` for value types the digest does not cover yet.
fn value_digest(e: &Entry) -> Option<Digest> {
    let items;
    let scores;
    let entries;
    let ids;
    let module_fields: Vec<u8>;
    let mut parts: Vec<&[u8]> = vec![e.kind().name().as_bytes()];
    match e.value() {
        ValueRef::Hash(h) => {
            for (field, value) in h.digest_items() {
                parts.push(field);
                parts.push(value);
            }
        }
        ValueRef::List(l) => parts.extend(l.iter()),
        ValueRef::Set(s) => {
            items = s.digest_items();
            parts.extend(items.iter().map(|m| &**m));
        }
        ValueRef::ZSet(z) => {
            scores = z
                .iter()
                .map(|(_, s)| s.to_bits().to_le_bytes())
                .collect::<Vec<_>>();
            for ((member, _), score) in z.iter().zip(&scores) {
                parts.push(member);
                parts.push(score);
            }
        }
        ValueRef::Stream(st) => {
            entries = st.entries();
            ids = entries
                .iter()
                .map(|en| en.id.to_string().into_bytes())
                .collect::<Vec<_>>();
            for (en, id) in entries.iter().zip(&ids) {
                parts.push(id);
                en.fields().for_each(|(f, v)| parts.extend([f, v]));
            }
        }
        ValueRef::Bloom(bf) => {
            module_fields = bf.dump_header();
            parts.push(&module_fields);
            parts.extend(bf.links.iter().map(|l| &l.bytes[..]));
        }
        ValueRef::Cache(c) => {
            module_fields = [c.fresh_until, c.early_ms, u64::from(c.stale)]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            parts.push(&module_fields);
            parts.extend(c.value.as_deref());
        }
        _ => parts.push(e.string()?),
    }
    Some(digest_of(&parts))
}

fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn unsupported(e: &Entry) -> CmdError {
    CmdError::msg(format!(
        "ERR DEBUG DIGEST does not support values of type '{}' yet",
        e.kind().name()
    ))
}

/// DEBUG DIGEST-VALUE key [key ...]: one digest per key, all zeros for a missing key.
fn digest_value(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut digests = Vec::with_capacity(args.len() - 2);
    if args.len() > 2 {
        let mut keys = ctx.keys();
        for key in args.iter().skip(2) {
            digests.push(match keys.peek(key) {
                Some(e) => value_digest(e).ok_or_else(|| unsupported(e))?,
                None => [0; 20],
            });
        }
    }
    ctx.out.array(digests.len());
    for d in &digests {
        ctx.out.simple(hex(d).as_bytes());
    }
    Ok(())
}

/// Upper bound on the keys one SCAN step of DEBUG DIGEST visits.
const DIGEST_SCAN_COUNT: usize = 1024;

/// DEBUG DIGEST: one digest of the whole dataset (databases, keys, values, TTLs),
/// independent of the order keys are stored in; all zeros when the dataset is empty.
fn digest(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let mut total: Digest = [0; 20];
    let mut failure = None;
    {
        let srv = ctx.srv;
        let locked = ctx.locked.as_mut().expect("locks_all");
        for db in 0..srv.keyspace.num_dbs() {
            let mut keys = locked.db(db, ctx.now_ms, ctx.stats);
            let dbid = (db as u64).to_le_bytes();
            let mut cursor = 0;
            loop {
                cursor = keys.scan(cursor, DIGEST_SCAN_COUNT, |e| {
                    let Some(v) = value_digest(e) else {
                        failure.get_or_insert_with(|| unsupported(e));
                        return;
                    };
                    let ttl = e.expire_at().unwrap_or(0).to_le_bytes();
                    let d = digest_of(&[&dbid, e.key(), &v, &ttl]);
                    for (t, b) in total.iter_mut().zip(d) {
                        *t ^= b;
                    }
                });
                if cursor == 0 {
                    break;
                }
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    ctx.out.simple(hex(&total).as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_positions(args: &[&str]) -> Vec<usize> {
        let owned = flowkv_protocol::OwnedArgs::from_slices(args.iter().map(|a| a.as_bytes()));
        debug_keys(owned.as_args()).into_vec()
    }

    #[test]
    fn keys_of_subcommands() {
        assert_eq!(key_positions(&["debug", "OBJECT", "k"]), [2]);
        assert_eq!(key_positions(&["debug", "object"]), Vec::<usize>::new());
        assert_eq!(key_positions(&["debug", "digest-value", "a", "b"]), [2, 3]);
        assert_eq!(key_positions(&["debug", "sleep", "0"]), Vec::<usize>::new());
        assert_eq!(key_positions(&["debug"]), Vec::<usize>::new());
    }

    #[test]
    fn serialized_lengths() {
        let opts = flowkv_persist::WriteOptions { compress: false };
        let len = |v: &str| serialized_len(&Entry::new_string(b"k", v.as_bytes(), None, 0), opts);
        assert_eq!(len("12"), 2);
        assert_eq!(len("12345"), 3);
        assert_eq!(len("123456789"), 5);
        assert_eq!(len("12345678901"), 12);
        assert_eq!(len("bar"), 4);
        assert_eq!(len(&"x".repeat(100)), 102);
    }

    #[test]
    fn digests_are_stable_and_distinct() {
        assert_eq!(digest_of(&[b"a"]), digest_of(&[b"a"]));
        assert_ne!(digest_of(&[b"a"]), digest_of(&[b"b"]));
        // Parts are length-delimited: ("ab", "") differs from ("a", "b").
        assert_ne!(digest_of(&[b"ab", b""]), digest_of(&[b"a", b"b"]));
        assert_eq!(hex(&[0; 20]), "0".repeat(40));
    }
}
