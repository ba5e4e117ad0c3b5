//! Kubernetes resource quantities: parse `500m`, `1.5`, `64Gi`, `100M`, `1e3`, `2k` exactly as
//! Kubernetes does, and round to whole units (bytes, millicores) the way `Quantity.Value()` and
//! `Quantity.MilliValue()` do: fractions round *up*, so a request is never understated.
//!
//! Arithmetic is exact (decimal mantissa, decimal and binary exponents, 128-bit intermediates);
//! anything that does not fit an `i64` in the target unit is an [`QuantityError::Overflow`], never
//! a wrap or a saturation.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string is empty (or only white space).
    #[error("empty quantity")]
    Empty,
    /// The string does not follow the Kubernetes quantity grammar.
    #[error("invalid quantity {input:?}: {why}")]
    Invalid {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Resource requests and capacities cannot be negative.
    #[error("negative quantity {0:?}: requests and capacities must be >= 0")]
    Negative(String),
    /// The value does not fit a signed 64-bit integer in its unit.
    #[error("quantity {0:?} is too large")]
    Overflow(String),
}

/// A parsed quantity: `mantissa × 10^exp10 × 2^exp2`, exactly as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: u128,
    exp10: i32,
    exp2: u32,
}

/// Significant digits kept exactly; Kubernetes itself keeps far fewer (its inf.Dec is capped).
const MAX_DIGITS: usize = 36;

