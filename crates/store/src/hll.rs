//! HyperLogLog values in Redis's exact byte representation, so that an HLL built here and one
//! built by Redis 7.0 are the same string (GET/SET, DUMP/RESTORE and RDB files move freely
//! between the two).
//!
//! Layout: a 16-byte header — `"HYLL"`, an encoding byte (0 dense, 1 sparse), 3 unused bytes
//! and the cached cardinality, 8 bytes little-endian whose top bit set means "stale" — then
//! the registers. 16384 registers (P = 14 index bits, Q = 50 bits left for the run of
//! zeroes), in one of two encodings:
//! - dense: 6 bits per register, least significant bits first, 12288 bytes;
//! - sparse: run-length opcodes — ZERO `00xxxxxx` (1..=64 zero registers), XZERO
//!   `01xxxxxx yyyyyyyy` (1..=16384 zero registers), VAL `1vvvvvxx` (1..=4 registers of value
//!   1..=32). A sparse HLL becomes dense when a register needs a value above 32 or the string
//!   would grow past `hll-sparse-max-bytes`.
//!
//! The sparse edit (split an opcode, then merge equal neighbours in a small window) follows
//! Redis step by step: the resulting bytes depend on the order of edits, and byte equality
//! with Redis is the point. The estimator is Redis 7.0's, from Ertl's "New cardinality
//! estimation algorithms for HyperLogLog sketches" (register histogram, sigma and tau).

/// Header bytes before the registers.
pub const HDR_SIZE: usize = 16;
/// Bits of the hash that select the register.
const P: u32 = 14;
/// Bits of the hash left for the run of zeroes.
const Q: usize = 64 - P as usize;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
/// Bits per dense register.
const BITS: usize = 6;
/// Largest value a dense register holds.
const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Length of a dense HLL string.
pub const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * BITS).div_ceil(8);
/// Encoding byte of a dense HLL.
const DENSE: u8 = 0;
/// Encoding byte of a sparse HLL.
const SPARSE: u8 = 1;
/// Seed of the element hash (Redis's, so registers match).
const SEED: u64 = 0xadc8_3b19;
/// Largest register value a sparse VAL opcode holds.
const VAL_MAX_VALUE: u8 = 32;
/// Most registers one VAL opcode covers.
const VAL_MAX_LEN: usize = 4;
/// Most registers one ZERO opcode covers.
const ZERO_MAX_LEN: usize = 64;
/// Most registers one XZERO opcode covers.
const XZERO_MAX_LEN: usize = 16384;
/// Byte offset of the cached cardinality's top byte, whose high bit marks it stale.
const CARD_TOP: usize = 15;
/// 0.5 / ln(2): the estimator's alpha for an infinite number of registers.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The representation of a valid HLL string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Dense,
    Sparse,
}

impl Encoding {
    /// The name PFDEBUG ENCODING reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Dense => "dense",
            Encoding::Sparse => "sparse",
        }
    }
}

/// Why a string can't be used as an HLL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HllError {
    /// Not an HLL at all: too short, wrong magic, unknown encoding or a dense one of the
    /// wrong length.
    NotHll,
    /// The header is fine but the sparse opcodes don't cover exactly 16384 registers.
    Corrupt,
}

impl HllError {
    /// The error line Redis replies with.
    pub fn message(self) -> &'static str {
        match self {
            HllError::NotHll => "WRONGTYPE Key is not a valid HyperLogLog string value.",
            HllError::Corrupt => "INVALIDOBJ Corrupted HLL object detected",
        }
    }
}

/// Checks the header of a string used as an HLL (the opcodes are checked as they are read).
pub fn check(s: &[u8]) -> Result<Encoding, HllError> {
    if s.len() < HDR_SIZE || &s[..4] != b"HYLL" {
        return Err(HllError::NotHll);
    }
    match s[4] {
        DENSE if s.len() == DENSE_SIZE => Ok(Encoding::Dense),
        SPARSE => Ok(Encoding::Sparse),
        _ => Err(HllError::NotHll),
    }
}

/// A new, empty HLL: sparse, one XZERO opcode, cached cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR_SIZE + 2);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.resize(HDR_SIZE, 0);
    push_zeros(&mut v, REGISTERS);
    v
}

