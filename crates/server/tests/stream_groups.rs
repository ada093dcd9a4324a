//! Stream consumer groups end to end: every XGROUP / XREADGROUP / XACK / XPENDING / XCLAIM /
//! XAUTOCLAIM / XINFO reply shape and error (RESP2 and RESP3), keyspace events, blocking
//! XREADGROUP (first come first served, timeouts, group destroyed or stream deleted while
//! waiting), and the job-queue patterns teams build on them: a worker pool processing 100,000
//! messages exactly once, reclaiming a dead consumer's entries, a dead-letter stream, and
//! memory kept bounded by XTRIM ~.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bulk, err, int, ok, q, Server};
use redis::Value;

/// A compact rendering of a reply: arrays as `[a,b]`, nulls as `nil`, maps as `{k:v}`.
fn show(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(","))
        }
        Value::Map(kv) => format!(
            "{{{}}}",
            kv.iter()
                .map(|(k, v)| format!("{}:{}", show(k), show(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => format!("{other:?}"),
    }
}

/// Runs a command and renders its reply with [`show`].
fn r(con: &mut redis::Connection, args: &[&str]) -> String {
    show(&q(con, args).unwrap_or_else(|e| panic!("{args:?}: {e}")))
}

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

/// A raw connection that sent `args`.
fn raw_cmd(srv: &Server, args: &[&str]) -> common::Raw {
    let mut raw = srv.raw();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    raw.cmd(&args);
    raw
}

/// A raw connection blocked in `XREADGROUP GROUP g <consumer> BLOCK 0 STREAMS s >`, once
/// INFO shows `blocked` clients.
fn blocked_reader(
    srv: &Server,
    con: &mut redis::Connection,
    consumer: &str,
    blocked: usize,
) -> common::Raw {
    let args = [
        "XREADGROUP",
        "GROUP",
        "g",
        consumer,
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ];
    let w = raw_cmd(srv, &args);
    wait_blocked(con, blocked);
    w
}

/// Adds entries `1-0`..`n-0` with one field each.
fn fill(con: &mut redis::Connection, key: &str, n: u64) {
    let mut p = redis::pipe();
    for i in 1..=n {
        p.cmd("XADD")
            .arg(key)
            .arg(format!("{i}-0"))
            .arg("f")
            .arg(i)
            .ignore();
    }
    p.query::<()>(con).expect("XADD pipeline");
}

#[test]
fn xgroup_replies_and_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let need_key = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";
    assert_eq!(err(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]), need_key);
    assert_eq!(err(&mut c, &["XGROUP", "DESTROY", "s", "g"]), need_key);
    ok(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    assert_eq!(r(&mut c, &["XLEN", "s"]), "0");
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]),
        "BUSYGROUP Consumer Group name already exists"
    );
    assert_eq!(
        err(
            &mut c,
            &["XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "-2"]
        ),
        "ERR value for ENTRIESREAD must be positive or -1"
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATE", "s", "g2", "0", "foo"]),
        "ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP."
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "setid", "s", "g", "0", "MKSTREAM"]),
        "ERR unknown subcommand or wrong number of arguments for 'setid'. Try XGROUP HELP."
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATECONSUMER", "s", "nog", "c"]),
        "NOGROUP No such consumer group 'nog' for key name 's'"
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATE", "s", "g3", "-"]),
        "ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(
        err(&mut c, &["XGROUP", "DESTROY", "s", "g", "x"]),
        "ERR wrong number of arguments for 'xgroup|destroy' command"
    );
    // SETID takes `-` / `+` and an ENTRIESREAD counter.
    ok(&mut c, &["XGROUP", "SETID", "s", "g", "+"]);
    ok(
        &mut c,
        &["XGROUP", "SETID", "s", "g", "5", "ENTRIESREAD", "3"],
    );
    ok(
        &mut c,
        &["XGROUP", "CREATE", "s", "g2", "7-1", "ENTRIESREAD", "2"],
    );
    assert_eq!(
        r(&mut c, &["XINFO", "GROUPS", "s"]),
        "[[name,g,consumers,0,pending,0,last-delivered-id,5-0,entries-read,3,lag,0],\
         [name,g2,consumers,0,pending,0,last-delivered-id,7-1,entries-read,2,lag,0]]"
    );
    assert_eq!(
        int(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "alice"]),
        1
    );
    assert_eq!(
        int(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "alice"]),
        0
    );
    assert_eq!(
        int(&mut c, &["XGROUP", "DELCONSUMER", "s", "g", "alice"]),
        0
    );
    assert_eq!(
        int(&mut c, &["XGROUP", "DELCONSUMER", "s", "g", "alice"]),
        0
    );
    assert_eq!(int(&mut c, &["XGROUP", "DESTROY", "s", "g"]), 1);
    assert_eq!(int(&mut c, &["XGROUP", "DESTROY", "s", "g"]), 0);
    ok(&mut c, &["SET", "str", "x"]);
    assert_eq!(
        err(&mut c, &["XGROUP", "CREATE", "str", "g", "0", "MKSTREAM"]),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    let help = r(&mut c, &["XGROUP", "HELP"]);
    assert!(help.starts_with(
        "[XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:,CREATE <key>"
    ));
    assert!(help.ends_with(",HELP,    Prints this help.]"));
}

