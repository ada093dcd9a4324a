//! End-to-end tests of the hash commands against the real binary: replies, reply types,
//! Redis's exact error lines, encoding conversion and deletion of emptied hashes.

mod common;

use std::collections::{HashMap, HashSet};

use common::{bulk, dirty, encoding, err, int, ok, q, strings, Server};
use redis::Value;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn set_get_and_counts() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["HSET", "h", "a", "1", "b", "2"]), 2);
    assert_eq!(int(&mut c, &["HSET", "h", "a", "10", "c", "3"]), 1);
    assert_eq!(bulk(&mut c, &["HGET", "h", "a"]).as_deref(), Some("10"));
    assert_eq!(bulk(&mut c, &["HGET", "h", "zz"]), None);
    assert_eq!(bulk(&mut c, &["HGET", "nokey", "a"]), None);
    assert_eq!(int(&mut c, &["HLEN", "h"]), 3);
    assert_eq!(int(&mut c, &["HLEN", "nokey"]), 0);
    assert_eq!(int(&mut c, &["HEXISTS", "h", "b"]), 1);
    assert_eq!(int(&mut c, &["HEXISTS", "h", "x"]), 0);
    assert_eq!(int(&mut c, &["HEXISTS", "nokey", "x"]), 0);
    assert_eq!(int(&mut c, &["HSTRLEN", "h", "a"]), 2);
    assert_eq!(int(&mut c, &["HSTRLEN", "h", "x"]), 0);
    assert_eq!(int(&mut c, &["HSTRLEN", "nokey", "x"]), 0);
    assert_eq!(int(&mut c, &["HSETNX", "h", "a", "new"]), 0);
    assert_eq!(int(&mut c, &["HSETNX", "h", "d", "4"]), 1);
    assert_eq!(int(&mut c, &["HSETNX", "fresh", "f", "v"]), 1);
    ok(&mut c, &["HMSET", "h", "e", "5", "a", "1"]);
    assert_eq!(
        q(&mut c, &["HMGET", "h", "a", "nope", "e"]).unwrap(),
        Value::Array(vec![
            Value::BulkString(b"1".to_vec()),
            Value::Nil,
            Value::BulkString(b"5".to_vec())
        ])
    );
    assert_eq!(
        q(&mut c, &["HMGET", "nokey", "a", "b"]).unwrap(),
        Value::Array(vec![Value::Nil, Value::Nil])
    );
    assert_eq!(
        sorted(strings(&mut c, &["HKEYS", "h"])),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        sorted(strings(&mut c, &["HVALS", "h"])),
        ["1", "2", "3", "4", "5"]
    );
    let all = strings(&mut c, &["HGETALL", "h"]);
    let map: HashMap<_, _> = all
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert_eq!(map.len(), 5);
    assert_eq!(map["c"], "3");
    assert!(strings(&mut c, &["HGETALL", "nokey"]).is_empty());
    assert!(strings(&mut c, &["HKEYS", "nokey"]).is_empty());
    assert_eq!(
        q(&mut c, &["TYPE", "h"]).unwrap(),
        Value::SimpleString("hash".into())
    );
}

#[test]
fn hdel_deletes_the_emptied_key() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(int(&mut c, &["HDEL", "h", "a", "x", "a"]), 1);
    assert_eq!(int(&mut c, &["HDEL", "nokey", "a"]), 0);
    assert_eq!(int(&mut c, &["HDEL", "h", "b", "c"]), 2);
    assert_eq!(int(&mut c, &["EXISTS", "h"]), 0);
    // The same in the hashtable encoding.
    int(&mut c, &["HSET", "t", "f", &"x".repeat(100)]);
    assert_eq!(encoding(&mut c, "t"), "hashtable");
    assert_eq!(int(&mut c, &["HDEL", "t", "f"]), 1);
    assert_eq!(int(&mut c, &["EXISTS", "t"]), 0);
}

