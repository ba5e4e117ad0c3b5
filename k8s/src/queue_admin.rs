//! `phalanx queue set|create|close|open`: one change to one Volcano `Queue` object, checked
//! before it is written by the very step `phalanx serve` configures its queues with, and
//! written with the caller's own client, so Kubernetes RBAC decides who may change quotas (the
//! chart's `phalanx-queue-admin` ClusterRole). Queue objects stay the source of truth: nothing
//! is kept anywhere else.
//!
//! ```text
//!   list Queues ──> the object as it would be after the change (the same merge patch, applied
//!        │          in memory)
//!        ▼
//!   Core (as serve) <── current Queues, then the changed one (and, for --dry-run, every Node,
//!        │              Pod, PodGroup and PriorityClass, listed as the watchers list them)
//!        ├── queue refused? ──> error naming the object and field; nothing is written
//!        ├── --dry-run: cycles without and with the change ──> what would start, be evicted,
//!        │              become reclaimable
//!        ▼
//!   PATCH queues/NAME (spec, merge patch) | POST queues | PATCH queues/NAME/status (state)
//! ```
//!
//! The check runs the real configuration chain, not a copy: a fresh [`Core`] is given the
//! Queue objects as listed, then the changed object as a watch would deliver it, and
//! [`Core::queue_problems`] says which objects it refused and why. The change is refused when
//! it makes serve refuse the changed queue or any queue it accepted before (a parent's new
//! capability below a child's guarantee refuses the child); queues serve refuses already are
//! reported, not blamed on the change. Every patch carries the resourceVersion that was
//! checked, so a Queue changed meanwhile is a conflict, never an unchecked write.
//!
//! Field layout, as Volcano defines it (volcano-sh/apis v1.15.0,
//! `pkg/apis/scheduling/v1beta1/types.go`, `QueueSpec` and `QueueStatus`): `spec.weight`,
//! `spec.capability`, `spec.deserved` (resource lists), `spec.guarantee.resource` (the
//! guarantee is an object holding a resource list), `spec.reclaimable`, `spec.parent`, and
//! `status.state` (`Open`, `Closed`, `Closing`, `Unknown`), on the `queues/status`
//! subresource (`+kubebuilder:subresource:status`). [`crate::crd`] has the same spec fields.
//!
//! Close and open: Volcano's `vcctl queue operate --action close|open` does not write the
//! Queue; it creates a bus `Command` (volcano-sh/volcano v1.15.1 `pkg/cli/queue/operate.go`,
//! `createQueueCommand` in `pkg/cli/queue/util.go`), and Volcano's queue controller applies it
//! by writing `status.state` on the status subresource (`pkg/controllers/queue/state/open.go`
//! and `closed.go`: close gives `Closing` while PodGroups remain, then `Closed`; open gives
//! `Open`; `queue_controller_action.go` writes it with `ApplyStatus`). Phalanx has no Volcano
//! controller, so `close` writes `status.state: Closed` and `open` writes `Open` directly, with
//! a merge patch on `queues/status`. Serve reads `Closed` and `Closing` alike: the queue admits
//! no new jobs, and jobs already running continue.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use phalanx_model::{Quantity, QuantityError, Time};
use serde_json::{Map, Value, json};

use crate::config::ServeConfig;
use crate::core::{Actions, Change, Core, Input, Published};
use crate::translate::{self, Flavor};
use crate::watch::{group_resource, queue_resource};

/// How kubectl names the resource in its output (`queue.scheduling.volcano.sh/q1 patched`).
pub const RESOURCE: &str = "queue.scheduling.volcano.sh";

/// Why a queue change was not made.
#[derive(Debug, thiserror::Error)]
pub enum QueueAdminError {
    /// A command-line value is unusable (the flag is named); nothing was sent.
    #[error("{flag}: {message}")]
    Flag {
        /// The flag, as typed (`--capability`).
        flag: &'static str,
        /// What is wrong with its value.
        message: String,
    },
    /// `phalanx serve` would refuse the queue configuration the change makes; nothing was
    /// written.
    #[error("{0}")]
    Refused(Refusal),
    /// The Queue to change does not exist.
    #[error("{RESOURCE} {0:?} not found")]
    NotFound(String),
    /// The Queue to create exists already.
    #[error("{RESOURCE} {0:?} already exists")]
    AlreadyExists(String),
    /// The cluster serves no Volcano Queue CRD.
    #[error(
        "the API server does not serve {RESOURCE} (no Volcano Queue CRD; install deploy/crds/ or Volcano's)"
    )]
    NoQueueCrd,
    /// The Queue CRD has no status subresource, so `status.state` cannot be written.
    #[error(
        "Queue {0}: the API server has no queues/status subresource to write status.state on (install a Queue CRD with `subresources: status`, as Volcano's)"
    )]
    NoStatusSubresource(String),
    /// The API server refused a request (RBAC's Forbidden, a conflict, ...): its own message.
    #[error("{what}: the API server refused ({reason} {code}): {message}")]
    Api {
        /// The request (`patch queues.scheduling.volcano.sh/q1`).
        what: String,
        /// HTTP status code.
        code: u16,
        /// The Status reason (`Forbidden`, `Conflict`, ...).
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The API server could not be reached, or answered something unreadable.
    #[error("{what}: {source}")]
    Kube {
        /// The request.
        what: String,
        /// What the client said.
        source: kube::Error,
    },
}

