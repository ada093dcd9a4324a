//! End-to-end tests of the server commands (INFO, FLUSHDB/FLUSHALL, SWAPDB, TIME, LASTSAVE,
//! SHUTDOWN) and DEBUG, against the real binary.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use redis::{Connection, Value};

/// INFO's `field:value` for one field, if present.
fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::to_string)
}

fn info(con: &mut Connection, sections: &[&str]) -> String {
    redis::cmd("INFO").arg(sections).query(con).unwrap()
}

fn num(info: &str, name: &str) -> u64 {
    field(info, name)
        .unwrap_or_else(|| panic!("no {name} in INFO"))
        .parse()
        .unwrap()
}

/// Polls `f` until it returns true or `secs` pass.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Switches a raw connection to RESP3 and skips HELLO's reply.
fn hello3(raw: &mut common::Raw) {
    raw.send(b"HELLO 3\r\nPING\r\n");
    while raw.line() != "+PONG\r\n" {}
}

fn err(r: redis::RedisResult<Value>) -> String {
    let e = r.unwrap_err();
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}

#[test]
fn info_default_and_all_sections() {
    let s = Server::start(&[]);
    let mut con = s.client();
    let headers = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("# "))
            .map(|l| l[2..].to_string())
            .collect()
    };
    let default = info(&mut con, &[]);
    assert_eq!(
        headers(&default),
        [
            "Server",
            "Clients",
            "Memory",
            "Persistence",
            "Stats",
            "Replication",
            "CPU",
            "Modules",
            "Errorstats",
            "Cluster",
            "Keyspace"
        ]
    );
    let again = info(&mut con, &["default"]);
    assert_eq!(headers(&again), headers(&default));
    let all = info(&mut con, &["all"]);
    assert!(headers(&all).contains(&"Commandstats".to_string()));
    assert_eq!(headers(&info(&mut con, &["everything"])), headers(&all));
    // Several sections, any case, each once, in Redis's order.
    assert_eq!(
        headers(&info(&mut con, &["KEYSPACE", "cpu", "Cpu"])),
        ["CPU", "Keyspace"]
    );
    let cpu_all = info(&mut con, &["cpu", "all"]);
    assert_eq!(cpu_all.matches("used_cpu_user_children:").count(), 1);
    assert_eq!(info(&mut con, &["sentinel"]), "");

    // Every line is `field:value`, sections separated by one empty line.
    for line in default.split("\r\n") {
        assert!(
            line.is_empty() || line.starts_with("# ") || line.contains(':'),
            "bad line {line:?}"
        );
    }
    assert_eq!(field(&default, "redis_version").unwrap(), "7.0.15");
    assert_eq!(
        field(&default, "flowkv_version").unwrap(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(field(&default, "redis_mode").unwrap(), "standalone");
    assert_eq!(num(&default, "tcp_port"), u64::from(s.port));
    assert!(num(&default, "process_id") > 1);
    assert_eq!(field(&default, "run_id").unwrap().len(), 40);
    assert!(num(&default, "uptime_in_seconds") < 60);
    assert_eq!(num(&default, "hz"), 10);
    assert_eq!(num(&default, "maxclients"), 10000);
    assert!(num(&default, "used_memory") > 100_000);
    assert!(num(&default, "used_memory_peak") >= num(&default, "used_memory"));
    assert!(field(&default, "mem_allocator")
        .unwrap()
        .starts_with("jemalloc-"));
    assert_eq!(field(&default, "maxmemory_policy").unwrap(), "noeviction");
    assert_eq!(num(&default, "loading"), 0);
    assert_eq!(field(&default, "role").unwrap(), "master");
    assert_eq!(num(&default, "master_repl_offset"), 0);
    assert_eq!(num(&default, "cluster_enabled"), 0);
    assert!(field(&default, "used_cpu_user").unwrap().contains('.'));
    assert!(field(&default, "rejected_calls").is_none());
    assert!(all.contains("rejected_calls="));
}

#[test]
fn info_resp3_is_verbatim_text() {
    let s = Server::start(&[]);
    let mut raw = s.raw();
    hello3(&mut raw);
    raw.cmd(&[b"INFO", b"cluster"]);
    let body = "# Cluster\r\ncluster_enabled:0\r\n";
    raw.expect(&format!("={}\r\ntxt:{body}\r\n", body.len() + 4));
    raw.cmd(&[b"INFO", b"nosuchsection"]);
    raw.expect("=4\r\ntxt:\r\n");
}

#[test]
fn info_counts_clients_keys_commands_and_errors() {
    let s = Server::start(&[]);
    let mut con = s.client();
    let _others: Vec<Connection> = (0..2).map(|_| s.client()).collect();
    assert!(eventually(5, || num(
        &info(&mut con, &["clients"]),
        "connected_clients"
    ) == 3));

    for i in 0..5 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .query(&mut con)
            .unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg("ttl")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let text = info(&mut con, &["keyspace"]);
    assert_eq!(field(&text, "db0").unwrap(), "keys=6,expires=1,avg_ttl=0");
    assert!(field(&text, "db1").is_none());

    for key in ["k0", "k1", "missing"] {
        let _: Option<String> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
    }
    let text = info(&mut con, &["commandstats"]);
    let get = field(&text, "cmdstat_get").unwrap();
    assert!(get.starts_with("calls=3,usec="), "cmdstat_get:{get}");
    assert!(get.ends_with(",rejected_calls=0,failed_calls=0"));
    let stats = info(&mut con, &["stats"]);
    assert_eq!(num(&stats, "keyspace_hits"), 2);
    assert_eq!(num(&stats, "keyspace_misses"), 1);
    assert!(num(&stats, "total_commands_processed") >= 10);
    assert!(num(&stats, "total_connections_received") >= 3);
    assert!(num(&stats, "total_net_input_bytes") > 0);

    // Errors: an unknown command and an arity error, counted by code; the arity error is a
    // rejected call of GET. (Counted from a reset: the harness's readiness PINGs may have
    // met -LOADING.)
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    assert!(redis::cmd("NOSUCHCMD").query::<Value>(&mut con).is_err());
    assert!(redis::cmd("GET").query::<Value>(&mut con).is_err());
    let text = info(&mut con, &["errorstats", "commandstats", "stats"]);
    assert_eq!(field(&text, "errorstat_ERR").unwrap(), "count=2");
    assert_eq!(num(&text, "total_error_replies"), 2);
    assert!(field(&text, "cmdstat_get")
        .unwrap()
        .ends_with(",rejected_calls=1,failed_calls=0"));
}

/// Writes a 1000-element value with `cmd` (RPUSH, HSET…), each element `width` arguments.
fn big_value(con: &mut Connection, cmd: &str, key: &str, width: usize) {
    let mut c = redis::cmd(cmd);
    c.arg(key);
    for i in 0..1000 {
        for _ in 0..width {
            c.arg(i);
        }
    }
    let _: i64 = c.query(con).unwrap();
}

/// INFO's count of values freed by the lazy-free thread.
fn lazyfreed(con: &mut Connection) -> u64 {
    num(&info(con, &["memory"]), "lazyfreed_objects")
}

#[test]
fn lazyfree_lazy_expire_frees_big_expired_values_in_the_background() {
    let s = Server::start(&[]);
    let mut con = s.client();
    let big_hash = |con: &mut Connection, key: &str| {
        big_value(con, "HSET", key, 2);
        let _: i64 = redis::cmd("PEXPIRE").arg(key).arg(30).query(con).unwrap();
    };
    // Off (the default): an expired value is freed by whoever finds it.
    big_hash(&mut con, "plain");
    std::thread::sleep(std::time::Duration::from_millis(60));
    let gone: i64 = redis::cmd("EXISTS").arg("plain").query(&mut con).unwrap();
    assert_eq!(gone, 0);
    assert_eq!(lazyfreed(&mut con), 0);
    // On: big values go to the lazy-free thread, whether a lookup or the active cycle finds
    // them expired; small ones are freed at once.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("lazyfree-lazy-expire")
        .arg("yes")
        .query(&mut con)
        .unwrap();
    big_hash(&mut con, "looked-up");
    big_hash(&mut con, "swept");
    let _: () = redis::cmd("SET")
        .arg("small")
        .arg("v")
        .arg("PX")
        .arg(30)
        .query(&mut con)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(60));
    let gone: i64 = redis::cmd("EXISTS")
        .arg("looked-up")
        .query(&mut con)
        .unwrap();
    assert_eq!(gone, 0);
    assert!(eventually(5, || {
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        size == 0 && lazyfreed(&mut con) == 2
    }));
}

