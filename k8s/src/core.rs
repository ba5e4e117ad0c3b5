//! The adapter's state machine, without I/O: it owns the [`Engine`] and a mirror of what the
//! watchers have seen (nodes, pods, PodGroups, Queues), turns each watched change into
//! [`ClusterEvent`]s, and turns each cycle's [`Decision`]s into [`Actions`] for the binder and
//! the status writer. The engine thread drives it; unit tests drive it directly.
//!
//! ```text
//!   watchers ──Input──> Core::ingest ──ClusterEvent──> Engine
//!                                                         │ cycle(now)
//!   binder / status writer <──Actions── Core::cycle <─────┘ Decision
//! ```
//!
//! Jobs: a PodGroup is the job `namespace/name`; a pod with no group is the job
//! `namespace/pod-name`, a gang of one. A job is submitted once it has at least `minMember`
//! ungated pods of ours (until then it waits, with a condition saying so). Each pod gets a stable
//! place in its gang, `PodRef{job, task, index}`: pods with the same task name and the same
//! requests and constraints are one task; a new pod takes the first free index of its task.
//! While no pod of a job is placed, the places are renumbered from scratch (in pod-name order),
//! so a deleted pending pod leaves no hole.
//!
//! A bound pod deleted before it ended counts as evicted (its place is pending again, and its
//! gang is undone if it falls below its minimum), except once another pod of its job has
//! succeeded: then the job is finishing (a Spark driver succeeds and deletes its executors) and
//! the deleted pod counts as succeeded, so the job can succeed and release its dependents.
//!
//! Capacity: every pod bound to a node and not ended counts against it, whoever bound it. Pods
//! the engine does not track (other schedulers' pods, pods of jobs it refused) are subtracted
//! from the node's allocatable before the node goes to the engine.
//!
//! A pod with a `spec.nodeName` is bound, whatever the engine last thought: Kubernetes has no
//! unbind, and deleting a Node object leaves its pods bound to the name until the pod garbage
//! collector deletes them (40 s later, upstream) or the node is created again and its kubelet
//! runs them. So a deleted node whose pods of ours remain stays in the engine as a *ghost*:
//! cordoned, with allocatable equal to what those pods request, so nothing new lands there and
//! their gangs stay whole. The same goes for a pod bound to a node never seen. When the last of
//! its pods is gone the ghost is removed (`NodeRemoved`); when the node comes back it is a node
//! again, with its pods still counted, as kube-scheduler keeps a deleted node's `NodeInfo`
//! while pods remain on it (`pkg/scheduler/backend/cache/cache.go`, `RemoveNode`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Node as K8sNode, Pod};
use kube::api::DynamicObject;
use phalanx_model::{
    ClusterEvent, Decision, EvictReason, Job, PodRef, PodSpec, QueueRecord, QueueSpec, Reason,
    ResourceTable, Resources, Task, Time,
};
use phalanx_scheduler::{
    CycleReport, Engine, EngineConfig, EstimateBasis, JobPhase, PodCounts, PodPhase,
};

use crate::translate::{self, Flavor, GroupRef, GroupSpec, PodInfo, TranslateError};

/// A change one watcher saw.
#[derive(Debug, Clone)]
pub enum Change<K> {
    /// Added or modified.
    Apply(Box<K>),
    /// Deleted.
    Delete(Box<K>),
    /// Objects of a (re)list still arriving, in pages (see [`crate::watch`]): read at once,
    /// applied when the list is complete. `first` marks a list's first page; it drops whatever
    /// an earlier list left unfinished (its watch broke mid-list).
    Page {
        /// This page starts a list.
        first: bool,
        /// The objects.
        objects: Vec<K>,
    },
    /// The last objects of a list: with the pages since its first, a complete list (initial or
    /// after a relist), anything not in it is gone. A list sent whole is one `Relisted`.
    Relisted(Vec<K>),
}

/// A list arriving in pages, kept as each object was read (a translated pod is a fraction of
/// the API object's size), until its last page.
#[derive(Debug)]
struct Listing<T>(Vec<T>);

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Listing(Vec::new())
    }
}

impl<T> Listing<T> {
    /// Takes in a page; the first page of a list drops any list left unfinished.
    fn page(&mut self, first: bool, read: Vec<T>) {
        if first {
            self.0.clear();
        }
        self.0.extend(read);
    }

    /// The complete list: the pages since the first, then `last`.
    fn finish(&mut self, last: Vec<T>) -> Vec<T> {
        let mut all = std::mem::take(&mut self.0);
        all.extend(last);
        all
    }
}

/// Lists arriving in pages, per watched kind.
#[derive(Debug, Default)]
struct Listings {
    nodes: Listing<K8sNode>,
    pods: Listing<PodRead>,
    volcano_groups: Listing<(String, GroupEntry)>,
    scheduler_plugins_groups: Listing<(String, GroupEntry)>,
    upstream_groups: Listing<(String, GroupEntry)>,
    queues: Listing<DynamicObject>,
    priority_classes: Listing<k8s_openapi::api::scheduling::v1::PriorityClass>,
}

impl Listings {
    /// The list of one PodGroup flavour's groups, as read (job name and entry).
    fn groups(&mut self, flavor: Flavor) -> &mut Listing<(String, GroupEntry)> {
        match flavor {
            Flavor::Volcano => &mut self.volcano_groups,
            Flavor::SchedulerPlugins => &mut self.scheduler_plugins_groups,
            Flavor::Upstream => &mut self.upstream_groups,
        }
    }
}

/// A pod as read from its object: translated, or why it could not be.
// Nearly every pod is valid: boxing the large variant would allocate once more per pod.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum PodRead {
    Valid(PodInfo),
    Invalid {
        uid: Option<String>,
        namespace: String,
        name: String,
        /// The job its group keys name.
        job: String,
        error: TranslateError,
    },
}

impl PodRead {
    fn uid(&self) -> Option<&str> {
        match self {
            PodRead::Valid(info) => Some(info.uid.as_str()).filter(|u| !u.is_empty()),
            PodRead::Invalid { uid, .. } => uid.as_deref(),
        }
    }
}

/// Something the engine thread is told.
#[derive(Debug, Clone)]
pub enum Input {
    /// A Node changed.
    Node(Change<K8sNode>),
    /// A Pod changed.
    Pod(Change<Pod>),
    /// A PodGroup changed.
    Group(Flavor, Change<DynamicObject>),
    /// A Volcano Queue changed.
    Queue(Change<DynamicObject>),
    /// A PriorityClass changed (it applies to jobs submitted or changed from then on).
    PriorityClass(Change<k8s_openapi::api::scheduling::v1::PriorityClass>),
    /// A bind failed for good.
    BindFailed {
        /// The pod's place.
        pod: PodRef,
        /// The UID of the pod the bind was for (empty: the place had no pod), for logs.
        uid: String,
        /// What the API server said.
        message: String,
    },
    /// A bind succeeded (the watch will say so too; whichever comes first counts).
    Bound {
        /// The pod's place.
        pod: PodRef,
        /// Its UID.
        uid: String,
        /// The node.
        node: String,
    },
}

/// A pod the API knows, as the binder and status writer address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID (bindings are preconditioned on it).
    pub uid: String,
}

/// One pod of a gang to bind.
#[derive(Debug, Clone, PartialEq)]
pub struct BindItem {
    /// Its place in the gang.
    pub pod: PodRef,
    /// The pod object; `None` when the place has no pod any more (the bind fails at once).
    pub target: Option<PodTarget>,
    /// The node.
    pub node: String,
    /// The pod's creation time, seconds since the epoch (for the end-to-end latency metric).
    pub created: Option<f64>,
}

/// A gang to bind: every pod or, on failure, none stays.
#[derive(Debug, Clone, PartialEq)]
pub struct BindOrder {
    /// Job name.
    pub job: String,
    /// Its queue (for metrics).
    pub queue: String,
    /// The pods.
    pub items: Vec<BindItem>,
    /// When the gang was handed to the engine whole (engine time: milliseconds since the
    /// epoch), for the submission-to-bound latency.
    pub submitted: Option<Time>,
}

/// Pods a cycle evicts from one queue for one reason (for metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// The job evicted.
    pub job: String,
    /// The queue of the gang evicted (its path).
    pub queue: String,
    /// Why (`reclaim`, `preempt`, `gang_bind_failed`, `gang_broken`, `job_failed`).
    pub reason: &'static str,
    /// Pods evicted.
    pub pods: u32,
}

/// An object an event or condition is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectRef {
    /// A PodGroup.
    Group {
        /// Its flavour.
        flavor: Flavor,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A Pod.
    Pod {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A Volcano Queue.
    Queue {
        /// Name.
        name: String,
    },
}

/// A Kubernetes Event to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// About what.
    pub object: ObjectRef,
    /// `Normal` or `Warning`.
    pub warning: bool,
    /// CamelCase reason (`Scheduled`, `FailedScheduling`, `InvalidPodGroup`, ...).
    pub reason: &'static str,
    /// Message.
    pub message: String,
}

/// What a cycle asks the outside world to do.
#[derive(Debug, Clone, Default)]
pub struct Actions {
    /// Gangs to bind.
    pub binds: Vec<BindOrder>,
    /// Pods to delete (owned pods of an undone gang: their controller recreates them).
    pub deletes: Vec<PodTarget>,
    /// Pods to evict through the Eviction API (reclaim, preemption, failed job).
    pub evictions: Vec<PodTarget>,
    /// Events to post.
    pub notices: Vec<Notice>,
    /// Gangs evicted, by queue and reason: one entry per gang.
    pub evicted: Vec<Eviction>,
    /// The cycle's counters.
    pub report: CycleReport,
}

/// A job's state for the status writer, the admin API and metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobStatus {
    /// Its PodGroup, if it has one.
    pub group: Option<ObjectRef>,
    /// Queue path.
    pub queue: String,
    /// `Pending`, `Inqueue`, `Running`, `Completed`, `Failed` (PodGroup phases).
    pub phase: &'static str,
    /// Pods by phase, as the engine counts them.
    pub pods: PodCounts,
    /// Pods Kubernetes reports running, succeeded, failed.
    pub running: u32,
    /// Succeeded pods.
    pub succeeded: u32,
    /// Failed pods.
    pub failed: u32,
    /// Why it is pending (`label`, `message`), if it is.
    pub reason: Option<(String, String)>,
    /// Its pods that wait for a node the engine found no room for (unbound, not gated, not
    /// terminating), while the reason is that no placement exists: they get
    /// `PodScheduled=False`, reason `Unschedulable`, which cluster autoscalers act on.
    pub unplaced: Vec<PodTarget>,
    /// The earliest creation of its pods, seconds since the epoch (how long it has waited).
    pub created: Option<f64>,
    /// The gang was placed at least once (its upstream PodGroup says so, or pods of it ran):
    /// an upstream PodGroup's `PodGroupInitiallyScheduled` stays `True` from then on.
    pub initially_scheduled: bool,
    /// Pods that must be placed together (0 while the engine does not have the job).
    pub min_member: u32,
    /// What all its pods request, by resource name (as [`QueueStatus::allocated`]).
    pub requests: BTreeMap<String, i64>,
    /// Its place in its queue's line (1 goes first), while it waits in the queue.
    pub position: Option<u32>,
    /// When it is expected to start and on what basis: the forecast of declared durations (see
    /// [`phalanx_scheduler::View::forecast`]) where it reaches the job, else the plan of the
    /// room held for it; `None` is unknown.
    pub estimated_start: Option<(Time, EstimateBasis)>,
}

/// An eviction as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvictionRecord {
    /// When (RFC 3339).
    pub time: String,
    /// The job evicted.
    pub job: String,
    /// Its queue (path).
    pub queue: String,
    /// Why, as in metrics (`reclaim`, `preempt`, ...).
    pub reason: &'static str,
    /// Pods evicted.
    pub pods: u32,
    /// Why, in words.
    pub message: String,
}

/// Evictions the admin API keeps, most recent first.
pub const EVICTIONS_KEPT: usize = 200;

/// How often the estimated starts are worked out again (engine time): the forecast runs the
/// engine forward on a copy, so it is not redone every cycle.
pub const FORECAST_INTERVAL: phalanx_model::Span = phalanx_model::Span(5_000);
/// Forward cycles a forecast may take: how far ahead it looks, in instants at which pods end.
pub const FORECAST_MAX_CYCLES: usize = 2_000;

/// A queue's state for the admin API and metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    /// Dotted path.
    pub name: String,
    /// The Volcano Queue object it comes from (`None` for `root`, for parents only implied by
    /// a hierarchy annotation, and for queues of a queue file).
    pub object: Option<String>,
    /// Its parent's path (`None` for `root`).
    pub parent: Option<String>,
    /// `Open`, or `Closed` when it or a parent admits no new jobs (Volcano's `status.state`).
    pub state: &'static str,
    /// Its Queue object has a `status.state` (or cannot be read): the status writer leaves
    /// the state to whoever set it.
    #[serde(skip)]
    pub state_set: bool,
    /// Requests of its pending jobs not placed yet.
    pub pending: BTreeMap<String, i64>,
    /// Its dominant share of the cluster (0 to 1; DRF).
    pub dominant_share: f64,
    /// The resource that share is of.
    pub dominant_resource: Option<String>,
    /// Weight.
    pub weight: u32,
    /// Allocated, by resource name (cpu in millicores, others in units).
    pub allocated: BTreeMap<String, i64>,
    /// Deserved share.
    pub deserved: BTreeMap<String, i64>,
    /// Capability (absent: unlimited).
    pub capability: Option<BTreeMap<String, i64>>,
    /// Guarantee.
    pub guarantee: BTreeMap<String, i64>,
    /// Jobs pending.
    pub pending_jobs: u32,
    /// Jobs running.
    pub running_jobs: u32,
    /// Most common reasons its jobs wait.
    pub top_reasons: Vec<(String, u32)>,
}

/// Everything the API, metrics and status writer read, published after each cycle.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Jobs by name.
    pub jobs: BTreeMap<String, JobStatus>,
    /// Queues in name order.
    pub queues: Vec<QueueStatus>,
    /// The last queue configuration error, if the one in force is an older one.
    pub queue_error: Option<String>,
    /// Recent evictions, most recent first (at most [`EVICTIONS_KEPT`]).
    pub evictions: Vec<EvictionRecord>,
    /// The time of the last cycle.
    pub now: Time,
}

#[derive(Debug, Clone)]
struct NodeEntry {
    node: phalanx_model::Node,
    /// What the engine was last told (allocatable minus foreign).
    sent: Option<Resources>,
    /// No Node object has this name (it was deleted, or never seen) but pods of ours are
    /// bound to it: the engine keeps it, cordoned, with room for exactly those pods, until
    /// they are gone or the node comes back (see the module docs).
    gone: bool,
}

#[derive(Debug, Clone)]
struct PodEntry {
    info: PodInfo,
    /// Its job and place, when it is one of ours in a job.
    place: Option<PodRef>,
    /// Counted on this node as foreign usage.
    foreign: Option<(String, Resources)>,
}

#[derive(Debug, Clone)]
struct TaskSlots {
    name: String,
    spec: PodSpec,
    slots: Vec<Option<String>>,
}

#[derive(Debug, Clone, Default)]
struct JobEntry {
    tasks: Vec<TaskSlots>,
    in_engine: bool,
    /// Why the adapter holds it back (or the engine refused it).
    problem: Option<(&'static str, String)>,
    /// The job as last submitted.
    submitted: Option<Job>,
    /// When it was last handed to the engine after being out of it (the cycle's time).
    submitted_at: Option<Time>,
    group: Option<(Flavor, String, String)>,
}

#[derive(Debug, Clone)]
struct GroupEntry {
    flavor: Flavor,
    uid: String,
    spec: Result<GroupSpec, TranslateError>,
}

/// The adapter's state and the engine. See the module docs.
pub struct Core {
    engine: Engine,
    table: ResourceTable,
    /// The `spec.schedulerName`s it answers to.
    schedulers: BTreeSet<String>,
    nodes: BTreeMap<String, NodeEntry>,
    /// Nodes kept as ghosts (see [`NodeEntry::gone`]).
    ghosts: BTreeSet<String>,
    /// Pods by the node they are bound to (`spec.nodeName`), ours and others'.
    by_node: HashMap<String, BTreeSet<String>>,
    /// Requests of bound pods the engine does not track, by node (also for nodes not seen yet).
    foreign: HashMap<String, Resources>,
    pods: HashMap<String, PodEntry>,
    /// Pods that could not be read, by UID: their job's name and why.
    invalid_pods: HashMap<String, (String, String)>,
    groups: BTreeMap<String, GroupEntry>,
    jobs: BTreeMap<String, JobEntry>,
    queue_objects: BTreeMap<String, Result<translate::VolcanoQueue, TranslateError>>,
    static_queues: Option<Vec<QueueRecord>>,
    volcano_paths: BTreeMap<String, String>,
    /// PriorityClasses, for job priorities.
    priority_classes: translate::PriorityClasses,
    /// PodGroups admitted (`Inqueue`, Volcano's enqueue), since when.
    inqueue: BTreeMap<String, Time>,
    /// PodGroups refused admission, with the last reason told.
    enqueue_refused: BTreeMap<String, String>,
    /// Something changed since admission last ran (it runs then, else once a second).
    enqueue_due: bool,
    /// When admission last ran.
    enqueued_at: Option<Time>,
    /// Per Queue object, the records of its last configuration the engine accepted.
    last_good: BTreeMap<String, Vec<QueueRecord>>,
    /// Per Queue object refused (left out, or held at its last good configuration): why.
    queue_causes: BTreeMap<String, String>,
    queue_error: Option<String>,
    /// Recent evictions, most recent first (at most [`EVICTIONS_KEPT`]).
    evictions: std::collections::VecDeque<EvictionRecord>,
    /// When pending jobs are expected to start (see [`phalanx_scheduler::View::forecast`]),
    /// as of `forecast_at`.
    forecast: BTreeMap<String, Time>,
    forecast_at: Option<Time>,
    /// Paths of the queues whose Queue object is closed (`status.state` `Closed` or `Closing`):
    /// they admit no new jobs.
    closed: BTreeSet<String>,
    queues_dirty: bool,
    /// Lists arriving in pages.
    listings: Listings,
    dirty: BTreeSet<String>,
    nodes_dirty: BTreeSet<String>,
    notices: Vec<Notice>,
    /// The time of the cycle running (or last run): when jobs it submits were submitted.
    clock: Time,
}

/// The scheduler names a [`Core`] answers to: one name, or several.
pub trait SchedulerNames {
    /// The names, as a set.
    fn names(self) -> BTreeSet<String>;
}

impl SchedulerNames for &str {
    fn names(self) -> BTreeSet<String> {
        BTreeSet::from([self.to_string()])
    }
}

impl SchedulerNames for Vec<String> {
    fn names(self) -> BTreeSet<String> {
        self.into_iter().collect()
    }
}

/// How long a PodGroup stays admitted without pods before it is `Pending` again (Volcano's
/// `DefaultInqueueTimeout`, 5 minutes).
pub const INQUEUE_TIMEOUT: phalanx_model::Span = phalanx_model::Span(5 * 60 * 1000);

/// A queue path and its ancestors, the queue first (`root.a.b`, `root.a`, `root`).
fn queue_levels(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(path), |p| p.rsplit_once('.').map(|(parent, _)| parent))
}

