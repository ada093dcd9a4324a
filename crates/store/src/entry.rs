//! One key of the keyspace: key bytes, value, TTL and LRU/LFU bits in as few allocations as
//! possible.
//!
//! Layout (40 bytes, so a dict node is 48 — one jemalloc size class):
//! - `data`: a single allocation holding `[expire_at: 8 bytes LE, only if HAS_EXPIRE][key][string
//!   value, only for inline strings]`. A plain `SET k v` therefore costs one allocation for key,
//!   value and TTL together, and a read touches the key and the value in the same cache lines.
//! - `value`: which type the key holds; collections and strings that are edited in place live
//!   behind a pointer.
//! - `key_len` and `meta` (24-bit LRU clock / LFU data, 8 flag bits).
//!
//! Keys without a TTL pay nothing for expiry; setting a TTL on an existing key re-allocates
//! `data` once, which is rare next to reads.

use crate::value::Value;

/// Flag bit in `meta`: `data` starts with an 8-byte expiry time.
const HAS_EXPIRE: u32 = 1 << 24;
/// Flag bit in `meta`: the entry's snapshot mark. A running snapshot has captured the entry
/// (or the entry is newer than the snapshot) when the mark equals its database's; see
/// [`crate::snapshot`].
const SNAP_MARK: u32 = 1 << 25;
/// Mask of the LRU/LFU bits in `meta`.
const LRU_MASK: u32 = (1 << 24) - 1;

/// Strings up to this length report `embstr` in OBJECT ENCODING, as in Redis.
pub const EMBSTR_LIMIT: usize = 44;

/// A key and its value.
pub struct Entry {
    data: Box<[u8]>,
    value: Value,
    key_len: u32,
    meta: u32,
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

fn build(expire_at: Option<u64>, key: &[u8], tail: &[u8]) -> Box<[u8]> {
    let prefix = if expire_at.is_some() { 8 } else { 0 };
    let mut v = Vec::with_capacity(prefix + key.len() + tail.len());
    if let Some(at) = expire_at {
        v.extend_from_slice(&at.to_le_bytes());
    }
    v.extend_from_slice(key);
    v.extend_from_slice(tail);
    v.into_boxed_slice()
}

impl Entry {
    /// A string key, stored inline with its value.
    pub fn new_string(key: &[u8], val: &[u8], expire_at: Option<u64>, lru: u32) -> Entry {
        Entry {
            data: build(expire_at, key, val),
            value: Value::InlineStr,
            key_len: key.len() as u32,
            meta: (lru & LRU_MASK) | if expire_at.is_some() { HAS_EXPIRE } else { 0 },
        }
    }

    /// A key holding a non-inline value.
    pub fn new_value(key: &[u8], value: Value, expire_at: Option<u64>, lru: u32) -> Entry {
        debug_assert!(!matches!(value, Value::InlineStr));
        Entry {
            data: build(expire_at, key, &[]),
            value,
            key_len: key.len() as u32,
            meta: (lru & LRU_MASK) | if expire_at.is_some() { HAS_EXPIRE } else { 0 },
        }
    }

    fn prefix(&self) -> usize {
        if self.meta & HAS_EXPIRE != 0 {
            8
        } else {
            0
        }
    }

    /// The key's bytes.
    #[inline]
    pub fn key(&self) -> &[u8] {
        let p = self.prefix();
        &self.data[p..p + self.key_len as usize]
    }

