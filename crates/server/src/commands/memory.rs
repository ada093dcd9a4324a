//! MEMORY: what a key costs, where the server's memory goes, and the allocator's own view.

use flowkv_protocol::Args;

use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

const ALL_SHARDS_SPECIAL: &[&str] = &[
    "nondeterministic_output",
    "request_policy:all_shards",
    "response_policy:special",
];

pub static COMMANDS: &[Command] = &[Command::new("memory", -2, Group::Server)
    .doc(
        "A container for memory diagnostics commands",
        "4.0.0",
        "Depends on subcommand.",
    )
    .subcommands(&[
        Command::new("doctor", 2, Group::Server)
            .flags(READS_ALL_SHARDS)
            .acl(acl::SLOW)
            .tips(ALL_SHARDS_SPECIAL)
            .handler(doctor)
            .doc("Outputs memory problems report", "4.0.0", "O(1)"),
        Command::new("malloc-stats", 2, Group::Server)
            .acl(acl::SLOW)
            .tips(ALL_SHARDS_SPECIAL)
            .handler(malloc_stats)
            .doc(
                "Show allocator internal stats",
                "4.0.0",
                "Depends on how much memory is allocated, could be slow",
            ),
        Command::new("purge", 2, Group::Server)
            .acl(acl::SLOW)
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
            .handler(purge)
            .doc(
                "Ask the allocator to release memory",
                "4.0.0",
                "Depends on how much memory is allocated, could be slow",
            ),
        Command::new("stats", 2, Group::Server)
            .flags(READS_ALL_SHARDS)
            .acl(acl::SLOW)
            .tips(ALL_SHARDS_SPECIAL)
            .handler(stats)
            .doc("Show memory usage details", "4.0.0", "O(1)"),
        Command::new("usage", -3, Group::Server)
            .flags(READONLY)
            .keys(2, 2, 1)
            .key_specs(&[ks::key_at(2, ks::RO)])
            .handler(usage)
            .doc(
                "Estimate the memory usage of a key",
                "4.0.0",
                "O(N) where N is the number of samples.",
            ),
        Command::new("help", 2, Group::Server)
            .flags(LOADING | STALE)
            .handler(help)
            .doc(
                "Show helpful text about the different subcommands",
                "4.0.0",
                "O(1)",
            ),
    ])];

/// Bytes jemalloc really hands out for a request of `n` bytes: its size classes are
/// multiples of 8/16 up to 128, then four classes per power of two.
pub fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            let step = (n.next_power_of_two() / 8).max(16);
            n.div_ceil(step) * step
        }
    }
}

/// A key's share of the keyspace table: a 64-byte bucket holds 4 to 8 entry pointers, plus
/// overflow buckets (see flowkv_store::table).
pub(crate) const NODE_BYTES: usize = 12;

