//! Client-side caching end to end, on two worker threads: RESP3 invalidation pushes,
//! RESP2 redirection to a `__redis__:invalidate` subscriber, BCAST prefixes, OPTIN/OPTOUT
//! with CLIENT CACHING, NOLOOP, FLUSHALL's null invalidation, expiry, the table limit,
//! CLIENT TRACKINGINFO/GETREDIR/LIST and INFO, and Redis's error replies.

mod common;

use std::time::Duration;

use common::{err, int, ok, Raw, Server};

fn raw_cmd(r: &mut Raw, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.cmd(&args);
}

/// A RESP3 `invalidate` push for `keys`.
fn push(keys: &[&str]) -> String {
    let mut s = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for k in keys {
        s.push_str(&format!("${}\r\n{k}\r\n", k.len()));
    }
    s
}

/// A RESP2 `__redis__:invalidate` message carrying `payload`.
fn message(payload: &str) -> String {
    format!("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n{payload}")
}

/// A RESP3 connection with tracking enabled by `opts` (after `CLIENT TRACKING on`).
fn resp3_tracker(srv: &Server, opts: &[&str]) -> Raw {
    let mut r = srv.raw();
    r.hello3();
    let mut args = vec!["CLIENT", "TRACKING", "on"];
    args.extend_from_slice(opts);
    raw_cmd(&mut r, &args);
    r.expect("+OK\r\n");
    r
}

fn start() -> Server {
    Server::start(&["--threads", "2"])
}

#[test]
fn resp3_get_then_set_elsewhere_invalidates_once() {
    let srv = start();
    let mut w = srv.client();
    ok(&mut w, &["SET", "k", "v"]);
    let mut r = resp3_tracker(&srv, &[]);
    raw_cmd(&mut r, &["GET", "k"]);
    r.expect("$1\r\nv\r\n");
    ok(&mut w, &["SET", "k", "v2"]);
    r.expect(&push(&["k"]));
    // Forgotten once invalidated: a second write sends nothing until k is read again.
    ok(&mut w, &["SET", "k", "v3"]);
    raw_cmd(&mut r, &["GET", "k"]);
    r.expect("$2\r\nv3\r\n");
    assert_eq!(int(&mut w, &["DEL", "k"]), 1);
    r.expect(&push(&["k"]));
    // The client's own write: the invalidation follows its reply.
    raw_cmd(&mut r, &["GET", "k"]);
    r.expect("_\r\n");
    raw_cmd(&mut r, &["SET", "k", "x"]);
    r.expect("+OK\r\n");
    r.expect(&push(&["k"]));
}

#[test]
fn noloop_spares_own_writes() {
    let srv = start();
    let mut r = resp3_tracker(&srv, &["NOLOOP"]);
    raw_cmd(&mut r, &["GET", "a"]);
    r.expect("_\r\n");
    raw_cmd(&mut r, &["SET", "a", "1"]);
    r.expect("+OK\r\n");
    raw_cmd(&mut r, &["GET", "a"]);
    r.expect("$1\r\n1\r\n");
    let mut w = srv.client();
    ok(&mut w, &["SET", "a", "2"]);
    r.expect(&push(&["a"]));
}

#[test]
fn resp2_redirect_to_subscriber() {
    let srv = start();
    let mut sub = srv.raw();
    raw_cmd(&mut sub, &["CLIENT", "ID"]);
    let id = sub.line()[1..].trim().to_string();
    raw_cmd(&mut sub, &["SUBSCRIBE", "__redis__:invalidate"]);
    sub.expect("*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n");
    let mut c = srv.client();
    ok(&mut c, &["CLIENT", "TRACKING", "on", "REDIRECT", &id]);
    assert_eq!(
        int(&mut c, &["CLIENT", "GETREDIR"]),
        id.parse::<i64>().unwrap()
    );
    ok(&mut c, &["SET", "x", "1"]);
    let _: Option<String> = redis::cmd("GET").arg("x").query(&mut c).unwrap();
    let mut w = srv.client();
    ok(&mut w, &["SET", "x", "2"]);
    sub.expect(&message("*1\r\n$1\r\nx\r\n"));
    // FLUSHALL: a null "everything" invalidation.
    ok(&mut w, &["FLUSHALL"]);
    sub.expect(&message("$-1\r\n"));
    let list: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(list.contains(" flags=t "), "{list}");
    assert!(list.contains(&format!(" redir={id} ")), "{list}");
    // The redirect target leaves: the tracker's flags show R.
    drop(sub);
    std::thread::sleep(Duration::from_millis(200));
    let _: Option<String> = redis::cmd("GET").arg("x").query(&mut c).unwrap();
    ok(&mut w, &["SET", "x", "3"]);
    std::thread::sleep(Duration::from_millis(100));
    let list: String = redis::cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(list.contains(" flags=tR "), "{list}");
}

