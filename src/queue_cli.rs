//! `phalanx queue set|create|close|open`: the command line of Queue changes. Parses the flags
//! and prints kubectl-style results; checking and writing are `phalanx_k8s::queue_admin`'s.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use phalanx_k8s::config::ServeConfig;
use phalanx_k8s::queue_admin::{self, Operation, Options, QuantitiesEdit, QueueEdit};

/// `phalanx queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    command: QueueCommand,
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Change a Queue's quotas: patch the spec fields given (a JSON merge patch), leaving the
    /// rest. Checked first as `phalanx serve` checks Queues: a change serve would refuse is
    /// refused, naming the queue and field, and nothing is written.
    Set {
        /// The Queue object's name.
        name: String,
        #[command(flatten)]
        quotas: Quotas,
        #[command(flatten)]
        common: Common,
    },
    /// Create a Queue with the spec given (weight 1 unless given), checked as `set` is.
    Create {
        /// The Queue object's name.
        name: String,
        #[command(flatten)]
        quotas: Quotas,
        #[command(flatten)]
        common: Common,
    },
    /// Close a Queue: write `status.state: Closed` (on the queues/status subresource). Serve
    /// admits no new jobs from a closed queue; jobs already running continue.
    Close {
        /// The Queue object's name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Open a Queue again: write `status.state: Open`; its waiting jobs are admitted again.
    Open {
        /// The Queue object's name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
}

/// The spec fields of `set` and `create`.
#[derive(Debug, Args)]
struct Quotas {
    /// `spec.weight`: the queue's share among its siblings (1..=65535).
    #[arg(long)]
    weight: Option<u32>,
    /// `spec.capability`, the hard cap: `cpu=200,memory=1Ti,nvidia.com/gpu=16` sets those
    /// resources (the others stay), `memory-` removes one, `none` removes the cap.
    #[arg(long, value_name = "RESOURCES", value_parser = parse("--capability"))]
    capability: Option<QuantitiesEdit>,
    /// `spec.deserved`, the fair share reclaim restores (same syntax as --capability).
    #[arg(long, value_name = "RESOURCES", value_parser = parse("--deserved"))]
    deserved: Option<QuantitiesEdit>,
    /// `spec.guarantee.resource`, always available to the queue (same syntax as --capability).
    #[arg(long, value_name = "RESOURCES", value_parser = parse("--guarantee"))]
    guarantee: Option<QuantitiesEdit>,
    /// `spec.parent`: the parent Queue's name (`root`: at the top).
    #[arg(long, value_name = "QUEUE")]
    parent: Option<String>,
    /// `spec.reclaimable`: whether what it holds beyond its deserved share may be reclaimed.
    #[arg(long, value_name = "BOOL")]
    reclaimable: Option<bool>,
}

/// Flags of every `queue` subcommand.
#[derive(Debug, Args)]
struct Common {
    /// Check the change and show its effect (which pending gangs would be admitted, which
    /// running ones evicted or reclaimable), from the cluster as it is now; write nothing. Needs
    /// list access to nodes, pods, priorityclasses and PodGroups besides queues.
    #[arg(long)]
    dry_run: bool,
    /// A kubeconfig file; without it, $KUBECONFIG, else ~/.kube/config (else, in a pod, its
    /// service account). The change is made as that user: Kubernetes RBAC decides (the chart's
    /// phalanx-queue-admin ClusterRole grants it).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The configuration file `phalanx serve` runs with, so the check and the dry run use its
    /// scheduler names and engine settings (default: serve's defaults).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn parse(
    flag: &'static str,
) -> impl Fn(&str) -> std::result::Result<QuantitiesEdit, String> + Clone + Send + Sync + 'static {
    move |text| QuantitiesEdit::parse(flag, text).map_err(|e| e.to_string())
}

impl Quotas {
    fn edit(self) -> QueueEdit {
        QueueEdit {
            weight: self.weight,
            capability: self.capability,
            deserved: self.deserved,
            guarantee: self.guarantee,
            parent: self.parent,
            reclaimable: self.reclaimable,
        }
    }
}

/// Runs a `phalanx queue` command; returns what to print.
pub async fn run(args: QueueArgs) -> Result<String> {
    let (name, op, common) = match args.command {
        QueueCommand::Set {
            name,
            quotas,
            common,
        } => {
            let edit = quotas.edit();
            if edit.is_empty() {
                anyhow::bail!(
                    "queue set {name}: nothing to change; give --weight, --capability, --deserved, --guarantee, --parent or --reclaimable"
                );
            }
            (name, Operation::Set(edit), common)
        }
        QueueCommand::Create {
            name,
            quotas,
            common,
        } => (name, Operation::Create(quotas.edit()), common),
        QueueCommand::Close { name, common } => (name, Operation::State { open: false }, common),
        QueueCommand::Open { name, common } => (name, Operation::State { open: true }, common),
    };
    let config = match &common.config {
        Some(path) => ServeConfig::load(path)?,
        None => ServeConfig::default(),
    };
    if config.queues.source != phalanx_k8s::config::QueueSource::Volcano {
        tracing::warn!(
            "the serve configuration reads queues from a file (queues.source: file): serve ignores Queue objects"
        );
    }
    let client = kube::Client::try_from(crate::kube_config(common.kubeconfig.as_deref()).await?)?;
    let options = Options {
        dry_run: common.dry_run,
        config,
    };
    let outcome = queue_admin::run(&client, &name, &op, &options).await?;
    Ok(outcome.human())
}
