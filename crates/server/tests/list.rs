//! End-to-end tests of the list commands against the real binary: values, reply shapes in
//! RESP2 and RESP3, node conversion under a tiny `list-max-listpack-size`, and Redis 7.0's
//! exact error lines.

mod common;

use common::{bulk, dirty, err, int, ok, q, strings, Server};
use redis::{Connection, Value};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const SYNTAX: &str = "ERR syntax error";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

fn all(con: &mut Connection, key: &str) -> Vec<String> {
    strings(con, &["LRANGE", key, "0", "-1"])
}

fn exists(con: &mut Connection, key: &str) -> bool {
    int(con, &["EXISTS", key]) == 1
}

#[test]
fn push_pop_len_index() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["RPUSH", "l", "b", "c"]), 2);
    assert_eq!(int(&mut c, &["LPUSH", "l", "a", "z"]), 4);
    assert_eq!(all(&mut c, "l"), ["z", "a", "b", "c"]);
    assert_eq!(int(&mut c, &["LLEN", "l"]), 4);
    assert_eq!(int(&mut c, &["LLEN", "nokey"]), 0);
    assert_eq!(bulk(&mut c, &["LINDEX", "l", "0"]).as_deref(), Some("z"));
    assert_eq!(bulk(&mut c, &["LINDEX", "l", "-1"]).as_deref(), Some("c"));
    assert_eq!(bulk(&mut c, &["LINDEX", "l", "-4"]).as_deref(), Some("z"));
    assert_eq!(bulk(&mut c, &["LINDEX", "l", "-5"]), None);
    assert_eq!(bulk(&mut c, &["LINDEX", "l", "4"]), None);
    assert_eq!(bulk(&mut c, &["LINDEX", "nokey", "x"]), None);
    assert_eq!(err(&mut c, &["LINDEX", "l", "x"]), NOT_INT);
    assert_eq!(bulk(&mut c, &["LPOP", "l"]).as_deref(), Some("z"));
    assert_eq!(bulk(&mut c, &["RPOP", "l"]).as_deref(), Some("c"));
    assert_eq!(bulk(&mut c, &["LPOP", "nokey"]), None);
    assert_eq!(int(&mut c, &["LPUSHX", "nokey", "a"]), 0);
    assert_eq!(int(&mut c, &["RPUSHX", "nokey", "a"]), 0);
    assert!(!exists(&mut c, "nokey"));
    assert_eq!(int(&mut c, &["LPUSHX", "l", "x", "y"]), 4);
    assert_eq!(int(&mut c, &["RPUSHX", "l", "w"]), 5);
    assert_eq!(all(&mut c, "l"), ["y", "x", "a", "b", "w"]);
    assert_eq!(
        q(&mut c, &["TYPE", "l"]),
        Ok(Value::SimpleString("list".into()))
    );
    assert_eq!(
        q(&mut c, &["OBJECT", "ENCODING", "l"]),
        Ok(Value::BulkString(b"quicklist".to_vec()))
    );
}

#[test]
fn pop_with_count() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["RPUSH", "l", "a", "b", "c", "d", "e"]);
    assert_eq!(strings(&mut c, &["LPOP", "l", "2"]), ["a", "b"]);
    assert_eq!(strings(&mut c, &["RPOP", "l", "2"]), ["e", "d"]);
    assert_eq!(strings(&mut c, &["LPOP", "l", "0"]), Vec::<String>::new());
    assert_eq!(strings(&mut c, &["RPOP", "l", "10"]), ["c"]);
    assert!(!exists(&mut c, "l"));
    assert_eq!(q(&mut c, &["LPOP", "l", "1"]), Ok(Value::Nil));
    assert_eq!(err(&mut c, &["LPOP", "l", "-1"]), NOT_POSITIVE);
    assert_eq!(err(&mut c, &["RPOP", "l", "x"]), NOT_POSITIVE);
    assert_eq!(
        err(&mut c, &["LPOP", "l", "1", "2"]),
        "ERR wrong number of arguments for 'lpop' command"
    );

    // Exact null shapes: RESP2 null bulk vs null array; RESP3 `_` for both.
    let mut r = srv.raw();
    r.cmd(&[b"LPOP", b"nokey"]);
    r.expect("$-1\r\n");
    r.cmd(&[b"LPOP", b"nokey", b"1"]);
    r.expect("*-1\r\n");
    r.cmd(&[b"LPOP", b"nokey", b"0"]);
    r.expect("*-1\r\n");
    r.cmd(&[b"RPUSH", b"k", b"v"]);
    r.expect(":1\r\n");
    r.cmd(&[b"RPOP", b"k", b"0"]);
    r.expect("*0\r\n");
    r.cmd(&[b"LMPOP", b"1", b"nokey", b"LEFT"]);
    r.expect("*-1\r\n");
    let mut r3 = srv.raw();
    r3.cmd(&[b"HELLO", b"3"]);
    let first = r3.line();
    assert!(first.starts_with('%'), "{first}");
    // Drain HELLO's map with a PING sentinel.
    r3.cmd(&[b"PING"]);
    while r3.line() != "+PONG\r\n" {}
    r3.cmd(&[b"LPOP", b"nokey"]);
    r3.expect("_\r\n");
    r3.cmd(&[b"LPOP", b"nokey", b"2"]);
    r3.expect("_\r\n");
    r3.cmd(&[b"LMPOP", b"1", b"nokey", b"RIGHT"]);
    r3.expect("_\r\n");
}

