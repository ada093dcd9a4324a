//! Request parsing and reply encoding throughput.
//!
//! `pipeline16_set`: 16 pipelined `SET key:000000000123 <100-byte value>`
//! commands in one buffer, parsed the way a connection drains its query
//! buffer. `get`: one `GET key:000000000123` command. `inline_set`: the
//! same SET sent inline. `reply_*`: encoding common replies.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowkv_protocol::{Limits, Parsed, Parser, Proto, Reply};

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses every command in `buf`, returning the total argument bytes seen
/// so the work cannot be optimised away.
fn drain(parser: &mut Parser, buf: &[u8], limits: &Limits) -> usize {
    let mut start = 0;
    let mut seen = 0;
    loop {
        match parser.parse(&buf[start..], limits) {
            Ok(Parsed::Command { consumed }) => {
                let args = parser.args(&buf[start..]);
                seen += args.len() + args.get(args.len() - 1).len();
                start += consumed;
            }
            Ok(Parsed::Empty { consumed }) => start += consumed,
            Ok(Parsed::Incomplete { .. }) => return seen,
            Err(e) => panic!("{e}"),
        }
    }
}

fn bench_parse(c: &mut Criterion) {
    let limits = Limits::default();
    let value = [b'v'; 100];
    let set = multibulk(&[b"SET", b"key:000000000123", &value]);
    let pipeline: Vec<u8> = set.repeat(16);
    let get = multibulk(&[b"GET", b"key:000000000123"]);
    let mut inline = b"SET key:000000000123 ".to_vec();
    inline.extend_from_slice(&value);
    inline.extend_from_slice(b"\r\n");

    let mut group = c.benchmark_group("parse");
    let mut parser = Parser::new();

    group.throughput(Throughput::Bytes(pipeline.len() as u64));
    group.bench_function("pipeline16_set/bytes", |b| {
        b.iter(|| drain(&mut parser, black_box(&pipeline), &limits))
    });
    group.throughput(Throughput::Elements(16));
    group.bench_function("pipeline16_set/commands", |b| {
        b.iter(|| drain(&mut parser, black_box(&pipeline), &limits))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("get", |b| {
        b.iter(|| drain(&mut parser, black_box(&get), &limits))
    });
    group.bench_function("inline_set", |b| {
        b.iter(|| drain(&mut parser, black_box(&inline), &limits))
    });
    group.finish();
}

fn bench_reply(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply");
    let mut out = Vec::with_capacity(4096);
    let value = [b'v'; 100];
    group.throughput(Throughput::Elements(16));
    group.bench_function("bulk100x16", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, Proto::Resp2);
            for _ in 0..16 {
                r.bulk(black_box(&value));
            }
            out.len()
        })
    });
    group.bench_function("int_x16", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, Proto::Resp2);
            for i in 0..16i64 {
                r.int(black_box(i * 1_234_567));
            }
            out.len()
        })
    });
    group.bench_function("double_x16", |b| {
        b.iter(|| {
            out.clear();
            let mut r = Reply::new(&mut out, Proto::Resp3);
            for i in 0..16 {
                r.double(black_box(f64::from(i) * 0.1));
            }
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_reply);
criterion_main!(benches);
