//! Kubernetes objects to the engine's vocabulary, as pure functions: a `Node` to a
//! [`phalanx_model::Node`], a `Pod` to a [`PodInfo`] (its requests, placement constraints, gang
//! and state), a PodGroup of either flavour to a [`GroupSpec`], a Volcano `Queue` to a
//! [`QueueRecord`]. Nothing here does I/O or panics on what it reads: anything malformed comes
//! back as a [`TranslateError`] naming the object and the field.
//!
//! `phalanx serve` and the simulator's manifest converter (`phalanx trace convert --from k8s`)
//! both call these functions, so a workload simulated from manifests and the same workload
//! served live are the same jobs: requests are the containers' requests summed (limits standing
//! in for a missing request) and at least the largest init container, plus `overhead`; queue
//! names become dotted paths under `root` (`default` is `root.default`, `volcano.sh/hierarchy`
//! `root/a/b` is `root.a.b`). A Volcano Queue's `spec.parent` names another Queue, which may name
//! its own parent, and so on: [`resolve_parents`] follows those chains across all the Queue
//! objects (`team-a` under `ml` under `eng` is `root.eng.ml.team-a`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node as K8sNode, NodeSelectorRequirement, Pod, ResourceRequirements,
    Toleration as K8sToleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use kube_core::DynamicObject;
use phalanx_model::queue_names::{Link, ParentChainError, resolve_parent_chains, segment};
pub use phalanx_model::queue_path;
use phalanx_model::{
    Amount, Node, NodeAffinity, PodSpec, Quantity, QueueRecord, ResourceTable, Resources,
    SelectorOperator, SelectorRequirement, SelectorTerm, Span, Taint, TaintEffect, Toleration,
    TolerationOperator,
};
use serde_json::Value;

/// Pod annotation naming a Volcano PodGroup.
pub const VOLCANO_GROUP_ANNOTATION: &str = "scheduling.k8s.io/group-name";
/// Pod label naming a scheduler-plugins PodGroup.
pub const PLUGINS_GROUP_LABEL: &str = "scheduling.x-k8s.io/pod-group";
/// PodGroup annotation naming the PodGroups (same namespace) that must succeed first.
pub const DEPENDS_ON: &str = "phalanx.dev/depends-on";
/// Annotation giving a pod's expected run time (used to plan backfill).
pub const DURATION: &str = "phalanx.dev/duration";
/// Annotation (on a scheduler-plugins PodGroup or a plain pod) naming its Volcano queue.
pub const QUEUE_ANNOTATION: &str = "scheduling.volcano.sh/queue-name";
/// Pod label naming its Volcano queue, which Volcano reads beside [`QUEUE_ANNOTATION`] (KubeRay
/// sets it on its pods; `pkg/controllers/podgroup/pg_controller_handler.go`).
pub const QUEUE_LABEL: &str = "volcano.sh/queue-name";
/// Pod annotation (or, as before Kueue 0.18, label) naming a Kueue plain-pod group: the pods
/// carrying it are one gang, with no PodGroup object (Kueue's `pkg/controller/jobs/pod`).
pub const KUEUE_GROUP: &str = "kueue.x-k8s.io/pod-group-name";
/// Pod annotation giving a Kueue plain-pod group's size: the gang's minimum.
pub const KUEUE_TOTAL_COUNT: &str = "kueue.x-k8s.io/pod-group-total-count";
/// Volcano's minimum for the default group of a controller's pods (Volcano reads it on the
/// owner, a Deployment's ReplicaSet or a StatefulSet; set in the pod template it reaches the
/// pods, where Phalanx reads it).
pub const VOLCANO_MIN_MEMBER: &str = "scheduling.volcano.sh/group-min-member";
/// Volcano Queue annotation placing it in a hierarchy (`root/a/b`).
pub const HIERARCHY: &str = "volcano.sh/hierarchy";
/// Volcano Queue annotation with the weights of the hierarchy's levels (`1/2/8`).
pub const HIERARCHY_WEIGHTS: &str = "volcano.sh/hierarchy-weights";
/// Queue annotation: whether higher priority preempts lower inside the queue (`"true"`, the
/// default, or `"false"`).
pub const PREEMPTION: &str = "phalanx.dev/preemption";
/// Queue annotation: how jobs inside the queue take turns (`best-effort`, the default, or
/// `strict-fifo`).
pub const ORDERING: &str = "phalanx.dev/ordering";

/// An object the adapter cannot use as written. Names the object and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {object}: {field}: {message}")]
pub struct TranslateError {
    /// The kind (`PodGroup`, `Pod`, `Queue`, `Node`).
    pub kind: &'static str,
    /// `namespace/name` (or `name` for cluster-scoped objects).
    pub object: String,
    /// The field, as a path (`spec.minMember`).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl TranslateError {
    /// An error about `field` of the `kind` object `object`.
    pub fn new(kind: &'static str, object: &str, field: &'static str, message: String) -> Self {
        TranslateError {
            kind,
            object: object.to_string(),
            field,
            message,
        }
    }
}

/// Which PodGroup API a group comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flavor {
    /// `scheduling.volcano.sh/v1beta1`, joined to pods by annotation
    /// `scheduling.k8s.io/group-name`.
    Volcano,
    /// `scheduling.x-k8s.io/v1alpha1`, joined to pods by label `scheduling.x-k8s.io/pod-group`.
    SchedulerPlugins,
    /// The upstream gang API, `scheduling.k8s.io/v1beta1` (Kubernetes 1.37; `v1alpha3` carries
    /// the same fields): the gang is `spec.schedulingPolicy.gang.minCount`, pods join through
    /// `spec.schedulingGroup.podGroupName`.
    Upstream,
}

impl Flavor {
    /// The API group.
    pub fn group(self) -> &'static str {
        match self {
            Flavor::Volcano => "scheduling.volcano.sh",
            Flavor::SchedulerPlugins => "scheduling.x-k8s.io",
            Flavor::Upstream => "scheduling.k8s.io",
        }
    }

    /// The API version.
    pub fn version(self) -> &'static str {
        match self {
            Flavor::Volcano => "v1beta1",
            Flavor::SchedulerPlugins => "v1alpha1",
            Flavor::Upstream => "v1beta1",
        }
    }

    /// The flavour of a PodGroup of this `apiVersion` (`group/version`), if it is one.
    pub fn of_api_version(api_version: &str) -> Option<Flavor> {
        match api_version.split_once('/')?.0 {
            "scheduling.volcano.sh" => Some(Flavor::Volcano),
            "scheduling.x-k8s.io" => Some(Flavor::SchedulerPlugins),
            "scheduling.k8s.io" => Some(Flavor::Upstream),
            _ => None,
        }
    }
}

/// The engine's name for a job: `namespace/name` (see [`phalanx_model::namespace_of`]).
pub fn job_name(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn parse_quantities(
    table: &mut ResourceTable,
    list: &BTreeMap<String, K8sQuantity>,
) -> Result<Resources, String> {
    let mut parsed = BTreeMap::new();
    for (name, q) in list {
        let v = Quantity::parse(&q.0).map_err(|e| format!("resource {name:?}: {e}"))?;
        parsed.insert(name.clone(), v);
    }
    table.parse(&parsed).map_err(|e| e.to_string())
}

/// A node as the engine sees it: allocatable (capacity when allocatable is absent), labels,
/// taints, cordon.
pub fn node(n: &K8sNode, table: &mut ResourceTable) -> Result<Node, TranslateError> {
    let name = n.metadata.name.clone().unwrap_or_default();
    let status = n.status.as_ref();
    let list = status
        .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
        .cloned()
        .unwrap_or_default();
    let allocatable = parse_quantities(table, &list)
        .map_err(|m| TranslateError::new("Node", &name, "status.allocatable", m))?;
    let spec = n.spec.as_ref();
    let taints = spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let effect = match t.effect.as_str() {
                "NoSchedule" => TaintEffect::NoSchedule,
                "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
                "NoExecute" => TaintEffect::NoExecute,
                _ => return None,
            };
            Some(Taint {
                key: t.key.clone(),
                value: t.value.clone().unwrap_or_default(),
                effect,
            })
        })
        .collect();
    Ok(Node {
        name,
        allocatable,
        labels: n.metadata.labels.clone().unwrap_or_default(),
        taints,
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
    })
}

