//! The Lua interpreters: one for EVAL scripts and one for function libraries per worker
//! thread, each set up as Redis sets up its own (the allowed globals, the `redis` API, the
//! cjson / cmsgpack / bit / struct libraries, read-only globals and library tables), and the
//! code that runs a script under the calling command's locks.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_int;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use flowkv_protocol::{format_double, Args, OwnedArgs, Proto};
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::reply::{error_table, error_text, Decoder, Writer};
use super::{sflags, FunctionInfo, Library, RUNNING};
use crate::command::flags;
use crate::commands::{table, Lookup};
use crate::ctx::Ctx;
use crate::dispatch::call_nested;
use crate::error::{CmdError, CmdResult};
use crate::server::unix_ms;

/// An error raised by our Rust code into Lua, keeping what Redis keeps in its error tables.
#[derive(Debug, Clone)]
pub enum ScriptError {
    /// Like a Lua string error (`error("x")`): `pcall` sees the text, the reply adds `ERR `.
    Plain(String),
    /// Like Redis's `{err=...}` table: the full error line, code included.
    Table { msg: String, ignore_stats: bool },
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::Plain(m) | ScriptError::Table { msg: m, .. } => f.write_str(m),
        }
    }
}

impl std::error::Error for ScriptError {}

/// A Lua error carrying `e`.
fn raise(e: ScriptError) -> mlua::Error {
    mlua::Error::external(e)
}

/// A `{err=...}`-style error with Redis's `ERR` prefix rule applied to `text`.
fn table_error(text: &str) -> mlua::Error {
    raise(ScriptError::Table {
        msg: String::from_utf8_lossy(&error_text(text.as_bytes())).into_owned(),
        ignore_stats: false,
    })
}

/// Finds the [`ScriptError`] inside an mlua error, if it carries one.
fn script_error(e: &mlua::Error) -> Option<&ScriptError> {
    match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<ScriptError>(),
        mlua::Error::CallbackError { cause, .. } => script_error(cause),
        mlua::Error::WithContext { cause, .. } => script_error(cause),
        _ => None,
    }
}

/// The text of an mlua error that is not a [`ScriptError`] (a runtime error from Lua itself).
fn plain_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => plain_text(cause),
        mlua::Error::WithContext { cause, .. } => plain_text(cause),
        other => other.to_string(),
    }
}

/// Name of our own Lua chunks; error positions skip their frames.
const INTERNAL: &str = "=flowkv";

/// `user_script:3: ` for the innermost frame of user code, as luaL_error prefixes messages.
fn where_prefix(lua: &Lua) -> String {
    for level in 1..8 {
        let Some(d) = lua.inspect_stack(level) else {
            break;
        };
        let src = d.source();
        if src.what == "C" || src.source.as_deref() == Some(INTERNAL) {
            continue;
        }
        let short = src.short_src.as_deref().unwrap_or("?").to_string();
        return format!("{short}:{}: ", d.curr_line());
    }
    String::new()
}

/// Which interpreter: EVAL scripts or function libraries (Redis keeps them apart too).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Eval,
    Functions,
}

/// What the count hook checks: nothing, a running script, or a FUNCTION LOAD (with its
/// start time in ms).
#[derive(Clone, Copy, PartialEq, Eq)]
enum HookState {
    Idle,
    Script { threshold_ms: u64, started_ms: u64 },
    Loading { started_ms: u64 },
}

/// Redis's FUNCTION LOAD time limit.
const LOAD_TIMEOUT_MS: u64 = 500;
/// Instructions between two looks at the clock and the kill flag.
const HOOK_EVERY: u32 = 10_000;

thread_local! {
    static HOOK: Cell<HookState> = const { Cell::new(HookState::Idle) };
    /// The running script's protocol (`redis.setresp`): 2 or 3.
    static SCRIPT_RESP: Cell<u8> = const { Cell::new(2) };
    /// Functions registered by the library being loaded.
    static REGISTERING: RefCell<Option<Vec<(FunctionInfo, Function)>>> = const { RefCell::new(None) };
    static EVAL_VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
    static FUNC_VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
    /// Lua memory of this thread's interpreters, refreshed after each script.
    static LUA_MEMORY: Cell<[usize; 2]> = const { Cell::new([0; 2]) };
    /// The arguments of the `redis.call` being read: [`collect_call_args`] copies them off
    /// the Lua stack into this reused buffer; the flag marks an argument that is neither a
    /// string nor a number.
    static CALL_ARGS: RefCell<(OwnedArgs, bool)> = RefCell::new((OwnedArgs::new(), false));
    /// The running script's name and command line, kept here (buffers reused) and shown to
    /// other threads (FUNCTION STATS) only once the script has run long enough for the count
    /// hook to fire: before that, as in Redis, nobody else can see it running.
    /// What the running script's `redis.call` works on: set by [`CallStateGuard`] for the
    /// length of one run, null otherwise.
    static CALL_STATE: Cell<*const RefCell<CallState<'static, 'static>>> =
        const { Cell::new(std::ptr::null()) };
    static CURRENT: RefCell<(String, OwnedArgs)> = RefCell::new((String::new(), OwnedArgs::new()));
    static PUBLISHED: Cell<bool> = const { Cell::new(false) };
}

/// Lua memory in use (bytes) by mode (EVAL, functions), summed over the interpreters of
/// every worker that ran one.
static TOTAL_LUA_MEMORY: [std::sync::atomic::AtomicUsize; 2] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

/// The interpreters' memory for `mode`: INFO's used_memory_vm_eval (alias used_memory_lua)
/// and used_memory_vm_functions. At least one empty interpreter's worth, as Redis always
/// has one of each.
pub fn used_memory(mode: Mode) -> usize {
    TOTAL_LUA_MEMORY[mode as usize].load(Relaxed).max(31 * 1024)
}

/// Records that this thread's interpreter for `mode` now uses `now` bytes.
fn note_memory(mode: Mode, now: usize) {
    LUA_MEMORY.with(|m| {
        let mut all = m.get();
        let slot = &mut all[mode as usize];
        let before = std::mem::replace(slot, now);
        m.set(all);
        let total = &TOTAL_LUA_MEMORY[mode as usize];
        if now >= before {
            total.fetch_add(now - before, Relaxed);
        } else {
            total.fetch_sub(before - now, Relaxed);
        }
    });
}

