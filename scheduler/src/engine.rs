//! The engine: applies [`ClusterEvent`]s to its state and, in each cycle, turns the queues'
//! eligible jobs into [`Decision`]s. Pure: no I/O, no clock (time is an argument), no threads,
//! no randomness, and every map it iterates is ordered, so the same events give the same
//! decisions, byte for byte.
//!
//! A pod's life:
//! ```text
//!            cycle: gang placed            PodBound
//!   Pending ---------------------> Assumed ---------> Bound ---PodFinished---> Succeeded | Failed
//!      ^                              |                 |
//!      |    BindFailed (any pod of    |                 | gang undone: Evict decision
//!      +---- the gang): forgotten <---+                 v
//!      +------------------------ PodEvicted ------- Releasing
//! ```
//! A pod that ends on its own while `Releasing` counts as evicted: its gang is being undone,
//! and it runs again with the gang.
//!
//! A job's life: `Pending -> Running -> Succeeded | Failed`. A running gang that falls below its
//! minimum (a bind failed, a node was lost, a pod was evicted from outside) is undone whole:
//! assumed pods are forgotten, bound ones evicted, and the job is pending again once they are gone.
//! No partial gang survives.
//!
//! A gang undone by a failed bind backs off before it is tried again, as kube-scheduler backs
//! off a pod (`podInitialBackoffSeconds`, `podMaxBackoffSeconds`): the engine has no clock, so
//! the first cycle after the failure starts the wait, which is
//! [`EngineConfig::bind_backoff_initial`] doubled for each failed bind in a row, at most
//! [`EngineConfig::bind_backoff_max`]. Meanwhile the job is out of its queue (other jobs go
//! ahead), its reason says when it is tried again, and [`CycleReport::wake_at`] names the
//! instant. The count of failures in a row starts again once a placement of the gang binds
//! whole.
//! ```text
//!   Off --BindFailed--> Starting --next cycle(now)--> Until(now + backoff) --cycle >= until--> Off
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use phalanx_model::{
    Binding, ClusterEvent, Decision, EvictReason, FitError, Job, PodRef, QueueSpec, Reason,
    ResourceId, Resources, Span, Time,
};
use phalanx_queue::dag::{
    DagGate, NodeIndex as DagNode, PathLength, Released, Status as DagStatus,
};
use phalanx_queue::tree::{PlacementError, QueueConfigError, QueueInfo, QueueTree, ReclaimLedger};
use phalanx_queue::{JobId, NameMap, OrderKey};
use serde::{Deserialize, Serialize};

use crate::gang::{DiagnosisCache, GpuDemand, RoomMemo, ScorePolicy, Shape, Transaction, diagnose};
use crate::reserve::{self, Planned, Release};
use crate::snapshot::{ClassId, NodeId, Snapshot};

/// Reclaim searches per cycle at most: each looks at every running job.
const MAX_RECLAIMS_PER_CYCLE: u32 = 32;
/// Gangs one reclaim search may lift before it gives up.
const MAX_VICTIMS: usize = 4096;
/// Up to this many victims, each is tried for being given back (one trial placement each).
const MAX_PRUNED: usize = 256;

/// How the engine places pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How to choose among nodes that fit.
    pub score: ScorePolicy,
    /// Jobs attempted per cycle at most; the rest wait for the next cycle.
    pub max_attempts_per_cycle: usize,
    /// How long a job waits for a dependency that does not exist before it fails with
    /// `DependencyMissing` (milliseconds; default 10 minutes).
    pub dependency_timeout: Span,
    /// Within a queue and priority, jobs with a longer chain of dependent work behind them go
    /// first (default on).
    pub critical_path: bool,
    /// Blocked gangs that may hold nodes at once while they wait for room (see
    /// [`crate::reserve`]); at most one per queue. 0 turns reservation and backfill off.
    pub max_reservations: usize,
    /// Whether a queue below its deserved share may evict whole gangs of queues above theirs
    /// (default on). In-queue preemption by priority is set per queue.
    pub reclaim: bool,
    /// After a job of queue A is evicted for queue B, how long A may not reclaim from B
    /// (milliseconds; default 5 minutes): no eviction ping-pong while deserved shares move.
    pub reclaim_cooldown: Span,
    /// How long a gang must have been blocked before it may evict others (milliseconds;
    /// default 30 s, as YuniKorn's `preemption.delay`): room that frees on its own soon is
    /// cheaper than running work thrown away.
    pub reclaim_delay: Span,
    /// How long a gang undone by a failed bind waits before it is tried again (milliseconds;
    /// default 1 s, as kube-scheduler's `podInitialBackoffSeconds`). The wait doubles with each
    /// failed bind in a row, up to `bind_backoff_max`; 0 tries it again at the next cycle.
    pub bind_backoff_initial: Span,
    /// The longest wait after failed binds (milliseconds; default 10 s, as kube-scheduler's
    /// `podMaxBackoffSeconds`).
    pub bind_backoff_max: Span,
    /// How long a gang may stay partly bound before it fails (milliseconds; default 30 s).
    /// Kubernetes cannot unbind a pod: bound pods that no controller recreates (pods without
    /// an owner) stay bound when their gang is undone, and so do pods adopted at start whose
    /// controller has not deleted them yet. Such a gang is retried as after a failed bind; if
    /// it is still below its minimum once this has passed, the job fails and its bound pods are
    /// evicted. All-or-nothing is broken for at most this plus `bind_backoff_max`.
    pub partial_gang_timeout: Span,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            score: ScorePolicy::Binpack,
            max_attempts_per_cycle: 10_000,
            dependency_timeout: Span(10 * 60 * 1000),
            critical_path: true,
            max_reservations: 16,
            reclaim: true,
            reclaim_cooldown: Span(5 * 60 * 1000),
            reclaim_delay: Span(30 * 1000),
            bind_backoff_initial: Span(1000),
            bind_backoff_max: Span(10 * 1000),
            partial_gang_timeout: Span(30 * 1000),
        }
    }
}

impl EngineConfig {
    /// The wait after `failures` failed binds in a row: the initial backoff, doubled for each
    /// failure after the first, at most the maximum.
    pub fn bind_backoff(&self, failures: u32) -> Span {
        let doublings = failures.saturating_sub(1).min(63);
        Span(
            self.bind_backoff_initial
                .0
                .saturating_mul(1u64 << doublings)
                .min(self.bind_backoff_max.0),
        )
    }
}

/// Where a job is in its backoff after a failed bind (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backoff {
    /// Free to be tried.
    Off,
    /// A bind failed since the last cycle; the next cycle starts the wait.
    Starting,
    /// Not tried before then.
    Until(Time),
}

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodPhase {
    /// Waiting for its gang to be placed.
    Pending,
    /// Placed by the engine; the bind is in flight.
    Assumed,
    /// Bound to its node.
    Bound,
    /// Evicted by the engine's decision; still holds its node until `PodEvicted`.
    Releasing,
    /// Ended successfully.
    Succeeded,
    /// Ended in failure.
    Failed,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    /// Not placed yet (or undone and waiting again).
    Pending,
    /// Its gang is placed.
    Running,
    /// Every pod succeeded.
    Succeeded,
    /// A pod failed.
    Failed,
}

/// How many pods of a job are in each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodCounts {
    /// Pending.
    pub pending: u32,
    /// Assumed.
    pub assumed: u32,
    /// Bound.
    pub bound: u32,
    /// Releasing.
    pub releasing: u32,
    /// Succeeded.
    pub succeeded: u32,
    /// Failed.
    pub failed: u32,
}

impl PodCounts {
    fn slot(&mut self, phase: PodPhase) -> &mut u32 {
        match phase {
            PodPhase::Pending => &mut self.pending,
            PodPhase::Assumed => &mut self.assumed,
            PodPhase::Bound => &mut self.bound,
            PodPhase::Releasing => &mut self.releasing,
            PodPhase::Succeeded => &mut self.succeeded,
            PodPhase::Failed => &mut self.failed,
        }
    }

    /// Pods holding or about to hold a node as part of the gang.
    pub fn live(&self) -> u32 {
        self.assumed + self.bound
    }

    /// Pods that have not ended.
    pub fn unfinished(&self) -> u32 {
        self.pending + self.assumed + self.bound + self.releasing
    }
}

/// An event the engine cannot apply. The state is unchanged when `apply` returns one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event names a job the engine does not know.
    #[error("unknown job {0}")]
    UnknownJob(String),
    /// The event names a node the engine does not know (or that was removed).
    #[error("unknown node {0}")]
    UnknownNode(String),
    /// The job has no such task or replica.
    #[error("unknown pod {0}")]
    UnknownPod(PodRef),
    /// The event does not apply to a pod in this phase.
    #[error("{event} does not apply to pod {pod} in phase {phase:?}")]
    Conflict {
        /// The pod.
        pod: PodRef,
        /// Its phase.
        phase: PodPhase,
        /// The event kind.
        event: &'static str,
    },
    /// The job cannot be stored at all (it has no name).
    #[error("{0}")]
    InvalidJob(phalanx_model::JobError),
    /// The queue configuration is invalid; the previous one stays in force.
    #[error(transparent)]
    InvalidQueues(#[from] QueueConfigError),
    /// The job's dependencies would close a cycle; it was not admitted.
    #[error(transparent)]
    DependencyCycle(#[from] phalanx_queue::dag::CycleError),
    /// A resubmitted job changes what already runs.
    #[error("job {job}: update rejected: {why}")]
    JobUpdateRejected {
        /// Job name.
        job: String,
        /// Why.
        why: &'static str,
    },
}

impl EventError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            EventError::UnknownJob(_) => "unknown_job",
            EventError::UnknownNode(_) => "unknown_node",
            EventError::UnknownPod(_) => "unknown_pod",
            EventError::Conflict { .. } => "conflict",
            EventError::InvalidJob(_) => "invalid_job",
            EventError::DependencyCycle(_) => "dependency_cycle",
            EventError::InvalidQueues(_) => "invalid_queues",
            EventError::JobUpdateRejected { .. } => "job_update_rejected",
        }
    }
}

/// Where one pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PodSlot {
    phase: PodPhase,
    node: Option<NodeId>,
    /// When it was placed (the cycle that assumed it, or the one before its bind was seen).
    since: Time,
}

impl PodSlot {
    const PENDING: PodSlot = PodSlot {
        phase: PodPhase::Pending,
        node: None,
        since: Time::ZERO,
    };
}

/// Room held for a blocked gang (see [`crate::reserve`]). What is held so far is in the job's
/// `reservations`, and counts against its queue like placed pods do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Claim {
    /// What to hold per node once it frees.
    want: BTreeMap<NodeId, Resources>,
    /// When the gang is expected to start.
    start: Time,
    /// When the plan was made.
    planned: Time,
    /// Whether the room comes from gangs evicted for it (reclaim or preemption) rather than
    /// from pods expected to end.
    evicted_for: bool,
}

impl Claim {
    /// A plan proved wrong: a node of it is gone, or the gang is still waiting well past the
    /// expected start (as long again as the plan looked ahead, and at least a minute).
    fn stale(&self, snapshot: &Snapshot, now: Time) -> bool {
        let lookahead = self.start.0.saturating_sub(self.planned.0).max(60_000);
        now.0 > self.start.0.saturating_add(lookahead)
            || self.want.keys().any(|&n| !snapshot.node(n).live)
    }
}

