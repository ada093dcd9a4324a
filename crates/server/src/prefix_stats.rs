//! Per-prefix statistics, which Redis doesn't have: `stats-key-prefixes "session: cache:"`
//! keeps, for each prefix, the keyspace hits and misses of lookups of keys starting with it,
//! and how many keys start with it and how much memory they take. Shown in
//! `INFO keyspace_prefixes` and as labelled `/metrics` series.
//!
//! - Hits and misses are exact: the keyspace counts them in the lookup it does anyway (the
//!   worker's `KeyStats`), one prefix match per counted lookup while prefixes are set.
//! - Keys and memory come from a background walk: the cron visits the keyspace a bounded
//!   number of buckets per tick (one shard lock at a time), sized so a full pass takes about
//!   [`PASS_SECS`] seconds, and publishes each complete pass. They are as of the last pass.
//!
//! With no prefixes set, lookups pay one atomic load per command and the cron does nothing.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use flowkv_store::keyspace::{StatPrefixes, MAX_STAT_PREFIXES};
use parking_lot::Mutex;

use crate::commands::memory::{alloc_size, NODE_BYTES};
use crate::server::Server;

/// Target duration of one walk over the keyspace.
const PASS_SECS: u64 = 10;
/// Buckets the walk visits per cron tick at least.
const MIN_STEP_BUCKETS: u64 = 256;

/// The walk and its last complete result.
#[derive(Default)]
pub struct PrefixStats {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The prefixes the walk counts for (reset when they change).
    prefixes: Option<Arc<StatPrefixes>>,
    shard: usize,
    db: usize,
    cursor: u64,
    /// Keys seen by the running pass (to size the next one's steps).
    seen: u64,
    /// (keys, bytes) per prefix in the running pass.
    acc: Counts,
    /// The last complete pass.
    last: Option<Pass>,
}

/// (keys, bytes) per prefix.
type Counts = [(u64, u64); MAX_STAT_PREFIXES];

/// A complete walk's result.
struct Pass {
    counts: Counts,
    /// Keys seen, whatever their prefix.
    total: u64,
    ended: Instant,
}

/// Applies `stats-key-prefixes` (at start-up and after CONFIG SET).
pub fn refresh(srv: &Server) {
    let list: Vec<Box<[u8]>> = srv
        .config
        .get("stats-key-prefixes")
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(|p| p.as_bytes().into())
        .collect();
    let current = srv.keyspace.stat_prefixes();
    let same = match &current {
        Some(p) => p.list() == list.as_slice(),
        None => list.is_empty(),
    };
    if !same {
        srv.keyspace.set_stat_prefixes(list);
        *srv.prefix_stats.state.lock() = State::default();
        // The counters are by position: a new list starts from zero.
        for w in srv.workers.iter() {
            w.prefix_hits
                .iter()
                .chain(&w.prefix_misses)
                .for_each(|c| c.reset());
        }
    }
}

/// One cron step of the walk.
pub fn cron(srv: &Server) {
    let Some(prefixes) = srv.keyspace.stat_prefixes() else {
        return;
    };
    let mut st = srv.prefix_stats.state.lock();
    if !st
        .prefixes
        .as_ref()
        .is_some_and(|p| Arc::ptr_eq(p, &prefixes))
    {
        *st = State {
            prefixes: Some(prefixes.clone()),
            ..State::default()
        };
    }
    let hz = srv.config.hot.hz.load(Relaxed).clamp(1, 500);
    let last_total = st.last.as_ref().map_or(0, |l| l.total);
    let mut budget = (last_total / (PASS_SECS * hz)).max(MIN_STEP_BUCKETS);
    let ks = &srv.keyspace;
    while budget > 0 {
        let step = budget.min(64);
        budget -= step;
        let (shard, db, cursor) = (st.shard, st.db, st.cursor);
        let mut acc = st.acc;
        let mut seen = 0;
        let next = ks.scan_part(shard, db, cursor, step as usize, |e| {
            seen += 1;
            if let Some(i) = prefixes.find(e.key()) {
                acc[i].0 += 1;
                acc[i].1 += (NODE_BYTES + alloc_size(e.heap_bytes())) as u64;
            }
        });
        st.acc = acc;
        st.seen += seen;
        st.cursor = next;
        if next != 0 {
            continue;
        }
        // This database part is done: on to the next, and publish after the last one.
        st.db += 1;
        if st.db == ks.num_dbs() {
            st.db = 0;
            st.shard += 1;
            if st.shard == ks.num_shards() {
                st.shard = 0;
                st.last = Some(Pass {
                    counts: st.acc,
                    total: st.seen,
                    ended: Instant::now(),
                });
                st.acc = Default::default();
                st.seen = 0;
                return;
            }
        }
    }
}

/// INFO keyspace_prefixes: (field, value) lines, one per prefix, then the age of the counts.
pub fn info(srv: &Server) -> Vec<(String, String)> {
    let Some(prefixes) = srv.keyspace.stat_prefixes() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let st = srv.prefix_stats.state.lock();
    let counted = st.last.as_ref().filter(|_| {
        st.prefixes
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &prefixes))
    });
    for (i, p) in prefixes.list().iter().enumerate() {
        let hits = srv.sum(|w| w.prefix_hits[i].get());
        let misses = srv.sum(|w| w.prefix_misses[i].get());
        let (keys, bytes) = counted.map_or((0, 0), |l| l.counts[i]);
        out.push((
            format!("prefix{i}"),
            format!(
                "prefix={},keys={keys},memory={bytes},hits={hits},misses={misses}",
                String::from_utf8_lossy(p)
            ),
        ));
    }
    let age = counted.map_or(-1, |l| l.ended.elapsed().as_secs() as i64);
    out.push(("prefix_keys_counted_secs_ago".into(), age.to_string()));
    out
}
