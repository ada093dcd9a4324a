//! Stream consumer groups: XGROUP, XREADGROUP (BLOCK through [`crate::blocking`]), XACK,
//! XPENDING, XCLAIM, XAUTOCLAIM, XINFO GROUPS / CONSUMERS and the groups part of XINFO
//! STREAM FULL.
//!
//! Groups, their pending entries lists (PELs) and consumers live in
//! [`flowkv_store::stream_value::ConsumerGroup`]; this file parses arguments, applies Redis
//! 7.0's rules (delivery counts, idle times, the read counter behind the lag) and writes its
//! exact replies and errors. Like Redis 7.0, only XGROUP fires keyspace events
//! (`xgroup-create`, `-createconsumer`, `-delconsumer`, `-destroy`, `-setid`), also when
//! XREADGROUP, XCLAIM or XAUTOCLAIM create a consumer.

use std::sync::Arc;

use flowkv_protocol::{Args, Reply};
use flowkv_store::num::parse_i64;
use flowkv_store::stream_value::{ConsumerGroup, StreamId, StreamValue};
use flowkv_store::{Entry, Keys, Value, ValueMut, ValueRef};

use crate::blocking::{self, FamilyWait, Served, WaitOp};
use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::commands::stream::{
    parse_id, parse_interval, parse_read_args, parse_strict_id, stream_mut, stream_of,
    subcommand_syntax, wake_waiters, write_entries, write_entry, xread_keys, ReadArgs,
    BLOCKED_DEFAULT_COUNT,
};
use crate::commands::string::int_arg;
use crate::config::notify::STREAM;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;
use crate::server::Server;

/// An XGROUP subcommand (all run [`xgroup`] on the key at argument 2).
const fn xgroup_sub(
    name: &'static str,
    arity: i32,
    flags: u32,
    key_spec: &'static [ks::KeySpecDef],
    doc: (&'static str, &'static str, &'static str),
) -> Command {
    Command::new(name, arity, Group::Stream)
        .flags(flags)
        .acl(acl::STREAM)
        .keys(2, 2, 1)
        .key_specs(key_spec)
        .handler(xgroup)
        .doc(doc.0, doc.1, doc.2)
}

pub static COMMANDS: &[Command] = &[
    Command::new("xgroup", -2, Group::Stream)
        .doc(
            "A container for consumer groups commands",
            "5.0.0",
            "Depends on subcommand.",
        )
        .subcommands(&[
            xgroup_sub(
                "create",
                -5,
                WRITE | DENYOOM,
                &[ks::key_at(2, ks::RW | ks::INSERT)],
                ("Create a consumer group.", "5.0.0", "O(1)"),
            ),
            xgroup_sub(
                "createconsumer",
                5,
                WRITE | DENYOOM,
                &[ks::key_at(2, ks::RW | ks::INSERT)],
                ("Create a consumer in a consumer group.", "6.2.0", "O(1)"),
            ),
            xgroup_sub(
                "delconsumer",
                5,
                WRITE,
                &[ks::key_at(2, ks::RW | ks::DELETE)],
                ("Delete a consumer from a consumer group.", "5.0.0", "O(1)"),
            ),
            xgroup_sub(
                "destroy",
                4,
                WRITE,
                &[ks::key_at(2, ks::RW | ks::DELETE)],
                (
                    "Destroy a consumer group.",
                    "5.0.0",
                    "O(N) where N is the number of entries in the group's pending entries list (PEL).",
                ),
            ),
            Command::new("help", 2, Group::Stream)
                .flags(LOADING | STALE)
                .acl(acl::STREAM)
                .handler(xgroup_help)
                .doc(
                    "Show helpful text about the different subcommands",
                    "5.0.0",
                    "O(1)",
                ),
            xgroup_sub(
                "setid",
                -5,
                WRITE,
                &[ks::key_at(2, ks::RW | ks::UPDATE)],
                (
                    "Set a consumer group to an arbitrary last delivered ID value.",
                    "5.0.0",
                    "O(1)",
                ),
            ),
        ]),
    Command::new("xreadgroup", -7, Group::Stream)
        .flags(BLOCKING | WRITE)
        .acl(acl::STREAM)
        .movable_keys(xread_keys)
        .key_specs(&[ks::spec(
            ks::RO | ks::ACCESS,
            ks::keyword("STREAMS", 4),
            ks::range(-1, 1, 2),
        )])
        .handler(xreadgroup)
        .doc(
            "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.",
            "5.0.0",
            "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data.",
        ),
    Command::new("xack", -4, Group::Stream)
        .flags(WRITE | FAST)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::UPDATE)])
        .handler(xack)
        .doc(
            "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.",
            "5.0.0",
            "O(1) for each message ID processed.",
        ),
    Command::new("xpending", -3, Group::Stream)
        .flags(READONLY)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RO | ks::ACCESS)])
        .tips(&["nondeterministic_output"])
        .handler(xpending)
        .doc(
            "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.",
            "5.0.0",
            "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.",
        ),
    Command::new("xclaim", -6, Group::Stream)
        .flags(WRITE | FAST)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::UPDATE)])
        .tips(&["nondeterministic_output"])
        .handler(xclaim)
        .doc(
            "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.",
            "5.0.0",
            "O(log N) with N being the number of messages in the PEL of the consumer group.",
        ),
    Command::new("xautoclaim", -6, Group::Stream)
        .flags(WRITE | FAST)
        .acl(acl::STREAM)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::DELETE)])
        .tips(&["nondeterministic_output"])
        .handler(xautoclaim)
        .doc(
            "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.",
            "6.2.0",
            "O(1) if COUNT is small.",
        ),
];

