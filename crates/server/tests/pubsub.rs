//! Pub/sub end to end: SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE and their unsubscribes, PUBLISH and
//! SPUBLISH across worker threads, RESP2 arrays and RESP3 pushes byte for byte, the RESP2
//! subscribed-mode rules, PUBSUB introspection, RESET, CLIENT REPLY OFF, and the
//! output-buffer limit that disconnects a subscriber that stops reading.

mod common;

use std::time::{Duration, Instant};

use common::{err, int, q, strings, Raw, Server};

fn raw_cmd(r: &mut Raw, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.cmd(&args);
}

/// A RESP2 array (or RESP3 push, with `>`) of bulk strings.
fn frame(head: char, parts: &[&str]) -> String {
    let mut s = format!("{head}{}\r\n", parts.len());
    for p in parts {
        s.push_str(&format!("${}\r\n{p}\r\n", p.len()));
    }
    s
}

/// (name, count) pairs of PUBSUB NUMSUB / SHARDNUMSUB, which reply with a flat array.
fn counts(con: &mut redis::Connection, args: &[&str]) -> Vec<(String, i64)> {
    let mut c = redis::cmd(args[0]);
    c.arg(&args[1..]);
    c.query(con).unwrap()
}

/// A subscribe-style confirmation: [what, name, count].
fn confirm(head: char, what: &str, name: &str, count: i64) -> String {
    format!(
        "{head}3\r\n${}\r\n{what}\r\n${}\r\n{name}\r\n:{count}\r\n",
        what.len(),
        name.len()
    )
}

#[test]
fn publish_reaches_resp2_and_resp3_subscribers_on_every_worker() {
    let srv = Server::start(&["--threads", "2"]);
    // Consecutive connections land on different workers (round robin).
    let mut s2 = srv.raw();
    let mut s3 = srv.raw();
    raw_cmd(&mut s2, &["SUBSCRIBE", "news", "sport"]);
    s2.expect(&confirm('*', "subscribe", "news", 1));
    s2.expect(&confirm('*', "subscribe", "sport", 2));
    s3.hello3();
    raw_cmd(&mut s3, &["SUBSCRIBE", "news"]);
    s3.expect(&confirm('>', "subscribe", "news", 1));
    raw_cmd(&mut s3, &["PSUBSCRIBE", "n*"]);
    s3.expect(&confirm('>', "psubscribe", "n*", 2));

    let mut con = srv.client();
    assert_eq!(int(&mut con, &["PUBLISH", "news", "hello"]), 3);
    assert_eq!(int(&mut con, &["PUBLISH", "sport", "goal"]), 1);
    assert_eq!(int(&mut con, &["PUBLISH", "nothing", "x"]), 1);
    assert_eq!(int(&mut con, &["PUBLISH", "other", "x"]), 0);
    s2.expect(&frame('*', &["message", "news", "hello"]));
    s2.expect(&frame('*', &["message", "sport", "goal"]));
    s3.expect(&frame('>', &["message", "news", "hello"]));
    s3.expect(&frame('>', &["pmessage", "n*", "news", "hello"]));
    s3.expect(&frame('>', &["pmessage", "n*", "nothing", "x"]));

    // In RESP3 a subscribed client runs any command, and its own messages come first.
    raw_cmd(&mut s3, &["SET", "k", "v"]);
    s3.expect("+OK\r\n");
    raw_cmd(&mut s3, &["PUBLISH", "news", "mine"]);
    s3.expect(&frame('>', &["message", "news", "mine"]));
    s3.expect(&frame('>', &["pmessage", "n*", "news", "mine"]));
    s3.expect(":3\r\n");
    s2.expect(&frame('*', &["message", "news", "mine"]));
}

#[test]
fn messages_from_one_publisher_arrive_in_order() {
    let srv = Server::start(&["--threads", "2"]);
    let mut sub = srv.raw();
    let mut publisher = srv.raw();
    raw_cmd(&mut sub, &["SUBSCRIBE", "seq"]);
    sub.expect(&confirm('*', "subscribe", "seq", 1));
    let mut pipeline = Vec::new();
    for i in 0..500 {
        let m = i.to_string();
        pipeline.extend_from_slice(
            format!(
                "*3\r\n$7\r\nPUBLISH\r\n$3\r\nseq\r\n${}\r\n{m}\r\n",
                m.len()
            )
            .as_bytes(),
        );
    }
    publisher.send(&pipeline);
    for i in 0..500 {
        publisher.expect(":1\r\n");
        sub.expect(&frame('*', &["message", "seq", &i.to_string()]));
    }
}

