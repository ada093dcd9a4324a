//! End-to-end tests of the sorted-set commands against the real binary: values, reply types
//! in RESP2 and RESP3, Redis 7.0's exact error lines, listpack ↔ skiplist encodings and
//! conversions, rank operations on large sets, and the dirty counter.

mod common;

use common::{bulk, dirty, encoding, err, int, ok, q, strings, Server};
use redis::Value;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn b(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn zadd_options_and_replies() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]), 3);
    assert_eq!(int(&mut c, &["ZADD", "z", "NX", "5", "a", "4", "d"]), 1);
    assert_eq!(bulk(&mut c, &["ZSCORE", "z", "a"]).as_deref(), Some("1"));
    assert_eq!(
        int(&mut c, &["ZADD", "z", "XX", "CH", "10", "a", "20", "new"]),
        1
    );
    assert_eq!(bulk(&mut c, &["ZSCORE", "z", "new"]), None);
    assert_eq!(
        int(&mut c, &["ZADD", "z", "GT", "CH", "1", "b", "30", "c"]),
        1
    );
    assert_eq!(
        int(&mut c, &["ZADD", "z", "LT", "CH", "1", "b", "40", "c"]),
        1
    );
    assert_eq!(bulk(&mut c, &["ZSCORE", "z", "c"]).as_deref(), Some("30"));
    assert_eq!(
        bulk(&mut c, &["ZADD", "z", "INCR", "1.5", "a"]).as_deref(),
        Some("11.5")
    );
    assert_eq!(
        bulk(&mut c, &["ZADD", "z", "XX", "INCR", "1", "nope"]),
        None
    );
    assert_eq!(bulk(&mut c, &["ZADD", "z", "NX", "INCR", "1", "a"]), None);
    assert_eq!(
        bulk(&mut c, &["ZINCRBY", "z", "-0.5", "a"]).as_deref(),
        Some("11")
    );
    assert_eq!(
        bulk(&mut c, &["ZINCRBY", "z", "0.1", "fresh"]).as_deref(),
        Some("0.10000000000000001")
    );
    int(&mut c, &["ZADD", "z", "inf", "x", "-inf", "y", "+inf", "w"]);
    assert_eq!(bulk(&mut c, &["ZSCORE", "z", "y"]).as_deref(), Some("-inf"));
    assert_eq!(
        err(&mut c, &["ZINCRBY", "z", "-inf", "x"]),
        "ERR resulting score is not a number (NaN)"
    );
    // Nothing is applied when any score is bad.
    assert_eq!(
        err(&mut c, &["ZADD", "z", "1", "p", "nan", "q"]),
        "ERR value is not a valid float"
    );
    assert_eq!(bulk(&mut c, &["ZSCORE", "z", "p"]), None);
    for bad in ["1e400", " 1", "", "abc"] {
        assert_eq!(
            err(&mut c, &["ZADD", "z", bad, "q"]),
            "ERR value is not a valid float"
        );
    }
    assert_eq!(int(&mut c, &["ZADD", "z", "0x10", "hex"]), 1);
    assert_eq!(bulk(&mut c, &["ZSCORE", "z", "hex"]).as_deref(), Some("16"));
    assert_eq!(
        err(&mut c, &["ZADD", "z", "1", "a", "2"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["ZADD", "z", "NX"]),
        "ERR wrong number of arguments for 'zadd' command"
    );
    assert_eq!(
        err(&mut c, &["ZADD", "z", "XX", "NX", "1", "a"]),
        "ERR XX and NX options at the same time are not compatible"
    );
    for opts in [["GT", "LT"], ["NX", "GT"], ["LT", "NX"]] {
        assert_eq!(
            err(&mut c, &["ZADD", "z", opts[0], opts[1], "1", "a"]),
            "ERR GT, LT, and/or NX options at the same time are not compatible"
        );
    }
    assert_eq!(
        err(&mut c, &["ZADD", "z", "INCR", "1", "a", "2", "b"]),
        "ERR INCR option supports a single increment-element pair"
    );
    // XX on a missing key creates nothing.
    assert_eq!(int(&mut c, &["ZADD", "none", "XX", "1", "a"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "none"]), 0);
}