/// XAUTOCLAIM visits at most this many PEL entries per entry it may claim.
const AUTOCLAIM_ATTEMPTS_FACTOR: i64 = 10;

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// NOGROUP as XPENDING, XCLAIM and XAUTOCLAIM word it.
fn no_key_or_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        lossy(key),
        lossy(group)
    ))
}

/// NOGROUP as XGROUP and XINFO CONSUMERS word it.
fn no_group_for_key(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        lossy(group),
        lossy(key)
    ))
}

fn write_id(out: &mut Reply<'_>, id: StreamId) {
    out.bulk(id.to_string().as_bytes());
}

/// Milliseconds from `then` to `now`, never negative.
fn elapsed(now_ms: u64, then_ms: u64) -> i64 {
    now_ms.saturating_sub(then_ms).min(i64::MAX as u64) as i64
}

/// XGROUP HELP.
fn xgroup_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.help(&[
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Prints this help.",
    ]);
    Ok(())
}

/// The XGROUP subcommands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sub {
    Create,
    SetId,
    Destroy,
    CreateConsumer,
    DelConsumer,
}

/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n] / SETID key group id|$
/// [ENTRIESREAD n] / DESTROY key group / CREATECONSUMER key group consumer / DELCONSUMER key
/// group consumer. Checks run in Redis's order: options, key type, key and group existence,
/// then the subcommand's argument count.
fn xgroup(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = args.get(1);
    let sub = [
        (&b"create"[..], Sub::Create),
        (b"setid", Sub::SetId),
        (b"destroy", Sub::Destroy),
        (b"createconsumer", Sub::CreateConsumer),
        (b"delconsumer", Sub::DelConsumer),
    ]
    .into_iter()
    .find(|(n, _)| name.eq_ignore_ascii_case(n))
    .map(|(_, s)| s)
    .ok_or_else(|| subcommand_syntax(args, "XGROUP"))?;
    let mut mkstream = false;
    let mut entries_read = None;
    let mut i = 5;
    while i < args.len() {
        let a = args.get(i);
        if sub == Sub::Create && a.eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if matches!(sub, Sub::Create | Sub::SetId)
            && a.eq_ignore_ascii_case(b"entriesread")
            && i + 1 < args.len()
        {
            let n = int_arg(args.get(i + 1))?;
            if n < -1 {
                return Err(CmdError::msg(
                    "ERR value for ENTRIESREAD must be positive or -1",
                ));
            }
            entries_read = u64::try_from(n).ok();
            i += 2;
        } else {
            return Err(subcommand_syntax(args, "XGROUP"));
        }
    }
    let (key, group) = (args.get(2), args.get(3));
    let argc_ok = match sub {
        Sub::Create => args.len() <= 8,
        Sub::SetId => args.len() == 5 || args.len() == 7,
        Sub::Destroy => args.len() == 4,
        Sub::CreateConsumer | Sub::DelConsumer => args.len() == 5,
    };
    let now = ctx.now_ms;
    let event = {
        let (mut keys, out) = ctx.keys_out();
        let exists = match keys.write(key) {
            Some(e) => Some(stream_mut(e)?.group(group).is_some()),
            None => None,
        };
        match exists {
            None if !mkstream => {
                return Err(CmdError::msg(
                    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
                ))
            }
            Some(false) if matches!(sub, Sub::SetId | Sub::CreateConsumer | Sub::DelConsumer) => {
                return Err(no_group_for_key(key, group))
            }
            _ => {}
        }
        if !argc_ok {
            return Err(subcommand_syntax(args, "XGROUP"));
        }
        if exists.is_none() {
            let s = Box::new(StreamValue::new());
            keys.insert(Entry::new_value(key, Value::Stream(s), None, 0));
        }
        let s = stream_mut(keys.write(key).ok_or(CmdError::NoSuchKey)?)?;
        xgroup_apply(s, sub, args, entries_read, now, out)?
    };
    if let Some(event) = event {
        ctx.dirty += 1;
        notify(ctx, STREAM, event, key);
        if sub == Sub::Destroy {
            // Clients blocked in XREADGROUP on this group now get -NOGROUP.
            wake_waiters(ctx, key);
        }
    }
    Ok(())
}

