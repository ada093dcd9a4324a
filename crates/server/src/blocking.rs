//! Blocking commands (BLPOP, BLMOVE, BLMPOP, BZPOPMIN, BZMPOP, and family-defined waits
//! such as XREAD's): clients waiting for a key
//! to receive data, and serving them when it does.
//!
//! A blocking command that finds nothing to pop registers a [`Waiter`] on its keys, under the
//! locks of those keys' shards, and its connection stops running commands. Creating a list
//! or sorted set while anyone waits marks the key "ready" in the creating command's locks
//! (see `Keyspace::set_waiters`); once that command has finished — and released its locks,
//! so a transaction or script is seen whole — dispatch calls [`serve_ready`], which pops for
//! the waiters of each ready key in the order they blocked, on the pushing thread, before the
//! pusher's own reply goes out. So a client that pushed and then reads the list sees the
//! waiters' pops done, as with Redis. Each waiter's reply travels to the worker that owns its
//! connection, which resumes the connection's pipeline. Timeouts, disconnects and CLIENT
//! UNBLOCK race with serving through the registry's lock: whoever removes the waiter first
//! answers it, exactly once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use flowkv_protocol::{Proto, Reply};
use flowkv_store::num::{parse_f64, parse_i64};
use flowkv_store::{KeyStats, Keys, ShardSet};
use parking_lot::Mutex;

use crate::error::CmdError;
use crate::net::Msg;
use crate::server::{unix_ms, Server, WorkerStats};

/// What a waiter does once its key has data.
#[derive(Clone, Debug)]
pub enum WaitOp {
    /// BLPOP/BRPOP: replies [key, element].
    ListPop { front: bool },
    /// BLMPOP: replies [key, [elements]].
    ListMultiPop { front: bool, count: usize },
    /// BLMOVE/BRPOPLPUSH: pushes the element onto `dest` and replies with it.
    ListMove {
        from_front: bool,
        dest: Box<[u8]>,
        to_front: bool,
    },
    /// BZPOPMIN/BZPOPMAX: replies [key, member, score].
    ZPop { min: bool },
    /// BZMPOP: replies [key, [[member, score]...]].
    ZMultiPop { min: bool, count: usize },
    /// A wait a command family defines itself (XREAD, XREADGROUP, CACHE.GET…), so adding
    /// one touches only that family's file.
    Family(Arc<dyn FamilyWait>),
}

/// A family-defined wait: what it needs from the key, and what it does when served. The
/// registry calls these under the locks of the key's shards.
pub trait FamilyWait: Send + Sync + std::fmt::Debug {
    /// True if `key` holds what this waiter is waiting for.
    fn can_serve(&self, keys: &mut Keys<'_, '_>, key: &[u8]) -> bool;
    /// Serves the waiter from `key` (which [`FamilyWait::can_serve`] approved), writing its
    /// reply to `out`.
    fn serve(
        &self,
        srv: &Server,
        keys: &mut Keys<'_, '_>,
        key: &[u8],
        out: &mut Reply<'_>,
    ) -> Served;
    /// Whether a waiter that can't be served yet holds up those queued behind it on the
    /// same key. Pops do (first come, first served); a reader waiting for entries above its
    /// own ID doesn't, since a later reader may already be servable.
    fn holds_queue(&self) -> bool {
        true
    }
}

impl WaitOp {
    /// The other key the op writes, besides the one it pops from.
    fn dest(&self) -> Option<&[u8]> {
        match self {
            WaitOp::ListMove { dest, .. } => Some(dest),
            _ => None,
        }
    }
}

/// What serving a waiter on a key came to.
pub enum Served {
    /// The key holds nothing this waiter can take (missing, empty or another type): it keeps
    /// waiting, and so do those behind it.
    NotReady,
    /// Done (its reply is written), with this many changes to the dataset.
    Done(u64),
}

/// One blocked client.
#[derive(Clone)]
struct Waiter {
    client_id: u64,
    worker: usize,
    db: usize,
    proto: Proto,
    keys: Vec<Box<[u8]>>,
    op: WaitOp,
    /// Unix ms, 0 for none.
    deadline_ms: u64,
}

#[derive(Default)]
struct Inner {
    /// Tokens of the waiters of each (db, key), in the order they blocked.
    by_key: HashMap<(usize, Box<[u8]>), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
    next_token: u64,
}

/// Every blocked client, by token (one per blocking episode) and by key.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// Number of waiters, readable without the lock (written under it).
    waiting: AtomicUsize,
}

/// Publishes the number of waiters to the keyspace (which marks new keys ready only while
/// anyone waits) and to [`Registry::any_waiting`].
fn note_waiters(srv: &Server, n: usize) {
    srv.keyspace.set_waiters(n);
    srv.blocked.waiting.store(n, Relaxed);
}

