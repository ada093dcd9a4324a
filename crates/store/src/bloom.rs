//! Scalable Bloom filters, laid out as RedisBloom's (`MBbloom--` type) so that BF.* replies,
//! BF.SCANDUMP chunks and RDB values match it byte for byte.
//!
//! A filter is a chain of links. Each link is a classic Bloom filter sized for `entries`
//! items at error rate `error` (`bpe = -ln(error) / ln(2)^2` bits per entry, `ceil(ln 2 *
//! bpe)` hash functions, the bit count rounded up to whole 64-bit words). Items go into the
//! newest link; when it holds `entries` items a new link is added with `growth` times the
//! capacity and half the error rate, so the chain's overall false-positive rate stays below
//! the requested one. A lookup checks every link.
//!
//! Bit positions come from two 64-bit MurmurHash64A values `a` and `b` of the item
//! (Kirsch–Mitzenmacher double hashing: the i-th position is `a + i * b`), or from the 32-bit
//! MurmurHash2 for filters created by old RedisBloom versions without the `FORCE64` option.

/// Option bit: the bit count is not rounded to a power of two (every filter flowkv creates).
pub const OPT_NOROUND: u32 = 1;
/// Option bit: `entries` given to the link constructor is a bit count (old files only).
pub const OPT_ENTS_IS_BITS: u32 = 2;
/// Option bit: 64-bit hashing (every filter flowkv creates).
pub const OPT_FORCE64: u32 = 4;
/// Option bit: the filter never adds links; inserting into a full one fails.
pub const OPT_NO_SCALING: u32 = 8;
const ALL_OPTIONS: u32 = OPT_NOROUND | OPT_ENTS_IS_BITS | OPT_FORCE64 | OPT_NO_SCALING;

/// Each new link's error rate is this fraction of the previous one's.
const ERROR_TIGHTENING: f64 = 0.5;
/// ln(2) and ln(2)², with RedisBloom's (truncated) digits: they decide sizes and hash
/// counts, which must match its own exactly.
#[allow(clippy::approx_constant)]
const LN2: f64 = 0.693147180559945;
const LN2_SQUARED: f64 = 0.480453013918201;

/// The largest bit array one link may have (512 MiB, Redis's largest string): a client
/// asking for an absurd capacity or error rate gets an error instead of exhausting memory.
pub const MAX_LINK_BYTES: u64 = 512 << 20;

/// Bytes RedisBloom counts for its chain header and for each link (`sizeof(SBChain)`,
/// `sizeof(SBLink)` on 64-bit builds): BF.INFO's "Size" adds the bit arrays to these.
const CHAIN_OVERHEAD: u64 = 32;
const LINK_OVERHEAD: u64 = 64;

/// Why a filter could not be created or extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BloomError {
    /// Capacity or error rate out of range.
    Invalid,
    /// The link would be larger than [`MAX_LINK_BYTES`].
    TooLarge,
}

/// One Bloom filter of the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// Items it is sized for.
    pub entries: u64,
    /// Its target false-positive rate.
    pub error: f64,
    pub hashes: u32,
    /// Bits per entry.
    pub bpe: f64,
    /// Bits in `bits_array` (a multiple of 64), used when `n2` is 0.
    pub bits: u64,
    /// Nonzero for old filters whose bit count is `1 << n2`.
    pub n2: u8,
    /// The bit array; bit `x` is bit `x % 8` of byte `x / 8`.
    pub bytes: Vec<u8>,
    /// Items added to this link.
    pub size: u64,
}

/// A scalable Bloom filter (RedisBloom's `SBChain`).
#[derive(Clone, Debug, PartialEq)]
pub struct BloomValue {
    /// Items added (each counted once, when it set a new bit).
    pub size: u64,
    /// `OPT_*` bits.
    pub options: u32,
    /// Capacity factor of each new link.
    pub growth: u32,
    pub links: Vec<Link>,
}

/// The two hash values an item's bit positions derive from.
#[derive(Clone, Copy)]
pub struct Hash {
    a: u64,
    b: u64,
}

/// MurmurHash64A (Austin Appleby, public domain), as RedisBloom seeds it.
fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^ (h >> R)
}

