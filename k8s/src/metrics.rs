//! Prometheus metrics. A Volcano name is kept only where Phalanx's meaning is Volcano's
//! (`pkg/scheduler/metrics/metrics.go` and `queue.go`, volcano-sh/volcano master of August
//! 2026), with Volcano's label values: `queue_name` is the Queue object's name. Everything else
//! is under `phalanx_`, where a `queue` label is the queue's dotted path. One registry per
//! [`Metrics`] (no global state), so tests can run several schedulers in one process.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `volcano_e2e_scheduling_latency_milliseconds` | histogram | | one scheduling cycle (Volcano: one session), milliseconds |
//! | `volcano_queue_pod_group_pending_count` | gauge | `queue_name` | gangs of the queue not running yet |
//! | `volcano_queue_pod_group_running_count` | gauge | `queue_name` | running gangs of the queue |
//! | `volcano_queue_allocated_milli_cpu`, `volcano_queue_allocated_memory_bytes` | gauge | `queue_name` | allocated to the queue |
//! | `volcano_queue_deserved_milli_cpu`, `volcano_queue_deserved_memory_bytes` | gauge | `queue_name` | the queue's deserved share |
//! | `volcano_queue_capacity_milli_cpu`, `volcano_queue_capacity_memory_bytes` | gauge | `queue_name` | the queue's capability (absent: unlimited) |
//! | `phalanx_queue_allocated`, `phalanx_queue_deserved`, `phalanx_queue_capability`, `phalanx_queue_guarantee` | gauge | `queue`, `resource` | every resource (cpu in millicores, memory in bytes, others in units) |
//! | `phalanx_queue_jobs` | gauge | `queue`, `state` = pending, running | gangs of the queue |
//! | `phalanx_cycle_duration_seconds` | histogram | | one engine cycle, seconds |
//! | `phalanx_gang_attempts_total` | counter | `result` = scheduled, unschedulable | gangs tried, and what came of it |
//! | `phalanx_gang_scheduling_latency_seconds` | histogram | | from a gang handed to the engine whole (its `minMember` pods exist, not gated) to every pod of it bound |
//! | `phalanx_pod_scheduling_latency_seconds` | histogram | | from a pod's creation to its successful bind |
//! | `phalanx_pending_jobs` | gauge | `reason` | jobs not running, by the reason they wait |
//! | `phalanx_oldest_pending_job_seconds` | gauge | | how long the job waiting longest has waited since its first pod was created (0: none waits) |
//! | `phalanx_evicted_pods_total` | counter | `queue`, `reason` = reclaim, preempt, gang_bind_failed, gang_broken, job_failed | pods evicted (or deleted, for an undone gang) |
//! | `phalanx_reclaims_total` | counter | `queue` | gangs of the queue evicted by another queue reclaiming its share |
//! | `phalanx_preemptions_total` | counter | `queue` | gangs of the queue preempted by a higher-priority gang of the same queue |
//! | `phalanx_backfilled_jobs_total` | counter | | jobs placed in room held for a blocked gang they finish before |
//! | `phalanx_reservations` | gauge | | blocked gangs holding room |
//! | `phalanx_engine_queue_depth` | gauge | | changes waiting for the engine thread |
//! | `phalanx_leader` | gauge | | 1 while this replica holds the lease and binds |
//! | `phalanx_watches_stale` | gauge | | watched kinds whose watch broke and is not relisted yet (no cycle runs while it is above 0) |
//! | `phalanx_bind_duration_seconds` | histogram | | one `pods/binding` request, retries included |
//! | `phalanx_bind_failures_total` | counter | `reason` | bindings that failed for good |
//! | `phalanx_pods_bound_total` | counter | | pods bound by this replica |

use std::collections::BTreeMap;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::core::{Published, queue_object};

/// The eviction reasons the engine gives (`EvictReason::as_str`).
const EVICT_REASONS: [&str; 5] = [
    "reclaim",
    "preempt",
    "gang_bind_failed",
    "gang_broken",
    "job_failed",
];

