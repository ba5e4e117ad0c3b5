//! `phalanx simulate` and `phalanx trace convert`: argument parsing, the progress bar and the
//! terminal summary. The work is in `phalanx_simulator`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use phalanx_model::Span;
use phalanx_simulator::compare::{CompareFile, Comparison, Part};
use phalanx_simulator::convert::{self, Converted};
use phalanx_simulator::generator::GenSpec;
use phalanx_simulator::simulate::{Options, Source, simulate};
use phalanx_simulator::trace;

/// Options of `phalanx simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// A native trace (JSON lines, see trace-format.md). Without it, and without --nodes and
    /// --pods, the built-in scenario runs (1,000 nodes, 20,000 pods, 4 tenants).
    #[arg(long, conflicts_with_all = ["nodes", "pods"])]
    pub trace: Option<PathBuf>,
    /// Generate a synthetic cluster of this many nodes (the `phalanx bench` family, over time).
    #[arg(long, requires = "pods")]
    pub nodes: Option<usize>,
    /// Pods of the synthetic workload.
    #[arg(long, requires = "nodes")]
    pub pods: Option<usize>,
    /// Seed of the synthetic workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder for decisions.jsonl, summary.json and report.html.
    #[arg(long, default_value = "phalanx-out")]
    pub out: PathBuf,
    /// Compare what-if scenarios over the workload: alone, the built-in set (Phalanx against a
    /// plain gang FIFO and pod-by-pod placement, with spread scoring, without reservation,
    /// without reclaim, over seeds 1-3 for a generated workload); with a YAML or JSON file,
    /// its scenarios (see docs/compare.md); `baseline` runs pod-by-pod placement beside
    /// Phalanx in one report, as before. Writes comparison.json and comparison.html.
    #[arg(long, value_name = "FILE|baseline", num_args = 0..=1, default_missing_value = "")]
    pub compare: Option<String>,
    /// Add nodes: COUNT:cpu=96,memory=768Gi,nvidia.com/gpu=8 or COUNT:NODE (copies of a node of
    /// the trace). Repeatable.
    #[arg(long = "add-nodes", value_name = "SPEC")]
    pub add_nodes: Vec<String>,
    /// Remove nodes for the whole run: a name, a name prefix ending in '*' (rack-07-*), or
    /// labels key=value[,key=value]. Repeatable.
    #[arg(long = "remove-nodes", value_name = "SELECTOR")]
    pub remove_nodes: Vec<String>,
    /// Multiply the load: every job is submitted X times (fractions keep a stable share).
    #[arg(long = "scale-load", value_name = "X")]
    pub scale_load: Option<f64>,
    /// Fill the cluster as the FGD paper does: jobs drawn from the workload (with --seed) until
    /// they ask for X times the cluster's GPUs, one arriving per second, none ever ending; the
    /// summary reads the GPUs allocated, unallocated and stranded at the end.
    #[arg(long, value_name = "X")]
    pub fill: Option<f64>,
    /// With --compare FILE: run only part K (from 0) of N of the comparison's runs (those whose
    /// position, scenarios in file order and seeds within each, is K modulo N), writing them and
    /// part-K-of-N.json into --out; for sweeps over machines or a Kubernetes Indexed Job
    /// (deploy/sweep/). `phalanx report merge` joins the parts.
    #[arg(long, value_name = "K/N", requires = "compare")]
    pub part: Option<Part>,
    /// Replace the queues with the queue records of this file.
    #[arg(long, value_name = "FILE")]
    pub queues: Option<PathBuf>,
    /// Cycle period, virtual seconds.
    #[arg(long, default_value_t = 1.0)]
    pub period: f64,
    /// No progress bar and no summary table.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `phalanx report ...`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Join the parts of a sweep (`simulate --compare FILE --part K/N`, every part writing
    /// into one folder) into the comparison one `--compare` run writes: comparison.json and
    /// comparison.html. Names any part or run that is missing.
    Merge(MergeArgs),
}

/// `phalanx report merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The folder every part wrote into (its part-K-of-N.json files and run folders).
    pub dir: PathBuf,
    /// Where to write the comparison (default: DIR).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print nothing.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `phalanx report merge`: the merged comparison, as text for the terminal.
