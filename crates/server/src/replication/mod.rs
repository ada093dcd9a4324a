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
use std::sync::atomic::Ordering::Relaxed;

/// Refuses a command the replication state forbids, as Redis's processCommand does:
/// writes on a read-only replica (READONLY), commands that need fresh data while a
/// replica's link is down and `replica-serve-stale-data` is off (MASTERDOWN), and writes
/// on a master with fewer in-sync replicas than `min-replicas-to-write` (NOREPLICAS). An
/// EXEC counts as the commands it queued. The master's own stream is never refused.
pub fn refuse(
    srv: &Server,
    client: &Client,
    cmd: &Command,
    multi: Option<&MultiState>,
) -> Option<CmdError> {
    let hot = &srv.config.hot;
    let replica = srv.replication.replica.is_replica();
    let min = hot.min_replicas_to_write.load(Relaxed);
    if !replica && min == 0 {
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
    let write = cmd.has(flags::WRITE) || (exec && queued(flags::WRITE, false));
    if !replica {
        let lag = hot.min_replicas_max_lag.load(Relaxed);
        if write && lag > 0 && (srv.replication.master.good_replicas(lag) as u64) < min {
            return Some(CmdError::msg(
                "NOREPLICAS Not enough good replicas to write.",
            ));
        }
        return None;
    }
    if client.shared.has_flag(flag::MASTER) {
        return None;
    }
    if write && hot.replica_read_only.load(Relaxed) {
        return Some(CmdError::msg(
            "READONLY You can't write against a read only replica.",
        ));
    }
    let stale_ok = cmd.has(flags::STALE) && (!exec || queued(flags::STALE, true));
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
