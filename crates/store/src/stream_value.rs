//! Streams, laid out as Redis keeps them: an ordered map of nodes keyed by the ID of their
//! first ("master") entry, each node one packed byte block of up to `stream-node-max-entries`
//! entries / `stream-node-max-bytes` bytes.
//!
//! A node starts with its master fields (the fields of its first entry); an entry with the
//! same fields stores only its values ("same fields" flag), so a stream of uniform events
//! costs a few bytes of header plus the values per entry. IDs are stored as deltas from the
//! master ID. Deleting an entry only sets its "deleted" flag (a tombstone); a node whose
//! entries are all deleted is dropped. Layout of one node:
//!
//! `[nfields][field]...` then per entry
//! `[flags: u8][ms delta][seq (delta if same ms)]` + `[value]...` (same fields) or
//! `[nfields][field][value]...`, each number a LEB128 varint, each string varint length + bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Entry flag: deleted (kept as a tombstone until its node goes).
const DELETED: u8 = 1;
/// Entry flag: the entry's fields are its node's master fields; only values are stored.
const SAME_FIELDS: u8 = 2;

/// A stream entry ID: milliseconds and sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, or None past the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_add(1).map(|ms| StreamId::new(ms, 0)),
        }
    }

    /// The previous ID, or None before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_sub(1).map(|ms| StreamId::new(ms, u64::MAX)),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Node size limits (`stream-node-max-bytes`, `stream-node-max-entries`; 0 = no limit).
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

/// How to trim a stream (XADD/XTRIM's MAXLEN / MINID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Drop entries with a smaller ID.
    MinId(StreamId),
}

/// A consumer's handle inside its group: an index into the group's consumer slots, so a
/// pending entry names its owner in 4 bytes instead of a copy of the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerId(u32);

/// The owner of a pending entry loaded before its consumer (see
/// [`ConsumerGroup::load_pending`]).
const UNOWNED: ConsumerId = ConsumerId(u32::MAX);

/// A pending (delivered, not yet acknowledged) entry of a consumer group: 24 bytes, kept in
/// the group's PEL; the owner's own PEL holds just the ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Unix ms of the last delivery.
    pub delivery_time_ms: u64,
    /// How many times the entry was delivered.
    pub delivery_count: u64,
    /// The consumer it was delivered to.
    pub consumer: ConsumerId,
}

/// A consumer of a group.
#[derive(Clone, Debug)]
pub struct Consumer {
    name: Box<[u8]>,
    /// Unix ms of the consumer's last attempted interaction (XINFO CONSUMERS `idle`).
    pub seen_time_ms: u64,
    /// Unix ms of its last successful read or claim, `None` if it never had one (XINFO
    /// CONSUMERS `inactive`, as Redis 7.2 reports it).
    pub active_time_ms: Option<u64>,
    /// IDs of the entries pending for this consumer.
    pending: BTreeSet<StreamId>,
}

impl Consumer {
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Number of entries pending for this consumer.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The IDs pending for this consumer from `start` on, ascending.
    pub fn pending_from(&self, start: StreamId) -> impl Iterator<Item = StreamId> + '_ {
        self.pending.range(start..).copied()
    }
}

/// A consumer group: its last delivered ID and read counter, its pending entries list (PEL)
/// and its consumers.
#[derive(Clone, Debug, Default)]
pub struct ConsumerGroup {
    /// The last ID delivered to the group (XREADGROUP `>` reads above it).
    pub last_id: StreamId,
    /// Entries the group has read (its logical position in the stream, for the lag);
    /// `None` when unknown (Redis's -1 / "invalid").
    pub entries_read: Option<u64>,
    pel: BTreeMap<StreamId, Pending>,
    /// Consumers by handle; `None` marks a slot freed by a deleted consumer.
    slots: Vec<Option<Consumer>>,
    /// Handles of freed slots, reused first.
    free: Vec<u32>,
    /// Handles by name (the order XINFO CONSUMERS and XPENDING list them in).
    by_name: BTreeMap<Box<[u8]>, ConsumerId>,
}

/// Why [`ConsumerGroup::load_consumer`] refused loaded data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Two consumers with the same name.
    DuplicateConsumer,
    /// A consumer's pending ID is not in the group's PEL, or another consumer owns it.
    BadPending,
}

impl ConsumerGroup {
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> ConsumerGroup {
        ConsumerGroup {
            last_id,
            entries_read,
            ..ConsumerGroup::default()
        }
    }

    /// Number of pending entries.
    pub fn pending_len(&self) -> usize {
        self.pel.len()
    }

