//! INFO: the server's state as Redis's text report, `# Section` headers over `field:value\r\n`
//! lines, with Redis 7.0's section names, field names and units, so monitoring tools and the
//! clients that parse INFO (redis_version feature checks, exporters) read it unchanged.
//!
//! Every value printed is real. Where a subsystem does not exist yet (AOF, replication) the
//! report states its true idle state (`aof_enabled:0`, `role:master`, `connected_slaves:0`);
//! fields whose value flowkv cannot know are left out rather than invented.

use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::commands::table;
use crate::server::{unix_us, Server};

/// The Redis version whose behaviour flowkv matches; clients enable features by it.
pub const REDIS_VERSION: &str = "7.0.15";

/// Writes one section's lines.
type Writer = fn(&Server, &mut Lines);

/// One INFO section: its header, the names that select it, whether `INFO` / `INFO default`
/// includes it, and its writer. In output order, which is Redis's regardless of the order the
/// client names sections in.
struct Section {
    header: &'static str,
    names: &'static [&'static str],
    default: bool,
    write: Writer,
}

const SECTIONS: &[Section] = &[
    sec("Server", &["server"], true, server),
    sec("Clients", &["clients"], true, clients),
    sec("Memory", &["memory"], true, memory),
    sec("Persistence", &["persistence"], true, persistence),
    sec("Stats", &["stats"], true, stats),
    sec(
        "Replication",
        &["replication"],
        true,
        crate::replication::info,
    ),
    sec("CPU", &["cpu"], true, cpu),
    // No modules exist: the section is present and empty, as on a Redis without modules.
    sec("Modules", &["module_list", "modules"], true, |_, _| {}),
    sec("Commandstats", &["commandstats"], false, commandstats),
    sec("Errorstats", &["errorstats"], true, errorstats),
    sec("Latencystats", &["latencystats"], false, latencystats),
    sec("Cluster", &["cluster"], true, cluster),
    sec("Keyspace", &["keyspace"], true, keyspace),
    // flowkv's own: per-prefix statistics (`stats-key-prefixes`), in `all` / `everything`.
    sec(
        "Keyspace_prefixes",
        &["keyspace_prefixes"],
        false,
        keyspace_prefixes,
    ),
];

const fn sec(
    header: &'static str,
    names: &'static [&'static str],
    default: bool,
    write: Writer,
) -> Section {
    Section {
        header,
        names,
        default,
        write,
    }
}

/// The sections one INFO call asked for.
pub struct Selection {
    default: bool,
    all: bool,
    names: Vec<String>,
}

impl Selection {
    /// Parses INFO's arguments (after the command name): section names, case-insensitive,
    /// plus `default`, `all` and `everything`; none means `default`. Unknown names select
    /// nothing, as in Redis.
    pub fn parse<'a>(args: impl ExactSizeIterator<Item = &'a [u8]>) -> Selection {
        let mut sel = Selection {
            default: args.len() == 0,
            all: false,
            names: Vec::new(),
        };
        for a in args {
            let name = String::from_utf8_lossy(a).to_ascii_lowercase();
            match name.as_str() {
                "default" => sel.default = true,
                // No module sections exist, so "everything" is "all".
                "all" | "everything" => sel.all = true,
                _ => sel.names.push(name),
            }
        }
        sel
    }

    fn wants(&self, s: &Section) -> bool {
        self.all
            || (self.default && s.default)
            || s.names.iter().any(|n| self.names.iter().any(|m| m == n))
    }
}

/// The INFO text for a selection: each wanted section once, in Redis's order, separated by
/// an empty line.
///
/// `db_sizes` gives the keyspace section's counts when the caller already holds every shard
/// lock; otherwise the section locks the shards one at a time itself.
pub fn render(srv: &Server, sel: &Selection, db_sizes: Option<Vec<(usize, usize)>>) -> String {
    let mut out = Lines(String::with_capacity(4096), db_sizes);
    for s in SECTIONS.iter().filter(|s| sel.wants(s)) {
        if !out.0.is_empty() {
            out.0.push_str("\r\n");
        }
        let _ = write!(out.0, "# {}\r\n", s.header);
        (s.write)(srv, &mut out);
    }
    out.0
}

/// The report being built (and the key counts per database, for the keyspace section).
pub struct Lines(String, Option<Vec<(usize, usize)>>);

