//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB
//! introspection, over the registry in [`crate::pubsub`].
//!
//! Subscribe and unsubscribe confirmations are pushes, not replies: they go to the client's
//! pending pushes, so CLIENT REPLY OFF does not swallow them (as in Redis). Inside EXEC they
//! are part of the EXEC reply instead, one element per confirmation.

use flowkv_protocol::{Args, Reply};

use crate::command::{flags::*, keyspec as ks, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::pubsub::Kind;

/// Shard channel commands declare their channels as "not_key" key specs, as Redis does
/// (cluster clients route them by slot).
static SHARD_CHANNELS: &[ks::KeySpecDef] =
    &[ks::spec(ks::NOT_KEY, ks::index(1), ks::range(-1, 1, 0))];
static SHARD_CHANNEL: &[ks::KeySpecDef] = &[ks::key_at(1, ks::NOT_KEY)];

pub static COMMANDS: &[Command] = &[
    Command::new("subscribe", -2, Group::Pubsub)
        .flags(PUBSUB | NOSCRIPT | LOADING | STALE)
        .handler(subscribe)
        .doc(
            "Listen for messages published to the given channels",
            "2.0.0",
            "O(N) where N is the number of channels to subscribe to.",
        ),
    Command::new("unsubscribe", -1, Group::Pubsub)
        .flags(PUBSUB | NOSCRIPT | LOADING | STALE)
        .handler(unsubscribe)
        .doc(
            "Stop listening for messages posted to the given channels",
            "2.0.0",
            "O(N) where N is the number of clients already subscribed to a channel.",
        ),
    Command::new("psubscribe", -2, Group::Pubsub)
        .flags(PUBSUB | NOSCRIPT | LOADING | STALE)
        .handler(psubscribe)
        .doc(
            "Listen for messages published to channels matching the given patterns",
            "2.0.0",
            "O(N) where N is the number of patterns the client is already subscribed to.",
        ),
    Command::new("punsubscribe", -1, Group::Pubsub)
        .flags(PUBSUB | NOSCRIPT | LOADING | STALE)
        .handler(punsubscribe)
        .doc(
            "Stop listening for messages posted to channels matching the given patterns",
            "2.0.0",
            "O(N+M) where N is the number of patterns the client is already subscribed and M \
             is the number of total patterns subscribed in the system (by any client).",
        ),
    Command::new("publish", 3, Group::Pubsub)
        .flags(PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE)
        .handler(publish)
        .doc(
            "Post a message to a channel",
            "2.0.0",
            "O(N+M) where N is the number of clients subscribed to the receiving channel and M \
             is the total number of subscribed patterns (by any client).",
        ),
    Command::new("ssubscribe", -2, Group::Pubsub)
        .flags(PUBSUB | NOSCRIPT | LOADING | STALE)
        .keys(1, -1, 1)
        .key_specs(SHARD_CHANNELS)
        .handler(ssubscribe)
        .doc(
            "Listen for messages published to the given shard channels",
            "7.0.0",
            "O(N) where N is the number of shard channels to subscribe to.",
        ),
    Command::new("sunsubscribe", -1, Group::Pubsub)
        .flags(PUBSUB | NOSCRIPT | LOADING | STALE)
        .keys(1, -1, 1)
        .key_specs(SHARD_CHANNELS)
        .handler(sunsubscribe)
        .doc(
            "Stop listening for messages posted to the given shard channels",
            "7.0.0",
            "O(N) where N is the number of clients already subscribed to a shard channel.",
        ),
    Command::new("spublish", 3, Group::Pubsub)
        .flags(PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE)
        .keys(1, 1, 1)
        .key_specs(SHARD_CHANNEL)
        .handler(spublish)
        .doc(
            "Post a message to a shard channel",
            "7.0.0",
            "O(N) where N is the number of clients subscribed to the receiving shard channel.",
        ),
    Command::new("pubsub", -2, Group::Pubsub)
        .subcommands(PUBSUB_SUBCOMMANDS)
        .doc(
            "A container for Pub/Sub commands",
            "2.8.0",
            "Depends on subcommand.",
        ),
];

static PUBSUB_SUBCOMMANDS: &[Command] = &[
    Command::new("numpat", 2, Group::Pubsub)
        .flags(PUBSUB | LOADING | STALE)
        .handler(numpat)
        .doc(
            "Get the count of unique patterns pattern subscriptions",
            "2.8.0",
            "O(1)",
        ),
    Command::new("help", 2, Group::Pubsub)
        .flags(LOADING | STALE)
        .handler(help)
        .doc(
            "Show helpful text about the different subcommands",
            "6.2.0",
            "O(1)",
        ),
    Command::new("channels", -2, Group::Pubsub)
        .flags(PUBSUB | LOADING | STALE)
        .handler(channels)
        .doc(
            "List active channels",
            "2.8.0",
            "O(N) where N is the number of active channels, and assuming constant time \
             pattern matching (relatively short channels and patterns)",
        ),
    Command::new("numsub", -2, Group::Pubsub)
        .flags(PUBSUB | LOADING | STALE)
        .handler(numsub)
        .doc(
            "Get the count of subscribers for channels",
            "2.8.0",
            "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
        ),
    Command::new("shardnumsub", -2, Group::Pubsub)
        .flags(PUBSUB | LOADING | STALE)
        .handler(shardnumsub)
        .doc(
            "Get the count of subscribers for shard channels",
            "7.0.0",
            "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard \
             channels",
        ),
    Command::new("shardchannels", -2, Group::Pubsub)
        .flags(PUBSUB | LOADING | STALE)
        .handler(shardchannels)
        .doc(
            "List active shard channels",
            "7.0.0",
            "O(N) where N is the number of active shard channels, and assuming constant time \
             pattern matching (relatively short shard channels).",
        ),
];

/// Releases the shard locks dispatch took for shard channels (their key specs exist for
/// cluster routing; pub/sub needs no keyspace lock). Inside EXEC the locks are the
/// transaction's and stay.
fn release_locks(ctx: &mut Ctx<'_>) {
    if !ctx.deny_blocking {
        drop(ctx.locked.take());
    }
}

fn subscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Pattern)
}

