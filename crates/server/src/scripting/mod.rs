//! Lua scripting, as Redis 7.0 embeds Lua 5.1: the script cache (EVAL / SCRIPT LOAD), the
//! function libraries (FUNCTION LOAD / FCALL), and the state of the script running right now
//! (for BUSY replies, SCRIPT KILL and FUNCTION STATS).
//!
//! Scripts take every shard lock, so at most one runs at a time in the whole server; each
//! worker thread has its own Lua interpreters ([`vm`]) that compile the shared script bodies
//! and library codes lazily. A generation counter tells an interpreter that SCRIPT FLUSH or a
//! library change made its compiled copies stale.

pub mod libs;
pub mod reply;
pub mod vm;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};

use parking_lot::{Mutex, RwLock};
use sha1::{Digest, Sha1};

use crate::command::{flags, Command};
use crate::error::CmdError;
use crate::server::{unix_ms, Server};

/// Script flags, from an EVAL shebang (`#!lua flags=no-writes`) or `redis.register_function`.
pub mod sflags {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// An EVAL script without a shebang: Redis's pre-7.0 rules apply.
    pub const EVAL_COMPAT: u32 = 1 << 5;

    /// Flag names, in the order FUNCTION LIST shows them.
    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    /// The flag called `name` (case-insensitive, as `register_function` accepts it).
    pub fn parse(name: &[u8]) -> Option<u32> {
        NAMES
            .iter()
            .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(f, _)| f)
    }
}

/// A script's SHA1 as its 40 lower-case hex characters, kept inline so that looking a
/// script up (every EVALSHA) allocates nothing.
#[derive(Clone, Copy)]
pub struct Sha([u8; 40]);

impl Sha {
    /// SHA1(`data`).
    pub fn of(data: &[u8]) -> Sha {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 40];
        for (i, b) in Sha1::digest(data).iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        Sha(hex)
    }

    /// A SHA1 given by a client (any case); None if it is not 40 ASCII characters, as no
    /// script has such a name.
    pub fn parse(hex: &[u8]) -> Option<Sha> {
        let hex: [u8; 40] = hex.try_into().ok()?;
        hex.is_ascii()
            .then(|| Sha(hex.map(|b| b.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII (see the constructors).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The 40 lower-case hex characters of SHA1(`data`), as `redis.sha1hex` gives them.
pub fn sha1_hex(data: &[u8]) -> String {
    Sha::of(data).as_str().to_string()
}

/// One cached EVAL script.
pub struct Script {
    pub body: Box<[u8]>,
    /// [`sflags`] bits from its shebang (EVAL_COMPAT without one).
    pub flags: u32,
    /// How many bytes of `body` the shebang line takes (its newline stays, so line numbers
    /// match).
    pub shebang_len: usize,
}

#[derive(Default)]
struct ScriptCache {
    /// Looked up on every EVALSHA, so hashed with ahash (randomly seeded like SipHash, and
    /// cheaper on a 40-byte key).
    scripts: HashMap<String, Arc<Script>, ahash::RandomState>,
    /// Bytes of script bodies (INFO used_memory_scripts_eval).
    bytes: usize,
}

static SCRIPTS: LazyLock<Mutex<ScriptCache>> = LazyLock::new(Default::default);
/// Bumped by SCRIPT FLUSH: interpreters built before it drop their compiled scripts.
static SCRIPTS_GEN: AtomicU64 = AtomicU64::new(0);

/// Parses an EVAL script's shebang: (flags, shebang length), or Redis's error text.
fn parse_shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((sflags::EVAL_COMPAT, 0));
    }
    let Some(end) = memchr::memchr(b'\n', body) else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else {
        return Err("Invalid engine in script shebang".into());
    };
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = 0;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            match sflags::NAMES.iter().find(|(_, n)| *n == f) {
                Some(&(bit, _)) => flags |= bit,
                None => return Err(format!("Unexpected flag in script shebang: {f}")),
            }
        }
    }
    Ok((flags, end))
}

/// The cached script with this SHA1 (any case).
pub fn script_get(sha: &[u8]) -> Option<(Sha, Arc<Script>)> {
    let sha = Sha::parse(sha)?;
    let s = SCRIPTS.lock().scripts.get(sha.as_str()).cloned()?;
    Some((sha, s))
}

