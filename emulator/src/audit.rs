//! The emulator's own record of what schedulers did to it, for reliability runs: every bind
//! request (who sent it, to which node, whose the leader lease was at that instant, accepted or
//! refused and why), every pod's end (succeeded, failed and why, or deleted), and every change
//! of the leader lease. `GET /emulator/audit` returns it with the faults injected by kind.
//!
//! This is the ground truth `phalanx bench chaos` judges a scheduler by, never the scheduler's
//! own word: a bind is stamped by the handler that commits it, a pod's end by the store's own
//! change feed. Times are Unix seconds on this host's clock (the replicas' lease renew times,
//! written by clients on the same host, are read on the same clock).

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::store::{EventType, Filter, Store, WatchEvent};

/// One bind request as the API server handled it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindRecord {
    /// When it was handled (Unix seconds).
    pub t: f64,
    /// `namespace/name` of the pod.
    pub pod: String,
    /// The node asked for.
    pub node: String,
    /// The authenticated user that sent it ("" when no users are configured).
    pub user: String,
    /// The holder of the audited lease at that instant, when it had not expired; `None` when
    /// nobody held it (or no lease is audited).
    pub leader: Option<String>,
    /// Why it was refused; `None` when the bind was accepted.
    pub refused: Option<String>,
    /// For a refusal because the pod was already bound: the node it was bound to.
    pub already_on: Option<String>,
}

/// How a pod ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndRecord {
    /// When the store committed it (Unix seconds).
    pub t: f64,
    /// `namespace/name`.
    pub pod: String,
    /// `Succeeded`, `Failed` or `Deleted` (deleted before reaching either).
    pub how: String,
    /// `status.reason` of a failed pod (`OutOfcpu`, `UnexpectedAdmissionError`, ...).
    pub reason: Option<String>,
    /// The node it was bound to, if any.
    pub node: Option<String>,
}

/// A write of the audited lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// When the store committed it (Unix seconds).
    pub t: f64,
    /// `spec.holderIdentity` (`None` when released).
    pub holder: Option<String>,
    /// `spec.renewTime` (Unix seconds).
    pub renew: Option<f64>,
    /// `spec.leaseDurationSeconds`.
    pub duration_s: Option<f64>,
}

/// Everything recorded, as `GET /emulator/audit` returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// The lease judged (`namespace/name`), if any.
    pub lease: Option<String>,
    /// Bind requests, in the order handled.
    pub binds: Vec<BindRecord>,
    /// Pod ends, in commit order.
    pub ends: Vec<EndRecord>,
    /// Pods whose deletion started (`deletionTimestamp` set) before they ended, in commit
    /// order (`how` is `Terminating`), for post-mortems. A pod being deleted may run on for its
    /// grace period, or, on a node that is down, until the node is back or the pod is
    /// force-deleted; until it ends it holds its node, and Phalanx counts it against its queue.
    #[serde(default)]
    pub terminating: Vec<EndRecord>,
    /// Writes of the audited lease, in commit order.
    pub leases: Vec<LeaseRecord>,
    /// Changes the recorder missed because it fell behind (non-zero: the journal is
    /// incomplete, and a judge must say so).
    pub missed: u64,
    /// Faults injected, by kind (see [`crate::faults::kind`]).
    pub faults_by_kind: std::collections::BTreeMap<String, u64>,
}

/// The recorder shared by the request handlers and the change-feed task.
#[derive(Debug)]
pub struct Audit {
    lease: Option<(String, String)>,
    journal: Mutex<Journal>,
}

/// Unix seconds now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// RFC 3339 with an optional fraction (`2026-12-06T20:01:02.123456Z`) to Unix seconds.
fn micro_time(s: &str) -> Option<f64> {
    let whole = crate::meta::parse_rfc3339(s)? as f64;
    let frac = s
        .get(19..)
        .and_then(|r| r.strip_prefix('.'))
        .map(|r| r.trim_end_matches(|c: char| !c.is_ascii_digit()))
        .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
        .and_then(|d| format!("0.{d}").parse::<f64>().ok())
        .unwrap_or(0.0);
    Some(whole + frac)
}

