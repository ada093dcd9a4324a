//! The Redis Cluster commands — CLUSTER and its subcommands, READONLY, READWRITE, ASKING —
//! as a standalone (`cluster-enabled no`) redis-server answers them, plus RESTORE-ASKING.
//!
//! flowkv has no cluster mode, so it is always that standalone server. Cluster-aware clients
//! and tools still probe these commands (CLUSTER INFO to detect a cluster, READONLY on every
//! new connection to a replica, COMMAND INFO for the key-spec table): they must find the
//! commands in the table with Redis's arity, flags and ACL categories, and get Redis's exact
//! refusal, which is how they recognise a non-cluster server. Even CLUSTER HELP is refused
//! there, as redis-server 7.0 refuses it.

use flowkv_protocol::Args;

use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::commands::persist;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

/// What a standalone redis-server replies to every cluster command.
const DISABLED: &str = "ERR This instance has cluster support disabled";

pub static COMMANDS: &[Command] = &[
    Command::new("cluster", -2, Group::Cluster)
        .subcommands(SUBCOMMANDS)
        .doc(
            "A container for cluster commands",
            "3.0.0",
            "Depends on subcommand.",
        ),
    Command::new("readonly", 1, Group::Cluster)
        .flags(LOADING | STALE | FAST)
        .acl(acl::CONNECTION)
        .handler(disabled)
        .doc(
            "Enables read queries for a connection to a cluster replica node",
            "3.0.0",
            "O(1)",
        ),
    Command::new("readwrite", 1, Group::Cluster)
        .flags(LOADING | STALE | FAST)
        .acl(acl::CONNECTION)
        .handler(disabled)
        .doc(
            "Disables read queries for a connection to a cluster replica node",
            "3.0.0",
            "O(1)",
        ),
    Command::new("asking", 1, Group::Cluster)
        .flags(FAST)
        .acl(acl::CONNECTION)
        .handler(disabled)
        .doc("Sent by cluster clients after an -ASK redirect", "3.0.0", "O(1)"),
    // Redis's `asking` flag (accept the command on a node importing the slot) has no
    // meaning without cluster mode and no bit in our flag set, so it is not reported.
    Command::new("restore-asking", -4, Group::Server)
        .flags(WRITE | DENYOOM)
        .acl(acl::KEYSPACE | acl::WRITE | acl::DANGEROUS)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::OW | ks::UPDATE)])
        .handler(restore_asking)
        .doc(
            "An internal command for migrating keys in a cluster",
            "3.0.0",
            "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).",
        ),
];

/// Flags of the subcommands that change the cluster configuration.
const CONFIGURE: u32 = ADMIN | STALE | NO_ASYNC_LOADING;
/// Flags of the admin subcommands that only read it.
const ADMIN_READ: u32 = ADMIN | STALE;
/// The tip of the subcommands whose reply describes the cluster's current state.
const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

/// One CLUSTER subcommand: they all share the refusal handler and differ only in what
/// COMMAND INFO / COMMAND DOCS report.
const fn sub(
    name: &'static str,
    arity: i32,
    flags: u32,
    summary: &'static str,
    since: &'static str,
    complexity: &'static str,
) -> Command {
    Command::new(name, arity, Group::Cluster)
        .flags(flags)
        .handler(disabled)
        .doc(summary, since, complexity)
}

