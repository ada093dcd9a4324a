//! The RDB reader: every type and encoding Redis 7.0 writes, plus the older ones (ziplists,
//! zipmaps, linked lists, string-encoded zset scores) that RDB 9 and earlier hold, loaded into
//! flowkv's value types. Whole files and DUMP payloads.
//!
//! Every length read from the input is checked before use: strings are read incrementally
//! (a claimed length larger than the data fails at the end of input without allocating it
//! up front), counts never pre-allocate, and packed blobs are decoded with bounds checks.
//! Corrupt input gives an [`Error`], never a panic.

use std::io::Read;

use flowkv_store::hash_value::{HashLimits, HashValue};
use flowkv_store::list_value::{ListValue, NodeLimit};
use flowkv_store::set_value::SetValue;
use flowkv_store::stream_value::NodeLimits;
use flowkv_store::zset_value::{ZSetLimits, ZSetValue};
use flowkv_store::{Entry, Value};

use crate::error::{corrupt, Error, Result};
use crate::format::*;
use crate::listpack::{self, Elem};
use crate::packed::{intset_decode, ziplist_decode, zipmap_decode};

/// The thresholds that pick compact or full encodings for loaded values, from the loading
/// server's configuration (a file written with other limits is converted, as Redis does).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub hash: HashLimits,
    pub zset: ZSetLimits,
    pub max_intset: usize,
    pub list: NodeLimit,
    pub stream: NodeLimits,
}

/// A loaded value.
#[derive(Debug)]
pub enum Object {
    Str(Vec<u8>),
    Value(Value),
}

impl Object {
    /// The entry for `key` holding this value.
    pub fn into_entry(self, key: &[u8], expire_at: Option<u64>) -> Entry {
        match self {
            Object::Str(s) => Entry::new_string(key, &s, expire_at, 0),
            Object::Value(v) => Entry::new_value(key, v, expire_at, 0),
        }
    }
}

/// A byte source that keeps a running CRC64 of what was read.
pub(crate) struct Input<R> {
    r: R,
    crc: crc::Digest<'static, u64, crc::Table<16>>,
}

/// A length prefix, or the marker of a specially encoded string.
enum Len {
    Plain(u64),
    Special(u8),
}

impl<R: Read> Input<R> {
    fn new(r: R) -> Input<R> {
        Input {
            r,
            crc: CRC64.digest(),
        }
    }

    pub(crate) fn exact<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b)?;
        self.crc.update(&b);
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.exact::<1>()?[0])
    }

    /// `n` bytes, read in bounded steps so a bogus length cannot allocate much.
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>> {
        let cap = usize::try_from(n.min(1 << 20)).unwrap_or(0);
        let mut v = Vec::with_capacity(cap);
        (&mut self.r).take(n).read_to_end(&mut v)?;
        if v.len() as u64 != n {
            return Err(corrupt("unexpected end of data (truncated file?)"));
        }
        self.crc.update(&v);
        Ok(v)
    }

    fn len_or_special(&mut self) -> Result<Len> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3F)),
            1 => Len::Plain((u64::from(b & 0x3F) << 8) | u64::from(self.u8()?)),
            3 => Len::Special(b & 0x3F),
            _ => match b {
                LEN_32 => Len::Plain(u64::from(u32::from_be_bytes(self.exact()?))),
                LEN_64 => Len::Plain(u64::from_be_bytes(self.exact()?)),
                _ => return Err(corrupt("invalid length encoding")),
            },
        })
    }

    /// A length (count, database number…).
    pub(crate) fn length(&mut self) -> Result<u64> {
        match self.len_or_special()? {
            Len::Plain(n) => Ok(n),
            Len::Special(_) => Err(corrupt(
                "unexpected string encoding where a length was expected",
            )),
        }
    }

    /// A string in any of its encodings (plain, integer, LZF).
    pub(crate) fn string(&mut self) -> Result<Vec<u8>> {
        match self.len_or_special()? {
            Len::Plain(n) => self.bytes(n),
            Len::Special(ENC_INT8) => Ok((self.u8()? as i8).to_string().into_bytes()),
            Len::Special(ENC_INT16) => {
                Ok(i16::from_le_bytes(self.exact()?).to_string().into_bytes())
            }
            Len::Special(ENC_INT32) => {
                Ok(i32::from_le_bytes(self.exact()?).to_string().into_bytes())
            }
            Len::Special(ENC_LZF) => {
                let clen = self.length()?;
                let len = usize::try_from(self.length()?)
                    .map_err(|_| corrupt("LZF length out of range"))?;
                let data = self.bytes(clen)?;
                crate::lzf::decompress(&data, len)
            }
            Len::Special(_) => Err(corrupt("unknown string encoding")),
        }
    }

    /// A score as RDB type ZSET (version 1) stores it: a length byte and decimal text, with
    /// 253/254/255 meaning NaN, +inf and -inf.
    fn text_double(&mut self) -> Result<f64> {
        match self.u8()? {
            253 => Err(corrupt("NaN score")),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => parse_score(&self.bytes(u64::from(n))?),
        }
    }

    fn binary_double(&mut self) -> Result<f64> {
        let v = f64::from_le_bytes(self.exact()?);
        if v.is_nan() {
            return Err(corrupt("NaN score"));
        }
        Ok(v)
    }

    /// The CRC64 of everything read so far.
    fn crc(&self) -> u64 {
        self.crc.clone().finalize()
    }
}

