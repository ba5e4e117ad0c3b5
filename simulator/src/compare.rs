//! What-if comparisons (`phalanx simulate --compare`): named scenarios over one workload (a
//! policy, engine switches, nodes added or removed, the load scaled, other quotas), each run
//! once per seed where the workload is generated, all runs in parallel on every core, and each
//! scenario set against a reference scenario. Writes `comparison.json` (one object per
//! scenario name), `comparison.html` (side-by-side table, differences with 95% confidence
//! intervals over seeds, overlaid charts), one `queue-NAME.html` per queue (the queue's figures
//! per scenario, marked the same way) and every run's `summary.json` and decision log.
//!
//! Each run is the ordinary single-threaded world; the parallelism is between runs only, so a
//! run's decisions do not depend on how many ran beside it. A sweep too big for one machine
//! runs in parts ([`run_part`], `--part K/N`: one Kubernetes Indexed Job completion each, see
//! `deploy/sweep/`), each writing its runs and a `part-K-of-N.json` record into one folder, and
//! [`merge`] (`phalanx report merge`) assembles the same comparison from what they wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use phalanx_model::{ResourceId, ResourceTable};
use phalanx_scheduler::ScorePolicy;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::chart::{esc, page_end, page_head};
use crate::report::{Summary, overlaid_charts, queue_page, queue_page_file};
use crate::simulate::{Options, SimulateError, Source, capacity, run_one, scenario, write_run};
use crate::world::{Mode, RunStats, Series, SimConfig};

/// A scenario's scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Phalanx: gangs, tenant queues, priorities, reservation, backfill, reclaim.
    #[default]
    Phalanx,
    /// Gangs whole, one queue in arrival order (a plain gang scheduler).
    Fifo,
    /// Pod by pod, one queue, first come first served: the default Kubernetes scheduler.
    Kube,
}

impl Policy {
    fn mode(self) -> Mode {
        match self {
            Policy::Phalanx => Mode::Gang,
            Policy::Fifo => Mode::Fifo,
            Policy::Kube => Mode::Baseline,
        }
    }
}

/// How a scenario chooses among nodes that fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Score {
    /// The fullest node that fits.
    Binpack,
    /// The emptiest node that fits.
    Spread,
}

/// One named scenario of a comparison file. Every field but `name` is optional; what is left
/// out is as the workload and the command line give it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScenarioSpec {
    /// Its name: letters, digits, `-`, `_` and `.` (it names a folder of the output).
    pub name: String,
    /// The scheduling policy (default `phalanx`).
    #[serde(default)]
    pub policy: Policy,
    /// Node scoring (default binpack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Score>,
    /// Reservation and backfill for blocked gangs (default on; `fifo` and `kube` never have it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<bool>,
    /// Reclaim between tenant queues (default on; `fifo` and `kube` never have it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim: Option<bool>,
    /// Nodes to add, as `--add-nodes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_nodes: Vec<String>,
    /// Nodes to remove, as `--remove-nodes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_nodes: Vec<String>,
    /// Load factor, as `--scale-load`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_load: Option<f64>,
    /// A queue file, as `--queues` (relative to the comparison file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<PathBuf>,
}

/// A comparison file (YAML or JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompareFile {
    /// The scenario the others are set against (default: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Seeds of a generated workload or of a fill's draw: each scenario runs once per seed and
    /// differences get confidence intervals (default 1, 2, 3). A trace without `fill` runs
    /// once per scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Vec<u64>>,
    /// Fill the cluster for every scenario, as `--fill`: jobs drawn from the workload until
    /// they ask for this many times the cluster's GPUs, never ending (the FGD paper's method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<f64>,
    /// The scenarios.
    pub scenarios: Vec<ScenarioSpec>,
}

impl CompareFile {
    /// The built-in comparison: Phalanx against a plain gang FIFO and pod-by-pod placement,
    /// and Phalanx with spread scoring, without reservation and without reclaim.
    pub fn builtin() -> CompareFile {
        let s = |name: &str| ScenarioSpec {
            name: name.into(),
            ..Default::default()
        };
        CompareFile {
            reference: Some("phalanx".into()),
            seeds: None,
            fill: None,
            scenarios: vec![
                s("phalanx"),
                ScenarioSpec {
                    policy: Policy::Fifo,
                    ..s("fifo")
                },
                ScenarioSpec {
                    policy: Policy::Kube,
                    ..s("kube")
                },
                ScenarioSpec {
                    score: Some(Score::Spread),
                    ..s("spread")
                },
                ScenarioSpec {
                    reservation: Some(false),
                    ..s("no-reservation")
                },
                ScenarioSpec {
                    reclaim: Some(false),
                    ..s("no-reclaim")
                },
            ],
        }
    }

