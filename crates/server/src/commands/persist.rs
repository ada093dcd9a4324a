//! Persistence commands (SAVE, BGSAVE, DUMP, RESTORE) and the RDB save and load paths the
//! server uses at start-up and DEBUG RELOAD uses, on top of the `flowkv-persist` formats.
//!
//! SAVE serializes the whole keyspace while holding every shard lock, writes to a temp file
//! and renames it over `dir/dbfilename`, so a crash mid-save never leaves a half-written
//! dump. It is synchronous, as Redis's SAVE is. BGSAVE writes the same file from a
//! point-in-time snapshot while the server keeps serving, without fork: see
//! [`crate::bgsave`].

use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use flowkv_persist::{FileInfo, FileWriter, Limits, LoadInfo, RestoreError, WriteOptions};
use flowkv_protocol::Args;
use flowkv_store::hash_value::HashLimits;
use flowkv_store::keyspace::lru_clock;
use flowkv_store::list_value::NodeLimit;
use flowkv_store::num::parse_i64;
use flowkv_store::zset_value::ZSetLimits;
use flowkv_store::{Entry, KeyStats, Locked};

use crate::command::flags::LOADING as LOADING_FLAG;
use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::config::notify::GENERIC;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;
use crate::server::{unix_ms, Server};
use crate::transaction::MultiState;

pub static COMMANDS: &[Command] = &[
    Command::new("save", 1, Group::Server)
        .flags(ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI | ALL_SHARDS)
        .acl(acl::DANGEROUS)
        .handler(save_cmd)
        .doc("Synchronously save the dataset to disk", "1.0.0", "O(N) where N is the total number of keys in all databases"),
    Command::new("bgsave", -1, Group::Server)
        .flags(ADMIN | NOSCRIPT | NO_ASYNC_LOADING | ALL_SHARDS)
        .acl(acl::DANGEROUS)
        .handler(bgsave)
        .doc("Asynchronously save the dataset to disk", "1.0.0", "O(1)"),
    Command::new("bgrewriteaof", 1, Group::Server)
        .flags(ADMIN | NOSCRIPT | NO_ASYNC_LOADING | ALL_SHARDS)
        .acl(acl::DANGEROUS)
        .handler(bgrewriteaof)
        .doc("Asynchronously rewrite the append-only file", "1.0.0", "O(1)"),
    Command::new("dump", 2, Group::Generic)
        .flags(READONLY)
        .acl(acl::KEYSPACE | acl::READ)
        .tips(&["nondeterministic_output"])
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RO | ks::ACCESS)])
        .handler(dump)
        .doc(
            "Return a serialized version of the value stored at the specified key.",
            "2.6.0",
            "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).",
        ),
    Command::new("restore", -4, Group::Generic)
        .flags(WRITE | DENYOOM)
        .acl(acl::KEYSPACE | acl::WRITE | acl::DANGEROUS)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::OW | ks::UPDATE)])
        .handler(restore)
        .doc(
            "Create a key using the provided serialized value, previously obtained using DUMP.",
            "2.6.0",
            "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).",
        ),
];

// ---------------------------------------------------------------------------------------
// Persistence state (INFO persistence, LASTSAVE)

/// What INFO persistence and LASTSAVE report. Process-wide: one server runs per process.
/// (It belongs in `Server`; it lives here until server.rs gives it a field.)
pub struct Stats {
    /// Unix seconds of the last successful save or load; 0 before any.
    last_save: AtomicU64,
    /// The summed `dirty` counters at the last save: changes since then are the difference.
    dirty_at_save: AtomicU64,
    /// Successful saves since start (`rdb_saves`).
    pub(crate) saves: AtomicU64,
    /// Whether the last save succeeded (`rdb_last_bgsave_status`).
    pub(crate) last_ok: AtomicBool,
    /// Seconds the last save took, -1 before any (`rdb_last_bgsave_time_sec`).
    pub(crate) last_secs: AtomicI64,
    /// Keys loaded and skipped as expired by the last load.
    loaded_keys: AtomicU64,
    loaded_expired: AtomicU64,
}

