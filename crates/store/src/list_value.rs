//! List values: one listpack while small, a quicklist (a deque of listpack nodes) once the
//! single listpack outgrows one node of `list-max-listpack-size`.
//!
//! Redis 7.0 stores every list as a quicklist and reports `quicklist` for all of them; the
//! single-listpack form here is only a memory saving (no node deque for the many short lists
//! queues and timelines use), so [`ListValue::encoding`] reports `quicklist` either way.
//! Pushes and pops work on the end node only, so they cost O(node size) whatever the length.

use std::collections::VecDeque;

use crate::listpack::Listpack;

/// Redis's per-element size estimate when deciding whether a node has room (it prefers to
/// overestimate).
const ELEMENT_OVERHEAD: usize = 8;

/// A node over this many bytes takes no more elements even under a count limit (Redis's
/// SIZE_SAFETY_LIMIT).
const SAFETY_LIMIT: usize = 8192;

/// How big one node may grow: `list-max-listpack-size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeLimit {
    /// Negative settings: at most this many bytes per node (-1 = 4 KB … -5 = 64 KB).
    Bytes(usize),
    /// Positive settings: at most this many elements per node (and at most 8 KB).
    Count(usize),
}

impl NodeLimit {
    /// The limit for a `list-max-listpack-size` value, clamped as Redis clamps it (below -5
    /// means -5; 0 means one element per node).
    pub fn from_config(fill: i64) -> NodeLimit {
        if fill < 0 {
            NodeLimit::Bytes(4096 << ((-fill).min(5) - 1))
        } else {
            NodeLimit::Count(fill.min(i64::from(u16::MAX)) as usize)
        }
    }

    /// Whether `node` may take one more element of `elem_len` bytes. An empty node always
    /// may: an element larger than a node gets a node of its own.
    fn allows_push(self, node: &Listpack, elem_len: usize) -> bool {
        if node.is_empty() {
            return true;
        }
        let new_size = node.bytes() + elem_len + ELEMENT_OVERHEAD;
        match self {
            NodeLimit::Bytes(max) => new_size <= max,
            NodeLimit::Count(max) => new_size <= SAFETY_LIMIT && node.len() < max,
        }
    }

    /// Whether `node` (after an edit) is within the limit. One element always fits.
    fn fits(self, node: &Listpack) -> bool {
        node.len() <= 1
            || match self {
                NodeLimit::Bytes(max) => node.bytes() <= max,
                NodeLimit::Count(max) => node.bytes() <= SAFETY_LIMIT && node.len() <= max,
            }
    }
}

/// A list, in one of two internal forms (both reported as Redis 7.0's `quicklist`).
#[derive(Clone, Debug)]
pub enum ListValue {
    /// One packed node: a list that fits in one node of the limit.
    Listpack(Listpack),
    /// Nodes of bounded size, so pushes and pops at either end touch one small node.
    Quicklist(Quicklist),
}

/// The nodes of a large list, with the total element count kept for O(1) LLEN.
#[derive(Clone, Debug, Default)]
pub struct Quicklist {
    nodes: VecDeque<Listpack>,
    len: usize,
}

impl Default for ListValue {
    fn default() -> ListValue {
        ListValue::Listpack(Listpack::new())
    }
}

impl ListValue {
    /// An empty list.
    pub fn new() -> ListValue {
        ListValue::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ListValue::Listpack(lp) => lp.len(),
            ListValue::Quicklist(q) => q.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis 7.0's OBJECT ENCODING name: every list is a quicklist there.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// True once the list has outgrown a single node (internal form, for tests and DEBUG).
    pub fn is_quicklist(&self) -> bool {
        matches!(self, ListValue::Quicklist(_))
    }

    /// Heap bytes owned (MEMORY USAGE, eviction).
    pub fn heap_bytes(&self) -> usize {
        match self {
            ListValue::Listpack(lp) => lp.heap_bytes(),
            ListValue::Quicklist(q) => {
                q.nodes.capacity() * std::mem::size_of::<Listpack>()
                    + q.nodes.iter().map(Listpack::heap_bytes).sum::<usize>()
            }
        }
    }

    /// The nodes in order (one for the single-listpack form): what RDB writes as a quicklist.
    pub fn nodes(&self) -> impl DoubleEndedIterator<Item = &Listpack> + Clone {
        let (a, b): (&[Listpack], &[Listpack]) = match self {
            ListValue::Listpack(lp) => (std::slice::from_ref(lp), &[]),
            ListValue::Quicklist(q) => q.nodes.as_slices(),
        };
        a.iter().chain(b.iter())
    }

    /// The elements from head to tail.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.nodes().flat_map(Listpack::iter)
    }

