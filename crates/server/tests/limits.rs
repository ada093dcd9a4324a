//! Client limits end to end: output buffer limits for normal clients, client eviction
//! (`maxmemory-clients`), `tcp-keepalive`, `timeout` and `rename-command`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use common::{int, ok, q, Server};

/// A field of the CLIENT LIST line of the client named `name`; None if it is gone.
fn client_field(con: &mut redis::Connection, name: &str, field: &str) -> Option<u64> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
    let line = list
        .lines()
        .find(|l| l.contains(&format!(" name={name} ")))?;
    let value = line
        .split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))?;
    value.parse().ok()
}

/// Waits up to `secs` for `cond`.
fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// An INFO field as a number.
fn info_field(con: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("everything").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO"))
}

/// Reads everything until the server closes (or resets) the connection; returns the byte
/// count. Panics if the connection stays open past the read timeout.
fn drain_until_closed(raw: &mut common::Raw) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match raw.s.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("still connected after {total} bytes")
            }
            Err(_) => return total,
        }
    }
}

/// A raw connection named `name`, its SETNAME reply read.
fn named_raw(srv: &Server, name: &str) -> common::Raw {
    let mut raw = srv.raw();
    raw.cmd(&[b"CLIENT", b"SETNAME", name.as_bytes()]);
    raw.expect("+OK\r\n");
    raw
}

#[test]
fn a_reply_over_the_hard_limit_closes_the_client_without_sending_anything() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 100000 0 0",
        ],
    );
    let item = "x".repeat(1000);
    for _ in 0..150 {
        int(&mut con, &["RPUSH", "mylist", &item]);
    }
    let mut raw = named_raw(&srv, "biglist");
    raw.cmd(&[b"LRANGE", b"mylist", b"0", b"-1"]);
    // The 150 KB reply is over the limit: the client goes, and none of it is sent.
    assert_eq!(drain_until_closed(&mut raw), 0);
    assert_eq!(client_field(&mut con, "biglist", "id"), None);
    // The limit is per client: the same reply still reaches a reader under it.
    ok(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0",
        ],
    );
    let items: Vec<String> = redis::cmd("LRANGE")
        .arg("mylist")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(items.len(), 150);
}

#[test]
fn a_client_pipelining_big_replies_without_reading_is_cut_off_at_the_hard_limit() {
    let srv = Server::start(&["--client-output-buffer-limit", "normal 4mb 0 0"]);
    let mut con = srv.client();
    ok(&mut con, &["SET", "big", &"v".repeat(100_000)]);
    let mut raw = named_raw(&srv, "greedy");
    // 2,000 GETs: 200 MB of replies if nothing stopped them.
    let pipeline = b"GET big\r\n".repeat(2000);
    raw.send(&pipeline);
    assert!(
        wait_for(10, || client_field(&mut con, "greedy", "id").is_none()),
        "the client that never reads was not disconnected"
    );
    // What reached it is what the sockets held, far less than the 200 MB asked for.
    let got = drain_until_closed(&mut raw);
    assert!(got < 50 << 20, "{got} bytes sent before the cut-off");
    // Everyone else is served, and the server holds no leftover of the cut-off output.
    assert_eq!(
        q(&mut con, &["PING"]).unwrap(),
        redis::Value::SimpleString("PONG".into())
    );
    let used = info_field(&mut con, "used_memory");
    assert!(used < 64 << 20, "used_memory {used}");
}

