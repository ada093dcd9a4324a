//! The keyspace: `databases` logical databases spread over a power-of-two number of shards.
//!
//! A key's shard is picked from the top bits of its hash, independent of the database, so each
//! shard holds that key range for every database. This makes MOVE (same key, other database)
//! a one-shard operation and SWAPDB a per-shard swap. A command locks only the shards of its
//! keys, in ascending index order, which rules out deadlocks between multi-key commands; the
//! whole-keyspace commands (FLUSHALL, KEYS, SCAN, DBSIZE…) lock every shard in the same order.
//!
//! Expiry is lazy on access plus an active sweep ([`Keyspace::sweep_expired`]). A key whose
//! TTL has passed is invisible to every [`Keys`] method from that moment on, whether or not it
//! has been physically deleted yet.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::entry::{Entry, Kind};
use crate::evict::{self, Lfu, Policy, Pool};
use crate::hash::hash_bytes;
use crate::snapshot::{self, Captures, SnapState};
use crate::table::KeyTable;

/// One database's part of one shard.
#[derive(Default)]
pub struct Db {
    dict: KeyTable,
    /// Keys in `dict` that have a TTL (INFO keyspace `expires=`).
    expires: usize,
    /// Where the active expiry sweep continues in `dict`.
    sweep_cursor: u64,
    /// Where volatile eviction's search for keys with a TTL continues in `dict`, when they
    /// are too rare for random sampling to find.
    evict_cursor: u64,
    /// The snapshot mark of this part (see [`crate::snapshot`]): new entries get it.
    mark: bool,
    /// The running snapshot, while it has not walked all of this part.
    snap: Option<Box<SnapState>>,
}

impl Db {
    /// Removes `key` (hash `h`) and keeps the TTL count right. A running snapshot that has
    /// not captured the entry gets a copy first.
    fn take(&mut self, h: u64, key: &[u8]) -> Option<Entry> {
        let mut old = self.dict.remove(h, key)?;
        if old.expire_at().is_some() {
            self.expires -= 1;
        }
        snapshot::preserve(&self.snap, self.mark, &mut old);
        Some(old)
    }

    /// Deletes `key` if it is present and expired: the removed entry, to be freed (`None`
    /// if it was not there, or a running snapshot took it).
    fn reclaim(&mut self, h: u64, key: &[u8], now_ms: u64) -> Option<Entry> {
        if self.dict.get(h, key).is_some_and(|e| e.is_expired(now_ms)) {
            self.discard(h, key).flatten()
        } else {
            None
        }
    }

    /// Deletes `key` for good: like [`Db::take`], but the entry itself (no copy) goes to a
    /// running snapshot that still needs it. `None` if the key was not there; else the
    /// entry to free, unless the snapshot took it.
    fn discard(&mut self, h: u64, key: &[u8]) -> Option<Option<Entry>> {
        let old = self.dict.remove(h, key)?;
        if old.expire_at().is_some() {
            self.expires -= 1;
        }
        Some(snapshot::release(&self.snap, self.mark, old))
    }

    /// Adds or replaces an entry, giving it this part's snapshot mark; a replaced entry a
    /// running snapshot still needs is copied to it first. Keeps the TTL count right.
    fn put(&mut self, h: u64, mut entry: Entry) -> Option<Entry> {
        entry.set_snap_mark(self.mark);
        let has_ttl = entry.expire_at().is_some();
        let mut old = self.dict.insert(h, entry);
        if let Some(o) = &mut old {
            if o.expire_at().is_some() {
                self.expires -= 1;
            }
            snapshot::preserve(&self.snap, self.mark, o);
        }
        if has_ttl {
            self.expires += 1;
        }
        old
    }

    /// One chunk of the active expiry sweep: scans up to `max_buckets` buckets from the saved
    /// cursor and deletes the expired keys found there. `keys` is scratch space; the deleted
    /// keys are moved to `deleted` when it is given (for "expired" notifications).
    fn sweep_chunk(
        &mut self,
        now_ms: u64,
        max_buckets: usize,
        keys: &mut Vec<Box<[u8]>>,
        freed: &mut Vec<Entry>,
        mut deleted: Option<&mut Vec<Box<[u8]>>>,
    ) -> Sweep {
        let mut sweep = Sweep::default();
        let mut cursor = self.sweep_cursor;
        for _ in 0..max_buckets {
            cursor = self.dict.scan(cursor, |e| {
                if let Some(at) = e.expire_at() {
                    sweep.with_ttl += 1;
                    if at <= now_ms {
                        keys.push(e.key().into());
                    }
                }
            });
            if cursor == 0 {
                sweep.wrapped = true;
                break;
            }
        }
        self.sweep_cursor = cursor;
        for key in keys.drain(..) {
            if let Some(entry) = self.discard(hash_bytes(&key), &key) {
                freed.extend(entry);
                sweep.removed += 1;
                if let Some(d) = deleted.as_deref_mut() {
                    d.push(key);
                }
            }
        }
        sweep
    }
}

/// What [`Keyspace::evict_random`] found in a shard.
pub enum RandomPick {
    /// This key of this database.
    Found(usize, Box<[u8]>),
    /// The shard holds keys the policy may evict, but this attempt found none (keys with a
    /// TTL are rare: the next attempt goes on looking).
    Missed,
    /// The shard holds no key the policy may evict.
    Empty,
}

/// A key removed by eviction.
pub struct Evicted {
    /// The entry, unless a running snapshot took it (it is freed once written).
    pub entry: Option<Entry>,
}

/// Buckets volatile eviction's cursor looks at per sample when keys with a TTL are rare.
const EVICT_SCAN_BUCKETS_PER_SAMPLE: usize = 20;

impl Db {
    /// Calls `f` on up to `n` sampled keys eviction may pick: any key, or (`volatile`)
    /// only keys with a TTL. Keys with a TTL are sampled at random when they are common;
    /// when rare, a persistent cursor walks the table to find them, so a few volatile keys
    /// among millions are still found in bounded time.
    fn evict_sample(
        &mut self,
        volatile: bool,
        n: usize,
        rng: &mut impl rand::Rng,
        mut f: impl FnMut(&Entry),
    ) {
        let len = self.dict.len();
        if !volatile {
            self.dict.sample(n, rng, f);
            return;
        }
        if self.expires == 0 {
            return;
        }
        if self.expires * 8 >= len {
            let want = n.saturating_mul(len.div_ceil(self.expires));
            let mut got = 0;
            self.dict.sample(want, rng, |e| {
                if got < n && e.expire_at().is_some() {
                    got += 1;
                    f(e);
                }
            });
            return;
        }
        let mut got = 0;
        let mut cursor = self.evict_cursor;
        for _ in 0..n.saturating_mul(EVICT_SCAN_BUCKETS_PER_SAMPLE) {
            cursor = self.dict.scan(cursor, |e| {
                if got < n && e.expire_at().is_some() {
                    got += 1;
                    f(e);
                }
            });
            if got >= n {
                break;
            }
        }
        self.evict_cursor = cursor;
    }
}

/// What one sweep chunk saw.
#[derive(Default)]
struct Sweep {
    /// Keys with a TTL looked at.
    with_ttl: u64,
    /// Expired keys deleted.
    removed: u64,
    /// The sweep went through the whole table and starts over next time.
    wrapped: bool,
}

/// Chunks the active sweep may do per database and call (each takes the shard lock anew).
const SWEEP_MAX_CHUNKS: usize = 16;
/// Keys with a TTL the sweep wants to look at per call before it judges how stale the
/// database is (Redis samples 20 per loop).
const SWEEP_MIN_SAMPLE: u64 = 20;
/// The sweep goes on while more than 1 in this many of the TTL keys it saw had expired
/// (Redis accepts 10% stale keys).
const SWEEP_STALE_RATIO: u64 = 10;
/// Time one sweep call may take over all databases of its shard.
const SWEEP_TIME_LIMIT: Duration = Duration::from_millis(2);

/// A shard: its slice of every database, guarded by one mutex.
pub struct Shard {
    dbs: Box<[Db]>,
}