#[test]
fn errors_and_wrongtype() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "s", "v"]);
    for args in [
        &["HSET", "s", "a", "1"][..],
        &["HSETNX", "s", "a", "1"],
        &["HMSET", "s", "a", "1"],
        &["HGET", "s", "a"],
        &["HMGET", "s", "a"],
        &["HGETALL", "s"],
        &["HKEYS", "s"],
        &["HVALS", "s"],
        &["HDEL", "s", "a"],
        &["HLEN", "s"],
        &["HEXISTS", "s", "a"],
        &["HSTRLEN", "s", "a"],
        &["HINCRBY", "s", "a", "1"],
        &["HINCRBYFLOAT", "s", "a", "1"],
        &["HRANDFIELD", "s"],
        &["HRANDFIELD", "s", "2"],
        &["HSCAN", "s", "0"],
    ] {
        assert_eq!(err(&mut c, args), WRONGTYPE, "{args:?}");
    }
    assert_eq!(
        err(&mut c, &["HSET", "h", "a", "1", "b"]),
        "ERR wrong number of arguments for 'hset' command"
    );
    assert_eq!(
        err(&mut c, &["HMSET", "h", "a", "1", "b"]),
        "ERR wrong number of arguments for 'hmset' command"
    );
    assert_eq!(
        err(&mut c, &["HSET", "h", "a"]),
        "ERR wrong number of arguments for 'hset' command"
    );
    assert_eq!(int(&mut c, &["EXISTS", "h"]), 0);
}

