//! A chained hash table with incremental rehashing, modelled on the behaviour of Redis's
//! `dict`, holding items that carry their own key.
//!
//! Why not `std::collections::HashMap`? Three Redis semantics need control over the layout:
//!
//! 1. **SCAN's cursor guarantee.** [`Dict::scan`] walks buckets in reverse-binary order, so an
//!    element present for the whole scan is returned at least once even if the table grows
//!    or shrinks between calls, or is in the middle of a rehash. Duplicates are allowed.
//! 2. **Random sampling.** [`Dict::random`] and [`Dict::sample`] pick buckets at random for
//!    RANDOMKEY, eviction and active expiry, in O(1) expected time.
//! 3. **No stall.** Resizing never rehashes everything at once: every mutating operation
//!    moves one bucket from the old table to the new one ([`Dict::rehash_steps`] lets a cron
//!    move more), so a 10M-key table resizes without a latency spike.
//!
//! # Layout and memory
//!
//! Each table is a power-of-two `Vec` of bucket heads (`Option<Box<Node>>`, one pointer) and
//! each item lives in one boxed `Node` holding only the `next` link and the item: ~8 bytes
//! of bucket array per key plus one allocation. The hash is *not* cached in the node; rehash
//! recomputes it from the key (as Redis does), which saves 8 bytes per key.
//!
//! # Resizing
//!
//! * Grow when `len >= buckets` (load factor 1) to the next power of two `>= 2 * len`.
//! * Shrink when `len * 10 < buckets` (below Redis's 10% minimum fill) and `buckets > 4`,
//!   to the next power of two `> len` (at least 4), so a shrink never immediately re-grows.
//! * One resize at a time: while one is in progress no other starts; if the target size is
//!   already wrong (heavy inserts during a shrink, or deletes during a grow) each operation
//!   moves `CATCH_UP_STEPS` (16) buckets instead of one, so it finishes soon and the next resize
//!   can start.
//!
//! A resize has two phases, both incremental:
//!
//! * **Preparing:** the new bucket array is allocated with `Vec::with_capacity` (address
//!   space only) and filled with empty heads `PREP_CHUNK` (1024) slots per operation, so that
//!   zeroing and page-faulting tens of megabytes is spread out instead of stalling one
//!   command. All operations still use only the old table.
//! * **Rehashing:** buckets are moved from the *end* of the old array (`Vec::pop`), so the
//!   old table's live buckets are exactly `0..old.buckets.len()` and dropping the old array
//!   at the end is O(1) rather than a pass over millions of empty slots. Lookups check the
//!   old table (if the bucket is still there) then the new one; inserts go to the new one.
//!
//! Keys are compared byte-for-byte; the caller passes `h = hash_bytes(key)` (see
//! [`crate::hash`]) so the hash is computed once per command and shared with shard selection.
//! The dict uses the hash's low bits for buckets.

use crate::hash::hash_bytes;
use std::fmt;
use std::iter::FusedIterator;
use std::mem;

use smallvec::SmallVec;

/// An item stored in a [`Dict`]: it owns its key.
pub trait DictItem {
    /// The key bytes; must not change while the item is in a dict.
    fn key(&self) -> &[u8];
}

/// Smallest table; also the size allocated on first insert.
const MIN_SIZE: usize = 4;
/// Empty buckets a single rehash step may skip before giving up, per bucket it would move.
const EMPTY_VISITS_PER_STEP: usize = 10;
/// Empty bucket heads written per step while preparing a new table (8 KiB: two pages).
const PREP_CHUNK: usize = 1024;
/// Steps per operation while the resize in progress is already known to be insufficient.
const CATCH_UP_STEPS: usize = 16;
/// Random bucket probes in [`Dict::random`] before falling back to a linear walk.
const RANDOM_PROBES: usize = 64;

type Link<T> = Option<Box<Node<T>>>;

/// A chain node: the next link and the item, nothing else.
struct Node<T> {
    next: Link<T>,
    item: T,
}

/// One bucket array. `size` is the logical power-of-two size (0 = unallocated); `buckets`
/// may be shorter than `size` while preparing (not yet filled) or while being rehashed away
/// (buckets popped from the end have already moved).
struct Table<T> {
    buckets: Vec<Link<T>>,
    size: usize,
}

impl<T> Table<T> {
    const fn empty() -> Self {
        Table {
            buckets: Vec::new(),
            size: 0,
        }
    }

    /// Index mask; `usize::MAX` for an unallocated table, whose `buckets.get` always misses.
    #[inline]
    fn mask(&self) -> usize {
        self.size.wrapping_sub(1)
    }

    /// The live bucket for `h`, if it is still in this table.
    #[inline]
    fn bucket(&self, h: u64) -> Option<&Link<T>> {
        self.buckets.get(h as usize & self.mask())
    }

    #[inline]
    fn bucket_mut(&mut self, h: u64) -> Option<&mut Link<T>> {
        let i = h as usize & self.mask();
        self.buckets.get_mut(i)
    }

    /// Pushes a node at the head of its chain. The bucket must exist.
    #[inline]
    fn push(&mut self, h: u64, mut node: Box<Node<T>>) {
        let i = h as usize & self.mask();
        let slot = &mut self.buckets[i];
        node.next = slot.take();
        *slot = Some(node);
    }
}

impl<T> Drop for Table<T> {
    /// Unlinks chains iteratively: the default recursive drop of a long chain could overflow
    /// the stack. Chains are short with a seeded hash, but this costs nothing extra.
    fn drop(&mut self) {
        for slot in &mut self.buckets {
            let mut cur = slot.take();
            while let Some(mut node) = cur {
                cur = node.next.take();
            }
        }
    }
}

/// A chained hash table with incremental rehashing; see the module docs.
pub struct Dict<T> {
    /// The main table; while resizing, the table being drained.
    t0: Table<T>,
    /// The table being prepared or filled while resizing; unallocated otherwise.
    t1: Table<T>,
    len: usize,
}

