//! Configuration: Redis 7.0's directive names, aliases, types, bounds, units and defaults, read
//! from a redis.conf and `--directive value` arguments, changed at run time by CONFIG SET and
//! written back by CONFIG REWRITE.
//!
//! Every directive has one canonical string value: what CONFIG GET prints (memory amounts as
//! plain bytes, enums in lower case, `save` as "3600 1 300 100"…). Values the hot path reads on
//! every request are mirrored into atomics in [`Hot`], so workers never lock the configuration
//! to serve a command.
//!
//! The table accepts every directive Redis 7.0 knows, including those of features flowkv does
//! not have yet (TLS, cluster, replication tuning, active defrag…): they are validated exactly
//! as Redis validates them and stored, so an existing redis.conf loads unchanged and CONFIG
//! GET/SET round-trip, but a stored value only changes behaviour once the feature that reads it
//! exists. A few differ from Redis on purpose and say so in the table: `threads` (our worker
//! count; `io-threads` is its alias), `port` and `bind` (fixed after start-up: the listeners
//! are not re-opened, so CONFIG SET only accepts their current value), and the default `bind`
//! (redis.conf's loopback-only line, not the compiled-in `* -::*`).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use flowkv_store::glob::glob_match;
use flowkv_store::keyspace::MAX_STAT_PREFIXES;
use flowkv_store::num::parse_i64;
use parking_lot::RwLock;

/// How an integer directive is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A plain integer.
    Plain,
    /// Bytes, with optional units (`256mb`, `1gb`, `10k`); printed as plain bytes.
    Memory,
    /// Bytes, or a percentage of `maxmemory` (`10%`, stored negated as Redis does).
    MemoryOrPercent,
    /// An octal number (`unixsocketperm 700`).
    Octal,
}

/// How a directive's value is parsed and printed.
#[derive(Clone, Copy, Debug)]
pub enum Type {
    /// `yes` / `no`.
    Bool,
    /// An integer within inclusive bounds.
    Int { min: i64, max: i64, unit: Unit },
    /// One of these words (case-insensitive; printed lower-case).
    Enum(&'static [&'static str]),
    /// Several of these words at once (`shutdown-on-sigterm "save now"`); the first word is
    /// the empty set.
    Flags(&'static [&'static str]),
    /// Free text.
    Str,
    /// A file or directory name without a path; `what` is "filename" or "dirname".
    BaseName {
        what: &'static str,
        allow_empty: bool,
    },
    /// A directive with its own grammar.
    Special(Special),
}

/// Directives with their own grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// `dir`: an existing directory, printed as an absolute path.
    Dir,
    /// `save <seconds> <changes> ...`.
    Save,
    /// `client-output-buffer-limit <class> <hard> <soft> <seconds> ...`.
    ClientOutputBufferLimit,
    /// `oom-score-adj-values <master> <replica> <bgchild>`.
    OomScoreAdjValues,
    /// `notify-keyspace-events` class characters.
    NotifyKeyspaceEvents,
    /// `bind <addr> ...` (at most 16).
    Bind,
    /// `replicaof <host> <port>` / `replicaof no one`.
    ReplicaOf,
    /// `latency-tracking-info-percentiles <p> ...`.
    LatencyPercentiles,
    /// `stats-key-prefixes <prefix> ...` (at most [`MAX_STAT_PREFIXES`]).
    StatsKeyPrefixes,
}

impl Type {
    /// True for directives whose value is several words (Redis's MULTI_ARG_CONFIG): CONFIG SET
    /// splits their value on spaces.
    fn multi_arg(self) -> bool {
        matches!(
            self,
            Type::Flags(_)
                | Type::Special(
                    Special::Save
                        | Special::ClientOutputBufferLimit
                        | Special::OomScoreAdjValues
                        | Special::Bind
                        | Special::ReplicaOf
                        | Special::LatencyPercentiles
                        | Special::StatsKeyPrefixes
                )
        )
    }
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
    /// CONFIG SET needs `enable-protected-configs` (`dir`, `dbfilename`).
    pub protected: bool,
    /// Left out of CONFIG GET patterns; only an exact name finds it (test hooks).
    pub hidden: bool,
    /// Changeable in Redis but fixed in flowkv once started (the listeners and workers are
    /// set up at start-up): CONFIG SET accepts the current value and refuses any other with
    /// this reason.
    pub fixed: Option<&'static str>,
}

const fn d(name: &'static str, ty: Type, default: &'static str) -> Directive {
    Directive {
        name,
        aliases: &[],
        ty,
        default,
        mutable: true,
        protected: false,
        hidden: false,
        fixed: None,
    }
}

const fn immutable(mut dir: Directive) -> Directive {
    dir.mutable = false;
    dir
}

const fn protected(mut dir: Directive) -> Directive {
    dir.protected = true;
    dir
}

const fn hidden(mut dir: Directive) -> Directive {
    dir.hidden = true;
    dir
}

const fn fixed(mut dir: Directive, why: &'static str) -> Directive {
    dir.fixed = Some(why);
    dir
}

const fn alias(mut dir: Directive, aliases: &'static [&'static str]) -> Directive {
    dir.aliases = aliases;
    dir
}

const BOOL: Type = Type::Bool;
const STR: Type = Type::Str;
const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;
const UINT_MAX: i64 = u32::MAX as i64;
const LONG_MAX: i64 = i64::MAX;
const fn int(min: i64, max: i64) -> Type {
    Type::Int {
        min,
        max,
        unit: Unit::Plain,
    }
}
const fn mem(min: i64, max: i64) -> Type {
    Type::Int {
        min,
        max,
        unit: Unit::Memory,
    }
}
const fn special(s: Special) -> Type {
    Type::Special(s)
}
const PROTECTED_ACTION: Type = Type::Enum(&["no", "yes", "local"]);
const SHUTDOWN_FLAGS: Type = Type::Flags(&["default", "save", "nosave", "now", "force"]);

/// The most addresses `bind` takes.
const MAX_BIND_ADDRESSES: usize = 16;
/// `hz` is a hint: values outside this range are accepted and capped.
const HZ_RANGE: (i64, i64) = (1, 500);
/// Nested `include` directives allowed (stops include loops).
const MAX_INCLUDE_DEPTH: usize = 10;
/// Comment line CONFIG REWRITE puts before the directives it appends.
const REWRITE_SIGNATURE: &str = "# Generated by CONFIG REWRITE";

