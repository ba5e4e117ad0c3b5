//! A queue's configuration, as admins write it: weight, the three quota levels, and how jobs
//! inside it are ordered. The arithmetic on them lives in `phalanx-queue`; this is only the
//! vocabulary, and the record admins write (the trace format's `queue` record, in JSON or YAML).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;
use crate::resource::{ResourceError, ResourceTable, Resources};

/// How jobs inside one queue take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueOrdering {
    /// Later jobs may pass a head job that does not fit.
    #[default]
    BestEffort,
    /// A head job that does not fit blocks the queue until it does.
    StrictFifo,
}

impl QueueOrdering {
    /// Whether it is the default (written records leave it out).
    pub fn is_default(&self) -> bool {
        *self == QueueOrdering::default()
    }
}

/// One queue of the tree, by dotted path under `root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSpec {
    /// Dotted path, `root.team.sub`.
    pub name: String,
    /// Relative weight among siblings (1..=65535).
    pub weight: u32,
    /// Always available to this queue.
    pub guarantee: Resources,
    /// Its fair share; `None` means the weight-proportional share of current demand.
    pub deserved: Option<Resources>,
    /// Hard cap; `None` means unlimited.
    pub capability: Option<Resources>,
    /// Whether resources it holds beyond `deserved` may be reclaimed.
    pub reclaimable: bool,
    /// How jobs inside it take turns.
    pub ordering: QueueOrdering,
    /// Whether a pending job of higher priority may evict running gangs of lower priority in
    /// this queue (whole gangs only).
    pub preemption: bool,
}

impl QueueSpec {
    /// A queue with weight 1, no guarantee, weight-proportional share, no cap, reclaimable,
    /// best-effort ordering, in-queue preemption on.
    pub fn new(name: impl Into<String>) -> Self {
        QueueSpec {
            name: name.into(),
            weight: 1,
            guarantee: Resources::ZERO,
            deserved: None,
            capability: None,
            reclaimable: true,
            ordering: QueueOrdering::BestEffort,
            preemption: true,
        }
    }
}

/// An amount as written: a Kubernetes quantity string or a plain number, in queue records and
/// everywhere the trace format takes one. Parsed by [`QueueRecord::to_spec`] (or
/// [`Amount::quantity`]), so a bad one is reported with its object and field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    /// A whole number (`8`).
    Int(u64),
    /// Any other number (`0.5`, `-1`).
    Float(f64),
    /// A quantity string (`"500m"`, `"64Gi"`).
    Text(String),
}

impl Eq for Amount {}

impl From<i64> for Amount {
    fn from(v: i64) -> Self {
        match u64::try_from(v) {
            Ok(u) => Amount::Int(u),
            // Kept as written, so that parsing it names the negative value.
            Err(_) => Amount::Float(v as f64),
        }
    }
}

impl From<&str> for Amount {
    fn from(v: &str) -> Self {
        Amount::Text(v.to_string())
    }
}

impl Amount {
    /// The amount as a Kubernetes quantity.
    pub fn quantity(&self) -> Result<Quantity, crate::quantity::QuantityError> {
        match self {
            Amount::Int(v) => Quantity::parse(&v.to_string()),
            Amount::Float(v) if v.is_finite() => Quantity::parse(&v.to_string()),
            Amount::Float(v) => Quantity::parse(&format!("{v}x")),
            Amount::Text(t) => Quantity::parse(t),
        }
    }
}

fn parse_amounts(
    table: &mut ResourceTable,
    amounts: &BTreeMap<String, Amount>,
) -> Result<Resources, ResourceError> {
    let mut parsed = BTreeMap::new();
    for (name, amount) in amounts {
        let q = amount
            .quantity()
            .map_err(|source| ResourceError::Quantity {
                resource: name.clone(),
                source,
            })?;
        parsed.insert(name.clone(), q);
    }
    table.parse(&parsed)
}