impl Inner {
    /// Removes a waiter from every key it waits on.
    fn remove(&mut self, token: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&token)?;
        for key in &w.keys {
            let slot = (w.db, key.clone());
            if let Some(q) = self.by_key.get_mut(&slot) {
                q.retain(|&t| t != token);
                if q.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
        Some(w)
    }
}

impl Registry {
    /// True if any client is blocked. Exact for a key whose shard the caller holds locked,
    /// since blocking on a key happens under that lock: commands that add data to an existing
    /// key (XADD) check this before marking the key ready.
    pub fn any_waiting(&self) -> bool {
        self.waiting.load(Relaxed) > 0
    }

    /// Blocked clients, and how many of them have a timeout (INFO blocked_clients,
    /// clients_in_timeout_table).
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        let timed = inner
            .waiters
            .values()
            .filter(|w| w.deadline_ms != 0)
            .count();
        (inner.waiters.len(), timed)
    }

    /// A token for a client blocked outside this registry (WAIT), unique among all
    /// blocking episodes.
    pub fn new_token(&self) -> u64 {
        let mut inner = self.inner.lock();
        inner.next_token += 1;
        inner.next_token
    }

    /// Removes a waiter because it timed out or disconnected. False if it was already
    /// served (its reply is on the way to its worker).
    pub fn cancel(&self, srv: &Server, token: u64) -> bool {
        let mut inner = self.inner.lock();
        let found = inner.remove(token).is_some();
        note_waiters(srv, inner.waiters.len());
        found
    }

    /// CLIENT UNBLOCK: removes the waiter of client `id`, if it is blocked, and answers it
    /// with `reply` (a null, as on timeout, or an -UNBLOCKED error) through its worker.
    pub fn unblock_client(&self, srv: &Server, id: u64, error: bool) -> bool {
        let mut inner = self.inner.lock();
        let Some(token) = inner
            .waiters
            .iter()
            .find(|(_, w)| w.client_id == id)
            .map(|(&t, _)| t)
        else {
            return false;
        };
        let w = inner.remove(token).expect("found above");
        note_waiters(srv, inner.waiters.len());
        drop(inner);
        let mut buf = Vec::new();
        let mut out = Reply::new(&mut buf, w.proto);
        if error {
            srv.count_error("UNBLOCKED");
            out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
        } else {
            out.null_array();
        }
        srv.send_to_worker(w.worker, Msg::Unblocked { token, reply: buf });
        true
    }

