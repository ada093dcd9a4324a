//! End-to-end tests of the Bloom filter commands (BF.*): RedisBloom's replies and error lines,
//! the false-positive rate on 100,000 items, and persistence (SAVE, DEBUG RELOAD, a restart,
//! DUMP/RESTORE, BF.SCANDUMP/BF.LOADCHUNK).

mod common;

use common::{err, int, ok, q, Server};
use redis::{Connection, Value};

fn items(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}:{i}")).collect()
}

/// BF.MADD / BF.MEXISTS of many items in batches, pipelined; the 0/1 answers in order.
fn multi(con: &mut Connection, cmd: &str, key: &str, all: &[String]) -> Vec<i64> {
    let mut pipe = redis::pipe();
    for batch in all.chunks(1000) {
        pipe.cmd(cmd).arg(key).arg(batch);
    }
    let replies: Vec<Vec<i64>> = pipe.query(con).expect(cmd);
    replies.into_iter().flatten().collect()
}

fn info(con: &mut Connection, key: &str) -> Vec<Value> {
    match q(con, &["BF.INFO", key]) {
        Ok(Value::Array(v)) => v,
        other => panic!("BF.INFO: {other:?}"),
    }
}

#[test]
fn commands_replies_and_errors() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["BF.RESERVE", "bf", "0.01", "100"]);
    assert_eq!(
        err(&mut con, &["BF.RESERVE", "bf", "0.01", "100"]),
        "ERR item exists"
    );
    assert_eq!(int(&mut con, &["BF.ADD", "bf", "a"]), 1);
    assert_eq!(int(&mut con, &["BF.ADD", "bf", "a"]), 0);
    assert_eq!(int(&mut con, &["BF.EXISTS", "bf", "a"]), 1);
    assert_eq!(int(&mut con, &["BF.EXISTS", "bf", "zz"]), 0);
    let r: Vec<i64> = redis::cmd("BF.MADD")
        .arg("bf")
        .arg(&["a", "b", "c"])
        .query(&mut con)
        .unwrap();
    assert_eq!(r, [0, 1, 1]);
    let r: Vec<i64> = redis::cmd("BF.MEXISTS")
        .arg("bf")
        .arg(&["a", "b", "x"])
        .query(&mut con)
        .unwrap();
    assert_eq!(r, [1, 1, 0]);
    assert_eq!(int(&mut con, &["BF.CARD", "bf"]), 3);
    assert_eq!(int(&mut con, &["BF.CARD", "nokey"]), 0);
    assert_eq!(int(&mut con, &["BF.EXISTS", "nokey", "a"]), 0);
    // RedisBloom's BF.INFO for (0.01, 100): the first link at half the error rate.
    assert_eq!(
        info(&mut con, "bf"),
        [
            Value::SimpleString("Capacity".into()),
            Value::Int(100),
            Value::SimpleString("Size".into()),
            Value::Int(240),
            Value::SimpleString("Number of filters".into()),
            Value::Int(1),
            Value::SimpleString("Number of items inserted".into()),
            Value::Int(3),
            Value::SimpleString("Expansion rate".into()),
            Value::Int(2),
        ]
    );
    assert_eq!(
        q(&mut con, &["BF.INFO", "bf", "items"]),
        Ok(Value::Array(vec![Value::Int(3)]))
    );
    assert_eq!(
        err(&mut con, &["BF.INFO", "bf", "bogus"]),
        "Invalid information value"
    );
    assert_eq!(err(&mut con, &["BF.INFO", "nokey"]), "ERR not found");
    let t: String = redis::cmd("TYPE").arg("bf").query(&mut con).unwrap();
    assert_eq!(t, "MBbloom--");
    assert!(int(&mut con, &["MEMORY", "USAGE", "bf"]) > 144);

    // Argument errors, as RedisBloom words them.
    assert_eq!(
        err(&mut con, &["BF.RESERVE", "x", "abc", "100"]),
        "ERR bad error rate"
    );
    assert_eq!(
        err(&mut con, &["BF.RESERVE", "x", "1.5", "100"]),
        "ERR error rate must be in the range (0.000000, 1.000000)"
    );
    assert_eq!(
        err(&mut con, &["BF.RESERVE", "x", "0.1", "x"]),
        "ERR bad capacity"
    );
    assert_eq!(
        err(&mut con, &["BF.RESERVE", "x", "0.1", "0"]),
        "ERR capacity must be in the range [1, 1073741824]"
    );
    assert_eq!(
        err(&mut con, &["BF.RESERVE", "x", "0.1", "10", "EXPANSION"]),
        "ERR no expansion"
    );
    assert_eq!(
        err(
            &mut con,
            &[
                "BF.RESERVE",
                "x",
                "0.1",
                "10",
                "NONSCALING",
                "EXPANSION",
                "2"
            ]
        ),
        "Nonscaling filters cannot expand"
    );
    assert_eq!(
        err(&mut con, &["BF.INSERT", "x", "BOGUS", "ITEMS", "a"]),
        "Unknown argument received"
    );
    assert_eq!(
        err(&mut con, &["BF.INSERT", "x", "ERROR", "2", "ITEMS", "a"]),
        "Bad error rate"
    );
    assert_eq!(
        err(&mut con, &["BF.INSERT", "x", "NOCREATE", "ITEMS", "a"]),
        "ERR not found"
    );
    assert_eq!(
        err(&mut con, &["BF.INSERT", "x", "ITEMS"]),
        "ERR wrong number of arguments for 'bf.insert' command"
    );
    ok(&mut con, &["SET", "str", "v"]);
    assert!(err(&mut con, &["BF.ADD", "str", "a"]).starts_with("WRONGTYPE"));
    assert_eq!(int(&mut con, &["BF.EXISTS", "str", "a"]), 0);

    // A full non-scaling filter: the array ends with the error.
    let mut raw = srv.raw();
    raw.cmd(&[
        b"BF.INSERT",
        b"fixed",
        b"CAPACITY",
        b"2",
        b"NONSCALING",
        b"ITEMS",
        b"a",
        b"b",
        b"c",
        b"d",
    ]);
    raw.expect("*3\r\n:1\r\n:1\r\n-ERR non scaling filter is full\r\n");
    assert_eq!(
        q(&mut con, &["BF.INFO", "fixed", "EXPANSION"]),
        Ok(Value::Array(vec![Value::Nil]))
    );

    // RESP3: booleans and maps.
    raw.hello3();
    raw.cmd(&[b"BF.EXISTS", b"bf", b"a"]);
    raw.expect("#t\r\n");
    raw.cmd(&[b"BF.MADD", b"bf", b"a", b"new"]);
    raw.expect("*2\r\n#f\r\n#t\r\n");
    raw.cmd(&[b"BF.INFO", b"bf", b"CAPACITY"]);
    raw.expect("%1\r\n+Capacity\r\n:100\r\n");
}

