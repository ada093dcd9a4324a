//! Round trips through the writer and reader, and corrupt input.

use flowkv_store::hash_value::{HashLimits, HashValue};
use flowkv_store::list_value::{ListValue, NodeLimit};
use flowkv_store::set_value::SetValue;
use flowkv_store::stream_value::{ConsumerGroup, NodeLimits, StreamId, StreamValue};
use flowkv_store::zset_value::{ZSetLimits, ZSetValue};
use flowkv_store::{Entry, Value, ValueRef};
use proptest::prelude::*;

use crate::read::{load, restore_payload, Limits, Object, RestoreError};
use crate::write::{dump_payload, FileInfo, FileWriter, WriteOptions};

const LIM: Limits = Limits {
    hash: HashLimits {
        max_entries: 128,
        max_value: 64,
    },
    zset: ZSetLimits {
        max_listpack_entries: 128,
        max_listpack_value: 64,
    },
    max_intset: 512,
    list: NodeLimit::Bytes(8192),
    stream: NodeLimits {
        max_bytes: 64,
        max_entries: 3,
    },
};

const OPTS: WriteOptions = WriteOptions { compress: true };

/// A comparable, encoding-independent view of an entry: key, TTL, type, sorted items.
fn view(e: &Entry) -> (Vec<u8>, Option<u64>, &'static str, Vec<Vec<u8>>) {
    let items: Vec<Vec<u8>> = match e.value() {
        ValueRef::List(l) => l.iter().map(<[u8]>::to_vec).collect(),
        ValueRef::Set(s) => s
            .digest_items()
            .into_iter()
            .map(|m| m.into_owned())
            .collect(),
        ValueRef::Hash(h) => h
            .digest_items()
            .into_iter()
            .flat_map(|(f, v)| [f.to_vec(), v.to_vec()])
            .collect(),
        ValueRef::ZSet(z) => z
            .iter()
            .flat_map(|(m, s)| [m.to_vec(), s.to_bits().to_le_bytes().to_vec()])
            .collect(),
        _ => vec![e.string().unwrap_or_default().to_vec()],
    };
    (e.key().to_vec(), e.expire_at(), e.kind().name(), items)
}

fn sample_entries() -> Vec<Entry> {
    let mut out = vec![
        Entry::new_string(b"int", b"12345", None, 0),
        Entry::new_string(b"neg", b"-7", Some(4_000_000_000_000), 0),
        Entry::new_string(b"big", b"99999999999", None, 0),
        Entry::new_string(b"zero-lead", b"0123", None, 0),
        Entry::new_string(b"long", &b"abcdefgh".repeat(100), None, 0),
        Entry::new_string(b"empty", b"", None, 0),
    ];
    let mut l = ListValue::new();
    for i in 0..3000 {
        l.push(i % 2 == 0, format!("item-{i}").as_bytes(), LIM.list);
    }
    l.push(false, b"42", LIM.list);
    out.push(Entry::new_value(b"list", Value::List(Box::new(l)), None, 0));
    let mut small = HashValue::default();
    small.set(b"f", b"v", LIM.hash);
    small.set(b"n", b"-100", LIM.hash);
    out.push(Entry::new_value(b"hsmall", Value::Hash(small), None, 0));
    let mut big = HashValue::default();
    for i in 0..500 {
        big.set(
            format!("f{i}").as_bytes(),
            format!("{i}").as_bytes(),
            LIM.hash,
        );
    }
    out.push(Entry::new_value(b"hbig", Value::Hash(big), None, 0));
    let mut is = SetValue::default();
    for i in [-70000i64, 1, 2, 300, i64::MAX] {
        is.insert(i.to_string().as_bytes(), LIM.max_intset);
    }
    out.push(Entry::new_value(
        b"intset",
        Value::Set(Box::new(is)),
        None,
        0,
    ));
    let mut ts = SetValue::default();
    for m in ["a", "b", "1"] {
        ts.insert(m.as_bytes(), LIM.max_intset);
    }
    out.push(Entry::new_value(b"set", Value::Set(Box::new(ts)), None, 0));
    let mut zs = ZSetValue::default();
    for (m, s) in [
        ("a", 1.5),
        ("b", -3.0),
        ("c", f64::INFINITY),
        ("d", 1e300),
        ("e", 0.1),
    ] {
        zs.insert(m.as_bytes(), s, LIM.zset);
    }
    out.push(Entry::new_value(
        b"zsmall",
        Value::ZSet(Box::new(zs)),
        None,
        0,
    ));
    let mut zb = ZSetValue::default();
    for i in 0..300 {
        zb.insert(format!("m{i}").as_bytes(), f64::from(i) / 3.0, LIM.zset);
    }
    out.push(Entry::new_value(
        b"zbig",
        Value::ZSet(Box::new(zb)),
        Some(5_000_000_000_000),
        0,
    ));
    out
}