#[test]
fn bcast_prefixes() {
    let srv = start();
    let mut r = resp3_tracker(&srv, &["BCAST", "PREFIX", "user:", "PREFIX", "job:"]);
    let mut w = srv.client();
    ok(&mut w, &["MSET", "user:1", "a", "other", "b", "job:9", "c"]);
    // One message per prefix, in prefix order.
    r.expect(&push(&["job:9"]));
    r.expect(&push(&["user:1"]));
    ok(&mut w, &["SET", "other", "x"]);
    ok(&mut w, &["SET", "user:2", "x"]);
    r.expect(&push(&["user:2"]));
    // Prefixes may not overlap, and BCAST may not be switched off while on.
    raw_cmd(
        &mut r,
        &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "us"],
    );
    r.expect(
        "-ERR Prefix 'us' overlaps with an existing prefix 'user:'. Prefixes for a single \
         client must not overlap.\r\n",
    );
    raw_cmd(&mut r, &["CLIENT", "TRACKING", "on"]);
    r.expect(
        "-ERR You can't switch BCAST mode on/off before disabling tracking for this client, \
         and then re-enabling it with a different mode.\r\n",
    );
    let info: String = redis::cmd("INFO").arg("stats").query(&mut w).unwrap();
    assert!(info.contains("tracking_total_prefixes:2\r\n"), "{info}");
}

#[test]
fn optin_and_optout_follow_client_caching() {
    let srv = start();
    let mut w = srv.client();
    ok(&mut w, &["MSET", "a", "1", "b", "2"]);
    let mut r = resp3_tracker(&srv, &["OPTIN"]);
    raw_cmd(&mut r, &["GET", "a"]);
    r.expect("$1\r\n1\r\n");
    raw_cmd(&mut r, &["CLIENT", "CACHING", "yes"]);
    r.expect("+OK\r\n");
    raw_cmd(&mut r, &["GET", "b"]);
    r.expect("$1\r\n2\r\n");
    ok(&mut w, &["MSET", "a", "3", "b", "4"]);
    r.expect(&push(&["b"]));
    raw_cmd(&mut r, &["CLIENT", "CACHING", "no"]);
    r.expect("-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n");

    let mut o = resp3_tracker(&srv, &["OPTOUT"]);
    raw_cmd(&mut o, &["CLIENT", "CACHING", "no"]);
    o.expect("+OK\r\n");
    raw_cmd(&mut o, &["GET", "a"]);
    o.expect("$1\r\n3\r\n");
    raw_cmd(&mut o, &["GET", "b"]);
    o.expect("$1\r\n4\r\n");
    ok(&mut w, &["MSET", "a", "5", "b", "6"]);
    o.expect(&push(&["b"]));
}

#[test]
fn expired_keys_are_invalidated() {
    let srv = start();
    let mut r = resp3_tracker(&srv, &["BCAST"]);
    let mut w = srv.client();
    ok(&mut w, &["SET", "e", "1", "PX", "50"]);
    r.expect(&push(&["e"]));
    // Deleted by the active expiry cycle: no command needed.
    r.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    r.expect(&push(&["e"]));
}