/// The cached cardinality, if it is not stale.
pub fn cached_card(s: &[u8]) -> Option<u64> {
    let card: [u8; 8] = s.get(8..HDR_SIZE)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

/// Stores a freshly computed cardinality in the header.
pub fn set_cached_card(s: &mut [u8], card: u64) {
    s[8..HDR_SIZE].copy_from_slice(&card.to_le_bytes());
}

/// Marks the cached cardinality stale (after registers changed).
pub fn invalidate_cache(s: &mut [u8]) {
    s[CARD_TOP] |= 0x80;
}

/// MurmurHash64A, endian-neutral (the 8-byte blocks are read little-endian), as Redis hashes
/// HLL elements.
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let blocks = key.chunks_exact(8);
    let tail = blocks.remainder();
    for b in blocks {
        let mut k = u64::from_le_bytes(b.try_into().unwrap_or_default());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the length of its `0…01` pattern (1..=Q+1).
pub fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit stops the run at Q+1, as the hash has only Q bits left.
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Dense register `i`.
fn dense_get(regs: &[u8], i: usize) -> u8 {
    let (byte, shift) = (i * BITS / 8, i * BITS % 8);
    let lo = u16::from(regs[byte]) >> shift;
    let hi = u16::from(regs.get(byte + 1).copied().unwrap_or(0)) << (8 - shift);
    ((lo | hi) as u8) & REGISTER_MAX
}

/// Sets dense register `i` to `v`.
fn dense_put(regs: &mut [u8], i: usize, v: u8) {
    let (byte, shift) = (i * BITS / 8, i * BITS % 8);
    let (m, v) = (u16::from(REGISTER_MAX), u16::from(v));
    regs[byte] = (u16::from(regs[byte]) & !(m << shift) | (v << shift)) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next = (u16::from(*next) & !(m >> (8 - shift)) | (v >> (8 - shift))) as u8;
    }
}

/// Raises dense register `i` to `count`; true if it changed.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

/// Calls `f` with each dense register value in order, four registers per three bytes.
fn dense_each(regs: &[u8], mut f: impl FnMut(usize, u8)) {
    for (n, c) in regs.chunks_exact(3).enumerate() {
        let (a, b, d) = (c[0], c[1], c[2]);
        f(4 * n, a & 63);
        f(4 * n + 1, (a >> 6 | b << 2) & 63);
        f(4 * n + 2, (b >> 4 | d << 4) & 63);
        f(4 * n + 3, d >> 2);
    }
}

/// One sparse opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    /// Registers covered.
    fn len(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    /// Bytes taken.
    fn size(self) -> usize {
        if matches!(self, Op::XZero(_)) {
            2
        } else {
            1
        }
    }

    /// Appends the opcode's bytes.
    fn push(self, out: &mut Vec<u8>) {
        match self {
            Op::Zero(n) => out.push((n - 1) as u8),
            Op::XZero(n) => out.extend_from_slice(&[0x40 | ((n - 1) >> 8) as u8, (n - 1) as u8]),
            Op::Val(v, n) => out.push(val_byte(v, n)),
        }
    }
}

/// The VAL opcode byte for `n` registers of value `v`.
fn val_byte(v: u8, n: usize) -> u8 {
    0x80 | ((v - 1) << 2) | (n - 1) as u8
}

/// The opcode at byte `p`. A truncated XZERO reads a 0 for its missing byte (what Redis
/// finds there: the string's terminator), so corrupt input decodes as it does in Redis.
fn op_at(s: &[u8], p: usize) -> Op {
    let b = s[p];
    match b & 0xc0 {
        0x00 => Op::Zero(usize::from(b & 0x3f) + 1),
        0x40 => {
            let lo = s.get(p + 1).copied().unwrap_or(0);
            Op::XZero((usize::from(b & 0x3f) << 8 | usize::from(lo)) + 1)
        }
        _ => Op::Val(((b >> 2) & 0x1f) + 1, usize::from(b & 3) + 1),
    }
}

/// Iterates the opcodes of a sparse HLL string with their byte offsets.
fn ops(s: &[u8]) -> impl Iterator<Item = (usize, Op)> + '_ {
    let mut p = HDR_SIZE;
    std::iter::from_fn(move || {
        (p < s.len()).then(|| {
            let op = op_at(s, p);
            let at = p;
            p += op.size();
            (at, op)
        })
    })
}