/// A score written as text (old zset encodings, ziplists, listpacks).
fn parse_score(s: &[u8]) -> Result<f64> {
    flowkv_store::num::parse_f64(s).ok_or_else(|| corrupt("invalid zset score"))
}

fn elem_score(e: Elem<'_>) -> Result<f64> {
    match e {
        Elem::Int(v) => Ok(v as f64),
        Elem::Str(s) => parse_score(s),
    }
}

/// Which packed blob format holds a collection's elements.
#[derive(Clone, Copy)]
enum Packed {
    Listpack,
    Ziplist,
}

fn decode<'a>(p: Packed, blob: &'a [u8], f: impl FnMut(Elem<'a>) -> Result<()>) -> Result<usize> {
    match p {
        Packed::Listpack => listpack::decode(blob, f),
        Packed::Ziplist => ziplist_decode(blob, f),
    }
}

/// Decodes a packed blob of alternating (a, b) elements.
fn decode_pairs<'a>(
    p: Packed,
    blob: &'a [u8],
    mut f: impl FnMut(Elem<'a>, Elem<'a>) -> Result<()>,
) -> Result<()> {
    let mut first = None;
    decode(p, blob, |e| {
        match first.take() {
            None => first = Some(e),
            Some(a) => f(a, e)?,
        }
        Ok(())
    })?;
    if first.is_some() {
        return Err(corrupt("odd number of elements in a hash or sorted set"));
    }
    Ok(())
}

fn add_hash(h: &mut HashValue, f: &[u8], v: &[u8], lim: &Limits) -> Result<()> {
    if h.set(f, v, lim.hash) {
        Ok(())
    } else {
        Err(corrupt("duplicate hash field"))
    }
}

fn add_set(s: &mut SetValue, m: &[u8], lim: &Limits) -> Result<()> {
    if s.insert(m, lim.max_intset) {
        Ok(())
    } else {
        Err(corrupt("duplicate set member"))
    }
}

fn add_zset(z: &mut ZSetValue, m: &[u8], score: f64, lim: &Limits) -> Result<()> {
    if z.insert(m, score, lim.zset) {
        Ok(())
    } else {
        Err(corrupt("duplicate sorted set member"))
    }
}

/// An empty hash sized for `n` fields: a hashtable from the start past the entry limit.
fn new_hash(n: u64, lim: &Limits) -> HashValue {
    if n > lim.hash.max_entries as u64 {
        HashValue::new_table()
    } else {
        HashValue::default()
    }
}

