//! MONITOR: streams every command the server runs to the clients that asked, one line each
//! in Redis's format: `+<unix s>.<µs> [<db> <addr>] "arg" "arg"…`, with `lua` for the
//! address of commands a script runs.
//!
//! Dispatch asks [`Monitors::active`] (one atomic load) before formatting anything, so the
//! feature costs nothing while nobody monitors.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use flowkv_protocol::Args;
use parking_lot::Mutex;

use crate::client::{flag, Client, ClientShared};
use crate::command::{flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::net::Msg;
use crate::server::{unix_us, Server};

pub static COMMANDS: &[Command] = &[Command::new("monitor", 1, Group::Server)
    .flags(ADMIN | NOSCRIPT | LOADING | STALE)
    .handler(monitor)
    .doc(
        "Listen for all requests received by the server in real time",
        "1.0.0",
        "",
    )];

/// The clients in MONITOR mode.
#[derive(Default)]
pub struct Monitors {
    list: Mutex<Vec<Arc<ClientShared>>>,
    count: AtomicUsize,
}

impl Monitors {
    /// True if anyone monitors (checked per command).
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    fn add(&self, c: Arc<ClientShared>) {
        let mut list = self.list.lock();
        list.push(c);
        self.count.store(list.len(), Relaxed);
    }

    /// Forgets a client (it closed, or RESET it).
    pub fn remove(&self, id: u64) {
        if !self.active() {
            return;
        }
        let mut list = self.list.lock();
        list.retain(|c| c.id != id);
        self.count.store(list.len(), Relaxed);
    }

    /// Sends one command's line to every monitor. `by_script` marks commands a script ran.
    pub fn feed(&self, srv: &Server, client: &mut Client, args: Args<'_>, by_script: bool) {
        let line: Arc<[u8]> = format_line(client, args, by_script).into_bytes().into();
        let targets = self.list.lock().clone();
        let me = client.shared.worker;
        for m in targets {
            if m.id == client.id {
                client.pushes.extend_from_slice(&line);
            } else if let Some(mb) = srv.mailboxes.lock().get(m.worker) {
                mb.send_with_wake(Msg::Deliver(vec![(m.id, line.clone())]), m.worker != me);
            }
        }
    }
}

/// One MONITOR line, a RESP simple string whatever the monitor's protocol, as in Redis.
fn format_line(client: &Client, args: Args<'_>, by_script: bool) -> String {
    let us = unix_us();
    let mut line = format!("+{}.{:06} [{} ", us / 1_000_000, us % 1_000_000, client.db);
    if by_script {
        line.push_str("lua");
    } else {
        let _ = write!(line, "{}", client.shared.addr);
    }
    line.push(']');
    for a in super::slowlog::visible_args(args) {
        line.push(' ');
        quote(&mut line, &a);
    }
    line.push_str("\r\n");
    line
}

/// Appends `s` quoted and escaped as Redis's sdscatrepr does: `"`, `\`, control characters
/// by name, other non-printable bytes as `\xHH`.
fn quote(out: &mut String, s: &[u8]) {
    out.push('"');
    for &b in s {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            b' '..=b'~' => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
}

/// MONITOR: from now on this connection receives every command run. A client already
/// monitoring (or a replica) gets no reply, as in Redis.
fn monitor(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.deny_blocking {
        return Err(CmdError::msg(
            "ERR MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    let shared = &ctx.client.shared;
    if shared.has_flag(flag::REPLICA) {
        return Ok(());
    }
    shared.set_flag(flag::REPLICA | flag::MONITOR, true);
    ctx.srv.monitors.add(shared.clone());
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_sdscatrepr() {
        let mut s = String::new();
        quote(&mut s, b"a\"b\\c\r\n\x01\xff ok");
        assert_eq!(s, r#""a\"b\\c\r\n\x01\xff ok""#);
    }
}
