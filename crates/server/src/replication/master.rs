//! The master side of replication: the stream of changes replicas receive, the backlog
//! kept for partial resynchronization, and the links of attached replicas.
//!
//! A replica attaches with SYNC or PSYNC on an ordinary connection, which stays with its
//! worker; everything it receives travels as deliveries to that worker (as pub/sub
//! messages do), so TLS, CLIENT LIST/KILL and the `replica` output buffer limits apply as
//! to any client.
//!
//! - **Full sync.** The feeder thread starts a snapshot under every shard lock, the same
//!   fork-less snapshot BGSAVE takes (see [`crate::bgsave`]), and in the same instant
//!   makes the link receive the stream from that offset on. Commands propagate under their
//!   shard locks, so the snapshot plus the stream after that offset is exactly the
//!   dataset. PSYNC gets `+FULLRESYNC <replid> <offset>` then; both get the RDB as
//!   `$<len>\r\n<bytes>` once the file is written, paced by the connection's unwritten
//!   output, then the stream buffered meanwhile, then the live stream.
//! - **Partial resync.** PSYNC with this server's replication ID and an offset still in
//!   the backlog (`repl-backlog-size`) gets `+CONTINUE <replid>` and the backlog from
//!   there, under the stream's lock so no byte is missed or sent twice.
//!
//! The stream starts with the first replica and then stays, as Redis keeps its backlog:
//! it is a [`Sink`] of [`crate::propagate`], which adds SELECT when the database changes.
//! The feeder also sends `PING` every `repl-ping-replica-period` seconds while replicas
//! are attached. Chained replication (replicas of a replica) is not supported.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use flowkv_persist::aof::encode_command;
use parking_lot::{Condvar, Mutex};

use crate::client::ClientShared;
use crate::net::Msg;
use crate::propagate::{Sink, FEED};
use crate::server::{unix_ms, Server};

/// RDB bytes handed to a replica's connection at a time.
const CHUNK: usize = 1 << 20;
/// The next RDB chunk goes out only while the connection's unwritten output is below this.
const PACE: usize = 8 << 20;

/// Replication IDs (Redis's replid/replid2/second_replid_offset).
struct Ids {
    replid: String,
    replid2: String,
    second_offset: i64,
}

/// The master side's state.
pub struct State {
    ids: Mutex<Ids>,
    stream: Arc<Stream>,
    /// Replicas waiting for their snapshot to start (the snapshotter may be busy).
    waiting: Mutex<Vec<Arc<Link>>>,
    /// The snapshot being written for replicas, if any.
    snapshot: Mutex<Option<Snapshot>>,
    /// Clients blocked in WAIT.
    waits: Mutex<Vec<Wait>>,
    /// Wakes the feeder thread.
    wake: Arc<Wake>,
}

/// A client blocked in WAIT until `count` replicas acknowledge `offset` or `deadline_ms`
/// passes (0: never).
pub struct Wait {
    pub token: u64,
    pub client_id: u64,
    pub worker: usize,
    pub proto: flowkv_protocol::Proto,
    pub offset: u64,
    pub count: usize,
    pub deadline_ms: u64,
}

/// The replication stream and its backlog.
struct Stream {
    inner: Mutex<StreamInner>,
    /// master_repl_offset: bytes of the stream so far (also what a replica has applied).
    offset: AtomicU64,
    /// The stream is attached to the propagation feed.
    attached: AtomicBool,
    /// `repl-backlog-size`, as the feeder last read it.
    backlog_size: AtomicUsize,
    wake: Arc<Wake>,
}

struct StreamInner {
    /// The last `repl-backlog-size` bytes of the stream.
    backlog: VecDeque<u8>,
    /// The database the stream last selected.
    db: Option<usize>,
    /// Replicas receiving the stream (in full sync: buffered until their RDB is sent).
    links: Vec<Arc<Link>>,
}

#[derive(Default)]
struct Wake {
    flag: Mutex<bool>,
    cond: Condvar,
}

impl Wake {
    fn notify(&self) {
        *self.flag.lock() = true;
        self.cond.notify_one();
    }

    fn wait(&self, timeout: Duration) {
        let mut f = self.flag.lock();
        if !*f {
            self.cond.wait_for(&mut f, timeout);
        }
        *f = false;
    }
}