/// Every pod of a new job pending: slots by task, live pods by task, counts.
fn fresh_pods(job: &Job) -> (Vec<Vec<PodSlot>>, Vec<u32>, PodCounts) {
    let pods = job
        .tasks
        .iter()
        .map(|t| vec![PodSlot::PENDING; t.replicas as usize])
        .collect();
    let counts = PodCounts {
        pending: job.replicas().min(u32::MAX as u64) as u32,
        ..Default::default()
    };
    (pods, vec![0; job.tasks.len()], counts)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct JobState {
    job: Job,
    key: OrderKey,
    phase: JobPhase,
    /// Pods by task, then replica.
    pods: Vec<Vec<PodSlot>>,
    counts: PodCounts,
    /// Requests of its pods that hold a node (assumed, bound, releasing).
    held: Resources,
    /// What its queue counts for it: `held` plus capacity reserved for it.
    accounted: Resources,
    /// Per-task live pods (assumed + bound).
    live_by_task: Vec<u32>,
    /// Capacity held for the job's `min_resources`, per node.
    reservations: BTreeMap<NodeId, Resources>,
    /// Why it is pending, or why it failed.
    reason: Option<Reason>,
    /// Whether it is in the queue (ready or parked).
    queued: bool,
    /// Whether its dependencies are in the DAG gate (only valid jobs enter it).
    in_dag: bool,
    /// What is wrong with the job as submitted, if anything (checked once per submission).
    invalid: Option<phalanx_model::JobError>,
    /// Its node in the DAG gate, when it has dependencies or some job depends on it.
    dag_node: Option<DagNode>,
    /// When its gang last started (reclaim evicts the youngest first).
    started: Time,
    /// Room held for it while it is blocked.
    claim: Option<Claim>,
    /// Since when it has been blocked (found no room), while it has not started.
    blocked_since: Option<Time>,
    /// When a search for gangs to evict for it last found none.
    reclaim_tried: Option<Time>,
    /// The node generation at which no reservation plan existed for it (it would not fit even
    /// once every running pod ended); it tries again when nodes change.
    unplannable: Option<u64>,
    /// Failed binds of its gang in a row; reset once a placement of it binds whole.
    bind_failures: u32,
    /// Its backoff after a failed bind; out of its queue while not `Off`.
    backoff: Backoff,
    /// Since when some of its pods have been bound while the gang was below its minimum (see
    /// [`EngineConfig::partial_gang_timeout`]); cleared once the gang is bound whole.
    partial_since: Option<Time>,
}

impl JobState {
    fn slot(&self, pod: &PodRef) -> Option<PodSlot> {
        self.pods
            .get(pod.task as usize)?
            .get(pod.index as usize)
            .copied()
    }

    fn set(&mut self, task: usize, index: usize, phase: PodPhase, node: Option<NodeId>) {
        let slot = &mut self.pods[task][index];
        let live = |p| matches!(p, PodPhase::Assumed | PodPhase::Bound);
        let holds = |p| matches!(p, PodPhase::Assumed | PodPhase::Bound | PodPhase::Releasing);
        let request = self.job.tasks[task].pod.requests;
        if holds(slot.phase) {
            self.held -= request;
        }
        if holds(phase) {
            self.held += request;
        }
        *self.counts.slot(slot.phase) -= 1;
        *self.counts.slot(phase) += 1;
        if live(slot.phase) {
            self.live_by_task[task] -= 1;
        }
        if live(phase) {
            self.live_by_task[task] += 1;
        }
        let since = slot.since;
        *slot = PodSlot { phase, node, since };
    }

    /// Pods the gang must have live together: `min_member`, or fewer once some have ended.
    fn gang_need(&self) -> u32 {
        self.job.min_member.min(self.counts.unfinished())
    }

    fn request(&self, task: usize) -> Resources {
        self.job.tasks[task].pod.requests
    }
}

/// What one attempt must place for a job.
struct Need {
    /// Not running yet: the gang's minimum goes all or nothing.
    forming: bool,
    /// Pods the gang needs placed together (0 once it runs).
    gang_need: u32,
    /// Per task, pods its own minimum needs placed (0 once it runs).
    task_need: Vec<u32>,
    /// Per task, the indexes of its pending pods.
    pending_by_task: Vec<Vec<u32>>,
    /// The least the gang's minimum asks for (see [`gang_minimum`]).
    minimum: Resources,
    /// Room already held for the job.
    held: Resources,
}

impl Need {
    fn of(s: &JobState) -> Need {
        let forming = s.phase == JobPhase::Pending;
        let gang_need = if forming {
            s.gang_need().saturating_sub(s.counts.live())
        } else {
            0
        };
        let pending_by_task: Vec<Vec<u32>> = s
            .pods
            .iter()
            .map(|slots| {
                (0..slots.len() as u32)
                    .filter(|&i| slots[i as usize].phase == PodPhase::Pending)
                    .collect()
            })
            .collect();
        let task_need: Vec<u32> = s
            .job
            .tasks
            .iter()
            .zip(&s.live_by_task)
            .zip(&pending_by_task)
            .map(|((t, &live), pending)| {
                if forming {
                    t.min_member.saturating_sub(live).min(pending.len() as u32)
                } else {
                    0
                }
            })
            .collect();
        let minimum = gang_minimum(s, &task_need, &pending_by_task, gang_need);
        Need {
            forming,
            gang_need,
            task_need,
            pending_by_task,
            minimum,
            held: s.reservations.values().fold(Resources::ZERO, |a, r| a + *r),
        }
    }

    /// Pods to plan room for, per task: each task's own minimum, and the rest of the gang's from
    /// the tasks' other pending pods in task order.
    fn plan_counts(&self) -> Vec<u32> {
        let mut counts = self.task_need.clone();
        let mut rest = self.gang_need.saturating_sub(counts.iter().sum());
        for (t, pending) in self.pending_by_task.iter().enumerate() {
            let more = (pending.len() as u32 - counts[t]).min(rest);
            counts[t] += more;
            rest -= more;
        }
        counts
    }
}

/// A placement found and applied to the snapshot, not yet committed.
struct Placed {
    txn: Transaction,
}

/// A placement not found; the snapshot is as it was.
struct Miss {
    /// Why, when asked.
    reason: Option<Reason>,
    /// Pods of the gang that did fit.
    placeable: u32,
    /// Nodes looked at.
    scanned: u64,
}

/// A running gang reclaim or preemption may evict.
struct Victim {
    id: JobId,
    priority: i32,
    started: Time,
    pods: u32,
    why: EvictReason,
}

/// What one cycle did, as plain counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleReport {
    /// Jobs attempted.
    pub attempts: u32,
    /// Gangs (or additional pods of running jobs) placed.
    pub jobs_placed: u32,
    /// Pods placed.
    pub pods_placed: u32,
    /// Nodes looked at while placing.
    pub nodes_scanned: u64,
    /// Jobs that did not fit, by reason label.
    pub unschedulable: BTreeMap<String, u32>,
    /// Jobs ready for a later cycle (budget spent).
    pub ready_left: u32,
    /// Jobs parked until the cluster changes.
    pub parked: u32,
    /// Jobs placed in room held for blocked gangs, which they will be done before (backfill).
    pub backfilled: u32,
    /// Blocked gangs holding room after the cycle (reservations).
    pub reservations: u32,
    /// When the engine next has work that time alone brings (a blocked gang's reclaim delay
    /// running out, or a gang's backoff after a failed bind ending), if any: a driver that
    /// cycles only on events should cycle then.
    pub wake_at: Option<Time>,
}

/// What a cycle returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleOutcome {
    /// Decisions, in the order they were made; the caller carries them out.
    pub decisions: Vec<Decision>,
    /// Counters.
    pub report: CycleReport,
}

/// The scheduling engine. See the module docs.
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    snapshot: Snapshot,
    jobs: Vec<Option<JobState>>,
    /// Keyed by a name the DAG gate shares: each job's name is copied once for both.
    by_name: NameMap<JobId, Arc<str>>,
    queues: QueueTree,
    dag: DagGate,
    /// Scratch for the jobs a success releases (kept to spare an allocation per success).
    released: Vec<JobId>,
    gpu_demand: GpuDemand,
    /// Why gangs miss, worked out once per pod shape while the snapshot is unchanged.
    diagnosis: DiagnosisCache,
    /// Room per pod shape, kept from walks that found the nodes short.
    rooms: RoomMemo,
    /// Decisions made while applying events, handed out by the next cycle.
    outbox: Vec<Decision>,
    classes_dirty: bool,
    cluster_grew: bool,
    last_cycle: Time,
    /// Jobs holding room while blocked.
    claims: BTreeSet<JobId>,
    /// Bumped when a node is added, changed or removed.
    node_generation: u64,
    /// `(victim queue, claimant queue) -> until`: the victim queue may not reclaim from the
    /// claimant queue before then.
    reclaim_guard: BTreeMap<(String, String), Time>,
    /// Deserved shares and allocations for reclaim, and the lowest priority of a gang running
    /// in each queue; made at the first reclaim search of a cycle.
    ledger: Option<(ReclaimLedger, BTreeMap<String, i32>)>,
    /// Reclaim searches left this cycle.
    reclaims_left: u32,
    /// Gangs blocked this cycle that may have room held for them, in the order tried.
    blocked: Vec<JobId>,
    /// How many of `blocked` a job placed after them has passed.
    passed: usize,
    /// Blocked gangs parked until their reclaim delay runs out, by when it does.
    reclaim_due: BTreeSet<(Time, JobId)>,
    /// Gangs whose bind failed since the last cycle: the next cycle starts their backoff.
    backoff_starting: BTreeSet<JobId>,
    /// Gangs backing off after a failed bind, by when they may be tried again.
    backoff_due: BTreeSet<(Time, JobId)>,
    /// Running jobs that lost room held for their `min_resources` (its node went away): each
    /// cycle holds it again elsewhere, once there is room.
    rehold: BTreeSet<JobId>,
}

impl Engine {
    /// An engine with no nodes and no jobs.
    pub fn new(config: EngineConfig) -> Self {
        Engine {
            config,
            snapshot: Snapshot::default(),
            jobs: Vec::new(),
            by_name: NameMap::default(),
            queues: QueueTree::new(),
            dag: DagGate::new(),
            released: Vec::new(),
            gpu_demand: GpuDemand::default(),
            diagnosis: DiagnosisCache::default(),
            rooms: RoomMemo::default(),
            outbox: Vec::new(),
            classes_dirty: false,
            cluster_grew: false,
            last_cycle: Time::ZERO,
            claims: BTreeSet::new(),
            node_generation: 0,
            reclaim_guard: BTreeMap::new(),
            ledger: None,
            reclaims_left: 0,
            blocked: Vec::new(),
            passed: 0,
            reclaim_due: BTreeSet::new(),
            backoff_starting: BTreeSet::new(),
            backoff_due: BTreeSet::new(),
            rehold: BTreeSet::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The snapshot (nodes, classes, indexes), read-only.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    fn job_id(&self, name: &str) -> Result<JobId, EventError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| EventError::UnknownJob(name.to_string()))
    }

    fn state(&self, id: JobId) -> &JobState {
        self.jobs[id as usize]
            .as_ref()
            .expect("job ids in by_name are live")
    }

    fn state_mut(&mut self, id: JobId) -> &mut JobState {
        self.jobs[id as usize]
            .as_mut()
            .expect("job ids in by_name are live")
    }

    fn pod(&self, pod: &PodRef) -> Result<(JobId, PodSlot), EventError> {
        let id = self.job_id(&pod.job)?;
        let slot = self
            .state(id)
            .slot(pod)
            .ok_or_else(|| EventError::UnknownPod(pod.clone()))?;
        Ok((id, slot))
    }

    /// Applies one event. On error nothing changed.
    pub fn apply(&mut self, event: ClusterEvent) -> Result<(), EventError> {
        match event {
            ClusterEvent::NodeUpserted(node) => {
                self.snapshot.upsert_node(node);
                self.cluster_grew = true;
                self.node_generation += 1;
            }
            ClusterEvent::NodeRemoved { node } => self.remove_node(&node)?,
            ClusterEvent::QueuesConfigured(specs) => self.configure_queues(specs)?,
            ClusterEvent::JobSubmitted(job) => self.submit(job)?,
            ClusterEvent::JobDeleted { job } => self.delete(&job)?,
            // After an event about a pod, the queue's count for its job is brought up to date.
            ClusterEvent::PodBound { pod, node } => {
                let id = self.pod_bound(&pod, &node)?;
                self.account(id);
            }
            ClusterEvent::BindFailed { pod, message } => {
                let id = self.bind_failed(&pod, message)?;
                self.account(id);
            }
            ClusterEvent::PodFinished { pod, succeeded } => {
                let id = self.pod_finished(&pod, succeeded)?;
                self.account(id);
            }
            ClusterEvent::PodEvicted { pod } => {
                let id = self.pod_evicted(&pod)?;
                self.account(id);
            }
        }
        Ok(())
    }

    /// Replaces the queue tree; a configuration that does not validate is refused whole and
    /// the previous one stays in force.
    fn configure_queues(&mut self, specs: Vec<QueueSpec>) -> Result<(), EventError> {
        let lost = self.queues.configure(&specs)?;
        for id in lost {
            self.state_mut(id).queued = false;
            self.enqueue(id);
        }
        // Jobs that waited for their queue to exist may go now.
        let waiting: Vec<JobId> = self
            .jobs
            .iter()
            .flatten()
            .filter(|s| {
                matches!(
                    s.reason,
                    Some(Reason::QueueNotFound { .. } | Reason::QueueNotLeaf { .. })
                )
            })
            .map(|s| self.by_name[s.job.name.as_str()])
            .collect();
        for id in waiting {
            self.enqueue(id);
        }
        self.cluster_grew = true;
        Ok(())
    }

    /// Brings what the queue tree counts for a job up to date with what it holds.
    fn account(&mut self, id: JobId) {
        let Some(s) = self.jobs[id as usize].as_mut() else {
            return;
        };
        let now = s.held + s.reservations.values().fold(Resources::ZERO, |a, r| a + *r);
        if now != s.accounted {
            let old = std::mem::replace(&mut s.accounted, now);
            self.queues.allocate(&s.job.queue, old, false);
            self.queues.allocate(&s.job.queue, now, true);
            if let Some((ledger, _)) = self.ledger.as_mut() {
                ledger.take(&self.queues, &s.job.queue, old - now);
            }
        }
    }