    /// The pending entry `id`, if any.
    pub fn pending(&self, id: StreamId) -> Option<&Pending> {
        self.pel.get(&id)
    }

    /// Pending entries with IDs in `start..=end`, ascending.
    pub fn pending_range(
        &self,
        start: StreamId,
        end: StreamId,
    ) -> impl DoubleEndedIterator<Item = (StreamId, &Pending)> + '_ {
        let r = if start <= end {
            self.pel.range(start..=end)
        } else {
            self.pel.range(StreamId::MAX..StreamId::MAX)
        };
        r.map(|(id, p)| (*id, p))
    }

    /// The consumer behind a handle taken from this group.
    pub fn consumer(&self, id: ConsumerId) -> &Consumer {
        self.slots[id.0 as usize]
            .as_ref()
            .expect("consumer handle of this group")
    }

    fn consumer_mut(&mut self, id: ConsumerId) -> &mut Consumer {
        self.slots[id.0 as usize]
            .as_mut()
            .expect("consumer handle of this group")
    }

    /// Number of consumers.
    pub fn consumer_count(&self) -> usize {
        self.by_name.len()
    }

    /// Every consumer, by name.
    pub fn consumers(&self) -> impl Iterator<Item = (ConsumerId, &Consumer)> + '_ {
        self.by_name.values().map(|&id| (id, self.consumer(id)))
    }

    /// The consumer called `name`, if any (its times untouched).
    pub fn find_consumer(&self, name: &[u8]) -> Option<ConsumerId> {
        self.by_name.get(name).copied()
    }

    /// Creates consumer `name`, seen now and never active. `None` if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now_ms: u64) -> Option<ConsumerId> {
        self.add_consumer(name, now_ms, None)
    }

    fn add_consumer(
        &mut self,
        name: &[u8],
        seen_time_ms: u64,
        active_time_ms: Option<u64>,
    ) -> Option<ConsumerId> {
        if self.by_name.contains_key(name) {
            return None;
        }
        let c = Consumer {
            name: name.into(),
            seen_time_ms,
            active_time_ms,
            pending: BTreeSet::new(),
        };
        let id = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(c);
                ConsumerId(slot)
            }
            None => {
                self.slots.push(Some(c));
                ConsumerId(self.slots.len() as u32 - 1)
            }
        };
        self.by_name.insert(name.into(), id);
        Some(id)
    }

    /// The consumer called `name`, created if missing, its seen time set to now (as a
    /// read or claim does). Returns its handle and whether it was created.
    pub fn consumer_for(&mut self, name: &[u8], now_ms: u64) -> (ConsumerId, bool) {
        match self.find_consumer(name) {
            Some(id) => {
                self.consumer_mut(id).seen_time_ms = now_ms;
                (id, false)
            }
            None => (
                self.create_consumer(name, now_ms).expect("name is free"),
                true,
            ),
        }
    }

    /// Records a successful read or claim by `id` (its `inactive` time restarts).
    pub fn mark_active(&mut self, id: ConsumerId, now_ms: u64) {
        let c = self.consumer_mut(id);
        c.seen_time_ms = now_ms;
        c.active_time_ms = Some(now_ms);
    }

    /// Deletes consumer `name` and its pending entries. Returns how many it had, `None` if
    /// there is no such consumer.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let id = self.by_name.remove(name)?;
        let c = self.slots[id.0 as usize].take().expect("live slot");
        for p in &c.pending {
            self.pel.remove(p);
        }
        self.free.push(id.0);
        Some(c.pending.len())
    }

    /// Delivers entry `id` to `consumer` as a new read does: a fresh pending entry (one
    /// delivery, now), taken from its previous owner if it had one (after XGROUP SETID).
    pub fn deliver(&mut self, id: StreamId, consumer: ConsumerId, now_ms: u64) {
        self.claim(id, consumer, now_ms, 1);
    }

    /// Delivers pending entry `id` again to its owner (XREADGROUP reading its history).
    pub fn redeliver(&mut self, id: StreamId, now_ms: u64) {
        if let Some(p) = self.pel.get_mut(&id) {
            p.delivery_time_ms = now_ms;
            p.delivery_count += 1;
        }
    }

    /// Makes `consumer` the owner of entry `id` with the given delivery time and count,
    /// creating the pending entry if needed (XCLAIM, XAUTOCLAIM).
    pub fn claim(&mut self, id: StreamId, consumer: ConsumerId, time_ms: u64, count: u64) {
        let new = Pending {
            delivery_time_ms: time_ms,
            delivery_count: count,
            consumer,
        };
        if let Some(old) = self.pel.insert(id, new) {
            if old.consumer == consumer {
                return;
            }
            if old.consumer != UNOWNED {
                self.consumer_mut(old.consumer).pending.remove(&id);
            }
        }
        self.consumer_mut(consumer).pending.insert(id);
    }

    /// Acknowledges entry `id`: removes it from the PELs. False if it was not pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pel.remove(&id) else {
            return false;
        };
        if p.consumer != UNOWNED {
            self.consumer_mut(p.consumer).pending.remove(&id);
        }
        true
    }

    /// Loading (RDB): adds a pending entry of the group's PEL before its owner is known;
    /// [`ConsumerGroup::load_consumer`] assigns it.
    pub fn load_pending(&mut self, id: StreamId, delivery_time_ms: u64, delivery_count: u64) {
        self.pel.insert(
            id,
            Pending {
                delivery_time_ms,
                delivery_count,
                consumer: UNOWNED,
            },
        );
    }

    /// Loading (RDB): adds a consumer and takes ownership of its pending IDs, each of which
    /// must have been loaded with [`ConsumerGroup::load_pending`] and not be owned yet.
    pub fn load_consumer(
        &mut self,
        name: &[u8],
        seen_time_ms: u64,
        active_time_ms: Option<u64>,
        pending: impl IntoIterator<Item = StreamId>,
    ) -> Result<ConsumerId, LoadError> {
        let id = self
            .add_consumer(name, seen_time_ms, active_time_ms)
            .ok_or(LoadError::DuplicateConsumer)?;
        for p in pending {
            match self.pel.get_mut(&p) {
                Some(nack) if nack.consumer == UNOWNED => nack.consumer = id,
                _ => return Err(LoadError::BadPending),
            }
            self.consumer_mut(id).pending.insert(p);
        }
        Ok(id)
    }

    /// True once every pending entry has an owner (the check after loading a group).
    pub fn is_consistent(&self) -> bool {
        self.pel.values().all(|p| p.consumer != UNOWNED)
    }

    /// Approximate heap bytes: B-tree leaves filled in ID order run about half full, so a
    /// pending entry costs about twice its slots (measured: ~124 bytes with jemalloc).
    fn heap_bytes(&self) -> usize {
        let pel_slot = std::mem::size_of::<(StreamId, Pending)>() * 2;
        let own_slot = std::mem::size_of::<StreamId>() * 2;
        let consumers: usize = self
            .consumers()
            .map(|(_, c)| 2 * c.name.len() + 96 + c.pending.len() * own_slot)
            .sum();
        96 + self.pel.len() * pel_slot + consumers
    }
}