/// Busy workers hold deliveries back while more commands are ready and write each
/// subscriber once for the lot: every message still arrives, each publisher's in order.
#[test]
fn bursts_from_many_publishers_reach_every_subscriber_in_order() {
    const PUBLISHERS: usize = 4;
    const EACH: usize = 300;
    let srv = Server::start(&["--threads", "2"]);
    // Round robin: one subscriber and half the publishers on each worker.
    let mut subs = [srv.raw(), srv.raw()];
    for s in &mut subs {
        raw_cmd(s, &["SUBSCRIBE", "burst"]);
        s.expect(&confirm('*', "subscribe", "burst", 1));
    }
    let mut publishers: Vec<Raw> = (0..PUBLISHERS).map(|_| srv.raw()).collect();
    for (p, publisher) in publishers.iter_mut().enumerate() {
        let mut pipeline = Vec::new();
        for i in 0..EACH {
            let m = format!("{p}:{i}");
            pipeline.extend_from_slice(
                format!(
                    "*3\r\n$7\r\nPUBLISH\r\n$5\r\nburst\r\n${}\r\n{m}\r\n",
                    m.len()
                )
                .as_bytes(),
            );
        }
        publisher.send(&pipeline);
    }
    for publisher in &mut publishers {
        for _ in 0..EACH {
            publisher.expect(":2\r\n");
        }
    }
    for s in &mut subs {
        let mut next = [0usize; PUBLISHERS];
        for _ in 0..PUBLISHERS * EACH {
            let lines: Vec<String> = (0..7).map(|_| s.line().trim_end().to_string()).collect();
            assert_eq!(lines[..5], ["*3", "$7", "message", "$5", "burst"]);
            let (p, i) = lines[6].split_once(':').unwrap();
            let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[p], "publisher {p}'s messages out of order");
            next[p] += 1;
        }
        assert_eq!(next, [EACH; PUBLISHERS]);
        assert!(s.silent_for(Duration::from_millis(100)));
    }
}

#[test]
fn resp2_subscribed_mode_allows_only_pubsub_ping_quit_reset() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    raw_cmd(&mut r, &["SUBSCRIBE", "a"]);
    r.expect(&confirm('*', "subscribe", "a", 1));
    raw_cmd(&mut r, &["GET", "x"]);
    r.expect(
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
         RESET are allowed in this context\r\n",
    );
    raw_cmd(&mut r, &["CONFIG", "GET", "x"]);
    r.expect(
        "-ERR Can't execute 'config|get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / \
         QUIT / RESET are allowed in this context\r\n",
    );
    raw_cmd(&mut r, &["PING"]);
    r.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    raw_cmd(&mut r, &["PING", "hi"]);
    r.expect("*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    raw_cmd(&mut r, &["UNSUBSCRIBE"]);
    r.expect(&confirm('*', "unsubscribe", "a", 0));
    raw_cmd(&mut r, &["PING"]);
    r.expect("+PONG\r\n");
    raw_cmd(&mut r, &["GET", "x"]);
    r.expect("$-1\r\n");
}

