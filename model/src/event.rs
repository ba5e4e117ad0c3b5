//! What goes into the engine ([`ClusterEvent`]) and what comes out ([`Decision`], with a
//! [`Reason`] wherever the engine declines to act). Decisions are values: the caller (the
//! Kubernetes binder, the simulated world) carries them out and reports back with events.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::job::{Job, JobError, PodRef};
use crate::node::{Node, Taint};
use crate::queue::QueueSpec;
use crate::resource::{ResourceId, ResourceTable, format_amount};
use crate::time::{Span, Time};

/// A change in the world, applied with `Engine::apply` between cycles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterEvent {
    /// A node appeared or changed (capacity, labels, taints, cordon).
    NodeUpserted(Node),
    /// A node is gone; the gangs that had pods on it go back to pending, whole.
    NodeRemoved {
        /// Node name.
        node: String,
    },
    /// The queue tree was (re)configured.
    QueuesConfigured(Vec<QueueSpec>),
    /// A job was submitted; for a known job, its tasks grew (e.g. a Spark driver's executors).
    JobSubmitted(Job),
    /// A job was deleted; its pods are gone.
    JobDeleted {
        /// Job name.
        job: String,
    },
    /// A pod is bound to `node`: confirms an assumed pod, or adopts one bound before the engine
    /// started (a restart rebuilding its state).
    PodBound {
        /// The pod.
        pod: PodRef,
        /// The node it is bound to.
        node: String,
    },
    /// Binding an assumed pod failed for good; the whole gang is forgotten and requeued.
    BindFailed {
        /// The pod.
        pod: PodRef,
        /// What the binder was told.
        message: String,
    },
    /// A pod ended on its own.
    PodFinished {
        /// The pod.
        pod: PodRef,
        /// Whether it succeeded.
        succeeded: bool,
    },
    /// A pod was evicted (by the engine's decision or from outside); its slot is pending again.
    PodEvicted {
        /// The pod.
        pod: PodRef,
    },
}

/// One pod placed on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// Index of the task in the job.
    pub task: u32,
    /// Replica index in the task.
    pub index: u32,
    /// Node name.
    pub node: String,
}

impl Binding {
    /// The pod of `job` this binding places.
    pub fn pod(&self, job: &str) -> PodRef {
        PodRef {
            job: job.to_string(),
            task: self.task,
            index: self.index,
        }
    }

    /// What a binder reports once this binding went through: the pod is bound to the node.
    pub fn bound(&self, job: &str) -> ClusterEvent {
        ClusterEvent::PodBound {
            pod: self.pod(job),
            node: self.node.clone(),
        }
    }
}

impl Decision {
    /// For a `BindGang`, the `PodBound` event of each of its pods, as a binder whose binds all
    /// go through reports them (benches, test harnesses); nothing for other decisions.
    pub fn all_bound(&self) -> impl Iterator<Item = ClusterEvent> + '_ {
        let (job, bindings) = match self {
            Decision::BindGang { job, bindings } => (job.as_str(), bindings.as_slice()),
            _ => ("", &[][..]),
        };
        bindings.iter().map(move |b| b.bound(job))
    }
}

/// Why the engine asks for pods to be evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EvictReason {
    /// A queue under its deserved share reclaims from one over it.
    Reclaim,
    /// A higher-priority job in the same queue needs the room.
    Preempt,
    /// Another pod of the gang failed to bind; the gang is undone whole.
    GangBindFailed,
    /// Another pod of the gang was lost (its node removed, or evicted from outside) and the gang
    /// fell below its minimum; the gang is undone whole.
    GangBroken,
    /// The job failed; its other pods serve no purpose.
    JobFailed,
}

impl EvictReason {
    /// The lowercase name used in logs, metrics and the decision log.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictReason::Reclaim => "reclaim",
            EvictReason::Preempt => "preempt",
            EvictReason::GangBindFailed => "gang_bind_failed",
            EvictReason::GangBroken => "gang_broken",
            EvictReason::JobFailed => "job_failed",
        }
    }

    /// Why, in words, for people reading an eviction list.
    pub fn describe(self) -> &'static str {
        match self {
            EvictReason::Reclaim => {
                "reclaimed whole: a queue below its deserved share needed the room this queue borrowed"
            }
            EvictReason::Preempt => {
                "preempted whole: a higher-priority job in the same queue needed the room"
            }
            EvictReason::GangBindFailed => "undone whole: another pod of the gang failed to bind",
            EvictReason::GangBroken => {
                "undone whole: the gang lost pods and fell below its minimum"
            }
            EvictReason::JobFailed => "stopped: the job failed, its other pods serve no purpose",
        }
    }
}

