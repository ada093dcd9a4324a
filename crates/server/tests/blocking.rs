//! Blocking list pops end to end: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP and CLIENT
//! UNBLOCK — FIFO service across connections (and worker threads), timeouts, chained moves,
//! pipelines behind a blocked command, disconnects.

mod common;

use std::time::{Duration, Instant};

use common::{err, int, q, strings, Raw, Server};

/// Waits until INFO reports `n` blocked clients.
fn wait_blocked(con: &mut redis::Connection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
        let line = info
            .lines()
            .find(|l| l.starts_with("blocked_clients:"))
            .expect("blocked_clients field");
        if line == format!("blocked_clients:{n}") {
            return;
        }
        assert!(Instant::now() < deadline, "still {line}, want {n}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn raw_cmd(srv: &Server, args: &[&str]) -> Raw {
    let mut r = srv.raw();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.cmd(&args);
    r
}

#[test]
fn waiters_are_served_in_blocking_order_before_the_pusher_reads() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    let mut first = raw_cmd(&srv, &["BLPOP", "l1", "l2", "0"]);
    wait_blocked(&mut con, 1);
    let mut second = raw_cmd(&srv, &["BRPOP", "l2", "5"]);
    wait_blocked(&mut con, 2);
    assert_eq!(int(&mut con, &["RPUSH", "l2", "a", "b", "c"]), 3);
    // Both pops happened before the push's reply: the pusher sees what they left.
    assert_eq!(strings(&mut con, &["LRANGE", "l2", "0", "-1"]), ["b"]);
    first.expect("*2\r\n$2\r\nl2\r\n$1\r\na\r\n");
    second.expect("*2\r\n$2\r\nl2\r\n$1\r\nc\r\n");
    wait_blocked(&mut con, 0);
}

