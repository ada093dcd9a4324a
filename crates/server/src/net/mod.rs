//! Networking: the acceptor and the worker event loops.
//!
//! The acceptor hands each new connection to a worker, round robin. A worker owns its
//! connections outright: it reads, parses every complete command in the buffer, runs each to
//! completion against the sharded keyspace on its own thread, and writes all replies with one
//! write per readiness event. Nothing hops threads on the path of a plain command.
//!
//! A connection accepted on the TLS port carries a [`tls::Session`]: reads and writes go
//! through it, the handshake advances inside them, and plain connections pay one `None` check.

mod busy;
mod spin;

pub use busy::serve_while_busy;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowkv_protocol::{Limits, Parsed, Parser, Reply};
use flowkv_store::KeyStats;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::client::{flag, Client, ClientShared, ClientType};
use crate::dispatch::{execute, Exec};
use crate::server::{unix_ms, Server};
use crate::tls;
use crate::transaction::{Queued, Watched};

const WAKER: Token = Token(usize::MAX);
/// Bytes read per `read` call at least; bigger when a large argument is arriving.
const READ_CHUNK: usize = 16 * 1024;
/// Replies are flushed once this much is pending, so a deep pipeline doesn't buffer them all.
const FLUSH_AT: usize = 64 * 1024;
/// How often (ms) a worker looks over all its connections: `timeout`, output soft limits
/// with no traffic, buffers to shrink, client eviction.
const CRON_MS: u64 = 100;
/// A connection idle this long (ms) gives its empty buffers back, as Redis frees an idle
/// client's query buffer.
const IDLE_SHRINK_MS: u64 = 2000;
/// Pending output below this is not checked against the output buffer limits after each
/// command (one comparison on the hot path); smaller limits are checked after each write.
const OBUF_CHECK_MIN: usize = 16 * 1024;
/// Mailbox messages a worker handles before it looks at its sockets again.
const DRAIN_MAX: usize = 256;
/// How long a busy worker may hold pub/sub deliveries back while more commands are ready
/// (see [`Worker::write_held`]).
const HOLD_MAX: Duration = Duration::from_micros(100);
/// What a connection costs besides its buffers, for `maxmemory-clients` and tot-mem.
const CONN_OVERHEAD: usize = std::mem::size_of::<Conn>() + std::mem::size_of::<ClientShared>();

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
    /// SCRIPT FLUSH ran: the worker drops its EVAL interpreter now, as Redis frees its Lua
    /// state at once, instead of at its next script.
    ScriptsFlushed,
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
            let conns = Conns::default();
            let served = busy::install(srv.clone(), id, conns.clone());
            let mut w = Worker {
                id,
                srv,
                poll,
                rx,
                conns,
                served,
                kstats: KeyStats::default(),
                blocked: HashMap::new(),
                deadlines: BTreeSet::new(),
                by_id: HashMap::new(),
                held: Vec::new(),
                held_since: None,
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
    /// When (unix ms) the pending output went over the class's soft limit; 0 if under it.
    soft_since: u64,
    /// The most bytes the query buffer held since the last cron pass (to shrink it).
    qb_peak: usize,
    /// (queued commands, their bytes) of the open MULTI counted so far, so that counting
    /// the client's memory never walks the whole queue again.
    multi_seen: (usize, usize),
    client: Client,
}

/// A worker's connections. The worker's thread shares them with its busy pump
/// ([`busy::serve_while_busy`]), which answers them from inside a script that runs past
/// `busy-reply-threshold`; the connection running that script is the one borrowed then.
type Conns = Rc<RefCell<Slab<RefCell<Conn>>>>;

/// Runs `f` on connection `key`, if it is open.
fn with_conn<R>(conns: &Conns, key: usize, f: impl FnOnce(&mut Conn) -> R) -> Option<R> {
    let slab = conns.borrow();
    let mut c = slab.get(key)?.borrow_mut();
    Some(f(&mut c))
}

