//! The keyspace table: [`Dict`](crate::dict::Dict)'s semantics (SCAN cursor guarantee,
//! random sampling, incremental resizing) with a layout made for millions of small keys.
//!
//! # Layout and memory
//!
//! A table is a power-of-two array of 64-byte buckets (one cache line), each holding up to
//! seven [`Entry`] pointers and a link to a child bucket for overflow. An entry is a thin
//! pointer to one allocation with header, TTL, key and inline string (see [`crate::entry`]),
//! so there is no per-key node at all: the table costs 64 bytes per bucket, i.e. 8 to 16
//! bytes per key at the fills below plus about 4 for children, against 8 for a chained
//! table's bucket slot plus a 16-48-byte node per key.
//!
//! Each stored pointer carries a 16-bit tag from the key's hash in its unused top bits: a
//! lookup compares tags of the bucket's slots (one cache line) and touches only the entry
//! whose tag matches, so a probe costs about two cache misses, as with a chained table.
//!
//! Entries of a chain are packed: all occupied slots come first, and a child bucket exists
//! only while its parent is full. Removal moves the chain's last entry into the hole.
//!
//! # Resizing
//!
//! * Grow when `len >= 8 * buckets` to the next power of two `>= len / 4` buckets (so 2-4
//!   keys per bucket after a grow, up to 8 before the next: 1M keys fit 2^17 buckets).
//! * Shrink when fewer than 0.8 keys per bucket remain (Redis's 10% fill of 8 slots), to
//!   the same target, so a shrink never immediately re-grows.
//! * Incremental in two phases exactly as [`crate::dict`] (preparing the new array
//!   `PREP_CHUNK` buckets per operation, then moving one bucket chain per operation from
//!   the end of the old array); the hash is recomputed from the key when an entry moves.
//!
//! SCAN, random picks and sampling work per bucket chain, so everything said in
//! [`crate::dict`] about their guarantees holds unchanged: an entry never leaves its home
//! bucket's chain except by a resize, which moves whole chains.

use crate::entry::Entry;
use crate::hash::hash_bytes;
use smallvec::SmallVec;
use std::mem;

/// Entries per bucket before a child bucket is chained.
const SLOTS: usize = 7;
/// Average entries per bucket at which the table grows.
const GROW_FILL: usize = 8;
/// Entries per bucket a resize aims for (between the grow and shrink thresholds).
const TARGET_FILL: usize = 4;
/// Smallest table; also the size allocated on first insert.
const MIN_SIZE: usize = 1;
/// Empty buckets a single rehash step may skip before giving up, per bucket it would move.
const EMPTY_VISITS_PER_STEP: usize = 10;
/// Empty buckets written per step while preparing a new table (8 KiB: two pages).
const PREP_CHUNK: usize = 128;
/// Steps per operation while the resize in progress is already known to be insufficient.
const CATCH_UP_STEPS: usize = 16;
/// Random bucket probes in [`KeyTable::random`] before falling back to a linear walk.
const RANDOM_PROBES: usize = 64;

/// The tag of a hash: 16 bits the bucket index (low bits) and the shard (top bits) don't use.
#[inline]
fn tag_of(h: u64) -> u16 {
    (h >> 32) as u16
}

/// One cache line: seven entries and the overflow link.
#[derive(Default)]
#[repr(C, align(64))]
struct Bucket {
    slots: [Option<Entry>; SLOTS],
    next: Option<Box<Bucket>>,
}

const _: () = assert!(mem::size_of::<Bucket>() == 64);

impl Bucket {
    #[inline]
    fn is_empty(&self) -> bool {
        self.slots[0].is_none()
    }

    /// The buckets of this chain, this one first.
    #[inline]
    fn chain(&self) -> impl Iterator<Item = &Bucket> {
        std::iter::successors(Some(self), |b| b.next.as_deref())
    }

