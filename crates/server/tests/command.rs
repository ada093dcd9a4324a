//! COMMAND and its subcommands end to end, docs/COMMANDS.md kept equal to the table, and the
//! whole table compared with a real `redis-server` 7.0: COMMAND INFO (arity, flags, legacy key
//! range, ACL categories, tips, key specs, subcommands) and COMMAND DOCS (summary, since,
//! group, complexity) of every command both servers know must be identical, apart from the
//! commented allowlist below. The interop tests are skipped, with a note, when `redis-server`
//! 7.0 is not on PATH.

mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use redis::Value;

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        other => panic!("not text: {other:?}"),
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

fn texts(v: &Value) -> Vec<String> {
    items(v).iter().map(text).collect()
}

fn err_text(e: redis::RedisError) -> String {
    format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or(""))
}

#[test]
fn count_matches_list() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let count: usize = redis::cmd("COMMAND").arg("COUNT").query(&mut con).unwrap();
    let list: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(&mut con).unwrap();
    let top: Vec<&String> = list.iter().filter(|n| !n.contains('|')).collect();
    assert_eq!(count, top.len());
    assert!(list.contains(&"config|get".to_string()));
    let all: Value = redis::cmd("COMMAND").query(&mut con).unwrap();
    assert_eq!(items(&all).len(), count);

    let filtered: Vec<String> = redis::cmd("COMMAND")
        .arg(&["LIST", "FILTERBY", "PATTERN", "config|*"])
        .query(&mut con)
        .unwrap();
    assert!(filtered.iter().all(|n| n.starts_with("config|")));
    assert!(filtered.contains(&"config|rewrite".to_string()));
    let admin: Vec<String> = redis::cmd("COMMAND")
        .arg(&["LIST", "FILTERBY", "ACLCAT", "admin"])
        .query(&mut con)
        .unwrap();
    assert!(admin.contains(&"config|set".to_string()));
    assert!(!admin.contains(&"get".to_string()));
    for filter in [["MODULE", "x"], ["ACLCAT", "nosuch"]] {
        let none: Vec<String> = redis::cmd("COMMAND")
            .arg("LIST")
            .arg("FILTERBY")
            .arg(&filter)
            .query(&mut con)
            .unwrap();
        assert!(none.is_empty());
    }
    let e = redis::cmd("COMMAND")
        .arg(&["LIST", "FILTERBY", "FOO", "x"])
        .query::<Value>(&mut con)
        .unwrap_err();
    assert_eq!(err_text(e), "ERR syntax error");
}

#[test]
fn info_shape() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let v: Value = redis::cmd("COMMAND")
        .arg(&["INFO", "get", "nosuch", "CONFIG|GET"])
        .query(&mut con)
        .unwrap();
    let [get, missing, cfg_get] = items(&v) else {
        panic!("{v:?}")
    };
    assert_eq!(*missing, Value::Nil);
    let get = items(get);
    assert_eq!(get.len(), 10);
    assert_eq!(text(&get[0]), "get");
    assert_eq!(get[1], Value::Int(2));
    assert_eq!(texts(&get[2]), ["readonly", "fast"]);
    assert_eq!(get[3..6], [Value::Int(1), Value::Int(1), Value::Int(1)]);
    assert_eq!(texts(&get[6]), ["@read", "@string", "@fast"]);
    assert!(items(&get[7]).is_empty());
    let specs = items(&get[8]);
    assert_eq!(specs.len(), 1);
    let spec = items(&specs[0]);
    assert_eq!(text(&spec[0]), "flags");
    assert_eq!(texts(&spec[1]), ["RO", "access"]);
    assert_eq!(text(&spec[2]), "begin_search");
    let bs = items(&spec[3]);
    assert_eq!(text(&bs[1]), "index");
    assert_eq!(items(&bs[3])[1], Value::Int(1));
    let fk = items(&spec[5]);
    assert_eq!(text(&fk[1]), "range");
    assert_eq!(
        items(&fk[3])[..],
        [
            Value::BulkString(b"lastkey".to_vec()),
            Value::Int(0),
            Value::BulkString(b"keystep".to_vec()),
            Value::Int(1),
            Value::BulkString(b"limit".to_vec()),
            Value::Int(0)
        ]
    );
    assert!(items(&get[9]).is_empty());

    let cfg_get = items(cfg_get);
    assert_eq!(text(&cfg_get[0]), "config|get");
    assert_eq!(cfg_get[1], Value::Int(-3));
    assert_eq!(
        texts(&cfg_get[2]),
        ["admin", "noscript", "loading", "stale"]
    );
    assert_eq!(texts(&cfg_get[6]), ["@admin", "@slow", "@dangerous"]);

    let v: Value = redis::cmd("COMMAND")
        .arg(&["INFO", "config"])
        .query(&mut con)
        .unwrap();
    let config = items(&items(&v)[0]);
    let subs: Vec<String> = items(&config[9])
        .iter()
        .map(|s| text(&items(s)[0]))
        .collect();
    assert!(subs.contains(&"config|rewrite".to_string()), "{subs:?}");
}

