//! One key of the keyspace: key bytes, value, TTL and LRU/LFU bits in one allocation behind
//! one thin pointer.
//!
//! An [`Entry`] is a single pointer (8 bytes) to an 8-aligned allocation:
//!
//! ```text
//! inline string: [meta u32][key_len u32][val_len u32]     [expire_at u64 LE]? [key][value]
//! other values:  [meta u32][key_len u32][payload (8 bytes)][expire_at u64 LE]? [key]
//! ```
//!
//! `meta` holds the 24 LRU/LFU bits, the flags below and, for other values, the [`Value`]
//! variant's 3-bit code; the payload is that variant's one word (a `Box`, or a small hash's
//! listpack pointer), so a hash with a 14-byte key fits the 32-byte class. A plain `SET k v` is one allocation
//! of 12 + key + value bytes (a 16-byte key and a 100-byte value fill the 128-byte jemalloc
//! class exactly), and a read touches header, key and value in the same cache lines. Keys
//! without a TTL pay nothing for expiry; setting or clearing a TTL rebuilds the allocation
//! once, which is rare next to reads. Collections (and strings edited in place) live behind
//! the pointer inside the [`Value`].
//!
//! The keyspace table ([`crate::table`]) keeps a 16-bit hash tag in the pointer's top bits,
//! which user-space addresses never use, so that a lookup skips non-matching keys without
//! touching their allocation. Every access strips the tag first.
//!
//! Why `unsafe`: Rust has no safe thin pointer to a variable-size allocation; `Box<[u8]>`
//! is a 16-byte fat pointer and a separate header struct would cost a second allocation.
//! The fat version costs 8 more bytes per key in the table plus 8 more in every node: that
//! is the difference between 0.78x and 0.70x of Redis's memory for 1M small strings (see
//! docs/MEMORY.md and `benches/entry.rs`). All unsafe code is in this file, behind the
//! safe methods below.

use crate::value::{self, Value, ValueMut, ValueRef};
use std::alloc::{self, Layout};
use std::mem::{self, size_of};
use std::ptr::{self, NonNull};

/// Flag bit in `meta`: an 8-byte expiry time precedes the key.
const HAS_EXPIRE: u32 = 1 << 24;
/// Flag bit in `meta`: the entry's snapshot mark. A running snapshot has captured the entry
/// (or the entry is newer than the snapshot) when the mark equals its database's; see
/// [`crate::snapshot`].
const SNAP_MARK: u32 = 1 << 25;
/// Flag bit in `meta`: the value is a string stored inline after the key (else a [`Value`]
/// follows the header).
const INLINE: u32 = 1 << 26;
/// Mask of the LRU/LFU bits in `meta`.
const LRU_MASK: u32 = (1 << 24) - 1;
/// Position of the 3-bit [`Value`] code in `meta` (meaningful without `INLINE`).
const CODE_SHIFT: u32 = 27;
const CODE_MASK: u32 = 7 << CODE_SHIFT;
/// Size of a non-inline value's payload slot.
const SLOT: usize = 8;

/// Header: `meta` and `key_len`, both u32.
const HDR: usize = 8;
/// Bits of a pointer that hold an address; the top 16 are free for the table's tag.
const ADDR_BITS: u32 = 48;
const ADDR_MASK: usize = (1 << ADDR_BITS) - 1;

const _: () = assert!(size_of::<usize>() == 8);

/// Strings up to this length report `embstr` in OBJECT ENCODING, as in Redis.
pub const EMBSTR_LIMIT: usize = 44;

/// What goes after the header of a new allocation.
enum Payload<'a> {
    Inline(&'a [u8]),
    Value(Value),
}

/// A key and its value; see the module docs for the layout.
pub struct Entry {
    /// The allocation, with the table's tag in the top 16 bits (0 outside a table).
    ptr: NonNull<u8>,
}

// SAFETY: an `Entry` owns its allocation exclusively, like a `Box` of its contents, and the
// only non-byte content is a `Value`'s payload, and `Value` is Send and Sync (checked below). `&Entry` gives
// out only shared references into the allocation, `&mut Entry` only unique ones.
unsafe impl Send for Entry {}
// SAFETY: see `Send`; there is no interior mutability.
unsafe impl Sync for Entry {}
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Value>();
};

