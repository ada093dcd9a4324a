//! The value a key holds, by type and encoding.

use crate::bloom::BloomValue;
use crate::cache_value::CacheValue;
use crate::entry::Kind;
use crate::hash_value::HashValue;
use crate::list_value::ListValue;
use crate::set_value::SetValue;
use crate::stream_value::StreamValue;
use crate::zset_value::ZSetValue;

/// A key's value. Strings set whole live inline in the entry (see [`crate::entry`]); the other
/// variants own their data behind one pointer so that the entry stays small.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string whose bytes follow the key in the entry's own allocation.
    InlineStr,
    /// A string edited in place (APPEND, SETRANGE, SETBIT…), with spare capacity so repeated
    /// edits are amortized O(1). OBJECT ENCODING reports it as `raw`.
    RawStr(Box<Vec<u8>>),
    Hash(Box<HashValue>),
    List(Box<ListValue>),
    Set(Box<SetValue>),
    ZSet(Box<ZSetValue>),
    Stream(Box<StreamValue>),
    /// A Bloom filter (BF.*), RedisBloom's `MBbloom--` type.
    Bloom(Box<BloomValue>),
    /// A cache entry with refresh leases (CACHE.*).
    Cache(Box<CacheValue>),
}

impl Value {
    /// The Redis type of this value.
    #[inline]
    pub fn kind(&self) -> Kind {
        match self {
            Value::InlineStr | Value::RawStr(_) => Kind::String,
            Value::Hash(_) => Kind::Hash,
            Value::List(_) => Kind::List,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
            Value::Stream(_) => Kind::Stream,
            Value::Bloom(_) => Kind::Bloom,
            Value::Cache(_) => Kind::Cache,
        }
    }

    /// Heap bytes owned by the value (not counting inline strings, which the entry counts).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::InlineStr => 0,
            Value::RawStr(v) => std::mem::size_of::<Vec<u8>>() + v.capacity(),
            Value::Hash(h) => std::mem::size_of::<HashValue>() + h.heap_bytes(),
            Value::List(l) => std::mem::size_of::<ListValue>() + l.heap_bytes(),
            Value::Set(s) => std::mem::size_of::<SetValue>() + s.heap_bytes(),
            Value::ZSet(z) => std::mem::size_of::<ZSetValue>() + z.heap_bytes(),
            Value::Stream(s) => std::mem::size_of::<StreamValue>() + s.heap_bytes(),
            Value::Bloom(b) => std::mem::size_of::<BloomValue>() + b.heap_bytes(),
            Value::Cache(c) => std::mem::size_of::<CacheValue>() + c.heap_bytes(),
        }
    }
}
