//! End-to-end tests of the set commands against the real binary: replies, reply types,
//! Redis 7.0's exact error lines, intset → hashtable conversion and deletion of emptied sets.

mod common;

use std::collections::HashSet;

use common::{bulk, encoding, err, int, ok, q, strings, Server};
use redis::{Connection, Value};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn sorted(con: &mut Connection, args: &[&str]) -> Vec<String> {
    let mut v = strings(con, args);
    v.sort();
    v
}

#[test]
fn add_remove_and_membership() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["SADD", "s", "a", "b", "a"]), 2);
    assert_eq!(int(&mut c, &["SADD", "s", "b", "c"]), 1);
    assert_eq!(sorted(&mut c, &["SMEMBERS", "s"]), ["a", "b", "c"]);
    assert_eq!(
        strings(&mut c, &["SMEMBERS", "nokey"]),
        Vec::<String>::new()
    );
    assert_eq!(int(&mut c, &["SCARD", "s"]), 3);
    assert_eq!(int(&mut c, &["SCARD", "nokey"]), 0);
    assert_eq!(int(&mut c, &["SISMEMBER", "s", "a"]), 1);
    assert_eq!(int(&mut c, &["SISMEMBER", "s", "z"]), 0);
    assert_eq!(int(&mut c, &["SISMEMBER", "nokey", "z"]), 0);
    assert_eq!(
        q(&mut c, &["SMISMEMBER", "s", "a", "z", "c"]),
        Ok(Value::Array(vec![
            Value::Int(1),
            Value::Int(0),
            Value::Int(1)
        ]))
    );
    assert_eq!(
        q(&mut c, &["SMISMEMBER", "nokey", "a"]),
        Ok(Value::Array(vec![Value::Int(0)]))
    );
    assert_eq!(int(&mut c, &["SREM", "s", "a", "z"]), 1);
    assert_eq!(int(&mut c, &["SREM", "nokey", "a"]), 0);
    assert_eq!(int(&mut c, &["SREM", "s", "b", "c"]), 2);
    assert_eq!(int(&mut c, &["EXISTS", "s"]), 0);
    assert_eq!(
        q(&mut c, &["TYPE", "s"]),
        Ok(Value::SimpleString("none".into()))
    );
    int(&mut c, &["SADD", "s", "x"]);
    assert_eq!(
        q(&mut c, &["TYPE", "s"]),
        Ok(Value::SimpleString("set".into()))
    );
}