/// Counters a worker keeps for INFO stats; summed over workers when INFO asks. It also
/// carries the keyspace events the worker's commands raised, until the server publishes them
/// (after the command, outside its locks).
#[derive(Default, Clone, Debug)]
pub struct KeyStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    /// Hits and misses per key prefix (see [`Keyspace::set_stat_prefixes`]), indexed like
    /// the prefixes; all zero while none are set.
    pub prefix_hits: [u32; MAX_STAT_PREFIXES],
    pub prefix_misses: [u32; MAX_STAT_PREFIXES],
    /// Keyspace events of the enabled classes (see [`Keyspace::set_notify_classes`]), in the
    /// order they happened.
    pub events: Vec<KeyEvent>,
}

impl KeyStats {
    /// Records a keyspace event on `key` of database `db`.
    pub fn event(&mut self, class: u32, event: &'static str, db: usize, key: &[u8]) {
        self.events.push(KeyEvent {
            class,
            event,
            db,
            key: key.into(),
        });
    }
}

/// A keyspace event (Redis's keyspace notifications): `event` happened to `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    /// Its notification class bit.
    pub class: u32,
    pub event: &'static str,
    pub db: usize,
    pub key: Box<[u8]>,
}

/// The notification classes of the events the store raises by itself, with Redis's bit
/// values (the server's configuration knows them all).
pub mod notify_class {
    /// A key deleted because its TTL passed (`x`).
    pub const EXPIRED: u32 = 1 << 8;
    /// A read lookup found no key (`m`).
    pub const KEY_MISS: u32 = 1 << 11;
    /// A key was created (`n`).
    pub const NEW: u32 = 1 << 14;
}

/// The whole keyspace.
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    shard_shift: u32,
    num_dbs: usize,
    /// Clients blocked waiting for keys (BLPOP, BZPOPMIN…). While non-zero, creating a
    /// list or sorted set records the key as "ready" in the command's [`Locked`], so the
    /// server can serve the waiters once the command is done. Written under the lock of
    /// every shard a waiter's keys live in, so a command holding those locks reads it
    /// exactly.
    waiters: AtomicUsize,
    /// Keys WATCHed by clients. While non-zero, every change through [`Keys`] records the
    /// key as "touched" in the command's [`Locked`], so the server can fail those clients'
    /// EXEC before the locks are released.
    watchers: AtomicUsize,
    /// Clients with CLIENT TRACKING on. While non-zero, changes are recorded exactly as for
    /// [`Keyspace::set_watchers`] (the server invalidates the trackers' caches from them),
    /// and keys the active sweep deletes go to the expired hook.
    trackers: AtomicUsize,
    /// Called with (db, keys) the active sweep deleted while [`Keyspace::set_trackers`] is
    /// non-zero, outside the shard lock.
    expired_hook: OnceLock<ExpiredHook>,
    /// Told of every key deleted because it expired (see [`Keyspace::set_expire_log`]).
    expire_log: OnceLock<ExpireLog>,
    /// Frees expired entries elsewhere while `lazy_expire` is set (`lazyfree-lazy-expire`):
    /// see [`Keyspace::set_lazy_free`].
    lazy_free: OnceLock<fn(Entry)>,
    lazy_expire: AtomicBool,
    /// `lazyfree-lazy-server-del`: values a command replaces or deletes as a side effect
    /// (SET over a big list, *STORE, RENAME's target, RESTORE REPLACE…) use `lazy_free`.
    lazy_server_del: AtomicBool,
    /// Notification classes whose events are recorded (0, the usual case, records none):
    /// see [`Keyspace::set_notify_classes`].
    notify: AtomicU32,
    /// Changes whose [`Locked`] was dropped before anyone took them for tracking (commands
    /// run outside the dispatcher, like serving blocked clients).
    untracked: Mutex<Vec<(usize, Box<[u8]>)>>,
    /// "expired" events of keys the active sweep deleted, for the server to publish.
    swept: Mutex<Vec<KeyEvent>>,
    /// True while `swept` may hold events, so taking them is one atomic load when it doesn't.
    swept_pending: AtomicBool,
    /// The LFU parameters packed with an "on" bit (see [`Keyspace::set_lfu`]); 0 under the
    /// other policies, where the access bits hold the LRU clock.
    lfu: AtomicU64,
    /// Key prefixes whose hits and misses are counted (`stats-key-prefixes`); `None`, the
    /// usual case, costs lookups one atomic load per command.
    stat_prefixes: parking_lot::RwLock<Option<Arc<StatPrefixes>>>,
    stat_prefixes_on: AtomicBool,
    /// Until when (unix ms) expiry deletes nothing: CLIENT PAUSE keeps the dataset constant,
    /// so an expired key then reads as absent but stays (see [`Keyspace::pause_expiry_until`]).
    expiry_paused_until: AtomicU64,
}

/// At most this many `stats-key-prefixes`.
pub const MAX_STAT_PREFIXES: usize = 8;

/// The key prefixes statistics are kept for.
#[derive(Debug, Default)]
pub struct StatPrefixes {
    list: Vec<Box<[u8]>>,
}

impl StatPrefixes {
    /// At most [`MAX_STAT_PREFIXES`] prefixes (the rest are ignored).
    pub fn new(list: Vec<Box<[u8]>>) -> StatPrefixes {
        StatPrefixes {
            list: list.into_iter().take(MAX_STAT_PREFIXES).collect(),
        }
    }

    pub fn list(&self) -> &[Box<[u8]>] {
        &self.list
    }

    /// The index of the first prefix `key` starts with.
    #[inline]
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        self.list.iter().position(|p| key.starts_with(p))
    }
}

/// What [`Keyspace::set_expired_hook`] installs: told (db, keys) of keys the active sweep
/// deleted.
pub type ExpiredHook = Box<dyn Fn(usize, &[Box<[u8]>]) + Send + Sync>;

/// What [`Keyspace::set_expire_log`] installs: a change log (the AOF, replicas) told
/// (db, key) of each key deleted because it expired — found so by a lookup, or by the active
/// sweep — under the key's shard lock, so the deletion is logged in order with the key's
/// other changes. Keys are collected for it only while `active` says someone listens.
pub struct ExpireLog {
    pub active: fn() -> bool,
    pub deleted: ExpiredKeyFn,
}

/// [`ExpireLog`]'s callback: (db, key).
pub type ExpiredKeyFn = Box<dyn Fn(usize, &[u8]) + Send + Sync>;

/// The sorted, de-duplicated set of shards a command needs.
pub type ShardSet = SmallVec<[u16; 4]>;

