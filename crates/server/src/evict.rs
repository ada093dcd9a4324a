//! `maxmemory`: measuring used memory, evicting keys by the configured policy, and the OOM
//! decision before each command (Redis's performEvictions and processCommand's check).
//!
//! Used memory is jemalloc's `stats.allocated`, read as Redis reads its own counter: before
//! every command. Refreshing jemalloc's statistics costs tens of microseconds, so the cron
//! calibrates an offset against it every tick and, in between, each thread adds its own
//! exact allocation balance (jemalloc's per-thread `allocated`/`deallocated` counters, two
//! memory reads) to a shared total before each command: the reading is current to within
//! the command other threads are running.
//!
//! Eviction holds one mutex (the pool) and, while it samples or deletes, one shard lock at a
//! time: a worker evicting never blocks the other shards.

use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};

use flowkv_protocol::Args;
use flowkv_store::evict::{Lfu, Policy, Pool, Rank};
use flowkv_store::keyspace::{KeyEvent, RandomPick};
use flowkv_store::Entry;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;
use smallvec::SmallVec;

use crate::command::{flags, Command};
use crate::config::{notify, Config};
use crate::error::CmdError;
use crate::scripting::command_flags;
use crate::server::{unix_ms, Server};
use crate::transaction::MultiState;

/// Redis's OOM error line.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// `lazyfree-lazy-*` bits (see [`Evictor::lazy`]).
pub mod lazy {
    pub const EVICTION: u8 = 1 << 0;
    pub const EXPIRE: u8 = 1 << 1;
    pub const SERVER_DEL: u8 = 1 << 2;
    pub const USER_DEL: u8 = 1 << 3;
}

/// Values whose freeing is more work than this (elements) go to the lazy-free thread when
/// freeing lazily; smaller ones are cheaper to free at once (Redis's LAZYFREE_THRESHOLD).
pub const LAZYFREE_THRESHOLD: usize = 64;

/// The eviction settings, the pool and the counters.
pub struct Evictor {
    maxmemory: AtomicU64,
    /// Index into [`POLICIES`].
    policy: AtomicU8,
    samples: AtomicU32,
    tenacity: AtomicU32,
    lazy: AtomicU8,
    state: Mutex<State>,
    /// INFO stats evicted_keys.
    pub evicted_keys: AtomicU64,
    /// Sum of the allocation balances threads published (see the module docs).
    net: AtomicI64,
    /// jemalloc's `stats.allocated` minus `net` at the last calibration.
    offset: AtomicI64,
    /// When used memory went over `maxmemory` (unix ms; 0 while under), and the total
    /// milliseconds spent over it before (INFO total/current_eviction_exceeded_time).
    exceeded_since: AtomicU64,
    exceeded_total: AtomicU64,
}

/// The pool and where sampling continues.
struct State {
    pool: Pool,
    policy: Policy,
    next_shard: usize,
    next_db: usize,
    rng: StdRng,
}

const POLICIES: [Policy; 8] = [
    Policy::VolatileLru,
    Policy::VolatileLfu,
    Policy::VolatileRandom,
    Policy::VolatileTtl,
    Policy::AllkeysLru,
    Policy::AllkeysLfu,
    Policy::AllkeysRandom,
    Policy::NoEviction,
];

impl Default for Evictor {
    fn default() -> Evictor {
        Evictor {
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(7),
            samples: AtomicU32::new(5),
            tenacity: AtomicU32::new(10),
            lazy: AtomicU8::new(0),
            state: Mutex::new(State {
                pool: Pool::default(),
                policy: Policy::NoEviction,
                next_shard: 0,
                next_db: 0,
                rng: StdRng::from_entropy(),
            }),
            evicted_keys: AtomicU64::new(0),
            net: AtomicI64::new(0),
            offset: AtomicI64::new(0),
            exceeded_since: AtomicU64::new(0),
            exceeded_total: AtomicU64::new(0),
        }
    }
}

