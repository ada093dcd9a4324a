//! CONFIG GET / SET / RESETSTAT / REWRITE end to end, and configuration from a file plus
//! command-line arguments.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::Server;

/// A scratch directory for config files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("flowkv-cfgtest-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config_get(con: &mut redis::Connection, pattern: &str) -> HashMap<String, String> {
    let flat: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(pattern)
        .query(con)
        .unwrap();
    flat.chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

fn one(con: &mut redis::Connection, name: &str) -> String {
    config_get(con, name)
        .remove(name)
        .unwrap_or_else(|| panic!("no {name}"))
}

fn config_set(con: &mut redis::Connection, pairs: &[&str]) -> redis::RedisResult<String> {
    redis::cmd("CONFIG").arg("SET").arg(pairs).query(con)
}

fn err_text(e: redis::RedisError) -> String {
    // redis-rs splits "ERR rest" into a kind and a detail; put the line back together.
    format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or(""))
}

#[test]
fn file_then_arguments() {
    let s = Scratch::new("file");
    let conf = s.file(
        "a.conf",
        "# settings\nmaxmemory 256mb\nhash-max-ziplist-entries 5\nsave 60 10\nsave 300 1\n\
         maxmemory-policy volatile-lru\nclient-output-buffer-limit pubsub 1mb 512kb 30\n",
    );
    let srv = Server::start_with(Some(&conf), &["--maxmemory-policy", "allkeys-lru"]);
    let mut con = srv.client();
    assert_eq!(one(&mut con, "maxmemory"), "268435456");
    assert_eq!(one(&mut con, "hash-max-listpack-entries"), "5");
    assert_eq!(one(&mut con, "hash-max-ziplist-entries"), "5");
    assert_eq!(one(&mut con, "save"), "60 10 300 1");
    assert_eq!(one(&mut con, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(
        one(&mut con, "client-output-buffer-limit"),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 524288 30"
    );
}

#[test]
fn bad_directive_stops_startup() {
    for args in [
        &["--nosuchdirective", "1"][..],
        &["--maxmemory", "lots"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowkv-server"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("FATAL CONFIG FILE ERROR"), "{err}");
    }
}

#[test]
fn get_patterns_and_reply_shapes() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mm = config_get(&mut con, "maxmemory*");
    let mut names: Vec<&str> = mm.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "maxmemory",
            "maxmemory-clients",
            "maxmemory-eviction-tenacity",
            "maxmemory-policy",
            "maxmemory-samples"
        ]
    );
    // Several patterns, overlapping: each directive once; exact names are echoed as given.
    let flat: Vec<String> = redis::cmd("CONFIG")
        .arg(&[
            "GET",
            "maxmemory",
            "maxmemor?",
            "MAXMEMORY",
            "slaveof",
            "nosuch",
        ])
        .query(&mut con)
        .unwrap();
    assert_eq!(flat, ["maxmemory", "0", "slaveof", ""]);
    // Hidden test hooks only answer to their exact name.
    assert!(config_get(&mut con, "rdb-key-*").is_empty());
    assert_eq!(one(&mut con, "rdb-key-save-delay"), "0");
    assert_eq!(config_get(&mut con, "*").len(), 200);

    let mut raw = srv.raw();
    raw.cmd(&[b"CONFIG", b"GET", b"timeout"]);
    raw.expect("*2\r\n$7\r\ntimeout\r\n$1\r\n0\r\n");
    raw.cmd(&[b"HELLO", b"3"]);
    raw.cmd(&[b"PING"]);
    while raw.line() != "+PONG\r\n" {}
    raw.cmd(&[b"CONFIG", b"GET", b"timeout"]);
    raw.expect("%1\r\n$7\r\ntimeout\r\n$1\r\n0\r\n");
}

