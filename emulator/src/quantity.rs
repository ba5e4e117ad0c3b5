//! Kubernetes resource quantities (`500m`, `2`, `64Gi`, `1e3`) as exact milli-units.
//!
//! The simulated kubelet compares pod requests with node allocatable the way the real one does:
//! in integer milli-units, so `100m` CPU ten times fits exactly into `1`.

use std::collections::BTreeMap;

use serde_json::Value;

/// A quantity that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text is not a Kubernetes quantity.
    #[error("invalid quantity {0:?}")]
    Invalid(String),
}

/// Parses a quantity into milli-units, rounding up as Kubernetes does for sub-milli values.
pub fn parse_milli(text: &str) -> Result<i128, QuantityError> {
    let bad = || QuantityError::Invalid(text.to_string());
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    let (neg, num) = match num.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    let digits: String = format!("{int_part}{frac_part}");
    let mantissa: i128 = digits.parse().map_err(|_| bad())?;
    // value = mantissa * 10^(exp10) * 2^(exp2)
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        s if s.starts_with(['e', 'E']) => {
            exp10 += s[1..].parse::<i32>().map_err(|_| bad())?;
        }
        _ => return Err(bad()),
    }
    exp10 += 3; // milli-units
    let mut v = mantissa.checked_mul(1i128 << exp2).ok_or_else(bad)?;
    if exp10 >= 0 {
        v = v
            .checked_mul(10i128.checked_pow(exp10 as u32).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    } else {
        let d = 10i128.checked_pow((-exp10) as u32).ok_or_else(bad)?;
        v = (v + d - 1) / d;
    }
    Ok(if neg { -v } else { v })
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
        assert_eq!(parse_value_milli(&serde_json::json!(8)).unwrap(), 8000);
    }
}