/// Which of a gang's tasks a pod joins. Pods with the same task name (see [`PodInfo::task`])
/// and the same requests and constraints are one task; a same-named task with another spec is
/// `name-2`, `name-3`, ... `Ok(i)`: the `i`-th of `tasks` (name and spec of each); `Err(name)`:
/// a new task of that name.
pub fn task_for<'a>(
    tasks: impl IntoIterator<Item = (&'a str, &'a PodSpec)>,
    task: &str,
    spec: &PodSpec,
) -> Result<usize, String> {
    let mut taken = 0;
    for (i, (name, s)) in tasks.into_iter().enumerate() {
        if task_base(name) == task {
            if s == spec {
                return Ok(i);
            }
            taken += 1;
        }
    }
    Err(if taken == 0 {
        task.to_string()
    } else {
        format!("{task}-{}", taken + 1)
    })
}

/// The task name a numbered task (`worker-2`) was made from.
fn task_base(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((b, n)) if n.parse::<u32>().is_ok() && n != "0" && n != "1" => b,
        _ => name,
    }
}

/// PriorityClass objects by name (`scheduling.k8s.io/v1`), and the `globalDefault` one's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriorityClasses {
    by_name: BTreeMap<String, i32>,
    global_default: Option<(String, i32)>,
}

impl PriorityClasses {
    /// Adds (or replaces) a class.
    pub fn insert(&mut self, name: &str, value: i32, global_default: bool) {
        self.remove(name);
        self.by_name.insert(name.to_string(), value);
        if global_default {
            self.global_default = Some((name.to_string(), value));
        }
    }

    /// Removes a class.
    pub fn remove(&mut self, name: &str) {
        self.by_name.remove(name);
        if self.global_default.as_ref().is_some_and(|(n, _)| n == name) {
            self.global_default = None;
        }
    }

    /// Reads a PriorityClass object into the set.
    pub fn apply(&mut self, pc: &k8s_openapi::api::scheduling::v1::PriorityClass) {
        if let Some(name) = &pc.metadata.name {
            self.insert(
                name,
                pc.value.unwrap_or(0),
                pc.global_default.unwrap_or(false),
            );
        }
    }

    /// A class's value, if the class exists.
    pub fn value(&self, name: &str) -> Option<i32> {
        self.by_name.get(name).copied()
    }
}

/// A job's priority, one rule for both paths: its PodGroup's `priorityClassName` (Volcano's
/// rule), if the class exists; else its first pod's, as admission sets it (`spec.priority`, or
/// the pod's `priorityClassName` resolved here when no admission ran, as offline); else the
/// `globalDefault` class; else 0.
pub fn job_priority(
    group_class: Option<&str>,
    pod_priority: Option<i32>,
    pod_class: Option<&str>,
    classes: &PriorityClasses,
) -> i32 {
    group_class
        .and_then(|c| classes.value(c))
        .or(pod_priority)
        .or_else(|| pod_class.and_then(|c| classes.value(c)))
        .or_else(|| classes.global_default.as_ref().map(|(_, v)| *v))
        .unwrap_or(0)
}

/// Tolerations as the engine reads them: `Exists`, else `Equal`; an effect other than the three
/// known ones (or none) tolerates every effect.
pub fn tolerations(list: &[K8sToleration]) -> Vec<Toleration> {
    list.iter()
        .map(|t| Toleration {
            key: t.key.clone().unwrap_or_default(),
            operator: if t.operator.as_deref() == Some("Exists") {
                TolerationOperator::Exists
            } else {
                TolerationOperator::Equal
            },
            value: t.value.clone().unwrap_or_default(),
            effect: match t.effect.as_deref() {
                Some("NoSchedule") => Some(TaintEffect::NoSchedule),
                Some("PreferNoSchedule") => Some(TaintEffect::PreferNoSchedule),
                Some("NoExecute") => Some(TaintEffect::NoExecute),
                _ => None,
            },
        })
        .collect()
}

/// Where a pod is in its life, as Kubernetes reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// Not bound, or bound and not yet running.
    Pending,
    /// Running.
    Running,
    /// Ended successfully.
    Succeeded,
    /// Ended in failure.
    Failed,
}

/// Which gang a pod says it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupRef {
    /// A PodGroup of that flavour, by name, in the pod's namespace.
    Group(Flavor, String),
    /// A gang its pods alone define, with no PodGroup object: a Kueue plain-pod group
    /// ([`KUEUE_GROUP`]) or Volcano's default group of a controller's pods
    /// ([`VOLCANO_MIN_MEMBER`], named `podgroup-<owner uid>` as Volcano names it).
    Pods {
        /// The group's name, in the pod's namespace.
        name: String,
        /// The gang's minimum as this pod states it, or why it cannot be read (naming the pod
        /// and the field).
        min_member: Result<u32, String>,
    },
    /// No group: the pod is a gang of one.
    Alone,
}

/// What the adapter needs to know about one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// `spec.schedulerName`.
    pub scheduler: String,
    /// Its gang.
    pub group: GroupRef,
    /// It has `schedulingGates`: it waits, and its gang with it.
    pub gated: bool,
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// Its state.
    pub state: PodState,
    /// It has a `deletionTimestamp`.
    pub terminating: bool,
    /// It has a `DisruptionTarget` condition: it was evicted, preempted or garbage-collected
    /// (its deletion means it was stopped, not that it is done).
    pub disrupted: bool,
    /// It has an owner reference with `controller: true` (deleting it makes the owner recreate it).
    pub controlled: bool,
    /// The task it belongs to (`volcano.sh/task-spec`, `spark-role`,
    /// `training.kubeflow.org/replica-type`, else `pod`).
    pub task: String,
    /// Requests and placement constraints.
    pub spec: PodSpec,
    /// `metadata.creationTimestamp`, seconds since the epoch.
    pub created: Option<f64>,
    /// `spec.priority`, as admission resolved it from `priorityClassName`; `None` when unset.
    pub priority: Option<i32>,
    /// `spec.priorityClassName`, if any.
    pub priority_class: Option<String>,
    /// Annotation naming a queue (for a gang of one).
    pub queue: Option<String>,
}

impl PodInfo {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        job_name(&self.namespace, &self.name)
    }

    /// Whether it holds a node's resources (bound and not ended).
    pub fn holds_node(&self) -> bool {
        self.node.is_some() && matches!(self.state, PodState::Pending | PodState::Running)
    }

    /// Whether it has ended.
    pub fn finished(&self) -> bool {
        matches!(self.state, PodState::Succeeded | PodState::Failed)
    }
}

fn add_requirements(
    table: &mut ResourceTable,
    r: Option<&ResourceRequirements>,
) -> Result<Resources, String> {
    let Some(r) = r else {
        return Ok(Resources::ZERO);
    };
    let mut list = r.limits.clone().unwrap_or_default();
    for (k, v) in r.requests.clone().unwrap_or_default() {
        list.insert(k, v);
    }
    parse_quantities(table, &list)
}

fn requirement(r: &NodeSelectorRequirement) -> Option<SelectorRequirement> {
    let operator = match r.operator.as_str() {
        "In" => SelectorOperator::In,
        "NotIn" => SelectorOperator::NotIn,
        "Exists" => SelectorOperator::Exists,
        "DoesNotExist" => SelectorOperator::DoesNotExist,
        "Gt" => SelectorOperator::Gt,
        "Lt" => SelectorOperator::Lt,
        _ => return None,
    };
    Some(SelectorRequirement {
        key: r.key.clone(),
        operator,
        values: r.values.clone().unwrap_or_default(),
    })
}

