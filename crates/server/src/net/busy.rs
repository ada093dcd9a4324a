//! The busy pump: a worker answering its other connections while a script on its own
//! thread runs past `busy-reply-threshold`.
//!
//! A script runs to completion on the worker of the client that called it, holding every
//! shard lock. Clients of the other workers get BUSY from dispatch, but those of the
//! script's own worker would wait unanswered: their worker is inside the script. So the
//! script's count hook calls [`serve_while_busy`], as Redis's hook calls
//! `processEventsWhileBlocked`: it reads the worker's other connections and runs what they
//! sent through the normal dispatch, which answers BUSY to all but the ALLOW_BUSY commands
//! (SCRIPT KILL, FUNCTION KILL, SHUTDOWN NOSAVE, MULTI, AUTH…). Inside a MULTI, a BUSY
//! reply aborts the transaction, exactly as on any other worker. An ALLOW_BUSY command
//! that locks keys (WATCH) would wait forever on the script's own locks: it stays in the
//! query buffer, with whatever the client sent after it, until the script is over. The
//! worker then finishes every connection the pump served.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use flowkv_protocol::Args;
use flowkv_store::KeyStats;

use super::{read_and_run, write_out, Conns, Input};
use crate::command::flags;
use crate::commands::{table, Lookup};
use crate::dispatch::Exec;
use crate::server::{unix_ms, Server};

/// Passes are at least this far apart (ms), and at least four times as far as the last
/// one took, so that the script keeps most of the thread even with many connections.
const MIN_GAP_MS: u64 = 5;

thread_local! {
    /// This thread's pump, if it is a worker's.
    static PUMP: RefCell<Option<Pump>> = const { RefCell::new(None) };
}

/// A connection the pump served, for the worker to finish: its slab key, its client id (a
/// key may be reused by a new connection before the worker gets to it) and whether it was
/// found closed.
pub(super) struct ServedConn {
    pub key: usize,
    pub id: u64,
    pub closed: bool,
}

/// The connections the pump served, shared with its worker.
#[derive(Clone, Default)]
pub(super) struct Served(Rc<RefCell<Vec<ServedConn>>>);

impl Served {
    /// Hands the list over (empty again for the next script).
    pub fn take(&self) -> Vec<ServedConn> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

struct Pump {
    srv: Arc<Server>,
    worker: usize,
    conns: Conns,
    served: Served,
    kstats: KeyStats,
    /// No pass before this time (unix ms).
    next_ms: u64,
}

/// Sets up the pump of worker `worker`, on that worker's thread; returns the list of
/// connections it serves, which the worker finishes.
pub(super) fn install(srv: Arc<Server>, worker: usize, conns: Conns) -> Served {
    let served = Served::default();
    let pump = Pump {
        srv,
        worker,
        conns,
        served: served.clone(),
        kstats: KeyStats::default(),
        next_ms: 0,
    };
    PUMP.with(|p| *p.borrow_mut() = Some(pump));
    served
}

/// One pass over this worker's other connections, called by the count hook of a script
/// that runs past `busy-reply-threshold` (a no-op off worker threads and between passes).
pub fn serve_while_busy() {
    PUMP.with(|p| {
        let Ok(mut p) = p.try_borrow_mut() else {
            return;
        };
        let Some(p) = p.as_mut() else {
            return;
        };
        let started = unix_ms();
        if started < p.next_ms {
            return;
        }
        let Ok(slab) = p.conns.try_borrow() else {
            return;
        };
        let srv = &*p.srv;
        let wstats = &srv.workers[p.worker];
        let mut ex = Exec {
            srv,
            wstats,
            kstats: &mut p.kstats,
            last_ms: 0,
        };
        let mut served = p.served.0.borrow_mut();
        crate::propagate::apart(|| {
            for (key, cell) in slab.iter() {
                // The connection running the script is the one the worker has borrowed.
                let Ok(mut c) = cell.try_borrow_mut() else {
                    continue;
                };
                let closed = match read_and_run(&mut ex, &mut c, false, true) {
                    Input::Nothing => continue,
                    Input::Ran => !write_out(srv, &mut c, wstats),
                    Input::Closed => true,
                };
                served.push(ServedConn {
                    key,
                    id: c.client.id,
                    closed,
                });
            }
        });
        // One entry per connection however many passes served it; closed if any saw it so.
        served.sort_by_key(|s| (s.key, s.id, !s.closed));
        served.dedup_by(|a, b| a.key == b.key && a.id == b.id);
        srv.workers[p.worker].absorb(&mut p.kstats);
        let took = unix_ms().saturating_sub(started);
        p.next_ms = unix_ms() + MIN_GAP_MS.max(4 * took);
    });
}

/// True if the pump must leave `args` for later: a command let through while busy
/// (ALLOW_BUSY) that locks keys, such as WATCH, which would wait forever on the locks of
/// the script this thread runs.
pub(super) fn must_wait(args: Args<'_>) -> bool {
    match table().lookup(args) {
        Lookup::Found(_, cmd) => {
            cmd.has(flags::ALLOW_BUSY)
                && (cmd.locks_all(args) || !cmd.key_positions(args).is_empty())
        }
        _ => false,
    }
}
