//! Background saves (BGSAVE, the `save` rules): an RDB file of one point in time, written by
//! a service thread while every worker keeps serving, without fork.
//!
//! BGSAVE runs under every shard lock for an instant: it starts the keyspace's snapshot
//! (`flowkv_store::snapshot`: each entry is written as it was at that instant, writers copy
//! the few entries they change before the walk reaches them) and hands the job to the
//! snapshotter thread. The thread walks the shards a few buckets per lock hold, encoding
//! entries under the lock into a buffer and writing the buffer after releasing it, so no
//! file I/O ever happens under a shard lock. The file goes to a temp name, is fsynced and
//! renamed into place, as SAVE does.
//!
//! A synchronous save (SAVE, SHUTDOWN, DEBUG RELOAD) supersedes a running background save:
//! it [`Snapshotter::abort`]s it, and the aborted walk still finishes (the keyspace needs
//! every entry visited) but its file is dropped.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use flowkv_persist::{write_entry, write_select_db, FileWriter, WriteOptions};
use flowkv_store::snapshot::Captures;
use flowkv_store::{Entry, Locked};
use parking_lot::Mutex;

use crate::commands::persist::{file_info, rdb_path, write_options, STATS};
use crate::server::{unix_ms, Server};

/// Buckets the walk visits per lock hold: small enough that a command waiting for the
/// shard waits microseconds (plus the encoding of any big value met there).
const STEP_BUCKETS: usize = 64;

/// The snapshotter: at most one background save at a time.
#[derive(Default)]
pub struct Snapshotter {
    jobs: Mutex<Option<Sender<Job>>>,
    running: AtomicBool,
    /// Unix ms the running save started.
    started_ms: AtomicU64,
    /// Set by a synchronous save: the running background save drops its file.
    abort: AtomicBool,
    /// Held while a save moves its file into place, so an aborted background save can't
    /// rename its older file over the one a synchronous save just wrote.
    rename: Mutex<()>,
}

/// A started snapshot for the thread to write.
struct Job {
    captures: Arc<Captures>,
    start_ms: u64,
    /// Summed `dirty` counters at the start (for `rdb_changes_since_last_save`).
    dirty: u64,
    target: Target,
}

/// What a snapshot is written for.
enum Target {
    /// `dir/dbfilename` (BGSAVE, the `save` rules).
    Rdb,
    /// An AOF rewrite's new base file, written to this temp path, which [`crate::aof`]
    /// moves into place.
    AofBase(PathBuf),
    /// Replicas in full sync: written to this temp path, which
    /// [`crate::replication::master`] sends them.
    Replicas(PathBuf),
}

impl Snapshotter {
    /// Starts a background save as of now. `locked` must hold every shard. Fails if one is
    /// already running.
    pub fn start(&self, srv: &Server, locked: &mut Locked<'_>) -> Result<(), &'static str> {
        self.start_job(srv, locked, Target::Rdb)
    }

    /// Starts writing an AOF rewrite's base file (RDB format) to `tmp` as of now; the
    /// thread reports the outcome to [`crate::aof::rewrite_done`]. `locked` must hold every
    /// shard.
    pub fn start_aof_base(
        &self,
        srv: &Server,
        locked: &mut Locked<'_>,
        tmp: PathBuf,
    ) -> Result<(), &'static str> {
        self.start_job(srv, locked, Target::AofBase(tmp))
    }

