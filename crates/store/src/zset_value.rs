//! Sorted-set values: listpack while small, skiplist (with spans, for O(log n) ranks) plus a
//! member→score dict past the `zset-max-listpack-*` thresholds.
//!
//! PLACEHOLDER written to fix the API other families code against; the zset work replaces the
//! body. Contract (keep these signatures):
//! - `ZSetValue::default()`, `len`, `is_empty`, `encoding` ("listpack" | "skiplist"),
//!   `heap_bytes`, `Clone`.
//! - `score(&self, member) -> Option<f64>`.
//! - `insert(&mut self, member, score, limits) -> bool`: true when the member is new; an
//!   existing member gets the new score.
//! - `remove(&mut self, member) -> bool`.
//! - `iter(&self)`: `(member, score)` in ascending (score, member) order.
//! - `range_by_score(&self, min, max)`: the same, restricted to `min..=max` (bounds may be
//!   exclusive), found in O(log n) for the skiplist.

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

/// A sorted set.
#[derive(Clone, Debug, Default)]
pub struct ZSetValue {
    items: Vec<(Box<[u8]>, f64)>,
}

impl ZSetValue {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    pub fn heap_bytes(&self) -> usize {
        self.items.iter().map(|(m, _)| m.len() + 24).sum()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.items
            .iter()
            .find(|(m, _)| &**m == member)
            .map(|&(_, s)| s)
    }

    pub fn insert(&mut self, member: &[u8], score: f64, _limits: ZSetLimits) -> bool {
        let new = self.remove(member);
        self.items.push((member.into(), score));
        self.items
            .sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        !new
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        let before = self.items.len();
        self.items.retain(|(m, _)| &**m != member);
        before != self.items.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.items.iter().map(|(m, s)| (&**m, *s))
    }

    pub fn range_by_score(
        &self,
        min: ScoreBound,
        max: ScoreBound,
    ) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.iter().filter(move |&(_, s)| {
            (if min.exclusive {
                s > min.value
            } else {
                s >= min.value
            }) && (if max.exclusive {
                s < max.value
            } else {
                s <= max.value
            })
        })
    }
}