/// Calls `f(first, count, value)` for each run of non-zero registers of a sparse HLL;
/// `Corrupt` unless the opcodes cover exactly 16384 registers.
fn sparse_runs(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), HllError> {
    let mut idx = 0;
    for (_, op) in ops(s) {
        if let Op::Val(v, n) = op {
            if idx + n > REGISTERS {
                return Err(HllError::Corrupt);
            }
            f(idx, n, v);
        }
        idx += op.len();
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(HllError::Corrupt)
    }
}

/// Appends opcodes for `n` zero registers (XZERO runs of at most 16384).
fn push_zeros(out: &mut Vec<u8>, mut n: usize) {
    while n > 0 {
        let run = n.min(XZERO_MAX_LEN);
        Op::XZero(run).push(out);
        n -= run;
    }
}

/// Appends one opcode for a zero run inside a split: ZERO if it fits, else XZERO.
fn push_zero_run(out: &mut Vec<u8>, n: usize) {
    if n > ZERO_MAX_LEN {
        Op::XZero(n).push(out);
    } else {
        Op::Zero(n).push(out);
    }
}

/// Converts a sparse HLL to dense in place; false if it already was dense. The header
/// (cached cardinality and unused bytes included) is kept, as Redis keeps it.
pub fn to_dense(buf: &mut Vec<u8>) -> Result<bool, HllError> {
    if buf[4] == DENSE {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR_SIZE].copy_from_slice(&buf[..HDR_SIZE]);
    dense[4] = DENSE;
    let regs = &mut dense[HDR_SIZE..];
    sparse_runs(buf, |first, n, v| {
        (first..first + n).for_each(|i| dense_put(regs, i, v));
    })?;
    *buf = dense;
    Ok(true)
}

/// Raises register `index` to `count` in a valid HLL string; true if it changed. A sparse
/// HLL is promoted to dense when `count` exceeds what VAL holds or the edit would grow the
/// string past `sparse_max` bytes.
pub fn set_register(
    buf: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max: usize,
) -> Result<bool, HllError> {
    match buf[4] {
        DENSE => Ok(dense_raise(&mut buf[HDR_SIZE..], index, count)),
        SPARSE => sparse_set(buf, index, count, sparse_max),
        _ => Err(HllError::Corrupt),
    }
}

/// Adds an element; true if a register changed (the cache is then stale: see
/// [`invalidate_cache`]).
pub fn add(buf: &mut Vec<u8>, ele: &[u8], sparse_max: usize) -> Result<bool, HllError> {
    let (index, count) = pattern(ele);
    set_register(buf, index, count, sparse_max)
}

/// The sparse edit: find the opcode covering `index`, split it around the new value,
/// then merge equal VAL neighbours.
fn sparse_set(
    buf: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max: usize,
) -> Result<bool, HllError> {
    if count > VAL_MAX_VALUE {
        return promote(buf, index, count);
    }
    // Find the opcode at `p` covering registers first..first+span, and the one before it.
    let (mut p, mut first, mut prev) = (HDR_SIZE, 0, None);
    let op = loop {
        if p >= buf.len() {
            return Err(HllError::Corrupt);
        }
        let op = op_at(buf, p);
        if index < first + op.len() {
            break op;
        }
        prev = Some(p);
        p += op.size();
        first += op.len();
    };
    let last = first + op.len() - 1;
    match op {
        Op::Val(old, _) if old >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => buf[p] = val_byte(count, 1),
        _ => {
            let mut seq = Vec::with_capacity(5);
            match op {
                Op::Val(cur, _) => {
                    if index != first {
                        Op::Val(cur, index - first).push(&mut seq);
                    }
                    Op::Val(count, 1).push(&mut seq);
                    if index != last {
                        Op::Val(cur, last - index).push(&mut seq);
                    }
                }
                _ => {
                    if index != first {
                        push_zero_run(&mut seq, index - first);
                    }
                    Op::Val(count, 1).push(&mut seq);
                    if index != last {
                        push_zero_run(&mut seq, last - index);
                    }
                }
            }
            if seq.len() > op.size() && buf.len() + seq.len() - op.size() > sparse_max {
                return promote(buf, index, count);
            }
            let end = (p + op.size()).min(buf.len());
            buf.splice(p..end, seq);
        }
    }
    merge_vals(buf, prev.unwrap_or(HDR_SIZE));
    invalidate_cache(buf);
    Ok(true)
}

