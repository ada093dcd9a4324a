//! Streams in RDB files: RDB_TYPE_STREAM_LISTPACKS_2 (what Redis 7.0 writes), and the
//! older RDB_TYPE_STREAM_LISTPACKS on load.
//!
//! The entries travel as Redis's stream listpacks, one per node, keyed by the node's master
//! ID (16 bytes, big-endian ms then seq). A node listpack holds the master entry — live count,
//! deleted count, the master fields and a 0 terminator — and then every entry, tombstones
//! included: flags, ms and seq differences from the master ID, the fields and values (only the
//! values when the entry has the master fields), and the entry's element count. After the
//! nodes come the length, last ID, first ID, greatest deleted ID, entries ever added, and the
//! consumer groups: name, last delivered ID, entries read (-1 unknown), the group's pending
//! entries (raw ID, delivery time, delivery count) and the consumers (name, seen time, their
//! pending IDs).
//!
//! flowkv keeps its own node layout in memory (see `flowkv_store::stream_value`); loading
//! re-chunks the live entries with the configured node limits, as they would have been built
//! by XADD.

use std::io::Read;

use flowkv_store::stream_value::{ConsumerGroup, NodeLimits, StreamId, StreamValue};

use crate::error::{corrupt, Result};
use crate::format::TYPE_STREAM_LISTPACKS;
use crate::listpack::{self, Builder, Elem};
use crate::read::Input;
use crate::write::{write_len, write_string, WriteOptions};

/// Stream entry flags inside a node listpack (Redis's STREAM_ITEM_FLAG_*).
const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

fn raw_id(id: StreamId) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.ms.to_be_bytes());
    b[8..].copy_from_slice(&id.seq.to_be_bytes());
    b
}

fn write_id(out: &mut Vec<u8>, id: StreamId) {
    write_len(out, id.ms);
    write_len(out, id.seq);
}

/// Appends the body of a stream value (the type byte is written by the caller).
pub fn write_stream(out: &mut Vec<u8>, s: &StreamValue, opts: WriteOptions) {
    let nodes: Vec<_> = s.nodes().collect();
    write_len(out, nodes.len() as u64);
    for node in &nodes {
        write_string(out, &raw_id(node.master), opts);
        write_string(out, &node_listpack(node), opts);
    }
    write_len(out, s.len());
    write_id(out, s.last_id);
    write_id(out, s.first_id);
    write_id(out, s.max_deleted_entry_id);
    write_len(out, s.entries_added);
    write_len(out, s.group_count() as u64);
    for (name, g) in s.groups() {
        write_string(out, name, opts);
        write_id(out, g.last_id);
        write_len(out, g.entries_read.unwrap_or(u64::MAX));
        write_len(out, g.pending_len() as u64);
        for (id, p) in g.pending_range(StreamId::MIN, StreamId::MAX) {
            out.extend_from_slice(&raw_id(id));
            out.extend_from_slice(&p.delivery_time_ms.to_le_bytes());
            write_len(out, p.delivery_count);
        }
        write_len(out, g.consumer_count() as u64);
        for (_, c) in g.consumers() {
            write_string(out, c.name(), opts);
            out.extend_from_slice(&c.seen_time_ms.to_le_bytes());
            write_len(out, c.pending_len() as u64);
            for id in c.pending_from(StreamId::MIN) {
                out.extend_from_slice(&raw_id(id));
            }
        }
    }
}

/// One node as Redis's stream listpack.
fn node_listpack(node: &flowkv_store::stream_value::NodeView<'_>) -> Vec<u8> {
    let mut lp = Builder::new();
    let (live, deleted) = node.counts();
    let master: Vec<&[u8]> = node.master_fields().collect();
    lp.push_int(i64::from(live));
    lp.push_int(i64::from(deleted));
    lp.push_int(master.len() as i64);
    master.iter().for_each(|f| lp.push(f));
    lp.push_int(0);
    for e in node.entries() {
        let flags = if e.deleted { FLAG_DELETED } else { 0 }
            | if e.same_fields { FLAG_SAMEFIELDS } else { 0 };
        lp.push_int(flags);
        lp.push_int(e.id.ms.wrapping_sub(node.master.ms) as i64);
        lp.push_int(e.id.seq.wrapping_sub(node.master.seq) as i64);
        let n = e.pairs.len() / 2;
        if e.same_fields {
            e.pairs.iter().skip(1).step_by(2).for_each(|v| lp.push(v));
            lp.push_int(3 + n as i64);
        } else {
            lp.push_int(n as i64);
            e.pairs.iter().for_each(|p| lp.push(p));
            lp.push_int(4 + 2 * n as i64);
        }
    }
    lp.finish()
}

fn read_id<R: Read>(inp: &mut Input<R>) -> Result<StreamId> {
    Ok(StreamId::new(inp.length()?, inp.length()?))
}

fn parse_raw_id(b: &[u8]) -> Result<StreamId> {
    let b: &[u8; 16] = b
        .try_into()
        .map_err(|_| corrupt("stream node key is not a 16-byte ID"))?;
    let (ms, seq) = b.split_at(8);
    Ok(StreamId::new(
        u64::from_be_bytes(ms.try_into().expect("8 bytes")),
        u64::from_be_bytes(seq.try_into().expect("8 bytes")),
    ))
}