    /// Reads and checks a comparison file; queue file paths become relative to its folder.
    pub fn read(path: &Path) -> Result<CompareFile, CompareError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CompareError::Read {
            file: file.clone(),
            source: e,
        })?;
        let mut parsed = CompareFile::parse(&text).map_err(|e| e.in_file(&file))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for s in &mut parsed.scenarios {
            if let Some(q) = &mut s.queues
                && q.is_relative()
            {
                *q = dir.join(&*q);
            }
        }
        Ok(parsed)
    }

    /// Parses and checks the text of a comparison file.
    pub fn parse(text: &str) -> Result<CompareFile, CompareError> {
        let de = serde_norway::Deserializer::from_str(text);
        let parsed: CompareFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.location().map(|l| l.line());
            // The YAML error repeats the place (`scenarios[1]: ... at line 4 column 5`); the
            // file, line and field are said once, in front.
            let mut message = inner.to_string();
            if let Some(l) = inner.location() {
                let tail = format!(" at line {} column {}", l.line(), l.column());
                if let Some(m) = message.strip_suffix(&tail) {
                    message = m.to_string();
                }
            }
            if let Some((place, rest)) = message.split_once(": ")
                && !place.contains(' ')
                && field.starts_with(place)
            {
                message = rest.to_string();
            }
            CompareError::Invalid {
                file: String::new(),
                line,
                field: if field == "." { String::new() } else { field },
                message,
            }
        })?;
        parsed.check()?;
        Ok(parsed)
    }

    fn check(&self) -> Result<(), CompareError> {
        let invalid = |field: String, message: String| CompareError::Invalid {
            file: String::new(),
            line: None,
            field,
            message,
        };
        if self.scenarios.is_empty() {
            return Err(invalid("scenarios".into(), "lists no scenario".into()));
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.scenarios.iter().enumerate() {
            let field = |f: &str| format!("scenarios[{i}].{f}");
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                || s.name.starts_with('.')
            {
                return Err(invalid(
                    field("name"),
                    format!(
                        "{:?}: use letters, digits, '-', '_' and '.' (not first); it names a folder",
                        s.name
                    ),
                ));
            }
            if !seen.insert(s.name.as_str()) {
                return Err(invalid(
                    field("name"),
                    format!("{:?} names two scenarios", s.name),
                ));
            }
            if let Some(x) = s.scale_load
                && !(x.is_finite() && x > 0.0)
            {
                return Err(invalid(
                    field("scale-load"),
                    format!("{x}: must be a number above 0"),
                ));
            }
            if s.policy != Policy::Phalanx {
                for (name, set) in [
                    ("reservation", s.reservation == Some(true)),
                    ("reclaim", s.reclaim == Some(true)),
                ] {
                    if set {
                        return Err(invalid(
                            field(name),
                            format!(
                                "policy {} has no {name}; only phalanx does",
                                s.policy.mode().name()
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(r) = &self.reference
            && !seen.contains(r.as_str())
        {
            return Err(invalid(
                "reference".into(),
                format!("{r:?} is not the name of a scenario"),
            ));
        }
        if let Some(x) = self.fill
            && !(x.is_finite() && x > 0.0)
        {
            return Err(invalid(
                "fill".into(),
                format!("{x}: must be a number above 0"),
            ));
        }
        if let Some(seeds) = &self.seeds {
            if seeds.is_empty() {
                return Err(invalid("seeds".into(), "lists no seed".into()));
            }
            if seeds.iter().collect::<BTreeSet<_>>().len() != seeds.len() {
                return Err(invalid("seeds".into(), "lists a seed twice".into()));
            }
        }
        Ok(())
    }

    fn reference(&self) -> &str {
        self.reference
            .as_deref()
            .unwrap_or(self.scenarios[0].name.as_str())
    }
}

/// Why a comparison could not run.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The comparison file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The comparison file is not valid.
    #[error("{file}{}{}: {message}", line.map_or(String::new(), |l| format!(":{l}")), if field.is_empty() { String::new() } else { format!(": {field}") })]
    Invalid {
        /// The file (empty when parsed from text).
        file: String,
        /// The line, where known.
        line: Option<usize>,
        /// The field, dotted (`scenarios[2].scale-load`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An output could not be written.
    #[error("{file}: {source}")]
    Output {
        /// The file.
        file: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The parts of a sweep cannot be merged.
    #[error("{file}: {message}")]
    Merge {
        /// The file or folder at fault.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A scenario could not be built or run.
    #[error("scenario {scenario}: {source}")]
    Run {
        /// The scenario.
        scenario: String,
        /// Why.
        source: Box<SimulateError>,
    },
}

impl CompareError {
    fn in_file(self, name: &str) -> CompareError {
        match self {
            CompareError::Invalid {
                line,
                field,
                message,
                ..
            } => CompareError::Invalid {
                file: name.to_string(),
                line,
                field,
                message,
            },
            other => other,
        }
    }
}

/// The metrics a comparison reports, in table order: key, label, whether higher is better.
pub const METRICS: [(&str, &str, bool); 17] = [
    ("goodput", "goodput (completed work / capacity)", true),
    ("utilization", "utilisation (allocated / capacity)", true),
    ("makespan_s", "makespan, s", false),
    ("wait_p50_s", "wait p50, s", false),
    ("wait_p95_s", "wait p95, s", false),
    ("large_gang_wait_p95_s", "large gangs' wait p95, s", false),
    (
        "top_priority_wait_p95_s",
        "highest priority's wait p95, s",
        false,
    ),
    ("jain_fairness", "Jain fairness", true),
    (
        "incomplete_gang_share",
        "held by incomplete gangs / capacity",
        false,
    ),
    (
        "work_evicted_share",
        "work thrown away by evictions / capacity",
        false,
    ),
    ("stranded_gpu_share", "stranded GPUs / GPUs", false),
    (
        "slo_miss_share",
        "jobs that missed their deadline / jobs due",
        false,
    ),
    (
        "gpu_allocated_share_end",
        "GPUs allocated / GPUs, at the end of a fill",
        true,
    ),
    (
        "unallocated_gpus_end",
        "GPUs unallocated, at the end of a fill",
        false,
    ),
    (
        "stranded_gpus_end",
        "of them stranded, at the end of a fill",
        false,
    ),
    ("jobs_never_started", "jobs never started", false),
    ("wall_s", "wall time of a run, s", false),
];

/// The comparison metrics of one run's summary (`stranded_gpu_share` only where pods ask for
/// GPUs, the `*_end` ones only after a fill). Shares of capacity are on the summary's
/// `goodput_resource`.
pub fn metrics(s: &Summary, stats: &RunStats, table: &ResourceTable) -> BTreeMap<String, f64> {
    let r = s.goodput_resource.as_str();
    let lane = stats
        .series
        .lanes
        .iter()
        .position(|id| table.name(*id) == r);
    let of_capacity = |v: &[f64]| {
        lane.filter(|k| stats.cap_integral[*k] > 0.0)
            .map_or(0.0, |k| v[k] / stats.cap_integral[k])
    };
    let mut m = BTreeMap::from([
        ("goodput".to_string(), s.goodput),
        (
            "utilization".into(),
            s.utilization.get(r).copied().unwrap_or(0.0),
        ),
        ("makespan_s".into(), s.makespan_s),
        ("wait_p50_s".into(), s.wait_p50_s),
        ("wait_p95_s".into(), s.wait_p95_s),
        ("large_gang_wait_p95_s".into(), s.large_gangs.p95_s),
        ("top_priority_wait_p95_s".into(), s.top_priority.p95_s),
        ("jain_fairness".into(), s.jain_fairness),
        (
            "incomplete_gang_share".into(),
            of_capacity(&stats.incomplete_gang_resource_s),
        ),
        (
            "work_evicted_share".into(),
            of_capacity(&stats.work_evicted_s),
        ),
        ("jobs_never_started".into(), s.jobs_never_started as f64),
        ("wall_s".into(), s.wall_s),
    ]);
    if let Some(x) = s.stranded_gpu_share {
        m.insert("stranded_gpu_share".into(), x);
    }
    if let Some(slo) = &s.slo {
        m.insert("slo_miss_share".into(), slo.miss_share);
    }
    if let Some(g) = &s.gpus_at_end {
        m.insert("gpu_allocated_share_end".into(), g.allocated_share);
        m.insert("unallocated_gpus_end".into(), g.unallocated_gpus);
        m.insert("stranded_gpus_end".into(), g.stranded_gpus);
    }
    m
}

/// The metrics of each queue's page, in table order: key, label, and whether higher is better
/// (`None`: a setting, not an outcome, so never better or worse).
pub const QUEUE_METRICS: [(&str, &str, Option<bool>); 8] = [
    ("deserved_share", "deserved share", None),
    ("mean_allocated_share", "mean allocated share", Some(true)),
    (
        "share_of_deserved",
        "mean allocated share / deserved",
        Some(true),
    ),
    ("wait_p50_s", "wait p50, s", Some(false)),
    ("wait_p95_s", "wait p95, s", Some(false)),
    ("wait_p99_s", "wait p99, s", Some(false)),
    ("jobs_never_started", "jobs never started", Some(false)),
    (
        "slo_miss_share",
        "jobs that missed their deadline / jobs due",
        Some(false),
    ),
];

/// Per queue, the metrics of [`QUEUE_METRICS`] of one run's summary (`slo_miss_share` only
/// where its jobs carry deadlines).
pub fn queue_metrics(s: &Summary) -> BTreeMap<String, BTreeMap<String, f64>> {
    s.queues
        .iter()
        .map(|(name, q)| {
            let mut m = BTreeMap::from([
                ("deserved_share".to_string(), q.deserved_share),
                ("mean_allocated_share".into(), q.mean_allocated_share),
                ("wait_p50_s".into(), q.waits.p50_s),
                ("wait_p95_s".into(), q.waits.p95_s),
                ("wait_p99_s".into(), q.waits.p99_s),
                (
                    "jobs_never_started".into(),
                    q.jobs.saturating_sub(q.started) as f64,
                ),
            ]);
            if q.deserved_share > 0.0 {
                m.insert(
                    "share_of_deserved".into(),
                    q.mean_allocated_share / q.deserved_share,
                );
            }
            if let Some(slo) = &q.slo {
                m.insert("slo_miss_share".into(), slo.miss_share);
            }
            (name.clone(), m)
        })
        .collect()
}

/// What one run measured for the comparison: `metrics.json` in its folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// The metrics of [`METRICS`].
    #[serde(flatten)]
    pub overall: BTreeMap<String, f64>,
    /// Per queue, the metrics of [`QUEUE_METRICS`] (absent in files written before queues had
    /// pages).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queues: BTreeMap<String, BTreeMap<String, f64>>,
}

/// A difference against the reference: the mean of the per-seed differences and the
/// half-width of its 95% confidence interval (Student's t; absent with one seed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    /// Mean of scenario − reference over seeds.
    pub mean: f64,
    /// Half-width of the 95% confidence interval, over seeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci95: Option<f64>,
}

/// Metrics over a scenario's seeds: means, intervals, and differences from the reference.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Each metric's mean over seeds, flattened into the enclosing object.
    #[serde(flatten)]
    pub mean: BTreeMap<String, f64>,
    /// Half-width of each metric's 95% confidence interval over seeds (with two seeds or more).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ci95: BTreeMap<String, f64>,
    /// Per metric, this scenario minus the reference, paired by seed (absent for the
    /// reference itself).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub vs_reference: BTreeMap<String, Difference>,
}

impl Figures {
    /// The figures of `runs` (one metric map per seed), paired by seed with `reference`'s
    /// runs (`None` for the reference itself).
    fn of(
        runs: &[&BTreeMap<String, f64>],
        reference: Option<&[&BTreeMap<String, f64>]>,
    ) -> Figures {
        let mut f = Figures::default();
        let keys: BTreeSet<&String> = runs.iter().flat_map(|m| m.keys()).collect();
        for k in keys {
            let xs: Vec<f64> = runs.iter().filter_map(|m| m.get(k)).copied().collect();
            let (m, ci) = mean_ci(&xs);
            f.mean.insert(k.clone(), m);
            if let Some(ci) = ci {
                f.ci95.insert(k.clone(), ci);
            }
            if let Some(reference) = reference {
                let diffs: Vec<f64> = runs
                    .iter()
                    .zip(reference)
                    .filter_map(|(a, b)| Some(a.get(k)? - b.get(k)?))
                    .collect();
                if !diffs.is_empty() {
                    let (m, ci) = mean_ci(&diffs);
                    f.vs_reference
                        .insert(k.clone(), Difference { mean: m, ci95: ci });
                }
            }
        }
        f
    }

    /// Whether these figures beat the reference on `key` beyond the noise: `Some(true)` better,
    /// `Some(false)` worse, `None` even (the difference is zero or inside its interval).
    pub fn verdict(&self, key: &str, higher_better: bool) -> Option<bool> {
        let d = self.vs_reference.get(key)?;
        let noise = d.ci95.unwrap_or(0.0);
        let eps = 1e-9 * (1.0 + self.mean.get(key).copied().unwrap_or(0.0).abs());
        if d.mean.abs() <= noise.max(eps) {
            return None;
        }
        Some((d.mean > 0.0) == higher_better)
    }

    /// `key`'s mean, its interval and (`with_difference`) its difference from the reference,
    /// for a table cell; `None` when the metric is absent.
    fn cell(&self, key: &str, with_difference: bool) -> Option<String> {
        let v = self.mean.get(key)?;
        let mut cell = fmt_value(key, *v);
        if let Some(ci) = self.ci95.get(key) {
            let _ = write!(cell, " ±{}", fmt_value(key, *ci));
        }
        if let (true, Some(d)) = (with_difference, self.vs_reference.get(key)) {
            let _ = write!(cell, "<br><small>{:+}", fmt_value(key, d.mean));
            if let Some(ci) = d.ci95 {
                let _ = write!(cell, " ±{}", fmt_value(key, ci));
            }
            cell.push_str("</small>");
        }
        Some(cell)
    }
}

/// One scenario's results in `comparison.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// How the scenario was defined.
    pub scenario: ScenarioSpec,
    /// The reference scenario's name (this one's, for the reference).
    pub reference: String,
    /// Seeds run (empty for a trace: one run).
    pub seeds: Vec<u64>,
    /// The metrics of [`METRICS`], flattened into this object.
    #[serde(flatten)]
    pub figures: Figures,
    /// Per queue, the metrics of [`QUEUE_METRICS`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub queues: BTreeMap<String, Figures>,
    /// The runs' `summary.json` files, relative to the output folder.
    pub summaries: Vec<String>,
}

/// What a comparison produced.
pub struct Comparison {
    /// What was compared (the title of the page).
    pub title: String,
    /// Per scenario, in file order.
    pub results: Vec<(String, ScenarioResult)>,
    /// The reference's name.
    pub reference: String,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Two-sided 95% Student's t quantiles for 1..=30 degrees of freedom; 1.96 beyond.
fn t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    T.get(df.wrapping_sub(1)).copied().unwrap_or(1.96)
}

/// Mean and the half-width of its 95% confidence interval (`None` below two values).
pub fn mean_ci(xs: &[f64]) -> (f64, Option<f64>) {
    let n = xs.len();
    if n == 0 {
        return (0.0, None);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, None);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, Some(t95(n - 1) * (var / n as f64).sqrt()))
}

/// One run of one scenario.
#[derive(Debug, Clone, Copy)]
struct Run {
    scenario: usize,
    seed: Option<u64>,
}

/// What one run left for the comparison.
struct Done {
    metrics: RunMetrics,
    /// Its sampled series (the overlaid charts draw the first run of each scenario).
    series: Series,
    summary_file: String,
    /// The run's resource names (the charts name lanes by them).
    table: ResourceTable,
}

/// Which share of a sweep's runs one process does (`--part K/N`): the runs whose position in
/// the sweep (scenarios in file order, seeds within each) is `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// This part, from 0 (a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`).
    pub index: usize,
    /// How many parts the sweep has (the Job's `completions`).
    pub count: usize,
}

impl Part {
    /// Whether run number `i` of the sweep is this part's.
    pub fn takes(&self, i: usize) -> bool {
        i % self.count == self.index
    }
}

impl std::str::FromStr for Part {
    type Err = String;

    fn from_str(text: &str) -> Result<Part, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: expected K/N, as 0/4"))?;
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|e| format!("{text:?}: {x:?}: {e}"))
        };
        let (index, count) = (num(k)?, num(n)?);
        if count == 0 || index >= count {
            return Err(format!(
                "{text:?}: the part must be below the number of parts (0 to {})",
                count.saturating_sub(1)
            ));
        }
        Ok(Part { index, count })
    }
}

