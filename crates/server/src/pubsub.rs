//! Pub/sub: the registry of channel, pattern and shard-channel subscribers every worker
//! shares, and the delivery of messages to them.
//!
//! A subscription lives in two places: the client's own [`Subscriptions`] (owned by its
//! worker, no lock) and the [`Hub`] (name → subscribers, behind one `RwLock` that never
//! nests a shard lock). PUBLISH looks the subscribers up under the read lock, encodes the
//! message once per protocol (RESP2 array, RESP3 push) and shares those bytes among the
//! recipients; after the lock is released it sends each worker one batch through its
//! mailbox. A worker appends the bytes to its connections' output in arrival order, so
//! messages from one publisher reach a subscriber in the order they were published, and
//! the publisher never waits for a subscriber. A subscriber whose pending output passes the
//! `client-output-buffer-limit pubsub` limits is disconnected by its worker, as in Redis.
//! A message to the publishing client itself goes straight into its own pending pushes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use flowkv_protocol::{Proto, Reply};
use flowkv_store::glob::glob_match;
use parking_lot::RwLock;

use crate::client::{flag, Client, ClientShared};
use crate::net::Msg;
use crate::server::Server;

/// The three kinds of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE: an exact channel name.
    Channel,
    /// PSUBSCRIBE: a glob pattern over channel names.
    Pattern,
    /// SSUBSCRIBE: a shard channel, a namespace of its own (one shard outside cluster mode).
    Shard,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    /// The first element of a subscribe confirmation.
    pub fn subscribe_name(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    /// The first element of an unsubscribe confirmation.
    pub fn unsubscribe_name(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }
}

/// What one client is subscribed to, kept by its worker.
#[derive(Default)]
pub struct Subscriptions {
    /// Channels and shard channels: sets, as Redis keeps them.
    channels: HashSet<Box<[u8]>>,
    shard: HashSet<Box<[u8]>>,
    /// Patterns in subscription order (a list in Redis too).
    patterns: Vec<Box<[u8]>>,
}

impl Subscriptions {
    /// The count a (un)subscribe confirmation of `kind` reports: channels plus patterns, or
    /// shard channels alone.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard.len(),
        }
    }

    /// True if subscribed to nothing at all.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty()
    }

    /// The names subscribed to under `kind`.
    pub fn names(&self, kind: Kind) -> Vec<Box<[u8]>> {
        match kind {
            Kind::Channel => self.channels.iter().cloned().collect(),
            Kind::Shard => self.shard.iter().cloned().collect(),
            Kind::Pattern => self.patterns.clone(),
        }
    }

    /// Adds a name; false if already there.
    fn add(&mut self, kind: Kind, name: &[u8]) -> bool {
        match kind {
            Kind::Channel => self.channels.insert(name.into()),
            Kind::Shard => self.shard.insert(name.into()),
            Kind::Pattern => {
                if self.patterns.iter().any(|p| **p == *name) {
                    return false;
                }
                self.patterns.push(name.into());
                true
            }
        }
    }

    /// Removes a name; false if it was not there.
    fn remove(&mut self, kind: Kind, name: &[u8]) -> bool {
        match kind {
            Kind::Channel => self.channels.remove(name),
            Kind::Shard => self.shard.remove(name),
            Kind::Pattern => match self.patterns.iter().position(|p| **p == *name) {
                Some(i) => {
                    self.patterns.remove(i);
                    true
                }
                None => false,
            },
        }
    }
}

/// Subscribers of each name, per kind.
type SubMap = HashMap<Box<[u8]>, Vec<Arc<ClientShared>>>;

/// The server-wide registry.
#[derive(Default)]
pub struct Hub {
    /// Indexed by [`Kind::index`].
    maps: RwLock<[SubMap; 3]>,
    /// Subscriptions of every kind over all clients; 0 lets PUBLISH and keyspace
    /// notifications skip all work.
    total: AtomicUsize,
}

impl Server {
    /// The pub/sub registry. It lives in a process-wide static (one server per process) so
    /// that this module needs no field in [`Server`]; moving it into one changes only this
    /// function.
    pub fn pubsub(&self) -> &Hub {
        static HUB: OnceLock<Hub> = OnceLock::new();
        HUB.get_or_init(Hub::default)
    }
}

