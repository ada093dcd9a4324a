//! The other packed blobs RDB strings can hold: intsets (sets of integers, still written by
//! Redis 7.0) and the ziplists and zipmaps older Redis versions wrote (RDB 9 and below).
//!
//! Every decoder checks each length against the blob before reading, so a corrupt blob is
//! an error, never a panic or an out-of-bounds read.

use crate::error::{corrupt, Result};
use crate::listpack::Elem;

/// Little-endian unsigned value of up to 8 bytes.
fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

/// Reads `n` bytes at `*pos`, advancing it.
fn take<'a>(b: &'a [u8], pos: &mut usize, n: usize, what: &str) -> Result<&'a [u8]> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| corrupt(format!("{what} entry out of bounds")))?;
    let s = &b[*pos..end];
    *pos = end;
    Ok(s)
}

// ---------------------------------------------------------------------------------------
// Intset: encoding (2, 4 or 8) as u32 LE, count as u32 LE, then the sorted integers LE.

/// Encodes sorted, distinct integers as an intset of the narrowest width that holds them.
pub fn intset_encode(ints: &[i64]) -> Vec<u8> {
    let width: usize = if ints.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if ints.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * ints.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(ints.len() as u32).to_le_bytes());
    for &v in ints {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// Decodes an intset, checking its width, size and that the integers strictly ascend.
pub fn intset_decode(b: &[u8]) -> Result<Vec<i64>> {
    if b.len() < 8 {
        return Err(corrupt("intset too short"));
    }
    let width = le(&b[..4]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(corrupt("invalid intset encoding"));
    }
    let count = le(&b[4..8]) as usize;
    let body = &b[8..];
    if count.checked_mul(width) != Some(body.len()) {
        return Err(corrupt("intset size mismatch"));
    }
    let shift = 64 - 8 * width as u32;
    let ints: Vec<i64> = body
        .chunks_exact(width)
        .map(|c| ((le(c) << shift) as i64) >> shift)
        .collect();
    if ints.windows(2).any(|w| w[0] >= w[1]) {
        return Err(corrupt("intset not sorted or has duplicates"));
    }
    Ok(ints)
}

// ---------------------------------------------------------------------------------------
// Ziplist: zlbytes u32, zltail u32, zllen u16, entries, 0xFF. Entry: prevlen (1 byte, or
// 0xFE + u32), encoding, data.

/// Decodes a ziplist, calling `f` for each element in order. Checks the header, every
/// entry's bounds and prevlen, the tail offset, the terminator and the count.
pub fn ziplist_decode<'a>(
    zl: &'a [u8],
    mut f: impl FnMut(Elem<'a>) -> Result<()>,
) -> Result<usize> {
    const W: &str = "ziplist";
    if zl.len() < 11 {
        return Err(corrupt("ziplist too short"));
    }
    if le(&zl[..4]) as usize != zl.len() {
        return Err(corrupt("ziplist size mismatch"));
    }
    let tail = le(&zl[4..8]) as usize;
    let header_count = le(&zl[8..10]) as usize;
    let mut pos = 10;
    let mut prev_len = 0usize;
    let mut last_start = 10;
    let mut count = 0usize;
    loop {
        let start = pos;
        let first = take(zl, &mut pos, 1, W)?[0];
        if first == 0xFF {
            break;
        }
        let prevlen = if first == 0xFE {
            le(take(zl, &mut pos, 4, W)?) as usize
        } else {
            usize::from(first)
        };
        if prevlen != prev_len {
            return Err(corrupt("ziplist prevlen mismatch"));
        }
        let enc = take(zl, &mut pos, 1, W)?[0];
        let elem = match enc >> 6 {
            0 => Elem::Str(take(zl, &mut pos, usize::from(enc & 0x3F), W)?),
            1 => {
                let lo = take(zl, &mut pos, 1, W)?[0];
                let len = (usize::from(enc & 0x3F) << 8) | usize::from(lo);
                Elem::Str(take(zl, &mut pos, len, W)?)
            }
            2 => {
                if enc != 0x80 {
                    return Err(corrupt("invalid ziplist string encoding"));
                }
                let b = take(zl, &mut pos, 4, W)?;
                let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                Elem::Str(take(zl, &mut pos, len, W)?)
            }
            _ => match enc {
                0xC0 => Elem::Int(i64::from(i16::from_le_bytes(
                    take(zl, &mut pos, 2, W)?.try_into().unwrap_or_default(),
                ))),
                0xD0 => Elem::Int(i64::from(i32::from_le_bytes(
                    take(zl, &mut pos, 4, W)?.try_into().unwrap_or_default(),
                ))),
                0xE0 => Elem::Int(i64::from_le_bytes(
                    take(zl, &mut pos, 8, W)?.try_into().unwrap_or_default(),
                )),
                0xF0 => Elem::Int(((le(take(zl, &mut pos, 3, W)?) << 40) as i64) >> 40),
                0xFE => Elem::Int(i64::from(take(zl, &mut pos, 1, W)?[0] as i8)),
                0xF1..=0xFD => Elem::Int(i64::from(enc & 0x0F) - 1),
                _ => return Err(corrupt("invalid ziplist encoding")),
            },
        };
        f(elem)?;
        prev_len = pos - start;
        last_start = start;
        count += 1;
    }
    if pos != zl.len() {
        return Err(corrupt("ziplist data after terminator"));
    }
    // An empty ziplist's tail points at the terminator's offset (the header's end).
    if tail != last_start {
        return Err(corrupt("ziplist tail offset mismatch"));
    }
    if header_count != 0xFFFF && header_count != count {
        return Err(corrupt("ziplist element count mismatch"));
    }
    Ok(count)
}

// ---------------------------------------------------------------------------------------
// Zipmap (hashes, RDB before 2.6): count byte, then <len>key<len><free>value<free bytes>…,
// 0xFF. A length below 254 is one byte; 254 introduces a u32 (written in the host order of
// the machine that saved it: little-endian on every platform Redis runs on today).

/// Decodes a zipmap, calling `f` with each (field, value) pair.
pub fn zipmap_decode<'a>(
    zm: &'a [u8],
    mut f: impl FnMut(&'a [u8], &'a [u8]) -> Result<()>,
) -> Result<usize> {
    const W: &str = "zipmap";
    fn len(zm: &[u8], pos: &mut usize) -> Result<Option<usize>> {
        match take(zm, pos, 1, W)?[0] {
            255 => Ok(None),
            254 => Ok(Some(le(take(zm, pos, 4, W)?) as usize)),
            n => Ok(Some(usize::from(n))),
        }
    }
    let mut pos = 1;
    let header_count = usize::from(*zm.first().ok_or_else(|| corrupt("empty zipmap"))?);
    let mut count = 0usize;
    while let Some(klen) = len(zm, &mut pos)? {
        let field = take(zm, &mut pos, klen, W)?;
        let vlen = len(zm, &mut pos)?.ok_or_else(|| corrupt("zipmap field without value"))?;
        let free = usize::from(take(zm, &mut pos, 1, W)?[0]);
        let value = take(zm, &mut pos, vlen, W)?;
        take(zm, &mut pos, free, W)?;
        f(field, value)?;
        count += 1;
    }
    if pos != zm.len() {
        return Err(corrupt("zipmap data after terminator"));
    }
    if header_count < 254 && header_count != count {
        return Err(corrupt("zipmap element count mismatch"));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect_zl(zl: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut v = Vec::new();
        ziplist_decode(zl, |e| {
            v.push(e.to_vec());
            Ok(())
        })?;
        Ok(v)
    }

    #[test]
    fn intset_round_trip_and_widths() {
        for ints in [vec![1, 2, 3], vec![-70000, 5], vec![i64::MIN, 0, i64::MAX]] {
            let b = intset_encode(&ints);
            assert_eq!(intset_decode(&b).unwrap(), ints);
        }
        assert_eq!(intset_encode(&[1, 2])[..4], [2, 0, 0, 0]);
        assert_eq!(intset_encode(&[1, 70000])[..4], [4, 0, 0, 0]);
        let mut unsorted = intset_encode(&[1, 2]);
        unsorted[8] = 5;
        assert!(intset_decode(&unsorted).is_err());
        assert!(intset_decode(&intset_encode(&[1, 2])[..11]).is_err());
    }

    #[test]
    fn ziplist_from_the_redis_docs() {
        // "2", "5" (immediates), then "Hello World".
        let mut zl = vec![
            0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x00, 0xF3, 0x02, 0xF6, 0x02, 0x0B,
        ];
        zl.extend_from_slice(b"Hello World");
        zl.push(0xFF);
        let n = zl.len() as u32;
        zl[..4].copy_from_slice(&n.to_le_bytes());
        zl[4..8].copy_from_slice(&14u32.to_le_bytes());
        assert_eq!(collect_zl(&zl).unwrap(), [&b"2"[..], b"5", b"Hello World"]);
        for cut in 0..zl.len() {
            assert!(collect_zl(&zl[..cut]).is_err());
        }
    }

    #[test]
    fn zipmap_from_the_redis_docs() {
        let zm = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff";
        let mut pairs = Vec::new();
        zipmap_decode(zm, |k, v| {
            pairs.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            pairs,
            [
                (b"foo".to_vec(), b"bar".to_vec()),
                (b"hello".to_vec(), b"world".to_vec())
            ]
        );
        for cut in 0..zm.len() {
            assert!(zipmap_decode(&zm[..cut], |_, _| Ok(())).is_err());
        }
    }
}