    /// Absolute expiry time in unix milliseconds, if the key has a TTL.
    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        if self.meta & HAS_EXPIRE != 0 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.data[..8]);
            Some(u64::from_le_bytes(b))
        } else {
            None
        }
    }

    /// Sets or clears the TTL. Returns true if the key changed between "has a TTL" and "has
    /// none". Crate-private: the keyspace keeps a count of keys with TTLs for INFO, so
    /// commands go through [`crate::Keys::set_expire`].
    pub(crate) fn set_expire_at(&mut self, at: Option<u64>) -> bool {
        match (self.expire_at(), at) {
            (Some(_), Some(new)) => {
                self.data[..8].copy_from_slice(&new.to_le_bytes());
                false
            }
            (None, None) => false,
            (Some(_), None) => {
                self.data = self.data[8..].into();
                self.meta &= !HAS_EXPIRE;
                true
            }
            (None, Some(new)) => {
                self.data = build(Some(new), &self.data, &[]);
                self.meta |= HAS_EXPIRE;
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
        self.meta & SNAP_MARK != 0
    }

    #[inline]
    pub(crate) fn set_snap_mark(&mut self, mark: bool) {
        self.meta = (self.meta & !SNAP_MARK) | if mark { SNAP_MARK } else { 0 };
    }

    /// The LRU clock (or LFU data) bits.
    #[inline]
    pub fn lru(&self) -> u32 {
        self.meta & LRU_MASK
    }

    /// Records an access for LRU/LFU eviction and OBJECT IDLETIME.
    #[inline]
    pub fn set_lru(&mut self, lru: u32) {
        self.meta = (self.meta & !LRU_MASK) | (lru & LRU_MASK);
    }

    /// The type of the value.
    #[inline]
    pub fn kind(&self) -> Kind {
        self.value.kind()
    }

    /// The value (for collections; strings are read with [`Entry::string`]).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Mutable access to the value.
    pub fn value_mut(&mut self) -> &mut Value {
        &mut self.value
    }

    /// The bytes of a string value, or `None` if the key holds another type.
    #[inline]
    pub fn string(&self) -> Option<&[u8]> {
        match &self.value {
            Value::InlineStr => Some(&self.data[self.prefix() + self.key_len as usize..]),
            Value::RawStr(v) => Some(v),
            _ => None,
        }
    }

    /// Replaces the value with a string, stored inline. The TTL and LRU bits are kept.
    pub fn set_string(&mut self, val: &[u8]) {
        let p = self.prefix() + self.key_len as usize;
        if matches!(self.value, Value::InlineStr) && self.data.len() - p == val.len() {
            self.data[p..].copy_from_slice(val);
            return;
        }
        let mut v = Vec::with_capacity(p + val.len());
        v.extend_from_slice(&self.data[..p]);
        v.extend_from_slice(val);
        self.data = v.into_boxed_slice();
        self.value = Value::InlineStr;
    }

    /// Replaces the value with a non-inline one. The TTL and LRU bits are kept.
    pub fn set_value(&mut self, value: Value) {
        debug_assert!(!matches!(value, Value::InlineStr));
        if matches!(self.value, Value::InlineStr) {
            let p = self.prefix() + self.key_len as usize;
            self.data = self.data[..p].into();
        }
        self.value = value;
    }

    /// A string value as a growable buffer, for in-place edits (APPEND, SETRANGE, SETBIT).
    /// Converts an inline string into the "raw" form once, so repeated appends are amortized
    /// O(1) as with Redis's sds. `None` if the key holds another type.
    pub fn string_mut(&mut self) -> Option<&mut Vec<u8>> {
        if matches!(self.value, Value::InlineStr) {
            let p = self.prefix() + self.key_len as usize;
            let raw = self.data[p..].to_vec();
            self.data = self.data[..p].into();
            self.value = Value::RawStr(Box::new(raw));
        }
        match &mut self.value {
            Value::RawStr(v) => Some(v),
            _ => None,
        }
    }

    /// Redis's OBJECT ENCODING name for this value.
    pub fn encoding(&self) -> &'static str {
        match &self.value {
            Value::InlineStr => {
                let s = self.string().unwrap_or_default();
                if s.len() <= 20 && crate::num::parse_i64(s).is_some() {
                    "int"
                } else if s.len() <= EMBSTR_LIMIT {
                    "embstr"
                } else {
                    "raw"
                }
            }
            Value::RawStr(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
            // Module values report `raw`, as in Redis.
            Value::Bloom(_) | Value::Cache(_) => "raw",
        }
    }

    /// Roughly how many allocations freeing the value takes (Redis's lazyfreeGetFreeEffort):
    /// its element count for a collection, 1 for a string. Values above a threshold are
    /// freed on the lazy-free thread when freeing lazily.
    pub fn free_effort(&self) -> usize {
        match &self.value {
            Value::Hash(h) => h.len(),
            Value::List(l) => l.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            Value::Stream(s) => usize::try_from(s.len()).unwrap_or(usize::MAX),
            Value::InlineStr | Value::RawStr(_) | Value::Bloom(_) | Value::Cache(_) => 1,
        }
    }

    /// Heap bytes owned by this entry beyond the dict node, for MEMORY USAGE and eviction.
    pub fn heap_bytes(&self) -> usize {
        self.data.len() + self.value.heap_bytes()
    }

    /// This entry under another key (RENAME): the value moves, the TTL and LRU bits are kept.
    /// Only the small key/TTL/inline-string allocation is rebuilt, so renaming a large
    /// collection costs O(1).
    pub fn renamed(self, key: &[u8]) -> Entry {
        let tail = match &self.value {
            Value::InlineStr => self.string().unwrap_or_default(),
            _ => &[],
        };
        let data = build(self.expire_at(), key, tail);
        Entry {
            data,
            value: self.value,
            key_len: key.len() as u32,
            meta: self.meta,
        }
    }

    /// A copy of this entry under another key (COPY keeps the value and TTL).
    pub fn clone_as(&self, key: &[u8]) -> Entry {
        let tail = match &self.value {
            Value::InlineStr => self.string().unwrap_or_default(),
            _ => &[],
        };
        Entry {
            data: build(self.expire_at(), key, tail),
            value: self.value.clone(),
            key_len: key.len() as u32,
            meta: self.meta,
        }
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
    fn entry_fits_forty_bytes() {
        // 32 while strings are the only type; collection variants of `Value` (one pointer
        // each) bring it to 40, the budget.
        assert!(std::mem::size_of::<Entry>() <= 40);
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
