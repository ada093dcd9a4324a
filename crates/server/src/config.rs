//! Configuration: Redis's directive names, types, units and defaults, read from a redis.conf
//! and `--directive value` arguments, changed at run time by CONFIG SET.
//!
//! Every directive has one canonical string value (what CONFIG GET prints). Values the hot
//! path reads on every request are mirrored into atomics in [`Hot`], so workers never lock
//! the configuration to serve a command.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::RwLock;

/// How a directive's value is parsed and printed.
#[derive(Clone, Copy, Debug)]
pub enum Type {
    /// `yes` / `no`.
    Bool,
    /// An integer within bounds; `memory` accepts units like `256mb` / `1gb` / `10k`.
    Int { min: i64, max: i64, memory: bool },
    /// One of these words (case-insensitive; printed lower-case).
    Enum(&'static [&'static str]),
    /// Free text.
    Str,
}

/// One configuration directive.
#[derive(Clone, Copy, Debug)]
pub struct Directive {
    pub name: &'static str,
    /// Older names that mean the same (e.g. `slaveof` for `replicaof`).
    pub aliases: &'static [&'static str],
    pub ty: Type,
    pub default: &'static str,
    /// False for directives only settable at start-up (CONFIG SET refuses them).
    pub mutable: bool,
}

const fn d(name: &'static str, ty: Type, default: &'static str) -> Directive {
    Directive {
        name,
        aliases: &[],
        ty,
        default,
        mutable: true,
    }
}

const fn immutable(mut dir: Directive) -> Directive {
    dir.mutable = false;
    dir
}

const fn alias(mut dir: Directive, aliases: &'static [&'static str]) -> Directive {
    dir.aliases = aliases;
    dir
}

const BOOL: Type = Type::Bool;
const STR: Type = Type::Str;
const fn int(min: i64, max: i64) -> Type {
    Type::Int {
        min,
        max,
        memory: false,
    }
}
const fn mem(min: i64, max: i64) -> Type {
    Type::Int {
        min,
        max,
        memory: true,
    }
}

/// Every directive flowkv knows, with Redis 7.0's defaults.
pub static DIRECTIVES: &[Directive] = &[
    immutable(d("port", int(0, 65535), "6379")),
    immutable(d("bind", STR, "127.0.0.1 -::1")),
    immutable(d("databases", int(1, i32::MAX as i64), "16")),
    immutable(alias(d("threads", int(1, 128), "0"), &["io-threads"])),
    immutable(d("daemonize", BOOL, "no")),
    d("dir", STR, "."),
    d("dbfilename", STR, "dump.rdb"),
    d("save", STR, "3600 1 300 100 60 10000"),
    d("appendonly", BOOL, "no"),
    d(
        "appendfsync",
        Type::Enum(&["always", "everysec", "no"]),
        "everysec",
    ),
    d(
        "loglevel",
        Type::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
        "notice",
    ),
    d("logfile", STR, ""),
    d("hz", int(0, i32::MAX as i64), "10"),
    d("timeout", int(0, i32::MAX as i64), "0"),
    d("tcp-keepalive", int(0, i32::MAX as i64), "300"),
    d("maxclients", int(1, i32::MAX as i64), "10000"),
    d(
        "proto-max-bulk-len",
        mem(1024 * 1024, i64::MAX),
        "536870912",
    ),
    d(
        "client-query-buffer-limit",
        mem(1024 * 1024, i64::MAX),
        "1073741824",
    ),
    d("maxmemory", mem(0, i64::MAX), "0"),
    d(
        "maxmemory-policy",
        Type::Enum(&[
            "volatile-lru",
            "allkeys-lru",
            "volatile-lfu",
            "allkeys-lfu",
            "volatile-random",
            "allkeys-random",
            "volatile-ttl",
            "noeviction",
        ]),
        "noeviction",
    ),
    d("requirepass", STR, ""),
    immutable(d("protected-mode", BOOL, "yes")),
    d("notify-keyspace-events", STR, ""),
    d("latency-monitor-threshold", int(0, i64::MAX), "0"),
    d("slowlog-log-slower-than", int(-1, i64::MAX), "10000"),
    d("slowlog-max-len", int(0, i64::MAX), "128"),
    immutable(d(
        "enable-debug-command",
        Type::Enum(&["no", "yes", "local"]),
        "no",
    )),
    immutable(d(
        "enable-protected-configs",
        Type::Enum(&["no", "yes", "local"]),
        "no",
    )),
    immutable(d(
        "enable-module-command",
        Type::Enum(&["no", "yes", "local"]),
        "no",
    )),
    d("repl-diskless-sync-delay", int(0, i32::MAX as i64), "5"),
    d("repl-ping-replica-period", int(1, i32::MAX as i64), "10"),
    d("active-expire-effort", int(1, 10), "1"),
    d("lazyfree-lazy-user-del", BOOL, "no"),
    d("lazyfree-lazy-user-flush", BOOL, "no"),
    alias(
        d("hash-max-listpack-entries", int(0, i64::MAX), "128"),
        &["hash-max-ziplist-entries"],
    ),
    alias(
        d("hash-max-listpack-value", int(0, i64::MAX), "64"),
        &["hash-max-ziplist-value"],
    ),
    alias(
        d("zset-max-listpack-entries", int(0, i64::MAX), "128"),
        &["zset-max-ziplist-entries"],
    ),
    alias(
        d("zset-max-listpack-value", int(0, i64::MAX), "64"),
        &["zset-max-ziplist-value"],
    ),
    d("set-max-intset-entries", int(0, i64::MAX), "512"),
    d("set-max-listpack-entries", int(0, i64::MAX), "128"),
    d("set-max-listpack-value", int(0, i64::MAX), "64"),
    alias(
        d(
            "list-max-listpack-size",
            int(i32::MIN as i64, i32::MAX as i64),
            "-2",
        ),
        &["list-max-ziplist-size"],
    ),
    d("list-compress-depth", int(0, i32::MAX as i64), "0"),
];