    /// Puts a pending job in its queue, or records why it cannot be.
    fn enqueue(&mut self, id: JobId) {
        let s = self.jobs[id as usize].as_ref().expect("live id");
        if matches!(s.phase, JobPhase::Succeeded | JobPhase::Failed) || s.queued {
            return;
        }
        if s.backoff != Backoff::Off {
            // Backing off after a failed bind: the cycle that ends the wait queues it.
            return;
        }
        let gated = s.dag_node.filter(|&n| self.dag.unmet(n) > 0);
        let reason = if let Some(e) = &s.invalid {
            Reason::InvalidJob(e.clone())
        } else if let Some(n) = gated {
            if !self.dag.missing_any(n) {
                // The normal course of a pipeline, like a pod's scheduling gate in
                // kube-scheduler: the job was never tried, so no decision says it could not be
                // placed. Its reason says what it waits for; the view names the jobs, from the
                // gate, when asked. Building that list for every waiting job at submission was
                // most of what gating cost.
                self.state_mut(id).reason =
                    Some(Reason::WaitingForDependencies { jobs: Vec::new() });
                return;
            }
            // A name no job has yet may be a mistake, and the job fails if it stays missing:
            // that is worth a decision, with the names.
            Reason::DependencyMissing {
                jobs: self.dag.blockers(n).1,
            }
        } else {
            let demand = pending_demand(s);
            // Its chain of dependent work may have changed while it waited.
            let key = self.order_key(&s.job, s.dag_node, id);
            match self.queues.push(id, &s.job.queue, key, demand) {
                Ok(()) => {
                    let s = self.state_mut(id);
                    s.key = key;
                    s.queued = true;
                    if matches!(
                        s.reason,
                        Some(
                            Reason::QueueNotFound { .. }
                                | Reason::QueueNotLeaf { .. }
                                | Reason::InvalidJob(_)
                                | Reason::WaitingForDependencies { .. }
                                | Reason::DependencyMissing { .. }
                        )
                    ) {
                        s.reason = None;
                    }
                    return;
                }
                Err(PlacementError::NotFound(queue)) => Reason::QueueNotFound { queue },
                Err(PlacementError::NotLeaf(queue)) => Reason::QueueNotLeaf { queue },
            }
        };
        let s = self.state_mut(id);
        // A job missing a dependency keeps only the kind of its reason: the view works out the
        // names from the gate when asked, and the decision carries them now.
        s.reason = Some(match &reason {
            Reason::DependencyMissing { .. } => Reason::DependencyMissing { jobs: Vec::new() },
            other => other.clone(),
        });
        let job = s.job.name.clone();
        self.outbox
            .push(Decision::MarkUnschedulable { job, reason });
    }

    fn dequeue(&mut self, id: JobId) {
        let s = self.state_mut(id);
        if s.queued {
            s.queued = false;
            self.queues.remove(id);
        }
    }

    fn submit(&mut self, mut job: Job) -> Result<(), EventError> {
        for task in &mut job.tasks {
            task.pod.requests.set(ResourceId::PODS, 1);
        }
        if let Some((name, &id)) = self.by_name.get_key_value(job.name.as_str()) {
            let name = Arc::clone(name);
            return self.update(id, &name, job);
        }
        if job.name.is_empty() {
            // Nothing could ever refer to a nameless job: refuse it rather than store it.
            return Err(EventError::InvalidJob(phalanx_model::JobError::EmptyName));
        }
        let id = self.jobs.len() as JobId;
        // The gate refuses a cycle before anything else changes.
        let invalid = job.validate().err();
        let in_dag = invalid.is_none();
        let name: Arc<str> = Arc::from(job.name.as_str());
        let dag_node = if in_dag {
            self.gate(id, &name, &job)?
        } else {
            None
        };
        self.note_shapes(&job, None);
        let (pods, live_by_task, counts) = fresh_pods(&job);
        self.by_name.insert(name, id);
        self.jobs.push(Some(JobState {
            key: self.order_key(&job, dag_node, id),
            phase: JobPhase::Pending,
            live_by_task,
            pods,
            counts,
            held: Resources::ZERO,
            accounted: Resources::ZERO,
            reservations: BTreeMap::new(),
            reason: None,
            queued: false,
            in_dag,
            invalid,
            dag_node,
            started: Time::ZERO,
            claim: None,
            blocked_since: None,
            reclaim_tried: None,
            unplannable: None,
            bind_failures: 0,
            backoff: Backoff::Off,
            partial_since: None,
            job,
        }));
        self.after_gate(id);
        Ok(())
    }

    /// Adds a valid job's dependencies to the DAG gate; refuses a cycle, changing nothing.
    /// Returns the job's node in the gate, if it has one.
    fn gate(
        &mut self,
        id: JobId,
        name: &Arc<str>,
        job: &Job,
    ) -> Result<Option<DagNode>, EventError> {
        let length = PathLength::of_job(job.declared_duration());
        let (jobs, by_name) = (&self.jobs, &self.by_name);
        let known = |name: &str| {
            let (name, &dep) = by_name.get_key_value(name)?;
            let status = match jobs[dep as usize].as_ref()?.phase {
                JobPhase::Pending | JobPhase::Running => DagStatus::Waiting,
                JobPhase::Succeeded => DagStatus::Succeeded,
                JobPhase::Failed => DagStatus::Failed,
            };
            Some((dep, status, Arc::clone(name)))
        };
        let added = self
            .dag
            .add(id, name, &job.depends_on, length, job.submit_time, known)?;
        for (other, node) in added.adopted {
            if let Some(s) = self.jobs[other as usize].as_mut() {
                s.dag_node = Some(node);
            }
        }
        Ok(added.node)
    }

    /// After a job entered the gate: queue it, or fail it at once when a dependency has already
    /// failed.
    fn after_gate(&mut self, id: JobId) {
        let s = self.state(id);
        let is_failed =
            |n: Option<DagNode>| n.is_some_and(|n| self.dag.status(n) == DagStatus::Failed);
        if is_failed(s.dag_node) {
            let failed_dep = s
                .job
                .depends_on
                .iter()
                .find(|d| is_failed(self.dag.node_of(d)))
                .cloned()
                .unwrap_or_default();
            // Name the root cause: the ancestor the failed dependency itself failed for.
            let cause = match self
                .by_name
                .get(failed_dep.as_str())
                .map(|&d| self.state(d))
            {
                Some(JobState {
                    reason:
                        Some(Reason::DependencyFailed {
                            dependency,
                            deleted,
                        }),
                    ..
                }) => Reason::DependencyFailed {
                    dependency: dependency.clone(),
                    deleted: *deleted,
                },
                _ => Reason::DependencyFailed {
                    dependency: failed_dep,
                    deleted: false,
                },
            };
            self.fail_job(id, cause);
            return;
        }
        self.enqueue(id);
    }

    /// The queue order of a job: priority, its chain of dependent work, submission, arrival.
    fn order_key(&self, job: &Job, dag_node: Option<DagNode>, id: JobId) -> OrderKey {
        let tail = match dag_node {
            Some(n) if self.config.critical_path => self.dag.tail(n),
            _ => PathLength::default(),
        };
        OrderKey::new(job.priority, tail, job.submit_time, id)
    }

    /// Records what the job's shapes mean for classes and GPU fragmentation.
    fn note_shapes(&mut self, job: &Job, old: Option<&Job>) {
        for (i, task) in job.tasks.iter().enumerate() {
            let before = old.and_then(|o| o.tasks.get(i)).map_or(0, |t| t.replicas);
            self.gpu_demand.add(
                task.pod.requests.get(ResourceId::GPU),
                task.replicas.saturating_sub(before) as u64,
            );
            for key in task.pod.label_keys() {
                self.classes_dirty |= self.snapshot.select_key(key);
            }
        }
    }

    /// A resubmitted job: replaced while nothing of it runs; grown (more replicas, new tasks at
    /// the end) while it runs. `name` is the one it is known by, shared with the DAG gate.
    fn update(&mut self, id: JobId, name: &Arc<str>, job: Job) -> Result<(), EventError> {
        let s = self.state(id);
        let reject = |why| {
            Err(EventError::JobUpdateRejected {
                job: job.name.clone(),
                why,
            })
        };
        if matches!(s.phase, JobPhase::Succeeded | JobPhase::Failed) {
            return reject("the job has ended");
        }
        if s.in_dag && s.job.depends_on != job.depends_on {
            return reject("its dependencies cannot change once it is admitted");
        }
        let invalid = job.validate().err();
        let enters_dag = !s.in_dag && invalid.is_none();
        let untouched = s.counts.pending == s.counts.unfinished() && s.reservations.is_empty();
        if !untouched {
            let grows = job.queue == s.job.queue
                && job.tasks.len() >= s.job.tasks.len()
                && s.job.tasks.iter().zip(&job.tasks).all(|(old, new)| {
                    old.name == new.name && old.pod == new.pod && new.replicas >= old.replicas
                });
            if !grows {
                return reject("pods of it are placed; tasks may only grow, in the same queue");
            }
        }
        let dag_node = if enters_dag {
            self.gate(id, name, &job)?
        } else {
            None
        };
        let old = self.state(id).job.clone();
        self.note_shapes(&job, Some(&old));
        self.dequeue(id);
        let s = self.state_mut(id);
        if untouched {
            (s.pods, s.live_by_task, s.counts) = fresh_pods(&job);
        } else {
            for (i, task) in job.tasks.iter().enumerate() {
                if i == s.pods.len() {
                    s.pods.push(Vec::new());
                    s.live_by_task.push(0);
                }
                let added = task.replicas as usize - s.pods[i].len();
                s.pods[i].extend(std::iter::repeat_n(PodSlot::PENDING, added));
                s.counts.pending += added as u32;
            }
        }
        s.in_dag |= enters_dag;
        s.invalid = invalid;
        s.dag_node = s.dag_node.or(dag_node);
        s.job = job;
        let s = self.state(id);
        let key = self.order_key(&s.job, s.dag_node, id);
        self.state_mut(id).key = key;
        self.after_gate(id);
        Ok(())
    }

    fn delete(&mut self, name: &str) -> Result<(), EventError> {
        let id = self.job_id(name)?;
        self.dequeue(id);
        self.claims.remove(&id);
        self.end_backoff(id);
        let s = self.jobs[id as usize].take().expect("live id");
        self.by_name.remove(name);
        self.queues.allocate(&s.job.queue, s.accounted, false);
        // Dependents of a job deleted before it succeeded will never run.
        if let Some(n) = s.dag_node {
            let released = self.dag.deleted(n);
            self.fail_dependents(released, true);
        }
        for (t, slots) in s.pods.iter().enumerate() {
            for slot in slots {
                if let (PodPhase::Assumed | PodPhase::Bound | PodPhase::Releasing, Some(node)) =
                    (slot.phase, slot.node)
                {
                    self.snapshot.release(node, s.request(t));
                }
            }
        }
        for (&node, &held) in &s.reservations {
            self.snapshot.unreserve(node, held);
        }
        // Decisions not yet handed out about the job are moot: its pods are gone.
        self.outbox.retain(|d| match d {
            Decision::BindGang { job, .. }
            | Decision::Reserve { job, .. }
            | Decision::MarkUnschedulable { job, .. }
            | Decision::FailJob { job, .. } => job != name,
            Decision::Evict { pods, .. } => pods.iter().all(|p| p.job != name),
        });
        self.cluster_grew = true;
        Ok(())
    }

    /// The adapter saw a pod bound (ours, or adopted). Returns the pod's job.
    fn pod_bound(&mut self, pod: &PodRef, node_name: &str) -> Result<JobId, EventError> {
        let (id, slot) = self.pod(pod)?;
        let node = self
            .snapshot
            .id_of(node_name)
            .filter(|&n| self.snapshot.node(n).live)
            .ok_or_else(|| EventError::UnknownNode(node_name.to_string()))?;
        let (t, i) = (pod.task as usize, pod.index as usize);
        let request = self.state(id).request(t);
        match slot.phase {
            PodPhase::Bound if slot.node == Some(node) => return Ok(id),
            PodPhase::Assumed if slot.node == Some(node) => {}
            // Bound somewhere other than assumed (or adopted after a restart): the world wins.
            PodPhase::Assumed | PodPhase::Pending => {
                if let Some(old) = slot.node {
                    self.snapshot.release(old, request);
                }
                self.snapshot.assume(node, request);
            }
            phase => {
                return Err(EventError::Conflict {
                    pod: pod.clone(),
                    phase,
                    event: "PodBound",
                });
            }
        }
        let now = self.last_cycle;
        let s = self.state_mut(id);
        s.set(t, i, PodPhase::Bound, Some(node));
        if slot.phase == PodPhase::Pending {
            // Adopted (bound by someone else, or before a restart): it has run since about now.
            s.pods[t][i].since = now;
        }
        let mut adopted_whole = false;
        if s.phase == JobPhase::Pending && s.counts.live() >= s.gang_need() {
            s.phase = JobPhase::Running;
            s.reason = None;
            adopted_whole = s.backoff != Backoff::Off;
        }
        if s.phase == JobPhase::Running && s.counts.assumed == 0 {
            // The gang's placement bound whole: the next failed bind starts the backoff afresh.
            s.bind_failures = 0;
            s.partial_since = None;
        }
        if adopted_whole {
            // Bound after all while backing off (a bind reported failed had gone through): it
            // runs, and its other pending pods may go now.
            self.end_backoff(id);
            self.enqueue(id);
        }
        Ok(id)
    }

