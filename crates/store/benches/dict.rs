//! Micro-benchmarks of the keyspace hash table (`flowkv_store::dict`), with std's HashMap as
//! a yardstick, plus SCAN and sampling. Run: `cargo bench -p flowkv-store --bench dict`.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flowkv_store::dict::{Dict, DictItem};
use flowkv_store::hash::hash_bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;

struct Item {
    key: Box<[u8]>,
    val: u64,
}

impl DictItem for Item {
    fn key(&self) -> &[u8] {
        &self.key
    }
}

const N: u64 = 100_000;

fn keys(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("key:{i:010}").into_bytes())
        .collect()
}

fn filled(keys: &[Vec<u8>]) -> Dict<Item> {
    let mut d = Dict::new();
    for (i, k) in keys.iter().enumerate() {
        d.insert_new(
            hash_bytes(k),
            Item {
                key: k.clone().into_boxed_slice(),
                val: i as u64,
            },
        );
    }
    while d.rehash_steps(1000) {}
    d
}

fn bench_insert(c: &mut Criterion) {
    let ks = keys(N);
    let mut g = c.benchmark_group("insert");
    g.throughput(Throughput::Elements(N));
    g.bench_function("dict/insert_new", |b| {
        b.iter_batched(
            || ks.clone(),
            |ks| {
                let mut d = Dict::new();
                for k in ks {
                    let h = hash_bytes(&k);
                    d.insert_new(
                        h,
                        Item {
                            key: k.into_boxed_slice(),
                            val: 0,
                        },
                    );
                }
                d
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("dict/insert", |b| {
        b.iter_batched(
            || ks.clone(),
            |ks| {
                let mut d = Dict::new();
                for k in ks {
                    let h = hash_bytes(&k);
                    d.insert(
                        h,
                        Item {
                            key: k.into_boxed_slice(),
                            val: 0,
                        },
                    );
                }
                d
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("std_hashmap/insert", |b| {
        b.iter_batched(
            || ks.clone(),
            |ks| {
                let mut m = HashMap::new();
                for k in ks {
                    m.insert(k.into_boxed_slice(), 0u64);
                }
                m
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_lookup(c: &mut Criterion) {
    let ks = keys(N);
    let misses: Vec<Vec<u8>> = (0..N).map(|i| format!("nokey:{i}").into_bytes()).collect();
    let d = filled(&ks);
    let m: HashMap<Box<[u8]>, u64> = ks
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone().into_boxed_slice(), i as u64))
        .collect();
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(N));
    g.bench_function("dict/get_hit", |b| {
        b.iter(|| {
            let mut s = 0;
            for k in &ks {
                s += d.get(hash_bytes(k), k).map_or(0, |x| x.val);
            }
            black_box(s)
        })
    });
    g.bench_function("dict/get_miss", |b| {
        b.iter(|| {
            let mut s = 0;
            for k in &misses {
                s += d.get(hash_bytes(k), k).is_some() as u64;
            }
            black_box(s)
        })
    });
    g.bench_function("std_hashmap/get_hit", |b| {
        b.iter(|| {
            let mut s = 0;
            for k in &ks {
                s += m.get(k.as_slice()).copied().unwrap_or(0);
            }
            black_box(s)
        })
    });
    g.finish();
}

fn bench_remove(c: &mut Criterion) {
    let ks = keys(N);
    let d = filled(&ks);
    let mut g = c.benchmark_group("remove");
    g.throughput(Throughput::Elements(N));
    g.bench_function("dict/remove_all", |b| {
        b.iter_batched(
            || {
                let mut d2 = Dict::new();
                for x in d.iter() {
                    d2.insert_new(
                        hash_bytes(&x.key),
                        Item {
                            key: x.key.clone(),
                            val: x.val,
                        },
                    );
                }
                d2
            },
            |mut d2| {
                for k in &ks {
                    black_box(d2.remove(hash_bytes(k), k));
                }
                d2
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_scan_sample(c: &mut Criterion) {
    let ks = keys(N);
    let d = filled(&ks);
    let mut g = c.benchmark_group("walk");
    g.throughput(Throughput::Elements(N));
    g.bench_function("dict/scan_full", |b| {
        b.iter(|| {
            let mut n = 0u64;
            let mut cursor = 0;
            loop {
                cursor = d.scan(cursor, |x| n += x.val & 1);
                if cursor == 0 {
                    break;
                }
            }
            black_box(n)
        })
    });
    g.bench_function("dict/iter", |b| {
        b.iter(|| black_box(d.iter().map(|x| x.val & 1).sum::<u64>()))
    });
    g.finish();

    let mut g = c.benchmark_group("sampling");
    let mut rng = StdRng::seed_from_u64(1);
    g.bench_function("dict/random", |b| {
        b.iter(|| black_box(d.random(&mut rng).map(|x| x.val)))
    });
    g.bench_function("dict/sample_16", |b| {
        b.iter(|| {
            let mut s = 0;
            d.sample(16, &mut rng, |x| s += x.val);
            black_box(s)
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_insert,
    bench_lookup,
    bench_remove,
    bench_scan_sample
);
criterion_main!(benches);
