//! Key expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX/XX/GT/LT), TTL, PTTL,
//! EXPIRETIME, PEXPIRETIME and PERSIST.

use flowkv_protocol::Args;
use flowkv_store::num::parse_i64;

use crate::command::{acl, flags::*, Command, Group};
use crate::config::notify::GENERIC;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;

pub static COMMANDS: &[Command] = &[
    Command::new("expire", -3, Group::Generic)
        .flags(WRITE | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .handler(expire)
        .doc("Set a key's time to live in seconds", "1.0.0", "O(1)"),
    Command::new("pexpire", -3, Group::Generic)
        .flags(WRITE | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .handler(pexpire)
        .doc("Set a key's time to live in milliseconds", "2.6.0", "O(1)"),
    Command::new("expireat", -3, Group::Generic)
        .flags(WRITE | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .handler(expireat)
        .doc(
            "Set the expiration for a key as a UNIX timestamp",
            "1.2.0",
            "O(1)",
        ),
    Command::new("pexpireat", -3, Group::Generic)
        .flags(WRITE | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .handler(pexpireat)
        .doc(
            "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
            "2.6.0",
            "O(1)",
        ),
    Command::new("ttl", 2, Group::Generic)
        .flags(READONLY | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .tips(&["nondeterministic_output"])
        .handler(ttl)
        .doc("Get the time to live for a key in seconds", "1.0.0", "O(1)"),
    Command::new("pttl", 2, Group::Generic)
        .flags(READONLY | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .tips(&["nondeterministic_output"])
        .handler(pttl)
        .doc(
            "Get the time to live for a key in milliseconds",
            "2.6.0",
            "O(1)",
        ),
    Command::new("expiretime", 2, Group::Generic)
        .flags(READONLY | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .handler(expiretime)
        .doc(
            "Get the expiration Unix timestamp for a key",
            "7.0.0",
            "O(1)",
        ),
    Command::new("pexpiretime", 2, Group::Generic)
        .flags(READONLY | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .handler(pexpiretime)
        .doc(
            "Get the expiration Unix timestamp for a key in milliseconds",
            "7.0.0",
            "O(1)",
        ),
    Command::new("persist", 2, Group::Generic)
        .flags(WRITE | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, 1, 1)
        .handler(persist)
        .doc("Remove the expiration from a key", "2.2.0", "O(1)"),
];

/// How an EXPIRE-family command reads its time argument.
#[derive(Clone, Copy)]
struct Unit {
    /// Multiplier to milliseconds (1000 for seconds).
    to_ms: i64,
    /// Relative to now (EXPIRE, PEXPIRE) or absolute (EXPIREAT, PEXPIREAT).
    relative: bool,
    /// Lower-case command name for the "invalid expire time" error.
    name: &'static str,
}

fn expire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(
        ctx,
        args,
        Unit {
            to_ms: 1000,
            relative: true,
            name: "expire",
        },
    )
}

fn pexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(
        ctx,
        args,
        Unit {
            to_ms: 1,
            relative: true,
            name: "pexpire",
        },
    )
}

fn expireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(
        ctx,
        args,
        Unit {
            to_ms: 1000,
            relative: false,
            name: "expireat",
        },
    )
}

fn pexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(
        ctx,
        args,
        Unit {
            to_ms: 1,
            relative: false,
            name: "pexpireat",
        },
    )
}

/// The NX / XX / GT / LT conditions of the EXPIRE family.
#[derive(Default)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Conditions {
    /// Parses the options after the time, rejecting unknown and incompatible ones with
    /// Redis's errors (options are checked before the time argument, as Redis does).
    fn parse(args: Args<'_>) -> Result<Conditions, CmdError> {
        let mut c = Conditions::default();
        for opt in args.iter().skip(3) {
            let flag = match opt.to_ascii_lowercase().as_slice() {
                b"nx" => &mut c.nx,
                b"xx" => &mut c.xx,
                b"gt" => &mut c.gt,
                b"lt" => &mut c.lt,
                _ => {
                    return Err(CmdError::msg(format!(
                        "ERR Unsupported option {}",
                        String::from_utf8_lossy(opt)
                    )))
                }
            };
            *flag = true;
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CmdError::msg(
                "ERR NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(CmdError::msg(
                "ERR GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether the new deadline `when` may replace the current one (`None`: no TTL, which
    /// counts as an infinite TTL for GT and LT).
    fn allow(&self, current: Option<u64>, when: i64) -> bool {
        let current = current.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
        match current {
            Some(_) if self.nx => false,
            None if self.xx || self.gt => false,
            Some(cur) if self.gt && when <= cur => false,
            Some(cur) if self.lt && when >= cur => false,
            _ => true,
        }
    }
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX|XX|GT|LT ...]: 1 if the TTL was set
/// (or the key deleted because the deadline has passed), 0 if the key is missing or a
/// condition failed. Overflow in the unit conversion or in adding "now" is an error.
fn expire_generic(ctx: &mut Ctx<'_>, args: Args<'_>, unit: Unit) -> CmdResult {
    let cond = Conditions::parse(args)?;
    let t = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let base = if unit.relative { ctx.now_ms as i64 } else { 0 };
    let when = t
        .checked_mul(unit.to_ms)
        .and_then(|ms| ms.checked_add(base))
        .ok_or_else(|| {
            CmdError::msg(format!(
                "ERR invalid expire time in '{}' command",
                unit.name
            ))
        })?;
    let now = ctx.now_ms;
    let key = args.get(1);
    let (mut keys, out) = ctx.keys_out();
    let current = match keys.write(key) {
        None => {
            out.int(0);
            return Ok(());
        }
        Some(e) => e.expire_at(),
    };
    if !cond.allow(current, when) {
        out.int(0);
        return Ok(());
    }
    // A deadline at or before now deletes the key at once, as Redis does. Either way the
    // change propagates in absolute form (PEXPIREAT) or as the DEL it was.
    let event = match u64::try_from(when).ok().filter(|&w| w > now) {
        Some(at) => {
            keys.set_expire(key, Some(at));
            "expire"
        }
        None => {
            keys.delete_expired(key);
            "del"
        }
    };
    out.int(1);
    ctx.dirty += 1;
    if event == "del" {
        ctx.propagate_as(&[b"DEL", key]);
    } else if crate::propagate::active() {
        ctx.propagate_as(&[b"PEXPIREAT", key, &crate::propagate::num(when)]);
    }
    notify(ctx, GENERIC, event, key);
    Ok(())
}

/// What TTL-style commands report.
#[derive(Clone, Copy)]
enum TtlKind {
    /// Remaining time (TTL, PTTL).
    Remaining,
    /// Absolute deadline (EXPIRETIME, PEXPIRETIME).
    Deadline,
}

fn ttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, TtlKind::Remaining, false)
}

fn pttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, TtlKind::Remaining, true)
}

fn expiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, TtlKind::Deadline, false)
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, TtlKind::Deadline, true)
}