static SUBCOMMANDS: &[Command] = &[
    sub(
        "addslots",
        -3,
        CONFIGURE,
        "Assign new hash slots to receiving node",
        "3.0.0",
        "O(N) where N is the total number of hash slot arguments",
    ),
    sub(
        "addslotsrange",
        -4,
        CONFIGURE,
        "Assign new hash slots to receiving node",
        "7.0.0",
        "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
    ),
    sub(
        "bumpepoch",
        2,
        CONFIGURE,
        "Advance the cluster config epoch",
        "3.0.0",
        "O(1)",
    )
    .tips(NONDETERMINISTIC),
    sub(
        "count-failure-reports",
        3,
        ADMIN_READ,
        "Return the number of failure reports active for a given node",
        "3.0.0",
        "O(N) where N is the number of failure reports",
    )
    .tips(NONDETERMINISTIC),
    sub(
        "countkeysinslot",
        3,
        STALE,
        "Return the number of local keys in the specified hash slot",
        "3.0.0",
        "O(1)",
    ),
    sub(
        "delslots",
        -3,
        CONFIGURE,
        "Set hash slots as unbound in receiving node",
        "3.0.0",
        "O(N) where N is the total number of hash slot arguments",
    ),
    sub(
        "delslotsrange",
        -4,
        CONFIGURE,
        "Set hash slots as unbound in receiving node",
        "7.0.0",
        "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
    ),
    sub(
        "failover",
        -2,
        CONFIGURE,
        "Forces a replica to perform a manual failover of its master.",
        "3.0.0",
        "O(1)",
    ),
    sub(
        "flushslots",
        2,
        CONFIGURE,
        "Delete a node's own slots information",
        "3.0.0",
        "O(1)",
    ),
    sub(
        "forget",
        3,
        CONFIGURE,
        "Remove a node from the nodes table",
        "3.0.0",
        "O(1)",
    ),
    sub(
        "getkeysinslot",
        4,
        STALE,
        "Return local key names in the specified hash slot",
        "3.0.0",
        "O(log(N)) where N is the number of requested keys",
    )
    .tips(NONDETERMINISTIC),
    sub(
        "help",
        2,
        LOADING | STALE,
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
    sub(
        "info",
        2,
        STALE,
        "Provides info about Redis Cluster node state",
        "3.0.0",
        "O(1)",
    )
    .tips(NONDETERMINISTIC),
    sub(
        "keyslot",
        3,
        STALE,
        "Returns the hash slot of the specified key",
        "3.0.0",
        "O(N) where N is the number of bytes in the key",
    ),
    sub(
        "links",
        2,
        STALE,
        "Returns a list of all TCP links to and from peer nodes in cluster",
        "7.0.0",
        "O(N) where N is the total number of Cluster nodes",
    )
    .tips(NONDETERMINISTIC),
    sub(
        "meet",
        -4,
        CONFIGURE,
        "Force a node cluster to handshake with another node",
        "3.0.0",
        "O(1)",
    ),
    sub("myid", 2, STALE, "Return the node id", "3.0.0", "O(1)"),
    sub(
        "nodes",
        2,
        STALE,
        "Get Cluster config for the node",
        "3.0.0",
        "O(N) where N is the total number of Cluster nodes",
    )
    .tips(NONDETERMINISTIC),
    sub(
        "replicas",
        3,
        ADMIN_READ,
        "List replica nodes of the specified master node",
        "5.0.0",
        "O(1)",
    )
    .tips(NONDETERMINISTIC),
    sub(
        "replicate",
        3,
        CONFIGURE,
        "Reconfigure a node as a replica of the specified master node",
        "3.0.0",
        "O(1)",
    ),
    // NOSCRIPT as in Redis: a script must not be able to wipe the node (RESET HARD).
    sub(
        "reset",
        -2,
        ADMIN | NOSCRIPT | STALE,
        "Reset a Redis Cluster node",
        "3.0.0",
        "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
    ),
    sub(
        "saveconfig",
        2,
        CONFIGURE,
        "Forces the node to save cluster state on disk",
        "3.0.0",
        "O(1)",
    ),
    sub(
        "set-config-epoch",
        3,
        CONFIGURE,
        "Set the configuration epoch in a new node",
        "3.0.0",
        "O(1)",
    ),
    sub(
        "setslot",
        -4,
        CONFIGURE,
        "Bind a hash slot to a specific node",
        "3.0.0",
        "O(1)",
    ),
    sub(
        "shards",
        2,
        STALE,
        "Get array of cluster slots to node mappings",
        "7.0.0",
        "O(N) where N is the total number of cluster nodes",
    )
    .tips(NONDETERMINISTIC),
    sub(
        "slaves",
        3,
        ADMIN_READ,
        "List replica nodes of the specified master node",
        "3.0.0",
        "O(1)",
    )
    .tips(NONDETERMINISTIC),
    sub(
        "slots",
        2,
        STALE,
        "Get array of Cluster slot to node mappings",
        "3.0.0",
        "O(N) where N is the total number of Cluster nodes",
    )
    .tips(NONDETERMINISTIC),
];

/// Every cluster command: the standalone server's refusal.
fn disabled(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Err(CmdError::msg(DISABLED))
}

/// RESTORE-ASKING: what Redis's cluster nodes send each other when migrating keys. Outside
/// cluster mode Redis runs it exactly as RESTORE (same arguments, same replies, same
/// `restore` event), so it runs RESTORE's own handler.
fn restore_asking(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let restore = persist::COMMANDS
        .iter()
        .find(|c| c.name == "restore")
        .and_then(|c| c.handler)
        .expect("RESTORE is in the persistence family");
    restore(ctx, args)
}
