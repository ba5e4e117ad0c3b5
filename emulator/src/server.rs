//! The HTTP server: routing to discovery, the REST verbs and the emulator's own admin endpoints,
//! fault injection in front of them, and startup (namespaces, shipped CRDs, fake nodes, kubelets,
//! pod garbage collection).
//!
//! Admin endpoints (not Kubernetes API, under `/emulator/`):
//! `GET|PUT /emulator/faults` (a [`FaultConfig`] as JSON), `POST /emulator/compact` (forces 410
//! Gone on every older resourceVersion), `POST /emulator/drop-watches`,
//! `POST /emulator/nodes/{name}/not-ready` and `.../ready`, `GET /emulator/stats`,
//! `GET /emulator/audit` (the [`crate::audit::Journal`]). They, the
//! health endpoints, `/version`, discovery and OpenAPI are open; requests to resource URLs are
//! checked by [`Auth`] when users are configured ([`EmulatorConfig::tokens`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::serve::ListenerExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{self, Query, Route, error_response, json_response};
use crate::audit::Audit;
use crate::auth::{Auth, AuthError, TokenUser};
use crate::faults::{FaultConfig, Faults};
use crate::kubelet::{self, KubeletConfig};
use crate::meta::{now_rfc3339, obj_mut};
use crate::podgc::PodGcConfig;
use crate::quantity::parse_milli;
use crate::resources::{builtins, shipped_crds};
use crate::status::ApiError;
use crate::store::{Store, StoreConfig};

/// Startup failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// A node shape is malformed.
    #[error(
        "invalid node shape {0:?}: expected RESOURCE=QUANTITY,... e.g. cpu=32,memory=256Gi,nvidia.com/gpu=8"
    )]
    Shape(String),
    /// Creating a startup object failed.
    #[error("creating startup objects: {0}")]
    Seed(#[from] ApiError),
    /// The users are inconsistent.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// The capacity of a fake node, as a resource list (`cpu=32,memory=256Gi,pods=110`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeShape(pub BTreeMap<String, String>);

impl Default for NodeShape {
    fn default() -> Self {
        Self::parse("cpu=32,memory=256Gi,pods=110").expect("valid default shape")
    }
}

impl NodeShape {
    /// Parses `RESOURCE=QUANTITY,...`; `pods` defaults to 110.
    pub fn parse(s: &str) -> Result<Self, ServerError> {
        let mut m = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| ServerError::Shape(s.to_string()))?;
            parse_milli(v).map_err(|_| ServerError::Shape(s.to_string()))?;
            m.insert(k.trim().to_string(), v.trim().to_string());
        }
        if m.is_empty() {
            return Err(ServerError::Shape(s.to_string()));
        }
        m.entry("pods".into()).or_insert_with(|| "110".into());
        Ok(Self(m))
    }
}

/// Everything needed to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Number of fake nodes created at startup.
    pub nodes: usize,
    /// Node shapes, assigned round-robin.
    pub shapes: Vec<NodeShape>,
    /// Node name prefix (`node-00001`).
    pub node_prefix: String,
    /// More Node objects to create at startup (from a trace's `node` records).
    pub extra_nodes: Vec<Value>,
    /// Kubelet timing.
    pub kubelet: KubeletConfig,
    /// Store tuning (watch history window).
    pub store: StoreConfig,
    /// Initial faults.
    pub faults: FaultConfig,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Watch timeout when the client sends no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// How long pods stay on a NotReady node before they are evicted (the taint manager's
    /// default toleration of `node.kubernetes.io/unreachable` is 300 s); `None` never evicts.
    pub not_ready_eviction: Option<Duration>,
    /// Pod garbage collection (orphaned pods after 40 s, terminated pods over 12500), as
    /// kube-controller-manager's PodGC does.
    pub pod_gc: PodGcConfig,
    /// Users and their bearer tokens (`--token`). Empty: no request is checked. Otherwise
    /// requests to resource URLs need a known token and a `view` user may only read (see
    /// [`crate::auth`]).
    pub tokens: Vec<TokenUser>,
    /// The leader Lease (`namespace`, `name`) every bind is judged against in the audit.
    pub audit_lease: Option<(String, String)>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            nodes: 0,
            shapes: vec![NodeShape::default()],
            node_prefix: "node-".into(),
            extra_nodes: Vec::new(),
            kubelet: KubeletConfig::default(),
            store: StoreConfig::default(),
            faults: FaultConfig::default(),
            bookmark_interval: Duration::from_secs(10),
            default_watch_timeout: Duration::from_secs(1800),
            not_ready_eviction: Some(Duration::from_secs(300)),
            pod_gc: PodGcConfig::default(),
            tokens: Vec::new(),
            audit_lease: None,
        }
    }
}

