//! Per-connection client state, and the registry that lets CLIENT LIST / CLIENT KILL see
//! clients on every worker thread.
//!
//! A [`Client`] is owned by its worker and touched without locks. The few facts other threads
//! need (name, db, last command, idle time, kill requests) live in its [`ClientShared`], as
//! atomics written by the owner, so the hot path never takes a lock for them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use flowkv_protocol::Proto;
use parking_lot::Mutex;

/// What CLIENT REPLY asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
    /// Internal: the command after SKIP is running; back to `On` after it.
    SkipThis,
}

/// The state of one connection's client, owned by its worker.
pub struct Client {
    pub id: u64,
    pub db: usize,
    pub proto: Proto,
    pub reply_mode: ReplyMode,
    /// Set by QUIT (and by fatal errors): close once the pending replies are written.
    pub close_after_reply: bool,
    pub no_evict: bool,
    pub shared: Arc<ClientShared>,
}

/// Client facts other threads read (CLIENT LIST/INFO/KILL).
pub struct ClientShared {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub fd: i32,
    /// Creation time, unix ms.
    pub created_ms: u64,
    /// Last command time, unix ms (for idle= and `timeout`).
    pub last_ms: AtomicU64,
    pub db: AtomicUsize,
    /// Index of the last command run, in the command table's flat list (+1; 0 = none).
    pub last_cmd: AtomicU32,
    pub resp: AtomicU32,
    /// Bytes waiting in the query buffer / output buffer (qbuf=, omem=).
    pub qbuf: AtomicUsize,
    pub obuf: AtomicUsize,
    pub name: Mutex<Option<Vec<u8>>>,
    pub lib_name: Mutex<Option<Vec<u8>>>,
    pub lib_ver: Mutex<Option<Vec<u8>>>,
    /// Set by CLIENT KILL; the owning worker closes the connection when it sees it.
    pub killed: AtomicBool,
    /// Which worker owns the connection (to wake it after a kill).
    pub worker: usize,
}

impl ClientShared {
    /// Milliseconds since the last command.
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_ms.load(Relaxed))
    }
}

impl Client {
    /// A new client in RESP2 on database 0.
    pub fn new(shared: Arc<ClientShared>) -> Client {
        Client {
            id: shared.id,
            db: 0,
            proto: Proto::Resp2,
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            no_evict: false,
            shared,
        }
    }

    /// Selects a database, keeping the shared view in step.
    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.shared.db.store(db, Relaxed);
    }

    /// Switches protocol (HELLO), keeping the shared view in step.
    pub fn set_proto(&mut self, proto: Proto) {
        self.proto = proto;
        self.shared
            .resp
            .store(if proto == Proto::Resp3 { 3 } else { 2 }, Relaxed);
    }
}

/// Every connected client, by id, in id order (CLIENT LIST lists them that way).
#[derive(Default)]
pub struct Registry {
    clients: Mutex<BTreeMap<u64, Arc<ClientShared>>>,
    next_id: AtomicU64,
}

impl Registry {
    /// A fresh client id (never reused, starting at 1 like Redis).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed) + 1
    }

    pub fn add(&self, c: Arc<ClientShared>) {
        self.clients.lock().insert(c.id, c);
    }

    pub fn remove(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// A snapshot of all clients.
    pub fn all(&self) -> Vec<Arc<ClientShared>> {
        self.clients.lock().values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientShared>> {
        self.clients.lock().get(&id).cloned()
    }

    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
