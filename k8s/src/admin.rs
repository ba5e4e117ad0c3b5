//! The admin API (axum): `/metrics` (Prometheus text), `/healthz` (the process serves),
//! `/readyz` (200 only after the initial sync: every watcher listed once and the lists applied),
//! and read-only JSON: `/api/v1/queues` (every queue's quotas, allocation, deserved share,
//! pending and running gangs, the most common reasons its gangs wait) and
//! `/api/v1/jobs/{namespace}/{name}` (one job's state and, when pending, why; a PodGroup's job is
//! its name, a pod without a group is the job `pod-<pod name>`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::runner::Shared;

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// The router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/queues", get(queues))
        .route("/api/v1/jobs/{namespace}/{name}", get(job))
        .with_state(shared)
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    if s.is_synced() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "initial sync not done").into_response()
    }
}

async fn queues(State(s): State<Arc<Shared>>) -> Response {
    let p = s.view();
    json_response(
        StatusCode::OK,
        &json!({ "queues": p.queues, "configurationError": p.queue_error }),
    )
}

async fn job(State(s): State<Arc<Shared>>, Path((ns, name)): Path<(String, String)>) -> Response {
    let p = s.view();
    let key = format!("{ns}/{name}");
    let Some(j) = p.jobs.get(&key) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": format!("no job {key}") }),
        );
    };
    json_response(
        StatusCode::OK,
        &json!({
            "name": key,
            "queue": j.queue,
            "phase": j.phase,
            "pods": {
                "pending": j.pods.pending, "assumed": j.pods.assumed, "bound": j.pods.bound,
                "releasing": j.pods.releasing, "succeeded": j.pods.succeeded, "failed": j.pods.failed,
            },
            "running": j.running,
            "succeeded": j.succeeded,
            "failed": j.failed,
            "reason": j.reason.as_ref().map(|(label, message)| json!({"label": label, "message": message})),
        }),
    )
}
