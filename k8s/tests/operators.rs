//! Issue 16: the operators users already run, each as a stand-in that does against the API
//! emulator what the operator does, in its order, with its objects and keys (which object comes
//! first, the scheduler name it forces, the PodGroup phase it waits on before it creates pods,
//! pods deleted by an undone gang created again). Each stand-in names the source and version it
//! follows; the jobs run to completion through `phalanx serve` with the scheduler names a cluster
//! replacing Volcano and the coscheduling plugin configures.
//!
//! The operators cannot run here (no cluster, no images), so what is tested is that Phalanx
//! answers what they do. The stand-ins are only as faithful as the reading of their source; the
//! versions read are in each stand-in's `follows`.

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `scheduling.volcano.sh/v1beta1` PodGroup.
fn volcano() -> ApiResource {
    volcano_group()
}

/// `scheduling.x-k8s.io/v1alpha1` PodGroup.
fn plugins() -> ApiResource {
    plugins_group()
}

/// `scheduling.k8s.io/v1beta1` PodGroup, the upstream gang API.
fn upstream() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("scheduling.k8s.io", "v1beta1", "PodGroup"),
        "podgroups",
    )
}

/// `scheduling.k8s.io/v1beta1` Workload.
fn workload() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("scheduling.k8s.io", "v1beta1", "Workload"),
        "workloads",
    )
}

fn pods_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods")
}

/// A controller owner reference (the operator's custom resource; the object itself is not
/// created, the emulator has no garbage collector to act on it).
fn owner(api_version: &str, kind: &str, name: &str, controller: bool) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name,
            "uid": format!("uid-{}-{name}", kind.to_lowercase()),
            "controller": controller, "blockOwnerDeletion": true}])
}

/// A pod as an operator creates it from its template: `meta` (labels, annotations,
/// ownerReferences) and `spec` fields merged over one container requesting `cpu`, running for
/// `seconds`.
fn pod_of(name: &str, meta: Value, spec: Value, cpu: &str, seconds: f64) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default",
                     "annotations": {"phalanx.dev/duration": seconds.to_string()}},
        "spec": {"containers": [{"name": "main", "image": "pause",
                 "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}
    });
    for (k, v) in meta.as_object().into_iter().flatten() {
        match (k.as_str(), pod["metadata"].get_mut(k)) {
            ("annotations", Some(Value::Object(m))) => {
                m.extend(v.as_object().cloned().unwrap_or_default());
            }
            _ => pod["metadata"][k] = v.clone(),
        }
    }
    for (k, v) in spec.as_object().into_iter().flatten() {
        pod["spec"][k] = v.clone();
    }
    pod
}

/// What one operator does, as a stand-in.
#[derive(Default)]
struct StandIn {
    /// The operator, version and source followed.
    follows: &'static str,
    /// Objects created first, in order (Queues, Workloads, PodGroups).
    before: Vec<(ApiResource, Value)>,
    /// The Volcano PodGroup whose phase gates pod creation: pods are created only once its
    /// phase is neither `""` nor `Pending` (training-operator's `DelayPodCreationDueToPodGroup`,
    /// Volcano's job controller `syncJob`).
    gate: Option<String>,
    /// Pods the operator creates at once, and creates again when they are deleted (an undone
    /// gang's owned pods) until the job is done.
    pods: Vec<Value>,
    /// Pods created only once `pods[0]` runs (the Spark driver creates its executors).
    later: Vec<Value>,
    /// Objects created or patched once the first pods exist: `(resource, object, merge patch?)`.
    after: Vec<(ApiResource, Value, bool)>,
    /// A scheduling gate the operator lifts from every pod once all of them exist (Kueue
    /// admits a plain-pod group only once it sees all of its pods).
    lifts_gate: Option<&'static str>,
    /// Counts the pods it had to create again (deleted by an undone gang).
    recreated: Arc<AtomicUsize>,
}

async fn get(client: &kube::Client, ar: &ApiResource, name: &str) -> Option<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", ar);
    api.get(name).await.ok()
}

async fn create(client: &kube::Client, ar: &ApiResource, obj: &Value) {
    let obj: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    let api: Api<DynamicObject> = if ar.kind == "Queue" {
        Api::all_with(client.clone(), ar)
    } else {
        Api::namespaced_with(client.clone(), "default", ar)
    };
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        // Created by an earlier round; the operator moves on.
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating {:?}: {e}", obj.metadata.name),
    }
}

