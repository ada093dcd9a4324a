//! The commands a standalone redis-server 7.0 has for Redis Cluster and modules, and
//! LOLWUT, end to end: CLUSTER (every subcommand), READONLY, READWRITE and ASKING refuse as
//! a non-cluster Redis does; RESTORE-ASKING restores like RESTORE; MODULE lists no modules
//! and refuses LOAD / LOADEX / UNLOAD unless `enable-module-command` allows them; and the
//! command table names every command redis-server 7.0.15 lists.

mod common;

use std::collections::BTreeSet;

use common::{err, q, Server};
use redis::Value;

/// What a standalone Redis answers to every cluster command.
const DISABLED: &str = "ERR This instance has cluster support disabled";
const MODULE_REFUSED: &str = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
const LOAD_FAILED: &str = "ERR Error loading the extension. Please check the server logs.";
const NO_SUCH_MODULE: &str = "ERR Error unloading module: no such module with that name";

/// `COMMAND LIST` of redis-server 7.0.15 (standalone, no modules loaded).
const REDIS_7_0_15_COMMANDS: &str = "
acl acl|cat acl|deluser acl|dryrun acl|genpass acl|getuser acl|help acl|list acl|load
acl|log acl|save acl|setuser acl|users acl|whoami append asking auth bgrewriteaof bgsave
bitcount bitfield bitfield_ro bitop bitpos blmove blmpop blpop brpop brpoplpush bzmpop
bzpopmax bzpopmin client client|caching client|getname client|getredir client|help
client|id client|info client|kill client|list client|no-evict client|pause client|reply
client|setname client|tracking client|trackinginfo client|unblock client|unpause cluster
cluster|addslots cluster|addslotsrange cluster|bumpepoch cluster|count-failure-reports
cluster|countkeysinslot cluster|delslots cluster|delslotsrange cluster|failover
cluster|flushslots cluster|forget cluster|getkeysinslot cluster|help cluster|info
cluster|keyslot cluster|links cluster|meet cluster|myid cluster|nodes cluster|replicas
cluster|replicate cluster|reset cluster|saveconfig cluster|set-config-epoch cluster|setslot
cluster|shards cluster|slaves cluster|slots command command|count command|docs
command|getkeys command|getkeysandflags command|help command|info command|list config
config|get config|help config|resetstat config|rewrite config|set copy dbsize debug decr
decrby del discard dump echo eval eval_ro evalsha evalsha_ro exec exists expire expireat
expiretime failover fcall fcall_ro flushall flushdb function function|delete function|dump
function|flush function|help function|kill function|list function|load function|restore
function|stats geoadd geodist geohash geopos georadius georadius_ro georadiusbymember
georadiusbymember_ro geosearch geosearchstore get getbit getdel getex getrange getset hdel
hello hexists hget hgetall hincrby hincrbyfloat hkeys hlen hmget hmset hrandfield hscan
hset hsetnx hstrlen hvals incr incrby incrbyfloat info keys lastsave latency latency|doctor
latency|graph latency|help latency|histogram latency|history latency|latest latency|reset
lcs lindex linsert llen lmove lmpop lolwut lpop lpos lpush lpushx lrange lrem lset ltrim
memory memory|doctor memory|help memory|malloc-stats memory|purge memory|stats memory|usage
mget migrate module module|help module|list module|load module|loadex module|unload monitor
move mset msetnx multi object object|encoding object|freq object|help object|idletime
object|refcount persist pexpire pexpireat pexpiretime pfadd pfcount pfdebug pfmerge
pfselftest ping psetex psubscribe psync pttl publish pubsub pubsub|channels pubsub|help
pubsub|numpat pubsub|numsub pubsub|shardchannels pubsub|shardnumsub punsubscribe quit
randomkey readonly readwrite rename renamenx replconf replicaof reset restore
restore-asking role rpop rpoplpush rpush rpushx sadd save scan scard script script|debug
script|exists script|flush script|help script|kill script|load sdiff sdiffstore select set
setbit setex setnx setrange shutdown sinter sintercard sinterstore sismember slaveof
slowlog slowlog|get slowlog|help slowlog|len slowlog|reset smembers smismember smove sort
sort_ro spop spublish srandmember srem sscan ssubscribe strlen subscribe substr sunion
sunionstore sunsubscribe swapdb sync time touch ttl type unlink unsubscribe unwatch wait
watch xack xadd xautoclaim xclaim xdel xgroup xgroup|create xgroup|createconsumer
xgroup|delconsumer xgroup|destroy xgroup|help xgroup|setid xinfo xinfo|consumers
xinfo|groups xinfo|help xinfo|stream xlen xpending xrange xread xreadgroup xrevrange xsetid
xtrim zadd zcard zcount zdiff zdiffstore zincrby zinter zintercard zinterstore zlexcount
zmpop zmscore zpopmax zpopmin zrandmember zrange zrangebylex zrangebyscore zrangestore
zrank zrem zremrangebylex zremrangebyrank zremrangebyscore zrevrange zrevrangebylex
zrevrangebyscore zrevrank zscan zscore zunion zunionstore
";

