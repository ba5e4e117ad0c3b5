//! The workload of the DAG gate's benchmarks, shared by `benches/dag.rs` (criterion) and
//! `examples/dag_cost.rs` (chosen variants in one process, for valgrind or perf).
//!
//! Every engine call goes through a [`Meter`]: `()` adds nothing, so wall time is the whole
//! run; [`EngineTime`] adds up the time spent inside the engine only, leaving out the driver
//! and the outside controller.

use phalanx_model::{
    ClusterEvent, Decision, Job, Node, PodRef, PodSpec, ResourceId, Resources, Task, Time,
};
use phalanx_scheduler::{Engine, EngineConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Jobs in the workload.
pub const JOBS: usize = 100_000;

/// A thousand 64-cpu nodes and the 100,000 one-pod jobs, each (with `edges`) depending on 3
/// of the 1,000 jobs before it.
pub fn workload(edges: bool) -> (Vec<Node>, Vec<Job>) {
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

/// Times the engine's calls, or not.
pub trait Meter {
    /// Runs one engine call.
    fn time<R>(&mut self, call: impl FnOnce() -> R) -> R;
}

impl Meter for () {
    #[inline(always)]
    fn time<R>(&mut self, call: impl FnOnce() -> R) -> R {
        call()
    }
}

/// Time spent inside engine calls (`apply`, `cycle`, and dropping the engine at the end).
#[derive(Debug, Default, Clone, Copy)]
pub struct EngineTime(pub std::time::Duration);

impl Meter for EngineTime {
    #[inline(always)]
    fn time<R>(&mut self, call: impl FnOnce() -> R) -> R {
        let start = std::time::Instant::now();
        let out = call();
        self.0 += start.elapsed();
        out
    }
}

fn engine_with(nodes: &[Node]) -> Engine {
    let mut e = Engine::new(EngineConfig {
        max_attempts_per_cycle: usize::MAX,
        ..Default::default()
    });
    for n in nodes {
        e.apply(ClusterEvent::NodeUpserted(n.clone())).unwrap();
    }
    e
}

/// Cycles, binds every placed pod and then finishes it, until a cycle places nothing;
/// `finished` hears of each job whose pod ended. Returns the cycles it took.
fn drive<M: Meter>(
    e: &mut Engine,
    m: &mut M,
    mut finished: impl FnMut(&mut Engine, &mut M, &str),
) -> u32 {
    let mut cycles = 0;
    loop {
        let out = m.time(|| e.cycle(Time(cycles as u64)));
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
                    let event = ClusterEvent::PodBound {
                        pod: pod.clone(),
                        node: b.node,
                    };
                    m.time(|| e.apply(event)).unwrap();
                    bound.push(pod);
                }
            }
        }
        if bound.is_empty() {
            return cycles;
        }
        for pod in bound {
            let job = pod.job.clone();
            let event = ClusterEvent::PodFinished {
                pod,
                succeeded: true,
            };
            m.time(|| e.apply(event)).unwrap();
            finished(e, m, &job);
        }
    }
}

/// Submits everything at once and runs it to completion; returns the cycles it took.
pub fn run(nodes: &[Node], jobs: Vec<Job>, m: &mut impl Meter) -> u32 {
    let mut e = m.time(|| engine_with(nodes));
    for j in jobs {
        m.time(|| e.apply(ClusterEvent::JobSubmitted(j))).unwrap();
    }
    let cycles = drive(&mut e, m, |_, _, _| {});
    m.time(|| drop(e));
    cycles
}

/// Submits the jobs without their dependencies, each once all of them have succeeded, as an
/// outside controller would; runs everything to completion and returns the cycles it took.
/// It finds jobs by name in the engine's own kind of table, so the baseline is not slowed by
/// a slower hasher.
pub fn run_controlled(nodes: &[Node], mut jobs: Vec<Job>, m: &mut impl Meter) -> u32 {
    let index: phalanx_queue::NameMap<usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.clone(), i))
        .collect();
    let mut unmet: Vec<usize> = jobs.iter().map(|j| j.depends_on.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
    for (i, j) in jobs.iter_mut().enumerate() {
        for d in std::mem::take(&mut j.depends_on) {
            dependents[index[&d]].push(i);
        }
    }
    let mut slots: Vec<Option<Job>> = jobs.into_iter().map(Some).collect();
    let mut e = m.time(|| engine_with(nodes));
    for i in 0..slots.len() {
        if unmet[i] == 0 {
            let j = slots[i].take().unwrap();
            m.time(|| e.apply(ClusterEvent::JobSubmitted(j))).unwrap();
        }
    }
    let cycles = drive(&mut e, m, |e, m, job| {
        for &k in &dependents[index[job]] {
            unmet[k] -= 1;
            if unmet[k] == 0 {
                let j = slots[k].take().unwrap();
                m.time(|| e.apply(ClusterEvent::JobSubmitted(j))).unwrap();
            }
        }
    });
    m.time(|| drop(e));
    cycles
}