#[test]
fn unsubscribing_from_nothing_still_replies() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    raw_cmd(&mut r, &["UNSUBSCRIBE"]);
    r.expect("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    raw_cmd(&mut r, &["PUNSUBSCRIBE"]);
    r.expect("*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
    raw_cmd(&mut r, &["SUNSUBSCRIBE"]);
    r.expect("*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n");
    raw_cmd(&mut r, &["UNSUBSCRIBE", "x", "y"]);
    r.expect(&confirm('*', "unsubscribe", "x", 0));
    r.expect(&confirm('*', "unsubscribe", "y", 0));
    let mut r3 = srv.raw();
    r3.hello3();
    raw_cmd(&mut r3, &["UNSUBSCRIBE"]);
    r3.expect(">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    // Counts: channels and patterns together, shard channels apart; repeats count once.
    raw_cmd(&mut r3, &["SUBSCRIBE", "c", "c"]);
    r3.expect(&confirm('>', "subscribe", "c", 1));
    r3.expect(&confirm('>', "subscribe", "c", 1));
    raw_cmd(&mut r3, &["PSUBSCRIBE", "p*"]);
    r3.expect(&confirm('>', "psubscribe", "p*", 2));
    raw_cmd(&mut r3, &["SSUBSCRIBE", "s"]);
    r3.expect(&confirm('>', "ssubscribe", "s", 1));
    raw_cmd(&mut r3, &["PUNSUBSCRIBE"]);
    r3.expect(&confirm('>', "punsubscribe", "p*", 1));
    raw_cmd(&mut r3, &["SUNSUBSCRIBE"]);
    r3.expect(&confirm('>', "sunsubscribe", "s", 0));
    raw_cmd(&mut r3, &["UNSUBSCRIBE"]);
    r3.expect(&confirm('>', "unsubscribe", "c", 0));
}

#[test]
fn shard_channels_are_their_own_namespace() {
    let srv = Server::start(&["--threads", "2"]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    raw_cmd(&mut a, &["SSUBSCRIBE", "ch"]);
    a.expect(&confirm('*', "ssubscribe", "ch", 1));
    raw_cmd(&mut b, &["SUBSCRIBE", "ch"]);
    b.expect(&confirm('*', "subscribe", "ch", 1));
    let mut con = srv.client();
    assert_eq!(int(&mut con, &["SPUBLISH", "ch", "s"]), 1);
    assert_eq!(int(&mut con, &["PUBLISH", "ch", "p"]), 1);
    a.expect(&frame('*', &["smessage", "ch", "s"]));
    b.expect(&frame('*', &["message", "ch", "p"]));
    assert_eq!(strings(&mut con, &["PUBSUB", "SHARDCHANNELS"]), ["ch"]);
    assert_eq!(strings(&mut con, &["PUBSUB", "CHANNELS"]), ["ch"]);
    assert_eq!(
        counts(&mut con, &["PUBSUB", "SHARDNUMSUB", "ch", "zz"]),
        [("ch".into(), 1), ("zz".into(), 0)]
    );
    // SSUBSCRIBE is refused inside a transaction.
    let mut t = srv.raw();
    raw_cmd(&mut t, &["MULTI"]);
    t.expect("+OK\r\n");
    raw_cmd(&mut t, &["SSUBSCRIBE", "x"]);
    t.expect("+QUEUED\r\n");
    raw_cmd(&mut t, &["EXEC"]);
    t.expect("*1\r\n-ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client\r\n");
}

#[test]
fn introspection_counts_and_client_fields() {
    let srv = Server::start(&["--threads", "2"]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    raw_cmd(&mut a, &["SUBSCRIBE", "news.1", "news.2"]);
    a.expect(&confirm('*', "subscribe", "news.1", 1));
    a.expect(&confirm('*', "subscribe", "news.2", 2));
    raw_cmd(&mut a, &["PSUBSCRIBE", "news.*"]);
    a.expect(&confirm('*', "psubscribe", "news.*", 3));
    raw_cmd(&mut b, &["PSUBSCRIBE", "news.*", "other*"]);
    b.expect(&confirm('*', "psubscribe", "news.*", 1));
    b.expect(&confirm('*', "psubscribe", "other*", 2));
    raw_cmd(&mut b, &["SSUBSCRIBE", "shard"]);
    b.expect(&confirm('*', "ssubscribe", "shard", 1));

    let mut con = srv.client();
    let mut chans = strings(&mut con, &["PUBSUB", "CHANNELS"]);
    chans.sort();
    assert_eq!(chans, ["news.1", "news.2"]);
    assert_eq!(
        strings(&mut con, &["PUBSUB", "CHANNELS", "*.1"]),
        ["news.1"]
    );
    assert_eq!(
        counts(&mut con, &["PUBSUB", "NUMSUB", "news.1", "nope"]),
        [("news.1".into(), 1), ("nope".into(), 0)]
    );
    assert_eq!(int(&mut con, &["PUBSUB", "NUMPAT"]), 2);
    assert_eq!(
        err(&mut con, &["PUBSUB", "CHANNELS", "a", "b"]),
        "ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP."
    );
    let info: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
    assert!(info.contains("pubsub_channels:2\r\n"), "{info}");
    assert!(info.contains("pubsub_patterns:2\r\n"), "{info}");
    assert!(info.contains("pubsubshard_channels:1\r\n"), "{info}");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert!(list.contains("flags=P db=0 sub=2 psub=1 ssub=0"), "{list}");
    assert!(list.contains("flags=P db=0 sub=0 psub=2 ssub=1"), "{list}");
    let pubsub_clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut con)
        .unwrap();
    assert_eq!(pubsub_clients.lines().count(), 2);

    // A disconnect drops every subscription.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while int(&mut con, &["PUBSUB", "NUMPAT"]) != 2
        || !strings(&mut con, &["PUBSUB", "CHANNELS"]).is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "subscriptions outlived the client"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(int(&mut con, &["PUBLISH", "news.1", "x"]), 1);
}

#[test]
fn reset_leaves_every_subscription() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    raw_cmd(&mut r, &["SUBSCRIBE", "a"]);
    r.expect(&confirm('*', "subscribe", "a", 1));
    raw_cmd(&mut r, &["PSUBSCRIBE", "b*"]);
    r.expect(&confirm('*', "psubscribe", "b*", 2));
    raw_cmd(&mut r, &["RESET"]);
    r.expect("+RESET\r\n");
    raw_cmd(&mut r, &["GET", "x"]);
    r.expect("$-1\r\n");
    let mut con = srv.client();
    assert_eq!(int(&mut con, &["PUBLISH", "a", "x"]), 0);
    assert_eq!(int(&mut con, &["PUBLISH", "bb", "x"]), 0);
    assert_eq!(int(&mut con, &["PUBSUB", "NUMPAT"]), 0);
}

#[test]
fn pushes_survive_client_reply_off() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.hello3();
    raw_cmd(&mut r, &["CLIENT", "REPLY", "OFF"]);
    raw_cmd(&mut r, &["PING"]);
    raw_cmd(&mut r, &["SUBSCRIBE", "ch"]);
    r.expect(&confirm('>', "subscribe", "ch", 1));
    let mut con = srv.client();
    assert_eq!(int(&mut con, &["PUBLISH", "ch", "m"]), 1);
    r.expect(&frame('>', &["message", "ch", "m"]));
    raw_cmd(&mut r, &["UNSUBSCRIBE", "ch"]);
    r.expect(&confirm('>', "unsubscribe", "ch", 0));
}

#[test]
fn a_subscriber_that_stops_reading_is_disconnected_at_the_hard_limit() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    q(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 0 0",
        ],
    )
    .unwrap();
    let mut slow = srv.raw();
    raw_cmd(&mut slow, &["SUBSCRIBE", "firehose"]);
    slow.expect(&confirm('*', "subscribe", "firehose", 1));
    // The subscriber never reads again: kernel buffers fill, then its output grows to the
    // limit and the server drops it instead of buffering without bound.
    let payload = "x".repeat(64 * 1024);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    loop {
        let n = int(&mut con, &["PUBLISH", "firehose", &payload]);
        sent += 1;
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still subscribed after {sent} messages"
        );
    }
    assert!(sent > 16, "closed too early ({sent} messages)");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(slow.closed());
    // The server still serves everyone else.
    assert_eq!(int(&mut con, &["PUBLISH", "firehose", "x"]), 0);
}

#[test]
fn pubsub_command_table_entries() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let info = q(&mut con, &["COMMAND", "INFO", "ssubscribe"]).unwrap();
    let text = format!("{info:?}");
    assert!(text.contains("not_key"), "{text}");
    assert_eq!(
        err(&mut con, &["PUBSUB", "NUMPAT", "x"]),
        "ERR wrong number of arguments for 'pubsub|numpat' command"
    );
    assert_eq!(int(&mut con, &["PUBLISH", "nobody", "x"]), 0);
}