fn write_file(entries: &[Entry], opts: WriteOptions, checksum: bool) -> Vec<u8> {
    let info = FileInfo {
        redis_ver: "7.0.15".into(),
        ctime: 1,
        used_mem: 2,
        checksum,
        functions: LIBRARIES.iter().map(|c| c.as_bytes().into()).collect(),
    };
    let mut w = FileWriter::new(Vec::new(), &info, opts).unwrap();
    w.select_db(0, entries.len(), 0).unwrap();
    for e in entries {
        w.entry(e).unwrap();
    }
    w.select_db(3, 1, 0).unwrap();
    w.entry(&Entry::new_string(b"in-db-3", b"x", None, 0))
        .unwrap();
    w.finish().unwrap()
}

/// Function libraries written into every test file (the second long enough for LZF).
const LIBRARIES: [&str; 2] = [
    "#!lua name=a\nredis.register_function('fa', function() return 1 end)",
    "#!lua name=b\nredis.register_function('fb', function() return 2 end) -- -- -- -- --",
];

fn load_all(file: &[u8]) -> crate::Result<Vec<(usize, Entry)>> {
    let mut got = Vec::new();
    load(file, &LIM, 16, 0, |db, e| {
        got.push((db, e));
        Ok(())
    })?;
    Ok(got)
}

#[test]
fn file_round_trip_every_type() {
    let entries = sample_entries();
    for (opts, checksum) in [(OPTS, true), (WriteOptions { compress: false }, false)] {
        let file = write_file(&entries, opts, checksum);
        assert_eq!(&file[..9], b"REDIS0010");
        let info = load(&file[..], &LIM, 16, 0, |_, _| Ok(())).unwrap();
        let libs: Vec<&[u8]> = info.functions.iter().map(Vec::as_slice).collect();
        assert_eq!(libs, LIBRARIES.map(str::as_bytes));
        let got = load_all(&file).unwrap();
        assert_eq!(got.len(), entries.len() + 1);
        for (e, (db, g)) in entries.iter().zip(&got) {
            assert_eq!(*db, 0);
            assert_eq!(view(e), view(g));
            assert_eq!(
                e.encoding(),
                g.encoding(),
                "{:?}",
                String::from_utf8_lossy(e.key())
            );
        }
        assert_eq!(
            got.last().map(|(db, e)| (*db, e.key())),
            Some((3, &b"in-db-3"[..]))
        );
    }
}

#[test]
fn dump_payload_round_trip() {
    for e in sample_entries() {
        let p = dump_payload(&e, OPTS);
        let obj = restore_payload(&p, &LIM).unwrap();
        let back = obj.into_entry(e.key(), e.expire_at());
        assert_eq!(view(&e), view(&back));
    }
}

