//! Networking: the acceptor and the worker event loops.
//!
//! The acceptor hands each new connection to a worker, round robin. A worker owns its
//! connections outright: it reads, parses every complete command in the buffer, runs each to
//! completion against the sharded keyspace on its own thread, and writes all replies with one
//! write per readiness event. Nothing hops threads on the path of a plain command.
//!
//! A connection accepted on the TLS port carries a [`tls::Session`]: reads and writes go
//! through it, the handshake advances inside them, and plain connections pay one `None` check.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use flowkv_protocol::{Limits, Parsed, Parser, Reply};
use flowkv_store::KeyStats;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::client::{flag, Client, ClientShared};
use crate::dispatch::{execute, Exec};
use crate::server::{unix_ms, Server};
use crate::tls;

const WAKER: Token = Token(usize::MAX);
/// Bytes read per `read` call at least; bigger when a large argument is arriving.
const READ_CHUNK: usize = 16 * 1024;
/// Replies are flushed once this much is pending, so a deep pipeline doesn't buffer them all.
const FLUSH_AT: usize = 64 * 1024;

/// What the acceptor (or another thread) sends a worker.
pub enum Msg {
    /// An accepted connection; `tls` if it came in on the TLS port.
    NewConn {
        stream: TcpStream,
        addr: SocketAddr,
        tls: bool,
    },
    /// The reply for the client blocked under `token`, which was served (or unblocked) by
    /// another thread.
    Unblocked { token: u64, reply: Vec<u8> },
    /// Pub/sub output for clients of this worker, by client id: appended to their
    /// connections' output in order (see [`crate::pubsub`]).
    Deliver(Vec<(u64, Arc<[u8]>)>),
}

/// A handle to send work to one worker thread.
#[derive(Clone)]
pub struct WorkerHandle {
    tx: Sender<Msg>,
    waker: Arc<Waker>,
}

impl WorkerHandle {
    pub fn send(&self, m: Msg) {
        self.send_with_wake(m, true);
    }

    /// Sends a message, waking the worker only if `wake`: a worker sending to itself reads
    /// its mailbox before it next waits anyway.
    pub fn send_with_wake(&self, m: Msg, wake: bool) {
        if self.tx.send(m).is_ok() && wake {
            self.wake();
        }
    }

    /// Wakes the worker's event loop without a message (it then checks kill flags).
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }
}

/// Starts worker `id` on its own thread.
pub fn spawn_worker(srv: Arc<Server>, id: usize) -> io::Result<WorkerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = channel();
    let handle = WorkerHandle {
        tx,
        waker: waker.clone(),
    };
    srv.mailboxes.lock().push(handle.clone());
    crate::notify::refresh(&srv);
    std::thread::Builder::new()
        .name(format!("flowkv-worker-{id}"))
        .spawn(move || {
            let mut w = Worker {
                id,
                srv,
                poll,
                rx,
                conns: Slab::new(),
                kstats: KeyStats::default(),
                blocked: HashMap::new(),
                deadlines: BTreeSet::new(),
                by_id: HashMap::new(),
                postponed: Vec::new(),
                pause_epoch: 0,
            };
            w.run();
        })?;
    Ok(handle)
}

struct Conn {
    stream: TcpStream,
    /// The TLS session of a connection accepted on the TLS port.
    tls: Option<Box<tls::Session>>,
    /// Read buffer: `rbuf[start..end]` holds unparsed bytes; the rest is zeroed spare room,
    /// so reads need no re-initialization.
    rbuf: Vec<u8>,
    start: usize,
    end: usize,
    parser: Parser,
    out: Vec<u8>,
    /// Bytes of `out` already written.
    wpos: usize,
    /// When (unix ms) a subscriber's pending output went over the soft limit; 0 if it is
    /// under it.
    soft_since: u64,
    client: Client,
}

