//! MULTI/EXEC/DISCARD/WATCH end to end: queueing, EXECABORT, run-time errors per command,
//! WATCH failures from other clients (and a WATCH retry loop under contention), flushes and
//! expiry, and transactions seen whole by blocked clients.

mod common;

use common::{bulk, err, int, q, Server};

#[test]
fn queue_exec_and_errors() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.cmd(&[b"MULTI"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"SET", b"k", b"v"]);
    r.expect("+QUEUED\r\n");
    r.cmd(&[b"LPUSH", b"k", b"x"]);
    r.expect("+QUEUED\r\n");
    r.cmd(&[b"INCR", b"n"]);
    r.expect("+QUEUED\r\n");
    r.cmd(&[b"MULTI"]);
    r.expect("-ERR MULTI calls can not be nested\r\n");
    r.cmd(&[b"WATCH", b"k"]);
    r.expect("-ERR WATCH inside MULTI is not allowed\r\n");
    r.cmd(&[b"EXEC"]);
    // Run-time errors are per-command replies; the others ran.
    r.expect(
        "*3\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n",
    );
    r.cmd(&[b"EXEC"]);
    r.expect("-ERR EXEC without MULTI\r\n");
    r.cmd(&[b"DISCARD"]);
    r.expect("-ERR DISCARD without MULTI\r\n");

    // A queue-time error (unknown command, arity) dooms the transaction.
    r.cmd(&[b"MULTI"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"SET", b"a", b"1"]);
    r.expect("+QUEUED\r\n");
    r.cmd(&[b"NOSUCH"]);
    r.expect("-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
    r.cmd(&[b"GET"]);
    r.expect("-ERR wrong number of arguments for 'get' command\r\n");
    r.cmd(&[b"EXEC"]);
    r.expect("-EXECABORT Transaction discarded because of previous errors.\r\n");
    let mut con = srv.client();
    assert_eq!(int(&mut con, &["EXISTS", "a"]), 0);

    // DISCARD drops the queue.
    r.cmd(&[b"MULTI"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"SET", b"a", b"1"]);
    r.expect("+QUEUED\r\n");
    r.cmd(&[b"DISCARD"]);
    r.expect("+OK\r\n");
    assert_eq!(int(&mut con, &["EXISTS", "a"]), 0);
    r.cmd(&[b"MULTI"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"EXEC"]);
    r.expect("*0\r\n");
}

#[test]
fn watch_fails_exec_when_another_client_writes() {
    let srv = Server::start(&["--threads", "2"]);
    let mut a = srv.client();
    let mut b = srv.client();
    q(&mut a, &["SET", "x", "1"]).unwrap();
    q(&mut a, &["WATCH", "x"]).unwrap();
    q(&mut b, &["SET", "x", "2"]).unwrap();
    q(&mut a, &["MULTI"]).unwrap();
    q(&mut a, &["SET", "x", "3"]).unwrap();
    let v: Option<Vec<String>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert_eq!(v, None);
    assert_eq!(bulk(&mut a, &["GET", "x"]).as_deref(), Some("2"));

    // Unmodified watched keys let EXEC through, and EXEC unwatches.
    q(&mut a, &["WATCH", "x"]).unwrap();
    q(&mut b, &["SET", "other", "1"]).unwrap();
    q(&mut a, &["MULTI"]).unwrap();
    q(&mut a, &["SET", "x", "4"]).unwrap();
    let v: Option<Vec<String>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert_eq!(v, Some(vec!["OK".to_string()]));
    q(&mut b, &["SET", "x", "5"]).unwrap();
    q(&mut a, &["MULTI"]).unwrap();
    q(&mut a, &["SET", "x", "6"]).unwrap();
    let v: Option<Vec<String>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert!(v.is_some());

    // The client's own writes before MULTI count; UNWATCH and DISCARD forget.
    q(&mut a, &["WATCH", "x"]).unwrap();
    q(&mut a, &["SET", "x", "7"]).unwrap();
    q(&mut a, &["MULTI"]).unwrap();
    let v: Option<Vec<String>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert_eq!(v, None);
    q(&mut a, &["WATCH", "x"]).unwrap();
    q(&mut a, &["UNWATCH"]).unwrap();
    q(&mut b, &["SET", "x", "8"]).unwrap();
    q(&mut a, &["MULTI"]).unwrap();
    let v: Option<Vec<String>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert!(v.is_some());
}

/// The optimistic-locking loop clients build on WATCH (read, MULTI, write, EXEC, retry
/// on a nil EXEC) loses no increment when clients on both workers contend for one key.
#[test]
fn watch_based_increments_under_contention_lose_nothing() {
    const CLIENTS: usize = 8;
    const EACH: i64 = 100;
    let srv = Server::start(&["--threads", "2"]);
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut con = srv.client();
            std::thread::spawn(move || {
                let mut retries = 0;
                for _ in 0..EACH {
                    loop {
                        q(&mut con, &["WATCH", "counter"]).unwrap();
                        let v: Option<i64> =
                            redis::cmd("GET").arg("counter").query(&mut con).unwrap();
                        q(&mut con, &["MULTI"]).unwrap();
                        q(
                            &mut con,
                            &["SET", "counter", &(v.unwrap_or(0) + 1).to_string()],
                        )
                        .unwrap();
                        let done: Option<Vec<String>> = redis::cmd("EXEC").query(&mut con).unwrap();
                        match done {
                            Some(replies) => {
                                assert_eq!(replies, ["OK"]);
                                break;
                            }
                            None => retries += 1,
                        }
                    }
                }
                retries
            })
        })
        .collect();
    let retries: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let mut con = srv.client();
    assert_eq!(
        bulk(&mut con, &["GET", "counter"]),
        Some((CLIENTS as i64 * EACH).to_string())
    );
    // The clients did contend (some EXECs were aborted and retried), and no race lost
    // an update.
    assert!(
        retries > 0,
        "no EXEC was ever aborted: the test saw no contention"
    );
}

