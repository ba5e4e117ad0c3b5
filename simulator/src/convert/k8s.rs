//! Kubernetes manifests (a folder of YAML, read recursively in name order, or one file) to
//! native records: what users of Volcano, scheduler-plugins, Kubeflow, the Spark operator and
//! Kueue submit, as the gangs, queues and dependencies Phalanx schedules.
//!
//! | kind | becomes |
//! |---|---|
//! | `Node` | a node (allocatable, else capacity; labels, taints, cordon), read by `phalanx_translate::node` |
//! | Volcano `Queue` | queue `root.<name>` (`default` is `root.default`); with `volcano.sh/hierarchy` `root/a/b` and `volcano.sh/hierarchy-weights`, queue `root.a.b` and its parents with those weights; with `spec.parent`, under the parent Queue's path, chains of any depth, as `phalanx serve` places it (a loop or a parent no manifest defines is an error naming the document) |
//! | Kueue `ClusterQueue` | queue `root.<cohort>.<name>` (or `root.<name>`): `deserved` = the sum of its flavors' `nominalQuota`, `capability` = nominal + `borrowingLimit`, weight from `fairSharing.weight`; `LocalQueue`s point jobs at it |
//! | scheduler-plugins `ElasticQuota` | queue `root.<namespace>-quota` (`guarantee` = min, `capability` = max) for the namespace's jobs that name no queue |
//! | `PodGroup` (`scheduling.volcano.sh`, `scheduling.incubator.k8s.io`, `scheduling.x-k8s.io`) | one job, read by `phalanx_translate::pod_group` as `phalanx serve` reads it: `minMember`, `minTaskMember`, `minResources`, the queue (`spec.queue` or the queue-name annotation), `phalanx.dev/depends-on`, `priorityClassName`; its pods are the `Pod`s and workload templates (`ReplicaSet`, `Deployment`, `StatefulSet`, `Job`) that name it (annotation `scheduling.k8s.io/group-name` or label `scheduling.x-k8s.io/pod-group`), in tasks by the pods' own task keys and specs (`phalanx_translate::task_for`). Pods naming a PodGroup no manifest defines are invalid input: live they would never run |
//! | Kueue pod group (label `kueue.x-k8s.io/pod-group-name`) | one job of `pod-group-total-count` pods |
//! | Volcano `Job` | one job: its tasks (`replicas`, `minAvailable` per task), `minAvailable`, `queue`, `priorityClassName`; a task's `dependsOn` (start order inside the gang) is kept as the annotation `phalanx.dev/task-depends-on`: a gang starts all its tasks at once, so the order holds |
//! | Volcano `JobFlow` + `JobTemplate`s | one job per flow (`<flow>-<template>`), `dependsOn.targets` as `depends_on` |
//! | Argo `Workflow` with a `dag` | one job per DAG task whose template creates a supported kind (`resource.manifest`), `dependencies` as `depends_on` |
//! | Kubeflow `PyTorchJob`, `TFJob`, `MPIJob` (any `*ReplicaSpecs`) | one job, a task per replica type; `runPolicy.schedulingPolicy` (`minAvailable`, `queue`, `minResources`, `priorityClass`); elastic `minReplicas` lowers the minimum |
//! | `SparkApplication` | one job: task `driver` (1) and `executor` (`instances`); `min_member` 1 and `min_resources` = driver + executors (what the operator's PodGroup asks), or the PodGroup named by the executors' `scheduling.k8s.io/group-name`; queue from `batchSchedulerOptions.queue` |
//! | `JobSet` | one job, a task per replicated job (`replicas × parallelism` pods) |
//! | `Pod` without a group | a gang of one, the job `ns/pod-<name>` in the queue its queue-name annotation names, as `phalanx serve` makes it |
//! | `ReplicaSet`, `Deployment`, `StatefulSet`, batch `Job` without a group | one job of their replicas with `min_member` 1 (batch `Job`: `parallelism` pods, all of them, as Kueue admits; `kueue.x-k8s.io/job-min-parallelism` lowers it) |
//! | `PriorityClass` | priorities by name (and the `globalDefault`), for `phalanx_translate::job_priority`: the PodGroup's (or operator object's) class, else the first pod's, as `phalanx serve` decides |
//!
//! Pod templates are read by `phalanx_translate::pod`, the rule `phalanx serve` applies to the
//! pods made from them: requests are the containers' requests summed (limits where a request
//! is missing, as Kubernetes defaults them), at least the largest init container, plus
//! `overhead`; `nodeSelector`, required node affinity and tolerations are kept. Durations come
//! from the annotation `phalanx.dev/duration` (`600`, `90s`, `10m`, `2h`) on the object or its
//! pod template, else the default. An object the translation cannot read (a bad quantity, a
//! Queue weight outside 1..=65535, a broken `spec.parent` chain) stops the conversion, naming
//! file, document, object and field, unless `--skip-invalid` leaves it out with a warning.
//! Every other kind is listed in a warning, never dropped silently; so are objects Kubernetes
//! itself would reject (a `minAvailable` above the replicas) and groups that can never start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Node as K8sNode, Pod, Toleration as K8sToleration};
use phalanx_model::{ResourceId, ResourceTable, queue_path};
use phalanx_translate::TranslateError;
use serde_json::Value;

use super::{ConvertError, Converted};
use crate::trace::{Amount, JobRecord, NodeRecord, QueueRecord, Record, ResourceMap, TaskRecord};

/// Knobs of the conversion.
#[derive(Debug, Clone)]
pub struct Params {
    /// Seconds a pod runs when no annotation says.
    pub default_duration: f64,
    /// Nodes to add when the manifests define none: `COUNT:cpu=64,memory=256Gi,...`.
    pub nodes: String,
    /// Leave out objects that cannot be read (a warning each) instead of stopping.
    pub skip_invalid: bool,
}

/// The annotation giving a pod's run time (the translation's, so both paths read one key).
pub use phalanx_translate::DURATION;

struct Doc {
    file: String,
    index: usize,
    v: Value,
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    Some(cur)
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    match s(v, path)? {
        Value::String(t) => Some(t.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An integer field. Kubernetes counts (replicas, parallelism, minMember, priorities) are
/// int32, so a larger value is taken as the int32 bound: what the API server would refuse
/// cannot overflow the converter's sums and products.
fn int(v: &Value, path: &[&str]) -> Option<i64> {
    let n = match s(v, path)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(t) => t.trim().parse().ok(),
        _ => None,
    }?;
    Some(n.clamp(i32::MIN.into(), i32::MAX.into()))
}

fn amount(v: &Value) -> Option<Amount> {
    match v {
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => Amount::from(i),
            None => Amount::Float(n.as_f64()?),
        }),
        Value::String(t) => Some(Amount::Text(t.trim().to_string())),
        _ => None,
    }
}

