//! Connection commands: PING, ECHO, SELECT, QUIT, HELLO, CLIENT…

use flowkv_protocol::Args;

use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[
    Command::new("ping", -1, Group::Connection)
        .flags(FAST)
        .acl(acl::CONNECTION)
        .handler(ping)
        .doc("Returns the server's liveliness response.", "1.0.0", "O(1)"),
    Command::new("echo", 2, Group::Connection)
        .flags(FAST)
        .acl(acl::CONNECTION)
        .handler(echo)
        .doc("Returns the given string.", "1.0.0", "O(1)"),
    Command::new("select", 2, Group::Connection)
        .flags(LOADING | STALE | FAST)
        .acl(acl::CONNECTION)
        .handler(select)
        .doc("Changes the selected database.", "1.0.0", "O(1)"),
    Command::new("quit", -1, Group::Connection)
        .flags(ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH)
        .acl(acl::CONNECTION)
        .handler(quit)
        .doc("Closes the connection.", "1.0.0", "O(1)"),
];

fn ping(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match args.len() {
        1 => ctx.out.simple(b"PONG"),
        2 => ctx.out.bulk(args.get(1)),
        _ => return Err(CmdError::Arity("ping".into())),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ctx.out.bulk(args.get(1));
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let db = flowkv_store::num::parse_i64(args.get(1)).ok_or(CmdError::NotInteger)?;
    if db < 0 || db as usize >= ctx.srv.keyspace.num_dbs() {
        return Err(CmdError::msg("ERR DB index is out of range"));
    }
    ctx.client.select(db as usize);
    ctx.out.ok();
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.client.close_after_reply = true;
    ctx.out.ok();
    Ok(())
}