#[test]
fn hincrby_and_hincrbyfloat() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["HINCRBY", "h", "n", "5"]), 5);
    assert_eq!(int(&mut c, &["HINCRBY", "h", "n", "-7"]), -2);
    assert_eq!(
        err(&mut c, &["HINCRBY", "h", "n", "x"]),
        "ERR value is not an integer or out of range"
    );
    int(
        &mut c,
        &[
            "HSET",
            "h",
            "s",
            "abc",
            "sp",
            " 1",
            "big",
            "9223372036854775807",
        ],
    );
    assert_eq!(
        err(&mut c, &["HINCRBY", "h", "s", "1"]),
        "ERR hash value is not an integer"
    );
    assert_eq!(
        err(&mut c, &["HINCRBY", "h", "sp", "1"]),
        "ERR hash value is not an integer"
    );
    assert_eq!(
        err(&mut c, &["HINCRBY", "h", "big", "1"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        bulk(&mut c, &["HINCRBYFLOAT", "h", "f", "10.5"]).as_deref(),
        Some("10.5")
    );
    assert_eq!(
        bulk(&mut c, &["HINCRBYFLOAT", "h", "f", "0.1"]).as_deref(),
        Some("10.6")
    );
    assert_eq!(
        bulk(&mut c, &["HINCRBYFLOAT", "h", "n", "2.5"]).as_deref(),
        Some("0.5")
    );
    assert_eq!(
        bulk(&mut c, &["HINCRBYFLOAT", "h", "g", "5.0e3"]).as_deref(),
        Some("5000")
    );
    assert_eq!(
        err(&mut c, &["HINCRBYFLOAT", "h", "s", "1"]),
        "ERR hash value is not a float"
    );
    assert_eq!(
        err(&mut c, &["HINCRBYFLOAT", "h", "f", "x"]),
        "ERR value is not a valid float"
    );
    assert_eq!(
        err(&mut c, &["HINCRBYFLOAT", "h", "f", "inf"]),
        "ERR value is NaN or Infinity"
    );
    int(&mut c, &["HSET", "h", "max", "1.7e308"]);
    assert_eq!(
        err(&mut c, &["HINCRBYFLOAT", "h", "max", "1.7e308"]),
        "ERR increment would produce NaN or Infinity"
    );
    // A failed increment on a missing key creates nothing.
    assert_eq!(
        err(&mut c, &["HINCRBY", "nokey", "f", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(int(&mut c, &["EXISTS", "nokey"]), 0);
}

#[test]
fn encoding_converts_past_the_limits() {
    let srv = Server::start(&[
        "--hash-max-listpack-entries",
        "4",
        "--hash-max-listpack-value",
        "8",
    ]);
    let mut c = srv.client();
    int(
        &mut c,
        &["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4"],
    );
    assert_eq!(encoding(&mut c, "h"), "listpack");
    int(&mut c, &["HSET", "h", "e", "5"]);
    assert_eq!(encoding(&mut c, "h"), "hashtable");
    assert_eq!(int(&mut c, &["HDEL", "h", "a", "b", "c", "d"]), 4);
    assert_eq!(encoding(&mut c, "h"), "hashtable");
    assert_eq!(bulk(&mut c, &["HGET", "h", "e"]).as_deref(), Some("5"));

    int(&mut c, &["HSET", "v", "f", "12345678"]);
    assert_eq!(encoding(&mut c, "v"), "listpack");
    int(&mut c, &["HSET", "v", "g", "123456789"]);
    assert_eq!(encoding(&mut c, "v"), "hashtable");
    int(&mut c, &["HSET", "k", "123456789", "x"]);
    assert_eq!(encoding(&mut c, "k"), "hashtable");
    // HINCRBYFLOAT producing a long value converts too.
    int(&mut c, &["HSET", "i", "f", "1"]);
    bulk(&mut c, &["HINCRBYFLOAT", "i", "f", "0.123456789"]);
    assert_eq!(encoding(&mut c, "i"), "hashtable");

    ok(&mut c, &["CONFIG", "SET", "hash-max-ziplist-entries", "0"]);
    int(&mut c, &["HSET", "z", "a", "1"]);
    assert_eq!(encoding(&mut c, "z"), "hashtable");
}

#[test]
fn copy_and_type() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(
        q(&mut c, &["TYPE", "h"]).unwrap(),
        Value::SimpleString("hash".into())
    );
    assert_eq!(int(&mut c, &["COPY", "h", "h2"]), 1);
    int(&mut c, &["HSET", "h", "a", "changed"]);
    assert_eq!(bulk(&mut c, &["HGET", "h2", "a"]).as_deref(), Some("1"));
    assert_eq!(int(&mut c, &["HLEN", "h2"]), 2);
}

#[test]
fn hrandfield_counts_and_shapes() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(bulk(&mut c, &["HRANDFIELD", "nokey"]), None);
    assert!(strings(&mut c, &["HRANDFIELD", "nokey", "5"]).is_empty());
    int(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    let one = bulk(&mut c, &["HRANDFIELD", "h"]).unwrap();
    assert!(["a", "b", "c"].contains(&one.as_str()));
    assert!(strings(&mut c, &["HRANDFIELD", "h", "0"]).is_empty());
    assert_eq!(
        sorted(strings(&mut c, &["HRANDFIELD", "h", "10"])),
        ["a", "b", "c"]
    );
    let two = strings(&mut c, &["HRANDFIELD", "h", "2"]);
    assert_eq!(two.iter().collect::<HashSet<_>>().len(), 2);
    let many = strings(&mut c, &["HRANDFIELD", "h", "-20"]);
    assert_eq!(many.len(), 20);
    let pairs = strings(&mut c, &["HRANDFIELD", "h", "-5", "WITHVALUES"]);
    assert_eq!(pairs.len(), 10);
    for p in pairs.chunks(2) {
        let want = match p[0].as_str() {
            "a" => "1",
            "b" => "2",
            _ => "3",
        };
        assert_eq!(p[1], want);
    }
    assert_eq!(
        err(&mut c, &["HRANDFIELD", "h", "1", "foo"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["HRANDFIELD", "h", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(
            &mut c,
            &["HRANDFIELD", "h", "-9223372036854770000", "withvalues"]
        ),
        "ERR value is out of range"
    );
    assert_eq!(
        err(&mut c, &["HRANDFIELD", "h", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    // A big hash (hashtable) with a small distinct count.
    let mut args = vec!["HSET".to_string(), "big".into()];
    for i in 0..1000 {
        args.push(format!("f{i}"));
        args.push(format!("v{i}"));
    }
    int(&mut c, &args);
    let picked = strings(&mut c, &["HRANDFIELD", "big", "50"]);
    assert_eq!(picked.iter().collect::<HashSet<_>>().len(), 50);
    let picked = strings(&mut c, &["HRANDFIELD", "big", "900", "WITHVALUES"]);
    assert_eq!(picked.len(), 1800);
    assert!(picked.chunks(2).all(|p| p[1] == format!("v{}", &p[0][1..])));
}

#[test]
fn hscan_both_encodings() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    // Missing key: the empty scan reply.
    assert_eq!(
        q(&mut c, &["HSCAN", "nokey", "0"]).unwrap(),
        Value::Array(vec![Value::BulkString(b"0".to_vec()), Value::Array(vec![])])
    );
    int(&mut c, &["HSET", "small", "a1", "1", "b1", "2", "a2", "3"]);
    let reply = q(
        &mut c,
        &["HSCAN", "small", "0", "MATCH", "a*", "COUNT", "1"],
    )
    .unwrap();
    let Value::Array(parts) = reply else { panic!() };
    assert_eq!(parts[0], Value::BulkString(b"0".to_vec()));
    assert_eq!(
        parts[1],
        Value::Array(
            ["a1", "1", "a2", "3"]
                .iter()
                .map(|s| Value::BulkString(s.as_bytes().to_vec()))
                .collect()
        )
    );
    assert_eq!(err(&mut c, &["HSCAN", "small", "x"]), "ERR invalid cursor");
    assert_eq!(
        err(&mut c, &["HSCAN", "small", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["HSCAN", "small", "0", "TYPE", "hash"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["HSCAN", "small", "0", "MATCH"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["HSCAN", "small", "0", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
    // Hashtable: a full cursor iteration returns every field.
    let mut args = vec!["HSET".to_string(), "big".into()];
    for i in 0..600 {
        args.push(format!("f{i}"));
        args.push(format!("{i}"));
    }
    int(&mut c, &args);
    assert_eq!(encoding(&mut c, "big"), "hashtable");
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    loop {
        let reply = q(&mut c, &["HSCAN", "big", &cursor, "COUNT", "20"]).unwrap();
        let Value::Array(parts) = reply else { panic!() };
        let Value::BulkString(next) = &parts[0] else {
            panic!()
        };
        cursor = String::from_utf8(next.clone()).unwrap();
        let Value::Array(items) = &parts[1] else {
            panic!()
        };
        for p in items.chunks(2) {
            let (Value::BulkString(f), Value::BulkString(v)) = (&p[0], &p[1]) else {
                panic!()
            };
            assert_eq!(f[1..], v[..]);
            seen.insert(f.clone());
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 600);
}

#[test]
fn resp3_shapes() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.hello3();
    r.cmd(&[b"HSET", b"h", b"a", b"1"]);
    r.expect(":1\r\n");
    r.cmd(&[b"HGETALL", b"h"]);
    r.expect("%1\r\n$1\r\na\r\n$1\r\n1\r\n");
    r.cmd(&[b"HGETALL", b"nokey"]);
    r.expect("%0\r\n");
    r.cmd(&[b"HRANDFIELD", b"h", b"-2", b"WITHVALUES"]);
    r.expect("*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    r.cmd(&[b"HRANDFIELD", b"h", b"3", b"WITHVALUES"]);
    r.expect("*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    r.cmd(&[b"HGET", b"h", b"zz"]);
    r.expect("_\r\n");
}

#[test]
fn writes_count_as_changes() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let d0 = dirty(&mut c);
    int(&mut c, &["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(dirty(&mut c), d0 + 2);
    int(&mut c, &["HSETNX", "h", "a", "1"]);
    assert_eq!(dirty(&mut c), d0 + 2);
    int(&mut c, &["HDEL", "h", "a", "zz"]);
    assert_eq!(dirty(&mut c), d0 + 3);
    int(&mut c, &["HINCRBY", "h", "n", "1"]);
    assert_eq!(dirty(&mut c), d0 + 4);
}
