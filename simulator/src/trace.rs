//! The native trace format, version 1 (`../shared/trace-format.md`): its records, the reader
//! that turns a file of them into a validated [`Scenario`], and the writer the converters use.
//!
//! Reading is two passes. The first parses each line into a typed record and reports the first
//! malformed one with its file, line and field (`tasks[0].requests.cpu`). The second checks what
//! only the whole file can tell: unique names, references to queues (jobs go into leaf queues),
//! nodes and jobs, and dependency cycles (named in full, `a -> b -> c -> a`). Nothing is simulated until both pass.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;

use phalanx_model::{
    DEFAULT_QUEUE, Job, Node, NodeAffinity, PodSpec, QueueSpec, ResourceError, ResourceId,
    ResourceTable, Resources, Span, Taint, Task, Time, Toleration,
};
use serde::{Deserialize, Serialize};

/// A quantity as a trace writes it (a JSON number or a Kubernetes quantity string), and a
/// `queue` record: the model's own types, so a queue means the same in a trace as in a queue
/// file or a Volcano Queue.
pub use phalanx_model::{Amount, QueueRecord};

/// A resource map: Kubernetes resource names to amounts.
pub type ResourceMap = BTreeMap<String, Amount>;

/// `{"kind":"node"}`: a node, present from `time` (default 0).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    /// When it joins, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    /// Unique name.
    pub name: String,
    /// Allocatable capacity; `pods` defaults to 110.
    pub resources: ResourceMap,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Taints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Cordoned (`spec.unschedulable`): nothing new is placed there (an addition to version 1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unschedulable: bool,
}

/// How a task's pods end when their duration is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The pod succeeds.
    #[default]
    Succeeded,
    /// The pod fails (and with it, its job).
    Failed,
}

/// One task of a job record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    /// Unique in the job.
    pub name: String,
    /// Pods.
    pub replicas: u32,
    /// Requests of one pod.
    pub requests: ResourceMap,
    /// Seconds a pod runs once bound.
    pub duration: f64,
    /// `nodeSelector`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Required node affinity (an addition to version 1: `{"terms":[{"match_expressions":
    /// [{"key":..,"operator":"In","values":[..]}]}]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<NodeAffinity>,
    /// Per-task minimum of the gang.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_member: Option<u32>,
    /// How its pods end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// `{"kind":"job"}`: one gang.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRecord {
    /// Submission time, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    /// Unique name, conventionally `namespace/name`.
    pub name: String,
    /// Queue, default `root.default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Priority, default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Pods placed together, default all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_member: Option<u32>,
    /// Capacity held for the job beyond its pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_resources: Option<ResourceMap>,
    /// Jobs that must succeed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Seconds after its submission by which the job should have succeeded: its service-level
    /// objective (an addition to version 1). The scheduler does not see it; the summary counts
    /// the jobs that missed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<f64>,
    /// Free-form notes carried through untouched (an addition to version 1; converters say
    /// here what they inferred, e.g. `phalanx.dev/inferred`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Tasks.
    pub tasks: Vec<TaskRecord>,
}

/// `node_down`, `node_up` and `job_delete`: an event naming one node or job.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameAt {
    /// When, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    /// The node or job.
    pub name: String,
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A queue.
    Queue(QueueRecord),
    /// A node.
    Node(NodeRecord),
    /// A job.
    Job(JobRecord),
    /// A node fails: its pods are evicted and it is gone until `node_up`.
    NodeDown(NameAt),
    /// A node that went down returns.
    NodeUp(NameAt),
    /// A job is deleted.
    JobDelete(NameAt),
}

/// Why a trace cannot be simulated. Every variant names the file; record errors name the line
/// and, where there is one, the field.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// File.
        file: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A record is malformed or refers to something that does not exist.
    #[error("{}", describe(file, *line, field, message))]
    Record {
        /// File.
        file: String,
        /// Line number, from 1.
        line: usize,
        /// The field, as a path (`tasks[0].requests.cpu`); empty for the whole record.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn describe(file: &str, line: usize, field: &str, message: &str) -> String {
    if field.is_empty() {
        format!("{file}:{line}: {message}")
    } else {
        format!("{file}:{line}: field `{field}`: {message}")
    }
}

/// Something that happens to the simulated world at a point in virtual time.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A node joins (or changes).
    Node(Node),
    /// A node fails.
    NodeDown(String),
    /// A node returns.
    NodeUp(String),
    /// Job number `n` of [`Scenario::jobs`] is submitted.
    Submit(usize),
    /// A job is deleted.
    JobDelete(String),
}

