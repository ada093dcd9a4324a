//! The append-only file: Redis 7's multi-part AOF (a base file, incremental command files
//! and a manifest in `appenddirname`), fed by [`crate::propagate`].
//!
//! - Appending: the AOF is a propagation [`Sink`]. Commands arrive under their shard locks
//!   and land in an in-memory buffer (one mutex, a memcpy); the buffer goes to the current
//!   incremental file outside every shard lock.
//! - `appendfsync always`: before a worker writes replies it calls [`before_reply`], which
//!   writes and fsyncs everything appended so far unless another thread already did (group
//!   commit: one fsync covers every command of every connection appended before it).
//!   `everysec`: the AOF thread writes the buffer every few milliseconds and fsyncs once a
//!   second, so `kill -9` loses nothing written and a machine crash at most ~1 s. `no`: the
//!   thread writes, the kernel flushes when it likes.
//! - Rewrite (BGREWRITEAOF, automatic, `CONFIG SET appendonly yes`): under every shard lock
//!   the current incremental file is closed and a new one opened, so commands from then on
//!   go to it, and the keyspace snapshot of [`crate::bgsave`] starts at the same instant.
//!   The snapshotter writes the new base (RDB format) without fork; then the manifest swaps
//!   atomically (temp file, fsync, rename) to the new base plus the new incremental file,
//!   and the files it replaced are deleted.
//! - Loading ([`load`]): the manifest's base (RDB or commands) and then each incremental
//!   file are replayed, with expiry off as Redis loads (absolute TTLs make this exact). A
//!   truncated last file is cut back to its last whole command when `aof-load-truncated`
//!   is yes.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowkv_persist::aof::{CommandReader, Manifest, ReadError};
use flowkv_protocol::{OwnedArgs, Reply};
use flowkv_store::keyspace::ExpireLog;
use flowkv_store::{KeyStats, Locked};
use parking_lot::Mutex;

use crate::client::{Client, ClientShared};
use crate::commands::persist::{insert_batch, Counted, LOADING, LOAD_BATCH};
use crate::commands::{table, Lookup};
use crate::ctx::Ctx;
use crate::propagate::{Sink, FEED};
use crate::server::{unix_ms, Server};

/// `aof_state`: off, on, or on but waiting for its first rewrite to finish.
const OFF: u8 = 0;
const ON: u8 = 1;
const WAIT_REWRITE: u8 = 2;

/// `appendfsync` policies.
const FSYNC_NO: u8 = 0;
const FSYNC_ALWAYS: u8 = 1;
const FSYNC_EVERYSEC: u8 = 2;

/// The AOF's state (a [`Server`] field).
#[derive(Default)]
pub struct Aof {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    status: AtomicU8,
    fsync: AtomicU8,
    /// Commands appended but not yet written to the file.
    buf: Mutex<Buf>,
    /// Bytes appended / written to the file / fsynced since start (monotonic).
    appended: AtomicU64,
    written: AtomicU64,
    synced: AtomicU64,
    io: Mutex<Io>,
    last_write_ok: AtomicBool,
    /// Why the last failed write failed (strerror's text, for the MISCONF error).
    last_write_err: Mutex<String>,
    rewrite: RewriteStats,
}

#[derive(Default)]
struct Buf {
    bytes: Vec<u8>,
    /// The database the file's last SELECT chose (`None`: a new file, none yet).
    selected: Option<usize>,
}

/// The files: where they are, the manifest, the open incremental file.
#[derive(Default)]
struct Io {
    dir: PathBuf,
    prefix: String,
    manifest: Manifest,
    file: Option<File>,
    /// Sizes for INFO and the automatic rewrite: the base plus incremental files now, and
    /// the whole AOF right after the last rewrite (or load).
    current_size: u64,
    base_size: u64,
    /// The first incremental file of the running rewrite (older ones go with the old base).
    rewrite_incr_seq: Option<u64>,
    last_fsync: Option<Instant>,
}

#[derive(Default)]
struct RewriteStats {
    running: AtomicBool,
    scheduled: AtomicBool,
    started_ms: AtomicU64,
    /// -1 before any rewrite (the default 0 is read as "none" too).
    last_secs: AtomicI64,
    last_failed: AtomicBool,
    count: AtomicU64,
    failures: AtomicU64,
}

