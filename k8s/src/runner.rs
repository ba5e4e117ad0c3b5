//! The engine thread: the [`Core`] (and so the [`phalanx_scheduler::Engine`]) lives on one
//! thread, fed by a channel. It applies whatever arrived (waiting `batchWindowMs` for more after
//! the first change, so a burst is one batch), then runs a cycle; with nothing arriving it still
//! cycles every `cyclePeriodMs`. It cycles only once every watcher has delivered its first
//! complete list (so the initial state is applied as one batch before the first cycle), only
//! while no watch is broken and not yet relisted ([`Freshness`]: a replica back from a partition,
//! or one whose watch expired, must not bind from a view that misses what happened meanwhile),
//! and only while this replica leads. When the engine says time alone brings it work sooner
//! ([`phalanx_scheduler::CycleReport::wake_at`]: a gang's backoff after a failed bind ends, a
//! blocked gang's reclaim delay runs out), the next cycle comes then instead. After each round it
//! publishes a read-only [`Published`] view.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use phalanx_model::Time;

use crate::core::{Actions, Core, Published};
use crate::leader::LeaderState;
use crate::metrics::Metrics;
use crate::watch::{KINDS, Msg};

/// What the engine thread shares with the async side.
pub struct Shared {
    /// The last published view.
    pub published: RwLock<Arc<Published>>,
    /// Every watcher has delivered its first list and it has been applied.
    pub synced: std::sync::atomic::AtomicBool,
    /// Leadership (the bind fence).
    pub leader: LeaderState,
    /// Metrics.
    pub metrics: Metrics,
}

impl Shared {
    /// Shared state for a replica.
    pub fn new(leader: LeaderState) -> Self {
        Shared {
            published: RwLock::new(Arc::new(Published::default())),
            synced: Default::default(),
            leader,
            metrics: Metrics::new(),
        }
    }

    /// The last published view.
    pub fn view(&self) -> Arc<Published> {
        self.published
            .read()
            .map(|p| Arc::clone(&p))
            .unwrap_or_default()
    }

    /// Whether the initial sync is done.
    pub fn is_synced(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The wall clock as engine time (milliseconds since the epoch), the clock pod creation times
/// are in.
pub fn now() -> Time {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Time(ms)
}

/// The published view is rebuilt at most this often while changes keep arriving: building it
/// walks every job and pod (tens of milliseconds at 150,000 pods), and its readers (the status
/// writer every `statusIntervalMs`, metrics, `/debug`) poll it far less often than the engine
/// cycles under load. A change is still published within this delay.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Timing of the engine thread.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Cycle at least this often.
    pub period: Duration,
    /// After a change, wait this long for more.
    pub window: Duration,
}

/// Which watched kinds the engine's view holds whole and current: each must have been listed,
/// and none may have a watch that broke since its latest list. Acting on a view a broken watch
/// left behind binds pods that are already bound elsewhere, or have even finished, and counts
/// queues wrong.
#[derive(Debug, Default)]
pub struct Freshness {
    listed: std::collections::BTreeSet<&'static str>,
    stale: std::collections::BTreeSet<&'static str>,
}

impl Freshness {
    /// A complete list of `kind` was applied.
    pub fn listed(&mut self, kind: &'static str) {
        self.listed.insert(kind);
        if self.stale.remove(kind) {
            tracing::info!(kind, "watch relisted");
        }
    }

    /// The watch of `kind` broke; its view may miss changes until it is listed again.
    pub fn stale(&mut self, kind: &'static str) {
        if self.stale.insert(kind) {
            tracing::info!(kind, "watch broke; no cycle until it is relisted");
        }
    }

    /// Every kind has been listed at least once (the replica is ready).
    pub fn ready(&self) -> bool {
        self.listed.len() >= KINDS
    }

    /// Every kind is listed and no watch is broken: cycles may run.
    pub fn current(&self) -> bool {
        self.ready() && self.stale.is_empty()
    }

