//! `phalanx emulator load`: creates the jobs of a native trace file at a given rate, each as a
//! PodGroup plus its pods, after the trace's queues, for end-to-end runs of `phalanx serve`.
//!
//! Each job becomes a scheduler-plugins PodGroup (pods labelled `scheduling.x-k8s.io/pod-group`)
//! or a Volcano PodGroup (pods annotated `scheduling.k8s.io/group-name`), with pods carrying
//! `schedulerName`, `phalanx.dev/duration` and `phalanx.dev/outcome` so the simulated kubelets run
//! them for their trace duration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::client::{ClientError, Conn};
use crate::kubelet::{DURATION_ANNOTATION, OUTCOME_ANNOTATION};

/// A load run that cannot proceed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The trace cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A `job` record is malformed.
    #[error("{path}:{line}: {message}")]
    Record {
        /// File.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Talking to the server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// One task of a job record.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskRecord {
    /// Task name.
    pub name: String,
    /// Pods of this task.
    pub replicas: u32,
    /// Per-pod requests.
    #[serde(default)]
    pub requests: Map<String, Value>,
    /// Seconds each pod runs.
    #[serde(default)]
    pub duration: Option<f64>,
    /// Node selector.
    #[serde(default)]
    pub node_selector: Option<Map<String, Value>>,
    /// Tolerations, Kubernetes-shaped.
    #[serde(default)]
    pub tolerations: Option<Vec<Value>>,
    /// Per-task minimum.
    #[serde(default)]
    pub min_member: Option<u32>,
    /// `succeeded` (default) or `failed`.
    #[serde(default)]
    pub outcome: Option<String>,
}

/// A `job` record of the native trace format (the fields `load` needs).
#[derive(Debug, Clone, Deserialize)]
pub struct JobRecord {
    /// `namespace/name` or `name`.
    pub name: String,
    /// Submission time in trace seconds.
    #[serde(default)]
    pub time: Option<f64>,
    /// Dotted queue path.
    #[serde(default)]
    pub queue: Option<String>,
    /// Priority.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Gang minimum; defaults to all replicas.
    #[serde(default)]
    pub min_member: Option<u32>,
    /// Gang minimum resources.
    #[serde(default)]
    pub min_resources: Option<Map<String, Value>>,
    /// Jobs that must succeed first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Tasks.
    pub tasks: Vec<TaskRecord>,
}

/// Which PodGroup API to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// `scheduling.x-k8s.io/v1alpha1` PodGroup, pods labelled `scheduling.x-k8s.io/pod-group`.
    SchedulerPlugins,
    /// `scheduling.volcano.sh/v1beta1` PodGroup, pods annotated `scheduling.k8s.io/group-name`.
    Volcano,
}

/// The records of one kind in a trace file, with their 1-based line numbers.
pub fn read_records(path: &Path, kind: &str) -> Result<Vec<(usize, Value)>, LoadError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: p.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| LoadError::Record {
            path: p.clone(),
            line: i + 1,
            message: e.to_string(),
        })?;
        if v.get("kind").and_then(Value::as_str) == Some(kind) {
            out.push((i + 1, v));
        }
    }
    Ok(out)
}

fn quantity_strings(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, q)| {
                    let s = match q {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), json!(s))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Node objects for the trace's `node` records (capacity, labels, taints), so an end-to-end run
/// can use the cluster the trace describes. `pods` defaults to 110.
pub fn trace_nodes(path: &Path) -> Result<Vec<Value>, LoadError> {
    let mut nodes = Vec::new();
    for (i, (line, rec)) in read_records(path, "node")?.into_iter().enumerate() {
        let err = |message: &str| LoadError::Record {
            path: path.display().to_string(),
            line,
            message: message.to_string(),
        };
        let name = rec
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| err("name: required"))?;
        let mut res = quantity_strings(rec.get("resources"));
        res.entry("pods".to_string()).or_insert(json!("110"));
        for (k, q) in &res {
            crate::quantity::parse_value_milli(q)
                .map_err(|e| err(&format!("resources.{k}: {e}")))?;
        }
        let shape = crate::server::NodeShape(
            res.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("0").to_string()))
                .collect(),
        );
        let mut node = crate::server::node_object(&dns_name_keep_dots(name), &shape, i + 1);
        if let Some(Value::Object(labels)) = rec.get("labels") {
            for (k, v) in labels {
                node["metadata"]["labels"][k] = v.clone();
            }
        }
        if let Some(Value::Array(taints)) = rec.get("taints") {
            node["spec"]["taints"] = json!(taints);
        }
        nodes.push(node);
    }
    Ok(nodes)
}

