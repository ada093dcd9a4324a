//! Client-side caching: CLIENT TRACKING and its invalidation messages (Redis 6+).
//!
//! A tracking client (default mode) has the keys of the read-only commands it runs
//! remembered in one server-wide table, key → client ids; when a key changes (or expires,
//! or is evicted from the table by `tracking-table-max-keys`) every client remembered for
//! it gets one invalidation message and the entry is dropped. BCAST clients are not
//! remembered: they get a message for every changed key under one of their prefixes.
//!
//! The options live as [`flag`] bits in the client's [`ClientShared`], so the command path
//! reads them with one atomic load and other threads (CLIENT LIST, invalidations sent from
//! any worker or from the expiry cycle) see them too. Messages travel as pub/sub output does
//! (`net::Msg::Deliver`), so an invalidation for the changing client itself arrives after
//! its reply. Trackers are held weakly: a disconnected client simply stops receiving, and
//! its entries are dropped the next time they are met.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};

use flowkv_protocol::{Proto, Reply};
use flowkv_store::Locked;
use parking_lot::Mutex;

use crate::client::{flag, Client, ClientShared};
use crate::net::{Msg, WorkerHandle};
use crate::server::Server;

/// The RESP2 channel redirected invalidations are published on.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// The options of CLIENT TRACKING ON, as parsed.
#[derive(Default)]
pub struct Opts {
    /// Client id to send invalidations to (0: the client itself).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Box<[u8]>>,
}

/// One tracking client.
struct Tracker {
    client: Weak<ClientShared>,
    /// Where its messages go (itself when not redirected).
    redirect: Option<Weak<ClientShared>>,
    redirect_id: u64,
    /// BCAST prefixes, in order.
    prefixes: Vec<Box<[u8]>>,
}

/// A changed key waiting for BCAST, with the client that changed it (if any).
type Changed = (Box<[u8]>, Option<u64>);

#[derive(Default)]
struct Inner {
    trackers: HashMap<u64, Tracker>,
    /// Key → ids of the clients that may cache it (default mode).
    table: HashMap<Box<[u8]>, HashSet<u64>>,
    /// Sum of the id sets' sizes (INFO `tracking_total_items`).
    items: usize,
    /// BCAST prefix → ids of the clients that registered it.
    prefixes: BTreeMap<Box<[u8]>, HashSet<u64>>,
    /// Changed keys waiting to be broadcast, per prefix, with the client that changed each.
    pending: BTreeMap<Box<[u8]>, Vec<Changed>>,
}

/// The server-wide tracking state.
#[derive(Default)]
pub struct Tracking {
    inner: Mutex<Inner>,
    /// Keys in the table, readable without the lock (the `tracking-table-max-keys` check).
    keys: AtomicUsize,
    /// `tracking-table-max-keys` (0: no limit), kept by [`refresh`].
    max_keys: AtomicI64,
    /// The workers' mailboxes, copied when tracking is first enabled (they never change
    /// once the server serves), so the expiry cycle can deliver without the [`Server`].
    mailboxes: OnceLock<Vec<WorkerHandle>>,
}

/// The one tracking state (one server per process, like the pub/sub hub).
fn state() -> &'static Tracking {
    static STATE: OnceLock<Tracking> = OnceLock::new();
    STATE.get_or_init(Tracking::default)
}

impl Server {
    /// The client-side caching state.
    pub fn tracking(&self) -> &'static Tracking {
        state()
    }
}

/// True if `prefix` and `other` overlap (one starts with the other).
fn overlaps(prefix: &[u8], other: &[u8]) -> bool {
    prefix.starts_with(other) || other.starts_with(prefix)
}

/// Re-reads `tracking-table-max-keys`.
pub fn refresh(srv: &Server) {
    let max = srv.config.get_u64("tracking-table-max-keys");
    state().max_keys.store(max as i64, Relaxed);
}