/// A part's record of its runs, `part-K-of-N.json` beside them: enough for [`merge`] to
/// assemble the comparison without the workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    /// This part.
    pub part: usize,
    /// Parts in the sweep.
    pub parts: usize,
    /// The comparison's title.
    pub title: String,
    /// The comparison file the sweep ran (queue paths as resolved).
    pub file: CompareFile,
    /// The sweep's seeds (`null` alone: one run per scenario).
    pub seeds: Vec<Option<u64>>,
    /// The run folders this part wrote, relative to the output folder.
    pub runs: Vec<String>,
}

impl PartRecord {
    /// The record's file name.
    pub fn file_name(part: usize, parts: usize) -> String {
        format!("part-{part}-of-{parts}.json")
    }
}

/// The sweep: its seeds, and every run, scenarios in file order and seeds within each.
fn plan(base: &Options, file: &CompareFile) -> (Vec<Option<u64>>, Vec<Run>) {
    let seeds: Vec<Option<u64>> = match &base.source {
        Source::Trace(_) if file.fill.is_none() => vec![None],
        _ => file
            .seeds
            .clone()
            .unwrap_or_else(|| vec![1, 2, 3])
            .into_iter()
            .map(Some)
            .collect(),
    };
    let runs = runs_of(file, &seeds);
    (seeds, runs)
}