impl Lines {
    /// Adds a `name:value` line.
    pub fn field(&mut self, name: &str, value: impl Display) {
        let _ = write!(self.0, "{name}:{value}\r\n");
    }
}

fn server(srv: &Server, l: &mut Lines) {
    let now_us = unix_us();
    let uptime = srv.started.elapsed().as_secs();
    let hz = srv.config.hot.hz.load(Relaxed);
    l.field("redis_version", REDIS_VERSION);
    l.field("flowkv_version", env!("CARGO_PKG_VERSION"));
    l.field("redis_git_sha1", "00000000");
    l.field("redis_git_dirty", 0);
    l.field("redis_mode", "standalone");
    l.field("os", os_name());
    l.field("arch_bits", usize::BITS);
    l.field("monotonic_clock", "POSIX clock_gettime");
    l.field("multiplexing_api", multiplexing_api());
    l.field("atomicvar_api", "c11-builtin");
    l.field("process_id", std::process::id());
    l.field("process_supervised", "no");
    l.field("run_id", &srv.run_id);
    l.field("tcp_port", srv.config.get_u64("port"));
    l.field("server_time_usec", now_us);
    l.field("uptime_in_seconds", uptime);
    l.field("uptime_in_days", uptime / 86_400);
    l.field("hz", hz);
    l.field("configured_hz", hz);
    l.field(
        "lru_clock",
        flowkv_store::keyspace::lru_clock(now_us / 1000),
    );
    l.field(
        "executable",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    l.field(
        "config_file",
        srv.config
            .file
            .as_ref()
            .map(|p| {
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            })
            .unwrap_or_default(),
    );
    // Every worker thread does its own I/O and runs its commands: there are no separate
    // I/O threads in Redis's sense.
    l.field("io_threads_active", 0);
    l.field("flowkv_threads", srv.workers.len());
}

/// "Linux 6.1.0 x86_64", as Redis prints uname's sysname, release and machine.
fn os_name() -> &'static str {
    static OS: OnceLock<String> = OnceLock::new();
    OS.get_or_init(|| {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
        match (
            read("/proc/sys/kernel/ostype"),
            read("/proc/sys/kernel/osrelease"),
        ) {
            (Ok(sys), Ok(rel)) => format!("{sys} {rel} {}", std::env::consts::ARCH),
            _ => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    })
}

/// The readiness API mio uses on this platform.
fn multiplexing_api() -> &'static str {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        "epoll"
    } else if cfg!(windows) {
        "iocp"
    } else {
        "kqueue"
    }
}

fn clients(srv: &Server, l: &mut Lines) {
    l.field("connected_clients", srv.clients.len());
    l.field("cluster_connections", 0);
    l.field("maxclients", srv.config.hot.maxclients.load(Relaxed));
    let all = srv.clients.all();
    let max_in = all.iter().map(|c| c.qbuf.load(Relaxed)).max().unwrap_or(0);
    let max_out = all.iter().map(|c| c.obuf.load(Relaxed)).max().unwrap_or(0);
    l.field("client_recent_max_input_buffer", max_in);
    l.field("client_recent_max_output_buffer", max_out);
    let (blocked, timed) = srv.blocked.counts();
    l.field("blocked_clients", blocked + srv.pause.postponed());
    l.field("tracking_clients", srv.tracking().info(srv).0);
    l.field("clients_in_timeout_table", timed);
}

/// The process's resident set size in bytes (VmRSS of /proc/self/status).
fn rss_bytes() -> u64 {
    proc_kb_field("/proc/self/status", "VmRSS:")
}