fn resource_map(v: Option<&Value>) -> ResourceMap {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| amount(v).map(|a| (k.clone(), a)))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(t) => Some((k.clone(), t.clone())),
                    Value::Number(n) => Some((k.clone(), n.to_string())),
                    Value::Bool(b) => Some((k.clone(), b.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

pub use phalanx_model::time::parse_duration;

/// Adds quantities of two maps (as Kubernetes quantities); text that does not parse is kept
/// from the first map.
fn add_maps(a: &ResourceMap, b: &ResourceMap, times: i64) -> ResourceMap {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    let mut push = |m: &ResourceMap, k: i64| {
        for (name, amt) in m {
            if let Ok(q) = amt.quantity() {
                // Milli units for every resource keep fractions exact enough to add.
                if let Ok(m) = q.milli_value() {
                    // Saturating: a quantity near the limit of its type stays at the limit.
                    let sum = out.entry(name.clone()).or_default();
                    *sum = sum.saturating_add(m.saturating_mul(k));
                }
            }
        }
    };
    push(a, 1);
    push(b, times);
    out.into_iter()
        .map(|(k, m)| {
            let a = if m % 1000 == 0 {
                Amount::from(m / 1000)
            } else {
                Amount::Text(format!("{m}m"))
            };
            (k, a)
        })
        .collect()
}

/// A pod template's requests, placement constraints and duration.
#[derive(Default)]
struct PodShape {
    requests: ResourceMap,
    node_selector: BTreeMap<String, String>,
    affinity: Option<phalanx_model::NodeAffinity>,
    tolerations: Vec<phalanx_model::Toleration>,
    duration: Option<f64>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    /// The pod as the engine sees it (what makes two pods one task).
    spec: phalanx_model::PodSpec,
    /// Its task name by the pod's own keys (`volcano.sh/task-spec`, `spark-role`, ...).
    task: String,
    /// The Volcano queue its queue-name annotation names, if any.
    queue: Option<String>,
    /// `spec.priority`, if set.
    priority: Option<i32>,
    /// `spec.priorityClassName`, if any.
    priority_class: Option<String>,
    /// Why the template cannot be read, if it cannot (`FILE (document N): Pod ns/x: field: ...`).
    invalid: Option<String>,
    /// The PodGroup its pods name (any flavour), if they name one.
    group: Option<String>,
}

/// Reads a pod template (`metadata` and `spec`) as `phalanx serve` reads the pods made from it,
/// through [`phalanx_translate::pod`]: requests (containers, init containers, `overhead`),
/// `nodeSelector`, required node affinity, tolerations and the duration annotation. A missing
/// template is an empty pod.
fn pod_shape(template: &Value, table: &mut ResourceTable) -> Result<PodShape, TranslateError> {
    let labels = strings(s(template, &["metadata", "labels"]));
    let annotations = strings(s(template, &["metadata", "annotations"]));
    let Some(spec) = s(template, &["spec"]).filter(|v| !v.is_null()) else {
        return Ok(PodShape {
            duration: annotations.get(DURATION).and_then(|d| parse_duration(d)),
            labels,
            annotations,
            task: "pod".into(),
            ..PodShape::default()
        });
    };
    let name = text(template, &["metadata", "name"]).unwrap_or_else(|| "(template)".into());
    let namespace = text(template, &["metadata", "namespace"]).unwrap_or_else(|| "default".into());
    let mut spec = spec.clone();
    if let Some(m) = spec.as_object_mut() {
        m.entry("containers")
            .or_insert_with(|| Value::Array(Vec::new()));
    }
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations,
                     "labels": labels},
        "spec": spec,
    }))
    .map_err(|e| {
        TranslateError::new("Pod", &format!("{namespace}/{name}"), "spec", e.to_string())
    })?;
    let info = phalanx_translate::pod(&pod, table)?;
    let requests = named(table, &info.spec.requests);
    Ok(PodShape {
        requests,
        node_selector: info.spec.node_selector.clone(),
        affinity: info.spec.affinity.clone(),
        tolerations: info.spec.tolerations.clone(),
        duration: info.spec.duration.map(|d| d.as_secs_f64()),
        labels,
        annotations,
        spec: info.spec,
        task: info.task,
        queue: info.queue,
        priority: info.priority,
        priority_class: info.priority_class,
        invalid: None,
        group: match info.group {
            phalanx_translate::GroupRef::Group(_, g) => Some(g),
            _ => None,
        },
    })
}

/// Pods of one workload: (task name, replicas, template).
type Pods = (String, i64, PodShape);

/// Adds `replicas` pods of `shape` to a gang's tasks as `phalanx serve` groups its pods: into
/// the task whose pods they match ([`phalanx_translate::task_for`]), else a new one.
fn add_pods(tasks: &mut Vec<Pods>, replicas: i64, shape: PodShape) {
    let existing = tasks.iter().map(|t| (t.0.as_str(), &t.2.spec));
    match phalanx_translate::task_for(existing, &shape.task, &shape.spec) {
        Ok(i) => tasks[i].1 = tasks[i].1.saturating_add(replicas),
        Err(task) => tasks.push((task, replicas, shape)),
    }
}

/// A gang its pods define: its size, its pods, their Kueue queue label and Volcano queue name.
type KueueGroup = (i64, Vec<Pods>, Option<String>, Option<String>);

/// A job under construction.
#[derive(Default)]
struct Gang {
    name: String,
    queue: Option<String>,
    priority: Option<String>,
    min_member: Option<i64>,
    min_resources: Option<ResourceMap>,
    depends_on: Vec<String>,
    annotations: BTreeMap<String, String>,
    tasks: Vec<(String, i64, PodShape, Option<i64>)>,
    duration: Option<f64>,
    namespace: String,
    origin: String,
}

struct Ctx {
    params: Params,
    out: Converted,
    /// Resource names met so far (the translation reads quantities through it).
    table: ResourceTable,
    /// Objects that cannot be read, each with where it is and why.
    invalid: Vec<String>,
    queues: BTreeMap<String, QueueRecord>,
    /// Volcano queue object name -> queue path.
    volcano_queues: BTreeMap<String, String>,
    /// Volcano Queue objects read but not yet placed: where each goes (`spec.parent` may name
    /// a Queue further on), its own record, and the document it came from.
    volcano_pending: BTreeMap<
        String,
        (
            Result<phalanx_translate::VolcanoQueue, TranslateError>,
            String,
        ),
    >,
    /// Kueue LocalQueue `ns/name` -> ClusterQueue name; ClusterQueue name -> path.
    local_queues: BTreeMap<String, String>,
    cluster_queues: BTreeMap<String, String>,
    ns_quota: BTreeMap<String, String>,
    priority_classes: phalanx_translate::PriorityClasses,
    gangs: Vec<Gang>,
    names: BTreeSet<String>,
}

fn meta(v: &Value) -> (String, String) {
    let name = text(v, &["metadata", "name"])
        .or_else(|| {
            text(v, &["metadata", "generateName"]).map(|g| g.trim_end_matches('-').to_string())
        })
        .unwrap_or_else(|| "unnamed".into());
    let ns = text(v, &["metadata", "namespace"]).unwrap_or_else(|| "default".into());
    (ns, name)
}

/// Reads every YAML document under `path`.
fn read_docs(path: &Path) -> Result<Vec<Doc>, ConvertError> {
    let mut files: Vec<PathBuf> = Vec::new();
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, out)?;
            }
        } else if p
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    walk(path, &mut files).map_err(|source| ConvertError::Io {
        file: path.display().to_string(),
        source,
    })?;
    if path.is_file() && files.is_empty() {
        files.push(path.to_path_buf());
    }
    let mut docs = Vec::new();
    for f in files {
        let file = f.display().to_string();
        let text = std::fs::read_to_string(&f).map_err(|source| ConvertError::Io {
            file: file.clone(),
            source,
        })?;
        for (index, de) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let v: serde_norway::Value =
                serde::Deserialize::deserialize(de).map_err(|e| ConvertError::Bad {
                    file: file.clone(),
                    line: index + 1,
                    message: format!("YAML document {}: {e}", index + 1),
                })?;
            if v.is_null() {
                continue;
            }
            let v = serde_json::to_value(&v).map_err(|e| ConvertError::Bad {
                file: file.clone(),
                line: index + 1,
                message: format!("YAML document {}: {e}", index + 1),
            })?;
            docs.push(Doc {
                file: file.clone(),
                index: index + 1,
                v,
            });
        }
    }
    Ok(docs)
}

