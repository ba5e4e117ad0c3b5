//! Safety properties of the engine over random clusters, jobs and event sequences: things that
//! must never happen, whatever the world does.
//!
//! - no node's allocatable is ever exceeded;
//! - no gang is ever bound partially, and none is left partial once feedback has settled;
//! - taints, nodeSelectors, required affinity and cordons are always respected;
//! - a rolled-back gang transaction leaves the snapshot exactly as it was;
//! - the same events give the same decisions (hash of the decision log);
//! - a gang asleep after a cycle could not have been placed in it, and the indexed wake-ups
//!   decide exactly as a scan of every asleep gang does.

mod common;

use std::collections::BTreeMap;

use common::*;
use phalanx_model::{
    ClusterEvent, DEFAULT_QUEUE, Decision, Job, Node, PodRef, QueueSpec, ResourceId, Resources,
    TaintEffect,
};
use phalanx_scheduler::{EngineConfig, GpuDemand, ScorePolicy, Shape, Transaction, WakeUps};
use proptest::prelude::*;

fn arb_node(i: usize) -> impl Strategy<Value = Node> {
    (
        1i64..=16,
        2i64..=64,
        2i64..=20,
        prop::sample::select(vec![0i64, 0, 4, 8]),
        0usize..3,
        0u8..8,
    )
        .prop_map(move |(cpu, mem, pods, gpus, zone, flags)| {
            let mut b = node(&format!("n{i:02}"))
                .cpu(cpu)
                .mem_gib(mem)
                .pods(pods)
                .gpus(gpus)
                .label("zone", ["a", "b", "c"][zone]);
            if flags & 3 == 0 {
                b = b.taint("dedicated", "x", TaintEffect::NoSchedule);
            }
            if flags == 7 {
                b = b.cordoned();
            }
            b.build()
        })
}

fn arb_task() -> impl Strategy<Value = (u32, i64, i64, i64, u32, u8, usize)> {
    (
        0u32..=6,
        100i64..=6000,
        1i64..=8,
        prop::sample::select(vec![0i64, 0, 0, 1, 2, 4]),
        0u32..=6,
        0u8..16,
        0usize..3,
    )
}

fn arb_job(i: usize) -> impl Strategy<Value = Job> {
    (
        prop::collection::vec(arb_task(), 1..=3),
        0u32..=100,
        0i32..3,
        0u8..8,
    )
        .prop_map(move |(tasks, min_pct, priority, extra)| {
            let queue = [DEFAULT_QUEUE, "root.q0", "root.q1", "root.q2"][i % 4];
            let mut b = job(&format!("ns/j{i:02}")).priority(priority).queue(queue);
            let mut total = 0;
            for (t, (replicas, cpu, mem, gpus, tmin, flags, zone)) in tasks.into_iter().enumerate()
            {
                let replicas = if t == 0 { replicas.max(1) } else { replicas };
                total += replicas;
                b = b
                    .task(&format!("t{t}"), replicas, cpu)
                    .mem_gib(mem)
                    .gpus(gpus)
                    .task_min(tmin.min(replicas));
                if flags & 1 == 1 {
                    b = b.tolerate("dedicated");
                }
                if flags & 6 == 2 {
                    b = b.selector("zone", ["a", "b", "c"][zone]);
                }
                if flags & 6 == 4 {
                    b = b.affinity_in("zone", &["a", "b", "c"][..=zone]);
                }
            }
            b = b.min_member(((total * min_pct) / 100).clamp(1, total));
            if extra == 0 {
                b = b.min_resources(Resources::of(ResourceId::CPU, 4000));
            }
            if extra >= 5 {
                // Declares how long it runs: it may borrow room held for others.
                b = b.runs(u64::from(extra) * 10_000);
            }
            b.build()
        })
}

#[derive(Debug, Clone)]
enum Op {
    /// Run a cycle and carry it out; `Some(k)`: the k-th binding of the cycle fails.
    Cycle(Option<usize>),
    Finish(usize, bool),
    Evict(usize),
    RemoveNode(usize),
    RestoreNode(usize),
    Delete(usize),
    /// Configure the queues whose bit is set (`root.q0` to `root.q2`; bit 3: cap `root.q1`
    /// at 8 cpu), as an admin or a restart's late Queue watch would.
    Queues(u8),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Cycle(None)),
        2 => any::<usize>().prop_map(|k| Op::Cycle(Some(k))),
        3 => (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(k, ok)| Op::Finish(k, ok)),
        1 => any::<usize>().prop_map(Op::Evict),
        1 => any::<usize>().prop_map(Op::RemoveNode),
        1 => any::<usize>().prop_map(Op::RestoreNode),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => any::<u8>().prop_map(Op::Queues),
    ]
}

