//! End-to-end tests of the HyperLogLog commands (PFADD, PFCOUNT, PFMERGE, PFDEBUG), and
//! interop with a real `redis-server` 7.0: the same elements must give the same string, byte
//! for byte (sparse and dense), each side must read the other's HLLs, and estimates must be
//! identical. The interop tests are skipped, with a note, when `redis-server` is not on PATH.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{err, int, ok, q, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Connection, Value};

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn get(con: &mut Connection, key: &str) -> Vec<u8> {
    redis::cmd("GET").arg(key).query(con).expect("GET")
}

fn set(con: &mut Connection, key: &str, val: &[u8]) {
    let () = redis::cmd("SET").arg(key).arg(val).query(con).expect("SET");
}

fn pfadd<E: redis::ToRedisArgs>(con: &mut Connection, key: &str, elements: &[E]) -> i64 {
    redis::cmd("PFADD")
        .arg(key)
        .arg(elements)
        .query(con)
        .expect("PFADD")
}

fn status(con: &mut Connection, args: &[&str]) -> String {
    match q(con, args) {
        Ok(Value::SimpleString(s)) => s,
        Ok(Value::Okay) => "OK".into(),
        other => panic!("{args:?}: expected a status, got {other:?}"),
    }
}

#[test]
fn pfadd_and_pfcount() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    // PFADD without elements creates an empty HLL; a second time it changes nothing.
    assert_eq!(int(&mut c, &["PFADD", "h"]), 1);
    assert_eq!(int(&mut c, &["PFADD", "h"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "h"]), 1);
    assert_eq!(int(&mut c, &["PFCOUNT", "h"]), 0);
    assert_eq!(int(&mut c, &["PFADD", "h", "a", "b", "c"]), 1);
    assert_eq!(int(&mut c, &["PFADD", "h", "a", "b", "c"]), 0);
    assert_eq!(int(&mut c, &["PFADD", "h", ""]), 1);
    assert_eq!(int(&mut c, &["PFCOUNT", "h"]), 4);
    assert_eq!(int(&mut c, &["PFCOUNT", "missing"]), 0);
    assert_eq!(status(&mut c, &["TYPE", "h"]), "string");
    assert_eq!(&get(&mut c, "h")[..5], b"HYLL\x01");
    // An HLL is a plain string: its TTL survives edits.
    assert_eq!(int(&mut c, &["EXPIRE", "h", "1000"]), 1);
    assert_eq!(int(&mut c, &["PFADD", "h", "x", "y"]), 1);
    assert!(int(&mut c, &["TTL", "h"]) > 0);
    // Arity.
    assert_eq!(
        err(&mut c, &["PFADD"]),
        "ERR wrong number of arguments for 'pfadd' command"
    );
    assert_eq!(
        err(&mut c, &["PFCOUNT"]),
        "ERR wrong number of arguments for 'pfcount' command"
    );
}

#[test]
fn cached_cardinality_lives_in_the_header() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    pfadd(&mut c, "h", &["a", "b", "c"]);
    assert_eq!(get(&mut c, "h")[15], 0x80, "stale after PFADD");
    assert_eq!(int(&mut c, &["PFCOUNT", "h"]), 3);
    let v = get(&mut c, "h");
    assert_eq!(&v[8..16], &3u64.to_le_bytes(), "cached by PFCOUNT");
    assert_eq!(pfadd(&mut c, "h", &["a", "b", "c"]), 0);
    assert_eq!(get(&mut c, "h")[15], 0, "no change keeps the cache");
    assert_eq!(pfadd(&mut c, "h", &["1", "2", "3"]), 1);
    assert_eq!(get(&mut c, "h")[15], 0x80);
    // A cached value is trusted as it is (Redis does the same).
    let mut v = get(&mut c, "h");
    v[8..16].copy_from_slice(&42u64.to_le_bytes());
    set(&mut c, "h", &v);
    assert_eq!(int(&mut c, &["PFCOUNT", "h"]), 42);
}