/// The scheduler's metrics and their registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// One cycle, milliseconds (Volcano's session latency).
    pub cycle_latency_ms: Histogram,
    /// One cycle, seconds.
    pub cycle_duration: Histogram,
    /// Gangs tried, by result.
    pub gang_attempts: IntCounterVec,
    /// Gang handed to the engine whole, to every pod bound.
    pub gang_latency: Histogram,
    /// Pod creation to bind.
    pub pod_latency: Histogram,
    /// One binding request.
    pub bind_duration: Histogram,
    /// Bindings failed for good, by reason.
    pub bind_failures: IntCounterVec,
    /// Pods bound.
    pub pods_bound: IntCounter,
    /// Pods evicted, by queue and reason.
    pub evicted_pods: IntCounterVec,
    /// Gangs reclaimed, by the queue they were taken from.
    pub reclaims: IntCounterVec,
    /// Gangs preempted, by queue.
    pub preemptions: IntCounterVec,
    /// Jobs backfilled.
    pub backfilled: IntCounter,
    /// Reservations held.
    pub reservations: IntGauge,
    /// Changes waiting for the engine thread.
    pub engine_queue_depth: IntGauge,
    /// 1 while leading.
    pub leader: IntGauge,
    /// Watched kinds whose watch broke and is not relisted yet.
    pub watches_stale: IntGauge,
    /// Jobs not running, by reason.
    pending_jobs: IntGaugeVec,
    /// The longest wait of a job not running.
    oldest_pending: prometheus::Gauge,
    /// Gangs per queue and state.
    queue_jobs: IntGaugeVec,
    /// Volcano's queue gauges (`queue_name` label), by metric name.
    by_queue: BTreeMap<&'static str, GaugeVec>,
    /// Queue gauges per resource, by kind (`allocated`, `deserved`, `capability`, `guarantee`).
    by_resource: BTreeMap<&'static str, GaugeVec>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Only fails on a malformed name or a duplicate registration: both are bugs in this file.
    r.expect("metric definitions are static and distinct")
}

const QUEUE_GAUGES: [(&str, &str); 8] = [
    (
        "volcano_queue_pod_group_pending_count",
        "Gangs of the queue not running yet",
    ),
    (
        "volcano_queue_pod_group_running_count",
        "Running gangs of the queue",
    ),
    (
        "volcano_queue_allocated_milli_cpu",
        "CPU allocated to the queue, millicores",
    ),
    (
        "volcano_queue_allocated_memory_bytes",
        "Memory allocated to the queue, bytes",
    ),
    (
        "volcano_queue_deserved_milli_cpu",
        "The queue's deserved CPU, millicores",
    ),
    (
        "volcano_queue_deserved_memory_bytes",
        "The queue's deserved memory, bytes",
    ),
    (
        "volcano_queue_capacity_milli_cpu",
        "The queue's CPU capability, millicores",
    ),
    (
        "volcano_queue_capacity_memory_bytes",
        "The queue's memory capability, bytes",
    ),
];

/// Registers `c` and hands it back.
fn registered<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    must(registry.register(Box::new(c.clone())));
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = must(Histogram::with_opts(
        HistogramOpts::new(name, help).buckets(buckets),
    ));
    registered(registry, h)
}

fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(
        registry,
        must(IntCounterVec::new(Opts::new(name, help), labels)),
    )
}

