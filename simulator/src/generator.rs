//! Synthetic scenarios for `phalanx simulate`: the same cluster and job family as
//! `phalanx bench` ([`Workload::standard`], unchanged), given a life over time by a second,
//! independent random stream: arrivals spread over a window, tenants (queues) of different
//! weights and demand, DAG pipelines, a few failing jobs and node failures.
//!
//! Both streams are ChaCha8 seeded from the one seed, so the same seed gives the same scenario on
//! every machine, and the bench's workload for a seed is untouched by anything here.

use phalanx_model::{Job, QueueSpec, ResourceTable, Span, Time};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::synth::{StandardSpec, Workload, pick};
use crate::trace::{Input, Scenario, SimJob};

/// The knobs of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenSpec {
    /// Nodes.
    pub nodes: usize,
    /// Pods over all jobs.
    pub pods: usize,
    /// Seed of both streams.
    pub seed: u64,
    /// Tenants as `(weight, share of the jobs)`; each becomes queue `root.tenant-<letter>`.
    pub tenants: Vec<(u32, f64)>,
    /// Jobs arrive uniformly over this window.
    pub arrival_window: Span,
    /// Fraction of jobs that start a pipeline of 3 to 5 stages (each depends on the one before).
    pub pipeline_heads: f64,
    /// Fraction of jobs whose pods fail.
    pub failing: f64,
    /// Gangs larger than this are split into several jobs of at most this many pods.
    pub max_gang: u32,
    /// Nodes that fail (one at a time, spread over the window), each back 10 minutes later.
    pub node_failures: usize,
    /// Requests over capacity, as in `phalanx bench`.
    pub demand: f64,
    /// Fraction of jobs that carry a deadline: each is due 1.25, 1.5 or 2 times its longest
    /// task's duration after its submission, drawn from a third stream (so deadlines change
    /// nothing else of the scenario).
    pub deadlines: f64,
}

impl GenSpec {
    /// `nodes` and `pods` with 8 tenants of weights 4,3,2,2,1,1,1,1 whose demand does not
    /// follow their weights, arrivals over an hour, requests 1.5 times the capacity in total
    /// (so the cluster saturates and queues matter), 2% pipeline heads, 1% failing jobs, one
    /// node failure.
    pub fn new(nodes: usize, pods: usize, seed: u64) -> Self {
        GenSpec {
            nodes,
            pods,
            seed,
            tenants: vec![
                (4, 0.20),
                (3, 0.25),
                (2, 0.05),
                (2, 0.15),
                (1, 0.15),
                (1, 0.05),
                (1, 0.10),
                (1, 0.05),
            ],
            arrival_window: Span(3_600_000),
            pipeline_heads: 0.02,
            failing: 0.01,
            max_gang: 512,
            node_failures: 1,
            demand: 1.5,
            deadlines: 0.0,
        }
    }

    /// The built-in scenario of `phalanx simulate` with no arguments: 1,000 nodes, 20,000 pods,
    /// 4 tenants of weights 4:2:1:1 (the lightest with the most demand), gangs up to 256 pods,
    /// twice the capacity requested over 30 minutes, pipelines, one node failure, a deadline
    /// on a quarter of the jobs.
    pub fn embedded() -> Self {
        GenSpec {
            tenants: vec![(4, 0.30), (2, 0.20), (1, 0.35), (1, 0.15)],
            max_gang: 256,
            arrival_window: Span(1_800_000),
            demand: 2.0,
            deadlines: 0.25,
            ..GenSpec::new(1000, 20_000, 1)
        }
    }
}

fn tenant_name(i: usize) -> String {
    let letter = (b'a' + (i % 26) as u8) as char;
    if i < 26 {
        format!("root.tenant-{letter}")
    } else {
        format!("root.tenant-{letter}{}", i / 26)
    }
}

