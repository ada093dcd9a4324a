//! The bodies of flowkv's fuzz targets: one function per target, each taking the fuzzer's
//! bytes, panicking on a bug (a crash in the code under test or a broken invariant) and
//! returning quietly on anything else.
//!
//! The cargo-fuzz binaries in `fuzz/fuzz_targets/` are one-line wrappers around these, and
//! `crates/server/tests/fuzz_seeds.rs` includes this same file (`#[path]`) to run every
//! seed and every saved crash input through them on stable Rust in `cargo test`.
//! It depends only on the flowkv crates, never on libFuzzer.

use flowkv_persist::{dump_payload, load, restore_payload, Limits as RdbLimits, WriteOptions};
use flowkv_protocol::{split_inline, Limits, Parsed, Parser, ProtocolError};
use flowkv_server::acl::setuser_rules_text;
use flowkv_server::config::{lookup, Config};
use flowkv_store::entry::Entry;
use flowkv_store::hash_value::HashLimits;
use flowkv_store::list_value::NodeLimit;
use flowkv_store::stream_value::NodeLimits;
use flowkv_store::zset_value::ZSetLimits;

/// The target names, as directories under `fuzz/seeds/` and the regression directory.
pub const TARGETS: &[&str] = &[
    "parse_request",
    "parse_inline",
    "config",
    "acl_rules",
    "rdb_load",
    "restore_payload",
];

/// Runs the named target on one input (for the stable seed test).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "parse_request" => parse_request(data),
        "parse_inline" => parse_inline(data),
        "config" => config(data),
        "acl_rules" => acl_rules(data),
        "rdb_load" => rdb_load(data),
        "restore_payload" => restore_payload_roundtrip(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// parse_request: the RESP (`*…`) and inline request parser, whole and in pieces.

#[derive(Debug, PartialEq)]
enum Event {
    Command(Vec<Vec<u8>>),
    Empty,
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    end: Result<(usize, Option<usize>), ProtocolError>,
}

fn record(parser: &Parser, buf: &[u8], parsed: Parsed, events: &mut Vec<Event>) -> usize {
    match parsed {
        Parsed::Command { consumed } => {
            assert!(consumed <= buf.len());
            let args = parser.args(buf);
            assert!(!args.is_empty());
            events.push(Event::Command(args.iter().map(<[u8]>::to_vec).collect()));
            consumed
        }
        Parsed::Empty { consumed } => {
            assert!(consumed > 0 && consumed <= buf.len());
            events.push(Event::Empty);
            consumed
        }
        Parsed::Incomplete { .. } => unreachable!("handled by the callers"),
    }
}

fn one_shot(stream: &[u8], limits: &Limits) -> Outcome {
    let mut parser = Parser::new();
    let mut events = Vec::new();
    let mut start = 0;
    loop {
        let buf = &stream[start..];
        match parser.parse(buf, limits) {
            Ok(Parsed::Incomplete { hint }) => {
                return Outcome {
                    events,
                    end: Ok((buf.len(), hint)),
                };
            }
            Ok(parsed) => start += record(&parser, buf, parsed, &mut events),
            Err(e) => {
                return Outcome {
                    events,
                    end: Err(e),
                }
            }
        }
    }
}

fn incremental(stream: &[u8], chunks: &[u8], limits: &Limits) -> Outcome {
    let mut parser = Parser::new();
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut fed = 0;
    let mut sizes = chunks.iter().map(|&c| usize::from(c).max(1)).cycle();
    loop {
        let n = sizes.next().unwrap_or(1).min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        let hint = loop {
            match parser.parse(&buf, limits) {
                Ok(Parsed::Incomplete { hint }) => {
                    if let Some(h) = hint {
                        assert!(h > buf.len());
                    }
                    break hint;
                }
                Ok(parsed) => {
                    let consumed = record(&parser, &buf, parsed, &mut events);
                    buf.drain(..consumed);
                }
                Err(e) => {
                    return Outcome {
                        events,
                        end: Err(e),
                    }
                }
            }
        };
        if fed == stream.len() {
            return Outcome {
                events,
                end: Ok((buf.len(), hint)),
            };
        }
    }
}

/// Arbitrary bytes through the request parser in arbitrary splits: nothing panics, every
/// span lies inside its buffer, and parsing the stream in pieces (growing buffer, consumed
/// prefix drained after each command; also one byte at a time) gives exactly what parsing
/// it whole gives: the same commands, the same error, the same leftover and hint.
///
/// Layout: byte 0 picks the limits, byte 1 the number `k` (0..16) of chunk-size bytes that
/// follow; the rest is the byte stream (RESP if it starts with `*`, inline otherwise).
pub fn parse_request(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let limits = Limits {
        authenticated: data[0] & 1 == 0,
        max_bulk_len: if data[0] & 2 == 0 {
            512 * 1024 * 1024
        } else {
            64
        },
        max_multibulk_len: if data[0] & 4 == 0 { 1024 * 1024 } else { 8 },
    };
    let k = usize::from(data[1] % 16).min(data.len() - 2);
    let chunks = if k == 0 { &[1u8][..] } else { &data[2..2 + k] };
    let stream = &data[2 + k..];

    let whole = one_shot(stream, &limits);
    // The 64 KiB "no terminator yet" limits legitimately depend on how much is buffered at
    // once; below that, splitting must change nothing.
    if stream.len() <= 64 * 1024 {
        assert_eq!(incremental(stream, chunks, &limits), whole);
        assert_eq!(incremental(stream, &[1], &limits), whole);
    } else {
        let _ = incremental(stream, chunks, &limits);
    }
}

// ---------------------------------------------------------------------------------------
// parse_inline: the inline grammar (Redis's sdssplitargs) on its own.

/// The arguments `split_inline` gives for a line, or its error.
fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut out = Vec::new();
    let mut spans = Vec::new();
    split_inline(line, &mut out, &mut spans)?;
    Ok(spans
        .iter()
        .map(|&(s, e)| out[s as usize..e as usize].to_vec())
        .collect())
}