/// Converts the manifests at `path`.
pub fn convert(path: &Path, params: &Params) -> Result<Converted, ConvertError> {
    let docs = read_docs(path)?;
    let mut cx = Ctx {
        params: params.clone(),
        out: Converted::default(),
        table: ResourceTable::new(),
        invalid: Vec::new(),
        queues: BTreeMap::new(),
        volcano_queues: BTreeMap::new(),
        volcano_pending: BTreeMap::new(),
        local_queues: BTreeMap::new(),
        cluster_queues: BTreeMap::new(),
        ns_quota: BTreeMap::new(),
        priority_classes: Default::default(),
        gangs: Vec::new(),
        names: BTreeSet::new(),
    };
    let kind = |d: &Doc| text(&d.v, &["kind"]).unwrap_or_default();
    let group = |d: &Doc| {
        text(&d.v, &["apiVersion"])
            .unwrap_or_default()
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    };
    // Pass 1: things others refer to.
    let mut nodes = Vec::new();
    for d in &docs {
        match (kind(d).as_str(), group(d).as_str()) {
            ("Node", _) => match node(&d.v, &mut cx.table) {
                Ok(n) => nodes.push(n),
                Err(e) => cx
                    .invalid
                    .push(format!("{} (document {}): {e}", d.file, d.index)),
            },
            ("Queue", "scheduling.volcano.sh") => cx.volcano_queue(d),
            ("ClusterQueue", "kueue.x-k8s.io") => cx.cluster_queue(&d.v),
            ("ElasticQuota", _) => cx.elastic_quota(&d.v),
            ("PriorityClass", _) => {
                match serde_json::from_value::<k8s_openapi::api::scheduling::v1::PriorityClass>(
                    d.v.clone(),
                ) {
                    Ok(pc) => cx.priority_classes.apply(&pc),
                    Err(e) => cx.invalid.push(format!(
                        "{} (document {}): PriorityClass {}: {e}",
                        d.file,
                        d.index,
                        meta(&d.v).1
                    )),
                }
            }
            _ => {}
        }
    }
    cx.place_volcano_queues();
    for d in &docs {
        if kind(d) == "LocalQueue" {
            let (ns, name) = meta(&d.v);
            if let Some(cq) = text(&d.v, &["spec", "clusterQueue"]) {
                cx.local_queues.insert(format!("{ns}/{name}"), cq);
            }
        }
    }
    // Pass 2: gangs.
    let pod_groups: BTreeMap<String, &Doc> = docs
        .iter()
        .filter(|d| kind(d) == "PodGroup")
        .map(|d| {
            let (ns, name) = meta(&d.v);
            (format!("{ns}/{name}"), d)
        })
        .collect();
    let templates: BTreeMap<String, &Doc> = docs
        .iter()
        .filter(|d| kind(d) == "JobTemplate")
        .map(|d| {
            let (ns, name) = meta(&d.v);
            (format!("{ns}/{name}"), d)
        })
        .collect();
    let mut used_templates = BTreeSet::new();
    let mut grouped: BTreeMap<String, Vec<Pods>> = BTreeMap::new();
    let mut kueue_groups: BTreeMap<String, KueueGroup> = BTreeMap::new();
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &docs {
        let k = kind(d);
        let g = group(d);
        let (ns, name) = meta(&d.v);
        let at = format!("{} (document {})", d.file, d.index);
        match (k.as_str(), g.as_str()) {
            ("Node", _)
            | ("Queue", "scheduling.volcano.sh")
            | ("ClusterQueue", _)
            | ("LocalQueue", _)
            | ("ElasticQuota", _)
            | ("PriorityClass", _)
            | ("PodGroup", _)
            | ("JobTemplate", _) => {}
            ("Job", "batch.volcano.sh") => {
                if let Some(gang) = cx.vcjob(&d.v, &ns, &name, &at) {
                    cx.gangs.push(gang);
                }
            }
            ("JobFlow", _) => cx.jobflow(&d.v, &ns, &name, &templates, &mut used_templates, &at),
            ("Workflow", "argoproj.io") => cx.workflow(&d.v, &ns, &name, &at),
            ("SparkApplication", _) => {
                let gang = cx.spark(&d.v, &ns, &name, &pod_groups, &at);
                cx.gangs.push(gang);
            }
            ("JobSet", _) => {
                let gang = cx.jobset(&d.v, &ns, &name, &at);
                // Pods that name a PodGroup (the upstream gang API's schedulingGroup, or a
                // PodGroup annotation or label) are that group's, as live; else the JobSet is
                // one gang (as Kueue admits it).
                match gang.tasks.first().and_then(|t| t.2.group.clone()) {
                    Some(pg) => {
                        let tasks = grouped.entry(format!("{ns}/{pg}")).or_default();
                        for (_, replicas, shape, _) in gang.tasks {
                            add_pods(tasks, replicas, shape);
                        }
                    }
                    None => cx.gangs.push(gang),
                }
            }
            (_, "kubeflow.org") if s(&d.v, &["spec"]).is_some_and(has_replica_specs) => {
                let gang = cx.kubeflow(&d.v, &ns, &name, &k, &at);
                cx.gangs.push(gang);
            }
            ("Pod", "v1")
            | ("ReplicaSet", "apps")
            | ("Deployment", "apps")
            | ("StatefulSet", "apps")
            | ("Job", "batch") => {
                let (template, replicas) = match k.as_str() {
                    "Pod" => (d.v.clone(), 1),
                    "Job" => (
                        s(&d.v, &["spec", "template"])
                            .cloned()
                            .unwrap_or(Value::Null),
                        int(&d.v, &["spec", "parallelism"]).unwrap_or(1).max(1),
                    ),
                    _ => (
                        s(&d.v, &["spec", "template"])
                            .cloned()
                            .unwrap_or(Value::Null),
                        int(&d.v, &["spec", "replicas"]).unwrap_or(1).max(0),
                    ),
                };
                let mut shape = cx.shape(&template, &at);
                let own = strings(s(&d.v, &["metadata", "annotations"]));
                if shape.duration.is_none() {
                    shape.duration = own.get(DURATION).and_then(|t| parse_duration(t));
                    shape.spec.duration = shape.duration.map(phalanx_model::Span::from_secs_f64);
                }
                // The object's own labels and annotations, then its pod template's.
                let mut labels = strings(s(&d.v, &["metadata", "labels"]));
                let mut annotations = own.clone();
                if k != "Pod" {
                    labels.extend(shape.labels.clone());
                    annotations.extend(shape.annotations.clone());
                }
                // The group keys as `phalanx serve` reads them on the pods; a workload's pods
                // are owned by it (Volcano's default group of a controller's pods).
                let owner = match (k.as_str(), text(&d.v, &["metadata", "uid"])) {
                    ("Pod", _) => s(&d.v, &["metadata", "ownerReferences"])
                        .and_then(Value::as_array)
                        .and_then(|os| os.iter().find(|o| o["controller"] == true))
                        .and_then(|o| o["uid"].as_str())
                        .map(str::to_string),
                    (_, uid) => Some(uid.unwrap_or_else(|| name.clone())),
                };
                let key = phalanx_translate::group_keys(
                    &format!("{ns}/{name}"),
                    Some(&labels),
                    Some(&annotations),
                    text(&template, &["spec", "schedulingGroup", "podGroupName"]).as_deref(),
                    owner.as_deref(),
                );
                if let phalanx_translate::GroupRef::Group(_, pg) = key {
                    // Tasks as `phalanx serve` makes them: by the pods' task keys and specs.
                    add_pods(
                        grouped.entry(format!("{ns}/{pg}")).or_default(),
                        replicas,
                        shape,
                    );
                } else if let phalanx_translate::GroupRef::Pods {
                    name: kg,
                    min_member,
                } = key
                {
                    let total = match min_member {
                        Ok(n) => i64::from(n),
                        Err(e) => {
                            cx.invalid.push(format!("{at}: {e}"));
                            continue;
                        }
                    };
                    let q = labels.get("kueue.x-k8s.io/queue-name").cloned();
                    let volcano = shape.queue.clone();
                    let e = kueue_groups.entry(format!("{ns}/{kg}")).or_insert((
                        total,
                        Vec::new(),
                        q,
                        volcano,
                    ));
                    add_pods(&mut e.1, replicas, shape);
                } else {
                    let queue = labels
                        .get("kueue.x-k8s.io/queue-name")
                        .and_then(|q| cx.kueue_queue(&ns, q));
                    let min = if k == "Job" {
                        Some(
                            annotations
                                .get("kueue.x-k8s.io/job-min-parallelism")
                                .or_else(|| own.get("kueue.x-k8s.io/job-min-parallelism"))
                                .and_then(|t| t.parse().ok())
                                .unwrap_or(replicas),
                        )
                    } else {
                        Some(1)
                    };
                    // A pod of no group is a gang of one, named and queued as serve names and
                    // queues it; a workload's pods are one job of its replicas.
                    let (name, queue) = if k == "Pod" {
                        let alone = phalanx_translate::GroupRef::Alone;
                        let volcano = shape.queue.as_ref().map(|q| cx.volcano_path(q));
                        (
                            phalanx_translate::pod_job(&ns, &name, &alone),
                            queue.or(volcano),
                        )
                    } else {
                        (format!("{ns}/{name}"), queue)
                    };
                    let queue = queue.or_else(|| cx.ns_quota.get(&ns).cloned());
                    cx.gangs.push(Gang {
                        name,
                        queue,
                        min_member: min,
                        tasks: vec![("pod".into(), replicas, shape, None)],
                        namespace: ns.clone(),
                        origin: at,
                        ..Default::default()
                    });
                }
            }
            (other, _) => skipped.entry(other.to_string()).or_default().push(at),
        }
    }
    for (key, pods) in grouped {
        let Some(pg) = pod_groups.get(&key) else {
            // Live, such pods wait for their PodGroup (`PodGroupNotFound`) and never run.
            cx.invalid.push(format!(
                "Pod {key}: pods name PodGroup {key}, which no manifest defines; they would \
                 never be scheduled"
            ));
            continue;
        };
        let at = format!("{} (document {})", pg.file, pg.index);
        let spec = match group_spec(&pg.v, &mut cx) {
            Ok(spec) => spec,
            Err(e) => {
                cx.invalid.push(format!("{at}: {e}"));
                continue;
            }
        };
        let min_resources = spec.min_resources.map(|r| named(&cx.table, &r));
        let tasks = pods
            .into_iter()
            .map(|(t, r, s)| {
                let min = spec.min_task_member.get(&t).map(|&m| i64::from(m));
                (t, r, s, min)
            })
            .collect();
        cx.gangs.push(Gang {
            name: key,
            queue: Some(spec.queue),
            priority: spec.priority_class,
            min_member: Some(i64::from(spec.min_member)),
            min_resources,
            depends_on: spec.depends_on,
            tasks,
            namespace: meta(&pg.v).0,
            origin: at,
            ..Default::default()
        });
    }
    for (key, (total, pods, kueue, volcano)) in kueue_groups {
        let ns = key.split('/').next().unwrap_or("default").to_string();
        let queue = kueue
            .and_then(|q| cx.kueue_queue(&ns, &q))
            .or_else(|| volcano.map(|q| cx.volcano_path(&q)));
        cx.gangs.push(Gang {
            name: key,
            queue,
            min_member: Some(total),
            tasks: pods.into_iter().map(|(t, r, s)| (t, r, s, None)).collect(),
            namespace: ns,
            ..Default::default()
        });
    }
    // PodGroups with no pods: their operator creates the pods (Spark, Kubeflow) or none exist.
    let referenced: BTreeSet<String> = cx
        .gangs
        .iter()
        .map(|g| g.name.clone())
        .chain(
            cx.gangs
                .iter()
                .filter_map(|g| g.annotations.get("phalanx.dev/pod-group").cloned()),
        )
        .collect();
    for (key, pg) in &pod_groups {
        if !referenced.contains(key) {
            cx.out.warnings.push(format!(
                "PodGroup {key} ({} document {}): no pods name it, so there is nothing to schedule (minMember {})",
                pg.file,
                pg.index,
                int(&pg.v, &["spec", "minMember"]).unwrap_or(0)
            ));
        }
    }
    for (key, _) in templates
        .iter()
        .filter(|(k, _)| !used_templates.contains(*k))
    {
        cx.out.warnings.push(format!(
            "JobTemplate {key}: no JobFlow uses it, so it creates no job"
        ));
    }
    for (k, places) in &skipped {
        cx.out.warnings.push(format!(
            "unsupported kind {k} not converted ({} object(s): {})",
            places.len(),
            places.join(", ")
        ));
    }
    cx.finish(nodes)
}

