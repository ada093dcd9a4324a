//! Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO and FUNCTION. The
//! interpreters and the caches are in [`crate::scripting`]; these handlers parse arguments,
//! apply Redis's checks and reply.
//!
//! Scripts may touch keys they did not declare (queue libraries rely on it), so every script
//! run locks all shards: it is atomic across threads like any single command.

use flowkv_protocol::Args;
use flowkv_store::glob::glob_match;
use flowkv_store::num::parse_i64;

use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group, KeyPositions};
use crate::commands::numkeys_positions;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::scripting::{self, sflags, vm, Library};

const EVAL_SPECS: &[ks::KeySpecDef] = &[ks::spec(
    ks::RW | ks::ACCESS | ks::UPDATE,
    ks::index(2),
    ks::keynum(0, 1, 1),
)
.notes("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE")];
const EVALSHA_SPECS: &[ks::KeySpecDef] = &[ks::spec(
    ks::RW | ks::ACCESS | ks::UPDATE,
    ks::index(2),
    ks::keynum(0, 1, 1),
)];
const RO_SPECS: &[ks::KeySpecDef] =
    &[
        ks::spec(ks::RO | ks::ACCESS, ks::index(2), ks::keynum(0, 1, 1)).notes(
            "We cannot tell how the keys will be used so we assume the worst, RO and ACCESS",
        ),
    ];
const EVALSHA_RO_SPECS: &[ks::KeySpecDef] = &[ks::spec(
    ks::RO | ks::ACCESS,
    ks::index(2),
    ks::keynum(0, 1, 1),
)];

/// The declared keys of `EVAL script numkeys key...`.
fn script_keys(args: Args<'_>) -> KeyPositions {
    numkeys_positions(args, 2, 0)
}

/// Scripts reach any key, so they always lock the whole keyspace.
fn always(_: Args<'_>) -> bool {
    true
}

const RUN: u32 = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS;

/// One of EVAL / EVALSHA / FCALL and their _RO forms.
const fn runner(
    name: &'static str,
    ro: bool,
    specs: &'static [ks::KeySpecDef],
    handler: crate::command::Handler,
    summary: &'static str,
    since: &'static str,
    complexity: &'static str,
) -> Command {
    Command::new(name, -3, Group::Scripting)
        .flags(if ro {
            RUN | READONLY
        } else {
            RUN | MAY_REPLICATE
        })
        .acl(acl::SCRIPTING)
        .movable_keys(script_keys)
        .locks_all_when(always)
        .key_specs(specs)
        .handler(handler)
        .doc(summary, since, complexity)
}

const SCRIPT_COMPLEXITY: &str = "Depends on the script that is executed.";
const FUNCTION_COMPLEXITY: &str = "Depends on the function that is executed.";

pub static COMMANDS: &[Command] = &[
    runner(
        "eval",
        false,
        EVAL_SPECS,
        eval,
        "Execute a Lua script server side",
        "2.6.0",
        SCRIPT_COMPLEXITY,
    ),
    runner(
        "evalsha",
        false,
        EVALSHA_SPECS,
        evalsha,
        "Execute a Lua script server side",
        "2.6.0",
        SCRIPT_COMPLEXITY,
    ),
    runner(
        "eval_ro",
        true,
        RO_SPECS,
        eval_ro,
        "Execute a read-only Lua script server side",
        "7.0.0",
        SCRIPT_COMPLEXITY,
    ),
    runner(
        "evalsha_ro",
        true,
        EVALSHA_RO_SPECS,
        evalsha_ro,
        "Execute a read-only Lua script server side",
        "7.0.0",
        SCRIPT_COMPLEXITY,
    ),
    runner(
        "fcall",
        false,
        EVAL_SPECS,
        fcall,
        "Invoke a function",
        "7.0.0",
        FUNCTION_COMPLEXITY,
    ),
    runner(
        "fcall_ro",
        true,
        RO_SPECS,
        fcall_ro,
        "Invoke a read-only function",
        "7.0.0",
        FUNCTION_COMPLEXITY,
    ),
    Command::new("script", -2, Group::Scripting)
        .subcommands(SCRIPT)
        .doc(
            "A container for Lua scripts management commands",
            "2.6.0",
            "Depends on subcommand.",
        ),
    Command::new("function", -2, Group::Scripting)
        .subcommands(FUNCTION)
        .doc(
            "A container for function commands",
            "7.0.0",
            "Depends on subcommand.",
        ),
];

