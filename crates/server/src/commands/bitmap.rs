//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.
//!
//! Bitmaps are plain strings addressed bit by bit, most significant bit of each byte first.
//! Writes grow the string with zero bytes and edit it in place (keeping the TTL). Offsets are
//! bounded by proto-max-bulk-len bytes, as in Redis, so no command can allocate more.

use flowkv_protocol::Args;
use flowkv_store::num::parse_i64;
use flowkv_store::{Entry, Expire, Keys, Kind, Value};

use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::commands::string::{int_arg, max_string_len};
use crate::config::notify::{GENERIC, STRING};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;

pub static COMMANDS: &[Command] = &[
    Command::new("setbit", 4, Group::Bitmap)
        .flags(WRITE | DENYOOM)
        .acl(acl::BITMAP)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE)])
        .handler(setbit)
        .doc(
            "Sets or clears the bit at offset in the string value stored at key",
            "2.2.0",
            "O(1)",
        ),
    Command::new("getbit", 3, Group::Bitmap)
        .flags(READONLY | FAST)
        .acl(acl::BITMAP)
        .keys(1, 1, 1)
        .handler(getbit)
        .doc(
            "Returns the bit value at offset in the string value stored at key",
            "2.2.0",
            "O(1)",
        ),
    Command::new("bitcount", -2, Group::Bitmap)
        .flags(READONLY)
        .acl(acl::BITMAP)
        .keys(1, 1, 1)
        .handler(bitcount)
        .doc("Count set bits in a string", "2.6.0", "O(N)"),
    Command::new("bitpos", -3, Group::Bitmap)
        .flags(READONLY)
        .acl(acl::BITMAP)
        .keys(1, 1, 1)
        .handler(bitpos)
        .doc("Find first bit set or clear in a string", "2.8.7", "O(N)"),
    Command::new("bitop", -4, Group::Bitmap)
        .flags(WRITE | DENYOOM)
        .acl(acl::BITMAP)
        .keys(2, -1, 1)
        .key_specs(&[
            ks::key_at(2, ks::OW | ks::UPDATE),
            ks::spec(ks::RO | ks::ACCESS, ks::index(3), ks::range(-1, 1, 0)),
        ])
        .handler(bitop)
        .doc("Perform bitwise operations between strings", "2.6.0", "O(N)"),
    Command::new("bitfield", -2, Group::Bitmap)
        .flags(WRITE | DENYOOM)
        .acl(acl::BITMAP)
        .keys(1, 1, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::UPDATE | ks::VARIABLE_FLAGS)
                .notes("This command allows both access and modification of the key"),
        ])
        .handler(bitfield)
        .doc(
            "Perform arbitrary bitfield integer operations on strings",
            "3.2.0",
            "O(1) for each subcommand specified",
        ),
    Command::new("bitfield_ro", -2, Group::Bitmap)
        .flags(READONLY | FAST)
        .acl(acl::BITMAP)
        .keys(1, 1, 1)
        .handler(bitfield_ro)
        .doc(
            "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
            "6.0.0",
            "O(1) for each subcommand specified",
        ),
];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// Parses a bit offset. With `unit` (BITFIELD), `#n` means n fields of `unit` bits. The
/// offset must address a byte below proto-max-bulk-len.
fn bit_offset(arg: &[u8], unit: Option<u32>, max_bytes: u64) -> Result<u64, CmdError> {
    let err = || CmdError::msg(BAD_OFFSET);
    let (digits, mul) = match (arg.first(), unit) {
        (Some(b'#'), Some(bits)) => (&arg[1..], i64::from(bits)),
        _ => (arg, 1),
    };
    let off = parse_i64(digits)
        .and_then(|v| v.checked_mul(mul))
        .ok_or_else(err)?;
    if off < 0 || (off as u64 >> 3) >= max_bytes {
        return Err(err());
    }
    Ok(off as u64)
}

/// The bit at `pos` (0 past the end).
fn bit_at(s: &[u8], pos: u64) -> bool {
    s.get((pos >> 3) as usize)
        .is_some_and(|b| b & (0x80 >> (pos & 7)) != 0)
}