pub static STATS: Stats = Stats {
    last_save: AtomicU64::new(0),
    dirty_at_save: AtomicU64::new(0),
    saves: AtomicU64::new(0),
    last_ok: AtomicBool::new(true),
    last_secs: AtomicI64::new(-1),
    loaded_keys: AtomicU64::new(0),
    loaded_expired: AtomicU64::new(0),
};

impl Stats {
    /// Unix seconds of the last successful save, or `started` before the first one.
    pub fn last_save_secs(&self, started_secs: u64) -> u64 {
        match self.last_save.load(Relaxed) {
            0 => started_secs,
            t => t,
        }
    }

    /// Dataset changes since the last save (or load).
    pub fn changes_since_save(&self, srv: &Server) -> u64 {
        srv.sum(|w| w.dirty.get())
            .saturating_sub(self.dirty_at_save.load(Relaxed))
    }

    pub fn saves(&self) -> u64 {
        self.saves.load(Relaxed)
    }

    pub fn last_status(&self) -> &'static str {
        if self.last_ok.load(Relaxed) {
            "ok"
        } else {
            "err"
        }
    }

    pub fn last_save_time_sec(&self) -> i64 {
        self.last_secs.load(Relaxed)
    }

    /// (keys loaded, keys expired) by the last load.
    pub fn last_load(&self) -> (u64, u64) {
        (
            self.loaded_keys.load(Relaxed),
            self.loaded_expired.load(Relaxed),
        )
    }

    /// Marks the dataset as in sync with the file, as of the summed `dirty` counters
    /// `dirty`: after a save or a load.
    pub(crate) fn mark_synced(&self, dirty: u64) {
        self.dirty_at_save.store(dirty, Relaxed);
        self.last_save.store(unix_ms() / 1000, Relaxed);
    }
}

// ---------------------------------------------------------------------------------------
// Save and load

/// `dir/dbfilename`.
pub fn rdb_path(srv: &Server) -> PathBuf {
    let dir = srv.config.get("dir").unwrap_or_default();
    let name = srv
        .config
        .get("dbfilename")
        .unwrap_or_else(|| "dump.rdb".into());
    PathBuf::from(if dir.is_empty() { ".".into() } else { dir }).join(name)
}

/// The configured encoding thresholds, which pick compact or full encodings on load.
pub fn limits(srv: &Server) -> Limits {
    let hot = &srv.config.hot;
    let get = |v: &AtomicU64| usize::try_from(v.load(Relaxed)).unwrap_or(usize::MAX);
    Limits {
        hash: HashLimits {
            max_entries: get(&hot.hash_max_listpack_entries),
            max_value: get(&hot.hash_max_listpack_value),
        },
        zset: ZSetLimits {
            max_listpack_entries: get(&hot.zset_max_listpack_entries),
            max_listpack_value: get(&hot.zset_max_listpack_value),
        },
        max_intset: get(&hot.set_max_intset_entries),
        list: NodeLimit::from_config(hot.list_max_listpack_size.load(Relaxed)),
        stream: crate::commands::stream::node_limits(srv),
    }
}

/// `rdbcompression`.
pub fn write_options(srv: &Server) -> WriteOptions {
    WriteOptions {
        compress: srv.config.get_bool("rdbcompression"),
    }
}