/// What the engine decided in a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Bind these pods of `job`, all of them: the gang was placed as one transaction.
    BindGang {
        /// Job name.
        job: String,
        /// One binding per placed pod.
        bindings: Vec<Binding>,
    },
    /// Evict these pods.
    Evict {
        /// The pods.
        pods: Vec<PodRef>,
        /// Why.
        reason: EvictReason,
    },
    /// Capacity on these nodes is held for `job` (its `min_resources`, or a blocked large gang).
    Reserve {
        /// Job name.
        job: String,
        /// Nodes with capacity held.
        nodes: Vec<String>,
    },
    /// The job could not be placed this cycle; it stays pending.
    MarkUnschedulable {
        /// Job name.
        job: String,
        /// Why.
        reason: Reason,
    },
    /// The job failed and will not run.
    FailJob {
        /// Job name.
        job: String,
        /// Why.
        cause: Reason,
    },
}

/// A static filter or resource check that rejected a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FilterReason {
    /// The node is cordoned.
    NodeUnschedulable,
    /// The node's labels do not match the pod's nodeSelector.
    NodeSelectorMismatch,
    /// The node's labels do not satisfy the required node affinity.
    NodeAffinityMismatch,
    /// The node has a taint the pod does not tolerate.
    UntoleratedTaint(Taint),
    /// Not enough free of one resource (the first lane that fell short).
    Insufficient(ResourceId),
    /// Enough would be free but for room held for blocked gangs, which the pod may not take
    /// (it does not declare a run time that ends before they start).
    Reserved,
}

impl FilterReason {
    fn describe(&self, table: Option<&ResourceTable>) -> String {
        match self {
            FilterReason::NodeUnschedulable => "node(s) were unschedulable".into(),
            FilterReason::NodeSelectorMismatch => "node(s) didn't match Pod's node selector".into(),
            FilterReason::NodeAffinityMismatch => "node(s) didn't match Pod's node affinity".into(),
            FilterReason::UntoleratedTaint(t) => {
                format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value)
            }
            FilterReason::Insufficient(id) => {
                format!("Insufficient {}", resource_name(*id, table))
            }
            FilterReason::Reserved => "node(s) had their room held for a blocked gang".into(),
        }
    }
}

fn resource_name(id: ResourceId, table: Option<&ResourceTable>) -> String {
    match (table, id.well_known_name()) {
        (_, Some(name)) => name.to_string(),
        (Some(t), None) => t.name(id).to_string(),
        (None, None) => format!("extended resource #{}", id.0),
    }
}

/// A resource the gang needs more of than all nodes it may use have free together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortfall {
    /// Which resource.
    pub resource: ResourceId,
    /// What the unplaced pods request in total.
    pub requested: i64,
    /// What is free on the nodes they may use.
    pub free: i64,
}

/// Why a gang did not fit: the answer to "why is my job pending".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FitError {
    /// The first task whose pods could not all be placed.
    pub task: String,
    /// Pods the gang needed placed together.
    pub needed: u32,
    /// Pods that found room before the transaction was rolled back.
    pub placeable: u32,
    /// Nodes in the cluster.
    pub nodes: u32,
    /// How many nodes each filter rejected for one pod of `task` (a node counts once, under the
    /// first filter that rejected it). In JSON, a list of `[filter, nodes]` pairs.
    #[serde(with = "pairs")]
    pub filtered: BTreeMap<FilterReason, u32>,
    /// The resource most short across all nodes the task may use, if any is: `None` means the
    /// room exists in total but is fragmented across nodes.
    pub shortfall: Option<Shortfall>,
}