fn arb_world() -> impl Strategy<Value = (Vec<Node>, Vec<Job>, Vec<Op>)> {
    (1usize..=8, 1usize..=12).prop_flat_map(|(n, j)| {
        (
            (0..n).map(arb_node).collect::<Vec<_>>(),
            (0..j).map(arb_job).collect::<Vec<_>>(),
            prop::collection::vec(arb_op(), 1..40),
        )
    })
}

/// Drives a harness through the ops, tracking which pods run where like a kubelet would.
struct World {
    h: Harness,
    nodes: Vec<Node>,
    jobs: Vec<Job>,
    running: BTreeMap<PodRef, String>,
    removed: Vec<bool>,
    deleted: Vec<bool>,
    /// After every cycle, check that no asleep gang could have been placed in it.
    check_asleep: bool,
    /// Gangs found asleep after cycles, summed.
    slept: usize,
}

impl World {
    fn new(config: EngineConfig, nodes: Vec<Node>, jobs: Vec<Job>) -> Self {
        let mut h = Harness::with(config);
        for n in &nodes {
            h.node(n.clone());
        }
        for j in &jobs {
            h.submit(j.clone());
        }
        World {
            h,
            removed: vec![false; nodes.len()],
            deleted: vec![false; jobs.len()],
            nodes,
            jobs,
            running: BTreeMap::new(),
            check_asleep: false,
            slept: 0,
        }
    }

    fn cycle(&mut self, fail: Option<usize>) {
        let decisions = self.h.cycle();
        if self.check_asleep {
            let view = self.h.engine.view();
            let fit = view.asleep_that_fit();
            assert!(
                fit.is_empty(),
                "asleep after a cycle, but would fit: {fit:?}"
            );
            self.slept += view.asleep().len();
        }
        let total: usize = decisions
            .iter()
            .map(|d| match d {
                Decision::BindGang { bindings, .. } => bindings.len(),
                _ => 0,
            })
            .sum();
        let fail = fail.filter(|_| total > 0).map(|k| k % total);
        let mut k = 0;
        let mut failed = Vec::new();
        for d in &decisions {
            match d {
                Decision::BindGang { job, bindings } => {
                    for b in bindings {
                        let p = pod(job, b.task, b.index);
                        if Some(k) == fail {
                            failed.push(p);
                        } else {
                            self.h
                                .apply(ClusterEvent::PodBound {
                                    pod: p.clone(),
                                    node: b.node.clone(),
                                })
                                .unwrap();
                            self.running.insert(p, b.node.clone());
                        }
                        k += 1;
                    }
                }
                Decision::Evict { pods, .. } => {
                    for p in pods {
                        self.h
                            .apply(ClusterEvent::PodEvicted { pod: p.clone() })
                            .unwrap();
                        self.running.remove(p);
                    }
                }
                _ => {}
            }
        }
        for p in failed {
            self.h
                .apply(ClusterEvent::BindFailed {
                    pod: p,
                    message: "injected".into(),
                })
                .unwrap();
        }
    }

    fn nth_running(&self, k: usize) -> Option<PodRef> {
        if self.running.is_empty() {
            return None;
        }
        self.running.keys().nth(k % self.running.len()).cloned()
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Cycle(fail) => self.cycle(fail),
            Op::Finish(k, ok) => {
                if let Some(p) = self.nth_running(k) {
                    self.running.remove(&p);
                    self.h
                        .apply(ClusterEvent::PodFinished {
                            pod: p,
                            succeeded: ok,
                        })
                        .unwrap();
                }
            }
            Op::Evict(k) => {
                if let Some(p) = self.nth_running(k) {
                    self.running.remove(&p);
                    self.h.apply(ClusterEvent::PodEvicted { pod: p }).unwrap();
                }
            }
            Op::RemoveNode(k) => {
                let i = k % self.nodes.len();
                if !self.removed[i] {
                    self.removed[i] = true;
                    let name = self.nodes[i].name.clone();
                    self.running.retain(|_, n| *n != name);
                    self.h
                        .apply(ClusterEvent::NodeRemoved { node: name })
                        .unwrap();
                }
            }
            Op::RestoreNode(k) => {
                let i = k % self.nodes.len();
                if self.removed[i] {
                    self.removed[i] = false;
                    self.h.node(self.nodes[i].clone());
                }
            }
            Op::Queues(mask) => {
                let specs = (0..3)
                    .filter(|b| mask & (1 << b) != 0)
                    .map(|b| {
                        let mut q = QueueSpec::new(format!("root.q{b}"));
                        if b == 1 && mask & 8 != 0 {
                            q.capability = Some(Resources::of(ResourceId::CPU, 8000));
                        }
                        q
                    })
                    .collect();
                self.h.apply(ClusterEvent::QueuesConfigured(specs)).unwrap();
            }
            Op::Delete(k) => {
                let i = k % self.jobs.len();
                if !self.deleted[i] {
                    self.deleted[i] = true;
                    let name = self.jobs[i].name.clone();
                    self.running.retain(|p, _| p.job != name);
                    self.h
                        .apply(ClusterEvent::JobDeleted { job: name })
                        .unwrap();
                }
            }
        }
    }

    /// Cycles, carrying out every decision, until nothing more happens.
    fn settle(&mut self) {
        for _ in 0..200 {
            let before = self.h.log.len();
            self.cycle(None);
            if self.h.log.len() == before {
                return;
            }
        }
        panic!("no quiet point after 200 cycles: a decision loop");
    }
}