/// Saves the dataset to `dir/dbfilename` (through a temp file renamed into place).
/// `locked` must hold every shard (the caller's ALL_SHARDS locks, or
/// [`flowkv_store::Keyspace::lock_all`]), so the file is one point in time and saves never
/// overlap. Returns the error text for the log and the reply.
pub fn save(srv: &Server, locked: &mut Locked<'_>) -> Result<(), String> {
    if LOADING.active() {
        // Half a dataset must never replace the file it is being loaded from.
        return Err("Can't save while the dataset is loading".into());
    }
    let started = Instant::now();
    let path = rdb_path(srv);
    let tmp = path.with_file_name(format!("temp-{}.rdb", std::process::id()));
    let result = write_rdb(srv, locked, &tmp).and_then(|dirty| {
        // A background save still running must not put its older file in place after this.
        let _guard = srv.snapshotter.supersede();
        std::fs::rename(&tmp, &path).map(|()| dirty).map_err(|e| {
            format!(
                "Error moving temp DB file {} on the final destination {} (in server root dir {}): {e}",
                tmp.display(),
                path.display(),
                std::env::current_dir().unwrap_or_default().display()
            )
        })
    });
    match result {
        Ok(dirty) => {
            // A failed SAVE leaves the status alone, as in Redis: only background saves
            // report errors (and stop writes).
            STATS.last_ok.store(true, Relaxed);
            STATS.mark_synced(dirty);
            STATS.saves.fetch_add(1, Relaxed);
            STATS
                .last_secs
                .store(started.elapsed().as_secs() as i64, Relaxed);
            eprintln!("DB saved on disk");
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("Failed saving the DB: {e}");
            Err(e)
        }
    }
}

/// The aux fields of a file saved now.
pub fn file_info(srv: &Server) -> FileInfo {
    FileInfo {
        redis_ver: crate::info::REDIS_VERSION.to_string(),
        ctime: unix_ms() / 1000,
        used_mem: crate::info::used_memory(),
        checksum: srv.config.get_bool("rdbchecksum"),
        functions: crate::scripting::with_libraries(|l, _| {
            l.libs.values().map(|lib| lib.code.clone()).collect()
        }),
    }
}

/// Writes the whole keyspace to `tmp` and syncs it to disk. Returns the summed `dirty`
/// counters as of the snapshot. (The AOF writes its first base file with it too.)
pub(crate) fn write_rdb(
    srv: &Server,
    locked: &mut Locked<'_>,
    tmp: &std::path::Path,
) -> Result<u64, String> {
    let io_err = |e: std::io::Error| format!("Write error saving DB on disk: {e}");
    let file = std::fs::File::create(tmp).map_err(|e| {
        format!(
            "Failed opening the temp RDB file {} (in server root dir {}) for saving: {e}",
            tmp.display(),
            std::env::current_dir().unwrap_or_default().display()
        )
    })?;
    let mut w = FileWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        &file_info(srv),
        write_options(srv),
    )
    .map_err(io_err)?;
    let dirty = {
        let dirty = srv.sum(|w| w.dirty.get());
        let mut stats = KeyStats::default();
        let now = unix_ms();
        for db in 0..srv.keyspace.num_dbs() {
            let keys = locked.db(db, now, &mut stats);
            let (n, expires) = keys.iter().fold((0, 0), |(n, x), e| {
                (n + 1, x + usize::from(e.expire_at().is_some()))
            });
            if n == 0 {
                continue;
            }
            w.select_db(db, n, expires).map_err(io_err)?;
            for e in keys.iter() {
                w.entry(e).map_err(io_err)?;
            }
        }
        dirty
    };
    let file = w
        .finish()
        .map_err(io_err)?
        .into_inner()
        .map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    Ok(dirty)
}

/// Loads `dir/dbfilename` into the keyspace through `locked`, which must hold every shard
/// (DEBUG RELOAD). The keyspace should be empty unless `merge`, where a key in the file
/// replaces the one in memory. `Ok(None)` when there is no file. A key that appears twice
/// without `merge` fails the load, as in Redis; so does a function library already loaded
/// (with `merge`, it replaces the one in memory).
pub fn load(
    srv: &Server,
    locked: &mut Locked<'_>,
    merge: bool,
) -> Result<Option<LoadInfo>, String> {
    let mut stats = KeyStats::default();
    let now = unix_ms();
    load_file(
        srv,
        merge,
        |db, e| Ok(locked.db(db, now, &mut stats).replace(e)),
        || Ok(()),
    )
}