/// The cached script for this body, or a new uncached one (its shebang parsed): SHA1,
/// script, and whether it was cached. New scripts are cached by [`script_insert`] once they
/// compile.
pub fn script_for_body(body: &[u8]) -> Result<(Sha, Arc<Script>, bool), String> {
    let sha = Sha::of(body);
    if let Some(s) = SCRIPTS.lock().scripts.get(sha.as_str()) {
        return Ok((sha, s.clone(), true));
    }
    let (flags, shebang_len) = parse_shebang(body)?;
    let script = Arc::new(Script {
        body: body.into(),
        flags,
        shebang_len,
    });
    Ok((sha, script, false))
}

/// A command's flags as Redis judges them before running it: a script or function that
/// declares its flags (a shebang, `register_function`) is a writer (`write`, and `denyoom`
/// unless `allow-oom`) or not (`no-writes`) by them, in place of EVAL's `may-replicate`.
/// CLIENT PAUSE WRITE and the OOM check read these.
pub fn command_flags(cmd: &Command, args: flowkv_protocol::Args<'_>) -> u32 {
    let declared = match cmd.name {
        "eval" | "eval_ro" => script_for_body(args.get(1)).ok().map(|(_, s, _)| s.flags),
        "evalsha" | "evalsha_ro" => script_get(args.get(1)).map(|(_, s)| s.flags),
        "fcall" | "fcall_ro" => {
            let name = String::from_utf8_lossy(args.get(1));
            with_libraries(|l, _| l.function(&name).map(|(_, f)| f.flags))
        }
        _ => None,
    };
    match declared {
        Some(sf) if sf & sflags::EVAL_COMPAT == 0 => {
            let mut f =
                cmd.flags & !(flags::STALE | flags::DENYOOM | flags::WRITE | flags::MAY_REPLICATE);
            if sf & (sflags::ALLOW_OOM | sflags::NO_WRITES) == 0 {
                f |= flags::DENYOOM;
            }
            if sf & sflags::NO_WRITES == 0 {
                f |= flags::WRITE;
            }
            if sf & sflags::ALLOW_STALE != 0 {
                f |= flags::STALE;
            }
            f
        }
        _ => cmd.flags,
    }
}

/// Caches a script that compiled.
pub fn script_insert(sha: &Sha, script: &Arc<Script>) {
    let body = &script.body;
    let mut cache = SCRIPTS.lock();
    if !cache.scripts.contains_key(sha.as_str()) {
        cache.bytes += body.len() + 40;
        cache
            .scripts
            .insert(sha.as_str().to_string(), script.clone());
    }
}

/// SCRIPT FLUSH: forgets every script; each interpreter drops its compiled copies.
pub fn script_flush() {
    let old = std::mem::take(&mut *SCRIPTS.lock());
    SCRIPTS_GEN.fetch_add(1, Relaxed);
    drop(old);
}

/// True if a script with this SHA1 is cached.
pub fn script_exists(sha: &[u8]) -> bool {
    script_get(sha).is_some()
}

pub(crate) fn scripts_generation() -> u64 {
    SCRIPTS_GEN.load(Relaxed)
}

/// One function of a library.
#[derive(Clone, Debug)]
pub struct FunctionInfo {
    pub name: String,
    pub desc: Option<String>,
    pub flags: u32,
}

/// A library loaded with FUNCTION LOAD.
#[derive(Debug)]
pub struct Library {
    pub name: String,
    pub engine: String,
    /// The whole code, shebang included (FUNCTION LIST WITHCODE, FUNCTION DUMP).
    pub code: Box<[u8]>,
    pub functions: Vec<FunctionInfo>,
}

/// Every loaded library; names of libraries and functions are case-insensitive.
#[derive(Default, Clone)]
pub struct Libraries {
    /// By lower-case library name.
    pub libs: BTreeMap<String, Arc<Library>>,
    /// Lower-case function name -> lower-case library name.
    pub funcs: HashMap<String, String>,
}