impl Keyspace {
    /// `num_shards` is rounded up to a power of two (at most 4096).
    pub fn new(num_dbs: usize, num_shards: usize) -> Keyspace {
        let n = num_shards.clamp(1, 4096).next_power_of_two();
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Shard {
                    dbs: (0..num_dbs).map(|_| Db::default()).collect(),
                })
            })
            .collect();
        Keyspace {
            shards,
            shard_shift: 64 - n.trailing_zeros(),
            num_dbs,
            waiters: AtomicUsize::new(0),
            watchers: AtomicUsize::new(0),
            trackers: AtomicUsize::new(0),
            expired_hook: OnceLock::new(),
            expire_log: OnceLock::new(),
            lazy_free: OnceLock::new(),
            lazy_expire: AtomicBool::new(false),
            lazy_server_del: AtomicBool::new(false),
            notify: AtomicU32::new(0),
            untracked: Mutex::new(Vec::new()),
            swept: Mutex::new(Vec::new()),
            swept_pending: AtomicBool::new(false),
            lfu: AtomicU64::new(0),
            stat_prefixes: parking_lot::RwLock::new(None),
            expiry_paused_until: AtomicU64::new(0),
            stat_prefixes_on: AtomicBool::new(false),
        }
    }

    /// Switches the access bits of every entry between the LRU clock (`None`) and Redis's
    /// LFU layout with these parameters (the `maxmemory-policy` is an LFU one). Entries
    /// keep their old bits until next accessed, as in Redis.
    pub fn set_lfu(&self, lfu: Option<Lfu>) {
        let packed = lfu.map_or(0, |l| {
            1 << 63 | u64::from(l.log_factor) << 32 | u64::from(l.decay_minutes)
        });
        self.lfu.store(packed, Relaxed);
    }

    /// Sets the key prefixes whose hits and misses lookups count (empty: none).
    pub fn set_stat_prefixes(&self, list: Vec<Box<[u8]>>) {
        let on = !list.is_empty();
        *self.stat_prefixes.write() = on.then(|| Arc::new(StatPrefixes::new(list)));
        self.stat_prefixes_on.store(on, Relaxed);
    }

    /// The key prefixes statistics are kept for, if any.
    pub fn stat_prefixes(&self) -> Option<Arc<StatPrefixes>> {
        if !self.stat_prefixes_on.load(Relaxed) {
            return None;
        }
        self.stat_prefixes.read().clone()
    }

    /// One SCAN step over database `db` of `shard`, under that shard's lock alone, for
    /// background walks that visit every key over time (per-prefix statistics). Returns
    /// the next cursor, 0 when the walk is through.
    pub fn scan_part(
        &self,
        shard: usize,
        db: usize,
        cursor: u64,
        max_buckets: usize,
        mut f: impl FnMut(&Entry),
    ) -> u64 {
        let guard = self.shards[shard].lock();
        let Some(part) = guard.dbs.get(db) else {
            return 0;
        };
        let mut cursor = cursor;
        for _ in 0..max_buckets {
            cursor = part.dict.scan(cursor, &mut f);
            if cursor == 0 {
                break;
            }
        }
        cursor
    }

    /// The LFU parameters, if an LFU policy is selected.
    #[inline]
    pub fn lfu(&self) -> Option<Lfu> {
        let packed = self.lfu.load(Relaxed);
        (packed != 0).then_some(Lfu {
            log_factor: ((packed >> 32) & 0x7FFF_FFFF) as u32,
            decay_minutes: packed as u32,
        })
    }

    /// Sets the keyspace notification classes (bits of [`KeyEvent::class`]) to record:
    /// events of these classes raised through [`Keys`] go to the command's
    /// [`KeyStats::events`], and keys deleted by the active sweep to [`Keyspace::take_swept`]
    /// when [`notify_class::EXPIRED`] is among them. 0 turns recording off.
    pub fn set_notify_classes(&self, classes: u32) {
        self.notify.store(classes, Relaxed);
    }

    /// True if events of `class` are recorded.
    #[inline]
    pub fn notifies(&self, class: u32) -> bool {
        self.notify.load(Relaxed) & class != 0
    }

    /// Takes the "expired" events of keys the active sweep deleted since the last call.
    pub fn take_swept(&self) -> Vec<KeyEvent> {
        if !self.swept_pending.load(Relaxed) {
            return Vec::new();
        }
        let mut swept = self.swept.lock();
        self.swept_pending.store(false, Relaxed);
        std::mem::take(&mut *swept)
    }

    /// Records how many keys are WATCHed (see the field's docs).
    pub fn set_watchers(&self, n: usize) {
        self.watchers.store(n, Relaxed);
    }

    /// True if changes must be recorded in [`Locked`] (see `watchers` and `trackers`).
    #[inline]
    fn recording(&self) -> bool {
        self.watchers.load(Relaxed) > 0 || self.trackers.load(Relaxed) > 0
    }

    /// Records how many clients track keys (see the field's docs).
    pub fn set_trackers(&self, n: usize) {
        self.trackers.store(n, Relaxed);
    }

    /// Stops expiry from deleting keys until `until_ms` (unix ms; 0 resumes it now): lookups
    /// report expired keys absent without deleting or counting them, and the active sweep
    /// skips its work, as Redis does while clients are paused.
    pub fn pause_expiry_until(&self, until_ms: u64) {
        self.expiry_paused_until.store(until_ms, Relaxed);
    }

    /// True if expiry deletes nothing at `now_ms` (see [`Keyspace::pause_expiry_until`]).
    #[inline]
    pub fn expiry_paused(&self, now_ms: u64) -> bool {
        self.expiry_paused_until.load(Relaxed) >= now_ms
    }

    /// True if some client tracks keys.
    #[inline]
    pub fn tracking(&self) -> bool {
        self.trackers.load(Relaxed) > 0
    }

    /// Takes the changes no command took for tracking (see the `untracked` field).
    pub fn take_untracked(&self) -> Vec<(usize, Box<[u8]>)> {
        std::mem::take(&mut *self.untracked.lock())
    }

    /// Installs the hook told about keys the active sweep deletes while someone tracks keys
    /// (the first installed hook stays).
    pub fn set_expired_hook(&self, hook: ExpiredHook) {
        let _ = self.expired_hook.set(hook);
    }

    /// Installs the function that frees deleted entries off the caller's thread (the first
    /// installed stays); [`Keyspace::set_lazy_expire`] decides whether expired keys use it.
    pub fn set_lazy_free(&self, free: fn(Entry)) {
        let _ = self.lazy_free.set(free);
    }

    /// `lazyfree-lazy-expire`: expired keys' values are freed by the lazy-free function
    /// rather than by the thread that found them expired.
    pub fn set_lazy_expire(&self, on: bool) {
        self.lazy_expire.store(on, Relaxed);
    }

    /// `lazyfree-lazy-server-del`: values replaced or deleted as a side effect of a command
    /// are freed by the lazy-free function rather than under the shard lock.
    pub fn set_lazy_server_del(&self, on: bool) {
        self.lazy_server_del.store(on, Relaxed);
    }

    /// Frees an entry deleted because it expired, lazily if so configured.
    fn free_expired(&self, e: Entry) {
        self.free_lazily_if(&self.lazy_expire, e);
    }

    /// Frees an entry a command replaced or deleted as a side effect, lazily if so
    /// configured.
    fn free_replaced(&self, e: Entry) {
        self.free_lazily_if(&self.lazy_server_del, e);
    }

    /// Hands `e` to the lazy-free function if `setting` is on (and one is installed), else
    /// frees it here.
    fn free_lazily_if(&self, setting: &AtomicBool, e: Entry) {
        match self.lazy_free.get() {
            Some(free) if setting.load(Relaxed) => free(e),
            _ => drop(e),
        }
    }

    /// Installs the log told of keys deleted by expiry (the first installed log stays).
    pub fn set_expire_log(&self, log: ExpireLog) {
        let _ = self.expire_log.set(log);
    }

    /// The expire log, if one is installed and listening.
    #[inline]
    fn expire_log(&self) -> Option<&ExpireLog> {
        self.expire_log.get().filter(|l| (l.active)())
    }

    /// Records how many clients are blocked on keys (see the field's docs).
    pub fn set_waiters(&self, n: usize) {
        self.waiters.store(n, Relaxed);
    }

    /// Number of logical databases (`databases` config).
    pub fn num_dbs(&self) -> usize {
        self.num_dbs
    }

    /// Number of shards.
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    /// The shard a key hash belongs to: its top bits (the dict uses the low bits for buckets).
    #[inline]
    fn shard_of_hash(&self, h: u64) -> usize {
        if self.shards.len() == 1 {
            0
        } else {
            (h >> self.shard_shift) as usize
        }
    }

    /// The shard a key belongs to.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> u16 {
        self.shard_of_hash(hash_bytes(key)) as u16
    }

    /// Adds the shards of `keys` to `set`, keeping it sorted and unique.
    pub fn add_shards<'k>(&self, set: &mut ShardSet, keys: impl IntoIterator<Item = &'k [u8]>) {
        for k in keys {
            let s = self.shard_of(k);
            if let Err(pos) = set.binary_search(&s) {
                set.insert(pos, s);
            }
        }
    }

    /// Locks the given shards (sorted ascending, as [`Keyspace::add_shards`] builds them).
    pub fn lock(&self, set: &ShardSet) -> Locked<'_> {
        debug_assert!(set.windows(2).all(|w| w[0] < w[1]));
        if set.len() == self.shards.len() {
            return self.lock_all();
        }
        Locked {
            ks: self,
            all: false,
            guards: set
                .iter()
                .map(|&i| (i, self.shards[i as usize].lock()))
                .collect(),
            stale: Vec::new(),
            ready: Vec::new(),
            touched: Vec::new(),
            tracked: Vec::new(),
            no_touch: false,
        }
    }

    /// Locks every shard, in index order.
    pub fn lock_all(&self) -> Locked<'_> {
        Locked {
            ks: self,
            all: true,
            guards: self
                .shards
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u16, s.lock()))
                .collect(),
            stale: Vec::new(),
            ready: Vec::new(),
            touched: Vec::new(),
            tracked: Vec::new(),
            no_touch: false,
        }
    }

    /// One step of the running snapshot's walk through `shard`: up to `max_buckets` buckets
    /// of one database part, under the shard lock, calling `f(db, entry)` for every entry
    /// the snapshot has not captured yet. Returns true once every part of the shard is done.
    pub fn snapshot_step(
        &self,
        shard: usize,
        max_buckets: usize,
        mut f: impl FnMut(usize, &Entry),
    ) -> bool {
        let mut guard = self.shards[shard].lock();
        let Some(part) = guard.dbs.iter_mut().find(|d| d.snap.is_some()) else {
            return true;
        };
        let Db {
            dict, mark, snap, ..
        } = part;
        let st = snap.as_mut().expect("found above");
        let mut cursor = st.cursor;
        for _ in 0..max_buckets {
            cursor = dict.scan_mut(cursor, |e| {
                if e.snap_mark() != *mark {
                    f(st.db, e);
                    e.set_snap_mark(*mark);
                }
            });
            if cursor == 0 {
                break;
            }
        }
        st.cursor = cursor;
        if cursor == 0 {
            *snap = None;
        }
        false
    }

    /// One step of the active expiry cycle for one shard. For each database holding keys with
    /// a TTL it sweeps `max_buckets` buckets from where the last step stopped, and keeps going
    /// (up to [`SWEEP_MAX_CHUNKS`] chunks) while it has seen too few keys with a TTL to judge
    /// or more than 10% of them had expired, as Redis's adaptive cycle does. It holds the
    /// shard lock one chunk at a time and stops after [`SWEEP_TIME_LIMIT`], so commands never
    /// wait long. Returns how many keys were deleted.
    pub fn sweep_expired(&self, shard: usize, now_ms: u64, max_buckets: usize) -> u64 {
        if self.expiry_paused(now_ms) {
            return 0;
        }
        let started = Instant::now();
        let mut removed = 0;
        let mut scratch = Vec::new();
        let mut deleted = Vec::new();
        let mut freed = Vec::new();
        let notify = self.notifies(notify_class::EXPIRED);
        let log = self.expire_log();
        let record = notify || self.tracking() || log.is_some();
        for db in 0..self.num_dbs {
            let (mut with_ttl, mut expired) = (0, 0);
            for _ in 0..SWEEP_MAX_CHUNKS {
                let sweep = {
                    let mut guard = self.shards[shard].lock();
                    let d = &mut guard.dbs[db];
                    if d.expires == 0 {
                        break;
                    }
                    let sweep = d.sweep_chunk(
                        now_ms,
                        max_buckets,
                        &mut scratch,
                        &mut freed,
                        record.then_some(&mut deleted),
                    );
                    // Still under the shard lock: logged before anyone changes these keys.
                    if let Some(log) = log {
                        deleted.iter().for_each(|k| (log.deleted)(db, k));
                    }
                    sweep
                };
                // Freed after the lock is released.
                freed.drain(..).for_each(|e| self.free_expired(e));
                if !deleted.is_empty() && self.tracking() {
                    if let Some(hook) = self.expired_hook.get() {
                        hook(db, &deleted);
                    }
                }
                if !deleted.is_empty() && !notify {
                    deleted.clear();
                }
                if !deleted.is_empty() {
                    let mut swept = self.swept.lock();
                    swept.extend(deleted.drain(..).map(|key| KeyEvent {
                        class: notify_class::EXPIRED,
                        event: "expired",
                        db,
                        key,
                    }));
                    self.swept_pending.store(true, Relaxed);
                }
                with_ttl += sweep.with_ttl;
                expired += sweep.removed;
                removed += sweep.removed;
                let few_stale =
                    with_ttl >= SWEEP_MIN_SAMPLE && expired * SWEEP_STALE_RATIO <= with_ttl;
                if sweep.wrapped || few_stale || started.elapsed() >= SWEEP_TIME_LIMIT {
                    break;
                }
            }
        }
        removed
    }

    /// One eviction sampling round on `shard` (Redis's evictionPoolPopulate, for every
    /// database part of the shard under its lock): offers `samples` keys per database part
    /// that the policy may evict to `pool`, scored by `policy`'s rank. Returns how many keys
    /// the policy could evict in this shard (0: nothing to sample here).
    pub fn evict_populate(
        &self,
        shard: usize,
        policy: Policy,
        samples: usize,
        now_ms: u64,
        pool: &mut Pool,
        rng: &mut impl rand::Rng,
    ) -> usize {
        let rank = policy.rank();
        let lfu = self.lfu().unwrap_or(Lfu {
            log_factor: 0,
            decay_minutes: 0,
        });
        let mut guard = self.shards[shard].lock();
        let mut eligible = 0;
        for (i, db) in guard.dbs.iter_mut().enumerate() {
            let n = if policy.volatile() {
                db.expires
            } else {
                db.dict.len()
            };
            if n == 0 {
                continue;
            }
            eligible += n;
            db.evict_sample(policy.volatile(), samples, rng, |e| {
                pool.offer(evict::score(rank, lfu, e, now_ms), i, e.key());
            });
        }
        eligible
    }

    /// A random key of `shard` the policy may evict (allkeys-random, volatile-random): from
    /// the first database part at or after `start_db` (wrapping) where sampling finds one.
    pub fn evict_random(
        &self,
        shard: usize,
        volatile: bool,
        start_db: usize,
        rng: &mut impl rand::Rng,
    ) -> RandomPick {
        let mut guard = self.shards[shard].lock();
        let ndbs = guard.dbs.len();
        let mut eligible = false;
        for step in 0..ndbs {
            let i = (start_db + step) % ndbs;
            let db = &mut guard.dbs[i];
            eligible |= if volatile {
                db.expires > 0
            } else {
                !db.dict.is_empty()
            };
            let mut found = None;
            db.evict_sample(volatile, 1, rng, |e| {
                if found.is_none() {
                    found = Some(Box::<[u8]>::from(e.key()));
                }
            });
            if let Some(key) = found {
                return RandomPick::Found(i, key);
            }
        }
        if eligible {
            RandomPick::Missed
        } else {
            RandomPick::Empty
        }
    }

    /// Evicts `key` of database `db` if it is still there (and, for a volatile policy,
    /// still has a TTL). A running snapshot that has not captured it gets the entry;
    /// otherwise it is returned, for the caller to free here or on the lazy-free thread.
    /// `removed` runs under the shard lock once the key is gone (propagating the deletion
    /// in order with other changes to the key).
    pub fn evict_key(
        &self,
        db: usize,
        key: &[u8],
        volatile: bool,
        removed: impl FnOnce(),
    ) -> Option<Evicted> {
        let h = hash_bytes(key);
        let mut guard = self.shards[self.shard_of_hash(h)].lock();
        let part = &mut guard.dbs[db];
        // A volatile policy must find the key still with a TTL; otherwise `remove` alone
        // tells whether the key is still there (one probe on the eviction path, not two).
        if volatile && part.dict.get(h, key)?.expire_at().is_none() {
            return None;
        }
        let old = part.dict.remove(h, key)?;
        if old.expire_at().is_some() {
            part.expires -= 1;
        }
        removed();
        Some(Evicted {
            entry: snapshot::release(&part.snap, part.mark, old),
        })
    }

    /// Keys and keys-with-TTL per database, for INFO keyspace. Locks one shard at a time.
    pub fn db_sizes(&self) -> Vec<(usize, usize)> {
        let mut sizes = vec![(0, 0); self.num_dbs];
        for shard in self.shards.iter() {
            add_sizes(&mut sizes, &shard.lock());
        }
        sizes
    }
}