/// MEMORY USAGE key [SAMPLES count]: the node, the key/TTL/inline-value allocation and the
/// value's own heap, rounded to allocator size classes. Strings are measured exactly, so
/// SAMPLES is accepted and validated but has nothing to sample yet.
fn usage(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match args.len() {
        3 => {}
        5 if args.get(3).eq_ignore_ascii_case(b"samples") => {
            let n = flowkv_store::num::parse_i64(args.get(4)).ok_or(CmdError::NotInteger)?;
            if n < 0 {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    }
    let (mut keys, out) = ctx.keys_out();
    match keys.peek(args.get(2)) {
        None => out.null(),
        Some(e) => out.int((NODE_BYTES + alloc_size(e.heap_bytes())) as i64),
    }
    Ok(())
}

/// INFO memory's fields by name (MEMORY STATS and DOCTOR report from the same numbers).
fn info_memory(ctx: &Ctx<'_>) -> Figures {
    let sel = crate::info::Selection::parse([&b"memory"[..]].into_iter());
    let held = ctx.locked.as_ref().map(|l| l.db_sizes());
    Figures(
        crate::info::render(ctx.srv, &sel, held)
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// INFO memory's fields by name, read as numbers (0 when absent).
struct Figures(std::collections::HashMap<String, String>);

impl Figures {
    fn num(&self, k: &str) -> i64 {
        self.0.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    fn ratio(&self, k: &str) -> f64 {
        self.0.get(k).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    }
}

/// Keys and keys with a TTL per database (through the locks a script or EXEC holds).
fn db_sizes(ctx: &Ctx<'_>) -> Vec<(usize, usize)> {
    match ctx.locked.as_ref() {
        Some(l) => l.db_sizes(),
        None => ctx.srv.keyspace.db_sizes(),
    }
}

/// Bytes of a keyspace table holding `n` keys: a power-of-two bucket array of pointers.
fn table_bytes(n: usize) -> u64 {
    if n == 0 {
        0
    } else {
        (n.next_power_of_two() * 8) as u64
    }
}

/// One integer figure of MEMORY STATS.
fn kv(out: &mut flowkv_protocol::Reply<'_>, name: &str, v: i64) {
    out.bulk(name.as_bytes());
    out.int(v);
}

/// One ratio or percentage of MEMORY STATS.
fn kd(out: &mut flowkv_protocol::Reply<'_>, name: &str, v: f64) {
    out.bulk(name.as_bytes());
    out.double(v);
}

/// MEMORY STATS: where the memory goes, as Redis's map of named figures.
fn stats(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let info = info_memory(ctx);
    let (num, ratio) = (|k: &str| info.num(k), |k: &str| info.ratio(k));
    let dbs: Vec<(usize, (usize, usize))> = db_sizes(ctx)
        .into_iter()
        .enumerate()
        .filter(|(_, (keys, _))| *keys > 0)
        .collect();
    let keys: usize = dbs.iter().map(|(_, (k, _))| k).sum();
    let used = num("used_memory");
    let startup = num("used_memory_startup");
    let tables: u64 = dbs
        .iter()
        .map(|(_, (k, e))| table_bytes(*k) + table_bytes(*e))
        .sum();
    let overhead = num("used_memory_overhead") + tables as i64;
    let dataset = (used - overhead).max(0);
    let out = &mut ctx.out;
    out.map(27 + dbs.len());
    kv(out, "peak.allocated", num("used_memory_peak"));
    kv(out, "total.allocated", used);
    kv(out, "startup.allocated", startup);
    kv(out, "replication.backlog", num("mem_replication_backlog"));
    kv(out, "clients.slaves", num("mem_clients_slaves"));
    kv(out, "clients.normal", num("mem_clients_normal"));
    kv(out, "cluster.links", num("mem_cluster_links"));
    kv(out, "aof.buffer", num("mem_aof_buffer"));
    kv(out, "lua.caches", num("used_memory_scripts_eval"));
    kv(out, "functions.caches", num("used_memory_functions"));
    for (db, (k, e)) in &dbs {
        out.bulk(format!("db.{db}").as_bytes());
        out.map(3);
        out.bulk(b"overhead.hashtable.main");
        out.int(table_bytes(*k) as i64);
        out.bulk(b"overhead.hashtable.expires");
        out.int(table_bytes(*e) as i64);
        out.bulk(b"overhead.hashtable.slot-to-keys");
        out.int(0);
    }
    kv(out, "overhead.total", overhead);
    kv(out, "keys.count", keys as i64);
    kv(
        out,
        "keys.bytes-per-key",
        if keys == 0 {
            0
        } else {
            (used - startup).max(0) / keys as i64
        },
    );
    kv(out, "dataset.bytes", dataset);
    let pct = |a: i64, b: i64| {
        if b <= 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    kd(out, "dataset.percentage", pct(dataset, used - startup));
    kd(out, "peak.percentage", pct(used, num("used_memory_peak")));
    kv(out, "allocator.allocated", num("allocator_allocated"));
    kv(out, "allocator.active", num("allocator_active"));
    kv(out, "allocator.resident", num("allocator_resident"));
    kd(
        out,
        "allocator-fragmentation.ratio",
        ratio("allocator_frag_ratio"),
    );
    kv(
        out,
        "allocator-fragmentation.bytes",
        num("allocator_frag_bytes"),
    );
    kd(out, "allocator-rss.ratio", ratio("allocator_rss_ratio"));
    kv(out, "allocator-rss.bytes", num("allocator_rss_bytes"));
    kd(out, "rss-overhead.ratio", ratio("rss_overhead_ratio"));
    kv(out, "rss-overhead.bytes", num("rss_overhead_bytes"));
    kd(out, "fragmentation", ratio("mem_fragmentation_ratio"));
    kv(out, "fragmentation.bytes", num("mem_fragmentation_bytes"));
    Ok(())
}

/// Below this much used memory the doctor has too little to judge (Redis's 5 MB).
const DOCTOR_MIN_BYTES: i64 = 5 << 20;

/// MEMORY DOCTOR: a short report of likely memory problems, from the same figures.
fn doctor(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let info = info_memory(ctx);
    let (num, ratio) = (|k: &str| info.num(k), |k: &str| info.ratio(k));
    let used = num("used_memory");
    let mut findings: Vec<String> = Vec::new();
    if used < DOCTOR_MIN_BYTES {
        let text = "The instance holds too little data for a memory report; check back once it \
                    holds more than 5 MB.";
        ctx.out.verbatim(b"txt", text.as_bytes());
        return Ok(());
    }
    let peak = num("used_memory_peak");
    if peak > used + used / 2 {
        findings.push(format!(
            "* Peak memory: the peak ({peak} bytes) is more than 150% of what is used now: \
             memory freed since may not have been returned to the system (MEMORY PURGE)."
        ));
    }
    if ratio("allocator_frag_ratio") > 1.1 && num("allocator_frag_bytes") > 10 << 20 {
        findings.push(
            "* High allocator fragmentation: active pages hold much more than the allocated \
             bytes. It shrinks as keys are rewritten or deleted."
                .to_string(),
        );
    }
    if ratio("rss_overhead_ratio") > 1.1 && num("rss_overhead_bytes") > 10 << 20 {
        findings.push(
            "* High process RSS overhead: the process holds memory outside the allocator."
                .to_string(),
        );
    }
    let max = num("maxmemory");
    if max > 0 && used > max {
        findings.push(format!(
            "* Over maxmemory: {used} bytes used with a limit of {max}; check \
             maxmemory-policy and evicted_keys."
        ));
    }
    if num("mem_clients_normal") > 200 << 20 {
        findings.push(
            "* Big client buffers: normal clients hold over 200 MB of query/output buffers."
                .to_string(),
        );
    }
    let text = if findings.is_empty() {
        "No memory problems found.".to_string()
    } else {
        format!("Memory report:\n\n{}\n", findings.join("\n\n"))
    };
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// MEMORY MALLOC-STATS: jemalloc's global statistics (the figures `malloc_stats_print`
/// opens its report with).
fn malloc_stats(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    use tikv_jemalloc_ctl::stats;
    let _ = tikv_jemalloc_ctl::epoch::advance();
    let figures = [
        ("allocated", stats::allocated::read()),
        ("active", stats::active::read()),
        ("metadata", stats::metadata::read()),
        ("resident", stats::resident::read()),
        ("mapped", stats::mapped::read()),
        ("retained", stats::retained::read()),
    ];
    let mut text = format!(
        "___ Begin jemalloc statistics ___\nVersion: \"{}\"\nArenas: {}\n",
        tikv_jemalloc_ctl::version::read().unwrap_or("unknown"),
        tikv_jemalloc_ctl::arenas::narenas::read().unwrap_or(0)
    );
    let line: Vec<String> = figures
        .iter()
        .map(|(name, v)| format!("{name}: {}", v.as_ref().copied().unwrap_or(0)))
        .collect();
    text.push_str(&format!("Allocated: {}\n", line.join(", ")));
    text.push_str("--- End jemalloc statistics ---\n");
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// MEMORY PURGE: returns the allocator's dirty pages to the system at once, by setting
/// each arena's decay times to zero (which purges) and back.
fn purge(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    use tikv_jemalloc_ctl::{Access, AsName};
    let arenas = tikv_jemalloc_ctl::arenas::narenas::read().unwrap_or(0);
    for i in 0..arenas {
        for kind in ["dirty", "muzzy"] {
            let name = format!("arena.{i}.{kind}_decay_ms\0");
            let key = name.as_bytes().name();
            if let Ok(old) = Access::<isize>::update(key, 0) {
                let _ = Access::<isize>::write(key, old);
            }
        }
    }
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    const LINES: &[&str] = &[
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ];
    ctx.help(LINES);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::alloc_size;

    #[test]
    fn jemalloc_classes() {
        assert_eq!(alloc_size(5), 8);
        assert_eq!(alloc_size(17), 32);
        assert_eq!(alloc_size(116), 128);
        assert_eq!(alloc_size(129), 160);
        assert_eq!(alloc_size(33_016), 40_960);
    }
}
