//! Every YAML file under `deploy/` parses, means what it says, and the examples go through the
//! adapter: PodGroups, Queues and Pods translate, and the gang and pipeline examples schedule.

mod common;

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::DynamicObject;
use phalanx_k8s::config::ServeConfig;
use phalanx_k8s::core::{Change, Core, Input};
use phalanx_k8s::translate::{self, Flavor};
use phalanx_model::{ResourceTable, Time};
use serde_json::{Value, json};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| {
            serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    out.sort();
    out
}

/// The scheduler names an example's header says Phalanx needs (`# Phalanx setting: none`, or
/// `schedulerNames: [a, b]`), and the operator version it was checked against.
fn setting(path: &Path) -> Option<(Vec<String>, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
    let line = |key: &str| {
        header
            .iter()
            .find_map(|l| l.strip_prefix("# ")?.strip_prefix(key).map(str::trim))
    };
    let checked = line("Checked against:")?.to_string();
    let names = match line("Phalanx setting:")? {
        s if s.starts_with("none") => vec!["phalanx".to_string()],
        s => {
            let list = s.strip_prefix("schedulerNames: [")?.split(']').next()?;
            list.split(',').map(|n| n.trim().to_string()).collect()
        }
    };
    Some((names, checked))
}

/// The `schedulerName` an operator forces on the pods it creates from this object, if it does:
/// mpi-operator (`--gang-scheduling=volcano`), KubeRay (`--batch-scheduler=volcano`), the Spark
/// operator's webhook (`batchScheduler`).
fn forced_scheduler(v: &Value) -> Option<String> {
    match v["kind"].as_str()? {
        "MPIJob" | "RayCluster" => Some("volcano".into()),
        "SparkApplication" => v["spec"]["batchScheduler"].as_str().map(str::to_string),
        _ => None,
    }
}

#[test]
fn examples_translate_through_the_adapter() {
    let mut table = ResourceTable::new();
    let mut kinds = Vec::new();
    for path in files(&deploy().join("examples")) {
        let setting = setting(&path);
        let mut file_names = Vec::new();
        for v in docs(&path) {
            let kind = v["kind"].as_str().unwrap_or_default().to_string();
            let at = format!("{}: {kind} {}", path.display(), v["metadata"]["name"]);
            match kind.as_str() {
                "PodGroup" => {
                    let flavor = Flavor::of_api_version(v["apiVersion"].as_str().unwrap())
                        .unwrap_or_else(|| panic!("{at}: not a PodGroup API"));
                    let o: DynamicObject = serde_json::from_value(v.clone()).unwrap();
                    translate::pod_group(&o, flavor, &mut table, &Default::default())
                        .unwrap_or_else(|e| panic!("{at}: {e}"));
                }
                "Queue" => {
                    let o: DynamicObject = serde_json::from_value(v.clone()).unwrap();
                    let q = translate::volcano_queue(&o).unwrap_or_else(|e| panic!("{at}: {e}"));
                    for r in q.records {
                        r.to_spec(&mut table)
                            .unwrap_or_else(|e| panic!("{at}: {e}"));
                    }
                }
                "Pod" => {
                    let p: Pod =
                        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
                    let info =
                        translate::pod(&p, &mut table).unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert_eq!(info.scheduler, "phalanx", "{at}");
                    file_names.push(info.scheduler);
                }
                // Operators' kinds: Phalanx sees the pods and PodGroups they create. The
                // example says which operator version it was checked against and what Phalanx
                // needs set, and under that setting Phalanx answers every scheduler name its
                // pods will carry (those in the templates and those the operator forces).
                _ => {
                    let (names, checked) = setting.clone().unwrap_or_else(|| {
                        panic!("{at}: no '# Checked against:' and '# Phalanx setting:' header")
                    });
                    assert!(!checked.is_empty(), "{at}");
                    let mut used = Vec::new();
                    common::strings_at(&v, "schedulerName", &mut used);
                    used.extend(forced_scheduler(&v));
                    file_names.extend(used.iter().cloned());
                    for n in used {
                        assert!(
                            names.contains(&n),
                            "{at}: pods name {n:?}, not in {names:?}"
                        );
                    }
                }
            }
            kinds.push(kind);
        }
        assert!(
            setting.is_none() || !file_names.is_empty(),
            "{}: no pod of it names a scheduler",
            path.display()
        );
    }
    for k in [
        "PodGroup",
        "Queue",
        "Pod",
        "SparkApplication",
        "PyTorchJob",
        "MPIJob",
        "TrainJob",
        "RayCluster",
        "JobSet",
        "Workload",
        "Job",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} example");
    }
}