/// Values the hot path reads per request, mirrored from the canonical strings.
#[derive(Default)]
pub struct Hot {
    pub proto_max_bulk_len: AtomicU64,
    pub client_query_buffer_limit: AtomicU64,
    pub maxclients: AtomicU64,
    pub timeout_secs: AtomicU64,
    pub hz: AtomicU64,
}

/// The live configuration.
pub struct Config {
    values: RwLock<BTreeMap<&'static str, String>>,
    /// The config file given at start-up, for CONFIG REWRITE.
    pub file: Option<PathBuf>,
    pub hot: Hot,
}

/// Finds a directive by name or alias (case-insensitive).
pub fn lookup(name: &str) -> Option<&'static Directive> {
    DIRECTIVES.iter().find(|d| {
        d.name.eq_ignore_ascii_case(name) || d.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// Parses a memory amount like Redis's `memtoll`: a number with an optional unit
/// (k, kb, m, mb, g, gb; `k` = 1000, `kb` = 1024), case-insensitive.
pub fn parse_memory(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    num.parse::<i64>().ok()?.checked_mul(mul)
}

/// Checks and normalizes a value for a directive; the error is Redis's CONFIG SET reason.
fn normalize(dir: &Directive, value: &str) -> Result<String, String> {
    match dir.ty {
        Type::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Type::Int { min, max, memory } => {
            let v = if memory {
                parse_memory(value)
            } else {
                value.parse::<i64>().ok()
            }
            .ok_or_else(|| {
                if memory {
                    "argument must be a memory value".to_string()
                } else {
                    "argument couldn't be parsed into an integer".to_string()
                }
            })?;
            if v < min || v > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(v.to_string())
        }
        Type::Enum(words) => {
            let lower = value.to_ascii_lowercase();
            if words.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!(
                    "argument(s) must be one of the following: {}",
                    words.join(", ")
                ))
            }
        }
        Type::Str => Ok(value.to_string()),
    }
}

impl Config {
    /// The defaults.
    pub fn new() -> Config {
        let values = DIRECTIVES
            .iter()
            .map(|d| (d.name, d.default.to_string()))
            .collect();
        let c = Config {
            values: RwLock::new(values),
            file: None,
            hot: Hot::default(),
        };
        c.refresh_hot();
        c
    }

