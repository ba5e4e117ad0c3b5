//! Seeded synthetic clusters and workloads: the same seed gives the same cluster and jobs, on
//! every machine (ChaCha8, whose output is fixed by its specification).
//!
//! [`Workload::standard`] is the family `phalanx bench` and the simulator's generator use:
//! - nodes: 80% CPU nodes (64 cpu, 256Gi, 110 pods) and 20% GPU nodes (96 cpu, 768Gi, 8
//!   `nvidia.com/gpu`, 110 pods, tainted `nvidia.com/gpu=present:NoSchedule`);
//! - gang sizes: 40% one pod, 35% 2–8, 20% 9–64, 5% 65–512 (uniform inside each band);
//! - GPU jobs ask for 1, 2, 4 or 8 GPUs a pod (weights 4:3:2:1) with 6 cpu and 48Gi per GPU and
//!   tolerate the taint; they are drawn so GPU demand is `demand` (default [`DEMAND`]) of GPU
//!   capacity;
//! - CPU pods ask for 0.5, 1, 2, 4 or 8 cpu, with weights geometric in the size, the ratio
//!   solved so the mean makes cpu demand `demand` of the CPU nodes' capacity (as far as sizes
//!   0.5–8 allow); memory is 2 or 4 GiB per cpu, clamped to 1–32Gi.
//!
//! [`Workload::saturated`] is a full cluster with more jobs waiting across four tenant queues.
//!
//! [`Workload::kube_gang`] is kube-scheduler's `GangScheduling` perf shape: 5,000 nodes of
//! 4 cpu / 32Gi / 110 pods and 3-pod gangs of 100m / 100Mi.

use std::collections::BTreeMap;

use phalanx_model::{
    Job, Node, PodSpec, QueueSpec, ResourceId, Resources, Span, Taint, TaintEffect, Task, Time,
    Toleration, TolerationOperator,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Default demand of the standard workload as a fraction of capacity.
pub const DEMAND: f64 = 0.9;

/// The tenant queues of [`Workload::saturated`] (under `root`) and their weights.
pub const SATURATED_TENANTS: [(&str, u32); 4] = [("t0", 4), ("t1", 2), ("t2", 1), ("t3", 1)];

const GIB: i64 = 1 << 30;
const MIB: i64 = 1 << 20;

/// The taint on the standard workload's GPU nodes.
pub fn gpu_taint() -> Taint {
    Taint {
        key: "nvidia.com/gpu".into(),
        value: "present".into(),
        effect: TaintEffect::NoSchedule,
    }
}

/// A generated cluster and the jobs to run on it.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The jobs, in submission order.
    pub jobs: Vec<Job>,
}

/// The knobs of [`Workload::standard`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StandardSpec {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Pods over all jobs (the last job is cut to fit exactly).
    pub pods: usize,
    /// Seed.
    pub seed: u64,
    /// Jobs arrive uniformly over this span (zero: all at time zero).
    pub arrival_window: Span,
    /// Requests over capacity, per pool (CPU nodes' cpu, GPU nodes' GPUs); 0.9 by default.
    pub demand: f64,
}

impl StandardSpec {
    /// `nodes` and `pods` with seed 1, all jobs at time zero and the default demand.
    pub fn new(nodes: usize, pods: usize) -> Self {
        StandardSpec {
            nodes,
            pods,
            seed: 1,
            arrival_window: Span(0),
            demand: DEMAND,
        }
    }
}

fn node_resources(cpu: i64, mem_gib: i64, gpus: i64) -> Resources {
    Resources::of(ResourceId::CPU, cpu * 1000)
        .with(ResourceId::MEMORY, mem_gib * GIB)
        .with(ResourceId::PODS, 110)
        .with(ResourceId::GPU, gpus)
}

fn gang_size(rng: &mut ChaCha8Rng) -> u32 {
    match rng.random_range(0..100) {
        0..40 => 1,
        40..75 => rng.random_range(2..=8),
        75..95 => rng.random_range(9..=64),
        _ => rng.random_range(65..=512),
    }
}