impl Evictor {
    /// `maxmemory` in bytes (0: no limit).
    #[inline]
    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Relaxed)
    }

    /// The `maxmemory-policy`.
    pub fn policy(&self) -> Policy {
        POLICIES[usize::from(self.policy.load(Relaxed)) % POLICIES.len()]
    }

    /// True if the `lazyfree-lazy-*` setting `bit` (see [`lazy`]) is on.
    #[inline]
    pub fn lazy(&self, bit: u8) -> bool {
        self.lazy.load(Relaxed) & bit != 0
    }

    /// (total, current) milliseconds spent over `maxmemory` (INFO stats).
    pub fn exceeded_ms(&self, now_ms: u64) -> (u64, u64) {
        let since = self.exceeded_since.load(Relaxed);
        let current = if since == 0 {
            0
        } else {
            now_ms.saturating_sub(since)
        };
        (self.exceeded_total.load(Relaxed) + current, current)
    }

    /// CONFIG RESETSTAT: clears evicted_keys and the exceeded-time total.
    pub fn reset_stats(&self) {
        self.evicted_keys.store(0, Relaxed);
        self.exceeded_total.store(0, Relaxed);
    }

    /// Records whether used memory is over the limit now, for the exceeded-time stats.
    fn note_exceeded(&self, over: bool, now_ms: u64) {
        let since = self.exceeded_since.load(Relaxed);
        if over && since == 0 {
            self.exceeded_since.store(now_ms.max(1), Relaxed);
        } else if !over && since != 0 {
            self.exceeded_since.store(0, Relaxed);
            self.exceeded_total
                .fetch_add(now_ms.saturating_sub(since), Relaxed);
        }
    }
}

/// Re-reads the eviction, LFU and lazy-free settings (at start and after CONFIG SET).
pub fn refresh(srv: &Server) {
    let cfg: &Config = &srv.config;
    let ev = &srv.evictor;
    let max = cfg.get_u64("maxmemory");
    if max != 0 && ev.maxmemory.load(Relaxed) == 0 {
        // The cron calibrates only while a limit is set: align the running total now, so
        // the commands right after the limit is set see the real usage.
        calibrate(srv);
    }
    ev.maxmemory.store(max, Relaxed);
    let policy = cfg
        .get("maxmemory-policy")
        .and_then(|p| Policy::from_name(&p))
        .unwrap_or(Policy::NoEviction);
    let idx = POLICIES.iter().position(|&p| p == policy).unwrap_or(7);
    ev.policy.store(idx as u8, Relaxed);
    ev.samples.store(
        cfg.get_u64("maxmemory-samples").clamp(1, 64) as u32,
        Relaxed,
    );
    ev.tenacity.store(
        cfg.get_u64("maxmemory-eviction-tenacity").min(100) as u32,
        Relaxed,
    );
    let mut bits = 0;
    for (name, bit) in [
        ("lazyfree-lazy-eviction", lazy::EVICTION),
        ("lazyfree-lazy-expire", lazy::EXPIRE),
        ("lazyfree-lazy-server-del", lazy::SERVER_DEL),
        ("lazyfree-lazy-user-del", lazy::USER_DEL),
    ] {
        if cfg.get_bool(name) {
            bits |= bit;
        }
    }
    ev.lazy.store(bits, Relaxed);
    srv.keyspace.set_lazy_expire(bits & lazy::EXPIRE != 0);
    srv.keyspace
        .set_lazy_server_del(bits & lazy::SERVER_DEL != 0);
    let lfu = (policy.rank() == Rank::Lfu).then(|| Lfu {
        log_factor: cfg.get_u64("lfu-log-factor").min(u64::from(u32::MAX >> 1)) as u32,
        decay_minutes: cfg.get_u64("lfu-decay-time").min(u64::from(u32::MAX >> 1)) as u32,
    });
    srv.keyspace.set_lfu(lfu);
    let mut st = ev.state.lock();
    if st.policy != policy {
        st.policy = policy;
        st.pool.clear();
    }
}

