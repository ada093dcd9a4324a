//! End-to-end tests of the string commands against the real binary: values, reply types,
//! TTL interplay and Redis's exact error lines.

mod common;

use std::time::Duration;

use common::{err_line, int, q, Server};
use redis::{cmd, Connection, Value};

fn s(con: &mut Connection, args: &[&str]) -> Option<String> {
    let mut c = cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).expect("command failed")
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const SYNTAX: &str = "ERR syntax error";
const NOT_INT: &str = "ERR value is not an integer or out of range";

/// Makes `key` hold a non-string value if a collection type exists yet; false otherwise.
fn make_non_string(con: &mut Connection, key: &str) -> bool {
    q(con, &["DEL", key]).unwrap();
    q(con, &["RPUSH", key, "a"]).is_ok()
        || q(con, &["SADD", key, "a"]).is_ok()
        || q(con, &["HSET", key, "f", "v"]).is_ok()
}

#[test]
fn get_set_and_options() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(s(&mut c, &["GET", "nokey"]), None);
    assert_eq!(s(&mut c, &["SET", "k", "v"]).as_deref(), Some("OK"));
    assert_eq!(s(&mut c, &["GET", "k"]).as_deref(), Some("v"));
    assert_eq!(s(&mut c, &["SET", "e", ""]).as_deref(), Some("OK"));
    assert_eq!(s(&mut c, &["GET", "e"]).as_deref(), Some(""));

    // NX / XX
    assert_eq!(s(&mut c, &["SET", "k", "x", "NX"]), None);
    assert_eq!(s(&mut c, &["SET", "new", "x", "XX"]), None);
    assert_eq!(s(&mut c, &["SET", "new", "x", "nx"]).as_deref(), Some("OK"));
    assert_eq!(s(&mut c, &["SET", "new", "y", "xx"]).as_deref(), Some("OK"));
    assert_eq!(s(&mut c, &["GET", "new"]).as_deref(), Some("y"));

    // GET option, alone and with NX/XX
    assert_eq!(s(&mut c, &["SET", "k", "v2", "GET"]).as_deref(), Some("v"));
    assert_eq!(s(&mut c, &["SET", "g", "v", "GET"]), None);
    assert_eq!(s(&mut c, &["GET", "g"]).as_deref(), Some("v"));
    assert_eq!(
        s(&mut c, &["SET", "g", "w", "NX", "GET"]).as_deref(),
        Some("v")
    );
    assert_eq!(s(&mut c, &["GET", "g"]).as_deref(), Some("v"));
    assert_eq!(s(&mut c, &["SET", "gx", "w", "XX", "GET"]), None);
    assert_eq!(s(&mut c, &["EXISTS", "gx"]).as_deref(), Some("0"));

    // Syntax errors and conflicting options
    for bad in [
        &["SET", "k", "v", "NX", "XX"][..],
        &["SET", "k", "v", "EX", "10", "PX", "100"],
        &["SET", "k", "v", "EX", "10", "KEEPTTL"],
        &["SET", "k", "v", "KEEPTTL", "PXAT", "10"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "PERSIST"],
        &["SET", "k", "v", "foo"],
    ] {
        assert_eq!(err_line(q(&mut c, bad)), SYNTAX, "{bad:?}");
    }
    assert_eq!(
        err_line(q(&mut c, &["SET", "k", "v", "EX", "abc"])),
        NOT_INT
    );
    for t in ["0", "-1", "9223372036854775807"] {
        assert_eq!(
            err_line(q(&mut c, &["SET", "k", "v", "EX", t])),
            "ERR invalid expire time in 'set' command"
        );
    }
    assert_eq!(
        err_line(q(&mut c, &["SETEX", "k", "-10", "v"])),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        err_line(q(&mut c, &["PSETEX", "k", "0", "v"])),
        "ERR invalid expire time in 'psetex' command"
    );
    assert_eq!(
        err_line(q(&mut c, &["SET", "k"])),
        "ERR wrong number of arguments for 'set' command"
    );
    assert_eq!(s(&mut c, &["GET", "k"]).as_deref(), Some("v2"));
}