fn runs_of(file: &CompareFile, seeds: &[Option<u64>]) -> Vec<Run> {
    (0..file.scenarios.len())
        .flat_map(|scenario| seeds.iter().map(move |&seed| Run { scenario, seed }))
        .collect()
}

/// A run's folder, relative to the output folder: `NAME/seed-N`, or `NAME` with one seed.
fn run_dir(file: &CompareFile, run: Run, seeds: usize) -> String {
    let name = &file.scenarios[run.scenario].name;
    match (run.seed, seeds > 1) {
        (Some(s), true) => format!("{name}/seed-{s}"),
        _ => name.clone(),
    }
}

/// Runs `runs` in parallel, in order.
fn execute(
    base: &Options,
    file: &CompareFile,
    runs: &[Run],
    seeds: usize,
    done: &(dyn Fn(&str) + Sync),
) -> Result<Vec<Done>, CompareError> {
    runs.par_iter()
        .map(|&run| {
            let spec = &file.scenarios[run.scenario];
            let out = run_scenario(base, spec, file.fill, run.seed, &run_dir(file, run, seeds));
            done(&spec.name);
            out.map_err(|e| CompareError::Run {
                scenario: spec.name.clone(),
                source: Box::new(e),
            })
        })
        .collect()
}

/// Runs every scenario of `file` over the workload of `base` (whose what-if options apply to
/// all scenarios first), in parallel, writing under `base.out`. `done` is called as each run
/// ends (from the worker threads), with the scenario's name.
pub fn compare(
    base: &Options,
    file: &CompareFile,
    title: &str,
    done: &(dyn Fn(&str) + Sync),
) -> Result<Comparison, CompareError> {
    let (seeds, runs) = plan(base, file);
    let dones = execute(base, file, &runs, seeds.len(), done)?;
    assemble(&base.out, file, &seeds, &runs, dones, title)
}

