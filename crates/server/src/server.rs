//! State shared by every worker thread: the keyspace, configuration, clients and statistics.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use flowkv_store::keyspace::MAX_STAT_PREFIXES;
use flowkv_store::{KeyStats, Keyspace};
use parking_lot::Mutex;

use crate::client::Registry;
use crate::commands::table;
use crate::config::Config;
use crate::net::{Msg, WorkerHandle};

/// A counter with a single writer (its worker thread) and any number of readers. Adding is a
/// plain load and store, not an atomic read-modify-write, so counting costs nothing on the
/// hot path; readers may see a value a few increments old, which INFO tolerates.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning thread may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Resets to zero (CONFIG RESETSTAT; racing with the owner may lose a few increments).
    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }
}

/// Per-command statistics (INFO commandstats).
#[derive(Default)]
pub struct CmdStat {
    pub calls: Counter,
    pub usec: Counter,
    pub rejected: Counter,
    pub failed: Counter,
    /// Latency distribution (`latency-tracking`; INFO latencystats, LATENCY HISTOGRAM).
    pub hist: crate::latency::Histogram,
}

/// Statistics one worker keeps; INFO sums them over workers.
pub struct WorkerStats {
    pub commands: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub expired_keys: Counter,
    /// Changes to the dataset (Redis's `dirty`: INFO rdb_changes_since_last_save).
    pub dirty: Counter,
    /// Socket reads and writes (INFO total_reads_processed / total_writes_processed).
    pub reads: Counter,
    pub writes: Counter,
    /// Keyspace hits and misses per `stats-key-prefixes` prefix.
    pub prefix_hits: [Counter; MAX_STAT_PREFIXES],
    pub prefix_misses: [Counter; MAX_STAT_PREFIXES],
    /// Indexed like [`crate::commands::Table::flat`].
    pub cmd: Box<[CmdStat]>,
}

impl WorkerStats {
    fn new() -> WorkerStats {
        WorkerStats {
            commands: Counter::default(),
            net_input_bytes: Counter::default(),
            net_output_bytes: Counter::default(),
            keyspace_hits: Counter::default(),
            keyspace_misses: Counter::default(),
            expired_keys: Counter::default(),
            dirty: Counter::default(),
            reads: Counter::default(),
            writes: Counter::default(),
            prefix_hits: Default::default(),
            prefix_misses: Default::default(),
            cmd: (0..table().flat.len())
                .map(|_| CmdStat::default())
                .collect(),
        }
    }

    /// Publishes a worker's local keyspace counters and clears them.
    pub fn absorb(&self, k: &mut KeyStats) {
        self.keyspace_hits.add(k.keyspace_hits);
        self.keyspace_misses.add(k.keyspace_misses);
        self.expired_keys.add(k.expired_keys);
        if k.prefix_hits
            .iter()
            .chain(&k.prefix_misses)
            .any(|&n| n != 0)
        {
            for (i, (&h, &m)) in k.prefix_hits.iter().zip(&k.prefix_misses).enumerate() {
                self.prefix_hits[i].add(u64::from(h));
                self.prefix_misses[i].add(u64::from(m));
            }
        }
        *k = KeyStats::default();
    }

    fn reset(&self) {
        for c in [
            &self.commands,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.expired_keys,
            &self.reads,
            &self.writes,
        ] {
            c.reset();
        }
        for c in self.prefix_hits.iter().chain(&self.prefix_misses) {
            c.reset();
        }
        for s in self.cmd.iter() {
            s.calls.reset();
            s.usec.reset();
            s.rejected.reset();
            s.failed.reset();
            s.hist.reset();
        }
    }
}

/// Counters shared by all threads (rare events: atomic adds are fine).
#[derive(Default)]
pub struct GlobalStats {
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Keys deleted by the active expiry cycle (lazily expired keys are counted per worker).
    pub active_expired_keys: AtomicU64,
    /// Error replies by code (INFO errorstats), e.g. "ERR" → 3.
    pub errors: Mutex<std::collections::BTreeMap<String, u64>>,
    pub total_error_replies: AtomicU64,
    /// Time the active expiry cycle has taken, in µs (INFO expire_cycle_cpu_milliseconds).
    pub expire_cycle_us: AtomicU64,
}

