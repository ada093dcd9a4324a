//! Point-in-time snapshots without fork (BGSAVE, and later full syncs to replicas).
//!
//! Redis forks and lets the kernel copy pages the parent writes; flowkv instead copies, on
//! write, the entries a running snapshot has not reached yet:
//!
//! - Every entry carries a one-bit *mark*, every database part ([`crate::keyspace::Db`]) a
//!   mark of its own. Outside snapshots the two agree for every entry.
//! - [`crate::Locked::begin_snapshot`] flips every database's mark under all shard locks —
//!   that instant is the snapshot's point in time — so every entry is now "not captured".
//! - The snapshotter walks each database with the dict's SCAN cursor, a few buckets per
//!   lock hold ([`crate::Keyspace::snapshot_step`]), handing each uncaptured entry to its
//!   callback and marking it. Entries created after the point in time get the new mark at
//!   insertion, so the walk skips them; SCAN's duplicates are skipped the same way.
//! - A writer about to change, replace or delete an uncaptured entry first hands the entry's
//!   current state (a copy, or the entry itself when it is going away anyway) to
//!   [`Captures`], and marks it. The snapshotter drains those between steps.
//!
//! Each entry is thus written exactly once, with its value as of the point in time. Extra
//! memory is the entries written to between the start and the walk reaching them; a
//! database part the walk has finished costs writers nothing more.
//!
//! A walk that is started must be finished (its callback may ignore entries once the
//! output has failed): the marks only agree again once every entry has been visited.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::entry::Entry;
use crate::table::KeyTable;

/// Entries writers saved for a running snapshot.
#[derive(Default)]
pub struct Captures {
    queue: Mutex<Vec<Captured>>,
}

/// One saved piece of the snapshot's state.
enum Captured {
    /// An entry of database `db` as it was when the snapshot started.
    Entry { db: usize, entry: Entry },
    /// A flushed database part: its entries whose mark differs from `mark` belong to the
    /// snapshot (the others were created after it started).
    Dict {
        db: usize,
        mark: bool,
        dict: KeyTable,
    },
}

impl Captures {
    /// Calls `f(db, entry)` for every entry saved since the last call, and frees them.
    pub fn drain(&self, mut f: impl FnMut(usize, &Entry)) {
        let items = std::mem::take(&mut *self.queue.lock());
        for c in items {
            match c {
                Captured::Entry { db, entry } => f(db, &entry),
                Captured::Dict { db, mark, dict } => dict
                    .iter()
                    .filter(|e| e.snap_mark() != mark)
                    .for_each(|e| f(db, e)),
            }
        }
    }

    fn push(&self, c: Captured) {
        self.queue.lock().push(c);
    }
}

/// A database part's share of a running snapshot: where its walk is and where writers save
/// the entries it has not reached.
pub(crate) struct SnapState {
    /// The database index the part had when the snapshot started (SWAPDB moves parts).
    pub db: usize,
    /// The walk's SCAN cursor in the part's dict.
    pub cursor: u64,
    pub captures: Arc<Captures>,
}

/// Before an entry of a database part with `snap` and `mark` changes: saves its current
/// state for the snapshot if the snapshot has not captured it yet, and marks it captured.
#[inline]
pub(crate) fn preserve(snap: &Option<Box<SnapState>>, mark: bool, e: &mut Entry) {
    if let Some(st) = snap {
        if e.snap_mark() != mark {
            st.captures.push(Captured::Entry {
                db: st.db,
                entry: e.clone_as(e.key()),
            });
            e.set_snap_mark(mark);
        }
    }
}

/// An entry leaving a database part with `snap` and `mark`: returns it, or hands it to the
/// snapshot (no copy) if the snapshot still needs it.
#[inline]
pub(crate) fn release(snap: &Option<Box<SnapState>>, mark: bool, e: Entry) -> Option<Entry> {
    match snap {
        Some(st) if e.snap_mark() != mark => {
            st.captures.push(Captured::Entry {
                db: st.db,
                entry: e,
            });
            None
        }
        _ => Some(e),
    }
}

