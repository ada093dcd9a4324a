//! Streams end to end: XADD's ID rules and trimming, XRANGE / XREVRANGE ranges, XDEL, XTRIM,
//! XSETID, XREAD (immediate, `$`, BLOCK woken from another worker thread, timeouts),
//! RESP2/RESP3 reply shapes and WRONGTYPE. Consumer groups are in stream_groups.rs.

mod common;

use std::time::{Duration, Instant};

use common::{bulk, err, int, ok, q, Raw, Server};

/// Waits until INFO reports `n` blocked clients.
fn wait_blocked(con: &mut redis::Connection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let want = format!("blocked_clients:{n}");
    loop {
        let info = bulk(con, &["INFO", "clients"]).expect("INFO");
        if info.lines().any(|l| l == want) {
            return;
        }
        assert!(Instant::now() < deadline, "never reached {want}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn raw_cmd(srv: &Server, args: &[&str]) -> Raw {
    let mut r = srv.raw();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.cmd(&args);
    r
}

/// The IDs of an XRANGE-shaped reply.
fn ids(con: &mut redis::Connection, args: &[&str]) -> Vec<String> {
    let redis::Value::Array(entries) = q(con, args).expect("reply") else {
        panic!("{args:?}: not an array");
    };
    entries
        .into_iter()
        .map(|e| match e {
            redis::Value::Array(mut pair) => match pair.remove(0) {
                redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
                other => panic!("id {other:?}"),
            },
            other => panic!("entry {other:?}"),
        })
        .collect()
}

#[test]
fn xadd_id_rules() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    assert_eq!(
        bulk(&mut con, &["XADD", "s", "1-1", "a", "1"]).unwrap(),
        "1-1"
    );
    let top = "ERR The ID specified in XADD is equal or smaller than the target stream top item";
    assert_eq!(err(&mut con, &["XADD", "s", "1-1", "a", "1"]), top);
    assert_eq!(err(&mut con, &["XADD", "s", "0-5", "a", "1"]), top);
    assert_eq!(
        bulk(&mut con, &["XADD", "s", "1-*", "a", "1"]).unwrap(),
        "1-2"
    );
    assert_eq!(
        bulk(&mut con, &["XADD", "s", "5-*", "a", "1"]).unwrap(),
        "5-0"
    );
    assert_eq!(
        bulk(&mut con, &["XADD", "s", "7", "a", "1"]).unwrap(),
        "7-0"
    );
    assert_eq!(
        err(&mut con, &["XADD", "t", "0-0", "a", "1"]),
        "ERR The ID specified in XADD must be greater than 0-0"
    );
    assert_eq!(int(&mut con, &["EXISTS", "t"]), 0);
    assert_eq!(
        err(&mut con, &["XADD", "s", "1-x", "a", "1"]),
        "ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(
        err(&mut con, &["XADD", "s", "*", "a"]),
        "ERR wrong number of arguments for 'xadd' command"
    );
    // `*` after an explicit ID far in the future stays monotonic (the clock is "behind").
    bulk(&mut con, &["XADD", "s", "99999999999999-5", "a", "1"]).unwrap();
    assert_eq!(
        bulk(&mut con, &["XADD", "s", "*", "a", "1"]).unwrap(),
        "99999999999999-6"
    );
    // NOMKSTREAM on a missing key: null, nothing created.
    assert_eq!(
        q(&mut con, &["XADD", "n", "NOMKSTREAM", "*", "a", "1"]),
        Ok(redis::Value::Nil)
    );
    assert_eq!(int(&mut con, &["EXISTS", "n"]), 0);
    // The last possible ID.
    let max = "18446744073709551615-18446744073709551615";
    bulk(&mut con, &["XADD", "m", max, "a", "1"]).unwrap();
    assert_eq!(
        err(&mut con, &["XADD", "m", "*", "a", "1"]),
        "ERR The stream has exhausted the last possible ID, unable to add more items"
    );
    assert_eq!(int(&mut con, &["XLEN", "s"]), 6);
    assert_eq!(
        q(&mut con, &["TYPE", "s"]),
        Ok(redis::Value::SimpleString("stream".into()))
    );
    assert_eq!(
        bulk(&mut con, &["OBJECT", "ENCODING", "s"]).unwrap(),
        "stream"
    );
}

#[test]
fn trimming_exact_and_approximate() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    for i in 1..=250 {
        bulk(&mut con, &["XADD", "s", &format!("{i}-0"), "f", "v"]).unwrap();
    }
    // `~` only drops whole nodes (100 entries each).
    assert_eq!(int(&mut con, &["XTRIM", "s", "MAXLEN", "~", "120"]), 100);
    assert_eq!(int(&mut con, &["XTRIM", "s", "MAXLEN", "=", "120"]), 30);
    assert_eq!(
        ids(&mut con, &["XRANGE", "s", "-", "+", "COUNT", "1"]),
        ["131-0"]
    );
    assert_eq!(int(&mut con, &["XTRIM", "s", "MINID", "200"]), 69);
    assert_eq!(int(&mut con, &["XLEN", "s"]), 51);
    // XADD trims after adding.
    bulk(&mut con, &["XADD", "s", "MAXLEN", "2", "300-0", "f", "v"]).unwrap();
    assert_eq!(
        ids(&mut con, &["XRANGE", "s", "-", "+"]),
        ["250-0", "300-0"]
    );
    assert_eq!(
        err(&mut con, &["XTRIM", "s", "MAXLEN", "1", "LIMIT", "5"]),
        "ERR syntax error, LIMIT cannot be used without the special ~ option"
    );
    assert_eq!(
        err(&mut con, &["XTRIM", "s", "LIMIT", "5"]),
        "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
    );
    assert_eq!(
        err(
            &mut con,
            &["XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "f", "v"]
        ),
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut con, &["XTRIM", "s", "MAXLEN", "-1"]),
        "ERR The MAXLEN argument must be >= 0."
    );
    assert_eq!(int(&mut con, &["XTRIM", "missing", "MAXLEN", "1"]), 0);
}