#[test]
fn set_units_errors_and_atomicity() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    assert_eq!(config_set(&mut con, &["maxmemory", "256mb"]).unwrap(), "OK");
    assert_eq!(one(&mut con, "maxmemory"), "268435456");
    assert_eq!(
        config_set(
            &mut con,
            &["notify-keyspace-events", "KEA", "save", "100 10 20 5"]
        )
        .unwrap(),
        "OK"
    );
    assert_eq!(one(&mut con, "notify-keyspace-events"), "AKE");
    assert_eq!(one(&mut con, "save"), "100 10 20 5");

    let cases: &[(&[&str], &str)] = &[
        (
            &["timeout", "5", "hz", "x"],
            "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer",
        ),
        (
            &["timeout", "5", "daemonize", "yes"],
            "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config",
        ),
        (
            &["daemonize", "yes", "nosuch", "1"],
            "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'",
        ),
        (
            &["timeout", "5", "timeout", "6"],
            "ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter",
        ),
        (
            &["timeout", "5", "maxmemory", "-1"],
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value",
        ),
        (
            &["timeout", "-1"],
            "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive",
        ),
        (
            &["appendonly", "maybe"],
            "ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be 'yes' or 'no'",
        ),
        (
            &["dir", "/tmp"],
            "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config",
        ),
        (&["timeout", "5", "hz"], "ERR syntax error"),
    ];
    for (args, want) in cases {
        let e = config_set(&mut con, args).unwrap_err();
        assert_eq!(err_text(e), *want, "{args:?}");
    }
    // Nothing from the failed calls stuck.
    assert_eq!(one(&mut con, "timeout"), "0");
    assert_eq!(one(&mut con, "maxmemory"), "268435456");
}

#[test]
fn protected_configs_when_enabled() {
    let srv = Server::start(&["--enable-protected-configs", "local"]);
    let mut con = srv.client();
    let dir = std::env::temp_dir();
    let abs = std::fs::canonicalize(&dir).unwrap();
    assert_eq!(
        config_set(&mut con, &["dir", dir.to_str().unwrap()]).unwrap(),
        "OK"
    );
    assert_eq!(one(&mut con, "dir"), abs.display().to_string());
    let e = config_set(&mut con, &["dir", "/no/such/dir"]).unwrap_err();
    assert_eq!(
        err_text(e),
        "ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory"
    );
}

#[test]
fn rewrite_round_trip() {
    let s = Scratch::new("rewrite");
    let conf = s.file(
        "r.conf",
        "# keep this comment\nmaxmemory 1mb\n\n# and this one\nsave 60 1\nsave 30 2\n",
    );
    {
        let srv = Server::start_with(Some(&conf), &[]);
        let mut con = srv.client();
        config_set(&mut con, &["maxmemory", "2gb", "hz", "20", "save", "10 1"]).unwrap();
        let ok: String = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
        assert_eq!(ok, "OK");
    }
    let text = std::fs::read_to_string(&conf).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "# keep this comment",
            "maxmemory 2gb",
            "",
            "# and this one",
            "save 10 1"
        ]
    );
    let generated = lines
        .iter()
        .position(|l| *l == "# Generated by CONFIG REWRITE")
        .expect("signature");
    assert!(lines[generated..].contains(&"hz 20"), "{text}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("save")).count(), 1);
    // `dir` is always written (as an absolute path); the first server's scratch directory
    // is gone, so drop that line before starting again.
    assert!(lines.iter().any(|l| l.starts_with("dir \"/")), "{text}");
    let kept: Vec<&str> = lines
        .into_iter()
        .filter(|l| !l.starts_with("dir "))
        .collect();
    std::fs::write(&conf, kept.join("\n")).unwrap();

    let srv = Server::start_with(Some(&conf), &[]);
    let mut con = srv.client();
    assert_eq!(one(&mut con, "maxmemory"), "2147483648");
    assert_eq!(one(&mut con, "hz"), "20");
    assert_eq!(one(&mut con, "save"), "10 1");
}