    /// A bind of a gang's pod failed: the gang is undone and backs off. Returns the pod's job.
    fn bind_failed(&mut self, pod: &PodRef, message: String) -> Result<JobId, EventError> {
        let (id, slot) = self.pod(pod)?;
        match slot.phase {
            PodPhase::Assumed => {}
            // The gang was already undone by an earlier failure of another of its pods.
            PodPhase::Pending | PodPhase::Releasing => return Ok(id),
            phase => {
                return Err(EventError::Conflict {
                    pod: pod.clone(),
                    phase,
                    event: "BindFailed",
                });
            }
        }
        let failures = self.state(id).bind_failures.saturating_add(1);
        let reason = Reason::BindFailed {
            pod: pod.clone(),
            message,
            failures,
            backoff: Span(0),
            retry_at: None,
        };
        self.back_off(id, reason, EvictReason::GangBindFailed);
        Ok(id)
    }

    /// Undoes a gang that cannot be had whole now and takes it out of its queue until a
    /// backoff ends: the next cycle starts the wait (the engine learns the time only then) and
    /// tells the adapter until when. Room held for its `min_resources` is let go meanwhile, so
    /// a gang that waits holds nothing; the next placement holds it again.
    fn back_off(&mut self, id: JobId, reason: Reason, why: EvictReason) {
        self.dequeue(id);
        self.release_reservations(id);
        let s = self.state_mut(id);
        s.bind_failures = s.bind_failures.saturating_add(1);
        s.backoff = Backoff::Starting;
        s.reason = Some(reason);
        self.backoff_starting.insert(id);
        self.undo_gang(id, why);
        self.account(id);
    }

    /// Starts the backoff of the gangs whose bind failed since the last cycle, telling the
    /// adapter why each waits and until when.
    fn start_backoffs(&mut self, now: Time, out: &mut CycleOutcome) {
        for id in std::mem::take(&mut self.backoff_starting) {
            let Some(s) = self.jobs[id as usize].as_mut() else {
                continue;
            };
            if s.backoff != Backoff::Starting {
                continue;
            }
            let wait = self.config.bind_backoff(s.bind_failures);
            let until = now + wait;
            s.backoff = Backoff::Until(until);
            self.backoff_due.insert((until, id));
            if let Some(reason) = &mut s.reason {
                reason.set_backoff(wait, until);
            }
            if let Some(reason) = s.reason.clone() {
                out.decisions.push(Decision::MarkUnschedulable {
                    job: s.job.name.clone(),
                    reason,
                });
            }
        }
    }

    /// Queues the gangs whose backoff has ended by `now`.
    fn end_backoffs(&mut self, now: Time) {
        while let Some(&(due, id)) = self.backoff_due.first() {
            if due > now {
                break;
            }
            self.backoff_due.pop_first();
            if let Some(s) = self.jobs[id as usize].as_mut()
                && s.backoff == Backoff::Until(due)
            {
                s.backoff = Backoff::Off;
                self.enqueue(id);
            }
        }
    }

    /// Ends a job's backoff without queueing it (it was deleted, failed, or runs after all).
    fn end_backoff(&mut self, id: JobId) {
        self.backoff_starting.remove(&id);
        if let Some(s) = self.jobs[id as usize].as_mut() {
            if let Backoff::Until(due) = s.backoff {
                self.backoff_due.remove(&(due, id));
            }
            s.backoff = Backoff::Off;
        }
    }

    /// Undoes a gang whole: assumed pods are forgotten, bound ones evicted; the job is pending.
    fn undo_gang(&mut self, id: JobId, why: EvictReason) {
        let mut evict = Vec::new();
        let s = self.jobs[id as usize].as_mut().expect("live id");
        for t in 0..s.pods.len() {
            for i in 0..s.pods[t].len() {
                let slot = s.pods[t][i];
                match slot.phase {
                    PodPhase::Assumed => {
                        self.snapshot
                            .release(slot.node.expect("assumed pods have a node"), s.request(t));
                        s.set(t, i, PodPhase::Pending, None);
                    }
                    PodPhase::Bound => {
                        s.set(t, i, PodPhase::Releasing, slot.node);
                        evict.push(PodRef {
                            job: s.job.name.clone(),
                            task: t as u32,
                            index: i as u32,
                        });
                    }
                    _ => {}
                }
            }
        }
        if s.phase == JobPhase::Running {
            s.phase = JobPhase::Pending;
        }
        if !evict.is_empty() {
            self.outbox.push(Decision::Evict {
                pods: evict,
                reason: why,
            });
        }
        self.cluster_grew = true;
        self.enqueue(id);
    }

    /// After pods of a running job were lost: undo the gang if it fell below its minimum.
    fn check_gang(&mut self, id: JobId) {
        let s = self.state(id);
        if s.phase == JobPhase::Running && s.counts.live() < s.gang_need() {
            self.undo_gang(id, EvictReason::GangBroken);
        } else if s.counts.pending > 0 {
            self.enqueue(id);
        }
    }

