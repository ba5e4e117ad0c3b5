//! Leader election on a `coordination.k8s.io/v1` Lease, written here (the crates for it target
//! older kube versions). Several replicas run; one holds the lease and binds; the others keep
//! their state warm and take over at most a lease duration plus two renew periods after the
//! leader last renewed.
//!
//! ```text
//!                 acquire (lease free, expired, or ours)
//!   Standby ────────────────────────────────────────────> Leader
//!      ^                                                    │ renew every renewPeriod
//!      │                                                    │ renew failed until the deadline,
//!      └──────────── process exits (serve returns) <────────┘ or someone else holds it
//! ```
//!
//! Expiry is judged on the local monotonic clock, never on timestamps written by another machine:
//! a standby counts `leaseDuration` from the moment it last *saw* the lease record change, and the
//! leader counts its own validity from the moment it *sent* its last successful renewal, shortened
//! by a fifth. So a standby can only take over after the old leader stopped considering itself
//! leader, whatever the clocks say. Every bind checks [`LeaderState::is_leader`] first: that is
//! the fence.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use crate::config::LeaderConfig;

/// Why leadership ended or could not be tried.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The lease went to another replica, or could not be renewed in time.
    #[error("lost the lease {lease}: {why}")]
    Lost {
        /// `namespace/name`.
        lease: String,
        /// What happened.
        why: String,
    },
}

/// Whether this replica may act as leader now. Shared by the engine thread, the binder and the
/// status writer.
#[derive(Debug, Default)]
pub struct LeaderState {
    valid_until: Mutex<Option<Instant>>,
}

impl LeaderState {
    /// A state that is always leader (leader election disabled).
    pub fn always() -> Self {
        LeaderState {
            valid_until: Mutex::new(Some(
                Instant::now() + Duration::from_secs(100 * 365 * 86400),
            )),
        }
    }

    /// Whether this replica holds a lease that has not run out.
    pub fn is_leader(&self) -> bool {
        self.valid_until
            .lock()
            .map(|v| v.is_some_and(|t| Instant::now() < t))
            .unwrap_or(false)
    }

    fn set(&self, until: Option<Instant>) {
        if let Ok(mut v) = self.valid_until.lock() {
            *v = until;
        }
    }

    /// Gives up leadership at once (on shutdown).
    pub fn resign(&self) {
        self.set(None);
    }
}

/// A lease record as a standby compares it: (holder, renew time).
type Record = (Option<String>, Option<String>);

/// One replica's view of the lease.
struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The record last seen (holder, renew time) and when it was seen.
    observed: Option<(Record, Instant)>,
}

impl Elector {
    /// Tries to acquire or renew. `Ok(true)`: we hold it, as of `sent`.
    async fn try_once(&mut self) -> Result<bool, kube::Error> {
        let now_wall = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let spec_for = |transitions: i32, acquire: Option<MicroTime>| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs() as i32),
            acquire_time: acquire.or_else(|| Some(now_wall.clone())),
            renew_time: Some(now_wall.clone()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        let current = match self.api.get_opt(&self.name).await? {
            Some(l) => l,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec_for(0, None)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
        );
        let seen_at = match &self.observed {
            Some((r, at)) if *r == record => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((record, at));
                at
            }
        };
        let theirs = holder.as_deref().is_some_and(|h| h != self.identity);
        let duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(1) as u64))
            .unwrap_or(self.duration);
        if theirs && seen_at.elapsed() < duration {
            return Ok(false);
        }
        let transitions =
            spec.lease_transitions.unwrap_or(0) + i32::from(theirs || holder.is_none());
        let acquire = if theirs || holder.is_none() {
            None
        } else {
            spec.acquire_time.clone()
        };
        let mut lease = current;
        lease.spec = Some(spec_for(transitions, acquire));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Best effort: clears the holder so a standby need not wait out the lease.
    async fn release(&self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await {
            let ours = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.identity.as_str());
            if ours {
                if let Some(spec) = lease.spec.as_mut() {
                    spec.holder_identity = None;
                    spec.renew_time = None;
                }
                let _ = self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await;
            }
        }
    }
}

/// Campaigns for the lease and keeps it; returns only when leadership is lost (an error: the
/// caller stops scheduling) or `shutdown` resolves (the lease is released).
pub async fn run(
    client: kube::Client,
    config: &LeaderConfig,
    identity: String,
    state: &LeaderState,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), LeaderError> {
    let mut elector = Elector {
        api: Api::namespaced(client, &config.lease_namespace),
        name: config.lease_name.clone(),
        identity,
        duration: Duration::from_secs(config.lease_duration_seconds.max(1)),
        observed: None,
    };
    let lease = format!("{}/{}", config.lease_namespace, config.lease_name);
    let renew = Duration::from_secs(config.renew_period_seconds.max(1));
    let mut leading = false;
    tokio::pin!(shutdown);
    loop {
        let sent = Instant::now();
        match elector.try_once().await {
            Ok(true) => {
                if !leading {
                    tracing::info!(lease = %lease, identity = %elector.identity, "became leader");
                }
                leading = true;
                state.set(Some(sent + elector.duration * 4 / 5));
            }
            Ok(false) if leading => {
                state.resign();
                return Err(LeaderError::Lost {
                    lease,
                    why: "another replica holds it".into(),
                });
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(lease = %lease, error = %e, "lease request failed");
                if leading && !state.is_leader() {
                    return Err(LeaderError::Lost {
                        lease,
                        why: format!("not renewed before its deadline: {e}"),
                    });
                }
            }
        }
        tokio::select! {
            () = &mut shutdown => {
                if leading {
                    state.resign();
                    elector.release().await;
                }
                return Ok(());
            }
            () = tokio::time::sleep(renew) => {}
        }
    }
}
