//! MIGRATE end to end: keys of every type move between two flowkv servers (and into a real
//! redis-server 7.0) with their TTLs; COPY, REPLACE, KEYS, NOKEY, AUTH/AUTH2 and the
//! destination database; the target's errors, I/O errors and argument errors in Redis's
//! words (compared reply by reply with redis-server); deletions propagated as DEL; secrets
//! redacted in MONITOR and the slow log; key specs and GETKEYS as Redis reports them; and,
//! with a scripted target, that the source's shard locks are not held during the transfer.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{bulk, free_port, int, ok, q, strings, Server};
use redis::Value;

const BUSYKEY: &str =
    "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n";
const IOERR_CONNECT: &str = "-IOERR error or timeout connecting to the client\r\n";
const IOERR_WRITE: &str = "-IOERR error or timeout writing to target instance\r\n";
const IOERR_READ: &str = "-IOERR error or timeout reading to target instance\r\n";

/// Sends one command on a fresh connection and returns the first line of the reply, as
/// sent (`+OK\r\n`, `-ERR …\r\n`): the exact bytes are what these tests compare.
fn reply(port: u16, args: &[&str]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut s, args);
    read_line(&mut BufReader::new(&s))
}

/// Writes a command as a RESP array.
fn send(s: &mut TcpStream, args: &[&str]) {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    s.write_all(&out).expect("write");
}

/// One line, with its `\r\n`.
fn read_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("read a reply line");
    line
}

/// `MIGRATE 127.0.0.1 <port> <rest…>` as words.
fn migrate<'a>(port: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut line = vec!["MIGRATE", "127.0.0.1", port];
    line.extend_from_slice(rest);
    line
}

fn exists(con: &mut redis::Connection, key: &str) -> bool {
    int(con, &["EXISTS", key]) == 1
}

/// Fills `con` with one key of each type, the string with a TTL.
fn fill(con: &mut redis::Connection) {
    ok(con, &["SET", "s", "hello", "PX", "100000"]);
    int(con, &["HSET", "h", "f1", "v1", "f2", "v2"]);
    int(con, &["RPUSH", "l", "a", "b", "c"]);
    int(con, &["ZADD", "z", "1", "one", "2.5", "two"]);
    bulk(con, &["XADD", "st", "1-1", "field", "value"]);
    bulk(con, &["XADD", "st", "2-1", "other", "x"]);
}