/// State shared by all requests.
#[derive(Debug)]
pub struct AppState {
    /// The objects.
    pub store: Arc<Store>,
    /// The fault injector.
    pub faults: Arc<Faults>,
    /// The record of binds, pod ends and leader leases.
    pub audit: Arc<Audit>,
    /// `host:port` advertised in `/api`.
    pub advertise: String,
    /// Bookmark interval.
    pub bookmark_interval: Duration,
    /// Default watch timeout.
    pub default_watch_timeout: Duration,
    /// Eviction delay for pods on NotReady nodes.
    pub not_ready_eviction: Option<Duration>,
    /// The users, and who may do what.
    pub auth: Auth,
}

/// A running emulator. Dropping it does not stop it; call [`RunningEmulator::shutdown`].
#[derive(Debug)]
pub struct RunningEmulator {
    /// The bound address.
    pub addr: SocketAddr,
    /// Shared state, for in-process tests and benchmarks.
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    kubelets: JoinHandle<()>,
    pod_gc: Option<JoinHandle<()>>,
    audit: JoinHandle<()>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and the kubelets.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.state.faults.drop_all_watches();
        self.kubelets.abort();
        self.audit.abort();
        if let Some(gc) = &self.pod_gc {
            gc.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
        self.server.abort();
    }

    /// A kubeconfig for this emulator with every right: the first `admin` user's token, or, with
    /// no users configured, a placeholder token nothing checks. `None` when users are configured
    /// but none is `admin`.
    pub fn kubeconfig(&self) -> Option<String> {
        let auth = &self.state.auth;
        if !auth.enabled() {
            return Some(kubeconfig_yaml(
                &self.url(),
                "phalanx-emulator",
                "phalanx-emulator",
            ));
        }
        auth.first_admin()
            .map(|u| kubeconfig_yaml(&self.url(), &u.user, &u.token))
    }

    /// A kubeconfig whose user is `user`, with that user's first token; `None` when no token
    /// belongs to `user`.
    pub fn kubeconfig_for(&self, user: &str) -> Option<String> {
        self.state
            .auth
            .user(user)
            .map(|u| kubeconfig_yaml(&self.url(), &u.user, &u.token))
    }

    /// Waits until the server stops (it never does on its own).
    pub async fn wait(mut self) {
        let _ = (&mut self.server).await;
    }
}

/// A kubeconfig for the insecure loopback server at `server` (`http://127.0.0.1:PORT`), whose
/// user `user` sends the bearer token `token`; readable by kubectl, client-go and kube-rs.
pub fn kubeconfig_yaml(server: &str, user: &str, token: &str) -> String {
    // JSON strings are YAML strings: quoting keeps any user name or token one scalar.
    let (user, token) = (json!(user), json!(token));
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: phalanx-emulator
  cluster:
    server: {server}
users:
- name: {user}
  user:
    token: {token}
contexts:
- name: phalanx-emulator
  context:
    cluster: phalanx-emulator
    user: {user}
    namespace: default
current-context: phalanx-emulator
"
    )
}

/// A Node object as a kubelet registers it.
pub fn node_object(name: &str, shape: &NodeShape, index: usize) -> Value {
    let now = now_rfc3339();
    let cond = |t: &str, s: &str, reason: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": "emulated",
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "type": "phalanx-emulator",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": {
            "capacity": shape.0, "allocatable": shape.0,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID"),
                cond("Ready", "True", "KubeletReady"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": format!("10.{}.{}.{}", index >> 16 & 63, index >> 8 & 255, index & 255)},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": format!("v{}.{}.0-phalanx-emulator", api::KUBE_VERSION.0, api::KUBE_VERSION.1),
                "operatingSystem": "linux", "architecture": "amd64",
                "containerRuntimeVersion": "emulated://0",
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                "osImage": "phalanx emulator", "kubeProxyVersion": "",
            },
            "phase": "Running",
        },
    })
}

