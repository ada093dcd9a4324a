//! RDB persistence end to end: SAVE / BGSAVE / LASTSAVE / INFO persistence, loading at
//! start-up, DEBUG RELOAD, DUMP / RESTORE with Redis's exact errors, and interop with a real
//! `redis-server` 7.0 in both directions: a dump.rdb Redis saved loads here with identical
//! contents and encodings, ours loads in Redis (and passes `redis-check-rdb`), and DUMP
//! payloads restore on the other side. The interop tests are skipped, with a note, when
//! `redis-server` is not on PATH.

mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bulk, err, int, ok, q, Server};
use redis::{Connection, Value};

/// Databases the dataset uses.
const DBS: [i64; 3] = [0, 1, 5];

/// A fresh, empty directory for one test's files.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flowkv-rdb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A real redis-server working in `dir`, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts `redis-server` with `dir` as its data directory (loading `dump.rdb` if there is
    /// one), or `None` (with a note) if it is not installed.
    fn start(dir: &Path) -> Option<Redis> {
        let port = common::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            eprintln!("note: redis-server not on PATH; skipping this interop test");
            return None;
        };
        let mut r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            assert!(
                matches!(r.child.try_wait(), Ok(None)),
                "redis-server exited (could it not load the file?)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Loading happens before the port opens, but wait out the LOADING state anyway.
        let mut c = r.client();
        while q(&mut c, &["PING"]).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    fn client(&self) -> Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .expect("connect to redis-server")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// flowkv working in `dir` (loading its `dump.rdb` at start-up).
fn flowkv_in(dir: &Path) -> Server {
    flowkv_with(dir, &[])
}

/// [`flowkv_in`] with extra `--directive value` arguments.
fn flowkv_with(dir: &Path, extra: &[&str]) -> Server {
    let dir = dir.to_str().expect("utf-8 path");
    let mut args = vec!["--dir", dir, "--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn run<A: AsRef<[u8]> + std::fmt::Debug>(c: &mut Connection, args: &[A]) {
    q(c, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

/// Fills databases 0, 1 and 5 with every type in every encoding Redis 7.0 has: int, embstr,
/// raw and compressible strings; listpack and hashtable hashes; small and multi-node lists;
/// intset and hashtable sets; listpack and skiplist sorted sets; keys with TTLs.
fn build_dataset(c: &mut Connection) {
    run(c, &["SELECT", "0"]);
    run(c, &["SET", "s:int", "12345"]);
    run(c, &["SET", "s:neg", "-42"]);
    run(c, &["SET", "s:bigint", "12345678901234"]);
    run(c, &["SET", "s:embstr", "hello world"]);
    run(c, &["SET", "s:empty", ""]);
    let raw: String = (0..200)
        .map(|i| char::from(b'!' + (i * 7 % 90) as u8))
        .collect();
    run(c, &["SET", "s:raw", &raw]);
    run(c, &["SET", "s:compressible", &"abcd".repeat(500)]);
    q(c, &[&b"SET"[..], b"s:binary", b"\x00\x01\xff\xfe\r\n"]).expect("SET binary");
    run(c, &["SET", "s:ttl", "v", "PX", "500000"]);
    run(c, &["HSET", "h:small", "a", "1", "b", "two", "c", "-300"]);
    for i in 0..200 {
        run(
            c,
            &[
                "HSET",
                "h:big",
                &format!("field:{i}"),
                &format!("value:{}", i * i),
            ],
        );
    }
    run(c, &["HSET", "h:longvalue", "f", &"x".repeat(100)]);
    run(c, &["PEXPIRE", "h:small", "600000"]);
    run(
        c,
        &["RPUSH", "l:small", "a", "b", "c", "1", "2", "-3", "70000"],
    );
    for i in 0..3000 {
        run(
            c,
            &[
                "RPUSH",
                "l:big",
                &format!("element-{i}-{}", "y".repeat(i % 50)),
            ],
        );
    }
    run(
        c,
        &["RPUSH", "l:hugeelement", "head", &"z".repeat(20000), "tail"],
    );
    run(
        c,
        &[
            "SADD",
            "set:intset",
            "1",
            "2",
            "3",
            "-100",
            "100000",
            "9999999999",
        ],
    );
    run(c, &["SADD", "set:table", "a", "b", "c", "1"]);
    let many: Vec<String> = (0..600).map(|i| (i * 3).to_string()).collect();
    let mut sadd = vec!["SADD".to_string(), "set:bigintset".into()];
    sadd.extend(many);
    run(c, &sadd);
    run(
        c,
        &[
            "ZADD", "z:small", "1", "a", "2.5", "b", "-inf", "c", "+inf", "d", "0.1", "e",
        ],
    );
    run(
        c,
        &["ZADD", "z:small", "-7", "f", "1e300", "g", "3.14159", "h"],
    );
    for i in 0..200 {
        run(
            c,
            &[
                "ZADD",
                "z:big",
                &format!("{}", f64::from(i) / 7.0),
                &format!("m{i}"),
            ],
        );
    }
    run(c, &["ZADD", "z:longmember", "1", &"m".repeat(100)]);
    run(c, &["PEXPIRE", "z:big", "700000"]);
    build_streams(c);
    run(c, &["SELECT", "1"]);
    run(c, &["SET", "db1:key", "one"]);
    run(c, &["RPUSH", "db1:list", "x"]);
    run(c, &["SELECT", "5"]);
    run(c, &["HSET", "db5:hash", "k", "v"]);
    run(c, &["SET", "db5:ttl", "soon", "EX", "900"]);
    run(c, &["SELECT", "0"]);
}

/// Streams with several nodes, tombstones, entries with and without their node's master
/// fields, consumer groups with pending entries and consumers, and an emptied stream.
fn build_streams(c: &mut Connection) {
    for i in 1..=250 {
        let id = format!("{}-{}", 1000 + i / 3, i % 3);
        if i % 4 == 0 {
            run(c, &["XADD", "x:main", &id, "other", &i.to_string()]);
        } else {
            run(c, &["XADD", "x:main", &id, "f", &i.to_string(), "g", "v"]);
        }
    }
    for i in (5..250).step_by(9) {
        run(
            c,
            &["XDEL", "x:main", &format!("{}-{}", 1000 + i / 3, i % 3)],
        );
    }
    run(c, &["XGROUP", "CREATE", "x:main", "g1", "0"]);
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "10",
            "STREAMS",
            "x:main",
            ">",
        ],
    );
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "5",
            "STREAMS",
            "x:main",
            ">",
        ],
    );
    run(c, &["XACK", "x:main", "g1", "1000-1", "1001-0"]);
    run(c, &["XGROUP", "CREATE", "x:main", "g2", "$"]);
    run(c, &["XGROUP", "CREATECONSUMER", "x:main", "g2", "carol"]);
    run(c, &["XADD", "x:emptied", "5-5", "a", "b"]);
    run(c, &["XDEL", "x:emptied", "5-5"]);
}