/// One argument written in inline syntax: style 0 bare (when it has no blank, quote or
/// control byte), 1 single-quoted (when it has no newline or NUL and does not end with a
/// backslash), else double-quoted with
/// `\xHH` and the letter escapes.
fn quote(arg: &[u8], style: u8, out: &mut Vec<u8>) {
    let bare = !arg.is_empty()
        && arg
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\'');
    // In `'…'` only `\'` is an escape, so a final backslash cannot be written there.
    let single = !arg.iter().any(|&b| b == b'\n' || b == 0) && arg.last() != Some(&b'\\');
    match style % 3 {
        0 if bare => out.extend_from_slice(arg),
        1 if single => {
            out.push(b'\'');
            for &b in arg {
                if b == b'\'' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'\'');
        }
        _ => {
            out.push(b'"');
            for &b in arg {
                match b {
                    b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b' '..=b'~' => out.push(b),
                    _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                }
            }
            out.push(b'"');
        }
    }
}

/// Two properties of the inline grammar:
/// - any line: `split_inline` never panics, and the parser, given the line and `\r\n`, reads
///   the same arguments (or the same error, or an empty line);
/// - any argument list, written with a quoting style per argument (bare, `'…'`, `"…"`) and
///   separated by blanks, reads back as exactly that list.
///
/// Layout: the input up to the first `\n` is the line; after it, length-prefixed arguments
/// (one length byte, then the bytes), each preceded by a style byte.
pub fn parse_inline(data: &[u8]) {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let direct = split(line);
    if line.first() != Some(&b'*') {
        let mut req = line.to_vec();
        req.extend_from_slice(b"\r\n");
        let mut parser = Parser::new();
        match parser.parse(&req, &Limits::default()) {
            Ok(Parsed::Command { consumed }) => {
                assert_eq!(consumed, req.len());
                let args: Vec<Vec<u8>> = parser.args(&req).iter().map(<[u8]>::to_vec).collect();
                assert_eq!(Ok(args), direct);
            }
            Ok(Parsed::Empty { consumed }) => {
                assert_eq!(consumed, req.len());
                assert_eq!(direct, Ok(Vec::new()));
            }
            Ok(Parsed::Incomplete { .. }) => panic!("a whole line is never incomplete"),
            Err(e) => assert_eq!(Err(e), direct),
        }
    }

    let mut args = Vec::new();
    let mut text = Vec::new();
    let mut i = 0;
    while i + 2 <= rest.len() {
        let (style, len) = (rest[i], usize::from(rest[i + 1]));
        let arg = &rest[i + 2..(i + 2 + len).min(rest.len())];
        i += 2 + arg.len();
        if !args.is_empty() {
            text.extend_from_slice(if style & 4 == 0 { b" " } else { b" \t " });
        }
        quote(arg, style, &mut text);
        args.push(arg.to_vec());
    }
    assert_eq!(split(&text), Ok(args));
}

