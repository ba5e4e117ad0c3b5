//! What-if transformations of a scenario for capacity planning, applied after it is read and
//! before it is simulated: add nodes (`--add-nodes`), remove nodes (`--remove-nodes`, a rack
//! or a pool), scale the load (`--scale-load`), fill the cluster (`--fill`), replace the queue
//! configuration (`--queues`).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use phalanx_model::{DEFAULT_QUEUE, Node, Quantity, ResourceId, Span, Time};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::trace::{self, Input, Scenario, SimJob, TraceError};

/// Why a what-if flag cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    /// `--add-nodes` is malformed.
    #[error(
        "--add-nodes {spec:?}: {why} (expected COUNT:RESOURCES such as 200:cpu=96,memory=768Gi,nvidia.com/gpu=8, or COUNT:NODE to copy an existing node)"
    )]
    AddNodes {
        /// The flag's value.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// `--remove-nodes` is malformed or matches no node.
    #[error(
        "--remove-nodes {spec:?}: {why} (expected a node name, a name prefix ending in '*' such as rack-07-*, or labels such as topology.kubernetes.io/zone=b,pool=gpu)"
    )]
    RemoveNodes {
        /// The flag's value.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// `--scale-load` is not a positive number.
    #[error("--scale-load {0}: must be a number above 0")]
    Scale(f64),
    /// `--fill` is not a positive number, or there is nothing to fill with.
    #[error("--fill {ratio}: {why}")]
    Fill {
        /// The flag's value.
        ratio: f64,
        /// What is wrong.
        why: String,
    },
    /// The `--queues` file could not be read.
    #[error("--queues: {0}")]
    Queues(#[from] TraceError),
    /// A job names a queue the `--queues` file does not define as a leaf.
    #[error(
        "--queues {file}: job {job} names queue {queue}, which the file does not define as a leaf queue"
    )]
    QueueMissing {
        /// The file.
        file: String,
        /// The job.
        job: String,
        /// Its queue.
        queue: String,
    },
}

/// Adds `COUNT` nodes described by `spec`: `COUNT:cpu=96,memory=768Gi,nvidia.com/gpu=8` (with
/// `pods` 110 unless given, no labels or taints), or `COUNT:NAME` for copies of node `NAME`
/// (labels and taints included). New nodes are named `whatif-<k>-<i>` and present from time 0.
pub fn add_nodes(sc: &mut Scenario, spec: &str, k: usize) -> Result<usize, WhatIfError> {
    let bad = |why: &str| WhatIfError::AddNodes {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let (count, what) = spec.split_once(':').ok_or_else(|| bad("no ':'"))?;
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| bad("COUNT is not a number"))?;
    let template = if what.contains('=') {
        let mut alloc = phalanx_model::Resources::ZERO;
        alloc.set(ResourceId::PODS, 110);
        for part in what.split(',') {
            let (name, q) = part
                .split_once('=')
                .ok_or_else(|| bad("a resource without '='"))?;
            let q = Quantity::parse(q.trim()).map_err(|e| bad(&e.to_string()))?;
            let id = sc
                .table
                .intern(name.trim())
                .map_err(|e| bad(&e.to_string()))?;
            let v = if id == ResourceId::CPU {
                q.milli_value()
            } else {
                q.value()
            }
            .map_err(|e| bad(&e.to_string()))?;
            alloc.set(id, v);
        }
        Node::new("", alloc)
    } else {
        sc.events
            .iter()
            .find_map(|(_, i)| match i {
                Input::Node(n) if n.name == what.trim() => Some(n.clone()),
                _ => None,
            })
            .ok_or_else(|| bad("no node of that name in the trace"))?
    };
    let mut added = Vec::with_capacity(count);
    for i in 0..count {
        let mut n = template.clone();
        n.name = format!("whatif-{k}-{i:05}");
        if n.labels.contains_key("kubernetes.io/hostname") {
            n.labels
                .insert("kubernetes.io/hostname".into(), n.name.clone());
        }
        added.push((Time::ZERO, Input::Node(n)));
    }
    // At time zero, after the trace's own nodes.
    let at = sc
        .events
        .iter()
        .position(|(t, i)| *t > Time::ZERO || !matches!(i, Input::Node(_)))
        .unwrap_or(sc.events.len());
    sc.events.splice(at..at, added);
    Ok(count)
}