/// Loads `dir/dbfilename`, handing each key to `insert` (which returns the key it replaced,
/// if any), then calls `finish` (a start-up load's last batch). Errors are the fatal log
/// line.
fn load_file(
    srv: &Server,
    merge: bool,
    mut insert: impl FnMut(usize, Entry) -> flowkv_persist::Result<Option<Entry>>,
    finish: impl FnOnce() -> flowkv_persist::Result<()>,
) -> Result<Option<LoadInfo>, String> {
    let path = rdb_path(srv);
    let fatal =
        |e: &dyn std::fmt::Display| format!("Fatal error loading the DB {}: {e}", path.display());
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fatal(&e)),
    };
    let started = Instant::now();
    LOADING.set_total(file.metadata().map_or(0, |m| m.len()));
    let info = flowkv_persist::load_with_aux(
        std::io::BufReader::with_capacity(1 << 20, Counted(file)),
        &limits(srv),
        srv.keyspace.num_dbs(),
        unix_ms(),
        |db, e| match insert(db, e)? {
            Some(old) if !merge => Err(duplicated(db, old.key())),
            _ => Ok(()),
        },
        LOADING.on_aux(),
    )
    .and_then(|info| finish().map(|()| info))
    .map_err(|e| fatal(&e))?;
    for w in &info.warnings {
        eprintln!("RDB load: {w}");
    }
    crate::scripting::load_libraries(&info.functions, merge).map_err(|e| fatal(&e))?;
    STATS.loaded_keys.store(info.keys, Relaxed);
    STATS.loaded_expired.store(info.expired, Relaxed);
    STATS.mark_synced(srv.sum(|w| w.dirty.get()));
    eprintln!(
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        info.keys, info.expired
    );
    eprintln!(
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    Ok(Some(info))
}

fn duplicated(db: usize, key: &[u8]) -> flowkv_persist::Error {
    flowkv_persist::error::corrupt(format!(
        "duplicated key '{}' in DB {db}",
        String::from_utf8_lossy(key)
    ))
}

/// Keys a start-up load inserts per hold of the shard locks: between batches, the commands
/// allowed while loading (INFO, CONFIG…) get their turn.
pub(crate) const LOAD_BATCH: usize = 1024;

/// Loads the dataset at start-up, while clients are already served `-LOADING` (the caller
/// called [`Loading::begin`] before serving them, and ends it with [`Loading::end`] once
/// the services run): the AOF with `appendonly yes` (then
/// opened for appending), else `dir/dbfilename`. An error is the fatal log line: the
/// server must not serve half a dataset.
pub fn load_at_start(srv: &Server) -> Result<(), String> {
    let result = if srv.config.get_bool("appendonly") {
        crate::aof::load_at_start(srv)
            .and_then(|_| crate::aof::open_at_start(srv, &mut srv.keyspace.lock_all()))
    } else {
        let batch = std::cell::RefCell::new(Vec::with_capacity(LOAD_BATCH));
        load_file(
            srv,
            false,
            |db, e| {
                let mut b = batch.borrow_mut();
                b.push((db, e));
                if b.len() >= LOAD_BATCH {
                    insert_batch(srv, &mut b)?;
                }
                Ok(None)
            },
            || insert_batch(srv, &mut batch.borrow_mut()),
        )
        .map(|_| ())
    };
    result
}

/// Inserts a batch of loaded keys under every shard lock; a key already there is a
/// duplicate in the file.
pub(crate) fn insert_batch(
    srv: &Server,
    batch: &mut Vec<(usize, Entry)>,
) -> flowkv_persist::Result<()> {
    if batch.is_empty() {
        // Nothing to take the locks for (a caller may hold them already).
        return Ok(());
    }
    let mut locked = srv.keyspace.lock_all();
    let mut stats = KeyStats::default();
    let (now, mut dup) = (unix_ms(), None);
    for (db, e) in batch.drain(..) {
        if let Some(old) = locked.db(db, now, &mut stats).replace(e) {
            dup.get_or_insert((db, old));
        }
    }
    dup.map_or(Ok(()), |(db, old)| Err(duplicated(db, old.key())))
}

// ---------------------------------------------------------------------------------------
// Loading state and write refusals