/// Runs an XGROUP subcommand on stream `s` (whose group exists where the subcommand needs
/// it) and writes its reply. Returns the keyspace event to fire when it changed something.
fn xgroup_apply(
    s: &mut StreamValue,
    sub: Sub,
    args: Args<'_>,
    entries_read: Option<u64>,
    now: u64,
    out: &mut Reply<'_>,
) -> Result<Option<&'static str>, CmdError> {
    let group = args.get(3);
    let event = match sub {
        Sub::Create | Sub::SetId => {
            let id = match args.get(4) {
                b"$" => s.last_id,
                arg if sub == Sub::Create => parse_strict_id(arg)?,
                arg => parse_id(arg)?,
            };
            if sub == Sub::Create {
                if !s.add_group(group, ConsumerGroup::new(id, entries_read)) {
                    return Err(CmdError::msg(
                        "BUSYGROUP Consumer Group name already exists",
                    ));
                }
                out.ok();
                Some("xgroup-create")
            } else {
                let g = s.group_mut(group).ok_or(CmdError::Syntax)?;
                g.last_id = id;
                g.entries_read = entries_read;
                out.ok();
                Some("xgroup-setid")
            }
        }
        Sub::Destroy => {
            let removed = s.remove_group(group);
            out.int(i64::from(removed));
            removed.then_some("xgroup-destroy")
        }
        Sub::CreateConsumer => {
            let g = s.group_mut(group).ok_or(CmdError::Syntax)?;
            let created = g.create_consumer(args.get(4), now).is_some();
            out.int(i64::from(created));
            created.then_some("xgroup-createconsumer")
        }
        Sub::DelConsumer => {
            let g = s.group_mut(group).ok_or(CmdError::Syntax)?;
            let pending = g.delete_consumer(args.get(4));
            out.int(pending.unwrap_or(0) as i64);
            pending.map(|_| "xgroup-delconsumer")
        }
    };
    Ok(event)
}

/// What one stream of an XREADGROUP asks for.
#[derive(Clone, Copy)]
enum Want {
    /// `>`: entries never delivered to the group.
    New,
    /// An ID: the consumer's own pending entries above it.
    History(StreamId),
}

/// One read of new entries for a group: whether it created the consumer, and the IDs it
/// delivered.
#[derive(Default)]
struct NewRead {
    created: bool,
    ids: Vec<StreamId>,
}

/// Delivers to `consumer` the entries after group `group`'s last ID (at most `count`, 0 for
/// all), writing them as an entries array: they become pending for it unless `noack`.
fn read_new(
    s: &mut StreamValue,
    group: &[u8],
    consumer: &[u8],
    noack: bool,
    count: usize,
    now: u64,
    out: &mut Reply<'_>,
) -> NewRead {
    let Some(g) = s.group_mut(group) else {
        return NewRead::default();
    };
    let (cid, created) = g.consumer_for(consumer, now);
    let start = g.last_id.incr().unwrap_or(StreamId::MAX);
    let entries = s.range(start, StreamId::MAX, false, count);
    write_entries(out, &entries);
    let ids: Vec<StreamId> = entries.iter().map(|e| e.id).collect();
    s.group_read(group, &ids, (!noack).then_some(cid), now);
    if !noack && !ids.is_empty() {
        if let Some(g) = s.group_mut(group) {
            g.mark_active(cid, now);
        }
    }
    NewRead { created, ids }
}

/// What a read of new entries propagates instead of the XREADGROUP, as in Redis 7.0, so a
/// replica or an AOF replay ends with the group as it is here whatever its clock: each
/// entry delivered for acknowledgement as `XCLAIM key group consumer 0 id TIME t
/// RETRYCOUNT n FORCE JUSTID LASTID id` (its pending entry as it now is); a NOACK read as
/// `XGROUP SETID key group last-id ENTRIESREAD n`, after `XGROUP CREATECONSUMER` if it
/// made the consumer (no XCLAIM will). Empty while nothing consumes propagation.
fn read_effects(
    s: &StreamValue,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    noack: bool,
    read: &NewRead,
) -> Vec<Vec<Vec<u8>>> {
    let Some(g) = s.group(group).filter(|_| crate::propagate::active()) else {
        return Vec::new();
    };
    let num = |n: &dyn std::fmt::Display| n.to_string().into_bytes();
    let mut effects = Vec::new();
    if noack {
        if read.created {
            effects.push(vec![
                b"XGROUP".to_vec(),
                b"CREATECONSUMER".to_vec(),
                key.to_vec(),
                group.to_vec(),
                consumer.to_vec(),
            ]);
        }
        if !read.ids.is_empty() {
            let entries_read = g.entries_read.map_or(-1, |n| n as i64);
            effects.push(vec![
                b"XGROUP".to_vec(),
                b"SETID".to_vec(),
                key.to_vec(),
                group.to_vec(),
                num(&g.last_id),
                b"ENTRIESREAD".to_vec(),
                num(&entries_read),
            ]);
        }
        return effects;
    }
    for &id in &read.ids {
        let Some(p) = g.pending(id) else { continue };
        effects.push(vec![
            b"XCLAIM".to_vec(),
            key.to_vec(),
            group.to_vec(),
            consumer.to_vec(),
            b"0".to_vec(),
            num(&id),
            b"TIME".to_vec(),
            num(&p.delivery_time_ms),
            b"RETRYCOUNT".to_vec(),
            num(&p.delivery_count),
            b"FORCE".to_vec(),
            b"JUSTID".to_vec(),
            b"LASTID".to_vec(),
            num(&id),
        ]);
    }
    effects
}

