//! The replica side of replication: following a master (REPLICAOF host port).
//!
//! One thread (`flowkv-replica`) owns the link. It idles while this server is a master; once
//! told to follow one it connects, runs Redis 7.0's handshake (PING, AUTH, REPLCONF,
//! PSYNC), loads the full-sync RDB when the master sends one (length-prefixed or diskless
//! `$EOF:<mark>`), then applies the master's command stream through the normal dispatcher
//! as a MASTER client, counting the offset and acknowledging it every second. A lost link
//! is retried every second with PSYNC from the offset reached, so a short outage costs no
//! full sync. REPLICAOF commands only change the shared [`State`]; a generation counter
//! tells the thread to drop the link it holds.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowkv_protocol::{Args, Limits, Parsed, Parser};
use flowkv_store::KeyStats;
use parking_lot::Mutex;

use crate::client::{flag, Client, ClientShared};
use crate::commands::persist;
use crate::dispatch::{execute, Exec};
use crate::info::Lines;
use crate::server::{unix_ms, Server};

/// How long a socket read waits before the thread looks at its state again (REPLICAOF
/// changes, the ACK timer, shutdown).
const POLL: Duration = Duration::from_millis(100);

/// Bytes read from the master per read call.
const READ_CHUNK: usize = 64 * 1024;

/// Longest line accepted from the master during the handshake (a reply line, never data).
const MAX_LINE: usize = 64 * 1024;

/// The link's progress, as ROLE names it.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
enum Phase {
    /// Waiting to (re)connect.
    #[default]
    Connect,
    /// TCP connect in progress.
    Connecting,
    /// PING/AUTH/REPLCONF/PSYNC exchange.
    Handshake,
    /// Receiving the full-sync RDB.
    Sync,
    /// Streaming the master's commands.
    Connected,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Connecting => "connecting",
            Phase::Handshake => "handshake",
            Phase::Sync => "sync",
            Phase::Connected => "connected",
        }
    }
}

/// Progress of a full-sync transfer (INFO master_sync_*).
#[derive(Clone, Copy)]
struct Transfer {
    /// Payload size, -1 for a diskless (`$EOF:`) transfer whose size is unknown.
    size: i64,
    read: u64,
    /// Unix seconds of the last bytes received.
    last_io: u64,
}

/// The parts of the state that change together, under one lock.
#[derive(Default)]
struct Inner {
    /// The master to follow (REPLICAOF host port), `None` on a master.
    master: Option<(String, u16)>,
    phase: Phase,
    /// The master's replication ID once we have synced with it: PSYNC asks to continue
    /// from there (Redis's cached master). `None`: the next sync is a full one.
    replid: Option<String>,
    /// Unix seconds the link went down; 0 if it has not gone down since REPLICAOF.
    down_since: u64,
    transfer: Option<Transfer>,
}

/// What the rest of the server reads of the replica side.
#[derive(Default)]
pub struct State {
    /// This server follows a master (REPLICAOF host port is in force).
    replica: AtomicBool,
    /// The link with the master is up (synced and streaming).
    link_up: AtomicBool,
    /// Bumped by every REPLICAOF: a link opened for an older generation ends.
    generation: AtomicU64,
    /// Bytes of the master's stream applied (slave_repl_offset, the PSYNC offset).
    offset: AtomicI64,
    /// Bytes of the master's stream received, applied or not (slave_read_repl_offset).
    read_offset: AtomicI64,
    /// Unix seconds of the last bytes from the master (master_last_io_seconds_ago).
    last_io: AtomicU64,
    /// Held while a batch of the master's commands runs: REPLICAOF waits for it, so once it
    /// replies nothing more from the old master is applied.
    applying: Mutex<()>,
    inner: Mutex<Inner>,
}

impl State {
    /// True while this server is a replica.
    pub fn is_replica(&self) -> bool {
        self.replica.load(Relaxed)
    }

    /// True while the link with the master is up.
    pub fn link_up(&self) -> bool {
        self.link_up.load(Relaxed)
    }

    /// Sets the phase of the link of `generation`, if it is still the one wanted.
    fn set_phase(&self, generation: u64, phase: Phase) {
        let mut inner = self.inner.lock();
        if self.current(generation) {
            inner.phase = phase;
        }
    }

    /// True while `generation` is still the REPLICAOF in force.
    fn current(&self, generation: u64) -> bool {
        self.generation.load(Relaxed) == generation
    }

