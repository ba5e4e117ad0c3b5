//! What a run measured, as the contract's `summary.json` ([`Summary`]), a one-screen table for
//! terminals ([`Summary::table`]), a self-contained `report.html` of inline SVG charts
//! ([`html`]) that opens offline (no scripts, fonts or styles from anywhere else; one embedded
//! script, `report.js`, adds hover readouts and zoom) and `series.csv` ([`series_csv`]).
//!
//! Definitions:
//! - `utilization`: allocated over allocatable per resource, integrated over virtual time from 0
//!   to the last event (so a node that is down counts for nothing while it is down);
//! - a job's wait: from when it became eligible (submitted, and every job it depends on
//!   succeeded: `JobStat::eligible`) until its gang first ran (`min_member` pods bound; in the
//!   baseline, when its barrier opened, since partly placed workers make no progress); jobs that
//!   never got there have no wait and are counted in `jobs_never_started`;
//! - a queue's allocated share: its dominant share (the largest, over resources other than pod
//!   slots, of its allocation over the cluster's allocatable), averaged over virtual time;
//! - a queue's deserved share: the dominant share of its `deserved` if it has one, else its
//!   weight over its siblings' weights, down the tree (siblings: queues configured or used);
//! - `jain_fairness`: Jain's index over queues with jobs of (mean allocated share / deserved
//!   share): 1 when every queue got the same fraction of what it deserved;
//! - `makespan_s`: from the first submission to the last job end;
//! - `incomplete_gang_resource_s`: resource-seconds held by pods of gangs with fewer than
//!   `min_member` pods running (see `world` for the baseline's barrier model);
//! - `goodput`: resource-seconds of work that completed (pods that succeeded, for the time their
//!   work ran) over the allocatable resource-seconds of the run, per resource; the headline
//!   figure is on GPUs where the cluster has any, else on CPU (`goodput_resource`);
//! - `work_evicted_resource_s`: resource-seconds of work thrown away by evictions (reclaim,
//!   preemption, failed nodes): what evicted pods had run;
//! - `stranded_gpu_share`: GPUs free on nodes whose free CPU or memory is below the smallest
//!   GPU pod's request (no GPU pod of the workload could use them), over allocatable GPUs,
//!   averaged over time; absent when no pod asks for a GPU. GPUs are counted in the
//!   scenario's GPU lane (`Scenario::gpu_lane`: milli-GPUs where nodes offer them);
//! - `gpus_at_end`: where the run stopped with pods still held (`--fill`), the GPUs allocated,
//!   unallocated and stranded at that moment: the FGD paper's allocation rate and unallocated
//!   GPUs;
//! - `wait_p50_s`/`wait_p95_s`/`wait_p99_s` and `waits_by_size`: the same wait, over every job
//!   that became eligible, where a job still waiting at the end of the run counts with its wait
//!   so far (so a policy cannot look better by never starting a gang); jobs that ended without
//!   starting (a failed dependency, deleted) or never became eligible are left out. Size classes are by `min_member`;
//!   large gangs are those at or above the 90th percentile of `min_member` over gangs (jobs
//!   with `min_member` above 1), `large_gang_min_member`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use phalanx_model::{QueueSpec, ResourceId, ResourceTable, Resources, Span, Time};
use serde::Serialize;

use crate::trace::GpuLane;
use crate::world::{JobEnd, Mode, RunStats, Series};

/// Per-queue figures.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    /// Jobs submitted to it.
    pub jobs: u64,
    /// Jobs of it whose gang ran at least once.
    pub started: u64,
    /// Mean wait of its placed jobs, seconds.
    pub mean_wait_s: f64,
    /// 95th percentile wait, seconds.
    pub p95_wait_s: f64,
    /// Time-averaged dominant share of the cluster it held.
    pub mean_allocated_share: f64,
    /// Its deserved dominant share.
    pub deserved_share: f64,
    /// Its weight among its siblings (1 when the scenario has no record for it).
    pub weight: u32,
    /// Its guarantee per resource (cpu in cores, memory in bytes, others in units).
    pub guarantee: BTreeMap<String, f64>,
    /// Its configured deserved share per resource (absent: from the weights).
    pub deserved: Option<BTreeMap<String, f64>>,
    /// Its capability per resource (absent: unlimited).
    pub capability: Option<BTreeMap<String, f64>>,
    /// What it held per resource, averaged over the run.
    pub mean_allocated: BTreeMap<String, f64>,
}

/// Waits of a class of jobs (see the module docs for what counts).
#[derive(Debug, Clone, Default, Serialize)]
pub struct WaitSummary {
    /// Jobs in the class.
    pub jobs: u64,
    /// Of those, jobs still waiting at the end (counted with their wait so far).
    pub waiting_at_end: u64,
    /// Median wait, seconds.
    pub p50_s: f64,
    /// 95th percentile, seconds.
    pub p95_s: f64,
    /// 99th percentile, seconds.
    pub p99_s: f64,
}

impl WaitSummary {
    fn of(mut waits: Vec<f64>, waiting_at_end: u64) -> WaitSummary {
        waits.sort_by(f64::total_cmp);
        WaitSummary {
            jobs: waits.len() as u64,
            waiting_at_end,
            p50_s: percentile(&waits, 0.50),
            p95_s: percentile(&waits, 0.95),
            p99_s: percentile(&waits, 0.99),
        }
    }
}

/// The waits of one class of jobs (a size class, a priority).
#[derive(Debug, Clone, Serialize)]
pub struct ClassWaits {
    /// The class: `1`, `2-8`, `9-64`, `65+` by `min_member`, or a priority.
    pub class: String,
    /// Its waits.
    #[serde(flatten)]
    pub waits: WaitSummary,
}