/// Every directive, with Redis 7.0's types, bounds and defaults.
pub static DIRECTIVES: &[Directive] = &[
    // Networking and process.
    // Redis re-listens on CONFIG SET port/bind; flowkv opens its listeners once.
    fixed(
        d("port", int(0, 65535), "6379"),
        "Unable to listen on this port at run time: flowkv opens its listeners at start-up",
    ),
    // redis.conf's loopback default rather than the compiled-in `* -::*`.
    fixed(
        d("bind", special(Special::Bind), "127.0.0.1 -::1"),
        "Failed to bind to specified addresses at run time: flowkv opens its listeners at start-up",
    ),
    d("bind-source-addr", STR, ""),
    immutable(d("unixsocket", STR, "")),
    immutable(d(
        "unixsocketperm",
        Type::Int {
            min: 0,
            max: 0o777,
            unit: Unit::Octal,
        },
        "0",
    )),
    immutable(d("socket-mark-id", int(0, UINT_MAX), "0")),
    immutable(d("tcp-backlog", int(0, INT_MAX), "511")),
    d("tcp-keepalive", int(0, INT_MAX), "300"),
    d("timeout", int(0, INT_MAX), "0"),
    d("protected-mode", BOOL, "yes"),
    // flowkv's worker threads (0 = one per core); Redis's io-threads is an alias.
    fixed(
        alias(d("threads", int(0, 128), "0"), &["io-threads"]),
        "the number of worker threads is set at start-up",
    ),
    immutable(d("io-threads-do-reads", BOOL, "no")),
    // flowkv: microseconds a nearly saturated worker keeps polling after its last event
    // before it sleeps (0: never; see net/spin.rs).
    d("busy-poll-us", int(0, 1000), "50"),
    immutable(d("databases", int(1, INT_MAX), "16")),
    immutable(d("daemonize", BOOL, "no")),
    immutable(d(
        "supervised",
        Type::Enum(&["upstart", "systemd", "auto", "no"]),
        "no",
    )),
    immutable(d("pidfile", STR, "")),
    d(
        "loglevel",
        Type::Enum(&["debug", "verbose", "notice", "warning"]),
        "notice",
    ),
    immutable(d("logfile", STR, "")),
    immutable(d("syslog-enabled", BOOL, "no")),
    immutable(d("syslog-ident", STR, "redis")),
    immutable(d(
        "syslog-facility",
        Type::Enum(&[
            "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        ]),
        "local0",
    )),
    d("crash-log-enabled", BOOL, "yes"),
    d("crash-memcheck-enabled", BOOL, "yes"),
    immutable(d("always-show-logo", BOOL, "no")),
    immutable(d("set-proc-title", BOOL, "yes")),
    d(
        "proc-title-template",
        STR,
        "{title} {listen-addr} {server-mode}",
    ),
    immutable(d("disable-thp", BOOL, "yes")),
    d("jemalloc-bg-thread", BOOL, "yes"),
    d(
        "oom-score-adj",
        Type::Enum(&["no", "yes", "relative", "absolute"]),
        "no",
    ),
    d(
        "oom-score-adj-values",
        special(Special::OomScoreAdjValues),
        "0 200 800",
    ),
    immutable(d("server_cpulist", STR, "")),
    immutable(d("bio_cpulist", STR, "")),
    immutable(d("aof_rewrite_cpulist", STR, "")),
    immutable(d("bgsave_cpulist", STR, "")),
    d("ignore-warnings", STR, ""),
    d("shutdown-on-sigint", SHUTDOWN_FLAGS, "default"),
    d("shutdown-on-sigterm", SHUTDOWN_FLAGS, "default"),
    d("shutdown-timeout", int(0, INT_MAX), "10"),
    immutable(d("enable-protected-configs", PROTECTED_ACTION, "no")),
    immutable(d("enable-debug-command", PROTECTED_ACTION, "no")),
    immutable(d("enable-module-command", PROTECTED_ACTION, "no")),
    d("hz", int(0, INT_MAX), "10"),
    d("dynamic-hz", BOOL, "yes"),
    // Limits.
    d("maxclients", int(1, UINT_MAX), "10000"),
    d(
        "proto-max-bulk-len",
        mem(1024 * 1024, LONG_MAX),
        "536870912",
    ),
    d(
        "client-query-buffer-limit",
        mem(1024 * 1024, LONG_MAX),
        "1073741824",
    ),
    d(
        "client-output-buffer-limit",
        special(Special::ClientOutputBufferLimit),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    d(
        "maxmemory-clients",
        Type::Int {
            min: -100,
            max: LONG_MAX,
            unit: Unit::MemoryOrPercent,
        },
        "0",
    ),
    alias(
        d("busy-reply-threshold", int(0, LONG_MAX), "5000"),
        &["lua-time-limit"],
    ),
    // Security.
    d("requirepass", STR, ""),
    immutable(d("aclfile", STR, "")),
    d("acllog-max-len", int(0, LONG_MAX), "128"),
    d(
        "acl-pubsub-default",
        Type::Enum(&["allchannels", "resetchannels"]),
        "resetchannels",
    ),
    d(
        "sanitize-dump-payload",
        Type::Enum(&["no", "yes", "clients"]),
        "no",
    ),
    // Memory and eviction.
    d("maxmemory", mem(0, LONG_MAX), "0"),
    d(
        "maxmemory-policy",
        Type::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        "noeviction",
    ),
    d("maxmemory-samples", int(1, INT_MAX), "5"),
    d("maxmemory-eviction-tenacity", int(0, 100), "10"),
    d("lfu-log-factor", int(0, INT_MAX), "10"),
    d("lfu-decay-time", int(0, INT_MAX), "1"),
    d("lazyfree-lazy-eviction", BOOL, "no"),
    d("lazyfree-lazy-expire", BOOL, "no"),
    d("lazyfree-lazy-server-del", BOOL, "no"),
    d("lazyfree-lazy-user-del", BOOL, "no"),
    d("lazyfree-lazy-user-flush", BOOL, "no"),
    d("active-expire-effort", int(1, 10), "1"),
    d("activerehashing", BOOL, "yes"),
    d("activedefrag", BOOL, "no"),
    d("active-defrag-ignore-bytes", mem(1, LONG_MAX), "104857600"),
    d("active-defrag-threshold-lower", int(0, 1000), "10"),
    d("active-defrag-threshold-upper", int(0, 1000), "100"),
    d("active-defrag-cycle-min", int(1, 99), "1"),
    d("active-defrag-cycle-max", int(1, 99), "25"),
    d("active-defrag-max-scan-fields", int(1, LONG_MAX), "1000"),
    // Encodings.
    alias(
        d("hash-max-listpack-entries", int(0, LONG_MAX), "512"),
        &["hash-max-ziplist-entries"],
    ),
    alias(
        d("hash-max-listpack-value", mem(0, LONG_MAX), "64"),
        &["hash-max-ziplist-value"],
    ),
    alias(
        d("zset-max-listpack-entries", int(0, LONG_MAX), "128"),
        &["zset-max-ziplist-entries"],
    ),
    alias(
        d("zset-max-listpack-value", mem(0, LONG_MAX), "64"),
        &["zset-max-ziplist-value"],
    ),
    alias(
        d("list-max-listpack-size", int(INT_MIN, INT_MAX), "-2"),
        &["list-max-ziplist-size"],
    ),
    d("list-compress-depth", int(0, INT_MAX), "0"),
    d("set-max-intset-entries", int(0, LONG_MAX), "512"),
    // Redis 7.2's small-set listpack thresholds, accepted (with 7.2's defaults) so configs
    // written for 7.2 load. They have no effect: sets follow 7.0's encodings (intset, else
    // hashtable), so only set-max-intset-entries matters.
    d("set-max-listpack-entries", int(0, LONG_MAX), "128"),
    d("set-max-listpack-value", mem(0, LONG_MAX), "64"),
    d("stream-node-max-bytes", mem(0, LONG_MAX), "4096"),
    d("stream-node-max-entries", int(0, LONG_MAX), "100"),
    d("hll-sparse-max-bytes", mem(0, LONG_MAX), "3000"),
    // Monitoring.
    d("slowlog-log-slower-than", int(-1, LONG_MAX), "10000"),
    d("slowlog-max-len", int(0, LONG_MAX), "128"),
    d("latency-monitor-threshold", int(0, LONG_MAX), "0"),
    d("latency-tracking", BOOL, "yes"),
    d(
        "latency-tracking-info-percentiles",
        special(Special::LatencyPercentiles),
        "50 99 99.9",
    ),
    d(
        "notify-keyspace-events",
        special(Special::NotifyKeyspaceEvents),
        "",
    ),
    d("tracking-table-max-keys", int(0, LONG_MAX), "1000000"),
    // flowkv's own monitoring directives (see docs/OBSERVABILITY.md). The metrics listener
    // is opened once at start-up, like the main port.
    fixed(
        d("metrics-port", int(0, 65535), "0"),
        "Unable to listen on this port at run time: flowkv opens its listeners at start-up",
    ),
    fixed(
        d("metrics-bind", STR, ""),
        "Failed to bind to specified addresses at run time: flowkv opens its listeners at start-up",
    ),
    d("metrics-password", STR, ""),
    // Space-separated key prefixes with their own statistics (docs/OBSERVABILITY.md).
    d("stats-key-prefixes", special(Special::StatsKeyPrefixes), ""),
    // Persistence.
    protected(d("dir", special(Special::Dir), ".")),
    protected(d(
        "dbfilename",
        Type::BaseName {
            what: "filename",
            allow_empty: true,
        },
        "dump.rdb",
    )),
    d("save", special(Special::Save), "3600 1 300 100 60 10000"),
    d("stop-writes-on-bgsave-error", BOOL, "yes"),
    d("rdbcompression", BOOL, "yes"),
    immutable(d("rdbchecksum", BOOL, "yes")),
    d("rdb-del-sync-files", BOOL, "no"),
    d("rdb-save-incremental-fsync", BOOL, "yes"),
    d("appendonly", BOOL, "no"),
    immutable(d(
        "appendfilename",
        Type::BaseName {
            what: "filename",
            allow_empty: false,
        },
        "appendonly.aof",
    )),
    immutable(d(
        "appenddirname",
        Type::BaseName {
            what: "dirname",
            allow_empty: false,
        },
        "appendonlydir",
    )),
    d(
        "appendfsync",
        Type::Enum(&["everysec", "always", "no"]),
        "everysec",
    ),
    d("no-appendfsync-on-rewrite", BOOL, "no"),
    d("auto-aof-rewrite-percentage", int(0, INT_MAX), "100"),
    d("auto-aof-rewrite-min-size", mem(0, LONG_MAX), "67108864"),
    d("aof-load-truncated", BOOL, "yes"),
    d("aof-use-rdb-preamble", BOOL, "yes"),
    d("aof-timestamp-enabled", BOOL, "no"),
    d("aof-rewrite-incremental-fsync", BOOL, "yes"),
    d("aof-disable-auto-gc", BOOL, "no"),
    // Replication.
    immutable(alias(
        d("replicaof", special(Special::ReplicaOf), ""),
        &["slaveof"],
    )),
    d("masterauth", STR, ""),
    d("masteruser", STR, ""),
    alias(
        d("replica-serve-stale-data", BOOL, "yes"),
        &["slave-serve-stale-data"],
    ),
    alias(d("replica-read-only", BOOL, "yes"), &["slave-read-only"]),
    alias(d("replica-lazy-flush", BOOL, "no"), &["slave-lazy-flush"]),
    alias(
        d("replica-ignore-maxmemory", BOOL, "yes"),
        &["slave-ignore-maxmemory"],
    ),
    d("replica-ignore-disk-write-errors", BOOL, "no"),
    alias(
        d("replica-priority", int(0, INT_MAX), "100"),
        &["slave-priority"],
    ),
    alias(d("replica-announce-ip", STR, ""), &["slave-announce-ip"]),
    alias(
        d("replica-announce-port", int(0, 65535), "0"),
        &["slave-announce-port"],
    ),
    d("replica-announced", BOOL, "yes"),
    d("repl-diskless-sync", BOOL, "yes"),
    d("repl-diskless-sync-delay", int(0, INT_MAX), "5"),
    d("repl-diskless-sync-max-replicas", int(0, INT_MAX), "0"),
    d(
        "repl-diskless-load",
        Type::Enum(&["disabled", "on-empty-db", "swapdb"]),
        "disabled",
    ),
    alias(
        d("repl-ping-replica-period", int(1, INT_MAX), "10"),
        &["repl-ping-slave-period"],
    ),
    d("repl-timeout", int(1, INT_MAX), "60"),
    d("repl-disable-tcp-nodelay", BOOL, "no"),
    d("repl-backlog-size", mem(1, LONG_MAX), "1048576"),
    d("repl-backlog-ttl", int(0, LONG_MAX), "3600"),
    alias(
        d("min-replicas-to-write", int(0, INT_MAX), "0"),
        &["min-slaves-to-write"],
    ),
    alias(
        d("min-replicas-max-lag", int(0, INT_MAX), "10"),
        &["min-slaves-max-lag"],
    ),
    d(
        "propagation-error-behavior",
        Type::Enum(&["ignore", "panic", "panic-on-replicas"]),
        "ignore",
    ),
    // Cluster.
    immutable(d("cluster-enabled", BOOL, "no")),
    immutable(d("cluster-config-file", STR, "nodes.conf")),
    immutable(d("cluster-port", int(0, 65535), "0")),
    d("cluster-node-timeout", int(0, LONG_MAX), "15000"),
    alias(
        d("cluster-replica-validity-factor", int(0, INT_MAX), "10"),
        &["cluster-slave-validity-factor"],
    ),
    d("cluster-migration-barrier", int(0, INT_MAX), "1"),
    d("cluster-allow-replica-migration", BOOL, "yes"),
    d("cluster-require-full-coverage", BOOL, "yes"),
    alias(
        d("cluster-replica-no-failover", BOOL, "no"),
        &["cluster-slave-no-failover"],
    ),
    d("cluster-allow-reads-when-down", BOOL, "no"),
    d("cluster-allow-pubsubshard-when-down", BOOL, "yes"),
    d("cluster-announce-ip", STR, ""),
    d("cluster-announce-hostname", STR, ""),
    d("cluster-announce-port", int(0, 65535), "0"),
    d("cluster-announce-bus-port", int(0, 65535), "0"),
    d("cluster-announce-tls-port", int(0, 65535), "0"),
    d(
        "cluster-preferred-endpoint-type",
        Type::Enum(&["ip", "hostname", "unknown-endpoint"]),
        "ip",
    ),
    d("cluster-link-sendbuf-limit", mem(0, LONG_MAX), "0"),
    // TLS.
    fixed(
        d("tls-port", int(0, 65535), "0"),
        "Unable to listen on this port at run time: flowkv opens its listeners at start-up",
    ),
    d("tls-cert-file", STR, ""),
    d("tls-key-file", STR, ""),
    d("tls-key-file-pass", STR, ""),
    d("tls-client-cert-file", STR, ""),
    d("tls-client-key-file", STR, ""),
    d("tls-client-key-file-pass", STR, ""),
    d("tls-dh-params-file", STR, ""),
    d("tls-ca-cert-file", STR, ""),
    d("tls-ca-cert-dir", STR, ""),
    d("tls-protocols", STR, ""),
    d("tls-ciphers", STR, ""),
    d("tls-ciphersuites", STR, ""),
    d(
        "tls-auth-clients",
        Type::Enum(&["no", "yes", "optional"]),
        "yes",
    ),
    d("tls-cluster", BOOL, "no"),
    d("tls-replication", BOOL, "no"),
    d("tls-prefer-server-ciphers", BOOL, "no"),
    d("tls-session-caching", BOOL, "yes"),
    d("tls-session-cache-size", int(0, INT_MAX), "20480"),
    d("tls-session-cache-timeout", int(0, INT_MAX), "300"),
    // Test hooks Redis hides from CONFIG GET patterns.
    hidden(d("rdb-key-save-delay", int(INT_MIN, INT_MAX), "0")),
    hidden(d("key-load-delay", int(INT_MIN, INT_MAX), "0")),
    hidden(d("watchdog-period", int(0, INT_MAX), "0")),
    hidden(d("use-exit-on-panic", BOOL, "no")),
    hidden(d(
        "loading-process-events-interval-bytes",
        int(1024, INT_MAX),
        "2097152",
    )),
];

/// Directives Redis 7.0 still accepts in a config file (with one argument) and ignores.
const DEPRECATED: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

/// Config-file-only directives that CONFIG REWRITE keeps as they are.
const FILE_ONLY: &[&str] = &[
    "include",
    "rename-command",
    "user",
    "loadmodule",
    "sentinel",
];

/// Values the hot path reads per request, mirrored from the canonical strings.
#[derive(Default)]
pub struct Hot {
    /// `busy-reply-threshold` (ms), read by every script call.
    pub busy_reply_threshold: AtomicU64,
    /// `busy-poll-us`, read by the worker loops.
    pub busy_poll_us: AtomicU64,
    pub proto_max_bulk_len: AtomicU64,
    pub client_query_buffer_limit: AtomicU64,
    pub maxclients: AtomicU64,
    pub timeout_secs: AtomicU64,
    pub hz: AtomicU64,
    pub hash_max_listpack_entries: AtomicU64,
    pub hash_max_listpack_value: AtomicU64,
    pub set_max_intset_entries: AtomicU64,
    pub zset_max_listpack_entries: AtomicU64,
    pub zset_max_listpack_value: AtomicU64,
    pub stream_node_max_bytes: AtomicU64,
    pub stream_node_max_entries: AtomicU64,
    /// `list-max-listpack-size`, stored as the i64 bit pattern (negative values mean KB).
    pub list_max_listpack_size: AtomicI64,
    /// `slowlog-log-slower-than` in microseconds (negative: the slow log is off).
    pub slowlog_slower_than: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    /// `latency-monitor-threshold` in milliseconds (0: the latency monitor is off).
    pub latency_monitor_threshold: AtomicU64,
    /// `latency-tracking`: per-command latency histograms are kept.
    pub latency_tracking: AtomicBool,
    /// `client-output-buffer-limit` by class (normal, replica, pubsub): hard bytes, soft
    /// bytes, soft seconds; 0 means no limit.
    pub obuf_limits: [[AtomicU64; 3]; 3],
    /// `maxmemory-clients` in bytes (a percentage resolved against `maxmemory`, never
    /// below 128 KB, as in Redis); 0: clients are never evicted.
    pub maxmemory_clients: AtomicU64,
    /// `tcp-keepalive` in seconds (0: off).
    pub tcp_keepalive: AtomicU64,
    /// `min-replicas-to-write` and `min-replicas-max-lag` (writes are refused with
    /// NOREPLICAS when both are set and too few replicas are in sync).
    pub min_replicas_to_write: AtomicU64,
    pub min_replicas_max_lag: AtomicU64,
    /// `replica-read-only` and `replica-serve-stale-data`, read while a replica.
    pub replica_read_only: AtomicBool,
    pub replica_serve_stale_data: AtomicBool,
}

/// The live configuration.
pub struct Config {
    values: RwLock<BTreeMap<&'static str, String>>,
    /// The config file given at start-up, for CONFIG REWRITE.
    pub file: Option<PathBuf>,
    pub hot: Hot,
    /// `user <name> <rule>...` lines, in file order (loaded by `crate::acl` at startup).
    users: Vec<Vec<String>>,
    /// `rename-command <name> <new-name>` lines (an empty new name removes the command).
    renames: Vec<(String, String)>,
    /// The TLS configuration built from the `tls-*` directives (see [`crate::tls`]).
    pub tls: crate::tls::Tls,
}

/// Finds a directive by name or alias (case-insensitive).
pub fn lookup(name: &str) -> Option<&'static Directive> {
    lookup_named(name).map(|(dir, _)| dir)
}

/// Finds a directive and the name (canonical or alias) that matched, as Redis reports it.
fn lookup_named(name: &str) -> Option<(&'static Directive, &'static str)> {
    DIRECTIVES.iter().find_map(|d| {
        std::iter::once(&d.name)
            .chain(d.aliases)
            .find(|n| n.eq_ignore_ascii_case(name))
            .map(|n| (d, *n))
    })
}

/// Parses a memory amount like Redis's `memtoull`: digits with an optional unit (b, k, kb, m,
/// mb, g, gb; `k` = 1000, `kb` = 1024), case-insensitive. No sign; no digits means 0, as in
/// Redis.
pub fn parse_memory(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mul: i64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n = if num.is_empty() {
        0
    } else {
        num.parse::<i64>().ok()?
    };
    n.checked_mul(mul)
}

/// Redis's `strtoll(s, &end, 10)` with `*end == '\0'`: leading spaces and a sign allowed,
/// empty means 0.
fn parse_loose_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    if t.is_empty() {
        return Some(0);
    }
    t.parse().ok()
}

/// Parses an integer directive's value; the error is Redis's CONFIG SET reason.
fn parse_int(unit: Unit, v: &str) -> Result<i64, &'static str> {
    match unit {
        Unit::Plain => parse_i64(v.as_bytes()).ok_or("argument couldn't be parsed into an integer"),
        Unit::Memory => parse_memory(v).ok_or("argument must be a memory value"),
        Unit::MemoryOrPercent => parse_memory(v)
            .or_else(|| {
                let n = parse_i64(v.strip_suffix('%')?.as_bytes())?;
                (n >= 0 && v.len() > 1).then_some(-n)
            })
            .ok_or("argument must be a memory or percent value"),
        Unit::Octal => {
            i64::from_str_radix(v, 8).map_err(|_| "argument couldn't be parsed as an octal number")
        }
    }
}