impl Tracking {
    /// CLIENT TRACKING ON with `opts` (already validated against the client's state, prefix
    /// collisions included). Enabling again keeps the earlier BCAST prefixes, as in Redis.
    pub fn enable(&self, srv: &Server, client: &Client, opts: Opts) {
        self.mailboxes
            .get_or_init(|| srv.mailboxes.lock().iter().cloned().collect());
        srv.keyspace.set_expired_hook(Box::new(|db, keys| {
            let keys: Vec<(usize, Box<[u8]>)> = keys.iter().map(|k| (db, k.clone())).collect();
            state().invalidate(&keys, None, None);
            state().flush_bcast(None);
        }));
        refresh(srv);
        let shared = &client.shared;
        let mut inner = self.inner.lock();
        let redirect = (opts.redirect != 0)
            .then(|| srv.clients.get(opts.redirect))
            .flatten()
            .map(|c| Arc::downgrade(&c));
        let tracker = inner.trackers.entry(client.id).or_insert(Tracker {
            client: Arc::downgrade(shared),
            redirect: None,
            redirect_id: 0,
            prefixes: Vec::new(),
        });
        tracker.redirect = redirect;
        tracker.redirect_id = opts.redirect;
        let mut added = Vec::new();
        if opts.bcast {
            let new: Vec<Box<[u8]>> = if opts.prefixes.is_empty() {
                vec![Box::from(&b""[..])]
            } else {
                opts.prefixes
            };
            for p in new {
                if !tracker.prefixes.contains(&p) {
                    tracker.prefixes.push(p.clone());
                    added.push(p);
                }
            }
        }
        for p in added {
            inner.prefixes.entry(p).or_default().insert(client.id);
        }
        srv.keyspace.set_trackers(inner.trackers.len());
        drop(inner);
        for (bit, on) in [
            (flag::TRACKING, true),
            (flag::BROKEN_REDIR, false),
            (flag::BCAST, opts.bcast),
            (flag::OPTIN, opts.optin),
            (flag::OPTOUT, opts.optout),
            (flag::NOLOOP, opts.noloop),
        ] {
            shared.set_flag(bit, on);
        }
        shared.redir.store(opts.redirect as i64, Relaxed);
    }

    /// CLIENT TRACKING OFF (and RESET): forgets the client's prefixes; its entries in the
    /// key table are skipped from now on and dropped when met.
    pub fn disable(&self, srv: &Server, client: &Client) {
        let shared = &client.shared;
        if !shared.has_flag(flag::TRACKING) {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(t) = inner.trackers.remove(&client.id) {
            for p in t.prefixes {
                remove_prefix(&mut inner, &p, client.id);
            }
        }
        srv.keyspace.set_trackers(inner.trackers.len());
        drop(inner);
        shared.set_flag(
            flag::TRACKING
                | flag::BROKEN_REDIR
                | flag::BCAST
                | flag::OPTIN
                | flag::OPTOUT
                | flag::NOLOOP
                | flag::CACHING,
            false,
        );
        shared.redir.store(-1, Relaxed);
    }

    /// The client's BCAST prefixes (CLIENT TRACKINGINFO, the collision check).
    pub fn prefixes(&self, id: u64) -> Vec<Box<[u8]>> {
        self.inner
            .lock()
            .trackers
            .get(&id)
            .map(|t| t.prefixes.clone())
            .unwrap_or_default()
    }

    /// Remembers that client `id` may now cache `keys` (a read-only command's keys).
    pub fn remember<'k>(&self, id: u64, keys: impl Iterator<Item = &'k [u8]>) {
        let mut inner = self.inner.lock();
        for k in keys {
            if inner.table.entry(k.into()).or_default().insert(id) {
                inner.items += 1;
            }
        }
        self.keys.store(inner.table.len(), Relaxed);
    }

    /// Sends invalidations for changed `keys` (db, key): to the clients remembered for
    /// each, and to BCAST clients with a matching prefix. `me` is the changing client (NOLOOP
    /// spares it); `worker` the calling worker (not woken: it drains its mailbox anyway).
    pub fn invalidate(&self, keys: &[(usize, Box<[u8]>)], me: Option<u64>, worker: Option<usize>) {
        if keys.is_empty() {
            return;
        }
        // Default mode: one message per key and client, now, as Redis sends them. BCAST:
        // keys wait per prefix for [`Tracking::flush_bcast`].
        let mut owned: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        for (_, key) in keys {
            if let Some(ids) = inner.table.remove(&**key) {
                inner.items -= ids.len();
                owned.extend(ids.into_iter().map(|id| (id, vec![key.to_vec()])));
            }
            for p in inner.prefixes.keys().filter(|p| key.starts_with(p)) {
                inner
                    .pending
                    .entry(p.clone())
                    .or_default()
                    .push((key.clone(), me));
            }
        }
        self.keys.store(inner.table.len(), Relaxed);
        let mut sends = Vec::new();
        for (id, list) in owned {
            let Some(t) = inner.trackers.get(&id) else {
                continue;
            };
            let Some(c) = t.client.upgrade() else {
                inner.trackers.remove(&id);
                continue;
            };
            // A client that switched to BCAST ignores what it cached before.
            if (me == Some(id) && c.has_flag(flag::NOLOOP)) || c.has_flag(flag::BCAST) {
                continue;
            }
            sends.push((c, t.redirect.clone(), t.redirect_id, Some(list)));
        }
        self.prune(inner);
        drop(guard);
        self.deliver(sends, worker);
    }