/// The stream counters that decide whether a group's read counter can be known.
#[derive(Clone, Copy)]
struct Counters {
    len: u64,
    first_id: StreamId,
    last_id: StreamId,
    max_deleted_entry_id: StreamId,
    entries_added: u64,
}

impl Counters {
    /// True if an entry was deleted at or above `start` within the stream's live range
    /// (then counting entries from `start` on is impossible).
    fn has_tombstones_from(&self, start: StreamId) -> bool {
        self.len != 0
            && self.max_deleted_entry_id != StreamId::MIN
            && self.first_id <= self.max_deleted_entry_id
            && start <= self.max_deleted_entry_id
    }

    /// The logical read counter of `id` (entries added up to it), when it can be known:
    /// `id` is the last ID, or at or before the first entry with no tombstones after it.
    fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.len == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_entry_id == StreamId::MIN || self.max_deleted_entry_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.len);
            }
            if id == self.first_id {
                return Some(self.entries_added - self.len + 1);
            }
        }
        None
    }
}

/// One packed node.
#[derive(Clone, Debug)]
struct Node {
    data: Vec<u8>,
    /// Where the entries start (after the master fields).
    entries_at: u32,
    live: u32,
    deleted: u32,
}

/// A stream value.
#[derive(Clone, Debug, Default)]
pub struct StreamValue {
    nodes: BTreeMap<StreamId, Node>,
    len: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_entry_id: StreamId,
    pub entries_added: u64,
    /// Consumer groups by name (an empty B-tree map allocates nothing).
    groups: BTreeMap<Box<[u8]>, ConsumerGroup>,
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn get_varint(data: &[u8], pos: &mut usize) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    loop {
        let b = data[*pos];
        *pos += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn get_str<'a>(data: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let n = get_varint(data, pos) as usize;
    let s = &data[*pos..*pos + n];
    *pos += n;
    s
}

/// One decoded entry header inside a node.
#[derive(Clone, Copy)]
struct RawEntry {
    /// Offset of the flags byte.
    at: usize,
    flags: u8,
    id: StreamId,
    /// Offset of the fields part, and the number of field-value pairs.
    fields_at: usize,
    nfields: usize,
    /// Offset of the next entry.
    next: usize,
}

impl Node {
    fn master_fields(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut pos = 0;
        let n = get_varint(&self.data, &mut pos);
        (0..n).map(move |_| get_str(&self.data, &mut pos))
    }