/// Checks an integer against a directive's bounds, with Redis's messages.
fn check_bounds(min: i64, max: i64, unit: Unit, v: i64) -> Result<(), String> {
    if unit == Unit::MemoryOrPercent && v < 0 {
        if v < min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -min
            ));
        }
        return Ok(());
    }
    if (min..=max).contains(&v) {
        Ok(())
    } else if unit == Unit::Octal {
        Err(format!(
            "argument must be between {min:o} and {max:o} inclusive"
        ))
    } else {
        Err(format!(
            "argument must be between {min} and {max} inclusive"
        ))
    }
}

/// Prints an integer directive's canonical value.
fn format_int(unit: Unit, v: i64) -> String {
    match unit {
        Unit::MemoryOrPercent if v < 0 => format!("{}%", -v),
        Unit::Octal => format!("{v:o}"),
        _ => v.to_string(),
    }
}

/// Checks and normalizes a directive's value given as words (several for multi-argument
/// directives). `current` is the value now (client-output-buffer-limit only changes the
/// classes it names). The error is Redis's CONFIG SET reason.
fn normalize(dir: &Directive, words: &[&str], current: &str) -> Result<String, String> {
    // A single empty word means "no arguments" (`save ""`, `bind ""`).
    let words = if words == [""] && dir.ty.multi_arg() {
        &[][..]
    } else {
        words
    };
    if !dir.ty.multi_arg() && words.len() != 1 {
        return Err("wrong number of arguments".into());
    }
    match dir.ty {
        Type::Bool => match words[0].to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Type::Int { min, max, unit } => {
            let mut v = parse_int(unit, words[0])?;
            check_bounds(min, max, unit, v)?;
            if dir.name == "hz" {
                v = v.clamp(HZ_RANGE.0, HZ_RANGE.1);
            }
            Ok(format_int(unit, v))
        }
        Type::Enum(names) => {
            let w = words[0].to_ascii_lowercase();
            match names.iter().find(|n| **n == w) {
                // Redis prints the first name with the same value: "relative" reads back as "yes".
                Some(&"relative") if dir.name == "oom-score-adj" => Ok("yes".into()),
                Some(n) => Ok(n.to_string()),
                None => Err(enum_error(names)),
            }
        }
        Type::Flags(names) => normalize_flags(names, words),
        Type::Str => Ok(words[0].to_string()),
        Type::BaseName { what, allow_empty } => {
            let v = words[0];
            if v.is_empty() && !allow_empty {
                Err(format!("{} can't be empty", dir.name))
            } else if v.contains('/') {
                Err(format!("{} can't be a path, just a {what}", dir.name))
            } else {
                Ok(v.to_string())
            }
        }
        Type::Special(s) => normalize_special(s, words, current),
    }
}