/// After an edit, merges adjacent VAL opcodes of equal value (while their lengths fit one
/// opcode), looking at no more than five opcodes from `p`, as Redis does.
fn merge_vals(buf: &mut Vec<u8>, mut p: usize) {
    for _ in 0..5 {
        if p >= buf.len() {
            break;
        }
        let op = op_at(buf, p);
        let Op::Val(v1, n1) = op else {
            p += op.size();
            continue;
        };
        if let Some(Op::Val(v2, n2)) = buf.get(p + 1).map(|_| op_at(buf, p + 1)) {
            if v1 == v2 && n1 + n2 <= VAL_MAX_LEN {
                buf[p + 1] = val_byte(v1, n1 + n2);
                buf.remove(p);
                continue;
            }
        }
        p += 1;
    }
}

/// Promotes a sparse HLL to dense and raises the register there.
fn promote(buf: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    to_dense(buf)?;
    Ok(dense_raise(&mut buf[HDR_SIZE..], index, count))
}

/// Raises each of `max` to the matching register of a valid HLL string (union).
pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), HllError> {
    if s[4] == DENSE {
        dense_each(&s[HDR_SIZE..], |i, v| max[i] = max[i].max(v));
        Ok(())
    } else {
        sparse_runs(s, |first, n, v| {
            max[first..first + n]
                .iter_mut()
                .for_each(|m| *m = (*m).max(v));
        })
    }
}

/// The estimated cardinality of a valid HLL string (ignoring the cache).
pub fn count(s: &[u8]) -> Result<u64, HllError> {
    let mut histo = [0u64; 64];
    if s[4] == DENSE {
        dense_each(&s[HDR_SIZE..], |_, v| histo[usize::from(v)] += 1);
    } else {
        let mut nonzero = 0;
        sparse_runs(s, |_, n, v| {
            histo[usize::from(v)] += n as u64;
            nonzero += n;
        })?;
        histo[0] = (REGISTERS - nonzero) as u64;
    }
    Ok(estimate(&histo))
}

/// The estimated cardinality of plain byte registers (a union built by [`merge_into`]).
pub fn count_registers(regs: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0u64; 64];
    for &r in regs {
        histo[usize::from(r & REGISTER_MAX)] += 1;
    }
    estimate(&histo)
}

/// Ertl's improved estimator from the histogram of register values.
fn estimate(histo: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// Ertl's sigma(x) = x + sum_k x^(2^k) 2^(k-1), summed until it stops changing.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// Ertl's tau(x), summed until it stops changing.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// All 16384 register values of a dense HLL string (PFDEBUG GETREG).
pub fn dense_registers(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0; REGISTERS];
    dense_each(&s[HDR_SIZE..], |i, v| out[i] = v);
    out
}

/// The opcodes of a sparse HLL string in PFDEBUG DECODE's notation: `z:len`, `Z:len`,
/// `v:value,len`, separated by spaces.
pub fn decode_sparse(s: &[u8]) -> String {
    let parts: Vec<String> = ops(s)
        .map(|(_, op)| match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        })
        .collect();
    parts.join(" ")
}

