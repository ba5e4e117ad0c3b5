//! The custom resources Phalanx reads, as Rust types: Volcano `PodGroup` and `Queue`
//! (`scheduling.volcano.sh/v1beta1`) and scheduler-plugins `PodGroup`
//! (`scheduling.x-k8s.io/v1alpha1`), with the fields Phalanx uses. `deploy/crds/` is generated
//! from them (`PHALANX_UPDATE_CRDS=1 cargo test -p phalanx-k8s --lib crd` rewrites it; the same
//! test fails when the files drift from the types).
//!
//! Clusters that run Volcano or scheduler-plugins already have these CRDs, with more fields;
//! these are for clusters that have neither. The watchers do not deserialize into these types:
//! they read `DynamicObject`s, so that a malformed object becomes a condition and an event
//! instead of a watch that cannot decode its list (see [`crate::translate`]).

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Quantities by resource name, as Kubernetes writes them (`"500m"`, `4`, `"64Gi"`).
pub type Quantities = BTreeMap<String, serde_json::Value>;

/// The schema of [`Quantities`]: each value an integer or a string (`int-or-string`), as the
/// upstream CRDs declare resource lists.
fn quantities(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
            "x-kubernetes-int-or-string": true
        }
    })
}

/// A condition of a PodGroup or Queue.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Unschedulable` or `Scheduled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// CamelCase reason (the engine's reason label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What it means, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// What Phalanx writes in a PodGroup's `status`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodGroupStatus {
    /// `Pending`, `Inqueue`, `Running`, `Completed` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Pods running.
    #[serde(default)]
    pub running: i32,
    /// Pods succeeded.
    #[serde(default)]
    pub succeeded: i32,
    /// Pods failed.
    #[serde(default)]
    pub failed: i32,
}

/// Volcano's PodGroup.
pub mod volcano {
    use super::*;

    /// `scheduling.volcano.sh/v1beta1` PodGroup: pods join it with the annotation
    /// `scheduling.k8s.io/group-name`.
    #[derive(
        CustomResource, Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema,
    )]
    #[kube(
        group = "scheduling.volcano.sh",
        version = "v1beta1",
        kind = "PodGroup",
        plural = "podgroups",
        shortname = "pg",
        shortname = "podgroup-v1beta1",
        namespaced,
        status = "PodGroupStatus",
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
        printcolumn = r#"{"name":"MinMember","type":"integer","jsonPath":".spec.minMember"}"#,
        printcolumn = r#"{"name":"Running","type":"integer","jsonPath":".status.running"}"#,
        printcolumn = r#"{"name":"Queue","type":"string","jsonPath":".spec.queue"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct PodGroupSpec {
        /// Pods that must be placed together.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_member: Option<i32>,
        /// Per-task minimums, by task name (`volcano.sh/task-spec`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_task_member: Option<BTreeMap<String, i32>>,
        /// Capacity to hold for the whole job (Spark: driver + executors).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "quantities")]
        pub min_resources: Option<Quantities>,
        /// The Volcano Queue's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub queue: Option<String>,
        /// Priority class of the job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub priority_class_name: Option<String>,
    }

    /// Guarantee of a queue.
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
    pub struct Guarantee {
        /// Resources always available to the queue.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "quantities")]
        pub resource: Option<Quantities>,
    }

    /// What a Queue's `status` holds: the fields Volcano's queue controller writes (`state`,
    /// PodGroup counts by phase, `allocated`; volcano-sh/apis `pkg/apis/scheduling/v1beta1/
    /// types.go`, `QueueStatus`, v1.13), written by Phalanx, plus its `deserved` share and its
    /// `dominantShare`. `state` is the admin's (`phalanx queue close|open`).
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct QueueStatus {
        /// `Open`, `Closed` or `Closing`: a queue not `Open` admits no new jobs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub state: Option<String>,
        /// PodGroups pending.
        #[serde(default)]
        pub pending: i32,
        /// PodGroups admitted, not running yet.
        #[serde(default)]
        pub inqueue: i32,
        /// PodGroups running.
        #[serde(default)]
        pub running: i32,
        /// PodGroups completed.
        #[serde(default)]
        pub completed: i32,
        /// PodGroups whose phase is not known.
        #[serde(default)]
        pub unknown: i32,
        /// Requests of its placed pods (with its child queues').
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "quantities")]
        pub allocated: Option<Quantities>,
        /// Its deserved share, as configured or water-filled over demand.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "quantities")]
        pub deserved: Option<Quantities>,
        /// Its dominant share of the cluster, 0 to 1 (a decimal string: the API has no floats).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dominant_share: Option<String>,
    }

    /// `scheduling.volcano.sh/v1beta1` Queue; the path in the queue tree is `root.<name>`, or
    /// the `volcano.sh/hierarchy` annotation's `root/a/b` as `root.a.b`.
    #[derive(
        CustomResource, Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema,
    )]
    #[kube(
        group = "scheduling.volcano.sh",
        version = "v1beta1",
        kind = "Queue",
        plural = "queues",
        shortname = "q",
        shortname = "queue-v1beta1",
        status = "QueueStatus",
        printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
        printcolumn = r#"{"name":"Weight","type":"integer","jsonPath":".spec.weight"}"#,
        printcolumn = r#"{"name":"Parent","type":"string","jsonPath":".spec.parent"}"#,
        printcolumn = r#"{"name":"Pending","type":"integer","jsonPath":".status.pending"}"#,
        printcolumn = r#"{"name":"Inqueue","type":"integer","jsonPath":".status.inqueue"}"#,
        printcolumn = r#"{"name":"Running","type":"integer","jsonPath":".status.running"}"#,
        printcolumn = r#"{"name":"Share","type":"string","description":"Dominant share of the cluster (DRF)","jsonPath":".status.dominantShare"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct QueueSpec {
        /// Weight among siblings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub weight: Option<i32>,
        /// Hard cap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "quantities")]
        pub capability: Option<Quantities>,
        /// Fair share.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "quantities")]
        pub deserved: Option<Quantities>,
        /// Always available.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub guarantee: Option<Guarantee>,
        /// Whether resources beyond `deserved` may be reclaimed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reclaimable: Option<bool>,
        /// The parent queue's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parent: Option<String>,
    }
}