/// A reply flattened to strings (integers in decimal), for comparing streams' metadata.
fn flat(v: Value, out: &mut Vec<Vec<u8>>) {
    match v {
        Value::Array(items) => items.into_iter().for_each(|i| flat(i, out)),
        Value::Int(n) => out.push(n.to_string().into_bytes()),
        Value::Nil => out.push(b"(nil)".to_vec()),
        other => out.push(redis::from_redis_value::<Vec<u8>>(&other).expect("bulk")),
    }
}

/// A stream's entries, counters, groups and pending entries (without idle times).
fn stream_view(c: &mut Connection, k: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    flat(
        q(c, &[&b"XRANGE"[..], k, b"-", b"+"]).expect("XRANGE"),
        &mut out,
    );
    let info = q(c, &[&b"XINFO"[..], b"STREAM", k]).expect("XINFO");
    let Value::Array(info) = info else {
        panic!("XINFO STREAM: {info:?}")
    };
    for pair in info.chunks(2) {
        let name: String = redis::from_redis_value(&pair[0]).expect("field name");
        if [
            "length",
            "last-generated-id",
            "max-deleted-entry-id",
            "entries-added",
            "recorded-first-entry-id",
            "groups",
        ]
        .contains(&name.as_str())
        {
            flat(pair[0].clone(), &mut out);
            flat(pair[1].clone(), &mut out);
        }
    }
    flat(
        q(c, &[&b"XINFO"[..], b"GROUPS", k]).expect("XINFO GROUPS"),
        &mut out,
    );
    for g in [&b"g1"[..], b"g2"] {
        if let Ok(Value::Array(pending)) = q(c, &[&b"XPENDING"[..], k, g, b"-", b"+", b"1000"]) {
            for p in pending {
                let Value::Array(mut f) = p else {
                    panic!("XPENDING entry")
                };
                f.remove(2); // idle time
                flat(Value::Array(f), &mut out);
            }
        }
        if let Ok(Value::Array(consumers)) = q(c, &[&b"XINFO"[..], b"CONSUMERS", k, g]) {
            for cons in consumers {
                let mut fields = Vec::new();
                flat(cons, &mut fields);
                // name and pending count; idle/inactive times differ between runs.
                out.extend(
                    fields
                        .chunks(2)
                        .filter(|p| p[0] == b"name" || p[0] == b"pending")
                        .flatten()
                        .cloned(),
                );
            }
        }
    }
    out
}

/// One key as both servers can report it.
#[derive(Debug, PartialEq)]
struct KeyView {
    kind: String,
    encoding: String,
    value: Vec<Vec<u8>>,
    /// Remaining TTL in ms, -1 without one.
    pttl: i64,
}

fn strings(v: Value) -> Vec<Vec<u8>> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| redis::from_redis_value::<Vec<u8>>(&i).expect("bulk"))
            .collect(),
        Value::BulkString(b) => vec![b],
        other => panic!("unexpected reply {other:?}"),
    }
}

