//! Fault injection: per-verb error rates and latency, 429 throttling, resourceVersion
//! conflicts on writes, dropped watch connections and forced 410 Gone, and kubelet admission
//! failures, changeable at runtime through `PUT /emulator/faults`; every fault injected is
//! counted by kind (`GET /emulator/audit` reports the counts).
//!
//! Reliability tests turn these on to check that a client retries, re-lists and re-watches the
//! way it must against a real, imperfect API server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
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
    /// Probability that an update or patch is refused with 409 Conflict ("the object has been
    /// modified"), as when another writer got there first.
    pub conflict_rate: f64,
    /// Probability that a kubelet refuses a pod bound to its node at admission
    /// (`UnexpectedAdmissionError`, as a device plugin's failed allocation gives), the pod
    /// ending `Failed`.
    pub admission_reject_rate: f64,
}

/// The kinds of fault counted, as `faults_by_kind` names them.
pub mod kind {
    /// 500 InternalError.
    pub const ERROR_500: &str = "api_error_500";
    /// 429 TooManyRequests.
    pub const THROTTLE_429: &str = "api_throttle_429";
    /// 409 Conflict on a write.
    pub const CONFLICT_409: &str = "api_conflict_409";
    /// A request held back by added latency.
    pub const LATENCY: &str = "api_latency";
    /// A watch closed by the injector.
    pub const WATCH_DROP: &str = "watch_dropped";
    /// A watch resume answered 410 Gone.
    pub const WATCH_GONE: &str = "watch_gone_410";
    /// A pod refused by its kubelet at admission.
    pub const ADMISSION: &str = "kubelet_admission_rejected";
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
    injected: Mutex<BTreeMap<&'static str, u64>>,
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
            injected: Mutex::default(),
        }
    }

    /// Counts one injected fault of `kind` (one of [`kind`]).
    pub fn count(&self, kind: &'static str) {
        *self
            .injected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.injected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
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
    /// `verbs` are the specific verb first (`bind`), then the general one (`create`);
    /// `object` is the resource and name a conflict names.
    pub fn before(
        &self,
        verbs: &[&str],
        object: (&str, &str),
    ) -> (Option<Duration>, Option<ApiError>) {
        let cfg = self.cfg.read().unwrap_or_else(|e| e.into_inner());
        let delay = lookup(&cfg.latency_ms, verbs)
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        if delay.is_some() {
            self.count(kind::LATENCY);
        }
        let write = verbs.iter().any(|v| matches!(*v, "update" | "patch"));
        let err = if self.roll(cfg.throttle_rate) {
            self.count(kind::THROTTLE_429);
            Some(ApiError::TooManyRequests)
        } else if self.roll(lookup(&cfg.error_rate, verbs).unwrap_or(0.0)) {
            self.count(kind::ERROR_500);
            Some(ApiError::Internal("injected fault".into()))
        } else if write && self.roll(cfg.conflict_rate) {
            self.count(kind::CONFLICT_409);
            Some(ApiError::Conflict {
                resource: object.0.to_string(),
                name: object.1.to_string(),
                message: "the object has been modified; please apply your changes to the latest \
                          version and try again"
                    .into(),
            })
        } else {
            None
        };
        (delay, err)
    }

    /// Rolls the configured probability `rate` picks, counting a hit as a fault of `kind`.
    fn roll_counted(&self, rate: impl Fn(&FaultConfig) -> f64, kind: &'static str) -> bool {
        let p = rate(&self.cfg.read().unwrap_or_else(|e| e.into_inner()));
        let hit = self.roll(p);
        if hit {
            self.count(kind);
        }
        hit
    }

    /// Whether a kubelet should refuse the pod it is admitting now.
    pub fn admission_rejected(&self) -> bool {
        self.roll_counted(|c| c.admission_reject_rate, kind::ADMISSION)
    }

    /// Whether this watch start should be answered with 410 Gone.
    pub fn watch_gone(&self) -> bool {
        self.roll_counted(|c| c.watch_gone_rate, kind::WATCH_GONE)
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
        let (d, e) = f.before(&["bind", "create"], ("pods", "p"));
        assert_eq!(d, Some(Duration::from_millis(5)));
        assert!(matches!(e, Some(ApiError::Internal(_))));
        assert!(f.before(&["get"], ("pods", "p")).1.is_none());
        f.set_config(FaultConfig {
            throttle_rate: 0.25,
            ..FaultConfig::default()
        });
        let n = (0..10_000)
            .filter(|_| f.before(&["get"], ("pods", "p")).1.is_some())
            .count();
        assert!((2000..3000).contains(&n), "{n}");
        assert_eq!(f.injected()[kind::THROTTLE_429], n as u64);
        assert_eq!(f.injected()[kind::ERROR_500], 1);
        f.set_config(FaultConfig {
            conflict_rate: 1.0,
            ..FaultConfig::default()
        });
        assert!(f.before(&["get"], ("pods", "p")).1.is_none());
        assert!(matches!(
            f.before(&["patch"], ("pods", "p")).1,
            Some(ApiError::Conflict { .. })
        ));
        assert_eq!(
            parse_verb_value::<f64>("get=0.5").unwrap(),
            ("get".into(), 0.5)
        );
        assert!(parse_verb_value::<f64>("get").is_err());
    }
}
