//! Per-connection client state, and the registry that lets CLIENT LIST / CLIENT KILL see
//! clients on every worker thread.
//!
//! A [`Client`] is owned by its worker and touched without locks. The few facts other threads
//! need (name, db, last command, idle time, kill requests) live in its [`ClientShared`], as
//! atomics written by the owner, so the hot path never takes a lock for them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed,
};
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
    /// False until AUTH/HELLO AUTH succeeds when the default user needs a password
    /// (`requirepass`).
    pub authenticated: bool,
    /// The user this client is authenticated as; `None` is the default user.
    pub user: Option<Arc<crate::acl::User>>,
    /// Set while the client waits in a blocking command: its connection runs nothing else
    /// until the waiter is served, times out or is unblocked.
    pub blocked: Option<crate::blocking::Blocked>,
    /// The command that blocked (table id, arguments, time its first run took in ns): the
    /// slow log and latency histogram record it when it is served, as Redis does.
    pub blocked_cmd: Option<(usize, flowkv_protocol::OwnedArgs, u64)>,
    /// The next command waits for CLIENT PAUSE to end: it stays unparsed in the query
    /// buffer and the connection runs nothing until its worker retries it.
    pub postponed: bool,
    /// The open transaction, between MULTI and EXEC/DISCARD.
    pub multi: Option<crate::transaction::MultiState>,
    /// Keys this client WATCHes.
    pub watched: Vec<crate::transaction::Watched>,
    /// Channels, patterns and shard channels this client subscribes to.
    pub subs: crate::pubsub::Subscriptions,
    /// Pub/sub output produced for this client while its command runs (subscribe
    /// confirmations, messages it published to itself, notifications its command raised).
    /// It goes out ahead of the command's reply and, as in Redis, even when CLIENT REPLY
    /// silences replies.
    pub pushes: Vec<u8>,
    /// A script this client runs has called a read-only command: its declared keys are
    /// remembered for tracking when it ends (see `dispatch`).
    pub script_read: bool,
    pub shared: Arc<ClientShared>,
}

/// Client flags other threads read (CLIENT LIST `flags=`, TYPE filters), bits of
/// [`ClientShared::flags`]. Each is set and cleared by the code that owns that state.
pub mod flag {
    /// A replica connected to us (`S`).
    pub const REPLICA: u32 = 1 << 0;
    /// A MONITOR client (`O`); set together with [`REPLICA`], as Redis does.
    pub const MONITOR: u32 = 1 << 1;
    /// The connection to our master (`M`).
    pub const MASTER: u32 = 1 << 2;
    /// Subscribed to at least one channel or pattern (`P`).
    pub const PUBSUB: u32 = 1 << 3;
    /// Inside MULTI (`x`).
    pub const MULTI: u32 = 1 << 4;
    /// Waiting in a blocking command (`b`).
    pub const BLOCKED: u32 = 1 << 5;
    /// A WATCHed key changed: EXEC will fail (`d`).
    pub const DIRTY_CAS: u32 = 1 << 6;
    /// A cluster replica connection that READONLY allowed to read (`r`).
    pub const READONLY: u32 = 1 << 7;
    /// CLIENT NO-EVICT ON: never evicted by `maxmemory-clients` (`e`).
    pub const NO_EVICT: u32 = 1 << 8;
    /// CLIENT TRACKING is on (`t`).
    pub const TRACKING: u32 = 1 << 9;
    /// The tracking redirect target has disconnected (`R`).
    pub const BROKEN_REDIR: u32 = 1 << 10;
    /// Tracking in BCAST mode (`B`).
    pub const BCAST: u32 = 1 << 11;
    /// Tracking in OPTIN mode (not shown).
    pub const OPTIN: u32 = 1 << 12;
    /// Tracking in OPTOUT mode (not shown).
    pub const OPTOUT: u32 = 1 << 13;
    /// Tracking in NOLOOP mode (not shown).
    pub const NOLOOP: u32 = 1 << 14;
    /// CLIENT CACHING YES/NO applies to the next command (not shown).
    pub const CACHING: u32 = 1 << 15;
    /// CLIENT NO-TOUCH ON: lookups keep the keys' LRU/LFU bits (`T`).
    pub const NO_TOUCH: u32 = 1 << 16;

    /// Flag letters in the order CLIENT LIST prints them.
    pub(crate) const LETTERS: &[(u32, char)] = &[
        (MASTER, 'M'),
        (PUBSUB, 'P'),
        (MULTI, 'x'),
        (BLOCKED, 'b'),
        (TRACKING, 't'),
        (BROKEN_REDIR, 'R'),
        (BCAST, 'B'),
        (DIRTY_CAS, 'd'),
        (READONLY, 'r'),
        (NO_EVICT, 'e'),
        (NO_TOUCH, 'T'),
    ];
}

/// The class of a client, for CLIENT LIST TYPE / CLIENT KILL TYPE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientType {
    Normal,
    Replica,
    Pubsub,
    Master,
}

