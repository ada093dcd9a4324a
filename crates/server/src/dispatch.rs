//! Runs one command: table lookup, arity, shard locks, the handler, statistics and the error
//! reply. Everything a command goes through before and after its handler lives here, once.

use flowkv_protocol::{Args, Reply};
use flowkv_store::{KeyStats, Locked, ShardSet};

use crate::client::{Client, ReplyMode};
use crate::command::{flags, Command};
use crate::commands::{table, Lookup};
use crate::ctx::Ctx;
use crate::error::CmdError;
use crate::server::{unix_ns, CmdStat, Server, WorkerStats};
use crate::transaction::Queued;
use std::sync::atomic::Ordering::Relaxed;

/// Per-worker inputs to [`execute`].
pub struct Exec<'a> {
    pub srv: &'a Server,
    pub wstats: &'a WorkerStats,
    pub kstats: &'a mut KeyStats,
    /// When the last command executed here finished (unix ms; 0 before the first), so the
    /// worker can record client activity without reading the clock again.
    pub last_ms: u64,
}

/// Executes one command and appends its reply to `out`.
pub fn execute(ex: &mut Exec<'_>, client: &mut Client, out: &mut Vec<u8>, args: Args<'_>) {
    let reply_start = out.len();
    run(ex, client, out, args);
    if client.postponed {
        // Not run yet (CLIENT PAUSE): it runs again later, and only then counts as the
        // command CLIENT REPLY SKIP applies to.
        return;
    }
    match client.reply_mode {
        ReplyMode::On => {}
        ReplyMode::Off => out.truncate(reply_start),
        ReplyMode::SkipThis => {
            out.truncate(reply_start);
            client.reply_mode = ReplyMode::On;
        }
        // CLIENT REPLY SKIP itself sends no reply; the next command's is dropped.
        ReplyMode::Skip => {
            out.truncate(reply_start);
            client.reply_mode = ReplyMode::SkipThis;
        }
    }
}