#[test]
fn docs_shape() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let v: Value = redis::cmd("COMMAND")
        .arg(&["DOCS", "get", "nosuch"])
        .query(&mut con)
        .unwrap();
    let flat = items(&v);
    assert_eq!(flat.len(), 2);
    assert_eq!(text(&flat[0]), "get");
    let doc = texts(&flat[1]);
    assert_eq!(doc[0], "summary");
    assert_eq!(
        doc[2..],
        ["since", "1.0.0", "group", "string", "complexity", "O(1)"]
    );
    let v: Value = redis::cmd("COMMAND")
        .arg(&["DOCS", "config"])
        .query(&mut con)
        .unwrap();
    let doc = items(&items(&v)[1]);
    let subs_at = doc.iter().position(|x| text(x) == "subcommands").unwrap();
    let subs = items(&doc[subs_at + 1]);
    assert!(subs
        .iter()
        .any(|s| matches!(s, Value::BulkString(d) if d == b"config|set")));
}

#[test]
fn getkeys() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg(&["GETKEYS", "MSET", "a", "1", "b", "2"])
        .query(&mut con)
        .unwrap();
    assert_eq!(keys, ["a", "b"]);
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg(&["GETKEYS", "del", "x", "y", "z"])
        .query(&mut con)
        .unwrap();
    assert_eq!(keys, ["x", "y", "z"]);
    let v: Value = redis::cmd("COMMAND")
        .arg(&["GETKEYSANDFLAGS", "get", "k"])
        .query(&mut con)
        .unwrap();
    let pair = items(&items(&v)[0]);
    assert_eq!(text(&pair[0]), "k");
    assert_eq!(texts(&pair[1]), ["RO", "access"]);

    let cases: &[(&[&str], &str)] = &[
        (&["nosuch", "a"], "ERR Invalid command specified"),
        (&["config", "nosuch"], "ERR Invalid command specified"),
        (&["ping", "x"], "ERR The command has no key arguments"),
        (
            &["get", "a", "b"],
            "ERR Invalid number of arguments specified for command",
        ),
        (
            &["get"],
            "ERR wrong number of arguments for 'command|getkeys' command",
        ),
    ];
    for (line, want) in cases {
        let e = redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg(*line)
            .query::<Value>(&mut con)
            .unwrap_err();
        assert_eq!(err_text(e), *want, "{line:?}");
    }
}

/// The markdown table of docs/COMMANDS.md, built from what the server reports.
fn commands_markdown(con: &mut redis::Connection) -> String {
    let mut names: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(con).unwrap();
    names.sort();
    let infos: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg(&names)
        .query(con)
        .unwrap();
    let docs: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg(&names)
        .query(con)
        .unwrap();
    let docs = items(&docs);
    let mut out = String::from(
        "# Supported commands\n\n\
         Generated from the server's command table (COMMAND LIST / INFO / DOCS) by\n\
         `UPDATE_DOCS=1 cargo test -p flowkv-server --test command`: do not edit by hand.\n\
         Arity follows Redis: `n` means exactly n arguments including the command name, `-n`\n\
         at least n. Subcommands are written `container|subcommand`.\n\n\
         | command | arity | group | summary |\n| --- | --- | --- | --- |\n",
    );
    for (i, (name, info)) in names.iter().zip(items(&infos)).enumerate() {
        let arity = text(&items(info)[1]);
        assert_eq!(text(&docs[2 * i]), *name);
        let doc = texts_shallow(&docs[2 * i + 1]);
        let field = |k: &str| {
            doc.iter()
                .position(|x| x.as_deref() == Some(k))
                .and_then(|p| doc.get(p + 1).cloned().flatten())
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "| `{}` | {arity} | {} | {} |\n",
            name.replace('|', "\\|"),
            field("group"),
            field("summary").replace('|', "\\|")
        ));
    }
    out
}

