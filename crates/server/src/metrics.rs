//! The Prometheus endpoint: `GET /metrics` on `metrics-port` (0, the default, keeps it off),
//! bound like the main port (`metrics-bind`, else `bind`), optionally protected by
//! `metrics-password` (HTTP basic auth with any user name, or a bearer token).
//!
//! Metric names are redis_exporter's, so dashboards and alerts written for Redis keep
//! working without the exporter sidecar. Values are read from the same INFO report a client
//! gets (`INFO everything`), so /metrics and INFO always agree.
//!
//! The endpoint has its own thread per listening address and answers one request at a time
//! with short socket timeouts: a scrape never touches the workers' event loops.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::server::Server;

/// The longest request head read (request line and headers).
const MAX_REQUEST: usize = 8 * 1024;
/// Socket read/write timeout for a scrape connection.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the endpoint if `metrics-port` is set.
pub fn spawn(srv: Arc<Server>) -> io::Result<()> {
    let port = srv.config.get_u64("metrics-port") as u16;
    if port == 0 {
        return Ok(());
    }
    let bind = srv
        .config
        .get("metrics-bind")
        .filter(|b| !b.trim().is_empty())
        .or_else(|| srv.config.get("bind"))
        .unwrap_or_default();
    for listener in crate::net::bind_with(&bind, port, TcpListener::bind)? {
        let srv = srv.clone();
        std::thread::Builder::new()
            .name("flowkv-metrics".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if let Err(e) = serve(&srv, stream) {
                        eprintln!("metrics: {e}");
                    }
                }
            })?;
    }
    eprintln!("Metrics endpoint listening on port {port} (/metrics)");
    Ok(())
}

/// Answers one HTTP request on `stream`, then closes it.
fn serve(srv: &Server, mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let (status, extra, body) = respond(srv, &head);
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    out.push_str(&body);
    stream.write_all(out.as_bytes())
}

/// Reads the request line and headers (up to the empty line).
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request too big",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// (status line, extra header lines, body) for a request head.
fn respond(srv: &Server, head: &str) -> (&'static str, String, String) {
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (request.next().unwrap_or(""), request.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return (
            "405 Method Not Allowed",
            "Allow: GET\r\n".into(),
            String::new(),
        );
    }
    if path != "/metrics" {
        return (
            "404 Not Found",
            String::new(),
            "Not found: try /metrics\n".into(),
        );
    }
    let auth = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_string())
    });
    if !authorized(srv, auth.as_deref()) {
        return (
            "401 Unauthorized",
            "WWW-Authenticate: Basic realm=\"flowkv metrics\"\r\n".into(),
            "Unauthorized\n".into(),
        );
    }
    (
        "200 OK",
        "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n".into(),
        render(srv),
    )
}

/// True if no `metrics-password` is set, or the Authorization header carries it: as a
/// bearer token, or as the password of HTTP basic auth (any user name).
fn authorized(srv: &Server, header: Option<&str>) -> bool {
    let want = srv.config.get("metrics-password").unwrap_or_default();
    if want.is_empty() {
        return true;
    }
    let Some(header) = header else { return false };
    let given = if let Some(token) = header.strip_prefix("Bearer ") {
        token.trim().as_bytes().to_vec()
    } else if let Some(b64) = header.strip_prefix("Basic ") {
        let decoded = base64_decode(b64.trim()).unwrap_or_default();
        match decoded.iter().position(|&b| b == b':') {
            Some(i) => decoded[i + 1..].to_vec(),
            None => return false,
        }
    } else {
        return false;
    };
    constant_time_eq(want.as_bytes(), &given)
}

