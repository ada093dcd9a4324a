//! String commands: GET, SET and friends.

use flowkv_protocol::Args;
use flowkv_store::Expire;

use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[
    Command::new("get", 2, Group::String)
        .flags(READONLY | FAST)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .handler(get)
        .doc("Returns the string value of a key.", "1.0.0", "O(1)"),
    Command::new("set", -3, Group::String)
        .flags(WRITE | DENYOOM)
        .acl(acl::STRING)
        .keys(1, 1, 1)
        .handler(set)
        .doc("Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "1.0.0", "O(1)"),
];

fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    match keys.read(args.get(1)) {
        None => out.null(),
        Some(e) => out.bulk(e.string().ok_or(CmdError::WrongType)?),
    }
    Ok(())
}

fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() != 3 {
        return Err(CmdError::Syntax);
    }
    ctx.keys()
        .set_string(args.get(1), args.get(2), Expire::Clear);
    ctx.out.ok();
    Ok(())
}
