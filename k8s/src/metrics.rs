//! Prometheus metrics, under the names Volcano users already graph where Volcano has one, and
//! `phalanx_` names for the rest. One registry per [`Metrics`] (no global state), so tests can
//! run several schedulers in one process.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `volcano_e2e_scheduling_latency_milliseconds` | histogram | | pod creation to successful bind |
//! | `volcano_schedule_attempts_total` | counter | `result` = scheduled, unschedulable, error | gangs tried per cycle and what came of it |
//! | `volcano_queue_pod_group_pending_count` | gauge | `queue_name` | pending gangs |
//! | `volcano_queue_pod_group_running_count` | gauge | `queue_name` | running gangs |
//! | `volcano_queue_allocated_milli_cpu`, `volcano_queue_allocated_memory_bytes` | gauge | `queue_name` | allocated |
//! | `volcano_queue_deserved_milli_cpu`, `volcano_queue_deserved_memory_bytes` | gauge | `queue_name` | deserved share |
//! | `volcano_queue_capacity_milli_cpu`, `volcano_queue_capacity_memory_bytes` | gauge | `queue_name` | capability (absent: unlimited) |
//! | `phalanx_queue_allocated`, `phalanx_queue_deserved`, `phalanx_queue_capability` | gauge | `queue_name`, `resource` | every resource (cpu in millicores, others in units) |
//! | `phalanx_bind_duration_seconds` | histogram | | one `pods/binding` request, retries included |
//! | `phalanx_bind_failures_total` | counter | `reason` | bindings that failed for good |
//! | `phalanx_cycle_duration_seconds` | histogram | | one engine cycle |
//! | `phalanx_pods_bound_total` | counter | | pods bound by this scheduler |

use std::collections::BTreeMap;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::core::Published;

/// The scheduler's metrics and their registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Pod creation to bind, milliseconds.
    pub e2e_latency_ms: Histogram,
    /// Attempts by result.
    pub attempts: IntCounterVec,
    /// One binding request.
    pub bind_duration: Histogram,
    /// Bindings failed for good, by reason.
    pub bind_failures: IntCounterVec,
    /// Pods bound.
    pub pods_bound: IntCounter,
    /// Cycle duration.
    pub cycle_duration: Histogram,
    /// Queue gauges with only a `queue_name` label, by metric name.
    by_queue: BTreeMap<&'static str, GaugeVec>,
    /// Queue gauges per resource, by kind (`allocated`, `deserved`, `capability`).
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
        "Pending gangs of the queue",
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

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let e2e_latency_ms = must(Histogram::with_opts(
            HistogramOpts::new(
                "volcano_e2e_scheduling_latency_milliseconds",
                "Pod creation to successful bind, in milliseconds",
            )
            .buckets(must(prometheus::exponential_buckets(5.0, 2.0, 16))),
        ));
        let attempts = must(IntCounterVec::new(
            Opts::new(
                "volcano_schedule_attempts_total",
                "Gang scheduling attempts by result: scheduled, unschedulable, error",
            ),
            &["result"],
        ));
        let bind_duration = must(Histogram::with_opts(
            HistogramOpts::new(
                "phalanx_bind_duration_seconds",
                "One pods/binding request, retries included",
            )
            .buckets(must(prometheus::exponential_buckets(0.0005, 2.0, 16))),
        ));
        let bind_failures = must(IntCounterVec::new(
            Opts::new(
                "phalanx_bind_failures_total",
                "Bindings that failed for good, by reason",
            ),
            &["reason"],
        ));
        let pods_bound = must(IntCounter::new(
            "phalanx_pods_bound_total",
            "Pods bound by this scheduler",
        ));
        let cycle_duration = must(Histogram::with_opts(
            HistogramOpts::new("phalanx_cycle_duration_seconds", "One engine cycle")
                .buckets(must(prometheus::exponential_buckets(0.0001, 2.0, 18))),
        ));
        must(registry.register(Box::new(e2e_latency_ms.clone())));
        must(registry.register(Box::new(attempts.clone())));
        must(registry.register(Box::new(bind_duration.clone())));
        must(registry.register(Box::new(bind_failures.clone())));
        must(registry.register(Box::new(pods_bound.clone())));
        must(registry.register(Box::new(cycle_duration.clone())));
        let mut by_queue = BTreeMap::new();
        for (name, help) in QUEUE_GAUGES {
            let g = must(GaugeVec::new(Opts::new(name, help), &["queue_name"]));
            must(registry.register(Box::new(g.clone())));
            by_queue.insert(name, g);
        }
        let mut by_resource = BTreeMap::new();
        for kind in ["allocated", "deserved", "capability"] {
            let g = must(GaugeVec::new(
                Opts::new(
                    format!("phalanx_queue_{kind}"),
                    format!("The queue's {kind} by resource (cpu in millicores, others in units)"),
                ),
                &["queue_name", "resource"],
            ));
            must(registry.register(Box::new(g.clone())));
            by_resource.insert(kind, g);
        }
        Metrics {
            registry,
            e2e_latency_ms,
            attempts,
            bind_duration,
            bind_failures,
            pods_bound,
            cycle_duration,
            by_queue,
            by_resource,
        }
    }

    /// Sets the queue gauges from what the engine thread published.
    pub fn observe(&self, p: &Published) {
        for g in self.by_queue.values().chain(self.by_resource.values()) {
            g.reset();
        }
        let set = |metric: &str, queue: &str, v: f64| {
            if let Some(g) = self.by_queue.get(metric) {
                g.with_label_values(&[queue]).set(v);
            }
        };
        for q in &p.queues {
            let name = q.name.as_str();
            set(
                "volcano_queue_pod_group_pending_count",
                name,
                q.pending_jobs as f64,
            );
            set(
                "volcano_queue_pod_group_running_count",
                name,
                q.running_jobs as f64,
            );
            let put = |kind: &'static str, volcano: &str, map: &BTreeMap<String, i64>| {
                for (res, v) in map {
                    if let Some(g) = self.by_resource.get(kind) {
                        g.with_label_values(&[name, res.as_str()]).set(*v as f64);
                    }
                }
                let cpu = map.get("cpu").copied().unwrap_or(0) as f64;
                let mem = map.get("memory").copied().unwrap_or(0) as f64;
                set(&format!("volcano_queue_{volcano}_milli_cpu"), name, cpu);
                set(&format!("volcano_queue_{volcano}_memory_bytes"), name, mem);
            };
            put("allocated", "allocated", &q.allocated);
            put("deserved", "deserved", &q.deserved);
            if let Some(c) = &q.capability {
                put("capability", "capacity", c);
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