    fn master_count(&self) -> usize {
        get_varint(&self.data, &mut 0) as usize
    }

    /// Decodes the entry at `at`.
    fn entry_at(&self, master: StreamId, at: usize) -> RawEntry {
        let d = &self.data;
        let flags = d[at];
        let mut pos = at + 1;
        let ms_delta = get_varint(d, &mut pos);
        let seq_part = get_varint(d, &mut pos);
        let id = if ms_delta == 0 {
            StreamId::new(master.ms, master.seq + seq_part)
        } else {
            StreamId::new(master.ms + ms_delta, seq_part)
        };
        let nfields = if flags & SAME_FIELDS != 0 {
            self.master_count()
        } else {
            get_varint(d, &mut pos) as usize
        };
        let fields_at = pos;
        let strings = if flags & SAME_FIELDS != 0 {
            nfields
        } else {
            nfields * 2
        };
        for _ in 0..strings {
            get_str(d, &mut pos);
        }
        RawEntry {
            at,
            flags,
            id,
            fields_at,
            nfields,
            next: pos,
        }
    }

    /// Every entry (tombstones included), in order.
    fn raw_entries(&self, master: StreamId) -> Vec<RawEntry> {
        let mut out = Vec::with_capacity((self.live + self.deleted) as usize);
        let mut at = self.entries_at as usize;
        while at < self.data.len() {
            let e = self.entry_at(master, at);
            at = e.next;
            out.push(e);
        }
        out
    }
}

/// One node as a file stores it (see [`StreamValue::nodes`]).
pub struct NodeView<'a> {
    /// The ID of the node's first entry, which the others are relative to.
    pub master: StreamId,
    node: &'a Node,
}

/// One entry of a [`NodeView`], tombstone or not.
pub struct NodeEntry<'a> {
    pub id: StreamId,
    pub deleted: bool,
    /// The entry's fields are its node's master fields (only values are listed in `pairs`'
    /// odd positions; the even ones repeat the master fields).
    pub same_fields: bool,
    /// Field, value, field, value…
    pub pairs: Vec<&'a [u8]>,
}

impl<'a> NodeView<'a> {
    pub fn master_fields(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.node.master_fields()
    }

    /// (live, deleted) entries.
    pub fn counts(&self) -> (u32, u32) {
        (self.node.live, self.node.deleted)
    }

    /// Every entry, tombstones included, in order.
    pub fn entries(&self) -> impl Iterator<Item = NodeEntry<'a>> + 'a {
        let node = self.node;
        let master = self.master;
        node.raw_entries(master).into_iter().map(move |e| {
            let view = EntryRef {
                id: e.id,
                node,
                fields_at: e.fields_at,
                nfields: e.nfields,
                same: e.flags & SAME_FIELDS != 0,
            };
            NodeEntry {
                id: e.id,
                deleted: e.flags & DELETED != 0,
                same_fields: view.same,
                pairs: view.fields().flat_map(|(f, v)| [f, v]).collect(),
            }
        })
    }
}

/// A live entry, borrowed from its node.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    pub id: StreamId,
    node: &'a Node,
    fields_at: usize,
    nfields: usize,
    same: bool,
}

impl<'a> EntryRef<'a> {
    /// Number of field-value pairs.
    pub fn len(&self) -> usize {
        self.nfields
    }

    pub fn is_empty(&self) -> bool {
        self.nfields == 0
    }

    /// The field-value pairs in insertion order.
    pub fn fields(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let data = &self.node.data[..];
        let mut pos = self.fields_at;
        let mut master = self.same.then(|| self.node.master_fields());
        (0..self.nfields).map(move |_| {
            let f = match &mut master {
                Some(m) => m.next().unwrap_or_default(),
                None => get_str(data, &mut pos),
            };
            (f, get_str(data, &mut pos))
        })
    }
}

impl StreamValue {
    pub fn new() -> StreamValue {
        StreamValue::default()
    }

