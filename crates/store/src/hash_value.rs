//! Hash values: a listpack of alternating fields and values while small, a dict past
//! `hash-max-listpack-entries` / `hash-max-listpack-value`.
//!
//! Both encodings answer every query identically (a property test checks it); only
//! iteration order, SCAN cursors and random picks differ, as in Redis. Conversion goes one
//! way, listpack → hashtable, and happens inside [`HashValue::set`], so callers only pass
//! the configured limits.

use crate::dict::{Dict, DictItem};
use crate::hash::hash_bytes;
use crate::listpack::{self, Listpack};
use std::mem::ManuallyDrop;

/// One field of a hash in the dict encoding.
#[derive(Clone, Debug)]
pub struct HashField {
    pub field: Box<[u8]>,
    pub value: Box<[u8]>,
}

impl DictItem for HashField {
    fn key(&self) -> &[u8] {
        &self.field
    }
}

/// A hash, in one of Redis's two encodings, in one word (8 bytes).
///
/// The word is either a [`Listpack`] (field1, value1, field2, value2…; OBJECT ENCODING
/// `listpack`) or a `Box<Dict<HashField>>` with its low bit set (`hashtable`). A key's
/// entry stores this word directly, so a small hash costs its entry and one listpack
/// allocation, nothing else. [`HashValue::enc`] and [`HashValue::enc_mut`] give the encoding
/// as a safe enum.
///
/// Why `unsafe`: an enum of the two would be 16 bytes (Rust cannot fold two pointer variants
/// into one word), which puts every small hash's entry in the next jemalloc size class.
pub struct HashValue(Repr);

/// The word: which field is live is told by the low bit (set: `table`).
union Repr {
    lp: ManuallyDrop<Listpack>,
    /// The table's `Box` pointer with [`TABLE_TAG`] set.
    table: *mut Dict<HashField>,
}

/// Low bit of the word marking the hashtable encoding: a listpack's pointer is null or
/// 8-aligned (its allocation's alignment), a `Box<Dict>` 8-aligned, so the bit is free.
const TABLE_TAG: usize = 1;
const _: () = assert!(std::mem::align_of::<Dict<HashField>>() > TABLE_TAG);
const _: () = assert!(std::mem::size_of::<HashValue>() == 8);

// SAFETY: a `HashValue` owns its listpack or its dict exclusively (as a `Listpack` or a
// `Box` would), both of which are Send and Sync; the raw pointer is only that `Box`.
unsafe impl Send for HashValue {}
// SAFETY: see `Send`; there is no interior mutability.
unsafe impl Sync for HashValue {}

/// A hash's encoding, borrowed.
pub enum Enc<'a> {
    Listpack(&'a Listpack),
    Table(&'a Dict<HashField>),
}

/// A hash's encoding, mutably borrowed.
enum EncMut<'a> {
    Listpack(&'a mut Listpack),
    Table(&'a mut Dict<HashField>),
}

/// The conversion thresholds (`hash-max-listpack-entries`, `hash-max-listpack-value`).
#[derive(Clone, Copy, Debug)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

/// Iterator over a hash's (field, value) pairs, in storage order.
pub enum Iter<'a> {
    Listpack(listpack::Iter<'a>),
    Table(crate::dict::Iter<'a, HashField>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Listpack(it) => Some((it.next()?, it.next()?)),
            Iter::Table(it) => it.next().map(|f| (&*f.field, &*f.value)),
        }
    }
}

impl Default for HashValue {
    /// An empty hash in the compact encoding (allocates nothing).
    fn default() -> Self {
        HashValue::from_listpack(Listpack::new())
    }
}

impl Drop for HashValue {
    fn drop(&mut self) {
        match self.table_ptr() {
            // SAFETY: the tagged word owns a `Box` made by `from_table`; it is rebuilt and
            // dropped exactly once, here.
            Some(d) => drop(unsafe { Box::from_raw(d) }),
            // SAFETY: the untagged word is the live `lp` field, dropped exactly once, here.
            None => unsafe { ManuallyDrop::drop(&mut self.0.lp) },
        }
    }
}

impl Clone for HashValue {
    fn clone(&self) -> Self {
        match self.enc() {
            Enc::Listpack(lp) => HashValue::from_listpack(lp.clone()),
            Enc::Table(d) => HashValue::from_table(Box::new(d.clone())),
        }
    }
}

impl std::fmt::Debug for HashValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.enc() {
            Enc::Listpack(lp) => f.debug_tuple("Listpack").field(lp).finish(),
            Enc::Table(d) => f.debug_tuple("Table").field(&d.len()).finish(),
        }
    }
}