impl Sink for Shared {
    fn append(&self, db: usize, cmd: &[u8]) {
        let mut b = self.buf.lock();
        let before = b.bytes.len();
        if b.selected != Some(db) {
            let n = db.to_string();
            let sel = format!("*2\r\n$6\r\nSELECT\r\n${}\r\n{n}\r\n", n.len());
            b.bytes.extend_from_slice(sel.as_bytes());
            b.selected = Some(db);
        }
        b.bytes.extend_from_slice(cmd);
        let added = (b.bytes.len() - before) as u64;
        self.appended.fetch_add(added, Relaxed);
    }
}

impl Shared {
    /// Writes what is buffered to the open file; fsyncs too if `sync`. Call with `io`
    /// locked.
    fn write_out(&self, io: &mut Io, sync: bool) -> std::io::Result<()> {
        let (bytes, upto) = {
            let mut b = self.buf.lock();
            (std::mem::take(&mut b.bytes), self.appended.load(Relaxed))
        };
        let Some(f) = io.file.as_mut() else {
            return Ok(());
        };
        if !bytes.is_empty() {
            let r = f.write_all(&bytes);
            self.last_write_ok.store(r.is_ok(), Relaxed);
            if let Err(e) = &r {
                *self.last_write_err.lock() = os_error_text(e);
            }
            r?;
            io.current_size += bytes.len() as u64;
            self.written.store(upto, Relaxed);
        }
        if sync && self.synced.load(Relaxed) < self.written.load(Relaxed) {
            f.sync_data()?;
            io.last_fsync = Some(Instant::now());
            self.synced.store(upto, Relaxed);
        }
        Ok(())
    }
}

impl Aof {
    /// True while the AOF is on (or waiting for its first rewrite).
    pub fn enabled(&self) -> bool {
        self.shared.status.load(Relaxed) != OFF
    }

    /// Why writes to the AOF fail, while they do (writes are then refused with MISCONF, as
    /// in Redis). One atomic load while they succeed.
    #[inline]
    pub fn write_error(&self) -> Option<String> {
        let s = &self.shared;
        if s.last_write_ok.load(Relaxed) || s.status.load(Relaxed) == OFF {
            return None;
        }
        Some(s.last_write_err.lock().clone())
    }

    /// True while a rewrite runs, or AOF waits for the one that turns it on.
    pub fn rewrite_in_progress(&self) -> bool {
        self.shared.rewrite.running.load(Relaxed)
    }
}

/// Called before a worker writes replies, so that no reply for a write goes out before the
/// write is in the file (as Redis writes its AOF buffer before replying): written under
/// every policy, so `kill -9` never loses an acknowledged write, and fsynced too under
/// `appendfsync always`. One atomic comparison when nothing is due.
#[inline]
pub fn before_reply(srv: &Server) {
    let s = &srv.aof.shared;
    let always = s.fsync.load(Relaxed) == FSYNC_ALWAYS;
    let done = if always { &s.synced } else { &s.written };
    if done.load(Relaxed) < s.appended.load(Relaxed) {
        let mut io = s.io.lock();
        // Another worker's write may have covered our commands while we waited.
        if done.load(Relaxed) < s.appended.load(Relaxed) {
            if let Err(e) = s.write_out(&mut io, always) {
                eprintln!("Error writing to the AOF file: {e}");
            }
        }
    }
}

/// An I/O error as C's strerror words it ("No space left on device"), without Rust's
/// " (os error 28)" suffix.
fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Re-reads `appendfsync` (at start and after CONFIG SET).
fn refresh_policy(srv: &Server) {
    let p = match srv.config.get("appendfsync").as_deref() {
        Some("always") => FSYNC_ALWAYS,
        Some("no") => FSYNC_NO,
        _ => FSYNC_EVERYSEC,
    };
    srv.aof.shared.fsync.store(p, Relaxed);
}

fn dir_and_prefix(srv: &Server) -> (PathBuf, String) {
    let dir = srv
        .config
        .get("appenddirname")
        .unwrap_or_else(|| "appendonlydir".into());
    let prefix = srv
        .config
        .get("appendfilename")
        .unwrap_or_else(|| "appendonly.aof".into());
    (PathBuf::from(dir), prefix)
}