/// This thread's jemalloc allocation counters and the balance it last published.
struct ThreadMeter {
    allocated: tikv_jemalloc_ctl::thread::ThreadLocal<u64>,
    deallocated: tikv_jemalloc_ctl::thread::ThreadLocal<u64>,
    published: i64,
}

thread_local! {
    static METER: RefCell<Option<ThreadMeter>> = const { RefCell::new(None) };
}

/// Adds this thread's allocations since its last call to the shared total; returns the
/// change (bytes allocated minus freed by this thread since then).
pub fn publish(srv: &Server) -> i64 {
    METER.with(|m| {
        let mut m = m.borrow_mut();
        if m.is_none() {
            let allocated = tikv_jemalloc_ctl::thread::allocatedp::read();
            let deallocated = tikv_jemalloc_ctl::thread::deallocatedp::read();
            if let (Ok(allocated), Ok(deallocated)) = (allocated, deallocated) {
                *m = Some(ThreadMeter {
                    allocated,
                    deallocated,
                    published: 0,
                });
            }
        }
        let Some(t) = m.as_mut() else { return 0 };
        let balance = t.allocated.get().wrapping_sub(t.deallocated.get()) as i64;
        let delta = balance.wrapping_sub(t.published);
        t.published = balance;
        srv.evictor.net.fetch_add(delta, Relaxed);
        delta
    })
}

/// Used memory as eviction sees it (see the module docs).
pub fn used_memory(srv: &Server) -> u64 {
    let ev = &srv.evictor;
    (ev.offset.load(Relaxed) + ev.net.load(Relaxed)).max(0) as u64
}

/// Aligns the running total with jemalloc's statistics (each cron tick while a limit is
/// set); returns the fresh reading.
pub fn calibrate(srv: &Server) -> u64 {
    publish(srv);
    let used = crate::info::used_memory();
    let ev = &srv.evictor;
    ev.offset.store(used as i64 - ev.net.load(Relaxed), Relaxed);
    used
}

/// What [`perform`] achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Under the limit (or no limit).
    Ok,
    /// Still over the limit when the time budget ran out; the cron goes on.
    Running,
    /// Over the limit and nothing the policy allows is left to evict.
    Fail,
}

