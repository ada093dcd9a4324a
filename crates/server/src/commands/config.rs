//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP: the run-time face of [`crate::config`].

use std::collections::HashSet;

use flowkv_protocol::Args;

use crate::command::{flags::*, Command, Group};
use crate::config::Caller;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[Command::new("config", -2, Group::Server)
    .subcommands(SUBCOMMANDS)
    .doc(
        "A container for server configuration commands",
        "2.0.0",
        "Depends on subcommand.",
    )];

static SUBCOMMANDS: &[Command] = &[
    Command::new("get", -3, Group::Server)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .handler(get)
        .doc(
            "Get the values of configuration parameters",
            "2.0.0",
            "O(N) when N is the number of configuration parameters provided",
        ),
    Command::new("set", -4, Group::Server)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .handler(set)
        .doc(
            "Set configuration parameters to the given values",
            "2.0.0",
            "O(N) when N is the number of configuration parameters provided",
        ),
    Command::new("resetstat", 2, Group::Server)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .handler(resetstat)
        .doc("Reset the stats returned by INFO", "2.0.0", "O(1)"),
    Command::new("rewrite", 2, Group::Server)
        .flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .handler(rewrite)
        .doc(
            "Rewrite the configuration file with the in memory configuration",
            "2.8.0",
            "O(1)",
        ),
    Command::new("help", 2, Group::Server)
        .flags(LOADING | STALE)
        .handler(help)
        .doc(
            "Show helpful text about the different subcommands",
            "5.0.0",
            "O(1)",
        ),
];

/// CONFIG GET pattern [pattern ...]: a map of every matching directive, each once. A name
/// without glob characters is looked up directly (so hidden directives are found) and echoed
/// as given; patterns match canonical names and aliases.
fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cfg = &ctx.srv.config;
    let mut seen = HashSet::new();
    let mut found: Vec<(String, String)> = Vec::new();
    for pat in args.iter().skip(2) {
        if pat.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
            for (name, value) in cfg.matching(pat) {
                if seen.insert(name.clone()) {
                    found.push((name, value));
                }
            }
        } else {
            let name = String::from_utf8_lossy(pat).into_owned();
            if seen.contains(&name.to_ascii_lowercase()) {
                continue;
            }
            if let Some(value) = cfg.get(&name) {
                seen.insert(name.to_ascii_lowercase());
                found.push((name, value));
            }
        }
    }
    ctx.out.map(found.len());
    for (name, value) in &found {
        ctx.out.bulk(name.as_bytes());
        ctx.out.bulk(value.as_bytes());
    }
    Ok(())
}

/// CONFIG SET name value [name value ...]: all pairs are checked before any changes.
/// Protected directives need `enable-protected-configs` (`local`: loopback clients only).
fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let text = |i: usize| String::from_utf8_lossy(args.get(i)).into_owned();
    let pairs: Vec<(String, String)> = (2..args.len())
        .step_by(2)
        .map(|i| (text(i), text(i + 1)))
        .collect();
    let local = ctx.client.shared.addr.ip().is_loopback();
    ctx.srv
        .config
        .set_as(&pairs, Caller::Client { local })
        .map_err(CmdError::msg)?;
    ctx.out.ok();
    Ok(())
}

/// CONFIG RESETSTAT: clears the INFO counters (commandstats, errorstats, totals).
fn resetstat(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.srv.reset_stats();
    ctx.out.ok();
    Ok(())
}

/// CONFIG REWRITE: writes the running configuration back into the start-up config file.
fn rewrite(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let cfg = &ctx.srv.config;
    if cfg.file.is_none() {
        return Err(CmdError::msg(
            "ERR The server is running without a config file",
        ));
    }
    cfg.rewrite()
        .map_err(|e| CmdError::msg(format!("ERR Rewriting config file: {e}")))?;
    ctx.out.ok();
    Ok(())
}

/// CONFIG HELP.
fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    const LINES: &[&str] = &[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern> [<pattern> ...]",
        "    Reply with every configuration parameter matching a glob-style pattern, and its value.",
        "SET <directive> <value> [<directive> <value> ...]",
        "    Change configuration directives; either all change or none does.",
        "RESETSTAT",
        "    Clear the statistics INFO reports.",
        "REWRITE",
        "    Write the running configuration back into the config file given at start-up.",
        "HELP",
        "    Print this help.",
    ];
    ctx.help(LINES);
    Ok(())
}

/// Applies what a successful CONFIG SET changed to the subsystems that keep their own copy
/// of a setting. Dispatch calls it after the command; `locks_free` is false for a CONFIG SET
/// inside EXEC, whose locks are still held: turning the AOF on (which starts a rewrite under
/// every shard lock) then waits for the next top-level CONFIG SET.
pub fn after_set(srv: &crate::server::Server, locks_free: bool) {
    srv.acl.sync_requirepass(srv);
    if locks_free {
        crate::aof::after_config_set(srv);
    }
    crate::evict::refresh(srv);
    crate::prefix_stats::refresh(srv);
}