struct Worker {
    id: usize,
    srv: Arc<Server>,
    poll: Poll,
    rx: Receiver<Msg>,
    conns: Slab<Conn>,
    kstats: KeyStats,
    /// Connections blocked in a blocking command, by waiter token.
    blocked: HashMap<u64, usize>,
    /// (deadline, token) of blocked connections with a timeout, soonest first.
    deadlines: BTreeSet<(u64, u64)>,
    /// Connections by client id, for pub/sub deliveries.
    by_id: HashMap<u64, usize>,
    /// Connections whose next command waits for CLIENT PAUSE to end.
    postponed: Vec<usize>,
    /// The pause epoch (see [`crate::pause::Pause::epoch`]) `postponed` was last retried at.
    pause_epoch: u64,
}

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut last_check = unix_ms();
        loop {
            // Wake for the next blocked client's timeout, or at least every 100 ms.
            let mut wait = Duration::from_millis(100);
            if let Some(&(deadline, _)) = self.deadlines.first() {
                let left = deadline.saturating_sub(unix_ms());
                wait = wait.min(Duration::from_millis(left));
            }
            if !self.postponed.is_empty() {
                let now = unix_ms();
                if let Some(end) = self.srv.pause.end_ms(now) {
                    wait = wait.min(Duration::from_millis(end + 1 - now));
                }
            }
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    eprintln!("worker {}: poll failed: {e}", self.id);
                    return;
                }
            }
            for ev in events.iter() {
                if ev.token() == WAKER {
                    self.drain_messages();
                    self.close_killed();
                    continue;
                }
                let key = ev.token().0;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.on_readable(key, ev.is_read_closed() || ev.is_error());
                }
                if ev.is_writable() && self.conns.contains(key) {
                    self.flush(key);
                }
            }
            // Deliveries this worker sent itself (it doesn't wake itself for them).
            self.drain_messages();
            let now = unix_ms();
            self.expire_blocked(now);
            self.retry_postponed();
            self.publish_swept();
            self.srv.workers[self.id].absorb(&mut self.kstats);
            if now.saturating_sub(last_check) >= 1000 {
                last_check = now;
                self.close_idle(now);
            }
        }
    }

    fn drain_messages(&mut self) {
        let mut delivered = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::NewConn { stream, addr, tls } => self.add_conn(stream, addr, tls),
                Msg::Unblocked { token, reply } => self.unblocked(token, &reply),
                Msg::Deliver(batch) => {
                    for (id, bytes) in batch {
                        let Some(&key) = self.by_id.get(&id) else {
                            continue;
                        };
                        if let Some(c) = self.conns.get_mut(key) {
                            c.out.extend_from_slice(&bytes);
                            delivered.push(key);
                        }
                    }
                }
            }
        }
        delivered.sort_unstable();
        delivered.dedup();
        for key in delivered {
            self.flush(key);
        }
    }

    /// Publishes the "expired" events of keys the active expiry cycle deleted (whichever
    /// worker gets here first takes them all).
    fn publish_swept(&mut self) {
        let mut events = self.srv.keyspace.take_swept();
        if !events.is_empty() {
            crate::notify::publish(&self.srv, &mut events, None, Some(self.id));
        }
    }

    fn add_conn(&mut self, mut stream: TcpStream, addr: SocketAddr, tls: bool) {
        let _ = stream.set_nodelay(true);
        let session = if tls {
            let Some(s) = self.srv.config.tls.accept() else {
                self.srv.connected.fetch_sub(1, Relaxed);
                return;
            };
            Some(Box::new(s))
        } else {
            None
        };
        let laddr = stream.local_addr().unwrap_or(addr);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            eprintln!("register failed: {e}");
            self.srv.connected.fetch_sub(1, Relaxed);
            return;
        }
        let id = self.srv.clients.next_id();
        self.by_id.insert(id, key);
        let shared = Arc::new(ClientShared::new(
            id,
            addr,
            laddr,
            raw_fd(&stream),
            unix_ms(),
            self.id,
        ));
        self.srv.clients.add(shared.clone());
        entry.insert(Conn {
            stream,
            tls: session,
            rbuf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            parser: Parser::new(),
            out: Vec::new(),
            wpos: 0,
            soft_since: 0,
            client: Client::new(shared, self.srv.acl.default_open_door()),
        });
    }

    fn close(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        let mut c = self.conns.remove(key);
        if c.client.postponed {
            self.srv.pause.note_postponed(false);
            self.postponed.retain(|&k| k != key);
        }
        if let Some(b) = c.client.blocked {
            self.srv.blocked.cancel(&self.srv, b.token);
            self.blocked.remove(&b.token);
            self.deadlines.remove(&(b.deadline_ms, b.token));
        }
        self.srv.watches.unwatch_all(&self.srv, &mut c.client);
        self.srv.pubsub().unsubscribe_all(&mut c.client);
        self.srv.tracking().disable(&self.srv, &c.client);
        self.srv.monitors.remove(c.client.id);
        self.by_id.remove(&c.client.id);
        if let Some(t) = c.tls.as_mut() {
            t.close(&mut c.stream);
        }
        let _ = self.poll.registry().deregister(&mut c.stream);
        self.srv.clients.remove(c.client.id);
        self.srv.connected.fetch_sub(1, Relaxed);
    }

    fn close_killed(&mut self) {
        let killed: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.client.shared.killed.load(Relaxed))
            .map(|(k, _)| k)
            .collect();
        for k in killed {
            self.close(k);
        }
    }

    fn close_idle(&mut self, now: u64) {
        let timeout_ms = self.srv.config.hot.timeout_secs.load(Relaxed) * 1000;
        if timeout_ms == 0 {
            return;
        }
        let idle: Vec<usize> = self
            .conns
            .iter()
            // Redis never times out replicas, masters, blocked or subscribed clients.
            .filter(|(_, c)| {
                !c.client
                    .shared
                    .has_flag(flag::REPLICA | flag::MASTER | flag::BLOCKED | flag::PUBSUB)
                    && c.client.shared.idle_ms(now) > timeout_ms
            })
            .map(|(k, _)| k)
            .collect();
        for k in idle {
            self.close(k);
        }
    }

    /// Reads everything available, running each complete command as soon as it is parsed.
    ///
    /// Readiness is edge-triggered, so the socket must be drained; but a read that returns
    /// less than the room it was given has emptied the kernel buffer, and any later data
    /// raises a new edge. Stopping there saves the extra `read` that would only say
    /// EAGAIN — one syscall per request at pipeline depth 1. When the peer has hung up
    /// (`hup`), reading goes on until it returns 0, because no further edge will come.
    /// A blocked client's input is read and kept, but runs only once it is unblocked.
    /// A TLS session reads until WouldBlock instead: the kernel buffer may be drained while
    /// the session still holds decrypted data that no new edge would announce.
    fn on_readable(&mut self, key: usize, hup: bool) {
        let srv = self.srv.clone();
        let wstats = &srv.workers[self.id];
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let qbuf_limit = srv.config.hot.client_query_buffer_limit.load(Relaxed) as usize;
        let mut close = false;
        let mut want = READ_CHUNK;
        let mut last_ms = 0;
        loop {
            if c.start == c.end {
                c.start = 0;
                c.end = 0;
            } else if c.start > 0 && c.rbuf.len() - c.end < want {
                c.rbuf.copy_within(c.start..c.end, 0);
                c.end -= c.start;
                c.start = 0;
            }
            if c.rbuf.len() - c.end < want {
                let new_len = (c.end + want).next_power_of_two();
                c.rbuf.resize(new_len, 0);
            }
            let room = c.rbuf.len() - c.end;
            let read = match c.tls.as_mut() {
                None => c.stream.read(&mut c.rbuf[c.end..]),
                Some(t) => t.read(&mut c.stream, &mut c.rbuf[c.end..]),
            };
            let n = match read {
                Ok(0) => {
                    close = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    close = true;
                    break;
                }
            };
            c.end += n;
            wstats.net_input_bytes.add(n as u64);
            wstats.reads.add(1);
            let mut ex = Exec {
                srv: &srv,
                wstats,
                kstats: &mut self.kstats,
                last_ms,
            };
            let (must_close, hint) = run_commands(&mut ex, c);
            want = hint;
            last_ms = ex.last_ms;
            if must_close {
                close = true;
                break;
            }
            if c.client.close_after_reply {
                break;
            }
            if c.end - c.start > qbuf_limit {
                eprintln!(
                    "Closing client that reached max query buffer length (id={})",
                    c.client.id
                );
                close = true;
                break;
            }
            if c.out.len() - c.wpos >= FLUSH_AT && !write_out(&srv, c, wstats) {
                close = true;
                break;
            }
            if n < room && !hup && c.tls.is_none() {
                break;
            }
        }
        let now = if last_ms == 0 { unix_ms() } else { last_ms };
        c.client.shared.last_ms.store(now, Relaxed);
        c.client.shared.qbuf.store(c.end - c.start, Relaxed);
        if close {
            self.close(key);
            return;
        }
        self.track_blocked(key);
        self.flush(key);
    }

    /// Starts tracking the timeout of a client that has just blocked, or notes one whose
    /// command CLIENT PAUSE postponed.
    fn track_blocked(&mut self, key: usize) {
        let Some(c) = self.conns.get(key) else {
            return;
        };
        if c.client.postponed && !self.postponed.contains(&key) {
            self.srv.pause.note_postponed(true);
            c.client.shared.set_flag(flag::BLOCKED, true);
            self.postponed.push(key);
        }
        let Some(b) = c.client.blocked else {
            return;
        };
        if self.blocked.insert(b.token, key).is_none() && b.deadline_ms != 0 {
            self.deadlines.insert((b.deadline_ms, b.token));
        }
    }

    /// A blocked client's answer arrived (served, timed out or unblocked): deliver it and
    /// run the commands that waited behind the blocking one.
    fn unblocked(&mut self, token: u64, reply: &[u8]) {
        let Some(key) = self.blocked.remove(&token) else {
            return;
        };
        let srv = self.srv.clone();
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(b) = c.client.blocked.take() else {
            return;
        };
        self.deadlines.remove(&(b.deadline_ms, b.token));
        c.client.shared.set_flag(flag::BLOCKED, false);
        crate::dispatch::timing_unblocked(&srv, &mut c.client);
        c.out.extend_from_slice(reply);
        let mut ex = Exec {
            srv: &srv,
            wstats: &srv.workers[self.id],
            kstats: &mut self.kstats,
            last_ms: 0,
        };
        let (close, _) = run_commands(&mut ex, c);
        c.client.shared.last_ms.store(unix_ms(), Relaxed);
        c.client.shared.qbuf.store(c.end - c.start, Relaxed);
        if close {
            self.close(key);
            return;
        }
        self.track_blocked(key);
        self.flush(key);
    }

    /// Runs the commands CLIENT PAUSE postponed once the pause has ended or changed (a
    /// changed pause may allow some; the others are postponed again).
    fn retry_postponed(&mut self) {
        if self.postponed.is_empty() {
            return;
        }
        let epoch = self.srv.pause.epoch();
        if epoch == self.pause_epoch && self.srv.pause.in_force() {
            return;
        }
        self.pause_epoch = epoch;
        let srv = self.srv.clone();
        for key in std::mem::take(&mut self.postponed) {
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            c.client.postponed = false;
            srv.pause.note_postponed(false);
            c.client.shared.set_flag(flag::BLOCKED, false);
            let mut ex = Exec {
                srv: &srv,
                wstats: &srv.workers[self.id],
                kstats: &mut self.kstats,
                last_ms: 0,
            };
            let (close, _) = run_commands(&mut ex, c);
            c.client.shared.qbuf.store(c.end - c.start, Relaxed);
            if close {
                self.close(key);
                continue;
            }
            self.track_blocked(key);
            self.flush(key);
        }
    }

    /// Answers blocked clients whose timeout has passed with a null, as Redis does.
    fn expire_blocked(&mut self, now: u64) {
        while let Some(&(deadline, token)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            // A waiter served meanwhile has its reply in the mailbox: leave it to that.
            if !self.srv.blocked.cancel(&self.srv, token) {
                continue;
            }
            let Some(c) = self.blocked.get(&token).and_then(|&k| self.conns.get(k)) else {
                continue;
            };
            let mut reply = Vec::new();
            Reply::new(&mut reply, c.client.proto).null_array();
            self.unblocked(token, &reply);
        }
    }

    /// Writes pending replies; closes the connection if it is done (QUIT, protocol error)
    /// or is a subscriber whose unwritten output passed its limits.
    fn flush(&mut self, key: usize) {
        let srv = self.srv.clone();
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let ok = write_out(&srv, c, &srv.workers[self.id]);
        c.client.shared.obuf.store(c.out.len() - c.wpos, Relaxed);
        if !ok
            || (c.client.close_after_reply
                && c.wpos == c.out.len()
                && !c.tls.as_ref().is_some_and(|t| t.pending()))
            || over_pubsub_limit(&srv, c)
        {
            self.close(key);
        }
    }
}

