//! One `phalanx simulate` run from start to finish: build the scenario (trace file or
//! generator), apply the what-if flags, run the world (and the baseline beside it with
//! `--compare baseline`), and write `decisions.jsonl`, `summary.json`, `series.csv`,
//! `report.html` and one `queue-NAME.html` per queue to the output folder. The command line
//! and the progress bar live in the `phalanx` binary; this is everything else, so tests drive
//! it without a terminal.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use phalanx_model::{ResourceTable, Resources, Span, Time};
use phalanx_scheduler::EngineConfig;

use crate::generator::{GenSpec, generate};
use crate::report::{Summary, html, queue_pages};
use crate::trace::{self, Input, Scenario, TraceError};
use crate::whatif::{self, WhatIfError};
use crate::world::{self, Mode, Progress, RunStats, SimConfig, WorldError};

/// Where the workload comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A native trace file.
    Trace(PathBuf),
    /// The synthetic generator.
    Generate(GenSpec),
}

/// A run's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workload.
    pub source: Source,
    /// Output folder (created if missing).
    pub out: PathBuf,
    /// Also run the default-Kubernetes-like baseline.
    pub compare_baseline: bool,
    /// `--add-nodes` specs.
    pub add_nodes: Vec<String>,
    /// `--remove-nodes` selectors.
    pub remove_nodes: Vec<String>,
    /// `--scale-load`.
    pub scale_load: Option<f64>,
    /// `--fill`: the GPUs to ask for, over the cluster's, and the seed of the draw.
    pub fill: Option<(f64, u64)>,
    /// `--queues`.
    pub queues: Option<PathBuf>,
    /// Cycle period.
    pub period: Span,
    /// Engine configuration.
    pub engine: EngineConfig,
}