fn status(c: &mut Connection, args: &[&[u8]]) -> String {
    match q(c, args) {
        Ok(Value::SimpleString(s)) => s,
        Ok(Value::BulkString(b)) => String::from_utf8(b).expect("utf-8"),
        other => panic!("{args:?}: {other:?}"),
    }
}

/// Every key of the dataset's databases with its type, encoding, value and TTL. Hash
/// fields and set members are sorted, so storage order does not matter.
fn snapshot(c: &mut Connection) -> BTreeMap<(i64, Vec<u8>), KeyView> {
    let mut out = BTreeMap::new();
    for db in DBS {
        run(c, &["SELECT", &db.to_string()]);
        let keys = strings(q(c, &["KEYS", "*"]).expect("KEYS"));
        for key in keys {
            let k = key.as_slice();
            let kind = status(c, &[b"TYPE", k]);
            let encoding = status(c, &[b"OBJECT", b"ENCODING", k]);
            let mut value = match kind.as_str() {
                "string" => strings(q(c, &[&b"GET"[..], k]).expect("GET")),
                "list" => strings(q(c, &[&b"LRANGE"[..], k, b"0", b"-1"]).expect("LRANGE")),
                "set" => strings(q(c, &[&b"SMEMBERS"[..], k]).expect("SMEMBERS")),
                "hash" => {
                    let flat = strings(q(c, &[&b"HGETALL"[..], k]).expect("HGETALL"));
                    flat.chunks(2)
                        .map(|p| [p[0].clone(), b"=".to_vec(), p[1].clone()].concat())
                        .collect()
                }
                "zset" => {
                    strings(q(c, &[&b"ZRANGE"[..], k, b"0", b"-1", b"WITHSCORES"]).expect("ZRANGE"))
                }
                "stream" => stream_view(c, k),
                other => panic!("unexpected type {other}"),
            };
            if matches!(kind.as_str(), "set" | "hash") {
                value.sort();
            }
            let pttl = int(c, &[&b"PTTL"[..], k]);
            out.insert(
                (db, key),
                KeyView {
                    kind,
                    encoding,
                    value,
                    pttl,
                },
            );
        }
    }
    run(c, &["SELECT", "0"]);
    out
}

/// Asserts two snapshots hold the same keys, types, encodings and values, and TTLs within
/// the time the test took.
fn assert_same(
    ours: &BTreeMap<(i64, Vec<u8>), KeyView>,
    theirs: &BTreeMap<(i64, Vec<u8>), KeyView>,
) {
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "key sets differ"
    );
    for (k, a) in ours {
        let b = &theirs[k];
        let name = String::from_utf8_lossy(&k.1);
        assert_eq!(
            (&a.kind, &a.encoding),
            (&b.kind, &b.encoding),
            "type/encoding of {name}"
        );
        assert_eq!(a.value, b.value, "value of {name}");
        assert_eq!(a.pttl == -1, b.pttl == -1, "TTL presence of {name}");
        assert!(
            (a.pttl - b.pttl).abs() < 20_000,
            "TTL of {name}: {} vs {}",
            a.pttl,
            b.pttl
        );
    }
}

#[test]
fn redis_dump_loads_here_with_identical_contents() {
    let dir = temp_dir("from-redis");
    let Some(redis) = Redis::start(&dir) else {
        return;
    };
    let mut them = redis.client();
    build_dataset(&mut them);
    ok(&mut them, &["SAVE"]);
    let want = snapshot(&mut them);
    assert!(want.len() > 20);
    let srv = flowkv_in(&dir);
    let mut us = srv.client();
    assert_same(&snapshot(&mut us), &want);
    assert_eq!(
        int(&mut us, &["DBSIZE"]),
        want.keys().filter(|k| k.0 == 0).count() as i64
    );
    // The load counts as a save: nothing changed since.
    let info = status(&mut us, &[b"INFO", b"persistence"]);
    assert!(info.contains("rdb_changes_since_last_save:0\r\n"), "{info}");
    assert!(
        info.contains(&format!("rdb_last_load_keys_loaded:{}\r\n", want.len())),
        "{info}"
    );
}

#[test]
fn our_dump_loads_in_redis_and_passes_its_checker() {
    let dir = temp_dir("to-redis");
    let want = {
        let srv = flowkv_in(&dir);
        let mut us = srv.client();
        build_dataset(&mut us);
        ok(&mut us, &["SAVE"]);
        snapshot(&mut us)
    };
    let file = dir.join("dump.rdb");
    assert!(file.exists());
    if let Ok(out) = Command::new("redis-check-rdb").arg(&file).output() {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && text.contains("RDB looks OK"),
            "{text}"
        );
    }
    let Some(redis) = Redis::start(&dir) else {
        return;
    };
    assert_same(&want, &snapshot(&mut redis.client()));
}

#[test]
fn dump_payloads_restore_on_the_other_side() {
    let dir = temp_dir("payloads");
    let Some(redis) = Redis::start(&dir) else {
        return;
    };
    let srv = flowkv_in(&dir);
    let (mut us, mut them) = (srv.client(), redis.client());
    build_dataset(&mut them);
    build_dataset(&mut us);
    let want = snapshot(&mut them);
    // Both ways: their payloads replace our keys, ours replace theirs.
    copy_by_dump(&mut them, &mut us, &want);
    copy_by_dump(&mut us, &mut them, &want);
    assert_same(&snapshot(&mut us), &want);
    assert_same(&snapshot(&mut them), &want);
}

