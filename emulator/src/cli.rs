//! The `phalanx emulator` command line: serve (the default) and `load`.
//!
//! ```text
//! phalanx emulator --listen 127.0.0.1:6443 --nodes 5000 --node-shape cpu=64,memory=512Gi --kubeconfig kc.yaml
//! phalanx emulator --token s3cret=alice:admin --token peek=bob,team-a:view \
//!     --kubeconfig kc.yaml --kubeconfig-for bob=bob.yaml
//! phalanx emulator load --kubeconfig kc.yaml --trace jobs.jsonl --rate 20
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::auth::{AuthError, TokenUser};
use crate::client::{ClientError, host_port, server_from_kubeconfig, token_from_kubeconfig};
use crate::faults::{FaultConfig, FaultError, parse_verb_value};
use crate::kubelet::KubeletConfig;
use crate::load::{Flavor, LoadError, LoadOptions, LoadReport, read_jobs};
use crate::podgc::PodGcConfig;
use crate::server::{
    EmulatorConfig, NodeShape, RunningEmulator, ServerError, kubeconfig_yaml, set_node_ready, start,
};
use crate::store::StoreConfig;

/// A command that failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Startup failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// `--faults` cannot be read or is not a fault configuration.
    #[error("--faults {path}: {message}")]
    FaultsFile {
        /// The file.
        path: String,
        /// What is wrong, with line and column for a JSON error.
        message: String,
    },
    /// `--audit-lease` is not `NAMESPACE/NAME`.
    #[error("--audit-lease {0:?}: expected NAMESPACE/NAME, e.g. kube-system/phalanx")]
    AuditLease(String),
    /// A fault flag is malformed.
    #[error(transparent)]
    Fault(#[from] FaultError),
    /// The load run failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The server address is unusable.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Writing the kubeconfig failed.
    #[error("writing kubeconfig {path}: {source}")]
    Kubeconfig {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Waiting for Ctrl-C failed.
    #[error("signal handling: {0}")]
    Signal(std::io::Error),
    /// Neither `--server` nor `--kubeconfig` was given.
    #[error("give --server http://HOST:PORT or --kubeconfig FILE")]
    NoServer,
    /// A `--token` is malformed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// `--kubeconfig-for` is not `USER=PATH`.
    #[error("invalid --kubeconfig-for {0:?}: expected USER=PATH")]
    KubeconfigFor(String),
    /// `--kubeconfig-for` names a user no `--token` has.
    #[error("--kubeconfig-for {0:?}: no --token belongs to that user")]
    UnknownUser(String),
    /// `--kubeconfig` with `--token` users of which none is `admin`.
    #[error(
        "--kubeconfig needs an admin user when --token is given (add --token TOKEN=USER:admin)"
    )]
    NoAdminToken,
}

