//! The three PATCH dialects: JSON merge patch (RFC 7386), strategic merge patch, and JSON patch
//! (RFC 6902). Server-side apply is approximated with strategic merge (see the README).
//!
//! Strategic merge needs each list's merge key, which kube-apiserver reads from the Go types. The
//! emulator has no schemas, so it uses a table of the well-known list fields (containers by
//! `name`, conditions by `type`, ...) keyed by field name. Lists not in the table are replaced,
//! which is also what kube-apiserver does for lists without a patch strategy.

use serde_json::{Map, Value};

/// A patch that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document has the wrong shape.
    #[error("invalid patch: {0}")]
    Malformed(String),
    /// A JSON patch `test` operation failed, or a path does not exist.
    #[error("the json patch could not be applied: {0}")]
    Failed(String),
}

/// Applies an RFC 7386 JSON merge patch in place (the `json-patch` crate's, as kube-rs uses).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    ::json_patch::merge(target, patch);
}

/// How a list field merges in a strategic merge patch.
enum ListStrategy {
    /// Merge elements by this key.
    Key(&'static str),
    /// A list of primitives merged as a set union (`finalizers`).
    PrimitiveUnion,
}

fn list_strategy(field: &str) -> Option<ListStrategy> {
    use ListStrategy::{Key, PrimitiveUnion};
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates"
        | "hostAliases" => Key("name"),
        "ports" => Key("containerPort"),
        "volumeMounts" => Key("mountPath"),
        "volumeDevices" => Key("devicePath"),
        "conditions" | "addresses" => Key("type"),
        "ownerReferences" => Key("uid"),
        "finalizers" => PrimitiveUnion,
        _ => return None,
    })
}

/// Applies a strategic merge patch in place.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = p.clone();
            clean.remove("$patch");
            *target = Value::Object(clean);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some(other) if other != "merge" => {
            return Err(PatchError::Malformed(format!("unknown $patch {other:?}")));
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object");
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()) || p.contains_key(k));
    }
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Value::Array(del)) = (t.get_mut(field), v) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (list_strategy(k), v) {
            (Some(strategy), Value::Array(items)) => {
                let cur = t.entry(k.clone()).or_insert_with(|| Value::Array(vec![]));
                if !cur.is_array() {
                    *cur = Value::Array(vec![]);
                }
                let cur = cur.as_array_mut().expect("made an array");
                merge_list(cur, items, strategy)?;
            }
            _ => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(slot, v)?;
                if slot.is_null() {
                    t.remove(k);
                }
            }
        }
    }
    Ok(())
}

fn merge_list(
    cur: &mut Vec<Value>,
    items: &[Value],
    strategy: ListStrategy,
) -> Result<(), PatchError> {
    if items.len() == 1 && items[0].get("$patch").and_then(Value::as_str) == Some("replace") {
        cur.clear();
        return Ok(());
    }
    match strategy {
        ListStrategy::PrimitiveUnion => {
            for it in items {
                if !cur.contains(it) {
                    cur.push(it.clone());
                }
            }
        }
        ListStrategy::Key(key) => {
            for it in items {
                let Some(id) = it.get(key) else {
                    // An element without its merge key: kube-apiserver rejects this; so do we.
                    return Err(PatchError::Malformed(format!(
                        "list element without merge key {key:?}"
                    )));
                };
                let pos = cur.iter().position(|c| c.get(key) == Some(id));
                let delete = it.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        cur.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => strategic_merge(&mut cur[i], it)?,
                    (None, false) => {
                        let mut fresh = Value::Object(Map::new());
                        strategic_merge(&mut fresh, it)?;
                        cur.push(fresh);
                    }
                }
            }
        }
    }
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(ptr: &str) -> Result<(String, String), PatchError> {
    let Some(rest) = ptr.strip_prefix('/') else {
        return Err(PatchError::Malformed(format!("bad path {ptr:?}")));
    };
    let (parent, last) = match rest.rfind('/') {
        Some(i) => (format!("/{}", &rest[..i]), &rest[i + 1..]),
        None => (String::new(), rest),
    };
    Ok((parent, unescape(last)))
}

