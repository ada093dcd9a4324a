//! SORT and SORT_RO: sort the elements of a list, set or sorted set, by their own value or by
//! weights read from other keys (BY pattern), optionally fetching other keys per element (GET
//! pattern) and storing the result as a list (STORE, SORT only).
//!
//! Semantics follow Redis 7.0's `sort.c`: numbers are read with C's `strtod` rules, equal
//! numeric weights fall back to comparing the elements' bytes, a BY pattern without `*` means
//! "don't sort" (lists and sorted sets keep their order, which DESC reverses and LIMIT cuts by
//! rank), and a set left unsorted for STORE or for a script is sorted ALPHA instead so the
//! stored list, or what the script does with it, is deterministic.
//!
//! BY and GET patterns read keys the arguments don't name, so an invocation that uses one locks
//! the whole keyspace (see [`reads_patterns`]); otherwise only the sorted key and the STORE
//! destination are locked.

use std::cmp::Ordering;

use flowkv_protocol::Args;
use flowkv_store::list_value::ListValue;
use flowkv_store::num::parse_i64;
use flowkv_store::{Entry, Keys, Value, ValueRef};

use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group, KeyPositions};
use crate::config::notify::{GENERIC, LIST};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

const COMPLEXITY: &str = "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).";

pub static COMMANDS: &[Command] = &[
    Command::new("sort", -2, Group::Generic)
        .flags(WRITE | DENYOOM)
        .acl(acl::SET | acl::SORTEDSET | acl::LIST | acl::DANGEROUS)
        .movable_keys(sort_keys)
        .locks_all_when(sort_reads_patterns)
        .key_specs(&[
            ks::key_at(1, ks::RO | ks::ACCESS),
            ks::unknown(ks::RO | ks::ACCESS)
                .notes("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
            ks::unknown(ks::OW | ks::UPDATE)
                .notes("For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array"),
        ])
        .handler(sort)
        .doc(
            "Sort the elements in a list, set or sorted set",
            "1.0.0",
            COMPLEXITY,
        ),
    Command::new("sort_ro", -2, Group::Generic)
        .flags(READONLY)
        .acl(acl::SET | acl::SORTEDSET | acl::LIST | acl::DANGEROUS)
        .movable_keys(sort_ro_keys)
        .locks_all_when(sort_ro_reads_patterns)
        .key_specs(&[
            ks::key_at(1, ks::RO | ks::ACCESS),
            ks::unknown(ks::RO | ks::ACCESS)
                .notes("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
        ])
        .handler(sort_ro)
        .doc(
            "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
            "7.0.0",
            COMPLEXITY,
        ),
];

/// The options of one SORT invocation.
struct Opts<'a> {
    desc: bool,
    alpha: bool,
    /// LIMIT offset and count as given (clamped later against the length).
    offset: i64,
    count: i64,
    /// The last BY pattern.
    by: Option<&'a [u8]>,
    /// Set by any BY pattern without `*`: keep the natural order (Redis never clears it).
    dont_sort: bool,
    gets: Vec<&'a [u8]>,
    /// Argument index of the last STORE destination.
    store: Option<usize>,
}

impl<'a> Opts<'a> {
    /// Parses the options after the key, left to right as Redis does (so the first bad
    /// option decides the error). `readonly` (SORT_RO) makes STORE unknown.
    fn parse(args: Args<'a>, readonly: bool) -> Result<Opts<'a>, CmdError> {
        let mut o = Opts {
            desc: false,
            alpha: false,
            offset: 0,
            count: -1,
            by: None,
            dont_sort: false,
            gets: Vec::new(),
            store: None,
        };
        let mut i = 2;
        while i < args.len() {
            let opt = args.get(i);
            let left = args.len() - i - 1;
            if opt.eq_ignore_ascii_case(b"asc") {
                o.desc = false;
            } else if opt.eq_ignore_ascii_case(b"desc") {
                o.desc = true;
            } else if opt.eq_ignore_ascii_case(b"alpha") {
                o.alpha = true;
            } else if opt.eq_ignore_ascii_case(b"limit") && left >= 2 {
                o.offset = parse_i64(args.get(i + 1)).ok_or(CmdError::NotInteger)?;
                o.count = parse_i64(args.get(i + 2)).ok_or(CmdError::NotInteger)?;
                i += 2;
            } else if !readonly && opt.eq_ignore_ascii_case(b"store") && left >= 1 {
                o.store = Some(i + 1);
                i += 1;
            } else if opt.eq_ignore_ascii_case(b"by") && left >= 1 {
                let p = args.get(i + 1);
                o.by = Some(p);
                if !c_str(p).contains(&b'*') {
                    o.dont_sort = true;
                }
                i += 1;
            } else if opt.eq_ignore_ascii_case(b"get") && left >= 1 {
                o.gets.push(args.get(i + 1));
                i += 1;
            } else {
                return Err(CmdError::Syntax);
            }
            i += 1;
        }
        Ok(o)
    }

    /// True if running this invocation may read keys named by its patterns.
    fn reads_patterns(&self) -> bool {
        (self.by.is_some() && !self.dont_sort)
            || self
                .gets
                .iter()
                .any(|p| matches!(Pattern::split(p), Pattern::Key { .. }))
    }
}

/// The key positions: the sorted key and the STORE destination the handler will use. For
/// arguments that don't parse, just the sorted key (the command fails before touching any).
fn sort_keys(args: Args<'_>) -> KeyPositions {
    let mut keys = sort_ro_keys(args);
    if let Ok(Opts {
        store: Some(dst), ..
    }) = Opts::parse(args, false)
    {
        keys.push(dst);
    }
    keys
}

/// SORT_RO's only named key: the sorted one.
fn sort_ro_keys(args: Args<'_>) -> KeyPositions {
    (1..args.len().min(2)).collect()
}

/// SORT locks every shard when its BY or GET patterns read other keys.
fn sort_reads_patterns(args: Args<'_>) -> bool {
    Opts::parse(args, false).is_ok_and(|o| o.reads_patterns())
}

fn sort_ro_reads_patterns(args: Args<'_>) -> bool {
    Opts::parse(args, true).is_ok_and(|o| o.reads_patterns())
}

/// The part of `s` a C string function sees: up to the first NUL byte.
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |n| &s[..n])
}