/// "argument(s) must be one of the following: a, b, c".
fn enum_error(names: &[&str]) -> String {
    format!(
        "argument(s) must be one of the following: {}",
        names.join(", ")
    )
}

/// A set of flag words (`shutdown-on-sigterm`): printed in table order; the first word is the
/// empty set.
fn normalize_flags(names: &[&str], words: &[&str]) -> Result<String, String> {
    if words.is_empty() {
        return Err(enum_error(names));
    }
    let mut bits = 0u32;
    for w in words {
        let i = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(w))
            .ok_or_else(|| enum_error(names))?;
        if i > 0 {
            bits |= 1 << i;
        }
    }
    // Only shutdown-on-sig* use flags: SAVE (1) and NOSAVE (2) exclude each other.
    if bits & 0b110 == 0b110 {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    if bits == 0 {
        return Ok(names[0].to_string());
    }
    let set: Vec<&str> = (1..names.len())
        .filter(|i| bits & (1 << i) != 0)
        .map(|i| names[i])
        .collect();
    Ok(set.join(" "))
}

fn normalize_special(s: Special, words: &[&str], current: &str) -> Result<String, String> {
    match s {
        Special::Dir => {
            let p = std::fs::canonicalize(words[0]).map_err(|e| os_error(&e))?;
            if !p.is_dir() {
                return Err("Not a directory".into());
            }
            Ok(p.display().to_string())
        }
        Special::Save => {
            const BAD: &str = "Invalid save parameters";
            if !words.len().is_multiple_of(2) {
                return Err(BAD.into());
            }
            let mut out = Vec::with_capacity(words.len());
            for (i, w) in words.iter().enumerate() {
                let v = parse_loose_int(w).ok_or(BAD)?;
                if (i % 2 == 0 && v < 1) || v < 0 {
                    return Err(BAD.into());
                }
                out.push(v.to_string());
            }
            Ok(out.join(" "))
        }
        Special::ClientOutputBufferLimit => normalize_obuf_limits(words, current),
        Special::OomScoreAdjValues => {
            if words.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let vals = words
                .iter()
                .map(|w| parse_loose_int(w).filter(|v| (-2000..=2000).contains(v)))
                .collect::<Option<Vec<i64>>>()
                .ok_or("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")?;
            Ok(join_display(&vals))
        }
        Special::NotifyKeyspaceEvents => {
            if words.len() != 1 {
                return Err("wrong number of arguments".into());
            }
            let flags = keyspace_events_flags(words[0])
                .ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
            Ok(keyspace_events_string(flags))
        }
        Special::StatsKeyPrefixes => {
            if words.len() > MAX_STAT_PREFIXES {
                return Err(format!(
                    "Too many key prefixes (at most {MAX_STAT_PREFIXES})."
                ));
            }
            Ok(words.join(" "))
        }
        Special::Bind => {
            // One address per blank-separated word: empty words (`bind a "" b`) name none,
            // and a quoted word with blanks would make a value that CONFIG GET, CONFIG SET
            // and CONFIG REWRITE cannot give back.
            let addrs: Vec<&str> = words.iter().flat_map(|w| w.split_whitespace()).collect();
            if addrs.len() > MAX_BIND_ADDRESSES {
                return Err("Too many bind addresses specified.".into());
            }
            Ok(addrs.join(" "))
        }
        Special::ReplicaOf => {
            let [host, port] = words else {
                return Err("wrong number of arguments".into());
            };
            if host.eq_ignore_ascii_case("no") && port.eq_ignore_ascii_case("one") {
                return Ok(String::new());
            }
            let port = parse_loose_int(port)
                .filter(|p| (0..=65535).contains(p))
                .ok_or("Invalid master port")?;
            Ok(format!("{host} {port}"))
        }
        Special::LatencyPercentiles => {
            let mut out = Vec::with_capacity(words.len());
            for w in words {
                let p = flowkv_store::num::parse_f64(w.as_bytes())
                    .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(
                        "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                            .into(),
                    );
                }
                out.push(format_percentile(p));
            }
            Ok(out.join(" "))
        }
    }
}