#[test]
fn type_and_corruption_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "str", "bar"]);
    assert_eq!(int(&mut c, &["LPUSH", "list", "x"]), 1);
    for args in [
        &["PFADD", "str", "1"][..],
        &["PFCOUNT", "str"],
        &["PFCOUNT", "str", "other"],
        &["PFMERGE", "dest", "str"],
        &["PFMERGE", "str", "dest"],
        &["PFDEBUG", "encoding", "str"],
    ] {
        assert_eq!(err(&mut c, args), NOT_HLL, "{args:?}");
    }
    assert_eq!(err(&mut c, &["PFADD", "list", "1"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["PFCOUNT", "list"]), WRONGTYPE);
    assert_eq!(int(&mut c, &["EXISTS", "dest"]), 0, "no dest on error");

    // Broken magic, unknown encoding, a dense header on a sparse body: not an HLL.
    pfadd(&mut c, "h", &["a", "b", "c"]);
    let good = get(&mut c, "h");
    for (pos, byte) in [(0, b'0'), (4, b'x'), (4, 0)] {
        let mut bad = good.clone();
        bad[pos] = byte;
        set(&mut c, "bad", &bad);
        assert_eq!(err(&mut c, &["PFCOUNT", "bad"]), NOT_HLL);
    }
    // Extra bytes at the tail: the header is fine, the registers are not.
    let mut bad = good.clone();
    bad.extend_from_slice(b"hello");
    set(&mut c, "bad", &bad);
    assert_eq!(err(&mut c, &["PFCOUNT", "bad"]), CORRUPT);
    assert_eq!(err(&mut c, &["PFCOUNT", "bad", "h"]), CORRUPT);
    assert_eq!(err(&mut c, &["PFMERGE", "h", "bad"]), CORRUPT);
    assert_eq!(err(&mut c, &["PFDEBUG", "todense", "bad"]), CORRUPT);
    // Random corruption never crashes the server.
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..300 {
        let mut bad = good.clone();
        for _ in 0..rng.gen_range(1..4) {
            let pos = rng.gen_range(0..bad.len());
            bad[pos] = rng.gen();
        }
        set(&mut c, "bad", &bad);
        let _ = q(&mut c, &["PFCOUNT", "bad"]);
        let _ = q(&mut c, &["PFADD", "bad", "x", "y", "z"]);
    }
    assert_eq!(int(&mut c, &["PFCOUNT", "h"]), 3);
}

#[test]
fn pfmerge_semantics() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    pfadd(&mut c, "h1", &["a", "b", "c"]);
    pfadd(&mut c, "h2", &["b", "c", "d"]);
    pfadd(&mut c, "h3", &["c", "d", "e"]);
    ok(&mut c, &["PFMERGE", "h", "h1", "h2", "h3"]);
    assert_eq!(int(&mut c, &["PFCOUNT", "h"]), 5);
    assert_eq!(int(&mut c, &["PFCOUNT", "h1", "h2", "h3", "missing"]), 5);
    // The multi-key count leaves its keys alone.
    assert_eq!(get(&mut c, "h1")[15], 0x80);
    // dest is also a source.
    ok(&mut c, &["PFMERGE", "h1", "h3"]);
    assert_eq!(int(&mut c, &["PFCOUNT", "h1"]), 5);
    // Missing sources only: dest is created empty (7.0).
    ok(&mut c, &["PFMERGE", "empty", "nope1", "nope2"]);
    assert_eq!(int(&mut c, &["PFCOUNT", "empty"]), 0);
    ok(&mut c, &["PFMERGE", "alone"]);
    assert_eq!(int(&mut c, &["EXISTS", "alone"]), 1);
    // A dense source makes dest dense.
    pfadd(&mut c, "d", &["x"]);
    assert_eq!(int(&mut c, &["PFDEBUG", "todense", "d"]), 1);
    ok(&mut c, &["PFMERGE", "h2", "d"]);
    assert_eq!(status(&mut c, &["PFDEBUG", "encoding", "h2"]), "dense");
    assert_eq!(int(&mut c, &["PFCOUNT", "h2"]), 4);
}