/// `phalanx emulator [serve flags] | phalanx emulator load ...`
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EmulatorArgs {
    /// `load` (without a subcommand the emulator serves).
    #[command(subcommand)]
    pub command: Option<EmulatorCommand>,
    /// Serve flags.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands of `phalanx emulator`.
#[derive(Debug, Clone, Subcommand)]
pub enum EmulatorCommand {
    /// Serve the emulated API (the default).
    Serve(Box<ServeArgs>),
    /// Create jobs (PodGroups and pods) from a native trace file at a given rate.
    Load(LoadArgs),
}

/// Flags of the emulated API server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Fake nodes to create at startup.
    #[arg(long, default_value_t = 0)]
    pub nodes: usize,
    /// Node capacity, `RESOURCE=QUANTITY,...`; repeat for several shapes, assigned round-robin.
    #[arg(long = "node-shape", value_name = "SHAPE")]
    pub node_shape: Vec<String>,
    /// Node name prefix.
    #[arg(long, default_value = "node-")]
    pub node_prefix: String,
    /// Also create the nodes of this trace's `node` records (capacity, labels, taints).
    #[arg(long, value_name = "TRACE")]
    pub nodes_from: Option<PathBuf>,
    /// Write a kubeconfig for kubectl and `phalanx serve` here. With `--token` users it carries
    /// the first `admin` user's token (and one is required).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// A user and its bearer token: `TOKEN=USER[,GROUP...]:ROLE`, ROLE `admin` (every verb on
    /// everything) or `view` (only get, list and watch), e.g. `s3cret=alice:admin` or
    /// `peek=bob,team-a:view`. Repeatable. With at least one, requests to API resources need
    /// `Authorization: Bearer TOKEN` of a user (401 otherwise) and a `view` user's writes are
    /// 403; only `admin` users may create TokenReviews and SubjectAccessReviews, which answer
    /// about these users. Discovery, OpenAPI, /version, health and /emulator/ stay open.
    /// Without any, nothing is checked.
    #[arg(long = "token", value_name = "TOKEN=USER[,GROUP...]:ROLE")]
    pub token: Vec<String>,
    /// Also write a kubeconfig whose user is USER (a `--token` user), with that user's token, to
    /// PATH: `--kubeconfig-for bob=/tmp/bob.kubeconfig`. Repeatable.
    #[arg(long = "kubeconfig-for", value_name = "USER=PATH")]
    pub kubeconfig_for: Vec<String>,
    /// Milliseconds from binding to Running.
    #[arg(long, default_value_t = 500)]
    pub start_delay_ms: u64,
    /// Longest milliseconds a terminating pod takes to stop.
    #[arg(long, default_value_t = 1000)]
    pub stop_delay_ms: u64,
    /// Watch events kept per resource; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 100_000)]
    pub watch_window: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 10)]
    pub bookmark_interval_s: u64,
    /// Fault: fail this fraction of a verb's requests with 500 (`create=0.05`, `bind=0.1`, `*=0.01`).
    #[arg(long = "fault-error-rate", value_name = "VERB=P")]
    pub fault_error_rate: Vec<String>,
    /// Fault: add latency to a verb (`list=200`).
    #[arg(long = "fault-latency-ms", value_name = "VERB=MS")]
    pub fault_latency_ms: Vec<String>,
    /// Fault: throttle this fraction of all requests with 429.
    #[arg(long, default_value_t = 0.0)]
    pub fault_throttle_rate: f64,
    /// Fault: drop every watch connection after about this many milliseconds.
    #[arg(long)]
    pub fault_watch_drop_ms: Option<u64>,
    /// Fault: answer this fraction of watches from a resourceVersion with 410 Gone.
    #[arg(long, default_value_t = 0.0)]
    pub fault_watch_gone_rate: f64,
    /// Faults from a file: a JSON object as `PUT /emulator/faults` takes (`errorRate`,
    /// `latencyMs`, `throttleRate`, `watchDropAfterMs`, `watchGoneRate`, `conflictRate`,
    /// `admissionRejectRate`); the `--fault-*` flags given as well override its fields.
    #[arg(long, value_name = "FILE")]
    pub faults: Option<std::path::PathBuf>,
    /// Fault: refuse this fraction of updates and patches with 409 Conflict.
    #[arg(long, default_value_t = 0.0)]
    pub fault_conflict_rate: f64,
    /// Fault: kubelets refuse this fraction of pods at admission (`UnexpectedAdmissionError`).
    #[arg(long, default_value_t = 0.0)]
    pub fault_admission_reject_rate: f64,
    /// Judge every bind against this leader Lease (`NAMESPACE/NAME`, e.g. `kube-system/phalanx`):
    /// `GET /emulator/audit` then says whose the lease was at each bind.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub audit_lease: Option<String>,
    /// Fault: take a node NotReady AT seconds after startup, and Ready again FOR seconds later
    /// (`node-00003@10+30`; without `+FOR` it stays NotReady). Repeatable.
    #[arg(long = "fault-node-not-ready", value_name = "NODE@AT[+FOR]")]
    pub fault_node_not_ready: Vec<String>,
    /// Seconds pods stay on a NotReady node before they are evicted (Kubernetes' default
    /// toleration is 300); negative never evicts.
    #[arg(long, default_value_t = 300, allow_negative_numbers = true)]
    pub not_ready_eviction_s: i64,
    /// Seconds a node name must stay missing before the pods still bound to it are deleted, as
    /// kube-controller-manager's PodGC does (its quarantine is 40 s); 0 never deletes them.
    #[arg(long, default_value_t = 40)]
    pub pod_gc_orphan_after_s: u64,
    /// Terminated pods kept before PodGC deletes the oldest (kube-controller-manager's
    /// `--terminated-pod-gc-threshold`); 0 keeps them all.
    #[arg(long, default_value_t = 12_500)]
    pub terminated_pod_gc_threshold: usize,
    /// Milliseconds between PodGC passes (kube-controller-manager's is 20 s); an orphaned pod is
    /// deleted within one pass after its quarantine.
    #[arg(long, default_value_t = 20_000)]
    pub pod_gc_period_ms: u64,
}

