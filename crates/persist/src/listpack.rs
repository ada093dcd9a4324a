//! Redis's listpack byte format (what RDB stores for small hashes, sorted sets and list
//! nodes since Redis 7.0).
//!
//! Layout: a 6-byte header (total bytes as u32 LE, element count as u16 LE, 65535 when the
//! count does not fit), the entries, and a terminating 0xFF. Each entry is an encoding byte
//! (with inline length or value bits), its data, and a "backlen": the size of encoding plus
//! data in 1-5 bytes of 7 bits each, so the listpack can be walked backwards. Strings that
//! are canonical decimal integers are stored as integers of the smallest width that holds
//! them, as Redis does.
//!
//! This is independent of the in-memory [`flowkv_store::listpack`], which uses a simpler
//! format: RDB files and DUMP payloads must carry Redis's exact bytes.

use flowkv_protocol::num::{fmt_i64, parse_i64};

use crate::error::{corrupt, Result};

/// Header bytes: total size (u32) and element count (u16).
const HDR: usize = 6;
/// The terminator byte.
const EOF: u8 = 0xFF;
/// Element count value meaning "too many to store in the header".
const COUNT_UNKNOWN: u16 = u16::MAX;

/// One decoded element: a string or an integer (as Redis's listpack distinguishes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// The element as bytes: integers in decimal, formatted into `buf`.
    pub fn bytes<'b>(&'b self, buf: &'b mut [u8; 20]) -> &'b [u8] {
        match self {
            Elem::Str(s) => s,
            Elem::Int(v) => fmt_i64(*v, buf),
        }
    }

    /// The element as an owned byte string.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut buf = [0u8; 20];
        self.bytes(&mut buf).to_vec()
    }
}

/// Appends the backlen of an entry whose encoding and data take `len` bytes.
fn push_backlen(out: &mut Vec<u8>, len: usize) {
    let l = len as u64;
    if l <= 127 {
        out.push(l as u8);
    } else if l < 16383 {
        out.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]);
    } else if l < 2_097_151 {
        out.extend_from_slice(&[
            (l >> 14) as u8,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]);
    } else if l < 268_435_455 {
        out.extend_from_slice(&[
            (l >> 21) as u8,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]);
    } else {
        out.extend_from_slice(&[
            (l >> 28) as u8,
            ((l >> 21) & 127) as u8 | 128,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]);
    }
}

/// Builds Redis listpacks element by element.
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// An empty listpack.
    pub fn new() -> Builder {
        Builder {
            buf: vec![0; HDR],
            count: 0,
        }
    }

    /// Appends a string, stored as an integer when it is one in canonical form.
    pub fn push(&mut self, s: &[u8]) {
        match (s.len() <= 20).then(|| parse_i64(s)).flatten() {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
    }

    /// Appends an integer in the smallest encoding that holds it.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        let b = &mut self.buf;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1FFF;
            b.extend_from_slice(&[0xC0 | (u >> 8) as u8, u as u8]);
        } else if i16::try_from(v).is_ok() {
            b.push(0xF1);
            b.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            b.push(0xF2);
            b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            b.push(0xF3);
            b.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            b.push(0xF4);
            b.extend_from_slice(&v.to_le_bytes());
        }
        let len = self.buf.len() - start;
        push_backlen(&mut self.buf, len);
        self.count += 1;
    }

    /// Appends a string as a string.
    fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let len = s.len();
        if len < 64 {
            self.buf.push(0x80 | len as u8);
        } else if len < 4096 {
            self.buf
                .extend_from_slice(&[0xE0 | (len >> 8) as u8, len as u8]);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let entry = self.buf.len() - start;
        push_backlen(&mut self.buf, entry);
        self.count += 1;
    }

    /// The finished listpack bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count)
            .ok()
            .filter(|&c| c != COUNT_UNKNOWN)
            .unwrap_or(COUNT_UNKNOWN);
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

/// Encodes `elems` as one listpack.
pub fn encode<'a>(elems: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut b = Builder::new();
    for e in elems {
        b.push(e);
    }
    b.finish()
}

/// Reads `n` bytes at `*pos` of `lp`, advancing `pos`.
fn take<'a>(lp: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8]> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= lp.len())
        .ok_or_else(|| corrupt("listpack entry out of bounds"))?;
    let s = &lp[*pos..end];
    *pos = end;
    Ok(s)
}

/// Sign-extends the low `bits` bits of `u`.
fn sign_extend(u: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((u << shift) as i64) >> shift
}