// ---------------------------------------------------------------------------------------
// config: redis.conf text, `--name value` overrides, CONFIG GET/SET and CONFIG REWRITE.

/// A fresh file name for one rewrite round trip (tests run inputs on several threads).
fn scratch_config_path() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    std::env::temp_dir().join(format!("flowkv-fuzz-config-{pid}-{n}.conf"))
}

/// Every directive's value, by canonical name.
fn all_values(c: &Config) -> Vec<(String, String)> {
    let mut v = c.matching(b"*");
    v.retain(|(name, _)| lookup(name).is_some_and(|d| d.name == name));
    v
}

/// redis.conf text plus command-line overrides:
/// - loading never panics; a loaded configuration accepts each of its own mutable values
///   back through CONFIG SET unchanged (what CONFIG GET prints is valid CONFIG SET input);
/// - CONFIG REWRITE of the loaded file gives a file that loads to the same values.
///
/// Layout: the text up to the first NUL is the file; the NUL-separated words after it are
/// the command line after the file name (`--name`, values). `include` is skipped (it reads
/// other files: a fuzzer would find `/dev/stdin`).
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    let mut parts = text.split('\0');
    let file = parts.next().unwrap_or_default();
    let path = scratch_config_path();
    if std::fs::write(&path, file).is_err() {
        return;
    }
    let mut args = vec![path.display().to_string()];
    args.extend(parts.map(str::to_string));
    check_config(&args);
    let _ = std::fs::remove_file(&path);
}

/// The [`config`] checks on a command line whose first word is the file.
fn check_config(args: &[String]) {
    let Ok(c) = Config::from_args(args) else {
        return;
    };
    let before = all_values(&c);
    for (name, value) in &before {
        let dir = lookup(name).expect("a listed directive exists");
        if dir.mutable {
            c.set_many(&[(name.clone(), value.clone())])
                .unwrap_or_else(|e| panic!("CONFIG SET {name} {value:?} of its own value: {e}"));
            assert_eq!(
                c.get(name).as_ref(),
                Some(value),
                "CONFIG SET {name} changed it"
            );
        }
    }
    c.rewrite().expect("CONFIG REWRITE");
    let again = Config::from_args(&args[..1])
        .unwrap_or_else(|e| panic!("the rewritten file does not load: {e}"));
    assert_eq!(
        all_values(&again),
        before,
        "the rewritten file loads differently"
    );
}

// ---------------------------------------------------------------------------------------
// acl_rules: ACL SETUSER's rule grammar and the ACL LIST text.