pub use phalanx_model::time::parse_duration;

/// A pod as the adapter sees it.
pub fn pod(p: &Pod, table: &mut ResourceTable) -> Result<PodInfo, TranslateError> {
    let meta = &p.metadata;
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let name = meta.name.clone().unwrap_or_default();
    let key = job_name(&namespace, &name);
    let err = |field, m| TranslateError::new("Pod", &key, field, m);
    let no_spec = k8s_openapi::api::core::v1::PodSpec::default();
    let spec = p.spec.as_ref().unwrap_or(&no_spec);
    let mut requests = Resources::ZERO;
    for c in &spec.containers {
        requests += add_requirements(table, c.resources.as_ref())
            .map_err(|m| err("spec.containers.resources", m))?;
    }
    for c in spec.init_containers.iter().flatten() {
        let init = add_requirements(table, c.resources.as_ref())
            .map_err(|m| err("spec.initContainers.resources", m))?;
        requests = requests.max(&init);
    }
    if let Some(o) = &spec.overhead {
        requests += parse_quantities(table, o).map_err(|m| err("spec.overhead", m))?;
    }
    let affinity = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|sel| NodeAffinity {
            terms: sel
                .node_selector_terms
                .iter()
                .map(|t| SelectorTerm {
                    match_expressions: t
                        .match_expressions
                        .iter()
                        .flatten()
                        .filter_map(requirement)
                        .collect(),
                })
                .collect(),
        });
    let tolerations = tolerations(spec.tolerations.as_deref().unwrap_or_default());
    let annotations = meta.annotations.clone().unwrap_or_default();
    let labels = meta.labels.clone().unwrap_or_default();
    let duration = annotations
        .get(DURATION)
        .and_then(|d| parse_duration(d))
        .map(Span::from_secs_f64);
    let group = pod_group_ref(p);
    let task = annotations
        .get("volcano.sh/task-spec")
        .or_else(|| labels.get("spark-role"))
        .or_else(|| labels.get("training.kubeflow.org/replica-type"))
        .cloned()
        .unwrap_or_else(|| "pod".into());
    let state = match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Running") => PodState::Running,
        Some("Succeeded") => PodState::Succeeded,
        Some("Failed") => PodState::Failed,
        _ => PodState::Pending,
    };
    Ok(PodInfo {
        namespace,
        name,
        uid: meta.uid.clone().unwrap_or_default(),
        scheduler: spec
            .scheduler_name
            .clone()
            .unwrap_or_else(|| "default-scheduler".into()),
        group,
        gated: spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty()),
        node: spec.node_name.clone().filter(|n| !n.is_empty()),
        state,
        terminating: meta.deletion_timestamp.is_some(),
        disrupted: p
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == "DisruptionTarget" && c.status == "True"),
        controlled: meta
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true)),
        task,
        spec: PodSpec {
            requests,
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            affinity,
            tolerations,
            duration,
        },
        created: meta
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_millisecond() as f64 / 1000.0),
        priority: spec.priority,
        priority_class: spec.priority_class_name.clone().filter(|c| !c.is_empty()),
        queue: annotations
            .get(QUEUE_ANNOTATION)
            .or_else(|| labels.get(QUEUE_LABEL))
            .cloned(),
    })
}

/// The gang a pod joins, by its group keys (read even when the rest of the pod is invalid, so
/// the gang can say which of its pods is). In order: the upstream `spec.schedulingGroup`, a
/// Volcano group annotation, a scheduler-plugins group label, a Kueue plain-pod group, and
/// Volcano's default group for a controller's pods with a stated minimum.
pub fn pod_group_ref(p: &Pod) -> GroupRef {
    let meta = &p.metadata;
    let namespace = meta.namespace.as_deref().unwrap_or("default");
    let name = meta.name.as_deref().unwrap_or_default();
    let upstream = p
        .spec
        .as_ref()
        .and_then(|s| s.scheduling_group.as_ref())
        .and_then(|g| g.pod_group_name.as_deref());
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str());
    group_keys(
        &job_name(namespace, name),
        meta.labels.as_ref(),
        meta.annotations.as_ref(),
        upstream,
        owner,
    )
}

/// The gang an object with these labels and annotations joins (see [`pod_group_ref`]):
/// `object` (`namespace/name`) names it in errors, `upstream` is its
/// `spec.schedulingGroup.podGroupName`, `owner` the UID of its controller. The simulator's
/// converter reads pod templates with it.
pub fn group_keys(
    object: &str,
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
    upstream: Option<&str>,
    owner: Option<&str>,
) -> GroupRef {
    let label = |k: &str| labels.and_then(|l| l.get(k));
    let annotation = |k: &str| annotations.and_then(|a| a.get(k));
    if let Some(g) = upstream {
        return GroupRef::Group(Flavor::Upstream, g.to_string());
    }
    if let Some(g) = annotation(VOLCANO_GROUP_ANNOTATION) {
        return GroupRef::Group(Flavor::Volcano, g.clone());
    }
    if let Some(g) = label(PLUGINS_GROUP_LABEL) {
        return GroupRef::Group(Flavor::SchedulerPlugins, g.clone());
    }
    let stated = |key: &'static str, where_: &str| {
        let err = |m: String| format!("Pod {object}: metadata.{where_}[{key}]: {m}");
        match annotation(key) {
            None => Err(err("required beside the group's name".into())),
            Some(t) => match count(&Value::String(t.clone())) {
                Ok(0) => Err(err("must be at least 1".into())),
                Ok(n) => Ok(n),
                Err(m) => Err(err(m)),
            },
        }
    };
    // Kueue 0.18+ reads the annotation first, the label as a fallback
    // (`WorkloadIdentifierAnnotations`, on by default).
    if let Some(g) = annotation(KUEUE_GROUP).or_else(|| label(KUEUE_GROUP)) {
        return GroupRef::Pods {
            name: g.clone(),
            min_member: stated(KUEUE_TOTAL_COUNT, "annotations"),
        };
    }
    if let (Some(uid), Some(_)) = (owner, annotation(VOLCANO_MIN_MEMBER)) {
        return GroupRef::Pods {
            name: format!("podgroup-{uid}"),
            min_member: stated(VOLCANO_MIN_MEMBER, "annotations"),
        };
    }
    GroupRef::Alone
}

/// The job a pod belongs to: its PodGroup's, or its own (`namespace/pod-<name>`) without one.
pub fn pod_job(namespace: &str, name: &str, group: &GroupRef) -> String {
    match group {
        GroupRef::Group(_, g) | GroupRef::Pods { name: g, .. } => job_name(namespace, g),
        GroupRef::Alone => job_name(namespace, &format!("pod-{name}")),
    }
}

/// A PodGroup of either flavour, as the adapter uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Its API.
    pub flavor: Flavor,
    /// The job name, `namespace/name`.
    pub job: String,
    /// Pods to place together.
    pub min_member: u32,
    /// Volcano `minTaskMember`: per-task minimums.
    pub min_task_member: BTreeMap<String, u32>,
    /// Capacity to hold for the whole job (Spark driver + executors).
    pub min_resources: Option<Resources>,
    /// Dotted queue path.
    pub queue: String,
    /// The Volcano queue the group names (`spec.queue`, or the queue-name annotation), if any.
    /// Its path depends on the Queue objects: the adapter maps it again with the paths in
    /// force when it submits the job, so a group read before its queue keeps up.
    pub queue_name: Option<String>,
    /// Job names (`namespace/name`) that must succeed first, as written in `phalanx.dev/depends-on`.
    pub depends_on: Vec<String>,
    /// `spec.priorityClassName`, if any.
    pub priority_class: Option<String>,
    /// An upstream PodGroup's `PodGroupInitiallyScheduled` condition is `True`: a terminal
    /// state, never turned back to `False` (always false for the other flavours).
    pub initially_scheduled: bool,
}

