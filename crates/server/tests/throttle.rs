//! End-to-end tests of CL.THROTTLE: redis-cell's documented examples, its state as a plain
//! string key with a TTL, error lines, and exact admission under concurrent clients.

mod common;

use std::sync::{Arc, Barrier};

use common::{err, int, Server};
use redis::Connection;

fn throttle(con: &mut Connection, args: &[&str]) -> Vec<i64> {
    redis::cmd("CL.THROTTLE")
        .arg(args)
        .query(con)
        .expect("CL.THROTTLE")
}

#[test]
fn redis_cell_documented_examples() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    // README: 15 max burst, 30 tokens per 60 seconds.
    assert_eq!(
        throttle(&mut con, &["user123", "15", "30", "60"]),
        [0, 16, 15, -1, 2]
    );
    // redis-cell's end-to-end test: burst 0, 1 token per 2 seconds.
    let args = ["user456", "0", "1", "2", "1"];
    assert_eq!(throttle(&mut con, &args), [0, 1, 0, -1, 2]);
    assert_eq!(throttle(&mut con, &args), [1, 1, 0, 2, 2]);
    // The state is a string holding the TAT in nanoseconds, expiring when fully reset.
    let t: String = redis::cmd("TYPE").arg("user456").query(&mut con).unwrap();
    assert_eq!(t, "string");
    let pttl = int(&mut con, &["PTTL", "user456"]);
    assert!((1..=2000).contains(&pttl), "{pttl}");
    std::thread::sleep(std::time::Duration::from_millis(2050));
    assert_eq!(throttle(&mut con, &args), [0, 1, 0, -1, 2]);
}

#[test]
fn errors() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    assert_eq!(
        err(&mut con, &["CL.THROTTLE", "k", "x", "1", "1"]),
        "Cell error: Couldn't parse as integer: x"
    );
    assert_eq!(
        err(&mut con, &["CL.THROTTLE", "k", "1", "0", "1"]),
        "Cell error: Zero rates are not supported"
    );
    assert_eq!(
        err(&mut con, &["CL.THROTTLE", "k", "1", "1", "1", "1", "extra"]),
        "Cell error: Usage: cl.throttle <key> <max_burst> <count per period> <period> [<quantity>]"
    );
    assert_eq!(
        err(&mut con, &["CL.THROTTLE", "k", "1", "1"]),
        "ERR wrong number of arguments for 'cl.throttle' command"
    );
    let _: () = redis::cmd("LPUSH")
        .arg("list")
        .arg("a")
        .query(&mut con)
        .unwrap();
    assert!(err(&mut con, &["CL.THROTTLE", "list", "1", "1", "1"]).starts_with("WRONGTYPE"));
}

/// 20 clients on their own connections hit one key at once: exactly the burst (limit 10)
/// is admitted.
#[test]
fn concurrent_clients_admit_exactly_the_burst() {
    let srv = Server::start(&[]);
    for round in 0..5 {
        let key = format!("shared-{round}");
        let barrier = Arc::new(Barrier::new(20));
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let mut con = srv.client();
                let (barrier, key) = (barrier.clone(), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    throttle(&mut con, &[&key, "9", "1", "3600"])[0]
                })
            })
            .collect();
        let limited: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(limited, 10, "round {round}: 10 of 20 must be limited");
    }
}