#[test]
fn lrange_and_ltrim() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["RPUSH", "l", "0", "1", "2", "3", "4", "5"]);
    assert_eq!(strings(&mut c, &["LRANGE", "l", "1", "2"]), ["1", "2"]);
    assert_eq!(strings(&mut c, &["LRANGE", "l", "-2", "100"]), ["4", "5"]);
    assert_eq!(strings(&mut c, &["LRANGE", "l", "-100", "0"]), ["0"]);
    assert!(strings(&mut c, &["LRANGE", "l", "4", "2"]).is_empty());
    assert!(strings(&mut c, &["LRANGE", "l", "6", "10"]).is_empty());
    assert!(strings(&mut c, &["LRANGE", "nokey", "0", "-1"]).is_empty());
    assert_eq!(err(&mut c, &["LRANGE", "nokey", "x", "1"]), NOT_INT);
    ok(&mut c, &["LTRIM", "l", "1", "-2"]);
    assert_eq!(all(&mut c, "l"), ["1", "2", "3", "4"]);
    ok(&mut c, &["LTRIM", "l", "-3", "100"]);
    assert_eq!(all(&mut c, "l"), ["2", "3", "4"]);
    ok(&mut c, &["LTRIM", "nokey", "0", "1"]);
    assert_eq!(err(&mut c, &["LTRIM", "nokey", "0", "x"]), NOT_INT);
    ok(&mut c, &["LTRIM", "l", "2", "1"]);
    assert!(!exists(&mut c, "l"));
}

#[test]
fn lset_linsert_lrem() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["RPUSH", "l", "a", "b", "a", "c", "a"]);
    ok(&mut c, &["LSET", "l", "-1", "z"]);
    ok(&mut c, &["LSET", "l", "0", "y"]);
    assert_eq!(all(&mut c, "l"), ["y", "b", "a", "c", "z"]);
    assert_eq!(
        err(&mut c, &["LSET", "l", "5", "q"]),
        "ERR index out of range"
    );
    assert_eq!(
        err(&mut c, &["LSET", "l", "-6", "q"]),
        "ERR index out of range"
    );
    assert_eq!(err(&mut c, &["LSET", "nokey", "0", "q"]), "ERR no such key");
    assert_eq!(err(&mut c, &["LSET", "nokey", "x", "q"]), "ERR no such key");
    assert_eq!(err(&mut c, &["LSET", "l", "x", "q"]), NOT_INT);

    assert_eq!(int(&mut c, &["LINSERT", "l", "BEFORE", "a", "1"]), 6);
    assert_eq!(int(&mut c, &["LINSERT", "l", "after", "z", "2"]), 7);
    assert_eq!(int(&mut c, &["LINSERT", "l", "after", "nope", "2"]), -1);
    assert_eq!(int(&mut c, &["LINSERT", "nokey", "after", "a", "2"]), 0);
    assert_eq!(
        err(&mut c, &["LINSERT", "nokey", "aft3r", "a", "2"]),
        SYNTAX
    );
    assert_eq!(all(&mut c, "l"), ["y", "b", "1", "a", "c", "z", "2"]);

    int(&mut c, &["DEL", "l"]);
    int(&mut c, &["RPUSH", "l", "a", "b", "a", "c", "a", "a"]);
    assert_eq!(int(&mut c, &["LREM", "l", "-2", "a"]), 2);
    assert_eq!(all(&mut c, "l"), ["a", "b", "a", "c"]);
    assert_eq!(int(&mut c, &["LREM", "l", "1", "a"]), 1);
    assert_eq!(all(&mut c, "l"), ["b", "a", "c"]);
    assert_eq!(int(&mut c, &["LREM", "l", "0", "x"]), 0);
    assert_eq!(int(&mut c, &["LREM", "nokey", "0", "x"]), 0);
    assert_eq!(err(&mut c, &["LREM", "nokey", "x", "a"]), NOT_INT);
    int(&mut c, &["RPUSH", "l", "a"]);
    assert_eq!(int(&mut c, &["LREM", "l", "0", "a"]), 2);
    assert_eq!(int(&mut c, &["LREM", "l", "0", "b"]), 1);
    assert_eq!(int(&mut c, &["LREM", "l", "0", "c"]), 1);
    assert!(!exists(&mut c, "l"));
}