fn has_replica_specs(spec: &Value) -> bool {
    spec.as_object()
        .is_some_and(|m| m.keys().any(|k| k.ends_with("ReplicaSpecs")))
}

/// A PodGroup of either flavour as `phalanx serve` reads it ([`phalanx_translate::pod_group`]):
/// `minMember`, `minTaskMember`, `minResources`, the queue (`spec.queue` or the queue-name
/// annotation, placed among the Volcano Queues), dependencies and priority class.
fn group_spec(v: &Value, cx: &mut Ctx) -> Result<phalanx_translate::GroupSpec, TranslateError> {
    let (ns, name) = meta(v);
    let flavor =
        phalanx_translate::Flavor::of_api_version(&text(v, &["apiVersion"]).unwrap_or_default())
            .unwrap_or(phalanx_translate::Flavor::Volcano);
    let object: kube_core::DynamicObject = serde_json::from_value(v.clone()).map_err(|e| {
        TranslateError::new(
            "PodGroup",
            &format!("{ns}/{name}"),
            "(object)",
            e.to_string(),
        )
    })?;
    phalanx_translate::pod_group(&object, flavor, &mut cx.table, &cx.volcano_queues)
}

/// Resources as a trace's resource map (canonical amounts, by name).
fn named(table: &ResourceTable, r: &phalanx_model::Resources) -> ResourceMap {
    r.iter_nonzero()
        .filter(|&(id, _)| id != ResourceId::PODS)
        .map(|(id, v)| {
            (
                table.name(id).to_string(),
                Amount::Text(table.format_amount(id, v)),
            )
        })
        .collect()
}

