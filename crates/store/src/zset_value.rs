//! Sorted-set values: a listpack while small, a skiplist (with spans, for O(log n) ranks)
//! indexed by a member hash table past the `zset-max-listpack-*` thresholds, as in Redis 7.0.
//!
//! Contract other families code against (keep these signatures):
//! - `ZSetValue::default()`, `len`, `is_empty`, `encoding` ("listpack" | "skiplist"),
//!   `heap_bytes`, `Clone`.
//! - `score(&self, member) -> Option<f64>`.
//! - `insert(&mut self, member, score, limits) -> bool`: true when the member is new; an
//!   existing member gets the new score.
//! - `remove(&mut self, member) -> bool`.
//! - `iter(&self)`: `(member, score)` in ascending (score, member) order.
//! - `range_by_score(&self, min, max)`: the same, restricted to `min..=max` (bounds may be
//!   exclusive), found in O(log n) for the skiplist.
//!
//! # Encodings
//!
//! **Listpack**: member, score, member, score… in ascending (score, member) order. A score
//! that is an integer below 2^55 in magnitude is stored as its minimal little-endian two's
//! complement bytes (0–7 bytes, so small integer scores cost one or two bytes as in Redis's
//! listpack); any other score (fractions, infinities, huge values) as the 8 bytes of the
//! f64. The length alone tells the two apart. Like Redis's listpack, this turns -0 into 0.
//!
//! **Skiplist**: Redis's skiplist with spans, but with no pointers: nodes live in an arena of
//! chunks (indices are `u32`, chunk sizes double, so the arena never copies existing nodes as
//! it grows), levels above the first live in a shared pool, and the member→node index is a
//! chained hash table threaded through the nodes themselves (`u32` bucket heads, a `u32`
//! link per node) that rehashes incrementally like Redis's dict. Each member is stored once.
//! A node is 48 bytes plus its member's allocation, about 70 bytes per element in all against
//! Redis's ~110 (skiplist node + dict entry + bucket + sds).
//!
//! ZSCAN walks arena slots: a slot never changes owner while its member lives, so a member
//! present for a whole scan is returned exactly once whatever happens in between.
//!
//! Conversion listpack → skiplist happens inside [`ZSetValue::insert`] (too many members or
//! a member too long); the way back happens only where Redis 7.0 does it, for the results of
//! the STORE commands ([`ZSetValue::shrink_to_listpack_if_fits`]).

use std::cmp::Ordering;
use std::fmt;

use crate::hash::hash_bytes;
use crate::listpack::{self, Listpack};

/// Thresholds past which a listpack sorted set converts to a skiplist.
#[derive(Clone, Copy, Debug)]
pub struct ZSetLimits {
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

/// One end of a score range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// One end of a lexicographic range (ZRANGEBYLEX's `-`, `+`, `[m`, `(m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexBound<'a> {
    NegInf,
    PosInf,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

/// A sorted set, in one of Redis's two encodings.
#[derive(Clone, Debug)]
pub enum ZSetValue {
    /// OBJECT ENCODING `listpack`.
    Listpack(Listpack),
    /// OBJECT ENCODING `skiplist`; boxed so small sets pay only for the listpack variant.
    Skiplist(Box<SkipList>),
}

impl Default for ZSetValue {
    /// An empty sorted set in the compact encoding (allocates nothing).
    fn default() -> Self {
        ZSetValue::Listpack(Listpack::new())
    }
}

// ---------------------------------------------------------------------------------------
// Listpack score encoding

/// Largest magnitude stored as a packed integer (fits in 7 bytes of two's complement).
const LP_INT_LIMIT: f64 = (1u64 << 55) as f64;

/// The listpack bytes of `score` (see the module docs) and their length.
fn encode_score(score: f64) -> ([u8; 8], usize) {
    // -0 is integral too: Redis's listpack stores it as the integer 0.
    let integral = score == score.trunc() && score.abs() < LP_INT_LIMIT;
    if !integral {
        return (score.to_le_bytes(), 8);
    }
    let v = score as i64;
    let bytes = v.to_le_bytes();
    // The fewest bytes whose sign extension gives back `v` (none for 0).
    let n = (1..8)
        .find(|&n| {
            let shift = 64 - 8 * n;
            (v << shift) >> shift == v
        })
        .filter(|_| v != 0)
        .unwrap_or(0);
    (bytes, n)
}

fn decode_score(b: &[u8]) -> f64 {
    if b.len() == 8 {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        return f64::from_le_bytes(a);
    }
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    if b.last().is_some_and(|&x| x & 0x80 != 0) {
        for x in &mut a[b.len()..] {
            *x = 0xff;
        }
    }
    i64::from_le_bytes(a) as f64
}

/// The (score, member) order of a sorted set.
#[inline]
fn cmp_entry(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2)
        .unwrap_or(Ordering::Equal)
        .then_with(|| m1.cmp(m2))
}

impl ScoreBound {
    /// True if `s` is above (or at, when inclusive) this bound taken as a minimum.
    #[inline]
    fn above_min(&self, s: f64) -> bool {
        if self.exclusive {
            s > self.value
        } else {
            s >= self.value
        }
    }

    /// True if `s` is below (or at, when inclusive) this bound taken as a maximum.
    #[inline]
    fn below_max(&self, s: f64) -> bool {
        if self.exclusive {
            s < self.value
        } else {
            s <= self.value
        }
    }
}

