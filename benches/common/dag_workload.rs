//! The workload of the DAG gate's benchmarks, shared by `benches/dag.rs` (criterion) and
//! `examples/dag_cost.rs` (chosen variants in one process, for valgrind or perf).
//!
//! Every engine call goes through a [`Meter`]: `()` adds nothing, so wall time is the whole
//! run; [`EngineTime`] adds up the time spent inside the engine only, leaving out the driver
//! and the outside controller.

use phalanx_model::{
    ClusterEvent, Decision, Job, Node, PodSpec, ResourceId, Resources, Task, Time,
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
        for event in out.decisions.iter().flat_map(Decision::all_bound) {
            if let ClusterEvent::PodBound { pod, .. } = &event {
                bound.push(pod.clone());
            }
            m.time(|| e.apply(event)).unwrap();
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

/// What tracking dependencies needs at the least, wherever it is done: every job's unmet
/// dependency count and its dependents, by position, found through a name index.
pub struct Deps {
    /// Positions of the jobs by name.
    pub index: phalanx_queue::NameMap<usize>,
    unmet: Vec<u32>,
    dependents: Vec<Vec<u32>>,
}

impl Deps {
    /// Resolves every job's dependencies by name.
    pub fn of(jobs: &[Job]) -> Deps {
        let index = name_index(jobs);
        let mut dependents = vec![Vec::new(); jobs.len()];
        for (i, j) in jobs.iter().enumerate() {
            for d in &j.depends_on {
                dependents[index[d]].push(i as u32);
            }
        }
        let unmet = jobs.iter().map(|j| j.depends_on.len() as u32).collect();
        Deps {
            index,
            unmet,
            dependents,
        }
    }

    /// Whether the job at `i` waits on nothing.
    pub fn ready(&self, i: usize) -> bool {
        self.unmet[i] == 0
    }

    /// The job at `i` succeeded: `eligible` hears of each dependent whose last dependency it
    /// was.
    pub fn succeeded(&mut self, i: usize, mut eligible: impl FnMut(usize)) {
        for &k in &self.dependents[i] {
            let k = k as usize;
            self.unmet[k] -= 1;
            if self.unmet[k] == 0 {
                eligible(k);
            }
        }
    }
}

/// Positions of the jobs by name: what the engine keeps anyway, gate or not.
pub fn name_index(jobs: &[Job]) -> phalanx_queue::NameMap<usize> {
    jobs.iter()
        .enumerate()
        .map(|(i, j)| (j.name.clone(), i))
        .collect()
}

/// The floor under any dependency tracking of these jobs, with no engine at all: resolve the
/// names, then release wave after wave, every job of a wave succeeding at once as in the
/// engine's runs. Not even a name lookup per completion, which a controller hearing of pods by
/// name would need. Returns the waves (the engine's runs take one cycle more, the last one
/// finding nothing to do).
pub fn bookkeeping(jobs: &[Job]) -> u32 {
    let mut deps = Deps::of(jobs);
    let mut wave: Vec<usize> = (0..jobs.len()).filter(|&i| deps.ready(i)).collect();
    let mut next = Vec::new();
    let mut waves = 0;
    while !wave.is_empty() {
        waves += 1;
        for &i in &wave {
            deps.succeeded(i, |k| next.push(k));
        }
        std::mem::swap(&mut wave, &mut next);
        next.clear();
    }
    waves
}

/// Submits the jobs without their dependencies, each once all of them have succeeded, as an
/// outside controller would; runs everything to completion and returns the cycles it took.
/// It finds jobs by name in the engine's own kind of table, so the baseline is not slowed by
/// a slower hasher.
pub fn run_controlled(nodes: &[Node], mut jobs: Vec<Job>, m: &mut impl Meter) -> u32 {
    let mut deps = Deps::of(&jobs);
    for j in &mut jobs {
        j.depends_on = Vec::new();
    }
    let mut slots: Vec<Option<Job>> = jobs.into_iter().map(Some).collect();
    let mut e = m.time(|| engine_with(nodes));
    for (i, slot) in slots.iter_mut().enumerate() {
        if deps.ready(i) {
            let j = slot.take().unwrap();
            m.time(|| e.apply(ClusterEvent::JobSubmitted(j))).unwrap();
        }
    }
    let cycles = drive(&mut e, m, |e, m, job| {
        let i = deps.index[job];
        deps.succeeded(i, |k| {
            let j = slots[k].take().unwrap();
            m.time(|| e.apply(ClusterEvent::JobSubmitted(j))).unwrap();
        });
    });
    m.time(|| drop(e));
    cycles
}
