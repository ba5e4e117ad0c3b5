//! The simulated world: an event queue over virtual time driving the production
//! [`Engine`]. The world carries out the engine's decisions (binds pods, evicts them), runs each
//! bound pod for its task's duration and then finishes it (failed if its task's outcome is
//! `failed`), fails and returns nodes, deletes jobs, and writes every state change to the
//! decision log. Synchronous and deterministic: events at the same instant run in the order they
//! were queued, and the same scenario gives the same log, byte for byte.
//!
//! When the engine runs a cycle:
//! ```text
//!   events at t ──> cycle at max(t, last cycle + period)     (at most one cycle per period)
//!   cycle made decisions, or left ready work ──> another cycle one period later
//!   nothing happened ──> no cycle: the engine is pure and parks jobs until the cluster changes,
//!                        so an idle cycle could not decide anything
//! ```
//!
//! Nodes a trace adds after time zero are logged as `node_up`, like nodes that return.
//!
//! A job is submitted to the engine (and logged `submit`) when it arrives, or, if a job it
//! depends on arrives later, when the last of those does: the engine may refuse a dependency on
//! a job it has not seen. Its wait still counts from its arrival.
//!
//! Baseline mode ([`Mode::Baseline`]) models the default Kubernetes scheduler on the same
//! engine: every job is submitted with its gang dissolved (`min_member` 1, no per-task
//! minimums, no `min_resources`), all in one queue at priority 0, so the engine places pods
//! first come, first served, as many as fit. The world then applies what distributed training
//! workers actually do: they wait at a barrier until all of the job's original `min_member`
//! pods run. A pod of a job that has not reached its barrier holds its node but makes no
//! progress (its duration does not start), so partially placed gangs can hold capacity
//! forever; [`RunStats::incomplete_gang_resource_s`] counts it. Once the barrier is passed it
//! stays passed. Dependencies are kept: a workflow engine (Argo, a JobFlow) holds dependents
//! back whatever the scheduler, so the comparison isolates gangs and queues.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;

use crate::decision_log::DecisionLog;
use phalanx_model::{
    ClusterEvent, DEFAULT_QUEUE, Decision, EvictReason, Job, PodRef, ResourceId, Resources, Span,
    Time,
};
use phalanx_scheduler::{Engine, EngineConfig, JobPhase};
use serde::Serialize;

use crate::trace::{GpuLane, Input, Scenario};

/// Which scheduler the world drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Phalanx: gangs, queues and priorities as the trace gives them.
    Gang,
    /// A default-Kubernetes-like policy: pod by pod, FIFO, one queue (see the module docs).
    Baseline,
    /// Gangs kept whole, but one queue in arrival order: no tenant queues, priorities,
    /// reservation, backfill or reclaim (what a plain gang scheduler such as the
    /// scheduler-plugins coscheduling plugin does). A gang that does not fit is passed.
    Fifo,
}

impl Mode {
    /// The policy's name in reports: `phalanx`, `kube` or `fifo`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Gang => "phalanx",
            Mode::Baseline => "kube",
            Mode::Fifo => "fifo",
        }
    }

    /// The engine configuration this policy runs with, from the scenario's: FIFO turns off
    /// what makes Phalanx more than a gang scheduler.
    pub fn engine(self, mut cfg: EngineConfig) -> EngineConfig {
        if self == Mode::Fifo {
            cfg.critical_path = false;
            cfg.max_reservations = 0;
            cfg.reclaim = false;
        }
        cfg
    }
}

/// How the world runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The engine's configuration.
    pub engine: EngineConfig,
    /// At most one cycle per period; also the delay of a follow-up cycle.
    pub period: Span,
    /// Which policy.
    pub mode: Mode,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            engine: EngineConfig::default(),
            period: Span(1000),
            mode: Mode::Gang,
        }
    }
}

/// How far a run has come, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Virtual time now.
    pub now: Time,
    /// Events processed so far.
    pub events: u64,
    /// Jobs ended so far.
    pub jobs_ended: u64,
    /// Jobs in the scenario.
    pub jobs: u64,
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// Writing the decision log failed.
    #[error("writing the decision log: {0}")]
    Log(#[from] std::io::Error),
}

/// How one job fared.
#[derive(Debug, Clone)]
pub struct JobStat {
    /// Index of its queue in [`Series::queues`] (its queue in the trace, in either mode).
    pub queue: u16,
    /// Submission time.
    pub submit: Time,
    /// When it became eligible to run: submitted, and every job it depends on succeeded (a
    /// dependency deleted before it arrived does not hold it). `None` if that never happened
    /// in the run (a dependency failed, was deleted, or had not succeeded by the end). Waits
    /// are measured from here: queueing delay, not the time a pipeline's earlier steps ran.
    pub eligible: Option<Time>,
    /// When its gang first ran: `min_member` pods bound together (in the baseline, when its
    /// barrier opened).
    pub first_start: Option<Time>,
    /// When it ended.
    pub end: Option<Time>,
    /// How it ended.
    pub state: JobEnd,
    /// Its gang size (original `min_member`).
    pub min_member: u32,
    /// Its priority in the trace (whatever the policy made of it).
    pub priority: i32,
    /// When it should have succeeded by (its trace record's `deadline` after submission).
    pub deadline: Option<Time>,
    /// Whether it was submitted (a job deleted before it arrived never is).
    pub submitted: bool,
    /// Whether pods of it were running when the trace ran out.
    pub running_at_end: bool,
}

/// How a job ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// Still pending or running when the trace ran out.
    Open,
    /// Every pod succeeded.
    Succeeded,
    /// A pod or a dependency failed.
    Failed,
    /// Deleted.
    Deleted,
}