/// The size classes of `waits_by_size`, by `min_member`: name and smallest member count.
pub const SIZE_CLASSES: [(&str, u32); 4] = [("1", 1), ("2-8", 2), ("9-64", 9), ("65+", 65)];

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `gang` (Phalanx) or `baseline`.
    pub mode: Mode,
    /// Nodes ever in the cluster.
    pub nodes: usize,
    /// Jobs in the scenario.
    pub jobs: usize,
    /// Pods in the scenario.
    pub pods: u64,
    /// Jobs that succeeded.
    pub jobs_succeeded: u64,
    /// Jobs that failed.
    pub jobs_failed: u64,
    /// Jobs deleted.
    pub jobs_deleted: u64,
    /// Jobs not running and not ended when the trace ran out (includes ones never submitted).
    pub jobs_pending_at_end: u64,
    /// Jobs with pods still running when the trace ran out.
    pub jobs_running_at_end: u64,
    /// Jobs whose gang never ran.
    pub jobs_never_started: u64,
    /// First submission to last job end, virtual seconds.
    pub makespan_s: f64,
    /// Virtual time of the last event.
    pub end_s: f64,
    /// Wall time of the run, seconds.
    pub wall_s: f64,
    /// Events processed per wall second.
    pub events_per_s: f64,
    /// Events processed.
    pub events: u64,
    /// Engine cycles.
    pub cycles: u64,
    /// Lines in the decision log.
    pub decisions: u64,
    /// Mean utilisation per resource.
    pub utilization: BTreeMap<String, f64>,
    /// Per queue.
    pub queues: BTreeMap<String, QueueSummary>,
    /// Jain's fairness index over queues.
    pub jain_fairness: f64,
    /// Resource-seconds held by incomplete gangs, per resource (cpu in cores).
    pub incomplete_gang_resource_s: BTreeMap<String, f64>,
    /// Work completed over capacity, on `goodput_resource`.
    pub goodput: f64,
    /// The resource of `goodput`: `nvidia.com/gpu` where the cluster has GPUs, else `cpu`.
    pub goodput_resource: String,
    /// Work completed over capacity, per resource.
    pub goodput_by_resource: BTreeMap<String, f64>,
    /// Pods evicted after their work had started.
    pub pods_evicted: u64,
    /// Resource-seconds of work evictions threw away, per resource (cpu in cores).
    pub work_evicted_resource_s: BTreeMap<String, f64>,
    /// Stranded GPUs over allocatable GPUs, averaged over time; absent without GPU pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stranded_gpu_share: Option<f64>,
    /// The GPUs when the run stopped with pods still held (a `--fill`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus_at_end: Option<GpusAtEnd>,
    /// Waits over every job that became eligible (see the module docs).
    pub wait_p50_s: f64,
    /// 95th percentile of the same.
    pub wait_p95_s: f64,
    /// 99th percentile of the same.
    pub wait_p99_s: f64,
    /// The same waits per size class ([`SIZE_CLASSES`]), smallest first.
    pub waits_by_size: Vec<ClassWaits>,
    /// The same waits per priority of the trace, lowest first.
    pub waits_by_priority: Vec<ClassWaits>,
    /// Waits of the jobs of the trace's highest priority.
    pub top_priority: WaitSummary,
    /// Gangs of at least this many members are large (0: the scenario has no gangs).
    pub large_gang_min_member: u32,
    /// Waits of the large gangs.
    pub large_gangs: WaitSummary,
    /// Events the engine refused, by label (should be empty).
    pub engine_event_errors: BTreeMap<String, u64>,
    /// SHA-256 of `decisions.jsonl`.
    pub decision_log_sha256: String,
    /// Peak resident memory of the process so far, MiB.
    pub peak_rss_mb: f64,
    /// The baseline run, with `--compare baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Box<Summary>>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Deserved dominant share of every queue in `names`, from the configured specs.
pub fn deserved_shares(specs: &[QueueSpec], names: &[String], capacity: &Resources) -> Vec<f64> {
    let mut all: BTreeSet<String> = BTreeSet::new();
    for n in specs.iter().map(|s| &s.name).chain(names) {
        let mut path = String::new();
        for part in n.split('.') {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(part);
            all.insert(path.clone());
        }
    }
    let spec = |n: &str| specs.iter().find(|s| s.name == n);
    let weight = |n: &str| spec(n).map_or(1, |s| s.weight) as f64;
    let parent = |n: &str| n.rsplit_once('.').map(|(p, _)| p.to_string());
    fn share(
        n: &str,
        all: &BTreeSet<String>,
        weight: &dyn Fn(&str) -> f64,
        parent: &dyn Fn(&str) -> Option<String>,
    ) -> f64 {
        let Some(p) = parent(n) else { return 1.0 };
        let siblings: f64 = all
            .iter()
            .filter(|s| parent(s).as_deref() == Some(p.as_str()))
            .map(|s| weight(s))
            .sum();
        share(&p, all, weight, parent) * weight(n) / siblings.max(1e-9)
    }
    names
        .iter()
        .map(|n| match spec(n).and_then(|s| s.deserved) {
            Some(d) => d
                .iter_nonzero()
                .filter(|(id, _)| *id != ResourceId::PODS && capacity.get(*id) > 0)
                .map(|(id, v)| v as f64 / capacity.get(id) as f64)
                .fold(0.0, f64::max),
            None => share(n, &all, &weight, &parent),
        })
        .collect()
}