/// DUMPs every key of `keys` on `from` and RESTOREs it (REPLACE, same TTL) on `to`.
fn copy_by_dump(
    from: &mut Connection,
    to: &mut Connection,
    keys: &BTreeMap<(i64, Vec<u8>), KeyView>,
) {
    for ((db, key), view) in keys {
        run(from, &["SELECT", &db.to_string()]);
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(from).expect("DUMP");
        run(to, &["SELECT", &db.to_string()]);
        let ttl = view.pttl.max(0).to_string();
        ok(
            to,
            &[&b"RESTORE"[..], key, ttl.as_bytes(), &payload, b"REPLACE"],
        );
    }
    run(from, &["SELECT", "0"]);
    run(to, &["SELECT", "0"]);
}

/// An INFO persistence field.
fn persistence_field(c: &mut Connection, name: &str) -> String {
    let info = status(c, &[b"INFO", b"persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
}

/// Waits for a running background save to end.
fn wait_bgsave(c: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while persistence_field(c, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn data_survives_a_restart() {
    let dir = temp_dir("restart");
    let want = {
        let srv = flowkv_in(&dir);
        let mut c = srv.client();
        build_dataset(&mut c);
        assert_eq!(
            q(&mut c, &["BGSAVE"]),
            Ok(Value::SimpleString("Background saving started".into()))
        );
        wait_bgsave(&mut c);
        assert_eq!(persistence_field(&mut c, "rdb_last_bgsave_status"), "ok");
        snapshot(&mut c)
    };
    let srv = flowkv_in(&dir);
    assert_same(&snapshot(&mut srv.client()), &want);
}

#[test]
fn debug_reload_keeps_everything() {
    let dir = temp_dir("reload");
    let srv = flowkv_in(&dir);
    let mut c = srv.client();
    build_dataset(&mut c);
    let before = snapshot(&mut c);
    let digest = status(&mut c, &[b"DEBUG", b"DIGEST"]);
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_same(&snapshot(&mut c), &before);
    assert_eq!(status(&mut c, &[b"DEBUG", b"DIGEST"]), digest);
    // NOSAVE reloads the file as it is; MERGE NOFLUSH adds its keys back.
    run(&mut c, &["SET", "later", "x"]);
    ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
    assert_eq!(int(&mut c, &["EXISTS", "later"]), 0);
    run(&mut c, &["SET", "later", "x"]);
    ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"]);
    assert_eq!(int(&mut c, &["EXISTS", "later", "s:int"]), 2);
    assert_eq!(
        err(&mut c, &["DEBUG", "RELOAD", "BOGUS"]),
        "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
    );
}

#[test]
fn save_lastsave_and_info_persistence() {
    let dir = temp_dir("info");
    let srv = flowkv_with(&dir, &["--enable-protected-configs", "yes"]);
    let mut c = srv.client();
    let field = persistence_field;
    assert_eq!(field(&mut c, "rdb_saves"), "0");
    run(&mut c, &["SET", "a", "1"]);
    run(&mut c, &["RPUSH", "l", "1", "2"]);
    assert_eq!(field(&mut c, "rdb_changes_since_last_save"), "3");
    let before = int(&mut c, &["LASTSAVE"]);
    std::thread::sleep(Duration::from_millis(1100));
    ok(&mut c, &["SAVE"]);
    assert!(int(&mut c, &["LASTSAVE"]) > before);
    assert_eq!(field(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(field(&mut c, "rdb_saves"), "1");
    assert_eq!(field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(field(&mut c, "rdb_bgsave_in_progress"), "0");
    assert_eq!(
        q(&mut c, &["BGSAVE", "SCHEDULE"]),
        Ok(Value::SimpleString("Background saving started".into()))
    );
    wait_bgsave(&mut c);
    assert_eq!(field(&mut c, "rdb_saves"), "2");
    assert_eq!(err(&mut c, &["BGSAVE", "NOW"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["SAVE", "x"]),
        "ERR wrong number of arguments for 'save' command"
    );
    // Inside a transaction (whose EXEC already holds key locks) saving and reloading work.
    ok(&mut c, &["MULTI"]);
    for cmd in [
        &["SET", "in-multi", "1"][..],
        &["BGSAVE"],
        &["DEBUG", "RELOAD"],
        &["GET", "in-multi"],
    ] {
        assert_eq!(q(&mut c, cmd), Ok(Value::SimpleString("QUEUED".into())));
    }
    let replies: Vec<Value> = redis::cmd("EXEC").query(&mut c).expect("EXEC");
    assert_eq!(replies.len(), 4);
    assert_eq!(replies[3], Value::BulkString(b"1".to_vec()));
    wait_bgsave(&mut c);
    // The temp file is renamed into place: only dump.rdb is left.
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".rdb"))
        .collect();
    assert_eq!(files, ["dump.rdb"]);
    // A dbfilename set at run time is used by the next save.
    ok(&mut c, &["CONFIG", "SET", "dbfilename", "other.rdb"]);
    ok(&mut c, &["SAVE"]);
    assert!(dir.join("other.rdb").exists());
}

/// BGSAVE writes the dataset as of the command, while the server keeps taking writes that
/// overwrite, delete and add keys: none of those reach the file, everything before does.
#[test]
fn bgsave_is_point_in_time_under_concurrent_writes() {
    const N: usize = 300_000;
    let dir = temp_dir("bgsave-pit");
    let srv = flowkv_in(&dir);
    let mut c = srv.client();
    for chunk in (0..N).collect::<Vec<_>>().chunks(10_000) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("SET")
                .arg(format!("k{i}"))
                .arg(format!("v{i}"))
                .ignore();
        }
        p.cmd("RPUSH").arg("list").arg(chunk[0]).ignore();
        p.query::<()>(&mut c).unwrap();
    }
    run(&mut c, &["HSET", "h", "f", "old"]);
    let mut w = srv.client();
    assert_eq!(
        q(&mut c, &["BGSAVE"]),
        Ok(Value::SimpleString("Background saving started".into()))
    );
    // Writes that all return after BGSAVE started.
    let mut p = redis::pipe();
    for i in (0..N).step_by(7) {
        p.cmd("SET").arg(format!("k{i}")).arg("new").ignore();
        p.cmd("DEL").arg(format!("k{}", i + 1)).ignore();
        p.cmd("SET").arg(format!("extra{i}")).arg("x").ignore();
        p.cmd("RPUSH").arg("list").arg("more").ignore();
    }
    p.cmd("HSET").arg("h").arg("f").arg("new").ignore();
    p.cmd("FLUSHDB").ignore();
    p.query::<()>(&mut w).unwrap();
    wait_bgsave(&mut c);
    assert_eq!(persistence_field(&mut c, "rdb_last_bgsave_status"), "ok");
    ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
    assert_eq!(int(&mut c, &["DBSIZE"]), N as i64 + 2);
    assert_eq!(int(&mut c, &["LLEN", "list"]), N.div_ceil(10_000) as i64);
    assert_eq!(bulk(&mut c, &["HGET", "h", "f"]).as_deref(), Some("old"));
    for chunk in (0..N).collect::<Vec<_>>().chunks(10_000) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("GET").arg(format!("k{i}"));
        }
        let got: Vec<String> = p.query(&mut c).unwrap();
        for (i, v) in chunk.iter().zip(got) {
            assert_eq!(v, format!("v{i}"));
        }
    }
    // Only the renamed file is left.
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".rdb"))
        .collect();
    assert_eq!(files, ["dump.rdb"]);
}