#[test]
fn errors_and_wrongtype() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "str", "v"]);
    for args in [
        &["SADD", "str", "a"][..],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SRANDMEMBER", "str"],
        &["SINTER", "str"],
        &["SUNION", "nokey", "str"],
        &["SDIFF", "nokey", "str"],
        &["SINTERSTORE", "d", "str"],
        &["SSCAN", "str", "0"],
    ] {
        assert_eq!(err(&mut c, args), WRONGTYPE, "{args:?}");
    }
    assert_eq!(
        err(&mut c, &["SADD", "s"]),
        "ERR wrong number of arguments for 'sadd' command"
    );
    int(&mut c, &["SADD", "s", "1", "2"]);
    let positive = "ERR value is out of range, must be positive";
    assert_eq!(err(&mut c, &["SPOP", "s", "-1"]), positive);
    assert_eq!(err(&mut c, &["SPOP", "s", "x"]), positive);
    assert_eq!(err(&mut c, &["SPOP", "s", "1", "2"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["SRANDMEMBER", "s", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["SRANDMEMBER", "s", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(
        err(&mut c, &["SRANDMEMBER", "s", "1", "2"]),
        "ERR syntax error"
    );
    assert_eq!(err(&mut c, &["SSCAN", "s", "x"]), "ERR invalid cursor");
    assert_eq!(
        err(&mut c, &["SSCAN", "s", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SSCAN", "s", "0", "FOO", "1"]),
        "ERR syntax error"
    );
}

#[test]
fn intset_converts_to_hashtable() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["SADD", "s", "1", "2", "-3"]);
    assert_eq!(encoding(&mut c, "s"), "intset");
    int(&mut c, &["SADD", "s", "01"]);
    assert_eq!(encoding(&mut c, "s"), "hashtable");
    assert_eq!(sorted(&mut c, &["SMEMBERS", "s"]), ["-3", "01", "1", "2"]);
    int(&mut c, &["SADD", "t", "a"]);
    assert_eq!(encoding(&mut c, "t"), "hashtable");
    ok(&mut c, &["CONFIG", "SET", "set-max-intset-entries", "3"]);
    int(&mut c, &["SADD", "u", "1", "2", "3"]);
    assert_eq!(encoding(&mut c, "u"), "intset");
    int(&mut c, &["SADD", "u", "4"]);
    assert_eq!(encoding(&mut c, "u"), "hashtable");
    int(&mut c, &["SREM", "u", "4", "3"]);
    assert_eq!(encoding(&mut c, "u"), "hashtable");
}

#[test]
fn spop_and_srandmember() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(bulk(&mut c, &["SPOP", "nokey"]), None);
    assert_eq!(q(&mut c, &["SPOP", "nokey", "3"]), Ok(Value::Array(vec![])));
    assert_eq!(bulk(&mut c, &["SRANDMEMBER", "nokey"]), None);
    assert_eq!(
        q(&mut c, &["SRANDMEMBER", "nokey", "5"]),
        Ok(Value::Array(vec![]))
    );
    for enc in ["1 2 3 4 5 6 7 8 9 10", "a b c d e f g h i j"] {
        let members: Vec<&str> = enc.split(' ').collect();
        let all: HashSet<String> = members.iter().map(|s| s.to_string()).collect();
        let mut args = vec!["SADD", "s"];
        args.extend(&members);
        int(&mut c, &args);
        let one = bulk(&mut c, &["SRANDMEMBER", "s"]).expect("member");
        assert!(all.contains(&one));
        let three = strings(&mut c, &["SRANDMEMBER", "s", "3"]);
        assert_eq!(three.iter().collect::<HashSet<_>>().len(), 3);
        assert_eq!(sorted(&mut c, &["SRANDMEMBER", "s", "100"]).len(), 10);
        let reps = strings(&mut c, &["SRANDMEMBER", "s", "-30"]);
        assert_eq!(reps.len(), 30);
        assert!(reps.iter().all(|m| all.contains(m)));
        assert_eq!(
            q(&mut c, &["SRANDMEMBER", "s", "0"]),
            Ok(Value::Array(vec![]))
        );
        assert_eq!(q(&mut c, &["SPOP", "s", "0"]), Ok(Value::Array(vec![])));
        let popped = bulk(&mut c, &["SPOP", "s"]).expect("member");
        assert!(all.contains(&popped));
        let four = strings(&mut c, &["SPOP", "s", "4"]);
        assert_eq!(four.iter().collect::<HashSet<_>>().len(), 4);
        assert_eq!(int(&mut c, &["SCARD", "s"]), 5);
        let rest = strings(&mut c, &["SPOP", "s", "50"]);
        assert_eq!(rest.len(), 5);
        let mut seen: HashSet<String> = rest.into_iter().chain(four).collect();
        seen.insert(popped);
        assert_eq!(seen, all);
        assert_eq!(int(&mut c, &["EXISTS", "s"]), 0);
    }
}

#[test]
fn spop_of_most_members_rebuilds_the_set() {
    let srv = Server::start(&["--set-max-intset-entries", "4"]);
    let mut c = srv.client();
    int(
        &mut c,
        &[
            "SADD", "p", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10",
        ],
    );
    assert_eq!(encoding(&mut c, "p"), "hashtable");
    assert_eq!(strings(&mut c, &["SPOP", "p", "9"]).len(), 9);
    assert_eq!(int(&mut c, &["SCARD", "p"]), 1);
    assert_eq!(encoding(&mut c, "p"), "intset");
}

#[test]
fn smove_semantics() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["SADD", "src", "1", "2"]);
    int(&mut c, &["SADD", "dst", "3"]);
    ok(&mut c, &["SET", "str", "x"]);
    assert_eq!(int(&mut c, &["SMOVE", "nokey", "str", "1"]), 0);
    assert_eq!(err(&mut c, &["SMOVE", "str", "dst", "1"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["SMOVE", "src", "str", "1"]), WRONGTYPE);
    assert_eq!(int(&mut c, &["SMOVE", "src", "src", "1"]), 1);
    assert_eq!(int(&mut c, &["SMOVE", "src", "src", "9"]), 0);
    assert_eq!(int(&mut c, &["SMOVE", "src", "dst", "9"]), 0);
    assert_eq!(int(&mut c, &["SMOVE", "src", "dst", "1"]), 1);
    assert_eq!(sorted(&mut c, &["SMEMBERS", "dst"]), ["1", "3"]);
    assert_eq!(int(&mut c, &["SMOVE", "src", "new", "2"]), 1);
    assert_eq!(int(&mut c, &["EXISTS", "src"]), 0);
    assert_eq!(sorted(&mut c, &["SMEMBERS", "new"]), ["2"]);
    assert_eq!(encoding(&mut c, "new"), "intset");
    int(&mut c, &["SADD", "h", "a", "2"]);
    assert_eq!(int(&mut c, &["SMOVE", "h", "new", "a"]), 1);
    assert_eq!(encoding(&mut c, "new"), "hashtable");
    // Already present in the destination: still moved out of the source.
    assert_eq!(int(&mut c, &["SMOVE", "h", "new", "2"]), 1);
    assert_eq!(int(&mut c, &["EXISTS", "h"]), 0);
}

#[test]
fn algebra() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["SADD", "a", "1", "2", "3", "x"]);
    int(&mut c, &["SADD", "b", "2", "3", "4"]);
    int(&mut c, &["SADD", "n", "1", "2", "3"]);
    assert_eq!(sorted(&mut c, &["SINTER", "a", "b"]), ["2", "3"]);
    assert_eq!(
        strings(&mut c, &["SINTER", "a", "nokey"]),
        Vec::<String>::new()
    );
    assert_eq!(
        sorted(&mut c, &["SUNION", "a", "b", "nokey"]),
        ["1", "2", "3", "4", "x"]
    );
    assert_eq!(sorted(&mut c, &["SDIFF", "a", "b"]), ["1", "x"]);
    assert_eq!(
        strings(&mut c, &["SDIFF", "nokey", "a"]),
        Vec::<String>::new()
    );
    assert_eq!(int(&mut c, &["SINTERSTORE", "d", "a", "b"]), 2);
    assert_eq!(encoding(&mut c, "d"), "intset");
    assert_eq!(int(&mut c, &["SUNIONSTORE", "d", "a", "b"]), 5);
    assert_eq!(encoding(&mut c, "d"), "hashtable");
    assert_eq!(int(&mut c, &["SDIFFSTORE", "d", "a", "b", "n"]), 1);
    assert_eq!(sorted(&mut c, &["SMEMBERS", "d"]), ["x"]);
    ok(&mut c, &["SET", "str", "v"]);
    assert_eq!(int(&mut c, &["EXPIRE", "str", "100"]), 1);
    assert_eq!(int(&mut c, &["SUNIONSTORE", "str", "n"]), 3);
    assert_eq!(int(&mut c, &["TTL", "str"]), -1);
    assert_eq!(int(&mut c, &["SINTERSTORE", "str", "a", "nokey"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "str"]), 0);
    // The destination may be a source and of any type before being replaced.
    assert_eq!(int(&mut c, &["SDIFFSTORE", "a", "a", "b"]), 2);
    assert_eq!(sorted(&mut c, &["SMEMBERS", "a"]), ["1", "x"]);
}