/// Compares in time independent of where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Decodes standard base64 (with or without padding); `None` if malformed.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// INFO fields exported as they are, under redis_exporter's names: (field, metric, type).
const FIELDS: &[(&str, &str, &str)] = &[
    ("uptime_in_seconds", "uptime_in_seconds", "gauge"),
    ("process_id", "process_id", "gauge"),
    ("connected_clients", "connected_clients", "gauge"),
    ("blocked_clients", "blocked_clients", "gauge"),
    ("tracking_clients", "tracking_clients", "gauge"),
    ("maxclients", "max_clients", "gauge"),
    (
        "client_recent_max_output_buffer",
        "client_recent_max_output_buffer_bytes",
        "gauge",
    ),
    (
        "client_recent_max_input_buffer",
        "client_recent_max_input_buffer_bytes",
        "gauge",
    ),
    ("allocator_active", "allocator_active_bytes", "gauge"),
    ("allocator_allocated", "allocator_allocated_bytes", "gauge"),
    ("allocator_resident", "allocator_resident_bytes", "gauge"),
    ("allocator_frag_ratio", "allocator_frag_ratio", "gauge"),
    ("allocator_frag_bytes", "allocator_frag_bytes", "gauge"),
    ("allocator_rss_ratio", "allocator_rss_ratio", "gauge"),
    ("allocator_rss_bytes", "allocator_rss_bytes", "gauge"),
    ("used_memory", "memory_used_bytes", "gauge"),
    ("used_memory_rss", "memory_used_rss_bytes", "gauge"),
    ("used_memory_peak", "memory_used_peak_bytes", "gauge"),
    ("used_memory_lua", "memory_used_lua_bytes", "gauge"),
    (
        "used_memory_overhead",
        "memory_used_overhead_bytes",
        "gauge",
    ),
    ("used_memory_startup", "memory_used_startup_bytes", "gauge"),
    ("used_memory_dataset", "memory_used_dataset_bytes", "gauge"),
    ("used_memory_scripts", "memory_used_scripts_bytes", "gauge"),
    ("maxmemory", "memory_max_bytes", "gauge"),
    (
        "mem_fragmentation_ratio",
        "mem_fragmentation_ratio",
        "gauge",
    ),
    (
        "mem_fragmentation_bytes",
        "mem_fragmentation_bytes",
        "gauge",
    ),
    ("mem_clients_slaves", "mem_clients_slaves", "gauge"),
    ("mem_clients_normal", "mem_clients_normal", "gauge"),
    (
        "mem_not_counted_for_evict",
        "mem_not_counted_for_eviction_bytes",
        "gauge",
    ),
    (
        "lazyfree_pending_objects",
        "lazyfree_pending_objects",
        "gauge",
    ),
    ("active_defrag_running", "active_defrag_running", "gauge"),
    ("expired_stale_perc", "expired_stale_percentage", "gauge"),
    (
        "expired_time_cap_reached_count",
        "expired_time_cap_reached_total",
        "gauge",
    ),
    (
        "migrate_cached_sockets",
        "migrate_cached_sockets_total",
        "gauge",
    ),
    ("loading", "loading_dump_file", "gauge"),
    (
        "rdb_changes_since_last_save",
        "rdb_changes_since_last_save",
        "gauge",
    ),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress", "gauge"),
    (
        "rdb_last_save_time",
        "rdb_last_save_timestamp_seconds",
        "gauge",
    ),
    ("rdb_last_bgsave_status", "rdb_last_bgsave_status", "gauge"),
    (
        "rdb_last_bgsave_time_sec",
        "rdb_last_bgsave_duration_sec",
        "gauge",
    ),
    (
        "rdb_current_bgsave_time_sec",
        "rdb_current_bgsave_duration_sec",
        "gauge",
    ),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes", "gauge"),
    ("aof_enabled", "aof_enabled", "gauge"),
    (
        "aof_rewrite_in_progress",
        "aof_rewrite_in_progress",
        "gauge",
    ),
    ("aof_rewrite_scheduled", "aof_rewrite_scheduled", "gauge"),
    (
        "aof_last_rewrite_time_sec",
        "aof_last_rewrite_duration_sec",
        "gauge",
    ),
    (
        "aof_current_rewrite_time_sec",
        "aof_current_rewrite_duration_sec",
        "gauge",
    ),
    ("aof_last_cow_size", "aof_last_cow_size_bytes", "gauge"),
    (
        "aof_last_bgrewrite_status",
        "aof_last_bgrewrite_status",
        "gauge",
    ),
    ("aof_last_write_status", "aof_last_write_status", "gauge"),
    ("pubsub_channels", "pubsub_channels", "gauge"),
    ("pubsub_patterns", "pubsub_patterns", "gauge"),
    ("latest_fork_usec", "latest_fork_usec", "gauge"),
    (
        "instantaneous_ops_per_sec",
        "instantaneous_ops_per_sec",
        "gauge",
    ),
    (
        "instantaneous_input_kbps",
        "instantaneous_input_kbps",
        "gauge",
    ),
    (
        "instantaneous_output_kbps",
        "instantaneous_output_kbps",
        "gauge",
    ),
    ("total_error_replies", "total_error_replies", "gauge"),
    ("connected_slaves", "connected_slaves", "gauge"),
    ("repl_backlog_size", "replication_backlog_bytes", "gauge"),
    ("repl_backlog_active", "repl_backlog_is_active", "gauge"),
    (
        "repl_backlog_first_byte_offset",
        "repl_backlog_first_byte_offset",
        "gauge",
    ),
    (
        "repl_backlog_histlen",
        "repl_backlog_history_bytes",
        "gauge",
    ),
    ("master_repl_offset", "master_repl_offset", "gauge"),
    ("second_repl_offset", "second_repl_offset", "gauge"),
    (
        "slave_expires_tracked_keys",
        "slave_expires_tracked_keys",
        "gauge",
    ),
    ("sync_full", "replica_resyncs_full", "gauge"),
    (
        "sync_partial_ok",
        "replica_partial_resync_accepted",
        "gauge",
    ),
    ("sync_partial_err", "replica_partial_resync_denied", "gauge"),
    (
        "total_connections_received",
        "connections_received_total",
        "counter",
    ),
    (
        "total_commands_processed",
        "commands_processed_total",
        "counter",
    ),
    (
        "rejected_connections",
        "rejected_connections_total",
        "counter",
    ),
    ("total_net_input_bytes", "net_input_bytes_total", "counter"),
    (
        "total_net_output_bytes",
        "net_output_bytes_total",
        "counter",
    ),
    ("expired_keys", "expired_keys_total", "counter"),
    ("evicted_keys", "evicted_keys_total", "counter"),
    ("keyspace_hits", "keyspace_hits_total", "counter"),
    ("keyspace_misses", "keyspace_misses_total", "counter"),
    ("used_cpu_sys", "cpu_sys_seconds_total", "counter"),
    ("used_cpu_user", "cpu_user_seconds_total", "counter"),
    (
        "used_cpu_sys_children",
        "cpu_sys_children_seconds_total",
        "counter",
    ),
    (
        "used_cpu_user_children",
        "cpu_user_children_seconds_total",
        "counter",
    ),
];

