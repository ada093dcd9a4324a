//! Glob-style matching with the semantics of Redis's KEYS, SCAN MATCH and PSUBSCRIBE.
//!
//! Syntax, matched byte by byte (keys are binary, not UTF-8):
//!
//! * `*` matches any run of bytes, including none;
//! * `?` matches exactly one byte;
//! * `[abc]` matches one byte of the set, `[^abc]` one byte not in it, `[a-z]` a range
//!   (a reversed range such as `[z-a]` means the same as `[a-z]`);
//! * `\x` matches `x` literally, also inside brackets; a trailing lone `\` matches a `\`;
//! * an unterminated `[` takes the rest of the pattern as its set (`[abc` is `[abc]`),
//!   and `[]` is an empty set that matches nothing (`[^]` matches any byte);
//! * with `nocase`, ASCII letters compare case-insensitively (ranges too: both ends and the
//!   byte are lowered before comparing).
//!
//! Every element other than `*` consumes exactly one byte, so the classic iterative
//! algorithm is exact: on a mismatch, go back to the most recent `*` and let it swallow one
//! more byte. Earlier stars never need revisiting, because a later star can absorb anything
//! an earlier one could have. This keeps the worst case at O(pattern × string) instead of
//! the exponential blow-up of naive recursion on patterns like `*a*a*a*a*b`, which a client
//! could otherwise use to stall a shard with a single KEYS or PSUBSCRIBE.

/// Whether `s` matches the glob `pattern` (see the module docs for the syntax).
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    // Where to resume after the most recent star: pattern position just past it, and the
    // string position that star's match currently ends at.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                while p < pattern.len() && pattern[p] == b'*' {
                    p += 1;
                }
                if p == pattern.len() {
                    // A trailing star matches whatever is left.
                    return true;
                }
                star = Some((p, i));
                continue;
            }
            if i < s.len() {
                let (ok, next) = match_one(pattern, p, s[i], nocase);
                if ok {
                    p = next;
                    i += 1;
                    continue;
                }
            }
        } else if i == s.len() {
            return true;
        }
        // Mismatch (or pattern exhausted early): let the last star take one more byte.
        match star {
            Some((sp, si)) if si < s.len() => {
                star = Some((sp, si + 1));
                p = sp;
                i = si + 1;
            }
            _ => return false,
        }
    }
}

/// Matches the single-byte element at `pattern[p]` (not a `*`) against `c`.
/// Returns whether it matched and the position of the next element; the position does not
/// depend on `c`, so the backtracking in [`glob_match`] can re-run elements freely.
#[inline]
fn match_one(pattern: &[u8], p: usize, c: u8, nocase: bool) -> (bool, usize) {
    match pattern[p] {
        b'?' => (true, p + 1),
        b'[' => match_class(pattern, p + 1, c, nocase),
        b'\\' if p + 1 < pattern.len() => (eq(pattern[p + 1], c, nocase), p + 2),
        // Includes a trailing lone backslash, which matches itself.
        lit => (eq(lit, c, nocase), p + 1),
    }
}

/// Matches a bracket set whose body starts at `pattern[p]` (just after the `[`).
fn match_class(pattern: &[u8], mut p: usize, c: u8, nocase: bool) -> (bool, usize) {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    // Unterminated: the set runs to the end of the pattern.
    while p < pattern.len() {
        let b = pattern[p];
        if b == b'\\' && p + 1 < pattern.len() {
            matched |= eq(pattern[p + 1], c, nocase);
            p += 2;
        } else if b == b']' {
            p += 1;
            break;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' {
            // A range needs both ends present; `[a-]` is the range from `a` to `]`, and that
            // `]` is consumed as the range end (the set then runs to the end, as in Redis).
            let (mut lo, mut hi, mut x) = (b, pattern[p + 2], c);
            if nocase {
                lo = lo.to_ascii_lowercase();
                hi = hi.to_ascii_lowercase();
                x = x.to_ascii_lowercase();
            }
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            matched |= lo <= x && x <= hi;
            p += 3;
        } else {
            matched |= eq(b, c, nocase);
            p += 1;
        }
    }
    (matched != negate, p)
}

