//! The ACL command family: users and rules (SETUSER, GETUSER, DELUSER, LIST, USERS),
//! categories (CAT), the ACL log, DRYRUN, GENPASS, WHOAMI and the aclfile (LOAD, SAVE). The
//! rules themselves live in `crate::acl`.

use flowkv_protocol::Args;
use flowkv_store::num::parse_i64;

use crate::command::{acl as cat, flags::*, Command, Group};
use crate::commands::{table, Lookup};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

/// Flags of the subcommands that show or change users.
const ACL_ADMIN: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
/// Flags of the harmless ones.
const ACL_PLAIN: u32 = NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[Command] = &[Command::new("acl", -2, Group::Server)
    .subcommands(SUBCOMMANDS)
    .doc(
        "A container for Access List Control commands ",
        "6.0.0",
        "Depends on subcommand.",
    )];

static SUBCOMMANDS: &[Command] = &[
    Command::new("cat", -2, Group::Server)
        .flags(ACL_PLAIN)
        .handler(cat_cmd)
        .doc(
            "List the ACL categories or the commands inside a category",
            "6.0.0",
            "O(1) since the categories and commands are a fixed set.",
        ),
    Command::new("deluser", -3, Group::Server)
        .flags(ACL_ADMIN)
        .handler(deluser)
        .doc(
            "Remove the specified ACL users and the associated rules",
            "6.0.0",
            "O(1) amortized time considering the typical user.",
        ),
    Command::new("dryrun", -4, Group::Server)
        .flags(ACL_ADMIN)
        .handler(dryrun)
        .doc(
            "Returns whether the user can execute the given command without executing the command.",
            "7.0.0",
            "O(1).",
        ),
    Command::new("genpass", -2, Group::Server)
        .flags(ACL_PLAIN)
        .handler(genpass)
        .doc(
            "Generate a pseudorandom secure password to use for ACL users",
            "6.0.0",
            "O(1)",
        ),
    Command::new("getuser", 3, Group::Server)
        .flags(ACL_ADMIN)
        .handler(getuser)
        .doc(
            "Get the rules for a specific ACL user",
            "6.0.0",
            "O(N). Where N is the number of password, command and pattern rules that the user has.",
        ),
    Command::new("help", 2, Group::Server)
        .flags(LOADING | STALE)
        .handler(help)
        .doc(
            "Show helpful text about the different subcommands",
            "6.0.0",
            "O(1)",
        ),
    Command::new("list", 2, Group::Server)
        .flags(ACL_ADMIN)
        .handler(list)
        .doc(
            "List the current ACL rules in ACL config file format",
            "6.0.0",
            "O(N). Where N is the number of configured users.",
        ),
    Command::new("load", 2, Group::Server)
        .flags(ACL_ADMIN)
        .handler(load)
        .doc(
            "Reload the ACLs from the configured ACL file",
            "6.0.0",
            "O(N). Where N is the number of configured users.",
        ),
    Command::new("log", -2, Group::Server)
        .flags(ACL_ADMIN)
        .handler(log)
        .doc(
            "List latest events denied because of ACLs in place",
            "6.0.0",
            "O(N) with N being the number of entries shown.",
        ),
    Command::new("save", 2, Group::Server)
        .flags(ACL_ADMIN)
        .handler(save)
        .doc(
            "Save the current ACL rules in the configured ACL file",
            "6.0.0",
            "O(N). Where N is the number of configured users.",
        ),
    Command::new("setuser", -3, Group::Server)
        .flags(ACL_ADMIN)
        .handler(setuser)
        .doc(
            "Modify or create the rules for a specific ACL user",
            "6.0.0",
            "O(N). Where N is the number of rules provided.",
        ),
    Command::new("users", 2, Group::Server)
        .flags(ACL_ADMIN)
        .handler(users)
        .doc(
            "List the username of all the configured ACL rules",
            "6.0.0",
            "O(N). Where N is the number of configured users.",
        ),
    Command::new("whoami", 2, Group::Server)
        .flags(ACL_PLAIN)
        .handler(whoami)
        .doc(
            "Return the name of the user associated to the current connection",
            "6.0.0",
            "O(1)",
        ),
];

