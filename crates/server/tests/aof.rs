//! The append-only file end to end: every write type survives a `kill -9` through the AOF,
//! and so does every acknowledged write of a concurrent load killed mid-flight,
//! rewritten commands are what Redis 7.0 propagates, BGREWRITEAOF under load is consistent,
//! truncated files follow `aof-load-truncated`, and directories move between flowkv and
//! redis-server 7.0 both ways.

mod common;

use common::{int, ok, Server};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A directory that outlives each server started on it.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("flowkv-aof-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn aof_dir(&self) -> PathBuf {
        self.0.join("appendonlydir")
    }

    /// Every incremental file's bytes, in manifest order.
    fn incr_text(&self) -> String {
        let manifest = std::fs::read_to_string(self.aof_dir().join("appendonly.aof.manifest"))
            .expect("manifest");
        manifest
            .lines()
            .filter(|l| l.ends_with("type i"))
            .map(|l| {
                let name = l.split(' ').nth(1).unwrap();
                let bytes = std::fs::read(self.aof_dir().join(name)).unwrap();
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .collect()
    }

    /// The incremental files' commands, each as its words joined by spaces.
    fn incr_commands(&self) -> Vec<String> {
        let text = self.incr_text();
        let mut lines = text.split("\r\n");
        let mut cmds = Vec::new();
        while let Some(head) = lines.next() {
            let Some(n) = head.strip_prefix('*').and_then(|n| n.parse::<usize>().ok()) else {
                continue;
            };
            let words: Vec<&str> = (0..n).filter_map(|_| lines.nth(1)).collect();
            cmds.push(words.join(" "));
        }
        cmds
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "--dir",
        d,
        "--appendonly",
        "yes",
        "--enable-debug-command",
        "yes",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// GET of a key holding a number.
fn get_int(con: &mut redis::Connection, key: &str) -> i64 {
    let v: String = redis::cmd("GET").arg(key).query(con).unwrap();
    v.parse().unwrap()
}

fn wait_rewrite(con: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
        if info.contains("aof_rewrite_in_progress:0") {
            return;
        }
        assert!(Instant::now() < deadline, "rewrite did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One value of every type, written with commands Redis rewrites before propagating.
fn write_everything(con: &mut redis::Connection) {
    ok(con, &["SET", "s", "v"]);
    ok(con, &["SET", "sx", "v", "EX", "1000"]);
    ok(con, &["SETEX", "se", "1000", "v"]);
    int(con, &["RPUSH", "l", "a", "b", "c"]);
    int(con, &["SADD", "set", "1", "2", "3", "x"]);
    let _: Option<String> = redis::cmd("SPOP").arg("set").query(con).unwrap();
    int(con, &["ZADD", "z", "1", "a", "2", "b"]);
    int(con, &["HSET", "h", "f", "1", "g", "2"]);
    let _: String = redis::cmd("HINCRBYFLOAT")
        .arg("h")
        .arg("f")
        .arg("0.5")
        .query(con)
        .unwrap();
    let _: String = redis::cmd("INCRBYFLOAT")
        .arg("fl")
        .arg("1.5")
        .query(con)
        .unwrap();
    int(con, &["EXPIRE", "l", "1000"]);
    let _: String = redis::cmd("XADD")
        .arg("st")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(con)
        .unwrap();
    let _: redis::Value = redis::cmd("EVAL")
        .arg("redis.call('set','e1','1') redis.call('incr','e1') return 1")
        .arg(0)
        .query(con)
        .unwrap();
    ok(con, &["SELECT", "2"]);
    ok(con, &["SET", "db2", "x"]);
    ok(con, &["SELECT", "0"]);
}

/// The dataset as (db, key, type, DEBUG DIGEST-VALUE, has TTL).
fn snapshot(con: &mut redis::Connection) -> Vec<(u8, String, String, String, bool)> {
    let mut out = Vec::new();
    for db in [0u8, 2] {
        ok(con, &["SELECT", &db.to_string()]);
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(con).unwrap();
        keys.sort();
        for k in keys {
            let ty: String = redis::cmd("TYPE").arg(&k).query(con).unwrap();
            let digest: Vec<String> = redis::cmd("DEBUG")
                .arg("DIGEST-VALUE")
                .arg(&k)
                .query(con)
                .unwrap();
            let ttl = int(con, &["PTTL", &k]) > 0;
            out.push((db, k, ty, digest[0].clone(), ttl));
        }
    }
    ok(con, &["SELECT", "0"]);
    out
}

#[test]
fn every_write_type_survives_kill_9_with_appendfsync_always() {
    let dir = Dir::new("types");
    let before = {
        let s = start(&dir.0, &["--appendfsync", "always"]);
        let mut con = s.client();
        write_everything(&mut con);
        snapshot(&mut con)
        // Dropping the server kills it with SIGKILL.
    };
    assert_eq!(before.len(), 11, "{before:?}");
    let s = start(&dir.0, &[]);
    let mut con = s.client();
    assert_eq!(snapshot(&mut con), before);
}

#[test]
fn xreadgroup_is_logged_as_the_group_state_it_left() {
    let dir = Dir::new("xreadgroup");
    let s = start(&dir.0, &["--appendfsync", "always"]);
    let mut con = s.client();
    for id in ["1-0", "2-0", "3-0", "4-0"] {
        let _: String = redis::cmd("XADD")
            .arg("s")
            .arg(id)
            .arg("f")
            .arg("v")
            .query(&mut con)
            .unwrap();
    }
    ok(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]);
    let read = |con: &mut redis::Connection, words: &[&str]| {
        let _: redis::Value = redis::cmd("XREADGROUP").arg(words).query(con).unwrap();
    };
    read(
        &mut con,
        &["GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">"],
    );
    // History is re-delivered without being logged, as in Redis.
    read(&mut con, &["GROUP", "g", "c1", "STREAMS", "s", "0"]);
    read(
        &mut con,
        &["GROUP", "g", "c2", "NOACK", "STREAMS", "s", ">"],
    );
    let cmds = dir.incr_commands();
    assert!(
        !cmds.iter().any(|c| c.starts_with("XREADGROUP")),
        "{cmds:?}"
    );
    let claims: Vec<&String> = cmds.iter().filter(|c| c.starts_with("XCLAIM")).collect();
    assert_eq!(claims.len(), 2, "{cmds:?}");
    for (claim, id) in claims.iter().zip(["1-0", "2-0"]) {
        let w: Vec<&str> = claim.split(' ').collect();
        assert_eq!(w[..6], ["XCLAIM", "s", "g", "c1", "0", id], "{claim}");
        assert_eq!(w[6], "TIME");
        assert_eq!(
            w[8..],
            ["RETRYCOUNT", "1", "FORCE", "JUSTID", "LASTID", id],
            "{claim}"
        );
    }
    // One read, one transaction.
    let first = cmds.iter().position(|c| c.starts_with("XCLAIM")).unwrap();
    assert_eq!(cmds[first - 1], "MULTI");
    assert_eq!(cmds[first + 2], "EXEC");
    let tail: Vec<&str> = cmds[first + 3..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "MULTI",
            "XGROUP CREATECONSUMER s g c2",
            "XGROUP SETID s g 4-0 ENTRIESREAD 4",
            "EXEC"
        ]
    );
    // Replayed, the group is as it was: pending entries keep their delivery times.
    let before: redis::Value = redis::cmd("XPENDING")
        .arg(&["s", "g", "-", "+", "10"])
        .query(&mut con)
        .unwrap();
    drop(con);
    drop(s);
    let s = start(&dir.0, &[]);
    let mut con = s.client();
    let after: redis::Value = redis::cmd("XPENDING")
        .arg(&["s", "g", "-", "+", "10"])
        .query(&mut con)
        .unwrap();
    let idle = |v: &redis::Value| -> Vec<i64> {
        let redis::Value::Array(rows) = v else {
            panic!("{v:?}")
        };
        rows.iter()
            .map(|r| match r {
                redis::Value::Array(f) => redis::from_redis_value(&f[2]).unwrap(),
                _ => panic!("{r:?}"),
            })
            .collect()
    };
    assert_eq!(idle(&before).len(), 2);
    assert!(idle(&after).iter().all(|&ms| ms < 60_000), "{after:?}");
    let groups: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
        .arg(&["GROUPS", "s"])
        .query(&mut con)
        .unwrap();
    let text = format!("{groups:?}");
    assert!(
        text.contains("\"4-0\"") && text.contains("int(4)"),
        "{text}"
    );
}

#[test]
fn multi_key_pops_are_logged_as_the_pops_they_did() {
    let dir = Dir::new("mpop");
    let s = start(&dir.0, &["--appendfsync", "always"]);
    let mut con = s.client();
    let run = |con: &mut redis::Connection, args: &[&str]| {
        let _: redis::Value = redis::cmd(args[0]).arg(&args[1..]).query(con).unwrap();
    };
    run(&mut con, &["RPUSH", "l2", "a", "b", "c"]);
    run(
        &mut con,
        &["LMPOP", "2", "l1", "l2", "RIGHT", "COUNT", "10"],
    );
    run(&mut con, &["LMPOP", "2", "l1", "l2", "LEFT"]);
    run(&mut con, &["ZADD", "z", "1", "a", "2", "b"]);
    run(&mut con, &["ZMPOP", "2", "none", "z", "MAX", "COUNT", "5"]);
    run(&mut con, &["ZMPOP", "1", "z", "MIN"]);
    run(&mut con, &["RPUSH", "l3", "x", "y"]);
    run(&mut con, &["BLMPOP", "0", "1", "l3", "LEFT", "COUNT", "1"]);
    let cmds = dir.incr_commands();
    let pops: Vec<&str> = cmds
        .iter()
        .map(String::as_str)
        .filter(|c| !c.starts_with("RPUSH") && !c.starts_with("ZADD") && !c.starts_with("SELECT"))
        .collect();
    // What was popped, with the count it got; pops that found nothing leave no trace.
    assert_eq!(pops, ["RPOP l2 3", "ZPOPMAX z 2", "LPOP l3 1"]);
}

#[test]
fn rewritten_commands_are_what_redis_propagates() {
    let dir = Dir::new("content");
    let s = start(&dir.0, &["--appendfsync", "always"]);
    let mut con = s.client();
    write_everything(&mut con);
    let cmds = dir.incr_commands();
    let has = |prefix: &str| cmds.iter().any(|c| c.starts_with(prefix));
    assert!(has("SET sx v PXAT "), "{cmds:?}");
    assert!(has("SET se v PXAT "), "{cmds:?}");
    assert!(has("SREM set "), "{cmds:?}");
    assert!(!has("spop"), "{cmds:?}");
    assert!(has("HSET h f 1.5"), "{cmds:?}");
    assert!(has("SET fl 1.5 KEEPTTL"), "{cmds:?}");
    assert!(has("PEXPIREAT l "), "{cmds:?}");
    assert!(!has("expire") && !has("setex"), "{cmds:?}");
    assert!(
        !cmds.iter().any(|c| c.contains(" * ")),
        "XADD * kept: {cmds:?}"
    );
    let multi = cmds.iter().position(|c| c == "MULTI").expect("MULTI");
    assert_eq!(cmds[multi + 1], "set e1 1");
    assert_eq!(cmds[multi + 2], "incr e1");
    assert_eq!(cmds[multi + 3], "EXEC");
    assert!(!has("EVAL") && !has("eval"), "{cmds:?}");
    assert!(cmds.contains(&"SELECT 2".to_string()), "{cmds:?}");
}

#[test]
fn bgrewriteaof_under_concurrent_writes_is_consistent() {
    let dir = Dir::new("rewrite");
    let s = start(&dir.0, &["--appendfsync", "always"]);
    let port = s.port;
    let writer = std::thread::spawn(move || {
        let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        let mut last = 0;
        for i in 0..3000 {
            last = int(&mut con, &["INCR", "counter"]);
            int(&mut con, &["RPUSH", "log", &i.to_string()]);
        }
        last
    });
    let mut con = s.client();
    for i in 0..2000 {
        ok(&mut con, &["SET", &format!("k{i}"), &i.to_string()]);
    }
    for _ in 0..3 {
        let r: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
        assert!(r.contains("rewriting"), "{r}");
        wait_rewrite(&mut con);
    }
    let last = writer.join().unwrap();
    let before = snapshot(&mut con);
    drop(s);
    let manifest = std::fs::read_to_string(dir.aof_dir().join("appendonly.aof.manifest")).unwrap();
    assert!(
        manifest.starts_with("file appendonly.aof.4.base.rdb seq 4 type b\n"),
        "{manifest}"
    );
    assert_eq!(manifest.lines().count(), 2, "{manifest}");
    let s = start(&dir.0, &[]);
    let mut con = s.client();
    assert_eq!(get_int(&mut con, "counter"), last);
    assert_eq!(int(&mut con, &["LLEN", "log"]), 3000);
    assert_eq!(snapshot(&mut con), before);
}

#[test]
fn truncated_aof_follows_aof_load_truncated() {
    let dir = Dir::new("trunc");
    {
        let s = start(&dir.0, &["--appendfsync", "always"]);
        let mut con = s.client();
        ok(&mut con, &["SET", "a", "1"]);
        ok(&mut con, &["SET", "b", "2"]);
    }
    let incr = dir.aof_dir().join("appendonly.aof.1.incr.aof");
    let mut bytes = std::fs::read(&incr).unwrap();
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&incr, &bytes).unwrap();
    // With aof-load-truncated no the server refuses to start.
    let d = dir.0.to_str().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_flowkv-server"))
        .args(["--port", &common::free_port().to_string(), "--dir", d])
        .args(["--appendonly", "yes", "--aof-load-truncated", "no"])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    // With yes it loads what is whole and cuts the tail off.
    let s = start(&dir.0, &["--aof-load-truncated", "yes"]);
    let mut con = s.client();
    assert_eq!(get_int(&mut con, "a"), 1);
    assert_eq!(int(&mut con, &["EXISTS", "b"]), 0);
    ok(&mut con, &["SET", "c", "3"]);
    drop(s);
    let s = start(&dir.0, &[]);
    let mut con = s.client();
    assert_eq!(get_int(&mut con, "c"), 3);
}

#[test]
fn everysec_loses_at_most_a_second_and_config_set_turns_aof_on() {
    let dir = Dir::new("everysec");
    let d = dir.0.to_str().unwrap();
    let s = Server::start(&["--dir", d, "--enable-debug-command", "yes"]);
    let mut con = s.client();
    ok(&mut con, &["SET", "before", "1"]);
    ok(&mut con, &["CONFIG", "SET", "appendonly", "yes"]);
    wait_rewrite(&mut con);
    for i in 0..100 {
        ok(&mut con, &["SET", &format!("k{i}"), "v"]);
    }
    std::thread::sleep(Duration::from_millis(1100));
    ok(&mut con, &["DEBUG", "LOADAOF"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 101);
    drop(s);
    let s = start(&dir.0, &[]);
    let mut con = s.client();
    assert_eq!(int(&mut con, &["DBSIZE"]), 101);
}

/// Runs redis-server 7.0 on `dir` with AOF on; `None` if it is not installed.
fn redis_server(dir: &Path) -> Option<(std::process::Child, u16)> {
    let port = common::free_port();
    let child = std::process::Command::new("/usr/bin/redis-server")
        .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
        // `always`: with everysec, Redis may postpone a write behind a running fsync and
        // reply first, so the kill below could lose it.
        .args([
            "--appendonly",
            "yes",
            "--save",
            "",
            "--appendfsync",
            "always",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut con) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection())
        {
            let loading: redis::RedisResult<String> = redis::cmd("PING").query(&mut con);
            if loading.is_ok() {
                return Some((child, port));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn aof_directories_move_between_redis_and_flowkv() {
    if !Path::new("/usr/bin/redis-server").exists() {
        eprintln!("redis-server not installed: interop test skipped");
        return;
    }
    let dir = Dir::new("interop");
    // Redis writes (base + incremental), flowkv loads.
    let (mut redis, port) = redis_server(&dir.0).expect("redis-server");
    let mut rc = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    ok(&mut rc, &["SET", "from_redis", "1"]);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut rc).unwrap();
    wait_rewrite(&mut rc);
    int(&mut rc, &["RPUSH", "rl", "a", "b"]);
    ok(&mut rc, &["SET", "rx", "v", "EX", "1000"]);
    let _: String = redis::cmd("INCRBYFLOAT")
        .arg("rf")
        .arg("2.5")
        .query(&mut rc)
        .unwrap();
    let _ = redis.kill();
    let _ = redis.wait();
    let s = start(&dir.0, &[]);
    let mut con = s.client();
    assert_eq!(get_int(&mut con, "from_redis"), 1);
    assert_eq!(int(&mut con, &["LLEN", "rl"]), 2);
    assert!(int(&mut con, &["TTL", "rx"]) > 900);
    assert_eq!(
        common::bulk(&mut con, &["GET", "rf"]).as_deref(),
        Some("2.5")
    );
    // flowkv writes (its own rewrite + incremental), Redis loads.
    ok(&mut con, &["SET", "from_flowkv", "2"]);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    wait_rewrite(&mut con);
    int(&mut con, &["SADD", "fs", "x", "y"]);
    int(&mut con, &["EXPIRE", "fs", "1000"]);
    drop(s);
    let (mut redis, port) = redis_server(&dir.0).expect("redis-server");
    let mut rc = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(get_int(&mut rc, "from_flowkv"), 2);
    assert_eq!(get_int(&mut rc, "from_redis"), 1);
    assert_eq!(int(&mut rc, &["SCARD", "fs"]), 2);
    assert!(int(&mut rc, &["TTL", "fs"]) > 900);
    let _ = redis.kill();
    let _ = redis.wait();
}

/// The built-in types replay from the AOF: Bloom filters as their commands, CL.THROTTLE and
/// CACHE.* as the state they left (their tokens and clock readings can't be recomputed).
#[test]
fn builtins_survive_an_aof_restart() {
    let dir = Dir::new("builtins");
    let q = |con: &mut redis::Connection, args: &[&str]| -> redis::Value {
        let mut c = redis::cmd(args[0]);
        args[1..].iter().for_each(|a| {
            c.arg(*a);
        });
        c.query(con).unwrap()
    };
    let throttled = {
        let s = start(&dir.0, &["--appendfsync", "always"]);
        let mut con = s.client();
        q(&mut con, &["BF.MADD", "bf", "a", "b", "c"]);
        q(&mut con, &["CL.THROTTLE", "rl", "2", "10", "60"]);
        let grant = q(&mut con, &["CACHE.GET", "page"]);
        let redis::Value::Array(g) = grant else {
            panic!("{grant:?}")
        };
        let token: i64 = redis::from_redis_value(&g[2]).unwrap();
        let filled = q(
            &mut con,
            &["CACHE.FILL", "page", &token.to_string(), "html", "60000"],
        );
        assert_eq!(filled, redis::Value::Int(1));
        let text = dir.incr_text();
        assert!(
            !text.contains("CACHE.FILL") && !text.contains("CL.THROTTLE"),
            "{text}"
        );
        q(&mut con, &["CL.THROTTLE", "rl", "2", "10", "60"])
    };
    let s = start(&dir.0, &[]);
    let mut con = s.client();
    assert_eq!(
        q(&mut con, &["BF.MEXISTS", "bf", "a", "c", "zz"]),
        redis::Value::Array(vec![
            redis::Value::Int(1),
            redis::Value::Int(1),
            redis::Value::Int(0)
        ])
    );
    let hit = q(&mut con, &["CACHE.GET", "page"]);
    let redis::Value::Array(h) = hit else {
        panic!("{hit:?}")
    };
    assert_eq!(redis::from_redis_value::<String>(&h[0]).unwrap(), "HIT");
    assert_eq!(redis::from_redis_value::<String>(&h[1]).unwrap(), "html");
    // Two of the burst of 3 were used before the restart: one left.
    let redis::Value::Array(before) = throttled else {
        panic!()
    };
    assert_eq!(before[2], redis::Value::Int(1));
    let redis::Value::Array(after) = q(&mut con, &["CL.THROTTLE", "rl", "2", "10", "60"]) else {
        panic!()
    };
    assert_eq!(after[2], redis::Value::Int(0));
}

#[test]
fn function_libraries_survive_a_rewrite_in_the_rdb_preamble() {
    let dir = Dir::new("functions");
    let lib = "#!lua name=lib1\nredis.register_function('answer', function() return 42 end)";
    {
        let s = start(&dir.0, &[]);
        let mut con = s.client();
        let name: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(lib)
            .query(&mut con)
            .unwrap();
        assert_eq!(name, "lib1");
        let _: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
        wait_rewrite(&mut con);
        // Only the new base holds the library now; the incremental file is empty.
        assert!(!dir.incr_text().contains("FUNCTION"), "{}", dir.incr_text());
        ok(&mut con, &["DEBUG", "LOADAOF"]);
        assert_eq!(int(&mut con, &["FCALL", "answer", "0"]), 42);
    }
    let s = start(&dir.0, &[]);
    let mut con = s.client();
    assert_eq!(int(&mut con, &["FCALL", "answer", "0"]), 42);
}

#[test]
fn approximate_stream_trims_replay_exactly() {
    let dir = Dir::new("xtrim");
    let s = start(
        &dir.0,
        &["--appendfsync", "always", "--stream-node-max-entries", "10"],
    );
    let mut con = s.client();
    let digest = |con: &mut redis::Connection| -> redis::Value {
        redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg("s")
            .query(con)
            .unwrap()
    };
    for i in 1..=35 {
        let _: String = redis::cmd("XADD")
            .arg("s")
            .arg(format!("{i}-1"))
            .arg("f")
            .arg("v")
            .query(&mut con)
            .unwrap();
    }
    let q = |con: &mut redis::Connection, args: &[&str]| -> redis::Value {
        let mut c = redis::cmd(args[0]);
        args[1..].iter().for_each(|a| {
            c.arg(*a);
        });
        c.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    };
    // Whole nodes go: 16 entries are left, not 12.
    q(
        &mut con,
        &[
            "XADD", "s", "MAXLEN", "~", "12", "LIMIT", "20", "100-1", "f", "v",
        ],
    );
    assert_eq!(int(&mut con, &["XLEN", "s"]), 16);
    for i in 101..=130 {
        q(&mut con, &["XADD", "s", &format!("{i}-1"), "f", "v"]);
    }
    let removed = int(&mut con, &["XTRIM", "s", "MINID", "~", "115-1"]);
    assert!(removed > 0);
    assert_eq!(int(&mut con, &["XTRIM", "s", "MAXLEN", "~", "1000"]), 0);
    let before = digest(&mut con);
    let text = dir.incr_text();
    // Propagated as Redis 7.0 does: `=` and the threshold the trim reached.
    assert!(
        text.contains("$6\r\nMAXLEN\r\n$1\r\n=\r\n$2\r\n16\r\n$5\r\nLIMIT\r\n$2\r\n20\r\n"),
        "{text}"
    );
    assert!(text.contains("$5\r\nMINID\r\n$1\r\n=\r\n"), "{text}");
    assert!(!text.contains("~") && !text.contains("1000"), "{text}");
    // Replayed with other node sizes, the stream is the same.
    ok(&mut con, &["CONFIG", "SET", "stream-node-max-entries", "3"]);
    ok(&mut con, &["DEBUG", "LOADAOF"]);
    assert_eq!(digest(&mut con), before);
}

#[test]
fn expired_keys_are_logged_as_deletions() {
    let dir = Dir::new("expired");
    let s = start(&dir.0, &["--appendfsync", "always"]);
    let mut con = s.client();
    // Found expired by a lookup (active expiry off), then by the active sweep.
    ok(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    ok(&mut con, &["SET", "lazy", "v", "PX", "50"]);
    std::thread::sleep(Duration::from_millis(100));
    let got: Option<String> = redis::cmd("GET").arg("lazy").query(&mut con).unwrap();
    assert_eq!(got, None);
    ok(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    ok(&mut con, &["CONFIG", "SET", "lazyfree-lazy-expire", "yes"]);
    ok(&mut con, &["SET", "swept", "v", "PX", "50"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dir.incr_text().contains("$6\r\nUNLINK\r\n$5\r\nswept\r\n") {
        assert!(Instant::now() < deadline, "{}", dir.incr_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = dir.incr_text();
    let set = text.find("$4\r\nlazy\r\n").expect("SET lazy");
    let del = text
        .find("*2\r\n$3\r\nDEL\r\n$4\r\nlazy\r\n")
        .expect("DEL lazy");
    assert!(set < del, "{text}");
    assert_eq!(text.matches("lazy\r\n").count(), 2, "{text}");
}

// ---------------------------------------------------------------------------------------
// Crash tests: `kill -9` of the server in the middle of a concurrent write load, then a
// restart on the same directory. Every write a client saw acknowledged must be there, and
// nothing may be there that no client sent.
//
// flowkv writes the AOF buffer to the file before any reply for it leaves the server (as
// Redis does), so a killed *process* loses no acknowledged write under any `appendfsync`
// policy; the policy only decides how much a *machine* crash can lose, which a test on one
// machine cannot simulate. So both policies are held to the same rule here.

/// What one writer sent and saw acknowledged. Writer `t` owns keys `c:t` (INCR),
/// `s:t:<i>` (SET to `<i>`) and `l:t` (RPUSH `<i>`), and does the three writes for
/// `i = 1, 2, …` in that order.
#[derive(Debug, Default)]
struct Progress {
    /// Highest `i` whose write was acknowledged, per operation (INCR, SET, RPUSH).
    acked: [u64; 3],
    /// Highest `i` sent per operation (acknowledged or not).
    sent: [u64; 3],
}

fn writer(port: u16, t: usize, stop: &AtomicBool) -> Progress {
    let mut p = Progress::default();
    let Ok(mut con) =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).and_then(|c| c.get_connection())
    else {
        return p;
    };
    let mut i = 0u64;
    while !stop.load(Relaxed) {
        i += 1;
        let n = i.to_string();
        let ops = [
            redis::cmd("INCR").arg(format!("c:{t}")).clone(),
            redis::cmd("SET").arg(format!("s:{t}:{i}")).arg(&n).clone(),
            redis::cmd("RPUSH").arg(format!("l:{t}")).arg(&n).clone(),
        ];
        for (op, cmd) in ops.iter().enumerate() {
            p.sent[op] = i;
            match cmd.query::<redis::Value>(&mut con) {
                Ok(redis::Value::Int(_) | redis::Value::Okay) => p.acked[op] = i,
                Ok(other) => panic!("writer {t}: unexpected reply {other:?}"),
                Err(_) => return p,
            }
        }
    }
    p
}

/// Runs `writers` threads against a server with `fsync`, kills it with SIGKILL after
/// `run`, restarts it on the same directory and checks every writer's keys.
fn crash_and_check(name: &str, fsync: &str, writers: usize, run: Duration) {
    let dir = Dir::new(name);
    let extra = ["--appendfsync", fsync, "--save", ""];
    let srv = start(&dir.0, &extra);
    let port = srv.port;
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || writer(port, t, &stop))
        })
        .collect();
    std::thread::sleep(run);
    // Dropping the server kills it with SIGKILL while the writers are mid-flight.
    drop(srv);
    stop.store(true, Relaxed);
    let progress: Vec<Progress> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let total: u64 = progress.iter().map(|p| p.acked.iter().sum::<u64>()).sum();
    assert!(
        total > 100,
        "too little load to test anything: {progress:?}"
    );

    let srv = start(&dir.0, &extra);
    let mut con = srv.client();
    for (t, p) in progress.iter().enumerate() {
        let [incr, set, push] = p.acked;
        let counter: Option<u64> = redis::cmd("GET")
            .arg(format!("c:{t}"))
            .query(&mut con)
            .unwrap();
        let counter = counter.unwrap_or(0);
        assert!(
            (incr..=p.sent[0]).contains(&counter),
            "writer {t}: counter {counter}, acknowledged {incr}, sent {}",
            p.sent[0]
        );
        // Every acknowledged SET is there with its value; at most the one in flight beyond.
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("s:{t}:*"))
            .query(&mut con)
            .unwrap();
        assert!(
            (set..=p.sent[1]).contains(&(keys.len() as u64)),
            "writer {t}: {} SET keys, acknowledged {set}, sent {}",
            keys.len(),
            p.sent[1]
        );
        for i in 1..=keys.len() as u64 {
            let v: Option<String> = redis::cmd("GET")
                .arg(format!("s:{t}:{i}"))
                .query(&mut con)
                .unwrap();
            assert_eq!(v, Some(i.to_string()), "writer {t}: s:{t}:{i}");
        }
        // The list is exactly 1..=k, in order, for some acknowledged ≤ k ≤ sent.
        let list: Vec<u64> = redis::cmd("LRANGE")
            .arg(format!("l:{t}"))
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .unwrap();
        let k = list.len() as u64;
        assert!(
            (push..=p.sent[2]).contains(&k),
            "writer {t}: list of {k}, acknowledged {push}, sent {}",
            p.sent[2]
        );
        assert!(
            list.iter().copied().eq(1..=k),
            "writer {t}: list out of order"
        );
    }
}

#[test]
fn kill_9_under_load_with_appendfsync_always_loses_no_acknowledged_write() {
    crash_and_check("crash-always", "always", 6, Duration::from_millis(1500));
}

#[test]
fn kill_9_under_load_with_appendfsync_everysec_loses_no_acknowledged_write() {
    crash_and_check("crash-everysec", "everysec", 6, Duration::from_millis(1500));
}