/// Reads the manifest in `dir`, if there is one.
fn read_manifest(dir: &Path, prefix: &str) -> Result<Option<Manifest>, String> {
    let path = dir.join(Manifest::file_name(prefix));
    match std::fs::read_to_string(&path) {
        Ok(text) => Manifest::parse(&text)
            .map(Some)
            .map_err(|e| format!("Fatal AOF manifest file error ({}): {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "Fatal error: can't open the AOF manifest file {} for reading: {e}",
            path.display()
        )),
    }
}

/// Writes the manifest atomically: a temp file, fsynced, renamed over the old one, and the
/// directory fsynced so the rename itself survives a crash.
fn persist_manifest(io: &Io) -> std::io::Result<()> {
    let name = Manifest::file_name(&io.prefix);
    let tmp = io.dir.join(format!("temp-{name}"));
    let mut f = File::create(&tmp)?;
    f.write_all(io.manifest.format().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, io.dir.join(&name))?;
    File::open(&io.dir)?.sync_all()
}

/// Opens (creating) incremental file `name` for appending; its commands start with a
/// SELECT of their own.
fn open_incr(srv: &Server, io: &mut Io, name: &str) -> std::io::Result<()> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(io.dir.join(name))?;
    io.file = Some(f);
    srv.aof.shared.buf.lock().selected = None;
    Ok(())
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn total_size(io: &Io) -> u64 {
    io.manifest
        .base
        .iter()
        .chain(&io.manifest.incr)
        .map(|p| file_size(&io.dir.join(&p.name)))
        .sum()
}

// ---------------------------------------------------------------------------------------
// Start-up and switching on / off

/// The configured directory (created if missing) with the manifest found there, no file
/// open yet.
fn fresh_io(srv: &Server) -> Result<Io, String> {
    let (dir, prefix) = dir_and_prefix(srv);
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {e}",
            dir.display()
        )
    })?;
    let manifest = read_manifest(&dir, &prefix)?.unwrap_or_default();
    Ok(Io {
        dir,
        prefix,
        manifest,
        ..Io::default()
    })
}

/// At start-up with `appendonly yes`, after [`load`]: opens the AOF for appending (writing
/// a base file first if the directory has none, as Redis does) and attaches it to the
/// propagation feed. `locked` holds every shard.
pub fn open_at_start(srv: &Server, locked: &mut Locked<'_>) -> Result<(), String> {
    refresh_policy(srv);
    let fresh = fresh_io(srv)?;
    let s = &srv.aof.shared;
    let mut io = s.io.lock();
    *io = fresh;
    if io.manifest.base.is_none() && io.manifest.incr.is_empty() {
        let prefix = io.prefix.clone();
        let name = io.manifest.new_base(&prefix, true);
        let path = io.dir.join(&name);
        crate::commands::persist::write_rdb(srv, locked, &path)?;
        eprintln!("Creating AOF base file {name} on server start");
    }
    let incr = match io.manifest.incr.last() {
        Some(p) => p.name.clone(),
        None => {
            let prefix = io.prefix.clone();
            io.manifest.new_incr(&prefix)
        }
    };
    open_incr(srv, &mut io, &incr)
        .map_err(|e| format!("Can't open the append-only file {incr}: {e}"))?;
    // Files an interrupted rewrite left listed as history go now, as Redis deletes them.
    for p in std::mem::take(&mut io.manifest.history) {
        let _ = std::fs::remove_file(io.dir.join(&p.name));
    }
    persist_manifest(&io).map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    io.current_size = total_size(&io);
    io.base_size = io.current_size;
    s.last_write_ok.store(true, Relaxed);
    s.status.store(ON, Relaxed);
    FEED.attach(srv.aof.shared.clone());
    Ok(())
}

/// Called after every successful CONFIG SET: turns the AOF on or off when `appendonly`
/// changed, and re-reads `appendfsync`.
pub fn after_config_set(srv: &Server) {
    refresh_policy(srv);
    let want = srv.config.get_bool("appendonly");
    let s = &srv.aof.shared;
    match (want, s.status.load(Relaxed)) {
        (true, OFF) => {
            if let Err(e) = start(srv) {
                eprintln!("Unable to turn on AOF: {e}");
            }
        }
        (false, ON | WAIT_REWRITE) => stop(srv),
        _ => {}
    }
}