/// The error for a subcommand given too many arguments (Redis words it for the
/// subcommand as the client typed it).
fn subcommand_syntax(args: Args<'_>) -> CmdError {
    let sub: String = String::from_utf8_lossy(args.get(1))
        .chars()
        .take(128)
        .collect();
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try ACL HELP."
    ))
}

/// Largest ACL GENPASS size.
const GENPASS_MAX_BITS: i64 = 4096;

/// ACL SETUSER username [rule ...]: all rules apply, or none.
fn setuser(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = args.get(2);
    if name.iter().any(|&b| b == b' ' || b == 0) {
        return Err(CmdError::msg(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    let ops: Vec<&[u8]> = args.iter().skip(3).collect();
    ctx.srv
        .acl
        .set_user(ctx.srv, name, &ops)
        .map_err(CmdError::msg)?;
    ctx.out.ok();
    Ok(())
}

/// ACL DELUSER username...: the number deleted; their clients are disconnected.
fn deluser(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.iter().skip(2).any(|n| n == b"default") {
        return Err(CmdError::msg("ERR The 'default' user cannot be removed"));
    }
    let srv = ctx.srv;
    let deleted = args
        .iter()
        .skip(2)
        .filter(|n| srv.acl.delete(srv, ctx.client, n))
        .count();
    ctx.out.int(deleted as i64);
    Ok(())
}

/// ACL GETUSER username: flags, passwords, the root selector's commands/keys/channels and
/// the other selectors.
fn getuser(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let Some(u) = ctx.srv.acl.user(args.get(2)) else {
        ctx.out.null();
        return Ok(());
    };
    let d = u.details();
    let out = &mut ctx.out;
    out.map(6);
    out.bulk(b"flags");
    out.set(d.flags.len());
    for f in &d.flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"passwords");
    out.array(d.passwords.len());
    for p in &d.passwords {
        out.bulk(p.as_bytes());
    }
    let selector = |out: &mut flowkv_protocol::Reply<'_>, s: &crate::acl::SelectorText| {
        out.bulk(b"commands");
        out.bulk(s.commands.as_bytes());
        out.bulk(b"keys");
        out.bulk(&s.keys);
        out.bulk(b"channels");
        out.bulk(&s.channels);
    };
    selector(out, &d.root);
    out.bulk(b"selectors");
    out.array(d.selectors.len());
    for s in &d.selectors {
        out.map(3);
        selector(out, s);
    }
    Ok(())
}

/// ACL LIST: every user as a `user` line of the aclfile.
fn list(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let users = ctx.srv.acl.users();
    ctx.out.array(users.len());
    for u in users {
        let mut line = b"user ".to_vec();
        line.extend_from_slice(&u.name);
        line.push(b' ');
        line.extend_from_slice(&u.describe());
        ctx.out.bulk(&line);
    }
    Ok(())
}

/// ACL USERS: the user names, sorted.
fn users(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let users = ctx.srv.acl.users();
    ctx.out.array(users.len());
    for u in users {
        ctx.out.bulk(&u.name);
    }
    Ok(())
}

/// ACL WHOAMI.
fn whoami(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let name = crate::acl::client_user(ctx.srv, ctx.client).name.clone();
    ctx.out.bulk(&name);
    Ok(())
}

/// ACL CAT [category]: the categories, or the commands (and subcommands) in one.
fn cat_cmd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let Some(name) = args.try_get(2) else {
        ctx.out.array(cat::NAMES.len());
        for (_, n) in cat::NAMES {
            ctx.out.bulk(n.as_bytes());
        }
        return Ok(());
    };
    if args.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    let flag = crate::acl::category(name).ok_or_else(|| {
        let shown: String = String::from_utf8_lossy(name).chars().take(128).collect();
        CmdError::msg(format!("ERR Unknown category '{shown}'"))
    })?;
    let names: Vec<&str> = table()
        .flat
        .iter()
        .filter(|(_, c)| c.acl_categories() & flag != 0)
        .map(|(n, _)| n.as_str())
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

/// ACL GENPASS [bits]: random hex, 256 bits by default.
fn genpass(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    let bits = match args.try_get(2) {
        Some(b) => parse_i64(b).ok_or(CmdError::NotInteger)?,
        None => 256,
    };
    if bits <= 0 || bits > GENPASS_MAX_BITS {
        return Err(CmdError::msg(format!(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a \
             positive number up to {GENPASS_MAX_BITS}"
        )));
    }
    let chars = (bits as usize).div_ceil(4);
    ctx.out.bulk(crate::server::random_hex(chars).as_bytes());
    Ok(())
}

/// ACL LOG [count | RESET].
fn log(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    let mut count = 10usize;
    if let Some(a) = args.try_get(2) {
        if a.eq_ignore_ascii_case(b"reset") {
            ctx.srv.acl.log_reset();
            ctx.out.ok();
            return Ok(());
        }
        count = parse_i64(a).ok_or(CmdError::NotInteger)?.max(0) as usize;
    }
    ctx.srv.acl.log_reply(&mut ctx.out, count);
    Ok(())
}

/// ACL DRYRUN username command [arg ...]: OK, or why the user could not run it.
fn dryrun(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = args.get(2);
    let Some(u) = ctx.srv.acl.user(name) else {
        return Err(CmdError::msg(format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(name)
        )));
    };
    let line = args.slice_from(3);
    let Lookup::Found(id, cmd) = table().lookup(line) else {
        return Err(CmdError::msg(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(line.get(0))
        )));
    };
    let full = table().full_name(id);
    if !cmd.arity_ok(line.len()) {
        return Err(CmdError::msg(format!(
            "ERR wrong number of arguments for '{full}' command"
        )));
    }
    match u.check(id, cmd, line) {
        Ok(()) => ctx.out.ok(),
        Err((reason, pos)) => {
            let text = match reason {
                crate::acl::Denied::Command => {
                    format!("This user has no permissions to run the '{full}' command")
                }
                crate::acl::Denied::Key => format!(
                    "This user has no permissions to access the '{}' key",
                    String::from_utf8_lossy(line.get(pos))
                ),
                _ => format!(
                    "This user has no permissions to access the '{}' channel",
                    String::from_utf8_lossy(line.get(pos))
                ),
            };
            ctx.out.bulk(text.as_bytes());
        }
    }
    Ok(())
}

