//! Server commands: INFO, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, TIME, LASTSAVE, SHUTDOWN.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;

use flowkv_protocol::Args;
use flowkv_store::table::KeyTable;
use flowkv_store::{Entry, Keys};

use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::info;
use crate::server::unix_us;

pub static COMMANDS: &[Command] = &[
    Command::new("info", -1, Group::Server)
        .flags(LOADING | STALE | READS_ALL_SHARDS)
        .acl(acl::DANGEROUS)
        .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"])
        .handler(info_cmd)
        .doc(
            "Get information and statistics about the server",
            "1.0.0",
            "O(1)",
        ),
    Command::new("dbsize", 1, Group::Server)
        .flags(READONLY | FAST | ALL_SHARDS)
        .acl(acl::KEYSPACE)
        .tips(&["request_policy:all_shards", "response_policy:agg_sum"])
        .handler(dbsize)
        .doc(
            "Return the number of keys in the selected database",
            "1.0.0",
            "O(1)",
        ),
    Command::new("flushdb", -1, Group::Server)
        .flags(WRITE | ALL_SHARDS)
        .acl(acl::KEYSPACE | acl::DANGEROUS)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .handler(flushdb)
        .doc(
            "Remove all keys from the current database",
            "1.0.0",
            "O(N) where N is the number of keys in the selected database",
        ),
    Command::new("flushall", -1, Group::Server)
        .flags(WRITE | ALL_SHARDS)
        .acl(acl::KEYSPACE | acl::DANGEROUS)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .handler(flushall)
        .doc(
            "Remove all keys from all databases",
            "1.0.0",
            "O(N) where N is the total number of keys in all databases",
        ),
    Command::new("swapdb", 3, Group::Server)
        .flags(WRITE | FAST | ALL_SHARDS)
        .acl(acl::KEYSPACE | acl::DANGEROUS)
        .handler(swapdb)
        .doc(
            "Swaps two Redis databases",
            "4.0.0",
            "O(N) where N is the count of clients watching or blocking on keys from both databases.",
        ),
    Command::new("time", 1, Group::Server)
        .flags(LOADING | STALE | FAST)
        .tips(&["nondeterministic_output"])
        .handler(time)
        .doc("Return the current server time", "2.6.0", "O(1)"),
    Command::new("lastsave", 1, Group::Server)
        .flags(LOADING | STALE | FAST)
        .acl(acl::ADMIN | acl::DANGEROUS)
        .tips(&["nondeterministic_output"])
        .handler(lastsave)
        .doc(
            "Get the UNIX time stamp of the last successful save to disk",
            "1.0.0",
            "O(1)",
        ),
    Command::new("shutdown", -1, Group::Server)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY)
        .handler(shutdown)
        .doc(
            "Synchronously save the dataset to disk and then shut down the server",
            "1.0.0",
            "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
        ),
];

/// INFO [section ...]: a text report, verbatim "txt" in RESP3.
fn info_cmd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let sel = info::Selection::parse(args.iter().skip(1));
    // Inside a script or EXEC every shard is already held (see READS_ALL_SHARDS): count keys
    // through those locks instead of taking them again.
    let held_sizes = ctx.locked.as_ref().map(|l| l.db_sizes());
    let text = info::render(ctx.srv, &sel, held_sizes);
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn dbsize(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let n = ctx.keys().len();
    ctx.out.int(n as i64);
    Ok(())
}

