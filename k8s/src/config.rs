//! The configuration file of `phalanx serve`: one YAML document, every field optional, unknown
//! fields refused (a typo is an error, not a silent default).
//!
//! ```yaml
//! schedulerNames: [phalanx]     # pods with one of these spec.schedulerNames are scheduled
//! scorePolicy: binpack          # binpack | spread
//! cyclePeriodMs: 1000           # a cycle at least this often, even with no changes
//! batchWindowMs: 10             # after a change, wait this long for more before cycling
//! bindConcurrency: 64           # bindings in flight at once
//! bindRetries: 5                # attempts per binding on transient errors (5xx, 429, network)
//! queues:
//!   source: volcano             # volcano: Volcano Queue objects | file: the records in `file`
//!   file: /etc/phalanx/queues.yaml
//! leaderElection:
//!   enabled: true
//!   leaseName: phalanx
//!   leaseNamespace: kube-system
//!   leaseDurationSeconds: 15
//!   renewPeriodSeconds: 2
//! listen: 0.0.0.0:10259         # /metrics, /healthz, /readyz, the page at /, /api/v1/...
//! admin:
//!   authentication: true        # /api/v1 asks for a Kubernetes token (TokenReview + SubjectAccessReview)
//!   tlsCertFile: /etc/phalanx/tls/tls.crt   # serve HTTPS with this certificate (PEM) ...
//!   tlsKeyFile: /etc/phalanx/tls/tls.key    # ... and key; both or neither
//! eventsPerObjectPerMinute: 6   # Kubernetes Events per object, at most
//! statusIntervalMs: 500         # PodGroup status writes are batched this often
//! maxReservations: 16           # blocked gangs holding room at once (0: no reservation)
//! reclaim: true                 # queues under their share evict from queues over theirs
//! reclaimDelayMs: 30000         # a blocked gang waits this long before it evicts anything
//! reclaimCooldownMs: 300000     # after A lost a gang to B, A may not reclaim from B this long
//! dependencyTimeoutMs: 600000   # a dependency that never appears fails its dependents then
//! bindBackoffInitialMs: 1000    # a gang whose bind failed waits this long before it is tried again
//! bindBackoffMaxMs: 10000       # ... doubled per failed bind in a row, at most this long
//! partialGangTimeoutMs: 30000   # a gang partly bound (pods no controller recreates) fails after this
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use phalanx_model::QueueRecord;
use phalanx_scheduler::{EngineConfig, ScorePolicy};
use serde::{Deserialize, Serialize};

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The YAML does not match the schema.
    #[error("{path}: {source}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its location.
        source: serde_norway::Error,
    },
    /// A value is out of range, or two values contradict each other.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field and what is wrong with it.
        source: InvalidConfig,
    },
}

/// A configuration value that parses but cannot work: the field (as written in the file) and
/// why. Refused at start, so a replica never runs in a state it cannot keep (a leader whose
/// renew period is not shorter than its lease loses the lease between renewals and exits: a
/// crash loop).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct InvalidConfig {
    /// The field, dotted as in the file (`leaderElection.renewPeriodSeconds`).
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Where the queue tree comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueSource {
    /// Volcano `Queue` objects (`scheduling.volcano.sh/v1beta1`), watched.
    #[default]
    Volcano,
    /// The queue records of a file (the trace format's `queue` records, as a YAML list).
    File,
}

/// The admin port's security (see [`crate::admin`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminConfig {
    /// The JSON API asks for a Kubernetes bearer token, checked with TokenReview, and the
    /// right to read queues, checked with SubjectAccessReview. Turn off only for local use:
    /// then anyone who reaches the port reads every queue and job.
    pub authentication: bool,
    /// A PEM certificate (chain) to serve HTTPS with; with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            authentication: true,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// Queue configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct QueueConfig {
    /// Where the queue tree comes from.
    pub source: QueueSource,
    /// The file, with `source: file`.
    pub file: Option<PathBuf>,
}