#[test]
fn known_dump_payloads_from_redis() {
    // `SET foo bar` / `DUMP foo` and `SET n 12345` / `DUMP n` on redis-server 7.0.15.
    let e = Entry::new_string(b"foo", b"bar", None, 0);
    assert_eq!(
        dump_payload(&e, OPTS),
        b"\x00\x03bar\x0a\x00\xe6\xbe\x49\x60\xee\x66\xfd\x17".to_vec()
    );
    let e = Entry::new_string(b"n", b"12345", None, 0);
    assert_eq!(
        dump_payload(&e, OPTS),
        b"\x00\xc1\x39\x30\x0a\x00\x9d\x94\xea\x27\x93\xfc\x08\xb9".to_vec()
    );
    // `RPUSH l a 1 -100` / `DUMP l`: a quicklist of one packed listpack node.
    let mut l = ListValue::new();
    for x in ["a", "1", "-100"] {
        l.push(false, x.as_bytes(), LIM.list);
    }
    let e = Entry::new_value(b"l", Value::List(Box::new(l)), None, 0);
    assert_eq!(
        dump_payload(&e, OPTS),
        b"\x12\x01\x02\x0f\x0f\x00\x00\x00\x03\x00\x81a\x02\x01\x01\xdf\x9c\x02\xff\x0a\x00;}\xcf\x11\x9e\xeb\x95_".to_vec()
    );
}

#[test]
fn corrupt_files_are_errors() {
    let file = write_file(&sample_entries(), OPTS, true);
    // Every truncation fails.
    for cut in (0..file.len()).step_by(7) {
        assert!(load_all(&file[..cut]).is_err(), "cut at {cut}");
    }
    // Any flipped byte fails (at worst through the checksum).
    for at in (9..file.len() - 8).step_by(13) {
        let mut bad = file.clone();
        bad[at] ^= 0x5A;
        assert!(load_all(&bad).is_err(), "flip at {at}");
    }
    assert!(load_all(b"REDIS0011\xff").is_err());
    assert!(load_all(b"RXDIS0009\xff").is_err());
}

#[test]
fn corrupt_payloads_are_errors() {
    let p = dump_payload(&sample_entries()[6], OPTS);
    for cut in 0..p.len() {
        assert!(restore_payload(&p[..cut], &LIM).is_err());
    }
    let mut bad = p.clone();
    bad[5] ^= 1;
    assert!(matches!(
        restore_payload(&bad, &LIM),
        Err(RestoreError::Trailer)
    ));
}

/// Everything a stream holds, comparable across node layouts.
fn stream_state(s: &StreamValue) -> String {
    let entries: Vec<String> = s
        .entries()
        .iter()
        .map(|e| format!("{} {:?}", e.id, e.fields().collect::<Vec<_>>()))
        .collect();
    let groups: Vec<String> = s
        .groups()
        .map(|(name, g)| {
            let pel: Vec<String> = g
                .pending_range(StreamId::MIN, StreamId::MAX)
                .map(|(id, p)| {
                    let owner = g.consumer(p.consumer).name().to_vec();
                    format!("{id}/{}/{}/{owner:?}", p.delivery_time_ms, p.delivery_count)
                })
                .collect();
            let consumers: Vec<String> = g
                .consumers()
                .map(|(_, c)| format!("{:?}@{}:{}", c.name(), c.seen_time_ms, c.pending_len()))
                .collect();
            format!(
                "{name:?} {} {:?} {pel:?} {consumers:?}",
                g.last_id, g.entries_read
            )
        })
        .collect();
    format!(
        "{entries:?} len={} last={} first={} maxdel={} added={} {groups:?}",
        s.len(),
        s.last_id,
        s.first_id,
        s.max_deleted_entry_id,
        s.entries_added
    )
}

