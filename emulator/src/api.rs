//! The Kubernetes REST surface: URL routing, discovery documents, and the verbs (get, list,
//! watch, create, update, patch, delete, deletecollection) plus the pod `binding`, `status` and
//! `eviction` subresources, and `create` of the review resources (TokenReview,
//! SubjectAccessReview), answered by [`crate::auth`].
//!
//! Everything is generic over `serde_json::Value` so CRDs work the same as built-ins; typed
//! semantics live only where Kubernetes has them (pod defaults, binding, namespace and CRD
//! lifecycle).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::events;
use crate::meta::{now_rfc3339, obj_mut};
use crate::patch::{json_patch, merge_patch, strategic_merge};
use crate::resources::{ResourceDef, defs_from_crd};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::AppState;
use crate::status::{ApiError, success};
use crate::store::{DeleteOptions, Deletion, Filter, Stored};
use crate::table::{Render, partial_metadata, table};
use crate::watch::{WatchOptions, watch_response};

/// The Kubernetes version the emulator reports.
pub const KUBE_VERSION: (&str, &str) = ("1", "37");

/// Decoded query string.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parses `a=b&c=d`.
    pub fn parse(q: Option<&str>) -> Self {
        Self(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    /// A parameter's value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// A JSON response.
pub fn json_response(code: u16, v: &Value) -> Response {
    bytes_response(
        code,
        Bytes::from(serde_json::to_vec(v).expect("a Value serializes")),
    )
}

/// A response with a pre-serialized JSON body.
pub fn bytes_response(code: u16, b: Bytes) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(b))
        .expect("static response parts are valid")
}

/// The Status response for an error.
pub fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code(), &e.to_status());
    if matches!(e, ApiError::TooManyRequests) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    Resources(String, String),
    /// A resource URL.
    Object(Target),
    /// Nothing here.
    NotFound,
}

/// A resolved resource URL.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource.
    pub res: Arc<ResourceDef>,
    /// Namespace from the URL.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub sub: Option<String>,
    /// The legacy `/watch/` prefix was used.
    pub watch_prefix: bool,
}

/// Resolves a URL path.
pub fn route(state: &AppState, path: &str) -> Route {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Route::Version,
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::Groups,
        ["api", v] => return Route::Resources(String::new(), v.to_string()),
        ["apis", g] => return Route::Group(g.to_string()),
        ["apis", g, v] => return Route::Resources(g.to_string(), v.to_string()),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    let (watch_prefix, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let namespaced_res = match rest {
        ["namespaces", _, plural, ..] => state
            .store
            .resolve(group, version, plural)
            .filter(|r| r.namespaced),
        _ => None,
    };
    let (res, namespace, tail) = match namespaced_res {
        Some(r) => (r, Some(rest[1].to_string()), &rest[3..]),
        None => match rest
            .first()
            .and_then(|p| state.store.resolve(group, version, p))
        {
            Some(r) => (r, None, &rest[1..]),
            None => return Route::NotFound,
        },
    };
    if tail.len() > 2 {
        return Route::NotFound;
    }
    Route::Object(Target {
        res,
        namespace,
        name: tail.first().map(|s| s.to_string()),
        sub: tail.get(1).map(|s| s.to_string()),
        watch_prefix,
    })
}

/// The Kubernetes verb of a request, and its fault-injection key.
pub fn verbs(method: &Method, t: &Target, q: &Query) -> (&'static str, &'static str) {
    let sub = t.sub.as_deref();
    match *method {
        Method::GET if t.name.is_none() => {
            if t.watch_prefix || q.flag("watch") {
                ("watch", "watch")
            } else {
                ("list", "list")
            }
        }
        Method::GET if t.watch_prefix => ("watch", "watch"),
        Method::GET => ("get", "get"),
        Method::POST if sub == Some("binding") || t.res.is_core("bindings") => ("bind", "create"),
        Method::POST if sub == Some("eviction") => ("evict", "create"),
        Method::POST => ("create", "create"),
        Method::PUT => ("update", "update"),
        Method::PATCH => ("patch", "patch"),
        Method::DELETE if t.name.is_none() => ("deletecollection", "deletecollection"),
        Method::DELETE => ("delete", "delete"),
        _ => ("other", "other"),
    }
}

/// `/version`.
pub fn version_doc() -> Value {
    json!({
        "major": KUBE_VERSION.0, "minor": KUBE_VERSION.1,
        "emulationMajor": KUBE_VERSION.0, "emulationMinor": KUBE_VERSION.1,
        "gitVersion": format!("v{}.{}.0-phalanx-emulator", KUBE_VERSION.0, KUBE_VERSION.1),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "n/a (phalanx-emulator, Rust)", "compiler": "rustc",
        "platform": "linux/amd64",
    })
}

fn group_versions(state: &AppState) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for r in state.store.resources() {
        if r.group.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) if !vs.contains(&r.version) => vs.push(r.version.clone()),
            Some(_) => {}
            None => out.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    out
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs[0]})
}

