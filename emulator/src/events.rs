//! Events: `events.k8s.io/v1` and core `v1` Events are two views of one storage, as in
//! kube-apiserver, plus kube-apiserver's Event validation.
//!
//! Objects are stored in the core form; an `events.k8s.io/v1` request is converted on the way in
//! and every object on the way out, so an event created through either API is listed, watched
//! and described (`kubectl describe` searches core events) through both. The field mapping is
//! kube-apiserver's conversion (`pkg/apis/events/v1/conversion.go`):
//!
//! ```text
//!  events.k8s.io/v1            core v1
//!  note                  <->   message
//!  regarding             <->   involvedObject
//!  reportingController   <->   reportingComponent
//!  deprecatedSource      <->   source
//!  deprecatedCount       <->   count
//!  deprecatedFirstTimestamp <-> firstTimestamp
//!  deprecatedLastTimestamp  <-> lastTimestamp
//!  eventTime, series, reportingInstance, action, reason, type, related: same names
//! ```
//!
//! `source.component` is not synthesized from `reportingController` (kube-apiserver does not
//! either); the server-side table and the `source` field selector fall back to the reporting
//! controller when `source.component` is empty, as kube-apiserver's printer and field set do.
//!
//! Validation follows `pkg/apis/core/validation/events.go`: every write runs the legacy checks
//! (for an event with `eventTime`: reportingController, reportingInstance, action and reason
//! required, and at most 128 bytes, 128 bytes, 128 bytes and **1024 bytes for the note**, whose
//! field is reported as `message`, the internal name); a create through `events.k8s.io/v1` also
//! needs `eventTime`, a `type` of Normal or Warning, no deprecated fields and a valid `series`;
//! an update through it may not change the event's identity fields.

use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;
use crate::status::{ApiError, FieldError};

/// `events.k8s.io` field name -> core field name, for the fields whose names differ.
const RENAMED: [(&str, &str); 7] = [
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
];

/// Longest `reportingInstance`, `action` and `reason`, in bytes.
pub const SHORT_FIELD_LIMIT: usize = 128;
/// Longest note (`message`), in bytes: kube-apiserver's `NoteLengthLimit`.
pub const NOTE_LIMIT: usize = 1024;

/// True for the `events.k8s.io` Event resource (any version).
pub fn is_events_api(res: &ResourceDef) -> bool {
    res.group == "events.k8s.io" && res.plural == "events"
}

/// True for the core v1 Event resource.
pub fn is_core_events(res: &ResourceDef) -> bool {
    res.is_core("events")
}

fn rename(
    v: Value,
    pairs: impl Fn(&str) -> Option<&'static str>,
    foreign: impl Fn(&str) -> bool,
) -> Value {
    let Value::Object(m) = v else { return v };
    let mut out = Map::new();
    for (k, v) in m {
        if let Some(to) = pairs(&k) {
            out.insert(to.to_string(), v);
        } else if !foreign(&k) {
            out.insert(k, v);
        }
    }
    Value::Object(out)
}

/// An `events.k8s.io/v1` Event in the core v1 form. Core-only field names in the input are
/// unknown to `events.k8s.io` and dropped, as kube-apiserver prunes unknown fields.
pub fn to_core(v: Value) -> Value {
    let mut out = rename(
        v,
        |k| RENAMED.iter().find(|(e, _)| *e == k).map(|(_, c)| *c),
        |k| RENAMED.iter().any(|(_, c)| *c == k),
    );
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("kind".into(), json!("Event"));
    }
    out
}

/// A core v1 Event in the `events.k8s.io/v1` form.
pub fn from_core(v: Value) -> Value {
    let mut out = rename(
        v,
        |k| RENAMED.iter().find(|(_, c)| *c == k).map(|(e, _)| *e),
        |k| RENAMED.iter().any(|(e, _)| *e == k),
    );
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
        m.insert("kind".into(), json!("Event"));
    }
    out
}

/// A field selector path of `events.k8s.io` in terms of the stored core form
/// (`regarding.name` -> `involvedObject.name`, `reportingController` -> `reportingComponent`).
pub fn core_field_path(path: &str) -> String {
    let (head, tail) = match path.split_once('.') {
        Some((h, t)) => (h, Some(t)),
        None => (path, None),
    };
    match RENAMED.iter().find(|(e, _)| *e == head) {
        Some((_, c)) => match tail {
            Some(t) => format!("{c}.{t}"),
            None => c.to_string(),
        },
        None => path.to_string(),
    }
}