impl<T> Default for Dict<T> {
    fn default() -> Self {
        Dict {
            t0: Table::empty(),
            t1: Table::empty(),
            len: 0,
        }
    }
}

/// A copy (COPY, DEBUG RELOAD-like paths). Items are re-inserted under
/// [`crate::hash::hash_bytes`], the hash every user of `Dict` passes in.
impl<T: DictItem + Clone> Clone for Dict<T> {
    fn clone(&self) -> Self {
        let mut d = Dict::new();
        for item in self.iter() {
            d.insert_new(crate::hash::hash_bytes(item.key()), item.clone());
        }
        d
    }
}

impl<T: DictItem> Dict<T> {
    /// An empty dict; allocates nothing until the first insert.
    pub const fn new() -> Self {
        Dict {
            t0: Table::empty(),
            t1: Table::empty(),
            len: 0,
        }
    }

    /// Number of items.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total bucket slots of both tables (allocated size), for memory accounting and
    /// DEBUG HTSTATS.
    pub fn buckets(&self) -> usize {
        self.t0.size + self.t1.size
    }

    /// Bytes of the bucket arrays plus the nodes, not counting heap owned by the items.
    pub fn mem_bytes(&self) -> usize {
        (self.t0.buckets.capacity() + self.t1.buckets.capacity()) * mem::size_of::<Link<T>>()
            + self.len * mem::size_of::<Node<T>>()
    }

    /// Whether a resize (preparing or rehashing) is in progress.
    #[inline]
    pub fn is_rehashing(&self) -> bool {
        self.t1.size != 0
    }

    /// Whether items may be in `t1` (the new table is fully prepared and being filled).
    #[inline]
    fn moving(&self) -> bool {
        self.t1.size != 0 && self.t1.buckets.len() == self.t1.size
    }