/// A change `phalanx serve` would refuse: what it would say, per Queue object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The Queue object changed or created.
    pub queue: String,
    /// Each Queue object the change makes serve refuse (the changed one first, if it is), with
    /// serve's message (naming the object at fault and the field).
    pub refused: Vec<(String, String)>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "phalanx serve would refuse this change to Queue {}; nothing was written:",
            self.queue
        )?;
        for (object, message) in &self.refused {
            if object == &self.queue {
                write!(f, "\n  {message}")?;
            } else {
                write!(f, "\n  Queue {object} would be refused too: {message}")?;
            }
        }
        Ok(())
    }
}

fn server(what: impl Into<String>) -> impl FnOnce(kube::Error) -> QueueAdminError {
    let what = what.into();
    move |e| match e {
        kube::Error::Api(s) => QueueAdminError::Api {
            what,
            code: s.code,
            reason: s.reason.clone(),
            message: s.message.clone(),
        },
        source => QueueAdminError::Kube { what, source },
    }
}

/// A resource-list flag's value: `cpu=200,memory=1Ti,nvidia.com/gpu=16` sets those resources
/// (the others stay as they are), `memory-` removes one (kubectl's `label key-` convention),
/// `none` removes the whole field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantitiesEdit {
    /// Remove the field.
    Remove,
    /// Per resource: the quantity to set, or `None` to remove the resource.
    Set(BTreeMap<String, Option<String>>),
}

impl QuantitiesEdit {
    /// Parses the value of `flag`. Quantities must follow Kubernetes' grammar; whether a
    /// quantity is acceptable as a quota (not negative, not above the capability, ...) is
    /// serve's rule, checked with the whole configuration.
    pub fn parse(flag: &'static str, text: &str) -> Result<Self, QueueAdminError> {
        let bad = |message: String| QueueAdminError::Flag { flag, message };
        let text = text.trim();
        if text == "none" {
            return Ok(QuantitiesEdit::Remove);
        }
        if text.is_empty() {
            return Err(bad(
                "empty; give resource=quantity pairs (cpu=200,memory=1Ti), resource- to remove one, or none".into(),
            ));
        }
        let mut out = BTreeMap::new();
        for item in text.split(',').map(str::trim) {
            let (name, value) = match item.split_once('=') {
                Some((name, q)) => (name.trim(), Some(q.trim())),
                None => match item.strip_suffix('-') {
                    Some(name) => (name.trim(), None),
                    None => {
                        return Err(bad(format!(
                            "{item:?} is not resource=quantity or resource- (to remove it)"
                        )));
                    }
                },
            };
            if !valid_resource_name(name) {
                return Err(bad(format!(
                    "{item:?}: {name:?} is not a resource name (such as cpu, memory, nvidia.com/gpu)"
                )));
            }
            if let Some(q) = value {
                match Quantity::parse(q) {
                    // A negative amount is valid Kubernetes syntax: serve's check refuses it,
                    // in serve's words.
                    Ok(_) | Err(QuantityError::Negative(_)) => {}
                    Err(e) => return Err(bad(format!("{name}={q}: {e}"))),
                }
            }
            if out
                .insert(name.to_string(), value.map(str::to_string))
                .is_some()
            {
                return Err(bad(format!("{name} is given twice")));
            }
        }
        Ok(QuantitiesEdit::Set(out))
    }

    /// The merge-patch value of the field.
    fn patch(&self) -> Value {
        match self {
            QuantitiesEdit::Remove => Value::Null,
            QuantitiesEdit::Set(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_ref().map_or(Value::Null, |q| json!(q))))
                    .collect(),
            ),
        }
    }
}

