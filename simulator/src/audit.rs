//! An independent check of what the engine decided. The [`Audit`] sees the same events the
//! engine saw and the decisions it made, keeps its own ledger of which pod is on which node,
//! and counts violations of the safety properties. It shares no code with the engine's
//! placement path (no snapshot, no classes, no indexes) beyond the model's predicates, so a bug
//! there cannot hide itself here.
//!
//! Properties checked:
//! - no node's allocatable is exceeded by the requests of the pods placed on it;
//! - no gang is partial: a job with pods placed has at least `min_member` pods placed or ended
//!   (checked after every `BindGang`, and by [`Audit::partial_gangs`] at quiet points, when
//!   every eviction the engine asked for has happened);
//! - no pod is placed twice;
//! - every placement respects the node's taints, the pod's nodeSelector and required affinity,
//!   and the node's cordon.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_model::{ClusterEvent, Decision, Job, Node, PodRef, Resources, TaintEffect, tolerated};

#[derive(Debug, Clone)]
struct JobLedger {
    job: Job,
    /// (task, index) -> node, for pods placed and not ended.
    placed: BTreeMap<(u32, u32), String>,
    /// Pods the engine asked to evict that have not gone yet.
    evicting: BTreeSet<(u32, u32)>,
    finished: u64,
}

/// The independent ledger and its violation counters.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    nodes: BTreeMap<String, (Node, Resources)>,
    jobs: BTreeMap<String, JobLedger>,
    /// Placements onto a node with requests beyond its allocatable (counted once per node).
    overcommitted: BTreeSet<String>,
    /// `BindGang` decisions that left their gang below its minimum.
    pub partial_binds: u64,
    /// Pods placed while already placed.
    pub double_binds: u64,
    /// Placements that break a taint, selector, affinity or cordon.
    pub constraint_violations: u64,
    /// Decisions naming a job or node the audit does not know.
    pub unknown_references: u64,
}

impl Audit {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event the engine also applied.
    pub fn on_event(&mut self, event: &ClusterEvent) {
        match event {
            ClusterEvent::NodeUpserted(n) => {
                let used = self.nodes.get(&n.name).map_or(Resources::ZERO, |e| e.1);
                self.nodes.insert(n.name.clone(), (n.clone(), used));
            }
            ClusterEvent::NodeRemoved { node } => {
                self.nodes.remove(node);
                for j in self.jobs.values_mut() {
                    j.placed.retain(|_, n| n != node);
                }
            }
            ClusterEvent::JobSubmitted(job) => {
                let entry = self.jobs.entry(job.name.clone()).or_insert(JobLedger {
                    job: job.clone(),
                    placed: BTreeMap::new(),
                    evicting: BTreeSet::new(),
                    finished: 0,
                });
                entry.job = job.clone();
            }
            ClusterEvent::JobDeleted { job } => {
                if let Some(j) = self.jobs.remove(job) {
                    for ((t, _), node) in j.placed {
                        let req = request(&j.job, t);
                        if let Some(n) = self.nodes.get_mut(&node) {
                            n.1 -= req;
                        }
                    }
                }
            }
            ClusterEvent::PodFinished { pod, .. } => {
                // Ending while being evicted counts as the eviction (the gang runs it again).
                let evicting = self
                    .jobs
                    .get(&pod.job)
                    .is_some_and(|j| j.evicting.contains(&(pod.task, pod.index)));
                if self.unplace(pod)
                    && !evicting
                    && let Some(j) = self.jobs.get_mut(&pod.job)
                {
                    j.finished += 1;
                }
            }
            ClusterEvent::PodEvicted { pod } | ClusterEvent::BindFailed { pod, .. } => {
                self.unplace(pod);
            }
            ClusterEvent::PodBound { .. } | ClusterEvent::QueuesConfigured(_) => {}
        }
    }

    fn unplace(&mut self, pod: &PodRef) -> bool {
        let Some(j) = self.jobs.get_mut(&pod.job) else {
            return false;
        };
        j.evicting.remove(&(pod.task, pod.index));
        let Some(node) = j.placed.remove(&(pod.task, pod.index)) else {
            return false;
        };
        if let Some(n) = self.nodes.get_mut(&node) {
            n.1 -= request(&j.job, pod.task);
        }
        true
    }

    /// Feeds one decision the engine made.
    pub fn on_decision(&mut self, decision: &Decision) {
        if let Decision::Evict { pods, .. } = decision {
            for p in pods {
                if let Some(j) = self.jobs.get_mut(&p.job) {
                    j.evicting.insert((p.task, p.index));
                }
            }
        }
        let Decision::BindGang { job, bindings } = decision else {
            return;
        };
        let Some(j) = self.jobs.get_mut(job) else {
            self.unknown_references += 1;
            return;
        };
        for b in bindings {
            let Some(task) = j.job.tasks.get(b.task as usize) else {
                self.unknown_references += 1;
                continue;
            };
            let Some((node, used)) = self.nodes.get_mut(&b.node) else {
                self.unknown_references += 1;
                continue;
            };
            if j.placed.insert((b.task, b.index), b.node.clone()).is_some() {
                self.double_binds += 1;
            }
            let spec = &task.pod;
            let mut req = spec.requests;
            req.set(phalanx_model::ResourceId::PODS, 1);
            *used += req;
            if !used.fits_in(&node.allocatable) {
                self.overcommitted.insert(b.node.clone());
            }
            let taints_ok = node.taints.iter().all(|t| {
                t.effect == TaintEffect::PreferNoSchedule || tolerated(&spec.tolerations, t)
            });
            let selector_ok = spec
                .node_selector
                .iter()
                .all(|(k, v)| node.labels.get(k) == Some(v));
            let affinity_ok = spec
                .affinity
                .as_ref()
                .is_none_or(|a| a.matches(&node.labels));
            if !(taints_ok && selector_ok && affinity_ok && !node.unschedulable) {
                self.constraint_violations += 1;
            }
        }
        if is_partial(j) {
            self.partial_binds += 1;
        }
    }

    /// Nodes that were ever overcommitted.
    pub fn overcommitted_nodes(&self) -> u64 {
        self.overcommitted.len() as u64
    }

    /// Jobs that are partial now (call at a quiet point, with all feedback applied).
    pub fn partial_gangs(&self) -> u64 {
        self.partial_jobs().count() as u64
    }

    /// Names of the jobs that are partial now, with pods placed and pods ended.
    pub fn partial_jobs(&self) -> impl Iterator<Item = (&str, usize, u64)> {
        self.jobs
            .values()
            .filter(|j| is_partial(j))
            .map(|j| (j.job.name.as_str(), j.placed.len(), j.finished))
    }

    /// Pods placed now, per job.
    pub fn placed(&self, job: &str) -> usize {
        self.jobs.get(job).map_or(0, |j| j.placed.len())
    }

    /// All safety counters added up: zero when nothing was violated.
    pub fn violations(&self) -> u64 {
        self.overcommitted_nodes()
            + self.partial_binds
            + self.partial_gangs()
            + self.double_binds
            + self.constraint_violations
            + self.unknown_references
    }
}

fn request(job: &Job, task: u32) -> Resources {
    let mut r = job.tasks[task as usize].pod.requests;
    r.set(phalanx_model::ResourceId::PODS, 1);
    r
}

/// A gang is partial when some of its pods are placed but fewer than its minimum have been
/// placed or have run to the end: pods ending on their own do not make a gang partial.
fn is_partial(j: &JobLedger) -> bool {
    let placed = j.placed.len() as u64;
    let need = (j.job.min_member as u64).min(j.job.replicas());
    placed > 0 && placed + j.finished < need
}