#[test]
fn lazyfree_lazy_server_del_frees_replaced_values_in_the_background() {
    let s = Server::start(&[]);
    let mut con = s.client();
    let big_list = |con: &mut Connection, key: &str| big_value(con, "RPUSH", key, 1);
    // Each way a command replaces or deletes a value as a side effect: SET over it, RENAME
    // onto it, a *STORE over it, a *STORE of an empty result, RESTORE REPLACE.
    let replace_all = |con: &mut Connection| {
        for k in ["set", "renamed", "stored", "emptied", "restored"] {
            let _: i64 = redis::cmd("DEL").arg(k).query(con).unwrap();
            big_list(con, k);
        }
        let _: () = redis::cmd("SET").arg("set").arg("v").query(con).unwrap();
        let _: () = redis::cmd("SET").arg("src").arg("s").query(con).unwrap();
        let _: () = redis::cmd("RENAME")
            .arg("src")
            .arg("renamed")
            .query(con)
            .unwrap();
        let _: i64 = redis::cmd("SADD").arg("a").arg("x").query(con).unwrap();
        let _: i64 = redis::cmd("SUNIONSTORE")
            .arg("stored")
            .arg("a")
            .query(con)
            .unwrap();
        let _: i64 = redis::cmd("SINTERSTORE")
            .arg("emptied")
            .arg("a")
            .arg("missing")
            .query(con)
            .unwrap();
        let dump: Vec<u8> = redis::cmd("DUMP").arg("a").query(con).unwrap();
        let _: () = redis::cmd("RESTORE")
            .arg("restored")
            .arg(0)
            .arg(dump)
            .arg("REPLACE")
            .query(con)
            .unwrap();
        // The new values are in place whichever thread frees the old ones.
        let kinds: Vec<String> = ["set", "renamed", "stored", "restored"]
            .iter()
            .map(|k| redis::cmd("TYPE").arg(k).query(con).unwrap())
            .collect();
        assert_eq!(kinds, ["string", "string", "set", "set"]);
        let emptied: i64 = redis::cmd("EXISTS").arg("emptied").query(con).unwrap();
        assert_eq!(emptied, 0);
    };
    // Off (the default): freed in place.
    replace_all(&mut con);
    assert_eq!(lazyfreed(&mut con), 0);
    // On: the five big lists go to the lazy-free thread; small values (the string SET
    // replaces in "renamed"'s place…) do not.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("lazyfree-lazy-server-del")
        .arg("yes")
        .query(&mut con)
        .unwrap();
    replace_all(&mut con);
    assert!(eventually(5, || lazyfreed(&mut con) == 5));
    // EXPIRE with a time in the past deletes at once, freed as lazyfree-lazy-expire says.
    big_list(&mut con, "past");
    let _: i64 = redis::cmd("EXPIRE")
        .arg("past")
        .arg(-1)
        .query(&mut con)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(lazyfreed(&mut con), 5);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("lazyfree-lazy-expire")
        .arg("yes")
        .query(&mut con)
        .unwrap();
    big_list(&mut con, "past");
    let _: i64 = redis::cmd("EXPIRE")
        .arg("past")
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert!(eventually(5, || lazyfreed(&mut con) == 6));
    let gone: i64 = redis::cmd("EXISTS").arg("past").query(&mut con).unwrap();
    assert_eq!(gone, 0);
}