/// Redis 7.0 commands flowkv does not have yet, and why. Keep it short.
const KNOWN_GAPS: &[(&str, &str)] = &[(
    "failover",
    "coordinated primary/replica switch-over: needs the replication side",
)];

/// A valid-arity call of every CLUSTER subcommand.
const CLUSTER_CALLS: &[&[&str]] = &[
    &["addslots", "1"],
    &["addslotsrange", "1", "2"],
    &["bumpepoch"],
    &["count-failure-reports", "id"],
    &["countkeysinslot", "1"],
    &["delslots", "1"],
    &["delslotsrange", "1", "2"],
    &["failover"],
    &["flushslots"],
    &["forget", "id"],
    &["getkeysinslot", "1", "10"],
    &["help"],
    &["info"],
    &["keyslot", "k"],
    &["links"],
    &["meet", "127.0.0.1", "7000"],
    &["myid"],
    &["nodes"],
    &["replicas", "id"],
    &["replicate", "id"],
    &["reset", "hard"],
    &["saveconfig"],
    &["set-config-epoch", "1"],
    &["setslot", "1", "stable"],
    &["shards"],
    &["slaves", "id"],
    &["slots"],
];

fn names(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|x| match x {
                Value::BulkString(b) => String::from_utf8(b).unwrap(),
                Value::SimpleString(s) => s,
                other => panic!("not text: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn cluster_commands_refused_as_in_standalone_redis() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    for call in CLUSTER_CALLS {
        let mut line = vec!["CLUSTER"];
        line.extend_from_slice(call);
        assert_eq!(err(&mut con, &line), DISABLED, "{line:?}");
    }
    let subs = names(
        q(
            &mut con,
            &["COMMAND", "LIST", "FILTERBY", "PATTERN", "cluster|*"],
        )
        .unwrap(),
    );
    // Redis 7.0 has 27 CLUSTER subcommands, and each has a call above.
    assert_eq!(subs.len(), 27, "{subs:?}");
    assert_eq!(subs.len(), CLUSTER_CALLS.len());
    for cmd in ["READONLY", "READWRITE", "ASKING"] {
        assert_eq!(err(&mut con, &[cmd]), DISABLED, "{cmd}");
    }
    assert_eq!(
        err(&mut con, &["CLUSTER", "nosuch"]),
        "ERR unknown subcommand 'nosuch'. Try CLUSTER HELP."
    );
    assert_eq!(
        err(&mut con, &["CLUSTER"]),
        "ERR wrong number of arguments for 'cluster' command"
    );
    assert_eq!(
        err(&mut con, &["CLUSTER", "KEYSLOT"]),
        "ERR wrong number of arguments for 'cluster|keyslot' command"
    );
    assert_eq!(
        err(&mut con, &["READONLY", "x"]),
        "ERR wrong number of arguments for 'readonly' command"
    );
    // The connection is unaffected by the refusals.
    assert_eq!(q(&mut con, &["SET", "k", "v"]), Ok(Value::Okay));
}

#[test]
fn cluster_reset_is_noscript() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let e = err(
        &mut con,
        &["EVAL", "return redis.call('cluster','reset','hard')", "0"],
    );
    assert!(
        e.starts_with("ERR This Redis command is not allowed from script"),
        "{e}"
    );
    // Subcommands without NOSCRIPT reach the handler, which refuses as usual.
    let e = err(
        &mut con,
        &["EVAL", "return redis.call('cluster','info')", "0"],
    );
    assert!(e.starts_with(DISABLED), "{e}");
    let e = err(
        &mut con,
        &["EVAL", "return redis.call('module','list')", "0"],
    );
    assert!(
        e.starts_with("ERR This Redis command is not allowed from script"),
        "{e}"
    );
}