#[test]
fn ttl_interplay() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(
        s(&mut c, &["SET", "k", "v", "EX", "100"]).as_deref(),
        Some("OK")
    );
    // TTL belongs to another family; check TTLs only once it exists.
    if q(&mut c, &["TTL", "k"]).is_ok() {
        {
            let ttl = int(&mut c, &["TTL", "k"]);
            assert!((99..=100).contains(&ttl), "{ttl}");
            q(&mut c, &["SET", "k", "v2", "KEEPTTL"]).unwrap();
            assert!(int(&mut c, &["TTL", "k"]) > 0);
            q(&mut c, &["APPEND", "k", "x"]).unwrap();
            q(&mut c, &["SETRANGE", "k", "0", "V"]).unwrap();
            assert!(int(&mut c, &["TTL", "k"]) > 0);
            assert_eq!(s(&mut c, &["GET", "k"]).as_deref(), Some("V2x"));
            q(&mut c, &["SET", "k", "v3"]).unwrap();
            assert_eq!(int(&mut c, &["TTL", "k"]), -1);
            // Counters keep the TTL.
            q(&mut c, &["SET", "n", "1", "EX", "100"]).unwrap();
            assert_eq!(int(&mut c, &["INCR", "n"]), 2);
            s(&mut c, &["INCRBYFLOAT", "n", "0.5"]);
            assert!(int(&mut c, &["TTL", "n"]) > 0);
            // GETEX sets and removes TTLs.
            assert_eq!(
                s(&mut c, &["GETEX", "k", "EX", "50"]).as_deref(),
                Some("v3")
            );
            assert!((49..=50).contains(&int(&mut c, &["TTL", "k"])));
            assert_eq!(s(&mut c, &["GETEX", "k", "PERSIST"]).as_deref(), Some("v3"));
            assert_eq!(int(&mut c, &["TTL", "k"]), -1);
            assert_eq!(
                s(&mut c, &["GETEX", "k", "PXAT", "99999999999999"]).as_deref(),
                Some("v3")
            );
            assert!(int(&mut c, &["TTL", "k"]) > 1_000_000);
            assert_eq!(s(&mut c, &["GETEX", "k"]).as_deref(), Some("v3"));
            assert!(int(&mut c, &["TTL", "k"]) > 1_000_000);
            q(&mut c, &["GETSET", "k", "v4"]).unwrap();
            assert_eq!(int(&mut c, &["TTL", "k"]), -1);
        }
    }
    // Expiry: PX then GET after it passed.
    q(&mut c, &["SET", "short", "v", "PX", "100"]).unwrap();
    q(&mut c, &["PSETEX", "short2", "100", "v"]).unwrap();
    q(&mut c, &["SETEX", "long", "100", "v"]).unwrap();
    assert_eq!(s(&mut c, &["GET", "short"]).as_deref(), Some("v"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s(&mut c, &["GET", "short"]), None);
    assert_eq!(s(&mut c, &["GET", "short2"]), None);
    assert_eq!(s(&mut c, &["GET", "long"]).as_deref(), Some("v"));
    // SET with EXAT/PXAT in the past: the key is gone on the next read.
    q(&mut c, &["SET", "past", "v", "PXAT", "1"]).unwrap();
    assert_eq!(s(&mut c, &["GET", "past"]), None);
    // GETEX with a past absolute time replies with the value, then deletes the key.
    q(&mut c, &["SET", "ge", "v"]).unwrap();
    assert_eq!(
        s(&mut c, &["GETEX", "ge", "EXAT", "1"]).as_deref(),
        Some("v")
    );
    assert_eq!(int(&mut c, &["EXISTS", "ge"]), 0);
    // GETEX errors.
    q(&mut c, &["SET", "ge", "v"]).unwrap();
    assert_eq!(
        err_line(q(&mut c, &["GETEX", "ge", "EX", "1", "PX", "1"])),
        SYNTAX
    );
    assert_eq!(
        err_line(q(&mut c, &["GETEX", "ge", "PERSIST", "EX", "1"])),
        SYNTAX
    );
    assert_eq!(err_line(q(&mut c, &["GETEX", "ge", "KEEPTTL"])), SYNTAX);
    assert_eq!(err_line(q(&mut c, &["GETEX", "ge", "NX"])), SYNTAX);
    assert_eq!(
        err_line(q(&mut c, &["GETEX", "ge", "EX", "-1"])),
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(s(&mut c, &["GETEX", "missing", "EX", "-1"]), None);
    assert_eq!(
        err_line(q(&mut c, &["GETEX"])),
        "ERR wrong number of arguments for 'getex' command"
    );
}

#[test]
fn getset_getdel_setnx_mget_mset() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(s(&mut c, &["GETSET", "k", "a"]), None);
    assert_eq!(s(&mut c, &["GETSET", "k", "b"]).as_deref(), Some("a"));
    assert_eq!(s(&mut c, &["GETDEL", "k"]).as_deref(), Some("b"));
    assert_eq!(s(&mut c, &["GETDEL", "k"]), None);
    assert_eq!(int(&mut c, &["SETNX", "k", "1"]), 1);
    assert_eq!(int(&mut c, &["SETNX", "k", "2"]), 0);
    assert_eq!(s(&mut c, &["GET", "k"]).as_deref(), Some("1"));

    assert_eq!(
        s(&mut c, &["MSET", "a", "1", "b", "2"]).as_deref(),
        Some("OK")
    );
    let v: Vec<Option<String>> = cmd("MGET")
        .arg("a")
        .arg("nope")
        .arg("b")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![Some("1".into()), None, Some("2".into())]);
    assert_eq!(
        err_line(q(&mut c, &["MSET", "a", "1", "b"])),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        err_line(q(&mut c, &["MSETNX", "a", "1", "b"])),
        "ERR wrong number of arguments for 'msetnx' command"
    );
    assert_eq!(int(&mut c, &["MSETNX", "x1", "1", "a", "9"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "x1"]), 0);
    assert_eq!(int(&mut c, &["MSETNX", "x1", "1", "y1", "2", "x1", "3"]), 1);
    assert_eq!(s(&mut c, &["GET", "x1"]).as_deref(), Some("3"));

    if make_non_string(&mut c, "coll") {
        assert_eq!(err_line(q(&mut c, &["GET", "coll"])), WRONGTYPE);
        assert_eq!(err_line(q(&mut c, &["SET", "coll", "v", "GET"])), WRONGTYPE);
        assert_eq!(err_line(q(&mut c, &["GETSET", "coll", "v"])), WRONGTYPE);
        assert_eq!(err_line(q(&mut c, &["GETDEL", "coll"])), WRONGTYPE);
        assert_eq!(err_line(q(&mut c, &["GETEX", "coll"])), WRONGTYPE);
        assert_eq!(err_line(q(&mut c, &["APPEND", "coll", "x"])), WRONGTYPE);
        assert_eq!(err_line(q(&mut c, &["INCR", "coll"])), WRONGTYPE);
        assert_eq!(
            err_line(q(&mut c, &["SETRANGE", "coll", "0", "x"])),
            WRONGTYPE
        );
        let v: Vec<Option<String>> = cmd("MGET").arg("coll").arg("a").query(&mut c).unwrap();
        assert_eq!(v, vec![None, Some("1".into())]);
        assert_eq!(s(&mut c, &["SET", "coll", "plain"]).as_deref(), Some("OK"));
        assert_eq!(s(&mut c, &["GET", "coll"]).as_deref(), Some("plain"));
    }
}

