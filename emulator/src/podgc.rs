//! The pod garbage collector of kube-controller-manager (PodGC), the parts a scheduler's tests
//! can observe: orphaned pods and the terminated-pod threshold.
//!
//! Modelled on upstream `pkg/controller/podgc/gc_controller.go` (kubernetes/kubernetes):
//!
//! ```text
//!  every period (upstream gcCheckPeriod, 20 s):
//!    terminated pods (phase not Pending/Running/Unknown) > threshold (default 12500, 0 = off)
//!        -> delete the excess, Evicted ones first, then oldest creationTimestamp, then name
//!    gcOrphaned: a pod bound (spec.nodeName) to a name with no Node
//!        -> that name enters quarantine (upstream quarantineTime, 40 s), once
//!        -> at the first pass after the quarantine, if the Node still does not exist, its pods
//!           are marked Failed with condition DisruptionTarget (reason DeletionByPodGC,
//!           "PodGC: node no longer exists") and force-deleted (grace period 0)
//! ```
//!
//! So a Node deleted and re-created within the quarantine keeps its pods, and an orphaned pod is
//! gone between `quarantine` and `quarantine + period` after its node was first seen missing.
//! The two other upstream passes are not emulated: `gcTerminating` (needs the
//! `node.kubernetes.io/out-of-service` taint) and `gcUnscheduledTerminating` (the emulator
//! deletes an unbound pod at once, so none is ever left terminating).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::meta::{now_rfc3339, obj_mut};
use crate::resources::ResourceDef;
use crate::status::ApiError;
use crate::store::{DeleteOptions, Store, Stored};

/// PodGC settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PodGcConfig {
    /// How often the collector runs (upstream `gcCheckPeriod`, 20 s).
    pub period: Duration,
    /// How long a node name must stay missing before its pods are deleted (upstream
    /// `quarantineTime`, 40 s); `None` never deletes orphaned pods.
    pub orphan_quarantine: Option<Duration>,
    /// Terminated pods kept before the oldest are deleted (kube-controller-manager's
    /// `--terminated-pod-gc-threshold`, 12500); 0 keeps them all.
    pub terminated_threshold: usize,
}

impl Default for PodGcConfig {
    fn default() -> Self {
        Self {
            period: Duration::from_secs(20),
            orphan_quarantine: Some(Duration::from_secs(40)),
            terminated_threshold: 12_500,
        }
    }
}

impl PodGcConfig {
    /// True when neither pass can ever delete anything.
    pub fn is_disabled(&self) -> bool {
        self.orphan_quarantine.is_none() && self.terminated_threshold == 0
    }
}

/// The collector's state between passes.
#[derive(Debug)]
pub struct PodGc {
    store: Arc<Store>,
    pods: Arc<ResourceDef>,
    nodes: Arc<ResourceDef>,
    cfg: PodGcConfig,
    /// Missing node names and when their quarantine ends (upstream: a delaying work queue; a
    /// name already waiting keeps its earlier time).
    quarantine: HashMap<String, Instant>,
}

fn is_terminated(p: &Stored) -> bool {
    !matches!(
        p.field("status.phase").as_str(),
        "Pending" | "Running" | "Unknown"
    )
}

/// Upstream's `byEvictionAndCreationTimestamp` as a sort key: Evicted pods first, then by
/// creation time, then by name.
fn gc_key(pod: &Value) -> (bool, i64, String) {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or("");
    let evicted = s("/status/phase") == "Failed" && s("/status/reason") == "Evicted";
    let created = crate::meta::parse_rfc3339(s("/metadata/creationTimestamp")).unwrap_or(0);
    (!evicted, created, s("/metadata/name").to_string())
}

impl PodGc {
    /// A collector over `store`'s pods and nodes.
    pub fn new(store: Arc<Store>, cfg: PodGcConfig) -> Self {
        let pods = store
            .resolve("", "v1", "pods")
            .expect("pods are a built-in resource");
        let nodes = store
            .resolve("", "v1", "nodes")
            .expect("nodes are a built-in resource");
        Self {
            store,
            pods,
            nodes,
            cfg,
            quarantine: HashMap::new(),
        }
    }

    /// One pass, as upstream's `gc` at time `now`; returns the pods it deleted.
    pub fn pass(&mut self, now: Instant) -> Vec<(String, String)> {
        let pods = self.store.all("", "pods");
        let mut deleted = Vec::new();
        if self.cfg.terminated_threshold > 0 {
            let mut terminated: Vec<&Arc<Stored>> =
                pods.iter().filter(|p| is_terminated(p)).collect();
            let excess = terminated
                .len()
                .saturating_sub(self.cfg.terminated_threshold);
            if excess > 0 {
                terminated.sort_by_cached_key(|p| gc_key(&p.value()));
                for p in &terminated[..excess] {
                    if self.mark_failed_and_delete(p, None) {
                        deleted.push((p.namespace.clone(), p.name.clone()));
                    }
                }
            }
        }
        if let Some(quarantine) = self.cfg.orphan_quarantine {
            deleted.extend(self.orphaned(&pods, now, quarantine));
        }
        deleted
    }