/// A `Name:   1234 kB` field of a /proc file, in bytes (0 if absent).
fn proc_kb_field(path: &str, name: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `used_memory` when the server started (INFO used_memory_startup).
static STARTUP_MEMORY: AtomicU64 = AtomicU64::new(0);

/// Records the start-up footprint; called once the server is built, before loading data.
pub fn record_startup_memory() {
    STARTUP_MEMORY.store(used_memory(), Relaxed);
}

/// jemalloc's active and resident bytes (after [`used_memory`] advanced its epoch); the
/// process RSS for both if they can't be read.
fn allocator_active_resident() -> (u64, u64) {
    let active = tikv_jemalloc_ctl::stats::active::read().map(|n| n as u64);
    let resident = tikv_jemalloc_ctl::stats::resident::read().map(|n| n as u64);
    match (active, resident) {
        (Ok(a), Ok(r)) => (a, r),
        _ => (rss_bytes(), rss_bytes()),
    }
}

/// The highest `used_memory` seen by [`used_memory`] (INFO calls and [`sample`]).
static PEAK_MEMORY: AtomicU64 = AtomicU64::new(0);

/// Redis's `used_memory`, the bytes the server has allocated (jemalloc's `stats.allocated`;
/// the resident set size if that can't be read). Also updates the peak.
pub fn used_memory() -> u64 {
    // jemalloc's counters are cached per epoch: advance it so `allocated` is current.
    // `allocated` also counts the freed blocks threads keep in their caches for reuse
    // (tcache): leaving them out gives what the data and buffers hold, as Redis's counter
    // does, and what the per-thread balances eviction adds up move with (see `evict`).
    let used = match tikv_jemalloc_ctl::epoch::advance()
        .and_then(|_| tikv_jemalloc_ctl::stats::allocated::read())
    {
        Ok(n) => n.saturating_sub(tcache_bytes()) as u64,
        Err(_) => rss_bytes(),
    };
    PEAK_MEMORY.fetch_max(used, Relaxed);
    used
}

/// Bytes held in the threads' caches of freed blocks, over all arenas (0 if unknown).
fn tcache_bytes() -> usize {
    // tikv-jemalloc-ctl has no typed accessor for this statistic. SAFETY: `raw::read` is
    // unsafe only because a wrong `T` could be built from the value's bytes; this mallctl's
    // value is a `size_t` (jemalloc's manual), `usize` is that type and every bit pattern is
    // a valid `usize`, and jemalloc refuses a read whose length differs (EINVAL → 0 here).
    // 4096 is MALLCTL_ARENAS_ALL, the sum over arenas; the name is NUL-terminated.
    unsafe { tikv_jemalloc_ctl::raw::read::<usize>(b"stats.arenas.4096.tcache_bytes\0") }
        .unwrap_or(0)
}

fn memory(srv: &Server, l: &mut Lines) {
    let used = used_memory();
    let rss = rss_bytes();
    let peak = PEAK_MEMORY.load(Relaxed).max(used);
    let maxmemory = srv.config.get_u64("maxmemory");
    let total = proc_kb_field("/proc/meminfo", "MemTotal:");
    l.field("used_memory", used);
    l.field("used_memory_human", human(used));
    l.field("used_memory_rss", rss);
    l.field("used_memory_rss_human", human(rss));
    l.field("used_memory_peak", peak);
    l.field("used_memory_peak_human", human(peak));
    l.field(
        "used_memory_peak_perc",
        format!("{:.2}%", ratio(used, peak) * 100.0),
    );
    let startup = STARTUP_MEMORY.load(Relaxed).min(used);
    // What the server holds besides the data: its start-up footprint and the clients'
    // buffers, as far as they are known.
    let clients_mem = srv.clients.total_mem() as u64;
    let overhead = (startup + clients_mem).min(used);
    let dataset = used - overhead;
    l.field("used_memory_overhead", overhead);
    l.field("used_memory_startup", startup);
    l.field("used_memory_dataset", dataset);
    l.field(
        "used_memory_dataset_perc",
        format!(
            "{:.2}%",
            ratio(dataset, used.saturating_sub(startup)) * 100.0
        ),
    );
    let (active, resident) = allocator_active_resident();
    l.field("allocator_allocated", used);
    l.field("allocator_active", active);
    l.field("allocator_resident", resident);
    l.field("total_system_memory", total);
    l.field("total_system_memory_human", human(total));
    let (lua, functions_vm, scripts, cached) = crate::scripting::info_memory();
    let (functions, libraries) = crate::scripting::function_counts();
    l.field("used_memory_lua", lua);
    l.field("used_memory_vm_eval", lua);
    l.field("used_memory_lua_human", human(lua as u64));
    l.field("used_memory_scripts_eval", scripts);
    l.field("number_of_cached_scripts", cached);
    l.field("number_of_functions", functions);
    l.field("number_of_libraries", libraries);
    l.field("used_memory_vm_functions", functions_vm);
    l.field("used_memory_vm_total", lua + functions_vm);
    l.field(
        "used_memory_vm_total_human",
        human((lua + functions_vm) as u64),
    );
    l.field("used_memory_functions", 0);
    l.field("used_memory_scripts", scripts);
    l.field("used_memory_scripts_human", human(scripts as u64));
    l.field("maxmemory", maxmemory);
    l.field("maxmemory_human", human(maxmemory));
    l.field(
        "maxmemory_policy",
        srv.config.get("maxmemory-policy").unwrap_or_default(),
    );
    l.field(
        "allocator_frag_ratio",
        format!("{:.2}", ratio(active, used)),
    );
    l.field("allocator_frag_bytes", active as i64 - used as i64);
    l.field(
        "allocator_rss_ratio",
        format!("{:.2}", ratio(resident, active)),
    );
    l.field("allocator_rss_bytes", resident as i64 - active as i64);
    l.field("rss_overhead_ratio", format!("{:.2}", ratio(rss, resident)));
    l.field("rss_overhead_bytes", rss as i64 - resident as i64);
    l.field(
        "mem_fragmentation_ratio",
        format!("{:.2}", ratio(rss, used)),
    );
    l.field("mem_fragmentation_bytes", rss as i64 - used as i64);
    for f in [
        "mem_not_counted_for_evict",
        "mem_replication_backlog",
        "mem_total_replication_buffers",
        "mem_clients_slaves",
    ] {
        l.field(f, 0);
    }
    l.field("mem_clients_normal", clients_mem);
    l.field("mem_cluster_links", 0);
    l.field("mem_aof_buffer", 0);
    l.field("mem_allocator", allocator_name());
    l.field("active_defrag_running", 0);
    let (pending, freed) = crate::commands::server::lazyfree_counts();
    l.field("lazyfree_pending_objects", pending);
    l.field("lazyfreed_objects", freed);
}

/// `a / b`, 0 when `b` is 0.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// "jemalloc-5.3.0": the allocator and its release (jemalloc's version string carries a git
/// suffix after the release, which Redis does not print).
fn allocator_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| match tikv_jemalloc_ctl::version::read() {
        Ok(v) => format!("jemalloc-{}", v.split('-').next().unwrap_or(v)),
        Err(_) => "jemalloc".to_string(),
    })
}

