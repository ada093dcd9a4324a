//! The value a key holds, by type and encoding.
//!
//! [`Value`] is the owned form (building a key, RDB loading, moving a value). Inside a key's
//! entry the variant is kept as a 3-bit code in the entry's header and its payload as one
//! word (each payload is a single pointer), so an entry holding a collection spends 8 bytes
//! on it, not 16; reads and writes go through the borrowed views [`ValueRef`] and
//! [`ValueMut`].

use crate::bloom::BloomValue;
use crate::cache_value::CacheValue;
use crate::entry::Kind;
use crate::hash_value::HashValue;
use crate::list_value::ListValue;
use crate::set_value::SetValue;
use crate::stream_value::StreamValue;
use crate::zset_value::ZSetValue;
use std::mem::size_of;

/// A key's value. Strings set whole live inline in the entry (see [`crate::entry`]); the other
/// variants own their data behind one pointer so that the entry stays small.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string whose bytes follow the key in the entry's own allocation.
    InlineStr,
    /// A string edited in place (APPEND, SETRANGE, SETBIT…), with spare capacity so repeated
    /// edits are amortized O(1). OBJECT ENCODING reports it as `raw`.
    RawStr(Box<Vec<u8>>),
    /// Already one word: a small hash is its listpack pointer (see [`HashValue`]).
    Hash(HashValue),
    List(Box<ListValue>),
    Set(Box<SetValue>),
    ZSet(Box<ZSetValue>),
    Stream(Box<StreamValue>),
    /// A Bloom filter (BF.*), RedisBloom's `MBbloom--` type.
    Bloom(Box<BloomValue>),
    /// A cache entry with refresh leases (CACHE.*).
    Cache(Box<CacheValue>),
}

