//! Latency measurement: the per-command histograms of `latency-tracking` (INFO latencystats,
//! LATENCY HISTOGRAM) and the latency monitor's event series (`latency-monitor-threshold`,
//! LATENCY LATEST/HISTORY/GRAPH/DOCTOR).
//!
//! A histogram is log-linear, the idea behind HDR histograms: each power of two of
//! nanoseconds is split into 16 equal sub-buckets, so any recorded value is known to within
//! 1/16 (6%) of itself, from 1 ns to the 1 s cap Redis uses, in 432 counters. Recording is an
//! index computation and one single-writer counter add; a command's counters are allocated
//! on its first timed call, so commands never used cost nothing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::server::Counter;

/// Values are clamped to this (1 s), as Redis's histograms are.
const MAX_NS: u64 = 1_000_000_000;
/// Sub-buckets per power of two: 2^SUB_BITS.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets needed up to [`MAX_NS`] (just under 2^30).
const BUCKETS: usize = index(MAX_NS) + 1;

/// The bucket of a duration in ns: values below 2·SUB have their own bucket; above, the
/// exponent picks a group of SUB buckets and the next SUB_BITS bits pick one in it.
const fn index(ns: u64) -> usize {
    let v = if ns == 0 { 1 } else { ns };
    let v = if v > MAX_NS { MAX_NS } else { v };
    if v < 2 * SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    (((exp - SUB_BITS + 1) as u64) * SUB + sub) as usize
}

/// The highest value (ns) that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i;
    }
    let exp = (i / SUB) as u32 + SUB_BITS - 1;
    let width = 1u64 << (exp - SUB_BITS);
    (SUB + i % SUB) * width + width - 1
}

/// One command's latency histogram on one worker; allocated on first use.
#[derive(Default)]
pub struct Histogram(OnceLock<Box<[Counter]>>);

impl Histogram {
    /// Records one duration. Only the owning worker may call this.
    #[inline]
    pub fn record(&self, ns: u64) {
        let buckets = self
            .0
            .get_or_init(|| (0..BUCKETS).map(|_| Counter::default()).collect());
        buckets[index(ns)].add(1);
    }

    /// Clears it (CONFIG RESETSTAT).
    pub fn reset(&self) {
        if let Some(b) = self.0.get() {
            b.iter().for_each(Counter::reset);
        }
    }

    /// Adds this histogram's counts into `into` (which is BUCKETS long or empty).
    pub fn sum_into(&self, into: &mut Vec<u64>) {
        let Some(b) = self.0.get() else { return };
        if into.is_empty() {
            into.resize(BUCKETS, 0);
        }
        for (t, c) in into.iter_mut().zip(b.iter()) {
            *t += c.get();
        }
    }
}

/// A histogram summed over workers, for reporting.
pub struct Totals(Vec<u64>);

impl Totals {
    /// Sums the histograms given.
    pub fn of<'a>(hists: impl Iterator<Item = &'a Histogram>) -> Totals {
        let mut v = Vec::new();
        for h in hists {
            h.sum_into(&mut v);
        }
        Totals(v)
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The value (ns) at percentile `p` (0–100): the top of the bucket holding that rank, as
    /// HDR histograms report it.
    pub fn percentile(&self, p: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * total as f64)
            .ceil()
            .max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.0.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i);
            }
        }
        MAX_NS
    }

    /// LATENCY HISTOGRAM's cumulative distribution: (bucket bound in µs, calls at or under
    /// it) for power-of-two bounds from 1024 ns, listing only bounds where the count grows.
    pub fn cdf(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut bound = 1024u64;
        let mut seen = 0;
        let mut last = 0;
        let mut i = 0;
        while last < self.count() {
            while i < self.0.len() && bucket_high(i) < bound {
                seen += self.0[i];
                i += 1;
            }
            if seen > last {
                out.push((bound / 1000, seen));
                last = seen;
            }
            if i >= self.0.len() {
                break;
            }
            bound *= 2;
        }
        out
    }
}

/// Samples kept per event (one per second at most), as Redis keeps.
const SERIES_LEN: usize = 160;

/// One event's recent samples: (unix seconds, latency ms), oldest first, and the maximum
/// ever seen.
#[derive(Default)]
struct Series {
    samples: VecDeque<(u64, u64)>,
    max: u64,
}