    /// Retires the current link (REPLICAOF): `inner` is the state lock, held so the old
    /// link can't change the new state, then released to wait for the batch of its
    /// commands being applied, if any. The wait is bounded: a transaction running
    /// REPLICAOF may hold a shard lock that batch needs.
    fn retire_link(&self, inner: parking_lot::MutexGuard<'_, Inner>) {
        self.generation.fetch_add(1, Relaxed);
        drop(inner);
        drop(self.applying.try_lock_for(Duration::from_millis(500)));
    }
}

/// Starts the replication thread at start-up; it follows the `replicaof` setting and
/// REPLICAOF commands.
pub fn spawn(srv: Arc<Server>) -> std::io::Result<()> {
    let setting = srv.config.get("replicaof").unwrap_or_default();
    let mut words = setting.split_whitespace();
    if let (Some(host), Some(port)) = (words.next(), words.next()) {
        match port.parse::<u16>() {
            Ok(port) => {
                follow(&srv, host, port).map_err(std::io::Error::other)?;
            }
            Err(_) => eprintln!("Ignoring replicaof '{setting}': invalid master port"),
        }
    }
    std::thread::Builder::new()
        .name("flowkv-replica".into())
        .spawn(move || run(&srv))?;
    Ok(())
}

/// REPLICAOF host port. Returns true if this server already followed that master.
pub fn follow(srv: &Server, host: &str, port: u16) -> Result<bool, String> {
    let st = &srv.replication.replica;
    let mut inner = st.inner.lock();
    if let Some((h, p)) = &inner.master {
        if h.eq_ignore_ascii_case(host) && *p == port {
            return Ok(true);
        }
    } else {
        // A master offers its own history to the new master, as Redis does: after a
        // failover, the promoted replica still knows it (as replid2) and can continue it.
        let m = &srv.replication.master;
        inner.replid = Some(m.ids().0);
        let offset = i64::try_from(m.offset()).unwrap_or(i64::MAX);
        st.offset.store(offset, Relaxed);
        st.read_offset.store(offset, Relaxed);
    }
    inner.master = Some((host.to_string(), port));
    inner.phase = Phase::Connect;
    inner.down_since = 0;
    inner.transfer = None;
    st.link_up.store(false, Relaxed);
    st.replica.store(true, Relaxed);
    st.retire_link(inner);
    // The master deletes expired keys and sends the DELs; reads still see them as gone.
    srv.keyspace.pause_expiry_until(u64::MAX);
    Ok(false)
}

/// REPLICAOF NO ONE: stops following the master (a no-op on a master).
pub fn stop(srv: &Server) {
    let st = &srv.replication.replica;
    let mut inner = st.inner.lock();
    if inner.master.take().is_none() {
        return;
    }
    inner.phase = Phase::Connect;
    inner.replid = None;
    inner.transfer = None;
    st.link_up.store(false, Relaxed);
    st.replica.store(false, Relaxed);
    st.retire_link(inner);
    if srv.pause.kind(unix_ms()) == crate::pause::Kind::Off {
        srv.keyspace.pause_expiry_until(0);
    }
}

/// INFO replication's replica fields (after `role:slave`).
pub fn info(srv: &Server, l: &mut Lines) {
    let st = &srv.replication.replica;
    let inner = st.inner.lock();
    let Some((host, port)) = &inner.master else {
        return;
    };
    let now = unix_ms() / 1000;
    let up = inner.phase == Phase::Connected;
    // Redis prints 1 until there is a master (or a cached one) to take offsets from.
    let (read_off, off) = if up || inner.replid.is_some() {
        (st.read_offset.load(Relaxed), st.offset.load(Relaxed))
    } else {
        (1, 1)
    };
    l.field("master_host", host);
    l.field("master_port", port);
    l.field("master_link_status", if up { "up" } else { "down" });
    let last_io = if up {
        now.saturating_sub(st.last_io.load(Relaxed)) as i64
    } else {
        -1
    };
    l.field("master_last_io_seconds_ago", last_io);
    l.field(
        "master_sync_in_progress",
        u8::from(inner.phase == Phase::Sync),
    );
    l.field("slave_read_repl_offset", read_off);
    l.field("slave_repl_offset", off);
    if let (Phase::Sync, Some(t)) = (inner.phase, inner.transfer) {
        let perc = if t.size > 0 {
            t.read as f64 / t.size as f64 * 100.0
        } else {
            0.0
        };
        l.field("master_sync_total_bytes", t.size);
        l.field("master_sync_read_bytes", t.read);
        l.field("master_sync_left_bytes", t.size - t.read as i64);
        l.field("master_sync_perc", format!("{perc:.2}"));
        l.field(
            "master_sync_last_io_seconds_ago",
            now.saturating_sub(t.last_io),
        );
    }
    if !up {
        let since = match inner.down_since {
            0 => -1,
            t => now.saturating_sub(t) as i64,
        };
        l.field("master_link_down_since_seconds", since);
    }
    let cfg = &srv.config;
    l.field("slave_priority", cfg.get_u64("replica-priority"));
    l.field(
        "slave_read_only",
        u8::from(cfg.get_bool("replica-read-only")),
    );
    l.field(
        "replica_announced",
        u8::from(cfg.get_bool("replica-announced")),
    );
}