/// MurmurHash2, 32-bit (Austin Appleby, public domain), for filters without `FORCE64`.
fn murmur2(data: &[u8], seed: u32) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h = seed ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes(c.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// `-ln(error) / ln(2)²`: bits per entry for a target error rate.
fn bits_per_entry(error: f64) -> f64 {
    (error.ln() / LN2_SQUARED).abs()
}

impl Link {
    /// A link for `entries` items at `error` (RedisBloom's non-rounding sizing).
    pub fn new(entries: u64, error: f64) -> Result<Link, BloomError> {
        if entries < 1 || !(error > 0.0 && error < 1.0) {
            return Err(BloomError::Invalid);
        }
        let bpe = bits_per_entry(error);
        let raw = ((entries as f64) * bpe) as u64;
        let bits = raw.max(1);
        let bytes = bits.div_ceil(64).saturating_mul(8);
        if bytes > MAX_LINK_BYTES {
            return Err(BloomError::TooLarge);
        }
        Ok(Link {
            entries,
            error,
            hashes: (LN2 * bpe).ceil() as u32,
            bpe,
            bits: bytes * 8,
            n2: 0,
            bytes: vec![0; bytes as usize],
            size: 0,
        })
    }

    /// The number of bit positions the hash values index into.
    #[inline]
    fn modulus(&self) -> u64 {
        if self.n2 > 0 {
            1u64 << self.n2
        } else {
            self.bits
        }
    }

    /// True if every bit of the item is set.
    fn check(&self, h: Hash) -> bool {
        let m = self.modulus();
        (0..u64::from(self.hashes)).all(|i| {
            let x = h.a.wrapping_add(i.wrapping_mul(h.b)) % m;
            self.bytes[(x >> 3) as usize] & (1 << (x & 7)) != 0
        })
    }

    /// Sets the item's bits; true if any was unset (the item is new to this link).
    fn add(&mut self, h: Hash) -> bool {
        let m = self.modulus();
        let mut new = false;
        for i in 0..u64::from(self.hashes) {
            let x = h.a.wrapping_add(i.wrapping_mul(h.b)) % m;
            let byte = &mut self.bytes[(x >> 3) as usize];
            let mask = 1 << (x & 7);
            new |= *byte & mask == 0;
            *byte |= mask;
        }
        new
    }

    /// RedisBloom's consistency checks on a link read from a file or a dump header.
    pub fn is_valid(&self) -> bool {
        let power_ok = self.n2 == 0 || (self.n2 <= 63 && self.bits >= 1u64 << self.n2);
        self.error > 0.0
            && self.error < 1.0
            && self.n2 <= 63
            && power_ok
            && self.bits != 0
            && self.bits == self.bytes.len() as u64 * 8
            && f64::from(self.hashes) == (LN2 * self.bpe).ceil()
    }
}

impl BloomValue {
    /// A new filter for `capacity` items at `error`: 64-bit hashing, no rounding, and (when
    /// scaling) the first link at half the error rate so the whole chain stays within it.
    pub fn new(capacity: u64, error: f64, growth: u32, scaling: bool) -> Result<Self, BloomError> {
        let mut options = OPT_NOROUND | OPT_FORCE64;
        let tightening = if scaling {
            ERROR_TIGHTENING
        } else {
            options |= OPT_NO_SCALING;
            1.0
        };
        Ok(BloomValue {
            size: 0,
            options,
            growth,
            links: vec![Link::new(capacity, error * tightening)?],
        })
    }

    /// True if the filter never grows.
    pub fn is_scaling(&self) -> bool {
        self.options & OPT_NO_SCALING == 0
    }

    /// The hash values of `item` for this filter's hash width.
    pub fn hash(&self, item: &[u8]) -> Hash {
        if self.options & OPT_FORCE64 != 0 {
            let a = murmur64a(item, 0xc6a4_a793_5bd1_e995);
            Hash {
                a,
                b: murmur64a(item, a),
            }
        } else {
            let a = murmur2(item, 0x9747_b28c);
            Hash {
                a: u64::from(a),
                b: u64::from(murmur2(item, a)),
            }
        }
    }

    /// True if the item may have been added (false positives at the error rate, never a
    /// false negative).
    pub fn contains(&self, item: &[u8]) -> bool {
        let h = self.hash(item);
        self.links.iter().rev().any(|l| l.check(h))
    }

    /// Adds an item: `Ok(true)` if it was new, `Ok(false)` if it (or a collision) was there.
    /// A full non-scaling filter is `Err(None)`; a link that can't be added is
    /// `Err(Some(_))`.
    pub fn add(&mut self, item: &[u8]) -> Result<bool, Option<BloomError>> {
        let h = self.hash(item);
        if self.links.iter().rev().any(|l| l.check(h)) {
            return Ok(false);
        }
        let last = self.links.last().expect("a filter has at least one link");
        if last.size >= last.entries {
            if !self.is_scaling() {
                return Err(None);
            }
            let entries = last.entries.saturating_mul(u64::from(self.growth));
            let link = Link::new(entries, last.error * ERROR_TIGHTENING).map_err(Some)?;
            self.links.push(link);
        }
        let cur = self
            .links
            .last_mut()
            .expect("a filter has at least one link");
        let new = cur.add(h);
        if new {
            cur.size += 1;
            self.size += 1;
        }
        Ok(new)
    }

    /// Total capacity of all links (BF.INFO "Capacity").
    pub fn capacity(&self) -> u64 {
        self.links.iter().map(|l| l.entries).sum()
    }

    /// The size RedisBloom reports (BF.INFO "Size"): its structure sizes plus the bit arrays.
    pub fn reported_size(&self) -> u64 {
        CHAIN_OVERHEAD
            + self
                .links
                .iter()
                .map(|l| LINK_OVERHEAD + l.bytes.len() as u64)
                .sum::<u64>()
    }

    /// Heap bytes owned (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.links.capacity() * std::mem::size_of::<Link>()
            + self.links.iter().map(|l| l.bytes.capacity()).sum::<usize>()
    }

    /// RedisBloom's chain checks: known options, and item counts that add up.
    pub fn is_valid(&self) -> bool {
        self.options & !ALL_OPTIONS == 0
            && !self.links.is_empty()
            && self.links.iter().all(Link::is_valid)
            && self
                .links
                .iter()
                .try_fold(0u64, |t, l| t.checked_add(l.size))
                == Some(self.size)
    }

    /// BF.SCANDUMP's header (iterator 1): the chain and link parameters, packed little-endian
    /// as RedisBloom lays them out.
    pub fn dump_header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + LINK_HEADER_LEN * self.links.len());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.links.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.options.to_le_bytes());
        out.extend_from_slice(&self.growth.to_le_bytes());
        for l in &self.links {
            out.extend_from_slice(&(l.bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&l.bits.to_le_bytes());
            out.extend_from_slice(&l.size.to_le_bytes());
            out.extend_from_slice(&l.error.to_le_bytes());
            out.extend_from_slice(&l.bpe.to_le_bytes());
            out.extend_from_slice(&l.hashes.to_le_bytes());
            out.extend_from_slice(&l.entries.to_le_bytes());
            out.push(l.n2);
        }
        out
    }

    /// A filter with zeroed bit arrays from a [`BloomValue::dump_header`]; `None` if the
    /// header is malformed or asks for a link larger than [`MAX_LINK_BYTES`].
    pub fn from_dump_header(buf: &[u8]) -> Option<BloomValue> {
        let mut r = Cursor(buf);
        let size = r.u64()?;
        let n = r.u32()? as usize;
        let options = r.u32()?;
        let growth = r.u32()?;
        if n == 0 || buf.len() != HEADER_LEN + LINK_HEADER_LEN * n {
            return None;
        }
        let mut links = Vec::with_capacity(n);
        for _ in 0..n {
            let nbytes = r.u64()?;
            let bits = r.u64()?;
            let lsize = r.u64()?;
            let error = f64::from_le_bytes(r.take()?);
            let bpe = f64::from_le_bytes(r.take()?);
            let hashes = r.u32()?;
            let entries = r.u64()?;
            let n2 = r.take::<1>()?[0];
            if nbytes > MAX_LINK_BYTES || bits != nbytes * 8 {
                return None;
            }
            links.push(Link {
                entries,
                error,
                hashes,
                bpe,
                bits,
                n2,
                bytes: vec![0; nbytes as usize],
                size: lsize,
            });
        }
        let bf = BloomValue {
            size,
            options,
            growth,
            links,
        };
        bf.is_valid().then_some(bf)
    }

    /// The BF.SCANDUMP chunk at iterator `iter` (1 + a byte offset into the links' bit
    /// arrays laid end to end): the bytes from there to the end of that link, at most
    /// `max` of them. `None` once past the end.
    pub fn chunk_at(&self, iter: u64, max: usize) -> Option<&[u8]> {
        let (li, off) = self.locate(iter.checked_sub(1)?)?;
        let bytes = &self.links[li].bytes[off..];
        Some(&bytes[..bytes.len().min(max)])
    }

    /// BF.LOADCHUNK: copies `data` to where BF.SCANDUMP took it from; `iter` is the iterator
    /// BF.SCANDUMP returned with it (the position just past the chunk).
    pub fn load_chunk(&mut self, iter: u64, data: &[u8]) -> Result<(), &'static str> {
        let start = iter
            .checked_sub(data.len() as u64 + 1)
            .filter(|_| iter > 0)
            .ok_or("ERR received bad data")?;
        let (li, off) = self
            .locate(start)
            .ok_or("ERR invalid offset - no link found")?;
        let dst = &mut self.links[li].bytes[off..];
        if data.len() > dst.len() {
            return Err("ERR invalid chunk - Too big for current filter");
        }
        dst[..data.len()].copy_from_slice(data);
        Ok(())
    }

    /// The link and offset of byte `pos` of the concatenated bit arrays.
    fn locate(&self, mut pos: u64) -> Option<(usize, usize)> {
        for (i, l) in self.links.iter().enumerate() {
            let n = l.bytes.len() as u64;
            if pos < n {
                return Some((i, pos as usize));
            }
            pos -= n;
        }
        None
    }
}