#[test]
fn xreadgroup_history_ack_and_pending() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    fill(&mut c, "s", 3);
    ok(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    let read = |c: &mut redis::Connection, args: &[&str]| {
        let mut all = vec!["XREADGROUP", "GROUP", "g"];
        all.extend_from_slice(args);
        r(c, &all)
    };
    assert_eq!(
        read(&mut c, &["c1", "COUNT", "1", "STREAMS", "s", ">"]),
        "[[s,[[1-0,[f,1]]]]]"
    );
    assert_eq!(
        read(&mut c, &["c1", "STREAMS", "s", ">"]),
        "[[s,[[2-0,[f,2]],[3-0,[f,3]]]]]"
    );
    assert_eq!(read(&mut c, &["c1", "STREAMS", "s", ">"]), "nil");
    // History: the consumer's own pending entries above the ID, each delivered again.
    assert_eq!(
        read(&mut c, &["c1", "COUNT", "2", "STREAMS", "s", "1"]),
        "[[s,[[2-0,[f,2]],[3-0,[f,3]]]]]"
    );
    assert_eq!(read(&mut c, &["c2", "STREAMS", "s", "0"]), "[[s,[]]]");
    int(&mut c, &["XDEL", "s", "3-0"]);
    assert_eq!(
        read(&mut c, &["c1", "STREAMS", "s", "0"]),
        "[[s,[[1-0,[f,1]],[2-0,[f,2]],[3-0,nil]]]]"
    );
    // Errors, in Redis's order of checks.
    assert_eq!(
        err(
            &mut c,
            &["XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"]
        ),
        "NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"
    );
    assert_eq!(
        err(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "nokey", ">"]
        ),
        "NOGROUP No such key 'nokey' or consumer group 'g' in XREADGROUP with GROUP option"
    );
    assert!(err(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "$"]
    )
    .starts_with("ERR The $ ID is meaningless in the context of XREADGROUP"));
    assert_eq!(
        err(
            &mut c,
            &["XREADGROUP", "COUNT", "1", "STREAMS", "s", "t", "0", "0"]
        ),
        "ERR Missing GROUP option for XREADGROUP"
    );
    assert_eq!(
        err(
            &mut c,
            &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "x"]
        ),
        "ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(
        err(&mut c, &["XREAD", "GROUP", "g", "c", "STREAMS", "s", "0"]),
        "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
    );
    // XPENDING: the summary, then entries with idle time and delivery counts.
    assert_eq!(r(&mut c, &["XPENDING", "s", "g"]), "[3,1-0,3-0,[[c1,3]]]");
    let rows = r(&mut c, &["XPENDING", "s", "g", "-", "+", "10"]);
    // Deliveries: 1-0 read once then once in history; 2-0 twice in history; 3-0 once in
    // history (deleted since, so its last history read did not count).
    let rows: Vec<Vec<String>> = rows
        .trim_matches(|ch| ch == '[' || ch == ']')
        .split("],[")
        .map(|row| row.split(',').map(str::to_string).collect())
        .collect();
    let shape: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|f| (f[0].as_str(), f[1].as_str(), f[3].as_str()))
        .collect();
    assert_eq!(
        shape,
        [("1-0", "c1", "2"), ("2-0", "c1", "3"), ("3-0", "c1", "2")]
    );
    assert!(rows.iter().all(|f| f[2].parse::<i64>().unwrap() < 1000));
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g", "-", "+", "10", "c2"]),
        "[]"
    );
    assert_eq!(
        r(
            &mut c,
            &["XPENDING", "s", "g", "IDLE", "100000", "-", "+", "10"]
        ),
        "[]"
    );
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g", "(1", "(3", "10"])
            .split(',')
            .next(),
        Some("[[2-0")
    );
    assert_eq!(
        err(&mut c, &["XPENDING", "s", "g", "-", "+"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["XPENDING", "s", "g", "IDLE", "5", "-", "+"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["XPENDING", "s", "g", "-", "+", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["XPENDING", "s", "nog"]),
        "NOGROUP No such key 's' or consumer group 'nog'"
    );
    // XACK: all IDs parse first; a missing group acknowledges nothing.
    assert_eq!(
        err(&mut c, &["XACK", "s", "g", "1-0", "x"]),
        "ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(int(&mut c, &["XACK", "s", "nog", "1-0", "x"]), 0);
    assert_eq!(int(&mut c, &["XACK", "s", "g", "1-0", "2-0", "1-0"]), 2);
    assert_eq!(r(&mut c, &["XPENDING", "s", "g"]), "[1,3-0,3-0,[[c1,1]]]");
    assert_eq!(int(&mut c, &["XGROUP", "DELCONSUMER", "s", "g", "c1"]), 1);
    assert_eq!(r(&mut c, &["XPENDING", "s", "g"]), "[0,nil,nil,nil]");
    // NOACK delivers without a pending entry.
    ok(&mut c, &["XGROUP", "SETID", "s", "g", "0"]);
    assert_eq!(
        read(&mut c, &["c3", "NOACK", "STREAMS", "s", ">"]),
        "[[s,[[1-0,[f,1]],[2-0,[f,2]]]]]"
    );
    assert_eq!(r(&mut c, &["XPENDING", "s", "g"]), "[0,nil,nil,nil]");
}

#[test]
fn xclaim_and_xautoclaim() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    fill(&mut c, "s", 4);
    ok(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    r(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(
        r(&mut c, &["XCLAIM", "s", "g", "c2", "0", "1-0"]),
        "[[1-0,[f,1]]]"
    );
    assert_eq!(
        r(&mut c, &["XCLAIM", "s", "g", "c2", "0", "1-0", "JUSTID"]),
        "[1-0]"
    );
    // Not idle long enough: nothing claimed.
    assert_eq!(
        r(&mut c, &["XCLAIM", "s", "g", "c2", "100000", "2-0"]),
        "[]"
    );
    assert_eq!(
        r(
            &mut c,
            &[
                "XCLAIM",
                "s",
                "g",
                "c2",
                "0",
                "2-0",
                "RETRYCOUNT",
                "7",
                "IDLE",
                "5000",
                "JUSTID"
            ]
        ),
        "[2-0]"
    );
    let row = r(&mut c, &["XPENDING", "s", "g", "2-0", "2-0", "1"]);
    let idle: i64 = row.split(',').nth(2).unwrap().parse().unwrap();
    assert!((5000..6000).contains(&idle), "{row}");
    assert!(row.ends_with(",7]]"), "{row}");
    // Delivery counts: plain XCLAIM adds one, JUSTID doesn't.
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g", "1-0", "1-0", "1"])
            .rsplit(',')
            .next(),
        Some("2]]")
    );
    for (args, e) in [
        (
            vec!["x", "2-0"],
            "ERR Invalid min-idle-time argument for XCLAIM",
        ),
        (
            vec!["0", "2-0", "RETRYCOUNT", "x"],
            "ERR Invalid RETRYCOUNT option argument for XCLAIM",
        ),
        (
            vec!["0", "2-0", "IDLE", "x"],
            "ERR Invalid IDLE option argument for XCLAIM",
        ),
        (
            vec!["0", "2-0", "TIME", "x"],
            "ERR Invalid TIME option argument for XCLAIM",
        ),
        (
            vec!["0", "2-0", "LASTID", "x"],
            "ERR Invalid stream ID specified as stream command argument",
        ),
        (
            vec!["0", "2-0", "JUSTID", "3-0"],
            "ERR Unrecognized XCLAIM option '3-0'",
        ),
    ] {
        let mut all = vec!["XCLAIM", "s", "g", "c2"];
        all.extend(args);
        assert_eq!(err(&mut c, &all), e);
    }
    assert_eq!(
        err(&mut c, &["XCLAIM", "s", "nog", "c2", "0", "1-0"]),
        "NOGROUP No such key 's' or consumer group 'nog'"
    );
    // FORCE creates the pending entry of an existing, undelivered entry.
    assert_eq!(r(&mut c, &["XCLAIM", "s", "g", "c3", "0", "4-0"]), "[]");
    assert_eq!(
        r(
            &mut c,
            &["XCLAIM", "s", "g", "c3", "0", "4-0", "99-0", "FORCE", "JUSTID"]
        ),
        "[4-0]"
    );
    // LASTID moves the group's last ID forward only.
    r(&mut c, &["XCLAIM", "s", "g", "c3", "0", "LASTID", "9-0"]);
    assert!(r(&mut c, &["XINFO", "GROUPS", "s"]).contains("last-delivered-id,9-0"));
    // An entry deleted from the stream leaves the PEL when claimed.
    int(&mut c, &["XDEL", "s", "3-0"]);
    assert_eq!(r(&mut c, &["XCLAIM", "s", "g", "c4", "0", "3-0"]), "[]");
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g"]),
        "[3,1-0,4-0,[[c2,2],[c3,1]]]"
    );
    // XAUTOCLAIM: [cursor, claimed, deleted IDs].
    assert_eq!(
        r(
            &mut c,
            &["XAUTOCLAIM", "s", "g", "c5", "0", "0", "COUNT", "1"]
        ),
        "[2-0,[[1-0,[f,1]]],[]]"
    );
    assert_eq!(
        r(&mut c, &["XAUTOCLAIM", "s", "g", "c5", "0", "(1", "JUSTID"]),
        "[0-0,[2-0,4-0],[]]"
    );
    int(&mut c, &["XDEL", "s", "2-0"]);
    assert_eq!(
        r(
            &mut c,
            &["XAUTOCLAIM", "s", "g", "c6", "0", "0", "COUNT", "2"]
        ),
        "[4-0,[[1-0,[f,1]]],[2-0]]"
    );
    assert_eq!(
        r(&mut c, &["XAUTOCLAIM", "s", "g", "c6", "100000", "0"]),
        "[0-0,[],[]]"
    );
    for (args, e) in [
        (
            vec!["x", "0"],
            "ERR Invalid min-idle-time argument for XAUTOCLAIM",
        ),
        (
            vec!["0", "x"],
            "ERR Invalid stream ID specified as stream command argument",
        ),
        (vec!["0", "0", "COUNT", "0"], "ERR COUNT must be > 0"),
        (
            vec!["0", "0", "COUNT", "9223372036854775807"],
            "ERR COUNT must be > 0",
        ),
        (vec!["0", "0", "foo"], "ERR syntax error"),
        (
            vec!["0", "(18446744073709551615-18446744073709551615"],
            "ERR invalid start ID for the interval",
        ),
    ] {
        let mut all = vec!["XAUTOCLAIM", "s", "g", "c5"];
        all.extend(args);
        assert_eq!(err(&mut c, &all), e);
    }
    assert_eq!(
        err(&mut c, &["XAUTOCLAIM", "nokey", "g", "c", "0", "0"]),
        "NOGROUP No such key 'nokey' or consumer group 'g'"
    );
}

#[test]
fn xinfo_groups_consumers_and_full() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    fill(&mut c, "x", 5);
    int(&mut c, &["XDEL", "x", "3-0"]);
    ok(&mut c, &["XGROUP", "CREATE", "x", "g1", "0"]);
    ok(&mut c, &["XGROUP", "CREATE", "x", "g2", "0"]);
    // A deletion ahead of the group: read counter and lag unknown until it passes it.
    let groups = r(&mut c, &["XINFO", "GROUPS", "x"]);
    assert!(groups.contains("entries-read,nil,lag,nil"), "{groups}");
    r(
        &mut c,
        &["XREADGROUP", "GROUP", "g1", "alice", "STREAMS", "x", ">"],
    );
    assert!(r(&mut c, &["XINFO", "GROUPS", "x"]).starts_with(
        "[[name,g1,consumers,1,pending,4,last-delivered-id,5-0,entries-read,5,lag,0]"
    ));
    bulk(&mut c, &["XADD", "x", "6-0", "f", "6"]);
    assert!(r(&mut c, &["XINFO", "GROUPS", "x"]).contains("entries-read,5,lag,1"));
    int(&mut c, &["XGROUP", "CREATECONSUMER", "x", "g1", "bob"]);
    std::thread::sleep(Duration::from_millis(20));
    // idle counts from the last attempt, inactive from the last successful read (-1: none).
    let consumers = r(&mut c, &["XINFO", "CONSUMERS", "x", "g1"]);
    let fields: Vec<&str> = consumers.split(',').collect();
    assert_eq!(fields[0], "[[name");
    assert_eq!((fields[1], fields[2], fields[3]), ("alice", "pending", "4"));
    assert_eq!(fields[6], "inactive");
    assert!(fields[7].trim_end_matches(']').parse::<i64>().unwrap() >= 20);
    assert_eq!((fields[9], fields[15]), ("bob", "-1]]"));
    assert_eq!(
        err(&mut c, &["XINFO", "CONSUMERS", "x", "nog"]),
        "NOGROUP No such consumer group 'nog' for key name 'x'"
    );
    assert_eq!(
        err(&mut c, &["XINFO", "GROUPS", "nokey"]),
        "ERR no such key"
    );
    // FULL: the groups with their PELs and consumers, COUNT bounding every list.
    let full = r(&mut c, &["XINFO", "STREAM", "x", "FULL", "COUNT", "1"]);
    assert!(full.contains("entries,[[1-0,[f,1]]],groups,[[name,g1,last-delivered-id,5-0,entries-read,5,lag,1,pel-count,4,pending,[[1-0,alice,"), "{full}");
    assert!(
        full.contains(",consumers,[[name,alice,seen-time,"),
        "{full}"
    );
    assert!(full.contains(",pel-count,4,pending,[[1-0,"), "{full}");
    assert!(full.ends_with("[name,g2,last-delivered-id,0-0,entries-read,nil,lag,nil,pel-count,0,pending,[],consumers,[]]]]"), "{full}");
}

#[test]
fn resp3_reply_shapes() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    fill(&mut c, "s", 1);
    ok(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    let mut raw = srv.raw();
    raw.hello3();
    raw.cmd(&[b"XPENDING", b"s", b"g"]);
    raw.expect("*4\r\n:0\r\n_\r\n_\r\n_\r\n");
    raw.cmd(&[b"XREADGROUP", b"GROUP", b"g", b"c", b"STREAMS", b"s", b">"]);
    raw.expect("%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\n1\r\n");
    raw.cmd(&[b"XREADGROUP", b"GROUP", b"g", b"c", b"STREAMS", b"s", b">"]);
    raw.expect("_\r\n");
    raw.cmd(&[b"XINFO", b"GROUPS", b"s"]);
    raw.expect("*1\r\n%6\r\n$4\r\nname\r\n$1\r\ng\r\n$9\r\nconsumers\r\n:1\r\n$7\r\npending\r\n:1\r\n$17\r\nlast-delivered-id\r\n$3\r\n1-0\r\n$12\r\nentries-read\r\n:1\r\n$3\r\nlag\r\n:0\r\n");
    raw.cmd(&[b"XPENDING", b"s", b"g"]);
    raw.expect("*4\r\n:1\r\n$3\r\n1-0\r\n$3\r\n1-0\r\n*1\r\n*2\r\n$1\r\nc\r\n$1\r\n1\r\n");
}

#[test]
fn keyspace_events() {
    let srv = Server::start(&["--notify-keyspace-events", "Et"]);
    let mut c = srv.client();
    let mut sub = srv.client();
    let mut ps = sub.as_pubsub();
    ps.psubscribe("__keyevent@0__:*").unwrap();
    ok(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    bulk(&mut c, &["XADD", "s", "1-0", "f", "v"]);
    int(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "a"]);
    r(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "b", "STREAMS", "s", ">"],
    );
    r(&mut c, &["XCLAIM", "s", "g", "c", "0", "1-0"]);
    int(&mut c, &["XACK", "s", "g", "1-0"]);
    int(&mut c, &["XGROUP", "DELCONSUMER", "s", "g", "a"]);
    ok(&mut c, &["XGROUP", "SETID", "s", "g", "0"]);
    int(&mut c, &["XGROUP", "DESTROY", "s", "g"]);
    let events: Vec<String> = (0..8)
        .map(|_| {
            let m = ps.get_message().unwrap();
            m.get_channel_name()
                .trim_start_matches("__keyevent@0__:")
                .to_string()
        })
        .collect();
    assert_eq!(
        events,
        [
            "xgroup-create",
            "xadd",
            "xgroup-createconsumer",
            "xgroup-createconsumer",
            "xgroup-createconsumer",
            "xgroup-delconsumer",
            "xgroup-setid",
            "xgroup-destroy"
        ]
    );
}

#[test]
fn blocking_xreadgroup() {
    let srv = Server::start(&["--threads", "2"]);
    let mut c = srv.client();
    ok(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    // Three consumers of one group wait; three entries arrive one at a time: each goes to
    // the longest waiting one, exactly once.
    let mut waiters: Vec<_> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, name)| blocked_reader(&srv, &mut c, name, i + 1))
        .collect();
    let mut other = srv.client();
    for i in 1..=3 {
        bulk(
            &mut other,
            &["XADD", "s", &format!("{i}-0"), "n", &i.to_string()],
        );
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        let n = i + 1;
        w.expect(&format!(
            "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n{n}-0\r\n*2\r\n$1\r\nn\r\n$1\r\n{n}\r\n"
        ));
    }
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g"]),
        "[3,1-0,3-0,[[a,1],[b,1],[c,1]]]"
    );
    // A timeout answers nil.
    let start = Instant::now();
    assert_eq!(
        r(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "a",
                "BLOCK",
                "50",
                "STREAMS",
                "s",
                ">"
            ]
        ),
        "nil"
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    // A destroyed group, a deleted or overwritten stream: the waiters get Redis's errors.
    ok(&mut c, &["CONFIG", "RESETSTAT"]);
    let mut w = blocked_reader(&srv, &mut c, "a", 1);
    int(&mut other, &["XGROUP", "DESTROY", "s", "g"]);
    w.expect("-NOGROUP the consumer group this client was blocked on no longer exists\r\n");
    ok(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]);
    let mut w = blocked_reader(&srv, &mut c, "a", 1);
    int(&mut other, &["DEL", "s"]);
    w.expect("-UNBLOCKED the stream key no longer exists\r\n");
    ok(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut w = blocked_reader(&srv, &mut c, "a", 1);
    ok(&mut other, &["SET", "s", "x"]);
    w.expect("-UNBLOCKED the stream key no longer exists\r\n");
    // ... and each such read counts as a failed call, as in Redis.
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .unwrap();
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_xreadgroup:"))
        .unwrap_or_default();
    assert!(line.starts_with("cmdstat_xreadgroup:calls=3,"), "{line}");
    assert!(line.ends_with("rejected_calls=0,failed_calls=3"), "{line}");
    // Inside MULTI, BLOCK answers at once as a timeout would.
    int(&mut c, &["DEL", "s"]);
    ok(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut m = srv.raw();
    m.cmd(&[b"MULTI"]);
    m.cmd(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"a",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"s",
        b">",
    ]);
    m.cmd(&[b"EXEC"]);
    m.expect("+OK\r\n+QUEUED\r\n*1\r\n*-1\r\n");
    wait_blocked(&mut c, 0);
}