impl FitError {
    /// The message with extended resources named through `table`.
    pub fn describe(&self, table: Option<&ResourceTable>) -> String {
        let available = self.nodes - self.filtered.values().sum::<u32>().min(self.nodes);
        let mut s = format!(
            "{available}/{} nodes are available for a pod of task {}: {} of {} gang pods placeable",
            self.nodes, self.task, self.placeable, self.needed
        );
        let mut parts: Vec<_> = self.filtered.iter().collect();
        parts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (i, (filter, count)) in parts.into_iter().enumerate() {
            s.push_str(if i == 0 { "; " } else { ", " });
            s.push_str(&format!("{count} {}", filter.describe(table)));
        }
        // No node passes the filters that do not depend on room (selector, affinity, taints,
        // cordon): no amount of free room would help, so none is reported short.
        let room_filtered = self
            .filtered
            .iter()
            .filter(|(f, _)| matches!(f, FilterReason::Insufficient(_) | FilterReason::Reserved))
            .map(|(_, n)| *n)
            .sum::<u32>();
        let statically_filtered = self.filtered.values().sum::<u32>() - room_filtered;
        if self.nodes > 0 && statically_filtered >= self.nodes {
            return s;
        }
        match &self.shortfall {
            Some(sf) => s.push_str(&format!(
                "; short of {} {} (requested {}, free {})",
                format_amount(sf.resource, sf.requested - sf.free),
                resource_name(sf.resource, table),
                format_amount(sf.resource, sf.requested),
                format_amount(sf.resource, sf.free)
            )),
            None => s.push_str("; enough room in total but fragmented across nodes"),
        }
        s
    }
}

/// Why the engine did not place or run a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// No placement for the whole gang exists now.
    Unschedulable(FitError),
    /// The job names a queue that is not configured.
    QueueNotFound {
        /// The queue it names.
        queue: String,
    },
    /// The job names a queue that has child queues; jobs go into leaf queues.
    QueueNotLeaf {
        /// The queue it names.
        queue: String,
    },
    /// Placing the gang would take a queue (its own or an ancestor) over its capability.
    OverCapability {
        /// The queue whose cap binds.
        queue: String,
        /// The resource.
        resource: ResourceId,
        /// Its capability.
        capability: i64,
        /// What it has allocated.
        allocated: i64,
        /// What the gang's minimum asks for.
        requested: i64,
    },
    /// The job is malformed.
    InvalidJob(JobError),
    /// A pod of the gang failed to bind; the gang was forgotten and backs off before it is
    /// tried again (the wait doubles with each failed bind in a row, up to a maximum).
    BindFailed {
        /// The pod.
        pod: PodRef,
        /// What the binder was told.
        message: String,
        /// Failed binds of the gang in a row, this one included.
        #[serde(default)]
        failures: u32,
        /// How long it backs off.
        #[serde(default)]
        backoff: Span,
        /// When it is tried again at the earliest; `None` until the engine's next cycle starts
        /// the backoff.
        #[serde(default)]
        retry_at: Option<Time>,
    },
    /// Pods of the gang are bound, fewer than its minimum (adopted after a restart, or bound
    /// pods that no controller recreates outlived an undo), and the rest found no room: the
    /// gang was undone and backs off before it is tried again, as after a failed bind.
    GangIncomplete {
        /// Pods of the gang that were bound.
        bound: u32,
        /// Pods the gang needs live together.
        needed: u32,
        /// Why the rest found no room.
        why: Box<Reason>,
        /// Undos of the gang in a row (failed binds included), this one included.
        failures: u32,
        /// How long it backs off.
        backoff: Span,
        /// When it is tried again at the earliest; `None` until the engine's next cycle starts
        /// the backoff.
        retry_at: Option<Time>,
    },
    /// The gang stayed partly bound (pods bound that could not be taken back, fewer than its
    /// minimum) longer than the engine allows, so the job failed and its bound pods are evicted:
    /// all-or-nothing is broken for a bounded time only.
    PartialGangTimedOut {
        /// Pods of the gang that were bound.
        bound: u32,
        /// Pods the gang needs live together.
        needed: u32,
        /// How long it had been partly bound.
        waited: Span,
    },
    /// A pod of the job failed.
    PodFailed {
        /// The pod.
        pod: PodRef,
    },
    /// Jobs it depends on have not all succeeded yet.
    WaitingForDependencies {
        /// The dependencies not yet succeeded, in name order. Shared with the DAG gate's own
        /// copy of each name: a pipeline submitted at once reports this for every job.
        jobs: Vec<Arc<str>>,
    },
    /// Jobs it depends on do not exist (yet); it fails if they do not appear in time.
    DependencyMissing {
        /// The missing dependencies, in name order.
        jobs: Vec<Arc<str>>,
    },
    /// A job it depends on, directly or through others, failed or was deleted before it
    /// succeeded, so this job will never run.
    DependencyFailed {
        /// The ancestor that failed or was deleted.
        dependency: String,
        /// True when the ancestor was deleted rather than failed.
        deleted: bool,
    },
}