/// The start-up load's progress: while it runs, clients get `-LOADING` for every command
/// Redis does not flag `loading`, and INFO persistence reports the `loading_*` fields.
pub struct Loading {
    active: AtomicBool,
    /// Unix seconds the load started.
    start_secs: AtomicU64,
    /// Bytes of the files being loaded, and read so far.
    total_bytes: AtomicU64,
    loaded_bytes: AtomicU64,
    /// The `used-mem` aux field of the RDB being loaded.
    rdb_used_mem: AtomicU64,
}

pub static LOADING: Loading = Loading {
    active: AtomicBool::new(false),
    start_secs: AtomicU64::new(0),
    total_bytes: AtomicU64::new(0),
    loaded_bytes: AtomicU64::new(0),
    rdb_used_mem: AtomicU64::new(0),
};

impl Loading {
    /// True while the start-up load runs.
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Relaxed)
    }

    /// Marks the start-up load as running: from now on commands get `-LOADING`.
    pub fn begin(&self) {
        self.start_secs.store(unix_ms() / 1000, Relaxed);
        self.total_bytes.store(0, Relaxed);
        self.loaded_bytes.store(0, Relaxed);
        self.rdb_used_mem.store(0, Relaxed);
        self.active.store(true, Relaxed);
    }

    /// Ends the loading state: at start-up once the services that save and expire the
    /// dataset run too, so nothing is refused as unavailable in between.
    pub fn end(&self) {
        self.active.store(false, Relaxed);
    }

    /// Sets the size of what is about to be loaded (an RDB file; every AOF part).
    pub(crate) fn set_total(&self, bytes: u64) {
        self.total_bytes.store(bytes, Relaxed);
        self.loaded_bytes.store(0, Relaxed);
    }

    /// Records the `used-mem` aux field as the loader reads it.
    pub(crate) fn on_aux(&self) -> impl FnMut(&[u8], &[u8]) + '_ {
        |k: &[u8], v: &[u8]| {
            if k == b"used-mem" {
                let mem = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
                self.rdb_used_mem.store(mem.unwrap_or(0), Relaxed);
            }
        }
    }

    /// INFO persistence's `loading_*` progress fields, computed as Redis does; empty when
    /// no load runs.
    pub fn info_fields(&self) -> Vec<(&'static str, String)> {
        if !self.active() {
            return Vec::new();
        }
        let (total, loaded) = (
            self.total_bytes.load(Relaxed),
            self.loaded_bytes.load(Relaxed),
        );
        let used_mem = self.rdb_used_mem.load(Relaxed);
        let (perc, remaining) = if total > 0 {
            (
                loaded as f64 / total as f64 * 100.0,
                total.saturating_sub(loaded),
            )
        } else if used_mem > 0 {
            // used-mem is only an estimate of the file's size: never past 100%.
            let perc = (loaded as f64 / used_mem as f64 * 100.0).min(99.99);
            (perc, used_mem.saturating_sub(loaded).max(1))
        } else {
            (0.0, 1)
        };
        let start = self.start_secs.load(Relaxed);
        let elapsed = (unix_ms() / 1000).saturating_sub(start);
        let eta = match elapsed {
            // Not enough to go on yet: Redis reports a token second.
            0 => 1,
            e => e.saturating_mul(remaining) / (loaded + 1),
        };
        vec![
            ("loading_start_time", start.to_string()),
            ("loading_total_bytes", total.to_string()),
            ("loading_rdb_used_mem", used_mem.to_string()),
            ("loading_loaded_bytes", loaded.to_string()),
            ("loading_loaded_perc", format!("{perc:.2}")),
            ("loading_eta_seconds", eta.to_string()),
        ]
    }
}

/// A file being loaded: counts what is read into [`Loading`]'s progress.
pub(crate) struct Counted<R>(pub R);

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        LOADING.loaded_bytes.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}

impl<R: std::io::Seek> std::io::Seek for Counted<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