/// Acceptance: several consumers on their own connections and threads share 100,000
/// messages through one group while a producer adds them; each is processed exactly once.
#[test]
fn worker_pool_processes_each_message_exactly_once() {
    const TOTAL: usize = 100_000;
    const WORKERS: usize = 4;
    let srv = Server::start(&["--threads", "4"]);
    let mut c = srv.client();
    ok(
        &mut c,
        &["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"],
    );
    let done = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..WORKERS)
        .map(|w| {
            let mut con = srv.client();
            let done = done.clone();
            std::thread::spawn(move || {
                let name = format!("worker-{w}");
                let mut seen: Vec<u64> = Vec::new();
                loop {
                    let reply: Value = redis::cmd("XREADGROUP")
                        .arg(&["GROUP", "workers", &name, "COUNT", "500", "BLOCK", "100"])
                        .arg(&["STREAMS", "jobs", ">"])
                        .query(&mut con)
                        .expect("XREADGROUP");
                    let Value::Array(streams) = reply else {
                        if done.load(Ordering::SeqCst) {
                            return seen;
                        }
                        continue;
                    };
                    let Value::Array(stream) = &streams[0] else {
                        panic!("shape")
                    };
                    let Value::Array(entries) = &stream[1] else {
                        panic!("shape")
                    };
                    let mut ack = redis::cmd("XACK");
                    ack.arg("jobs").arg("workers");
                    for e in entries {
                        let Value::Array(pair) = e else {
                            panic!("entry")
                        };
                        let Value::Array(fields) = &pair[1] else {
                            panic!("fields")
                        };
                        let Value::BulkString(job) = &fields[1] else {
                            panic!("value")
                        };
                        seen.push(String::from_utf8_lossy(job).parse().expect("job number"));
                        ack.arg(show(&pair[0]));
                    }
                    let acked: usize = ack.query(&mut con).expect("XACK");
                    assert_eq!(acked, entries.len());
                }
            })
        })
        .collect();
    let mut producer = srv.client();
    for chunk in 0..TOTAL / 1000 {
        let mut p = redis::pipe();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            p.cmd("XADD")
                .arg("jobs")
                .arg("*")
                .arg("job")
                .arg(i)
                .ignore();
        }
        p.query::<()>(&mut producer).expect("XADD");
    }
    // Wait until the group has read everything, then let the workers drain and stop.
    let deadline = Instant::now() + Duration::from_secs(25);
    while !r(&mut c, &["XINFO", "GROUPS", "jobs"]).contains(&format!("entries-read,{TOTAL},lag,0"))
    {
        assert!(Instant::now() < deadline, "group never caught up");
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::SeqCst);
    let mut all: Vec<u64> = Vec::with_capacity(TOTAL);
    let mut per_worker = Vec::new();
    for h in handles {
        let seen = h.join().expect("worker");
        per_worker.push(seen.len());
        all.extend(seen);
    }
    assert_eq!(
        all.len(),
        TOTAL,
        "some message was processed twice or never"
    );
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), TOTAL);
    assert_eq!(unique.iter().max(), Some(&(TOTAL as u64 - 1)));
    assert!(
        per_worker.iter().filter(|&&n| n > 0).count() >= 2,
        "{per_worker:?}"
    );
    assert_eq!(
        r(&mut c, &["XPENDING", "jobs", "workers"]),
        "[0,nil,nil,nil]"
    );
}