fn group_ref(flavor: Flavor, job: &str) -> ObjectRef {
    let (namespace, name) = job.split_once('/').unwrap_or(("default", job));
    ObjectRef::Group {
        flavor,
        namespace: namespace.into(),
        name: name.into(),
    }
}

impl Core {
    /// A core for pods whose `spec.schedulerName` is one of `schedulers` (a name, or a list:
    /// a cluster replacing Volcano answers to `volcano` too). With `static_queues`, the queue
    /// tree comes from them and Volcano Queue objects are ignored.
    pub fn new(
        config: EngineConfig,
        schedulers: impl SchedulerNames,
        static_queues: Option<Vec<QueueRecord>>,
    ) -> Self {
        let mut core = Core {
            engine: Engine::new(config),
            table: ResourceTable::new(),
            schedulers: schedulers.names(),
            nodes: BTreeMap::new(),
            ghosts: BTreeSet::new(),
            by_node: HashMap::new(),
            foreign: HashMap::new(),
            pods: HashMap::new(),
            invalid_pods: HashMap::new(),
            groups: BTreeMap::new(),
            jobs: BTreeMap::new(),
            queue_objects: BTreeMap::new(),
            static_queues,
            volcano_paths: BTreeMap::new(),
            last_good: BTreeMap::new(),
            priority_classes: translate::PriorityClasses::default(),
            inqueue: BTreeMap::new(),
            enqueue_refused: BTreeMap::new(),
            enqueue_due: true,
            enqueued_at: None,
            queue_causes: BTreeMap::new(),
            queue_error: None,
            closed: BTreeSet::new(),
            evictions: Default::default(),
            forecast: BTreeMap::new(),
            forecast_at: None,
            queues_dirty: true,
            listings: Listings::default(),
            dirty: BTreeSet::new(),
            nodes_dirty: BTreeSet::new(),
            notices: Vec::new(),
            clock: Time::ZERO,
        };
        core.configure_queues();
        core
    }

    /// The engine, read-only.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The resource names in use.
    pub fn table(&self) -> &ResourceTable {
        &self.table
    }

    /// Takes in one change. Events reach the engine at once for pods and nodes; jobs and queues
    /// are brought up to date once per batch, in [`Core::cycle`] (or [`Core::flush`]).
    pub fn ingest(&mut self, input: Input) {
        match input {
            Input::Node(c) => self.node_change(c),
            Input::Pod(c) => self.pod_change(c),
            Input::Group(flavor, c) => self.group_change(flavor, c),
            Input::Queue(c) => self.queue_change(c),
            Input::PriorityClass(c) => match c {
                Change::Apply(pc) => self.priority_classes.apply(&pc),
                Change::Delete(pc) => {
                    if let Some(name) = &pc.metadata.name {
                        self.priority_classes.remove(name);
                    }
                }
                Change::Page { first, objects } => {
                    self.listings.priority_classes.page(first, objects)
                }
                Change::Relisted(last) => {
                    let list = self.listings.priority_classes.finish(last);
                    self.priority_classes = translate::PriorityClasses::default();
                    for pc in &list {
                        self.priority_classes.apply(pc);
                    }
                }
            },
            Input::BindFailed { pod, uid, message } => {
                if let Some(node) = self
                    .pod_at(&pod)
                    .filter(|e| e.info.uid == uid)
                    .and_then(|e| e.info.node.clone())
                {
                    // The API says the pod is bound (a 409 after a bind that went through, or
                    // bound by someone else): it is, wherever the engine placed it.
                    self.apply(ClusterEvent::PodBound { pod, node });
                    return;
                }
                // Whatever pod holds the place now, the assumption the bind was for is void.
                // (`Releasing`: its gang was undone while the bind was in flight; the engine
                // lets its room go now.)
                match self.engine.view().pod(&pod) {
                    Some((PodPhase::Assumed, _)) => {
                        let job = pod.job.clone();
                        self.apply(ClusterEvent::BindFailed { pod, message });
                        tracing::warn!(job = %job, pod_uid = %uid, "bind failed; gang forgotten, retried after a backoff");
                    }
                    Some((PodPhase::Releasing, _)) => {
                        // Settled: a restarted job waits for that (see `reopen`).
                        self.dirty.insert(pod.job.clone());
                        self.apply(ClusterEvent::BindFailed { pod, message });
                    }
                    _ => {}
                }
            }
            Input::Bound { pod, uid, node } => {
                if self.pod_at(&pod).is_some_and(|e| e.info.uid == uid)
                    && let Some((
                        phase @ (PodPhase::Assumed | PodPhase::Pending | PodPhase::Releasing),
                        _,
                    )) = self.engine.view().pod(&pod)
                {
                    if phase == PodPhase::Releasing {
                        // A bind in flight at an undo landed: settled (see `reopen`).
                        self.dirty.insert(pod.job.clone());
                    }
                    self.apply(ClusterEvent::PodBound { pod, node });
                }
            }
        }
    }

    fn pod_at(&self, pod: &PodRef) -> Option<&PodEntry> {
        let uid = self
            .jobs
            .get(&pod.job)?
            .tasks
            .get(pod.task as usize)?
            .slots
            .get(pod.index as usize)?
            .as_ref()?;
        self.pods.get(uid)
    }

