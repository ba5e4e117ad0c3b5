//! The cost of the DAG gate: the same 100,000 one-pod jobs run to completion through the
//! engine, once with 300,000 dependency edges (each job depends on 3 jobs among the 1,000
//! before it) and once with none. Each iteration submits every job, then cycles, binds and
//! finishes every placed pod until all jobs have succeeded. The cluster holds every pod at
//! once, so the difference is the gate's bookkeeping, not waiting for capacity.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use phalanx_model::{
    ClusterEvent, Decision, Job, Node, PodRef, PodSpec, ResourceId, Resources, Task, Time,
};
use phalanx_scheduler::{Engine, EngineConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const JOBS: usize = 100_000;

fn workload(edges: bool) -> (Vec<Node>, Vec<Job>) {
    let nodes = (0..1000)
        .map(|i| {
            Node::new(
                format!("n{i:04}"),
                Resources::of(ResourceId::CPU, 64_000)
                    .with(ResourceId::MEMORY, 256 << 30)
                    .with(ResourceId::PODS, 110),
            )
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let jobs = (0..JOBS)
        .map(|i| {
            let mut j = Job::new(format!("ns/j{i:06}"));
            j.min_member = 1;
            j.tasks.push(Task {
                name: "t".into(),
                replicas: 1,
                min_member: 0,
                pod: PodSpec {
                    requests: Resources::of(ResourceId::CPU, 100),
                    ..Default::default()
                },
            });
            if edges && i >= 3 {
                let lo = i.saturating_sub(1000);
                let mut deps = std::collections::BTreeSet::new();
                while deps.len() < 3 {
                    deps.insert(rng.random_range(lo..i));
                }
                j.depends_on = deps.into_iter().map(|d| format!("ns/j{d:06}")).collect();
            }
            j
        })
        .collect();
    (nodes, jobs)
}

/// Submits everything and runs it to completion; returns the cycles it took.
fn run(nodes: &[Node], jobs: Vec<Job>) -> u32 {
    let mut e = Engine::new(EngineConfig {
        max_attempts_per_cycle: usize::MAX,
        ..Default::default()
    });
    for n in nodes {
        e.apply(ClusterEvent::NodeUpserted(n.clone())).unwrap();
    }
    for j in jobs {
        e.apply(ClusterEvent::JobSubmitted(j)).unwrap();
    }
    let mut cycles = 0;
    loop {
        let out = e.cycle(Time(cycles as u64));
        cycles += 1;
        let mut bound = Vec::new();
        for d in out.decisions {
            if let Decision::BindGang { job, bindings } = d {
                for b in bindings {
                    let pod = PodRef {
                        job: job.clone(),
                        task: b.task,
                        index: b.index,
                    };
                    e.apply(ClusterEvent::PodBound {
                        pod: pod.clone(),
                        node: b.node,
                    })
                    .unwrap();
                    bound.push(pod);
                }
            }
        }
        if bound.is_empty() {
            return cycles;
        }
        for pod in bound {
            e.apply(ClusterEvent::PodFinished {
                pod,
                succeeded: true,
            })
            .unwrap();
        }
    }
}

fn gate(c: &mut Criterion) {
    let mut g = c.benchmark_group("dag_100k_jobs");
    g.sample_size(10);
    for (label, edges) in [("no_edges", false), ("300k_edges", true)] {
        let (nodes, jobs) = workload(edges);
        g.bench_function(label, |b| {
            b.iter_batched(
                || jobs.clone(),
                |jobs| black_box(run(&nodes, jobs)),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, gate);
criterion_main!(benches);
