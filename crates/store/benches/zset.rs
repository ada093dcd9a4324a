//! Micro-benchmarks of the sorted-set skiplist (`flowkv_store::zset_value`): the ZADD shapes
//! redis-benchmark drives (new members into a large set, score updates of existing ones) and
//! rank lookups. Run: `cargo bench -p flowkv-store --bench zset`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use flowkv_store::zset_value::{ZSetLimits, ZSetValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = 100_000;
const LIMITS: ZSetLimits = ZSetLimits {
    max_listpack_entries: 128,
    max_listpack_value: 64,
};

fn member(i: usize) -> Vec<u8> {
    format!("element:{i:012}").into_bytes()
}

/// A skiplist-encoded set of `N` members with random scores.
fn filled(rng: &mut StdRng) -> ZSetValue {
    let mut z = ZSetValue::default();
    for i in 0..N {
        z.insert(&member(i), rng.gen_range(0.0..1e6), LIMITS);
    }
    z
}

fn zadd(c: &mut Criterion) {
    let mut g = c.benchmark_group("zset");
    g.throughput(Throughput::Elements(1));
    let mut rng = StdRng::seed_from_u64(7);
    let mut z = filled(&mut rng);
    let mut next = N;
    g.bench_function("insert_new_into_100k", |b| {
        b.iter(|| {
            next += 1;
            // Keep the size steady: every insert pairs with a removal of an old member.
            z.insert(&member(next), rng.gen_range(0.0..1e6), LIMITS);
            z.remove(&member(next - N));
        })
    });
    let mut z = filled(&mut rng);
    g.bench_function("update_score_in_100k", |b| {
        b.iter(|| {
            let i = rng.gen_range(0..N);
            z.insert(&member(i), rng.gen_range(0.0..1e6), LIMITS);
        })
    });
    g.bench_function("rank_in_100k", |b| {
        b.iter(|| black_box(z.rank(&member(rng.gen_range(0..N)))))
    });
    g.finish();
}

criterion_group!(benches, zadd);
criterion_main!(benches);