impl Reason {
    /// The short label used for metrics and counters (`unschedulable`, `queue_not_found`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            Reason::Unschedulable(_) => "unschedulable",
            Reason::QueueNotFound { .. } => "queue_not_found",
            Reason::QueueNotLeaf { .. } => "queue_not_leaf",
            Reason::OverCapability { .. } => "over_capability",
            Reason::InvalidJob(_) => "invalid_job",
            Reason::BindFailed { .. } => "bind_failed",
            Reason::GangIncomplete { .. } => "gang_incomplete",
            Reason::PartialGangTimedOut { .. } => "partial_gang_timed_out",
            Reason::PodFailed { .. } => "pod_failed",
            Reason::WaitingForDependencies { .. } => "waiting_for_dependencies",
            Reason::DependencyMissing { .. } => "dependency_missing",
            Reason::DependencyFailed { .. } => "dependency_failed",
        }
    }

    /// The message with extended resource names resolved through `table`.
    pub fn describe(&self, table: Option<&ResourceTable>) -> String {
        self.describe_with(table, &|t: Time| t.to_string())
    }

    /// The message with extended resource names resolved through `table` and instants written
    /// by `time` (the Kubernetes adapter writes them as RFC 3339 wall-clock times; the default
    /// is seconds on the caller's clock).
    pub fn describe_with(
        &self,
        table: Option<&ResourceTable>,
        time: &dyn Fn(Time) -> String,
    ) -> String {
        match self {
            Reason::Unschedulable(fit) => fit.describe(table),
            Reason::QueueNotFound { queue } => format!("queue {queue} is not configured"),
            Reason::QueueNotLeaf { queue } => {
                format!("queue {queue} has child queues; submit to one of them")
            }
            Reason::OverCapability {
                queue,
                resource,
                capability,
                allocated,
                requested,
            } => format!(
                "queue {queue} would go over its capability of {} {}: {} allocated, the gang needs {}",
                format_amount(*resource, *capability),
                resource_name(*resource, table),
                format_amount(*resource, *allocated),
                format_amount(*resource, *requested)
            ),
            Reason::InvalidJob(e) => e.to_string(),
            Reason::BindFailed {
                pod,
                message,
                failures,
                backoff,
                retry_at,
            } => {
                let mut s = format!("binding {pod} failed: {message}; the gang was undone");
                if let Some(at) = retry_at {
                    let row = match failures {
                        0 | 1 => "first failed bind".to_string(),
                        n => format!("{n} failed binds in a row"),
                    };
                    s.push_str(&format!(
                        " and backs off for {backoff} ({row}): next try at {}",
                        time(*at)
                    ));
                }
                s
            }
            Reason::GangIncomplete {
                bound,
                needed,
                why,
                failures,
                backoff,
                retry_at,
            } => {
                let mut s = format!(
                    "{bound} of the gang's {needed} pods were bound and the rest found no room ({}); \
                     the gang was undone",
                    why.describe_with(table, time)
                );
                if let Some(at) = retry_at {
                    s.push_str(&format!(
                        " and backs off for {backoff} ({failures} undone in a row): next try at {}",
                        time(*at)
                    ));
                }
                s
            }
            Reason::PartialGangTimedOut {
                bound,
                needed,
                waited,
            } => format!(
                "only {bound} of the gang's {needed} pods could be bound for {waited}: \
                 the job failed and its bound pods are evicted, so no partial gang holds the cluster"
            ),
            Reason::PodFailed { pod } => format!("pod {pod} failed"),
            Reason::WaitingForDependencies { jobs } => {
                format!("waiting for dependencies to succeed: {}", jobs.join(", "))
            }
            Reason::DependencyMissing { jobs } => {
                format!("dependencies do not exist: {}", jobs.join(", "))
            }
            Reason::DependencyFailed {
                dependency,
                deleted: false,
            } => format!("dependency {dependency} failed"),
            Reason::DependencyFailed {
                dependency,
                deleted: true,
            } => format!("dependency {dependency} was deleted before it succeeded"),
        }
    }
}