struct Worker {
    id: usize,
    srv: Arc<Server>,
    poll: Poll,
    rx: Receiver<Msg>,
    conns: Conns,
    /// Connections the busy pump read from or answered: the worker finishes them (runs
    /// what they still hold, writes, closes) once the script is over.
    served: busy::Served,
    kstats: KeyStats,
    /// Connections blocked in a blocking command, by waiter token.
    blocked: HashMap<u64, usize>,
    /// (deadline, token) of blocked connections with a timeout, soonest first.
    deadlines: BTreeSet<(u64, u64)>,
    /// Connections by client id, for pub/sub deliveries.
    by_id: HashMap<u64, usize>,
    /// Connections with pub/sub deliveries not yet written (see [`Worker::write_held`]).
    held: Vec<usize>,
    /// The loop pass that first held them.
    held_since: Option<Instant>,
    /// Connections whose next command waits for CLIENT PAUSE to end.
    postponed: Vec<usize>,
    /// The pause epoch (see [`crate::pause::Pause::epoch`]) `postponed` was last retried at.
    pause_epoch: u64,
}

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut last_cron = unix_ms();
        // Messages left in the mailbox by the last drain (no new wake-up announces them).
        let mut mail_left = false;
        let mut spin = spin::Spin::new(Instant::now());
        loop {
            // Wake for the next blocked client's timeout, or at least every 100 ms.
            let mut wait = spin.wait(
                Instant::now(),
                Duration::from_millis(if mail_left { 0 } else { 100 }),
            );
            if !self.held.is_empty() {
                wait = Duration::ZERO;
            }
            if let Some(&(deadline, _)) = self.deadlines.first() {
                let left = (deadline + 1).saturating_sub(unix_ms());
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
            let polled = Instant::now();
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
                if ev.is_writable() && self.conns.borrow().contains(key) {
                    self.flush(key);
                }
            }
            self.finish_served();
            // Deliveries this worker sent itself (it doesn't wake itself for them).
            mail_left = self.drain_messages();
            if !self.held.is_empty() {
                let since = *self.held_since.get_or_insert(polled);
                if events.is_empty() || polled.duration_since(since) >= HOLD_MAX {
                    self.write_held();
                }
            }
            let spin_us = self.srv.config.hot.busy_poll_us.load(Relaxed);
            spin.record(polled, Instant::now(), !events.is_empty(), spin_us);
            let now = unix_ms();
            self.expire_blocked(now);
            self.retry_postponed();
            self.publish_swept();
            self.srv.workers[self.id].absorb(&mut self.kstats);
            if now.saturating_sub(last_cron) >= CRON_MS && !self.srv.cron_paused.load(Relaxed) {
                last_cron = now;
                self.cron(now);
            }
        }
    }

    /// Handles the messages in the mailbox, at most [`DRAIN_MAX`] of them: a publisher
    /// flooding a subscriber of this worker must not keep it here, with the subscriber's
    /// output growing past its limit unchecked and every other client waiting. Returns
    /// true if it stopped with messages left.
    fn drain_messages(&mut self) -> bool {
        let mut delivered = Vec::new();
        let mut handled = 0;
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::NewConn { stream, addr, tls } => self.add_conn(stream, addr, tls),
                Msg::Unblocked { token, reply } => self.unblocked(token, &reply),
                Msg::ScriptsFlushed => crate::scripting::vm::drop_stale_interpreter(),
                Msg::Deliver(batch) => {
                    for (id, bytes) in batch {
                        let Some(&key) = self.by_id.get(&id) else {
                            continue;
                        };
                        if with_conn(&self.conns, key, |c| c.out.extend_from_slice(&bytes))
                            .is_some()
                        {
                            delivered.push(key);
                        }
                    }
                }
            }
            handled += 1;
            if handled == DRAIN_MAX {
                break;
            }
        }
        delivered.sort_unstable();
        delivered.dedup();
        self.held.extend(delivered);
        handled == DRAIN_MAX
    }

    /// Writes the deliveries held back. A worker holds them while it has more commands
    /// ready (up to [`HOLD_MAX`]), so that a burst of PUBLISHes reaches each subscriber in
    /// one write instead of one per loop pass: a subscriber's reads are what a fan-out
    /// costs its host, and the busier the publishers the more they save (PUBLISH to 10
    /// redis-cli subscribers: 1.11x Redis's rate with, 0.99x without). An idle worker
    /// finds nothing ready at its next (non-blocking) poll and writes them at once.
    fn write_held(&mut self) {
        let mut held = std::mem::take(&mut self.held);
        held.sort_unstable();
        held.dedup();
        for key in held.drain(..) {
            self.flush(key);
        }
        self.held = held;
        self.held_since = None;
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
        set_keepalive(&stream, self.srv.config.hot.tcp_keepalive.load(Relaxed));
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
        let mut slab = self.conns.borrow_mut();
        let entry = slab.vacant_entry();
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
        let c = entry.insert(RefCell::new(Conn {
            stream,
            tls: session,
            rbuf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            parser: Parser::new(),
            out: Vec::new(),
            wpos: 0,
            soft_since: 0,
            qb_peak: 0,
            multi_seen: (0, 0),
            client: Client::new(shared, self.srv.acl.default_open_door()),
        }));
        let c = c.get_mut();
        store_qbuf(c);
        account(&self.srv, c);
    }

    fn close(&mut self, key: usize) {
        let Some(c) = self.conns.borrow_mut().try_remove(key) else {
            return;
        };
        let mut c = c.into_inner();
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
        crate::commands::replication::closed(&self.srv, &c.client);
        self.by_id.remove(&c.client.id);
        self.srv.clients.set_mem(&c.client.shared, 0);
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
            .borrow()
            .iter()
            .filter(|(_, c)| c.borrow().client.shared.killed.load(Relaxed))
            .map(|(k, _)| k)
            .collect();
        for k in killed {
            // What was delivered before the kill goes out first (a replica dropped by
            // REPLICAOF gets the stream up to the demotion).
            if self.held.contains(&k) {
                self.flush(k);
            }
            self.close(k);
        }
    }

    /// The periodic pass over every connection: closes idle clients (`timeout`) and those
    /// kept over their output soft limit with no traffic, gives back the buffers of quiet
    /// connections, and evicts clients if `maxmemory-clients` is exceeded (also after
    /// CONFIG SET or CLIENT NO-EVICT OFF changed nothing else).
    fn cron(&mut self, now: u64) {
        let srv = self.srv.clone();
        let timeout_ms = srv.config.hot.timeout_secs.load(Relaxed) * 1000;
        let mut doomed = Vec::new();
        for (key, c) in self.conns.borrow().iter() {
            let c = &mut *c.borrow_mut();
            let shared = &c.client.shared;
            let idle = shared.idle_ms(now);
            // Redis never times out replicas, masters, blocked or subscribed clients.
            if timeout_ms != 0
                && idle > timeout_ms
                && !shared.has_flag(flag::REPLICA | flag::MASTER | flag::BLOCKED | flag::PUBSUB)
            {
                doomed.push(key);
                continue;
            }
            if c.soft_since != 0 && over_obuf_limit(&srv, c, false) {
                doomed.push(key);
                continue;
            }
            shrink_buffers(c, idle);
            // Recounted here too: a write that gave memory back does not recount.
            if !c.client.shared.killed.load(Relaxed) {
                let mem = conn_mem(c);
                srv.clients.set_mem(&c.client.shared, mem);
            }
        }
        for key in doomed {
            self.close(key);
        }
        let limit = srv.config.hot.maxmemory_clients.load(Relaxed) as usize;
        if srv.clients.over_limit(limit, true) && srv.clients.evict(limit) > 0 {
            srv.wake_workers();
        }
    }

    /// Reads and runs what connection `key` sent (see [`read_and_run`]), then closes it,
    /// or counts its memory, tracks it if it blocked and writes its replies.
    fn on_readable(&mut self, key: usize, hup: bool) {
        let ran = self.run_on(key, |ex, c| {
            let read = read_and_run(ex, c, hup, false);
            if matches!(read, Input::Closed) {
                return true;
            }
            account(ex.srv, c);
            false
        });
        if let Some(close) = ran {
            self.settle(key, close);
        }
    }

    /// Runs `f` on connection `key` (if open) with this worker's command executor.
    fn run_on<R>(
        &mut self,
        key: usize,
        f: impl FnOnce(&mut Exec<'_>, &mut Conn) -> R,
    ) -> Option<R> {
        let srv = self.srv.clone();
        let mut ex = Exec {
            srv: &srv,
            wstats: &srv.workers[self.id],
            kstats: &mut self.kstats,
            last_ms: 0,
        };
        with_conn(&self.conns, key, |c| f(&mut ex, c))
    }

    /// After a connection ran commands: closes it if it must, else tracks it if it
    /// blocked and writes its replies.
    fn settle(&mut self, key: usize, close: bool) {
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
        let Some((postponed, blocked)) = with_conn(&self.conns, key, |c| {
            (
                c.client.postponed.then(|| c.client.shared.clone()),
                c.client.blocked,
            )
        }) else {
            return;
        };
        if let Some(shared) = postponed.filter(|_| !self.postponed.contains(&key)) {
            self.srv.pause.note_postponed(true);
            shared.set_flag(flag::BLOCKED, true);
            self.postponed.push(key);
        }
        let Some(b) = blocked else {
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
        let Some(Some(b)) = with_conn(&self.conns, key, |c| {
            let b = c.client.blocked.take()?;
            c.client.shared.set_flag(flag::BLOCKED, false);
            crate::dispatch::timing_unblocked(&srv, &mut c.client, reply);
            c.out.extend_from_slice(reply);
            Some(b)
        }) else {
            return;
        };
        self.deadlines.remove(&(b.deadline_ms, b.token));
        self.resume(key);
    }

    /// Runs the commands a connection held back (behind a blocking command, or by CLIENT
    /// PAUSE) and then writes, closes or tracks it as it now stands.
    fn resume(&mut self, key: usize) {
        let ran = self.run_on(key, |ex, c| {
            let (close, _) = run_commands(ex, c, false);
            c.client.shared.last_ms.store(unix_ms(), Relaxed);
            store_qbuf(c);
            close
        });
        if let Some(close) = ran {
            self.settle(key, close);
        }
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
        for key in std::mem::take(&mut self.postponed) {
            let was_held = with_conn(&self.conns, key, |c| {
                c.client.postponed = false;
                c.client.shared.set_flag(flag::BLOCKED, false);
            });
            if was_held.is_some() {
                self.srv.pause.note_postponed(false);
                self.resume(key);
            }
        }
    }

    /// Answers blocked clients whose timeout has passed with a null, as Redis does. The
    /// clock has millisecond steps and the deadline was taken from a truncated "now": only
    /// once the clock is past the deadline has the whole timeout surely elapsed.
    fn expire_blocked(&mut self, now: u64) {
        while let Some(&(deadline, token)) = self.deadlines.first() {
            if deadline >= now {
                break;
            }
            self.deadlines.pop_first();
            // A waiter served meanwhile has its reply in the mailbox: leave it to that.
            if !self.srv.blocked.cancel(&self.srv, token) {
                continue;
            }
            let Some(&key) = self.blocked.get(&token) else {
                continue;
            };
            let Some(proto) = with_conn(&self.conns, key, |c| c.client.proto) else {
                continue;
            };
            let mut reply = Vec::new();
            Reply::new(&mut reply, proto).null_array();
            self.unblocked(token, &reply);
        }
    }

    /// Writes pending replies; closes the connection if it is done (QUIT, protocol error)
    /// or is a subscriber whose unwritten output passed its limits.
    fn flush(&mut self, key: usize) {
        let srv = self.srv.clone();
        let close = with_conn(&self.conns, key, |c| {
            let capacity = c.out.capacity();
            let ok = write_out(&srv, c, &srv.workers[self.id]);
            c.client.shared.obuf.store(c.out.len() - c.wpos, Relaxed);
            // Output limits matter only while some output is unwritten (or just was).
            if !ok
                || (c.client.close_after_reply
                    && c.wpos == c.out.len()
                    && !c.tls.as_ref().is_some_and(|t| t.pending()))
                || ((c.wpos < c.out.len() || c.soft_since != 0) && over_obuf_limit(&srv, c, true))
            {
                return true;
            }
            // Unwritten output (a client that doesn't read, or deliveries piling up) is
            // memory to count; so is a buffer the write gave back.
            if c.wpos < c.out.len() || c.out.capacity() != capacity {
                account(&srv, c);
            }
            false
        });
        if close == Some(true) {
            self.close(key);
        }
    }

    /// Finishes the connections the busy pump served while a script ran: closes those it
    /// found closed, runs what the others still hold and writes their replies. A key
    /// reused since by a new connection is left alone.
    fn finish_served(&mut self) {
        let served = self.served.take();
        for busy::ServedConn { key, id, closed } in served {
            if with_conn(&self.conns, key, |c| c.client.id) != Some(id) {
                continue;
            }
            if closed {
                self.close(key);
            } else {
                self.resume(key);
            }
        }
    }
}

/// Counts the memory `c` holds (CLIENT LIST tot-mem) into the clients' total and evicts
/// clients if that total is over `maxmemory-clients`. A connection serving small commands
/// keeps the same figure, so this costs a few loads then.
fn account(srv: &Server, c: &mut Conn) {
    if c.client.shared.killed.load(Relaxed) {
        return;
    }
    let mem = conn_mem(c);
    srv.clients.set_mem(&c.client.shared, mem);
    let limit = srv.config.hot.maxmemory_clients.load(Relaxed) as usize;
    if srv.clients.over_limit(limit, false) && srv.clients.evict(limit) > 0 {
        srv.wake_workers();
    }
}

/// Reads everything available on `c`, running each complete command as soon as it is
/// parsed. Returns true if the connection must close now.
///
/// Readiness is edge-triggered, so the socket must be drained; but a read that returns
/// less than the room it was given has emptied the kernel buffer, and any later data
/// raises a new edge. Stopping there saves the extra `read` that would only say
/// EAGAIN — one syscall per request at pipeline depth 1. When the peer has hung up
/// (`hup`), reading goes on until it returns 0, because no further edge will come.
/// A blocked client's input is read and kept, but runs only once it is unblocked.
/// A TLS session reads until WouldBlock instead: the kernel buffer may be drained while
/// the session still holds decrypted data that no new edge would announce.
/// `busy`: the busy pump is reading (see [`run_commands`]).
fn read_and_run(ex: &mut Exec<'_>, c: &mut Conn, hup: bool, busy: bool) -> Input {
    let srv = ex.srv;
    let qbuf_limit = srv.config.hot.client_query_buffer_limit.load(Relaxed) as usize;
    let mut close = false;
    let mut got = false;
    let mut want = READ_CHUNK;
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
            // A big argument gets exactly the room it asked for (which already grows at
            // most by doubling); small reads round up to keep resizes rare.
            let new_len = if want > READ_CHUNK {
                c.end + want
            } else {
                (c.end + want).next_power_of_two()
            };
            c.rbuf.reserve_exact(new_len - c.rbuf.len());
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
        got = true;
        c.end += n;
        c.qb_peak = c.qb_peak.max(c.end - c.start);
        ex.wstats.net_input_bytes.add(n as u64);
        ex.wstats.reads.add(1);
        let (must_close, hint) = run_commands(ex, c, busy);
        want = hint;
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
        if c.out.len() - c.wpos >= FLUSH_AT && !write_out(srv, c, ex.wstats) {
            close = true;
            break;
        }
        if n < room && !hup && c.tls.is_none() {
            break;
        }
    }
    if close {
        return Input::Closed;
    }
    if !got {
        return Input::Nothing;
    }
    let now = if ex.last_ms == 0 {
        unix_ms()
    } else {
        ex.last_ms
    };
    c.client.shared.last_ms.store(now, Relaxed);
    store_qbuf(c);
    Input::Ran
}