fn run(ex: &mut Exec<'_>, client: &mut Client, out: &mut Vec<u8>, args: Args<'_>) {
    let srv = ex.srv;
    // An HTTP request (a browser tricked into posting to this port) is an attack, not a
    // client: drop the connection without running anything more, as Redis does.
    let name = args.get(0);
    if name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:") {
        eprintln!("Possible SECURITY ATTACK detected: POST or Host: received; connection aborted.");
        client.close_after_reply = true;
        return;
    }
    let t = table();
    let (id, cmd) = match t.lookup(args) {
        Lookup::Found(id, cmd) => (id, cmd),
        Lookup::Unknown => {
            let mut listed = String::new();
            for a in args.iter().skip(1) {
                if listed.len() >= 128 {
                    break;
                }
                let room = 128 - listed.len();
                let a = String::from_utf8_lossy(a);
                let a: String = a.chars().take(room).collect();
                listed.push_str(&format!("'{a}' "));
            }
            let name: String = String::from_utf8_lossy(args.get(0))
                .chars()
                .take(128)
                .collect();
            let err = CmdError::msg(format!(
                "ERR unknown command '{name}', with args beginning with: {listed}"
            ));
            reject(srv, client, out, &err);
            return;
        }
        Lookup::UnknownSub(parent) => {
            let sub: String = String::from_utf8_lossy(args.get(1))
                .chars()
                .take(128)
                .collect();
            let err = CmdError::msg(format!(
                "ERR unknown subcommand '{sub}'. Try {} HELP.",
                parent.name.to_ascii_uppercase()
            ));
            reject(srv, client, out, &err);
            return;
        }
    };
    let stat = &ex.wstats.cmd[id];
    if !cmd.arity_ok(args.len()) || cmd.handler.is_none() {
        stat.rejected.add(1);
        reject(
            srv,
            client,
            out,
            &CmdError::Arity(t.full_name(id).to_string()),
        );
        return;
    }
    // Before AUTH only no-auth commands (AUTH, HELLO, QUIT…) run; Redis checks this after
    // lookup and arity, so those errors still come first.
    if !client.authenticated && !cmd.has(flags::NO_AUTH) {
        stat.rejected.add(1);
        reject(
            srv,
            client,
            out,
            &CmdError::msg("NOAUTH Authentication required."),
        );
        return;
    }
    // The master's stream (on a replica) is obeyed whatever the ACL, memory or disk state,
    // as in Redis.
    let from_master = client.shared.has_flag(crate::client::flag::MASTER);
    // ACL permissions (one atomic load for a user that may run everything).
    if !from_master && !crate::acl::client_user(srv, client).is_open() {
        let context = if client.multi.is_some() {
            crate::acl::LogContext::Multi
        } else {
            crate::acl::LogContext::Toplevel
        };
        if let Err(denied) = crate::acl::check(srv, client, id, cmd, args, context) {
            stat.rejected.add(1);
            let err = CmdError::msg(denied.toplevel_error(t.full_name(id)));
            reject(srv, client, out, &err);
            return;
        }
    }
    // maxmemory: evict first, then refuse what may grow the dataset if memory is still
    // over the limit (before queueing, as Redis checks it); then a failed save (MISCONF)
    // or the start-up load (LOADING) refuses commands.
    let events = &mut ex.kstats.events;
    let evicted = if from_master {
        Ok(())
    } else if client.shared.has_flag(crate::client::flag::TRACKING) {
        // The client's invalidations of keys evicted now precede this command's reply.
        let (id, multi) = (client.id, client.multi.as_ref());
        crate::tracking::with_own_pushes(id, &mut client.pushes, || {
            crate::evict::before_command(srv, cmd, args, multi, events)
        })
    } else {
        crate::evict::before_command(srv, cmd, args, client.multi.as_ref(), events)
    };
    let refused = evicted
        .err()
        .or_else(|| {
            (!from_master)
                .then(|| crate::commands::persist::refuse(srv, cmd, client.multi.as_ref()))
                .flatten()
        })
        .or_else(|| crate::replication::refuse(srv, client, cmd, args, client.multi.as_ref()));
    if let Some(err) = refused {
        stat.rejected.add(1);
        refuse(srv, client, out, cmd, &err);
        return;
    }
    // A RESP2 client with subscriptions may only manage them, PING, QUIT or RESET (its
    // connection carries pushes); RESP3 has no such limit.
    if client.proto == flowkv_protocol::Proto::Resp2
        && client.shared.has_flag(crate::client::flag::PUBSUB)
        && !crate::pubsub::allowed_when_subscribed(t.full_name(id))
    {
        stat.rejected.add(1);
        let err = CmdError::msg(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
             RESET are allowed in this context",
            t.full_name(id)
        ));
        reject(srv, client, out, &err);
        return;
    }
    // While a script runs past busy-reply-threshold, answer BUSY rather than wait for the
    // shard locks it holds; before a transaction queues it, so the EXEC fails, as in Redis.
    if let Some(err) = crate::scripting::busy_check(srv, cmd) {
        stat.rejected.add(1);
        refuse(srv, client, out, cmd, &err);
        return;
    }
    // CLIENT PAUSE: leave the command in the query buffer; the worker runs it again when
    // the pause ends (queued commands of a transaction wait too, as in Redis).
    if srv.pause.holds(cmd, args, client.multi.as_ref()) {
        // CLIENT LIST shows what it waits to run, as Redis does.
        client.shared.last_cmd.store(id as u32 + 1, Relaxed);
        client.postponed = true;
        return;
    }
    if let Some(multi) = client.multi.as_mut() {
        if !MULTI_CONTROL.contains(&t.full_name(id)) {
            if cmd.has(flags::NO_MULTI) {
                stat.rejected.add(1);
                let err = CmdError::msg("ERR Command not allowed inside a transaction");
                reject(srv, client, out, &err);
                return;
            }
            multi.queued.push(Queued {
                id,
                cmd,
                args: args.to_owned(),
            });
            client.shared.multi.store(
                multi.queued.len() as i32,
                std::sync::atomic::Ordering::Relaxed,
            );
            Reply::new(out, client.proto).simple(b"QUEUED");
            return;
        }
    }
    client
        .shared
        .last_cmd
        .store(id as u32 + 1, std::sync::atomic::Ordering::Relaxed);

    let locked = if cmd.locks_all(args) {
        Some(srv.keyspace.lock_all())
    } else if cmd.has(flags::QUEUED_KEYS) {
        Some(lock_transaction(srv, client))
    } else {
        let positions = cmd.key_positions(args);
        if positions.is_empty() {
            None
        } else {
            let mut set = ShardSet::new();
            srv.keyspace
                .add_shards(&mut set, positions.iter().map(|&i| args.get(i)));
            Some(srv.keyspace.lock(&set))
        }
    };
    let mut locked = locked;
    if let Some(l) = locked.as_mut() {
        // CLIENT NO-TOUCH: the client's lookups keep the keys' LRU/LFU bits, except TOUCH's.
        if client.shared.has_flag(crate::client::flag::NO_TOUCH) && cmd.name != "touch" {
            l.set_no_touch(true);
        }
    }
    // Two clock reads per command, as Redis does: the start gives the command its fixed
    // "now" and both give its duration for commandstats, latency tracking and the slow log.
    let started_ns = unix_ns();
    if is_script(cmd) && srv.monitors.active() {
        // A script's own line comes before those of the commands it runs, as in Redis.
        srv.monitors.feed(srv, client, args, false);
    }
    let proto = client.proto;
    let handler = cmd.handler.expect("checked above");
    let mut ctx = Ctx {
        srv,
        client,
        out: Reply::new(out, proto),
        locked,
        stats: ex.kstats,
        now_ms: started_ns / 1_000_000,
        cmd,
        dirty: 0,
        deny_blocking: false,
        in_script: false,
        error_replied: false,
    };
    let propagation = crate::propagate::begin();
    let result = handler(&mut ctx, args);
    if let Some(call) = propagation {
        // Still under the command's locks: changes reach the AOF (and replicas) in the
        // order they happened.
        let changed = ctx.dirty > 0 || (result.is_ok() && cmd.has(flags::WRITE));
        crate::propagate::end(call, ctx.client.db, cmd, args, changed);
        crate::propagate::flush(cmd);
    }
    let tracking = srv.keyspace.tracking();
    let ready = ctx.locked.as_mut().map(|l| {
        // WATCHers learn of changes before anyone else can take these locks.
        let changed = crate::tracking::take_changes(srv, l);
        if tracking {
            let worker = Some(ctx.client.shared.worker);
            srv.tracking()
                .invalidate(&changed, Some(ctx.client.id), worker);
        }
        l.take_ready()
    });
    if tracking {
        // After the invalidations (a key this command found expired is cached again if it
        // reads it) and before the locks go, so no change can slip in unseen.
        remember_keys(srv, ctx.client, cmd, None, args);
    }
    drop(ctx.locked.take());
    stat.calls.add(1);
    let ended_ns = unix_ns();
    ex.last_ms = ended_ns / 1_000_000;
    let took_ns = ended_ns.saturating_sub(started_ns);
    stat.usec.add(took_ns / 1000);
    observe(srv, ctx.client, id, cmd, args, took_ns, false);
    ex.wstats.commands.add(1);
    ex.wstats.dirty.add(ctx.dirty);
    let result_ok = result.is_ok();
    if ctx.error_replied && result.is_ok() {
        stat.failed.add(1);
    }
    if let Err(e) = result {
        stat.failed.add(1);
        let text = e.to_string();
        srv.count_error(error_code(&text));
        ctx.out.error(&text);
    }
    let name = t.full_name(id);
    if result_ok && name == "config|set" {
        crate::commands::config::after_set(srv, true);
    }
    if tracking {
        after_tracked(srv, ctx.client, name, result_ok);
    } else if result_ok && (name == "flushall" || name == "flushdb") {
        // Empties the key table even when nobody tracks any more.
        srv.tracking().flush(Some(ctx.client.shared.worker));
    }
    if let Some(ready) = ready.filter(|r| !r.is_empty()) {
        crate::blocking::serve_ready(srv, ex.wstats, ctx.stats, ready);
        if srv.keyspace.tracking() {
            // What serving the blocked clients changed: invalidated after their replies.
            let worker = Some(ctx.client.shared.worker);
            let tracking = srv.tracking();
            tracking.invalidate(&srv.keyspace.take_untracked(), None, worker);
            tracking.flush_bcast(worker);
        }
    }
}

