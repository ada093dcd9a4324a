//! The thin-pointer [`Entry`] in the keyspace [`KeyTable`] against the safe layout it
//! replaced: a chained [`Dict`] of nodes holding a `Box<[u8]>` (fat pointer) with key and
//! value. Times a hit lookup and an overwrite on 100k 16-byte keys with 100-byte values,
//! and prints the heap bytes per key of both (counted by a wrapping global allocator, with
//! jemalloc-like size classes ignored: requested bytes only), which is where the unsafe code
//! pays: one allocation and no node per key.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use flowkv_store::dict::{Dict, DictItem};
use flowkv_store::hash::hash_bytes;
use flowkv_store::table::KeyTable;
use flowkv_store::Entry;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts the requested sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// The safe layout: key, then value, in one boxed slice.
struct Fat {
    data: Box<[u8]>,
    key_len: u32,
    meta: u32,
}

impl DictItem for Fat {
    fn key(&self) -> &[u8] {
        &self.data[..self.key_len as usize]
    }
}

fn fat(key: &[u8], val: &[u8]) -> Fat {
    Fat {
        data: [key, val].concat().into_boxed_slice(),
        key_len: key.len() as u32,
        meta: 0,
    }
}

fn bench(c: &mut Criterion) {
    let n = 100_000;
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect();
    let val = vec![b'x'; 100];

    let before = LIVE.load(Ordering::Relaxed);
    let mut thin = KeyTable::new();
    for k in &keys {
        thin.insert_new(hash_bytes(k), Entry::new_string(k, &val, None, 0));
    }
    while thin.rehash_steps(1000) {}
    let thin_bytes = LIVE.load(Ordering::Relaxed) - before;

    let before = LIVE.load(Ordering::Relaxed);
    let mut safe: Dict<Fat> = Dict::new();
    for k in &keys {
        safe.insert_new(hash_bytes(k), fat(k, &val));
    }
    while safe.rehash_steps(1000) {}
    let safe_bytes = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "heap bytes per key (requested): thin entry + KeyTable {:.1}, Box<[u8]> + Dict {:.1}",
        thin_bytes as f64 / n as f64,
        safe_bytes as f64 / n as f64
    );

    let mut g = c.benchmark_group("entry");
    let mut i = 0usize;
    g.bench_function("thin_get_hit", |b| {
        b.iter(|| {
            let k = &keys[i % n];
            i += 1;
            black_box(
                thin.get(hash_bytes(k), k)
                    .and_then(Entry::string)
                    .map(<[u8]>::len),
            )
        })
    });
    g.bench_function("safe_get_hit", |b| {
        b.iter(|| {
            let k = &keys[i % n];
            i += 1;
            black_box(
                safe.get(hash_bytes(k), k)
                    .map(|f| f.data.len() - f.key_len as usize),
            )
        })
    });
    g.bench_function("thin_overwrite", |b| {
        b.iter(|| {
            let k = &keys[i % n];
            i += 1;
            if let Some(e) = thin.get_mut(hash_bytes(k), k) {
                e.set_string(&val);
                e.set_lru(i as u32);
            }
        })
    });
    g.bench_function("safe_overwrite", |b| {
        b.iter(|| {
            let k = &keys[i % n];
            i += 1;
            if let Some(f) = safe.get_mut(hash_bytes(k), k) {
                let kl = f.key_len as usize;
                f.data[kl..].copy_from_slice(&val);
                f.meta = i as u32;
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
