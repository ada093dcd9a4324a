//! Eviction under `maxmemory`: the eight policies, Redis's LFU counter in the 24 access bits,
//! and the eviction pool that approximates LRU/LFU/TTL order by sampling.
//!
//! The pool is shared by all shards: each round samples one shard (every database part of
//! it, under that shard's lock only) and keeps the best candidates seen so far, so the
//! quality is that of Redis's per-database sampling while no command waits for more than one
//! short sampling step. The server decides when to evict and what to do with evicted keys;
//! this module only picks and removes them ([`Keyspace::evict_populate`],
//! [`Keyspace::evict_random`], [`Keyspace::evict_key`]).

use std::cell::Cell;

/// One of Redis's eight `maxmemory-policy` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    NoEviction,
}

/// How a policy ranks candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rank {
    Lru,
    Lfu,
    Ttl,
    Random,
    None,
}

impl Policy {
    /// Parses a `maxmemory-policy` value (case-insensitive).
    pub fn from_name(name: &str) -> Option<Policy> {
        Some(match name.to_ascii_lowercase().as_str() {
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "noeviction" => Policy::NoEviction,
            _ => return None,
        })
    }

    /// True if only keys with a TTL may be evicted.
    pub fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    /// How candidates are ranked.
    pub fn rank(self) -> Rank {
        match self {
            Policy::VolatileLru | Policy::AllkeysLru => Rank::Lru,
            Policy::VolatileLfu | Policy::AllkeysLfu => Rank::Lfu,
            Policy::VolatileTtl => Rank::Ttl,
            Policy::VolatileRandom | Policy::AllkeysRandom => Rank::Random,
            Policy::NoEviction => Rank::None,
        }
    }
}

/// The LFU parameters (`lfu-log-factor`, `lfu-decay-time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lfu {
    pub log_factor: u32,
    /// Minutes per counter decrement; 0 never decays.
    pub decay_minutes: u32,
}

/// The counter a new key starts with, so it is not evicted before it had a chance to be
/// read again (Redis's LFU_INIT_VAL).
pub const LFU_INIT: u32 = 5;

/// Minutes, 16 bits: the "last decrement time" half of the LFU bits.
#[inline]
fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFFFF) as u32
}

/// The access bits of a new key under an LFU policy.
#[inline]
pub fn lfu_new(now_ms: u64) -> u32 {
    (lfu_minutes(now_ms) << 8) | LFU_INIT
}

impl Lfu {
    /// The counter of access bits `bits`, decayed by the minutes passed since its last
    /// decrement (what OBJECT FREQ reports and eviction ranks by).
    pub fn counter(self, bits: u32, now_ms: u64) -> u32 {
        let counter = bits & 0xFF;
        if self.decay_minutes == 0 {
            return counter;
        }
        let last = (bits >> 8) & 0xFFFF;
        let now = lfu_minutes(now_ms);
        let elapsed = if now >= last {
            now - last
        } else {
            0xFFFF - last + now
        };
        counter.saturating_sub(elapsed / self.decay_minutes)
    }

    /// The access bits after one access: decay, then a logarithmic increment (the more
    /// accesses a key has, the less likely another one raises its counter).
    pub fn touched(self, bits: u32, now_ms: u64) -> u32 {
        let mut counter = self.counter(bits, now_ms);
        if counter < 255 {
            let base = counter.saturating_sub(LFU_INIT) as f64;
            let p = 1.0 / (base * f64::from(self.log_factor) + 1.0);
            if unit_random() < p {
                counter += 1;
            }
        }
        (lfu_minutes(now_ms) << 8) | counter
    }
}

/// A uniform number in [0, 1) from a per-thread xorshift generator: the LFU increment runs
/// on every read, where a cryptographic generator would cost more than the lookup.
fn unit_random() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = rand::random::<u64>() | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// Candidates kept between sampling rounds (Redis's EVPOOL_SIZE).
pub const POOL_SIZE: usize = 16;