/// Bytes of the dump header before the links, and per link.
const HEADER_LEN: usize = 20;
const LINK_HEADER_LEN: usize = 53;

/// Reads little-endian fields off the front of a slice.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur_matches_reference_vectors() {
        // Computed with RedisBloom's C MurmurHash64A_Bloom and MurmurHash2, seeded as it
        // seeds them.
        let cases: [(&[u8], u64, u64, u32); 4] = [
            (b"", 1923352212695860590, 13537199645396948295, 275646681),
            (b"a", 4797124023827371274, 9122976111997029393, 2731586172),
            (
                b"hello world",
                13468290891533438433,
                11944398893268354102,
                1221641059,
            ),
            (
                b"0123456789abcdefXYZ",
                10868097513959576068,
                5315835009040981796,
                733427488,
            ),
        ];
        for (s, a, b, m2) in cases {
            let h = murmur64a(s, 0xc6a4_a793_5bd1_e995);
            assert_eq!((h, murmur64a(s, h)), (a, b));
            assert_eq!(murmur2(s, 0x9747_b28c), m2);
        }
    }

    #[test]
    fn sizes_match_redisbloom() {
        // BF.RESERVE k 0.01 100 in RedisBloom: 1 link, capacity 100, Size 240.
        let bf = BloomValue::new(100, 0.01, 2, true).unwrap();
        assert_eq!(bf.capacity(), 100);
        assert_eq!(bf.reported_size(), 240);
        assert_eq!(bf.links[0].hashes, 8);
        assert!(bf.is_valid());
    }

    #[test]
    fn scales_and_never_forgets() {
        let mut bf = BloomValue::new(10, 0.01, 2, true).unwrap();
        for i in 0..1000u32 {
            bf.add(&i.to_le_bytes()).unwrap();
        }
        assert!(bf.links.len() > 3);
        assert!((0..1000u32).all(|i| bf.contains(&i.to_le_bytes())));
        let mut fixed = BloomValue::new(5, 0.01, 2, false).unwrap();
        let results: Vec<_> = (0..10u32).map(|i| fixed.add(&i.to_le_bytes())).collect();
        assert!(results.contains(&Err(None)));
    }

    #[test]
    fn dump_header_and_chunks_round_trip() {
        let mut bf = BloomValue::new(50, 0.001, 4, true).unwrap();
        for i in 0..300u32 {
            bf.add(&i.to_le_bytes()).unwrap();
        }
        let mut copy = BloomValue::from_dump_header(&bf.dump_header()).unwrap();
        let mut iter = 1;
        while let Some(chunk) = bf.chunk_at(iter, 7) {
            iter += chunk.len() as u64;
            copy.load_chunk(iter, chunk).unwrap();
        }
        assert_eq!(copy, bf);
        assert!(BloomValue::from_dump_header(b"short").is_none());
    }
}