/// Peak resident set size of this process (Linux `VmHWM`), MiB; 0 where unknown.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Per-queue wait lists (seconds), in queue order.
pub fn waits(stats: &RunStats) -> Vec<Vec<f64>> {
    let mut w = vec![Vec::new(); stats.queues.len()];
    for j in &stats.jobs {
        if let (Some(s), Some(e)) = (j.first_start, j.eligible) {
            w[j.queue as usize].push(s.since(e).as_secs_f64());
        }
    }
    for v in &mut w {
        v.sort_by(f64::total_cmp);
    }
    w
}

/// Waits over every job that became eligible, whole, by size and by priority (see the module
/// docs).
struct SizeWaits {
    all: WaitSummary,
    by_size: Vec<ClassWaits>,
    by_priority: Vec<ClassWaits>,
    large_min_member: u32,
    large: WaitSummary,
}

/// One job's wait as the summaries count it.
struct Waited {
    min_member: u32,
    priority: i32,
    wait_s: f64,
    waiting_at_end: bool,
}

impl SizeWaits {
    fn of(stats: &RunStats) -> SizeWaits {
        let jobs: Vec<Waited> = stats
            .jobs
            .iter()
            .filter_map(|j| {
                let eligible = j.eligible?;
                let (until, waiting_at_end) = match (j.first_start, j.state) {
                    (Some(s), _) => (s, false),
                    (None, JobEnd::Open) => (stats.end, true),
                    (None, _) => return None,
                };
                Some(Waited {
                    min_member: j.min_member,
                    priority: j.priority,
                    wait_s: until.since(eligible).as_secs_f64(),
                    waiting_at_end,
                })
            })
            .collect();
        let summary = |keep: &dyn Fn(&Waited) -> bool| {
            let chosen: Vec<&Waited> = jobs.iter().filter(|j| keep(j)).collect();
            WaitSummary::of(
                chosen.iter().map(|j| j.wait_s).collect(),
                chosen.iter().filter(|j| j.waiting_at_end).count() as u64,
            )
        };
        let by_size = SIZE_CLASSES
            .iter()
            .enumerate()
            .map(|(i, (name, lo))| {
                let hi = SIZE_CLASSES.get(i + 1).map_or(u32::MAX, |c| c.1);
                ClassWaits {
                    class: name.to_string(),
                    waits: summary(&|j| j.min_member >= *lo && j.min_member < hi),
                }
            })
            .filter(|c| c.waits.jobs > 0)
            .collect();
        let priorities: BTreeSet<i32> = jobs.iter().map(|j| j.priority).collect();
        let by_priority = priorities
            .into_iter()
            .map(|p| ClassWaits {
                class: p.to_string(),
                waits: summary(&|j| j.priority == p),
            })
            .collect();
        let mut gangs: Vec<u32> = jobs
            .iter()
            .map(|j| j.min_member)
            .filter(|m| *m > 1)
            .collect();
        gangs.sort_unstable();
        let large_min_member = if gangs.is_empty() {
            0
        } else {
            gangs[((gangs.len() - 1) as f64 * 0.9).round() as usize]
        };
        SizeWaits {
            all: summary(&|_| true),
            by_size,
            by_priority,
            large_min_member,
            large: if large_min_member > 0 {
                summary(&|j| j.min_member >= large_min_member)
            } else {
                WaitSummary::default()
            },
        }
    }
}

fn lane_value(id: ResourceId, v: f64) -> f64 {
    if id == ResourceId::CPU { v / 1000.0 } else { v }
}

/// The GPUs when a run stopped with pods still held: what a fill left (see [`Summary`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpusAtEnd {
    /// Virtual time of the stop, seconds.
    pub time_s: f64,
    /// GPUs of the live nodes.
    pub gpus: f64,
    /// GPUs bound pods hold (fractions of shared GPUs summed).
    pub allocated_gpus: f64,
    /// `allocated_gpus / gpus`: the FGD paper's GPU allocation rate.
    pub allocated_share: f64,
    /// `gpus - allocated_gpus`: the paper's unallocated GPUs.
    pub unallocated_gpus: f64,
    /// Of them, GPUs on nodes whose free CPU or memory is below the smallest GPU pod's request.
    pub stranded_gpus: f64,
    /// `stranded_gpus / gpus`.
    pub stranded_share: f64,
    /// Jobs still pending then.
    pub jobs_pending: u64,
}

impl GpusAtEnd {
    fn of(stats: &RunStats, lane: GpuLane) -> GpusAtEnd {
        let per = lane.per_gpu as f64;
        let cap = stats.cap_end.get(lane.id) as f64;
        let alloc = stats.alloc_end.get(lane.id) as f64;
        GpusAtEnd {
            time_s: stats.end.as_secs_f64(),
            gpus: cap / per,
            allocated_gpus: alloc / per,
            allocated_share: alloc / cap,
            unallocated_gpus: (cap - alloc) / per,
            stranded_gpus: stats.stranded_end as f64 / per,
            stranded_share: stats.stranded_end as f64 / cap,
            jobs_pending: stats
                .jobs
                .iter()
                .filter(|j| j.submitted && !j.running_at_end && j.end.is_none())
                .count() as u64,
        }
    }
}