/// The string at `key` made long enough to hold bit `maxbit`, for in-place edits; created
/// (raw) if missing. Returns the buffer and whether the key was created or grown.
fn bits_for_write<'k>(
    keys: &'k mut Keys<'_, '_>,
    key: &[u8],
    maxbit: u64,
) -> Result<(&'k mut Vec<u8>, bool), CmdError> {
    let len = (maxbit >> 3) as usize + 1;
    let created = match keys.kind(key) {
        None => {
            let v = Value::RawStr(Box::new(vec![0; len]));
            keys.insert(Entry::new_value(key, v, None, 0));
            true
        }
        Some(k) if k != Kind::String => return Err(CmdError::WrongType),
        Some(_) => false,
    };
    let v = keys
        .write(key)
        .and_then(Entry::string_mut)
        .ok_or(CmdError::WrongType)?;
    let grown = v.len() < len;
    if grown {
        v.resize(len, 0);
    }
    Ok((v, created || grown))
}

/// SETBIT key offset 0|1: replies with the previous bit.
fn setbit(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let off = bit_offset(args.get(2), None, max_string_len(ctx))?;
    let on = match parse_i64(args.get(3)) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return Err(CmdError::msg("ERR bit is not an integer or out of range")),
    };
    let (old, changed) = {
        let mut keys = ctx.keys();
        let (v, grown) = bits_for_write(&mut keys, args.get(1), off)?;
        let (byte, mask) = ((off >> 3) as usize, 0x80u8 >> (off & 7));
        let old = v[byte] & mask != 0;
        if on {
            v[byte] |= mask;
        } else {
            v[byte] &= !mask;
        }
        (old, grown || old != on)
    };
    // Like Redis, count a change only if the key was created or grown or the bit flipped.
    if changed {
        notify(ctx, STRING, "setbit", args.get(1));
    }
    ctx.dirty += u64::from(changed);
    ctx.out.int(i64::from(old));
    Ok(())
}

fn getbit(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let off = bit_offset(args.get(2), None, max_string_len(ctx))?;
    let bit = match ctx.keys().read(args.get(1)) {
        None => false,
        Some(e) => bit_at(e.string().ok_or(CmdError::WrongType)?, off),
    };
    ctx.out.int(i64::from(bit));
    Ok(())
}

/// Parses `BYTE|BIT` (case-insensitive): true for BIT.
fn bit_unit(arg: &[u8]) -> Result<bool, CmdError> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Resolves a BITCOUNT/BITPOS range against a string of `len` bytes, in bits: negative
/// indexes count from the end, the end is clamped. `None` when empty.
fn bit_range(start: i64, end: i64, len: usize, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits { len as i64 * 8 } else { len as i64 };
    let fix = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let (start, end) = (fix(start), fix(end).min(total - 1));
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if in_bits {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    })
}

/// Set bits of `s` in the inclusive bit range.
fn count_bits(s: &[u8], first: u64, last: u64) -> u64 {
    let (a, b) = ((first >> 3) as usize, (last >> 3) as usize);
    let bytes = &s[a..=b];
    let (chunks, rest) = bytes.split_at(bytes.len() / 8 * 8);
    let mut n: u64 = chunks
        .chunks_exact(8)
        .map(|c| u64::from(u64::from_ne_bytes(c.try_into().unwrap_or_default()).count_ones()))
        .sum();
    n += rest.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
    // Take back the bits of the edge bytes that lie outside the range.
    let head = s[a] & !(0xFFu8 >> (first & 7));
    let tail = s[b] & (0x7Fu8 >> (last & 7));
    n - u64::from(head.count_ones()) - u64::from(tail.count_ones())
}

