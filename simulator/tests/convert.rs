//! Converters against the real traces and manifests in `../shared` (next to the repository in
//! CI). Each test prints a skip notice and returns when its folder is absent; nothing from there
//! is copied into the repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use phalanx_model::ResourceId;
use phalanx_simulator::convert::{self, Converted};
use phalanx_simulator::trace::{self, Amount, JobRecord, QueueRecord, Record, Scenario};
use phalanx_simulator::world::{self, JobEnd, Mode, SimConfig};

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")).join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent", p.display());
        None
    }
}

/// Writes the records and reads them back with the trace reader, as a user's run would.
fn round_trip(c: &Converted, name: &str) -> Scenario {
    let mut buf = Vec::new();
    trace::write_records(&mut buf, &c.records).unwrap();
    trace::read(buf.as_slice(), name).unwrap_or_else(|e| panic!("{e}"))
}

fn jobs(c: &Converted) -> BTreeMap<&str, &JobRecord> {
    c.records
        .iter()
        .filter_map(|r| match r {
            Record::Job(j) => Some((j.name.as_str(), j)),
            _ => None,
        })
        .collect()
}

fn queues(c: &Converted) -> BTreeMap<&str, &QueueRecord> {
    c.records
        .iter()
        .filter_map(|r| match r {
            Record::Queue(q) => Some((q.name.as_str(), q)),
            _ => None,
        })
        .collect()
}

/// A scratch folder of manifests for the k8s converter, removed when dropped.
struct Manifests(PathBuf);

impl Manifests {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("phalanx-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Manifests(dir)
    }

    /// Writes (or rewrites) one file of the folder.
    fn write(&self, file: &str, yaml: &str) -> &Self {
        std::fs::write(self.0.join(file), yaml).unwrap();
        self
    }

    /// Converts the folder: 60 s per pod without a duration, one 8-cpu node if none is given.
    fn convert(&self) -> Result<Converted, convert::ConvertError> {
        self.convert_with(false)
    }

    /// Converts the folder as `--skip-invalid` does.
    fn convert_skipping_invalid(&self) -> Result<Converted, convert::ConvertError> {
        self.convert_with(true)
    }

    fn convert_with(&self, skip_invalid: bool) -> Result<Converted, convert::ConvertError> {
        convert::k8s::convert(
            &self.0,
            &convert::k8s::Params {
                default_duration: 60.0,
                nodes: "1:cpu=8".into(),
                skip_invalid,
            },
        )
    }
}

/// One cluster-scoped object as a YAML document, its `spec` written inline.
fn manifest(api_version: &str, kind: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n"
    )
}

impl Drop for Manifests {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn alibaba_gpu_2023_converts_and_runs() {
    let Some(dir) = shared("traces/alibaba-gpu-v2023") else {
        return;
    };
    let c = convert::alibaba_gpu::convert(&dir, None).unwrap();
    let sc = round_trip(&c, "alibaba-gpu.jsonl");
    assert_eq!(sc.initial_nodes().count(), 1523);
    assert_eq!(sc.jobs.len(), 8152);
    let gpus: i64 = sc
        .initial_nodes()
        .map(|n| n.allocatable.get(ResourceId::GPU))
        .sum();
    assert_eq!(gpus, 6212, "the README's GPU count");
    let (stats, _) = {
        let mut log = Vec::new();
        let s = world::run(&sc, &SimConfig::default(), &mut log, &mut |_| {}).unwrap();
        (s, log)
    };
    assert!(stats.event_errors.is_empty());
    assert!(stats.jobs.iter().all(|j| j.state != JobEnd::Open));
    // A pod list with gpu_spec constraints converts to selectors or affinities.
    let spec = dir.join("csv/openb_pod_list_gpuspec33.csv");
    let c = convert::alibaba_gpu::convert(&dir, Some(&spec)).unwrap();
    let constrained = jobs(&c)
        .values()
        .filter(|j| !j.tasks[0].node_selector.is_empty() || j.tasks[0].node_affinity.is_some())
        .count();
    assert!(constrained > 100, "{constrained}");
    round_trip(&c, "gpuspec33.jsonl");
}

#[test]
fn alibaba_batch_2017_tasks_become_gangs_with_inferred_dependencies() {
    let Some(file) = shared("traces/alibaba-v2017-batch/batch_task.csv") else {
        return;
    };
    let params = convert::alibaba_batch::Params {
        max_gang: 256,
        nodes: 200,
        until: Some(1800.0),
    };
    let c = convert::alibaba_batch::convert(&file, &params).unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("INFERRED")));
    let js = jobs(&c);
    assert!(js.values().all(|j| j.tasks[0].replicas <= 256));
    let inferred: Vec<_> = js.values().filter(|j| !j.depends_on.is_empty()).collect();
    assert!(!inferred.is_empty());
    assert!(
        inferred
            .iter()
            .all(|j| j.annotations.contains_key("phalanx.dev/inferred"))
    );
    let sc = round_trip(&c, "batch.jsonl");
    assert_eq!(sc.initial_nodes().count(), 200);
}