/// Everything the workers share.
pub struct Server {
    pub keyspace: Keyspace,
    pub config: Config,
    pub clients: Registry,
    pub workers: Box<[WorkerStats]>,
    pub stats: GlobalStats,
    /// 40 hex chars, new every start (INFO run_id).
    pub run_id: String,
    pub started: Instant,
    pub started_unix_ms: u64,
    /// Set when SHUTDOWN or a signal asked the server to stop.
    pub shutting_down: AtomicBool,
    /// Set by SHUTDOWN once it has settled saving (saved, or NOSAVE): a stop by signal
    /// leaves it unset, and the exit path saves if save points are configured.
    pub shutdown_save_settled: AtomicBool,
    /// Each worker's mailbox, by worker index (CLIENT KILL wake-ups, blocked clients'
    /// replies…).
    pub mailboxes: Mutex<Vec<WorkerHandle>>,
    /// Clients waiting in blocking commands.
    pub blocked: crate::blocking::Registry,
    /// CLIENT PAUSE state.
    pub pause: crate::pause::Pause,
    /// WATCHed keys.
    pub watches: crate::transaction::Watches,
    /// Wakes the acceptor thread (shutdown).
    pub main_waker: Mutex<Option<Arc<mio::Waker>>>,
    /// DEBUG SET-ACTIVE-EXPIRE: whether the cron deletes expired keys.
    pub active_expire: AtomicBool,
    /// DEBUG PAUSE-CRON: the periodic work (the background cron and each worker's client
    /// checks) stands still, as Redis's serverCron does, so tests can look at states it
    /// would change.
    pub cron_paused: AtomicBool,
    /// Open client connections (for `maxclients` and INFO connected_clients).
    pub connected: AtomicUsize,
    /// SLOWLOG's entries.
    pub slowlog: crate::commands::slowlog::SlowLog,
    /// The latency monitor's events (LATENCY LATEST/HISTORY…).
    pub latency: crate::latency::Monitor,
    /// Clients in MONITOR mode.
    pub monitors: crate::commands::monitor::Monitors,
    /// Background saves.
    pub snapshotter: crate::bgsave::Snapshotter,
    /// `stats-key-prefixes`: the walk counting keys and memory per prefix.
    pub prefix_stats: crate::prefix_stats::PrefixStats,
    /// The append-only file.
    pub aof: crate::aof::Aof,
    /// `maxmemory` eviction: settings, pool and counters.
    pub evictor: crate::evict::Evictor,
    /// ACL users and the ACL log.
    pub acl: crate::acl::Acl,
    /// Replication: replicas of this server, or the master it follows.
    pub replication: crate::replication::Replication,
}

impl Server {
    /// Builds the shared state for `threads` workers.
    pub fn new(config: Config, threads: usize) -> Server {
        let keyspace = Keyspace::new(config.databases(), (threads * 4).max(1));
        let srv = Server {
            keyspace,
            config,
            clients: Registry::default(),
            workers: (0..threads).map(|_| WorkerStats::new()).collect(),
            stats: GlobalStats::default(),
            run_id: random_hex(40),
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            shutting_down: AtomicBool::new(false),
            shutdown_save_settled: AtomicBool::new(false),
            mailboxes: Mutex::new(Vec::new()),
            blocked: Default::default(),
            pause: Default::default(),
            watches: Default::default(),
            main_waker: Mutex::new(None),
            connected: AtomicUsize::new(0),
            active_expire: AtomicBool::new(true),
            cron_paused: AtomicBool::new(false),
            slowlog: Default::default(),
            latency: Default::default(),
            monitors: Default::default(),
            snapshotter: Default::default(),
            prefix_stats: Default::default(),
            aof: Default::default(),
            evictor: Default::default(),
            acl: Default::default(),
            replication: Default::default(),
        };
        srv.keyspace
            .set_lazy_free(crate::commands::server::free_entry_async);
        crate::evict::refresh(&srv);
        crate::prefix_stats::refresh(&srv);
        srv
    }