#[test]
fn flushdb_and_flushall_sync_and_async() {
    let s = Server::start(&[]);
    let mut con = s.client();
    let fill = |con: &mut Connection, db: i64, n: usize| {
        let _: () = redis::cmd("SELECT").arg(db).query(con).unwrap();
        for i in 0..n {
            let _: () = redis::cmd("SET").arg(i).arg(i).query(con).unwrap();
        }
    };
    let dbsize = |con: &mut Connection, db: i64| -> i64 {
        let _: () = redis::cmd("SELECT").arg(db).query(con).unwrap();
        redis::cmd("DBSIZE").query(con).unwrap()
    };
    fill(&mut con, 0, 100);
    fill(&mut con, 1, 50);
    let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
    let ok: String = redis::cmd("FLUSHDB").arg("ASYNC").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(dbsize(&mut con, 0), 0);
    assert_eq!(dbsize(&mut con, 1), 50);
    // The lazy-free thread frees the 100 keys in the background.
    assert!(eventually(5, || {
        let m = info(&mut con, &["memory"]);
        num(&m, "lazyfreed_objects") == 100 && num(&m, "lazyfree_pending_objects") == 0
    }));

    fill(&mut con, 0, 10);
    let _: () = redis::cmd("FLUSHALL").arg("async").query(&mut con).unwrap();
    assert_eq!(dbsize(&mut con, 0), 0);
    assert_eq!(dbsize(&mut con, 1), 0);
    assert!(eventually(5, || num(
        &info(&mut con, &["memory"]),
        "lazyfreed_objects"
    ) == 160));

    fill(&mut con, 2, 10);
    let _: () = redis::cmd("FLUSHALL").arg("SYNC").query(&mut con).unwrap();
    assert_eq!(dbsize(&mut con, 2), 0);
    fill(&mut con, 2, 10);
    let _: () = redis::cmd("FLUSHDB").query(&mut con).unwrap();
    assert_eq!(dbsize(&mut con, 2), 0);
    assert_eq!(
        err(redis::cmd("FLUSHALL")
            .arg("ASYNC")
            .arg("SYNC")
            .query(&mut con)),
        "ERR syntax error"
    );
    assert_eq!(
        err(redis::cmd("FLUSHDB").arg("LATER").query(&mut con)),
        "ERR syntax error"
    );
}