/// A doc map's entries as text, `None` for nested values (subcommands).
fn texts_shallow(v: &Value) -> Vec<Option<String>> {
    items(v)
        .iter()
        .map(|x| match x {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn commands_doc_is_current() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let want = commands_markdown(&mut con);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/COMMANDS.md");
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have == want {
        return;
    }
    if std::env::var("UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&path, want).unwrap();
    } else {
        panic!(
            "docs/COMMANDS.md is out of date with the command table; run \
             `UPDATE_DOCS=1 cargo test -p flowkv-server --test command` and commit the result"
        );
    }
}

/// Commands whose COMMAND INFO / COMMAND DOCS still differ from redis-server 7.0.15, and why.
/// Keep it short: each entry must still differ (a stale entry fails the test).
const ALLOWED_DIFFERENCES: &[(&str, &str)] = &[
    (
        "zrank",
        "arity -3, not 3: Redis 7.2's optional WITHSCORE argument is accepted",
    ),
    (
        "zrevrank",
        "arity -3, not 3: Redis 7.2's optional WITHSCORE argument is accepted",
    ),
    (
        "restore-asking",
        "no `asking` flag: the flag set has no bit for it (it only matters in cluster mode)",
    ),
];

/// Reasons shared by the built-in module families.
const BLOOM: &str = "RedisBloom's Bloom filters, built in (docs/BUILTINS.md)";
const CACHE: &str = "server-side cache-stampede protection (docs/CACHE.md)";

/// Commands and subcommands we have and Redis 7.0 lacks.
const EXTENSIONS: &[(&str, &str)] = &[
    (
        "client|setinfo",
        "Redis 7.2's CLIENT SETINFO: newer clients send it when they connect",
    ),
    (
        "client|no-touch",
        "Redis 7.2's CLIENT NO-TOUCH: monitoring and backup clients read without refreshing LRU/LFU",
    ),
    ("bf.reserve", BLOOM),
    ("bf.add", BLOOM),
    ("bf.madd", BLOOM),
    ("bf.insert", BLOOM),
    ("bf.exists", BLOOM),
    ("bf.mexists", BLOOM),
    ("bf.info", BLOOM),
    ("bf.card", BLOOM),
    ("bf.scandump", BLOOM),
    ("bf.loadchunk", BLOOM),
    ("bf.debug", BLOOM),
    (
        "cl.throttle",
        "redis-cell's GCRA rate limiter, built in (docs/BUILTINS.md)",
    ),
    ("cache.get", CACHE),
    ("cache.fill", CACHE),
    ("cache.invalidate", CACHE),
    ("cache.release", CACHE),
];

/// A real redis-server 7.0 on a free port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts `redis-server`, or `None` (with a note) if it is not installed or not 7.0.
    fn start() -> Option<Redis> {
        let port = common::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            // A file name nobody writes: a stray dump.rdb in the temp dir must not be loaded.
            .args(["--dbfilename", &format!("flowkv-interop-{port}.rdb")])
            .current_dir(std::env::temp_dir())
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
            std::thread::sleep(Duration::from_millis(20));
        }
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut r.client())
            .unwrap();
        if !info.contains("redis_version:7.0.") {
            eprintln!("note: redis-server is not 7.0; skipping this interop test");
            let _ = r.child.kill();
            return None;
        }
        Some(r)
    }

    fn client(&mut self) -> redis::Connection {
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

/// COMMAND LIST of a server, as a set.
fn command_list(con: &mut redis::Connection) -> std::collections::BTreeSet<String> {
    let names: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(con).unwrap();
    names.into_iter().collect()
}

/// The differences between two COMMAND INFO entries, as readable lines. Subcommands are
/// matched by name (Redis lists them in hash order); those only one side has are skipped
/// (gaps and [`EXTENSIONS`] are checked by name elsewhere).
fn info_diffs(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    const FIELDS: [&str; 10] = [
        "name",
        "arity",
        "flags",
        "first key",
        "last key",
        "step",
        "acl categories",
        "tips",
        "key specs",
        "subcommands",
    ];
    let (a, b) = (items(ours), items(theirs));
    assert_eq!(a.len(), 10, "{path}: {ours:?}");
    for (i, field) in FIELDS.iter().enumerate() {
        if i == 9 {
            let by_name = |v: &Value| -> BTreeMap<String, Value> {
                items(v)
                    .iter()
                    .map(|s| (text(&items(s)[0]), s.clone()))
                    .collect()
            };
            let (mine, redis) = (by_name(&a[9]), by_name(&b[9]));
            for (name, sub) in &mine {
                if let Some(r) = redis.get(name) {
                    info_diffs(name, sub, r, out);
                }
            }
        } else if a[i] != b[i] {
            out.push(format!("{path} {field}: ours {:?}, redis {:?}", a[i], b[i]));
        }
    }
}

/// The summary, since, group and complexity of a COMMAND DOCS entry.
fn doc_fields(v: &Value) -> Vec<(String, String)> {
    let flat = items(v);
    assert_eq!(flat.len(), 2, "{v:?}");
    let doc = items(&flat[1]);
    doc.chunks(2)
        .map(|kv| (text(&kv[0]), &kv[1]))
        .filter(|(k, _)| ["summary", "since", "group", "complexity"].contains(&k.as_str()))
        .map(|(k, v)| (k, text(v)))
        .collect()
}

#[test]
fn info_and_docs_match_redis() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let srv = Server::start(&[]);
    let (mut us, mut them) = (srv.client(), redis.client());
    let (ours, theirs) = (command_list(&mut us), command_list(&mut them));
    for name in ours.difference(&theirs) {
        assert!(
            EXTENSIONS.iter().any(|(n, _)| n == name),
            "{name} is unknown to Redis 7.0: list it in EXTENSIONS with the reason"
        );
    }
    let mut diffs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in ours.intersection(&theirs) {
        let top = name.split('|').next().unwrap_or(name);
        let mut out = Vec::new();
        if !name.contains('|') {
            let info = |con: &mut redis::Connection| -> Value {
                let v: Value = redis::cmd("COMMAND")
                    .arg("INFO")
                    .arg(name)
                    .query(con)
                    .unwrap();
                items(&v)[0].clone()
            };
            info_diffs(name, &info(&mut us), &info(&mut them), &mut out);
        }
        let docs = |con: &mut redis::Connection| -> Vec<(String, String)> {
            doc_fields(
                &redis::cmd("COMMAND")
                    .arg("DOCS")
                    .arg(name)
                    .query(con)
                    .unwrap(),
            )
        };
        let (a, b) = (docs(&mut us), docs(&mut them));
        if a != b {
            out.push(format!("{name} docs: ours {a:?}, redis {b:?}"));
        }
        if !out.is_empty() {
            diffs.entry(top.to_string()).or_default().extend(out);
        }
    }
    let unexpected: Vec<&String> = diffs
        .iter()
        .filter(|(name, _)| !ALLOWED_DIFFERENCES.iter().any(|(n, _)| n == name))
        .flat_map(|(_, lines)| lines)
        .collect();
    assert!(
        unexpected.is_empty(),
        "COMMAND INFO/DOCS differ from redis-server:\n{}",
        unexpected
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let stale: Vec<&str> = ALLOWED_DIFFERENCES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !diffs.contains_key(*n))
        .collect();
    assert!(
        stale.is_empty(),
        "these now match Redis: remove them from ALLOWED_DIFFERENCES: {stale:?}"
    );
}