const fn sub(name: &'static str, arity: i32, flags: u32, h: crate::command::Handler) -> Command {
    Command::new(name, arity, Group::Scripting)
        .flags(flags)
        .acl(acl::SCRIPTING)
        .handler(h)
}

static SCRIPT: &[Command] = &[
    sub("debug", 3, NOSCRIPT, script_debug).doc(
        "Set the debug mode for executed scripts.",
        "3.2.0",
        "O(1)",
    ),
    sub("exists", -3, NOSCRIPT, script_exists)
        .tips(&["request_policy:all_shards", "response_policy:agg_logical_and"])
        .doc(
            "Check existence of scripts in the script cache.",
            "2.6.0",
            "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).",
        ),
    sub("flush", -2, NOSCRIPT, script_flush)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .doc(
            "Remove all the scripts from the script cache.",
            "2.6.0",
            "O(N) with N being the number of scripts in cache",
        ),
    sub("help", 2, LOADING | STALE, script_help).doc(
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
    sub("kill", 2, NOSCRIPT | ALLOW_BUSY, script_kill)
        .tips(&["request_policy:all_shards", "response_policy:one_succeeded"])
        .doc(
            "Kill the script currently in execution.",
            "2.6.0",
            "O(1)",
        ),
    sub("load", 3, NOSCRIPT | STALE, script_load)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .doc(
            "Load the specified Lua script into the script cache.",
            "2.6.0",
            "O(N) with N being the length in bytes of the script body.",
        ),
];

static FUNCTION: &[Command] = &[
    sub("delete", 3, WRITE | NOSCRIPT, function_delete)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .doc("Delete a function by name", "7.0.0", "O(1)"),
    sub("dump", 2, NOSCRIPT, function_dump).doc(
        "Dump all functions into a serialized binary payload",
        "7.0.0",
        "O(N) where N is the number of functions",
    ),
    sub("flush", -2, WRITE | NOSCRIPT, function_flush)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .doc(
            "Deleting all functions",
            "7.0.0",
            "O(N) where N is the number of functions deleted",
        ),
    sub("help", 2, LOADING | STALE, function_help).doc(
        "Show helpful text about the different subcommands",
        "7.0.0",
        "O(1)",
    ),
    sub("kill", 2, NOSCRIPT | ALLOW_BUSY, function_kill)
        .tips(&["request_policy:all_shards", "response_policy:one_succeeded"])
        .doc("Kill the function currently in execution.", "7.0.0", "O(1)"),
    sub("list", -2, NOSCRIPT, function_list)
        .tips(&["nondeterministic_output_order"])
        .doc(
            "List information about all the functions",
            "7.0.0",
            "O(N) where N is the number of functions",
        ),
    sub("load", -3, WRITE | DENYOOM | NOSCRIPT, function_load)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .doc(
            "Create a function with the given arguments (name, code, description)",
            "7.0.0",
            "O(1) (considering compilation time is redundant)",
        ),
    sub("restore", -3, WRITE | DENYOOM | NOSCRIPT, function_restore)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .doc(
            "Restore all the functions on the given payload",
            "7.0.0",
            "O(N) where N is the number of functions on the payload",
        ),
    sub("stats", 2, NOSCRIPT | ALLOW_BUSY, function_stats)
        .tips(&[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ])
        .doc(
            "Return information about the function currently running (name, description, duration)",
            "7.0.0",
            "O(1)",
        ),
];

/// The key count of EVAL / FCALL, checked against the arguments; `not_int` is the error
/// for a count that is not a number (EVAL and FCALL word it differently).
fn numkeys(args: Args<'_>, not_int: CmdError) -> Result<usize, CmdError> {
    let n = parse_i64(args.get(2)).ok_or(not_int)?;
    if n > args.len() as i64 - 3 {
        return Err(CmdError::msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if n < 0 {
        return Err(CmdError::msg("ERR Number of keys can't be negative"));
    }
    Ok(n as usize)
}

const NOSCRIPT_ERR: &str = "NOSCRIPT No matching script. Please use EVAL.";
const WRITE_FLAG_RO: &str = "ERR Can not execute a script with write flag using *_ro command.";

fn eval(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

fn evalsha(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

fn eval_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

fn evalsha_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

/// EVAL[SHA][_RO] script|sha numkeys key... arg...
fn eval_generic(ctx: &mut Ctx<'_>, args: Args<'_>, by_sha: bool, ro: bool) -> CmdResult {
    if by_sha && args.get(1).len() != 40 {
        return Err(CmdError::msg(NOSCRIPT_ERR));
    }
    let nkeys = numkeys(args, CmdError::NotInteger)?;
    let (sha, script) = if by_sha {
        scripting::script_get(args.get(1)).ok_or(CmdError::msg(NOSCRIPT_ERR))?
    } else {
        let (sha, script, cached) = scripting::script_for_body(args.get(1))
            .map_err(|e| CmdError::msg(format!("ERR {e}")))?;
        if !cached {
            vm::compile(sha.as_str(), &script)?;
            scripting::script_insert(&sha, &script);
        }
        (sha, script)
    };
    let compat = script.flags & sflags::EVAL_COMPAT != 0;
    let no_writes = !compat && script.flags & sflags::NO_WRITES != 0;
    if ro && !compat && !no_writes {
        return Err(CmdError::msg(WRITE_FLAG_RO));
    }
    let inv = vm::Invocation {
        name: sha.as_str(),
        nkeys,
        read_only: ro || no_writes,
        allow_oom: !compat && script.flags & sflags::ALLOW_OOM != 0,
        command: args,
    };
    vm::run_script(ctx, sha.as_str(), &script, inv)
}

fn fcall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    fcall_generic(ctx, args, false)
}

fn fcall_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    fcall_generic(ctx, args, true)
}

/// FCALL[_RO] function numkeys key... arg...
fn fcall_generic(ctx: &mut Ctx<'_>, args: Args<'_>, ro: bool) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(1)).into_owned();
    let fl = scripting::with_libraries(|l, _| l.function(&name).map(|(_, f)| f.flags))
        .ok_or(CmdError::msg("ERR Function not found"))?;
    let nkeys = numkeys(args, CmdError::msg("ERR Bad number of keys provided"))?;
    let no_writes = fl & sflags::NO_WRITES != 0;
    if ro && !no_writes {
        return Err(CmdError::msg(WRITE_FLAG_RO));
    }
    let inv = vm::Invocation {
        name: &name,
        nkeys,
        read_only: ro || no_writes,
        allow_oom: fl & sflags::ALLOW_OOM != 0,
        command: args,
    };
    vm::run_function(ctx, inv)
}

/// SCRIPT FLUSH / FUNCTION FLUSH's optional mode (both flush at once here: the old
/// interpreters are dropped as their threads next run a script).
fn flush_mode(args: Args<'_>, err: &'static str) -> CmdResult {
    match args.len() {
        2 => Ok(()),
        3 if args.get(2).eq_ignore_ascii_case(b"sync")
            || args.get(2).eq_ignore_ascii_case(b"async") =>
        {
            Ok(())
        }
        _ => Err(CmdError::msg(err)),
    }
}

fn script_flush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    flush_mode(args, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")?;
    scripting::script_flush();
    ctx.srv.send_to_workers(|| crate::net::Msg::ScriptsFlushed);
    ctx.out.ok();
    Ok(())
}

fn script_exists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ctx.out.array(args.len() - 2);
    for sha in args.iter().skip(2) {
        ctx.out.int(i64::from(scripting::script_exists(sha)));
    }
    Ok(())
}

