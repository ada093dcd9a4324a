//! Number parsing and formatting with Redis's exact rules, shared by the store (to pick the
//! `int` encoding) and the commands (INCR, EXPIRE, ranges…).
//!
//! Integer parsing and formatting are the protocol crate's (request headers need the same
//! strictness); they are re-exported here so commands find every number helper in one place.

pub use flowkv_protocol::num::parse_i64;

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

/// Formats an INCRBYFLOAT result in plain decimal notation (no exponent, no trailing zeros,
/// never "-0"), as Redis's "human friendly" long double format does.
///
/// Redis adds in 80-bit long double and prints 17 decimals, which hides the binary rounding
/// of short decimal inputs (0.1 + 0.2 is "0.3"). With f64 we get the same answers by
/// preferring the 15-significant-digit form when it is within the sum's rounding error `err`;
/// values that need every digit are printed with at most 17 decimals.
pub fn format_incr_float(v: f64, err: f64) -> Vec<u8> {
    let short: f64 = format!("{v:.14e}").parse().unwrap_or(v);
    let v = if (short - v).abs() <= err { short } else { v };
    let full = format!("{v}");
    let mut s = match full.split_once('.') {
        Some((_, frac)) if frac.len() > 17 => format!("{v:.17}"),
        _ => full,
    };
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(trimmed);
    }
    if s == "-0" {
        s = "0".into();
    }
    s.into_bytes()
}

/// The distance from `v` to the next float away from zero.
pub fn ulp(v: f64) -> f64 {
    let a = v.abs();
    f64::from_bits(a.to_bits() + 1) - a
}

/// Parses a SCAN cursor as Redis does (C `strtoul`): optional sign, decimal digits, no
/// overflow; a negative number wraps around and the empty string is 0.
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return arg.is_empty().then_some(0);
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { n.wrapping_neg() } else { n })
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
}