    /// A pod ended; its job may have succeeded or failed with it. Returns the pod's job.
    fn pod_finished(&mut self, pod: &PodRef, succeeded: bool) -> Result<JobId, EventError> {
        let (id, slot) = self.pod(pod)?;
        let (t, i) = (pod.task as usize, pod.index as usize);
        match slot.phase {
            PodPhase::Assumed | PodPhase::Bound | PodPhase::Releasing => {}
            phase => {
                return Err(EventError::Conflict {
                    pod: pod.clone(),
                    phase,
                    event: "PodFinished",
                });
            }
        }
        let request = self.state(id).request(t);
        self.snapshot
            .release(slot.node.expect("placed pods have a node"), request);
        self.cluster_grew = true;
        let s = self.state_mut(id);
        if slot.phase == PodPhase::Releasing {
            // It ended while its gang was being undone: it runs again with the gang.
            s.set(t, i, PodPhase::Pending, None);
            return Ok(id);
        }
        let ended = if succeeded {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
        s.set(t, i, ended, None);
        if !succeeded && s.phase != JobPhase::Failed {
            self.fail_job(id, Reason::PodFailed { pod: pod.clone() });
        } else if s.phase == JobPhase::Running && s.counts.unfinished() == 0 {
            s.phase = JobPhase::Succeeded;
            s.reason = None;
            let dag_node = s.dag_node;
            self.release_reservations(id);
            self.dequeue(id);
            // Dependents whose last dependency this was may go; the others wait on fewer jobs,
            // which the view works out when asked.
            if let Some(n) = dag_node {
                let mut eligible = std::mem::take(&mut self.released);
                self.dag.succeeded(n, &mut eligible);
                for &job in &eligible {
                    self.enqueue(job);
                }
                eligible.clear();
                self.released = eligible;
            }
        }
        Ok(id)
    }

    /// Fails a job and, through the DAG gate, every job that depends on it.
    fn fail_job(&mut self, id: JobId, cause: Reason) {
        self.mark_failed(id, cause);
        if let Some(n) = self.state(id).dag_node {
            let released = self.dag.failed(n);
            self.fail_dependents(released, false);
        }
    }

    /// Fails one job: its other pods are evicted or forgotten and it leaves the queue.
    fn mark_failed(&mut self, id: JobId, cause: Reason) {
        self.end_backoff(id);
        self.undo_gang(id, EvictReason::JobFailed);
        self.dequeue(id);
        self.release_reservations(id);
        let s = self.state_mut(id);
        s.phase = JobPhase::Failed;
        s.reason = Some(cause.clone());
        let job = s.job.name.clone();
        self.outbox.push(Decision::FailJob { job, cause });
        self.account(id);
    }

    /// Fails the dependents the gate released as failed, naming the ancestor that caused it.
    fn fail_dependents(&mut self, released: Released, deleted: bool) {
        for (id, dependency) in released.failed {
            if self.jobs[id as usize].is_some() {
                self.mark_failed(
                    id,
                    Reason::DependencyFailed {
                        dependency,
                        deleted,
                    },
                );
            }
        }
    }

    /// Lets go of all room held for a job, for `min_resources` or while it was blocked.
    fn release_reservations(&mut self, id: JobId) {
        let s = self.state_mut(id);
        if s.claim.take().is_some() {
            self.claims.remove(&id);
        }
        let held = std::mem::take(&mut self.state_mut(id).reservations);
        for (node, amount) in held {
            self.snapshot.unreserve(node, amount);
        }
    }

    /// A pod was evicted: it is pending again. Returns the pod's job.
    fn pod_evicted(&mut self, pod: &PodRef) -> Result<JobId, EventError> {
        let (id, slot) = self.pod(pod)?;
        let (t, i) = (pod.task as usize, pod.index as usize);
        match slot.phase {
            PodPhase::Assumed | PodPhase::Bound | PodPhase::Releasing => {}
            PodPhase::Pending => return Ok(id),
            phase => {
                return Err(EventError::Conflict {
                    pod: pod.clone(),
                    phase,
                    event: "PodEvicted",
                });
            }
        }
        let request = self.state(id).request(t);
        self.snapshot
            .release(slot.node.expect("placed pods have a node"), request);
        self.cluster_grew = true;
        self.state_mut(id).set(t, i, PodPhase::Pending, None);
        self.check_gang(id);
        Ok(id)
    }

    fn remove_node(&mut self, name: &str) -> Result<(), EventError> {
        let node = self
            .snapshot
            .id_of(name)
            .filter(|&n| self.snapshot.node(n).live)
            .ok_or_else(|| EventError::UnknownNode(name.to_string()))?;
        let (mut hit, mut unheld) = (Vec::new(), Vec::new());
        for (id, s) in self.jobs.iter_mut().enumerate() {
            let Some(s) = s else { continue };
            let mut lost = false;
            for t in 0..s.pods.len() {
                let request = s.job.tasks[t].pod.requests;
                for i in 0..s.pods[t].len() {
                    if s.pods[t][i].node == Some(node) {
                        self.snapshot.release(node, request);
                        s.set(t, i, PodPhase::Pending, None);
                        lost = true;
                    }
                }
            }
            if let Some(held) = s.reservations.remove(&node) {
                self.snapshot.unreserve(node, held);
                unheld.push(id as JobId);
                if s.phase == JobPhase::Running && s.job.min_resources.is_some() {
                    // A forming gang holds again when it is next tried; a running one would
                    // never be, so the cycle does it.
                    self.rehold.insert(id as JobId);
                }
            }
            if lost {
                hit.push(id as JobId);
            }
        }
        self.snapshot.remove_node(node);
        self.node_generation += 1;
        for &id in &hit {
            self.check_gang(id);
        }
        // Pods lost and capacity no longer held both leave their queue's count.
        for id in hit.into_iter().chain(unheld) {
            self.account(id);
        }
        self.cluster_grew = true;
        Ok(())
    }

    /// Runs one scheduling cycle at time `now`.
    pub fn cycle(&mut self, now: Time) -> CycleOutcome {
        self.last_cycle = now;
        let mut out = CycleOutcome {
            decisions: self.take_outbox(),
            report: CycleReport::default(),
        };
        if self.classes_dirty {
            self.snapshot.rebuild_classes();
            self.classes_dirty = false;
        }
        self.queues.set_capacity(self.snapshot.capacity());
        // Counts of room follow the changes since they were taken; past a few changes per
        // node, walking the nodes again is as cheap.
        let keep = (self.snapshot.live_nodes() as usize * 4).max(4096);
        self.snapshot.trim_log(keep);
        if self.cluster_grew {
            self.queues.unpark_all();
            self.cluster_grew = false;
        }
        self.ledger = None;
        self.reclaims_left = MAX_RECLAIMS_PER_CYCLE;
        self.reclaim_guard.retain(|_, until| *until > now);
        self.start_backoffs(now, &mut out);
        self.end_backoffs(now);
        // Blocked gangs whose reclaim delay ran out are tried again, though nothing changed.
        while let Some(&(due, id)) = self.reclaim_due.first() {
            if due > now {
                break;
            }
            self.reclaim_due.pop_first();
            if self.jobs[id as usize]
                .as_ref()
                .is_some_and(|s| s.queued && s.phase == JobPhase::Pending)
            {
                self.dequeue(id);
                self.enqueue(id);
            }
        }
        self.top_up_claims();
        self.rehold_min_resources();
        for (id, missing) in self.dag.expired(now, self.config.dependency_timeout) {
            self.fail_job(id, Reason::DependencyMissing { jobs: missing });
        }
        if self.config.critical_path {
            self.reorder_critical_paths();
        }
        while (out.report.attempts as usize) < self.config.max_attempts_per_cycle {
            let Some((id, key)) = self.queues.pop() else {
                break;
            };
            self.state_mut(id).queued = false;
            self.attempt(id, key, &mut out);
            if !self.state(id).queued {
                // Placed whole, or ended: it leaves the tree and its demand with it.
                self.queues.remove(id);
            }
        }
        self.hold_for_passed(&mut out);
        // Jobs failed this cycle (dependencies that never appeared) report here.
        out.decisions.append(&mut self.outbox);
        out.report.ready_left = self.queues.ready_len() as u32;
        out.report.wake_at = [self.reclaim_due.first(), self.backoff_due.first()]
            .into_iter()
            .flatten()
            .map(|&(t, _)| t)
            .min();
        out.report.parked = self.queues.parked_len() as u32;
        out.report.reservations = self.claims.len() as u32;
        out
    }

    /// Pipelines changed since the last cycle: queued jobs whose chain of dependent work changed
    /// move in the queue.
    fn reorder_critical_paths(&mut self) {
        for id in self.dag.refresh_tails() {
            let Some(s) = self.jobs[id as usize].as_ref() else {
                continue;
            };
            let (new, queued) = (self.order_key(&s.job, s.dag_node, id), s.queued);
            self.state_mut(id).key = new;
            if queued {
                self.queues.rekey_job(id, new);
            }
        }
    }

    /// Decisions made while applying events, less evictions that no longer apply: a pod asked
    /// to be evicted that has since ended or been evicted may already be placed again, and
    /// evicting it now would break its new gang.
    fn take_outbox(&mut self) -> Vec<Decision> {
        let mut decisions = std::mem::take(&mut self.outbox);
        decisions.retain_mut(|d| match d {
            Decision::Evict { pods, .. } => {
                pods.retain(|p| {
                    self.pod(p)
                        .is_ok_and(|(_, slot)| slot.phase == PodPhase::Releasing)
                });
                !pods.is_empty()
            }
            _ => true,
        });
        decisions
    }

    /// Sets a job that was popped aside until the cluster changes. `blocks_queue`: it is a gang
    /// that did not fit, which holds up a strict-fifo queue behind it.
    fn park(&mut self, id: JobId, key: OrderKey, blocks_queue: bool) {
        let s = self.state_mut(id);
        s.queued = true;
        let demand = pending_demand(self.state(id));
        self.queues.set_demand(id, demand);
        self.queues.park(id, key, blocks_queue);
    }

    /// Tries to place the job's pending pods: the whole gang as one transaction if it is not
    /// running yet, else as many more pods as fit. A job that declares how long it runs may
    /// also borrow room held for blocked gangs it will be done before (backfill). A forming gang
    /// that finds no room reclaims, preempts, or has room held for it.
    fn attempt(&mut self, id: JobId, key: OrderKey, out: &mut CycleOutcome) {
        let s = self.state(id);
        if matches!(s.phase, JobPhase::Succeeded | JobPhase::Failed) || s.counts.pending == 0 {
            return;
        }
        if s.counts.releasing > 0 {
            // Its last placement is still being torn down; it goes again when that is done.
            self.park(id, key, false);
            return;
        }
        out.report.attempts += 1;
        let need = Need::of(s);
        // Some of a forming gang's pods are bound already (adopted at start, or bound pods no
        // controller recreates that outlived an undo): it is completed now or undone, never
        // left to wait partly bound, and it fails once it has been partial too long.
        let partial = need.forming && s.counts.bound > 0;
        if !partial && s.partial_since.is_some() {
            self.state_mut(id).partial_since = None;
        }
        if partial {
            let now = self.last_cycle;
            let timeout = self.config.partial_gang_timeout;
            let s = self.state_mut(id);
            let since = *s.partial_since.get_or_insert(now);
            let waited = Span(now.0.saturating_sub(since.0));
            if waited >= timeout {
                let reason = Reason::PartialGangTimedOut {
                    bound: s.counts.bound,
                    needed: s.gang_need(),
                    waited,
                };
                self.fail_job(id, reason);
                return;
            }
        }
        let s = self.state(id);
        // Quota, from the one place it is computed: a gang whose minimum would take its queue
        // or an ancestor over capability is not tried; otherwise the headroom is the budget.
        let over = need
            .forming
            .then(|| {
                self.queues
                    .over_capability(&s.job.queue, &(need.minimum - need.held).clamp_zero())
            })
            .flatten();
        if let Some(over) = over {
            let reason = Reason::OverCapability {
                requested: need.minimum.get(over.resource),
                queue: over.queue,
                resource: over.resource,
                capability: over.capability,
                allocated: over.allocated,
            };
            if partial {
                self.undo_incomplete(id, reason);
            } else {
                self.not_placed(id, key, reason, true, out);
            }
            return;
        }
        let mut result = self.try_place(id, &need, true);
        if result.is_err() {
            let lendable = self.lendable(id);
            if !lendable.is_empty() {
                let before = (self.snapshot.generation(), self.snapshot.log_position());
                self.lend(&lendable);
                let again = self.try_place(id, &need, false);
                let backfilled = again.is_ok();
                if let Ok(placed) = again {
                    out.report.backfilled += 1;
                    result = Ok(placed);
                }
                if self.take_back(&lendable) && !backfilled {
                    // Everything lent was held again and nothing placed: the snapshot is as it
                    // was, and counts of room kept over it need not follow a lend and its return.
                    self.snapshot.restore(before.0, before.1);
                }
            }
        }
        match result {
            Ok(placed) => {
                out.report.nodes_scanned += placed.txn.scanned;
                self.commit(id, key, placed, need, out);
            }
            Err(miss) => {
                out.report.nodes_scanned += miss.scanned;
                let reason = miss.reason.expect("the first try explains");
                if partial {
                    self.undo_incomplete(id, reason);
                    return;
                }
                if need.forming {
                    self.on_blocked(id, &need);
                }
                self.not_placed(id, key, reason, need.forming || miss.placeable == 0, out);
            }
        }
    }

    /// A partly bound gang whose other pods found no room is undone as after a failed bind:
    /// its bound pods are evicted (the adapter deletes those a controller recreates) and it
    /// backs off.
    fn undo_incomplete(&mut self, id: JobId, why: Reason) {
        let s = self.state(id);
        let reason = Reason::GangIncomplete {
            bound: s.counts.bound,
            needed: s.gang_need(),
            why: Box::new(why),
            failures: s.bind_failures.saturating_add(1),
            backoff: Span(0),
            retry_at: None,
        };
        self.back_off(id, reason, EvictReason::GangBroken);
    }

    /// Runs the job's placement as one transaction: every task's own minimum and the rest of the
    /// gang's (all or nothing while it is forming), then as many more pods as fit, then the hold
    /// for `min_resources`. On success the transaction is still applied to the snapshot, for
    /// [`Engine::commit`] to keep or a trial to roll back; on a miss it is rolled back and, when
    /// `explain`, the reason worked out.
    fn try_place(&mut self, id: JobId, need: &Need, explain: bool) -> Result<Placed, Miss> {
        let Engine {
            jobs,
            snapshot,
            config,
            gpu_demand,
            queues,
            diagnosis,
            rooms,
            ..
        } = self;
        let s = jobs[id as usize].as_ref().expect("live id");
        // Room already held for the job is counted against its queue, and placing on it
        // takes nothing from the budget (see `Transaction::assume`): the budget is the headroom.
        let budget = queues.headroom(&s.job.queue);
        let shapes = shapes_of(snapshot, &s.job);
        // Cheap necessary conditions first: no transaction for a gang that cannot fit.
        let mut txn = Transaction::begin(s.reservations.clone()).with_budget(budget);
        let mut failed: Option<usize> = shapes
            .iter()
            .enumerate()
            .find(|(t, shape)| {
                need.task_need[*t] > 0
                    && !shape.may_fit(snapshot, need.task_need[*t], &txn.reservations)
            })
            .map(|(t, _)| t);
        let mut placed_by_task = vec![0u32; shapes.len()];
        // What the first task to change anything would have placed, when the count of room
        // kept for its shape shows it short without a walk.
        let mut counted: Option<u32> = None;
        let policy = config.score;
        if failed.is_none() {
            for (t, shape) in shapes.iter().enumerate() {
                let want = need.task_need[t];
                let short = (want > 0)
                    .then(|| txn.counted_room(snapshot, shape, policy, rooms))
                    .flatten()
                    .filter(|&can| can < want as u64);
                if let Some(can) = short {
                    counted = Some(can as u32);
                    failed = Some(t);
                    break;
                }
                let got = txn.place_counting(snapshot, shape, want, policy, gpu_demand, rooms);
                placed_by_task[t] += got;
                if got < want {
                    failed = Some(t);
                    break;
                }
            }
        }
        if failed.is_none() {
            for (t, shape) in shapes.iter().enumerate() {
                let want = need.pending_by_task[t].len() as u32 - placed_by_task[t];
                // A running job's further pods: none to place where the count shows no room.
                let none = want > 0 && txn.counted_room(snapshot, shape, policy, rooms) == Some(0);
                if !none {
                    placed_by_task[t] +=
                        txn.place_counting(snapshot, shape, want, policy, gpu_demand, rooms);
                }
            }
            if txn.placed() < need.gang_need {
                let t = (0..shapes.len())
                    .max_by_key(|&t| need.pending_by_task[t].len() as u32 - placed_by_task[t])
                    .unwrap_or(0);
                failed = Some(t);
            }
        }
        // Room for pods the job will create later (Spark executors): held on real nodes.
        let reserve_short = failed.is_none()
            && !hold_min_resources(
                snapshot,
                &mut txn,
                s,
                &shapes,
                &placed_by_task,
                need.forming,
            );
        if failed.is_none() && !reserve_short {
            return Ok(Placed { txn });
        }
        let (placeable, scanned) = (counted.unwrap_or(txn.placed()), txn.scanned);
        txn.rollback(snapshot);
        let reason = explain.then(|| match failed {
            Some(t) => {
                // The shortfall is judged on all pods of the task the gang needs at once.
                let needed = need.gang_need.max(need.task_need[t]);
                let of_task = (need.pending_by_task[t].len() as u32).min(needed);
                Reason::Unschedulable(diagnose(
                    snapshot,
                    &shapes[t],
                    &s.job.tasks[t].name,
                    of_task,
                    needed,
                    placeable,
                    &s.reservations,
                    diagnosis,
                ))
            }
            None => Reason::Unschedulable(reservation_shortfall(snapshot, s, &shapes)),
        });
        Err(Miss {
            reason,
            placeable,
            scanned,
        })
    }

    /// Keeps a placement: its pods are assumed and bound by the adapter.
    fn commit(
        &mut self,
        id: JobId,
        key: OrderKey,
        placed: Placed,
        need: Need,
        out: &mut CycleOutcome,
    ) {
        let now = self.last_cycle;
        let Placed { mut txn } = placed;
        let placements = std::mem::take(&mut txn.placements);
        let reservations = std::mem::take(&mut txn.reservations);
        let s = self.jobs[id as usize].as_mut().expect("live id");
        let snapshot = &self.snapshot;
        // Room held for it while blocked is spent now; what is left was let go in the
        // transaction. Holds for `min_resources` stay.
        let had_claim = s.claim.take().is_some();
        let new_holds: Vec<String> = reservations
            .keys()
            .filter(|n| !s.reservations.contains_key(n))
            .map(|&n| snapshot.node(n).node.name.clone())
            .collect();
        s.reservations = reservations;
        let mut cursor = vec![0usize; need.pending_by_task.len()];
        let mut bindings = Vec::with_capacity(placements.iter().map(|p| p.count as usize).sum());
        for p in &placements {
            let t = p.task as usize;
            let name = &snapshot.node(p.node).node.name;
            for _ in 0..p.count {
                let index = need.pending_by_task[t][cursor[t]];
                cursor[t] += 1;
                s.set(t, index as usize, PodPhase::Assumed, Some(p.node));
                s.pods[t][index as usize].since = now;
                bindings.push(Binding {
                    task: p.task,
                    index,
                    node: name.clone(),
                });
            }
        }
        out.report.pods_placed += bindings.len() as u32;
        out.report.jobs_placed += !bindings.is_empty() as u32;
        self.passed = self.blocked.len();
        if need.forming {
            s.started = now;
            s.blocked_since = None;
        }
        s.phase = JobPhase::Running;
        s.reason = None;
        let job = s.job.name.clone();
        let more_pending = s.counts.pending > 0;
        if had_claim {
            self.claims.remove(&id);
        }
        if !new_holds.is_empty() {
            out.decisions.push(Decision::Reserve {
                job: job.clone(),
                nodes: new_holds,
            });
        }
        if !bindings.is_empty() {
            out.decisions.push(Decision::BindGang { job, bindings });
        }
        self.account(id);
        if more_pending {
            // The rest of its pods wait for room, without holding up the queue.
            self.park(id, key, false);
        }
    }

    /// A forming gang found no room. Its queue reclaims or preempts for it when it may;
    /// otherwise it becomes a candidate for room held for it (see [`Engine::hold_for_passed`]).
    fn on_blocked(&mut self, id: JobId, need: &Need) {
        let now = self.last_cycle;
        if let Some(claim) = &self.state(id).claim {
            if claim.stale(&self.snapshot, now) {
                self.drop_claim(id);
            } else if claim.evicted_for {
                // Room is being made for it: wait for the evictions.
                return;
            }
        }
        let (generation, max) = (self.node_generation, self.config.max_reservations);
        let delay = self.config.reclaim_delay.0;
        let s = self.state_mut(id);
        let since = *s.blocked_since.get_or_insert(now);
        // It evicts only once it has waited `reclaim_delay`, and searches again no sooner than
        // that after a search that found nothing.
        let waited = now.0.saturating_sub(since.0);
        let searched = s
            .reclaim_tried
            .is_some_and(|t| now.0.saturating_sub(t.0) < delay);
        if waited >= delay && !searched && self.reclaims_left > 0 {
            if self.reclaim_for(id, need) {
                return;
            }
            self.state_mut(id).reclaim_tried = Some(now);
        }
        // When it may search (again), it is tried again even if nothing else changes.
        let s = self.state(id);
        let due = match s.reclaim_tried {
            Some(t) => t.0.saturating_add(delay),
            None => since.0.saturating_add(delay),
        };
        if due > now.0 && (self.config.reclaim || self.queues.preemption(&s.job.queue)) {
            self.reclaim_due.insert((Time(due), id));
        }
        let s = self.state_mut(id);
        // A job that finds room as soon as some frees needs nothing held: only one blocked a
        // cycle after it first was, and passed by a job placed after it, gets room held.
        if s.claim.is_none() && since < now && max > 0 && s.unplannable != Some(generation) {
            self.blocked.push(id);
        }
    }

    /// At the end of a cycle: room is held for the blocked gangs that later jobs passed, in the
    /// order they were tried (the queues' fair order), at most one per queue and
    /// [`EngineConfig::max_reservations`] in all.
    fn hold_for_passed(&mut self, out: &mut CycleOutcome) {
        let passed: Vec<JobId> = self.blocked.drain(..self.passed).collect();
        self.blocked.clear();
        self.passed = 0;
        for id in passed {
            if self.jobs[id as usize].is_some() {
                self.hold_for(id, out);
            }
        }
    }

    /// Holds room for a blocked gang on the nodes expected to free soonest.
    fn hold_for(&mut self, id: JobId, out: &mut CycleOutcome) {
        let now = self.last_cycle;
        let s = self.state(id);
        if s.claim.is_some() || s.phase != JobPhase::Pending {
            return;
        }
        let need = Need::of(s);
        let mut waiting = 0;
        for &c in &self.claims {
            let other = self.state(c);
            if other.job.queue == s.job.queue {
                return;
            }
            waiting += other.claim.as_ref().is_some_and(|c| !c.evicted_for) as usize;
        }
        if waiting >= self.config.max_reservations {
            return;
        }
        let releases = self.releases(now);
        let s = self.state(id);
        let shapes = shapes_of(&self.snapshot, &s.job);
        let promised = self.promised();
        match reserve::plan(
            &self.snapshot,
            &shapes,
            &need.plan_counts(),
            &releases,
            &s.reservations,
            &promised,
        ) {
            Planned::Wait(plan) => {
                let nodes = plan
                    .want
                    .keys()
                    .map(|&n| self.snapshot.node(n).node.name.clone())
                    .collect();
                let job = s.job.name.clone();
                self.state_mut(id).claim = Some(Claim {
                    want: plan.want,
                    start: plan.start,
                    planned: now,
                    evicted_for: false,
                });
                self.claims.insert(id);
                self.top_up(id);
                out.decisions.push(Decision::Reserve { job, nodes });
            }
            Planned::FitsNow => {}
            Planned::Never => self.state_mut(id).unplannable = Some(self.node_generation),
        }
    }

    /// Nodes another blocked gang still waits on: room that frees there is that gang's.
    fn promised(&self) -> BTreeSet<NodeId> {
        let mut promised = BTreeSet::new();
        for &c in &self.claims {
            let other = self.state(c);
            if let Some(claim) = &other.claim {
                for (&node, want) in &claim.want {
                    let have = other.reservations.get(&node).copied().unwrap_or_default();
                    if !want.fits_in(&have) {
                        promised.insert(node);
                    }
                }
            }
        }
        promised
    }

    /// Every placed pod's expected end (see [`Release::expected_end`]); pods being evicted end
    /// now. Room held for other blocked gangs ends as if their pods ran from their expected
    /// start.
    fn releases(&self, now: Time) -> Vec<Release> {
        let mut out = Vec::new();
        for &c in &self.claims {
            let s = self.state(c);
            let Some(claim) = &s.claim else { continue };
            let runs = s
                .job
                .declared_duration()
                .unwrap_or(reserve::MIN_RUNTIME_ESTIMATE);
            let at = Time(claim.start.max(now).0.saturating_add(runs.0));
            for (&node, &amount) in &s.reservations {
                out.push(Release { node, at, amount });
            }
        }
        for s in self.jobs.iter().flatten() {
            if s.held.is_zero() {
                continue;
            }
            for (t, slots) in s.pods.iter().enumerate() {
                let duration = s.job.tasks[t].pod.duration;
                for slot in slots {
                    let at = match slot.phase {
                        PodPhase::Assumed | PodPhase::Bound => {
                            Release::expected_end(slot.since, duration, now)
                        }
                        PodPhase::Releasing => now,
                        _ => continue,
                    };
                    if let Some(node) = slot.node {
                        out.push(Release {
                            node,
                            at,
                            amount: s.request(t),
                        });
                    }
                }
            }
        }
        out
    }

    /// Holds for every blocked gang what has freed on its nodes since the last cycle, before
    /// any job is tried, so nothing else takes it.
    fn top_up_claims(&mut self) {
        // Gangs room is being made for by eviction first: the room was freed for them.
        let mut claims: Vec<(bool, JobId)> = self
            .claims
            .iter()
            .map(|&c| {
                let evicted_for = self.state(c).claim.as_ref().is_some_and(|c| c.evicted_for);
                (!evicted_for, c)
            })
            .collect();
        claims.sort_unstable();
        for (_, id) in claims {
            self.top_up(id);
        }
    }

    /// Holds for a blocked gang what its nodes have free, up to what it wants there and within
    /// its queue's headroom.
    fn top_up(&mut self, id: JobId) {
        let Engine {
            jobs,
            snapshot,
            queues,
            ..
        } = self;
        let s = jobs[id as usize].as_mut().expect("live id");
        let Some(claim) = &s.claim else {
            return;
        };
        let mut room = queues.headroom(&s.job.queue);
        for (&node, &want) in &claim.want {
            let entry = snapshot.node(node);
            if !entry.live {
                continue;
            }
            let have = s.reservations.get(&node).copied().unwrap_or_default();
            let add = (want - have)
                .clamp_zero()
                .min(&entry.free().clamp_zero())
                .min(&room);
            if !add.is_zero() {
                snapshot.reserve(node, add);
                *s.reservations.entry(node).or_default() += add;
                room -= add;
            }
        }
        self.account(id);
    }

    /// Holds again, on nodes that are there, the `min_resources` room of running jobs whose
    /// held node went away; a job that finds no room yet tries again next cycle.
    fn rehold_min_resources(&mut self) {
        let mut short = Vec::new();
        for id in std::mem::take(&mut self.rehold) {
            let Engine {
                jobs,
                snapshot,
                queues,
                ..
            } = self;
            let Some(s) = jobs[id as usize].as_mut() else {
                continue;
            };
            if s.phase != JobPhase::Running || s.job.min_resources.is_none() {
                continue;
            }
            let shapes = shapes_of(snapshot, &s.job);
            let mut txn = Transaction::begin(s.reservations.clone())
                .with_budget(queues.headroom(&s.job.queue));
            let none = vec![0; shapes.len()];
            if hold_min_resources(snapshot, &mut txn, s, &shapes, &none, true) {
                s.reservations = std::mem::take(&mut txn.reservations);
                self.account(id);
            } else {
                txn.rollback(snapshot);
                short.push(id);
            }
        }
        self.rehold.extend(short);
    }

    /// Lets go of the room held for a blocked gang.
    fn drop_claim(&mut self, id: JobId) {
        self.claims.remove(&id);
        let s = self.state_mut(id);
        if s.claim.take().is_some() && s.job.min_resources.is_none() {
            self.release_reservations(id);
            self.account(id);
        }
    }

    /// Blocked gangs whose held room job `id` may borrow: it declares how long it runs, and it
    /// will be done before they are expected to start.
    fn lendable(&self, id: JobId) -> Vec<JobId> {
        if self.claims.is_empty() {
            return Vec::new();
        }
        let Some(duration) = self.state(id).job.declared_duration() else {
            return Vec::new();
        };
        let done = self.last_cycle.0.saturating_add(duration.0);
        self.claims
            .iter()
            .copied()
            .filter(|&c| c != id)
            .filter(|&c| {
                self.state(c)
                    .claim
                    .as_ref()
                    .is_some_and(|cl| !cl.evicted_for && cl.start.0 >= done)
            })
            .collect()
    }

    /// Makes the room held for `claimants` free for one backfill try.
    fn lend(&mut self, claimants: &[JobId]) {
        for &c in claimants {
            let s = self.jobs[c as usize].as_ref().expect("live id");
            for (&node, &held) in &s.reservations {
                self.snapshot.unreserve(node, held);
            }
        }
    }

    /// Holds again for `claimants` what [`Engine::lend`] freed, less what backfill took. True
    /// when all of it is held again.
    fn take_back(&mut self, claimants: &[JobId]) -> bool {
        let mut whole = true;
        for &c in claimants {
            let s = self.jobs[c as usize].as_mut().expect("live id");
            let snapshot = &mut self.snapshot;
            s.reservations.retain(|&node, held| {
                let take = held.min(&snapshot.node(node).free().clamp_zero());
                snapshot.reserve(node, take);
                whole &= take == *held;
                *held = take;
                !take.is_zero()
            });
            self.account(c);
        }
        whole
    }

    /// Looks for running gangs to evict for the blocked gang `id`: of other queues holding
    /// more than their deserved share, when its own queue is within its share (reclaim), or of
    /// lower priority in its own queue when the queue allows it (preemption). Candidates go
    /// lowest priority first, then youngest; enough of them are lifted to make room, then
    /// those the gang fits without are given back, largest first, so the fewest pods go. The
    /// chosen gangs are evicted whole and the room they leave is held for `id`. True when it
    /// evicted.
    fn reclaim_for(&mut self, id: JobId, need: &Need) -> bool {
        self.reclaims_left -= 1;
        let now = self.last_cycle;
        let s = self.state(id);
        let (queue, priority) = (s.job.queue.clone(), s.job.priority);
        let request = (need.minimum - need.held).clamp_zero();
        let preempt = self.queues.preemption(&queue);
        if self.ledger.is_none() {
            self.ledger = Some(self.reclaim_ledger());
        }
        let (cycle_ledger, floor) = self.ledger.as_ref().expect("made above");
        let mut ledger = cycle_ledger.clone();
        let preempt = preempt && floor.get(&queue).is_some_and(|&p| p < priority);
        let reclaim = self.config.reclaim && ledger.may_claim(&self.queues, &queue, &request);
        let victim_queues: BTreeSet<&str> = if reclaim {
            ledger
                .victim_queues(&self.queues, &queue, &request)
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        if victim_queues.is_empty() && !preempt {
            return false;
        }
        let guarded = |victim: &str| {
            self.reclaim_guard
                .get(&(queue.clone(), victim.to_string()))
                .is_some_and(|&until| until > now)
        };
        let mut candidates: Vec<Victim> = Vec::new();
        for (j, v) in self.jobs.iter().enumerate() {
            let Some(v) = v else { continue };
            let c = &v.counts;
            if j as JobId == id
                || v.phase != JobPhase::Running
                || c.assumed > 0
                || c.releasing > 0
                || c.bound == 0
            {
                continue;
            }
            let why = if v.job.queue == queue {
                if !(preempt && v.job.priority < priority) {
                    continue;
                }
                EvictReason::Preempt
            } else if victim_queues.contains(v.job.queue.as_str()) && !guarded(&v.job.queue) {
                EvictReason::Reclaim
            } else {
                continue;
            };
            candidates.push(Victim {
                id: j as JobId,
                priority: v.job.priority,
                started: v.started,
                pods: c.bound,
                why,
            });
        }
        // Not even every candidate together, with what is free, would make room: no search.
        let freed = candidates
            .iter()
            .fold(Resources::ZERO, |a, v| a + self.state(v.id).held);
        let free = shapes_of(&self.snapshot, &self.state(id).job)
            .iter()
            .flat_map(|sh| sh.classes.iter().map(|&(_, c)| c))
            .collect::<BTreeSet<ClassId>>()
            .into_iter()
            .fold(Resources::ZERO, |a, c| {
                a + self.snapshot.classes()[c as usize].free_total
            });
        if candidates.is_empty() || !request.fits_in(&(freed + free)) {
            return false;
        }
        // Lowest priority, then youngest (latest start, then latest arrival).
        candidates.sort_by_key(|v| {
            (
                v.priority,
                std::cmp::Reverse(v.started),
                std::cmp::Reverse(v.id),
            )
        });
        let mut chosen: Vec<Victim> = Vec::new();
        let mut fits = None;
        for v in candidates {
            let (vq, holds) = {
                let s = self.state(v.id);
                (s.job.queue.clone(), s.accounted)
            };
            if v.why == EvictReason::Reclaim
                && !ledger.may_take(&self.queues, &queue, &vq, &request, &holds)
            {
                continue;
            }
            self.lift(v.id, true);
            if v.why == EvictReason::Reclaim {
                ledger.take(&self.queues, &vq, holds);
            }
            chosen.push(v);
            if let Some(want) = self.trial(id, need) {
                fits = Some(want);
                break;
            }
            if chosen.len() >= MAX_VICTIMS {
                break;
            }
        }
        let Some(mut want) = fits else {
            for v in &chosen {
                self.lift(v.id, false);
            }
            return false;
        };
        // The fewest pods: give back the largest victims the gang can do without.
        if chosen.len() > 1 && chosen.len() <= MAX_PRUNED {
            let mut order: Vec<usize> = (0..chosen.len()).collect();
            order.sort_by_key(|&k| (std::cmp::Reverse(chosen[k].pods), k));
            let mut kept = vec![true; chosen.len()];
            for k in order {
                self.lift(chosen[k].id, false);
                match self.trial(id, need) {
                    Some(w) => {
                        want = w;
                        kept[k] = false;
                    }
                    None => self.lift(chosen[k].id, true),
                }
            }
            let mut k = 0;
            chosen.retain(|_| {
                k += 1;
                kept[k - 1]
            });
            // The ledger took from victims given back: start again from the cycle's.
            ledger = self.ledger.as_ref().expect("made above").0.clone();
            for v in &chosen {
                if v.why == EvictReason::Reclaim {
                    let s = self.state(v.id);
                    ledger.take(&self.queues, &s.job.queue, s.accounted);
                }
            }
        }
        for v in &chosen {
            self.lift(v.id, false);
        }
        for v in &chosen {
            let vq = self.state(v.id).job.queue.clone();
            if v.why == EvictReason::Reclaim {
                let until = Time(now.0.saturating_add(self.config.reclaim_cooldown.0));
                self.reclaim_guard.insert((vq, queue.clone()), until);
            }
            self.drop_claim(v.id);
            self.release_reservations(v.id);
            self.undo_gang(v.id, v.why);
            self.account(v.id);
        }
        if let Some((cycle_ledger, _)) = self.ledger.as_mut() {
            *cycle_ledger = ledger;
        }
        // Room held for it already stays held; the rest is what it will take once freed.
        let s = self.state_mut(id);
        for (&node, &held) in &s.reservations {
            let w = want.entry(node).or_default();
            *w = w.max(&held);
        }
        s.claim = Some(Claim {
            want,
            start: now,
            planned: now,
            evicted_for: true,
        });
        self.claims.insert(id);
        self.top_up(id);
        true
    }

    /// Whether the gang would fit now; what it would take per node if so. Changes nothing.
    fn trial(&mut self, id: JobId, need: &Need) -> Option<BTreeMap<NodeId, Resources>> {
        let Ok(Placed { txn }) = self.try_place(id, need, false) else {
            return None;
        };
        let s = self.state(id);
        let mut want: BTreeMap<NodeId, Resources> = BTreeMap::new();
        for p in &txn.placements {
            *want.entry(p.node).or_default() += s.request(p.task as usize).times(p.count as u64);
        }
        txn.rollback(&mut self.snapshot);
        Some(want)
    }

    /// Takes a running job's bound pods and held room off the snapshot (`off`), or puts them
    /// back; each undoes the other exactly.
    fn lift(&mut self, id: JobId, off: bool) {
        let s = self.jobs[id as usize].as_ref().expect("live id");
        for (t, slots) in s.pods.iter().enumerate() {
            for slot in slots {
                if let (PodPhase::Bound, Some(node)) = (slot.phase, slot.node) {
                    if off {
                        self.snapshot.release(node, s.request(t));
                    } else {
                        self.snapshot.assume(node, s.request(t));
                    }
                }
            }
        }
        for (&node, &held) in &s.reservations {
            if off {
                self.snapshot.unreserve(node, held);
            } else {
                self.snapshot.reserve(node, held);
            }
        }
    }

    /// The cycle's reclaim ledger (pods being evicted already count as gone), and the lowest
    /// priority of a running gang per queue.
    fn reclaim_ledger(&self) -> (ReclaimLedger, BTreeMap<String, i32>) {
        let mut ledger = self.queues.reclaim_ledger();
        let mut floor: BTreeMap<String, i32> = BTreeMap::new();
        for s in self.jobs.iter().flatten() {
            if s.phase == JobPhase::Running {
                match floor.get_mut(&s.job.queue) {
                    Some(p) => *p = (*p).min(s.job.priority),
                    None => {
                        floor.insert(s.job.queue.clone(), s.job.priority);
                    }
                }
            }
            if s.counts.releasing == 0 {
                continue;
            }
            let mut leaving = Resources::ZERO;
            for (t, slots) in s.pods.iter().enumerate() {
                let n = slots
                    .iter()
                    .filter(|p| p.phase == PodPhase::Releasing)
                    .count();
                leaving += s.request(t).times(n as u64);
            }
            ledger.take(&self.queues, &s.job.queue, leaving);
        }
        (ledger, floor)
    }

    /// A gang that was not placed: counts it, records why (telling the adapter when the reason
    /// changed), and parks it until the cluster changes. A gang that did not fit holds up a
    /// strict-fifo queue behind it.
    fn not_placed(
        &mut self,
        id: JobId,
        key: OrderKey,
        reason: Reason,
        record: bool,
        out: &mut CycleOutcome,
    ) {
        *out.report
            .unschedulable
            .entry(reason.label().to_string())
            .or_default() += 1;
        let s = self.state_mut(id);
        let forming = s.phase == JobPhase::Pending;
        if record && forming {
            if s.reason.as_ref() != Some(&reason) {
                out.decisions.push(Decision::MarkUnschedulable {
                    job: s.job.name.clone(),
                    reason: reason.clone(),
                });
            }
            s.reason = Some(reason);
        }
        self.park(id, key, forming);
    }

    /// A read-only view for adapters, reports and tests.
    pub fn view(&self) -> View<'_> {
        View { engine: self }
    }
}

/// A read-only view of the engine's state.
pub struct View<'a> {
    engine: &'a Engine,
}