/// One interpreter.
pub struct Vm {
    pub lua: Lua,
    /// The protected environment user code runs in.
    env: Table,
    /// The environment's metatable, whose `__index` switches between the full globals and
    /// the load-time API while a library loads.
    env_meta: Table,
    globals_view: Table,
    load_api: Option<Table>,
    /// `runner(f, how)`: calls `f` under xpcall with the error handler; `how` is one of
    /// [`Run`]'s values.
    runner: Function,
    /// Compiled scripts by SHA1 (Eval) or functions by lower-case name (Functions).
    compiled: HashMap<String, (Function, u32), ahash::RandomState>,
    /// Generation of the scripts / libraries `compiled` was built from.
    gen: u64,
    /// Runs since the last garbage-collection step (see [`GC_PERIOD`]).
    runs: u32,
}

/// Every this many runs the VM takes an incremental garbage-collection step (of
/// [`GC_STEP_KB`]), as Redis does: Lua's own pacing lets garbage grow to twice the live
/// heap before it collects.
///
/// Measured with 10,000 runs of a GET + INCR script: Lua's pacing alone peaks at 98 KB
/// and costs 1,300 instructions a run in the collector; a full cycle every 50 runs (what
/// Redis's step amounts to) holds 46 KB for 2,500; an 8 KB step every 50 runs holds 47 KB
/// for 1,640.
const GC_PERIOD: u32 = 50;
const GC_STEP_KB: c_int = 8;

/// Globals Redis leaves to scripts (its allow lists).
const ALLOWED_GLOBALS: &[&str] = &[
    "string",
    "math",
    "table",
    "xpcall",
    "tostring",
    "getfenv",
    "setmetatable",
    "next",
    "assert",
    "tonumber",
    "rawequal",
    "collectgarbage",
    "getmetatable",
    "rawset",
    "pcall",
    "coroutine",
    "type",
    "_G",
    "select",
    "unpack",
    "gcinfo",
    "pairs",
    "rawget",
    "loadstring",
    "ipairs",
    "_VERSION",
    "setfenv",
    "load",
    "error",
    "newproxy",
];

/// Lua setup shared by both interpreters: read-only proxies for the library tables and the
/// globals, `setmetatable`/`rawset` that refuse protected tables, Redis's `pcall` (error
/// tables become their message), `loadstring` refusing bytecode, and the xpcall runner.
const SANDBOX: &str = r#"
local G, ro_error, global_error, errmsg, handler, ro_plain, arrays = ...
local rawsetmt, rawgetmt, rawset_, rawpcall, rawloadstring, xpcall_ =
    setmetatable, getmetatable, rawset, pcall, loadstring, xpcall
local type_, select_ = type, select
local protected = rawsetmt({}, {__mode = 'k'})
local function protect(t)
    local meta = {__index = t, __newindex = ro_error}
    local metaview = rawsetmt({}, {__index = meta, __newindex = ro_error, __metatable = false})
    meta.__metatable = metaview
    local p = rawsetmt({}, meta)
    protected[p] = true
    protected[metaview] = true
    return p, meta
end
G.setmetatable = function(t, m)
    if protected[t] then ro_plain() end
    return rawsetmt(t, m)
end
G.rawset = function(t, k, v)
    if protected[t] then ro_plain() end
    return rawset_(t, k, v)
end
local function fix(ok, ...)
    if ok then return true, ... end
    return false, errmsg((...))
end
G.pcall = function(f, ...)
    return fix(rawpcall(f, ...))
end
G.loadstring = function(s, name)
    if type_(s) == 'string' and s:byte(1) == 27 then
        return nil, 'binary chunks are not allowed'
    end
    return rawloadstring(s, name)
end
for _, name in ipairs({'string', 'math', 'table', 'coroutine', 'redis', 'cjson', 'cmsgpack', 'bit', 'struct'}) do
    if G[name] ~= nil then G[name] = protect(G[name]) end
end
local env, env_meta = protect(G)
G._G = env
rawsetmt(G, {__index = global_error, __newindex = ro_error, __metatable = false})
local function runner(f, how)
    if how == 0 then
        return xpcall_(f, handler)
    end
    local keys, args = arrays()
    if how == 1 then
        rawset_(G, 'KEYS', keys)
        rawset_(G, 'ARGV', args)
        return xpcall_(f, handler)
    end
    return xpcall_(function() return f(keys, args) end, handler)
end
return env, env_meta, protect, runner
"#;