    /// Starts writing a snapshot for replicas to `tmp` as of now; the thread reports the
    /// outcome to [`crate::replication::master::snapshot_done`]. `locked` must hold every
    /// shard.
    pub fn start_for_replicas(
        &self,
        srv: &Server,
        locked: &mut Locked<'_>,
        tmp: PathBuf,
    ) -> Result<(), &'static str> {
        self.start_job(srv, locked, Target::Replicas(tmp))
    }

    fn start_job(
        &self,
        srv: &Server,
        locked: &mut Locked<'_>,
        target: Target,
    ) -> Result<(), &'static str> {
        let jobs = self.jobs.lock();
        let Some(tx) = jobs.as_ref() else {
            return Err("ERR Background saving is not available");
        };
        if self.running.swap(true, Relaxed) {
            return Err("ERR Background save already in progress");
        }
        self.abort.store(false, Relaxed);
        let start_ms = unix_ms();
        self.started_ms.store(start_ms, Relaxed);
        let job = Job {
            target,
            dirty: srv.sum(|w| w.dirty.get()),
            captures: locked.begin_snapshot(),
            start_ms,
        };
        tx.send(job)
            .map_err(|_| "ERR Background saving is not available")
    }

    /// True while a background save runs (`rdb_bgsave_in_progress`).
    pub fn in_progress(&self) -> bool {
        self.running.load(Relaxed)
    }

    /// Seconds the running background save has taken, -1 if none runs
    /// (`rdb_current_bgsave_time_sec`).
    pub fn current_secs(&self) -> i64 {
        if self.in_progress() {
            (unix_ms().saturating_sub(self.started_ms.load(Relaxed)) / 1000) as i64
        } else {
            -1
        }
    }

    /// A synchronous save is about to write the file: a running background save must not
    /// replace it. Returns the guard to hold while renaming.
    pub fn supersede(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.abort.store(true, Relaxed);
        self.rename.lock()
    }
}

/// Starts the snapshotter thread.
pub fn spawn(srv: Arc<Server>) -> std::io::Result<()> {
    let (tx, rx) = channel();
    *srv.snapshotter.jobs.lock() = Some(tx);
    std::thread::Builder::new()
        .name("flowkv-bgsave".into())
        .spawn(move || serve(&srv, rx))?;
    Ok(())
}

fn serve(srv: &Server, rx: Receiver<Job>) {
    for job in rx {
        let started = Instant::now();
        let result = write(srv, &job);
        let snap = &srv.snapshotter;
        match job.target {
            Target::Rdb => {}
            Target::AofBase(_) => {
                snap.running.store(false, Relaxed);
                crate::aof::rewrite_done(srv, result, started.elapsed());
                continue;
            }
            Target::Replicas(_) => {
                snap.running.store(false, Relaxed);
                crate::replication::master::snapshot_done(srv, result);
                continue;
            }
        }
        STATS.last_ok.store(result.is_ok(), Relaxed);
        match result {
            Ok(()) => {
                STATS.mark_synced(job.dirty);
                STATS.saves.fetch_add(1, Relaxed);
                STATS
                    .last_secs
                    .store(started.elapsed().as_secs() as i64, Relaxed);
                eprintln!("Background saving terminated with success");
            }
            Err(e) => eprintln!("Background saving error: {e}"),
        }
        snap.running.store(false, Relaxed);
    }
}

/// Walks the snapshot to its end and writes the file unless the output fails or a
/// synchronous save supersedes this one.
fn write(srv: &Server, job: &Job) -> Result<(), String> {
    let path = rdb_path(srv);
    let tmp = match &job.target {
        Target::AofBase(tmp) | Target::Replicas(tmp) => tmp.clone(),
        Target::Rdb => path.with_file_name(format!("temp-bg-{}.rdb", std::process::id())),
    };
    let mut out = Output::open(srv, &tmp);
    let mut enc = Encoder {
        buf: Vec::with_capacity(1 << 16),
        db: None,
        start_ms: job.start_ms,
        opts: write_options(srv),
        stopped: out.failed(),
    };
    let ks = &srv.keyspace;
    for shard in 0..ks.num_shards() {
        loop {
            let done = ks.snapshot_step(shard, STEP_BUCKETS, |d, e| enc.encode(d, e));
            job.captures.drain(|d, e| enc.encode(d, e));
            enc.flush(&mut out);
            if done {
                break;
            }
        }
    }
    job.captures.drain(|d, e| enc.encode(d, e));
    enc.flush(&mut out);
    out.finish(&tmp)?;
    if !matches!(job.target, Target::Rdb) {
        return Ok(());
    }
    let _guard = srv.snapshotter.rename.lock();
    if srv.snapshotter.abort.load(Relaxed) {
        let _ = std::fs::remove_file(&tmp);
        return Err("superseded by a synchronous save".into());
    }
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "Error moving temp DB file {} on the final destination {}: {e}",
            tmp.display(),
            path.display()
        )
    })
}