/// TTL / PTTL / EXPIRETIME / PEXPIRETIME: -2 if the key is missing, -1 if it has no TTL,
/// else the time in milliseconds or in seconds rounded to the nearest (as Redis rounds).
fn ttl_generic(ctx: &mut Ctx<'_>, args: Args<'_>, kind: TtlKind, ms: bool) -> CmdResult {
    let now = ctx.now_ms;
    let (mut keys, out) = ctx.keys_out();
    let at = match keys.read_no_touch(args.get(1)) {
        None => {
            out.int(-2);
            return Ok(());
        }
        Some(e) => e.expire_at(),
    };
    let Some(at) = at else {
        out.int(-1);
        return Ok(());
    };
    let t = match kind {
        TtlKind::Remaining => at.saturating_sub(now),
        TtlKind::Deadline => at,
    };
    let t = i64::try_from(t).unwrap_or(i64::MAX);
    out.int(if ms { t } else { t.saturating_add(500) / 1000 });
    Ok(())
}

/// PERSIST key: 1 if a TTL was removed, 0 if the key is missing or has none.
fn persist(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let (mut keys, out) = ctx.keys_out();
    let had_ttl = keys.write(key).is_some_and(|e| e.expire_at().is_some());
    if had_ttl {
        keys.set_expire(key, None);
    }
    out.int(i64::from(had_ttl));
    if had_ttl {
        ctx.dirty += 1;
        notify(ctx, GENERIC, "persist", key);
    }
    Ok(())
}
