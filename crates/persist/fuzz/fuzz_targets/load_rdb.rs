//! Feeds arbitrary bytes to the RDB loader, both as a file body (after a valid header, so
//! the fuzzer spends its time in the opcodes and value encodings) and as a DUMP payload
//! (with a valid trailer appended, so the value decoders are reached past the checksum).
//!
//! Checks that nothing panics, and that a payload which loads also re-serializes and loads
//! back to a value of the same type.
#![no_main]

use flowkv_persist::format::{crc64, RDB_VERSION};
use flowkv_persist::{dump_payload, load, restore_payload, Limits, WriteOptions};
use flowkv_store::hash_value::HashLimits;
use flowkv_store::stream_value::NodeLimits;
use flowkv_store::list_value::NodeLimit;
use flowkv_store::zset_value::ZSetLimits;
use libfuzzer_sys::fuzz_target;

/// Small limits, so conversions between encodings are exercised too.
const LIM: Limits = Limits {
    hash: HashLimits {
        max_entries: 4,
        max_value: 8,
    },
    zset: ZSetLimits {
        max_listpack_entries: 4,
        max_listpack_value: 8,
    },
    max_intset: 4,
    list: NodeLimit::Count(3),
    stream: NodeLimits {
        max_bytes: 64,
        max_entries: 3,
    },
};

fuzz_target!(|data: &[u8]| {
    let mut file = b"REDIS0009".to_vec();
    file.extend_from_slice(data);
    let _ = load(&file[..], &LIM, 16, 0, |_, _| Ok(()));

    let mut payload = data.to_vec();
    payload.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    if let Ok(obj) = restore_payload(&payload, &LIM) {
        let e = obj.into_entry(b"k", None);
        let again = dump_payload(&e, WriteOptions { compress: true });
        let back = restore_payload(&again, &LIM).expect("re-serialized value loads");
        assert_eq!(back.into_entry(b"k", None).kind(), e.kind());
    }
});