#[test]
fn immediate_pops_errors_and_timeouts() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    q(&mut con, &["RPUSH", "b", "1", "2"]).unwrap();
    let v: Vec<String> = redis::cmd("BLPOP")
        .arg("missing")
        .arg("b")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(v, ["b", "1"]);
    let v: Vec<String> = redis::cmd("BRPOP").arg("b").arg(0).query(&mut con).unwrap();
    assert_eq!(v, ["b", "2"]);
    assert_eq!(int(&mut con, &["EXISTS", "b"]), 0);
    q(&mut con, &["SET", "s", "x"]).unwrap();
    assert_eq!(
        err(&mut con, &["BLPOP", "missing", "s", "0"]),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert_eq!(
        err(&mut con, &["BLPOP", "x", "-1"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        err(&mut con, &["BLPOP", "x", "1e30"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        err(&mut con, &["BLPOP", "x", "abc"]),
        "ERR timeout is not a float or out of range"
    );
    assert_eq!(
        err(&mut con, &["BLMOVE", "x", "y", "up", "left", "0"]),
        "ERR syntax error"
    );

    // A timeout answers a null array in RESP2, null in RESP3, for every blocking pop.
    let mut r = srv.raw();
    let started = Instant::now();
    r.cmd(&[b"BLPOP", b"nothing", b"0.1"]);
    r.expect("*-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(100));
    r.cmd(&[b"BRPOPLPUSH", b"nothing", b"dst", b"0.05"]);
    r.expect("*-1\r\n");
    r.hello3();
    r.cmd(&[b"BLMPOP", b"0.05", b"1", b"nothing", b"LEFT"]);
    r.expect("_\r\n");
    wait_blocked(&mut con, 0);
}

#[test]
fn blmove_chains_and_wrong_type_destination() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mut c1 = raw_cmd(&srv, &["BLMOVE", "a", "b", "RIGHT", "LEFT", "0"]);
    wait_blocked(&mut con, 1);
    let mut c2 = raw_cmd(&srv, &["BRPOPLPUSH", "b", "c", "0"]);
    wait_blocked(&mut con, 2);
    assert_eq!(int(&mut con, &["RPUSH", "a", "foo"]), 1);
    c1.expect("$3\r\nfoo\r\n");
    c2.expect("$3\r\nfoo\r\n");
    assert_eq!(strings(&mut con, &["LRANGE", "c", "0", "-1"]), ["foo"]);
    assert_eq!(int(&mut con, &["EXISTS", "a", "b"]), 0);

    // The destination turned into a string while the client waited: it gets WRONGTYPE
    // and the element stays in the source.
    let mut c3 = raw_cmd(&srv, &["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"]);
    wait_blocked(&mut con, 1);
    q(&mut con, &["SET", "dst", "x"]).unwrap();
    q(&mut con, &["LPUSH", "src", "e"]).unwrap();
    c3.expect("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_eq!(strings(&mut con, &["LRANGE", "src", "0", "-1"]), ["e"]);
    wait_blocked(&mut con, 0);
}

#[test]
fn blmpop_pops_counts_and_variadic_push_serves_several() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mut c1 = raw_cmd(
        &srv,
        &["BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "2"],
    );
    wait_blocked(&mut con, 1);
    let mut c2 = raw_cmd(&srv, &["BLPOP", "m2", "0"]);
    wait_blocked(&mut con, 2);
    assert_eq!(int(&mut con, &["RPUSH", "m2", "1", "2", "3"]), 3);
    c1.expect("*2\r\n$2\r\nm2\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n");
    c2.expect("*2\r\n$2\r\nm2\r\n$1\r\n1\r\n");
    assert_eq!(int(&mut con, &["EXISTS", "m2"]), 0);
    assert_eq!(
        err(&mut con, &["BLMPOP", "0", "0", "k", "LEFT"]),
        "ERR numkeys should be greater than 0"
    );
    assert_eq!(
        err(&mut con, &["BLMPOP", "0", "1", "k", "LEFT", "COUNT", "0"]),
        "ERR count should be greater than 0"
    );
}

#[test]
fn commands_pipelined_behind_a_blocked_one_wait_for_it() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mut r = srv.raw();
    r.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nk\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n");
    wait_blocked(&mut con, 1);
    q(&mut con, &["LPUSH", "k", "v"]).unwrap();
    r.expect("*2\r\n$1\r\nk\r\n$1\r\nv\r\n+PONG\r\n");
}

#[test]
fn client_unblock_and_disconnects() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mut r = srv.raw();
    r.cmd(&[b"CLIENT", b"ID"]);
    let id = r.line()[1..].trim().to_string();
    r.cmd(&[b"BLPOP", b"k", b"0"]);
    wait_blocked(&mut con, 1);
    assert_eq!(int(&mut con, &["CLIENT", "UNBLOCK", &id]), 1);
    r.expect("*-1\r\n");
    assert_eq!(int(&mut con, &["CLIENT", "UNBLOCK", &id]), 0);
    r.cmd(&[b"BRPOP", b"k", b"0"]);
    wait_blocked(&mut con, 1);
    assert_eq!(
        err(&mut con, &["CLIENT", "UNBLOCK", &id, "MAYBE"]),
        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
    );
    assert_eq!(int(&mut con, &["CLIENT", "UNBLOCK", &id, "ERROR"]), 1);
    r.expect("-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    assert_eq!(
        err(&mut con, &["CLIENT", "UNBLOCK", "asd"]),
        "ERR value is not an integer or out of range"
    );

    // A waiter that hangs up takes nothing.
    let gone = raw_cmd(&srv, &["BLPOP", "k", "0"]);
    wait_blocked(&mut con, 1);
    drop(gone);
    wait_blocked(&mut con, 0);
    q(&mut con, &["LPUSH", "k", "kept"]).unwrap();
    assert_eq!(strings(&mut con, &["LRANGE", "k", "0", "-1"]), ["kept"]);
}

#[test]
fn keys_moved_into_place_wake_waiters() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mut c = raw_cmd(&srv, &["BLPOP", "target", "0"]);
    wait_blocked(&mut con, 1);
    q(&mut con, &["RPUSH", "tmp", "x"]).unwrap();
    q(&mut con, &["RENAME", "tmp", "target"]).unwrap();
    c.expect("*2\r\n$6\r\ntarget\r\n$1\r\nx\r\n");

    // SWAPDB brings a whole database's lists into view.
    let mut c = raw_cmd(&srv, &["BLPOP", "swapped", "0"]);
    wait_blocked(&mut con, 1);
    q(&mut con, &["SELECT", "1"]).unwrap();
    q(&mut con, &["RPUSH", "swapped", "y"]).unwrap();
    q(&mut con, &["SWAPDB", "0", "1"]).unwrap();
    c.expect("*2\r\n$7\r\nswapped\r\n$1\r\ny\r\n");

    // A push to a key of another type leaves the waiter waiting.
    let mut c = raw_cmd(&srv, &["BLPOP", "z", "0"]);
    wait_blocked(&mut con, 1);
    q(&mut con, &["SELECT", "0"]).unwrap();
    q(&mut con, &["SADD", "z", "m"]).unwrap();
    q(&mut con, &["DEL", "z"]).unwrap();
    q(&mut con, &["RPUSH", "z", "w"]).unwrap();
    c.expect("*2\r\n$1\r\nz\r\n$1\r\nw\r\n");
}

#[test]
fn command_table_and_stats() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let info = |con: &mut redis::Connection, name: &str| -> Vec<redis::Value> {
        let v: Vec<Vec<redis::Value>> = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(name)
            .query(con)
            .unwrap();
        v.into_iter().next().unwrap()
    };
    let cats = |v: &[redis::Value]| -> Vec<String> { redis::from_redis_value(&v[6]).unwrap() };
    assert_eq!(
        cats(&info(&mut con, "blpop")),
        ["@write", "@list", "@slow", "@blocking"]
    );
    assert_eq!(
        cats(&info(&mut con, "blmove")),
        ["@write", "@list", "@slow", "@blocking"]
    );
    let flags: Vec<String> = redis::from_redis_value(&info(&mut con, "blmpop")[2]).unwrap();
    assert_eq!(flags, ["write", "blocking", "movablekeys"]);

    // A blocked command counts as one call, whether served or timed out.
    let mut c = raw_cmd(&srv, &["BLPOP", "k", "0"]);
    wait_blocked(&mut con, 1);
    q(&mut con, &["LPUSH", "k", "v"]).unwrap();
    c.expect("*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut con)
        .unwrap();
    assert!(
        stats.contains("cmdstat_blpop:calls=1,"),
        "commandstats: {stats}"
    );
}

#[test]
fn sorted_set_blocking_pops() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mut min = raw_cmd(&srv, &["BZPOPMIN", "z1", "z2", "0"]);
    wait_blocked(&mut con, 1);
    let mut multi = raw_cmd(&srv, &["BZMPOP", "0", "1", "z2", "MAX", "COUNT", "5"]);
    wait_blocked(&mut con, 2);
    // A list on the key wakes nobody: both wait for a sorted set.
    q(&mut con, &["RPUSH", "z2", "l"]).unwrap();
    q(&mut con, &["DEL", "z2"]).unwrap();
    assert_eq!(
        int(&mut con, &["ZADD", "z2", "1", "a", "2", "b", "3", "c"]),
        3
    );
    min.expect("*3\r\n$2\r\nz2\r\n$1\r\na\r\n$1\r\n1\r\n");
    multi
        .expect("*2\r\n$2\r\nz2\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    assert_eq!(int(&mut con, &["EXISTS", "z2"]), 0);

    // Immediate pops, and RESP3 scores as doubles.
    q(&mut con, &["ZADD", "z", "1.5", "x", "2", "y"]).unwrap();
    let mut r = srv.raw();
    r.hello3();
    r.cmd(&[b"BZPOPMAX", b"z", b"0"]);
    r.expect("*3\r\n$1\r\nz\r\n$1\r\ny\r\n,2\r\n");
    r.cmd(&[b"BZPOPMIN", b"none", b"0.01"]);
    r.expect("_\r\n");
}