#[test]
fn lpos_options_and_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(
        &mut c,
        &["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"],
    );
    assert_eq!(int(&mut c, &["LPOS", "l", "c"]), 2);
    assert_eq!(int(&mut c, &["LPOS", "l", "c", "RANK", "2"]), 6);
    assert_eq!(int(&mut c, &["LPOS", "l", "c", "RANK", "-1"]), 7);
    assert_eq!(int(&mut c, &["LPOS", "l", "c", "RANK", "-3"]), 2);
    assert_eq!(q(&mut c, &["LPOS", "l", "c", "RANK", "4"]), Ok(Value::Nil));
    let ints = |c: &mut Connection, args: &[&str]| -> Vec<i64> {
        match q(c, args) {
            Ok(Value::Array(v)) => v
                .into_iter()
                .map(|x| match x {
                    Value::Int(n) => n,
                    o => panic!("{o:?}"),
                })
                .collect(),
            o => panic!("{args:?}: {o:?}"),
        }
    };
    assert_eq!(ints(&mut c, &["LPOS", "l", "c", "COUNT", "0"]), [2, 6, 7]);
    assert_eq!(ints(&mut c, &["LPOS", "l", "c", "COUNT", "2"]), [2, 6]);
    assert_eq!(
        ints(&mut c, &["LPOS", "l", "c", "COUNT", "0", "RANK", "-1"]),
        [7, 6, 2]
    );
    assert_eq!(
        ints(&mut c, &["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7"]),
        [2, 6]
    );
    assert!(ints(&mut c, &["LPOS", "l", "x", "COUNT", "0"]).is_empty());
    assert!(ints(&mut c, &["LPOS", "nokey", "x", "COUNT", "0"]).is_empty());
    assert_eq!(q(&mut c, &["LPOS", "nokey", "x"]), Ok(Value::Nil));
    assert_eq!(
        int(&mut c, &["LPOS", "l", "c", "RANK", "-9223372036854775808"]),
        7
    );
    assert_eq!(
        err(&mut c, &["LPOS", "nokey", "a", "RANK", "0"]),
        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "a", "COUNT", "-1"]),
        "ERR COUNT can't be negative"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "a", "COUNT", "x"]),
        "ERR COUNT can't be negative"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "a", "MAXLEN", "-1"]),
        "ERR MAXLEN can't be negative"
    );
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "RANK", "x"]), NOT_INT);
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "COUNT"]), SYNTAX);
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "FOO", "1"]), SYNTAX);
}