/// The `source` selectable field of an event: `source.component`, or the reporting controller
/// when that is empty (kube-apiserver's `ToSelectableFields`).
pub fn selectable_source(core: &Value) -> String {
    let s = |p: &str| core.pointer(p).and_then(Value::as_str).unwrap_or("");
    match s("/source/component") {
        "" => s("/reportingComponent").to_string(),
        c => c.to_string(),
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn is_set(v: &Value, key: &str) -> bool {
    match v.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        Some(Value::Object(m)) => m
            .values()
            .any(|x| !x.is_null() && x != "" && x != &json!(0)),
        Some(_) => true,
    }
}

/// A Kubernetes qualified name (`[prefix/]name`), as apimachinery's `IsQualifiedName`.
fn qualified_name_problems(s: &str) -> Vec<String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let mut out = Vec::new();
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !name_ok {
        out.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string());
    }
    if let Some(p) = prefix {
        let prefix_ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !prefix_ok {
            out.push("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".to_string());
        }
    }
    out
}

/// kube-apiserver's `legacyValidateEvent`, run on every write through either API (core form).
fn legacy(ev: &Value, namespace: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let involved_ns = ev
        .pointer("/involvedObject/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            &json!(involved_ns),
            "does not match event.namespace",
        )
    };
    if !is_set(ev, "eventTime") {
        if involved_ns.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                errs.push(mismatch());
            }
        } else if namespace != involved_ns {
            errs.push(mismatch());
        }
        return errs;
    }
    if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
        errs.push(mismatch());
    }
    let controller = str_at(ev, "reportingComponent");
    if controller.is_empty() {
        errs.push(FieldError::required("reportingController"));
    }
    for msg in qualified_name_problems(controller) {
        errs.push(FieldError::invalid(
            "reportingController",
            &json!(controller),
            msg,
        ));
    }
    let limited = |errs: &mut Vec<FieldError>, key: &str, limit: usize, required: bool| {
        let v = str_at(ev, key);
        if required && v.is_empty() {
            errs.push(FieldError::required(key));
        }
        if v.len() > limit {
            errs.push(FieldError::invalid(
                key,
                &json!(""),
                format!("can have at most {limit} characters"),
            ));
        }
    };
    limited(&mut errs, "reportingInstance", SHORT_FIELD_LIMIT, true);
    limited(&mut errs, "action", SHORT_FIELD_LIMIT, true);
    limited(&mut errs, "reason", SHORT_FIELD_LIMIT, true);
    limited(&mut errs, "message", NOTE_LIMIT, false);
    errs
}

fn series(ev: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(s) = ev.get("series").filter(|s| !s.is_null()) {
        if s.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                &json!(""),
                "should be at least 2",
            ));
        }
        if !is_set(s, "lastObservedTime") {
            errs.push(FieldError::required("series.lastObservedTime"));
        }
    }
    errs
}

fn invalid(name: &str, errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::FieldsInvalid {
        kind: "Event".into(),
        name: name.to_string(),
        errors,
    })
}