/// CONFIG SET appendonly yes: starts a rewrite whose end turns the AOF on (commands from
/// this instant are appended to the new incremental file meanwhile).
fn start(srv: &Server) -> Result<(), String> {
    *srv.aof.shared.io.lock() = fresh_io(srv)?;
    srv.aof.shared.last_write_ok.store(true, Relaxed);
    srv.aof.shared.status.store(WAIT_REWRITE, Relaxed);
    let mut locked = srv.keyspace.lock_all();
    start_rewrite(srv, &mut locked).map(|_| ())
}

/// CONFIG SET appendonly no: writes and fsyncs what is buffered, closes the file and stops
/// appending. A running rewrite finishes but changes nothing.
fn stop(srv: &Server) {
    let s = &srv.aof.shared;
    FEED.detach(&(s.clone() as Arc<dyn Sink>));
    let mut io = s.io.lock();
    if let Err(e) = s.write_out(&mut io, true) {
        eprintln!("Error writing the AOF buffer before turning AOF off: {e}");
    }
    io.file = None;
    s.status.store(OFF, Relaxed);
    eprintln!("AOF turned off");
}

// ---------------------------------------------------------------------------------------
// Rewrite

/// What [`start_rewrite`] did.
pub enum Started {
    Now,
    /// A background save runs: the rewrite starts when it ends.
    Scheduled,
}

/// Starts a rewrite (BGREWRITEAOF, automatic, AOF switched on). `locked` holds every shard,
/// so the new incremental file and the snapshot start at the same point in time.
pub fn start_rewrite(srv: &Server, locked: &mut Locked<'_>) -> Result<Started, String> {
    let s = &srv.aof.shared;
    if s.io.lock().rewrite_incr_seq.is_some() {
        return Err("Background append only file rewriting already in progress".into());
    }
    if srv.snapshotter.in_progress() {
        s.rewrite.scheduled.store(true, Relaxed);
        s.rewrite
            .running
            .store(s.status.load(Relaxed) == WAIT_REWRITE, Relaxed);
        return Ok(Started::Scheduled);
    }
    let mut io = s.io.lock();
    if io.dir.as_os_str().is_empty() {
        // AOF never switched on: the rewrite works in the configured directory.
        let (dir, prefix) = dir_and_prefix(srv);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        io.manifest = read_manifest(&dir, &prefix)?.unwrap_or_default();
        io.dir = dir;
        io.prefix = prefix;
    }
    // Everything so far goes to the current incremental file; from now on, a new one.
    if let Err(e) = s.write_out(&mut io, true) {
        eprintln!("Error writing the AOF buffer before a rewrite: {e}");
    }
    let on = s.status.load(Relaxed) != OFF;
    if on {
        let prefix = io.prefix.clone();
        let name = io.manifest.new_incr(&prefix);
        open_incr(srv, &mut io, &name).map_err(|e| format!("Can't open {name}: {e}"))?;
        if s.status.load(Relaxed) == ON {
            persist_manifest(&io).map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
        } else {
            FEED.attach(srv.aof.shared.clone());
        }
        io.rewrite_incr_seq = Some(io.manifest.incr_seq);
    } else {
        io.rewrite_incr_seq = Some(io.manifest.incr_seq + 1);
    }
    let tmp = io
        .dir
        .join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    drop(io);
    s.rewrite.running.store(true, Relaxed);
    s.rewrite.scheduled.store(false, Relaxed);
    s.rewrite.started_ms.store(unix_ms(), Relaxed);
    s.rewrite.count.fetch_add(1, Relaxed);
    if let Err(e) = srv.snapshotter.start_aof_base(srv, locked, tmp) {
        rewrite_failed(srv, e);
        return Err(e.into());
    }
    eprintln!("Background append only file rewriting started");
    Ok(Started::Now)
}