impl LexBound<'_> {
    /// True if `m` satisfies this bound taken as a minimum.
    #[inline]
    fn above_min(&self, m: &[u8]) -> bool {
        match *self {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(b) => m >= b,
            LexBound::Excl(b) => m > b,
        }
    }

    /// True if `m` satisfies this bound taken as a maximum.
    #[inline]
    fn below_max(&self, m: &[u8]) -> bool {
        match *self {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m <= b,
            LexBound::Excl(b) => m < b,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Skiplist

/// "No node" in forward/backward links and hash chains. Node ids are 1-based so that a
/// freshly zeroed bucket array means "all empty" (and costs no memset: calloc).
const NIL: u32 = 0;
/// The header pseudo-node in level links.
const HEAD: u32 = u32::MAX;
/// `Node::backward` of a free arena slot (no live node links back to the header).
const FREE: u32 = HEAD;
/// Redis's ZSKIPLIST_MAXLEVEL and ZSKIPLIST_P.
const MAX_LEVEL: usize = 32;
/// First arena chunk; chunk `c >= 1` holds `FIRST_CHUNK << (c - 1)` nodes.
const FIRST_CHUNK_BITS: u32 = 7;
const FIRST_CHUNK: usize = 1 << FIRST_CHUNK_BITS;
/// Low bits of `Node::meta` holding the node's height - 1; the rest is the member's hash.
const HEIGHT_BITS: u32 = 5;
const HEIGHT_MASK: u32 = (1 << HEIGHT_BITS) - 1;
/// Empty buckets one rehash step may skip, as Redis's dict.
const EMPTY_VISITS: usize = 10;

/// A level-0 link: the next node and how many level-0 steps it spans (always 1, kept so
/// level 0 reads like the others).
#[derive(Clone, Copy, Debug, Default)]
struct Level {
    forward: u32,
    span: u32,
}

/// An upper-level link (levels 1..): the next node and its span as at level 0, plus copies of
/// the next node's score and pool index. A search above level 0 then compares and steps
/// without reading the nodes it passes: one cache miss per step, like Redis's levels inside
/// its nodes, instead of two (the pool, then the node for its score) — ZADD into a 100k-member
/// set spent a third of its time there. 20 bytes (packed to 4), a third of a link per node on
/// average. Fields are only ever copied out, never borrowed, so packing needs no `unsafe`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, packed(4))]
struct UpLevel {
    forward: u32,
    span: u32,
    fwd_up: u32,
    fwd_score: f64,
}

/// One step a search may take: the link's target, its span and the target's score.
#[derive(Clone, Copy)]
struct Step {
    forward: u32,
    span: u32,
    score: f64,
}

/// A skiplist node (48 bytes).
#[derive(Clone, Debug)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    backward: u32,
    level0: Level,
    /// Pool index of levels 1..height (unused for height 1).
    up: u32,
    /// Next node in the same hash bucket; next free node for a free slot.
    hnext: u32,
    /// Member hash (high bits) | height - 1 (low `HEIGHT_BITS`).
    meta: u32,
}

impl Node {
    #[inline]
    fn height(&self) -> usize {
        (self.meta & HEIGHT_MASK) as usize + 1
    }

    #[inline]
    fn bucket_hash(&self) -> usize {
        (self.meta >> HEIGHT_BITS) as usize
    }
}

/// The hash bits kept in a node (and used for buckets) from a 64-bit member hash.
#[inline]
fn meta_hash(h: u64) -> u32 {
    ((h >> 32) as u32) & !HEIGHT_MASK
}

/// Chunk and offset of arena index `i` (0-based).
#[inline]
fn chunk_of(i: usize) -> (usize, usize) {
    if i < FIRST_CHUNK {
        (0, i)
    } else {
        let c = (usize::BITS - i.leading_zeros()) as usize - FIRST_CHUNK_BITS as usize;
        (c, i - (FIRST_CHUNK << (c - 1)))
    }
}

/// Capacity of chunk `c`.
#[inline]
fn chunk_size(c: usize) -> usize {
    if c == 0 {
        FIRST_CHUNK
    } else {
        FIRST_CHUNK << (c - 1)
    }
}

/// The skiplist encoding: ordered nodes with spans plus a member index.
#[derive(Clone)]
pub struct SkipList {
    /// Node arena; node id `n` is arena index `n - 1`.
    chunks: Vec<Vec<Node>>,
    /// Head of the free-slot list (linked through `hnext`).
    free: u32,
    /// Levels 1.. of nodes taller than 1, `height - 1` consecutive entries per node.
    pool: Vec<UpLevel>,
    /// Free pool blocks by height - 1 (linked through the first entry's `forward`, as
    /// pool index + 1).
    pool_free: [u32; MAX_LEVEL],
    /// The header's links (its level 0 uses only `forward` and `span`).
    head: [UpLevel; MAX_LEVEL],
    tail: u32,
    level: usize,
    len: usize,
    /// Sum of member lengths (heap accounting).
    member_bytes: usize,
    /// Hash buckets (heads of chains through `Node::hnext`); while rehashing, `old` is being
    /// moved into `buckets` from index `rehash_pos` on.
    buckets: Vec<u32>,
    old: Vec<u32>,
    rehash_pos: usize,
    rng: u64,
}

impl fmt::Debug for SkipList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkipList").field("len", &self.len).finish()
    }
}

