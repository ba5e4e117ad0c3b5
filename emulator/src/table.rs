//! Server-side renderings that clients ask for in `Accept`: tables (`as=Table`, which `kubectl
//! get` uses to print its columns) and metadata-only objects (`as=PartialObjectMetadata`, used by
//! kube-rs metadata watchers). Pods and nodes get kubectl's familiar columns, CRDs their
//! `additionalPrinterColumns`, everything else Name and Age.

use serde_json::{Value, json};

use crate::meta::{parse_rfc3339, path, unix_now};
use crate::resources::ResourceDef;

/// How objects are rendered in a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Render {
    /// The objects themselves.
    #[default]
    Full,
    /// A `meta.k8s.io/v1 Table`.
    Table,
    /// `meta.k8s.io/v1 PartialObjectMetadata` (lists: `PartialObjectMetadataList`).
    Metadata,
}

impl Render {
    /// From an `Accept` header; the first acceptable rendering wins. Lenient: anything it cannot
    /// serve reads as the full JSON object. Requests go through [`Render::negotiate`] instead.
    pub fn from_accept(accept: &str) -> Self {
        Self::negotiate(accept).unwrap_or_default()
    }

    /// Content negotiation as kube-apiserver does it: the media ranges of `Accept` by
    /// preference (`q`, then as listed), the first one the emulator can produce wins. It produces
    /// JSON only: `application/json` (with `as=Table` or `as=PartialObjectMetadata[List]` of
    /// `g=meta.k8s.io` for those renderings), `application/*` and `*/*`. Protobuf, CBOR and
    /// YAML ranges are skipped, so a client-go client that sends
    /// `application/vnd.kubernetes.protobuf, application/json` gets JSON, as it would for a
    /// custom resource. `None` when nothing is acceptable: the request is answered 406.
    pub fn negotiate(accept: &str) -> Option<Self> {
        if accept.trim().is_empty() {
            return Some(Self::Full);
        }
        let mut ranges: Vec<(f32, usize, Option<Self>)> = Vec::new();
        for (i, part) in accept.split(',').enumerate() {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut as_kind, mut g) = (1.0f32, "", "");
            for p in params {
                match p.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                    Some(("q", v)) => q = v.parse().unwrap_or(0.0),
                    Some(("as", v)) => as_kind = v,
                    Some(("g", v)) => g = v,
                    _ => {}
                }
            }
            if q <= 0.0 {
                continue;
            }
            let render = match (media.as_str(), as_kind) {
                ("application/json", "") | ("application/*" | "*/*", _) => Some(Self::Full),
                ("application/json", "Table") if g == "meta.k8s.io" => Some(Self::Table),
                ("application/json", "PartialObjectMetadata" | "PartialObjectMetadataList")
                    if g == "meta.k8s.io" =>
                {
                    Some(Self::Metadata)
                }
                _ => None,
            };
            ranges.push((q, i, render));
        }
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranges.into_iter().find_map(|(_, _, r)| r)
    }
}

/// The metadata-only form of an object.
pub fn partial_metadata(o: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// Formats an age the way kubectl does (`45s`, `12m`, `5h`, `3d`).
pub fn human_age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(parse_rfc3339) else {
        return "<unknown>".into();
    };
    let s = (unix_now() - t).max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn col(name: &str, kind: &str, priority: i64) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority})
}

fn columns(res: &ResourceDef) -> Vec<Value> {
    if res.is_core("pods") {
        vec![
            col("Name", "string", 0),
            col("Ready", "string", 0),
            col("Status", "string", 0),
            col("Restarts", "string", 0),
            col("Age", "string", 0),
            col("IP", "string", 1),
            col("Node", "string", 1),
        ]
    } else if res.is_core("nodes") {
        vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Roles", "string", 0),
            col("Age", "string", 0),
            col("Version", "string", 0),
        ]
    } else if res.is_core("namespaces") {
        vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Age", "string", 0),
        ]
    } else if res.is_core("events") {
        // kube-apiserver's event printer, for both event APIs (same storage).
        let mut name = col("Name", "string", 1);
        name["format"] = json!("name");
        vec![
            col("Last Seen", "string", 0),
            col("Type", "string", 0),
            col("Reason", "string", 0),
            col("Object", "string", 0),
            col("Subobject", "string", 1),
            col("Source", "string", 1),
            col("Message", "string", 0),
            col("First Seen", "string", 1),
            col("Count", "string", 1),
            name,
        ]
    } else if !res.printer_columns.is_empty() {
        std::iter::once(col("Name", "string", 0))
            .chain(res.printer_columns.iter().map(|c| {
                let kind = if c.kind == "date" {
                    "string"
                } else {
                    c.kind.as_str()
                };
                col(&c.name, kind, c.priority)
            }))
            .collect()
    } else {
        vec![col("Name", "string", 0), col("Age", "string", 0)]
    }
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    path(v, p).and_then(Value::as_str).unwrap_or("")
}

