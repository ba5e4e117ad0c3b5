//! One vocabulary, two paths: a manifest means the same to `phalanx serve` as to
//! `phalanx trace convert --from k8s` + `phalanx simulate`. For each case, the same YAML
//! documents go
//! - live: into [`Core`], the state machine `serve` runs, as its watchers hand objects over
//!   (Nodes, Volcano Queues, PodGroups of both flavours, Pods with a UID and Phalanx's scheduler
//!   name, as a user switching schedulers sets it); the end-to-end tests cover the watchers;
//! - offline: through the converter and the trace reader, as a user's run would.
//!
//! Both must yield the same jobs (gang, `min_member`, per-task requests and constraints, queue,
//! dependencies, priority), the same queue tree, and, on the same nodes, the same first cycle of
//! placements. A document one path accepts and the other refuses fails the test.
//!
//! Operator objects (Volcano Job, PyTorchJob, SparkApplication, JobSet, Kueue pod groups) are
//! read only by the converter: live, the operator creates PodGroups and pods, which is what the
//! stand-ins of the operator tests do. They are not compared here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Node as K8sNode, Pod};
use kube::api::DynamicObject;
use phalanx_k8s::core::{Change, Core, Input};
use phalanx_k8s::translate::Flavor;
use phalanx_model::{
    ClusterEvent, Decision, Job, NodeAffinity, QueueSpec, ResourceTable, Resources, Span, Time,
    Toleration,
};
use phalanx_scheduler::{Engine, EngineConfig};
use phalanx_simulator::convert;
use phalanx_simulator::trace;
use serde_json::{Value, json};

/// A task as both paths must see it; resources by name (the two paths number extended
/// resources in the order they meet them).
#[derive(Debug, Clone, PartialEq)]
struct TaskView {
    name: String,
    replicas: u32,
    min_member: u32,
    requests: BTreeMap<String, i64>,
    node_selector: BTreeMap<String, String>,
    affinity: Option<NodeAffinity>,
    tolerations: Vec<Toleration>,
    duration: Option<Span>,
}

/// A job as both paths must see it.
#[derive(Debug, Clone, PartialEq)]
struct JobView {
    queue: String,
    priority: i32,
    min_member: u32,
    min_resources: Option<BTreeMap<String, i64>>,
    depends_on: Vec<String>,
    tasks: Vec<TaskView>,
}

fn named(table: &ResourceTable, r: &Resources) -> BTreeMap<String, i64> {
    let mut m = table.to_named(r);
    // The engine counts each pod in the `pods` lane itself.
    m.remove("pods");
    m
}

fn view(table: &ResourceTable, j: &Job) -> JobView {
    JobView {
        queue: j.queue.clone(),
        priority: j.priority,
        min_member: j.min_member,
        min_resources: j.min_resources.as_ref().map(|r| named(table, r)),
        depends_on: j.depends_on.clone(),
        tasks: j
            .tasks
            .iter()
            .map(|t| TaskView {
                name: t.name.clone(),
                replicas: t.replicas,
                min_member: t.min_member,
                requests: named(table, &t.pod.requests),
                node_selector: t.pod.node_selector.clone(),
                affinity: t.pod.affinity.clone(),
                tolerations: t.pod.tolerations.clone(),
                duration: t.pod.duration,
            })
            .collect(),
    }
}

/// Placements of the first cycle: (job, task, node) -> pods.
type Placements = BTreeMap<(String, String, String), u32>;

struct Outcome {
    jobs: BTreeMap<String, JobView>,
    queues: Vec<QueueSpec>,
    placed: Placements,
}

/// The YAML documents of `files`, plus two nodes when they define none.
fn documents(files: &[PathBuf]) -> Vec<Value> {
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap();
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    if !docs.iter().any(|d| d["kind"] == "Node") {
        for i in 0..2 {
            docs.push(json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": format!("node-{i}"),
                             "labels": {"kubernetes.io/hostname": format!("node-{i}")}},
                "status": {"allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110",
                                           "nvidia.com/gpu": "8"}}
            }));
        }
    }
    docs
}