/// Time series of the cluster, one sample per instant something changed.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Lanes sampled.
    pub lanes: Vec<ResourceId>,
    /// Queue names, by index (the index of [`JobStat::queue`]).
    pub queues: Vec<String>,
    /// Sample times.
    pub t: Vec<Time>,
    /// Allocated per lane, `t.len() × lanes.len()`.
    pub alloc: Vec<i64>,
    /// Allocatable of live nodes per lane, same shape.
    pub cap: Vec<i64>,
    /// Per queue dominant share of the cluster, `t.len() × queues`.
    pub queue_share: Vec<f32>,
    /// Jobs submitted and not placed yet.
    pub pending: Vec<u32>,
    /// Jobs with pods running.
    pub running: Vec<u32>,
    /// Per queue, jobs submitted and not placed yet, `t.len() × queues`.
    pub queue_pending: Vec<u32>,
    /// Per queue, jobs with pods running, same shape.
    pub queue_running: Vec<u32>,
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// The policy.
    pub mode: Mode,
    /// Per job, in scenario order.
    pub jobs: Vec<JobStat>,
    /// Pods over all jobs.
    pub pods: u64,
    /// Nodes ever seen.
    pub nodes: usize,
    /// The time series.
    pub series: Series,
    /// Time of the last event processed.
    pub end: Time,
    /// Integral of allocated per lane over time (unit-seconds).
    pub alloc_integral: Vec<f64>,
    /// Integral of allocatable per lane over time.
    pub cap_integral: Vec<f64>,
    /// Integral of each queue's dominant share over time (share-seconds).
    pub queue_share_integral: Vec<f64>,
    /// Integral of what each queue held over time, per queue and lane (resource-seconds).
    pub queue_alloc_integral: Vec<Vec<f64>>,
    /// Resource-seconds held by pods of gangs that had fewer than `min_member` pods running,
    /// per lane: capacity held without progress.
    pub incomplete_gang_resource_s: Vec<f64>,
    /// Resource-seconds of work that completed, per lane: each pod that succeeded, its request
    /// times the time it ran (from the start of its clock, so not the time a baseline pod
    /// waited at its barrier).
    pub work_done_s: Vec<f64>,
    /// Resource-seconds of work thrown away, per lane: each pod evicted (reclaim, preemption,
    /// a failed node) after its clock started, its request times the time it had run.
    pub work_evicted_s: Vec<f64>,
    /// Pods evicted after their clock started.
    pub pods_evicted: u64,
    /// GPUs free on live nodes whose free CPU or memory is below what the smallest GPU pod of
    /// the scenario asks for (so no GPU pod could use them): stranded GPUs, integrated over
    /// time, in units of [`RunStats::gpu_lane`] times seconds. 0 when no pod asks for a GPU.
    pub stranded_gpu_s: f64,
    /// Whether any pod of the scenario asks for a GPU.
    pub gpu_pods: bool,
    /// The lane GPUs are counted in ([`Scenario::gpu_lane`]).
    pub gpu_lane: Option<GpuLane>,
    /// Whether the run stopped at [`Scenario::end`] with pods still held, rather than when
    /// nothing was left to happen.
    pub stopped: bool,
    /// What bound pods held when the run ended, over all lanes.
    pub alloc_end: Resources,
    /// What live nodes offered when the run ended.
    pub cap_end: Resources,
    /// Stranded GPUs when the run ended, in units of the GPU lane.
    pub stranded_end: i64,
    /// Lines in the decision log.
    pub decisions: u64,
    /// SHA-256 of the decision log.
    pub decision_log_sha256: String,
    /// Events processed (inputs, pod finishes, cycles).
    pub events: u64,
    /// Engine cycles run.
    pub cycles: u64,
    /// Events the engine refused (each would be an engine or world bug), by label.
    pub event_errors: HashMap<&'static str, u64>,
    /// Reserve decisions seen.
    pub reserves: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ev {
    Input(u32),
    Finish {
        pod: u32,
        generation: u32,
    },
    Cycle,
    /// A cycle the engine asked for at a time (`CycleReport::wake_at`); skipped when another
    /// cycle ran since it was asked for.
    Wake {
        asked: u64,
    },
}

/// Events to come, by instant; those of one instant in the order they were queued. Many
/// events share an instant (a trace's times are whole seconds, and a gang's pods end
/// together), so an ordered map of instants is smaller and cheaper than a heap of events.
#[derive(Default)]
struct Agenda {
    at: BTreeMap<Time, VecDeque<Ev>>,
}

impl Agenda {
    fn push(&mut self, t: Time, ev: Ev) {
        self.at.entry(t).or_default().push_back(ev);
    }

    /// The next event, first in time and, within an instant, first queued.
    fn pop(&mut self) -> Option<(Time, Ev)> {
        let mut first = self.at.first_entry()?;
        let t = *first.key();
        let ev = first
            .get_mut()
            .pop_front()
            .expect("instants kept have events");
        if first.get().is_empty() {
            first.remove();
        }
        Some((t, ev))
    }

    /// When the next event happens.
    fn next_time(&self) -> Option<Time> {
        self.at.first_key_value().map(|(t, _)| *t)
    }
}

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct PodW {
    node: u32,
    generation: u32,
    job: u32,
    task: u16,
    /// When its clock started (`NOT_STARTED` while it is not running its work).
    started: u64,
}

const NOT_STARTED: u64 = u64::MAX;

struct JobW {
    pod_base: u32,
    task_base: Vec<u32>,
    bound: u32,
    done_ok: u32,
    alloc: Resources,
    /// What the job adds to `stalled_alloc` now.
    stall: Resources,
    barrier: bool,
    ended: bool,
    deleted_early: bool,
}