impl Vm {
    /// A new interpreter set up like Redis's.
    fn new(mode: Mode) -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::new(),
        )?;
        let g = lua.globals();
        let names: Vec<String> = g
            .pairs::<Value, Value>()
            .flatten()
            .filter_map(|(k, _)| match k {
                Value::String(s) => Some(s.to_string_lossy()),
                _ => None,
            })
            .collect();
        for n in names {
            if !ALLOWED_GLOBALS.contains(&n.as_str()) {
                g.raw_set(n, Value::Nil)?;
            }
        }
        g.raw_set("redis", redis_api(&lua, mode)?)?;
        super::libs::register(&lua, &g)?;

        let ro_error = lua.create_function(|lua, _: MultiValue| -> mlua::Result<()> {
            Err(raise(ScriptError::Plain(format!(
                "{}Attempt to modify a readonly table",
                where_prefix(lua)
            ))))
        })?;
        let global_error =
            lua.create_function(|lua, (_, k): (Value, Value)| -> mlua::Result<()> {
                let name = match &k {
                    Value::String(s) => s.to_string_lossy(),
                    other => format!("{other:?}"),
                };
                Err(raise(ScriptError::Plain(format!(
                    "{}Script attempted to access nonexistent global variable '{name}'",
                    where_prefix(lua)
                ))))
            })?;
        let errmsg = lua.create_function(|lua, v: Value| -> mlua::Result<Value> {
            Ok(match v {
                Value::Error(e) => {
                    let text = match script_error(&e) {
                        Some(se) => se.to_string(),
                        None => plain_text(&e),
                    };
                    Value::String(lua.create_string(text)?)
                }
                Value::Table(t) => match t.raw_get::<Value>("err")? {
                    s @ Value::String(_) => s,
                    _ => Value::Table(t),
                },
                other => other,
            })
        })?;
        let handler = lua.create_function(error_handler)?;
        let ro_plain = lua.create_function(|_, _: MultiValue| -> mlua::Result<()> {
            Err(raise(ScriptError::Plain(
                "Attempt to modify a readonly table".into(),
            )))
        })?;
        let (env, env_meta, protect, runner): (Table, Table, Function, Function) =
            lua.load(SANDBOX).set_name(INTERNAL).call((
                g.clone(),
                ro_error,
                global_error.clone(),
                errmsg,
                handler,
                ro_plain,
                // SAFETY: `push_key_arg_arrays` follows Lua's C function protocol (see its
                // SAFETY notes).
                unsafe { lua.create_c_function(push_key_arg_arrays)? },
            ))?;
        let globals_view = g.clone();
        let load_api = match mode {
            Mode::Eval => None,
            Mode::Functions => {
                let api = lua.create_table()?;
                let r = lua.create_table()?;
                r.raw_set("register_function", lua.create_function(register_function)?)?;
                add_log_and_version(&lua, &r)?;
                let strict = lua.create_table()?;
                strict.raw_set("__index", global_error)?;
                r.set_metatable(Some(strict));
                let r: Table = protect.call(r)?;
                api.raw_set("redis", r)?;
                api.set_metatable(Some(g.metatable().unwrap_or(lua.create_table()?)));
                Some(api)
            }
        };
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            count_hook,
        );
        let gen = match mode {
            Mode::Eval => super::scripts_generation(),
            Mode::Functions => 0,
        };
        Ok(Vm {
            lua,
            env,
            env_meta,
            globals_view,
            load_api,
            runner,
            compiled: HashMap::default(),
            gen,
            runs: 0,
        })
    }

    /// Compiles an EVAL script (without its shebang line, whose newline stays so line
    /// numbers match) or returns Redis's compile error.
    fn compile_script(&mut self, sha: &str, script: &super::Script) -> Result<Function, CmdError> {
        if let Some((f, _)) = self.compiled.get(sha) {
            return Ok(f.clone());
        }
        let code = &script.body[script.shebang_len..];
        let f = self
            .lua
            .load(code)
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                CmdError::msg(format!(
                    "ERR Error compiling script (new function): {}",
                    syntax_text(&e)
                ))
            })?;
        self.compiled
            .insert(sha.to_string(), (f.clone(), script.flags));
        Ok(f)
    }

    /// Runs a library's code with the load-time API, collecting what it registers.
    fn load_library(&self, code: &[u8]) -> Result<Vec<(FunctionInfo, Function)>, String> {
        let f = self
            .lua
            .load(code)
            .set_name("@user_function")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| format!("Error compiling function: {}", syntax_text(&e)))?;
        let api = self.load_api.clone().ok_or("not a functions interpreter")?;
        let restore = self.env_meta.raw_get::<Value>("__index").ok();
        let _ = self.env_meta.raw_set("__index", api);
        REGISTERING.with(|r| *r.borrow_mut() = Some(Vec::new()));
        HOOK.with(|h| {
            h.set(HookState::Loading {
                started_ms: unix_ms(),
            })
        });
        let result = self.runner.call::<(bool, Value)>((f, Run::Load as u8));
        HOOK.with(|h| h.set(HookState::Idle));
        let registered = REGISTERING
            .with(|r| r.borrow_mut().take())
            .unwrap_or_default();
        let _ = self.env_meta.raw_set(
            "__index",
            restore.unwrap_or(Value::Table(self.globals_view.clone())),
        );
        match result {
            Ok((true, _)) => Ok(registered),
            Ok((false, err)) => Err(format!(
                "Error registering functions: {}",
                error_message(&err, true).0
            )),
            Err(e) => Err(format!("Error registering functions: {e}")),
        }
    }

    /// Makes sure the compiled functions match the current libraries.
    fn sync_functions(&mut self) {
        let (libs, gen) = super::libraries();
        if gen == self.gen {
            return;
        }
        self.compiled.clear();
        for lib in libs.libs.values() {
            let code = strip_shebang(&lib.code);
            if let Ok(funcs) = self.load_library(code) {
                for (info, f) in funcs {
                    self.compiled
                        .insert(info.name.to_ascii_lowercase(), (f, info.flags));
                }
            }
        }
        self.gen = gen;
    }
}

/// The code after a library's shebang line (the newline stays, so line numbers match).
fn strip_shebang(code: &[u8]) -> &[u8] {
    match memchr::memchr(b'\n', code) {
        Some(i) if code.starts_with(b"#!") => &code[i..],
        _ => code,
    }
}

/// Lua's own text of a compile error (`user_script:1: unfinished string near '<eof>'`).
fn syntax_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => plain_text(other),
    }
}

/// The count hook: stops a killed script (then fires on every line, so `pcall` can't
/// swallow the kill), marks a script that ran past `busy-reply-threshold` as timed out, and
/// ends a FUNCTION LOAD that runs too long.
fn count_hook(lua: &Lua, _: mlua::Debug) -> mlua::Result<VmState> {
    match HOOK.with(|h| h.get()) {
        HookState::Idle => Ok(VmState::Continue),
        HookState::Script {
            threshold_ms,
            started_ms,
        } => {
            let r = &*RUNNING;
            if !PUBLISHED.with(|p| p.replace(true)) {
                *r.info.lock() = CURRENT.with(|c| {
                    let (name, command) = &*c.borrow();
                    Some((
                        name.clone(),
                        command.as_args().iter().map(<[u8]>::to_vec).collect(),
                    ))
                });
            }
            if r.kill.load(Relaxed) {
                lua.set_hook(
                    HookTriggers::new().every_line().every_nth_instruction(1),
                    count_hook,
                );
                eprintln!("Lua script killed by user with SCRIPT KILL.");
                return Err(table_error("Script killed by user with SCRIPT KILL..."));
            }
            if threshold_ms > 0
                && !r.timed_out.load(Relaxed)
                && unix_ms().saturating_sub(started_ms) >= threshold_ms
            {
                eprintln!(
                    "Slow script detected: still in execution after {threshold_ms} milliseconds. \
                     You can try killing the script using the {} command.",
                    if r.eval.load(Relaxed) {
                        "SCRIPT KILL"
                    } else {
                        "FUNCTION KILL"
                    }
                );
                r.timed_out.store(true, Relaxed);
            }
            if r.timed_out.load(Relaxed) {
                crate::net::serve_while_busy();
            }
            Ok(VmState::Continue)
        }
        HookState::Loading { started_ms } => {
            if unix_ms().saturating_sub(started_ms) > LOAD_TIMEOUT_MS {
                lua.set_hook(
                    HookTriggers::new().every_line().every_nth_instruction(1),
                    count_hook,
                );
                return Err(table_error("FUNCTION LOAD timeout"));
            }
            Ok(VmState::Continue)
        }
    }
}