impl Libraries {
    /// Adds `lib`, replacing a library of the same name if `replace`; fails (leaving `self`
    /// unchanged) on a name collision.
    pub fn add(&mut self, lib: Library, replace: bool) -> Result<(), String> {
        let key = lib.name.to_ascii_lowercase();
        let old = self.libs.get(&key).cloned();
        if old.is_some() && !replace {
            return Err(format!("Library '{}' already exists", lib.name));
        }
        for f in &lib.functions {
            let fk = f.name.to_ascii_lowercase();
            if self.funcs.get(&fk).is_some_and(|l| *l != key) {
                return Err(format!("Function {} already exists", f.name));
            }
        }
        if let Some(old) = old {
            for f in &old.functions {
                self.funcs.remove(&f.name.to_ascii_lowercase());
            }
        }
        for f in &lib.functions {
            self.funcs.insert(f.name.to_ascii_lowercase(), key.clone());
        }
        self.libs.insert(key, Arc::new(lib));
        Ok(())
    }

    /// Removes a library by name; false if there is none.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.libs.remove(&name.to_ascii_lowercase()) {
            Some(lib) => {
                for f in &lib.functions {
                    self.funcs.remove(&f.name.to_ascii_lowercase());
                }
                true
            }
            None => false,
        }
    }

    /// The function called `name` and its library.
    pub fn function(&self, name: &str) -> Option<(&Arc<Library>, &FunctionInfo)> {
        let key = name.to_ascii_lowercase();
        let lib = self.libs.get(self.funcs.get(&key)?)?;
        let f = lib
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))?;
        Some((lib, f))
    }
}

struct FunctionState {
    libs: Libraries,
    /// Bumped on every change; interpreters reload their libraries when it moves.
    gen: u64,
}

static FUNCTIONS: LazyLock<RwLock<FunctionState>> = LazyLock::new(|| {
    RwLock::new(FunctionState {
        libs: Libraries::default(),
        gen: 1,
    })
});

/// A snapshot of the libraries and their generation.
pub fn libraries() -> (Libraries, u64) {
    let f = FUNCTIONS.read();
    (f.libs.clone(), f.gen)
}

/// Changes the libraries (FUNCTION LOAD / DELETE / FLUSH / RESTORE): `f` edits a copy, which
/// replaces the current set only if `f` succeeds, so a failed change leaves nothing behind.
pub fn update_libraries<R>(
    f: impl FnOnce(&mut Libraries) -> Result<R, String>,
) -> Result<R, String> {
    let mut state = FUNCTIONS.write();
    let mut libs = state.libs.clone();
    let r = f(&mut libs)?;
    state.libs = libs;
    state.gen += 1;
    Ok(r)
}

/// Adds the function libraries an RDB file holds (their code, in file order) to the loaded
/// ones. One already loaded fails the whole load, unless `merge` (DEBUG RELOAD MERGE) where
/// it replaces the old one. A load that replaces the dataset empties the set first with
/// [`clear_libraries`], as Redis empties its functions with its data.
pub fn load_libraries(codes: &[Vec<u8>], merge: bool) -> Result<(), String> {
    let libs = codes
        .iter()
        .map(|c| crate::commands::scripting::build_library(c))
        .collect::<Result<Vec<_>, _>>()?;
    update_libraries(|l| libs.into_iter().try_for_each(|lib| l.add(lib, merge)))
}

/// Unloads every function library (the dataset is being replaced).
pub fn clear_libraries() {
    let cleared: Result<(), String> = update_libraries(|l| {
        *l = Libraries::default();
        Ok(())
    });
    debug_assert!(cleared.is_ok());
}

/// Runs `f` on the current libraries without copying them.
pub fn with_libraries<R>(f: impl FnOnce(&Libraries, u64) -> R) -> R {
    let g = FUNCTIONS.read();
    f(&g.libs, g.gen)
}