fn script_load(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (sha, script, cached) =
        scripting::script_for_body(args.get(2)).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    if !cached {
        vm::compile(sha.as_str(), &script)?;
        scripting::script_insert(&sha, &script);
    }
    ctx.out.bulk(sha.as_str().as_bytes());
    Ok(())
}

fn script_kill(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    scripting::kill(true)?;
    ctx.out.ok();
    Ok(())
}

/// SCRIPT DEBUG: the Lua debugger is not available; NO (the default) is accepted.
fn script_debug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mode = args.get(2);
    if mode.eq_ignore_ascii_case(b"no") {
        ctx.out.ok();
        return Ok(());
    }
    if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
        return Err(CmdError::msg("ERR The Lua debugger is not supported"));
    }
    Err(CmdError::msg("ERR Use SCRIPT DEBUG YES/SYNC/NO"))
}

fn script_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.help(&[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ]);
    Ok(())
}

/// Splits a library's shebang (`#!lua name=mylib`): (engine, name), or Redis's error.
fn library_meta(code: &[u8]) -> Result<(String, String), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = memchr::memchr(b'\n', code) else {
        return Err("Invalid library metadata".into());
    };
    // Redis splits the line as it splits inline commands: `name="my lib"` is `my lib`.
    let words = flowkv_protocol::split_words(&code[..end]).ok_or("Invalid library metadata")?;
    let mut parts = words.iter().map(|w| String::from_utf8_lossy(w));
    let engine = parts.next().ok_or("Invalid library metadata")?[2..].to_string();
    let mut name = None;
    for part in parts {
        match part.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("name=") => {
                if name.is_some() {
                    return Err(
                        "Invalid metadata value, name argument was given multiple times".into(),
                    );
                }
                name = Some(part[5..].to_string());
            }
            _ => return Err(format!("Invalid metadata value given: {part}")),
        }
    }
    let name = name.ok_or("Library name was not given")?;
    Ok((engine, name))
}