/// ROLE's view of a replica: master host, port, link state (`connect`, `connecting`,
/// `sync`, `connected`) and the offset processed so far; `None` on a master.
pub fn role(srv: &Server) -> Option<(String, u16, &'static str, i64)> {
    let st = &srv.replication.replica;
    let inner = st.inner.lock();
    let (host, port) = inner.master.clone()?;
    let offset = if inner.phase == Phase::Connected {
        st.offset.load(Relaxed)
    } else {
        -1
    };
    Some((host, port, inner.phase.name(), offset))
}

/// The replication thread: follows whichever master REPLICAOF names, reconnecting every
/// second while the link is down.
fn run(srv: &Server) {
    let st = &srv.replication.replica;
    while !srv.shutting_down.load(Relaxed) {
        let (target, generation) = {
            let inner = st.inner.lock();
            (inner.master.clone(), st.generation.load(Relaxed))
        };
        let Some((host, port)) = target else {
            std::thread::sleep(POLL);
            continue;
        };
        // CLIENT UNPAUSE may have resumed expiry: a replica never expires keys itself.
        srv.keyspace.pause_expiry_until(u64::MAX);
        let result = link(srv, &host, port, generation);
        link_down(st, generation);
        match result {
            Err(e) if st.current(generation) => eprintln!("{e}"),
            _ => continue,
        }
        // Retry in a second, or at once for a new master.
        let retry = Instant::now() + Duration::from_secs(1);
        while Instant::now() < retry && st.current(generation) {
            std::thread::sleep(POLL);
        }
    }
}

/// Marks the link of `generation` down (unless a REPLICAOF since has reset the state).
fn link_down(st: &State, generation: u64) {
    let mut inner = st.inner.lock();
    if !st.current(generation) {
        return;
    }
    if inner.phase == Phase::Connected {
        inner.down_since = unix_ms() / 1000;
    }
    inner.phase = Phase::Connect;
    inner.transfer = None;
    st.link_up.store(false, Relaxed);
}

/// One life of the link: connect, handshake, sync, then stream until it fails or the
/// master changes.
fn link(srv: &Server, host: &str, port: u16, generation: u64) -> Result<(), String> {
    let st = &srv.replication.replica;
    st.set_phase(generation, Phase::Connecting);
    eprintln!("Connecting to MASTER {host}:{port}");
    let timeout = Duration::from_secs(srv.config.get_u64("repl-timeout").max(1));
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("Unable to connect to MASTER: cannot resolve {host}"))?;
    let sock = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("Unable to connect to MASTER: {e}"))?;
    let io = |e: std::io::Error| format!("Unable to connect to MASTER: {e}");
    sock.set_read_timeout(Some(POLL)).map_err(io)?;
    sock.set_write_timeout(Some(timeout)).map_err(io)?;
    sock.set_nodelay(!srv.config.get_bool("repl-disable-tcp-nodelay"))
        .map_err(io)?;
    eprintln!("MASTER <-> REPLICA sync started");
    let mut conn = Conn {
        srv,
        sock,
        buf: Vec::with_capacity(READ_CHUNK),
        pos: 0,
        generation,
        timeout,
        last_io: Instant::now(),
    };
    st.set_phase(generation, Phase::Handshake);
    handshake(&mut conn)?;
    match psync(&mut conn)? {
        Sync::Full(replid, offset) => {
            // The old history is gone from here on: a sync that fails midway must not be
            // continued from it.
            {
                let mut inner = st.inner.lock();
                if st.current(generation) {
                    inner.replid = None;
                    inner.phase = Phase::Sync;
                }
            }
            receive_rdb(&mut conn)?;
            load(srv)?;
            st.offset.store(offset, Relaxed);
            st.read_offset.store(offset, Relaxed);
            srv.replication
                .master
                .set_ids(&replid, offset.max(0) as u64);
            st.inner.lock().replid = Some(replid);
            eprintln!("MASTER <-> REPLICA sync: Finished with success");
        }
        Sync::Partial(new_id) => {
            eprintln!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
            let old_id = st.inner.lock().replid.clone();
            if let Some(id) = new_id.filter(|id| Some(id) != old_id.as_ref()) {
                eprintln!("Master replication ID changed to {id}");
                let offset = st.offset.load(Relaxed).max(0) as u64;
                srv.replication.master.set_ids(&id, offset);
                st.inner.lock().replid = Some(id);
            }
            eprintln!("Successful partial resynchronization with master.");
        }
    }
    stream(&mut conn)
}