#[test]
fn counters() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["INCR", "n"]), 1);
    assert_eq!(int(&mut c, &["INCRBY", "n", "10"]), 11);
    assert_eq!(int(&mut c, &["DECR", "n"]), 10);
    assert_eq!(int(&mut c, &["DECRBY", "n", "20"]), -10);
    q(&mut c, &["SET", "n", "9223372036854775806"]).unwrap();
    assert_eq!(int(&mut c, &["INCR", "n"]), i64::MAX);
    assert_eq!(
        err_line(q(&mut c, &["INCR", "n"])),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        err_line(q(&mut c, &["DECRBY", "n", "-9223372036854775808"])),
        "ERR decrement would overflow"
    );
    for bad in [" 11", "11 ", "1.5", "", "abc", "01"] {
        q(&mut c, &["SET", "b", bad]).unwrap();
        assert_eq!(err_line(q(&mut c, &["INCR", "b"])), NOT_INT, "{bad:?}");
    }
    assert_eq!(err_line(q(&mut c, &["INCRBY", "n", "x"])), NOT_INT);

    let f = |c: &mut Connection, args: &[&str]| s(c, args).unwrap();
    q(&mut c, &["SET", "f", "10.5"]).unwrap();
    assert_eq!(f(&mut c, &["INCRBYFLOAT", "f", "0.1"]), "10.6");
    assert_eq!(f(&mut c, &["INCRBYFLOAT", "nf", "3.0e3"]), "3000");
    assert_eq!(f(&mut c, &["INCRBYFLOAT", "nf", "-3000"]), "0");
    q(&mut c, &["SET", "f", "0.1"]).unwrap();
    assert_eq!(f(&mut c, &["INCRBYFLOAT", "f", "0.2"]), "0.3");
    q(&mut c, &["SET", "f", "17179869184"]).unwrap();
    assert_eq!(f(&mut c, &["INCRBYFLOAT", "f", "1.5"]), "17179869185.5");
    q(&mut c, &["SET", "f", "1"]).unwrap();
    assert_eq!(f(&mut c, &["INCRBYFLOAT", "f", "-1.1"]), "-0.1");
    assert_eq!(
        err_line(q(&mut c, &["INCRBYFLOAT", "f", "+inf"])),
        "ERR increment would produce NaN or Infinity"
    );
    assert_eq!(
        err_line(q(&mut c, &["INCRBYFLOAT", "f", "abc"])),
        "ERR value is not a valid float"
    );
    q(&mut c, &["SET", "f", " 11"]).unwrap();
    assert_eq!(
        err_line(q(&mut c, &["INCRBYFLOAT", "f", "1"])),
        "ERR value is not a valid float"
    );
    // The reply is a bulk string.
    let v = q(&mut c, &["INCRBYFLOAT", "g", "1.5"]).unwrap();
    assert_eq!(v, Value::BulkString(b"1.5".to_vec()));
}