/// A queue as admins write it: exactly the fields of the trace format's `queue` record, plus
/// `ordering` and `preemption`. Every field but `name` is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueRecord {
    /// Dotted path under `root`.
    pub name: String,
    /// Relative weight among siblings; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    /// Always available to this queue.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub guarantee: BTreeMap<String, Amount>,
    /// Its fair share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deserved: Option<BTreeMap<String, Amount>>,
    /// Hard cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<BTreeMap<String, Amount>>,
    /// Whether resources beyond `deserved` may be reclaimed; true when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaimable: Option<bool>,
    /// `best-effort` (default) or `strict-fifo`.
    #[serde(default, skip_serializing_if = "QueueOrdering::is_default")]
    pub ordering: QueueOrdering,
    /// Whether higher-priority jobs may preempt lower-priority ones inside the queue; true when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption: Option<bool>,
}

/// A queue record that does not make a spec; names the queue and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue {queue}: {field}: {source}")]
pub struct QueueRecordError {
    /// The queue.
    pub queue: String,
    /// The field (`guarantee`, `deserved`, `capability`).
    pub field: &'static str,
    /// What is wrong with it.
    pub source: ResourceError,
}

impl QueueRecord {
    /// A record naming only the queue: every field at its default.
    pub fn new(name: impl Into<String>) -> Self {
        QueueRecord {
            name: name.into(),
            weight: None,
            guarantee: BTreeMap::new(),
            deserved: None,
            capability: None,
            reclaimable: None,
            ordering: QueueOrdering::default(),
            preemption: None,
        }
    }

    /// Converts quantities into vectors through `table`.
    pub fn to_spec(&self, table: &mut ResourceTable) -> Result<QueueSpec, QueueRecordError> {
        let err = |field| {
            move |source| QueueRecordError {
                queue: self.name.clone(),
                field,
                source,
            }
        };
        let guarantee = parse_amounts(table, &self.guarantee).map_err(err("guarantee"))?;
        let deserved = match &self.deserved {
            Some(d) => Some(parse_amounts(table, d).map_err(err("deserved"))?),
            None => None,
        };
        let capability = match &self.capability {
            Some(c) => Some(parse_amounts(table, c).map_err(err("capability"))?),
            None => None,
        };
        Ok(QueueSpec {
            name: self.name.clone(),
            // Out-of-range weights are kept as written so validation can name them.
            weight: self.weight.map_or(1, |w| w.min(u32::MAX as u64) as u32),
            guarantee,
            deserved,
            capability,
            reclaimable: self.reclaimable.unwrap_or(true),
            ordering: self.ordering,
            preemption: self.preemption.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceId;

    #[test]
    fn records_read_the_trace_format_and_name_bad_fields() {
        let line = r#"{"name":"root.research","weight":2,"guarantee":{"nvidia.com/gpu":16},"deserved":{"nvidia.com/gpu":32},"capability":{"nvidia.com/gpu":64},"reclaimable":true}"#;
        let rec: QueueRecord = serde_json::from_str(line).unwrap();
        let spec = rec.to_spec(&mut ResourceTable::new()).unwrap();
        assert_eq!(spec.weight, 2);
        assert_eq!(spec.capability.unwrap().get(ResourceId::GPU), 64);
        assert_eq!(spec.ordering, QueueOrdering::BestEffort);
        let bad: QueueRecord =
            serde_json::from_str(r#"{"name":"root.a","capability":{"cpu":"12x"}}"#).unwrap();
        let e = bad.to_spec(&mut ResourceTable::new()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("queue root.a: capability: resource \"cpu\""),
            "{e}"
        );
        let neg: QueueRecord =
            serde_json::from_str(r#"{"name":"root.b","guarantee":{"memory":-1}}"#).unwrap();
        let e = neg.to_spec(&mut ResourceTable::new()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("queue root.b: guarantee: resource \"memory\""),
            "{e}"
        );
        assert!(serde_json::from_str::<QueueRecord>(r#"{"name":"root.a","wieght":2}"#).is_err());
    }
}