#[test]
fn pfdebug_subcommands() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    pfadd(&mut c, "h", &["a"]);
    assert_eq!(status(&mut c, &["PFDEBUG", "ENCODING", "h"]), "sparse");
    assert_eq!(
        q(&mut c, &["PFDEBUG", "decode", "h"]),
        Ok(Value::BulkString(b"Z:12711 v:2,1 Z:3672".to_vec()))
    );
    match q(&mut c, &["PFDEBUG", "getreg", "h"]) {
        Ok(Value::Array(regs)) => {
            assert_eq!(regs.len(), 16384);
            assert_eq!(regs[12711], Value::Int(2));
        }
        other => panic!("GETREG: {other:?}"),
    }
    // GETREG converted it to dense.
    assert_eq!(status(&mut c, &["PFDEBUG", "encoding", "h"]), "dense");
    assert_eq!(get(&mut c, "h").len(), 16 + 12288);
    assert_eq!(int(&mut c, &["PFDEBUG", "todense", "h"]), 0);
    assert_eq!(
        err(&mut c, &["PFDEBUG", "decode", "h"]),
        "ERR HLL encoding is not sparse"
    );
    assert_eq!(
        err(&mut c, &["PFDEBUG", "foo", "h"]),
        "ERR Unknown PFDEBUG subcommand 'foo'"
    );
    assert_eq!(
        err(&mut c, &["PFDEBUG", "encoding", "nokey"]),
        "ERR The specified key does not exist"
    );
    assert_eq!(
        err(&mut c, &["PFDEBUG", "encoding"]),
        "ERR wrong number of arguments for 'pfdebug' command"
    );
    // Dense HLLs keep working (and agree with the sparse form of the same set).
    pfadd(&mut c, "s", &["a", "b", "c", "d"]);
    pfadd(&mut c, "h", &["b", "c", "d"]);
    assert_eq!(
        int(&mut c, &["PFCOUNT", "h"]),
        int(&mut c, &["PFCOUNT", "s"])
    );
}

#[test]
fn sparse_promotes_to_dense() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let elements: Vec<String> = (0..200).map(|i| format!("e{i}")).collect();
    pfadd(&mut c, "h", &elements);
    assert_eq!(status(&mut c, &["PFDEBUG", "encoding", "h"]), "sparse");
    ok(&mut c, &["CONFIG", "SET", "hll-sparse-max-bytes", "100"]);
    pfadd(&mut c, "h", &["more", "elements", "here"]);
    assert_eq!(status(&mut c, &["PFDEBUG", "encoding", "h"]), "dense");
    assert_eq!(int(&mut c, &["PFCOUNT", "h"]), 203);
}

#[test]
fn pfselftest_passes() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["PFSELFTEST"]);
}

/// A real redis-server on a free port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts `redis-server`, or `None` (with a note) if it is not installed.
    fn start() -> Option<Redis> {
        let port = common::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            // A file name nobody writes: a stray dump.rdb in the temp dir must not be loaded.
            .args(["--dbfilename", &format!("flowkv-interop-{port}.rdb")])
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            eprintln!("note: redis-server not on PATH; skipping this interop test");
            return None;
        };
        let r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    fn client(&self) -> Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .expect("connect to redis-server")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// flowkv and redis-server side by side.
struct Both {
    _srv: Server,
    _redis: Redis,
    us: Connection,
    them: Connection,
}

impl Both {
    fn start() -> Option<Both> {
        let redis = Redis::start()?;
        let srv = Server::start(&[]);
        Some(Both {
            us: srv.client(),
            them: redis.client(),
            _srv: srv,
            _redis: redis,
        })
    }