fn phase_of(o: &DynamicObject) -> String {
    o.data["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap()
}

impl StandIn {
    /// Runs the operator's loop until every pod it made has succeeded.
    async fn run(self, client: &kube::Client) {
        for (ar, obj) in &self.before {
            create(client, ar, obj).await;
        }
        let pods = pods_resource();
        let mut created = std::collections::BTreeSet::new();
        let mut after_done = false;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let open = match &self.gate {
                None => true,
                Some(g) => get(client, &volcano(), g)
                    .await
                    .is_some_and(|o| !matches!(phase_of(&o).as_str(), "" | "Pending")),
            };
            let mut states = Vec::new();
            if open {
                let driver_runs = match self.pods.first() {
                    Some(p) => get(client, &pods, name_of(p))
                        .await
                        .is_some_and(|o| matches!(phase_of(&o).as_str(), "Running" | "Succeeded")),
                    None => false,
                };
                let wanted = self
                    .pods
                    .iter()
                    .chain(self.later.iter().filter(|_| driver_runs));
                for p in wanted {
                    let name = name_of(p);
                    match get(client, &pods, name).await {
                        Some(o) => states.push((name.to_string(), phase_of(&o), o)),
                        None => {
                            if !created.insert(name.to_string()) {
                                self.recreated.fetch_add(1, Ordering::SeqCst);
                            }
                            create(client, &pods, p).await;
                        }
                    }
                }
                if !after_done && states.len() == self.pods.len() {
                    for (ar, obj, patch) in &self.after {
                        if *patch {
                            let api: Api<DynamicObject> =
                                Api::namespaced_with(client.clone(), "default", ar);
                            api.patch(
                                name_of(obj),
                                &kube::api::PatchParams::default(),
                                &kube::api::Patch::Merge(obj),
                            )
                            .await
                            .unwrap();
                        } else {
                            create(client, ar, obj).await;
                        }
                    }
                    after_done = true;
                }
                if let Some(gate) = self.lifts_gate
                    && states.len() == self.pods.len()
                {
                    for (name, _, o) in &states {
                        let gated = o.data["spec"]["schedulingGates"]
                            .as_array()
                            .is_some_and(|g| g.iter().any(|g| g["name"] == gate));
                        if gated {
                            let api: Api<Pod> = Api::namespaced(client.clone(), "default");
                            let patch = json!({"spec": {"schedulingGates": null}});
                            api.patch(
                                name,
                                &kube::api::PatchParams::default(),
                                &kube::api::Patch::Merge(&patch),
                            )
                            .await
                            .unwrap();
                        }
                    }
                }
            }
            let all = self.pods.len() + self.later.len();
            if states.len() == all && states.iter().all(|(_, p, _)| p == "Succeeded") {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let shown: Vec<_> = states.iter().map(|(n, p, _)| format!("{n}={p}")).collect();
                panic!(
                    "{}: not done in time (gate open: {open}; pods: {})",
                    self.follows,
                    shown.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Two 4-cpu nodes and `phalanx serve` answering to the names the operators force.
struct Cluster {
    emu: RunningEmulator,
    client: kube::Client,
    serve: Running,
}

impl Cluster {
    async fn start(cfg: ServeConfig) -> Self {
        let (emu, client) = emulator(2, "cpu=4,memory=16Gi,pods=110").await;
        let cfg = ServeConfig {
            scheduler_names: vec![
                "phalanx".into(),
                "volcano".into(),
                "scheduler-plugins-scheduler".into(),
            ],
            ..cfg
        };
        let serve = phalanx_k8s::serve::start(client.clone(), cfg, "solo".into())
            .await
            .expect("scheduler starts");
        Cluster { emu, client, serve }
    }

    async fn stop(self) {
        self.serve.stop().await.unwrap();
        self.emu.shutdown().await;
    }
}

/// The final `status.phase` of a PodGroup, once it reads `want` (None: it never did).
async fn group_reaches(client: &kube::Client, ar: &ApiResource, name: &str, want: &str) {
    wait_for(&format!("PodGroup {name} {want}"), || async {
        get(client, ar, name)
            .await
            .filter(|o| phase_of(o) == want)
            .map(|_| ())
    })
    .await;
}

/// Kubeflow training-operator, PyTorchJob with `--gang-scheduler-name=volcano`
/// (kubeflow/training-operator v1.9.0, `pkg/controller.v1/common/job.go` `ReconcileJobs`,
/// `control/podgroup_control.go` `DelayPodCreationDueToPodGroup`, `common/pod.go`
/// `createNewPod`): the PodGroup `<job>` first, no pod while its phase is `""` or `Pending`;
/// pods `<job>-<rt>-<i>` with the group-name and task-spec annotations, `schedulerName:
/// volcano` where the template left it empty.
fn pytorchjob_volcano(job: &str, seconds: f64) -> StandIn {
    let pod = |rt: &str, i: usize| {
        pod_of(
            &format!("{job}-{rt}-{i}"),
            json!({
                "labels": {"training.kubeflow.org/operator-name": "pytorchjob-controller",
                           "training.kubeflow.org/job-name": job,
                           "training.kubeflow.org/replica-type": rt,
                           "training.kubeflow.org/replica-index": i.to_string()},
                "annotations": {"scheduling.k8s.io/group-name": job, "volcano.sh/task-spec": rt},
                "ownerReferences": owner("kubeflow.org/v1", "PyTorchJob", job, true),
            }),
            json!({"schedulerName": "volcano"}),
            "1",
            seconds,
        )
    };
    StandIn {
        follows: "training-operator v1.9.0 PyTorchJob, gang scheduler volcano",
        before: vec![(
            volcano(),
            json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                   "metadata": {"name": job, "namespace": "default",
                                "ownerReferences": owner("kubeflow.org/v1", "PyTorchJob", job, true)},
                   "spec": {"minMember": 3, "queue": "default",
                            "minResources": {"cpu": "3", "memory": "3Gi"}}}),
        )],
        gate: Some(job.to_string()),
        pods: vec![pod("master", 0), pod("worker", 0), pod("worker", 1)],
        ..StandIn::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytorchjob_via_volcano_waits_for_inqueue_and_survives_an_undone_gang() {
    let c = Cluster::start(ServeConfig {
        bind_retries: 1,
        bind_backoff_initial_ms: 50,
        bind_backoff_max_ms: 200,
        ..config(false)
    })
    .await;
    let client = c.client.clone();
    pytorchjob_volcano("pt", 1.0).run(&client).await;
    group_reaches(&client, &volcano(), "pt", "Completed").await;

    // The deadlock the issue found: a bind fails after others of the gang succeeded, the gang
    // is undone and its bound pods, owned by the job, deleted. The group must read `Inqueue`
    // (not `Pending`), or the operator would never create those pods again. Half the binds
    // fail until the operator has had to create a pod again.
    let mut faults = c.emu.state.faults.config();
    faults.error_rate.insert("bind".into(), 0.5);
    c.emu.state.faults.set_config(faults.clone());
    let job = pytorchjob_volcano("pt2", 1.0);
    let recreated = Arc::clone(&job.recreated);
    let run = tokio::spawn({
        let client = client.clone();
        async move { job.run(&client).await }
    });
    wait_for("pods of the undone gang created again", || async {
        (recreated.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    faults.error_rate.clear();
    c.emu.state.faults.set_config(faults);
    run.await.unwrap();
    group_reaches(&client, &volcano(), "pt2", "Completed").await;
    let undone = events_for(&client, "pt2")
        .await
        .into_iter()
        .any(|(r, m)| r == "FailedScheduling" && m.contains("the gang was undone"));
    assert!(undone, "the gang was undone and said so");
    c.stop().await;
}

/// training-operator v1.9.0 PyTorchJob with `--gang-scheduler-name=scheduler-plugins`
/// (`control/podgroup_control.go`: `SchedulerPluginsControl` never delays pods): the
/// scheduler-plugins PodGroup `<job>` first, pods labelled `scheduling.x-k8s.io/pod-group`;
/// the template names `scheduler-plugins-scheduler` (the operator's own e2e tests do, since it
/// would otherwise write the flag's value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytorchjob_via_scheduler_plugins() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    let job = "ptc";
    let pod = |rt: &str, i: usize| {
        pod_of(
            &format!("{job}-{rt}-{i}"),
            json!({
                "labels": {"training.kubeflow.org/replica-type": rt,
                           "training.kubeflow.org/job-name": job,
                           "scheduling.x-k8s.io/pod-group": job},
                "ownerReferences": owner("kubeflow.org/v1", "PyTorchJob", job, true),
            }),
            json!({"schedulerName": "scheduler-plugins-scheduler"}),
            "1",
            1.0,
        )
    };
    StandIn {
        follows: "training-operator v1.9.0 PyTorchJob, gang scheduler scheduler-plugins",
        before: vec![(
            plugins(),
            json!({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                   "metadata": {"name": job, "namespace": "default",
                                "ownerReferences": owner("kubeflow.org/v1", "PyTorchJob", job, true)},
                   "spec": {"minMember": 3, "minResources": {"cpu": "3", "memory": "3Gi"}}}),
        )],
        pods: vec![pod("master", 0), pod("worker", 0), pod("worker", 1)],
        ..StandIn::default()
    }
    .run(&client)
    .await;
    group_reaches(&client, &plugins(), job, "Finished").await;
    c.stop().await;
}

/// kubeflow/mpi-operator v0.8.x MPIJob v2beta1 with `--gang-scheduling=volcano`
/// (`pkg/controller/mpi_job_controller.go` `syncHandler`, `pkg/controller/podgroup.go`): the
/// PodGroup `<job>` (minMember workers + 1, queue from the job's queue-name annotation), then
/// every worker, then the launcher Job's pod; `schedulerName: volcano` forced on all of them;
/// it never reads the PodGroup's phase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mpijob_v2_via_volcano() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    let job = "pi";
    let meta = |role: &str, owner_ref: Value| {
        json!({
            "labels": {"training.kubeflow.org/operator-name": "mpi-operator",
                       "training.kubeflow.org/job-name": job,
                       "training.kubeflow.org/job-role": role},
            "annotations": {"scheduling.k8s.io/group-name": job},
            "ownerReferences": owner_ref,
        })
    };
    let worker = |i: usize| {
        pod_of(
            &format!("{job}-worker-{i}"),
            meta("worker", owner("kubeflow.org/v2beta1", "MPIJob", job, true)),
            json!({"schedulerName": "volcano", "hostname": format!("{job}-worker-{i}"),
                   "subdomain": job}),
            "1",
            1.0,
        )
    };
    let launcher = pod_of(
        &format!("{job}-launcher-x7k2p"),
        meta(
            "launcher",
            owner("batch/v1", "Job", &format!("{job}-launcher"), true),
        ),
        json!({"schedulerName": "volcano"}),
        "1",
        1.0,
    );
    StandIn {
        follows: "mpi-operator v0.8.2 MPIJob v2beta1, gang scheduling volcano",
        before: vec![(
            volcano(),
            json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                   "metadata": {"name": job, "namespace": "default",
                                "ownerReferences": owner("kubeflow.org/v2beta1", "MPIJob", job, true)},
                   "spec": {"minMember": 3, "queue": "default", "minResources": {"cpu": "3"}}}),
        )],
        pods: vec![worker(0), worker(1), launcher],
        ..StandIn::default()
    }
    .run(&client)
    .await;
    group_reaches(&client, &volcano(), job, "Completed").await;
    c.stop().await;
}

/// Volcano's own job controller, a `batch.volcano.sh/v1alpha1` Job (volcano-sh/volcano v1.15,
/// `pkg/controllers/job/job_controller_actions.go` `createOrUpdatePodGroup`, `syncJob`,
/// `calcPGMinResources`): the PodGroup `<job>-<uid>` with `minTaskMember` and a
/// `minResources` of quota usage (`count/pods`, `requests.cpu`), no pod until it is `Inqueue`;
/// pods `<job>-<task>-<i>` with Volcano's annotations and labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volcano_job() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    let (job, uid) = ("vj", "8f0e2c1a");
    let group = format!("{job}-{uid}");
    let pod = |task: &str, i: usize| {
        pod_of(
            &format!("{job}-{task}-{i}"),
            json!({
                "annotations": {"scheduling.k8s.io/group-name": group, "volcano.sh/task-spec": task,
                                "volcano.sh/task-index": i.to_string(), "volcano.sh/job-name": job,
                                "volcano.sh/queue-name": "default", "volcano.sh/job-version": "0",
                                "volcano.sh/template-uid": format!("{job}-{task}"),
                                "volcano.sh/job-retry-count": "0"},
                "labels": {"volcano.sh/job-name": job, "volcano.sh/task-spec": task,
                           "volcano.sh/task-index": i.to_string(),
                           "volcano.sh/job-namespace": "default", "volcano.sh/queue-name": "default"},
                "ownerReferences": owner("batch.volcano.sh/v1alpha1", "Job", job, true),
            }),
            json!({"schedulerName": "volcano"}),
            "1",
            1.0,
        )
    };
    StandIn {
        follows: "volcano v1.15 job controller, batch.volcano.sh/v1alpha1 Job",
        before: vec![(
            volcano(),
            json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                   "metadata": {"name": group, "namespace": "default",
                                "ownerReferences": owner("batch.volcano.sh/v1alpha1", "Job", job, true)},
                   "spec": {"minMember": 3, "minTaskMember": {"master": 1, "worker": 2},
                            "queue": "default",
                            "minResources": {"count/pods": "3", "pods": "3", "cpu": "3",
                                             "requests.cpu": "3", "memory": "3Gi",
                                             "requests.memory": "3Gi"}}}),
        )],
        gate: Some(group.clone()),
        pods: vec![pod("master", 0), pod("worker", 0), pod("worker", 1)],
        ..StandIn::default()
    }
    .run(&client)
    .await;
    group_reaches(&client, &volcano(), &group, "Completed").await;
    c.stop().await;
}

/// Spark driver and executors as the Spark submission makes them: the driver first, the
/// executors once it runs (the driver creates them), every pod annotated with the group.
fn spark_pods(app: &str, group: &str, scheduler: &str, executors: usize) -> (Value, Vec<Value>) {
    let meta = |role: &str| {
        json!({
            "labels": {"spark-role": role, "spark-app-selector": format!("spark-{app}"),
                       "sparkoperator.k8s.io/app-name": app},
            "annotations": {"scheduling.k8s.io/group-name": group},
        })
    };
    let driver = pod_of(
        &format!("{app}-driver"),
        meta("driver"),
        json!({"schedulerName": scheduler}),
        "1",
        2.0,
    );
    let executors = (1..=executors)
        .map(|i| {
            let mut m = meta("executor");
            m["ownerReferences"] = owner("v1", "Pod", &format!("{app}-driver"), true);
            pod_of(
                &format!("{app}-exec-{i}"),
                m,
                json!({"schedulerName": scheduler}),
                "1",
                1.0,
            )
        })
        .collect();
    (driver, executors)
}

/// kubeflow/spark-operator v2.5 with `spec.batchScheduler: volcano`
/// (`internal/scheduler/volcano/scheduler.go`): the PodGroup `spark-<app>-pg` (minMember 1,
/// minResources from driver and executors through the Kubernetes quantity parser, so Spark's
/// `512m` is 512 millibytes, `status.phase: Pending` on create), then spark-submit creates the
/// driver, which creates the executors; the webhook sets `schedulerName: volcano`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_application_with_batch_scheduler_volcano() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    let app = "spark-pi";
    let group = format!("spark-{app}-pg");
    let (driver, executors) = spark_pods(app, &group, "volcano", 2);
    StandIn {
        follows: "spark-operator v2.5 SparkApplication, batchScheduler volcano",
        before: vec![(
            volcano(),
            json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                   "metadata": {"name": group, "namespace": "default",
                                "ownerReferences": owner("sparkoperator.k8s.io/v1beta2", "SparkApplication", app, true)},
                   "spec": {"minMember": 1, "minResources": {"cpu": "3", "memory": "1536m"}},
                   "status": {"phase": "Pending"}}),
        )],
        pods: vec![driver],
        later: executors,
        ..StandIn::default()
    }
    .run(&client)
    .await;
    group_reaches(&client, &volcano(), &group, "Completed").await;
    c.stop().await;
}

