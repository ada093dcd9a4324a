//! Set values: a sorted array of integers (an intset) while every member is an integer in
//! canonical decimal form and there are at most `set-max-intset-entries` of them, a dict
//! otherwise.
//!
//! Redis 7.0 has no listpack encoding for sets (7.2 added it), so an intset converts straight
//! to a hashtable when a non-integer member arrives, as 7.0's OBJECT ENCODING shows. Both
//! encodings answer every query identically (a property test checks it); only iteration
//! order, SCAN cursors and random picks differ. Conversion goes one way, intset → hashtable,
//! and happens inside [`SetValue::insert`].

use std::borrow::Cow;

use crate::dict::{Dict, DictItem};
use crate::hash::hash_bytes;
use crate::num::parse_i64;

/// One member of a set in the dict encoding.
#[derive(Clone, Debug)]
pub struct SetMember(pub Box<[u8]>);

impl DictItem for SetMember {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

/// A set, in one of Redis 7.0's two encodings.
#[derive(Clone, Debug)]
pub enum SetValue {
    /// Sorted, distinct integers (OBJECT ENCODING `intset`).
    Intset(Vec<i64>),
    /// OBJECT ENCODING `hashtable`, boxed so the enum stays as small as the intset variant.
    Table(Box<Dict<SetMember>>),
}

impl Default for SetValue {
    /// An empty set in the compact encoding (allocates nothing).
    fn default() -> Self {
        SetValue::Intset(Vec::new())
    }
}

/// The member `s` as an intset integer: only strings that are the canonical decimal form of
/// an i64 (so that the member reads back byte for byte).
fn as_int(s: &[u8]) -> Option<i64> {
    parse_i64(s).filter(|v| v.to_string().as_bytes() == s)
}

fn int_bytes(v: i64) -> Cow<'static, [u8]> {
    Cow::Owned(v.to_string().into_bytes())
}

/// The members of an intset as a dict.
fn table_of(ints: &[i64]) -> Dict<SetMember> {
    let mut d = Dict::new();
    for &i in ints {
        let m = i.to_string().into_bytes();
        d.insert_new(hash_bytes(&m), SetMember(m.into()));
    }
    d
}

/// Iterator over a set's members, in storage order.
pub enum Iter<'a> {
    Intset(std::slice::Iter<'a, i64>),
    Table(crate::dict::Iter<'a, SetMember>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Cow<'a, [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Intset(it) => it.next().map(|&v| int_bytes(v)),
            Iter::Table(it) => it.next().map(|m| Cow::Borrowed(&*m.0)),
        }
    }
}

