//! End-to-end tests of the expiry commands (EXPIRE family with NX/XX/GT/LT, TTL, PTTL,
//! EXPIRETIME, PEXPIRETIME, PERSIST) and of lazy and active expiry, against the real binary.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{err, int, ok, Server};
use redis::{cmd, Connection};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// INFO field as an integer.
fn info_field(con: &mut Connection, field: &str) -> i64 {
    let info: String = cmd("INFO").arg("stats").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn ttl_family_replies() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(int(&mut c, &[cmd, "nokey"]), -2, "{cmd}");
    }
    ok(&mut c, &["SET", "x", "v"]);
    for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(int(&mut c, &[cmd, "x"]), -1, "{cmd}");
    }
    assert_eq!(int(&mut c, &["EXPIRE", "x", "10"]), 1);
    assert_eq!(int(&mut c, &["TTL", "x"]), 10);
    let pttl = int(&mut c, &["PTTL", "x"]);
    assert!(pttl > 9_000 && pttl <= 10_000, "pttl {pttl}");

    let at = now_ms() + 100_000;
    assert_eq!(int(&mut c, &["PEXPIREAT", "x", &at.to_string()]), 1);
    assert_eq!(int(&mut c, &["PEXPIRETIME", "x"]), at);
    // EXPIRETIME rounds to the nearest second, as Redis does.
    assert_eq!(int(&mut c, &["EXPIRETIME", "x"]), (at + 500) / 1000);
    let secs = now_ms() / 1000 + 15;
    assert_eq!(int(&mut c, &["EXPIREAT", "x", &secs.to_string()]), 1);
    assert_eq!(int(&mut c, &["EXPIRETIME", "x"]), secs);
    let ttl = int(&mut c, &["TTL", "x"]);
    assert!((13..=15).contains(&ttl), "ttl {ttl}");
    assert_eq!(
        err(&mut c, &["TTL"]),
        "ERR wrong number of arguments for 'ttl' command"
    );
}

#[test]
fn persist() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["PERSIST", "nokey"]), 0);
    ok(&mut c, &["SET", "x", "foo"]);
    assert_eq!(int(&mut c, &["PERSIST", "x"]), 0);
    assert_eq!(int(&mut c, &["EXPIRE", "x", "50"]), 1);
    assert_eq!(int(&mut c, &["TTL", "x"]), 50);
    assert_eq!(int(&mut c, &["PERSIST", "x"]), 1);
    assert_eq!(int(&mut c, &["TTL", "x"]), -1);
    let v: String = cmd("GET").arg("x").query(&mut c).unwrap();
    assert_eq!(v, "foo");
}

#[test]
fn expire_conditions() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let set = |c: &mut Connection, ttl: Option<&str>| {
        ok(c, &["SET", "foo", "bar"]);
        if let Some(t) = ttl {
            assert_eq!(int(c, &["EXPIRE", "foo", t]), 1);
        }
    };
    set(&mut c, Some("100"));
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "200", "NX"]), 0);
    assert_eq!(int(&mut c, &["TTL", "foo"]), 100);
    set(&mut c, None);
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "200", "nx"]), 1);
    assert_eq!(int(&mut c, &["TTL", "foo"]), 200);

    set(&mut c, Some("100"));
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "200", "XX"]), 1);
    set(&mut c, None);
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "200", "XX"]), 0);
    assert_eq!(int(&mut c, &["TTL", "foo"]), -1);

    set(&mut c, Some("100"));
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "200", "GT"]), 1);
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "100", "GT"]), 0);
    assert_eq!(int(&mut c, &["TTL", "foo"]), 200);
    set(&mut c, None);
    assert_eq!(
        int(&mut c, &["EXPIRE", "foo", "200", "GT"]),
        0,
        "no TTL = infinite"
    );

    set(&mut c, Some("100"));
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "200", "LT"]), 0);
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "50", "LT"]), 1);
    assert_eq!(int(&mut c, &["TTL", "foo"]), 50);
    set(&mut c, None);
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "100", "LT"]), 1);
    set(&mut c, Some("200"));
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "100", "LT", "XX"]), 1);
    set(&mut c, None);
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "100", "LT", "XX"]), 0);

    for opt in ["NX", "XX", "GT", "LT"] {
        assert_eq!(int(&mut c, &["EXPIRE", "none", "100", opt]), 0);
    }
}

#[test]
fn expire_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "foo", "bar"]);
    let nx = "ERR NX and XX, GT or LT options at the same time are not compatible";
    for opts in [["NX", "XX"], ["NX", "GT"], ["LT", "NX"]] {
        assert_eq!(err(&mut c, &["EXPIRE", "foo", "200", opts[0], opts[1]]), nx);
    }
    assert_eq!(
        err(&mut c, &["EXPIRE", "foo", "200", "LT", "GT"]),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "foo", "200", "AB"]),
        "ERR Unsupported option AB"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "foo", "200", "XX", "AB"]),
        "ERR Unsupported option AB"
    );
    // Options are checked before the time.
    assert_eq!(
        err(&mut c, &["EXPIRE", "foo", "x", "AB"]),
        "ERR Unsupported option AB"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "foo", ""]),
        "ERR value is not an integer or out of range"
    );
    for t in [
        "9223370399119966",
        "9223372036854776",
        "10000000000000000",
        "18446744073709561",
        "-9223372036854776",
        "-9999999999999999",
    ] {
        assert_eq!(
            err(&mut c, &["EXPIRE", "foo", t]),
            "ERR invalid expire time in 'expire' command",
            "{t}"
        );
    }
    assert_eq!(
        err(&mut c, &["PEXPIRE", "foo", "9223372036854770000"]),
        "ERR invalid expire time in 'pexpire' command"
    );
    assert_eq!(
        int(&mut c, &["TTL", "foo"]),
        -1,
        "errors leave the key alone"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "foo"]),
        "ERR wrong number of arguments for 'expire' command"
    );
}