/// FLUSHDB / FLUSHALL's optional ASYNC|SYNC: true for asynchronous freeing. Without it,
/// `lazyfree-lazy-user-flush` decides.
fn flush_async(ctx: &Ctx<'_>, args: Args<'_>) -> Result<bool, CmdError> {
    match args.len() {
        1 => Ok(ctx.srv.config.get_bool("lazyfree-lazy-user-flush")),
        2 if args.get(1).eq_ignore_ascii_case(b"async") => Ok(true),
        2 if args.get(1).eq_ignore_ascii_case(b"sync") => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// FLUSHDB [ASYNC|SYNC]: empties the selected database.
fn flushdb(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let lazy = flush_async(ctx, args)?;
    let db = ctx.client.db;
    touch_watched(ctx.srv, &mut ctx.keys(), db);
    let old = ctx.keys().flush();
    release(ctx, old, lazy);
    ctx.out.ok();
    Ok(())
}

/// FLUSHALL [ASYNC|SYNC]: empties every database.
fn flushall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let lazy = flush_async(ctx, args)?;
    let ndbs = ctx.srv.keyspace.num_dbs();
    let now = ctx.now_ms;
    let locked = ctx.locked.as_mut().expect("ALL_SHARDS");
    let mut old = Vec::new();
    for db in 0..ndbs {
        let mut keys = locked.db(db, now, ctx.stats);
        touch_watched(ctx.srv, &mut keys, db);
        old.extend(keys.flush());
    }
    release(ctx, old, lazy);
    ctx.out.ok();
    Ok(())
}

/// Fails the EXEC of clients WATCHing keys of database `watched_db` that exist in `keys`
/// (the database about to be flushed or swapped), as Redis does: a watched key that was
/// missing or expired is not changed by a flush.
fn touch_watched(srv: &crate::server::Server, keys: &mut Keys<'_, '_>, watched_db: usize) {
    let touched: Vec<(usize, Box<[u8]>)> = srv
        .watches
        .keys_in_db(watched_db)
        .into_iter()
        .filter(|k| keys.contains(k))
        .map(|k| (watched_db, k))
        .collect();
    srv.watches.touch(&touched);
}

/// Frees flushed databases after unlocking the shards: here (SYNC) or on the lazy-free
/// thread (ASYNC), so other clients never wait for the deallocation. While clients are
/// blocked the locks stay (dispatch reads the keys made ready from them: a flushed stream
/// answers its blocked XREADGROUPs) and a SYNC flush frees under them.
fn release(ctx: &mut Ctx<'_>, old: Vec<KeyTable>, lazy: bool) {
    if !ctx.srv.blocked.any_waiting() {
        drop(ctx.locked.take());
    }
    if lazy {
        free_async(old);
    }
}

/// Objects (keys) handed to the lazy-free thread and not yet freed (INFO
/// lazyfree_pending_objects), and those it has freed (lazyfreed_objects).
static LAZYFREE_PENDING: AtomicU64 = AtomicU64::new(0);
static LAZYFREED: AtomicU64 = AtomicU64::new(0);

/// (pending, freed) lazy-free counts for INFO memory.
pub fn lazyfree_counts() -> (u64, u64) {
    (LAZYFREE_PENDING.load(Relaxed), LAZYFREED.load(Relaxed))
}

/// CONFIG RESETSTAT clears the count of lazily freed objects, as Redis does.
pub fn reset_lazyfree_stats() {
    LAZYFREED.store(0, Relaxed);
}

/// What the lazy-free thread frees: flushed databases, or single deleted values.
enum Garbage {
    Dicts(Vec<KeyTable>),
    Entries(Vec<Entry>),
}

impl Garbage {
    /// Objects it counts as in INFO (keys).
    fn objects(&self) -> u64 {
        match self {
            Garbage::Dicts(d) => d.iter().map(|d| d.len() as u64).sum(),
            Garbage::Entries(e) => e.len() as u64,
        }
    }
}

/// The lazy-free thread's queue, started on first use; `None` if it could not start.
fn lazyfree_queue() -> Option<&'static Sender<Garbage>> {
    static QUEUE: OnceLock<Option<Sender<Garbage>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel::<Garbage>();
            std::thread::Builder::new()
                .name("flowkv-lazyfree".into())
                .spawn(move || {
                    for garbage in rx {
                        let n = garbage.objects();
                        drop(garbage);
                        LAZYFREE_PENDING.fetch_sub(n, Relaxed);
                        LAZYFREED.fetch_add(n, Relaxed);
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Hands garbage to the lazy-free thread (or frees it here if the thread is missing).
fn free_later(garbage: Garbage) {
    let n = garbage.objects();
    if n == 0 {
        return;
    }
    LAZYFREE_PENDING.fetch_add(n, Relaxed);
    let unsent = match lazyfree_queue() {
        Some(tx) => tx.send(garbage).err().map(|e| e.0),
        None => Some(garbage),
    };
    if let Some(garbage) = unsent {
        drop(garbage);
        LAZYFREE_PENDING.fetch_sub(n, Relaxed);
        LAZYFREED.fetch_add(n, Relaxed);
    }
}

/// Hands flushed databases to the lazy-free thread.
fn free_async(dicts: Vec<KeyTable>) {
    free_later(Garbage::Dicts(dicts));
}

/// Frees deleted values: those that take more than a few allocations on the lazy-free
/// thread (UNLINK, lazy eviction, expiry and deletion), the rest here at once.
pub fn free_entries_async(entries: Vec<Entry>) {
    let (big, small): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| e.free_effort() > crate::evict::LAZYFREE_THRESHOLD);
    drop(small);
    free_later(Garbage::Entries(big));
}

/// Frees one deleted value the same way (the keyspace's lazy-free function, for expired
/// keys under `lazyfree-lazy-expire`).
pub fn free_entry_async(entry: Entry) {
    if entry.free_effort() > crate::evict::LAZYFREE_THRESHOLD {
        free_later(Garbage::Entries(vec![entry]));
    }
}

/// SWAPDB index1 index2: clients of one database see the other's keys from now on.
fn swapdb(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let first = db_index(args.get(1), "ERR invalid first DB index")?;
    let second = db_index(args.get(2), "ERR invalid second DB index")?;
    let ndbs = ctx.srv.keyspace.num_dbs() as i64;
    if !(0..ndbs).contains(&first) || !(0..ndbs).contains(&second) {
        return Err(CmdError::msg("ERR DB index is out of range"));
    }
    if first != second {
        let now = ctx.now_ms;
        let locked = ctx.locked.as_mut().expect("ALL_SHARDS");
        let (a, b) = (first as usize, second as usize);
        for watched in [a, b] {
            for db in [a, b] {
                touch_watched(ctx.srv, &mut locked.db(db, now, ctx.stats), watched);
            }
        }
        locked.db(a, now, ctx.stats).swap_with(b);
        // Clients blocked in either database may find their keys there now.
        for db in [first as usize, second as usize] {
            for key in ctx.srv.blocked.keys_in_db(db) {
                locked.mark_ready(db, &key);
            }
        }
    }
    ctx.out.ok();
    Ok(())
}

/// A database index argument: an integer in C int range, or `err`.
fn db_index(arg: &[u8], err: &'static str) -> Result<i64, CmdError> {
    flowkv_store::num::parse_i64(arg)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or(CmdError::msg(err))
}

/// TIME: [unix seconds, microseconds], both as bulk strings.
fn time(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let us = unix_us();
    ctx.out.array(2);
    ctx.out.bulk_int((us / 1_000_000) as i64);
    ctx.out.bulk_int((us % 1_000_000) as i64);
    Ok(())
}

/// LASTSAVE: the time of the last successful save.
fn lastsave(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.out.int(info::last_save_secs(ctx.srv) as i64);
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stops the server. On success nothing is
/// sent: the connection closes as the process exits, as with Redis.
///
/// Saves first when asked to (SAVE) or when save points are configured and NOSAVE is not
/// given; a failed save keeps the server running unless FORCE.
fn shutdown(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut nosave, mut save, mut force, mut abort) = (false, false, false, false);
    let mut now = false;
    for a in args.iter().skip(1) {
        if a.eq_ignore_ascii_case(b"nosave") {
            nosave = true;
        } else if a.eq_ignore_ascii_case(b"save") {
            save = true;
        } else if a.eq_ignore_ascii_case(b"now") {
            now = true;
        } else if a.eq_ignore_ascii_case(b"force") {
            force = true;
        } else if a.eq_ignore_ascii_case(b"abort") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if (abort && (nosave || save || force || now)) || (nosave && save) {
        return Err(CmdError::Syntax);
    }
    if abort {
        // A requested shutdown is carried out at once: there is never one to abort.
        return Err(CmdError::msg("ERR No shutdown in progress."));
    }
    eprintln!("User requested shutdown...");
    // While the dataset is still loading there is nothing whole to save: Redis exits
    // without saving, even when asked to.
    let wants_save = !crate::commands::persist::LOADING.active()
        && (save || (!nosave && !ctx.srv.config.get("save").unwrap_or_default().is_empty()));
    if wants_save && crate::scripting::busy() {
        // The script holds the keys: only SHUTDOWN NOSAVE may stop it, as in Redis.
        return Err(crate::scripting::busy_error(
            crate::scripting::RUNNING
                .eval
                .load(std::sync::atomic::Ordering::Relaxed),
        ));
    }
    if wants_save {
        eprintln!("Saving the final RDB snapshot before exiting.");
        let saved = match ctx.locked.as_mut() {
            Some(locked) => crate::commands::persist::save(ctx.srv, locked),
            None => crate::commands::persist::save(ctx.srv, &mut ctx.srv.keyspace.lock_all()),
        };
        if let Err(e) = saved {
            eprintln!("{e}");
            if !force {
                eprintln!("Error trying to save the DB, can't exit.");
                return Err(CmdError::msg("ERR Errors trying to SHUTDOWN. Check logs."));
            }
        }
    }
    ctx.srv
        .shutdown_save_settled
        .store(true, std::sync::atomic::Ordering::Relaxed);
    ctx.srv.request_shutdown();
    // Run nothing this client pipelined after SHUTDOWN; close when the process exits.
    ctx.client.close_after_reply = true;
    Ok(())
}