/// Encodes the snapshot's entries (under the shard lock) for [`Output`] to write after.
struct Encoder {
    buf: Vec<u8>,
    /// The database the last SELECTDB in the file named.
    db: Option<usize>,
    start_ms: u64,
    opts: WriteOptions,
    /// The output failed: the walk goes on (it must) without encoding.
    stopped: bool,
}

impl Encoder {
    fn encode(&mut self, db: usize, e: &Entry) {
        // A key already expired at the point in time is not part of it.
        if self.stopped || e.is_expired(self.start_ms) {
            return;
        }
        if self.db != Some(db) {
            write_select_db(&mut self.buf, db);
            self.db = Some(db);
        }
        write_entry(&mut self.buf, e, self.opts);
    }

    /// Hands what was encoded to `out` (outside any lock).
    fn flush(&mut self, out: &mut Output) {
        out.append(&mut self.buf);
        self.stopped |= out.failed();
    }
}

/// The file being written, or the first error met (after which the walk goes on without
/// writing).
enum Output {
    Open(FileWriter<BufWriter<std::fs::File>>),
    Failed(String),
}

impl Output {
    fn open(srv: &Server, tmp: &Path) -> Output {
        let file = match std::fs::File::create(tmp) {
            Ok(f) => f,
            Err(e) => {
                return Output::Failed(format!(
                    "Failed opening the temp RDB file {} for saving: {e}",
                    tmp.display()
                ))
            }
        };
        let w = BufWriter::with_capacity(1 << 20, file);
        match FileWriter::new(w, &file_info(srv), write_options(srv)) {
            Ok(w) => Output::Open(w),
            Err(e) => Output::Failed(format!("Write error saving DB on disk: {e}")),
        }
    }

    fn failed(&self) -> bool {
        matches!(self, Output::Failed(_))
    }

    fn fail(&mut self, e: String) {
        if !self.failed() {
            *self = Output::Failed(e);
        }
    }

    /// Writes and clears `buf`.
    fn append(&mut self, buf: &mut Vec<u8>) {
        if let Output::Open(w) = self {
            if let Err(e) = w.append(buf) {
                self.fail(format!("Write error saving DB on disk: {e}"));
            }
        }
        buf.clear();
    }

    /// Ends the file and syncs it to disk.
    fn finish(self, tmp: &Path) -> Result<(), String> {
        let io_err = |e: std::io::Error| format!("Write error saving DB on disk: {e}");
        let result = match self {
            Output::Failed(e) => Err(e),
            Output::Open(w) => w
                .finish()
                .map_err(io_err)
                .and_then(|w| w.into_inner().map_err(|e| io_err(e.into_error())))
                .and_then(|f| f.sync_all().map_err(io_err)),
        };
        if result.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        result
    }
}

/// After a failed background save the `save` rules wait this long before trying again, as
/// Redis does (CONFIG_BGSAVE_RETRY_DELAY).
const RETRY_DELAY_SECS: u64 = 5;

/// The `save` rules, checked by the cron: starts a background save when, for some
/// `<seconds> <changes>` pair, at least `changes` writes happened and `seconds` passed since
/// the last save.
pub fn cron(srv: &Server) {
    let snap = &srv.snapshotter;
    if snap.in_progress() {
        return;
    }
    let rules = srv.config.get("save").unwrap_or_default();
    if rules.is_empty() {
        return;
    }
    let now = unix_ms() / 1000;
    let since_save = now.saturating_sub(STATS.last_save_secs(srv.started_unix_ms / 1000));
    let since_try = now.saturating_sub(snap.started_ms.load(Relaxed) / 1000);
    if STATS.last_status() != "ok" && since_try < RETRY_DELAY_SECS {
        return;
    }
    let changes = STATS.changes_since_save(srv);
    let nums: Vec<u64> = rules
        .split_ascii_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let due = nums
        .chunks_exact(2)
        .any(|r| changes >= r[1] && since_save >= r[0]);
    if due {
        eprintln!("{changes} changes in {since_save} seconds. Saving...");
        if let Err(e) = snap.start(srv, &mut srv.keyspace.lock_all()) {
            eprintln!("Background saving not started: {e}");
        }
    }
}