    /// Sends BCAST clients the keys changed under their prefixes since the last call: one
    /// message per prefix and client (Redis sends them before it next sleeps), leaving out
    /// a NOLOOP client's own changes.
    pub fn flush_bcast(&self, worker: Option<usize>) {
        let mut inner = self.inner.lock();
        if inner.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut inner.pending);
        let mut sends = Vec::new();
        for (p, keys) in pending {
            for &id in inner.prefixes.get(&p).into_iter().flatten() {
                let Some(t) = inner.trackers.get(&id) else {
                    continue;
                };
                let Some(c) = t.client.upgrade() else {
                    continue;
                };
                let noloop = c.has_flag(flag::NOLOOP);
                let list: Vec<Vec<u8>> = keys
                    .iter()
                    .filter(|(_, by)| !(noloop && *by == Some(id)))
                    .map(|(k, _)| k.to_vec())
                    .collect();
                if !list.is_empty() {
                    sends.push((c, t.redirect.clone(), t.redirect_id, Some(list)));
                }
            }
        }
        self.prune(&mut inner);
        drop(inner);
        self.deliver(sends, worker);
    }

    /// FLUSHALL / FLUSHDB: every tracking client gets a null invalidation ("flush your whole
    /// cache") and the key table empties.
    pub fn flush(&self, worker: Option<usize>) {
        let mut inner = self.inner.lock();
        inner.table.clear();
        inner.items = 0;
        self.keys.store(0, Relaxed);
        let sends = inner
            .trackers
            .values()
            .filter_map(|t| {
                let c = t.client.upgrade()?;
                Some((c, t.redirect.clone(), t.redirect_id, None))
            })
            .collect();
        self.prune(&mut inner);
        drop(inner);
        self.deliver(sends, worker);
    }

    /// Keeps the key table within `tracking-table-max-keys`: drops keys (invalidating them
    /// for their clients) until it fits again.
    pub fn enforce_limit(&self, worker: Option<usize>) {
        let max = self.max_keys.load(Relaxed);
        if max <= 0 || self.keys.load(Relaxed) <= max as usize {
            return;
        }
        let victims: Vec<(usize, Box<[u8]>)> = {
            let inner = self.inner.lock();
            let excess = inner.table.len().saturating_sub(max as usize);
            inner
                .table
                .keys()
                .take(excess)
                .map(|k| (0, k.clone()))
                .collect()
        };
        self.invalidate(&victims, None, worker);
    }

    /// Drops trackers whose client is gone (the keyspace's tracker count catches up at the
    /// next enable, disable or INFO).
    fn prune(&self, inner: &mut Inner) {
        let gone: Vec<u64> = inner
            .trackers
            .iter()
            .filter(|(_, t)| t.client.strong_count() == 0)
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            if let Some(t) = inner.trackers.remove(&id) {
                for p in t.prefixes {
                    remove_prefix(inner, &p, id);
                }
            }
        }
    }

    /// INFO: (tracking clients, keys, items, prefixes).
    pub fn info(&self, srv: &Server) -> (usize, usize, usize, usize) {
        let mut inner = self.inner.lock();
        self.prune(&mut inner);
        srv.keyspace.set_trackers(inner.trackers.len());
        (
            inner.trackers.len(),
            inner.table.len(),
            inner.items,
            inner.prefixes.len(),
        )
    }

    /// Encodes and sends one message per (tracker, keys or flush).
    fn deliver(&self, sends: Vec<Send>, worker: Option<usize>) {
        let Some(boxes) = self.mailboxes.get() else {
            return;
        };
        let mut batches: Vec<Vec<(u64, Arc<[u8]>)>> = vec![Vec::new(); boxes.len()];
        for (tracker, redirect, redirect_id, keys) in sends {
            let (target, redirected) = match redirect {
                None if redirect_id == 0 => (tracker.clone(), false),
                r => match r.and_then(|w| w.upgrade()) {
                    Some(t) => (t, true),
                    None => {
                        // The redirect target is gone: tell a RESP3 tracker so.
                        tracker.set_flag(flag::BROKEN_REDIR, true);
                        if tracker.resp.load(Relaxed) == 3 {
                            let mut buf = Vec::new();
                            let mut r = Reply::new(&mut buf, Proto::Resp3);
                            r.push(2);
                            r.bulk(b"tracking-redir-broken");
                            r.int(redirect_id as i64);
                            if let Some(b) = batches.get_mut(tracker.worker) {
                                b.push((tracker.id, buf.into()));
                            }
                        }
                        continue;
                    }
                },
            };
            let mut buf = Vec::new();
            if target.resp.load(Relaxed) == 3 {
                let mut r = Reply::new(&mut buf, Proto::Resp3);
                r.push(2);
                r.bulk(b"invalidate");
                payload(&mut r, keys.as_deref());
            } else if redirected && target.has_flag(flag::PUBSUB) {
                let mut r = Reply::new(&mut buf, Proto::Resp2);
                r.array(3);
                r.bulk(b"message");
                r.bulk(CHANNEL);
                payload(&mut r, keys.as_deref());
            } else {
                continue;
            }
            if to_own_pushes(target.id, &buf) {
                continue;
            }
            if let Some(b) = batches.get_mut(target.worker) {
                b.push((target.id, buf.into()));
            }
        }
        for (w, batch) in batches.into_iter().enumerate() {
            if !batch.is_empty() {
                boxes[w].send_with_wake(Msg::Deliver(batch), worker != Some(w));
            }
        }
    }
}