/// Runs part `part` of the sweep of [`compare`] (no comparison: [`merge`] makes it once every
/// part is done), writing its runs and its [`PartRecord`] under `base.out`; returns the
/// record's path.
pub fn run_part(
    base: &Options,
    file: &CompareFile,
    part: Part,
    title: &str,
    done: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, CompareError> {
    let (seeds, runs) = plan(base, file);
    let mine: Vec<Run> = runs
        .iter()
        .enumerate()
        .filter(|(i, _)| part.takes(*i))
        .map(|(_, r)| *r)
        .collect();
    execute(base, file, &mine, seeds.len(), done)?;
    let record = PartRecord {
        part: part.index,
        parts: part.count,
        title: title.to_string(),
        file: file.clone(),
        runs: mine
            .iter()
            .map(|r| run_dir(file, *r, seeds.len()))
            .collect(),
        seeds,
    };
    let path = base.out.join(PartRecord::file_name(part.index, part.count));
    write(
        &path,
        &(serde_json::to_string_pretty(&record).expect("records serialize") + "\n"),
    )?;
    Ok(path)
}

/// Assembles the comparison of a sweep run in parts from the folder they all wrote into:
/// checks that every part's record is there and that they describe one sweep, reads each run's
/// `metrics.json` (and the first seed's `series.csv` for the charts), and writes
/// `comparison.json` and `comparison.html` into `out`, as [`compare`] does.
pub fn merge(dir: &Path, out: &Path) -> Result<Comparison, CompareError> {
    let bad = |file: &Path, message: String| CompareError::Merge {
        file: file.display().to_string(),
        message,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| bad(dir, e.to_string()))?;
    let mut records: BTreeMap<usize, (PathBuf, PartRecord)> = BTreeMap::new();
    for entry in entries {
        let path = entry.map_err(|e| bad(dir, e.to_string()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with("part-") && name.ends_with(".json")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| bad(&path, e.to_string()))?;
        let record: PartRecord = serde_json::from_str(&text)
            .map_err(|e| bad(&path, format!("not a part record: {e}")))?;
        if name != PartRecord::file_name(record.part, record.parts) {
            return Err(bad(
                &path,
                format!(
                    "records part {} of {}: expected the name {}",
                    record.part,
                    record.parts,
                    PartRecord::file_name(record.part, record.parts)
                ),
            ));
        }
        if let Some((other, _)) = records.get(&record.part) {
            return Err(bad(
                &path,
                format!("part {} twice (also {})", record.part, other.display()),
            ));
        }
        records.insert(record.part, (path, record));
    }
    let (first_path, first) = records
        .values()
        .next()
        .ok_or_else(|| {
            bad(
                dir,
                "holds no part record (part-K-of-N.json): did any part run?".into(),
            )
        })?
        .clone();
    for (path, r) in records.values() {
        if r.parts != first.parts || r.file != first.file || r.seeds != first.seeds {
            return Err(bad(
                path,
                format!("belongs to another sweep than {}", first_path.display()),
            ));
        }
    }
    let missing: Vec<String> = (0..first.parts)
        .filter(|k| !records.contains_key(k))
        .map(|k| PartRecord::file_name(k, first.parts))
        .collect();
    if !missing.is_empty() {
        return Err(bad(
            dir,
            format!(
                "{} of {} parts missing ({}): run them, then merge again",
                missing.len(),
                first.parts,
                missing.join(", ")
            ),
        ));
    }
    let (file, seeds) = (&first.file, &first.seeds);
    let runs = runs_of(file, seeds);
    let written: BTreeSet<&String> = records.values().flat_map(|(_, r)| &r.runs).collect();
    let mut table = ResourceTable::default();
    let mut dones = Vec::with_capacity(runs.len());
    for (i, &run) in runs.iter().enumerate() {
        let rel = run_dir(file, run, seeds.len());
        let part = i % first.parts;
        if !written.contains(&rel) {
            return Err(bad(
                &records[&part].0,
                format!("does not list the run {rel}, which part {part} should have run"),
            ));
        }
        let run_path = dir.join(&rel);
        let read = |name: &str| {
            let path = run_path.join(name);
            std::fs::read_to_string(&path)
                .map_err(|e| bad(&path, format!("{e} (written by part {part})")))
                .map(|text| (path, text))
        };
        let (path, text) = read("metrics.json")?;
        let metrics: RunMetrics =
            serde_json::from_str(&text).map_err(|e| bad(&path, e.to_string()))?;
        let series = if run.seed == seeds[0] {
            let (path, text) = read("series.csv")?;
            crate::report::read_series_csv(&text, &mut table).map_err(|e| bad(&path, e))?
        } else {
            Series::default()
        };
        dones.push(Done {
            metrics,
            series,
            summary_file: format!("{rel}/summary.json"),
            table: ResourceTable::default(),
        });
    }
    for d in &mut dones {
        d.table = table.clone();
    }
    std::fs::create_dir_all(out).map_err(|source| CompareError::Output {
        file: out.display().to_string(),
        source,
    })?;
    let mut comparison = assemble(out, file, seeds, &runs, dones, &first.title)?;
    if out != dir {
        // Summaries are named relative to `out`.
        let prefix = relative_to(dir, out);
        for (_, r) in &mut comparison.results {
            for f in &mut r.summaries {
                *f = prefix.join(&*f).display().to_string();
            }
        }
    }
    Ok(comparison)
}

/// `dir` as seen from `from` where `dir` lies under it, else absolute.
fn relative_to(dir: &Path, from: &Path) -> PathBuf {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let dir = abs(dir);
    dir.strip_prefix(abs(from))
        .map(Path::to_path_buf)
        .unwrap_or(dir)
}

/// The comparison of the runs of a sweep (`dones` in the order of `runs`), written into `out`.
fn assemble(
    out: &Path,
    file: &CompareFile,
    seeds: &[Option<u64>],
    runs: &[Run],
    dones: Vec<Done>,
    title: &str,
) -> Result<Comparison, CompareError> {
    let mut by_scenario: Vec<Vec<Done>> = (0..file.scenarios.len()).map(|_| Vec::new()).collect();
    for (run, d) in runs.iter().zip(dones) {
        by_scenario[run.scenario].push(d);
    }
    let reference = file.reference().to_string();
    let ri = file
        .scenarios
        .iter()
        .position(|s| s.name == reference)
        .expect("checked: the reference names a scenario");
    fn overall(runs: &[Done]) -> Vec<&BTreeMap<String, f64>> {
        runs.iter().map(|d| &d.metrics.overall).collect()
    }
    fn of_queue<'a>(runs: &'a [Done], q: &str) -> Vec<&'a BTreeMap<String, f64>> {
        runs.iter()
            .filter_map(|d| d.metrics.queues.get(q))
            .collect()
    }
    let mut results = Vec::new();
    let reference_overall = overall(&by_scenario[ri]);
    for (i, spec) in file.scenarios.iter().enumerate() {
        let runs = &by_scenario[i];
        let is_reference = i == ri;
        let names: BTreeSet<&String> = runs.iter().flat_map(|d| d.metrics.queues.keys()).collect();
        let queues = names
            .into_iter()
            .map(|q| {
                let reference = of_queue(&by_scenario[ri], q);
                let against = (!is_reference).then_some(reference.as_slice());
                (q.clone(), Figures::of(&of_queue(runs, q), against))
            })
            .collect();
        let against = (!is_reference).then_some(reference_overall.as_slice());
        results.push((
            spec.name.clone(),
            ScenarioResult {
                scenario: spec.clone(),
                reference: reference.clone(),
                seeds: seeds.iter().flatten().copied().collect(),
                figures: Figures::of(&overall(runs), against),
                queues,
                summaries: runs.iter().map(|d| d.summary_file.clone()).collect(),
            },
        ));
    }
    let mut files = Vec::new();
    let json: BTreeMap<&str, &ScenarioResult> =
        results.iter().map(|(n, r)| (n.as_str(), r)).collect();
    let path = out.join("comparison.json");
    write(
        &path,
        &(serde_json::to_string_pretty(&json).expect("results serialize") + "\n"),
    )?;
    files.push(path);
    // The charts overlay each scenario's first run; lanes are named by the reference's table.
    let table = by_scenario[ri]
        .first()
        .map(|d| d.table.clone())
        .unwrap_or_default();
    let firsts: Vec<(&str, &Series)> = file
        .scenarios
        .iter()
        .zip(&by_scenario)
        .filter_map(|(s, runs)| runs.first().map(|d| (s.name.as_str(), &d.series)))
        .collect();
    let comparison = Comparison {
        title: title.to_string(),
        results,
        reference,
        files: Vec::new(),
    };
    let path = out.join("comparison.html");
    write(&path, &html(title, &comparison, &firsts, &table))?;
    files.push(path);
    for (name, page) in queue_html(title, &comparison, &firsts) {
        let path = out.join(name);
        write(&path, &page)?;
        files.push(path);
    }
    Ok(Comparison {
        files,
        ..comparison
    })
}