/// A stream with tombstones, mixed field sets, groups, pending entries and consumers
/// survives DUMP / RESTORE whole, whatever the node limits on either side.
#[test]
fn streams_round_trip_with_groups() {
    let big = NodeLimits {
        max_bytes: 4096,
        max_entries: 100,
    };
    let mut s = StreamValue::new();
    for i in 1..=40u64 {
        let v = i.to_string();
        let pairs: Vec<&[u8]> = if i % 5 == 0 {
            vec![b"other", v.as_bytes()]
        } else {
            vec![b"f", v.as_bytes(), b"g", b"x"]
        };
        s.append(StreamId::new(100 + i / 4, i % 4), &pairs, big);
    }
    for i in [3u64, 4, 17, 40] {
        assert!(s.delete(StreamId::new(100 + i / 4, i % 4)));
    }
    s.add_group(b"g1", ConsumerGroup::new(StreamId::MIN, Some(0)));
    s.add_group(b"g2", ConsumerGroup::new(s.last_id, None));
    let g = s.group_mut(b"g1").unwrap();
    let (alice, _) = g.consumer_for(b"alice", 5_000);
    let (bob, _) = g.consumer_for(b"bob", 6_000);
    let ids: Vec<StreamId> = s.entries().iter().take(6).map(|e| e.id).collect();
    s.group_read(b"g1", &ids[..4], Some(alice), 7_000);
    s.group_read(b"g1", &ids[4..], Some(bob), 8_000);
    s.group_mut(b"g1").unwrap().ack(ids[1]);
    let want = stream_state(&s);
    let e = Entry::new_value(b"x", Value::Stream(Box::new(s)), None, 0);
    let payload = dump_payload(&e, OPTS);
    match restore_payload(&payload, &LIM) {
        Ok(Object::Value(Value::Stream(back))) => {
            assert_eq!(stream_state(&back), want);
            assert!(back.node_count() > 5, "re-chunked with the loader's limits");
        }
        other => panic!("{other:?}"),
    }
    // Every truncation is an error, never a panic.
    for cut in 0..payload.len() - 10 {
        let mut p = payload[..cut].to_vec();
        p.extend_from_slice(&crate::RDB_VERSION.to_le_bytes());
        let crc = crate::format::crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        assert!(restore_payload(&p, &LIM).is_err());
    }
}

proptest! {
    /// Any list, set, hash and sorted set survives DUMP and RESTORE with its contents.
    #[test]
    fn collections_round_trip(
        items in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 1..200),
        ints in prop::collection::btree_set(any::<i64>(), 1..100),
    ) {
        let mut l = ListValue::new();
        let mut s = SetValue::default();
        let mut h = HashValue::default();
        let mut z = ZSetValue::default();
        for (i, it) in items.iter().enumerate() {
            l.push(false, it, NodeLimit::Count(16));
            s.insert(it, LIM.max_intset);
            h.set(it, &i.to_le_bytes(), LIM.hash);
            z.insert(it, i as f64 - 50.5, LIM.zset);
        }
        let mut is = SetValue::default();
        for i in &ints {
            is.insert(i.to_string().as_bytes(), LIM.max_intset);
        }
        for v in [Value::List(Box::new(l)), Value::Set(Box::new(s)), Value::Hash(h), Value::ZSet(Box::new(z)), Value::Set(Box::new(is))] {
            let e = Entry::new_value(b"k", v, None, 0);
            let back = match restore_payload(&dump_payload(&e, OPTS), &LIM) {
                Ok(Object::Value(v)) => Entry::new_value(b"k", v, None, 0),
                other => panic!("{other:?}"),
            };
            prop_assert_eq!(view(&e), view(&back));
        }
    }

    /// Arbitrary bytes never panic the loader.
    #[test]
    fn garbage_never_panics(tail in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut file = b"REDIS0009".to_vec();
        file.extend_from_slice(&tail);
        let _ = load_all(&file);
        let _ = restore_payload(&tail, &LIM);
    }
}

