//! Alibaba cluster-trace-v2017 `batch_task.csv` to native records.
//!
//! - Each task is a gang of its `instance_num` instances (the same binary with the same request:
//!   a natural PodGroup). Tasks above `max_gang` instances are split into gangs of at most
//!   `max_gang` (`j<job>/t<task>-p<k>`): one all-or-nothing gang of 64,486 pods is not what the
//!   trace's batch system ran.
//! - Requests: `plan_cpu` is in 1/100 core (50 = half a core); `plan_mem` is normalised to the
//!   largest machine, taken as 256Gi. Rows without requests (9,017 `Waiting` tasks) get half a
//!   core and 1% of memory, counted in a warning.
//! - Time: `create_timestamp`, shifted so the earliest task arrives at 0 (the trace has times
//!   before its start). Duration: `modify_timestamp - create_timestamp`, at least 1 s; `Failed`
//!   tasks get `outcome: failed`.
//! - **Inferred dependencies.** The trace says a job's tasks form a DAG but publishes no edges.
//!   A task is made to depend on the task of the same job that ended last at or before it was
//!   created (every part of it, if split): tasks that overlapped in time stay independent. Every
//!   job with an inferred dependency carries the annotation
//!   `phalanx.dev/inferred: depends_on from task times`.
//! - Nodes: the trace has no node list here; `nodes` nodes of 64 cpu / 256Gi / 110 pods
//!   (the v2017 cluster had about 1,300 such machines) named `ali-<n>`.
//! - Queues: none (the trace has no tenants); every job is in `root.default`.

use std::collections::BTreeMap;
use std::path::Path;

use super::{ConvertError, Converted};
use crate::trace::{Amount, JobRecord, NodeRecord, Outcome, Record, TaskRecord};

/// Knobs of the conversion.
#[derive(Debug, Clone)]
pub struct Params {
    /// Largest gang; bigger tasks are split.
    pub max_gang: u32,
    /// Nodes to create.
    pub nodes: usize,
    /// Keep only tasks created before this many seconds after the (shifted) start.
    pub until: Option<f64>,
}

const MACHINE_MEM_GIB: f64 = 256.0;

/// The largest magnitude of a time, id or CPU figure: far beyond every real value, and small
/// enough that the converter's arithmetic (time offsets, durations, CPU in milli-CPUs) cannot
/// overflow.
const MAX_NUMBER: i64 = 1_000_000_000_000;

/// Instances of one task at most: a row above is refused rather than turned into millions of
/// gangs (a damaged count would otherwise exhaust memory).
pub const MAX_INSTANCES: i64 = 10_000_000;

/// A task of a job: (task id, created, ended, the names of its gangs).
type TaskSpan = (i64, i64, i64, Vec<String>);

struct Row {
    create: i64,
    end: i64,
    job: i64,
    task: i64,
    instances: u32,
    failed: bool,
    cpu: Option<i64>,
    mem: Option<f64>,
}