/// Acceptance: a consumer that dies leaves its entries pending; another claims them with
/// XAUTOCLAIM once they have been idle for min-idle-time, and finishes them.
#[test]
fn dead_consumers_entries_are_reclaimed() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    fill(&mut c, "jobs", 10);
    ok(&mut c, &["XGROUP", "CREATE", "jobs", "g", "0"]);
    {
        let mut doomed = srv.client();
        r(
            &mut doomed,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "doomed",
                "COUNT",
                "10",
                "STREAMS",
                "jobs",
                ">",
            ],
        );
        // It dies without acknowledging anything.
    }
    let mut rescuer = srv.client();
    assert_eq!(
        r(
            &mut rescuer,
            &["XAUTOCLAIM", "jobs", "g", "rescuer", "200", "0", "JUSTID"]
        ),
        "[0-0,[],[]]"
    );
    std::thread::sleep(Duration::from_millis(250));
    let claimed = r(
        &mut rescuer,
        &[
            "XAUTOCLAIM",
            "jobs",
            "g",
            "rescuer",
            "200",
            "0",
            "COUNT",
            "4",
        ],
    );
    assert!(
        claimed.starts_with("[5-0,[[1-0,[f,1]],[2-0,[f,2]],[3-0,[f,3]],[4-0,[f,4]]],[]]"),
        "{claimed}"
    );
    assert_eq!(
        r(
            &mut rescuer,
            &["XAUTOCLAIM", "jobs", "g", "rescuer", "200", "5-0", "JUSTID"]
        ),
        "[0-0,[5-0,6-0,7-0,8-0,9-0,10-0],[]]"
    );
    // XAUTOCLAIM counted a delivery (JUSTID doesn't): 2 for the first four, 1 for the rest.
    let pending = r(&mut rescuer, &["XPENDING", "jobs", "g", "-", "+", "10"]);
    assert_eq!(pending.matches(",rescuer,").count(), 10, "{pending}");
    assert!(
        pending.starts_with("[[1-0,rescuer,") && pending.contains(",2],[5-0,rescuer,"),
        "{pending}"
    );
    let ids: Vec<String> = (1..=10).map(|i| format!("{i}-0")).collect();
    let mut ack = vec!["XACK", "jobs", "g"];
    ack.extend(ids.iter().map(String::as_str));
    assert_eq!(int(&mut rescuer, &ack), 10);
    assert_eq!(
        r(&mut rescuer, &["XINFO", "CONSUMERS", "jobs", "g"])
            .matches("pending,0")
            .count(),
        2
    );
}