/// Leader election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderConfig {
    /// Whether to elect a leader (off: this replica always binds; run only one).
    pub enabled: bool,
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace.
    pub lease_namespace: String,
    /// How long a lease holds without renewal; a standby takes over after at most this long.
    pub lease_duration_seconds: u64,
    /// How often the leader renews (and a standby retries).
    pub renew_period_seconds: u64,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        LeaderConfig {
            enabled: true,
            lease_name: "phalanx".into(),
            lease_namespace: "kube-system".into(),
            lease_duration_seconds: 15,
            renew_period_seconds: 2,
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ServeConfig {
    /// Pods with one of these `spec.schedulerName`s are scheduled (default `[phalanx]`). A
    /// cluster that replaces Volcano adds `volcano` (mpi-operator, KubeRay and spark-operator's
    /// `batchScheduler: volcano` force that name), and `scheduler-plugins-scheduler` where
    /// KubeRay's coscheduling mode is used.
    pub scheduler_names: Vec<String>,
    /// Deprecated: one name, the same as `schedulerNames: [NAME]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    /// How to choose among nodes that fit: `binpack` or `spread`.
    pub score_policy: ScorePolicy,
    /// A cycle runs at least this often (milliseconds).
    pub cycle_period_ms: u64,
    /// After a change arrives, wait this long for more before cycling (milliseconds).
    pub batch_window_ms: u64,
    /// Bindings in flight at once.
    pub bind_concurrency: usize,
    /// Attempts per binding on transient errors.
    pub bind_retries: u32,
    /// Queue configuration source.
    pub queues: QueueConfig,
    /// Leader election.
    pub leader_election: LeaderConfig,
    /// Address of the metrics and admin API.
    pub listen: SocketAddr,
    /// Who may read the admin API, and TLS.
    pub admin: AdminConfig,
    /// Kubernetes Events per object per minute, at most.
    pub events_per_object_per_minute: u32,
    /// PodGroup status writes are batched this often (milliseconds).
    pub status_interval_ms: u64,
    /// Blocked gangs that may hold room at once while they wait; 0 turns reservation and
    /// backfill off.
    pub max_reservations: usize,
    /// Whether a queue below its deserved share may evict whole gangs of queues above theirs.
    pub reclaim: bool,
    /// How long a blocked gang waits before it may evict anything (milliseconds).
    pub reclaim_delay_ms: u64,
    /// After a gang of queue A is evicted for queue B, how long A may not reclaim from B
    /// (milliseconds).
    pub reclaim_cooldown_ms: u64,
    /// How long a job waits for a dependency that does not exist before it fails
    /// (milliseconds).
    pub dependency_timeout_ms: u64,
    /// How long a gang undone by a failed bind waits before it is tried again (milliseconds;
    /// kube-scheduler's `podInitialBackoffSeconds`); 0 tries it again at the next cycle.
    pub bind_backoff_initial_ms: u64,
    /// The wait doubles with each failed bind in a row, up to this (milliseconds;
    /// kube-scheduler's `podMaxBackoffSeconds`).
    pub bind_backoff_max_ms: u64,
    /// How long a gang may stay partly bound (bound pods that cannot be taken back, below
    /// its minimum) before the job fails and its bound pods are evicted (milliseconds).
    pub partial_gang_timeout_ms: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            scheduler_names: vec!["phalanx".into()],
            scheduler_name: None,
            score_policy: ScorePolicy::Binpack,
            cycle_period_ms: 1000,
            batch_window_ms: 10,
            bind_concurrency: 64,
            bind_retries: 5,
            queues: QueueConfig::default(),
            leader_election: LeaderConfig::default(),
            listen: SocketAddr::from(([0, 0, 0, 0], 10259)),
            admin: AdminConfig::default(),
            events_per_object_per_minute: 6,
            status_interval_ms: 500,
            max_reservations: EngineConfig::default().max_reservations,
            reclaim: EngineConfig::default().reclaim,
            reclaim_delay_ms: EngineConfig::default().reclaim_delay.0,
            reclaim_cooldown_ms: EngineConfig::default().reclaim_cooldown.0,
            dependency_timeout_ms: EngineConfig::default().dependency_timeout.0,
            bind_backoff_initial_ms: EngineConfig::default().bind_backoff_initial.0,
            bind_backoff_max_ms: EngineConfig::default().bind_backoff_max.0,
            partial_gang_timeout_ms: EngineConfig::default().partial_gang_timeout.0,
        }
    }
}