#[test]
fn ranges_delete_and_setid() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    for id in ["1-1", "1-2", "2-0", "3-0"] {
        bulk(&mut con, &["XADD", "s", id, "a", "1", "b", "2"]).unwrap();
    }
    bulk(&mut con, &["XADD", "s", "4-0", "other", "x"]).unwrap();
    assert_eq!(
        ids(&mut con, &["XRANGE", "s", "(1-1", "(3-0"]),
        ["1-2", "2-0"]
    );
    assert_eq!(ids(&mut con, &["XRANGE", "s", "1", "1"]), ["1-1", "1-2"]);
    assert_eq!(
        ids(&mut con, &["XREVRANGE", "s", "+", "-", "COUNT", "2"]),
        ["4-0", "3-0"]
    );
    assert_eq!(
        q(&mut con, &["XRANGE", "s", "-", "+", "COUNT", "0"]),
        Ok(redis::Value::Nil)
    );
    assert_eq!(
        err(&mut con, &["XRANGE", "s", "(-", "+"]),
        "ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(
        err(&mut con, &["XRANGE", "s", "-", "(0-0"]),
        "ERR invalid end ID for the interval"
    );
    assert_eq!(
        ids(&mut con, &["XRANGE", "missing", "-", "+"]),
        Vec::<String>::new()
    );
    // Fields come back in order, whether or not they match the node's first entry.
    let v: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("s")
        .arg("3")
        .arg("4")
        .query(&mut con)
        .unwrap();
    assert_eq!(v[0].1, ["a", "1", "b", "2"]);
    assert_eq!(v[1].1, ["other", "x"]);

    assert_eq!(int(&mut con, &["XDEL", "s", "1-1", "9-9", "1-1"]), 1);
    assert_eq!(int(&mut con, &["XLEN", "s"]), 4);
    assert_eq!(
        ids(&mut con, &["XRANGE", "s", "-", "+", "COUNT", "1"]),
        ["1-2"]
    );
    assert_eq!(int(&mut con, &["XDEL", "missing", "bad"]), 0);

    let top = "ERR The ID specified in XSETID is smaller than the target stream top item";
    assert_eq!(err(&mut con, &["XSETID", "s", "3-0"]), top);
    ok(
        &mut con,
        &[
            "XSETID",
            "s",
            "10-0",
            "ENTRIESADDED",
            "50",
            "MAXDELETEDID",
            "1-1",
        ],
    );
    assert_eq!(
        err(&mut con, &["XADD", "s", "10-0", "a", "1"]),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
    assert_eq!(
        err(&mut con, &["XSETID", "missing", "1-0"]),
        "ERR no such key"
    );
    assert_eq!(
        err(&mut con, &["XSETID", "s", "20-0", "ENTRIESADDED", "1"]),
        "ERR The entries_added specified in XSETID is smaller than the target stream length"
    );
}

