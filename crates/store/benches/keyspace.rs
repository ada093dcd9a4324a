//! Keyspace hot path: SET and GET of 16-byte keys with 100-byte values through the shard
//! locking API, as a command does it.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use flowkv_store::{Expire, KeyStats, Keyspace, ShardSet};

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect()
}

fn bench(c: &mut Criterion) {
    let ks = Keyspace::new(16, 4);
    let names = keys(100_000);
    let val = vec![b'x'; 100];
    let mut stats = KeyStats::default();
    let mut g = c.benchmark_group("keyspace");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("set_100b", |b| {
        b.iter(|| {
            let k = &names[i % names.len()];
            i += 1;
            let mut set = ShardSet::new();
            ks.add_shards(&mut set, [k.as_slice()]);
            let mut l = ks.lock(&set);
            l.db(0, 1, &mut stats).set_string(k, &val, Expire::Clear);
        })
    });
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            let k = &names[i % names.len()];
            i += 1;
            let mut set = ShardSet::new();
            ks.add_shards(&mut set, [k.as_slice()]);
            let mut l = ks.lock(&set);
            let mut db = l.db(0, 1, &mut stats);
            black_box(db.read(k).map(|e| e.string().map(<[u8]>::len)));
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