/// The values [`fill`] put there, as found on `con`.
fn assert_filled(con: &mut redis::Connection) {
    assert_eq!(bulk(con, &["GET", "s"]).as_deref(), Some("hello"));
    let ttl = int(con, &["PTTL", "s"]);
    assert!(ttl > 90_000 && ttl <= 100_000, "ttl {ttl}");
    assert_eq!(int(con, &["PTTL", "h"]), -1);
    assert_eq!(strings(con, &["HGETALL", "h"]), ["f1", "v1", "f2", "v2"]);
    assert_eq!(strings(con, &["LRANGE", "l", "0", "-1"]), ["a", "b", "c"]);
    assert_eq!(
        strings(con, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        ["one", "1", "two", "2.5"]
    );
    assert_eq!(int(con, &["XLEN", "st"]), 2);
    let entries = q(con, &["XRANGE", "st", "-", "+"]).unwrap();
    let want = |id: &str, f: &str, v: &str| {
        Value::Array(vec![
            Value::BulkString(id.into()),
            Value::Array(vec![
                Value::BulkString(f.into()),
                Value::BulkString(v.into()),
            ]),
        ])
    };
    assert_eq!(
        entries,
        Value::Array(vec![
            want("1-1", "field", "value"),
            want("2-1", "other", "x")
        ])
    );
}

#[test]
fn moves_every_type_with_its_ttl() {
    let (src, dst) = (Server::start(&[]), Server::start(&[]));
    let (mut a, mut b) = (src.client(), dst.client());
    fill(&mut a);
    let port = dst.port.to_string();
    for key in ["s", "h", "l", "z", "st"] {
        assert_eq!(
            reply(src.port, &migrate(&port, &[key, "0", "5000"])),
            "+OK\r\n"
        );
        assert!(!exists(&mut a, key), "{key} left the source");
    }
    assert_filled(&mut b);
    assert_eq!(int(&mut a, &["DBSIZE"]), 0);
    // Nothing left to move.
    assert_eq!(
        reply(src.port, &migrate(&port, &["s", "0", "5000"])),
        "+NOKEY\r\n"
    );
}

#[test]
fn copy_replace_and_busy_keys() {
    let (src, dst) = (Server::start(&[]), Server::start(&[]));
    let (mut a, mut b) = (src.client(), dst.client());
    let port = dst.port.to_string();
    ok(&mut a, &["SET", "k", "v1"]);
    // COPY leaves the source alone.
    assert_eq!(
        reply(src.port, &migrate(&port, &["k", "0", "1000", "COPY"])),
        "+OK\r\n"
    );
    assert_eq!(bulk(&mut a, &["GET", "k"]).as_deref(), Some("v1"));
    assert_eq!(bulk(&mut b, &["GET", "k"]).as_deref(), Some("v1"));
    // Without REPLACE an existing target key is an error, and the source key stays.
    ok(&mut a, &["SET", "k", "v2"]);
    assert_eq!(
        reply(src.port, &migrate(&port, &["k", "0", "1000"])),
        BUSYKEY
    );
    assert_eq!(
        reply(src.port, &migrate(&port, &["k", "0", "1000", "COPY"])),
        BUSYKEY
    );
    assert_eq!(bulk(&mut a, &["GET", "k"]).as_deref(), Some("v2"));
    assert_eq!(bulk(&mut b, &["GET", "k"]).as_deref(), Some("v1"));
    // REPLACE overwrites (options in any order and case).
    let line = migrate(&port, &["k", "0", "1000", "replace", "copy"]);
    assert_eq!(reply(src.port, &line), "+OK\r\n");
    assert_eq!(bulk(&mut b, &["GET", "k"]).as_deref(), Some("v2"));
    assert!(exists(&mut a, "k"));
    ok(&mut a, &["SET", "k", "v3"]);
    assert_eq!(
        reply(src.port, &migrate(&port, &["k", "0", "1000", "REPLACE"])),
        "+OK\r\n"
    );
    assert_eq!(bulk(&mut b, &["GET", "k"]).as_deref(), Some("v3"));
    assert!(!exists(&mut a, "k"));
    // A key without a TTL arrives without one, replacing one that had a TTL.
    int(&mut b, &["EXPIRE", "k", "100"]);
    ok(&mut a, &["SET", "k", "v4"]);
    assert_eq!(
        reply(src.port, &migrate(&port, &["k", "0", "1000", "REPLACE"])),
        "+OK\r\n"
    );
    assert_eq!(int(&mut b, &["TTL", "k"]), -1);
}

#[test]
fn keys_option_moves_the_keys_that_exist() {
    let (src, dst) = (Server::start(&[]), Server::start(&[]));
    let (mut a, mut b) = (src.client(), dst.client());
    let port = dst.port.to_string();
    ok(&mut a, &["MSET", "k1", "v1", "k2", "v2", "k3", "v3"]);
    let none = migrate(
        &port,
        &["", "0", "1000", "KEYS", "nokey-1", "nokey-2", "nokey-1"],
    );
    assert_eq!(reply(src.port, &none), "+NOKEY\r\n");
    let some = migrate(
        &port,
        &[
            "", "0", "1000", "KEYS", "nokey-1", "k1", "nokey-2", "k2", "k3",
        ],
    );
    assert_eq!(reply(src.port, &some), "+OK\r\n");
    assert_eq!(int(&mut a, &["DBSIZE"]), 0);
    assert_eq!(
        strings(&mut b, &["MGET", "k1", "k2", "k3"]),
        ["v1", "v2", "v3"]
    );
    // KEYS with no key after it finds nothing to move.
    assert_eq!(
        reply(src.port, &migrate(&port, &["", "0", "1000", "KEYS"])),
        "+NOKEY\r\n"
    );

    // Only the keys the target acknowledged leave the source: the busy ones stay, and the
    // first error is the reply.
    ok(
        &mut a,
        &["MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"],
    );
    ok(&mut b, &["MSET", "b", "_", "d", "_"]);
    let line = migrate(&port, &["", "0", "1000", "KEYS", "a", "b", "c", "d", "e"]);
    assert_eq!(reply(src.port, &line), BUSYKEY);
    let mut left = strings(&mut a, &["KEYS", "*"]);
    left.sort();
    assert_eq!(left, ["b", "d"]);
    assert_eq!(
        strings(&mut b, &["MGET", "a", "b", "c", "d", "e"]),
        ["1", "_", "3", "_", "5"]
    );
}

#[test]
fn destination_database() {
    let (src, dst) = (Server::start(&[]), Server::start(&[]));
    let (mut a, mut b) = (src.client(), dst.client());
    let port = dst.port.to_string();
    ok(&mut a, &["SELECT", "2"]);
    ok(&mut a, &["SET", "k", "in-2"]);
    // MIGRATE reads the client's selected database and writes the one it names.
    let mut s = TcpStream::connect(("127.0.0.1", src.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut s, &["SELECT", "2"]);
    send(&mut s, &migrate(&port, &["k", "9", "1000"]));
    let mut r = BufReader::new(&s);
    assert_eq!(read_line(&mut r), "+OK\r\n");
    assert_eq!(read_line(&mut r), "+OK\r\n");
    assert!(!exists(&mut a, "k"));
    assert!(!exists(&mut b, "k"));
    ok(&mut b, &["SELECT", "9"]);
    assert_eq!(bulk(&mut b, &["GET", "k"]).as_deref(), Some("in-2"));
    // A database the target does not have: its SELECT error, and the key stays.
    ok(&mut a, &["SELECT", "0"]);
    ok(&mut a, &["SET", "x", "1"]);
    assert_eq!(
        reply(src.port, &migrate(&port, &["x", "16", "1000"])),
        "-ERR Target instance replied with error: ERR DB index is out of range\r\n"
    );
    assert_eq!(
        reply(src.port, &migrate(&port, &["x", "-1", "1000"])),
        "-ERR Target instance replied with error: ERR DB index is out of range\r\n"
    );
    assert!(exists(&mut a, "x"));
}

#[test]
fn auth_and_auth2() {
    let src = Server::start(&[]);
    let dst = Server::start(&["--requirepass", "s3cret"]);
    let mut a = src.client();
    let port = dst.port.to_string();
    int(&mut a, &["RPUSH", "list", "a", "b", "c", "d"]);
    assert_eq!(
        reply(src.port, &migrate(&port, &["list", "0", "1000"])),
        "-ERR Target instance replied with error: NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        reply(src.port, &migrate(&port, &["list", "0", "1000", "AUTH", "wrong"])),
        "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(exists(&mut a, "list"), "nothing moved");
    assert_eq!(
        reply(
            src.port,
            &migrate(&port, &["list", "0", "1000", "AUTH", "s3cret"])
        ),
        "+OK\r\n"
    );
    assert!(!exists(&mut a, "list"));
    let mut b = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/", dst.port))
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(
        strings(&mut b, &["LRANGE", "list", "0", "-1"]),
        ["a", "b", "c", "d"]
    );

    // AUTH2 logs in as a named user; its key permissions apply on the target.
    ok(
        &mut b,
        &["ACL", "SETUSER", "mover", "on", ">pw", "~m:*", "+@all"],
    );
    ok(&mut a, &["MSET", "m:1", "x", "other", "y"]);
    let line = migrate(&port, &["m:1", "0", "1000", "AUTH2", "mover", "pw"]);
    assert_eq!(reply(src.port, &line), "+OK\r\n");
    assert_eq!(bulk(&mut b, &["GET", "m:1"]).as_deref(), Some("x"));
    let line = migrate(&port, &["other", "0", "1000", "AUTH2", "mover", "pw"]);
    assert_eq!(
        reply(src.port, &line),
        "-ERR Target instance replied with error: NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
    let line = migrate(&port, &["other", "0", "1000", "AUTH2", "mover", "bad"]);
    assert_eq!(
        reply(src.port, &line),
        "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(exists(&mut a, "other"));
}

#[test]
fn io_errors() {
    let src = Server::start(&[]);
    let mut a = src.client();
    ok(&mut a, &["SET", "k", "v"]);
    // A closed port: as in Redis, the refused connection shows at the first write.
    let closed = free_port().to_string();
    assert_eq!(
        reply(src.port, &migrate(&closed, &["k", "0", "500"])),
        IOERR_WRITE
    );
    // Failing to even start connecting (a port getaddrinfo rejects, a host that does not
    // resolve) is the connect error.
    assert_eq!(
        reply(src.port, &migrate("-1", &["k", "0", "500"])),
        IOERR_CONNECT
    );
    let line = ["MIGRATE", "", "6379", "k", "0", "500"];
    assert_eq!(reply(src.port, &line), IOERR_CONNECT);
    // Missing keys never connect.
    assert_eq!(
        reply(src.port, &migrate(&closed, &["nokey", "0", "500"])),
        "+NOKEY\r\n"
    );
    assert_eq!(bulk(&mut a, &["GET", "k"]).as_deref(), Some("v"));

    // A target that accepts but never answers: the read times out after `timeout` ms.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let started = Instant::now();
    assert_eq!(
        reply(src.port, &migrate(&port, &["k", "0", "300"])),
        IOERR_READ
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(bulk(&mut a, &["GET", "k"]).as_deref(), Some("v"));
    let info = bulk(&mut a, &["INFO", "errorstats"]).unwrap();
    assert!(info.contains("errorstat_IOERR:count=4"), "{info}");
}

/// A hand-driven target: accepts one connection, reads `commands` RESP commands, hands them
/// to the test, and sends whatever the test gives back.
struct FakeTarget {
    port: u16,
    requests: mpsc::Receiver<Vec<Vec<Vec<u8>>>>,
    replies: mpsc::Sender<Vec<u8>>,
}

impl FakeTarget {
    fn start(commands: usize) -> FakeTarget {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (req_tx, requests) = mpsc::channel();
        let (replies, rep_rx) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut r = BufReader::new(sock.try_clone().unwrap());
            let cmds: Vec<Vec<Vec<u8>>> = (0..commands).map(|_| read_command(&mut r)).collect();
            req_tx.send(cmds).unwrap();
            if let Ok(bytes) = rep_rx.recv() {
                sock.write_all(&bytes).unwrap();
            }
            // Hold the connection until the test is done with it.
            let _ = rep_rx.recv();
        });
        FakeTarget {
            port,
            requests,
            replies,
        }
    }
}

/// One RESP array of bulk strings.
fn read_command(r: &mut impl BufRead) -> Vec<Vec<u8>> {
    let head = read_line(r);
    let n: usize = head.trim_end().strip_prefix('*').unwrap().parse().unwrap();
    (0..n)
        .map(|_| {
            let len: usize = read_line(r)
                .trim_end()
                .strip_prefix('$')
                .unwrap()
                .parse()
                .unwrap();
            let mut arg = vec![0; len + 2];
            r.read_exact(&mut arg).unwrap();
            arg.truncate(len);
            arg
        })
        .collect()
}

/// What MIGRATE sends, and that the source's locks are free while it waits for the target:
/// a key written meanwhile is not deleted when the target then acknowledges the old value.
#[test]
fn request_shape_and_no_locks_held_during_transfer() {
    // Two workers: consecutive connections go to different ones, so the second client is
    // not stuck behind the worker the MIGRATE blocks.
    let src = Server::start(&["--threads", "2"]);
    let mut setup = src.client();
    ok(&mut setup, &["SET", "k", "v1", "PX", "60000"]);
    ok(&mut setup, &["SET", "j", "same"]);
    let target = FakeTarget::start(4);
    let port = target.port.to_string();
    let mut mover = TcpStream::connect(("127.0.0.1", src.port)).unwrap();
    let mut other = src.client();
    mover
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    send(
        &mut mover,
        &migrate(
            &port,
            &[
                "", "5", "5000", "REPLACE", "AUTH2", "u", "p", "KEYS", "k", "j",
            ],
        ),
    );
    let cmds = target
        .requests
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    let words = |c: &[Vec<u8>]| -> Vec<String> {
        c.iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    };
    assert_eq!(words(&cmds[0]), ["AUTH", "u", "p"]);
    assert_eq!(words(&cmds[1]), ["SELECT", "5"]);
    assert_eq!(cmds[2].len(), 5);
    assert_eq!(cmds[2][0], b"RESTORE");
    assert_eq!(cmds[2][1], b"k");
    let ttl: u64 = String::from_utf8_lossy(&cmds[2][2]).parse().unwrap();
    assert!(ttl > 50_000 && ttl <= 60_000, "ttl {ttl}");
    assert_eq!(cmds[2][4], b"REPLACE");
    // The payload is DUMP's.
    let dump = q(&mut setup, &["DUMP", "k"]).unwrap();
    assert_eq!(dump, Value::BulkString(cmds[2][3].clone()));
    assert_eq!(words(&cmds[3])[..3], ["RESTORE", "j", "0"]);
    // Meanwhile another client writes k (it would wait on k's shard if the lock were held).
    let started = Instant::now();
    ok(&mut other, &["SET", "k", "v2"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    target
        .replies
        .send(b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n".to_vec())
        .unwrap();
    assert_eq!(read_line(&mut BufReader::new(&mover)), "+OK\r\n");
    // j still held what was sent, so it moved; k changed in between, so it stays.
    assert_eq!(bulk(&mut other, &["GET", "k"]).as_deref(), Some("v2"));
    assert!(!exists(&mut other, "j"));
}

/// A connection that fails after some RESTOREs were acknowledged: those keys moved, the rest
/// stay, and the reply is the read error.
#[test]
fn keys_acknowledged_before_a_failure_still_move() {
    let src = Server::start(&[]);
    let mut a = src.client();
    ok(&mut a, &["MSET", "a", "1", "b", "2"]);
    let target = FakeTarget::start(3);
    let port = target.port.to_string();
    let mut mover = TcpStream::connect(("127.0.0.1", src.port)).unwrap();
    mover
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    send(
        &mut mover,
        &migrate(&port, &["", "0", "300", "KEYS", "a", "b"]),
    );
    target
        .requests
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    // SELECT and the first RESTORE answered, then silence.
    target.replies.send(b"+OK\r\n+OK\r\n".to_vec()).unwrap();
    assert_eq!(read_line(&mut BufReader::new(&mover)), IOERR_READ);
    assert!(!exists(&mut a, "a"));
    assert!(exists(&mut a, "b"));
}

#[test]
fn argument_errors() {
    let src = Server::start(&[]);
    let mut a = src.client();
    ok(&mut a, &["SET", "k", "v"]);
    let port = "1";
    let cases: &[(&[&str], &str)] = &[
        (&["k", "0", "100", "FOO"], "-ERR syntax error\r\n"),
        (&["k", "0", "100", "AUTH"], "-ERR syntax error\r\n"),
        (&["k", "0", "100", "AUTH2", "u"], "-ERR syntax error\r\n"),
        (
            &["k", "0", "100", "KEYS", "a"],
            "-ERR When using MIGRATE KEYS option, the key argument must be set to the empty string\r\n",
        ),
        (&["k", "x", "100"], "-ERR value is not an integer or out of range\r\n"),
        (&["k", "0", "x"], "-ERR value is not an integer or out of range\r\n"),
        (&["k", "0"], "-ERR wrong number of arguments for 'migrate' command\r\n"),
    ];
    for (rest, want) in cases {
        assert_eq!(reply(src.port, &migrate(port, rest)), *want, "{rest:?}");
    }
    assert_eq!(bulk(&mut a, &["GET", "k"]).as_deref(), Some("v"));
}

/// A real redis-server 7.0 on a free port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    /// Starts `redis-server`, or `None` (with a note) if it is not installed.
    fn start(extra: &[&str]) -> Option<Redis> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("flowkv-migrate-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            eprintln!("note: redis-server not on PATH; skipping this interop test");
            return None;
        };
        let r = Redis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }

    fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .expect("connect to redis-server")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn into_real_redis() {
    let Some(redis) = Redis::start(&["--requirepass", "pw"]) else {
        return;
    };
    let src = Server::start(&[]);
    let mut a = src.client();
    fill(&mut a);
    let port = redis.port.to_string();
    let line = migrate(
        &port,
        &[
            "", "3", "5000", "AUTH", "pw", "KEYS", "s", "h", "l", "z", "st", "missing",
        ],
    );
    assert_eq!(reply(src.port, &line), "+OK\r\n");
    assert_eq!(int(&mut a, &["DBSIZE"]), 0);
    let mut r = redis.client();
    ok(&mut r, &["AUTH", "pw"]);
    ok(&mut r, &["SELECT", "3"]);
    assert_filled(&mut r);
    // Redis's own BUSYKEY, relayed.
    ok(&mut a, &["SET", "s", "again"]);
    let line = migrate(&port, &["s", "3", "5000", "AUTH", "pw"]);
    assert_eq!(reply(src.port, &line), BUSYKEY);
    assert_eq!(bulk(&mut a, &["GET", "s"]).as_deref(), Some("again"));
}

/// The same failing or no-op MIGRATE lines give redis-server's replies byte for byte.
#[test]
fn replies_match_redis() {
    let Some(redis) = Redis::start(&[]) else {
        return;
    };
    let src = Server::start(&[]);
    let target = Server::start(&[]);
    let (mut a, mut r, mut t) = (src.client(), redis.client(), target.client());
    for con in [&mut a, &mut r] {
        ok(con, &["MSET", "k", "v", "busy", "x"]);
    }
    ok(&mut t, &["SET", "busy", "there"]);
    let closed = free_port().to_string();
    let tport = target.port.to_string();
    let lines: Vec<Vec<&str>> = vec![
        migrate(&closed, &["k", "0", "200"]),
        migrate("-1", &["k", "0", "200"]),
        vec!["MIGRATE", "", "1", "k", "0", "200"],
        migrate(&closed, &["nokey", "0", "200"]),
        migrate(&closed, &["", "0", "200", "KEYS"]),
        migrate(&closed, &["", "0", "200", "KEYS", "n1", "n2"]),
        migrate(&closed, &["k", "0", "200", "bogus"]),
        migrate(&closed, &["k", "0", "200", "AUTH"]),
        migrate(&closed, &["k", "0", "200", "AUTH2", "u"]),
        migrate(&closed, &["k", "0", "200", "KEYS", "k"]),
        migrate(&closed, &["k", "x", "y"]),
        migrate(&closed, &["k", "x", "200"]),
        migrate(&closed, &["k", "0", "200", "COPY", "FOO", "KEYS", "k"]),
        migrate(&tport, &["busy", "0", "1000"]),
        migrate(&tport, &["busy", "0", "1000", "COPY"]),
        migrate(&tport, &["k", "16", "1000", "COPY"]),
        migrate(&tport, &["k", "0", "1000", "COPY", "AUTH", "nopass"]),
    ];
    for line in &lines {
        assert_eq!(reply(src.port, line), reply(redis.port, line), "{line:?}");
    }
    for con in [&mut a, &mut r] {
        assert_eq!(strings(con, &["MGET", "k", "busy"]), ["v", "x"]);
    }
}

/// COMMAND INFO, and the keys and flags COMMAND GETKEYSANDFLAGS finds, as in redis-server.
#[test]
fn key_specs_match_redis() {
    let Some(redis) = Redis::start(&[]) else {
        return;
    };
    let src = Server::start(&[]);
    let (mut us, mut them) = (src.client(), redis.client());
    let info = |con: &mut redis::Connection| q(con, &["COMMAND", "INFO", "migrate"]).unwrap();
    assert_eq!(info(&mut us), info(&mut them));
    let lines: &[&[&str]] = &[
        &["h", "1", "k", "0", "100"],
        &["h", "1", "", "0", "100", "KEYS", "a", "b"],
        &["h", "1", "", "0", "100", "KEYS"],
        &["h", "1", "k", "0", "100", "KEYS", "a"],
        &["h", "1", "", "0", "100", "AUTH", "keys", "KEYS", "a"],
        &["h", "1", "", "0", "100", "AUTH", "keys"],
        &["h", "1", "k", "0", "100", "AUTH", "keys", "COPY"],
        &[
            "h", "1", "", "0", "100", "COPY", "REPLACE", "AUTH2", "u", "p", "KEYS", "a", "b", "c",
        ],
        &["h", "1", "", "0", "100", "bogus", "KEYS", "a"],
        &["h", "1", "", "0", "100", "KEYS", "keys", "b"],
        &["h", "keys", "k", "0", "100"],
    ];
    for rest in lines {
        let run = |con: &mut redis::Connection| {
            let mut line = vec!["COMMAND", "GETKEYSANDFLAGS", "MIGRATE"];
            line.extend_from_slice(rest);
            q(con, &line).map_err(|e| e.to_string())
        };
        assert_eq!(run(&mut us), run(&mut them), "{rest:?}");
    }
}

/// Without COPY the moved keys reach the AOF as DEL; nothing is logged for COPY, NOKEY or
/// a refusal.
#[test]
fn deletions_propagate_as_del() {
    let src = Server::start(&["--appendonly", "yes"]);
    let dst = Server::start(&[]);
    let mut a = src.client();
    let mut b = dst.client();
    let port = dst.port.to_string();
    ok(&mut a, &["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]);
    ok(&mut b, &["SET", "d", "busy"]);
    for line in [
        migrate(&port, &["a", "0", "1000", "COPY"]),
        migrate(&port, &["nokey", "0", "1000"]),
        migrate(&port, &["d", "0", "1000"]),
        migrate(&port, &["", "0", "1000", "KEYS", "b", "nokey", "c", "d"]),
    ] {
        reply(src.port, &line);
    }
    let aof_dir = src.dir.join("appendonlydir");
    let incr: String = std::fs::read_dir(&aof_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    assert!(!incr.to_ascii_uppercase().contains("MIGRATE"), "{incr:?}");
    let tail = "*3\r\n$3\r\nDEL\r\n$1\r\nb\r\n$1\r\nc\r\n";
    assert!(incr.ends_with(tail), "{incr:?}");
    assert_eq!(incr.matches("DEL").count(), 1, "{incr:?}");
}

/// Inside MULTI/EXEC and a script, MIGRATE runs under the transaction's locks and still
/// deletes what it moved.
#[test]
fn in_transactions_and_scripts() {
    let (src, dst) = (Server::start(&[]), Server::start(&[]));
    let (mut a, mut b) = (src.client(), dst.client());
    let port = dst.port.to_string();
    ok(&mut a, &["MSET", "t", "1", "u", "2"]);
    let mut s = TcpStream::connect(("127.0.0.1", src.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut s, &["MULTI"]);
    send(&mut s, &migrate(&port, &["t", "0", "1000"]));
    send(&mut s, &["GET", "t"]);
    send(&mut s, &["EXEC"]);
    let mut r = BufReader::new(&s);
    let got: Vec<String> = (0..6).map(|_| read_line(&mut r)).collect();
    assert_eq!(
        got,
        [
            "+OK\r\n",
            "+QUEUED\r\n",
            "+QUEUED\r\n",
            "*2\r\n",
            "+OK\r\n",
            "$-1\r\n"
        ]
    );
    let script =
        format!("return redis.call('MIGRATE', '127.0.0.1', '{port}', KEYS[1], '0', '1000')");
    assert_eq!(
        q(&mut a, &["EVAL", &script, "1", "u"]).unwrap(),
        Value::Okay
    );
    assert_eq!(int(&mut a, &["DBSIZE"]), 0);
    assert_eq!(strings(&mut b, &["MGET", "t", "u"]), ["1", "2"]);
}

/// Key permissions cover every key MIGRATE names: each is read and deleted.
#[test]
fn acl_key_permissions() {
    let (src, dst) = (Server::start(&[]), Server::start(&[]));
    let mut a = src.client();
    let port = dst.port.to_string();
    ok(
        &mut a,
        &[
            "ACL", "SETUSER", "mig", "on", ">pw", "~a*", "%R~r*", "+@all",
        ],
    );
    ok(&mut a, &["MSET", "a1", "1", "r1", "2"]);
    let mut s = TcpStream::connect(("127.0.0.1", src.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut s, &["AUTH", "mig", "pw"]);
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert_eq!(read_line(&mut r), "+OK\r\n");
    let noperm =
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
    for rest in [
        &["r1", "0", "1000"][..],
        &["", "0", "1000", "KEYS", "a1", "r1"],
        &["", "0", "1000", "KEYS", "a1", "zz"],
    ] {
        send(&mut s, &migrate(&port, rest));
        assert_eq!(read_line(&mut r), noperm, "{rest:?}");
    }
    send(
        &mut s,
        &migrate(&port, &["", "0", "1000", "KEYS", "a1", "a2"]),
    );
    assert_eq!(read_line(&mut r), "+OK\r\n");
    assert_eq!(strings(&mut a, &["KEYS", "*"]), ["r1"]);
}

/// MONITOR and the slow log show AUTH / AUTH2 secrets as "(redacted)", and key names after
/// KEYS as they are, as Redis does.
#[test]
fn secrets_redacted_in_monitor_and_slowlog() {
    let src = Server::start(&["--slowlog-log-slower-than", "0"]);
    let mut m = src.raw();
    m.cmd(&[b"MONITOR"]);
    m.expect("+OK\r\n");
    let closed = free_port().to_string();
    reply(
        src.port,
        &migrate(&closed, &["nokey", "0", "100", "AUTH", "pw1"]),
    );
    let line = migrate(
        &closed,
        &[
            "", "0", "100", "COPY", "AUTH2", "user", "pw2", "KEYS", "auth", "x",
        ],
    );
    reply(src.port, &line);
    let first = std::iter::repeat_with(|| m.line())
        .find(|l| l.contains("\"MIGRATE\""))
        .unwrap();
    assert!(
        first.ends_with("\"nokey\" \"0\" \"100\" \"AUTH\" \"(redacted)\"\r\n"),
        "{first}"
    );
    let second = m.line();
    let want = "\"COPY\" \"AUTH2\" \"(redacted)\" \"(redacted)\" \"KEYS\" \"auth\" \"x\"\r\n";
    assert!(second.ends_with(want), "{second}");
    let mut a = src.client();
    let log = format!("{:?}", q(&mut a, &["SLOWLOG", "GET", "10"]).unwrap());
    assert!(
        !log.contains("pw1") && !log.contains("pw2") && !log.contains("user"),
        "{log}"
    );
    assert!(log.contains("(redacted)"), "{log}");
}
