//! End-to-end tests of the generic key commands (DEL, UNLINK, EXISTS, TYPE, RENAME, RENAMENX,
//! COPY, MOVE, KEYS, SCAN, RANDOMKEY, TOUCH, OBJECT, SELECT) against the real binary: values,
//! reply types and Redis's exact error lines.

mod common;

use std::collections::HashSet;

use common::{err, int, ok, q, Server};
use redis::{cmd, Connection, Value};

fn bulk(con: &mut Connection, args: &[&str]) -> Option<String> {
    match q(con, args) {
        Ok(Value::BulkString(b)) => Some(String::from_utf8(b).unwrap()),
        Ok(Value::Nil) => None,
        other => panic!("{args:?}: expected a bulk string or nil, got {other:?}"),
    }
}

fn status(con: &mut Connection, args: &[&str]) -> String {
    match q(con, args) {
        Ok(Value::SimpleString(s)) => s,
        Ok(Value::Okay) => "OK".into(),
        other => panic!("{args:?}: expected a status, got {other:?}"),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn keys(con: &mut Connection, pattern: &str) -> Vec<String> {
    sorted(cmd("KEYS").arg(pattern).query(con).unwrap())
}

#[test]
fn del_unlink_exists_touch_type() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    for k in ["a", "b", "c"] {
        ok(&mut c, &["SET", k, "v"]);
    }
    assert_eq!(int(&mut c, &["EXISTS", "a", "a", "b", "nope"]), 3);
    assert_eq!(int(&mut c, &["TOUCH", "a", "b", "nope", "a"]), 3);
    assert_eq!(status(&mut c, &["TYPE", "a"]), "string");
    assert_eq!(status(&mut c, &["TYPE", "nope"]), "none");
    assert_eq!(int(&mut c, &["DEL", "a", "nope", "a"]), 1);
    assert_eq!(int(&mut c, &["UNLINK", "b", "c", "nope"]), 2);
    assert_eq!(int(&mut c, &["EXISTS", "a", "b", "c"]), 0);
    assert_eq!(
        err(&mut c, &["DEL"]),
        "ERR wrong number of arguments for 'del' command"
    );
    assert_eq!(
        err(&mut c, &["TYPE", "a", "b"]),
        "ERR wrong number of arguments for 'type' command"
    );
}

#[test]
fn rename_and_renamenx() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(err(&mut c, &["RENAME", "nokey", "x"]), "ERR no such key");
    assert_eq!(
        err(&mut c, &["RENAME", "nokey", "nokey"]),
        "ERR no such key"
    );
    assert_eq!(err(&mut c, &["RENAMENX", "nokey", "x"]), "ERR no such key");

    ok(&mut c, &["SET", "src", "hello"]);
    ok(&mut c, &["RENAME", "src", "src"]);
    assert_eq!(int(&mut c, &["RENAMENX", "src", "src"]), 0);
    ok(&mut c, &["RENAME", "src", "dst"]);
    assert_eq!(int(&mut c, &["EXISTS", "src"]), 0);
    assert_eq!(bulk(&mut c, &["GET", "dst"]).as_deref(), Some("hello"));

    // The TTL moves with the value; the destination's own TTL does not survive.
    assert_eq!(int(&mut c, &["EXPIRE", "dst", "100"]), 1);
    ok(&mut c, &["RENAME", "dst", "moved"]);
    let ttl = int(&mut c, &["TTL", "moved"]);
    assert!((95..=100).contains(&ttl), "ttl {ttl}");
    ok(&mut c, &["SET", "plain", "p"]);
    ok(&mut c, &["RENAME", "plain", "moved"]);
    assert_eq!(int(&mut c, &["TTL", "moved"]), -1);
    assert_eq!(bulk(&mut c, &["GET", "moved"]).as_deref(), Some("p"));

    // A string edited in place (raw encoding) keeps its bytes through a rename.
    ok(&mut c, &["SET", "big", &"x".repeat(100)]);
    ok(&mut c, &["RENAME", "big", "big2"]);
    assert_eq!(bulk(&mut c, &["GET", "big2"]).unwrap().len(), 100);

    ok(&mut c, &["SET", "a", "1"]);
    ok(&mut c, &["SET", "b", "2"]);
    assert_eq!(int(&mut c, &["RENAMENX", "a", "b"]), 0);
    assert_eq!(bulk(&mut c, &["GET", "a"]).as_deref(), Some("1"));
    assert_eq!(int(&mut c, &["RENAMENX", "a", "c"]), 1);
    assert_eq!(bulk(&mut c, &["GET", "c"]).as_deref(), Some("1"));
    assert_eq!(int(&mut c, &["EXISTS", "a"]), 0);
}