/// An INFO value as a number: numbers as they are, `ok` as 1 and other words as 0 (the
/// status fields), a trailing `%` dropped.
fn number(v: &str) -> Option<f64> {
    match v {
        "ok" => Some(1.0),
        "err" | "fail" => Some(0.0),
        _ => v.trim_end_matches('%').parse().ok(),
    }
}

/// Parses `k=v,k=v` (keyspace, commandstats, errorstats values).
fn pairs(v: &str) -> HashMap<&str, &str> {
    v.split(',').filter_map(|p| p.split_once('=')).collect()
}

/// The exposition text being built: one HELP/TYPE header per family.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, ty: &str, help: &str) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {ty}\n");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with one sample per (labels, value).
    fn labelled(&mut self, name: &str, ty: &str, help: &str, rows: &Rows<'_>) {
        if rows.is_empty() {
            return;
        }
        self.family(name, ty, help);
        for (labels, v) in rows {
            self.sample(name, labels, *v);
        }
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole /metrics page.
pub fn render(srv: &Server) -> String {
    let sel = crate::info::Selection::parse([&b"everything"[..]].into_iter());
    let info = crate::info::render(srv, &sel, None);
    let mut fields: HashMap<&str, &str> = HashMap::new();
    let mut ordered: Vec<(&str, &str)> = Vec::new();
    for line in info.lines() {
        if let Some((k, v)) = line.split_once(':') {
            fields.insert(k, v);
            ordered.push((k, v));
        }
    }
    let mut out = Out(String::with_capacity(16 * 1024));
    out.family(
        "redis_up",
        "gauge",
        "Whether the server is up (always 1 when it answers).",
    );
    out.sample("redis_up", &[], 1.0);
    let started = srv.started_unix_ms / 1000;
    out.family(
        "redis_start_time_seconds",
        "gauge",
        "Start time, unix seconds.",
    );
    out.sample("redis_start_time_seconds", &[], started as f64);
    let get = |k: &str| fields.get(k).copied().unwrap_or("");
    out.family(
        "redis_instance_info",
        "gauge",
        "Information about the instance.",
    );
    out.sample(
        "redis_instance_info",
        &[
            ("role", get("role")),
            ("redis_version", get("redis_version")),
            ("flowkv_version", get("flowkv_version")),
            ("redis_mode", get("redis_mode")),
            ("os", get("os")),
            ("maxmemory_policy", get("maxmemory_policy")),
            ("tcp_port", get("tcp_port")),
            ("run_id", get("run_id")),
            ("process_id", get("process_id")),
        ],
        1.0,
    );
    for (field, metric, ty) in FIELDS {
        if let Some(v) = fields.get(field).and_then(|v| number(v)) {
            let name = format!("redis_{metric}");
            out.family(&name, ty, &format!("INFO {field}."));
            out.sample(&name, &[], v);
        }
    }
    // redis_exporter reads these two from CONFIG GET.
    for (directive, metric) in [("maxmemory", "maxmemory"), ("maxclients", "maxclients")] {
        let name = format!("redis_config_{metric}");
        out.family(&name, "gauge", &format!("The {directive} directive."));
        out.sample(&name, &[], srv.config.get_u64(directive) as f64);
    }
    keyspace(&mut out, &ordered);
    prefixes(&mut out, &ordered);
    commands(&mut out, &ordered);
    errors(&mut out, &ordered);
    latency(&mut out, srv, &ordered);
    out.0
}

/// Labelled rows (label values and a value) of a metric family.
type Rows<'a> = Vec<(Vec<(&'a str, &'a str)>, f64)>;

/// One row per item of `k=v` INFO values: the item's name under `label`, and its field
/// `field` times `scale` (0 when missing).
fn rows_of<'a>(
    items: &[(&'a str, HashMap<&str, &str>)],
    label: &'a str,
    field: &str,
    scale: f64,
) -> Rows<'a> {
    items
        .iter()
        .map(|(name, p)| {
            let v = p
                .get(field)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            (vec![(label, *name)], v * scale)
        })
        .collect()
}

/// flowkv's per-prefix statistics (`stats-key-prefixes`), labelled by prefix.
fn prefixes(out: &mut Out, info: &[(&str, &str)]) {
    let items: Vec<(&str, HashMap<&str, &str>)> = info
        .iter()
        .filter(|(k, _)| k.starts_with("prefix") && k[6..].bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|(_, v)| {
            // `prefix=<p>,keys=…`: the prefix may itself hold commas, so it is cut at
            // the last ",keys=".
            let rest = v.strip_prefix("prefix=")?;
            let at = rest.rfind(",keys=")?;
            Some((&rest[..at], pairs(&rest[at + 1..])))
        })
        .collect();
    let rows = |field: &str| rows_of(&items, "prefix", field, 1.0);
    out.labelled(
        "flowkv_prefix_keys",
        "gauge",
        "Keys starting with the prefix (as of the last background count).",
        &rows("keys"),
    );
    out.labelled(
        "flowkv_prefix_memory_bytes",
        "gauge",
        "Memory of the keys starting with the prefix (as of the last background count).",
        &rows("memory"),
    );
    out.labelled(
        "flowkv_prefix_keyspace_hits_total",
        "counter",
        "Lookups of existing keys starting with the prefix.",
        &rows("hits"),
    );
    out.labelled(
        "flowkv_prefix_keyspace_misses_total",
        "counter",
        "Lookups of missing keys starting with the prefix.",
        &rows("misses"),
    );
}

fn keyspace(out: &mut Out, info: &[(&str, &str)]) {
    let dbs: Vec<(&str, HashMap<&str, &str>)> = info
        .iter()
        .filter(|(k, _)| k.starts_with("db") && k[2..].bytes().all(|b| b.is_ascii_digit()))
        .map(|(k, v)| (*k, pairs(v)))
        .collect();
    let rows = |field: &str, scale: f64| rows_of(&dbs, "db", field, scale);
    out.labelled(
        "redis_db_keys",
        "gauge",
        "Keys per database.",
        &rows("keys", 1.0),
    );
    out.labelled(
        "redis_db_keys_expiring",
        "gauge",
        "Keys with an expiry per database.",
        &rows("expires", 1.0),
    );
    out.labelled(
        "redis_db_avg_ttl_seconds",
        "gauge",
        "Average TTL per database.",
        &rows("avg_ttl", 0.001),
    );
}

fn commands(out: &mut Out, info: &[(&str, &str)]) {
    let stats: Vec<(&str, HashMap<&str, &str>)> = info
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("cmdstat_")?, pairs(v))))
        .collect();
    let rows = |field: &str, scale: f64| rows_of(&stats, "cmd", field, scale);
    out.labelled(
        "redis_commands_total",
        "counter",
        "Calls per command.",
        &rows("calls", 1.0),
    );
    out.labelled(
        "redis_commands_duration_seconds_total",
        "counter",
        "Time spent per command.",
        &rows("usec", 1e-6),
    );
    out.labelled(
        "redis_commands_rejected_calls_total",
        "counter",
        "Calls refused before running, per command.",
        &rows("rejected_calls", 1.0),
    );
    out.labelled(
        "redis_commands_failed_calls_total",
        "counter",
        "Calls that failed, per command.",
        &rows("failed_calls", 1.0),
    );
}