/// The latency monitor: spikes of at least `latency-monitor-threshold` ms, per event.
#[derive(Default)]
pub struct Monitor(Mutex<BTreeMap<&'static str, Series>>);

/// What LATENCY LATEST reports for one event: (name, time, latest ms, max ms).
pub type Latest = (&'static str, u64, u64, u64);

impl Monitor {
    /// Records `ms` for `event` if the monitor is on and it reaches the threshold.
    #[inline]
    pub fn add_if_needed(&self, threshold_ms: u64, event: &'static str, ms: u64) {
        if threshold_ms > 0 && ms >= threshold_ms {
            self.add(event, ms, crate::server::unix_ms() / 1000);
        }
    }

    /// Adds a sample; samples in the same second keep their maximum.
    fn add(&self, event: &'static str, ms: u64, now_secs: u64) {
        let mut events = self.0.lock();
        let s = events.entry(event).or_default();
        s.max = s.max.max(ms);
        if let Some(last) = s.samples.back_mut().filter(|l| l.0 == now_secs) {
            last.1 = last.1.max(ms);
            return;
        }
        if s.samples.len() == SERIES_LEN {
            s.samples.pop_front();
        }
        s.samples.push_back((now_secs, ms));
    }

    /// Every event's latest sample and maximum, by event name.
    pub fn latest(&self) -> Vec<Latest> {
        self.0
            .lock()
            .iter()
            .filter_map(|(&name, s)| s.samples.back().map(|&(t, ms)| (name, t, ms, s.max)))
            .collect()
    }

    /// One event's samples, oldest first (empty if unknown).
    pub fn history(&self, event: &[u8]) -> Vec<(u64, u64)> {
        self.0
            .lock()
            .iter()
            .find(|(name, _)| name.as_bytes() == event)
            .map(|(_, s)| s.samples.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets the events named (all if none); returns how many existed.
    pub fn reset(&self, events: &[&[u8]]) -> usize {
        let mut all = self.0.lock();
        if events.is_empty() {
            let n = all.len();
            all.clear();
            return n;
        }
        let before = all.len();
        all.retain(|name, _| !events.contains(&name.as_bytes()));
        before - all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_values() {
        let mut prev = 0;
        for v in (1..5000).chain([65_535, 65_536, 1 << 20, 999_999_999, MAX_NS]) {
            let i = index(v);
            assert!(i >= prev && i < BUCKETS, "{v}");
            assert!(bucket_high(i) >= v, "{v}");
            // Within 1/16 of the value.
            assert!(bucket_high(i) - v <= v / 16 + 1, "{v}");
            prev = i;
        }
        assert_eq!(index(0), 1);
        assert_eq!(index(u64::MAX), index(MAX_NS));
    }

    #[test]
    fn percentiles_and_cdf() {
        let h = Histogram::default();
        for us in 1..=100u64 {
            h.record(us * 1000);
        }
        let t = Totals::of(std::iter::once(&h));
        assert_eq!(t.count(), 100);
        let p50 = t.percentile(50.0);
        assert!((50_000..=53_200).contains(&p50), "{p50}");
        let p99 = t.percentile(99.0);
        assert!((99_000..=105_300).contains(&p99), "{p99}");
        let cdf = t.cdf();
        assert_eq!(cdf.last(), Some(&(131, 100)));
        assert!(cdf.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        h.reset();
        assert_eq!(Totals::of(std::iter::once(&h)).count(), 0);
    }

    #[test]
    fn monitor_keeps_one_sample_per_second() {
        let m = Monitor::default();
        m.add("command", 5, 100);
        m.add("command", 9, 100);
        m.add("command", 3, 101);
        assert_eq!(m.history(b"command"), [(100, 9), (101, 3)]);
        assert_eq!(m.latest(), [("command", 101, 3, 9)]);
        for t in 0..200 {
            m.add("fast-command", 1, 1000 + t);
        }
        assert_eq!(m.history(b"fast-command").len(), SERIES_LEN);
        assert_eq!(m.reset(&[b"nope"]), 0);
        assert_eq!(m.reset(&[]), 2);
    }
}
