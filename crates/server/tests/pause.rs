//! CLIENT PAUSE / UNPAUSE and CLIENT NO-TOUCH against the real binary.

mod common;

use common::{bulk, err, int, ok, Raw, Server};
use std::time::{Duration, Instant};

fn info_field(con: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
        .to_string()
}

/// Waits until INFO blocked_clients says `n` (postponed clients count as blocked).
fn wait_blocked(con: &mut redis::Connection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(con, "blocked_clients") != n.to_string() {
        assert!(
            Instant::now() < deadline,
            "blocked_clients never reached {n}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True if `r` has nothing to read within `ms`.
fn silent(r: &mut Raw, ms: u64) -> bool {
    r.silent_for(Duration::from_millis(ms))
}

#[test]
fn write_pause_holds_writes_until_unpause_and_lets_reads_through() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    ok(&mut admin, &["SET", "k", "v1"]);
    ok(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"]);

    // Reads and admin commands answer at once.
    let mut reader = s.client();
    assert_eq!(bulk(&mut reader, &["GET", "k"]).as_deref(), Some("v1"));
    assert_eq!(info_field(&mut reader, "blocked_clients"), "0");

    // A write waits, shown as blocked; PUBLISH (may-replicate) too.
    let mut w = s.raw();
    w.cmd(&[b"SET", b"k", b"v2"]);
    let mut p = s.raw();
    p.cmd(&[b"PUBLISH", b"ch", b"m"]);
    wait_blocked(&mut admin, 2);
    assert!(silent(&mut w, 100));
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    assert!(
        list.lines().filter(|l| l.contains("flags=b ")).count() == 2,
        "{list}"
    );
    assert_eq!(bulk(&mut admin, &["GET", "k"]).as_deref(), Some("v1"));
    // Arity errors still come back at once.
    assert_eq!(
        err(&mut admin, &["SET", "k"]),
        "ERR wrong number of arguments for 'set' command"
    );

    ok(&mut admin, &["CLIENT", "UNPAUSE"]);
    w.expect("+OK\r\n");
    p.expect(":0\r\n");
    assert_eq!(bulk(&mut admin, &["GET", "k"]).as_deref(), Some("v2"));
    assert_eq!(info_field(&mut admin, "blocked_clients"), "0");
}

#[test]
fn pause_ends_by_itself_and_keeps_pipelined_order() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    let started = Instant::now();
    ok(&mut admin, &["CLIENT", "PAUSE", "300"]);
    let mut c = s.raw();
    // ALL holds reads too; the three replies come in order once the pause ends.
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n*2\r\n$4\r\nINCR\r\n$1\r\nx\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n");
    c.expect("+OK\r\n:2\r\n$1\r\n2\r\n");
    assert!(started.elapsed() >= Duration::from_millis(290));
}

#[test]
fn transactions_and_scripts_wait_only_if_they_may_write() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    ok(&mut admin, &["SET", "foo", "bar"]);

    // A transaction queued before the pause with a write waits at EXEC.
    let mut tx = s.raw();
    tx.cmd(&[b"MULTI"]);
    tx.expect("+OK\r\n");
    tx.cmd(&[b"SET", b"foo", b"baz"]);
    tx.expect("+QUEUED\r\n");
    ok(&mut admin, &["CLIENT", "PAUSE", "100000", "WRITE"]);

    // A read-only transaction and read-only scripts run.
    let mut ro = s.client();
    let (pong, got): (String, String) = redis::pipe()
        .atomic()
        .cmd("PING")
        .cmd("GET")
        .arg("foo")
        .query(&mut ro)
        .unwrap();
    assert_eq!((pong.as_str(), got.as_str()), ("PONG", "bar"));
    let v: i64 = redis::cmd("EVAL")
        .arg("#!lua flags=no-writes\nreturn 7")
        .arg(0)
        .query(&mut ro)
        .unwrap();
    assert_eq!(v, 7);
    let v: String = redis::cmd("EVAL_RO")
        .arg("return redis.call('get', KEYS[1])")
        .arg(1)
        .arg("foo")
        .query(&mut ro)
        .unwrap();
    assert_eq!(v, "bar");

    // EXEC with a write, and a script without a shebang, wait.
    tx.cmd(&[b"EXEC"]);
    let mut script = s.raw();
    script.cmd(&[b"EVAL", b"return 1", b"0"]);
    wait_blocked(&mut admin, 2);
    assert!(silent(&mut tx, 100));

    ok(&mut admin, &["CLIENT", "UNPAUSE"]);
    tx.expect("*1\r\n+OK\r\n");
    script.expect(":1\r\n");
    assert_eq!(bulk(&mut admin, &["GET", "foo"]).as_deref(), Some("baz"));
}

#[test]
fn expiry_deletes_nothing_while_paused() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&mut c, &["SET", "a", "1", "PX", "30"]);
    ok(&mut c, &["SET", "b", "1", "PX", "30"]);
    let before: i64 = info_field(&mut c, "expired_keys").parse().unwrap();
    ok(&mut c, &["CLIENT", "PAUSE", "100000", "WRITE"]);
    std::thread::sleep(Duration::from_millis(300));
    // Logically expired, but still in the dataset and not counted.
    assert_eq!(bulk(&mut c, &["GET", "a"]), None);
    assert_eq!(bulk(&mut c, &["GET", "b"]), None);
    assert_eq!(int(&mut c, &["DBSIZE"]), 2);
    assert_eq!(
        info_field(&mut c, "expired_keys").parse::<i64>().unwrap(),
        before
    );
    ok(&mut c, &["CLIENT", "UNPAUSE"]);
    assert_eq!(bulk(&mut c, &["GET", "a"]), None);
    assert_eq!(bulk(&mut c, &["GET", "b"]), None);
    assert_eq!(
        info_field(&mut c, "expired_keys").parse::<i64>().unwrap(),
        before + 2
    );
}

#[test]
fn pause_argument_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        err(&mut c, &["CLIENT", "PAUSE", "abc"]),
        "ERR timeout is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "PAUSE", "-1"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "PAUSE", "10", "READ"]),
        "ERR CLIENT PAUSE mode must be WRITE or ALL"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "PAUSE", "10", "ALL", "x"]),
        "ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP."
    );
    // A pause of 0 ms holds nothing.
    ok(&mut c, &["CLIENT", "PAUSE", "0"]);
    ok(&mut c, &["SET", "k", "v"]);
}

#[test]
fn no_touch_keeps_idle_time_except_for_touch() {
    let s = Server::start(&[]);
    let mut c = s.client();
    ok(&mut c, &["SET", "k", "v"]);
    std::thread::sleep(Duration::from_millis(2100));
    let mut quiet = s.client();
    ok(&mut quiet, &["CLIENT", "NO-TOUCH", "ON"]);
    let list: String = redis::cmd("CLIENT").arg("INFO").query(&mut quiet).unwrap();
    assert!(list.contains(" flags=T "), "{list}");
    assert_eq!(bulk(&mut quiet, &["GET", "k"]).as_deref(), Some("v"));
    assert!(int(&mut c, &["OBJECT", "IDLETIME", "k"]) >= 2);
    // TOUCH still touches.
    assert_eq!(int(&mut quiet, &["TOUCH", "k"]), 1);
    assert_eq!(int(&mut c, &["OBJECT", "IDLETIME", "k"]), 0);
    ok(&mut quiet, &["CLIENT", "NO-TOUCH", "OFF"]);
    assert_eq!(
        err(&mut quiet, &["CLIENT", "NO-TOUCH", "maybe"]),
        "ERR syntax error"
    );
}
