//! Many clients on several worker threads hitting overlapping keys: multi-key commands lock
//! their shards in order, so nothing deadlocks, and every increment is counted once.

mod common;

use std::thread;

use common::{int, q, Server};

#[test]
fn concurrent_multi_key_commands_neither_deadlock_nor_lose_writes() {
    let srv = Server::start(&["--threads", "4"]);
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 300;
    let port = srv.port;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            thread::spawn(move || {
                let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .and_then(|cl| cl.get_connection())
                    .expect("connect");
                for r in 0..ROUNDS {
                    let a = format!("k{}", (c + r) % 17);
                    let b = format!("k{}", (c * 7 + r) % 17);
                    // Multi-key commands over keys in different shards, in both orders.
                    q(&mut con, &["MSET", &a, "x", &b, "y"]).unwrap();
                    q(&mut con, &["MGET", &b, &a, "counter"]).unwrap();
                    let _ = q(&mut con, &["RENAME", &a, &b]);
                    q(&mut con, &["DEL", &b, &a]).unwrap();
                    q(&mut con, &["INCR", "counter"]).unwrap();
                    q(&mut con, &["INCRBY", &format!("c{c}"), "2"]).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("client thread");
    }
    let mut con = srv.client();
    let get = |con: &mut redis::Connection, key: &str| -> i64 {
        redis::cmd("GET").arg(key).query(con).expect("GET")
    };
    assert_eq!(get(&mut con, "counter"), (CLIENTS * ROUNDS) as i64);
    for c in 0..CLIENTS {
        assert_eq!(get(&mut con, &format!("c{c}")), (2 * ROUNDS) as i64);
    }
    // Whole-keyspace commands see a consistent count while nothing else runs.
    let keys = int(&mut con, &["DBSIZE"]);
    let listed = match q(&mut con, &["KEYS", "*"]).unwrap() {
        redis::Value::Array(v) => v.len() as i64,
        other => panic!("KEYS: {other:?}"),
    };
    assert_eq!(keys, listed);
}