/// The lease fields a judge needs.
fn lease_record(t: f64, lease: &Value) -> LeaseRecord {
    let spec = lease.get("spec");
    let str_at = |k: &str| spec.and_then(|s| s.get(k)).and_then(Value::as_str);
    LeaseRecord {
        t,
        holder: str_at("holderIdentity")
            .filter(|h| !h.is_empty())
            .map(str::to_string),
        renew: str_at("renewTime").and_then(micro_time),
        duration_s: spec
            .and_then(|s| s.get("leaseDurationSeconds"))
            .and_then(Value::as_f64),
    }
}

impl Audit {
    /// A recorder judging binds against the Lease `namespace/name`, if given.
    pub fn new(lease: Option<(String, String)>) -> Self {
        let journal = Journal {
            lease: lease.as_ref().map(|(ns, n)| format!("{ns}/{n}")),
            ..Journal::default()
        };
        Self {
            lease,
            journal: Mutex::new(journal),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Journal) -> R) -> R {
        f(&mut self.journal.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The holder of the audited lease now, if it holds an unexpired lease.
    pub fn leader_now(&self, store: &Store) -> Option<String> {
        let (ns, name) = self.lease.as_ref()?;
        let def = store.resolve("coordination.k8s.io", "v1", "leases")?;
        let lease = store.get(&def, ns, name).ok()?.value();
        let r = lease_record(now(), &lease);
        let until = r.renew? + r.duration_s?;
        (r.t <= until).then_some(r.holder).flatten()
    }

    /// Records a bind request and how it ended.
    pub fn bind(&self, store: &Store, rec: BindRecord) {
        let leader = self.leader_now(store);
        self.with(|j| j.binds.push(BindRecord { leader, ..rec }));
    }

    /// A copy of the journal, with `faults_by_kind` as given.
    pub fn snapshot(&self, faults_by_kind: std::collections::BTreeMap<String, u64>) -> Journal {
        self.with(|j| Journal {
            faults_by_kind,
            ..j.clone()
        })
    }

    fn observe_pod(&self, ev: &WatchEvent) {
        let terminal = |v: &Value| {
            matches!(
                v.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            )
        };
        let now = ev.object.value();
        let was_terminal = ev.prev.as_ref().is_some_and(|p| terminal(&p.value()));
        let deleting = |v: &Value| v.pointer("/metadata/deletionTimestamp").is_some();
        let pod = format!("{}/{}", ev.object.namespace, ev.object.name);
        let node = now
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if ev.kind == EventType::Modified
            && deleting(&now)
            && !terminal(&now)
            && !ev.prev.as_ref().is_some_and(|p| deleting(&p.value()))
        {
            let rec = EndRecord {
                t: self::now(),
                pod,
                how: "Terminating".into(),
                reason: None,
                node,
            };
            self.with(|j| j.terminating.push(rec));
            return;
        }
        let how = match ev.kind {
            EventType::Deleted if !terminal(&now) => "Deleted".to_string(),
            EventType::Modified if terminal(&now) && !was_terminal => now
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => return,
        };
        let rec = EndRecord {
            t: self::now(),
            pod,
            reason: (how == "Failed")
                .then(|| now.pointer("/status/reason").and_then(Value::as_str))
                .flatten()
                .map(str::to_string),
            node,
            how,
        };
        self.with(|j| j.ends.push(rec));
    }

    fn observe_lease(&self, ev: &WatchEvent) {
        let Some((ns, name)) = &self.lease else {
            return;
        };
        if ev.object.namespace != *ns || ev.object.name != *name {
            return;
        }
        let rec = match ev.kind {
            EventType::Deleted => LeaseRecord {
                t: now(),
                holder: None,
                renew: None,
                duration_s: None,
            },
            _ => lease_record(now(), &ev.object.value()),
        };
        self.with(|j| j.leases.push(rec));
    }
}

/// Starts recording pod ends and lease writes from the store's change feed.
pub fn spawn(store: Arc<Store>, audit: Arc<Audit>) -> JoinHandle<()> {
    let defs = (
        store.resolve("", "v1", "pods"),
        store.resolve("coordination.k8s.io", "v1", "leases"),
    );
    let starts = match defs {
        (Some(pods), Some(leases)) => (
            store.watch(&pods, &Filter::default(), Some(store.current_rv()), false),
            store.watch(&leases, &Filter::default(), Some(store.current_rv()), false),
        ),
        _ => return tokio::spawn(async {}),
    };
    let (Ok(pods), Ok(leases)) = starts else {
        return tokio::spawn(async {});
    };
    tokio::spawn(async move {
        let (mut pods, mut leases) = (pods.rx, leases.rx);
        loop {
            let (ev, is_pod) = tokio::select! {
                r = pods.recv() => (r, true),
                r = leases.recv() => (r, false),
            };
            match ev {
                Ok(ev) if is_pod => audit.observe_pod(&ev),
                Ok(ev) => audit.observe_lease(&ev),
                Err(RecvError::Lagged(n)) => audit.with(|j| j.missed += n),
                Err(RecvError::Closed) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bound pod deleted gracefully is recorded as terminating when its deletion starts, and
    /// as ended (`Deleted`) when it is gone; the end comes once.
    #[tokio::test]
    async fn a_graceful_deletion_is_recorded_when_it_starts_and_when_it_ends() {
        use crate::store::{DeleteOptions, StoreConfig};
        let store = Arc::new(Store::new(
            StoreConfig {
                window: 100,
                broadcast_capacity: 64,
            },
            crate::resources::builtins(),
        ));
        let ns = store.resolve("", "v1", "namespaces").unwrap();
        store
            .create(
                &ns,
                "",
                serde_json::json!({"metadata": {"name": "default"}}),
            )
            .unwrap();
        let audit = Arc::new(Audit::new(None));
        let task = spawn(store.clone(), audit.clone());
        let pods = store.resolve("", "v1", "pods").unwrap();
        store
            .create(
                &pods,
                "default",
                serde_json::json!({"metadata": {"name": "p"},
                    "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
                    "status": {"phase": "Running"}}),
            )
            .unwrap();
        let graceful = DeleteOptions {
            grace: Some(30),
            ..DeleteOptions::default()
        };
        store.delete(&pods, "default", "p", &graceful).unwrap();
        let now = DeleteOptions {
            grace: Some(0),
            ..DeleteOptions::default()
        };
        store.delete(&pods, "default", "p", &now).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while audit.snapshot(Default::default()).ends.is_empty()
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        task.abort();
        let j = audit.snapshot(Default::default());
        let what = |r: &[EndRecord]| {
            r.iter()
                .map(|r| (r.pod.clone(), r.how.clone(), r.node.clone()))
                .collect::<Vec<_>>()
        };
        let on = Some("n1".to_string());
        assert_eq!(
            what(&j.terminating),
            [(
                "default/p".to_string(),
                "Terminating".to_string(),
                on.clone()
            )]
        );
        assert_eq!(
            what(&j.ends),
            [("default/p".to_string(), "Deleted".to_string(), on)]
        );
    }

    #[test]
    fn lease_times_keep_their_fraction() {
        let r = lease_record(
            0.0,
            &serde_json::json!({"spec": {"holderIdentity": "r1",
                "renewTime": "1970-01-01T00:00:10.250000Z", "leaseDurationSeconds": 4}}),
        );
        assert_eq!(r.holder.as_deref(), Some("r1"));
        assert_eq!(r.renew, Some(10.25));
        assert_eq!(r.duration_s, Some(4.0));
        assert_eq!(micro_time("1970-01-01T00:00:10Z"), Some(10.0));
        assert_eq!(
            lease_record(0.0, &serde_json::json!({"spec": {"holderIdentity": ""}})).holder,
            None
        );
    }
}