impl Summary {
    /// Computes the summary of a run.
    pub fn new(
        stats: &RunStats,
        specs: &[QueueSpec],
        table: &ResourceTable,
        capacity: &Resources,
        wall_s: f64,
    ) -> Summary {
        let count = |s: JobEnd| stats.jobs.iter().filter(|j| j.state == s).count() as u64;
        let open: Vec<_> = stats
            .jobs
            .iter()
            .filter(|j| j.state == JobEnd::Open)
            .collect();
        let running = open.iter().filter(|j| j.running_at_end).count() as u64;
        let first_submit = stats
            .jobs
            .iter()
            .filter(|j| j.submitted)
            .map(|j| j.submit)
            .min()
            .unwrap_or_default();
        let last_end = stats.jobs.iter().filter_map(|j| j.end).max();
        let makespan_s = last_end.map_or(0.0, |e| e.since(first_submit).as_secs_f64());
        let lanes = &stats.series.lanes;
        let utilization = lanes
            .iter()
            .enumerate()
            .filter(|(k, _)| stats.cap_integral[*k] > 0.0)
            .map(|(k, id)| {
                (
                    table.name(*id).to_string(),
                    stats.alloc_integral[k] / stats.cap_integral[k],
                )
            })
            .collect();
        let incomplete = lanes
            .iter()
            .enumerate()
            .map(|(k, id)| {
                (
                    table.name(*id).to_string(),
                    lane_value(*id, stats.incomplete_gang_resource_s[k]),
                )
            })
            .collect();
        let deserved = deserved_shares(specs, &stats.queues, capacity);
        let waits = waits(stats);
        let span = stats.end.as_secs_f64();
        let mut queues = BTreeMap::new();
        let mut xs = Vec::new();
        for (q, name) in stats.queues.iter().enumerate() {
            let jobs = stats.jobs.iter().filter(|j| j.queue as usize == q).count() as u64;
            let w = &waits[q];
            let mean_share = if span > 0.0 {
                stats.queue_share_integral[q] / span
            } else {
                0.0
            };
            if jobs > 0 && deserved[q] > 0.0 {
                xs.push(mean_share / deserved[q]);
            }
            let spec = specs.iter().find(|s| &s.name == name);
            let named = |r: &Resources| -> BTreeMap<String, f64> {
                r.iter_nonzero()
                    .map(|(id, v)| (table.name(id).to_string(), lane_value(id, v as f64)))
                    .collect()
            };
            let mean_allocated = lanes
                .iter()
                .enumerate()
                .map(|(k, id)| {
                    let held = stats.queue_alloc_integral[q][k];
                    let mean = if span > 0.0 { held / span } else { 0.0 };
                    (table.name(*id).to_string(), lane_value(*id, mean))
                })
                .collect();
            queues.insert(
                name.clone(),
                QueueSummary {
                    weight: spec.map_or(1, |s| s.weight),
                    guarantee: spec.map(|s| named(&s.guarantee)).unwrap_or_default(),
                    deserved: spec.and_then(|s| s.deserved.as_ref()).map(&named),
                    capability: spec.and_then(|s| s.capability.as_ref()).map(&named),
                    mean_allocated,
                    jobs,
                    started: w.len() as u64,
                    mean_wait_s: if w.is_empty() {
                        0.0
                    } else {
                        w.iter().sum::<f64>() / w.len() as f64
                    },
                    p95_wait_s: percentile(w, 0.95),
                    mean_allocated_share: mean_share,
                    deserved_share: deserved[q],
                },
            );
        }
        let lane = |name: &str| lanes.iter().position(|id| table.name(*id) == name);
        let per_lane = |v: &[f64]| -> BTreeMap<String, f64> {
            lanes
                .iter()
                .enumerate()
                .map(|(k, id)| (table.name(*id).to_string(), lane_value(*id, v[k])))
                .collect()
        };
        let goodput_by_resource: BTreeMap<String, f64> = lanes
            .iter()
            .enumerate()
            .filter(|(k, id)| **id != ResourceId::PODS && stats.cap_integral[*k] > 0.0)
            .map(|(k, id)| {
                (
                    table.name(*id).to_string(),
                    stats.work_done_s[k] / stats.cap_integral[k],
                )
            })
            .collect();
        let gpu_name = stats.gpu_lane.map(|g| table.name(g.id));
        let goodput_resource = gpu_name
            .filter(|n| goodput_by_resource.contains_key(*n))
            .unwrap_or(table.name(ResourceId::CPU))
            .to_string();
        let stranded_gpu_share = gpu_name
            .and_then(lane)
            .filter(|k| stats.cap_integral[*k] > 0.0)
            .filter(|_| stats.gpu_pods)
            .map(|k| stats.stranded_gpu_s / stats.cap_integral[k]);
        let gpus_at_end = stats
            .gpu_lane
            .filter(|g| stats.stopped && stats.cap_end.get(g.id) > 0)
            .map(|g| GpusAtEnd::of(stats, g));
        let sizes = SizeWaits::of(stats);
        let (sum, sq) = xs.iter().fold((0.0, 0.0), |(s, q), x| (s + x, q + x * x));
        let jain_fairness = if sq > 0.0 {
            sum * sum / (xs.len() as f64 * sq)
        } else {
            1.0
        };
        Summary {
            mode: stats.mode,
            nodes: stats.nodes,
            jobs: stats.jobs.len(),
            pods: stats.pods,
            jobs_succeeded: count(JobEnd::Succeeded),
            jobs_failed: count(JobEnd::Failed),
            jobs_deleted: count(JobEnd::Deleted),
            jobs_pending_at_end: open.len() as u64 - running,
            jobs_running_at_end: running,
            jobs_never_started: stats
                .jobs
                .iter()
                .filter(|j| j.first_start.is_none())
                .count() as u64,
            makespan_s,
            end_s: stats.end.as_secs_f64(),
            wall_s,
            events_per_s: stats.events as f64 / wall_s.max(1e-9),
            events: stats.events,
            cycles: stats.cycles,
            decisions: stats.decisions,
            utilization,
            queues,
            jain_fairness,
            incomplete_gang_resource_s: incomplete,
            goodput: goodput_by_resource
                .get(&goodput_resource)
                .copied()
                .unwrap_or(0.0),
            goodput_resource,
            goodput_by_resource,
            pods_evicted: stats.pods_evicted,
            work_evicted_resource_s: per_lane(&stats.work_evicted_s),
            stranded_gpu_share,
            gpus_at_end,
            wait_p50_s: sizes.all.p50_s,
            wait_p95_s: sizes.all.p95_s,
            wait_p99_s: sizes.all.p99_s,
            top_priority: sizes
                .by_priority
                .last()
                .map(|c| c.waits.clone())
                .unwrap_or_default(),
            waits_by_size: sizes.by_size,
            waits_by_priority: sizes.by_priority,
            large_gang_min_member: sizes.large_min_member,
            large_gangs: sizes.large,
            engine_event_errors: stats
                .event_errors
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            decision_log_sha256: stats.decision_log_sha256.clone(),
            peak_rss_mb: peak_rss_mb(),
            baseline: None,
        }
    }

