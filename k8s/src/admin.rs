//! The admin port (axum): what operators and admins read.
//!
//! Always open, as on kube-scheduler's secure port (`--authorization-always-allow-paths`):
//! `/healthz` (the process serves), `/readyz` (200 only after the initial sync: every watcher
//! listed once and the lists applied), `/metrics` (Prometheus text), and the web page (`/` and
//! its assets under `/ui/`, embedded in the binary; the page itself holds no data).
//!
//! The JSON API under `/api/v1/` asks for a Kubernetes identity unless
//! `admin.authentication: false`: a bearer token, checked with a TokenReview, whose user a
//! SubjectAccessReview must allow to `list` (lists) or `get` (one object) `queues` in API group
//! `scheduling.volcano.sh`, the resource these views are about. That is kube-scheduler's
//! delegated authentication and authorization (`k8s.io/apiserver/pkg/authentication/authenticatorfactory`,
//! `.../authorization/authorizerfactory`, v1.34), with its 10-second cache of answers. So
//! Kubernetes RBAC decides who may read queues and jobs here (the chart's
//! `phalanx-queue-viewer` ClusterRole grants it), and nobody manages users in Phalanx.
//!
//! - `GET /api/v1/whoami`: the caller's user name, and whether authentication is on.
//! - `GET /api/v1/queues`: every queue's quotas, allocation, deserved and dominant share,
//!   pending demand, state, jobs and the most common reasons its jobs wait.
//! - `GET /api/v1/jobs[?queue=Q][&state=pending|running|completed|failed]`: jobs with queue,
//!   state, pods, requests, wait, reason, place in line and estimated start; pending first, by
//!   queue and place in line.
//! - `GET /api/v1/jobs/{namespace}/{name}`: one job (a PodGroup's job is its name, a pod without
//!   a group is the job `pod-<pod name>`).
//! - `GET /api/v1/events[?limit=N]`: recent evictions, most recent first.
//!
//! Resource maps are `{resource: integer}` with cpu in millicores and memory in bytes; times are
//! RFC 3339; what is not known is `null`, never a made-up value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use serde_json::{Value, json};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::core::{JobStatus, Published, queue_object, rfc3339};
use crate::runner::Shared;

/// The API group of the resource the admin API's access is checked on.
pub const AUTHZ_GROUP: &str = "scheduling.volcano.sh";
/// The resource the admin API's access is checked on.
pub const AUTHZ_RESOURCE: &str = "queues";
/// How long a TokenReview or SubjectAccessReview answer is reused (kube-scheduler's
/// `--authentication-token-webhook-cache-ttl` and authorization cache default to 10 s).
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(10);
/// Answers cached at most; beyond it, expired answers go first, then refusals.
const AUTH_CACHE_MAX: usize = 4096;

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// A refusal as a Kubernetes `Status` object, as kube-apiserver's (and kube-scheduler's secure
/// port's) filters answer, so kubectl, client-go and kube-rs read its code and message.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let reason: String = status
        .canonical_reason()
        .unwrap_or("Unknown")
        .split([' ', '-'])
        .collect();
    json_response(
        status,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message.into(), "reason": reason, "code": status.as_u16(),
        }),
    )
}

/// When a token was checked, and its user or why not.
type Answer = (Instant, Result<String, Denied>);

/// Checks callers of the JSON API against the Kubernetes API: who they are (TokenReview) and
/// whether they may read queues (SubjectAccessReview).
pub struct Authenticator {
    client: kube::Client,
    /// Per verb and bearer token.
    cache: Mutex<HashMap<String, Answer>>,
}

/// Why a caller was turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Denied {
    /// 401: no identity.
    Unauthenticated(String),
    /// 403: an identity without the right.
    Forbidden(String),
    /// 503: the API server could not be asked (the request is refused: fail closed).
    Unavailable(String),
}