/// Serves the discovery routes; `None` for resource routes.
pub fn discovery(state: &AppState, r: &Route) -> Option<Response> {
    Some(match r {
        Route::Version => json_response(200, &version_doc()),
        Route::CoreVersions => json_response(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": state.advertise}]}),
        ),
        Route::Groups => {
            let groups: Vec<Value> = group_versions(state)
                .iter()
                .map(|(g, vs)| group_doc(g, vs))
                .collect();
            json_response(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            )
        }
        Route::Group(g) => match group_versions(state).into_iter().find(|(n, _)| n == g) {
            Some((g, vs)) => {
                let mut d = group_doc(&g, &vs);
                d["kind"] = json!("APIGroup");
                d["apiVersion"] = json!("v1");
                json_response(200, &d)
            }
            None => error_response(&ApiError::NoSuchPath),
        },
        Route::Resources(g, v) => {
            let resources: Vec<Value> = state
                .store
                .resources()
                .iter()
                .filter(|r| &r.group == g && &r.version == v)
                .flat_map(|r| r.discovery_entries())
                .collect();
            if resources.is_empty() {
                return Some(error_response(&ApiError::NoSuchPath));
            }
            let gv = if g.is_empty() {
                v.clone()
            } else {
                format!("{g}/{v}")
            };
            json_response(
                200,
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
            )
        }
        Route::Object(_) => return None,
        Route::NotFound => error_response(&ApiError::NoSuchPath),
    })
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if body.first().is_some_and(|b| *b != b'{' && *b != b'[') {
            ApiError::UnsupportedMediaType
        } else {
            ApiError::BadRequest(format!("invalid JSON body: {e}"))
        }
    })
}

/// The response rendering the request's `Accept` asks for, or 406 when the emulator can produce
/// none of it (see [`Render::negotiate`]).
fn negotiate(headers: &HeaderMap) -> Result<Render, ApiError> {
    Render::negotiate(
        headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    )
    .ok_or(ApiError::NotAcceptable)
}

/// How a resource's objects are stored and served. Objects of most resources are stored as they
/// are served; `events.k8s.io` Events are stored as core Events (one storage, two APIs, as in
/// kube-apiserver) and converted on the way in and out.
#[derive(Debug, Clone)]
struct View {
    /// The resource as the client addressed it.
    wire: Arc<ResourceDef>,
    /// The resource whose storage holds the objects (and whose table columns render them).
    store: Arc<ResourceDef>,
    /// The `events.k8s.io` view of core Events.
    events_api: bool,
}

impl View {
    fn of(state: &AppState, res: &Arc<ResourceDef>) -> Self {
        if events::is_events_api(res)
            && let Some(core) = state.store.resolve("", "v1", "events")
        {
            return Self {
                wire: res.clone(),
                store: core,
                events_api: true,
            };
        }
        Self {
            wire: res.clone(),
            store: res.clone(),
            events_api: false,
        }
    }

    /// A stored object as the client sees it.
    fn out(&self, o: &Stored) -> Bytes {
        if self.events_api {
            Bytes::from(
                serde_json::to_vec(&events::from_core(o.value())).expect("a Value serializes"),
            )
        } else {
            o.json.clone()
        }
    }

    /// A client's object in the stored form.
    fn incoming(&self, v: Value) -> Value {
        if self.events_api {
            events::to_core(v)
        } else {
            v
        }
    }

    /// A stored object in the client's form.
    fn outgoing(&self, v: Value) -> Value {
        if self.events_api {
            events::from_core(v)
        } else {
            v
        }
    }
}