/// An attached replica.
pub struct Link {
    shared: Arc<ClientShared>,
    /// Answered PSYNC (gets `+FULLRESYNC`) rather than SYNC.
    psync: bool,
    phase: Mutex<Phase>,
    /// Stream bytes not yet handed to the connection.
    pending: Mutex<Vec<u8>>,
    /// The offset the replica last acknowledged (REPLCONF ACK), and when (unix ms).
    ack: AtomicU64,
    ack_ms: AtomicU64,
}

enum Phase {
    /// Waiting for a snapshot to start.
    Waiting,
    /// Its snapshot is being written.
    Snapshot,
    /// Sending the RDB file: what is left of it.
    Transfer { file: File, left: u64 },
    /// Receiving the stream.
    Online,
}

/// A snapshot being written for the links that wait for it.
struct Snapshot {
    path: PathBuf,
    links: Vec<Arc<Link>>,
    /// Set by the snapshotter thread when the file is written (or failed).
    result: Option<Result<(), String>>,
}

impl Default for State {
    fn default() -> State {
        let wake = Arc::new(Wake::default());
        State {
            ids: Mutex::new(Ids {
                replid: crate::server::random_hex(40),
                replid2: "0".repeat(40),
                second_offset: -1,
            }),
            stream: Arc::new(Stream {
                inner: Mutex::new(StreamInner {
                    backlog: VecDeque::new(),
                    db: None,
                    links: Vec::new(),
                }),
                offset: AtomicU64::new(0),
                attached: AtomicBool::new(false),
                backlog_size: AtomicUsize::new(1 << 20),
                wake: wake.clone(),
            }),
            waiting: Mutex::new(Vec::new()),
            snapshot: Mutex::new(None),
            waits: Mutex::new(Vec::new()),
            wake,
        }
    }
}

impl Sink for Stream {
    fn append(&self, db: usize, cmd: &[u8]) {
        let mut s = self.inner.lock();
        if s.db != Some(db) {
            let mut select = Vec::new();
            encode_command(&mut select, &[&b"SELECT"[..], db.to_string().as_bytes()]);
            self.push(&mut s, &select);
            s.db = Some(db);
        }
        self.push(&mut s, cmd);
    }

    fn replication(&self) -> bool {
        true
    }
}

impl Stream {
    /// Appends `bytes` to the stream: the backlog, the offset and every link.
    fn push(&self, s: &mut StreamInner, bytes: &[u8]) {
        let limit = self.backlog_size.load(Relaxed);
        s.backlog.extend(bytes);
        if s.backlog.len() > limit {
            let excess = s.backlog.len() - limit;
            s.backlog.drain(..excess);
        }
        self.offset.fetch_add(bytes.len() as u64, Relaxed);
        let mut wake = false;
        for link in &s.links {
            let mut p = link.pending.lock();
            wake |= p.is_empty();
            p.extend_from_slice(bytes);
        }
        if wake {
            self.wake.notify();
        }
    }
}

impl State {
    /// A replica adopts its master's replication ID and offset after a full sync.
    pub fn set_ids(&self, replid: &str, offset: u64) {
        self.ids.lock().replid = replid.to_string();
        self.stream.offset.store(offset, Relaxed);
    }

    /// A replica's offset as it applies its master's stream.
    pub fn set_offset(&self, offset: u64) {
        self.stream.offset.store(offset, Relaxed);
    }

    /// master_repl_offset.
    pub fn offset(&self) -> u64 {
        self.stream.offset.load(Relaxed)
    }

    /// (replid, replid2, second_repl_offset).
    pub fn ids(&self) -> (String, String, i64) {
        let i = self.ids.lock();
        (i.replid.clone(), i.replid2.clone(), i.second_offset)
    }

    /// A replica that becomes a master again starts a new history, keeping the old ID as
    /// replid2 so its own replicas could continue (Redis's shiftReplicationId).
    pub fn shift_replid(&self) {
        let mut i = self.ids.lock();
        i.replid2 = std::mem::replace(&mut i.replid, crate::server::random_hex(40));
        i.second_offset = self.offset() as i64 + 1;
    }

