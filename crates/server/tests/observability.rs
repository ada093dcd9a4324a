//! Observability end to end: SLOWLOG, LATENCY, MONITOR, INFO latencystats and the
//! Prometheus endpoint (parsed with a real exposition-format parser), plus the shipped
//! Grafana dashboard and alert rules.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{free_port, Server};
use redis::Value;

fn info(con: &mut redis::Connection, section: &str) -> BTreeMap<String, String> {
    let text: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn slowlog_records_trims_and_resets() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "slowlog-log-slower-than", "0"])
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut c).unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg(&["SETNAME", "obs"])
        .query(&mut c)
        .unwrap();
    let long = "x".repeat(130);
    let _: () = redis::cmd("SET").arg("k").arg(&long).query(&mut c).unwrap();
    let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let _: i64 = redis::cmd("SADD")
        .arg("s")
        .arg(&many)
        .query(&mut c)
        .unwrap();
    let _ = redis::cmd("AUTH")
        .arg("secret")
        .query::<()>(&mut c)
        .unwrap_err();
    let entries: Vec<Value> = redis::cmd("SLOWLOG")
        .arg(&["GET", "-1"])
        .query(&mut c)
        .unwrap();
    // Newest first: auth, sadd, set, client setname (slowlog reset itself comes before).
    let args = |i: usize| -> Vec<String> {
        let Value::Array(e) = &entries[i] else {
            panic!()
        };
        let Value::Array(a) = &e[3] else { panic!() };
        a.iter()
            .map(|v| redis::from_redis_value::<String>(v).unwrap())
            .collect()
    };
    assert_eq!(args(0), ["AUTH", "(redacted)"]);
    let sadd = args(1);
    assert_eq!(sadd.len(), 32);
    assert_eq!(sadd[31], "... (11 more arguments)");
    let set = args(2);
    assert_eq!(set[2], format!("{}... (2 more bytes)", "x".repeat(128)));
    let Value::Array(e) = &entries[1] else {
        panic!()
    };
    assert!(matches!(&e[0], Value::Int(_)));
    assert!(matches!(&e[2], Value::Int(d) if *d >= 0));
    assert_eq!(redis::from_redis_value::<String>(&e[5]).unwrap(), "obs");
    let addr: String = redis::from_redis_value(&e[4]).unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let n: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert!(n >= 5);
    let err = redis::cmd("SLOWLOG")
        .arg(&["GET", "-2"])
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("count should be greater than or equal to -1"));
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "slowlog-max-len", "2"])
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("PING").query(&mut c).unwrap();
    let n: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert_eq!(n, 2);
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "slowlog-log-slower-than", "-1"])
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut c).unwrap();
    let _: () = redis::cmd("PING").query(&mut c).unwrap();
    let n: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn latency_histogram_monitor_and_latencystats() {
    let s = Server::start(&["--enable-debug-command", "yes"]);
    let mut c = s.client();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    for _ in 0..3 {
        let _: () = redis::cmd("SET").arg("a").arg("b").query(&mut c).unwrap();
    }
    let _: Option<String> = redis::cmd("GET").arg("a").query(&mut c).unwrap();
    let h: Vec<Value> = redis::cmd("LATENCY")
        .arg(&["HISTOGRAM", "set", "nosuch"])
        .query(&mut c)
        .unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(redis::from_redis_value::<String>(&h[0]).unwrap(), "set");
    let Value::Array(body) = &h[1] else { panic!() };
    assert_eq!(
        redis::from_redis_value::<String>(&body[0]).unwrap(),
        "calls"
    );
    assert_eq!(body[1], Value::Int(3));
    let Value::Array(cdf) = &body[3] else {
        panic!()
    };
    assert_eq!(cdf.last(), Some(&Value::Int(3)));
    let stats = info(&mut c, "latencystats");
    let set = &stats["latency_percentiles_usec_set"];
    assert!(set.starts_with("p50=") && set.contains(",p99=") && set.contains(",p99.9="));
    assert!(!info(&mut c, "default").contains_key("latency_percentiles_usec_set"));

    // The latency monitor: a 0.2 s DEBUG SLEEP is a "command" spike over 100 ms.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "latency-monitor-threshold", "100"])
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("DEBUG")
        .arg(&["SLEEP", "0.2"])
        .query(&mut c)
        .unwrap();
    let latest: Vec<(String, i64, i64, i64)> =
        redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].0, "command");
    assert!((200..1000).contains(&latest[0].2), "{latest:?}");
    let history: Vec<(i64, i64)> = redis::cmd("LATENCY")
        .arg(&["HISTORY", "command"])
        .query(&mut c)
        .unwrap();
    assert_eq!(history.len(), 1);
    let graph: String = redis::cmd("LATENCY")
        .arg(&["GRAPH", "command"])
        .query(&mut c)
        .unwrap();
    assert!(graph.starts_with("command - high "), "{graph}");
    let doctor: String = redis::cmd("LATENCY").arg("DOCTOR").query(&mut c).unwrap();
    assert!(doctor.contains("command"));
    let n: i64 = redis::cmd("LATENCY").arg("RESET").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let err = redis::cmd("LATENCY")
        .arg(&["GRAPH", "command"])
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("No samples available for event 'command'"));
}