    /// The entries of this chain.
    #[inline]
    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.chain()
            .flat_map(|b| b.slots.iter().map_while(Option::as_ref))
    }

    fn for_each_mut(&mut self, f: &mut impl FnMut(&mut Entry)) {
        let mut cur = Some(self);
        while let Some(b) = cur {
            b.slots
                .iter_mut()
                .map_while(Option::as_mut)
                .for_each(&mut *f);
            cur = b.next.as_deref_mut();
        }
    }

    /// (depth in the chain, slot) of the entry with `key`.
    #[inline]
    fn position(&self, tag: u16, key: &[u8]) -> Option<(usize, usize)> {
        for (d, b) in self.chain().enumerate() {
            for (i, s) in b.slots.iter().enumerate() {
                match s {
                    None => return None,
                    Some(e) if e.tag() == tag && e.key() == key => return Some((d, i)),
                    Some(_) => {}
                }
            }
        }
        None
    }

    #[inline]
    fn find(&self, tag: u16, key: &[u8]) -> Option<&Entry> {
        let (d, i) = self.position(tag, key)?;
        self.chain().nth(d)?.slots[i].as_ref()
    }

    fn nth_mut(&mut self, depth: usize) -> &mut Bucket {
        let mut b = self;
        for _ in 0..depth {
            b = b.next.as_deref_mut().expect("depth within the chain");
        }
        b
    }

    #[inline]
    fn find_mut(&mut self, tag: u16, key: &[u8]) -> Option<&mut Entry> {
        let (d, i) = self.position(tag, key)?;
        self.nth_mut(d).slots[i].as_mut()
    }

    /// Appends an entry (already tagged) after the chain's last one.
    fn push(&mut self, e: Entry) {
        let mut b = self;
        loop {
            if let Some(slot) = b.slots.iter_mut().find(|s| s.is_none()) {
                *slot = Some(e);
                return;
            }
            b = b.next.get_or_insert_with(Box::default);
        }
    }

    /// (depth, slot) of the chain's last entry; the chain must not be empty.
    fn last(&self) -> (usize, usize) {
        let d = self.chain().count() - 1;
        let b = self.chain().nth(d).expect("counted");
        (d, b.slots.iter().take_while(|s| s.is_some()).count() - 1)
    }

    /// Removes the entry with `key`, keeping the chain packed.
    fn remove(&mut self, tag: u16, key: &[u8]) -> Option<Entry> {
        let (d, i) = self.position(tag, key)?;
        let (ld, li) = self.last();
        let last = self.nth_mut(ld).slots[li].take();
        let found = if (d, i) == (ld, li) {
            last
        } else {
            mem::replace(&mut self.nth_mut(d).slots[i], last)
        };
        if li == 0 && ld > 0 {
            self.nth_mut(ld - 1).next = None;
        }
        found
    }
}

/// One bucket array; see [`crate::dict`]'s `Table` for the meaning of `size` and
/// `buckets.len()` during a resize.
struct Table {
    buckets: Vec<Bucket>,
    size: usize,
}