/// Starts the emulator: binds, seeds namespaces, CRDs and nodes, starts the kubelets and serves.
pub async fn start(cfg: EmulatorConfig) -> Result<RunningEmulator, ServerError> {
    let auth = Auth::new(cfg.tokens.clone())?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let store = Arc::new(Store::new(cfg.store.clone(), builtins()));
    let faults = Arc::new(Faults::new(cfg.faults.clone()));
    let kubelets = kubelet::spawn(store.clone(), cfg.kubelet.clone(), faults.clone());
    let audit = Arc::new(Audit::new(cfg.audit_lease.clone()));
    let audit_task = crate::audit::spawn(store.clone(), audit.clone());
    let state = Arc::new(AppState {
        store: store.clone(),
        faults,
        audit,
        advertise: addr.to_string(),
        bookmark_interval: cfg.bookmark_interval,
        default_watch_timeout: cfg.default_watch_timeout,
        not_ready_eviction: cfg.not_ready_eviction,
        auth,
    });
    seed(&state, &cfg)?;
    let pod_gc = crate::podgc::spawn(store.clone(), cfg.pod_gc.clone());
    let app = Router::new().fallback(dispatch).with_state(state.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        // Watch events are small writes; without TCP_NODELAY, Nagle's algorithm and the
        // client's delayed ACK hold them for up to 40 ms.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "emulator server stopped");
        }
    });
    tracing::info!(%addr, nodes = cfg.nodes, "phalanx emulator serving");
    Ok(RunningEmulator {
        addr,
        state,
        stop: Some(stop),
        server,
        kubelets,
        pod_gc,
        audit: audit_task,
    })
}

fn seed(state: &AppState, cfg: &EmulatorConfig) -> Result<(), ServerError> {
    let store = &state.store;
    let ns_def = store.resolve("", "v1", "namespaces").expect("built in");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        api::create(state, &ns_def, "", json!({"metadata": {"name": ns}}))?;
    }
    let crd_def = store
        .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("built in");
    for crd in shipped_crds() {
        api::create(state, &crd_def, "", crd)?;
    }
    let node_def = store.resolve("", "v1", "nodes").expect("built in");
    let shapes = if cfg.shapes.is_empty() {
        vec![NodeShape::default()]
    } else {
        cfg.shapes.clone()
    };
    for i in 0..cfg.nodes {
        let name = format!("{}{:05}", cfg.node_prefix, i + 1);
        let mut node = node_object(&name, &shapes[i % shapes.len()], i + 1);
        if shapes.len() > 1 {
            obj_mut(&mut node, "metadata");
            node["metadata"]["labels"]["phalanx.dev/node-shape"] =
                json!((i % shapes.len()).to_string());
        }
        store.create(&node_def, "", node)?;
    }
    for node in &cfg.extra_nodes {
        store.create(&node_def, "", node.clone())?;
    }
    Ok(())
}

/// True when the pod tolerates `node.kubernetes.io/unreachable:NoExecute` forever.
fn tolerates_unreachable(pod: &Value) -> bool {
    pod.pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (key == "node.kubernetes.io/unreachable" || (key.is_empty() && op == "Exists"))
                && (effect.is_empty() || effect == "NoExecute")
                && t.get("tolerationSeconds").is_none_or(Value::is_null)
        })
}

/// Evicts the pods of a node that is still NotReady after the eviction delay, as the taint
/// manager does: a `DisruptionTarget` condition (reason `DeletionByTaintManager`), then a
/// graceful delete, which the node's (down) kubelet completes only once the node
/// is back, so the pods stay Terminating meanwhile, as in a real cluster.
fn schedule_not_ready_eviction(state: Arc<AppState>, node: String) {
    let Some(delay) = state.not_ready_eviction else {
        return;
    };
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let nodes = state.store.resolve("", "v1", "nodes").expect("built in");
        let still_down = state.store.get(&nodes, "", &node).is_ok_and(|n| {
            n.value()
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .is_some_and(|c| c["status"] != "True")
        });
        if !still_down {
            return;
        }
        let pods = state.store.resolve("", "v1", "pods").expect("built in");
        for p in state.store.all("", "pods") {
            if p.field("spec.nodeName") != node
                || matches!(p.field("status.phase").as_str(), "Succeeded" | "Failed")
                || tolerates_unreachable(&p.value())
            {
                continue;
            }
            tracing::info!(pod = %format!("{}/{}", p.namespace, p.name), node = %node, "evicting pod from NotReady node");
            // As upstream's taint eviction controller (`addConditionAndDeletePod`,
            // pkg/controller/tainteviction/taint_eviction.go): the pod is marked disrupted
            // first, so whoever sees it go knows it was evicted, not done.
            let _ = state.store.modify(&pods, &p.namespace, &p.name, |pod| {
                api::set_condition(
                    pod,
                    "DisruptionTarget",
                    "True",
                    Some("DeletionByTaintManager"),
                );
                Ok(())
            });
            let _ = state
                .store
                .delete(&pods, &p.namespace, &p.name, &Default::default());
        }
    });
}

