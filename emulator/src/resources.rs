//! The resource registry: which group/version/resources are served, and the discovery documents
//! (`/api`, `/apis`, resource lists) kubectl and kube-rs read to find them.
//!
//! Built-in resources are fixed at startup; a `CustomResourceDefinition` adds one entry per served
//! version. Storage is keyed by group and plural, not version: objects of a multi-version CRD are
//! stored once and served as written (no conversion).

use serde_json::{Value, json};

/// An `additionalPrinterColumns` entry, used for kubectl's table output.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`).
    pub kind: String,
    /// Simple JSONPath such as `.status.phase`.
    pub json_path: String,
    /// 0 shows by default, higher only with `-o wide`.
    pub priority: i64,
}

/// One served resource at one group/version.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDef {
    /// API group; empty for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural lowercase name used in URLs.
    pub plural: String,
    /// Singular lowercase name.
    pub singular: String,
    /// Kind of the objects.
    pub kind: String,
    /// Kind of list responses.
    pub list_kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// kubectl categories (`all`).
    pub categories: Vec<String>,
    /// Whether `/status` is a separate subresource (the main resource then ignores status).
    pub status_subresource: bool,
    /// Other subresources served (`binding`, `eviction`).
    pub extra_subresources: Vec<String>,
    /// Extra table columns (CRDs).
    pub printer_columns: Vec<PrinterColumn>,
    /// Only `create` is served: each object is a question answered at once and not stored
    /// (TokenReview, SubjectAccessReview; see [`crate::auth`]).
    pub create_only: bool,
}

impl ResourceDef {
    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            namespaced,
            short_names: vec![],
            categories: vec![],
            status_subresource: false,
            extra_subresources: vec![],
            printer_columns: vec![],
            create_only: false,
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    fn review(mut self) -> Self {
        self.create_only = true;
        self
    }

    fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// `v1` for core, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource as named in error messages: `pods`, `podgroups.scheduling.volcano.sh`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The storage key, shared by all versions of a resource.
    pub fn storage_key(&self) -> (String, String) {
        (self.group.clone(), self.plural.clone())
    }

    /// True for a core/v1 resource of this plural.
    pub fn is_core(&self, plural: &str) -> bool {
        self.group.is_empty() && self.plural == plural
    }

    /// This resource's entries in an `APIResourceList`.
    pub fn discovery_entries(&self) -> Vec<Value> {
        let verbs = if self.create_only {
            json!(["create"])
        } else {
            json!([
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch"
            ])
        };
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut out = vec![main];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural), "singularName": "",
                "namespaced": self.namespaced, "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        for sub in &self.extra_subresources {
            let (kind, group, version) = match sub.as_str() {
                "binding" => ("Binding", "", "v1"),
                "eviction" => ("Eviction", "policy", "v1"),
                _ => (self.kind.as_str(), "", ""),
            };
            let mut e = json!({
                "name": format!("{}/{sub}", self.plural), "singularName": "",
                "namespaced": self.namespaced, "kind": kind, "verbs": ["create"],
            });
            if !group.is_empty() {
                e["group"] = json!(group);
                e["version"] = json!(version);
            }
            out.push(e);
        }
        out
    }
}

