//! LZF, the compression RDB uses for strings.
//!
//! Decompression is the `lzf` crate's. Compression is a small greedy LZF encoder here: the
//! crate's allocates and zeroes a 512 KB hash table on every call, which costs ~13 µs per
//! string and dominated saving datasets of many short values. This one keeps a 64 KB table
//! per thread and never clears it: a stale entry is only a hint, and a hint is used only
//! after the bytes it points at are checked, so any match it yields is a real one.
//! The output is plain LZF (literal runs of up to 32 bytes, back references of 3-264 bytes
//! up to 8 KB back), which Redis's liblzf decodes.

use std::cell::RefCell;

use crate::error::{corrupt, Result};

/// The most a valid LZF stream can expand: a back reference of up to 264 bytes costs 3
/// bytes of input, so no stream expands more than 88 times (plus a little slack). Longer
/// claimed lengths are corrupt and are refused before anything is allocated.
const MAX_RATIO: usize = 90;

const HASH_BITS: u32 = 14;
const MAX_LIT: usize = 32;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = 264;

thread_local! {
    static TABLE: RefCell<Vec<u32>> = RefCell::new(vec![0; 1 << HASH_BITS]);
}

fn hash(b: &[u8]) -> usize {
    let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
    (v.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
}

fn push_literals(out: &mut Vec<u8>, lit: &[u8]) {
    for chunk in lit.chunks(MAX_LIT) {
        out.push((chunk.len() - 1) as u8);
        out.extend_from_slice(chunk);
    }
}

/// `data` compressed, if that gives at most `max_out` bytes.
pub fn compress(data: &[u8], max_out: usize) -> Option<Vec<u8>> {
    if data.len() < 4 || data.len() > u32::MAX as usize {
        return None;
    }
    TABLE.with(|t| {
        let mut table = t.borrow_mut();
        let mut out = Vec::with_capacity(max_out.min(data.len()));
        let n = data.len();
        let (mut ip, mut lit) = (0usize, 0usize);
        while ip + 2 < n {
            if out.len() > max_out {
                return None;
            }
            let h = hash(&data[ip..]);
            let cand = table[h] as usize;
            table[h] = ip as u32;
            let usable =
                cand < ip && ip - cand <= MAX_OFF && data[cand..cand + 3] == data[ip..ip + 3];
            if !usable {
                ip += 1;
                continue;
            }
            let mut len = 3;
            while ip + len < n && len < MAX_REF && data[cand + len] == data[ip + len] {
                len += 1;
            }
            push_literals(&mut out, &data[lit..ip]);
            let off = ip - cand - 1;
            let l = len - 2;
            if l < 7 {
                out.push(((l << 5) | (off >> 8)) as u8);
            } else {
                out.push(((7 << 5) | (off >> 8)) as u8);
                out.push((l - 7) as u8);
            }
            out.push(off as u8);
            ip += len;
            lit = ip;
        }
        push_literals(&mut out, &data[lit..]);
        (out.len() <= max_out).then_some(out)
    })
}

/// Decompresses `data`, which must expand to exactly `len` bytes.
pub fn decompress(data: &[u8], len: usize) -> Result<Vec<u8>> {
    if len > data.len().saturating_mul(MAX_RATIO).saturating_add(64) {
        return Err(corrupt("LZF length out of range"));
    }
    match ::lzf::decompress(data, len) {
        Ok(v) if v.len() == len => Ok(v),
        _ => Err(corrupt("invalid LZF data")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compresses_repetition_and_round_trips() {
        let data = b"abcd".repeat(500);
        let c = compress(&data, data.len() - 4).unwrap();
        assert!(c.len() < 40, "{}", c.len());
        assert_eq!(decompress(&c, data.len()).unwrap(), data);
        // The crate's own encoder agrees on the format.
        let theirs = ::lzf::compress(&data).unwrap();
        assert_eq!(decompress(&theirs, data.len()).unwrap(), data);
        assert!(compress(b"abcdefghijklmnopqrstuvwxyz", 22).is_none());
    }

    proptest! {
        #[test]
        fn any_input_round_trips(data in prop::collection::vec(0u8..4, 4..3000), noise in prop::collection::vec(any::<u8>(), 0..500)) {
            for input in [&data, &noise] {
                if let Some(c) = compress(input, input.len() + input.len() / 16 + 8) {
                    prop_assert_eq!(&decompress(&c, input.len()).unwrap(), input);
                }
            }
        }
    }
}
