//! Command propagation: the dataset's changes as commands, for the consumers that replay
//! them — the AOF now, replicas later — with Redis 7.0's rules.
//!
//! As in Redis, a command that changed the dataset (`ctx.dirty` grew) is propagated as it
//! was called, unless its handler said otherwise:
//! - [`Ctx::propagate_as`] replaces it (Redis's `rewriteClientCommandVector`): relative
//!   TTLs become absolute (`SET … PXAT`, `PEXPIREAT`), INCRBYFLOAT becomes `SET … KEEPTTL`,
//!   SPOP becomes SREM, XADD `*` gets its ID…;
//! - [`Ctx::also_propagate`] adds a command before it (`alsoPropagate`), and
//!   [`Ctx::prevent_propagation`] drops the command itself (SPOP with a count, XREADGROUP).
//!
//! Everything one top-level command produces — its own, or the writes of the commands a
//! script or EXEC ran — is collected in a per-thread list and handed to the consumers at
//! the end of the command, *before its shard locks are released*, so changes to a key reach
//! every consumer in the order they happened. More than one command is wrapped in
//! MULTI/EXEC, as `propagatePendingCommands` does. Blocked clients served later propagate
//! the pop they performed with [`emit`], under the serving locks.
//!
//! With no consumer attached (AOF off, no replicas) each command pays one atomic load and
//! allocates nothing.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use flowkv_persist::aof::encode_command;
use flowkv_protocol::Args;
use parking_lot::Mutex;

use crate::command::Command;
use crate::ctx::Ctx;

/// A consumer of propagated commands (the AOF; a replica link).
pub trait Sink: Send + Sync {
    /// Takes one RESP-encoded command that runs in database `db`. Calls come one at a time
    /// (under the feed's lock), in the order the changes happened; a sink selects `db`
    /// itself when it differs from the one its stream last selected.
    fn append(&self, db: usize, cmd: &[u8]);

    /// True for the replication stream, which also gets what only replicas need
    /// (PUBLISH, so their subscribers hear it).
    fn replication(&self) -> bool {
        false
    }
}

/// One propagated command: its database, its byte range in the buffer, and whether it
/// goes to replicas only.
#[derive(Clone, Copy)]
struct Op {
    db: usize,
    start: usize,
    end: usize,
    repl_only: bool,
}

impl Op {
    fn new(db: usize, (start, end): (usize, usize)) -> Op {
        Op {
            db,
            start,
            end,
            repl_only: false,
        }
    }
}

/// The process's propagation bus. A process runs one server (as Redis's propagation state
/// is global), and code that serves blocked clients reaches it without a server handle.
pub struct Feed {
    /// True while some sink is attached: the only check a command pays otherwise.
    active: AtomicBool,
    sinks: Mutex<Vec<Arc<dyn Sink>>>,
}

/// The bus every command propagates to.
pub static FEED: Feed = Feed {
    active: AtomicBool::new(false),
    sinks: parking_lot::const_mutex(Vec::new()),
};

impl Feed {
    /// Adds a consumer; it receives every change from now on.
    pub fn attach(&self, sink: Arc<dyn Sink>) {
        let mut sinks = self.sinks.lock();
        sinks.push(sink);
        self.active.store(true, Relaxed);
    }

    /// Removes a consumer attached before.
    pub fn detach(&self, sink: &Arc<dyn Sink>) {
        let mut sinks = self.sinks.lock();
        sinks.retain(|s| !Arc::ptr_eq(s, sink));
        self.active.store(!sinks.is_empty(), Relaxed);
    }

    /// Hands `ops` to every sink that takes them, wrapped in MULTI/EXEC when a sink gets
    /// more than one, unless not `atomic`.
    fn write(&self, buf: &[u8], ops: &[Op], atomic: bool) {
        let sinks = self.sinks.lock();
        for s in sinks.iter() {
            let repl = s.replication();
            let takes = |o: &&Op| repl || !o.repl_only;
            let (Some(first), Some(last)) = (ops.iter().find(takes), ops.iter().rfind(takes))
            else {
                continue;
            };
            let wrap = atomic && !std::ptr::eq(first, last);
            if wrap {
                s.append(first.db, b"*1\r\n$5\r\nMULTI\r\n");
            }
            for o in ops.iter().filter(takes) {
                s.append(o.db, &buf[o.start..o.end]);
            }
            if wrap {
                s.append(last.db, b"*1\r\n$4\r\nEXEC\r\n");
            }
        }
    }
}