#[test]
fn point_queries_and_removal() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(int(&mut c, &["ZCARD", "z"]), 3);
    assert_eq!(int(&mut c, &["ZCARD", "nokey"]), 0);
    assert_eq!(int(&mut c, &["ZRANK", "z", "c"]), 2);
    assert_eq!(int(&mut c, &["ZREVRANK", "z", "c"]), 0);
    assert_eq!(q(&mut c, &["ZRANK", "z", "nope"]), Ok(Value::Nil));
    assert_eq!(q(&mut c, &["ZRANK", "nokey", "a"]), Ok(Value::Nil));
    // Redis 7.2's WITHSCORE is accepted (see zrank_withscore); anything else is not.
    assert_eq!(
        err(&mut c, &["ZRANK", "z", "a", "WITHSCORES"]),
        "ERR syntax error"
    );
    assert_eq!(
        q(&mut c, &["ZMSCORE", "z", "a", "nope", "c"]),
        Ok(Value::Array(vec![b("1"), Value::Nil, b("3")]))
    );
    assert_eq!(
        q(&mut c, &["ZMSCORE", "nokey", "a"]),
        Ok(Value::Array(vec![Value::Nil]))
    );
    assert_eq!(int(&mut c, &["ZCOUNT", "z", "(1", "3"]), 2);
    assert_eq!(int(&mut c, &["ZCOUNT", "z", "-inf", "+inf"]), 3);
    assert_eq!(int(&mut c, &["ZCOUNT", "nokey", "0", "1"]), 0);
    assert_eq!(
        err(&mut c, &["ZCOUNT", "z", "a", "b"]),
        "ERR min or max is not a float"
    );
    assert_eq!(int(&mut c, &["ZREM", "z", "a", "nope"]), 1);
    assert_eq!(int(&mut c, &["ZREM", "nokey", "a"]), 0);
    assert_eq!(int(&mut c, &["ZREM", "z", "b", "c"]), 2);
    assert_eq!(int(&mut c, &["EXISTS", "z"]), 0);

    ok(&mut c, &["SET", "str", "x"]);
    for args in [
        &["ZADD", "str", "1", "a"][..],
        &["ZINCRBY", "str", "1", "a"],
        &["ZREM", "str", "a"],
        &["ZCARD", "str"],
        &["ZSCORE", "str", "a"],
        &["ZMSCORE", "str", "a"],
        &["ZRANK", "str", "a"],
        &["ZCOUNT", "str", "0", "1"],
        &["ZLEXCOUNT", "str", "-", "+"],
        &["ZRANGE", "str", "0", "1"],
        &["ZRANGESTORE", "d", "str", "0", "1"],
        &["ZREMRANGEBYRANK", "str", "0", "1"],
        &["ZPOPMIN", "str"],
        &["ZPOPMAX", "str", "0"],
        &["ZMPOP", "1", "str", "MIN"],
        &["ZRANDMEMBER", "str"],
        &["ZUNION", "2", "nokey", "str"],
        &["ZINTERSTORE", "d", "1", "str"],
        &["ZSCAN", "str", "0"],
    ] {
        assert_eq!(err(&mut c, args), WRONGTYPE, "{args:?}");
    }
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(
        &mut c,
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
    );
    assert_eq!(
        strings(&mut c, &["ZRANGE", "z", "0", "-1"]),
        ["a", "b", "c", "d"]
    );
    assert_eq!(
        strings(&mut c, &["ZRANGE", "z", "-2", "-1", "WITHSCORES"]),
        ["c", "3", "d", "4"]
    );
    assert_eq!(
        strings(&mut c, &["ZRANGE", "z", "0", "1", "REV"]),
        ["d", "c"]
    );
    assert_eq!(strings(&mut c, &["ZREVRANGE", "z", "1", "2"]), ["c", "b"]);
    assert!(strings(&mut c, &["ZRANGE", "z", "3", "1"]).is_empty());
    assert!(strings(&mut c, &["ZRANGE", "nokey", "0", "1"]).is_empty());
    assert_eq!(
        strings(&mut c, &["ZRANGE", "z", "(1", "3", "BYSCORE"]),
        ["b", "c"]
    );
    assert_eq!(
        strings(
            &mut c,
            &["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2"]
        ),
        ["c", "b"]
    );
    assert_eq!(
        strings(
            &mut c,
            &["ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "1", "-1"]
        ),
        ["b", "c", "d"]
    );
    assert!(strings(
        &mut c,
        &["ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "-1", "2"]
    )
    .is_empty());
    assert_eq!(
        strings(&mut c, &["ZREVRANGEBYSCORE", "z", "3", "(1", "WITHSCORES"]),
        ["c", "3", "b", "2"]
    );
    assert_eq!(
        err(&mut c, &["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    assert_eq!(
        err(&mut c, &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"]),
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    );
    assert_eq!(
        err(&mut c, &["ZREVRANGE", "z", "0", "1", "REV"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["ZRANGEBYSCORE", "z", "0", "1", "LIMIT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["ZRANGE", "z", "x", "1"]),
        "ERR value is not an integer or out of range"
    );

    int(
        &mut c,
        &[
            "ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e",
        ],
    );
    assert_eq!(
        strings(&mut c, &["ZRANGEBYLEX", "lex", "[b", "(e"]),
        ["b", "c", "d"]
    );
    assert_eq!(
        strings(
            &mut c,
            &["ZREVRANGEBYLEX", "lex", "+", "(b", "LIMIT", "1", "2"]
        ),
        ["d", "c"]
    );
    assert_eq!(int(&mut c, &["ZLEXCOUNT", "lex", "[c", "+"]), 3);
    assert_eq!(int(&mut c, &["ZLEXCOUNT", "lex", "[z", "[a"]), 0);
    assert_eq!(
        err(&mut c, &["ZRANGEBYLEX", "lex", "b", "+"]),
        "ERR min or max not valid string range item"
    );
    assert_eq!(int(&mut c, &["ZREMRANGEBYLEX", "lex", "[a", "[b"]), 2);
    assert_eq!(int(&mut c, &["ZREMRANGEBYRANK", "lex", "-1", "-1"]), 1);
    assert_eq!(int(&mut c, &["ZREMRANGEBYRANK", "lex", "5", "1"]), 0);
    assert_eq!(int(&mut c, &["ZREMRANGEBYSCORE", "lex", "-inf", "inf"]), 2);
    assert_eq!(int(&mut c, &["EXISTS", "lex"]), 0);

    assert_eq!(
        int(&mut c, &["ZRANGESTORE", "dst", "z", "0", "1", "REV"]),
        2
    );
    assert_eq!(
        strings(&mut c, &["ZRANGE", "dst", "0", "-1", "WITHSCORES"]),
        ["c", "3", "d", "4"]
    );
    assert_eq!(int(&mut c, &["ZRANGESTORE", "dst", "z", "10", "20"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "dst"]), 0);
    assert_eq!(
        err(&mut c, &["ZRANGESTORE", "dst", "z", "0", "1", "WITHSCORES"]),
        "ERR syntax error"
    );
}

#[test]
fn pops_and_zmpop() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(
        &mut c,
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
    );
    assert_eq!(strings(&mut c, &["ZPOPMIN", "z"]), ["a", "1"]);
    assert_eq!(
        strings(&mut c, &["ZPOPMAX", "z", "2"]),
        ["d", "4", "c", "3"]
    );
    assert!(strings(&mut c, &["ZPOPMAX", "z", "0"]).is_empty());
    assert!(strings(&mut c, &["ZPOPMIN", "nokey"]).is_empty());
    for bad in ["-1", "x"] {
        assert_eq!(
            err(&mut c, &["ZPOPMIN", "z", bad]),
            "ERR value is out of range, must be positive"
        );
    }
    assert_eq!(err(&mut c, &["ZPOPMIN", "z", "1", "2"]), "ERR syntax error");
    assert_eq!(strings(&mut c, &["ZPOPMIN", "z", "10"]), ["b", "2"]);
    assert_eq!(int(&mut c, &["EXISTS", "z"]), 0);

    int(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(
        q(&mut c, &["ZMPOP", "2", "nokey", "z", "MAX", "COUNT", "2"]),
        Ok(Value::Array(vec![
            b("z"),
            Value::Array(vec![
                Value::Array(vec![b("c"), b("3")]),
                Value::Array(vec![b("b"), b("2")]),
            ]),
        ]))
    );
    assert_eq!(q(&mut c, &["ZMPOP", "1", "nokey", "MIN"]), Ok(Value::Nil));
    assert_eq!(
        err(&mut c, &["ZMPOP", "0", "z", "MIN"]),
        "ERR numkeys should be greater than 0"
    );
    assert_eq!(err(&mut c, &["ZMPOP", "2", "z", "MIN"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["ZMPOP", "1", "z", "FOO"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["ZMPOP", "1", "z", "MIN", "COUNT", "0"]),
        "ERR count should be greater than 0"
    );
    assert_eq!(
        err(
            &mut c,
            &["ZMPOP", "1", "z", "MIN", "COUNT", "1", "COUNT", "1"]
        ),
        "ERR syntax error"
    );
}

#[test]
fn set_algebra() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    int(&mut c, &["ZADD", "a", "1", "x", "2", "y", "3", "z"]);
    int(&mut c, &["ZADD", "b", "10", "y", "20", "z", "30", "w"]);
    int(&mut c, &["SADD", "s", "z", "w", "v"]);
    assert_eq!(
        strings(&mut c, &["ZUNION", "2", "a", "b", "WITHSCORES"]),
        ["x", "1", "y", "12", "z", "23", "w", "30"]
    );
    assert_eq!(
        strings(&mut c, &["ZINTER", "3", "a", "b", "s", "WITHSCORES"]),
        ["z", "24"]
    );
    assert_eq!(
        strings(
            &mut c,
            &[
                "ZUNION",
                "2",
                "a",
                "b",
                "WEIGHTS",
                "2",
                "3",
                "AGGREGATE",
                "MIN",
                "WITHSCORES"
            ]
        ),
        ["x", "2", "y", "4", "z", "6", "w", "90"]
    );
    assert_eq!(
        strings(&mut c, &["ZDIFF", "2", "a", "b", "WITHSCORES"]),
        ["x", "1"]
    );
    assert_eq!(int(&mut c, &["ZINTERCARD", "2", "a", "b"]), 2);
    assert_eq!(int(&mut c, &["ZINTERCARD", "2", "a", "b", "LIMIT", "1"]), 1);
    assert_eq!(
        err(&mut c, &["ZINTERCARD", "2", "a", "b", "LIMIT", "-1"]),
        "ERR LIMIT can't be negative"
    );
    assert_eq!(
        err(&mut c, &["ZINTERCARD", "0", "a"]),
        "ERR at least 1 input key is needed for 'zintercard' command"
    );
    assert_eq!(
        err(&mut c, &["ZUNIONSTORE", "d", "0", "a"]),
        "ERR at least 1 input key is needed for 'zunionstore' command"
    );
    assert_eq!(err(&mut c, &["ZUNION", "3", "a"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["ZDIFF", "1", "a", "WEIGHTS", "1"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["ZINTERSTORE", "d", "1", "a", "WEIGHTS", "x"]),
        "ERR weight value is not a float"
    );
    assert_eq!(int(&mut c, &["ZUNIONSTORE", "d", "2", "a", "b"]), 4);
    assert_eq!(encoding(&mut c, "d"), "listpack");
    assert_eq!(int(&mut c, &["ZINTERSTORE", "d", "2", "a", "nokey"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "d"]), 0);
    // +inf + -inf aggregates to 0.
    int(&mut c, &["ZADD", "p", "inf", "m"]);
    int(&mut c, &["ZADD", "n", "-inf", "m"]);
    assert_eq!(
        strings(&mut c, &["ZUNION", "2", "p", "n", "WITHSCORES"]),
        ["m", "0"]
    );
}

#[test]
fn zrandmember_and_zscan() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(bulk(&mut c, &["ZRANDMEMBER", "nokey"]), None);
    assert!(strings(&mut c, &["ZRANDMEMBER", "nokey", "5"]).is_empty());
    int(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(strings(&mut c, &["ZRANDMEMBER", "z", "5"]), ["c", "b", "a"]);
    assert_eq!(strings(&mut c, &["ZRANDMEMBER", "z", "-5"]).len(), 5);
    let two = strings(&mut c, &["ZRANDMEMBER", "z", "2", "WITHSCORES"]);
    assert_eq!(two.len(), 4);
    assert_ne!(two[0], two[2]);
    assert_eq!(
        err(&mut c, &["ZRANDMEMBER", "z", "1", "WITHSCORES", "x"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["ZRANDMEMBER", "z", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(
        err(
            &mut c,
            &["ZRANDMEMBER", "z", "4611686018427387904", "WITHSCORES"]
        ),
        "ERR value is out of range"
    );
    // A listpack comes back whole, with d2string-style scores.
    int(&mut c, &["ZADD", "s", "1e17", "x", "1.5", "y"]);
    assert_eq!(
        q(&mut c, &["ZSCAN", "s", "0"]),
        Ok(Value::Array(vec![
            b("0"),
            Value::Array(vec![b("y"), b("1.5"), b("x"), b("100000000000000000")]),
        ]))
    );
    assert_eq!(
        err(&mut c, &["ZSCAN", "s", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(err(&mut c, &["ZSCAN", "s", "x"]), "ERR invalid cursor");
    // A skiplist is walked with a cursor and returns every member exactly once.
    for i in 0..500 {
        int(&mut c, &["ZADD", "big", &i.to_string(), &format!("m{i}")]);
    }
    assert_eq!(encoding(&mut c, "big"), "skiplist");
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let Ok(Value::Array(parts)) = q(&mut c, &["ZSCAN", "big", &cursor, "MATCH", "m1*"]) else {
            panic!("bad ZSCAN reply");
        };
        let Value::BulkString(next) = &parts[0] else {
            panic!()
        };
        cursor = String::from_utf8(next.clone()).unwrap();
        if let Value::Array(items) = &parts[1] {
            for pair in items.chunks(2) {
                if let (Value::BulkString(m), Value::BulkString(s)) = (&pair[0], &pair[1]) {
                    let m = String::from_utf8(m.clone()).unwrap();
                    assert_eq!(format!("m{}", String::from_utf8(s.clone()).unwrap()), m);
                    seen.push(m);
                }
            }
        }
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    let mut want: Vec<String> = (0..500)
        .map(|i| format!("m{i}"))
        .filter(|m| m.starts_with("m1"))
        .collect();
    want.sort();
    assert_eq!(seen, want);
}

#[test]
fn encodings_and_conversions() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["CONFIG", "SET", "zset-max-listpack-entries", "4"]);
    ok(&mut c, &["CONFIG", "SET", "zset-max-listpack-value", "8"]);
    int(
        &mut c,
        &["ZADD", "a", "1", "a", "2", "b", "3", "c", "4", "d"],
    );
    assert_eq!(encoding(&mut c, "a"), "listpack");
    int(&mut c, &["ZADD", "a", "5", "e"]);
    assert_eq!(encoding(&mut c, "a"), "skiplist");
    // Never back on removal...
    int(&mut c, &["ZREM", "a", "e", "d", "c"]);
    assert_eq!(encoding(&mut c, "a"), "skiplist");
    // ...but STORE results that fit are listpacks.
    int(&mut c, &["ZUNIONSTORE", "u", "1", "a"]);
    assert_eq!(encoding(&mut c, "u"), "listpack");
    int(&mut c, &["ZRANGESTORE", "r", "a", "0", "-1"]);
    assert_eq!(encoding(&mut c, "r"), "listpack");
    int(&mut c, &["ZADD", "long", "1", "123456789"]);
    assert_eq!(encoding(&mut c, "long"), "skiplist");
    int(
        &mut c,
        &[
            "ZADD", "big", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
        ],
    );
    int(&mut c, &["ZRANGESTORE", "r", "big", "0", "-1"]);
    assert_eq!(encoding(&mut c, "r"), "skiplist");
    ok(&mut c, &["CONFIG", "SET", "zset-max-listpack-entries", "0"]);
    int(&mut c, &["ZADD", "z0", "1", "a"]);
    assert_eq!(encoding(&mut c, "z0"), "skiplist");
    // -0 stays -0 in a skiplist and becomes 0 in a listpack, as in Redis.
    int(&mut c, &["ZADD", "z0", "-0", "m"]);
    assert_eq!(bulk(&mut c, &["ZSCORE", "z0", "m"]).as_deref(), Some("-0"));
    ok(
        &mut c,
        &["CONFIG", "SET", "zset-max-listpack-entries", "128"],
    );
    int(&mut c, &["ZADD", "lp", "-0", "m"]);
    assert_eq!(bulk(&mut c, &["ZSCORE", "lp", "m"]).as_deref(), Some("0"));
}

#[test]
fn large_sets_rank_operations() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let n = 20_000;
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("ZADD")
            .arg("big")
            .arg(i * 2)
            .arg(format!("m{i:05}"))
            .ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    assert_eq!(int(&mut c, &["ZCARD", "big"]), n);
    assert_eq!(encoding(&mut c, "big"), "skiplist");
    assert_eq!(int(&mut c, &["ZRANK", "big", "m12345"]), 12345);
    assert_eq!(int(&mut c, &["ZREVRANK", "big", "m12345"]), n - 1 - 12345);
    assert_eq!(
        strings(&mut c, &["ZRANGE", "big", "10000", "10002", "WITHSCORES"]),
        ["m10000", "20000", "m10001", "20002", "m10002", "20004"]
    );
    assert_eq!(strings(&mut c, &["ZREVRANGE", "big", "0", "0"]), ["m19999"]);
    assert_eq!(int(&mut c, &["ZCOUNT", "big", "(100", "200"]), 50);
    assert_eq!(
        strings(
            &mut c,
            &["ZRANGEBYSCORE", "big", "(100", "+inf", "LIMIT", "5", "2"]
        ),
        ["m00056", "m00057"]
    );
    assert_eq!(
        int(&mut c, &["ZREMRANGEBYRANK", "big", "100", "-101"]),
        n - 200
    );
    assert_eq!(int(&mut c, &["ZCARD", "big"]), 200);
    assert_eq!(int(&mut c, &["ZRANK", "big", "m19999"]), 199);
    assert_eq!(bulk(&mut c, &["ZSCORE", "big", "m12345"]), None);
    assert_eq!(
        int(&mut c, &["ZREMRANGEBYSCORE", "big", "-inf", "(100"]),
        50
    );
    assert_eq!(strings(&mut c, &["ZRANGE", "big", "0", "0"]), ["m00050"]);
}

#[test]
fn resp3_shapes() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.hello3();
    r.cmd(&[b"ZADD", b"z", b"1", b"a", b"2.5", b"b"]);
    r.expect(":2\r\n");
    r.cmd(&[b"ZSCORE", b"z", b"b"]);
    r.expect(",2.5\r\n");
    r.cmd(&[b"ZSCORE", b"z", b"nope"]);
    r.expect("_\r\n");
    r.cmd(&[b"ZINCRBY", b"z", b"1", b"a"]);
    r.expect(",2\r\n");
    r.cmd(&[b"ZADD", b"z", b"INCR", b"1", b"a"]);
    r.expect(",3\r\n");
    r.cmd(&[b"ZMSCORE", b"z", b"a", b"x"]);
    r.expect("*2\r\n,3\r\n_\r\n");
    r.cmd(&[b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"]);
    r.expect("*2\r\n*2\r\n$1\r\nb\r\n,2.5\r\n*2\r\n$1\r\na\r\n,3\r\n");
    r.cmd(&[b"ZRANGE", b"z", b"0", b"0"]);
    r.expect("*1\r\n$1\r\nb\r\n");
    r.cmd(&[b"ZRANDMEMBER", b"z", b"-1", b"WITHSCORES"]);
    let head = r.line();
    assert_eq!(head, "*1\r\n");
    assert_eq!(r.line(), "*2\r\n");
    r.line();
    r.line();
    r.line();
    r.cmd(&[b"ZPOPMIN", b"z"]);
    r.expect("*2\r\n$1\r\nb\r\n,2.5\r\n");
    r.cmd(&[b"ZADD", b"z", b"1", b"c"]);
    r.expect(":1\r\n");
    r.cmd(&[b"ZPOPMAX", b"z", b"1"]);
    r.expect("*1\r\n*2\r\n$1\r\na\r\n,3\r\n");
    r.cmd(&[b"ZMPOP", b"1", b"z", b"MIN"]);
    r.expect("*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nc\r\n,1\r\n");
    r.cmd(&[b"ZMPOP", b"1", b"z", b"MIN"]);
    r.expect("_\r\n");
    r.cmd(&[b"ZRANK", b"z", b"a"]);
    r.expect("_\r\n");
}

#[test]
fn resp2_double_and_null_shapes() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.cmd(&[b"ZADD", b"z", b"1", b"a"]);
    r.expect(":1\r\n");
    r.cmd(&[b"ZSCORE", b"z", b"a"]);
    r.expect("$1\r\n1\r\n");
    r.cmd(&[b"ZSCORE", b"z", b"b"]);
    r.expect("$-1\r\n");
    r.cmd(&[b"ZMPOP", b"1", b"none", b"MIN"]);
    r.expect("*-1\r\n");
    r.cmd(&[b"ZADD", b"z", b"XX", b"INCR", b"1", b"nope"]);
    r.expect("$-1\r\n");
}

#[test]
fn writes_count_as_changes() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let d0 = dirty(&mut c);
    int(&mut c, &["ZADD", "z", "1", "a", "2", "b"]);
    assert_eq!(dirty(&mut c), d0 + 2);
    int(&mut c, &["ZADD", "z", "1", "a", "3", "b"]);
    assert_eq!(dirty(&mut c), d0 + 3);
    int(&mut c, &["ZREM", "z", "a", "x"]);
    assert_eq!(dirty(&mut c), d0 + 4);
    int(&mut c, &["ZUNIONSTORE", "d", "1", "z"]);
    assert_eq!(dirty(&mut c), d0 + 5);
    int(&mut c, &["ZINTERSTORE", "d", "1", "nokey"]);
    assert_eq!(dirty(&mut c), d0 + 6);
    int(&mut c, &["ZINTERSTORE", "d", "1", "nokey"]);
    assert_eq!(dirty(&mut c), d0 + 6);
    strings(&mut c, &["ZPOPMIN", "z", "5"]);
    assert_eq!(dirty(&mut c), d0 + 7);
}

/// ZRANK/ZREVRANK WITHSCORE (Redis 7.2's option): [rank, score] with the score as a bulk
/// string in RESP2 and a double in RESP3, a null array for a missing member or key, the
/// option checked before the key, and either encoding.
#[test]
fn zrank_withscore() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.cmd(&[b"ZADD", b"z", b"1", b"a", b"2.5", b"b", b"-inf", b"c"]);
    r.expect(":3\r\n");
    r.cmd(&[b"ZRANK", b"z", b"b", b"WITHSCORE"]);
    r.expect("*2\r\n:2\r\n$3\r\n2.5\r\n");
    r.cmd(&[b"ZREVRANK", b"z", b"b", b"withscore"]);
    r.expect("*2\r\n:0\r\n$3\r\n2.5\r\n");
    r.cmd(&[b"ZRANK", b"z", b"c", b"WithScore"]);
    r.expect("*2\r\n:0\r\n$4\r\n-inf\r\n");
    r.cmd(&[b"ZRANK", b"z", b"nope", b"WITHSCORE"]);
    r.expect("*-1\r\n");
    r.cmd(&[b"ZREVRANK", b"none", b"a", b"WITHSCORE"]);
    r.expect("*-1\r\n");
    // Without the option: unchanged, a null bulk for a missing member.
    r.cmd(&[b"ZRANK", b"z", b"a"]);
    r.expect(":1\r\n");
    r.cmd(&[b"ZREVRANK", b"z", b"nope"]);
    r.expect("$-1\r\n");

    r.hello3();
    r.cmd(&[b"ZRANK", b"z", b"b", b"WITHSCORE"]);
    r.expect("*2\r\n:2\r\n,2.5\r\n");
    r.cmd(&[b"ZREVRANK", b"z", b"a", b"WITHSCORE"]);
    r.expect("*2\r\n:1\r\n,1\r\n");
    r.cmd(&[b"ZRANK", b"z", b"nope", b"WITHSCORE"]);
    r.expect("_\r\n");

    let mut c = srv.client();
    for cmd in ["ZRANK", "ZREVRANK"] {
        assert_eq!(
            err(&mut c, &[cmd, "z", "a", "WITHSCORES"]),
            "ERR syntax error"
        );
        // The option is checked before the key: a syntax error even for a missing key.
        assert_eq!(err(&mut c, &[cmd, "none", "a", "foo"]), "ERR syntax error");
        assert_eq!(
            err(&mut c, &[cmd, "z", "a", "WITHSCORE", "x"]),
            format!(
                "ERR wrong number of arguments for '{}' command",
                cmd.to_lowercase()
            )
        );
        assert_eq!(
            err(&mut c, &[cmd, "z"]),
            format!(
                "ERR wrong number of arguments for '{}' command",
                cmd.to_lowercase()
            )
        );
    }
    ok(&mut c, &["SET", "str", "x"]);
    assert_eq!(err(&mut c, &["ZRANK", "str", "a", "WITHSCORE"]), WRONGTYPE);

    // Skiplist encoding: ranks and scores from the big representation.
    let mut args: Vec<String> = vec!["ZADD".into(), "big".into()];
    for i in 0..300 {
        args.push(format!("{}.5", i));
        args.push(format!("m{i:03}"));
    }
    assert_eq!(int(&mut c, &args), 300);
    assert_eq!(encoding(&mut c, "big"), "skiplist");
    assert_eq!(
        q(&mut c, &["ZRANK", "big", "m123", "WITHSCORE"]).unwrap(),
        Value::Array(vec![Value::Int(123), b("123.5")])
    );
    assert_eq!(
        q(&mut c, &["ZREVRANK", "big", "m123", "WITHSCORE"]).unwrap(),
        Value::Array(vec![Value::Int(176), b("123.5")])
    );
    assert_eq!(
        q(&mut c, &["ZRANK", "big", "zzz", "WITHSCORE"]).unwrap(),
        Value::Nil
    );
}