/// BITCOUNT key [start end [BYTE|BIT]]. A missing key is 0 whatever the arguments, as in
/// Redis, which looks the key up first.
fn bitcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let Some(e) = keys.read(args.get(1)) else {
        out.int(0);
        return Ok(());
    };
    let s = e.string().ok_or(CmdError::WrongType)?;
    let range = match args.len() {
        2 => bit_range(0, -1, s.len(), false),
        4 | 5 => {
            let start = int_arg(args.get(2))?;
            let end = int_arg(args.get(3))?;
            if start < 0 && end < 0 && start > end {
                None
            } else {
                let in_bits = args.len() == 5 && bit_unit(args.get(4))?;
                bit_range(start, end, s.len(), in_bits)
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    out.int(range.map_or(0, |(a, b)| count_bits(s, a, b)) as i64);
    Ok(())
}

/// The first bit equal to `bit` in the inclusive bit range of `s`.
fn find_bit(s: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let skip = if bit { 0x00 } else { 0xFF };
    let mut pos = first;
    while pos <= last {
        let i = (pos >> 3) as usize;
        if pos & 7 == 0 && pos + 7 <= last && s[i] == skip {
            // Skip whole bytes with nothing to find quickly.
            let end = ((last + 1) >> 3) as usize;
            let n = s[i..end].iter().position(|&b| b != skip).unwrap_or(end - i);
            pos += n as u64 * 8;
            continue;
        }
        if bit_at(s, pos) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// BITPOS key bit [start [end [BYTE|BIT]]]: the first 0 or 1 bit. Looking for 0 without an
/// explicit end treats the string as followed by zeros; with one, "none" is -1.
fn bitpos(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let bit = match int_arg(args.get(2))? {
        0 => false,
        1 => true,
        _ => return Err(CmdError::msg("ERR The bit argument must be 1 or 0.")),
    };
    let (mut keys, out) = ctx.keys_out();
    let Some(e) = keys.read(args.get(1)) else {
        out.int(if bit { -1 } else { 0 });
        return Ok(());
    };
    let s = e.string().ok_or(CmdError::WrongType)?;
    if args.len() > 6 {
        return Err(CmdError::Syntax);
    }
    let start = match args.try_get(3) {
        Some(a) => int_arg(a)?,
        None => 0,
    };
    let in_bits = match args.try_get(5) {
        Some(a) => bit_unit(a)?,
        None => false,
    };
    let end_given = args.len() >= 5;
    let end = if end_given { int_arg(args.get(4))? } else { -1 };
    let pos = match bit_range(start, end, s.len(), in_bits) {
        None => -1,
        Some((a, b)) => match find_bit(s, a, b, bit) {
            Some(p) => p as i64,
            None if !bit && !end_given => b as i64 + 1,
            None => -1,
        },
    };
    out.int(pos);
    Ok(())
}

/// BITOP AND|OR|XOR|NOT dest src...: stores the result (missing sources count as empty
/// strings, padded with zeros) and replies with its length; an empty result deletes dest.
fn bitop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    #[derive(PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = match args.get(1).to_ascii_lowercase().as_slice() {
        b"and" => Op::And,
        b"or" => Op::Or,
        b"xor" => Op::Xor,
        b"not" => Op::Not,
        _ => return Err(CmdError::Syntax),
    };
    if op == Op::Not && args.len() != 4 {
        return Err(CmdError::msg(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    let (changed, len) = {
        let mut keys = ctx.keys();
        let mut res: Vec<u8> = Vec::new();
        for (n, key) in args.iter().enumerate().skip(3) {
            let src = match keys.read(key) {
                None => &[][..],
                Some(e) => e.string().ok_or(CmdError::WrongType)?,
            };
            if n == 3 {
                res.extend_from_slice(src);
                continue;
            }
            // Bytes past a shorter operand's end are zeros: AND clears, OR/XOR keep the other.
            let common = res.len().min(src.len());
            for (r, &b) in res[..common].iter_mut().zip(src) {
                match op {
                    Op::And => *r &= b,
                    Op::Or => *r |= b,
                    Op::Xor => *r ^= b,
                    Op::Not => {}
                }
            }
            if op == Op::And {
                res[common..].fill(0);
                res.resize(res.len().max(src.len()), 0);
            } else {
                res.extend_from_slice(&src[common..]);
            }
        }
        if op == Op::Not {
            res.iter_mut().for_each(|b| *b = !*b);
        }
        let dest = args.get(2);
        let changed = if res.is_empty() {
            keys.delete(dest)
        } else {
            keys.set_string(dest, &res, Expire::Clear);
            true
        };
        (changed, res.len())
    };
    if changed {
        let (class, event) = if len == 0 {
            (GENERIC, "del")
        } else {
            (STRING, "set")
        };
        notify(ctx, class, event, args.get(2));
    }
    ctx.dirty += u64::from(changed);
    ctx.out.int(len as i64);
    Ok(())
}

/// BITFIELD overflow behaviour.
#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// One BITFIELD operation.
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// A parsed BITFIELD operation on an integer field.
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// Parses a field type: `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || {
        CmdError::msg(
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    match parse_i64(&arg[1..]) {
        Some(b @ 1..=64) if signed => Ok((true, b as u32)),
        Some(b @ 1..=63) if !signed => Ok((false, b as u32)),
        _ => Err(err()),
    }
}

/// Parses the BITFIELD operations; errors are reported before anything runs.
fn parse_fields(args: Args<'_>, max_bytes: u64) -> Result<Vec<Field>, CmdError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let remaining = args.len() - i - 1;
        let sub = args.get(i).to_ascii_lowercase();
        let needs = match sub.as_slice() {
            b"get" if remaining >= 2 => 2,
            b"set" | b"incrby" if remaining >= 3 => 3,
            b"overflow" if remaining >= 1 => {
                overflow = match args.get(i + 1).to_ascii_lowercase().as_slice() {
                    b"wrap" => Overflow::Wrap,
                    b"sat" => Overflow::Sat,
                    b"fail" => Overflow::Fail,
                    _ => return Err(CmdError::msg("ERR Invalid OVERFLOW type specified")),
                };
                i += 2;
                continue;
            }
            _ => return Err(CmdError::Syntax),
        };
        let (signed, bits) = field_type(args.get(i + 1))?;
        let offset = bit_offset(args.get(i + 2), Some(bits), max_bytes)?;
        let op = match sub.as_slice() {
            b"get" => FieldOp::Get,
            b"set" => FieldOp::Set(int_arg(args.get(i + 3))?),
            _ => FieldOp::IncrBy(int_arg(args.get(i + 3))?),
        };
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            overflow,
        });
        i += needs + 1;
    }
    Ok(fields)
}

/// Reads an unsigned `bits`-wide field at bit `offset` (zeros past the end).
fn get_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0, |v, i| (v << 1) | u64::from(bit_at(s, offset + i)))
}