/// The snapshotter finished writing a rewrite's base file (`result`): puts it in place
/// and swaps the manifest, or gives up.
pub fn rewrite_done(srv: &Server, result: Result<(), String>, took: Duration) {
    let s = &srv.aof.shared;
    let mut io = s.io.lock();
    let tmp = io
        .dir
        .join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    let first_new = io.rewrite_incr_seq.take().unwrap_or(u64::MAX);
    let outcome = result.and_then(|()| {
        let prefix = io.prefix.clone();
        let mut next = io.manifest.clone();
        let name = next.new_base(&prefix, true);
        std::fs::rename(&tmp, io.dir.join(&name)).map_err(|e| e.to_string())?;
        let keep = next.incr.iter().filter(|p| p.seq >= first_new).count();
        next.retire_incr(keep);
        // The replaced files are deleted once the manifest no longer names them.
        let history = std::mem::take(&mut next.history);
        let before = std::mem::replace(&mut io.manifest, next);
        if let Err(e) = persist_manifest(&io) {
            io.manifest = before;
            return Err(format!("Can't persist the AOF manifest: {e}"));
        }
        for p in history {
            let _ = std::fs::remove_file(io.dir.join(&p.name));
        }
        Ok(())
    });
    match outcome {
        Ok(()) => {
            if s.status.load(Relaxed) == WAIT_REWRITE {
                s.status.store(ON, Relaxed);
                eprintln!("AOF rewrite done: AOF is on");
            }
            io.current_size = total_size(&io);
            io.base_size = io.current_size;
            s.rewrite.last_failed.store(false, Relaxed);
            s.rewrite.failures.store(0, Relaxed);
            s.rewrite
                .last_secs
                .store(took.as_secs() as i64 + 1, Relaxed);
            eprintln!("Background AOF rewrite finished successfully");
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            drop(io);
            rewrite_failed(srv, &e);
        }
    }
    s.rewrite.running.store(false, Relaxed);
}

/// A rewrite failed: logged and counted; AOF waiting for it goes back off.
fn rewrite_failed(srv: &Server, e: &str) {
    let s = &srv.aof.shared;
    eprintln!("Background AOF rewrite failed: {e}");
    s.rewrite.last_failed.store(true, Relaxed);
    s.rewrite.failures.fetch_add(1, Relaxed);
    s.rewrite.running.store(false, Relaxed);
    if s.status.load(Relaxed) == WAIT_REWRITE {
        stop(srv);
    }
}

/// Starts the AOF thread: writes the buffer every few milliseconds, fsyncs once a second
/// under `everysec`, starts scheduled and automatic rewrites.
pub fn spawn(srv: Arc<Server>) -> std::io::Result<()> {
    refresh_policy(&srv);
    // Keys deleted by expiry are logged as DEL / UNLINK (see `propagate::expired`).
    let weak = Arc::downgrade(&srv);
    srv.keyspace.set_expire_log(ExpireLog {
        active: crate::propagate::active,
        deleted: Box::new(move |db, key| {
            if let Some(srv) = weak.upgrade() {
                let unlink = srv.evictor.lazy(crate::evict::lazy::EXPIRE);
                crate::propagate::expired(db, key, unlink);
            }
        }),
    });
    std::thread::Builder::new()
        .name("flowkv-aof".into())
        .spawn(move || {
            let mut ticks = 0u64;
            loop {
                std::thread::sleep(Duration::from_millis(10));
                ticks += 1;
                tick(&srv, ticks.is_multiple_of(10));
            }
        })?;
    Ok(())
}

fn tick(srv: &Server, slow: bool) {
    let s = &srv.aof.shared;
    if s.status.load(Relaxed) != OFF {
        let mut io = s.io.lock();
        let policy = s.fsync.load(Relaxed);
        let due = match policy {
            FSYNC_ALWAYS => true,
            FSYNC_EVERYSEC => io
                .last_fsync
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1)),
            _ => false,
        };
        if let Err(e) = s.write_out(&mut io, due) {
            eprintln!("Error writing to the AOF file: {e}");
        }
    }
    if !slow || s.rewrite.running.load(Relaxed) && !s.rewrite.scheduled.load(Relaxed) {
        return;
    }
    if s.rewrite.scheduled.load(Relaxed) && !srv.snapshotter.in_progress() {
        let _ = start_rewrite(srv, &mut srv.keyspace.lock_all());
    } else if s.status.load(Relaxed) == ON && auto_rewrite_due(srv) {
        eprintln!("Starting automatic rewriting of AOF");
        let _ = start_rewrite(srv, &mut srv.keyspace.lock_all());
    }
}