fn filter_of(t: &Target, q: &Query, view: &View) -> Result<Filter, ApiError> {
    let mut fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if view.events_api {
        for r in &mut fields.reqs {
            r.path = events::core_field_path(&r.path);
        }
    }
    Ok(Filter {
        namespace: t.namespace.clone().filter(|_| t.res.namespaced),
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        fields,
    })
}

fn ns_of(t: &Target) -> Result<&str, ApiError> {
    if !t.res.namespaced {
        return Ok("");
    }
    t.namespace.as_deref().ok_or_else(|| {
        ApiError::BadRequest(format!(
            "the namespace of the object must be set for {}",
            t.res.qualified()
        ))
    })
}

/// Handles a request to a resource URL.
pub async fn handle(
    state: Arc<AppState>,
    method: Method,
    t: Target,
    q: Query,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let sub = t.sub.as_deref();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    // Request bodies are decoded as JSON only: kube-apiserver also takes protobuf (built-in
    // types) and CBOR, which the emulator cannot decode without the types' schemas.
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::UnsupportedMediaType);
    }
    let rendering = negotiate(&headers)?;
    // Only subresources the resource really has: a client patching `/status` of a Volcano
    // PodGroup (which has none) must fail here as it would against kube-apiserver.
    if let Some(sub) = sub {
        let served = (sub == "status" && t.res.status_subresource)
            || t.res.extra_subresources.iter().any(|s| s == sub)
            || (sub == "finalize" && t.res.is_core("namespaces"));
        if !served {
            return Err(ApiError::NoSuchPath);
        }
    }
    // Refuse rather than silently persist what the client meant as a rehearsal.
    if q.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::BadRequest(
            "dryRun is not supported by the phalanx emulator".into(),
        ));
    }
    if t.res.create_only {
        return match (&method, t.name.as_deref(), sub) {
            (&Method::POST, None, None) => {
                let answer = state.auth.review(&t.res, parse_body(&body)?)?;
                Ok(json_response(201, &answer))
            }
            _ => Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({method} {})",
                t.res.qualified()
            ))),
        };
    }
    let view = View::of(&state, &t.res);
    match (&method, t.name.as_deref(), sub) {
        (&Method::GET, None, _) => {
            if t.watch_prefix || q.flag("watch") {
                watch(state, &t, &q, &view, rendering)
            } else {
                list(&state, &t, &q, &view, rendering)
            }
        }
        (&Method::GET, Some(name), None | Some("status")) => {
            let o = state.store.get(&view.store, ns_of(&t)?, name)?;
            Ok(match rendering {
                Render::Table => json_response(200, &table(&view.store, &[o.value()], o.rv, None)),
                Render::Metadata => json_response(200, &partial_metadata(&o.value())),
                Render::Full => bytes_response(200, view.out(&o)),
            })
        }
        (&Method::POST, Some(name), Some("binding")) if t.res.is_core("pods") => {
            let user = state.auth.user_of(&headers);
            bind(&state, &user, ns_of(&t)?, name, &parse_body(&body)?)
        }
        (&Method::POST, None, None) if t.res.is_core("bindings") => {
            let b = parse_body(&body)?;
            let name = b
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let user = state.auth.user_of(&headers);
            bind(&state, &user, ns_of(&t)?, &name, &b)
        }
        (&Method::POST, Some(name), Some("eviction")) if t.res.is_core("pods") => {
            let b = parse_body(&body)?;
            let opts = delete_options(b.get("deleteOptions"), &q);
            state.store.delete(&t.res, ns_of(&t)?, name, &opts)?;
            Ok(json_response(201, &success(201, None)))
        }
        (&Method::POST, None, None) => {
            let ns = ns_of(&t)?;
            let obj = view.incoming(parse_body(&body)?);
            if view.events_api {
                events::validate_create(&obj, ns, true)?;
            }
            let o = create(&state, &view.store, ns, obj)?;
            Ok(bytes_response(201, view.out(&o)))
        }
        (&Method::PUT, Some(name), None | Some("status") | Some("finalize")) => {
            let new = view.incoming(parse_body(&body)?);
            match new.pointer("/metadata/name").and_then(Value::as_str) {
                Some(n) if n != name => {
                    return Err(ApiError::BadRequest(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )));
                }
                _ => {}
            }
            let status_only = sub == Some("status");
            let has_status = t.res.status_subresource;
            let is_pod = t.res.is_core("pods");
            let ns = ns_of(&t)?;
            let o = state.store.modify(&view.store, ns, name, |cur| {
                let next = split_status(cur, new, has_status, status_only);
                if is_pod && !status_only {
                    check_pod_update(cur, &next, name)?;
                }
                validate_update(&view, cur, &next, ns)?;
                *cur = next;
                Ok(())
            })?;
            after_write(&state, &t.res, &o);
            Ok(bytes_response(200, view.out(&o)))
        }
        (&Method::PATCH, Some(name), None | Some("status")) => {
            patch(&state, &t, &view, name, &content_type, &body)
        }
        (&Method::DELETE, Some(name), None) => {
            let opts = delete_options(
                (!body.is_empty())
                    .then(|| serde_json::from_slice::<Value>(&body).ok())
                    .flatten()
                    .as_ref(),
                &q,
            );
            delete(&state, &view, ns_of(&t)?, name, &opts)
        }
        (&Method::DELETE, None, None) => {
            let filter = filter_of(&t, &q, &view)?;
            let page = state.store.list(&view.store, &filter, None, None)?;
            let opts = delete_options(None, &q);
            let mut gone = Vec::new();
            for o in page.items {
                if state
                    .store
                    .delete(&view.store, &o.namespace, &o.name, &opts)
                    .is_ok()
                {
                    gone.push(view.out(&o));
                }
            }
            Ok(list_body(&view.wire, page.rv, &gone, None, None))
        }
        _ => Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            t.res.qualified()
        ))),
    }
}