#[test]
fn swapdb_swaps_and_validates() {
    let s = Server::start(&[]);
    let mut con = s.client();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("zero")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("one")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("k2")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let ok: String = redis::cmd("SWAPDB").arg(0).arg(1).query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    // Still on database 1, which now holds database 0's keys.
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "zero");
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 1);
    let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "one");
    let _: () = redis::cmd("SWAPDB").arg(3).arg(3).query(&mut con).unwrap();

    for (a, b, e) in [
        ("x", "1", "ERR invalid first DB index"),
        ("1", "1.5", "ERR invalid second DB index"),
        ("0", "16", "ERR DB index is out of range"),
        ("-1", "0", "ERR DB index is out of range"),
    ] {
        assert_eq!(err(redis::cmd("SWAPDB").arg(a).arg(b).query(&mut con)), e);
    }
}

#[test]
fn time_and_lastsave() {
    let s = Server::start(&[]);
    let mut con = s.client();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut raw = s.raw();
    raw.cmd(&[b"TIME"]);
    assert_eq!(raw.line(), "*2\r\n");
    let secs_len: usize = raw.line()[1..].trim_end().parse().unwrap();
    let secs: u64 = String::from_utf8(raw.read_n(secs_len + 2))
        .unwrap()
        .trim_end()
        .parse()
        .unwrap();
    assert!(secs.abs_diff(now) <= 2);
    let us_len: usize = raw.line()[1..].trim_end().parse().unwrap();
    let us: u64 = String::from_utf8(raw.read_n(us_len + 2))
        .unwrap()
        .trim_end()
        .parse()
        .unwrap();
    assert!(us < 1_000_000);

    let last: u64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(last.abs_diff(now) <= 5);
    assert_eq!(
        err(redis::cmd("TIME").arg("x").query(&mut con)),
        "ERR wrong number of arguments for 'time' command"
    );
}