fn errors(out: &mut Out, info: &[(&str, &str)]) {
    let rows: Rows<'_> = info
        .iter()
        .filter_map(|(k, v)| {
            let code = k.strip_prefix("errorstat_")?;
            let n = pairs(v).get("count")?.parse().ok()?;
            Some((vec![("err", code)], n))
        })
        .collect();
    out.labelled(
        "redis_errors_total",
        "counter",
        "Error replies per error code.",
        &rows,
    );
}

/// Per-command latency percentiles (a summary, as redis_exporter exports them), the slow
/// log and the latency monitor's spikes.
fn latency(out: &mut Out, srv: &Server, info: &[(&str, &str)]) {
    let cmdstats: HashMap<&str, HashMap<&str, &str>> = info
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("cmdstat_")?, pairs(v))))
        .collect();
    let mut first = true;
    for (k, v) in info {
        let Some(cmd) = k.strip_prefix("latency_percentiles_usec_") else {
            continue;
        };
        if first {
            out.family(
                "redis_latency_percentiles_usec",
                "summary",
                "Latency percentiles per command, in microseconds.",
            );
            first = false;
        }
        for (p, value) in v.split(',').filter_map(|p| p.split_once('=')) {
            let q = p
                .trim_start_matches('p')
                .parse::<f64>()
                .map_or(String::new(), |p| crate::info::percentile_label(p / 100.0));
            let value = value.parse().unwrap_or(0.0);
            out.sample(
                "redis_latency_percentiles_usec",
                &[("cmd", cmd), ("quantile", &q)],
                value,
            );
        }
        let stat = cmdstats.get(cmd);
        let field = |f: &str| {
            stat.and_then(|s| s.get(f))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        out.sample(
            "redis_latency_percentiles_usec_sum",
            &[("cmd", cmd)],
            field("usec"),
        );
        out.sample(
            "redis_latency_percentiles_usec_count",
            &[("cmd", cmd)],
            field("calls"),
        );
    }
    out.family("redis_slowlog_length", "gauge", "Entries in the slow log.");
    out.sample("redis_slowlog_length", &[], srv.slowlog.len() as f64);
    let spikes = srv.latency.latest();
    let last: Rows<'_> = spikes
        .iter()
        .map(|(e, t, _, _)| (vec![("event_name", *e)], *t as f64))
        .collect();
    out.labelled(
        "redis_latency_spike_last",
        "gauge",
        "When the latest latency spike of each event happened (unix seconds).",
        &last,
    );
    let dur: Rows<'_> = spikes
        .iter()
        .map(|(e, _, ms, _)| (vec![("event_name", *e)], *ms as f64 / 1000.0))
        .collect();
    out.labelled(
        "redis_latency_spike_duration_seconds",
        "gauge",
        "Length of the latest latency spike of each event.",
        &dur,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("a b").is_none());
    }

    #[test]
    fn numbers_and_escapes() {
        assert_eq!(number("ok"), Some(1.0));
        assert_eq!(number("12.5%"), Some(12.5));
        assert_eq!(number("abc"), None);
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