#[test]
fn sintercard() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["SADD", "a", "1", "2", "3", "4"]);
    int(&mut c, &["SADD", "b", "2", "3", "4", "5"]);
    assert_eq!(int(&mut c, &["SINTERCARD", "2", "a", "b"]), 3);
    assert_eq!(int(&mut c, &["SINTERCARD", "2", "a", "b", "LIMIT", "2"]), 2);
    assert_eq!(int(&mut c, &["SINTERCARD", "2", "a", "b", "limit", "0"]), 3);
    assert_eq!(int(&mut c, &["SINTERCARD", "2", "a", "nokey"]), 0);
    assert_eq!(int(&mut c, &["SINTERCARD", "1", "a"]), 4);
    let gt0 = "ERR numkeys should be greater than 0";
    assert_eq!(err(&mut c, &["SINTERCARD", "0", "a"]), gt0);
    assert_eq!(err(&mut c, &["SINTERCARD", "x", "a"]), gt0);
    assert_eq!(
        err(&mut c, &["SINTERCARD", "3", "a", "b"]),
        "ERR Number of keys can't be greater than number of args"
    );
    let neg = "ERR LIMIT can't be negative";
    assert_eq!(err(&mut c, &["SINTERCARD", "1", "a", "LIMIT", "-1"]), neg);
    assert_eq!(err(&mut c, &["SINTERCARD", "1", "a", "LIMIT", "x"]), neg);
    assert_eq!(
        err(&mut c, &["SINTERCARD", "1", "a", "FOO"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SINTERCARD", "1", "a", "LIMIT"]),
        "ERR syntax error"
    );
    assert_eq!(
        q(
            &mut c,
            &[
                "COMMAND",
                "GETKEYS",
                "SINTERCARD",
                "2",
                "a",
                "b",
                "LIMIT",
                "1"
            ]
        ),
        Ok(Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"b".to_vec())
        ]))
    );
}

