//! Criterion bench of the simulator: `replay/embedded_1000n_20000p` replays the built-in
//! scenario of `phalanx simulate` (1,000 nodes, 20,000 pods, 4 tenants, pipelines, a node
//! failure) through the world and the engine to the end, with the decision log hashed and
//! discarded. Generating the scenario is not timed.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use phalanx_simulator::generator::{GenSpec, generate};
use phalanx_simulator::world::{self, SimConfig};

fn replay(c: &mut Criterion) {
    let sc = generate(&GenSpec::embedded());
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.bench_function("embedded_1000n_20000p", |b| {
        b.iter(|| {
            let stats = world::run(
                &sc,
                &SimConfig::default(),
                &mut std::io::sink(),
                &mut |_| {},
            )
            .expect("a sink never fails");
            black_box(stats.decisions)
        })
    });
    g.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