fn name_of(ev: &Value) -> &str {
    ev.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Validates an event (core form) about to be created in `namespace`; `via_events_api` adds the
/// strict checks of a create through `events.k8s.io/v1`.
pub fn validate_create(ev: &Value, namespace: &str, via_events_api: bool) -> Result<(), ApiError> {
    let mut errs = legacy(ev, namespace);
    if via_events_api {
        errs.extend(series(ev));
        if !is_set(ev, "eventTime") {
            errs.push(FieldError::required("eventTime"));
        }
        let t = str_at(ev, "type");
        if t != "Normal" && t != "Warning" {
            errs.push(FieldError::invalid(
                "type",
                &json!(""),
                format!("has invalid value: {t}"),
            ));
        }
        for (key, shown) in [
            ("firstTimestamp", "firstTimestamp"),
            ("lastTimestamp", "lastTimestamp"),
            ("count", "count"),
        ] {
            if is_set(ev, key) {
                errs.push(FieldError::invalid(shown, &json!(""), "needs to be unset"));
            }
        }
        if is_set(ev, "source") {
            errs.push(FieldError::invalid(
                "source",
                &json!(""),
                "needs to be unset",
            ));
        }
    }
    invalid(name_of(ev), errs)
}

/// Validates an update of an event (both in core form); `via_events_api` adds the checks of an
/// update through `events.k8s.io/v1`: a changed `series` must be valid and the identity fields
/// are immutable.
pub fn validate_update(
    new: &Value,
    old: &Value,
    namespace: &str,
    via_events_api: bool,
) -> Result<(), ApiError> {
    let mut errs = legacy(new, namespace);
    if via_events_api {
        if new.get("series") != old.get("series") {
            errs.extend(series(new));
        }
        for (key, shown) in [
            ("involvedObject", "involvedObject"),
            ("reason", "reason"),
            ("message", "message"),
            ("source", "source"),
            ("firstTimestamp", "firstTimestamp"),
            ("lastTimestamp", "lastTimestamp"),
            ("count", "count"),
            ("type", "type"),
            ("eventTime", "eventTime"),
            ("action", "action"),
            ("related", "related"),
            ("reportingComponent", "reportingController"),
            ("reportingInstance", "reportingInstance"),
        ] {
            let norm = |v: Option<&Value>| v.filter(|x| !x.is_null()).cloned();
            if norm(new.get(key)) != norm(old.get(key)) {
                errs.push(FieldError::invalid(
                    shown,
                    new.get(key).unwrap_or(&Value::Null),
                    "field is immutable",
                ));
            }
        }
    }
    invalid(name_of(new), errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_style(note: &str) -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "p.1", "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "phalanx-scheduler", "reportingInstance": "phalanx-0",
            "action": "Scheduling", "reason": "FailedScheduling", "type": "Warning",
            "note": note,
            "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": "p", "uid": "u1"},
            "related": {"kind": "Node", "name": "n1"},
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
            "deprecatedCount": 3,
            "deprecatedSource": {"component": "old"},
            "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2026-01-01T00:00:02Z",
        })
    }

    #[test]
    fn conversion_maps_every_field_both_ways() {
        let core = to_core(new_style("hello"));
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["reportingComponent"], "phalanx-scheduler");
        assert_eq!(core["reportingInstance"], "phalanx-0");
        assert_eq!(core["source"]["component"], "old");
        assert_eq!(core["count"], 3);
        assert_eq!(core["firstTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(core["lastTimestamp"], "2026-01-01T00:00:02Z");
        for same in [
            "eventTime",
            "series",
            "action",
            "reason",
            "type",
            "related",
            "metadata",
        ] {
            assert_eq!(core[same], new_style("hello")[same], "{same}");
        }
        for gone in [
            "note",
            "regarding",
            "reportingController",
            "deprecatedCount",
        ] {
            assert!(core.get(gone).is_none(), "{gone}");
        }
        assert_eq!(from_core(core), new_style("hello"));
        // A core name sent to events.k8s.io is an unknown field there: dropped.
        let mut odd = new_style("n");
        odd["message"] = json!("not a field of events.k8s.io");
        assert_eq!(to_core(odd)["message"], "n");
        assert_eq!(core_field_path("regarding.name"), "involvedObject.name");
        assert_eq!(core_field_path("reportingController"), "reportingComponent");
        assert_eq!(core_field_path("metadata.name"), "metadata.name");
    }

    #[test]
    fn note_limit_is_1024_bytes_and_names_the_field() {
        let mut ok = to_core(new_style(&"x".repeat(1024)));
        for k in ["count", "source", "firstTimestamp", "lastTimestamp"] {
            ok.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(validate_create(&ok, "default", true), Ok(()));
        // 1000 characters of two bytes each: within a character limit, over the byte limit.
        let mut long = ok.clone();
        long["message"] = json!("é".repeat(1000));
        let err = validate_create(&long, "default", true).unwrap_err();
        let st = err.to_status();
        assert_eq!(st["code"], 422);
        assert_eq!(st["details"]["causes"][0]["field"], "message");
        assert_eq!(
            st["message"],
            "Event \"p.1\" is invalid: message: Invalid value: \"\": can have at most 1024 characters"
        );
        // The same through the core API, and on update.
        assert!(validate_create(&long, "default", false).is_err());
        assert!(validate_update(&long, &ok, "default", false).is_err());
        // Old-style core events (no eventTime) have no note limit, as in kube-apiserver.
        let legacy_event = json!({"metadata": {"name": "k"}, "message": "y".repeat(5000),
                                  "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"}});
        assert_eq!(validate_create(&legacy_event, "default", false), Ok(()));
    }

    #[test]
    fn strict_create_and_update_rules_of_events_k8s_io() {
        let core = to_core(new_style("n"));
        let err = validate_create(&core, "default", true)
            .unwrap_err()
            .to_string();
        for f in ["firstTimestamp", "lastTimestamp", "count", "source"] {
            assert!(
                err.contains(&format!("{f}: Invalid value: \"\": needs to be unset")),
                "{err}"
            );
        }
        let bare = json!({"metadata": {"name": "b"}, "type": "Info"});
        let err = validate_create(&bare, "default", true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Event \"b\" is invalid: [eventTime: Required value, type: Invalid value: \"\": has invalid value: Info]"
        );
        // With eventTime set, the new-style fields are required.
        let timed = json!({"metadata": {"name": "t"}, "type": "Normal",
                           "eventTime": "2026-01-01T00:00:00.000000Z"});
        let err = validate_create(&timed, "default", true)
            .unwrap_err()
            .to_string();
        for f in [
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
        ] {
            assert!(err.contains(&format!("{f}: Required value")), "{err}");
        }
        let mut changed = core.clone();
        changed["reason"] = json!("Other");
        let err = validate_update(&changed, &core, "default", true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reason: Invalid value: \"Other\": field is immutable"),
            "{err}"
        );
        let mut more = core.clone();
        more["series"] = json!({"count": 3, "lastObservedTime": "2026-01-01T00:00:09.000000Z"});
        assert_eq!(validate_update(&more, &core, "default", true), Ok(()));
    }
}