#[test]
fn copy_within_and_across_databases() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["COPY", "nokey", "x"]), 0);
    ok(&mut c, &["SET", "k", "v"]);
    assert_eq!(
        err(&mut c, &["COPY", "k", "k"]),
        "ERR source and destination objects are the same"
    );
    assert_eq!(
        err(&mut c, &["COPY", "k", "k", "DB", "0"]),
        "ERR source and destination objects are the same"
    );
    assert_eq!(
        err(&mut c, &["COPY", "k", "x", "DB", "notanumber"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["COPY", "k", "x", "DB", "99"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut c, &["COPY", "k", "x", "DB", "-1"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut c, &["COPY", "k", "x", "BOGUS"]),
        "ERR syntax error"
    );
    assert_eq!(err(&mut c, &["COPY", "k", "x", "DB"]), "ERR syntax error");

    assert_eq!(int(&mut c, &["COPY", "k", "k2"]), 1);
    assert_eq!(bulk(&mut c, &["GET", "k2"]).as_deref(), Some("v"));
    ok(&mut c, &["SET", "k2", "changed"]);
    assert_eq!(
        bulk(&mut c, &["GET", "k"]).as_deref(),
        Some("v"),
        "independent"
    );
    assert_eq!(int(&mut c, &["COPY", "k", "k2"]), 0);
    assert_eq!(int(&mut c, &["COPY", "k", "k2", "REPLACE", "REPLACE"]), 1);
    assert_eq!(bulk(&mut c, &["GET", "k2"]).as_deref(), Some("v"));

    // Same name, other database; the TTL comes along.
    assert_eq!(int(&mut c, &["PEXPIRE", "k", "100000"]), 1);
    assert_eq!(int(&mut c, &["COPY", "k", "k", "DB", "3"]), 1);
    assert_eq!(int(&mut c, &["COPY", "k", "k", "DB", "3"]), 0);
    assert_eq!(int(&mut c, &["COPY", "k", "k", "db", "3", "replace"]), 1);
    ok(&mut c, &["SELECT", "3"]);
    assert_eq!(bulk(&mut c, &["GET", "k"]).as_deref(), Some("v"));
    let ttl = int(&mut c, &["PTTL", "k"]);
    assert!(ttl > 90_000 && ttl <= 100_000, "pttl {ttl}");
    assert_eq!(int(&mut c, &["DBSIZE"]), 1);
}

#[test]
fn move_between_databases() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "m", "foo"]);
    assert_eq!(
        err(&mut c, &["MOVE", "m", "notanumber"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["MOVE", "m", "16"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut c, &["MOVE", "m", "0"]),
        "ERR source and destination objects are the same"
    );
    assert_eq!(int(&mut c, &["MOVE", "nokey", "1"]), 0);
    assert_eq!(int(&mut c, &["EXPIRE", "m", "100"]), 1);
    assert_eq!(int(&mut c, &["MOVE", "m", "1"]), 1);
    assert_eq!(int(&mut c, &["TTL", "m"]), -2);
    ok(&mut c, &["SET", "m", "other"]);
    assert_eq!(int(&mut c, &["MOVE", "m", "1"]), 0, "target exists");
    ok(&mut c, &["SELECT", "1"]);
    assert_eq!(bulk(&mut c, &["GET", "m"]).as_deref(), Some("foo"));
    let ttl = int(&mut c, &["TTL", "m"]);
    assert!((95..=100).contains(&ttl), "ttl {ttl}");
    ok(&mut c, &["SELECT", "0"]);
    assert_eq!(bulk(&mut c, &["GET", "m"]).as_deref(), Some("other"));
}

#[test]
fn select_keeps_databases_apart() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "a", "hello"]);
    ok(&mut c, &["SELECT", "9"]);
    assert_eq!(bulk(&mut c, &["GET", "a"]), None);
    ok(&mut c, &["SET", "a", "foo"]);
    assert_eq!(keys(&mut c, "*"), ["a"]);
    ok(&mut c, &["SELECT", "0"]);
    assert_eq!(bulk(&mut c, &["GET", "a"]).as_deref(), Some("hello"));
    assert_eq!(
        err(&mut c, &["SELECT", "16"]),
        "ERR DB index is out of range"
    );
}