/// A qualified name as Kubernetes resource names are: an optional DNS-subdomain prefix and `/`,
/// then letters, digits, `-`, `_`, `.`.
fn valid_resource_name(name: &str) -> bool {
    let (prefix, base) = name.rsplit_once('/').unwrap_or(("", name));
    let ok = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    (prefix.is_empty() || ok(prefix, &['-', '.'])) && base.len() <= 63 && ok(base, &['-', '_', '.'])
}

/// The spec fields a `set` or `create` gives; what is not given stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueEdit {
    /// `spec.weight`.
    pub weight: Option<u32>,
    /// `spec.capability`.
    pub capability: Option<QuantitiesEdit>,
    /// `spec.deserved`.
    pub deserved: Option<QuantitiesEdit>,
    /// `spec.guarantee.resource`.
    pub guarantee: Option<QuantitiesEdit>,
    /// `spec.parent` (`root`: at the top).
    pub parent: Option<String>,
    /// `spec.reclaimable`.
    pub reclaimable: Option<bool>,
}

impl QueueEdit {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == QueueEdit::default()
    }

    /// The JSON merge patch (RFC 7386) of `spec` that makes the change.
    pub fn spec_patch(&self) -> Value {
        let mut spec = Map::new();
        if let Some(w) = self.weight {
            spec.insert("weight".into(), json!(w));
        }
        if let Some(c) = &self.capability {
            spec.insert("capability".into(), c.patch());
        }
        if let Some(d) = &self.deserved {
            spec.insert("deserved".into(), d.patch());
        }
        if let Some(g) = &self.guarantee {
            let g = match g {
                QuantitiesEdit::Remove => Value::Null,
                set => json!({"resource": set.patch()}),
            };
            spec.insert("guarantee".into(), g);
        }
        if let Some(p) = &self.parent {
            spec.insert("parent".into(), json!(p));
        }
        if let Some(r) = self.reclaimable {
            spec.insert("reclaimable".into(), json!(r));
        }
        json!({ "spec": spec })
    }
}

/// Applies a JSON merge patch (RFC 7386) to `target`, as the API server does: objects merge
/// key by key, `null` removes a key, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// What to do to the Queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Patch the spec fields given.
    Set(QueueEdit),
    /// Create the Queue with the spec given (weight 1 unless given).
    Create(QueueEdit),
    /// Write `status.state`: `Closed` (false) or `Open` (true).
    State {
        /// Open (true) or close (false).
        open: bool,
    },
}

/// How to carry out an [`Operation`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Check and show the effect; write nothing.
    pub dry_run: bool,
    /// The configuration serve runs with: its engine settings and scheduler names make the
    /// check and the dry run's cycles the same as serve's.
    pub config: ServeConfig,
}

/// What a change did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The Queue object.
    pub name: String,
    /// kubectl's verb: `patched`, `created`, `closed`, `opened`.
    pub verb: &'static str,
    /// Nothing was written.
    pub dry_run: bool,
    /// The object was already so (nothing changed).
    pub unchanged: bool,
    /// Fields that change, as `path: old -> new`.
    pub changes: Vec<String>,
    /// Queues serve refuses already, whatever the change (not caused by it).
    pub already_refused: Vec<(String, String)>,
    /// With `--dry-run`: the effect on gangs.
    pub effect: Option<Effect>,
}

impl Outcome {
    /// kubectl-style lines for people.
    pub fn human(&self) -> String {
        let mut out = format!("{RESOURCE}/{} {}", self.name, self.verb);
        if self.unchanged {
            out.push_str(" (no change)");
        }
        if self.dry_run {
            out.push_str(" (dry run)");
        }
        for c in &self.changes {
            out.push_str(&format!("\n  {c}"));
        }
        for (object, message) in &self.already_refused {
            out.push_str(&format!(
                "\nnote: Queue {object} is refused by phalanx serve already (not because of this change): {message}"
            ));
        }
        if let Some(e) = &self.effect {
            out.push('\n');
            out.push_str(&e.human());
        }
        out
    }
}

/// A gang and its pod count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GangCount {
    /// The job (`namespace/name`).
    pub job: String,
    /// Its pods concerned.
    pub pods: u32,
    /// Its queue (path).
    pub queue: String,
}

/// What a change does to gangs, from cycles of serve's engine over the cluster as listed:
/// the same cycles without and with the change, compared. Cycles run at the current time and
/// then whenever the engine says time alone brings work, up to `reclaimDelayMs` later, so a
/// blocked gang's reclaim shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    /// Pending gangs that would be placed (bound) with the change only.
    pub admitted: Vec<GangCount>,
    /// PodGroups without their pods yet that would be admitted (`Inqueue`: their operator then
    /// creates the pods) with the change only.
    pub inqueue: Vec<String>,
    /// Gangs that would be placed without the change but not with it.
    pub held_back: Vec<GangCount>,
    /// Running gangs that would be evicted with the change only (reclaim, preemption), with the
    /// reason.
    pub evicted: Vec<(GangCount, String)>,
    /// Running gangs whose queue would go over its deserved share with the change (their
    /// queue's `reclaimable` allowing): another queue with pending work may reclaim them.
    pub reclaimable: Vec<(GangCount, String)>,
}