/// An OS error as `strerror` words ("No such file or directory").
fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Values separated by single spaces.
fn join_display<T: std::fmt::Display>(vals: &[T]) -> String {
    vals.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A percentile as Redis prints it: `%f` without trailing zeros ("99.9", "50").
fn format_percentile(p: f64) -> String {
    let s = format!("{p:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Output buffer limit classes in CONFIG GET order, with their defaults.
const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// One class's (hard bytes, soft bytes, soft seconds).
type ObufLimit = (i64, i64, i64);

/// Parses a canonical client-output-buffer-limit value (three classes).
fn parse_obuf_limits(v: &str) -> [ObufLimit; 3] {
    let w: Vec<i64> = v.split(' ').filter_map(|x| x.parse().ok()).collect();
    let mut out = [(0, 0, 0); 3];
    for (i, o) in out.iter_mut().enumerate() {
        if let [h, s, t] = w.get(i * 3..i * 3 + 3).unwrap_or(&[]) {
            *o = (*h, *s, *t);
        }
    }
    out
}

/// The client eviction threshold in bytes for a canonical `maxmemory-clients` value (bytes,
/// or `N%` of `maxmemory`): 0 when off, else at least 128 KB so that a tiny setting cannot
/// cut every client off, as in Redis.
fn client_eviction_limit(value: &str, maxmemory: u64) -> u64 {
    let bytes = match value.strip_suffix('%') {
        Some(pct) => {
            let pct = pct.parse::<u64>().unwrap_or(0);
            (maxmemory as f64 * pct as f64 / 100.0) as u64
        }
        None => value.parse().unwrap_or(0),
    };
    if bytes == 0 {
        0
    } else {
        bytes.max(128 * 1024)
    }
}

/// Applies `<class> <hard> <soft> <seconds>` groups to the current limits; all or nothing.
fn normalize_obuf_limits(words: &[&str], current: &str) -> Result<String, String> {
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut limits = parse_obuf_limits(current);
    for g in words.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_memory(g[1]).ok_or_else(bad)?;
        let soft = parse_memory(g[2]).ok_or_else(bad)?;
        let secs = parse_loose_int(g[3]).filter(|s| *s >= 0).ok_or_else(bad)?;
        limits[class] = (hard, soft, secs);
    }
    Ok(OBUF_CLASSES
        .iter()
        .zip(limits)
        .map(|(c, (h, s, t))| format!("{c} {h} {s} {t}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// notify-keyspace-events flag bits, Redis's values.
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 13;
    pub const NEW: u32 = 1 << 14;
    /// What `A` stands for: every class but key-miss and new.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// Class characters in CONFIG GET order.
    pub(super) const CLASSES: &[(char, u32)] = &[
        ('g', GENERIC),
        ('$', STRING),
        ('l', LIST),
        ('s', SET),
        ('h', HASH),
        ('z', ZSET),
        ('x', EXPIRED),
        ('e', EVICTED),
        ('t', STREAM),
        ('d', MODULE),
        ('n', NEW),
    ];
}

/// Parses notify-keyspace-events characters into flag bits; `None` on an unknown character.
pub fn keyspace_events_flags(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.chars() {
        flags |= match c {
            'A' => notify::ALL,
            'K' => notify::KEYSPACE,
            'E' => notify::KEYEVENT,
            'm' => notify::KEY_MISS,
            _ => notify::CLASSES.iter().find(|(ch, _)| *ch == c)?.1,
        };
    }
    Some(flags)
}

/// The canonical string of notification flags, as CONFIG GET prints it.
fn keyspace_events_string(flags: u32) -> String {
    let mut s = String::new();
    // With `A`, Redis prints no other class (not even `n`).
    if flags & notify::ALL == notify::ALL {
        s.push('A');
    } else {
        s.extend(
            notify::CLASSES
                .iter()
                .filter(|(_, bit)| flags & bit != 0)
                .map(|(c, _)| *c),
        );
    }
    for (bit, c) in [
        (notify::KEYSPACE, 'K'),
        (notify::KEYEVENT, 'E'),
        (notify::KEY_MISS, 'm'),
    ] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Who is changing the configuration: protected directives (`dir`, `dbfilename`) need
/// `enable-protected-configs yes`, or `local` and a client on a loopback address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The server itself or a test: no protection applies.
    Internal,
    /// A client; `local` if it connected over loopback.
    Client { local: bool },
}

/// One staged CONFIG SET change.
struct Staged {
    dir: &'static Directive,
    value: String,
}

impl Config {
    /// The defaults (`dir` is the current directory).
    pub fn new() -> Config {
        let mut values: BTreeMap<&'static str, String> = DIRECTIVES
            .iter()
            .map(|d| (d.name, d.default.to_string()))
            .collect();
        if let Ok(cwd) = std::env::current_dir() {
            values.insert("dir", cwd.display().to_string());
        }
        let c = Config {
            values: RwLock::new(values),
            file: None,
            hot: Hot::default(),
            users: Vec::new(),
            renames: Vec::new(),
            tls: crate::tls::Tls::default(),
        };
        c.refresh_hot();
        c
    }

    /// Builds the configuration from command-line arguments as redis-server takes them: an
    /// optional config file path first, then `--directive value...` pairs that override it.
    /// Unknown directives and bad values are errors (the binary prints them and exits).
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut c = Config::new();
        let mut rest = args;
        let mut text = String::new();
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                text = std::fs::read_to_string(first)
                    .map_err(|e| format!("Fatal error, can't open config file '{first}': {e}"))?;
                let abs = std::fs::canonicalize(first).unwrap_or_else(|_| PathBuf::from(first));
                c.file = Some(abs);
                rest = &args[1..];
                // The command line starts a line of its own: a leading value never continues
                // the file's last line (redis-server puts the file and the options apart).
                text.push('\n');
            }
        }
        // `--name v1 v2 --other x` → lines "name v1 v2", "other x", appended to the file's
        // text as redis-server does (so a second `save` line adds to the file's).
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

    /// Applies redis.conf text: one directive per line, `#` comments, quoted arguments,
    /// `include <file>`. Within one text, `save` lines add up (the first replaces the default)
    /// and `client-output-buffer-limit` lines each set their class.
    pub fn load_text(&mut self, text: &str) -> Result<(), String> {
        let mut save_seen = false;
        self.load_lines(text, 0, &mut save_seen)?;
        self.refresh_hot();
        Ok(())
    }

    fn load_lines(&mut self, text: &str, depth: usize, save_seen: &mut bool) -> Result<(), String> {
        for (lineno, raw) in text.lines().enumerate() {
            let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fatal = |why: &str| {
                format!(
                    "\n*** FATAL CONFIG FILE ERROR ***\nReading the configuration file, at line {}\n>>> '{line}'\n{why}",
                    lineno + 1
                )
            };
            let words =
                split_line(line).ok_or_else(|| fatal("Unbalanced quotes in configuration line"))?;
            let Some((name, args)) = words.split_first() else {
                continue;
            };
            let Some(dir) = lookup(name) else {
                if DEPRECATED.iter().any(|n| n.eq_ignore_ascii_case(name)) && args.len() == 1 {
                    continue;
                }
                if name.eq_ignore_ascii_case("user") && !args.is_empty() {
                    self.users.push(args.to_vec());
                    continue;
                }
                if name.eq_ignore_ascii_case("rename-command") && args.len() == 2 {
                    self.renames.push((args[0].clone(), args[1].clone()));
                    continue;
                }
                if name.eq_ignore_ascii_case("include") && args.len() == 1 {
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(fatal("Too many nested include directives"));
                    }
                    let inc = std::fs::read_to_string(&args[0]).map_err(|e| {
                        fatal(&format!(
                            "Fatal error, can't open config file '{}': {e}",
                            args[0]
                        ))
                    })?;
                    self.load_lines(&inc, depth + 1, save_seen)?;
                    continue;
                }
                return Err(fatal("Bad directive or wrong number of arguments"));
            };
            // A multi-argument directive given as one word is split on spaces
            // (`--save "3600 1 300 100"`).
            let split;
            let args: Vec<&str> = if dir.ty.multi_arg() && args.len() == 1 && !args[0].is_empty() {
                split = split_line(&args[0]).ok_or_else(|| fatal("Unbalanced quotes"))?;
                split.iter().map(String::as_str).collect()
            } else {
                args.iter().map(String::as_str).collect()
            };
            let values = self.values.get_mut();
            let current = values.get(dir.name).cloned().unwrap_or_default();
            let mut v = normalize(dir, &args, &current).map_err(|e| fatal(&e))?;
            if matches!(dir.ty, Type::Special(Special::Save)) {
                if *save_seen && !current.is_empty() && !v.is_empty() {
                    v = format!("{current} {v}");
                }
                *save_seen = true;
            }
            values.insert(dir.name, v);
        }
        Ok(())
    }

    fn refresh_hot(&self) {
        let h = &self.hot;
        h.busy_reply_threshold
            .store(self.get_u64("busy-reply-threshold"), Relaxed);
        h.busy_poll_us.store(self.get_u64("busy-poll-us"), Relaxed);
        h.proto_max_bulk_len
            .store(self.get_u64("proto-max-bulk-len"), Relaxed);
        h.client_query_buffer_limit
            .store(self.get_u64("client-query-buffer-limit"), Relaxed);
        h.maxclients.store(self.get_u64("maxclients"), Relaxed);
        h.timeout_secs.store(self.get_u64("timeout"), Relaxed);
        h.hz.store(self.get_u64("hz"), Relaxed);
        h.hash_max_listpack_entries
            .store(self.get_u64("hash-max-listpack-entries"), Relaxed);
        h.hash_max_listpack_value
            .store(self.get_u64("hash-max-listpack-value"), Relaxed);
        h.set_max_intset_entries
            .store(self.get_u64("set-max-intset-entries"), Relaxed);
        h.zset_max_listpack_entries
            .store(self.get_u64("zset-max-listpack-entries"), Relaxed);
        h.zset_max_listpack_value
            .store(self.get_u64("zset-max-listpack-value"), Relaxed);
        h.stream_node_max_bytes
            .store(self.get_u64("stream-node-max-bytes"), Relaxed);
        h.stream_node_max_entries
            .store(self.get_u64("stream-node-max-entries"), Relaxed);
        let list = self
            .get("list-max-listpack-size")
            .and_then(|v| v.parse().ok());
        h.list_max_listpack_size.store(list.unwrap_or(-2), Relaxed);
        let slower = self
            .get("slowlog-log-slower-than")
            .and_then(|v| v.parse().ok());
        h.slowlog_slower_than.store(slower.unwrap_or(-1), Relaxed);
        h.slowlog_max_len
            .store(self.get_u64("slowlog-max-len"), Relaxed);
        h.latency_monitor_threshold
            .store(self.get_u64("latency-monitor-threshold"), Relaxed);
        h.latency_tracking
            .store(self.get_bool("latency-tracking"), Relaxed);
        h.min_replicas_to_write
            .store(self.get_u64("min-replicas-to-write"), Relaxed);
        h.min_replicas_max_lag
            .store(self.get_u64("min-replicas-max-lag"), Relaxed);
        h.replica_read_only
            .store(self.get_bool("replica-read-only"), Relaxed);
        h.replica_serve_stale_data
            .store(self.get_bool("replica-serve-stale-data"), Relaxed);
        let obuf = parse_obuf_limits(&self.get("client-output-buffer-limit").unwrap_or_default());
        for (class, (hard, soft, secs)) in h.obuf_limits.iter().zip(obuf) {
            for (slot, v) in class.iter().zip([hard, soft, secs]) {
                slot.store(v.max(0) as u64, Relaxed);
            }
        }
        let clients = self.get("maxmemory-clients").unwrap_or_default();
        h.maxmemory_clients.store(
            client_eviction_limit(&clients, self.get_u64("maxmemory")),
            Relaxed,
        );
        h.tcp_keepalive
            .store(self.get_u64("tcp-keepalive"), Relaxed);
    }

    /// The canonical value of a directive (by name or alias).
    pub fn get(&self, name: &str) -> Option<String> {
        let dir = lookup(name)?;
        self.values.read().get(dir.name).cloned()
    }

    /// A numeric directive (0 if unset or not numeric: only for known-numeric names).
    /// The `user` lines of the configuration (name first, then its rules).
    pub fn user_lines(&self) -> Vec<Vec<String>> {
        self.users.clone()
    }

    /// The `rename-command` lines of the configuration.
    pub fn renames(&self) -> &[(String, String)] {
        &self.renames
    }

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

    /// Whether an `enable-*` directive (`yes` / `no` / `local`) allows an action for a caller:
    /// `enable-debug-command`, `enable-module-command`, `enable-protected-configs`.
    pub fn allows(&self, directive: &str, caller: Caller) -> bool {
        match caller {
            Caller::Internal => true,
            Caller::Client { local } => match self.get(directive).as_deref() {
                Some("yes") => true,
                Some("local") => local,
                _ => false,
            },
        }
    }

    /// Sets several directives atomically, as the server itself (no protected-config check).
    /// Errors are CONFIG SET's full reply text.
    pub fn set_many(&self, pairs: &[(String, String)]) -> Result<(), String> {
        self.set_as(pairs, Caller::Internal)
    }

    /// CONFIG SET a 1 b 2: every pair is checked first and none changes if one is invalid.
    /// Errors are Redis's exact reply lines, with its precedence: an unknown name wins over
    /// everything, then the first immutable/protected/duplicate name, then the first bad value.
    pub fn set_as(&self, pairs: &[(String, String)], caller: Caller) -> Result<(), String> {
        let mut unknown: Option<&str> = None;
        let mut refused: Option<(&str, &str)> = None;
        let mut found = Vec::with_capacity(pairs.len());
        for (i, (name, value)) in pairs.iter().enumerate() {
            let Some((dir, matched)) = lookup_named(name) else {
                unknown.get_or_insert(name.as_str());
                continue;
            };
            if refused.is_none() {
                if !dir.mutable {
                    refused = Some((name, "can't set immutable config"));
                } else if dir.protected && !self.allows("enable-protected-configs", caller) {
                    refused = Some((name, "can't set protected config"));
                } else if pairs[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    refused = Some((name, "duplicate parameter"));
                }
            }
            found.push((dir, matched, value.as_str()));
        }
        if let Some(name) = unknown {
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        }
        if let Some((name, why)) = refused {
            return Err(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ));
        }
        // Validate against the current values under the write lock, then apply: concurrent
        // CONFIG SETs never interleave.
        let tls_arg = found
            .iter()
            .find(|(dir, _, _)| crate::tls::is_tls_directive(dir.name))
            .map(|&(_, matched, _)| matched);
        let mut values = self.values.write();
        let mut staged: Vec<Staged> = Vec::with_capacity(found.len());
        for (dir, matched, value) in found {
            let words: Vec<&str> = if dir.ty.multi_arg() {
                if value.is_empty() {
                    Vec::new()
                } else {
                    value.split(' ').collect()
                }
            } else {
                vec![value]
            };
            let current = staged
                .iter()
                .rev()
                .find(|s| s.dir.name == dir.name)
                .map(|s| s.value.clone())
                .or_else(|| values.get(dir.name).cloned())
                .unwrap_or_default();
            let v = normalize(dir, &words, &current)
                .and_then(|v| match dir.fixed {
                    Some(why) if v != current => Err(why.to_string()),
                    _ => Ok(v),
                })
                .map_err(|e| {
                    format!(
                        "ERR CONFIG SET failed (possibly related to argument '{matched}') - {e}"
                    )
                })?;
            staged.push(Staged { dir, value: v });
        }
        // A TLS setting takes effect only if the TLS configuration rebuilds with it (Redis's
        // applyTlsCfg): otherwise nothing changes.
        if let Some(name) = tls_arg.filter(|_| values.get("tls-port").is_some_and(|p| p != "0")) {
            let get = |n: &str| match staged.iter().rev().find(|s| s.dir.name == n) {
                Some(s) => s.value.clone(),
                None => values.get(n).cloned().unwrap_or_default(),
            };
            self.tls.configure(&get).map_err(|e| {
                eprintln!("{e}");
                format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - Unable to \
                     update TLS configuration. Check server logs."
                )
            })?;
        }
        for s in staged {
            values.insert(s.dir.name, s.value);
        }
        drop(values);
        self.refresh_hot();
        Ok(())
    }

    /// (name, value) pairs whose name (canonical or alias) matches a glob pattern, as CONFIG
    /// GET matches them; hidden directives are left out.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(String, String)> {
        let values = self.values.read();
        let mut out = Vec::new();
        for dir in DIRECTIVES.iter().filter(|d| !d.hidden) {
            for name in std::iter::once(&dir.name).chain(dir.aliases) {
                if glob_match(pattern, name.as_bytes(), true) {
                    out.push((
                        name.to_string(),
                        values.get(dir.name).cloned().unwrap_or_default(),
                    ));
                }
            }
        }
        out
    }

    /// CONFIG REWRITE: rewrites the start-up config file Redis-style. Comments and lines the
    /// server does not manage stay; each directive replaces its old lines in place (extra old
    /// lines become blank); directives not at their default and not in the file are appended
    /// under "# Generated by CONFIG REWRITE". The file is replaced atomically. The error is
    /// the OS reason.
    pub fn rewrite(&self) -> Result<(), String> {
        let path = self
            .file
            .as_deref()
            .ok_or("The server is running without a config file")?;
        let old = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(os_error(&e)),
        };
        let mut state = RewriteState::read(&old);
        let values = self.values.read().clone();
        for dir in DIRECTIVES {
            let v = values.get(dir.name).map(String::as_str).unwrap_or("");
            for (line, force) in rewrite_lines(dir, v) {
                state.rewrite_line(dir.name, line, force);
            }
            state.rewritten.insert(dir.name.to_string());
        }
        write_atomically(path, &state.content()).map_err(|e| os_error(&e))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// The lines one directive contributes to a rewritten file, each with whether it must be