/// 100,000 items at a 1% error rate: no false negatives, and a measured false-positive rate
/// within 1.5x of the target, for a filter sized up front and for one that scaled from the
/// default capacity of 100.
#[test]
fn false_positive_rate_on_100k_items() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let added = items("member", 0..100_000);
    let absent = items("absent", 0..100_000);
    ok(&mut con, &["BF.RESERVE", "sized", "0.01", "100000"]);
    for key in ["sized", "scaled"] {
        let new = multi(&mut con, "BF.MADD", key, &added);
        assert!(new.iter().filter(|&&n| n == 1).count() > 99_000);
        let found = multi(&mut con, "BF.MEXISTS", key, &added);
        assert!(found.iter().all(|&f| f == 1), "{key}: false negatives");
        let fp = multi(&mut con, "BF.MEXISTS", key, &absent)
            .iter()
            .sum::<i64>();
        let rate = fp as f64 / absent.len() as f64;
        eprintln!("{key}: false-positive rate {rate:.5} (target 0.01)");
        assert!(rate <= 0.015, "{key}: false-positive rate {rate}");
    }
    assert!(matches!(info(&mut con, "scaled")[5], Value::Int(n) if n > 5));
}

/// A filter survives SAVE + restart, DEBUG RELOAD, DUMP/RESTORE and SCANDUMP/LOADCHUNK with
/// every parameter and bit intact.
#[test]
fn persistence_round_trips() {
    let dir = std::env::temp_dir().join(format!("flowkv-bloom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir_arg = dir.to_str().unwrap();
    let args = ["--dir", dir_arg, "--enable-debug-command", "yes"];
    let added = items("k", 0..5000);
    let before;
    {
        let srv = Server::start(&args);
        let mut con = srv.client();
        ok(
            &mut con,
            &["BF.RESERVE", "bf", "0.001", "500", "EXPANSION", "3"],
        );
        multi(&mut con, "BF.MADD", "bf", &added);
        int(&mut con, &["EXPIRE", "bf", "1000"]);
        before = info(&mut con, "bf");
        ok(&mut con, &["DEBUG", "RELOAD"]);
        assert_eq!(info(&mut con, "bf"), before);
        ok(&mut con, &["SAVE"]);
    }
    let srv = Server::start(&args);
    let mut con = srv.client();
    assert_eq!(info(&mut con, "bf"), before);
    assert!(int(&mut con, &["TTL", "bf"]) > 900);
    assert!(multi(&mut con, "BF.MEXISTS", "bf", &added)
        .iter()
        .all(|&f| f == 1));

    // DUMP / RESTORE.
    let dump: Vec<u8> = redis::cmd("DUMP").arg("bf").query(&mut con).unwrap();
    assert_eq!(dump[0], 7, "a module value (RDB type MODULE_2)");
    ok(&mut con, &[&b"RESTORE"[..], b"copy", b"0", &dump]);
    assert_eq!(info(&mut con, "copy"), before);

    // SCANDUMP / LOADCHUNK into a new key.
    let mut iter = 0i64;
    loop {
        let (next, data): (i64, Vec<u8>) = redis::cmd("BF.SCANDUMP")
            .arg("bf")
            .arg(iter)
            .query(&mut con)
            .unwrap();
        if next == 0 {
            break;
        }
        ok(
            &mut con,
            &[
                &b"BF.LOADCHUNK"[..],
                b"loaded",
                next.to_string().as_bytes(),
                &data,
            ],
        );
        iter = next;
    }
    assert_eq!(info(&mut con, "loaded"), before);
    assert!(multi(&mut con, "BF.MEXISTS", "loaded", &added)
        .iter()
        .all(|&f| f == 1));
    assert_eq!(
        err(&mut con, &["BF.LOADCHUNK", "bad", "1", "junk"]),
        "ERR received bad data"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