    /// The one-screen table printed at the end of a run (with the baseline beside, if any).
    pub fn table(&self) -> String {
        let cols: Vec<&Summary> = std::iter::once(self)
            .chain(self.baseline.as_deref())
            .collect();
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        let mut row = |k: &str, f: &dyn Fn(&Summary) -> String| {
            rows.push((k.to_string(), cols.iter().map(|s| f(s)).collect()));
        };
        row("policy", &|s| match s.mode {
            Mode::Baseline => "kube (pod by pod)".into(),
            m => m.name().into(),
        });
        row("nodes / jobs / pods", &|s| {
            format!("{} / {} / {}", s.nodes, s.jobs, s.pods)
        });
        row("jobs succeeded", &|s| s.jobs_succeeded.to_string());
        row("jobs failed / deleted", &|s| {
            format!("{} / {}", s.jobs_failed, s.jobs_deleted)
        });
        row("jobs pending / running at end", &|s| {
            format!("{} / {}", s.jobs_pending_at_end, s.jobs_running_at_end)
        });
        row("makespan", &|s| format!("{:.0} s", s.makespan_s));
        let lanes: BTreeSet<&String> = cols.iter().flat_map(|s| s.utilization.keys()).collect();
        for l in &lanes {
            if l.as_str() == "pods" {
                continue;
            }
            row(&format!("utilisation {l}"), &|s| {
                format!(
                    "{:.1}%",
                    100.0 * s.utilization.get(*l).copied().unwrap_or(0.0)
                )
            });
        }
        for l in ["cpu", "nvidia.com/gpu"] {
            if self.incomplete_gang_resource_s.contains_key(l) {
                row(&format!("held by incomplete gangs, {l}-h"), &|s| {
                    format!(
                        "{:.1}",
                        s.incomplete_gang_resource_s.get(l).copied().unwrap_or(0.0) / 3600.0
                    )
                });
            }
        }
        let queues: BTreeSet<&String> = cols.iter().flat_map(|s| s.queues.keys()).collect();
        for q in &queues {
            row(&format!("wait mean/p95 {q}"), &|s| {
                s.queues.get(*q).map_or("-".into(), |x| {
                    format!("{:.0} / {:.0} s", x.mean_wait_s, x.p95_wait_s)
                })
            });
            row(&format!("share/deserved {q}"), &|s| {
                s.queues.get(*q).map_or("-".into(), |x| {
                    format!("{:.3} / {:.3}", x.mean_allocated_share, x.deserved_share)
                })
            });
        }
        row("jain fairness", &|s| format!("{:.3}", s.jain_fairness));
        if self.gpus_at_end.is_some() {
            row("GPUs allocated at end", &|s| {
                s.gpus_at_end.as_ref().map_or("-".into(), |g| {
                    format!(
                        "{:.1}% ({:.0} of {:.0})",
                        100.0 * g.allocated_share,
                        g.allocated_gpus,
                        g.gpus
                    )
                })
            });
            row("GPUs unallocated / stranded at end", &|s| {
                s.gpus_at_end.as_ref().map_or("-".into(), |g| {
                    format!("{:.0} / {:.0}", g.unallocated_gpus, g.stranded_gpus)
                })
            });
        }
        row("wall / events/s", &|s| {
            format!("{:.2} s / {:.0}", s.wall_s, s.events_per_s)
        });
        row("engine event errors", &|s| {
            s.engine_event_errors.values().sum::<u64>().to_string()
        });
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w1 = rows.iter().map(|r| r.1[0].len()).max().unwrap_or(0).max(10);
        let mut out = String::new();
        for (k, vs) in rows {
            let _ = write!(out, "{k:<w0$}  {:<w1$}", vs[0]);
            for v in &vs[1..] {
                let _ = write!(out, "  {v}");
            }
            out.push('\n');
        }
        out.push_str(&format!("decision log sha256 {}", self.decision_log_sha256));
        out
    }
}