#[test]
fn lmove_rpoplpush_lmpop() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["RPUSH", "src", "a", "b", "c"]);
    assert_eq!(
        bulk(&mut c, &["RPOPLPUSH", "src", "dst"]).as_deref(),
        Some("c")
    );
    assert_eq!(
        bulk(&mut c, &["LMOVE", "src", "dst", "LEFT", "RIGHT"]).as_deref(),
        Some("a")
    );
    assert_eq!(all(&mut c, "dst"), ["c", "a"]);
    // Same key: a rotation.
    assert_eq!(
        bulk(&mut c, &["LMOVE", "dst", "dst", "left", "right"]).as_deref(),
        Some("c")
    );
    assert_eq!(all(&mut c, "dst"), ["a", "c"]);
    assert_eq!(
        bulk(&mut c, &["RPOPLPUSH", "src", "src"]).as_deref(),
        Some("b")
    );
    assert_eq!(all(&mut c, "src"), ["b"]);
    assert_eq!(
        bulk(&mut c, &["RPOPLPUSH", "src", "dst"]).as_deref(),
        Some("b")
    );
    assert!(!exists(&mut c, "src"));
    assert_eq!(bulk(&mut c, &["RPOPLPUSH", "src", "dst"]), None);
    assert_eq!(err(&mut c, &["LMOVE", "src", "dst", "up", "left"]), SYNTAX);
    ok(&mut c, &["SET", "s", "v"]);
    assert_eq!(
        err(&mut c, &["LMOVE", "dst", "s", "left", "left"]),
        WRONGTYPE
    );
    assert_eq!(err(&mut c, &["RPOPLPUSH", "s", "dst"]), WRONGTYPE);
    assert_eq!(all(&mut c, "dst"), ["b", "a", "c"]);

    int(&mut c, &["RPUSH", "m2", "1", "2", "3"]);
    let v = q(
        &mut c,
        &["LMPOP", "2", "nokey", "m2", "RIGHT", "COUNT", "2"],
    )
    .unwrap();
    assert_eq!(
        v,
        Value::Array(vec![
            Value::BulkString(b"m2".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"3".to_vec()),
                Value::BulkString(b"2".to_vec())
            ])
        ])
    );
    let v = q(&mut c, &["LMPOP", "1", "m2", "left"]).unwrap();
    assert_eq!(
        v,
        Value::Array(vec![
            Value::BulkString(b"m2".to_vec()),
            Value::Array(vec![Value::BulkString(b"1".to_vec())])
        ])
    );
    assert!(!exists(&mut c, "m2"));
    assert_eq!(q(&mut c, &["LMPOP", "1", "m2", "left"]), Ok(Value::Nil));
    assert_eq!(
        err(&mut c, &["LMPOP", "2", "nokey", "s", "LEFT"]),
        WRONGTYPE
    );
    let gt0 = "ERR numkeys should be greater than 0";
    assert_eq!(err(&mut c, &["LMPOP", "0", "m2", "left"]), gt0);
    assert_eq!(err(&mut c, &["LMPOP", "-1", "m2", "left"]), gt0);
    assert_eq!(err(&mut c, &["LMPOP", "x", "m2", "left"]), gt0);
    let cnt = "ERR count should be greater than 0";
    assert_eq!(
        err(&mut c, &["LMPOP", "1", "m2", "left", "COUNT", "0"]),
        cnt
    );
    assert_eq!(
        err(&mut c, &["LMPOP", "1", "m2", "left", "COUNT", "x"]),
        cnt
    );
    assert_eq!(err(&mut c, &["LMPOP", "5", "m2", "left"]), SYNTAX);
    assert_eq!(err(&mut c, &["LMPOP", "1", "m2", "middle"]), SYNTAX);
    assert_eq!(
        err(
            &mut c,
            &["LMPOP", "1", "m2", "left", "count", "1", "count", "1"]
        ),
        SYNTAX
    );
    assert_eq!(err(&mut c, &["LMPOP", "1", "m2", "left", "foo"]), SYNTAX);
    // Key extraction for COMMAND GETKEYS follows numkeys.
    assert_eq!(
        strings(
            &mut c,
            &["COMMAND", "GETKEYS", "LMPOP", "2", "a", "b", "LEFT"]
        ),
        ["a", "b"]
    );
}

#[test]
fn wrongtype_everywhere() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "s", "v"]);
    for args in [
        &["LPUSH", "s", "a"][..],
        &["RPUSH", "s", "a"],
        &["LPUSHX", "s", "a"],
        &["RPUSHX", "s", "a"],
        &["LPOP", "s"],
        &["RPOP", "s", "0"],
        &["LLEN", "s"],
        &["LRANGE", "s", "0", "-1"],
        &["LINDEX", "s", "0"],
        &["LINDEX", "s", "x"],
        &["LSET", "s", "0", "a"],
        &["LINSERT", "s", "before", "a", "b"],
        &["LREM", "s", "0", "a"],
        &["LTRIM", "s", "0", "1"],
        &["LPOS", "s", "a"],
        &["LMOVE", "s", "d", "left", "left"],
        &["LMPOP", "1", "s", "left"],
    ] {
        assert_eq!(err(&mut c, args), WRONGTYPE, "{args:?}");
    }
    assert_eq!(bulk(&mut c, &["GET", "s"]).as_deref(), Some("v"));
    int(&mut c, &["RPUSH", "l", "a"]);
    assert_eq!(err(&mut c, &["GET", "l"]), WRONGTYPE);
}