    /// Builds the configuration from command-line arguments as redis-server takes them:
    /// an optional config file path first, then `--directive value...` pairs that override it.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut c = Config::new();
        let mut rest = args;
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                let text = std::fs::read_to_string(first)
                    .map_err(|e| format!("Fatal error, can't open config file '{first}': {e}"))?;
                c.load_text(&text)?;
                c.file = Some(PathBuf::from(first));
                rest = &args[1..];
            }
        }
        // `--name v1 v2 --other x` → lines "name v1 v2", "other x", like redis-server.
        let mut text = String::new();
        for a in rest {
            if let Some(name) = a.strip_prefix("--") {
                text.push('\n');
                text.push_str(name);
            } else {
                text.push(' ');
                text.push_str(&quote_arg(a));
            }
        }
        c.load_text(&text)?;
        Ok(c)
    }

    /// Applies redis.conf text: one directive per line, `#` comments, quoted arguments.
    pub fn load_text(&mut self, text: &str) -> Result<(), String> {
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_line(line).ok_or_else(|| {
                format!("*** FATAL CONFIG FILE ERROR ***\nline {}: '{line}'\nUnbalanced quotes in configuration line", lineno + 1)
            })?;
            let Some((name, vals)) = words.split_first() else {
                continue;
            };
            let fatal = |why: &str| {
                format!(
                    "*** FATAL CONFIG FILE ERROR ***\nline {}: '{line}'\n{why}",
                    lineno + 1
                )
            };
            let dir =
                lookup(name).ok_or_else(|| fatal("Bad directive or wrong number of arguments"))?;
            let value = vals.join(" ");
            let v = normalize(dir, &value).map_err(|e| fatal(&e))?;
            self.values.write().insert(dir.name, v);
        }
        self.refresh_hot();
        Ok(())
    }

    fn refresh_hot(&self) {
        let h = &self.hot;
        h.proto_max_bulk_len
            .store(self.get_u64("proto-max-bulk-len"), Relaxed);
        h.client_query_buffer_limit
            .store(self.get_u64("client-query-buffer-limit"), Relaxed);
        h.maxclients.store(self.get_u64("maxclients"), Relaxed);
        h.timeout_secs.store(self.get_u64("timeout"), Relaxed);
        h.hz.store(self.get_u64("hz"), Relaxed);
    }

    /// The canonical value of a directive (by name or alias).
    pub fn get(&self, name: &str) -> Option<String> {
        let dir = lookup(name)?;
        self.values.read().get(dir.name).cloned()
    }

    /// A numeric directive (0 if unset or not numeric: only for known-numeric names).
    pub fn get_u64(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// A yes/no directive.
    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "yes")
    }

    /// Number of databases (fixed at start-up).
    pub fn databases(&self) -> usize {
        self.get_u64("databases") as usize
    }

    /// Sets several directives atomically (CONFIG SET a 1 b 2): all are validated first, and
    /// none changes if one is invalid. Errors are CONFIG SET's full reply text.
    pub fn set_many(&self, pairs: &[(String, String)]) -> Result<(), String> {
        let mut staged = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let dir = lookup(name).ok_or_else(|| {
                format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
            })?;
            if !dir.mutable {
                return Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                ));
            }
            if staged
                .iter()
                .any(|(d, _): &(&Directive, String)| d.name == dir.name)
            {
                return Err(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"));
            }
            let v = normalize(dir, value).map_err(|e| {
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {e}")
            })?;
            staged.push((dir, v));
        }
        {
            let mut values = self.values.write();
            for (dir, v) in staged {
                values.insert(dir.name, v);
            }
        }
        self.refresh_hot();
        Ok(())
    }

    /// (name, value) pairs whose name matches a glob pattern (CONFIG GET), by canonical name
    /// and aliases, as Redis 7 matches them.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(String, String)> {
        let values = self.values.read();
        let mut out = Vec::new();
        for dir in DIRECTIVES {
            for name in std::iter::once(&dir.name).chain(dir.aliases.iter()) {
                if flowkv_store::glob::glob_match(pattern, name.as_bytes(), true) {
                    out.push((
                        name.to_string(),
                        values.get(dir.name).cloned().unwrap_or_default(),
                    ));
                }
            }
        }
        out
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// Quotes an argument so that [`split_line`] reads it back as one word.
fn quote_arg(a: &str) -> String {
    if !a.is_empty()
        && !a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        return a.to_string();
    }
    let mut s = String::from("\"");
    for c in a.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Splits a config line into words with redis.conf's quoting (double quotes with escapes,
/// single quotes). `None` on unbalanced quotes.
fn split_line(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(words);
        };
        let mut w = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' if first == '"' => match chars.next()? {
                        'n' => w.push('\n'),
                        'r' => w.push('\r'),
                        't' => w.push('\t'),
                        c => w.push(c),
                    },
                    '\\' if chars.peek() == Some(&'\'') => {
                        chars.next();
                        w.push('\'');
                    }
                    c if c == first => break,
                    c => w.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        words.push(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("256mb"), Some(256 * 1024 * 1024));
        assert_eq!(parse_memory("1GB"), Some(1 << 30));
        assert_eq!(parse_memory("10k"), Some(10_000));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("12xb"), None);
    }

    #[test]
    fn file_and_args() {
        let mut c = Config::new();
        c.load_text("# comment\nport 7000\nmaxmemory 1gb\nsave \"\"\nhash-max-ziplist-entries 5\n")
            .unwrap();
        assert_eq!(c.get("port").unwrap(), "7000");
        assert_eq!(c.get("maxmemory").unwrap(), (1u64 << 30).to_string());
        assert_eq!(c.get("save").unwrap(), "");
        assert_eq!(c.get("hash-max-listpack-entries").unwrap(), "5");
        assert!(c
            .load_text("nosuchdirective 1")
            .unwrap_err()
            .contains("Bad directive"));
        let c = Config::from_args(&["--port".into(), "7001".into(), "--save".into(), "".into()])
            .unwrap();
        assert_eq!(c.get("port").unwrap(), "7001");
        assert_eq!(c.get("save").unwrap(), "");
    }

    #[test]
    fn set_is_all_or_nothing() {
        let c = Config::new();
        let err = c
            .set_many(&[("timeout".into(), "5".into()), ("hz".into(), "x".into())])
            .unwrap_err();
        assert!(err.starts_with("ERR CONFIG SET failed (possibly related to argument 'hz')"));
        assert_eq!(c.get("timeout").unwrap(), "0");
        c.set_many(&[("timeout".into(), "5".into())]).unwrap();
        assert_eq!(c.hot.timeout_secs.load(Relaxed), 5);
    }
}