thread_local! {
    /// While [`with_own_pushes`] runs on this thread: the client's id and the invalidation
    /// messages addressed to it so far.
    static OWN: RefCell<Option<(u64, Vec<u8>)>> = const { RefCell::new(None) };
}

/// Runs `f` (a command's pre-command eviction), appending the invalidation messages it
/// causes for client `id` to `pushes` instead of mailing them: they then go out ahead of
/// the command's reply, as Redis evicts (and invalidates) before it runs the command.
pub fn with_own_pushes<R>(id: u64, pushes: &mut Vec<u8>, f: impl FnOnce() -> R) -> R {
    OWN.with(|o| *o.borrow_mut() = Some((id, std::mem::take(pushes))));
    let r = f();
    if let Some((_, own)) = OWN.with(|o| o.borrow_mut().take()) {
        *pushes = own;
    }
    r
}

/// Appends `msg` to the pushes [`with_own_pushes`] collects, if it is for that client.
fn to_own_pushes(id: u64, msg: &[u8]) -> bool {
    OWN.with(|o| match o.borrow_mut().as_mut() {
        Some((own, pushes)) if *own == id => {
            pushes.extend_from_slice(msg);
            true
        }
        _ => false,
    })
}

/// A message to send: the tracker, its redirect (and id), and the keys (`None`: flush).
type Send = (
    Arc<ClientShared>,
    Option<Weak<ClientShared>>,
    u64,
    Option<Vec<Vec<u8>>>,
);

/// Writes the keys array, or the null that means "everything".
fn payload(r: &mut Reply<'_>, keys: Option<&[Vec<u8>]>) {
    match keys {
        Some(keys) => {
            r.array(keys.len());
            for k in keys {
                r.bulk(k);
            }
        }
        None => r.null(),
    }
}

/// Removes client `id` from prefix `p`, dropping the prefix when nobody has it.
fn remove_prefix(inner: &mut Inner, p: &[u8], id: u64) {
    if let Some(ids) = inner.prefixes.get_mut(p) {
        ids.remove(&id);
        if ids.is_empty() {
            inner.prefixes.remove(p);
        }
    }
}

/// Validates CLIENT TRACKING ON's options against the client's current mode, as Redis
/// does; returns the error line.
pub fn check_on(shared: &ClientShared, existing: &[Box<[u8]>], o: &Opts) -> Result<(), String> {
    if !o.bcast && !o.prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    if shared.has_flag(flag::TRACKING) && shared.has_flag(flag::BCAST) != o.bcast {
        return Err(
            "ERR You can't switch BCAST mode on/off before disabling tracking for \
                    this client, and then re-enabling it with a different mode."
                .into(),
        );
    }
    if o.bcast && (o.optin || o.optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if o.optin && o.optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if (o.optin && shared.has_flag(flag::OPTOUT)) || (o.optout && shared.has_flag(flag::OPTIN)) {
        return Err(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for \
                    this client, and then re-enabling it with a different mode."
                .into(),
        );
    }
    if o.bcast {
        for (i, p) in o.prefixes.iter().enumerate() {
            if let Some(old) = existing.iter().find(|e| overlaps(p, e)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a \
                     single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(old)
                ));
            }
            if let Some(other) = o.prefixes[i + 1..].iter().find(|q| overlaps(p, q)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for \
                     a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(other)
                ));
            }
        }
    }
    Ok(())
}

/// Whether a read-only command just run by a client with flags `f` makes its keys cached:
/// default mode always, OPTIN after CLIENT CACHING YES, OPTOUT unless CLIENT CACHING NO.
#[inline]
pub fn caches(f: u32) -> bool {
    if f & flag::TRACKING == 0 || f & flag::BCAST != 0 {
        return false;
    }
    let caching = f & flag::CACHING != 0;
    if f & flag::OPTIN != 0 {
        caching
    } else if f & flag::OPTOUT != 0 {
        !caching
    } else {
        true
    }
}

/// After a command's handler, under its locks: marks WATCHers of changed keys and returns
/// the keys whose caches must be invalidated once the locks are released.
pub fn take_changes(srv: &Server, locked: &mut Locked<'_>) -> Vec<(usize, Box<[u8]>)> {
    let touched = locked.take_touched();
    if !touched.is_empty() {
        srv.watches.touch(&touched);
    }
    locked.take_tracked()
}