/// A Node as `phalanx serve` reads it ([`phalanx_translate::node`]): allocatable (else
/// capacity), labels, taints and cordon.
fn node(v: &Value, table: &mut ResourceTable) -> Result<NodeRecord, TranslateError> {
    let (_, name) = meta(v);
    let n: K8sNode = serde_json::from_value(v.clone())
        .map_err(|e| TranslateError::new("Node", &name, "(object)", e.to_string()))?;
    let node = phalanx_translate::node(&n, table)?;
    let mut resources = named(table, &node.allocatable);
    // Pod capacity is the one lane `named` leaves out; a node without it gets the trace
    // format's default.
    let pods = node.allocatable.get(ResourceId::PODS);
    if pods > 0 {
        resources.insert("pods".into(), Amount::from(pods));
    }
    Ok(NodeRecord {
        time: None,
        name: node.name,
        resources,
        labels: node.labels,
        taints: node.taints,
        unschedulable: node.unschedulable,
    })
}

impl Ctx {
    /// A pod template read by [`pod_shape`]; one that cannot be read is recorded as invalid
    /// (and its job left out, with `--skip-invalid`).
    fn shape(&mut self, template: &Value, at: &str) -> PodShape {
        match pod_shape(template, &mut self.table) {
            Ok(shape) => shape,
            Err(e) => {
                let message = format!("{at}: {e}");
                self.invalid.push(message.clone());
                PodShape {
                    invalid: Some(message),
                    ..PodShape::default()
                }
            }
        }
    }

    fn add_queue(&mut self, q: QueueRecord) {
        self.queues.insert(q.name.clone(), q);
    }

    /// Reads a Volcano Queue as `phalanx serve` does ([`phalanx_translate::volcano_queue`]);
    /// it is placed once every Queue is read, since `spec.parent` may name one further on.
    fn volcano_queue(&mut self, d: &Doc) {
        let (_, name) = meta(&d.v);
        let parsed = serde_json::from_value::<kube_core::DynamicObject>(d.v.clone())
            .map_err(|e| TranslateError::new("Queue", &name, "(object)", e.to_string()))
            .and_then(|o| phalanx_translate::volcano_queue(&o));
        let at = format!("{} (document {})", d.file, d.index);
        self.volcano_pending.insert(name, (parsed, at));
    }

    /// Places every Volcano Queue read, following `spec.parent` chains however deep, by
    /// [`phalanx_translate::resolve_parents`], the rule `phalanx serve` applies. A Queue that
    /// cannot be used (a bad field, a weight outside 1..=65535, a parent chain that loops or
    /// names a Queue no manifest defines) is invalid input, named with its document; so is
    /// every Queue below it.
    fn place_volcano_queues(&mut self) {
        let pending = std::mem::take(&mut self.volcano_pending);
        let objects = pending
            .iter()
            .map(|(name, (parsed, _))| (name.clone(), parsed.clone()))
            .collect();
        let mut told = BTreeSet::new();
        for (name, resolved) in phalanx_translate::resolve_parents(&objects) {
            let records = resolved.and_then(|list| {
                match list
                    .iter()
                    .find(|r| !(1..=65535).contains(&r.weight.unwrap_or(1)))
                {
                    Some(r) => Err(TranslateError::new(
                        "Queue",
                        &name,
                        "spec.weight",
                        format!(
                            "must be a whole number in 1..=65535, got {} (queue {})",
                            r.weight.unwrap_or(1),
                            r.name
                        ),
                    )),
                    None => Ok(list),
                }
            });
            match records {
                Ok(list) => {
                    let Some((own, parents)) = list.split_last() else {
                        continue;
                    };
                    for r in parents {
                        self.queues
                            .entry(r.name.clone())
                            .or_insert_with(|| r.clone());
                    }
                    self.volcano_queues.insert(name, own.name.clone());
                    self.add_queue(own.clone());
                }
                // Told once, at the Queue at fault, not at each Queue below it.
                Err(e) => {
                    if told.insert(e.object.clone()) {
                        // The Queue at fault, else (it has no name the translation could
                        // read) the one being placed: either way, a document is named.
                        let at = pending
                            .get(&e.object)
                            .or_else(|| pending.get(&name))
                            .map_or("", |p| p.1.as_str());
                        self.invalid.push(format!("{at}: {e}"));
                    }
                }
            }
        }
    }

    /// A queue weight as the trace takes it (1..=65535). A value outside that range is taken
    /// as the nearest bound and one that is not a number is left out (weight 1), each with a
    /// warning naming the object and the field: nothing changes silently.
    fn weight(&mut self, object: &str, field: &str, raw: Option<&Value>) -> Option<u32> {
        let raw = raw?;
        let parsed = match amount(raw) {
            Some(Amount::Int(i)) => Some(i as f64),
            Some(Amount::Float(f)) => Some(f),
            // Kubernetes quantities too (Kueue's weight is one: `500m` is a half).
            Some(Amount::Text(t)) => phalanx_model::Quantity::parse(&t)
                .and_then(|q| q.milli_value())
                .ok()
                .map(|m| m as f64 / 1000.0),
            None => None,
        };
        let Some(w) = parsed.filter(|w| w.is_finite()) else {
            self.out.warnings.push(format!(
                "{object}: {field}: {raw} is not a number; weight 1 is used"
            ));
            return None;
        };
        let taken = w.round().clamp(1.0, 65535.0) as u32;
        if f64::from(taken) != w {
            self.out.warnings.push(format!(
                "{object}: {field}: {raw} is not a whole number in 1..=65535; {taken} is used"
            ));
        }
        Some(taken)
    }

    fn volcano_path(&mut self, q: &str) -> String {
        match self.volcano_queues.get(q) {
            Some(p) => p.clone(),
            None => queue_path(q),
        }
    }

    fn cluster_queue(&mut self, v: &Value) {
        let (_, name) = meta(v);
        let path = match text(v, &["spec", "cohortName"]).or_else(|| text(v, &["spec", "cohort"])) {
            Some(c) => {
                let parent = queue_path(&c);
                if !self.queues.contains_key(&parent) {
                    self.add_queue(QueueRecord {
                        name: parent.clone(),
                        ..Default::default()
                    });
                }
                format!("{parent}.{name}")
            }
            None => queue_path(&name),
        };
        let mut nominal = ResourceMap::new();
        let mut borrow = ResourceMap::new();
        let mut has_borrow = false;
        for rg in s(v, &["spec", "resourceGroups"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for fl in rg
                .get("flavors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for r in fl
                    .get("resources")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(rn) = text(r, &["name"]) else {
                        continue;
                    };
                    if let Some(a) = r.get("nominalQuota").and_then(amount) {
                        nominal = add_maps(&nominal, &BTreeMap::from([(rn.clone(), a)]), 1);
                    }
                    if let Some(a) = r.get("borrowingLimit").and_then(amount) {
                        has_borrow = true;
                        borrow = add_maps(&borrow, &BTreeMap::from([(rn.clone(), a)]), 1);
                    }
                }
            }
        }
        let weight = self.weight(
            &format!("ClusterQueue {name}"),
            "spec.fairSharing.weight",
            s(v, &["spec", "fairSharing", "weight"]),
        );
        self.add_queue(QueueRecord {
            name: path.clone(),
            weight: weight.map(u64::from),
            deserved: (!nominal.is_empty()).then(|| nominal.clone()),
            capability: has_borrow.then(|| add_maps(&nominal, &borrow, 1)),
            ..Default::default()
        });
        self.cluster_queues.insert(name, path);
    }