/// Apache Spark's own `VolcanoFeatureStep` (apache/spark 3.3+, master of August 2026,
/// `resource-managers/kubernetes/core/.../features/VolcanoFeatureStep.scala`,
/// `KubernetesClientApplication.scala` `Client.run`): the PodGroup `<appId>-podgroup` from a
/// template with an empty `spec`, applied before the driver pod, then re-applied owned by the
/// driver pod; `spark.kubernetes.scheduler.name=volcano`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_native_volcano_feature_step() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    let app = "spark-3f9c2a1b8e4d4a3f9b0e6a2c7d4e5f91";
    let group = format!("{app}-podgroup");
    let (driver, executors) = spark_pods(app, &group, "volcano", 2);
    StandIn {
        follows: "Apache Spark 3.3+ VolcanoFeatureStep",
        before: vec![(
            volcano(),
            json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                   "metadata": {"name": group, "namespace": "default"}, "spec": {}}),
        )],
        pods: vec![driver],
        later: executors,
        after: vec![(
            volcano(),
            json!({"metadata": {"name": group,
                   "ownerReferences": owner("v1", "Pod", &format!("{app}-driver"), true)}}),
            true,
        )],
        ..StandIn::default()
    }
    .run(&client)
    .await;
    group_reaches(&client, &volcano(), &group, "Completed").await;
    c.stop().await;
}