/// Bytes as Redis's `*_human` fields print them: `943.27K`, `1.50G`, `12B`.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut d = n as f64 / 1024.0;
    for unit in UNITS {
        if d < 1024.0 {
            return format!("{d:.2}{unit}");
        }
        d /= 1024.0;
    }
    format!("{n}B")
}

fn persistence(srv: &Server, l: &mut Lines) {
    let p = &crate::commands::persist::STATS;
    let (loaded, expired) = p.last_load();
    l.field(
        "loading",
        u8::from(crate::commands::persist::LOADING.active()),
    );
    l.field("async_loading", 0);
    // Snapshots never fork: no copy-on-write pages to report.
    l.field("current_cow_peak", 0);
    l.field("current_cow_size", 0);
    l.field("current_cow_size_age", 0);
    l.field("current_fork_perc", "0.00");
    l.field("current_save_keys_processed", 0);
    l.field("current_save_keys_total", 0);
    l.field("rdb_changes_since_last_save", p.changes_since_save(srv));
    l.field(
        "rdb_bgsave_in_progress",
        u8::from(srv.snapshotter.in_progress()),
    );
    l.field("rdb_last_save_time", last_save_secs(srv));
    l.field("rdb_last_bgsave_status", p.last_status());
    l.field("rdb_last_bgsave_time_sec", p.last_save_time_sec());
    l.field(
        "rdb_current_bgsave_time_sec",
        srv.snapshotter.current_secs(),
    );
    l.field("rdb_saves", p.saves());
    l.field("rdb_last_cow_size", 0);
    l.field("rdb_last_load_keys_expired", expired);
    l.field("rdb_last_load_keys_loaded", loaded);
    for (name, value) in crate::aof::info_fields(srv) {
        l.field(name, value);
    }
    for (name, value) in crate::commands::persist::LOADING.info_fields() {
        l.field(name, value);
    }
    l.field("module_fork_in_progress", 0);
    l.field("module_fork_last_cow_size", 0);
}