pub fn merge(args: &MergeArgs) -> Result<String> {
    let out = args.out.as_deref().unwrap_or(&args.dir);
    let merged = phalanx_simulator::compare::merge(&args.dir, out)
        .with_context(|| format!("merging the sweep in {}", args.dir.display()))?;
    if args.quiet {
        return Ok(String::new());
    }
    Ok(comparison_text(&merged, &args.dir))
}

/// A comparison for the terminal: the table, a sentence per scenario, the files.
fn comparison_text(c: &Comparison, runs_dir: &std::path::Path) -> String {
    let mut text = format!("{}\n{}\n\n", c.title, c.table());
    for (name, sentence) in c.verdict_sentences() {
        text.push_str(&format!("{name}: {sentence}\n"));
    }
    let files: Vec<String> = c.files.iter().map(|f| f.display().to_string()).collect();
    text.push_str(&format!(
        "\nwrote {} (and each run's summary.json and decisions.jsonl under {})",
        files.join(", "),
        runs_dir.display()
    ));
    text
}

/// `phalanx trace ...`.
#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Convert another format to the native trace format, on stdout.
    Convert(ConvertArgs),
}

/// Source formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum From {
    /// Alibaba cluster-trace-gpu-v2023: a folder with its csv/ files, or the csv folder.
    #[value(name = "alibaba-gpu-2023")]
    AlibabaGpu2023,
    /// Alibaba cluster-trace-v2017 batch_task.csv.
    #[value(name = "alibaba-batch-2017")]
    AlibabaBatch2017,
    /// A folder (or file) of Kubernetes YAML.
    K8s,
    /// Helios VC GPU quotas (Earth_gpu_number.csv, or its folder): queue records.
    #[value(name = "helios-vc")]
    HeliosVc,
}

/// Options of `phalanx trace convert`.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// Source format.
    #[arg(long, value_enum)]
    pub from: From,
    /// The file or folder to read.
    pub path: PathBuf,
    /// alibaba-gpu-2023: another pod list instead of openb_pod_list_default.csv.
    #[arg(long)]
    pub pods: Option<PathBuf>,
    /// alibaba-batch-2017: the largest gang; bigger tasks are split.
    #[arg(long, default_value_t = 1024)]
    pub max_gang: u32,
    /// alibaba-batch-2017: cluster size (nodes of 64 cpu / 256Gi; the trace has no node list).
    #[arg(long, default_value_t = 1300)]
    pub nodes: usize,
    /// alibaba-batch-2017: keep only jobs created before this many seconds (0: all).
    #[arg(long, default_value_t = 0.0)]
    pub until: f64,
    /// k8s: duration of pods without the phalanx.dev/duration annotation, seconds.
    #[arg(long, default_value_t = 600.0)]
    pub default_duration: f64,
    /// k8s: nodes to add when the manifests define none: COUNT:cpu=..,memory=..
    #[arg(long, default_value = "16:cpu=64,memory=256Gi,nvidia.com/gpu=8")]
    pub k8s_nodes: String,
    /// k8s: leave out objects that cannot be read, with a warning each, instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
    /// helios-vc: which day's quotas (YYYY-MM-DD; default the last).
    #[arg(long)]
    pub day: Option<String>,
}

