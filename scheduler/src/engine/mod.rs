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
//! A pod whose bind is in flight when its gang is undone goes from `Assumed` to `Releasing`
//! and keeps its room until the bind's outcome is known: `BindFailed` frees it (`Pending`),
//! `PodBound` makes it `Bound` where it held the room (see below for what happens to it then).
//! Letting the room go at once would let another gang be placed where that bind then lands.
//! A pod that fails while `Releasing` counts as evicted: its gang is being undone, and it runs
//! again with the gang. One that succeeds meanwhile has done its work and counts as succeeded. A `Pending` pod reported ended (`PodFinished`) ran where the
//! engine could not see it, bound to a node it does not know before a restart: it ends there,
//! holding nothing, and is never placed.
//!
//! A job's life: `Pending -> Running -> Succeeded | Failed`. A running gang that falls below its
//! minimum (a bind failed, a node was lost, a pod was evicted from outside) is undone whole:
//! bound pods are evicted, those whose bind is in flight hold their room until it is settled,
//! and the job is pending again once they are gone.
//! No partial gang survives.
//!
//! A pod of an undone gang may still show up bound: binds of the undone placement were in
//! flight and went through. Unless that makes the gang whole (then it runs), the next cycle
//! evicts such pods: a gang that waits partly bound for its backoff, or for its other pods'
//! replacements, is a partial gang.
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
//!
//! The engine is split by concern, one private module each: `config`, `state` (per job and
//! pod), `events` (what each event does), `placement` (a cycle's attempts and gang
//! transactions), `holds` (reservations, backfill, `min_resources`), `reclaim` (the eviction
//! planner and its application), `view` (the read-only [`View`]) and `error` ([`EventError`]).

mod config;
mod error;
mod events;
mod holds;
mod placement;
mod reclaim;
mod state;
mod view;
mod wake;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use phalanx_model::{ClusterEvent, Decision, PodRef, Reason, Time};
use phalanx_queue::dag::DagGate;
use phalanx_queue::tree::{QueueTree, ReclaimLedger};
use phalanx_queue::{JobId, NameMap};
use serde::{Deserialize, Serialize};

use crate::gang::{DiagnosisCache, GpuDemand, RoomMemo};
use crate::snapshot::Snapshot;

pub use config::{EngineConfig, WakeUps};
pub use error::EventError;
use holds::*;
use placement::*;
use state::*;
pub use state::{JobPhase, PodCounts, PodPhase};
pub use view::{EstimateBasis, JobInfo, NodeInfo, QueueView, View};
use wake::Sleepers;

/// Reclaim searches per cycle at most: each looks at every running job.
const MAX_RECLAIMS_PER_CYCLE: u32 = 32;

/// Gangs one reclaim search may lift before it gives up.
const MAX_VICTIMS: usize = 4096;

/// Up to this many victims, each is tried for being given back (one trial placement each).
const MAX_PRUNED: usize = 256;

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
    /// Jobs parked until the cluster changes, asleep ones included.
    pub parked: u32,
    /// Of those, gangs asleep until their pod shape has room (see [`WakeUps`]).
    pub asleep: u32,
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
    /// Gangs with pods that showed up bound after their placement was undone (binds of it were
    /// in flight and went through): the next cycle undoes them again, evicting those pods,
    /// unless they became whole.
    late_bound: BTreeSet<JobId>,
    /// Running jobs that lost room held for their `min_resources` (its node went away): each
    /// cycle holds it again elsewhere, once there is room.
    rehold: BTreeSet<JobId>,
    /// Gangs asleep until their shape has room.
    sleepers: Sleepers,
    /// The priorities of the jobs held, each with how many have it: no gang is preempted for
    /// one at or below the lowest.
    priorities: BTreeMap<i32, u32>,
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
            late_bound: BTreeSet::new(),
            rehold: BTreeSet::new(),
            sleepers: Sleepers::default(),
            priorities: BTreeMap::new(),
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

    /// Counts a job's priority in (`held`) or out of [`Engine::priorities`].
    fn count_priority(&mut self, priority: i32, held: bool) {
        if held {
            *self.priorities.entry(priority).or_default() += 1;
        } else if let Some(n) = self.priorities.get_mut(&priority) {
            *n -= 1;
            if *n == 0 {
                self.priorities.remove(&priority);
            }
        }
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
            // An asleep gang one of whose pods changed is woken: what it needs changed.
            ClusterEvent::PodBound { pod, node } => {
                let id = self.pod_bound(&pod, &node)?;
                self.account(id);
                self.wake(id);
            }
            ClusterEvent::BindFailed { pod, message } => {
                let id = self.bind_failed(&pod, message)?;
                self.account(id);
                self.wake(id);
            }
            ClusterEvent::PodFinished { pod, succeeded } => {
                let id = self.pod_finished(&pod, succeeded)?;
                self.account(id);
                self.wake(id);
            }
            ClusterEvent::PodEvicted { pod } => {
                let id = self.pod_evicted(&pod)?;
                self.account(id);
                self.wake(id);
            }
        }
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
            // Shapes are keyed by class: every asleep gang is retried.
            self.sleepers.wake_all = true;
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
        self.undo_late_bound();
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
        self.wake_due();
        while (out.report.attempts as usize) < self.config.max_attempts_per_cycle {
            let Some((id, key)) = self.queues.pop() else {
                break;
            };
            if self.sleeps_on(id, key) {
                continue;
            }
            self.state_mut(id).queued = false;
            self.attempt(id, key, &mut out);
            if !self.state(id).queued {
                // Placed whole, or ended: it leaves the tree and its demand with it.
                self.queues.remove(id);
            }
        }
        self.hold_for_passed(&mut out);
        // Room freed during the cycle (holds let go) wakes gangs for the next one, so that no
        // gang sleeps while its shape has room at the end of a cycle.
        self.wake_due();
        // Jobs failed this cycle (dependencies that never appeared) report here.
        out.decisions.append(&mut self.outbox);
        out.report.ready_left = self.queues.ready_len() as u32;
        out.report.wake_at = [self.reclaim_due.first(), self.backoff_due.first()]
            .into_iter()
            .flatten()
            .map(|&(t, _)| t)
            .min();
        out.report.parked = self.queues.parked_len() as u32;
        out.report.asleep = self.sleepers.len() as u32;
        out.report.reservations = self.claims.len() as u32;
        out
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

    /// A read-only view for adapters, reports and tests.
    pub fn view(&self) -> View<'_> {
        View { engine: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_model::Span;

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