fn live(docs: &[Value]) -> Outcome {
    let mut c = Core::new(EngineConfig::default(), "phalanx", None);
    let (mut nodes, mut queues, mut volcano, mut plugins, mut pods, mut classes) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (i, d) in docs.iter().enumerate() {
        let api = d["apiVersion"].as_str().unwrap_or_default();
        match d["kind"].as_str().unwrap_or_default() {
            "Node" => nodes.push(serde_json::from_value::<K8sNode>(d.clone()).unwrap()),
            "PriorityClass" => classes.push(serde_json::from_value(d.clone()).unwrap()),
            "Queue" if api.starts_with("scheduling.volcano.sh") => {
                queues.push(serde_json::from_value::<DynamicObject>(d.clone()).unwrap())
            }
            "PodGroup" => {
                let mut o: DynamicObject = serde_json::from_value(d.clone()).unwrap();
                o.metadata.namespace.get_or_insert_with(|| "default".into());
                if api.starts_with("scheduling.x-k8s.io") {
                    plugins.push(o);
                } else {
                    volcano.push(o);
                }
            }
            "Pod" => {
                let mut p: Pod = serde_json::from_value(d.clone()).unwrap();
                p.metadata.uid = Some(format!("uid-{i}"));
                p.metadata.namespace.get_or_insert_with(|| "default".into());
                p.spec.get_or_insert_default().scheduler_name = Some("phalanx".into());
                pods.push(p);
            }
            _ => {}
        }
    }
    c.ingest(Input::Node(Change::Relisted(nodes)));
    c.ingest(Input::PriorityClass(Change::Relisted(classes)));
    c.ingest(Input::Queue(Change::Relisted(queues)));
    c.ingest(Input::Group(Flavor::Volcano, Change::Relisted(volcano)));
    c.ingest(Input::Group(
        Flavor::SchedulerPlugins,
        Change::Relisted(plugins),
    ));
    c.ingest(Input::Pod(Change::Relisted(pods)));
    let actions = c.cycle(Time(1));
    let engine = c.engine().view();
    let mut placed = Placements::new();
    for order in &actions.binds {
        let job = engine.job(&order.job).unwrap().job;
        for item in &order.items {
            let task = job.tasks[item.pod.task as usize].name.clone();
            *placed
                .entry((order.job.clone(), task, item.node.clone()))
                .or_default() += 1;
        }
    }
    let published = c.publish();
    let mut refused: Vec<String> = published
        .jobs
        .iter()
        .filter_map(|(name, j)| {
            let (label, message) = j.reason.as_ref()?;
            matches!(
                label.as_str(),
                "InvalidPodGroup" | "InvalidPod" | "PodGroupNotFound" | "JobRejected"
            )
            .then(|| format!("{name}: {message}"))
        })
        .collect();
    if let Some(e) = published.queue_error {
        refused.push(e);
    }
    assert!(refused.is_empty(), "refused live: {refused:#?}");
    Outcome {
        jobs: engine
            .jobs()
            .map(|j| (j.job.name.clone(), view(c.table(), j.job)))
            .collect(),
        queues: engine.queue_specs().cloned().collect(),
        placed,
    }
}