/// The xpcall message handler: turns any error into Redis's error table
/// `{err=, source=, line=}`, the position being that of the user code that failed (the
/// caller when the error came from a C function such as `error` or `redis.call`).
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match err {
        Value::Table(t) if matches!(t.raw_get::<Value>("err")?, Value::String(_)) => t,
        Value::Error(e) => match script_error(&e) {
            Some(ScriptError::Table { msg, ignore_stats }) => {
                let t = lua.create_table()?;
                t.raw_set("err", msg.as_str())?;
                if *ignore_stats {
                    t.raw_set("ignore_error_stats_update", true)?;
                }
                t
            }
            Some(ScriptError::Plain(m)) => error_table(lua, m.as_bytes(), false)?,
            None => error_table(lua, plain_text(&e).as_bytes(), false)?,
        },
        Value::String(s) => error_table(lua, &s.as_bytes(), false)?,
        other => {
            let text = lua
                .coerce_string(other.clone())?
                .map(|s| s.to_string_lossy())
                .unwrap_or_else(|| other.type_name().to_string());
            error_table(lua, text.as_bytes(), false)?
        }
    };
    // The position is that of the Lua code that raised it or called the C function that
    // did (`redis.call` is two C frames: its argument collector and the Rust function).
    let mut level = 1;
    while lua
        .inspect_stack(level)
        .is_some_and(|d| d.source().what == "C")
    {
        level += 1;
    }
    while lua
        .inspect_stack(level)
        .is_some_and(|d| d.source().source.as_deref() == Some(INTERNAL))
    {
        level += 1;
    }
    let info = lua.inspect_stack(level);
    if let Some(d) = info {
        if let Some(src) = d.source().source {
            t.raw_set("source", src.as_ref())?;
            t.raw_set("line", d.curr_line())?;
        }
    }
    Ok(t)
}

/// The message of an error value caught by the runner, and whether it was already counted
/// in the error stats.
fn error_message(err: &Value, bare: bool) -> (String, bool) {
    let Value::Table(t) = err else {
        return ("ERR execution failure".into(), false);
    };
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        _ => "ERR execution failure".into(),
    };
    let ignore = matches!(
        t.raw_get::<Value>("ignore_error_stats_update"),
        Ok(Value::Boolean(true))
    );
    if bare {
        return (msg, ignore);
    }
    (msg, ignore)
}

/// `redis.log`, the LOG_* levels and the version fields, shared by the run-time and the
/// load-time `redis` tables.
fn add_log_and_version(lua: &Lua, r: &Table) -> mlua::Result<()> {
    r.raw_set("log", lua.create_function(redis_log)?)?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        r.raw_set(name, level)?;
    }
    r.raw_set("REDIS_VERSION", crate::info::REDIS_VERSION)?;
    r.raw_set("REDIS_VERSION_NUM", version_num(crate::info::REDIS_VERSION))?;
    Ok(())
}

/// "7.0.15" -> 0x00070f, Redis's REDIS_VERSION_NUM.
fn version_num(v: &str) -> i64 {
    v.split('.')
        .map(|p| p.parse::<i64>().unwrap_or(0))
        .chain(std::iter::repeat(0))
        .take(3)
        .fold(0, |acc, p| (acc << 8) | (p & 0xff))
}

/// The run-time `redis` table.
fn redis_api(lua: &Lua, mode: Mode) -> mlua::Result<Table> {
    let r = lua.create_table()?;
    let run = lua.create_function(dispatch_call)?;
    r.raw_set("call", collecting_args(lua, run.clone(), true)?)?;
    r.raw_set("pcall", collecting_args(lua, run, false)?)?;
    add_log_and_version(lua, &r)?;
    r.raw_set(
        "setresp",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(table_error("redis.setresp() requires one argument."));
            }
            match args.front().and_then(number) {
                Some(n) if n as i64 == 2 || n as i64 == 3 => {
                    SCRIPT_RESP.with(|r| r.set(n as u8));
                    Ok(())
                }
                _ => Err(table_error("RESP version must be 2 or 3.")),
            }
        })?,
    )?;
    r.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(table_error("wrong number of arguments"));
            }
            let bytes = match args.front() {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(v @ (Value::Number(_) | Value::Integer(_))) => lua
                    .coerce_string(v.clone())?
                    .map(|s| s.as_bytes().to_vec())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            Ok(super::sha1_hex(&bytes))
        })?,
    )?;
    r.raw_set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| -> mlua::Result<Table> {
            match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => {
                    let s = s.as_bytes();
                    let mut line = Vec::with_capacity(s.len() + 1);
                    if !s.starts_with(b"-") {
                        line.push(b'-');
                    }
                    line.extend_from_slice(&s);
                    error_table(lua, &line, false)
                }
                _ => error_table(lua, b"wrong number or type of arguments", false),
            }
        })?,
    )?;
    r.raw_set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| -> mlua::Result<Table> {
            match (args.len(), args.front()) {
                (1, Some(s @ Value::String(_))) => {
                    let t = lua.create_table()?;
                    t.raw_set("ok", s.clone())?;
                    Ok(t)
                }
                _ => error_table(lua, b"wrong number or type of arguments", false),
            }
        })?,
    )?;
    r.raw_set(
        "set_repl",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(table_error("redis.set_repl() requires two arguments."));
            }
            match args.front().and_then(number) {
                Some(n) if (n as i64) & !3 == 0 => Ok(()),
                _ => Err(table_error(
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                )),
            }
        })?,
    )?;
    for (name, v) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        r.raw_set(name, v)?;
    }
    let check = lua.create_function(|_, _: bool| acl_check_cmd())?;
    r.raw_set("acl_check_cmd", collecting_args(lua, check, false)?)?;
    if mode == Mode::Eval {
        r.raw_set(
            "replicate_commands",
            lua.create_function(|_, _: MultiValue| Ok(true))?,
        )?;
        r.raw_set(
            "breakpoint",
            lua.create_function(|_, _: MultiValue| Ok(false))?,
        )?;
        r.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    }
    Ok(r)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(i) => Some(*i as f64),
        Value::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// redis.log(level, message...).
fn redis_log(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() < 2 {
        return Err(table_error("redis.log() requires two arguments or more."));
    }
    let Some(level) = args.front().and_then(number) else {
        return Err(table_error("First argument must be a number (log level)."));
    };
    if !(0.0..=3.0).contains(&level) {
        return Err(table_error("Invalid debug level."));
    }
    let parts: Vec<String> = args
        .iter()
        .skip(1)
        .filter_map(|v| match v {
            Value::String(s) => Some(s.to_string_lossy()),
            Value::Number(_) | Value::Integer(_) => number(v).map(|n| n.to_string()),
            _ => None,
        })
        .collect();
    let mark = ['.', '-', '*', '#'][level as usize];
    eprintln!("{mark} {}", parts.join(" "));
    Ok(())
}