/// `auto-aof-rewrite-percentage` / `-min-size`: the AOF grew by that much since the last
/// rewrite and is at least that big.
fn auto_rewrite_due(srv: &Server) -> bool {
    let pct = srv.config.get_u64("auto-aof-rewrite-percentage");
    if pct == 0 || srv.snapshotter.in_progress() {
        return false;
    }
    let io = srv.aof.shared.io.lock();
    let min = srv.config.get_u64("auto-aof-rewrite-min-size");
    let base = io.base_size.max(1);
    io.current_size > min && io.current_size.saturating_sub(base) * 100 / base >= pct
}

// ---------------------------------------------------------------------------------------
// Loading

/// What [`load`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    /// No manifest: nothing to load.
    NotExist,
    /// A manifest naming no data.
    Empty,
    Done {
        commands: u64,
    },
}

/// Loads the AOF in the configured directory into `ctx`'s keyspace (its locks hold every
/// shard; the keyspace should be empty). `ctx.client` replays the commands: its database
/// and reply buffer are restored after. Errors are the fatal log line. At start-up
/// (`at_start`) the locks are let go every so often, so the commands allowed while loading
/// are served meanwhile.
pub fn load(ctx: &mut Ctx<'_>, at_start: bool) -> Result<Loaded, String> {
    let (dir, prefix) = dir_and_prefix(ctx.srv);
    let Some(manifest) = read_manifest(&dir, &prefix)? else {
        return Ok(Loaded::NotExist);
    };
    let parts: Vec<_> = manifest.base.iter().chain(&manifest.incr).collect();
    if parts.is_empty() {
        return Ok(Loaded::Empty);
    }
    let started = Instant::now();
    let sizes = parts.iter().map(|p| file_size(&dir.join(&p.name))).sum();
    crate::commands::persist::LOADING.set_total(sizes);
    // As Redis empties its functions with its data: the base brings the libraries back.
    crate::scripting::clear_libraries();
    let truncated_ok = ctx.srv.config.get_bool("aof-load-truncated");
    let (db, now, mark) = (ctx.client.db, ctx.now_ms, ctx.out.buf.len());
    // As Redis loads: nothing expires while the file replays (every TTL in it is absolute).
    ctx.now_ms = 0;
    let mut commands = 0;
    let result = crate::propagate::without(|| {
        for (i, p) in parts.iter().enumerate() {
            let path = dir.join(&p.name);
            let last = i + 1 == parts.len();
            ctx.client.db = 0;
            commands += load_part(ctx, &path, last && truncated_ok, mark, at_start)?;
        }
        Ok::<(), String>(())
    });
    ctx.client.db = db;
    ctx.now_ms = now;
    ctx.out.buf.truncate(mark);
    result?;
    eprintln!(
        "DB loaded from append only file: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    Ok(Loaded::Done { commands })
}

/// Loads one part: an RDB preamble if the file starts with one, then commands.
fn load_part(
    ctx: &mut Ctx<'_>,
    path: &Path,
    cut_tail: bool,
    mark: usize,
    at_start: bool,
) -> Result<u64, String> {
    let name = path.display();
    let file = File::open(path).map_err(|e| {
        format!("Fatal error: can't open the append log file {name} for reading: {e}")
    })?;
    let mut r = BufReader::with_capacity(1 << 20, Counted(file));
    let head = r.fill_buf().map_err(|e| e.to_string())?;
    if head.starts_with(b"REDIS") {
        load_preamble(ctx, &mut r, at_start)
            .map_err(|e| format!("Error reading the RDB preamble of the AOF file {name}: {e}"))?;
    }
    let offset = r.stream_position().map_err(|e| e.to_string())?;
    let mut reader = CommandReader::new(r, offset);
    let mut multi: Option<(u64, Vec<OwnedArgs>)> = None;
    let mut n = 0;
    loop {
        let start = reader.offset;
        match reader.next_command() {
            Ok(Some(argv)) => {
                let args = OwnedArgs::from_iter(argv);
                let cmd = args.as_args().get(0).to_ascii_lowercase();
                match (cmd.as_slice(), multi.as_mut()) {
                    (b"multi", None) => multi = Some((start, Vec::new())),
                    (b"exec", Some(_)) => {
                        for q in multi.take().map(|m| m.1).unwrap_or_default() {
                            replay(ctx, &q, mark)?;
                            n += 1;
                        }
                    }
                    (_, Some((_, queued))) => queued.push(args),
                    (_, None) => {
                        replay(ctx, &args, mark)?;
                        n += 1;
                    }
                }
                if at_start && multi.is_none() && n % LOAD_BATCH as u64 == 0 {
                    // Between whole commands: others may take the locks for a moment.
                    ctx.locked = None;
                    ctx.locked = Some(ctx.srv.keyspace.lock_all());
                }
            }
            Ok(None) => match multi {
                // A transaction without its EXEC: the file ends inside it.
                Some((at, _)) => {
                    return truncated(
                        path,
                        at,
                        cut_tail,
                        "Revert incomplete MULTI/EXEC transaction in AOF file",
                    )
                    .map(|()| n)
                }
                None => return Ok(n),
            },
            Err(ReadError::Truncated { valid_len }) => {
                let at = multi.map_or(valid_len, |m| m.0);
                return truncated(
                    path,
                    at,
                    cut_tail,
                    "!!! Warning: short read while loading the AOF file",
                )
                .map(|()| n);
            }
            Err(e) => return Err(format!("{e} ({name})")),
        }
    }
}

/// A file that ends mid-command (or mid-transaction) at byte `at`: cut it there if
/// allowed, else the fatal error.
fn truncated(path: &Path, at: u64, allowed: bool, what: &str) -> Result<(), String> {
    let name = path.display();
    if !allowed {
        return Err(format!(
            "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
        ));
    }
    eprintln!("{what} {name}!!! Truncating the AOF at offset {at}");
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(at))
        .map_err(|e| format!("Error truncating the AOF file {name}: {e}"))?;
    eprintln!("AOF {name} loaded anyway because aof-load-truncated is enabled");
    Ok(())
}