/// Writes the low `bits` bits of `value` at bit `offset` (the buffer is long enough).
fn set_field(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..u64::from(bits) {
        let pos = offset + i;
        let mask = 0x80u8 >> (pos & 7);
        let byte = &mut s[(pos >> 3) as usize];
        if (value >> (u64::from(bits) - 1 - i)) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

impl Field {
    /// The field's value range as i128.
    fn limits(&self) -> (i128, i128) {
        if self.signed {
            let max = (1i128 << (self.bits - 1)) - 1;
            (-max - 1, max)
        } else {
            (0, (1i128 << self.bits) - 1)
        }
    }

    /// Interprets raw field bits as this field's integer.
    fn decode(&self, raw: u64) -> i128 {
        if self.signed && self.bits < 64 && (raw >> (self.bits - 1)) & 1 == 1 {
            i128::from(raw) - (1i128 << self.bits)
        } else if self.signed {
            i128::from(raw as i64)
        } else {
            i128::from(raw)
        }
    }

    /// Fits `v` into the field per the overflow policy: `None` when FAIL refuses it.
    fn fit(&self, v: i128) -> Option<i128> {
        let (min, max) = self.limits();
        if (min..=max).contains(&v) {
            return Some(v);
        }
        match self.overflow {
            Overflow::Fail => None,
            Overflow::Sat => Some(if v > max { max } else { min }),
            // Two's complement wrap-around to the field width.
            Overflow::Wrap => Some(self.decode((v as u64) & (u64::MAX >> (64 - self.bits)))),
        }
    }
}

/// Runs the parsed operations: each replies with an integer (GET and SET the old value,
/// INCRBY the new one), or null when OVERFLOW FAIL refused it.
fn run_fields(ctx: &mut Ctx<'_>, key: &[u8], fields: &[Field]) -> CmdResult {
    let write = fields.iter().any(|f| !matches!(f.op, FieldOp::Get));
    let changes = {
        let (mut keys, out) = ctx.keys_out();
        if !write {
            let s = match keys.read(key) {
                None => &[][..],
                Some(e) => e.string().ok_or(CmdError::WrongType)?,
            };
            out.array(fields.len());
            for f in fields {
                out.int(f.decode(get_field(s, f.offset, f.bits)) as i64);
            }
            return Ok(());
        }
        let top = fields
            .iter()
            .filter(|f| !matches!(f.op, FieldOp::Get))
            .map(|f| f.offset + u64::from(f.bits) - 1)
            .max()
            .unwrap_or(0);
        let (s, grown) = bits_for_write(&mut keys, key, top)?;
        let mut changes = 0;
        out.array(fields.len());
        for f in fields {
            let old = f.decode(get_field(s, f.offset, f.bits));
            let (new, reply) = match f.op {
                FieldOp::Get => {
                    out.int(old as i64);
                    continue;
                }
                // SET of an unsigned field takes the argument's 64-bit pattern, as Redis does.
                FieldOp::Set(v) if !f.signed => (f.fit(i128::from(v as u64)), old),
                FieldOp::Set(v) => (f.fit(i128::from(v)), old),
                FieldOp::IncrBy(by) => {
                    let new = f.fit(old + i128::from(by));
                    (new, new.unwrap_or(0))
                }
            };
            match new {
                Some(new) => {
                    set_field(s, f.offset, f.bits, new as u64);
                    out.int(reply as i64);
                    changes += u64::from(grown || new != old);
                }
                None => out.null(),
            }
        }
        changes
    };
    if changes > 0 {
        notify(ctx, STRING, "setbit", key);
    }
    ctx.dirty += changes;
    Ok(())
}

fn bitfield(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let fields = parse_fields(args, max_string_len(ctx))?;
    run_fields(ctx, args.get(1), &fields)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let fields = parse_fields(args, max_string_len(ctx))?;
    if fields.iter().any(|f| !matches!(f.op, FieldOp::Get)) {
        return Err(CmdError::msg(
            "ERR BITFIELD_RO only supports the GET subcommand",
        ));
    }
    run_fields(ctx, args.get(1), &fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(signed: bool, bits: u32, overflow: Overflow) -> Field {
        Field {
            op: FieldOp::Get,
            signed,
            bits,
            offset: 0,
            overflow,
        }
    }

    #[test]
    fn fields_round_trip_and_wrap() {
        let mut s = vec![0u8; 9];
        set_field(&mut s, 3, 64, 0xDEAD_BEEF_0123_4567);
        assert_eq!(get_field(&s, 3, 64), 0xDEAD_BEEF_0123_4567);
        let f = field(true, 8, Overflow::Wrap);
        assert_eq!(f.fit(128), Some(-128));
        assert_eq!(f.fit(-129), Some(127));
        assert_eq!(field(false, 8, Overflow::Wrap).fit(256 + 5), Some(5));
        assert_eq!(field(false, 8, Overflow::Sat).fit(-3), Some(0));
        assert_eq!(
            field(true, 64, Overflow::Wrap).fit(i128::from(i64::MAX) + 1),
            Some(i128::from(i64::MIN))
        );
        assert_eq!(field(true, 4, Overflow::Fail).fit(8), None);
        assert_eq!(field(true, 1, Overflow::Wrap).decode(1), -1);
    }

    #[test]
    fn counts_and_finds_bits() {
        let s = [0xFFu8, 0xF0, 0x00];
        assert_eq!(count_bits(&s, 0, 23), 12);
        assert_eq!(count_bits(&s, 5, 10), 6);
        assert_eq!(count_bits(&s, 9, 9), 1);
        assert_eq!(find_bit(&s, 0, 23, false), Some(12));
        assert_eq!(find_bit(&s, 13, 23, true), None);
        assert_eq!(find_bit(&[0, 0, 0, 1], 0, 31, true), Some(31));
        assert_eq!(bit_range(-1, -1, 3, false), Some((16, 23)));
        assert_eq!(bit_range(5, 2, 3, true), None);
    }
}
