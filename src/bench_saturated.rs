//! `phalanx bench --shape saturated`: the engine where batch clusters live, full. The cluster of
//! [`Workload::saturated`] is filled first (untimed), and `--pods` more pods wait behind it, in
//! gangs across four tenant queues of weights 4:2:1:1; each timed cycle follows a stream of
//! pods finishing, as a cluster at capacity sees it.
//!
//! What is timed: one `Engine::cycle` per step, after that step's `PodFinished` events (and
//! before the binds and evictions it decides are applied back, as a binder would). Reported:
//! median, p99 and worst cycle time, and the work per cycle (jobs tried, nodes scanned), so a
//! change to the engine's wake-ups or diagnosis shows as work, not only as time. The result is
//! audited as `phalanx bench`'s is, by [`Audit`], which shares no code with the engine.

use std::time::Instant;

use phalanx_model::{ClusterEvent, Decision, PodRef, Time};
use phalanx_scheduler::{Engine, EngineConfig};
use phalanx_simulator::audit::Audit;
use phalanx_simulator::report::peak_rss_mb;
use phalanx_simulator::synth::{SATURATED_TENANTS, Workload};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// What `phalanx bench --shape saturated --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct SaturatedReport {
    /// `saturated`.
    pub shape: &'static str,
    /// Nodes.
    pub nodes: usize,
    /// Pods running when the timed cycles begin.
    pub pods_running: u64,
    /// Pods pending (not placed) when the timed cycles begin.
    pub pods_pending: u64,
    /// Jobs pending when the timed cycles begin.
    pub jobs_pending: u64,
    /// Share of the cluster's cpu allocated when the timed cycles begin.
    pub cpu_allocated_share: f64,
    /// Timed cycles.
    pub cycles: usize,
    /// Pods finished before each cycle.
    pub finished_per_cycle: usize,
    /// Median cycle time, milliseconds.
    pub cycle_ms_p50: f64,
    /// 99th percentile cycle time, milliseconds.
    pub cycle_ms_p99: f64,
    /// Worst cycle time, milliseconds.
    pub cycle_ms_max: f64,
    /// Jobs tried per cycle, mean.
    pub jobs_tried_per_cycle: f64,
    /// Nodes looked at per cycle, mean.
    pub nodes_scanned_per_cycle: f64,
    /// Pods bound over the timed cycles.
    pub pods_bound: u64,
    /// Pods evicted over the timed cycles (reclaim, preemption).
    pub pods_evicted: u64,
    /// Gangs with fewer than min_member pods placed, by the independent audit.
    pub partial_gangs: u64,
    /// Nodes whose allocatable was exceeded, by the independent audit.
    pub overcommitted_nodes: u64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mb: f64,
    /// Untimed: generating the workload and filling the cluster, seconds.
    pub setup_s: f64,
}

/// Knobs of the saturated shape.
#[derive(Debug, Clone, Copy)]
pub struct SaturatedSpec {
    /// Nodes.
    pub nodes: usize,
    /// Pods that wait once the cluster is full.
    pub pending_pods: usize,
    /// Seed of the workload and of which pods finish.
    pub seed: u64,
    /// Timed cycles.
    pub cycles: usize,
    /// Pods that finish before each timed cycle.
    pub finished_per_cycle: usize,
}

/// The running pods (to finish at random) and the audit, kept in step with the decisions.
struct Cluster {
    running: Vec<PodRef>,
    audit: Audit,
    bound: u64,
    evicted: u64,
}