/// The built-in resources: what Phalanx, kubectl and the kube-rs tests need.
pub fn builtins() -> Vec<ResourceDef> {
    let mut pods = ResourceDef::builtin("", "v1", "pods", "Pod", true)
        .short(&["po"])
        .with_status();
    pods.categories = vec!["all".into()];
    pods.extra_subresources = vec!["binding".into(), "eviction".into()];
    let mut defs = vec![
        ResourceDef::builtin("", "v1", "namespaces", "Namespace", false)
            .short(&["ns"])
            .with_status(),
        ResourceDef::builtin("", "v1", "nodes", "Node", false)
            .short(&["no"])
            .with_status(),
        pods,
        ResourceDef::builtin("", "v1", "events", "Event", true).short(&["ev"]),
        ResourceDef::builtin("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]),
        ResourceDef::builtin("", "v1", "bindings", "Binding", true),
        ResourceDef::builtin("events.k8s.io", "v1", "events", "Event", true).short(&["ev"]),
        ResourceDef::builtin("coordination.k8s.io", "v1", "leases", "Lease", true),
        ResourceDef::builtin(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "PriorityClass",
            false,
        )
        .short(&["pc"]),
        ResourceDef::builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
        )
        .short(&["crd", "crds"])
        .with_status(),
        // Asked by delegated authentication and authorization (kube-scheduler's secure port,
        // Phalanx's admin API); answered from the `--token` users.
        ResourceDef::builtin(
            "authentication.k8s.io",
            "v1",
            "tokenreviews",
            "TokenReview",
            false,
        )
        .review(),
        ResourceDef::builtin(
            "authorization.k8s.io",
            "v1",
            "subjectaccessreviews",
            "SubjectAccessReview",
            false,
        )
        .review(),
    ];
    // The upstream gang API: Kubernetes 1.37 serves v1beta1, and v1alpha3 with the same fields
    // and storage. Workloads hold PodGroup templates; schedulers read only the PodGroups.
    defs.extend(["v1beta1", "v1alpha3"].map(|v| {
        ResourceDef::builtin("scheduling.k8s.io", v, "podgroups", "PodGroup", true).with_status()
    }));
    defs.push(ResourceDef::builtin(
        "scheduling.k8s.io",
        "v1beta1",
        "workloads",
        "Workload",
        true,
    ));
    defs
}

/// A CRD object that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrdError {
    /// A required field is missing or wrong.
    #[error("spec.{0}: Required value")]
    Missing(&'static str),
    /// `metadata.name` must be `<plural>.<group>`.
    #[error("metadata.name: Invalid value: {0:?}: must be spec.names.plural+\".\"+spec.group")]
    BadName(String),
}