    fn apply(&mut self, event: ClusterEvent) -> bool {
        let r = self.engine.apply(event.clone());
        self.check_accounting(&event);
        match r {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, ?event, "engine refused an event");
                false
            }
        }
    }

    fn check_accounting(&self, after: &dyn std::fmt::Debug) {
        if tracing::enabled!(tracing::Level::TRACE) {
            let errors = self.engine.view().accounting_errors();
            if !errors.is_empty() {
                tracing::error!(?after, ?errors, "queue accounting broke");
            }
        }
    }

    fn node_change(&mut self, change: Change<K8sNode>) {
        match change {
            Change::Apply(n) => self.node_upsert(&n),
            Change::Delete(n) => {
                let name = n.metadata.name.unwrap_or_default();
                self.node_deleted(name);
            }
            Change::Page { first, objects } => self.listings.nodes.page(first, objects),
            Change::Relisted(last) => {
                let list = self.listings.nodes.finish(last);
                let names: BTreeSet<String> = list
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                let gone: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|(n, e)| !e.gone && !names.contains(*n))
                    .map(|(n, _)| n.clone())
                    .collect();
                for name in gone {
                    self.node_deleted(name);
                }
                for n in &list {
                    self.node_upsert(n);
                }
            }
        }
    }

    fn node_upsert(&mut self, n: &K8sNode) {
        match translate::node(n, &mut self.table) {
            Ok(node) => {
                let name = node.name.clone();
                let entry = self.nodes.entry(name.clone()).or_insert(NodeEntry {
                    node: node.clone(),
                    sent: None,
                    gone: false,
                });
                if entry.node != node || entry.sent.is_none() || entry.gone {
                    if entry.gone {
                        tracing::info!(node = %name, "node is back; the pods still bound to it count");
                    }
                    entry.node = node;
                    entry.sent = None;
                    entry.gone = false;
                    self.ghosts.remove(&name);
                    self.nodes_dirty.insert(name);
                }
            }
            Err(e) => tracing::warn!(error = %e, "node ignored"),
        }
    }

    /// The Node object is gone; its pods may not be (see the module docs).
    fn node_deleted(&mut self, name: String) {
        let Some(entry) = self.nodes.get_mut(&name) else {
            return;
        };
        if !entry.gone {
            entry.gone = true;
            entry.sent = None;
            self.ghosts.insert(name.clone());
            self.send_node(&name);
        }
    }

    /// What the non-finished pods of ours bound to `node` request, as Kubernetes says.
    fn bound_to(&self, node: &str) -> Resources {
        let mut total = Resources::ZERO;
        for uid in self.by_node.get(node).into_iter().flatten() {
            if let Some(p) = self.pods.get(uid)
                && p.place.is_some()
                && !p.info.finished()
            {
                let mut r = p.info.spec.requests;
                r.set(phalanx_model::ResourceId::PODS, 1);
                total += r;
            }
        }
        total
    }

    /// Tells the engine about a ghost: room for what is bound to it (and for binds still in
    /// flight there), cordoned; or removes it once nothing is.
    fn send_ghost(&mut self, name: &str) {
        let bound = self.bound_to(name);
        let in_engine = self.engine.view().node(name).filter(|n| n.live);
        let held = in_engine
            .as_ref()
            .map(|n| n.allocated + n.reserved)
            .unwrap_or_default();
        if bound.is_zero() && held.is_zero() {
            self.nodes.remove(name);
            self.ghosts.remove(name);
            if in_engine.is_some() {
                tracing::info!(node = %name, "node gone and no pod of ours is bound to it any more");
                self.apply(ClusterEvent::NodeRemoved { node: name.into() });
            }
            return;
        }
        let allocatable = bound.max(&held);
        let Some(entry) = self.nodes.get_mut(name) else {
            return;
        };
        if entry.sent == Some(allocatable) {
            return;
        }
        entry.sent = Some(allocatable);
        let mut node = entry.node.clone();
        node.allocatable = allocatable;
        node.unschedulable = true;
        self.apply(ClusterEvent::NodeUpserted(node));
    }

    fn send_node(&mut self, name: &str) {
        if self.ghosts.contains(name) {
            self.send_ghost(name);
            return;
        }
        let Some(entry) = self.nodes.get_mut(name) else {
            return;
        };
        let mut allocatable = entry.node.allocatable;
        if let Some(f) = self.foreign.get(name) {
            allocatable -= *f;
        }
        if entry.sent == Some(allocatable) {
            return;
        }
        entry.sent = Some(allocatable);
        let mut node = entry.node.clone();
        node.allocatable = allocatable;
        self.apply(ClusterEvent::NodeUpserted(node));
    }

    fn set_foreign(&mut self, uid: &str, holds: Option<(String, Resources)>) {
        let Some(entry) = self.pods.get_mut(uid) else {
            return;
        };
        if entry.foreign == holds {
            return;
        }
        if let Some((node, r)) = entry.foreign.take() {
            if let Some(f) = self.foreign.get_mut(&node) {
                *f -= r;
                if f.is_zero() {
                    self.foreign.remove(&node);
                }
            }
            self.nodes_dirty.insert(node);
        }
        if let Some((node, r)) = &holds {
            *self.foreign.entry(node.clone()).or_insert(Resources::ZERO) += *r;
            self.nodes_dirty.insert(node.clone());
        }
        self.pods.get_mut(uid).expect("checked above").foreign = holds;
    }

    fn pod_change(&mut self, change: Change<Pod>) {
        match change {
            Change::Apply(p) => self.pod_upsert(&p),
            Change::Delete(p) => {
                if let Some(uid) = p.metadata.uid.as_deref() {
                    self.invalid_pods.remove(uid);
                    self.pod_remove(uid);
                }
            }
            Change::Page { first, objects } => {
                let read = objects.iter().map(|p| self.read_pod(p)).collect();
                self.listings.pods.page(first, read);
            }
            Change::Relisted(last) => {
                let read = last.iter().map(|p| self.read_pod(p)).collect();
                let list = self.listings.pods.finish(read);
                let uids: BTreeSet<&str> = list.iter().filter_map(PodRead::uid).collect();
                let gone: Vec<String> = self
                    .pods
                    .keys()
                    .filter(|u| !uids.contains(u.as_str()))
                    .cloned()
                    .collect();
                for uid in gone {
                    self.pod_remove(&uid);
                }
                self.invalid_pods.retain(|u, _| uids.contains(u.as_str()));
                for read in list {
                    self.pod_apply(read);
                }
            }
        }
    }

    fn job_of(&self, info: &PodInfo) -> String {
        translate::pod_job(&info.namespace, &info.name, &info.group)
    }

    fn pod_upsert(&mut self, p: &Pod) {
        let read = self.read_pod(p);
        self.pod_apply(read);
    }

    /// Reads a pod's object: what the adapter keeps of it.
    fn read_pod(&mut self, p: &Pod) -> PodRead {
        match translate::pod(p, &mut self.table) {
            Ok(info) => PodRead::Valid(info),
            Err(error) => {
                let namespace = p
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into());
                let name = p.metadata.name.clone().unwrap_or_default();
                let job = translate::pod_job(&namespace, &name, &translate::pod_group_ref(p));
                PodRead::Invalid {
                    uid: p.metadata.uid.clone(),
                    namespace,
                    name,
                    job,
                    error,
                }
            }
        }
    }

    fn pod_apply(&mut self, read: PodRead) {
        let info = match read {
            PodRead::Valid(info) => {
                self.invalid_pods.remove(&info.uid);
                info
            }
            PodRead::Invalid {
                uid,
                namespace,
                name,
                job,
                error,
            } => {
                tracing::warn!(error = %error, "pod ignored");
                self.warn(
                    ObjectRef::Pod { namespace, name },
                    "InvalidPod",
                    error.to_string(),
                );
                // Kept, so the jobs API can say why the job does not start.
                if let Some(uid) = uid {
                    self.invalid_pods.insert(uid, (job, error.to_string()));
                }
                return;
            }
        };
        let uid = info.uid.clone();
        let ours = self.schedulers.contains(&info.scheduler);
        let prev_place = self.pods.get(&uid).and_then(|e| e.place.clone());
        let prev_node = self.pods.get(&uid).and_then(|e| e.info.node.clone());
        if prev_node != info.node {
            self.index_node(&uid, prev_node.as_deref(), info.node.as_deref());
        }
        let entry = self.pods.entry(uid.clone()).or_insert(PodEntry {
            info: info.clone(),
            place: None,
            foreign: None,
        });
        entry.info = info.clone();
        // A pod joins its job once it is ours and ungated; it never changes job. A pod that
        // ended after it was bound joins too (seen first after a restart): it is one of the
        // gang's members that ran, so the job is known as started, its running members stay
        // counted against its queue, and a member's failure means what it meant before. So does
        // a bound pod whose deletion has begun (evicted from a node gone NotReady, seen first
        // after a restart): it holds its node and its queue's quota until it is gone, as it
        // would had its deletion begun while we watched. A pod being deleted that is not bound
        // is never placed.
        let joins = info.node.is_some() || (!info.terminating && !info.finished());
        let place = match prev_place {
            Some(place) => Some(place),
            None if ours && !info.gated && joins => {
                let job = self.job_of(&info);
                let place = self.take_slot(&job, &info);
                self.dirty.insert(job);
                self.pods.get_mut(&uid).expect("inserted").place = Some(place.clone());
                Some(place)
            }
            None => None,
        };
        if let Some(place) = &place
            && prev_node.is_none()
            && info.node.is_some()
            && self
                .engine
                .view()
                .job(&place.job)
                .is_some_and(|j| j.phase == JobPhase::Failed)
        {
            // The watch caught up with a bind: a restarted job may wait for that (see
            // `restarted_after_failure`).
            self.dirty.insert(place.job.clone());
        }
        self.sync_pod(&uid, place);
    }

    /// Tells the engine what Kubernetes says about a pod with a place, and counts pods the
    /// engine does not track against their node.
    fn sync_pod(&mut self, uid: &str, place: Option<PodRef>) {
        let Some(entry) = self.pods.get(uid) else {
            return;
        };
        let info = entry.info.clone();
        let tracked = place.as_ref().and_then(|p| {
            self.engine
                .view()
                .pod(p)
                .map(|(phase, _)| (p.clone(), phase))
        });
        let Some((pod, phase)) = tracked else {
            let holds = info
                .holds_node()
                .then(|| (info.node.clone().unwrap_or_default(), info.spec.requests));
            self.set_foreign(
                uid,
                holds.map(|(n, mut r)| {
                    r.set(phalanx_model::ResourceId::PODS, 1);
                    (n, r)
                }),
            );
            return;
        };
        self.set_foreign(uid, None);
        let finished = info.finished();
        let succeeded = info.state == PodState::Succeeded;
        match (&info.node, phase) {
            (Some(node), PodPhase::Pending | PodPhase::Assumed) => {
                if !self.nodes.contains_key(node) && !finished {
                    // Bound to a node with no Node object (deleted before we started, or its
                    // event is late): a ghost holds the pod's room until either is settled.
                    tracing::info!(node = %node, pod = %info.name, "pod bound to a node not seen; kept as a ghost");
                    self.nodes.insert(
                        node.clone(),
                        NodeEntry {
                            node: phalanx_model::Node::new(node.clone(), Resources::ZERO),
                            sent: None,
                            gone: true,
                        },
                    );
                    self.ghosts.insert(node.clone());
                    self.send_ghost(node);
                }
                let bound = self.apply(ClusterEvent::PodBound {
                    pod: pod.clone(),
                    node: node.clone(),
                });
                if finished {
                    // Ended before we saw it bound (a restart): adopted, then finished; or, on a
                    // node the engine cannot take, finished where it is, never placed again.
                    self.apply(ClusterEvent::PodFinished { pod, succeeded });
                } else if !bound {
                    // The engine cannot take it (its node is unknown): count it as foreign.
                    let mut r = info.spec.requests;
                    r.set(phalanx_model::ResourceId::PODS, 1);
                    self.set_foreign(uid, Some((node.clone(), r)));
                }
            }
            (_, PodPhase::Bound | PodPhase::Releasing) if finished => {
                self.apply(ClusterEvent::PodFinished { pod, succeeded });
            }
            (Some(node), PodPhase::Releasing) => {
                // Its gang was undone while its bind was in flight, and it went through (the
                // engine then evicts it unless the gang is whole); a pod being evicted is
                // already bound there, and nothing changes.
                self.apply(ClusterEvent::PodBound {
                    pod: pod.clone(),
                    node: node.clone(),
                });
                if !matches!(self.engine.view().pod(&pod), Some((PodPhase::Releasing, _))) {
                    // Settled: a restarted job waits for that (see `reopen`).
                    self.dirty.insert(pod.job);
                }
            }
            _ => {}
        }
    }

    fn take_slot(&mut self, job: &str, info: &PodInfo) -> PodRef {
        let entry = self.jobs.entry(job.to_string()).or_default();
        let (task, index) = place_in(&mut entry.tasks, &info.task, &info.spec, &info.uid);
        PodRef {
            job: job.to_string(),
            task,
            index,
        }
    }

    /// Moves a pod in the by-node index; a ghost it leaves is brought up to date.
    fn index_node(&mut self, uid: &str, from: Option<&str>, to: Option<&str>) {
        if let Some(from) = from
            && let Some(set) = self.by_node.get_mut(from)
        {
            set.remove(uid);
            if set.is_empty() {
                self.by_node.remove(from);
            }
            if self.ghosts.contains(from) {
                self.nodes_dirty.insert(from.to_string());
            }
        }
        if let Some(to) = to {
            self.by_node
                .entry(to.to_string())
                .or_default()
                .insert(uid.to_string());
        }
    }

    fn pod_remove(&mut self, uid: &str) {
        self.set_foreign(uid, None);
        let node = self.pods.get(uid).and_then(|e| e.info.node.clone());
        self.index_node(uid, node.as_deref(), None);
        let Some(entry) = self.pods.remove(uid) else {
            return;
        };
        let Some(place) = entry.place else { return };
        if let Some((phase @ (PodPhase::Assumed | PodPhase::Bound | PodPhase::Releasing), _)) =
            self.engine.view().pod(&place)
        {
            let finishing = self
                .engine
                .view()
                .job(&place.job)
                .is_some_and(|j| j.pods.succeeded > 0);
            if finishing
                && phase == PodPhase::Bound
                && !entry.info.finished()
                && !entry.info.disrupted
            {
                // Another pod of the job succeeded: the job is finishing (a Spark driver ends
                // and deletes its executors), so a pod deleted now has done its part. Not one
                // marked disrupted (evicted from a node gone NotReady, preempted): that one
                // was stopped, and its controller may well replace it.
                self.apply(ClusterEvent::PodFinished {
                    pod: place.clone(),
                    succeeded: true,
                });
            } else {
                self.apply(ClusterEvent::PodEvicted { pod: place.clone() });
            }
        }
        if let Some(j) = self.jobs.get_mut(&place.job)
            && let Some(slot) = j
                .tasks
                .get_mut(place.task as usize)
                .and_then(|t| t.slots.get_mut(place.index as usize))
        {
            *slot = None;
        }
        self.dirty.insert(place.job);
    }

    fn group_change(&mut self, flavor: Flavor, change: Change<DynamicObject>) {
        match change {
            Change::Apply(o) => self.group_upsert(flavor, &o),
            Change::Delete(o) => {
                let ns = o.metadata.namespace.clone().unwrap_or_default();
                let job = translate::job_name(&ns, &o.metadata.name.clone().unwrap_or_default());
                if self.groups.get(&job).is_some_and(|g| g.flavor == flavor) {
                    self.groups.remove(&job);
                    self.dirty.insert(job);
                }
            }
            Change::Page { first, objects } => {
                let read = objects.iter().map(|o| self.read_group(flavor, o)).collect();
                self.listings.groups(flavor).page(first, read);
            }
            Change::Relisted(last) => {
                let read = last.iter().map(|o| self.read_group(flavor, o)).collect();
                let list = self.listings.groups(flavor).finish(read);
                let names: BTreeSet<&String> = list.iter().map(|(job, _)| job).collect();
                let gone: Vec<String> = self
                    .groups
                    .iter()
                    .filter(|(j, g)| g.flavor == flavor && !names.contains(*j))
                    .map(|(j, _)| j.clone())
                    .collect();
                for job in gone {
                    self.groups.remove(&job);
                    self.dirty.insert(job);
                }
                for (job, entry) in list {
                    self.group_apply(job, entry);
                }
            }
        }
    }

    fn group_upsert(&mut self, flavor: Flavor, o: &DynamicObject) {
        let (job, entry) = self.read_group(flavor, o);
        self.group_apply(job, entry);
    }

    /// Reads a PodGroup's object: its job's name and what the adapter keeps of it.
    fn read_group(&mut self, flavor: Flavor, o: &DynamicObject) -> (String, GroupEntry) {
        let spec = translate::pod_group(o, flavor, &mut self.table, &self.volcano_paths);
        let job = match &spec {
            Ok(s) => s.job.clone(),
            Err(e) => e.object.clone(),
        };
        let uid = o.metadata.uid.clone().unwrap_or_default();
        (job, GroupEntry { flavor, uid, spec })
    }

    fn group_apply(&mut self, job: String, entry: GroupEntry) {
        let flavor = entry.flavor;
        let changed = self
            .groups
            .get(&job)
            .is_none_or(|g| g.spec != entry.spec || g.uid != entry.uid);
        if changed {
            if let Err(e) = &entry.spec {
                tracing::warn!(job = %job, error = %e, "invalid PodGroup");
                self.warn(group_ref(flavor, &job), "InvalidPodGroup", e.to_string());
            }
            self.groups.insert(job.clone(), entry);
            self.dirty.insert(job);
        }
    }

    fn queue_change(&mut self, change: Change<DynamicObject>) {
        match change {
            Change::Apply(o) => {
                let name = o.metadata.name.clone().unwrap_or_default();
                let parsed = translate::volcano_queue(&o);
                if self.queue_objects.get(&name) != Some(&parsed) {
                    self.queue_objects.insert(name, parsed);
                    self.queues_dirty = true;
                }
            }
            Change::Delete(o) => {
                let name = o.metadata.name.clone().unwrap_or_default();
                if self.queue_objects.remove(&name).is_some() {
                    self.queues_dirty = true;
                }
            }
            Change::Page { first, objects } => self.listings.queues.page(first, objects),
            Change::Relisted(last) => {
                let list = self.listings.queues.finish(last);
                let fresh: BTreeMap<String, _> = list
                    .iter()
                    .map(|o| {
                        (
                            o.metadata.name.clone().unwrap_or_default(),
                            translate::volcano_queue(o),
                        )
                    })
                    .collect();
                if fresh != self.queue_objects {
                    self.queue_objects = fresh;
                    self.queues_dirty = true;
                }
            }
        }
    }

    /// Rebuilds the queue tree from the Queue objects (or the static configuration), following
    /// `spec.parent` chains across all of them. An invalid configuration (a bad field, a parent
    /// that does not exist, a parent chain that loops) is refused whole, with an event on the
    /// Queue it names; the previous one stays in force, and so do the paths PodGroups' queue
    /// names map to.
    /// Builds the queue tree from the Queue objects (or the static file) and hands it to the
    /// engine. A Queue that cannot be used (bad field, broken parent chain, or refused by the
    /// tree's checks) is refused alone with its subtree: it keeps its last good configuration
    /// if it had one, or is left out, and every other queue is applied.
    fn configure_queues(&mut self) {
        if !std::mem::take(&mut self.queues_dirty) {
            return;
        }
        self.enqueue_due = true;
        // Per Queue object: its records (implied parents first, itself last).
        let mut chosen: BTreeMap<String, Vec<QueueRecord>> = BTreeMap::new();
        let mut fresh: BTreeSet<String> = BTreeSet::new();
        // Per Queue object at fault: what is wrong with it.
        let mut problems: BTreeMap<String, String> = BTreeMap::new();
        // Per Queue object left out or held at its last good configuration: the cause.
        let mut causes: BTreeMap<String, String> = BTreeMap::new();
        match &self.static_queues {
            Some(list) => {
                for r in list {
                    chosen.insert(r.name.clone(), vec![r.clone()]);
                }
            }
            None => {
                for (name, resolved) in translate::resolve_parents(&self.queue_objects) {
                    let usable = resolved
                        .map_err(|e| (e.object.clone(), e.to_string()))
                        .and_then(|list| {
                            let mut scratch = self.table.clone();
                            match list.iter().find_map(|r| r.to_spec(&mut scratch).err()) {
                                Some(e) => Err((name.clone(), e.to_string())),
                                None => Ok(list),
                            }
                        });
                    match usable {
                        Ok(list) => {
                            fresh.insert(name.clone());
                            chosen.insert(name, list);
                        }
                        Err((object, message)) => {
                            causes.insert(name.clone(), message.clone());
                            problems.entry(object).or_insert(message);
                            if let Some(previous) = self.last_good.get(&name) {
                                chosen.insert(name, previous.clone());
                            }
                        }
                    }
                }
            }
        }
        // The tree's own checks span queues: the queue an error names is refused in turn.
        let accepted = loop {
            let mut records: BTreeMap<String, QueueRecord> = BTreeMap::new();
            for list in chosen.values() {
                for r in &list[..list.len().saturating_sub(1)] {
                    records.entry(r.name.clone()).or_insert_with(|| r.clone());
                }
            }
            for list in chosen.values() {
                if let Some(last) = list.last() {
                    records.insert(last.name.clone(), last.clone());
                }
            }
            records
                .entry(phalanx_model::DEFAULT_QUEUE.to_string())
                .or_insert_with(|| QueueRecord::new(phalanx_model::DEFAULT_QUEUE));
            let specs: Result<Vec<QueueSpec>, String> = records
                .values()
                .map(|r| r.to_spec(&mut self.table).map_err(|e| e.to_string()))
                .collect();
            let refused = match specs {
                Ok(specs) => {
                    let r = self.engine.apply(ClusterEvent::QueuesConfigured(specs));
                    self.check_accounting(&"QueuesConfigured");
                    match r {
                        Ok(()) => break true,
                        Err(e) => e.to_string(),
                    }
                }
                Err(e) => e,
            };
            // The error names the queue by path; find the object it came from.
            let culprit = chosen
                .iter()
                .filter_map(|(o, list)| list.last().map(|r| (o, r.name.as_str())))
                .filter(|(_, path)| refused.contains(path))
                .max_by_key(|(_, path)| path.len())
                .map(|(o, _)| o.clone())
                .filter(|o| fresh.contains(o));
            let Some(culprit) = culprit else {
                // Nothing left to take out: the whole change is refused.
                let object = self
                    .static_queues
                    .as_ref()
                    .and_then(|l| l.iter().find(|r| refused.contains(&r.name)))
                    .map(|r| queue_object(&r.name))
                    .unwrap_or_else(|| "queues".into());
                problems.entry(object).or_insert(refused);
                break false;
            };
            fresh.remove(&culprit);
            causes.insert(culprit.clone(), refused.clone());
            problems.insert(culprit.clone(), refused);
            match self.last_good.get(&culprit) {
                Some(previous) => chosen.insert(culprit, previous.clone()),
                None => chosen.remove(&culprit),
            };
        };
        for (object, message) in &problems {
            tracing::warn!(queue = %object, error = %message, "queue refused; the other queues are applied");
            let kept = if self.last_good.contains_key(object) {
                "its previous configuration stays in force"
            } else {
                "it is not configured"
            };
            self.warn(
                ObjectRef::Queue {
                    name: object.clone(),
                },
                "InvalidQueue",
                format!("{message}; {kept}"),
            );
        }
        self.queue_error = problems.values().next().cloned();
        self.queue_causes = causes;
        if !accepted {
            return;
        }
        let paths: BTreeMap<String, String> = chosen
            .iter()
            .filter_map(|(o, list)| list.last().map(|r| (o.clone(), r.name.clone())))
            .collect();
        for object in fresh {
            if let Some(list) = chosen.get(&object) {
                self.last_good.insert(object, list.clone());
            }
        }
        self.last_good.retain(|o, _| chosen.contains_key(o));
        if self.static_queues.is_none() && paths != self.volcano_paths {
            self.volcano_paths = paths;
            // Groups name queues by object name; a hierarchy change moves their path.
            let groups: Vec<String> = self.groups.keys().cloned().collect();
            self.dirty.extend(groups);
        }
        let closed: BTreeSet<String> = self
            .queue_objects
            .iter()
            .filter(|(_, q)| q.as_ref().is_ok_and(|q| !q.open))
            .filter_map(|(object, _)| self.volcano_paths.get(object).cloned())
            .collect();
        if closed != self.closed {
            self.closed = closed;
            // Jobs not placed yet in a queue that closed leave the engine; in one that opened
            // they come back.
            let jobs: Vec<String> = self.jobs.keys().cloned().collect();
            self.dirty.extend(jobs);
        }
    }

    /// The closed queue a job in queue `path` is in, if it or one of its parents is closed.
    fn closed_level<'p>(&self, path: &'p str) -> Option<&'p str> {
        queue_levels(path).find(|l| self.closed.contains(*l))
    }

    /// Brings queues, nodes and jobs up to date with the changes ingested so far.
    pub fn flush(&mut self) {
        self.configure_queues();
        if self.queues_dirty {
            self.configure_queues();
        }
        // A ghost shrinks as its pods end or leave, and goes once they all have.
        self.nodes_dirty.extend(self.ghosts.iter().cloned());
        // Group specs read queue paths; re-read those whose queue moved.
        for node in std::mem::take(&mut self.nodes_dirty) {
            self.send_node(&node);
        }
        self.enqueue_due |= !self.dirty.is_empty();
        for job in std::mem::take(&mut self.dirty) {
            self.sync_job(&job);
        }
        // Pods bound or finished before their job was submitted are told now.
        for node in std::mem::take(&mut self.nodes_dirty) {
            self.send_node(&node);
        }
    }

    fn sync_job(&mut self, name: &str) {
        let group_name = name.split_once('/').map(|(_, n)| n).unwrap_or(name);
        let group = self.groups.get(name).cloned();
        let Some(entry) = self.jobs.get(name) else {
            return;
        };
        let has_pods = entry
            .tasks
            .iter()
            .any(|t| t.slots.iter().any(Option::is_some));
        let pod_names_group = self.any_pod(name, |i| matches!(i.group, GroupRef::Group(..)));
        // Events, conditions and status go to the PodGroup only if it exists: a group the
        // pods name but nobody created cannot be written to, so its pods are told.
        let gref = group.as_ref().map(|g| group_ref(g.flavor, name));
        if !has_pods {
            // No pods of it are left (or there never were): the engine forgets it.
            if entry.in_engine {
                self.apply(ClusterEvent::JobDeleted {
                    job: name.to_string(),
                });
            }
            if group.is_none() {
                self.jobs.remove(name);
            } else if let Some(e) = self.jobs.get_mut(name) {
                e.in_engine = false;
                e.submitted = None;
                e.problem = Some(("WaitingForPods", "no pods of ours yet".into()));
            }
            return;
        }
        let spec: Result<GroupSpec, (&'static str, String)> = match (&group, pod_names_group) {
            (Some(g), _) => g
                .spec
                .clone()
                .map(|mut s| {
                    // With the queue paths in force now, not those it was read with.
                    s.queue =
                        translate::volcano_queue_path(s.queue_name.as_deref(), &self.volcano_paths);
                    s
                })
                .map_err(|e| ("InvalidPodGroup", e.to_string())),
            (None, true) => Err((
                "PodGroupNotFound",
                format!(
                    "pods name PodGroup {name} ({}), which does not exist",
                    group_name
                ),
            )),
            (None, false) if self.any_pod(name, |i| matches!(i.group, GroupRef::Pods { .. })) => {
                // A gang its pods define (Kueue plain-pod group, Volcano's default group): every
                // pod must state the same valid minimum.
                let mut min_member: Option<Result<u32, String>> = None;
                for i in self.pods_of(name) {
                    let GroupRef::Pods { min_member: n, .. } = &i.group else {
                        continue;
                    };
                    min_member = Some(match (min_member, n) {
                        (None, n) | (Some(Ok(_)), n @ Err(_)) => n.clone(),
                        (Some(Ok(m)), Ok(n)) if m != *n => Err(format!(
                            "its pods disagree on the group's size ({m} and {n})"
                        )),
                        (Some(done), _) => done,
                    });
                }
                min_member
                    .expect("checked above")
                    .map(|min_member| self.group_of_pods(name, min_member))
                    .map_err(|m| ("InvalidPodGroup", m))
            }
            (None, false) => Ok(self.group_of_pods(name, 1)),
        };
        let engine_view = self.engine.view();
        let placed = engine_view.job(name).is_some_and(|j| {
            j.pods.unfinished() != j.pods.pending || j.pods.succeeded + j.pods.failed > 0
        });
        let spec = match spec {
            Ok(s) if !placed => match self.closed_level(&s.queue) {
                Some(level) => {
                    let object = queue_object(level);
                    Err((
                        "QueueClosed",
                        format!(
                            "queue {level} is closed (Queue {object} status.state); it admits no new jobs until it is open again (phalanx queue open {object})"
                        ),
                    ))
                }
                None => Ok(s),
            },
            other => other,
        };
        let entry = self.jobs.get_mut(name).expect("checked above");
        entry.group = gref.as_ref().map(|g| match g {
            ObjectRef::Group {
                flavor,
                namespace,
                name,
            } => (*flavor, namespace.clone(), name.clone()),
            _ => unreachable!("group refs are groups"),
        });
        if !placed {
            compact(&mut entry.tasks, &self.pods);
        }
        let pods: u32 = entry
            .tasks
            .iter()
            .map(|t| t.slots.iter().filter(|s| s.is_some()).count() as u32)
            .sum();
        let spec = match spec {
            Ok(s) if pods < s.min_member && !placed => Err((
                "WaitingForPods",
                format!(
                    "{pods} of minMember {} pods exist; the gang waits for the rest",
                    s.min_member
                ),
            )),
            other => other,
        };
        let spec = match spec {
            Ok(s) => s,
            Err((reason, message)) => {
                let newly = entry.problem.as_ref().map(|p| &p.1) != Some(&message);
                entry.problem = Some((reason, message.clone()));
                let was_in = std::mem::replace(&mut entry.in_engine, false);
                entry.submitted = None;
                if was_in && !placed {
                    self.apply(ClusterEvent::JobDeleted {
                        job: name.to_string(),
                    });
                } else if was_in {
                    // Its pods are placed: keep it in the engine as it is.
                    self.jobs.get_mut(name).expect("exists").in_engine = true;
                }
                if newly && reason != "WaitingForPods" {
                    tracing::warn!(job = %name, reason, %message, "job held back");
                    self.warn_job(name, gref.clone(), reason, message);
                }
                self.resync_pods(name);
                return;
            }
        };
        let created = self
            .jobs
            .get(name)
            .into_iter()
            .flat_map(|e| e.tasks.iter().flat_map(|t| t.slots.iter().flatten()))
            .filter_map(|u| self.pods.get(u).and_then(|p| p.info.created))
            .fold(f64::INFINITY, f64::min);
        let first = self.first_pod(name);
        let priority = translate::job_priority(
            spec.priority_class.as_deref(),
            first.and_then(|i| i.priority),
            first.and_then(|i| i.priority_class.as_deref()),
            &self.priority_classes,
        );
        let entry = self.jobs.get_mut(name).expect("exists");
        let job = Job {
            name: name.to_string(),
            queue: spec.queue.clone(),
            priority,
            min_member: spec.min_member,
            min_resources: spec.min_resources,
            tasks: entry
                .tasks
                .iter()
                .map(|t| Task {
                    name: t.name.clone(),
                    replicas: t.slots.len() as u32,
                    min_member: spec.min_task_member.get(&t.name).copied().unwrap_or(0),
                    pod: t.spec.clone(),
                })
                .collect(),
            depends_on: spec.depends_on.clone(),
            submit_time: if created.is_finite() {
                Time::from_secs_f64(created.max(0.0))
            } else {
                Time::ZERO
            },
        };
        if entry.in_engine && self.restarted_after_failure(name) {
            self.reopen(name, gref);
            return;
        }
        let entry = self.jobs.get_mut(name).expect("exists");
        if entry.in_engine && entry.submitted.as_ref() == Some(&job) {
            self.resync_pods(name);
            return;
        }
        let submitted = self.engine.apply(ClusterEvent::JobSubmitted(job.clone()));
        self.check_accounting(&job);
        match submitted {
            Ok(()) => {
                let clock = self.clock;
                let entry = self.jobs.get_mut(name).expect("exists");
                if !entry.in_engine {
                    entry.submitted_at = Some(clock);
                }
                entry.in_engine = true;
                entry.submitted = Some(job);
                entry.problem = None;
                tracing::debug!(job = %name, queue = %spec.queue, "job submitted");
            }
            Err(e) => {
                let reason = match &e {
                    phalanx_scheduler::EventError::DependencyCycle(_) => "DependencyCycle",
                    _ => "JobRejected",
                };
                self.hold_back(name, gref, reason, e.to_string());
            }
        }
        self.resync_pods(name);
    }

    /// A job the engine failed because a pod of it failed, whose controller has since replaced
    /// that pod: no failed pod of it is left, and a pod of it waits to run. A replica that
    /// started after the replacement sees a job that never failed, so this one must too, or the
    /// two disagree on what runs in its queue. Not while the failure's aftermath is unsettled
    /// (members being evicted, binds in flight: a bind in flight that was forgotten would be
    /// sent again, elsewhere), nor before its gang's pods are all back (taken back in short of
    /// them, it would wait outside the engine, and a member still running would count against
    /// no queue meanwhile), nor while the engine knows a pod of it bound that the pod watch
    /// does not show bound yet (the binder told first): taken back in, it would be bound again.
    fn restarted_after_failure(&self, name: &str) -> bool {
        // Cheap first: this runs for every job brought up to date, and nearly none failed.
        let failed_settled = self.engine.view().job(name).is_some_and(|j| {
            j.phase == JobPhase::Failed
                && matches!(j.reason, Some(Reason::PodFailed { .. }))
                && j.pods.assumed + j.pods.releasing == 0
        });
        let Some(entry) = self.jobs.get(name).filter(|_| failed_settled) else {
            return false;
        };
        let min_member = match self.groups.get(name).map(|g| &g.spec) {
            Some(Ok(s)) => s.min_member,
            Some(Err(_)) => return false,
            None => 1,
        };
        let pods: u32 = entry
            .tasks
            .iter()
            .map(|t| t.slots.iter().flatten().count() as u32)
            .sum();
        // Every pod the engine has bound, the pod watch shows bound.
        let watched = entry.tasks.iter().enumerate().all(|(t, task)| {
            task.slots.iter().enumerate().all(|(i, uid)| {
                let place = PodRef {
                    job: name.to_string(),
                    task: t as u32,
                    index: i as u32,
                };
                uid.as_ref()
                    .and_then(|u| self.pods.get(u))
                    .is_some_and(|p| p.info.node.is_some())
                    || !matches!(self.engine.view().pod(&place), Some((PodPhase::Bound, _)))
            })
        });
        pods >= min_member
            && watched
            && !self.any_pod(name, |i| i.state == PodState::Failed)
            && self.any_pod(name, |i| !i.finished() && !i.terminating)
    }

    /// Takes a job its controller restarted back in, as a replica starting now would see it:
    /// the engine forgets it and the dependents it failed, and they are submitted again,
    /// ancestors first, with their pods as they are now (members that succeeded stay done).
    fn reopen(&mut self, name: &str, group: Option<ObjectRef>) {
        let dependents: BTreeSet<String> = self
            .engine
            .view()
            .jobs()
            .filter(|j| {
                j.phase == JobPhase::Failed
                    && matches!(&j.reason, Some(Reason::DependencyFailed { dependency, deleted: false }) if dependency == name)
            })
            .map(|j| j.job.name.clone())
            .collect();
        let mut depends_on: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for job in std::iter::once(name).chain(dependents.iter().map(String::as_str)) {
            self.apply(ClusterEvent::JobDeleted {
                job: job.to_string(),
            });
            if let Some(e) = self.jobs.get_mut(job) {
                e.in_engine = false;
                if let Some(submitted) = e.submitted.take() {
                    depends_on.insert(job.to_string(), submitted.depends_on);
                }
            }
        }
        tracing::info!(job = %name, dependents = dependents.len(), "job restarted by its controller: taken back in");
        let message = format!(
            "the failed pod was replaced: the job runs again{}",
            match dependents.len() {
                0 => String::new(),
                n => format!(", and so may the {n} job(s) that failed with it"),
            }
        );
        for object in self.told_about(name, group) {
            self.notices.push(Notice {
                object,
                warning: false,
                reason: "Restarted",
                message: message.clone(),
            });
        }
        self.sync_job(name);
        // Dependents whose dependencies among them are back in go next, until none is left.
        let mut left = dependents;
        while !left.is_empty() {
            let ready: Vec<String> = left
                .iter()
                .filter(|j| {
                    depends_on
                        .get(*j)
                        .is_none_or(|deps| deps.iter().all(|d| !left.contains(d)))
                })
                .cloned()
                .collect();
            // A loop among them cannot be (the engine admitted them); take them all if it were.
            let ready = if ready.is_empty() {
                std::mem::take(&mut left).into_iter().collect()
            } else {
                ready
            };
            for job in ready {
                left.remove(&job);
                self.sync_job(&job);
            }
        }
    }

    /// Queues a Warning event about `object`.
    fn warn(&mut self, object: ObjectRef, reason: &'static str, message: String) {
        self.notices.push(Notice {
            object,
            warning: true,
            reason,
            message,
        });
    }

    /// Records why the engine refused a job, telling its objects once per new message.
    fn hold_back(
        &mut self,
        name: &str,
        group: Option<ObjectRef>,
        reason: &'static str,
        message: String,
    ) {
        let entry = self.jobs.get_mut(name).expect("held jobs exist");
        let newly = entry.problem.as_ref().map(|p| &p.1) != Some(&message);
        entry.problem = Some((reason, message.clone()));
        if newly {
            tracing::warn!(job = %name, error = %message, "job refused");
            self.warn_job(name, group, reason, message);
        }
    }

    /// Queues a Warning event about a job: on its PodGroup, or on each of its pods when it has
    /// none (a pod without a group, or pods naming a PodGroup that does not exist).
    fn warn_job(
        &mut self,
        job: &str,
        group: Option<ObjectRef>,
        reason: &'static str,
        message: String,
    ) {
        for object in self.told_about(job, group) {
            self.warn(object, reason, message.clone());
        }
    }

    /// The objects events about a job go to: its PodGroup, or its pods when it has none.
    fn told_about(&self, job: &str, group: Option<ObjectRef>) -> Vec<ObjectRef> {
        match group {
            Some(g) => vec![g],
            None => self
                .pods_of(job)
                .map(|i| ObjectRef::Pod {
                    namespace: i.namespace.clone(),
                    name: i.name.clone(),
                })
                .collect(),
        }
    }

    fn resync_pods(&mut self, job: &str) {
        let places: Vec<(String, PodRef)> = self
            .jobs
            .get(job)
            .into_iter()
            .flat_map(|e| {
                e.tasks.iter().enumerate().flat_map(move |(t, ts)| {
                    ts.slots.iter().enumerate().filter_map(move |(i, u)| {
                        u.clone().map(|u| {
                            (
                                u,
                                PodRef {
                                    job: job.to_string(),
                                    task: t as u32,
                                    index: i as u32,
                                },
                            )
                        })
                    })
                })
            })
            .collect();
        for (uid, place) in places {
            if let Some(p) = self.pods.get_mut(&uid) {
                p.place = Some(place.clone());
            }
            self.sync_pod(&uid, Some(place));
        }
    }

    fn pods_of<'a>(&'a self, job: &str) -> impl Iterator<Item = &'a PodInfo> + 'a {
        self.jobs
            .get(job)
            .into_iter()
            .flat_map(|e| e.tasks.iter().flat_map(|t| t.slots.iter().flatten()))
            .filter_map(|u| self.pods.get(u).map(|p| &p.info))
    }

    /// The group of a job no PodGroup object describes (a Kueue plain-pod group, Volcano's
    /// default group, a pod alone): `min_member` of its pods, in the queue its first pod names.
    fn group_of_pods(&self, job: &str, min_member: u32) -> GroupSpec {
        let queue_name = self.first_pod(job).and_then(|i| i.queue.clone());
        GroupSpec {
            flavor: Flavor::Volcano,
            job: job.to_string(),
            min_member,
            min_task_member: BTreeMap::new(),
            min_resources: None,
            queue: translate::volcano_queue_path(queue_name.as_deref(), &self.volcano_paths),
            queue_name,
            depends_on: Vec::new(),
            priority_class: None,
            initially_scheduled: false,
        }
    }

    /// Whether the job's upstream PodGroup says its gang was placed once.
    fn initially_scheduled(&self, job: &str) -> bool {
        self.groups
            .get(job)
            .and_then(|g| g.spec.as_ref().ok())
            .is_some_and(|s| s.initially_scheduled)
    }

    /// The job's pods waiting for a node: unbound, not gated, not terminating.
    fn unplaced_pods(&self, job: &str) -> Vec<PodTarget> {
        self.pods_of(job)
            .filter(|i| {
                i.node.is_none() && i.state == PodState::Pending && !i.gated && !i.terminating
            })
            .map(|i| PodTarget {
                namespace: i.namespace.clone(),
                name: i.name.clone(),
                uid: i.uid.clone(),
            })
            .collect()
    }

    fn first_pod(&self, job: &str) -> Option<&PodInfo> {
        self.pods_of(job).next()
    }

    fn any_pod(&self, job: &str, f: impl Fn(&PodInfo) -> bool) -> bool {
        self.pods_of(job).any(f)
    }

    /// Works the estimated starts out again when the last forecast is [`FORECAST_INTERVAL`]
    /// old (engine time `now`). Called after a cycle's actions are on their way: the forecast
    /// runs the engine forward on a copy and must not hold up the binds.
    pub fn refresh_forecast(&mut self, now: Time) {
        if self
            .forecast_at
            .is_none_or(|t| now.0 >= t.0.saturating_add(FORECAST_INTERVAL.0))
        {
            self.forecast = self.engine.view().forecast(FORECAST_MAX_CYCLES);
            self.forecast_at = Some(now);
        }
    }

    /// Runs one cycle at `now` after bringing everything up to date, and says what to do.
    pub fn cycle(&mut self, now: Time) -> Actions {
        self.clock = now;
        self.flush();
        let outcome = self.engine.cycle(now);
        self.check_accounting(&outcome.decisions);
        // Admission walks every PodGroup: when something changed, else once a second (for
        // room freed and the Inqueue timeout), as Volcano runs it once per session.
        let stale = self
            .enqueued_at
            .is_none_or(|t| now.0 >= t.0.saturating_add(1000));
        if self.enqueue_due || stale {
            self.enqueue(now);
            self.enqueue_due = false;
            self.enqueued_at = Some(now);
        }
        let mut actions = Actions {
            notices: std::mem::take(&mut self.notices),
            report: outcome.report,
            ..Actions::default()
        };
        for d in outcome.decisions {
            match d {
                Decision::BindGang { job, bindings } => {
                    let queue = self
                        .engine
                        .view()
                        .job(&job)
                        .map(|j| j.job.queue.clone())
                        .unwrap_or_default();
                    let items = bindings
                        .into_iter()
                        .map(|b| {
                            let pod = PodRef {
                                job: job.clone(),
                                task: b.task,
                                index: b.index,
                            };
                            let found = self.pod_at(&pod);
                            let created = found.and_then(|e| e.info.created);
                            let target = found.map(|e| PodTarget {
                                namespace: e.info.namespace.clone(),
                                name: e.info.name.clone(),
                                uid: e.info.uid.clone(),
                            });
                            BindItem {
                                pod,
                                target,
                                node: b.node,
                                created,
                            }
                        })
                        .collect();
                    tracing::debug!(job = %job, queue = %queue, "gang placed");
                    let submitted = self.jobs.get(&job).and_then(|e| e.submitted_at);
                    actions.binds.push(BindOrder {
                        job,
                        queue,
                        items,
                        submitted,
                    });
                }
                Decision::Evict { pods, reason } => {
                    if let Some(first) = pods.first() {
                        let eviction = Eviction {
                            job: first.job.clone(),
                            queue: self
                                .engine
                                .view()
                                .job(&first.job)
                                .map(|j| j.job.queue.clone())
                                .unwrap_or_default(),
                            reason: reason.as_str(),
                            pods: pods.len() as u32,
                        };
                        if self.evictions.len() == EVICTIONS_KEPT {
                            self.evictions.pop_back();
                        }
                        self.evictions.push_front(EvictionRecord {
                            time: wall_time(now),
                            job: eviction.job.clone(),
                            queue: eviction.queue.clone(),
                            reason: eviction.reason,
                            pods: eviction.pods,
                            message: reason.describe().to_string(),
                        });
                        actions.evicted.push(eviction);
                    }
                    for pod in pods {
                        let Some(e) = self.pod_at(&pod) else {
                            // Its pod is gone already.
                            self.apply(ClusterEvent::PodEvicted { pod });
                            continue;
                        };
                        let target = PodTarget {
                            namespace: e.info.namespace.clone(),
                            name: e.info.name.clone(),
                            uid: e.info.uid.clone(),
                        };
                        let undo = matches!(
                            reason,
                            EvictReason::GangBindFailed | EvictReason::GangBroken
                        );
                        match (undo, e.info.controlled) {
                            (true, true) => actions.deletes.push(target),
                            (true, false) => {
                                // Never delete a pod nobody would recreate: it stays bound and
                                // the gang retries the binds it misses.
                                let node = self
                                    .engine
                                    .view()
                                    .pod(&pod)
                                    .and_then(|(_, n)| n.map(str::to_string))
                                    .or_else(|| e.info.node.clone());
                                self.apply(ClusterEvent::PodEvicted { pod: pod.clone() });
                                if let Some(node) = node {
                                    self.apply(ClusterEvent::PodBound { pod, node });
                                }
                            }
                            (false, _) => actions.evictions.push(target),
                        }
                    }
                }
                Decision::Reserve { .. } => {}
                Decision::MarkUnschedulable { job, reason }
                | Decision::FailJob { job, cause: reason } => {
                    let message = self.describe(&reason);
                    if let Some(obj) = self.object_of(&job) {
                        actions.notices.push(Notice {
                            object: obj,
                            warning: true,
                            reason: "FailedScheduling",
                            message,
                        });
                    }
                }
            }
        }
        for order in &actions.binds {
            if let Some(obj) = self.object_of(&order.job) {
                let nodes: BTreeSet<&str> = order.items.iter().map(|i| i.node.as_str()).collect();
                actions.notices.push(Notice {
                    object: obj,
                    warning: false,
                    reason: "Scheduled",
                    message: format!(
                        "gang of {} pods placed on {} nodes",
                        order.items.len(),
                        nodes.len()
                    ),
                });
            }
        }
        actions
    }

    /// Volcano's `enqueue` action (`pkg/scheduler/actions/enqueue/enqueue.go`): a PodGroup not
    /// running yet, with or without pods, is admitted (`Inqueue`) when it asks no
    /// `minResources`, or when they fit its queue: capability (at every level) less what is
    /// allocated, less the `minResources` of groups admitted before it that do not run yet.
    /// Operators (the training operator, Volcano's job controller) create pods only once their
    /// PodGroup is `Inqueue`. Admission holds no node. A group stays admitted until it ends,
    /// so an undone gang is `Inqueue` again, not `Pending`; one whose pods never come goes
    /// back to `Pending` after [`INQUEUE_TIMEOUT`], as Volcano's `DefaultInqueueTimeout`,
    /// releasing its share of the queue. A refusal is an `Unschedulable` event naming the
    /// queue and resource.
    fn enqueue(&mut self, now: Time) {
        let view = self.engine.view();
        let queues: BTreeMap<String, (Option<Resources>, Resources)> = view
            .queue_infos()
            .into_iter()
            .map(|q| (q.spec.name.clone(), (q.spec.capability, q.allocated)))
            .collect();
        // What admitted groups not yet running hold of each queue, at every level.
        let mut admitted: BTreeMap<String, Resources> = BTreeMap::new();
        let mut candidates = Vec::new();
        for (name, g) in &self.groups {
            let Ok(spec) = &g.spec else { continue };
            let phase = view
                .job(name)
                .filter(|_| self.jobs.get(name).is_some_and(|e| e.in_engine))
                .map(|j| j.phase);
            if matches!(phase, Some(JobPhase::Succeeded | JobPhase::Failed)) {
                continue;
            }
            let queue =
                translate::volcano_queue_path(spec.queue_name.as_deref(), &self.volcano_paths);
            let holds = spec
                .min_resources
                .filter(|_| phase != Some(JobPhase::Running));
            match self.inqueue.get(name) {
                Some(&since) => {
                    let has_pods = self.pods_of(name).next().is_some();
                    if !has_pods && now.0.saturating_sub(since.0) > INQUEUE_TIMEOUT.0 {
                        candidates.push((name.clone(), queue, spec.min_resources, true));
                    } else if let Some(r) = holds {
                        for level in queue_levels(&queue) {
                            *admitted.entry(level.to_string()).or_default() += r;
                        }
                    }
                }
                None => candidates.push((name.clone(), queue, spec.min_resources, false)),
            }
        }
        for (name, queue, min, timed_out) in candidates {
            if timed_out {
                self.inqueue.remove(&name);
                tracing::info!(job = %name, "PodGroup Inqueue too long without pods; Pending again");
                continue;
            }
            let short = min.and_then(|want| {
                queue_levels(&queue).find_map(|level| {
                    let (Some(cap), allocated) = queues.get(level).copied()? else {
                        return None;
                    };
                    let held = admitted.get(level).copied().unwrap_or_default();
                    let left = (cap - allocated - held).clamp_zero();
                    let (id, asked) = want.iter_nonzero().find(|&(id, v)| v > left.get(id))?;
                    Some(format!(
                        "queue {level} has {} {} left of its capability for PodGroups (capability {}, allocated {}, held for admitted groups {}); minResources asks {}",
                        self.table.format_amount(id, left.get(id)),
                        self.table.name(id),
                        self.table.format_amount(id, cap.get(id)),
                        self.table.format_amount(id, allocated.get(id)),
                        self.table.format_amount(id, held.get(id)),
                        self.table.format_amount(id, asked),
                    ))
                })
            });
            match short {
                None => {
                    self.inqueue.insert(name.clone(), now);
                    self.enqueue_refused.remove(&name);
                    if let Some(r) = min {
                        for level in queue_levels(&queue) {
                            *admitted.entry(level.to_string()).or_default() += r;
                        }
                    }
                }
                Some(why) => {
                    if self.enqueue_refused.get(&name) != Some(&why) {
                        self.enqueue_refused.insert(name.clone(), why.clone());
                        if let Some(g) = self.groups.get(&name) {
                            self.warn(group_ref(g.flavor, &name), "Unschedulable", why);
                        }
                    }
                }
            }
        }
        self.inqueue
            .retain(|name, _| self.groups.contains_key(name));
        self.enqueue_refused
            .retain(|name, _| self.groups.contains_key(name));
    }

    /// A reason as conditions, events and the admin API show it: extended resources by name,
    /// instants (when a gang that failed to bind is tried again) as wall-clock times.
    fn describe(&self, reason: &Reason) -> String {
        if let Some(cycle) = self.cycle_behind(reason) {
            return cycle;
        }
        let message = reason.describe_with(Some(&self.table), &wall_time);
        // A queue that is not configured because its Queue object was refused: say why.
        if let Reason::QueueNotFound { queue } = reason
            && let Some(cause) = self.queue_causes.get(&queue_object(queue))
        {
            return format!("{message}: {cause}");
        }
        message
    }

    /// The label a reason is shown with.
    fn label(&self, reason: &Reason) -> String {
        if self.cycle_behind(reason).is_some() {
            return "DependencyCycle".into();
        }
        reason.label().to_string()
    }

    /// A dependency the engine calls missing exists but was refused for closing a cycle: the
    /// cycle is the cause to show (the engine never admitted the job, so it cannot know it).
    fn cycle_behind(&self, reason: &Reason) -> Option<String> {
        let Reason::DependencyMissing { jobs } = reason else {
            return None;
        };
        jobs.iter().find_map(|j| {
            let (label, message) = self.jobs.get(&**j)?.problem.as_ref()?;
            (*label == "DependencyCycle").then(|| format!("dependency {j} is refused: {message}"))
        })
    }

    /// The object events about a job go to: its PodGroup, else its single pod.
    fn object_of(&self, job: &str) -> Option<ObjectRef> {
        if let Some((flavor, ns, name)) = self.jobs.get(job).and_then(|e| e.group.clone()) {
            return Some(ObjectRef::Group {
                flavor,
                namespace: ns,
                name,
            });
        }
        self.first_pod(job).map(|i| ObjectRef::Pod {
            namespace: i.namespace.clone(),
            name: i.name.clone(),
        })
    }

    /// The phase of a job that does not run: `Inqueue` once its PodGroup is admitted (see
    /// [`Core::enqueue`]), else `Pending`.
    fn waiting_phase(&self, job: &str) -> &'static str {
        if self.inqueue.contains_key(job) {
            "Inqueue"
        } else {
            "Pending"
        }
    }

    /// What the API, metrics and status writer show.
    pub fn publish(&self) -> Published {
        let view = self.engine.view();
        let positions = view.positions();
        let named = |r: &Resources| self.table.to_named(r);
        let mut jobs = BTreeMap::new();
        for (name, entry) in &self.jobs {
            let (mut running, mut succeeded, mut failed) = (0, 0, 0);
            let mut created: Option<f64> = None;
            for p in self.pods_of(name) {
                if let Some(c) = p.created {
                    created = Some(created.map_or(c, |m| m.min(c)));
                }
                match p.state {
                    PodState::Running => running += 1,
                    PodState::Succeeded => succeeded += 1,
                    PodState::Failed => failed += 1,
                    PodState::Pending => {}
                }
            }
            let group = entry
                .group
                .clone()
                .map(|(flavor, namespace, name)| ObjectRef::Group {
                    flavor,
                    namespace,
                    name,
                });
            let info = view.job(name).filter(|_| entry.in_engine);
            let waiting = self.waiting_phase(name);
            let engine_job = info.as_ref().map(|j| j.job);
            let position = positions.get(name.as_str()).copied();
            // The forecast where it reaches the job; else the plan of the room held for it.
            let estimated_start = self
                .forecast
                .get(name)
                .map(|&t| (t, EstimateBasis::DeclaredDurations))
                .or_else(|| {
                    let t = info.as_ref()?.expected_start?;
                    Some((t, EstimateBasis::Reservation))
                })
                .filter(|_| info.as_ref().is_some_and(|j| j.phase == JobPhase::Pending));
            let (phase, pods, reason, queue) = match (&entry.problem, info) {
                (Some((label, msg)), None) => (
                    waiting,
                    PodCounts::default(),
                    Some((label.to_string(), msg.clone())),
                    String::new(),
                ),
                (_, Some(j)) => {
                    let phase = match j.phase {
                        JobPhase::Pending if j.pods.live() > 0 => "Inqueue",
                        JobPhase::Pending => waiting,
                        JobPhase::Running => "Running",
                        JobPhase::Succeeded => "Completed",
                        JobPhase::Failed => "Failed",
                    };
                    let reason = j
                        .reason
                        .as_ref()
                        .filter(|_| j.phase != JobPhase::Running)
                        .map(|r| (self.label(r), self.describe(r)));
                    (phase, j.pods, reason, j.job.queue.clone())
                }
                (None, None) => (waiting, PodCounts::default(), None, String::new()),
            };
            let unplaced = match &reason {
                Some((label, _)) if needs_room(label) => self.unplaced_pods(name),
                _ => Vec::new(),
            };
            let initially_scheduled = self.initially_scheduled(name)
                || matches!(phase, "Running" | "Completed")
                || running + succeeded > 0;
            jobs.insert(
                name.clone(),
                JobStatus {
                    group,
                    queue,
                    phase,
                    pods,
                    running,
                    succeeded,
                    failed,
                    reason,
                    unplaced,
                    created,
                    initially_scheduled,
                    min_member: engine_job.map_or(0, |j| j.min_member),
                    requests: engine_job
                        .map(|j| named(&j.total_request()))
                        .unwrap_or_default(),
                    position,
                    estimated_start,
                },
            );
        }
        // Groups with no pods yet show too.
        for (name, g) in &self.groups {
            jobs.entry(name.clone()).or_insert_with(|| JobStatus {
                group: Some(group_ref(g.flavor, name)),
                queue: g
                    .spec
                    .as_ref()
                    .map(|s| {
                        translate::volcano_queue_path(s.queue_name.as_deref(), &self.volcano_paths)
                    })
                    .unwrap_or_default(),
                phase: self.waiting_phase(name),
                pods: PodCounts::default(),
                running: 0,
                succeeded: 0,
                failed: 0,
                reason: Some(match (&g.spec, self.enqueue_refused.get(name)) {
                    (Err(e), _) => ("InvalidPodGroup".into(), e.to_string()),
                    (Ok(_), Some(why)) => ("OverCapability".into(), why.clone()),
                    (Ok(_), None) => ("WaitingForPods".into(), "no pods of ours yet".into()),
                }),
                initially_scheduled: self.initially_scheduled(name),
                ..JobStatus::default()
            });
        }
        // A job with a pod that could not be read says so, rather than that it waits for pods
        // or that there is no such job.
        for (job, message) in self.invalid_pods.values() {
            let status = jobs.entry(job.clone()).or_insert_with(|| JobStatus {
                phase: "Pending",
                ..JobStatus::default()
            });
            let waiting = status
                .reason
                .as_ref()
                .is_none_or(|(label, _)| label == "WaitingForPods");
            if matches!(status.phase, "Pending" | "Inqueue") && waiting {
                status.reason = Some(("InvalidPod".into(), message.clone()));
            }
        }
        let objects: BTreeMap<&str, &str> = self
            .volcano_paths
            .iter()
            .filter(|_| self.static_queues.is_none())
            .map(|(object, path)| (path.as_str(), object.as_str()))
            .collect();
        let queues = view
            .queues()
            .into_iter()
            .map(|q| QueueStatus {
                object: objects
                    .get(q.info.spec.name.as_str())
                    .map(|o| o.to_string()),
                parent: q
                    .info
                    .spec
                    .name
                    .rsplit_once('.')
                    .map(|(parent, _)| parent.to_string()),
                state: if self.closed_level(&q.info.spec.name).is_some() {
                    translate::QUEUE_CLOSED
                } else {
                    translate::QUEUE_OPEN
                },
                // A state set by someone, or an object that cannot be read (its state is
                // unknown): either way, not the writer's to set.
                state_set: objects.get(q.info.spec.name.as_str()).is_none_or(|o| {
                    self.queue_objects
                        .get(*o)
                        .is_none_or(|parsed| !matches!(parsed, Ok(p) if p.state.is_none()))
                }),
                pending: named(&q.info.pending),
                dominant_share: q.info.dominant_share as f64
                    / phalanx_queue::tree::SHARE_ONE as f64,
                dominant_resource: q
                    .info
                    .dominant_resource
                    .map(|r| self.table.name(r).to_string()),
                name: q.info.spec.name.clone(),
                weight: q.info.spec.weight,
                allocated: named(&q.info.allocated),
                deserved: named(&q.info.deserved),
                capability: q.info.spec.capability.as_ref().map(named),
                guarantee: named(&q.info.spec.guarantee),
                pending_jobs: q.pending_jobs,
                running_jobs: q.running_jobs,
                top_reasons: q.top_reasons,
            })
            .collect();
        Published {
            jobs,
            queues,
            queue_error: self.queue_error.clone(),
            evictions: self.evictions.iter().cloned().collect(),
            now: self.clock,
        }
    }
}