#[test]
fn debug_is_gated_by_enable_debug_command() {
    let s = Server::start(&[]);
    let mut con = s.client();
    assert_eq!(
        err(redis::cmd("DEBUG").arg("SLEEP").arg(0).query(&mut con)),
        "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."
    );
    // "local" lets loopback clients in (the harness connects over 127.0.0.1).
    let s = Server::start(&["--enable-debug-command", "local"]);
    let mut con = s.client();
    let ok: String = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
}

#[test]
fn debug_subcommands() {
    let s = Server::start(&["--enable-debug-command", "yes"]);
    let mut con = s.client();
    let ok: String = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
    let t = Instant::now();
    let _: String = redis::cmd("debug")
        .arg("sleep")
        .arg("0.2")
        .query(&mut con)
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    let ok: String = redis::cmd("DEBUG")
        .arg("LOG")
        .arg("hello")
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");

    let _: () = redis::cmd("SET")
        .arg("n")
        .arg("12345")
        .query(&mut con)
        .unwrap();
    let obj: String = redis::cmd("DEBUG")
        .arg("OBJECT")
        .arg("n")
        .query(&mut con)
        .unwrap();
    let words: Vec<&str> = obj.split(' ').collect();
    assert_eq!(words[0], "Value");
    assert!(words[1].starts_with("at:0x"), "{obj}");
    assert_eq!(
        &words[2..6],
        ["refcount:1", "encoding:int", "serializedlength:3", words[5]]
    );
    assert!(words[5].starts_with("lru:"));
    assert_eq!(words[6], "lru_seconds_idle:0");
    assert_eq!(
        err(redis::cmd("DEBUG")
            .arg("OBJECT")
            .arg("nokey")
            .query(&mut con)),
        "ERR no such key"
    );

    // Digests: equal values give equal digests, missing keys all zeros.
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg("same")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("b")
        .arg("same")
        .query(&mut con)
        .unwrap();
    let d: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg("a")
        .arg("b")
        .arg("nokey")
        .query(&mut con)
        .unwrap();
    assert_eq!(d[0], d[1]);
    assert_eq!(d[0].len(), 40);
    assert_eq!(d[2], "0".repeat(40));
    let before: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut con).unwrap();
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg("other")
        .query(&mut con)
        .unwrap();
    let changed: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut con).unwrap();
    assert_ne!(before, changed);
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg("same")
        .query(&mut con)
        .unwrap();
    let after: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut con).unwrap();
    assert_eq!(before, after);
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    let empty: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut con).unwrap();
    assert_eq!(empty, "0".repeat(40));

    let v: i64 = redis::cmd("DEBUG")
        .arg("PROTOCOL")
        .arg("integer")
        .query(&mut con)
        .unwrap();
    assert_eq!(v, 12345);
    assert_eq!(
        err(redis::cmd("DEBUG")
            .arg("PROTOCOL")
            .arg("push")
            .query(&mut con)),
        "ERR RESP2 is not supported by this command"
    );
    assert_eq!(
        err(redis::cmd("DEBUG")
            .arg("ERROR")
            .arg("BUSY try later")
            .query(&mut con)),
        "BUSY try later"
    );
    assert_eq!(
        err(redis::cmd("DEBUG").arg("nosuch").query(&mut con)),
        "ERR unknown subcommand or wrong number of arguments for 'nosuch'. Try DEBUG HELP."
    );
    assert_eq!(
        err(redis::cmd("DEBUG").arg("OBJECT").query(&mut con)),
        "ERR unknown subcommand or wrong number of arguments for 'OBJECT'. Try DEBUG HELP."
    );
    let help: Vec<String> = redis::cmd("DEBUG").arg("HELP").query(&mut con).unwrap();
    assert!(help[0].starts_with("DEBUG <subcommand>"));
}

