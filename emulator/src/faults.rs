//! Fault injection: per-verb error rates and latency, 429 throttling, dropped watch connections
//! and forced 410 Gone, changeable at runtime through `PUT /emulator/faults`.
//!
//! Reliability tests turn these on to check that a client retries, re-lists and re-watches the
//! way it must against a real, imperfect API server.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::meta::splitmix64;
use crate::status::ApiError;

/// A fault specification that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// `VERB=VALUE` expected.
    #[error("expected VERB=VALUE, got {0:?}")]
    Syntax(String),
}

/// What to inject. Verbs are the Kubernetes ones (`get`, `list`, `watch`, `create`, `update`,
/// `patch`, `delete`, `deletecollection`) plus `bind` and `evict` for those subresources, and `*`
/// for every verb; the most specific entry wins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FaultConfig {
    /// Probability, per verb, that a request fails with 500 InternalError.
    pub error_rate: BTreeMap<String, f64>,
    /// Added latency in milliseconds, per verb.
    pub latency_ms: BTreeMap<String, u64>,
    /// Probability that any request is throttled with 429 TooManyRequests (Retry-After: 1).
    pub throttle_rate: f64,
    /// Close every watch after this many milliseconds (each one jittered to 50-100%).
    pub watch_drop_after_ms: Option<u64>,
    /// Probability that a watch from a resourceVersion is answered with 410 Gone.
    pub watch_gone_rate: f64,
}

/// Parses `VERB=VALUE` into a map entry.
pub fn parse_verb_value<T: std::str::FromStr>(s: &str) -> Result<(String, T), FaultError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| FaultError::Syntax(s.to_string()))?;
    let v = v
        .trim()
        .parse()
        .map_err(|_| FaultError::Syntax(s.to_string()))?;
    Ok((k.trim().to_string(), v))
}

/// The live fault injector shared by all requests.
#[derive(Debug)]
pub struct Faults {
    cfg: RwLock<FaultConfig>,
    dice: AtomicU64,
    drop_all: watch::Sender<u64>,
}

fn lookup<T: Copy>(map: &BTreeMap<String, T>, verbs: &[&str]) -> Option<T> {
    verbs
        .iter()
        .chain(std::iter::once(&"*"))
        .find_map(|v| map.get(*v).copied())
}

impl Faults {
    /// A fault injector starting with `cfg`.
    pub fn new(cfg: FaultConfig) -> Self {
        Self {
            cfg: RwLock::new(cfg),
            dice: AtomicU64::new(0x5eed),
            drop_all: watch::channel(0).0,
        }
    }

    /// The current configuration.
    pub fn config(&self) -> FaultConfig {
        self.cfg.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the configuration.
    pub fn set_config(&self, cfg: FaultConfig) {
        *self.cfg.write().unwrap_or_else(|e| e.into_inner()) = cfg;
    }

    /// A uniform number in [0, 1).
    pub fn uniform(&self) -> f64 {
        let x = splitmix64(self.dice.fetch_add(1, Ordering::Relaxed));
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn roll(&self, p: f64) -> bool {
        p > 0.0 && self.uniform() < p
    }

    /// Decides a request's fate: a delay to add, and an error to return instead of serving it.
    /// `verbs` are the specific verb first (`bind`), then the general one (`create`).
    pub fn before(&self, verbs: &[&str]) -> (Option<Duration>, Option<ApiError>) {
        let cfg = self.cfg.read().unwrap_or_else(|e| e.into_inner());
        let delay = lookup(&cfg.latency_ms, verbs)
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let err = if self.roll(cfg.throttle_rate) {
            Some(ApiError::TooManyRequests)
        } else if self.roll(lookup(&cfg.error_rate, verbs).unwrap_or(0.0)) {
            Some(ApiError::Internal("injected fault".into()))
        } else {
            None
        };
        (delay, err)
    }

    /// Whether this watch start should be answered with 410 Gone.
    pub fn watch_gone(&self) -> bool {
        let p = self
            .cfg
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .watch_gone_rate;
        self.roll(p)
    }

    /// How long this watch may live before the injector drops it.
    pub fn watch_lifetime(&self) -> Option<Duration> {
        let ms = self
            .cfg
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .watch_drop_after_ms?;
        let jitter = 0.5 + self.uniform() / 2.0;
        Some(Duration::from_millis((ms as f64 * jitter) as u64))
    }

    /// Closes every open watch now.
    pub fn drop_all_watches(&self) {
        self.drop_all.send_modify(|g| *g += 1);
    }

    /// A receiver that changes when [`Faults::drop_all_watches`] is called.
    pub fn drop_signal(&self) -> watch::Receiver<u64> {
        self.drop_all.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_verb_wins_and_rates_hold_roughly() {
        let mut cfg = FaultConfig::default();
        cfg.error_rate.insert("*".into(), 0.0);
        cfg.error_rate.insert("bind".into(), 1.0);
        cfg.latency_ms.insert("create".into(), 5);
        let f = Faults::new(cfg);
        let (d, e) = f.before(&["bind", "create"]);
        assert_eq!(d, Some(Duration::from_millis(5)));
        assert!(matches!(e, Some(ApiError::Internal(_))));
        assert!(f.before(&["get"]).1.is_none());
        f.set_config(FaultConfig {
            throttle_rate: 0.25,
            ..FaultConfig::default()
        });
        let n = (0..10_000)
            .filter(|_| f.before(&["get"]).1.is_some())
            .count();
        assert!((2000..3000).contains(&n), "{n}");
        assert_eq!(
            parse_verb_value::<f64>("get=0.5").unwrap(),
            ("get".into(), 0.5)
        );
        assert!(parse_verb_value::<f64>("get").is_err());
    }
}