/// Kubeflow Trainer v2.3 TrainJob (kubeflow/trainer, `pkg/runtime/framework/plugins/
/// coscheduling/coscheduling.go`, `plugins/volcano/volcano.go`, `plugins/jobset`): a JobSet and
/// a PodGroup named after the TrainJob, applied in no fixed order (the plugins come from a Go
/// map), so here the pods come first; minMember the sum of the pod sets; the scheduler name is
/// the user's, in the runtime's pod template.
fn trainjob(job: &str, volcano_flavor: bool) -> StandIn {
    let (key, scheduler) = if volcano_flavor {
        (
            json!({"annotations": {"scheduling.k8s.io/group-name": job}}),
            "volcano",
        )
    } else {
        (
            json!({"labels": {"scheduling.x-k8s.io/pod-group": job}}),
            "scheduler-plugins-scheduler",
        )
    };
    let pods = (0..2)
        .map(|i| {
            let mut meta = key.clone();
            meta["ownerReferences"] = owner("batch/v1", "Job", &format!("{job}-node-0"), true);
            meta.as_object_mut()
                .unwrap()
                .entry("labels")
                .or_insert(json!({}))["jobset.sigs.k8s.io/jobset-name"] = json!(job);
            pod_of(
                &format!("{job}-node-0-{i}-abcde"),
                meta,
                json!({"schedulerName": scheduler}),
                "1",
                1.0,
            )
        })
        .collect();
    let group = if volcano_flavor {
        (
            volcano(),
            json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                   "metadata": {"name": job, "namespace": "default",
                                "ownerReferences": owner("trainer.kubeflow.org/v1alpha1", "TrainJob", job, true)},
                   "spec": {"minMember": 2, "minResources": {"cpu": "2", "memory": "2Gi"},
                            "queue": "default"}}),
            false,
        )
    } else {
        (
            plugins(),
            json!({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                   "metadata": {"name": job, "namespace": "default",
                                "ownerReferences": owner("trainer.kubeflow.org/v1alpha1", "TrainJob", job, true)},
                   "spec": {"minMember": 2, "minResources": {"cpu": "2", "memory": "2Gi"},
                            "scheduleTimeoutSeconds": 60}}),
            false,
        )
    };
    StandIn {
        follows: "Kubeflow Trainer v2.3 TrainJob",
        pods,
        after: vec![group],
        ..StandIn::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trainjob_with_the_coscheduling_and_the_volcano_plugin() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    trainjob("train-cos", false).run(&client).await;
    group_reaches(&client, &plugins(), "train-cos", "Finished").await;
    trainjob("train-vc", true).run(&client).await;
    group_reaches(&client, &volcano(), "train-vc", "Completed").await;
    c.stop().await;
}

