//! The cost of the DAG gate: the same 100,000 one-pod jobs run to completion through the
//! engine. Each iteration cycles, binds and finishes every placed pod until all jobs have
//! succeeded; the cluster holds every pod at once.
//!
//! - `300k_edges`: every job submitted at once with its dependencies (each on 3 jobs among the
//!   1,000 before it); the engine's DAG gate releases them as their dependencies succeed.
//! - `controller`: the same jobs without dependencies, each submitted by an outside controller
//!   (as schedulers without a gate need) once its dependencies have succeeded. Same waves, same
//!   cycles: the difference to `300k_edges` is what the gate adds.
//! - `no_edges`: no dependencies at all, everything in one cycle (for scale: the waves, not the
//!   gate, are what make pipelines take more cycles).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use phalanx_model::{Job, Node};

#[path = "common/dag_workload.rs"]
mod workload;
use workload::{run, run_controlled, workload};

fn gate(c: &mut Criterion) {
    let mut g = c.benchmark_group("dag_100k_jobs");
    g.sample_size(10);
    let (nodes, plain) = workload(false);
    let (_, piped) = workload(true);
    let gated = run(&nodes, piped.clone());
    let controlled = run_controlled(&nodes, piped.clone());
    assert_eq!(
        gated, controlled,
        "the gate and the controller run the same waves"
    );
    type Runner = fn(&[Node], Vec<Job>) -> u32;
    let runs: [(&str, &Vec<Job>, Runner); 3] = [
        ("no_edges", &plain, run),
        ("controller", &piped, run_controlled),
        ("300k_edges", &piped, run),
    ];
    for (label, jobs, f) in runs {
        g.bench_function(label, |b| {
            b.iter_batched(
                || jobs.clone(),
                |jobs| black_box(f(&nodes, jobs)),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