/// Whether a job waiting for this reason (label) waits for room on nodes, so that more nodes
/// could let it start: the engine found no placement for the whole gang, or found none for the
/// pods a partly bound gang lacked. A job waiting for its pods, its dependencies, a queue's
/// capability or a backoff is not helped by a new node, and autoscalers are not told it is.
pub fn needs_room(label: &str) -> bool {
    matches!(label, "unschedulable" | "gang_incomplete")
}

/// An engine time (milliseconds since the Unix epoch, see [`crate::runner::now`]) as RFC 3339.
fn wall_time(t: Time) -> String {
    rfc3339(t).unwrap_or_else(|| t.to_string())
}

/// An engine time (milliseconds since the Unix epoch) as RFC 3339, if it is one.
pub(crate) fn rfc3339(t: Time) -> Option<String> {
    i64::try_from(t.0)
        .ok()
        .and_then(|ms| k8s_openapi::jiff::Timestamp::from_millisecond(ms).ok())
        .map(|ts| ts.to_string())
}

/// The Volcano Queue object a queue path comes from (`root.a.b` -> `b`).
pub(crate) fn queue_object(path: &str) -> String {
    if path == phalanx_model::DEFAULT_QUEUE {
        return "default".into();
    }
    path.rsplit('.').next().unwrap_or(path).to_string()
}