/// The `save` rules start background saves by themselves once enough changes and time
/// have passed.
#[test]
fn save_rules_trigger_background_saves() {
    let dir = temp_dir("save-rules");
    let srv = flowkv_with(&dir, &["--save", "1 3"]);
    let mut c = srv.client();
    run(&mut c, &["SET", "a", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    // One change is not enough for "1 3".
    assert_eq!(persistence_field(&mut c, "rdb_saves"), "0");
    run(&mut c, &["MSET", "b", "2", "c", "3"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while persistence_field(&mut c, "rdb_saves") == "0" {
        assert!(Instant::now() < deadline, "the save rule never fired");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_bgsave(&mut c);
    assert_eq!(
        persistence_field(&mut c, "rdb_changes_since_last_save"),
        "0"
    );
    ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
    assert_eq!(int(&mut c, &["DBSIZE"]), 3);
}

#[test]
fn restore_checks_and_errors_match_redis() {
    let dir = temp_dir("restore");
    let srv = flowkv_in(&dir);
    let mut c = srv.client();
    run(&mut c, &["SET", "foo", "bar"]);
    let payload: Vec<u8> = redis::cmd("DUMP").arg("foo").query(&mut c).unwrap();
    // What redis-server 7.0.15 answers for `SET foo bar` / `DUMP foo`.
    assert_eq!(
        payload,
        b"\x00\x03bar\x0a\x00\xe6\xbe\x49\x60\xee\x66\xfd\x17"
    );
    assert_eq!(q(&mut c, &["DUMP", "missing"]), Ok(Value::Nil));
    let p = payload.as_slice();
    let e = |c: &mut Connection, args: &[&[u8]]| err(c, args);
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"foo", b"0", p]),
        "BUSYKEY Target key name already exists."
    );
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"-1", p]),
        "ERR Invalid TTL value, must be >= 0"
    );
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"x", p]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"0", b"xx"]),
        "ERR DUMP payload version or checksum are wrong"
    );
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"0", p, b"bogus"]),
        "ERR syntax error"
    );
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"0", p, b"IDLETIME", b"-1"]),
        "ERR Invalid IDLETIME value, must be >= 0"
    );
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"0", p, b"FREQ", b"256"]),
        "ERR Invalid FREQ value, must be >= 0 and <= 255"
    );
    assert_eq!(
        e(
            &mut c,
            &[b"RESTORE", b"k", b"0", p, b"FREQ", b"1", b"IDLETIME", b"1"]
        ),
        "ERR syntax error"
    );
    // A flipped payload byte fails the checksum; a valid checksum over bad data is "Bad data
    // format"; a newer RDB version is refused.
    let mut flipped = payload.clone();
    flipped[2] ^= 1;
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"0", &flipped]),
        "ERR DUMP payload version or checksum are wrong"
    );
    let bad = with_trailer(b"\x00\x05ab", 10);
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"0", &bad]),
        "ERR Bad data format"
    );
    let stream = with_trailer(b"\x13\x00", 10);
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"0", &stream]),
        "ERR Bad data format"
    );
    let newer = with_trailer(b"\x00\x03bar", 11);
    assert_eq!(
        e(&mut c, &[b"RESTORE", b"k", b"0", &newer]),
        "ERR DUMP payload version or checksum are wrong"
    );
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 0);
    // TTLs: relative, absolute, already expired (with REPLACE the old key goes).
    ok(&mut c, &[&b"RESTORE"[..], b"k", b"5000", p]);
    assert!((3000..=5000).contains(&int(&mut c, &["PTTL", "k"])));
    let at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000)
        .to_string();
    ok(
        &mut c,
        &[
            &b"RESTORE"[..],
            b"k",
            at.as_bytes(),
            p,
            b"REPLACE",
            b"ABSTTL",
        ],
    );
    assert!((50_000..=60_000).contains(&int(&mut c, &["PTTL", "k"])));
    ok(
        &mut c,
        &[&b"RESTORE"[..], b"k", b"1", p, b"REPLACE", b"ABSTTL"],
    );
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 0);
    // IDLETIME sets the LRU clock; FREQ the LFU counter.
    ok(
        &mut c,
        &[&b"RESTORE"[..], b"idle", b"0", p, b"IDLETIME", b"1000"],
    );
    assert!((1000..=1010).contains(&int(&mut c, &["OBJECT", "IDLETIME", "idle"])));
    ok(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    );
    ok(
        &mut c,
        &[&b"RESTORE"[..], b"freq", b"0", p, b"FREQ", b"100"],
    );
    assert_eq!(int(&mut c, &["OBJECT", "FREQ", "freq"]), 100);
}

