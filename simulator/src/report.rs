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
//!   with `min_member` above 1), `large_gang_min_member`;
//! - `slo` (present where jobs carry a `deadline`): a job with a deadline met it if it
//!   succeeded by then; it missed it if it succeeded later, failed (itself or through a
//!   dependency), or was still pending or running when the deadline passed before the end of
//!   the run. Jobs deleted are left out, and jobs still open whose deadline lies after the end
//!   are counted apart (`not_due_at_end`), neither met nor missed;
//! - per queue, `waits`, `waits_by_size` and `slo` are the same figures over the queue's jobs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use phalanx_model::{QueueSpec, ResourceId, ResourceTable, Resources, Span, Time};
use serde::Serialize;

use crate::chart::{COLORS, Plot, chart, esc, page_end, page_head, thin};
use crate::trace::GpuLane;
use crate::world::{JobEnd, JobStat, Mode, RunStats, Series};

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
    /// Its jobs' waits, counted as the summary's `wait_p95_s` is (jobs still waiting at the
    /// end with their wait so far).
    pub waits: WaitSummary,
    /// The same per size class.
    pub waits_by_size: Vec<ClassWaits>,
    /// How its jobs with deadlines fared; absent when none has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloSummary>,
}

/// How the jobs that carry a deadline fared (see the module docs for what counts).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SloSummary {
    /// Jobs with a deadline that were due by the end or ended: `met + missed`.
    pub jobs: u64,
    /// Jobs that succeeded by their deadline.
    pub met: u64,
    /// Jobs that did not: `succeeded_late + failed + unfinished`.
    pub missed: u64,
    /// `missed / jobs` (0 when no job was due).
    pub miss_share: f64,
    /// Missed: succeeded after the deadline.
    pub succeeded_late: u64,
    /// Missed: failed (a pod, or a dependency).
    pub failed: u64,
    /// Missed: still pending or running at the end, past the deadline.
    pub unfinished: u64,
    /// 95th percentile of how late the late and unfinished ones were (unfinished: by the end
    /// of the run), seconds.
    pub late_p95_s: f64,
    /// Jobs with a deadline still open at the end whose deadline lies after it.
    pub not_due_at_end: u64,
}

impl SloSummary {
    /// The figures over the jobs `keep` chooses; `None` when none of them has a deadline.
    fn of(stats: &RunStats, keep: &dyn Fn(&JobStat) -> bool) -> Option<SloSummary> {
        let mut s = SloSummary::default();
        let mut late = Vec::new();
        let mut any = false;
        for j in stats.jobs.iter().filter(|j| keep(j)) {
            let Some(due) = j.deadline else { continue };
            any = true;
            match (j.state, j.end) {
                (JobEnd::Deleted, _) => {}
                (JobEnd::Succeeded, Some(end)) if end <= due => s.met += 1,
                (JobEnd::Succeeded, Some(end)) => {
                    s.succeeded_late += 1;
                    late.push(end.since(due).as_secs_f64());
                }
                (JobEnd::Failed, _) => s.failed += 1,
                _ if stats.end > due => {
                    s.unfinished += 1;
                    late.push(stats.end.since(due).as_secs_f64());
                }
                _ => s.not_due_at_end += 1,
            }
        }
        if !any {
            return None;
        }
        s.missed = s.succeeded_late + s.failed + s.unfinished;
        s.jobs = s.met + s.missed;
        s.miss_share = if s.jobs > 0 {
            s.missed as f64 / s.jobs as f64
        } else {
            0.0
        };
        late.sort_by(f64::total_cmp);
        s.late_p95_s = percentile(&late, 0.95);
        Some(s)
    }
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
    /// How the jobs with deadlines fared; absent when no job has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloSummary>,
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
    peak_rss_mb_of("self")
}