/// PING, AUTH, REPLCONF: what the master needs to know before PSYNC.
fn handshake(conn: &mut Conn<'_>) -> Result<(), String> {
    let cfg = &conn.srv.config;
    conn.send(&[b"PING"])?;
    let reply = conn.line()?;
    // Without AUTH yet, the master may refuse PING; AUTH comes next.
    let refused_ok = ["-NOAUTH", "-NOPERM", "-ERR operation not permitted"];
    if reply.starts_with('-') && !refused_ok.iter().any(|p| reply.starts_with(p)) {
        return Err(format!("Error reply to PING from master: '{reply}'"));
    }
    eprintln!("Master replied to PING, replication can continue...");
    let pass = cfg.get("masterauth").unwrap_or_default();
    if !pass.is_empty() {
        let user = cfg.get("masteruser").unwrap_or_default();
        if user.is_empty() {
            conn.send(&[b"AUTH", pass.as_bytes()])?;
        } else {
            conn.send(&[b"AUTH", user.as_bytes(), pass.as_bytes()])?;
        }
        let reply = conn.line()?;
        if reply.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {reply}"));
        }
    }
    let port = match cfg.get_u64("replica-announce-port") {
        0 => cfg.get_u64("port"),
        p => p,
    };
    conn.send(&[b"REPLCONF", b"listening-port", port.to_string().as_bytes()])?;
    let reply = conn.line()?;
    if reply.starts_with('-') {
        eprintln!("(Non critical) Master does not understand REPLCONF listening-port: {reply}");
    }
    let ip = cfg.get("replica-announce-ip").unwrap_or_default();
    if !ip.is_empty() {
        conn.send(&[b"REPLCONF", b"ip-address", ip.as_bytes()])?;
        let reply = conn.line()?;
        if reply.starts_with('-') {
            eprintln!("(Non critical) Master does not understand REPLCONF ip-address: {reply}");
        }
    }
    conn.send(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    let reply = conn.line()?;
    if reply.starts_with('-') {
        eprintln!("(Non critical) Master does not understand REPLCONF capa: {reply}");
    }
    Ok(())
}

/// What the master granted.
enum Sync {
    /// +FULLRESYNC: an RDB follows; the stream then starts at this ID and offset.
    Full(String, i64),
    /// +CONTINUE: the stream continues from our offset, under a new ID if given.
    Partial(Option<String>),
}

/// PSYNC: asks to continue from our offset with the master we synced with before, or for a
/// full sync.
fn psync(conn: &mut Conn<'_>) -> Result<Sync, String> {
    let st = &conn.srv.replication.replica;
    let cached = st.inner.lock().replid.clone();
    let (id, offset) = match cached {
        Some(id) => {
            let offset = st.offset.load(Relaxed) + 1;
            eprintln!("Trying a partial resynchronization (request {id}:{offset}).");
            (id, offset)
        }
        None => {
            eprintln!("Partial resynchronization not possible (no cached master)");
            ("?".to_string(), -1)
        }
    };
    conn.send(&[b"PSYNC", id.as_bytes(), offset.to_string().as_bytes()])?;
    let reply = loop {
        // Newlines are the master's keep-alives while it prepares.
        let line = conn.line()?;
        if !line.is_empty() {
            break line;
        }
    };
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut words = rest.split(' ');
        let replid = words.next().filter(|id| id.len() == 40);
        let offset = words.next().and_then(|o| o.parse::<i64>().ok());
        let (Some(replid), Some(offset)) = (replid, offset) else {
            return Err(format!(
                "Master replied with wrong +FULLRESYNC syntax: {reply}"
            ));
        };
        eprintln!("Full resync from master: {replid}:{offset}");
        return Ok(Sync::Full(replid.to_string(), offset));
    }
    if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let id = rest.trim();
        return Ok(Sync::Partial((id.len() == 40).then(|| id.to_string())));
    }
    if reply.starts_with("-NOMASTERLINK") || reply.starts_with("-LOADING") {
        return Err(format!(
            "Master is currently unable to PSYNC but should be in the future: {reply}"
        ));
    }
    Err(format!("Unexpected reply to PSYNC from master: {reply}"))
}