/// Serves `consumer`'s history: its pending entries from `start` on (at most `count`, 0 for
/// all), each delivered once more; an entry deleted since shows as `[id, nil]`. Returns true
/// if the read created the consumer.
fn read_history(
    s: &mut StreamValue,
    group: &[u8],
    consumer: &[u8],
    start: StreamId,
    count: usize,
    now: u64,
    out: &mut Reply<'_>,
) -> bool {
    let Some(g) = s.group_mut(group) else {
        return false;
    };
    let (cid, created) = g.consumer_for(consumer, now);
    let limit = if count == 0 { usize::MAX } else { count };
    let ids: Vec<StreamId> = g.consumer(cid).pending_from(start).take(limit).collect();
    out.array(ids.len());
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        match s.entry(id) {
            Some(e) => {
                write_entry(out, &e);
                found.push(id);
            }
            None => {
                out.array(2);
                write_id(out, id);
                out.null_array();
            }
        }
    }
    if let Some(g) = s.group_mut(group) {
        for id in found {
            g.redeliver(id, now);
        }
    }
    created
}

/// XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...
fn xreadgroup(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let ReadArgs {
        count,
        deadline,
        group,
        noack,
        keys: names,
        ids: id_args,
    } = parse_read_args(args, ctx.now_ms, true, ctx.in_script)?;
    let (group, consumer) = group.ok_or(CmdError::Syntax)?;
    let now = ctx.now_ms;
    let mut wants = Vec::with_capacity(names.len());
    let mut created: Vec<&[u8]> = Vec::new();
    let mut effects = Vec::new();
    let mut served = 0u64;
    {
        let (mut keys, out) = ctx.keys_out();
        for (&key, &arg) in names.iter().zip(&id_args) {
            let s = keys.read(key).map(stream_of).transpose()?;
            if s.and_then(|s| s.group(group)).is_none() {
                return Err(CmdError::msg(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    lossy(key),
                    lossy(group)
                )));
            }
            wants.push(match arg {
                b"$" => return Err(CmdError::msg("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.")),
                b">" => Want::New,
                // Redis encodes `>` as the largest ID, so that ID given explicitly means `>`.
                _ => match parse_strict_id(arg)? {
                    StreamId::MAX => Want::New,
                    id => Want::History(id),
                },
            });
        }
        // Which streams answer now: history always, `>` when there is something new.
        let ready: Vec<usize> = (0..names.len())
            .filter(|&j| match wants[j] {
                Want::History(_) => true,
                Want::New => keys
                    .peek(names[j])
                    .and_then(|e| stream_of(e).ok())
                    .and_then(|s| Some((s.edge_id(true)?, s.group(group)?.last_id)))
                    .is_some_and(|(top, last)| top > last),
            })
            .collect();
        if !ready.is_empty() {
            if out.is_resp3() {
                out.map(ready.len());
            } else {
                out.array(ready.len());
            }
            for j in ready {
                let s = stream_mut(keys.write(names[j]).ok_or(CmdError::NoSuchKey)?)?;
                if !out.is_resp3() {
                    out.array(2);
                }
                out.bulk(names[j]);
                let created_now = match wants[j] {
                    Want::New => {
                        let read = read_new(s, group, consumer, noack, count, now, out);
                        effects.extend(read_effects(s, names[j], group, consumer, noack, &read));
                        read.created
                    }
                    // As in Redis, re-delivering history is not propagated.
                    Want::History(id) => {
                        let start = id.incr().unwrap_or(StreamId::MAX);
                        read_history(s, group, consumer, start, count, now, out)
                    }
                };
                if created_now {
                    created.push(names[j]);
                }
                served += 1;
            }
        }
    }
    ctx.dirty += served + created.len() as u64;
    ctx.prevent_propagation();
    for cmd in &effects {
        ctx.also_propagate(cmd);
    }
    for key in created {
        notify(ctx, STREAM, "xgroup-createconsumer", key);
    }
    if served > 0 {
        return Ok(());
    }
    let Some(deadline) = deadline else {
        ctx.out.null_array();
        return Ok(());
    };
    let op = WaitOp::Family(Arc::new(XReadGroupWait {
        group: group.into(),
        consumer: consumer.into(),
        noack,
        count: if count == 0 {
            BLOCKED_DEFAULT_COUNT
        } else {
            count
        },
    }));
    blocking::block(ctx, &names, op, deadline);
    Ok(())
}

