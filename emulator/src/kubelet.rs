//! Simulated kubelets, one per Node object, all driven by a single task (like kwok).
//!
//! Each kubelet watches (in-process) for pods bound to its node and takes them through the pod
//! lifecycle:
//!
//! ```text
//!            bound to node                start delay                 phalanx.dev/duration
//!  Pending ───────────────> admit? ──yes──────────────> Running ───────────────────────────> Succeeded | Failed
//!                             │no (does not fit what already runs here)
//!                             └──────> Failed, reason OutOfcpu / OutOfmemory / OutOfnvidia.com/gpu / OutOfpods
//!                                      (or UnexpectedAdmissionError, a fault injected on purpose)
//!  deletionTimestamp set ──(min(grace, stop delay))──> resources released, pod deleted
//!  node NotReady: nothing progresses on it until it is Ready again
//! ```
//!
//! Admission checks only what is already admitted on the node, in the order pods were bound,
//! exactly as a real kubelet does; so a double-booking by two schedulers shows up as a Failed pod.
//!
//! A kubelet is keyed by node name, not by Node object: deleting a Node leaves its pods bound and
//! counted (their timers wait, as on a NotReady node), and a Node re-created under the same name
//! re-registers with every non-terminated pod bound to that name still counted, so a pod bound
//! there that does not fit what is already there is rejected with `OutOf<resource>`. Pods bound
//! to a name before its Node exists are admitted, in binding order, once it does.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::api::set_condition;
use crate::faults::Faults;
use crate::meta::{now_rfc3339, obj_mut};
use crate::quantity::{ResourceMilli, format_milli, parse_list};
use crate::resources::ResourceDef;
use crate::store::{DeleteOptions, EventType, Observed, Store, WatchEvent};

/// Annotation with the seconds a pod runs once started (a float); absent means forever.
pub const DURATION_ANNOTATION: &str = "phalanx.dev/duration";
/// Annotation `failed` makes the pod end Failed instead of Succeeded.
pub const OUTCOME_ANNOTATION: &str = "phalanx.dev/outcome";

/// Kubelet timing.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// From binding to Running.
    pub start_delay: Duration,
    /// Longest time a terminating pod takes to stop (its grace period, capped by this).
    pub stop_delay: Duration,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        Self {
            start_delay: Duration::from_millis(500),
            stop_delay: Duration::from_secs(1),
        }
    }
}

type PodKey = (String, String);

#[derive(Debug, Default)]
struct NodeState {
    /// A Node object of this name exists. A kubelet's accounting outlives its Node object: pods
    /// stay bound to the name when the object is deleted, and a node re-created under that name
    /// re-registers with them still counted, as a real kubelet re-admits the pods bound to it.
    registered: bool,
    labels: BTreeMap<String, String>,
    allocatable: ResourceMilli,
    used: ResourceMilli,
    ready: bool,
    ip: String,
    /// Work that waits for the node to be Ready again.
    deferred: Vec<Timer>,
}

#[derive(Debug)]
struct PodState {
    node: String,
    uid: String,
    requests: ResourceMilli,
    /// `spec.nodeSelector` and required node affinity, checked at admission.
    placement: Placement,
    /// Counted in the node's `used`.
    holds: bool,
    deleting: bool,
}

#[derive(Debug, Clone)]
enum Timer {
    Admit(PodKey, String),
    Start(PodKey, String),
    Finish(PodKey, String, bool),
    Kill(PodKey, String),
}

impl Timer {
    fn key(&self) -> &PodKey {
        match self {
            Timer::Admit(k, _)
            | Timer::Start(k, _)
            | Timer::Finish(k, _, _)
            | Timer::Kill(k, _) => k,
        }
    }
}

struct Kubelets {
    store: Arc<Store>,
    pods_def: Arc<ResourceDef>,
    cfg: KubeletConfig,
    faults: Arc<Faults>,
    nodes: HashMap<String, NodeState>,
    pods: HashMap<PodKey, PodState>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    timers: HashMap<u64, Timer>,
    seq: u64,
    ips: u32,
}

/// The total requests of a pod: the sum over containers (limits stand in for absent requests),
/// or the largest init container if that is more, plus one `pods` slot.
pub fn pod_requests(pod: &Value) -> ResourceMilli {
    let container = |c: &Value| -> ResourceMilli {
        let mut r = parse_list(c.pointer("/resources/requests")).unwrap_or_default();
        for (k, v) in parse_list(c.pointer("/resources/limits")).unwrap_or_default() {
            r.entry(k).or_insert(v);
        }
        r
    };
    let mut total = ResourceMilli::new();
    for c in pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, v) in container(c) {
            *total.entry(k).or_default() += v;
        }
    }
    for c in pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, v) in container(c) {
            let e = total.entry(k).or_default();
            *e = (*e).max(v);
        }
    }
    total.insert("pods".into(), 1000);
    total
}