#[test]
fn debug_protocol_resp3_types() {
    let s = Server::start(&["--enable-debug-command", "yes"]);
    let mut raw = s.raw();
    hello3(&mut raw);
    for (t, reply) in [
        ("double", ",3.141\r\n"),
        ("bignum", "(1234567999999999999999999999999999999\r\n"),
        ("null", "_\r\n"),
        ("true", "#t\r\n"),
        ("map", "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n"),
        ("set", "~3\r\n:0\r\n:1\r\n:2\r\n"),
        (
            "attrib",
            "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n",
        ),
        (
            "push",
            ">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n$40\r\nSome real reply following the push reply\r\n",
        ),
        ("verbatim", "=29\r\ntxt:This is a verbatim\nstring\r\n"),
    ] {
        raw.cmd(&[b"DEBUG", b"PROTOCOL", t.as_bytes()]);
        raw.expect(reply);
    }
}

#[test]
fn debug_set_active_expire() {
    let s = Server::start(&["--enable-debug-command", "yes"]);
    let mut con = s.client();
    let ok: String = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
    let _: () = redis::cmd("PSETEX")
        .arg("k")
        .arg(50)
        .arg("v")
        .query(&mut con)
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Expired but not reclaimed: DBSIZE still counts it while the active cycle is off.
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 1);
    let _: String = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(1)
        .query(&mut con)
        .unwrap();
    assert!(eventually(5, || redis::cmd("DBSIZE")
        .query::<i64>(&mut con)
        .unwrap()
        == 0));
    assert!(num(&info(&mut con, &["stats"]), "expired_keys") >= 1);
}

#[test]
fn shutdown_exits_with_status_zero() {
    let mut s = Server::start(&["--enable-protected-configs", "yes"]);
    let mut con = s.client();
    assert_eq!(
        err(redis::cmd("SHUTDOWN").arg("ABORT").query(&mut con)),
        "ERR No shutdown in progress."
    );
    assert_eq!(
        err(redis::cmd("SHUTDOWN")
            .arg("NOSAVE")
            .arg("SAVE")
            .query(&mut con)),
        "ERR syntax error"
    );
    // A save that fails keeps the server up (here: its directory vanished).
    let gone = s.dir.join("gone");
    std::fs::create_dir_all(&gone).unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("dir")
        .arg(gone.to_str().unwrap())
        .query::<()>(&mut con)
        .unwrap();
    std::fs::remove_dir_all(&gone).unwrap();
    assert_eq!(
        err(redis::cmd("SHUTDOWN").arg("SAVE").query(&mut con)),
        "ERR Errors trying to SHUTDOWN. Check logs."
    );
    assert!(s.alive());
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("dir")
        .arg(s.dir.to_str().unwrap())
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("SET")
        .arg("kept")
        .arg("1")
        .query::<()>(&mut con)
        .unwrap();
    // Success sends no reply: the connection just closes, after saving.
    let mut raw = s.raw();
    raw.cmd(&[b"SHUTDOWN", b"SAVE"]);
    assert!(raw.closed());
    assert!(eventually(5, || !s.alive()));
    assert!(s.dir.join("dump.rdb").exists());
    let status = s.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigterm_exits_cleanly() {
    let mut s = Server::start(&[]);
    let mut con = s.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let status = s.terminate();
    assert_eq!(status.code(), Some(0));
}