impl Reason {
    /// For a gang that backs off (after a failed bind, or undone while incomplete): records
    /// how long it waits and until when. Other reasons are left as they are.
    pub fn set_backoff(&mut self, wait: Span, until: Time) {
        if let Reason::BindFailed {
            backoff, retry_at, ..
        }
        | Reason::GangIncomplete {
            backoff, retry_at, ..
        } = self
        {
            *backoff = wait;
            *retry_at = Some(until);
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(None))
    }
}

/// Serializes a map with non-string keys as a list of pairs, which JSON can carry.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::TaintEffect;

    #[test]
    fn no_node_passing_the_selector_is_not_reported_as_short_of_room() {
        // Issue 14, item 9: every node fails the nodeSelector; "short of 100m cpu (free 0)"
        // sent people looking for room that would not have helped.
        let fit = FitError {
            task: "t".into(),
            needed: 1,
            placeable: 0,
            nodes: 3,
            filtered: [(FilterReason::NodeSelectorMismatch, 3)].into(),
            shortfall: Some(Shortfall {
                resource: ResourceId::CPU,
                requested: 100,
                free: 0,
            }),
        };
        assert_eq!(
            fit.describe(None),
            "0/3 nodes are available for a pod of task t: 0 of 1 gang pods placeable; \
             3 node(s) didn't match Pod's node selector"
        );
        // With some nodes admitted and short of room, the shortfall is said.
        let mut fit = fit;
        fit.filtered = [
            (FilterReason::NodeSelectorMismatch, 2),
            (FilterReason::Insufficient(ResourceId::CPU), 1),
        ]
        .into();
        assert!(
            fit.describe(None)
                .ends_with("short of 100m cpu (requested 100m, free 0)")
        );
    }

    #[test]
    fn a_failed_bind_says_why_and_when_the_gang_is_tried_again() {
        let pod = PodRef {
            job: "ns/g".into(),
            task: 0,
            index: 1,
        };
        let mut reason = Reason::BindFailed {
            pod,
            message: "node gone".into(),
            failures: 1,
            backoff: Span(0),
            retry_at: None,
        };
        // Before the engine's next cycle has started the backoff: only why.
        assert_eq!(
            reason.to_string(),
            "binding ns/g[task 0 #1] failed: node gone; the gang was undone"
        );
        if let Reason::BindFailed {
            failures,
            backoff,
            retry_at,
            ..
        } = &mut reason
        {
            (*failures, *backoff, *retry_at) = (3, Span(4000), Some(Time(9000)));
        }
        assert_eq!(
            reason.to_string(),
            "binding ns/g[task 0 #1] failed: node gone; the gang was undone and backs off for \
             4.000s (3 failed binds in a row): next try at 9.000s"
        );
        let custom = reason.describe_with(None, &|t: Time| format!("T+{}ms", t.0));
        assert!(custom.ends_with("next try at T+9000ms"), "{custom}");
        let json = serde_json::to_string(&reason).unwrap();
        assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), reason);
        // Written before the backoff existed: still reads.
        let old: Reason = serde_json::from_str(
            r#"{"BindFailed":{"pod":{"job":"ns/g","task":0,"index":1},"message":"x"}}"#,
        )
        .unwrap();
        assert!(matches!(
            old,
            Reason::BindFailed {
                failures: 0,
                retry_at: None,
                ..
            }
        ));
    }

    #[test]
    fn reasons_round_trip_through_json() {
        let fit = FitError {
            task: "worker".into(),
            needed: 8,
            placeable: 3,
            nodes: 10,
            filtered: BTreeMap::from([
                (FilterReason::Insufficient(ResourceId::GPU), 4),
                (
                    FilterReason::UntoleratedTaint(Taint {
                        key: "dedicated".into(),
                        value: "gpu".into(),
                        effect: TaintEffect::NoSchedule,
                    }),
                    6,
                ),
            ]),
            shortfall: Some(Shortfall {
                resource: ResourceId::GPU,
                requested: 8,
                free: 3,
            }),
        };
        let reason = Reason::Unschedulable(fit);
        let json = serde_json::to_string(&reason).unwrap();
        assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), reason);
        let text = reason.to_string();
        assert!(text.starts_with("0/10 nodes are available"), "{text}");
        assert!(
            text.contains(
                "6 node(s) had untolerated taint {dedicated: gpu}, 4 Insufficient nvidia.com/gpu"
            ),
            "{text}"
        );
        assert!(
            text.contains("short of 5 nvidia.com/gpu (requested 8, free 3)"),
            "{text}"
        );
    }
}
