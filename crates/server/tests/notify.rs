//! Keyspace notifications end to end: the exact events of every command family (checked
//! against redis-server 7.0.15), `__keyspace@N__` / `__keyevent@N__` channels, flag
//! masks, `new` and `keymiss`, expired events from lazy and active expiry, events of
//! blocked clients served later, and CONFIG GET's canonical flags.

mod common;

use std::time::{Duration, Instant};

use common::{int, ok, q, Raw, Server};

fn raw_cmd(r: &mut Raw, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.cmd(&args);
}

/// Reads one array (or push) of bulk strings.
fn read_strings(r: &mut Raw) -> Vec<String> {
    let head = r.line();
    let n: usize = head[1..head.len() - 2].parse().expect("aggregate header");
    (0..n)
        .map(|_| {
            let len = r.line();
            let len: usize = len[1..len.len() - 2].parse().expect("bulk header");
            let body = r.read_n(len + 2);
            String::from_utf8_lossy(&body[..len]).into_owned()
        })
        .collect()
}

/// A connection subscribed to `pattern`.
fn psubscriber(srv: &Server, pattern: &str) -> Raw {
    let mut r = srv.raw();
    raw_cmd(&mut r, &["PSUBSCRIBE", pattern]);
    r.expect(&format!(
        "*3\r\n$10\r\npsubscribe\r\n${}\r\n{pattern}\r\n:1\r\n",
        pattern.len()
    ));
    r
}

/// Reads a pmessage and returns (channel, message).
fn pmessage(r: &mut Raw) -> (String, String) {
    let m = read_strings(r);
    assert_eq!(m[0], "pmessage", "{m:?}");
    (m[2].clone(), m[3].clone())
}

/// Reads a `__keyevent@db__:event` pmessage as "event:key".
fn keyevent(r: &mut Raw) -> String {
    let (channel, key) = pmessage(r);
    let event = channel.split_once("__:").expect("keyevent channel").1;
    format!("{event}:{key}")
}

fn run(con: &mut redis::Connection, line: &str) {
    let words: Vec<&str> = line.split(' ').collect();
    let _ = q(con, &words);
}

/// Commands of every family, run in order (the same script as against redis-server 7.0.15).
const SCRIPT: &[&str] = &[
    "SET s1 v",
    "SET s1 v EX 100",
    "SETNX s2 v",
    "SETEX s3 100 v",
    "GETSET s3 x",
    "GETDEL s3",
    "GETEX s1 PERSIST",
    "GETEX s1 EX 100",
    "MSET m1 a m2 b",
    "APPEND m1 c",
    "INCR n",
    "INCRBYFLOAT n 1.5",
    "SETRANGE m2 3 zz",
    "SETBIT b 3 1",
    "BITOP OR b2 b m1",
    "BITFIELD b SET u8 0 255",
    "DEL m1 m2 nokey",
    "RENAME b b3",
    "EXPIRE b3 100",
    "PERSIST b3",
    "EXPIRE b3 0",
    "LPUSH l a b c",
    "RPUSH l d",
    "LPOP l",
    "RPOP l 1",
    "LINSERT l BEFORE b x",
    "LSET l 0 y",
    "LREM l 1 y",
    "LMOVE l l2 LEFT RIGHT",
    "LTRIM l2 1 1",
    "HSET h f v g w",
    "HSETNX h f2 v",
    "HINCRBY h n 1",
    "HINCRBYFLOAT h n 1.5",
    "HDEL h f g n f2",
    "SADD s a b c",
    "SREM s a",
    "SMOVE s s2 b",
    "SPOP s",
    "SADD s x y",
    "SINTERSTORE s3 s s",
    "SUNIONSTORE s4 s s2",
    "SDIFFSTORE s5 s s",
    "ZADD z 1 a 2 b 3 c",
    "ZINCRBY z 1 a",
    "ZREM z a",
    "ZADD z 4 d 5 e 6 f",
    "ZREMRANGEBYRANK z 0 0",
    "ZREMRANGEBYSCORE z 5 5",
    "ZREMRANGEBYLEX z [d [d",
    "ZPOPMIN z",
    "ZPOPMAX z 1",
    "ZADD z 1 a 2 b",
    "ZUNIONSTORE z2 1 z",
    "ZINTERSTORE z3 1 z",
    "ZDIFFSTORE z4 2 z z",
    "ZRANGESTORE z5 z 0 -1",
    "GEOADD g 13.361389 38.115556 Palermo",
    "PFADD p a b",
    "PFMERGE p2 p",
    "RPUSH sl 3 1 2",
    "SORT sl STORE sl2",
    "COPY sl sl3",
    "MOVE sl3 1",
];