/// Converts `batch_task.csv` (or a folder holding it).
pub fn convert(path: &Path, params: &Params) -> Result<Converted, ConvertError> {
    let file = if path.is_dir() {
        path.join("batch_task.csv")
    } else {
        path.to_path_buf()
    };
    let fname = file.display().to_string();
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(&file)
        .map_err(|e| ConvertError::Io {
            file: fname.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let mut rows = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let line = i + 1;
        let rec = rec.map_err(|e| ConvertError::Bad {
            file: fname.clone(),
            line,
            message: e.to_string(),
        })?;
        let field = |k: usize| rec.get(k).unwrap_or("").trim();
        if line == 1 && field(0).parse::<i64>().is_err() {
            continue; // the uploader's header
        }
        let int = |k: usize, what: &str| {
            let v = field(k).parse::<i64>().map_err(|_| ConvertError::Bad {
                file: fname.clone(),
                line,
                message: format!("{what} {:?} is not an integer", field(k)),
            })?;
            if v.unsigned_abs() > MAX_NUMBER as u64 {
                return Err(ConvertError::Bad {
                    file: fname.clone(),
                    line,
                    message: format!(
                        "{what} {v} is out of range (at most {MAX_NUMBER} either way)"
                    ),
                });
            }
            Ok(v)
        };
        let instances = int(4, "instance count")?;
        if instances > MAX_INSTANCES {
            return Err(ConvertError::Bad {
                file: fname.clone(),
                line,
                message: format!(
                    "instance count {instances} is above {MAX_INSTANCES} (the trace's largest task has 64,486)"
                ),
            });
        }
        rows.push(Row {
            create: int(0, "create time")?,
            end: int(1, "end time")?,
            job: int(2, "job id")?,
            task: int(3, "task id")?,
            instances: instances.max(0) as u32,
            failed: field(5) == "Failed",
            cpu: field(6)
                .parse::<i64>()
                .ok()
                .filter(|c| c.unsigned_abs() <= MAX_NUMBER as u64),
            mem: field(7).parse::<f64>().ok().filter(|m| m.is_finite()),
        });
    }
    let t0 = rows.iter().map(|r| r.create).min().unwrap_or(0);
    let mut out = Converted::default();
    for n in 0..params.nodes {
        out.records.push(Record::Node(NodeRecord {
            time: None,
            name: format!("ali-{n:05}"),
            resources: BTreeMap::from([
                ("cpu".to_string(), Amount::Int(64)),
                ("memory".to_string(), Amount::Text("256Gi".into())),
            ]),
            ..Default::default()
        }));
    }
    rows.retain(|r| r.instances > 0 && params.until.is_none_or(|u| ((r.create - t0) as f64) < u));
    rows.sort_by_key(|r| (r.create, r.job, r.task));
    // Per job, its tasks' (end, names) so far, for the inferred dependencies.
    let mut by_job: BTreeMap<i64, Vec<TaskSpan>> = BTreeMap::new();
    for r in &rows {
        let max = params.max_gang.max(1);
        let parts = r.instances.div_ceil(max);
        let names: Vec<String> = (0..parts)
            .map(|k| {
                if parts == 1 {
                    format!("j{}/t{}", r.job, r.task)
                } else {
                    format!("j{}/t{}-p{k}", r.job, r.task)
                }
            })
            .collect();
        by_job
            .entry(r.job)
            .or_default()
            .push((r.task, r.create, r.end.max(r.create), names));
    }
    let (mut defaulted, mut split, mut inferred) = (0u64, 0u64, 0u64);
    for r in &rows {
        let tasks = &by_job[&r.job];
        let me = tasks
            .iter()
            .position(|(t, c, _, _)| *t == r.task && *c == r.create)
            .expect("every row is indexed");
        // The task of the same job that ended last at or before this one was created.
        let dep = tasks
            .iter()
            .enumerate()
            // Only earlier tasks (by creation, then id): zero-length tasks must not form cycles.
            .filter(|(i, (t, c, end, _))| {
                *i != me && *end <= r.create && (*c, *t) < (r.create, r.task)
            })
            .max_by_key(|(i, (_, _, end, _))| (*end, *i))
            .map(|(_, (_, _, _, names))| names.clone())
            .unwrap_or_default();
        inferred += !dep.is_empty() as u64;
        let (cpu_m, mem_gib) = match (r.cpu, r.mem) {
            (Some(c), Some(m)) => (c * 10, m * MACHINE_MEM_GIB),
            _ => {
                defaulted += 1;
                (500, 0.01 * MACHINE_MEM_GIB)
            }
        };
        let mem_mi = ((mem_gib * 1024.0).ceil() as i64).max(1);
        let names = &tasks[me].3;
        split += (names.len() > 1) as u64;
        let max = params.max_gang.max(1);
        for (k, name) in names.iter().enumerate() {
            let size = (r.instances - k as u32 * max).min(max);
            let mut annotations = BTreeMap::new();
            if !dep.is_empty() {
                annotations.insert(
                    "phalanx.dev/inferred".to_string(),
                    "depends_on from task times".to_string(),
                );
            }
            out.records.push(Record::Job(JobRecord {
                time: Some((r.create - t0) as f64),
                name: name.clone(),
                depends_on: dep.clone(),
                annotations,
                tasks: vec![TaskRecord {
                    name: "instance".into(),
                    replicas: size,
                    requests: BTreeMap::from([
                        ("cpu".to_string(), Amount::Text(format!("{cpu_m}m"))),
                        ("memory".to_string(), Amount::Text(format!("{mem_mi}Mi"))),
                    ]),
                    duration: (r.end - r.create).max(1) as f64,
                    outcome: r.failed.then_some(Outcome::Failed),
                    ..Default::default()
                }],
                ..Default::default()
            }));
        }
    }
    out.warnings.push(format!(
        "{inferred} tasks got an INFERRED dependency (on the task of their job that ended last before they were created); the trace publishes no DAG edges"
    ));
    out.warnings.push(format!(
        "{split} tasks above {} instances were split into several gangs",
        params.max_gang
    ));
    if defaulted > 0 {
        out.warnings.push(format!(
            "{defaulted} tasks without plan_cpu/plan_mem got 0.5 cpu and 1% of a 256Gi machine"
        ));
    }
    out.warnings.push(format!(
        "the trace has no node list: {} nodes of 64 cpu / 256Gi were created",
        params.nodes
    ));
    Ok(out)
}