/// One job as the view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo<'a> {
    /// The job as submitted (requests with the `pods` lane set).
    pub job: &'a Job,
    /// Its phase.
    pub phase: JobPhase,
    /// Its pods by phase.
    pub pods: PodCounts,
    /// Why it is pending or failed. For a job waiting on dependencies, the ones it waits on now.
    pub reason: Option<Reason>,
    /// Capacity held for it.
    pub reserved: Resources,
    /// Requests of its pods that hold a node (assumed, bound, releasing).
    pub held: Resources,
    /// For a blocked gang holding room while pods on its nodes end: when it is expected to
    /// start.
    pub expected_start: Option<Time>,
}

/// What an estimated start rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EstimateBasis {
    /// The room held for the gang: its reservation plan (which takes a pod without a declared
    /// duration to run as long again as it has so far).
    Reservation,
    /// The engine run forward over the declared durations of placed pods ([`View::forecast`]).
    DeclaredDurations,
}

impl EstimateBasis {
    /// How the admin API and CLI name it.
    pub fn as_str(self) -> &'static str {
        match self {
            EstimateBasis::Reservation => "reservation",
            EstimateBasis::DeclaredDurations => "declared durations",
        }
    }
}

/// One queue as the view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueView {
    /// Quotas, allocation, deserved share, dominant share, queued jobs.
    pub info: QueueInfo,
    /// Its jobs not placed yet.
    pub pending_jobs: u32,
    /// Its jobs running.
    pub running_jobs: u32,
    /// The most common reasons its pending jobs wait, most common first (at most three).
    pub top_reasons: Vec<(String, u32)>,
}