/// scheduler-plugins' PodGroup.
pub mod plugins {
    use super::*;

    /// `scheduling.x-k8s.io/v1alpha1` PodGroup: pods join it with the label
    /// `scheduling.x-k8s.io/pod-group`.
    #[derive(
        CustomResource, Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema,
    )]
    #[kube(
        group = "scheduling.x-k8s.io",
        version = "v1alpha1",
        kind = "PodGroup",
        plural = "podgroups",
        shortname = "pgs",
        namespaced,
        status = "PodGroupStatus",
        printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
        printcolumn = r#"{"name":"MinMember","type":"integer","jsonPath":".spec.minMember"}"#,
        printcolumn = r#"{"name":"Running","type":"integer","jsonPath":".status.running"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct PodGroupSpec {
        /// Pods that must be placed together.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_member: Option<i32>,
        /// Capacity to hold for the whole job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "quantities")]
        pub min_resources: Option<Quantities>,
        /// Seconds a gang may wait before it is reported unschedulable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub schedule_timeout_seconds: Option<i32>,
    }
}

/// Every CRD, with its file name under `deploy/crds/`.
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    use kube::CustomResourceExt;
    vec![
        (
            "scheduling.volcano.sh_podgroups.yaml",
            volcano::PodGroup::crd(),
        ),
        ("scheduling.volcano.sh_queues.yaml", volcano::Queue::crd()),
        (
            "scheduling.x-k8s.io_podgroups.yaml",
            plugins::PodGroup::crd(),
        ),
    ]
}

/// A CRD as the YAML file `deploy/crds/` holds.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    let body = serde_norway::to_string(crd).unwrap_or_default();
    format!(
        "# Generated from k8s/src/crd.rs by `PHALANX_UPDATE_CRDS=1 cargo test -p phalanx-k8s --lib crd`; do not edit.\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_crds_match_the_rust_types() {
        let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let update = std::env::var_os("PHALANX_UPDATE_CRDS").is_some();
        // The plain manifests and the Helm chart carry the same files.
        for (dir, (file, crd)) in [deploy.join("crds"), deploy.join("helm/phalanx/files/crds")]
            .into_iter()
            .flat_map(|d| all().into_iter().map(move |c| (d.clone(), c)))
        {
            let want = to_yaml(&crd);
            let path = dir.join(file);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
                continue;
            }
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == want,
                "{} drifted from k8s/src/crd.rs; regenerate with PHALANX_UPDATE_CRDS=1 cargo test -p phalanx-k8s --lib crd",
                path.display()
            );
        }
    }
}