/// The condition an upstream PodGroup carries once its gang was first placed.
pub const INITIALLY_SCHEDULED: &str = "PodGroupInitiallyScheduled";

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// Reads a count that must be a non-negative integer (a number, or a string of digits).
fn count(v: &Value) -> Result<u32, String> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) if i < 0 => Err(format!("{i} is negative")),
            Some(i) => u32::try_from(i).map_err(|_| format!("{i} is too large")),
            None => Err(format!("{n} is not an integer")),
        },
        Value::String(t) => match t.trim().parse::<i64>() {
            Ok(i) => count(&Value::from(i)),
            Err(_) => Err(format!("{t:?} is not an integer")),
        },
        other => Err(format!("{other} is not an integer")),
    }
}

fn amount_list(v: &Value) -> Result<BTreeMap<String, K8sQuantity>, String> {
    let Some(map) = v.as_object() else {
        return Err(format!("{v} is not a map of resource quantities"));
    };
    map.iter()
        .map(|(k, q)| match q {
            Value::String(t) => Ok((k.clone(), K8sQuantity(t.clone()))),
            Value::Number(n) => Ok((k.clone(), K8sQuantity(n.to_string()))),
            other => Err(format!("resource {k:?}: {other} is not a quantity")),
        })
        .collect()
}

/// A `minResources` as the resources the gang requests. Volcano's job controller fills it with
/// Kubernetes quota usage (`pkg/controllers/job/job_controller_actions.go`,
/// `calcPGMinResources`): `count/pods`, `requests.cpu` and `limits.cpu` beside `cpu`. Object
/// counts and limits are not requests and are dropped; `requests.<name>` is `<name>` (where
/// both are given they must agree: the larger is kept, as one quantity counted once).
fn quota_requests(
    list: BTreeMap<String, K8sQuantity>,
) -> Result<BTreeMap<String, K8sQuantity>, String> {
    let mut out: BTreeMap<String, K8sQuantity> = BTreeMap::new();
    for (name, q) in list {
        if name.starts_with("count/") || name.starts_with("limits.") {
            continue;
        }
        let name = name.strip_prefix("requests.").unwrap_or(&name).to_string();
        let larger = match out.get(&name) {
            Some(old) => {
                let parse = |q: &K8sQuantity| {
                    Quantity::parse(&q.0)
                        .and_then(|v| v.milli_value())
                        .map_err(|e| format!("resource {name:?}: {e}"))
                };
                parse(&q)? > parse(old)?
            }
            None => true,
        };
        if larger {
            out.insert(name, q);
        }
    }
    Ok(out)
}

/// The longest object name Kubernetes accepts (a DNS subdomain, RFC 1123).
pub const MAX_NAME_LEN: usize = 253;
/// The longest namespace name (a DNS label).
pub const MAX_NAMESPACE_LEN: usize = 63;

/// Checks that `name` could name a Kubernetes object (a DNS subdomain of at most
/// [`MAX_NAME_LEN`] characters: lowercase letters, digits, `-` and `.`, starting and ending
/// with a letter or digit), or a namespace with `max` = [`MAX_NAMESPACE_LEN`]. The error
/// quotes at most the first 64 characters of what it refuses.
pub fn check_name(name: &str, max: usize) -> Result<(), String> {
    let shown = || {
        let head: String = name.chars().take(64).collect();
        if head.len() < name.len() {
            format!("{head:?}...")
        } else {
            format!("{head:?}")
        }
    };
    if name.len() > max {
        return Err(format!(
            "{} is {} characters long; Kubernetes names are at most {max}",
            shown(),
            name.len()
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let inner = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if !edge(name.chars().next()) || !edge(name.chars().last()) || !name.chars().all(inner) {
        return Err(format!(
            "{} is not a valid name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
            shown()
        ));
    }
    Ok(())
}

/// Splits `phalanx.dev/depends-on` (`"a,b"`, or `other-namespace/a`) into job names. Entries are
/// trimmed; an empty one is kept so that validation can name it. An entry no Kubernetes object
/// could have (too long, or not a DNS name) is refused, naming the entry.
pub fn depends_on(namespace: &str, text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, d)| {
            if d.is_empty() {
                return Ok(String::new());
            }
            let (ns, name) = d.split_once('/').unwrap_or((namespace, d));
            check_name(ns, MAX_NAMESPACE_LEN)
                .and_then(|()| check_name(name, MAX_NAME_LEN))
                .map_err(|m| format!("entry {}: {m}", i + 1))?;
            Ok(job_name(ns, name))
        })
        .collect()
}

/// A PodGroup (a `DynamicObject` of either flavour). `volcano_queues` maps Volcano queue object
/// names to their paths (a hierarchical queue's path is not its name).
pub fn pod_group(
    obj: &DynamicObject,
    flavor: Flavor,
    table: &mut ResourceTable,
    volcano_queues: &BTreeMap<String, String>,
) -> Result<GroupSpec, TranslateError> {
    let namespace = obj
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = obj.metadata.name.clone().unwrap_or_default();
    let job = job_name(&namespace, &name);
    let err = |field, m| TranslateError::new("PodGroup", &job, field, m);
    let min_member = if flavor == Flavor::Upstream {
        upstream_min_count(&obj.data).map_err(|(field, m)| err(field, m))?
    } else {
        match get(&obj.data, &["spec", "minMember"]) {
            None => 1,
            Some(v) => count(v).map_err(|m| err("spec.minMember", m))?,
        }
    };
    if min_member == 0 {
        let field = match flavor {
            Flavor::Upstream => "spec.schedulingPolicy.gang.minCount",
            _ => "spec.minMember",
        };
        return Err(err(field, "must be at least 1".into()));
    }
    let mut min_task_member = BTreeMap::new();
    if let Some(v) = get(&obj.data, &["spec", "minTaskMember"]) {
        let map = v
            .as_object()
            .ok_or_else(|| err("spec.minTaskMember", format!("{v} is not a map")))?;
        for (task, n) in map {
            let n = count(n).map_err(|m| err("spec.minTaskMember", format!("task {task}: {m}")))?;
            min_task_member.insert(task.clone(), n);
        }
    }
    let min_resources = match get(&obj.data, &["spec", "minResources"]) {
        None => None,
        Some(v) => {
            let list = amount_list(v).map_err(|m| err("spec.minResources", m))?;
            let list = quota_requests(list).map_err(|m| err("spec.minResources", m))?;
            Some(parse_quantities(table, &list).map_err(|m| err("spec.minResources", m))?)
        }
    };
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    let queue_name = match get(&obj.data, &["spec", "queue"]) {
        Some(Value::String(q)) => Some(q.clone()),
        Some(other) => return Err(err("spec.queue", format!("{other} is not a string"))),
        None => annotations.get(QUEUE_ANNOTATION).cloned(),
    };
    if let Some(q) = &queue_name {
        let field = if get(&obj.data, &["spec", "queue"]).is_some() {
            "spec.queue"
        } else {
            "metadata.annotations[scheduling.volcano.sh/queue-name]"
        };
        // Only the length: with `queues.source: file` the name is a queue record's, not an
        // object's.
        if q.len() > MAX_NAME_LEN {
            let head: String = q.chars().take(64).collect();
            return Err(err(
                field,
                format!(
                    "{head:?}... is {} characters long; Kubernetes names are at most {MAX_NAME_LEN}",
                    q.len()
                ),
            ));
        }
    }
    let queue = volcano_queue_path(queue_name.as_deref(), volcano_queues);
    let priority_class = match get(&obj.data, &["spec", "priorityClassName"]) {
        Some(Value::String(p)) if !p.is_empty() => Some(p.clone()),
        _ => None,
    };
    let depends_on = match annotations.get(DEPENDS_ON) {
        Some(d) => depends_on(&namespace, d)
            .map_err(|m| err("metadata.annotations[phalanx.dev/depends-on]", m))?,
        None => Vec::new(),
    };
    let initially_scheduled = flavor == Flavor::Upstream
        && get(&obj.data, &["status", "conditions"])
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == INITIALLY_SCHEDULED && c["status"] == "True")
            });
    Ok(GroupSpec {
        flavor,
        initially_scheduled,
        depends_on,
        job,
        min_member,
        min_task_member,
        min_resources,
        queue,
        queue_name,
        priority_class,
    })
}

