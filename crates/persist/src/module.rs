//! Module-type values (RDB type `MODULE_2`): Bloom filters as RedisBloom writes them, and
//! flowkv's cache entries.
//!
//! Layout: the type byte 7, the key, then a length-encoded 64-bit module id — the 9-character
//! type name in 6-bit symbols followed by a 10-bit encoding version — then the value's fields,
//! each an opcode (2 unsigned, 4 double, 5 string) and the field (a length, 8 bytes of
//! little-endian double, an RDB string), and finally the opcode 0 (EOF).
//!
//! - `MBbloom--` (encoding version 4), as RedisBloom's `BFRdbSave`: items, link count,
//!   options, growth, then per link: capacity, error rate, hash count, bits per entry, bits,
//!   n2, bit array, items in the link.
//! - `flowcache` (encoding version 1): flags (1 = holds a value, 2 = invalidated), the value
//!   (empty when none), fresh-until time (unix ms) and early-refresh window (ms). Leases are
//!   not saved: after a restart the next reader takes a new one. The hard expiry is the key's
//!   own TTL. No Redis module reads this type.

use std::io::Read;

use flowkv_store::bloom::{BloomValue, Link};
use flowkv_store::cache_value::CacheValue;
use flowkv_store::{Value, ValueRef};

use crate::error::{corrupt, Error, Result};
use crate::read::Input;
use crate::write::{write_len, write_string, WriteOptions};

const OPCODE_EOF: u64 = 0;
const OPCODE_UINT: u64 = 2;
const OPCODE_DOUBLE: u64 = 4;
const OPCODE_STRING: u64 = 5;

/// Module type names are 9 symbols from this set, 6 bits each.
const NAME_CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The 64-bit id of module type `name` at encoding version `encver`.
const fn module_id(name: &[u8; 9], encver: u64) -> u64 {
    let mut id = 0u64;
    let mut i = 0;
    while i < 9 {
        let mut pos = 0;
        while NAME_CHARSET[pos] != name[i] {
            pos += 1;
        }
        id = (id << 6) | pos as u64;
        i += 1;
    }
    (id << 10) | encver
}

/// The type name in a module id (for error messages).
fn module_name(id: u64) -> String {
    (0..9)
        .rev()
        .map(|i| NAME_CHARSET[((id >> (10 + 6 * i)) & 63) as usize] as char)
        .collect()
}

const BLOOM_ENCVER: u64 = 4;
const BLOOM_ID: u64 = module_id(b"MBbloom--", BLOOM_ENCVER);
const CACHE_ENCVER: u64 = 1;
const CACHE_ID: u64 = module_id(b"flowcache", CACHE_ENCVER);

/// Cache entry flags.
const CACHE_HAS_VALUE: u64 = 1;
const CACHE_STALE: u64 = 2;

/// Appends a module value's id, fields and EOF marker (after the type byte and key).
pub(crate) fn write_module(out: &mut Vec<u8>, value: ValueRef<'_>, opts: WriteOptions) {
    let uint = |out: &mut Vec<u8>, v: u64| {
        write_len(out, OPCODE_UINT);
        write_len(out, v);
    };
    let double = |out: &mut Vec<u8>, v: f64| {
        write_len(out, OPCODE_DOUBLE);
        out.extend_from_slice(&v.to_le_bytes());
    };
    let string = |out: &mut Vec<u8>, v: &[u8]| {
        write_len(out, OPCODE_STRING);
        write_string(out, v, opts);
    };
    match value {
        ValueRef::Bloom(bf) => {
            write_len(out, BLOOM_ID);
            uint(out, bf.size);
            uint(out, bf.links.len() as u64);
            uint(out, bf.options.into());
            uint(out, bf.growth.into());
            for l in &bf.links {
                uint(out, l.entries);
                double(out, l.error);
                uint(out, l.hashes.into());
                double(out, l.bpe);
                uint(out, l.bits);
                uint(out, l.n2.into());
                string(out, &l.bytes);
                uint(out, l.size);
            }
        }
        ValueRef::Cache(c) => {
            write_len(out, CACHE_ID);
            let flags = if c.value.is_some() {
                CACHE_HAS_VALUE
            } else {
                0
            } | if c.stale { CACHE_STALE } else { 0 };
            uint(out, flags);
            string(out, c.value.as_deref().unwrap_or_default());
            uint(out, c.fresh_until);
            uint(out, c.early_ms);
        }
        _ => unreachable!("write_module is only called for module values"),
    }
    write_len(out, OPCODE_EOF);
}