/// Runs every complete command in the connection's read buffer, stopping early when the
/// client blocks or must close. Returns (close now, bytes the next read should make room
/// for).
fn run_commands(ex: &mut Exec<'_>, c: &mut Conn) -> (bool, usize) {
    let hot = &ex.srv.config.hot;
    let mut limits = Limits {
        max_bulk_len: hot.proto_max_bulk_len.load(Relaxed),
        max_multibulk_len: 1024 * 1024,
        authenticated: c.client.authenticated,
    };
    let mut want = READ_CHUNK;
    while c.client.blocked.is_none() && !c.client.postponed && !c.client.close_after_reply {
        let buf = &c.rbuf[c.start..c.end];
        match c.parser.parse(buf, &limits) {
            Ok(Parsed::Command { consumed }) => {
                // A client killed from another thread runs nothing more.
                if c.client.shared.killed.load(Relaxed) {
                    return (true, want);
                }
                let args = c.parser.args(buf);
                // CLIENT LIST shows the query buffer as the command saw it.
                c.client.shared.qbuf.store(c.end - c.start, Relaxed);
                let reply_start = c.out.len();
                execute(ex, &mut c.client, &mut c.out, args);
                if c.client.postponed {
                    // Left unconsumed: it runs again when the pause ends.
                    break;
                }
                after_execute(ex, &mut c.client, &mut c.out, reply_start, args);
                // AUTH/HELLO/RESET change the limits for what follows.
                limits.authenticated = c.client.authenticated;
                c.start += consumed;
            }
            Ok(Parsed::Empty { consumed }) => c.start += consumed,
            Ok(Parsed::Incomplete { hint }) => {
                if let Some(total) = hint {
                    want = want.max(total.saturating_sub(c.end - c.start));
                }
                break;
            }
            Err(e) => {
                Reply::new(&mut c.out, c.client.proto).error(&format!("ERR {e}"));
                ex.srv.count_error("ERR");
                c.client.close_after_reply = true;
            }
        }
    }
    (false, want)
}