impl Options {
    /// Defaults for `source` writing to `out`.
    pub fn new(source: Source, out: PathBuf) -> Self {
        Options {
            source,
            out,
            compare_baseline: false,
            add_nodes: Vec::new(),
            remove_nodes: Vec::new(),
            scale_load: None,
            fill: None,
            queues: None,
            period: Span(1000),
            engine: EngineConfig::default(),
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The trace is invalid.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// A what-if flag is invalid.
    #[error(transparent)]
    WhatIf(#[from] WhatIfError),
    /// The run failed.
    #[error(transparent)]
    World(#[from] WorldError),
    /// An output could not be written.
    #[error("{path}: {source}")]
    Output {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
}

/// What a run produced.
pub struct Outcome {
    /// The summary (with the baseline's inside, if run).
    pub summary: Summary,
    /// The Phalanx run's measurements.
    pub stats: RunStats,
    /// The baseline's, if run.
    pub baseline: Option<RunStats>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Reads or generates the scenario and applies the what-if flags.
pub fn scenario(opts: &Options) -> Result<Scenario, SimulateError> {
    let mut sc = match &opts.source {
        Source::Trace(p) => trace::read_file(p)?,
        Source::Generate(spec) => generate(spec),
    };
    for (k, spec) in opts.add_nodes.iter().enumerate() {
        whatif::add_nodes(&mut sc, spec, k)?;
    }
    for spec in &opts.remove_nodes {
        whatif::remove_nodes(&mut sc, spec)?;
    }
    if let Some(x) = opts.scale_load {
        whatif::scale_load(&mut sc, x)?;
    }
    if let Some((ratio, seed)) = opts.fill {
        whatif::fill(&mut sc, ratio, seed)?;
    }
    if let Some(q) = &opts.queues {
        whatif::replace_queues(&mut sc, q)?;
    }
    Ok(sc)
}

/// What the nodes present at the start offer, summed.
pub fn capacity(sc: &Scenario) -> Resources {
    sc.initial_nodes()
        .fold(Resources::ZERO, |a, n| a + n.allocatable)
}

fn create(path: &Path) -> Result<BufWriter<std::fs::File>, SimulateError> {
    std::fs::File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|source| SimulateError::Output {
            path: path.display().to_string(),
            source,
        })
}

/// Writes a run's `summary.json` and `series.csv` (named `series{suffix}.csv`) into `dir`,
/// returning their paths.
pub(crate) fn write_run(
    dir: &Path,
    summary: &Summary,
    runs: &[(&RunStats, &str)],
    table: &ResourceTable,
) -> Result<Vec<PathBuf>, SimulateError> {
    let path = dir.join("summary.json");
    write(
        &path,
        &(serde_json::to_string_pretty(summary).expect("summaries serialize") + "\n"),
    )?;
    let mut files = vec![path];
    for (stats, suffix) in runs {
        let path = dir.join(format!("series{suffix}.csv"));
        write(&path, &crate::report::series_csv(&stats.series, table))?;
        files.push(path);
    }
    Ok(files)
}

pub(crate) fn write(path: &Path, text: &str) -> Result<(), SimulateError> {
    std::fs::write(path, text).map_err(|source| SimulateError::Output {
        path: path.display().to_string(),
        source,
    })
}

/// Runs one policy on the scenario, logging to `log_path`.
pub fn run_one(
    sc: &Scenario,
    cfg: &SimConfig,
    log_path: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(RunStats, f64), SimulateError> {
    let mut log = create(log_path)?;
    let t0 = Instant::now();
    let stats = world::run(sc, cfg, &mut log, progress)?;
    let wall = t0.elapsed().as_secs_f64();
    Ok((stats, wall))
}

/// The whole run.
pub fn simulate(
    opts: &Options,
    title: &str,
    progress: &mut dyn FnMut(Mode, Progress),
) -> Result<Outcome, SimulateError> {
    let sc = scenario(opts)?;
    std::fs::create_dir_all(&opts.out).map_err(|source| SimulateError::Output {
        path: opts.out.display().to_string(),
        source,
    })?;
    let cap = capacity(&sc);
    let mut files = Vec::new();
    let cfg = SimConfig {
        engine: opts.engine.clone(),
        period: opts.period,
        mode: Mode::Gang,
    };
    let log = opts.out.join("decisions.jsonl");
    let (stats, wall) = run_one(&sc, &cfg, &log, &mut |p| progress(Mode::Gang, p))?;
    files.push(log);
    let mut summary = Summary::new(&stats, &sc.queues, &sc.table, &cap, wall);
    let baseline = if opts.compare_baseline {
        let cfg = SimConfig {
            mode: Mode::Baseline,
            ..cfg
        };
        let log = opts.out.join("decisions-baseline.jsonl");
        let (b, wall) = run_one(&sc, &cfg, &log, &mut |p| progress(Mode::Baseline, p))?;
        files.push(log);
        summary.baseline = Some(Box::new(Summary::new(
            &b, &sc.queues, &sc.table, &cap, wall,
        )));
        Some(b)
    } else {
        None
    };
    summary.peak_rss_mb = crate::report::peak_rss_mb();
    let mut series = vec![(&stats, "")];
    if let Some(b) = &baseline {
        series.push((b, "-baseline"));
    }
    files.extend(write_run(&opts.out, &summary, &series, &sc.table)?);
    let mut runs: Vec<(&RunStats, &Summary)> = vec![(&stats, &summary)];
    if let (Some(b), Some(bs)) = (&baseline, &summary.baseline) {
        runs.push((b, bs));
    }
    let page = html(title, &summary, &runs, &sc.table);
    let path = opts.out.join("report.html");
    write(&path, &page)?;
    files.push(path);
    for (name, page) in queue_pages(title, &runs) {
        let path = opts.out.join(name);
        write(&path, &page)?;
        files.push(path);
    }
    Ok(Outcome {
        summary,
        stats,
        baseline,
        files,
    })
}

/// The scenario's last scheduled input, for progress bars.
pub fn horizon(sc: &Scenario) -> Time {
    sc.events
        .iter()
        .filter(|(_, i)| matches!(i, Input::Submit(_)))
        .map(|(t, _)| *t)
        .max()
        .unwrap_or_default()
}
