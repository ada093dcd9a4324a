//! COMMAND and its subcommands: the command table described to clients. Everything here is
//! read from [`crate::commands::table`], the same table dispatch uses, so what a client learns
//! (arity, flags, key positions, ACL categories) is what the server enforces.
//!
//! The table keeps Redis's legacy (first, last, step) key positions rather than full key
//! specs, so the key specs reported are derived from them: one `index` + `range` spec for a
//! fixed range (what cluster clients need to route), and an `unknown` spec marked `incomplete`
//! for movable-key commands (clients then ask COMMAND GETKEYS, as Redis intends). Key flags
//! are derived from the command's read/write flags. Command tips are not recorded: an empty
//! set.

use flowkv_protocol::{Args, Reply};
use flowkv_store::glob::glob_match;

use crate::command::{acl, flags, flags::*, Command, Group, KeySpec};
use crate::commands::{table, Lookup};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[Command::new("command", -1, Group::Server)
    .flags(LOADING | STALE)
    .acl(acl::CONNECTION)
    .handler(all)
    .subcommands(SUBCOMMANDS)
    .doc(
        "Returns detailed information about all commands.",
        "2.8.13",
        "O(N) where N is the total number of Redis commands",
    )];

static SUBCOMMANDS: &[Command] = &[
    Command::new("count", 2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(count)
        .doc("Returns a count of commands.", "2.8.13", "O(1)"),
    Command::new("docs", -2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(docs)
        .doc(
            "Returns documentary information about one, multiple or all commands.",
            "7.0.0",
            "O(N) where N is the number of commands to look up",
        ),
    Command::new("getkeys", -4, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(getkeys)
        .doc(
            "Extracts the key names from an arbitrary command.",
            "2.8.13",
            "O(N) where N is the number of arguments to the command",
        ),
    Command::new("getkeysandflags", -4, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(getkeysandflags)
        .doc(
            "Extracts the key names and access flags from an arbitrary command.",
            "7.0.0",
            "O(N) where N is the number of arguments to the command",
        ),
    Command::new("help", 2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(help)
        .doc(
            "Returns helpful text about the different subcommands.",
            "5.0.0",
            "O(1)",
        ),
    Command::new("info", -2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(info)
        .doc(
            "Returns information about one, multiple or all commands.",
            "2.8.13",
            "O(N) where N is the number of commands to look up",
        ),
    Command::new("list", -2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(list)
        .doc(
            "Returns a list of command names.",
            "7.0.0",
            "O(N) where N is the total number of Redis commands",
        ),
];

/// COMMAND: every top-level command's description.
fn all(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    reply_all_info(&mut ctx.out);
    Ok(())
}

/// COMMAND COUNT: the number of top-level commands.
fn count(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.out.int(table().top_level().count() as i64);
    Ok(())
}

/// COMMAND INFO [name ...]: descriptions, null for unknown names; all commands without names.
/// Names may be subcommands (`config|get`).
fn info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() == 2 {
        reply_all_info(&mut ctx.out);
        return Ok(());
    }
    ctx.out.array(args.len() - 2);
    for name in args.iter().skip(2) {
        match find(name) {
            Some((full, cmd)) => reply_info(&mut ctx.out, full, cmd),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// COMMAND DOCS [name ...]: a map of name → docs; unknown names are left out.
fn docs(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let found: Vec<(&str, &Command)> = if args.len() == 2 {
        table().top_level().map(|c| (c.name, c)).collect()
    } else {
        args.iter().skip(2).filter_map(find).collect()
    };
    ctx.out.map(found.len());
    for (full, cmd) in found {
        ctx.out.bulk(full.as_bytes());
        reply_docs(&mut ctx.out, full, cmd);
    }
    Ok(())
}

/// COMMAND LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p]: full names of commands and
/// subcommands. There are no modules, so a MODULE filter matches nothing, as does an unknown
/// ACL category.
fn list(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    enum Filter<'a> {
        All,
        Module,
        AclCat(Option<u32>),
        Pattern(&'a [u8]),
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if args.get(2).eq_ignore_ascii_case(b"filterby") => {
            let arg = args.get(4);
            match args.get(3).to_ascii_lowercase().as_slice() {
                b"module" => Filter::Module,
                b"aclcat" => Filter::AclCat(
                    acl::NAMES
                        .iter()
                        .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(arg))
                        .map(|(bit, _)| *bit),
                ),
                b"pattern" => Filter::Pattern(arg),
                _ => return Err(CmdError::Syntax),
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    let names: Vec<&str> = table()
        .flat
        .iter()
        .filter(|(full, cmd)| match filter {
            Filter::All => true,
            Filter::Module => false,
            Filter::AclCat(cat) => cat.is_some_and(|c| cmd.acl_categories() & c != 0),
            Filter::Pattern(p) => glob_match(p, full.as_bytes(), true),
        })
        .map(|(full, _)| full.as_str())
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

/// COMMAND GETKEYS command [arg ...].
fn getkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_keys(ctx, args, false)
}

/// COMMAND GETKEYSANDFLAGS command [arg ...].
fn getkeysandflags(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_keys(ctx, args, true)
}

/// The keys a command line would touch (the positions dispatch locks), with Redis's errors.
fn reply_keys(ctx: &mut Ctx<'_>, args: Args<'_>, with_flags: bool) -> CmdResult {
    let line = args.slice_from(2);
    let Lookup::Found(_, cmd) = table().lookup(line) else {
        return Err(CmdError::msg("ERR Invalid command specified"));
    };
    if matches!(cmd.keys, KeySpec::None) {
        return Err(CmdError::msg("ERR The command has no key arguments"));
    }
    let n = line.len() as i32;
    if (cmd.arity > 0 && cmd.arity != n) || n < -cmd.arity {
        return Err(CmdError::msg(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let positions = cmd.key_positions(line);
    if positions.is_empty() && !cmd.has(NO_MANDATORY_KEYS) {
        return Err(CmdError::msg("ERR Invalid arguments specified for command"));
    }
    ctx.out.array(positions.len());
    for p in positions {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(line.get(p));
            reply_words(&mut ctx.out, key_flags(cmd));
        } else {
            ctx.out.bulk(line.get(p));
        }
    }
    Ok(())
}

/// COMMAND HELP.
fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    const LINES: &[&str] = &[
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Describe every command.",
        "COUNT",
        "    Reply with the number of commands.",
        "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
        "    Reply with the names of all commands and subcommands, or of those matching a filter.",
        "INFO [<command-name> ...]",
        "    Describe the named commands, or every command if none is named.",
        "DOCS [<command-name> ...]",
        "    Reply with the documentation of the named commands, or of every command.",
        "GETKEYS <full-command>",
        "    Reply with the key names in a complete command line.",
        "GETKEYSANDFLAGS <full-command>",
        "    Reply with the key names in a complete command line, and how each is accessed.",
        "HELP",
        "    Print this help.",
    ];
    ctx.help(LINES);
    Ok(())
}

/// A command or subcommand by full name (`get`, `config|get`), case-insensitive.
fn find(name: &[u8]) -> Option<(&'static str, &'static Command)> {
    table()
        .flat
        .iter()
        .find(|(full, _)| full.as_bytes().eq_ignore_ascii_case(name))
        .map(|(full, cmd)| (full.as_str(), *cmd))
}

/// Every top-level command's description.
fn reply_all_info(out: &mut Reply<'_>) {
    let t = table();
    out.array(t.top_level().count());
    for cmd in t.top_level() {
        reply_info(out, cmd.name, cmd);
    }
}

/// The flag names COMMAND INFO shows, in Redis's order: `may_replicate` is hidden, as in
/// Redis, and `movablekeys` (not a table flag: it comes from the key spec) goes before
/// `allow_busy`.
fn flag_names(cmd: &Command) -> Vec<&'static str> {
    let mut names = Vec::new();
    for &(bit, name) in flags::NAMES {
        if bit == ALLOW_BUSY && matches!(cmd.keys, KeySpec::Custom(_)) {
            names.push("movablekeys");
        }
        if bit != MAY_REPLICATE && cmd.has(bit) {
            names.push(name);
        }
    }
    names
}

/// The access flags reported for every key of a command, derived from its read/write flags.
fn key_flags(cmd: &Command) -> &'static [&'static str] {
    if cmd.has(WRITE) {
        &["RW", "update"]
    } else if cmd.has(READONLY) {
        &["RO", "access"]
    } else {
        &["RW", "access"]
    }
}

/// A set of status words.
fn reply_words(out: &mut Reply<'_>, words: &[&str]) {
    out.set(words.len());
    for w in words {
        out.simple(w.as_bytes());
    }
}

/// One command's COMMAND INFO entry: name, arity, flags, first key, last key, step, ACL
/// categories, tips, key specs, subcommands.
fn reply_info(out: &mut Reply<'_>, full: &str, cmd: &Command) {
    let (first, last, step) = cmd.legacy_key_range();
    out.array(10);
    out.bulk(full.as_bytes());
    out.int(i64::from(cmd.arity));
    reply_words(out, &flag_names(cmd));
    out.int(i64::from(first));
    out.int(i64::from(last));
    out.int(i64::from(step));
    let cats = cmd.acl_categories();
    let cats: Vec<String> = acl::NAMES
        .iter()
        .filter(|(bit, _)| cats & bit != 0)
        .map(|(_, n)| format!("@{n}"))
        .collect();
    out.set(cats.len());
    for c in &cats {
        out.simple(c.as_bytes());
    }
    out.set(0);
    reply_key_specs(out, cmd);
    if cmd.subcommands.is_empty() {
        out.set(0);
    } else {
        out.array(cmd.subcommands.len());
        for sub in cmd.subcommands {
            reply_info(out, &format!("{full}|{}", sub.name), sub);
        }
    }
}

/// Key specs derived from the table's key positions (see the module docs).
fn reply_key_specs(out: &mut Reply<'_>, cmd: &Command) {
    let (begin, find) = match cmd.keys {
        KeySpec::None => {
            out.set(0);
            return;
        }
        KeySpec::Range { first, last, step } => (
            Some(first),
            Some((if last < 0 { last } else { last - first }, step)),
        ),
        KeySpec::Custom(_) => (None, None),
    };
    out.set(1);
    out.map(3);
    out.bulk(b"flags");
    let mut kf = key_flags(cmd).to_vec();
    if begin.is_none() {
        kf.push("incomplete");
    }
    reply_words(out, &kf);
    out.bulk(b"begin_search");
    out.map(2);
    out.bulk(b"type");
    match begin {
        Some(index) => {
            out.bulk(b"index");
            out.bulk(b"spec");
            out.map(1);
            out.bulk(b"index");
            out.int(i64::from(index));
        }
        None => {
            out.bulk(b"unknown");
            out.bulk(b"spec");
            out.map(0);
        }
    }
    out.bulk(b"find_keys");
    out.map(2);
    out.bulk(b"type");
    match find {
        Some((lastkey, keystep)) => {
            out.bulk(b"range");
            out.bulk(b"spec");
            out.map(3);
            out.bulk(b"lastkey");
            out.int(i64::from(lastkey));
            out.bulk(b"keystep");
            out.int(i64::from(keystep));
            out.bulk(b"limit");
            out.int(0);
        }
        None => {
            out.bulk(b"unknown");
            out.bulk(b"spec");
            out.map(0);
        }
    }
}

/// One command's COMMAND DOCS entry: summary, since, group, complexity and its subcommands'
/// docs.
fn reply_docs(out: &mut Reply<'_>, full: &str, cmd: &Command) {
    let fields = [
        ("summary", cmd.summary),
        ("since", cmd.since),
        ("group", cmd.group.name()),
        ("complexity", cmd.complexity),
    ];
    let present = fields.iter().filter(|(_, v)| !v.is_empty()).count();
    let has_subs = !cmd.subcommands.is_empty();
    out.map(present + usize::from(has_subs));
    for (k, v) in fields.iter().filter(|(_, v)| !v.is_empty()) {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    if has_subs {
        out.bulk(b"subcommands");
        out.map(cmd.subcommands.len());
        for sub in cmd.subcommands {
            let name = format!("{full}|{}", sub.name);
            out.bulk(name.as_bytes());
            reply_docs(out, &name, sub);
        }
    }
}