    /// The keys clients wait on in database `db`.
    pub fn keys_in_db(&self, db: usize) -> Vec<Box<[u8]>> {
        let inner = self.inner.lock();
        inner
            .by_key
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// The waiter at position `pos` in the queue of (db, key).
    fn nth(&self, db: usize, key: &[u8], pos: usize) -> Option<(u64, Waiter)> {
        let inner = self.inner.lock();
        let &token = inner.by_key.get(&(db, key.into()))?.get(pos)?;
        Some((token, inner.waiters[&token].clone()))
    }
}

/// Parses a blocking command's timeout in seconds (fractions allowed) into a deadline in unix
/// ms, 0 meaning forever. Like Redis on x86, a value too large for the millisecond count
/// wraps negative and is refused as negative.
pub fn parse_timeout(arg: &[u8], now_ms: u64) -> Result<u64, CmdError> {
    let secs = parse_f64(arg).ok_or(CmdError::msg("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    if !(ms > -9.2e18 && ms < 9.2e18) || ms < 0.0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    Ok(if ms == 0.0 {
        0
    } else {
        now_ms.saturating_add(ms as u64)
    })
}

/// Parses a timeout in whole milliseconds (XREAD BLOCK, CLIENT PAUSE) into a deadline in unix
/// ms, 0 meaning none.
pub fn parse_timeout_ms(arg: &[u8], now_ms: u64) -> Result<u64, CmdError> {
    let ms = parse_i64(arg).ok_or(CmdError::msg(
        "ERR timeout is not an integer or out of range",
    ))?;
    match u64::try_from(ms) {
        Err(_) => Err(CmdError::msg("ERR timeout is negative")),
        Ok(0) => Ok(0),
        Ok(ms) => Ok(now_ms.saturating_add(ms)),
    }
}

/// The state of a blocked connection, kept in its [`crate::client::Client`].
#[derive(Clone, Copy, Debug)]
pub struct Blocked {
    pub token: u64,
    /// Unix ms, 0 for no timeout.
    pub deadline_ms: u64,
}

/// Blocks the running command's client on `keys` (de-duplicated here) until one of them can
/// serve `op` or `deadline_ms` passes. Called with the keys' shards locked, which is what
/// makes "found nothing, so wait" atomic against a concurrent push.
pub fn block(ctx: &mut crate::ctx::Ctx<'_>, keys: &[&[u8]], op: WaitOp, deadline_ms: u64) {
    // Inside a transaction nothing may wait: answer as a timeout would (BLMOVE's plain
    // null is what Redis sends there).
    if ctx.deny_blocking {
        match op {
            WaitOp::ListMove { .. } => ctx.out.null(),
            _ => ctx.out.null_array(),
        }
        return;
    }
    let mut uniq: Vec<Box<[u8]>> = Vec::with_capacity(keys.len());
    for k in keys {
        if !uniq.iter().any(|u| **u == **k) {
            uniq.push((*k).into());
        }
    }
    let client = &mut *ctx.client;
    let srv = ctx.srv;
    let mut inner = srv.blocked.inner.lock();
    inner.next_token += 1;
    let token = inner.next_token;
    for k in &uniq {
        inner
            .by_key
            .entry((client.db, k.clone()))
            .or_default()
            .push_back(token);
    }
    inner.waiters.insert(
        token,
        Waiter {
            client_id: client.id,
            worker: client.shared.worker,
            db: client.db,
            proto: client.proto,
            keys: uniq,
            op,
            deadline_ms,
        },
    );
    note_waiters(srv, inner.waiters.len());
    drop(inner);
    client.blocked = Some(Blocked { token, deadline_ms });
    client.shared.set_flag(crate::client::flag::BLOCKED, true);
}

/// Serves the waiters of every key in `ready` (and of keys that serving makes ready in turn,
/// like BLMOVE's destination), each key's waiters in the order they blocked.
pub fn serve_ready(
    srv: &Server,
    wstats: &WorkerStats,
    kstats: &mut KeyStats,
    mut ready: Vec<(usize, Box<[u8]>)>,
) {
    let mut i = 0;
    while i < ready.len() {
        let (db, key) = ready[i].clone();
        i += 1;
        // Waiters that can't be served yet but don't hold up those behind them (an XREAD
        // waits for IDs above its own, so a later one may already be served).
        let mut skipped = 0;
        while let Some((token, w)) = srv.blocked.nth(db, &key, skipped) {
            let mut set = ShardSet::new();
            srv.keyspace
                .add_shards(&mut set, std::iter::once(&*key).chain(w.op.dest()));
            let mut locked = srv.keyspace.lock(&set);
            let now = unix_ms();
            let mut buf = Vec::new();
            let served = {
                let mut keys = locked.db(db, now, kstats);
                if !can_serve(&mut keys, &key, &w.op) {
                    if matches!(&w.op, WaitOp::Family(f) if !f.holds_queue()) {
                        skipped += 1;
                        continue;
                    }
                    break;
                }
                // Still in line? A timeout may have removed it since `nth`.
                let mut inner = srv.blocked.inner.lock();
                if inner
                    .by_key
                    .get(&(db, key.clone()))
                    .and_then(|q| q.get(skipped))
                    != Some(&token)
                {
                    continue;
                }
                inner.remove(token);
                note_waiters(srv, inner.waiters.len());
                drop(inner);
                let mut out = Reply::new(&mut buf, w.proto);
                serve(srv, &mut keys, &key, &w.op, &mut out)
            };
            ready.extend(locked.take_ready());
            srv.watches.touch_changed(&mut locked);
            drop(locked);
            if let Served::Done(dirty) = served {
                wstats.dirty.add(dirty);
            }
            srv.send_to_worker(w.worker, Msg::Unblocked { token, reply: buf });
        }
    }
}

/// True if `key` holds data `op` can take right now.
fn can_serve(keys: &mut Keys<'_, '_>, key: &[u8], op: &WaitOp) -> bool {
    use flowkv_store::ValueRef;
    match (keys.peek(key).map(|e| e.value()), op) {
        (
            Some(ValueRef::List(l)),
            WaitOp::ListPop { .. } | WaitOp::ListMultiPop { .. } | WaitOp::ListMove { .. },
        ) => !l.is_empty(),
        (Some(ValueRef::ZSet(z)), WaitOp::ZPop { .. } | WaitOp::ZMultiPop { .. }) => !z.is_empty(),
        (_, WaitOp::Family(f)) => f.can_serve(keys, key),
        _ => false,
    }
}

/// Runs `op` for a waiter against a key [`can_serve`] approved, writing the waiter's reply.
fn serve(
    srv: &Server,
    keys: &mut Keys<'_, '_>,
    key: &[u8],
    op: &WaitOp,
    out: &mut Reply<'_>,
) -> Served {
    match op {
        WaitOp::ListPop { .. } | WaitOp::ListMultiPop { .. } | WaitOp::ListMove { .. } => {
            crate::commands::list::serve_blocked(srv, keys, key, op, out)
        }
        WaitOp::ZPop { .. } | WaitOp::ZMultiPop { .. } => {
            crate::commands::zset::serve_blocked(keys, key, op, out)
        }
        WaitOp::Family(f) => f.serve(srv, keys, key, out),
    }
}
