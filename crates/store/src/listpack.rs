//! A compact sequence of byte strings in one exact-size allocation: Redis's listpack idea.
//!
//! Small hashes, lists, sets and sorted sets keep their elements here instead of one heap
//! node per element, which is what makes a 10-field hash cost a few hundred bytes rather than
//! a kilobyte. Each element is a LEB128 varint length followed by its bytes; operations scan
//! linearly, which is fast for the small sizes the `*-max-listpack-*` thresholds allow.
//! Like Redis's listpack, every insert or delete reallocates to the exact size: memory over
//! speed, because a collection past the thresholds converts to its full encoding anyway.

/// The packed elements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listpack {
    data: Box<[u8]>,
    len: u32,
}

fn varint_len(mut n: usize) -> usize {
    let mut bytes = 1;
    while n >= 0x80 {
        n >>= 7;
        bytes += 1;
    }
    bytes
}

fn write_varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads the element starting at `pos`: (its bytes, the position after it).
fn read_at(data: &[u8], pos: usize) -> (&[u8], usize) {
    let mut n = 0usize;
    let mut shift = 0;
    let mut p = pos;
    loop {
        let b = data[p];
        p += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (&data[p..p + n], p + n)
}

impl Listpack {
    /// An empty listpack (no allocation).
    pub fn new() -> Listpack {
        Listpack::default()
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the packed representation (for MEMORY USAGE and the conversion thresholds).
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The elements in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            data: &self.data,
            pos: 0,
            left: self.len as usize,
        }
    }

    /// The element at `index` (O(n) scan).
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.iter().nth(index)
    }

    /// The index of the first element equal to `elem`.
    pub fn position(&self, elem: &[u8]) -> Option<usize> {
        self.iter().position(|e| e == elem)
    }

    /// Byte offset of element `index` (`index == len` gives the end).
    fn offset(&self, index: usize) -> usize {
        let mut pos = 0;
        for _ in 0..index {
            pos = read_at(&self.data, pos).1;
        }
        pos
    }

    /// Replaces the byte range `start..end` of the packed data with the encoded `elems`.
    ///
    /// Works in place on the allocation: growing goes through `realloc`, which jemalloc
    /// usually satisfies without moving (same size class), and the tail is shifted with one
    /// `memmove`. A push onto a node of a long list therefore costs no fresh allocation and
    /// no full copy.
    fn splice(&mut self, start: usize, end: usize, elems: &[&[u8]]) {
        let added: usize = elems.iter().map(|e| varint_len(e.len()) + e.len()).sum();
        let removed = end - start;
        let mut v = std::mem::take(&mut self.data).into_vec();
        let old_len = v.len();
        if added > removed {
            let grow = added - removed;
            v.reserve_exact(grow);
            v.resize(old_len + grow, 0);
            v.copy_within(end..old_len, end + grow);
        } else if added < removed {
            v.copy_within(end..old_len, start + added);
            v.truncate(old_len - (removed - added));
        }
        let mut pos = start;
        for e in elems {
            let mut n = e.len();
            while n >= 0x80 {
                v[pos] = (n as u8) | 0x80;
                n >>= 7;
                pos += 1;
            }
            v[pos] = n as u8;
            pos += 1;
            v[pos..pos + e.len()].copy_from_slice(e);
            pos += e.len();
        }
        self.data = v.into_boxed_slice();
    }

    /// Inserts `elem` before position `index` (`index == len` appends).
    ///
    /// Panics if `index > len`.
    pub fn insert(&mut self, index: usize, elem: &[u8]) {
        assert!(index <= self.len(), "listpack insert out of range");
        let at = self.offset(index);
        self.splice(at, at, &[elem]);
        self.len += 1;
    }

    /// Appends `elem`.
    pub fn push_back(&mut self, elem: &[u8]) {
        let end = self.data.len();
        self.splice(end, end, &[elem]);
        self.len += 1;
    }

    /// Prepends `elem`.
    pub fn push_front(&mut self, elem: &[u8]) {
        self.splice(0, 0, &[elem]);
        self.len += 1;
    }

    /// Replaces the element at `index`. Panics if out of range.
    pub fn set(&mut self, index: usize, elem: &[u8]) {
        assert!(index < self.len(), "listpack set out of range");
        let start = self.offset(index);
        let end = read_at(&self.data, start).1;
        self.splice(start, end, &[elem]);
    }

    /// Removes `count` elements starting at `index`. Panics if the range is out of bounds.
    pub fn remove_range(&mut self, index: usize, count: usize) {
        assert!(index + count <= self.len(), "listpack remove out of range");
        if count == 0 {
            return;
        }
        let start = self.offset(index);
        let mut end = start;
        for _ in 0..count {
            end = read_at(&self.data, end).1;
        }
        self.splice(start, end, &[]);
        self.len -= count as u32;
    }

    /// Removes the element at `index`. Panics if out of range.
    pub fn remove(&mut self, index: usize) {
        self.remove_range(index, 1);
    }
}