/// The `event:key` pairs redis-server 7.0.15 publishes on `__keyevent@*` for [`SCRIPT`]
/// with `notify-keyspace-events KEAn`, in order.
const EXPECTED: &[&str] = &[
    "new:s1",
    "set:s1",
    "set:s1",
    "expire:s1",
    "new:s2",
    "set:s2",
    "new:s3",
    "set:s3",
    "expire:s3",
    "set:s3",
    "del:s3",
    "persist:s1",
    "expire:s1",
    "new:m1",
    "set:m1",
    "new:m2",
    "set:m2",
    "append:m1",
    "new:n",
    "incrby:n",
    "incrbyfloat:n",
    "setrange:m2",
    "new:b",
    "setbit:b",
    "new:b2",
    "set:b2",
    "setbit:b",
    "del:m1",
    "del:m2",
    "new:b3",
    "rename_from:b",
    "rename_to:b3",
    "expire:b3",
    "persist:b3",
    "del:b3",
    "new:l",
    "lpush:l",
    "rpush:l",
    "lpop:l",
    "rpop:l",
    "linsert:l",
    "lset:l",
    "lrem:l",
    "new:l2",
    "rpush:l2",
    "lpop:l",
    "ltrim:l2",
    "del:l2",
    "new:h",
    "hset:h",
    "hset:h",
    "hincrby:h",
    "hincrbyfloat:h",
    "hdel:h",
    "del:h",
    "new:s",
    "sadd:s",
    "srem:s",
    "spop:s",
    "sadd:s",
    "new:s3",
    "sinterstore:s3",
    "new:z",
    "zadd:z",
    "zincr:z",
    "zrem:z",
    "zadd:z",
    "zremrangebyrank:z",
    "zremrangebyscore:z",
    "zremrangebylex:z",
    "zpopmin:z",
    "zpopmax:z",
    "del:z",
    "new:z",
    "zadd:z",
    "new:z2",
    "zunionstore:z2",
    "new:z3",
    "zinterstore:z3",
    "new:z5",
    "zrangestore:z5",
    "new:g",
    "zadd:g",
    "new:p",
    "pfadd:p",
    "new:p2",
    "pfadd:p2",
    "new:sl",
    "rpush:sl",
    "new:sl2",
    "sortstore:sl2",
    "new:sl3",
    "copy_to:sl3",
    "new:sl3",
    "move_from:sl3",
    "move_to:sl3",
];

#[test]
fn every_family_publishes_the_events_redis_does() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    ok(
        &mut con,
        &["CONFIG", "SET", "notify-keyspace-events", "KEAn"],
    );
    let mut sub = psubscriber(&srv, "__keyevent*");
    for line in SCRIPT {
        run(&mut con, line);
    }
    for (i, want) in EXPECTED.iter().enumerate() {
        assert_eq!(&keyevent(&mut sub), want, "event #{i}");
    }
    // Nothing more: a marker event comes next.
    run(&mut con, "SET marker 1");
    assert_eq!(keyevent(&mut sub), "new:marker");
}

#[test]
fn keyspace_and_keyevent_channels_follow_the_flags() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["SELECT", "9"]);
    ok(
        &mut con,
        &["CONFIG", "SET", "notify-keyspace-events", "KEl"],
    );
    let mut sub = psubscriber(&srv, "*");
    run(&mut con, "SET foo bar");
    run(&mut con, "LPUSH mylist a");
    // No event for SET: only list commands are enabled.
    assert_eq!(
        pmessage(&mut sub),
        ("__keyspace@9__:mylist".into(), "lpush".into())
    );
    assert_eq!(
        pmessage(&mut sub),
        ("__keyevent@9__:lpush".into(), "mylist".into())
    );
    ok(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "Kg"]);
    run(&mut con, "DEL foo");
    assert_eq!(
        pmessage(&mut sub),
        ("__keyspace@9__:foo".into(), "del".into())
    );
    // Classes without K or E publish nothing.
    ok(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "A"]);
    run(&mut con, "SET foo bar");
    ok(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "E$"]);
    run(&mut con, "SET foo baz");
    assert_eq!(
        pmessage(&mut sub),
        ("__keyevent@9__:set".into(), "foo".into())
    );
}

#[test]
fn config_get_shows_the_canonical_flags() {
    let srv = Server::start(&["--notify-keyspace-events", "KEA"]);
    let mut con = srv.client();
    let get = |con: &mut redis::Connection| -> String {
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query(con)
            .unwrap();
        v[1].clone()
    };
    assert_eq!(get(&mut con), "AKE");
    for (set, want) in [
        ("gKE", "gKE"),
        ("$lshzxeKE", "$lshzxeKE"),
        ("KA", "AK"),
        ("EA", "AE"),
        ("KEAnm", "AKEm"),
        ("", ""),
    ] {
        ok(&mut con, &["CONFIG", "SET", "notify-keyspace-events", set]);
        assert_eq!(get(&mut con), want, "after {set:?}");
    }
    let e = common::err(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "Q"]);
    assert!(e.starts_with("ERR CONFIG SET failed"), "{e}");
}