/// A BY or GET pattern, split around its first `*` (Redis reads patterns as C strings, so a
/// NUL byte ends the part searched for `*`, `#` and `->`).
enum Pattern<'p> {
    /// `#`: the element itself.
    Element,
    /// No `*`: names no key, so it yields nothing.
    Constant,
    /// `prefix*suffix`, or `prefix*suffix->field` for a hash field.
    Key {
        prefix: &'p [u8],
        suffix: &'p [u8],
        field: Option<&'p [u8]>,
    },
}

impl<'p> Pattern<'p> {
    fn split(p: &'p [u8]) -> Pattern<'p> {
        let c = c_str(p);
        if c == b"#" {
            return Pattern::Element;
        }
        let Some(star) = c.iter().position(|&b| b == b'*') else {
            return Pattern::Constant;
        };
        // "->" after the star with a non-empty field name makes a hash field reference.
        let arrow = c[star + 1..]
            .windows(2)
            .position(|w| w == b"->")
            .map(|a| star + 1 + a)
            .filter(|&a| a + 2 < c.len());
        match arrow {
            Some(a) => Pattern::Key {
                prefix: &p[..star],
                suffix: &p[star + 1..a],
                field: Some(&p[a + 2..]),
            },
            None => Pattern::Key {
                prefix: &p[..star],
                suffix: &p[star + 1..],
                field: None,
            },
        }
    }

    /// The value this pattern yields for `elem`: the element, a string key's value or a hash
    /// field; `None` for a missing key or field, a key of another type, or a constant.
    fn lookup<'k>(&self, keys: &'k mut Keys<'_, '_>, elem: &'k [u8]) -> Option<&'k [u8]> {
        let (prefix, suffix, field) = match *self {
            Pattern::Element => return Some(elem),
            Pattern::Constant => return None,
            Pattern::Key {
                prefix,
                suffix,
                field,
            } => (prefix, suffix, field),
        };
        let key = [prefix, elem, suffix].concat();
        let entry = keys.read(&key)?;
        match (field, entry.value()) {
            (Some(f), ValueRef::Hash(h)) => h.get(f),
            (Some(_), _) => None,
            (None, _) => entry.string(),
        }
    }
}

/// One element being sorted with its weight.
struct Item {
    elem: Vec<u8>,
    /// Numeric weight (0 when a BY key is missing).
    score: f64,
    /// ALPHA weight read through BY (`None` when missing, which sorts first).
    text: Option<Vec<u8>>,
}

impl Item {
    fn new(elem: Vec<u8>) -> Item {
        Item {
            elem,
            score: 0.0,
            text: None,
        }
    }
}

/// Compares two strings as Redis's ALPHA sort does: byte-wise when storing, otherwise with
/// `strcoll`, which in the C locale is byte-wise up to the first NUL.
fn alpha_cmp(a: &[u8], b: &[u8], storing: bool) -> Ordering {
    if storing {
        a.cmp(b)
    } else {
        c_str(a).cmp(c_str(b))
    }
}

/// How the loaded elements are ordered.
struct Order {
    desc: bool,
    alpha: bool,
    by_pattern: bool,
    storing: bool,
}

impl Order {
    fn cmp(&self, a: &Item, b: &Item) -> Ordering {
        let ord = if !self.alpha {
            // Equal weights fall back to the elements' bytes, so the result is deterministic.
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.elem.cmp(&b.elem))
        } else if self.by_pattern {
            match (&a.text, &b.text) {
                (Some(x), Some(y)) => alpha_cmp(x, y, self.storing),
                (x, y) => x.is_some().cmp(&y.is_some()),
            }
        } else {
            alpha_cmp(&a.elem, &b.elem, self.storing)
        };
        if self.desc {
            ord.reverse()
        } else {
            ord
        }
    }
}