/// Reads a value of RDB type `ty`. `Ok(None)` for an empty collection, which Redis skips.
fn read_object<R: Read>(inp: &mut Input<R>, ty: u8, lim: &Limits) -> Result<Option<Object>> {
    let value = match ty {
        TYPE_STRING => return Ok(Some(Object::Str(inp.string()?))),
        TYPE_LIST => {
            let mut l = ListValue::new();
            for _ in 0..inp.length()? {
                l.push(false, &inp.string()?, lim.list);
            }
            Value::List(Box::new(l))
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let mut l = ListValue::new();
            for _ in 0..inp.length()? {
                let container = if ty == TYPE_LIST_QUICKLIST_2 {
                    inp.length()?
                } else {
                    QUICKLIST_PACKED
                };
                let blob = inp.string()?;
                match container {
                    QUICKLIST_PLAIN => l.push(false, &blob, lim.list),
                    QUICKLIST_PACKED => {
                        let p = if ty == TYPE_LIST_QUICKLIST {
                            Packed::Ziplist
                        } else {
                            Packed::Listpack
                        };
                        let mut buf = [0u8; 20];
                        decode(p, &blob, |e| {
                            l.push(false, e.bytes(&mut buf), lim.list);
                            Ok(())
                        })?;
                    }
                    _ => return Err(corrupt("unknown quicklist node container")),
                }
            }
            Value::List(Box::new(l))
        }
        TYPE_LIST_ZIPLIST => {
            let blob = inp.string()?;
            let mut l = ListValue::new();
            let mut buf = [0u8; 20];
            ziplist_decode(&blob, |e| {
                l.push(false, e.bytes(&mut buf), lim.list);
                Ok(())
            })?;
            Value::List(Box::new(l))
        }
        TYPE_SET => {
            let n = inp.length()?;
            let mut s = if n > lim.max_intset as u64 {
                SetValue::Table(Box::default())
            } else {
                SetValue::default()
            };
            for _ in 0..n {
                add_set(&mut s, &inp.string()?, lim)?;
            }
            Value::Set(Box::new(s))
        }
        TYPE_SET_INTSET => {
            let ints = intset_decode(&inp.string()?)?;
            let big = ints.len() > lim.max_intset;
            let mut s = SetValue::Intset(ints);
            if big {
                s.convert();
            }
            Value::Set(Box::new(s))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = inp.length()?;
            let mut z = ZSetValue::with_hint(usize::try_from(n).unwrap_or(usize::MAX), 0, lim.zset);
            for _ in 0..n {
                let m = inp.string()?;
                let score = if ty == TYPE_ZSET {
                    inp.text_double()?
                } else {
                    inp.binary_double()?
                };
                add_zset(&mut z, &m, score, lim)?;
            }
            Value::ZSet(Box::new(z))
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = inp.string()?;
            let p = if ty == TYPE_ZSET_ZIPLIST {
                Packed::Ziplist
            } else {
                Packed::Listpack
            };
            let mut z = ZSetValue::default();
            let mut buf = [0u8; 20];
            decode_pairs(p, &blob, |m, s| {
                add_zset(&mut z, m.bytes(&mut buf), elem_score(s)?, lim)
            })?;
            Value::ZSet(Box::new(z))
        }
        TYPE_HASH => {
            let n = inp.length()?;
            let mut h = new_hash(n, lim);
            for _ in 0..n {
                let f = inp.string()?;
                add_hash(&mut h, &f, &inp.string()?, lim)?;
            }
            Value::Hash(h)
        }
        TYPE_HASH_ZIPMAP => {
            let blob = inp.string()?;
            let mut h = HashValue::default();
            zipmap_decode(&blob, |f, v| add_hash(&mut h, f, v, lim))?;
            Value::Hash(h)
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let blob = inp.string()?;
            let p = if ty == TYPE_HASH_ZIPLIST {
                Packed::Ziplist
            } else {
                Packed::Listpack
            };
            let mut h = HashValue::default();
            let (mut b1, mut b2) = ([0u8; 20], [0u8; 20]);
            decode_pairs(p, &blob, |f, v| {
                add_hash(&mut h, f.bytes(&mut b1), v.bytes(&mut b2), lim)
            })?;
            Value::Hash(h)
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 => {
            Value::Stream(Box::new(crate::stream::read_stream(inp, ty, lim.stream)?))
        }
        TYPE_MODULE_2 => crate::module::read_module(inp)?,
        TYPE_MODULE => {
            return Err(Error::Unsupported(
                "module values of RDB type 6 (before Redis 5) are not supported".into(),
            ))
        }
        _ => return Err(corrupt(format!("unknown value type {ty}"))),
    };
    let empty = match &value {
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::ZSet(z) => z.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::Stream(_) | Value::Bloom(_) | Value::Cache(_) => false,
        Value::InlineStr | Value::RawStr(_) => false,
    };
    Ok((!empty).then_some(Object::Value(value)))
}

/// Checks a DUMP payload's trailer (RDB version and CRC64) and decodes its value, which
/// must fill the payload exactly.
pub fn restore_payload(payload: &[u8], lim: &Limits) -> std::result::Result<Object, RestoreError> {
    if payload.len() < 10 {
        return Err(RestoreError::Trailer);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION || crc64(&payload[..payload.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(RestoreError::Trailer);
    }
    let mut inp = Input::new(body);
    let parsed = inp
        .u8()
        .and_then(|ty| read_object(&mut inp, ty, lim))
        .map_err(RestoreError::Data)?;
    match parsed {
        Some(obj) if inp.r.is_empty() => Ok(obj),
        Some(_) => Err(RestoreError::Data(corrupt(
            "trailing bytes after the value",
        ))),
        None => Err(RestoreError::Data(corrupt("empty collection"))),
    }
}

/// Why a DUMP payload was refused.
#[derive(Debug)]
pub enum RestoreError {
    /// Wrong RDB version or checksum in the trailer.
    Trailer,
    /// The value itself is corrupt or unsupported.
    Data(Error),
}

/// What a loaded file said about itself.
#[derive(Debug, Default)]
pub struct LoadInfo {
    /// The file's RDB version.
    pub version: u16,
    /// Keys loaded.
    pub keys: u64,
    /// Keys skipped because their TTL had passed.
    pub expired: u64,
    /// Aux fields (redis-ver, ctime…), in file order.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// The code of each function library (RDB_OPCODE_FUNCTION2 records), in file order.
    pub functions: Vec<Vec<u8>>,
    /// Things the log should mention (checksum off, empty keys skipped…).
    pub warnings: Vec<String>,
}

/// Loads an RDB file: calls `on_key(db, entry)` for each live key, in file order. Keys whose
/// TTL is before `now_ms` are skipped, as Redis skips them when loading. `num_dbs` bounds
/// SELECTDB. The checksum trailer is verified unless it is zero.
pub fn load<R: Read>(
    r: R,
    lim: &Limits,
    num_dbs: usize,
    now_ms: u64,
    on_key: impl FnMut(usize, Entry) -> Result<()>,
) -> Result<LoadInfo> {
    load_with_aux(r, lim, num_dbs, now_ms, on_key, |_, _| {})
}

/// [`load`], also calling `on_aux(key, value)` for each aux field as it is read (a loader
/// reports `used-mem` while it loads, as Redis does).
pub fn load_with_aux<R: Read>(
    r: R,
    lim: &Limits,
    num_dbs: usize,
    now_ms: u64,
    mut on_key: impl FnMut(usize, Entry) -> Result<()>,
    mut on_aux: impl FnMut(&[u8], &[u8]),
) -> Result<LoadInfo> {
    let mut inp = Input::new(r);
    let magic: [u8; 9] = inp.exact()?;
    if &magic[..5] != b"REDIS" {
        return Err(corrupt("wrong signature trying to load DB from file"));
    }
    let version = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|v| (1..=RDB_VERSION).contains(v))
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "Can't handle RDB format version {}",
                String::from_utf8_lossy(&magic[5..])
            ))
        })?;
    let mut info = LoadInfo {
        version,
        ..LoadInfo::default()
    };
    let mut db = 0usize;
    let mut expire: Option<u64> = None;
    loop {
        let ty = inp.u8()?;
        match ty {
            OP_EXPIRETIME => {
                expire = Some(u64::from(u32::from_le_bytes(inp.exact()?)) * 1000);
            }
            OP_EXPIRETIME_MS => expire = Some(u64::from_le_bytes(inp.exact()?)),
            OP_FREQ => {
                inp.u8()?;
            }
            OP_IDLE => {
                inp.length()?;
            }
            OP_EOF => break,
            OP_SELECTDB => {
                let n = inp.length()?;
                db = usize::try_from(n)
                    .ok()
                    .filter(|&d| d < num_dbs)
                    .ok_or_else(|| {
                        corrupt(format!(
                            "the file selects database {n}, but only {num_dbs} are configured"
                        ))
                    })?;
            }
            OP_RESIZEDB => {
                inp.length()?;
                inp.length()?;
            }
            OP_AUX => {
                let k = inp.string()?;
                let v = inp.string()?;
                on_aux(&k, &v);
                info.aux.push((k, v));
            }
            OP_MODULE_AUX => {
                return Err(Error::Unsupported(
                    "the file holds module data; modules are not supported".into(),
                ))
            }
            OP_FUNCTION2 => info.functions.push(inp.string()?),
            OP_FUNCTION_PRE_GA => {
                return Err(Error::Unsupported(
                    "pre-release function format not supported".into(),
                ))
            }
            _ => {
                let key = inp.string()?;
                let obj = read_object(&mut inp, ty, lim)?;
                let at = expire.take();
                match obj {
                    None => info.warnings.push(format!(
                        "skipped empty key '{}'",
                        String::from_utf8_lossy(&key)
                    )),
                    Some(_) if at.is_some_and(|t| t < now_ms) => info.expired += 1,
                    Some(obj) => {
                        on_key(db, obj.into_entry(&key, at))?;
                        info.keys += 1;
                    }
                }
            }
        }
    }
    if version >= 5 {
        let expected = inp.crc();
        let mut b = [0u8; 8];
        inp.r.read_exact(&mut b)?;
        let stored = u64::from_le_bytes(b);
        if stored == 0 {
            info.warnings
                .push("RDB file was saved with checksum disabled: no check performed.".into());
        } else if stored != expected {
            return Err(corrupt("wrong RDB checksum"));
        }
    }
    Ok(info)
}