/// Removes the nodes `spec` selects from the whole run (their arrival and any later failure or
/// return): a node name, a name prefix ending in `*`, or `key=value` labels separated by
/// commas, all of which a node must carry. Returns how many nodes went; a selector that
/// matches none is an error, so a typo does not pass for a what-if.
pub fn remove_nodes(sc: &mut Scenario, spec: &str) -> Result<usize, WhatIfError> {
    let bad = |why: &str| WhatIfError::RemoveNodes {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let spec_t = spec.trim();
    if spec_t.is_empty() {
        return Err(bad("empty"));
    }
    let labels: Vec<(&str, &str)> = if spec_t.contains('=') {
        spec_t
            .split(',')
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| bad("a label without '=' or without a key"))
            })
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let selected = |n: &Node| -> bool {
        if !labels.is_empty() {
            labels
                .iter()
                .all(|(k, v)| n.labels.get(*k).map(String::as_str) == Some(*v))
        } else if let Some(prefix) = spec_t.strip_suffix('*') {
            n.name.starts_with(prefix)
        } else {
            n.name == spec_t
        }
    };
    let gone: BTreeSet<String> = sc
        .events
        .iter()
        .filter_map(|(_, i)| match i {
            Input::Node(n) if selected(n) => Some(n.name.clone()),
            _ => None,
        })
        .collect();
    if gone.is_empty() {
        return Err(bad("no node of the workload matches"));
    }
    sc.events.retain(|(_, i)| match i {
        Input::Node(n) => !gone.contains(&n.name),
        Input::NodeDown(n) | Input::NodeUp(n) => !gone.contains(n),
        _ => true,
    });
    Ok(gone.len())
}

fn unit_hash(name: &str, copy: u32) -> f64 {
    // FNV-1a: stable across platforms and releases, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(copy.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Scales the load by `x`: each job is submitted `floor(x)` times, plus once more for a stable
/// pseudo-random fraction `x - floor(x)` of jobs (so 0.5 keeps about half of them, 1.5 adds
/// half again). Copy `k > 0` of job `a` is named `a~k`, arrives when `a` does, and depends on
/// copy `k` of each dependency where that copy exists, else on the original. A dependency on a
/// job that was dropped is dropped with it.
pub fn scale_load(sc: &mut Scenario, x: f64) -> Result<(), WhatIfError> {
    if !(x.is_finite() && x > 0.0) {
        return Err(WhatIfError::Scale(x));
    }
    let whole = x.floor() as u32;
    let frac = x - x.floor();
    let copies = |name: &str| -> Vec<u32> {
        (0..=whole)
            .filter(|&k| k < whole || unit_hash(name, k) < frac)
            .collect()
    };
    let kept: BTreeSet<(String, u32)> = sc
        .jobs
        .iter()
        .flat_map(|j| {
            let name = j.job.name.clone();
            copies(&j.job.name)
                .into_iter()
                .map(move |k| (name.clone(), k))
        })
        .collect();
    let name_of = |n: &str, k: u32| {
        if k == 0 {
            n.to_string()
        } else {
            format!("{n}~{k}")
        }
    };
    let mut jobs: Vec<SimJob> = Vec::new();
    let mut index: HashMap<String, Vec<usize>> = HashMap::new();
    for sj in &sc.jobs {
        for k in copies(&sj.job.name) {
            let mut c = sj.clone();
            c.job.name = name_of(&sj.job.name, k);
            c.job.depends_on = sj
                .job
                .depends_on
                .iter()
                .filter_map(|d| {
                    if kept.contains(&(d.clone(), k)) {
                        Some(name_of(d, k))
                    } else if kept.contains(&(d.clone(), 0)) {
                        Some(d.clone())
                    } else {
                        None
                    }
                })
                .collect();
            index
                .entry(sj.job.name.clone())
                .or_default()
                .push(jobs.len());
            jobs.push(c);
        }
    }
    let mut events = Vec::with_capacity(sc.events.len() + jobs.len());
    for (t, input) in std::mem::take(&mut sc.events) {
        match input {
            Input::Submit(i) => {
                for &n in index.get(&sc.jobs[i].job.name).into_iter().flatten() {
                    events.push((t, Input::Submit(n)));
                }
            }
            Input::JobDelete(name) => {
                if let Some(list) = index.get(&name) {
                    for &n in list {
                        events.push((t, Input::JobDelete(jobs[n].job.name.clone())));
                    }
                }
            }
            other => events.push((t, other)),
        }
    }
    sc.jobs = jobs;
    sc.events = events;
    Ok(())
}

/// The most jobs [`fill`] submits.
pub const MAX_FILL_JOBS: usize = 10_000_000;

/// What [`fill`] made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Filled {
    /// Jobs submitted.
    pub jobs: usize,
    /// Of them, copies of a job drawn again.
    pub copies: usize,
    /// GPUs they ask for, against the cluster's.
    pub gpus_asked: f64,
    /// GPUs of the nodes at time zero.
    pub gpus: f64,
}