/// A blocked XREADGROUP (always for `>`): served when a stream gets an entry above its
/// group's last ID, first come first served among the group's waiters. A stream deleted or
/// replaced meanwhile answers `-UNBLOCKED`, a destroyed group `-NOGROUP`, as in Redis 7.0.
#[derive(Debug)]
struct XReadGroupWait {
    group: Box<[u8]>,
    consumer: Box<[u8]>,
    noack: bool,
    count: usize,
}

impl FamilyWait for XReadGroupWait {
    /// True if there is something new for the group, or an error to give.
    fn can_serve(&self, keys: &mut Keys<'_, '_>, key: &[u8]) -> bool {
        match keys.peek(key).map(Entry::value) {
            Some(ValueRef::Stream(s)) => s.group(&self.group).is_none_or(|g| s.last_id > g.last_id),
            _ => true,
        }
    }

    fn serve(
        &self,
        srv: &Server,
        keys: &mut Keys<'_, '_>,
        key: &[u8],
        out: &mut Reply<'_>,
    ) -> Served {
        let now = keys.now_ms();
        let Some(ValueMut::Stream(s)) = keys.write(key).and_then(Entry::value_mut) else {
            srv.count_error("UNBLOCKED");
            out.error("UNBLOCKED the stream key no longer exists");
            return Served::Done(0);
        };
        match s.group(&self.group) {
            None => {
                srv.count_error("NOGROUP");
                out.error("NOGROUP the consumer group this client was blocked on no longer exists");
                return Served::Done(0);
            }
            Some(g) if s.last_id <= g.last_id => return Served::NotReady,
            Some(_) => {}
        }
        if out.is_resp3() {
            out.map(1);
        } else {
            out.array(1);
            out.array(2);
        }
        out.bulk(key);
        let (group, consumer) = (&*self.group, &*self.consumer);
        let read = read_new(s, group, consumer, self.noack, self.count, now, out);
        let effects = read_effects(s, key, group, consumer, self.noack, &read);
        if read.created {
            keys.notify(STREAM, "xgroup-createconsumer", key);
        }
        crate::propagate::emit_all(keys.db_index(), &effects);
        Served::Done(1 + u64::from(read.created))
    }

    /// Waiters of other groups, or of this one after it caught up, may still be servable.
    fn holds_queue(&self) -> bool {
        false
    }
}

/// XACK key group id...: how many of the IDs were pending (and no longer are).
fn xack(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let acked = {
        let mut keys = ctx.keys();
        let Some(e) = keys.write(args.get(1)) else {
            ctx.out.int(0);
            return Ok(());
        };
        let Some(g) = stream_mut(e)?.group_mut(args.get(2)) else {
            ctx.out.int(0);
            return Ok(());
        };
        // All IDs parse before any is acknowledged: all or nothing.
        let ids = args
            .iter()
            .skip(3)
            .map(parse_strict_id)
            .collect::<Result<Vec<_>, _>>()?;
        ids.into_iter().filter(|&id| g.ack(id)).count() as u64
    };
    ctx.dirty += acked;
    ctx.out.int(acked as i64);
    Ok(())
}

/// XPENDING's extended form.
struct PendingQuery<'a> {
    min_idle: i64,
    start: StreamId,
    end: StreamId,
    count: usize,
    consumer: Option<&'a [u8]>,
}

