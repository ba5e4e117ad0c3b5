//! The status writer: PodGroup `status` (phase `Pending`, `Inqueue`, `Running`, `Completed`,
//! `Failed`; `running`/`succeeded`/`failed` counts; an `Unschedulable` condition carrying the
//! engine's reason while the gang waits, `Scheduled` once it runs) and Kubernetes Events
//! (`Scheduled`, `FailedScheduling`, `InvalidPodGroup`, `PodGroupNotFound`, `InvalidQueue`, ...).
//!
//! Both are rate-limited: statuses are written every `statusIntervalMs`, only those that changed,
//! and only by the leader; Events are limited per object (`eventsPerObjectPerMinute`, repeats of
//! the same reason and message are dropped within the minute) and in total (`MAX_EVENTS_PER_SECOND`),
//! and kube-rs's `Recorder` aggregates what remains into event series.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::{Value, json};

use crate::core::{JobStatus, Notice, ObjectRef, QueueStatus};
use crate::runner::Shared;
use crate::translate::{self, Flavor};
use crate::watch::group_resource;

/// Events posted per second at most, over all objects.
pub const MAX_EVENTS_PER_SECOND: usize = 50;
/// Pod `PodScheduled` conditions written per second at most, over all pods (a gang of a
/// thousand pods is marked within seconds, and the API server is never flooded).
pub const MAX_POD_CONDITIONS_PER_SECOND: usize = 500;

/// An object reference for Events.
pub fn reference(o: &ObjectRef) -> ObjectReference {
    match o {
        ObjectRef::Group {
            flavor,
            namespace,
            name,
        } => ObjectReference {
            api_version: Some(format!("{}/{}", flavor.group(), flavor.version())),
            kind: Some("PodGroup".into()),
            namespace: Some(namespace.clone()),
            name: Some(name.clone()),
            ..ObjectReference::default()
        },
        ObjectRef::Pod { namespace, name } => ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some(namespace.clone()),
            name: Some(name.clone()),
            ..ObjectReference::default()
        },
        ObjectRef::Queue { name } => ObjectReference {
            api_version: Some("scheduling.volcano.sh/v1beta1".into()),
            kind: Some("Queue".into()),
            name: Some(name.clone()),
            ..ObjectReference::default()
        },
    }
}

/// Decides which notices become Events.
#[derive(Debug)]
pub struct RateLimiter {
    per_object: usize,
    per_second: usize,
    recent: HashMap<ObjectRef, VecDeque<(Instant, &'static str, String)>>,
    global: VecDeque<Instant>,
}

impl RateLimiter {
    /// At most `per_object_per_minute` per object, [`MAX_EVENTS_PER_SECOND`] in total.
    pub fn new(per_object_per_minute: u32) -> Self {
        Self::with_total(per_object_per_minute, MAX_EVENTS_PER_SECOND)
    }

    /// At most `per_object_per_minute` per object and `per_second` in total.
    pub fn with_total(per_object_per_minute: u32, per_second: usize) -> Self {
        RateLimiter {
            per_object: per_object_per_minute.max(1) as usize,
            per_second: per_second.max(1),
            recent: HashMap::new(),
            global: VecDeque::new(),
        }
    }

    /// Whether to post `n` now.
    pub fn allow(&mut self, n: &Notice, now: Instant) -> bool {
        let minute = Duration::from_secs(60);
        while self
            .global
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.global.pop_front();
        }
        if self.global.len() >= self.per_second {
            return false;
        }
        let q = self.recent.entry(n.object.clone()).or_default();
        while q
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) >= minute)
        {
            q.pop_front();
        }
        if q.len() >= self.per_object || q.iter().any(|(_, r, m)| *r == n.reason && *m == n.message)
        {
            return false;
        }
        q.push_back((now, n.reason, n.message.clone()));
        self.global.push_back(now);
        if self.recent.len() > 100_000 {
            self.recent.retain(|_, q| !q.is_empty());
        }
        true
    }
}