/// Sets a node's Ready condition and the matching `unreachable` taints, as the node lifecycle
/// controller does when a kubelet stops reporting; pods that stay on a NotReady node past the
/// eviction delay are evicted.
pub fn set_node_ready(state: &Arc<AppState>, name: &str, ready: bool) -> Result<(), ApiError> {
    let nodes = state.store.resolve("", "v1", "nodes").expect("built in");
    state.store.modify(&nodes, "", name, |node| {
        let (status, reason) = if ready {
            ("True", "KubeletReady")
        } else {
            ("Unknown", "NodeStatusUnknown")
        };
        api::set_condition(node, "Ready", status, Some(reason));
        let spec = obj_mut(node, "spec");
        let mut taints: Vec<Value> = spec
            .get("taints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        taints.retain(|t| t.get("key") != Some(&json!("node.kubernetes.io/unreachable")));
        if !ready {
            for effect in ["NoSchedule", "NoExecute"] {
                taints.push(json!({"key": "node.kubernetes.io/unreachable", "effect": effect, "timeAdded": now_rfc3339()}));
            }
        }
        if taints.is_empty() {
            spec.remove("taints");
        } else {
            spec.insert("taints".into(), json!(taints));
        }
        Ok(())
    })?;
    if !ready {
        schedule_not_ready_eviction(state.clone(), name.to_string());
    }
    Ok(())
}

async fn admin(
    state: &Arc<AppState>,
    method: &axum::http::Method,
    path: &str,
    body: &[u8],
) -> Option<Response> {
    use axum::http::Method;
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ok = || json_response(200, &json!({"status": "ok"}));
    Some(match (method, segs.as_slice()) {
        (&Method::GET, ["healthz" | "livez" | "readyz", ..]) => Response::new(Body::from("ok")),
        (&Method::GET, ["emulator", "audit"]) => {
            json_response(200, &json!(state.audit.snapshot(state.faults.injected())))
        }
        (&Method::GET, ["emulator", "faults"]) => json_response(200, &json!(state.faults.config())),
        (&Method::PUT | &Method::POST, ["emulator", "faults"]) => {
            match serde_json::from_slice(body) {
                Ok(cfg) => {
                    state.faults.set_config(cfg);
                    json_response(200, &json!(state.faults.config()))
                }
                Err(e) => error_response(&ApiError::BadRequest(e.to_string())),
            }
        }
        (&Method::POST, ["emulator", "compact"]) => {
            state.store.compact();
            ok()
        }
        (&Method::POST, ["emulator", "drop-watches"]) => {
            state.faults.drop_all_watches();
            ok()
        }
        (&Method::POST, ["emulator", "nodes", name, which @ ("ready" | "not-ready")]) => {
            match set_node_ready(state, name, *which == "ready") {
                Ok(()) => ok(),
                Err(e) => error_response(&e),
            }
        }
        (&Method::GET, ["emulator", "stats"]) => {
            let counts: BTreeMap<String, usize> = state
                .store
                .resources()
                .iter()
                .map(|r| (r.qualified(), state.store.all(&r.group, &r.plural).len()))
                .collect();
            json_response(
                200,
                &json!({"resourceVersion": state.store.current_rv(), "objects": counts}),
            )
        }
        _ => return None,
    })
}

async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::BadRequest(e.to_string())),
    };
    let path = parts.uri.path().to_string();
    if let Some(r) = admin(&state, &parts.method, &path, &body).await {
        return r;
    }
    if parts.method == axum::http::Method::GET
        && let Some(r) = crate::openapi::serve(
            &state,
            &path,
            parts
                .headers
                .get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        )
    {
        return r;
    }
    let route = api::route(&state, &path);
    if let Some(r) = api::discovery(&state, &route) {
        return r;
    }
    let Route::Object(target) = route else {
        return error_response(&ApiError::NoSuchPath);
    };
    let query = Query::parse(parts.uri.query());
    let (specific, general) = api::verbs(&parts.method, &target, &query);
    // Authentication and authorization come first, as in kube-apiserver's handler chain.
    let authz_verb = match general {
        "other" => parts.method.as_str().to_ascii_lowercase(),
        v => v.to_string(),
    };
    if let Err(e) = state.auth.check(&parts.headers, &authz_verb, &target) {
        tracing::debug!(verb = %authz_verb, path = %path, code = e.code(), "request refused");
        return error_response(&e);
    }
    let resource = target.res.qualified();
    let (delay, fault) = state.faults.before(
        &[specific, general],
        (&resource, target.name.as_deref().unwrap_or("")),
    );
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some(e) = fault {
        tracing::debug!(verb = specific, path = %path, fault = e.label(), "injected fault");
        return error_response(&e);
    }
    match api::handle(
        state.clone(),
        parts.method.clone(),
        target,
        query,
        parts.headers,
        body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(method = %parts.method, path = %path, code = e.code(), "request failed");
            error_response(&e)
        }
    }
}