#[test]
fn restore_asking_restores_like_restore() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    assert_eq!(q(&mut con, &["RPUSH", "src", "a", "b"]), Ok(Value::Int(2)));
    let Ok(Value::BulkString(payload)) = q(&mut con, &["DUMP", "src"]) else {
        panic!("DUMP");
    };
    let line: Vec<&[u8]> = vec![b"RESTORE-ASKING", b"dst", b"0", &payload];
    assert_eq!(q(&mut con, &line), Ok(Value::Okay));
    assert_eq!(
        names(q(&mut con, &["LRANGE", "dst", "0", "-1"]).unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        common::err_line(q(&mut con, &line)),
        "BUSYKEY Target key name already exists."
    );
}

#[test]
fn module_list_empty_and_loading_refused_by_default() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    assert_eq!(q(&mut con, &["MODULE", "LIST"]), Ok(Value::Array(vec![])));
    for line in [
        &["MODULE", "LOAD", "/nosuch.so"][..],
        &["MODULE", "LOADEX", "/nosuch.so", "CONFIG", "a", "b"],
        &["MODULE", "UNLOAD", "bf"],
    ] {
        assert_eq!(err(&mut con, line), MODULE_REFUSED, "{line:?}");
    }
    let help = names(q(&mut con, &["MODULE", "HELP"]).unwrap());
    assert_eq!(
        help[0],
        "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert_eq!(help.last().unwrap(), "    Prints this help.");
    assert_eq!(
        err(&mut con, &["MODULE", "LOAD"]),
        "ERR wrong number of arguments for 'module|load' command"
    );
    assert_eq!(
        err(&mut con, &["MODULE", "nosuch"]),
        "ERR unknown subcommand 'nosuch'. Try MODULE HELP."
    );
}

#[test]
fn module_commands_with_enable_module_command() {
    for setting in ["yes", "local"] {
        let srv = Server::start(&["--enable-module-command", setting]);
        let mut con = srv.client();
        assert_eq!(
            err(&mut con, &["MODULE", "LOAD", "/nosuch.so", "arg"]),
            LOAD_FAILED
        );
        for line in [
            &["MODULE", "LOADEX", "/nosuch.so"][..],
            &[
                "MODULE",
                "LOADEX",
                "/nosuch.so",
                "CONFIG",
                "a",
                "b",
                "ARGS",
                "x",
            ],
            &["MODULE", "LOADEX", "/nosuch.so", "CONFIG", "a"],
        ] {
            assert_eq!(err(&mut con, line), LOAD_FAILED, "{line:?}");
        }
        assert_eq!(err(&mut con, &["MODULE", "UNLOAD", "bf"]), NO_SUCH_MODULE);
        assert_eq!(q(&mut con, &["MODULE", "LIST"]), Ok(Value::Array(vec![])));
    }
}