#[test]
fn rewrite_without_file() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let e = redis::cmd("CONFIG")
        .arg("REWRITE")
        .query::<String>(&mut con)
        .unwrap_err();
    assert_eq!(
        err_text(e),
        "ERR The server is running without a config file"
    );
}

#[test]
fn resetstat_clears_counters() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    for _ in 0..5 {
        let _: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    }
    let _ = redis::cmd("NOSUCHCOMMAND").query::<String>(&mut con);
    let stat = |con: &mut redis::Connection, field: &str| -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(con).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} missing"))
    };
    assert!(stat(&mut con, "total_commands_processed") >= 5);
    assert!(stat(&mut con, "total_error_replies") >= 1);
    let ok: String = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
    assert!(stat(&mut con, "total_commands_processed") <= 2);
    assert_eq!(stat(&mut con, "total_error_replies"), 0);
}

#[test]
fn help_and_container_errors() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let help: Vec<String> = redis::cmd("CONFIG").arg("HELP").query(&mut con).unwrap();
    assert!(help[0].starts_with("CONFIG <subcommand>"));
    assert!(help.iter().any(|l| l.starts_with("REWRITE")));
    let e = redis::cmd("CONFIG")
        .arg("FOO")
        .query::<String>(&mut con)
        .unwrap_err();
    assert_eq!(
        err_text(e),
        "ERR unknown subcommand 'FOO'. Try CONFIG HELP."
    );
    let e = redis::cmd("CONFIG")
        .arg("GET")
        .query::<String>(&mut con)
        .unwrap_err();
    assert_eq!(
        err_text(e),
        "ERR wrong number of arguments for 'config|get' command"
    );
}

/// Redis 7.2's set listpack thresholds and list-compress-depth load from a file and argv,
/// answer CONFIG GET/SET with 7.2's defaults and units, and leave set encodings at 7.0's.
#[test]
fn set_listpack_and_list_compress_directives() {
    let defaults = Server::start(&[]);
    let mut con = defaults.client();
    assert_eq!(one(&mut con, "set-max-listpack-entries"), "128");
    assert_eq!(one(&mut con, "set-max-listpack-value"), "64");
    assert_eq!(one(&mut con, "list-compress-depth"), "0");

    let s = Scratch::new("setlp");
    let conf = s.file(
        "a.conf",
        "set-max-listpack-entries 10\nset-max-listpack-value 1kb\nlist-compress-depth 2\n",
    );
    let srv = Server::start_with(Some(&conf), &["--set-max-listpack-entries", "20"]);
    let mut con = srv.client();
    assert_eq!(one(&mut con, "set-max-listpack-entries"), "20");
    assert_eq!(one(&mut con, "set-max-listpack-value"), "1024");
    assert_eq!(one(&mut con, "list-compress-depth"), "2");

    let ok = config_set(
        &mut con,
        &[
            "set-max-listpack-entries",
            "7",
            "set-max-listpack-value",
            "2kb",
            "list-compress-depth",
            "1",
        ],
    );
    assert_eq!(ok.unwrap(), "OK");
    assert_eq!(one(&mut con, "set-max-listpack-entries"), "7");
    assert_eq!(one(&mut con, "set-max-listpack-value"), "2048");
    assert_eq!(one(&mut con, "list-compress-depth"), "1");
    let e = config_set(&mut con, &["set-max-listpack-entries", "-1"]).unwrap_err();
    assert!(err_text(e).starts_with("ERR CONFIG SET failed"));
    assert_eq!(one(&mut con, "set-max-listpack-entries"), "7");

    // No effect on encodings: a small set of strings is a hashtable, as in 7.0.
    let _: i64 = redis::cmd("SADD")
        .arg("s")
        .arg("a")
        .arg("b")
        .query(&mut con)
        .unwrap();
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("s")
        .query(&mut con)
        .unwrap();
    assert_eq!(enc, "hashtable");
}