/// The (start, end) inclusive window LIMIT selects from `len` elements, clamped as Redis
/// does; empty when `end < start`.
fn window(offset: i64, count: i64, len: usize) -> (i64, i64) {
    let len = len as i64;
    let mut start = offset.clamp(0, len);
    let count = count.clamp(-1, len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    (start, end.min(len - 1))
}

/// The elements loaded from the sorted key, and whether LIMIT was already applied (lists and
/// sorted sets left unsorted are read by rank, in DESC order if asked).
fn load(
    entry: Option<&Entry>,
    o: &Opts<'_>,
    start: i64,
    n: usize,
) -> Result<(Vec<Item>, bool), CmdError> {
    let owned = |e: &[u8]| Item::new(e.to_vec());
    let start = start.max(0) as usize;
    let Some(entry) = entry else {
        return Ok((Vec::new(), true));
    };
    Ok(match entry.value() {
        ValueRef::List(l) if o.dont_sort => {
            let items = if o.desc {
                l.iter_rev().skip(start).take(n).map(owned).collect()
            } else {
                l.range(start, n).map(owned).collect()
            };
            (items, true)
        }
        ValueRef::List(l) => (l.iter().map(owned).collect(), false),
        ValueRef::Set(s) => (s.iter().map(|e| Item::new(e.into_owned())).collect(), false),
        ValueRef::ZSet(z) if o.dont_sort => {
            let items = if o.desc {
                // Ranks start..start+n counted from the highest: ascending positions
                // len-start-n..len-start, reversed.
                let first = z.len() - start - n;
                let mut v: Vec<Item> = z
                    .iter()
                    .skip(first)
                    .take(n)
                    .map(|(m, _)| owned(m))
                    .collect();
                v.reverse();
                v
            } else {
                z.iter()
                    .skip(start)
                    .take(n)
                    .map(|(m, _)| owned(m))
                    .collect()
            };
            (items, true)
        }
        ValueRef::ZSet(z) => (z.iter().map(|(m, _)| owned(m)).collect(), false),
        _ => return Err(CmdError::WrongType),
    })
}

/// Reads every item's weight (its own value, or the BY pattern's) and sorts them.
fn sort_items(keys: &mut Keys<'_, '_>, items: &mut [Item], o: &Opts<'_>) -> CmdResult {
    let by = o.by.map(Pattern::split);
    for item in items.iter_mut() {
        let weight = match &by {
            Some(p) => match p.lookup(keys, &item.elem) {
                Some(w) => w,
                None => continue,
            },
            None => &item.elem,
        };
        if o.alpha {
            if by.is_some() {
                item.text = Some(weight.to_vec());
            }
        } else {
            item.score = strtod_score(weight).ok_or(CmdError::msg(
                "ERR One or more scores can't be converted into double",
            ))?;
        }
    }
    let order = Order {
        desc: o.desc,
        alpha: o.alpha,
        by_pattern: by.is_some(),
        storing: o.store.is_some(),
    };
    items.sort_by(|a, b| order.cmp(a, b));
    Ok(())
}

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination].
fn sort(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    sort_generic(ctx, args, false)
}