impl Table {
    const fn empty() -> Self {
        Table {
            buckets: Vec::new(),
            size: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.size.wrapping_sub(1)
    }

    #[inline]
    fn bucket(&self, h: u64) -> Option<&Bucket> {
        self.buckets.get(h as usize & self.mask())
    }

    #[inline]
    fn bucket_mut(&mut self, h: u64) -> Option<&mut Bucket> {
        let i = h as usize & self.mask();
        self.buckets.get_mut(i)
    }
}

/// The keyspace's hash table of [`Entry`]s; see the module docs.
pub struct KeyTable {
    t0: Table,
    t1: Table,
    len: usize,
}

impl Default for KeyTable {
    fn default() -> Self {
        KeyTable::new()
    }
}

impl KeyTable {
    /// An empty table; allocates nothing until the first insert.
    pub const fn new() -> Self {
        KeyTable {
            t0: Table::empty(),
            t1: Table::empty(),
            len: 0,
        }
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a resize (preparing or rehashing) is in progress.
    #[inline]
    pub fn is_rehashing(&self) -> bool {
        self.t1.size != 0
    }

    /// Whether entries may be in `t1` (the new table is fully prepared and being filled).
    #[inline]
    fn moving(&self) -> bool {
        self.t1.size != 0 && self.t1.buckets.len() == self.t1.size
    }

    /// Looks up `key`; `h` must be `hash_bytes(key)`. Never moves anything.
    #[inline]
    pub fn get(&self, h: u64, key: &[u8]) -> Option<&Entry> {
        if self.len == 0 {
            return None;
        }
        let tag = tag_of(h);
        if let Some(found) = self.t0.bucket(h).and_then(|b| b.find(tag, key)) {
            return Some(found);
        }
        if self.moving() {
            return self.t1.bucket(h).and_then(|b| b.find(tag, key));
        }
        None
    }

    /// Looks up `key` for modification (the key must not change). May do one rehash step.
    #[inline]
    pub fn get_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut Entry> {
        if self.len == 0 {
            return None;
        }
        self.op_step();
        self.find_mut(h, key)
    }

    fn find_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut Entry> {
        let tag = tag_of(h);
        let moving = self.moving();
        let in_t0 = self
            .t0
            .bucket(h)
            .is_some_and(|b| b.position(tag, key).is_some());
        if in_t0 {
            return self.t0.bucket_mut(h).and_then(|b| b.find_mut(tag, key));
        }
        if moving {
            return self.t1.bucket_mut(h).and_then(|b| b.find_mut(tag, key));
        }
        None
    }

    /// Inserts `e` (`h` = hash of its key), replacing and returning an entry with an equal
    /// key if there was one.
    pub fn insert(&mut self, h: u64, mut e: Entry) -> Option<Entry> {
        self.op_step();
        e.set_tag(tag_of(h));
        if let Some(slot) = self.find_mut(h, e.key()) {
            return Some(mem::replace(slot, e));
        }
        self.add(h, e);
        None
    }

    /// Inserts `e` whose key the caller guarantees is absent: skips the lookup.
    /// (Checked in debug builds.)
    pub fn insert_new(&mut self, h: u64, mut e: Entry) {
        debug_assert!(
            self.get(h, e.key()).is_none(),
            "KeyTable::insert_new with a key that is present"
        );
        self.op_step();
        e.set_tag(tag_of(h));
        self.add(h, e);
    }

    fn add(&mut self, h: u64, e: Entry) {
        if self.t0.size == 0 {
            self.t0 = table_with_size(MIN_SIZE);
        }
        self.resize_if_needed();
        let t = if self.moving() {
            &mut self.t1
        } else {
            &mut self.t0
        };
        t.bucket_mut(h).expect("live bucket").push(e);
        self.len += 1;
    }

    /// Removes and returns the entry with `key`. May do one rehash step and start a shrink.
    pub fn remove(&mut self, h: u64, key: &[u8]) -> Option<Entry> {
        if self.len == 0 {
            return None;
        }
        self.op_step();
        let tag = tag_of(h);
        let mut found = self.t0.bucket_mut(h).and_then(|b| b.remove(tag, key));
        if found.is_none() && self.moving() {
            found = self.t1.bucket_mut(h).and_then(|b| b.remove(tag, key));
        }
        if found.is_some() {
            self.len -= 1;
            self.resize_if_needed();
        }
        found
    }

    /// Moves the whole table out, leaving an empty one (allocation-free), so that a large
    /// table can be dropped on another thread (FLUSHALL ASYNC) or swapped (SWAPDB).
    pub fn take(&mut self) -> KeyTable {
        mem::take(self)
    }

    /// The live buckets of both tables, `t0`'s first.
    fn live(&self) -> (&[Bucket], &[Bucket]) {
        let t1: &[Bucket] = if self.moving() { &self.t1.buckets } else { &[] };
        (&self.t0.buckets, t1)
    }

    /// Iterates over all entries in unspecified order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        let (t0, t1) = self.live();
        t0.iter().chain(t1).flat_map(Bucket::entries)
    }

    /// One SCAN step with Redis's cursor semantics (see [`crate::dict::Dict::scan`]): calls
    /// `f` for every entry of one bucket chain (while rehashing: of one bucket of the smaller
    /// table and every bucket of the larger table that it expands to).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&Entry)) -> u64 {
        let (plan, next) = self.scan_plan(cursor);
        for (in_t1, i) in plan {
            let t = if in_t1 { &self.t1 } else { &self.t0 };
            t.buckets[i].entries().for_each(&mut f);
        }
        next
    }

    /// [`KeyTable::scan`] with mutable access to the entries (their keys must not change).
    pub fn scan_mut(&mut self, cursor: u64, mut f: impl FnMut(&mut Entry)) -> u64 {
        let (plan, next) = self.scan_plan(cursor);
        for (in_t1, i) in plan {
            let t = if in_t1 { &mut self.t1 } else { &mut self.t0 };
            t.buckets[i].for_each_mut(&mut f);
        }
        next
    }