/// A scheduled NotReady period of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFlap {
    /// Node name.
    pub node: String,
    /// Seconds after startup it goes NotReady.
    pub at: f64,
    /// Seconds it stays NotReady; forever when absent.
    pub duration: Option<f64>,
}

impl NodeFlap {
    /// Parses `NODE@AT[+FOR]`.
    pub fn parse(s: &str) -> Result<Self, FaultError> {
        let bad = || FaultError::Syntax(s.to_string());
        let (node, when) = s.split_once('@').ok_or_else(bad)?;
        let (at, dur) = match when.split_once('+') {
            Some((a, d)) => (a, Some(d.parse().map_err(|_| bad())?)),
            None => (when, None),
        };
        Ok(Self {
            node: node.to_string(),
            at: at.parse().map_err(|_| bad())?,
            duration: dur,
        })
    }
}

/// Flags of `phalanx emulator load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Native trace file (JSON Lines); `job` records become PodGroups and pods, `queue` records
    /// Volcano Queues (other records are ignored).
    #[arg(long)]
    pub trace: PathBuf,
    /// API server URL (`http://127.0.0.1:6443`).
    #[arg(long)]
    pub server: Option<String>,
    /// Kubeconfig whose server to use (the one `phalanx emulator --kubeconfig` writes).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Jobs created per second (0 = as fast as possible).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// PodGroup API to use.
    #[arg(long, value_enum, default_value_t = Flavor::SchedulerPlugins)]
    pub flavor: Flavor,
    /// Namespace for job names without `namespace/`.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// `spec.schedulerName` of the pods.
    #[arg(long, default_value = "phalanx")]
    pub scheduler_name: String,
    /// Create at most this many jobs.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Parallel connections for pod creation.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Do not create Volcano Queues for the trace's `queue` records.
    #[arg(long)]
    pub no_queues: bool,
}

impl ServeArgs {
    /// The emulator configuration these flags describe.
    pub fn config(&self) -> Result<EmulatorConfig, CliError> {
        let mut faults = match &self.faults {
            Some(path) => {
                let bad = |message: String| CliError::FaultsFile {
                    path: path.display().to_string(),
                    message,
                };
                let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
                serde_json::from_str::<FaultConfig>(&text).map_err(|e| bad(e.to_string()))?
            }
            None => FaultConfig::default(),
        };
        let flag = |v: f64, file: f64| if v > 0.0 { v } else { file };
        faults.throttle_rate = flag(self.fault_throttle_rate, faults.throttle_rate);
        faults.watch_gone_rate = flag(self.fault_watch_gone_rate, faults.watch_gone_rate);
        faults.conflict_rate = flag(self.fault_conflict_rate, faults.conflict_rate);
        faults.admission_reject_rate = flag(
            self.fault_admission_reject_rate,
            faults.admission_reject_rate,
        );
        faults.watch_drop_after_ms = self.fault_watch_drop_ms.or(faults.watch_drop_after_ms);
        let audit_lease = match &self.audit_lease {
            Some(s) => match s.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {
                    Some((ns.to_string(), name.to_string()))
                }
                _ => return Err(CliError::AuditLease(s.clone())),
            },
            None => None,
        };
        for s in &self.fault_error_rate {
            let (k, v) = parse_verb_value::<f64>(s)?;
            faults.error_rate.insert(k, v);
        }
        for s in &self.fault_latency_ms {
            let (k, v) = parse_verb_value::<u64>(s)?;
            faults.latency_ms.insert(k, v);
        }
        let shapes = self
            .node_shape
            .iter()
            .map(|s| NodeShape::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let tokens = self
            .token
            .iter()
            .map(|s| TokenUser::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let extra_nodes = match &self.nodes_from {
            Some(p) => crate::load::trace_nodes(p)?,
            None => Vec::new(),
        };
        Ok(EmulatorConfig {
            listen: self.listen,
            nodes: self.nodes,
            shapes,
            node_prefix: self.node_prefix.clone(),
            extra_nodes,
            kubelet: KubeletConfig {
                start_delay: Duration::from_millis(self.start_delay_ms),
                stop_delay: Duration::from_millis(self.stop_delay_ms),
            },
            store: StoreConfig {
                window: self.watch_window.max(1),
                ..StoreConfig::default()
            },
            faults,
            bookmark_interval: Duration::from_secs(self.bookmark_interval_s.max(1)),
            not_ready_eviction: u64::try_from(self.not_ready_eviction_s)
                .ok()
                .map(Duration::from_secs),
            pod_gc: PodGcConfig {
                period: Duration::from_millis(self.pod_gc_period_ms.max(10)),
                orphan_quarantine: (self.pod_gc_orphan_after_s > 0)
                    .then(|| Duration::from_secs(self.pod_gc_orphan_after_s)),
                terminated_threshold: self.terminated_pod_gc_threshold,
            },
            tokens,
            audit_lease,
            ..EmulatorConfig::default()
        })
    }
    /// The `--kubeconfig-for` pairs: (user, path).
    pub fn kubeconfigs_for(&self) -> Result<Vec<(String, PathBuf)>, CliError> {
        self.kubeconfig_for
            .iter()
            .map(|s| match s.split_once('=') {
                Some((user, path)) if !user.is_empty() && !path.is_empty() => {
                    Ok((user.to_string(), PathBuf::from(path)))
                }
                _ => Err(CliError::KubeconfigFor(s.clone())),
            })
            .collect()
    }
}

/// A kubeconfig for an emulator without `--token` users (its token is a placeholder nothing
/// checks), readable by kubectl, client-go and kube-rs; see [`RunningEmulator::kubeconfig`].
pub fn kubeconfig_text(server: &str) -> String {
    kubeconfig_yaml(server, "phalanx-emulator", "phalanx-emulator")
}

fn write_text(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| CliError::Kubeconfig {
        path: path.display().to_string(),
        source,
    })
}