/// `redis.register_function(name, callback)` or `redis.register_function{...}`.
fn register_function(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    let active = REGISTERING.with(|r| r.borrow().is_some());
    if !active {
        return Err(table_error(
            "redis.register_function can only be called on FUNCTION LOAD command",
        ));
    }
    let (info, f) = match args.len() {
        1 => named_registration(args.front())?,
        2 => {
            let name = match args.front() {
                Some(Value::String(s)) => s.to_string_lossy(),
                Some(v @ (Value::Number(_) | Value::Integer(_))) => {
                    number(v).map(|n| n.to_string()).unwrap_or_default()
                }
                _ => {
                    return Err(table_error(
                        "first argument to redis.register_function must be a string",
                    ))
                }
            };
            let Some(Value::Function(f)) = args.get(1) else {
                return Err(table_error(
                    "second argument to redis.register_function must be a function",
                ));
            };
            (
                FunctionInfo {
                    name,
                    desc: None,
                    flags: 0,
                },
                f.clone(),
            )
        }
        _ => {
            return Err(table_error(
                "wrong number of arguments to redis.register_function",
            ))
        }
    };
    if !valid_name(&info.name) {
        return Err(table_error(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    REGISTERING.with(|r| {
        let mut r = r.borrow_mut();
        let list = r.as_mut().expect("checked above");
        if list
            .iter()
            .any(|(i, _)| i.name.eq_ignore_ascii_case(&info.name))
        {
            return Err(table_error("Function already exists in the library"));
        }
        list.push((info, f));
        Ok(())
    })
}

/// Library and function names: letters, digits and underscores, at least one.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The named-argument form of register_function.
fn named_registration(arg: Option<&Value>) -> mlua::Result<(FunctionInfo, Function)> {
    let Some(Value::Table(t)) = arg else {
        return Err(table_error("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."));
    };
    let (mut name, mut desc, mut callback, mut fl) = (None, None, None, 0);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Value::String(k) = k else {
            return Err(table_error(
                "named argument key given to redis.register_function is not a string",
            ));
        };
        match k.to_string_lossy().to_ascii_lowercase().as_str() {
            "function_name" => {
                match v {
                    Value::String(s) => name = Some(s.to_string_lossy()),
                    _ => return Err(table_error(
                        "function_name argument given to redis.register_function must be a string",
                    )),
                }
            }
            "description" => {
                match v {
                    Value::String(s) => desc = Some(s.to_string_lossy()),
                    _ => return Err(table_error(
                        "description argument given to redis.register_function must be a string",
                    )),
                }
            }
            "callback" => match v {
                Value::Function(f) => callback = Some(f),
                _ => {
                    return Err(table_error(
                        "callback argument given to redis.register_function must be a function",
                    ))
                }
            },
            "flags" => {
                let Value::Table(list) = v else {
                    return Err(table_error("flags argument to redis.register_function must be a table representing function flags"));
                };
                for item in list.sequence_values::<Value>() {
                    let bit = match item? {
                        Value::String(s) => sflags::parse(&s.as_bytes()),
                        _ => None,
                    };
                    fl |= bit.ok_or_else(|| table_error("unknown flag given"))?;
                }
            }
            _ => {
                return Err(table_error(
                    "unknown argument given to redis.register_function",
                ))
            }
        }
    }
    let name = name
        .ok_or_else(|| table_error("redis.register_function must get a function name argument"))?;
    let callback = callback
        .ok_or_else(|| table_error("redis.register_function must get a callback argument"))?;
    Ok((
        FunctionInfo {
            name,
            desc,
            flags: fl,
        },
        callback,
    ))
}

/// A Lua function that copies its arguments into [`CALL_ARGS`] (see [`collect_call_args`])
/// and then calls `run(flag)`: `redis.call`, `redis.pcall` and `redis.acl_check_cmd`.
///
/// Why a C closure: mlua would turn each argument into a reference-counted `Value` first,
/// about 600 instructions an argument; reading them off the Lua stack costs a tenth of that.
fn collecting_args(lua: &Lua, run: Function, flag: bool) -> mlua::Result<Function> {
    // SAFETY: `exec_raw` runs the closure in a protected call with `run` and `flag` as the
    // only values on the stack; `lua_pushcclosure` pops exactly those two as upvalues and
    // pushes the closure, which `exec_raw` returns as the `Function`. No Rust value with a
    // destructor is live in the closure, so a Lua memory error unwinding it is harmless.
    unsafe {
        lua.exec_raw((run, flag), |state| {
            mlua::ffi::lua_pushcclosure(state, call_entry, 2)
        })
    }
}

/// The body of [`collecting_args`]'s closures: collects the arguments, then returns what
/// `upvalue1(upvalue2)` returns (errors it raises propagate to the script as they are).
unsafe extern "C-unwind" fn call_entry(state: *mut mlua::ffi::lua_State) -> c_int {
    use mlua::ffi;
    // SAFETY: Lua calls this with a valid state whose stack holds the call's arguments and
    // has at least LUA_MINSTACK free slots, of which two are used after clearing it. The
    // upvalues are the two `collecting_args` set. `lua_call` may raise a Lua error, which
    // leaves this frame by longjmp: nothing in it needs dropping (collection has finished
    // and returned), so that skips no destructor.
    unsafe {
        collect_call_args(state);
        ffi::lua_settop(state, 0);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
        ffi::lua_call(state, 1, 1);
    }
    1
}

/// Appends the arguments on the Lua stack to [`CALL_ARGS`], as Redis converts them: strings
/// as they are, numbers as `%.17g` prints them; anything else marks the call as refused.
///
/// # Safety
/// `state` must be the running C function's state. Nothing here raises a Lua error: it
/// only reads types, numbers and strings that already are strings (no conversion, so no
/// allocation), and it cannot panic (the buffer's size is checked before a push).
unsafe fn collect_call_args(state: *mut mlua::ffi::lua_State) {
    use mlua::ffi;
    CALL_ARGS.with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else {
            return;
        };
        let (args, refused) = &mut *c;
        // Left over only if a call failed between collecting and running (a C stack
        // overflow): never let them prefix this call's.
        args.clear();
        *refused = false;
        let mut number = Vec::new();
        // SAFETY (all calls below): indexes 1..=top are valid stack slots of `state`.
        let top = unsafe { ffi::lua_gettop(state) };
        for i in 1..=top {
            let arg: &[u8] = match unsafe { ffi::lua_type(state, i) } {
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let p = unsafe { ffi::lua_tolstring(state, i, &mut len) };
                    // SAFETY: a string value's bytes stay valid while it is on the stack,
                    // which outlasts this loop.
                    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }
                }
                ffi::LUA_TNUMBER => {
                    number.clear();
                    format_double(unsafe { ffi::lua_tonumber(state, i) }, &mut number);
                    &number
                }
                _ => {
                    *refused = true;
                    continue;
                }
            };
            if !args.fits(arg.len()) {
                *refused = true;
                return;
            }
            args.push(arg);
        }
    });
}