/// Loads an RDB preamble (keys are kept even if expired: the commands after may touch them,
/// and expiry removes them once loading is done, as in Redis) and its function libraries.
/// At start-up the keys go in by batches, each under the shard locks taken afresh.
fn load_preamble<R: std::io::Read>(ctx: &mut Ctx<'_>, r: R, at_start: bool) -> Result<(), String> {
    let srv = ctx.srv;
    let lim = crate::commands::persist::limits(srv);
    let mut stats = KeyStats::default();
    let now = unix_ms();
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    if at_start {
        ctx.locked = None;
    }
    let info = flowkv_persist::load_with_aux(
        r,
        &lim,
        srv.keyspace.num_dbs(),
        0,
        |db, e| {
            match ctx.locked.as_mut() {
                Some(locked) => drop(locked.db(db, now, &mut stats).replace(e)),
                None => batch.push((db, e)),
            }
            if batch.len() >= LOAD_BATCH {
                insert_batch(srv, &mut batch)?;
            }
            Ok(())
        },
        LOADING.on_aux(),
    )
    .and_then(|info| insert_batch(srv, &mut batch).map(|()| info));
    if at_start {
        ctx.locked = Some(srv.keyspace.lock_all());
    }
    let info = info.map_err(|e| e.to_string())?;
    for w in &info.warnings {
        eprintln!("AOF preamble: {w}");
    }
    crate::scripting::load_libraries(&info.functions, false)
}

/// Runs one command from the file, as the AOF client (its reply dropped).
fn replay(ctx: &mut Ctx<'_>, args: &OwnedArgs, mark: usize) -> Result<(), String> {
    let a = args.as_args();
    match table().lookup(a) {
        Lookup::Found(id, cmd) if cmd.arity_ok(a.len()) => {
            crate::dispatch::call_nested(ctx, id, cmd, a);
            ctx.out.buf.truncate(mark);
            Ok(())
        }
        _ => Err(format!(
            "Unknown command '{}' reading the append only file",
            String::from_utf8_lossy(a.get(0))
        )),
    }
}