/// Weights `r^k` over sizes `0.5 × 2^k`, k = 0..5, with `r` bisected so the mean is `target`.
fn cpu_size_weights(target_cpu: f64) -> [f64; 5] {
    let sizes = [0.5, 1.0, 2.0, 4.0, 8.0];
    let mean = |r: f64| {
        let w: Vec<f64> = (0..5).map(|k| r.powi(k)).collect();
        let total: f64 = w.iter().sum();
        w.iter().zip(sizes).map(|(w, s)| w * s).sum::<f64>() / total
    };
    let target = target_cpu.clamp(0.55, 7.5);
    let (mut lo, mut hi): (f64, f64) = (1e-6, 1e6);
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if mean(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let r = (lo * hi).sqrt();
    let w: Vec<f64> = (0..5).map(|k| r.powi(k)).collect();
    let total: f64 = w.iter().sum();
    [0, 1, 2, 3, 4].map(|k| w[k] / total)
}

/// Draws an index with probability proportional to its weight.
pub(crate) fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let mut x: f64 = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

impl Workload {
    /// The standard family (see the module docs).
    pub fn standard(spec: StandardSpec) -> Workload {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let gpu_nodes = spec.nodes / 5;
        let cpu_nodes = spec.nodes - gpu_nodes;
        let mut nodes = Vec::with_capacity(spec.nodes);
        for i in 0..spec.nodes {
            let gpu = i >= cpu_nodes;
            let name = if gpu {
                format!("gpu-{:05}", i - cpu_nodes)
            } else {
                format!("cpu-{i:05}")
            };
            let mut node = if gpu {
                Node::new(name.clone(), node_resources(96, 768, 8))
            } else {
                Node::new(name.clone(), node_resources(64, 256, 0))
            };
            node.labels
                .insert("kubernetes.io/hostname".into(), name.clone());
            if gpu {
                node.labels
                    .insert("nvidia.com/gpu.product".into(), "A100".into());
                node.taints.push(gpu_taint());
            }
            nodes.push(node);
        }

        const GPU_SIZES: [i64; 4] = [1, 2, 4, 8];
        const GPU_WEIGHTS: [f64; 4] = [4.0, 3.0, 2.0, 1.0];
        let mean_gpus = GPU_SIZES
            .iter()
            .zip(GPU_WEIGHTS)
            .map(|(s, w)| *s as f64 * w)
            .sum::<f64>()
            / GPU_WEIGHTS.iter().sum::<f64>();
        let gpu_pods_target = spec.demand * (gpu_nodes * 8) as f64 / mean_gpus;
        let p_gpu = if spec.pods == 0 {
            0.0
        } else {
            (gpu_pods_target / spec.pods as f64).min(0.5)
        };
        let cpu_pods = (spec.pods as f64 * (1.0 - p_gpu)).max(1.0);
        let cpu_weights = cpu_size_weights(spec.demand * (cpu_nodes * 64) as f64 / cpu_pods);
        let toleration = Toleration {
            key: "nvidia.com/gpu".into(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: Some(TaintEffect::NoSchedule),
        };

        let mut jobs = Vec::new();
        let mut pods_left = spec.pods;
        let (mut pods_made, mut gpu_pods_made) = (0usize, 0usize);
        while pods_left > 0 {
            let size = (gang_size(&mut rng) as usize).min(pods_left) as u32;
            pods_left -= size as usize;
            let id = jobs.len();
            // GPU jobs follow the target share of pods closely rather than by coin flips: gang
            // sizes are heavy-tailed, and a few 512-pod draws would swing GPU demand by tens of %.
            pods_made += size as usize;
            let gpu = (gpu_pods_made + size as usize / 2) as f64 <= p_gpu * pods_made as f64;
            if gpu {
                gpu_pods_made += size as usize;
            }
            let duration = Span(rng.random_range(60_000..=3_600_000));
            let pod = if gpu {
                let g = GPU_SIZES[pick(&mut rng, &GPU_WEIGHTS)];
                PodSpec {
                    requests: Resources::of(ResourceId::CPU, 6000 * g)
                        .with(ResourceId::MEMORY, 48 * GIB * g)
                        .with(ResourceId::GPU, g),
                    tolerations: vec![toleration.clone()],
                    duration: Some(duration),
                    ..Default::default()
                }
            } else {
                let cpu_m = 500i64 << pick(&mut rng, &cpu_weights);
                let gib_per_cpu = if rng.random_bool(0.5) { 2 } else { 4 };
                let mem = (cpu_m * gib_per_cpu * GIB / 1000).clamp(GIB, 32 * GIB);
                PodSpec {
                    requests: Resources::of(ResourceId::CPU, cpu_m).with(ResourceId::MEMORY, mem),
                    duration: Some(duration),
                    ..Default::default()
                }
            };
            let submit = if spec.arrival_window.0 == 0 {
                Time::ZERO
            } else {
                Time(rng.random_range(0..spec.arrival_window.0))
            };
            let mut job = Job::new(format!("bench/job-{id:06}"));
            job.priority = [0, 0, 0, 10, 100][rng.random_range(0..5)];
            job.min_member = size;
            job.submit_time = submit;
            job.tasks.push(Task {
                name: if gpu { "trainer" } else { "worker" }.into(),
                replicas: size,
                min_member: 0,
                pod,
            });
            jobs.push(job);
        }
        if spec.arrival_window.0 > 0 {
            jobs.sort_by_key(|j| j.submit_time);
        }
        Workload { nodes, jobs }
    }

    /// kube-scheduler's `GangScheduling` perf shape: 5,000 nodes of 4 cpu / 32Gi / 110 pods,
    /// `gangs` gangs of 3 pods of 100m / 100Mi.
    pub fn kube_gang(gangs: usize) -> Workload {
        let nodes = (0..5000)
            .map(|i| Node::new(format!("node-{i:04}"), node_resources(4, 32, 0)))
            .collect();
        let jobs = (0..gangs)
            .map(|i| {
                let mut job = Job::new(format!("gang/pg-{i:05}"));
                job.min_member = 3;
                job.tasks.push(Task {
                    name: "pod".into(),
                    replicas: 3,
                    min_member: 0,
                    pod: PodSpec {
                        requests: Resources::of(ResourceId::CPU, 100)
                            .with(ResourceId::MEMORY, 100 * MIB),
                        ..Default::default()
                    },
                });
                job
            })
            .collect();
        Workload { nodes, jobs }
    }

    /// The saturated shape (`phalanx bench --shape saturated`): the standard cluster of
    /// `nodes`, a first standard workload asking for all of it (30 pods a node, demand 1), and
    /// `waiting` more pods in a second one (jobs named `wait/...`) that find it full; jobs
    /// spread round-robin over [`SATURATED_TENANTS`]. Returns the queues and the workload,
    /// jobs in submission order.
    pub fn saturated(nodes: usize, waiting: usize, seed: u64) -> (Vec<QueueSpec>, Workload) {
        let fill = Workload::standard(StandardSpec {
            seed,
            demand: 1.0,
            ..StandardSpec::new(nodes, nodes * 30)
        });
        let wait = Workload::standard(StandardSpec {
            seed: seed + 1,
            demand: 1.0,
            ..StandardSpec::new(nodes, waiting)
        });
        let queues = SATURATED_TENANTS
            .iter()
            .map(|(name, weight)| QueueSpec {
                weight: *weight,
                ..QueueSpec::new(format!("root.{name}"))
            })
            .collect();
        let waiting = wait.jobs.into_iter().map(|mut j| {
            j.name = format!("wait/{}", j.name);
            j
        });
        let jobs = fill
            .jobs
            .into_iter()
            .chain(waiting)
            .enumerate()
            .map(|(i, mut j)| {
                j.queue = format!("root.{}", SATURATED_TENANTS[i % SATURATED_TENANTS.len()].0);
                j
            })
            .collect();
        (
            queues,
            Workload {
                nodes: fill.nodes,
                jobs,
            },
        )
    }

    /// Total pods over all jobs.
    pub fn pods(&self) -> u64 {
        self.jobs.iter().map(Job::replicas).sum()
    }

    /// Requests of all pods over allocatable of all nodes, per well-known resource with capacity.
    pub fn demand_ratio(&self) -> BTreeMap<&'static str, f64> {
        let cap = self
            .nodes
            .iter()
            .fold(Resources::ZERO, |a, n| a + n.allocatable);
        let want = self
            .jobs
            .iter()
            .fold(Resources::ZERO, |a, j| a + j.total_request());
        [ResourceId::CPU, ResourceId::MEMORY, ResourceId::GPU]
            .into_iter()
            .filter(|r| cap.get(*r) > 0)
            .map(|r| {
                (
                    r.well_known_name().expect("well known"),
                    want.get(r) as f64 / cap.get(r) as f64,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_workload() {
        let spec = StandardSpec {
            seed: 7,
            ..StandardSpec::new(100, 3000)
        };
        let (a, b) = (Workload::standard(spec), Workload::standard(spec));
        assert_eq!(a.jobs, b.jobs);
        assert_eq!(a.nodes, b.nodes);
        assert_eq!(a.pods(), 3000);
    }

    #[test]
    fn standard_demand_is_near_ninety_percent() {
        let w = Workload::standard(StandardSpec::new(5000, 150_000));
        let d = w.demand_ratio();
        assert!((0.85..0.95).contains(&d["nvidia.com/gpu"]), "{d:?}");
        // CPU jobs against the CPU nodes (the GPU nodes are tainted for them).
        let cpu_want: i64 = w
            .jobs
            .iter()
            .filter(|j| !j.wants_gpu())
            .map(|j| j.total_request().get(ResourceId::CPU))
            .sum();
        let cpu_cap: i64 = w
            .nodes
            .iter()
            .filter(|n| n.taints.is_empty())
            .map(|n| n.allocatable.get(ResourceId::CPU))
            .sum();
        let cpu = cpu_want as f64 / cpu_cap as f64;
        assert!((0.85..0.95).contains(&cpu), "cpu demand {cpu}");
        assert_eq!(
            w.nodes.iter().filter(|n| !n.taints.is_empty()).count(),
            1000
        );
        for j in &w.jobs {
            j.validate().unwrap();
        }
    }
}