    /// The queue a Kueue LocalQueue name stands for offline: its ClusterQueue's (Kueue's quota
    /// emulated by a Phalanx queue). `None` when the manifests define neither: `phalanx serve`
    /// does not read Kueue's queue label (Kueue admits the pods itself, by lifting its gate), so
    /// the job goes where serve puts it.
    fn kueue_queue(&mut self, ns: &str, local: &str) -> Option<String> {
        let cq = match self.local_queues.get(&format!("{ns}/{local}")) {
            Some(cq) => cq.clone(),
            None if self.cluster_queues.contains_key(local) => local.to_string(),
            None => return None,
        };
        Some(match self.cluster_queues.get(&cq) {
            Some(p) => p.clone(),
            None => queue_path(&cq),
        })
    }

    fn elastic_quota(&mut self, v: &Value) {
        let (ns, _) = meta(v);
        // Its own path: a Volcano queue may carry the namespace's name.
        let path = format!("root.{}-quota", ns.replace('.', "-"));
        self.add_queue(QueueRecord {
            name: path.clone(),
            guarantee: resource_map(s(v, &["spec", "min"])),
            capability: s(v, &["spec", "max"]).map(|m| resource_map(Some(m))),
            ..Default::default()
        });
        self.ns_quota.insert(ns, path);
    }

    fn vcjob_spec(&mut self, spec: &Value, ns: &str, name: &str, at: &str) -> Option<Gang> {
        let mut gang = Gang {
            name: format!("{ns}/{name}"),
            queue: text(spec, &["queue"]).map(|q| self.volcano_path(&q)),
            priority: text(spec, &["priorityClassName"]),
            min_member: int(spec, &["minAvailable"]),
            namespace: ns.to_string(),
            origin: at.to_string(),
            ..Default::default()
        };
        let mut deps = Vec::new();
        let mut total = 0;
        for (i, t) in spec
            .get("tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let tname = text(t, &["name"]).unwrap_or_else(|| format!("task{i}"));
            let replicas = int(t, &["replicas"]).unwrap_or(1).max(0);
            total += replicas;
            let shape = self.shape(t.get("template").unwrap_or(&Value::Null), at);
            if let Some(d) = s(t, &["dependsOn", "name"]).and_then(Value::as_array) {
                let names: Vec<String> = d
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect();
                deps.push(format!("{tname}<-{}", names.join(",")));
            }
            gang.tasks
                .push((tname, replicas, shape, int(t, &["minAvailable"])));
        }
        if let Some(m) = gang.min_member
            && m > total
        {
            self.out.warnings.push(format!(
                "Volcano Job {ns}/{name} at {at}: minAvailable {m} is above its {total} replicas; Volcano's admission webhook rejects it, so it is not converted"
            ));
            return None;
        }
        if !deps.is_empty() {
            gang.annotations
                .insert("phalanx.dev/task-depends-on".into(), deps.join("; "));
        }
        Some(gang)
    }

    fn vcjob(&mut self, v: &Value, ns: &str, name: &str, at: &str) -> Option<Gang> {
        let spec = v.get("spec").cloned().unwrap_or(Value::Null);
        let mut g = self.vcjob_spec(&spec, ns, name, at)?;
        g.duration = strings(s(v, &["metadata", "annotations"]))
            .get(DURATION)
            .and_then(|d| parse_duration(d));
        Some(g)
    }