#[inline]
fn eq(a: u8, b: u8, nocase: bool) -> bool {
    a == b || (nocase && a.eq_ignore_ascii_case(&b))
}

#[cfg(test)]
mod tests {
    use super::glob_match;
    use std::time::{Duration, Instant};

    /// (pattern, string, nocase, expected)
    const CASES: &[(&str, &str, bool, bool)] = &[
        // Literals and the empty cases.
        ("", "", false, true),
        ("", "a", false, false),
        ("a", "", false, false),
        ("abc", "abc", false, true),
        ("abc", "abd", false, false),
        ("abc", "ab", false, false),
        ("ab", "abc", false, false),
        // Stars.
        ("*", "", false, true),
        ("*", "anything", false, true),
        ("**", "", false, true),
        ("a*", "a", false, true),
        ("a*", "abc", false, true),
        ("a*", "ba", false, false),
        ("*a", "bca", false, true),
        ("*a", "ab", false, false),
        ("a*b", "ab", false, true),
        ("a*b", "axxxb", false, true),
        ("a*b", "axxxbx", false, false),
        ("a*b*c", "abxbxc", false, true),
        ("*a*b", "xaxbxaxb", false, true),
        ("h*llo", "hello", false, true),
        ("h*llo", "heeeello", false, true),
        ("*:*", "user:1", false, true),
        ("*:*", "user1", false, false),
        ("a**b", "ab", false, true),
        // Question mark.
        ("?", "", false, false),
        ("?", "a", false, true),
        ("?", "ab", false, false),
        ("h?llo", "hello", false, true),
        ("h?llo", "hllo", false, false),
        ("*?", "", false, false),
        ("*?", "a", false, true),
        ("?*?", "ab", false, true),
        ("?*?", "a", false, false),
        // Bracket sets.
        ("h[ae]llo", "hello", false, true),
        ("h[ae]llo", "hallo", false, true),
        ("h[ae]llo", "hillo", false, false),
        ("h[^e]llo", "hallo", false, true),
        ("h[^e]llo", "hello", false, false),
        ("h[a-b]llo", "hbllo", false, true),
        ("h[a-b]llo", "hcllo", false, false),
        ("[a-z]", "m", false, true),
        ("[a-z]", "M", false, false),
        ("[z-a]", "m", false, true),
        ("[z-a]", "A", false, false),
        ("[^a-z]", "m", false, false),
        ("[^a-z]", "0", false, true),
        ("[a-cx-z]", "y", false, true),
        ("[a-cx-z]", "d", false, false),
        ("[abc]", "", false, false),
        ("[abc]", "ab", false, false),
        ("[abc]*", "ab", false, true),
        ("[-a]", "-", false, true),
        ("[a-]", "]", false, true),
        ("[a-]", "`", false, true),
        ("[a-]", "-", false, false),
        ("[]", "]", false, false),
        ("[]", "", false, false),
        ("[]a]", "]a]", false, false),
        ("[]a]", "a]", false, false),
        ("[^]", "x", false, true),
        ("[^]", "", false, false),
        ("[]]", "]", false, false),
        ("[\\]]", "]", false, true),
        ("[\\]]", "\\", false, false),
        ("[\\-]", "-", false, true),
        ("[a\\-z]", "b", false, false),
        ("[a\\-z]", "-", false, true),
        ("[\\^a]", "^", false, true),
        ("[*]", "*", false, true),
        ("[*]", "a", false, false),
        ("[?]", "?", false, true),
        ("[?]", "a", false, false),
        ("[[]", "[", false, true),
        // Unterminated sets: the rest of the pattern is the set.
        ("[abc", "a", false, true),
        ("[abc", "c", false, true),
        ("[abc", "d", false, false),
        ("[abc", "ab", false, false),
        ("x[ab", "xb", false, true),
        ("[", "", false, false),
        ("[", "[", false, false),
        ("[^", "x", false, true),
        ("[^ab", "c", false, true),
        ("[^ab", "a", false, false),
        ("[a-", "a", false, true),
        ("[a-", "-", false, true),
        ("[a\\", "\\", false, true),
        ("[a\\", "a", false, true),
        // Escapes.
        ("\\*", "*", false, true),
        ("\\*", "a", false, false),
        ("\\?", "?", false, true),
        ("\\?", "a", false, false),
        ("\\[a]", "[a]", false, true),
        ("\\[a]", "a", false, false),
        ("a\\\\b", "a\\b", false, true),
        ("\\a", "a", false, true),
        ("foo\\", "foo\\", false, true),
        ("foo\\", "foo", false, false),
        ("\\", "\\", false, true),
        ("*\\*", "abc*", false, true),
        ("*\\*", "abc", false, false),
        // nocase.
        ("HELLO", "hello", true, true),
        ("HELLO", "hello", false, false),
        ("h*O", "HellO", true, true),
        ("h[A-C]llo", "hbllo", true, true),
        ("h[a-c]llo", "hBllo", true, true),
        ("h[a-c]llo", "hBllo", false, false),
        ("[^a]", "A", true, false),
        ("[^a]", "A", false, true),
        ("\\A", "a", true, true),
        ("[\\A]", "a", true, true),
        ("?", "\u{e9}", false, false), // two UTF-8 bytes: `?` is one byte
        ("??", "\u{e9}", false, true),
        // Real-world shapes.
        ("user:*:name", "user:42:name", false, true),
        ("user:*:name", "user:42:age", false, false),
        ("news.*", "news.sport", false, true),
        ("__keyspace@*__:*", "__keyspace@0__:foo", false, true),
    ];