fn cells(res: &ResourceDef, o: &Value) -> Vec<Value> {
    let name = s(o, "metadata.name");
    let age = human_age(path(o, "metadata.creationTimestamp").and_then(Value::as_str));
    if res.is_core("pods") {
        let total = path(o, "spec.containers")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let statuses = path(o, "status.containerStatuses").and_then(Value::as_array);
        let ready = statuses.map_or(0, |a| {
            a.iter()
                .filter(|c| c.get("ready") == Some(&json!(true)))
                .count()
        });
        let mut status = s(o, "status.reason").to_string();
        if status.is_empty() {
            status = s(o, "status.phase").to_string();
            // As kubectl shows it: a finished container's reason (Completed, Error).
            if let Some(r) = statuses.into_iter().flatten().find_map(|c| {
                c.pointer("/state/terminated/reason")
                    .and_then(Value::as_str)
            }) {
                status = r.to_string();
            }
        }
        if path(o, "metadata.deletionTimestamp").is_some() {
            status = "Terminating".into();
        }
        let ip = match s(o, "status.podIP") {
            "" => "<none>",
            ip => ip,
        };
        let node = match s(o, "spec.nodeName") {
            "" => "<none>",
            n => n,
        };
        vec![
            json!(name),
            json!(format!("{ready}/{total}")),
            json!(status),
            json!(0),
            json!(age),
            json!(ip),
            json!(node),
        ]
    } else if res.is_core("nodes") {
        let ready = path(o, "status.conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c.get("type") == Some(&json!("Ready"))))
            .map(|c| s(c, "status"));
        let mut status = match ready {
            Some("True") => "Ready".to_string(),
            Some(_) => "NotReady".to_string(),
            None => "Unknown".to_string(),
        };
        if path(o, "spec.unschedulable") == Some(&json!(true)) {
            status.push_str(",SchedulingDisabled");
        }
        vec![
            json!(name),
            json!(status),
            json!("<none>"),
            json!(age),
            json!(s(o, "status.nodeInfo.kubeletVersion")),
        ]
    } else if res.is_core("namespaces") {
        vec![json!(name), json!(s(o, "status.phase")), json!(age)]
    } else if res.is_core("events") {
        event_cells(o)
    } else if !res.printer_columns.is_empty() {
        std::iter::once(json!(name))
            .chain(res.printer_columns.iter().map(|c| {
                let p = c.json_path.trim_start_matches('.');
                let v = path(o, p).cloned().unwrap_or(Value::Null);
                if c.kind == "date" {
                    json!(human_age(v.as_str()))
                } else {
                    v
                }
            }))
            .collect()
    } else {
        vec![json!(name), json!(age)]
    }
}

/// An event's row as kube-apiserver prints it: the first/last seen times fall back to
/// `eventTime` and the series, the count to the series (1 for a singleton new-style event), the
/// source to the reporting controller and instance.
fn event_cells(o: &Value) -> Vec<Value> {
    let since = |p: &str| human_age(path(o, p).and_then(Value::as_str));
    let set = |p: &str| {
        path(o, p)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let first = if set("firstTimestamp") {
        since("firstTimestamp")
    } else {
        since("eventTime")
    };
    let mut last = if set("lastTimestamp") {
        since("lastTimestamp")
    } else {
        first.clone()
    };
    let mut count = path(o, "count").and_then(Value::as_i64).unwrap_or(0);
    if path(o, "series").is_some_and(|x| !x.is_null()) {
        last = since("series.lastObservedTime");
        count = path(o, "series.count").and_then(Value::as_i64).unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }
    let kind = s(o, "involvedObject.kind").to_lowercase();
    let target = match s(o, "involvedObject.name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = match s(o, "source.component") {
        "" => s(o, "reportingComponent"),
        c => c,
    };
    let instance = match s(o, "source.host") {
        "" => s(o, "reportingInstance"),
        h => h,
    };
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(s(o, "type")),
        json!(s(o, "reason")),
        json!(target),
        json!(s(o, "involvedObject.fieldPath")),
        json!(source),
        json!(s(o, "message").trim()),
        json!(first),
        json!(count),
        json!(s(o, "metadata.name")),
    ]
}

/// A Table of `objects`, each row carrying its object's metadata (`includeObject=Metadata`).
pub fn table(res: &ResourceDef, objects: &[Value], rv: u64, cont: Option<&str>) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            json!({
                "cells": cells(res, o),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                }
            })
        })
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(res),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_what_the_client_prefers_and_skips_what_it_cannot_produce() {
        let n = Render::negotiate;
        assert_eq!(n(""), Some(Render::Full));
        assert_eq!(n("*/*"), Some(Render::Full));
        // client-go configured for protobuf: JSON is its fallback, as for custom resources.
        assert_eq!(
            n("application/vnd.kubernetes.protobuf, application/json"),
            Some(Render::Full)
        );
        assert_eq!(n("application/vnd.kubernetes.protobuf"), None);
        assert_eq!(n("application/cbor;q=1, application/yaml"), None);
        assert_eq!(n("application/json;q=0"), None);
        // kubectl get
        assert_eq!(
            n(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            ),
            Some(Render::Table)
        );
        // A protobuf Table first: the JSON Table behind it.
        assert_eq!(
            n(
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io"
            ),
            Some(Render::Table)
        );
        // Preference by q, not by position.
        assert_eq!(
            n(
                "application/json;q=0.5, application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            ),
            Some(Render::Metadata)
        );
        // An unknown rendering is not served as something else.
        assert_eq!(n("application/json;as=Foo;g=meta.k8s.io;v=v1"), None);
    }
}