/// COMMAND GETKEYSANDFLAGS gives Redis's keys and per-key flags for lines whose keys the key
/// specs (or, for SORT's STORE, the command's own parsing) find.
#[test]
fn getkeysandflags_matches_redis() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let srv = Server::start(&[]);
    let (mut us, mut them) = (srv.client(), redis.client());
    let lines: &[&[&str]] = &[
        &["get", "k"],
        &["mset", "a", "1", "b", "2"],
        &["del", "a", "b"],
        &["rename", "a", "b"],
        &["copy", "a", "b", "db", "1"],
        &["lmove", "a", "b", "left", "right"],
        &["blmpop", "0", "2", "a", "b", "left"],
        &["lmpop", "2", "a", "b", "left"],
        &["sintercard", "2", "a", "b"],
        &["sintercard", "1", "a", "limit", "3"],
        &["lmpop", "1", "a", "right", "count", "2"],
        &["zmpop", "2", "a", "b", "min"],
        &["bzmpop", "0", "1", "a", "max", "count", "2"],
        &["zunion", "2", "a", "b", "withscores"],
        &["zinter", "1", "a"],
        &["zintercard", "2", "a", "b", "limit", "1"],
        &["zdiff", "3", "a", "b", "c"],
        &["zunionstore", "d", "2", "a", "b", "weights", "1", "2"],
        &["zinterstore", "d", "1", "a"],
        &["zdiffstore", "d", "2", "a", "b"],
        &["sunionstore", "d", "a", "b"],
        &["bitop", "and", "d", "a", "b"],
        &["pfmerge", "d", "a", "b"],
        &["pfcount", "a", "b"],
        &["sort", "k", "store", "d"],
        &["sort", "k", "by", "w_*", "get", "o_*"],
        &["sort_ro", "k"],
        &[
            "georadius",
            "k",
            "1",
            "2",
            "3",
            "km",
            "store",
            "d",
            "storedist",
            "e",
        ],
        &["georadiusbymember", "k", "m", "3", "km", "storedist", "e"],
        &[
            "geosearchstore",
            "d",
            "k",
            "frommember",
            "m",
            "byradius",
            "1",
            "km",
        ],
        &["object", "encoding", "k"],
        &["memory", "usage", "k"],
        &["getex", "k", "persist"],
        &["set", "k", "v", "get"],
        &["set", "k", "v"],
        &["set", "k", "v", "nx", "px", "10"],
        &["bitfield", "k", "get", "u8", "0"],
        &["bitfield", "k", "incrby", "u8", "0", "1"],
    ];
    for line in lines {
        let run = |con: &mut redis::Connection| -> Value {
            redis::cmd("COMMAND")
                .arg("GETKEYSANDFLAGS")
                .arg(*line)
                .query(con)
                .unwrap()
        };
        assert_eq!(run(&mut us), run(&mut them), "{line:?}");
    }
}