#[test]
fn helios_quotas_become_queues() {
    let Some(dir) = shared("traces/helios-vc") else {
        return;
    };
    let c = convert::helios::convert(&dir, None).unwrap();
    let qs = queues(&c);
    assert_eq!(
        qs["root.vc6YE"].weight,
        Some(216),
        "216 GPUs on the last day"
    );
    assert_eq!(qs.len(), 19, "25 VCs, 6 with no GPUs");
    let sc = round_trip(&c, "helios.jsonl");
    assert_eq!(sc.queues.len(), 19);
    let c = convert::helios::convert(&dir, Some("2020-04-01")).unwrap();
    assert_eq!(queues(&c)["root.vchbv"].weight, Some(112));
}

#[test]
fn every_gang_queue_and_dependency_in_the_manifests_converts() {
    let Some(dir) = shared("manifests") else {
        return;
    };
    let params = convert::k8s::Params {
        default_duration: 600.0,
        nodes: "16:cpu=64,memory=256Gi,nvidia.com/gpu=8".into(),
        skip_invalid: false,
    };
    let c = convert::k8s::convert(&dir, &params).unwrap();
    let js = jobs(&c);
    let qs = queues(&c);
    let warn = c.warnings.join("\n");
    // Volcano Job: minAvailable 3 of 6.
    assert_eq!(js["default/test-job"].min_member, Some(3));
    assert_eq!(js["default/test-job"].tasks[0].replicas, 6);
    // The webhook-denied job is rejected, loudly.
    assert!(warn.contains("test-job-webhook-disallow"), "{warn}");
    // Hierarchical queues and the jobs bound to them.
    assert_eq!(qs["root.eng"].weight, Some(2));
    assert_eq!(qs["root.eng.prod"].weight, Some(8));
    assert_eq!(qs["root.sci"].weight, Some(8));
    assert_eq!(
        js["default/sci-dev-job"].queue.as_deref(),
        Some("root.sci.dev")
    );
    // Volcano Queue with capability; Kueue cohorts and quotas; ElasticQuota.
    assert!(qs["root.test"].capability.is_some());
    assert!(qs["root.team-ab.team-a-cq"].capability.is_some());
    assert!(!qs["root.test-quota"].guarantee.is_empty());
    // scheduler-plugins PodGroup joined to a ReplicaSet's pods by label.
    assert_eq!(js["default/nginx"].min_member, Some(3));
    assert_eq!(js["default/nginx"].tasks[0].replicas, 6);
    // pg1 needs 3 pods but has 2: it would stay Pending, and says so.
    assert!(warn.contains("default/pg1"), "{warn}");
    // Kueue plain-pod group.
    assert_eq!(js["default/sample-group"].min_member, Some(2));
    // JobFlow a -> b -> {c, d} -> e.
    assert_eq!(js["default/test-b"].depends_on, ["default/test-a"]);
    assert_eq!(
        js["default/test-e"].depends_on,
        ["default/test-c", "default/test-d"]
    );
    // Argo DAG A -> {B, C} -> D.
    assert_eq!(
        js["default/volcano-dag-job-D"].depends_on,
        ["default/volcano-dag-job-B", "default/volcano-dag-job-C"]
    );
    // Task start dependencies inside a gang are kept as an annotation.
    assert!(
        js["default/job"]
            .annotations
            .contains_key("phalanx.dev/task-depends-on")
    );
    // Spark: driver + executors with min_resources; the 2019 Volcano sample's PodGroup.
    let spark = js["default/spark-pi-volcano"];
    assert_eq!(spark.min_member, Some(1));
    assert!(spark.min_resources.is_some());
    assert_eq!(spark.tasks.len(), 2);
    assert!(js.values().any(|j| {
        j.annotations
            .get("phalanx.dev/pod-group")
            .map(String::as_str)
            == Some("default/spark-pi-group")
            && j.min_member == Some(3)
    }));
    assert_eq!(js["default/spark-pi-yunikorn"].queue, None, "root.default");
    // Kubeflow: PyTorchJob master + worker; elastic minimum.
    assert_eq!(js["kubeflow/pytorch-simple"].min_member, Some(2));
    assert_eq!(js["default/elastic-example-imagenet"].min_member, Some(1));
    // Unsupported kinds are listed, never dropped silently.
    assert!(
        warn.contains("unsupported kind CustomResourceDefinition"),
        "{warn}"
    );
    // The result is a valid trace and runs on the engine with no refused events.
    let sc = round_trip(&c, "k8s.jsonl");
    for mode in [Mode::Gang, Mode::Baseline] {
        let cfg = SimConfig {
            mode,
            ..SimConfig::default()
        };
        let stats = world::run(&sc, &cfg, &mut Vec::new(), &mut |_| {}).unwrap();
        assert!(stats.event_errors.is_empty(), "{:?}", stats.event_errors);
    }
}