    /// Looks up `key`; `h` must be `hash_bytes(key)`. Never moves anything.
    #[inline]
    pub fn get(&self, h: u64, key: &[u8]) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        if let Some(found) = self.t0.bucket(h).and_then(|b| chain_find(b, key)) {
            return Some(found);
        }
        if self.moving() {
            return self.t1.bucket(h).and_then(|b| chain_find(b, key));
        }
        None
    }

    /// Looks up `key` for modification (the key must not change). May do one rehash step.
    #[inline]
    pub fn get_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut T> {
        if self.len == 0 {
            return None;
        }
        self.op_step();
        self.find_mut(h, key)
    }

    fn find_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut T> {
        let moving = self.moving();
        if let Some(found) = self.t0.bucket_mut(h).and_then(|b| chain_find_mut(b, key)) {
            return Some(found);
        }
        if moving {
            return self.t1.bucket_mut(h).and_then(|b| chain_find_mut(b, key));
        }
        None
    }

    /// Inserts `item` (`h` = hash of its key), replacing and returning an item with an equal
    /// key if there was one.
    pub fn insert(&mut self, h: u64, item: T) -> Option<T> {
        self.op_step();
        if let Some(slot) = self.find_mut(h, item.key()) {
            return Some(mem::replace(slot, item));
        }
        self.add(h, item);
        None
    }

    /// Inserts `item` whose key the caller guarantees is absent: skips the lookup.
    /// (Checked in debug builds.)
    pub fn insert_new(&mut self, h: u64, item: T) {
        debug_assert!(
            self.get(h, item.key()).is_none(),
            "Dict::insert_new with a key that is present"
        );
        self.op_step();
        self.add(h, item);
    }

    fn add(&mut self, h: u64, item: T) {
        if self.t0.size == 0 {
            self.t0 = table_with_size(MIN_SIZE);
        }
        self.resize_if_needed();
        let node = Box::new(Node { next: None, item });
        if self.moving() {
            self.t1.push(h, node);
        } else {
            self.t0.push(h, node);
        }
        self.len += 1;
    }

    /// Removes and returns the item with `key`. May do one rehash step and start a shrink.
    pub fn remove(&mut self, h: u64, key: &[u8]) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.op_step();
        let mut found = self.t0.bucket_mut(h).and_then(|b| chain_remove(b, key));
        if found.is_none() && self.moving() {
            found = self.t1.bucket_mut(h).and_then(|b| chain_remove(b, key));
        }
        if found.is_some() {
            self.len -= 1;
            self.resize_if_needed();
        }
        found
    }

    /// Drops every item and frees the tables.
    pub fn clear(&mut self) {
        *self = Dict::new();
    }

    /// Moves the whole dict out, leaving an empty one (allocation-free), so that a large
    /// dict can be dropped on another thread (FLUSHALL ASYNC) or swapped (SWAPDB).
    pub fn take(&mut self) -> Dict<T> {
        mem::take(self)
    }

    /// Iterates over all items in unspecified order.
    pub fn iter(&self) -> Iter<'_, T> {
        let t1: &[Link<T>] = if self.moving() { &self.t1.buckets } else { &[] };
        Iter {
            buckets: self.t0.buckets.iter().chain(t1.iter()),
            node: None,
            remaining: self.len,
        }
    }

    /// Keeps only the items for which `f` returns true (it may modify them, not their key).
    /// May start a shrink afterwards.
    pub fn retain(&mut self, mut f: impl FnMut(&mut T) -> bool) {
        let mut removed = 0;
        let moving = self.moving();
        let t1: &mut [Link<T>] = if moving {
            &mut self.t1.buckets
        } else {
            &mut []
        };
        for slot in self.t0.buckets.iter_mut().chain(t1.iter_mut()) {
            let mut link = slot;
            while let Some(mut node) = link.take() {
                if f(&mut node.item) {
                    link = &mut link.insert(node).next;
                } else {
                    *link = node.next.take();
                    removed += 1;
                }
            }
        }
        self.len -= removed;
        if removed > 0 {
            self.resize_if_needed();
        }
    }

    /// One SCAN step with Redis's cursor semantics: cursor 0 starts, the returned cursor is
    /// the next one to pass, and 0 means done. Calls `f` for every item of one bucket (while
    /// rehashing: of one bucket of the smaller table and every bucket of the larger table
    /// that it expands to).
    ///
    /// The cursor counts with its bits reversed, i.e. it advances the *high* bits of the
    /// bucket index first. A table of 2^k buckets splits each bucket `b` into `b` and
    /// `b + 2^k` when it doubles and merges them when it halves, and with reversed counting
    /// the visited buckets always form a prefix that stays a prefix (up to a partially
    /// visited bucket, which yields duplicates) under both. Hence: every item present from
    /// the first call to the last is returned at least once.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&T)) -> u64 {
        let (plan, next) = self.scan_plan(cursor);
        for (in_t1, i) in plan {
            let t = if in_t1 { &self.t1 } else { &self.t0 };
            chain_each(&t.buckets[i], &mut f);
        }
        next
    }

    /// [`Dict::scan`] with mutable access to the items (their keys must not change).
    pub fn scan_mut(&mut self, cursor: u64, mut f: impl FnMut(&mut T)) -> u64 {
        let (plan, next) = self.scan_plan(cursor);
        for (in_t1, i) in plan {
            let t = if in_t1 { &mut self.t1 } else { &mut self.t0 };
            let mut cur = t.buckets[i].as_deref_mut();
            while let Some(node) = cur {
                f(&mut node.item);
                cur = node.next.as_deref_mut();
            }
        }
        next
    }

    /// The live buckets one SCAN step visits, as (in `t1`, index), and the next cursor.
    fn scan_plan(&self, cursor: u64) -> (SmallVec<[(bool, usize); 4]>, u64) {
        let mut plan = SmallVec::new();
        if self.len == 0 {
            return (plan, 0);
        }
        let live = |t: &Table<T>, v: u64| {
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
        // Visit every bucket of the large table that the small bucket expands to: those
        // whose low bits equal `v & m0`, enumerated by counting the extra bits in reverse.
        loop {
            plan.extend(live(large, v).map(|i| (!small_is_t1, i)));
            v = next_cursor(v, m1);
            if v & (m0 ^ m1) == 0 {
                break;
            }
        }
        (plan, v)
    }

    /// A random item: a uniformly chosen non-empty bucket, then a uniform element of its
    /// chain (so not exactly uniform over items, as in Redis). `None` if empty.
    ///
    /// Expected probes are buckets / non-empty buckets (about 10 at the minimum fill); after
    /// `RANDOM_PROBES` misses it walks from a random bucket to the next non-empty one, so
    /// a nearly empty huge table (e.g. mid-rehash after mass deletes) cannot spin.
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        // The live buckets of both tables, concatenated.
        let live0 = &self.t0.buckets[..];
        let live1: &[Link<T>] = if self.moving() { &self.t1.buckets } else { &[] };
        let total = live0.len() + live1.len();
        let at = |i: usize| {
            if i < live0.len() {
                &live0[i]
            } else {
                &live1[i - live0.len()]
            }
        };
        let mut head = None;
        for _ in 0..RANDOM_PROBES {
            if let Some(node) = at(rng.gen_range(0..total)) {
                head = Some(&**node);
                break;
            }
        }
        let head = match head {
            Some(h) => h,
            None => {
                let start = rng.gen_range(0..total);
                (0..total)
                    .find_map(|k| at((start + k) % total).as_deref())
                    .expect("len > 0 but no non-empty bucket")
            }
        };
        let mut chain_len = 0;
        let mut cur = Some(head);
        while let Some(n) = cur {
            chain_len += 1;
            cur = n.next.as_deref();
        }
        let mut node = head;
        for _ in 0..rng.gen_range(0..chain_len) {
            node = node.next.as_deref().expect("counted chain");
        }
        Some(&node.item)
    }

    /// A nearly uniform random item (HRANDFIELD, SRANDMEMBER; Redis's fair random key).
    /// [`Dict::random`] favours items alone in their bucket, so this samples up to 20 items
    /// from consecutive buckets and picks one of them uniformly. `sample` lends items only to
    /// its callback, so it runs twice over the same deterministic bucket walk: once to count,
    /// once to copy the chosen key, which is then looked up.
    pub fn fair_random(&self, rng: &mut impl rand::Rng) -> Option<&T> {
        const FAIR_SAMPLE: usize = 20;
        let walk = rand::rngs::mock::StepRng::new(rng.gen(), 0x9E37_79B9_7F4A_7C15);
        let mut seen = 0usize;
        self.sample(FAIR_SAMPLE, &mut walk.clone(), |_| seen += 1);
        if seen == 0 {
            return self.random(rng);
        }
        let want = rng.gen_range(0..seen);
        let mut i = 0usize;
        let mut chosen: Option<Box<[u8]>> = None;
        self.sample(FAIR_SAMPLE, &mut walk.clone(), |item| {
            if i == want {
                chosen = Some(item.key().into());
            }
            i += 1;
        });
        match chosen {
            Some(key) => self.get(crate::hash::hash_bytes(&key), &key),
            None => self.random(rng),
        }
    }

    /// Calls `f` on up to `n` items taken from consecutive buckets starting at a random one
    /// (both tables while rehashing), for eviction and active-expiry sampling. Much cheaper
    /// than `n` calls to [`Dict::random`], at the price of correlated picks; an item may be
    /// reported twice if the walk wraps. Bounded work: at most `10 * n` bucket positions are
    /// examined, and a long run of empty buckets triggers a jump to a new random position.
    pub fn sample(&self, n: usize, rng: &mut impl rand::Rng, mut f: impl FnMut(&T)) {
        let want = n.min(self.len);
        if want == 0 {
            return;
        }
        let moving = self.moving();
        let live0 = &self.t0.buckets[..];
        let live1: &[Link<T>] = if moving { &self.t1.buckets } else { &[] };
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
                // Only possible while shrinking: nothing here in either table; the old
                // table's remaining buckets start at 0.
                i = 0;
            }
            for table in [live0, live1] {
                match table.get(i) {
                    None => {}
                    Some(None) => {
                        empty_run += 1;
                        if empty_run >= 5 && empty_run > want {
                            i = rng.gen::<u64>() as usize & mask;
                            empty_run = 0;
                        }
                    }
                    Some(Some(head)) => {
                        empty_run = 0;
                        let mut cur = Some(&**head);
                        while let Some(node) = cur {
                            f(&node.item);
                            got += 1;
                            if got == want {
                                return;
                            }
                            cur = node.next.as_deref();
                        }
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Does up to `n` steps of an in-progress resize (each step moves one non-empty bucket,
    /// skipping at most 10 empty ones, or prepares `PREP_CHUNK` slots of the new table).
    /// Before and after, if no resize is in progress, starts one if the load calls for it:
    /// a cron can so shrink a dict that stopped receiving deletes mid-grow. Returns whether
    /// a resize is in progress, i.e. whether calling again would do more work; looping
    /// until `false` leaves a right-sized, stable table.
    pub fn rehash_steps(&mut self, n: usize) -> bool {
        self.resize_if_needed();
        self.steps(n);
        self.resize_if_needed();
        self.is_rehashing()
    }

    /// The per-operation share of resize work.
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

    /// While resizing: the new table would need another resize as soon as this one ends.
    fn target_is_stale(&self) -> bool {
        let s = self.t1.size;
        self.len > s || (s > MIN_SIZE && self.len * 10 < s)
    }

    /// Starts a grow or shrink if the load calls for it and none is in progress.
    fn resize_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        let size = self.t0.size;
        if size == 0 {
            return;
        }
        if self.len >= size {
            self.start_resize((self.len * 2).next_power_of_two());
        } else if size > MIN_SIZE && self.len * 10 < size {
            self.start_resize((self.len + 1).next_power_of_two().max(MIN_SIZE));
        }
    }

    fn start_resize(&mut self, size: usize) {
        debug_assert!(size.is_power_of_two() && size != self.t0.size);
        self.t1 = Table {
            buckets: Vec::with_capacity(size),
            size,
        };
        if size <= PREP_CHUNK {
            self.t1.buckets.resize_with(size, || None);
        }
    }

    fn steps(&mut self, n: usize) {
        if !self.is_rehashing() {
            return;
        }
        let t1 = &mut self.t1;
        if t1.buckets.len() < t1.size {
            let len = (t1.buckets.len() + n.saturating_mul(PREP_CHUNK)).min(t1.size);
            t1.buckets.resize_with(len, || None);
            return;
        }
        let mut empty_budget = n.saturating_mul(EMPTY_VISITS_PER_STEP);
        let mut moved = 0;
        while moved < n {
            match self.t0.buckets.pop() {
                None => break,
                Some(None) => {
                    empty_budget -= 1;
                    if empty_budget == 0 {
                        break;
                    }
                }
                Some(Some(head)) => {
                    let mut cur = Some(head);
                    while let Some(mut node) = cur {
                        cur = node.next.take();
                        let h = hash_bytes(node.item.key());
                        self.t1.push(h, node);
                    }
                    moved += 1;
                }
            }
        }
        if self.t0.buckets.is_empty() {
            // Done: the drained array has length 0, so dropping it is just a free.
            self.t0 = mem::replace(&mut self.t1, Table::empty());
        }
    }
}

fn table_with_size<T>(size: usize) -> Table<T> {
    let mut buckets = Vec::with_capacity(size);
    buckets.resize_with(size, || None);
    Table { buckets, size }
}

/// The reverse-binary increment: set the bits above `mask` so the carry passes through
/// them, then add one to the bit-reversed value.
#[inline]
fn next_cursor(v: u64, mask: u64) -> u64 {
    (v | !mask).reverse_bits().wrapping_add(1).reverse_bits()
}

#[inline]
fn chain_find<'a, T: DictItem>(head: &'a Link<T>, key: &[u8]) -> Option<&'a T> {
    let mut cur = head.as_deref();
    while let Some(node) = cur {
        if node.item.key() == key {
            return Some(&node.item);
        }
        cur = node.next.as_deref();
    }
    None
}