/// A stored value, borrowed from its entry.
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    /// A string stored inline: read it with [`crate::Entry::string`].
    InlineStr,
    RawStr(&'a Vec<u8>),
    Hash(&'a HashValue),
    List(&'a ListValue),
    Set(&'a SetValue),
    ZSet(&'a ZSetValue),
    Stream(&'a StreamValue),
    Bloom(&'a BloomValue),
    Cache(&'a CacheValue),
}

/// A stored value (not an inline string), mutably borrowed from its entry.
#[derive(Debug)]
pub enum ValueMut<'a> {
    RawStr(&'a mut Vec<u8>),
    Hash(&'a mut HashValue),
    List(&'a mut ListValue),
    Set(&'a mut SetValue),
    ZSet(&'a mut ZSetValue),
    Stream(&'a mut StreamValue),
    Bloom(&'a mut BloomValue),
    Cache(&'a mut CacheValue),
}

// Every payload is one 8-aligned word, so an entry's value slot is 8 bytes.
const _: () = assert!(size_of::<HashValue>() == 8 && std::mem::align_of::<HashValue>() <= 8);
const _: () = assert!(size_of::<Box<ListValue>>() == 8);

/// The 3-bit codes of the non-inline variants, as an entry stores them.
pub(crate) mod code {
    pub const RAW_STR: u32 = 0;
    pub const HASH: u32 = 1;
    pub const LIST: u32 = 2;
    pub const SET: u32 = 3;
    pub const ZSET: u32 = 4;
    pub const STREAM: u32 = 5;
    pub const BLOOM: u32 = 6;
    pub const CACHE: u32 = 7;
}

/// The type of the variant with entry code `c`.
#[inline]
pub(crate) fn kind_of_code(c: u32) -> Kind {
    match c {
        code::RAW_STR => Kind::String,
        code::HASH => Kind::Hash,
        code::LIST => Kind::List,
        code::SET => Kind::Set,
        code::ZSET => Kind::ZSet,
        code::STREAM => Kind::Stream,
        code::BLOOM => Kind::Bloom,
        _ => Kind::Cache,
    }
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

    /// The entry code of a non-inline variant.
    pub(crate) fn code(&self) -> u32 {
        match self {
            Value::InlineStr => unreachable!("inline strings have no slot"),
            Value::RawStr(_) => code::RAW_STR,
            Value::Hash(_) => code::HASH,
            Value::List(_) => code::LIST,
            Value::Set(_) => code::SET,
            Value::ZSet(_) => code::ZSET,
            Value::Stream(_) => code::STREAM,
            Value::Bloom(_) => code::BLOOM,
            Value::Cache(_) => code::CACHE,
        }
    }

    /// Moves the payload into the 8-byte `slot` and returns the variant's code. Panics
    /// (before writing anything) for [`Value::InlineStr`], which has no payload.
    ///
    /// # Safety
    /// `slot` must be valid for an 8-byte write and 8-aligned; whatever it held is
    /// overwritten without being dropped.
    pub(crate) unsafe fn write_to(self, slot: *mut u8) -> u32 {
        let c = self.code();
        // SAFETY (all arms): the caller guarantees an aligned, writable 8-byte slot, and each
        // payload is one word of alignment at most 8 (checked above).
        unsafe {
            match self {
                Value::InlineStr => {}
                Value::RawStr(b) => slot.cast::<Box<Vec<u8>>>().write(b),
                Value::Hash(h) => slot.cast::<HashValue>().write(h),
                Value::List(b) => slot.cast::<Box<ListValue>>().write(b),
                Value::Set(b) => slot.cast::<Box<SetValue>>().write(b),
                Value::ZSet(b) => slot.cast::<Box<ZSetValue>>().write(b),
                Value::Stream(b) => slot.cast::<Box<StreamValue>>().write(b),
                Value::Bloom(b) => slot.cast::<Box<BloomValue>>().write(b),
                Value::Cache(b) => slot.cast::<Box<CacheValue>>().write(b),
            }
        }
        c
    }

    /// Moves the payload out of `slot`.
    ///
    /// # Safety
    /// `slot` must hold a live payload written by [`Value::write_to`], which returned `c`.
    /// The payload is moved: the slot must not be read or dropped afterwards.
    pub(crate) unsafe fn read_from(slot: *const u8, c: u32) -> Value {
        // SAFETY (all arms): the caller guarantees that `slot` holds the payload of the
        // variant with code `c`, initialized and aligned; it is read once, as a move.
        unsafe {
            match c {
                code::RAW_STR => Value::RawStr(slot.cast::<Box<Vec<u8>>>().read()),
                code::HASH => Value::Hash(slot.cast::<HashValue>().read()),
                code::LIST => Value::List(slot.cast::<Box<ListValue>>().read()),
                code::SET => Value::Set(slot.cast::<Box<SetValue>>().read()),
                code::ZSET => Value::ZSet(slot.cast::<Box<ZSetValue>>().read()),
                code::STREAM => Value::Stream(slot.cast::<Box<StreamValue>>().read()),
                code::BLOOM => Value::Bloom(slot.cast::<Box<BloomValue>>().read()),
                _ => Value::Cache(slot.cast::<Box<CacheValue>>().read()),
            }
        }
    }

    /// Borrows the payload in `slot`.
    ///
    /// # Safety
    /// As for [`Value::read_from`], and the slot must stay live and unmodified for `'a`.
    pub(crate) unsafe fn ref_at<'a>(slot: *const u8, c: u32) -> ValueRef<'a> {
        // SAFETY (all arms): the caller guarantees a live payload of variant `c` that
        // outlives `'a` and is not mutated meanwhile.
        unsafe {
            match c {
                code::RAW_STR => ValueRef::RawStr(&*slot.cast::<Box<Vec<u8>>>()),
                code::HASH => ValueRef::Hash(&*slot.cast::<HashValue>()),
                code::LIST => ValueRef::List(&*slot.cast::<Box<ListValue>>()),
                code::SET => ValueRef::Set(&*slot.cast::<Box<SetValue>>()),
                code::ZSET => ValueRef::ZSet(&*slot.cast::<Box<ZSetValue>>()),
                code::STREAM => ValueRef::Stream(&*slot.cast::<Box<StreamValue>>()),
                code::BLOOM => ValueRef::Bloom(&*slot.cast::<Box<BloomValue>>()),
                _ => ValueRef::Cache(&*slot.cast::<Box<CacheValue>>()),
            }
        }
    }

    /// Borrows the payload in `slot` mutably.
    ///
    /// # Safety
    /// As for [`Value::ref_at`], and nothing else may access the slot for `'a`. The borrow
    /// cannot change the variant: only the payload's contents.
    pub(crate) unsafe fn mut_at<'a>(slot: *mut u8, c: u32) -> ValueMut<'a> {
        // SAFETY (all arms): as in `ref_at`, with exclusive access guaranteed by the caller.
        unsafe {
            match c {
                code::RAW_STR => ValueMut::RawStr(&mut *slot.cast::<Box<Vec<u8>>>()),
                code::HASH => ValueMut::Hash(&mut *slot.cast::<HashValue>()),
                code::LIST => ValueMut::List(&mut *slot.cast::<Box<ListValue>>()),
                code::SET => ValueMut::Set(&mut *slot.cast::<Box<SetValue>>()),
                code::ZSET => ValueMut::ZSet(&mut *slot.cast::<Box<ZSetValue>>()),
                code::STREAM => ValueMut::Stream(&mut *slot.cast::<Box<StreamValue>>()),
                code::BLOOM => ValueMut::Bloom(&mut *slot.cast::<Box<BloomValue>>()),
                _ => ValueMut::Cache(&mut *slot.cast::<Box<CacheValue>>()),
            }
        }
    }
}

impl ValueRef<'_> {
    /// The Redis type of this value.
    #[inline]
    pub fn kind(&self) -> Kind {
        match self {
            ValueRef::InlineStr | ValueRef::RawStr(_) => Kind::String,
            ValueRef::Hash(_) => Kind::Hash,
            ValueRef::List(_) => Kind::List,
            ValueRef::Set(_) => Kind::Set,
            ValueRef::ZSet(_) => Kind::ZSet,
            ValueRef::Stream(_) => Kind::Stream,
            ValueRef::Bloom(_) => Kind::Bloom,
            ValueRef::Cache(_) => Kind::Cache,
        }
    }

    /// Heap bytes owned by the value (not counting inline strings, which the entry counts).
    pub fn heap_bytes(&self) -> usize {
        match self {
            ValueRef::InlineStr => 0,
            ValueRef::RawStr(v) => size_of::<Vec<u8>>() + v.capacity(),
            ValueRef::Hash(h) => h.heap_bytes(),
            ValueRef::List(l) => size_of::<ListValue>() + l.heap_bytes(),
            ValueRef::Set(s) => size_of::<SetValue>() + s.heap_bytes(),
            ValueRef::ZSet(z) => size_of::<ZSetValue>() + z.heap_bytes(),
            ValueRef::Stream(s) => size_of::<StreamValue>() + s.heap_bytes(),
            ValueRef::Bloom(b) => size_of::<BloomValue>() + b.heap_bytes(),
            ValueRef::Cache(c) => size_of::<CacheValue>() + c.heap_bytes(),
        }
    }

    /// An owned copy (COPY). `None` for an inline string, whose bytes live in the entry.
    pub fn to_value(&self) -> Option<Value> {
        Some(match *self {
            ValueRef::InlineStr => return None,
            ValueRef::RawStr(v) => Value::RawStr(Box::new(v.clone())),
            ValueRef::Hash(h) => Value::Hash(h.clone()),
            ValueRef::List(l) => Value::List(Box::new(l.clone())),
            ValueRef::Set(s) => Value::Set(Box::new(s.clone())),
            ValueRef::ZSet(z) => Value::ZSet(Box::new(z.clone())),
            ValueRef::Stream(s) => Value::Stream(Box::new(s.clone())),
            ValueRef::Bloom(b) => Value::Bloom(Box::new(b.clone())),
            ValueRef::Cache(c) => Value::Cache(Box::new(c.clone())),
        })
    }
}