/// The resources a CRD serves, one per served version.
pub fn defs_from_crd(crd: &Value) -> Result<Vec<ResourceDef>, CrdError> {
    let spec = crd.get("spec").ok_or(CrdError::Missing("spec"))?;
    let s = |v: &Value, k: &'static str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let group = s(spec, "group").ok_or(CrdError::Missing("group"))?;
    let names = spec.get("names").ok_or(CrdError::Missing("names"))?;
    let plural = s(names, "plural").ok_or(CrdError::Missing("names.plural"))?;
    let kind = s(names, "kind").ok_or(CrdError::Missing("names.kind"))?;
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name != format!("{plural}.{group}") {
        return Err(CrdError::BadName(name.to_string()));
    }
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = s(spec, "scope").as_deref() != Some("Cluster");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or(CrdError::Missing("versions"))?;
    let mut defs = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let version = s(v, "name").ok_or(CrdError::Missing("versions[].name"))?;
        let printer_columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .filter_map(|c| {
                        Some(PrinterColumn {
                            name: s(c, "name")?,
                            kind: s(c, "type").unwrap_or_else(|| "string".into()),
                            json_path: s(c, "jsonPath")?,
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        defs.push(ResourceDef {
            group: group.clone(),
            version,
            plural: plural.clone(),
            singular: s(names, "singular").unwrap_or_else(|| kind.to_lowercase()),
            kind: kind.clone(),
            list_kind: s(names, "listKind").unwrap_or_else(|| format!("{kind}List")),
            namespaced,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            status_subresource: v.pointer("/subresources/status").is_some(),
            extra_subresources: vec![],
            printer_columns,
            create_only: false,
        });
    }
    Ok(defs)
}

fn column(name: &str, kind: &str, path: &str) -> Value {
    json!({"name": name, "type": kind, "jsonPath": path})
}

/// The CRDs Phalanx reads, installed at startup: Volcano PodGroup and Queue
/// (`scheduling.volcano.sh/v1beta1`) and scheduler-plugins PodGroup
/// (`scheduling.x-k8s.io/v1alpha1`). Names, scope, subresources and printer columns follow the
/// upstream CRDs; the schemas are open (`x-kubernetes-preserve-unknown-fields`), since the
/// emulator does not validate.
pub fn shipped_crds() -> Vec<Value> {
    let crd = |group: &str,
               version: &str,
               plural: &str,
               kind: &str,
               scope: &str,
               short: &[&str],
               status: bool,
               columns: Vec<Value>| {
        let mut v = json!({
            "name": version, "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "subresources": {},
            "additionalPrinterColumns": columns,
        });
        if status {
            v["subresources"] = json!({"status": {}});
        }
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {
                "group": group,
                "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind,
                          "listKind": format!("{kind}List"), "shortNames": short},
                "scope": scope,
                "versions": [v],
            }
        })
    };
    vec![
        crd(
            "scheduling.volcano.sh",
            "v1beta1",
            "podgroups",
            "PodGroup",
            "Namespaced",
            &["pg", "podgroup-v1beta1"],
            false,
            vec![
                column("STATUS", "string", ".status.phase"),
                column("minMember", "integer", ".spec.minMember"),
                column("RUNNINGS", "integer", ".status.running"),
                column("AGE", "date", ".metadata.creationTimestamp"),
                column("QUEUE", "string", ".spec.queue"),
            ],
        ),
        crd(
            "scheduling.volcano.sh",
            "v1beta1",
            "queues",
            "Queue",
            "Cluster",
            &["q", "queue-v1beta1"],
            true,
            vec![
                column("PARENT", "string", ".spec.parent"),
                column("AGE", "date", ".metadata.creationTimestamp"),
            ],
        ),
        crd(
            "scheduling.x-k8s.io",
            "v1alpha1",
            "podgroups",
            "PodGroup",
            "Namespaced",
            &["pg", "pgs"],
            true,
            vec![
                column("Phase", "string", ".status.phase"),
                column("MinMember", "integer", ".spec.minMember"),
                column("Running", "integer", ".status.running"),
                column("Succeeded", "integer", ".status.succeeded"),
                column("Failed", "integer", ".status.failed"),
                column("Age", "date", ".metadata.creationTimestamp"),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_crds_parse() {
        let defs: Vec<_> = shipped_crds()
            .iter()
            .flat_map(|c| defs_from_crd(c).unwrap())
            .collect();
        assert_eq!(defs.len(), 3);
        assert!(defs[0].namespaced && !defs[0].status_subresource);
        assert!(!defs[1].namespaced && defs[1].status_subresource);
        assert_eq!(defs[2].qualified(), "podgroups.scheduling.x-k8s.io");
    }

    #[test]
    fn upstream_crd_manifests_parse_when_present() {
        // CI has ../shared beside the checkout; skip quietly elsewhere.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/manifests");
        for f in [
            "volcano/crd__scheduling.volcano.sh_podgroups.yaml",
            "volcano/crd__scheduling.volcano.sh_queues.yaml",
            "scheduler-plugins/crd__scheduling.x-k8s.io_podgroups.yaml",
        ] {
            let Ok(text) = std::fs::read_to_string(dir.join(f)) else {
                return;
            };
            // The upstream files are YAML; checking the names we hard-code is enough here.
            for d in shipped_crds()
                .iter()
                .flat_map(|c| defs_from_crd(c).unwrap())
            {
                if text.contains(&format!("group: {}", d.group))
                    && text.contains(&format!("plural: {}", d.plural))
                {
                    assert!(text.contains(&format!("kind: {}", d.kind)), "{f}");
                    let scope = if d.namespaced {
                        "Namespaced"
                    } else {
                        "Cluster"
                    };
                    assert!(text.contains(&format!("scope: {scope}")), "{f}");
                }
            }
        }
    }
}