#[test]
fn the_soft_limit_closes_a_client_only_after_its_seconds() {
    let srv = Server::start(&["--client-output-buffer-limit", "normal 0 256kb 2"]);
    let mut con = srv.client();
    ok(&mut con, &["SET", "big", &"v".repeat(200_000)]);
    let mut raw = named_raw(&srv, "slow");
    let started = Instant::now();
    raw.send(&b"GET big\r\n".repeat(200));
    // Over the soft limit, still connected while its seconds run...
    assert!(wait_for(5, || client_field(&mut con, "slow", "omem")
        >= Some(256 * 1024)));
    // ...then closed, though no more traffic comes.
    assert!(wait_for(6, || client_field(&mut con, "slow", "id").is_none()));
    assert!(started.elapsed() >= Duration::from_secs(2));
    // CLIENT LIST's obl/oll describe a reader's (empty) output buffer.
    let mut other = named_raw(&srv, "other");
    other.cmd(&[b"PING"]);
    other.expect("+PONG\r\n");
    assert_eq!(client_field(&mut con, "other", "obl"), Some(0));
    assert_eq!(client_field(&mut con, "other", "oll"), Some(0));
}

/// Sends the start of a command whose one argument is `n` bytes long, all of it but the
/// final CRLF, so it sits in the query buffer.
fn fill_query_buffer(srv: &Server, name: &str, n: usize) -> common::Raw {
    let mut raw = named_raw(srv, name);
    let mut req = format!("*2\r\n${n}\r\n").into_bytes();
    req.extend(std::iter::repeat_n(b'v', n));
    raw.s.write_all(&req).unwrap();
    raw
}

/// The sum of CLIENT LIST's tot-mem over every client.
fn total_client_mem(con: &mut redis::Connection) -> u64 {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
    list.lines()
        .filter_map(|l| l.split(' ').find_map(|kv| kv.strip_prefix("tot-mem=")))
        .map(|v| v.parse::<u64>().unwrap())
        .sum()
}

#[test]
fn client_eviction_takes_the_biggest_client_first_and_spares_no_evict() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["CLIENT", "SETNAME", "control"]);
    ok(&mut con, &["CLIENT", "NO-EVICT", "ON"]);
    let mut spared = named_raw(&srv, "spared");
    spared.cmd(&[b"CLIENT", b"NO-EVICT", b"ON"]);
    spared.expect("+OK\r\n");
    let mut req = b"*2\r\n$1800000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'v', 1_800_000));
    spared.send(&req);
    let _small = fill_query_buffer(&srv, "small", 300_000);
    let _big = fill_query_buffer(&srv, "big", 1_500_000);
    for (name, n) in [
        ("small", 300_000),
        ("big", 1_500_000),
        ("spared", 1_800_000),
    ] {
        assert!(
            wait_for(5, || client_field(&mut con, name, "qbuf") >= Some(n)),
            "{name}'s query buffer did not fill"
        );
    }
    let big = client_field(&mut con, "big", "tot-mem").unwrap();
    assert!(big >= 1_500_000, "tot-mem {big}");
    // INFO's client memory is the same figure CLIENT LIST shows per client.
    let total = total_client_mem(&mut con);
    let info_total = info_field(&mut con, "mem_clients_normal");
    assert!(
        info_total.abs_diff(total) < 64 * 1024,
        "{info_total} vs {total}"
    );
    assert_eq!(info_field(&mut con, "evicted_clients"), 0);
    // A limit that evicting `big` gets under: `spared` is bigger but protected, `small`
    // is not needed.
    let limit = total - big / 2;
    ok(
        &mut con,
        &["CONFIG", "SET", "maxmemory-clients", &limit.to_string()],
    );
    assert_eq!(client_field(&mut con, "big", "id"), None);
    assert!(client_field(&mut con, "spared", "id").is_some());
    assert!(client_field(&mut con, "small", "id").is_some());
    assert_eq!(info_field(&mut con, "evicted_clients"), 1);
    assert!(total_client_mem(&mut con) < limit);
}