const COLORS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Escapes text for HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One plotted series.
struct Plot {
    name: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.abs() >= 10.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// An SVG chart: lines (`scatter` false) or points. Log axes plot log10(1 + v).
fn chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    plots: &[Plot],
    scatter: bool,
    logx: bool,
    logy: bool,
) -> String {
    let (w, h, ml, mr, mt, mb) = (720.0, 300.0, 60.0, 170.0, 30.0, 40.0);
    let tx = |v: f64| if logx { (1.0 + v.max(0.0)).log10() } else { v };
    let ty = |v: f64| if logy { (1.0 + v.max(0.0)).log10() } else { v };
    let pts = plots.iter().flat_map(|p| p.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(tx(x));
        x1 = x1.max(tx(x));
        y0 = y0.min(ty(y));
        y1 = y1.max(ty(y));
    }
    if x0 > x1 {
        (x0, x1, y1) = (0.0, 1.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-9 {
        y1 = y0 + 1.0;
    }
    y1 *= 1.05;
    let px = |x: f64| ml + (tx(x) - x0) / (x1 - x0) * (w - ml - mr);
    let py = |y: f64| h - mb - (ty(y) - y0) / (y1 - y0) * (h - mt - mb);
    let mut s = String::new();
    // The data again, for the page's script (hover readouts, zoom): raw values, not pixels.
    let data = serde_json::json!({
        "x0": x0, "x1": x1, "y0": y0, "y1": y1, "logx": logx, "logy": logy,
        "scatter": scatter, "xlabel": xlabel,
        "box": [ml, mt, w - ml - mr, h - mt - mb],
        "series": plots.iter().map(|p| serde_json::json!({
            "name": p.name, "color": p.color, "dashed": p.dashed,
            "points": p.points.iter().map(|&(x, y)| [round6(x), round6(y)]).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let _ = write!(
        s,
        r#"<figure data-chart="{}"><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">"#,
        esc(&data.to_string())
    );
    let _ = write!(
        s,
        r#"<text x="{ml}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        w - ml - mr,
        h - mt - mb
    );
    let inv = |v: f64, log: bool| {
        if log {
            ((10f64.powf(v) - 1.0) * 1e6).round() / 1e6
        } else {
            v
        }
    };
    // Log axes get decade ticks (0, 1, 10, 100, ...), placed at log10(1 + v).
    let ticks = |lo: f64, hi: f64, log: bool| -> Vec<f64> {
        if !log {
            return nice_ticks(lo, hi);
        }
        std::iter::once(0.0)
            .chain((0..12).map(|k| 10f64.powi(k)))
            .map(|v| (1.0 + v).log10())
            .filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9)
            .collect()
    };
    s.push_str(r#"<g class="xt">"#);
    for t in ticks(x0, x1, logx) {
        let x = ml + (t - x0) / (x1 - x0) * (w - ml - mr);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            mt,
            h - mb,
            h - mb + 14.0,
            fmt_num(inv(t, logx))
        );
    }
    s.push_str("</g>");
    for t in ticks(y0, y1, logy) {
        let y = h - mb - (t - y0) / (y1 - y0) * (h - mt - mb);
        let _ = write!(
            s,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - mr,
            ml - 4.0,
            y + 4.0,
            fmt_num(inv(t, logy))
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>"#,
        ml + (w - ml - mr) / 2.0,
        h - 6.0,
        esc(xlabel),
        h / 2.0,
        h / 2.0,
        esc(ylabel)
    );
    // Lines and points in a nested viewport of the plot area, which clips them (when zoomed).
    let _ = write!(
        s,
        r#"<svg class="plot" x="{ml}" y="{mt}" width="{pw}" height="{ph}" viewBox="{ml} {mt} {pw} {ph}">"#,
        pw = w - ml - mr,
        ph = h - mt - mb
    );
    for p in plots {
        if scatter {
            for &(x, y) in &p.points {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2" fill="{}" fill-opacity="0.5"/>"#,
                    px(x),
                    py(y),
                    p.color
                );
            }
        } else {
            // Steps: every series here holds its value until the next point.
            let mut d = String::new();
            let mut last: Option<f64> = None;
            for &(x, y) in &p.points {
                if let Some(ly) = last {
                    let _ = write!(d, "{:.1},{:.1} ", px(x), py(ly));
                }
                let _ = write!(d, "{:.1},{:.1} ", px(x), py(y));
                last = Some(y);
            }
            let dash = if p.dashed {
                r#" stroke-dasharray="5,3""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r#"<polyline points="{d}" fill="none" stroke="{}" stroke-width="1.5"{dash}/>"#,
                p.color
            );
        }
    }
    s.push_str("</svg>");
    for (i, p) in plots.iter().enumerate() {
        let ly = mt + 6.0 + i as f64 * 15.0;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            w - mr + 8.0,
            ly,
            p.color,
            w - mr + 22.0,
            ly + 9.0,
            esc(&p.name)
        );
    }
    s.push_str("</svg></figure>\n");
    s
}

/// Six decimals: enough for a chart's readout, and a page a third smaller.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The page's one script (embedded: the page works offline): hover readouts of every series
/// at the cursor, drag to zoom on time, double-click to reset. Without scripts, the charts are
/// the same SVG.
pub(crate) fn chart_script() -> String {
    format!("<script>\n{}</script>\n", include_str!("report.js"))
}

/// Downsamples a step series to at most `n` points (the value in force at each step).
fn thin(points: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
    if points.len() <= n {
        return points;
    }
    let step = points.len().div_ceil(n);
    let last = *points.last().expect("non-empty");
    let mut out: Vec<(f64, f64)> = points.into_iter().step_by(step).collect();
    out.push(last);
    out
}

/// The charts of one run, as SVG.
fn run_charts(stats: &RunStats, table: &ResourceTable, tag: &str, deserved: &[f64]) -> String {
    let s = &stats.series;
    let nl = s.lanes.len();
    let nq = stats.queues.len();
    let times: Vec<f64> = s.t.iter().map(|t| t.as_secs_f64() / 3600.0).collect();
    let mut out = String::new();
    let plots: Vec<Plot> = s
        .lanes
        .iter()
        .enumerate()
        .filter(|(_, id)| **id != ResourceId::PODS)
        .map(|(k, id)| Plot {
            name: table.name(*id).to_string(),
            color: COLORS[k % COLORS.len()],
            dashed: false,
            points: thin(
                times
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let cap = s.cap[i * nl + k];
                        let a = s.alloc[i * nl + k];
                        (*t, if cap > 0 { a as f64 / cap as f64 } else { 0.0 })
                    })
                    .collect(),
                800,
            ),
        })
        .collect();
    out.push_str(&chart(
        &format!("{tag}: utilisation over time, per resource"),
        "virtual time (h)",
        "allocated / allocatable",
        &plots,
        false,
        false,
        false,
    ));
    let mut plots = Vec::new();
    for q in 0..nq {
        let color = COLORS[q % COLORS.len()];
        plots.push(Plot {
            name: stats.queues[q].clone(),
            color,
            dashed: false,
            points: thin(
                times
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (*t, s.queue_share[i * nq + q] as f64))
                    .collect(),
                800,
            ),
        });
        if let (Some(first), Some(last)) = (times.first(), times.last()) {
            plots.push(Plot {
                name: format!("{} deserved", stats.queues[q]),
                color,
                dashed: true,
                points: vec![(*first, deserved[q]), (*last, deserved[q])],
            });
        }
    }
    out.push_str(&chart(
        &format!("{tag}: each queue's allocated dominant share against its deserved share"),
        "virtual time (h)",
        "dominant share of the cluster",
        &plots,
        false,
        false,
        false,
    ));
    let waits = waits(stats);
    let plots: Vec<Plot> = waits
        .iter()
        .enumerate()
        .filter(|(_, w)| !w.is_empty())
        .map(|(q, w)| Plot {
            name: stats.queues[q].clone(),
            color: COLORS[q % COLORS.len()],
            dashed: false,
            points: thin(
                w.iter()
                    .enumerate()
                    .map(|(i, v)| (*v, (i + 1) as f64 / w.len() as f64))
                    .collect(),
                600,
            ),
        })
        .collect();
    out.push_str(&chart(
        &format!("{tag}: wait-time distribution per queue (CDF)"),
        "wait (s, log scale)",
        "fraction of placed jobs",
        &plots,
        false,
        true,
        false,
    ));
    let mut pts: Vec<(f64, f64)> = stats
        .jobs
        .iter()
        .filter_map(|j| {
            let (f, e) = (j.first_start?, j.eligible?);
            Some((j.min_member as f64, f.since(e).as_secs_f64()))
        })
        .collect();
    if pts.len() > 4000 {
        let step = pts.len().div_ceil(4000);
        pts = pts.into_iter().step_by(step).collect();
    }
    out.push_str(&chart(
        &format!("{tag}: gang size against wait"),
        "gang size (min_member, log scale)",
        "wait (s, log scale)",
        &[Plot {
            name: "jobs".into(),
            color: COLORS[0],
            dashed: false,
            points: pts,
        }],
        true,
        true,
        true,
    ));
    let pend = |v: &Vec<u32>| {
        thin(
            times.iter().zip(v).map(|(t, n)| (*t, *n as f64)).collect(),
            800,
        )
    };
    out.push_str(&chart(
        &format!("{tag}: jobs pending and running over time"),
        "virtual time (h)",
        "jobs",
        &[
            Plot {
                name: "pending".into(),
                color: COLORS[1],
                dashed: false,
                points: pend(&s.pending),
            },
            Plot {
                name: "running".into(),
                color: COLORS[2],
                dashed: false,
                points: pend(&s.running),
            },
        ],
        false,
        false,
        false,
    ));
    out
}

/// Named runs on the same axes: utilisation of CPU and GPUs (of `only`, if given: one line
/// per run reads better when there are many), and jobs pending; the first run solid, the
/// others dashed.
pub fn overlaid_charts(
    runs: &[(&str, &Series)],
    table: &ResourceTable,
    only: Option<ResourceId>,
) -> String {
    let mut util = Vec::new();
    let mut pending = Vec::new();
    for (i, (name, s)) in runs.iter().enumerate() {
        let nl = s.lanes.len();
        let times: Vec<f64> = s.t.iter().map(|t| t.as_secs_f64() / 3600.0).collect();
        for (k, id) in s.lanes.iter().enumerate() {
            if !matches!(*id, ResourceId::CPU | ResourceId::GPU) || only.is_some_and(|o| o != *id) {
                continue;
            }
            util.push(Plot {
                name: format!("{name} {}", table.name(*id)),
                color: if only.is_some() {
                    COLORS[i % COLORS.len()]
                } else {
                    COLORS[(k + 2 * i) % COLORS.len()]
                },
                dashed: i > 0,
                points: thin(
                    times
                        .iter()
                        .enumerate()
                        .map(|(j, t)| {
                            let cap = s.cap[j * nl + k];
                            let a = s.alloc[j * nl + k];
                            (*t, if cap > 0 { a as f64 / cap as f64 } else { 0.0 })
                        })
                        .collect(),
                    800,
                ),
            });
        }
        pending.push(Plot {
            name: format!("{name} pending"),
            color: COLORS[i % COLORS.len()],
            dashed: i > 0,
            points: thin(
                times
                    .iter()
                    .zip(&s.pending)
                    .map(|(t, n)| (*t, *n as f64))
                    .collect(),
                800,
            ),
        });
    }
    let first = runs.first().map_or("", |r| r.0);
    let mut out = chart(
        &format!("utilisation: {first} (solid) against the others (dashed)"),
        "virtual time (h)",
        "allocated / allocatable",
        &util,
        false,
        false,
        false,
    );
    out.push_str(&chart(
        &format!("jobs pending (submitted, no pod running): {first} against the others"),
        "virtual time (h)",
        "jobs",
        &pending,
        false,
        false,
        false,
    ));
    out
}

/// The whole `report.html`.
pub fn html(
    title: &str,
    summary: &Summary,
    runs: &[(&RunStats, &Summary)],
    table: &ResourceTable,
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}\
         figure{{margin:1em 0}}</style></head><body>\n<h1>{}</h1>\n",
        esc(title),
        esc(title)
    );
    out.push_str("<h2>Summary</h2>\n<pre>");
    out.push_str(&esc(&summary.table()));
    out.push_str("</pre>\n");
    if runs.len() > 1 {
        out.push_str("<h2>phalanx against pod-by-pod placement</h2>\n");
        let named: Vec<(&str, &Series)> = runs
            .iter()
            .map(|(r, _)| (r.mode.name(), &r.series))
            .collect();
        out.push_str(&overlaid_charts(&named, table, None));
    }
    for (stats, s) in runs {
        let tag = stats.mode.name();
        let deserved: Vec<f64> = stats
            .queues
            .iter()
            .map(|q| s.queues.get(q).map_or(0.0, |x| x.deserved_share))
            .collect();
        let _ = writeln!(out, "<h2>{tag}</h2>");
        out.push_str(&run_charts(stats, table, tag, &deserved));
    }
    out.push_str("<h2>summary.json</h2>\n<pre>");
    out.push_str(&esc(
        &serde_json::to_string_pretty(summary).unwrap_or_default()
    ));
    out.push_str("</pre>\n");
    out.push_str(&chart_script());
    out.push_str("</body></html>\n");
    out
}

