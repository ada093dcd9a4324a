//! Number parsing and formatting with Redis's exact rules, shared by the store (to pick the
//! `int` encoding) and the commands (INCR, EXPIRE, ranges…).
//!
//! Integer parsing and formatting are the protocol crate's (request headers need the same
//! strictness); they are re-exported here so commands find every number helper in one place.

pub use flowkv_protocol::num::{parse_i64, write_i64};

/// Parses an unsigned 64-bit integer with [`parse_i64`]'s strictness.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.first() == Some(&b'-') {
        return None;
    }
    if s.len() > 1 && s[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Parses a float the way Redis's `string2ld`/`strtod` based helpers accept it: no surrounding
/// spaces, no empty string, `inf`/`-inf`/`+inf` allowed (case-insensitive), NaN rejected.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s[s.len() - 1].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let lower = text.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust accepts "nan", "infinity" spelled out and a few forms C doesn't; filter
            // letters other than an exponent marker.
            if lower.bytes().any(|c| c.is_ascii_alphabetic() && c != b'e') {
                return None;
            }
            lower.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// The decimal form of `v` as bytes.
pub fn i64_bytes(v: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    write_i64(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"1a",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"-1"), None);
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b""), None);
        assert_eq!(parse_f64(b"abc"), None);
    }

    #[test]
    fn formats_integers() {
        for v in [0, 7, -7, i64::MAX, i64::MIN, 1234567890] {
            assert_eq!(i64_bytes(v), v.to_string().into_bytes());
        }
    }
}