/// The resource-specific validation of an update (`cur` and `next` in stored form).
fn validate_update(view: &View, cur: &Value, next: &Value, ns: &str) -> Result<(), ApiError> {
    if events::is_core_events(&view.store) {
        events::validate_update(next, cur, ns, view.events_api)?;
    }
    Ok(())
}

/// Merges a PUT/PATCH result with the current object according to the status subresource rules:
/// the main resource cannot change status, `/status` can change nothing else.
fn split_status(cur: &Value, mut new: Value, has_status: bool, status_only: bool) -> Value {
    if status_only {
        let mut out = cur.clone();
        let rv = new.pointer("/metadata/resourceVersion").cloned();
        match new.get_mut("status").map(Value::take) {
            Some(s) => out["status"] = s,
            None => {
                if let Some(m) = out.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        if let Some(rv) = rv {
            obj_mut(&mut out, "metadata").insert("resourceVersion".into(), rv);
        }
        out
    } else {
        if has_status {
            match cur.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        new
    }
}

/// Pod specs are immutable apart from a few fields, and `spec.nodeName` is set only by binding;
/// a client that updates anything else must fail here as it would against kube-apiserver.
fn check_pod_update(old: &Value, new: &Value, name: &str) -> Result<(), ApiError> {
    let mutable_stripped = |pod: &Value| {
        let mut spec = pod.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(m) = spec.as_object_mut() {
            for k in [
                "activeDeadlineSeconds",
                "tolerations",
                "schedulingGates",
                "terminationGracePeriodSeconds",
            ] {
                m.remove(k);
            }
            for list in ["containers", "initContainers"] {
                if let Some(Value::Array(cs)) = m.get_mut(list) {
                    for c in cs {
                        if let Some(c) = c.as_object_mut() {
                            c.remove("image");
                        }
                    }
                }
            }
        }
        spec
    };
    if mutable_stripped(old) == mutable_stripped(new) {
        return Ok(());
    }
    Err(ApiError::Invalid {
        resource: "pods".into(),
        name: name.to_string(),
        message: "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into(),
    })
}

fn delete_options(body: Option<&Value>, q: &Query) -> DeleteOptions {
    let grace = q
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or_else(|| body.and_then(|b| b.get("gracePeriodSeconds")?.as_i64()));
    let pre = body.and_then(|b| b.get("preconditions"));
    let s = |k: &str| pre.and_then(|p| p.get(k)?.as_str()).map(str::to_string);
    DeleteOptions {
        grace,
        uid: s("uid"),
        rv: s("resourceVersion"),
    }
}

fn list_body(
    res: &ResourceDef,
    rv: u64,
    items: &[Bytes],
    cont: Option<&str>,
    remaining: Option<u64>,
) -> Response {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    let head = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
        json!(res.list_kind),
        json!(res.api_version()),
        meta
    );
    let len = head.len() + items.iter().map(|o| o.len() + 1).sum::<usize>() + 2;
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(head.as_bytes());
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(o);
    }
    buf.extend_from_slice(b"]}");
    bytes_response(200, Bytes::from(buf))
}

fn list(
    state: &AppState,
    t: &Target,
    q: &Query,
    view: &View,
    rendering: Render,
) -> Result<Response, ApiError> {
    let filter = filter_of(t, q, view)?;
    let limit = q.get("limit").and_then(|l| l.parse().ok());
    let page = state
        .store
        .list(&view.store, &filter, limit, q.get("continue"))?;
    match rendering {
        Render::Table => {
            let objs: Vec<Value> = page.items.iter().map(|o| o.value()).collect();
            return Ok(json_response(
                200,
                &table(&view.store, &objs, page.rv, page.continue_token.as_deref()),
            ));
        }
        Render::Metadata => {
            let mut meta = json!({"resourceVersion": page.rv.to_string()});
            if let Some(c) = &page.continue_token {
                meta["continue"] = json!(c);
            }
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|o| partial_metadata(&o.value()))
                .collect();
            return Ok(json_response(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                        "metadata": meta, "items": items}),
            ));
        }
        Render::Full => {}
    }
    let items: Vec<Bytes> = page.items.iter().map(|o| view.out(o)).collect();
    Ok(list_body(
        &view.wire,
        page.rv,
        &items,
        page.continue_token.as_deref(),
        page.remaining,
    ))
}