/// Every sampled series of a run as CSV, one row per sample, for notebooks: `time_s`, then
/// per resource `allocated:NAME` and `allocatable:NAME` (in the resource's unit: millicores,
/// bytes, milli-GPUs, devices), `pending_jobs`, `running_jobs`, then per queue
/// `dominant_share:QUEUE` (the queue's dominant share of the cluster then). Series are step
/// functions: each value holds until the next row.
pub fn series_csv(stats: &RunStats, table: &ResourceTable) -> String {
    let s = &stats.series;
    let (nl, nq) = (s.lanes.len(), stats.queues.len());
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["time_s".to_string()];
    header.extend(
        s.lanes
            .iter()
            .map(|id| format!("allocated:{}", table.name(*id))),
    );
    header.extend(
        s.lanes
            .iter()
            .map(|id| format!("allocatable:{}", table.name(*id))),
    );
    header.extend(["pending_jobs".into(), "running_jobs".into()]);
    header.extend(stats.queues.iter().map(|q| format!("dominant_share:{q}")));
    w.write_record(&header).expect("CSV to memory");
    for (i, t) in s.t.iter().enumerate() {
        let mut row = vec![format!("{}", t.as_secs_f64())];
        row.extend(s.alloc[i * nl..(i + 1) * nl].iter().map(i64::to_string));
        row.extend(s.cap[i * nl..(i + 1) * nl].iter().map(i64::to_string));
        row.push(s.pending[i].to_string());
        row.push(s.running[i].to_string());
        row.extend(
            s.queue_share[i * nq..(i + 1) * nq]
                .iter()
                .map(f32::to_string),
        );
        w.write_record(&row).expect("CSV to memory");
    }
    String::from_utf8(w.into_inner().expect("CSV to memory")).expect("CSV of UTF-8 fields")
}

