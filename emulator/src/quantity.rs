//! Kubernetes resource quantities (`500m`, `2`, `64Gi`, `1e3`) as exact milli-units.
//!
//! The simulated kubelet compares pod requests with node allocatable the way the real one does:
//! in integer milli-units, so `100m` CPU ten times fits exactly into `1`.

use std::collections::BTreeMap;

use phalanx_model::Quantity;
use serde_json::Value;

/// A quantity that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text is not a Kubernetes quantity.
    #[error("invalid quantity {0:?}")]
    Invalid(String),
}

/// Parses a quantity into milli-units, rounding up as Kubernetes does for sub-milli values.
/// The grammar and rounding are `phalanx_model::Quantity`'s, the same the scheduler uses, so
/// the simulated kubelet and the engine can never disagree on what a request means.
pub fn parse_milli(text: &str) -> Result<i128, QuantityError> {
    let invalid = |e: phalanx_model::QuantityError| QuantityError::Invalid(format!("{text}: {e}"));
    let q = Quantity::parse(text).map_err(invalid)?;
    Ok(i128::from(q.milli_value().map_err(invalid)?))
}

/// Parses a JSON quantity: a string (`"500m"`) or a bare number (`2`).
pub fn parse_value_milli(v: &Value) -> Result<i128, QuantityError> {
    match v {
        Value::String(s) => parse_milli(s),
        Value::Number(n) => parse_milli(&n.to_string()),
        other => Err(QuantityError::Invalid(other.to_string())),
    }
}

/// A resource list (`{"cpu": "2", "memory": "4Gi"}`) in milli-units, keyed by resource name.
pub type ResourceMilli = BTreeMap<String, i128>;

/// Parses a resource list object; absent or `null` gives an empty map.
pub fn parse_list(v: Option<&Value>) -> Result<ResourceMilli, QuantityError> {
    let mut out = ResourceMilli::new();
    if let Some(Value::Object(map)) = v {
        for (k, q) in map {
            out.insert(k.clone(), parse_value_milli(q)?);
        }
    }
    Ok(out)
}

/// Formats milli-units back as the plain form kubelet uses in its messages: integer units for
/// whole values (`4`), otherwise milli (`500m`).
pub fn format_milli(m: i128) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_milli("500m").unwrap(), 500);
        assert_eq!(parse_milli("2").unwrap(), 2000);
        assert_eq!(parse_milli("1.5").unwrap(), 1500);
        assert_eq!(parse_milli("64Gi").unwrap(), 64 * (1i128 << 30) * 1000);
        assert_eq!(parse_milli("1k").unwrap(), 1_000_000);
        assert_eq!(parse_milli("1e3").unwrap(), 1_000_000);
        assert_eq!(parse_milli("100n").unwrap(), 1);
        assert!(parse_milli("abc").is_err());
        assert!(parse_milli("1Qi").is_err());
        assert!(
            parse_milli("-1").is_err(),
            "requests and capacities are never negative"
        );
        assert_eq!(parse_value_milli(&serde_json::json!(8)).unwrap(), 8000);
    }
}