    /// Runs a command on both; the replies must be identical.
    fn same<A: AsRef<[u8]> + std::fmt::Debug>(&mut self, args: &[A]) -> Value {
        let (a, b) = (q(&mut self.us, args), q(&mut self.them, args));
        match (a, b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{args:?}");
                a
            }
            (a, b) => {
                assert_eq!(
                    a.map_err(|e| e.to_string()),
                    b.map_err(|e| e.to_string()),
                    "{args:?}"
                );
                Value::Nil
            }
        }
    }

    fn pfadd(&mut self, key: &str, elements: &[String]) {
        let (a, b) = (
            pfadd(&mut self.us, key, elements),
            pfadd(&mut self.them, key, elements),
        );
        assert_eq!(a, b, "PFADD {key} ({} elements)", elements.len());
    }

    /// The key's bytes must be identical on both.
    fn same_bytes(&mut self, key: &str) -> Vec<u8> {
        let (a, b) = (get(&mut self.us, key), get(&mut self.them, key));
        assert!(
            a == b,
            "{key}: bytes differ (ours {} vs {})",
            a.len(),
            b.len()
        );
        a
    }
}

fn elements(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}:{i}")).collect()
}

#[test]
fn interop_same_bytes_sparse_and_dense() {
    let Some(mut b) = Both::start() else { return };
    for (key, size, batch) in [
        ("h0", 0, 1),
        ("h1", 1, 1),
        ("h10", 10, 3),
        ("h300", 300, 7),
        ("h2k", 2000, 50),
        ("h30k", 30_000, 1000),
    ] {
        b.pfadd(key, &[]);
        let mut n = 0;
        while n < size {
            let end = (n + batch).min(size);
            b.pfadd(key, &elements(key, n..end));
            b.same_bytes(key);
            n = end;
        }
        b.same(&["PFCOUNT", key]);
        b.same_bytes(key);
        b.same(&["PFDEBUG", "ENCODING", key]);
    }
    // One element at a time through the whole sparse range and past promotion.
    for (i, e) in elements("one", 0..3000).iter().enumerate() {
        b.pfadd("one", std::slice::from_ref(e));
        if i % 25 == 0 {
            b.same_bytes("one");
            b.same(&["PFCOUNT", "one"]);
        }
    }
    b.same_bytes("one");
    b.same(&["PFDEBUG", "ENCODING", "one"]);
}

#[test]
fn interop_same_bytes_with_small_sparse_limit() {
    let Some(mut b) = Both::start() else { return };
    let mut rng = StdRng::seed_from_u64(11);
    for limit in ["20", "60", "300", "1000"] {
        b.same(&["CONFIG", "SET", "hll-sparse-max-bytes", limit]);
        let key = format!("lim{limit}");
        for _ in 0..40 {
            let batch: Vec<String> = (0..rng.gen_range(1..20))
                .map(|_| rng.gen::<u64>().to_string())
                .collect();
            b.pfadd(&key, &batch);
            b.same_bytes(&key);
        }
        b.same(&["PFCOUNT", key.as_str()]);
    }
}

#[test]
fn interop_counts_match_for_1_to_100k() {
    let Some(mut b) = Both::start() else { return };
    // Pipelined: PFADD one element, PFCOUNT, for each n; every count must be identical.
    let mut n = 0u32;
    while n < 100_000 {
        let mut pipe = redis::pipe();
        for i in n..n + 1000 {
            pipe.cmd("PFADD").arg("c").arg(format!("el-{i}")).ignore();
            pipe.cmd("PFCOUNT").arg("c");
        }
        let ours: Vec<i64> = pipe.query(&mut b.us).expect("pipeline on flowkv");
        let theirs: Vec<i64> = pipe.query(&mut b.them).expect("pipeline on redis");
        for (k, (a, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a, t, "PFCOUNT after {} elements", n as usize + k + 1);
        }
        n += 1000;
    }
    b.same_bytes("c");
}