#[derive(Serialize)]
struct Line<'a> {
    time: f64,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    succeeded: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a str>,
}

impl<'a> Line<'a> {
    fn new(time: Time, kind: &'a str) -> Self {
        Line {
            time: time.as_secs_f64(),
            kind,
            job: None,
            task: None,
            index: None,
            node: None,
            succeeded: None,
            reason: None,
            state: None,
            cause: None,
        }
    }
}

/// The world during a run.
struct World<'s, 'l> {
    sc: &'s Scenario,
    cfg: SimConfig,
    engine: Engine,
    agenda: Agenda,
    now: Time,
    log: DecisionLog<'l>,
    job_by_name: HashMap<&'s str, u32>,
    jobs: Vec<JobW>,
    pods: Vec<PodW>,
    node_by_name: HashMap<String, u32>,
    node_names: Vec<String>,
    node_live: Vec<bool>,
    node_alloc: Vec<Resources>,
    /// Per node, what bound pods ask of it.
    node_used: Vec<Resources>,
    /// Per node, its stranded GPUs now (see [`RunStats::stranded_gpu_s`]).
    node_stranded: Vec<i64>,
    /// The least CPU and memory any GPU pod of the scenario asks for; `None` without GPU pods.
    gpu_pod_floor: Option<(i64, i64)>,
    /// Stranded GPUs over all nodes now.
    stranded: i64,
    job_queue: Vec<u16>,
    stats: RunStats,
    alloc: Resources,
    cap: Resources,
    queue_alloc: Vec<Resources>,
    stalled_alloc: Resources,
    /// Per queue, jobs submitted and not placed yet.
    pending_jobs: Vec<u32>,
    /// Per queue, jobs with pods running.
    running_jobs: Vec<u32>,
    ended: u64,
    cycle_at: Option<Time>,
    last_cycle: Option<Time>,
    dirty: bool,
    last_advance: Time,
    /// Jobs that arrived before a job they depend on, by that dependency.
    held: HashMap<u32, Vec<u32>>,
    /// Per job, how many of its dependencies have not been submitted yet.
    waiting_on: Vec<u32>,
}

/// Runs a scenario to the end, writing the decision log to `log`.
pub fn run(
    sc: &Scenario,
    cfg: &SimConfig,
    log: &mut (dyn Write + Send),
    progress: &mut dyn FnMut(Progress),
) -> Result<RunStats, WorldError> {
    std::thread::scope(|scope| {
        let mut w = World::new(sc, cfg.clone(), DecisionLog::start(scope, log));
        w.run(progress)?;
        w.into_stats()
    })
}