/// Receives the full-sync RDB into a temporary file in `dir`, then moves it over
/// `dbfilename` (as Redis does) so the replica restarts with what it holds.
fn receive_rdb(conn: &mut Conn<'_>) -> Result<(), String> {
    let header = loop {
        let line = conn.line()?;
        if !line.is_empty() {
            break line;
        }
    };
    let Some(spec) = header.strip_prefix('$') else {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{header}'), \
             are you sure the host and port are right?"
        ));
    };
    let size = match spec.strip_prefix("EOF:") {
        Some(mark) if mark.len() == 40 => -1,
        Some(_) => return Err(format!("Bad EOF mark from MASTER: '{header}'")),
        None => spec
            .parse::<i64>()
            .ok()
            .filter(|&n| n >= 0)
            .ok_or_else(|| format!("Bad RDB length from MASTER: '{header}'"))?,
    };
    let now = unix_ms();
    conn.srv.replication.replica.inner.lock().transfer = Some(Transfer {
        size,
        read: 0,
        last_io: now / 1000,
    });
    let target = persist::rdb_path(conn.srv);
    let tmp = target.with_file_name(format!("temp-{}.{}.rdb", now / 1000, std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| {
        format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}")
    })?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = match spec.strip_prefix("EOF:") {
        Some(mark) => {
            eprintln!(
                "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk"
            );
            copy_until_mark(conn, &mut file, mark.as_bytes())
        }
        None => {
            eprintln!("MASTER <-> REPLICA sync: receiving {size} bytes from master to disk");
            copy_exact(conn, &mut file, size as u64)
        }
    };
    let finished = written.and_then(|()| {
        let file = file.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &target).map_err(|e| {
            format!(
                "Failed trying to rename the temp DB into {}: {e}",
                target.display()
            )
        })
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    finished
}

/// Copies exactly `len` payload bytes to `out`.
fn copy_exact(conn: &mut Conn<'_>, out: &mut impl Write, mut len: u64) -> Result<(), String> {
    while len > 0 {
        if conn.pos == conn.buf.len() {
            conn.fill()?;
            continue;
        }
        let n = (conn.buf.len() - conn.pos).min(usize::try_from(len).unwrap_or(usize::MAX));
        out.write_all(&conn.buf[conn.pos..conn.pos + n])
            .map_err(|e| format!("Write error writing to the DB file: {e}"))?;
        conn.pos += n;
        len -= n as u64;
        conn.transferred(n);
    }
    Ok(())
}

/// Copies a diskless payload to `out` up to its closing 40-byte `mark`; bytes after the
/// mark stay buffered (the command stream).
fn copy_until_mark(conn: &mut Conn<'_>, out: &mut impl Write, mark: &[u8]) -> Result<(), String> {
    let werr = |e: std::io::Error| format!("Write error writing to the DB file: {e}");
    // Received bytes not yet written: they may be the start of the mark.
    let mut held: Vec<u8> = Vec::with_capacity(READ_CHUNK + mark.len());
    loop {
        if conn.pos == conn.buf.len() {
            conn.fill()?;
            continue;
        }
        let chunk = &conn.buf[conn.pos..];
        let took = chunk.len();
        held.extend_from_slice(chunk);
        conn.transferred(took);
        if let Some(at) = memchr::memmem::find(&held, mark) {
            let after = held.len() - (at + mark.len());
            conn.pos += took - after;
            return out.write_all(&held[..at]).map_err(werr);
        }
        conn.pos += took;
        if held.len() > mark.len() {
            let keep = held.len() - mark.len();
            out.write_all(&held[..keep]).map_err(werr)?;
            held.drain(..keep);
        }
    }
}

