//! `phalanx bench`: the engine on a seeded synthetic cluster, run until everything that fits is
//! placed, with an independent audit of the result.
//!
//! What is timed (`wall_s`): applying the nodes and jobs to a fresh engine, every cycle, and
//! applying a `PodBound` for every binding (what a binder reports back). Generating the workload
//! and auditing are not timed. Cycles run one job attempt each so every attempt is timed on its
//! own (`job_attempt_us_*`); a cycle's fixed cost is a few loads and stores, so this is also the
//! engine's real throughput. `partial_gangs` and `overcommitted_nodes` come from
//! [`phalanx_simulator::audit::Audit`], which shares no placement code with the engine.

use std::time::Instant;

use clap::{Args, ValueEnum};
use phalanx_model::{ClusterEvent, Decision, Time};
use phalanx_scheduler::{Engine, EngineConfig, ScorePolicy};
use phalanx_simulator::audit::Audit;
use phalanx_simulator::report::peak_rss_mb;
use phalanx_simulator::synth::{StandardSpec, Workload};
use serde::Serialize;

/// Workload shapes `phalanx bench` can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    /// The standard mixed CPU/GPU gang workload (see `phalanx_simulator::synth`).
    Standard,
    /// kube-scheduler's GangScheduling perf shape: 5,000 small nodes, 3-pod gangs.
    KubeGang,
    /// A full cluster with `--pods` pods waiting across four queues and pods finishing
    /// (see `bench_saturated`): cycle time at saturation.
    Saturated,
}

/// Options of `phalanx bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Nodes (standard and saturated shapes).
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// Pods over all jobs (standard shape); pods submitted after the fill (saturated: most of
    /// them, with the fill's own leftovers, wait; the report counts them).
    #[arg(long, default_value_t = 150_000)]
    pub pods: usize,
    /// Timed cycles (saturated shape).
    #[arg(long, default_value_t = 200)]
    pub cycles: usize,
    /// Pods that finish before each timed cycle (saturated shape).
    #[arg(long, default_value_t = 100)]
    pub finish_per_cycle: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Requests over capacity (standard shape): 0.9 leaves headroom, above 1 overloads.
    #[arg(long, default_value_t = phalanx_simulator::synth::DEMAND, value_parser = parse_demand)]
    pub demand: f64,
    /// Workload shape.
    #[arg(long, value_enum, default_value_t = Shape::Standard)]
    pub shape: Shape,
    /// Gangs (kube-gang shape).
    #[arg(long, default_value_t = 3000)]
    pub gangs: usize,
    /// Score policy.
    #[arg(long, value_enum, default_value_t = Score::Binpack)]
    pub score: Score,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