#[test]
fn past_deadlines_delete_the_key() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "foo", "bar"]);
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "-10"]), 1);
    assert_eq!(int(&mut c, &["TTL", "foo"]), -2);
    ok(&mut c, &["SET", "foo", "bar"]);
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "-10", "LT"]), 1);
    assert_eq!(int(&mut c, &["EXISTS", "foo"]), 0);
    ok(&mut c, &["SET", "foo", "bar"]);
    assert_eq!(
        int(&mut c, &["PEXPIREAT", "foo", "-9223372036854770000"]),
        1
    );
    assert_eq!(int(&mut c, &["TTL", "foo"]), -2);
    ok(&mut c, &["SET", "foo", "bar"]);
    let past = (now_ms() / 1000 - 100).to_string();
    assert_eq!(int(&mut c, &["EXPIREAT", "foo", &past]), 1);
    assert_eq!(int(&mut c, &["EXISTS", "foo"]), 0);
    // A huge absolute deadline is fine.
    ok(&mut c, &["SET", "foo", "bar"]);
    assert_eq!(int(&mut c, &["PEXPIREAT", "foo", "9223372036854770000"]), 1);
    assert!(int(&mut c, &["TTL", "foo"]) > 1_000_000_000);
}

#[test]
fn sub_second_expiry_is_exact() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "x", "v"]);
    assert_eq!(int(&mut c, &["PEXPIRE", "x", "100"]), 1);
    let v: Option<String> = cmd("GET").arg("x").query(&mut c).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    std::thread::sleep(Duration::from_millis(110));
    let v: Option<String> = cmd("GET").arg("x").query(&mut c).unwrap();
    assert_eq!(v, None);
}

#[test]
fn lazy_expiry_on_access_counts_expired_keys() {
    let srv = Server::start(&["--enable-debug-command", "yes"]);
    let mut c = srv.client();
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for k in ["k1", "k2", "k3"] {
        ok(&mut c, &["SET", k, "a"]);
        assert_eq!(int(&mut c, &["PEXPIRE", k, "100"]), 1);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(int(&mut c, &["DBSIZE"]), 3);
    let _: Vec<Option<String>> = cmd("MGET")
        .arg("k1")
        .arg("k2")
        .arg("k3")
        .query(&mut c)
        .unwrap();
    assert_eq!(int(&mut c, &["DBSIZE"]), 0);
    assert_eq!(info_field(&mut c, "expired_keys"), 3);

    // EXPIRE on an expired key does not bring it back.
    ok(&mut c, &["SET", "foo", "bar"]);
    assert_eq!(int(&mut c, &["PEXPIRE", "foo", "50"]), 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(int(&mut c, &["EXPIRE", "foo", "10"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "foo"]), 0);
    ok(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
}

#[test]
fn active_expiry_deletes_without_access() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    // Plenty of keys without a TTL around the volatile ones, in two databases.
    let mut m = cmd("MSET");
    for i in 0..5000 {
        m.arg(format!("keep:{i}")).arg("v");
    }
    let _: () = m.query(&mut c).unwrap();
    for db in ["0", "5"] {
        ok(&mut c, &["SELECT", db]);
        for k in ["key1", "key2", "key3"] {
            ok(&mut c, &["SET", k, "a"]);
            assert_eq!(int(&mut c, &["PEXPIRE", k, "500"]), 1);
        }
    }
    let started = Instant::now();
    let deadline = started + Duration::from_millis(2500);
    loop {
        ok(&mut c, &["SELECT", "0"]);
        let db0 = int(&mut c, &["DBSIZE"]);
        ok(&mut c, &["SELECT", "5"]);
        let db5 = int(&mut c, &["DBSIZE"]);
        if db0 == 5000 && db5 == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not expired: db0 {db0}, db5 {db5}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "expired too early"
    );
    assert_eq!(info_field(&mut c, "expired_keys"), 6);
}

#[test]
fn debug_object_sees_an_expired_key_that_no_one_has_touched() {
    let srv = Server::start(&["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    ok(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    ok(&mut con, &["SET", "k", "v", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(5));
    // DEBUG OBJECT reads the stored entry (as Redis reads its dict), without expiring it.
    let line: String = redis::cmd("DEBUG")
        .arg("OBJECT")
        .arg("k")
        .query(&mut con)
        .unwrap();
    assert!(line.contains("encoding:embstr"), "{line}");
    assert_eq!(int(&mut con, &["EXISTS", "k"]), 0);
    assert!(err(&mut con, &["DEBUG", "OBJECT", "k"]).contains("no such key"));
}