    /// PSYNC `replid` `offset`: if this server's history has that ID and the backlog still
    /// holds `offset` (the first byte the replica lacks), attaches the client and returns
    /// the `+CONTINUE` line to reply; the backlog from there follows it. `None`: a full
    /// sync is needed.
    pub fn try_continue(
        &self,
        shared: &Arc<ClientShared>,
        replid: &str,
        offset: u64,
    ) -> Option<String> {
        let ids = self.ids.lock();
        let known =
            ids.replid == replid || (ids.replid2 == replid && offset as i64 <= ids.second_offset);
        if !known || !self.stream.attached.load(Relaxed) {
            return None;
        }
        let mut s = self.stream.inner.lock();
        let end = self.offset();
        let first = end + 1 - s.backlog.len() as u64;
        if offset < first || offset > end + 1 {
            return None;
        }
        let skip = (offset - first) as usize;
        let link = Link::new(shared.clone(), true, Phase::Online);
        link.pending.lock().extend(s.backlog.iter().skip(skip));
        s.links.push(link);
        self.wake.notify();
        Some(format!("+CONTINUE {}\r\n", ids.replid))
    }

    /// SYNC, or a PSYNC that needs a full sync: the client waits for a snapshot.
    pub fn full_sync(&self, shared: &Arc<ClientShared>, psync: bool) {
        self.waiting
            .lock()
            .push(Link::new(shared.clone(), psync, Phase::Waiting));
        self.wake.notify();
    }

    /// REPLCONF ACK from client `id`.
    pub fn ack(&self, id: u64, offset: u64) {
        if let Some(l) = self.links().into_iter().find(|l| l.shared.id == id) {
            l.ack.store(offset, Relaxed);
            l.ack_ms.store(unix_ms(), Relaxed);
        }
        if !self.waits.lock().is_empty() {
            self.wake.notify();
        }
    }

    /// Replicas that acknowledged at least `offset`.
    pub fn acked(&self, offset: u64) -> usize {
        self.stream
            .inner
            .lock()
            .links
            .iter()
            .filter(|l| l.ack.load(Relaxed) >= offset)
            .count()
    }

    /// Blocks a WAIT until enough replicas acknowledge; asks them all for an ACK now.
    pub fn wait(&self, w: Wait) {
        self.waits.lock().push(w);
        let mut s = self.stream.inner.lock();
        if !s.links.is_empty() {
            let getack = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";
            self.stream.push(&mut s, getack);
        }
        self.wake.notify();
    }

    /// A connection closed: forgets its WAIT, and the replica it was, if any.
    pub fn remove(&self, id: u64) {
        self.waits.lock().retain(|w| w.client_id != id);
        self.waiting.lock().retain(|l| l.shared.id != id);
        self.stream.inner.lock().links.retain(|l| l.shared.id != id);
        if let Some(s) = self.snapshot.lock().as_mut() {
            s.links.retain(|l| l.shared.id != id);
        }
    }

    /// Every attached replica (waiting ones included).
    fn links(&self) -> Vec<Arc<Link>> {
        let mut all = self.waiting.lock().clone();
        all.extend(self.stream.inner.lock().links.iter().cloned());
        all
    }

    /// INFO's per-replica lines: (ip, port, state, offset, lag seconds); state is
    /// `wait_bgsave`, `send_bulk` or `online` as in Redis.
    pub fn replicas(&self) -> Vec<(String, u64, &'static str, u64, u64)> {
        let now = unix_ms();
        self.links()
            .iter()
            .map(|l| {
                let state = match *l.phase.lock() {
                    Phase::Waiting | Phase::Snapshot => "wait_bgsave",
                    Phase::Transfer { .. } => "send_bulk",
                    Phase::Online => "online",
                };
                let lag = now.saturating_sub(l.ack_ms.load(Relaxed)) / 1000;
                let ip = l.shared.addr.ip().to_string();
                let port = u64::from(l.shared.repl_port.load(Relaxed));
                (ip, port, state, l.ack.load(Relaxed), lag)
            })
            .collect()
    }

    /// Replicas online whose last ACK is at most `max_lag` seconds old
    /// (`min-replicas-max-lag`; Redis's repl_good_slaves_count).
    pub fn good_replicas(&self, max_lag: u64) -> usize {
        let now = unix_ms();
        self.stream
            .inner
            .lock()
            .links
            .iter()
            .filter(|l| {
                matches!(*l.phase.lock(), Phase::Online)
                    && now.saturating_sub(l.ack_ms.load(Relaxed)) / 1000 <= max_lag
            })
            .count()
    }