/// Runs `f` on the command line that [`collect_call_args`] collected for one call (or
/// Redis's error for it), then empties the buffer, keeping its memory for the next call.
fn with_call_args<R>(f: impl FnOnce(mlua::Result<Args<'_>>) -> R) -> R {
    let (owned, refused) = CALL_ARGS.with(|c| {
        let (args, refused) = &mut *c.borrow_mut();
        (std::mem::take(args), std::mem::take(refused))
    });
    let checked = if owned.is_empty() {
        Err(table_error(
            "Please specify at least one argument for this redis lib call",
        ))
    } else if refused {
        Err(table_error(
            "Lua redis lib command arguments must be strings or integers",
        ))
    } else {
        Ok(owned.as_args())
    };
    let r = f(checked);
    let mut owned = owned;
    owned.clear();
    CALL_ARGS.with(|c| c.borrow_mut().0 = owned);
    r
}

/// `redis.acl_check_cmd`, once [`collect_call_args`] has read the arguments: whether the
/// user running the script may run that command line (without logging a denial, as Redis).
fn acl_check_cmd() -> mlua::Result<bool> {
    let Some(state) = running_state() else {
        return Err(table_error(
            "redis.acl_check_cmd can only be called inside a script invocation",
        ));
    };
    with_call_args(|args| {
        let args = args?;
        let Lookup::Found(id, cmd) = table().lookup(args) else {
            return Err(table_error(
                "Invalid command passed to redis.acl_check_cmd()",
            ));
        };
        // A command line of the wrong arity could not run: its keys (which a command's
        // own key finder locates) are not checked, and it is not allowed.
        if !cmd.arity_ok(args.len()) {
            return Ok(false);
        }
        let st = state
            .try_borrow()
            .map_err(|_| table_error("redis.acl_check_cmd() cannot be called recursively"))?;
        let user = crate::acl::client_user(st.ctx.srv, st.ctx.client);
        Ok(user.check(id, cmd, args).is_ok())
    })
}

/// `redis.call` / `redis.pcall`, once [`collect_call_args`] has read the arguments: runs
/// them for the running script (see [`CallStateGuard`]).
fn dispatch_call(lua: &Lua, raise_errors: bool) -> mlua::Result<Value> {
    let result = match running_state() {
        None => Err(table_error(
            "redis.call/pcall can only be called inside a script invocation",
        )),
        Some(state) => with_call_args(|args| script_call(state, lua, raise_errors, args)),
    };
    // Normally taken by the call already; not if it failed before.
    CALL_ARGS.with(|c| {
        let (args, refused) = &mut *c.borrow_mut();
        args.clear();
        *refused = false;
    });
    result
}

/// The state of the script run in progress on this thread, if any (see [`CallStateGuard`]).
///
/// The borrow is only for the caller's own use during one call out of the script: callers
/// keep nothing from it.
fn running_state<'s>() -> Option<&'s RefCell<CallState<'static, 'static>>> {
    let state = CALL_STATE.with(Cell::get);
    // SAFETY: a non-null pointer was set by a `CallStateGuard` that is still alive: the
    // guard lives on `execute`'s stack for exactly as long as the `RefCell` it points to
    // (declared before it, so dropped after it), and its `Drop` restores the previous value
    // on every exit, unwinding included. The pointer is thread-local, so only this thread —
    // which is inside that `execute` call, running the script, for as long as the caller's
    // call out of Lua lasts — sees it. Shared access is all we create; the `RefCell` checks
    // any mutable borrow at run time. The lifetimes were erased to store it; callers use
    // the borrow only within that call.
    (!state.is_null()).then(|| unsafe { &*state })
}

/// What `redis.call` needs during one script run.
struct CallState<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    /// EVAL_RO / FCALL_RO / a `no-writes` script.
    read_only: bool,
    /// The invocation's command line and key count, for its KEYS and ARGV.
    command: Args<'c>,
    nkeys: usize,
}

/// How the runner calls a chunk: a library's load, an EVAL script (KEYS and ARGV as
/// globals) or a function (KEYS and ARGV as its arguments).
#[derive(Clone, Copy)]
enum Run {
    Load = 0,
    Eval = 1,
    Function = 2,
}

/// Makes a [`CallState`] the one `redis.call` works on for as long as the guard lives, and
/// restores the previous one when dropped (also on unwind).
///
/// Why not mlua's `scope`: a scoped function costs a closure, a userdata and an extra
/// protected Lua call per `redis.call`, about a tenth of an EVALSHA's instructions; one
/// `redis.call` created with the interpreter, reading its state here, costs none of that.
struct CallStateGuard {
    previous: *const RefCell<CallState<'static, 'static>>,
}

impl CallStateGuard {
    /// `state` must outlive the guard (declare it first): see the SAFETY note in
    /// [`dispatch_call`].
    fn set(state: &RefCell<CallState<'_, '_>>) -> CallStateGuard {
        let erased = (state as *const RefCell<CallState<'_, '_>>).cast();
        CallStateGuard {
            previous: CALL_STATE.with(|c| c.replace(erased)),
        }
    }
}

impl Drop for CallStateGuard {
    fn drop(&mut self) {
        CALL_STATE.with(|c| c.set(self.previous));
    }
}