/// The pub/sub work that follows a command: publishes the keyspace events it raised, puts
/// the client's own pub/sub output ahead of the command's reply (where Redis has it, and
/// safe from CLIENT REPLY OFF), and re-reads the settings CONFIG SET may have changed.
fn after_execute(
    ex: &mut Exec<'_>,
    client: &mut Client,
    out: &mut Vec<u8>,
    reply_start: usize,
    args: flowkv_protocol::Args<'_>,
) {
    if !ex.kstats.events.is_empty() {
        let worker = client.shared.worker;
        crate::notify::publish(ex.srv, &mut ex.kstats.events, Some(client), Some(worker));
    }
    if !client.pushes.is_empty() {
        let pushes = std::mem::take(&mut client.pushes);
        out.splice(reply_start..reply_start, pushes);
    }
    crate::notify::after_command(ex.srv, client, args);
}

/// True if `c` is a subscriber whose unwritten output is over the hard limit, or has been
/// over the soft limit for longer than allowed (`client-output-buffer-limit pubsub`).
fn over_pubsub_limit(srv: &Server, c: &mut Conn) -> bool {
    if !c.client.shared.has_flag(flag::PUBSUB) {
        c.soft_since = 0;
        return false;
    }
    let pending = (c.out.len() - c.wpos) as u64;
    let (hard, soft, secs) = srv.pubsub().limits();
    let over = if hard > 0 && pending >= hard {
        true
    } else if soft > 0 && pending >= soft {
        let now = unix_ms();
        if c.soft_since == 0 {
            c.soft_since = now;
        }
        now - c.soft_since > secs * 1000
    } else {
        c.soft_since = 0;
        false
    };
    if over {
        eprintln!(
            "Client id={} addr={} closed for overcoming of output buffer limits.",
            c.client.id, c.client.shared.addr
        );
    }
    over
}