    /// (repl_backlog_active, size, first byte offset, histlen) for INFO.
    pub fn backlog(&self) -> (bool, usize, u64, usize) {
        let s = self.stream.inner.lock();
        let len = s.backlog.len();
        let active = self.stream.attached.load(Relaxed);
        let first = if active {
            self.offset() + 1 - len as u64
        } else {
            0
        };
        (active, self.stream.backlog_size.load(Relaxed), first, len)
    }

    /// Drops every replica (this server becomes a replica itself): their connections close
    /// once they have the stream up to now (the deliveries go ahead of the kill).
    pub fn disconnect_all(&self, srv: &Server) {
        for l in self.links() {
            if matches!(*l.phase.lock(), Phase::Online) {
                let rest = std::mem::take(&mut *l.pending.lock());
                if !rest.is_empty() {
                    l.deliver(srv, &rest);
                }
            }
            l.shared.killed.store(true, Relaxed);
        }
        srv.wake_workers();
    }
}

impl Link {
    fn new(shared: Arc<ClientShared>, psync: bool, phase: Phase) -> Arc<Link> {
        Arc::new(Link {
            shared,
            psync,
            phase: Mutex::new(phase),
            pending: Mutex::new(Vec::new()),
            ack: AtomicU64::new(0),
            ack_ms: AtomicU64::new(unix_ms()),
        })
    }

    /// Hands `bytes` to the replica's connection.
    fn deliver(&self, srv: &Server, bytes: &[u8]) {
        let msg = Msg::Deliver(vec![(self.shared.id, Arc::from(bytes))]);
        srv.send_to_worker(self.shared.worker, msg);
    }
}

/// Called by the snapshotter thread when a replicas' snapshot file is written (or failed).
pub fn snapshot_done(srv: &Server, result: Result<(), String>) {
    let m = &srv.replication.master;
    if let Some(s) = m.snapshot.lock().as_mut() {
        s.result = Some(result);
    }
    m.wake.notify();
}

/// Starts the feeder thread.
pub fn spawn(srv: Arc<Server>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("flowkv-repl-feed".into())
        .spawn(move || feed(&srv))?;
    Ok(())
}

/// The feeder: starts snapshots for waiting replicas, sends RDB files and the stream,
/// and pings replicas.
fn feed(srv: &Server) {
    let m = &srv.replication.master;
    let mut last_ping = unix_ms();
    loop {
        let sending = m
            .stream
            .inner
            .lock()
            .links
            .iter()
            .any(|l| matches!(*l.phase.lock(), Phase::Transfer { .. }));
        // RDB chunks go out as the connection drains; a WAIT is woken by ACKs, or else at
        // its deadline.
        let mut wait_ms = if sending { 1 } else { 100 };
        let first_deadline = m
            .waits
            .lock()
            .iter()
            .map(|w| w.deadline_ms)
            .filter(|&d| d != 0)
            .min();
        if let Some(d) = first_deadline {
            wait_ms = wait_ms.min((d + 1).saturating_sub(unix_ms()));
        }
        m.wake.wait(Duration::from_millis(wait_ms));
        let size = srv.config.get_u64("repl-backlog-size");
        m.stream.backlog_size.store(size as usize, Relaxed);
        start_snapshot(srv);
        finish_snapshot(srv);
        answer_waits(srv);
        let links = m.stream.inner.lock().links.clone();
        for link in links {
            send(srv, &link);
        }
        let period = srv.config.get_u64("repl-ping-replica-period").max(1) * 1000;
        let now = unix_ms();
        if now.saturating_sub(last_ping) >= period {
            last_ping = now;
            let mut s = m.stream.inner.lock();
            if !s.links.is_empty() {
                m.stream.push(&mut s, b"*1\r\n$4\r\nPING\r\n");
            }
        }
    }
}