fn u32_len(n: usize, what: &str) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("{what} longer than 4 GiB"))
}
/// The Redis type of a value, as TYPE reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    List,
    Hash,
    Set,
    ZSet,
    Stream,
    /// RedisBloom's Bloom filter type.
    Bloom,
    /// flowkv's cache entries (CACHE.*).
    Cache,
}

impl Kind {
    /// The name TYPE and SCAN ... TYPE use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
            // Module type names, as Redis reports a module value's type.
            Kind::Bloom => "MBbloom--",
            Kind::Cache => "flowcache",
        }
    }

    /// Parses a TYPE name (case-insensitive), as SCAN's TYPE option accepts it.
    pub fn from_name(name: &[u8]) -> Option<Kind> {
        [
            Kind::String,
            Kind::List,
            Kind::Hash,
            Kind::Set,
            Kind::ZSet,
            Kind::Stream,
            Kind::Bloom,
            Kind::Cache,
        ]
        .into_iter()
        .find(|k| name.eq_ignore_ascii_case(k.name().as_bytes()))
    }
}

impl Entry {
    /// Allocates an entry. `meta` supplies the LRU bits and the snapshot mark; the layout
    /// flags are derived from the arguments.
    fn alloc(meta: u32, expire_at: Option<u64>, key: &[u8], payload: Payload<'_>) -> Entry {
        let key_len = u32_len(key.len(), "key");
        // Before allocating: `code` panics for a `Value::InlineStr` (a caller's bug).
        let (body, tail, val_len, code) = match &payload {
            Payload::Inline(v) => (4, v.len(), u32_len(v.len(), "inline string"), 0),
            Payload::Value(v) => (SLOT, 0, 0, v.code() << CODE_SHIFT),
        };
        let exp = if expire_at.is_some() { 8 } else { 0 };
        let size = HDR + body + exp + key.len() + tail;
        let layout = Layout::from_size_align(size, 8).expect("entry size overflows");
        let mut flags = meta & (LRU_MASK | SNAP_MARK);
        if expire_at.is_some() {
            flags |= HAS_EXPIRE;
        }
        match payload {
            Payload::Inline(_) => flags |= INLINE,
            Payload::Value(_) => flags |= code,
        }
        // SAFETY: `layout` has a non-zero size (at least HDR + 4 bytes).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(p) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        if p.as_ptr().addr() & !ADDR_MASK != 0 {
            // User-space addresses fit in 47 bits on x86-64 and (by default) 48 on aarch64.
            // Aborting rather than panicking keeps `rebuild_with_expire` unwind-free.
            eprintln!("flowkv: allocation above 2^48, no room for the table tag");
            std::process::abort();
        }
        let p = p.as_ptr();
        // SAFETY: `p` is valid for writes of `size` bytes and 8-aligned. The writes cover
        // disjoint ranges that add up to `size`: header 0..8 (two aligned u32), body
        // 8..8+body (an aligned u32, or the value's aligned 8-byte payload slot, whose code
        // `flags` already holds), then `exp`, the key and `tail` bytes, each copied from a
        // live slice that cannot overlap a fresh allocation.
        unsafe {
            p.cast::<u32>().write(flags);
            p.add(4).cast::<u32>().write(key_len);
            let mut off = HDR + body;
            if let Some(at) = expire_at {
                ptr::copy_nonoverlapping(at.to_le_bytes().as_ptr(), p.add(off), 8);
                off += 8;
            }
            ptr::copy_nonoverlapping(key.as_ptr(), p.add(off), key.len());
            off += key.len();
            match payload {
                Payload::Inline(v) => {
                    p.add(HDR).cast::<u32>().write(val_len);
                    ptr::copy_nonoverlapping(v.as_ptr(), p.add(off), v.len());
                }
                Payload::Value(v) => {
                    v.write_to(p.add(HDR));
                }
            }
        }
        Entry {
            // SAFETY: `p` came from a `NonNull` above.
            ptr: unsafe { NonNull::new_unchecked(p) },
        }
    }

    /// A string key, stored inline with its value.
    pub fn new_string(key: &[u8], val: &[u8], expire_at: Option<u64>, lru: u32) -> Entry {
        if u32::try_from(val.len()).is_err() {
            let raw = Value::RawStr(Box::new(val.to_vec()));
            return Entry::alloc(lru, expire_at, key, Payload::Value(raw));
        }
        Entry::alloc(lru & LRU_MASK, expire_at, key, Payload::Inline(val))
    }

    /// A key holding a non-inline value.
    pub fn new_value(key: &[u8], value: Value, expire_at: Option<u64>, lru: u32) -> Entry {
        debug_assert!(!matches!(value, Value::InlineStr));
        Entry::alloc(lru & LRU_MASK, expire_at, key, Payload::Value(value))
    }

    /// The allocation's address, without the table's tag.
    #[inline]
    fn base(&self) -> *mut u8 {
        self.ptr.as_ptr().map_addr(|a| a & ADDR_MASK)
    }

    #[inline]
    fn meta(&self) -> u32 {
        // SAFETY: every allocation starts with an aligned u32 `meta` (see `alloc`).
        unsafe { self.base().cast::<u32>().read() }
    }

    #[inline]
    fn set_meta(&mut self, meta: u32) {
        // SAFETY: as in `meta`; `&mut self` means no reference into the header is live.
        unsafe { self.base().cast::<u32>().write(meta) }
    }

    #[inline]
    fn key_len(&self) -> usize {
        // SAFETY: bytes 4..8 are the aligned u32 key length (see `alloc`).
        unsafe { self.base().add(4).cast::<u32>().read() as usize }
    }

    #[inline]
    fn is_inline(&self) -> bool {
        self.meta() & INLINE != 0
    }

    /// Offset of the expiry (or, without a TTL, of the key).
    #[inline]
    fn body_end(&self) -> usize {
        HDR + if self.is_inline() { 4 } else { SLOT }
    }

    #[inline]
    fn key_off(&self) -> usize {
        self.body_end() + if self.meta() & HAS_EXPIRE != 0 { 8 } else { 0 }
    }

    /// Length of the inline string, 0 for other values.
    #[inline]
    fn val_len(&self) -> usize {
        if self.is_inline() {
            // SAFETY: inline entries have their aligned u32 value length at HDR.
            unsafe { self.base().add(HDR).cast::<u32>().read() as usize }
        } else {
            0
        }
    }

    /// Size of the allocation, as `alloc` computed it.
    #[inline]
    fn size(&self) -> usize {
        self.key_off() + self.key_len() + self.val_len()
    }

    /// The stored value's payload slot and code; `None` for inline strings.
    #[inline]
    fn slot(&self) -> Option<(*mut u8, u32)> {
        let meta = self.meta();
        // SAFETY (of the `add`): HDR is within the allocation.
        (meta & INLINE == 0).then(|| {
            (
                unsafe { self.base().add(HDR) },
                (meta & CODE_MASK) >> CODE_SHIFT,
            )
        })
    }

    #[inline]
    fn bytes(&self, off: usize, len: usize) -> &[u8] {
        debug_assert!(off + len <= self.size());
        // SAFETY: callers pass a range of initialized bytes inside the allocation (key or
        // inline value); the slice borrows `self`, so the allocation outlives it.
        unsafe { std::slice::from_raw_parts(self.base().add(off), len) }
    }

    /// The table's hash tag (0 outside a table).
    #[inline]
    pub(crate) fn tag(&self) -> u16 {
        (self.ptr.as_ptr().addr() >> ADDR_BITS) as u16
    }

    /// Stores the table's hash tag in the pointer's unused top bits.
    #[inline]
    pub(crate) fn set_tag(&mut self, tag: u16) {
        let p = self
            .base()
            .map_addr(|a| a | (usize::from(tag) << ADDR_BITS));
        self.ptr = NonNull::new(p).expect("entry pointer is non-null");
    }

    /// Replaces the allocation with `new`, keeping the table tag. Returns the old one.
    fn replace(&mut self, mut new: Entry) -> Entry {
        new.set_tag(self.tag());
        mem::replace(self, new)
    }

    /// Frees the allocation without dropping the stored value, which the caller has moved
    /// out (read) before.
    fn free_moved(self) {
        let me = mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again; the layout is the one `alloc` used.
        // A payload left in the slot has been moved out by the caller (not dropped here).
        unsafe { alloc::dealloc(me.base(), Layout::from_size_align_unchecked(me.size(), 8)) }
    }

    /// Frees the allocation and returns the stored value (`None` for inline strings).
    fn into_value(self) -> Option<Value> {
        // SAFETY: the slot holds the live payload of code `c`; it is read exactly once and
        // the allocation is then freed without dropping it, so the value is moved.
        let v = self.slot().map(|(p, c)| unsafe { Value::read_from(p, c) });
        self.free_moved();
        v
    }

    /// The key's bytes.
    #[inline]
    pub fn key(&self) -> &[u8] {
        self.bytes(self.key_off(), self.key_len())
    }

    /// Absolute expiry time in unix milliseconds, if the key has a TTL.
    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        if self.meta() & HAS_EXPIRE == 0 {
            return None;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(self.bytes(self.body_end(), 8));
        Some(u64::from_le_bytes(b))
    }

    /// Rebuilds the allocation with another TTL, moving the value.
    fn rebuild_with_expire(&mut self, at: Option<u64>) {
        let Some((p, c)) = self.slot() else {
            let new = Entry::alloc(
                self.meta(),
                at,
                self.key(),
                Payload::Inline(self.string_bytes()),
            );
            drop(self.replace(new));
            return;
        };
        // SAFETY: the value is moved bit for bit into the new allocation and the old one is
        // then freed without dropping it (`free_moved`), so it is dropped exactly once.
        // Nothing in between can unwind: the key length was valid when the entry was built,
        // and `alloc` aborts rather than panics on allocation failure or a too-high address.
        let v = unsafe { Value::read_from(p, c) };
        let mut new = Entry::alloc(self.meta(), at, self.key(), Payload::Value(v));
        new.set_tag(self.tag());
        mem::replace(self, new).free_moved();
    }

    /// Sets or clears the TTL. Returns true if the key changed between "has a TTL" and "has
    /// none". Crate-private: the keyspace keeps a count of keys with TTLs for INFO, so
    /// commands go through [`crate::Keys::set_expire`].
    pub(crate) fn set_expire_at(&mut self, at: Option<u64>) -> bool {
        match (self.expire_at(), at) {
            (Some(_), Some(new)) => {
                let off = self.body_end();
                // SAFETY: an entry with HAS_EXPIRE has 8 expiry bytes at `body_end`;
                // `&mut self` means nothing borrows them.
                unsafe {
                    ptr::copy_nonoverlapping(new.to_le_bytes().as_ptr(), self.base().add(off), 8)
                };
                false
            }
            (None, None) => false,
            (Some(_), None) | (None, Some(_)) => {
                self.rebuild_with_expire(at);
                true
            }
        }
    }

    /// True if the key has a TTL that is at or before `now_ms`.
    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.expire_at(), Some(at) if at <= now_ms)
    }

    /// The snapshot mark (see [`SNAP_MARK`]).
    #[inline]
    pub(crate) fn snap_mark(&self) -> bool {
        self.meta() & SNAP_MARK != 0
    }

    #[inline]
    pub(crate) fn set_snap_mark(&mut self, mark: bool) {
        let m = (self.meta() & !SNAP_MARK) | if mark { SNAP_MARK } else { 0 };
        self.set_meta(m);
    }

    /// The LRU clock (or LFU data) bits.
    #[inline]
    pub fn lru(&self) -> u32 {
        self.meta() & LRU_MASK
    }

    /// Records an access for LRU/LFU eviction and OBJECT IDLETIME.
    #[inline]
    pub fn set_lru(&mut self, lru: u32) {
        let m = (self.meta() & !LRU_MASK) | (lru & LRU_MASK);
        self.set_meta(m);
    }

    /// The type of the value (from the header alone).
    #[inline]
    pub fn kind(&self) -> Kind {
        match self.slot() {
            Some((_, c)) => value::kind_of_code(c),
            None => Kind::String,
        }
    }

    /// The value (for collections; strings are read with [`Entry::string`]). An inline
    /// string reads as [`ValueRef::InlineStr`].
    #[inline]
    pub fn value(&self) -> ValueRef<'_> {
        match self.slot() {
            // SAFETY: a non-inline entry holds the live payload of code `c` in its slot,
            // borrowed here for as long as `self`.
            Some((p, c)) => unsafe { Value::ref_at(p, c) },
            None => ValueRef::InlineStr,
        }
    }

    /// Mutable access to a stored value; `None` for a string stored inline (the value
    /// commands edit in place are collections, or strings via [`Entry::string_mut`]).
    #[inline]
    pub fn value_mut(&mut self) -> Option<ValueMut<'_>> {
        // SAFETY: as in `value`, uniquely borrowed through `&mut self`. The borrow can
        // change the payload's contents but not its variant, so the code stays right.
        self.slot().map(|(p, c)| unsafe { Value::mut_at(p, c) })
    }

    /// The inline string's bytes (empty for other values).
    #[inline]
    fn string_bytes(&self) -> &[u8] {
        self.bytes(self.key_off() + self.key_len(), self.val_len())
    }

    /// The bytes of a string value, or `None` if the key holds another type.
    #[inline]
    pub fn string(&self) -> Option<&[u8]> {
        match self.value() {
            ValueRef::InlineStr => Some(self.string_bytes()),
            ValueRef::RawStr(v) => Some(v),
            _ => None,
        }
    }

    /// Replaces the value with a string, stored inline. The TTL and LRU bits are kept.
    /// Returns the displaced entry when the new string did not fit in place, for the caller
    /// to free (a big collection SET over may go to the lazy-free thread).
    pub fn set_string(&mut self, val: &[u8]) -> Option<Entry> {
        if self.is_inline() && self.val_len() == val.len() {
            let off = self.key_off() + self.key_len();
            // SAFETY: the inline value occupies exactly `val.len()` bytes at `off`, nothing
            // borrows them (`&mut self`), and `val` cannot point into our allocation while
            // `self` is mutably borrowed.
            unsafe { ptr::copy_nonoverlapping(val.as_ptr(), self.base().add(off), val.len()) };
            return None;
        }
        let new = Entry::new_string(self.key(), val, self.expire_at(), self.meta());
        let snap = self.snap_mark();
        let old = self.replace(new);
        self.set_snap_mark(snap);
        Some(old)
    }

    /// Replaces the value with a non-inline one. The TTL and LRU bits are kept.
    pub fn set_value(&mut self, value: Value) {
        match self.slot() {
            Some((p, c)) => {
                // `code` panics for `Value::InlineStr` before anything moves.
                let code = value.code() << CODE_SHIFT;
                // SAFETY: the slot holds the live payload of code `c`: it is moved out once,
                // the new payload written in its place and the code updated before anything
                // can observe the entry; `&mut self` means no borrow of the slot is live.
                // Dropping the old value last keeps the entry consistent even if it panics.
                let old = unsafe { Value::read_from(p, c) };
                // SAFETY: the slot is aligned, writable and now holds no live payload.
                unsafe { value.write_to(p) };
                self.set_meta((self.meta() & !CODE_MASK) | code);
                drop(old);
            }
            None => {
                let new = Entry::alloc(
                    self.meta(),
                    self.expire_at(),
                    self.key(),
                    Payload::Value(value),
                );
                drop(self.replace(new));
            }
        }
    }

    /// A string value as a growable buffer, for in-place edits (APPEND, SETRANGE, SETBIT).
    /// Converts an inline string into the "raw" form once, so repeated appends are amortized
    /// O(1) as with Redis's sds. `None` if the key holds another type.
    pub fn string_mut(&mut self) -> Option<&mut Vec<u8>> {
        if self.is_inline() {
            let raw = self.string_bytes().to_vec();
            self.set_value(Value::RawStr(Box::new(raw)));
        }
        match self.value_mut() {
            Some(ValueMut::RawStr(v)) => Some(v),
            _ => None,
        }
    }

    /// Redis's OBJECT ENCODING name for this value.
    pub fn encoding(&self) -> &'static str {
        match self.value() {
            ValueRef::InlineStr => {
                let s = self.string_bytes();
                if s.len() <= 20 && crate::num::parse_i64(s).is_some() {
                    "int"
                } else if s.len() <= EMBSTR_LIMIT {
                    "embstr"
                } else {
                    "raw"
                }
            }
            ValueRef::RawStr(_) => "raw",
            ValueRef::Hash(h) => h.encoding(),
            ValueRef::List(l) => l.encoding(),
            ValueRef::Set(s) => s.encoding(),
            ValueRef::ZSet(z) => z.encoding(),
            ValueRef::Stream(_) => "stream",
            // Module values report `raw`, as in Redis.
            ValueRef::Bloom(_) | ValueRef::Cache(_) => "raw",
        }
    }

    /// Roughly how many allocations freeing the value takes (Redis's lazyfreeGetFreeEffort):
    /// its element count for a collection, 1 for a string. Values above a threshold are
    /// freed on the lazy-free thread when freeing lazily.
    pub fn free_effort(&self) -> usize {
        match self.value() {
            ValueRef::Hash(h) => h.len(),
            ValueRef::List(l) => l.len(),
            ValueRef::Set(s) => s.len(),
            ValueRef::ZSet(z) => z.len(),
            ValueRef::Stream(s) => usize::try_from(s.len()).unwrap_or(usize::MAX),
            ValueRef::InlineStr | ValueRef::RawStr(_) | ValueRef::Bloom(_) | ValueRef::Cache(_) => {
                1
            }
        }
    }

    /// Heap bytes owned by this entry (its allocation and the value's heap), not counting
    /// its slot in the table, for MEMORY USAGE and eviction.
    pub fn heap_bytes(&self) -> usize {
        self.size() + self.value().heap_bytes()
    }

    /// This entry under another key (RENAME): the value moves, the TTL and LRU bits are kept.
    /// Only the entry's own allocation is rebuilt, so renaming a large collection costs O(1).
    pub fn renamed(self, key: &[u8]) -> Entry {
        let (meta, at) = (self.meta(), self.expire_at());
        if self.is_inline() {
            return Entry::alloc(meta, at, key, Payload::Inline(self.string_bytes()));
        }
        let v = self.into_value().expect("not inline");
        Entry::alloc(meta, at, key, Payload::Value(v))
    }

    /// A copy of this entry under another key (COPY keeps the value and TTL).
    pub fn clone_as(&self, key: &[u8]) -> Entry {
        let payload = match self.value().to_value() {
            Some(v) => Payload::Value(v),
            None => Payload::Inline(self.string_bytes()),
        };
        Entry::alloc(self.meta(), self.expire_at(), key, payload)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let size = self.size();
        // SAFETY: the stored payload (if any) is live and moved out exactly once, here, to
        // be dropped; then the allocation is freed with the layout `alloc` used (same size
        // formula, align 8). Nothing can use the entry afterwards.
        unsafe {
            if let Some((p, c)) = self.slot() {
                drop(Value::read_from(p, c));
            }
            alloc::dealloc(self.base(), Layout::from_size_align_unchecked(size, 8));
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("kind", &self.kind())
            .field("expire_at", &self.expire_at())
            .finish()
    }
}