/// A job as the simulator runs it: the engine's job plus what the world needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct SimJob {
    /// The job, with `submit_time` set to its arrival.
    pub job: Job,
    /// Per task: whether its pods fail when their duration ends.
    pub fails: Vec<bool>,
    /// How long after its submission it should have succeeded (the record's `deadline`).
    pub deadline: Option<Span>,
}

/// A validated workload: what the world replays.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// Names of resource lanes.
    pub table: ResourceTable,
    /// Queue configuration (empty: only `root.default`).
    pub queues: Vec<QueueSpec>,
    /// Jobs, in arrival order.
    pub jobs: Vec<SimJob>,
    /// Everything that happens, ordered by time then by trace line.
    pub events: Vec<(Time, Input)>,
    /// Where the run stops with whatever is still running or pending, if not when nothing is
    /// left to happen (a `--fill` stops after its last arrival; its pods never end).
    pub end: Option<Time>,
}

/// The lane GPUs are counted in, and how many of its units make one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuLane {
    /// The resource.
    pub id: ResourceId,
    /// Units per GPU: 1000 for milli-GPUs, 1 for whole devices.
    pub per_gpu: i64,
}

impl Scenario {
    /// The lane GPUs are counted in: the shared-GPU pool `alibaba.com/gpu-milli` where nodes
    /// offer it (the alibaba-gpu-2023 converter's; whole-GPU pods ask for it too, so it counts
    /// every GPU pod), else `nvidia.com/gpu`; `None` when no node at time zero has GPUs.
    pub fn gpu_lane(&self) -> Option<GpuLane> {
        let offered = |id: ResourceId| self.initial_nodes().any(|n| n.allocatable.get(id) > 0);
        self.table
            .lookup(crate::convert::alibaba_gpu::GPU_MILLI)
            .filter(|&id| offered(id))
            .map(|id| GpuLane { id, per_gpu: 1000 })
            .or_else(|| {
                offered(ResourceId::GPU).then_some(GpuLane {
                    id: ResourceId::GPU,
                    per_gpu: 1,
                })
            })
    }

    /// Nodes that exist at time zero.
    pub fn initial_nodes(&self) -> impl Iterator<Item = &Node> {
        self.events.iter().filter_map(|(t, i)| match i {
            Input::Node(n) if *t == Time::ZERO => Some(n),
            _ => None,
        })
    }

    /// Total pods over all jobs.
    pub fn pods(&self) -> u64 {
        self.jobs.iter().map(|j| j.job.replicas()).sum()
    }

    /// Sorts events by time, keeping the given order among equal times.
    pub fn sort_events(&mut self) {
        self.events.sort_by_key(|(t, _)| *t);
    }
}

/// Reads a trace file into a scenario.
pub fn read_file(path: &Path) -> Result<Scenario, TraceError> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| TraceError::Io {
        file: file.clone(),
        source,
    })?;
    read(std::io::BufReader::new(f), &file)
}

/// A record as read, with its line.
struct Read<T> {
    line: usize,
    rec: T,
}

/// Reads a trace from `input`; `file` names it in errors.
pub fn read(input: impl BufRead, file: &str) -> Result<Scenario, TraceError> {
    let err = |line: usize, field: &str, message: String| TraceError::Record {
        file: file.to_string(),
        line,
        field: field.to_string(),
        message,
    };
    let mut queues = Vec::new();
    let mut nodes = Vec::new();
    let mut jobs = Vec::new();
    let mut others: Vec<Read<(&'static str, NameAt)>> = Vec::new();
    for (i, text) in input.lines().enumerate() {
        let line = i + 1;
        let text = text.map_err(|source| TraceError::Io {
            file: file.to_string(),
            source,
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| err(line, "", format!("not a JSON object: {e}")))?;
        let serde_json::Value::Object(mut map) = value else {
            return Err(err(line, "", "not a JSON object".into()));
        };
        let kind = match map.remove("kind") {
            Some(serde_json::Value::String(k)) => k,
            Some(_) => return Err(err(line, "kind", "must be a string".into())),
            None => return Err(err(line, "kind", "missing".into())),
        };
        let value = serde_json::Value::Object(map);
        fn typed<T: serde::de::DeserializeOwned>(
            value: serde_json::Value,
        ) -> Result<T, (String, String)> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                (path, e.into_inner().to_string())
            })
        }
        let fail = |(field, message): (String, String)| err(line, &field, message);
        match kind.as_str() {
            "queue" => queues.push(Read {
                line,
                rec: typed::<QueueRecord>(value).map_err(fail)?,
            }),
            "node" => nodes.push(Read {
                line,
                rec: typed::<NodeRecord>(value).map_err(fail)?,
            }),
            "job" => jobs.push(Read {
                line,
                rec: typed::<JobRecord>(value).map_err(fail)?,
            }),
            "node_down" | "node_up" | "job_delete" => {
                let k = match kind.as_str() {
                    "node_down" => "node_down",
                    "node_up" => "node_up",
                    _ => "job_delete",
                };
                others.push(Read {
                    line,
                    rec: (k, typed::<NameAt>(value).map_err(fail)?),
                });
            }
            other => {
                return Err(err(
                    line,
                    "kind",
                    format!(
                        "unknown kind {other:?} (expected queue, node, job, node_down, node_up or job_delete)"
                    ),
                ));
            }
        }
    }
    build(file, queues, nodes, jobs, others)
}