impl Hub {
    /// True if nobody subscribes to anything.
    pub fn is_idle(&self) -> bool {
        self.total.load(Relaxed) == 0
    }

    /// Subscribes `client` to `name`; the confirmation is the caller's. Returns whether it
    /// is a new subscription.
    pub fn subscribe(&self, client: &mut Client, kind: Kind, name: &[u8]) -> bool {
        if !client.subs.add(kind, name) {
            return false;
        }
        self.maps.write()[kind.index()]
            .entry(name.into())
            .or_default()
            .push(client.shared.clone());
        self.total.fetch_add(1, Relaxed);
        sync_counts(client);
        true
    }

    /// Unsubscribes `client` from `name`. Returns whether it was subscribed.
    pub fn unsubscribe(&self, client: &mut Client, kind: Kind, name: &[u8]) -> bool {
        if !client.subs.remove(kind, name) {
            return false;
        }
        let mut maps = self.maps.write();
        let map = &mut maps[kind.index()];
        if let Some(list) = map.get_mut(name) {
            list.retain(|c| c.id != client.id);
            if list.is_empty() {
                map.remove(name);
            }
        }
        drop(maps);
        self.total.fetch_sub(1, Relaxed);
        sync_counts(client);
        true
    }

    /// Drops every subscription of `client` silently (disconnect, RESET).
    pub fn unsubscribe_all(&self, client: &mut Client) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in client.subs.names(kind) {
                self.unsubscribe(client, kind, &name);
            }
        }
    }

    /// The subscribers with at least one subscription for which `bad(client, kind, name)`
    /// holds (ACL changes disconnect subscribers that lost a channel).
    pub fn subscribers_where(
        &self,
        bad: impl Fn(&ClientShared, Kind, &[u8]) -> bool,
    ) -> Vec<Arc<ClientShared>> {
        let maps = self.maps.read();
        let mut found: Vec<Arc<ClientShared>> = Vec::new();
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for (name, subs) in &maps[kind.index()] {
                for c in subs {
                    if !found.iter().any(|f| f.id == c.id) && bad(c, kind, name) {
                        found.push(c.clone());
                    }
                }
            }
        }
        found
    }

    /// Number of subscribers of `name` (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn numsub(&self, kind: Kind, name: &[u8]) -> usize {
        self.maps.read()[kind.index()].get(name).map_or(0, Vec::len)
    }

    /// Distinct names with subscribers, per kind: (channels, patterns, shard channels).
    pub fn counts(&self) -> (usize, usize, usize) {
        let maps = self.maps.read();
        (maps[0].len(), maps[1].len(), maps[2].len())
    }

    /// Names of `kind` with subscribers that match `pattern` (all if `None`).
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Box<[u8]>> {
        self.maps.read()[kind.index()]
            .keys()
            .filter(|n| pattern.is_none_or(|p| glob_match(p, n, false)))
            .cloned()
            .collect()
    }

    /// Publishes `msg` on `channel` (a shard channel if `shard`): to the channel's
    /// subscribers and, for a normal channel, to every client whose pattern matches it.
    /// `me` is the publishing client, if any (it may be a subscriber: its copy goes to its
    /// pending pushes at once); `worker` the publishing worker, which drains its mailbox
    /// after the current command without being woken. Returns the number of receivers.
    pub fn publish(
        &self,
        srv: &Server,
        shard: bool,
        channel: &[u8],
        msg: &[u8],
        mut me: Option<&mut Client>,
        worker: Option<usize>,
    ) -> usize {
        if self.is_idle() {
            return 0;
        }
        let mut outbox = Outbox::new(srv.workers.len());
        let mut receivers = 0;
        {
            let maps = self.maps.read();
            let kind = if shard { Kind::Shard } else { Kind::Channel };
            if let Some(list) = maps[kind.index()].get(channel) {
                let head: &[u8] = if shard { b"smessage" } else { b"message" };
                let mut enc = Encoded::default();
                for c in list {
                    let bytes = enc.get(c, |out| {
                        out.push(3);
                        out.bulk(head);
                        out.bulk(channel);
                        out.bulk(msg);
                    });
                    outbox.add(c, bytes, me.as_deref_mut());
                    receivers += 1;
                }
            }
            if !shard {
                for (pattern, list) in maps[Kind::Pattern.index()].iter() {
                    if !glob_match(pattern, channel, false) {
                        continue;
                    }
                    let mut enc = Encoded::default();
                    for c in list {
                        let bytes = enc.get(c, |out| {
                            out.push(4);
                            out.bulk(b"pmessage");
                            out.bulk(pattern);
                            out.bulk(channel);
                            out.bulk(msg);
                        });
                        outbox.add(c, bytes, me.as_deref_mut());
                        receivers += 1;
                    }
                }
            }
        }
        outbox.send(srv, worker);
        receivers
    }
}