/// The gang size of an upstream PodGroup (`scheduling.k8s.io`): `spec.schedulingPolicy.gang.minCount`,
/// or 1 under the `basic` policy (pods placed one by one). A policy with neither is refused,
/// as the API server refuses it (exactly one must be set).
fn upstream_min_count(data: &Value) -> Result<u32, (&'static str, String)> {
    let Some(policy) = get(data, &["spec", "schedulingPolicy"]) else {
        return Err((
            "spec.schedulingPolicy",
            "required: a gang or basic policy".into(),
        ));
    };
    match (policy.get("gang"), policy.get("basic")) {
        (Some(gang), None) if !gang.is_null() => match get(gang, &["minCount"]) {
            None => Err((
                "spec.schedulingPolicy.gang.minCount",
                "required: the number of pods to place together".into(),
            )),
            Some(v) => count(v).map_err(|m| ("spec.schedulingPolicy.gang.minCount", m)),
        },
        (None | Some(Value::Null), Some(basic)) if !basic.is_null() => Ok(1),
        (Some(g), Some(b)) if !g.is_null() && !b.is_null() => Err((
            "spec.schedulingPolicy",
            "sets both gang and basic; exactly one is allowed".into(),
        )),
        _ => Err((
            "spec.schedulingPolicy",
            "has no gang policy (gang.minCount) and no basic policy".into(),
        )),
    }
}

/// The path of the Volcano queue a group or pod names (`None`: the default queue), through
/// `volcano_queues` (Queue object name to path) for queues whose path is not their name.
pub fn volcano_queue_path(name: Option<&str>, volcano_queues: &BTreeMap<String, String>) -> String {
    match name {
        Some(q) => volcano_queues
            .get(q)
            .cloned()
            .unwrap_or_else(|| queue_path(q)),
        None => phalanx_model::DEFAULT_QUEUE.into(),
    }
}

fn amount(v: &Value) -> Result<Amount, String> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(u) => Ok(Amount::Int(u)),
            None => Ok(Amount::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(t) => Ok(Amount::Text(t.trim().to_string())),
        other => Err(format!("{other} is not a quantity")),
    }
}

fn amounts(
    obj: &str,
    v: Option<&Value>,
    field: &'static str,
) -> Result<Option<BTreeMap<String, Amount>>, TranslateError> {
    let Some(v) = v else { return Ok(None) };
    let map = v.as_object().ok_or_else(|| {
        TranslateError::new(
            "Queue",
            obj,
            field,
            format!("{v} is not a map of quantities"),
        )
    })?;
    map.iter()
        .map(|(k, q)| {
            amount(q)
                .map(|a| (k.clone(), a))
                .map_err(|m| TranslateError::new("Queue", obj, field, format!("{k}: {m}")))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// A Volcano Queue as read from its object alone: where it sits in the tree may depend on other
/// Queues (its `spec.parent`), which [`resolve_parents`] looks up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolcanoQueue {
    /// The queue's records: the parents its `volcano.sh/hierarchy` annotation implies (with the
    /// weights of `volcano.sh/hierarchy-weights`), then the queue itself, last. The last record's
    /// `name` is the queue's path; with a `parent`, it is only the queue's own segment of the
    /// path, which goes under the parent's path once that is known.
    pub records: Vec<QueueRecord>,
    /// The Queue object `spec.parent` names; `None` when it is absent, empty or `root`, or when
    /// the hierarchy annotation places the queue.
    pub parent: Option<String>,
    /// Whether it admits new jobs: Volcano keeps a queue's state in `status.state`, and a
    /// `Closed` or `Closing` queue admits none (its running jobs go on). Absent, `Open` or
    /// `Unknown`: open.
    pub open: bool,
    /// Its `status.state` as written, if any.
    pub state: Option<String>,
}

/// A Volcano Queue's `status.state` that admits new jobs (see [`VolcanoQueue::open`]).
pub fn queue_state_open(state: Option<&str>) -> bool {
    !matches!(state, Some(QUEUE_CLOSED | QUEUE_CLOSING))
}

/// Volcano's `status.state` of a closed queue (`QueueStateClosed` in volcano-sh/apis
/// `pkg/apis/scheduling/v1beta1/types.go`).
pub const QUEUE_CLOSED: &str = "Closed";
/// Volcano's `status.state` of a queue closing while its jobs run.
pub const QUEUE_CLOSING: &str = "Closing";
/// Volcano's `status.state` of an open queue.
pub const QUEUE_OPEN: &str = "Open";

/// A Volcano Queue as queue records, its place in the tree aside (see [`VolcanoQueue`]).
/// Quantities are parsed later, by [`QueueRecord::to_spec`], which names the queue and field.
pub fn volcano_queue(obj: &DynamicObject) -> Result<VolcanoQueue, TranslateError> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let err = |field, m| TranslateError::new("Queue", &name, field, m);
    let ann = obj.metadata.annotations.clone().unwrap_or_default();
    let mut out = Vec::new();
    let weights: Vec<&str> = ann
        .get(HIERARCHY_WEIGHTS)
        .map(|w| w.split('/').collect())
        .unwrap_or_default();
    let weight_at = |i: usize| -> Result<Option<u64>, TranslateError> {
        match weights.get(i) {
            None => Ok(None),
            Some(w) => w.trim().parse::<u64>().map(Some).map_err(|_| {
                err(
                    "metadata.annotations[volcano.sh/hierarchy-weights]",
                    format!("{w:?} is not a whole number"),
                )
            }),
        }
    };
    let mut parent = None;
    let path = match ann.get(HIERARCHY) {
        Some(h) => {
            let parts: Vec<&str> = h.split('/').filter(|p| !p.is_empty()).collect();
            let mut path = String::from("root");
            let skip = usize::from(parts.first() == Some(&"root"));
            for (i, p) in parts.iter().enumerate().skip(skip) {
                path.push('.');
                path.push_str(p);
                if i + 1 < parts.len() {
                    out.push(QueueRecord {
                        weight: weight_at(i)?,
                        ..QueueRecord::new(path.clone())
                    });
                }
            }
            path
        }
        None => match get(&obj.data, &["spec", "parent"]) {
            None => queue_path(&name),
            Some(Value::String(p)) => match Link::of(&name, Some(p)) {
                Link::Top(path) => path,
                Link::Under(p) => {
                    parent = Some(p);
                    segment(&name)
                }
            },
            Some(other) => return Err(err("spec.parent", format!("{other} is not a string"))),
        },
    };
    let weight = if ann.contains_key(HIERARCHY_WEIGHTS) {
        weight_at(weights.len().saturating_sub(1))?
    } else {
        match get(&obj.data, &["spec", "weight"]) {
            None => None,
            Some(v) => Some(u64::from(count(v).map_err(|m| err("spec.weight", m))?)),
        }
    };
    let reclaimable = match get(&obj.data, &["spec", "reclaimable"]) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => return Err(err("spec.reclaimable", format!("{other} is not a boolean"))),
    };
    let preemption = match ann.get(PREEMPTION).map(String::as_str) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(err(
                "metadata.annotations[phalanx.dev/preemption]",
                format!("{other:?} is not \"true\" or \"false\""),
            ));
        }
    };
    let ordering = match ann.get(ORDERING).map(String::as_str) {
        None | Some("best-effort") => phalanx_model::QueueOrdering::BestEffort,
        Some("strict-fifo") => phalanx_model::QueueOrdering::StrictFifo,
        Some(other) => {
            return Err(err(
                "metadata.annotations[phalanx.dev/ordering]",
                format!("{other:?} is not best-effort or strict-fifo"),
            ));
        }
    };
    out.push(QueueRecord {
        name: path.clone(),
        weight,
        guarantee: amounts(
            &name,
            get(&obj.data, &["spec", "guarantee", "resource"]),
            "spec.guarantee.resource",
        )?
        .unwrap_or_default(),
        deserved: amounts(
            &name,
            get(&obj.data, &["spec", "deserved"]),
            "spec.deserved",
        )?,
        capability: amounts(
            &name,
            get(&obj.data, &["spec", "capability"]),
            "spec.capability",
        )?,
        reclaimable,
        ordering,
        preemption,
    });
    let state = get(&obj.data, &["status", "state"])
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    Ok(VolcanoQueue {
        records: out,
        parent,
        open: queue_state_open(state.as_deref()),
        state,
    })
}