/// The time one eviction call may take (`maxmemory-eviction-tenacity`, Redis's curve:
/// 50 µs per step up to 10, then 15% more per step; 100 is unlimited).
fn time_limit(tenacity: u32) -> Option<Duration> {
    match tenacity {
        0..=10 => Some(Duration::from_micros(50 * u64::from(tenacity))),
        11..=99 => Some(Duration::from_micros(
            (500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64,
        )),
        _ => None,
    }
}

/// A replica with `replica-ignore-maxmemory yes` leaves eviction to its master (whose
/// DELs it receives), as Redis does.
fn replica_ignores(srv: &Server) -> bool {
    srv.replication.replica.is_replica() && srv.config.get_bool("replica-ignore-maxmemory")
}

/// Evicts keys until used memory is under `maxmemory` (Redis's performEvictions).
/// "evicted" events go to `events` when that class is enabled.
pub fn perform(srv: &Server, events: &mut Vec<KeyEvent>) -> Outcome {
    let ev = &srv.evictor;
    let max = ev.maxmemory();
    // CLIENT PAUSE keeps the dataset constant: no eviction, and so no OOM either. Neither
    // while a script runs past busy-reply-threshold: it holds the keys (Redis's
    // isSafeToPerformEvictions).
    if max == 0 || srv.pause.in_force() || crate::scripting::busy() || replica_ignores(srv) {
        return Outcome::Ok;
    }
    publish(srv);
    let used = used_memory(srv);
    if used <= max {
        if ev.exceeded_since.load(Relaxed) != 0 {
            ev.note_exceeded(false, unix_ms());
        }
        return Outcome::Ok;
    }
    let now_ms = unix_ms();
    ev.note_exceeded(true, now_ms);
    let policy = ev.policy();
    if policy == Policy::NoEviction {
        return Outcome::Fail;
    }
    let started = Instant::now();
    let limit = time_limit(ev.tenacity.load(Relaxed));
    let samples = ev.samples.load(Relaxed) as usize;
    let notify = srv.keyspace.notifies(notify::EVICTED);
    let mut st = ev.state.lock();
    // Another worker may have evicted while this one waited for the pool.
    publish(srv);
    let mut to_free = used_memory(srv).saturating_sub(max) as i64;
    // A call over the limit usually evicts one key or two: kept inline, they cost no
    // allocation on the write path.
    let mut touched: SmallVec<[(usize, Box<[u8]>); 2]> = SmallVec::new();
    let mut lazy_freed: Vec<Entry> = Vec::new();
    let mut evicted = 0u64;
    let mut outcome = Outcome::Ok;
    while to_free > 0 {
        let Some((db, key)) = pick(srv, &mut st, policy, samples, now_ms) else {
            outcome = Outcome::Fail;
            break;
        };
        // Measures what the deletion really frees on this thread, as Redis does.
        publish(srv);
        let lazy_evict = ev.lazy(lazy::EVICTION);
        let propagate = || {
            if crate::propagate::active() {
                let del: &[u8] = if lazy_evict { b"UNLINK" } else { b"DEL" };
                crate::propagate::emit(db, &[del, &key]);
            }
        };
        let Some(gone) = srv
            .keyspace
            .evict_key(db, &key, policy.volatile(), propagate)
        else {
            continue;
        };
        match gone.entry {
            Some(e) if lazy_evict && e.free_effort() > LAZYFREE_THRESHOLD => lazy_freed.push(e),
            other => drop(other),
        }
        to_free += publish(srv);
        evicted += 1;
        if notify {
            events.push(KeyEvent {
                class: notify::EVICTED,
                event: "evicted",
                db,
                key: key.clone(),
            });
        }
        touched.push((db, key));
        if evicted.is_multiple_of(16) {
            if !lazy_freed.is_empty() {
                crate::commands::server::free_entries_async(std::mem::take(&mut lazy_freed));
                if calibrate(srv) <= max {
                    break;
                }
            }
            if limit.is_some_and(|l| started.elapsed() >= l) {
                outcome = Outcome::Running;
                break;
            }
        }
    }
    drop(st);
    if !lazy_freed.is_empty() {
        crate::commands::server::free_entries_async(lazy_freed);
    }
    ev.evicted_keys.fetch_add(evicted, Relaxed);
    if !touched.is_empty() {
        srv.watches.touch(&touched);
        if srv.keyspace.tracking() {
            srv.tracking().invalidate(&touched, None, None);
        }
    }
    outcome
}

/// Consecutive sampling rounds that may find only vanished candidates before eviction
/// gives up for this call.
const MAX_EMPTY_PICKS: usize = 64;

/// The next key to evict: the best pool candidate after one more sampling round (or a
/// random key for the random policies). `None` if no shard holds a key the policy allows.
fn pick(
    srv: &Server,
    st: &mut State,
    policy: Policy,
    samples: usize,
    now_ms: u64,
) -> Option<(usize, Box<[u8]>)> {
    let ks = &srv.keyspace;
    let nshards = ks.num_shards();
    let ndbs = ks.num_dbs();
    if policy.rank() == Rank::Random {
        for _ in 0..MAX_EMPTY_PICKS {
            let mut eligible = false;
            for _ in 0..nshards {
                st.next_shard = (st.next_shard + 1) % nshards;
                st.next_db = (st.next_db + 1) % ndbs;
                let State {
                    next_shard,
                    next_db,
                    rng,
                    ..
                } = st;
                match ks.evict_random(*next_shard, policy.volatile(), *next_db, rng) {
                    RandomPick::Found(db, key) => return Some((db, key)),
                    RandomPick::Missed => eligible = true,
                    RandomPick::Empty => {}
                }
            }
            if !eligible {
                return None;
            }
        }
        return None;
    }
    for _ in 0..MAX_EMPTY_PICKS {
        let mut eligible = 0;
        for _ in 0..nshards {
            st.next_shard = (st.next_shard + 1) % nshards;
            let State {
                pool,
                next_shard,
                rng,
                ..
            } = st;
            eligible = ks.evict_populate(*next_shard, policy, samples, now_ms, pool, rng);
            if eligible > 0 {
                break;
            }
        }
        if eligible == 0 {
            st.pool.clear();
            return None;
        }
        if let Some(best) = st.pool.pop_best() {
            return Some(best);
        }
    }
    None
}

/// The OOM check before a command (Redis's processCommand): evicts if over the limit, and
/// refuses the command if memory is still over it and the command may grow the dataset.
/// Also records the outcome for scripts ([`oom_at_start`]).
pub fn before_command(
    srv: &Server,
    cmd: &Command,
    args: Args<'_>,
    multi: Option<&MultiState>,
    events: &mut Vec<KeyEvent>,
) -> Result<(), CmdError> {
    if srv.evictor.maxmemory() == 0 {
        PRE_COMMAND_OOM.with(|c| c.set(false));
        return Ok(());
    }
    if crate::scripting::busy() {
        // Nothing is evicted (see `perform`); and on the script's own thread (the busy
        // pump) the script's OOM state must stay as it was.
        return Ok(());
    }
    let oom = perform(srv, events) == Outcome::Fail;
    PRE_COMMAND_OOM.with(|c| c.set(oom));
    if !oom {
        return Ok(());
    }
    let name = cmd.name;
    let control = matches!(name, "exec" | "discard" | "quit" | "reset");
    let denyoom = |c: &Command, a: Args<'_>| command_flags(c, a) & flags::DENYOOM != 0;
    let queued_denyoom =
        || multi.is_some_and(|m| m.queued.iter().any(|q| denyoom(q.cmd, q.args.as_args())));
    let reject =
        denyoom(cmd, args) || (name == "exec" && queued_denyoom()) || (multi.is_some() && !control);
    if reject {
        Err(CmdError::msg(OOM))
    } else {
        Ok(())
    }
}

thread_local! {
    /// Whether memory was over the limit with nothing to evict when the current command
    /// started (Redis's pre_command_oom_state).
    static PRE_COMMAND_OOM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Whether the script running on this thread declared `allow-oom`.
    static SCRIPT_ALLOWS_OOM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Records whether the script starting on this thread declared `allow-oom` (Redis's
/// SCRIPT_ALLOW_OOM: then nothing it runs is refused for memory).
pub fn set_script_allows_oom(allow: bool) {
    SCRIPT_ALLOWS_OOM.with(|c| c.set(allow));
}

/// True if the command running on this thread started out of memory.
pub fn oom_at_start() -> bool {
    PRE_COMMAND_OOM.with(|c| c.get())
}

/// For a command a script runs: the OOM error if the script started out of memory, has
/// not written yet (`dirty` is 0) and this command may grow the dataset.
pub fn script_write_denied(cmd: &Command, dirty: u64) -> Option<CmdError> {
    let allowed = SCRIPT_ALLOWS_OOM.with(|c| c.get());
    (!allowed && dirty == 0 && cmd.has(flags::DENYOOM) && oom_at_start())
        .then(|| CmdError::msg(OOM))
}

/// The cron's part: keeps `used_memory` calibrated and, while over the limit, evicts for up
/// to a few milliseconds (Redis's eviction time proc).
pub fn cron(srv: &Server) {
    if srv.evictor.maxmemory() == 0 {
        return;
    }
    calibrate(srv);
    let started = Instant::now();
    let mut events = Vec::new();
    while perform(srv, &mut events) == Outcome::Running
        && started.elapsed() < Duration::from_millis(5)
    {}
    if !events.is_empty() {
        crate::notify::publish(srv, &mut events, None, None);
    }
}