/// One node as the view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo<'a> {
    /// The node.
    pub node: &'a phalanx_model::Node,
    /// Requests of pods placed on it.
    pub allocated: Resources,
    /// Capacity held on it for jobs.
    pub reserved: Resources,
    /// False once removed.
    pub live: bool,
}

impl<'a> View<'a> {
    /// Every job the engine knows, in arrival order.
    pub fn jobs(&self) -> impl Iterator<Item = JobInfo<'a>> + 'a {
        let view = View {
            engine: self.engine,
        };
        self.engine.jobs.iter().flatten().map(move |s| view.info(s))
    }

    /// A job as the view shows it. The reason of a job waiting on dependencies is worked out
    /// now from the DAG gate, so it lists exactly the ones still unfinished.
    fn info(&self, s: &'a JobState) -> JobInfo<'a> {
        let reason = match &s.reason {
            Some(Reason::WaitingForDependencies { .. } | Reason::DependencyMissing { .. }) => {
                let (waiting, missing) = s
                    .dag_node
                    .map(|n| self.engine.dag.blockers(n))
                    .unwrap_or_default();
                Some(if missing.is_empty() {
                    Reason::WaitingForDependencies { jobs: waiting }
                } else {
                    Reason::DependencyMissing { jobs: missing }
                })
            }
            other => other.clone(),
        };
        JobInfo {
            job: &s.job,
            phase: s.phase,
            pods: s.counts,
            reason,
            reserved: s.reservations.values().fold(Resources::ZERO, |a, r| a + *r),
            held: s.held,
            expected_start: s.claim.as_ref().map(|c| c.start),
        }
    }

    /// One job by name.
    pub fn job(&self, name: &str) -> Option<JobInfo<'a>> {
        let id = *self.engine.by_name.get(name)?;
        Some(self.info(self.engine.state(id)))
    }

    /// A pod's phase and node.
    pub fn pod(&self, pod: &PodRef) -> Option<(PodPhase, Option<&'a str>)> {
        let id = *self.engine.by_name.get(pod.job.as_str())?;
        let slot = self.engine.state(id).slot(pod)?;
        let node = slot
            .node
            .map(|n| self.engine.snapshot.node(n).node.name.as_str());
        Some((slot.phase, node))
    }

    /// Every node, live or removed, in the order first seen.
    pub fn nodes(&self) -> impl Iterator<Item = NodeInfo<'a>> + 'a {
        self.engine.snapshot.nodes().iter().map(|e| NodeInfo {
            node: &e.node,
            allocated: e.allocated,
            reserved: e.reserved,
            live: e.live,
        })
    }

    /// Each queue's quotas, allocation and shares, without the per-job counts of
    /// [`View::queues`] (which walks every job).
    pub fn queue_infos(&self) -> Vec<QueueInfo> {
        self.engine.queues.info()
    }

