//! The slow log: commands that ran for at least `slowlog-log-slower-than` microseconds, the
//! newest `slowlog-max-len` of them, and SLOWLOG GET/LEN/RESET/HELP to read them.
//!
//! Dispatch compares each command's duration with the threshold (an atomic load); only a
//! command that qualifies takes the log's lock and copies its arguments, trimmed as Redis
//! trims them so one huge command can't make the log huge.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use flowkv_protocol::Args;
use flowkv_store::num::parse_i64;
use parking_lot::Mutex;

use crate::client::ClientShared;
use crate::command::{flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::server::Server;

pub static COMMANDS: &[Command] = &[Command::new("slowlog", -2, Group::Server)
    .subcommands(SUBCOMMANDS)
    .doc(
        "A container for slow log commands",
        "2.2.12",
        "Depends on subcommand.",
    )];

static SUBCOMMANDS: &[Command] = &[
    Command::new("reset", 2, Group::Server)
        .flags(ADMIN | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .handler(reset)
        .doc(
            "Clear all entries from the slow log",
            "2.2.12",
            "O(N) where N is the number of entries in the slowlog",
        ),
    Command::new("help", 2, Group::Server)
        .flags(LOADING | STALE)
        .handler(help)
        .doc(
            "Show helpful text about the different subcommands",
            "6.2.0",
            "O(1)",
        ),
    Command::new("get", -2, Group::Server)
        .flags(ADMIN | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "nondeterministic_output"])
        .handler(get)
        .doc(
            "Get the slow log's entries",
            "2.2.12",
            "O(N) where N is the number of entries returned",
        ),
    Command::new("len", 2, Group::Server)
        .flags(ADMIN | LOADING | STALE)
        .tips(&[
            "request_policy:all_nodes",
            "response_policy:agg_sum",
            "nondeterministic_output",
        ])
        .handler(len)
        .doc("Get the slow log's length", "2.2.12", "O(1)"),
];

/// Arguments kept per entry; the last slot says how many more there were.
const MAX_ARGS: usize = 32;
/// Bytes kept per argument; the rest is summarized.
const MAX_ARG_BYTES: usize = 128;
/// Entries SLOWLOG GET returns without a count.
const DEFAULT_GET: usize = 10;

/// One slow command.
struct Entry {
    id: u64,
    unix_secs: u64,
    duration_us: u64,
    args: Vec<Vec<u8>>,
    addr: String,
    name: Vec<u8>,
}

/// The log, newest entry last.
#[derive(Default)]
pub struct SlowLog(Mutex<Log>);

#[derive(Default)]
struct Log {
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// Configuration directives whose values never appear in the slow log or MONITOR.
const SENSITIVE_CONFIGS: &[&str] = &[
    "masterauth",
    "masteruser",
    "requirepass",
    "metrics-password",
];

/// The arguments as the slow log and MONITOR show them: secrets replaced by "(redacted)",
/// as Redis redacts them (AUTH, HELLO's AUTH, MIGRATE's AUTH/AUTH2, everything after ACL
/// SETUSER, sensitive CONFIG SET values).
pub fn visible_args<'a>(args: Args<'a>) -> Vec<Cow<'a, [u8]>> {
    let mut out: Vec<Cow<'a, [u8]>> = args.iter().map(Cow::Borrowed).collect();
    let redact = |out: &mut Vec<Cow<'a, [u8]>>, i: usize| {
        if let Some(a) = out.get_mut(i) {
            *a = Cow::Borrowed(b"(redacted)");
        }
    };
    let name = args.get(0);
    let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
    if is(b"auth") {
        (1..args.len()).for_each(|i| redact(&mut out, i));
    } else if is(b"hello") {
        for i in 2..args.len() {
            if args.get(i).eq_ignore_ascii_case(b"auth") {
                redact(&mut out, i + 1);
                redact(&mut out, i + 2);
            }
        }
    } else if is(b"acl") && args.len() > 2 && args.get(1).eq_ignore_ascii_case(b"setuser") {
        (2..args.len()).for_each(|i| redact(&mut out, i));
    } else if is(b"migrate") {
        crate::commands::migrate::secret_positions(args).for_each(|i| redact(&mut out, i));
    } else if is(b"config") && args.len() > 2 && args.get(1).eq_ignore_ascii_case(b"set") {
        for i in (2..args.len()).step_by(2) {
            let directive = String::from_utf8_lossy(args.get(i));
            if SENSITIVE_CONFIGS
                .iter()
                .any(|s| crate::config::lookup(&directive).is_some_and(|d| d.name == *s))
            {
                redact(&mut out, i + 1);
            }
        }
    }
    out
}

/// The arguments as an entry keeps them: at most [`MAX_ARGS`] (the last slot then says how
/// many more there were), each at most [`MAX_ARG_BYTES`] plus how many bytes more.
fn trimmed(args: Args<'_>) -> Vec<Vec<u8>> {
    let visible = visible_args(args);
    let n = visible.len();
    let keep = if n > MAX_ARGS { MAX_ARGS - 1 } else { n };
    let mut out: Vec<Vec<u8>> = visible
        .iter()
        .take(keep)
        .map(|a| {
            if a.len() > MAX_ARG_BYTES {
                let mut t = a[..MAX_ARG_BYTES].to_vec();
                t.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_ARG_BYTES).as_bytes(),
                );
                t
            } else {
                a.to_vec()
            }
        })
        .collect();
    if n > MAX_ARGS {
        out.push(format!("... ({} more arguments)", n - keep).into_bytes());
    }
    out
}