/// Replaces the dataset with the RDB just received (in `dir/dbfilename`): every database is
/// emptied and the file loaded under every shard lock, functions included. With the AOF on,
/// its history no longer leads to this dataset: a rewrite starts from it, as Redis
/// restarts the AOF after a full sync.
fn load(srv: &Server) -> Result<(), String> {
    eprintln!("MASTER <-> REPLICA sync: Flushing old data");
    let mut locked = srv.keyspace.lock_all();
    let (now, mut stats) = (unix_ms(), KeyStats::default());
    for db in 0..srv.keyspace.num_dbs() {
        drop(locked.db(db, now, &mut stats).flush());
    }
    crate::scripting::clear_libraries();
    eprintln!("MASTER <-> REPLICA sync: Loading DB in memory");
    match persist::load(srv, &mut locked, false) {
        Ok(Some(_)) => {
            if srv.aof.enabled() {
                if let Err(e) = crate::aof::start_rewrite(srv, &mut locked) {
                    eprintln!("Can't rewrite the append only file after the sync: {e}");
                }
            }
            Ok(())
        }
        Ok(None) => Err(
            "Failed trying to load the MASTER synchronization DB from disk: \
                         the file is missing"
                .into(),
        ),
        Err(e) => Err(format!(
            "Failed trying to load the MASTER synchronization DB from disk: {e}"
        )),
    }
}

/// Applies the master's command stream until the link fails or the master changes. The
/// master is a client of this server while it streams (CLIENT LIST flag M).
fn stream(conn: &mut Conn<'_>) -> Result<(), String> {
    let srv = conn.srv;
    let st = &srv.replication.replica;
    let io = |e: std::io::Error| format!("Connection with master lost: {e}");
    let shared = Arc::new(ClientShared::new(
        srv.clients.next_id(),
        conn.sock.peer_addr().map_err(io)?,
        conn.sock.local_addr().map_err(io)?,
        conn.sock.as_raw_fd(),
        unix_ms(),
        0,
    ));
    shared.set_flag(flag::MASTER, true);
    {
        let mut inner = st.inner.lock();
        if !st.current(conn.generation) {
            return Err("Replication link replaced by REPLICAOF".into());
        }
        inner.phase = Phase::Connected;
        inner.down_since = 0;
        inner.transfer = None;
        st.last_io.store(unix_ms() / 1000, Relaxed);
        st.link_up.store(true, Relaxed);
    }
    srv.clients.add(shared.clone());
    let result = apply(conn, Client::new(shared.clone(), true));
    srv.clients.remove(shared.id);
    result
}

/// The streaming loop: runs each complete command, answers REPLCONF GETACK, and sends
/// REPLCONF ACK every second (the first at once: a diskless master starts streaming on it).
fn apply(conn: &mut Conn<'_>, mut client: Client) -> Result<(), String> {
    let srv = conn.srv;
    let st = &srv.replication.replica;
    let mut kstats = KeyStats::default();
    let mut parser = Parser::new();
    // The master is trusted: no bulk length limit, as in Redis.
    let limits = Limits {
        max_bulk_len: u64::MAX,
        max_multibulk_len: i32::MAX as u64,
        authenticated: true,
    };
    let mut out = Vec::new();
    let mut offset = st.offset.load(Relaxed);
    let mut last_ack: Option<Instant> = None;
    loop {
        let batch_start = offset;
        let applying = st.applying.lock();
        if !st.current(conn.generation) {
            return Err("Replication link replaced by REPLICAOF".into());
        }
        loop {
            let buf = &conn.buf[conn.pos..];
            let consumed = match parser.parse(buf, &limits) {
                Ok(Parsed::Command { consumed }) => {
                    let args = parser.args(buf);
                    if is_getack(args) {
                        // The ACK reports the offset before the GETACK itself, as in Redis.
                        send_ack(conn, offset)?;
                    } else {
                        run_command(srv, &mut client, &mut kstats, &mut out, args);
                    }
                    consumed
                }
                Ok(Parsed::Empty { consumed }) => consumed,
                Ok(Parsed::Incomplete { .. }) => break,
                Err(e) => return Err(format!("Protocol error from MASTER: {e}")),
            };
            conn.pos += consumed;
            offset += consumed as i64;
            st.offset.store(offset, Relaxed);
        }
        drop(applying);
        if offset != batch_start {
            // CLIENT LIST idle= of the master client.
            client.shared.last_ms.store(unix_ms(), Relaxed);
        }
        srv.replication.master.set_offset(offset.max(0) as u64);
        if last_ack.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            send_ack(conn, offset)?;
            last_ack = Some(Instant::now());
        }
        if client.shared.killed.load(Relaxed) {
            return Err("Connection with master lost (client killed).".into());
        }
        srv.keyspace.pause_expiry_until(u64::MAX);
        conn.fill()?;
        let pending = (conn.buf.len() - conn.pos) as i64;
        st.read_offset.store(offset + pending, Relaxed);
    }
}