fn exponential(start: f64, factor: f64, count: usize) -> Vec<f64> {
    must(prometheus::exponential_buckets(start, factor, count))
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let r = Registry::new();
        let cycle_latency_ms = histogram(
            &r,
            "volcano_e2e_scheduling_latency_milliseconds",
            "One scheduling cycle, milliseconds (Volcano: one session)",
            exponential(5.0, 2.0, 10),
        );
        let cycle_duration = histogram(
            &r,
            "phalanx_cycle_duration_seconds",
            "One engine cycle, seconds",
            exponential(0.0001, 2.0, 18),
        );
        let gang_attempts = counters(
            &r,
            "phalanx_gang_attempts_total",
            "Gangs tried, by result: scheduled, unschedulable",
            &["result"],
        );
        for result in ["scheduled", "unschedulable"] {
            gang_attempts.with_label_values(&[result]);
        }
        let gang_latency = histogram(
            &r,
            "phalanx_gang_scheduling_latency_seconds",
            "From a gang handed to the engine whole to every pod of it bound, seconds",
            exponential(0.01, 2.0, 18),
        );
        let pod_latency = histogram(
            &r,
            "phalanx_pod_scheduling_latency_seconds",
            "From a pod's creation to its successful bind, seconds",
            exponential(0.01, 2.0, 18),
        );
        let bind_duration = histogram(
            &r,
            "phalanx_bind_duration_seconds",
            "One pods/binding request, retries included",
            exponential(0.0005, 2.0, 16),
        );
        let bind_failures = counters(
            &r,
            "phalanx_bind_failures_total",
            "Bindings that failed for good, by reason",
            &["reason"],
        );
        let pods_bound = registered(
            &r,
            must(IntCounter::new(
                "phalanx_pods_bound_total",
                "Pods bound by this replica",
            )),
        );
        let evicted_pods = counters(
            &r,
            "phalanx_evicted_pods_total",
            "Pods evicted (or deleted, for an undone gang), by queue and reason",
            &["queue", "reason"],
        );
        let reclaims = counters(
            &r,
            "phalanx_reclaims_total",
            "Gangs of the queue evicted by another queue reclaiming its share",
            &["queue"],
        );
        let preemptions = counters(
            &r,
            "phalanx_preemptions_total",
            "Gangs of the queue preempted by a higher-priority gang of the same queue",
            &["queue"],
        );
        let backfilled = registered(
            &r,
            must(IntCounter::new(
                "phalanx_backfilled_jobs_total",
                "Jobs placed in room held for a blocked gang they finish before",
            )),
        );
        let gauge = |name: &str, help: &str| registered(&r, must(IntGauge::new(name, help)));
        let reservations = gauge("phalanx_reservations", "Blocked gangs holding room");
        let engine_queue_depth = gauge(
            "phalanx_engine_queue_depth",
            "Changes waiting for the engine thread",
        );
        let leader = gauge(
            "phalanx_leader",
            "1 while this replica holds the lease and binds",
        );
        let watches_stale = gauge(
            "phalanx_watches_stale",
            "Watched kinds whose watch broke and is not relisted yet (no cycle runs meanwhile)",
        );
        let pending_jobs = registered(
            &r,
            must(IntGaugeVec::new(
                Opts::new(
                    "phalanx_pending_jobs",
                    "Jobs not running, by the reason they wait",
                ),
                &["reason"],
            )),
        );
        let oldest_pending = registered(
            &r,
            must(prometheus::Gauge::new(
                "phalanx_oldest_pending_job_seconds",
                "How long the job waiting longest has waited since its first pod was created",
            )),
        );
        let queue_jobs = registered(
            &r,
            must(IntGaugeVec::new(
                Opts::new(
                    "phalanx_queue_jobs",
                    "Gangs of the queue, by state: pending, running",
                ),
                &["queue", "state"],
            )),
        );
        let mut by_queue = BTreeMap::new();
        for (name, help) in QUEUE_GAUGES {
            let g = must(GaugeVec::new(Opts::new(name, help), &["queue_name"]));
            by_queue.insert(name, registered(&r, g));
        }
        let mut by_resource = BTreeMap::new();
        for kind in ["allocated", "deserved", "capability", "guarantee"] {
            let g = must(GaugeVec::new(
                Opts::new(
                    format!("phalanx_queue_{kind}"),
                    format!(
                        "The queue's {kind} by resource (cpu in millicores, memory in bytes, others in units)"
                    ),
                ),
                &["queue", "resource"],
            ));
            by_resource.insert(kind, registered(&r, g));
        }
        Metrics {
            registry: r,
            cycle_latency_ms,
            cycle_duration,
            gang_attempts,
            gang_latency,
            pod_latency,
            bind_duration,
            bind_failures,
            pods_bound,
            evicted_pods,
            reclaims,
            preemptions,
            backfilled,
            reservations,
            engine_queue_depth,
            leader,
            watches_stale,
            pending_jobs,
            oldest_pending,
            queue_jobs,
            by_queue,
            by_resource,
        }
    }

    /// Counts pods a cycle evicted from `queue` for `reason` (one call per gang).
    pub fn evicted(&self, queue: &str, reason: &str, pods: u32) {
        self.evicted_pods
            .with_label_values(&[queue, reason])
            .inc_by(u64::from(pods));
        match reason {
            "reclaim" => self.reclaims.with_label_values(&[queue]).inc(),
            "preempt" => self.preemptions.with_label_values(&[queue]).inc(),
            _ => {}
        }
    }

    /// Sets the gauges from what the engine thread published. Every queue's counters exist
    /// from the moment the queue does (at 0), so dashboards and alerts see them before the
    /// first eviction.
    pub fn observe(&self, p: &Published) {
        for g in self.by_queue.values().chain(self.by_resource.values()) {
            g.reset();
        }
        self.queue_jobs.reset();
        self.pending_jobs.reset();
        let mut pending: BTreeMap<&str, i64> = BTreeMap::new();
        let mut oldest: Option<f64> = None;
        for j in p.jobs.values() {
            if matches!(j.phase, "Pending" | "Inqueue") {
                let reason = j
                    .reason
                    .as_ref()
                    .map_or("none", |(label, _)| label.as_str());
                *pending.entry(reason).or_default() += 1;
                if let Some(c) = j.created {
                    oldest = Some(oldest.map_or(c, |o| o.min(c)));
                }
            }
        }
        let now = crate::runner::now().0 as f64 / 1000.0;
        self.oldest_pending
            .set(oldest.map_or(0.0, |o| (now - o).max(0.0)));
        for (reason, n) in pending {
            self.pending_jobs.with_label_values(&[reason]).set(n);
        }
        let set = |metric: &str, queue: &str, v: f64| {
            if let Some(g) = self.by_queue.get(metric) {
                g.with_label_values(&[queue]).set(v);
            }
        };
        for q in &p.queues {
            let path = q.name.as_str();
            let object = queue_object(path);
            for reason in EVICT_REASONS {
                self.evicted_pods.with_label_values(&[path, reason]);
            }
            self.reclaims.with_label_values(&[path]);
            self.preemptions.with_label_values(&[path]);
            for (state, n) in [("pending", q.pending_jobs), ("running", q.running_jobs)] {
                self.queue_jobs
                    .with_label_values(&[path, state])
                    .set(i64::from(n));
            }
            set(
                "volcano_queue_pod_group_pending_count",
                &object,
                f64::from(q.pending_jobs),
            );
            set(
                "volcano_queue_pod_group_running_count",
                &object,
                f64::from(q.running_jobs),
            );
            let put = |kind: &'static str, volcano: Option<&str>, map: &BTreeMap<String, i64>| {
                if let Some(g) = self.by_resource.get(kind) {
                    for (res, v) in map {
                        g.with_label_values(&[path, res.as_str()]).set(*v as f64);
                    }
                }
                if let Some(volcano) = volcano {
                    let cpu = map.get("cpu").copied().unwrap_or(0) as f64;
                    let mem = map.get("memory").copied().unwrap_or(0) as f64;
                    set(&format!("volcano_queue_{volcano}_milli_cpu"), &object, cpu);
                    set(
                        &format!("volcano_queue_{volcano}_memory_bytes"),
                        &object,
                        mem,
                    );
                }
            };
            put("allocated", Some("allocated"), &q.allocated);
            put("deserved", Some("deserved"), &q.deserved);
            put("guarantee", None, &q.guarantee);
            if let Some(c) = &q.capability {
                put("capability", Some("capacity"), c);
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