/// written even if the file did not mention the directive (value differs from the default).
fn rewrite_lines(dir: &Directive, v: &str) -> Vec<(String, bool)> {
    let name = dir.name;
    let changed = v != dir.default;
    let plain = |val: &str| vec![(format!("{name} {val}"), changed)];
    match dir.ty {
        Type::Bool | Type::Enum(_) | Type::Flags(_) => plain(v),
        Type::Int { unit, .. } => match unit {
            Unit::Memory | Unit::MemoryOrPercent if !v.ends_with('%') => {
                plain(&format_memory(v.parse().unwrap_or(0)))
            }
            _ => plain(v),
        },
        Type::Str | Type::BaseName { .. } => {
            if v.is_empty() && dir.default.is_empty() {
                Vec::new()
            } else {
                vec![(format!("{name} {}", repr(v)), changed)]
            }
        }
        Type::Special(s) => match s {
            Special::Dir => vec![(format!("{name} {}", repr(v)), true)],
            Special::Save if v.is_empty() => vec![("save \"\"".to_string(), true)],
            Special::Save => v
                .split(' ')
                .collect::<Vec<_>>()
                .chunks(2)
                .map(|p| (format!("save {}", p.join(" ")), true))
                .collect(),
            Special::ClientOutputBufferLimit => {
                let defaults = parse_obuf_limits(dir.default);
                parse_obuf_limits(v)
                    .iter()
                    .zip(defaults)
                    .zip(["normal", "replica", "pubsub"])
                    .map(|((l, def), class)| {
                        let line = format!(
                            "{name} {class} {} {} {}",
                            format_memory(l.0),
                            format_memory(l.1),
                            l.2
                        );
                        (line, *l != def)
                    })
                    .collect()
            }
            Special::NotifyKeyspaceEvents => {
                vec![(format!("{name} {}", repr(v)), !v.is_empty())]
            }
            Special::Bind | Special::LatencyPercentiles if v.is_empty() => {
                vec![(format!("{name} \"\""), changed)]
            }
            Special::Bind if !changed => Vec::new(),
            Special::ReplicaOf if v.is_empty() => Vec::new(),
            Special::ReplicaOf => {
                // The host is one word, whatever it holds; the port is last.
                let (host, port) = v.rsplit_once(' ').unwrap_or((v, ""));
                vec![(format!("{name} {} {port}", quote_arg(host)), true)]
            }
            Special::StatsKeyPrefixes if v.is_empty() => Vec::new(),
            Special::StatsKeyPrefixes => vec![(format!("{name} {}", repr(v)), changed)],
            Special::Bind => {
                let addrs: Vec<String> = v.split(' ').map(quote_arg).collect();
                plain(&addrs.join(" "))
            }
            Special::OomScoreAdjValues | Special::LatencyPercentiles => plain(v),
        },
    }
}

