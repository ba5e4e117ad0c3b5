//! What the engine keeps per job and pod: phases, counts, room held (claims), what a gang still
//! needs, and the outcome of one placement try.

use std::collections::BTreeMap;

use phalanx_model::{EvictReason, Job, PodRef, Reason, Resources, Time};
use phalanx_queue::dag::NodeIndex as DagNode;
use phalanx_queue::{JobId, OrderKey};
use serde::{Deserialize, Serialize};

use crate::gang::Transaction;
use crate::snapshot::{NodeId, Snapshot};

use super::*;

/// Where a job is in its backoff after a failed bind (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backoff {
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
    pub(super) fn slot(&mut self, phase: PodPhase) -> &mut u32 {
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

/// Where one pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PodSlot {
    pub(super) phase: PodPhase,
    pub(super) node: Option<NodeId>,
    /// When it was placed (the cycle that assumed it, or the one before its bind was seen).
    pub(super) since: Time,
    /// Its bind was in flight when its gang was undone: it is `Releasing`, holding its room,
    /// until the bind's outcome is known (or `Pending`, when that bind was reported failed).
    /// Shown up bound after all, it is evicted unless the gang is whole (see
    /// `Engine::late_bound`). Any change of phase clears it.
    pub(super) in_flight: bool,
}

impl PodSlot {
    pub(super) const PENDING: PodSlot = PodSlot {
        phase: PodPhase::Pending,
        node: None,
        since: Time::ZERO,
        in_flight: false,
    };
}

/// Room held for a blocked gang (see [`crate::reserve`]). What is held so far is in the job's
/// `reservations`, and counts against its queue like placed pods do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Claim {
    /// What to hold per node once it frees.
    pub(super) want: BTreeMap<NodeId, Resources>,
    /// When the gang is expected to start.
    pub(super) start: Time,
    /// When the plan was made.
    pub(super) planned: Time,
    /// Whether the room comes from gangs evicted for it (reclaim or preemption) rather than
    /// from pods expected to end.
    pub(super) evicted_for: bool,
}

impl Claim {
    /// A plan proved wrong: a node of it is gone, or the gang is still waiting well past the
    /// expected start (as long again as the plan looked ahead, and at least a minute).
    pub(super) fn stale(&self, snapshot: &Snapshot, now: Time) -> bool {
        let lookahead = self.start.0.saturating_sub(self.planned.0).max(60_000);
        now.0 > self.start.0.saturating_add(lookahead)
            || self.want.keys().any(|&n| !snapshot.node(n).live)
    }
}

/// Pods of one task by phase, as far as placement asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TaskCounts {
    /// Assumed or bound.
    pub(super) live: u32,
    /// Waiting to be placed.
    pub(super) pending: u32,
}