fn parse_demand(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 && d <= 10.0 => Ok(d),
        Ok(_) => Err("must be a number above 0 and at most 10 (0.9 = 90% of capacity)".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Score policy on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Score {
    /// Fullest node that fits first.
    Binpack,
    /// Emptiest node that fits first.
    Spread,
}

/// What `phalanx bench --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Workload shape.
    pub shape: &'static str,
    /// Nodes.
    pub nodes: usize,
    /// Pods submitted.
    pub pods: u64,
    /// Jobs submitted.
    pub jobs: usize,
    /// Pods placed.
    pub pods_placed: u64,
    /// Jobs with pods placed.
    pub jobs_placed: u64,
    /// Job attempts.
    pub attempts: u64,
    /// Nodes looked at while placing, over all attempts.
    pub nodes_scanned: u64,
    /// Engine wall time, seconds.
    pub wall_s: f64,
    /// Pods placed per second of engine time.
    pub pods_per_s: f64,
    /// Engine microseconds per placed pod.
    pub us_per_pod: f64,
    /// Median time of one job attempt, microseconds.
    pub job_attempt_us_p50: f64,
    /// 99th percentile time of one job attempt, microseconds.
    pub job_attempt_us_p99: f64,
    /// Mean time of one job attempt, microseconds.
    pub job_attempt_us_mean: f64,
    /// Gangs with fewer than min_member pods placed, by the independent audit.
    pub partial_gangs: u64,
    /// Nodes whose allocatable was exceeded, by the independent audit.
    pub overcommitted_nodes: u64,
    /// Pods bound twice or against taints/selectors, by the independent audit.
    pub other_violations: u64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mb: f64,
    /// Time to generate the workload, seconds (not in `wall_s`).
    pub generate_s: f64,
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> BenchReport {
    let started = Instant::now();
    let (shape, workload) = match args.shape {
        Shape::Standard => (
            "standard",
            Workload::standard(StandardSpec {
                seed: args.seed,
                demand: args.demand,
                ..StandardSpec::new(args.nodes, args.pods)
            }),
        ),
        Shape::KubeGang => ("kube-gang", Workload::kube_gang(args.gangs)),
        Shape::Saturated => unreachable!("bench_saturated runs the saturated shape"),
    };
    let events: Vec<ClusterEvent> = workload
        .nodes
        .iter()
        .cloned()
        .map(ClusterEvent::NodeUpserted)
        .chain(
            workload
                .jobs
                .iter()
                .cloned()
                .map(ClusterEvent::JobSubmitted),
        )
        .collect();
    let generate_s = started.elapsed().as_secs_f64();

    let mut audit = Audit::new();
    for e in &events {
        audit.on_event(e);
    }
    let config = EngineConfig {
        score: match args.score {
            Score::Binpack => ScorePolicy::Binpack,
            Score::Spread => ScorePolicy::Spread,
        },
        max_attempts_per_cycle: 1,
        ..EngineConfig::default()
    };

    let t0 = Instant::now();
    let mut engine = Engine::new(config);
    for e in events {
        engine
            .apply(e)
            .expect("generated nodes and jobs are valid and unique");
    }
    let mut attempt_us: Vec<f64> = Vec::with_capacity(workload.jobs.len() * 2);
    let mut decisions: Vec<Decision> = Vec::new();
    let (mut attempts, mut scanned) = (0u64, 0u64);
    loop {
        let t = Instant::now();
        let out = engine.cycle(Time::ZERO);
        let dt = t.elapsed();
        if out.report.attempts == 0 && out.decisions.is_empty() {
            break;
        }
        if out.report.attempts > 0 {
            attempt_us.push(dt.as_secs_f64() * 1e6);
        }
        attempts += out.report.attempts as u64;
        scanned += out.report.nodes_scanned;
        for event in out.decisions.iter().flat_map(Decision::all_bound) {
            engine
                .apply(event)
                .expect("the engine accepts binds of pods it assumed");
        }
        decisions.extend(out.decisions);
    }
    let wall_s = t0.elapsed().as_secs_f64();

    let (mut pods_placed, mut jobs_placed) = (0u64, 0u64);
    for d in &decisions {
        audit.on_decision(d);
        if let Decision::BindGang { bindings, .. } = d {
            pods_placed += bindings.len() as u64;
            jobs_placed += 1;
        }
    }
    attempt_us.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if attempt_us.is_empty() {
            0.0
        } else {
            attempt_us[((attempt_us.len() - 1) as f64 * p).round() as usize]
        }
    };
    BenchReport {
        shape,
        nodes: workload.nodes.len(),
        pods: workload.pods(),
        jobs: workload.jobs.len(),
        pods_placed,
        jobs_placed,
        attempts,
        nodes_scanned: scanned,
        wall_s,
        pods_per_s: pods_placed as f64 / wall_s,
        us_per_pod: wall_s * 1e6 / pods_placed.max(1) as f64,
        job_attempt_us_p50: pct(0.5),
        job_attempt_us_p99: pct(0.99),
        job_attempt_us_mean: attempt_us.iter().sum::<f64>() / attempt_us.len().max(1) as f64,
        partial_gangs: audit.partial_gangs() + audit.partial_binds,
        overcommitted_nodes: audit.overcommitted_nodes(),
        other_violations: audit.double_binds
            + audit.constraint_violations
            + audit.unknown_references,
        peak_rss_mb: peak_rss_mb(),
        generate_s,
    }
}

impl BenchReport {
    /// The one-screen human summary.
    pub fn human(&self) -> String {
        let ok = |n: u64| {
            if n == 0 {
                "0 (ok)".to_string()
            } else {
                format!("{n} (VIOLATION)")
            }
        };
        format!(
            "phalanx bench ({shape}): {nodes} nodes, {pods} pods in {jobs} jobs\n\
             placed            {pp} pods ({ppct:.1}%), {jp} jobs, {att} attempts\n\
             engine wall       {wall:.3} s  ({pps:.0} pods/s, {upp:.2} us/pod)\n\
             job attempt       p50 {p50:.1} us, p99 {p99:.1} us, mean {mean:.1} us\n\
             nodes scanned     {scan} ({spa:.1} per attempt)\n\
             partial gangs     {pg}\n\
             overcommitted     {oc}\n\
             other violations  {ov}\n\
             peak RSS          {rss:.0} MiB   (workload generation {gen:.3} s, not timed)",
            shape = self.shape,
            nodes = self.nodes,
            pods = self.pods,
            jobs = self.jobs,
            pp = self.pods_placed,
            ppct = 100.0 * self.pods_placed as f64 / self.pods.max(1) as f64,
            jp = self.jobs_placed,
            att = self.attempts,
            wall = self.wall_s,
            pps = self.pods_per_s,
            upp = self.us_per_pod,
            p50 = self.job_attempt_us_p50,
            p99 = self.job_attempt_us_p99,
            mean = self.job_attempt_us_mean,
            scan = self.nodes_scanned,
            spa = self.nodes_scanned as f64 / self.attempts.max(1) as f64,
            pg = ok(self.partial_gangs),
            oc = ok(self.overcommitted_nodes),
            ov = ok(self.other_violations),
            rss = self.peak_rss_mb,
            gen = self.generate_s,
        )
    }
}
