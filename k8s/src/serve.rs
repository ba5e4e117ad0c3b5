//! `phalanx serve`: wires the watchers, the engine thread, the binder, the status writer, the
//! admin API and leader election together, and stops them together.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::config::{ConfigError, InvalidConfig, QueueSource, ServeConfig};
use crate::core::Core;
use crate::leader::{self, LeaderError, LeaderState};
use crate::runner::{self, Shared, Timing};
use crate::{admin, binder, status, watch};

/// Why the scheduler stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The admin port's certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A configuration value cannot work (given in code rather than read from a file).
    #[error("configuration: {0}")]
    InvalidConfig(#[from] InvalidConfig),
    /// The admin API could not listen.
    #[error("admin API on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The engine thread could not start.
    #[error("engine thread: {0}")]
    Thread(std::io::Error),
    /// Leadership was lost: this replica stops so that it cannot act on stale state.
    #[error(transparent)]
    Leader(#[from] LeaderError),
}

/// A running scheduler.
pub struct Running {
    /// Where the admin API listens.
    pub addr: SocketAddr,
    /// What the engine thread publishes.
    pub shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Stops everything (releasing the lease) and waits.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap_or(Ok(()))
    }

    /// Waits until the scheduler stops on its own (lost lease). Call [`Running::stop`] only if
    /// this has not returned.
    pub async fn done(&mut self) -> Result<(), ServeError> {
        (&mut self.task).await.unwrap_or(Ok(()))
    }

    /// Whether it stopped already.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts a scheduler replica named `identity` against `client`.
pub async fn start(
    client: kube::Client,
    config: ServeConfig,
    identity: String,
) -> Result<Running, ServeError> {
    config.validate()?;
    let static_queues = config.static_queues()?;
    let tls = match (&config.admin.tls_cert_file, &config.admin.tls_key_file) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
        _ => None,
    };
    let leader_state = if config.leader_election.enabled {
        LeaderState::default()
    } else {
        LeaderState::always()
    };
    let shared = Arc::new(Shared::new(leader_state));
    let core = Core::new(config.engine(), config.scheduler_names(), static_queues);
    let (tx, rx) = watch::inbox(
        watch::ENGINE_INBOX,
        shared.metrics.engine_queue_depth.clone(),
    );
    let (actions_tx, actions_rx) = tokio::sync::mpsc::unbounded_channel();
    let (notices_tx, notices_rx) = tokio::sync::mpsc::unbounded_channel();
    let timing = Timing {
        period: config.cycle_period(),
        window: std::time::Duration::from_millis(config.batch_window_ms),
    };
    let engine_shared = Arc::clone(&shared);
    let engine = std::thread::Builder::new()
        .name("phalanx-engine".into())
        .spawn(move || runner::run(core, rx, actions_tx, engine_shared, timing))
        .map_err(ServeError::Thread)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: config.listen,
        source,
    })?;
    let watchers = watch::start(
        client.clone(),
        config.queues.source == QueueSource::Volcano,
        tx.clone(),
    )
    .await;
    let binder = tokio::spawn(binder::run(
        client.clone(),
        actions_rx,
        tx.clone(),
        Arc::clone(&shared),
        config.bind_concurrency,
        config.bind_retries,
        notices_tx,
    ));
    drop(tx);
    let status = tokio::spawn(status::run(
        client.clone(),
        Arc::clone(&shared),
        notices_rx,
        std::time::Duration::from_millis(config.status_interval_ms),
        config.events_per_object_per_minute,
        identity.clone(),
    ));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (admin_stop_tx, admin_stop_rx) = oneshot::channel::<()>();
    let admin = tokio::spawn({
        let auth = config
            .admin
            .authentication
            .then(|| Arc::new(admin::Authenticator::new(client.clone())));
        if auth.is_none() {
            tracing::warn!(
                "admin API authentication is off (admin.authentication: false): anyone who reaches {addr} reads every queue and job"
            );
        }
        let app = admin::router(Arc::clone(&shared), auth);
        let stopped = async move {
            let _ = admin_stop_rx.await;
        };
        async move {
            let served = match tls {
                Some(tls) => match crate::tls::TlsListener::new(listener, tls) {
                    Ok(listener) => {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(stopped)
                            .await
                    }
                    Err(e) => Err(e),
                },
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .await
                }
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "admin port stopped");
            }
        }
    });
    let task_shared = Arc::clone(&shared);
    let task = tokio::spawn(async move {
        let result = if config.leader_election.enabled {
            leader::run(
                client,
                &config.leader_election,
                identity.clone(),
                &task_shared.leader,
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
            .map_err(ServeError::from)
        } else {
            let _ = stop_rx.await;
            Ok(())
        };
        task_shared.leader.resign();
        for w in watchers {
            w.abort();
        }
        binder.abort();
        status.abort();
        let _ = admin_stop_tx.send(());
        let _ = admin.await;
        // The engine thread ends once every sender is gone (watchers and binder aborted).
        let _ = tokio::task::spawn_blocking(move || engine.join()).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "scheduler stopped");
        }
        result
    });
    Ok(Running {
        addr,
        shared,
        stop: Some(stop_tx),
        task,
    })
}
