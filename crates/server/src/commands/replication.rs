//! Replication commands: SYNC, PSYNC and REPLCONF (a replica attaching), REPLICAOF /
//! SLAVEOF, ROLE. See [`crate::replication`].

use std::sync::atomic::Ordering::Relaxed;

use flowkv_protocol::Args;
use flowkv_store::num::parse_i64;

use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::replication::{master, replica};

const REPL: u32 = ADMIN | NOSCRIPT;
const REPL_ACL: u32 = acl::ADMIN | acl::SLOW | acl::DANGEROUS;

pub static COMMANDS: &[Command] = &[
    Command::new("sync", 1, Group::Server)
        .flags(REPL | NO_ASYNC_LOADING | NO_MULTI)
        .acl(REPL_ACL)
        .handler(sync)
        .doc("Internal command used for replication", "1.0.0", ""),
    Command::new("psync", -3, Group::Server)
        .flags(REPL | NO_ASYNC_LOADING | NO_MULTI)
        .acl(REPL_ACL)
        .handler(psync)
        .doc("Internal command used for replication", "2.8.0", ""),
    Command::new("replconf", -1, Group::Server)
        .flags(REPL | LOADING | STALE | ALLOW_BUSY)
        .acl(REPL_ACL)
        .handler(replconf)
        .doc(
            "An internal command for configuring the replication stream",
            "3.0.0",
            "O(1)",
        ),
    replicaof_named("replicaof", "5.0.0"),
    replicaof_named("slaveof", "1.0.0"),
    Command::new("wait", 3, Group::Generic)
        .flags(NOSCRIPT)
        .acl(acl::SLOW | acl::CONNECTION)
        .tips(&["request_policy:all_shards", "response_policy:agg_min"])
        .handler(wait)
        .doc(
            "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
            "3.0.0",
            "O(1)",
        ),
    Command::new("role", 1, Group::Server)
        .flags(NOSCRIPT | LOADING | STALE | FAST)
        .acl(acl::ADMIN | acl::FAST | acl::DANGEROUS)
        .handler(role)
        .doc(
            "Return the role of the instance in the context of replication",
            "2.8.12",
            "O(1)",
        ),
];

/// REPLICAOF and its old name SLAVEOF.
const fn replicaof_named(name: &'static str, since: &'static str) -> Command {
    Command::new(name, 3, Group::Server)
        .flags(REPL | STALE | NO_ASYNC_LOADING)
        .acl(REPL_ACL)
        .handler(replicaof)
        .doc(
            "Make the server a replica of another instance, or promote it as master.",
            since,
            "O(1)",
        )
}

/// Refuses a replica's SYNC/PSYNC where flowkv can't serve it.
fn check_sync(ctx: &Ctx<'_>) -> Result<(), CmdError> {
    if ctx.srv.replication.replica.is_replica() {
        return Err(CmdError::msg(
            "ERR flowkv does not serve replicas while it is a replica itself (chained replication)",
        ));
    }
    Ok(())
}

/// SYNC: the old full synchronization (RDB, then the stream), still used by tools.
fn sync(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.client.shared.has_flag(crate::client::flag::REPLICA) {
        return Ok(());
    }
    check_sync(ctx)?;
    become_replica(ctx);
    ctx.srv
        .replication
        .master
        .full_sync(&ctx.client.shared, false);
    Ok(())
}

/// PSYNC replid offset: a partial resync from the backlog when possible, else a full one.
fn psync(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.client.shared.has_flag(crate::client::flag::REPLICA) {
        return Ok(());
    }
    check_sync(ctx)?;
    let offset = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let replid = String::from_utf8_lossy(args.get(1));
    let m = &ctx.srv.replication.master;
    become_replica(ctx);
    let shared = &ctx.client.shared;
    if let Ok(offset) = u64::try_from(offset) {
        if let Some(line) = m.try_continue(shared, &replid, offset) {
            eprintln!(
                "Partial resynchronization request from {} accepted",
                shared.addr
            );
            ctx.out.raw(line.as_bytes());
            return Ok(());
        }
    }
    eprintln!("Full resync requested by replica {}", shared.addr);
    m.full_sync(shared, true);
    Ok(())
}

/// Marks the client as a replica: CLIENT LIST flag S, the `replica` output buffer limits.
fn become_replica(ctx: &mut Ctx<'_>) {
    eprintln!(
        "Replica {} asks for synchronization",
        ctx.client.shared.addr
    );
    ctx.client
        .shared
        .set_flag(crate::client::flag::REPLICA, true);
}