/// Shards held by one command. Dropping it deletes the expired keys its lookups found (see
/// [`Keys`]) and unlocks the shards.
pub struct Locked<'a> {
    ks: &'a Keyspace,
    all: bool,
    guards: SmallVec<[(u16, MutexGuard<'a, Shard>); 2]>,
    /// Expired keys found by reference-returning lookups, already counted as expired.
    stale: Vec<Stale>,
    /// (db, key) of lists and sorted sets created while clients were blocked on keys.
    ready: Vec<(usize, Box<[u8]>)>,
    /// (db, key) of keys changed while some key was WATCHed or some client tracked keys.
    touched: Vec<(usize, Box<[u8]>)>,
    /// (db, key) of keys changed or found expired (and deleted) while some client tracked
    /// keys, waiting for their invalidations (Redis signals an expired key as modified).
    /// Whatever is left when the locks are dropped goes to [`Keyspace::take_untracked`].
    tracked: Vec<(usize, Box<[u8]>)>,
    /// Lookups leave the keys' LRU/LFU bits alone (CLIENT NO-TOUCH).
    no_touch: bool,
}

/// An expired key waiting for deletion when its [`Locked`] is dropped.
struct Stale {
    db: usize,
    h: u64,
    key: Box<[u8]>,
    now_ms: u64,
}

/// Records an expired key found by a lookup. Returns false if it was already recorded, so
/// that it is counted as expired once.
fn note_stale(stale: &mut Vec<Stale>, db: usize, h: u64, key: &[u8], now_ms: u64) -> bool {
    if stale
        .iter()
        .any(|s| s.db == db && s.h == h && *s.key == *key)
    {
        return false;
    }
    stale.push(Stale {
        db,
        h,
        key: key.into(),
        now_ms,
    });
    true
}

impl Locked<'_> {
    /// Forgets a recorded expired key that is being deleted or replaced now. Returns whether
    /// it was recorded, i.e. already counted as expired.
    fn settle_stale(&mut self, db: usize, key: &[u8]) -> bool {
        if self.stale.is_empty() {
            return false;
        }
        let before = self.stale.len();
        self.stale.retain(|s| !(s.db == db && *s.key == *key));
        self.stale.len() != before
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if self.ks.tracking() {
            let mut left = std::mem::take(&mut self.touched);
            left.append(&mut self.tracked);
            if !left.is_empty() {
                self.ks.untracked.lock().append(&mut left);
            }
        }
        for s in std::mem::take(&mut self.stale) {
            if let Some(e) = db_of(self, s.db, s.h).reclaim(s.h, &s.key, s.now_ms) {
                self.ks.free_expired(e);
            }
        }
    }
}

