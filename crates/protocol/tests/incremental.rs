//! Property tests: the parser must give the same commands however the byte
//! stream is split into reads, and the inline splitter must undo quoting.

use flowkv_protocol::{Limits, OwnedArgs, Parsed, Parser, ProtocolError};
use proptest::prelude::*;

/// What a parse loop observed, comparable across feeding strategies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Command(Vec<Vec<u8>>),
    Empty,
}

/// Outcome of feeding a whole stream: the events, then how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    events: Vec<Event>,
    end: Result<(usize, Option<usize>), ProtocolError>,
}

/// Feeds `stream` in chunks of the given sizes (cycled), the way a
/// connection does: the buffer grows by each read, and the consumed prefix
/// is removed after every command.
fn feed(stream: &[u8], chunks: &[usize], limits: &Limits) -> Outcome {
    let mut parser = Parser::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut fed = 0;
    let mut sizes = chunks.iter().copied().cycle();
    loop {
        let n = sizes.next().unwrap_or(1).max(1).min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        let hint = loop {
            match parser.parse(&buf, limits) {
                Ok(Parsed::Command { consumed }) => {
                    let args = parser.args(&buf).iter().map(<[u8]>::to_vec).collect();
                    events.push(Event::Command(args));
                    buf.drain(..consumed);
                }
                Ok(Parsed::Empty { consumed }) => {
                    events.push(Event::Empty);
                    buf.drain(..consumed);
                }
                Ok(Parsed::Incomplete { hint }) => {
                    if let Some(h) = hint {
                        assert!(h > buf.len(), "hint {h} <= buffered {}", buf.len());
                    }
                    break hint;
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

/// Parses `stream` with all bytes available at once, advancing an offset
/// instead of draining (the other way a server may drive the parser).
fn one_shot(stream: &[u8], limits: &Limits) -> Outcome {
    let mut parser = Parser::new();
    let mut events = Vec::new();
    let mut start = 0;
    loop {
        let buf = &stream[start..];
        match parser.parse(buf, limits) {
            Ok(Parsed::Command { consumed }) => {
                let args = parser.args(buf).iter().map(<[u8]>::to_vec).collect();
                events.push(Event::Command(args));
                start += consumed;
            }
            Ok(Parsed::Empty { consumed }) => {
                events.push(Event::Empty);
                start += consumed;
            }
            Ok(Parsed::Incomplete { hint }) => {
                return Outcome {
                    events,
                    end: Ok((buf.len(), hint)),
                }
            }
            Err(e) => {
                return Outcome {
                    events,
                    end: Err(e),
                }
            }
        }
    }
}

fn encode_multibulk(args: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Binary arguments, biased towards the bytes that matter to framing.
fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        prop::collection::vec(
            prop::sample::select(vec![b'\r', b'\n', b'$', b'*', b'0', b'1', b' ', b'"', b'a']),
            0..12
        ),
        // Occasionally bigger than the 64 KiB line limit would allow for a
        // header, to make sure payload size itself is not limited by it.
        prop::collection::vec(any::<u8>(), 0..3000),
    ]
}

#[derive(Debug, Clone)]
enum Req {
    Multibulk(Vec<Vec<u8>>),
    Inline(Vec<String>, bool),
    EmptyMultibulk(i8),
    EmptyLine,
}

fn request() -> impl Strategy<Value = Req> {
    prop_oneof![
        6 => prop::collection::vec(arg(), 1..6).prop_map(Req::Multibulk),
        2 => (prop::collection::vec("[a-zA-Z0-9:_-]{1,8}", 1..5), any::<bool>())
            .prop_map(|(t, crlf)| Req::Inline(t, crlf)),
        1 => (-3i8..=0).prop_map(Req::EmptyMultibulk),
        1 => Just(Req::EmptyLine),
    ]
}

fn encode(reqs: &[Req]) -> (Vec<u8>, Vec<Event>) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for r in reqs {
        match r {
            Req::Multibulk(args) => {
                encode_multibulk(args, &mut stream);
                expected.push(Event::Command(args.clone()));
            }
            Req::Inline(tokens, crlf) => {
                stream.extend_from_slice(tokens.join("  ").as_bytes());
                stream.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                expected.push(Event::Command(
                    tokens.iter().map(|t| t.as_bytes().to_vec()).collect(),
                ));
            }
            Req::EmptyMultibulk(n) => {
                stream.extend_from_slice(format!("*{n}\r\n").as_bytes());
                expected.push(Event::Empty);
            }
            Req::EmptyLine => {
                stream.extend_from_slice(b" \r\n");
                expected.push(Event::Empty);
            }
        }
    }
    (stream, expected)
}

/// Quotes `arg` so that the inline splitter must return it unchanged:
/// double quotes, printable ASCII as-is, everything else as an escape.
fn quote(arg: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in arg {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_split_gives_the_same_commands(
        reqs in prop::collection::vec(request(), 1..12),
        chunks in prop::collection::vec(1usize..80, 1..8),
    ) {
        let (stream, expected) = encode(&reqs);
        let limits = Limits::default();
        let whole = one_shot(&stream, &limits);
        prop_assert_eq!(&whole.events, &expected);
        prop_assert_eq!(&whole.end, &Ok((0, None)));
        let split = feed(&stream, &chunks, &limits);
        prop_assert_eq!(&split, &whole);
        let bytewise = feed(&stream, &[1], &limits);
        prop_assert_eq!(&bytewise, &whole);
    }

    /// Arbitrary (small, framing-heavy) garbage: splitting must not change
    /// anything, including which error is reported and the final hint.
    #[test]
    fn garbage_is_split_invariant(
        stream in prop::collection::vec(
            prop::sample::select(b"*$\r\n0123-x \"'\\:".to_vec()), 0..200),
        chunks in prop::collection::vec(1usize..16, 1..6),
        authenticated in any::<bool>(),
    ) {
        let limits = Limits { authenticated, max_bulk_len: 100, ..Limits::default() };
        let whole = one_shot(&stream, &limits);
        prop_assert_eq!(feed(&stream, &chunks, &limits), whole.clone());
        prop_assert_eq!(feed(&stream, &[1], &limits), whole);
    }

    #[test]
    fn inline_quoting_round_trips(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..6)) {
        let mut line = Vec::new();
        for a in &args {
            quote(a, &mut line);
            line.push(b' ');
        }
        line.extend_from_slice(b"\r\n");
        let mut parser = Parser::new();
        let r = parser.parse(&line, &Limits::default()).unwrap();
        prop_assert_eq!(r, Parsed::Command { consumed: line.len() });
        let got: Vec<Vec<u8>> = parser.args(&line).iter().map(<[u8]>::to_vec).collect();
        prop_assert_eq!(&got, &args);
        // And owned copies hold the same.
        let owned = parser.args(&line).to_owned();
        prop_assert_eq!(owned, OwnedArgs::from_slices(&args));
    }
}