/// Parses XPENDING's `[IDLE ms] start end count [consumer]`, in Redis's order of checks.
fn parse_pending_query(args: Args<'_>) -> Result<Option<PendingQuery<'_>>, CmdError> {
    let n = args.len();
    if n != 3 && !(6..=9).contains(&n) {
        return Err(CmdError::Syntax);
    }
    if n == 3 {
        return Ok(None);
    }
    let mut at = 3;
    let mut min_idle = 0;
    if args.get(3).eq_ignore_ascii_case(b"idle") {
        min_idle = int_arg(args.get(4))?;
        if n < 8 {
            return Err(CmdError::Syntax);
        }
        at = 5;
    }
    let count = usize::try_from(int_arg(args.get(at + 2))?.max(0)).unwrap_or(usize::MAX);
    let (mut start, ex) = parse_interval(args.get(at), 0)?;
    if ex {
        start = start
            .incr()
            .ok_or(CmdError::msg("ERR invalid start ID for the interval"))?;
    }
    let (mut end, ex) = parse_interval(args.get(at + 1), u64::MAX)?;
    if ex {
        end = end
            .decr()
            .ok_or(CmdError::msg("ERR invalid end ID for the interval"))?;
    }
    Ok(Some(PendingQuery {
        min_idle,
        start,
        end,
        count,
        consumer: args.try_get(at + 3),
    }))
}

/// XPENDING key group [[IDLE ms] start end count [consumer]]: the PEL summary (count,
/// smallest and largest ID, pending count per consumer), or its entries as
/// `[id, consumer, idle ms, deliveries]`.
fn xpending(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let query = parse_pending_query(args)?;
    let (key, group) = (args.get(1), args.get(2));
    let now = ctx.now_ms;
    let (mut keys, out) = ctx.keys_out();
    let s = keys.read(key).map(stream_of).transpose()?;
    let g = s
        .and_then(|s| s.group(group))
        .ok_or_else(|| no_key_or_group(key, group))?;
    let Some(q) = query else {
        out.array(4);
        out.int(g.pending_len() as i64);
        let (Some((first, _)), Some((last, _))) = (
            g.pending_range(StreamId::MIN, StreamId::MAX).next(),
            g.pending_range(StreamId::MIN, StreamId::MAX).next_back(),
        ) else {
            out.null();
            out.null();
            out.null_array();
            return Ok(());
        };
        write_id(out, first);
        write_id(out, last);
        let owners: Vec<_> = g.consumers().filter(|(_, c)| c.pending_len() > 0).collect();
        out.array(owners.len());
        for (_, c) in owners {
            out.array(2);
            out.bulk(c.name());
            out.bulk(c.pending_len().to_string().as_bytes());
        }
        return Ok(());
    };
    let ids: Box<dyn Iterator<Item = StreamId>> = match q.consumer {
        None => Box::new(g.pending_range(q.start, q.end).map(|(id, _)| id)),
        Some(name) => match g.find_consumer(name) {
            None => {
                out.array(0);
                return Ok(());
            }
            Some(cid) => Box::new(
                g.consumer(cid)
                    .pending_from(q.start)
                    .take_while(|&id| id <= q.end),
            ),
        },
    };
    let rows: Vec<_> = ids
        .filter_map(|id| g.pending(id).map(|p| (id, p)))
        .filter(|(_, p)| {
            q.min_idle == 0 || (now as i64).wrapping_sub(p.delivery_time_ms as i64) >= q.min_idle
        })
        .take(q.count)
        .collect();
    out.array(rows.len());
    for (id, p) in rows {
        out.array(4);
        write_id(out, id);
        out.bulk(g.consumer(p.consumer).name());
        out.int(elapsed(now, p.delivery_time_ms));
        out.int(p.delivery_count as i64);
    }
    Ok(())
}

/// Checks that `key` holds a stream with group `group` (XCLAIM, XAUTOCLAIM).
fn check_group(ctx: &mut Ctx<'_>, key: &[u8], group: &[u8]) -> CmdResult {
    let mut keys = ctx.keys();
    let s = keys.read(key).map(stream_of).transpose()?;
    match s.and_then(|s| s.group(group)) {
        Some(_) => Ok(()),
        None => Err(no_key_or_group(key, group)),
    }
}

/// XCLAIM's options.
#[derive(Default)]
struct ClaimOpts {
    /// Delivery time to set (from IDLE or TIME), `None` for now.
    time: Option<i64>,
    retry_count: Option<u64>,
    force: bool,
    justid: bool,
    last_id: StreamId,
}

/// Parses XCLAIM's options from argument `from` on.
fn parse_claim_opts(args: Args<'_>, from: usize, now: u64) -> Result<ClaimOpts, CmdError> {
    let mut o = ClaimOpts::default();
    let num = |arg: &[u8], what: &str| {
        parse_i64(arg)
            .ok_or_else(|| CmdError::msg(format!("ERR Invalid {what} option argument for XCLAIM")))
    };
    let mut j = from;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j);
        if opt.eq_ignore_ascii_case(b"force") {
            o.force = true;
        } else if opt.eq_ignore_ascii_case(b"justid") {
            o.justid = true;
        } else if opt.eq_ignore_ascii_case(b"idle") && more > 0 {
            j += 1;
            o.time = Some((now as i64).wrapping_sub(num(args.get(j), "IDLE")?));
        } else if opt.eq_ignore_ascii_case(b"time") && more > 0 {
            j += 1;
            o.time = Some(num(args.get(j), "TIME")?);
        } else if opt.eq_ignore_ascii_case(b"retrycount") && more > 0 {
            j += 1;
            o.retry_count = u64::try_from(num(args.get(j), "RETRYCOUNT")?).ok();
        } else if opt.eq_ignore_ascii_case(b"lastid") && more > 0 {
            j += 1;
            o.last_id = parse_strict_id(args.get(j))?;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                lossy(opt)
            )));
        }
        j += 1;
    }
    Ok(o)
}