/// Like [`dns_name`] but keeps dots, which node and queue names may contain.
pub fn dns_name_keep_dots(s: &str) -> String {
    s.split('.').map(dns_name).collect::<Vec<_>>().join(".")
}

/// Volcano `Queue` objects for the trace's `queue` records: name = the dotted path, the
/// hierarchy in the `volcano.sh/hierarchy` annotation, and weight, capability, guarantee,
/// deserved and reclaimable in the spec.
pub fn trace_queues(path: &Path) -> Result<Vec<Value>, LoadError> {
    let mut queues = Vec::new();
    for (line, rec) in read_records(path, "queue")? {
        let name = rec
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| LoadError::Record {
                path: path.display().to_string(),
                line,
                message: "name: required".into(),
            })?;
        let mut spec = json!({"weight": rec.get("weight").and_then(Value::as_u64).unwrap_or(1)});
        for (field, key) in [("capability", "capability"), ("deserved", "deserved")] {
            let q = quantity_strings(rec.get(field));
            if !q.is_empty() {
                spec[key] = Value::Object(q);
            }
        }
        let g = quantity_strings(rec.get("guarantee"));
        if !g.is_empty() {
            spec["guarantee"] = json!({"resource": g});
        }
        if let Some(r) = rec.get("reclaimable").and_then(Value::as_bool) {
            spec["reclaimable"] = json!(r);
        }
        queues.push(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": dns_name_keep_dots(name),
                         "annotations": {"volcano.sh/hierarchy": name.replace('.', "/")}},
            "spec": spec,
        }));
    }
    Ok(queues)
}

/// Reads the `job` records of a trace, ordered by time then line.
pub fn read_jobs(path: &Path) -> Result<Vec<JobRecord>, LoadError> {
    let mut jobs = Vec::new();
    for (line, v) in read_records(path, "job")? {
        let err = |message: String| LoadError::Record {
            path: path.display().to_string(),
            line,
            message,
        };
        let job: JobRecord = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
        if job.tasks.is_empty() {
            return Err(err("tasks: a job needs at least one task".into()));
        }
        jobs.push((job.time.unwrap_or(0.0), line, job));
    }
    jobs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(jobs.into_iter().map(|(_, _, j)| j).collect())
}

/// Lowercases and replaces characters Kubernetes names do not allow.
pub fn dns_name(s: &str) -> String {
    let mut out: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out = out.trim_matches('-').to_string();
    out.truncate(200);
    if out.is_empty() { "x".into() } else { out }
}