impl Effect {
    /// Lines for people.
    pub fn human(&self) -> String {
        let mut lines = Vec::new();
        for g in &self.admitted {
            lines.push(format!(
                "would admit: {} ({} pods, queue {})",
                g.job, g.pods, g.queue
            ));
        }
        for g in &self.inqueue {
            lines.push(format!(
                "would admit: {g} (PodGroup Inqueue; its operator then creates the pods)"
            ));
        }
        for g in &self.held_back {
            lines.push(format!(
                "would no longer start: {} ({} pods, queue {})",
                g.job, g.pods, g.queue
            ));
        }
        for (g, why) in &self.evicted {
            lines.push(format!(
                "would evict: {} ({} pods, queue {}, {why})",
                g.job, g.pods, g.queue
            ));
        }
        for (g, why) in &self.reclaimable {
            lines.push(format!(
                "would become reclaimable: {} ({} pods, queue {}: {why})",
                g.job, g.pods, g.queue
            ));
        }
        if self.admitted.is_empty() && self.inqueue.is_empty() && self.held_back.is_empty() {
            lines.push("no pending gang is affected".into());
        }
        if self.evicted.is_empty() && self.reclaimable.is_empty() {
            lines.push("no running gang is affected".into());
        }
        lines.join("\n")
    }
}

/// Attempts of [`run`] when the Queue changes between the check and the write.
pub const CONFLICT_ATTEMPTS: u32 = 5;

/// Carries out `op` on the Queue `name` with `client`: lists the Queues, checks the change as
/// serve would, and (unless `options.dry_run`) writes it.
///
/// The write is guarded by the resourceVersion that was checked. Serve's status writer bumps
/// that version whenever a queue's counts change, so a 409 Conflict starts over from the list
/// (the check included) after 10, 20, 40, 80 ms, as client-go's `retry.RetryOnConflict`; after
/// [`CONFLICT_ATTEMPTS`] the conflict is the answer.
pub async fn run(
    client: &kube::Client,
    name: &str,
    op: &Operation,
    options: &Options,
) -> Result<Outcome, QueueAdminError> {
    let mut attempt = 1;
    loop {
        match attempt_once(client, name, op, options).await {
            Err(QueueAdminError::Api { code: 409, .. }) if attempt < CONFLICT_ATTEMPTS => {
                tracing::debug!(queue = %name, attempt, "conflict: the Queue changed; checking again");
                tokio::time::sleep(std::time::Duration::from_millis(10 << (attempt - 1))).await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

async fn attempt_once(
    client: &kube::Client,
    name: &str,
    op: &Operation,
    options: &Options,
) -> Result<Outcome, QueueAdminError> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &queue_resource());
    let listed = match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) if s.code == 404 => return Err(QueueAdminError::NoQueueCrd),
        r => r.map_err(server(format!("list {RESOURCE}")))?.items,
    };
    let existing = listed
        .iter()
        .find(|q| q.metadata.name.as_deref() == Some(name));
    let (changed, patch, verb) = match (op, existing) {
        (Operation::Create(_), Some(_)) => {
            return Err(QueueAdminError::AlreadyExists(name.into()));
        }
        (Operation::Create(edit), None) => {
            let mut obj = DynamicObject::new(name, &queue_resource());
            let mut spec = json!({"spec": {"weight": 1}});
            merge_patch(&mut spec, &edit.spec_patch());
            obj.data = spec;
            (obj, Value::Null, "created")
        }
        (_, None) => return Err(QueueAdminError::NotFound(name.into())),
        (Operation::Set(edit), Some(cur)) => {
            let patch = edit.spec_patch();
            let mut obj = cur.clone();
            merge_patch(&mut obj.data, &patch);
            (obj, patch, "patched")
        }
        (Operation::State { open }, Some(cur)) => {
            let state = if *open {
                translate::QUEUE_OPEN
            } else {
                translate::QUEUE_CLOSED
            };
            let patch = json!({"status": {"state": state}});
            let mut obj = cur.clone();
            merge_patch(&mut obj.data, &patch);
            (obj, patch, if *open { "opened" } else { "closed" })
        }
    };
    let before = existing.map(|q| q.data.clone()).unwrap_or(Value::Null);
    let changes = field_changes(&before, &changed.data);
    let cluster = if options.dry_run {
        cluster_inputs(client).await?
    } else {
        Vec::new()
    };
    let check = check(&listed, &changed, &cluster, options)?;
    let mut outcome = Outcome {
        name: name.into(),
        verb,
        dry_run: options.dry_run,
        unchanged: existing.is_some() && changes.is_empty(),
        changes,
        already_refused: check.already_refused,
        effect: check.effect,
    };
    if options.dry_run {
        return Ok(outcome);
    }
    // The version checked: a Queue changed since it was listed is a 409 Conflict, not an
    // unchecked write.
    let guarded = |mut patch: Value| {
        if let Some(rv) = existing.and_then(|q| q.metadata.resource_version.clone()) {
            patch["metadata"] = json!({ "resourceVersion": rv });
        }
        patch
    };
    let what = format!(
        "{} {RESOURCE}/{name}",
        if existing.is_some() {
            "patch"
        } else {
            "create"
        }
    );
    let written = match op {
        Operation::Create(_) => api
            .create(&PostParams::default(), &changed)
            .await
            .map_err(server(what))?,
        Operation::Set(_) => api
            .patch(name, &PatchParams::default(), &Patch::Merge(guarded(patch)))
            .await
            .map_err(server(what))?,
        Operation::State { .. } => {
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(guarded(patch)))
                .await
            {
                // The object was just listed: a 404 here is the subresource's.
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    return Err(QueueAdminError::NoStatusSubresource(name.into()));
                }
                r => r.map_err(server(format!("patch {RESOURCE}/{name}/status")))?,
            }
        }
    };
    if let Operation::State { open } = op {
        let kept = written
            .data
            .pointer("/status/state")
            .and_then(Value::as_str);
        let want = if *open {
            translate::QUEUE_OPEN
        } else {
            translate::QUEUE_CLOSED
        };
        if kept != Some(want) {
            // A CRD whose schema has no status.state prunes it silently.
            return Err(QueueAdminError::NoStatusSubresource(name.into()));
        }
    }
    outcome.unchanged = existing.is_some() && field_changes(&before, &written.data).is_empty();
    tracing::info!(queue = %name, verb, "queue changed");
    Ok(outcome)
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// Queues serve refuses without the change too.
    pub already_refused: Vec<(String, String)>,
    /// With cluster inputs: the effect on gangs.
    pub effect: Option<Effect>,
}