impl Authenticator {
    /// Checks with the API server `client` talks to, as the scheduler's own identity (which
    /// needs `create` on `tokenreviews` and `subjectaccessreviews`: the chart binds
    /// `system:auth-delegator`).
    pub fn new(client: kube::Client) -> Self {
        Authenticator {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The user a request's bearer token belongs to, if it may `verb` queues.
    async fn check(&self, headers: &HeaderMap, verb: &str) -> Result<String, Denied> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme is case-insensitive (RFC 7235), as kube-apiserver reads it.
            .and_then(|v| {
                v.get(..7)
                    .filter(|s| s.eq_ignore_ascii_case("bearer "))
                    .map(|_| &v[7..])
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Denied::Unauthenticated(
                    "this API needs a Kubernetes identity: send Authorization: Bearer <token> \
                     (for example the token of `kubectl create token`)"
                        .into(),
                )
            })?;
        let key = format!("{verb}\u{0}{token}");
        if let Some((at, answer)) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned())
            && at.elapsed() < AUTH_CACHE_TTL
        {
            return answer;
        }
        let answer = self.ask(token, verb).await;
        if !matches!(answer, Err(Denied::Unavailable(_)))
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= AUTH_CACHE_MAX {
                // Expired answers go first, then refusals (a flood of made-up tokens must not
                // push out the people who are let in), and only then everything.
                cache.retain(|_, (at, _)| at.elapsed() < AUTH_CACHE_TTL);
                if cache.len() >= AUTH_CACHE_MAX {
                    cache.retain(|_, (_, answer)| answer.is_ok());
                }
                if cache.len() >= AUTH_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now(), answer.clone()));
        }
        answer
    }

    async fn ask(&self, token: &str, verb: &str) -> Result<String, Denied> {
        let unavailable = |what: &str, e: kube::Error| {
            tracing::warn!(error = %e, "admin API: {what} failed");
            Denied::Unavailable(format!(
                "could not check the caller with the API server ({what}): {e}"
            ))
        };
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = kube::Api::<TokenReview>::all(self.client.clone())
            .create(&Default::default(), &review)
            .await
            .map_err(|e| unavailable("TokenReview", e))?;
        let status = reviewed.status.unwrap_or_default();
        let user = status.user.unwrap_or_default();
        let name = match (status.authenticated, user.username) {
            (Some(true), Some(name)) => name,
            _ => {
                return Err(Denied::Unauthenticated(format!(
                    "the bearer token is not valid{}",
                    status.error.map(|e| format!(": {e}")).unwrap_or_default()
                )));
            }
        };
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(name.clone()),
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    group: Some(AUTHZ_GROUP.into()),
                    resource: Some(AUTHZ_RESOURCE.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = kube::Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&Default::default(), &access)
            .await
            .map_err(|e| unavailable("SubjectAccessReview", e))?;
        let status = reviewed.status.unwrap_or_default();
        if status.allowed {
            Ok(name)
        } else {
            let why = status
                .reason
                .filter(|r| !r.is_empty())
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            Err(Denied::Forbidden(format!(
                "user \"{name}\" may not {verb} {AUTHZ_RESOURCE}.{AUTHZ_GROUP}{why}"
            )))
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
struct AdminState {
    shared: Arc<Shared>,
    auth: Option<Arc<Authenticator>>,
}

/// The caller, as the auth layer found it (`None` with authentication off).
#[derive(Debug, Clone)]
struct Caller(Option<String>);

/// The router. With `auth`, the JSON API checks every caller (see the module docs).
pub fn router(shared: Arc<Shared>, auth: Option<Arc<Authenticator>>) -> Router {
    let state = AdminState { shared, auth };
    let api = Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/queues", get(queues))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/jobs/{namespace}/{name}", get(job))
        .route("/api/v1/events", get(events))
        .route("/api/v1/{*rest}", get(not_found))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/", get(|| asset(ui::INDEX, "text/html; charset=utf-8")))
        .route("/ui/app.js", get(|| asset(ui::APP, "text/javascript")))
        .route("/ui/style.css", get(|| asset(ui::STYLE, "text/css")))
        .merge(api)
        .with_state(state)
        // Outermost last: at most MAX_IN_FLIGHT requests are served at once (others wait their
        // turn), none for longer than REQUEST_TIMEOUT, and no body over MAX_BODY is read.
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(MAX_IN_FLIGHT))
}

/// The longest a request is served: longer is 408 (a TokenReview or SubjectAccessReview that
/// hangs included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests served at once; more wait (the page polls four paths every 2 s per viewer).
pub const MAX_IN_FLIGHT: usize = 256;
/// The largest request body read (the API takes none): more is 413.
pub const MAX_BODY: usize = 16 * 1024;

/// The page and its assets, compiled in: the page works with no network beyond this port.
mod ui {
    pub const INDEX: &str = include_str!("ui/index.html");
    pub const APP: &str = include_str!("ui/app.js");
    pub const STYLE: &str = include_str!("ui/style.css");
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn authorize(State(s): State<AdminState>, mut req: Request, next: Next) -> Response {
    let caller = match &s.auth {
        None => None,
        Some(auth) => {
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return error(StatusCode::METHOD_NOT_ALLOWED, "the admin API is read-only");
            }
            // A list reads many queues; one job reads one object.
            let verb = if req.uri().path().starts_with("/api/v1/jobs/") {
                "get"
            } else {
                "list"
            };
            match auth.check(req.headers(), verb).await {
                Ok(user) => Some(user),
                Err(Denied::Unauthenticated(m)) => {
                    let mut r = error(StatusCode::UNAUTHORIZED, m);
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        header::HeaderValue::from_static("Bearer"),
                    );
                    return r;
                }
                Err(Denied::Forbidden(m)) => return error(StatusCode::FORBIDDEN, m),
                Err(Denied::Unavailable(m)) => return error(StatusCode::SERVICE_UNAVAILABLE, m),
            }
        }
    };
    req.extensions_mut().insert(Caller(caller));
    next.run(req).await
}

async fn metrics(State(s): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.shared.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(s): State<AdminState>) -> Response {
    if s.shared.is_synced() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "initial sync not done").into_response()
    }
}