    /// A node by name, live or removed (removed nodes keep their entry).
    pub fn node(&self, name: &str) -> Option<NodeInfo<'a>> {
        let snapshot = &self.engine.snapshot;
        let e = snapshot.node(snapshot.id_of(name)?);
        Some(NodeInfo {
            node: &e.node,
            allocated: e.allocated,
            reserved: e.reserved,
            live: e.live,
        })
    }

    /// Jobs waiting in queues (ready or parked).
    pub fn queued(&self) -> usize {
        self.engine.queues.len()
    }

    /// Every queue, in name order: its quotas and allocation, its jobs, and the most common
    /// reasons its pending jobs wait.
    pub fn queues(&self) -> Vec<QueueView> {
        let mut by_queue: BTreeMap<String, QueueView> = self
            .engine
            .queues
            .info()
            .into_iter()
            .map(|info| {
                (
                    info.spec.name.clone(),
                    QueueView {
                        info,
                        pending_jobs: 0,
                        running_jobs: 0,
                        top_reasons: Vec::new(),
                    },
                )
            })
            .collect();
        let mut reasons: BTreeMap<String, BTreeMap<&'static str, u32>> = BTreeMap::new();
        for s in self.engine.jobs.iter().flatten() {
            let Some(q) = by_queue.get_mut(&s.job.queue) else {
                continue;
            };
            match s.phase {
                JobPhase::Pending => {
                    q.pending_jobs += 1;
                    if let Some(r) = &s.reason {
                        *reasons
                            .entry(s.job.queue.clone())
                            .or_default()
                            .entry(r.label())
                            .or_default() += 1;
                    }
                }
                JobPhase::Running => q.running_jobs += 1,
                _ => {}
            }
        }
        for (queue, counts) in reasons {
            let mut top: Vec<(String, u32)> = counts
                .into_iter()
                .map(|(l, n)| (l.to_string(), n))
                .collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(3);
            by_queue
                .get_mut(&queue)
                .expect("collected above")
                .top_reasons = top;
        }
        by_queue.into_values().collect()
    }

    /// Each pending job's place in its queue's line (1 goes first), in the order its queue
    /// tries them (priority, then the critical path behind it, then submission). Jobs out of
    /// their queue (waiting for dependencies, or in backoff after a failed bind) have none.
    pub fn positions(&self) -> BTreeMap<&'a str, u32> {
        let mut lines: BTreeMap<&'a str, Vec<(OrderKey, &'a str)>> = BTreeMap::new();
        for s in self.engine.jobs.iter().flatten() {
            if s.queued && s.phase == JobPhase::Pending {
                lines
                    .entry(s.job.queue.as_str())
                    .or_default()
                    .push((s.key, s.job.name.as_str()));
            }
        }
        let mut out = BTreeMap::new();
        for mut line in lines.into_values() {
            // Greater keys go first.
            line.sort_unstable_by_key(|(key, _)| std::cmp::Reverse(*key));
            for (i, (_, name)) in line.into_iter().enumerate() {
                out.insert(name, u32::try_from(i + 1).unwrap_or(u32::MAX));
            }
        }
        out
    }

    /// When the pending jobs are expected to start, if nothing new arrives: the engine's own
    /// decisions, run forward on a copy of its state over virtual time. A placed pod whose job
    /// declares its duration ends when that says; one whose job does not never ends, so a job
    /// that could only start after such a pod is left out (unknown), never guessed. Bound by
    /// `max_cycles` forward cycles (one per instant at which pods end or time alone brings work:
    /// a reclaim delay or backoff ending, jobs left for the next cycle); jobs not started by
    /// then are left out too. The copy is dropped: the engine is untouched.
    pub fn forecast(&self, max_cycles: usize) -> BTreeMap<String, Time> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut e = self.engine.clone();
        let now = e.last_cycle;
        let mut pending: BTreeSet<String> = BTreeSet::new();
        // Pods expected to end, soonest first; `None` is a pod being evicted (ends now).
        let mut ends: BinaryHeap<Reverse<(Time, PodRef, bool)>> = BinaryHeap::new();
        for s in e.jobs.iter().flatten() {
            if s.phase == JobPhase::Pending {
                pending.insert(s.job.name.clone());
            }
            for (t, slots) in s.pods.iter().enumerate() {
                let duration = s.job.tasks[t].pod.duration;
                for (i, slot) in slots.iter().enumerate() {
                    let pod = PodRef {
                        job: s.job.name.clone(),
                        task: t as u32,
                        index: i as u32,
                    };
                    match (slot.phase, duration) {
                        (PodPhase::Assumed | PodPhase::Bound, Some(d)) => ends.push(Reverse((
                            Release::expected_end(slot.since, Some(d), now),
                            pod,
                            false,
                        ))),
                        (PodPhase::Releasing, _) => ends.push(Reverse((now, pod, true))),
                        _ => {}
                    }
                }
            }
        }
        let mut started = BTreeMap::new();
        let mut cycles = 0;
        // When time alone brings work (a reclaim delay or a backoff ending, jobs left untried
        // by the attempt budget), as the live engine is woken.
        let mut wake: Option<Time> = None;
        loop {
            if cycles == max_cycles || started.len() == pending.len() {
                break;
            }
            let next_end = ends.peek().map(|Reverse((at, _, _))| *at);
            let Some(at) = [next_end, wake].into_iter().flatten().min() else {
                break;
            };
            cycles += 1;
            // One cycle per second at most, as the live engine batches changes.
            let t = Time(at.0.max(e.last_cycle.0.saturating_add(1000)));
            while let Some(Reverse((at, _, _))) = ends.peek()
                && *at <= t
            {
                let Some(Reverse((_, pod, evicted))) = ends.pop() else {
                    break;
                };
                let event = if evicted {
                    ClusterEvent::PodEvicted { pod }
                } else {
                    ClusterEvent::PodFinished {
                        pod,
                        succeeded: true,
                    }
                };
                // A pod the copy no longer knows (its job ended) is simply gone.
                let _ = e.apply(event);
            }
            let out = e.cycle(t);
            wake = if out.report.ready_left > 0 {
                Some(Time(t.0.saturating_add(1000)))
            } else {
                out.report.wake_at
            };
            for d in &out.decisions {
                match d {
                    Decision::BindGang { job, bindings } => {
                        if pending.contains(job) {
                            started.entry(job.clone()).or_insert(t);
                        }
                        let duration = |task: u32| {
                            let id = *e.by_name.get(job.as_str())?;
                            e.state(id).job.tasks.get(task as usize)?.pod.duration
                        };
                        let durations: Vec<Option<Span>> =
                            bindings.iter().map(|b| duration(b.task)).collect();
                        for event in d.all_bound() {
                            let _ = e.apply(event);
                        }
                        for (b, d) in bindings.iter().zip(durations) {
                            if let Some(d) = d {
                                let end = Time(t.0.saturating_add(d.0));
                                ends.push(Reverse((end, b.pod(job), false)));
                            }
                        }
                    }
                    Decision::Evict { pods, .. } => {
                        for p in pods {
                            ends.push(Reverse((t, p.clone(), true)));
                        }
                    }
                    _ => {}
                }
            }
        }
        started
    }

    /// The queue configuration in force, in name order (implicit parents included).
    pub fn queue_specs(&self) -> impl Iterator<Item = &'a QueueSpec> {
        self.engine.queues.specs()
    }

    /// The time of the last cycle.
    pub fn last_cycle(&self) -> Time {
        self.engine.last_cycle
    }
}

fn reservation_shortfall(snapshot: &Snapshot, s: &JobState, shapes: &[Shape<'_>]) -> FitError {
    let min = s.job.min_resources.unwrap_or_default();
    let mut free = Resources::ZERO;
    let mut seen = BTreeSet::new();
    for sh in shapes {
        for &(_, c) in &sh.classes {
            if seen.insert(c) {
                free += snapshot.classes()[c as usize].free_total;
            }
        }
    }
    let shortfall = min
        .iter_nonzero()
        .filter(|&(r, want)| free.get(r) < want)
        .map(|(resource, requested)| phalanx_model::Shortfall {
            resource,
            requested,
            free: free.get(resource).max(0),
        })
        .next();
    FitError {
        task: "min_resources".into(),
        needed: s.gang_need(),
        placeable: s.gang_need(),
        nodes: snapshot.live_nodes(),
        filtered: BTreeMap::new(),
        shortfall,
    }
}

/// Holds capacity for the job's `min_resources` beyond what its placed pods use, on nodes its
/// tasks may use, best class tier first; or gives back what pods that arrived have used since,
/// and any room held while it was blocked beyond that.
/// False when the room cannot be held (the transaction must roll back).
fn hold_min_resources(
    snapshot: &mut Snapshot,
    txn: &mut Transaction,
    s: &JobState,
    shapes: &[Shape<'_>],
    placed_by_task: &[u32],
    forming: bool,
) -> bool {
    // Without `min_resources` nothing is wanted: room held while the gang was blocked goes.
    let min = s.job.min_resources.unwrap_or_default();
    let running = (0..s.pods.len())
        .map(|t| {
            s.request(t)
                .times((s.live_by_task[t] + placed_by_task[t]) as u64)
        })
        .fold(Resources::ZERO, |a, b| a + b);
    let held = txn
        .reservations
        .values()
        .fold(Resources::ZERO, |a, r| a + *r);
    let wanted = (min - running).clamp_zero();
    let more = (wanted - held).clamp_zero();
    if forming && !more.is_zero() {
        let mut best_tier: BTreeMap<ClassId, u8> = BTreeMap::new();
        for &(tier, c) in shapes.iter().flat_map(|sh| sh.classes.iter()) {
            let t = best_tier.entry(c).or_insert(tier);
            *t = (*t).min(tier);
        }
        let mut classes: Vec<(u8, ClassId)> = best_tier.into_iter().map(|(c, t)| (t, c)).collect();
        classes.sort_unstable();
        let ids: Vec<ClassId> = classes.into_iter().map(|(_, c)| c).collect();
        return txn.reserve(snapshot, &ids, more);
    }
    // Pods that arrived have used the hold: give back what is no longer wanted, lowest node first.
    let mut excess = (held - wanted).clamp_zero();
    let nodes: Vec<NodeId> = txn.reservations.keys().copied().collect();
    for node in nodes {
        if excess.is_zero() {
            break;
        }
        let give = txn.reservations[&node].min(&excess);
        excess -= give;
        txn.unreserve(snapshot, node, give);
    }
    true
}

/// Every task's pod shape, with the classes that admit it.
fn shapes_of<'a>(snapshot: &Snapshot, job: &'a Job) -> Vec<Shape<'a>> {
    job.tasks
        .iter()
        .enumerate()
        .map(|(t, task)| Shape::new(snapshot, t as u32, &task.pod))
        .collect()
}

/// The least the gang's minimum asks for: every task's own minimum, and the rest of
/// `min_member` from the cheapest pods it has pending.
fn gang_minimum(
    s: &JobState,
    task_need: &[u32],
    pending_by_task: &[Vec<u32>],
    gang_need: u32,
) -> Resources {
    let mut minimum = Resources::ZERO;
    for (t, &n) in task_need.iter().enumerate() {
        minimum += s.request(t).times(n as u64);
    }
    let rest = gang_need.saturating_sub(task_need.iter().sum());
    if rest > 0 {
        let cheapest = (0..s.pods.len())
            .filter(|&t| !pending_by_task[t].is_empty())
            .map(|t| s.request(t))
            .reduce(|a, b| a.min(&b))
            .unwrap_or_default();
        minimum += cheapest.times(rest as u64);
    }
    minimum
}

/// Requests of a job's pending pods: what it adds to its queue's demand.
fn pending_demand(s: &JobState) -> Resources {
    s.pods
        .iter()
        .enumerate()
        .fold(Resources::ZERO, |acc, (t, slots)| {
            let pending = slots
                .iter()
                .filter(|p| p.phase == PodPhase::Pending)
                .count();
            acc + s.request(t).times(pending as u64)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bind_backoff_doubles_per_failure_and_stops_at_the_maximum() {
        let c = EngineConfig::default();
        let waits: Vec<u64> = (1..=7).map(|n| c.bind_backoff(n).0).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
        // No overflow however many failures, and 0 turns the backoff off.
        assert_eq!(c.bind_backoff(u32::MAX), Span(10_000));
        let off = EngineConfig {
            bind_backoff_initial: Span(0),
            ..EngineConfig::default()
        };
        assert_eq!(off.bind_backoff(5), Span(0));
        // A maximum below the initial wait wins.
        let capped = EngineConfig {
            bind_backoff_initial: Span(5000),
            bind_backoff_max: Span(3000),
            ..EngineConfig::default()
        };
        assert_eq!(capped.bind_backoff(1), Span(3000));
    }

    #[test]
    fn configurations_written_before_the_backoff_existed_still_load() {
        let c: EngineConfig = serde_json::from_str(r#"{"reclaim": false}"#).unwrap();
        assert!(!c.reclaim);
        assert_eq!(
            (c.bind_backoff_initial, c.bind_backoff_max),
            (Span(1000), Span(10_000))
        );
        let c: EngineConfig =
            serde_json::from_str(r#"{"bind_backoff_initial": 250, "bind_backoff_max": 2000}"#)
                .unwrap();
        assert_eq!(c.bind_backoff(3), Span(1000));
        assert_eq!(c.bind_backoff(5), Span(2000));
    }
}
