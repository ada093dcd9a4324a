//! End-to-end tests of the CACHE.* commands (server-side cache-stampede protection): the
//! lease protocol, 1,000 concurrent clients on an expired hot key causing exactly one
//! recompute, lease takeover after a lease holder dies, refused stale fills, RESP3, and
//! persistence.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{err, int, ok, Server};
use redis::{Connection, Value};

/// A CACHE.GET reply: (status, value, token, ttl).
type Got = (String, Option<Vec<u8>>, Option<i64>, i64);

fn get(con: &mut Connection, args: &[&str]) -> Option<Got> {
    let v: Value = redis::cmd("CACHE.GET")
        .arg(args)
        .query(con)
        .expect("CACHE.GET");
    let Value::Array(items) = v else {
        assert_eq!(v, Value::Nil, "CACHE.GET: not an array or null");
        return None;
    };
    let status = match &items[0] {
        Value::SimpleString(s) => s.clone(),
        other => panic!("status: {other:?}"),
    };
    let value = match &items[1] {
        Value::BulkString(b) => Some(b.clone()),
        Value::Nil => None,
        other => panic!("value: {other:?}"),
    };
    let token = match &items[2] {
        Value::Int(t) => Some(*t),
        Value::Nil => None,
        other => panic!("token: {other:?}"),
    };
    let Value::Int(ttl) = items[3] else {
        panic!("ttl: {:?}", items[3])
    };
    Some((status, value, token, ttl))
}

fn fill(con: &mut Connection, key: &str, token: i64, value: &str, extra: &[&str]) -> i64 {
    let mut args = vec!["CACHE.FILL", key];
    let token = token.to_string();
    args.extend([token.as_str(), value]);
    args.extend(extra);
    int(con, &args)
}

#[test]
fn lease_protocol() {
    let srv = Server::start(&["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    let (status, value, token, ttl) = get(&mut con, &["k"]).unwrap();
    assert_eq!((status.as_str(), value, ttl), ("WIN", None, -2));
    let token = token.unwrap();
    assert_eq!(get(&mut con, &["k"]).unwrap().0, "PENDING");
    assert_eq!(fill(&mut con, "k", token + 1, "x", &["10000"]), 0);
    assert_eq!(
        fill(&mut con, "k", token, "v1", &["10000", "GRACE", "5000"]),
        1
    );
    assert_eq!(fill(&mut con, "k", token, "again", &["10000"]), 0);
    let (status, value, token2, ttl) = get(&mut con, &["k"]).unwrap();
    assert_eq!(
        (status.as_str(), value.as_deref(), token2),
        ("HIT", Some(&b"v1"[..]), None)
    );
    assert!((9000..=10000).contains(&ttl), "{ttl}");
    let pttl = int(&mut con, &["PTTL", "k"]);
    assert!(
        (14000..=15000).contains(&pttl),
        "hard expiry = ttl + grace: {pttl}"
    );
    let t: String = redis::cmd("TYPE").arg("k").query(&mut con).unwrap();
    assert_eq!(t, "flowcache");

    // Invalidation: served stale while one client refreshes; the revoked lease can't fill.
    let (_, _, early_token, _) = get(&mut con, &["e"]).unwrap();
    assert_eq!(int(&mut con, &["CACHE.INVALIDATE", "k", "e", "missing"]), 2);
    assert_eq!(
        int(&mut con, &["EXISTS", "e"]),
        0,
        "an entry without a value goes"
    );
    assert_eq!(
        fill(&mut con, "e", early_token.unwrap(), "late", &["1000"]),
        0
    );
    let (status, value, token, ttl) = get(&mut con, &["k"]).unwrap();
    assert_eq!(
        (status.as_str(), value.as_deref(), ttl),
        ("WIN", Some(&b"v1"[..]), 0)
    );
    let (status, value, _, _) = get(&mut con, &["k"]).unwrap();
    assert_eq!(
        (status.as_str(), value.as_deref()),
        ("STALE", Some(&b"v1"[..]))
    );
    // A lease holder giving up: the next reader wins.
    assert_eq!(
        int(
            &mut con,
            &["CACHE.RELEASE", "k", &token.unwrap().to_string()]
        ),
        1
    );
    let (status, _, token, _) = get(&mut con, &["k"]).unwrap();
    assert_eq!(status, "WIN");

    // Persistence keeps the value and its staleness (not the lease).
    ok(&mut con, &["DEBUG", "RELOAD"]);
    let (status, value, _, _) = get(&mut con, &["k"]).unwrap();
    assert_eq!(
        (status.as_str(), value.as_deref()),
        ("WIN", Some(&b"v1"[..]))
    );
    assert_eq!(fill(&mut con, "k", token.unwrap(), "v2", &["1000"]), 0);
    let dump: Vec<u8> = redis::cmd("DUMP").arg("k").query(&mut con).unwrap();
    ok(&mut con, &[&b"RESTORE"[..], b"k2", b"0", &dump]);
    assert_eq!(
        get(&mut con, &["k2"]).unwrap().1.as_deref(),
        Some(&b"v1"[..])
    );

    // Early refresh: inside the window one reader wins while the value is still fresh.
    let (_, _, t, _) = get(&mut con, &["early"]).unwrap();
    assert_eq!(
        fill(
            &mut con,
            "early",
            t.unwrap(),
            "v",
            &["1000", "EARLY", "900"]
        ),
        1
    );
    std::thread::sleep(Duration::from_millis(150));
    let (status, value, _, _) = get(&mut con, &["early"]).unwrap();
    assert_eq!(
        (status.as_str(), value.as_deref()),
        ("WIN", Some(&b"v"[..]))
    );
    assert_eq!(get(&mut con, &["early"]).unwrap().0, "HIT");

    // Errors and RESP3.
    ok(&mut con, &["SET", "str", "x"]);
    assert!(err(&mut con, &["CACHE.GET", "str"]).starts_with("WRONGTYPE"));
    assert!(err(&mut con, &["CACHE.FILL", "str", "1", "v", "10"]).starts_with("WRONGTYPE"));
    assert_eq!(
        err(&mut con, &["CACHE.GET", "x", "LEASE"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["CACHE.FILL", "x", "1", "v", "0"]),
        "ERR TTL must be an integer number of milliseconds between 1 and 31536000000"
    );
    let mut raw = srv.raw();
    raw.hello3();
    raw.cmd(&[b"CACHE.GET", b"r3"]);
    raw.expect("*4\r\n+WIN\r\n_\r\n:");
    let _token = raw.line();
    raw.expect(":-2\r\n");
    raw.cmd(&[b"CACHE.GET", b"r3"]);
    raw.expect("*4\r\n+PENDING\r\n_\r\n_\r\n:-2\r\n");
}

/// `n` clients, one connection each, read `key` at once (blocking up to 5 s when nothing is
/// servable). Whoever wins the lease "recomputes" (50 ms) and fills `fresh`. Returns the
/// number of recomputes and every client's final value.
fn stampede(srv: &Server, n: usize, key: &str, fresh: &str) -> (usize, Vec<Option<Vec<u8>>>) {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let mut con = srv.client();
            let (barrier, key, fresh) = (barrier.clone(), key.to_string(), fresh.to_string());
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || {
                    barrier.wait();
                    let (status, value, token, _) =
                        get(&mut con, &[&key, "WAIT", "5000"]).expect("no timeout");
                    match status.as_str() {
                        "WIN" => {
                            std::thread::sleep(Duration::from_millis(50));
                            let filled = fill(&mut con, &key, token.unwrap(), &fresh, &["60000"]);
                            assert_eq!(filled, 1);
                            (1, Some(fresh.into_bytes()))
                        }
                        "HIT" | "STALE" => (0, value),
                        other => panic!("unexpected status {other}"),
                    }
                })
                .expect("spawn")
        })
        .collect();
    let mut recomputes = 0;
    let mut values = Vec::with_capacity(n);
    for h in handles {
        let (r, v) = h.join().expect("client thread");
        recomputes += r;
        values.push(v);
    }
    (recomputes, values)
}

