//! The `phalanx` command line.

use clap::{Parser, Subcommand};

/// Phalanx: a gang-aware batch scheduler for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "phalanx", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Kubernetes API emulator with simulated kubelets (serve, or `load` a trace into it).
    Emulator(phalanx_emulator::cli::EmulatorArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Emulator(args) => {
            // The emulator is the only async part of the binary; it gets its own runtime.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(phalanx_emulator::cli::run(args))?;
        }
    }
    Ok(())
}