#[test]
fn lolwut_prints_the_version_last() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let text = |con: &mut redis::Connection, line: &[&str]| -> String {
        match q(con, line) {
            Ok(Value::BulkString(b)) => String::from_utf8(b).unwrap(),
            other => panic!("{line:?}: {other:?}"),
        }
    };
    // Redis 7.0's default, and its reply for versions it has no art for.
    for line in [
        &["LOLWUT"][..],
        &["LOLWUT", "VERSION", "7"],
        &["LOLWUT", "VERSION", "-1"],
        &["LOLWUT", "foo", "bar"],
    ] {
        assert_eq!(text(&mut con, line), "Redis ver. 7.0.15\n", "{line:?}");
    }
    let art = text(&mut con, &["LOLWUT", "VERSION", "5"]);
    let lines: Vec<&str> = art.split_terminator('\n').collect();
    assert_eq!(
        lines.last().unwrap(),
        &"Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15"
    );
    assert_eq!(lines[lines.len() - 2], "");
    assert!(lines.len() > 10, "{art}");
    assert!(lines[..lines.len() - 2]
        .iter()
        .all(|l| l.chars().count() == 66
            && l.chars().all(|c| ('\u{2800}'..='\u{28ff}').contains(&c))));
    // Width, squares per row and per column; out-of-range values are clamped.
    let art = text(&mut con, &["LOLWUT", "VERSION", "5", "20", "3", "2"]);
    assert!(art.lines().next().unwrap().chars().count() == 20, "{art}");
    let art = text(&mut con, &["LOLWUT", "VERSION", "5", "0", "0", "0"]);
    assert_eq!(art.lines().next().unwrap().chars().count(), 1, "{art}");
    let art = text(&mut con, &["LOLWUT", "VERSION", "5", "5000", "1", "1000"]);
    assert_eq!(art.lines().next().unwrap().chars().count(), 1000);
    for line in [
        &["LOLWUT", "VERSION", "x"][..],
        &["LOLWUT", "VERSION", "5", "x"],
    ] {
        assert_eq!(
            err(&mut con, line),
            "ERR value is not an integer or out of range",
            "{line:?}"
        );
    }
}

#[test]
fn command_list_has_every_redis_7_0_command() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let ours: BTreeSet<String> = names(q(&mut con, &["COMMAND", "LIST"]).unwrap())
        .into_iter()
        .collect();
    let redis: BTreeSet<&str> = REDIS_7_0_15_COMMANDS.split_whitespace().collect();
    assert_eq!(redis.len(), 366);
    let missing: Vec<&str> = redis
        .iter()
        .copied()
        .filter(|n| !ours.contains(*n))
        .collect();
    let unexplained: Vec<&&str> = missing
        .iter()
        .filter(|n| !KNOWN_GAPS.iter().any(|(g, _)| g == *n))
        .collect();
    assert!(
        unexplained.is_empty(),
        "Redis 7.0.15 commands missing from COMMAND LIST: {unexplained:?}"
    );
    let stale: Vec<&str> = KNOWN_GAPS
        .iter()
        .map(|(g, _)| *g)
        .filter(|g| ours.contains(*g))
        .collect();
    assert!(
        stale.is_empty(),
        "now implemented: remove from KNOWN_GAPS: {stale:?}"
    );
    let count = match q(&mut con, &["COMMAND", "COUNT"]) {
        Ok(Value::Int(n)) => n as usize,
        other => panic!("{other:?}"),
    };
    let redis_top = redis.iter().filter(|n| !n.contains('|')).count();
    assert_eq!(redis_top, 240);
    let ours_top_from_redis = redis
        .iter()
        .filter(|n| !n.contains('|') && ours.contains(**n))
        .count();
    assert_eq!(ours_top_from_redis, redis_top - KNOWN_GAPS.len());
    assert_eq!(count, ours.iter().filter(|n| !n.contains('|')).count());
    assert!(count >= ours_top_from_redis);
}
