//! Replication: this server as a master streaming its changes to replicas
//! ([`master`]), and as a replica following a master ([`replica`]).

pub mod master;
pub mod replica;

/// The replication state of the server.
#[derive(Default)]
pub struct Replication {
    pub master: master::State,
    pub replica: replica::State,
}

use crate::client::{flag, Client};
use crate::command::{flags, Command};
use crate::error::CmdError;
use crate::info::Lines;
use crate::server::Server;
use crate::transaction::MultiState;
use flowkv_protocol::Args;
use std::sync::atomic::Ordering::Relaxed;

/// Refuses a command the replication state forbids, as Redis's processCommand does:
/// writes on a read-only replica (READONLY) or on a master with fewer in-sync replicas than
/// `min-replicas-to-write` (NOREPLICAS), see [`write_refusal`]; and commands that need
/// fresh data while a replica's link is down and `replica-serve-stale-data` is off
/// (MASTERDOWN). An EXEC counts as the commands it queued, a script that declares its flags
/// as those. The master's own stream is never refused.
pub fn refuse(
    srv: &Server,
    client: &Client,
    cmd: &Command,
    args: Args<'_>,
    multi: Option<&MultiState>,
) -> Option<CmdError> {
    let hot = &srv.config.hot;
    let replica = srv.replication.replica.is_replica();
    if !replica && hot.min_replicas_to_write.load(Relaxed) == 0 {
        return None;
    }
    let queued = |f: u32, all: bool| {
        multi.is_some_and(|m| {
            let mut it = m.queued.iter();
            if all {
                it.all(|q| q.cmd.has(f))
            } else {
                it.any(|q| q.cmd.has(f))
            }
        })
    };
    let exec = cmd.name == "exec";
    let own = crate::scripting::command_flags(cmd, args);
    if own & flags::WRITE != 0 || (exec && queued(flags::WRITE, false)) {
        if let Some(e) = write_refusal(srv, client) {
            return Some(e);
        }
    }
    if !replica || client.shared.has_flag(flag::MASTER) {
        return None;
    }
    let stale_ok = own & flags::STALE != 0 && (!exec || queued(flags::STALE, true));
    if !srv.replication.replica.link_up()
        && !hot.replica_serve_stale_data.load(Relaxed)
        && !stale_ok
    {
        return Some(CmdError::msg(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        ));
    }
    None
}

/// Why a write may not run now, if it may not: this is a read-only replica (READONLY; the
/// master's own stream excepted), or a master with fewer in-sync replicas than
/// `min-replicas-to-write` (NOREPLICAS). Checked for commands before they run and for each
/// write a script makes.
pub fn write_refusal(srv: &Server, client: &Client) -> Option<CmdError> {
    let hot = &srv.config.hot;
    if srv.replication.replica.is_replica() {
        if hot.replica_read_only.load(Relaxed) && !client.shared.has_flag(flag::MASTER) {
            return Some(CmdError::msg(
                "READONLY You can't write against a read only replica.",
            ));
        }
        return None;
    }
    let min = hot.min_replicas_to_write.load(Relaxed);
    let lag = hot.min_replicas_max_lag.load(Relaxed);
    if min > 0 && lag > 0 && (srv.replication.master.good_replicas(lag) as u64) < min {
        return Some(CmdError::msg(
            "NOREPLICAS Not enough good replicas to write.",
        ));
    }
    None
}

/// INFO's replication section.
pub fn info(srv: &Server, l: &mut Lines) {
    let m = &srv.replication.master;
    let replicas = m.replicas();
    if srv.replication.replica.is_replica() {
        l.field("role", "slave");
        replica::info(srv, l);
    } else {
        l.field("role", "master");
    }
    l.field("connected_slaves", replicas.len());
    for (i, (ip, port, state, offset, lag)) in replicas.iter().enumerate() {
        l.field(
            &format!("slave{i}"),
            format!("ip={ip},port={port},state={state},offset={offset},lag={lag}"),
        );
    }
    let (replid, replid2, second) = m.ids();
    l.field("master_failover_state", "no-failover");
    l.field("master_replid", replid);
    l.field("master_replid2", replid2);
    l.field("master_repl_offset", m.offset());
    l.field("second_repl_offset", second);
    let (active, size, first, histlen) = m.backlog();
    l.field("repl_backlog_active", u8::from(active));
    l.field("repl_backlog_size", size);
    l.field("repl_backlog_first_byte_offset", first);
    l.field("repl_backlog_histlen", histlen);
}