/// The commands the running top-level command has produced so far (this thread's
/// `server.also_propagate`), and the current command's own overrides.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// The commands in `buf`.
    ops: Vec<Op>,
    /// The current command's replacement, a range of `buf` not (yet) in `ops`.
    replacement: Option<(usize, usize)>,
    /// The current command is not propagated itself.
    prevent: bool,
    /// The current command goes to replicas even though it changed nothing (PUBLISH).
    force_repl: bool,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::default();
    /// Set while this thread replays an AOF: nothing it runs is propagated.
    static LOADING: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread runs a top-level command (from [`begin`] to [`flush`]).
    static IN_COMMAND: Cell<bool> = const { Cell::new(false) };
}

/// True if changes are being propagated (some sink is attached and this thread is not
/// loading). Handlers check it before building a rewritten command.
#[inline]
pub fn active() -> bool {
    FEED.active.load(Relaxed) && !LOADING.with(Cell::get)
}

/// True while this thread replays an AOF: commands accept what only propagation writes
/// (Redis's "must obey client").
pub fn replaying() -> bool {
    LOADING.with(Cell::get)
}

/// Runs `f` with propagation off on this thread (replaying an AOF).
pub fn without<T>(f: impl FnOnce() -> T) -> T {
    let was = LOADING.with(|l| l.replace(true));
    let out = f();
    LOADING.with(|l| l.set(was));
    out
}

/// Runs `f` with this thread's propagation state set aside: the busy pump answers other
/// clients in the middle of a script, and nothing they run may flush or join the script's
/// pending effects.
pub fn apart<T>(f: impl FnOnce() -> T) -> T {
    let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let in_command = IN_COMMAND.with(|c| c.replace(false));
    let out = f();
    PENDING.with(|p| *p.borrow_mut() = pending);
    IN_COMMAND.with(|c| c.set(in_command));
    out
}

/// What [`begin`] saved of the enclosing command's overrides (a script's or EXEC's).
pub struct Call {
    replacement: Option<(usize, usize)>,
    prevent: bool,
    force_repl: bool,
}

/// Before a command runs: `None` (nothing to do) unless propagation is active.
#[inline]
pub fn begin() -> Option<Call> {
    if !active() {
        return None;
    }
    IN_COMMAND.with(|c| c.set(true));
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        Some(Call {
            replacement: p.replacement.take(),
            prevent: std::mem::take(&mut p.prevent),
            force_repl: std::mem::take(&mut p.force_repl),
        })
    })
}

/// After a command ran in database `db`: records it (or its replacement) if it `changed`
/// the dataset. Scripts and EXEC are never propagated themselves: the commands they ran
/// were.
pub fn end(call: Call, db: usize, cmd: &Command, args: Args<'_>, changed: bool) {
    // FLUSHALL/FLUSHDB propagate even when there was nothing to flush, as in Redis.
    let changed = changed || matches!(cmd.name, "flushall" | "flushdb");
    let container = matches!(
        cmd.name,
        "exec" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    );
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let p = &mut *p;
        let replacement = p.replacement.take();
        let forced = p.force_repl && !changed;
        if (changed || forced) && !container && !p.prevent {
            let range = replacement.unwrap_or_else(|| {
                let start = p.buf.len();
                encode_command(&mut p.buf, &args.iter().collect::<Vec<_>>());
                (start, p.buf.len())
            });
            p.ops.push(Op {
                repl_only: forced,
                ..Op::new(db, range)
            });
        }
        p.replacement = call.replacement;
        p.prevent = call.prevent;
        p.force_repl = call.force_repl;
    });
}

/// After top-level command `cmd` (still under its locks): hands what it produced to the
/// sinks, wrapped in MULTI/EXEC when it is more than one command — except for the keys
/// RANDOMKEY and SCAN found expired, which are unrelated deletions (Redis's
/// CMD_TOUCHES_ARBITRARY_KEYS).
pub fn flush(cmd: &Command) {
    let atomic = !matches!(cmd.name, "randomkey" | "scan");
    IN_COMMAND.with(|c| c.set(false));
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if !p.ops.is_empty() {
            FEED.write(&p.buf, &p.ops, atomic);
        }
        p.ops.clear();
        p.buf.clear();
        p.replacement = None;
        p.prevent = false;
        p.force_repl = false;
        if p.buf.capacity() > 1 << 20 {
            p.buf.shrink_to(1 << 12);
        }
    });
}