    /// Counts an error reply for INFO errorstats.
    pub fn count_error(&self, code: &str) {
        self.stats.total_error_replies.fetch_add(1, Relaxed);
        *self
            .stats
            .errors
            .lock()
            .entry(code.to_string())
            .or_insert(0) += 1;
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&self) {
        for w in self.workers.iter() {
            w.reset();
        }
        let s = &self.stats;
        s.total_connections_received.store(0, Relaxed);
        s.rejected_connections.store(0, Relaxed);
        s.active_expired_keys.store(0, Relaxed);
        s.total_error_replies.store(0, Relaxed);
        s.expire_cycle_us.store(0, Relaxed);
        s.errors.lock().clear();
        crate::info::reset_rates(self);
        crate::commands::server::reset_lazyfree_stats();
        self.evictor.reset_stats();
    }

    /// Sum of one counter over all workers.
    pub fn sum(&self, f: impl Fn(&WorkerStats) -> u64) -> u64 {
        self.workers.iter().map(f).sum()
    }

    /// Asks the server to stop (SHUTDOWN, SIGTERM): the acceptor thread returns and the
    /// process exits after the shutdown work.
    pub fn request_shutdown(&self) {
        self.shutting_down.store(true, Relaxed);
        if let Some(w) = self.main_waker.lock().as_ref() {
            let _ = w.wake();
        }
    }

    /// Wakes every worker (they then look at kill flags and the shutdown flag).
    pub fn wake_workers(&self) {
        for w in self.mailboxes.lock().iter() {
            w.wake();
        }
    }

    /// Sends a copy of a message to every worker's event loop.
    pub fn send_to_workers(&self, m: impl Fn() -> Msg) {
        for w in self.mailboxes.lock().iter() {
            w.send(m());
        }
    }

    /// Sends a message to worker `worker`'s event loop.
    pub fn send_to_worker(&self, worker: usize, m: Msg) {
        if let Some(w) = self.mailboxes.lock().get(worker) {
            w.send(m);
        }
    }
}

/// The current unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The current unix time in microseconds.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The current unix time in nanoseconds: commands read it before and after they run.
#[inline]
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `n` random lower-case hex characters.
pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// Starts the background cron, `hz` times a second: the active expiry cycle and the `save`
/// rules. Each expiry step locks one shard at a time and looks at a bounded number of
/// buckets, so it never stalls commands.
pub fn spawn_cron(srv: Arc<Server>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("flowkv-cron".into())
        .spawn(move || {
            let mut shard = 0usize;
            loop {
                let hz = srv.config.hot.hz.load(Relaxed).clamp(1, 500);
                std::thread::sleep(std::time::Duration::from_millis(1000 / hz));
                if srv.cron_paused.load(Relaxed) {
                    continue;
                }
                crate::info::sample(&srv);
                crate::bgsave::cron(&srv);
                crate::prefix_stats::cron(&srv);
                crate::evict::cron(&srv);
                if srv.active_expire.load(Relaxed) {
                    let n = srv.keyspace.num_shards();
                    let started = Instant::now();
                    let now = unix_ms();
                    let mut removed = 0;
                    for _ in 0..n {
                        removed += srv.keyspace.sweep_expired(shard, now, 1000);
                        shard = (shard + 1) % n;
                    }
                    srv.stats.active_expired_keys.fetch_add(removed, Relaxed);
                    let took = started.elapsed();
                    srv.stats
                        .expire_cycle_us
                        .fetch_add(took.as_micros() as u64, Relaxed);
                    let threshold = srv.config.hot.latency_monitor_threshold.load(Relaxed);
                    srv.latency
                        .add_if_needed(threshold, "expire-cycle", took.as_millis() as u64);
                }
            }
        })?;
    Ok(())
}