/// What a pod requires of its node's labels: `spec.nodeSelector` and
/// `requiredDuringSchedulingIgnoredDuringExecution` node affinity.
#[derive(Debug, Clone, Default)]
struct Placement {
    selector: Vec<(String, String)>,
    /// Node selector terms (ORed); `None` when the pod has no required node affinity.
    terms: Option<Vec<Value>>,
}

impl Placement {
    fn of(pod: &Value) -> Self {
        let selector = string_map(pod, "/spec/nodeSelector").into_iter().collect();
        let terms = pod
            .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
            .and_then(Value::as_array)
            .cloned();
        Self { selector, terms }
    }

    /// The kubelet's NodeAffinity admission check.
    fn admits(&self, node: &str, labels: &BTreeMap<String, String>) -> bool {
        if !self.selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
        let Some(terms) = &self.terms else {
            return true;
        };
        terms.iter().any(|term| {
            let exprs = term.get("matchExpressions").and_then(Value::as_array);
            let fields = term.get("matchFields").and_then(Value::as_array);
            if exprs.is_none_or(Vec::is_empty) && fields.is_none_or(Vec::is_empty) {
                return false;
            }
            exprs
                .into_iter()
                .flatten()
                .all(|e| requirement(e, |k| labels.get(k).map(String::as_str)))
                && fields
                    .into_iter()
                    .flatten()
                    .all(|e| requirement(e, |k| (k == "metadata.name").then_some(node)))
        })
    }
}