fn watch(
    state: Arc<AppState>,
    t: &Target,
    q: &Query,
    view: &View,
    rendering: Render,
) -> Result<Response, ApiError> {
    let mut filter = filter_of(t, q, view)?;
    if let Some(name) = &t.name {
        filter.fields.reqs.push(crate::selector::FieldReq {
            path: "metadata.name".into(),
            value: name.clone(),
            negate: false,
        });
    }
    let from = match q.get("resourceVersion") {
        None | Some("") => None,
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {r:?}")))?,
        ),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let opts = WatchOptions {
        bookmarks: q.flag("allowWatchBookmarks"),
        send_initial: q.flag("sendInitialEvents"),
        timeout,
        render: rendering,
        events_api: view.events_api,
    };
    Ok(watch_response(
        state,
        view.wire.clone(),
        view.store.clone(),
        filter,
        from,
        opts,
    ))
}

/// Applies defaults and lifecycle rules, then stores a new object.
pub fn create(
    state: &AppState,
    res: &ResourceDef,
    ns: &str,
    mut obj: Value,
) -> Result<Arc<Stored>, ApiError> {
    if res.status_subresource
        && !res.is_core("nodes")
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    if res.is_core("pods") {
        default_pod(&mut obj);
    } else if events::is_core_events(res) {
        events::validate_create(&obj, ns, false)?;
    } else if res.is_core("namespaces") {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        obj_mut(&mut obj, "spec").insert("finalizers".into(), json!(["kubernetes"]));
        obj_mut(&mut obj, "status").insert("phase".into(), json!("Active"));
        let meta = obj_mut(&mut obj, "metadata");
        obj_mut_map(meta, "labels").insert("kubernetes.io/metadata.name".into(), json!(name));
    } else if res.is_core("nodes") {
        let status = obj_mut(&mut obj, "status");
        if !status.contains_key("allocatable")
            && let Some(c) = status.get("capacity").cloned()
        {
            status.insert("allocatable".into(), c);
        }
    } else if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
        let defs = defs_from_crd(&obj).map_err(|e| ApiError::Invalid {
            resource: res.qualified(),
            name: obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            message: e.to_string(),
        })?;
        crd_status(&mut obj, &defs);
        let o = state.store.create(res, ns, obj)?;
        state.store.register(defs);
        return Ok(o);
    }
    state.store.create(res, ns, obj)
}