/// Adds one shard's (keys, keys with a TTL) per database to `sizes`.
fn add_sizes(sizes: &mut [(usize, usize)], shard: &Shard) {
    for (i, db) in shard.dbs.iter().enumerate() {
        sizes[i].0 += db.dict.len();
        sizes[i].1 += db.expires;
    }
}

impl<'a> Locked<'a> {
    /// [`Keyspace::db_sizes`] through locks that hold every shard already (INFO inside a
    /// script or EXEC, which must not lock a shard twice).
    pub fn db_sizes(&self) -> Vec<(usize, usize)> {
        debug_assert!(self.all);
        let mut sizes = vec![(0, 0); self.ks.num_dbs];
        for (_, g) in &self.guards {
            add_sizes(&mut sizes, g);
        }
        sizes
    }

    /// Takes the keys that may now serve blocked clients (see [`Keyspace::set_waiters`]).
    pub fn take_ready(&mut self) -> Vec<(usize, Box<[u8]>)> {
        std::mem::take(&mut self.ready)
    }

    /// Starts a point-in-time snapshot (see [`crate::snapshot`]) as of now: needs every
    /// shard locked, so no command is half done. Every database part flips its mark and
    /// starts its walk. The caller must then run [`Keyspace::snapshot_step`] on every shard
    /// until it reports done, and drain the returned captures until then and once after.
    pub fn begin_snapshot(&mut self) -> Arc<Captures> {
        debug_assert!(self.all);
        let captures = Arc::new(Captures::default());
        for (_, g) in self.guards.iter_mut() {
            for (i, db) in g.dbs.iter_mut().enumerate() {
                debug_assert!(db.snap.is_none(), "one snapshot at a time");
                db.mark = !db.mark;
                db.snap = Some(Box::new(SnapState {
                    db: i,
                    cursor: 0,
                    captures: captures.clone(),
                }));
            }
        }
        captures
    }

    /// Makes lookups under these locks leave the keys' LRU/LFU bits alone (CLIENT NO-TOUCH).
    pub fn set_no_touch(&mut self, on: bool) {
        self.no_touch = on;
    }

    /// Takes the keys changed under these locks (see [`Keyspace::set_watchers`]). While
    /// some client tracks keys they also stay queued for [`Locked::take_tracked`].
    pub fn take_touched(&mut self) -> Vec<(usize, Box<[u8]>)> {
        let touched = std::mem::take(&mut self.touched);
        if self.ks.tracking() {
            self.tracked.extend(touched.iter().cloned());
        }
        touched
    }

    /// Takes the keys changed or found expired under these locks while some client tracked
    /// keys, for their invalidations.
    pub fn take_tracked(&mut self) -> Vec<(usize, Box<[u8]>)> {
        std::mem::take(&mut self.tracked)
    }

    /// Marks a key as possibly serving blocked clients (SWAPDB brings whole databases of
    /// keys into place at once).
    pub fn mark_ready(&mut self, db: usize, key: &[u8]) {
        self.ready.push((db, key.into()));
    }

    /// A view of database `db` through these locks, for one command executing at `now_ms`.
    pub fn db<'l>(&'l mut self, db: usize, now_ms: u64, stats: &'l mut KeyStats) -> Keys<'l, 'a> {
        let lfu = self.ks.lfu();
        let prefixes = self.ks.stat_prefixes();
        Keys {
            locked: self,
            db,
            now_ms,
            lru: match lfu {
                Some(_) => evict::lfu_new(now_ms),
                None => lru_clock(now_ms),
            },
            lfu,
            stats,
            prefixes,
        }
    }
}

/// The LRU clock Redis keeps per key: seconds, 24 bits.
#[inline]
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) & 0xFF_FFFF) as u32
}

/// Idle seconds of an entry, given the current time (OBJECT IDLETIME).
pub fn idle_seconds(entry_lru: u32, now_ms: u64) -> u64 {
    let now = lru_clock(now_ms);
    if now >= entry_lru {
        u64::from(now - entry_lru)
    } else {
        u64::from(now + (0xFF_FFFF - entry_lru))
    }
}

/// The keys of one database as a command sees them: expired keys are invisible (and deleted
/// on access), reads count keyspace hits and misses, accesses refresh the LRU clock.
///
/// Every lookup costs one table probe. A lookup that hands out a reference cannot also delete
/// through the same table (the borrow checker cannot see that the two paths are exclusive),
/// so an expired key found by [`Keys::read`], [`Keys::peek`] or [`Keys::write`] is counted as
/// expired and reported absent at once, and deleted when the command's [`Locked`] is dropped,
/// still under the same locks. Every other method deletes or replaces an expired key on the
/// spot.
///
/// Every key passed in must belong to a locked shard; touching another is a bug in the
/// command table's key specs and panics.
pub struct Keys<'l, 'a> {
    locked: &'l mut Locked<'a>,
    db: usize,
    now_ms: u64,
    /// The access bits of a new key (LRU clock, or a fresh LFU counter).
    lru: u32,
    /// The LFU parameters under an LFU policy: accesses then bump a counter instead of
    /// storing the clock.
    lfu: Option<Lfu>,
    stats: &'l mut KeyStats,
    /// The prefixes lookups count hits and misses for, if any are set.
    prefixes: Option<Arc<StatPrefixes>>,
}

impl Keys<'_, '_> {
    /// The command's notion of "now", fixed for its whole execution as in Redis.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The database index.
    pub fn db_index(&self) -> usize {
        self.db
    }