    /// Kinds whose watch is broken.
    pub fn stale_kinds(&self) -> usize {
        self.stale.len()
    }
}

/// Runs the engine thread until every sender of `rx` is gone or `out` is closed.
pub fn run(
    mut core: Core,
    rx: Receiver<Msg>,
    out: tokio::sync::mpsc::UnboundedSender<Actions>,
    shared: Arc<Shared>,
    timing: Timing,
) {
    let mut fresh = Freshness::default();
    let mut next_cycle = Instant::now();
    let mut last_publish: Option<Instant> = None;
    let mut unpublished = false;
    loop {
        let mut wait = next_cycle.saturating_duration_since(Instant::now());
        if unpublished && let Some(at) = last_publish {
            wait = wait.min((at + PUBLISH_EVERY).saturating_duration_since(Instant::now()));
        }
        let mut changed = false;
        match rx.recv_timeout(wait) {
            Ok(msg) => {
                changed = true;
                handle(&mut core, msg, &mut fresh, &shared);
                let until = Instant::now() + timing.window;
                // Drain the burst, bounded so a flood cannot postpone cycles for ever.
                for _ in 0..200_000 {
                    let left = until.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(msg) => handle(&mut core, msg, &mut fresh, &shared),
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Woken early only to publish a deferred view: no cycle is due yet.
        let publish_only = !changed && Instant::now() < next_cycle;
        let ready = fresh.ready();
        shared
            .metrics
            .leader
            .set(i64::from(shared.leader.is_leader()));
        shared.metrics.watches_stale.set(fresh.stale_kinds() as i64);
        let mut cycled = false;
        if !publish_only && fresh.current() && shared.leader.is_leader() {
            cycled = true;
            let started = Instant::now();
            let cycle_time = now();
            let actions = core.cycle(cycle_time);
            let wake_in = actions
                .report
                .wake_at
                .map(|t| Duration::from_millis(t.0.saturating_sub(cycle_time.0).max(1)));
            let m = &shared.metrics;
            let took = started.elapsed().as_secs_f64();
            m.cycle_duration.observe(took);
            m.cycle_latency_ms.observe(took * 1000.0);
            let r = &actions.report;
            let failed: u64 = r.unschedulable.values().map(|&v| u64::from(v)).sum();
            m.gang_attempts
                .with_label_values(&["scheduled"])
                .inc_by(u64::from(r.jobs_placed));
            m.gang_attempts
                .with_label_values(&["unschedulable"])
                .inc_by(failed);
            m.backfilled.inc_by(u64::from(r.backfilled));
            m.reservations.set(i64::from(r.reservations));
            for e in &actions.evicted {
                m.evicted(&e.queue, e.reason, e.pods);
            }
            if out.send(actions).is_err() {
                return;
            }
            // The binds are on their way; now the estimated starts may be worked out again.
            core.refresh_forecast(cycle_time);
            next_cycle = Instant::now() + timing.period;
            if let Some(wake_in) = wake_in {
                next_cycle = next_cycle.min(started + wake_in);
            }
        } else if !publish_only {
            core.flush();
            if !changed {
                next_cycle = Instant::now() + timing.period;
            }
        }
        unpublished |= changed || cycled;
        // The first publish after the initial sync is never deferred: readiness follows it.
        let first_ready = ready && !shared.is_synced();
        let due = first_ready || last_publish.is_none_or(|at| at.elapsed() >= PUBLISH_EVERY);
        if unpublished && due {
            let published = Arc::new(core.publish());
            shared.metrics.observe(&published);
            if let Ok(mut p) = shared.published.write() {
                *p = published;
            }
            last_publish = Some(Instant::now());
            unpublished = false;
        }
        if ready {
            shared
                .synced
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

fn handle(core: &mut Core, msg: Msg, fresh: &mut Freshness, shared: &Shared) {
    shared.metrics.engine_queue_depth.dec();
    match msg {
        Msg::Input(input) => core.ingest(input),
        Msg::Listed(kind) => fresh.listed(kind),
        Msg::Stale(kind) => fresh.stale(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; KINDS] = [
        "nodes",
        "pods",
        "priorityclasses",
        "podgroups.scheduling.volcano.sh",
        "podgroups.scheduling.x-k8s.io",
        "podgroups.scheduling.k8s.io",
        "queues",
    ];

    /// No cycle before every kind is listed, none while a watch is broken, and cycles again
    /// once it is relisted; readiness, once reached, stays.
    #[test]
    fn cycles_wait_for_every_list_and_stop_while_a_watch_is_broken() {
        let mut f = Freshness::default();
        for kind in &ALL[..KINDS - 1] {
            f.listed(kind);
        }
        assert!(!f.ready() && !f.current());
        f.listed(ALL[KINDS - 1]);
        assert!(f.ready() && f.current());
        f.stale("pods");
        f.stale("pods");
        f.stale("nodes");
        assert!(f.ready() && !f.current());
        assert_eq!(f.stale_kinds(), 2);
        f.listed("pods");
        assert!(!f.current(), "nodes is still broken");
        f.listed("nodes");
        assert!(f.current());
        assert_eq!(f.stale_kinds(), 0);
    }
}