/// Answers the WAITs that have their acknowledgements or reached their deadline, with
/// the number of replicas that acknowledged.
fn answer_waits(srv: &Server) {
    let m = &srv.replication.master;
    let now = unix_ms();
    let mut waits = m.waits.lock();
    waits.retain(|w| {
        let acked = m.acked(w.offset);
        // As for blocked clients, the deadline came from a truncated "now": it has surely
        // passed only once the clock is beyond it.
        if acked < w.count && (w.deadline_ms == 0 || now <= w.deadline_ms) {
            return true;
        }
        let mut reply = Vec::new();
        flowkv_protocol::Reply::new(&mut reply, w.proto).int(acked as i64);
        let msg = Msg::Unblocked {
            token: w.token,
            reply,
        };
        srv.send_to_worker(w.worker, msg);
        false
    });
}

/// Starts a snapshot for the waiting replicas, unless one is being written or the
/// snapshotter is busy (they wait for the next try).
fn start_snapshot(srv: &Server) {
    let m = &srv.replication.master;
    if m.waiting.lock().is_empty() || m.snapshot.lock().is_some() {
        return;
    }
    let path = crate::commands::persist::rdb_path(srv)
        .with_file_name(format!("temp-repl-{}.rdb", std::process::id()));
    let mut locked = srv.keyspace.lock_all();
    if srv
        .snapshotter
        .start_for_replicas(srv, &mut locked, path.clone())
        .is_err()
    {
        return;
    }
    if !m.stream.attached.swap(true, Relaxed) {
        FEED.attach(m.stream.clone());
    }
    let links = std::mem::take(&mut *m.waiting.lock());
    let replid = m.ids.lock().replid.clone();
    let mut s = m.stream.inner.lock();
    // The replica's stream starts with a SELECT.
    s.db = None;
    let offset = m.offset();
    for link in &links {
        *link.phase.lock() = Phase::Snapshot;
        if link.psync {
            link.deliver(srv, format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
        }
        s.links.push(link.clone());
    }
    *m.snapshot.lock() = Some(Snapshot {
        path,
        links,
        result: None,
    });
}

/// Once the replicas' snapshot is written: starts sending it to each of them (or drops
/// them if it failed).
fn finish_snapshot(srv: &Server) {
    let m = &srv.replication.master;
    let mut guard = m.snapshot.lock();
    let Some(result) = guard.as_mut().and_then(|s| s.result.take()) else {
        return;
    };
    let Some(Snapshot { path, links, .. }) = guard.take() else {
        return;
    };
    drop(guard);
    for link in &links {
        let opened = result
            .clone()
            .and_then(|()| File::open(&path).map_err(|e| e.to_string()));
        let file = opened.and_then(|f| {
            let len = f.metadata().map_err(|e| e.to_string())?.len();
            Ok((f, len))
        });
        match file {
            Ok((file, len)) => {
                link.deliver(srv, format!("${len}\r\n").as_bytes());
                *link.phase.lock() = Phase::Transfer { file, left: len };
                eprintln!(
                    "Synchronization with replica {} started: sending {len} bytes",
                    link.shared.addr
                );
            }
            Err(e) => {
                eprintln!("Replica {} sync failed: {e}", link.shared.addr);
                link.shared.killed.store(true, Relaxed);
                srv.wake_workers();
            }
        }
    }
    // Open files keep their data; the name goes now.
    let _ = std::fs::remove_file(&path);
}

/// Sends a link what it is due: the next chunks of its RDB file, paced by the
/// connection's unwritten output, or the stream gathered since the last call.
fn send(srv: &Server, link: &Link) {
    let mut phase = link.phase.lock();
    if let Phase::Transfer { file, left } = &mut *phase {
        let mut room = PACE.saturating_sub(link.shared.obuf.load(Relaxed));
        while *left > 0 && room > 0 {
            let n = CHUNK.min(*left as usize).min(room);
            let mut buf = vec![0; n];
            if let Err(e) = file.read_exact(&mut buf) {
                eprintln!("Replica {} sync failed: {e}", link.shared.addr);
                link.shared.killed.store(true, Relaxed);
                srv.wake_workers();
                return;
            }
            link.deliver(srv, &buf);
            *left -= n as u64;
            room -= n;
        }
        if *left > 0 {
            return;
        }
        eprintln!(
            "Synchronization with replica {} succeeded",
            link.shared.addr
        );
        *phase = Phase::Online;
        link.ack_ms.store(unix_ms(), Relaxed);
    }
    if matches!(*phase, Phase::Online) {
        let bytes = std::mem::take(&mut *link.pending.lock());
        if !bytes.is_empty() {
            link.deliver(srv, &bytes);
        }
    }
}