/// A flushed dict of a database part with `snap` and `mark`: returns it, or hands it to the
/// snapshot (which frees it once written) if the snapshot is still walking the part.
pub(crate) fn release_dict(
    snap: &mut Option<Box<SnapState>>,
    mark: bool,
    dict: KeyTable,
) -> Option<KeyTable> {
    match snap.take() {
        Some(st) => {
            st.captures.push(Captured::Dict {
                db: st.db,
                mark,
                dict,
            });
            None
        }
        None => Some(dict),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::keyspace::{Expire, KeyStats, Keyspace};

    const DBS: usize = 3;
    type State = BTreeMap<(usize, Vec<u8>), Vec<u8>>;

    /// Every (db, key) → string value, read under all locks.
    fn dump(ks: &Keyspace, now: u64) -> State {
        let mut stats = KeyStats::default();
        let mut l = ks.lock_all();
        let mut out = State::new();
        for db in 0..DBS {
            let k = l.db(db, now, &mut stats);
            for e in k.iter() {
                out.insert((db, e.key().to_vec()), e.string().unwrap().to_vec());
            }
        }
        out
    }

    /// One random change through the public API, as commands make them.
    fn random_op(ks: &Keyspace, rng: &mut StdRng, n: u32, now: u64) {
        let mut stats = KeyStats::default();
        let db = rng.gen_range(0..DBS);
        let key = format!("k{}", rng.gen_range(0..40)).into_bytes();
        let val = format!("v{n}").into_bytes();
        let op = rng.gen_range(0..100);
        if op == 3 {
            ks.sweep_expired(rng.gen_range(0..4), now, 8);
            return;
        }
        if op < 3 {
            let mut l = ks.lock_all();
            let mut k = l.db(db, now, &mut stats);
            if op == 0 {
                drop(k.flush());
            } else {
                k.swap_with((db + 1) % DBS);
            }
            return;
        }
        let mut l = ks.lock_all();
        let mut k = l.db(db, now, &mut stats);
        match op % 7 {
            0 | 1 => k.set_string(&key, &val, Expire::Keep),
            2 => drop(k.remove(&key)),
            3 => {
                if let Some(e) = k.write(&key) {
                    e.set_string(&val);
                }
            }
            4 => {
                k.set_expire(&key, Some(1 << 40));
            }
            5 => {
                // Expires soon: reclaimed by a later lookup or the sweep.
                k.set_expire(&key, Some(now + 500));
            }
            _ => {
                k.move_to_db(&key, (db + 1) % DBS);
            }
        }
    }

    /// Random changes interleaved with the walk of several snapshots in a row: each
    /// snapshot holds exactly the state at its start, every key once.
    #[test]
    fn snapshots_are_point_in_time_under_concurrent_changes() {
        let mut rng = StdRng::seed_from_u64(11);
        let ks = Keyspace::new(DBS, 4);
        let mut n = 0;
        for round in 0..20 {
            // Keys given a TTL before the start expire during the walk.
            let start = 1000 * (round + 1);
            for _ in 0..rng.gen_range(0..200) {
                n += 1;
                random_op(&ks, &mut rng, n, start);
            }
            let want = dump(&ks, start);
            let captures = ks.lock_all().begin_snapshot();
            let mut got = State::new();
            let mut add = |db: usize, e: &crate::Entry| {
                // As the server does: keys already expired at the start are left out.
                if e.is_expired(start) {
                    return;
                }
                let prev = got.insert((db, e.key().to_vec()), e.string().unwrap().to_vec());
                assert!(prev.is_none(), "{:?} written twice", e.key());
            };
            let mut done = [false; 4];
            while done.iter().any(|d| !d) {
                if rng.gen_bool(0.5) {
                    n += 1;
                    random_op(&ks, &mut rng, n, start + 600);
                } else {
                    let shard = rng.gen_range(0..4);
                    if !done[shard] {
                        done[shard] = ks.snapshot_step(shard, 2, &mut add);
                    }
                }
                captures.drain(&mut add);
            }
            captures.drain(&mut add);
            assert_eq!(got, want);
        }
    }
}