/// Checks replacing (or adding) `changed` among the Queue objects `listed`, as serve would
/// take it: a [`Core`] configured with `listed`, then given `changed` as a watch delivers it.
/// With `cluster` (the other watched kinds, as [`cluster_inputs`] lists them), also runs the
/// engine's cycles without and with the change and compares them ([`Effect`]).
pub fn check(
    listed: &[DynamicObject],
    changed: &DynamicObject,
    cluster: &[Input],
    options: &Options,
) -> Result<Check, QueueAdminError> {
    let name = changed.metadata.name.clone().unwrap_or_default();
    let config = &options.config;
    let fresh = || {
        let mut core = Core::new(config.engine(), config.scheduler_names(), None);
        for input in cluster {
            core.ingest(input.clone());
        }
        core.ingest(Input::Queue(Change::Relisted(listed.to_vec())));
        core.flush();
        core
    };
    let mut without = fresh();
    let mut with = fresh();
    with.ingest(Input::Queue(Change::Apply(Box::new(changed.clone()))));
    with.flush();
    let before = without.queue_problems().clone();
    let after = with.queue_problems();
    let mut refused: Vec<(String, String)> = after
        .iter()
        .filter(|(object, message)| {
            **object == name || before.get(*object).is_none_or(|m| m != *message)
        })
        .map(|(o, m)| (o.clone(), m.clone()))
        .collect();
    // The changed queue first.
    refused.sort_by_key(|(o, _)| *o != name);
    if !refused.is_empty() {
        return Err(QueueAdminError::Refused(Refusal {
            queue: name,
            refused,
        }));
    }
    let already_refused = before
        .into_iter()
        .filter(|(o, _)| *o != name && after.contains_key(o))
        .collect();
    let effect = (!cluster.is_empty()).then(|| {
        let reclaimable_before = over_deserved(&without);
        let reclaimable_after = over_deserved(&with);
        let horizon = config.engine().reclaim_delay.0 + 1000;
        let now = crate::runner::now();
        let a = cycles(&mut without, now, horizon);
        let b = cycles(&mut with, now, horizon);
        compare(&a, &b, &reclaimable_before, &reclaimable_after)
    });
    Ok(Check {
        already_refused,
        effect,
    })
}

