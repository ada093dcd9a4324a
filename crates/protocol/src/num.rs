//! Hand-written integer parsing and formatting.
//!
//! Every reply that carries a length or an integer goes through these, and
//! every request header is parsed by [`parse_i64`], so they avoid the
//! `str::from_utf8` + `str::parse` / `format!` round trips: no UTF-8
//! validation, no allocation, no `fmt` machinery.

/// Two ASCII digits for every value 0..100, so formatting emits two digits
/// per division instead of one.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Parses a decimal `i64` with exactly the strictness Redis applies to
/// protocol numbers and integer arguments (its `string2ll`).
///
/// Accepted: an optional `-`, then either the single digit `0` or a digit
/// `1`-`9` followed by more digits, with no overflow. Rejected: the empty
/// string, `+`, leading zeros (`"01"`), `"-0"`, spaces, and anything that
/// does not fit in an `i64`. Being strict matters for compatibility:
/// clients rely on `"01"` being an invalid bulk length, and the server can
/// reuse this for integer arguments with identical error behaviour.
#[inline]
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    if negative {
        // -(2^63) is the one magnitude that does not fit as a positive i64.
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Formats `v` into the tail of `buf` and returns the digits. `u64::MAX` has
/// 20 digits, which is why the buffer has exactly 20 bytes.
#[inline]
pub fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    while v >= 100 {
        let r = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[r..r + 2]);
    }
    if v >= 10 {
        let r = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[r..r + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    &buf[i..]
}

/// Formats a signed integer the way `%lld` would, without allocating.
/// `i64::MIN` needs 20 bytes (sign + 19 digits), so the same buffer size as
/// [`fmt_u64`] suffices.
#[inline]
pub fn fmt_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    if v >= 0 {
        return fmt_u64(v as u64, buf);
    }
    let len = fmt_u64(v.unsigned_abs(), buf).len();
    let start = buf.len() - len - 1;
    buf[start] = b'-';
    &buf[start..]
}

/// Appends the decimal form of `v` to `out`.
#[inline]
pub fn write_u64(v: u64, out: &mut Vec<u8>) {
    // Single digits (array/map sizes, small counters) are the common case;
    // skip the buffer dance for them.
    if v < 10 {
        out.push(b'0' + v as u8);
        return;
    }
    let mut tmp = [0u8; 20];
    out.extend_from_slice(fmt_u64(v, &mut tmp));
}

/// Appends the decimal form of `v` to `out`.
#[inline]
pub fn write_i64(v: i64, out: &mut Vec<u8>) {
    if v >= 0 {
        write_u64(v as u64, out);
    } else {
        let mut tmp = [0u8; 20];
        out.extend_from_slice(fmt_i64(v, &mut tmp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_canonical_numbers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"7"), Some(7));
        assert_eq!(parse_i64(b"-7"), Some(-7));
        assert_eq!(parse_i64(b"1234567890"), Some(1_234_567_890));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn parse_rejects_non_canonical_numbers() {
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"00",
            b"-0",
            b"-01",
            b" 1",
            b"1 ",
            b"1a",
            b"0x10",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999999",
            b"1.0",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn format_round_trips() {
        let mut buf = [0u8; 20];
        for v in [
            0i64,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            12345,
            -1,
            -10,
            -99,
            -100,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            assert_eq!(fmt_i64(v, &mut buf), v.to_string().as_bytes());
            let mut out = Vec::new();
            write_i64(v, &mut out);
            assert_eq!(out, v.to_string().as_bytes());
        }
        assert_eq!(fmt_u64(u64::MAX, &mut buf), u64::MAX.to_string().as_bytes());
        let mut out = Vec::new();
        write_u64(u64::MAX, &mut out);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn format_matches_std_on_a_sweep() {
        let mut buf = [0u8; 20];
        let mut v: i64 = 1;
        while v < i64::MAX / 3 {
            for w in [v - 1, v, v + 1, -v, -v - 1] {
                assert_eq!(fmt_i64(w, &mut buf), w.to_string().as_bytes());
                assert_eq!(parse_i64(w.to_string().as_bytes()), Some(w));
            }
            v = v * 3 + 1;
        }
    }
}