    #[test]
    fn table() {
        for &(p, s, nocase, want) in CASES {
            assert_eq!(
                glob_match(p.as_bytes(), s.as_bytes(), nocase),
                want,
                "pattern {p:?} string {s:?} nocase {nocase}"
            );
        }
    }

    #[test]
    fn binary_bytes() {
        assert!(glob_match(b"\x00*\xff", b"\x00abc\xff", false));
        assert!(glob_match(b"[\x00-\x10]", b"\x05", false));
        assert!(!glob_match(b"[\x00-\x10]", b"\x11", false));
        assert!(glob_match(b"?", b"\xff", false));
    }

    #[test]
    fn adversarial_is_fast() {
        let s = vec![b'a'; 20_000];
        let start = Instant::now();
        assert!(!glob_match(b"*a*a*a*a*a*a*a*a*a*b", &s, false));
        assert!(!glob_match(
            b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*ab",
            &s,
            true
        ));
        assert!(!glob_match(b"*[a]*[a]*?*?*[^b]*b", &s, false));
        assert!(glob_match(b"*a*a*a*a*a*a*a*a*a*a", &s, false));
        // Generous bound for debug builds on a slow machine; exponential would never finish.
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    /// Cross-check against a straightforward recursive matcher on small random inputs.
    #[test]
    fn agrees_with_recursive_reference() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"ab*?[]^-\\A";
        for _ in 0..50_000 {
            let pl = rng.gen_range(0..8);
            let sl = rng.gen_range(0..6);
            let p: Vec<u8> = (0..pl)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let s: Vec<u8> = (0..sl).map(|_| b"abA-]"[rng.gen_range(0..5)]).collect();
            let nocase = rng.gen_bool(0.5);
            assert_eq!(
                glob_match(&p, &s, nocase),
                reference(&p, &s, nocase),
                "pattern {:?} string {:?} nocase {nocase}",
                String::from_utf8_lossy(&p),
                String::from_utf8_lossy(&s)
            );
        }
    }

    /// Exponential-time recursive matcher with the same single-element semantics.
    fn reference(p: &[u8], s: &[u8], nocase: bool) -> bool {
        if p.is_empty() {
            return s.is_empty();
        }
        if p[0] == b'*' {
            return (0..=s.len()).any(|k| reference(&p[1..], &s[k..], nocase));
        }
        if s.is_empty() {
            return false;
        }
        let (ok, next) = super::match_one(p, 0, s[0], nocase);
        ok && reference(&p[next..], &s[1..], nocase)
    }
}