impl Cluster {
    /// Applies a cycle's decisions back, as the binder and kubelets would: binds confirmed,
    /// evictions carried out.
    fn apply(&mut self, engine: &mut Engine, decisions: Vec<Decision>) {
        for d in decisions {
            self.audit.on_decision(&d);
            match &d {
                Decision::BindGang { .. } => {
                    for event in d.all_bound() {
                        if let ClusterEvent::PodBound { pod, .. } = &event {
                            self.running.push(pod.clone());
                        }
                        engine.apply(event).expect("binds of assumed pods apply");
                        self.bound += 1;
                    }
                }
                Decision::Evict { pods, .. } => {
                    for pod in pods {
                        if let Some(i) = self.running.iter().position(|p| p == pod) {
                            self.running.swap_remove(i);
                        }
                        let event = ClusterEvent::PodEvicted { pod: pod.clone() };
                        self.audit.on_event(&event);
                        if engine.apply(event).is_ok() {
                            self.evicted += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Runs the saturated benchmark.
pub fn run(spec: SaturatedSpec) -> SaturatedReport {
    let started = Instant::now();
    let (queues, workload) = Workload::saturated(spec.nodes, spec.pending_pods, spec.seed);
    let mut engine = Engine::new(EngineConfig::default());
    let mut cluster = Cluster {
        running: Vec::new(),
        audit: Audit::new(),
        bound: 0,
        evicted: 0,
    };
    let events = std::iter::once(ClusterEvent::QueuesConfigured(queues))
        .chain(
            workload
                .nodes
                .iter()
                .cloned()
                .map(ClusterEvent::NodeUpserted),
        )
        .chain(workload.jobs.into_iter().map(ClusterEvent::JobSubmitted));
    for e in events {
        cluster.audit.on_event(&e);
        engine.apply(e).expect("generated nodes and jobs are valid");
    }
    // Fill the cluster: cycle until nothing more is placed.
    let mut now = Time::ZERO;
    loop {
        let out = engine.cycle(now);
        let placed = out
            .decisions
            .iter()
            .any(|d| matches!(d, Decision::BindGang { .. }));
        cluster.apply(&mut engine, out.decisions);
        if !placed {
            break;
        }
    }
    let cpu = phalanx_model::ResourceId::CPU;
    let (mut pods_pending, mut jobs_pending, mut cpu_held) = (0u64, 0u64, 0i64);
    for job in engine.view().jobs() {
        let pending = u64::from(job.pods.pending);
        if pending > 0 && job.pods.bound == 0 {
            jobs_pending += 1;
        }
        pods_pending += pending;
        cpu_held += job.held.get(cpu);
    }
    let cpu_capacity: i64 = workload.nodes.iter().map(|n| n.allocatable.get(cpu)).sum();
    let cpu_allocated_share = cpu_held as f64 / cpu_capacity.max(1) as f64;
    let pods_running = cluster.running.len() as u64;
    let (bound_before, evicted_before) = (cluster.bound, cluster.evicted);
    let setup_s = started.elapsed().as_secs_f64();

    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut cycle_ms = Vec::with_capacity(spec.cycles);
    let (mut tried, mut scanned) = (0u64, 0u64);
    for _ in 0..spec.cycles {
        now = Time(now.0 + 1000);
        for _ in 0..spec.finished_per_cycle.min(cluster.running.len()) {
            let i = rng.random_range(0..cluster.running.len());
            let pod = cluster.running.swap_remove(i);
            let event = ClusterEvent::PodFinished {
                pod,
                succeeded: true,
            };
            cluster.audit.on_event(&event);
            engine.apply(event).expect("a running pod finishes");
        }
        let t = Instant::now();
        let out = engine.cycle(now);
        cycle_ms.push(t.elapsed().as_secs_f64() * 1e3);
        tried += u64::from(out.report.attempts);
        scanned += out.report.nodes_scanned;
        cluster.apply(&mut engine, out.decisions);
    }
    cycle_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        cycle_ms
            .get(((cycle_ms.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let per_cycle = |n: u64| n as f64 / spec.cycles.max(1) as f64;
    SaturatedReport {
        shape: "saturated",
        nodes: spec.nodes,
        pods_running,
        pods_pending,
        jobs_pending,
        cpu_allocated_share,
        cycles: spec.cycles,
        finished_per_cycle: spec.finished_per_cycle,
        cycle_ms_p50: pct(0.5),
        cycle_ms_p99: pct(0.99),
        cycle_ms_max: cycle_ms.last().copied().unwrap_or(0.0),
        jobs_tried_per_cycle: per_cycle(tried),
        nodes_scanned_per_cycle: per_cycle(scanned),
        pods_bound: cluster.bound - bound_before,
        pods_evicted: cluster.evicted - evicted_before,
        partial_gangs: cluster.audit.partial_gangs() + cluster.audit.partial_binds,
        overcommitted_nodes: cluster.audit.overcommitted_nodes(),
        peak_rss_mb: peak_rss_mb(),
        setup_s,
    }
}

impl SaturatedReport {
    /// The one-screen human summary.
    pub fn human(&self) -> String {
        format!(
            "phalanx bench (saturated): {nodes} nodes, {run} pods running ({cpu:.0}% of cpu), \
             {pend} pods in {jp} jobs pending across {q} queues\n\
             cycle             p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms over {c} cycles\n\
             work per cycle    {tried:.1} jobs tried, {scan:.0} nodes scanned ({fin} pods finished before each)\n\
             placed / evicted  {bound} / {ev} pods\n\
             partial gangs     {pg}\n\
             overcommitted     {oc}\n\
             peak RSS          {rss:.0} MiB   (setup {setup:.1} s, not timed)",
            nodes = self.nodes,
            run = self.pods_running,
            cpu = 100.0 * self.cpu_allocated_share,
            pend = self.pods_pending,
            jp = self.jobs_pending,
            q = SATURATED_TENANTS.len(),
            p50 = self.cycle_ms_p50,
            p99 = self.cycle_ms_p99,
            max = self.cycle_ms_max,
            c = self.cycles,
            tried = self.jobs_tried_per_cycle,
            scan = self.nodes_scanned_per_cycle,
            fin = self.finished_per_cycle,
            bound = self.pods_bound,
            ev = self.pods_evicted,
            pg = self.partial_gangs,
            oc = self.overcommitted_nodes,
            rss = self.peak_rss_mb,
            setup = self.setup_s,
        )
    }
}