/// The metrics behind the `instantaneous_*` fields.
#[derive(Clone, Copy)]
enum Metric {
    Commands = 0,
    NetInput = 1,
    NetOutput = 2,
}

/// Samples averaged per metric (Redis's STATS_METRIC_SAMPLES).
const RATE_SAMPLES: usize = 16;

/// The shortest interval between two samples (Redis samples every 100 ms).
const SAMPLE_EVERY_MS: u64 = 100;

/// One metric's recent per-second rates, as Redis keeps them: the cron samples the total
/// every 100 ms, turns the growth since the last sample into a rate and keeps the last 16;
/// the reported rate is their average.
#[derive(Clone, Copy)]
struct Rates {
    last_ms: u64,
    last_total: u64,
    idx: usize,
    samples: [u64; RATE_SAMPLES],
}

impl Rates {
    const fn new() -> Rates {
        Rates {
            last_ms: 0,
            last_total: 0,
            idx: 0,
            samples: [0; RATE_SAMPLES],
        }
    }

    fn track(&mut self, now_ms: u64, total: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        let grown = total.saturating_sub(self.last_total);
        self.samples[self.idx] = (grown * 1000).checked_div(elapsed).unwrap_or(0);
        self.idx = (self.idx + 1) % RATE_SAMPLES;
        self.last_ms = now_ms;
        self.last_total = total;
    }

    fn average(&self) -> u64 {
        self.samples.iter().sum::<u64>() / RATE_SAMPLES as u64
    }
}

static RATES: Mutex<[Rates; 3]> = Mutex::new([Rates::new(); 3]);

/// The current totals of the rate metrics.
fn totals(srv: &Server) -> [u64; 3] {
    [
        srv.sum(|w| w.commands.get()),
        srv.sum(|w| w.net_input_bytes.get()),
        srv.sum(|w| w.net_output_bytes.get()),
    ]
}

/// The cron's sampling step (called every cron tick): samples the rate metrics when 100 ms
/// have passed since the last sample, and the memory peak (unless a `maxmemory` limit is
/// set: then the eviction cron's calibration reads used memory, and so the peak, in the
/// same tick, and refreshing jemalloc's statistics is the cron's most expensive step).
pub fn sample(srv: &Server) {
    let now = crate::server::unix_ms();
    let mut rates = RATES.lock();
    if now.saturating_sub(rates[0].last_ms) >= SAMPLE_EVERY_MS {
        for (r, total) in rates.iter_mut().zip(totals(srv)) {
            r.track(now, total);
        }
    }
    drop(rates);
    if srv.evictor.maxmemory() == 0 {
        used_memory();
    }
}

/// Restarts the rates (CONFIG RESETSTAT), from the current totals.
pub fn reset_rates(srv: &Server) {
    let now = crate::server::unix_ms();
    let mut rates = RATES.lock();
    for (r, total) in rates.iter_mut().zip(totals(srv)) {
        *r = Rates::new();
        r.last_ms = now;
        r.last_total = total;
    }
}

/// A metric's instantaneous rate per second.
fn rate(m: Metric) -> u64 {
    RATES.lock()[m as usize].average()
}

