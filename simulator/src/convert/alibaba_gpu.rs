//! Alibaba cluster-trace-gpu-v2023 ("openb", the FGD paper's trace) to native records.
//!
//! Given the trace folder (or its `csv/` folder) it reads `openb_node_list_all_node.csv` and a pod
//! list (`openb_pod_list_default.csv` unless another is given).
//! - Node `sn` becomes a node with `cpu_milli`, `memory_mib`, `gpu` whole GPUs and label
//!   `alibaba.com/gpu-model` = `model` (absent for CPU-only nodes). GPU nodes also get
//!   `alibaba.com/gpu-milli` = 1000 per GPU.
//! - Each pod becomes a job of one pod arriving at `creation_time`. It runs for
//!   `deletion_time - scheduled_time` (its real run time) when it was scheduled, else for
//!   `deletion_time - creation_time`; at least 1 s. `pod_phase` `Failed` becomes
//!   `outcome: failed`.
//! - `gpu_spec` (allowed models, `|`-separated) becomes a node selector on the model label when it
//!   names one model, and a required node affinity (`In`) when it names several.
//! - **Approximation**: fractional GPUs. A pod with `num_gpu` 1 and `gpu_milli` < 1000 shares a
//!   GPU. The engine's GPU lane counts whole devices, so such a pod asks for no
//!   `nvidia.com/gpu` and for `gpu_milli` of the node's `alibaba.com/gpu-milli` pool instead;
//!   whole-GPU pods ask for both lanes (N GPUs and N×1000 milli) so the pool stays consistent.
//!   The pool is fungible across the node's devices: a 600-milli pod may be placed where two GPUs
//!   have 300 free each, which the real cluster could not do. Node-level GPU capacity is exact.
//! - `qos` is not modelled (the engine has no QoS classes); it is reported in a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use phalanx_model::{NodeAffinity, SelectorOperator, SelectorRequirement, SelectorTerm};

use super::{ConvertError, Converted};
use crate::trace::{Amount, JobRecord, NodeRecord, Outcome, Record, TaskRecord};

/// The node label carrying the GPU model.
pub const MODEL_LABEL: &str = "alibaba.com/gpu-model";
/// The extended resource for fractional GPUs.
pub const GPU_MILLI: &str = "alibaba.com/gpu-milli";

fn csv_dir(path: &Path) -> PathBuf {
    if path.join("csv").is_dir() {
        path.join("csv")
    } else {
        path.to_path_buf()
    }
}

fn open(path: &Path) -> Result<csv::Reader<std::fs::File>, ConvertError> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| ConvertError::Io {
            file: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })
}

fn num(
    file: &Path,
    line: usize,
    row: &csv::StringRecord,
    i: usize,
    what: &str,
) -> Result<Option<i64>, ConvertError> {
    let text = row.get(i).unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    let v = text
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| ConvertError::Bad {
            file: file.display().to_string(),
            line,
            message: format!("{what} {text:?} is not a number"),
        })?;
    if v.abs() > MAX_NUMBER {
        return Err(ConvertError::Bad {
            file: file.display().to_string(),
            line,
            message: format!("{what} {text} is out of range (at most {MAX_NUMBER:e} either way)"),
        });
    }
    Ok(Some(v as i64))
}

/// The largest magnitude any number of the trace may have: far beyond every real value
/// (seconds, milli-CPUs, MiB, GPUs), and small enough that the converter's arithmetic (GPUs
/// in thousandths, durations) cannot overflow.
const MAX_NUMBER: f64 = 1e12;