#[test]
fn interop_hlls_move_both_ways() {
    let Some(mut b) = Both::start() else { return };
    for (size, dense) in [(5, false), (500, false), (500, true), (20_000, true)] {
        let from_redis = format!("r{size}{dense}");
        let from_us = format!("u{size}{dense}");
        let els = elements("mv", 0..size);
        pfadd(&mut b.them, &from_redis, &els);
        pfadd(&mut b.us, &from_us, &els);
        if dense {
            int(&mut b.them, &["PFDEBUG", "TODENSE", &from_redis]);
            int(&mut b.us, &["PFDEBUG", "TODENSE", &from_us]);
        }
        // Each side's bytes, SET on the other side, read and extended the same way.
        let theirs = get(&mut b.them, &from_redis);
        let ours = get(&mut b.us, &from_us);
        assert!(theirs == ours, "{size}/{dense}: bytes differ");
        set(&mut b.us, &from_redis, &theirs);
        set(&mut b.them, &from_us, &ours);
        for key in [&from_redis, &from_us] {
            b.same(&["PFCOUNT", key.as_str()]);
            b.same_bytes(key);
            b.pfadd(key, &elements("more", 0..50));
            b.same_bytes(key);
        }
    }
}

#[test]
fn interop_pfmerge_identical() {
    let Some(mut b) = Both::start() else { return };
    b.pfadd("s1", &elements("a", 0..40));
    b.pfadd("s2", &elements("b", 0..150));
    b.pfadd("d1", &elements("c", 0..5000));
    b.pfadd("d2", &elements("a", 0..3000));
    b.same(&["PFDEBUG", "ENCODING", "d1"]);
    for (dest, srcs) in [
        ("m1", &["s1", "s2"][..]),
        ("m2", &["s1", "d1"]),
        ("m3", &["d1", "d2", "missing"]),
        ("s1", &["s2"]),
        ("s2", &["s2", "s1"]),
        ("m4", &["missing"]),
        ("d2", &["s2"]),
    ] {
        let mut args = vec!["PFMERGE", dest];
        args.extend_from_slice(srcs);
        b.same(&args);
        b.same_bytes(dest);
        b.same(&["PFCOUNT", dest]);
        let mut count = vec!["PFCOUNT"];
        count.extend_from_slice(srcs);
        b.same(&count);
    }
    // Sparse dest merged from many sparse sources, past the sparse limit.
    b.same(&["CONFIG", "SET", "hll-sparse-max-bytes", "200"]);
    b.same(&["PFMERGE", "m5", "s1", "s2"]);
    b.same_bytes("m5");
}

#[test]
fn interop_corrupt_values_behave_alike() {
    let Some(mut b) = Both::start() else { return };
    let mut rng = StdRng::seed_from_u64(3);
    for round in 0..300 {
        let n = rng.gen_range(0..400);
        let els: Vec<String> = (0..n).map(|_| rng.gen::<u32>().to_string()).collect();
        pfadd(&mut b.them, "src", &els);
        let mut v = get(&mut b.them, "src");
        int(&mut b.them, &["DEL", "src"]);
        for _ in 0..rng.gen_range(1..4) {
            let pos = rng.gen_range(4..v.len());
            v[pos] = rng.gen();
        }
        if round % 3 == 0 {
            v.truncate(rng.gen_range(16..=v.len()));
        }
        set(&mut b.us, "bad", &v);
        set(&mut b.them, "bad", &v);
        b.same(&["PFCOUNT", "bad"]);
        b.same(&["PFCOUNT", "bad", "bad"]);
        b.same_bytes("bad");
        b.same(&["PFADD", "bad", "x", "y", "z", "w"]);
        b.same_bytes("bad");
        b.same(&["PFMERGE", "bad", "bad"]);
        b.same_bytes("bad");
    }
}
