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
    assert!((56..128).contains(&small), "small = {small}");
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