#[test]
fn watch_sees_flushes_expiry_and_databases() {
    let srv = Server::start(&[]);
    let mut a = srv.client();
    let mut b = srv.client();
    let exec = |c: &mut redis::Connection| -> Option<Vec<redis::Value>> {
        q(c, &["MULTI"]).unwrap();
        q(c, &["PING"]).unwrap();
        redis::cmd("EXEC").query(c).unwrap()
    };
    // FLUSHALL touches watched keys that exist, not missing ones.
    q(&mut a, &["SET", "x", "1"]).unwrap();
    q(&mut a, &["WATCH", "x"]).unwrap();
    q(&mut b, &["FLUSHALL"]).unwrap();
    assert!(exec(&mut a).is_none());
    q(&mut a, &["WATCH", "missing"]).unwrap();
    q(&mut b, &["FLUSHALL"]).unwrap();
    assert!(exec(&mut a).is_some());

    // A watched key that expires fails the EXEC.
    q(&mut a, &["SET", "t", "1", "PX", "20"]).unwrap();
    q(&mut a, &["WATCH", "t"]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(exec(&mut a).is_none());

    // WATCH remembers the database: the same name elsewhere is another key.
    q(&mut a, &["SET", "d", "1"]).unwrap();
    q(&mut a, &["WATCH", "d"]).unwrap();
    q(&mut b, &["SELECT", "1"]).unwrap();
    q(&mut b, &["SET", "d", "2"]).unwrap();
    assert!(exec(&mut a).is_some());
    q(&mut a, &["WATCH", "d"]).unwrap();
    q(&mut b, &["SWAPDB", "0", "1"]).unwrap();
    assert!(exec(&mut a).is_none());
}

#[test]
fn blocking_commands_do_not_block_inside_exec_and_waiters_see_it_whole() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mut r = srv.raw();
    r.cmd(&[b"MULTI"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"BLPOP", b"empty", b"0"]);
    r.expect("+QUEUED\r\n");
    r.cmd(&[b"BLMOVE", b"empty", b"d", b"LEFT", b"LEFT", b"0"]);
    r.expect("+QUEUED\r\n");
    r.cmd(&[b"EXEC"]);
    r.expect("*2\r\n*-1\r\n$-1\r\n");

    // A client blocked on a list wakes after the whole transaction: LPUSH + DEL leaves it
    // waiting, three pushes give it the last one.
    let mut waiter = srv.raw();
    waiter.cmd(&[b"BLPOP", b"l", b"0"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !redis::cmd("INFO")
        .arg("clients")
        .query::<String>(&mut con)
        .unwrap()
        .contains("blocked_clients:1")
    {
        assert!(std::time::Instant::now() < deadline);
    }
    r.cmd(&[b"MULTI"]);
    r.expect("+OK\r\n");
    for c in [&[b"LPUSH" as &[u8], b"l", b"a"][..], &[b"DEL", b"l"]] {
        r.cmd(c);
        r.expect("+QUEUED\r\n");
    }
    r.cmd(&[b"EXEC"]);
    r.expect("*2\r\n:1\r\n:1\r\n");
    r.cmd(&[b"MULTI"]);
    r.expect("+OK\r\n");
    for v in [b"x" as &[u8], b"y", b"z"] {
        r.cmd(&[b"LPUSH", b"l", v]);
        r.expect("+QUEUED\r\n");
    }
    r.cmd(&[b"EXEC"]);
    r.expect("*3\r\n:1\r\n:2\r\n:3\r\n");
    waiter.expect("*2\r\n$1\r\nl\r\n$1\r\nz\r\n");
    assert_eq!(err(&mut con, &["EXEC"]), "ERR EXEC without MULTI");
}

#[test]
fn info_inside_exec_and_scripts_counts_keys_without_deadlock() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    q(&mut con, &["SET", "k", "v"]).unwrap();
    q(&mut con, &["MULTI"]).unwrap();
    q(&mut con, &["SET", "k2", "v"]).unwrap();
    q(&mut con, &["INFO", "keyspace"]).unwrap();
    let replies: Vec<redis::Value> = redis::cmd("EXEC").query(&mut con).unwrap();
    let text: String = redis::from_redis_value(&replies[1]).unwrap();
    assert!(text.contains("db0:keys=2,expires=0"), "{text}");
    let text: String = redis::cmd("EVAL")
        .arg("return redis.call('INFO', 'keyspace')")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert!(text.contains("db0:keys=2,expires=0"), "{text}");
}
