//! The RDB writer: values in the encodings Redis 7.0 writes, and whole files (RDB version
//! 10) with aux fields, database selectors, expiry times and the CRC64 trailer.

use std::io::Write;

use flowkv_protocol::num::parse_i64;
use flowkv_store::hash_value::Enc as HashEnc;
use flowkv_store::set_value::SetValue;
use flowkv_store::zset_value::ZSetValue;
use flowkv_store::{Entry, ValueRef};

use crate::format::*;
use crate::listpack::Builder;
use crate::packed::intset_encode;

/// How strings are written.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    /// `rdbcompression`: LZF-compress strings longer than 20 bytes when that saves at least
    /// 4 bytes, as Redis does.
    pub compress: bool,
}

/// Appends an RDB length: 6, 14, 32 or 64 bits depending on its size.
pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if let Ok(n) = u32::try_from(n) {
        out.push(LEN_32);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(LEN_64);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// The special integer encoding of a string, if it is a canonical decimal that fits in 32
/// bits (Redis stores "12345" in 3 bytes, not 6).
fn int_encoding(s: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(v) = (s.len() <= 11).then(|| parse_i64(s)).flatten() else {
        return false;
    };
    if let Ok(v) = i8::try_from(v) {
        out.extend_from_slice(&[ENC_MARK | ENC_INT8, v as u8]);
    } else if let Ok(v) = i16::try_from(v) {
        out.push(ENC_MARK | ENC_INT16);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.push(ENC_MARK | ENC_INT32);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Appends an RDB string: integer-encoded when possible, else LZF-compressed when enabled and
/// worth it, else length-prefixed.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], opts: WriteOptions) {
    if int_encoding(s, out) {
        return;
    }
    if opts.compress && s.len() > 20 {
        if let Some(c) = crate::lzf::compress(s, s.len() - 4) {
            out.push(ENC_MARK | ENC_LZF);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A sorted-set score as Redis's listpack holds it: an integer when it is one (within ±2^62),
/// else the `%.17g` text.
fn push_score(lp: &mut Builder, score: f64) {
    let limit = (i64::MAX / 2) as f64;
    if (-limit..=limit).contains(&score) && score == score.trunc() {
        lp.push_int(score as i64);
    } else {
        let mut buf = Vec::with_capacity(24);
        flowkv_protocol::format_double(score, &mut buf);
        lp.push(&buf);
    }
}

/// The RDB type byte of `e`'s value: the encoding Redis 7.0 writes for it.
pub fn value_type(e: &Entry) -> u8 {
    match e.value() {
        ValueRef::InlineStr | ValueRef::RawStr(_) => TYPE_STRING,
        ValueRef::List(_) => TYPE_LIST_QUICKLIST_2,
        ValueRef::Set(s) => match s {
            SetValue::Intset(_) => TYPE_SET_INTSET,
            SetValue::Table(_) => TYPE_SET,
        },
        ValueRef::Hash(h) if h.is_listpack() => TYPE_HASH_LISTPACK,
        ValueRef::Hash(_) => TYPE_HASH,
        ValueRef::ZSet(z) => match z {
            ZSetValue::Listpack(_) => TYPE_ZSET_LISTPACK,
            ZSetValue::Skiplist(_) => TYPE_ZSET_2,
        },
        ValueRef::Stream(_) => TYPE_STREAM_LISTPACKS_2,
        ValueRef::Bloom(_) | ValueRef::Cache(_) => TYPE_MODULE_2,
    }
}

/// Appends the RDB type byte and encoding of `e`'s value (no key): what a DUMP payload
/// starts with.
pub fn write_value(out: &mut Vec<u8>, e: &Entry, opts: WriteOptions) {
    out.push(value_type(e));
    write_body(out, e, opts);
}

/// Appends the encoding of `e`'s value for the type [`value_type`] gives.
fn write_body(out: &mut Vec<u8>, e: &Entry, opts: WriteOptions) {
    match e.value() {
        ValueRef::InlineStr | ValueRef::RawStr(_) => {
            write_string(out, e.string().unwrap_or_default(), opts);
        }
        ValueRef::List(l) => {
            let nodes = l.nodes().filter(|n| !n.is_empty());
            write_len(out, nodes.clone().count() as u64);
            for node in nodes {
                write_len(out, QUICKLIST_PACKED);
                write_string(out, &crate::listpack::encode(node.iter()), opts);
            }
        }
        ValueRef::Set(s) => match s {
            SetValue::Intset(ints) => write_string(out, &intset_encode(ints), opts),
            SetValue::Table(_) => {
                write_len(out, s.len() as u64);
                for m in s.iter() {
                    write_string(out, &m, opts);
                }
            }
        },
        ValueRef::Hash(h) => match h.enc() {
            HashEnc::Listpack(_) => {
                let mut lp = Builder::new();
                for (f, v) in h.iter() {
                    lp.push(f);
                    lp.push(v);
                }
                write_string(out, &lp.finish(), opts);
            }
            HashEnc::Table(_) => {
                write_len(out, h.len() as u64);
                for (f, v) in h.iter() {
                    write_string(out, f, opts);
                    write_string(out, v, opts);
                }
            }
        },
        ValueRef::ZSet(z) => match z {
            ZSetValue::Listpack(_) => {
                let mut lp = Builder::new();
                for (m, s) in z.iter() {
                    lp.push(m);
                    push_score(&mut lp, s);
                }
                write_string(out, &lp.finish(), opts);
            }
            ZSetValue::Skiplist(_) => {
                // Highest score first, as Redis writes it, so a loader inserting each member
                // at the head of its skiplist does O(1) work per member.
                write_len(out, z.len() as u64);
                for (m, s) in z.range(0, z.len(), true) {
                    write_string(out, m, opts);
                    out.extend_from_slice(&s.to_le_bytes());
                }
            }
        },
        ValueRef::Stream(st) => crate::stream::write_stream(out, st, opts),
        ValueRef::Bloom(_) | ValueRef::Cache(_) => {
            crate::module::write_module(out, e.value(), opts)
        }
    }
}

/// A DUMP payload: the value's RDB encoding, the RDB version (u16 LE) and a CRC64 (u64 LE)
/// of everything before it.
pub fn dump_payload(e: &Entry, opts: WriteOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, e, opts);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Appends one key as a file holds it: its expiry time if any, then type, key and value.
pub fn write_entry(out: &mut Vec<u8>, e: &Entry, opts: WriteOptions) {
    if let Some(at) = e.expire_at() {
        out.push(OP_EXPIRETIME_MS);
        out.extend_from_slice(&at.to_le_bytes());
    }
    out.push(value_type(e));
    write_string(out, e.key(), opts);
    write_body(out, e, opts);
}

/// Appends a SELECTDB opcode: the keys that follow belong to database `db`. A file may
/// switch databases any number of times (a background save meets keys in shard order).
pub fn write_select_db(out: &mut Vec<u8>, db: usize) {
    out.push(OP_SELECTDB);
    write_len(out, db as u64);
}

/// What the file's aux fields report.
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// `redis-ver`: the Redis version flowkv is compatible with.
    pub redis_ver: String,
    /// `ctime`: unix seconds of the save.
    pub ctime: u64,
    /// `used-mem`: bytes in use when saving.
    pub used_mem: u64,
    /// `rdbchecksum`: write a CRC64 trailer (else zero, which readers skip).
    pub checksum: bool,
    /// The code of each function library, written after the aux fields as Redis 7.0 does.
    pub functions: Vec<Box<[u8]>>,
}

/// Appends a function library record (RDB_OPCODE_FUNCTION2 and the library's code), as RDB
/// files and FUNCTION DUMP payloads hold them.
pub fn write_function(out: &mut Vec<u8>, code: &[u8], opts: WriteOptions) {
    out.push(OP_FUNCTION2);
    write_string(out, code, opts);
}

/// Writes an RDB file in one pass: header and aux fields first, then each database's keys,
/// then the trailer. Everything written goes through the running checksum.
pub struct FileWriter<W: Write> {
    w: W,
    crc: crc::Digest<'static, u64, crc::Table<16>>,
    checksum: bool,
    buf: Vec<u8>,
    opts: WriteOptions,
    /// Bytes written so far.
    pub written: u64,
}

impl<W: Write> FileWriter<W> {
    /// Starts a file: magic, version and the aux fields Redis 7.0 writes.
    pub fn new(w: W, info: &FileInfo, opts: WriteOptions) -> std::io::Result<Self> {
        let mut fw = FileWriter {
            w,
            crc: CRC64.digest(),
            checksum: info.checksum,
            buf: Vec::with_capacity(1 << 16),
            opts,
            written: 0,
        };
        fw.buf
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        let bits = (usize::BITS as u64).to_string();
        let aux: [(&str, String); 5] = [
            ("redis-ver", info.redis_ver.clone()),
            ("redis-bits", bits),
            ("ctime", info.ctime.to_string()),
            ("used-mem", info.used_mem.to_string()),
            ("aof-base", "0".into()),
        ];
        for (k, v) in aux {
            fw.buf.push(OP_AUX);
            write_string(&mut fw.buf, k.as_bytes(), opts);
            write_string(&mut fw.buf, v.as_bytes(), opts);
        }
        for code in &info.functions {
            write_function(&mut fw.buf, code, opts);
        }
        fw.flush_buf()?;
        Ok(fw)
    }

    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.crc.update(&self.buf);
        self.w.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Starts database `db`, with its key counts as a resize hint for the loader.
    pub fn select_db(&mut self, db: usize, keys: usize, expires: usize) -> std::io::Result<()> {
        write_select_db(&mut self.buf, db);
        self.buf.push(OP_RESIZEDB);
        write_len(&mut self.buf, keys as u64);
        write_len(&mut self.buf, expires as u64);
        self.flush_buf()
    }

    /// Writes one key: its expiry time if any, then type, key and value.
    pub fn entry(&mut self, e: &Entry) -> std::io::Result<()> {
        write_entry(&mut self.buf, e, self.opts);
        if self.buf.len() >= 1 << 16 {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Writes bytes already encoded with [`write_entry`] and [`write_select_db`] (a
    /// background save encodes under the shard locks and writes after releasing them).
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.flush_buf()?;
        self.crc.update(bytes);
        self.w.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Ends the file: EOF opcode and the checksum (zero when disabled). Returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.buf.push(OP_EOF);
        self.flush_buf()?;
        let crc = if self.checksum {
            self.crc.clone().finalize()
        } else {
            0
        };
        self.w.write_all(&crc.to_le_bytes())?;
        self.written += 8;
        self.w.flush()?;
        Ok(self.w)
    }
}