fn time_of(t: Option<f64>) -> Result<Time, String> {
    match t {
        None => Ok(Time::ZERO),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Time::from_secs_f64(s)),
        Some(s) => Err(format!("{s} is not a time (seconds >= 0)")),
    }
}

fn resources(
    table: &mut ResourceTable,
    map: &ResourceMap,
    field: &str,
) -> Result<Resources, (String, String)> {
    let mut out = Resources::ZERO;
    for (name, amount) in map {
        let f = format!("{field}.{name}");
        let q = amount.quantity().map_err(|m| (f.clone(), m.to_string()))?;
        let id = table.intern(name).map_err(|e| (f.clone(), e.to_string()))?;
        let v = if id == ResourceId::CPU {
            q.milli_value()
        } else {
            q.value()
        }
        .map_err(|e| (f.clone(), e.to_string()))?;
        out.set(id, v);
    }
    Ok(out)
}

/// A queue of `known` under `queue`, if it has any (then `queue` is not a leaf).
pub fn child_of<'a>(known: &'a BTreeSet<String>, queue: &str) -> Option<&'a str> {
    let prefix = format!("{queue}.");
    known
        .range(prefix.clone()..)
        .next()
        .filter(|k| k.starts_with(&prefix))
        .map(String::as_str)
}

/// Every prefix of a dotted queue path (`root`, `root.a`, `root.a.b`).
fn prefixes(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('.')
        .map(move |(i, _)| &name[..i])
        .chain(std::iter::once(name))
}

