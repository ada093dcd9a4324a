//! MODULE: Redis's loadable-module commands. flowkv loads no modules — what people load
//! modules for here (Bloom filters, CL.THROTTLE) is built in — but tools and client
//! libraries call MODULE LIST to see what a server offers, and admin scripts call MODULE
//! LOAD / UNLOAD. They get the replies redis-server gives when no module is loaded: an empty
//! list, the failure Redis reports for a module file it cannot load, and "no such module".
//! LOAD, LOADEX and UNLOAD are refused unless `enable-module-command` allows them, as in
//! Redis; LIST and HELP never are.

use flowkv_protocol::Args;

use crate::command::{flags::*, Command, Group};
use crate::config::Caller;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[Command::new("module", -2, Group::Server)
    .subcommands(SUBCOMMANDS)
    .doc(
        "A container for module commands",
        "4.0.0",
        "Depends on subcommand.",
    )];

/// Flags of the subcommands that load or unload code.
const LOADING_FLAGS: u32 = ADMIN | NOSCRIPT | NO_ASYNC_LOADING;

static SUBCOMMANDS: &[Command] = &[
    Command::new("help", 2, Group::Server)
        .flags(LOADING | STALE)
        .handler(help)
        .doc(
            "Show helpful text about the different subcommands",
            "5.0.0",
            "O(1)",
        ),
    Command::new("list", 2, Group::Server)
        .flags(ADMIN | NOSCRIPT)
        .tips(&["nondeterministic_output_order"])
        .handler(list)
        .doc(
            "List all modules loaded by the server",
            "4.0.0",
            "O(N) where N is the number of loaded modules.",
        ),
    Command::new("load", -3, Group::Server)
        .flags(LOADING_FLAGS)
        .handler(load)
        .doc("Load a module", "4.0.0", "O(1)"),
    Command::new("loadex", -3, Group::Server)
        .flags(LOADING_FLAGS)
        .handler(load)
        .doc("Load a module with extended parameters", "7.0.0", "O(1)"),
    Command::new("unload", 3, Group::Server)
        .flags(LOADING_FLAGS)
        .handler(unload)
        .doc("Unload a module", "4.0.0", "O(1)"),
];

const HELP: &[&str] = &[
    "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
    "HELP",
    "    Prints this help.",
];

fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.help(HELP);
    Ok(())
}

/// MODULE LIST: no module is ever loaded.
fn list(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.out.array(0);
    Ok(())
}

/// MODULE LOAD path [arg ...] / MODULE LOADEX path [CONFIG name value ...] [ARGS arg ...]:
/// Redis's reply for a module it could not load (whatever the arguments — Redis too gives
/// this one reply for a missing file and for malformed LOADEX arguments), with the reason
/// in the server log, where Redis puts it.
fn load(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    check_allowed(ctx)?;
    eprintln!(
        "Module {} failed to load: flowkv does not load modules (Bloom filters and CL.THROTTLE are built in)",
        String::from_utf8_lossy(args.get(2))
    );
    Err(CmdError::msg(
        "ERR Error loading the extension. Please check the server logs.",
    ))
}

/// MODULE UNLOAD name: nothing is loaded, so no name matches.
fn unload(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    check_allowed(ctx)?;
    Err(CmdError::msg(
        "ERR Error unloading module: no such module with that name",
    ))
}

/// `enable-module-command` (`no` by default, `yes`, or `local`: loopback clients only),
/// decided by the rule every `enable-*` directive shares, with Redis's refusal text.
fn check_allowed(ctx: &Ctx<'_>) -> CmdResult {
    let local = ctx.client.shared.addr.ip().is_loopback();
    if ctx
        .srv
        .config
        .allows("enable-module-command", Caller::Client { local })
    {
        Ok(())
    } else {
        Err(CmdError::msg(
            "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ))
    }
}