impl SetValue {
    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.len(),
            SetValue::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Table(_) => "hashtable",
        }
    }

    /// Heap bytes owned (MEMORY USAGE, eviction).
    pub fn heap_bytes(&self) -> usize {
        match self {
            SetValue::Intset(v) => v.capacity() * std::mem::size_of::<i64>(),
            SetValue::Table(d) => {
                std::mem::size_of::<Dict<SetMember>>()
                    + d.mem_bytes()
                    + d.iter().map(|m| m.0.len()).sum::<usize>()
            }
        }
    }

    /// The members in storage order (ascending integers for an intset).
    pub fn iter(&self) -> Iter<'_> {
        match self {
            SetValue::Intset(v) => Iter::Intset(v.iter()),
            SetValue::Table(d) => Iter::Table(d.iter()),
        }
    }

    /// True if `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => as_int(member).is_some_and(|i| v.binary_search(&i).is_ok()),
            SetValue::Table(d) => d.get(hash_bytes(member), member).is_some(),
        }
    }

    /// Adds `member`; returns true if it is new. An intset converts to a hashtable first for
    /// a non-integer member, and after the insert if it holds more than `max_intset`
    /// members (never back).
    pub fn insert(&mut self, member: &[u8], max_intset: usize) -> bool {
        match self {
            SetValue::Intset(v) => match as_int(member) {
                Some(i) => {
                    let Err(pos) = v.binary_search(&i) else {
                        return false;
                    };
                    v.insert(pos, i);
                    if v.len() > max_intset {
                        self.convert();
                    }
                    true
                }
                None => {
                    let mut d = table_of(v);
                    d.insert_new(hash_bytes(member), SetMember(member.into()));
                    *self = SetValue::Table(Box::new(d));
                    true
                }
            },
            SetValue::Table(d) => {
                let h = hash_bytes(member);
                if d.get(h, member).is_some() {
                    return false;
                }
                d.insert_new(h, SetMember(member.into()));
                true
            }
        }
    }

    /// Removes `member`; returns true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(v) => match as_int(member).map(|i| v.binary_search(&i)) {
                Some(Ok(pos)) => {
                    v.remove(pos);
                    true
                }
                _ => false,
            },
            SetValue::Table(d) => d.remove(hash_bytes(member), member).is_some(),
        }
    }

    /// Converts an intset to the hashtable encoding (no-op for a hashtable).
    pub fn convert(&mut self) {
        if let SetValue::Intset(v) = self {
            *self = SetValue::Table(Box::new(table_of(v)));
        }
    }

    /// A random member, `None` if empty. Dict picks go through Redis's "fair" sampling, so
    /// they are close to uniform.
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<Cow<'_, [u8]>> {
        match self {
            SetValue::Intset(v) if v.is_empty() => None,
            SetValue::Intset(v) => Some(int_bytes(v[rng.gen_range(0..v.len())])),
            SetValue::Table(d) => d.fair_random(rng).map(|m| Cow::Borrowed(&*m.0)),
        }
    }

    /// Removes and returns a random member, `None` if empty.
    pub fn pop_random(&mut self, rng: &mut impl rand::Rng) -> Option<Vec<u8>> {
        let m = self.random(rng)?.into_owned();
        self.remove(&m);
        Some(m)
    }

    /// One SSCAN step: calls `f` for each visited member and returns the next cursor (0 when
    /// done). An intset is returned whole in one call with cursor 0, as Redis does; a
    /// hashtable visits buckets until `count` members were seen or `10 * count` buckets were
    /// walked.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        match self {
            SetValue::Intset(_) => {
                self.iter().for_each(|m| f(&m));
                0
            }
            SetValue::Table(d) => {
                let mut cursor = cursor;
                let mut seen = 0usize;
                for _ in 0..count.saturating_mul(10) {
                    cursor = d.scan(cursor, |m| {
                        seen += 1;
                        f(&m.0);
                    });
                    if cursor == 0 || seen >= count {
                        break;
                    }
                }
                cursor
            }
        }
    }

    /// The members sorted bytewise: an encoding-independent view for DEBUG DIGEST-VALUE.
    pub fn digest_items(&self) -> Vec<Cow<'_, [u8]>> {
        let mut items: Vec<_> = self.iter().collect();
        items.sort_unstable();
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_stay_an_intset_until_the_limit() {
        let mut s = SetValue::default();
        assert!(s.insert(b"3", 2));
        assert!(s.insert(b"-1", 2));
        assert!(!s.insert(b"3", 2));
        assert_eq!(s.encoding(), "intset");
        assert_eq!(s.iter().collect::<Vec<_>>(), [&b"-1"[..], b"3"]);
        assert!(s.insert(b"7", 2));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.remove(b"7") && s.remove(b"3"));
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn non_canonical_numbers_are_strings() {
        for m in [
            &b"a"[..],
            b"01",
            b"+1",
            b"-0",
            b" 1",
            b"1.0",
            b"99999999999999999999",
        ] {
            let mut s = SetValue::default();
            s.insert(b"5", 512);
            assert!(!s.contains(m));
            assert!(s.insert(m, 512));
            assert_eq!(s.encoding(), "hashtable", "{m:?}");
            assert!(s.contains(m) && s.contains(b"5"));
        }
    }

    #[test]
    fn small_sets_pay_for_a_vec_only() {
        assert!(std::mem::size_of::<SetValue>() <= 24);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8),
        Remove(u8),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..40).prop_map(Op::Add),
            (0u8..40).prop_map(Op::Remove),
            Just(Op::Pop),
        ]
    }

    /// Members 0..30 are integers (some negative), the rest strings.
    fn member(m: u8) -> Vec<u8> {
        if m < 30 {
            (i64::from(m) - 10).to_string().into_bytes()
        } else {
            format!("s{m}").into_bytes()
        }
    }

    proptest! {
        /// An intset, a set that is a hashtable from the start and one crossing the intset
        /// limit mid-way answer every query the same way.
        #[test]
        fn encodings_agree(ops in prop::collection::vec(op(), 0..150)) {
            let mut rng = rand::thread_rng();
            let mut model = std::collections::BTreeSet::new();
            let mut table = SetValue::Table(Box::default());
            let mut mixed = SetValue::default();
            for op in &ops {
                match op {
                    Op::Add(m) => {
                        let new = model.insert(member(*m));
                        prop_assert_eq!(new, table.insert(&member(*m), 512));
                        prop_assert_eq!(new, mixed.insert(&member(*m), 8));
                    }
                    Op::Remove(m) => {
                        let had = model.remove(&member(*m));
                        prop_assert_eq!(had, table.remove(&member(*m)));
                        prop_assert_eq!(had, mixed.remove(&member(*m)));
                    }
                    Op::Pop => {
                        if let Some(m) = mixed.pop_random(&mut rng) {
                            prop_assert!(model.remove(&m));
                            prop_assert!(table.remove(&m));
                        }
                    }
                }
                let sorted: Vec<Vec<u8>> = model.iter().cloned().collect();
                for s in [&table, &mixed] {
                    prop_assert_eq!(s.len(), model.len());
                    let items: Vec<Vec<u8>> =
                        s.digest_items().into_iter().map(Cow::into_owned).collect();
                    prop_assert_eq!(&items, &sorted);
                    for m in 0..40 {
                        prop_assert_eq!(s.contains(&member(m)), model.contains(&member(m)));
                    }
                    if let Some(r) = s.random(&mut rng) {
                        prop_assert!(model.contains(&*r));
                    }
                    let mut scanned = Vec::new();
                    let mut cursor = 0;
                    loop {
                        cursor = s.scan(cursor, 3, |m| scanned.push(m.to_vec()));
                        if cursor == 0 {
                            break;
                        }
                    }
                    scanned.sort();
                    scanned.dedup();
                    prop_assert_eq!(&scanned, &sorted);
                }
            }
        }
    }
}