/// Remembers, for a tracking client that caches them (see [`crate::tracking::caches`]), the
/// keys of the command `cmd` it just ran — run by a script or transaction `outer`, if any.
/// As in Redis: a read-only command's own keys; for a script, its declared keys once any
/// command it called was read-only (EVAL_RO and FCALL_RO count only through those).
fn remember_keys(
    srv: &Server,
    client: &mut Client,
    cmd: &Command,
    outer: Option<&Command>,
    args: Args<'_>,
) {
    if !crate::tracking::caches(client.shared.flags.load(Relaxed)) {
        return;
    }
    let remember = if is_script(cmd) {
        std::mem::take(&mut client.script_read)
    } else if !cmd.has(flags::READONLY) || cmd.has(flags::PUBSUB) {
        false
    } else if outer.is_some_and(is_script) {
        client.script_read = true;
        false
    } else {
        true
    };
    let positions = if remember {
        cmd.key_positions(args)
    } else {
        Default::default()
    };
    if !positions.is_empty() {
        srv.tracking()
            .remember(client.id, positions.iter().map(|&i| args.get(i)));
    }
}

/// True for the commands that run scripts or functions.
fn is_script(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// Tracking work after a command, once its locks are released: the null invalidation of
/// FLUSHALL/FLUSHDB, the end of a one-command CLIENT CACHING, the table limit.
fn after_tracked(srv: &Server, client: &Client, name: &str, ok: bool) {
    let tracking = srv.tracking();
    let worker = Some(client.shared.worker);
    tracking.flush_bcast(worker);
    if ok && (name == "flushall" || name == "flushdb") {
        tracking.flush(worker);
    }
    if name == "config|set" {
        crate::tracking::refresh(srv);
    }
    if client.shared.has_flag(crate::client::flag::CACHING)
        && client.multi.is_none()
        && !name.starts_with("client|")
    {
        client.shared.set_flag(crate::client::flag::CACHING, false);
    }
    tracking.enforce_limit(worker);
}

/// What every executed command feeds, after it ran for `took_ns`: MONITOR clients, and
/// through [`record_timing`] its latency histogram, the latency monitor and the slow log.
/// Each is one atomic load when off. A command that blocked is timed when it is served
/// (see [`timing_unblocked`]). `by_script` marks a command a script ran (MONITOR shows it
/// as `lua`).
#[inline]
fn observe(
    srv: &Server,
    client: &mut Client,
    id: usize,
    cmd: &Command,
    args: Args<'_>,
    took_ns: u64,
    by_script: bool,
) {
    if client.blocked.is_none() {
        let stat = &srv.workers[client.shared.worker].cmd[id];
        record_timing(srv, &client.shared, stat, cmd, args, took_ns);
    } else {
        client.blocked_cmd = Some((id, args.to_owned(), took_ns));
    }
    if srv.monitors.active() && !cmd.has(flags::SKIP_MONITOR | flags::ADMIN) {
        srv.monitors.feed(srv, client, args, by_script);
    }
}

/// Records a command's duration in its histogram (`latency-tracking`), the latency monitor
/// and the slow log.
#[inline]
fn record_timing(
    srv: &Server,
    client: &crate::client::ClientShared,
    stat: &CmdStat,
    cmd: &Command,
    args: Args<'_>,
    took_ns: u64,
) {
    let hot = &srv.config.hot;
    if hot.latency_tracking.load(Relaxed) {
        stat.hist.record(took_ns);
    }
    let event = if cmd.has(flags::FAST) {
        "fast-command"
    } else {
        "command"
    };
    let threshold = hot.latency_monitor_threshold.load(Relaxed);
    srv.latency
        .add_if_needed(threshold, event, took_ns / 1_000_000);
    if !cmd.has(flags::SKIP_SLOWLOG) {
        srv.slowlog.push_if_slow(srv, client, args, took_ns / 1000);
    }
}

/// Records the timing of a blocking command once it has been served or timed out (its
/// worker calls this as it delivers the reply); one that ended in an error reply (its
/// group destroyed, CLIENT UNBLOCK ... ERROR) counts as failed, as in Redis.
pub fn timing_unblocked(srv: &Server, client: &mut Client, reply: &[u8]) {
    if let Some((id, args, took_ns)) = client.blocked_cmd.take() {
        let cmd = table().flat[id].1;
        let stat = &srv.workers[client.shared.worker].cmd[id];
        if reply.first() == Some(&b'-') {
            stat.failed.add(1);
        }
        record_timing(srv, &client.shared, stat, cmd, args.as_args(), took_ns);
    }
}

/// Commands that run at once inside MULTI instead of being queued.
const MULTI_CONTROL: &[&str] = &["exec", "discard", "multi", "watch", "quit", "reset"];

/// Replies to a command refused before it ran; inside MULTI this also dooms the
/// transaction (EXEC will answer EXECABORT), as in Redis.
fn reject(srv: &Server, client: &mut Client, out: &mut Vec<u8>, err: &CmdError) {
    if let Some(multi) = client.multi.as_mut() {
        multi.aborted = true;
    }
    reply_error(srv, client, out, err);
}

/// Refuses a command before it runs: an EXEC discards its transaction, anything else
/// taints it (Redis's rejectCommand).
fn refuse(srv: &Server, client: &mut Client, out: &mut Vec<u8>, cmd: &Command, err: &CmdError) {
    if cmd.name == "exec" {
        abort_exec(srv, client, out, err);
    } else {
        reject(srv, client, out, err);
    }
}

/// Refuses an EXEC before it runs (its transaction would grow the dataset under OOM):
/// the transaction is discarded, as Redis's execCommandAbort does.
fn abort_exec(srv: &Server, client: &mut Client, out: &mut Vec<u8>, err: &CmdError) {
    client.multi = None;
    client.shared.set_flag(crate::client::flag::MULTI, false);
    client.shared.multi.store(-1, Relaxed);
    srv.watches.unwatch_all(srv, client);
    let err = CmdError::msg(format!("EXECABORT Transaction discarded because of: {err}"));
    reply_error(srv, client, out, &err);
}

/// Locks what EXEC needs: the shards of every queued command's keys (all shards if one of
/// them needs that) and of the client's WATCHed keys, whose flags EXEC must read with no
/// change to them in flight.
fn lock_transaction<'s>(srv: &'s Server, client: &Client) -> Locked<'s> {
    let Some(multi) = client.multi.as_ref() else {
        return srv.keyspace.lock(&ShardSet::new());
    };
    let mut set = ShardSet::new();
    for q in &multi.queued {
        let args = q.args.as_args();
        if q.cmd.locks_all(args) || q.cmd.has(flags::READS_ALL_SHARDS) {
            return srv.keyspace.lock_all();
        }
        let positions = q.cmd.key_positions(args);
        srv.keyspace
            .add_shards(&mut set, positions.iter().map(|&i| args.get(i)));
    }
    srv.keyspace
        .add_shards(&mut set, client.watched.iter().map(|w| &*w.key));
    srv.keyspace.lock(&set)
}

