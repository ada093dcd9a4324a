//! CLIENT PAUSE: holds clients' commands back for a while, as Redis 7.0 does for failovers
//! and for operators draining writes before a switch-over.
//!
//! - `ALL` postpones every command of every client; `WRITE` postpones only what may change
//!   the dataset or the replication stream: commands flagged `write` or `may-replicate`
//!   (PUBLISH, PFCOUNT, EVAL without a read-only shebang…) and an EXEC that queued one.
//! - A postponed command is not consumed: it stays in its client's query buffer and the
//!   client's worker runs it again when the pause ends or changes (see `net.rs`), so the
//!   client simply waits for its reply. Replies of syntax and arity errors still come at
//!   once, because those checks come first.
//! - While paused, keys are not deleted by expiry or eviction: an expired key reads as
//!   absent but stays in the dataset (`expired_keys` does not move) until the pause ends,
//!   so the dataset stays constant, as Redis keeps it.
//!
//! The hot path pays one relaxed load of `kind` per command.

use crate::command::{flags, Command};
use crate::server::Server;
use crate::transaction::MultiState;
use flowkv_protocol::Args;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize};

/// What a pause holds back, least restrictive first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Off = 0,
    Write = 1,
    All = 2,
}

/// The server's pause state.
#[derive(Default)]
pub struct Pause {
    /// A [`Kind`] as u8; may still say paused after `end_ms` has passed (see [`Pause::kind`]).
    kind: AtomicU8,
    /// When the pause ends (unix ms).
    end_ms: AtomicU64,
    /// Bumped by every PAUSE and UNPAUSE, so workers know when to retry postponed clients.
    epoch: AtomicU64,
    /// Clients with a postponed command (INFO `blocked_clients` counts them, as Redis does).
    postponed: AtomicUsize,
}

impl Pause {
    /// The pause in force at `now_ms`.
    #[inline]
    pub fn kind(&self, now_ms: u64) -> Kind {
        match self.kind.load(Relaxed) {
            0 => Kind::Off,
            _ if self.end_ms.load(Relaxed) < now_ms => Kind::Off,
            1 => Kind::Write,
            _ => Kind::All,
        }
    }

    /// True if a pause is in force now (one relaxed load when none is).
    #[inline]
    pub fn in_force(&self) -> bool {
        self.kind.load(Relaxed) != Kind::Off as u8
            && self.kind(crate::server::unix_ms()) != Kind::Off
    }

    /// When the pause ends, if one is in force at `now_ms`.
    pub fn end_ms(&self, now_ms: u64) -> Option<u64> {
        (self.kind(now_ms) != Kind::Off).then(|| self.end_ms.load(Relaxed))
    }

    /// The counter workers compare to decide whether postponed clients should try again.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Relaxed)
    }

    /// CLIENT PAUSE: a second pause while one is in force keeps the more restrictive kind
    /// and the later end, as Redis merges pauses of the same purpose.
    pub fn pause(&self, srv: &Server, kind: Kind, end_ms: u64, now_ms: u64) {
        let (kind, end_ms) = match self.kind(now_ms) {
            Kind::Off => (kind, end_ms),
            old => (kind.max(old), end_ms.max(self.end_ms.load(Relaxed))),
        };
        self.end_ms.store(end_ms, Relaxed);
        self.kind.store(kind as u8, Relaxed);
        pause_expiry(srv, end_ms);
        self.epoch.fetch_add(1, Relaxed);
        // Clients postponed by ALL may now be allowed by WRITE.
        srv.wake_workers();
    }

    /// CLIENT UNPAUSE: ends the pause now and wakes the postponed clients.
    pub fn unpause(&self, srv: &Server) {
        self.kind.store(Kind::Off as u8, Relaxed);
        self.end_ms.store(0, Relaxed);
        pause_expiry(srv, 0);
        self.epoch.fetch_add(1, Relaxed);
        srv.wake_workers();
    }

    /// True if the command must wait for the pause to end. `multi` is the client's
    /// transaction, for EXEC (which waits if it queued anything that may write).
    #[inline]
    pub fn holds(&self, cmd: &Command, args: Args<'_>, multi: Option<&MultiState>) -> bool {
        if self.kind.load(Relaxed) == Kind::Off as u8 {
            return false;
        }
        match self.kind(crate::server::unix_ms()) {
            Kind::Off => false,
            Kind::All => true,
            Kind::Write => {
                let writes = |c: &Command, a: Args<'_>| {
                    crate::scripting::command_flags(c, a) & (flags::WRITE | flags::MAY_REPLICATE)
                        != 0
                };
                if cmd.name == "exec" {
                    multi.is_some_and(|m| m.queued.iter().any(|q| writes(q.cmd, q.args.as_args())))
                } else {
                    writes(cmd, args)
                }
            }
        }
    }

    /// Counts a client whose command was postponed (true) or that runs again (false).
    pub fn note_postponed(&self, postponed: bool) {
        if postponed {
            self.postponed.fetch_add(1, Relaxed);
        } else {
            self.postponed.fetch_sub(1, Relaxed);
        }
    }

    /// Clients waiting for the pause to end.
    pub fn postponed(&self) -> usize {
        self.postponed.load(Relaxed)
    }
}

/// Pauses key expiry until `until_ms` (0: resumes it), unless this server is a replica,
/// whose expiry stays paused for good: its master's DELs expire its keys.
fn pause_expiry(srv: &Server, until_ms: u64) {
    if !srv.replication.replica.is_replica() {
        srv.keyspace.pause_expiry_until(until_ms);
    }
}
