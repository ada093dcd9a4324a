//! The one key hash of the keyspace.
//!
//! A key is hashed once per command and the 64-bit result is used twice: its top bits pick
//! the keyspace shard and its low bits pick the bucket inside that shard's [`Dict`]. Both
//! uses need well-mixed bits at both ends, which aHash's folded-multiply finish provides.
//!
//! The hasher is keyed with a per-process random seed so that clients cannot precompute keys
//! that all land in one bucket (HashDoS): chains would grow to O(n) and every lookup in that
//! shard would become a linear scan. The seed is drawn once, lazily, and never changes
//! during the life of the process, so a hash computed for a key stays valid for as long as
//! the key lives in a dict (the dict recomputes hashes from keys when it rehashes).
//!
//! [`Dict`]: crate::dict::Dict

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// The per-process seeded hasher factory. `ahash::RandomState::new()` draws its keys from
/// the OS random source (the `runtime-rng` feature, on by default).
static STATE: OnceLock<ahash::RandomState> = OnceLock::new();

/// Hashes a key with the process-wide random seed.
///
/// Deterministic within a process, different across processes. Hashes the bytes directly
/// (no length prefix as `Hash for [u8]` would add): keys are compared byte-for-byte anyway,
/// so the prefix buys nothing and costs a round of mixing.
#[inline]
pub fn hash_bytes(key: &[u8]) -> u64 {
    let mut h = STATE.get_or_init(ahash::RandomState::new).build_hasher();
    h.write(key);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::hash_bytes;
    use std::collections::HashSet;

    #[test]
    fn deterministic_within_process() {
        assert_eq!(hash_bytes(b"foo"), hash_bytes(b"foo"));
        assert_eq!(hash_bytes(b""), hash_bytes(b""));
        assert_ne!(hash_bytes(b"foo"), hash_bytes(b"bar"));
    }

    #[test]
    fn top_and_low_bits_are_spread() {
        // Sequential keys must spread over both the low bits (buckets) and the top bits
        // (shards): count distinct values of 8 bits at each end over 4096 keys.
        let mut low = HashSet::new();
        let mut top = HashSet::new();
        for i in 0..4096u32 {
            let h = hash_bytes(format!("key:{i}").as_bytes());
            low.insert(h & 0xff);
            top.insert(h >> 56);
        }
        assert_eq!(low.len(), 256);
        assert_eq!(top.len(), 256);
    }
}