/// Fills the cluster as the FGD paper's evaluation does (Weng et al., ATC'23, §6.1; their
/// simulator's workload tuning, `tuneUpPods` and the pod shuffle in
/// hkust-adsl/kubernetes-scheduler-simulator `pkg/simulator/simulator.go`): starting from the
/// workload's jobs, jobs drawn at random (with replacement, from `seed`) are added until the
/// next would take the GPUs asked past `ratio` × the GPUs of the nodes at time zero (dropped at
/// random instead while above it); the list is shuffled; job `i` arrives at `i` seconds; no pod
/// ever ends, and the run stops a minute after the last arrival, so the summary reads the
/// cluster as the arrivals left it. GPUs are counted in [`Scenario::gpu_lane`] (milli-GPUs on
/// the Alibaba GPU trace). Dependencies and deletions are dropped (the fill's jobs stand
/// alone), and so are node events after time zero. Copy `k` of job `a` is named `a~fill-k`.
pub fn fill(sc: &mut Scenario, ratio: f64, seed: u64) -> Result<Filled, WhatIfError> {
    let bad = |why: &str| WhatIfError::Fill {
        ratio,
        why: why.to_string(),
    };
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(bad("must be a number above 0"));
    }
    let lane = sc
        .gpu_lane()
        .ok_or_else(|| bad("no node at time zero has GPUs to fill"))?;
    if sc.jobs.is_empty() {
        return Err(bad("the workload has no job to draw from"));
    }
    let cap: i64 = sc.initial_nodes().map(|n| n.allocatable.get(lane.id)).sum();
    let target = ratio * cap as f64;
    let asks = |sj: &SimJob| -> i64 {
        sj.job
            .tasks
            .iter()
            .map(|t| t.pod.requests.get(lane.id) * i64::from(t.replicas))
            .sum()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked: Vec<usize> = (0..sc.jobs.len()).collect();
    let mut asked: i64 = sc.jobs.iter().map(asks).sum();
    while asked as f64 > target && !picked.is_empty() {
        let i = picked.swap_remove(rng.random_range(0..picked.len()));
        asked -= asks(&sc.jobs[i]);
    }
    if sc.jobs.iter().all(|j| asks(j) == 0) {
        return Err(bad("no job of the workload asks for GPUs"));
    }
    let originals = picked.len();
    loop {
        let i = rng.random_range(0..sc.jobs.len());
        let a = asks(&sc.jobs[i]);
        if (asked + a) as f64 > target {
            break;
        }
        asked += a;
        picked.push(i);
        if picked.len() > MAX_FILL_JOBS {
            return Err(bad(&format!(
                "would submit more than {MAX_FILL_JOBS} jobs; ask for less"
            )));
        }
    }
    if picked.iter().all(|&i| asks(&sc.jobs[i]) == 0) {
        return Err(bad(&format!(
            "{target} GPUs are fewer than any job of the workload asks for",
            target = target / lane.per_gpu as f64
        )));
    }
    picked.shuffle(&mut rng);
    let mut seen = vec![0usize; sc.jobs.len()];
    let forever = Some(Span(u64::MAX / 4));
    let jobs: Vec<SimJob> = picked
        .iter()
        .enumerate()
        .map(|(at, &i)| {
            let mut c = sc.jobs[i].clone();
            if seen[i] > 0 {
                c.job.name = format!("{}~fill-{}", c.job.name, seen[i]);
            }
            seen[i] += 1;
            c.job.depends_on.clear();
            c.job.submit_time = Time::ZERO + Span::from_secs_f64(at as f64);
            for t in &mut c.job.tasks {
                t.pod.duration = forever;
            }
            c.fails.iter_mut().for_each(|f| *f = false);
            c
        })
        .collect();
    let mut events: Vec<(Time, Input)> = std::mem::take(&mut sc.events)
        .into_iter()
        .filter(|(t, i)| matches!(i, Input::Node(_)) && *t == Time::ZERO)
        .collect();
    events.extend(
        jobs.iter()
            .enumerate()
            .map(|(i, j)| (j.job.submit_time, Input::Submit(i))),
    );
    let last = jobs.last().map_or(Time::ZERO, |j| j.job.submit_time);
    let filled = Filled {
        jobs: jobs.len(),
        copies: jobs.len() - originals,
        gpus_asked: asked as f64 / lane.per_gpu as f64,
        gpus: cap as f64 / lane.per_gpu as f64,
    };
    sc.jobs = jobs;
    sc.events = events;
    sc.end = Some(last + Span::from_secs_f64(60.0));
    Ok(filled)
}