fn build(
    file: &str,
    queues: Vec<Read<QueueRecord>>,
    nodes: Vec<Read<NodeRecord>>,
    jobs: Vec<Read<JobRecord>>,
    others: Vec<Read<(&'static str, NameAt)>>,
) -> Result<Scenario, TraceError> {
    let err = |line: usize, field: &str, message: String| TraceError::Record {
        file: file.to_string(),
        line,
        field: field.to_string(),
        message,
    };
    let at = |line: usize| move |(field, message): (String, String)| err(line, &field, message);
    let mut sc = Scenario::default();
    let mut timed: Vec<(Time, usize, Input)> = Vec::new();

    let mut known_queues: BTreeSet<String> = BTreeSet::from(["root".into(), DEFAULT_QUEUE.into()]);
    let mut queue_lines: HashMap<String, usize> = HashMap::new();
    for Read { line, rec } in &queues {
        let line = *line;
        let name = &rec.name;
        let valid =
            name == "root" || (name.starts_with("root.") && name.split('.').all(|p| !p.is_empty()));
        if !valid {
            return Err(err(
                line,
                "name",
                format!("queue {name:?} is not a dotted path under root (root.team.sub)"),
            ));
        }
        if let Some(first) = queue_lines.insert(name.clone(), line) {
            return Err(err(
                line,
                "name",
                format!("queue {name} is already defined on line {first}"),
            ));
        }
        let weight = rec.weight.unwrap_or(1);
        if !(1..=65535).contains(&weight) {
            return Err(err(line, "weight", format!("{weight} is not in 1..=65535")));
        }
        // The one rule for what a queue record means (`QueueRecord::to_spec`).
        let spec = rec.to_spec(&mut sc.table).map_err(|e| {
            let field = match &e.source {
                ResourceError::Quantity { resource, .. } => format!("{}.{resource}", e.field),
                _ => e.field.to_string(),
            };
            err(line, &field, e.source.to_string())
        })?;
        known_queues.extend(prefixes(name).map(str::to_string));
        sc.queues.push(spec);
    }

    let mut node_lines: HashMap<String, usize> = HashMap::new();
    let mut node_joins: HashMap<String, Time> = HashMap::new();
    for Read { line, rec } in nodes {
        let time = time_of(rec.time).map_err(|m| err(line, "time", m))?;
        if rec.name.is_empty() {
            return Err(err(line, "name", "empty".into()));
        }
        if let Some(first) = node_lines.insert(rec.name.clone(), line) {
            return Err(err(
                line,
                "name",
                format!("node {} is already defined on line {first}", rec.name),
            ));
        }
        let mut alloc = resources(&mut sc.table, &rec.resources, "resources").map_err(at(line))?;
        if !rec.resources.contains_key("pods") {
            alloc.set(ResourceId::PODS, 110);
        }
        node_joins.insert(rec.name.clone(), time);
        let mut node = Node::new(rec.name, alloc);
        node.labels = rec.labels;
        node.taints = rec.taints;
        node.unschedulable = rec.unschedulable;
        timed.push((time, line, Input::Node(node)));
    }

    let mut job_index: HashMap<String, (usize, usize)> = HashMap::new();
    let mut order: Vec<(Time, usize, usize)> = Vec::new();
    for Read { line, rec } in &jobs {
        let line = *line;
        let time = time_of(rec.time).map_err(|m| err(line, "time", m))?;
        if rec.name.is_empty() {
            return Err(err(line, "name", "empty".into()));
        }
        if let Some((_, first)) = job_index.get(&rec.name) {
            return Err(err(
                line,
                "name",
                format!("job {} is already defined on line {first}", rec.name),
            ));
        }
        let queue = rec.queue.clone().unwrap_or_else(|| DEFAULT_QUEUE.into());
        if !known_queues.contains(&queue) {
            return Err(err(
                line,
                "queue",
                format!("unknown queue {queue} (no queue record defines it)"),
            ));
        }
        if let Some(child) = child_of(&known_queues, &queue) {
            return Err(err(
                line,
                "queue",
                format!("queue {queue} has child queues ({child}); jobs go into leaf queues"),
            ));
        }
        if rec.tasks.is_empty() {
            return Err(err(line, "tasks", "a job needs at least one task".into()));
        }
        let mut job = Job::new(rec.name.clone());
        job.queue = queue;
        job.priority = rec.priority.unwrap_or(0);
        job.submit_time = time;
        job.depends_on = rec.depends_on.clone();
        let mut fails = Vec::with_capacity(rec.tasks.len());
        let mut task_names = BTreeSet::new();
        for (ti, t) in rec.tasks.iter().enumerate() {
            let f = |s: &str| format!("tasks[{ti}].{s}");
            if t.name.is_empty() || !task_names.insert(t.name.as_str()) {
                return Err(err(
                    line,
                    &f("name"),
                    format!("task name {:?} is empty or repeated", t.name),
                ));
            }
            if !(t.duration.is_finite() && t.duration >= 0.0) {
                return Err(err(
                    line,
                    &f("duration"),
                    format!("{} is not a duration (seconds >= 0)", t.duration),
                ));
            }
            let requests =
                resources(&mut sc.table, &t.requests, &f("requests")).map_err(at(line))?;
            let min_member = t.min_member.unwrap_or(0);
            if min_member > t.replicas {
                return Err(err(
                    line,
                    &f("min_member"),
                    format!("{min_member} is above the task's {} replicas", t.replicas),
                ));
            }
            fails.push(t.outcome == Some(Outcome::Failed));
            job.tasks.push(Task {
                name: t.name.clone(),
                replicas: t.replicas,
                min_member,
                pod: PodSpec {
                    requests,
                    node_selector: t.node_selector.clone(),
                    affinity: t.node_affinity.clone(),
                    tolerations: t.tolerations.clone(),
                    duration: Some(Span::from_secs_f64(t.duration)),
                },
            });
        }
        let replicas = job.replicas();
        if replicas == 0 {
            return Err(err(line, "tasks", "the tasks have no replicas".into()));
        }
        if replicas > u32::MAX as u64 / 2 {
            return Err(err(line, "tasks", format!("{replicas} pods is too many")));
        }
        job.min_member = rec.min_member.unwrap_or(replicas as u32);
        if job.min_member == 0 || job.min_member as u64 > replicas {
            return Err(err(
                line,
                "min_member",
                format!(
                    "{} must be between 1 and the {replicas} pods of the tasks",
                    job.min_member
                ),
            ));
        }
        if let Some(m) = &rec.min_resources {
            job.min_resources =
                Some(resources(&mut sc.table, m, "min_resources").map_err(at(line))?);
        }
        if let Err(e) = job.validate() {
            return Err(err(line, "", e.to_string()));
        }
        let deadline = match rec.deadline {
            None => None,
            Some(d) if d.is_finite() && d > 0.0 => Some(Span::from_secs_f64(d)),
            Some(d) => {
                return Err(err(
                    line,
                    "deadline",
                    format!("{d} is not a deadline (seconds after submission, above 0)"),
                ));
            }
        };
        let idx = sc.jobs.len();
        job_index.insert(rec.name.clone(), (idx, line));
        order.push((time, line, idx));
        sc.jobs.push(SimJob {
            job,
            fails,
            deadline,
        });
    }

    // References between jobs, then cycles.
    for Read { line, rec } in &jobs {
        for (i, dep) in rec.depends_on.iter().enumerate() {
            if !job_index.contains_key(dep) {
                return Err(err(
                    *line,
                    &format!("depends_on[{i}]"),
                    format!("unknown job {dep} (no job record defines it)"),
                ));
            }
        }
    }
    if let Some(cycle) = dependency_cycle(&sc.jobs) {
        let first = job_index[&cycle[0]].1;
        return Err(err(
            first,
            "depends_on",
            format!("dependency cycle: {}", cycle.join(" -> ")),
        ));
    }

    for Read { line, rec } in others {
        let (kind, NameAt { time, name }) = rec;
        let time = time_of(time).map_err(|m| err(line, "time", m))?;
        let input = match kind {
            "job_delete" => {
                if !job_index.contains_key(&name) {
                    return Err(err(line, "name", format!("unknown job {name}")));
                }
                Input::JobDelete(name)
            }
            _ => {
                let Some(&joins) = node_joins.get(&name) else {
                    return Err(err(line, "name", format!("unknown node {name}")));
                };
                if time < joins {
                    return Err(err(
                        line,
                        "time",
                        format!(
                            "{kind} of node {name} at {time}, before it joins at {joins} (line {})",
                            node_lines[&name]
                        ),
                    ));
                }
                if kind == "node_down" {
                    Input::NodeDown(name)
                } else {
                    Input::NodeUp(name)
                }
            }
        };
        timed.push((time, line, input));
    }

    // Jobs in arrival order; their submissions join the timeline.
    order.sort();
    let mut jobs: Vec<Option<SimJob>> = sc.jobs.drain(..).map(Some).collect();
    for (time, line, idx) in order {
        let n = sc.jobs.len();
        sc.jobs.push(jobs[idx].take().expect("each job once"));
        timed.push((time, line, Input::Submit(n)));
    }
    timed.sort_by_key(|(t, line, _)| (*t, *line));
    sc.events = timed.into_iter().map(|(t, _, i)| (t, i)).collect();
    Ok(sc)
}

/// A dependency cycle, if the jobs have one: the names along it, first repeated at the end.
pub fn dependency_cycle(jobs: &[SimJob]) -> Option<Vec<String>> {
    use petgraph::graph::{DiGraph, NodeIndex};
    let mut g: DiGraph<usize, ()> = DiGraph::with_capacity(jobs.len(), 0);
    let mut index: HashMap<&str, NodeIndex> = HashMap::with_capacity(jobs.len());
    for (i, j) in jobs.iter().enumerate() {
        index.insert(j.job.name.as_str(), g.add_node(i));
    }
    for j in jobs {
        let from = index[j.job.name.as_str()];
        for d in &j.job.depends_on {
            if let Some(&to) = index.get(d.as_str()) {
                g.add_edge(from, to, ());
            }
        }
    }
    for scc in petgraph::algo::tarjan_scc(&g) {
        let looped = scc.len() > 1 || g.contains_edge(scc[0], scc[0]);
        if !looped {
            continue;
        }
        let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
        let start = *scc.iter().min_by_key(|n| g[**n]).expect("non-empty");
        // Depth-first within the component until an edge leads back to the start.
        let mut path = vec![start];
        let mut seen = BTreeSet::from([start]);
        let mut stack = vec![g.neighbors(start).collect::<Vec<_>>()];
        while let Some(next) = stack.last_mut() {
            let Some(n) = next.pop() else {
                stack.pop();
                path.pop();
                continue;
            };
            if n == start {
                path.push(start);
                return Some(path.iter().map(|n| jobs[g[*n]].job.name.clone()).collect());
            }
            if members.contains(&n) && seen.insert(n) {
                path.push(n);
                stack.push(g.neighbors(n).collect());
            }
        }
    }
    None
}

/// Writes records as JSON lines.
pub fn write_records<'a>(
    out: &mut impl Write,
    records: impl IntoIterator<Item = &'a Record>,
) -> std::io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Formats a canonical amount of a lane as a trace writes it (`500m` cpu, plain numbers else).
pub fn amount(id: ResourceId, v: i64) -> Amount {
    if id == ResourceId::CPU {
        if v % 1000 == 0 {
            Amount::from(v / 1000)
        } else {
            Amount::Text(format!("{v}m"))
        }
    } else {
        Amount::from(v)
    }
}

