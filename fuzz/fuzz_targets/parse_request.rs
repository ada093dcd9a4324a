//! Feeds arbitrary bytes to the request parser in arbitrary splits.
//!
//! Checks that nothing panics, that every reported span lies inside its
//! buffer, and that parsing the stream in pieces (growing buffer, consumed
//! prefix drained after each command; also one byte at a time) gives
//! exactly what parsing it with all bytes present gives: the same commands,
//! the same error, the same leftover and hint.
//!
//! Input layout: byte 0 picks the limits, byte 1 the number `k` (0..16) of
//! chunk-size bytes that follow; the rest is the byte stream.
#![no_main]

use flowkv_protocol::{Limits, Parsed, Parser, ProtocolError};
use libfuzzer_sys::fuzz_target;

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
        Parsed::Incomplete { .. } => unreachable!(),
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

fuzz_target!(|data: &[u8]| {
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
    // The 64 KiB "no terminator yet" limits legitimately depend on how much
    // is buffered at once; below that, splitting must change nothing.
    if stream.len() <= 64 * 1024 {
        assert_eq!(incremental(stream, chunks, &limits), whole);
        assert_eq!(incremental(stream, &[1], &limits), whole);
    } else {
        let _ = incremental(stream, chunks, &limits);
    }
});