/// SSUBSCRIBE is refused inside a transaction, unlike the other two (Redis 7.0 keeps
/// SUBSCRIBE and PSUBSCRIBE working in MULTI for backward compatibility only).
fn ssubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.deny_blocking {
        return Err(CmdError::msg(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    subscribe_to(ctx, args, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Shard)
}

/// Where a (un)subscribe confirmation goes: the EXEC reply when nested, else the client's
/// pending pushes.
fn confirm(ctx: &mut Ctx<'_>, what: &[u8], name: Option<&[u8]>, count: usize) {
    if ctx.deny_blocking {
        write_confirm(&mut ctx.out, what, name, count);
    } else {
        let proto = ctx.client.proto;
        write_confirm(
            &mut Reply::new(&mut ctx.client.pushes, proto),
            what,
            name,
            count,
        );
    }
}

/// `[what, name or null, count]` as a push (an array in RESP2).
fn write_confirm(out: &mut Reply<'_>, what: &[u8], name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk(what);
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.int(count as i64);
}

/// Subscribes to every argument, confirming each (also repeats, with an unchanged count).
/// Shard channels' locks (taken for their key specs) are not needed.
fn subscribe_to(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    release_locks(ctx);
    let hub = ctx.srv.pubsub();
    for name in args.iter().skip(1) {
        hub.subscribe(ctx.client, kind, name);
        let count = ctx.client.subs.count(kind);
        confirm(ctx, kind.subscribe_name(), Some(name), count);
    }
    Ok(())
}

/// Unsubscribes from the arguments, or from everything of `kind` without arguments; with
/// nothing to leave it still confirms once, with a null name.
fn unsubscribe_from(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    release_locks(ctx);
    let hub = ctx.srv.pubsub();
    let names: Vec<Box<[u8]>> = if args.len() > 1 {
        args.iter().skip(1).map(Box::from).collect()
    } else {
        ctx.client.subs.names(kind)
    };
    if names.is_empty() {
        let count = ctx.client.subs.count(kind);
        confirm(ctx, kind.unsubscribe_name(), None, count);
    }
    for name in names {
        hub.unsubscribe(ctx.client, kind, &name);
        let count = ctx.client.subs.count(kind);
        confirm(ctx, kind.unsubscribe_name(), Some(&name), count);
    }
    Ok(())
}

fn publish(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    publish_on(ctx, args, false)
}

fn spublish(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    publish_on(ctx, args, true)
}

/// Replies with the number of clients that received the message. SPUBLISH's channel is a
/// key for cluster routing only: its shard lock is released before anything is sent.
fn publish_on(ctx: &mut Ctx<'_>, args: Args<'_>, shard: bool) -> CmdResult {
    release_locks(ctx);
    ctx.propagate_to_replicas();
    let worker = ctx.client.shared.worker;
    let n = ctx.srv.pubsub().publish(
        ctx.srv,
        shard,
        args.get(1),
        args.get(2),
        Some(ctx.client),
        Some(worker),
    );
    ctx.out.int(n as i64);
    Ok(())
}

/// The subcommands with an optional pattern take at most one argument after the name,
/// checked here as Redis does (their table arity allows more).
fn at_most_one_arg(args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::msg(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(args.get(1))
        )));
    }
    Ok(())
}

fn list_names(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    at_most_one_arg(args)?;
    let names = ctx.srv.pubsub().names(kind, args.try_get(2));
    ctx.out.array(names.len());
    for n in &names {
        ctx.out.bulk(n);
    }
    Ok(())
}

/// PUBSUB CHANNELS [pattern].
fn channels(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    list_names(ctx, args, Kind::Channel)
}

/// PUBSUB SHARDCHANNELS [pattern].
fn shardchannels(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    list_names(ctx, args, Kind::Shard)
}

/// Name, subscriber count pairs, as a flat array (a map in neither protocol, as in Redis).
fn counts(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    let hub = ctx.srv.pubsub();
    ctx.out.array((args.len() - 2) * 2);
    for name in args.iter().skip(2) {
        ctx.out.bulk(name);
        ctx.out.int(hub.numsub(kind, name) as i64);
    }
    Ok(())
}

/// PUBSUB NUMSUB [channel ...]: pattern subscribers are not counted.
fn numsub(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    counts(ctx, args, Kind::Channel)
}

/// PUBSUB SHARDNUMSUB [shardchannel ...].
fn shardnumsub(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    counts(ctx, args, Kind::Shard)
}

/// PUBSUB NUMPAT: distinct patterns, whoever subscribes to them.
fn numpat(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let (_, patterns, _) = ctx.srv.pubsub().counts();
    ctx.out.int(patterns as i64);
    Ok(())
}

/// PUBSUB HELP.
fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    const LINES: &[&str] = &[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    List the channels that have subscribers, optionally only those matching a glob \
         <pattern>.",
        "NUMPAT",
        "    Count the distinct patterns clients subscribe to.",
        "NUMSUB [<channel> ...]",
        "    Count each channel's subscribers (pattern subscriptions are not counted).",
        "SHARDCHANNELS [<pattern>]",
        "    List the shard channels that have subscribers, optionally only those matching a \
         glob <pattern>.",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Count each shard channel's subscribers.",
        "HELP",
        "    Print this help.",
    ];
    ctx.help(LINES);
    Ok(())
}