impl ClientType {
    /// Parses a type name as CLIENT LIST/KILL accept it (`slave` is an alias of `replica`).
    pub fn parse(name: &[u8]) -> Option<ClientType> {
        match name.to_ascii_lowercase().as_slice() {
            b"normal" => Some(ClientType::Normal),
            b"replica" | b"slave" => Some(ClientType::Replica),
            b"pubsub" => Some(ClientType::Pubsub),
            b"master" => Some(ClientType::Master),
            _ => None,
        }
    }
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
    /// Unused room in the query buffer (qbuf-free=).
    pub qbuf_free: AtomicUsize,
    /// The memory the connection holds as its worker last counted it (tot-mem=, and its
    /// share of the `maxmemory-clients` total); changed only through [`Registry::set_mem`].
    pub mem: AtomicUsize,
    /// [`flag`] bits.
    pub flags: AtomicU32,
    /// Channels, patterns and shard channels subscribed to (sub=, psub=, ssub=); kept by
    /// the pub/sub code.
    pub sub: AtomicU32,
    pub psub: AtomicU32,
    pub ssub: AtomicU32,
    /// Commands queued inside MULTI (multi=), -1 outside MULTI; kept by the MULTI code.
    pub multi: AtomicI32,
    /// CLIENT TRACKING's redirect (redir=): -1 when tracking is off, 0 when not redirected;
    /// kept by the tracking code.
    pub redir: AtomicI64,
    pub name: Mutex<Option<Vec<u8>>>,
    pub lib_name: Mutex<Option<Vec<u8>>>,
    pub lib_ver: Mutex<Option<Vec<u8>>>,
    /// The user the client is authenticated as (`None`: the default user), for CLIENT
    /// LIST/KILL and for disconnecting a deleted user's clients; set by [`Client::set_user`].
    pub user: Mutex<Option<Arc<crate::acl::User>>>,
    /// Set by CLIENT KILL; the owning worker closes the connection when it sees it.
    pub killed: AtomicBool,
    /// Which worker owns the connection (to wake it after a kill).
    pub worker: usize,
    /// A replica's REPLCONF listening-port (INFO's slaveN port), 0 if not told.
    pub repl_port: AtomicU32,
}

impl ClientShared {
    /// A freshly connected client's view: RESP2, database 0, no name, no flags.
    pub fn new(
        id: u64,
        addr: SocketAddr,
        laddr: SocketAddr,
        fd: i32,
        now_ms: u64,
        worker: usize,
    ) -> ClientShared {
        ClientShared {
            id,
            addr,
            laddr,
            fd,
            created_ms: now_ms,
            last_ms: now_ms.into(),
            db: 0.into(),
            last_cmd: 0.into(),
            resp: 2.into(),
            qbuf: 0.into(),
            obuf: 0.into(),
            qbuf_free: 0.into(),
            mem: 0.into(),
            flags: 0.into(),
            sub: 0.into(),
            psub: 0.into(),
            ssub: 0.into(),
            multi: (-1).into(),
            redir: (-1).into(),
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
            user: Mutex::new(None),
            killed: false.into(),
            worker,
            repl_port: AtomicU32::new(0),
        }
    }

    /// True if the client is authenticated as `user`.
    pub fn is_user(&self, user: &Arc<crate::acl::User>) -> bool {
        match self.user.lock().as_ref() {
            Some(u) => Arc::ptr_eq(u, user),
            None => &*user.name == b"default",
        }
    }

    /// The name of the client's user (CLIENT LIST `user=`).
    pub fn user_name(&self) -> String {
        self.user
            .lock()
            .as_ref()
            .map_or_else(|| "default".to_string(), |u| u.name_str())
    }

    /// Milliseconds since the last command.
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_ms.load(Relaxed))
    }

    /// True if any bit of `f` (from [`flag`]) is set.
    pub fn has_flag(&self, f: u32) -> bool {
        self.flags.load(Relaxed) & f != 0
    }

    /// Sets or clears [`flag`] bits.
    pub fn set_flag(&self, f: u32, on: bool) {
        if on {
            self.flags.fetch_or(f, Relaxed);
        } else {
            self.flags.fetch_and(!f, Relaxed);
        }
    }

    /// The client's class. A MONITOR client is marked as a replica but counts as normal.
    pub fn client_type(&self) -> ClientType {
        let f = self.flags.load(Relaxed);
        if f & flag::MASTER != 0 {
            ClientType::Master
        } else if f & flag::REPLICA != 0 && f & flag::MONITOR == 0 {
            ClientType::Replica
        } else if f & flag::PUBSUB != 0 {
            ClientType::Pubsub
        } else {
            ClientType::Normal
        }
    }

    /// CLIENT LIST's `obl=` and `oll=` for the unwritten output: Redis keeps the first 16 KB
    /// of replies in a fixed buffer and the rest in a list of 16 KB blocks, so these are the
    /// bytes in the first part and the number of blocks the rest would fill.
    pub fn reply_blocks(&self) -> (usize, usize) {
        const BLOCK: usize = 16 * 1024;
        let pending = self.obuf.load(Relaxed);
        let obl = pending.min(BLOCK);
        (obl, (pending - obl).div_ceil(BLOCK))
    }

    /// True if `maxmemory-clients` may evict this client: a normal or pub/sub client
    /// without CLIENT NO-EVICT (never a master or replica), as in Redis.
    pub fn evictable(&self) -> bool {
        !self.has_flag(flag::NO_EVICT)
            && matches!(self.client_type(), ClientType::Normal | ClientType::Pubsub)
    }

    /// The `flags=` letters of CLIENT LIST (`N` when none is set).
    pub fn flag_letters(&self) -> String {
        let f = self.flags.load(Relaxed);
        let mut out = String::new();
        if f & flag::REPLICA != 0 {
            out.push(if f & flag::MONITOR != 0 { 'O' } else { 'S' });
        }
        for &(bit, letter) in flag::LETTERS {
            if f & bit != 0 {
                out.push(letter);
            }
        }
        if out.is_empty() {
            out.push('N');
        }
        out
    }
}

