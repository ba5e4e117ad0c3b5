//! Time as data: milliseconds on whatever clock the caller runs (virtual in the simulator, wall
//! in the Kubernetes adapter). The pure core never reads a clock; every time it needs comes in
//! as an argument.

use std::fmt;
use std::ops::{Add, Sub};

use serde::{Deserialize, Serialize};

/// An instant, in milliseconds since the caller's epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Time(pub u64);

/// A length of time, in milliseconds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Span(pub u64);

impl Time {
    /// The epoch.
    pub const ZERO: Time = Time(0);

    /// From seconds (as a trace writes them), rounded to the nearest millisecond; negative and
    /// non-finite inputs are clamped to zero, so validate before calling where that matters.
    pub fn from_secs_f64(secs: f64) -> Time {
        Time(secs_to_ms(secs))
    }

    /// In seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Span {
        Span(self.0.saturating_sub(earlier.0))
    }
}

impl Span {
    /// From seconds, rounded to the nearest millisecond (clamped at zero).
    pub fn from_secs_f64(secs: f64) -> Span {
        Span(secs_to_ms(secs))
    }

    /// In seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

fn secs_to_ms(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        (secs * 1000.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

impl Add<Span> for Time {
    type Output = Time;
    fn add(self, rhs: Span) -> Time {
        Time(self.0.saturating_add(rhs.0))
    }
}

impl Sub<Span> for Time {
    type Output = Time;
    fn sub(self, rhs: Span) -> Time {
        Time(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}
/// Parses a duration as annotations and manifests write it (`phalanx.dev/duration`): `600`
/// (seconds), `90s`, `10m`, `2h`, `1d`, as seconds; `None` for anything else, negative or not
/// finite.
pub fn parse_duration(t: &str) -> Option<f64> {
    let t = t.trim();
    let (num, mult) = match t.chars().last()? {
        's' => (&t[..t.len() - 1], 1.0),
        'm' => (&t[..t.len() - 1], 60.0),
        'h' => (&t[..t.len() - 1], 3600.0),
        'd' => (&t[..t.len() - 1], 86400.0),
        _ => (t, 1.0),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v * mult)
}