fn obj_mut_map<'a>(
    m: &'a mut serde_json::Map<String, Value>,
    key: &str,
) -> &'a mut serde_json::Map<String, Value> {
    let e = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e.as_object_mut().expect("made an object")
}

fn crd_status(obj: &mut Value, defs: &[ResourceDef]) {
    let now = now_rfc3339();
    let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<&str> = defs.iter().map(|d| d.version.as_str()).take(1).collect();
    obj["status"] = json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
}

fn default_pod(pod: &mut Value) {
    let spec = obj_mut(pod, "spec");
    let defaults = [
        ("schedulerName", json!("default-scheduler")),
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("priority", json!(0)),
    ];
    for (k, v) in defaults {
        spec.entry(k.to_string()).or_insert(v);
    }
    let qos = qos_class(pod);
    pod["status"] = json!({"phase": "Pending", "qosClass": qos});
}

fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (mut any, mut all_guaranteed) = (false, !containers.is_empty());
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        any |= req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty());
        let g = lim.is_some_and(|l| {
            l.contains_key("cpu")
                && l.contains_key("memory")
                && req.is_none_or(|r| r.iter().all(|(k, v)| l.get(k) == Some(v)))
        });
        all_guaranteed &= g;
    }
    if all_guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}

fn after_write(state: &AppState, res: &ResourceDef, o: &Stored) {
    if res.group == "apiextensions.k8s.io"
        && res.plural == "customresourcedefinitions"
        && let Ok(defs) = defs_from_crd(&o.value())
    {
        state.store.register(defs);
    }
}

/// Binds a pod and records the request, accepted or refused, in the audit.
fn bind(
    state: &AppState,
    user: &str,
    ns: &str,
    name: &str,
    binding: &Value,
) -> Result<Response, ApiError> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut already_on = None;
    let result = commit_bind(state, ns, name, binding, &mut already_on);
    state.audit.bind(
        &state.store,
        crate::audit::BindRecord {
            t: crate::audit::now(),
            pod: format!("{ns}/{name}"),
            node: node.to_string(),
            user: user.to_string(),
            leader: None,
            refused: result.as_ref().err().map(ToString::to_string),
            already_on,
        },
    );
    result
}

fn commit_bind(
    state: &AppState,
    ns: &str,
    name: &str,
    binding: &Value,
    already_on: &mut Option<String>,
) -> Result<Response, ApiError> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::Invalid {
            resource: "bindings".into(),
            name: name.to_string(),
            message: "target.name: Required value".into(),
        })?
        .to_string();
    let pods = state
        .store
        .resolve("", "v1", "pods")
        .expect("pods are built in");
    let nodes = state
        .store
        .resolve("", "v1", "nodes")
        .expect("nodes are built in");
    state.store.get(&nodes, "", &node)?;
    let conflict = |message: String| ApiError::Conflict {
        resource: "pods/binding".into(),
        name: name.to_string(),
        message,
    };
    state.store.modify(&pods, ns, name, |pod| {
        if let Some(uid) = binding.pointer("/metadata/uid").and_then(Value::as_str)
            && pod.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
        {
            return Err(conflict(format!("pod {name} has a different UID")));
        }
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(conflict(format!(
                "pod {name} is being deleted, cannot be assigned to a host"
            )));
        }
        if pod
            .pointer("/spec/schedulingGates")
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty())
        {
            return Err(conflict(format!(
                "pod {name} has non-empty .spec.schedulingGates"
            )));
        }
        match pod.pointer("/spec/nodeName").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => {
                *already_on = Some(n.to_string());
                return Err(conflict(format!(
                    "pod {name} is already assigned to node {n:?}"
                )));
            }
            _ => {}
        }
        obj_mut(pod, "spec").insert("nodeName".into(), json!(node));
        set_condition(pod, "PodScheduled", "True", None);
        Ok(())
    })?;
    Ok(json_response(201, &success(201, None)))
}