/// XCLAIM key group consumer min-idle-time id... [IDLE ms] [TIME ms] [RETRYCOUNT n] [FORCE]
/// [JUSTID] [LASTID id]: makes `consumer` the owner of those pending entries idle at least
/// min-idle-time; entries deleted from the stream leave the PEL.
fn xclaim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, group, consumer) = (args.get(1), args.get(2), args.get(3));
    check_group(ctx, key, group)?;
    let min_idle = parse_i64(args.get(4))
        .ok_or(CmdError::msg(
            "ERR Invalid min-idle-time argument for XCLAIM",
        ))?
        .max(0);
    // IDs up to the first argument that isn't one; options follow.
    let ids: Vec<StreamId> = args
        .iter()
        .skip(5)
        .map_while(|a| parse_strict_id(a).ok())
        .collect();
    let now = ctx.now_ms;
    let o = parse_claim_opts(args, 5 + ids.len(), now)?;
    // A delivery time in the future is taken as now, against the clock (an AOF replays
    // with the command time at 0, and its XCLAIMs carry the times to restore).
    let time = match o.time {
        Some(t) if t >= 0 && t as u64 <= crate::server::unix_ms() => t as u64,
        _ => now,
    };
    let mut dirty = 0u64;
    let mut created = false;
    let mut claimed = Vec::new();
    {
        let (mut keys, out) = ctx.keys_out();
        let s = stream_mut(keys.write(key).ok_or_else(|| no_key_or_group(key, group))?)?;
        let mut owner = None;
        let mut last_id_moved = false;
        if let Some(g) = s.group_mut(group) {
            if o.last_id > g.last_id {
                g.last_id = o.last_id;
                last_id_moved = true;
            }
        }
        for id in ids {
            let exists = s.entry(id).is_some();
            let Some(g) = s.group_mut(group) else { break };
            let pending = g.pending(id).copied();
            if !exists {
                // Gone from the stream: it leaves the PEL too.
                if pending.is_some() {
                    g.ack(id);
                    dirty += 1;
                }
                continue;
            }
            let prev_count = match pending {
                Some(p) => {
                    if min_idle > 0
                        && (now as i64).wrapping_sub(p.delivery_time_ms as i64) < min_idle
                    {
                        continue;
                    }
                    p.delivery_count
                }
                None if o.force => 1,
                None => continue,
            };
            let cid = *owner.get_or_insert_with(|| {
                let (cid, new) = g.consumer_for(consumer, now);
                created = new;
                cid
            });
            let count = match o.retry_count {
                Some(n) => n,
                None if o.justid => prev_count,
                None => prev_count + 1,
            };
            g.claim(id, cid, time, count);
            g.mark_active(cid, now);
            claimed.push(id);
            dirty += 1;
        }
        if last_id_moved && dirty == 0 {
            dirty += 1;
        }
        out.array(claimed.len());
        for &id in &claimed {
            match (o.justid, s.entry(id)) {
                (false, Some(e)) => write_entry(out, &e),
                _ => write_id(out, id),
            }
        }
    }
    ctx.dirty += dirty + u64::from(created);
    if created {
        notify(ctx, STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT n] [JUSTID]: claims up to `n`
/// (default 100) pending entries from `start` on that are idle at least min-idle-time,
/// visiting at most 10 × `n` of them. Replies [next cursor, claimed, IDs deleted from the
/// stream (removed from the PEL)].
fn xautoclaim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, group, consumer) = (args.get(1), args.get(2), args.get(3));
    let min_idle = parse_i64(args.get(4))
        .ok_or(CmdError::msg(
            "ERR Invalid min-idle-time argument for XAUTOCLAIM",
        ))?
        .max(0);
    let (mut start, ex) = parse_interval(args.get(5), 0)?;
    if ex {
        start = start
            .incr()
            .ok_or(CmdError::msg("ERR invalid start ID for the interval"))?;
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let opt = args.get(j);
        if opt.eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            count = parse_i64(args.get(j + 1))
                .filter(|n| (1..=i64::MAX / 16).contains(n))
                .ok_or(CmdError::msg("ERR COUNT must be > 0"))?;
            j += 1;
        } else if opt.eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    check_group(ctx, key, group)?;
    let now = ctx.now_ms;
    let mut attempts = count * AUTOCLAIM_ATTEMPTS_FACTOR;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut created = false;
    let (mut keys, out) = ctx.keys_out();
    let s = stream_mut(keys.write(key).ok_or_else(|| no_key_or_group(key, group))?)?;
    let mut owner = None;
    let mut cursor = Some(start);
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let Some(from) = cursor else { break };
        let next = s
            .group(group)
            .and_then(|g| g.pending_range(from, StreamId::MAX).next())
            .map(|(id, p)| (id, *p));
        let Some((id, p)) = next else {
            cursor = None;
            break;
        };
        cursor = id.incr();
        let exists = s.entry(id).is_some();
        let Some(g) = s.group_mut(group) else { break };
        if !exists {
            g.ack(id);
            deleted.push(id);
            count -= 1;
            continue;
        }
        if min_idle > 0 && (now as i64).wrapping_sub(p.delivery_time_ms as i64) < min_idle {
            continue;
        }
        let cid = *owner.get_or_insert_with(|| {
            let (cid, new) = g.consumer_for(consumer, now);
            created = new;
            cid
        });
        let deliveries = p.delivery_count + u64::from(!justid);
        g.claim(id, cid, now, deliveries);
        g.mark_active(cid, now);
        claimed.push(id);
        count -= 1;
    }
    // The cursor: the next pending ID after the last one visited, 0-0 at the end.
    let next = cursor
        .and_then(|from| s.group(group)?.pending_range(from, StreamId::MAX).next())
        .map_or(StreamId::MIN, |(id, _)| id);
    out.array(3);
    write_id(out, next);
    out.array(claimed.len());
    for &id in &claimed {
        match (justid, s.entry(id)) {
            (false, Some(e)) => write_entry(out, &e),
            _ => write_id(out, id),
        }
    }
    out.array(deleted.len());
    for &id in &deleted {
        write_id(out, id);
    }
    let dirty = (claimed.len() + deleted.len()) as u64 + u64::from(created);
    ctx.dirty += dirty;
    if created {
        notify(ctx, STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}

/// The read counter and lag of a group: integers, or nulls when unknown.
fn write_counters(out: &mut Reply<'_>, s: &StreamValue, g: &ConsumerGroup) {
    out.bulk(b"entries-read");
    match g.entries_read {
        Some(n) => out.int(n as i64),
        None => out.null(),
    }
    out.bulk(b"lag");
    match s.lag(g) {
        Some(n) => out.int(n as i64),
        None => out.null(),
    }
}

/// XINFO GROUPS key: each group's name, consumers, pending count, last delivered ID, read
/// counter and lag.
pub(crate) fn xinfo_groups(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let s = stream_of(keys.read(args.get(2)).ok_or(CmdError::NoSuchKey)?)?;
    out.array(s.group_count());
    for (name, g) in s.groups() {
        out.map(6);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"consumers");
        out.int(g.consumer_count() as i64);
        out.bulk(b"pending");
        out.int(g.pending_len() as i64);
        out.bulk(b"last-delivered-id");
        write_id(out, g.last_id);
        write_counters(out, s, g);
    }
    Ok(())
}

