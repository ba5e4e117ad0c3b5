//! Criterion bench of the queue tree, `tree/pop_allocate_push_10k_queues_100k_jobs`: one
//! scheduling turn on a tree of 10,000 leaf queues (100 parents of 100) holding 100,000
//! pending jobs: pop the next job by hierarchical DRF, count its allocation up the tree, push
//! it back. Three operations. (The engine cycle with 1,000 queues is in `benches/engine.rs`.)

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use phalanx_model::{QueueSpec, ResourceId, Resources, Time};
use phalanx_queue::OrderKey;
use phalanx_queue::tree::QueueTree;

fn leaf(i: usize) -> String {
    format!("root.org{:03}.team{:03}", i / 100, i % 100)
}

fn tree(c: &mut Criterion) {
    let specs: Vec<QueueSpec> = (0..10_000)
        .map(|i| QueueSpec {
            weight: 1 + (i % 7) as u32,
            ..QueueSpec::new(leaf(i))
        })
        .collect();
    let mut t = QueueTree::configured(&specs).unwrap();
    t.set_capacity(Resources::of(ResourceId::CPU, 1 << 40));
    let one = Resources::of(ResourceId::CPU, 1000);
    for j in 0..100_000u32 {
        let key = OrderKey::new(0, Default::default(), Time(j as u64), j);
        t.push(j, &leaf(j as usize % 10_000), key, one).unwrap();
    }
    let mut g = c.benchmark_group("tree");
    let mut next = 100_000u32;
    g.bench_function("pop_allocate_push_10k_queues_100k_jobs", |b| {
        b.iter(|| {
            let (job, _) = t.pop().expect("jobs are pushed back");
            let q = leaf(job as usize % 10_000);
            t.allocate(&q, one, true);
            next += 1;
            let key = OrderKey::new(0, Default::default(), Time(next as u64), job);
            t.push(job, &q, key, one).unwrap();
            black_box(job)
        })
    });
    g.finish();
}

criterion_group!(benches, tree);
criterion_main!(benches);