/// A key the pool holds, with its score (higher: evict sooner).
#[derive(Debug)]
struct Candidate {
    score: u64,
    db: usize,
    key: Box<[u8]>,
}

/// The best eviction candidates seen so far, in ascending score order.
#[derive(Debug, Default)]
pub struct Pool {
    items: Vec<Candidate>,
}

impl Pool {
    /// Offers a sampled key: kept if the pool has room or it beats the worst candidate.
    pub fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if self.items.len() == POOL_SIZE {
            if self.items[0].score >= score {
                return;
            }
            // Full: the lowest-scored candidate makes room. Shifting only the candidates
            // below the new one moves each once, and the dropped key's allocation is
            // reused when the lengths match (keys of one application often do), sparing
            // an allocation and a free per accepted sample on the eviction path.
            let pos = self.items.partition_point(|c| c.score < score);
            self.items[..pos].rotate_left(1);
            let slot = &mut self.items[pos - 1];
            slot.score = score;
            slot.db = db;
            if slot.key.len() == key.len() {
                slot.key.copy_from_slice(key);
            } else {
                slot.key = key.into();
            }
            return;
        }
        let pos = self.items.partition_point(|c| c.score < score);
        self.items.insert(
            pos,
            Candidate {
                score,
                db,
                key: key.into(),
            },
        );
    }

    /// Takes the best candidate: (db, key).
    pub fn pop_best(&mut self) -> Option<(usize, Box<[u8]>)> {
        self.items.pop().map(|c| (c.db, c.key))
    }

    /// Number of candidates held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if the pool holds no candidate.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forgets every candidate (the policy changed).
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// The eviction score of an entry's access bits or TTL under `rank` (higher: evict sooner).
pub fn score(rank: Rank, lfu: Lfu, e: &crate::Entry, now_ms: u64) -> u64 {
    match rank {
        Rank::Lru => crate::keyspace::idle_seconds(e.lru(), now_ms) * 1000,
        Rank::Lfu => 255 - u64::from(lfu.counter(e.lru(), now_ms)),
        Rank::Ttl => u64::MAX - e.expire_at().unwrap_or(u64::MAX),
        Rank::Random | Rank::None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_keeps_the_best_sixteen_in_order() {
        let mut p = Pool::default();
        for i in 0..40u64 {
            p.offer((i * 7) % 40, 0, format!("k{}", (i * 7) % 40).as_bytes());
        }
        assert_eq!(p.len(), POOL_SIZE);
        let mut got = Vec::new();
        while let Some((_, k)) = p.pop_best() {
            got.push(String::from_utf8(k.into()).unwrap());
        }
        let want: Vec<String> = (24..40).rev().map(|i| format!("k{i}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let lfu = Lfu {
            log_factor: 10,
            decay_minutes: 1,
        };
        let now = 10 * 60_000;
        let mut bits = lfu_new(now);
        assert_eq!(lfu.counter(bits, now), LFU_INIT);
        for _ in 0..1000 {
            bits = lfu.touched(bits, now);
        }
        let c = lfu.counter(bits, now);
        assert!((10..40).contains(&c), "counter {c}");
        assert_eq!(lfu.counter(bits, now + 3 * 60_000), c - 3);
        assert_eq!(lfu.counter(bits, now + 300 * 60_000), 0);
        let never = Lfu {
            decay_minutes: 0,
            ..lfu
        };
        assert_eq!(never.counter(bits, now + 300 * 60_000), c);
    }

    #[test]
    fn policies_parse() {
        assert_eq!(Policy::from_name("ALLKEYS-LRU"), Some(Policy::AllkeysLru));
        assert!(Policy::from_name("volatile-ttl").unwrap().volatile());
        assert_eq!(Policy::from_name("x"), None);
        assert_eq!(Policy::NoEviction.rank(), Rank::None);
    }
}