fn add_at(doc: &mut Value, ptr: &str, value: Value, replace: bool) -> Result<(), PatchError> {
    if ptr.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(ptr)?;
    let missing = || PatchError::Failed(format!("path {ptr:?} does not exist"));
    let container = doc.pointer_mut(&parent).ok_or_else(missing)?;
    match container {
        Value::Object(m) => {
            if replace && !m.contains_key(&last) {
                return Err(missing());
            }
            m.insert(last, value);
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(value);
            } else {
                let i: usize = last.parse().map_err(|_| missing())?;
                if replace {
                    *a.get_mut(i).ok_or_else(missing)? = value;
                } else if i <= a.len() {
                    a.insert(i, value);
                } else {
                    return Err(missing());
                }
            }
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn remove_at(doc: &mut Value, ptr: &str) -> Result<Value, PatchError> {
    let (parent, last) = split_pointer(ptr)?;
    let missing = || PatchError::Failed(format!("path {ptr:?} does not exist"));
    match doc.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

/// Applies an RFC 6902 JSON patch; on error the target may be partly changed, so callers patch
/// a copy.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let Value::Array(ops) = ops else {
        return Err(PatchError::Malformed(
            "a JSON patch must be an array".into(),
        ));
    };
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| PatchError::Malformed("operation without path".into()))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| PatchError::Malformed(format!("{kind} without value")))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| PatchError::Malformed(format!("{kind} without from")))
        };
        match kind {
            "add" => add_at(target, path, value()?, false)?,
            "replace" => add_at(target, path, value()?, true)?,
            "remove" => {
                remove_at(target, path)?;
            }
            "test" => {
                if target.pointer(path) != Some(&value()?) {
                    return Err(PatchError::Failed(format!("test failed at {path:?}")));
                }
            }
            "move" => {
                let v = remove_at(target, from()?)?;
                add_at(target, path, v, false)?;
            }
            "copy" => {
                let v = target
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| PatchError::Failed(format!("no value at {:?}", from())))?;
                add_at(target, path, v, false)?;
            }
            other => return Err(PatchError::Malformed(format!("unknown op {other:?}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_removes_nulls() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"a": null, "b": {"c": 9}}));
        assert_eq!(t, json!({"b": {"c": 9, "d": 3}}));
    }

    #[test]
    fn strategic_merge_merges_conditions_by_type() {
        let mut t = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}
        ]}, "metadata": {"finalizers": ["a"]}});
        strategic_merge(
            &mut t,
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]},
                    "metadata": {"finalizers": ["b"]}}),
        )
        .unwrap();
        assert_eq!(t["status"]["conditions"][0]["status"], "True");
        assert_eq!(t["status"]["conditions"][1]["type"], "PodScheduled");
        assert_eq!(t["metadata"]["finalizers"], json!(["a", "b"]));
        strategic_merge(
            &mut t,
            &json!({"status": {"conditions": [{"type": "Ready", "$patch": "delete"}]},
                    "$setElementOrder/x": [],
                    "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(t["status"]["conditions"].as_array().unwrap().len(), 1);
        assert_eq!(t["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn json_patch_ops() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}}, "l": [1, 2]});
        json_patch(
            &mut t,
            &json!([
                {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/a"},
                {"op": "add", "path": "/l/-", "value": 3},
                {"op": "test", "path": "/l/0", "value": 1},
                {"op": "replace", "path": "/l/1", "value": 5}
            ]),
        )
        .unwrap();
        assert_eq!(
            t,
            json!({"metadata": {"labels": {"b/c": "2"}}, "l": [1, 5, 3]})
        );
        assert!(json_patch(&mut t, &json!([{"op": "test", "path": "/l/0", "value": 7}])).is_err());
    }
}
