//! A compact sequence of byte strings in one exact-size allocation: Redis's listpack idea.
//!
//! Small hashes, lists, sets and sorted sets keep their elements here instead of one heap
//! node per element, which is what makes a 10-field hash cost a few hundred bytes rather than
//! a kilobyte. Each element is a LEB128 varint length followed by its bytes; operations scan
//! linearly, which is fast for the small sizes the `*-max-listpack-*` thresholds allow.
//! Like Redis's listpack, every insert or delete reallocates to the exact size: memory over
//! speed, because a collection past the thresholds converts to its full encoding anyway.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};

/// The packed elements: one thin pointer (8 bytes, `None` when empty) to an 8-aligned
/// allocation `[data bytes u32][element count u32][data]`.
///
/// Why `unsafe`: the pointer is thin so that a collection holding a listpack stays one word
/// (a small hash is reached from its key's entry through this pointer alone, see
/// [`crate::hash_value`]); `Box<[u8]>` plus a count would be 24 bytes. The allocation is
/// handled only by [`Listpack::resize`], [`Clone`] and [`Drop`] below; everything else goes
/// through the safe [`Listpack::data`] / [`Listpack::data_mut`] slices.
#[derive(Default)]
pub struct Listpack {
    ptr: Option<NonNull<u8>>,
}

/// Header: data length and element count, both u32.
const HDR: usize = 8;

// SAFETY: a `Listpack` owns its allocation exclusively, like a `Box<[u8]>`; `&Listpack`
// gives out only shared slices, `&mut Listpack` only unique ones.
unsafe impl Send for Listpack {}
// SAFETY: see `Send`; there is no interior mutability.
unsafe impl Sync for Listpack {}

fn layout(data_len: usize) -> Layout {
    Layout::from_size_align(HDR + data_len, 8).expect("listpack size overflows")
}

impl Clone for Listpack {
    fn clone(&self) -> Listpack {
        let mut c = Listpack::new();
        c.resize(self.bytes());
        c.data_mut().copy_from_slice(self.data());
        c.set_count(self.len());
        c
    }
}

impl PartialEq for Listpack {
    fn eq(&self, other: &Listpack) -> bool {
        self.data() == other.data()
    }
}

impl Eq for Listpack {}

impl std::fmt::Debug for Listpack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl Drop for Listpack {
    fn drop(&mut self) {
        self.resize(0);
    }
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

    /// The header field at byte offset `at` (0: data length, 4: count); 0 when empty.
    #[inline]
    fn header(&self, at: usize) -> u32 {
        match self.ptr {
            // SAFETY: a live allocation starts with two aligned, initialized u32s.
            Some(p) => unsafe { p.as_ptr().add(at).cast::<u32>().read() },
            None => 0,
        }
    }

    /// Sets the element count (the caller keeps it in step with the data).
    fn set_count(&mut self, n: usize) {
        let n = u32::try_from(n).expect("listpack holds more than 2^32 elements");
        if let Some(p) = self.ptr {
            // SAFETY: as in `header`; `&mut self` means nothing borrows the header.
            unsafe { p.as_ptr().add(4).cast::<u32>().write(n) }
        }
    }

    /// The packed data.
    #[inline]
    fn data(&self) -> &[u8] {
        match self.ptr {
            // SAFETY: a live allocation holds `header(0)` initialized data bytes after the
            // header (`resize` initializes every byte it adds); the slice borrows `self`.
            Some(p) => unsafe {
                std::slice::from_raw_parts(p.as_ptr().add(HDR), self.header(0) as usize)
            },
            None => &[],
        }
    }