fn write(path: &Path, text: &str) -> Result<(), CompareError> {
    std::fs::write(path, text).map_err(|source| CompareError::Output {
        file: path.display().to_string(),
        source,
    })
}

/// Builds and runs one scenario for one seed, writing its decision log and summary.
fn run_scenario(
    base: &Options,
    spec: &ScenarioSpec,
    file_fill: Option<f64>,
    seed: Option<u64>,
    dir_rel: &str,
) -> Result<Done, SimulateError> {
    let mut opts = base.clone();
    if let (Source::Generate(g), Some(seed)) = (&mut opts.source, seed) {
        g.seed = seed;
    }
    if let Some(ratio) = file_fill {
        opts.fill = Some((ratio, seed.unwrap_or(1)));
    }
    opts.add_nodes.extend(spec.add_nodes.iter().cloned());
    opts.remove_nodes.extend(spec.remove_nodes.iter().cloned());
    if let Some(x) = spec.scale_load {
        opts.scale_load = Some(opts.scale_load.unwrap_or(1.0) * x);
    }
    if spec.queues.is_some() {
        opts.queues = spec.queues.clone();
    }
    if let Some(score) = spec.score {
        opts.engine.score = match score {
            Score::Binpack => ScorePolicy::Binpack,
            Score::Spread => ScorePolicy::Spread,
        };
    }
    if spec.reservation == Some(false) {
        opts.engine.max_reservations = 0;
    }
    if let Some(r) = spec.reclaim {
        opts.engine.reclaim = r;
    }
    let sc = scenario(&opts)?;
    let dir = base.out.join(dir_rel);
    std::fs::create_dir_all(&dir).map_err(|source| SimulateError::Output {
        path: dir.display().to_string(),
        source,
    })?;
    let cfg = SimConfig {
        engine: opts.engine.clone(),
        period: opts.period,
        mode: spec.policy.mode(),
    };
    let (stats, wall) = run_one(&sc, &cfg, &dir.join("decisions.jsonl"), &mut |_| {})?;
    let summary = Summary::new(&stats, &sc.queues, &sc.table, &capacity(&sc), wall);
    write_run(&dir, &summary, &[(&stats, "")], &sc.table)?;
    let metrics = RunMetrics {
        overall: metrics(&summary, &stats, &sc.table),
        queues: queue_metrics(&summary),
    };
    crate::simulate::write(
        &dir.join("metrics.json"),
        &(serde_json::to_string_pretty(&metrics).expect("metrics serialize") + "\n"),
    )?;
    Ok(Done {
        metrics,
        series: stats.series,
        summary_file: format!("{dir_rel}/summary.json"),
        table: sc.table,
    })
}

fn fmt_value(key: &str, v: f64) -> String {
    if key.ends_with("_s") || key.ends_with("gpus_end") || key == "jobs_never_started" {
        if v.abs() >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    } else {
        format!("{v:.3}")
    }
}

