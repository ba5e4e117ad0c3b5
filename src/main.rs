//! The `phalanx` command line: parses arguments and hands each subcommand to the crate that
//! does the work. No scheduling logic lives here.

mod admin_cli;
mod bench;
mod bench_chaos;
mod bench_e2e;
mod bench_saturated;
mod queue_cli;
mod simulate;

use std::io::Write;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Phalanx: a gang-aware batch scheduler for Kubernetes, and a simulator on the same engine.
#[derive(Debug, Parser)]
#[command(name = "phalanx", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as JSON objects (one per line, fields such as `job` and `pod` as keys: what log
    /// pipelines index) or as text. Logs go to stderr; `RUST_LOG` sets the level (`info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine on a seeded synthetic cluster until everything that fits is placed, audit
    /// the result independently, and report speed and memory.
    Bench(BenchCli),
    /// A Kubernetes API server emulator with simulated kubelets, for end-to-end runs against
    /// something that speaks Kubernetes (serve it, or `load` a trace into it).
    Emulator(Box<phalanx_emulator::cli::EmulatorArgs>),
    /// Change Volcano Queue objects (quotas, create, close, open) with your own kubeconfig,
    /// checked first as `phalanx serve` checks them (see README, "Changing quotas").
    Queue(queue_cli::QueueArgs),
    /// Schedule a Kubernetes cluster: watch it, run the engine, bind gangs (see README,
    /// "phalanx serve").
    Serve(ServeArgs),
    /// Replay a trace (or a synthetic or the built-in workload) on the engine over virtual time
    /// and write the decision log, a summary and an HTML report.
    Simulate(simulate::SimulateArgs),
    /// Work with trace files.
    #[command(subcommand)]
    Trace(simulate::TraceCommand),
    /// Work with simulation reports: merge the parts of a sweep.
    #[command(subcommand)]
    Report(simulate::ReportCommand),
    /// List jobs from a running scheduler's admin API: queue, state, pods, requests, wait,
    /// reason, and for pending jobs their place in line and estimated start.
    Jobs(admin_cli::JobsArgs),
    /// Print the queue tree from a running scheduler's admin API: weight, guarantee, deserved,
    /// capability, allocated and pending per resource.
    Queues(admin_cli::QueuesArgs),
}

/// `phalanx bench` runs the engine alone; `phalanx bench e2e` the whole scheduler over HTTP.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BenchCli {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    args: bench::BenchArgs,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The emulator and `phalanx serve` as separate processes over loopback HTTP: pods bound per
    /// second, creation-to-bind latency, and restart to first bind with every pod resident.
    E2e(bench_e2e::E2eArgs),
    /// The promise under combined faults: an emulator, several `serve` replicas electing a
    /// leader, a workload of gangs in queues with dependencies, and a chaos monkey (leader
    /// kills, partitions, node failures, API faults); invariants judged from the emulator's
    /// own records, each zero or the command fails.
    Chaos(bench_chaos::ChaosArgs),
}

/// Arguments of `phalanx serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The configuration file (YAML; every field optional, see README).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// A kubeconfig file; without it, the in-cluster config, else $KUBECONFIG or ~/.kube/config.
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// This replica's name in the leader lease (default: $POD_NAME, else $HOSTNAME, else a
    /// random one).
    #[arg(long)]
    identity: Option<String>,
}

async fn serve(args: ServeArgs) -> Result<()> {
    let config = match &args.config {
        Some(path) => phalanx_k8s::config::ServeConfig::load(path)?,
        None => phalanx_k8s::config::ServeConfig::default(),
    };
    let client = kube::Client::try_from(kube_config(args.kubeconfig.as_deref()).await?)?;
    let identity = args
        .identity
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("phalanx-{}", std::process::id()));
    let mut running = phalanx_k8s::serve::start(client, config, identity).await?;
    tracing::info!(admin = %running.addr, "phalanx serve started");
    let ended = tokio::select! {
        r = tokio::signal::ctrl_c() => { r?; None }
        r = wait_term() => { r?; None }
        r = running.done() => Some(r),
    };
    match ended {
        Some(r) => r?,
        None => running.stop().await?,
    }
    Ok(())
}