/// Redis's error for a failed background save with `stop-writes-on-bgsave-error yes`.
const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Why writes are refused after a persistence failure (Redis's
/// `writeCommandsDeniedByDiskError`): the last save failed with
/// `stop-writes-on-bgsave-error yes` and `save` rules set, or writes to the AOF fail.
/// Two atomic loads while all is well.
#[inline]
pub fn disk_error(srv: &Server) -> Option<CmdError> {
    if STATS.last_ok.load(Relaxed) {
        return srv
            .aof
            .write_error()
            .map(|e| CmdError::msg(format!("MISCONF Errors writing to the AOF file: {e}")));
    }
    let rules = srv.config.get("save").unwrap_or_default();
    if srv.config.get_bool("stop-writes-on-bgsave-error") && !rules.is_empty() {
        return Some(CmdError::msg(MISCONF_RDB));
    }
    srv.aof
        .write_error()
        .map(|e| CmdError::msg(format!("MISCONF Errors writing to the AOF file: {e}")))
}

/// The refusals dispatch applies before running a command, for persistence's sake and in
/// Redis's order: MISCONF for writes (and PING) after a failed save, LOADING while the
/// start-up load runs for commands not flagged `loading`. An EXEC counts as what it
/// queued.
#[inline]
pub fn refuse(srv: &Server, cmd: &Command, multi: Option<&MultiState>) -> Option<CmdError> {
    let queued = |f: &dyn Fn(&Command) -> bool| {
        cmd.name == "exec" && multi.is_some_and(|m| m.queued.iter().any(|q| f(q.cmd)))
    };
    if cmd.has(WRITE) || cmd.name == "ping" || queued(&|c| c.has(WRITE)) {
        if let Some(e) = disk_error(srv) {
            return Some(e);
        }
    }
    if LOADING.active() && (!cmd.has(LOADING_FLAG) || queued(&|c| !c.has(LOADING_FLAG))) {
        return Some(CmdError::msg(
            "LOADING Redis is loading the dataset in memory",
        ));
    }
    None
}

// ---------------------------------------------------------------------------------------
// Commands

/// SAVE: a synchronous save.
fn save_cmd(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.srv.snapshotter.in_progress() {
        return Err(CmdError::msg("ERR Background save already in progress"));
    }
    let locked = ctx.locked.as_mut().expect("ALL_SHARDS");
    save(ctx.srv, locked).map_err(|_| CmdError::msg("ERR"))?;
    ctx.out.ok();
    Ok(())
}

/// BGSAVE [SCHEDULE]: starts a background save (see [`crate::bgsave`]) as of this command,
/// under the every-shard locks dispatch took for it. SCHEDULE is accepted: with no fork there
/// is never another child to wait for.
fn bgsave(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match args.len() {
        1 => {}
        2 if args.get(1).eq_ignore_ascii_case(b"schedule") => {}
        _ => return Err(CmdError::Syntax),
    }
    let locked = ctx.locked.as_mut().expect("ALL_SHARDS");
    ctx.srv
        .snapshotter
        .start(ctx.srv, locked)
        .map_err(CmdError::msg)?;
    ctx.out.simple(b"Background saving started");
    Ok(())
}

/// BGREWRITEAOF: starts an AOF rewrite as of this command (see [`crate::aof`]), or
/// schedules it while a background save runs.
fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let locked = ctx.locked.as_mut().expect("ALL_SHARDS");
    match crate::aof::start_rewrite(ctx.srv, locked) {
        Ok(crate::aof::Started::Now) => {
            ctx.out
                .simple(b"Background append only file rewriting started")
        }
        Ok(crate::aof::Started::Scheduled) => ctx
            .out
            .simple(b"Background append only file rewriting scheduled"),
        Err(e) if e.contains("already in progress") => return Err(CmdError::msg(format!("ERR {e}"))),
        Err(_) => {
            return Err(CmdError::msg(
                "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.",
            ))
        }
    }
    Ok(())
}

/// DUMP key: the value's RDB encoding with version and CRC64, or null.
fn dump(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let opts = write_options(ctx.srv);
    let (mut keys, out) = ctx.keys_out();
    match keys.read(args.get(1)) {
        Some(e) => out.bulk(&flowkv_persist::dump_payload(e, opts)),
        None => out.null(),
    }
    Ok(())
}