/// Generates the scenario.
pub fn generate(spec: &GenSpec) -> Scenario {
    let w = Workload::standard(StandardSpec {
        seed: spec.seed,
        demand: spec.demand,
        ..StandardSpec::new(spec.nodes, spec.pods)
    });
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x51_4d_55_4c_41_54_45);
    let mut sc = Scenario {
        table: ResourceTable::new(),
        ..Default::default()
    };
    for (i, (weight, _)) in spec.tenants.iter().enumerate() {
        let mut q = QueueSpec::new(tenant_name(i));
        q.weight = (*weight).max(1);
        sc.queues.push(q);
    }
    let shares: Vec<f64> = spec.tenants.iter().map(|t| t.1).collect();

    // Split oversized gangs, keeping every pod.
    let max = spec.max_gang.max(1);
    let mut jobs: Vec<Job> = Vec::with_capacity(w.jobs.len());
    for j in w.jobs {
        if j.min_member <= max {
            jobs.push(j);
            continue;
        }
        let total = j.tasks[0].replicas;
        let parts = total.div_ceil(max);
        for k in 0..parts {
            let size = (total - k * max).min(max);
            let mut part = j.clone();
            part.name = format!("{}-part{k}", j.name);
            part.min_member = size;
            part.tasks[0].replicas = size;
            jobs.push(part);
        }
    }

    // Arrivals, in job order.
    let window = spec.arrival_window.0.max(1);
    let mut times: Vec<u64> = (0..jobs.len())
        .map(|_| rng.random_range(0..window))
        .collect();
    times.sort_unstable();
    let mut last_in_tenant: Vec<Option<usize>> = vec![None; spec.tenants.len()];
    let mut stages_left = vec![0u32; spec.tenants.len()];
    let mut fails_flags = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter_mut().enumerate() {
        job.submit_time = Time(times[i]);
        let t = if shares.is_empty() {
            usize::MAX
        } else {
            pick(&mut rng, &shares)
        };
        if t != usize::MAX {
            job.queue = tenant_name(t);
            // Pipelines: a head, then 2 to 4 stages of the same tenant, each after the last.
            if stages_left[t] > 0 {
                if let Some(prev) = last_in_tenant[t] {
                    job.depends_on.push(format!("pipe:{prev}"));
                }
                stages_left[t] -= 1;
            } else if rng.random_bool(spec.pipeline_heads.clamp(0.0, 1.0)) {
                stages_left[t] = rng.random_range(2..=4);
            }
            last_in_tenant[t] = if stages_left[t] > 0 || !job.depends_on.is_empty() {
                Some(i)
            } else {
                None
            };
        }
        fails_flags.push(rng.random_bool(spec.failing.clamp(0.0, 1.0)));
    }
    // Resolve pipeline references to names.
    let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    for job in &mut jobs {
        for d in &mut job.depends_on {
            if let Some(i) = d.strip_prefix("pipe:") {
                *d = names[i.parse::<usize>().expect("written above")].clone();
            }
        }
    }

    for n in w.nodes {
        sc.events.push((Time::ZERO, Input::Node(n)));
    }
    let node_names: Vec<String> = sc
        .initial_nodes()
        .map(|n| n.name.clone())
        .collect::<Vec<_>>();
    let mut due = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x44_45_41_44_4c_49_4e_45);
    for (i, (job, fails)) in jobs.into_iter().zip(fails_flags).enumerate() {
        let t = job.submit_time;
        let tasks = job.tasks.len();
        let deadline = due.random_bool(spec.deadlines.clamp(0.0, 1.0)).then(|| {
            let longest = job.tasks.iter().filter_map(|t| t.pod.duration).max();
            let slack = [1.25, 1.5, 2.0][due.random_range(0..3)];
            Span::from_secs_f64(longest.unwrap_or_default().as_secs_f64() * slack)
        });
        sc.jobs.push(SimJob {
            job,
            fails: vec![fails; tasks],
            deadline,
        });
        sc.events.push((t, Input::Submit(i)));
    }
    for k in 0..spec.node_failures.min(node_names.len()) {
        let at = Time(window * (k as u64 + 1) / (spec.node_failures as u64 + 1));
        let name = node_names[rng.random_range(0..node_names.len())].clone();
        sc.events.push((at, Input::NodeDown(name.clone())));
        sc.events.push((at + Span(600_000), Input::NodeUp(name)));
    }
    sc.sort_events();
    sc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_scenario_and_pipelines_point_backwards() {
        let spec = GenSpec::new(50, 2000, 3);
        let (a, b) = (generate(&spec), generate(&spec));
        assert_eq!(a.jobs, b.jobs);
        assert_eq!(a.pods(), 2000);
        let pos: std::collections::HashMap<&str, usize> = a
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.job.name.as_str(), i))
            .collect();
        let mut deps = 0;
        for (i, j) in a.jobs.iter().enumerate() {
            for d in &j.job.depends_on {
                assert!(pos[d.as_str()] < i);
                deps += 1;
            }
        }
        assert!(deps > 0, "some pipelines");
        assert!(crate::trace::dependency_cycle(&a.jobs).is_none());
    }

    #[test]
    fn embedded_gangs_stay_under_256() {
        let sc = generate(&GenSpec::embedded());
        assert_eq!(sc.pods(), 20_000);
        assert!(sc.jobs.iter().all(|j| j.job.min_member <= 256));
        assert_eq!(sc.queues.len(), 4);
    }
}
