//! COMMAND and its subcommands: the command table described to clients. Everything here is
//! read from [`crate::commands::table`], the same table dispatch uses, so what a client learns
//! (arity, flags, key positions, ACL categories) is what the server enforces.
//!
//! Key specs and command tips are declared in the table (see [`crate::command::keyspec`]),
//! as Redis 7.0 reports them; a command that declares no specs reports one derived from its
//! key positions. The legacy (first, last, step) and the `movablekeys` flag are computed from
//! the specs the way Redis computes them.

use flowkv_protocol::{Args, Reply};
use flowkv_store::glob::glob_match;

use crate::command::keyspec::{self as ks, BeginSearch, FindKeys, KeySpecDef};
use crate::command::{acl, flags, flags::*, Command, Group, KeySpec};
use crate::commands::{table, Lookup};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[Command::new("command", -1, Group::Server)
    .flags(LOADING | STALE)
    .acl(acl::CONNECTION)
    .tips(&["nondeterministic_output_order"])
    .handler(all)
    .subcommands(SUBCOMMANDS)
    .doc(
        "Get array of Redis command details",
        "2.8.13",
        "O(N) where N is the total number of Redis commands",
    )];

static SUBCOMMANDS: &[Command] = &[
    Command::new("count", 2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(count)
        .doc("Get total number of Redis commands", "2.8.13", "O(1)"),
    Command::new("docs", -2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .tips(&["nondeterministic_output_order"])
        .handler(docs)
        .doc(
            "Get array of specific Redis command documentation",
            "7.0.0",
            "O(N) where N is the number of commands to look up",
        ),
    Command::new("getkeys", -4, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(getkeys)
        .doc(
            "Extract keys given a full Redis command",
            "2.8.13",
            "O(N) where N is the number of arguments to the command",
        ),
    Command::new("getkeysandflags", -4, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(getkeysandflags)
        .doc(
            "Extract keys and access flags given a full Redis command",
            "7.0.0",
            "O(N) where N is the number of arguments to the command",
        ),
    Command::new("help", 2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(help)
        .doc(
            "Show helpful text about the different subcommands",
            "5.0.0",
            "O(1)",
        ),
    Command::new("info", -2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .tips(&["nondeterministic_output_order"])
        .handler(info)
        .doc(
            "Get array of specific Redis command details, or all when no argument is given.",
            "2.8.13",
            "O(N) where N is the number of commands to look up",
        ),
    Command::new("list", -2, Group::Server)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .tips(&["nondeterministic_output_order"])
        .handler(list)
        .doc(
            "Get an array of Redis command names",
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
        .listed()
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
    let specs = cmd.reported_key_specs();
    ctx.out.array(positions.len());
    for p in positions {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(line.get(p));
            let flags = crate::acl::variable_flags(cmd, line, key_flags(&specs, line, p));
            reply_flag_words(&mut ctx.out, ks::NAMES, flags);
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

/// A command or subcommand by full name (`get`, `config|get`), case-insensitive, under
/// the name `rename-command` gave it; described under its original name, as Redis does.
fn find(name: &[u8]) -> Option<(&'static str, &'static Command)> {
    table().find(name)
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
/// Redis, and `movablekeys` (not a table flag: it comes from the key specs) goes before
/// `allow_busy`.
fn flag_names(cmd: &Command) -> Vec<&'static str> {
    let movable = cmd.legacy_key_range().1;
    let mut names = Vec::new();
    for &(bit, name) in flags::NAMES {
        if bit == ALLOW_BUSY && movable {
            names.push("movablekeys");
        }
        if bit != MAY_REPLICATE && cmd.has(bit) {
            names.push(name);
        }
    }
    names
}

/// The access flags of the key at `pos` of `line`: those of the first spec that names that
/// position, else those of the last spec Redis can't walk or that is incomplete (SORT's
/// STORE, MIGRATE's KEYS: keys found by the command's own parsing). `incomplete` and
/// `variable_flags` describe the spec, not the key, so they are left out.
pub(crate) fn key_flags(specs: &[KeySpecDef], line: Args<'_>, pos: usize) -> u32 {
    let keys = || specs.iter().filter(|s| s.flags & ks::NOT_KEY == 0);
    let flags = keys()
        .find(|s| spec_positions(s, line).contains(&pos))
        .or_else(|| {
            keys().rfind(|s| {
                s.begin == BeginSearch::Unknown
                    || s.find == FindKeys::Unknown
                    || s.flags & ks::INCOMPLETE != 0
            })
        })
        .map_or(0, |s| s.flags);
    flags & !(ks::INCOMPLETE | ks::VARIABLE_FLAGS)
}

/// The argument positions a key spec names in `line`, walking it as Redis does; empty when it
/// can't (an unknown part, a missing keyword, a bad key count, out of range).
fn spec_positions(spec: &KeySpecDef, line: Args<'_>) -> Vec<usize> {
    let argc = line.len() as i64;
    let first = match spec.begin {
        BeginSearch::Index(i) => i64::from(i),
        BeginSearch::Keyword { keyword, startfrom } => {
            let start = i64::from(startfrom);
            let found = if start > 0 {
                (start..argc).find(|&i| {
                    line.get(i as usize)
                        .eq_ignore_ascii_case(keyword.as_bytes())
                })
            } else {
                (1..=argc + start).rev().find(|&i| {
                    line.get(i as usize)
                        .eq_ignore_ascii_case(keyword.as_bytes())
                })
            };
            match found {
                Some(i) => i + 1,
                None => return Vec::new(),
            }
        }
        BeginSearch::Unknown => return Vec::new(),
    };
    let (first, last, step) = match spec.find {
        FindKeys::Range {
            lastkey,
            keystep,
            limit,
        } => {
            let (lastkey, limit) = (i64::from(lastkey), i64::from(limit));
            let last = if lastkey >= 0 {
                first + lastkey
            } else if limit <= 1 {
                argc + lastkey
            } else {
                first + (argc - first) / limit + lastkey
            };
            (first, last, i64::from(keystep))
        }
        FindKeys::Keynum {
            keynumidx,
            firstkey,
            keystep,
        } => {
            let at = first + i64::from(keynumidx);
            let Some(n) = (at < argc)
                .then(|| flowkv_store::num::parse_i64(line.get(at as usize)))
                .flatten()
                .filter(|&n| n >= 0)
            else {
                return Vec::new();
            };
            let first = first + i64::from(firstkey);
            (first, first + n - 1, i64::from(keystep))
        }
        FindKeys::Unknown => return Vec::new(),
    };
    if first >= argc || last >= argc || last < first || step < 1 {
        return Vec::new();
    }
    (first..=last)
        .step_by(step as usize)
        .map(|i| i as usize)
        .collect()
}

/// A set of status words.
fn reply_words(out: &mut Reply<'_>, words: &[&str]) {
    out.set(words.len());
    for w in words {
        out.simple(w.as_bytes());
    }
}

/// The names of the bits set in `bits`, as a set of status words.
fn reply_flag_words(out: &mut Reply<'_>, names: &[(u32, &str)], bits: u32) {
    let words: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    reply_words(out, &words);
}

/// One command's COMMAND INFO entry: name, arity, flags, first key, last key, step, ACL
/// categories, tips, key specs, subcommands.
fn reply_info(out: &mut Reply<'_>, full: &str, cmd: &Command) {
    let ((first, last, step), _) = cmd.legacy_key_range();
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
    // Tips are bulk strings, unlike the status words of the flags and categories.
    out.set(cmd.tips.len());
    for tip in cmd.tips {
        out.bulk(tip.as_bytes());
    }
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

/// The key specs (declared or derived, see the module docs).
fn reply_key_specs(out: &mut Reply<'_>, cmd: &Command) {
    let specs = cmd.reported_key_specs();
    out.set(specs.len());
    for spec in &specs {
        out.map(3 + usize::from(!spec.notes.is_empty()));
        if !spec.notes.is_empty() {
            out.bulk(b"notes");
            out.bulk(spec.notes.as_bytes());
        }
        out.bulk(b"flags");
        reply_flag_words(out, ks::NAMES, spec.flags);
        out.bulk(b"begin_search");
        out.map(2);
        out.bulk(b"type");
        match spec.begin {
            BeginSearch::Index(index) => {
                out.bulk(b"index");
                out.bulk(b"spec");
                out.map(1);
                int_field(out, "index", index);
            }
            BeginSearch::Keyword { keyword, startfrom } => {
                out.bulk(b"keyword");
                out.bulk(b"spec");
                out.map(2);
                out.bulk(b"keyword");
                out.bulk(keyword.as_bytes());
                int_field(out, "startfrom", startfrom);
            }
            BeginSearch::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
        out.bulk(b"find_keys");
        out.map(2);
        out.bulk(b"type");
        match spec.find {
            FindKeys::Range {
                lastkey,
                keystep,
                limit,
            } => {
                out.bulk(b"range");
                out.bulk(b"spec");
                out.map(3);
                int_field(out, "lastkey", lastkey);
                int_field(out, "keystep", keystep);
                int_field(out, "limit", limit);
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                out.bulk(b"keynum");
                out.bulk(b"spec");
                out.map(3);
                int_field(out, "keynumidx", keynumidx);
                int_field(out, "firstkey", firstkey);
                int_field(out, "keystep", keystep);
            }
            FindKeys::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
    }
}

/// One `name => integer` map entry.
fn int_field(out: &mut Reply<'_>, name: &str, v: i32) {
    out.bulk(name.as_bytes());
    out.int(i64::from(v));
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