/// At start-up with `appendonly yes`: loads the AOF into the empty keyspace, as the AOF
/// client. Returns whether an AOF was found (else the caller may load the RDB file).
pub fn load_at_start(srv: &Server) -> Result<bool, String> {
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let shared = Arc::new(ClientShared::new(u64::MAX, addr, addr, -1, unix_ms(), 0));
    let mut client = Client::new(shared, true);
    let mut buf = Vec::new();
    let mut stats = KeyStats::default();
    let mut ctx = Ctx {
        srv,
        client: &mut client,
        out: Reply::new(&mut buf, flowkv_protocol::Proto::Resp2),
        locked: Some(srv.keyspace.lock_all()),
        stats: &mut stats,
        now_ms: unix_ms(),
        cmd: table().flat[0].1,
        dirty: 0,
        deny_blocking: true,
        in_script: false,
        error_replied: false,
    };
    let loaded = load(&mut ctx, true)?;
    Ok(!matches!(loaded, Loaded::NotExist))
}

/// DEBUG LOADAOF: writes out what is buffered, empties the keyspace and loads the AOF back
/// (`ctx` holds every shard).
pub fn debug_loadaof(ctx: &mut Ctx<'_>) -> Result<(), String> {
    let s = &ctx.srv.aof.shared;
    if s.status.load(Relaxed) == ON {
        let mut io = s.io.lock();
        s.write_out(&mut io, true).map_err(|e| e.to_string())?;
    }
    let (srv, now) = (ctx.srv, ctx.now_ms);
    let locked = ctx
        .locked
        .as_mut()
        .expect("DEBUG LOADAOF holds every shard");
    let mut stats = KeyStats::default();
    for db in 0..srv.keyspace.num_dbs() {
        drop(locked.db(db, now, &mut stats).flush());
    }
    // What the replay changed is not a change to log (Redis resets `dirty` here too).
    let dirty = ctx.dirty;
    let loaded = load(ctx, false);
    ctx.dirty = dirty;
    ctx.prevent_propagation();
    loaded?;
    eprintln!("Append Only File loaded by DEBUG LOADAOF");
    Ok(())
}

/// INFO persistence's aof_* fields.
pub fn info_fields(srv: &Server) -> Vec<(&'static str, String)> {
    let s = &srv.aof.shared;
    let r = &s.rewrite;
    let running = r.running.load(Relaxed);
    let last_secs = match r.count.load(Relaxed) + r.failures.load(Relaxed) {
        0 => -1,
        _ => r.last_secs.load(Relaxed),
    };
    let current = if running {
        (unix_ms().saturating_sub(r.started_ms.load(Relaxed)) / 1000) as i64
    } else {
        -1
    };
    let ok = |b: bool| if b { "ok" } else { "err" }.to_string();
    let mut f = vec![
        (
            "aof_enabled",
            u8::from(s.status.load(Relaxed) != OFF).to_string(),
        ),
        ("aof_rewrite_in_progress", u8::from(running).to_string()),
        (
            "aof_rewrite_scheduled",
            u8::from(r.scheduled.load(Relaxed)).to_string(),
        ),
        ("aof_last_rewrite_time_sec", last_secs.to_string()),
        ("aof_current_rewrite_time_sec", current.to_string()),
        (
            "aof_last_bgrewrite_status",
            ok(!r.last_failed.load(Relaxed)),
        ),
        ("aof_rewrites", r.count.load(Relaxed).to_string()),
        (
            "aof_rewrites_consecutive_failures",
            r.failures.load(Relaxed).to_string(),
        ),
        (
            "aof_last_write_status",
            ok(s.status.load(Relaxed) == OFF || s.last_write_ok.load(Relaxed)),
        ),
        ("aof_last_cow_size", "0".into()),
    ];
    if s.status.load(Relaxed) != OFF {
        let io = s.io.lock();
        let pending = s.appended.load(Relaxed) - s.written.load(Relaxed);
        f.extend([
            ("aof_current_size", (io.current_size + pending).to_string()),
            ("aof_base_size", io.base_size.to_string()),
            (
                "aof_pending_rewrite",
                u8::from(r.scheduled.load(Relaxed)).to_string(),
            ),
            ("aof_buffer_length", pending.to_string()),
            ("aof_pending_bio_fsync", "0".into()),
            ("aof_delayed_fsync", "0".into()),
        ]);
    }
    f
}