/// PFSELFTEST: checks that dense registers are independent of each other, and that sparse
/// and dense HLLs fed the same 10 million elements agree and stay within six standard errors
/// at every power of ten. `Err` holds the reply's error line.
pub fn self_test(rng: &mut impl rand::Rng, sparse_max: usize) -> Result<(), String> {
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..4].copy_from_slice(b"HYLL");
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = rng.gen::<u8>() & REGISTER_MAX;
            dense_put(&mut dense[HDR_SIZE..], i, *b);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let got = dense_get(&dense[HDR_SIZE..], i);
            if got != b {
                return Err(format!(
                    "TESTFAILED Register {i} should be {b} but is {got}"
                ));
            }
        }
    }
    dense[HDR_SIZE..].fill(0);
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let seed: u64 = rng.gen();
    let mut checkpoint: u64 = 1;
    let mismatch = |_: HllError| "TESTFAILED dense/sparse disagree".to_string();
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        let (index, run) = pattern(&ele);
        dense_raise(&mut dense[HDR_SIZE..], index, run);
        set_register(&mut sparse, index, run, sparse_max).map_err(mismatch)?;
        if j != checkpoint {
            continue;
        }
        if j < (sparse_max / 2) as u64 && sparse[4] != SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let card = count(&dense).map_err(mismatch)?;
        if card != count(&sparse).map_err(mismatch)? {
            return Err(mismatch(HllError::Corrupt));
        }
        let abserr = checkpoint.abs_diff(card);
        // A collision at 10 elements is likely enough to allow an error of 1 there.
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 3000;

    fn hll_of<'a>(elements: impl IntoIterator<Item = &'a [u8]>, dense: bool) -> Vec<u8> {
        let mut h = new_sparse();
        if dense {
            to_dense(&mut h).unwrap();
        }
        for e in elements {
            add(&mut h, e, MAX).unwrap();
        }
        h
    }

    #[test]
    fn patterns_match_redis() {
        // Register and run length Redis 7.0 reports (PFDEBUG DECODE) for single elements:
        // this pins MurmurHash64A, its seed and the index/run split.
        for (ele, want) in [
            (&b"a"[..], (12711, 2)),
            (b"hello", (9216, 1)),
            (b"", (5938, 2)),
            (b"12345678", (10579, 3)),
            (b"foobarbaz", (7560, 2)),
        ] {
            assert_eq!(pattern(ele), want, "{:?}", ele);
        }
    }

    #[test]
    fn empty_hll_layout() {
        let h = new_sparse();
        assert_eq!(&h[..], b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert_eq!(check(&h), Ok(Encoding::Sparse));
        assert_eq!(count(&h), Ok(0));
        assert_eq!(cached_card(&h), Some(0));
        assert_eq!(decode_sparse(&h), "Z:16384");
    }

    #[test]
    fn header_checks() {
        assert_eq!(check(b"HYLL"), Err(HllError::NotHll));
        let mut h = new_sparse();
        h[0] = b'X';
        assert_eq!(check(&h), Err(HllError::NotHll));
        let mut h = new_sparse();
        h[4] = 2;
        assert_eq!(check(&h), Err(HllError::NotHll));
        h[4] = DENSE;
        assert_eq!(check(&h), Err(HllError::NotHll));
        let mut h = new_sparse();
        to_dense(&mut h).unwrap();
        assert_eq!(check(&h), Ok(Encoding::Dense));
        assert_eq!(h.len(), DENSE_SIZE);
    }

    #[test]
    fn corrupt_sparse_detected() {
        let mut h = hll_of([&b"a"[..], b"b", b"c"], false);
        h.extend_from_slice(b"hello");
        assert_eq!(count(&h), Err(HllError::Corrupt));
        let mut max = [0; REGISTERS];
        assert_eq!(merge_into(&mut max, &h), Err(HllError::Corrupt));
        assert_eq!(to_dense(&mut h), Err(HllError::Corrupt));
        // Too few registers: an edit past the end finds no opcode.
        let mut short = new_sparse();
        short.truncate(HDR_SIZE);
        Op::Zero(10).push(&mut short);
        assert_eq!(
            set_register(&mut short, 100, 3, MAX),
            Err(HllError::Corrupt)
        );
    }

    #[test]
    fn sparse_split_and_merge() {
        let mut h = new_sparse();
        assert_eq!(set_register(&mut h, 0, 3, MAX), Ok(true));
        assert_eq!(decode_sparse(&h), "v:3,1 Z:16383");
        assert_eq!(set_register(&mut h, 0, 2, MAX), Ok(false));
        assert_eq!(set_register(&mut h, 1, 3, MAX), Ok(true));
        assert_eq!(decode_sparse(&h), "v:3,2 Z:16382");
        assert_eq!(set_register(&mut h, 100, 5, MAX), Ok(true));
        assert_eq!(decode_sparse(&h), "v:3,2 Z:98 v:5,1 Z:16283");
        assert_eq!(cached_card(&h), None);
        assert_eq!(set_register(&mut h, 16383, 33, MAX), Ok(true));
        assert_eq!(check(&h), Ok(Encoding::Dense));
        let regs = dense_registers(&h);
        assert_eq!((regs[0], regs[1], regs[2], regs[100]), (3, 3, 0, 5));
        assert_eq!(regs[16383], 33);
    }

    #[test]
    fn promotes_past_max_bytes() {
        let mut h = new_sparse();
        let mut i = 0;
        while check(&h) == Ok(Encoding::Sparse) {
            set_register(&mut h, i, 1, 40).unwrap();
            i += 7;
        }
        assert!(i < 100);
        assert_eq!(h.len(), DENSE_SIZE);
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8);
        }
        dense_each(&regs, |i, v| assert_eq!(v, (i % 64) as u8));
    }

    #[test]
    fn estimates_are_close() {
        let elems: Vec<Vec<u8>> = (0..20_000u32).map(|i| i.to_string().into_bytes()).collect();
        let h = hll_of(elems.iter().map(Vec::as_slice), false);
        let c = count(&h).unwrap() as f64;
        assert!((c - 20_000.0).abs() < 20_000.0 * 0.03, "{c}");
    }

    #[test]
    fn dense_put_leaves_neighbours_alone() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR_SIZE];
        dense_put(&mut regs, 5, 63);
        assert_eq!(
            (
                dense_get(&regs, 4),
                dense_get(&regs, 5),
                dense_get(&regs, 6)
            ),
            (0, 63, 0)
        );
        dense_put(&mut regs, 16383, 63);
        assert_eq!((dense_get(&regs, 16382), dense_get(&regs, 16383)), (0, 63));
    }

    proptest! {
        #[test]
        fn sparse_and_dense_agree(elems in proptest::collection::vec(any::<Vec<u8>>(), 0..300)) {
            let s = hll_of(elems.iter().map(Vec::as_slice), false);
            let d = hll_of(elems.iter().map(Vec::as_slice), true);
            prop_assert_eq!(count(&s).unwrap(), count(&d).unwrap());
            let mut converted = s.clone();
            to_dense(&mut converted).unwrap();
            prop_assert_eq!(&converted[HDR_SIZE..], &d[HDR_SIZE..]);
            let mut max = [0; REGISTERS];
            merge_into(&mut max, &s).unwrap();
            prop_assert_eq!(count_registers(&max), count(&s).unwrap());
        }

        #[test]
        fn merge_is_commutative(a in proptest::collection::vec(any::<u32>(), 0..200),
                                b in proptest::collection::vec(any::<u32>(), 0..200),
                                dense_a: bool) {
            let ha = hll_of(a.iter().map(|x| x.to_le_bytes()).collect::<Vec<_>>().iter().map(|x| &x[..]), dense_a);
            let hb = hll_of(b.iter().map(|x| x.to_le_bytes()).collect::<Vec<_>>().iter().map(|x| &x[..]), false);
            let (mut ab, mut ba) = ([0; REGISTERS], [0; REGISTERS]);
            merge_into(&mut ab, &ha).unwrap();
            merge_into(&mut ab, &hb).unwrap();
            merge_into(&mut ba, &hb).unwrap();
            merge_into(&mut ba, &ha).unwrap();
            prop_assert_eq!(ab, ba);
            let union = hll_of(a.iter().chain(&b).map(|x| x.to_le_bytes()).collect::<Vec<_>>().iter().map(|x| &x[..]), true);
            prop_assert_eq!(count_registers(&ab), count(&union).unwrap());
        }

        #[test]
        fn sparse_stays_well_formed(regs in proptest::collection::vec((0..REGISTERS, 1u8..=40), 0..400)) {
            let mut h = new_sparse();
            let mut expect = [0u8; REGISTERS];
            for (i, v) in regs {
                let changed = set_register(&mut h, i, v, MAX).unwrap();
                prop_assert_eq!(changed, v > expect[i]);
                expect[i] = expect[i].max(v);
            }
            let mut got = [0; REGISTERS];
            merge_into(&mut got, &h).unwrap();
            prop_assert_eq!(got, expect);
        }
    }
}
