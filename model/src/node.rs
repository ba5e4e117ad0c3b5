//! Nodes and the static predicates on them: labels against a nodeSelector or required node
//! affinity, taints against tolerations. These are the Kubernetes semantics, to the letter
//! (`k8s.io/component-helpers/scheduling/corev1`), as pure functions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resource::Resources;

/// A node as the engine sees it: what it can hold and what may run there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Unique name.
    pub name: String,
    /// Allocatable capacity (not raw capacity): what pods may request in total.
    pub allocatable: Resources,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// Node taints.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned): nothing new is placed here.
    pub unschedulable: bool,
}

impl Node {
    /// A schedulable node with no labels or taints.
    pub fn new(name: impl Into<String>, allocatable: Resources) -> Self {
        Node {
            name: name.into(),
            allocatable,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unschedulable: false,
        }
    }
}

/// What a taint does to pods that do not tolerate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    /// New pods that do not tolerate it are not placed on the node.
    NoSchedule,
    /// The scheduler avoids the node for pods that do not tolerate it, if it can.
    PreferNoSchedule,
    /// Like `NoSchedule`, and running pods that do not tolerate it are evicted.
    NoExecute,
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value (may be empty).
    #[serde(default)]
    pub value: String,
    /// Taint effect.
    pub effect: TaintEffect,
}

/// How a toleration compares values.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub enum TolerationOperator {
    /// Key and value must match.
    #[default]
    Equal,
    /// Any value; with an empty key, any taint at all.
    Exists,
}

/// A pod's toleration of taints.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Toleration {
    /// Taint key to match; empty with `Exists` matches every key.
    #[serde(default)]
    pub key: String,
    /// How to compare.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// Value to match with `Equal`.
    #[serde(default)]
    pub value: String,
    /// Effect to match; `None` matches every effect.
    #[serde(default)]
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Whether this toleration tolerates `taint` (Kubernetes `Toleration.ToleratesTaint`).
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => self.value == taint.value,
        }
    }
}

/// Whether some toleration in `tolerations` tolerates `taint`.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| t.tolerates(taint))
}

/// The operator of a node selector requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SelectorOperator {
    /// The label is present and its value is one of `values`.
    In,
    /// The label is absent, or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
    /// The label's value, as an integer, is greater than the single value.
    Gt,
    /// The label's value, as an integer, is less than the single value.
    Lt,
}

/// One requirement of a node selector term.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SelectorRequirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: SelectorOperator,
    /// Values for `In`/`NotIn`; exactly one integer for `Gt`/`Lt`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl SelectorRequirement {
    /// Whether a node with `labels` satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let label = labels.get(&self.key);
        match self.operator {
            SelectorOperator::In => label.is_some_and(|v| self.values.contains(v)),
            SelectorOperator::NotIn => label.is_none_or(|v| !self.values.contains(v)),
            SelectorOperator::Exists => label.is_some(),
            SelectorOperator::DoesNotExist => label.is_none(),
            SelectorOperator::Gt | SelectorOperator::Lt => {
                let (Some(label), [bound]) = (label, self.values.as_slice()) else {
                    return false;
                };
                let (Ok(label), Ok(bound)) = (label.parse::<i64>(), bound.parse::<i64>()) else {
                    return false;
                };
                if self.operator == SelectorOperator::Gt {
                    label > bound
                } else {
                    label < bound
                }
            }
        }
    }
}

/// A node selector term: all requirements must hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct SelectorTerm {
    /// Requirements on labels, ANDed.
    #[serde(default)]
    pub match_expressions: Vec<SelectorRequirement>,
}

/// `requiredDuringSchedulingIgnoredDuringExecution` node affinity: the terms are ORed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct NodeAffinity {
    /// Terms, ORed. An empty list matches no node, as in Kubernetes.
    pub terms: Vec<SelectorTerm>,
}

impl NodeAffinity {
    /// Whether a node with `labels` satisfies some term.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms
            .iter()
            .any(|t| t.match_expressions.iter().all(|r| r.matches(labels)))
    }

    /// Every label key the affinity reads.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.terms
            .iter()
            .flat_map(|t| t.match_expressions.iter().map(|r| r.key.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: SelectorOperator, values: &[&str]) -> SelectorRequirement {
        SelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn selector_operators_follow_kubernetes() {
        use SelectorOperator::*;
        let l = labels(&[("zone", "a"), ("gen", "5")]);
        assert!(req("zone", In, &["a", "b"]).matches(&l));
        assert!(!req("zone", In, &["b"]).matches(&l));
        assert!(!req("rack", In, &["a"]).matches(&l));
        assert!(req("zone", NotIn, &["b"]).matches(&l));
        assert!(
            req("rack", NotIn, &["b"]).matches(&l),
            "absent label satisfies NotIn"
        );
        assert!(req("zone", Exists, &[]).matches(&l));
        assert!(req("rack", DoesNotExist, &[]).matches(&l));
        assert!(req("gen", Gt, &["4"]).matches(&l));
        assert!(!req("gen", Gt, &["5"]).matches(&l));
        assert!(req("gen", Lt, &["6"]).matches(&l));
        assert!(
            !req("zone", Lt, &["6"]).matches(&l),
            "non-integer label never matches"
        );
        assert!(
            !req("gen", Gt, &["1", "2"]).matches(&l),
            "Gt takes one value"
        );
    }

    #[test]
    fn affinity_terms_are_ored_and_requirements_anded() {
        use SelectorOperator::*;
        let l = labels(&[("zone", "a"), ("gpu", "A100")]);
        let aff = NodeAffinity {
            terms: vec![
                SelectorTerm {
                    match_expressions: vec![req("zone", In, &["b"])],
                },
                SelectorTerm {
                    match_expressions: vec![req("zone", In, &["a"]), req("gpu", In, &["A100"])],
                },
            ],
        };
        assert!(aff.matches(&l));
        assert!(
            !NodeAffinity::default().matches(&l),
            "no terms match nothing"
        );
    }

    #[test]
    fn tolerations_follow_kubernetes() {
        let taint = Taint {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: TaintEffect::NoSchedule,
        };
        let eq = Toleration {
            key: "dedicated".into(),
            operator: TolerationOperator::Equal,
            value: "gpu".into(),
            effect: Some(TaintEffect::NoSchedule),
        };
        assert!(eq.tolerates(&taint));
        assert!(
            !Toleration {
                value: "cpu".into(),
                ..eq.clone()
            }
            .tolerates(&taint)
        );
        assert!(
            !Toleration {
                effect: Some(TaintEffect::NoExecute),
                ..eq.clone()
            }
            .tolerates(&taint)
        );
        assert!(
            Toleration {
                effect: None,
                ..eq.clone()
            }
            .tolerates(&taint)
        );
        let all = Toleration {
            operator: TolerationOperator::Exists,
            ..Default::default()
        };
        assert!(
            all.tolerates(&taint),
            "empty key with Exists tolerates everything"
        );
    }
}
