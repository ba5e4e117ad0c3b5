//! How the engine is configured: [`EngineConfig`], its defaults, and the bind backoff rule.

use phalanx_model::Span;
use serde::{Deserialize, Serialize};

use crate::gang::ScorePolicy;

/// How the engine places pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How to choose among nodes that fit.
    pub score: ScorePolicy,
    /// Jobs attempted per cycle at most; the rest wait for the next cycle.
    pub max_attempts_per_cycle: usize,
    /// How long a job waits for a dependency that does not exist before it fails with
    /// `DependencyMissing` (milliseconds; default 10 minutes).
    pub dependency_timeout: Span,
    /// Within a queue and priority, jobs with a longer chain of dependent work behind them go
    /// first (default on).
    pub critical_path: bool,
    /// Blocked gangs that may hold nodes at once while they wait for room (see
    /// [`crate::reserve`]); at most one per queue. 0 turns reservation and backfill off.
    pub max_reservations: usize,
    /// Whether a queue below its deserved share may evict whole gangs of queues above theirs
    /// (default on). In-queue preemption by priority is set per queue.
    pub reclaim: bool,
    /// After a job of queue A is evicted for queue B, how long A may not reclaim from B
    /// (milliseconds; default 5 minutes): no eviction ping-pong while deserved shares move.
    pub reclaim_cooldown: Span,
    /// How long a gang must have been blocked before it may evict others (milliseconds;
    /// default 30 s, as YuniKorn's `preemption.delay`): room that frees on its own soon is
    /// cheaper than running work thrown away.
    pub reclaim_delay: Span,
    /// How long a gang undone by a failed bind waits before it is tried again (milliseconds;
    /// default 1 s, as kube-scheduler's `podInitialBackoffSeconds`). The wait doubles with each
    /// failed bind in a row, up to `bind_backoff_max`; 0 tries it again at the next cycle.
    pub bind_backoff_initial: Span,
    /// The longest wait after failed binds (milliseconds; default 10 s, as kube-scheduler's
    /// `podMaxBackoffSeconds`).
    pub bind_backoff_max: Span,
    /// How long a gang may stay partly bound before it fails (milliseconds; default 30 s).
    /// Kubernetes cannot unbind a pod: bound pods that no controller recreates (pods without
    /// an owner) stay bound when their gang is undone, and so do pods adopted at start whose
    /// controller has not deleted them yet. Such a gang is retried as after a failed bind; if
    /// it is still below its minimum once this has passed, the job fails and its bound pods are
    /// evicted. All-or-nothing is broken for at most this plus `bind_backoff_max`.
    pub partial_gang_timeout: Span,
    /// Which parked gangs a change of the cluster retries (default `indexed`); see
    /// [`WakeUps`].
    pub wake_ups: WakeUps,
}

/// Which parked gangs a change of the cluster retries.
///
/// A forming gang that missed because the nodes have room for fewer pods of one of its shapes
/// than it needs is put *asleep* on that shape, when nothing else could place it before then:
/// it holds no room and could not have room held for it (its queue has a blocked gang holding
/// room already, or no plan exists), it could not borrow room held for others (backfill), and
/// its queue is not strict-fifo. It is retried only once the count of room for its shape
/// reaches its need, or nodes, queues or held room change, one of its pods changes, or its
/// reclaim delay runs out. Its reason stays that of its last try, as a pod's condition does
/// in kube-scheduler's unschedulable pool (QueueingHints, Kubernetes v1.29).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WakeUps {
    /// Asleep gangs are found by shape and need: a change wakes only those it can help.
    #[default]
    Indexed,
    /// The same rule, every asleep gang checked one by one: the reference the index is tested
    /// against (same decisions), slower.
    Scan,
    /// Nothing sleeps: every parked job is retried after any change (the engine before
    /// incremental wake-ups; reasons re-diagnosed on every retry).
    Always,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            score: ScorePolicy::Binpack,
            max_attempts_per_cycle: 10_000,
            dependency_timeout: Span(10 * 60 * 1000),
            critical_path: true,
            max_reservations: 16,
            reclaim: true,
            reclaim_cooldown: Span(5 * 60 * 1000),
            reclaim_delay: Span(30 * 1000),
            bind_backoff_initial: Span(1000),
            bind_backoff_max: Span(10 * 1000),
            partial_gang_timeout: Span(30 * 1000),
            wake_ups: WakeUps::default(),
        }
    }
}

impl EngineConfig {
    /// The wait after `failures` failed binds in a row: the initial backoff, doubled for each
    /// failure after the first, at most the maximum.
    pub fn bind_backoff(&self, failures: u32) -> Span {
        let doublings = failures.saturating_sub(1).min(63);
        Span(
            self.bind_backoff_initial
                .0
                .saturating_mul(1u64 << doublings)
                .min(self.bind_backoff_max.0),
        )
    }
}