    /// Records keyspace event `event` of class `class` on `key`, if that class is enabled
    /// (see [`Keyspace::set_notify_classes`]).
    #[inline]
    pub fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if self.locked.ks.notifies(class) {
            self.stats.event(class, event, self.db, key);
        }
    }

    #[inline]
    fn db_for(&mut self, h: u64) -> &mut Db {
        db_of(self.locked, self.db, h)
    }

    /// Looks a key up for reading: counts a hit or miss and refreshes its LRU clock.
    #[inline]
    pub fn read(&mut self, key: &[u8]) -> Option<&Entry> {
        self.probe(key, true, true, false).map(|e| &*e)
    }

    /// Looks a key up for reading without refreshing its LRU clock, but counting a hit or
    /// miss (Redis's LOOKUP_NOTOUCH: TYPE, TTL, EXISTS, OBJECT…).
    pub fn read_no_touch(&mut self, key: &[u8]) -> Option<&Entry> {
        self.probe(key, false, true, false).map(|e| &*e)
    }

    /// Looks a key up without touching its LRU clock or the hit/miss counters (checks inside
    /// other commands, DEBUG).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Entry> {
        self.probe(key, false, false, false).map(|e| &*e)
    }

    /// The entry as stored, even if it has expired (which this does not act on): DEBUG
    /// OBJECT, which in Redis reads the dictionary directly.
    pub fn peek_stored(&mut self, key: &[u8]) -> Option<&Entry> {
        let h = hash_bytes(key);
        let Locked {
            ks, all, guards, ..
        } = &mut *self.locked;
        db_in(ks, *all, guards, self.db, h)
            .dict
            .get_mut(h, key)
            .map(|e| &*e)
    }

    /// Looks a key up for modification and refreshes its LRU clock. Like Redis's write
    /// lookups it counts no hit or miss.
    #[inline]
    pub fn write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        if self.watching() && self.probe(key, false, false, false).is_some() {
            self.note_touched(key);
        }
        self.probe(key, true, false, true)
    }

    /// True if any key is WATCHed or any client tracks keys, so changes must be recorded.
    #[inline]
    fn watching(&self) -> bool {
        self.locked.ks.recording()
    }

    /// Records a change to `key` for WATCH and tracking, when anyone watches or tracks.
    #[inline]
    fn note_touched(&mut self, key: &[u8]) {
        if self.watching() {
            self.locked.touched.push((self.db, key.into()));
        }
    }

    /// The access bits after an access to an entry with bits `old`.
    #[inline]
    fn accessed(lfu: Option<Lfu>, lru: u32, old: u32, now_ms: u64) -> u32 {
        match lfu {
            None => lru,
            Some(l) => l.touched(old, now_ms),
        }
    }

    /// The one table probe behind every lookup: `touch` refreshes the LRU clock, `count`
    /// counts a keyspace hit or miss. An expired key is reported absent and queued for
    /// deletion on drop (see the type's docs).
    /// `change` means the caller is about to modify the entry, so a running snapshot that
    /// has not captured it gets its current state first.
    #[inline]
    fn probe(&mut self, key: &[u8], touch: bool, count: bool, change: bool) -> Option<&mut Entry> {
        let h = hash_bytes(key);
        let (dbi, now) = (self.db, self.now_ms);
        let Keys {
            locked,
            lru,
            lfu,
            stats,
            prefixes,
            ..
        } = self;
        let Locked {
            ks,
            all,
            guards,
            stale,
            tracked,
            no_touch,
            ..
        } = &mut **locked;
        let db = db_in(ks, *all, guards, dbi, h);
        let found = match db.dict.get_mut(h, key) {
            Some(e) if e.is_expired(now) => {
                if !ks.expiry_paused(now) && note_stale(stale, dbi, h, key, now) {
                    stats.expired_keys += 1;
                    if let Some(log) = ks.expire_log() {
                        (log.deleted)(dbi, key);
                    }
                    if ks.tracking() {
                        tracked.push((dbi, key.into()));
                    }
                    if ks.notifies(notify_class::EXPIRED) {
                        stats.event(notify_class::EXPIRED, "expired", dbi, key);
                    }
                }
                None
            }
            Some(e) => {
                if touch && !*no_touch {
                    e.set_lru(Self::accessed(*lfu, *lru, e.lru(), now));
                }
                if change {
                    snapshot::preserve(&db.snap, db.mark, e);
                }
                Some(e)
            }
            None => None,
        };
        if count {
            if found.is_some() {
                stats.keyspace_hits += 1;
            } else {
                stats.keyspace_misses += 1;
                if ks.notifies(notify_class::KEY_MISS) {
                    stats.event(notify_class::KEY_MISS, "keymiss", dbi, key);
                }
            }
            if let Some(i) = prefixes.as_ref().and_then(|p| p.find(key)) {
                if found.is_some() {
                    stats.prefix_hits[i] += 1;
                } else {
                    stats.prefix_misses[i] += 1;
                }
            }
        }
        found
    }

    /// True if the key exists (and is not expired).
    pub fn contains(&mut self, key: &[u8]) -> bool {
        self.peek(key).is_some()
    }

    /// The type of a key, if it exists.
    pub fn kind(&mut self, key: &[u8]) -> Option<Kind> {
        self.peek(key).map(Entry::kind)
    }

    /// Counts a key found expired as it is deleted or replaced (unless a lookup already
    /// counted it).
    fn count_expired(&mut self, key: &[u8]) {
        if !self.locked.settle_stale(self.db, key) {
            self.stats.expired_keys += 1;
            if let Some(log) = self.locked.ks.expire_log() {
                (log.deleted)(self.db, key);
            }
            if self.locked.ks.tracking() {
                self.locked.tracked.push((self.db, key.into()));
            }
            self.notify(notify_class::EXPIRED, "expired", key);
        }
    }

    /// `old`, a removed or replaced entry, if it was live; an expired one is counted.
    #[inline]
    fn expired_live(&mut self, old: Option<Entry>) -> Option<Entry> {
        match old {
            Some(o) if o.is_expired(self.now_ms) => {
                self.count_expired(o.key());
                None
            }
            old => old,
        }
    }

    /// Records a stream deleted or replaced while clients are blocked, so blocked
    /// XREADGROUPs on it get their error (as Redis 7.0 signals such keys ready).
    #[inline]
    fn note_stream_gone(&mut self, old: Option<&Entry>) {
        if let Some(o) = old {
            if o.kind() == Kind::Stream && self.locked.ks.waiters.load(Relaxed) > 0 {
                self.locked.ready.push((self.db, o.key().into()));
            }
        }
    }

    /// Inserts or replaces a whole entry (a command's store: SORT STORE, *STORE, RESTORE…).
    /// Returns true if it replaced a live key, whose value is freed as
    /// `lazyfree-lazy-server-del` says.
    pub fn insert(&mut self, entry: Entry) -> bool {
        match self.replace(entry) {
            Some(old) => {
                self.locked.ks.free_replaced(old);
                true
            }
            None => false,
        }
    }

    /// Inserts or replaces a whole entry. Returns the previous live entry, for the caller
    /// to inspect (loaders report a duplicate key with it).
    pub fn replace(&mut self, mut entry: Entry) -> Option<Entry> {
        entry.set_lru(self.lru);
        self.note_touched(entry.key());
        let waiters = self.locked.ks.waiters.load(Relaxed) > 0;
        let wakes = matches!(entry.kind(), Kind::List | Kind::ZSet | Kind::Stream);
        if waiters && wakes {
            self.locked.ready.push((self.db, entry.key().into()));
        }
        let h = hash_bytes(entry.key());
        let new_key = self
            .locked
            .ks
            .notifies(notify_class::NEW)
            .then(|| Box::<[u8]>::from(entry.key()));
        let old = self.db_for(h).put(h, entry);
        let live = self.expired_live(old);
        if waiters && !wakes {
            self.note_stream_gone(live.as_ref());
        }
        if let (None, Some(key)) = (&live, new_key) {
            self.notify(notify_class::NEW, "new", &key);
        }
        live
    }

    /// Sets a string value: a new key, or an overwrite that keeps the TTL if `expire` is
    /// `Keep`. The fast path of SET: one hash, one probe, and an in-place copy when the size
    /// is unchanged. Overwriting an expired key counts as its expiry and keeps no TTL.
    pub fn set_string(&mut self, key: &[u8], val: &[u8], expire: Expire) {
        self.note_touched(key);
        let h = hash_bytes(key);
        let (now, lru, lfu, dbi) = (self.now_ms, self.lru, self.lfu, self.db);
        let db = db_of(self.locked, dbi, h);
        let mut was_expired = false;
        let mut created = false;
        let mut was_stream = false;
        let mut displaced = None;
        if let Some(e) = db.dict.get_mut(h, key) {
            snapshot::preserve(&db.snap, db.mark, e);
            was_expired = e.is_expired(now);
            was_stream = !was_expired && e.kind() == Kind::Stream;
            let expire = if was_expired {
                match expire {
                    Expire::Keep => Expire::Clear,
                    other => other,
                }
            } else {
                expire
            };
            displaced = e.set_string(val);
            let bits = if was_expired {
                lru
            } else {
                Self::accessed(lfu, lru, e.lru(), now)
            };
            e.set_lru(bits);
            let changed = match expire {
                Expire::At(at) => e.set_expire_at(Some(at)),
                Expire::Clear => e.set_expire_at(None),
                Expire::Keep => false,
            };
            if changed {
                if e.expire_at().is_some() {
                    db.expires += 1;
                } else {
                    db.expires -= 1;
                }
            }
        } else {
            let at = match expire {
                Expire::At(at) => {
                    db.expires += 1;
                    Some(at)
                }
                _ => None,
            };
            let mut e = Entry::new_string(key, val, at, lru);
            e.set_snap_mark(db.mark);
            db.dict.insert_new(h, e);
            created = true;
        }
        if was_stream && self.locked.ks.waiters.load(Relaxed) > 0 {
            self.locked.ready.push((dbi, key.into()));
        }
        if let Some(old) = displaced {
            if was_expired {
                self.locked.ks.free_expired(old);
            } else {
                self.locked.ks.free_replaced(old);
            }
        }
        if was_expired {
            self.count_expired(key);
        }
        if was_expired || created {
            self.notify(notify_class::NEW, "new", key);
        }
    }

    /// Deletes a key. Returns the removed live entry (an expired one is deleted and counted
    /// as expired, and `None` is returned).
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let h = hash_bytes(key);
        let old = self.db_for(h).take(h, key);
        let live = self.expired_live(old);
        if live.is_some() {
            self.note_touched(key);
            self.note_stream_gone(live.as_ref());
        }
        live
    }

    /// Deletes a key as a side effect of a command (a *STORE of an empty result, RESTORE
    /// REPLACE…): like [`Keys::remove`], but the value is freed as
    /// `lazyfree-lazy-server-del` says. Returns true if a live key was deleted.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        match self.remove(key) {
            Some(old) => {
                self.locked.ks.free_replaced(old);
                true
            }
            None => false,
        }
    }

    /// Deletes a key whose new deadline has already passed (EXPIRE with a time in the past,
    /// GETEX EXAT…): like [`Keys::remove`], but the value is freed as
    /// `lazyfree-lazy-expire` says, as Redis does. Returns true if a live key was deleted.
    pub fn delete_expired(&mut self, key: &[u8]) -> bool {
        match self.remove(key) {
            Some(old) => {
                self.locked.ks.free_expired(old);
                true
            }
            None => false,
        }
    }

    /// Sets or clears a key's TTL. Returns false if the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], at: Option<u64>) -> bool {
        if self.watching() && self.contains(key) {
            self.note_touched(key);
        }
        let h = hash_bytes(key);
        let now = self.now_ms;
        let db = self.db_for(h);
        let changed = match db.dict.get_mut(h, key) {
            None => return false,
            Some(e) if e.is_expired(now) => None,
            Some(e) => {
                snapshot::preserve(&db.snap, db.mark, e);
                Some(e.set_expire_at(at))
            }
        };
        match changed {
            None => {
                if let Some(Some(e)) = db.discard(h, key) {
                    self.locked.ks.free_expired(e);
                }
                self.count_expired(key);
                false
            }
            Some(changed) => {
                if changed {
                    if at.is_some() {
                        db.expires += 1;
                    } else {
                        db.expires -= 1;
                    }
                }
                true
            }
        }
    }

    /// Moves a key to database `to` (MOVE). Same shard, so no other lock is needed. Returns
    /// false if the source is missing or the target exists.
    pub fn move_to_db(&mut self, key: &[u8], to: usize) -> bool {
        let from = self.db;
        self.db = to;
        let target_exists = self.contains(key);
        self.db = from;
        if target_exists {
            return false;
        }
        let Some(e) = self.remove(key) else {
            return false;
        };
        self.db = to;
        self.insert(e);
        self.db = from;
        true
    }

    /// Number of keys in this database (needs every shard locked; counts keys whose TTL has
    /// passed but were not yet reclaimed, as Redis's DBSIZE does).
    pub fn len(&self) -> usize {
        debug_assert!(self.locked.all);
        self.locked
            .guards
            .iter()
            .map(|(_, g)| g.dbs[self.db].dict.len())
            .sum()
    }

    /// True if the database holds no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live key of this database (KEYS; needs every shard locked). Expired keys are
    /// skipped, not deleted, as Redis's KEYS does.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        debug_assert!(self.locked.all);
        let (now, db) = (self.now_ms, self.db);
        self.locked
            .guards
            .iter()
            .flat_map(move |(_, g)| g.dbs[db].dict.iter())
            .filter(move |e| !e.is_expired(now))
    }

    /// Deletes every key of this database (needs every shard locked). Returns the old
    /// contents so the caller can drop them outside the lock (FLUSHDB ASYNC) or here. While
    /// clients are blocked, its streams are marked ready (blocked XREADGROUPs get an error).
    pub fn flush(&mut self) -> Vec<KeyTable> {
        debug_assert!(self.locked.all);
        let db = self.db;
        self.locked.stale.retain(|s| s.db != db);
        let old: Vec<KeyTable> = self
            .locked
            .guards
            .iter_mut()
            .filter_map(|(_, g)| {
                let part = &mut g.dbs[db];
                part.expires = 0;
                part.sweep_cursor = 0;
                part.evict_cursor = 0;
                let dict = part.dict.take();
                snapshot::release_dict(&mut part.snap, part.mark, dict)
            })
            .collect();
        if self.locked.ks.waiters.load(Relaxed) > 0 {
            for d in &old {
                for e in d.iter().filter(|e| e.kind() == Kind::Stream) {
                    self.locked.ready.push((db, e.key().into()));
                }
            }
        }
        old
    }

    /// Swaps this database with database `other` (needs every shard locked).
    pub fn swap_with(&mut self, other: usize) {
        debug_assert!(self.locked.all);
        let db = self.db;
        for (_, g) in self.locked.guards.iter_mut() {
            g.dbs.swap(db, other);
        }
    }

    /// One step of SCAN over this database (needs every shard locked). The cursor packs the
    /// shard index in its low bits and the dict's own reverse-binary cursor above them, so
    /// Redis's guarantee carries over: every key present for the whole scan is returned.
    /// Calls `f` for live keys; expired keys met on the way are deleted, as Redis's SCAN
    /// does. Returns the next cursor (0 when done).
    pub fn scan(&mut self, cursor: u64, count: usize, mut f: impl FnMut(&Entry)) -> u64 {
        debug_assert!(self.locked.all);
        let nshards = self.locked.guards.len() as u64;
        let bits = nshards.trailing_zeros();
        let mut shard = cursor & (nshards - 1);
        let mut inner = cursor >> bits;
        let now = self.now_ms;
        let db = self.db;
        let mut visited = 0usize;
        let max_buckets = count.saturating_mul(10).max(10);
        let mut buckets = 0usize;
        let mut expired: Vec<Box<[u8]>> = Vec::new();
        let next = loop {
            let d = &self.locked.guards[shard as usize].1.dbs[db].dict;
            inner = d.scan(inner, |e| {
                visited += 1;
                if e.is_expired(now) {
                    expired.push(e.key().into());
                } else {
                    f(e);
                }
            });
            buckets += 1;
            if inner == 0 {
                shard += 1;
                if shard == nshards {
                    break 0;
                }
            }
            if visited >= count || buckets >= max_buckets {
                break (inner << bits) | shard;
            }
        };
        for key in expired {
            self.remove(&key);
        }
        next
    }

    /// A random live key (RANDOMKEY), or `None` if the database is empty. Needs every shard
    /// locked. Picks a shard weighted by size, then a random entry of it.
    pub fn random_key(&mut self, rng: &mut impl rand::Rng) -> Option<Vec<u8>> {
        debug_assert!(self.locked.all);
        let db = self.db;
        let now = self.now_ms;
        // Bounded retries so a database full of expired keys can't loop forever; Redis
        // likewise gives up and returns a possibly-expired key after many tries.
        for _ in 0..100 {
            let total: usize = self
                .locked
                .guards
                .iter()
                .map(|(_, g)| g.dbs[db].dict.len())
                .sum();
            if total == 0 {
                return None;
            }
            let mut pick = rng.gen_range(0..total);
            let shard = self
                .locked
                .guards
                .iter()
                .position(|(_, g)| {
                    let n = g.dbs[db].dict.len();
                    if pick < n {
                        true
                    } else {
                        pick -= n;
                        false
                    }
                })
                .expect("pick < total");
            let entry = self.locked.guards[shard].1.dbs[db].dict.random(rng)?;
            let key = entry.key().to_vec();
            if !entry.is_expired(now) {
                return Some(key);
            }
            self.remove(&key);
        }
        None
    }
}