/// A ziplist of short strings and small integers, as Redis ≤ 6 wrote them.
fn ziplist(elems: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    let mut last = 10usize;
    for e in elems {
        let start = body.len();
        last = 10 + start;
        body.push(prev as u8);
        match e.parse::<i64>() {
            Ok(v @ 0..=12) if e.len() == 1 => body.push(0xF1 + v as u8),
            Ok(v) if i16::try_from(v).is_ok() && v.to_string() == *e => {
                body.push(0xC0);
                body.extend_from_slice(&(v as i16).to_le_bytes());
            }
            _ => {
                body.push(e.len() as u8);
                body.extend_from_slice(e.as_bytes());
            }
        }
        prev = body.len() - start;
    }
    let mut zl = Vec::new();
    zl.extend_from_slice(&((11 + body.len()) as u32).to_le_bytes());
    zl.extend_from_slice(&(last as u32).to_le_bytes());
    zl.extend_from_slice(&(elems.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    zl
}

/// A DUMP payload of RDB version 9 around `body` (type byte and value).
fn v9_payload(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&9u16.to_le_bytes());
    let crc = crate::format::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fn blob(ty: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    crate::write::write_len(&mut v, data.len() as u64);
    v.extend_from_slice(data);
    v
}

fn restored(body: &[u8]) -> Entry {
    match restore_payload(&v9_payload(body), &LIM) {
        Ok(obj) => obj.into_entry(b"k", None),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn older_encodings_load() {
    use crate::format::*;
    let items = |e: &Entry| view(e).3;
    let b = |s: &str| s.as_bytes().to_vec();
    // Lists: a ziplist, a quicklist of ziplists, a linked list.
    let zl = ziplist(&["a", "7", "-300", "hello"]);
    let want = vec![b("a"), b("7"), b("-300"), b("hello")];
    assert_eq!(items(&restored(&blob(TYPE_LIST_ZIPLIST, &zl))), want);
    let mut ql = vec![TYPE_LIST_QUICKLIST, 2];
    for z in [&zl, &ziplist(&["x"])] {
        crate::write::write_len(&mut ql, z.len() as u64);
        ql.extend_from_slice(z);
    }
    let mut want2 = want.clone();
    want2.push(b("x"));
    assert_eq!(items(&restored(&ql)), want2);
    assert_eq!(items(&restored(b"\x01\x02\x01a\x01b")), [b("a"), b("b")]);
    // Hashes: ziplist and zipmap.
    let e = restored(&blob(TYPE_HASH_ZIPLIST, &ziplist(&["f", "1", "g", "two"])));
    assert_eq!(
        (e.encoding(), items(&e)),
        ("listpack", vec![b("f"), b("1"), b("g"), b("two")])
    );
    let zm = b"\x02\x03foo\x03\x00bar\x05hello\x05\x02world!!\xff";
    let e = restored(&blob(TYPE_HASH_ZIPMAP, zm));
    assert_eq!(items(&e), [b("foo"), b("bar"), b("hello"), b("world")]);
    // Sorted sets: ziplist (scores as text or integers) and version 1 with text scores.
    let e = restored(&blob(TYPE_ZSET_ZIPLIST, &ziplist(&["a", "1.5", "b", "3"])));
    assert_eq!(e.encoding(), "listpack");
    match e.value() {
        ValueRef::ZSet(z) => assert_eq!(
            z.iter().collect::<Vec<_>>(),
            [(&b"a"[..], 1.5), (&b"b"[..], 3.0)]
        ),
        other => panic!("{other:?}"),
    }
    let e = restored(b"\x03\x02\x01a\x031.5\x01b\xfe");
    match e.value() {
        ValueRef::ZSet(z) => assert_eq!(
            z.iter().collect::<Vec<_>>(),
            [(&b"a"[..], 1.5), (&b"b"[..], f64::INFINITY)]
        ),
        other => panic!("{other:?}"),
    }
    // Duplicates and odd pair counts are corrupt.
    for bad in [
        blob(TYPE_HASH_ZIPLIST, &ziplist(&["f", "1", "f", "2"])),
        blob(TYPE_HASH_ZIPLIST, &ziplist(&["f", "1", "g"])),
        blob(TYPE_ZSET_ZIPLIST, &ziplist(&["a", "x"])),
        b"\x02\x02\x01a\x01a".to_vec(),
    ] {
        assert!(matches!(
            restore_payload(&v9_payload(&bad), &LIM),
            Err(RestoreError::Data(_))
        ));
    }
}