fn stats(srv: &Server, l: &mut Lines) {
    let st = &srv.stats;
    let [commands, net_in, net_out] = totals(srv);
    l.field(
        "total_connections_received",
        st.total_connections_received.load(Relaxed),
    );
    l.field("total_commands_processed", commands);
    l.field("instantaneous_ops_per_sec", rate(Metric::Commands));
    l.field("total_net_input_bytes", net_in);
    l.field("total_net_output_bytes", net_out);
    // No replication link exists: no replication traffic.
    l.field("total_net_repl_input_bytes", 0);
    l.field("total_net_repl_output_bytes", 0);
    l.field(
        "instantaneous_input_kbps",
        format!("{:.2}", rate(Metric::NetInput) as f64 / 1024.0),
    );
    l.field(
        "instantaneous_output_kbps",
        format!("{:.2}", rate(Metric::NetOutput) as f64 / 1024.0),
    );
    l.field("instantaneous_input_repl_kbps", "0.00");
    l.field("instantaneous_output_repl_kbps", "0.00");
    l.field(
        "rejected_connections",
        st.rejected_connections.load(Relaxed),
    );
    l.field("sync_full", 0);
    l.field("sync_partial_ok", 0);
    l.field("sync_partial_err", 0);
    l.field("expired_keys", expired_keys(srv));
    l.field("expired_stale_perc", "0.00");
    l.field("expired_time_cap_reached_count", 0);
    l.field(
        "expire_cycle_cpu_milliseconds",
        st.expire_cycle_us.load(Relaxed) / 1000,
    );
    l.field("evicted_keys", srv.evictor.evicted_keys.load(Relaxed));
    l.field("evicted_clients", srv.clients.evicted.load(Relaxed));
    let (exceeded_total, exceeded_now) = srv.evictor.exceeded_ms(crate::server::unix_ms());
    l.field("total_eviction_exceeded_time", exceeded_total);
    l.field("current_eviction_exceeded_time", exceeded_now);
    l.field("keyspace_hits", srv.sum(|w| w.keyspace_hits.get()));
    l.field("keyspace_misses", srv.sum(|w| w.keyspace_misses.get()));
    let (channels, patterns, shard_channels) = srv.pubsub().counts();
    l.field("pubsub_channels", channels);
    l.field("pubsub_patterns", patterns);
    l.field("pubsubshard_channels", shard_channels);
    // Snapshots never fork.
    l.field("latest_fork_usec", 0);
    l.field("total_forks", 0);
    // MIGRATE does not exist here: no cached connections to other servers.
    l.field("migrate_cached_sockets", 0);
    l.field("slave_expires_tracked_keys", 0);
    for f in [
        "active_defrag_hits",
        "active_defrag_misses",
        "active_defrag_key_hits",
        "active_defrag_key_misses",
        "total_active_defrag_time",
        "current_active_defrag_time",
    ] {
        l.field(f, 0);
    }
    let (_, keys, items, prefixes) = srv.tracking().info(srv);
    l.field("tracking_total_keys", keys);
    l.field("tracking_total_items", items);
    l.field("tracking_total_prefixes", prefixes);
    l.field("unexpected_error_replies", 0);
    l.field("total_error_replies", st.total_error_replies.load(Relaxed));
    l.field("dump_payload_sanitizations", 0);
    l.field("total_reads_processed", srv.sum(|w| w.reads.get()));
    l.field("total_writes_processed", srv.sum(|w| w.writes.get()));
    // Every worker does its own I/O: none is handed to separate I/O threads.
    l.field("io_threaded_reads_processed", 0);
    l.field("io_threaded_writes_processed", 0);
    l.field("reply_buffer_shrinks", 0);
    l.field("reply_buffer_expands", 0);
}

/// Keys deleted because they expired, lazily or by the active cycle.
pub fn expired_keys(srv: &Server) -> u64 {
    srv.sum(|w| w.expired_keys.get()) + srv.stats.active_expired_keys.load(Relaxed)
}

/// CPU seconds (user, system, children's user, children's system) from /proc/self/stat,
/// whose times are in USER_HZ ticks, 100 per second on every Linux ABI.
fn cpu_times() -> [f64; 4] {
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name in parentheses (which may contain spaces); utime is
    // field 14 of the file, the 12th after the name.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|v| v.parse::<f64>().unwrap_or(0.0) / USER_HZ)
        .collect();
    let get = |i: usize| f.get(i).copied().unwrap_or(0.0);
    [get(0), get(1), get(2), get(3)]
}

fn cpu(_srv: &Server, l: &mut Lines) {
    let [user, sys, cuser, csys] = cpu_times();
    l.field("used_cpu_sys", format!("{sys:.6}"));
    l.field("used_cpu_user", format!("{user:.6}"));
    l.field("used_cpu_sys_children", format!("{csys:.6}"));
    l.field("used_cpu_user_children", format!("{cuser:.6}"));
}

fn commandstats(srv: &Server, l: &mut Lines) {
    for (id, (name, _)) in table().flat.iter().enumerate() {
        let calls = srv.sum(|w| w.cmd[id].calls.get());
        let usec = srv.sum(|w| w.cmd[id].usec.get());
        let rejected = srv.sum(|w| w.cmd[id].rejected.get());
        let failed = srv.sum(|w| w.cmd[id].failed.get());
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        l.field(
            &format!("cmdstat_{name}"),
            format_args!(
                "calls={calls},usec={usec},usec_per_call={:.2},rejected_calls={rejected},failed_calls={failed}",
                ratio(usec, calls)
            ),
        );
    }
}