    fn jobflow(
        &mut self,
        v: &Value,
        ns: &str,
        name: &str,
        templates: &BTreeMap<String, &Doc>,
        used: &mut BTreeSet<String>,
        at: &str,
    ) {
        for f in s(v, &["spec", "flows"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(flow) = text(f, &["name"]) else {
                continue;
            };
            let key = format!("{ns}/{flow}");
            let job = format!("{name}-{flow}");
            let deps: Vec<String> = s(f, &["dependsOn", "targets"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(|t| format!("{ns}/{name}-{t}")))
                .collect();
            let Some(tpl) = templates.get(&key) else {
                self.out.warnings.push(format!(
                    "JobFlow {ns}/{name} at {at}: flow {flow} names JobTemplate {key}, which no manifest defines; it becomes a one-pod job"
                ));
                self.gangs.push(Gang {
                    name: format!("{ns}/{job}"),
                    depends_on: deps,
                    tasks: vec![("pod".into(), 1, PodShape::default(), None)],
                    namespace: ns.to_string(),
                    origin: at.to_string(),
                    ..Default::default()
                });
                continue;
            };
            used.insert(key);
            let spec = tpl.v.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(mut g) = self.vcjob_spec(&spec, ns, &job, at) {
                g.depends_on = deps;
                self.gangs.push(g);
            }
        }
    }

    fn workflow(&mut self, v: &Value, ns: &str, name: &str, at: &str) {
        let templates: BTreeMap<String, &Value> = s(v, &["spec", "templates"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| text(t, &["name"]).map(|n| (n, t)))
            .collect();
        let mut any = false;
        for t in templates.values() {
            let Some(tasks) = s(t, &["dag", "tasks"]).and_then(Value::as_array) else {
                continue;
            };
            for task in tasks {
                let Some(tname) = text(task, &["name"]) else {
                    continue;
                };
                let deps: Vec<String> = task
                    .get("dependencies")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str().map(|d| format!("{ns}/{name}-{d}")))
                    .collect();
                let tpl = text(task, &["template"]).and_then(|n| templates.get(&n).copied());
                let manifest = tpl.and_then(|t| text(t, &["resource", "manifest"]));
                let Some(mut manifest) = manifest else {
                    self.out.warnings.push(format!(
                        "Workflow {ns}/{name} at {at}: DAG task {tname} runs a template with no resource manifest; it becomes a one-pod job"
                    ));
                    self.gangs.push(Gang {
                        name: format!("{ns}/{name}-{tname}"),
                        depends_on: deps,
                        tasks: vec![("pod".into(), 1, PodShape::default(), None)],
                        namespace: ns.to_string(),
                        origin: at.to_string(),
                        ..Default::default()
                    });
                    any = true;
                    continue;
                };
                for p in task
                    .get("arguments")
                    .and_then(|a| a.get("parameters"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let (Some(k), Some(val)) = (text(p, &["name"]), text(p, &["value"])) {
                        manifest =
                            manifest.replace(&format!("{{{{inputs.parameters.{k}}}}}"), &val);
                    }
                }
                manifest = manifest.replace("{{workflow.name}}", name);
                let parsed: Option<Value> =
                    serde_norway::from_str::<serde_norway::Value>(&manifest)
                        .ok()
                        .and_then(|y| serde_json::to_value(y).ok());
                let job = format!("{name}-{tname}");
                match parsed {
                    Some(m) if text(&m, &["kind"]).as_deref() == Some("Job")
                        && text(&m, &["apiVersion"]).is_some_and(|a| a.starts_with("batch.volcano.sh")) =>
                    {
                        let spec = m.get("spec").cloned().unwrap_or(Value::Null);
                        if let Some(mut g) = self.vcjob_spec(&spec, ns, &job, at) {
                            g.depends_on = deps;
                            self.gangs.push(g);
                            any = true;
                        }
                    }
                    _ => self.out.warnings.push(format!(
                        "Workflow {ns}/{name} at {at}: DAG task {tname} creates an object this converter does not read; not converted"
                    )),
                }
            }
        }
        if !any {
            self.out.warnings.push(format!(
                "Workflow {ns}/{name} at {at}: no DAG tasks converted"
            ));
        }
    }

    fn kubeflow(&mut self, v: &Value, ns: &str, name: &str, kind: &str, at: &str) -> Gang {
        let spec = v.get("spec").cloned().unwrap_or(Value::Null);
        let mut gang = Gang {
            name: format!("{ns}/{name}"),
            namespace: ns.to_string(),
            origin: at.to_string(),
            ..Default::default()
        };
        let replica_specs = spec
            .as_object()
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.ends_with("ReplicaSpecs"))
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or(Value::Null);
        let mut total = 0;
        let mut workers = 0;
        for (role, rs) in replica_specs.as_object().into_iter().flatten() {
            let replicas = int(rs, &["replicas"]).unwrap_or(1).max(0);
            total += replicas;
            if role.eq_ignore_ascii_case("worker") {
                workers = replicas;
            }
            let shape = self.shape(rs.get("template").unwrap_or(&Value::Null), at);
            gang.tasks
                .push((role.to_lowercase(), replicas, shape, None));
        }
        let sp = s(&spec, &["runPolicy", "schedulingPolicy"])
            .cloned()
            .unwrap_or(Value::Null);
        gang.min_member = int(&sp, &["minAvailable"]).or_else(|| {
            int(&spec, &["elasticPolicy", "minReplicas"]).map(|m| total - workers + m.min(workers))
        });
        if gang.min_member.is_none() {
            gang.min_member = Some(total);
        }
        gang.queue = text(&sp, &["queue"]).map(|q| self.volcano_path(&q));
        gang.priority = text(&sp, &["priorityClass"]);
        gang.min_resources = sp.get("minResources").map(|m| resource_map(Some(m)));
        gang.duration = strings(s(v, &["metadata", "annotations"]))
            .get(DURATION)
            .and_then(|d| parse_duration(d));
        if gang.tasks.is_empty() {
            self.out
                .warnings
                .push(format!("{kind} {ns}/{name} at {at}: no replicas"));
        }
        gang
    }

    fn spark(
        &mut self,
        v: &Value,
        ns: &str,
        name: &str,
        pod_groups: &BTreeMap<String, &Doc>,
        at: &str,
    ) -> Gang {
        let spec = v.get("spec").cloned().unwrap_or(Value::Null);
        let role = |r: &str| -> PodShape {
            let rv = spec.get(r).cloned().unwrap_or(Value::Null);
            let cores = s(&rv, &["coreRequest"])
                .and_then(amount)
                .or_else(|| s(&rv, &["cores"]).and_then(amount))
                .unwrap_or(Amount::Int(1));
            let mem_mi = text(&rv, &["memory"])
                .and_then(|m| jvm_mib(&m))
                .unwrap_or(1024);
            let overhead = text(&rv, &["memoryOverhead"])
                .and_then(|m| jvm_mib(&m))
                .unwrap_or((mem_mi / 10).max(384));
            let mut requests = BTreeMap::from([
                ("cpu".to_string(), cores),
                (
                    "memory".to_string(),
                    Amount::Text(format!("{}Mi", mem_mi.saturating_add(overhead))),
                ),
            ]);
            if let Some(g) = s(&rv, &["gpu", "name"]).and_then(Value::as_str) {
                requests.insert(
                    g.to_string(),
                    Amount::from(int(&rv, &["gpu", "quantity"]).unwrap_or(1)),
                );
            }
            let annotations = strings(rv.get("annotations"));
            PodShape {
                requests,
                node_selector: strings(rv.get("nodeSelector")),
                tolerations: rv
                    .get("tolerations")
                    .and_then(|t| serde_json::from_value::<Vec<K8sToleration>>(t.clone()).ok())
                    .map(|t| phalanx_translate::tolerations(&t))
                    .unwrap_or_default(),
                duration: annotations.get(DURATION).and_then(|d| parse_duration(d)),
                labels: strings(rv.get("labels")),
                annotations,
                ..PodShape::default()
            }
        };
        let driver = role("driver");
        let executor = role("executor");
        let dynamic =
            s(&spec, &["dynamicAllocation", "enabled"]).and_then(Value::as_bool) == Some(true);
        let instances = if dynamic {
            int(&spec, &["dynamicAllocation", "initialExecutors"])
                .or_else(|| int(&spec, &["dynamicAllocation", "minExecutors"]))
                .or_else(|| int(&spec, &["executor", "instances"]))
                .unwrap_or(1)
        } else {
            int(&spec, &["executor", "instances"]).unwrap_or(1)
        }
        .max(0);
        if dynamic {
            self.out.warnings.push(format!(
                "SparkApplication {ns}/{name} at {at}: dynamic allocation is simulated with a fixed {instances} executors (initialExecutors, else minExecutors)"
            ));
        }
        let pg_name = executor
            .annotations
            .get("scheduling.k8s.io/group-name")
            .cloned();
        let mut gang = Gang {
            name: format!("{ns}/{name}"),
            namespace: ns.to_string(),
            origin: at.to_string(),
            min_member: Some(1),
            min_resources: Some(add_maps(&driver.requests, &executor.requests, instances)),
            queue: text(&spec, &["batchSchedulerOptions", "queue"]).map(|q| self.volcano_path(&q)),
            priority: text(&spec, &["batchSchedulerOptions", "priorityClassName"]),
            duration: strings(s(v, &["metadata", "annotations"]))
                .get(DURATION)
                .and_then(|d| parse_duration(d)),
            ..Default::default()
        };
        if let Some(res) = s(&spec, &["batchSchedulerOptions", "resources"]) {
            gang.min_resources = Some(resource_map(Some(res)));
        }
        if let Some(pg) = pg_name {
            let key = format!("{ns}/{pg}");
            gang.annotations
                .insert("phalanx.dev/pod-group".into(), key.clone());
            if let Some(d) = pod_groups.get(&key) {
                gang.min_member = int(&d.v, &["spec", "minMember"]);
                if let Some(q) = text(&d.v, &["spec", "queue"]) {
                    gang.queue = Some(self.volcano_path(&q));
                }
                if let Some(m) = s(&d.v, &["spec", "minResources"]) {
                    gang.min_resources = Some(resource_map(Some(m)));
                } else {
                    gang.min_resources = None;
                }
            }
        }
        gang.tasks.push(("driver".into(), 1, driver, None));
        gang.tasks
            .push(("executor".into(), instances, executor, None));
        gang
    }

    fn jobset(&mut self, v: &Value, ns: &str, name: &str, at: &str) -> Gang {
        let labels = strings(s(v, &["metadata", "labels"]));
        let queue = labels
            .get("kueue.x-k8s.io/queue-name")
            .cloned()
            .and_then(|q| self.kueue_queue(ns, &q));
        let mut gang = Gang {
            name: format!("{ns}/{name}"),
            queue,
            namespace: ns.to_string(),
            origin: at.to_string(),
            ..Default::default()
        };
        for rj in s(v, &["spec", "replicatedJobs"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rname = text(rj, &["name"]).unwrap_or_else(|| "job".into());
            let replicas = int(rj, &["replicas"]).unwrap_or(1).max(0);
            let par = int(rj, &["template", "spec", "parallelism"])
                .unwrap_or(1)
                .max(1);
            let shape = self.shape(
                s(rj, &["template", "spec", "template"]).unwrap_or(&Value::Null),
                at,
            );
            gang.tasks.push((rname, replicas * par, shape, None));
        }
        gang
    }

    fn finish(mut self, mut nodes: Vec<NodeRecord>) -> Result<Converted, ConvertError> {
        if nodes.is_empty() {
            let spec = self.params.nodes.clone();
            let (count, res) = spec.split_once(':').unwrap_or(("16", &spec));
            let count: usize = count.trim().parse().unwrap_or(16);
            let resources: ResourceMap = res
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), Amount::Text(v.trim().to_string())))
                .collect();
            for i in 0..count {
                let name = format!("node-{i:04}");
                nodes.push(NodeRecord {
                    labels: BTreeMap::from([
                        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
                        ("kubernetes.io/hostname".to_string(), name.clone()),
                        ("kubernetes.io/os".to_string(), "linux".to_string()),
                    ]),
                    name,
                    resources: resources.clone(),
                    ..Default::default()
                });
            }
            self.out.warnings.push(format!(
                "the manifests define no Node: {count} linux/amd64 nodes of {res} were added (--k8s-nodes)"
            ));
        }
        let mut jobs = Vec::new();
        let gangs = std::mem::take(&mut self.gangs);
        for g in gangs {
            if let Some(j) = self.job(g) {
                jobs.push(j);
            }
        }
        // A job whose queue no manifest defines, or that depends on a job that is not there,
        // would wait live (`QueueNotFound`, `DependencyMissing`) and never run: invalid input
        // here too, and so are the jobs that depend on it.
        let mut left_out: BTreeSet<String> = BTreeSet::new();
        for j in &jobs {
            if let Some(q) = &j.queue
                && q != "root.default"
                && !self.queues.contains_key(q)
            {
                self.invalid.push(format!(
                    "job {}: queue {q}: no Queue manifest defines it; live the job would wait \
                     with QueueNotFound",
                    j.name
                ));
                left_out.insert(j.name.clone());
            }
        }
        loop {
            let known: BTreeSet<&String> = jobs
                .iter()
                .map(|j| &j.name)
                .filter(|n| !left_out.contains(*n))
                .collect();
            let blocked: Vec<(String, String)> = jobs
                .iter()
                .filter(|j| !left_out.contains(&j.name))
                .filter_map(|j| {
                    let d = j.depends_on.iter().find(|d| !known.contains(d))?;
                    Some((j.name.clone(), d.clone()))
                })
                .collect();
            if blocked.is_empty() {
                break;
            }
            for (j, d) in blocked {
                let why = if jobs.iter().any(|x| x.name == d) {
                    "is left out"
                } else {
                    "is not in the manifests; live the job would wait with DependencyMissing"
                };
                self.invalid
                    .push(format!("job {j}: phalanx.dev/depends-on: {d} {why}"));
                left_out.insert(j);
            }
        }
        if !self.invalid.is_empty() {
            if !self.params.skip_invalid {
                return Err(ConvertError::Invalid(std::mem::take(&mut self.invalid)));
            }
            for i in std::mem::take(&mut self.invalid) {
                self.out
                    .warnings
                    .push(format!("left out (--skip-invalid): {i}"));
            }
        }
        jobs.retain(|j| !left_out.contains(&j.name));
        let mut out = std::mem::take(&mut self.out);
        out.records = self
            .queues
            .into_values()
            .filter(|q| q.name != "root")
            .map(Record::Queue)
            .chain(nodes.into_iter().map(Record::Node))
            .chain(jobs.into_iter().map(Record::Job))
            .collect();
        Ok(out)
    }