#[test]
fn append_strlen_ranges() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["APPEND", "k", "Hello"]), 5);
    assert_eq!(int(&mut c, &["APPEND", "k", " World"]), 11);
    assert_eq!(int(&mut c, &["STRLEN", "k"]), 11);
    assert_eq!(int(&mut c, &["STRLEN", "nokey"]), 0);
    assert_eq!(
        s(&mut c, &["GETRANGE", "k", "0", "4"]).as_deref(),
        Some("Hello")
    );
    assert_eq!(
        s(&mut c, &["GETRANGE", "k", "-5", "-1"]).as_deref(),
        Some("World")
    );
    assert_eq!(
        s(&mut c, &["GETRANGE", "k", "-1", "-5"]).as_deref(),
        Some("")
    );
    assert_eq!(
        s(&mut c, &["GETRANGE", "k", "5", "1000"]).as_deref(),
        Some(" World")
    );
    assert_eq!(s(&mut c, &["SUBSTR", "k", "0", "0"]).as_deref(), Some("H"));
    assert_eq!(
        s(&mut c, &["GETRANGE", "nokey", "0", "-1"]).as_deref(),
        Some("")
    );
    assert_eq!(
        err_line(q(&mut c, &["GETRANGE", "k", "0", "18446744073709551615"])),
        NOT_INT
    );
    assert_eq!(
        s(
            &mut c,
            &[
                "GETRANGE",
                "k",
                "-9223372036854775808",
                "9223372036854775807"
            ]
        )
        .as_deref(),
        Some("Hello World")
    );

    assert_eq!(int(&mut c, &["SETRANGE", "k", "6", "Redis"]), 11);
    assert_eq!(s(&mut c, &["GET", "k"]).as_deref(), Some("Hello Redis"));
    assert_eq!(int(&mut c, &["SETRANGE", "pad", "3", "x"]), 4);
    assert_eq!(s(&mut c, &["GET", "pad"]).as_deref(), Some("\0\0\0x"));
    assert_eq!(int(&mut c, &["SETRANGE", "empty", "5", ""]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "empty"]), 0);
    assert_eq!(int(&mut c, &["SETRANGE", "k", "100", ""]), 11);
    assert_eq!(
        err_line(q(&mut c, &["SETRANGE", "k", "-1", "x"])),
        "ERR offset is out of range"
    );
    let big = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
    assert_eq!(
        err_line(q(&mut c, &["SETRANGE", "k", "536870911", "xx"])),
        big
    );
    assert_eq!(
        err_line(q(&mut c, &["SETRANGE", "new", "536870912", "x"])),
        big
    );
    assert_eq!(
        err_line(q(&mut c, &["SETRANGE", "k", "9223372036854775807", "x"])),
        big
    );

    q(&mut c, &["SET", "num", "1234"]).unwrap();
    // OBJECT belongs to another family; check encodings only once it exists.
    let has_object = q(&mut c, &["OBJECT", "ENCODING", "num"]).is_ok();
    let encoding = |c: &mut Connection, want: &str| {
        if has_object {
            assert_eq!(s(c, &["OBJECT", "ENCODING", "num"]).as_deref(), Some(want));
        }
    };
    encoding(&mut c, "int");
    assert_eq!(int(&mut c, &["SETRANGE", "num", "0", ""]), 4);
    encoding(&mut c, "int");
    assert_eq!(int(&mut c, &["SETRANGE", "num", "1", "3"]), 4);
    encoding(&mut c, "raw");
    assert_eq!(s(&mut c, &["GET", "num"]).as_deref(), Some("1334"));
}