#[test]
fn many_nodes_with_a_tiny_node_limit() {
    let srv = Server::start(&["--list-max-listpack-size", "4"]);
    let mut c = srv.client();
    let n = 100;
    for i in 0..n {
        int(&mut c, &["RPUSH", "l", &i.to_string()]);
    }
    for i in (0..n).rev() {
        int(&mut c, &["LPUSH", "l", &format!("-{i}")]);
    }
    // LPUSH of -99 first and -0 last: the head is -0.
    let want: Vec<String> = (0..n)
        .map(|i| format!("-{i}"))
        .chain((0..n).map(|i| i.to_string()))
        .collect();
    assert_eq!(all(&mut c, "l"), want);
    assert_eq!(int(&mut c, &["LLEN", "l"]), 2 * n);
    for (i, w) in want.iter().enumerate().step_by(7) {
        assert_eq!(
            bulk(&mut c, &["LINDEX", "l", &i.to_string()]).as_ref(),
            Some(w)
        );
        let neg = format!("-{}", want.len() - i);
        assert_eq!(bulk(&mut c, &["LINDEX", "l", &neg]).as_ref(), Some(w));
    }
    assert_eq!(
        strings(&mut c, &["LRANGE", "l", "98", "101"]),
        ["-98", "-99", "0", "1"]
    );
    assert_eq!(int(&mut c, &["LINSERT", "l", "BEFORE", "50", "x"]), 201);
    ok(&mut c, &["LSET", "l", "3", "y"]);
    assert_eq!(int(&mut c, &["LPOS", "l", "x"]), 150);
    assert_eq!(int(&mut c, &["LREM", "l", "0", "y"]), 1);
    ok(&mut c, &["LTRIM", "l", "10", "-10"]);
    assert_eq!(int(&mut c, &["LLEN", "l"]), 181);
    assert_eq!(
        q(&mut c, &["OBJECT", "ENCODING", "l"]),
        Ok(Value::BulkString(b"quicklist".to_vec()))
    );
    // COPY gives an independent list.
    assert_eq!(int(&mut c, &["COPY", "l", "l2"]), 1);
    assert_eq!(all(&mut c, "l2"), all(&mut c, "l"));
    assert_eq!(strings(&mut c, &["LPOP", "l2", "1000"]).len(), 181);
    assert!(!exists(&mut c, "l2"));
    assert_eq!(int(&mut c, &["LLEN", "l"]), 181);
    assert_eq!(
        q(&mut c, &["TYPE", "l"]),
        Ok(Value::SimpleString("list".into()))
    );
}

#[test]
fn dirty_counts_like_redis() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let d0 = dirty(&mut c);
    int(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    assert_eq!(dirty(&mut c), d0 + 3);
    strings(&mut c, &["LPOP", "l", "2"]);
    assert_eq!(dirty(&mut c), d0 + 5);
    int(&mut c, &["LPUSHX", "nokey", "a"]);
    assert_eq!(dirty(&mut c), d0 + 5);
}

#[test]
fn debug_quicklist_packed_threshold_is_checked_and_big_elements_work() {
    let srv = Server::start(&["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    assert_eq!(
        q(&mut con, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1b"]),
        Ok(Value::Okay)
    );
    for bad in ["5gb", "-1", "1x"] {
        assert_eq!(
            err(&mut con, &["DEBUG", "QUICKLIST-PACKED-THRESHOLD", bad]),
            "ERR argument must be a memory value bigger than 1 and smaller than 4gb",
            "{bad}"
        );
    }
    // Elements of any size behave the same.
    let big = "x".repeat(100_000);
    let n: i64 = redis::cmd("RPUSH")
        .arg("l")
        .arg("a")
        .arg(&big)
        .arg("b")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 3);
    let mid: String = redis::cmd("LINDEX")
        .arg("l")
        .arg(1)
        .query(&mut con)
        .unwrap();
    assert_eq!(mid, big);
    let _: () = redis::cmd("LSET")
        .arg("l")
        .arg(0)
        .arg(&big)
        .query(&mut con)
        .unwrap();
    let all: Vec<String> = redis::cmd("LRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(all, [big.as_str(), big.as_str(), "b"]);
}
