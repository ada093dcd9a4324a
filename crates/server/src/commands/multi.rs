//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (the queueing itself is in dispatch,
//! the WATCH bookkeeping in [`crate::transaction`]).

use flowkv_protocol::Args;

use crate::client::flag;
use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::dispatch::run_queued;
use crate::error::{CmdError, CmdResult};
use crate::transaction::{MultiState, Watched};

const CONTROL: u32 = NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY;

pub static COMMANDS: &[Command] = &[
    Command::new("multi", 1, Group::Transactions)
        .flags(CONTROL)
        .acl(acl::TRANSACTION)
        .handler(multi)
        .doc("Mark the start of a transaction block", "1.2.0", "O(1)"),
    Command::new("exec", 1, Group::Transactions)
        .flags(NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | QUEUED_KEYS)
        .acl(acl::TRANSACTION)
        .handler(exec)
        .doc(
            "Execute all commands issued after MULTI",
            "1.2.0",
            "Depends on commands in the transaction",
        ),
    Command::new("discard", 1, Group::Transactions)
        .flags(CONTROL)
        .acl(acl::TRANSACTION)
        .handler(discard)
        .doc(
            "Discard all commands issued after MULTI",
            "2.0.0",
            "O(N), when N is the number of queued commands",
        ),
    Command::new("watch", -2, Group::Transactions)
        .flags(CONTROL)
        .acl(acl::TRANSACTION)
        .keys(1, -1, 1)
        .key_specs(&[ks::spec(ks::RO, ks::index(1), ks::range(-1, 1, 0))])
        .handler(watch)
        .doc(
            "Watch the given keys to determine execution of the MULTI/EXEC block",
            "2.2.0",
            "O(1) for every key.",
        ),
    Command::new("unwatch", 1, Group::Transactions)
        .flags(CONTROL)
        .acl(acl::TRANSACTION)
        .handler(unwatch)
        .doc("Forget about all watched keys", "2.2.0", "O(1)"),
];

/// Leaves MULTI state (EXEC, DISCARD): the queue goes, and so do the watches.
fn end_multi(ctx: &mut Ctx<'_>) -> Option<MultiState> {
    let multi = ctx.client.multi.take();
    ctx.client.shared.set_flag(flag::MULTI, false);
    ctx.client
        .shared
        .multi
        .store(-1, std::sync::atomic::Ordering::Relaxed);
    ctx.srv.watches.unwatch_all(ctx.srv, ctx.client);
    multi
}

fn multi(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::msg("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(MultiState::default());
    ctx.client.shared.set_flag(flag::MULTI, true);
    ctx.client
        .shared
        .multi
        .store(0, std::sync::atomic::Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}

/// True if the transaction must not run: a watched key changed, or a key that was live when
/// watched has expired since (Redis 7.0 counts that as a change too).
fn watch_failed(ctx: &mut Ctx<'_>) -> bool {
    if ctx.client.shared.has_flag(flag::DIRTY_CAS) {
        return true;
    }
    let watched = std::mem::take(&mut ctx.client.watched);
    let db = ctx.client.db;
    let mut failed = false;
    for w in watched.iter().filter(|w| w.live) {
        ctx.client.db = w.db;
        if !ctx.keys().contains(&w.key) {
            failed = true;
            break;
        }
    }
    ctx.client.db = db;
    ctx.client.watched = watched;
    failed
}

/// EXEC: runs the queued commands back to back under their locks and replies with an
/// array of their replies; EXECABORT if one was rejected while queueing, a null array if
/// a watched key changed.
fn exec(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::msg("ERR EXEC without MULTI"));
    }
    let failed = watch_failed(ctx);
    let multi = end_multi(ctx).unwrap_or_default();
    if multi.aborted {
        return Err(CmdError::msg(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    if failed {
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(multi.queued.len());
    for q in &multi.queued {
        // Permissions may have changed since the command was queued (checked then too).
        let args = q.args.as_args();
        let acl = crate::acl::check(
            ctx.srv,
            ctx.client,
            q.id,
            q.cmd,
            args,
            crate::acl::LogContext::Multi,
        );
        match acl {
            Ok(()) => run_queued(ctx, q),
            Err(denied) => ctx.out.error(&format!(
                "NOPERM ACLs rules changed between the moment the transaction was accumulated \
                 and the EXEC call. This command is no longer allowed for the following reason: \
                 {}",
                denied.exec_text()
            )),
        }
    }
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::msg("ERR DISCARD without MULTI"));
    }
    end_multi(ctx);
    ctx.out.ok();
    Ok(())
}

/// WATCH key...: EXEC will fail if any of these keys changes before it.
fn watch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::msg("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.client.db;
    for key in args.iter().skip(1) {
        if ctx
            .client
            .watched
            .iter()
            .any(|w| w.db == db && *w.key == *key)
        {
            continue;
        }
        let live = ctx.keys().contains(key);
        ctx.srv.watches.watch(ctx.srv, db, key, &ctx.client.shared);
        ctx.client.watched.push(Watched {
            db,
            key: key.into(),
            live,
        });
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.srv.watches.unwatch_all(ctx.srv, ctx.client);
    ctx.out.ok();
    Ok(())
}