impl HashValue {
    fn from_listpack(lp: Listpack) -> HashValue {
        HashValue(Repr {
            lp: ManuallyDrop::new(lp),
        })
    }

    fn from_table(d: Box<Dict<HashField>>) -> HashValue {
        let p = Box::into_raw(d).map_addr(|a| a | TABLE_TAG);
        HashValue(Repr { table: p })
    }

    /// An empty hash in the hashtable encoding (RDB loading of a `hash` record).
    pub fn new_table() -> HashValue {
        HashValue::from_table(Box::default())
    }

    /// The dict's pointer (untagged) if the hash is a hashtable.
    #[inline]
    fn table_ptr(&self) -> Option<*mut Dict<HashField>> {
        // SAFETY: both fields are one pointer-sized word and any bits are a valid raw
        // pointer, so reading `table` is sound whichever field is live; only its tag says
        // whether it may be dereferenced.
        let p = unsafe { self.0.table };
        (p.addr() & TABLE_TAG != 0).then(|| p.map_addr(|a| a & !TABLE_TAG))
    }

    /// The encoding, borrowed.
    #[inline]
    pub fn enc(&self) -> Enc<'_> {
        match self.table_ptr() {
            // SAFETY: a tagged word is a live `Box<Dict>` owned by `self`; the reference
            // borrows `self`.
            Some(d) => Enc::Table(unsafe { &*d }),
            // SAFETY: an untagged word is the live `lp` field.
            None => Enc::Listpack(unsafe { &self.0.lp }),
        }
    }

    #[inline]
    fn enc_mut(&mut self) -> EncMut<'_> {
        match self.table_ptr() {
            // SAFETY: as in `enc`, uniquely borrowed through `&mut self`.
            Some(d) => EncMut::Table(unsafe { &mut *d }),
            // SAFETY: as in `enc`. A `&mut Listpack` cannot set the tag: whatever the
            // caller does, the listpack's pointer stays null or 8-aligned.
            None => EncMut::Listpack(unsafe { &mut self.0.lp }),
        }
    }

    /// True in the listpack encoding.
    #[inline]
    pub fn is_listpack(&self) -> bool {
        self.table_ptr().is_none()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match self.enc() {
            Enc::Listpack(lp) => lp.len() / 2,
            Enc::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self.enc() {
            Enc::Listpack(_) => "listpack",
            Enc::Table(_) => "hashtable",
        }
    }

    /// Heap bytes owned (MEMORY USAGE, eviction).
    pub fn heap_bytes(&self) -> usize {
        match self.enc() {
            Enc::Listpack(lp) => lp.heap_bytes(),
            Enc::Table(d) => {
                std::mem::size_of::<Dict<HashField>>()
                    + d.mem_bytes()
                    + d.iter()
                        .map(|f| f.field.len() + f.value.len())
                        .sum::<usize>()
            }
        }
    }

    /// The (field, value) pairs in storage order.
    pub fn iter(&self) -> Iter<'_> {
        match self.enc() {
            Enc::Listpack(lp) => Iter::Listpack(lp.iter()),
            Enc::Table(d) => Iter::Table(d.iter()),
        }
    }

    /// Element index of `field` in a listpack (the value follows at index + 1).
    fn lp_index(lp: &Listpack, field: &[u8]) -> Option<usize> {
        lp.iter().step_by(2).position(|f| f == field).map(|i| 2 * i)
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self.enc() {
            Enc::Listpack(lp) => {
                let mut it = lp.iter();
                while let Some(f) = it.next() {
                    let v = it.next()?;
                    if f == field {
                        return Some(v);
                    }
                }
                None
            }
            Enc::Table(d) => d.get(hash_bytes(field), field).map(|f| &*f.value),
        }
    }

    /// True if `field` exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value`; returns true if the field is new. A listpack converts to a
    /// hashtable first if either string is longer than `limits.max_value`, and after the
    /// insert if it holds more than `limits.max_entries` fields (never back).
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        if self.is_listpack() && (field.len() > limits.max_value || value.len() > limits.max_value)
        {
            self.convert();
        }
        let new = match self.enc_mut() {
            EncMut::Listpack(lp) => match Self::lp_index(lp, field) {
                Some(i) => {
                    lp.set(i + 1, value);
                    false
                }
                None => {
                    lp.extend_back(&[field, value]);
                    true
                }
            },
            EncMut::Table(d) => {
                let h = hash_bytes(field);
                match d.get_mut(h, field) {
                    Some(f) => {
                        f.value = value.into();
                        false
                    }
                    None => {
                        d.insert_new(
                            h,
                            HashField {
                                field: field.into(),
                                value: value.into(),
                            },
                        );
                        true
                    }
                }
            }
        };
        if self.is_listpack() && self.len() > limits.max_entries {
            self.convert();
        }
        new
    }

    /// Removes `field`; returns true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.enc_mut() {
            EncMut::Listpack(lp) => match Self::lp_index(lp, field) {
                Some(i) => {
                    lp.remove_range(i, 2);
                    true
                }
                None => false,
            },
            EncMut::Table(d) => d.remove(hash_bytes(field), field).is_some(),
        }
    }

    /// Converts a listpack to the hashtable encoding (no-op for a hashtable).
    pub fn convert(&mut self) {
        if let Enc::Listpack(lp) = self.enc() {
            let mut d = Dict::new();
            let mut it = lp.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                d.insert_new(
                    hash_bytes(f),
                    HashField {
                        field: f.into(),
                        value: v.into(),
                    },
                );
            }
            *self = HashValue::from_table(Box::new(d));
        }
    }

    /// A random (field, value) pair, `None` if empty.
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<(&[u8], &[u8])> {
        match self.enc() {
            Enc::Listpack(lp) => {
                if lp.is_empty() {
                    return None;
                }
                let i = rng.gen_range(0..lp.len() / 2);
                let mut it = lp.iter().skip(2 * i);
                Some((it.next()?, it.next()?))
            }
            Enc::Table(d) => {
                let f = d.fair_random(rng)?;
                Some((&*f.field, &*f.value))
            }
        }
    }

    /// One HSCAN step: calls `f` for each visited pair and returns the next cursor (0 when
    /// done). A listpack is returned whole in one call with cursor 0, as Redis does; a
    /// hashtable visits buckets until `count` pairs were seen or `10 * count` buckets were
    /// walked.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self.enc() {
            Enc::Listpack(_) => {
                self.iter().for_each(|(k, v)| f(k, v));
                0
            }
            Enc::Table(d) => {
                let mut cursor = cursor;
                let mut seen = 0usize;
                let max_buckets = count.saturating_mul(10);
                for _ in 0..max_buckets {
                    cursor = d.scan(cursor, |hf| {
                        seen += 1;
                        f(&hf.field, &hf.value);
                    });
                    if cursor == 0 || seen >= count {
                        break;
                    }
                }
                cursor
            }
        }
    }

    /// The (field, value) pairs sorted by field: an encoding-independent view for DEBUG
    /// DIGEST-VALUE.
    pub fn digest_items(&self) -> Vec<(&[u8], &[u8])> {
        let mut items: Vec<_> = self.iter().collect();
        items.sort_unstable_by(|a, b| a.0.cmp(b.0));
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BIG: HashLimits = HashLimits {
        max_entries: usize::MAX,
        max_value: usize::MAX,
    };

    #[test]
    fn converts_past_the_limits_and_never_back() {
        let limits = HashLimits {
            max_entries: 2,
            max_value: 4,
        };
        let mut h = HashValue::default();
        assert!(h.set(b"a", b"1", limits));
        assert!(h.set(b"b", b"2", limits));
        assert!(!h.set(b"a", b"3", limits));
        assert_eq!(h.encoding(), "listpack");
        assert!(h.set(b"c", b"3", limits));
        assert_eq!(h.encoding(), "hashtable");
        assert!(h.remove(b"c") && h.remove(b"b"));
        assert_eq!(h.encoding(), "hashtable");
        let mut h = HashValue::default();
        h.set(b"a", b"12345", limits);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"12345"[..]));
    }

    #[test]
    fn small_hashes_pay_for_a_listpack_only() {
        assert_eq!(std::mem::size_of::<HashValue>(), 8);
        let mut h = HashValue::default();
        assert!(h.is_listpack() && h.is_empty());
        h.set(b"f", b"v", BIG);
        let c = h.clone();
        h.convert();
        assert!(!h.is_listpack() && c.is_listpack());
        assert_eq!(
            (h.get(b"f"), c.get(b"f")),
            (Some(&b"v"[..]), Some(&b"v"[..]))
        );
    }

    #[test]
    fn digest_items_are_sorted_by_field() {
        let mut h = HashValue::default();
        for f in [&b"z"[..], b"a", b"m"] {
            h.set(f, b"v", BIG);
        }
        let fields: Vec<_> = h.digest_items().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, [&b"a"[..], b"m", b"z"]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, Vec<u8>),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..24, prop::collection::vec(any::<u8>(), 0..12)).prop_map(|(f, v)| Op::Set(f, v)),
            (0u8..24).prop_map(Op::Remove),
        ]
    }

    fn field(f: u8) -> Vec<u8> {
        format!("f{f}").into_bytes()
    }

    proptest! {
        /// A hash that stays a listpack and one that is a hashtable from the start answer
        /// every query the same way, and a hash crossing the thresholds mid-way too.
        #[test]
        fn encodings_agree(ops in prop::collection::vec(op(), 0..120)) {
            let small = HashLimits { max_entries: 8, max_value: 6 };
            let mut lp = HashValue::default();
            let mut table = HashValue::new_table();
            let mut mixed = HashValue::default();
            for op in &ops {
                match op {
                    Op::Set(f, v) => {
                        let a = lp.set(&field(*f), v, BIG);
                        prop_assert_eq!(a, table.set(&field(*f), v, BIG));
                        prop_assert_eq!(a, mixed.set(&field(*f), v, small));
                    }
                    Op::Remove(f) => {
                        let a = lp.remove(&field(*f));
                        prop_assert_eq!(a, table.remove(&field(*f)));
                        prop_assert_eq!(a, mixed.remove(&field(*f)));
                    }
                }
                prop_assert_eq!(lp.encoding(), "listpack");
                for h in [&table, &mixed] {
                    prop_assert_eq!(lp.len(), h.len());
                    prop_assert_eq!(lp.digest_items(), h.digest_items());
                    for f in 0..24 {
                        prop_assert_eq!(lp.get(&field(f)), h.get(&field(f)));
                    }
                    let mut scanned = Vec::new();
                    let mut cursor = 0;
                    loop {
                        cursor = h.scan(cursor, 3, |k, v| scanned.push((k.to_vec(), v.to_vec())));
                        if cursor == 0 {
                            break;
                        }
                    }
                    scanned.sort();
                    scanned.dedup();
                    let want: Vec<_> = lp.digest_items().into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                    prop_assert_eq!(scanned, want);
                }
                if mixed.len() > small.max_entries {
                    prop_assert_eq!(mixed.encoding(), "hashtable");
                }
            }
        }
    }
}