fn errorstats(srv: &Server, l: &mut Lines) {
    for (code, count) in srv.stats.errors.lock().iter() {
        l.field(&format!("errorstat_{code}"), format_args!("count={count}"));
    }
}

/// The percentiles `latency-tracking-info-percentiles` asks for.
pub fn tracked_percentiles(srv: &Server) -> Vec<f64> {
    srv.config
        .get("latency-tracking-info-percentiles")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A percentile as Redis names it: `50`, `99.9` (no trailing zeros).
pub fn percentile_label(p: f64) -> String {
    let s = format!("{p:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn latencystats(srv: &Server, l: &mut Lines) {
    if !srv.config.hot.latency_tracking.load(Relaxed) {
        return;
    }
    let percentiles = tracked_percentiles(srv);
    for (id, (name, _)) in table().flat.iter().enumerate() {
        let totals = crate::latency::Totals::of(srv.workers.iter().map(|w| &w.cmd[id].hist));
        if totals.count() == 0 {
            continue;
        }
        let mut value = String::new();
        for (i, &p) in percentiles.iter().enumerate() {
            if i > 0 {
                value.push(',');
            }
            let us = totals.percentile(p) as f64 / 1000.0;
            let _ = write!(value, "p{}={us:.3}", percentile_label(p));
        }
        l.field(&format!("latency_percentiles_usec_{name}"), value);
    }
}

fn cluster(_srv: &Server, l: &mut Lines) {
    l.field("cluster_enabled", 0);
}

fn keyspace(srv: &Server, l: &mut Lines) {
    let sizes = l.1.take().unwrap_or_else(|| srv.keyspace.db_sizes());
    for (db, (keys, expires)) in sizes.into_iter().enumerate() {
        if keys > 0 {
            // avg_ttl is not tracked; Redis also reports 0 until its sampler has estimated it.
            l.field(
                &format!("db{db}"),
                format_args!("keys={keys},expires={expires},avg_ttl=0"),
            );
        }
    }
}

fn keyspace_prefixes(srv: &Server, l: &mut Lines) {
    for (name, value) in crate::prefix_stats::info(srv) {
        l.field(&name, value);
    }
}

/// Unix seconds of the last successful save or load; the start time before any (Redis's
/// LASTSAVE before its first save).
pub fn last_save_secs(srv: &Server) -> u64 {
    crate::commands::persist::STATS.last_save_secs(srv.started_unix_ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(args: &[&str]) -> Selection {
        Selection::parse(args.iter().map(|a| a.as_bytes()))
    }

    fn headers(sel: &Selection) -> Vec<&'static str> {
        SECTIONS
            .iter()
            .filter(|s| sel.wants(s))
            .map(|s| s.header)
            .collect()
    }

    #[test]
    fn selection() {
        let default = headers(&sel(&[]));
        assert_eq!(default.len(), 11);
        assert!(!default.contains(&"Commandstats"));
        assert_eq!(headers(&sel(&["default"])), default);
        assert_eq!(headers(&sel(&["all"])).len(), SECTIONS.len());
        assert_eq!(headers(&sel(&["EVERYTHING"])).len(), SECTIONS.len());
        assert_eq!(headers(&sel(&["commandSTATS"])), ["Commandstats"]);
        assert_eq!(
            headers(&sel(&["keyspace", "cpu", "cpu"])),
            ["CPU", "Keyspace"]
        );
        assert!(headers(&sel(&["sentinel"])).is_empty());
        assert_eq!(headers(&sel(&["module_list"])), ["Modules"]);
    }

    #[test]
    fn human_units() {
        assert_eq!(human(12), "12B");
        assert_eq!(human(965_904), "943.27K");
        assert_eq!(human(3 << 29), "1.50G");
    }

    #[test]
    fn rates_average_sixteen_samples() {
        let mut r = Rates::new();
        r.track(1000, 0);
        for i in 1..=16u64 {
            r.track(1000 + i * 100, i * 50);
        }
        // 50 commands per 100 ms in every sample.
        assert_eq!(r.average(), 500);
        r.track(2700, 850);
        assert_eq!(r.average(), 500);
    }
}
