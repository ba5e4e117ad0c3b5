//! The object store: every object of every resource, one monotonic resourceVersion counter, and
//! the per-resource event history that watches resume from.
//!
//! Objects are kept as their serialized JSON (`Bytes`) plus the few fields selectors need, so a
//! list is a concatenation and 150,000 pods fit in a few hundred MiB. A write parses the one
//! object it changes, edits the `serde_json::Value`, and serializes it back under the lock, so
//! resourceVersions are assigned in commit order and every watcher sees the same sequence.
//!
//! ```text
//!  write ──lock──> rv += 1 ─> objects[(ns, name)] ─> history (last `window` events) ─> broadcast
//!                                                          │                         │
//!  watch(from rv) ──lock──> replay history after rv ───────┘   then live events <────┘
//!  watch(from rv older than history) ─> 410 Expired
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::meta::{UidGen, now_rfc3339, obj_mut, path, rfc3339, unix_now};
use crate::resources::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;

/// Storage key: (group, plural).
pub type TableKey = (String, String);

/// One stored object: its JSON and the fields selectors look at without parsing it.
#[derive(Debug)]
pub struct Stored {
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The resourceVersion written into `json`.
    pub rv: u64,
    /// `metadata.labels`.
    pub labels: Vec<(String, String)>,
    /// Indexed fields (pods: `spec.nodeName`, `spec.schedulerName`, `status.phase`; events: the
    /// `source` selector field).
    pub fields: Vec<(&'static str, String)>,
    /// The object, serialized.
    pub json: Bytes,
}

fn indexed_paths(key: &TableKey) -> &'static [&'static str] {
    if key.0.is_empty() && key.1 == "pods" {
        &[
            "spec.nodeName",
            "spec.schedulerName",
            "status.phase",
            "metadata.uid",
            "metadata.deletionTimestamp",
        ]
    } else {
        &[]
    }
}

fn field_string(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

impl Stored {
    fn new(key: &TableKey, namespace: &str, name: &str, rv: u64, obj: &Value) -> Self {
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), field_string(Some(v))))
                    .collect()
            })
            .unwrap_or_default();
        let mut fields: Vec<(&'static str, String)> = indexed_paths(key)
            .iter()
            .map(|p| (*p, field_string(path(obj, p))))
            .collect();
        if key.0.is_empty() && key.1 == "events" {
            // kube-apiserver's selectable `source` of an event is not a JSON path.
            fields.push(("source", crate::events::selectable_source(obj)));
        }
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            rv,
            labels,
            fields,
            json: Bytes::from(serde_json::to_vec(obj).expect("a Value always serializes")),
        }
    }

    /// The object as a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).expect("stored JSON is valid")
    }

    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A field's value as a selector sees it; absent fields are `""`.
    pub fn field(&self, dotted: &str) -> String {
        match dotted {
            "metadata.name" => return self.name.clone(),
            "metadata.namespace" => return self.namespace.clone(),
            _ => {}
        }
        if let Some((_, v)) = self.fields.iter().find(|(p, _)| *p == dotted) {
            return v.clone();
        }
        field_string(path(&self.value(), dotted))
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted; `object` is its last state, at the deletion's resourceVersion.
    Deleted,
}

impl EventType {
    /// The watch wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change, shared by every watcher and the history.
#[derive(Debug)]
pub struct WatchEvent {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// The object after the change.
    pub object: Arc<Stored>,
    /// The object before the change (for updates and deletes), so selector watches can turn an
    /// object that leaves the selection into a DELETED, as kube-apiserver's watch cache does.
    pub prev: Option<Arc<Stored>>,
}

/// Which objects a list or watch wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this namespace, or all.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
}

impl Filter {
    /// True when the object is selected.
    pub fn matches(&self, o: &Stored) -> bool {
        if let Some(ns) = &self.namespace
            && &o.namespace != ns
        {
            return false;
        }
        self.labels.matches(|k| o.label(k))
            && self.fields.reqs.iter().all(|r| {
                let v = o.field(&r.path);
                (v == r.value) != r.negate
            })
    }