impl SlowLog {
    /// Logs a command that took `duration_us`, if the configuration says it is slow.
    #[inline]
    pub fn push_if_slow(
        &self,
        srv: &Server,
        client: &ClientShared,
        args: Args<'_>,
        duration_us: u64,
    ) {
        let hot = &srv.config.hot;
        let slower = hot.slowlog_slower_than.load(Relaxed);
        if slower < 0 || duration_us < slower as u64 {
            return;
        }
        let max_len = hot.slowlog_max_len.load(Relaxed) as usize;
        if max_len == 0 {
            return;
        }
        self.push(client, args, duration_us, max_len);
    }

    #[cold]
    fn push(&self, client: &ClientShared, args: Args<'_>, duration_us: u64, max_len: usize) {
        let entry = Entry {
            id: 0,
            unix_secs: crate::server::unix_ms() / 1000,
            duration_us,
            args: trimmed(args),
            addr: client.addr.to_string(),
            name: client.name.lock().clone().unwrap_or_default(),
        };
        let mut log = self.0.lock();
        let id = log.next_id;
        log.next_id += 1;
        log.entries.push_back(Entry { id, ..entry });
        while log.entries.len() > max_len {
            log.entries.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// SLOWLOG GET [count]: the newest `count` entries (10 by default, -1 for all), newest
/// first, each [id, unix time, µs, [args], client address, client name].
fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = match args.len() {
        2 => DEFAULT_GET,
        3 => match parse_i64(args.get(2)) {
            Some(-1) => usize::MAX,
            Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => {
                return Err(CmdError::msg(
                    "ERR count should be greater than or equal to -1",
                ))
            }
        },
        _ => return Err(sub_syntax("get")),
    };
    let log = ctx.srv.slowlog.0.lock();
    let n = count.min(log.entries.len());
    let out = &mut ctx.out;
    out.array(n);
    for e in log.entries.iter().rev().take(n) {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.unix_secs as i64);
        out.int(e.duration_us as i64);
        out.array(e.args.len());
        for a in &e.args {
            out.bulk(a);
        }
        out.bulk(e.addr.as_bytes());
        out.bulk(&e.name);
    }
    Ok(())
}

/// Redis's reply to a known subcommand given the wrong arguments.
fn sub_syntax(sub: &str) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try SLOWLOG HELP."
    ))
}

fn len(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.out.int(ctx.srv.slowlog.len() as i64);
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.srv.slowlog.0.lock().entries.clear();
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.help(&[
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Reply with the newest <count> entries of the slow log (10 by default; -1 for all).",
        "    Each entry is: id, unix time, duration in microseconds, the arguments,",
        "    the client's address and port, the client's name.",
        "LEN",
        "    Reply with the number of entries in the slow log.",
        "RESET",
        "    Empty the slow log.",
        "HELP",
        "    Print this help.",
    ]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowkv_protocol::OwnedArgs;

    fn owned(parts: &[&[u8]]) -> OwnedArgs {
        OwnedArgs::from_slices(parts.iter())
    }

    #[test]
    fn trims_like_redis() {
        let many: Vec<Vec<u8>> = (0..40).map(|i| i.to_string().into_bytes()).collect();
        let parts: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        let a = owned(&parts);
        let t = trimmed(a.as_args());
        assert_eq!(t.len(), 32);
        assert_eq!(t[30], b"30");
        assert_eq!(t[31], b"... (9 more arguments)");
        let long = vec![b'A'; 129];
        let a = owned(&[b"set", b"k", &long]);
        let t = trimmed(a.as_args());
        assert_eq!(t[2].len(), 128 + "... (1 more bytes)".len());
        assert!(t[2].ends_with(b"A... (1 more bytes)"));
    }

    #[test]
    fn redacts_secrets() {
        let show = |parts: &[&[u8]]| -> Vec<Vec<u8>> {
            let a = owned(parts);
            visible_args(a.as_args())
                .iter()
                .map(|c| c.to_vec())
                .collect()
        };
        assert_eq!(
            show(&[b"auth", b"u", b"p"])[1..],
            [b"(redacted)".to_vec(), b"(redacted)".to_vec()]
        );
        let h = show(&[b"hello", b"3", b"AUTH", b"u", b"p", b"setname", b"x"]);
        assert_eq!(h[3], b"(redacted)");
        assert_eq!(h[4], b"(redacted)");
        assert_eq!(h[6], b"x");
        let c = show(&[b"config", b"set", b"masterauth", b"s", b"maxclients", b"10"]);
        assert_eq!(c[3], b"(redacted)");
        assert_eq!(c[5], b"10");
        let a = show(&[b"ACL", b"SETUSER", b"bob", b">pw", b"+get"]);
        assert_eq!(a[1], b"SETUSER");
        assert!(a[2..].iter().all(|x| x == b"(redacted)"));
    }
}