/// The PodGroup and pods of one job: (namespace, podgroup path, podgroup, pods).
pub fn job_objects(
    job: &JobRecord,
    flavor: Flavor,
    default_ns: &str,
    scheduler: &str,
) -> (String, String, Value, Vec<Value>) {
    let (ns, name) = match job.name.split_once('/') {
        Some((ns, n)) => (dns_name(ns), dns_name(n)),
        None => (default_ns.to_string(), dns_name(&job.name)),
    };
    let total: u32 = job.tasks.iter().map(|t| t.replicas).sum();
    let min_member = job.min_member.unwrap_or(total);
    let queue = dns_name_keep_dots(job.queue.as_deref().unwrap_or("root.default"));
    let mut annotations = json!({"phalanx.dev/queue": queue, "phalanx.dev/trace-name": job.name});
    if !job.depends_on.is_empty() {
        annotations["phalanx.dev/depends-on"] = json!(job.depends_on.join(","));
    }
    let (pg_path, mut pg) = match flavor {
        Flavor::SchedulerPlugins => (
            format!("/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{ns}/podgroups"),
            json!({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                   "metadata": {"name": name, "namespace": ns, "annotations": annotations},
                   "spec": {"minMember": min_member}}),
        ),
        Flavor::Volcano => {
            let min_task: BTreeMap<String, u32> = job
                .tasks
                .iter()
                .filter_map(|t| Some((t.name.clone(), t.min_member?)))
                .collect();
            let mut spec = json!({"minMember": min_member, "queue": queue});
            if !min_task.is_empty() {
                spec["minTaskMember"] = json!(min_task);
            }
            (
                format!("/apis/scheduling.volcano.sh/v1beta1/namespaces/{ns}/podgroups"),
                json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                       "metadata": {"name": name, "namespace": ns, "annotations": annotations},
                       "spec": spec}),
            )
        }
    };
    if let Some(mr) = &job.min_resources {
        pg["spec"]["minResources"] = Value::Object(mr.clone());
    }
    let mut pods = Vec::new();
    for t in &job.tasks {
        for i in 0..t.replicas {
            let mut labels =
                json!({"phalanx.dev/job": name, "phalanx.dev/task": dns_name(&t.name)});
            let mut ann = annotations.clone();
            if let Some(d) = t.duration {
                ann[DURATION_ANNOTATION] = json!(d.to_string());
            }
            if let Some(o) = &t.outcome {
                ann[OUTCOME_ANNOTATION] = json!(o);
            }
            if let Some(m) = t.min_member {
                ann["phalanx.dev/task-min-member"] = json!(m.to_string());
            }
            match flavor {
                Flavor::SchedulerPlugins => {
                    labels["scheduling.x-k8s.io/pod-group"] = json!(name);
                }
                Flavor::Volcano => {
                    ann["scheduling.k8s.io/group-name"] = json!(name);
                    ann["volcano.sh/task-spec"] = json!(t.name);
                }
            }
            let mut spec = json!({
                "schedulerName": scheduler,
                "priority": job.priority.unwrap_or(0),
                "containers": [{
                    "name": dns_name(&t.name), "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": t.requests, "limits": gpu_limits(&t.requests)},
                }],
                "restartPolicy": "Never",
            });
            if let Some(sel) = &t.node_selector {
                spec["nodeSelector"] = Value::Object(sel.clone());
            }
            if let Some(tol) = &t.tolerations {
                spec["tolerations"] = json!(tol);
            }
            pods.push(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-{}-{i}", dns_name(&t.name)), "namespace": ns,
                             "labels": labels, "annotations": ann},
                "spec": spec,
            }));
        }
    }
    (ns, pg_path, pg, pods)
}

fn report_queue_error(body: &[u8]) {
    tracing::warn!(body = %String::from_utf8_lossy(body), "queue create failed");
}