#[test]
fn sscan_walks_every_member() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(
        q(&mut c, &["SSCAN", "nokey", "0"]),
        Ok(Value::Array(vec![
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![])
        ]))
    );
    let members: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let mut args: Vec<&str> = vec!["SADD", "s"];
    args.extend(members.iter().map(String::as_str));
    int(&mut c, &args);
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let Ok(Value::Array(reply)) = q(&mut c, &["SSCAN", "s", &cursor, "COUNT", "20"]) else {
            panic!("bad SSCAN reply");
        };
        let [Value::BulkString(next), Value::Array(items)] = &reply[..] else {
            panic!("bad SSCAN reply shape");
        };
        for v in items {
            let Value::BulkString(b) = v else {
                panic!("bulk expected")
            };
            seen.insert(String::from_utf8(b.clone()).expect("utf8"));
        }
        cursor = String::from_utf8(next.clone()).expect("utf8");
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, members.into_iter().collect());
    int(&mut c, &["SADD", "i", "1", "2", "10"]);
    assert_eq!(
        q(&mut c, &["SSCAN", "i", "0", "MATCH", "1*"]),
        Ok(Value::Array(vec![
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"1".to_vec()),
                Value::BulkString(b"10".to_vec())
            ])
        ]))
    );
}

#[test]
fn resp3_set_replies() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.hello3();
    r.cmd(&[b"SADD", b"s", b"a"]);
    r.expect(":1\r\n");
    r.cmd(&[b"SMEMBERS", b"s"]);
    r.expect("~1\r\n$1\r\na\r\n");
    r.cmd(&[b"SPOP", b"nokey", b"2"]);
    r.expect("~0\r\n");
    r.cmd(&[b"SRANDMEMBER", b"s", b"2"]);
    r.expect("*1\r\n$1\r\na\r\n");
    r.cmd(&[b"SRANDMEMBER", b"nokey"]);
    r.expect("_\r\n");
}
