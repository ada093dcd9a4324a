//! MEMORY USAGE end to end.

mod common;

use common::Server;

#[test]
fn memory_usage_tracks_value_size() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let missing: Option<i64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("nokey")
        .query(&mut con)
        .unwrap();
    assert_eq!(missing, None);
    let _: () = redis::cmd("SET")
        .arg("small")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let small: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("small")
        .query(&mut con)
        .unwrap();
    // 12 bytes of table share + one 32-byte allocation (header, key and value).
    assert!((40..128).contains(&small), "small = {small}");
    // A value that once went through a big query buffer is stored at its own size.
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg("A".repeat(100_000))
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg("A".repeat(33_000))
        .query(&mut con)
        .unwrap();
    let big: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("big")
        .arg("SAMPLES")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert!((33_000..42_000).contains(&big), "big = {big}");
    let err = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("big")
        .arg("SAMPLES")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "An error was signalled by the server - ResponseError: syntax error"
    );
}

/// MEMORY STATS is Redis 7.0's map: 27 figures plus one per non-empty database, each of
/// those a map of 3, framed so the next reply on the connection is the next command's.
#[test]
fn memory_stats_shape() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let stats: Vec<redis::Value> = redis::cmd("MEMORY").arg("STATS").query(&mut c).unwrap();
    assert_eq!(stats.len(), 2 * (27 + 2));
    let names: Vec<String> = stats
        .iter()
        .step_by(2)
        .map(|v| redis::from_redis_value(v).unwrap())
        .collect();
    assert_eq!(names[0], "peak.allocated");
    assert_eq!(names[10..12], ["db.0", "db.3"]);
    assert_eq!(names.last().unwrap(), "fragmentation.bytes");
    let redis::Value::Array(db0) = &stats[21] else {
        panic!("db.0: {:?}", stats[21])
    };
    assert_eq!(db0.len(), 6);
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}