/// A DUMP payload: `body`, RDB version `version` and the CRC64 of both.
fn with_trailer(body: &[u8], version: u16) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    let crc = flowkv_persist::format::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// Starts flowkv on a dump expected to be refused; returns its exit status and log.
fn start_expecting_failure(dir: &Path) -> (std::process::ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flowkv-server"))
        .args([
            "--port",
            &common::free_port().to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run flowkv-server");
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status, log)
}

#[test]
fn corrupt_or_truncated_files_are_refused() {
    let dir = temp_dir("corrupt");
    {
        let srv = flowkv_in(&dir);
        let mut c = srv.client();
        build_dataset(&mut c);
        ok(&mut c, &["SAVE"]);
    }
    let file = dir.join("dump.rdb");
    let good = std::fs::read(&file).unwrap();
    let mut flipped = good.clone();
    let mid = good.len() / 2;
    flipped[mid] ^= 0x40;
    for (bad, why) in [
        (flipped, "checksum"),
        (good[..good.len() - 20].to_vec(), "truncated"),
        (b"REDIS0011\xff".to_vec(), "version"),
    ] {
        std::fs::write(&file, &bad).unwrap();
        let (status, log) = start_expecting_failure(&dir);
        assert!(!status.success(), "{why}: started on a bad file");
        assert!(log.contains("Fatal error loading the DB"), "{why}: {log}");
    }
    // A file with its checksum disabled (zero) loads.
    let mut unchecked = good.clone();
    let n = unchecked.len();
    unchecked[n - 8..].fill(0);
    std::fs::write(&file, &unchecked).unwrap();
    let srv = flowkv_in(&dir);
    assert_eq!(
        q(&mut srv.client(), &["GET", "s:int"]),
        Ok(Value::BulkString(b"12345".to_vec()))
    );
}

#[test]
fn checksum_and_compression_settings() {
    let dir = temp_dir("settings");
    let srv = flowkv_in(&dir);
    let mut c = srv.client();
    run(&mut c, &["SET", "k", &"abcd".repeat(500)]);
    ok(&mut c, &["SAVE"]);
    let compressed = std::fs::metadata(dir.join("dump.rdb")).unwrap().len();
    ok(&mut c, &["CONFIG", "SET", "rdbcompression", "no"]);
    ok(&mut c, &["SAVE"]);
    let plain = std::fs::read(dir.join("dump.rdb")).unwrap();
    assert!(
        compressed < 200 && plain.len() > 2000,
        "{compressed} vs {}",
        plain.len()
    );
    assert_ne!(&plain[plain.len() - 8..], &[0u8; 8]);
    // DUMP follows rdbcompression too, and DEBUG OBJECT reports the serialized length.
    let payload: Vec<u8> = redis::cmd("DUMP").arg("k").query(&mut c).unwrap();
    assert_eq!(payload.len(), 1 + 2 + 2000 + 10);
    let obj = status(&mut c, &[b"DEBUG", b"OBJECT", b"k"]);
    assert!(obj.contains("serializedlength:2002"), "{obj}");
    // `rdbchecksum no` (immutable, so at start-up) writes a zero checksum.
    drop(c);
    drop(srv);
    let srv = flowkv_with(&dir, &["--rdbchecksum", "no"]);
    ok(&mut srv.client(), &["SAVE"]);
    let unchecked = std::fs::read(dir.join("dump.rdb")).unwrap();
    assert_eq!(&unchecked[unchecked.len() - 8..], &[0u8; 8]);
}

/// A library both servers accept.
const LIBRARY: &str = "#!lua name=lib1\nredis.register_function('answer', function(keys, args) return 42 end)\nredis.register_function{function_name='echo_ro', callback=function(keys, args) return args[1] end, flags={'no-writes'}}";

/// Checks that the server behind `c` has [`LIBRARY`] loaded and callable.
fn assert_library(c: &mut Connection) {
    assert_eq!(int(c, &["FCALL", "answer", "0"]), 42);
    assert_eq!(
        bulk(c, &["FCALL_RO", "echo_ro", "0", "hi"]),
        Some("hi".into())
    );
}

#[test]
fn function_libraries_move_between_redis_and_flowkv() {
    // Redis → flowkv.
    let dir = temp_dir("functions-from-redis");
    let Some(redis) = Redis::start(&dir) else {
        return;
    };
    let mut them = redis.client();
    run(&mut them, &["FUNCTION", "LOAD", LIBRARY]);
    run(&mut them, &["SET", "k", "v"]);
    ok(&mut them, &["SAVE"]);
    drop(redis);
    let srv = flowkv_in(&dir);
    let mut us = srv.client();
    assert_library(&mut us);
    assert_eq!(bulk(&mut us, &["GET", "k"]), Some("v".into()));
    drop(srv);

    // flowkv → Redis, through SAVE and through BGSAVE.
    for bg in [false, true] {
        let dir = temp_dir(&format!("functions-to-redis-{bg}"));
        {
            let srv = flowkv_in(&dir);
            let mut us = srv.client();
            run(&mut us, &["FUNCTION", "LOAD", LIBRARY]);
            if bg {
                run(&mut us, &["BGSAVE"]);
                wait_bgsave(&mut us);
            } else {
                ok(&mut us, &["SAVE"]);
            }
        }
        let Some(redis) = Redis::start(&dir) else {
            return;
        };
        assert_library(&mut redis.client());
    }
}

#[test]
fn function_libraries_survive_debug_reload_and_restart() {
    let dir = temp_dir("functions-reload");
    let srv = flowkv_in(&dir);
    let mut c = srv.client();
    run(&mut c, &["FUNCTION", "LOAD", LIBRARY]);
    ok(&mut c, &["DEBUG", "RELOAD"]);
    assert_library(&mut c);
    // A library deleted since the last save comes back with NOSAVE (the file's set).
    ok(&mut c, &["FUNCTION", "DELETE", "lib1"]);
    ok(&mut c, &["DEBUG", "RELOAD", "NOSAVE"]);
    assert_library(&mut c);
    // Without a flush the file's library meets the loaded one: only MERGE may replace it.
    assert_eq!(
        err(&mut c, &["DEBUG", "RELOAD", "NOFLUSH"]),
        "ERR Error trying to load the RDB dump"
    );
    ok(&mut c, &["DEBUG", "RELOAD", "NOFLUSH", "MERGE"]);
    assert_library(&mut c);
    ok(&mut c, &["SAVE"]);
    drop(c);
    drop(srv);
    let srv = flowkv_in(&dir);
    assert_library(&mut srv.client());
}

/// A flowkv process started without waiting for it to be ready (the harness waits for
/// PING, which answers -LOADING while the dataset loads).
struct Loading {
    child: Child,
    port: u16,
}

impl Drop for Loading {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn clients_are_served_loading_errors_while_the_dataset_loads() {
    const KEYS: usize = 300_000;
    let dir = temp_dir("loading");
    {
        let srv = flowkv_in(&dir);
        let mut raw = srv.raw();
        // Pipelined MSETs of 1000 keys each, then SAVE.
        let batches = KEYS / 1000;
        let mut buf = Vec::new();
        for b in 0..batches {
            buf.extend_from_slice(b"*2001\r\n$4\r\nMSET\r\n");
            for i in 0..1000 {
                let k = format!("key:{}", b * 1000 + i);
                buf.extend_from_slice(format!("${}\r\n{k}\r\n$5\r\nvalue\r\n", k.len()).as_bytes());
            }
        }
        raw.send(&buf);
        for _ in 0..batches {
            raw.expect("+OK\r\n");
        }
        let mut c = srv.client();
        ok(&mut c, &["SAVE"]);
    }
    let size = std::fs::metadata(dir.join("dump.rdb")).unwrap().len();
    let port = common::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_flowkv-server"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(&dir)
        .args(["--save", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn flowkv-server");
    let server = Loading { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", server.port)) {
            break s;
        }
        assert!(Instant::now() < deadline, "flowkv did not listen");
        std::thread::sleep(Duration::from_millis(5));
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut raw = common::Raw { s: stream };
    // The port opens before the load: commands not flagged `loading` are refused, INFO
    // reports the progress, MULTI is doomed by a refused command.
    raw.cmd(&[b"GET", b"key:1"]);
    raw.expect("-LOADING Redis is loading the dataset in memory\r\n");
    raw.cmd(&[b"INFO", b"persistence"]);
    let len: usize = raw.line().trim().trim_start_matches('$').parse().unwrap();
    let info = String::from_utf8(raw.read_n(len + 2)).unwrap();
    assert!(info.contains("\r\nloading:1\r\n"), "{info}");
    assert!(info.contains("\r\nasync_loading:0\r\n"), "{info}");
    assert!(
        info.contains(&format!("\r\nloading_total_bytes:{size}\r\n")),
        "{info}"
    );
    for field in [
        "loading_start_time:",
        "loading_rdb_used_mem:",
        "loading_loaded_bytes:",
        "loading_loaded_perc:",
        "loading_eta_seconds:",
    ] {
        assert!(info.contains(&format!("\r\n{field}")), "{field} in {info}");
    }
    raw.cmd(&[b"MULTI"]);
    raw.expect("+OK\r\n");
    raw.cmd(&[b"SET", b"x", b"1"]);
    raw.expect("-LOADING Redis is loading the dataset in memory\r\n");
    raw.cmd(&[b"EXEC"]);
    raw.expect("-EXECABORT Transaction discarded because of previous errors.\r\n");
    raw.cmd(&[b"CONFIG", b"GET", b"maxmemory"]);
    raw.expect("*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    // Once loaded, everything is there and the progress fields are gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        raw.cmd(&[b"PING"]);
        if raw.line() == "+PONG\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "load did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port))
        .and_then(|c| c.get_connection())
        .unwrap();
    assert_eq!(int(&mut c, &["DBSIZE"]), KEYS as i64);
    assert_eq!(persistence_field(&mut c, "loading"), "0");
    let info = status(&mut c, &[b"INFO", b"persistence"]);
    assert!(!info.contains("loading_total_bytes"), "{info}");
}

/// Redis's refusal of writes after a failed background save.
const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

#[test]
fn a_failed_bgsave_stops_writes_until_a_save_succeeds() {
    let dir = temp_dir("misconf");
    let srv = flowkv_with(&dir, &["--save", "900 1"]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "before", "1"]);
    // A directory where the file should go: the save can't be renamed into place (even
    // for root, unlike a read-only directory).
    std::fs::create_dir_all(dir.join("dump.rdb").join("x")).unwrap();
    run(&mut c, &["BGSAVE"]);
    wait_bgsave(&mut c);
    assert_eq!(persistence_field(&mut c, "rdb_last_bgsave_status"), "err");
    assert_eq!(err(&mut c, &["SET", "k", "v"]), MISCONF);
    assert_eq!(err(&mut c, &["INCR", "n"]), MISCONF);
    assert_eq!(err(&mut c, &["PING"]), MISCONF);
    assert_eq!(bulk(&mut c, &["GET", "before"]), Some("1".into()));
    let script = err(&mut c, &["EVAL", "return redis.call('set','x','1')", "0"]);
    assert!(script.starts_with(MISCONF), "{script}");
    // A transaction with a refused write is doomed.
    let mut raw = srv.raw();
    raw.send(b"MULTI\r\nSET a b\r\nEXEC\r\n");
    raw.expect(&format!(
        "+OK\r\n-{MISCONF}\r\n-EXECABORT Transaction discarded because of previous errors.\r\n"
    ));
    // The setting lifts the refusal at once, and brings it back.
    ok(
        &mut c,
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"],
    );
    ok(&mut c, &["SET", "k", "v"]);
    ok(
        &mut c,
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"],
    );
    assert_eq!(err(&mut c, &["SET", "k", "v"]), MISCONF);
    // Without save rules, a failed save stops nothing (as Redis).
    ok(&mut c, &["CONFIG", "SET", "save", ""]);
    ok(&mut c, &["SET", "k", "v"]);
    ok(&mut c, &["CONFIG", "SET", "save", "900 1"]);
    // A successful save lifts it.
    std::fs::remove_dir_all(dir.join("dump.rdb")).unwrap();
    run(&mut c, &["BGSAVE"]);
    wait_bgsave(&mut c);
    assert_eq!(persistence_field(&mut c, "rdb_last_bgsave_status"), "ok");
    ok(&mut c, &["SET", "k", "v2"]);
    assert_eq!(q(&mut c, &["PING"]), Ok(Value::SimpleString("PONG".into())));
}