/// The configured aclfile, or Redis's error when there is none.
fn aclfile(ctx: &Ctx<'_>) -> Result<String, CmdError> {
    match ctx.srv.config.get("aclfile") {
        Some(f) if !f.is_empty() => Ok(f),
        _ => Err(CmdError::msg(
            "ERR This Redis instance is not configured to use an ACL file. You may want to \
             specify users via the ACL SETUSER command and then issue a CONFIG REWRITE \
             (assuming you have a Redis configuration file set) in order to store users in the \
             Redis configuration.",
        )),
    }
}

/// ACL LOAD: replaces every user with the aclfile's (all or nothing).
fn load(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let file = aclfile(ctx)?;
    let text = std::fs::read_to_string(&file).map_err(|e| {
        CmdError::msg(format!(
            "ERR Error loading ACLs, opening file '{file}': {}",
            os_error_text(&e)
        ))
    })?;
    let srv = ctx.srv;
    srv.acl
        .load_text(srv, Some(ctx.client), &text, &file)
        .map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    ctx.out.ok();
    Ok(())
}

/// An I/O error as C's strerror words it (without Rust's "(os error N)").
fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// ACL SAVE: writes every user to the aclfile (a temporary file renamed over it).
fn save(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let file = aclfile(ctx)?;
    let text = ctx.srv.acl.file_text();
    let tmp = format!("{file}.tmp-{}", std::process::id());
    let written = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, &file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("Writing ACL file for ACL SAVE: {e}");
        return Err(CmdError::msg(
            "ERR There was an error trying to save the ACLs. Please check the server logs for \
             more information",
        ));
    }
    ctx.out.ok();
    Ok(())
}

/// ACL HELP.
fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.help(&[
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Print this help.",
    ]);
    Ok(())
}