/// Pods join their PodGroup by the Volcano annotation, durations come from the annotation,
/// PriorityClasses give priorities, and Nodes are read.
#[test]
fn k8s_pods_join_groups_and_carry_durations() {
    let m = Manifests::new("k8s");
    let yaml = r#"
apiVersion: v1
kind: Node
metadata:
  name: gpu-1
  labels: {gpu: a100}
spec:
  taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
status:
  allocatable: {cpu: "32", memory: 128Gi, nvidia.com/gpu: "8", pods: "110"}
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
---
apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata: {name: train, namespace: ml}
spec: {minMember: 2, queue: research, priorityClassName: high}
---
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: research}
spec: {weight: 3}
"#;
    m.write("a.yaml", yaml);
    let pods: String = (0..3)
        .map(|i| {
            format!(
                r#"---
apiVersion: v1
kind: Pod
metadata:
  name: w{i}
  namespace: ml
  annotations: {{scheduling.k8s.io/group-name: train, phalanx.dev/duration: 15m}}
spec:
  nodeSelector: {{gpu: a100}}
  tolerations: [{{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}}]
  containers:
  - name: c
    resources: {{requests: {{cpu: 4, nvidia.com/gpu: 1}}, limits: {{memory: 8Gi}}}}
"#
            )
        })
        .collect();
    let c = m.write("b.yaml", &pods).convert().unwrap();
    let js = jobs(&c);
    let j = js["ml/train"];
    assert_eq!(j.min_member, Some(2));
    assert_eq!(j.priority, Some(1000));
    assert_eq!(j.queue.as_deref(), Some("root.research"));
    assert_eq!(queues(&c)["root.research"].weight, Some(3));
    // Identical pods are one task, as `phalanx serve` makes them.
    assert_eq!(j.tasks.len(), 1);
    assert_eq!(j.tasks[0].replicas, 3);
    assert!(j.tasks.iter().all(|t| t.duration == 900.0));
    assert!(
        j.tasks[0].requests.contains_key("memory"),
        "limits stand in"
    );
    let sc = round_trip(&c, "k8s-small.jsonl");
    assert_eq!(
        sc.initial_nodes().count(),
        1,
        "the manifest's node, none added"
    );
    let stats = world::run(&sc, &SimConfig::default(), &mut Vec::new(), &mut |_| {}).unwrap();
    assert!(stats.jobs.iter().all(|j| j.state == JobEnd::Succeeded));
}