/// Peak resident set size of process `pid` (`"self"` or a number), MiB; 0 where unknown.
pub fn peak_rss_mb_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
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
    let mut w = vec![Vec::new(); stats.series.queues.len()];
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
    /// The waits of the jobs `keep` chooses.
    fn of(stats: &RunStats, keep: &dyn Fn(&JobStat) -> bool) -> SizeWaits {
        let jobs: Vec<Waited> = stats
            .jobs
            .iter()
            .filter(|j| keep(j))
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
        let deserved = deserved_shares(specs, &stats.series.queues, capacity);
        let waits = waits(stats);
        let span = stats.end.as_secs_f64();
        let mut queues = BTreeMap::new();
        let mut xs = Vec::new();
        for (q, name) in stats.series.queues.iter().enumerate() {
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
            let mine = |j: &JobStat| j.queue as usize == q;
            let sizes = SizeWaits::of(stats, &mine);
            queues.insert(
                name.clone(),
                QueueSummary {
                    waits: sizes.all,
                    waits_by_size: sizes.by_size,
                    slo: SloSummary::of(stats, &mine),
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
        let sizes = SizeWaits::of(stats, &|_| true);
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
            slo: SloSummary::of(stats, &|_| true),
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
        if self.slo.is_some() {
            row("deadlines missed", &|s| {
                s.slo.as_ref().map_or("-".into(), |x| {
                    format!(
                        "{} of {} ({:.1}%; {} not due at end)",
                        x.missed,
                        x.jobs,
                        100.0 * x.miss_share,
                        x.not_due_at_end
                    )
                })
            });
        }
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

/// The charts of one run, as SVG.
fn run_charts(stats: &RunStats, table: &ResourceTable, tag: &str, deserved: &[f64]) -> String {
    let s = &stats.series;
    let nl = s.lanes.len();
    let nq = s.queues.len();
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
            name: s.queues[q].clone(),
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
                name: format!("{} deserved", s.queues[q]),
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
            name: s.queues[q].clone(),
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

/// The whole `report.html`: the summary table, the runs' charts, each queue's figures with a
/// link to its page ([`queue_pages`]), and `summary.json`.
pub fn html(
    title: &str,
    summary: &Summary,
    runs: &[(&RunStats, &Summary)],
    table: &ResourceTable,
) -> String {
    let mut out = page_head(title);
    out.push_str("<h2>Summary</h2>\n<pre>");
    out.push_str(&esc(&summary.table()));
    out.push_str("</pre>\n");
    out.push_str(&queue_index(summary));
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
            .series
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
    out.push_str(&page_end());
    out
}

/// The queues of a run in one table, each linking to its page.
fn queue_index(summary: &Summary) -> String {
    let slo = summary.slo.is_some();
    let mut out = String::from(
        "<h2>Queues</h2>\n<table><tr><th>queue</th><th>weight</th><th>deserved share</th>\
         <th>mean allocated share</th><th>jobs</th><th>started</th><th>wait p50, s</th>\
         <th>wait p95, s</th>",
    );
    if slo {
        out.push_str("<th>deadlines missed</th>");
    }
    out.push_str("</tr>\n");
    for (name, q) in &summary.queues {
        let _ = write!(
            out,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td>\
             <td>{}</td><td>{:.0}</td><td>{:.0}</td>",
            esc(&queue_page_file(name)),
            esc(name),
            q.weight,
            q.deserved_share,
            q.mean_allocated_share,
            q.jobs,
            q.started,
            q.waits.p50_s,
            q.waits.p95_s,
        );
        if slo {
            let cell = q.slo.as_ref().map_or("-".into(), |s| {
                format!("{} of {} ({:.1}%)", s.missed, s.jobs, 100.0 * s.miss_share)
            });
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// The file name of a queue's page, beside the report: `queue-NAME.html`, with any character
/// but letters, digits, `.`, `-` and `_` written as `_`.
pub fn queue_page_file(queue: &str) -> String {
    let safe: String = queue
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("queue-{safe}.html")
}

/// One queue's page: `figures` (HTML, from the caller: a table of the queue's figures per
/// run or scenario), then, one line per run (the first solid, the others dashed), the queue's
/// dominant share against its deserved share and its jobs pending and running over time.
/// `back` is the page that links here.
pub(crate) fn queue_page(
    title: &str,
    queue: &str,
    back: &str,
    figures: &str,
    runs: &[(&str, &Series)],
    deserved: Option<f64>,
) -> String {
    let mut out = page_head(&format!("{title}: queue {queue}"));
    let _ = writeln!(
        out,
        "<nav><a href=\"{}\">back to {}</a></nav>",
        esc(back),
        esc(back)
    );
    out.push_str(figures);
    let mut share = Vec::new();
    let mut pending = Vec::new();
    let mut running = Vec::new();
    for (i, (name, s)) in runs.iter().enumerate() {
        let Some(q) = s.queues.iter().position(|n| n == queue) else {
            continue;
        };
        let nq = s.queues.len();
        let times: Vec<f64> = s.t.iter().map(|t| t.as_secs_f64() / 3600.0).collect();
        let color = COLORS[i % COLORS.len()];
        let line = |name: String, v: &dyn Fn(usize) -> f64| Plot {
            name,
            color,
            dashed: i > 0,
            points: thin(
                times.iter().enumerate().map(|(k, t)| (*t, v(k))).collect(),
                800,
            ),
        };
        share.push(line(name.to_string(), &|k| {
            f64::from(s.queue_share[k * nq + q])
        }));
        if s.queue_pending.len() == s.t.len() * nq {
            pending.push(line(format!("{name} pending"), &|k| {
                f64::from(s.queue_pending[k * nq + q])
            }));
            running.push(line(format!("{name} running"), &|k| {
                f64::from(s.queue_running[k * nq + q])
            }));
        }
    }
    if let Some(d) = deserved {
        let ends = runs
            .iter()
            .flat_map(|(_, s)| [s.t.first(), s.t.last()])
            .flatten()
            .map(|t| t.as_secs_f64() / 3600.0);
        let (lo, hi) = ends.fold((f64::MAX, f64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        if lo <= hi {
            share.push(Plot {
                name: "deserved".into(),
                color: "#7f7f7f",
                dashed: true,
                points: vec![(lo, d), (hi, d)],
            });
        }
    }
    out.push_str(&chart(
        &format!("{queue}: dominant share of the cluster against its deserved share"),
        "virtual time (h)",
        "dominant share of the cluster",
        &share,
        false,
        false,
        false,
    ));
    if !pending.is_empty() {
        out.push_str(&chart(
            &format!("{queue}: jobs pending (submitted, no pod running)"),
            "virtual time (h)",
            "jobs",
            &pending,
            false,
            false,
            false,
        ));
        out.push_str(&chart(
            &format!("{queue}: jobs running"),
            "virtual time (h)",
            "jobs",
            &running,
            false,
            false,
            false,
        ));
    }
    out.push_str(&page_end());
    out
}

/// The per-queue pages of `report.html`: file name and page, one per queue of the summary,
/// each with the queue's figures for every run side by side.
pub fn queue_pages(title: &str, runs: &[(&RunStats, &Summary)]) -> Vec<(String, String)> {
    let Some((_, first)) = runs.first() else {
        return Vec::new();
    };
    let named: Vec<(&str, &Series)> = runs
        .iter()
        .map(|(r, _)| (r.mode.name(), &r.series))
        .collect();
    first
        .queues
        .iter()
        .map(|(name, q)| {
            let cols: Vec<(&str, Option<&QueueSummary>)> = runs
                .iter()
                .map(|(r, s)| (r.mode.name(), s.queues.get(name)))
                .collect();
            let page = queue_page(
                title,
                name,
                "report.html",
                &queue_figures(&cols),
                &named,
                Some(q.deserved_share),
            );
            (queue_page_file(name), page)
        })
        .collect()
}

/// A queue's figures as an HTML table, one column per run.
fn queue_figures(cols: &[(&str, Option<&QueueSummary>)]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(&QueueSummary) -> String| {
        let cells = cols.iter().map(|(_, q)| q.map_or("-".into(), f)).collect();
        rows.push((label.to_string(), cells));
    };
    let amounts = |m: &BTreeMap<String, f64>| {
        if m.is_empty() {
            "-".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k} {}", crate::chart::fmt_num(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    row("weight", &|q| q.weight.to_string());
    row("guarantee", &|q| amounts(&q.guarantee));
    row("capability", &|q| {
        q.capability.as_ref().map_or("unlimited".into(), amounts)
    });
    row("deserved share", &|q| format!("{:.3}", q.deserved_share));
    row("mean allocated share", &|q| {
        format!("{:.3}", q.mean_allocated_share)
    });
    row("jobs / started", &|q| format!("{} / {}", q.jobs, q.started));
    row("wait p50 / p95 / p99, s", &|q| {
        format!(
            "{:.0} / {:.0} / {:.0}",
            q.waits.p50_s, q.waits.p95_s, q.waits.p99_s
        )
    });
    row("still waiting at the end", &|q| {
        q.waits.waiting_at_end.to_string()
    });
    for (class, _) in SIZE_CLASSES {
        row(&format!("wait p95 of gangs of {class}, s"), &|q| {
            q.waits_by_size
                .iter()
                .find(|c| c.class == class)
                .map_or("-".into(), |c| {
                    format!("{:.0} ({} jobs)", c.waits.p95_s, c.waits.jobs)
                })
        });
    }
    if cols.iter().any(|(_, q)| q.is_some_and(|q| q.slo.is_some())) {
        row("deadlines missed", &|q| {
            q.slo.as_ref().map_or("-".into(), |s| {
                format!("{} of {} ({:.1}%)", s.missed, s.jobs, 100.0 * s.miss_share)
            })
        });
        row("late / failed / unfinished", &|q| {
            q.slo.as_ref().map_or("-".into(), |s| {
                format!("{} / {} / {}", s.succeeded_late, s.failed, s.unfinished)
            })
        });
        row("lateness p95, s", &|q| {
            q.slo
                .as_ref()
                .map_or("-".into(), |s| format!("{:.0}", s.late_p95_s))
        });
    }
    let mut out = String::from("<table><tr><th></th>");
    for (name, _) in cols {
        let _ = write!(out, "<th>{}</th>", esc(name));
    }
    out.push_str("</tr>\n");
    for (label, cells) in rows {
        let _ = write!(out, "<tr><td>{}</td>", esc(&label));
        for c in cells {
            let _ = write!(out, "<td>{}</td>", esc(&c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// Every sampled series of a run as CSV, one row per sample, for notebooks: `time_s`, then
/// per resource `allocated:NAME` and `allocatable:NAME` (in the resource's unit: millicores,
/// bytes, milli-GPUs, devices), `pending_jobs`, `running_jobs`, then per queue
/// `dominant_share:QUEUE` (the queue's dominant share of the cluster then), and per queue
/// `pending_jobs:QUEUE` and `running_jobs:QUEUE`. Series are step functions: each value holds
/// until the next row.
pub fn series_csv(s: &Series, table: &ResourceTable) -> String {
    let (nl, nq) = (s.lanes.len(), s.queues.len());
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
    for prefix in ["dominant_share", "pending_jobs", "running_jobs"] {
        header.extend(s.queues.iter().map(|q| format!("{prefix}:{q}")));
    }
    w.write_record(&header).expect("CSV to memory");
    for (i, t) in s.t.iter().enumerate() {
        let mut row = vec![format!("{}", t.as_secs_f64())];
        row.extend(s.alloc[i * nl..(i + 1) * nl].iter().map(i64::to_string));
        row.extend(s.cap[i * nl..(i + 1) * nl].iter().map(i64::to_string));
        row.push(s.pending[i].to_string());
        row.push(s.running[i].to_string());
        let per_queue = i * nq..(i + 1) * nq;
        row.extend(s.queue_share[per_queue.clone()].iter().map(f32::to_string));
        row.extend(
            s.queue_pending[per_queue.clone()]
                .iter()
                .map(u32::to_string),
        );
        row.extend(s.queue_running[per_queue].iter().map(u32::to_string));
        w.write_record(&row).expect("CSV to memory");
    }
    String::from_utf8(w.into_inner().expect("CSV to memory")).expect("CSV of UTF-8 fields")
}

/// Reads a `series.csv` of [`series_csv`] back, interning its resources into `table` (so the
/// series of several runs share lanes). Columns are found by name; a file without the
/// per-queue job counts (written before they existed) reads with those series empty.
pub fn read_series_csv(text: &str, table: &mut ResourceTable) -> Result<Series, String> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().map_err(|e| e.to_string())?.clone();
    let cols: Vec<&str> = header.iter().collect();
    let named = |prefix: &str| -> Vec<(usize, &str)> {
        cols.iter()
            .enumerate()
            .filter_map(|(k, c)| Some((k, c.strip_prefix(prefix)?.strip_prefix(':')?)))
            .collect()
    };
    let position = |name: &str| cols.iter().position(|c| *c == name);
    let (allocated, allocatable) = (named("allocated"), named("allocatable"));
    let shares = named("dominant_share");
    let (queue_pending, queue_running) = (named("pending_jobs"), named("running_jobs"));
    let (Some(0), Some(pending), Some(running)) = (
        position("time_s"),
        position("pending_jobs"),
        position("running_jobs"),
    ) else {
        return Err(format!(
            "not a series.csv: expected time_s, allocated:R..., allocatable:R..., pending_jobs, running_jobs, dominant_share:Q...; found {}",
            cols.join(",")
        ));
    };
    let names = |v: &[(usize, &str)]| v.iter().map(|c| c.1.to_string()).collect::<Vec<_>>();
    if names(&allocated) != names(&allocatable) {
        return Err("allocated:R and allocatable:R name different resources".into());
    }
    let queues = names(&shares);
    let per_queue = |v: &[(usize, &str)], what: &str| -> Result<bool, String> {
        if v.is_empty() {
            Ok(false)
        } else if names(v) == queues {
            Ok(true)
        } else {
            Err(format!(
                "{what}:Q and dominant_share:Q name different queues"
            ))
        }
    };
    let counts =
        per_queue(&queue_pending, "pending_jobs")? && per_queue(&queue_running, "running_jobs")?;
    let lanes = allocated
        .iter()
        .map(|(_, n)| table.intern(n).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut s = Series {
        lanes,
        queues,
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
        let count = |k: usize| -> Result<u32, String> {
            u32::try_from(int(k)?).map_err(|e| format!("line {line}: {}: {e}", cols[k]))
        };
        let t = num(0)?;
        if !(t.is_finite() && t >= 0.0) {
            return Err(format!("line {line}: time_s: {t} is not a time"));
        }
        s.t.push(Time::ZERO + Span::from_secs_f64(t));
        for (k, _) in &allocated {
            s.alloc.push(int(*k)?);
        }
        for (k, _) in &allocatable {
            s.cap.push(int(*k)?);
        }
        s.pending.push(count(pending)?);
        s.running.push(count(running)?);
        for (k, _) in &shares {
            s.queue_share.push(num(*k)? as f32);
        }
        if counts {
            for (k, _) in &queue_pending {
                s.queue_pending.push(count(*k)?);
            }
            for (k, _) in &queue_running {
                s.queue_running.push(count(*k)?);
            }
        }
    }
    Ok(s)
}