    fn job(&mut self, g: Gang) -> Option<JobRecord> {
        if g.tasks.iter().any(|t| t.2.invalid.is_some()) {
            // Told already (a warning with --skip-invalid); the job cannot be had whole.
            return None;
        }
        let mut name = g.name.clone();
        let mut n = 1;
        while !self.names.insert(name.clone()) {
            n += 1;
            name = format!("{}~{n}", g.name);
        }
        let total: i64 = g.tasks.iter().map(|t| t.1).sum();
        if total == 0 {
            self.out.warnings.push(format!(
                "{name} ({}): no pods, nothing to schedule; not converted",
                g.origin
            ));
            return None;
        }
        let min = g.min_member.unwrap_or(total);
        if min > total {
            self.out.warnings.push(format!(
                "{name} ({}): needs {min} pods together but only {total} exist; it would stay Pending forever, so it is not converted",
                g.origin
            ));
            return None;
        }
        // The one rule (`phalanx_translate::job_priority`): the group's priority class, else
        // the first pod's, else the global default. An operator object's class stands in for
        // its PodGroup's.
        if let Some(p) = &g.priority
            && self.priority_classes.value(p).is_none()
        {
            self.out.warnings.push(format!(
                "{name}: priority class {p} is not defined in the manifests; it is ignored"
            ));
        }
        let first = g.tasks.first().map(|t| &t.2);
        let priority = Some(phalanx_translate::job_priority(
            g.priority.as_deref(),
            first.and_then(|s| s.priority),
            first.and_then(|s| s.priority_class.as_deref()),
            &self.priority_classes,
        ))
        .filter(|&p| p != 0);
        let queue = g
            .queue
            .clone()
            .or_else(|| self.ns_quota.get(&g.namespace).cloned());
        let tasks = g
            .tasks
            .into_iter()
            .filter(|t| t.1 > 0)
            .map(|(tname, replicas, shape, tmin)| TaskRecord {
                name: tname,
                replicas: replicas as u32,
                requests: shape.requests,
                duration: shape
                    .duration
                    .or(g.duration)
                    .unwrap_or(self.params.default_duration),
                node_selector: shape.node_selector,
                tolerations: shape.tolerations,
                node_affinity: shape.affinity,
                min_member: tmin.map(|m| m.clamp(0, replicas) as u32).filter(|m| *m > 0),
                ..Default::default()
            })
            .collect();
        Some(JobRecord {
            time: None,
            name,
            queue: queue.filter(|q| q != "root.default"),
            priority,
            min_member: Some(min.max(1) as u32),
            min_resources: g.min_resources.filter(|m| !m.is_empty()),
            depends_on: g.depends_on,
            deadline: None,
            annotations: g.annotations,
            tasks,
        })
    }
}

/// A JVM-style memory string (`512m`, `2g`, `1024`) in MiB.
fn jvm_mib(t: &str) -> Option<i64> {
    let t = t.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1.0 / 1024.0),
        'm' => (&t[..t.len() - 1], 1.0),
        'g' => (&t[..t.len() - 1], 1024.0),
        't' => (&t[..t.len() - 1], 1024.0 * 1024.0),
        _ => (t, 1.0 / (1024.0 * 1024.0)),
    };
    num.parse::<f64>().ok().map(|v| (v * mult).ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_jvm_memory() {
        assert_eq!(parse_duration("90s"), Some(90.0));
        assert_eq!(parse_duration("10m"), Some(600.0));
        assert_eq!(parse_duration("2h"), Some(7200.0));
        assert_eq!(parse_duration("45"), Some(45.0));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(jvm_mib("512m"), Some(512));
        assert_eq!(jvm_mib("2g"), Some(2048));
    }
}