/// What cycles did: gangs bound and evicted, and the view after them.
struct Run {
    binds: BTreeMap<String, GangCount>,
    evicted: BTreeMap<String, (GangCount, String)>,
    published: Published,
}

/// Cycles at `now`, then whenever the engine asks to be woken, until `horizon` ms later.
fn cycles(core: &mut Core, now: Time, horizon: u64) -> Run {
    let mut run = Run {
        binds: BTreeMap::new(),
        evicted: BTreeMap::new(),
        published: Published::default(),
    };
    let end = now.0.saturating_add(horizon);
    let mut at = now;
    for _ in 0..16 {
        let actions: Actions = core.cycle(at);
        for b in &actions.binds {
            let entry = run.binds.entry(b.job.clone()).or_insert_with(|| GangCount {
                job: b.job.clone(),
                pods: 0,
                queue: b.queue.clone(),
            });
            entry.pods += b.items.len() as u32;
        }
        for e in &actions.evicted {
            run.evicted.entry(e.job.clone()).or_insert_with(|| {
                (
                    GangCount {
                        job: e.job.clone(),
                        pods: e.pods,
                        queue: e.queue.clone(),
                    },
                    e.reason.to_string(),
                )
            });
        }
        match actions.report.wake_at {
            Some(t) if t.0 > at.0 && t.0 <= end => at = t,
            _ => break,
        }
    }
    run.published = core.publish();
    run
}

/// Running gangs whose queue holds more than its deserved share, and is reclaimable: job to
/// (gang, why).
fn over_deserved(core: &Core) -> BTreeMap<String, (GangCount, String)> {
    let published = core.publish();
    let view = core.engine().view();
    let reclaimable: BTreeSet<String> = view
        .queues()
        .into_iter()
        .filter(|q| q.info.spec.reclaimable)
        .map(|q| q.info.spec.name)
        .collect();
    let over: BTreeMap<&str, String> = published
        .queues
        .iter()
        .filter(|q| reclaimable.contains(&q.name))
        .filter_map(|q| {
            let (resource, held) = q
                .allocated
                .iter()
                .find(|(r, v)| **v > q.deserved.get(*r).copied().unwrap_or(0))?;
            let deserved = q.deserved.get(resource).copied().unwrap_or(0);
            Some((
                q.name.as_str(),
                format!("over its deserved {resource}: holds {held}, deserves {deserved}"),
            ))
        })
        .collect();
    published
        .jobs
        .iter()
        .filter(|(_, j)| j.phase == "Running")
        .filter_map(|(job, j)| {
            let why = over.get(j.queue.as_str())?;
            Some((
                job.clone(),
                (
                    GangCount {
                        job: job.clone(),
                        pods: j.running,
                        queue: j.queue.clone(),
                    },
                    why.clone(),
                ),
            ))
        })
        .collect()
}

fn compare(
    without: &Run,
    with: &Run,
    reclaimable_before: &BTreeMap<String, (GangCount, String)>,
    reclaimable_after: &BTreeMap<String, (GangCount, String)>,
) -> Effect {
    let phase = |run: &Run, job: &str| {
        run.published
            .jobs
            .get(job)
            .map(|j| j.phase)
            .unwrap_or_default()
    };
    let started = |run: &Run, job: &str| {
        run.binds.contains_key(job) || matches!(phase(run, job), "Inqueue" | "Running")
    };
    Effect {
        admitted: with
            .binds
            .iter()
            .filter(|(job, _)| !without.binds.contains_key(*job))
            .map(|(_, g)| g.clone())
            .collect(),
        inqueue: with
            .published
            .jobs
            .iter()
            .filter(|(job, j)| {
                j.phase == "Inqueue" && !with.binds.contains_key(*job) && !started(without, job)
            })
            .map(|(job, _)| job.clone())
            .collect(),
        held_back: without
            .binds
            .iter()
            .filter(|(job, _)| !with.binds.contains_key(*job))
            .map(|(_, g)| g.clone())
            .collect(),
        evicted: with
            .evicted
            .iter()
            .filter(|(job, _)| !without.evicted.contains_key(*job))
            .map(|(_, e)| e.clone())
            .collect(),
        reclaimable: reclaimable_after
            .iter()
            .filter(|(job, _)| !reclaimable_before.contains_key(*job))
            .filter(|(job, _)| !with.evicted.contains_key(*job))
            .map(|(_, r)| r.clone())
            .collect(),
    }
}

