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
//!
//! `dag_100k_jobs` is wall time, the controller's own work included. `dag_100k_jobs_engine`
//! counts only the time inside engine calls, so the baseline is the engine alone running the
//! same waves: the strict reading of "gating adds at most 5% to engine time".
//! `dag_100k_jobs_floor/bookkeeping` is the least any dependency tracking of these jobs costs,
//! with no engine: indexing the names, resolving 300,000 of them into dependents lists and
//! releasing the waves. `dag_100k_jobs_floor/index` is its first part alone, which the engine
//! pays with or without a gate (it finds jobs by name). What the gate adds to engine time is
//! best read against the difference.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use phalanx_model::{Job, Node};

#[path = "common/dag_workload.rs"]
mod workload;
use workload::{EngineTime, bookkeeping, name_index, run, run_controlled, workload};

fn gate(c: &mut Criterion) {
    let (nodes, plain) = workload(false);
    let (_, piped) = workload(true);
    let gated = run(&nodes, piped.clone(), &mut ());
    let controlled = run_controlled(&nodes, piped.clone(), &mut ());
    assert_eq!(
        gated, controlled,
        "the gate and the controller run the same waves"
    );
    assert_eq!(
        bookkeeping(&piped) + 1,
        gated,
        "the bookkeeping releases the engine's waves"
    );

    let mut g = c.benchmark_group("dag_100k_jobs");
    g.sample_size(10);
    type Wall = fn(&[Node], Vec<Job>, &mut ()) -> u32;
    let runs: [(&str, &Vec<Job>, Wall); 3] = [
        ("no_edges", &plain, run),
        ("controller", &piped, run_controlled),
        ("300k_edges", &piped, run),
    ];
    for (label, jobs, f) in runs {
        g.bench_function(label, |b| {
            b.iter_batched(
                || jobs.clone(),
                |jobs| black_box(f(&nodes, jobs, &mut ())),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("dag_100k_jobs_engine");
    g.sample_size(10);
    type Metered = fn(&[Node], Vec<Job>, &mut EngineTime) -> u32;
    let runs: [(&str, Metered); 2] = [("controller", run_controlled), ("300k_edges", run)];
    for (label, f) in runs {
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut spent = EngineTime::default();
                for _ in 0..iters {
                    black_box(f(&nodes, piped.clone(), &mut spent));
                }
                spent.0
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("dag_100k_jobs_floor");
    g.sample_size(10);
    g.bench_function("index", |b| b.iter(|| black_box(name_index(&piped))));
    g.bench_function("bookkeeping", |b| b.iter(|| black_box(bookkeeping(&piped))));
    g.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