/// Every Volcano Queue object's records with its `spec.parent` chain followed, however deep:
/// a queue's path is its parent's path and its own name (`team-a` under `ml` under `eng` under
/// `root` is `root.eng.ml.team-a`). A chain ends at a queue with no parent (or one placed by the
/// hierarchy annotation), or at `default`, which always exists.
///
/// A queue whose chain cannot be followed gets an error naming the queue whose `spec.parent`
/// breaks the chain, and the chain: a parent that does not exist
/// (`Queue eng: spec.parent: queue org does not exist (parent chain eng -> org)`), or a loop,
/// written from its first queue by name (`... the parent chain loops: a -> b -> a`). Every
/// queue below the break gets the same error; so does every queue below an invalid one.
pub fn resolve_parents(
    objects: &BTreeMap<String, Result<VolcanoQueue, TranslateError>>,
) -> BTreeMap<String, Result<Vec<QueueRecord>, TranslateError>> {
    let links = objects
        .iter()
        .map(|(name, parsed)| {
            let link = parsed
                .as_ref()
                .map_err(Clone::clone)
                .map(|q| match &q.parent {
                    Some(parent) => Link::Under(parent.clone()),
                    None => Link::Top(q.records.last().map(|r| r.name.clone()).unwrap_or_default()),
                });
            (name.clone(), link)
        })
        .collect();
    let broken =
        |e: ParentChainError| TranslateError::new("Queue", e.queue(), "spec.parent", e.to_string());
    let mut paths = resolve_parent_chains(&links, broken);
    objects
        .iter()
        .map(|(name, parsed)| {
            let path = paths
                .remove(name)
                .expect("every object has a path or an error");
            let resolved = match (parsed, path) {
                (Err(e), _) => Err(e.clone()),
                (Ok(_), Err(e)) => Err(e),
                (Ok(q), Ok(path)) => {
                    let mut records = q.records.clone();
                    if let Some(last) = records.last_mut() {
                        last.name = path;
                    }
                    Ok(records)
                }
            };
            (name.clone(), resolved)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_model::ResourceId;
    use serde_json::json;

    /// Every YAML document of the shared manifests folder (`../shared/manifests` beside the
    /// checkout), with its file name.
    fn manifests() -> Vec<(String, Value)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/manifests");
        let mut out = Vec::new();
        let mut dirs = vec![root];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).expect("../shared/manifests is beside the checkout") {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "yaml") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for doc in serde_norway::Deserializer::from_str(&text) {
                        let v: Value = serde::Deserialize::deserialize(doc).unwrap();
                        if !v.is_null() {
                            out.push((p.display().to_string(), v));
                        }
                    }
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn dynamic(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    fn group(spec: Value, annotations: Value) -> DynamicObject {
        dynamic(json!({
            "apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
            "metadata": {"name": "pg", "namespace": "ns", "annotations": annotations},
            "spec": spec
        }))
    }

    fn translate_group(spec: Value) -> Result<GroupSpec, TranslateError> {
        pod_group(
            &group(spec, json!({})),
            Flavor::SchedulerPlugins,
            &mut ResourceTable::new(),
            &BTreeMap::new(),
        )
    }

    #[test]
    fn every_real_podgroup_and_queue_translates() {
        let mut groups = 0;
        let mut queues = 0;
        for (file, v) in manifests() {
            let api = v["apiVersion"].as_str().unwrap_or_default();
            match v["kind"].as_str() {
                Some("PodGroup") => {
                    let flavor = Flavor::of_api_version(api).unwrap_or(Flavor::Volcano);
                    let g = pod_group(
                        &dynamic(v.clone()),
                        flavor,
                        &mut ResourceTable::new(),
                        &BTreeMap::new(),
                    )
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                    assert!(g.min_member >= 1, "{file}");
                    groups += 1;
                }
                Some("Queue") => {
                    let q = volcano_queue(&dynamic(v.clone()))
                        .unwrap_or_else(|e| panic!("{file}: {e}"));
                    for r in q.records {
                        r.to_spec(&mut ResourceTable::new())
                            .unwrap_or_else(|e| panic!("{file}: {e}"));
                    }
                    queues += 1;
                }
                _ => {}
            }
        }
        assert!(
            groups >= 5 && queues >= 6,
            "{groups} groups, {queues} queues"
        );
    }

    #[test]
    fn real_manifests_mean_what_they_say() {
        let all = manifests();
        let find = |suffix: &str| {
            all.iter()
                .find(|(f, _)| f.ends_with(suffix))
                .map(|(_, v)| dynamic(v.clone()))
                .unwrap()
        };
        let mut table = ResourceTable::new();
        let g = pod_group(
            &find("volcano/artifacts-podgroup.yaml"),
            Flavor::Volcano,
            &mut table,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(g.job, "default/test-pg");
        assert_eq!(g.queue, "root.default");
        let min = g.min_resources.unwrap();
        assert_eq!(min.get(ResourceId::CPU), 1000);
        assert_eq!(min.get(ResourceId::MEMORY), 2_000_000_000);
        let pg1 = pod_group(
            &find("scheduler-plugins/install-doc__podgroup-pg1.yaml"),
            Flavor::SchedulerPlugins,
            &mut table,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!((pg1.job.as_str(), pg1.min_member), ("default/pg1", 3));
        let prod = volcano_queue(
            &all.iter()
                .find(|(f, v)| {
                    f.ends_with("hierarchical-jobs__queues.yaml")
                        && v["metadata"]["name"] == "root-eng-prod"
                })
                .map(|(_, v)| dynamic(v.clone()))
                .unwrap(),
        )
        .unwrap();
        let names: Vec<_> = prod
            .records
            .iter()
            .map(|r| (r.name.as_str(), r.weight))
            .collect();
        assert_eq!(names, [("root.eng", Some(2)), ("root.eng.prod", Some(8))]);
        let q = volcano_queue(&find("volcano/artifacts-queue.yaml")).unwrap();
        let spec = q.records[0].to_spec(&mut table).unwrap();
        assert_eq!(spec.name, "root.default");
        assert_eq!(spec.capability.unwrap().get(ResourceId::CPU), 2000);
    }

    #[test]
    fn malformed_podgroups_name_the_object_and_field() {
        for (spec, needle) in [
            (json!({"minMember": -1}), "-1 is negative"),
            (json!({"minMember": 1.5}), "1.5 is not an integer"),
            (json!({"minMember": "three"}), "\"three\" is not an integer"),
            (json!({"minMember": 0}), "must be at least 1"),
            (json!({"minMember": [1]}), "is not an integer"),
            (
                json!({"minMember": 1, "minResources": {"cpu": "lots"}}),
                "spec.minResources",
            ),
            (
                json!({"minMember": 1, "minResources": "4 cpus"}),
                "not a map",
            ),
            (
                json!({"minMember": 1, "minResources": {"cpu": true}}),
                "not a quantity",
            ),
            (json!({"minMember": 1, "queue": 7}), "spec.queue"),
            (
                json!({"minMember": 1, "minTaskMember": {"w": -2}}),
                "task w",
            ),
        ] {
            let e = translate_group(spec.clone()).unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with("PodGroup ns/pg: spec."), "{spec}: {text}");
            assert!(text.contains(needle), "{spec}: {text}");
        }
        // A string of digits is accepted, as kubectl users write it.
        assert_eq!(
            translate_group(json!({"minMember": "2"}))
                .unwrap()
                .min_member,
            2
        );
        assert_eq!(translate_group(json!({})).unwrap().min_member, 1);
    }

    #[test]
    fn depends_on_reads_names_in_the_namespace() {
        assert_eq!(depends_on("ns", "a, b").unwrap(), ["ns/a", "ns/b"]);
        assert_eq!(depends_on("ns", "a,,b").unwrap(), ["ns/a", "", "ns/b"]);
        assert_eq!(depends_on("ns", "other/a").unwrap(), ["other/a"]);
        // Names no object could have are refused, naming the entry and quoting little of it.
        let long = "x".repeat(1 << 20);
        let e = depends_on("ns", &format!("a,{long}")).unwrap_err();
        assert!(e.starts_with("entry 2: \"xxx"), "{e}");
        assert!(
            e.contains("1048576 characters long; Kubernetes names are at most 253"),
            "{e}"
        );
        assert!(e.len() < 200, "{e}");
        let e = depends_on("ns", "Prep").unwrap_err();
        assert!(e.contains("entry 1: \"Prep\" is not a valid name"), "{e}");
        let e = depends_on("ns", &format!("{}/a", "n".repeat(64))).unwrap_err();
        assert!(e.contains("at most 63"), "{e}");
        assert!(depends_on("ns", &"a".repeat(253)).is_ok());
        let g = pod_group(
            &group(json!({}), json!({"phalanx.dev/depends-on": "prep,train"})),
            Flavor::SchedulerPlugins,
            &mut ResourceTable::new(),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(g.depends_on, ["ns/prep", "ns/train"]);
    }

    #[test]
    fn pods_sum_requests_and_know_their_gang() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "w-0", "namespace": "ns", "uid": "u1",
                         "labels": {"scheduling.x-k8s.io/pod-group": "pg", "spark-role": "executor"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "ReplicaSet", "name": "rs",
                                              "uid": "o", "controller": true}]},
            "spec": {"schedulerName": "phalanx",
                     "schedulingGates": [{"name": "wait"}],
                     "containers": [
                        {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                        {"name": "b", "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "2"}}}],
                     "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "4"}}}]}
        }))
        .unwrap();
        let mut table = ResourceTable::new();
        let info = pod(&p, &mut table).unwrap();
        assert_eq!(info.spec.requests.get(ResourceId::CPU), 4000);
        assert_eq!(info.spec.requests.get(ResourceId::MEMORY), 1 << 30);
        assert_eq!(info.spec.requests.get(ResourceId::GPU), 2);
        assert_eq!(
            info.group,
            GroupRef::Group(Flavor::SchedulerPlugins, "pg".into())
        );
        assert!(info.gated && info.controlled);
        assert_eq!(info.task, "executor");
        assert_eq!(info.state, PodState::Pending);
        let bad: Pod = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1 core"}}}]}
        }))
        .unwrap();
        let e = pod(&bad, &mut table).unwrap_err().to_string();
        assert!(
            e.starts_with("Pod ns/x: spec.containers.resources: resource \"cpu\""),
            "{e}"
        );
    }

    #[test]
    fn queues_name_their_bad_fields() {
        let q = |spec: Value, ann: Value| {
            volcano_queue(&dynamic(json!({
                "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
                "metadata": {"name": "team", "annotations": ann}, "spec": spec
            })))
        };
        let e = q(json!({"weight": -3}), json!({})).unwrap_err().to_string();
        assert!(e.starts_with("Queue team: spec.weight"), "{e}");
        let e = q(json!({"capability": ["cpu"]}), json!({}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("Queue team: spec.capability"), "{e}");
        let e = q(
            json!({}),
            json!({"volcano.sh/hierarchy": "root/a/team", "volcano.sh/hierarchy-weights": "1/x/2"}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hierarchy-weights"), "{e}");
        // Quantities are checked when the records become specs, naming queue and field.
        let r = q(json!({"deserved": {"cpu": "much"}}), json!({})).unwrap();
        let e = r.records[0]
            .to_spec(&mut ResourceTable::new())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("queue root.team: deserved"), "{e}");
        // A parent's path depends on other Queues: only the queue's own segment is known here.
        let r = q(json!({"parent": "eng"}), json!({})).unwrap();
        assert_eq!(
            (r.records[0].name.as_str(), r.parent.as_deref()),
            ("team", Some("eng"))
        );
        let r = q(json!({"parent": "root"}), json!({})).unwrap();
        assert_eq!((r.records[0].name.as_str(), r.parent), ("root.team", None));
        let e = q(json!({"parent": 7}), json!({})).unwrap_err().to_string();
        assert!(e.starts_with("Queue team: spec.parent"), "{e}");
        // Phalanx's own queue settings ride on annotations.
        let r = q(
            json!({}),
            json!({"phalanx.dev/preemption": "false", "phalanx.dev/ordering": "strict-fifo"}),
        )
        .unwrap();
        let spec = r.records[0].to_spec(&mut ResourceTable::new()).unwrap();
        assert!(!spec.preemption);
        assert_eq!(spec.ordering, phalanx_model::QueueOrdering::StrictFifo);
        let e = q(json!({}), json!({"phalanx.dev/preemption": "no"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("phalanx.dev/preemption"), "{e}");
        let e = q(json!({}), json!({"phalanx.dev/ordering": "fifo"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("phalanx.dev/ordering"), "{e}");
    }

    /// Volcano Queue objects by name, each with `spec.parent` (or none) and `annotations`.
    fn queue_objects(
        list: &[(&str, Option<&str>, Value)],
    ) -> BTreeMap<String, Result<VolcanoQueue, TranslateError>> {
        list.iter()
            .map(|(name, parent, ann)| {
                let spec = match parent {
                    Some(p) => json!({"weight": 1, "parent": p}),
                    None => json!({"weight": 1}),
                };
                let q = volcano_queue(&dynamic(json!({
                    "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
                    "metadata": {"name": name, "annotations": ann}, "spec": spec
                })));
                (name.to_string(), q)
            })
            .collect()
    }

    fn paths(
        resolved: &BTreeMap<String, Result<Vec<QueueRecord>, TranslateError>>,
    ) -> Vec<(String, String)> {
        resolved
            .iter()
            .map(|(name, r)| {
                let path = match r {
                    Ok(records) => records.last().unwrap().name.clone(),
                    Err(e) => format!("error: {e}"),
                };
                (name.clone(), path)
            })
            .collect()
    }

    #[test]
    fn parent_chains_of_any_depth_become_paths() {
        let objects = queue_objects(&[
            ("team-a", Some("ml"), json!({})),
            ("ml", Some("eng"), json!({})),
            ("eng", Some("root"), json!({})),
            ("infra", Some(""), json!({})),
            ("v1.2", Some("infra"), json!({})),
            ("batch", Some("default"), json!({})),
            (
                "placed",
                None,
                json!({"volcano.sh/hierarchy": "root/org/placed"}),
            ),
            ("under-placed", Some("placed"), json!({})),
        ]);
        let resolved = resolve_parents(&objects);
        let want = [
            ("batch", "root.default.batch"),
            ("eng", "root.eng"),
            ("infra", "root.infra"),
            ("ml", "root.eng.ml"),
            ("placed", "root.org.placed"),
            ("team-a", "root.eng.ml.team-a"),
            ("under-placed", "root.org.placed.under-placed"),
            ("v1.2", "root.infra.v1-2"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(paths(&resolved), want);
        // The hierarchy annotation's implied parents stay in front of the queue's own record.
        let placed = resolved["placed"].as_ref().unwrap();
        let names: Vec<&str> = placed.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["root.org", "root.org.placed"]);
        // Every record is a valid queue spec under its path.
        for records in resolved.values() {
            for r in records.as_ref().unwrap() {
                r.to_spec(&mut ResourceTable::new()).unwrap();
            }
        }
    }

    #[test]
    fn a_missing_parent_or_a_loop_names_the_queue_the_field_and_the_chain() {
        let objects = queue_objects(&[
            ("team-a", Some("ml"), json!({})),
            ("ml", Some("org"), json!({})),
            ("ops", Some("org"), json!({})),
            ("a", Some("b"), json!({})),
            ("b", Some("c"), json!({})),
            ("c", Some("a"), json!({})),
            ("below-loop", Some("b"), json!({})),
            ("self", Some("self"), json!({})),
            ("fine", None, json!({})),
        ]);
        let got: BTreeMap<String, String> = paths(&resolve_parents(&objects)).into_iter().collect();
        let missing =
            "error: Queue ml: spec.parent: queue org does not exist (parent chain ml -> org)";
        assert_eq!(got["ml"], missing);
        // Below the break, the same error: it names the queue to fix.
        assert_eq!(got["team-a"], missing);
        // Another queue naming the same missing parent has its own.
        assert_eq!(
            got["ops"],
            "error: Queue ops: spec.parent: queue org does not exist (parent chain ops -> org)"
        );
        // A loop reads the same from wherever it is entered, from its first queue by name.
        let ring = "error: Queue a: spec.parent: the parent chain loops: a -> b -> c -> a";
        for q in ["a", "b", "c", "below-loop"] {
            assert_eq!(got[q], ring, "{q}");
        }
        assert_eq!(
            got["self"],
            "error: Queue self: spec.parent: the parent chain loops: self -> self"
        );
        assert_eq!(got["fine"], "root.fine");
        // A queue under an invalid one repeats that queue's own error.
        let mut objects = queue_objects(&[("child", Some("bad"), json!({}))]);
        let bad = TranslateError::new("Queue", "bad", "spec.weight", "-1 is negative".into());
        objects.insert("bad".into(), Err(bad.clone()));
        let resolved = resolve_parents(&objects);
        assert_eq!(resolved["child"], Err(bad));
    }

    fn pod_with(meta: Value, spec: Value) -> Pod {
        let mut m = meta;
        m["namespace"] = json!("ns");
        serde_json::from_value(json!({"metadata": m, "spec": spec})).unwrap()
    }

    /// Issue 16, item 5: every group key in use, in order of precedence.
    #[test]
    fn every_group_key_in_use_is_read() {
        let containers = json!({"containers": [{"name": "c"}]});
        let upstream = pod_with(
            json!({"name": "p", "annotations": {VOLCANO_GROUP_ANNOTATION: "v"}}),
            json!({"containers": [{"name": "c"}], "schedulingGroup": {"podGroupName": "u"}}),
        );
        assert_eq!(
            pod_group_ref(&upstream),
            GroupRef::Group(Flavor::Upstream, "u".into())
        );
        let kueue = |count: Option<&str>| {
            let mut ann = serde_json::Map::new();
            if let Some(c) = count {
                ann.insert(KUEUE_TOTAL_COUNT.into(), json!(c));
            }
            pod_group_ref(&pod_with(
                json!({"name": "p", "labels": {KUEUE_GROUP: "g"}, "annotations": ann}),
                containers.clone(),
            ))
        };
        assert_eq!(
            kueue(Some("3")),
            GroupRef::Pods {
                name: "g".into(),
                min_member: Ok(3)
            }
        );
        let GroupRef::Pods {
            min_member: Err(e), ..
        } = kueue(Some("three"))
        else {
            panic!("a count that is not a number is an error");
        };
        assert_eq!(
            e,
            "Pod ns/p: metadata.annotations[kueue.x-k8s.io/pod-group-total-count]: \"three\" is not an integer"
        );
        assert!(
            matches!(kueue(None), GroupRef::Pods { min_member: Err(e), .. } if e.contains("required"))
        );
        assert!(
            matches!(kueue(Some("0")), GroupRef::Pods { min_member: Err(e), .. } if e.contains("at least 1"))
        );
        // Volcano's default group: a controller's pods with a stated minimum.
        let owned = |ann: Value| {
            pod_group_ref(&pod_with(
                json!({"name": "p", "annotations": ann, "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                    "uid": "u-1", "controller": true}]}),
                containers.clone(),
            ))
        };
        assert_eq!(
            owned(json!({VOLCANO_MIN_MEMBER: "2"})),
            GroupRef::Pods {
                name: "podgroup-u-1".into(),
                min_member: Ok(2)
            }
        );
        assert_eq!(owned(json!({})), GroupRef::Alone);
        assert_eq!(
            pod_job("ns", "p", &owned(json!({VOLCANO_MIN_MEMBER: "2"}))),
            "ns/podgroup-u-1"
        );
        // Volcano's queue label beside its annotation.
        let p = pod_with(
            json!({"name": "p", "labels": {QUEUE_LABEL: "team-a"}}),
            containers.clone(),
        );
        assert_eq!(
            pod(&p, &mut ResourceTable::new()).unwrap().queue.as_deref(),
            Some("team-a")
        );
    }

    fn upstream_group(policy: Value) -> Result<GroupSpec, TranslateError> {
        pod_group(
            &dynamic(json!({
                "apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PodGroup",
                "metadata": {"name": "pg", "namespace": "ns"},
                "spec": {"schedulingPolicy": policy}
            })),
            Flavor::Upstream,
            &mut ResourceTable::new(),
            &BTreeMap::new(),
        )
    }

    /// Issue 16, item 6: the upstream gang API's PodGroup.
    #[test]
    fn upstream_podgroups_are_gangs_of_min_count() {
        assert_eq!(
            upstream_group(json!({"gang": {"minCount": 4}}))
                .unwrap()
                .min_member,
            4
        );
        assert_eq!(upstream_group(json!({"basic": {}})).unwrap().min_member, 1);
        let err = upstream_group(json!({})).unwrap_err();
        assert_eq!(err.field, "spec.schedulingPolicy");
        assert_eq!(
            err.to_string(),
            "PodGroup ns/pg: spec.schedulingPolicy: has no gang policy (gang.minCount) and no basic policy"
        );
        let err = upstream_group(json!({"gang": {"minCount": 0}})).unwrap_err();
        assert_eq!(err.field, "spec.schedulingPolicy.gang.minCount");
        assert_eq!(
            Flavor::of_api_version("scheduling.k8s.io/v1alpha3"),
            Some(Flavor::Upstream)
        );
    }

    /// Spark's Volcano feature step creates its PodGroup from a template that may be empty.
    #[test]
    fn a_podgroup_with_an_empty_spec_is_a_gang_of_one() {
        let g = pod_group(
            &dynamic(json!({
                "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                "metadata": {"name": "spark-1-podgroup", "namespace": "ns"}, "spec": {}
            })),
            Flavor::Volcano,
            &mut ResourceTable::new(),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!((g.min_member, g.queue.as_str()), (1, "root.default"));
    }

    /// Volcano's job controller writes quota usage into `minResources`: the requests are
    /// read, object counts and limits are not.
    #[test]
    fn a_volcano_job_min_resources_is_read_as_requests() {
        let mut table = ResourceTable::new();
        let g = pod_group(
            &dynamic(json!({
                "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                "metadata": {"name": "vj-1", "namespace": "ns"},
                "spec": {"minMember": 3, "minResources": {
                    "count/pods": "3", "pods": "3", "cpu": "3", "requests.cpu": "3",
                    "limits.cpu": "6", "requests.nvidia.com/gpu": "2"}}
            })),
            Flavor::Volcano,
            &mut table,
            &BTreeMap::new(),
        )
        .unwrap();
        let r = g.min_resources.unwrap();
        assert_eq!(
            table.to_named(&r),
            BTreeMap::from([
                ("cpu".to_string(), 3000),
                ("nvidia.com/gpu".to_string(), 2),
                ("pods".to_string(), 3),
            ])
        );
    }
}