/// True for `REPLCONF GETACK ...`, which the replica answers itself on the link.
fn is_getack(args: Args<'_>) -> bool {
    args.len() >= 2
        && args.get(0).eq_ignore_ascii_case(b"replconf")
        && args.get(1).eq_ignore_ascii_case(b"getack")
}

/// Runs one command from the master; its reply is dropped, its keyspace events published.
fn run_command(
    srv: &Server,
    client: &mut Client,
    kstats: &mut KeyStats,
    out: &mut Vec<u8>,
    args: Args<'_>,
) {
    let wstats = &srv.workers[0];
    let mut ex = Exec {
        srv,
        wstats,
        kstats,
        last_ms: 0,
    };
    execute(&mut ex, client, out, args);
    out.clear();
    if !kstats.events.is_empty() {
        crate::notify::publish(srv, &mut kstats.events, Some(client), None);
    }
    wstats.absorb(kstats);
}

/// `REPLCONF ACK <offset>`.
fn send_ack(conn: &mut Conn<'_>, offset: i64) -> Result<(), String> {
    conn.send(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])
}

/// The socket to the master with its read buffer.
struct Conn<'a> {
    srv: &'a Server,
    sock: TcpStream,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    generation: u64,
    /// `repl-timeout`: the longest silence accepted from the master.
    timeout: Duration,
    last_io: Instant,
}

impl Conn<'_> {
    /// Sends one command as a RESP array.
    fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut msg = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            msg.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            msg.extend_from_slice(a);
            msg.extend_from_slice(b"\r\n");
        }
        self.sock
            .write_all(&msg)
            .map_err(|e| format!("Connection with master lost: {e}"))
    }

    /// Waits up to [`POLL`] for more bytes. Fails when the master closed the link, stayed
    /// silent past `repl-timeout`, or the link is no longer wanted.
    fn fill(&mut self) -> Result<(), String> {
        if !self.srv.replication.replica.current(self.generation) {
            return Err("Replication link replaced by REPLICAOF".into());
        }
        if self.srv.shutting_down.load(Relaxed) {
            return Err("Replication link closed: shutting down".into());
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let read = self.sock.read(&mut self.buf[len..]);
        self.buf.truncate(len + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => Err("Connection with master lost.".into()),
            Ok(_) => {
                self.last_io = Instant::now();
                self.srv
                    .replication
                    .replica
                    .last_io
                    .store(unix_ms() / 1000, Relaxed);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if self.last_io.elapsed() > self.timeout {
                    return Err("MASTER timeout: no data nor PING received...".into());
                }
                Ok(())
            }
            Err(e) => Err(format!("Connection with master lost: {e}")),
        }
    }

    /// The next reply line (without its CR LF).
    fn line(&mut self) -> Result<String, String> {
        loop {
            let rest = &self.buf[self.pos..];
            if let Some(i) = memchr::memchr(b'\n', rest) {
                let line = rest[..i].strip_suffix(b"\r").unwrap_or(&rest[..i]);
                let line = String::from_utf8_lossy(line).into_owned();
                self.pos += i + 1;
                return Ok(line);
            }
            if rest.len() > MAX_LINE {
                return Err("Bad protocol from MASTER: reply line too long".into());
            }
            self.fill()?;
        }
    }

    /// Counts `n` payload bytes of a full-sync transfer (INFO master_sync_read_bytes).
    fn transferred(&self, n: usize) {
        if let Some(t) = self.srv.replication.replica.inner.lock().transfer.as_mut() {
            t.read += n as u64;
            t.last_io = unix_ms() / 1000;
        }
    }
}
