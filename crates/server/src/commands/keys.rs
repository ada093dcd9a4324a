//! Generic key commands: DEL, EXISTS and friends.

use flowkv_protocol::Args;

use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::CmdResult;

pub static COMMANDS: &[Command] = &[
    Command::new("del", -2, Group::Generic)
        .flags(WRITE)
        .acl(acl::KEYSPACE)
        .keys(1, -1, 1)
        .handler(del)
        .doc(
            "Deletes one or more keys.",
            "1.0.0",
            "O(N) where N is the number of keys that will be removed.",
        ),
    Command::new("exists", -2, Group::Generic)
        .flags(READONLY | FAST)
        .acl(acl::KEYSPACE)
        .keys(1, -1, 1)
        .handler(exists)
        .doc(
            "Determines whether one or more keys exist.",
            "1.0.0",
            "O(N) where N is the number of keys to check.",
        ),
];

fn del(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut keys = ctx.keys();
    let n = args
        .iter()
        .skip(1)
        .filter(|k| keys.remove(k).is_some())
        .count();
    ctx.out.int(n as i64);
    Ok(())
}

fn exists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut keys = ctx.keys();
    let n = args.iter().skip(1).filter(|k| keys.contains(k)).count();
    ctx.out.int(n as i64);
    Ok(())
}