#[test]
fn keys_and_randomkey() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(bulk(&mut c, &["RANDOMKEY"]), None);
    assert_eq!(keys(&mut c, "*"), Vec::<String>::new());
    for k in ["key_x", "key_y", "key_z", "foo_a", "foo_b", "foo_c"] {
        ok(&mut c, &["SET", k, "hello"]);
    }
    assert_eq!(keys(&mut c, "foo*"), ["foo_a", "foo_b", "foo_c"]);
    assert_eq!(keys(&mut c, "key_[xy]"), ["key_x", "key_y"]);
    assert_eq!(keys(&mut c, "*").len(), 6);
    assert_eq!(
        err(&mut c, &["KEYS"]),
        "ERR wrong number of arguments for 'keys' command"
    );

    ok(&mut c, &["SET", "a".repeat(40).as_str(), "1"]);
    let nested = format!("{}b", "a*".repeat(20));
    assert_eq!(keys(&mut c, &nested), Vec::<String>::new());

    let mut seen = HashSet::new();
    for _ in 0..200 {
        seen.insert(bulk(&mut c, &["RANDOMKEY"]).unwrap());
    }
    assert_eq!(seen.len(), 7, "every key comes up: {seen:?}");

    // Expired keys are neither listed nor returned by RANDOMKEY.
    ok(&mut c, &["FLUSHDB"]);
    ok(&mut c, &["SET", "gone", "x"]);
    assert_eq!(int(&mut c, &["PEXPIRE", "gone", "1"]), 1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(keys(&mut c, "*"), Vec::<String>::new());
    assert_eq!(bulk(&mut c, &["RANDOMKEY"]), None);
}

/// One SCAN call: (next cursor, keys).
fn scan(con: &mut Connection, args: &[&str]) -> (String, Vec<String>) {
    let mut c = cmd("SCAN");
    for a in args {
        c.arg(*a);
    }
    c.query(con).expect("scan")
}

fn scan_all(con: &mut Connection, opts: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let mut args = vec![cursor.as_str()];
        args.extend_from_slice(opts);
        let (next, keys) = scan(con, &args);
        out.extend(keys);
        if next == "0" {
            return out;
        }
        cursor = next;
    }
}