#[inline]
fn chain_find_mut<'a, T: DictItem>(head: &'a mut Link<T>, key: &[u8]) -> Option<&'a mut T> {
    let mut cur = head.as_deref_mut();
    while let Some(node) = cur {
        if node.item.key() == key {
            return Some(&mut node.item);
        }
        cur = node.next.as_deref_mut();
    }
    None
}

/// Unlinks the node with `key` from the chain at `head`, returning its item.
fn chain_remove<T: DictItem>(head: &mut Link<T>, key: &[u8]) -> Option<T> {
    let mut link = head;
    // Advance `link` to the slot that points at the match (or at the end).
    while link.as_ref().is_some_and(|n| n.item.key() != key) {
        link = &mut link.as_mut().expect("checked non-empty").next;
    }
    let node = link.take()?;
    let Node { next, item } = *node;
    *link = next;
    Some(item)
}

#[inline]
fn chain_each<T>(head: &Link<T>, f: &mut impl FnMut(&T)) {
    let mut cur = head.as_deref();
    while let Some(node) = cur {
        f(&node.item);
        cur = node.next.as_deref();
    }
}

/// Iterator over a [`Dict`]'s items; see [`Dict::iter`].
pub struct Iter<'a, T> {
    buckets: std::iter::Chain<std::slice::Iter<'a, Link<T>>, std::slice::Iter<'a, Link<T>>>,
    node: Option<&'a Node<T>>,
    remaining: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(node) = self.node {
                self.node = node.next.as_deref();
                self.remaining -= 1;
                return Some(&node.item);
            }
            if self.remaining == 0 {
                return None;
            }
            self.node = self.buckets.next()?.as_deref();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}
impl<T> FusedIterator for Iter<'_, T> {}