#[test]
fn wrongtype_everywhere() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["SET", "str", "x"]);
    let wt = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for args in [
        &["XADD", "str", "*", "a", "1"][..],
        &["XLEN", "str"],
        &["XRANGE", "str", "-", "+"],
        &["XREVRANGE", "str", "+", "-"],
        &["XDEL", "str", "1-1"],
        &["XTRIM", "str", "MAXLEN", "1"],
        &["XSETID", "str", "1-1"],
        &["XREAD", "STREAMS", "str", "0"],
    ] {
        assert_eq!(err(&mut con, args), wt, "{args:?}");
    }
    bulk(&mut con, &["XADD", "s", "1-1", "a", "1"]).unwrap();
    assert_eq!(err(&mut con, &["LPUSH", "s", "x"]), wt);
}

#[test]
fn xread_shapes_resp2_and_resp3() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    bulk(&mut con, &["XADD", "s", "1-1", "a", "1"]).unwrap();
    bulk(&mut con, &["XADD", "t", "2-2", "b", "2"]).unwrap();
    let mut r = srv.raw();
    r.cmd(&[
        b"XREAD", b"STREAMS", b"s", b"nokey", b"t", b"0", b"0", b"2-2",
    ]);
    r.expect("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    r.cmd(&[b"XREAD", b"STREAMS", b"s", b"$"]);
    r.expect("*-1\r\n");
    r.hello3();
    r.cmd(&[b"XREAD", b"COUNT", b"1", b"STREAMS", b"s", b"t", b"0", b"0"]);
    r.expect("%2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    r.expect("$1\r\nt\r\n*1\r\n*2\r\n$3\r\n2-2\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    r.cmd(&[b"XREAD", b"STREAMS", b"s", b"9-9"]);
    r.expect("_\r\n");
    assert_eq!(
        err(&mut con, &["XREAD", "STREAMS", "s", "t", "0"]),
        "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
    );
    assert_eq!(
        err(&mut con, &["XREAD", "STREAMS", "s", ">"]),
        "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
    );
    assert_eq!(
        err(&mut con, &["XREAD", "BLOCK", "-1", "STREAMS", "s", "0"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        q(
            &mut con,
            &["COMMAND", "GETKEYS", "XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0"]
        ),
        Ok(redis::Value::Array(vec![
            redis::Value::BulkString(b"a".to_vec()),
            redis::Value::BulkString(b"b".to_vec())
        ]))
    );
}

#[test]
fn blocked_xread_is_woken_by_xadd_from_another_thread() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    bulk(&mut con, &["XADD", "s", "5-0", "old", "x"]).unwrap();
    // `$` is resolved when blocking: the existing entry is not returned.
    let mut dollar = raw_cmd(
        &srv,
        &["XREAD", "BLOCK", "0", "STREAMS", "s", "new", "$", "$"],
    );
    wait_blocked(&mut con, 1);
    // A waiter for an ID above what the next XADD brings keeps waiting, but doesn't hold
    // up the one behind it.
    let mut high = raw_cmd(&srv, &["XREAD", "BLOCK", "0", "STREAMS", "s", "100-0"]);
    wait_blocked(&mut con, 2);
    let mut resp3 = srv.raw();
    resp3.hello3();
    let args: Vec<&[u8]> = vec![b"XREAD", b"BLOCK", b"0", b"STREAMS", b"new", b"0"];
    resp3.cmd(&args);
    wait_blocked(&mut con, 3);
    let mut other = srv.client();
    bulk(&mut other, &["XADD", "new", "6-0", "f", "v"]).unwrap();
    dollar.expect("*1\r\n*2\r\n$3\r\nnew\r\n*1\r\n*2\r\n$3\r\n6-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    resp3.expect("%1\r\n$3\r\nnew\r\n*1\r\n*2\r\n$3\r\n6-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    wait_blocked(&mut con, 1);
    bulk(&mut other, &["XADD", "s", "7-0", "f", "v"]).unwrap();
    bulk(&mut other, &["XADD", "s", "100-1", "g", "w"]).unwrap();
    high.expect("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$5\r\n100-1\r\n*2\r\n$1\r\ng\r\n$1\r\nw\r\n");
    wait_blocked(&mut con, 0);
}

#[test]
fn xread_block_timeout_and_multi() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let start = Instant::now();
    assert_eq!(
        q(&mut con, &["XREAD", "BLOCK", "100", "STREAMS", "s", "$"]),
        Ok(redis::Value::Nil)
    );
    // Deadlines have millisecond resolution, as in Redis: up to 1 ms early by this clock.
    assert!(start.elapsed() >= Duration::from_millis(99));
    let mut r = srv.raw();
    r.cmd(&[b"MULTI"]);
    r.cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]);
    r.cmd(&[b"EXEC"]);
    r.expect("+OK\r\n+QUEUED\r\n*1\r\n*-1\r\n");
}