impl Comparison {
    /// Whether `name` beats the reference on `key` beyond the noise: `Some(true)` better,
    /// `Some(false)` worse, `None` even (the difference is zero or inside its interval).
    pub fn verdict(&self, name: &str, key: &str) -> Option<bool> {
        if key == "wall_s" {
            // The simulator's own speed, not the policy's.
            return None;
        }
        let higher_better = METRICS.iter().find(|m| m.0 == key)?.2;
        let (_, r) = self.results.iter().find(|(n, _)| n == name)?;
        r.figures.verdict(key, higher_better)
    }

    /// The side-by-side table for terminals: one row per metric, one column per scenario,
    /// `mean ±ci` and, beside other scenarios, `+` where they beat the reference beyond the
    /// noise and `-` where they lose.
    pub fn table(&self) -> String {
        let mut header = vec!["METRIC".to_string()];
        header.extend(self.results.iter().map(|(n, _)| {
            if *n == self.reference {
                format!("{n} (reference)")
            } else {
                n.clone()
            }
        }));
        let mut rows = Vec::new();
        for (key, label, _) in METRICS {
            if !self
                .results
                .iter()
                .any(|(_, r)| r.figures.mean.contains_key(key))
            {
                continue;
            }
            let mut row = vec![label.to_string()];
            for (name, r) in &self.results {
                let Some(mut cell) = r.figures.cell(key, false) else {
                    row.push("-".into());
                    continue;
                };
                match self.verdict(name, key) {
                    Some(true) => cell.push_str(" +"),
                    Some(false) => cell.push_str(" -"),
                    None => {}
                }
                row.push(cell);
            }
            rows.push(row);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                rows.iter()
                    .map(|r: &Vec<String>| r[c].chars().count())
                    .chain([header[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for r in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("   ").trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "(mean over seeds ±95% interval; + better, - worse than {} beyond the noise)",
            self.reference
        ));
        out
    }

    /// Every queue any scenario has, by name.
    pub fn queues(&self) -> Vec<String> {
        let names: BTreeSet<&String> = self
            .results
            .iter()
            .flat_map(|(_, r)| r.queues.keys())
            .collect();
        names.into_iter().cloned().collect()
    }

    /// Per scenario, one sentence: where it beats the reference and where it loses.
    pub fn verdict_sentences(&self) -> Vec<(String, String)> {
        let list = |v: &[&str]| {
            if v.is_empty() {
                "nothing".to_string()
            } else {
                v.join("; ")
            }
        };
        self.verdicts()
            .into_iter()
            .map(|(name, wins, losses)| {
                let sentence = format!(
                    "better than {} on {}; worse on {}",
                    self.reference,
                    list(&wins),
                    list(&losses)
                );
                (name, sentence)
            })
            .collect()
    }

    /// Per scenario, the metrics where it beats the reference and where it loses.
    pub fn verdicts(&self) -> Vec<(String, Vec<&'static str>, Vec<&'static str>)> {
        self.results
            .iter()
            .filter(|(n, _)| *n != self.reference)
            .map(|(n, _)| {
                let (mut wins, mut losses) = (Vec::new(), Vec::new());
                for (key, label, _) in METRICS {
                    match self.verdict(n, key) {
                        Some(true) => wins.push(label),
                        Some(false) => losses.push(label),
                        None => {}
                    }
                }
                (n.clone(), wins, losses)
            })
            .collect()
    }
}

/// A table of metrics (rows) by scenario (columns), each cell marked better or worse than the
/// reference where a verdict applies: `rows` are (key, label, higher is better), `figures`
/// the scenario's figures for the table (`None`: it has none).
fn metric_table<'a>(
    c: &'a Comparison,
    rows: &[(&str, &str, Option<bool>)],
    figures: &dyn Fn(&'a ScenarioResult) -> Option<&'a Figures>,
) -> String {
    let mut out = String::from("<table><tr><th>metric</th>");
    for (n, _) in &c.results {
        let _ = write!(out, "<th>{}</th>", esc(n));
    }
    out.push_str("</tr>\n");
    for &(key, label, higher_better) in rows {
        if !c
            .results
            .iter()
            .any(|(_, r)| figures(r).is_some_and(|f| f.mean.contains_key(key)))
        {
            continue;
        }
        let _ = write!(out, "<tr><td>{}</td>", esc(label));
        for (_, r) in &c.results {
            let Some(f) = figures(r) else {
                out.push_str("<td>-</td>");
                continue;
            };
            let Some(cell) = f.cell(key, true) else {
                out.push_str("<td>-</td>");
                continue;
            };
            let class = match higher_better
                .filter(|_| key != "wall_s")
                .and_then(|h| f.verdict(key, h))
            {
                Some(true) => " class=\"better\"",
                Some(false) => " class=\"worse\"",
                None => "",
            };
            let _ = write!(out, "<td{class}>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// `comparison.html`: the table with each cell marked better or worse than the reference, what
/// each scenario wins and loses, links to each queue's page, and the overlaid charts.
/// Self-contained, works offline.
fn html(title: &str, c: &Comparison, firsts: &[(&str, &Series)], table: &ResourceTable) -> String {
    let mut out = page_head(title);
    let _ = writeln!(
        out,
        "<p>Each scenario against <b>{r}</b>: means over seeds with 95% intervals; green where it is \
         better than {r} beyond the noise (paired over seeds), red where it is worse.</p>",
        r = esc(&c.reference)
    );
    let rows: Vec<(&str, &str, Option<bool>)> =
        METRICS.iter().map(|(k, l, h)| (*k, *l, Some(*h))).collect();
    out.push_str(&metric_table(c, &rows, &|r| Some(&r.figures)));
    out.push_str("<h2>Where each scenario wins and pays</h2>\n<ul>\n");
    for (name, sentence) in c.verdict_sentences() {
        let _ = writeln!(out, "<li><b>{}</b> is {}.</li>", esc(&name), esc(&sentence));
    }
    out.push_str("</ul>\n");
    let queues = c.queues();
    if !queues.is_empty() {
        out.push_str("<h2>Queues</h2>\n<p>Each queue's waits, shares and deadlines per scenario, on its own page:</p>\n<ul>\n");
        for q in &queues {
            let _ = writeln!(
                out,
                "<li><a href=\"{}\">{}</a></li>",
                esc(&queue_page_file(q)),
                esc(q)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Over time (first seed of each scenario)</h2>\n");
    // One line per scenario: the resource goodput is measured on.
    let gpus = firsts.iter().any(|(_, s)| {
        s.lanes
            .iter()
            .position(|id| *id == ResourceId::GPU)
            .is_some_and(|k| s.cap.chunks(s.lanes.len()).any(|c| c[k] > 0))
    });
    let lane = if gpus {
        ResourceId::GPU
    } else {
        ResourceId::CPU
    };
    out.push_str(&overlaid_charts(firsts, table, Some(lane)));
    out.push_str("<h2>comparison.json</h2>\n<pre>");
    let json: BTreeMap<&str, &ScenarioResult> =
        c.results.iter().map(|(n, r)| (n.as_str(), r)).collect();
    out.push_str(&esc(
        &serde_json::to_string_pretty(&json).unwrap_or_default()
    ));
    out.push_str("</pre>\n");
    out.push_str(&page_end());
    out
}

/// The per-queue pages of `comparison.html`: file name and page, one per queue any scenario
/// has, each with the queue's figures per scenario and the first seed's series overlaid.
fn queue_html(title: &str, c: &Comparison, firsts: &[(&str, &Series)]) -> Vec<(String, String)> {
    c.queues()
        .into_iter()
        .map(|q| {
            let figures = metric_table(c, &QUEUE_METRICS, &|r| r.queues.get(&q));
            let deserved = c
                .results
                .iter()
                .find(|(n, _)| *n == c.reference)
                .and_then(|(_, r)| r.queues.get(&q)?.mean.get("deserved_share").copied());
            let page = queue_page(title, &q, "comparison.html", &figures, firsts, deserved);
            (queue_page_file(&q), page)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_with_defaults_and_rejects_what_is_wrong_by_line_and_field() {
        let f = CompareFile::parse(
            "reference: plus\nseeds: [4, 5]\nscenarios:\n  - name: base\n  - name: plus\n    add-nodes: ['10:cpu=8']\n    scale-load: 1.5\n",
        )
        .unwrap();
        assert_eq!(f.reference(), "plus");
        assert_eq!(f.scenarios[1].add_nodes, vec!["10:cpu=8".to_string()]);
        assert_eq!(f.scenarios[0].policy, Policy::Phalanx);
        let err = |text: &str| CompareFile::parse(text).unwrap_err().to_string();
        let e = err("scenarios:\n  - name: a\n    polcy: fifo\n");
        assert!(e.contains(":3") && e.contains("polcy"), "{e}");
        let e = err("scenarios:\n  - name: a\n  - name: b\n    policy: slurm\n");
        assert!(
            e.contains("scenarios[1].policy") && e.contains("slurm"),
            "{e}"
        );
        let e = err("scenarios:\n  - name: a\n  - name: a\n");
        assert!(
            e.contains("scenarios[1].name") && e.contains("two scenarios"),
            "{e}"
        );
        let e = err("scenarios:\n  - name: a/b\n");
        assert!(e.contains("scenarios[0].name"), "{e}");
        let e = err("reference: c\nscenarios:\n  - name: a\n");
        assert!(e.contains("reference") && e.contains("\"c\""), "{e}");
        let e = err("scenarios:\n  - name: a\n    scale-load: 0\n");
        assert!(e.contains("scenarios[0].scale-load"), "{e}");
        let e = err("scenarios:\n  - name: a\n    policy: kube\n    reclaim: true\n");
        assert!(e.contains("scenarios[0].reclaim"), "{e}");
        let e = err("scenarios: []\n");
        assert!(e.contains("no scenario"), "{e}");
        let e = err("seeds: [1, 1]\nscenarios:\n  - name: a\n");
        assert!(e.contains("seeds"), "{e}");
    }

    #[test]
    fn the_builtin_file_is_valid_and_round_trips() {
        let f = CompareFile::builtin();
        f.check().unwrap();
        let text = serde_norway::to_string(&f).unwrap();
        assert_eq!(CompareFile::parse(&text).unwrap(), f);
    }

    #[test]
    fn intervals_follow_student() {
        assert_eq!(mean_ci(&[]), (0.0, None));
        assert_eq!(mean_ci(&[2.0]), (2.0, None));
        let (m, ci) = mean_ci(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        // sd 1, n 3, t(2) 4.303: 4.303 / sqrt(3).
        assert!((ci.unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(t95(40), 1.96);
    }

    /// deploy/sweep/sweep.yaml: its comparison file is valid, and the Job's completions are the
    /// N of its `--part K/N` (else parts would be missing or run twice).
    #[test]
    fn the_sweep_job_runs_every_part_of_a_valid_comparison() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/sweep/sweep.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let docs: Vec<serde_norway::Value> = serde_norway::Deserializer::from_str(&text)
            .map(|d| serde_norway::Value::deserialize(d).unwrap())
            .collect();
        let of_kind = |k: &str| docs.iter().find(|d| d["kind"] == k).unwrap();
        let what_if = of_kind("ConfigMap")["data"]["what-if.yaml"]
            .as_str()
            .unwrap();
        let file = CompareFile::parse(what_if).unwrap();
        let job = &of_kind("Job")["spec"];
        assert_eq!(job["completionMode"], "Indexed");
        let completions = job["completions"].as_u64().unwrap() as usize;
        let args = job["template"]["spec"]["containers"][0]["args"]
            .as_sequence()
            .unwrap();
        let part = args
            .iter()
            .find_map(|a| a.as_str()?.strip_prefix("--part="))
            .unwrap();
        let n: usize = part
            .strip_prefix("$(JOB_COMPLETION_INDEX)/")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(n, completions);
        let runs = file.scenarios.len() * file.seeds.as_ref().map_or(3, Vec::len);
        assert!(runs >= completions, "{runs} runs for {completions} parts");
    }
}