    /// Upstream's `gcOrphaned`.
    fn orphaned(
        &mut self,
        pods: &[Arc<Stored>],
        now: Instant,
        quarantine: Duration,
    ) -> Vec<(String, String)> {
        let existing: HashSet<String> = self
            .store
            .all("", "nodes")
            .iter()
            .map(|n| n.name.clone())
            .collect();
        for p in pods {
            let node = p.field("spec.nodeName");
            if !node.is_empty() && !existing.contains(&node) {
                self.quarantine.entry(node).or_insert(now + quarantine);
            }
        }
        let due: Vec<String> = self
            .quarantine
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(n, _)| n.clone())
            .collect();
        let mut gone = HashSet::new();
        for node in due {
            self.quarantine.remove(&node);
            // Upstream asks the API server, not its informer, before deleting anything.
            if matches!(
                self.store.get(&self.nodes, "", &node),
                Err(ApiError::NotFound { .. })
            ) {
                gone.insert(node);
            }
        }
        let mut deleted = Vec::new();
        if gone.is_empty() {
            return deleted;
        }
        for p in pods {
            let node = p.field("spec.nodeName");
            if !gone.contains(&node) {
                continue;
            }
            tracing::info!(pod = %format!("{}/{}", p.namespace, p.name), node = %node, "PodGC: deleting orphaned pod");
            let condition = json!({
                "type": "DisruptionTarget", "status": "True",
                "reason": "DeletionByPodGC", "message": "PodGC: node no longer exists",
            });
            if self.mark_failed_and_delete(p, Some(condition)) {
                deleted.push((p.namespace.clone(), p.name.clone()));
            }
        }
        deleted
    }

    /// Upstream's `markFailedAndDeletePodWithCondition`: a pod not yet finished is marked
    /// Failed (with the condition, if any) so that no one waits for a kubelet that is gone, then
    /// it is deleted with grace period 0. False when the pod changed identity or was gone.
    fn mark_failed_and_delete(&self, p: &Stored, condition: Option<Value>) -> bool {
        let uid = p.field("metadata.uid");
        if !matches!(p.field("status.phase").as_str(), "Succeeded" | "Failed") {
            let r = self.store.modify(&self.pods, &p.namespace, &p.name, |pod| {
                if pod.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid.as_str()) {
                    return Err(ApiError::Conflict {
                        resource: "pods".into(),
                        name: p.name.clone(),
                        message: "uid changed".into(),
                    });
                }
                if let Some(c) = &condition {
                    set_condition(pod, c);
                }
                obj_mut(pod, "status").insert("phase".into(), json!("Failed"));
                Ok(())
            });
            if let Err(e) = r {
                tracing::debug!(pod = %p.name, error = %e, "PodGC: status update skipped");
                return false;
            }
        }
        let opts = DeleteOptions {
            grace: Some(0),
            uid: Some(uid),
            rv: None,
        };
        match self.store.delete(&self.pods, &p.namespace, &p.name, &opts) {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(pod = %p.name, error = %e, "PodGC: delete skipped");
                false
            }
        }
    }
}