/// Runs one command for the script: Redis's checks, then the command under the script's
/// locks; its reply becomes a Lua value (an error raises for `redis.call`, and is returned
/// as an `{err=}` table by `redis.pcall`).
fn script_call(
    state: &RefCell<CallState<'_, '_>>,
    lua: &Lua,
    raise_errors: bool,
    converted: mlua::Result<Args<'_>>,
) -> mlua::Result<Value> {
    let fail = |msg: &str| -> mlua::Result<Value> {
        if raise_errors {
            Err(raise(ScriptError::Table {
                msg: String::from_utf8_lossy(&error_text(msg.as_bytes())).into_owned(),
                ignore_stats: true,
            }))
        } else {
            Ok(Value::Table(error_table(lua, msg.as_bytes(), true)?))
        }
    };
    let cargs = match converted {
        Ok(o) => o,
        Err(e) if raise_errors => return Err(e),
        Err(e) => {
            let text = script_error(&e).map(|s| s.to_string()).unwrap_or_default();
            return Ok(Value::Table(error_table(
                lua,
                format!("-{text}").as_bytes(),
                false,
            )?));
        }
    };
    let Ok(mut st) = state.try_borrow_mut() else {
        return fail("luaRedisGenericCommand() recursive call detected. Are you doing funny stuff with Lua debug hooks?");
    };
    let srv = st.ctx.srv;
    let (id, cmd) = match table().lookup(cargs) {
        Lookup::Found(id, cmd) if cmd.handler.is_some() => (id, cmd),
        _ => {
            srv.count_error("ERR");
            return fail("Unknown Redis command called from script");
        }
    };
    let reject = |text: &str| {
        srv.count_error("ERR");
        srv.workers[st_worker(&st)].cmd[id].rejected.add(1);
        fail(text)
    };
    if !cmd.arity_ok(cargs.len()) {
        return reject("Wrong number of args calling Redis command from script");
    }
    if cmd.has(flags::NOSCRIPT) && !super::deny_scripts_disabled() {
        return reject("This Redis command is not allowed from script");
    }
    let acl = crate::acl::check(
        srv,
        st.ctx.client,
        id,
        cmd,
        cargs,
        crate::acl::LogContext::Lua,
    );
    if let Err(denied) = acl {
        return reject(&format!(
            "The user executing the script {}",
            denied.script_text()
        ));
    }
    if st.read_only && cmd.has(flags::WRITE | flags::MAY_REPLICATE) {
        return reject("Write commands are not allowed from read-only scripts.");
    }
    // After a failed save (stop-writes-on-bgsave-error) or AOF write: MISCONF, as Redis.
    if let Some(e) = cmd
        .has(flags::WRITE)
        .then(|| crate::commands::persist::disk_error(srv))
        .flatten()
    {
        return reject(&format!("-{e}"));
    }
    if cmd.has(flags::WRITE) {
        RUNNING.wrote.store(true, Relaxed);
    }
    let proto = if SCRIPT_RESP.with(|r| r.get()) == 3 {
        Proto::Resp3
    } else {
        Proto::Resp2
    };
    let ctx = &mut *st.ctx;
    let saved = std::mem::replace(&mut ctx.out.proto, proto);
    let start = ctx.out.buf.len();
    call_nested(ctx, id, cmd, cargs);
    ctx.out.proto = saved;
    // The reply is read where the command wrote it, then removed from the output.
    let bytes = &ctx.out.buf[start..];
    let mut dec = Decoder::new(bytes);
    let value = if dec.is_error() && raise_errors {
        let line = &bytes[..bytes.len().saturating_sub(2)];
        Err(raise(ScriptError::Table {
            msg: String::from_utf8_lossy(&error_text(line)).into_owned(),
            ignore_stats: true,
        }))
    } else {
        dec.value(lua)
    };
    ctx.out.buf.truncate(start);
    value
}

fn st_worker(st: &CallState<'_, '_>) -> usize {
    st.ctx.client.shared.worker
}

/// One script or function invocation.
pub struct Invocation<'x> {
    /// The SHA1 (EVAL) or function name, for error messages and FUNCTION STATS.
    pub name: &'x str,
    /// How many of the arguments after the key count are keys.
    pub nkeys: usize,
    pub read_only: bool,
    /// The script declared `allow-oom`: its commands run even out of memory.
    pub allow_oom: bool,
    /// The whole command line: `name script|function numkeys key... arg...`.
    pub command: Args<'x>,
}

/// The runner's `arrays()`: pushes the running invocation's KEYS and ARGV arrays (nothing
/// outside a run).
///
/// Built with the Lua C API inside the runner: through mlua each table and element would
/// be a handle of its own, and its protected call allocates two closures per use in Lua 5.1.
unsafe extern "C-unwind" fn push_key_arg_arrays(state: *mut mlua::ffi::lua_State) -> c_int {
    // `command` is a copy of a view of the client's command line, which outlives the run.
    let Some(Ok((command, nkeys))) =
        running_state().map(|st| st.try_borrow().map(|s| (s.command, s.nkeys)))
    else {
        return 0;
    };
    // SAFETY: Lua gives a C function at least LUA_MINSTACK (20) free slots; this uses three
    // (two tables, one string at a time). Allocating may raise a Lua error, unwinding this
    // frame by longjmp: nothing in it has a destructor (`Args` and its iterators only
    // borrow), so that skips none.
    unsafe {
        push_array(state, command.iter().skip(3).take(nkeys));
        push_array(state, command.iter().skip(3 + nkeys));
    }
    2
}

/// Pushes a new array of `items`.
///
/// # Safety
/// `state` must have two free stack slots, and a Lua error there must be able to unwind the
/// caller (see [`push_key_arg_arrays`]).
unsafe fn push_array<'x>(
    state: *mut mlua::ffi::lua_State,
    items: impl ExactSizeIterator<Item = &'x [u8]>,
) {
    use mlua::ffi;
    let n = c_int::try_from(items.len()).unwrap_or(0);
    // SAFETY: the table, then one string at a time, use the two slots the caller
    // guarantees; each string is popped into the table at once.
    unsafe {
        ffi::lua_createtable(state, n, 0);
        for (i, a) in (1..).zip(items) {
            ffi::lua_pushlstring(state, a.as_ptr().cast(), a.len());
            ffi::lua_rawseti(state, -2, i);
        }
    }
}

/// Drops this thread's EVAL interpreter if the script cache was flushed since it was made.
pub fn drop_stale_interpreter() {
    EVAL_VM.with(|slot| {
        let Ok(mut slot) = slot.try_borrow_mut() else {
            return;
        };
        if slot
            .as_ref()
            .is_some_and(|vm| vm.gen != super::scripts_generation())
        {
            *slot = None;
            note_memory(Mode::Eval, 0);
        }
    });
}