/// Replaces the queue configuration with the queue records of `path` (a trace file, usually of
/// queue records only; other records in it are ignored).
pub fn replace_queues(sc: &mut Scenario, path: &Path) -> Result<(), WhatIfError> {
    let mut other = trace::read_file(path)?;
    // Resource names of the queue file get lanes in this scenario's table.
    let mut specs = other.queues;
    for q in &mut specs {
        let mut remap = |r: &mut phalanx_model::Resources| {
            let mut out = phalanx_model::Resources::ZERO;
            for (id, v) in r.iter_nonzero() {
                let name = other.table.name(id).to_string();
                if let Ok(nid) = sc.table.intern(&name) {
                    out.set(nid, v);
                }
            }
            *r = out;
        };
        let mut r = q.guarantee;
        remap(&mut r);
        q.guarantee = r;
        if let Some(d) = q.deserved.as_mut() {
            remap(d);
        }
        if let Some(c) = q.capability.as_mut() {
            remap(c);
        }
    }
    other.table = Default::default();
    let mut known: BTreeSet<String> = BTreeSet::from(["root".into(), DEFAULT_QUEUE.into()]);
    for q in &specs {
        let mut path_so_far = String::new();
        for part in q.name.split('.') {
            if !path_so_far.is_empty() {
                path_so_far.push('.');
            }
            path_so_far.push_str(part);
            known.insert(path_so_far.clone());
        }
    }
    for j in &sc.jobs {
        if !known.contains(&j.job.queue) || trace::child_of(&known, &j.job.queue).is_some() {
            return Err(WhatIfError::QueueMissing {
                file: path.display().to_string(),
                job: j.job.name.clone(),
                queue: j.job.queue.clone(),
            });
        }
    }
    sc.queues = specs;
    Ok(())
}