impl<'a, T: DictItem> IntoIterator for &'a Dict<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T: DictItem + fmt::Debug> fmt::Debug for Dict<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use std::collections::{HashMap, HashSet};

    #[derive(Debug, Clone, PartialEq)]
    struct It {
        k: Vec<u8>,
        v: u64,
    }

    impl DictItem for It {
        fn key(&self) -> &[u8] {
            &self.k
        }
    }

    fn key(i: u64) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    fn it(i: u64, v: u64) -> It {
        It { k: key(i), v }
    }

    fn ins(d: &mut Dict<It>, i: u64, v: u64) -> Option<It> {
        let k = key(i);
        d.insert(hash_bytes(&k), It { k, v })
    }

    fn rm(d: &mut Dict<It>, i: u64) -> Option<It> {
        let k = key(i);
        d.remove(hash_bytes(&k), &k)
    }

    fn get(d: &Dict<It>, i: u64) -> Option<&It> {
        let k = key(i);
        d.get(hash_bytes(&k), &k)
    }

    /// Structural invariants: every item sits in the bucket its hash selects, in the table
    /// it may be in, exactly once, and `len` counts them.
    fn check(d: &Dict<It>) {
        let mut seen = HashSet::new();
        let mut walk = |t: &Table<It>| {
            assert!(t.size == 0 || t.size.is_power_of_two());
            assert!(t.buckets.len() <= t.size);
            for (i, b) in t.buckets.iter().enumerate() {
                let mut cur = b.as_deref();
                while let Some(n) = cur {
                    assert_eq!(hash_bytes(&n.item.k) as usize & t.mask(), i);
                    assert!(seen.insert(n.item.k.clone()), "duplicate key");
                    cur = n.next.as_deref();
                }
            }
        };
        walk(&d.t0);
        walk(&d.t1);
        assert_eq!(seen.len(), d.len());
        if !d.is_empty() {
            assert!(d.t0.size >= MIN_SIZE);
        }
        if !d.is_rehashing() {
            assert_eq!(d.t0.buckets.len(), d.t0.size);
        } else {
            assert!(!d.t0.buckets.is_empty());
            if !d.moving() {
                // Preparing: t0 untouched, t1 holds nothing yet.
                assert_eq!(d.t0.buckets.len(), d.t0.size);
                assert!(d.t1.buckets.iter().all(Option::is_none));
            }
        }
        assert_eq!(d.iter().count(), d.len());
        assert_eq!(d.iter().len(), d.len());
    }

    fn check_model(d: &Dict<It>, m: &HashMap<u64, u64>) {
        check(d);
        assert_eq!(d.len(), m.len());
        for (&k, &v) in m {
            assert_eq!(get(d, k).map(|x| x.v), Some(v), "key {k}");
        }
        let got: HashMap<Vec<u8>, u64> = d.iter().map(|x| (x.k.clone(), x.v)).collect();
        assert_eq!(got.len(), m.len());
        for (&k, &v) in m {
            assert_eq!(got.get(&key(k)), Some(&v));
        }
    }

    /// A set of u64 keys with O(1) random choice, for driving removals at any size.
    #[derive(Default)]
    struct KeySet {
        v: Vec<u64>,
        pos: HashMap<u64, usize>,
    }

    impl KeySet {
        fn insert(&mut self, k: u64) -> bool {
            if self.pos.contains_key(&k) {
                return false;
            }
            self.pos.insert(k, self.v.len());
            self.v.push(k);
            true
        }
        fn remove(&mut self, k: u64) -> bool {
            let Some(i) = self.pos.remove(&k) else {
                return false;
            };
            self.v.swap_remove(i);
            if let Some(&moved) = self.v.get(i) {
                self.pos.insert(moved, i);
            }
            true
        }
        fn choose(&self, rng: &mut impl Rng) -> Option<u64> {
            (!self.v.is_empty()).then(|| self.v[rng.gen_range(0..self.v.len())])
        }
    }

    #[test]
    fn new_allocates_nothing() {
        let mut d: Dict<It> = Dict::new();
        assert_eq!(d.buckets(), 0);
        assert_eq!(d.mem_bytes(), 0);
        assert!(get(&d, 1).is_none());
        assert!(rm(&mut d, 1).is_none());
        assert!(!d.rehash_steps(10));
        assert_eq!(d.scan(0, |_| panic!()), 0);
        assert!(d.random(&mut StdRng::seed_from_u64(1)).is_none());
        d.sample(5, &mut StdRng::seed_from_u64(1), |_| panic!());
        assert_eq!(d.iter().count(), 0);
        assert_eq!(d.buckets(), 0);
    }

    #[test]
    fn basic_ops() {
        let mut d = Dict::new();
        assert!(ins(&mut d, 1, 10).is_none());
        assert_eq!(d.buckets(), MIN_SIZE);
        assert_eq!(ins(&mut d, 1, 11), Some(it(1, 10)));
        assert_eq!(d.len(), 1);
        let k = key(2);
        d.insert_new(hash_bytes(&k), It { k, v: 20 });
        assert_eq!(get(&d, 2).unwrap().v, 20);
        let k = key(2);
        d.get_mut(hash_bytes(&k), &k).unwrap().v = 21;
        assert_eq!(get(&d, 2).unwrap().v, 21);
        assert_eq!(rm(&mut d, 1), Some(it(1, 11)));
        assert_eq!(rm(&mut d, 1), None);
        assert_eq!(d.len(), 1);
        assert!(!d.is_empty());
        check(&d);
        let taken = d.take();
        assert!(d.is_empty());
        assert_eq!(d.buckets(), 0);
        assert_eq!(taken.len(), 1);
        assert_eq!(
            format!("{taken:?}"),
            r#"{It { k: [107, 101, 121, 58, 50], v: 21 }}"#
        );
    }

    /// Random operations against a HashMap through many grow and shrink cycles, checking
    /// the structure after every operation on small sizes and periodically on larger ones.
    #[test]
    fn model_grow_shrink_cycles() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut d = Dict::new();
        let mut m: HashMap<u64, u64> = HashMap::new();
        let mut present = KeySet::default();
        let mut grows = 0;
        let mut shrinks = 0;
        for cycle in 0..8u64 {
            let target = [40, 300, 3000, 7000][cycle as usize % 4];
            let space = target * 2;
            // Phase 1: mostly inserts up to `target`; phase 2: mostly removes down to ~0.
            for phase in 0..2 {
                let mut ops = 0u64;
                loop {
                    let done = if phase == 0 {
                        m.len() as u64 >= target
                    } else {
                        m.len() <= 2
                    };
                    if done {
                        break;
                    }
                    ops += 1;
                    let was_resizing = d.is_rehashing();
                    let k = rng.gen_range(0..space);
                    let r = rng.gen_range(0..100);
                    let insert_bias = if phase == 0 { 60 } else { 10 };
                    if r < insert_bias {
                        let v = rng.gen();
                        assert_eq!(ins(&mut d, k, v).map(|x| x.v), m.insert(k, v));
                        present.insert(k);
                    } else if r < insert_bias + 30 {
                        // Remove a present key most of the time, so the drain terminates.
                        let k = if rng.gen_bool(0.8) && !m.is_empty() {
                            present.choose(&mut rng).unwrap()
                        } else {
                            k
                        };
                        assert_eq!(rm(&mut d, k).map(|x| x.v), m.remove(&k));
                        present.remove(k);
                    } else if r < insert_bias + 35 {
                        let kk = key(k);
                        let got = d.get_mut(hash_bytes(&kk), &kk);
                        assert_eq!(got.as_ref().map(|x| x.v), m.get(&k).copied());
                        if let Some(x) = got {
                            x.v += 1;
                            *m.get_mut(&k).unwrap() += 1;
                        }
                    } else if r < insert_bias + 38 && !m.contains_key(&k) {
                        let kk = key(k);
                        d.insert_new(hash_bytes(&kk), It { k: kk, v: 7 });
                        m.insert(k, 7);
                        present.insert(k);
                    } else {
                        assert_eq!(get(&d, k).map(|x| x.v), m.get(&k).copied());
                    }
                    if !was_resizing && d.is_rehashing() {
                        if d.t1.size > d.t0.size {
                            grows += 1;
                        } else {
                            shrinks += 1;
                        }
                    }
                    let every = [1, 17, 997, 997][cycle as usize % 4];
                    if ops.checked_rem(every) == Some(0) {
                        check(&d);
                    }
                }
                check_model(&d, &m);
            }
        }
        assert!(grows >= 8 * 4, "grows {grows}");
        assert!(shrinks >= 8 * 2, "shrinks {shrinks}");
        // Drain completely; the table ends small.
        for k in m.keys().copied().collect::<Vec<_>>() {
            assert!(rm(&mut d, k).is_some());
        }
        while d.rehash_steps(100) {}
        check(&d);
        assert!(d.is_empty());
        assert_eq!(d.buckets(), MIN_SIZE);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        InsertNew(u16),
        Remove(u16),
        Get(u16),
        GetMut(u16),
        Steps(u8),
        Retain(u8),
        Bulk(u16, u16, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => any::<u16>().prop_map(|k| Op::Insert(k % 600)),
            2 => any::<u16>().prop_map(|k| Op::InsertNew(k % 600)),
            5 => any::<u16>().prop_map(|k| Op::Remove(k % 600)),
            3 => any::<u16>().prop_map(|k| Op::Get(k % 600)),
            2 => any::<u16>().prop_map(|k| Op::GetMut(k % 600)),
            1 => any::<u8>().prop_map(|n| Op::Steps(n % 8)),
            1 => any::<u8>().prop_map(|m| Op::Retain(m % 5 + 2)),
            1 => (any::<u16>(), any::<u16>(), any::<bool>())
                .prop_map(|(a, n, ins)| Op::Bulk(a % 600, n % 400, ins)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn prop_model(ops in proptest::collection::vec(op(), 1..400)) {
            let mut d = Dict::new();
            let mut m: HashMap<u64, u64> = HashMap::new();
            for (n, op) in ops.into_iter().enumerate() {
                let v = n as u64;
                match op {
                    Op::Insert(k) => {
                        let k = k as u64;
                        prop_assert_eq!(ins(&mut d, k, v).map(|x| x.v), m.insert(k, v));
                    }
                    Op::InsertNew(k) => {
                        let k = k as u64;
                        if let std::collections::hash_map::Entry::Vacant(e) = m.entry(k) {
                            e.insert(v);
                            let kk = key(k);
                            d.insert_new(hash_bytes(&kk), It { k: kk, v });
                        }
                    }
                    Op::Remove(k) => {
                        let k = k as u64;
                        prop_assert_eq!(rm(&mut d, k).map(|x| x.v), m.remove(&k));
                    }
                    Op::Get(k) => {
                        let k = k as u64;
                        prop_assert_eq!(get(&d, k).map(|x| x.v), m.get(&k).copied());
                    }
                    Op::GetMut(k) => {
                        let k = k as u64;
                        let kk = key(k);
                        if let Some(x) = d.get_mut(hash_bytes(&kk), &kk) {
                            x.v = v;
                        }
                        if let Some(x) = m.get_mut(&k) {
                            *x = v;
                        }
                    }
                    Op::Steps(s) => {
                        let more = d.rehash_steps(s as usize);
                        prop_assert_eq!(more, d.is_rehashing());
                    }
                    Op::Retain(md) => {
                        d.retain(|x| x.v % md as u64 != 0);
                        m.retain(|_, x| *x % md as u64 != 0);
                    }
                    Op::Bulk(a, cnt, insert) => {
                        for k in a as u64..(a + cnt) as u64 {
                            if insert {
                                prop_assert_eq!(ins(&mut d, k, v).map(|x| x.v), m.insert(k, v));
                            } else {
                                prop_assert_eq!(rm(&mut d, k).map(|x| x.v), m.remove(&k));
                            }
                        }
                    }
                }
                if n.checked_rem(8) == Some(0) || d.len() < 100 {
                    check(&d);
                }
            }
            check_model(&d, &m);
        }
    }

    /// Runs a full SCAN over `d`, calling `mutate` between steps, and checks that every key
    /// present for the whole scan was returned. Returns (grows seen, shrinks seen, steps
    /// taken while rehashing).
    fn scan_with_mutations(
        d: &mut Dict<It>,
        present: &mut HashSet<u64>,
        mut mutate: impl FnMut(usize, &mut Dict<It>, &mut HashSet<u64>, &mut HashSet<u64>),
    ) -> (usize, usize, usize) {
        let mut stable: HashSet<u64> = present.clone();
        let mut removed_during = HashSet::new();
        let mut returned: HashSet<Vec<u8>> = HashSet::new();
        let (mut grows, mut shrinks, mut during_rehash) = (0, 0, 0);
        let mut cursor = 0;
        let mut step = 0;
        let mut last_size = d.t0.size;
        loop {
            if d.moving() {
                during_rehash += 1;
            }
            cursor = d.scan(cursor, |x| {
                returned.insert(x.k.clone());
            });
            if cursor == 0 {
                break;
            }
            mutate(step, d, present, &mut removed_during);
            if d.t0.size > last_size {
                grows += 1;
            } else if d.t0.size < last_size {
                shrinks += 1;
            }
            last_size = d.t0.size;
            step += 1;
            assert!(step < 10_000_000, "scan does not terminate");
        }
        stable.retain(|k| !removed_during.contains(k));
        for k in &stable {
            assert!(
                returned.contains(&key(*k)),
                "key {k} present throughout but not returned"
            );
        }
        (grows, shrinks, during_rehash)
    }

    #[test]
    fn scan_without_mutation_returns_each_once_per_bucket() {
        let mut d = Dict::new();
        for i in 0..1000 {
            ins(&mut d, i, i);
        }
        while d.rehash_steps(100) {}
        let mut seen = Vec::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            cursor = d.scan(cursor, |x| seen.push(x.v));
            calls += 1;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(calls, d.buckets());
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn scan_guarantee_across_grow_and_shrink() {
        for seed in 0..20u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut d = Dict::new();
            let mut present = HashSet::new();
            let n = 500 + seed * 50;
            for i in 0..n {
                ins(&mut d, i, i);
                present.insert(i);
            }
            let mut next = 1_000_000u64;
            let mut extra = KeySet::default();
            // Grow hard, then remove the extra keys and some originals to force shrinks,
            // then grow again; all interleaved with the scan.
            let (grows, shrinks, during) =
                scan_with_mutations(&mut d, &mut present, |step, d, present, removed| {
                    let phase = (step / 40) % 3;
                    let burst = rng.gen_range(1..60);
                    for _ in 0..burst {
                        match phase {
                            0 => {
                                ins(d, next, 0);
                                present.insert(next);
                                extra.insert(next);
                                next += 1;
                            }
                            _ => {
                                // Remove mostly scan-time keys, sometimes an original.
                                let k = match extra.choose(&mut rng) {
                                    Some(k) if rng.gen_bool(0.9) => k,
                                    _ => rng.gen_range(0..n),
                                };
                                extra.remove(k);
                                if present.remove(&k) {
                                    rm(d, k).unwrap();
                                    removed.insert(k);
                                }
                            }
                        }
                    }
                    if rng.gen_bool(0.1) {
                        d.rehash_steps(rng.gen_range(1..20));
                    }
                });
            assert!(grows > 0, "seed {seed}: no grow during scan");
            assert!(during > 0, "seed {seed}: no scan step while rehashing");
            let _ = shrinks;
        }
    }

    #[test]
    fn scan_guarantee_shrink_mid_scan() {
        for seed in 0..10u64 {
            let mut rng = StdRng::seed_from_u64(100 + seed);
            let mut d = Dict::new();
            let mut present = HashSet::new();
            // Many keys that go away, a few that stay for the whole scan.
            for i in 0..10_000 {
                ins(&mut d, i, i);
                present.insert(i);
            }
            let mut doomed: Vec<u64> = (0..10_000).filter(|i| i % 97 != 0).collect();
            doomed.shuffle(&mut rng);
            let (_, shrinks, during) =
                scan_with_mutations(&mut d, &mut present, |_, d, present, removed| {
                    for _ in 0..rng.gen_range(0..200) {
                        if let Some(k) = doomed.pop() {
                            rm(d, k).unwrap();
                            present.remove(&k);
                            removed.insert(k);
                        }
                    }
                });
            assert!(shrinks > 0, "seed {seed}: no shrink during scan");
            assert!(during > 0, "seed {seed}: no scan step while rehashing");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Arbitrary insert/remove bursts between scan steps.
        #[test]
        fn prop_scan_guarantee(
            initial in 0u64..3000,
            bursts in proptest::collection::vec((any::<bool>(), 0u16..300, any::<u8>()), 1..200),
        ) {
            let mut d = Dict::new();
            let mut present = HashSet::new();
            let mut keys = KeySet::default();
            for i in 0..initial {
                ins(&mut d, i, i);
                present.insert(i);
                keys.insert(i);
            }
            let mut next = 1_000_000u64;
            let mut bursts = bursts.into_iter();
            let mut rng = StdRng::seed_from_u64(initial);
            scan_with_mutations(&mut d, &mut present, |_, d, present, removed| {
                let Some((insert, n, steps)) = bursts.next() else { return };
                for _ in 0..n {
                    if insert {
                        ins(d, next, 0);
                        present.insert(next);
                        keys.insert(next);
                        next += 1;
                    } else {
                        let Some(k) = keys.choose(&mut rng) else { break };
                        rm(d, k).unwrap();
                        keys.remove(k);
                        present.remove(&k);
                        removed.insert(k);
                    }
                }
                d.rehash_steps(steps as usize % 4);
            });
        }
    }

    #[test]
    fn random_and_sample_return_present_items() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut d = Dict::new();
        let mut present = HashSet::new();
        for round in 0..3000u64 {
            if rng.gen_bool(0.6) || present.len() < 5 {
                ins(&mut d, round, 0);
                present.insert(key(round));
            } else {
                let k = present.iter().next().cloned().unwrap();
                d.remove(hash_bytes(&k), &k).unwrap();
                present.remove(&k);
            }
            let x = d.random(&mut rng).unwrap();
            assert!(present.contains(&x.k));
            let mut n = 0;
            let want = rng.gen_range(1..20);
            d.sample(want, &mut rng, |x| {
                assert!(present.contains(&x.k));
                n += 1;
            });
            assert!(n <= want);
        }
        // Sampling on a reasonably full table finds what it asks for.
        let mut n = 0;
        d.sample(16, &mut rng, |_| n += 1);
        assert_eq!(n, 16);
    }

    #[test]
    fn random_hits_every_item() {
        let mut rng = StdRng::seed_from_u64(3);
        for size in [1u64, 2, 7, 20, 50] {
            let mut d = Dict::new();
            for i in 0..size {
                ins(&mut d, i, i);
            }
            let mut hit = HashSet::new();
            for _ in 0..20_000 {
                hit.insert(d.random(&mut rng).unwrap().v);
            }
            assert_eq!(hit.len() as u64, size, "size {size}");
        }
    }

    #[test]
    fn random_and_sample_during_rehash_and_sparse() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut d = Dict::new();
        for i in 0..5000 {
            ins(&mut d, i, i);
        }
        // Remove almost everything without letting a shrink finish: the old table is huge
        // and nearly empty, which must not make random() spin or return stale items.
        for i in 0..4990 {
            rm(&mut d, i);
        }
        assert!(d.len() == 10);
        for _ in 0..2000 {
            let x = d.random(&mut rng).unwrap();
            assert!(x.v >= 4990);
            let mut n = 0;
            d.sample(5, &mut rng, |x| {
                assert!(x.v >= 4990);
                n += 1;
            });
            assert!(n <= 5);
            d.rehash_steps(1);
        }
        let mut hit = HashSet::new();
        for _ in 0..5000 {
            hit.insert(d.random(&mut rng).unwrap().v);
        }
        assert_eq!(hit.len(), 10);
    }

    #[test]
    fn iter_counts_in_every_phase() {
        let mut d = Dict::new();
        let mut phases = HashSet::new();
        for i in 0..10_000u64 {
            ins(&mut d, i, i);
            let phase = if !d.is_rehashing() {
                0
            } else if d.moving() {
                2
            } else {
                1
            };
            phases.insert(phase);
            if i % 331 == 0 {
                assert_eq!(d.iter().count() as u64, i + 1);
                let sum: u64 = d.iter().map(|x| x.v).sum();
                assert_eq!(sum, i * (i + 1) / 2);
            }
        }
        // Stable, preparing (tables above PREP_CHUNK) and moving were all observed.
        assert_eq!(phases.len(), 3);
        let mut n = 0;
        for x in &d {
            n += 1;
            assert!(x.v < 10_000);
        }
        assert_eq!(n, 10_000);
    }

    #[test]
    fn retain_and_shrink() {
        let mut d = Dict::new();
        for i in 0..5000 {
            ins(&mut d, i, i);
        }
        d.retain(|x| {
            x.v += 1;
            x.v % 100 == 0
        });
        check(&d);
        assert_eq!(d.len(), 50);
        assert!(d.iter().all(|x| x.v % 100 == 0));
        while d.rehash_steps(10) {}
        assert_eq!(d.buckets(), 64);
        check(&d);
    }

    #[test]
    fn cron_shrinks_after_deletes_during_grow() {
        let mut d = Dict::new();
        for i in 0..4100 {
            ins(&mut d, i, i);
        }
        assert!(d.is_rehashing());
        for i in 0..4100 {
            rm(&mut d, i);
        }
        assert!(d.is_empty());
        // The catch-up steps plus the cron leave a minimal table.
        while d.rehash_steps(1) {}
        assert_eq!(d.buckets(), MIN_SIZE);
        check(&d);
    }

    #[test]
    fn inserts_during_shrink_catch_up() {
        let mut d = Dict::new();
        for i in 0..20_000 {
            ins(&mut d, i, i);
        }
        while d.rehash_steps(100) {}
        for i in 0..19_000 {
            rm(&mut d, i);
        }
        // Heavy inserts while (possibly) shrinking: loads stay bounded.
        let mut max_load = 0.0f64;
        for i in 100_000..140_000 {
            ins(&mut d, i, i);
            let cap = if d.moving() { d.t1.size } else { d.t0.size };
            max_load = max_load.max(d.len() as f64 / cap as f64);
            if i % 5000 == 0 {
                check(&d);
            }
        }
        assert!(max_load < 4.0, "max load {max_load}");
        assert_eq!(d.len(), 41_000);
    }

    #[test]
    fn memory_per_key() {
        let mut d = Dict::new();
        for i in 0..100_000u64 {
            let k = i.to_le_bytes().to_vec();
            d.insert_new(hash_bytes(&k), It { k, v: i });
        }
        while d.rehash_steps(1000) {}
        assert_eq!(d.buckets(), 131_072);
        let node = mem::size_of::<Node<It>>();
        assert_eq!(node, mem::size_of::<It>() + 8);
        let per_key_buckets = (d.mem_bytes() - d.len() * node) as f64 / d.len() as f64;
        assert!(per_key_buckets < 11.0, "{per_key_buckets}");
    }

    #[test]
    fn clear_frees() {
        let mut d = Dict::new();
        for i in 0..3000 {
            ins(&mut d, i, i);
        }
        d.clear();
        assert!(d.is_empty());
        assert_eq!(d.buckets(), 0);
        assert_eq!(d.mem_bytes(), 0);
        ins(&mut d, 1, 1);
        assert_eq!(get(&d, 1).unwrap().v, 1);
    }
}