/// Keeps the client's shared counters (CLIENT LIST sub=/psub=/ssub=) and its `P` flag in
/// step with its subscriptions.
fn sync_counts(client: &Client) {
    let s = &client.subs;
    let shared = &client.shared;
    shared.sub.store(s.channels.len() as u32, Relaxed);
    shared.psub.store(s.patterns.len() as u32, Relaxed);
    shared.ssub.store(s.shard.len() as u32, Relaxed);
    shared.set_flag(flag::PUBSUB, !s.is_empty());
}

/// One message encoded lazily, once per protocol.
#[derive(Default)]
struct Encoded {
    resp2: Option<Arc<[u8]>>,
    resp3: Option<Arc<[u8]>>,
}

impl Encoded {
    /// The bytes for client `c`'s current protocol, encoding them with `write` on first use.
    fn get(&mut self, c: &ClientShared, write: impl FnOnce(&mut Reply<'_>)) -> Arc<[u8]> {
        let proto = if c.resp.load(Relaxed) == 3 {
            Proto::Resp3
        } else {
            Proto::Resp2
        };
        let slot = match proto {
            Proto::Resp2 => &mut self.resp2,
            Proto::Resp3 => &mut self.resp3,
        };
        slot.get_or_insert_with(|| {
            let mut buf = Vec::new();
            write(&mut Reply::new(&mut buf, proto));
            buf.into()
        })
        .clone()
    }
}

/// Messages to deliver, batched per worker.
struct Outbox {
    batches: Vec<Vec<(u64, Arc<[u8]>)>>,
}

impl Outbox {
    fn new(workers: usize) -> Outbox {
        Outbox {
            batches: vec![Vec::new(); workers],
        }
    }

    /// Queues `bytes` for subscriber `c`, or hands them to `me` if that is the subscriber.
    fn add(&mut self, c: &ClientShared, bytes: Arc<[u8]>, me: Option<&mut Client>) {
        match me {
            Some(me) if me.id == c.id => me.pushes.extend_from_slice(&bytes),
            _ => {
                if let Some(batch) = self.batches.get_mut(c.worker) {
                    batch.push((c.id, bytes));
                }
            }
        }
    }

    /// Sends each worker its batch; the publishing worker's own is not woken for.
    fn send(self, srv: &Server, worker: Option<usize>) {
        if self.batches.iter().all(Vec::is_empty) {
            return;
        }
        let boxes = srv.mailboxes.lock();
        for (w, batch) in self.batches.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            if let Some(mb) = boxes.get(w) {
                mb.send_with_wake(Msg::Deliver(batch), worker != Some(w));
            }
        }
    }
}

/// Commands a RESP2 client may run while subscribed.
pub fn allowed_when_subscribed(full_name: &str) -> bool {
    matches!(
        full_name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_keep_order_and_sets_dedupe() {
        let mut s = Subscriptions::default();
        assert!(s.add(Kind::Pattern, b"b*"));
        assert!(s.add(Kind::Pattern, b"a*"));
        assert!(!s.add(Kind::Pattern, b"b*"));
        assert!(s.add(Kind::Channel, b"x"));
        assert!(!s.add(Kind::Channel, b"x"));
        assert!(s.add(Kind::Shard, b"x"));
        assert_eq!(s.count(Kind::Channel), 3);
        assert_eq!(s.count(Kind::Shard), 1);
        assert_eq!(
            s.names(Kind::Pattern),
            vec![Box::from(&b"b*"[..]), b"a*"[..].into()]
        );
        assert!(s.remove(Kind::Pattern, b"b*"));
        assert!(!s.remove(Kind::Pattern, b"b*"));
    }
}