/// Checks a library's shebang: its name, valid and with a known engine.
fn library_name(code: &[u8]) -> Result<String, String> {
    let (engine, name) = library_meta(code)?;
    if !vm::valid_name(&name) {
        return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok(name)
}

/// Validates a library's code and runs it to find its functions.
pub(crate) fn build_library(code: &[u8]) -> Result<Library, String> {
    let name = library_name(code)?;
    vm::check_library(&name, "LUA", code)
}

/// FUNCTION LOAD [REPLACE] code
fn function_load(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut replace = false;
    let mut i = 2;
    while i < args.len() - 1 {
        let a = args.get(i);
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(a)
            )));
        }
        i += 1;
    }
    let code = args.get(args.len() - 1);
    let lib = (|| {
        let name = library_name(code)?;
        if !replace
            && scripting::with_libraries(|l, _| l.libs.contains_key(&name.to_ascii_lowercase()))
        {
            return Err(format!("Library '{name}' already exists"));
        }
        build_library(code)
    })()
    .map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    let name = lib.name.clone();
    scripting::update_libraries(|l| l.add(lib, replace))
        .map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    ctx.dirty += 1;
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

fn function_delete(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(2)).into_owned();
    scripting::update_libraries(|l| {
        if l.remove(&name) {
            Ok(())
        } else {
            Err("Library not found".into())
        }
    })
    .map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