/// RESTORE's options after the payload.
#[derive(Default)]
struct RestoreOpts {
    replace: bool,
    absttl: bool,
    idle_secs: Option<u64>,
    freq: Option<u8>,
}

fn restore_opts(args: Args<'_>) -> Result<RestoreOpts, CmdError> {
    let mut o = RestoreOpts::default();
    let mut i = 4;
    while i < args.len() {
        let a = args.get(i);
        let has_value = i + 1 < args.len();
        if a.eq_ignore_ascii_case(b"replace") {
            o.replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            o.absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && has_value && o.freq.is_none() {
            let v = parse_i64(args.get(i + 1)).ok_or(CmdError::NotInteger)?;
            let v = u64::try_from(v)
                .map_err(|_| CmdError::msg("ERR Invalid IDLETIME value, must be >= 0"))?;
            o.idle_secs = Some(v);
            i += 1;
        } else if a.eq_ignore_ascii_case(b"freq") && has_value && o.idle_secs.is_none() {
            let v = parse_i64(args.get(i + 1)).ok_or(CmdError::NotInteger)?;
            let v = u8::try_from(v)
                .map_err(|_| CmdError::msg("ERR Invalid FREQ value, must be >= 0 and <= 255"))?;
            o.freq = Some(v);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]: creates a key from a
/// DUMP payload, with Redis's checks in Redis's order.
fn restore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let o = restore_opts(args)?;
    let key = args.get(1);
    let now = ctx.now_ms;
    if !o.replace && ctx.keys().contains(key) {
        return Err(CmdError::msg("BUSYKEY Target key name already exists."));
    }
    let ttl = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    if ttl < 0 {
        return Err(CmdError::msg("ERR Invalid TTL value, must be >= 0"));
    }
    let obj =
        flowkv_persist::restore_payload(args.get(3), &limits(ctx.srv)).map_err(|e| match e {
            RestoreError::Trailer => {
                CmdError::msg("ERR DUMP payload version or checksum are wrong")
            }
            RestoreError::Data(_) => CmdError::msg("ERR Bad data format"),
        })?;
    let mut keys = ctx.keys();
    let deleted = o.replace && keys.delete(key);
    let expire_at = match ttl {
        0 => None,
        t if o.absttl => Some(t as u64),
        t => Some(now.saturating_add(t as u64)),
    };
    if expire_at.is_some_and(|at| at <= now) {
        // Already expired: the key is gone (deleted if REPLACE found one), as in Redis.
        if deleted {
            ctx.dirty += 1;
            notify(ctx, GENERIC, "del", key);
            ctx.propagate_as(&[b"DEL", key]);
        } else {
            ctx.prevent_propagation();
        }
        ctx.out.ok();
        return Ok(());
    }
    keys.insert(obj.into_entry(key, expire_at));
    if o.idle_secs.is_some() || o.freq.is_some() {
        if let Some(e) = keys.write(key) {
            match (o.idle_secs, o.freq) {
                (Some(idle), _) => {
                    e.set_lru(lru_clock(now.saturating_sub(idle.saturating_mul(1000))))
                }
                (_, Some(freq)) => {
                    // LFU layout: minutes of the last decrement above the 8-bit counter.
                    let minutes = ((now / 60_000) & 0xFFFF) as u32;
                    e.set_lru((minutes << 8) | u32::from(freq));
                }
                _ => {}
            }
        }
    }
    ctx.dirty += 1;
    notify(ctx, GENERIC, "restore", key);
    // A relative TTL propagates as the absolute one (ABSTTL), as Redis does.
    if let Some(at) = expire_at.filter(|_| !o.absttl && crate::propagate::active()) {
        let at = crate::propagate::num(at);
        let mut cmd: Vec<&[u8]> = args.iter().collect();
        cmd[2] = &at;
        cmd.push(b"ABSTTL");
        ctx.propagate_as(&cmd);
    }
    ctx.out.ok();
    Ok(())
}
