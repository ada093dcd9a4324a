//! Cache entries with refresh leases, behind the CACHE.* commands (server-side cache-stampede
//! protection, after memcached's meta-protocol leases and Facebook's memcache leases).
//!
//! An entry holds the cached bytes (or nothing yet), the time until which they are fresh, an
//! optional early-refresh window before that, a "stale" mark set by invalidation, and at most
//! one refresh lease. Reading decides, atomically under the key's shard lock, who recomputes:
//! the first reader that finds the value missing, stale or in its early-refresh window while
//! no live lease exists wins a lease (a token); everyone else gets the value they can use, or
//! learns that a refresh is pending. Only the current lease's token can fill the entry, so a
//! slow fill computed before an invalidation never overwrites newer data. The key's own TTL
//! is the hard expiry: fresh time plus the stale grace period.

/// A refresh lease: who may fill the entry, and until when others wait for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub token: u64,
    /// Unix ms after which another reader may take the lease over.
    pub until: u64,
}

/// One cache entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheValue {
    /// The cached bytes; `None` until the first fill.
    pub value: Option<Vec<u8>>,
    /// Unix ms before which the value is fresh.
    pub fresh_until: u64,
    /// Length of the early-refresh window before `fresh_until`, in ms (0: none).
    pub early_ms: u64,
    /// Set by invalidation: the value is served as stale until refilled.
    pub stale: bool,
    /// The outstanding refresh lease, if any (not persisted).
    pub lease: Option<Lease>,
}

/// What a read found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheRead {
    /// Fresh value; nothing to do.
    Hit,
    /// The caller won the refresh lease with this token: recompute and fill. The value, if
    /// any, may be served meanwhile (stale, or fresh but in its early-refresh window).
    Win(u64),
    /// The value is stale and someone else is refreshing it: use it.
    Stale,
    /// Nothing to serve and someone else is refreshing: wait, or retry shortly.
    Pending,
}

impl CacheValue {
    /// An empty entry (a miss that is being computed).
    pub fn placeholder() -> CacheValue {
        CacheValue::default()
    }

    /// True if the value exists, is not invalidated and `now` is before its fresh time.
    pub fn is_fresh(&self, now: u64) -> bool {
        self.value.is_some() && !self.stale && now < self.fresh_until
    }

    /// True if a lease is held and not expired at `now`.
    pub fn lease_live(&self, now: u64) -> bool {
        self.lease.is_some_and(|l| l.until > now)
    }

    /// Milliseconds of freshness left at `now`: 0 once stale (expired or invalidated), -2
    /// when there is no value.
    pub fn ttl_ms(&self, now: u64) -> i64 {
        match &self.value {
            None => -2,
            Some(_) if self.is_fresh(now) => {
                i64::try_from(self.fresh_until - now).unwrap_or(i64::MAX)
            }
            Some(_) => 0,
        }
    }

    /// What a read at `now` gets without taking the lease; `None` when this reader should
    /// refresh (missing, stale or early value, and no live lease).
    pub fn classify(&self, now: u64) -> Option<CacheRead> {
        let fresh = self.is_fresh(now);
        let early =
            fresh && self.early_ms > 0 && now >= self.fresh_until.saturating_sub(self.early_ms);
        match (fresh, early, self.lease_live(now)) {
            (true, false, _) | (true, true, true) => Some(CacheRead::Hit),
            (false, _, true) if self.value.is_some() => Some(CacheRead::Stale),
            (false, _, true) => Some(CacheRead::Pending),
            _ => None,
        }
    }

    /// Hands the refresh lease to `token` until `until` (unix ms).
    pub fn grant(&mut self, token: u64, until: u64) {
        self.lease = Some(Lease { token, until });
    }

    /// Stores a fill made under lease `token`: false (nothing changes) unless `token` is the
    /// current lease's. A lease that has timed out still fills if nobody took it over.
    pub fn fill(&mut self, token: u64, value: &[u8], fresh_until: u64, early_ms: u64) -> bool {
        if self.lease.map(|l| l.token) != Some(token) {
            return false;
        }
        self.value = Some(value.to_vec());
        self.fresh_until = fresh_until;
        self.early_ms = early_ms;
        self.stale = false;
        self.lease = None;
        true
    }

    /// Drops the lease if `token` holds it (a lease holder giving up). True if it did.
    pub fn release(&mut self, token: u64) -> bool {
        let held = self.lease.is_some_and(|l| l.token == token);
        if held {
            self.lease = None;
        }
        held
    }

    /// Marks the value stale and revokes any lease, so a fill computed before this point is
    /// refused. False for an entry with no value (the caller deletes it instead).
    pub fn invalidate(&mut self) -> bool {
        self.lease = None;
        self.stale = true;
        self.value.is_some()
    }

    /// Heap bytes owned (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.value.as_ref().map_or(0, Vec::capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read at `now` that takes a `lease_ms` lease with token `t` when it should refresh.
    fn read(c: &mut CacheValue, now: u64, lease_ms: u64, t: u64) -> CacheRead {
        c.classify(now).unwrap_or_else(|| {
            c.grant(t, now + lease_ms);
            CacheRead::Win(t)
        })
    }

    #[test]
    fn one_winner_then_stale_or_pending() {
        let mut c = CacheValue::placeholder();
        assert_eq!(read(&mut c, 100, 50, 7), CacheRead::Win(7));
        assert_eq!(read(&mut c, 101, 50, 8), CacheRead::Pending);
        assert!(!c.fill(8, b"x", 1000, 0));
        assert!(c.fill(7, b"v", 1000, 0));
        assert_eq!(read(&mut c, 200, 50, 9), CacheRead::Hit);
        // Expired: one winner, the rest get the stale value.
        assert_eq!(read(&mut c, 1000, 50, 10), CacheRead::Win(10));
        assert_eq!(read(&mut c, 1001, 50, 11), CacheRead::Stale);
        // The lease times out: another reader takes over; the old token can't fill.
        assert_eq!(read(&mut c, 1051, 50, 12), CacheRead::Win(12));
        assert!(!c.fill(10, b"old", 5000, 0));
        assert!(c.fill(12, b"new", 5000, 0));
        assert_eq!(c.value.as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn early_refresh_and_invalidation() {
        let mut c = CacheValue::placeholder();
        read(&mut c, 0, 10, 1);
        c.fill(1, b"v", 1000, 100);
        assert_eq!(read(&mut c, 899, 10, 2), CacheRead::Hit);
        assert_eq!(read(&mut c, 900, 10, 3), CacheRead::Win(3));
        assert_eq!(read(&mut c, 901, 10, 4), CacheRead::Hit);
        assert!(c.invalidate());
        assert!(!c.fill(3, b"raced", 2000, 0));
        assert_eq!(read(&mut c, 902, 10, 5), CacheRead::Win(5));
        assert_eq!(read(&mut c, 903, 10, 6), CacheRead::Stale);
        assert!(c.release(5));
        assert_eq!(read(&mut c, 904, 10, 7), CacheRead::Win(7));
    }
}