impl<A: AsRef<[u8]>> FromIterator<A> for Listpack {
    fn from_iter<I: IntoIterator<Item = A>>(it: I) -> Listpack {
        let mut v = Vec::new();
        let mut len = 0u32;
        for e in it {
            let e = e.as_ref();
            write_varint(e.len(), &mut v);
            v.extend_from_slice(e);
            len += 1;
        }
        Listpack {
            data: v.into_boxed_slice(),
            len,
        }
    }
}

/// Iterator over a listpack's elements.
pub struct Iter<'a> {
    data: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let (e, next) = read_at(self.data, self.pos);
        self.pos = next;
        self.left -= 1;
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Listpack {
    type Item = &'a [u8];
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn basic_operations() {
        let mut lp = Listpack::new();
        assert!(lp.is_empty());
        lp.push_back(b"b");
        lp.push_front(b"a");
        lp.push_back(&[b'x'; 300]);
        lp.insert(2, b"c");
        assert_eq!(lp.len(), 4);
        assert_eq!(lp.get(0), Some(&b"a"[..]));
        assert_eq!(lp.get(2), Some(&b"c"[..]));
        assert_eq!(lp.get(3).map(<[u8]>::len), Some(300));
        assert_eq!(lp.position(b"c"), Some(2));
        lp.set(1, b"");
        assert_eq!(lp.get(1), Some(&b""[..]));
        lp.remove(0);
        assert_eq!(lp.iter().collect::<Vec<_>>()[..2], [&b""[..], &b"c"[..]]);
        lp.remove_range(0, 3);
        assert!(lp.is_empty());
        assert_eq!(lp.bytes(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, Vec<u8>),
        Set(usize, Vec<u8>),
        Remove(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let bytes = prop::collection::vec(any::<u8>(), 0..200);
        prop_oneof![
            (any::<usize>(), bytes.clone()).prop_map(|(i, b)| Op::Insert(i, b)),
            (any::<usize>(), bytes).prop_map(|(i, b)| Op::Set(i, b)),
            (any::<usize>(), 0usize..4).prop_map(|(i, n)| Op::Remove(i, n)),
        ]
    }

    proptest! {
        /// The packed form behaves exactly like a Vec of byte strings.
        #[test]
        fn matches_a_vec(ops in prop::collection::vec(op(), 0..80)) {
            let mut lp = Listpack::new();
            let mut model: Vec<Vec<u8>> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(i, b) => {
                        let i = i % (model.len() + 1);
                        lp.insert(i, &b);
                        model.insert(i, b);
                    }
                    Op::Set(i, b) if !model.is_empty() => {
                        let i = i % model.len();
                        lp.set(i, &b);
                        model[i] = b;
                    }
                    Op::Remove(i, n) if !model.is_empty() => {
                        let i = i % model.len();
                        let n = n.min(model.len() - i);
                        lp.remove_range(i, n);
                        model.drain(i..i + n);
                    }
                    _ => {}
                }
                prop_assert_eq!(lp.len(), model.len());
                prop_assert!(lp.iter().eq(model.iter().map(Vec::as_slice)));
            }
            let rebuilt: Listpack = model.iter().collect();
            prop_assert_eq!(rebuilt, lp);
        }
    }
}