/// One node selector requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`).
fn requirement<'a>(e: &Value, get: impl Fn(&str) -> Option<&'a str>) -> bool {
    let key = e.get("key").and_then(Value::as_str).unwrap_or("");
    let values: Vec<&str> = e
        .get("values")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let actual = get(key);
    let num = |s: &str| s.parse::<i64>().ok();
    match e.get("operator").and_then(Value::as_str).unwrap_or("") {
        "In" => actual.is_some_and(|a| values.contains(&a)),
        "NotIn" => actual.is_none_or(|a| !values.contains(&a)),
        "Exists" => actual.is_some(),
        "DoesNotExist" => actual.is_none(),
        "Gt" => {
            matches!((actual.and_then(num), values.first().and_then(|v| num(v))), (Some(a), Some(b)) if a > b)
        }
        "Lt" => {
            matches!((actual.and_then(num), values.first().and_then(|v| num(v))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

fn node_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c.get("type") == Some(&json!("Ready"))))
        .is_some_and(|c| c.get("status") == Some(&json!("True")))
}

impl Kubelets {
    fn schedule(&mut self, after: Duration, t: Timer) {
        self.seq += 1;
        self.timers.insert(self.seq, t);
        self.heap.push(Reverse((Instant::now() + after, self.seq)));
    }

    fn release(&mut self, key: &PodKey) {
        if let Some(p) = self.pods.get_mut(key)
            && p.holds
        {
            p.holds = false;
            if let Some(n) = self.nodes.get_mut(&p.node) {
                for (k, v) in &p.requests {
                    *n.used.entry(k.clone()).or_default() -= v;
                }
            }
        }
    }

    fn observe(&mut self, o: Observed) {
        match o {
            Observed::Pod(ev) => self.on_pod(&ev),
            Observed::Node(ev) => self.on_node(&ev),
        }
    }

    fn on_node(&mut self, ev: &WatchEvent) {
        let name = ev.object.name.clone();
        if ev.kind == EventType::Deleted {
            // The pods bound here stay bound (until PodGC deletes them); they keep their
            // resources and their timers wait, as with a kubelet that stopped reporting.
            let in_use = self.pods.values().any(|p| p.node == name);
            match self.nodes.get_mut(&name) {
                Some(n) if in_use => {
                    n.registered = false;
                    n.ready = false;
                }
                _ => {
                    self.nodes.remove(&name);
                }
            }
            return;
        }
        let v = ev.object.value();
        let ready = node_ready(&v);
        let allocatable = parse_list(v.pointer("/status/allocatable")).unwrap_or_default();
        let ip = v
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|x| x.get("type") == Some(&json!("InternalIP")))
            })
            .and_then(|x| x.get("address")?.as_str())
            .unwrap_or("")
            .to_string();
        let n = self.nodes.entry(name).or_default();
        n.registered = true;
        n.allocatable = allocatable;
        n.labels = string_map(&v, "/metadata/labels");
        n.ip = ip;
        let was_ready = n.ready;
        n.ready = ready;
        if ready && !was_ready {
            for t in std::mem::take(&mut n.deferred) {
                self.schedule(Duration::ZERO, t);
            }
        }
    }

    fn on_pod(&mut self, ev: &WatchEvent) {
        let key = (ev.object.namespace.clone(), ev.object.name.clone());
        if ev.kind == EventType::Deleted {
            self.release(&key);
            self.pods.remove(&key);
            return;
        }
        let node = ev.object.field("spec.nodeName");
        if node.is_empty() {
            return;
        }
        let uid = ev.object.field("metadata.uid");
        let deleting = !ev.object.field("metadata.deletionTimestamp").is_empty();
        let terminal = matches!(
            ev.object.field("status.phase").as_str(),
            "Succeeded" | "Failed"
        );
        if let Some((known_uid, was_deleting)) =
            self.pods.get(&key).map(|p| (p.uid.clone(), p.deleting))
        {
            if known_uid == uid {
                if terminal {
                    self.release(&key);
                }
                if deleting && !was_deleting {
                    let grace = ev
                        .object
                        .value()
                        .pointer("/metadata/deletionGracePeriodSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let delay = Duration::from_secs(grace).min(self.cfg.stop_delay);
                    if let Some(p) = self.pods.get_mut(&key) {
                        p.deleting = true;
                    }
                    self.schedule(delay, Timer::Kill(key, uid));
                }
                return;
            }
            // Same name, new object: forget the old one.
            self.release(&key);
            self.pods.remove(&key);
        }
        if terminal {
            return;
        }
        // A pod bound to a name with no Node object (deleted, or not created yet) waits for a
        // kubelet to register under that name, which then admits it in binding order.
        self.nodes.entry(node.clone()).or_default();
        let pod = ev.object.value();
        let state = PodState {
            node: node.clone(),
            uid: uid.clone(),
            requests: pod_requests(&pod),
            placement: Placement::of(&pod),
            holds: false,
            deleting,
        };
        if deleting {
            self.pods.insert(key.clone(), state);
            self.schedule(Duration::ZERO, Timer::Kill(key, uid));
            return;
        }
        // Admission runs as a timer so that a NotReady node defers it, in binding order.
        self.pods.insert(key.clone(), state);
        self.schedule(Duration::ZERO, Timer::Admit(key, uid));
    }

    fn admit(&mut self, key: PodKey, uid: String) {
        let Some(state) = self.pods.get(&key) else {
            return;
        };
        if state.uid != uid || state.deleting || state.holds {
            return;
        }
        let node = state.node.clone();
        let Some(n) = self.nodes.get_mut(&node) else {
            return;
        };
        if !state.placement.admits(&node, &n.labels) {
            let message = "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector";
            self.reject(&key, &uid, &node, "NodeAffinity", message);
            return;
        }
        if self.faults.admission_rejected() {
            let message = "Allocate failed due to an injected fault, which is unexpected";
            self.reject(&key, &uid, &node, "UnexpectedAdmissionError", message);
            return;
        }
        let short = state.requests.iter().find_map(|(res, req)| {
            let cap = n.allocatable.get(res).copied().unwrap_or(0);
            let used = n.used.get(res).copied().unwrap_or(0);
            (*req > 0 && used + req > cap).then(|| (res.clone(), *req, used, cap))
        });
        if let Some((res, req, used, cap)) = short {
            let fmt = |m: i128| {
                if res == "cpu" {
                    m.to_string()
                } else {
                    format_milli(m)
                }
            };
            let reason = format!("OutOf{res}");
            let message = format!(
                "Pod was rejected: Node didn't have enough resource: {res}, requested: {}, used: {}, capacity: {}",
                fmt(req),
                fmt(used),
                fmt(cap)
            );
            self.reject(&key, &uid, &node, &reason, &message);
            return;
        }
        for (k, v) in &state.requests {
            *n.used.entry(k.clone()).or_default() += v;
        }
        if let Some(p) = self.pods.get_mut(&key) {
            p.holds = true;
        }
        self.schedule(self.cfg.start_delay, Timer::Start(key, uid));
    }

    /// Refuses a pod at admission, as kubelet does: `Failed` with the reason and message, and a
    /// Warning Event saying why.
    fn reject(&self, key: &PodKey, uid: &str, node: &str, reason: &str, message: &str) {
        tracing::info!(pod = %format!("{}/{}", key.0, key.1), node = %node, %reason, "kubelet rejected pod");
        self.update_status(key, uid, |pod| {
            let st = obj_mut(pod, "status");
            st.insert("phase".into(), json!("Failed"));
            st.insert("reason".into(), json!(reason));
            st.insert("message".into(), json!(message));
            st.insert("startTime".into(), json!(now_rfc3339()));
        });
        self.warn(key, uid, node, reason, message);
    }

    /// Records a Warning Event about a pod, as kubelet does when it rejects one, so
    /// `kubectl describe pod` and `kubectl get events` show why.
    fn warn(&self, key: &PodKey, uid: &str, node: &str, reason: &str, message: &str) {
        let Some(events) = self.store.resolve("", "v1", "events") else {
            return;
        };
        let now = now_rfc3339();
        let name = format!("{}.{}", key.1, self.store.uids().name_suffix());
        let ev = json!({
            "metadata": {"name": name, "namespace": key.0},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": key.0,
                               "name": key.1, "uid": uid},
            "reason": reason, "message": message, "type": "Warning", "count": 1,
            "source": {"component": "kubelet", "host": node},
            "reportingComponent": "kubelet", "reportingInstance": node,
            "firstTimestamp": now, "lastTimestamp": now,
        });
        if let Err(e) = self.store.create(&events, &key.0, ev) {
            tracing::debug!(error = %e, "kubelet event not recorded");
        }
    }

    fn update_status(&self, key: &PodKey, uid: &str, f: impl FnOnce(&mut Value)) {
        let r = self.store.modify(&self.pods_def, &key.0, &key.1, |pod| {
            if pod.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
                return Err(crate::status::ApiError::Conflict {
                    resource: "pods".into(),
                    name: key.1.clone(),
                    message: "uid changed".into(),
                });
            }
            f(pod);
            Ok(())
        });
        if let Err(e) = r {
            tracing::debug!(pod = %key.1, error = %e, "kubelet status update skipped");
        }
    }

    fn fire(&mut self, t: Timer) {
        let key = t.key().clone();
        let Some(p) = self.pods.get(&key) else { return };
        let node_ready = self
            .nodes
            .get(&p.node)
            .is_some_and(|n| n.registered && n.ready);
        if !node_ready {
            if let Some(n) = self.nodes.get_mut(&p.node) {
                n.deferred.push(t);
            }
            return;
        }
        match t {
            Timer::Admit(_, uid) => self.admit(key, uid),
            Timer::Start(_, uid) => {
                if p.uid != uid || p.deleting {
                    return;
                }
                self.ips += 1;
                let ip = format!(
                    "10.{}.{}.{}",
                    64 + (self.ips >> 16) % 64,
                    (self.ips >> 8) & 255,
                    self.ips & 255
                );
                let host_ip = self
                    .nodes
                    .get(&p.node)
                    .map(|n| n.ip.clone())
                    .unwrap_or_default();
                let mut run_for = None;
                let mut ok = true;
                self.update_status(&key, &uid, |pod| {
                    let now = now_rfc3339();
                    let ann = pod.pointer("/metadata/annotations");
                    run_for = ann.and_then(|a| a.get(DURATION_ANNOTATION)).and_then(|d| {
                        d.as_str()
                            .and_then(|s| s.parse::<f64>().ok())
                            .or(d.as_f64())
                    });
                    ok = ann
                        .and_then(|a| a.get(OUTCOME_ANNOTATION))
                        .and_then(Value::as_str)
                        != Some("failed");
                    let statuses: Vec<Value> = pod
                        .pointer("/spec/containers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .map(|(i, c)| {
                            json!({
                                "name": c.get("name").cloned().unwrap_or(json!("main")),
                                "image": c.get("image").cloned().unwrap_or(json!("")),
                                "imageID": "", "containerID": format!("emulated://{uid}-{i}"),
                                "ready": true, "started": true, "restartCount": 0,
                                "state": {"running": {"startedAt": now}},
                            })
                        })
                        .collect();
                    for c in [
                        "Initialized",
                        "PodReadyToStartContainers",
                        "ContainersReady",
                        "Ready",
                    ] {
                        set_condition(pod, c, "True", None);
                    }
                    let st = obj_mut(pod, "status");
                    st.insert("phase".into(), json!("Running"));
                    st.insert("startTime".into(), json!(now));
                    st.insert("podIP".into(), json!(ip));
                    st.insert("podIPs".into(), json!([{"ip": ip}]));
                    st.insert("hostIP".into(), json!(host_ip));
                    st.insert("containerStatuses".into(), json!(statuses));
                });
                if let Some(secs) = run_for.filter(|s| s.is_finite() && *s >= 0.0) {
                    self.schedule(Duration::from_secs_f64(secs), Timer::Finish(key, uid, ok));
                }
            }
            Timer::Finish(_, uid, ok) => {
                if p.uid != uid || p.deleting {
                    return;
                }
                self.release(&key);
                self.update_status(&key, &uid, |pod| {
                    let now = now_rfc3339();
                    let (code, reason) = if ok { (0, "Completed") } else { (1, "Error") };
                    if let Some(Value::Array(cs)) = pod.pointer_mut("/status/containerStatuses") {
                        for c in cs {
                            let started = c.pointer("/state/running/startedAt").cloned();
                            c["ready"] = json!(false);
                            c["started"] = json!(false);
                            c["state"] = json!({"terminated": {
                                "exitCode": code, "reason": reason,
                                "startedAt": started, "finishedAt": now,
                            }});
                        }
                    }
                    for c in ["ContainersReady", "Ready"] {
                        set_condition(pod, c, "False", Some("PodCompleted"));
                    }
                    let phase = if ok { "Succeeded" } else { "Failed" };
                    obj_mut(pod, "status").insert("phase".into(), json!(phase));
                });
            }
            Timer::Kill(_, uid) => {
                if p.uid != uid {
                    return;
                }
                self.release(&key);
                let opts = DeleteOptions {
                    grace: Some(0),
                    uid: Some(uid),
                    rv: None,
                };
                if let Err(e) = self.store.delete(&self.pods_def, &key.0, &key.1, &opts) {
                    tracing::debug!(pod = %key.1, error = %e, "kubelet final delete skipped");
                }
            }
        }
    }
}