/// ACL SETUSER rules: applying them never panics, and when they are valid, the ACL LIST
/// text of the resulting user is itself valid SETUSER input that gives the same user (the
/// same text), as ACL SAVE / ACL LOAD rely on. Not checked for the two shapes Redis 7.0
/// itself prints ambiguously (kept for compatibility): a rule outside a selector holding a
/// space (`+select|a b`), and a parenthesis inside a rule (`(`, `+set`, `~x(y))` prints
/// as `(~x(y) +set)`).
///
/// Layout: byte 0 bit 0 is `acl-pubsub-default allchannels`; the rest, split at `\n`, are
/// the rule arguments.
pub fn acl_rules(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let all = flags & 1 == 1;
    let ops: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    let Ok(text) = setuser_rules_text(&ops, all) else {
        return;
    };
    let ambiguous = |op: &&[u8]| {
        let inner = op.strip_prefix(b"(").unwrap_or(op);
        let inner = inner.strip_suffix(b")").unwrap_or(inner);
        (op.first() != Some(&b'(') && op.contains(&b' '))
            || inner.iter().any(|&b| b == b'(' || b == b')')
    };
    if ops.iter().any(ambiguous) {
        return;
    }
    let words: Vec<&[u8]> = text
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .collect();
    let again = setuser_rules_text(&words, all).unwrap_or_else(|e| {
        panic!(
            "ACL LIST text {:?} is refused: {e}",
            String::from_utf8_lossy(&text)
        )
    });
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&text),
        "ACL LIST text does not reload to the same user"
    );
}

// ---------------------------------------------------------------------------------------
// rdb_load, restore_payload: the RDB reader.

/// Limits that make the loader convert between encodings (byte 0 odd) or Redis's defaults.
fn rdb_limits(small: bool) -> RdbLimits {
    if small {
        RdbLimits {
            hash: HashLimits {
                max_entries: 4,
                max_value: 8,
            },
            zset: ZSetLimits {
                max_listpack_entries: 4,
                max_listpack_value: 8,
            },
            max_intset: 4,
            list: NodeLimit::Count(3),
            stream: NodeLimits {
                max_bytes: 64,
                max_entries: 3,
            },
        }
    } else {
        RdbLimits {
            hash: HashLimits {
                max_entries: 128,
                max_value: 64,
            },
            zset: ZSetLimits {
                max_listpack_entries: 128,
                max_listpack_value: 64,
            },
            max_intset: 512,
            list: NodeLimit::Bytes(8192),
            stream: NodeLimits {
                max_bytes: 4096,
                max_entries: 100,
            },
        }
    }
}

/// A loaded entry dumps to a payload that restores to a value of the same type, which dumps
/// to a payload of the same size (sizes, not bytes: hash tables iterate in any order).
fn check_roundtrip(e: &Entry, lim: &RdbLimits) {
    let plain = WriteOptions { compress: false };
    let first = dump_payload(e, plain);
    let back = restore_payload(&first, lim)
        .unwrap_or_else(|err| panic!("a dumped {:?} does not restore: {err:?}", e.kind()))
        .into_entry(e.key(), None);
    assert_eq!(back.kind(), e.kind());
    assert_eq!(dump_payload(&back, plain).len(), first.len());
    let packed = dump_payload(e, WriteOptions { compress: true });
    restore_payload(&packed, lim).expect("a compressed dump restores");
}

/// A whole `.rdb` file: loading never panics, and every key it yields round-trips through
/// DUMP/RESTORE. Limits: small when the file's length is odd, Redis's defaults otherwise.
pub fn rdb_load(data: &[u8]) {
    let lim = rdb_limits(data.len() % 2 == 1);
    let _ = load(data, &lim, 16, 0, |_, e| {
        check_roundtrip(&e, &lim);
        Ok(())
    });
}

/// A DUMP payload body (the fuzzer's bytes, with a valid version and checksum appended so
/// the value decoders are reached): restoring never panics, and a restored value
/// round-trips. Byte 0 odd selects the small limits; the body starts after it.
pub fn restore_payload_roundtrip(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let lim = rdb_limits(sel & 1 == 1);
    let mut payload = body.to_vec();
    payload.extend_from_slice(&flowkv_persist::RDB_VERSION.to_le_bytes());
    let crc = flowkv_persist::format::crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    if let Ok(obj) = restore_payload(&payload, &lim) {
        check_roundtrip(&obj.into_entry(b"k", None), &lim);
    }
}
