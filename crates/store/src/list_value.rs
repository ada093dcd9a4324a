//! List values: one listpack while small, a quicklist (a deque of listpack nodes) past
//! `list-max-listpack-size`.

use std::collections::VecDeque;

use crate::listpack::Listpack;

/// A list, in one of Redis's two encodings.
#[derive(Clone, Debug)]
pub enum ListValue {
    /// OBJECT ENCODING `listpack`.
    Listpack(Listpack),
    /// OBJECT ENCODING `quicklist`: nodes of bounded size, so pushes and pops at either end
    /// touch one small node.
    Quicklist(VecDeque<Listpack>),
}

impl ListValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ListValue::Listpack(lp) => lp.len(),
            ListValue::Quicklist(nodes) => nodes.iter().map(Listpack::len).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            ListValue::Listpack(_) => "listpack",
            ListValue::Quicklist(_) => "quicklist",
        }
    }

    /// Heap bytes owned (MEMORY USAGE, eviction).
    pub fn heap_bytes(&self) -> usize {
        match self {
            ListValue::Listpack(lp) => lp.bytes(),
            ListValue::Quicklist(nodes) => {
                nodes.capacity() * std::mem::size_of::<Listpack>()
                    + nodes.iter().map(Listpack::bytes).sum::<usize>()
            }
        }
    }
}