/// ray-project/kuberay v1.7 RayCluster (`ray-operator/controllers/ray/batchscheduler/
/// volcano/volcano_scheduler.go`, `scheduler-plugins/scheduler_plugins.go`,
/// `raycluster_controller.go` `reconcilePods`): the PodGroup first, then the head, then the
/// workers. Volcano mode: `ray-<cluster>-pg`, queue from the cluster's `volcano.sh/queue-name`
/// label (copied to the pods), `status.phase: Pending` on create, `schedulerName: volcano`
/// forced. scheduler-plugins mode (`ray.io/gang-scheduling-enabled`): the group is named after
/// the cluster, its owner reference has no controller flag, `schedulerName:
/// scheduler-plugins-scheduler` forced.
fn raycluster(cluster: &str, volcano_mode: bool) -> StandIn {
    let queue = "kuberay-test-queue";
    let group = if volcano_mode {
        format!("ray-{cluster}-pg")
    } else {
        cluster.to_string()
    };
    let pod = |name: String, task: &str| {
        let mut meta = json!({
            "labels": {"ray.io/cluster": cluster, "ray.io/group": task},
            "ownerReferences": owner("ray.io/v1", "RayCluster", cluster, true),
        });
        let scheduler = if volcano_mode {
            meta["labels"]["volcano.sh/queue-name"] = json!(queue);
            meta["annotations"] =
                json!({"scheduling.k8s.io/group-name": group, "volcano.sh/task-spec": task});
            "volcano"
        } else {
            meta["labels"]["scheduling.x-k8s.io/pod-group"] = json!(group);
            "scheduler-plugins-scheduler"
        };
        pod_of(&name, meta, json!({"schedulerName": scheduler}), "1", 1.0)
    };
    let mut before = Vec::new();
    if volcano_mode {
        before.push((
            volcano_queue(),
            json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
                   "metadata": {"name": queue}, "spec": {"weight": 1}}),
        ));
        before.push((
            volcano(),
            json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                   "metadata": {"name": group, "namespace": "default",
                                "ownerReferences": owner("ray.io/v1", "RayCluster", cluster, true)},
                   "spec": {"minMember": 3, "queue": queue,
                            "minResources": {"cpu": "3", "memory": "3Gi"}},
                   "status": {"phase": "Pending"}}),
        ));
    } else {
        before.push((
            plugins(),
            json!({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                   "metadata": {"name": group, "namespace": "default",
                                "ownerReferences": owner("ray.io/v1", "RayCluster", cluster, false)},
                   "spec": {"minMember": 3, "minResources": {"cpu": "3", "memory": "3Gi"}}}),
        ));
    }
    StandIn {
        follows: "KubeRay v1.7 RayCluster",
        before,
        pods: vec![
            pod(format!("{cluster}-head-x8d2k"), "headgroup"),
            pod(format!("{cluster}-workers-worker-a1b2c"), "workers"),
            pod(format!("{cluster}-workers-worker-d3e4f"), "workers"),
        ],
        ..StandIn::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raycluster_in_volcano_and_in_scheduler_plugins_mode() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    raycluster("rc", true).run(&client).await;
    group_reaches(&client, &volcano(), "ray-rc-pg", "Completed").await;
    let job = admin_until(&c.serve, "/api/v1/jobs/default/ray-rc-pg", |j| {
        j["queue"] == "root.kuberay-test-queue"
    })
    .await;
    assert_eq!(job["queue"], "root.kuberay-test-queue", "{job}");
    raycluster("rcp", false).run(&client).await;
    group_reaches(&client, &plugins(), "rcp", "Finished").await;
    c.stop().await;
}

