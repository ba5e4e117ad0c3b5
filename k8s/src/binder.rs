//! The binder: carries out what a cycle decided. Every pod of a `BindGang` gets a
//! `pods/binding` POST, at most `bindConcurrency` in flight across all gangs. Transient errors
//! (5xx, 429, a dropped connection) are retried with exponential backoff; a bind that fails for
//! good (pod gone, node gone, already bound elsewhere, attempts used up) is reported to the engine
//! thread, which forgets the whole gang. Successes are reported too (the pod watch says the
//! same; whichever arrives first counts).
//!
//! Fence: before every request the binder checks that this replica still holds the lease; a
//! replica that lost it binds nothing more.
//!
//! It also deletes the owned pods of an undone gang (their controller recreates them) and evicts
//! the pods the engine evicts for reclaim or preemption.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use kube::Api;
use kube::api::{DeleteParams, EvictParams, ObjectMeta, PostParams, Preconditions};
use tokio::sync::Semaphore;

use crate::core::{Actions, BindItem, Input, Notice, PodTarget};
use crate::runner::Shared;
use crate::watch::{EngineTx, Msg};

/// Why a bind failed for good. The label is the `reason` of `phalanx_bind_failures_total`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// This replica no longer holds the lease.
    #[error("not the leader any more; nothing is bound")]
    Fenced,
    /// The pod or the node does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The API server refused (already bound elsewhere, terminating, gated, invalid).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Transient errors until the attempts ran out.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
}

impl BindError {
    /// Every metric label, so each failure count exists (at 0) before the first failure.
    pub const LABELS: [&'static str; 4] = ["fenced", "not_found", "rejected", "gave_up"];

    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            BindError::Fenced => "fenced",
            BindError::NotFound(_) => "not_found",
            BindError::Rejected(_) => "rejected",
            BindError::GaveUp { .. } => "gave_up",
        }
    }
}

/// Whether an API error is worth retrying.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Binds one pod; `Ok` when it is bound to the node (by this call or an earlier attempt).
pub async fn bind_one(
    client: &kube::Client,
    target: &PodTarget,
    node: &str,
    retries: u32,
    shared: &Shared,
) -> Result<(), BindError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(target.name.clone()),
            namespace: Some(target.namespace.clone()),
            uid: Some(target.uid.clone()),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..ObjectReference::default()
        },
    };
    let attempts = retries.max(1);
    let mut last = String::new();
    for attempt in 0..attempts {
        if !shared.leader.is_leader() {
            return Err(BindError::Fenced);
        }
        let r: Result<serde_json::Value, _> = api
            .create_subresource("binding", &target.name, &PostParams::default(), &binding)
            .await;
        match r {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Already bound: by us (an earlier attempt whose answer was lost) is success.
                return match api.get_opt(&target.name).await {
                    Ok(Some(p))
                        if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                            && p.metadata.uid.as_deref() == Some(target.uid.as_str()) =>
                    {
                        Ok(())
                    }
                    _ => Err(BindError::Rejected(s.message)),
                };
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Err(BindError::NotFound(s.message));
            }
            Err(e) if transient(&e) => {
                last = e.to_string();
                let backoff = Duration::from_millis(20u64 << attempt.min(7));
                tokio::time::sleep(backoff).await;
            }
            Err(e) => return Err(BindError::Rejected(e.to_string())),
        }
    }
    Err(BindError::GaveUp { attempts, last })
}

/// Counts the binds of one gang down, for the submission-to-bound latency: it is observed
/// when the last pod of a gang none of whose binds failed is bound.
struct GangTally {
    left: std::sync::atomic::AtomicUsize,
    failed: std::sync::atomic::AtomicBool,
    /// When the gang was handed to the engine whole, seconds since the epoch.
    submitted: Option<f64>,
}

impl GangTally {
    fn new(pods: usize, submitted: Option<phalanx_model::Time>) -> Self {
        GangTally {
            left: pods.into(),
            failed: false.into(),
            submitted: submitted.map(|t| t.0 as f64 / 1000.0),
        }
    }

