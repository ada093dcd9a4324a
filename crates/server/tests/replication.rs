//! Replication end to end, against real `redis-server` 7.0.
//!
//! flowkv as a master: SYNC's raw stream (the RDB, then SELECT and the commands, a
//! transaction wrapped in MULTI/EXEC), a redis-server replica (full sync, the stream,
//! partial resync after a dropped link, ROLE/INFO, WAIT), min-replicas-to-write.
//!
//! flowkv as a replica: full sync (diskless `$EOF:` and disk-based `$<len>` payloads), the
//! command stream, REPLCONF GETACK, INFO/ROLE, the read-only refusal, partial resync after
//! a dropped link, reconnection after a master restart, and REPLICAOF NO ONE.
//!
//! Each test that needs it is skipped, with a note on stderr, when `redis-server` is not
//! on PATH (CI installs it).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bulk, err, free_port, int, ok, strings, Server};

/// A real redis-server (a master, or a replica of flowkv), killed on drop.
struct RealRedis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
    /// Extra `--directive value` arguments (kept for restarts).
    extra: Vec<String>,
}

impl RealRedis {
    /// Starts redis-server on a free port (`None` when it is not installed).
    fn start(extra: &[&str]) -> Option<RealRedis> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("flowkv-master-{port}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let mut m = RealRedis {
            child: spawn_redis(port, &dir, extra)?,
            port,
            dir,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        m.wait_ready();
        Some(m)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && (&buf == b"+PONG\r\n" || &buf == b"-NOAUTH")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    /// Kills the master and starts a fresh one (empty, new replication ID) on its port.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A disk-based master saved its sync RDB: the new one starts empty.
        let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        std::thread::sleep(Duration::from_millis(300));
        self.child = spawn_redis(self.port, &self.dir, &self.extra).expect("restart");
        self.wait_ready();
    }

    fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .expect("connect to master")
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_redis(port: u16, dir: &std::path::Path, extra: &[impl AsRef<str>]) -> Option<Child> {
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ])
        .args(["--repl-diskless-sync-delay", "0"])
        .args(extra.iter().map(AsRef::as_ref))
        .arg("--dir")
        .arg(dir)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(c) => Some(c),
        Err(_) => {
            eprintln!("note: redis-server not on PATH; skipping this replication test");
            None
        }
    }
}

/// INFO replication as `field → value`.
fn info_field(con: &mut redis::Connection, field: &str) -> Option<String> {
    let info = bulk(con, &["INFO", "replication"]).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
}

/// Polls `cond` for up to 10 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn wait_link_up(con: &mut redis::Connection) {
    wait_for("master_link_status:up", || {
        info_field(con, "master_link_status").as_deref() == Some("up")
    });
}

/// Waits until the replica has a key's value as given.
fn wait_value(con: &mut redis::Connection, key: &str, want: Option<&str>) {
    wait_for(&format!("{key} = {want:?} on the replica"), || {
        bulk(con, &["GET", key]).as_deref() == want
    });
}