impl ServeConfig {
    /// Reads a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::parse(&text).map_err(|source| ConfigError::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate().map_err(|source| ConfigError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(config)
    }

    /// Checks what the schema cannot: values that must be positive, and values that must agree
    /// with each other. The first problem found is returned, naming its field.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let positive: [(&'static str, u64); 6] = [
            ("cyclePeriodMs", self.cycle_period_ms),
            ("bindConcurrency", self.bind_concurrency as u64),
            ("bindRetries", u64::from(self.bind_retries)),
            ("statusIntervalMs", self.status_interval_ms),
            (
                "leaderElection.leaseDurationSeconds",
                self.leader_election.lease_duration_seconds,
            ),
            (
                "leaderElection.renewPeriodSeconds",
                self.leader_election.renew_period_seconds,
            ),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(InvalidConfig {
                field,
                message: "must be greater than 0".into(),
            });
        }
        if self.admin.tls_cert_file.is_some() != self.admin.tls_key_file.is_some() {
            let (field, other) = if self.admin.tls_cert_file.is_some() {
                ("admin.tlsKeyFile", "admin.tlsCertFile")
            } else {
                ("admin.tlsCertFile", "admin.tlsKeyFile")
            };
            return Err(InvalidConfig {
                field,
                message: format!("is required with {other}: HTTPS needs both"),
            });
        }
        let le = &self.leader_election;
        if le.enabled && le.renew_period_seconds >= le.lease_duration_seconds {
            return Err(InvalidConfig {
                field: "leaderElection.renewPeriodSeconds",
                message: format!(
                    "must be less than leaderElection.leaseDurationSeconds ({}), got {}: \
                     the leader would lose its lease between renewals",
                    le.lease_duration_seconds, le.renew_period_seconds
                ),
            });
        }
        if self.batch_window_ms >= self.cycle_period_ms {
            return Err(InvalidConfig {
                field: "batchWindowMs",
                message: format!(
                    "must be less than cyclePeriodMs ({}), got {}",
                    self.cycle_period_ms, self.batch_window_ms
                ),
            });
        }
        if self.bind_backoff_initial_ms > self.bind_backoff_max_ms {
            return Err(InvalidConfig {
                field: "bindBackoffInitialMs",
                message: format!(
                    "must not be more than bindBackoffMaxMs ({}), got {}",
                    self.bind_backoff_max_ms, self.bind_backoff_initial_ms
                ),
            });
        }
        if self.scheduler_names.is_empty() || self.scheduler_names.iter().any(String::is_empty) {
            return Err(InvalidConfig {
                field: "schedulerNames",
                message: "must list at least one name, none of them empty".into(),
            });
        }
        if self.scheduler_name.is_some()
            && self.scheduler_names != ServeConfig::default().scheduler_names
        {
            return Err(InvalidConfig {
                field: "schedulerName",
                message: "is deprecated and cannot be set together with schedulerNames; \
                          list every name in schedulerNames"
                    .into(),
            });
        }
        if self.queues.source == QueueSource::File && self.queues.file.is_none() {
            return Err(InvalidConfig {
                field: "queues.file",
                message: "is required with queues.source: file".into(),
            });
        }
        Ok(())
    }

    /// Parses a configuration document.
    pub fn parse(text: &str) -> Result<Self, serde_norway::Error> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_norway::from_str(text)
    }

    /// The scheduler names pods may set: `schedulerNames`, or the deprecated `schedulerName`
    /// when it alone is given.
    pub fn scheduler_names(&self) -> Vec<String> {
        match &self.scheduler_name {
            Some(name) if self.scheduler_names == ServeConfig::default().scheduler_names => {
                vec![name.clone()]
            }
            _ => self.scheduler_names.clone(),
        }
    }

    /// The engine's configuration.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            score: self.score_policy,
            max_reservations: self.max_reservations,
            reclaim: self.reclaim,
            reclaim_delay: phalanx_model::Span(self.reclaim_delay_ms),
            reclaim_cooldown: phalanx_model::Span(self.reclaim_cooldown_ms),
            dependency_timeout: phalanx_model::Span(self.dependency_timeout_ms),
            bind_backoff_initial: phalanx_model::Span(self.bind_backoff_initial_ms),
            bind_backoff_max: phalanx_model::Span(self.bind_backoff_max_ms),
            partial_gang_timeout: phalanx_model::Span(self.partial_gang_timeout_ms),
            ..EngineConfig::default()
        }
    }

    /// The queue records of `queues.file`, with `queues.source: file`.
    pub fn static_queues(&self) -> Result<Option<Vec<QueueRecord>>, ConfigError> {
        if self.queues.source != QueueSource::File {
            return Ok(None);
        }
        let path = self.queues.file.clone().unwrap_or_default();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        serde_norway::from_str(&text)
            .map(Some)
            .map_err(|source| ConfigError::Yaml { path, source })
    }

    /// The cycle period.
    pub fn cycle_period(&self) -> Duration {
        Duration::from_millis(self.cycle_period_ms.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_typos_are_refused() {
        let doc: String = include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```yaml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").strip_prefix(' ').unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let c = ServeConfig::parse(&doc).unwrap();
        assert_eq!(c.bind_concurrency, 64);
        assert_eq!(c.queues.source, QueueSource::Volcano);
        assert_eq!(c.leader_election.lease_namespace, "kube-system");
        assert_eq!(ServeConfig::parse("").unwrap(), ServeConfig::default());
        let e = ServeConfig::parse("schedulerNmae: x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedulerNmae"), "{e}");
        let c = ServeConfig::parse("scorePolicy: spread\ncyclePeriodMs: 200").unwrap();
        assert_eq!(c.engine().score, ScorePolicy::Spread);
        assert_eq!(c.engine().bind_backoff_initial.0, 1000);
        let c = ServeConfig::parse("bindBackoffInitialMs: 250\nbindBackoffMaxMs: 4000").unwrap();
        let e = c.engine();
        assert_eq!(
            (e.bind_backoff_initial.0, e.bind_backoff_max.0),
            (250, 4000)
        );
    }

    #[test]
    fn values_that_cannot_work_together_are_refused_naming_the_field() {
        let field = |doc: &str| {
            ServeConfig::parse(doc)
                .unwrap()
                .validate()
                .map_err(|e| e.field)
        };
        assert_eq!(field(""), Ok(()));
        // A leader renewing no sooner than its lease expires loses it and exits: a crash loop.
        let e = ServeConfig::parse(
            "leaderElection:\n  leaseDurationSeconds: 10\n  renewPeriodSeconds: 10",
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "leaderElection.renewPeriodSeconds");
        assert!(
            e.to_string()
                .contains("less than leaderElection.leaseDurationSeconds (10)"),
            "{e}"
        );
        // Without leader election the lease settings do not matter.
        assert_eq!(
            field("leaderElection:\n  enabled: false\n  renewPeriodSeconds: 30"),
            Ok(())
        );
        assert_eq!(field("cyclePeriodMs: 0"), Err("cyclePeriodMs"));
        assert_eq!(field("bindConcurrency: 0"), Err("bindConcurrency"));
        assert_eq!(field("bindRetries: 0"), Err("bindRetries"));
        assert_eq!(field("statusIntervalMs: 0"), Err("statusIntervalMs"));
        assert_eq!(
            field("leaderElection:\n  leaseDurationSeconds: 0"),
            Err("leaderElection.leaseDurationSeconds")
        );
        assert_eq!(
            field("cyclePeriodMs: 100\nbatchWindowMs: 100"),
            Err("batchWindowMs")
        );
        assert_eq!(
            field("bindBackoffInitialMs: 20000"),
            Err("bindBackoffInitialMs")
        );
        assert_eq!(field("queues:\n  source: file"), Err("queues.file"));
        assert_eq!(field("schedulerNames: []"), Err("schedulerNames"));
        assert_eq!(
            field("schedulerName: a\nschedulerNames: [b]"),
            Err("schedulerName")
        );
    }

    #[test]
    fn several_scheduler_names_and_the_deprecated_single_one() {
        let names = |doc: &str| ServeConfig::parse(doc).unwrap().scheduler_names();
        assert_eq!(names(""), ["phalanx"]);
        assert_eq!(
            names("schedulerNames: [phalanx, volcano]"),
            ["phalanx", "volcano"]
        );
        // The old field still works, as a list of one.
        assert_eq!(names("schedulerName: volcano"), ["volcano"]);
    }

    #[test]
    fn a_file_with_an_invalid_value_is_refused_naming_file_and_field() {
        let dir = std::env::temp_dir().join(format!("phalanx-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yaml");
        std::fs::write(&path, "bindConcurrency: 0\n").unwrap();
        let e = ServeConfig::load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(
            e.contains("field `bindConcurrency`: must be greater than 0"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