impl crate::dict::DictItem for Entry {
    #[inline]
    fn key(&self) -> &[u8] {
        Entry::key(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_one_pointer() {
        assert_eq!(size_of::<Entry>(), 8);
        assert_eq!(size_of::<Option<Entry>>(), 8);
    }

    #[test]
    fn string_with_and_without_ttl() {
        let mut e = Entry::new_string(b"key", b"value", None, 7);
        assert_eq!(e.key(), b"key");
        assert_eq!(e.string(), Some(&b"value"[..]));
        assert_eq!(e.expire_at(), None);
        assert!(e.set_expire_at(Some(1234)));
        assert_eq!(e.key(), b"key");
        assert_eq!(e.string(), Some(&b"value"[..]));
        assert_eq!(e.expire_at(), Some(1234));
        assert!(!e.set_expire_at(Some(99)));
        assert_eq!(e.expire_at(), Some(99));
        assert!(e.is_expired(99));
        assert!(!e.is_expired(98));
        assert!(e.set_expire_at(None));
        assert_eq!(e.string(), Some(&b"value"[..]));
        assert_eq!(e.lru(), 7);
    }

    #[test]
    fn in_place_edits_keep_key_and_ttl() {
        let mut e = Entry::new_string(b"k", b"abc", Some(5), 0);
        e.string_mut().unwrap().extend_from_slice(b"def");
        assert_eq!(e.string(), Some(&b"abcdef"[..]));
        assert_eq!(e.encoding(), "raw");
        assert_eq!(e.expire_at(), Some(5));
        e.set_string(b"12");
        assert_eq!(e.encoding(), "int");
        assert_eq!(e.key(), b"k");
        assert_eq!(e.expire_at(), Some(5));
        let c = e.clone_as(b"other");
        assert_eq!(c.key(), b"other");
        assert_eq!(c.string(), Some(&b"12"[..]));
        assert_eq!(c.expire_at(), Some(5));
    }

    #[test]
    fn encodings_match_redis_thresholds() {
        let e = Entry::new_string(b"k", &[b'x'; 44], None, 0);
        assert_eq!(e.encoding(), "embstr");
        let e = Entry::new_string(b"k", &[b'x'; 45], None, 0);
        assert_eq!(e.encoding(), "raw");
        let e = Entry::new_string(b"k", b"-123", None, 0);
        assert_eq!(e.encoding(), "int");
        let e = Entry::new_string(b"k", b"0123", None, 0);
        assert_eq!(e.encoding(), "embstr");
    }

    #[test]
    fn collections_take_one_word_in_the_entry() {
        use crate::hash_value::{HashLimits, HashValue};
        let limits = HashLimits {
            max_entries: 128,
            max_value: 64,
        };
        let mut h = HashValue::default();
        h.set(b"field0", b"value", limits);
        // A 14-byte key: header 8 + payload 8 + key 14 = 30 bytes, the 32-byte class.
        let mut e = Entry::new_value(b"hash:000000001", Value::Hash(h), None, 9);
        assert_eq!(e.size(), 30);
        assert_eq!(
            (e.kind(), e.encoding(), e.lru()),
            (Kind::Hash, "listpack", 9)
        );
        match e.value_mut() {
            Some(ValueMut::Hash(h)) => h.convert(),
            other => panic!("not a hash: {other:?}"),
        }
        assert_eq!(e.encoding(), "hashtable");
        assert!(matches!(e.value(), ValueRef::Hash(h) if h.get(b"field0") == Some(b"value")));
        e.set_snap_mark(true);
        e.set_value(Value::Set(Box::default()));
        assert_eq!((e.kind(), e.lru(), e.snap_mark()), (Kind::Set, 9, true));
        assert!(e.set_expire_at(Some(5)));
        assert_eq!(
            (e.kind(), e.expire_at(), e.size()),
            (Kind::Set, Some(5), 38)
        );
        let c = e.clone_as(b"copy");
        assert!(matches!(c.value(), ValueRef::Set(s) if s.is_empty()));
        let r = c.renamed(b"moved");
        assert_eq!(
            (r.key(), r.kind(), r.expire_at()),
            (&b"moved"[..], Kind::Set, Some(5))
        );
    }

    #[test]
    fn renamed_moves_value_and_keeps_ttl() {
        let e = Entry::new_string(b"a", b"hello", Some(77), 3);
        let r = e.renamed(b"bb");
        assert_eq!(r.key(), b"bb");
        assert_eq!(r.string(), Some(&b"hello"[..]));
        assert_eq!((r.expire_at(), r.lru()), (Some(77), 3));
        let mut e = Entry::new_string(b"a", b"x", None, 0);
        e.string_mut().unwrap().push(b'y');
        let r = e.renamed(b"c");
        assert_eq!(
            (r.key(), r.string(), r.expire_at()),
            (&b"c"[..], Some(&b"xy"[..]), None)
        );
    }
}