fn secs(s: f64) -> String {
    if s < 3600.0 {
        format!("{s:.0}s")
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// Runs `phalanx simulate`.
pub fn run(args: &SimulateArgs) -> Result<String> {
    if !(args.period.is_finite() && args.period > 0.0) {
        bail!("--period must be a positive number of seconds");
    }
    let (source, title) = match (&args.trace, args.nodes, args.pods) {
        (Some(p), _, _) => (
            Source::Trace(p.clone()),
            format!("phalanx simulate --trace {}", p.display()),
        ),
        (None, Some(n), Some(m)) => (
            Source::Generate(GenSpec::new(n, m, args.seed)),
            format!(
                "phalanx simulate --nodes {n} --pods {m} --seed {}",
                args.seed
            ),
        ),
        _ => (
            Source::Generate(GenSpec::embedded()),
            "phalanx simulate (built-in scenario: 1,000 nodes, 20,000 pods, 4 tenants)".into(),
        ),
    };
    let mut opts = Options::new(source, args.out.clone());
    opts.compare_baseline = args.compare.as_deref() == Some("baseline");
    opts.add_nodes = args.add_nodes.clone();
    opts.remove_nodes = args.remove_nodes.clone();
    opts.scale_load = args.scale_load;
    opts.fill = args.fill.map(|x| (x, args.seed));
    opts.queues = args.queues.clone();
    opts.period = Span::from_secs_f64(args.period);
    let show = !args.quiet && std::io::stderr().is_terminal();
    if args.part.is_some() && args.compare.as_deref() == Some("baseline") {
        bail!(
            "--part splits the runs of a comparison file (--compare FILE), not --compare baseline"
        );
    }
    if let Some(file) = args.compare.as_deref().filter(|f| *f != "baseline") {
        return compare(args, &opts, &title, file, show);
    }
    let bar = show.then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{prefix} [{bar:20}] {pos}/{len} jobs  {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        b
    });
    let started = std::time::Instant::now();
    let out = simulate(&opts, &title, &mut |mode, p| {
        if let Some(b) = &bar {
            b.set_prefix(format!("{:<8}", mode.name()));
            let rate = p.events as f64 / started.elapsed().as_secs_f64().max(1e-6);
            b.set_length(p.jobs);
            b.set_position(p.jobs_ended);
            b.set_message(format!(
                "virtual {}  {:.0} events/s",
                secs(p.now.as_secs_f64()),
                rate
            ));
        }
    })
    .with_context(|| "simulation failed")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let errors: u64 = out.summary.engine_event_errors.values().sum();
    if errors > 0 {
        eprintln!(
            "warning: the engine refused {errors} events (an engine or world bug); see engine_event_errors in summary.json"
        );
    }
    // The summary and where the files went, on a terminal or not (CI logs, `| tee`); only the
    // progress bar is for terminals.
    if args.quiet {
        return Ok(String::new());
    }
    let files: Vec<String> = out.files.iter().map(|f| f.display().to_string()).collect();
    Ok(format!(
        "{}\n{}\n\n{}\nwrote {}",
        title,
        out.summary.table(),
        queues_table(&out.summary),
        files.join(", ")
    ))
}

/// `simulate --compare [FILE]`: every scenario over the workload, in parallel.
fn compare(
    args: &SimulateArgs,
    opts: &Options,
    title: &str,
    file: &str,
    show: bool,
) -> Result<String> {
    let mut set = if file.is_empty() {
        CompareFile::builtin()
    } else {
        CompareFile::read(std::path::Path::new(file))?
    };
    if set.fill.is_none() {
        set.fill = args.fill;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let bar = ProgressBar::hidden();
    if show {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("compare [{bar:20}] {pos}/{len} runs  {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
    }
    let seeds = match &opts.source {
        Source::Trace(_) if set.fill.is_none() => 1,
        _ => set.seeds.as_ref().map_or(3, Vec::len),
    };
    let title = format!("{title}: what-if comparison");
    if let Some(part) = args.part {
        bar.set_length(
            (0..set.scenarios.len() * seeds)
                .filter(|&i| part.takes(i))
                .count() as u64,
        );
        let record = phalanx_simulator::compare::run_part(opts, &set, part, &title, &|name| {
            bar.set_message(format!("{name} done"));
            bar.inc(1);
        })
        .with_context(|| format!("part {} of {} failed", part.index, part.count))?;
        bar.finish_and_clear();
        if args.quiet {
            return Ok(String::new());
        }
        return Ok(format!(
            "part {} of {}: wrote {} and its runs under {}; once every part is done: phalanx report merge {}",
            part.index,
            part.count,
            record.display(),
            args.out.display(),
            args.out.display()
        ));
    }
    bar.set_length((set.scenarios.len() * seeds) as u64);
    let out = phalanx_simulator::compare::compare(opts, &set, &title, &|name| {
        bar.set_message(format!("{name} done"));
        bar.inc(1);
    })
    .with_context(|| "comparison failed")?;
    bar.finish_and_clear();
    if args.quiet {
        return Ok(String::new());
    }
    Ok(comparison_text(&out, &args.out))
}

/// Per queue, as `phalanx queues` prints a live cluster's: the quotas the run had (weight,
/// guarantee, deserved, capability) beside what the queue held on average, one line per
/// resource, with its share against its deserved share and its waits.
fn queues_table(summary: &phalanx_simulator::report::Summary) -> String {
    let header = [
        "QUEUE",
        "WEIGHT",
        "JOBS (STARTED/SUBMITTED)",
        "RESOURCE",
        "MEAN ALLOCATED",
        "GUARANTEE",
        "DESERVED",
        "CAPABILITY",
        "SHARE (MEAN/DESERVED)",
        "WAIT (MEAN/P95)",
    ];
    // Means are not whole quantities: three significant figures, in binary units for memory.
    let figure = |r: &str, v: Option<f64>| {
        let v = v.unwrap_or(0.0);
        if v == 0.0 {
            return "0".to_string();
        }
        let (v, unit) = match r {
            "memory" | "ephemeral-storage" => ["", "Ki", "Mi", "Gi", "Ti", "Pi"]
                .iter()
                .enumerate()
                .rev()
                .map(|(i, u)| (v / 1024f64.powi(i as i32), *u))
                .find(|(x, _)| *x >= 1.0)
                .unwrap_or((v, "")),
            _ => (v, ""),
        };
        let digits = if v >= 100.0 {
            0
        } else if v >= 10.0 {
            1
        } else {
            2
        };
        format!("{v:.digits$}{unit}")
    };
    let mut rows = Vec::new();
    for (name, q) in &summary.queues {
        // `root` itself has no line offline: its children start at the left.
        let depth = name.matches('.').count().saturating_sub(1);
        let short = name.rsplit('.').next().unwrap_or(name);
        let resources: std::collections::BTreeSet<&String> = q
            .mean_allocated
            .iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, _)| k)
            .chain(q.guarantee.keys())
            .chain(q.deserved.iter().flat_map(|d| d.keys()))
            .chain(q.capability.iter().flat_map(|c| c.keys()))
            .filter(|k| k.as_str() != "pods")
            .collect();
        // Nothing configured and nothing held: one line, of cpu.
        let cpu = "cpu".to_string();
        let resources: Vec<&String> = if resources.is_empty() {
            vec![&cpu]
        } else {
            resources.into_iter().collect()
        };
        for (i, r) in resources.iter().enumerate() {
            let first = i == 0;
            let only_first = |v: String| if first { v } else { String::new() };
            rows.push(vec![
                only_first(format!("{}{short}", "  ".repeat(depth))),
                only_first(q.weight.to_string()),
                only_first(format!("{}/{}", q.started, q.jobs)),
                r.to_string(),
                figure(r, q.mean_allocated.get(*r).copied()),
                figure(r, q.guarantee.get(*r).copied()),
                match &q.deserved {
                    Some(d) => figure(r, d.get(*r).copied()),
                    None => "by weight".into(),
                },
                match &q.capability {
                    Some(c) if c.contains_key(*r) => figure(r, c.get(*r).copied()),
                    _ => "unlimited".into(),
                },
                only_first(format!(
                    "{:.1}% / {:.1}%",
                    100.0 * q.mean_allocated_share,
                    100.0 * q.deserved_share
                )),
                only_first(format!("{:.0}s / {:.0}s", q.mean_wait_s, q.p95_wait_s)),
            ]);
        }
    }
    crate::admin_cli::table(&header, &rows)
}

/// Runs `phalanx trace convert`, returning the trace text.
pub fn convert(args: &ConvertArgs) -> Result<String> {
    let converted: Converted = match args.from {
        From::AlibabaGpu2023 => convert::alibaba_gpu::convert(&args.path, args.pods.as_deref())?,
        From::AlibabaBatch2017 => convert::alibaba_batch::convert(
            &args.path,
            &convert::alibaba_batch::Params {
                max_gang: args.max_gang,
                nodes: args.nodes,
                until: (args.until > 0.0).then_some(args.until),
            },
        )?,
        From::K8s => convert::k8s::convert(
            &args.path,
            &convert::k8s::Params {
                default_duration: args.default_duration,
                nodes: args.k8s_nodes.clone(),
                skip_invalid: args.skip_invalid,
            },
        )?,
        From::HeliosVc => convert::helios::convert(&args.path, args.day.as_deref())?,
    };
    for w in &converted.warnings {
        eprintln!("warning: {w}");
    }
    let mut buf = Vec::new();
    trace::write_records(&mut buf, &converted.records)?;
    let mut text = String::from_utf8(buf).expect("JSON is UTF-8");
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}