#[test]
fn keyspace_events_and_debug() {
    let srv = Server::start(&[
        "--notify-keyspace-events",
        "Et",
        "--enable-debug-command",
        "yes",
    ]);
    let mut con = srv.client();
    let mut sub = srv.client();
    let mut ps = sub.as_pubsub();
    ps.psubscribe("__keyevent@0__:*").unwrap();
    bulk(&mut con, &["XADD", "s", "MAXLEN", "1", "1-0", "a", "1"]).unwrap();
    bulk(&mut con, &["XADD", "s", "MAXLEN", "1", "2-0", "a", "1"]).unwrap();
    int(&mut con, &["XDEL", "s", "2-0"]);
    ok(&mut con, &["XSETID", "s", "5-0"]);
    let events: Vec<String> = (0..5)
        .map(|_| ps.get_message().unwrap().get_channel_name().to_string())
        .collect();
    assert_eq!(
        events,
        [
            "__keyevent@0__:xadd",
            "__keyevent@0__:xadd",
            "__keyevent@0__:xtrim",
            "__keyevent@0__:xdel",
            "__keyevent@0__:xsetid"
        ]
    );
    drop(ps);
    // Same content, same digest; different content, different digest.
    bulk(&mut con, &["XADD", "a", "1-0", "f", "v"]).unwrap();
    bulk(&mut con, &["XADD", "b", "1-0", "f", "v"]).unwrap();
    let da = q(&mut con, &["DEBUG", "DIGEST-VALUE", "a"]);
    assert_eq!(da, q(&mut con, &["DEBUG", "DIGEST-VALUE", "b"]));
    bulk(&mut con, &["XADD", "b", "2-0", "f", "v"]).unwrap();
    assert_ne!(da, q(&mut con, &["DEBUG", "DIGEST-VALUE", "b"]));
}