/// Acceptance: messages delivered more than `MAX` times go to a dead-letter stream, found
/// with XPENDING's delivery counts, taken over with XCLAIM, copied with XADD and acknowledged.
#[test]
fn poison_messages_move_to_a_dead_letter_stream() {
    const MAX: i64 = 3;
    let srv = Server::start(&[]);
    let mut c = srv.client();
    for i in 1..=10 {
        let kind = if i % 4 == 0 { "poison" } else { "ok" };
        bulk(
            &mut c,
            &[
                "XADD",
                "jobs",
                &format!("{i}-0"),
                "kind",
                kind,
                "n",
                &i.to_string(),
            ],
        );
    }
    ok(&mut c, &["XGROUP", "CREATE", "jobs", "g", "0"]);
    // The worker acknowledges good messages and leaves poison pending.
    let reply = q(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "w", "STREAMS", "jobs", ">"],
    )
    .unwrap();
    let text = show(&reply);
    for i in 1..=10 {
        if i % 4 != 0 {
            assert_eq!(
                int(&mut c, &["XACK", "jobs", "g", &format!("{i}-0")]),
                1,
                "{text}"
            );
        }
    }
    let mut dead = Vec::new();
    for _round in 0..10 {
        let Value::Array(rows) = q(&mut c, &["XPENDING", "jobs", "g", "-", "+", "100"]).unwrap()
        else {
            panic!("rows")
        };
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let Value::Array(f) = row else { panic!("row") };
            let (id, count) = (show(&f[0]), show(&f[3]).parse::<i64>().unwrap());
            if count > MAX {
                // Over the limit: copy to the dead-letter stream, then acknowledge.
                let entry = r(&mut c, &["XRANGE", "jobs", &id, &id]);
                assert!(entry.contains("kind,poison"), "{entry}");
                let n = entry
                    .rsplit(',')
                    .next()
                    .unwrap()
                    .trim_end_matches(']')
                    .to_string();
                bulk(
                    &mut c,
                    &[
                        "XADD",
                        "jobs:dlq",
                        "*",
                        "id",
                        &id,
                        "n",
                        &n,
                        "deliveries",
                        &count.to_string(),
                    ],
                );
                assert_eq!(int(&mut c, &["XACK", "jobs", "g", &id]), 1);
                dead.push(id);
            } else {
                // Retry: the worker takes it again (one more delivery) and fails again.
                assert!(r(&mut c, &["XCLAIM", "jobs", "g", "w", "0", &id]).contains("poison"));
            }
        }
    }
    assert_eq!(dead, ["4-0", "8-0"]);
    assert_eq!(r(&mut c, &["XPENDING", "jobs", "g"]), "[0,nil,nil,nil]");
    let dlq = r(&mut c, &["XRANGE", "jobs:dlq", "-", "+"]);
    assert!(
        dlq.contains("[id,4-0,n,4,deliveries,4]") && dlq.contains("[id,8-0,n,8,deliveries,4]"),
        "{dlq}"
    );
}