/// The API server refuses an Event whose note is longer than this (bytes).
pub const MAX_NOTE_BYTES: usize = 1024;
/// Condition messages are kept to this (bytes), as `metav1.Condition` validation bounds them.
pub const MAX_CONDITION_MESSAGE_BYTES: usize = 32 * 1024;

/// `text` cut to at most `max` bytes at a character boundary, ending in `...` when cut.
pub fn bounded(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end]).into()
}

/// The `status` a PodGroup should have (without transition times), legal for its flavour's
/// CRD: Volcano's five phases and its condition types and reasons; scheduler-plugins' six
/// phases and no conditions. Phalanx's finer reason goes in the condition's message (and the
/// admin API), never in a field the CRD would refuse.
pub fn desired_status(j: &JobStatus) -> Value {
    match &j.group {
        Some(ObjectRef::Group {
            flavor: Flavor::SchedulerPlugins,
            ..
        }) => plugins_status(j),
        Some(ObjectRef::Group {
            flavor: Flavor::Upstream,
            ..
        }) => upstream_status(j),
        _ => volcano_status(j),
    }
}

/// The upstream gang API (`scheduling.k8s.io` PodGroup, `status.conditions` only): condition
/// `PodGroupInitiallyScheduled`, `False` with reason `Unschedulable` and the engine's message
/// while the gang waits for its first placement, then `True` for good (the API documents it
/// as terminal: it never reverts, even if the pods are evicted later).
fn upstream_status(j: &JobStatus) -> Value {
    let condition = if j.initially_scheduled {
        Some(json!({
            "type": crate::translate::INITIALLY_SCHEDULED,
            "status": "True",
            "reason": "Scheduled",
            "message": "the gang was placed",
        }))
    } else {
        j.reason.as_ref().map(|(label, message)| {
            let full = format!("{}: {message}", camel(label));
            json!({
                "type": crate::translate::INITIALLY_SCHEDULED,
                "status": "False",
                "reason": "Unschedulable",
                "message": bounded(&full, MAX_CONDITION_MESSAGE_BYTES),
            })
        })
    };
    match condition {
        Some(c) => json!({ "conditions": [c] }),
        None => json!({}),
    }
}

/// scheduler-plugins (`apis/scheduling/v1alpha1/types.go`): `Pending`, `Scheduling`,
/// `Running`, `Finished`, `Failed`, `Unknown`, and no conditions. An admitted group that does
/// not run yet is `Pending` there (`Scheduling` means binds in flight).
fn plugins_status(j: &JobStatus) -> Value {
    let phase = match j.phase {
        "Running" => "Running",
        "Completed" => "Finished",
        "Failed" => "Failed",
        _ => "Pending",
    };
    json!({
        "phase": phase,
        "running": j.running,
        "succeeded": j.succeeded,
        "failed": j.failed,
    })
}

/// Volcano (`scheduling.volcano.sh/v1beta1`): phases `Pending`, `Inqueue`, `Running`,
/// `Unknown`, `Completed` (a failed job's group is `Completed`, as Volcano's job controller
/// leaves it); condition types `Unschedulable` and `Scheduled`, with Volcano's reasons
/// (`NotEnoughResources`, `NotEnoughTasks`) where Phalanx's reason means the same.
fn volcano_status(j: &JobStatus) -> Value {
    let phase = match j.phase {
        "Inqueue" => "Inqueue",
        "Running" => "Running",
        "Completed" | "Failed" => "Completed",
        _ => "Pending",
    };
    let unschedulable = |label: &str, message: &str| {
        let reason = volcano_reason(label);
        let message = if reason == camel(label) {
            bounded(message, MAX_CONDITION_MESSAGE_BYTES).into_owned()
        } else {
            let full = format!("{}: {message}", camel(label));
            bounded(&full, MAX_CONDITION_MESSAGE_BYTES).into_owned()
        };
        json!({
            "type": "Unschedulable",
            "status": "True",
            "reason": reason,
            "message": message,
        })
    };
    let condition = match (&j.reason, j.phase) {
        (Some((label, message)), "Pending" | "Inqueue") => Some(unschedulable(label, message)),
        (_, "Running" | "Completed") => Some(json!({
            "type": "Scheduled",
            "status": "True",
            "reason": "Scheduled",
            "message": "the gang is placed",
        })),
        (Some((label, message)), "Failed") if label != "pod_failed" => {
            Some(unschedulable(label, message))
        }
        _ => None,
    };
    json!({
        "phase": phase,
        "running": j.running,
        "succeeded": j.succeeded,
        "failed": j.failed,
        "conditions": condition.into_iter().collect::<Vec<_>>(),
    })
}