fn offline(docs: &[Value], tag: &str) -> Outcome {
    let dir = std::env::temp_dir().join(format!("phalanx-parity-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let yaml: Vec<String> = docs
        .iter()
        .map(|d| serde_norway::to_string(d).unwrap())
        .collect();
    std::fs::write(dir.join("all.yaml"), yaml.join("---\n")).unwrap();
    let params = convert::k8s::Params {
        default_duration: 600.0,
        nodes: String::new(),
        skip_invalid: false,
    };
    let converted =
        convert::k8s::convert(&dir, &params).unwrap_or_else(|e| panic!("refused offline: {e}"));
    std::fs::remove_dir_all(&dir).ok();
    let mut buf = Vec::new();
    trace::write_records(&mut buf, &converted.records).unwrap();
    let sc = trace::read(buf.as_slice(), "parity.jsonl").unwrap_or_else(|e| panic!("{e}"));
    // The first cycle, as the simulator's world runs it.
    let mut engine = Engine::new(EngineConfig::default());
    for n in sc.initial_nodes() {
        engine.apply(ClusterEvent::NodeUpserted(n.clone())).unwrap();
    }
    let mut queues = sc.queues.clone();
    if !queues
        .iter()
        .any(|q| q.name == phalanx_model::DEFAULT_QUEUE)
    {
        queues.push(QueueSpec::new(phalanx_model::DEFAULT_QUEUE));
    }
    engine
        .apply(ClusterEvent::QueuesConfigured(queues))
        .unwrap();
    for j in &sc.jobs {
        engine
            .apply(ClusterEvent::JobSubmitted(j.job.clone()))
            .unwrap();
    }
    let out = engine.cycle(Time(1));
    let mut placed = Placements::new();
    for d in &out.decisions {
        if let Decision::BindGang { job, bindings } = d {
            let j = engine.view().job(job).unwrap().job;
            for b in bindings {
                let task = j.tasks[b.task as usize].name.clone();
                *placed
                    .entry((job.clone(), task, b.node.clone()))
                    .or_default() += 1;
            }
        }
    }
    let view = engine.view();
    Outcome {
        jobs: sc
            .jobs
            .iter()
            .map(|j| (j.job.name.clone(), view_of(&sc.table, &j.job)))
            .collect(),
        queues: view.queue_specs().cloned().collect(),
        placed,
    }
}

fn view_of(table: &ResourceTable, j: &Job) -> JobView {
    view(table, j)
}

/// Runs one case and compares the two paths; returns what they agreed on, for the case to
/// check it is what the manifest says (agreeing on nothing proves nothing).
fn same_on_both_paths(tag: &str, files: &[PathBuf]) -> Outcome {
    let docs = documents(files);
    let (l, mut o) = (live(&docs), offline(&docs, tag));
    // A pod without a duration annotation runs for the converter's default offline; live,
    // it runs until it ends. Nothing else may differ.
    for (name, job) in &mut o.jobs {
        if let Some(lj) = l.jobs.get(name) {
            for (t, lt) in job.tasks.iter_mut().zip(&lj.tasks) {
                if lt.duration.is_none() {
                    t.duration = None;
                }
            }
        }
    }
    assert_eq!(
        l.jobs, o.jobs,
        "{tag}: jobs differ (left live, right offline)"
    );
    assert_eq!(
        l.queues, o.queues,
        "{tag}: queue trees differ (left live, right offline)"
    );
    assert_eq!(
        l.placed, o.placed,
        "{tag}: first placements differ (left live, right offline)"
    );
    l
}

fn queue_names(o: &Outcome) -> Vec<&str> {
    o.queues.iter().map(|q| q.name.as_str()).collect()
}

fn examples(files: &[&str]) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    files.iter().map(|f| dir.join(f)).collect()
}

fn shared(files: &[&str]) -> Option<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/manifests");
    dir.is_dir()
        .then(|| files.iter().map(|f| dir.join(f)).collect())
}

#[test]
fn the_example_gang_means_the_same_live_and_offline() {
    let o = same_on_both_paths("podgroup", &examples(&["podgroup.yaml"]));
    assert_eq!(o.jobs["default/gang"].min_member, 3);
    assert_eq!(o.placed.values().sum::<u32>(), 3);
}

#[test]
fn the_example_pipeline_and_its_queues_mean_the_same_live_and_offline() {
    let o = same_on_both_paths("pipeline", &examples(&["queues.yaml", "pipeline.yaml"]));
    assert_eq!(o.jobs["default/train"].depends_on, ["default/prep"]);
    assert_eq!(o.jobs["default/train"].queue, "root.tenant-a");
    // The first cycle places prep only: train waits for it.
    let jobs: Vec<&str> = o.placed.keys().map(|k| k.0.as_str()).collect();
    assert_eq!(jobs, ["default/prep"]);
}

#[test]
fn the_shared_volcano_queues_and_podgroups_mean_the_same_live_and_offline() {
    let Some(files) = shared(&[
        "volcano/artifacts-queue.yaml",
        "volcano/deployment__queue.yaml",
        "volcano/hierarchical-jobs__queues.yaml",
        "volcano/artifacts-podgroup.yaml",
        "scheduler-plugins/install-doc__podgroup-pg1.yaml",
    ]) else {
        return;
    };
    let o = same_on_both_paths("shared-volcano", &files);
    // Their PodGroups have no pods: nothing to schedule on either path.
    assert!(o.jobs.is_empty());
    assert!(queue_names(&o).len() > 4, "{:?}", queue_names(&o));
}