/// REPLCONF option value [option value ...]: a replica's settings and acknowledgements.
fn replconf(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let shared = &ctx.client.shared;
    for i in (1..args.len()).step_by(2) {
        let (opt, val) = (args.get(i), args.get(i + 1));
        let opt_lower = opt.to_ascii_lowercase();
        match opt_lower.as_slice() {
            b"listening-port" => {
                let port = parse_i64(val)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or(CmdError::NotInteger)?;
                shared.repl_port.store(u32::from(port), Relaxed);
            }
            b"ack" => {
                // Acknowledgements get no reply, and count only from replicas.
                if shared.has_flag(crate::client::flag::REPLICA) {
                    if let Some(off) = parse_i64(val).and_then(|o| u64::try_from(o).ok()) {
                        ctx.srv.replication.master.ack(shared.id, off);
                    }
                }
                return Ok(());
            }
            // Only a master asks for an ACK, and the replica side answers it.
            b"getack" => return Ok(()),
            b"ip-address" | b"capa" | b"rdb-only" | b"rdb-filter-only" => {}
            _ => {
                return Err(CmdError::msg(format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(opt)
                )))
            }
        }
    }
    ctx.out.ok();
    Ok(())
}

/// REPLICAOF host port / REPLICAOF NO ONE.
fn replicaof(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let srv = ctx.srv;
    let (host, port) = (args.get(1), args.get(2));
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        if srv.replication.replica.is_replica() {
            replica::stop(srv);
            srv.replication.master.shift_replid();
            eprintln!(
                "MASTER MODE enabled (user request from '{}')",
                ctx.client.shared.addr
            );
        }
        ctx.out.ok();
        return Ok(());
    }
    let port = parse_i64(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| CmdError::msg("ERR Invalid master port"))?;
    let host = String::from_utf8_lossy(host).into_owned();
    if ctx.client.shared.has_flag(crate::client::flag::REPLICA) {
        return Err(CmdError::msg(
            "ERR Command is not valid when client is a replica.",
        ));
    }
    let already = replica::follow(srv, &host, port).map_err(CmdError::msg)?;
    if already {
        eprintln!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
        ctx.out.simple(b"OK Already connected to specified master");
        return Ok(());
    }
    // Replicas of this server would follow a different history now.
    srv.replication.master.disconnect_all(srv);
    eprintln!(
        "REPLICAOF {host}:{port} enabled (user request from '{}')",
        ctx.client.shared.addr
    );
    ctx.out.ok();
    Ok(())
}

/// ROLE: ["master", offset, [[ip, port, offset]...]] or ["slave", host, port, state,
/// offset].
fn role(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let srv = ctx.srv;
    let out = &mut ctx.out;
    if let Some((host, port, state, offset)) = replica::role(srv) {
        out.array(5);
        out.bulk(b"slave");
        out.bulk(host.as_bytes());
        out.int(i64::from(port));
        out.bulk(state.as_bytes());
        out.int(offset);
        return Ok(());
    }
    let m = &srv.replication.master;
    let replicas: Vec<_> = m
        .replicas()
        .into_iter()
        .filter(|r| r.2 == "online")
        .collect();
    out.array(3);
    out.bulk(b"master");
    out.int(m.offset() as i64);
    out.array(replicas.len());
    for (ip, port, _, ack, _) in replicas {
        out.array(3);
        out.bulk(ip.as_bytes());
        out.bulk(port.to_string().as_bytes());
        out.bulk(ack.to_string().as_bytes());
    }
    Ok(())
}

/// WAIT numreplicas timeout: blocks until that many replicas acknowledged everything
/// written so far, or the timeout (ms, 0 = none) passes; replies how many did.
fn wait(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let srv = ctx.srv;
    if srv.replication.replica.is_replica() {
        return Err(CmdError::msg(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis \
             4.0 if a replica is configured to be writable (which is not the default) writes to \
             replicas are just local and are not propagated.",
        ));
    }
    let count = parse_i64(args.get(1)).ok_or(CmdError::NotInteger)?;
    let deadline_ms = crate::blocking::parse_timeout_ms(args.get(2), ctx.now_ms)?;
    let m = &srv.replication.master;
    let offset = m.offset();
    let acked = m.acked(offset);
    if acked as i64 >= count || ctx.deny_blocking {
        ctx.out.int(acked as i64);
        return Ok(());
    }
    let token = srv.blocked.new_token();
    let client = &mut *ctx.client;
    m.wait(master::Wait {
        token,
        client_id: client.id,
        worker: client.shared.worker,
        proto: client.proto,
        offset,
        count: count as usize,
        deadline_ms,
    });
    client.blocked = Some(crate::blocking::Blocked {
        token,
        deadline_ms: 0,
    });
    client.shared.set_flag(crate::client::flag::BLOCKED, true);
    Ok(())
}

/// Forgets what replication kept of a client that closed (a WAIT, a replica link).
pub fn closed(srv: &crate::server::Server, client: &crate::client::Client) {
    let shared = &client.shared;
    if shared.has_flag(crate::client::flag::REPLICA | crate::client::flag::BLOCKED) {
        srv.replication.master.remove(client.id);
    }
}