/// Runs a command queued by MULTI, inside EXEC's handler and locks: its reply (or error)
/// goes into the EXEC reply.
pub fn run_queued(ctx: &mut Ctx<'_>, q: &Queued) {
    call_nested(ctx, q.id, q.cmd, q.args.as_args());
}

/// Runs command `cmd` (table index `id`, already looked up and arity-checked by the caller)
/// from inside another command — EXEC, or a script's `redis.call` — under the outer
/// command's locks, appending its reply or error to `ctx.out` in `ctx.out.proto`. It counts
/// in commandstats and errorstats like any command, and never blocks.
pub fn call_nested(ctx: &mut Ctx<'_>, id: usize, cmd: &'static Command, args: Args<'_>) {
    let srv = ctx.srv;
    let stat = &srv.workers[ctx.client.shared.worker].cmd[id];
    // A script that started out of memory may not begin writing (Redis's
    // scriptVerifyOOM), nor write on a read-only replica or without enough good replicas
    // (scriptVerifyWriteCommandAllow).
    let denied = is_script(ctx.cmd)
        .then(|| {
            crate::evict::script_write_denied(cmd, ctx.dirty).or_else(|| {
                cmd.has(flags::WRITE)
                    .then(|| crate::replication::write_refusal(srv, ctx.client))
                    .flatten()
            })
        })
        .flatten();
    if let Some(err) = denied {
        // Refused before it ran: a rejected call, as Redis counts it.
        stat.rejected.add(1);
        let text = err.to_string();
        srv.count_error(error_code(&text));
        ctx.out.error(&text);
        return;
    }
    let outer = std::mem::replace(&mut ctx.cmd, cmd);
    let deny = std::mem::replace(&mut ctx.deny_blocking, true);
    let scripted = ctx.in_script || is_script(outer);
    let in_script = std::mem::replace(&mut ctx.in_script, scripted);
    let error_replied = std::mem::replace(&mut ctx.error_replied, false);
    let started_ns = unix_ns();
    let (dirty, propagation) = (ctx.dirty, crate::propagate::begin());
    let result = match cmd.handler {
        Some(handler) => handler(ctx, args),
        None => Err(CmdError::Arity(cmd.name.to_string())),
    };
    if result.is_ok() && table().full_name(id) == "config|set" {
        crate::commands::config::after_set(srv, false);
    }
    if let Some(call) = propagation {
        let changed = ctx.dirty > dirty || (result.is_ok() && cmd.has(flags::WRITE));
        crate::propagate::end(call, ctx.client.db, cmd, args, changed);
    }
    if srv.keyspace.tracking() {
        // Changes so far are invalidated before this command's reads are remembered, as
        // Redis does at the moment of each change.
        if let Some(l) = ctx.locked.as_mut() {
            let changed = crate::tracking::take_changes(srv, l);
            let worker = Some(ctx.client.shared.worker);
            srv.tracking()
                .invalidate(&changed, Some(ctx.client.id), worker);
        }
        remember_keys(srv, ctx.client, cmd, Some(outer), args);
        if result.is_ok() && matches!(cmd.name, "flushall" | "flushdb") {
            srv.tracking().flush(Some(ctx.client.shared.worker));
        }
    }
    stat.calls.add(1);
    let took_ns = unix_ns().saturating_sub(started_ns);
    stat.usec.add(took_ns / 1000);
    observe(srv, ctx.client, id, cmd, args, took_ns, is_script(outer));
    if ctx.error_replied && result.is_ok() {
        stat.failed.add(1);
    }
    if let Err(e) = result {
        stat.failed.add(1);
        let text = e.to_string();
        srv.count_error(error_code(&text));
        ctx.out.error(&text);
    }
    ctx.cmd = outer;
    ctx.deny_blocking = deny;
    ctx.in_script = in_script;
    ctx.error_replied = error_replied;
}

/// The error code of an error line: its first word (`ERR`, `WRONGTYPE`…).
fn error_code(text: &str) -> &str {
    text.split(' ').next().unwrap_or("ERR")
}

/// Writes an error reply and counts it for INFO errorstats.
pub fn reply_error(srv: &Server, client: &Client, out: &mut Vec<u8>, err: &CmdError) {
    let text = err.to_string();
    srv.count_error(error_code(&text));
    Reply::new(out, client.proto).error(&text);
}