/// The database `db` of the shard that holds hash `h`, among the locked shards.
#[inline]
fn db_of<'x>(locked: &'x mut Locked<'_>, db: usize, h: u64) -> &'x mut Db {
    db_in(locked.ks, locked.all, &mut locked.guards, db, h)
}

/// [`db_of`] on a [`Locked`]'s fields, for callers that also borrow its other fields.
#[inline]
fn db_in<'x>(
    ks: &Keyspace,
    all: bool,
    guards: &'x mut [(u16, MutexGuard<'_, Shard>)],
    db: usize,
    h: u64,
) -> &'x mut Db {
    let s = ks.shard_of_hash(h);
    let guard = if all {
        &mut guards[s].1
    } else {
        &mut guards
            .iter_mut()
            .find(|(i, _)| *i as usize == s)
            .expect("key outside the command's locked shards")
            .1
    };
    &mut guard.dbs[db]
}

/// What a write does to the key's TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expire {
    /// Remove any TTL (a plain SET).
    Clear,
    /// Keep the TTL the key had (SET KEEPTTL, SETRANGE, APPEND…).
    Keep,
    /// Expire at this unix time in milliseconds.
    At(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_for<'a>(ks: &'a Keyspace, keys: &[&[u8]]) -> Locked<'a> {
        let mut set = ShardSet::new();
        ks.add_shards(&mut set, keys.iter().copied());
        ks.lock(&set)
    }

    #[test]
    fn set_get_expire_and_counts() {
        let ks = Keyspace::new(16, 8);
        let mut stats = KeyStats::default();
        {
            let mut l = lock_for(&ks, &[b"a", b"b", b"zz"]);
            let mut k = l.db(0, 1000, &mut stats);
            k.set_string(b"a", b"1", Expire::Clear);
            k.set_string(b"b", b"2", Expire::At(2000));
            assert_eq!(k.read(b"a").and_then(Entry::string), Some(&b"1"[..]));
            assert!(k.read(b"zz").is_none());
        }
        assert_eq!(ks.db_sizes()[0], (2, 1));
        {
            let mut l = lock_for(&ks, &[b"b"]);
            let mut k = l.db(0, 2000, &mut stats);
            assert!(k.read(b"b").is_none(), "expired at its deadline");
        }
        assert_eq!(stats.expired_keys, 1);
        assert_eq!(ks.db_sizes()[0], (1, 0));
    }

    #[test]
    fn scan_returns_every_key_once_without_changes() {
        let ks = Keyspace::new(1, 4);
        let mut stats = KeyStats::default();
        let mut l = ks.lock_all();
        let mut k = l.db(0, 0, &mut stats);
        for i in 0..1000 {
            k.set_string(format!("k{i}").as_bytes(), b"v", Expire::Clear);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = k.scan(cursor, 10, |e| {
                seen.insert(e.key().to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
        assert_eq!(k.len(), 1000);
    }

    #[test]
    fn sweep_removes_expired_keys() {
        let ks = Keyspace::new(2, 2);
        let mut stats = KeyStats::default();
        {
            let mut l = ks.lock_all();
            let mut k = l.db(1, 0, &mut stats);
            for i in 0..100 {
                let at = if i % 2 == 0 {
                    Expire::At(50)
                } else {
                    Expire::Clear
                };
                k.set_string(format!("k{i}").as_bytes(), b"v", at);
            }
        }
        let removed: u64 = (0..2).map(|s| ks.sweep_expired(s, 100, 1 << 20)).sum();
        assert_eq!(removed, 50);
        assert_eq!(ks.db_sizes()[1], (50, 0));
    }

    #[test]
    fn move_and_swap() {
        let ks = Keyspace::new(4, 4);
        let mut stats = KeyStats::default();
        let mut l = ks.lock_all();
        let mut k = l.db(0, 0, &mut stats);
        k.set_string(b"x", b"1", Expire::At(99));
        assert!(k.move_to_db(b"x", 2));
        assert!(!k.contains(b"x"));
        k.swap_with(2);
        assert_eq!(k.peek(b"x").and_then(Entry::expire_at), Some(99));
    }

    #[test]
    fn expired_keys_are_invisible_and_reclaimed_on_unlock() {
        let ks = Keyspace::new(1, 1);
        let mut stats = KeyStats::default();
        {
            let mut l = ks.lock_all();
            let mut k = l.db(0, 0, &mut stats);
            for key in [&b"a"[..], b"b", b"c", b"d", b"e"] {
                k.set_string(key, b"v", Expire::At(10));
            }
        }
        let mut l = ks.lock_all();
        let mut k = l.db(0, 10, &mut stats);
        assert!(k.read(b"a").is_none());
        assert!(k.read(b"a").is_none(), "counted once");
        assert!(k.write(b"b").is_none());
        assert!(!k.contains(b"c"));
        assert_eq!(k.len(), 5, "deleted only when the locks are released");
        assert!(k.remove(b"d").is_none(), "not returned as removed");
        assert!(!k.set_expire(b"e", None));
        assert_eq!(k.len(), 3);
        k.set_string(b"b", b"new", Expire::Keep);
        drop(l);
        assert_eq!((stats.expired_keys, stats.keyspace_misses), (5, 2));
        assert_eq!(ks.db_sizes()[0], (1, 0), "only the new b is left");
    }

    #[test]
    fn overwriting_an_expired_key_starts_fresh() {
        let ks = Keyspace::new(1, 1);
        let mut stats = KeyStats::default();
        let mut l = ks.lock_all();
        let mut k = l.db(0, 100, &mut stats);
        k.set_string(b"s", b"old", Expire::At(50));
        k.set_string(b"s", b"new", Expire::Keep);
        assert_eq!(
            k.peek(b"s").and_then(Entry::expire_at),
            None,
            "no TTL revived"
        );
        assert_eq!(k.read(b"s").and_then(Entry::string), Some(&b"new"[..]));
        k.insert(Entry::new_string(b"i", b"1", Some(60), 0));
        assert!(!k.insert(Entry::new_string(b"i", b"2", None, 0)));
        assert_eq!(stats.expired_keys, 2);
        drop(l);
        assert_eq!(ks.db_sizes()[0], (2, 0));
    }

    #[test]
    fn lookups_count_hits_misses_and_touch_as_asked() {
        let ks = Keyspace::new(1, 1);
        let mut stats = KeyStats::default();
        let mut l = ks.lock_all();
        let mut k = l.db(0, 5_000, &mut stats);
        k.set_string(b"x", b"1", Expire::Clear);
        let mut k = l.db(0, 9_000, &mut stats);
        assert!(k.read_no_touch(b"x").is_some());
        assert!(k.read_no_touch(b"y").is_none());
        assert!(k.peek(b"x").is_some());
        assert_eq!(k.peek(b"x").map(Entry::lru), Some(lru_clock(5_000)));
        assert!(k.read(b"x").is_some());
        assert_eq!(k.peek(b"x").map(Entry::lru), Some(lru_clock(9_000)));
        assert_eq!((stats.keyspace_hits, stats.keyspace_misses), (2, 1));
    }

    #[test]
    fn sweep_finds_few_ttl_keys_among_many() {
        let ks = Keyspace::new(1, 1);
        let mut stats = KeyStats::default();
        {
            let mut l = ks.lock_all();
            let mut k = l.db(0, 0, &mut stats);
            for i in 0..20_000 {
                let at = if i % 1000 == 0 {
                    Expire::At(5)
                } else {
                    Expire::Clear
                };
                k.set_string(format!("k{i}").as_bytes(), b"v", at);
            }
        }
        // Small chunks: the sweep must keep going past chunks without TTL keys.
        let mut removed = 0;
        for _ in 0..30 {
            removed += ks.sweep_expired(0, 10, 100);
        }
        assert_eq!(removed, 20);
        assert_eq!(ks.db_sizes()[0], (19_980, 0));
    }

    #[test]
    fn scan_skips_and_reclaims_expired_keys() {
        let ks = Keyspace::new(1, 2);
        let mut stats = KeyStats::default();
        let mut l = ks.lock_all();
        let mut k = l.db(0, 0, &mut stats);
        for i in 0..50 {
            let at = if i < 10 { Expire::At(1) } else { Expire::Clear };
            k.set_string(format!("k{i}").as_bytes(), b"v", at);
        }
        let mut k = l.db(0, 2, &mut stats);
        let mut seen = 0;
        let mut cursor = 0;
        loop {
            cursor = k.scan(cursor, 1000, |_| seen += 1);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen, 40);
        assert_eq!(l.db(0, 2, &mut stats).len(), 40);
        assert_eq!(l.db(0, 2, &mut stats).iter().count(), 40);
    }
}