#[test]
fn lcs() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q(&mut c, &["MSET", "a", "ohmytext", "b", "mynewtext"]).unwrap();
    assert_eq!(s(&mut c, &["LCS", "a", "b"]).as_deref(), Some("mytext"));
    assert_eq!(int(&mut c, &["LCS", "a", "b", "LEN"]), 6);
    assert_eq!(s(&mut c, &["LCS", "a", "nokey"]).as_deref(), Some(""));
    let v = q(
        &mut c,
        &["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
    )
    .unwrap();
    let int = Value::Int;
    let arr = Value::Array;
    let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    assert_eq!(
        v,
        arr(vec![
            bulk("matches"),
            arr(vec![arr(vec![
                arr(vec![int(4), int(7)]),
                arr(vec![int(5), int(8)]),
                int(4)
            ])]),
            bulk("len"),
            int(6)
        ])
    );
    let v = q(&mut c, &["LCS", "a", "b", "IDX"]).unwrap();
    assert_eq!(
        v,
        arr(vec![
            bulk("matches"),
            arr(vec![
                arr(vec![arr(vec![int(4), int(7)]), arr(vec![int(5), int(8)])]),
                arr(vec![arr(vec![int(2), int(3)]), arr(vec![int(0), int(1)])]),
            ]),
            bulk("len"),
            int(6)
        ])
    );
    assert_eq!(
        err_line(q(&mut c, &["LCS", "a", "b", "LEN", "IDX"])),
        "ERR If you want both the length and indexes, please just use IDX."
    );
    assert_eq!(err_line(q(&mut c, &["LCS", "a", "b", "FOO"])), SYNTAX);
    assert_eq!(
        err_line(q(&mut c, &["LCS", "a", "b", "MINMATCHLEN"])),
        SYNTAX
    );
    if make_non_string(&mut c, "coll") {
        assert_eq!(
            err_line(q(&mut c, &["LCS", "a", "coll"])),
            "ERR The specified keys must contain string values"
        );
    }
}

#[test]
fn raw_replies_resp2_and_resp3() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.cmd(&[b"GET", b"missing"]);
    r.expect("$-1\r\n");
    r.cmd(&[b"SET", b"k", b"v", b"XX"]);
    r.expect("$-1\r\n");
    r.cmd(&[b"SETNX", b"k", b"v"]);
    r.expect(":1\r\n");
    r.cmd(&[b"MGET", b"k", b"x"]);
    r.expect("*2\r\n$1\r\nv\r\n$-1\r\n");
    r.cmd(&[b"INCRBYFLOAT", b"f", b"1.25"]);
    r.expect("$4\r\n1.25\r\n");
    r.cmd(&[b"SET", b"k", b"v", b"EX", b"0"]);
    r.expect("-ERR invalid expire time in 'set' command\r\n");
    r.cmd(&[b"MSET", b"a"]);
    r.expect("-ERR wrong number of arguments for 'mset' command\r\n");
    r.cmd(&[b"HELLO", b"3"]);
    let first = r.line();
    if first.starts_with('%') {
        // Drain the HELLO map (its size is on the first line), then check RESP3 nulls.
        let n: usize = first[1..first.len() - 2].parse().unwrap();
        for _ in 0..n * 2 {
            let l = r.line();
            if l.starts_with('$') {
                r.line();
            } else if l.starts_with('*') {
                let m: usize = l[1..l.len() - 2].parse().unwrap();
                for _ in 0..m {
                    r.line();
                }
            }
        }
        r.cmd(&[b"GET", b"missing"]);
        r.expect("_\r\n");
        r.cmd(&[b"MSET", b"a", b"ohmytext", b"b", b"mynewtext"]);
        r.expect("+OK\r\n");
        r.cmd(&[b"LCS", b"a", b"b", b"IDX", b"MINMATCHLEN", b"4"]);
        r.expect("%2\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n$3\r\nlen\r\n:6\r\n");
    }
}