#[test]
fn monitor_shows_commands_scripts_and_transactions() {
    let s = Server::start(&[]);
    let mut m = s.raw();
    m.cmd(&[b"MONITOR"]);
    m.expect("+OK\r\n");
    let mut c = s.client();
    let _: () = redis::cmd("SET")
        .arg("foo")
        .arg("a b\"\n")
        .query(&mut c)
        .unwrap();
    // Skip what the client library sent on connecting (CLIENT SETINFO…).
    let line = std::iter::repeat_with(|| m.line())
        .find(|l| l.contains("\"SET\""))
        .unwrap();
    assert!(line.starts_with('+'), "{line}");
    assert!(
        line.ends_with("] \"SET\" \"foo\" \"a b\\\"\\n\"\r\n"),
        "{line}"
    );
    assert!(line.contains(" [0 127.0.0.1:"), "{line}");
    let _: () = redis::cmd("EVAL")
        .arg("redis.call('set', KEYS[1], 'x')")
        .arg(1)
        .arg("k")
        .query(&mut c)
        .unwrap();
    assert!(m.line().contains(r#""EVAL""#));
    assert!(m.line().contains(r#"[0 lua] "set" "k" "x""#));
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let _: () = redis::cmd("INCR").arg("n").query(&mut c).unwrap();
    let _: Value = redis::cmd("EXEC").query(&mut c).unwrap();
    assert!(m.line().contains(r#""MULTI""#));
    assert!(m.line().contains(r#""INCR" "n""#));
    assert!(m.line().contains(r#""EXEC""#));
    // Admin commands are not shown; AUTH's password is redacted.
    let _: Value = redis::cmd("CONFIG")
        .arg(&["GET", "port"])
        .query(&mut c)
        .unwrap();
    let _ = redis::cmd("AUTH").arg("pw").query::<()>(&mut c);
    assert!(m.line().contains(r#""AUTH" "(redacted)""#));
}

/// GETs `path` from the metrics endpoint: (status code, body).
fn http_get(port: u16, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (code, body)
}

fn start_with_metrics(extra: &[&str]) -> (Server, u16) {
    let port = free_port();
    let p = port.to_string();
    let mut args = vec!["--metrics-port", &p];
    args.extend_from_slice(extra);
    let s = Server::start(&args);
    (s, port)
}

/// Parses exposition text with Python's prometheus_client parser (the reference
/// implementation's): `name{labels}` → value. `None` if python3 or the module is missing.
fn parse_exposition(text: &str) -> Option<BTreeMap<String, f64>> {
    const SCRIPT: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value!r}")
"#;
    let check = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .output()
        .ok()?;
    if !check.status.success() {
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser rejected /metrics");
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_string(), v.parse().unwrap())
            })
            .collect(),
    )
}

#[test]
fn metrics_parse_and_agree_with_info() {
    let (s, port) = start_with_metrics(&[]);
    let mut c = s.client();
    for i in 0..5 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
    let _: () = redis::cmd("EXPIRE")
        .arg("k0")
        .arg(100)
        .query(&mut c)
        .unwrap();
    let _: Option<String> = redis::cmd("GET").arg("k1").query(&mut c).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("nosuch").query(&mut c).unwrap();
    let _ = redis::cmd("INCR").arg("k1").arg("x").query::<i64>(&mut c);
    let (code, body) = http_get(port, "/metrics", None);
    assert_eq!(code, 200);
    let m = match parse_exposition(&body) {
        Some(m) => m,
        None => {
            eprintln!("skipped the parser check: python3 prometheus_client is not installed");
            return;
        }
    };
    let info = info(&mut c, "everything");
    let num = |k: &str| info[k].parse::<f64>().unwrap();
    assert_eq!(m["redis_up{}"], 1.0);
    assert_eq!(m["redis_keyspace_hits_total{}"], num("keyspace_hits"));
    assert_eq!(m["redis_keyspace_misses_total{}"], num("keyspace_misses"));
    assert_eq!(m["redis_expired_keys_total{}"], num("expired_keys"));
    assert_eq!(m["redis_evicted_keys_total{}"], num("evicted_keys"));
    assert_eq!(m["redis_memory_max_bytes{}"], num("maxmemory"));
    assert_eq!(m["redis_connected_slaves{}"], num("connected_slaves"));
    assert_eq!(m[r#"redis_db_keys{db="db0"}"#], 5.0);
    assert_eq!(m[r#"redis_db_keys_expiring{db="db0"}"#], 1.0);
    assert_eq!(m[r#"redis_commands_total{cmd="set"}"#], 5.0);
    assert_eq!(m[r#"redis_errors_total{err="ERR"}"#], 1.0);
    assert!(m[r#"redis_commands_duration_seconds_total{cmd="set"}"#] > 0.0);
    assert!(m.contains_key(r#"redis_latency_percentiles_usec{cmd="get",quantile="0.99"}"#));
    assert_eq!(m["redis_config_maxclients{}"], num("maxclients"));
    // Commands processed moves with every INFO; the scrape saw at most what INFO sees now.
    assert!(m["redis_commands_processed_total{}"] <= num("total_commands_processed"));
    assert!(m["redis_memory_used_bytes{}"] > 0.0);
    assert_eq!(http_get(port, "/nope", None).0, 404);
}

#[test]
fn metrics_password_basic_and_bearer() {
    let (_s, port) = start_with_metrics(&["--metrics-password", "s3cret"]);
    assert_eq!(http_get(port, "/metrics", None).0, 401);
    assert_eq!(http_get(port, "/metrics", Some("Bearer wrong")).0, 401);
    assert_eq!(http_get(port, "/metrics", Some("Bearer s3cret")).0, 200);
    // "prometheus:s3cret" in base64.
    assert_eq!(
        http_get(port, "/metrics", Some("Basic cHJvbWV0aGV1czpzM2NyZXQ=")).0,
        200
    );
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Metric names (redis_* / flowkv_*) mentioned in a file.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && (text[i..].starts_with("redis_") || text[i..].starts_with("flowkv_")) {
            let end = text[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(text.len(), |e| i + e);
            names.insert(text[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

/// Metrics only a replica exports (they appear once replication exists).
const REPLICA_ONLY: &[&str] = &["redis_master_link_up", "redis_connected_slave_lag_seconds"];

#[test]
fn dashboard_and_alerts_use_exported_metrics() {
    let (s, port) = start_with_metrics(&[]);
    let mut c = s.client();
    // Commands and an error so the per-command and per-error families exist.
    let _: () = redis::cmd("SET").arg("a").arg(1).query(&mut c).unwrap();
    let _ = redis::cmd("NOSUCHCMD").query::<()>(&mut c);
    let _ = redis::cmd("SLOWLOG").arg("LEN").query::<i64>(&mut c);
    let (_, body) = http_get(port, "/metrics", None);
    let exported: BTreeSet<String> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    let root = repo_root();
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/flowkv.json")).unwrap();
    let alerts = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    // The dashboard is JSON with panels whose targets carry PromQL.
    let exprs: Vec<&str> = dashboard
        .lines()
        .filter_map(|l| l.trim().strip_prefix("\"expr\": "))
        .collect();
    assert!(exprs.len() >= 10, "dashboard panels: {}", exprs.len());
    let mut used = metric_names(&exprs.join("\n"));
    used.extend(metric_names(&alerts));
    assert!(used.contains("redis_memory_used_bytes"));
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !exported.contains(*n) && !REPLICA_ONLY.contains(&n.as_str()))
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
}

#[test]
fn alert_rules_pass_promtool() {
    let rules = repo_root().join("deploy/prometheus/alerts.yml");
    match Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("skipped: promtool is not installed (.ci/run installs it)"),
    }
}

/// The INFO keyspace_prefixes line of prefix number `i`, as a map.
fn prefix_line(c: &mut redis::Connection, i: usize) -> BTreeMap<String, String> {
    let info: String = redis::cmd("INFO")
        .arg("keyspace_prefixes")
        .query(c)
        .unwrap();
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("prefix{i}:")))
        .unwrap_or_else(|| panic!("no prefix{i} in {info}"));
    let (p, rest) = line.split_once(",keys=").unwrap();
    let mut m: BTreeMap<String, String> = format!("keys={rest}")
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    m.insert("prefix".into(), p.trim_start_matches("prefix=").into());
    m
}

/// `stats-key-prefixes`: exact hits and misses per prefix, keys and memory from the
/// background count, in INFO and /metrics; CONFIG SET starts over with the new list.
#[test]
fn per_prefix_statistics() {
    let (s, port) = start_with_metrics(&["--stats-key-prefixes", "session: cache:", "--hz", "100"]);
    let mut c = s.client();
    let run = |c: &mut redis::Connection, args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        args[1..].iter().for_each(|a| {
            cmd.arg(*a);
        });
        cmd.query::<Value>(c).unwrap();
    };
    for i in 0..50 {
        run(&mut c, &["SET", &format!("session:{i}"), &"x".repeat(100)]);
    }
    for i in 0..20 {
        run(&mut c, &["SET", &format!("cache:{i}"), "v"]);
    }
    run(&mut c, &["SET", "other", "v"]);
    run(&mut c, &["GET", "session:1"]);
    run(&mut c, &["GET", "session:nope"]);
    run(&mut c, &["MGET", "session:nope", "cache:3", "other"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let session = loop {
        let l = prefix_line(&mut c, 0);
        if l["keys"] == "50" {
            break l;
        }
        assert!(std::time::Instant::now() < deadline, "never counted: {l:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(session["prefix"], "session:");
    assert_eq!(
        (session["hits"].as_str(), session["misses"].as_str()),
        ("1", "2")
    );
    let memory: u64 = session["memory"].parse().unwrap();
    assert!((50 * 100..50 * 1000).contains(&memory), "{memory}");
    let cache = prefix_line(&mut c, 1);
    assert_eq!(
        (
            cache["prefix"].as_str(),
            cache["keys"].as_str(),
            cache["hits"].as_str()
        ),
        ("cache:", "20", "1")
    );
    // Not part of the default INFO.
    let default: String = redis::cmd("INFO").query(&mut c).unwrap();
    assert!(!default.contains("prefix0:"));
    let (code, body) = http_get(port, "/metrics", None);
    assert_eq!(code, 200);
    assert!(
        body.contains("flowkv_prefix_keys{prefix=\"session:\"} 50"),
        "{body}"
    );
    assert!(body.contains("flowkv_prefix_keyspace_misses_total{prefix=\"session:\"} 2"));
    // A new list starts from zero.
    run(&mut c, &["CONFIG", "SET", "stats-key-prefixes", "other"]);
    let l = prefix_line(&mut c, 0);
    assert_eq!((l["prefix"].as_str(), l["hits"].as_str()), ("other", "0"));
    // More than 8 prefixes is refused, and the old list stays.
    let e = redis::cmd("CONFIG")
        .arg(&["SET", "stats-key-prefixes", "a b c d e f g h i"])
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(
        format!("{}: {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
        "ERR: CONFIG SET failed (possibly related to argument 'stats-key-prefixes') - Too many key prefixes (at most 8)."
    );
    let l = prefix_line(&mut c, 0);
    assert_eq!(l["prefix"].as_str(), "other");
    run(&mut c, &["CONFIG", "SET", "stats-key-prefixes", ""]);
    let info: String = redis::cmd("INFO")
        .arg("keyspace_prefixes")
        .query(&mut c)
        .unwrap();
    assert!(!info.contains("prefix0:"), "{info}");
}