use crate::translate::PodState;

/// Finds (or makes) the place of pod `uid` in `tasks`: its task is the one with the same name
/// and pod spec (a same-named task with another spec gets a `-2`, `-3` ... suffix); its index
/// the first free one.
fn place_in(tasks: &mut Vec<TaskSlots>, task: &str, spec: &PodSpec, uid: &str) -> (u32, u32) {
    let t = match translate::task_for(tasks.iter().map(|t| (t.name.as_str(), &t.spec)), task, spec)
    {
        Ok(t) => t,
        Err(name) => {
            tasks.push(TaskSlots {
                name,
                spec: spec.clone(),
                slots: Vec::new(),
            });
            tasks.len() - 1
        }
    };
    let slots = &mut tasks[t].slots;
    let i = match slots.iter().position(Option::is_none) {
        Some(i) => {
            slots[i] = Some(uid.to_string());
            i
        }
        None => {
            slots.push(Some(uid.to_string()));
            slots.len() - 1
        }
    };
    (t as u32, i as u32)
}

/// Renumbers the places of a job none of whose pods is placed: tasks without pods go, and
/// indexes are dense, in pod-name order.
fn compact(tasks: &mut Vec<TaskSlots>, pods: &HashMap<String, PodEntry>) {
    let mut all: Vec<(String, String, PodSpec, String)> = Vec::new();
    for t in tasks.iter() {
        for uid in t.slots.iter().flatten() {
            if let Some(p) = pods.get(uid) {
                all.push((
                    p.info.name.clone(),
                    p.info.task.clone(),
                    t.spec.clone(),
                    uid.clone(),
                ));
            }
        }
    }
    all.sort_by(|a, b| (&a.0, &a.1, &a.3).cmp(&(&b.0, &b.1, &b.3)));
    let mut fresh = Vec::new();
    for (_, task, spec, uid) in &all {
        place_in(&mut fresh, task, spec, uid);
    }
    *tasks = fresh;
}