    /// Number of live entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes owned (MEMORY USAGE, eviction accounting).
    pub fn heap_bytes(&self) -> usize {
        // A B-tree node holds up to 11 (key, value) slots plus child pointers.
        let per_node = std::mem::size_of::<(StreamId, Node)>() + 16;
        let groups: usize = self
            .groups()
            .map(|(name, g)| name.len() + 64 + g.heap_bytes())
            .sum();
        self.nodes
            .values()
            .map(|n| n.data.capacity() + per_node)
            .sum::<usize>()
            + groups
    }

    /// Appends an entry with ID `id` (the caller checked it is above `last_id`) and the
    /// fields of `pairs` (field, value alternating, an even count).
    pub fn append(&mut self, id: StreamId, pairs: &[&[u8]], limits: NodeLimits) {
        let payload: usize = pairs.iter().map(|p| p.len() + 2).sum();
        let tail_full = self.nodes.last_key_value().is_none_or(|(_, n)| {
            (limits.max_bytes != 0 && n.data.len() + payload >= limits.max_bytes)
                || (limits.max_entries != 0 && (n.live + n.deleted) as usize >= limits.max_entries)
        });
        if tail_full {
            // The old tail is complete: give back the spare capacity its growth left (up to
            // half of it), so closed nodes cost what they hold, like Redis's listpacks.
            if let Some(mut tail) = self.nodes.last_entry() {
                tail.get_mut().data.shrink_to_fit();
            }
            let mut data = Vec::with_capacity(payload * 2 + 8);
            put_varint(&mut data, (pairs.len() / 2) as u64);
            for f in pairs.iter().step_by(2) {
                put_str(&mut data, f);
            }
            let entries_at = data.len() as u32;
            self.nodes.insert(
                id,
                Node {
                    data,
                    entries_at,
                    live: 0,
                    deleted: 0,
                },
            );
        }
        let (&master, node) = self.nodes.iter_mut().next_back().expect("tail node exists");
        let same = node.master_count() == pairs.len() / 2
            && node
                .master_fields()
                .zip(pairs.iter().step_by(2))
                .all(|(m, f)| m == *f);
        let d = &mut node.data;
        d.push(if same { SAME_FIELDS } else { 0 });
        if id.ms == master.ms {
            put_varint(d, 0);
            put_varint(d, id.seq - master.seq);
        } else {
            put_varint(d, id.ms - master.ms);
            put_varint(d, id.seq);
        }
        if same {
            pairs.iter().skip(1).step_by(2).for_each(|v| put_str(d, v));
        } else {
            put_varint(d, (pairs.len() / 2) as u64);
            pairs.iter().for_each(|s| put_str(d, s));
        }
        node.live += 1;
        if self.len == 0 {
            self.first_id = id;
        }
        self.len += 1;
        self.entries_added += 1;
        self.last_id = id;
    }

    /// Live entries with IDs in `start..=end`, ascending (or descending when `rev`), at most
    /// `count` of them (0 = all).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> Vec<EntryRef<'_>> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        let limit = if count == 0 { usize::MAX } else { count };
        // The node holding `start` begins at or before it.
        let first_master = self
            .nodes
            .range(..=start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        let nodes = self.nodes.range(first_master..=end);
        let nodes: Box<dyn Iterator<Item = (&StreamId, &Node)>> = if rev {
            Box::new(nodes.rev())
        } else {
            Box::new(nodes)
        };
        for (&master, node) in nodes {
            let mut raws = node.raw_entries(master);
            if rev {
                raws.reverse();
            }
            for r in raws {
                if out.len() >= limit {
                    return out;
                }
                if r.flags & DELETED != 0 || r.id < start || r.id > end {
                    continue;
                }
                out.push(EntryRef {
                    id: r.id,
                    node,
                    fields_at: r.fields_at,
                    nfields: r.nfields,
                    same: r.flags & SAME_FIELDS != 0,
                });
            }
        }
        out
    }

    /// The ID of the first (or last) live entry.
    pub fn edge_id(&self, last: bool) -> Option<StreamId> {
        let r = if last {
            self.range(StreamId::MIN, StreamId::MAX, true, 1)
        } else {
            self.range(StreamId::MIN, StreamId::MAX, false, 1)
        };
        r.first().map(|e| e.id)
    }