    /// The elements from tail to head (each node is walked forwards once and reversed, since
    /// a listpack only walks forwards).
    pub fn iter_rev(&self) -> impl Iterator<Item = &[u8]> {
        self.nodes()
            .rev()
            .flat_map(|n| n.iter().collect::<Vec<_>>().into_iter().rev())
    }

    /// (node number, index inside it) of element `index < len`, counting nodes from the
    /// nearer end.
    fn locate(&self, index: usize) -> (usize, usize) {
        let count = self.nodes().count();
        if index < self.len() / 2 {
            let mut left = index;
            for (i, n) in self.nodes().enumerate() {
                if left < n.len() {
                    return (i, left);
                }
                left -= n.len();
            }
        } else {
            let mut after = self.len() - index; // elements from `index` to the tail
            for (i, n) in self.nodes().rev().enumerate() {
                if after <= n.len() {
                    return (count - 1 - i, n.len() - after);
                }
                after -= n.len();
            }
        }
        unreachable!("list index {index} out of range")
    }

    /// The element at `index` (0-based from the head), if any.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        if index >= self.len() {
            return None;
        }
        let (node, at) = self.locate(index);
        self.nodes().nth(node).and_then(|n| n.get(at))
    }

    /// `count` elements from `start` (clamped to the list), head to tail.
    pub fn range(&self, start: usize, count: usize) -> impl Iterator<Item = &[u8]> {
        let (node, at) = if start < self.len() {
            self.locate(start)
        } else {
            (usize::MAX, 0)
        };
        self.nodes()
            .skip(node)
            .flat_map(Listpack::iter)
            .skip(at)
            .take(count)
    }

    /// Adds `elem` at the head (`front`) or the tail, starting a new end node when the end
    /// node is full.
    pub fn push(&mut self, front: bool, elem: &[u8], limit: NodeLimit) {
        if let ListValue::Listpack(lp) = self {
            if limit.allows_push(lp, elem.len()) {
                if front {
                    lp.push_front(elem);
                } else {
                    lp.push_back(elem);
                }
                return;
            }
            let lp = std::mem::take(lp);
            *self = ListValue::Quicklist(Quicklist {
                len: lp.len(),
                nodes: VecDeque::from([lp]),
            });
        }
        let ListValue::Quicklist(q) = self else {
            unreachable!("converted above")
        };
        q.len += 1;
        let end = if front {
            q.nodes.front_mut()
        } else {
            q.nodes.back_mut()
        };
        match end {
            Some(n) if limit.allows_push(n, elem.len()) => {
                if front {
                    n.push_front(elem)
                } else {
                    n.push_back(elem)
                }
            }
            _ => {
                let n: Listpack = std::iter::once(elem).collect();
                if front {
                    q.nodes.push_front(n);
                } else {
                    q.nodes.push_back(n);
                }
            }
        }
    }

    /// Removes and returns the head (`front`) or tail element.
    pub fn pop(&mut self, front: bool) -> Option<Vec<u8>> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let at = if front { 0 } else { len - 1 };
        let elem = self.get(at)?.to_vec();
        self.remove_range(at, 1);
        Some(elem)
    }

    /// Runs `f` over the nodes as a deque (the single listpack becomes a one-node deque for
    /// the call), then keeps the result in the smallest form that fits: a list that needed
    /// no more than one node stays a plain listpack.
    fn edit<R>(&mut self, f: impl FnOnce(&mut VecDeque<Listpack>) -> R) -> R {
        match self {
            ListValue::Quicklist(q) => {
                let r = f(&mut q.nodes);
                q.nodes.retain(|n| !n.is_empty());
                q.len = q.nodes.iter().map(Listpack::len).sum();
                r
            }
            ListValue::Listpack(lp) => {
                let mut nodes = VecDeque::from([std::mem::take(lp)]);
                let r = f(&mut nodes);
                nodes.retain(|n| !n.is_empty());
                match nodes.len() {
                    0 => {}
                    1 => *lp = nodes.pop_front().unwrap_or_default(),
                    _ => {
                        let len = nodes.iter().map(Listpack::len).sum();
                        *self = ListValue::Quicklist(Quicklist { nodes, len });
                    }
                }
                r
            }
        }
    }

    /// Splits node `i` into halves until every piece fits the limit.
    fn split_to_fit(nodes: &mut VecDeque<Listpack>, i: usize, limit: NodeLimit) {
        if limit.fits(&nodes[i]) {
            return;
        }
        let len = nodes[i].len();
        let half = len / 2;
        let right: Listpack = nodes[i].iter().skip(half).collect();
        nodes[i].remove_range(half, len - half);
        nodes.insert(i + 1, right);
        Self::split_to_fit(nodes, i + 1, limit);
        Self::split_to_fit(nodes, i, limit);
    }

    /// Inserts `elem` before position `index` (`index == len` appends). Panics if
    /// `index > len`.
    pub fn insert(&mut self, index: usize, elem: &[u8], limit: NodeLimit) {
        let len = self.len();
        assert!(index <= len, "list insert out of range");
        if index == 0 || index == len {
            return self.push(index == 0, elem, limit);
        }
        let (node, at) = self.locate(index);
        self.edit(|nodes| {
            nodes[node].insert(at, elem);
            Self::split_to_fit(nodes, node, limit);
        });
    }

    /// Replaces the element at `index`. Returns false if `index` is out of range.
    pub fn set(&mut self, index: usize, elem: &[u8], limit: NodeLimit) -> bool {
        if index >= self.len() {
            return false;
        }
        let (node, at) = self.locate(index);
        self.edit(|nodes| {
            nodes[node].set(at, elem);
            Self::split_to_fit(nodes, node, limit);
        });
        true
    }

    /// Removes `count` elements from `start` (clamped to the list). Works node by node in
    /// place, so removing at either end (the pops) costs one end node, not the whole list.
    pub fn remove_range(&mut self, start: usize, count: usize) {
        let len = self.len();
        if start >= len || count == 0 {
            return;
        }
        let count = count.min(len - start);
        let (mut i, mut at) = self.locate(start);
        match self {
            ListValue::Listpack(lp) => lp.remove_range(start, count),
            ListValue::Quicklist(q) => {
                let mut left = count;
                while left > 0 {
                    let n = &mut q.nodes[i];
                    let k = left.min(n.len() - at);
                    n.remove_range(at, k);
                    left -= k;
                    at = 0;
                    if n.is_empty() {
                        q.nodes.remove(i);
                    } else {
                        i += 1;
                    }
                }
                q.len -= count;
            }
        }
    }

    /// Removes elements equal to `elem`: up to `max` of them (0 = all), scanning from the
    /// head, or from the tail when `from_tail`. Returns how many were removed.
    pub fn remove_matching(&mut self, elem: &[u8], max: usize, from_tail: bool) -> usize {
        let mut left = if max == 0 { usize::MAX } else { max };
        self.edit(|nodes| {
            let mut removed = 0;
            let order: Vec<usize> = if from_tail {
                (0..nodes.len()).rev().collect()
            } else {
                (0..nodes.len()).collect()
            };
            for i in order {
                if left == 0 {
                    break;
                }
                let n = &mut nodes[i];
                let matches = n.iter().filter(|e| *e == elem).count();
                if matches == 0 {
                    continue;
                }
                let take = matches.min(left);
                // From the tail, the last `take` matches of this node go: skip the others.
                let mut skip = if from_tail { matches - take } else { 0 };
                let mut drop = take;
                *n = n
                    .iter()
                    .filter(|e| {
                        if *e != elem || drop == 0 {
                            return true;
                        }
                        if skip > 0 {
                            skip -= 1;
                            return true;
                        }
                        drop -= 1;
                        false
                    })
                    .collect();
                left -= take;
                removed += take;
            }
            removed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limits_follow_redis() {
        assert_eq!(NodeLimit::from_config(-1), NodeLimit::Bytes(4096));
        assert_eq!(NodeLimit::from_config(-2), NodeLimit::Bytes(8192));
        assert_eq!(NodeLimit::from_config(-5), NodeLimit::Bytes(65536));
        assert_eq!(NodeLimit::from_config(-100), NodeLimit::Bytes(65536));
        assert_eq!(NodeLimit::from_config(4), NodeLimit::Count(4));
    }

    #[test]
    fn converts_past_one_node() {
        let limit = NodeLimit::Count(3);
        let mut l = ListValue::new();
        for e in [b"a", b"b", b"c"] {
            l.push(false, e, limit);
        }
        assert!(!l.is_quicklist());
        l.push(true, b"z", limit);
        assert!(l.is_quicklist());
        assert_eq!(l.nodes().count(), 2);
        assert_eq!(l.iter().collect::<Vec<_>>(), [b"z", b"a", b"b", b"c"]);
        assert_eq!(l.encoding(), "quicklist");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(bool, Vec<u8>),
        Pop(bool),
        Insert(usize, Vec<u8>),
        Set(usize, Vec<u8>),
        Remove(usize, usize),
        RemoveMatching(Vec<u8>, usize, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        // A small alphabet so that LREM finds matches.
        let bytes = prop_oneof![
            prop::collection::vec(b'a'..b'd', 0..3),
            prop::collection::vec(any::<u8>(), 0..40),
        ];
        prop_oneof![
            4 => (any::<bool>(), bytes.clone()).prop_map(|(f, b)| Op::Push(f, b)),
            2 => any::<bool>().prop_map(Op::Pop),
            2 => (any::<usize>(), bytes.clone()).prop_map(|(i, b)| Op::Insert(i, b)),
            1 => (any::<usize>(), bytes.clone()).prop_map(|(i, b)| Op::Set(i, b)),
            1 => (any::<usize>(), 0usize..6).prop_map(|(i, n)| Op::Remove(i, n)),
            1 => (bytes, 0usize..3, any::<bool>())
                .prop_map(|(b, n, t)| Op::RemoveMatching(b, n, t)),
        ]
    }

    fn limit() -> impl Strategy<Value = NodeLimit> {
        prop_oneof![
            (0usize..5).prop_map(NodeLimit::Count),
            (1usize..3).prop_map(|k| NodeLimit::Bytes(k * 16)),
            Just(NodeLimit::from_config(-2)),
        ]
    }

    /// Applies LREM semantics to the model.
    fn model_remove(model: &mut VecDeque<Vec<u8>>, elem: &[u8], max: usize, tail: bool) {
        let mut left = if max == 0 { usize::MAX } else { max };
        let idx: Vec<usize> = if tail {
            (0..model.len()).rev().collect()
        } else {
            (0..model.len()).collect()
        };
        let mut gone = Vec::new();
        for i in idx {
            if left > 0 && model[i] == elem {
                gone.push(i);
                left -= 1;
            }
        }
        gone.sort_unstable();
        for i in gone.into_iter().rev() {
            model.remove(i);
        }
    }

    proptest! {
        /// Whatever the node limit (tiny ones force many nodes), the list answers exactly
        /// like a deque of byte strings.
        #[test]
        fn matches_a_deque(limit in limit(), ops in prop::collection::vec(op(), 0..120)) {
            let mut l = ListValue::new();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(front, b) => {
                        l.push(front, &b, limit);
                        if front { model.push_front(b) } else { model.push_back(b) }
                    }
                    Op::Pop(front) => {
                        let want = if front { model.pop_front() } else { model.pop_back() };
                        prop_assert_eq!(l.pop(front), want);
                    }
                    Op::Insert(i, b) => {
                        let i = i % (model.len() + 1);
                        l.insert(i, &b, limit);
                        model.insert(i, b);
                    }
                    Op::Set(i, b) => {
                        let ok = !model.is_empty();
                        let i = if ok { i % model.len() } else { i };
                        prop_assert_eq!(l.set(i, &b, limit), ok);
                        if ok { model[i] = b; }
                    }
                    Op::Remove(i, n) => {
                        let i = i % (model.len() + 1);
                        l.remove_range(i, n);
                        let n = n.min(model.len() - i);
                        model.drain(i..i + n);
                    }
                    Op::RemoveMatching(b, n, tail) => {
                        let before = model.len();
                        model_remove(&mut model, &b, n, tail);
                        prop_assert_eq!(l.remove_matching(&b, n, tail), before - model.len());
                    }
                }
                prop_assert_eq!(l.len(), model.len());
                prop_assert!(l.iter().eq(model.iter().map(Vec::as_slice)));
                prop_assert!(l.iter_rev().eq(model.iter().rev().map(Vec::as_slice)));
                prop_assert!(l.is_empty() || l.nodes().all(|n| !n.is_empty() && limit.fits(n)));
                for (i, want) in model.iter().enumerate() {
                    prop_assert_eq!(l.get(i), Some(want.as_slice()));
                }
                prop_assert_eq!(l.get(model.len()), None);
                let (s, c) = (model.len() / 3, model.len() / 2 + 1);
                prop_assert!(l.range(s, c).eq(model.iter().skip(s).take(c).map(Vec::as_slice)));
            }
        }
    }
}