/// Every Node, Pod, PriorityClass and PodGroup (of each flavour), listed once and wrapped as
/// the watchers wrap a complete list ([`Change::Relisted`], see [`crate::watch`]). A PodGroup
/// kind that is not served is an empty list, as for the watchers.
pub async fn cluster_inputs(client: &kube::Client) -> Result<Vec<Input>, QueueAdminError> {
    let lp = ListParams::default();
    let nodes = Api::<Node>::all(client.clone())
        .list(&lp)
        .await
        .map_err(server("list nodes (--dry-run reads the cluster)"))?
        .items;
    let classes = Api::<PriorityClass>::all(client.clone())
        .list(&lp)
        .await
        .map_err(server(
            "list priorityclasses.scheduling.k8s.io (--dry-run reads the cluster)",
        ))?
        .items;
    let mut inputs = vec![
        Input::Node(Change::Relisted(nodes)),
        Input::PriorityClass(Change::Relisted(classes)),
    ];
    for flavor in [Flavor::Volcano, Flavor::SchedulerPlugins, Flavor::Upstream] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &group_resource(flavor));
        let groups = match api.list(&lp).await {
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            r => {
                r.map_err(server(format!(
                    "list podgroups.{} (--dry-run reads the cluster)",
                    flavor.group()
                )))?
                .items
            }
        };
        inputs.push(Input::Group(flavor, Change::Relisted(groups)));
    }
    let pods = Api::<Pod>::all(client.clone())
        .list(&lp)
        .await
        .map_err(server("list pods (--dry-run reads the cluster)"))?
        .items;
    inputs.push(Input::Pod(Change::Relisted(pods)));
    Ok(inputs)
}