/// What other threads may know about the script running now. Scripts hold every shard lock,
/// so there is at most one.
#[derive(Default)]
pub struct Running {
    /// Start time (unix ms), 0 when no script runs.
    pub since_ms: AtomicU64,
    /// Set once the script has run longer than `busy-reply-threshold`: others get BUSY.
    pub timed_out: AtomicBool,
    /// SCRIPT KILL / FUNCTION KILL asked it to stop.
    pub kill: AtomicBool,
    /// It already ran a write command: it can't be killed any more.
    pub wrote: AtomicBool,
    /// EVAL (true) or FCALL (false).
    pub eval: AtomicBool,
    /// Function name (or script SHA1) and the calling command, for FUNCTION STATS: set once
    /// the script has run a while (its count hook fired), as others can't see a script
    /// running in Redis before that.
    pub info: Mutex<Option<(String, Vec<Vec<u8>>)>>,
}

pub static RUNNING: LazyLock<Running> = LazyLock::new(Running::default);

/// DEBUG SET-DISABLE-DENY-SCRIPTS: when set, scripts may call NOSCRIPT commands (Redis's
/// test suite uses it to reach DEBUG PROTOCOL from scripts).
static DISABLE_DENY_SCRIPTS: AtomicBool = AtomicBool::new(false);

/// Sets DEBUG SET-DISABLE-DENY-SCRIPTS.
pub fn set_disable_deny_scripts(on: bool) {
    DISABLE_DENY_SCRIPTS.store(on, Relaxed);
}

pub(crate) fn deny_scripts_disabled() -> bool {
    DISABLE_DENY_SCRIPTS.load(Relaxed)
}

const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// The BUSY error for the running script's kind.
pub(crate) fn busy_error(eval: bool) -> CmdError {
    CmdError::msg(if eval { BUSY_EVAL } else { BUSY_FUNCTION })
}

/// While a script runs past `busy-reply-threshold`, commands other than the ALLOW_BUSY ones
/// (SCRIPT KILL, FUNCTION KILL, SHUTDOWN…) are refused with BUSY instead of waiting on the
/// shard locks the script holds. Called by dispatch before it takes any lock.
#[inline]
pub fn busy_check(_srv: &Server, cmd: &Command) -> Option<CmdError> {
    if !busy() || cmd.has(flags::ALLOW_BUSY) {
        return None;
    }
    Some(busy_error(RUNNING.eval.load(Relaxed)))
}

/// True while a script runs past `busy-reply-threshold` (Redis's "inside a yielding long
/// command"): others get BUSY, and nothing is evicted under it.
#[inline]
pub fn busy() -> bool {
    RUNNING.timed_out.load(Relaxed)
}

/// SCRIPT KILL (`eval`) / FUNCTION KILL: asks the running script to stop.
pub fn kill(eval: bool) -> Result<(), CmdError> {
    let r = &*RUNNING;
    if r.since_ms.load(Relaxed) == 0 {
        return Err(CmdError::msg("NOTBUSY No scripts in execution right now."));
    }
    if r.wrote.load(Relaxed) {
        return Err(CmdError::msg(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. \
             You can either wait the script termination or kill the server in a hard way using \
             the SHUTDOWN NOSAVE command.",
        ));
    }
    let running_eval = r.eval.load(Relaxed);
    if eval != running_eval {
        return Err(busy_error(running_eval));
    }
    r.kill.store(true, Relaxed);
    Ok(())
}

/// The script running long enough for others to see it: its name, command line and how
/// long it has run (ms).
pub fn running_script() -> Option<(String, Vec<Vec<u8>>, u64)> {
    let (name, command) = RUNNING.info.lock().clone()?;
    match RUNNING.since_ms.load(Relaxed) {
        0 => None,
        t => Some((name, command, unix_ms().saturating_sub(t))),
    }
}

/// Numbers for INFO's memory section: the EVAL interpreters' memory (used_memory_lua), the
/// function interpreters', the cached script bodies' (used_memory_scripts_eval) and their
/// number.
pub fn info_memory() -> (usize, usize, usize, usize) {
    let cache = SCRIPTS.lock();
    (
        vm::used_memory(vm::Mode::Eval),
        vm::used_memory(vm::Mode::Functions),
        cache.bytes,
        cache.scripts.len(),
    )
}

/// Number of functions and libraries (INFO functions / FUNCTION STATS).
pub fn function_counts() -> (usize, usize) {
    with_libraries(|l, _| (l.funcs.len(), l.libs.len()))
}