/// A Kueue plain-pod group (kubernetes-sigs/kueue v0.18+, `pkg/controller/jobs/pod`): pods
/// carrying `kueue.x-k8s.io/pod-group-name` and `kueue.x-k8s.io/pod-group-total-count`, created
/// gated by Kueue's webhook (`kueue.x-k8s.io/admission`, the `managed` label and finalizer);
/// Kueue lifts the gate from every pod once all of them exist and its Workload is admitted.
/// No PodGroup object exists: the pods are the gang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kueue_plain_pod_group() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    let pods = (0..3)
        .map(|i| {
            pod_of(
                &format!("kq-{i}"),
                json!({
                    "labels": {"kueue.x-k8s.io/queue-name": "user-queue",
                               "kueue.x-k8s.io/pod-group-name": "kq",
                               "kueue.x-k8s.io/managed": "true"},
                    "annotations": {"kueue.x-k8s.io/pod-group-total-count": "3",
                                    "kueue.x-k8s.io/role-hash": "a1b2c3"},
                }),
                json!({"schedulerName": "phalanx",
                       "schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]}),
                "1",
                1.0,
            )
        })
        .collect();
    StandIn {
        follows: "Kueue v0.18 plain pod group",
        pods,
        lifts_gate: Some("kueue.x-k8s.io/admission"),
        ..StandIn::default()
    }
    .run(&client)
    .await;
    // One job of three pods, not three gangs of one.
    let job = admin_until(&c.serve, "/api/v1/jobs/default/kq", |j| {
        j["phase"] == "Completed"
    })
    .await;
    assert_eq!(job["succeeded"], 3, "{job}");
    c.stop().await;
}

/// The upstream gang API (Kubernetes 1.37, KEP-4671; the objects as JobSet's
/// workload-aware-scheduling docs have users write them): a `Workload`, then its `PodGroup`
/// (`schedulingPolicy.gang.minCount`), then pods joining through
/// `spec.schedulingGroup.podGroupName`. Phalanx writes `PodGroupInitiallyScheduled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_gang() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    let group = "js-abc-workers-def";
    let pods = (0..4)
        .map(|i| {
            pod_of(
                &format!("js-workers-{}-{}", i / 2, i % 2),
                json!({"labels": {"jobset.sigs.k8s.io/jobset-name": "js"},
                       "ownerReferences": owner("batch/v1", "Job", &format!("js-workers-{}", i / 2), true)}),
                json!({"schedulerName": "phalanx", "schedulingGroup": {"podGroupName": group}}),
                "1",
                1.0,
            )
        })
        .collect();
    StandIn {
        follows: "Kubernetes 1.37 scheduling.k8s.io/v1beta1 (KEP-4671), JobSet docs",
        before: vec![
            (
                workload(),
                json!({"apiVersion": "scheduling.k8s.io/v1beta1", "kind": "Workload",
                       "metadata": {"name": "js-abc", "namespace": "default"},
                       "spec": {"controllerRef": {"apiGroup": "jobset.x-k8s.io", "kind": "JobSet", "name": "js"},
                                "podGroupTemplates": [{"name": "workers",
                                    "schedulingPolicy": {"gang": {"minCount": 4}}}]}}),
            ),
            (
                upstream(),
                json!({"apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PodGroup",
                       "metadata": {"name": group, "namespace": "default"},
                       "spec": {"workloadRef": {"workloadName": "js-abc", "templateName": "workers"},
                                "schedulingPolicy": {"gang": {"minCount": 4}}}}),
            ),
        ],
        pods,
        ..StandIn::default()
    }
    .run(&client)
    .await;
    let condition = wait_for("PodGroupInitiallyScheduled=True", || async {
        let o = get(&client, &upstream(), group).await?;
        o.data["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "PodGroupInitiallyScheduled" && c["status"] == "True")
            .cloned()
    })
    .await;
    assert_eq!(condition["reason"], "Scheduled", "{condition}");
    c.stop().await;
}

/// Bad objects of every kind the operators bring are explained on the object, naming the
/// field, and nothing else stops: a Volcano PodGroup with `minMember: 0`, one naming a queue
/// that does not exist, an upstream group without a gang policy, a Kueue group whose total
/// count is not a number. A good gang beside them runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_operator_objects_are_explained_and_nothing_else_stops() {
    let c = Cluster::start(config(false)).await;
    let client = c.client.clone();
    let member = |name: &str, meta: Value, spec: Value| {
        let mut spec = spec;
        spec["schedulerName"] = json!("volcano");
        pod_of(name, meta, spec, "1", 1.0)
    };
    let bad = StandIn {
        follows: "bad objects",
        before: vec![
            (
                volcano(),
                json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                       "metadata": {"name": "zero", "namespace": "default"},
                       "spec": {"minMember": 0}}),
            ),
            (
                volcano(),
                json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                       "metadata": {"name": "lost", "namespace": "default"},
                       "spec": {"minMember": 1, "queue": "no-such-queue"}}),
            ),
            (
                upstream(),
                json!({"apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PodGroup",
                       "metadata": {"name": "policyless", "namespace": "default"},
                       "spec": {"schedulingPolicy": {}}}),
            ),
        ],
        ..StandIn::default()
    };
    for (ar, obj) in &bad.before {
        create(&client, ar, obj).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for p in [
        member(
            "zero-0",
            json!({"annotations": {"scheduling.k8s.io/group-name": "zero"}}),
            json!({}),
        ),
        member(
            "lost-0",
            json!({"annotations": {"scheduling.k8s.io/group-name": "lost"}}),
            json!({}),
        ),
        member(
            "policyless-0",
            json!({}),
            json!({"schedulingGroup": {"podGroupName": "policyless"}}),
        ),
        member(
            "kq-bad-0",
            json!({"labels": {"kueue.x-k8s.io/pod-group-name": "kq-bad"},
                   "annotations": {"kueue.x-k8s.io/pod-group-total-count": "three"}}),
            json!({}),
        ),
    ] {
        let p: Pod = serde_json::from_value(p).unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    // A good gang beside them runs to completion.
    pytorchjob_volcano("good", 1.0).run(&client).await;
    for (object, field) in [
        ("zero", "spec.minMember"),
        ("lost", "no-such-queue"),
        ("policyless", "spec.schedulingPolicy"),
        (
            "kq-bad-0",
            "metadata.annotations[kueue.x-k8s.io/pod-group-total-count]",
        ),
    ] {
        let (reason, note) = wait_for(&format!("an event on {object} naming {field}"), || async {
            events_for(&client, object)
                .await
                .into_iter()
                .find(|(r, n)| r != "Scheduled" && n.contains(field))
        })
        .await;
        assert!(!reason.is_empty(), "{object}: {note}");
    }
    for name in ["zero-0", "lost-0", "policyless-0", "kq-bad-0"] {
        assert_eq!(
            nodes_of(&client, name).await,
            [None],
            "{name} stays unbound"
        );
    }
    c.stop().await;
}