/// Reads a stream value of RDB type `ty` (15 or 19).
pub fn read_stream<R: Read>(inp: &mut Input<R>, ty: u8, limits: NodeLimits) -> Result<StreamValue> {
    let mut s = StreamValue::new();
    let nodes = inp.length()?;
    for _ in 0..nodes {
        let master = parse_raw_id(&inp.string()?)?;
        let lp = inp.string()?;
        read_node(&mut s, master, &lp, limits)?;
    }
    let len = inp.length()?;
    let last_id = read_id(inp)?;
    let (first_id, max_deleted, entries_added) = if ty == TYPE_STREAM_LISTPACKS {
        // Before Redis 7.0 these were not kept: derive them as Redis does.
        (s.edge_id(false).unwrap_or_default(), StreamId::MIN, len)
    } else {
        (read_id(inp)?, read_id(inp)?, inp.length()?)
    };
    if !s.load_counters(len, last_id, first_id, max_deleted, entries_added) {
        return Err(corrupt("stream length or IDs disagree with its entries"));
    }
    let groups = inp.length()?;
    for _ in 0..groups {
        let name = inp.string()?;
        let last = read_id(inp)?;
        let entries_read = if ty == TYPE_STREAM_LISTPACKS {
            s.entries_read_at(last)
        } else {
            match inp.length()? {
                u64::MAX => None,
                n => Some(n),
            }
        };
        let mut g = ConsumerGroup::new(last, entries_read);
        for _ in 0..inp.length()? {
            let id = parse_raw_id(&inp.exact::<16>()?)?;
            let time = u64::from_le_bytes(inp.exact::<8>()?);
            let count = inp.length()?;
            if g.pending(id).is_some() {
                return Err(corrupt("duplicate pending entry in a consumer group"));
            }
            g.load_pending(id, time, count);
        }
        for _ in 0..inp.length()? {
            let cname = inp.string()?;
            let seen = u64::from_le_bytes(inp.exact::<8>()?);
            let mut ids = Vec::new();
            for _ in 0..inp.length()? {
                ids.push(parse_raw_id(&inp.exact::<16>()?)?);
            }
            g.load_consumer(&cname, seen, Some(seen), ids)
                .map_err(|e| corrupt(format!("bad consumer in a stream group: {e:?}")))?;
        }
        if !g.is_consistent() {
            return Err(corrupt(
                "pending entry without a consumer in a stream group",
            ));
        }
        if !s.add_group(&name, g) {
            return Err(corrupt("duplicate consumer group name"));
        }
    }
    Ok(s)
}

/// The next listpack element, which must be an integer.
fn int(it: &mut std::vec::IntoIter<Elem<'_>>) -> Result<i64> {
    match it.next() {
        Some(Elem::Int(v)) => Ok(v),
        _ => Err(corrupt("bad stream node listpack")),
    }
}

/// Decodes one node listpack and appends its live entries.
fn read_node(s: &mut StreamValue, master: StreamId, lp: &[u8], limits: NodeLimits) -> Result<()> {
    let mut elems: Vec<Elem<'_>> = Vec::new();
    listpack::decode(lp, |e| {
        elems.push(e);
        Ok(())
    })?;
    let mut it = elems.into_iter();
    let live = int(&mut it)?;
    let deleted = int(&mut it)?;
    let nmaster = usize::try_from(int(&mut it)?).map_err(|_| corrupt("bad stream node"))?;
    let mut master_fields = Vec::new();
    for _ in 0..nmaster {
        master_fields.push(
            it.next()
                .ok_or_else(|| corrupt("bad stream node"))?
                .to_vec(),
        );
    }
    if int(&mut it)? != 0 {
        return Err(corrupt("bad stream node master entry terminator"));
    }
    let (mut seen_live, mut seen_deleted) = (0i64, 0i64);
    let mut strings = Vec::new();
    while it.len() > 0 {
        let flags = int(&mut it)?;
        let ms = master.ms.wrapping_add(int(&mut it)? as u64);
        let seq = master.seq.wrapping_add(int(&mut it)? as u64);
        let id = StreamId::new(ms, seq);
        strings.clear();
        if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                strings.push(f.clone());
                strings.push(
                    it.next()
                        .ok_or_else(|| corrupt("bad stream entry"))?
                        .to_vec(),
                );
            }
        } else {
            let n = usize::try_from(int(&mut it)?)
                .ok()
                .and_then(|n| n.checked_mul(2))
                .ok_or_else(|| corrupt("bad stream entry"))?;
            for _ in 0..n {
                strings.push(
                    it.next()
                        .ok_or_else(|| corrupt("bad stream entry"))?
                        .to_vec(),
                );
            }
        }
        int(&mut it)?;
        if id < master {
            return Err(corrupt("stream entry ID below its node's master ID"));
        }
        if flags & FLAG_DELETED != 0 {
            seen_deleted += 1;
            continue;
        }
        seen_live += 1;
        let pairs: Vec<&[u8]> = strings.iter().map(Vec::as_slice).collect();
        if !s.load_entry(id, &pairs, limits) {
            return Err(corrupt("stream entry IDs out of order"));
        }
    }
    if (seen_live, seen_deleted) != (live, deleted) {
        return Err(corrupt("stream node counts disagree with its entries"));
    }
    Ok(())
}