    /// True when no selector narrows the namespace's objects.
    pub fn is_unfiltered(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

/// Options of a DELETE.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`; pods default to `spec.terminationGracePeriodSeconds`.
    pub grace: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub rv: Option<String>,
}

/// The result of a DELETE.
#[derive(Debug, Clone)]
pub enum Deletion {
    /// The object is gone; this is its last state.
    Gone(Arc<Stored>),
    /// The object is terminating (graceful pod deletion or finalizers); this is its new state.
    Pending(Arc<Stored>),
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// The list's resourceVersion.
    pub rv: u64,
    /// Matching objects in (namespace, name) order.
    pub items: Vec<Arc<Stored>>,
    /// Token for the next page.
    pub continue_token: Option<String>,
    /// Objects left after this page, when known.
    pub remaining: Option<u64>,
}

/// Where a watch starts.
#[derive(Debug)]
pub struct WatchStart {
    /// Objects to send as synthetic ADDED events first (watch without a resourceVersion).
    pub initial: Vec<Arc<Stored>>,
    /// Kept events after the requested resourceVersion.
    pub backlog: Vec<Arc<WatchEvent>>,
    /// Live events from here on (may repeat backlog events; skip rv <= the last sent).
    pub rx: broadcast::Receiver<Arc<WatchEvent>>,
    /// The store's resourceVersion when the watch started.
    pub rv: u64,
}

struct Table {
    objects: BTreeMap<(String, String), Arc<Stored>>,
    history: VecDeque<Arc<WatchEvent>>,
    floor_rv: u64,
    tx: broadcast::Sender<Arc<WatchEvent>>,
}

struct Inner {
    rv: u64,
    tables: HashMap<TableKey, Table>,
    resources: Vec<Arc<ResourceDef>>,
}

impl Inner {
    /// The stored object `name` (in `namespace`, for a namespaced resource), or 404.
    fn find(
        &self,
        res: &ResourceDef,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Stored>, ApiError> {
        let ns = if res.namespaced { namespace } else { "" };
        self.tables
            .get(&res.storage_key())
            .and_then(|t| t.objects.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::NotFound {
                resource: res.qualified(),
                name: name.to_string(),
            })
    }
}

/// Tuning of the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Events kept per resource for watch resumption; older resourceVersions get 410 Gone.
    pub window: usize,
    /// Per-resource broadcast buffer; a watcher that falls further behind is disconnected and
    /// resumes from the history like any client whose connection dropped.
    pub broadcast_capacity: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            window: 100_000,
            broadcast_capacity: 65_536,
        }
    }
}

/// The in-memory object store. Cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    uids: UidGen,
    cfg: StoreConfig,
    observer: OnceLock<mpsc::UnboundedSender<Observed>>,
}

/// A pod or node event, as the simulated kubelets receive it.
#[derive(Debug, Clone)]
pub enum Observed {
    /// A pod changed.
    Pod(Arc<WatchEvent>),
    /// A node changed.
    Node(Arc<WatchEvent>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("cfg", &self.cfg).finish()
    }
}