#[test]
fn client_no_evict_protects_a_client_over_the_limit() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["CLIENT", "NO-EVICT", "ON"]);
    ok(&mut con, &["SET", "big", &"v".repeat(100_000)]);
    ok(&mut con, &["CONFIG", "SET", "maxmemory-clients", "1mb"]);
    // A protected client may hold more than the limit in unread replies.
    let mut keeper = named_raw(&srv, "keeper");
    keeper.cmd(&[b"CLIENT", b"NO-EVICT", b"ON"]);
    keeper.expect("+OK\r\n");
    keeper.send(&b"GET big\r\n".repeat(100));
    assert!(wait_for(5, || client_field(&mut con, "keeper", "tot-mem")
        > Some(2 << 20)));
    assert_eq!(info_field(&mut con, "evicted_clients"), 0);
    // Over the limit, any client that is not protected goes, even a new small one.
    let mut victim = srv.raw();
    victim.cmd(&[b"PING"]);
    assert_eq!(drain_until_closed(&mut victim), 0);
    assert_eq!(info_field(&mut con, "evicted_clients"), 1);
    assert!(client_field(&mut con, "keeper", "id").is_some());
    // Turning the protection off gets the big client evicted.
    keeper.send(b"CLIENT NO-EVICT OFF\r\n");
    assert!(wait_for(5, || client_field(&mut con, "keeper", "id").is_none()));
    assert_eq!(info_field(&mut con, "evicted_clients"), 2);
    // The protected control client is still served.
    assert_eq!(int(&mut con, &["EXISTS", "nothing"]), 0);
}

#[test]
fn maxmemory_clients_as_a_percentage_of_maxmemory() {
    let srv = Server::start(&["--maxmemory", "10mb", "--maxmemory-clients", "10%"]);
    let mut con = srv.client();
    ok(&mut con, &["CLIENT", "NO-EVICT", "ON"]);
    // Half of the 1 MB limit stays; 1.2 MB goes.
    let _half = fill_query_buffer(&srv, "half", 400_000);
    assert!(wait_for(5, || client_field(&mut con, "half", "qbuf")
        >= Some(400_000)));
    let _over = fill_query_buffer(&srv, "over", 1_200_000);
    assert!(wait_for(5, || client_field(&mut con, "over", "id").is_none()));
    assert!(client_field(&mut con, "half", "id").is_some());
}

/// The keepalive timer of the server's end of the connection whose client side is
/// `client_port`, from /proc/net/tcp: (timer kind, hundredths of a second left). Kind 2
/// is the keepalive timer.
fn server_socket_timer(server_port: u16, client_port: u16) -> Option<(u32, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!(":{server_port:04X}");
    let remote = format!(":{client_port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if !(f.get(1)?.ends_with(&local) && f.get(2)?.ends_with(&remote)) {
            return None;
        }
        let (kind, when) = f.get(5)?.split_once(':')?;
        Some((kind.parse().ok()?, u64::from_str_radix(when, 16).ok()?))
    })
}

#[test]
fn tcp_keepalive_is_set_on_accepted_sockets() {
    for (secs, expect_timer) in [(60u64, true), (0, false)] {
        let srv = Server::start(&["--tcp-keepalive", &secs.to_string()]);
        let mut raw = srv.raw();
        raw.cmd(&[b"PING"]);
        raw.expect("+PONG\r\n");
        let client_port = raw.s.local_addr().unwrap().port();
        let (kind, left) = server_socket_timer(srv.port, client_port).expect("socket listed");
        if expect_timer {
            assert_eq!(kind, 2, "no keepalive timer");
            assert!(left > 0 && left <= secs * 100, "{left}");
        } else {
            assert_eq!(kind, 0);
        }
    }
    // CONFIG SET applies to connections accepted afterwards.
    let srv = Server::start(&["--tcp-keepalive", "0"]);
    let mut con = srv.client();
    ok(&mut con, &["CONFIG", "SET", "tcp-keepalive", "30"]);
    let mut raw = srv.raw();
    raw.cmd(&[b"PING"]);
    raw.expect("+PONG\r\n");
    let port = raw.s.local_addr().unwrap().port();
    assert_eq!(server_socket_timer(srv.port, port).map(|t| t.0), Some(2));
}

