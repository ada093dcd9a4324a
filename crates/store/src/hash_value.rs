//! Hash values: a listpack of alternating fields and values while small, a dict past
//! `hash-max-listpack-entries` / `hash-max-listpack-value`.

use crate::dict::{Dict, DictItem};
use crate::listpack::Listpack;

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

/// A hash, in one of Redis's two encodings.
#[derive(Clone, Debug)]
pub enum HashValue {
    /// field1, value1, field2, value2… (OBJECT ENCODING `listpack`).
    Listpack(Listpack),
    /// OBJECT ENCODING `hashtable`.
    Table(Dict<HashField>),
}

impl HashValue {
    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            HashValue::Listpack(lp) => lp.len() / 2,
            HashValue::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Redis's OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self {
            HashValue::Listpack(_) => "listpack",
            HashValue::Table(_) => "hashtable",
        }
    }

    /// Heap bytes owned (MEMORY USAGE, eviction).
    pub fn heap_bytes(&self) -> usize {
        match self {
            HashValue::Listpack(lp) => lp.bytes(),
            HashValue::Table(d) => {
                d.mem_bytes()
                    + d.iter()
                        .map(|f| f.field.len() + f.value.len())
                        .sum::<usize>()
            }
        }
    }
}