#[test]
fn new_and_keymiss_events() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(
        &mut con,
        &["CONFIG", "SET", "notify-keyspace-events", "Enm"],
    );
    let mut sub = psubscriber(&srv, "*");
    run(&mut con, "SET foo bar");
    run(&mut con, "SET foo baz");
    run(&mut con, "GET nothere");
    run(&mut con, "EXISTS foo gone");
    run(&mut con, "SET bar bar");
    assert_eq!(keyevent(&mut sub), "new:foo");
    assert_eq!(keyevent(&mut sub), "keymiss:nothere");
    assert_eq!(keyevent(&mut sub), "keymiss:gone");
    assert_eq!(keyevent(&mut sub), "new:bar");
}

#[test]
fn lazily_expired_keys_raise_expired() {
    let srv = Server::start(&["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    ok(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    ok(
        &mut con,
        &["CONFIG", "SET", "notify-keyspace-events", "KEx"],
    );
    let mut sub = psubscriber(&srv, "*");
    ok(&mut con, &["PSETEX", "foo", "50", "1"]);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(int(&mut con, &["EXISTS", "foo"]), 0);
    assert_eq!(
        pmessage(&mut sub),
        ("__keyspace@0__:foo".into(), "expired".into())
    );
    assert_eq!(
        pmessage(&mut sub),
        ("__keyevent@0__:expired".into(), "foo".into())
    );
    // Overwriting an expired key expires it first.
    ok(&mut con, &["PSETEX", "bar", "50", "1"]);
    std::thread::sleep(Duration::from_millis(120));
    ok(&mut con, &["SET", "bar", "2"]);
    assert_eq!(
        pmessage(&mut sub),
        ("__keyspace@0__:bar".into(), "expired".into())
    );
}

#[test]
fn actively_expired_keys_raise_expired_without_any_access() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    ok(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "Ex"]);
    let mut sub = psubscriber(&srv, "*");
    ok(&mut con, &["SELECT", "3"]);
    ok(&mut con, &["PSETEX", "foo", "100", "1"]);
    let started = Instant::now();
    assert_eq!(
        pmessage(&mut sub),
        ("__keyevent@3__:expired".into(), "foo".into())
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn served_blocked_clients_raise_their_pops() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    ok(
        &mut con,
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
    );
    let mut sub = psubscriber(&srv, "__keyevent*");
    let mut mover = srv.raw();
    raw_cmd(&mut mover, &["BLMOVE", "l", "d", "LEFT", "RIGHT", "0"]);
    let mut zpop = srv.raw();
    raw_cmd(&mut zpop, &["BZPOPMIN", "z", "0"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
        if info.contains("blocked_clients:2\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(5));
    }
    run(&mut con, "RPUSH l a");
    run(&mut con, "ZADD z 1 m");
    mover.expect("$1\r\na\r\n");
    zpop.expect("*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n1\r\n");
    for want in [
        "rpush:l",
        "rpush:d",
        "lpop:l",
        "del:l",
        "zadd:z",
        "zpopmin:z",
        "del:z",
    ] {
        assert_eq!(keyevent(&mut sub), want);
    }
}

#[test]
fn a_resp3_subscriber_gets_its_own_events_before_the_reply() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "K$"]);
    let mut me = srv.raw();
    me.hello3();
    raw_cmd(&mut me, &["SUBSCRIBE", "__keyspace@0__:k"]);
    me.expect(">3\r\n$9\r\nsubscribe\r\n$16\r\n__keyspace@0__:k\r\n:1\r\n");
    raw_cmd(&mut me, &["SET", "k", "v"]);
    me.expect(">3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n+OK\r\n");
}

#[test]
fn unlink_inside_exec_keeps_the_transaction_locks_and_notifies() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "Eg"]);
    ok(&mut con, &["SET", "a", "1"]);
    let mut sub = psubscriber(&srv, "*");
    let mut r = srv.raw();
    raw_cmd(&mut r, &["MULTI"]);
    raw_cmd(&mut r, &["UNLINK", "a"]);
    raw_cmd(&mut r, &["SET", "b", "1"]);
    raw_cmd(&mut r, &["EXEC"]);
    r.expect("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n+OK\r\n");
    assert_eq!(keyevent(&mut sub), "del:a");
    assert_eq!(int(&mut con, &["EXISTS", "a", "b"]), 1);
}
