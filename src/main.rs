//! The `phalanx` command line: parses arguments and hands each subcommand to the crate that
//! does the work. No scheduling logic lives here.

mod bench;
mod simulate;

use std::io::Write;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Phalanx: a gang-aware batch scheduler for Kubernetes, and a simulator on the same engine.
#[derive(Debug, Parser)]
#[command(name = "phalanx", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine on a seeded synthetic cluster until everything that fits is placed, audit
    /// the result independently, and report speed and memory.
    Bench(bench::BenchArgs),
    /// A Kubernetes API server emulator with simulated kubelets, for end-to-end runs against
    /// something that speaks Kubernetes (serve it, or `load` a trace into it).
    Emulator(Box<phalanx_emulator::cli::EmulatorArgs>),
    /// Replay a trace (or a synthetic or the built-in workload) on the engine over virtual time
    /// and write the decision log, a summary and an HTML report.
    Simulate(simulate::SimulateArgs),
    /// Work with trace files.
    #[command(subcommand)]
    Trace(simulate::TraceCommand),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Bench(args) => {
            let report = bench::run(&args);
            if args.json {
                print_out(&serde_json::to_string(&report)?)?;
            } else {
                print_out(&report.human())?;
            }
            if report.partial_gangs + report.overcommitted_nodes + report.other_violations > 0 {
                anyhow::bail!("the audit found safety violations (see above)");
            }
        }
        Command::Emulator(args) => {
            // The emulator is the binary's only async part; it gets its own runtime.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(phalanx_emulator::cli::run(*args))?;
        }
        Command::Simulate(args) => {
            let text = simulate::run(&args)?;
            if !text.is_empty() {
                print_out(&text)?;
            }
        }
        Command::Trace(simulate::TraceCommand::Convert(args)) => {
            print_out(&simulate::convert(&args)?)?;
        }
    }
    Ok(())
}

/// Prints a result on stdout; a closed pipe (`| head`) ends quietly instead of panicking.
fn print_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