fn conflict(res: &ResourceDef, name: &str) -> ApiError {
    ApiError::Conflict {
        resource: res.qualified(),
        name: name.to_string(),
        message:
            "the object has been modified; please apply your changes to the latest version and try again"
                .into(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.'])
}

/// True when two objects differ only in metadata and status (so `generation` stays).
fn same_outside_meta_and_status(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let skip = |k: &String| k == "metadata" || k == "status";
    a.iter()
        .filter(|(k, _)| !skip(k))
        .all(|(k, v)| b.get(k) == Some(v))
        && b.keys().filter(|k| !skip(k)).all(|k| a.contains_key(k))
}

impl Store {
    /// An empty store serving `resources`.
    pub fn new(cfg: StoreConfig, resources: Vec<ResourceDef>) -> Self {
        let store = Self {
            inner: Mutex::new(Inner {
                rv: 0,
                tables: HashMap::new(),
                resources: Vec::new(),
            }),
            uids: UidGen::default(),
            cfg,
            observer: OnceLock::new(),
        };
        store.register(resources);
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves no half-written state we rely on, so recover.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Receives every pod and node event, in commit order (the simulated kubelets).
    pub fn set_observer(&self, tx: mpsc::UnboundedSender<Observed>) {
        let _ = self.observer.set(tx);
    }

    /// The id generator, shared with callers that name objects.
    pub fn uids(&self) -> &UidGen {
        &self.uids
    }

    /// The current resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Adds or replaces served resources (startup and CRD creation).
    pub fn register(&self, defs: Vec<ResourceDef>) {
        let mut inner = self.lock();
        for d in defs {
            let key = d.storage_key();
            inner.resources.retain(|r| {
                !(r.group == d.group && r.version == d.version && r.plural == d.plural)
            });
            inner.resources.push(Arc::new(d));
            let cap = self.cfg.broadcast_capacity;
            inner.tables.entry(key).or_insert_with(|| Table {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                floor_rv: 0,
                tx: broadcast::channel(cap).0,
            });
        }
    }

    /// Stops serving a CRD's resource and deletes its objects (with DELETED events).
    pub fn unregister(&self, group: &str, plural: &str) {
        let mut inner = self.lock();
        let key = (group.to_string(), plural.to_string());
        let objects: Vec<Arc<Stored>> = inner
            .tables
            .get(&key)
            .map(|t| t.objects.values().cloned().collect())
            .unwrap_or_default();
        for o in objects {
            let v = o.value();
            self.commit(&mut inner, &key, v, EventType::Deleted, Some(o));
        }
        inner
            .resources
            .retain(|r| !(r.group == group && r.plural == plural));
    }

    /// Every served resource.
    pub fn resources(&self) -> Vec<Arc<ResourceDef>> {
        self.lock().resources.clone()
    }

    /// The resource served at group/version/plural.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.lock()
            .resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    fn commit(
        &self,
        inner: &mut Inner,
        key: &TableKey,
        mut obj: Value,
        kind: EventType,
        prev: Option<Arc<Stored>>,
    ) -> Arc<Stored> {
        inner.rv += 1;
        let rv = inner.rv;
        obj_mut(&mut obj, "metadata").insert("resourceVersion".into(), json!(rv.to_string()));
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let stored = Arc::new(Stored::new(key, &ns, &name, rv, &obj));
        let table = inner
            .tables
            .get_mut(key)
            .expect("table of a served resource");
        if kind == EventType::Deleted {
            table.objects.remove(&(ns, name));
        } else {
            table.objects.insert((ns, name), stored.clone());
        }
        let ev = Arc::new(WatchEvent {
            rv,
            kind,
            object: stored.clone(),
            prev,
        });
        table.history.push_back(ev.clone());
        while table.history.len() > self.cfg.window {
            if let Some(old) = table.history.pop_front() {
                table.floor_rv = old.rv;
            }
        }
        let _ = table.tx.send(ev.clone());
        if let (true, Some(tx)) = (key.0.is_empty(), self.observer.get()) {
            match key.1.as_str() {
                "pods" => drop(tx.send(Observed::Pod(ev))),
                "nodes" => drop(tx.send(Observed::Node(ev))),
                _ => {}
            }
        }
        stored
    }

    /// Creates an object (POST). Sets uid, creationTimestamp, generation and resourceVersion.
    pub fn create(
        &self,
        res: &ResourceDef,
        namespace: &str,
        mut obj: Value,
    ) -> Result<Arc<Stored>, ApiError> {
        let Value::Object(top) = &mut obj else {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            ));
        };
        top.insert("apiVersion".into(), json!(res.api_version()));
        top.insert("kind".into(), json!(res.kind));
        let suffix = self.uids.name_suffix();
        let meta = obj_mut(&mut obj, "metadata");
        let name = match (
            meta.get("name").and_then(Value::as_str),
            meta.get("generateName"),
        ) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(Value::String(prefix))) => format!("{prefix}{suffix}"),
            _ => {
                return Err(ApiError::Invalid {
                    resource: res.qualified(),
                    name: String::new(),
                    message: "metadata.name: Required value: name or generateName is required"
                        .into(),
                });
            }
        };
        if !valid_name(&name) {
            return Err(ApiError::Invalid {
                resource: res.qualified(),
                name: name.clone(),
                message: format!(
                    "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
                ),
            });
        }
        if res.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != namespace => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ));
                }
                _ => {}
            }
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(self.uids.next_uid()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ] {
            meta.remove(k);
        }
        let ns = if res.namespaced { namespace } else { "" };
        let mut inner = self.lock();
        if res.namespaced {
            let ns_key = (String::new(), "namespaces".to_string());
            let exists = inner
                .tables
                .get(&ns_key)
                .is_some_and(|t| t.objects.contains_key(&(String::new(), ns.to_string())));
            if !exists {
                return Err(ApiError::NotFound {
                    resource: "namespaces".into(),
                    name: ns.to_string(),
                });
            }
        }
        let key = res.storage_key();
        let table = inner.tables.get(&key).ok_or(ApiError::NoSuchPath)?;
        if table.objects.contains_key(&(ns.to_string(), name.clone())) {
            return Err(ApiError::AlreadyExists {
                resource: res.qualified(),
                name,
            });
        }
        Ok(self.commit(&mut inner, &key, obj, EventType::Added, None))
    }

    /// Reads one object.
    pub fn get(
        &self,
        res: &ResourceDef,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Stored>, ApiError> {
        self.lock().find(res, namespace, name)
    }

    /// Read-modify-write of one object, atomic with respect to every other write.
    ///
    /// `f` edits the current object. If it leaves `metadata.resourceVersion` different from the
    /// current one, the update is a 409 Conflict (a stale PUT, or a patch with an old rv). Identity
    /// fields (name, namespace, uid, creationTimestamp, deletion fields) cannot be changed;
    /// `generation` is bumped when anything outside metadata and status changes; an update that
    /// changes nothing commits nothing. An object that is terminating and loses its last
    /// finalizer is deleted.
    pub fn modify(
        &self,
        res: &ResourceDef,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Stored>, ApiError> {
        let key = res.storage_key();
        let mut inner = self.lock();
        let cur = inner.find(res, namespace, name)?;
        let old = cur.value();
        let mut new = old.clone();
        f(&mut new)?;
        if !new.is_object() {
            return Err(ApiError::BadRequest(
                "the object must be a JSON object".into(),
            ));
        }
        let cur_rv = cur.rv.to_string();
        match new
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            Some(r) if !r.is_empty() && r != cur_rv => return Err(conflict(res, name)),
            _ => {}
        }
        let top = new.as_object_mut().expect("checked object");
        top.insert("apiVersion".into(), json!(res.api_version()));
        top.insert("kind".into(), json!(res.kind));
        let old_meta = old.get("metadata").and_then(Value::as_object);
        let meta = obj_mut(&mut new, "metadata");
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.and_then(|m| m.get(k)) {
                Some(v) => {
                    if meta.get(k) != Some(v) {
                        meta.insert(k.into(), v.clone());
                    }
                }
                None => {
                    meta.remove(k);
                }
            };
        }
        meta.insert("resourceVersion".into(), json!(cur_rv));
        if !same_outside_meta_and_status(&old, &new) {
            let g = old_meta
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            obj_mut(&mut new, "metadata").insert("generation".into(), json!(g + 1));
        }
        if new == old {
            return Ok(cur);
        }
        let finalizers_empty = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        let terminating = new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0;
        let kind = if terminating && finalizers_empty {
            EventType::Deleted
        } else {
            EventType::Modified
        };
        Ok(self.commit(&mut inner, &key, new, kind, Some(cur)))
    }

    /// Deletes an object. Bound, non-terminal pods are deleted gracefully (deletionTimestamp set,
    /// the kubelet finishes the deletion); objects with finalizers wait for them to be removed.
    pub fn delete(
        &self,
        res: &ResourceDef,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deletion, ApiError> {
        let key = res.storage_key();
        let mut inner = self.lock();
        let cur = inner.find(res, namespace, name)?;
        let mut v = cur.value();
        if let Some(uid) = &opts.uid {
            let actual = v
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("");
            if actual != uid {
                return Err(ApiError::Conflict {
                    resource: res.qualified(),
                    name: name.to_string(),
                    message: format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    ),
                });
            }
        }
        if let Some(rv) = &opts.rv
            && *rv != cur.rv.to_string()
        {
            return Err(conflict(res, name));
        }
        let grace = if res.is_core("pods") {
            pod_grace(&v, opts.grace)
        } else {
            0
        };
        let has_finalizers = v
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if grace == 0 && !has_finalizers {
            let gone = self.commit(&mut inner, &key, v, EventType::Deleted, Some(cur));
            return Ok(Deletion::Gone(gone));
        }
        let meta = obj_mut(&mut v, "metadata");
        let prior = meta
            .get("deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        let grace = prior.map_or(grace, |p| p.min(grace));
        if prior != Some(grace) {
            meta.insert(
                "deletionTimestamp".into(),
                json!(rfc3339(unix_now() + grace)),
            );
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            let s = self.commit(&mut inner, &key, v, EventType::Modified, Some(cur));
            Ok(Deletion::Pending(s))
        } else {
            Ok(Deletion::Pending(cur))
        }
    }

    /// Lists objects in (namespace, name) order, one page at a time.
    pub fn list(
        &self,
        res: &ResourceDef,
        filter: &Filter,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListPage, ApiError> {
        let inner = self.lock();
        let table = inner
            .tables
            .get(&res.storage_key())
            .ok_or(ApiError::NoSuchPath)?;
        let (mut rv, mut start) = (inner.rv, Bound::Unbounded);
        if let Some(tok) = continue_token.filter(|t| !t.is_empty()) {
            let bad = || ApiError::BadRequest(format!("invalid continue token {tok:?}"));
            let (trv, rest) = tok.split_once(':').ok_or_else(bad)?;
            let (ns, name) = rest.split_once('/').ok_or_else(bad)?;
            let trv: u64 = trv.parse().map_err(|_| bad())?;
            if trv < table.floor_rv {
                return Err(ApiError::Gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
                ));
            }
            rv = trv;
            start = Bound::Excluded((ns.to_string(), name.to_string()));
        }
        if let (Bound::Unbounded, Some(ns)) = (&start, &filter.namespace) {
            start = Bound::Included((ns.clone(), String::new()));
        }
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut remaining = None;
        let mut iter = table
            .objects
            .range((start, Bound::Unbounded))
            .take_while(|((ns, _), _)| filter.namespace.as_ref().is_none_or(|f| f == ns))
            .map(|(_, o)| o)
            .filter(|o| filter.matches(o));
        for o in iter.by_ref() {
            items.push(o.clone());
            if limit.is_some_and(|l| l > 0 && items.len() >= l) {
                break;
            }
        }
        if limit.is_some_and(|l| l > 0 && items.len() >= l) {
            let left = iter.count() as u64;
            if left > 0 {
                let last = items.last().expect("limit > 0");
                continue_token = Some(format!("{rv}:{}/{}", last.namespace, last.name));
                if filter.is_unfiltered() {
                    remaining = Some(left);
                }
            }
        }
        Ok(ListPage {
            rv,
            items,
            continue_token,
            remaining,
        })
    }

    /// Starts a watch. Without a resourceVersion (or with "0", or `send_initial`), the current
    /// matching objects come first as ADDED; otherwise the kept events after `from` are replayed,
    /// or 410 Gone when `from` is older than the history.
    pub fn watch(
        &self,
        res: &ResourceDef,
        filter: &Filter,
        from: Option<u64>,
        send_initial: bool,
    ) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        let table = inner
            .tables
            .get(&res.storage_key())
            .ok_or(ApiError::NoSuchPath)?;
        let rx = table.tx.subscribe();
        match from {
            Some(r) if r > 0 && !send_initial => {
                if r < table.floor_rv {
                    return Err(ApiError::Gone(format!(
                        "too old resource version: {r} ({})",
                        table.floor_rv
                    )));
                }
                let backlog = table.history.iter().filter(|e| e.rv > r).cloned().collect();
                Ok(WatchStart {
                    initial: vec![],
                    backlog,
                    rx,
                    rv: r,
                })
            }
            _ => {
                let initial = table
                    .objects
                    .values()
                    .filter(|o| filter.matches(o))
                    .cloned()
                    .collect();
                Ok(WatchStart {
                    initial,
                    backlog: vec![],
                    rx,
                    rv: inner.rv,
                })
            }
        }
    }

    /// Forgets all kept history, as an etcd compaction would: every watch or continue token from
    /// before now gets 410 Gone. A fault-injection hook.
    pub fn compact(&self) {
        let mut inner = self.lock();
        let rv = inner.rv;
        for t in inner.tables.values_mut() {
            t.history.clear();
            t.floor_rv = rv;
        }
    }

    /// Every object of a resource (for internal controllers; no paging).
    pub fn all(&self, group: &str, plural: &str) -> Vec<Arc<Stored>> {
        self.lock()
            .tables
            .get(&(group.to_string(), plural.to_string()))
            .map(|t| t.objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Deletes every namespaced object in `namespace` immediately (namespace deletion).
    pub fn purge_namespace(&self, namespace: &str) {
        let mut inner = self.lock();
        let keys: Vec<TableKey> = inner
            .resources
            .iter()
            .filter(|r| r.namespaced)
            .map(|r| r.storage_key())
            .collect();
        for key in keys {
            let victims: Vec<Arc<Stored>> = inner
                .tables
                .get(&key)
                .map(|t| {
                    t.objects
                        .range((namespace.to_string(), String::new())..)
                        .take_while(|((ns, _), _)| ns == namespace)
                        .map(|(_, o)| o.clone())
                        .collect()
                })
                .unwrap_or_default();
            for o in victims {
                let v = o.value();
                self.commit(&mut inner, &key, v, EventType::Deleted, Some(o));
            }
        }
    }
}

fn pod_grace(pod: &Value, requested: Option<i64>) -> i64 {
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if !bound || matches!(phase, Some("Succeeded" | "Failed")) {
        return 0;
    }
    requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

/// An empty JSON object, for building objects.
pub fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtins;

    fn store(window: usize) -> (Store, Arc<ResourceDef>) {
        let s = Store::new(
            StoreConfig {
                window,
                broadcast_capacity: 16,
            },
            builtins(),
        );
        let ns = s.resolve("", "v1", "namespaces").unwrap();
        s.create(&ns, "", json!({"metadata": {"name": "default"}}))
            .unwrap();
        let cm = s.resolve("", "v1", "configmaps").unwrap();
        (s, cm)
    }

    #[test]
    fn resource_versions_are_monotonic_and_updates_without_change_are_free() {
        let (s, cm) = store(10);
        let a = s
            .create(
                &cm,
                "default",
                json!({"metadata": {"name": "a"}, "data": {"k": "1"}}),
            )
            .unwrap();
        let b = s
            .create(&cm, "default", json!({"metadata": {"name": "b"}}))
            .unwrap();
        assert!(b.rv > a.rv);
        let same = s.modify(&cm, "default", "a", |_| Ok(())).unwrap();
        assert_eq!(same.rv, a.rv);
        let changed = s
            .modify(&cm, "default", "a", |v| {
                v["data"]["k"] = json!("2");
                Ok(())
            })
            .unwrap();
        assert!(changed.rv > b.rv);
        assert_eq!(changed.value()["metadata"]["generation"], 2);
        let stale = s.modify(&cm, "default", "a", |v| {
            v["metadata"]["resourceVersion"] = json!(a.rv.to_string());
            Ok(())
        });
        assert!(matches!(stale, Err(ApiError::Conflict { .. })));
    }

    #[test]
    fn watch_and_continue_expire_outside_the_window() {
        let (s, cm) = store(3);
        let first = s
            .create(&cm, "default", json!({"metadata": {"name": "c0"}}))
            .unwrap();
        let filter = Filter::default();
        assert!(s.watch(&cm, &filter, Some(first.rv), false).is_ok());
        let page = s.list(&cm, &filter, Some(1), None).unwrap();
        for i in 1..6 {
            s.create(
                &cm,
                "default",
                json!({"metadata": {"name": format!("c{i}")}}),
            )
            .unwrap();
        }
        let page2 = s.list(&cm, &filter, Some(1), None).unwrap();
        assert!(page.continue_token.is_none(), "one object, one page");
        let expired = s.watch(&cm, &filter, Some(first.rv), false);
        assert!(matches!(expired, Err(ApiError::Gone(_))));
        let tok = page2.continue_token.unwrap();
        assert_eq!(
            s.list(&cm, &filter, Some(10), Some(&tok))
                .unwrap()
                .items
                .len(),
            5
        );
        s.create(&cm, "default", json!({"metadata": {"name": "late"}}))
            .unwrap();
        s.compact();
        assert!(matches!(
            s.list(&cm, &filter, Some(10), Some(&tok)),
            Err(ApiError::Gone(_))
        ));
        let recent = s.watch(&cm, &filter, Some(s.current_rv()), false).unwrap();
        assert!(recent.backlog.is_empty());
    }

    #[test]
    fn finalizers_hold_deletion_until_removed() {
        let (s, cm) = store(10);
        s.create(
            &cm,
            "default",
            json!({"metadata": {"name": "f", "finalizers": ["x/y"]}}),
        )
        .unwrap();
        let d = s
            .delete(&cm, "default", "f", &DeleteOptions::default())
            .unwrap();
        assert!(matches!(d, Deletion::Pending(_)));
        s.modify(&cm, "default", "f", |v| {
            v["metadata"]["finalizers"] = json!([]);
            Ok(())
        })
        .unwrap();
        assert!(matches!(
            s.get(&cm, "default", "f"),
            Err(ApiError::NotFound { .. })
        ));
    }
}