/// Volcano's condition reason for a Phalanx reason label: `NotEnoughResources` where the gang
/// finds no room (`pkg/scheduler/api/unschedule_info.go`), `NotEnoughTasks` while it lacks
/// pods; Phalanx's own reason (CamelCase) where Volcano has none.
fn volcano_reason(label: &str) -> String {
    match label {
        "unschedulable" | "over_capability" | "OverCapability" | "queue_not_found"
        | "queue_not_leaf" | "bind_failed" | "gang_incomplete" => "NotEnoughResources".into(),
        "WaitingForPods" => "NotEnoughTasks".into(),
        other => camel(other),
    }
}

/// `waiting_for_dependencies` -> `WaitingForDependencies`; CamelCase stays.
pub fn camel(label: &str) -> String {
    label
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn with_times(mut desired: Value, now: &str) -> Value {
    if let Some(conds) = desired.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conds {
            c["lastTransitionTime"] = json!(now);
        }
    }
    desired
}

/// Writes statuses and posts events until `notices` closes.
pub async fn run(
    client: kube::Client,
    shared: Arc<Shared>,
    mut notices: tokio::sync::mpsc::UnboundedReceiver<Notice>,
    interval: Duration,
    events_per_object_per_minute: u32,
    identity: String,
) {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "phalanx-scheduler".into(),
            instance: Some(identity),
        },
    );
    let mut limiter = RateLimiter::new(events_per_object_per_minute);
    let mut written: BTreeMap<ObjectRef, Value> = BTreeMap::new();
    let mut pod_limiter =
        RateLimiter::with_total(events_per_object_per_minute, MAX_POD_CONDITIONS_PER_SECOND);
    let mut pods_written: HashMap<String, String> = HashMap::new();
    let mut queues_written: BTreeMap<String, Value> = BTreeMap::new();
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            n = notices.recv() => match n {
                Some(n) => batch.push(n),
                None => return,
            },
            _ = tick.tick() => {}
        }
        while let Ok(n) = notices.try_recv() {
            batch.push(n);
        }
        let now = Instant::now();
        let events: Vec<_> = batch
            .into_iter()
            .filter(|n| limiter.allow(n, now))
            .collect();
        let rec = &recorder;
        futures::stream::iter(events)
            .for_each_concurrent(8, |n| async move {
                let ev = Event {
                    type_: if n.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: n.reason.to_string(),
                    note: Some(bounded(&n.message, MAX_NOTE_BYTES).into()),
                    action: "Scheduling".into(),
                    secondary: None,
                };
                if let Err(e) = rec.publish(&ev, &reference(&n.object)).await {
                    tracing::debug!(error = %e, "event not posted");
                }
            })
            .await;
        if !shared.leader.is_leader() || !shared.is_synced() {
            continue;
        }
        let published = shared.view();
        let stamp = k8s_openapi::jiff::Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut writes = Vec::new();
        for j in published.jobs.values() {
            let Some(obj @ ObjectRef::Group { .. }) = &j.group else {
                continue;
            };
            let want = desired_status(j);
            if written.get(obj) != Some(&want) {
                writes.push((obj.clone(), want));
            }
        }
        let client = &client;
        let stamp = &stamp;
        let done: Vec<(ObjectRef, Value, bool)> = futures::stream::iter(writes)
            .map(|(obj, want)| async move {
                let ok = write_status(client, &obj, with_times(want.clone(), stamp)).await;
                (obj, want, ok)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (obj, want, ok) in done {
            if ok {
                written.insert(obj, want);
            }
        }
        write_pod_conditions(
            client,
            &published,
            &mut pods_written,
            &mut pod_limiter,
            stamp,
        )
        .await;
        write_queue_statuses(client, &published, &mut queues_written).await;
        if let Some(err) = &published.queue_error {
            tracing::debug!(error = %err, "queue configuration error in force");
        }
    }
}