    /// The packed data, mutably.
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let len = self.header(0) as usize;
        match self.ptr {
            // SAFETY: as in `data`, uniquely borrowed through `&mut self`.
            Some(p) => unsafe { std::slice::from_raw_parts_mut(p.as_ptr().add(HDR), len) },
            None => &mut [],
        }
    }

    /// Resizes the data to `new_len` bytes, keeping the first `min(old, new)` bytes and
    /// zeroing any added ones; 0 frees the allocation (the count must then be 0 too).
    ///
    /// One `realloc`: jemalloc grows or shrinks within a size class without moving.
    fn resize(&mut self, new_len: usize) {
        let old_len = self.bytes();
        if new_len == old_len {
            return;
        }
        let stored = u32::try_from(new_len).expect("listpack larger than 4 GiB");
        let count = self.header(4);
        let new_layout = layout(new_len);
        let raw = match (self.ptr.take(), new_len) {
            (None, _) => {
                // SAFETY: the layout has a non-zero size (at least HDR).
                unsafe { alloc::alloc(new_layout) }
            }
            (Some(p), 0) => {
                // SAFETY: `p` was allocated by this type with `layout(old_len)`; `self.ptr`
                // is already `None`, so nothing can use it afterwards.
                unsafe { alloc::dealloc(p.as_ptr(), layout(old_len)) };
                return;
            }
            (Some(p), _) => {
                // SAFETY: `p` was allocated with `layout(old_len)` (same alignment), the
                // new size is non-zero and did not overflow (`layout` checked it). On
                // failure `p` stays valid; we abort below rather than leak-and-continue.
                unsafe { alloc::realloc(p.as_ptr(), layout(old_len), new_layout.size()) }
            }
        };
        let Some(p) = NonNull::new(raw) else {
            alloc::handle_alloc_error(new_layout)
        };
        // SAFETY: `p` is valid for `HDR + new_len` bytes and 8-aligned; the first
        // `min(old_len, new_len)` data bytes were kept by `realloc`, the rest are zeroed
        // here, so all `new_len` data bytes are initialized.
        unsafe {
            let base = p.as_ptr();
            base.cast::<u32>().write(stored);
            base.add(4).cast::<u32>().write(count);
            if new_len > old_len {
                ptr::write_bytes(base.add(HDR + old_len), 0, new_len - old_len);
            }
        }
        self.ptr = Some(p);
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.header(4) as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ptr.is_none()
    }

    /// Bytes of the packed representation (for the conversion thresholds).
    #[inline]
    pub fn bytes(&self) -> usize {
        self.header(0) as usize
    }

    /// Heap bytes of the allocation, header included (MEMORY USAGE); 0 when empty.
    pub fn heap_bytes(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            HDR + self.bytes()
        }
    }

    /// The elements in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            data: self.data(),
            pos: 0,
            left: self.len(),
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
        let data = self.data();
        let mut pos = 0;
        for _ in 0..index {
            pos = read_at(data, pos).1;
        }
        pos
    }

    /// Replaces the byte range `start..end` of the packed data with the encoded `elems`,
    /// then sets the element count to `count`.
    ///
    /// Works in place on the allocation: one `realloc` (usually without moving) and one
    /// `memmove` of the tail, so a push onto a node of a long list costs no full copy.
    fn splice(&mut self, start: usize, end: usize, elems: &[&[u8]], count: usize) {
        let added: usize = elems.iter().map(|e| varint_len(e.len()) + e.len()).sum();
        let removed = end - start;
        let old_len = self.bytes();
        if added > removed {
            self.resize(old_len + added - removed);
            self.data_mut().copy_within(end..old_len, start + added);
        } else if added < removed {
            self.data_mut().copy_within(end..old_len, start + added);
            self.resize(old_len - (removed - added));
        }
        let v = self.data_mut();
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
        self.set_count(count);
    }

    /// Inserts `elem` before position `index` (`index == len` appends).
    ///
    /// Panics if `index > len`.
    pub fn insert(&mut self, index: usize, elem: &[u8]) {
        assert!(index <= self.len(), "listpack insert out of range");
        let at = self.offset(index);
        self.splice(at, at, &[elem], self.len() + 1);
    }

    /// Appends `elem`.
    pub fn push_back(&mut self, elem: &[u8]) {
        let end = self.bytes();
        self.splice(end, end, &[elem], self.len() + 1);
    }

    /// Appends every element of `elems` (one reallocation for all).
    pub fn extend_back(&mut self, elems: &[&[u8]]) {
        let end = self.bytes();
        self.splice(end, end, elems, self.len() + elems.len());
    }

    /// Prepends `elem`.
    pub fn push_front(&mut self, elem: &[u8]) {
        self.splice(0, 0, &[elem], self.len() + 1);
    }

    /// Replaces the element at `index`. Panics if out of range.
    pub fn set(&mut self, index: usize, elem: &[u8]) {
        assert!(index < self.len(), "listpack set out of range");
        let start = self.offset(index);
        let end = read_at(self.data(), start).1;
        self.splice(start, end, &[elem], self.len());
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
            end = read_at(self.data(), end).1;
        }
        self.splice(start, end, &[], self.len() - count);
    }

    /// Removes the element at `index`. Panics if out of range.
    pub fn remove(&mut self, index: usize) {
        self.remove_range(index, 1);
    }
}

impl<A: AsRef<[u8]>> FromIterator<A> for Listpack {
    fn from_iter<I: IntoIterator<Item = A>>(it: I) -> Listpack {
        let mut v = Vec::new();
        let mut len = 0usize;
        for e in it {
            let e = e.as_ref();
            write_varint(e.len(), &mut v);
            v.extend_from_slice(e);
            len += 1;
        }
        let mut lp = Listpack::new();
        lp.resize(v.len());
        lp.data_mut().copy_from_slice(&v);
        lp.set_count(len);
        lp
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
        assert_eq!((lp.bytes(), lp.heap_bytes()), (0, 0));
        assert_eq!(std::mem::size_of::<Listpack>(), 8);
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