/// Starts the simulated kubelets for every Node in `store`, now and later; `faults` says which
/// admissions fail on purpose.
pub fn spawn(store: Arc<Store>, cfg: KubeletConfig, faults: Arc<Faults>) -> JoinHandle<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    store.set_observer(tx);
    let pods_def = store
        .resolve("", "v1", "pods")
        .expect("pods are a built-in resource");
    let mut k = Kubelets {
        store,
        pods_def,
        cfg,
        faults,
        nodes: HashMap::new(),
        pods: HashMap::new(),
        heap: BinaryHeap::new(),
        timers: HashMap::new(),
        seq: 0,
        ips: 0,
    };
    tokio::spawn(async move {
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            let next = k.heap.peek().map_or(far, |Reverse((t, _))| *t);
            tokio::select! {
                ev = rx.recv() => {
                    let Some(ev) = ev else { return };
                    k.observe(ev);
                    // Drain what is already queued before looking at timers again.
                    while let Ok(ev) = rx.try_recv() {
                        k.observe(ev);
                    }
                }
                _ = sleep_until(next) => {
                    let now = Instant::now();
                    while let Some(Reverse((t, id))) = k.heap.peek().copied() {
                        if t > now { break; }
                        k.heap.pop();
                        if let Some(timer) = k.timers.remove(&id) {
                            k.fire(timer);
                        }
                    }
                }
            }
        }
    })
}