/// Volcano Queues nest by `spec.parent` as `phalanx serve` nests them: chains of any depth, in
/// any document order, become dotted paths; a loop or a non-string parent is an error naming
/// the file, the document, the queue and the field.
#[test]
fn k8s_volcano_parent_chains_become_paths_and_broken_ones_are_errors() {
    let m = Manifests::new("k8s-parent");
    let queue = |name: &str, parent: &str| {
        manifest(
            "scheduling.volcano.sh/v1beta1",
            "Queue",
            name,
            &format!("weight: 2, parent: {parent}"),
        )
    };
    let group = r#"---
apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata: {name: train, namespace: ml}
spec: {minMember: 1, queue: team-a}
---
apiVersion: v1
kind: Pod
metadata:
  name: w0
  namespace: ml
  annotations: {scheduling.k8s.io/group-name: train}
spec:
  containers:
  - name: c
    resources: {requests: {cpu: 1}}
"#;
    // The leaf comes first: its parent is read later.
    let yaml = [
        queue("team-a", "ml"),
        queue("ml", "eng"),
        queue("eng", "root"),
        queue("batch", "default"),
        group.to_string(),
    ]
    .concat();
    let c = m.write("queues.yaml", &yaml).convert().unwrap();
    let qs = queues(&c);
    for q in [
        "root.eng",
        "root.eng.ml",
        "root.eng.ml.team-a",
        "root.default.batch",
    ] {
        assert_eq!(qs.get(q).map(|r| r.weight), Some(Some(2)), "{q}: {qs:?}");
    }
    assert_eq!(
        jobs(&c)["ml/train"].queue.as_deref(),
        Some("root.eng.ml.team-a")
    );
    let sc = round_trip(&c, "k8s-parents.jsonl");
    let stats = world::run(&sc, &SimConfig::default(), &mut Vec::new(), &mut |_| {}).unwrap();
    assert!(stats.jobs.iter().all(|j| j.state == JobEnd::Succeeded));

    // Broken chains: the error names the file, the document, the queue and the field.
    let refused = |yaml: String| {
        m.write("queues.yaml", &yaml)
            .convert()
            .unwrap_err()
            .to_string()
    };
    let cases = [
        // eng names team-a: a loop, told at eng's document (the third).
        (
            yaml.replace(&queue("eng", "root"), &queue("eng", "team-a")),
            "queues.yaml (document 3): Queue eng: spec.parent: the parent chain loops: \
             eng -> team-a -> ml -> eng",
        ),
        // A parent no Queue has.
        (
            yaml.replace(&queue("eng", "root"), &queue("eng", "org")),
            "queues.yaml (document 3): Queue eng: spec.parent: queue org does not exist \
             (parent chain eng -> org)",
        ),
        // Not a name at all.
        (
            yaml.replace("parent: eng}", "parent: 7}"),
            "queues.yaml (document 2): Queue ml: spec.parent: 7 is not a string",
        ),
    ];
    for (broken, want) in cases {
        let e = refused(broken);
        assert!(e.contains(&format!("{want}\n")), "{e}");
        // The job in the queue below the break is told why too, as live it waits.
        assert!(
            e.ends_with("job ml/train: queue root.team-a: no Queue manifest defines it; live the job would wait with QueueNotFound")
                || e.ends_with(want),
            "{e}"
        );
    }
}

/// Issue 15, divergence 6: a Volcano Queue weight that is not a whole number in 1..=65535 is
/// refused as `phalanx serve` refuses it (before, the converter clamped it and warned), naming
/// the document, the Queue and the field; `--skip-invalid` leaves the Queue out instead. Kueue
/// ClusterQueues, which only the converter reads, keep their weights as quantities.
#[test]
fn k8s_bad_volcano_queue_weights_are_refused_as_serve_refuses_them() {
    let m = Manifests::new("k8s-weights");
    let volcano = |name: &str, weight: &str| {
        manifest(
            "scheduling.volcano.sh/v1beta1",
            "Queue",
            name,
            &format!("weight: {weight}"),
        )
    };
    let kueue = |name: &str, weight: &str| {
        let spec = format!("fairSharing: {{weight: {weight}}}");
        manifest("kueue.x-k8s.io/v1beta1", "ClusterQueue", name, &spec)
    };
    let yaml = [
        volcano("fine", "3"),
        volcano("zero", "0"),
        volcano("huge", "100000"),
        volcano("text", "heavy"),
        kueue("half", "\"500m\""),
        kueue("two", "\"2\""),
    ]
    .concat();
    m.write("queues.yaml", &yaml);
    let e = m.convert().unwrap_err().to_string();
    for (doc, queue) in [(2, "zero"), (3, "huge"), (4, "text")] {
        let at = format!("queues.yaml (document {doc}): Queue {queue}: spec.weight:");
        assert!(e.contains(&at), "{at} in {e}");
    }
    assert!(!e.contains("Queue fine"), "{e}");
    let c = m.convert_skipping_invalid().unwrap();
    let qs = queues(&c);
    let weight = |q: &str| qs.get(q).map(|r| r.weight);
    assert_eq!(weight("root.fine"), Some(Some(3)));
    assert_eq!(weight("root.zero"), None, "left out");
    assert_eq!(weight("root.huge"), None, "left out");
    assert_eq!(weight("root.text"), None, "left out");
    assert_eq!(weight("root.half"), Some(Some(1)));
    assert_eq!(weight("root.two"), Some(Some(2)));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("ClusterQueue half: spec.fairSharing.weight: \"500m\"")),
        "{:?}",
        c.warnings
    );
}