#[test]
fn scan_options_and_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    for i in 0..100 {
        ok(&mut c, &["SET", &format!("key:{i}"), "v"]);
    }
    let all: HashSet<String> = scan_all(&mut c, &[]).into_iter().collect();
    assert_eq!(all.len(), 100);
    let matched: HashSet<String> = scan_all(&mut c, &["MATCH", "key:1*", "COUNT", "7"])
        .into_iter()
        .collect();
    assert_eq!(matched.len(), 11);
    assert!(scan_all(&mut c, &["TYPE", "STRING"]).len() >= 100);
    assert_eq!(scan_all(&mut c, &["TYPE", "list"]), Vec::<String>::new());
    assert_eq!(
        scan_all(&mut c, &["TYPE", "nosuchtype"]),
        Vec::<String>::new()
    );

    // The reply is [bulk cursor, array of bulk keys].
    let reply = q(&mut c, &["SCAN", "0", "COUNT", "1000"]).unwrap();
    match reply {
        Value::Array(v) => {
            assert_eq!(v[0], Value::BulkString(b"0".to_vec()));
            assert!(matches!(&v[1], Value::Array(keys) if keys.len() == 100));
        }
        other => panic!("{other:?}"),
    }
    // C strtoul cursors: empty is 0, signs are accepted, junk and overflow are not.
    assert_eq!(scan(&mut c, &["", "COUNT", "1000"]).1.len(), 100);
    assert_eq!(scan(&mut c, &["+0", "COUNT", "1000"]).1.len(), 100);
    scan(&mut c, &["-1"]);
    scan(&mut c, &["18446744073709551615"]);
    for bad in ["x", "1x", " 1", "18446744073709551616", "+", "-"] {
        assert_eq!(err(&mut c, &["SCAN", bad]), "ERR invalid cursor", "{bad:?}");
    }
    assert_eq!(
        err(&mut c, &["SCAN", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SCAN", "0", "COUNT", "-1"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SCAN", "0", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(err(&mut c, &["SCAN", "0", "MATCH"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["SCAN", "0", "FOO", "bar"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SCAN", "x", "COUNT", "0"]),
        "ERR invalid cursor"
    );
}

/// Redis's SCAN guarantee: a key present from the start to the end of a full iteration is
/// returned at least once, however the keyspace grows or shrinks meanwhile.
#[test]
fn scan_guarantee_under_concurrent_writes() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let stable: Vec<String> = (0..2000).map(|i| format!("stable:{i}")).collect();
    for chunk in stable.chunks(500) {
        let mut m = cmd("MSET");
        for k in chunk {
            m.arg(k).arg("v");
        }
        let _: () = m.query(&mut c).unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut w = srv.client();
        std::thread::spawn(move || {
            // Grow the keyspace a lot (forcing resizes), then delete it again (shrinks).
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && round < 20 {
                for i in 0..1000 {
                    let _: () = cmd("SET")
                        .arg(format!("churn:{round}:{i}"))
                        .arg("x")
                        .query(&mut w)
                        .unwrap();
                }
                if round % 2 == 1 {
                    for i in 0..1000 {
                        let _: i64 = cmd("DEL")
                            .arg(format!("churn:{}:{i}", round - 1))
                            .query(&mut w)
                            .unwrap();
                    }
                }
                round += 1;
            }
        })
    };
    let seen: HashSet<String> = scan_all(&mut c, &["COUNT", "5"]).into_iter().collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let missing: Vec<&String> = stable.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "SCAN missed {} keys", missing.len());
}

#[test]
fn object_subcommands() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "small", "5"]);
    ok(&mut c, &["SET", "bigint", "10000"]);
    ok(&mut c, &["SET", "text", "hello"]);
    ok(&mut c, &["SET", "long", &"x".repeat(45)]);
    assert_eq!(
        bulk(&mut c, &["OBJECT", "ENCODING", "small"]).as_deref(),
        Some("int")
    );
    assert_eq!(
        bulk(&mut c, &["OBJECT", "encoding", "text"]).as_deref(),
        Some("embstr")
    );
    assert_eq!(
        bulk(&mut c, &["OBJECT", "ENCODING", "long"]).as_deref(),
        Some("raw")
    );
    assert_eq!(bulk(&mut c, &["OBJECT", "ENCODING", "nokey"]), None);
    // Redis shares the integers 0..9999 and reports INT_MAX for them.
    assert_eq!(int(&mut c, &["OBJECT", "REFCOUNT", "small"]), 2147483647);
    assert_eq!(int(&mut c, &["OBJECT", "REFCOUNT", "bigint"]), 1);
    assert_eq!(int(&mut c, &["OBJECT", "REFCOUNT", "text"]), 1);
    assert_eq!(q(&mut c, &["OBJECT", "REFCOUNT", "nokey"]), Ok(Value::Nil));
    assert!(int(&mut c, &["OBJECT", "IDLETIME", "text"]) <= 1);
    assert_eq!(q(&mut c, &["OBJECT", "IDLETIME", "nokey"]), Ok(Value::Nil));
    assert_eq!(
        err(&mut c, &["OBJECT", "FREQ", "text"]),
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
    );
    assert_eq!(q(&mut c, &["OBJECT", "FREQ", "nokey"]), Ok(Value::Nil));
    assert_eq!(
        err(&mut c, &["OBJECT", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try OBJECT HELP."
    );
    assert_eq!(
        err(&mut c, &["OBJECT", "ENCODING"]),
        "ERR wrong number of arguments for 'object|encoding' command"
    );
    assert_eq!(
        err(&mut c, &["OBJECT"]),
        "ERR wrong number of arguments for 'object' command"
    );
    match q(&mut c, &["OBJECT", "HELP"]).unwrap() {
        Value::Array(lines) => {
            assert!(lines.len() > 5);
            assert_eq!(
                lines[0],
                Value::SimpleString(
                    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into()
                )
            );
        }
        other => panic!("{other:?}"),
    }

    ok(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    );
    assert!(int(&mut c, &["OBJECT", "FREQ", "text"]) >= 0);
    assert_eq!(
        err(&mut c, &["OBJECT", "IDLETIME", "text"]),
        "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
    );
}

#[test]
fn lazy_expiry_hides_keys_from_every_command() {
    let srv = Server::start(&["--enable-debug-command", "yes"]);
    let mut c = srv.client();
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for k in ["e1", "e2", "e3", "e4", "e5"] {
        ok(&mut c, &["SET", k, "v"]);
        assert_eq!(int(&mut c, &["PEXPIRE", k, "50"]), 1);
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(int(&mut c, &["DBSIZE"]), 5, "not reclaimed without access");
    assert_eq!(int(&mut c, &["EXISTS", "e1"]), 0);
    assert_eq!(status(&mut c, &["TYPE", "e2"]), "none");
    assert_eq!(int(&mut c, &["DEL", "e3"]), 0);
    assert_eq!(err(&mut c, &["RENAME", "e4", "x"]), "ERR no such key");
    assert_eq!(int(&mut c, &["COPY", "e5", "x"]), 0);
    assert_eq!(int(&mut c, &["DBSIZE"]), 0, "each access deleted its key");
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
}