impl<'s, 'l> World<'s, 'l> {
    fn new(sc: &'s Scenario, cfg: SimConfig, log: DecisionLog<'l>) -> Self {
        // Queues: configured ones, then any a job names (the reader already checked them).
        let mut queues: Vec<String> = Vec::new();
        let mut queue_idx: HashMap<&str, u16> = HashMap::new();
        let mut add = |name: &'s str, queues: &mut Vec<String>| {
            *queue_idx.entry(name).or_insert_with(|| {
                queues.push(name.to_string());
                (queues.len() - 1) as u16
            })
        };
        for q in &sc.queues {
            add(&q.name, &mut queues);
        }
        let mut jobs = Vec::with_capacity(sc.jobs.len());
        let mut pods = Vec::with_capacity(sc.pods() as usize);
        let mut job_by_name = HashMap::with_capacity(sc.jobs.len());
        let mut job_queue = Vec::with_capacity(sc.jobs.len());
        let mut stats_jobs = Vec::with_capacity(sc.jobs.len());
        for (ji, sj) in sc.jobs.iter().enumerate() {
            let j = &sj.job;
            let q = add(&j.queue, &mut queues);
            job_queue.push(q);
            job_by_name.insert(j.name.as_str(), ji as u32);
            let pod_base = pods.len() as u32;
            let mut task_base = Vec::with_capacity(j.tasks.len());
            for (ti, t) in j.tasks.iter().enumerate() {
                task_base.push(pods.len() as u32 - pod_base);
                pods.extend(std::iter::repeat_n(
                    PodW {
                        node: NONE,
                        generation: 0,
                        job: ji as u32,
                        task: ti as u16,
                        started: NOT_STARTED,
                    },
                    t.replicas as usize,
                ));
            }
            jobs.push(JobW {
                pod_base,
                task_base,
                bound: 0,
                done_ok: 0,
                alloc: Resources::ZERO,
                stall: Resources::ZERO,
                barrier: false,
                ended: false,
                deleted_early: false,
            });
            stats_jobs.push(JobStat {
                queue: q,
                submit: j.submit_time,
                eligible: None,
                first_start: None,
                end: None,
                state: JobEnd::Open,
                min_member: j.min_member,
                priority: j.priority,
                deadline: sj.deadline.map(|d| j.submit_time + d),
                submitted: false,
                running_at_end: false,
            });
        }
        if queues.is_empty() {
            queues.push(DEFAULT_QUEUE.to_string());
        }
        // Lanes worth sampling: any a node has or a pod asks for.
        let mut used = Resources::ZERO;
        for (_, i) in &sc.events {
            if let Input::Node(n) = i {
                used += n.allocatable.clamp_zero();
            }
        }
        for j in &sc.jobs {
            used += j.job.total_request().clamp_zero();
        }
        let lanes: Vec<ResourceId> = (0..phalanx_model::MAX_RESOURCES as u8)
            .map(ResourceId)
            .filter(|id| used.get(*id) > 0)
            .collect();
        let nq = queues.len();
        let nl = lanes.len();
        let stats = RunStats {
            mode: cfg.mode,
            jobs: stats_jobs,
            pods: pods.len() as u64,
            nodes: 0,
            series: Series {
                lanes,
                queues,
                ..Default::default()
            },
            end: Time::ZERO,
            alloc_integral: vec![0.0; nl],
            cap_integral: vec![0.0; nl],
            queue_share_integral: vec![0.0; nq],
            queue_alloc_integral: vec![vec![0.0; nl]; nq],
            incomplete_gang_resource_s: vec![0.0; nl],
            work_done_s: vec![0.0; nl],
            work_evicted_s: vec![0.0; nl],
            pods_evicted: 0,
            stranded_gpu_s: 0.0,
            gpu_pods: false,
            gpu_lane: sc.gpu_lane(),
            stopped: false,
            alloc_end: Resources::ZERO,
            cap_end: Resources::ZERO,
            stranded_end: 0,
            decisions: 0,
            decision_log_sha256: String::new(),
            events: 0,
            cycles: 0,
            event_errors: HashMap::new(),
            reserves: 0,
        };
        let gpu_pod_floor = stats.gpu_lane.and_then(|lane| {
            sc.jobs
                .iter()
                .flat_map(|j| &j.job.tasks)
                .map(|t| &t.pod.requests)
                .filter(|r| r.get(lane.id) > 0)
                .map(|r| (r.get(ResourceId::CPU), r.get(ResourceId::MEMORY)))
                .reduce(|a, b| (a.0.min(b.0), a.1.min(b.1)))
        });
        let mut stats = stats;
        stats.gpu_pods = gpu_pod_floor.is_some();
        World {
            sc,
            engine: Engine::new(cfg.mode.engine(cfg.engine.clone())),
            cfg,
            agenda: Agenda::default(),
            now: Time::ZERO,
            log,
            job_by_name,
            jobs,
            pods,
            node_by_name: HashMap::new(),
            node_names: Vec::new(),
            node_live: Vec::new(),
            node_alloc: Vec::new(),
            node_used: Vec::new(),
            node_stranded: Vec::new(),
            gpu_pod_floor,
            stranded: 0,
            job_queue,
            stats,
            alloc: Resources::ZERO,
            cap: Resources::ZERO,
            queue_alloc: vec![Resources::ZERO; nq],
            stalled_alloc: Resources::ZERO,
            pending_jobs: vec![0; nq],
            running_jobs: vec![0; nq],
            ended: 0,
            cycle_at: None,
            last_cycle: None,
            dirty: false,
            last_advance: Time::ZERO,
            held: HashMap::new(),
            waiting_on: vec![0; sc.jobs.len()],
        }
    }

    fn push(&mut self, t: Time, ev: Ev) {
        self.agenda.push(t, ev);
    }

    fn apply(&mut self, e: ClusterEvent) -> bool {
        match self.engine.apply(e) {
            Ok(()) => true,
            Err(err) => {
                tracing::debug!(error = %err, "the engine refused an event");
                *self.stats.event_errors.entry(err.label()).or_default() += 1;
                false
            }
        }
    }

    fn run(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<(), WorldError> {
        if !self.sc.queues.is_empty() && self.cfg.mode == Mode::Gang {
            self.apply(ClusterEvent::QueuesConfigured(self.sc.queues.clone()));
        }
        for i in 0..self.sc.events.len() {
            self.push(self.sc.events[i].0, Ev::Input(i as u32));
        }
        tracing::debug!(
            mode = ?self.cfg.mode,
            jobs = self.sc.jobs.len(),
            events = self.sc.events.len(),
            "simulation starts"
        );
        while let Some((t, ev)) = self.agenda.pop() {
            if let Some(end) = self.sc.end.filter(|end| t > *end) {
                self.advance(end);
                self.sample();
                self.stats.stopped = true;
                break;
            }
            self.advance(t);
            self.stats.events += 1;
            match ev {
                Ev::Input(i) => self.input(i as usize)?,
                Ev::Finish { pod, generation } => self.pod_done(pod, generation)?,
                Ev::Cycle => {
                    self.cycle_at = None;
                    self.cycle()?;
                }
                Ev::Wake { asked } => {
                    if self.stats.cycles == asked {
                        self.cycle()?;
                    }
                }
            }
            let same_instant = self.agenda.next_time() == Some(t);
            if !same_instant {
                if self.dirty && self.cycle_at.is_none() {
                    let at = match self.last_cycle {
                        Some(last) => (last + self.cfg.period).max(t),
                        None => t,
                    };
                    self.cycle_at = Some(at);
                    self.push(at, Ev::Cycle);
                }
                self.sample();
            }
            if self.stats.events & 0x3fff == 0 {
                progress(Progress {
                    now: self.now,
                    events: self.stats.events,
                    jobs_ended: self.ended,
                    jobs: self.sc.jobs.len() as u64,
                });
            }
        }
        progress(Progress {
            now: self.now,
            events: self.stats.events,
            jobs_ended: self.ended,
            jobs: self.sc.jobs.len() as u64,
        });
        Ok(())
    }

    /// Moves the clock, integrating what was held since the last change.
    fn advance(&mut self, t: Time) {
        if t > self.last_advance {
            let dt = t.since(self.last_advance).as_secs_f64();
            let lanes = &self.stats.series.lanes;
            for (k, id) in lanes.iter().enumerate() {
                self.stats.alloc_integral[k] += self.alloc.get(*id) as f64 * dt;
                self.stats.cap_integral[k] += self.cap.get(*id) as f64 * dt;
                self.stats.incomplete_gang_resource_s[k] += self.stalled_alloc.get(*id) as f64 * dt;
            }
            self.stats.stranded_gpu_s += self.stranded as f64 * dt;
            for q in 0..self.queue_alloc.len() {
                self.stats.queue_share_integral[q] += self.dominant_share(q) * dt;
                for (k, id) in self.stats.series.lanes.iter().enumerate() {
                    self.stats.queue_alloc_integral[q][k] +=
                        self.queue_alloc[q].get(*id) as f64 * dt;
                }
            }
            self.last_advance = t;
        }
        self.now = t;
    }

    fn dominant_share(&self, q: usize) -> f64 {
        self.stats
            .series
            .lanes
            .iter()
            .filter(|id| **id != ResourceId::PODS)
            .map(|id| {
                let cap = self.cap.get(*id);
                if cap > 0 {
                    self.queue_alloc[q].get(*id) as f64 / cap as f64
                } else {
                    0.0
                }
            })
            .fold(0.0, f64::max)
    }

    fn sample(&mut self) {
        let s = &mut self.stats.series;
        if s.t.last() == Some(&self.now) {
            // Replace the sample of this instant.
            s.t.pop();
            let (nl, nq) = (s.lanes.len(), self.queue_alloc.len());
            s.alloc.truncate(s.alloc.len() - nl);
            s.cap.truncate(s.cap.len() - nl);
            s.queue_share.truncate(s.queue_share.len() - nq);
            s.pending.pop();
            s.running.pop();
            s.queue_pending.truncate(s.queue_pending.len() - nq);
            s.queue_running.truncate(s.queue_running.len() - nq);
        }
        s.t.push(self.now);
        for id in &s.lanes {
            s.alloc.push(self.alloc.get(*id));
            s.cap.push(self.cap.get(*id));
        }
        s.pending.push(self.pending_jobs.iter().sum());
        s.running.push(self.running_jobs.iter().sum());
        s.queue_pending.extend_from_slice(&self.pending_jobs);
        s.queue_running.extend_from_slice(&self.running_jobs);
        for q in 0..self.queue_alloc.len() {
            let share = self.dominant_share(q) as f32;
            self.stats.series.queue_share.push(share);
        }
    }

    fn input(&mut self, i: usize) -> Result<(), WorldError> {
        let now = self.now;
        match &self.sc.events[i].1 {
            Input::Node(n) => {
                let idx = match self.node_by_name.get(&n.name) {
                    Some(&i) => i,
                    None => {
                        let i = self.node_names.len() as u32;
                        self.node_by_name.insert(n.name.clone(), i);
                        self.node_names.push(n.name.clone());
                        self.node_live.push(false);
                        self.node_alloc.push(Resources::ZERO);
                        self.node_used.push(Resources::ZERO);
                        self.node_stranded.push(0);
                        i
                    }
                } as usize;
                if self.apply(ClusterEvent::NodeUpserted(n.clone())) {
                    if self.node_live[idx] {
                        self.cap -= self.node_alloc[idx];
                    }
                    self.node_live[idx] = true;
                    self.node_alloc[idx] = n.allocatable;
                    self.cap += n.allocatable;
                    self.restrand(idx);
                    if now > Time::ZERO {
                        let mut l = Line::new(now, "node_up");
                        l.node = Some(&n.name);
                        self.log.write(&l)?;
                    }
                }
            }
            Input::NodeDown(name) => {
                let Some(&idx) = self.node_by_name.get(name) else {
                    return Ok(());
                };
                if !self.node_live[idx as usize]
                    || !self.apply(ClusterEvent::NodeRemoved { node: name.clone() })
                {
                    return Ok(());
                }
                let mut l = Line::new(now, "node_down");
                l.node = Some(name);
                self.log.write(&l)?;
                self.node_live[idx as usize] = false;
                self.cap -= self.node_alloc[idx as usize];
                // The engine forgot the pods on the node; the world loses them too.
                let lost: Vec<u32> = (0..self.pods.len() as u32)
                    .filter(|&p| self.pods[p as usize].node == idx)
                    .collect();
                for p in lost {
                    self.unbind(p, "node_down")?;
                }
                self.restrand(idx as usize);
            }
            Input::NodeUp(name) => {
                let Some(&idx) = self.node_by_name.get(name) else {
                    return Ok(());
                };
                let idx = idx as usize;
                if self.node_live[idx] {
                    return Ok(());
                }
                let node = self
                    .sc
                    .events
                    .iter()
                    .find_map(|(_, i)| match i {
                        Input::Node(n) if &n.name == name => Some(n.clone()),
                        _ => None,
                    })
                    .expect("node_up names a node the reader checked");
                if self.apply(ClusterEvent::NodeUpserted(node)) {
                    self.node_live[idx] = true;
                    self.cap += self.node_alloc[idx];
                    self.restrand(idx);
                    let mut l = Line::new(now, "node_up");
                    l.node = Some(name);
                    self.log.write(&l)?;
                }
            }
            Input::Submit(ji) => {
                let ji = *ji;
                if self.jobs[ji].deleted_early {
                    return Ok(());
                }
                // A job is handed to the engine once every job it depends on has been: the
                // engine may refuse a dependency on a job it has never seen.
                let unmet: Vec<u32> = self.sc.jobs[ji]
                    .job
                    .depends_on
                    .iter()
                    .filter_map(|d| self.job_by_name.get(d.as_str()).copied())
                    .filter(|&d| {
                        !self.stats.jobs[d as usize].submitted
                            && !self.jobs[d as usize].deleted_early
                    })
                    .collect();
                if unmet.is_empty() {
                    self.submit(ji)?;
                } else {
                    self.waiting_on[ji] = unmet.len() as u32;
                    for d in unmet {
                        self.held.entry(d).or_default().push(ji as u32);
                    }
                }
            }
            Input::JobDelete(name) => {
                let ji = self.job_by_name[name.as_str()] as usize;
                if !self.stats.jobs[ji].submitted {
                    // Deleted before it arrived (or while it waited for its dependencies to
                    // arrive): it never will be submitted. Jobs waiting for it go ahead.
                    self.jobs[ji].deleted_early = true;
                    self.jobs[ji].ended = true;
                    self.stats.jobs[ji].state = JobEnd::Deleted;
                    self.stats.jobs[ji].end = Some(now);
                    self.release_waiters(ji)?;
                    return Ok(());
                }
                if !self.apply(ClusterEvent::JobDeleted { job: name.clone() }) {
                    return Ok(());
                }
                let base = self.jobs[ji].pod_base;
                let n = self.sc.jobs[ji].job.replicas() as u32;
                for p in base..base + n {
                    if self.pods[p as usize].node != NONE {
                        self.release(p);
                    }
                }
                self.end_job(ji, JobEnd::Deleted, None)?;
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// Submits job `ji` to the engine, then every job that was waiting only for it.
    fn submit(&mut self, ji: usize) -> Result<(), WorldError> {
        if self.jobs[ji].deleted_early || self.stats.jobs[ji].submitted {
            return Ok(());
        }
        let sj = &self.sc.jobs[ji];
        let job = match self.cfg.mode {
            Mode::Gang => sj.job.clone(),
            Mode::Baseline => dissolve(&sj.job),
            Mode::Fifo => in_arrival_order(&sj.job),
        };
        if self.apply(ClusterEvent::JobSubmitted(job)) {
            self.stats.jobs[ji].submitted = true;
            self.pending_jobs[self.job_queue[ji] as usize] += 1;
            let mut l = Line::new(self.now, "submit");
            l.job = Some(&sj.job.name);
            self.log.write(&l)?;
        }
        self.release_waiters(ji)
    }

    fn release_waiters(&mut self, ji: usize) -> Result<(), WorldError> {
        for w in self.held.remove(&(ji as u32)).unwrap_or_default() {
            let w = w as usize;
            self.waiting_on[w] -= 1;
            if self.waiting_on[w] == 0 {
                self.submit(w)?;
            }
        }
        Ok(())
    }

    fn request(&self, p: u32) -> Resources {
        let pod = self.pods[p as usize];
        let mut r = self.sc.jobs[pod.job as usize].job.tasks[pod.task as usize]
            .pod
            .requests;
        r.set(ResourceId::PODS, 1);
        r
    }

    fn pod_ref(&self, p: u32) -> PodRef {
        let pod = self.pods[p as usize];
        let j = &self.jobs[pod.job as usize];
        PodRef {
            job: self.sc.jobs[pod.job as usize].job.name.clone(),
            task: pod.task as u32,
            index: p - j.pod_base - j.task_base[pod.task as usize],
        }
    }

    /// Frees a pod's node in the world's books (the engine is told separately).
    fn release(&mut self, p: u32) {
        let req = self.request(p);
        let pod = &mut self.pods[p as usize];
        let node = pod.node as usize;
        pod.node = NONE;
        pod.generation = pod.generation.wrapping_add(1);
        pod.started = NOT_STARTED;
        let ji = pod.job as usize;
        self.node_used[node] -= req;
        self.restrand(node);
        self.alloc -= req;
        self.queue_alloc[self.job_queue[ji] as usize] -= req;
        let q = self.job_queue[ji] as usize;
        let j = &mut self.jobs[ji];
        j.bound -= 1;
        j.alloc -= req;
        if j.bound == 0 {
            self.running_jobs[q] -= 1;
            if !j.ended {
                self.pending_jobs[q] += 1;
            }
        }
        self.restall(ji);
    }

    /// Recomputes whether the job holds capacity as an incomplete gang.
    fn restall(&mut self, ji: usize) {
        let need = self.sc.jobs[ji].job.min_member;
        let j = &mut self.jobs[ji];
        let stalled = j.bound > 0 && j.bound + j.done_ok < need && !j.ended;
        self.stalled_alloc -= j.stall;
        j.stall = if stalled { j.alloc } else { Resources::ZERO };
        self.stalled_alloc += j.stall;
    }

    fn unbind(&mut self, p: u32, reason: &str) -> Result<(), WorldError> {
        let node = self.pods[p as usize].node;
        if let Some(ran) = self.ran(p) {
            self.stats.pods_evicted += 1;
            let req = self.request(p);
            for (k, id) in self.stats.series.lanes.iter().enumerate() {
                self.stats.work_evicted_s[k] += req.get(*id) as f64 * ran;
            }
        }
        self.release(p);
        let pod = self.pods[p as usize];
        let sj = &self.sc.jobs[pod.job as usize];
        let j = &self.jobs[pod.job as usize];
        let mut l = Line::new(self.now, "evict");
        l.job = Some(&sj.job.name);
        l.task = Some(&sj.job.tasks[pod.task as usize].name);
        l.index = Some(p - j.pod_base - j.task_base[pod.task as usize]);
        l.node = Some(&self.node_names[node as usize]);
        l.reason = Some(reason);
        self.log.write(&l)?;
        Ok(())
    }

    fn pod_done(&mut self, p: u32, generation: u32) -> Result<(), WorldError> {
        let pod = self.pods[p as usize];
        if pod.generation != generation || pod.node == NONE {
            return Ok(());
        }
        let ji = pod.job as usize;
        let succeeded = !self.sc.jobs[ji].fails[pod.task as usize];
        let pref = self.pod_ref(p);
        if !self.apply(ClusterEvent::PodFinished {
            pod: pref.clone(),
            succeeded,
        }) {
            return Ok(());
        }
        let node = pod.node;
        if succeeded {
            self.jobs[ji].done_ok += 1;
            let ran = self.ran(p).unwrap_or(0.0);
            let req = self.request(p);
            for (k, id) in self.stats.series.lanes.iter().enumerate() {
                self.stats.work_done_s[k] += req.get(*id) as f64 * ran;
            }
        }
        self.release(p);
        {
            let sj = &self.sc.jobs[ji];
            let mut l = Line::new(self.now, "finish");
            l.job = Some(&sj.job.name);
            l.task = Some(&sj.job.tasks[pod.task as usize].name);
            l.index = Some(pref.index);
            l.node = Some(&self.node_names[node as usize]);
            l.succeeded = Some(succeeded);
            self.log.write(&l)?;
        }
        let phase = self
            .engine
            .view()
            .job(&pref.job)
            .map(|j| (j.phase, j.reason.map(|r| r.describe(Some(&self.sc.table)))));
        match phase {
            Some((JobPhase::Succeeded, _)) => self.end_job(ji, JobEnd::Succeeded, None)?,
            Some((JobPhase::Failed, cause)) => {
                self.end_job(ji, JobEnd::Failed, cause.as_deref())?
            }
            _ => {}
        }
        self.dirty = true;
        Ok(())
    }

    fn end_job(&mut self, ji: usize, state: JobEnd, cause: Option<&str>) -> Result<(), WorldError> {
        if self.jobs[ji].ended {
            return Ok(());
        }
        self.jobs[ji].ended = true;
        self.restall(ji);
        self.ended += 1;
        let st = &mut self.stats.jobs[ji];
        st.state = state;
        st.end = Some(self.now);
        if self.jobs[ji].bound == 0 {
            self.pending_jobs[self.job_queue[ji] as usize] -= 1;
        }
        tracing::debug!(
            job = %self.sc.jobs[ji].job.name,
            queue = %self.sc.jobs[ji].job.queue,
            ?state,
            at = %self.now,
            "job ended"
        );
        let mut l = Line::new(self.now, "job_end");
        l.job = Some(&self.sc.jobs[ji].job.name);
        l.state = Some(match state {
            JobEnd::Succeeded => "succeeded",
            JobEnd::Failed => "failed",
            JobEnd::Deleted => "deleted",
            JobEnd::Open => "open",
        });
        l.cause = cause;
        self.log.write(&l)?;
        Ok(())
    }

    fn cycle(&mut self) -> Result<(), WorldError> {
        self.dirty = false;
        self.last_cycle = Some(self.now);
        self.stats.cycles += 1;
        let out = self.engine.cycle(self.now);
        let mut busy = out.report.ready_left > 0;
        for d in out.decisions {
            busy |= matches!(
                d,
                Decision::BindGang { .. } | Decision::Evict { .. } | Decision::FailJob { .. }
            );
            self.decide(d)?;
        }
        if busy && self.cycle_at.is_none() {
            let at = self.now + self.cfg.period;
            self.cycle_at = Some(at);
            self.push(at, Ev::Cycle);
        }
        // Time alone brings the engine work (a blocked gang may now evict): cycle then, as
        // long as anything else is still to happen (running pods end, so victims exist only
        // while events remain, and a run always ends).
        if let Some(wake) = out.report.wake_at
            && self.cycle_at.is_none()
            && self.agenda.next_time().is_some()
        {
            let at = wake.max(self.now + self.cfg.period);
            let asked = self.stats.cycles;
            self.push(at, Ev::Wake { asked });
        }
        Ok(())
    }

    fn decide(&mut self, d: Decision) -> Result<(), WorldError> {
        let now = self.now;
        match d {
            Decision::BindGang { job, bindings } => {
                let Some(&ji) = self.job_by_name.get(job.as_str()) else {
                    *self.stats.event_errors.entry("unknown_job").or_default() += 1;
                    return Ok(());
                };
                let ji = ji as usize;
                for b in bindings {
                    let Some(&node) = self.node_by_name.get(&b.node) else {
                        *self.stats.event_errors.entry("unknown_node").or_default() += 1;
                        continue;
                    };
                    let p =
                        self.jobs[ji].pod_base + self.jobs[ji].task_base[b.task as usize] + b.index;
                    if !self.apply(b.bound(&job)) {
                        continue;
                    }
                    if self.pods[p as usize].node != NONE {
                        // Bound twice without leaving: keep the books straight.
                        self.release(p);
                    }
                    let req = self.request(p);
                    self.pods[p as usize].node = node;
                    self.node_used[node as usize] += req;
                    self.restrand(node as usize);
                    self.alloc += req;
                    let q = self.job_queue[ji] as usize;
                    self.queue_alloc[q] += req;
                    let j = &mut self.jobs[ji];
                    j.bound += 1;
                    j.alloc += req;
                    if j.bound == 1 {
                        self.running_jobs[q] += 1;
                        self.pending_jobs[q] -= 1;
                    }
                    {
                        let sj = &self.sc.jobs[ji];
                        let mut l = Line::new(now, "bind");
                        l.job = Some(&sj.job.name);
                        l.task = Some(&sj.job.tasks[b.task as usize].name);
                        l.index = Some(b.index);
                        l.node = Some(&b.node);
                        self.log.write(&l)?;
                    }
                    match self.cfg.mode {
                        Mode::Gang | Mode::Fifo => self.start(p),
                        Mode::Baseline if self.jobs[ji].barrier => self.start(p),
                        Mode::Baseline => {}
                    }
                }
                let need = self.sc.jobs[ji].job.min_member;
                let j = &self.jobs[ji];
                if self.stats.jobs[ji].first_start.is_none() && j.bound + j.done_ok >= need {
                    // The gang runs: its wait is over (in the baseline, its barrier opens).
                    self.stats.jobs[ji].first_start = Some(now);
                }
                if self.cfg.mode == Mode::Baseline && !j.barrier && j.bound + j.done_ok >= need {
                    // Every worker is up: the barrier opens and they all start.
                    self.jobs[ji].barrier = true;
                    let base = self.jobs[ji].pod_base;
                    let n = self.sc.jobs[ji].job.replicas() as u32;
                    for p in base..base + n {
                        if self.pods[p as usize].node != NONE {
                            self.start(p);
                        }
                    }
                }
                self.restall(ji);
            }
            Decision::Evict { pods, reason } => {
                for pod in pods {
                    let Some(&ji) = self.job_by_name.get(pod.job.as_str()) else {
                        continue;
                    };
                    let j = &self.jobs[ji as usize];
                    let Some(&tb) = j.task_base.get(pod.task as usize) else {
                        continue;
                    };
                    let p = j.pod_base + tb + pod.index;
                    let placed = self.pods[p as usize].node != NONE;
                    if self.apply(ClusterEvent::PodEvicted { pod }) && placed {
                        self.unbind(p, reason_str(reason))?;
                    }
                }
                self.dirty = true;
            }
            Decision::Reserve { .. } => self.stats.reserves += 1,
            Decision::MarkUnschedulable { job, reason } => {
                let text = reason.describe(Some(&self.sc.table));
                let mut l = Line::new(now, "unschedulable");
                l.job = Some(&job);
                l.reason = Some(&text);
                self.log.write(&l)?;
            }
            Decision::FailJob { job, cause } => {
                if let Some(&ji) = self.job_by_name.get(job.as_str()) {
                    let text = cause.describe(Some(&self.sc.table));
                    self.end_job(ji as usize, JobEnd::Failed, Some(&text))?;
                }
            }
        }
        Ok(())
    }

    /// Starts a bound pod's clock: it finishes after its task's duration.
    fn start(&mut self, p: u32) {
        let pod = &mut self.pods[p as usize];
        pod.generation = pod.generation.wrapping_add(1);
        pod.started = self.now.0;
        let generation = pod.generation;
        let d = self.sc.jobs[pod.job as usize].job.tasks[pod.task as usize]
            .pod
            .duration
            .unwrap_or_default();
        self.push(self.now + d, Ev::Finish { pod: p, generation });
    }

    /// Seconds a pod has run its work, if its clock started.
    fn ran(&self, p: u32) -> Option<f64> {
        let started = self.pods[p as usize].started;
        (started != NOT_STARTED).then(|| self.now.since(Time(started)).as_secs_f64())
    }

    /// Recomputes the stranded GPUs of node `n` (see [`RunStats::stranded_gpu_s`]).
    fn restrand(&mut self, n: usize) {
        let (Some((cpu, memory)), Some(lane)) = (self.gpu_pod_floor, self.stats.gpu_lane) else {
            return;
        };
        let free = self.node_alloc[n] - self.node_used[n];
        let gpus = free.get(lane.id);
        let now = if self.node_live[n]
            && gpus > 0
            && (free.get(ResourceId::CPU) < cpu || free.get(ResourceId::MEMORY) < memory)
        {
            gpus
        } else {
            0
        };
        self.stranded += now - self.node_stranded[n];
        self.node_stranded[n] = now;
    }

    fn into_stats(mut self) -> Result<RunStats, WorldError> {
        self.stats.end = self.now;
        self.stats.alloc_end = self.alloc;
        self.stats.cap_end = self.cap;
        self.stats.stranded_end = self.stranded;
        self.stats.nodes = self.node_names.len();
        for (st, j) in self.stats.jobs.iter_mut().zip(&self.jobs) {
            st.running_at_end = j.bound > 0 && !j.ended;
        }
        let eligible: Vec<Option<Time>> = (0..self.stats.jobs.len())
            .map(|i| {
                let st = &self.stats.jobs[i];
                if !st.submitted {
                    return None;
                }
                let mut at = st.submit;
                for d in &self.sc.jobs[i].job.depends_on {
                    let Some(&di) = self.job_by_name.get(d.as_str()) else {
                        continue;
                    };
                    let dep = &self.stats.jobs[di as usize];
                    match (dep.state, dep.end) {
                        (JobEnd::Succeeded, Some(end)) => at = at.max(end),
                        _ if self.jobs[di as usize].deleted_early => {}
                        _ => return None,
                    }
                }
                Some(at)
            })
            .collect();
        for (st, e) in self.stats.jobs.iter_mut().zip(eligible) {
            st.eligible = e;
        }
        self.stats.decisions = self.log.lines;
        self.stats.decision_log_sha256 = self.log.finish()?;
        Ok(self.stats)
    }
}

fn reason_str(r: EvictReason) -> &'static str {
    r.as_str()
}

/// The job as the FIFO policy sees it: its gang whole, one queue, no priority.
pub fn in_arrival_order(job: &Job) -> Job {
    let mut j = job.clone();
    j.queue = DEFAULT_QUEUE.to_string();
    j.priority = 0;
    j
}

/// The job as the baseline policy sees it: its gang dissolved, one queue, no priority.
pub fn dissolve(job: &Job) -> Job {
    let mut j = job.clone();
    j.min_member = 1;
    j.min_resources = None;
    j.queue = DEFAULT_QUEUE.to_string();
    j.priority = 0;
    for t in &mut j.tasks {
        t.min_member = 0;
    }
    j
}
