//! The read-only view of the engine for adapters, reports and tests: jobs, pods, nodes, queues,
//! positions in line and the start-time forecast.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_model::{
    ClusterEvent, Decision, Job, PodRef, QueueSpec, Reason, Resources, Span, Time,
};
use phalanx_queue::OrderKey;
use phalanx_queue::tree::QueueInfo;
use serde::Serialize;

use crate::reserve::Release;

use super::*;

/// A read-only view of the engine's state.
pub struct View<'a> {
    pub(super) engine: &'a Engine,
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

    /// Gangs asleep until their shape has room (see [`WakeUps`](super::WakeUps)), by name.
    pub fn asleep(&self) -> Vec<String> {
        self.engine.asleep_names()
    }

    /// Asleep gangs that a placement walking every node, with the room they may borrow,
    /// would place now: empty unless the wake-up rule lets a gang sleep that could run. It
    /// tries each on a copy of the engine: for tests and checks, not for a hot path.
    pub fn asleep_that_fit(&self) -> Vec<String> {
        self.engine.asleep_that_fit()
    }

    /// Leaf queues whose allocation in the queue tree differs from what their jobs hold and
    /// reserve, as `(queue, tree, jobs)`: empty unless an invariant is broken. For tests and
    /// for adapters that check themselves under faults.
    pub fn accounting_errors(&self) -> Vec<(String, Resources, Resources)> {
        let mut by_queue: std::collections::BTreeMap<&str, Resources> = Default::default();
        for s in self.engine.jobs.iter().flatten() {
            *by_queue.entry(s.job.queue.as_str()).or_default() += s.accounted;
        }
        self.engine
            .queues
            .info()
            .into_iter()
            .filter(|q| q.leaf)
            .filter_map(|q| {
                let jobs = by_queue
                    .get(q.spec.name.as_str())
                    .copied()
                    .unwrap_or_default();
                (jobs != q.allocated).then(|| (q.spec.name.clone(), q.allocated, jobs))
            })
            .collect()
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