impl Default for SkipList {
    fn default() -> Self {
        SkipList {
            chunks: Vec::new(),
            free: NIL,
            pool: Vec::new(),
            pool_free: [0; MAX_LEVEL],
            head: [UpLevel::default(); MAX_LEVEL],
            tail: NIL,
            level: 1,
            len: 0,
            member_bytes: 0,
            buckets: Vec::new(),
            old: Vec::new(),
            rehash_pos: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

impl SkipList {
    #[inline]
    fn node(&self, id: u32) -> &Node {
        let (c, o) = chunk_of(id as usize - 1);
        &self.chunks[c][o]
    }

    #[inline]
    fn node_mut(&mut self, id: u32) -> &mut Node {
        let (c, o) = chunk_of(id as usize - 1);
        &mut self.chunks[c][o]
    }

    /// Level 0 of node `x` (or of the header).
    #[inline]
    fn lv0(&self, x: u32) -> Level {
        if x == HEAD {
            let h = self.head[0];
            Level {
                forward: h.forward,
                span: h.span,
            }
        } else {
            self.node(x).level0
        }
    }

    fn set_lv0(&mut self, x: u32, l: Level) {
        if x == HEAD {
            self.head[0].forward = l.forward;
            self.head[0].span = l.span;
        } else {
            self.node_mut(x).level0 = l;
        }
    }

    /// Pool index of node `x`'s upper levels (unused for the header).
    #[inline]
    fn up_of(&self, x: u32) -> u32 {
        if x == HEAD {
            0
        } else {
            self.node(x).up
        }
    }

    /// Upper level `i >= 1` of the node (or header) `x` whose levels start at pool index `up`.
    #[inline]
    fn up_lv(&self, x: u32, up: u32, i: usize) -> UpLevel {
        if x == HEAD {
            self.head[i]
        } else {
            self.pool[up as usize + i - 1]
        }
    }

    fn up_lv_mut(&mut self, x: u32, i: usize) -> &mut UpLevel {
        if x == HEAD {
            &mut self.head[i]
        } else {
            let up = self.node(x).up as usize;
            &mut self.pool[up + i - 1]
        }
    }

    fn random_level(&mut self) -> usize {
        // xorshift64*: two bits per level give Redis's p = 1/4.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let mut lvl = 1;
        while lvl < MAX_LEVEL && (r >> (2 * lvl)) & 3 == 0 {
            lvl += 1;
        }
        lvl
    }

    /// Takes a pool block for `n` upper levels.
    fn pool_alloc(&mut self, n: usize) -> u32 {
        let head = self.pool_free[n];
        if head != 0 {
            let at = head - 1;
            self.pool_free[n] = self.pool[at as usize].forward;
            for l in &mut self.pool[at as usize..at as usize + n] {
                *l = UpLevel::default();
            }
            return at;
        }
        let at = self.pool.len() as u32;
        self.pool.resize(self.pool.len() + n, UpLevel::default());
        at
    }

    fn pool_release(&mut self, at: u32, n: usize) {
        self.pool[at as usize].forward = self.pool_free[n];
        self.pool_free[n] = at + 1;
    }

    /// Allocates a node (not yet linked anywhere) and returns its id.
    fn alloc(&mut self, member: Box<[u8]>, score: f64, h: u64, height: usize) -> u32 {
        let up = if height > 1 {
            self.pool_alloc(height - 1)
        } else {
            0
        };
        let node = Node {
            member,
            score,
            backward: NIL,
            level0: Level::default(),
            up,
            hnext: NIL,
            meta: meta_hash(h) | (height as u32 - 1),
        };
        if self.free != NIL {
            let id = self.free;
            let slot = self.node_mut(id);
            let next = slot.hnext;
            *slot = node;
            self.free = next;
            return id;
        }
        let total: usize = self.chunks.iter().map(Vec::len).sum();
        let last_full = self
            .chunks
            .last()
            .is_none_or(|c| c.len() == chunk_size(self.chunks.len() - 1));
        if last_full {
            let size = chunk_size(self.chunks.len());
            self.chunks.push(Vec::with_capacity(size));
        }
        self.chunks.last_mut().expect("chunk").push(node);
        u32::try_from(total + 1).expect("sorted set too large")
    }

    /// Returns a node's slot and levels to the free lists.
    fn release(&mut self, id: u32) {
        let free = self.free;
        let n = self.node_mut(id);
        let height = n.height();
        let up = n.up;
        n.member = Box::default();
        n.backward = FREE;
        n.hnext = free;
        n.meta = 0;
        self.free = id;
        if height > 1 {
            self.pool_release(up, height - 1);
        }
    }

    // --- member index ---

    #[inline]
    fn bucket_of(hash: usize, table: &[u32]) -> usize {
        hash & (table.len() - 1)
    }

    /// The node holding `member`.
    fn find(&self, member: &[u8]) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let hm = meta_hash(hash_bytes(member)) >> HEIGHT_BITS;
        for table in [&self.buckets, &self.old] {
            if table.is_empty() {
                continue;
            }
            let mut id = table[Self::bucket_of(hm as usize, table)];
            while id != NIL {
                let n = self.node(id);
                if n.bucket_hash() == hm as usize && *n.member == *member {
                    return Some(id);
                }
                id = n.hnext;
            }
        }
        None
    }

    fn index_insert(&mut self, id: u32) {
        let b = Self::bucket_of(self.node(id).bucket_hash(), &self.buckets);
        let head = self.buckets[b];
        self.node_mut(id).hnext = head;
        self.buckets[b] = id;
    }

    fn index_remove(&mut self, id: u32) {
        let hash = self.node(id).bucket_hash();
        let next = self.node(id).hnext;
        for in_old in [false, true] {
            let table = if in_old { &self.old } else { &self.buckets };
            if table.is_empty() {
                continue;
            }
            let b = Self::bucket_of(hash, table);
            let mut prev = NIL;
            let mut cur = table[b];
            while cur != NIL && cur != id {
                prev = cur;
                cur = self.node(cur).hnext;
            }
            if cur == id {
                if prev == NIL {
                    if in_old {
                        self.old[b] = next;
                    } else {
                        self.buckets[b] = next;
                    }
                } else {
                    self.node_mut(prev).hnext = next;
                }
                return;
            }
        }
        unreachable!("node missing from its index");
    }

    /// Starts a resize if the load calls for one, then moves one bucket of a resize in
    /// progress (Redis's incremental rehash: no operation pays for a whole table).
    fn index_maintain(&mut self) {
        if self.old.is_empty() {
            let size = self.buckets.len();
            let target = if self.len >= size {
                (self.len * 2).next_power_of_two().max(4)
            } else if size > 4 && self.len * 10 < size {
                (self.len + 1).next_power_of_two().max(4)
            } else {
                return;
            };
            self.old = std::mem::replace(&mut self.buckets, vec![NIL; target]);
            self.rehash_pos = 0;
        }
        self.rehash_step();
    }

    fn rehash_step(&mut self) {
        let mut empty = 0;
        while self.rehash_pos < self.old.len() {
            let mut id = std::mem::replace(&mut self.old[self.rehash_pos], NIL);
            self.rehash_pos += 1;
            if id == NIL {
                empty += 1;
                if empty >= EMPTY_VISITS {
                    return;
                }
                continue;
            }
            while id != NIL {
                let next = self.node(id).hnext;
                self.index_insert(id);
                id = next;
            }
            break;
        }
        if self.rehash_pos >= self.old.len() {
            self.old = Vec::new();
        }
    }

    // --- ordered structure ---

    /// Walks down from the header: at each level, from the top, steps forward while
    /// `go(step, rank so far)` holds. Returns the last node reached at every level and its
    /// rank (the 1-based rank; 0 for the header). Above level 0 it reads only the links.
    fn walk(&self, go: impl Fn(Step, usize) -> bool) -> ([u32; MAX_LEVEL], [usize; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let (mut x, mut x_up) = (HEAD, 0);
        let mut traversed = 0;
        for i in (1..self.level).rev() {
            loop {
                let l = self.up_lv(x, x_up, i);
                let step = Step {
                    forward: l.forward,
                    span: l.span,
                    score: l.fwd_score,
                };
                if l.forward == NIL || !go(step, traversed) {
                    break;
                }
                traversed += l.span as usize;
                x = l.forward;
                x_up = l.fwd_up;
            }
            update[i] = x;
            rank[i] = traversed;
        }
        loop {
            let l = self.lv0(x);
            if l.forward == NIL {
                break;
            }
            let step = Step {
                forward: l.forward,
                span: l.span,
                score: self.node(l.forward).score,
            };
            if !go(step, traversed) {
                break;
            }
            traversed += l.span as usize;
            x = l.forward;
        }
        update[0] = x;
        rank[0] = traversed;
        (update, rank)
    }

    /// The predecessors of (score, member) at every level, and their ranks.
    fn path(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], [usize; MAX_LEVEL]) {
        self.walk(|step, _| match step.score.partial_cmp(&score) {
            Some(Ordering::Less) => true,
            Some(Ordering::Equal) => *self.node(step.forward).member < *member,
            _ => false,
        })
    }

    /// Links node `id` (already allocated with its height) into the order.
    fn link(&mut self, id: u32) {
        let (score, height, id_up) = {
            let n = self.node(id);
            (n.score, n.height(), n.up)
        };
        let (mut update, mut rank) = self.path(score, &self.node(id).member);
        if height > self.level {
            for i in self.level..height {
                rank[i] = 0;
                update[i] = HEAD;
                self.head[i] = UpLevel {
                    span: self.len as u32,
                    ..UpLevel::default()
                };
            }
            self.level = height;
        }
        let u = self.lv0(update[0]);
        self.set_lv0(
            id,
            Level {
                forward: u.forward,
                span: 1,
            },
        );
        self.set_lv0(
            update[0],
            Level {
                forward: id,
                span: 1,
            },
        );
        for i in 1..height {
            let u = self.up_lv(update[i], self.up_of(update[i]), i);
            let before = (rank[0] - rank[i]) as u32;
            *self.up_lv_mut(id, i) = UpLevel {
                span: u.span - before,
                ..u
            };
            *self.up_lv_mut(update[i], i) = UpLevel {
                forward: id,
                span: before + 1,
                fwd_up: id_up,
                fwd_score: score,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(height) {
            self.up_lv_mut(u, i).span += 1;
        }
        let back = if update[0] == HEAD { NIL } else { update[0] };
        self.node_mut(id).backward = back;
        let next = self.node(id).level0.forward;
        if next != NIL {
            self.node_mut(next).backward = id;
        } else {
            self.tail = id;
        }
        self.len += 1;
    }

    /// Unlinks node `x` from the order given its predecessors.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        let u0 = self.lv0(update[0]);
        debug_assert_eq!(u0.forward, x);
        self.set_lv0(update[0], self.lv0(x));
        let x_up = self.up_of(x);
        for (i, &u) in update.iter().enumerate().take(self.level).skip(1) {
            let ul = self.up_lv(u, self.up_of(u), i);
            if ul.forward == x {
                let xl = self.up_lv(x, x_up, i);
                *self.up_lv_mut(u, i) = UpLevel {
                    span: ul.span + xl.span - 1,
                    ..xl
                };
            } else {
                self.up_lv_mut(u, i).span -= 1;
            }
        }
        let (next, back) = {
            let n = self.node(x);
            (n.level0.forward, n.backward)
        };
        if next != NIL {
            self.node_mut(next).backward = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.head[self.level - 1].forward == NIL {
            self.level -= 1;
        }
        self.len -= 1;
    }

    /// The predecessors of node `x`.
    fn path_to(&self, x: u32) -> [u32; MAX_LEVEL] {
        let n = self.node(x);
        self.path(n.score, &n.member).0
    }

    fn insert_new(&mut self, member: &[u8], score: f64) {
        let height = self.random_level();
        let h = hash_bytes(member);
        let id = self.alloc(member.into(), score, h, height);
        self.member_bytes += member.len();
        self.link(id);
        self.index_maintain();
        self.index_insert(id);
    }

    /// Sets the score of node `id`, moving it if its position changes.
    fn update_score(&mut self, id: u32, score: f64) {
        let (back, next) = {
            let n = self.node(id);
            (n.backward, n.level0.forward)
        };
        let stays = {
            let n = self.node(id);
            (back == NIL || {
                let b = self.node(back);
                cmp_entry(b.score, &b.member, score, &n.member) == Ordering::Less
            }) && (next == NIL || {
                let f = self.node(next);
                cmp_entry(f.score, &f.member, score, &n.member) == Ordering::Greater
            })
        };
        if stays {
            // The links above level 0 that lead here cache the score.
            let height = self.node(id).height();
            if height > 1 {
                let update = self.path_to(id);
                for (i, &u) in update.iter().enumerate().take(height).skip(1) {
                    self.up_lv_mut(u, i).fwd_score = score;
                }
            }
            self.node_mut(id).score = score;
            return;
        }
        let update = self.path_to(id);
        self.unlink(id, &update);
        self.node_mut(id).score = score;
        self.link(id);
    }

    fn delete(&mut self, id: u32) {
        let update = self.path_to(id);
        self.unlink(id, &update);
        self.index_remove(id);
        self.member_bytes -= self.node(id).member.len();
        self.release(id);
        self.index_maintain();
    }

    /// The node at 0-based `rank`.
    fn at_rank(&self, rank: usize) -> u32 {
        let want = rank + 1;
        let (update, ranks) = self.walk(|step, t| t + step.span as usize <= want);
        if ranks[0] == want {
            update[0]
        } else {
            NIL
        }
    }

    /// The number of nodes before the first one for which `stop` holds (the nodes for which
    /// it fails must come first, as the skiplist order guarantees for range bounds).
    fn count_until(&self, stop: impl Fn(&Node) -> bool) -> usize {
        self.walk(|step, _| !stop(self.node(step.forward))).1[0]
    }

    /// The 0-based rank of node `x`.
    fn rank_of(&self, x: u32) -> usize {
        let n = self.node(x);
        self.path(n.score, &n.member).1[0]
    }

    /// Removes the nodes at 0-based ranks `start..end`.
    fn remove_ranks(&mut self, start: usize, end: usize) {
        if start >= end {
            return;
        }
        let (update, _) = self.walk(|step, t| t + step.span as usize <= start);
        let mut cur = self.lv0(update[0]).forward;
        for _ in start..end {
            let next = self.node(cur).level0.forward;
            self.unlink(cur, &update);
            self.index_remove(cur);
            self.member_bytes -= self.node(cur).member.len();
            self.release(cur);
            self.index_maintain();
            cur = next;
        }
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<SkipList>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * std::mem::size_of::<Node>())
                .sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<Node>>()
            + self.pool.capacity() * std::mem::size_of::<UpLevel>()
            + (self.buckets.capacity() + self.old.capacity()) * 4
            + self.member_bytes
    }

    /// Total arena slots (ZSCAN's cursor space).
    fn slots(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }
}

// ---------------------------------------------------------------------------------------
// Iteration

/// Iterator over `(member, score)` pairs of a rank range, in either direction.
pub struct Iter<'a>(IterInner<'a>);

enum IterInner<'a> {
    Lp {
        it: listpack::Iter<'a>,
        left: usize,
    },
    LpRev(std::iter::Rev<std::vec::IntoIter<(&'a [u8], f64)>>),
    Sl {
        list: &'a SkipList,
        node: u32,
        left: usize,
        rev: bool,
    },
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterInner::Lp { it, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                let m = it.next()?;
                Some((m, decode_score(it.next()?)))
            }
            IterInner::LpRev(it) => it.next(),
            IterInner::Sl {
                list,
                node,
                left,
                rev,
            } => {
                if *left == 0 || *node == NIL {
                    return None;
                }
                *left -= 1;
                let n = list.node(*node);
                *node = if *rev { n.backward } else { n.level0.forward };
                Some((&n.member, n.score))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            IterInner::Lp { left, .. } | IterInner::Sl { left, .. } => *left,
            IterInner::LpRev(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The (member, score) pairs of a listpack.
fn lp_pairs(lp: &Listpack) -> impl Iterator<Item = (&[u8], f64)> + '_ {
    let mut it = lp.iter();
    std::iter::from_fn(move || {
        let m = it.next()?;
        Some((m, decode_score(it.next()?)))
    })
}

// ---------------------------------------------------------------------------------------
// The sorted set

impl ZSetValue {
    /// An empty sorted set that will hold about `size_hint` members of at most
    /// `max_member_len` bytes: a skiplist from the start when that is past the limits, as
    /// Redis creates ZADD's, ZUNIONSTORE's and ZRANGESTORE's results.
    pub fn with_hint(size_hint: usize, max_member_len: usize, limits: ZSetLimits) -> ZSetValue {
        if size_hint > limits.max_listpack_entries || max_member_len > limits.max_listpack_value {
            ZSetValue::Skiplist(Box::default())
        } else {
            ZSetValue::default()
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            ZSetValue::Listpack(lp) => lp.len() / 2,
            ZSetValue::Skiplist(sl) => sl.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSetValue::Listpack(_) => "listpack",
            ZSetValue::Skiplist(_) => "skiplist",
        }
    }

    /// Heap bytes owned (MEMORY USAGE, eviction).
    pub fn heap_bytes(&self) -> usize {
        match self {
            ZSetValue::Listpack(lp) => lp.heap_bytes(),
            ZSetValue::Skiplist(sl) => sl.heap_bytes(),
        }
    }

    /// Pair index of `member` in a listpack, with its score.
    fn lp_find(lp: &Listpack, member: &[u8]) -> Option<(usize, f64)> {
        lp_pairs(lp)
            .enumerate()
            .find(|(_, (m, _))| *m == member)
            .map(|(i, (_, s))| (i, s))
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSetValue::Listpack(lp) => Self::lp_find(lp, member).map(|(_, s)| s),
            ZSetValue::Skiplist(sl) => sl.find(member).map(|id| sl.node(id).score),
        }
    }

    /// The 0-based ascending rank of `member` and its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match self {
            ZSetValue::Listpack(lp) => Self::lp_find(lp, member),
            ZSetValue::Skiplist(sl) => sl
                .find(member)
                .map(|id| (sl.rank_of(id), sl.node(id).score)),
        }
    }

    /// Converts a listpack to a skiplist (no-op for a skiplist).
    pub fn convert_to_skiplist(&mut self) {
        if let ZSetValue::Listpack(lp) = self {
            let mut sl = SkipList::default();
            for (m, s) in lp_pairs(lp) {
                sl.insert_new(m, s);
            }
            *self = ZSetValue::Skiplist(Box::new(sl));
        }
    }

    /// Redis's rule for STORE results: a skiplist with at most `max_listpack_entries`
    /// members, none longer than `max_listpack_value`, becomes a listpack.
    pub fn shrink_to_listpack_if_fits(&mut self, limits: ZSetLimits) {
        let ZSetValue::Skiplist(sl) = self else {
            return;
        };
        if sl.len > limits.max_listpack_entries {
            return;
        }
        let fits = self
            .iter()
            .all(|(m, _)| m.len() <= limits.max_listpack_value);
        if fits {
            let lp = self.iter().fold(Vec::new(), |mut v, (m, s)| {
                let (b, n) = encode_score(s);
                v.push(m.to_vec());
                v.push(b[..n].to_vec());
                v
            });
            *self = ZSetValue::Listpack(lp.iter().collect());
        }
    }

    /// Sets `member`'s score; returns true if the member is new. A listpack converts to a
    /// skiplist first when a new member would make it too long or is itself too long.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: ZSetLimits) -> bool {
        if let ZSetValue::Listpack(lp) = self {
            match Self::lp_find(lp, member) {
                Some((i, old)) => {
                    // Float comparison, as Redis: 0 and -0 are the same score.
                    if old != score {
                        lp.remove_range(2 * i, 2);
                        Self::lp_insert(lp, member, score);
                    }
                    return false;
                }
                None => {
                    if lp.len() / 2 + 1 > limits.max_listpack_entries
                        || member.len() > limits.max_listpack_value
                    {
                        self.convert_to_skiplist();
                    } else {
                        Self::lp_insert(lp, member, score);
                        return true;
                    }
                }
            }
        }
        let ZSetValue::Skiplist(sl) = self else {
            unreachable!("converted above")
        };
        match sl.find(member) {
            Some(id) => {
                if sl.node(id).score != score {
                    sl.update_score(id, score);
                }
                false
            }
            None => {
                sl.insert_new(member, score);
                true
            }
        }
    }

    /// Inserts a new (member, score) pair at its place in a listpack.
    fn lp_insert(lp: &mut Listpack, member: &[u8], score: f64) {
        let pos = lp_pairs(lp)
            .position(|(m, s)| cmp_entry(s, m, score, member) == Ordering::Greater)
            .unwrap_or(lp.len() / 2);
        let (b, n) = encode_score(score);
        lp.insert(2 * pos, member);
        lp.insert(2 * pos + 1, &b[..n]);
    }

    /// Removes `member`; returns true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            ZSetValue::Listpack(lp) => match Self::lp_find(lp, member) {
                Some((i, _)) => {
                    lp.remove_range(2 * i, 2);
                    true
                }
                None => false,
            },
            ZSetValue::Skiplist(sl) => match sl.find(member) {
                Some(id) => {
                    sl.delete(id);
                    true
                }
                None => false,
            },
        }
    }

    /// All `(member, score)` pairs in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.range(0, self.len(), false)
    }

    /// The pairs at 0-based ranks `start..end` (clamped to the set), ascending, or
    /// descending from `end - 1` when `rev`.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> Iter<'_> {
        let end = end.min(self.len());
        let start = start.min(end);
        let n = end - start;
        match self {
            ZSetValue::Listpack(lp) => {
                if rev {
                    let v: Vec<_> = lp_pairs(lp).skip(start).take(n).collect();
                    Iter(IterInner::LpRev(v.into_iter().rev()))
                } else {
                    let mut it = lp.iter();
                    if start > 0 {
                        it.nth(2 * start - 1);
                    }
                    Iter(IterInner::Lp { it, left: n })
                }
            }
            ZSetValue::Skiplist(sl) => {
                let node = if n == 0 {
                    NIL
                } else if rev {
                    sl.at_rank(end - 1)
                } else {
                    sl.at_rank(start)
                };
                Iter(IterInner::Sl {
                    list: sl,
                    node,
                    left: n,
                    rev,
                })
            }
        }
    }

    /// The pair at 0-based `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.range(rank, rank + 1, false).next()
    }

    /// The ranks of the members whose score is within `min..=max`: a rank range because
    /// the set is ordered by score.
    pub fn score_ranks(&self, min: ScoreBound, max: ScoreBound) -> std::ops::Range<usize> {
        let (lo, hi) = match self {
            ZSetValue::Listpack(lp) => {
                let lo = lp_pairs(lp).take_while(|&(_, s)| !min.above_min(s)).count();
                let hi = lp_pairs(lp).take_while(|&(_, s)| max.below_max(s)).count();
                (lo, hi)
            }
            ZSetValue::Skiplist(sl) => (
                sl.count_until(|n| min.above_min(n.score)),
                sl.count_until(|n| !max.below_max(n.score)),
            ),
        };
        lo..hi.max(lo)
    }

    /// The ranks of the members within the lexicographic range `min..max` (meaningful when
    /// all scores are equal, as ZRANGEBYLEX requires).
    pub fn lex_ranks(&self, min: LexBound<'_>, max: LexBound<'_>) -> std::ops::Range<usize> {
        let (lo, hi) = match self {
            ZSetValue::Listpack(lp) => {
                let lo = lp_pairs(lp).take_while(|&(m, _)| !min.above_min(m)).count();
                let hi = lo
                    + lp_pairs(lp)
                        .skip(lo)
                        .take_while(|&(m, _)| max.below_max(m))
                        .count();
                (lo, hi)
            }
            ZSetValue::Skiplist(sl) => (
                sl.count_until(|n| min.above_min(&n.member)),
                sl.count_until(|n| !max.below_max(&n.member)),
            ),
        };
        lo..hi.max(lo)
    }

    /// The pairs within `min..=max` in ascending order.
    pub fn range_by_score(&self, min: ScoreBound, max: ScoreBound) -> Iter<'_> {
        let r = self.score_ranks(min, max);
        self.range(r.start, r.end, false)
    }

    /// Removes the members at 0-based ranks `start..end` (clamped); returns how many.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        let start = start.min(end);
        match self {
            ZSetValue::Listpack(lp) => lp.remove_range(2 * start, 2 * (end - start)),
            ZSetValue::Skiplist(sl) => sl.remove_ranks(start, end),
        }
        end - start
    }

    /// A uniformly random pair, `None` if empty.
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<(&[u8], f64)> {
        if self.is_empty() {
            return None;
        }
        self.get(rng.gen_range(0..self.len()))
    }

    /// One ZSCAN step: calls `f` for each visited pair and returns the next cursor (0 when
    /// done). A listpack is returned whole with cursor 0, as Redis does; a skiplist walks its
    /// arena slots from the cursor until `count` members were seen (a member keeps its slot
    /// for its whole life, so one present for the whole scan is returned exactly once).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            ZSetValue::Listpack(lp) => {
                lp_pairs(lp).for_each(|(m, s)| f(m, s));
                0
            }
            ZSetValue::Skiplist(sl) => {
                let slots = sl.slots();
                let mut i = usize::try_from(cursor).unwrap_or(usize::MAX);
                let mut seen = 0;
                while i < slots && seen < count {
                    let (c, o) = chunk_of(i);
                    let n = &sl.chunks[c][o];
                    if n.backward != FREE {
                        f(&n.member, n.score);
                        seen += 1;
                    }
                    i += 1;
                }
                if i >= slots {
                    0
                } else {
                    i as u64
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const BIG: ZSetLimits = ZSetLimits {
        max_listpack_entries: usize::MAX,
        max_listpack_value: usize::MAX,
    };
    const TINY: ZSetLimits = ZSetLimits {
        max_listpack_entries: 0,
        max_listpack_value: 0,
    };

    #[test]
    fn score_encoding_round_trips() {
        for s in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            127.0,
            128.0,
            -128.0,
            -129.0,
            255.0,
            1e15,
            -1e15,
            (1u64 << 55) as f64,
            1.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
        ] {
            let (b, n) = encode_score(s);
            let back = decode_score(&b[..n]);
            assert_eq!(back.to_bits(), (s + 0.0).to_bits(), "{s}");
        }
        assert_eq!(encode_score(0.0).1, 0);
        assert_eq!(encode_score(100.0).1, 1);
        assert_eq!(encode_score(-100.0).1, 1);
        assert_eq!(encode_score(200.0).1, 2);
        assert_eq!(encode_score(-0.0).1, 0);
    }

    #[test]
    fn chunk_math() {
        let mut total = 0;
        for c in 0..10 {
            for o in 0..chunk_size(c) {
                assert_eq!(chunk_of(total + o), (c, o));
            }
            total += chunk_size(c);
        }
    }

    #[test]
    fn converts_and_ranks() {
        let limits = ZSetLimits {
            max_listpack_entries: 3,
            max_listpack_value: 5,
        };
        let mut z = ZSetValue::default();
        for (i, m) in [b"a", b"b", b"c"].iter().enumerate() {
            assert!(z.insert(*m, i as f64, limits));
        }
        assert_eq!(z.encoding(), "listpack");
        assert!(z.insert(b"d", 0.5, limits));
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.rank(b"d"), Some((1, 0.5)));
        let all: Vec<_> = z.iter().map(|(m, _)| m.to_vec()).collect();
        assert_eq!(all, [b"a", b"d", b"b", b"c"]);
        let mut w = ZSetValue::default();
        w.insert(b"toolong", 1.0, limits);
        assert_eq!(w.encoding(), "skiplist");
        z.remove(b"a");
        z.shrink_to_listpack_if_fits(limits);
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(z.rank(b"c"), Some((2, 2.0)));
    }

    #[test]
    fn big_skiplist_ranks_and_removal() {
        let mut z = ZSetValue::default();
        for i in 0..20_000u32 {
            z.insert(format!("m{i}").as_bytes(), f64::from(i % 1000), TINY);
        }
        assert_eq!(z.len(), 20_000);
        let mut prev: Option<(Vec<u8>, f64)> = None;
        for (i, (m, s)) in z.iter().enumerate() {
            if let Some((pm, ps)) = &prev {
                assert!(cmp_entry(*ps, pm, s, m) == Ordering::Less);
            }
            if i % 997 == 0 {
                assert_eq!(z.rank(m).map(|r| r.0), Some(i));
                assert_eq!(z.get(i).map(|p| p.0.to_vec()), Some(m.to_vec()));
            }
            prev = Some((m.to_vec(), s));
        }
        assert_eq!(z.remove_range(100, 19_900), 19_800);
        assert_eq!(z.len(), 200);
        assert_eq!(z.iter().count(), 200);
        let r = z.score_ranks(
            ScoreBound {
                value: 0.0,
                exclusive: false,
            },
            ScoreBound {
                value: 999.0,
                exclusive: true,
            },
        );
        assert_eq!(r, 0..z.len() - z.iter().filter(|p| p.1 == 999.0).count());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i8),
        Remove(u8),
        RemoveRange(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..60, -8i8..8).prop_map(|(m, s)| Op::Insert(m, s)),
            2 => (0u8..60).prop_map(Op::Remove),
            1 => (0u8..40, 0u8..6).prop_map(|(a, n)| Op::RemoveRange(a, n)),
        ]
    }

    fn member(m: u8) -> Vec<u8> {
        format!("m{m:02}").into_bytes()
    }

    type Model = BTreeMap<(i64, Vec<u8>), ()>;

    fn check(z: &ZSetValue, model: &Model) -> Result<(), TestCaseError> {
        prop_assert_eq!(z.len(), model.len());
        let got: Vec<_> = z.iter().map(|(m, s)| (s as i64, m.to_vec())).collect();
        let want: Vec<_> = model.keys().cloned().collect();
        prop_assert_eq!(&got, &want);
        let rev: Vec<_> = z
            .range(0, z.len(), true)
            .map(|(m, s)| (s as i64, m.to_vec()))
            .collect();
        prop_assert!(rev.iter().rev().eq(want.iter()));
        for (i, (s, m)) in want.iter().enumerate() {
            prop_assert_eq!(z.rank(m), Some((i, *s as f64)));
            prop_assert_eq!(z.score(m), Some(*s as f64));
        }
        for lo in -9i64..9 {
            let min = ScoreBound {
                value: lo as f64,
                exclusive: lo % 2 == 0,
            };
            let max = ScoreBound {
                value: (lo + 3) as f64,
                exclusive: lo % 3 == 0,
            };
            let r = z.score_ranks(min, max);
            let expect: Vec<_> = want
                .iter()
                .filter(|(s, _)| min.above_min(*s as f64) && max.below_max(*s as f64))
                .cloned()
                .collect();
            let got: Vec<_> = z
                .range(r.start, r.end, false)
                .map(|(m, s)| (s as i64, m.to_vec()))
                .collect();
            prop_assert_eq!(got, expect);
        }
        // Every live member is scanned exactly once.
        let mut scanned = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = z.scan(cursor, 3, |m, _| scanned.push(m.to_vec()));
            if cursor == 0 {
                break;
            }
        }
        scanned.sort();
        let mut members: Vec<_> = want.iter().map(|(_, m)| m.clone()).collect();
        members.sort();
        prop_assert_eq!(scanned, members);
        Ok(())
    }

    proptest! {
        /// Listpack, skiplist and a set crossing the thresholds all behave like a BTreeMap
        /// keyed by (score, member).
        #[test]
        fn encodings_match_model(ops in prop::collection::vec(op(), 0..300)) {
            let mixed_limits = ZSetLimits { max_listpack_entries: 10, max_listpack_value: 64 };
            let mut sets = [
                (ZSetValue::default(), BIG),
                (ZSetValue::Skiplist(Box::default()), BIG),
                (ZSetValue::default(), mixed_limits),
            ];
            let mut model = Model::new();
            let mut scores: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
            for op in &ops {
                match *op {
                    Op::Insert(m, s) => {
                        let m = member(m);
                        let new = match scores.insert(m.clone(), i64::from(s)) {
                            Some(old) => {
                                model.remove(&(old, m.clone()));
                                false
                            }
                            None => true,
                        };
                        model.insert((i64::from(s), m.clone()), ());
                        for (z, l) in &mut sets {
                            prop_assert_eq!(z.insert(&m, f64::from(s), *l), new);
                        }
                    }
                    Op::Remove(m) => {
                        let m = member(m);
                        let had = match scores.remove(&m) {
                            Some(old) => model.remove(&(old, m.clone())).is_some(),
                            None => false,
                        };
                        for (z, _) in &mut sets {
                            prop_assert_eq!(z.remove(&m), had);
                        }
                    }
                    Op::RemoveRange(a, n) => {
                        let a = a as usize;
                        let gone: Vec<_> = model.keys().skip(a).take(n as usize).cloned().collect();
                        for k in &gone {
                            model.remove(k);
                            scores.remove(&k.1);
                        }
                        for (z, _) in &mut sets {
                            prop_assert_eq!(z.remove_range(a, a + n as usize), gone.len());
                        }
                    }
                }
                for (z, _) in &sets {
                    check(z, &model)?;
                }
            }
            prop_assert_eq!(sets[0].0.encoding(), "listpack");
            prop_assert_eq!(sets[1].0.encoding(), "skiplist");
        }
    }
}