/// The fields of `spec` and `status.state` that differ, as `path: old -> new` (`(unset)` for
/// absent), in path order.
fn field_changes(old: &Value, new: &Value) -> Vec<String> {
    fn leaves(prefix: String, v: Option<&Value>, out: &mut BTreeMap<String, String>) {
        match v {
            Some(Value::Object(m)) => {
                for (k, x) in m {
                    leaves(format!("{prefix}.{k}"), Some(x), out);
                }
            }
            Some(Value::String(s)) => {
                out.insert(prefix, s.clone());
            }
            Some(other) => {
                out.insert(prefix, other.to_string());
            }
            None => {}
        }
    }
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves("spec".into(), old.get("spec"), &mut a);
    leaves("spec".into(), new.get("spec"), &mut b);
    leaves("status.state".into(), old.pointer("/status/state"), &mut a);
    leaves("status.state".into(), new.pointer("/status/state"), &mut b);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |m: &BTreeMap<String, String>| {
                m.get(k).cloned().unwrap_or_else(|| "(unset)".into())
            };
            format!("{k}: {} -> {}", show(&a), show(&b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str, spec: Value) -> DynamicObject {
        let mut q = DynamicObject::new(name, &queue_resource());
        q.data = json!({ "spec": spec });
        q
    }

    fn changed(q: &DynamicObject, edit: &QueueEdit) -> DynamicObject {
        let mut q = q.clone();
        merge_patch(&mut q.data, &edit.spec_patch());
        q
    }

    #[test]
    fn flags_parse_kubernetes_quantities_and_name_the_flag() {
        let e =
            QuantitiesEdit::parse("--capability", "cpu=200,memory=1Ti,nvidia.com/gpu=16").unwrap();
        let QuantitiesEdit::Set(m) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(m["nvidia.com/gpu"].as_deref(), Some("16"));
        assert_eq!(m["memory"].as_deref(), Some("1Ti"));
        assert_eq!(
            QuantitiesEdit::parse("--deserved", "memory-").unwrap(),
            QuantitiesEdit::Set(BTreeMap::from([("memory".into(), None)]))
        );
        assert_eq!(
            QuantitiesEdit::parse("--capability", "none").unwrap(),
            QuantitiesEdit::Remove
        );
        for (text, says) in [
            ("cpu=12x", "--capability: cpu=12x: invalid quantity"),
            ("cpu", "--capability: \"cpu\" is not resource=quantity"),
            ("cpu=1,cpu=2", "--capability: cpu is given twice"),
            ("=3", "is not a resource name"),
            ("", "--capability: empty"),
        ] {
            let e = QuantitiesEdit::parse("--capability", text).unwrap_err();
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
        // Negative amounts are serve's to refuse, in its words.
        assert!(QuantitiesEdit::parse("--capability", "cpu=-1").is_ok());
    }

    #[test]
    fn the_patch_is_a_merge_patch_of_the_fields_given() {
        let edit = QueueEdit {
            weight: Some(3),
            capability: Some(QuantitiesEdit::parse("--capability", "cpu=200,memory-").unwrap()),
            guarantee: Some(QuantitiesEdit::parse("--guarantee", "cpu=10").unwrap()),
            deserved: Some(QuantitiesEdit::Remove),
            ..QueueEdit::default()
        };
        assert_eq!(
            edit.spec_patch(),
            json!({"spec": {"weight": 3, "capability": {"cpu": "200", "memory": null},
                            "guarantee": {"resource": {"cpu": "10"}}, "deserved": null}})
        );
        let q = queue(
            "q1",
            json!({"weight": 1, "capability": {"cpu": "100", "memory": "1Ti", "pods": 50},
                   "deserved": {"cpu": 50}, "reclaimable": false}),
        );
        let after = changed(&q, &edit);
        assert_eq!(
            after.data["spec"],
            json!({"weight": 3, "capability": {"cpu": "200", "pods": 50},
                   "guarantee": {"resource": {"cpu": "10"}}, "reclaimable": false})
        );
        assert_eq!(
            field_changes(&q.data, &after.data),
            [
                "spec.capability.cpu: 100 -> 200",
                "spec.capability.memory: 1Ti -> (unset)",
                "spec.deserved.cpu: 50 -> (unset)",
                "spec.guarantee.resource.cpu: (unset) -> 10",
                "spec.weight: 1 -> 3",
            ]
        );
    }

    fn refusal(listed: &[DynamicObject], changed: &DynamicObject) -> Refusal {
        match check(listed, changed, &[], &Options::default()) {
            Err(QueueAdminError::Refused(r)) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_change_serve_would_refuse_is_refused_in_serves_words() {
        let listed = vec![
            queue(
                "q1",
                json!({"weight": 1, "capability": {"cpu": 100}, "guarantee": {"resource": {"cpu": 40}}}),
            ),
            queue(
                "child",
                json!({"parent": "q1", "guarantee": {"resource": {"cpu": 40}}}),
            ),
        ];
        // As listed, serve takes them: whatever is refused below, the change causes.
        assert_eq!(
            check(&listed, &listed[0], &[], &Options::default()).unwrap(),
            Check::default()
        );
        // A negative capability: serve names the queue and the field.
        let r = refusal(
            &listed,
            &changed(
                &listed[0],
                &QueueEdit {
                    capability: Some(QuantitiesEdit::parse("--capability", "cpu=-1").unwrap()),
                    ..QueueEdit::default()
                },
            ),
        );
        assert_eq!(r.queue, "q1");
        assert!(r.refused[0].0 == "q1", "{r:?}");
        assert!(r.refused[0].1.contains("capability"), "{r}");
        assert!(r.refused[0].1.contains("cpu"), "{r}");
        // A guarantee above the capability.
        let r = refusal(
            &listed,
            &changed(
                &listed[0],
                &QueueEdit {
                    guarantee: Some(QuantitiesEdit::parse("--guarantee", "cpu=200").unwrap()),
                    ..QueueEdit::default()
                },
            ),
        );
        assert!(r.refused[0].1.contains("guarantee"), "{r}");
        assert!(r.refused[0].1.contains("capability"), "{r}");
        // A weight out of range.
        let r = refusal(
            &listed,
            &changed(
                &listed[0],
                &QueueEdit {
                    weight: Some(0),
                    ..QueueEdit::default()
                },
            ),
        );
        assert!(r.refused[0].1.contains("weight 0"), "{r}");
        // A parent that does not exist.
        let r = refusal(
            &listed,
            &changed(
                &listed[1],
                &QueueEdit {
                    parent: Some("nope".into()),
                    ..QueueEdit::default()
                },
            ),
        );
        assert!(
            r.refused[0]
                .1
                .contains("spec.parent: queue nope does not exist"),
            "{r}"
        );
        // Fine changes pass, including one that fixes nothing else.
        let ok = changed(
            &listed[0],
            &QueueEdit {
                weight: Some(3),
                capability: Some(QuantitiesEdit::parse("--capability", "cpu=200").unwrap()),
                ..QueueEdit::default()
            },
        );
        assert_eq!(
            check(&listed, &ok, &[], &Options::default()).unwrap(),
            Check::default()
        );
    }

    #[test]
    fn a_queue_refused_already_is_reported_not_blamed_on_the_change() {
        let listed = vec![
            queue("q1", json!({"weight": 1})),
            queue("broken", json!({"parent": "missing"})),
        ];
        let ok = changed(
            &listed[0],
            &QueueEdit {
                weight: Some(2),
                ..QueueEdit::default()
            },
        );
        let c = check(&listed, &ok, &[], &Options::default()).unwrap();
        assert_eq!(c.already_refused.len(), 1, "{c:?}");
        assert_eq!(c.already_refused[0].0, "broken");
    }
}
