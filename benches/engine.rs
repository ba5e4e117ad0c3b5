//! Criterion benches of the engine's hot paths:
//! - `cycle/standard_5000n_150000p`: one full cycle placing the standard workload (every job
//!   attempted once) on a fresh engine holding 5,000 nodes and 150,000 pending pods, all in
//!   one queue; `cycle/standard_1000_queues`: the same jobs spread round-robin over 1,000
//!   queues, so sibling order by dominant share is at work on every pop;
//! - `cycle/saturated_5000n_150000_waiting`: one cycle of a full cluster with 150,000 pods
//!   waiting across four queues, after 100 pods finished;
//! - `gang_64/commit` and `gang_64/rollback`: one 64-pod gang transaction on a 5,000-node
//!   snapshot that is half full, kept (on a fresh copy) or undone.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use phalanx_model::{ClusterEvent, PodRef, PodSpec, QueueSpec, ResourceId, Resources, Time};
use phalanx_scheduler::{
    Engine, EngineConfig, GpuDemand, ScorePolicy, Shape, Snapshot, Transaction,
};
use phalanx_simulator::synth::{StandardSpec, Workload};

/// The standard workload loaded into a fresh engine, its jobs spread over `queues` queues.
fn loaded_engine(nodes: usize, pods: usize, queues: usize) -> Engine {
    let w = Workload::standard(StandardSpec::new(nodes, pods));
    let mut engine = Engine::new(EngineConfig::default());
    let name = |i: usize| format!("root.q{:04}", i % queues);
    if queues > 1 {
        let specs = (0..queues).map(|i| QueueSpec::new(name(i))).collect();
        engine.apply(ClusterEvent::QueuesConfigured(specs)).unwrap();
    }
    for n in w.nodes {
        engine.apply(ClusterEvent::NodeUpserted(n)).unwrap();
    }
    for (i, mut j) in w.jobs.into_iter().enumerate() {
        if queues > 1 {
            j.queue = name(i);
        }
        engine.apply(ClusterEvent::JobSubmitted(j)).unwrap();
    }
    engine
}

fn cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("cycle");
    g.sample_size(10);
    for (label, queues) in [
        ("standard_5000n_150000p", 1),
        ("standard_1000_queues", 1000),
    ] {
        let engine = loaded_engine(5000, 150_000, queues);
        g.bench_function(label, |b| {
            b.iter_batched(
                || engine.clone(),
                |mut e| {
                    black_box(e.cycle(Time::ZERO).report.pods_placed);
                    e
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// The saturated shape ([`Workload::saturated`]) with its cluster filled, and the pods running.
fn saturated_engine(nodes: usize, waiting: usize) -> (Engine, Vec<PodRef>) {
    let (queues, w) = Workload::saturated(nodes, waiting, 1);
    let mut engine = Engine::new(EngineConfig::default());
    engine
        .apply(ClusterEvent::QueuesConfigured(queues))
        .unwrap();
    for n in w.nodes {
        engine.apply(ClusterEvent::NodeUpserted(n)).unwrap();
    }
    for j in w.jobs {
        engine.apply(ClusterEvent::JobSubmitted(j)).unwrap();
    }
    let mut running = Vec::new();
    loop {
        let out = engine.cycle(Time::ZERO);
        let binds: Vec<ClusterEvent> = out.decisions.iter().flat_map(|d| d.all_bound()).collect();
        if binds.is_empty() {
            break;
        }
        for b in binds {
            if let ClusterEvent::PodBound { pod, .. } = &b {
                running.push(pod.clone());
            }
            engine.apply(b).unwrap();
        }
    }
    (engine, running)
}

/// One cycle of a full 5,000-node cluster with 150,000 pods waiting, after 100 pods finished
/// (`phalanx bench --shape saturated` runs a stream of them).
fn saturated(c: &mut Criterion) {
    let (engine, running) = saturated_engine(5000, 150_000);
    let finished: Vec<ClusterEvent> = running
        .iter()
        .step_by((running.len() / 100).max(1))
        .take(100)
        .map(|pod| ClusterEvent::PodFinished {
            pod: pod.clone(),
            succeeded: true,
        })
        .collect();
    let mut g = c.benchmark_group("cycle");
    g.sample_size(10);
    g.bench_function("saturated_5000n_150000_waiting", |b| {
        b.iter_batched(
            || {
                let mut e = engine.clone();
                for f in &finished {
                    e.apply(f.clone()).unwrap();
                }
                e
            },
            |mut e| {
                black_box(e.cycle(Time(1000)).report.attempts);
                e
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A 5,000-node snapshot with every node half full of cpu.
fn half_full_snapshot() -> Snapshot {
    let w = Workload::standard(StandardSpec::new(5000, 0));
    let mut snap = Snapshot::default();
    for (i, n) in w.nodes.into_iter().enumerate() {
        let half = Resources::of(ResourceId::CPU, n.allocatable.get(ResourceId::CPU) / 2)
            .with(ResourceId::PODS, 20 + (i % 30) as i64);
        let id = snap.upsert_node(n);
        snap.assume(id, half);
    }
    snap
}

fn gang(c: &mut Criterion) {
    let snap = half_full_snapshot();
    let spec = PodSpec {
        requests: Resources::of(ResourceId::CPU, 4000).with(ResourceId::MEMORY, 16 << 30),
        ..Default::default()
    };
    let demand = GpuDemand::default();
    let mut g = c.benchmark_group("gang_64");
    g.bench_function("commit", |b| {
        b.iter_batched(
            || snap.clone(),
            |mut s| {
                let shape = Shape::new(&s, 0, &spec);
                let mut txn = Transaction::begin(BTreeMap::new());
                let placed = txn.place(&mut s, &shape, 64, ScorePolicy::Binpack, &demand);
                assert_eq!(placed, 64);
                black_box(txn.placements.len());
                // Returned, so criterion drops the 5,000-node copy outside the measurement.
                s
            },
            BatchSize::LargeInput,
        )
    });
    let mut s = snap.clone();
    g.bench_function("rollback", |b| {
        b.iter(|| {
            let shape = Shape::new(&s, 0, &spec);
            let mut txn = Transaction::begin(BTreeMap::new());
            let placed = txn.place(&mut s, &shape, 64, ScorePolicy::Binpack, &demand);
            assert_eq!(placed, 64);
            txn.rollback(&mut s);
        })
    });
    assert_eq!(
        s, snap,
        "rollback restored the snapshot after every iteration"
    );
    g.finish();
}

criterion_group!(benches, cycle, saturated, gang);
criterion_main!(benches);