/// The `status` Phalanx gives a Volcano Queue object (see [`crate::crd::volcano::QueueStatus`]):
/// its jobs by phase (its own, not its child queues'), what it holds and deserves with its
/// child queues', its dominant share, and `state: Open` only while the object has no state
/// (closing and opening are the admin's, and a write here must never undo one).
pub fn queue_status(q: &QueueStatus, jobs: &BTreeMap<String, JobStatus>) -> Value {
    let (mut pending, mut inqueue, mut running, mut completed) = (0, 0, 0, 0);
    for j in jobs.values().filter(|j| j.queue == q.name) {
        match j.phase {
            "Pending" => pending += 1,
            "Inqueue" => inqueue += 1,
            "Running" => running += 1,
            "Completed" => completed += 1,
            _ => {}
        }
    }
    let quantities = |m: &BTreeMap<String, i64>| -> Value {
        m.iter()
            .map(|(name, &v)| (name.clone(), Value::from(quantity(name, v))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut status = json!({
        "pending": pending,
        "inqueue": inqueue,
        "running": running,
        "completed": completed,
        "allocated": quantities(&q.allocated),
        "deserved": quantities(&q.deserved),
        "dominantShare": format!("{:.3}", q.dominant_share),
    });
    if !q.state_set {
        status["state"] = json!(translate::QUEUE_OPEN);
    }
    status
}

/// A canonical amount (cpu in millicores, bytes, counts) as a Kubernetes quantity.
fn quantity(resource: &str, amount: i64) -> String {
    let id = match resource {
        "cpu" => phalanx_model::ResourceId::CPU,
        "memory" => phalanx_model::ResourceId::MEMORY,
        "ephemeral-storage" => phalanx_model::ResourceId::EPHEMERAL_STORAGE,
        _ => return amount.to_string(),
    };
    phalanx_model::resource::format_amount(id, amount)
}

/// Writes each Volcano Queue's [`queue_status`] when it changed (merge patch on `/status`).
/// A queue whose write failed is tried again next time.
async fn write_queue_statuses(
    client: &kube::Client,
    published: &crate::core::Published,
    written: &mut BTreeMap<String, Value>,
) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &crate::watch::queue_resource());
    let api = &api;
    let writes: Vec<(String, Value)> = published
        .queues
        .iter()
        .filter_map(|q| Some((q.object.clone()?, queue_status(q, &published.jobs))))
        .filter(|(object, want)| written.get(object) != Some(want))
        .collect();
    let done: Vec<(String, Value, bool)> = futures::stream::iter(writes)
        .map(|(object, want)| async move {
            let patch = json!({ "status": want });
            let result = api
                .patch_status(&object, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            let ok = match result {
                Ok(_) => true,
                Err(kube::Error::Api(s)) if s.code == 404 => true,
                Err(e) => {
                    tracing::debug!(queue = %object, error = %e, "queue status not written");
                    false
                }
            };
            (object, want, ok)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (object, want, ok) in done {
        if ok {
            written.insert(object, want);
        }
    }
    written.retain(|o, _| {
        published
            .queues
            .iter()
            .any(|q| q.object.as_ref() == Some(o))
    });
}

/// Gives every pod waiting for room (see [`JobStatus::unplaced`]) the condition
/// `PodScheduled=False`, reason `Unschedulable`, with the engine's message, as kube-scheduler
/// and Volcano write it and as cluster-autoscaler and Karpenter require before they add nodes.
/// Written only when the message changes, rate-limited like events. Binding sets the condition
/// to `True` (the API server does), so nothing here clears it; a pod no longer waiting is
/// forgotten.
async fn write_pod_conditions(
    client: &kube::Client,
    published: &crate::core::Published,
    written: &mut HashMap<String, String>,
    limiter: &mut RateLimiter,
    stamp: &str,
) {
    let now = Instant::now();
    let mut waiting = std::collections::HashSet::new();
    let mut writes = Vec::new();
    for j in published.jobs.values() {
        let Some((_, message)) = &j.reason else {
            continue;
        };
        let message = bounded(message, MAX_CONDITION_MESSAGE_BYTES);
        for p in &j.unplaced {
            waiting.insert(p.uid.as_str());
            if written.get(&p.uid).map(String::as_str) == Some(&*message) {
                continue;
            }
            let notice = Notice {
                object: ObjectRef::Pod {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                },
                warning: true,
                reason: "PodScheduled",
                message: message.to_string(),
            };
            if limiter.allow(&notice, now) {
                writes.push((p.clone(), message.to_string()));
            }
        }
    }
    written.retain(|uid, _| waiting.contains(uid.as_str()));
    let done: Vec<(String, String, bool)> = futures::stream::iter(writes)
        .map(|(p, message)| async move {
            let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
            let patch = json!({
                "metadata": {"uid": p.uid},
                "status": {"conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastTransitionTime": stamp,
                }]}
            });
            let result = api
                .patch_status(&p.name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await;
            let ok = match result {
                Ok(_) => true,
                // Gone, or another pod of that name now: nothing to write.
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => true,
                Err(e) => {
                    tracing::debug!(pod = %format!("{}/{}", p.namespace, p.name), error = %e, "pod condition not written");
                    false
                }
            };
            (p.uid, message, ok)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (uid, message, ok) in done {
        if ok {
            written.insert(uid, message);
        }
    }
}

async fn write_status(client: &kube::Client, obj: &ObjectRef, status: Value) -> bool {
    let ObjectRef::Group {
        flavor,
        namespace,
        name,
    } = obj
    else {
        return true;
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &group_resource(*flavor));
    let patch = json!({ "status": status });
    let pp = PatchParams::default();
    // Upstream Volcano's PodGroup CRD has no status subresource (status is part of the object,
    // and /status is 404); deploy/crds and scheduler-plugins' have one. Try /status first
    // unless this flavour is known to lack it.
    let mut result = match flavor {
        Flavor::Volcano => Err(kube::Error::Api(Box::new(
            kube::core::Status::failure("no status subresource", "NotFound").with_code(404),
        ))),
        Flavor::SchedulerPlugins => api.patch_status(name, &pp, &Patch::Merge(&patch)).await,
        // A built-in type: strategic merge keeps other writers' conditions (DisruptionTarget).
        Flavor::Upstream => api.patch_status(name, &pp, &Patch::Strategic(&patch)).await,
    };
    if matches!(&result, Err(kube::Error::Api(s)) if s.code == 404) {
        result = api.patch(name, &pp, &Patch::Merge(&patch)).await;
        if flavor == &Flavor::Volcano
            && let Ok(o) = &result
            && o.data["status"]["phase"] != patch["status"]["phase"]
        {
            // The main resource ignored status: this CRD has the subresource after all.
            result = api.patch_status(name, &pp, &Patch::Merge(&patch)).await;
        }
    }
    match result {
        Ok(_) => true,
        // Gone: nothing to write, and nothing to retry.
        Err(kube::Error::Api(s)) if s.code == 404 => true,
        Err(e) => {
            tracing::debug!(job = %format!("{namespace}/{name}"), error = %e, "status not written");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_scheduler::PodCounts;

    /// The `status` schema of an upstream CRD in `../shared/manifests` (None when that folder
    /// is not beside the checkout).
    fn upstream_status_schema(file: &str) -> Option<Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/manifests")
            .join(file);
        let text = std::fs::read_to_string(path).ok()?;
        let crd: Value = serde_norway::from_str(&text).unwrap();
        Some(
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"].clone(),
        )
    }

    fn status(flavor: Flavor, phase: &'static str, reason: Option<(&str, &str)>) -> JobStatus {
        JobStatus {
            group: Some(ObjectRef::Group {
                flavor,
                namespace: "ns".into(),
                name: "g".into(),
            }),
            queue: "root.default".into(),
            phase,
            pods: PodCounts::default(),
            running: 0,
            succeeded: 0,
            failed: 0,
            reason: reason.map(|(l, m)| (l.to_string(), m.to_string())),
            ..JobStatus::default()
        }
    }

    /// Issue 16, item 3: every status Phalanx writes is one the upstream CRD accepts: a phase
    /// its enum (or, for scheduler-plugins, whose CRD has no enum, its Go constants in
    /// `apis/scheduling/v1alpha1/types.go`) lists, and only fields its schema has.
    #[test]
    fn every_status_write_is_legal_for_the_upstream_crds() {
        let cases: [(Flavor, &str, &[&str]); 2] = [
            (
                Flavor::Volcano,
                "volcano/crd__scheduling.volcano.sh_podgroups.yaml",
                &[],
            ),
            (
                Flavor::SchedulerPlugins,
                "scheduler-plugins/crd__scheduling.x-k8s.io_podgroups.yaml",
                &[
                    "Pending",
                    "Scheduling",
                    "Running",
                    "Finished",
                    "Failed",
                    "Unknown",
                ],
            ),
        ];
        let reasons = [
            None,
            Some(("unschedulable", "0/3 nodes are available")),
            Some(("WaitingForPods", "1 of minMember 2 pods exist")),
            Some(("dependency_failed", "dependency ns/a failed")),
            Some(("pod_failed", "pod ns/g[task 0 #0] failed")),
        ];
        for (flavor, file, plugins_phases) in cases {
            let Some(schema) = upstream_status_schema(file) else {
                return;
            };
            let props = schema["properties"].as_object().unwrap();
            let phases: Vec<&str> = match schema["properties"]["phase"]["enum"].as_array() {
                Some(e) => e.iter().filter_map(Value::as_str).collect(),
                None => plugins_phases.to_vec(),
            };
            for phase in ["Pending", "Inqueue", "Running", "Completed", "Failed"] {
                for reason in reasons {
                    let s = desired_status(&status(flavor, phase, reason));
                    let written = s["phase"].as_str().unwrap();
                    assert!(
                        phases.contains(&written),
                        "{file}: phase {written} (from {phase}) not in {phases:?}"
                    );
                    for key in s.as_object().unwrap().keys() {
                        assert!(
                            props.contains_key(key),
                            "{file}: status.{key} is not in the CRD"
                        );
                    }
                    for c in s["conditions"].as_array().into_iter().flatten() {
                        let items = &props["conditions"]["items"]["properties"];
                        for key in c.as_object().unwrap().keys() {
                            assert!(items.get(key).is_some(), "{file}: condition.{key}");
                        }
                        let t = c["type"].as_str().unwrap();
                        assert!(matches!(t, "Unschedulable" | "Scheduled"), "{t}");
                    }
                }
            }
        }
        // Volcano's reasons where they mean the same; Phalanx's finer one in the message.
        let s = desired_status(&status(
            Flavor::Volcano,
            "Pending",
            Some(("unschedulable", "0/3 nodes are available")),
        ));
        assert_eq!(s["conditions"][0]["reason"], "NotEnoughResources");
        assert_eq!(
            s["conditions"][0]["message"],
            "Unschedulable: 0/3 nodes are available"
        );
        let s = desired_status(&status(Flavor::SchedulerPlugins, "Inqueue", None));
        assert_eq!(s["phase"], "Pending");
        assert!(s.get("conditions").is_none());
    }
}