/// Every pod of a new job pending: slots by task, counts by task, counts.
pub(super) fn fresh_pods(job: &Job) -> (Vec<Vec<PodSlot>>, Vec<TaskCounts>, PodCounts) {
    let pods = job
        .tasks
        .iter()
        .map(|t| vec![PodSlot::PENDING; t.replicas as usize])
        .collect();
    let counts = PodCounts {
        pending: job.replicas().min(u32::MAX as u64) as u32,
        ..Default::default()
    };
    let by_task = job
        .tasks
        .iter()
        .map(|t| TaskCounts {
            live: 0,
            pending: t.replicas,
        })
        .collect();
    (pods, by_task, counts)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JobState {
    pub(super) job: Job,
    pub(super) key: OrderKey,
    pub(super) phase: JobPhase,
    /// Pods by task, then replica.
    pub(super) pods: Vec<Vec<PodSlot>>,
    pub(super) counts: PodCounts,
    /// Requests of its pods that hold a node (assumed, bound, releasing).
    pub(super) held: Resources,
    /// What its queue counts for it: `held` plus capacity reserved for it.
    pub(super) accounted: Resources,
    /// Per task, live (assumed + bound) and pending pods: what an attempt needs without
    /// looking at every slot.
    pub(super) by_task: Vec<TaskCounts>,
    /// Capacity held for the job's `min_resources`, per node.
    pub(super) reservations: BTreeMap<NodeId, Resources>,
    /// Why it is pending, or why it failed.
    pub(super) reason: Option<Reason>,
    /// Whether it is in the queue (ready or parked).
    pub(super) queued: bool,
    /// Whether its dependencies are in the DAG gate (only valid jobs enter it).
    pub(super) in_dag: bool,
    /// What is wrong with the job as submitted, if anything (checked once per submission).
    pub(super) invalid: Option<phalanx_model::JobError>,
    /// Its node in the DAG gate, when it has dependencies or some job depends on it.
    pub(super) dag_node: Option<DagNode>,
    /// When its gang last started (reclaim evicts the youngest first).
    pub(super) started: Time,
    /// Room held for it while it is blocked.
    pub(super) claim: Option<Claim>,
    /// Since when it has been blocked (found no room), while it has not started.
    pub(super) blocked_since: Option<Time>,
    /// When a search for gangs to evict for it last found none.
    pub(super) reclaim_tried: Option<Time>,
    /// The node generation at which no reservation plan existed for it (it would not fit even
    /// once every running pod ended); it tries again when nodes change.
    pub(super) unplannable: Option<u64>,
    /// Failed binds of its gang in a row; reset once a placement of it binds whole.
    pub(super) bind_failures: u32,
    /// Its backoff after a failed bind; out of its queue while not `Off`.
    pub(super) backoff: Backoff,
    /// Since when some of its pods have been bound while the gang was below its minimum (see
    /// [`EngineConfig::partial_gang_timeout`]); cleared once the gang is bound whole.
    pub(super) partial_since: Option<Time>,
    /// Why its gang was last undone, until it is placed again: a pod whose bind was in flight
    /// then and that shows up bound meanwhile is evicted for the same reason, unless the gang
    /// is whole with it.
    pub(super) undone: Option<EvictReason>,
}

impl JobState {
    pub(super) fn slot(&self, pod: &PodRef) -> Option<PodSlot> {
        self.pods
            .get(pod.task as usize)?
            .get(pod.index as usize)
            .copied()
    }

    pub(super) fn set(&mut self, task: usize, index: usize, phase: PodPhase, node: Option<NodeId>) {
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
        let counts = &mut self.by_task[task];
        counts.live -= live(slot.phase) as u32;
        counts.live += live(phase) as u32;
        counts.pending -= (slot.phase == PodPhase::Pending) as u32;
        counts.pending += (phase == PodPhase::Pending) as u32;
        let since = slot.since;
        *slot = PodSlot {
            phase,
            node,
            since,
            in_flight: false,
        };
    }

    /// Pods the gang must have live together: `min_member`, or fewer once some have ended.
    pub(super) fn gang_need(&self) -> u32 {
        self.job.min_member.min(self.counts.unfinished())
    }

    pub(super) fn request(&self, task: usize) -> Resources {
        self.job.tasks[task].pod.requests
    }
}

/// What one attempt must place for a job.
pub(super) struct Need {
    /// Not running yet: the gang's minimum goes all or nothing.
    pub(super) forming: bool,
    /// Pods the gang needs placed together (0 once it runs).
    pub(super) gang_need: u32,
    /// Per task, pods its own minimum needs placed (0 once it runs).
    pub(super) task_need: Vec<u32>,
    /// Per task, its pending pods.
    pub(super) pending_by_task: Vec<u32>,
    /// The least the gang's minimum asks for (see [`gang_minimum`]).
    pub(super) minimum: Resources,
    /// Room already held for the job.
    pub(super) held: Resources,
}

impl Need {
    pub(super) fn of(s: &JobState) -> Need {
        let forming = s.phase == JobPhase::Pending;
        let gang_need = if forming {
            s.gang_need().saturating_sub(s.counts.live())
        } else {
            0
        };
        let pending_by_task: Vec<u32> = s.by_task.iter().map(|c| c.pending).collect();
        let task_need: Vec<u32> = s
            .job
            .tasks
            .iter()
            .zip(&s.by_task)
            .map(|(t, c)| {
                if forming {
                    t.min_member.saturating_sub(c.live).min(c.pending)
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
    pub(super) fn plan_counts(&self) -> Vec<u32> {
        let mut counts = self.task_need.clone();
        let mut rest = self.gang_need.saturating_sub(counts.iter().sum());
        for (t, &pending) in self.pending_by_task.iter().enumerate() {
            let more = (pending - counts[t]).min(rest);
            counts[t] += more;
            rest -= more;
        }
        counts
    }
}

/// A placement found and applied to the snapshot, not yet committed.
pub(super) struct Placed {
    pub(super) txn: Transaction,
}

/// A placement not found; the snapshot is as it was.
pub(super) struct Miss {
    /// Why, when asked.
    pub(super) reason: Option<Reason>,
    /// Pods of the gang that did fit.
    pub(super) placeable: u32,
    /// Nodes looked at.
    pub(super) scanned: u64,
}

/// A running gang reclaim or preemption may evict.
pub(super) struct Victim {
    pub(super) id: JobId,
    pub(super) priority: i32,
    pub(super) started: Time,
    pub(super) pods: u32,
    pub(super) why: EvictReason,
}