    /// Marks the entry `id` deleted (XDEL). False if there is no such live entry.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let mut at = node.entries_at as usize;
        let mut found = None;
        while at < node.data.len() {
            let e = node.entry_at(master, at);
            if e.id >= id {
                found = (e.id == id && e.flags & DELETED == 0).then_some(e.at);
                break;
            }
            at = e.next;
        }
        let Some(at) = found else { return false };
        node.data[at] |= DELETED;
        node.live -= 1;
        node.deleted += 1;
        if node.live == 0 {
            self.nodes.remove(&master);
        }
        self.len -= 1;
        let was_first = id == self.first_id;
        if self.len == 0 {
            self.first_id = StreamId::MIN;
        } else if was_first {
            self.first_id = self.edge_id(false).unwrap_or_default();
        }
        if id > self.max_deleted_entry_id {
            self.max_deleted_entry_id = id;
        }
        true
    }

    /// Trims as XADD/XTRIM do: whole nodes first; entry by entry within the node where the
    /// limit falls unless `approx`. `limit` (0 = none) caps the entries removed. Returns how
    /// many were removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        while let Some((&master, node)) = self.nodes.first_key_value() {
            if matches!(how, Trim::MaxLen(max) if self.len <= max) {
                break;
            }
            let live = u64::from(node.live);
            if limit != 0 && removed + live > limit {
                break;
            }
            let whole = match how {
                Trim::MaxLen(max) => self.len - live >= max,
                Trim::MinId(min) => {
                    let raws = node.raw_entries(master);
                    raws.last().is_some_and(|r| r.id < min)
                }
            };
            if whole {
                self.nodes.pop_first();
                self.len -= live;
                removed += live;
                continue;
            }
            if approx {
                break;
            }
            let node = self.nodes.get_mut(&master).expect("first node");
            for r in node.raw_entries(master) {
                let stop = match how {
                    Trim::MaxLen(max) => self.len <= max,
                    Trim::MinId(min) => r.id >= min,
                };
                if stop {
                    break;
                }
                if r.flags & DELETED == 0 {
                    node.data[r.at] |= DELETED;
                    node.live -= 1;
                    node.deleted += 1;
                    self.len -= 1;
                    removed += 1;
                }
            }
            break;
        }
        if self.len == 0 {
            self.first_id = StreamId::MIN;
        } else if removed > 0 {
            self.first_id = self.edge_id(false).unwrap_or_default();
        }
        removed
    }

    /// Every live entry in order (DEBUG DIGEST-VALUE, persistence).
    pub fn entries(&self) -> Vec<EntryRef<'_>> {
        self.range(StreamId::MIN, StreamId::MAX, false, 0)
    }

    /// The nodes in ID order, tombstones included: what an RDB file stores of the entries.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'_>> + '_ {
        self.nodes
            .iter()
            .map(|(&master, node)| NodeView { master, node })
    }

    /// Loading (RDB): appends an entry read from a file. IDs must come in increasing order,
    /// above every entry already present; the caller then sets the counters the file holds
    /// with [`StreamValue::load_counters`].
    pub fn load_entry(&mut self, id: StreamId, pairs: &[&[u8]], limits: NodeLimits) -> bool {
        if self.len > 0 && id <= self.last_id {
            return false;
        }
        self.append(id, pairs, limits);
        true
    }

    /// Loading (RDB): the stream's recorded last ID, first ID, greatest deleted ID and count
    /// of entries ever added. Refuses values inconsistent with the entries loaded.
    pub fn load_counters(
        &mut self,
        len: u64,
        last_id: StreamId,
        first_id: StreamId,
        max_deleted_entry_id: StreamId,
        entries_added: u64,
    ) -> bool {
        let top = self.edge_id(true);
        if len != self.len || top.is_some_and(|t| t > last_id) || entries_added < self.len {
            return false;
        }
        self.last_id = last_id;
        self.first_id = first_id;
        self.max_deleted_entry_id = max_deleted_entry_id;
        self.entries_added = entries_added;
        true
    }

    /// Number of nodes (tests, XINFO).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn counters(&self) -> Counters {
        Counters {
            len: self.len,
            first_id: self.first_id,
            last_id: self.last_id,
            max_deleted_entry_id: self.max_deleted_entry_id,
            entries_added: self.entries_added,
        }
    }

    /// The consumer groups, by name.
    pub fn groups(&self) -> impl Iterator<Item = (&[u8], &ConsumerGroup)> + '_ {
        self.groups.iter().map(|(name, g)| (&**name, g))
    }

    /// Number of consumer groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    pub fn group(&self, name: &[u8]) -> Option<&ConsumerGroup> {
        self.groups.get(name)
    }

    pub fn group_mut(&mut self, name: &[u8]) -> Option<&mut ConsumerGroup> {
        self.groups.get_mut(name)
    }

    /// Adds group `name` (XGROUP CREATE, loading). False if the stream has one by that name.
    pub fn add_group(&mut self, name: &[u8], group: ConsumerGroup) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups.insert(name.into(), group);
        true
    }

    /// Removes group `name` (XGROUP DESTROY). False if there is none.
    pub fn remove_group(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// The group's lag (entries not yet delivered to it), `None` when deletions make it
    /// unknowable, as Redis 7.0 computes it.
    pub fn lag(&self, g: &ConsumerGroup) -> Option<u64> {
        let c = self.counters();
        if c.entries_added == 0 {
            return Some(0);
        }
        let read = match g.entries_read {
            Some(n) if !c.has_tombstones_from(g.last_id) => Some(n),
            _ => c.entries_read_at(g.last_id),
        };
        read.map(|n| c.entries_added.saturating_sub(n))
    }

    /// The read counter of `id` when it can be known (XGROUP CREATE/SETID without
    /// ENTRIESREAD use it for `$`).
    pub fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        self.counters().entries_read_at(id)
    }

    /// Records that group `name` read the entries `ids` (ascending) with `>`: its last ID and
    /// read counter advance and, unless `noack` (no `consumer`), each entry becomes pending
    /// for `consumer`. No-op if there is no such group.
    pub fn group_read(
        &mut self,
        name: &[u8],
        ids: &[StreamId],
        consumer: Option<ConsumerId>,
        now_ms: u64,
    ) {
        let c = self.counters();
        let Some(g) = self.group_mut(name) else {
            return;
        };
        for &id in ids {
            if id > g.last_id {
                if g.entries_read.is_some() && !c.has_tombstones_from(id) {
                    g.entries_read = g.entries_read.map(|n| n + 1);
                } else if c.entries_added != 0 {
                    g.entries_read = c.entries_read_at(id);
                }
                g.last_id = id;
            }
            if let Some(owner) = consumer {
                g.deliver(id, owner, now_ms);
            }
        }
    }

    /// The live entry `id`, if any.
    pub fn entry(&self, id: StreamId) -> Option<EntryRef<'_>> {
        self.range(id, id, false, 1).pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIM: NodeLimits = NodeLimits {
        max_bytes: 4096,
        max_entries: 100,
    };

    fn ids(v: &[EntryRef<'_>]) -> Vec<u64> {
        v.iter().map(|e| e.id.ms).collect()
    }

    fn filled(n: u64) -> StreamValue {
        let mut s = StreamValue::new();
        for i in 1..=n {
            let v = i.to_string();
            s.append(StreamId::new(i, 0), &[b"f", v.as_bytes()], LIM);
        }
        s
    }

    #[test]
    fn append_range_and_fields() {
        let mut s = filled(250);
        s.append(StreamId::new(251, 3), &[b"a", b"1", b"b", b"2"], LIM);
        assert_eq!(s.len(), 251);
        assert_eq!(s.node_count(), 3);
        let r = s.range(StreamId::new(99, 0), StreamId::new(102, 0), false, 0);
        assert_eq!(ids(&r), vec![99, 100, 101, 102]);
        let f: Vec<_> = r[0].fields().collect();
        assert_eq!(f, vec![(&b"f"[..], &b"99"[..])]);
        let r = s.range(StreamId::MIN, StreamId::MAX, true, 2);
        assert_eq!(ids(&r), vec![251, 250]);
        let f: Vec<_> = r[0].fields().collect();
        assert_eq!(f, vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"2"[..])]);
        assert_eq!(r[0].id, StreamId::new(251, 3));
    }

    #[test]
    fn delete_and_edges() {
        let mut s = filled(5);
        assert!(s.delete(StreamId::new(1, 0)));
        assert!(!s.delete(StreamId::new(1, 0)));
        assert!(!s.delete(StreamId::new(9, 0)));
        assert_eq!(s.first_id, StreamId::new(2, 0));
        assert_eq!(s.max_deleted_entry_id, StreamId::new(1, 0));
        assert_eq!(s.len(), 4);
        for i in 2..=5 {
            assert!(s.delete(StreamId::new(i, 0)));
        }
        assert_eq!((s.len(), s.node_count()), (0, 0));
        assert_eq!(s.last_id, StreamId::new(5, 0));
    }

    #[test]
    fn trim_exact_and_approx() {
        let mut s = filled(250);
        assert_eq!(s.trim(Trim::MaxLen(120), true, 0), 100);
        assert_eq!(s.len(), 150);
        assert_eq!(s.trim(Trim::MaxLen(120), false, 0), 30);
        assert_eq!(s.len(), 120);
        assert_eq!(s.first_id, StreamId::new(131, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(200, 0)), false, 0), 69);
        assert_eq!(s.edge_id(false), Some(StreamId::new(200, 0)));
        let mut s = filled(300);
        assert_eq!(s.trim(Trim::MaxLen(0), true, 150), 100);
    }

    #[test]
    fn group_pel_and_consumers() {
        let mut g = ConsumerGroup::new(StreamId::MIN, Some(0));
        let (a, created) = g.consumer_for(b"alice", 10);
        assert!(created);
        assert_eq!(g.consumer_for(b"alice", 20), (a, false));
        assert_eq!(g.consumer(a).seen_time_ms, 20);
        let b = g.create_consumer(b"bob", 30).expect("new");
        assert!(g.create_consumer(b"bob", 31).is_none());
        for i in 1..=3 {
            g.deliver(StreamId::new(i, 0), a, 100);
        }
        g.redeliver(StreamId::new(1, 0), 200);
        let p = *g.pending(StreamId::new(1, 0)).expect("pending");
        assert_eq!(
            (p.delivery_time_ms, p.delivery_count, p.consumer),
            (200, 2, a)
        );
        // Claimed by bob: it moves between the consumers' own lists.
        g.claim(StreamId::new(2, 0), b, 300, 5);
        assert_eq!(g.consumer(a).pending_len(), 2);
        assert_eq!(
            g.consumer(b)
                .pending_from(StreamId::MIN)
                .collect::<Vec<_>>(),
            vec![StreamId::new(2, 0)]
        );
        assert!(g.ack(StreamId::new(3, 0)));
        assert!(!g.ack(StreamId::new(3, 0)));
        assert_eq!(g.pending_len(), 2);
        // Deleting alice drops her pending entries; her slot is reused.
        assert_eq!(g.delete_consumer(b"alice"), Some(1));
        assert_eq!(g.delete_consumer(b"alice"), None);
        assert_eq!(g.pending_len(), 1);
        let c = g.create_consumer(b"carol", 40).expect("new");
        assert_eq!(c, a);
        let names: Vec<&[u8]> = g.consumers().map(|(_, c)| c.name()).collect();
        assert_eq!(names, vec![&b"bob"[..], b"carol"]);
    }

    #[test]
    fn group_loading() {
        let mut g = ConsumerGroup::new(StreamId::new(5, 0), None);
        g.load_pending(StreamId::new(1, 0), 7, 2);
        g.load_pending(StreamId::new(2, 0), 8, 1);
        assert!(!g.is_consistent());
        let a = g
            .load_consumer(b"a", 1, None, [StreamId::new(1, 0)])
            .expect("ok");
        assert_eq!(
            g.load_consumer(b"a", 1, None, []),
            Err(LoadError::DuplicateConsumer)
        );
        assert_eq!(
            g.load_consumer(b"b", 1, Some(1), [StreamId::new(1, 0)]),
            Err(LoadError::BadPending)
        );
        g.load_consumer(b"c", 1, Some(1), [StreamId::new(2, 0)])
            .expect("ok");
        assert!(g.is_consistent());
        assert_eq!(g.pending(StreamId::new(1, 0)).map(|p| p.consumer), Some(a));
    }

    #[test]
    fn group_reads_and_lag() {
        let mut s = filled(5);
        assert!(s.add_group(b"g", ConsumerGroup::new(StreamId::MIN, None)));
        assert!(!s.add_group(b"g", ConsumerGroup::default()));
        let g = s.group(b"g").expect("group");
        assert_eq!(s.lag(g), Some(5));
        s.group_read(b"g", &[StreamId::new(1, 0)], None, 0);
        let g = s.group(b"g").expect("group");
        assert_eq!((g.entries_read, s.lag(g)), (Some(1), Some(4)));
        // A deletion ahead of the group makes its counter unknowable until it passes it.
        s.delete(StreamId::new(3, 0));
        assert_eq!(s.lag(s.group(b"g").expect("group")), None);
        s.group_read(b"g", &[StreamId::new(2, 0)], None, 0);
        assert_eq!(s.group(b"g").and_then(|g| g.entries_read), None);
        s.group_read(b"g", &[StreamId::new(4, 0), StreamId::new(5, 0)], None, 0);
        let g = s.group(b"g").expect("group");
        assert_eq!((g.entries_read, s.lag(g)), (Some(5), Some(0)));
        assert_eq!(s.group_count(), 1);
        assert!(s.remove_group(b"g"));
        assert_eq!(s.groups().count(), 0);
    }

    #[test]
    fn id_steps() {
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.decr(), None);
        assert_eq!(StreamId::new(3, 4).to_string(), "3-4");
    }
}