/// Reads a `series.csv` of [`series_csv`] back, interning its resources into `table` (so the
/// series of several runs share lanes). Queue shares are read in the file's queue order.
pub fn read_series_csv(text: &str, table: &mut ResourceTable) -> Result<Series, String> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().map_err(|e| e.to_string())?.clone();
    let cols: Vec<&str> = header.iter().collect();
    let lane_names: Vec<&str> = cols
        .iter()
        .filter_map(|c| c.strip_prefix("allocated:"))
        .collect();
    let nl = lane_names.len();
    let expected_fixed = 1 + 2 * nl + 2;
    if cols.first() != Some(&"time_s") || cols.len() < expected_fixed {
        return Err(format!(
            "not a series.csv: expected time_s, allocated:R..., allocatable:R..., pending_jobs, running_jobs, dominant_share:Q...; found {}",
            cols.join(",")
        ));
    }
    let lanes = lane_names
        .iter()
        .map(|n| table.intern(n).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let nq = cols.len() - expected_fixed;
    let mut s = Series {
        lanes,
        ..Series::default()
    };
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| e.to_string())?;
        let line = i + 2;
        let field = |k: usize| -> Result<&str, String> {
            rec.get(k).ok_or_else(|| {
                format!("line {line}: {} fields, expected {}", rec.len(), cols.len())
            })
        };
        let num = |k: usize| -> Result<f64, String> {
            field(k)?
                .parse::<f64>()
                .map_err(|e| format!("line {line}: {}: {e}", cols[k]))
        };
        let int = |k: usize| -> Result<i64, String> {
            field(k)?
                .parse::<i64>()
                .map_err(|e| format!("line {line}: {}: {e}", cols[k]))
        };
        let t = num(0)?;
        if !(t.is_finite() && t >= 0.0) {
            return Err(format!("line {line}: time_s: {t} is not a time"));
        }
        s.t.push(Time::ZERO + Span::from_secs_f64(t));
        for k in 0..nl {
            s.alloc.push(int(1 + k)?);
        }
        for k in 0..nl {
            s.cap.push(int(1 + nl + k)?);
        }
        let count = |k: usize| -> Result<u32, String> {
            u32::try_from(int(k)?).map_err(|e| format!("line {line}: {}: {e}", cols[k]))
        };
        s.pending.push(count(1 + 2 * nl)?);
        s.running.push(count(2 + 2 * nl)?);
        for q in 0..nq {
            s.queue_share.push(num(expected_fixed + q)? as f32);
        }
    }
    Ok(s)
}