/// Init containers, overhead, required affinity, tolerations, `minTaskMember`, a cordoned
/// node, priority classes: each rule the two paths once disagreed on, in one manifest.
#[test]
fn every_rule_that_once_diverged_means_the_same_live_and_offline() {
    let dir = std::env::temp_dir().join(format!("phalanx-parity-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yaml");
    let pod = |name: &str, task: &str| {
        format!(
            r#"---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: ml
  annotations: {{scheduling.k8s.io/group-name: mpi, volcano.sh/task-spec: {task}}}
spec:
  overhead: {{cpu: 100m}}
  initContainers: [{{name: i, resources: {{requests: {{cpu: "4"}}}}}}]
  containers: [{{name: c, resources: {{requests: {{cpu: "1", memory: 1Gi}}}}}}]
  tolerations: [{{key: gpu, operator: Exists}}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{{matchExpressions: [{{key: zone, operator: In, values: [a]}}]}}]
"#
        )
    };
    let yaml = format!(
        r#"apiVersion: v1
kind: Node
metadata: {{name: a1, labels: {{zone: a}}}}
spec: {{unschedulable: true}}
status: {{allocatable: {{cpu: "32", memory: 64Gi, pods: "110"}}}}
---
apiVersion: v1
kind: Node
metadata: {{name: a2, labels: {{zone: a}}}}
spec: {{taints: [{{key: gpu, value: "yes", effect: NoSchedule}}]}}
status: {{allocatable: {{cpu: "32", memory: 64Gi, pods: "110"}}}}
---
apiVersion: v1
kind: Node
metadata: {{name: b1, labels: {{zone: b}}}}
status: {{allocatable: {{cpu: "32", memory: 64Gi, pods: "110"}}}}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {{name: high}}
value: 1000
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {{name: low}}
value: 10
---
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {{name: research}}
spec: {{weight: 2, capability: {{cpu: "64"}}}}
---
apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata: {{name: mpi, namespace: ml, annotations: {{phalanx.dev/depends-on: prep}}}}
spec: {{minMember: 3, queue: research, priorityClassName: high,
        minTaskMember: {{launcher: 1, worker: 2}}}}
---
apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata: {{name: prep, namespace: ml}}
spec: {{minMember: 1, queue: research}}
---
apiVersion: v1
kind: Pod
metadata:
  name: prep-0
  namespace: ml
  annotations: {{scheduling.k8s.io/group-name: prep, phalanx.dev/duration: 5m}}
spec:
  priorityClassName: low
  containers: [{{name: c, resources: {{requests: {{cpu: "2"}}}}}}]
{}{}{}"#,
        pod("mpi-launcher-0", "launcher"),
        pod("mpi-worker-0", "worker"),
        pod("mpi-worker-1", "worker"),
    );
    std::fs::write(&file, yaml).unwrap();
    let o = same_on_both_paths("rules", std::slice::from_ref(&file));
    let mpi = &o.jobs["ml/mpi"];
    let tasks: Vec<_> = mpi
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), t.replicas, t.min_member, t.requests["cpu"]))
        .collect();
    assert_eq!(tasks, [("launcher", 1, 1, 4100), ("worker", 2, 2, 4100)]);
    assert!(mpi.tasks[0].affinity.is_some() && !mpi.tasks[0].tolerations.is_empty());
    assert_eq!(mpi.queue, "root.research");
    // The PodGroup's class (Volcano's rule); prep has none, so its pod's class counts.
    assert_eq!((mpi.priority, o.jobs["ml/prep"].priority), (1000, 10));
    // prep goes first; only b1 is open to it (a1 is cordoned, a2 tainted).
    let placed: Vec<_> = o
        .placed
        .keys()
        .map(|k| (k.0.as_str(), k.2.as_str()))
        .collect();
    assert_eq!(placed, [("ml/prep", "b1")]);
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 16: a Kueue plain-pod group is one gang of its total count on both paths, in the
/// queue serve puts it (serve does not read Kueue's queue label: Kueue admits the pods itself).
#[test]
fn a_kueue_plain_pod_group_means_the_same_live_and_offline() {
    let o = same_on_both_paths("kueue", &examples(&["kueue-pod-group.yaml"]));
    let job = &o.jobs["default/sample-group"];
    assert_eq!((job.min_member, job.queue.as_str()), (2, "root.default"));
    assert_eq!(o.placed.values().sum::<u32>(), 2);
}