fn input(v: &Value) -> Option<Input> {
    let kind = v["kind"].as_str()?;
    let mut v = v.clone();
    let name = v["metadata"]["name"].as_str()?.to_string();
    v["metadata"]["uid"] = json!(format!("uid-{kind}-{name}"));
    Some(match kind {
        "Pod" => Input::Pod(Change::Apply(Box::new(serde_json::from_value(v).ok()?))),
        "PodGroup" => {
            let flavor = Flavor::of_api_version(v["apiVersion"].as_str()?)?;
            Input::Group(
                flavor,
                Change::Apply(Box::new(serde_json::from_value(v).ok()?)),
            )
        }
        "Queue" => Input::Queue(Change::Apply(Box::new(serde_json::from_value(v).ok()?))),
        _ => return None,
    })
}

#[test]
fn the_gang_and_pipeline_examples_schedule() {
    let mut core = Core::new(Default::default(), "phalanx", None);
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "status": {"allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"}}
    }))
    .unwrap();
    core.ingest(Input::Node(Change::Relisted(vec![node])));
    for f in ["queues.yaml", "podgroup.yaml", "pipeline.yaml"] {
        for v in docs(&deploy().join("examples").join(f)) {
            core.ingest(input(&v).unwrap());
        }
    }
    let actions = core.cycle(Time(1));
    let mut bound: Vec<(String, usize)> = actions
        .binds
        .iter()
        .map(|b| (b.job.clone(), b.items.len()))
        .collect();
    bound.sort();
    assert_eq!(
        bound,
        [
            ("default/gang".to_string(), 3),
            ("default/prep".to_string(), 2)
        ]
    );
    let published = core.publish();
    let train = &published.jobs["default/train"];
    assert_eq!(train.queue, "root.tenant-a");
    assert_eq!(
        train.reason.as_ref().map(|r| r.0.as_str()),
        Some("waiting_for_dependencies")
    );
}

#[test]
fn deployment_config_rbac_and_chart_are_consistent() {
    let mut deployments = 0;
    for v in docs(&deploy().join("deployment.yaml")) {
        match v["kind"].as_str() {
            Some("ConfigMap") => {
                let cm: ConfigMap = serde_json::from_value(v).unwrap();
                let text = &cm.data.unwrap()["config.yaml"];
                let c = ServeConfig::parse(text).unwrap();
                assert!(c.leader_election.enabled);
            }
            Some("Deployment") => {
                let d: Deployment = serde_json::from_value(v).unwrap();
                let spec = d.spec;
                assert_eq!(spec.replicas, Some(2));
                let c = &spec.template.spec.unwrap().containers[0];
                assert!(c.liveness_probe.is_some() && c.readiness_probe.is_some());
                assert!(c.resources.as_ref().unwrap().requests.is_some());
                deployments += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(deployments, 1);
    let roles: Vec<ClusterRole> = docs(&deploy().join("rbac.yaml"))
        .into_iter()
        .filter(|v| v["kind"] == "ClusterRole")
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let rules = roles[0].rules.clone().unwrap();
    // Least privilege: nothing cluster-wide may write what the scheduler does not write.
    for r in &rules {
        for verb in &r.verbs {
            assert!(
                ["get", "list", "watch", "create", "patch", "delete"].contains(&verb.as_str()),
                "{verb}"
            );
        }
        assert!(!r.verbs.iter().any(|v| v == "*"));
    }
    let chart = deploy().join("helm/phalanx");
    let values = &docs(&chart.join("values.yaml"))[0];
    let c: ServeConfig = serde_json::from_value(values["config"].clone()).unwrap();
    assert_eq!(c.scheduler_names(), ["phalanx"]);
    assert_eq!(docs(&chart.join("Chart.yaml"))[0]["name"], "phalanx");
}