/// A resource vector as a trace's resource map.
pub fn resource_map(table: &ResourceTable, r: &Resources) -> ResourceMap {
    r.iter_nonzero()
        .map(|(id, v)| (table.name(id).to_string(), amount(id, v)))
        .collect()
}

/// The scenario as trace records (what `phalanx trace` writes for a generated workload).
pub fn to_records(sc: &Scenario) -> Vec<Record> {
    let mut out: Vec<Record> = sc
        .queues
        .iter()
        .map(|q| {
            Record::Queue(QueueRecord {
                name: q.name.clone(),
                weight: Some(u64::from(q.weight)),
                guarantee: resource_map(&sc.table, &q.guarantee),
                deserved: q.deserved.map(|d| resource_map(&sc.table, &d)),
                capability: q.capability.map(|d| resource_map(&sc.table, &d)),
                reclaimable: Some(q.reclaimable),
                ordering: q.ordering,
                preemption: (!q.preemption).then_some(false),
            })
        })
        .collect();
    let secs = |t: Time| (t != Time::ZERO).then(|| t.as_secs_f64());
    for (t, input) in &sc.events {
        out.push(match input {
            Input::Node(n) => Record::Node(NodeRecord {
                time: secs(*t),
                name: n.name.clone(),
                resources: resource_map(&sc.table, &n.allocatable),
                labels: n.labels.clone(),
                taints: n.taints.clone(),
                unschedulable: n.unschedulable,
            }),
            Input::NodeDown(name) => Record::NodeDown(NameAt {
                time: secs(*t),
                name: name.clone(),
            }),
            Input::NodeUp(name) => Record::NodeUp(NameAt {
                time: secs(*t),
                name: name.clone(),
            }),
            Input::JobDelete(name) => Record::JobDelete(NameAt {
                time: secs(*t),
                name: name.clone(),
            }),
            Input::Submit(i) => {
                let sj = &sc.jobs[*i];
                let j = &sj.job;
                Record::Job(JobRecord {
                    time: secs(*t),
                    name: j.name.clone(),
                    queue: Some(j.queue.clone()),
                    priority: (j.priority != 0).then_some(j.priority),
                    min_member: Some(j.min_member),
                    min_resources: j.min_resources.map(|r| resource_map(&sc.table, &r)),
                    depends_on: j.depends_on.clone(),
                    deadline: sj.deadline.map(|d| d.as_secs_f64()),
                    annotations: BTreeMap::new(),
                    tasks: j
                        .tasks
                        .iter()
                        .zip(&sj.fails)
                        .map(|(t, &fails)| {
                            let mut req = t.pod.requests;
                            req.set(ResourceId::PODS, 0);
                            TaskRecord {
                                name: t.name.clone(),
                                replicas: t.replicas,
                                requests: resource_map(&sc.table, &req),
                                duration: t.pod.duration.unwrap_or_default().as_secs_f64(),
                                node_selector: t.pod.node_selector.clone(),
                                tolerations: t.pod.tolerations.clone(),
                                node_affinity: t.pod.affinity.clone(),
                                min_member: (t.min_member > 0).then_some(t.min_member),
                                outcome: fails.then_some(Outcome::Failed),
                            }
                        })
                        .collect(),
                })
            }
        });
    }
    out
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}