    /// The live buckets one SCAN step visits, as (in `t1`, index), and the next cursor.
    fn scan_plan(&self, cursor: u64) -> (SmallVec<[(bool, usize); 4]>, u64) {
        let mut plan = SmallVec::new();
        if self.len == 0 {
            return (plan, 0);
        }
        let live = |t: &Table, v: u64| {
            let i = v as usize & t.mask();
            (i < t.buckets.len()).then_some(i)
        };
        let mut v = cursor;
        if !self.moving() {
            plan.extend(live(&self.t0, v).map(|i| (false, i)));
            return (plan, next_cursor(v, self.t0.mask() as u64));
        }
        let small_is_t1 = self.t0.size > self.t1.size;
        let (small, large) = if small_is_t1 {
            (&self.t1, &self.t0)
        } else {
            (&self.t0, &self.t1)
        };
        let (m0, m1) = (small.mask() as u64, large.mask() as u64);
        plan.extend(live(small, v).map(|i| (small_is_t1, i)));
        loop {
            plan.extend(live(large, v).map(|i| (!small_is_t1, i)));
            v = next_cursor(v, m1);
            if v & (m0 ^ m1) == 0 {
                break;
            }
        }
        (plan, v)
    }

    /// A random entry: a uniformly chosen non-empty bucket, then a uniform entry of its
    /// chain (so not exactly uniform over entries, as in Redis). `None` if empty. After
    /// `RANDOM_PROBES` empty buckets it walks to the next non-empty one, so a nearly empty
    /// huge table cannot spin.
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<&Entry> {
        if self.len == 0 {
            return None;
        }
        let (live0, live1) = self.live();
        let total = live0.len() + live1.len();
        let at = |i: usize| live0.get(i).unwrap_or_else(|| &live1[i - live0.len()]);
        let head = (0..RANDOM_PROBES)
            .map(|_| at(rng.gen_range(0..total)))
            .find(|b| !b.is_empty())
            .or_else(|| {
                let start = rng.gen_range(0..total);
                (0..total)
                    .map(|k| at((start + k) % total))
                    .find(|b| !b.is_empty())
            })
            .expect("len > 0 but no non-empty bucket");
        let n = head.entries().count();
        head.entries().nth(rng.gen_range(0..n))
    }