/// Converts the trace at `path`, with `pods` as the pod list if given.
pub fn convert(path: &Path, pods: Option<&Path>) -> Result<Converted, ConvertError> {
    let dir = csv_dir(path);
    let node_file = dir.join("openb_node_list_all_node.csv");
    let pod_file = pods
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("openb_pod_list_default.csv"));
    let mut out = Converted::default();
    let mut rd = open(&node_file)?;
    for (i, row) in rd.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| ConvertError::Bad {
            file: node_file.display().to_string(),
            line,
            message: e.to_string(),
        })?;
        let name = row.get(0).unwrap_or("").to_string();
        let cpu = num(&node_file, line, &row, 1, "cpu_milli")?.unwrap_or(0);
        let mem = num(&node_file, line, &row, 2, "memory_mib")?.unwrap_or(0);
        let gpu = num(&node_file, line, &row, 3, "gpu")?.unwrap_or(0);
        let model = row.get(4).unwrap_or("").trim();
        let mut resources = BTreeMap::from([
            ("cpu".to_string(), Amount::Text(format!("{cpu}m"))),
            ("memory".to_string(), Amount::Text(format!("{mem}Mi"))),
        ]);
        let mut labels = BTreeMap::new();
        if gpu > 0 {
            resources.insert("nvidia.com/gpu".into(), Amount::from(gpu));
            resources.insert(GPU_MILLI.into(), Amount::from(gpu * 1000));
        }
        if !model.is_empty() {
            labels.insert(MODEL_LABEL.to_string(), model.to_string());
        }
        out.records.push(Record::Node(NodeRecord {
            time: None,
            name,
            resources,
            labels,
            ..Default::default()
        }));
    }
    let mut rd = open(&pod_file)?;
    let headers = rd
        .headers()
        .map_err(|e| ConvertError::Bad {
            file: pod_file.display().to_string(),
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (c_name, c_cpu, c_mem, c_gpu, c_milli) = (
        col("name").unwrap_or(0),
        col("cpu_milli").unwrap_or(1),
        col("memory_mib").unwrap_or(2),
        col("num_gpu").unwrap_or(3),
        col("gpu_milli").unwrap_or(4),
    );
    let (c_spec, c_qos, c_phase, c_create, c_delete, c_sched) = (
        col("gpu_spec"),
        col("qos"),
        col("pod_phase"),
        col("creation_time"),
        col("deletion_time"),
        col("scheduled_time"),
    );
    if c_create.is_none() {
        out.warnings.push(format!(
            "{}: no creation/deletion times: every pod arrives at 0 and runs 3600 s",
            pod_file.display()
        ));
    }
    let mut qos: BTreeMap<String, u64> = BTreeMap::new();
    let (mut shared, mut failed) = (0u64, 0u64);
    for (i, row) in rd.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| ConvertError::Bad {
            file: pod_file.display().to_string(),
            line,
            message: e.to_string(),
        })?;
        let n = |c: Option<usize>, what: &str| match c {
            Some(c) => num(&pod_file, line, &row, c, what),
            None => Ok(None),
        };
        let name = row.get(c_name).unwrap_or("").to_string();
        let cpu = n(Some(c_cpu), "cpu_milli")?.unwrap_or(0);
        let mem = n(Some(c_mem), "memory_mib")?.unwrap_or(0);
        let gpus = n(Some(c_gpu), "num_gpu")?.unwrap_or(0);
        let milli = n(Some(c_milli), "gpu_milli")?.unwrap_or(0);
        let create = n(c_create, "creation_time")?;
        let delete = n(c_delete, "deletion_time")?;
        let sched = n(c_sched, "scheduled_time")?;
        let start = sched.or(create).unwrap_or(0);
        let duration = match delete {
            Some(d) => (d - start).max(1),
            None => 3600,
        };
        let mut requests = BTreeMap::from([
            ("cpu".to_string(), Amount::Text(format!("{cpu}m"))),
            ("memory".to_string(), Amount::Text(format!("{mem}Mi"))),
        ]);
        if gpus == 1 && milli > 0 && milli < 1000 {
            shared += 1;
            requests.insert(GPU_MILLI.into(), Amount::from(milli));
        } else if gpus > 0 {
            requests.insert("nvidia.com/gpu".into(), Amount::from(gpus));
            requests.insert(GPU_MILLI.into(), Amount::from(gpus * 1000));
        }
        let models: Vec<String> = c_spec
            .and_then(|c| row.get(c))
            .unwrap_or("")
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut node_selector = BTreeMap::new();
        let mut node_affinity = None;
        match models.len() {
            0 => {}
            1 => {
                node_selector.insert(MODEL_LABEL.to_string(), models[0].clone());
            }
            _ => {
                node_affinity = Some(NodeAffinity {
                    terms: vec![SelectorTerm {
                        match_expressions: vec![SelectorRequirement {
                            key: MODEL_LABEL.into(),
                            operator: SelectorOperator::In,
                            values: models,
                        }],
                    }],
                })
            }
        }
        if let Some(q) = c_qos.and_then(|c| row.get(c)) {
            *qos.entry(q.to_string()).or_default() += 1;
        }
        let fails = c_phase.and_then(|c| row.get(c)) == Some("Failed");
        failed += fails as u64;
        out.records.push(Record::Job(JobRecord {
            time: Some(create.unwrap_or(0).max(0) as f64),
            name,
            tasks: vec![TaskRecord {
                name: "pod".into(),
                replicas: 1,
                requests,
                duration: duration as f64,
                node_selector,
                node_affinity,
                outcome: fails.then_some(Outcome::Failed),
                ..Default::default()
            }],
            ..Default::default()
        }));
    }
    out.warnings.push(format!(
        "{shared} GPU-sharing pods (gpu_milli < 1000) ask for {GPU_MILLI} from a per-node pool instead of a share of one device (approximation: the pool is fungible across a node's GPUs)"
    ));
    out.warnings.push(format!(
        "qos not modelled: {}",
        qos.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if failed > 0 {
        out.warnings.push(format!(
            "{failed} pods with pod_phase Failed run with outcome failed"
        ));
    }
    Ok(out)
}