impl Client {
    /// A new client in RESP2 on database 0; `authenticated` is false when the default user
    /// needs a password.
    pub fn new(shared: Arc<ClientShared>, authenticated: bool) -> Client {
        Client {
            id: shared.id,
            db: 0,
            proto: Proto::Resp2,
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            authenticated,
            user: None,
            blocked: None,
            blocked_cmd: None,
            postponed: false,
            multi: None,
            watched: Vec::new(),
            subs: Default::default(),
            pushes: Vec::new(),
            script_read: false,
            shared,
        }
    }

    /// Authenticates as `user` (`None`: the default user), keeping the shared view in step.
    pub fn set_user(&mut self, user: Option<Arc<crate::acl::User>>) {
        let user = user.filter(|u| &*u.name != b"default");
        *self.shared.user.lock() = user.clone();
        self.user = user;
        self.authenticated = true;
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
    /// The sum of every connection's [`ClientShared::mem`].
    mem: AtomicUsize,
    /// Clients disconnected by `maxmemory-clients` (INFO `evicted_clients`).
    pub evicted: AtomicU64,
    /// The total at which eviction last ended still over the limit (only unevictable
    /// clients left): connections' events don't retry until the total changes.
    stuck_at: AtomicUsize,
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

    /// Records that connection `c` now holds `mem` bytes. Costs one load when unchanged,
    /// which is the steady state of a connection serving small commands.
    pub fn set_mem(&self, c: &ClientShared, mem: usize) {
        if c.mem.load(Relaxed) == mem {
            return;
        }
        let old = c.mem.swap(mem, Relaxed);
        if mem >= old {
            self.mem.fetch_add(mem - old, Relaxed);
        } else {
            self.mem.fetch_sub(old - mem, Relaxed);
        }
    }

    /// The memory all connections hold, as last counted.
    pub fn total_mem(&self) -> usize {
        self.mem.load(Relaxed)
    }

    /// True if the clients' total is at or over `limit` (0: no limit) and, unless `retry`,
    /// has changed since eviction last found nothing more to evict.
    pub fn over_limit(&self, limit: usize, retry: bool) -> bool {
        if limit == 0 {
            return false;
        }
        let total = self.total_mem();
        total >= limit && (retry || total != self.stuck_at.load(Relaxed))
    }

    /// Client eviction (`maxmemory-clients`): while the clients' total memory is at or over
    /// `limit`, disconnects the evictable client holding the most. Victims leave CLIENT LIST
    /// and the total at once; their workers close them when woken. Returns how many were
    /// evicted (the caller wakes the workers).
    pub fn evict(&self, limit: usize) -> usize {
        let mut clients = self.clients.lock();
        let mut total = self.total_mem();
        if total < limit {
            return 0;
        }
        let mut victims: Vec<(usize, u64)> = clients
            .values()
            .filter(|c| c.evictable() && !c.killed.load(Relaxed))
            .map(|c| (c.mem.load(Relaxed), c.id))
            .collect();
        victims.sort_unstable_by(|a, b| b.cmp(a));
        let mut evicted = 0;
        for (mem, id) in victims {
            if total < limit {
                break;
            }
            let Some(c) = clients.remove(&id) else {
                continue;
            };
            eprintln!(
                "Evicting client: id={id} addr={} name={} tot-mem={mem}",
                c.addr,
                String::from_utf8_lossy(&c.name.lock().clone().unwrap_or_default())
            );
            c.killed.store(true, Relaxed);
            self.set_mem(&c, 0);
            total = total.saturating_sub(mem);
            evicted += 1;
        }
        if total >= limit {
            if self.stuck_at.swap(total, Relaxed) != total {
                eprintln!("Over client maxmemory after evicting all evictable clients");
            }
        } else {
            self.stuck_at.store(0, Relaxed);
        }
        self.evicted.fetch_add(evicted as u64, Relaxed);
        evicted
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