    /// Calls `f` on up to `n` entries taken from consecutive buckets starting at a random
    /// one, and within each chain at a random entry (both tables while rehashing), for eviction and active-expiry sampling; bounded
    /// work as [`crate::dict::Dict::sample`].
    pub fn sample(&self, n: usize, rng: &mut impl rand::Rng, mut f: impl FnMut(&Entry)) {
        let want = n.min(self.len);
        if want == 0 {
            return;
        }
        let moving = self.moving();
        let (live0, live1) = self.live();
        let mask = if moving {
            self.t0.mask().max(self.t1.mask())
        } else {
            self.t0.mask()
        };
        let mut i = rng.gen::<u64>() as usize & mask;
        let mut got = 0;
        let mut empty_run = 0;
        for _ in 0..want.saturating_mul(10) {
            if moving && i >= live0.len() && i >= live1.len() {
                i = 0;
            }
            for table in [live0, live1] {
                match table.get(i) {
                    None => {}
                    Some(b) if b.is_empty() => {
                        empty_run += 1;
                        if empty_run >= 5 && empty_run > want {
                            i = rng.gen::<u64>() as usize & mask;
                            empty_run = 0;
                        }
                    }
                    Some(b) => {
                        empty_run = 0;
                        // Start at a random entry of the chain: entries are kept in
                        // insertion order, and always taking the first ones would favour
                        // the oldest keys.
                        let k = b.entries().count();
                        let start = rng.gen_range(0..k);
                        for e in b.entries().skip(start).chain(b.entries().take(start)) {
                            f(e);
                            got += 1;
                            if got == want {
                                return;
                            }
                        }
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Does up to `n` steps of an in-progress resize and starts one if the load calls for
    /// it; returns whether a resize is in progress (see [`crate::dict::Dict::rehash_steps`]).
    pub fn rehash_steps(&mut self, n: usize) -> bool {
        self.resize_if_needed();
        self.steps(n);
        self.resize_if_needed();
        self.is_rehashing()
    }

    #[inline]
    fn op_step(&mut self) {
        if self.is_rehashing() {
            let n = if self.target_is_stale() {
                CATCH_UP_STEPS
            } else {
                1
            };
            self.steps(n);
        }
    }

    fn too_full(&self, size: usize) -> bool {
        self.len >= size * GROW_FILL
    }

    fn too_empty(&self, size: usize) -> bool {
        size > MIN_SIZE && self.len * 10 < size * GROW_FILL
    }

    fn target_is_stale(&self) -> bool {
        self.too_full(self.t1.size) || self.too_empty(self.t1.size)
    }

    fn resize_if_needed(&mut self) {
        let size = self.t0.size;
        if self.is_rehashing() || size == 0 {
            return;
        }
        if self.too_full(size) || self.too_empty(size) {
            let target = self
                .len
                .div_ceil(TARGET_FILL)
                .next_power_of_two()
                .max(MIN_SIZE);
            if target != size {
                self.t1 = Table {
                    buckets: Vec::with_capacity(target),
                    size: target,
                };
                if target <= PREP_CHUNK {
                    self.t1.buckets.resize_with(target, Bucket::default);
                }
            }
        }
    }

    fn steps(&mut self, n: usize) {
        if !self.is_rehashing() {
            return;
        }
        let t1 = &mut self.t1;
        if t1.buckets.len() < t1.size {
            let len = (t1.buckets.len() + n.saturating_mul(PREP_CHUNK)).min(t1.size);
            t1.buckets.resize_with(len, Bucket::default);
            return;
        }
        let mut empty_budget = n.saturating_mul(EMPTY_VISITS_PER_STEP);
        let mut moved = 0;
        while moved < n {
            let Some(b) = self.t0.buckets.pop() else {
                break;
            };
            if b.is_empty() {
                empty_budget -= 1;
                if empty_budget == 0 {
                    break;
                }
                continue;
            }
            let mut b = b;
            loop {
                for e in b.slots.iter_mut().map_while(Option::take) {
                    let h = hash_bytes(e.key());
                    self.t1.bucket_mut(h).expect("prepared table").push(e);
                }
                match b.next.take() {
                    Some(child) => b = *child,
                    None => break,
                }
            }
            moved += 1;
        }
        if self.t0.buckets.is_empty() {
            self.t0 = mem::replace(&mut self.t1, Table::empty());
        }
    }
}

fn table_with_size(size: usize) -> Table {
    let mut buckets = Vec::with_capacity(size);
    buckets.resize_with(size, Bucket::default);
    Table { buckets, size }
}

/// The reverse-binary increment (see [`crate::dict`]).
#[inline]
fn next_cursor(v: u64, mask: u64) -> u64 {
    (v | !mask).reverse_bits().wrapping_add(1).reverse_bits()
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{HashMap, HashSet};

    fn key(i: u64) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    fn val(e: &Entry) -> u64 {
        std::str::from_utf8(e.string().unwrap())
            .unwrap()
            .parse()
            .unwrap()
    }

    fn ins(t: &mut KeyTable, i: u64, v: u64) -> Option<u64> {
        let k = key(i);
        let e = Entry::new_string(&k, v.to_string().as_bytes(), None, 0);
        t.insert(hash_bytes(&k), e).map(|e| val(&e))
    }

    fn rm(t: &mut KeyTable, i: u64) -> Option<u64> {
        let k = key(i);
        t.remove(hash_bytes(&k), &k).map(|e| val(&e))
    }

    fn get(t: &KeyTable, i: u64) -> Option<u64> {
        let k = key(i);
        t.get(hash_bytes(&k), &k).map(val)
    }

    /// Every entry sits in its home chain, packed, with its tag, exactly once.
    fn check(t: &KeyTable) {
        let mut seen = HashSet::new();
        for tb in [&t.t0, &t.t1] {
            for (i, b) in tb.buckets.iter().enumerate() {
                let mut gap = false;
                for (d, bb) in b.chain().enumerate() {
                    assert!(d == 0 || !bb.is_empty(), "empty child bucket");
                    for s in &bb.slots {
                        match s {
                            None => gap = true,
                            Some(e) => {
                                assert!(!gap, "chain not packed");
                                let h = hash_bytes(e.key());
                                assert_eq!(h as usize & tb.mask(), i);
                                assert_eq!(e.tag(), tag_of(h));
                                assert!(seen.insert(e.key().to_vec()), "duplicate");
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(seen.len(), t.len());
        assert_eq!(t.iter().count(), t.len());
    }

    #[test]
    fn model_grow_shrink_cycles() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut t = KeyTable::new();
        let mut m: HashMap<u64, u64> = HashMap::new();
        for cycle in 0..6u64 {
            let target = [50, 3000, 20_000][cycle as usize % 3];
            for phase in 0..2 {
                let mut ops = 0u64;
                while if phase == 0 {
                    (m.len() as u64) < target
                } else {
                    m.len() > 2
                } {
                    ops += 1;
                    let k = rng.gen_range(0..target * 2);
                    let r = rng.gen_range(0..100);
                    let bias = if phase == 0 { 60 } else { 10 };
                    if r < bias {
                        let v = rng.gen_range(0..1000);
                        assert_eq!(ins(&mut t, k, v), m.insert(k, v));
                    } else if r < bias + 30 {
                        let k = match m.keys().next() {
                            Some(&k) if rng.gen_bool(0.8) => k,
                            _ => k,
                        };
                        assert_eq!(rm(&mut t, k), m.remove(&k));
                    } else if r < bias + 35 {
                        let kk = key(k);
                        if let Some(e) = t.get_mut(hash_bytes(&kk), &kk) {
                            e.set_string(b"7");
                            m.insert(k, 7);
                        }
                    } else {
                        assert_eq!(get(&t, k), m.get(&k).copied());
                    }
                    if ops.is_multiple_of(997) || m.len() < 64 {
                        check(&t);
                    }
                }
                check(&t);
                for (&k, &v) in &m {
                    assert_eq!(get(&t, k), Some(v));
                }
            }
        }
        while t.rehash_steps(100) {}
        assert_eq!(t.t0.size, 1);
    }

    #[test]
    fn scan_guarantee_across_resizes() {
        let mut during = 0;
        for seed in 0..12u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut t = KeyTable::new();
            let n = 2000 + seed * 300;
            for i in 0..n {
                ins(&mut t, i, i);
            }
            let stable: HashSet<u64> = (0..n).filter(|i| i % 7 == 0).collect();
            let mut doomed: Vec<u64> = (0..n).filter(|i| i % 7 != 0).collect();
            let mut next = 1_000_000u64;
            let mut returned = HashSet::new();
            let (mut cursor, mut step) = (0, 0u64);
            loop {
                during += usize::from(t.moving());
                cursor = t.scan(cursor, |e| {
                    returned.insert(e.key().to_vec());
                });
                if cursor == 0 {
                    break;
                }
                step += 1;
                // Grow hard, then shrink hard, interleaved with the scan.
                for _ in 0..rng.gen_range(1..40) {
                    if (step / 30) % 2 == 0 {
                        ins(&mut t, next, 0);
                        next += 1;
                    } else if let Some(k) = doomed.pop() {
                        rm(&mut t, k);
                    } else {
                        let k = next - 1;
                        if rm(&mut t, k).is_some() {
                            next -= 1;
                        }
                    }
                }
            }
            for k in &stable {
                assert!(returned.contains(&key(*k)), "seed {seed}: key {k} missed");
            }
            check(&t);
        }
        assert!(during > 0, "no scan step while rehashing");
    }

    #[test]
    fn random_and_sample_return_present_entries() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut t = KeyTable::new();
        assert!(t.random(&mut rng).is_none());
        for i in 0..5000 {
            ins(&mut t, i, i);
        }
        for i in 0..4990 {
            rm(&mut t, i);
        }
        let mut hit = HashSet::new();
        for _ in 0..3000 {
            let v = val(t.random(&mut rng).unwrap());
            assert!(v >= 4990);
            hit.insert(v);
            let mut n = 0;
            t.sample(5, &mut rng, |e| {
                assert!(val(e) >= 4990);
                n += 1;
            });
            assert!(n <= 5);
            t.rehash_steps(1);
        }
        assert_eq!(hit.len(), 10);
    }

    #[test]
    fn sample_is_not_biased_to_old_keys() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut t = KeyTable::new();
        // Old keys fill the first slots of every chain, new keys the later ones.
        for i in 0..4000 {
            ins(&mut t, i, 0);
        }
        for i in 4000..8000 {
            ins(&mut t, i, 1);
        }
        while t.rehash_steps(100) {}
        let mut new = 0;
        for _ in 0..4000 {
            t.sample(1, &mut rng, |e| new += val(e));
        }
        assert!(
            (1600..2400).contains(&new),
            "{new} of 4000 samples were new keys"
        );
    }

    #[test]
    fn memory_per_key() {
        let mut t = KeyTable::new();
        for i in 0..1_000_000u64 {
            let k = format!("key:{i:012}").into_bytes();
            t.insert_new(hash_bytes(&k), Entry::new_string(&k, b"", None, 0));
        }
        while t.rehash_steps(1000) {}
        assert_eq!(t.t0.size, 1 << 17);
        let children: usize = t.t0.buckets.iter().map(|b| b.chain().count() - 1).sum();
        let per_key = ((t.t0.size + children) * 64) as f64 / 1e6;
        assert!(per_key < 13.0, "{per_key} bytes per key");
    }
}