#[test]
fn timeout_closes_idle_normal_clients_only() {
    let srv = Server::start(&["--timeout", "1"]);
    let mut idle = named_raw(&srv, "idle");
    let mut sub = srv.raw();
    sub.cmd(&[b"SUBSCRIBE", b"ch"]);
    sub.line();
    let mut blocked = srv.raw();
    blocked.cmd(&[b"BLPOP", b"nolist", b"0"]);
    let started = Instant::now();
    assert_eq!(drain_until_closed(&mut idle), 0);
    assert!(started.elapsed() >= Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(1500));
    // The subscriber and the blocked client are still there, and still served.
    let mut con = srv.client();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg("hi")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(int(&mut con, &["RPUSH", "nolist", "x"]), 1);
    assert_eq!(blocked.line(), "*2\r\n");
}

fn config_file(srv_dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(srv_dir).unwrap();
    let path = srv_dir.join("renames.conf");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn rename_command_from_the_config_file() {
    let dir = std::env::temp_dir().join(format!("flowkv-limits-rename-{}", std::process::id()));
    let conf = config_file(
        &dir,
        "rename-command get fetch\nrename-command FLUSHALL \"\"\nrename-command config cfg\n",
    );
    let srv = Server::start_with(Some(&conf), &[]);
    let mut con = srv.client();
    assert_eq!(
        common::err(&mut con, &["GET", "k"]),
        "ERR unknown command 'GET', with args beginning with: 'k' "
    );
    ok(&mut con, &["SET", "k", "v"]);
    assert_eq!(
        common::bulk(&mut con, &["FETCH", "k"]).as_deref(),
        Some("v")
    );
    assert_eq!(
        common::err(&mut con, &["FLUSHALL"]),
        "ERR unknown command 'FLUSHALL', with args beginning with: "
    );
    let got: Vec<String> = redis::cmd("CFG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, ["maxmemory", "0"]);
    assert!(
        common::err(&mut con, &["CONFIG", "GET", "x"]).starts_with("ERR unknown command 'CONFIG'")
    );
    // Scripts call commands by their new names too.
    let v: String = redis::cmd("EVAL")
        .arg("return redis.call('fetch', KEYS[1])")
        .arg(1)
        .arg("k")
        .query(&mut con)
        .unwrap();
    assert_eq!(v, "v");
    // The removed command leaves the command count; keys are found under the new name.
    let plain = Server::start(&[]);
    let all = int(&mut plain.client(), &["COMMAND", "COUNT"]);
    assert_eq!(int(&mut con, &["COMMAND", "COUNT"]), all - 1);
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("fetch")
        .arg("k")
        .query(&mut con)
        .unwrap();
    assert_eq!(keys, ["k"]);
    // COMMAND INFO finds it by its new name and describes it by its original one; COMMAND
    // LIST leaves the removed command out.
    let info: redis::Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("fetch")
        .arg("get")
        .query(&mut con)
        .unwrap();
    let redis::Value::Array(items) = info else {
        panic!("{info:?}")
    };
    match &items[..] {
        [redis::Value::Array(fetch), redis::Value::Nil] => {
            assert_eq!(fetch[0], redis::Value::BulkString(b"get".to_vec()));
        }
        other => panic!("{other:?}"),
    }
    let list: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(&mut con).unwrap();
    assert!(!list.iter().any(|n| n == "flushall"));
    assert!(list.iter().any(|n| n == "get"));
    // ACL rules and commandstats keep the original name, as in Redis.
    ok(&mut con, &["ACL", "SETUSER", "u", "+get"]);
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut con)
        .unwrap();
    assert!(info.contains("cmdstat_get:calls="), "{info}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rename_command_errors_stop_the_server_at_start_up() {
    let dir = std::env::temp_dir().join(format!("flowkv-limits-bad-{}", std::process::id()));
    for (line, why) in [
        (
            "rename-command nosuch bar",
            "No such command in rename-command",
        ),
        (
            "rename-command get set",
            "Target command name already exists",
        ),
    ] {
        let conf = config_file(&dir, &format!("{line}\n"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowkv-server"))
            .arg(&conf)
            .args(["--port", &common::free_port().to_string()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why) && stderr.contains(line), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