/// Propagates one command in database `db` at once, outside any command (a blocked client
/// served after the command that fed it). The caller holds the key's locks.
pub fn emit<A: AsRef<[u8]>>(db: usize, args: &[A]) {
    if !active() {
        return;
    }
    let mut buf = Vec::new();
    encode_command(&mut buf, args);
    FEED.write(&buf, &[Op::new(db, (0, buf.len()))], true);
}

/// Propagates commands in database `db` at once as one unit (in MULTI/EXEC when more than
/// one), like [`emit`].
pub fn emit_all(db: usize, cmds: &[Vec<Vec<u8>>]) {
    if !active() || cmds.is_empty() {
        return;
    }
    let mut buf = Vec::new();
    let ops: Vec<Op> = cmds
        .iter()
        .map(|c| {
            let start = buf.len();
            encode_command(&mut buf, c);
            Op::new(db, (start, buf.len()))
        })
        .collect();
    FEED.write(&buf, &ops, true);
}

/// A key deleted because it expired, told by the keyspace under the key's shard lock (see
/// [`flowkv_store::keyspace::ExpireLog`]): propagated as `DEL key`, or `UNLINK key` with
/// `lazyfree-lazy-expire`, as Redis does, so a replay never keeps a key the server deleted.
/// Found by a command, it goes ahead of the command's own propagation; found by the active
/// sweep (or outside a command), at once.
pub fn expired(db: usize, key: &[u8], unlink: bool) {
    if !active() {
        return;
    }
    let name: &[u8] = if unlink { b"UNLINK" } else { b"DEL" };
    if IN_COMMAND.with(Cell::get) {
        PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let start = p.buf.len();
            encode_command(&mut p.buf, &[name, key]);
            let end = p.buf.len();
            p.ops.push(Op::new(db, (start, end)));
        });
    } else {
        emit(db, &[name, key]);
    }
}

impl Ctx<'_> {
    /// Propagates `args` instead of the running command, if it changes the dataset (Redis's
    /// `rewriteClientCommandVector`). A no-op while nothing consumes propagation; check
    /// [`active`] first to skip building `args`.
    pub fn propagate_as<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        if !active() {
            return;
        }
        PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let start = p.buf.len();
            encode_command(&mut p.buf, args);
            let end = p.buf.len();
            p.replacement = Some((start, end));
        });
    }

    /// Propagates `args` (in the client's database) now, ahead of the running command
    /// (Redis's `alsoPropagate`).
    pub fn also_propagate<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        if !active() {
            return;
        }
        let db = self.client.db;
        PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let start = p.buf.len();
            encode_command(&mut p.buf, args);
            let end = p.buf.len();
            p.ops.push(Op::new(db, (start, end)));
        });
    }

    /// The running command goes to replicas even though it changes no data (Redis's
    /// `forceCommandPropagation(c, PROPAGATE_REPL)`: PUBLISH, so a replica's subscribers
    /// get the message too).
    pub fn propagate_to_replicas(&mut self) {
        if active() {
            PENDING.with(|p| p.borrow_mut().force_repl = true);
        }
    }

    /// The running command is not propagated itself (what it propagates with
    /// [`Ctx::also_propagate`] stands for it).
    pub fn prevent_propagation(&mut self) {
        if active() {
            PENDING.with(|p| p.borrow_mut().prevent = true);
        }
    }
}

/// For commands whose effect depends on the clock, randomness or lease tokens (CACHE.FILL,
/// CL.THROTTLE…): propagates the state they left `key` in instead of the command —
/// `RESTORE key <unix-ms or 0> <payload> REPLACE ABSTTL`, or `DEL key` if it is gone — so a
/// replay reproduces it exactly. Call once per key changed, then
/// [`Ctx::prevent_propagation`].
pub fn key_state(ctx: &mut Ctx<'_>, key: &[u8]) {
    if !active() {
        return;
    }
    let opts = crate::commands::persist::write_options(ctx.srv);
    let state = ctx
        .keys()
        .peek(key)
        .map(|e| (flowkv_persist::dump_payload(e, opts), e.expire_at()));
    match state {
        Some((payload, at)) => {
            let at = num(at.unwrap_or(0));
            ctx.also_propagate(&[&b"RESTORE"[..], key, &at, &payload, b"REPLACE", b"ABSTTL"]);
        }
        None => ctx.also_propagate(&[b"DEL", key]),
    }
}

/// Formats a number as an argument.
pub fn num(n: impl std::fmt::Display) -> Vec<u8> {
    n.to_string().into_bytes()
}