/// SORT_RO: SORT without STORE.
fn sort_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    sort_generic(ctx, args, true)
}

fn sort_generic(ctx: &mut Ctx<'_>, args: Args<'_>, readonly: bool) -> CmdResult {
    let mut o = Opts::parse(args, readonly)?;
    let limit = super::list::node_limit(ctx);
    let in_script = ctx.in_script;
    let (mut keys, out) = ctx.keys_out();
    let entry = keys.read(args.get(1));
    let (is_set, len) = match entry.map(Entry::value) {
        None => (false, 0),
        Some(ValueRef::List(l)) => (false, l.len()),
        Some(ValueRef::Set(s)) => (true, s.len()),
        Some(ValueRef::ZSet(z)) => (false, z.len()),
        Some(_) => return Err(CmdError::WrongType),
    };
    // An unsorted set would be stored (or given to a script) in hash order: sort it ALPHA so
    // the stored list, or what the script does with it, is the same everywhere.
    if o.dont_sort && is_set && (o.store.is_some() || in_script) {
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    let (start, end) = window(o.offset, o.count, len);
    let n = (end - start + 1).max(0) as usize;
    let (mut items, windowed) = load(entry, &o, start, n)?;
    if !o.dont_sort {
        sort_items(&mut keys, &mut items, &o)?;
    }
    let rows: &[Item] = match (windowed, n) {
        (true, _) => &items,
        (false, 0) => &[],
        (false, _) => &items[start as usize..start as usize + n],
    };
    let gets: Vec<Pattern<'_>> = o.gets.iter().map(|p| Pattern::split(p)).collect();
    let total = rows.len() * gets.len().max(1);
    let Some(dst) = o.store.map(|i| args.get(i)) else {
        out.array(total);
        for row in rows {
            if gets.is_empty() {
                out.bulk(&row.elem);
            }
            for g in &gets {
                match g.lookup(&mut keys, &row.elem) {
                    Some(v) => out.bulk(v),
                    None => out.null(),
                }
            }
        }
        return Ok(());
    };
    let mut list = ListValue::new();
    for row in rows {
        if gets.is_empty() {
            list.push(false, &row.elem, limit);
        }
        for g in &gets {
            let v = g.lookup(&mut keys, &row.elem).unwrap_or_default();
            list.push(false, v, limit);
        }
    }
    let dirty = if total > 0 {
        keys.insert(Entry::new_value(dst, Value::List(Box::new(list)), None, 0));
        keys.notify(LIST, "sortstore", dst);
        total as u64
    } else if keys.delete(dst) {
        keys.notify(GENERIC, "del", dst);
        1
    } else {
        0
    };
    out.int(total as i64);
    ctx.dirty += dirty;
    Ok(())
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// The numeric weight of a value as SORT reads it with C's `strtod`: leading white space, a
/// sign, a decimal or hexadecimal number or `inf`/`infinity`, and nothing after it (a NUL
/// byte ends the string, as in C). `None` for anything else, NaN, or a value out of range
/// (overflow, or an inexact underflow). A string with no number at all is 0 when it is empty
/// (strtod stops at its end), an error otherwise.
fn strtod_score(s: &[u8]) -> Option<f64> {
    let lead = s.iter().take_while(|&&b| is_c_space(b)).count();
    match parse_c_float(&s[lead..]) {
        None => s.first().is_none_or(|&b| b == 0).then_some(0.0),
        Some((v, used, in_range)) => {
            let rest = &s[lead + used..];
            (in_range && !v.is_nan() && rest.first().is_none_or(|&b| b == 0)).then_some(v)
        }
    }
}

/// Length of the run of bytes at the start of `s` matching `f`.
fn run(s: &[u8], f: impl Fn(u8) -> bool) -> usize {
    s.iter().take_while(|&&b| f(b)).count()
}

/// The longest number strtod accepts at the start of `s`: (value, bytes used, in range).
fn parse_c_float(s: &[u8]) -> Option<(f64, usize, bool)> {
    let sign = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let neg = s.first() == Some(&b'-');
    let body = &s[sign..];
    let starts = |w: &[u8]| body.len() >= w.len() && body[..w.len()].eq_ignore_ascii_case(w);
    if starts(b"infinity") || starts(b"inf") {
        let used = if starts(b"infinity") { 8 } else { 3 };
        let v = if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Some((v, sign + used, true));
    }
    if starts(b"nan") {
        return Some((f64::NAN, sign + 3, true));
    }
    if starts(b"0x") {
        if let Some((v, used, in_range)) = parse_hex(&body[2..]) {
            return Some((if neg { -v } else { v }, sign + 2 + used, in_range));
        }
    }
    let int = run(body, |b| b.is_ascii_digit());
    let mut used = int;
    let mut frac = 0;
    if body.get(used) == Some(&b'.') {
        frac = run(&body[used + 1..], |b| b.is_ascii_digit());
        used += 1 + frac;
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(body.get(used), Some(b'e' | b'E')) {
        let esign = usize::from(matches!(body.get(used + 1), Some(b'+' | b'-')));
        let edigits = run(&body[(used + 1 + esign).min(body.len())..], |b| {
            b.is_ascii_digit()
        });
        if edigits > 0 {
            used += 1 + esign + edigits;
        }
    }
    let text = std::str::from_utf8(&s[..sign + used]).ok()?;
    let v: f64 = text.parse().ok()?;
    let mantissa_nonzero = body[..int + usize::from(frac > 0) + frac]
        .iter()
        .any(|b| (b'1'..=b'9').contains(b));
    // Decimal underflow is (practically always) inexact: strtod reports it as ERANGE.
    let in_range = v.is_finite() && !(mantissa_nonzero && v.abs() < f64::MIN_POSITIVE);
    Some((v, sign + used, in_range))
}

/// A hexadecimal float after its `0x`: `h[.h][p[+-]d]`, as (value, bytes used, in range);
/// `None` without a hex digit (strtod then reads just the `0`).
fn parse_hex(s: &[u8]) -> Option<(f64, usize, bool)> {
    let mut mant: u64 = 0;
    let mut exp: i64 = 0;
    let mut inexact = false;
    let mut digits = 0;
    let mut used = 0;
    let mut seen_point = false;
    while let Some(&b) = s.get(used) {
        if b == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (b as char).to_digit(16) {
            digits += 1;
            if mant < 1 << 56 {
                mant = mant * 16 + u64::from(d);
                exp -= if seen_point { 4 } else { 0 };
            } else {
                inexact |= d != 0;
                exp += if seen_point { 0 } else { 4 };
            }
        } else {
            break;
        }
        used += 1;
    }
    if digits == 0 {
        return None;
    }
    if matches!(s.get(used), Some(b'p' | b'P')) {
        let esign = usize::from(matches!(s.get(used + 1), Some(b'+' | b'-')));
        let at = (used + 1 + esign).min(s.len());
        let n = run(&s[at..], |b| b.is_ascii_digit());
        if n > 0 {
            let e = s[at..at + n].iter().fold(0i64, |acc, &b| {
                (acc * 10 + i64::from(b - b'0')).min(1 << 20)
            });
            exp += if s[used + 1] == b'-' { -e } else { e };
            used = at + n;
        }
    }
    let v = scale2(mant as f64, exp);
    let tiny = mant != 0 && v.abs() < f64::MIN_POSITIVE;
    let exact = {
        let tz = mant.trailing_zeros().min(63);
        !inexact && (mant >> tz) < 1 << 53 && exp + i64::from(tz) >= -1074
    };
    Some((v, used, v.is_finite() && (!tiny || exact)))
}

/// `v * 2^exp`, in steps that stay within f64's exponent range.
fn scale2(mut v: f64, mut exp: i64) -> f64 {
    while exp > 1000 && v.is_finite() && v != 0.0 {
        v *= 2f64.powi(1000);
        exp -= 1000;
    }
    while exp < -1000 && v != 0.0 {
        v *= 2f64.powi(-1000);
        exp += 1000;
    }
    v * 2f64.powi(exp.clamp(-2000, 2000) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_rules() {
        let ok = |s: &[u8], v: f64| assert_eq!(strtod_score(s), Some(v), "{s:?}");
        let bad = |s: &[u8]| assert_eq!(strtod_score(s), None, "{s:?}");
        ok(b"3", 3.0);
        ok(b" 1", 1.0);
        ok(b"\t2", 2.0);
        ok(b"", 0.0);
        ok(b"0x10", 16.0);
        ok(b"  -0x10", -16.0);
        ok(b"0X1A", 26.0);
        ok(b"0x1p3", 8.0);
        ok(b"0x1P+3", 8.0);
        ok(b"0x.8", 0.5);
        ok(b"0x1.p1", 2.0);
        ok(b"inf", f64::INFINITY);
        ok(b"INFINITY", f64::INFINITY);
        ok(b"-Inf", f64::NEG_INFINITY);
        ok(b".5", 0.5);
        ok(b"5.", 5.0);
        ok(b"1.5E3", 1500.0);
        ok(b"00012", 12.0);
        ok(b"0e-400", 0.0);
        ok(b"1.e2", 100.0);
        ok(b"7\0x", 7.0);
        ok(b"\0x", 0.0);
        ok(b"2.2250738585072014e-308", 2.2250738585072014e-308);
        ok(b"0x1p-1074", 5e-324);
        for s in [
            &b"1 "[..],
            b"   ",
            b"1e-310",
            b"1e-400",
            b"1e400",
            b"nan",
            b"-nan",
            b"nan(123)",
            b"1e",
            b"1e+",
            b"+.e1",
            b"0x",
            b"1_0",
            b"2\n",
            b"1e5000",
            b"0x1p5000",
            b"abc",
            b"0x1p-1080",
        ] {
            bad(s);
        }
    }

    #[test]
    fn limit_window() {
        assert_eq!(window(0, -1, 5), (0, 4));
        assert_eq!(window(-10, 100, 5), (0, 4));
        assert_eq!(window(5, 10, 5), (4, 3));
        assert_eq!(window(1, 2, 5), (1, 2));
        assert_eq!(window(2, 0, 5), (2, 1));
        assert_eq!(window(0, 0, 0), (-1, -2));
        assert_eq!(window(2, i64::MAX, 3), (2, 2));
        assert_eq!(window(i64::MIN, i64::MIN, 3), (0, 2));
    }

    #[test]
    fn pattern_split() {
        assert!(matches!(Pattern::split(b"#"), Pattern::Element));
        assert!(matches!(Pattern::split(b"#\0x"), Pattern::Element));
        assert!(matches!(Pattern::split(b"nosort"), Pattern::Constant));
        assert!(matches!(Pattern::split(b"a\0*"), Pattern::Constant));
        let Pattern::Key {
            prefix,
            suffix,
            field,
        } = Pattern::split(b"w_*x->f->g")
        else {
            panic!()
        };
        assert_eq!(
            (prefix, suffix, field),
            (&b"w_"[..], &b"x"[..], Some(&b"f->g"[..]))
        );
        let Pattern::Key { suffix, field, .. } = Pattern::split(b"x:*->") else {
            panic!()
        };
        assert_eq!((suffix, field), (&b"->"[..], None));
    }
}