async fn not_found(Path(rest): Path<String>) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no such API: /api/v1/{rest} (see /api/v1/queues, /api/v1/jobs, /api/v1/events)"),
    )
}

async fn whoami(State(s): State<AdminState>, req: Request) -> Response {
    let user = req.extensions().get::<Caller>().and_then(|c| c.0.clone());
    json_response(
        StatusCode::OK,
        &json!({ "user": user, "authentication": s.auth.is_some() }),
    )
}

async fn queues(State(s): State<AdminState>) -> Response {
    let p = s.shared.view();
    json_response(
        StatusCode::OK,
        &json!({ "queues": p.queues, "configurationError": p.queue_error }),
    )
}

/// The states `?state=` takes, and the phases each means.
fn phases_of(state: &str) -> Option<&'static [&'static str]> {
    Some(match state {
        "pending" => &["Pending", "Inqueue"],
        "running" => &["Running"],
        "completed" => &["Completed"],
        "failed" => &["Failed"],
        _ => return None,
    })
}

/// Whether a job in queue `path` is in the queue a user named: its path, or its Volcano Queue
/// object's name (the path's last segment).
fn in_queue(path: &str, asked: &str) -> bool {
    path == asked || queue_object(path) == asked
}

async fn jobs(State(s): State<AdminState>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(key) = q.keys().find(|k| !matches!(k.as_str(), "queue" | "state")) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown query parameter {key:?}: use queue= and state="),
        );
    }
    let phases = match q.get("state").map(|st| (st, phases_of(st))) {
        None => None,
        Some((_, Some(p))) => Some(p),
        Some((st, None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state={st:?}: use pending, running, completed or failed"),
            );
        }
    };
    let p = s.shared.view();
    let mut list: Vec<(&String, &JobStatus)> = p
        .jobs
        .iter()
        .filter(|(_, j)| phases.is_none_or(|ph| ph.contains(&j.phase)))
        .filter(|(_, j)| q.get("queue").is_none_or(|asked| in_queue(&j.queue, asked)))
        .collect();
    // Pending first, by queue and place in line; then the rest by name.
    list.sort_by(|(an, a), (bn, b)| {
        let key = |j: &JobStatus| {
            let pending = matches!(j.phase, "Pending" | "Inqueue");
            (
                !pending,
                pending.then(|| j.queue.clone()),
                j.position.is_none(),
                j.position,
            )
        };
        key(a).cmp(&key(b)).then(an.cmp(bn))
    });
    let out: Vec<Value> = list.into_iter().map(|(n, j)| job_json(n, j, &p)).collect();
    json_response(StatusCode::OK, &json!({ "jobs": out }))
}

async fn job(State(s): State<AdminState>, Path((ns, name)): Path<(String, String)>) -> Response {
    let p = s.shared.view();
    let key = format!("{ns}/{name}");
    match p.jobs.get(&key) {
        Some(j) => json_response(StatusCode::OK, &job_json(&key, j, &p)),
        None => error(StatusCode::NOT_FOUND, format!("no job {key}")),
    }
}

async fn events(State(s): State<AdminState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => usize::MAX,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("limit={:?} is not a whole number", q["limit"]),
            );
        }
    };
    let p = s.shared.view();
    let list: Vec<&crate::core::EvictionRecord> = p.evictions.iter().take(limit).collect();
    json_response(StatusCode::OK, &json!({ "events": list }))
}

/// Engine time (milliseconds since the epoch) as RFC 3339.
/// One job as the API shows it.
fn job_json(name: &str, j: &JobStatus, p: &Published) -> Value {
    let pending = matches!(j.phase, "Pending" | "Inqueue");
    let now_s = p.now.0 as f64 / 1000.0;
    let created = j
        .created
        .and_then(|c| k8s_openapi::jiff::Timestamp::from_millisecond((c * 1000.0) as i64).ok());
    json!({
        "name": name,
        "namespace": name.split_once('/').map(|(ns, _)| ns),
        "queue": j.queue,
        "state": j.phase,
        "phase": j.phase,
        "pods": {
            "pending": j.pods.pending, "assumed": j.pods.assumed, "bound": j.pods.bound,
            "releasing": j.pods.releasing, "succeeded": j.pods.succeeded, "failed": j.pods.failed,
        },
        "minMember": j.min_member,
        "requests": j.requests,
        "running": j.running,
        "succeeded": j.succeeded,
        "failed": j.failed,
        "created": created.map(|c| c.to_string()),
        "waitSeconds": j.created.filter(|_| pending && p.now.0 > 0).map(|c| (now_s - c).max(0.0)),
        "reason": j.reason.as_ref().map(|(label, message)| json!({"label": label, "message": message})),
        "position": j.position,
        "estimatedStart": j.estimated_start.and_then(|(t, _)| rfc3339(t)),
        "estimateBasis": j.estimated_start.map(|(_, b)| b.as_str()),
    })
}