#[test]
fn lazy_expiry_invalidates_default_mode() {
    let srv = Server::start(&["--threads", "2", "--enable-debug-command", "yes"]);
    let mut w = srv.client();
    ok(&mut w, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    ok(&mut w, &["SET", "l", "1", "PX", "30"]);
    let mut r = resp3_tracker(&srv, &[]);
    raw_cmd(&mut r, &["GET", "l"]);
    r.expect("$1\r\n1\r\n");
    std::thread::sleep(Duration::from_millis(60));
    let v: Option<String> = redis::cmd("GET").arg("l").query(&mut w).unwrap();
    assert_eq!(v, None);
    r.expect(&push(&["l"]));
    ok(&mut w, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
}

#[test]
fn table_limit_evicts_with_invalidations() {
    let srv = start();
    let mut r = resp3_tracker(&srv, &[]);
    raw_cmd(&mut r, &["MGET", "k1", "k2", "k3"]);
    r.expect("*3\r\n_\r\n_\r\n_\r\n");
    let mut w = srv.client();
    let info: String = redis::cmd("INFO").query(&mut w).unwrap();
    assert!(info.contains("tracking_total_keys:3\r\n"), "{info}");
    assert!(info.contains("tracking_total_items:3\r\n"), "{info}");
    assert!(info.contains("tracking_clients:1\r\n"), "{info}");
    ok(&mut w, &["CONFIG", "SET", "tracking-table-max-keys", "1"]);
    for _ in 0..2 {
        let head = r.line();
        assert_eq!(head, ">2\r\n");
        r.expect("$10\r\ninvalidate\r\n*1\r\n$2\r\n");
        r.line();
    }
    let info: String = redis::cmd("INFO").query(&mut w).unwrap();
    assert!(info.contains("tracking_total_keys:1\r\n"), "{info}");
}

#[test]
fn trackinginfo_getredir_and_errors() {
    let srv = start();
    let mut c = srv.client();
    assert_eq!(int(&mut c, &["CLIENT", "GETREDIR"]), -1);
    let v: redis::Value = redis::cmd("CLIENT")
        .arg("TRACKINGINFO")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        format!("{v:?}"),
        format!(
            "{:?}",
            redis::Value::Array(vec![
                redis::Value::BulkString(b"flags".to_vec()),
                redis::Value::Array(vec![redis::Value::BulkString(b"off".to_vec())]),
                redis::Value::BulkString(b"redirect".to_vec()),
                redis::Value::Int(-1),
                redis::Value::BulkString(b"prefixes".to_vec()),
                redis::Value::Array(vec![]),
            ])
        )
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "CACHING", "yes"]),
        "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN \
         or OPTOUT mode enabled"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "TRACKING", "on", "PREFIX", "a"]),
        "ERR PREFIX option requires BCAST mode to be enabled"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"]),
        "ERR You can't specify both OPTIN mode and OPTOUT mode"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"]),
        "ERR OPTIN and OPTOUT are not compatible with BCAST"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "TRACKING", "on", "REDIRECT", "99999"]),
        "ERR The client ID you want redirect to does not exist"
    );
    assert_eq!(
        err(
            &mut c,
            &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "ab"]
        ),
        "ERR Prefix 'a' overlaps with another provided prefix 'ab'. Prefixes for a single \
         client must not overlap."
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "TRACKING", "maybe"]),
        "ERR syntax error"
    );
    ok(&mut c, &["CLIENT", "TRACKING", "on", "OPTIN", "NOLOOP"]);
    assert_eq!(
        err(&mut c, &["CLIENT", "TRACKING", "on", "OPTOUT"]),
        "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, \
         and then re-enabling it with a different mode."
    );
    assert_eq!(int(&mut c, &["CLIENT", "GETREDIR"]), 0);
    ok(&mut c, &["CLIENT", "CACHING", "yes"]);
    let v: Vec<redis::Value> = redis::cmd("CLIENT")
        .arg("TRACKINGINFO")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        v[1],
        redis::Value::Array(
            ["on", "optin", "caching-yes", "noloop"]
                .iter()
                .map(|s| redis::Value::BulkString(s.as_bytes().to_vec()))
                .collect()
        )
    );
    ok(&mut c, &["CLIENT", "TRACKING", "off"]);
    assert_eq!(int(&mut c, &["CLIENT", "GETREDIR"]), -1);
}

#[test]
fn served_blocked_pop_and_scripts_invalidate() {
    let srv = start();
    let mut w = srv.client();
    assert_eq!(int(&mut w, &["RPUSH", "dst", "a"]), 1);
    let mut r = resp3_tracker(&srv, &[]);
    raw_cmd(&mut r, &["LRANGE", "dst", "0", "-1"]);
    r.expect("*1\r\n$1\r\na\r\n");
    raw_cmd(&mut r, &["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(int(&mut w, &["RPUSH", "src", "foo"]), 1);
    // The served reply first, then the invalidation of what serving changed.
    r.expect("$3\r\nfoo\r\n");
    r.expect(&push(&["dst"]));
    // A script that reads tracks its declared keys.
    raw_cmd(
        &mut r,
        &["EVAL", "return redis.call('get', 'x')", "1", "s1"],
    );
    r.expect("_\r\n");
    ok(&mut w, &["SET", "s1", "1"]);
    r.expect(&push(&["s1"]));
}

#[test]
fn own_evicted_key_is_invalidated_before_the_reply() {
    let srv = start();
    let mut r = resp3_tracker(&srv, &[]);
    let mut w = srv.client();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut w).unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .parse()
        .unwrap();
    ok(
        &mut w,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            &(used + 100 * 1024).to_string(),
        ],
    );
    ok(
        &mut w,
        &["CONFIG", "SET", "maxmemory-policy", "volatile-random"],
    );
    raw_cmd(&mut r, &["SETEX", "volatile-key", "10000", "x"]);
    r.expect("+OK\r\n");
    raw_cmd(&mut r, &["GET", "volatile-key"]);
    r.expect("$1\r\nx\r\n");
    // 200 KB over the limit: the next command evicts the volatile key first, and its
    // invalidation comes before that command's reply, as in Redis.
    raw_cmd(&mut r, &["SETBIT", "big-key", "1600000", "0"]);
    r.expect(":0\r\n");
    raw_cmd(&mut r, &["GETBIT", "big-key", "0"]);
    r.expect(&push(&["volatile-key"]));
    r.expect(":0\r\n");
}