fn config(spread: bool) -> EngineConfig {
    EngineConfig {
        score: if spread {
            ScorePolicy::Spread
        } else {
            ScorePolicy::Binpack
        },
        ..EngineConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn never_overcommits_never_binds_a_partial_gang_and_respects_constraints(
        (nodes, jobs, ops) in arb_world(),
        spread in any::<bool>(),
    ) {
        let mut w = World::new(config(spread), nodes, jobs);
        for op in &ops {
            w.step(op);
            prop_assert_eq!(w.h.audit.overcommitted_nodes(), 0);
            prop_assert_eq!(w.h.audit.partial_binds, 0);
            prop_assert_eq!(w.h.audit.double_binds, 0);
            prop_assert_eq!(w.h.audit.constraint_violations, 0);
            let errors = w.h.engine.view().accounting_errors();
            prop_assert!(errors.is_empty(), "after {:?}: {:?}", op, errors);
        }
        w.settle();
        w.h.assert_safe();
        // Each queue's allocation, kept incrementally by the queue tree, is what its jobs hold.
        let mut by_queue: BTreeMap<String, Resources> = BTreeMap::new();
        for j in w.h.engine.view().jobs() {
            *by_queue.entry(j.job.queue.clone()).or_default() += j.held + j.reserved;
        }
        for q in w.h.engine.view().queues().into_iter().filter(|q| q.info.leaf) {
            let expected = by_queue.get(&q.info.spec.name).copied().unwrap_or_default();
            prop_assert_eq!(q.info.allocated, expected, "queue {}", q.info.spec.name);
        }
        // The engine's own accounting agrees with the audit's, node by node.
        for info in w.h.engine.view().nodes().filter(|n| n.live) {
            prop_assert!(
                (info.allocated + info.reserved).fits_in(&info.node.allocatable),
                "engine books {:?}+{:?} on {}", info.allocated, info.reserved, info.node.name
            );
        }
    }

    #[test]
    fn the_same_events_give_the_same_decisions((nodes, jobs, ops) in arb_world()) {
        let run = || {
            let mut w = World::new(config(false), nodes.clone(), jobs.clone());
            for op in &ops {
                w.step(op);
            }
            w.settle();
            w.h.digest()
        };
        prop_assert_eq!(run(), run());
    }

    #[test]
    fn asleep_gangs_could_not_run_and_the_index_wakes_them_as_a_scan_would(
        (nodes, jobs, ops) in arb_world(),
        spread in any::<bool>(),
    ) {
        let run = |wake_ups| {
            let config = EngineConfig { wake_ups, ..config(spread) };
            let mut w = World::new(config, nodes.clone(), jobs.clone());
            w.check_asleep = true;
            for op in &ops {
                w.step(op);
            }
            w.settle();
            w.h.assert_safe();
            (w.h.digest(), w.slept)
        };
        let (indexed, slept) = run(WakeUps::Indexed);
        let (scan, slept_scan) = run(WakeUps::Scan);
        prop_assert_eq!(indexed, scan);
        prop_assert_eq!(slept, slept_scan);
    }

    #[test]
    fn a_rolled_back_transaction_restores_the_snapshot_exactly(
        (nodes, jobs, ops) in arb_world(),
        want in 1u32..40,
        spread in any::<bool>(),
    ) {
        let mut w = World::new(config(spread), nodes, jobs.clone());
        for op in &ops {
            w.step(op);
        }
        let mut demand = GpuDemand::default();
        demand.add(2, 10);
        demand.add(1, 3);
        for j in &jobs {
            for (t, task) in j.tasks.iter().enumerate() {
                let mut snap = w.h.engine.snapshot().clone();
                let before = snap.clone();
                let shape = Shape::new(&snap, t as u32, &task.pod);
                let mut txn = Transaction::begin(BTreeMap::new());
                let placed = txn.place(&mut snap, &shape, want, config(spread).score, &demand);
                if placed > 0 {
                    prop_assert_ne!(&snap, &before);
                }
                // Holds are logged and undone too.
                let classes: Vec<_> = shape.classes.iter().map(|&(_, c)| c).collect();
                txn.reserve(&mut snap, &classes, Resources::of(ResourceId::CPU, 1500));
                txn.rollback(&mut snap);
                prop_assert_eq!(&snap, &before);
            }
        }
    }
}