/// Runs `f` with this thread's interpreter for `mode`, creating it on first use.
fn with_vm<R>(mode: Mode, f: impl FnOnce(&mut Vm) -> Result<R, CmdError>) -> Result<R, CmdError> {
    let cell = match mode {
        Mode::Eval => &EVAL_VM,
        Mode::Functions => &FUNC_VM,
    };
    cell.with(|slot| {
        let mut slot = slot
            .try_borrow_mut()
            .map_err(|_| CmdError::msg("ERR scripts can not be called from scripts"))?;
        let stale = match (&*slot, mode) {
            (Some(vm), Mode::Eval) => vm.gen != super::scripts_generation(),
            _ => false,
        };
        if slot.is_none() || stale {
            // A flushed script cache starts a fresh interpreter, as Redis does, so the memory
            // of the old scripts goes with it.
            *slot = None;
            let vm = Vm::new(mode)
                .map_err(|e| CmdError::msg(format!("ERR Lua initialization failed: {e}")))?;
            *slot = Some(vm);
        }
        let vm = slot.as_mut().expect("just set");
        let r = f(vm);
        note_memory(mode, vm.lua.used_memory());
        r
    })
}

/// Compiles a script into this thread's interpreter (EVAL of a new body, SCRIPT LOAD), so
/// only scripts that compile get cached.
pub fn compile(sha: &str, script: &super::Script) -> CmdResult {
    with_vm(Mode::Eval, |vm| vm.compile_script(sha, script).map(|_| ()))
}

/// EVAL / EVALSHA: runs the cached script `sha`.
pub fn run_script(
    ctx: &mut Ctx<'_>,
    sha: &str,
    script: &Arc<super::Script>,
    inv: Invocation<'_>,
) -> CmdResult {
    with_vm(Mode::Eval, |vm| {
        let f = vm.compile_script(sha, script)?;
        execute(vm, ctx, f, inv, true)
    })
}

/// FCALL / FCALL_RO: runs the library function `name` (already known to exist).
pub fn run_function(ctx: &mut Ctx<'_>, inv: Invocation<'_>) -> CmdResult {
    with_vm(Mode::Functions, |vm| {
        vm.sync_functions();
        let Some((f, _)) = vm.compiled.get(&inv.name.to_ascii_lowercase()).cloned() else {
            return Err(CmdError::msg("ERR Function not found"));
        };
        execute(vm, ctx, f, inv, false)
    })
}

/// Runs a library's code in this thread's functions interpreter to see what it registers:
/// the library, or Redis's error text.
pub fn check_library(name: &str, engine: &str, code: &[u8]) -> Result<Library, String> {
    with_vm(Mode::Functions, |vm| {
        let funcs = vm
            .load_library(strip_shebang(code))
            .map_err(CmdError::msg)?;
        Ok(funcs)
    })
    .map_err(|e| e.to_string())
    .and_then(|funcs| {
        if funcs.is_empty() {
            return Err("No functions registered".into());
        }
        Ok(Library {
            name: name.to_string(),
            engine: engine.to_string(),
            code: code.into(),
            functions: funcs.into_iter().map(|(i, _)| i).collect(),
        })
    })
}

/// The common part of a run: the run state others see, the scoped `redis.call`, the call
/// itself under xpcall, and the reply.
fn execute(
    vm: &mut Vm,
    ctx: &mut Ctx<'_>,
    f: Function,
    inv: Invocation<'_>,
    eval: bool,
) -> CmdResult {
    let r = &*RUNNING;
    let started = unix_ms();
    CURRENT.with(|c| {
        let (name, command) = &mut *c.borrow_mut();
        name.clear();
        name.push_str(inv.name);
        command.clear();
        inv.command.iter().for_each(|a| command.push(a));
    });
    r.kill.store(false, Relaxed);
    r.wrote.store(false, Relaxed);
    r.timed_out.store(false, Relaxed);
    r.eval.store(eval, Relaxed);
    r.since_ms.store(started, Relaxed);
    let threshold_ms = ctx.srv.config.hot.busy_reply_threshold.load(Relaxed);
    HOOK.with(|h| {
        h.set(HookState::Script {
            threshold_ms,
            started_ms: started,
        })
    });
    SCRIPT_RESP.with(|r| r.set(2));
    let db = ctx.client.db;
    let srv = ctx.srv;
    let lua = vm.lua.clone();
    crate::evict::set_script_allows_oom(inv.allow_oom);
    let outcome = {
        let state = RefCell::new(CallState {
            ctx: &mut *ctx,
            read_only: inv.read_only,
            command: inv.command,
            nkeys: inv.nkeys,
        });
        let _guard = CallStateGuard::set(&state);
        let how = if eval { Run::Eval } else { Run::Function };
        vm.runner.call::<(bool, Value)>((f, how as u8))
    };
    HOOK.with(|h| h.set(HookState::Idle));
    vm.runs += 1;
    if vm.runs == GC_PERIOD {
        vm.runs = 0;
        let _ = lua.gc_step_kbytes(GC_STEP_KB);
    }
    if PUBLISHED.with(|p| p.replace(false)) {
        *r.info.lock() = None;
    }
    if r.kill.load(Relaxed) {
        // Back to the cheap count hook after a kill switched to per-line checks.
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            count_hook,
        );
    }
    r.since_ms.store(0, Relaxed);
    r.timed_out.store(false, Relaxed);
    r.kill.store(false, Relaxed);
    if ctx.client.db != db {
        ctx.client.select(db);
    }
    let script_resp3 = SCRIPT_RESP.with(|r| r.get()) == 3;
    match outcome {
        Ok((true, v)) => {
            ctx.error_replied = Writer { srv, script_resp3 }.write(&mut ctx.out, &v, 0);
            Ok(())
        }
        Ok((false, err)) => {
            let (msg, ignore) = error_message(&err, false);
            let mut line = msg;
            if let Value::Table(t) = &err {
                if let (Ok(Value::String(src)), Ok(line_no)) =
                    (t.raw_get::<Value>("source"), t.raw_get::<Value>("line"))
                {
                    let n = number(&line_no).unwrap_or(0.0) as i64;
                    line.push_str(&format!(
                        " script: {}, on {}:{n}.",
                        inv.name,
                        src.to_string_lossy()
                    ));
                }
            }
            if ignore {
                ctx.out.error(&line);
                ctx.error_replied = true;
                Ok(())
            } else {
                Err(CmdError::msg(line))
            }
        }
        // An error raised by the count hook (a kill) ends the call without the handler.
        Err(e) if script_error(&e).is_some() => {
            let msg = script_error(&e).map(|s| s.to_string()).unwrap_or_default();
            Err(CmdError::msg(format!(
                "{msg} script: {}, on @user_{}:0.",
                inv.name,
                if eval { "script" } else { "function" }
            )))
        }
        Err(e) => Err(CmdError::msg(format!(
            "ERR Error running script {}, {:.100}",
            inv.name,
            plain_text(&e)
        ))),
    }
}