/// What [`read_and_run`] found on a connection.
enum Input {
    /// Nothing to read.
    Nothing,
    /// Input, now run as far as it could be.
    Ran,
    /// The connection must close: the peer hung up, a read or write failed, or the client
    /// broke a limit.
    Closed,
}

/// Runs every complete command in the connection's read buffer, stopping early when the
/// client blocks or must close. Returns (close now, bytes the next read should make room
/// for). `busy`: a script on this thread holds every shard lock, so a command that would
/// lock keys stops the run (see [`busy::must_wait`]); it runs once the script is over.
fn run_commands(ex: &mut Exec<'_>, c: &mut Conn, busy: bool) -> (bool, usize) {
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
                if busy && busy::must_wait(args) {
                    break;
                }
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
                // Past OBUF_CHECK_MIN of pending output, the output buffer limits are
                // checked after every command: a pipeline of big replies is cut off at
                // the limit, and nothing of it is sent, as in Redis.
                if c.out.len() - c.wpos >= OBUF_CHECK_MIN && over_obuf_limit(ex.srv, c, true) {
                    return (true, want);
                }
            }
            Ok(Parsed::Empty { consumed }) => c.start += consumed,
            Ok(Parsed::Incomplete { hint }) => {
                // Room for the rest of a big argument, but never more than what has
                // arrived so far: memory follows the bytes a client really sends, not
                // the length it announces.
                if let Some(total) = hint {
                    let buffered = c.end - c.start;
                    let rest = total.saturating_sub(buffered);
                    want = want.max(rest.min(buffered.max(READ_CHUNK)));
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

/// The output buffer limits of a client's class (`client-output-buffer-limit`): hard
/// bytes, soft bytes, soft seconds. A master counts as normal, as in Redis.
fn class_limits(srv: &Server, shared: &ClientShared) -> [u64; 3] {
    let class = match shared.client_type() {
        ClientType::Normal | ClientType::Master => 0,
        ClientType::Replica => 1,
        ClientType::Pubsub => 2,
    };
    let l = &srv.config.hot.obuf_limits[class];
    [l[0].load(Relaxed), l[1].load(Relaxed), l[2].load(Relaxed)]
}

/// True if `c`'s unwritten output is at or over its class's hard limit, or has stayed at
/// or over the soft limit for longer than allowed (the clock starts when it first gets
/// there and stops when it drops under). Logs the disconnection as Redis does; `asap` is
/// Redis's wording for a check made while replies are being produced.
fn over_obuf_limit(srv: &Server, c: &mut Conn, asap: bool) -> bool {
    let pending = (c.out.len() - c.wpos) as u64;
    let [hard, soft, secs] = class_limits(srv, &c.client.shared);
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
        let shared = &c.client.shared;
        let name = shared.name.lock().clone().unwrap_or_default();
        eprintln!(
            "Client id={} addr={} name={} omem={pending} {} for overcoming of output buffer limits.",
            c.client.id,
            shared.addr,
            String::from_utf8_lossy(&name),
            if asap { "scheduled to be closed ASAP" } else { "closed" }
        );
    }
    over
}

/// The memory a connection holds: its buffers, its open transaction, WATCHed keys and
/// subscriptions, and a fixed overhead. What CLIENT LIST shows as tot-mem and
/// `maxmemory-clients` adds up.
fn conn_mem(c: &mut Conn) -> usize {
    let client = &c.client;
    let shared = &client.shared;
    let mut mem = CONN_OVERHEAD + c.rbuf.len() + c.out.capacity() + client.pushes.capacity();
    mem += client.watched.capacity() * (std::mem::size_of::<Watched>() + 32);
    let subs = shared.sub.load(Relaxed) + shared.psub.load(Relaxed) + shared.ssub.load(Relaxed);
    mem += subs as usize * 64;
    match &client.multi {
        None => c.multi_seen = (0, 0),
        Some(m) => {
            let (mut seen, mut bytes) = c.multi_seen;
            if m.queued.len() < seen {
                (seen, bytes) = (0, 0);
            }
            for q in &m.queued[seen..] {
                let args = q.args.as_args();
                bytes +=
                    std::mem::size_of::<Queued>() + args.iter().map(|a| a.len() + 8).sum::<usize>();
            }
            c.multi_seen = (m.queued.len(), bytes);
            mem += bytes;
        }
    }
    mem
}

/// Shrinks the buffers of a quiet connection: an idle one (`IDLE_SHRINK_MS`) gives back
/// its empty query buffer and output buffer, a busy one shrinks a query buffer grown for a
/// big argument to what it recently needed.
fn shrink_buffers(c: &mut Conn, idle_ms: u64) {
    let peak = std::mem::take(&mut c.qb_peak);
    let mut changed = false;
    if c.start == c.end && c.client.blocked.is_none() && !c.client.postponed {
        let len = c.rbuf.len();
        let target = if idle_ms >= IDLE_SHRINK_MS {
            0
        } else if len > 2 * READ_CHUNK && len / 2 > peak {
            peak.max(READ_CHUNK)
        } else {
            len
        };
        if target < len {
            c.rbuf = vec![0; target];
            (c.start, c.end) = (0, 0);
            changed = true;
        }
    }
    if idle_ms >= IDLE_SHRINK_MS && c.out.is_empty() && c.out.capacity() > 0 {
        c.out = Vec::new();
        changed = true;
    }
    if changed {
        store_qbuf(c);
    }
}

/// Publishes the query buffer's fill and free room (CLIENT LIST qbuf=, qbuf-free=).
fn store_qbuf(c: &Conn) {
    let used = c.end - c.start;
    c.client.shared.qbuf.store(used, Relaxed);
    c.client
        .shared
        .qbuf_free
        .store(c.rbuf.len() - used, Relaxed);
}

/// `tcp-keepalive`: TCP keepalive probes after `secs` of silence, then every third of
/// that, as Redis sets them, so dead peers are noticed and middleboxes keep the
/// connection open. 0 leaves the socket as it is.
fn set_keepalive(stream: &TcpStream, secs: u64) {
    if secs == 0 {
        return;
    }
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(secs))
        .with_interval(Duration::from_secs((secs / 3).max(1)))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
        eprintln!("Could not set TCP keepalive: {e}");
    }
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