/// Adds or replaces a pod condition as upstream's `UpdatePodCondition` does: the transition time
/// changes only when the status does.
fn set_condition(pod: &mut Value, c: &Value) {
    let now = now_rfc3339();
    let st = obj_mut(pod, "status");
    let conds = st
        .entry("conditions".to_string())
        .or_insert_with(|| json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    let arr = conds.as_array_mut().expect("made an array");
    let mut c = c.clone();
    c["lastProbeTime"] = Value::Null;
    c["lastTransitionTime"] = json!(now);
    match arr.iter_mut().find(|x| x.get("type") == c.get("type")) {
        Some(existing) => {
            if existing.get("status") == c.get("status") {
                c["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = c;
        }
        None => arr.push(c),
    }
}

/// Runs the collector every `cfg.period`; `None` when it is disabled.
pub fn spawn(store: Arc<Store>, cfg: PodGcConfig) -> Option<JoinHandle<()>> {
    if cfg.is_disabled() {
        return None;
    }
    let period = cfg.period.max(Duration::from_millis(10));
    let mut gc = PodGc::new(store, cfg);
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // The scheduled instant, not the wake-up time: quarantines end on a pass exactly.
            let now = ticker.tick().await;
            gc.pass(now);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtins;
    use crate::server::{NodeShape, node_object};
    use crate::store::StoreConfig;

    fn store() -> Arc<Store> {
        let s = Arc::new(Store::new(StoreConfig::default(), builtins()));
        let ns = s.resolve("", "v1", "namespaces").unwrap();
        s.create(&ns, "", json!({"metadata": {"name": "default"}}))
            .unwrap();
        s
    }

    fn pod(s: &Store, name: &str, node: &str, phase: &str) {
        let pods = s.resolve("", "v1", "pods").unwrap();
        s.create(
            &pods,
            "default",
            json!({"metadata": {"name": name}, "spec": {"nodeName": node},
                   "status": {"phase": phase}}),
        )
        .unwrap();
    }

    fn names(s: &Store) -> Vec<String> {
        s.all("", "pods").iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn terminated_pods_go_evicted_first_then_oldest_then_by_name() {
        let p = |name: &str, phase: &str, reason: &str, created: &str| {
            json!({"metadata": {"name": name, "creationTimestamp": created},
                   "status": {"phase": phase, "reason": reason}})
        };
        let mut pods = [
            p("b-old", "Succeeded", "", "2026-01-01T00:00:00Z"),
            p("new", "Failed", "", "2026-01-03T00:00:00Z"),
            p("a-old", "Succeeded", "", "2026-01-01T00:00:00Z"),
            p("evicted", "Failed", "Evicted", "2026-01-04T00:00:00Z"),
        ];
        pods.sort_by_cached_key(gc_key);
        let order: Vec<&str> = pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["evicted", "a-old", "b-old", "new"]);
    }

    #[test]
    fn terminated_pods_over_the_threshold_are_deleted() {
        let s = store();
        for (name, phase) in [
            ("c", "Succeeded"),
            ("b", "Failed"),
            ("a", "Succeeded"),
            ("running", "Running"),
            ("pending", "Pending"),
        ] {
            pod(&s, name, "", phase);
        }
        let mut gc = PodGc::new(
            s.clone(),
            PodGcConfig {
                terminated_threshold: 2,
                orphan_quarantine: None,
                ..PodGcConfig::default()
            },
        );
        let deleted = gc.pass(Instant::now());
        assert_eq!(deleted, vec![("default".to_string(), "a".to_string())]);
        assert_eq!(names(&s), ["b", "c", "pending", "running"]);
        assert!(gc.pass(Instant::now()).is_empty(), "at the threshold");
    }

    #[test]
    fn orphans_go_after_the_quarantine_unless_their_node_comes_back() {
        let s = store();
        let nodes = s.resolve("", "v1", "nodes").unwrap();
        let shape = NodeShape::default();
        for n in ["n1", "n2"] {
            s.create(&nodes, "", node_object(n, &shape, 1)).unwrap();
        }
        pod(&s, "a", "n1", "Running");
        pod(&s, "b", "n2", "Running");
        let q = Duration::from_secs(40);
        let mut gc = PodGc::new(
            s.clone(),
            PodGcConfig {
                orphan_quarantine: Some(q),
                ..PodGcConfig::default()
            },
        );
        let t0 = Instant::now();
        assert!(gc.pass(t0).is_empty());
        for n in ["n1", "n2"] {
            s.delete(&nodes, "", n, &DeleteOptions::default()).unwrap();
        }
        let t1 = t0 + Duration::from_secs(20);
        assert!(gc.pass(t1).is_empty(), "both names enter quarantine");
        // n2 comes back within the quarantine.
        s.create(&nodes, "", node_object("n2", &shape, 2)).unwrap();
        assert!(gc.pass(t1 + Duration::from_secs(20)).is_empty());
        // Upstream watches the Failed status and the force deletion; so may a test.
        let pods = s.resolve("", "v1", "pods").unwrap();
        let mut rx = s
            .watch(&pods, &Default::default(), Some(s.current_rv()), false)
            .unwrap()
            .rx;
        let deleted = gc.pass(t1 + q);
        assert_eq!(deleted, vec![("default".to_string(), "a".to_string())]);
        assert_eq!(names(&s), ["b"]);
        let failed = rx.try_recv().unwrap();
        let v = failed.object.value();
        assert_eq!(v["status"]["phase"], "Failed");
        assert_eq!(v["status"]["conditions"][0]["type"], "DisruptionTarget");
        assert_eq!(v["status"]["conditions"][0]["reason"], "DeletionByPodGC");
        assert_eq!(
            rx.try_recv().unwrap().kind,
            crate::store::EventType::Deleted
        );
    }
}
