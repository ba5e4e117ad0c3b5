//! Queues from real tenant data: the Helios (SenseTime, SC'21) Earth cluster's per-VC GPU
//! quotas (`Earth_gpu_number.csv`: one row per day, one column per virtual cluster) become queue
//! records, one per VC with GPUs that day: `root.<vc>` with `deserved` and `weight` equal to
//! its GPU count. VCs with no GPUs that day are listed in a warning. Use the output with
//! `phalanx simulate --queues` or prepend it to a trace (jobs must then name these queues).

use std::path::Path;

use super::{ConvertError, Converted};
use crate::trace::{Amount, QueueRecord, Record};

/// Converts the quota table at `path` (the file, or a folder holding `Earth_vcs/` or the file),
/// for `day` (`YYYY-MM-DD`, default the last day).
pub fn convert(path: &Path, day: Option<&str>) -> Result<Converted, ConvertError> {
    let file = if path.is_dir() {
        let a = path.join("Earth_vcs").join("Earth_gpu_number.csv");
        if a.exists() {
            a
        } else {
            path.join("Earth_gpu_number.csv")
        }
    } else {
        path.to_path_buf()
    };
    let fname = file.display().to_string();
    let io = |e: csv::Error| ConvertError::Io {
        file: fname.clone(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut rd = csv::Reader::from_path(&file).map_err(io)?;
    let headers = rd.headers().map_err(io)?.clone();
    let mut chosen = None;
    for (i, row) in rd.records().enumerate() {
        let row = row.map_err(io)?;
        if day.is_none_or(|d| row.get(0) == Some(d)) {
            chosen = Some((i + 2, row));
        }
    }
    let Some((line, row)) = chosen else {
        return Err(ConvertError::Bad {
            file: fname,
            line: 1,
            message: format!("no row for day {}", day.unwrap_or("(any)")),
        });
    };
    let mut out = Converted::default();
    let mut empty = Vec::new();
    for (col, vc) in headers.iter().enumerate().skip(1) {
        if vc == "total" {
            continue;
        }
        let text = row.get(col).unwrap_or("").trim();
        let gpus: i64 = text.parse().map_err(|_| ConvertError::Bad {
            file: fname.clone(),
            line,
            message: format!("column {vc}: {text:?} is not a GPU count"),
        })?;
        if gpus <= 0 {
            empty.push(vc.to_string());
            continue;
        }
        out.records.push(Record::Queue(QueueRecord {
            name: format!("root.{vc}"),
            weight: Some(gpus.clamp(1, 65535) as u64),
            deserved: Some([("nvidia.com/gpu".to_string(), Amount::from(gpus))].into()),
            ..Default::default()
        }));
    }
    out.warnings.push(format!(
        "Helios Earth quotas of {}: {} VCs with GPUs became queues; {} VCs with none were left out: {}",
        row.get(0).unwrap_or("?"),
        out.records.len(),
        empty.len(),
        empty.join(", ")
    ));
    Ok(out)
}