/// Little-endian unsigned value of up to 8 bytes.
fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

/// Decodes a listpack, calling `f` for each element in order, after checking the header,
/// every entry's bounds and backlen, the terminator and the element count. Returns the
/// number of elements.
pub fn decode<'a>(lp: &'a [u8], mut f: impl FnMut(Elem<'a>) -> Result<()>) -> Result<usize> {
    if lp.len() < HDR + 1 {
        return Err(corrupt("listpack too short"));
    }
    let total = le(&lp[..4]) as usize;
    if total != lp.len() {
        return Err(corrupt("listpack size mismatch"));
    }
    let header_count = le(&lp[4..6]) as u16;
    let mut pos = HDR;
    let mut count = 0usize;
    loop {
        let start = pos;
        let b = *lp
            .get(pos)
            .ok_or_else(|| corrupt("listpack without terminator"))?;
        if b == EOF {
            pos += 1;
            break;
        }
        pos += 1;
        let elem = if b & 0x80 == 0 {
            Elem::Int(i64::from(b))
        } else if b & 0xC0 == 0x80 {
            Elem::Str(take(lp, &mut pos, usize::from(b & 0x3F))?)
        } else if b & 0xE0 == 0xC0 {
            let lo = take(lp, &mut pos, 1)?[0];
            Elem::Int(sign_extend((u64::from(b & 0x1F) << 8) | u64::from(lo), 13))
        } else if b & 0xF0 == 0xE0 {
            let lo = take(lp, &mut pos, 1)?[0];
            let len = (usize::from(b & 0x0F) << 8) | usize::from(lo);
            Elem::Str(take(lp, &mut pos, len)?)
        } else {
            match b {
                0xF0 => {
                    let len = le(take(lp, &mut pos, 4)?) as usize;
                    Elem::Str(take(lp, &mut pos, len)?)
                }
                0xF1 => Elem::Int(sign_extend(le(take(lp, &mut pos, 2)?), 16)),
                0xF2 => Elem::Int(sign_extend(le(take(lp, &mut pos, 3)?), 24)),
                0xF3 => Elem::Int(sign_extend(le(take(lp, &mut pos, 4)?), 32)),
                0xF4 => Elem::Int(le(take(lp, &mut pos, 8)?) as i64),
                _ => return Err(corrupt("invalid listpack encoding")),
            }
        };
        let mut expect = Vec::with_capacity(5);
        push_backlen(&mut expect, pos - start);
        if take(lp, &mut pos, expect.len())? != expect.as_slice() {
            return Err(corrupt("listpack backlen mismatch"));
        }
        f(elem)?;
        count += 1;
    }
    if pos != lp.len() {
        return Err(corrupt("listpack data after terminator"));
    }
    if header_count != COUNT_UNKNOWN && usize::from(header_count) != count {
        return Err(corrupt("listpack element count mismatch"));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(elems: &[&[u8]]) -> Vec<Vec<u8>> {
        let lp = encode(elems.iter().copied());
        let mut out = Vec::new();
        let n = decode(&lp, |e| {
            out.push(e.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(n, elems.len());
        out
    }

    #[test]
    fn known_bytes_match_redis() {
        // What Redis 7.0 writes for RPUSH l a 1 -100 (checked against DUMP output).
        let lp = encode([&b"a"[..], b"1", b"-100"]);
        assert_eq!(
            lp,
            [0x0F, 0, 0, 0, 3, 0, 0x81, b'a', 2, 1, 1, 0xDF, 0x9C, 2, 0xFF]
        );
    }

    #[test]
    fn every_width_round_trips() {
        let big = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let values: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32768",
            "32767",
            "40000",
            "-8388608",
            "8388607",
            "8388608",
            "2147483647",
            "-2147483648",
            "2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "01",
            "-0",
            "+1",
            "",
            "abc",
            "92233720368547758070",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([big, mid])
        .collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        assert_eq!(round_trip(&refs), values);
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let lp = encode([&b"hello"[..], b"12345"]);
        for cut in 0..lp.len() {
            assert!(decode(&lp[..cut], |_| Ok(())).is_err());
        }
        let mut bad = lp.clone();
        bad[6] = 0xF5;
        assert!(decode(&bad, |_| Ok(())).is_err());
        let mut bad = lp.clone();
        bad[4] = 9;
        assert!(decode(&bad, |_| Ok(())).is_err());
    }
}