/// Extended resources must have limits equal to requests in Kubernetes.
fn gpu_limits(requests: &Map<String, Value>) -> Value {
    Value::Object(
        requests
            .iter()
            .filter(|(k, _)| k.contains('/') || k.contains('.'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// What a load run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LoadReport {
    /// Jobs whose PodGroup was created.
    pub jobs: usize,
    /// Pods created.
    pub pods: usize,
    /// Requests that failed (status >= 400, other than a namespace that already exists).
    pub errors: usize,
    /// Wall seconds.
    pub elapsed_s: f64,
}

/// Options of a load run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `host:port` of the API server.
    pub host: String,
    /// Jobs per second.
    pub rate: f64,
    /// PodGroup flavor.
    pub flavor: Flavor,
    /// Namespace for job names without one.
    pub namespace: String,
    /// `spec.schedulerName` of the pods.
    pub scheduler: String,
    /// Stop after this many jobs.
    pub limit: Option<usize>,
    /// Parallel connections for pod creation.
    pub connections: usize,
    /// Bearer token to send (the kubeconfig's, for an emulator with `--token` users).
    pub token: Option<String>,
}

/// Creates the jobs, pacing PodGroups at `rate` per second.
pub async fn run(
    jobs: &[JobRecord],
    queues: &[Value],
    opts: &LoadOptions,
) -> Result<LoadReport, LoadError> {
    let started = Instant::now();
    let mut main = Conn::connect(&opts.host)
        .await?
        .with_token(opts.token.clone());
    for q in queues {
        let (code, body) = main
            .post_json("/apis/scheduling.volcano.sh/v1beta1/queues", q)
            .await?;
        if code >= 300 && code != 409 {
            report_queue_error(&body);
        }
    }
    let (tx, rx) = mpsc::channel::<(String, Value)>(4096);
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = Vec::new();
    for _ in 0..opts.connections.max(1) {
        let mut conn = Conn::connect(&opts.host)
            .await?
            .with_token(opts.token.clone());
        let rx = rx.clone();
        workers.push(tokio::spawn(async move {
            let (mut ok, mut bad) = (0usize, 0usize);
            loop {
                let next = rx.lock().await.recv().await;
                let Some((path, pod)) = next else { break };
                match conn.post_json(&path, &pod).await {
                    Ok((code, _)) if code < 300 => ok += 1,
                    Ok((code, body)) => {
                        bad += 1;
                        tracing::warn!(code, body = %String::from_utf8_lossy(&body), "pod create failed");
                    }
                    Err(e) => {
                        bad += 1;
                        tracing::warn!(error = %e, "pod create failed");
                    }
                }
            }
            (ok, bad)
        }));
    }
    let mut report = LoadReport::default();
    let mut namespaces = BTreeSet::new();
    let interval = if opts.rate > 0.0 {
        1.0 / opts.rate
    } else {
        0.0
    };
    for (i, job) in jobs
        .iter()
        .take(opts.limit.unwrap_or(usize::MAX))
        .enumerate()
    {
        let due = started + Duration::from_secs_f64(interval * i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (ns, pg_path, pg, pods) =
            job_objects(job, opts.flavor, &opts.namespace, &opts.scheduler);
        if namespaces.insert(ns.clone()) {
            let (code, _) = main
                .post_json("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
                .await?;
            if code >= 300 && code != 409 {
                report.errors += 1;
            }
        }
        let (code, body) = main.post_json(&pg_path, &pg).await?;
        if code >= 300 {
            report.errors += 1;
            tracing::warn!(job = %job.name, code, body = %String::from_utf8_lossy(&body), "podgroup create failed");
            continue;
        }
        report.jobs += 1;
        for pod in pods {
            let path = format!("/api/v1/namespaces/{ns}/pods");
            if tx.send((path, pod)).await.is_err() {
                break;
            }
        }
    }
    drop(tx);
    for w in workers {
        if let Ok((ok, bad)) = w.await {
            report.pods += ok;
            report.errors += bad;
        }
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_record_becomes_podgroup_and_pods() {
        let line = r#"{"kind":"job","time":12.5,"name":"team-a/train-1","queue":"root.research","priority":100,"min_member":8,"tasks":[{"name":"worker","replicas":8,"requests":{"cpu":"8","memory":"64Gi","nvidia.com/gpu":1},"duration":3600}]}"#;
        let job: JobRecord = serde_json::from_str(line).unwrap();
        let (ns, path, pg, pods) =
            job_objects(&job, Flavor::SchedulerPlugins, "default", "phalanx");
        assert_eq!(ns, "team-a");
        assert!(path.ends_with("/namespaces/team-a/podgroups"));
        assert_eq!(pg["spec"]["minMember"], 8);
        assert_eq!(pods.len(), 8);
        assert_eq!(pods[0]["spec"]["schedulerName"], "phalanx");
        assert_eq!(
            pods[0]["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"],
            "train-1"
        );
        assert_eq!(
            pods[0]["metadata"]["annotations"][DURATION_ANNOTATION],
            "3600"
        );
        assert_eq!(
            pods[0]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
            1
        );
        let (_, _, pg, pods) = job_objects(&job, Flavor::Volcano, "default", "phalanx");
        assert_eq!(pg["spec"]["queue"], "root.research");
        assert_eq!(
            pods[3]["metadata"]["annotations"]["scheduling.k8s.io/group-name"],
            "train-1"
        );
    }

    #[test]
    fn nodes_and_queues_from_a_trace() {
        let path = std::env::temp_dir().join(format!("emu-trace-{}.jsonl", std::process::id()));
        let text = [
            r#"{"kind":"queue","name":"root.research","weight":2,"guarantee":{"nvidia.com/gpu":16},"capability":{"nvidia.com/gpu":64},"reclaimable":true}"#,
            r#"{"kind":"node","name":"gpu-0001","resources":{"cpu":"96","memory":"768Gi","nvidia.com/gpu":8},"labels":{"gpu-model":"A100"},"taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}]}"#,
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let nodes = trace_nodes(&path).unwrap();
        let queues = trace_queues(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(nodes[0]["metadata"]["name"], "gpu-0001");
        assert_eq!(nodes[0]["status"]["allocatable"]["nvidia.com/gpu"], "8");
        assert_eq!(nodes[0]["status"]["allocatable"]["pods"], "110");
        assert_eq!(nodes[0]["metadata"]["labels"]["gpu-model"], "A100");
        assert_eq!(nodes[0]["spec"]["taints"][0]["key"], "dedicated");
        assert_eq!(queues[0]["metadata"]["name"], "root.research");
        assert_eq!(
            queues[0]["metadata"]["annotations"]["volcano.sh/hierarchy"],
            "root/research"
        );
        assert_eq!(queues[0]["spec"]["weight"], 2);
        assert_eq!(
            queues[0]["spec"]["guarantee"]["resource"]["nvidia.com/gpu"],
            "16"
        );
    }
}