/// The string-valued object at `pointer` in `v` (labels, a nodeSelector) as a map; empty when
/// absent. Non-string values read as "".
fn string_map(v: &Value, pointer: &str) -> BTreeMap<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_follows_node_selector_and_required_affinity() {
        let labels: BTreeMap<String, String> = [("gpu", "a100"), ("zone", "z1"), ("cores", "64")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pod = |spec: Value| Placement::of(&json!({ "spec": spec }));
        assert!(pod(json!({})).admits("n1", &labels));
        assert!(pod(json!({"nodeSelector": {"gpu": "a100"}})).admits("n1", &labels));
        assert!(!pod(json!({"nodeSelector": {"gpu": "h100"}})).admits("n1", &labels));
        let affinity = |exprs: Value| {
            pod(
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": exprs}]}}}}),
            )
        };
        assert!(
            affinity(json!([{"key": "zone", "operator": "In", "values": ["z1", "z2"]}]))
                .admits("n1", &labels)
        );
        assert!(
            !affinity(json!([{"key": "zone", "operator": "NotIn", "values": ["z1"]}]))
                .admits("n1", &labels)
        );
        assert!(
            affinity(json!([{"key": "cores", "operator": "Gt", "values": ["32"]}]))
                .admits("n1", &labels)
        );
        assert!(!affinity(json!([{"key": "spot", "operator": "Exists"}])).admits("n1", &labels));
        assert!(
            affinity(json!([{"key": "spot", "operator": "DoesNotExist"}])).admits("n1", &labels)
        );
    }
}