/// Seeds `key` with `v1`, fresh for 100 ms and servable stale for `grace` ms after.
fn seed(con: &mut Connection, key: &str, grace: &str) {
    let (_, _, t, _) = get(con, &[key]).unwrap();
    assert_eq!(
        fill(con, key, t.unwrap(), "v1", &["100", "GRACE", grace]),
        1
    );
    std::thread::sleep(Duration::from_millis(150));
}

#[test]
fn thousand_clients_one_recompute() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    // Within the grace period: one recompute, everyone else served the stale value at once.
    seed(&mut con, "hot", "60000");
    let (recomputes, values) = stampede(&srv, 1000, "hot", "v2");
    assert_eq!(recomputes, 1);
    assert!(values
        .iter()
        .all(|v| matches!(v.as_deref(), Some(b"v1" | b"v2"))));
    // Past the hard expiry (no grace): one recompute, everyone else waits for its value.
    seed(&mut con, "cold", "0");
    let (recomputes, values) = stampede(&srv, 1000, "cold", "v2");
    assert_eq!(recomputes, 1);
    assert!(values.iter().all(|v| v.as_deref() == Some(b"v2")));
}

#[test]
fn dead_lease_holder_is_replaced_after_the_lease() {
    let srv = Server::start(&[]);
    let mut a = srv.client();
    let (status, _, stale_token, _) = get(&mut a, &["k", "LEASE", "300"]).unwrap();
    assert_eq!(status, "WIN");
    drop(a); // the lease holder dies without filling
    let mut b = srv.client();
    let start = Instant::now();
    // A waiter is released when the lease ends (null: read again) ...
    assert_eq!(get(&mut b, &["k", "WAIT", "5000"]), None);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // ... and the next read takes the lease over.
    let (status, _, token, _) = get(&mut b, &["k"]).unwrap();
    assert_eq!(status, "WIN");
    // The dead holder's token can never fill; the new one can.
    assert_eq!(fill(&mut b, "k", stale_token.unwrap(), "old", &["1000"]), 0);
    assert_eq!(fill(&mut b, "k", token.unwrap(), "new", &["1000"]), 1);
    assert_eq!(get(&mut b, &["k"]).unwrap().1.as_deref(), Some(&b"new"[..]));
}

/// A slow refresher whose lease was taken over can't overwrite the newer value.
#[test]
fn stale_fill_never_overwrites_newer_value() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let (_, _, slow, _) = get(&mut con, &["k", "LEASE", "100"]).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let (status, _, fast, _) = get(&mut con, &["k"]).unwrap();
    assert_eq!(status, "WIN");
    assert_eq!(fill(&mut con, "k", fast.unwrap(), "newer", &["10000"]), 1);
    assert_eq!(fill(&mut con, "k", slow.unwrap(), "older", &["10000"]), 0);
    assert_eq!(
        get(&mut con, &["k"]).unwrap().1.as_deref(),
        Some(&b"newer"[..])
    );
}