fn function_flush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::msg(
            "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.",
        ));
    }
    flush_mode(args, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")?;
    let _ = scripting::update_libraries(|l| {
        *l = scripting::Libraries::default();
        Ok(())
    });
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

fn function_kill(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    scripting::kill(false)?;
    ctx.out.ok();
    Ok(())
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
fn function_list(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 2;
    while i < args.len() {
        let a = args.get(i);
        if !with_code && a.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && a.eq_ignore_ascii_case(b"libraryname") {
            if i + 1 >= args.len() {
                return Err(CmdError::msg("ERR library name argument was not given"));
            }
            i += 1;
            pattern = Some(args.get(i));
        } else {
            return Err(CmdError::msg(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(a)
            )));
        }
        i += 1;
    }
    let (libs, _) = scripting::libraries();
    let selected: Vec<_> = libs
        .libs
        .values()
        .filter(|l| pattern.is_none_or(|p| glob_match(p, l.name.as_bytes(), true)))
        .collect();
    let out = &mut ctx.out;
    out.array(selected.len());
    for lib in selected {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(lib.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(lib.engine.as_bytes());
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in &lib.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.desc {
                Some(d) => out.bulk(d.as_bytes()),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> = sflags::NAMES
                .iter()
                .filter(|(bit, _)| f.flags & bit != 0)
                .map(|&(_, n)| n)
                .collect();
            out.set(names.len());
            for n in names {
                out.simple(n.as_bytes());
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
    Ok(())
}

/// FUNCTION STATS: the running script (if a function) and the engine's counts.
fn function_stats(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let running = scripting::running_script();
    let r = &*scripting::RUNNING;
    if running.is_some() && r.eval.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(scripting::busy_error(true));
    }
    let (funcs, libs) = scripting::function_counts();
    let out = &mut ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match running {
        None => out.null(),
        Some((name, command, ms)) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name.as_bytes());
            out.bulk(b"command");
            out.array(command.len());
            for a in &command {
                out.bulk(a);
            }
            out.bulk(b"duration_ms");
            out.int(ms as i64);
        }
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(libs as i64);
    out.bulk(b"functions_count");
    out.int(funcs as i64);
    Ok(())
}

/// RDB's opcode for a function library (the code follows as an RDB string).
const RDB_OPCODE_FUNCTION2: u8 = 245;
/// The RDB version written after a dump, as Redis 7.0 does.
const RDB_VERSION: u16 = 10;
/// RDB string encodings (the top two bits of the length byte being 11).
const RDB_ENC_INT8: u8 = 0;
const RDB_ENC_INT16: u8 = 1;
const RDB_ENC_INT32: u8 = 2;
const RDB_ENC_LZF: u8 = 3;

fn crc64(data: &[u8]) -> u64 {
    crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(data)
}

/// Appends an RDB length.
fn rdb_len(out: &mut Vec<u8>, n: usize) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
}

/// FUNCTION DUMP: every library as Redis serializes it (RDB FUNCTION2 records, the RDB
/// version, CRC64), so a dump restores in Redis and Redis's dumps restore here.
fn function_dump(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let (libs, _) = scripting::libraries();
    let mut out = Vec::new();
    for lib in libs.libs.values() {
        out.push(RDB_OPCODE_FUNCTION2);
        rdb_len(&mut out, lib.code.len());
        out.extend_from_slice(&lib.code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    ctx.out.bulk(&out);
    Ok(())
}

/// A cursor over a dump payload.
struct RdbReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl RdbReader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// An RDB length: (value, true if it is a special string encoding instead).
    fn len(&mut self) -> Option<(u64, bool)> {
        let b = self.byte()?;
        Some(match b >> 6 {
            0 => (u64::from(b & 0x3f), false),
            1 => (u64::from(b & 0x3f) << 8 | u64::from(self.byte()?), false),
            2 if b == 0x80 => (
                u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
                false,
            ),
            2 if b == 0x81 => (u64::from_be_bytes(self.take(8)?.try_into().ok()?), false),
            3 => (u64::from(b & 0x3f), true),
            _ => return None,
        })
    }

    /// An RDB string (plain, integer-encoded or LZF-compressed).
    fn string(&mut self) -> Option<Vec<u8>> {
        let (n, special) = self.len()?;
        if !special {
            return self.take(usize::try_from(n).ok()?).map(<[u8]>::to_vec);
        }
        match n as u8 {
            RDB_ENC_INT8 => Some((self.byte()? as i8).to_string().into_bytes()),
            RDB_ENC_INT16 => Some(
                i16::from_le_bytes(self.take(2)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            RDB_ENC_INT32 => Some(
                i32::from_le_bytes(self.take(4)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            RDB_ENC_LZF => {
                let (clen, _) = self.len()?;
                let (len, _) = self.len()?;
                let data = self.take(usize::try_from(clen).ok()?)?;
                lzf::decompress(data, usize::try_from(len).ok()?).ok()
            }
            _ => None,
        }
    }
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
fn function_restore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::msg(
            "ERR unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP.",
        ));
    }
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy =
        match args.try_get(3) {
            None => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
            Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
            Some(_) => return Err(CmdError::msg(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )),
        };
    let data = args.get(2);
    let bad = || CmdError::msg("ERR DUMP payload version or checksum are wrong");
    if data.len() < 10 {
        return Err(bad());
    }
    let (body, crc) = data.split_at(data.len() - 8);
    let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
    let crc = u64::from_le_bytes(crc.try_into().map_err(|_| bad())?);
    if version > RDB_VERSION || (crc != 0 && crc != crc64(body)) {
        return Err(bad());
    }
    let mut rd = RdbReader {
        buf: &body[..body.len() - 2],
        pos: 0,
    };
    let mut loaded = Vec::new();
    while rd.pos < rd.buf.len() {
        let err = |m: &str| CmdError::msg(format!("ERR {m}"));
        let t = rd.byte().ok_or_else(|| err("can not read data type"))?;
        if t != RDB_OPCODE_FUNCTION2 {
            return Err(err("given type is not a function"));
        }
        let code = rd
            .string()
            .ok_or_else(|| err("failed loading the given functions payload"))?;
        loaded.push(build_library(&code).map_err(|e| err(&e))?);
    }
    scripting::update_libraries(|l| {
        if policy == Policy::Flush {
            *l = scripting::Libraries::default();
        }
        for lib in loaded {
            if policy == Policy::Append && l.libs.contains_key(&lib.name.to_ascii_lowercase()) {
                return Err(format!("Library {} already exists", lib.name));
            }
            l.add(lib, policy != Policy::Append)?;
        }
        Ok(())
    })
    .map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

fn function_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.help(&[
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ]);
    Ok(())
}