/// A flowkv replica of the master on `port`, synced, with a client.
fn replica_of(port: u16) -> (Server, redis::Connection) {
    let replica = Server::start(&[]);
    let mut r = replica.client();
    ok(&mut r, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
    wait_link_up(&mut r);
    (replica, r)
}

/// The full scenario against one master: sync of existing data, the live stream, what a
/// replica refuses and reports, and REPLICAOF NO ONE.
fn follow_and_stream(diskless: &str) {
    let Some(mut master) = RealRedis::start(&["--repl-diskless-sync", diskless]) else {
        return;
    };
    let mut m = master.client();
    ok(&mut m, &["SET", "before", "1"]);
    int(&mut m, &["HSET", "h", "f1", "v1", "f2", "v2"]);
    int(&mut m, &["RPUSH", "l", "a", "b", "c"]);
    ok(&mut m, &["SET", "ttl", "x", "EX", "1000"]);
    ok(&mut m, &["SELECT", "3"]);
    ok(&mut m, &["SET", "in3", "three"]);
    ok(&mut m, &["SELECT", "0"]);

    let replica = Server::start(&[]);
    let mut r = replica.client();
    let port = master.port.to_string();
    ok(&mut r, &["REPLICAOF", "127.0.0.1", &port]);
    assert_eq!(
        common::q(&mut r, &["REPLICAOF", "127.0.0.1", &port]),
        Ok(redis::Value::SimpleString(
            "OK Already connected to specified master".into()
        ))
    );
    wait_link_up(&mut r);

    // The full sync.
    assert_eq!(bulk(&mut r, &["GET", "before"]).as_deref(), Some("1"));
    assert_eq!(bulk(&mut r, &["HGET", "h", "f2"]).as_deref(), Some("v2"));
    assert_eq!(
        strings(&mut r, &["LRANGE", "l", "0", "-1"]),
        ["a", "b", "c"]
    );
    let ttl = int(&mut r, &["TTL", "ttl"]);
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");
    ok(&mut r, &["SELECT", "3"]);
    assert_eq!(bulk(&mut r, &["GET", "in3"]).as_deref(), Some("three"));
    ok(&mut r, &["SELECT", "0"]);

    // The stream.
    ok(&mut m, &["SET", "after", "2"]);
    int(&mut m, &["HSET", "h", "f3", "v3"]);
    int(&mut m, &["LPUSH", "l", "z"]);
    int(&mut m, &["EXPIRE", "before", "500"]);
    wait_value(&mut r, "after", Some("2"));
    wait_for("LPUSH on the replica", || int(&mut r, &["LLEN", "l"]) == 4);
    assert_eq!(bulk(&mut r, &["HGET", "h", "f3"]).as_deref(), Some("v3"));
    wait_for("EXPIRE on the replica", || {
        (490..=500).contains(&int(&mut r, &["TTL", "before"]))
    });
    int(&mut m, &["DEL", "after"]);
    wait_value(&mut r, "after", None);
    // A key expiring on the master: the master's DEL (or the replica's reads) hide it.
    ok(&mut m, &["SET", "short", "v", "PX", "100"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(bulk(&mut r, &["GET", "short"]), None);

    // REPLCONF GETACK: WAIT on the master counts this replica's acknowledgement.
    ok(&mut m, &["SET", "acked", "1"]);
    assert_eq!(int(&mut m, &["WAIT", "1", "5000"]), 1);

    // A replica refuses writes from its clients.
    assert_eq!(
        err(&mut r, &["SET", "x", "1"]),
        "READONLY You can't write against a read only replica."
    );

    // INFO and ROLE.
    assert_eq!(info_field(&mut r, "role").as_deref(), Some("slave"));
    assert_eq!(
        info_field(&mut r, "master_host").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        info_field(&mut r, "master_port").as_deref(),
        Some(port.as_str())
    );
    assert_eq!(
        info_field(&mut r, "master_sync_in_progress").as_deref(),
        Some("0")
    );
    assert_eq!(info_field(&mut r, "slave_priority").as_deref(), Some("100"));
    assert_eq!(info_field(&mut r, "slave_read_only").as_deref(), Some("1"));
    assert_eq!(
        info_field(&mut r, "replica_announced").as_deref(),
        Some("1")
    );
    assert_eq!(info_field(&mut r, "master_link_down_since_seconds"), None);
    let master_offset: i64 = info_field(&mut m, "master_repl_offset")
        .unwrap()
        .parse()
        .unwrap();
    wait_for("the replica's offset to reach the master's", || {
        info_field(&mut r, "slave_repl_offset")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            >= master_offset
    });
    let role = common::q(&mut r, &["ROLE"]).expect("ROLE");
    let redis::Value::Array(items) = role else {
        panic!("ROLE: {role:?}");
    };
    assert_eq!(items[0], redis::Value::BulkString(b"slave".to_vec()));
    assert_eq!(items[1], redis::Value::BulkString(b"127.0.0.1".to_vec()));
    assert_eq!(items[2], redis::Value::Int(master.port.into()));
    assert_eq!(items[3], redis::Value::BulkString(b"connected".to_vec()));
    assert!(
        matches!(items[4], redis::Value::Int(n) if n > 0),
        "{items:?}"
    );
    // The master is a client with flag M.
    let list = bulk(&mut r, &["CLIENT", "LIST"]).unwrap();
    assert!(list.lines().any(|l| l.contains(" flags=M ")), "{list}");
    // The master sees us as a replica on our own port.
    let slave0 = info_field(&mut m, "slave0").expect("slave0");
    assert!(
        slave0.contains(&format!("port={}", replica.port)),
        "{slave0}"
    );
    assert!(slave0.contains("state=online"), "{slave0}");

    // A restarted master (empty, new ID): the replica reconnects and syncs again.
    master.restart();
    let mut m = master.client();
    ok(&mut m, &["SET", "reborn", "yes"]);
    wait_value(&mut r, "reborn", Some("yes"));
    assert_eq!(bulk(&mut r, &["GET", "before"]), None);
    wait_link_up(&mut r);

    // REPLICAOF NO ONE keeps the data and takes writes.
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(info_field(&mut r, "role").as_deref(), Some("master"));
    assert_eq!(bulk(&mut r, &["GET", "reborn"]).as_deref(), Some("yes"));
    ok(&mut r, &["SET", "mine", "1"]);
    ok(&mut m, &["SET", "later", "1"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(bulk(&mut r, &["GET", "later"]), None);
}

#[test]
fn follows_a_diskless_master() {
    follow_and_stream("yes");
}

#[test]
fn follows_a_disk_based_master() {
    follow_and_stream("no");
}

/// A dropped link resumes with PSYNC (+CONTINUE): no second full sync, nothing lost.
#[test]
fn partial_resync_after_a_dropped_link() {
    let Some(master) = RealRedis::start(&[]) else {
        return;
    };
    let mut m = master.client();
    let (_replica, mut r) = replica_of(master.port);
    ok(&mut m, &["SET", "k", "1"]);
    wait_value(&mut r, "k", Some("1"));
    // The master drops the link; writes meanwhile land in its backlog.
    int(&mut m, &["CLIENT", "KILL", "TYPE", "replica"]);
    ok(&mut m, &["SET", "k", "2"]);
    int(&mut m, &["INCR", "n"]);
    wait_value(&mut r, "k", Some("2"));
    assert_eq!(bulk(&mut r, &["GET", "n"]).as_deref(), Some("1"));
    let stats = bulk(&mut m, &["INFO", "stats"]).unwrap();
    assert!(stats.contains("sync_full:1\r\n"), "{stats}");
    assert!(stats.contains("sync_partial_ok:1\r\n"), "{stats}");
}

/// A replica never expires keys itself: an expired key reads as missing but stays until
/// the master's DEL arrives.
#[test]
fn expired_keys_wait_for_the_masters_del() {
    let Some(master) = RealRedis::start(&[]) else {
        return;
    };
    let mut m = master.client();
    ok(&mut m, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let (_replica, mut r) = replica_of(master.port);
    ok(&mut m, &["SET", "k", "v", "PX", "200"]);
    wait_for("the key on the replica", || int(&mut r, &["DBSIZE"]) == 1);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(bulk(&mut r, &["GET", "k"]), None);
    assert_eq!(int(&mut r, &["EXISTS", "k"]), 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(int(&mut r, &["DBSIZE"]), 1);
    // The master's lazy expiry deletes it and propagates the DEL.
    assert_eq!(bulk(&mut m, &["GET", "k"]), None);
    wait_for("the master's DEL", || int(&mut r, &["DBSIZE"]) == 0);
}

/// `replicaof` and `masterauth` given at start-up: the replica authenticates and syncs.
#[test]
fn follows_from_the_config_with_masterauth() {
    let Some(master) = RealRedis::start(&["--requirepass", "s3cret"]) else {
        return;
    };
    let mut m = master.client();
    ok(&mut m, &["AUTH", "s3cret"]);
    ok(&mut m, &["SET", "k", "v"]);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port, "--masterauth", "s3cret"]);
    let mut r = replica.client();
    wait_link_up(&mut r);
    assert_eq!(bulk(&mut r, &["GET", "k"]).as_deref(), Some("v"));
}

/// A flowkv master: the two sides of flowkv's replication work together.
#[test]
fn follows_a_flowkv_master() {
    let master = Server::start(&[]);
    let mut m = master.client();
    ok(&mut m, &["SET", "k", "v"]);
    let (_replica, mut r) = replica_of(master.port);
    assert_eq!(bulk(&mut r, &["GET", "k"]).as_deref(), Some("v"));
    int(&mut m, &["RPUSH", "l", "a", "b"]);
    wait_for("RPUSH on the replica", || int(&mut r, &["LLEN", "l"]) == 2);
}

/// Failover: a flowkv master whose redis-server replica is promoted follows it and
/// continues its own history (PSYNC with its replication ID: +CONTINUE, no full sync).
#[test]
fn demoted_master_continues_with_its_promoted_replica() {
    let old = Server::start(&[]);
    let mut o = old.client();
    ok(&mut o, &["SET", "k", "1"]);
    let Some(promoted) = RealRedis::start(&["--replicaof", "127.0.0.1", &old.port.to_string()])
    else {
        return;
    };
    let mut p = promoted.client();
    wait_for("the redis-server replica to sync", || {
        info_field(&mut p, "master_link_status").as_deref() == Some("up")
    });
    ok(&mut o, &["SET", "k", "2"]);
    wait_value(&mut p, "k", Some("2"));
    ok(&mut p, &["REPLICAOF", "NO", "ONE"]);
    ok(&mut p, &["SET", "k", "3"]);
    ok(
        &mut o,
        &["REPLICAOF", "127.0.0.1", &promoted.port.to_string()],
    );
    wait_link_up(&mut o);
    wait_value(&mut o, "k", Some("3"));
    let stats = bulk(&mut p, &["INFO", "stats"]).unwrap();
    assert!(stats.contains("sync_full:0\r\n"), "{stats}");
    assert!(stats.contains("sync_partial_ok:1\r\n"), "{stats}");
}

/// REPLICAOF another master: the old link is dropped and the new master's data replaces
/// the old master's.
#[test]
fn switching_masters_replaces_the_data() {
    let (Some(a), Some(b)) = (RealRedis::start(&[]), RealRedis::start(&[])) else {
        return;
    };
    ok(&mut a.client(), &["SET", "from", "a"]);
    ok(&mut b.client(), &["SET", "from", "b"]);
    ok(&mut b.client(), &["SET", "only-b", "1"]);
    let (_replica, mut r) = replica_of(a.port);
    assert_eq!(bulk(&mut r, &["GET", "from"]).as_deref(), Some("a"));
    ok(&mut r, &["REPLICAOF", "127.0.0.1", &b.port.to_string()]);
    wait_value(&mut r, "only-b", Some("1"));
    wait_link_up(&mut r);
    assert_eq!(bulk(&mut r, &["GET", "from"]).as_deref(), Some("b"));
    // Nothing more from the old master.
    ok(&mut a.client(), &["SET", "from", "a2"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(bulk(&mut r, &["GET", "from"]).as_deref(), Some("b"));
    assert_eq!(
        info_field(&mut a.client(), "connected_slaves").as_deref(),
        Some("0")
    );
}

/// Reads one RESP bulk header `$<len>\r\n` and its payload (no trailing CRLF, as a
/// master sends its RDB).
fn read_rdb_payload(raw: &mut common::Raw) -> Vec<u8> {
    let line = raw.line();
    let len: usize = line
        .trim_end()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a bulk header: {line:?}"));
    raw.read_n(len)
}

/// Reads one command of a replication stream as its words, the name in lower case (as
/// Redis's own tests compare them).
fn read_command(raw: &mut common::Raw) -> Vec<String> {
    let head = raw.line();
    let n: usize = head.trim_end().strip_prefix('*').unwrap().parse().unwrap();
    let mut words: Vec<String> = (0..n)
        .map(|_| {
            let len: usize = raw.line().trim_end()[1..].parse().unwrap();
            let word = raw.read_n(len + 2);
            String::from_utf8_lossy(&word[..len]).into_owned()
        })
        .collect();
    words[0].make_ascii_lowercase();
    words
}

#[test]
fn sync_sends_the_snapshot_then_the_changes() {
    let srv = Server::start(&["--repl-ping-replica-period", "3600"]);
    let mut con = srv.client();
    ok(&mut con, &["SET", "old", "1"]);
    let mut repl = srv.raw();
    repl.cmd(&[b"SYNC"]);
    let rdb = read_rdb_payload(&mut repl);
    assert!(rdb.starts_with(b"REDIS0010"), "{:?}", &rdb[..9]);
    assert!(rdb.windows(3).any(|w| w == b"old"));
    ok(&mut con, &["SET", "k", "v"]);
    int(&mut con, &["INCR", "n"]);
    ok(&mut con, &["SELECT", "2"]);
    assert_eq!(common::q(&mut con, &["MULTI"]), Ok(redis::Value::Okay));
    common::q(&mut con, &["SET", "a", "1"]).unwrap();
    common::q(&mut con, &["GET", "a"]).unwrap();
    common::q(&mut con, &["SET", "b", "2"]).unwrap();
    common::q(&mut con, &["EXEC"]).unwrap();
    // A transaction's SELECT comes before its MULTI, as in Redis.
    let expected: [&[&str]; 8] = [
        &["select", "0"],
        &["set", "k", "v"],
        &["incr", "n"],
        &["select", "2"],
        &["multi"],
        &["set", "a", "1"],
        &["set", "b", "2"],
        &["exec"],
    ];
    for want in expected {
        assert_eq!(read_command(&mut repl), want);
    }
    // The replica shows as such, and the backlog holds the stream.
    let list = bulk(&mut con, &["CLIENT", "LIST"]).unwrap();
    assert!(list.lines().any(|l| l.contains(" flags=S ")), "{list}");
    let offset: u64 = info_field(&mut con, "master_repl_offset")
        .unwrap()
        .parse()
        .unwrap();
    assert!(offset > 0);
    assert_eq!(
        info_field(&mut con, "repl_backlog_active").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&mut con, "repl_backlog_histlen").unwrap(),
        offset.to_string()
    );
}

#[test]
fn psync_continues_from_the_backlog_or_resyncs_fully() {
    let srv = Server::start(&["--repl-ping-replica-period", "3600"]);
    let mut con = srv.client();
    // An unknown history: a full resync at the current offset.
    let mut first = srv.raw();
    first.cmd(&[b"PSYNC", b"?", b"-1"]);
    let line = first.line();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "+FULLRESYNC", "{line}");
    let replid = words[1].to_string();
    assert_eq!(info_field(&mut con, "master_replid"), Some(replid.clone()));
    read_rdb_payload(&mut first);
    ok(&mut con, &["SET", "k", "1"]);
    assert_eq!(read_command(&mut first), ["select", "0"]);
    assert_eq!(read_command(&mut first), ["set", "k", "1"]);
    // Continuing from the start of `SET k 1` in the backlog replays exactly that.
    let end: u64 = info_field(&mut con, "master_repl_offset")
        .unwrap()
        .parse()
        .unwrap();
    let set_len = "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\n1\r\n".len() as u64;
    let from = (end - set_len + 1).to_string();
    let mut second = srv.raw();
    second.cmd(&[b"PSYNC", replid.as_bytes(), from.as_bytes()]);
    assert_eq!(second.line(), format!("+CONTINUE {replid}\r\n"));
    assert_eq!(read_command(&mut second), ["set", "k", "1"]);
    // An offset past the end, or another history: full resync.
    let mut third = srv.raw();
    let past = (end + 10).to_string();
    third.cmd(&[b"PSYNC", replid.as_bytes(), past.as_bytes()]);
    assert!(third.line().starts_with("+FULLRESYNC "));
    let mut fourth = srv.raw();
    fourth.cmd(&[b"PSYNC", &[b'a'; 40], b"1"]);
    assert!(fourth.line().starts_with("+FULLRESYNC "));
}

#[test]
fn redis_server_replicates_flowkv() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["SET", "before", "1"]);
    int(&mut con, &["RPUSH", "l", "a", "b"]);
    let port = srv.port.to_string();
    let Some(replica) = RealRedis::start(&["--replicaof", "127.0.0.1", &port]) else {
        return;
    };
    let mut r = replica.client();
    wait_link_up(&mut r);
    assert_eq!(bulk(&mut r, &["GET", "before"]).as_deref(), Some("1"));
    assert_eq!(strings(&mut r, &["LRANGE", "l", "0", "-1"]), ["a", "b"]);
    ok(&mut con, &["SET", "after", "2"]);
    ok(&mut con, &["SELECT", "5"]);
    int(&mut con, &["SADD", "s", "x"]);
    ok(&mut con, &["SELECT", "0"]);
    wait_value(&mut r, "after", Some("2"));
    // WAIT counts the replica's acknowledgement of everything written so far.
    ok(&mut con, &["SET", "w", "1"]);
    assert_eq!(int(&mut con, &["WAIT", "1", "5000"]), 1);
    assert_eq!(int(&mut con, &["WAIT", "2", "100"]), 1);
    // ROLE and INFO on the master.
    let slave0 = info_field(&mut con, "slave0").expect("slave0");
    assert!(slave0.contains("state=online"), "{slave0}");
    assert!(
        slave0.contains(&format!("port={}", replica.port)),
        "{slave0}"
    );
    assert_eq!(
        info_field(&mut con, "connected_slaves").as_deref(),
        Some("1")
    );
    let role = common::q(&mut con, &["ROLE"]).unwrap();
    let redis::Value::Array(items) = role else {
        panic!("{role:?}");
    };
    assert_eq!(items[0], redis::Value::BulkString(b"master".to_vec()));
    assert!(
        matches!(&items[2], redis::Value::Array(r) if r.len() == 1),
        "{items:?}"
    );
    // A dropped link: the replica continues from the backlog (no new full sync).
    int(&mut con, &["CLIENT", "KILL", "TYPE", "replica"]);
    ok(&mut con, &["SET", "during", "3"]);
    wait_value(&mut r, "during", Some("3"));
    // (The SET may have left on the old link just before it closed.)
    wait_link_up(&mut r);
    ok(&mut con, &["SET", "after-kill", "4"]);
    wait_value(&mut r, "after-kill", Some("4"));
    ok(&mut r, &["SELECT", "5"]);
    assert_eq!(int(&mut r, &["SISMEMBER", "s", "x"]), 1);
    // Replicas of flowkv follow its min-replicas-to-write accounting.
    ok(&mut con, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    wait_for("the replica to count as good", || {
        common::q(&mut con, &["SET", "guarded", "1"]).is_ok()
    });
    ok(&mut con, &["CONFIG", "SET", "min-replicas-to-write", "2"]);
    assert_eq!(
        err(&mut con, &["SET", "guarded", "2"]),
        "NOREPLICAS Not enough good replicas to write."
    );
    assert_eq!(bulk(&mut con, &["GET", "guarded"]).as_deref(), Some("1"));
}

#[test]
fn min_replicas_and_wait_without_replicas() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    assert_eq!(int(&mut con, &["WAIT", "0", "0"]), 0);
    let started = Instant::now();
    assert_eq!(int(&mut con, &["WAIT", "1", "150"]), 0);
    assert!(started.elapsed() >= Duration::from_millis(140));
    assert_eq!(
        err(&mut con, &["WAIT", "1", "-1"]),
        "ERR timeout is negative"
    );
    ok(&mut con, &["SET", "k", "1"]);
    ok(&mut con, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    assert_eq!(
        err(&mut con, &["SET", "k", "2"]),
        "NOREPLICAS Not enough good replicas to write."
    );
    // Reads still work; a transaction that queued a write before is refused at EXEC.
    assert_eq!(bulk(&mut con, &["GET", "k"]).as_deref(), Some("1"));
    ok(&mut con, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    let mut raw = srv.raw();
    raw.cmd(&[b"MULTI"]);
    raw.expect("+OK\r\n");
    raw.cmd(&[b"INCR", b"k"]);
    raw.expect("+QUEUED\r\n");
    ok(&mut con, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    raw.cmd(&[b"EXEC"]);
    raw.expect("-EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to write.\r\n");
    // REPLCONF: options a replica sends are accepted; others are not.
    assert_eq!(
        common::q(
            &mut con,
            &["REPLCONF", "listening-port", "1234", "capa", "eof"]
        ),
        Ok(redis::Value::Okay)
    );
    assert_eq!(
        err(&mut con, &["REPLCONF", "nope", "1"]),
        "ERR Unrecognized REPLCONF option: nope"
    );
    assert_eq!(err(&mut con, &["REPLCONF", "ack"]), "ERR syntax error");
}

#[test]
fn the_stream_carries_publish_and_unwrapped_lazy_expiry() {
    let srv = Server::start(&[
        "--repl-ping-replica-period",
        "3600",
        "--enable-debug-command",
        "yes",
    ]);
    let mut con = srv.client();
    ok(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    ok(&mut con, &["SET", "foo1", "v", "PX", "1"]);
    ok(&mut con, &["SET", "foo2", "v", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(5));
    let mut repl = srv.raw();
    repl.cmd(&[b"SYNC"]);
    read_rdb_payload(&mut repl);
    // PUBLISH goes to replicas (their subscribers hear it), though it changes no data.
    assert_eq!(int(&mut con, &["PUBLISH", "ch", "hello"]), 0);
    assert_eq!(read_command(&mut repl), ["select", "0"]);
    assert_eq!(read_command(&mut repl), ["publish", "ch", "hello"]);
    // Keys RANDOMKEY finds expired are deleted one by one, not as a transaction.
    let _: Option<String> = redis::cmd("RANDOMKEY").query(&mut con).unwrap();
    let mut dels = vec![read_command(&mut repl), read_command(&mut repl)];
    dels.sort();
    assert_eq!(dels, [["del", "foo1"], ["del", "foo2"]]);
    // Writes that change nothing are not replayed.
    assert_eq!(int(&mut con, &["DEL", "nothing"]), 0);
    assert_eq!(int(&mut con, &["UNLINK", "nothing"]), 0);
    assert_eq!(bulk(&mut con, &["SPOP", "noset"]), None);
    assert_eq!(int(&mut con, &["INCR", "n"]), 1);
    assert_eq!(read_command(&mut repl), ["incr", "n"]);
}

#[test]
fn scripts_that_may_write_need_good_replicas() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["SET", "x", "some value"]);
    ok(&mut con, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    // Declared read-only, or no shebang and only reads: they run.
    let read = "#!lua flags=no-writes\nreturn redis.call('get','x')";
    assert_eq!(
        bulk(&mut con, &["EVAL", read, "1", "x"]).as_deref(),
        Some("some value")
    );
    let legacy = "return redis.call('get','x')";
    assert_eq!(
        bulk(&mut con, &["EVAL", legacy, "1", "x"]).as_deref(),
        Some("some value")
    );
    // A shebang without no-writes declares a writer: refused before it runs.
    let writer = "#!lua\nreturn redis.call('get','x')";
    assert_eq!(
        err(&mut con, &["EVAL", writer, "1", "x"]),
        "NOREPLICAS Not enough good replicas to write."
    );
    // A legacy script's write is refused where it happens.
    let e = err(
        &mut con,
        &["EVAL", "return redis.call('set','x',1)", "1", "x"],
    );
    assert!(
        e.starts_with("NOREPLICAS Not enough good replicas to write. script: "),
        "{e}"
    );
    assert_eq!(bulk(&mut con, &["GET", "x"]).as_deref(), Some("some value"));
}
