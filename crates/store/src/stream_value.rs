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

/// A pending (delivered, unacknowledged) entry of a consumer group.
#[derive(Clone, Debug)]
pub struct PendingEntry {
    pub consumer: Box<[u8]>,
    pub delivery_time_ms: u64,
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, Default)]
pub struct Consumer {
    pub seen_time_ms: u64,
    /// IDs of the entries pending for this consumer.
    pub pending: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, Default)]
pub struct ConsumerGroup {
    pub last_id: StreamId,
    /// Entries read (XINFO GROUPS entries-read), -1 when unknown.
    pub entries_read: i64,
    pub pending: BTreeMap<StreamId, PendingEntry>,
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
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
    /// Consumer groups by name (allocated on the first XGROUP CREATE).
    pub groups: Option<Box<BTreeMap<Box<[u8]>, ConsumerGroup>>>,
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
        let groups = self.groups.as_ref().map_or(0, |g| {
            g.values()
                .map(|g| 64 + g.pending.len() * 64 + g.consumers.len() * 64)
                .sum()
        });
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

    /// Number of nodes (tests, XINFO).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
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
    fn id_steps() {
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.decr(), None);
        assert_eq!(StreamId::new(3, 4).to_string(), "3-4");
    }
}