/// Reads the fields of a `MODULE_2` value, each checked against its expected opcode.
struct Fields<'a, R> {
    inp: &'a mut Input<R>,
}

impl<R: Read> Fields<'_, R> {
    fn opcode(&mut self, want: u64) -> Result<()> {
        let op = self.inp.length()?;
        if op != want {
            return Err(corrupt(format!(
                "module value field has opcode {op}, expected {want}"
            )));
        }
        Ok(())
    }

    fn uint(&mut self) -> Result<u64> {
        self.opcode(OPCODE_UINT)?;
        self.inp.length()
    }

    fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.uint()?).map_err(|_| corrupt("module value field out of range"))
    }

    fn double(&mut self) -> Result<f64> {
        self.opcode(OPCODE_DOUBLE)?;
        Ok(f64::from_le_bytes(self.inp.exact()?))
    }

    fn string(&mut self) -> Result<Vec<u8>> {
        self.opcode(OPCODE_STRING)?;
        self.inp.string()
    }
}

/// Reads a `MODULE_2` value (after the type byte and key): the module id, the fields and the
/// EOF marker.
pub(crate) fn read_module<R: Read>(inp: &mut Input<R>) -> Result<Value> {
    let id = inp.length()?;
    let mut f = Fields { inp };
    let value = if id >> 10 == BLOOM_ID >> 10 && id & 1023 <= BLOOM_ENCVER {
        Value::Bloom(Box::new(read_bloom(&mut f, id & 1023)?))
    } else if id == CACHE_ID {
        Value::Cache(Box::new(read_cache(&mut f)?))
    } else {
        return Err(Error::Unsupported(format!(
            "The RDB file contains module data I can't load: no matching module type '{}'",
            module_name(id)
        )));
    };
    if f.inp.length()? != OPCODE_EOF {
        return Err(corrupt("module value not terminated by the EOF marker"));
    }
    Ok(value)
}

/// RedisBloom's `BFRdbLoad`: encoding versions 0 to 4 (options from 2, growth from 4).
fn read_bloom<R: Read>(f: &mut Fields<'_, R>, encver: u64) -> Result<BloomValue> {
    let bad = || corrupt("invalid Bloom filter");
    let size = f.uint()?;
    let n = f.uint()?;
    if n == 0 {
        return Err(bad());
    }
    let options = if encver >= 2 { f.u32()? } else { 0 };
    let growth = if encver >= 4 { f.u32()? } else { 2 };
    let mut links = Vec::new();
    for _ in 0..n {
        let entries = f.uint()?;
        let error = f.double()?;
        let hashes = f.u32()?;
        let bpe = f.double()?;
        let (bits, n2) = if encver == 0 {
            ((entries as f64 * bpe) as u64, 0)
        } else {
            let bits = f.uint()?;
            (bits, u8::try_from(f.uint()?).map_err(|_| bad())?)
        };
        let bytes = f.string()?;
        if (bytes.len() as f64) < (bits as f64 / 8.0).ceil() {
            return Err(bad());
        }
        let link = Link {
            entries,
            error,
            hashes,
            bpe,
            bits,
            n2,
            bytes,
            size: f.uint()?,
        };
        if !link.is_valid() {
            return Err(bad());
        }
        links.push(link);
    }
    Ok(BloomValue {
        size,
        options,
        growth,
        links,
    })
}

fn read_cache<R: Read>(f: &mut Fields<'_, R>) -> Result<CacheValue> {
    let flags = f.uint()?;
    let value = f.string()?;
    Ok(CacheValue {
        value: (flags & CACHE_HAS_VALUE != 0).then_some(value),
        stale: flags & CACHE_STALE != 0,
        fresh_until: f.uint()?,
        early_ms: f.uint()?,
        lease: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_ids_match_redis() {
        // RedisBloom's type id as Redis computes it (moduleTypeEncodeId).
        assert_eq!(BLOOM_ID, 0x3016_e5a2_89be_f804);
        assert_eq!(module_name(BLOOM_ID), "MBbloom--");
        assert_eq!(module_name(CACHE_ID), "flowcache");
    }
}