/// Bytes in redis.conf style: `1gb`, `64mb`, `16kb` when exact, else plain bytes.
fn format_memory(bytes: i64) -> String {
    const KB: i64 = 1024;
    for (unit, name) in [(KB * KB * KB, "gb"), (KB * KB, "mb"), (KB, "kb")] {
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{name}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// A string quoted so that [`split_line`] reads it back exactly (Redis's `sdscatrepr`).
fn repr(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// The old file's lines and which lines each directive used, being rewritten.
struct RewriteState {
    lines: Vec<String>,
    /// Canonical directive (or file-only word) → its old line numbers, first first.
    option_lines: HashMap<String, VecDeque<usize>>,
    /// Directives handled by the rewrite: their unused old lines are blanked.
    rewritten: HashSet<String>,
    needs_signature: bool,
}

impl RewriteState {
    fn read(old: &str) -> RewriteState {
        let mut st = RewriteState {
            lines: Vec::new(),
            option_lines: HashMap::new(),
            rewritten: HashSet::new(),
            needs_signature: true,
        };
        for raw in old.lines() {
            let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() || line.starts_with('#') {
                if line == REWRITE_SIGNATURE {
                    st.needs_signature = false;
                }
                st.lines.push(line.to_string());
                continue;
            }
            let first = split_line(line).and_then(|w| w.into_iter().next());
            let option = first.and_then(|w| match lookup(&w) {
                Some(dir) => Some(dir.name.to_string()),
                None => FILE_ONLY
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(&w))
                    .then(|| w.to_ascii_lowercase()),
            });
            match option {
                Some(o) => {
                    st.option_lines
                        .entry(o)
                        .or_default()
                        .push_back(st.lines.len());
                    st.lines.push(line.to_string());
                }
                // Unparsable or unknown: kept, commented out, as Redis does.
                None => st.lines.push(format!("# ??? {line}")),
            }
        }
        st
    }

    /// Puts `line` for `option` in place of its next old line, or appends it if `force`.
    fn rewrite_line(&mut self, option: &str, line: String, force: bool) {
        if let Some(n) = self
            .option_lines
            .get_mut(option)
            .and_then(|l| l.pop_front())
        {
            self.lines[n] = line;
        } else if force {
            if self.needs_signature {
                self.lines.push(REWRITE_SIGNATURE.to_string());
                self.needs_signature = false;
            }
            self.lines.push(line);
        }
    }

    /// The new file: old lines the rewrite did not reuse are blanked, runs of empty lines
    /// become one.
    fn content(mut self) -> String {
        for (option, left) in &self.option_lines {
            if self.rewritten.contains(option) {
                for &n in left {
                    self.lines[n].clear();
                }
            }
        }
        let mut out = String::new();
        let mut was_empty = false;
        for l in &self.lines {
            if l.is_empty() {
                if was_empty {
                    continue;
                }
                was_empty = true;
            } else {
                was_empty = false;
            }
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// Writes `content` to a temporary file next to `path`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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

/// Splits a config line into words with redis.conf's quoting (double quotes with escapes
/// including `\xHH`, single quotes). `None` on unbalanced quotes.
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
        // Bytes: `\xHH` escapes give bytes, as in Redis (a UTF-8 character may be escaped
        // byte by byte, as CONFIG REWRITE writes it); the word is UTF-8 again at the end.
        let mut w = Vec::new();
        let mut buf = [0u8; 4];
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' if first == '"' => match chars.next()? {
                        'n' => w.push(b'\n'),
                        'r' => w.push(b'\r'),
                        't' => w.push(b'\t'),
                        'a' => w.push(0x07),
                        'b' => w.push(0x08),
                        'x' => {
                            let hex: String = chars.clone().take(2).collect();
                            match u8::from_str_radix(&hex, 16) {
                                Ok(b) if hex.len() == 2 => {
                                    chars.next();
                                    chars.next();
                                    w.push(b);
                                }
                                _ => w.push(b'x'),
                            }
                        }
                        c => w.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
                    },
                    '\\' if chars.peek() == Some(&'\'') => {
                        chars.next();
                        w.push(b'\'');
                    }
                    c if c == first => break,
                    c => w.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
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
                w.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                chars.next();
            }
        }
        words.push(String::from_utf8_lossy(&w).into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(c: &Config, pairs: &[(&str, &str)]) -> Result<(), String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        c.set_as(&pairs, Caller::Client { local: true })
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("256mb"), Some(256 * 1024 * 1024));
        assert_eq!(parse_memory("1GB"), Some(1 << 30));
        assert_eq!(parse_memory("10k"), Some(10_000));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("12xb"), None);
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1.5gb"), None);
        assert_eq!(format_memory(1 << 30), "1gb");
        assert_eq!(format_memory(3000), "3000");
    }

    #[test]
    fn names_are_unique() {
        let mut seen = HashSet::new();
        for d in DIRECTIVES {
            for n in std::iter::once(&d.name).chain(d.aliases) {
                assert!(seen.insert(*n), "duplicate directive {n}");
            }
            let words: Vec<&str> = if d.ty.multi_arg() {
                d.default.split(' ').filter(|w| !w.is_empty()).collect()
            } else {
                vec![d.default]
            };
            // `dir` depends on the machine; an empty `replicaof` means "no master".
            if !matches!(d.ty, Type::Special(Special::Dir | Special::ReplicaOf)) {
                assert_eq!(
                    normalize(d, &words, d.default).as_deref(),
                    Ok(d.default),
                    "default of {}",
                    d.name
                );
            }
        }
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
        assert!(c
            .load_text("maxmemory 1 2")
            .unwrap_err()
            .contains("wrong number of arguments"));
        c.load_text("save 100 1\nsave 200 2\nlist-max-ziplist-entries 5")
            .unwrap();
        assert_eq!(c.get("save").unwrap(), "100 1 200 2");
        let c = Config::from_args(&[
            "--port".into(),
            "7001".into(),
            "--save".into(),
            "".into(),
            "--client-output-buffer-limit".into(),
            "pubsub 1mb 2mb 3".into(),
            "--replicaof".into(),
            "localhost".into(),
            "6380".into(),
        ])
        .unwrap();
        assert_eq!(c.get("port").unwrap(), "7001");
        assert_eq!(c.get("save").unwrap(), "");
        assert_eq!(
            c.get("client-output-buffer-limit").unwrap(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2097152 3"
        );
        assert_eq!(c.get("slaveof").unwrap(), "localhost 6380");
    }

    #[test]
    fn set_is_all_or_nothing() {
        let c = Config::new();
        let err = set(&c, &[("timeout", "5"), ("hz", "x")]).unwrap_err();
        assert_eq!(err, "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer");
        assert_eq!(c.get("timeout").unwrap(), "0");
        set(&c, &[("timeout", "5")]).unwrap();
        assert_eq!(c.hot.timeout_secs.load(Relaxed), 5);
    }

    #[test]
    fn set_errors_like_redis() {
        let c = Config::new();
        let e = |p: &[(&str, &str)]| set(&c, p).unwrap_err();
        assert_eq!(
            e(&[("daemonize", "yes"), ("foo", "2")]),
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
        assert_eq!(
            e(&[("daemonize", "yes")]),
            "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"
        );
        assert_eq!(
            e(&[("maxmemory", "1"), ("MAXMEMORY", "2")]),
            "ERR CONFIG SET failed (possibly related to argument 'MAXMEMORY') - duplicate parameter"
        );
        assert_eq!(
            e(&[("MAXMEMORY", "x")]),
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
        );
        assert!(e(&[("maxmemory-clients", "101%")]).ends_with("less or equal to 100"));
        assert!(e(&[("save", "1 2 3")]).ends_with("Invalid save parameters"));
        assert!(e(&[("shutdown-on-sigint", "save nosave")]).ends_with("simultaneously"));
        assert!(e(&[("notify-keyspace-events", "Q")]).ends_with("'Ag$lshzxeKEtmdn'."));
        assert!(e(&[("maxmemory-policy", "x")])
            .ends_with("one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"));
        set(&c, &[("port", "6379"), ("threads", "0")]).unwrap();
        assert!(e(&[("port", "7000")]).starts_with(
            "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port"
        ));
        let outside = c.set_as(
            &[("dir".into(), "/tmp".into())],
            Caller::Client { local: true },
        );
        assert!(outside.unwrap_err().ends_with("can't set protected config"));
    }

    #[test]
    fn canonical_values() {
        let c = Config::new();
        set(&c, &[("notify-keyspace-events", "KEA")]).unwrap();
        assert_eq!(c.get("notify-keyspace-events").unwrap(), "AKE");
        set(&c, &[("notify-keyspace-events", "g$lshzxetdn")]).unwrap();
        assert_eq!(c.get("notify-keyspace-events").unwrap(), "A");
        set(&c, &[("client-output-buffer-limit", "replica 1mb 2mb 3")]).unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit").unwrap(),
            "normal 0 0 0 slave 1048576 2097152 3 pubsub 33554432 8388608 60"
        );
        set(&c, &[("shutdown-on-sigint", "now save")]).unwrap();
        assert_eq!(c.get("shutdown-on-sigint").unwrap(), "save now");
        set(&c, &[("oom-score-adj", "relative"), ("hz", "1000")]).unwrap();
        assert_eq!(c.get("oom-score-adj").unwrap(), "yes");
        assert_eq!(c.get("hz").unwrap(), "500");
        set(&c, &[("maxmemory-clients", "10%"), ("maxmemory", "kb")]).unwrap();
        assert_eq!(c.get("maxmemory-clients").unwrap(), "10%");
        set(&c, &[("latency-tracking-info-percentiles", "50.5 99 100")]).unwrap();
        assert_eq!(
            c.get("latency-tracking-info-percentiles").unwrap(),
            "50.5 99 100"
        );
        set(&c, &[("save", "")]).unwrap();
        assert_eq!(c.get("save").unwrap(), "");
    }

    #[test]
    fn rewrite_keeps_comments_and_updates_in_place() {
        let dir = std::env::temp_dir().join(format!("flowkv-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.conf");
        std::fs::write(
            &path,
            "# top\nport 7000\nrename-command FOO BAR\nmaxmemory 1mb\nsave 10 1\nsave 20 2\n",
        )
        .unwrap();
        let mut c = Config::new();
        c.load_text("port 7000\nmaxmemory 1mb\nsave 10 1\nsave 20 2")
            .unwrap();
        c.file = Some(path.clone());
        set(&c, &[("maxmemory", "2gb"), ("save", "30 3"), ("hz", "20")]).unwrap();
        c.rewrite().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let d = c.get("dir").unwrap();
        assert_eq!(
            text,
            format!(
                "# top\nport 7000\nrename-command FOO BAR\nmaxmemory 2gb\nsave 30 3\n\n{REWRITE_SIGNATURE}\nhz 20\ndir \"{d}\"\n"
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
