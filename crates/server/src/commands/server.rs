//! Server commands: DBSIZE, FLUSHDB, FLUSHALL, CONFIG, INFO…

use flowkv_protocol::Args;

use crate::command::{flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::CmdResult;

pub static COMMANDS: &[Command] = &[
    Command::new("dbsize", 1, Group::Server)
        .flags(READONLY | FAST | ALL_SHARDS)
        .acl(crate::command::acl::KEYSPACE)
        .handler(dbsize)
        .doc(
            "Returns the number of keys in the database.",
            "1.0.0",
            "O(1)",
        ),
    Command::new("flushall", -1, Group::Server)
        .flags(WRITE | ALL_SHARDS)
        .acl(crate::command::acl::KEYSPACE | crate::command::acl::DANGEROUS)
        .handler(flushall)
        .doc(
            "Removes all keys from all databases.",
            "1.0.0",
            "O(N) where N is the total number of keys in all databases",
        ),
];

fn dbsize(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let n = ctx.keys().len();
    ctx.out.int(n as i64);
    Ok(())
}

fn flushall(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let ndbs = ctx.srv.keyspace.num_dbs();
    let now = ctx.now_ms;
    let locked = ctx.locked.as_mut().expect("ALL_SHARDS");
    for db in 0..ndbs {
        drop(locked.db(db, now, ctx.stats).flush());
    }
    ctx.out.ok();
    Ok(())
}