/// XINFO CONSUMERS key group: each consumer's name, pending count, idle time (since its
/// last attempted read or claim) and, as Redis 7.2 adds, inactive time (since its last
/// successful one; -1 if none).
pub(crate) fn xinfo_consumers(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, group) = (args.get(2), args.get(3));
    let now = ctx.now_ms;
    let (mut keys, out) = ctx.keys_out();
    let s = stream_of(keys.read(key).ok_or(CmdError::NoSuchKey)?)?;
    let g = s.group(group).ok_or_else(|| no_group_for_key(key, group))?;
    out.array(g.consumer_count());
    for (_, c) in g.consumers() {
        out.map(4);
        out.bulk(b"name");
        out.bulk(c.name());
        out.bulk(b"pending");
        out.int(c.pending_len() as i64);
        out.bulk(b"idle");
        out.int(elapsed(now, c.seen_time_ms));
        out.bulk(b"inactive");
        out.int(c.active_time_ms.map_or(-1, |t| elapsed(now, t)));
    }
    Ok(())
}

/// The `groups` part of XINFO STREAM FULL: every group with its counters, its first `count`
/// pending entries (0 for all) and its consumers with theirs.
pub(crate) fn write_groups_full(out: &mut Reply<'_>, s: &StreamValue, count: usize) {
    let limit = if count == 0 { usize::MAX } else { count };
    out.array(s.group_count());
    for (name, g) in s.groups() {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        write_id(out, g.last_id);
        write_counters(out, s, g);
        out.bulk(b"pel-count");
        out.int(g.pending_len() as i64);
        out.bulk(b"pending");
        let pel: Vec<_> = g
            .pending_range(StreamId::MIN, StreamId::MAX)
            .take(limit)
            .collect();
        out.array(pel.len());
        for (id, p) in pel {
            out.array(4);
            write_id(out, id);
            out.bulk(g.consumer(p.consumer).name());
            out.int(p.delivery_time_ms as i64);
            out.int(p.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumer_count());
        for (_, c) in g.consumers() {
            out.map(4);
            out.bulk(b"name");
            out.bulk(c.name());
            out.bulk(b"seen-time");
            out.int(c.seen_time_ms as i64);
            out.bulk(b"pel-count");
            out.int(c.pending_len() as i64);
            out.bulk(b"pending");
            let own: Vec<_> = c.pending_from(StreamId::MIN).take(limit).collect();
            out.array(own.len());
            for id in own {
                let p = g.pending(id).copied();
                out.array(3);
                write_id(out, id);
                out.int(p.map_or(0, |p| p.delivery_time_ms as i64));
                out.int(p.map_or(0, |p| p.delivery_count as i64));
            }
        }
    }
}