/// Issue 15, divergences 1 to 3: a pod's request (init containers, `overhead`), required node
/// affinity and a cordoned node mean offline what they mean to `phalanx serve`, because both
/// read them through `phalanx_translate`.
#[test]
fn k8s_pods_and_nodes_mean_what_they_mean_live() {
    let m = Manifests::new("k8s-live");
    let yaml = r#"
apiVersion: v1
kind: Node
metadata: {name: cordoned, labels: {zone: a}}
spec: {unschedulable: true}
status: {allocatable: {cpu: "8", memory: 32Gi}}
---
apiVersion: v1
kind: Node
metadata: {name: open, labels: {zone: b}}
status: {allocatable: {cpu: "8", memory: 32Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns}
spec:
  overhead: {cpu: 250m}
  initContainers:
  - {name: init, resources: {requests: {cpu: "3", memory: 1Gi}}}
  containers:
  - {name: a, resources: {requests: {cpu: "1", memory: 2Gi}}}
  - {name: b, resources: {requests: {cpu: "1"}}}
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: zone, operator: In, values: [a, b]}]
"#;
    let c = m.write("a.yaml", yaml).convert().unwrap();
    let js = jobs(&c);
    // A pod of no group is the job `ns/pod-<name>`, as `phalanx serve` names it.
    let t = &js["ns/pod-p"].tasks[0];
    // max(init 3, apps 1 + 1) + overhead 0.25 cpu; max(1Gi, 2Gi) memory.
    assert_eq!(
        t.requests.get("cpu"),
        Some(&Amount::Text("3250m".into())),
        "{:?}",
        t.requests
    );
    assert_eq!(t.requests.get("memory"), Some(&Amount::Text("2Gi".into())));
    let affinity = t.node_affinity.as_ref().expect("required affinity is kept");
    assert_eq!(affinity.terms[0].match_expressions[0].key, "zone");
    let cordoned = c
        .records
        .iter()
        .find_map(|r| match r {
            Record::Node(n) if n.name == "cordoned" => Some(n),
            _ => None,
        })
        .unwrap();
    assert!(cordoned.unschedulable);
    // Simulated, the pod lands on the node that is not cordoned.
    let sc = round_trip(&c, "k8s-live.jsonl");
    let mut log = Vec::new();
    world::run(&sc, &SimConfig::default(), &mut log, &mut |_| {}).unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains(r#""node":"open""#), "{text}");
    assert!(!text.contains(r#""node":"cordoned""#), "{text}");
}

/// Issue 15, item 6: an object that cannot be read stops the conversion, naming the file, the
/// document, the object and the field; `--skip-invalid` leaves it out with a warning instead.
#[test]
fn k8s_bad_objects_stop_the_conversion_unless_skipped() {
    let m = Manifests::new("k8s-bad");
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: ok, namespace: ns}
spec:
  containers: [{name: c, resources: {requests: {cpu: "1"}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: ns}
spec:
  containers: [{name: c, resources: {requests: {cpu: "lots"}}}]
"#;
    m.write("a.yaml", yaml);
    let e = m.convert().unwrap_err().to_string();
    assert!(
        e.contains("a.yaml (document 2): Pod ns/bad: spec.containers.resources"),
        "{e}"
    );
    let c = m.convert_skipping_invalid().unwrap();
    let js = jobs(&c);
    assert!(
        js.contains_key("ns/pod-ok") && !js.contains_key("ns/pod-bad"),
        "{js:?}"
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("left out (--skip-invalid):") && w.contains("Pod ns/bad")),
        "{:?}",
        c.warnings
    );
}

/// Issue 15, divergence 4: `deploy/examples/pipeline.yaml` runs its DAG in simulation as it does
/// live: `train` depends on `prep` (annotation `phalanx.dev/depends-on`) and starts only after
/// every pod of `prep` succeeded.
#[test]
fn k8s_the_example_pipeline_runs_in_dependency_order() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let m = Manifests::new("k8s-pipeline");
    // As applied live: the pipeline, its queues, and a node to run on.
    for file in ["pipeline.yaml", "queues.yaml"] {
        m.write(file, &std::fs::read_to_string(dir.join(file)).unwrap());
    }
    m.write(
        "node.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nstatus: {allocatable: {cpu: \"8\", memory: 32Gi}}\n",
    );
    let c = m.convert().unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let js = jobs(&c);
    assert_eq!(js["default/train"].depends_on, ["default/prep"]);
    assert_eq!(js["default/prep"].min_member, Some(2));
    let sc = round_trip(&c, "pipeline.jsonl");
    let mut log = Vec::new();
    world::run(&sc, &SimConfig::default(), &mut log, &mut |_| {}).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let time = |ty: &str, job: &str, pick: fn(f64, f64) -> f64| {
        lines
            .iter()
            .filter(|l| l["type"] == ty && l["job"] == job)
            .map(|l| l["time"].as_f64().unwrap())
            .reduce(pick)
            .unwrap_or_else(|| panic!("no {ty} of {job} in {lines:?}"))
    };
    let prep_done = time("finish", "default/prep", f64::max);
    let train_start = time("bind", "default/train", f64::min);
    assert!(
        train_start >= prep_done,
        "train bound at {train_start}, prep finished at {prep_done}"
    );
}

/// Issue 15, divergences 4 and 5: Volcano `minTaskMember` holds offline as live (tasks are the
/// pods' own task keys), and pods naming a PodGroup that does not exist are an error, since
/// live they would never be scheduled.
#[test]
fn k8s_min_task_member_holds_and_a_missing_podgroup_is_an_error() {
    let m = Manifests::new("k8s-tasks");
    let pod = |name: &str, task: &str| {
        format!(
            r#"---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: ns
  annotations: {{scheduling.k8s.io/group-name: mpi, volcano.sh/task-spec: {task}}}
spec:
  containers: [{{name: c, resources: {{requests: {{cpu: "1"}}}}}}]
"#
        )
    };
    let yaml = format!(
        r#"apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata: {{name: mpi, namespace: ns}}
spec: {{minMember: 3, minTaskMember: {{launcher: 1, worker: 2}}}}
{}{}{}{}"#,
        pod("mpi-launcher-0", "launcher"),
        pod("mpi-worker-0", "worker"),
        pod("mpi-worker-1", "worker"),
        pod("mpi-worker-2", "worker"),
    );
    let c = m.write("a.yaml", &yaml).convert().unwrap();
    let js = jobs(&c);
    let tasks: Vec<_> = js["ns/mpi"]
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), t.replicas, t.min_member))
        .collect();
    assert_eq!(tasks, [("launcher", 1, Some(1)), ("worker", 3, Some(2))]);
    // A pod naming a group nobody defined: the conversion stops, naming it.
    m.write(
        "b.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: lost
  namespace: ns
  labels: {scheduling.x-k8s.io/pod-group: nowhere}
spec:
  containers: [{name: c}]
"#,
    );
    let e = m.convert().unwrap_err().to_string();
    assert!(
        e.contains("pods name PodGroup ns/nowhere, which no manifest defines"),
        "{e}"
    );
}