    fn failed(&self) {
        self.failed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// One pod bound: the submission time once every pod is, if none failed.
    fn bound_one(&self) -> Option<f64> {
        let left = self.left.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        (left == 1 && !self.failed.load(std::sync::atomic::Ordering::Acquire))
            .then_some(self.submitted)
            .flatten()
    }
}

async fn bind_item(
    client: kube::Client,
    item: BindItem,
    job: String,
    retries: u32,
    shared: Arc<Shared>,
    tx: EngineTx,
    gang: Arc<GangTally>,
) {
    let Some(target) = item.target.clone() else {
        gang.failed();
        shared
            .metrics
            .bind_failures
            .with_label_values(&["not_found"])
            .inc();
        let _ = tx
            .send(Msg::Input(Input::BindFailed {
                pod: item.pod,
                uid: String::new(),
                message: "the pod is gone".into(),
            }))
            .await;
        return;
    };
    let started = Instant::now();
    let result = bind_one(&client, &target, &item.node, retries, &shared).await;
    shared
        .metrics
        .bind_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(()) => {
            shared.metrics.pods_bound.inc();
            let now = crate::runner::now().0 as f64 / 1000.0;
            if let Some(created) = item.created {
                shared.metrics.pod_latency.observe((now - created).max(0.0));
            }
            if let Some(since) = gang.bound_one() {
                shared.metrics.gang_latency.observe((now - since).max(0.0));
            }
            let _ = tx
                .send(Msg::Input(Input::Bound {
                    pod: item.pod,
                    uid: target.uid,
                    node: item.node,
                }))
                .await;
        }
        Err(BindError::Fenced) => {
            gang.failed();
            // The replica that holds the lease now owns this gang; report nothing.
            shared
                .metrics
                .bind_failures
                .with_label_values(&["fenced"])
                .inc();
        }
        Err(e) => {
            gang.failed();
            tracing::warn!(job = %job, pod = %target.name, node = %item.node, error = %e, "bind failed");
            shared
                .metrics
                .bind_failures
                .with_label_values(&[e.label()])
                .inc();
            let _ = tx
                .send(Msg::Input(Input::BindFailed {
                    pod: item.pod,
                    uid: target.uid,
                    message: e.to_string(),
                }))
                .await;
        }
    }
}

async fn delete(client: kube::Client, t: PodTarget, evict: bool, shared: Arc<Shared>) {
    if !shared.leader.is_leader() {
        return;
    }
    let api: Api<Pod> = Api::namespaced(client, &t.namespace);
    let result = if evict {
        api.evict(&t.name, &EvictParams::default())
            .await
            .map(|_| ())
    } else {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(t.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        api.delete(&t.name, &dp).await.map(|_| ())
    };
    match result {
        Ok(()) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            tracing::warn!(pod = %t.name, namespace = %t.namespace, error = %e, "could not remove pod")
        }
    }
}

/// Carries out every cycle's actions until `rx` closes. Notices go on to the status writer.
pub async fn run(
    client: kube::Client,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Actions>,
    tx: EngineTx,
    shared: Arc<Shared>,
    concurrency: usize,
    retries: u32,
    notices: tokio::sync::mpsc::UnboundedSender<Notice>,
) {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    for label in BindError::LABELS {
        shared.metrics.bind_failures.with_label_values(&[label]);
    }
    while let Some(actions) = rx.recv().await {
        for n in actions.notices {
            let _ = notices.send(n);
        }
        for order in actions.binds {
            let job = order.job;
            let gang = Arc::new(GangTally::new(order.items.len(), order.submitted));
            for item in order.items {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let (client, shared, tx, job, gang) = (
                    client.clone(),
                    Arc::clone(&shared),
                    tx.clone(),
                    job.clone(),
                    Arc::clone(&gang),
                );
                tokio::spawn(async move {
                    bind_item(client, item, job, retries, shared, tx, gang).await;
                    drop(permit);
                });
            }
        }
        let removals = actions
            .deletes
            .into_iter()
            .map(|t| (t, false))
            .chain(actions.evictions.into_iter().map(|t| (t, true)));
        let client2 = client.clone();
        let shared2 = Arc::clone(&shared);
        let work: Vec<_> = removals
            .map(|(t, evict)| delete(client2.clone(), t, evict, Arc::clone(&shared2)))
            .collect();
        if !work.is_empty() {
            tokio::spawn(async move {
                futures::stream::iter(work)
                    .buffer_unordered(16)
                    .collect::<Vec<()>>()
                    .await;
            });
        }
    }
}