impl Quantity {
    /// Parses a Kubernetes quantity such as `500m`, `1.5`, `64Gi`, `100M`, `1e3` or `2k`.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(QuantityError::Empty);
        }
        let invalid = |why| QuantityError::Invalid {
            input: input.to_string(),
            why,
        };
        let (negative, body) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, suffix) = body.split_at(num_end);
        if number.is_empty() || number == "." {
            return Err(invalid("expected a number"));
        }
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => {
                if f.contains('.') {
                    return Err(invalid("more than one decimal point"));
                }
                (i, f)
            }
            None => (number, ""),
        };
        let frac_part = frac_part.trim_end_matches('0');
        let digits: String = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > MAX_DIGITS {
            return Err(invalid("too many significant digits"));
        }
        let mantissa: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| invalid("expected a number"))?
        };
        let mut exp10 = -(frac_part.len() as i32);
        let mut exp2 = 0u32;
        match suffix {
            "" => {}
            "Ki" => exp2 = 10,
            "Mi" => exp2 = 20,
            "Gi" => exp2 = 30,
            "Ti" => exp2 = 40,
            "Pi" => exp2 = 50,
            "Ei" => exp2 = 60,
            "n" => exp10 -= 9,
            "u" => exp10 -= 6,
            "m" => exp10 -= 3,
            "k" => exp10 += 3,
            "M" => exp10 += 6,
            "G" => exp10 += 9,
            "T" => exp10 += 12,
            "P" => exp10 += 15,
            "E" => exp10 += 18,
            s if s.starts_with(['e', 'E']) => {
                let exp = &s[1..];
                let unsigned = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid("malformed exponent"));
                }
                let e: i32 = exp.parse().map_err(|_| invalid("exponent out of range"))?;
                if e.abs() > 1000 {
                    return Err(invalid("exponent out of range"));
                }
                exp10 += e;
            }
            _ => return Err(invalid("unknown suffix")),
        }
        if negative && mantissa != 0 {
            return Err(QuantityError::Negative(input.to_string()));
        }
        Ok(Quantity {
            mantissa,
            exp10,
            exp2,
        })
    }

    /// The quantity in whole units, rounded up (`Quantity.Value()`): bytes for memory, a count
    /// for pods and devices.
    pub fn value(&self) -> Result<i64, QuantityError> {
        self.scaled(0)
    }

    /// The quantity in thousandths, rounded up (`Quantity.MilliValue()`): millicores for cpu.
    pub fn milli_value(&self) -> Result<i64, QuantityError> {
        self.scaled(3)
    }

    fn scaled(&self, extra_exp10: i32) -> Result<i64, QuantityError> {
        if self.mantissa == 0 {
            return Ok(0);
        }
        let overflow = || QuantityError::Overflow(self.to_string());
        let base = self
            .mantissa
            .checked_mul(1u128.checked_shl(self.exp2).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        let exp10 = self.exp10 + extra_exp10;
        let value = if exp10 >= 0 {
            let scale = 10u128.checked_pow(exp10 as u32).ok_or_else(overflow)?;
            base.checked_mul(scale).ok_or_else(overflow)?
        } else {
            match 10u128.checked_pow((-exp10) as u32) {
                // Any positive amount smaller than one unit rounds up to one.
                None => 1,
                Some(div) => base.div_ceil(div),
            }
        };
        i64::try_from(value).map_err(|_| overflow())
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mantissa)?;
        if self.exp10 != 0 {
            write!(f, "e{}", self.exp10)?;
        }
        if self.exp2 != 0 {
            write!(f, "*2^{}", self.exp2)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    /// Accepts the Kubernetes string form (`"500m"`) and plain JSON numbers (`2`, `0.5`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes quantity such as \"500m\", \"64Gi\" or 2")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity {
                    mantissa: v as u128,
                    exp10: 0,
                    exp2: 0,
                })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                if v < 0 {
                    return Err(E::custom(QuantityError::Negative(v.to_string())));
                }
                self.visit_u64(v as u64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                if !v.is_finite() {
                    return Err(E::custom("quantity must be a finite number"));
                }
                // Go through the shortest decimal text so 0.1 means one tenth, not its binary
                // approximation.
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milli(s: &str) -> i64 {
        Quantity::parse(s).unwrap().milli_value().unwrap()
    }
    fn value(s: &str) -> i64 {
        Quantity::parse(s).unwrap().value().unwrap()
    }

    #[test]
    fn parses_the_forms_kubernetes_accepts() {
        assert_eq!(milli("500m"), 500);
        assert_eq!(milli("1.5"), 1500);
        assert_eq!(milli("2"), 2000);
        assert_eq!(milli("0.1"), 100);
        assert_eq!(value("64Gi"), 64 << 30);
        assert_eq!(value("100M"), 100_000_000);
        assert_eq!(value("1e3"), 1000);
        assert_eq!(value("2k"), 2000);
        assert_eq!(value("1.5Gi"), 3 << 29);
        assert_eq!(value("+7"), 7);
        assert_eq!(value("12E-1"), 2, "1.2 rounds up to 2");
        assert_eq!(value("0"), 0);
        assert_eq!(value("-0"), 0);
        assert_eq!(value(".5"), 1);
        assert_eq!(value("5."), 5);
    }

    #[test]
    fn rounds_up_like_kubernetes() {
        // resource.MustParse("0.5m").MilliValue() == 1; ("1.1").Value() == 2.
        assert_eq!(milli("0.5m"), 1);
        assert_eq!(milli("1n"), 1);
        assert_eq!(value("1.1"), 2);
        assert_eq!(value("1m"), 1);
        assert_eq!(value("1e-900"), 1);
    }

    #[test]
    fn rejects_garbage_with_a_typed_error() {
        assert_eq!(Quantity::parse(""), Err(QuantityError::Empty));
        assert_eq!(Quantity::parse("  "), Err(QuantityError::Empty));
        assert!(matches!(
            Quantity::parse("12x"),
            Err(QuantityError::Invalid { .. })
        ));
        assert!(matches!(
            Quantity::parse("1.2.3"),
            Err(QuantityError::Invalid { .. })
        ));
        assert!(matches!(
            Quantity::parse("Gi"),
            Err(QuantityError::Invalid { .. })
        ));
        assert!(matches!(
            Quantity::parse("1e"),
            Err(QuantityError::Invalid { .. })
        ));
        assert!(matches!(
            Quantity::parse("1gi"),
            Err(QuantityError::Invalid { .. })
        ));
        assert_eq!(
            Quantity::parse("-1"),
            Err(QuantityError::Negative("-1".into()))
        );
        assert!(matches!(
            Quantity::parse("10Ei").unwrap().value(),
            Err(QuantityError::Overflow(_))
        ));
        assert!(matches!(
            Quantity::parse("9223372036854775808").unwrap().value(),
            Err(QuantityError::Overflow(_))
        ));
        assert!(matches!(
            Quantity::parse("1e30").unwrap().milli_value(),
            Err(QuantityError::Overflow(_))
        ));
        assert_eq!(value("9223372036854775807"), i64::MAX);
    }

    #[test]
    fn deserializes_strings_and_numbers() {
        let q: Quantity = serde_json::from_str("\"500m\"").unwrap();
        assert_eq!(q.milli_value().unwrap(), 500);
        let q: Quantity = serde_json::from_str("2").unwrap();
        assert_eq!(q.milli_value().unwrap(), 2000);
        let q: Quantity = serde_json::from_str("0.1").unwrap();
        assert_eq!(q.milli_value().unwrap(), 100);
        assert!(serde_json::from_str::<Quantity>("-3").is_err());
        assert!(serde_json::from_str::<Quantity>("\"12x\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn integers_and_binary_suffixes_are_exact(n in 0i64..1_000_000, s in 0usize..4) {
            let (suffix, shift) = [("", 0), ("Ki", 10), ("Mi", 20), ("Gi", 30)][s];
            proptest::prop_assert_eq!(value(&format!("{n}{suffix}")), n << shift);
            proptest::prop_assert_eq!(milli(&format!("{n}m")), n);
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            if let Ok(q) = Quantity::parse(&s) {
                let _ = q.value();
                let _ = q.milli_value();
            }
        }
    }
}