/// Found by `tests/fuzz.rs`: a Volcano Queue without a name that cannot be read was reported
/// with no document (`: Queue : spec.capability: ...`).
#[test]
fn k8s_a_nameless_bad_queue_is_named_by_its_document() {
    let m = Manifests::new("k8s-nameless-queue");
    m.write(
        "queues.yaml",
        "---\napiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {}\nspec: {capability: [1, 2]}\n",
    );
    let e = m.convert().unwrap_err().to_string();
    assert!(e.contains("queues.yaml (document 1): Queue"), "{e}");
}

/// Found by `tests/fuzz.rs`: a damaged instance count (billions) was split into millions of
/// gangs until memory ran out; it is refused with its line.
#[test]
fn alibaba_batch_an_absurd_instance_count_is_refused_with_its_line() {
    let dir = std::env::temp_dir().join(format!("phalanx-batch-count-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("batch_task.csv");
    std::fs::write(
        &file,
        "100,200,1,1,4,Terminated,50,0.01\n110,300,1,2,4294967295,Terminated,50,0.01\n",
    )
    .unwrap();
    let params = convert::alibaba_batch::Params {
        max_gang: 64,
        nodes: 2,
        until: None,
    };
    let e = convert::alibaba_batch::convert(&file, &params)
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        e.contains("batch_task.csv:2") && e.contains("instance count 4294967295"),
        "{e}"
    );
}