/// Acceptance: XADD / XTRIM with `~` keep a stream's memory bounded while far more is
/// produced; entries trimmed while pending are reported by XAUTOCLAIM as deleted.
#[test]
fn approximate_trimming_keeps_memory_bounded() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    ok(
        &mut c,
        &["XGROUP", "CREATE", "events", "g", "$", "MKSTREAM"],
    );
    let mut peak = 0;
    let mut first = 0;
    for round in 0..20 {
        let mut p = redis::pipe();
        for i in 0..2000 {
            p.cmd("XADD")
                .arg(&["events", "MAXLEN", "~", "1000", "*", "payload"])
                .arg(format!("event-{round}-{i}-padding-padding"))
                .ignore();
        }
        p.query::<()>(&mut c).expect("XADD");
        let mem = int(&mut c, &["MEMORY", "USAGE", "events"]);
        if round == 0 {
            first = mem;
        }
        peak = peak.max(mem);
        let len = int(&mut c, &["XLEN", "events"]);
        assert!((1000..1100).contains(&len), "round {round}: {len} entries");
    }
    assert!(peak < first * 2, "memory grew: first {first}, peak {peak}");
    // Entries read but trimmed away before being acknowledged.
    r(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "10",
            "STREAMS",
            "events",
            "0",
        ],
    );
    ok(&mut c, &["XGROUP", "SETID", "events", "g", "0"]);
    r(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "10",
            "STREAMS",
            "events",
            ">",
        ],
    );
    assert!(int(&mut c, &["XTRIM", "events", "MAXLEN", "0"]) > 0);
    let reply = r(
        &mut c,
        &["XAUTOCLAIM", "events", "g", "b", "0", "0", "JUSTID"],
    );
    assert!(
        reply.starts_with("[0-0,[],[") && reply.matches('-').count() == 11,
        "{reply}"
    );
    assert_eq!(r(&mut c, &["XPENDING", "events", "g"]), "[0,nil,nil,nil]");
}
