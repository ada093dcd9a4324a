//! COMMAND and its subcommands end to end, and docs/COMMANDS.md kept equal to the table.

mod common;

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