/// Writes [`kubeconfig_text`] to `path`.
pub fn write_kubeconfig(path: &Path, server: &str) -> Result<(), CliError> {
    write_text(path, &kubeconfig_text(server))
}

/// Writes the `--kubeconfig` (every right) and `--kubeconfig-for` (that user's) kubeconfigs of a
/// running emulator.
pub fn write_kubeconfigs(
    running: &RunningEmulator,
    all_rights: Option<&Path>,
    per_user: &[(String, PathBuf)],
) -> Result<(), CliError> {
    if let Some(path) = all_rights {
        write_text(path, &running.kubeconfig().ok_or(CliError::NoAdminToken)?)?;
    }
    for (user, path) in per_user {
        let text = running
            .kubeconfig_for(user)
            .ok_or_else(|| CliError::UnknownUser(user.clone()))?;
        write_text(path, &text)?;
    }
    Ok(())
}

/// Runs `phalanx emulator ...`.
pub async fn run(args: EmulatorArgs) -> Result<(), CliError> {
    match args.command {
        None => run_serve(args.serve).await,
        Some(EmulatorCommand::Serve(s)) => run_serve(*s).await,
        Some(EmulatorCommand::Load(l)) => {
            let report = run_load(l).await?;
            println!(
                "{}",
                serde_json::to_string(&report).expect("a report serializes")
            );
            Ok(())
        }
    }
}

/// Serves until Ctrl-C, after writing the kubeconfig if asked.
pub async fn run_serve(args: ServeArgs) -> Result<(), CliError> {
    let cfg = args.config()?;
    let per_user = args.kubeconfigs_for()?;
    let users = cfg.tokens.len();
    let flaps = args
        .fault_node_not_ready
        .iter()
        .map(|s| NodeFlap::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let running = start(cfg).await?;
    for flap in flaps {
        let state = running.state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(flap.at.max(0.0))).await;
            if let Err(e) = set_node_ready(&state, &flap.node, false) {
                tracing::warn!(node = %flap.node, error = %e, "cannot take node NotReady");
                return;
            }
            tracing::info!(node = %flap.node, "fault: node NotReady");
            if let Some(d) = flap.duration {
                tokio::time::sleep(Duration::from_secs_f64(d.max(0.0))).await;
                let _ = set_node_ready(&state, &flap.node, true);
                tracing::info!(node = %flap.node, "fault: node Ready again");
            }
        });
    }
    let url = running.url();
    if let Err(e) = write_kubeconfigs(&running, args.kubeconfig.as_deref(), &per_user) {
        running.shutdown().await;
        return Err(e);
    }
    eprintln!(
        "phalanx emulator serving {url} with {} nodes{}{}",
        args.nodes,
        if users > 0 {
            format!("; {users} token users")
        } else {
            String::new()
        },
        args.kubeconfig
            .as_ref()
            .map(|p| format!("; kubeconfig {}", p.display()))
            .unwrap_or_default()
    );
    tokio::signal::ctrl_c().await.map_err(CliError::Signal)?;
    running.shutdown().await;
    Ok(())
}