/// Sets a pod/node condition by type, keeping `lastTransitionTime` when the status is unchanged.
pub fn set_condition(obj: &mut Value, kind: &str, status: &str, reason: Option<&str>) {
    let now = now_rfc3339();
    let st = obj_mut(obj, "status");
    let conds = st
        .entry("conditions".to_string())
        .or_insert_with(|| json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    let arr = conds.as_array_mut().expect("made an array");
    let mut c =
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    match arr.iter_mut().find(|c| c.get("type") == Some(&json!(kind))) {
        Some(existing) => {
            if existing.get("status") == Some(&json!(status)) {
                c["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = c;
        }
        None => arr.push(c),
    }
}

fn patch(
    state: &AppState,
    t: &Target,
    view: &View,
    name: &str,
    content_type: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let p = parse_body(body)?;
    let ns = ns_of(t)?;
    let is_crd_resource = !t.res.group.is_empty()
        && !matches!(
            t.res.group.as_str(),
            "events.k8s.io" | "coordination.k8s.io" | "scheduling.k8s.io" | "apiextensions.k8s.io"
        );
    let kind = if content_type.starts_with("application/merge-patch+json") {
        "merge"
    } else if content_type.starts_with("application/strategic-merge-patch+json") {
        if is_crd_resource {
            return Err(ApiError::UnsupportedMediaType);
        }
        "strategic"
    } else if content_type.starts_with("application/json-patch+json") {
        "json"
    } else if content_type.starts_with("application/apply-patch") {
        "apply"
    } else {
        return Err(ApiError::UnsupportedMediaType);
    };
    if kind == "apply" && t.sub.is_none() {
        // Server-side apply of a missing object creates it.
        if let Err(ApiError::NotFound { .. }) = state.store.get(&view.store, ns, name) {
            let mut obj = p.clone();
            obj_mut(&mut obj, "metadata").insert("name".into(), json!(name));
            let obj = view.incoming(obj);
            if view.events_api {
                events::validate_create(&obj, ns, true)?;
            }
            let o = create(state, &view.store, ns, obj)?;
            return Ok(bytes_response(201, view.out(&o)));
        }
    }
    let status_only = t.sub.as_deref() == Some("status");
    let has_status = t.res.status_subresource;
    let o = state.store.modify(&view.store, ns, name, |cur| {
        // The patch applies to the object as the client sees it.
        let mut target = view.outgoing(cur.clone());
        let res = match kind {
            "merge" => {
                merge_patch(&mut target, &p);
                Ok(())
            }
            "json" => json_patch(&mut target, &p),
            _ => {
                let mut p = p.clone();
                if kind == "apply"
                    && let Some(m) = p.as_object_mut()
                {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                strategic_merge(&mut target, &p)
            }
        };
        res.map_err(|e| match e {
            crate::patch::PatchError::Failed(m) => ApiError::Invalid {
                resource: t.res.qualified(),
                name: name.to_string(),
                message: m,
            },
            crate::patch::PatchError::Malformed(m) => ApiError::BadRequest(m),
        })?;
        let next = split_status(cur, view.incoming(target), has_status, status_only);
        if t.res.is_core("pods") && !status_only {
            check_pod_update(cur, &next, name)?;
        }
        validate_update(view, cur, &next, ns)?;
        *cur = next;
        Ok(())
    })?;
    after_write(state, &t.res, &o);
    Ok(bytes_response(200, view.out(&o)))
}

fn delete(
    state: &AppState,
    view: &View,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Response, ApiError> {
    let res = &view.store;
    if res.is_core("namespaces") {
        state.store.get(res, "", name)?;
        state.store.purge_namespace(name);
    }
    let outcome = state.store.delete(res, ns, name, opts)?;
    if res.group == "apiextensions.k8s.io"
        && res.plural == "customresourcedefinitions"
        && let Deletion::Gone(o) = &outcome
    {
        let v = o.value();
        let g = v
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("");
        let p = v
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("");
        state.store.unregister(g, p);
    }
    match outcome {
        Deletion::Pending(o) => Ok(bytes_response(200, view.out(&o))),
        Deletion::Gone(o) if res.is_core("pods") => Ok(bytes_response(200, view.out(&o))),
        Deletion::Gone(o) => {
            let uid = o
                .value()
                .pointer("/metadata/uid")
                .cloned()
                .unwrap_or(Value::Null);
            let wire = &view.wire;
            let mut d = json!({"name": name, "kind": wire.plural, "uid": uid});
            if !wire.group.is_empty() {
                d["group"] = json!(wire.group);
            }
            Ok(json_response(200, &success(200, Some(d))))
        }
    }
}