/// The client configuration of a kubeconfig file; without one, the in-cluster config, else
/// `$KUBECONFIG` or `~/.kube/config` (kube-rs `Config::infer`).
pub(crate) async fn kube_config(path: Option<&std::path::Path>) -> Result<kube::Config> {
    Ok(match path {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig: give --kubeconfig, set $KUBECONFIG, or run in a cluster")?,
    })
}

#[cfg(unix)]
async fn wait_term() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    Ok(())
}

#[cfg(not(unix))]
async fn wait_term() -> std::io::Result<()> {
    std::future::pending().await
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.init(),
    }
    match cli.command {
        Command::Bench(BenchCli {
            command: Some(BenchCommand::E2e(args)),
            ..
        }) => {
            let report = until_signalled(bench_e2e::run(&args))?;
            print_report(args.json, &report, report.human())?;
            if report.partial_gangs + report.overcommitted_nodes > 0 {
                anyhow::bail!("the emulator's records show safety violations (see above)");
            }
        }
        Command::Bench(BenchCli {
            command: Some(BenchCommand::Chaos(args)),
            ..
        }) => {
            let report = until_signalled(bench_chaos::run(&args))?;
            print_report(args.json, &report, report.human())?;
            if report.violations_total() > 0 {
                anyhow::bail!(
                    "the chaos run broke {} invariant(s) (see above)",
                    report.violations_total()
                );
            }
        }
        Command::Bench(BenchCli { args, .. }) if args.shape == bench::Shape::Saturated => {
            let report = bench_saturated::run(bench_saturated::SaturatedSpec {
                nodes: args.nodes,
                pending_pods: args.pods,
                seed: args.seed,
                cycles: args.cycles,
                finished_per_cycle: args.finish_per_cycle,
            });
            print_report(args.json, &report, report.human())?;
            if report.partial_gangs + report.overcommitted_nodes > 0 {
                anyhow::bail!("the audit found safety violations (see above)");
            }
        }
        Command::Bench(BenchCli { args, .. }) => {
            let report = bench::run(&args);
            print_report(args.json, &report, report.human())?;
            if report.partial_gangs + report.overcommitted_nodes + report.other_violations > 0 {
                anyhow::bail!("the audit found safety violations (see above)");
            }
        }
        Command::Emulator(args) => {
            // The emulator and `serve` are the binary's async parts; each gets its own runtime.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(phalanx_emulator::cli::run(*args))?;
        }
        Command::Queue(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            print_out(&rt.block_on(queue_cli::run(args))?)?;
        }
        Command::Serve(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(serve(args))?;
        }
        Command::Simulate(args) => {
            let text = simulate::run(&args)?;
            if !text.is_empty() {
                print_out(&text)?;
            }
        }
        Command::Report(simulate::ReportCommand::Merge(args)) => {
            let text = simulate::merge(&args)?;
            if !text.is_empty() {
                print_out(&text)?;
            }
        }
        Command::Trace(simulate::TraceCommand::Convert(args)) => {
            print_out(&simulate::convert(&args)?)?;
        }
        Command::Jobs(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            print_out(&rt.block_on(admin_cli::jobs(&args))?)?;
        }
        Command::Queues(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            print_out(&rt.block_on(admin_cli::queues(&args))?)?;
        }
    }
    Ok(())
}

/// Runs a bench that starts child processes (the emulator, schedulers) until it ends, or until
/// SIGINT or SIGTERM arrives: then its future is dropped, and with it the guards that kill its
/// children, so none is left running.
fn until_signalled<T>(bench: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            report = bench => report,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted (SIGINT): child processes stopped"),
            _ = terminate.recv() => anyhow::bail!("terminated (SIGTERM): child processes stopped"),
        }
    })
}

/// Prints a bench report as one JSON object (`--json`) or as its human summary.
fn print_report(json: bool, report: &impl serde::Serialize, human: String) -> Result<()> {
    if json {
        print_out(&serde_json::to_string(report)?)
    } else {
        print_out(&human)
    }
}

/// Prints a result on stdout; a closed pipe (`| head`) ends quietly instead of panicking.
fn print_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