/// Runs a load: reads the trace and creates its jobs at the given rate.
pub async fn run_load(args: LoadArgs) -> Result<LoadReport, CliError> {
    let server = match (&args.server, &args.kubeconfig) {
        (Some(s), _) => s.clone(),
        (None, Some(k)) => server_from_kubeconfig(k)?,
        (None, None) => return Err(CliError::NoServer),
    };
    let token = match &args.kubeconfig {
        Some(k) => token_from_kubeconfig(k)?,
        None => None,
    };
    let jobs = read_jobs(&args.trace)?;
    let queues = if args.no_queues {
        Vec::new()
    } else {
        crate::load::trace_queues(&args.trace)?
    };
    let opts = LoadOptions {
        host: host_port(&server)?,
        rate: args.rate,
        flavor: args.flavor,
        namespace: args.namespace.clone(),
        scheduler: args.scheduler_name.clone(),
        limit: args.limit,
        connections: args.connections,
        token,
    };
    Ok(crate::load::run(&jobs, &queues, &opts).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_flaps_parse() {
        assert_eq!(
            NodeFlap::parse("node-00003@10+30").unwrap(),
            NodeFlap {
                node: "node-00003".into(),
                at: 10.0,
                duration: Some(30.0)
            }
        );
        assert_eq!(NodeFlap::parse("n@0.5").unwrap().duration, None);
        assert!(NodeFlap::parse("n").is_err());
    }

    #[test]
    fn faults_come_from_a_file_and_flags_override_it() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let dir = std::env::temp_dir().join(format!("phalanx-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("faults.json");
        std::fs::write(
            &file,
            r#"{"errorRate": {"bind": 0.1}, "conflictRate": 0.05, "admissionRejectRate": 0.01}"#,
        )
        .unwrap();
        let parse = |extra: &[&str]| {
            let mut argv = vec!["emulator", "--faults", file.to_str().unwrap()];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).unwrap().serve.config()
        };
        let f = parse(&[]).unwrap().faults;
        assert_eq!(
            (
                f.error_rate["bind"],
                f.conflict_rate,
                f.admission_reject_rate
            ),
            (0.1, 0.05, 0.01)
        );
        let f = parse(&[
            "--fault-conflict-rate",
            "0.5",
            "--fault-error-rate",
            "bind=0.2",
        ])
        .unwrap()
        .faults;
        assert_eq!((f.error_rate["bind"], f.conflict_rate), (0.2, 0.5));
        std::fs::write(&file, "{\"conflictRate\": \"lots\"}").unwrap();
        let err = parse(&[]).unwrap_err().to_string();
        assert!(
            err.contains("faults.json") && err.contains("line 1"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pod_gc_flags_configure_the_collector() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cfg = |args: &[&str]| {
            let argv = std::iter::once("emulator").chain(args.iter().copied());
            Cli::try_parse_from(argv)
                .unwrap()
                .serve
                .config()
                .unwrap()
                .pod_gc
        };
        assert_eq!(cfg(&[]), PodGcConfig::default());
        let short = cfg(&[
            "--pod-gc-orphan-after-s",
            "2",
            "--pod-gc-period-ms",
            "100",
            "--terminated-pod-gc-threshold",
            "0",
        ]);
        assert_eq!(short.orphan_quarantine, Some(Duration::from_secs(2)));
        assert_eq!(short.period, Duration::from_millis(100));
        assert_eq!(short.terminated_threshold, 0);
        assert_eq!(
            cfg(&["--pod-gc-orphan-after-s", "0"]).orphan_quarantine,
            None
        );
    }

    #[test]
    fn kubeconfig_names_the_server() {
        let dir = std::env::temp_dir().join(format!("emu-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kubeconfig");
        write_kubeconfig(&path, "http://127.0.0.1:1234").unwrap();
        assert_eq!(
            server_from_kubeconfig(&path).unwrap(),
            "http://127.0.0.1:1234"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