/// Read-only access for `phalanx queue` (`crate::queue_admin`), which checks a change to Queue
/// objects against the same configuration step before it writes anything.
impl Core {
    /// Per Queue object refused by the last queue configuration (left out, or held at its last
    /// good configuration): why, in the words of its `InvalidQueue` event (naming the object at
    /// fault and the field, e.g. `Queue q1: spec.parent: ...`, or the queue path and quota).
    pub fn queue_problems(&self) -> &BTreeMap<String, String> {
        &self.queue_causes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn node(name: &str, cpu: &str) -> Input {
        let n: K8sNode = serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": "64Gi", "pods": "110"}}
        }))
        .unwrap();
        Input::Node(Change::Relisted(vec![n]))
    }

    fn pod(name: &str, labels: Value, cpu: &str, node: Option<&str>, phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": labels},
            "spec": {"schedulerName": "phalanx", "nodeName": node,
                     "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    /// The cpu (millicores) charged to the default queue.
    fn charged(c: &Core) -> Option<i64> {
        c.engine()
            .view()
            .queue_infos()
            .into_iter()
            .find(|q| q.spec.name == "root.default")
            .map(|q| q.allocated.get(phalanx_model::ResourceId::CPU))
    }

    /// The names of the pods a cycle's actions bind, sorted.
    fn bound_names(a: &Actions) -> Vec<String> {
        let mut names: Vec<String> = a
            .binds
            .iter()
            .flat_map(|b| b.items.iter())
            .filter_map(|i| i.target.as_ref().map(|t| t.name.clone()))
            .collect();
        names.sort();
        names
    }

    /// `p` as the taint manager leaves a pod it evicts from a NotReady node: marked disrupted,
    /// its deletion begun.
    fn evicted_by_taint_manager(mut p: Pod) -> Pod {
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        p.status.get_or_insert_default().conditions =
            Some(vec![k8s_openapi::api::core::v1::PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                reason: Some("DeletionByTaintManager".into()),
                ..Default::default()
            }]);
        p
    }

    fn member(name: &str, group: &str, cpu: &str) -> Pod {
        pod(
            name,
            json!({"scheduling.x-k8s.io/pod-group": group}),
            cpu,
            None,
            "Pending",
        )
    }

    fn group(name: &str, spec: Value, annotations: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": name, "namespace": "ns", "uid": format!("g-{name}"),
                         "annotations": annotations},
            "spec": spec
        }))
        .unwrap()
    }

    fn core() -> Core {
        let mut c = Core::new(EngineConfig::default(), "phalanx", None);
        c.ingest(node("n1", "4"));
        c.ingest(Input::Queue(Change::Relisted(Vec::new())));
        c
    }

    fn groups(c: &mut Core, list: Vec<DynamicObject>) {
        c.ingest(Input::Group(
            Flavor::SchedulerPlugins,
            Change::Relisted(list),
        ));
    }

    fn pods(c: &mut Core, list: Vec<Pod>) {
        c.ingest(Input::Pod(Change::Relisted(list)));
    }

    fn reason(c: &Core, job: &str) -> Option<(String, String)> {
        c.publish().jobs.get(job).and_then(|j| j.reason.clone())
    }

    #[test]
    fn a_gang_binds_whole_with_stable_places() {
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 2}), json!({}))]);
        pods(
            &mut c,
            vec![member("g-1", "g", "1"), member("g-0", "g", "1")],
        );
        let a = c.cycle(Time(1));
        assert_eq!(a.binds.len(), 1);
        let order = &a.binds[0];
        assert_eq!(order.job, "ns/g");
        let mut names: Vec<_> = order
            .items
            .iter()
            .map(|i| (i.pod.index, i.target.as_ref().unwrap().name.clone()))
            .collect();
        names.sort();
        // Places follow pod names while nothing of the gang is placed.
        assert_eq!(names, [(0, "g-0".to_string()), (1, "g-1".to_string())]);
        assert!(a.notices.iter().any(|n| n.reason == "Scheduled"));
    }

    #[test]
    fn a_gang_short_of_pods_waits_and_says_so() {
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 3}), json!({}))]);
        pods(
            &mut c,
            vec![member("g-0", "g", "1"), member("g-1", "g", "1")],
        );
        let a = c.cycle(Time(1));
        assert!(a.binds.is_empty());
        let (label, msg) = reason(&c, "ns/g").unwrap();
        assert_eq!(label, "WaitingForPods");
        assert!(msg.contains("2 of minMember 3"), "{msg}");
        // The third pod arrives: the gang goes.
        c.ingest(Input::Pod(Change::Apply(Box::new(member("g-2", "g", "1")))));
        assert_eq!(c.cycle(Time(2)).binds[0].items.len(), 3);
    }

    #[test]
    fn bad_groups_missing_groups_and_cycles_are_explained_and_the_rest_schedules() {
        let mut c = core();
        groups(
            &mut c,
            vec![
                group("bad", json!({"minMember": "x"}), json!({})),
                group("a", json!({}), json!({"phalanx.dev/depends-on": "b"})),
                group("b", json!({}), json!({"phalanx.dev/depends-on": "a"})),
                group("me", json!({}), json!({"phalanx.dev/depends-on": "me"})),
                group("ok", json!({}), json!({})),
            ],
        );
        pods(
            &mut c,
            vec![
                member("bad-0", "bad", "1"),
                member("lost-0", "nowhere", "1"),
                member("a-0", "a", "1"),
                member("b-0", "b", "1"),
                member("me-0", "me", "1"),
                member("ok-0", "ok", "1"),
            ],
        );
        let a = c.cycle(Time(1));
        let bound: Vec<_> = a.binds.iter().map(|b| b.job.as_str()).collect();
        assert_eq!(bound, ["ns/ok"]);
        let notice = |reason: &str| {
            a.notices
                .iter()
                .find(|n| n.reason == reason)
                .map(|n| n.message.clone())
                .unwrap_or_else(|| panic!("no {reason} notice in {:?}", a.notices))
        };
        assert!(notice("InvalidPodGroup").contains("PodGroup ns/bad: spec.minMember"));
        assert!(notice("PodGroupNotFound").contains("ns/nowhere"));
        assert!(notice("DependencyCycle").contains("ns/a"));
        let (label, msg) = reason(&c, "ns/me").unwrap();
        assert_eq!(label, "invalid_job");
        assert_eq!(msg, "job ns/me: depends on itself");
        assert_eq!(reason(&c, "ns/bad").unwrap().0, "InvalidPodGroup");
    }

    #[test]
    fn unknown_queues_and_invalid_queue_configs_are_reported() {
        let mut c = core();
        let q: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": "team"}, "spec": {"weight": 2, "capability": {"cpu": "1"}}
        }))
        .unwrap();
        c.ingest(Input::Queue(Change::Apply(Box::new(q))));
        groups(
            &mut c,
            vec![group(
                "g",
                json!({}),
                json!({"scheduling.volcano.sh/queue-name": "ghost"}),
            )],
        );
        pods(&mut c, vec![member("g-0", "g", "1")]);
        c.cycle(Time(1));
        assert_eq!(reason(&c, "ns/g").unwrap().0, "queue_not_found");
        assert!(
            c.publish()
                .queues
                .iter()
                .any(|q| q.name == "root.team" && q.weight == 2)
        );
        // A bad edit is refused, naming queue and field; the previous configuration stays.
        let bad: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": "team"}, "spec": {"weight": 0}
        }))
        .unwrap();
        c.ingest(Input::Queue(Change::Apply(Box::new(bad))));
        let a = c.cycle(Time(2));
        let n = a
            .notices
            .iter()
            .find(|n| n.reason == "InvalidQueue")
            .unwrap();
        assert_eq!(
            n.object,
            ObjectRef::Queue {
                name: "team".into()
            }
        );
        assert!(n.message.contains("root.team"), "{}", n.message);
        let p = c.publish();
        assert!(p.queue_error.is_some());
        assert!(
            p.queues
                .iter()
                .any(|q| q.name == "root.team" && q.weight == 2)
        );
    }

    fn volcano_queue_object(name: &str, parent: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": name}, "spec": {"weight": 1, "parent": parent}
        }))
        .unwrap()
    }

    fn queue_names(c: &Core) -> Vec<String> {
        c.publish().queues.into_iter().map(|q| q.name).collect()
    }

    #[test]
    fn volcano_parent_chains_of_any_depth_and_broken_ones_are_explained() {
        let mut c = core();
        c.ingest(Input::Queue(Change::Relisted(vec![
            volcano_queue_object("team-a", "ml"),
            volcano_queue_object("ml", "eng"),
            volcano_queue_object("eng", "root"),
        ])));
        groups(
            &mut c,
            vec![group(
                "g",
                json!({}),
                json!({"scheduling.volcano.sh/queue-name": "team-a"}),
            )],
        );
        pods(&mut c, vec![member("g-0", "g", "1")]);
        let a = c.cycle(Time(1));
        assert_eq!(a.binds.len(), 1, "{:?}", a.notices);
        assert_eq!(c.publish().jobs["ns/g"].queue, "root.eng.ml.team-a");
        let in_force = queue_names(&c);
        assert!(
            in_force.contains(&"root.eng.ml.team-a".to_string()),
            "{in_force:?}"
        );
        // eng now names team-a as its parent: a loop. Refused, with the chain; the tree in
        // force stays, and so does the job's queue.
        c.ingest(Input::Queue(Change::Apply(Box::new(volcano_queue_object(
            "eng", "team-a",
        )))));
        let a = c.cycle(Time(2));
        let invalid: Vec<&Notice> = a
            .notices
            .iter()
            .filter(|n| n.reason == "InvalidQueue")
            .collect();
        assert_eq!(invalid.len(), 1, "reported once: {invalid:?}");
        assert_eq!(invalid[0].object, ObjectRef::Queue { name: "eng".into() });
        assert_eq!(
            invalid[0].message,
            "Queue eng: spec.parent: the parent chain loops: eng -> team-a -> ml -> eng; its \
             previous configuration stays in force"
        );
        let p = c.publish();
        assert!(p.queue_error.as_deref().unwrap().contains("loops"));
        assert_eq!(queue_names(&c), in_force);
        assert_eq!(p.jobs["ns/g"].queue, "root.eng.ml.team-a");
        // Fixed, but a new queue names a parent that does not exist (yet).
        c.ingest(Input::Queue(Change::Apply(Box::new(volcano_queue_object(
            "eng", "",
        )))));
        c.ingest(Input::Queue(Change::Apply(Box::new(volcano_queue_object(
            "new", "later",
        )))));
        let a = c.cycle(Time(3));
        let n = a
            .notices
            .iter()
            .find(|n| n.reason == "InvalidQueue")
            .unwrap();
        assert_eq!(n.object, ObjectRef::Queue { name: "new".into() });
        assert!(
            n.message.starts_with(
                "Queue new: spec.parent: queue later does not exist (parent chain new -> later)"
            ),
            "{}",
            n.message
        );
        assert_eq!(queue_names(&c), in_force);
        // The parent appears: everything is configured.
        c.ingest(Input::Queue(Change::Apply(Box::new(volcano_queue_object(
            "later", "team-a",
        )))));
        let a = c.cycle(Time(4));
        assert!(a.notices.iter().all(|n| n.reason != "InvalidQueue"));
        assert!(c.publish().queue_error.is_none());
        assert!(
            queue_names(&c).contains(&"root.eng.ml.team-a.later.new".to_string()),
            "{:?}",
            queue_names(&c)
        );
    }

    #[test]
    fn foreign_pods_hold_their_node_and_bound_pods_are_adopted() {
        let mut c = core();
        let mut other = pod("other", json!({}), "3", Some("n1"), "Running");
        other.spec.as_mut().unwrap().scheduler_name = Some("default-scheduler".into());
        // One of ours is already bound (a restart) and one waits.
        let adopted = pod("mine", json!({}), "1", Some("n1"), "Running");
        pods(
            &mut c,
            vec![other, adopted, pod("new", json!({}), "1", None, "Pending")],
        );
        let a = c.cycle(Time(1));
        assert!(
            a.binds.is_empty(),
            "the node is full: 3 foreign + 1 adopted"
        );
        assert_eq!(c.publish().jobs["ns/pod-mine"].phase, "Running");
        assert_eq!(reason(&c, "ns/pod-new").unwrap().0, "unschedulable");
        c.ingest(Input::Pod(Change::Relisted(vec![
            pod("mine", json!({}), "1", Some("n1"), "Running"),
            pod("new", json!({}), "1", None, "Pending"),
        ])));
        let a = c.cycle(Time(2));
        assert_eq!(
            a.binds.len(),
            1,
            "the foreign pod is gone: room for the new one"
        );
    }

    /// A list that arrives in pages is applied when its last page arrives, as if it had come
    /// whole; pages of a list that broke off are dropped by the next list's first page.
    #[test]
    fn a_list_in_pages_is_applied_whole_at_its_last_page() {
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 2}), json!({}))]);
        let page = |first, objects| Input::Pod(Change::Page { first, objects });
        // A relist broken off after one page: none of it counts.
        c.ingest(page(true, vec![member("stale", "g", "1")]));
        assert!(c.cycle(Time(1)).binds.is_empty());
        assert!(c.pods.is_empty(), "not applied yet");
        // The next list: its first page drops the broken one.
        c.ingest(page(true, vec![member("g-0", "g", "1")]));
        c.ingest(page(false, vec![member("g-1", "g", "1")]));
        assert!(
            c.cycle(Time(2)).binds.is_empty(),
            "a list is applied at its last page"
        );
        c.ingest(Input::Pod(Change::Relisted(Vec::new())));
        let a = c.cycle(Time(3));
        assert_eq!(a.binds.len(), 1);
        let mut names: Vec<String> = a.binds[0]
            .items
            .iter()
            .map(|i| i.target.as_ref().unwrap().name.clone())
            .collect();
        names.sort();
        assert_eq!(names, ["g-0", "g-1"], "the broken list's pod is not there");
        // A paged relist without a pod removes it, as a whole one would.
        c.ingest(page(true, vec![member("g-0", "g", "1")]));
        c.ingest(Input::Pod(Change::Relisted(Vec::new())));
        c.cycle(Time(4));
        assert_eq!(c.pods.len(), 1);
        // Groups and nodes page the same way.
        c.ingest(Input::Group(
            Flavor::SchedulerPlugins,
            Change::Page {
                first: true,
                objects: vec![group("h", json!({"minMember": 1}), json!({}))],
            },
        ));
        c.ingest(Input::Group(
            Flavor::SchedulerPlugins,
            Change::Relisted(vec![group("g", json!({"minMember": 2}), json!({}))]),
        ));
        let Input::Node(Change::Relisted(n2)) = node("n2", "8") else {
            unreachable!()
        };
        c.ingest(Input::Node(Change::Page {
            first: true,
            objects: n2,
        }));
        c.ingest(Input::Node(Change::Relisted(Vec::new())));
        c.cycle(Time(5));
        assert!(c.groups.contains_key("ns/h") && c.groups.contains_key("ns/g"));
        assert!(!c.nodes["n2"].gone);
        // n1 is not in the list: gone (kept as a ghost while the bind of g-0 there is in
        // flight).
        assert!(c.nodes.get("n1").is_none_or(|e| e.gone));
    }

    /// A scheduler that starts while a gang runs, some of its members done: the gang is known
    /// as started (not "waiting for pods"), and its running members count against its node.
    #[test]
    fn a_restart_adopts_a_gang_whose_members_partly_finished() {
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 4}), json!({}))]);
        let label = json!({"scheduling.x-k8s.io/pod-group": "g"});
        pods(
            &mut c,
            vec![
                pod("g-0", label.clone(), "1", Some("n1"), "Succeeded"),
                pod("g-1", label.clone(), "1", Some("n1"), "Succeeded"),
                pod("g-2", label.clone(), "1", Some("n1"), "Running"),
                pod("g-3", label, "1", Some("n1"), "Running"),
                pod("late", json!({}), "3", None, "Pending"),
            ],
        );
        let a = c.cycle(Time(1));
        let job = &c.publish().jobs["ns/g"];
        assert_eq!(job.phase, "Running", "{:?}", reason(&c, "ns/g"));
        assert!(reason(&c, "ns/g").is_none());
        // 2 of the node's 4 cpu are held by the running members: 3 more do not fit.
        assert!(a.binds.is_empty(), "{:?}", a.binds);
        assert_eq!(reason(&c, "ns/pod-late").unwrap().0, "unschedulable");
    }

    /// Found by the chaos run: a gang of 8 ran; two members were evicted from a NotReady node
    /// and replaced, and the other six succeeded meanwhile. The job update that the
    /// replacements brought replaced the job's pods in the engine as if nothing of it had
    /// run, and the six finished pods were placed again, and again (the API refused every
    /// bind: they were bound).
    #[test]
    fn members_that_finished_are_not_placed_again_when_replacements_arrive() {
        // A standby (it only flushes, never cycles) until the end.
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 4}), json!({}))]);
        let label = json!({"scheduling.x-k8s.io/pod-group": "g"});
        let at = |n: &str, phase: &str| pod(n, label.clone(), "1", Some("n1"), phase);
        let list = vec![
            at("g-0", "Running"),
            at("g-1", "Running"),
            at("g-2", "Running"),
            at("g-3", "Running"),
        ];
        pods(&mut c, list.clone());
        c.flush();
        // Two members evicted (deleted): the gang is broken.
        for p in &list[2..] {
            c.ingest(Input::Pod(Change::Delete(Box::new(p.clone()))));
        }
        c.flush();
        // The controller replaces the lost two; the other two succeed before the leader's
        // eviction reaches them; the replacements are bound by the leader and succeed too.
        for n in ["g-2-r1", "g-3-r1"] {
            c.ingest(Input::Pod(Change::Apply(Box::new(member(n, "g", "1")))));
        }
        c.flush();
        for n in ["g-0", "g-1"] {
            c.ingest(Input::Pod(Change::Apply(Box::new(at(n, "Succeeded")))));
        }
        c.flush();
        for n in ["g-2-r1", "g-3-r1"] {
            c.ingest(Input::Pod(Change::Apply(Box::new(at(n, "Running")))));
        }
        c.flush();
        for n in ["g-2-r1", "g-3-r1"] {
            c.ingest(Input::Pod(Change::Apply(Box::new(at(n, "Succeeded")))));
        }
        c.flush();
        for t in 3..6 {
            let a = c.cycle(Time(t));
            let names: Vec<&str> = a
                .binds
                .iter()
                .flat_map(|b| b.items.iter())
                .map(|i| i.target.as_ref().map_or("<no pod>", |t| t.name.as_str()))
                .collect();
            assert!(
                names.is_empty(),
                "finished pods (or places with no pod) placed again: {names:?}"
            );
        }
        assert_eq!(c.publish().jobs["ns/g"].phase, "Completed");
    }

    /// Found by the chaos run: one member of a gang succeeded, the other was evicted from a
    /// node gone NotReady and replaced by its controller. Taken for a finishing job's pod (a
    /// Spark driver's executors), the eviction ended the job here, while replicas that saw it
    /// otherwise placed the replacement: it then ran charged to no queue in this one.
    #[test]
    fn a_member_evicted_after_another_succeeded_is_replaced_not_counted_done() {
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 2}), json!({}))]);
        let label = json!({"scheduling.x-k8s.io/pod-group": "g"});
        let at = |n: &str, phase: &str| pod(n, label.clone(), "1", Some("n1"), phase);
        pods(&mut c, vec![at("g-0", "Running"), at("g-1", "Running")]);
        let _ = c.cycle(Time(1));
        c.ingest(Input::Pod(Change::Apply(Box::new(at("g-0", "Succeeded")))));
        // The taint manager marks g-1 disrupted, deletes it, and it goes.
        let evicted = evicted_by_taint_manager(at("g-1", "Running"));
        c.ingest(Input::Pod(Change::Apply(Box::new(evicted.clone()))));
        let _ = c.cycle(Time(2));
        c.ingest(Input::Pod(Change::Delete(Box::new(evicted))));
        c.ingest(Input::Pod(Change::Apply(Box::new(member(
            "g-1-r1", "g", "1",
        )))));
        let a = c.cycle(Time(3));
        assert_eq!(bound_names(&a), ["g-1-r1"], "{:?}", reason(&c, "ns/g"));
    }

    /// Found by the chaos run: a replica that restarted (it lost the lease) saw the members of
    /// a gang that were being evicted from a node gone NotReady only as pods being deleted.
    /// It left them out of the gang, so their queue's quota was free in its eyes, and once it
    /// led again it bound another gang past the queue's capability. A bound pod being deleted
    /// joins its gang and holds its quota until it is gone, as it does when its deletion begins
    /// while the replica watches.
    #[test]
    fn a_bound_member_being_deleted_seen_first_holds_its_quota_until_gone() {
        let label = json!({"scheduling.x-k8s.io/pod-group": "g"});
        let at = |n: &str, phase: &str| pod(n, label.clone(), "1", Some("n1"), phase);
        let evicted = evicted_by_taint_manager(at("g-1", "Running"));
        // One replica watched the eviction begin; the other starts now and sees it begun.
        let mut watched = core();
        groups(
            &mut watched,
            vec![group("g", json!({"minMember": 2}), json!({}))],
        );
        pods(
            &mut watched,
            vec![at("g-0", "Running"), at("g-1", "Running")],
        );
        watched.ingest(Input::Pod(Change::Apply(Box::new(at("g-0", "Succeeded")))));
        watched.ingest(Input::Pod(Change::Apply(Box::new(evicted.clone()))));
        let mut restarted = core();
        groups(
            &mut restarted,
            vec![group("g", json!({"minMember": 2}), json!({}))],
        );
        pods(
            &mut restarted,
            vec![at("g-0", "Succeeded"), evicted.clone()],
        );
        // A pod being deleted that is not bound is never placed.
        let mut unbound = member("h-0", "h", "1");
        unbound.metadata.deletion_timestamp = evicted.metadata.deletion_timestamp.clone();
        restarted.ingest(Input::Pod(Change::Apply(Box::new(unbound))));
        for c in [&mut watched, &mut restarted] {
            let a = c.cycle(Time(1));
            assert!(a.binds.is_empty(), "{:?}", a.binds);
            assert_eq!(charged(c), Some(1000), "the evicted member holds its quota");
            assert_eq!(c.publish().jobs["ns/g"].phase, "Running");
            assert!(!c.publish().jobs.contains_key("ns/h"));
            // It goes, and its controller replaces it: the replacement runs in its place.
            c.ingest(Input::Pod(Change::Delete(Box::new(evicted.clone()))));
            assert_eq!(charged(c), Some(0));
            c.ingest(Input::Pod(Change::Apply(Box::new(member(
                "g-1-r1", "g", "1",
            )))));
            let a = c.cycle(Time(2));
            assert_eq!(bound_names(&a), ["g-1-r1"], "{:?}", reason(c, "ns/g"));
        }
    }

    /// Found by the chaos run: a gang whose last running member failed was failed, with its
    /// dependent; its controller deleted the failed pod and made a replacement. A replica that
    /// started after that saw a job that never failed and ran the replacement, while the one
    /// that saw the failure refused it ("the job has ended") and charged it to no queue. Both
    /// now take the restarted job (and the dependents it failed) back in.
    #[test]
    fn a_failed_job_its_controller_restarted_runs_again_with_its_dependents() {
        let label = json!({"scheduling.x-k8s.io/pod-group": "g"});
        let at = |n: &str, phase: &str| pod(n, label.clone(), "1", Some("n1"), phase);
        let dependent = || {
            group(
                "d",
                json!({"minMember": 1}),
                json!({"phalanx.dev/depends-on": "g"}),
            )
        };
        // The pods a cycle binds, and whether it told a job it runs again.
        let cycle = |c: &mut Core, t: u64| -> (Vec<String>, bool) {
            let a = c.cycle(Time(t));
            let restarted = a.notices.iter().any(|n| n.reason == "Restarted");
            (bound_names(&a), restarted)
        };
        let bound = |c: &mut Core, t: u64| cycle(c, t).0;
        let phase = |c: &Core, job: &str| c.publish().jobs[job].phase;
        let mut watched = core();
        groups(
            &mut watched,
            vec![group("g", json!({"minMember": 2}), json!({})), dependent()],
        );
        pods(
            &mut watched,
            vec![
                at("g-0", "Running"),
                at("g-1", "Running"),
                member("d-0", "d", "1"),
            ],
        );
        assert!(bound(&mut watched, 1).is_empty(), "d waits for g");
        watched.ingest(Input::Pod(Change::Apply(Box::new(at("g-0", "Succeeded")))));
        let failed = at("g-1", "Failed");
        watched.ingest(Input::Pod(Change::Apply(Box::new(failed.clone()))));
        assert!(bound(&mut watched, 2).is_empty());
        assert_eq!(phase(&watched, "ns/g"), "Failed");
        assert_eq!(phase(&watched, "ns/d"), "Failed");
        // The controller replaces the failed pod: first the replacement, then the deletion.
        let replacement = || member("g-1-r1", "g", "1");
        watched.ingest(Input::Pod(Change::Apply(Box::new(replacement()))));
        assert!(
            bound(&mut watched, 3).is_empty(),
            "a failed pod is still there: the job stays failed"
        );
        watched.ingest(Input::Pod(Change::Delete(Box::new(failed))));
        // A replica starting now sees the succeeded member and the replacement.
        let mut fresh = core();
        groups(
            &mut fresh,
            vec![group("g", json!({"minMember": 2}), json!({})), dependent()],
        );
        pods(
            &mut fresh,
            vec![
                at("g-0", "Succeeded"),
                replacement(),
                member("d-0", "d", "1"),
            ],
        );
        for (c, restarted) in [(&mut watched, true), (&mut fresh, false)] {
            assert_eq!(cycle(c, 4), (vec!["g-1-r1".to_string()], restarted));
            assert_eq!(phase(c, "ns/g"), "Running");
            assert_eq!(
                reason(c, "ns/d").map(|r| r.0),
                Some("waiting_for_dependencies".to_string())
            );
            c.ingest(Input::Pod(Change::Apply(Box::new(pod(
                "g-1-r1",
                label.clone(),
                "1",
                Some("n1"),
                "Succeeded",
            )))));
            assert_eq!(bound(c, 5), ["d-0"], "the dependent runs once g succeeded");
        }
    }

    /// Found by the chaos run once restarted jobs ran again: the job failed while a bind of
    /// its gang was in flight, and its replacements arrived before that bind landed. Taken
    /// back in at once, the job forgot the bind, placed that pod again elsewhere, and the API
    /// server refused one of the two binds. A restarted job waits until its binds in flight are
    /// settled, and one that landed is adopted where it is.
    #[test]
    fn a_restarted_job_waits_for_its_binds_in_flight() {
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 2}), json!({}))]);
        pods(
            &mut c,
            vec![member("g-0", "g", "1"), member("g-1", "g", "1")],
        );
        let a = c.cycle(Time(1));
        let items = a.binds[0].items.clone();
        let item = |name: &str| {
            items
                .iter()
                .find(|i| i.target.as_ref().unwrap().name == name)
                .unwrap()
                .clone()
        };
        let (first, late) = (item("g-0"), item("g-1"));
        let label = json!({"scheduling.x-k8s.io/pod-group": "g"});
        let on_node = |n: &str, phase: &str| pod(n, label.clone(), "1", Some("n1"), phase);
        c.ingest(Input::Bound {
            pod: first.pod.clone(),
            uid: "uid-g-0".into(),
            node: first.node.clone(),
        });
        let failed = on_node("g-0", "Failed");
        c.ingest(Input::Pod(Change::Apply(Box::new(failed.clone()))));
        assert!(bound_names(&c.cycle(Time(2))).is_empty());
        assert_eq!(c.publish().jobs["ns/g"].phase, "Failed");
        // Replaced while the bind of g-1 is still in flight: the job waits for it.
        c.ingest(Input::Pod(Change::Delete(Box::new(failed))));
        c.ingest(Input::Pod(Change::Apply(Box::new(member(
            "g-0-r1", "g", "1",
        )))));
        assert!(bound_names(&c.cycle(Time(3))).is_empty());
        assert_eq!(c.publish().jobs["ns/g"].phase, "Failed");
        // It lands: the job runs again, with g-1 where it is and only the replacement to bind,
        // once the pod watch shows g-1 bound too (taken back in before, g-1 would be bound
        // again).
        c.ingest(Input::Bound {
            pod: late.pod.clone(),
            uid: "uid-g-1".into(),
            node: late.node.clone(),
        });
        assert!(bound_names(&c.cycle(Time(4))).is_empty());
        c.ingest(Input::Pod(Change::Apply(Box::new(on_node(
            "g-1", "Running",
        )))));
        assert_eq!(bound_names(&c.cycle(Time(5))), ["g-0-r1"]);
        assert_eq!(c.publish().jobs["ns/g"].phase, "Running");
    }

    /// Found by the chaos run: a restarted gang of 8 was taken back in at its first
    /// replacement, then waited outside the engine for the other six, while a member whose
    /// bind had landed after the failure still ran: charged to no queue for 4 s, in which the
    /// leader bound another gang past the queue's capability. A restarted job is taken back in
    /// once its gang's pods are all there; until then it stays failed, its running member
    /// charged.
    #[test]
    fn a_restarted_job_is_taken_back_in_once_its_pods_are_all_there() {
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 3}), json!({}))]);
        pods(
            &mut c,
            vec![
                member("g-0", "g", "1"),
                member("g-1", "g", "1"),
                member("g-2", "g", "1"),
            ],
        );
        let a = c.cycle(Time(1));
        let item = |name: &str| {
            a.binds[0]
                .items
                .iter()
                .find(|i| i.target.as_ref().unwrap().name == name)
                .unwrap()
                .clone()
        };
        let bound = |c: &mut Core, name: &str| {
            let i = item(name);
            c.ingest(Input::Bound {
                pod: i.pod,
                uid: format!("uid-{name}"),
                node: i.node,
            });
        };
        let label = json!({"scheduling.x-k8s.io/pod-group": "g"});
        let on_node = |n: &str, phase: &str| pod(n, label.clone(), "1", Some("n1"), phase);
        bound(&mut c, "g-0");
        bound(&mut c, "g-1");
        // g-0 fails while the bind of g-2 is in flight: the job fails, g-1 is evicted, and
        // then the bind of g-2 lands.
        let failed = on_node("g-0", "Failed");
        c.ingest(Input::Pod(Change::Apply(Box::new(failed.clone()))));
        let _ = c.cycle(Time(2));
        assert_eq!(c.publish().jobs["ns/g"].phase, "Failed");
        bound(&mut c, "g-2");
        c.ingest(Input::Pod(Change::Apply(Box::new(on_node(
            "g-2", "Running",
        )))));
        c.ingest(Input::Pod(Change::Delete(Box::new(on_node(
            "g-1", "Running",
        )))));
        assert_eq!(charged(&c), Some(1000), "g-2 runs");
        // Replacements come one at a time.
        c.ingest(Input::Pod(Change::Delete(Box::new(failed))));
        c.ingest(Input::Pod(Change::Apply(Box::new(member(
            "g-0-r1", "g", "1",
        )))));
        assert!(bound_names(&c.cycle(Time(3))).is_empty());
        assert_eq!(
            c.publish().jobs["ns/g"].phase,
            "Failed",
            "2 of 3 pods are back"
        );
        assert_eq!(charged(&c), Some(1000), "g-2 still counts");
        c.ingest(Input::Pod(Change::Apply(Box::new(member(
            "g-1-r1", "g", "1",
        )))));
        assert_eq!(bound_names(&c.cycle(Time(4))), ["g-0-r1", "g-1-r1"]);
        assert_eq!(c.publish().jobs["ns/g"].phase, "Running");
        assert_eq!(charged(&c), Some(3000));
    }

    /// Pods seen first as finished on a node that no longer exists (a replica that was cut
    /// off while they ran there) ended: they are never placed again.
    #[test]
    fn pods_that_finished_on_a_vanished_node_are_not_placed_again() {
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 2}), json!({}))]);
        pods(
            &mut c,
            vec![member("g-0", "g", "1"), member("g-1", "g", "1")],
        );
        // Cut off: it saw the pods pending, then, once back, finished on a node long gone.
        let label = json!({"scheduling.x-k8s.io/pod-group": "g"});
        pods(
            &mut c,
            vec![
                pod("g-0", label.clone(), "1", Some("gone"), "Succeeded"),
                pod("g-1", label, "1", Some("gone"), "Succeeded"),
            ],
        );
        for t in 1..4 {
            let a = c.cycle(Time(t));
            assert!(a.binds.is_empty(), "placed again: {:?}", a.binds);
        }
        assert_eq!(c.publish().jobs["ns/g"].phase, "Completed");
    }

    #[test]
    fn a_failed_bind_undoes_the_gang_and_spares_unowned_pods() {
        // Engine time is wall-clock milliseconds: 2023-11-14T22:13:20Z.
        const T0: u64 = 1_700_000_000_000;
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 2}), json!({}))]);
        pods(
            &mut c,
            vec![member("g-0", "g", "1"), member("g-1", "g", "1")],
        );
        let a = c.cycle(Time(T0 - 500));
        let items = a.binds[0].items.clone();
        // The first bind succeeds, the second fails for good.
        let ok = &items[0];
        c.ingest(Input::Bound {
            pod: ok.pod.clone(),
            uid: ok.target.as_ref().unwrap().uid.clone(),
            node: ok.node.clone(),
        });
        let bad = &items[1];
        c.ingest(Input::BindFailed {
            pod: bad.pod.clone(),
            uid: bad.target.as_ref().unwrap().uid.clone(),
            message: "node gone".into(),
        });
        let a = c.cycle(Time(T0));
        // The bound pod has no owner: it is not deleted.
        assert!(a.deletes.is_empty() && a.evictions.is_empty());
        // The condition and the event say why, and when the gang is tried again.
        let (label, msg) = reason(&c, "ns/g").unwrap();
        assert_eq!(label, "bind_failed", "{msg}");
        assert!(
            msg.starts_with("binding ns/g[task 0 #1] failed: node gone;"),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "backs off for 1.000s (first failed bind): next try at 2023-11-14T22:13:21Z"
            ),
            "{msg}"
        );
        let notice = a
            .notices
            .iter()
            .find(|n| n.reason == "FailedScheduling")
            .unwrap();
        assert_eq!(notice.message, msg);
        assert_eq!(a.report.wake_at, Some(Time(T0 + 1000)));
        // Not before the backoff ends.
        assert!(c.cycle(Time(T0 + 999)).binds.is_empty());
        // Then the gang retries only the bind it misses; the bound pod stays where it is.
        let a = c.cycle(Time(T0 + 1000));
        let retried: Vec<_> = a
            .binds
            .iter()
            .flat_map(|b| b.items.iter())
            .map(|i| i.pod.clone())
            .collect();
        assert_eq!(retried, std::slice::from_ref(&bad.pod));
    }

    #[test]
    fn a_spark_job_succeeds_when_its_driver_does_and_releases_its_dependents() {
        let mut c = core();
        groups(
            &mut c,
            vec![
                group("etl", json!({"minMember": 1}), json!({})),
                group("train", json!({}), json!({"phalanx.dev/depends-on": "etl"})),
            ],
        );
        let driver = |phase: &str| {
            pod(
                "etl-driver",
                json!({"scheduling.x-k8s.io/pod-group": "etl", "spark-role": "driver"}),
                "1",
                Some("n1"),
                phase,
            )
        };
        let exec = pod(
            "etl-exec-1",
            json!({"scheduling.x-k8s.io/pod-group": "etl", "spark-role": "executor"}),
            "1",
            Some("n1"),
            "Running",
        );
        pods(
            &mut c,
            vec![
                driver("Running"),
                exec.clone(),
                member("train-0", "train", "1"),
            ],
        );
        assert!(c.cycle(Time(1)).binds.is_empty(), "train waits for etl");
        // The driver succeeds, then deletes its executor.
        c.ingest(Input::Pod(Change::Apply(Box::new(driver("Succeeded")))));
        c.ingest(Input::Pod(Change::Delete(Box::new(exec))));
        let a = c.cycle(Time(2));
        assert_eq!(c.publish().jobs["ns/etl"].phase, "Completed");
        assert_eq!(
            a.binds.iter().map(|b| b.job.as_str()).collect::<Vec<_>>(),
            ["ns/train"]
        );
    }
    fn delete_node(name: &str) -> Input {
        let n: K8sNode = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Input::Node(Change::Delete(Box::new(n)))
    }

    fn add_node(name: &str, cpu: &str) -> Input {
        let Input::Node(Change::Relisted(mut list)) = node(name, cpu) else {
            unreachable!()
        };
        Input::Node(Change::Apply(Box::new(list.remove(0))))
    }

    fn bound_member(name: &str, group: &str, cpu: &str, node: &str) -> Pod {
        let mut p = member(name, group, cpu);
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        p.status.as_mut().unwrap().phase = Some("Running".into());
        p
    }

    /// A running pod another scheduler bound to `node`.
    fn foreign(name: &str, cpu: &str, node: &str) -> Pod {
        let mut p = pod(name, json!({}), cpu, Some(node), "Running");
        p.spec.as_mut().unwrap().scheduler_name = Some("default-scheduler".into());
        p
    }

    fn owned(mut p: Pod) -> Pod {
        p.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "batch/v1", "kind": "Job", "name": "owner", "uid": "owner-uid",
                "controller": true
            }))
            .unwrap(),
        ]);
        p
    }

    #[test]
    fn a_deleted_node_keeps_its_bound_pods_and_counts_them_when_it_comes_back() {
        // Issue 14, defects 1 and 2: a gang of 4 one-cpu pods, two on n2 (2 cpu). n2's Node
        // object is deleted and created again while the pods stay bound to it.
        let mut c = core();
        c.ingest(add_node("n2", "2"));
        groups(
            &mut c,
            vec![
                group("h", json!({"minMember": 4}), json!({})),
                group("g", json!({"minMember": 2}), json!({})),
            ],
        );
        let h = vec![
            bound_member("h-0", "h", "1", "n1"),
            bound_member("h-1", "h", "1", "n1"),
            bound_member("h-2", "h", "1", "n2"),
            bound_member("h-3", "h", "1", "n2"),
        ];
        pods(&mut c, h.clone());
        c.cycle(Time(1));
        assert_eq!(c.publish().jobs["ns/h"].phase, "Running");
        c.ingest(delete_node("n2"));
        let a = c.cycle(Time(2));
        // The pods are still bound (until pod GC): the gang is whole, nothing is undone or
        // bound again, and n2 takes nothing new while it is gone.
        assert!(a.binds.is_empty() && a.deletes.is_empty() && a.evictions.is_empty());
        let h_status = &c.publish().jobs["ns/h"];
        assert_eq!((h_status.phase, h_status.pods.bound), ("Running", 4));
        let ghost = c.engine().view().node("n2").unwrap();
        assert!(ghost.live && ghost.node.unschedulable);
        // n2 comes back: its two pods still count, so a gang pinned to it does not fit.
        c.ingest(add_node("n2", "2"));
        let pin = |name: &str| {
            let mut p = member(name, "g", "1");
            p.spec.as_mut().unwrap().node_selector =
                Some([("kubernetes.io/hostname".to_string(), "n2".to_string())].into());
            p
        };
        let mut all = h.clone();
        all.extend([pin("g-0"), pin("g-1")]);
        pods(&mut c, all);
        let a = c.cycle(Time(3));
        assert!(a.binds.is_empty(), "n2 is full: {:?}", a.binds);
        assert_eq!(reason(&c, "ns/g").unwrap().0, "unschedulable");
        assert_eq!(c.publish().jobs["ns/h"].pods.bound, 4);
        // Pod GC deletes h's pods on n2 after all: the gang is broken and undone, and g fits.
        c.ingest(delete_node("n2"));
        c.cycle(Time(4));
        c.ingest(Input::Pod(Change::Delete(Box::new(h[2].clone()))));
        c.ingest(Input::Pod(Change::Delete(Box::new(h[3].clone()))));
        c.cycle(Time(5));
        // Nothing of ours is bound to the ghost any more: it is removed.
        assert!(c.engine().view().node("n2").is_none_or(|n| !n.live));
    }

    #[test]
    fn a_pod_bound_to_a_node_never_seen_is_bound_not_placed_again() {
        let mut c = core();
        groups(&mut c, vec![group("h", json!({"minMember": 2}), json!({}))]);
        pods(
            &mut c,
            vec![
                bound_member("h-0", "h", "1", "n1"),
                bound_member("h-1", "h", "1", "gone"),
            ],
        );
        let a = c.cycle(Time(1));
        assert!(a.binds.is_empty(), "{:?}", a.binds);
        let h = &c.publish().jobs["ns/h"];
        assert_eq!((h.phase, h.pods.bound), ("Running", 2));
    }

    #[test]
    fn a_bind_refused_because_the_pod_is_bound_adopts_it() {
        let mut c = core();
        pods(&mut c, vec![pod("p", json!({}), "1", None, "Pending")]);
        let a = c.cycle(Time(1));
        let item = a.binds[0].items[0].clone();
        // The watch shows the pod bound (the bind went through) before the binder's 409.
        pods(
            &mut c,
            vec![pod("p", json!({}), "1", Some("n1"), "Running")],
        );
        c.ingest(Input::BindFailed {
            pod: item.pod.clone(),
            uid: item.target.unwrap().uid,
            message: "409 Conflict: pod p is already assigned to node n1".into(),
        });
        let a = c.cycle(Time(2));
        assert!(a.binds.is_empty());
        assert_eq!(c.publish().jobs["ns/pod-p"].phase, "Running");
    }

    #[test]
    fn a_gang_adopted_below_its_minimum_that_cannot_complete_is_undone() {
        // Issue 14, defect 3: a restart finds 2 of a 4-pod owned gang bound and no room for
        // the rest; the bound pods are deleted (their controller recreates them).
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 4}), json!({}))]);
        let blocker = foreign("blocker", "2", "n1");
        pods(
            &mut c,
            vec![
                blocker,
                owned(bound_member("g-0", "g", "1", "n1")),
                owned(bound_member("g-1", "g", "1", "n1")),
                owned(member("g-2", "g", "1")),
                owned(member("g-3", "g", "1")),
            ],
        );
        let a = c.cycle(Time(1));
        assert!(a.binds.is_empty());
        let mut deleted: Vec<_> = a.deletes.iter().map(|d| d.name.as_str()).collect();
        deleted.sort();
        assert_eq!(deleted, ["g-0", "g-1"]);
        let (label, msg) = reason(&c, "ns/g").unwrap();
        assert_eq!(label, "gang_incomplete", "{msg}");
        assert!(
            msg.starts_with("2 of the gang's 4 pods were bound and the rest found no room"),
            "{msg}"
        );
    }

    #[test]
    fn a_gang_adopted_below_its_minimum_completes_when_there_is_room() {
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 4}), json!({}))]);
        pods(
            &mut c,
            vec![
                owned(bound_member("g-0", "g", "1", "n1")),
                owned(bound_member("g-1", "g", "1", "n1")),
                owned(member("g-2", "g", "1")),
                owned(member("g-3", "g", "1")),
            ],
        );
        let a = c.cycle(Time(1));
        assert!(a.deletes.is_empty());
        assert_eq!(a.binds[0].items.len(), 2);
    }

    #[test]
    fn an_unowned_partial_gang_is_bounded_in_time_then_failed_and_evicted() {
        // Issue 14, defect 5: pods nobody recreates cannot be deleted to undo a gang; the gang
        // retries, and after `partial_gang_timeout` it fails and its bound pods are evicted.
        const T0: u64 = 1_700_000_000_000;
        let mut c = core();
        groups(&mut c, vec![group("g", json!({"minMember": 3}), json!({}))]);
        let blocker = foreign("blocker", "2", "n1");
        pods(
            &mut c,
            vec![
                blocker,
                bound_member("g-0", "g", "1", "n1"),
                bound_member("g-1", "g", "1", "n1"),
                member("g-2", "g", "1"),
            ],
        );
        let a = c.cycle(Time(T0));
        assert!(a.deletes.is_empty() && a.evictions.is_empty());
        assert_eq!(reason(&c, "ns/g").unwrap().0, "gang_incomplete");
        let timeout = EngineConfig::default().partial_gang_timeout.0;
        let mut t = T0;
        let mut evicted = Vec::new();
        while t <= T0 + timeout + EngineConfig::default().bind_backoff_max.0 {
            t += 500;
            let a = c.cycle(Time(t));
            assert!(a.deletes.is_empty());
            if !a.evictions.is_empty() {
                evicted = a.evictions.iter().map(|e| e.name.clone()).collect();
                break;
            }
        }
        evicted.sort();
        assert_eq!(evicted, ["g-0", "g-1"], "evicted by {t}");
        assert!(t >= T0 + timeout);
        let g = &c.publish().jobs["ns/g"];
        assert_eq!(g.phase, "Failed");
        let (label, msg) = g.reason.clone().unwrap();
        assert_eq!(label, "partial_gang_timed_out");
        assert!(
            msg.starts_with("only 2 of the gang's 3 pods could be bound for"),
            "{msg}"
        );
    }

    #[test]
    fn pods_naming_a_missing_podgroup_are_told_not_the_missing_group() {
        let mut c = core();
        pods(
            &mut c,
            vec![
                member("lost-0", "nowhere", "1"),
                member("lost-1", "nowhere", "1"),
            ],
        );
        let a = c.cycle(Time(1));
        let mut told: Vec<_> = a
            .notices
            .iter()
            .filter(|n| n.reason == "PodGroupNotFound")
            .map(|n| n.object.clone())
            .collect();
        told.sort();
        let pod = |name: &str| ObjectRef::Pod {
            namespace: "ns".into(),
            name: name.into(),
        };
        assert_eq!(told, [pod("lost-0"), pod("lost-1")]);
        assert_eq!(c.publish().jobs["ns/nowhere"].group, None);
    }

    #[test]
    fn an_invalid_pod_is_a_job_with_a_reason_not_no_job() {
        let mut c = core();
        let mut bad = pod("bad", json!({}), "1", None, "Pending");
        bad.spec.as_mut().unwrap().containers[0].resources =
            Some(serde_json::from_value(json!({"requests": {"cpu": "-1"}})).unwrap());
        groups(&mut c, vec![group("g", json!({"minMember": 2}), json!({}))]);
        let mut bad_member = member("g-1", "g", "1");
        bad_member.spec.as_mut().unwrap().containers[0].resources =
            bad.spec.as_ref().unwrap().containers[0].resources.clone();
        pods(&mut c, vec![bad, member("g-0", "g", "1"), bad_member]);
        c.cycle(Time(1));
        let jobs = c.publish().jobs;
        let (label, msg) = jobs["ns/pod-bad"].reason.clone().unwrap();
        assert_eq!(label, "InvalidPod");
        assert!(msg.contains("Pod ns/bad"), "{msg}");
        // In a gang, the gang says which pod holds it up rather than that it waits for pods.
        let (label, msg) = jobs["ns/g"].reason.clone().unwrap();
        assert_eq!(label, "InvalidPod");
        assert!(msg.contains("Pod ns/g-1"), "{msg}");
        assert!(jobs["ns/g"].group.is_some());
    }

    #[test]
    fn every_member_of_a_dependency_cycle_names_the_cycle() {
        // Issue 14, defect 7: `a` is admitted first (waiting for `b`); `b` closes the cycle.
        let mut c = core();
        groups(
            &mut c,
            vec![
                group("a", json!({}), json!({"phalanx.dev/depends-on": "b"})),
                group("b", json!({}), json!({"phalanx.dev/depends-on": "a"})),
            ],
        );
        pods(&mut c, vec![member("a-0", "a", "1")]);
        c.cycle(Time(1));
        assert_eq!(reason(&c, "ns/a").unwrap().0, "dependency_missing");
        pods(
            &mut c,
            vec![member("a-0", "a", "1"), member("b-0", "b", "1")],
        );
        c.cycle(Time(2));
        for job in ["ns/a", "ns/b"] {
            let (label, msg) = reason(&c, job).unwrap();
            assert_eq!(label, "DependencyCycle", "{job}: {msg}");
            assert!(msg.contains("dependency cycle: ns/"), "{job}: {msg}");
        }
    }

    #[test]
    fn a_dependency_name_no_object_could_have_is_invalid_input() {
        let mut c = core();
        let huge = "x".repeat(1 << 20);
        groups(
            &mut c,
            vec![group(
                "a",
                json!({}),
                json!({"phalanx.dev/depends-on": huge}),
            )],
        );
        pods(&mut c, vec![member("a-0", "a", "1")]);
        let a = c.cycle(Time(1));
        let (label, msg) = reason(&c, "ns/a").unwrap();
        assert_eq!(label, "InvalidPodGroup");
        assert!(
            msg.contains("metadata.annotations[phalanx.dev/depends-on]: entry 1:"),
            "{msg}"
        );
        assert!(
            msg.len() < 400,
            "the name is not echoed: {} bytes",
            msg.len()
        );
        assert!(a.notices.iter().all(|n| n.message.len() < 400));
    }

    #[test]
    fn an_invalid_queue_is_refused_alone_and_the_rest_applies() {
        // Issue 14, defect 4: two Queues name each other as parent; a new valid Queue is
        // applied all the same, and a job in a queue below the loop is told the real cause.
        let mut c = core();
        c.ingest(Input::Queue(Change::Relisted(vec![
            volcano_queue_object("a", "b"),
            volcano_queue_object("b", "a"),
            volcano_queue_object("under", "a"),
            volcano_queue_object("teamnew", ""),
        ])));
        groups(
            &mut c,
            vec![
                group(
                    "ok",
                    json!({}),
                    json!({"scheduling.volcano.sh/queue-name": "teamnew"}),
                ),
                group(
                    "stuck",
                    json!({}),
                    json!({"scheduling.volcano.sh/queue-name": "under"}),
                ),
            ],
        );
        pods(
            &mut c,
            vec![member("ok-0", "ok", "1"), member("stuck-0", "stuck", "1")],
        );
        let a = c.cycle(Time(1));
        assert!(queue_names(&c).contains(&"root.teamnew".to_string()));
        let bound: Vec<_> = a.binds.iter().map(|b| b.job.as_str()).collect();
        assert_eq!(bound, ["ns/ok"]);
        let (label, msg) = reason(&c, "ns/stuck").unwrap();
        assert_eq!(label, "queue_not_found");
        assert!(
            msg.starts_with("queue root.under is not configured: Queue "),
            "{msg}"
        );
        assert!(msg.contains("the parent chain loops"), "{msg}");
        let invalid: Vec<_> = a
            .notices
            .iter()
            .filter(|n| n.reason == "InvalidQueue")
            .collect();
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        assert!(invalid[0].message.ends_with("; it is not configured"));
    }
    #[test]
    fn every_configured_scheduler_name_is_answered_and_no_other() {
        // Issue 16: mpi-operator and KubeRay force `schedulerName: volcano`.
        let mut c = Core::new(
            EngineConfig::default(),
            vec!["phalanx".to_string(), "volcano".to_string()],
            None,
        );
        c.ingest(node("n1", "4"));
        c.ingest(Input::Queue(Change::Relisted(Vec::new())));
        let named = |name: &str, scheduler: &str| {
            let mut p = pod(name, json!({}), "1", None, "Pending");
            p.spec.as_mut().unwrap().scheduler_name = Some(scheduler.into());
            p
        };
        pods(
            &mut c,
            vec![
                named("ours", "phalanx"),
                named("mpi", "volcano"),
                named("theirs", "default-scheduler"),
            ],
        );
        let a = c.cycle(Time(1));
        let mut bound: Vec<_> = a.binds.iter().map(|b| b.job.as_str()).collect();
        bound.sort();
        assert_eq!(bound, ["ns/pod-mpi", "ns/pod-ours"]);
    }

    fn kueue_member(name: &str, group: &str, count: &str) -> Pod {
        let mut p = pod(
            name,
            json!({"kueue.x-k8s.io/pod-group-name": group}),
            "1",
            None,
            "Pending",
        );
        p.metadata.annotations = Some(
            [(
                "kueue.x-k8s.io/pod-group-total-count".to_string(),
                count.to_string(),
            )]
            .into(),
        );
        p
    }

    /// Issue 16, item 5: a Kueue plain-pod group is a gang of its total count, with no
    /// PodGroup object; a count that is not a number is explained on its pods, naming the
    /// field, and nothing else stops.
    #[test]
    fn a_kueue_plain_pod_group_is_a_gang_of_its_total_count() {
        let mut c = core();
        pods(
            &mut c,
            vec![
                kueue_member("k-0", "k", "3"),
                kueue_member("k-1", "k", "3"),
                kueue_member("bad-0", "bad", "three"),
            ],
        );
        assert!(c.cycle(Time(1)).binds.is_empty());
        assert_eq!(reason(&c, "ns/k").unwrap().0, "WaitingForPods");
        c.ingest(Input::Pod(Change::Apply(Box::new(kueue_member(
            "k-2", "k", "3",
        )))));
        let a = c.cycle(Time(2));
        assert_eq!(a.binds.len(), 1);
        assert_eq!(
            (a.binds[0].job.as_str(), a.binds[0].items.len()),
            ("ns/k", 3)
        );
        let (label, message) = reason(&c, "ns/bad").unwrap();
        assert_eq!(label, "InvalidPodGroup");
        assert!(
            message.contains(
                "Pod ns/bad-0: metadata.annotations[kueue.x-k8s.io/pod-group-total-count]"
            ),
            "{message}"
        );
        let a = c.cycle(Time(3));
        assert!(a.binds.is_empty());
    }

    /// Issue 16, item 6: an upstream `scheduling.k8s.io` PodGroup gangs the pods that name it
    /// in `spec.schedulingGroup`; one without a gang policy is explained, naming the field.
    #[test]
    fn an_upstream_gang_binds_whole_and_a_policyless_one_is_explained() {
        let mut c = core();
        let upstream = |name: &str, policy: Value| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PodGroup",
                "metadata": {"name": name, "namespace": "ns", "uid": format!("g-{name}")},
                "spec": {"schedulingPolicy": policy}
            }))
            .unwrap()
        };
        c.ingest(Input::Group(
            Flavor::Upstream,
            Change::Relisted(vec![
                upstream("u", json!({"gang": {"minCount": 2}})),
                upstream("none", json!({})),
            ]),
        ));
        let joined = |name: &str, group: &str| {
            let mut p = pod(name, json!({}), "1", None, "Pending");
            p.spec.as_mut().unwrap().scheduling_group =
                Some(k8s_openapi::api::core::v1::PodSchedulingGroup {
                    pod_group_name: Some(group.into()),
                });
            p
        };
        pods(
            &mut c,
            vec![
                joined("u-0", "u"),
                joined("u-1", "u"),
                joined("n-0", "none"),
            ],
        );
        let a = c.cycle(Time(1));
        assert_eq!(a.binds.len(), 1);
        assert_eq!(
            (a.binds[0].job.as_str(), a.binds[0].items.len()),
            ("ns/u", 2)
        );
        let (label, message) = reason(&c, "ns/none").unwrap();
        assert_eq!(label, "InvalidPodGroup");
        assert!(
            message.contains("PodGroup ns/none: spec.schedulingPolicy"),
            "{message}"
        );
        assert!(
            a.notices
                .iter()
                .any(|n| n.reason == "InvalidPodGroup"
                    && n.message.contains("spec.schedulingPolicy"))
        );
    }
}