/// Writes as much of `c.out` as the socket takes. Returns false if the connection failed.
/// Under `appendfsync always` the writes these replies acknowledge are fsynced first.
fn write_out(srv: &Server, c: &mut Conn, wstats: &crate::server::WorkerStats) -> bool {
    if c.wpos < c.out.len() {
        crate::aof::before_reply(srv);
    }
    while c.wpos < c.out.len() {
        let written = match c.tls.as_mut() {
            None => c.stream.write(&c.out[c.wpos..]),
            Some(t) => t.write(&mut c.stream, &c.out[c.wpos..]),
        };
        match written {
            Ok(0) => return false,
            Ok(n) => {
                c.wpos += n;
                wstats.net_output_bytes.add(n as u64);
                wstats.writes.add(1);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    // Handshake messages, alerts and encrypted replies the socket did not take yet.
    if let Some(t) = c.tls.as_mut() {
        match t.flush(&mut c.stream) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    c.out.clear();
    c.wpos = 0;
    // Give back memory after a huge reply instead of keeping it for the connection's life.
    if c.out.capacity() > 1 << 20 {
        c.out.shrink_to(FLUSH_AT);
    }
    true
}

fn raw_fd(s: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

/// The socket addresses of a `bind` value on `port`, each with whether it is optional: a
/// `-` prefix (as in the default `-::1`) marks an address that may be unavailable (e.g. no
/// IPv6) without failing start-up.
pub fn bind_addrs(bind: &str, port: u16) -> io::Result<Vec<(bool, SocketAddr)>> {
    bind.split_whitespace()
        .map(|addr| {
            let (optional, host) = match addr.strip_prefix('-') {
                Some(h) => (true, h),
                None => (false, addr),
            };
            let host = if host == "*" { "0.0.0.0" } else { host };
            let sa: SocketAddr = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
            Ok((optional, sa))
        })
        .collect()
}

/// Binds every address of a `bind` value with `bind_one`, skipping optional addresses that
/// fail; at least one must succeed.
pub fn bind_with<L>(
    bind: &str,
    port: u16,
    bind_one: impl Fn(SocketAddr) -> io::Result<L>,
) -> io::Result<Vec<L>> {
    let mut out = Vec::new();
    for (optional, sa) in bind_addrs(bind, port)? {
        match bind_one(sa) {
            Ok(l) => out.push(l),
            Err(e) if optional => eprintln!("Warning: could not bind {sa}: {e}"),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("Could not create server TCP listening socket {sa}: {e}"),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no address to listen on",
        ));
    }
    Ok(out)
}

/// A client listener; `tls` for the TLS port.
pub struct Listener {
    sock: TcpListener,
    tls: bool,
}

/// Binds the client addresses: `bind` on `port` (plain) and on `tls_port` (TLS); a port of
/// 0 is not listened on, as in Redis.
pub fn bind_all(bind: &str, port: u16, tls_port: u16) -> io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for (p, tls) in [(port, false), (tls_port, true)] {
        if p != 0 {
            let socks = bind_with(bind, p, TcpListener::bind)?;
            out.extend(socks.into_iter().map(|sock| Listener { sock, tls }));
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "Configured to not listen anywhere, exiting.",
        ));
    }
    Ok(out)
}

/// Runs the accept loop on the calling thread until shutdown is requested.
pub fn accept_loop(
    srv: Arc<Server>,
    mut listeners: Vec<Listener>,
    workers: Vec<WorkerHandle>,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    *srv.main_waker.lock() = Some(waker);
    for (i, l) in listeners.iter_mut().enumerate() {
        poll.registry()
            .register(&mut l.sock, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(64);
    let mut next = 0usize;
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if srv.shutting_down.load(Relaxed) {
            return Ok(());
        }
        for ev in events.iter() {
            let Some(l) = listeners.get(ev.token().0) else {
                continue;
            };
            loop {
                match l.sock.accept() {
                    Ok((mut stream, addr)) => {
                        srv.stats.total_connections_received.fetch_add(1, Relaxed);
                        let max = srv.config.hot.maxclients.load(Relaxed) as usize;
                        if srv.connected.fetch_add(1, Relaxed) >= max {
                            srv.connected.fetch_sub(1, Relaxed);
                            srv.stats.rejected_connections.fetch_add(1, Relaxed);
                            // A TLS client could not read a plain-text error: just close.
                            if !l.tls {
                                let _ = stream.write(b"-ERR max number of clients reached\r\n");
                            }
                            continue;
                        }
                        if let Some(text) = crate::acl::protected_mode_refusal(&srv, addr) {
                            srv.connected.fetch_sub(1, Relaxed);
                            srv.stats.rejected_connections.fetch_add(1, Relaxed);
                            if !l.tls {
                                let _ = stream.write(text);
                            }
                            continue;
                        }
                        workers[next % workers.len()].send(Msg::NewConn {
                            stream,
                            addr,
                            tls: l.tls,
                        });
                        next = next.wrapping_add(1);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // EMFILE and friends: log, back off briefly, keep serving.
                        eprintln!("accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(10));
                        break;
                    }
                }
            }
        }
    }
}
