//! Fair-share queues through the engine: weighted DRF between siblings, guarantees first,
//! capabilities at every level, strict FIFO, configuration errors, and the per-queue view.

mod common;

use std::collections::BTreeMap;

use common::*;
use phalanx_model::{
    ClusterEvent, Decision, QueueOrdering, QueueSpec, Reason, ResourceId, Resources,
};
use phalanx_scheduler::{EventError, JobPhase};
use proptest::prelude::*;

fn queue(name: &str, weight: u32) -> QueueSpec {
    QueueSpec {
        weight,
        ..QueueSpec::new(name)
    }
}

fn cpu(cores: i64) -> Resources {
    Resources::of(ResourceId::CPU, cores * 1000)
}

/// Cpu placed per queue, from what each job holds (the engine's per-job count, not the queue
/// tree's sums).
fn usage(h: &Harness) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for j in h.engine.view().jobs() {
        *out.entry(j.job.queue.clone()).or_default() += j.held.get(ResourceId::CPU);
    }
    out
}

#[test]
fn saturated_queues_share_by_weight() {
    let mut h = Harness::new();
    for i in 0..10 {
        h.node(node(&format!("n{i}")).cpu(10).build());
    }
    let weights = [("root.a", 1), ("root.b", 2), ("root.c", 3), ("root.d", 4)];
    h.apply(ClusterEvent::QueuesConfigured(
        weights.iter().map(|&(n, w)| queue(n, w)).collect(),
    ))
    .unwrap();
    for (q, _) in weights {
        for i in 0..200 {
            h.submit(
                job(&format!("{q}/j{i:03}"))
                    .task("t", 1, 1000)
                    .queue(q)
                    .build(),
            );
        }
    }
    h.settle();
    let used = usage(&h);
    // 100 cpu shared 1:2:3:4.
    for (q, w) in weights {
        let fair = 100_000 * w as i64 / 10;
        let got = used[q];
        assert!(
            (got - fair).abs() <= 5_000,
            "{q}: {got} vs fair {fair} ({used:?})"
        );
    }
    h.assert_safe();
}

#[test]
fn a_queue_below_its_guarantee_is_served_first() {
    let mut h = Harness::new();
    h.node(node("n").cpu(10).build());
    let mut small = queue("root.small", 1);
    small.guarantee = cpu(4);
    h.apply(ClusterEvent::QueuesConfigured(vec![
        small,
        queue("root.big", 50),
    ]))
    .unwrap();
    // root.big's jobs arrived first and it has the far lower weighted share; still the small
    // queue gets its guarantee before big takes the rest.
    for i in 0..10 {
        h.submit(
            job(&format!("big/j{i}"))
                .task("t", 1, 1000)
                .queue("root.big")
                .submitted(0)
                .build(),
        );
    }
    for i in 0..10 {
        h.submit(
            job(&format!("small/j{i}"))
                .task("t", 1, 1000)
                .queue("root.small")
                .submitted(5)
                .build(),
        );
    }
    h.settle();
    assert!(usage(&h)["root.small"] >= 4_000, "{:?}", usage(&h));
}

#[test]
fn capability_holds_at_every_level_with_a_clear_reason() {
    let mut h = Harness::new();
    h.node(node("n").cpu(64).build());
    let mut org = queue("root.org", 1);
    org.capability = Some(cpu(6));
    let mut team = queue("root.org.team", 1);
    team.capability = Some(cpu(4));
    h.apply(ClusterEvent::QueuesConfigured(vec![
        org,
        team,
        queue("root.org.other", 1),
    ]))
    .unwrap();
    h.submit(job("t/a").task("t", 3, 1000).queue("root.org.team").build());
    h.submit(
        job("o/a")
            .task("t", 2, 1000)
            .queue("root.org.other")
            .build(),
    );
    h.submit(job("t/b").task("t", 2, 1000).queue("root.org.team").build());
    let d = h.cycle();
    h.carry_out(&d);
    let used = usage(&h);
    assert_eq!(
        (used["root.org.team"], used["root.org.other"]),
        (3_000, 2_000)
    );
    let reason = h.engine.view().job("t/b").unwrap().reason.unwrap();
    let Reason::OverCapability {
        queue,
        resource,
        capability,
        allocated,
        requested,
    } = &reason
    else {
        panic!("{reason:?}")
    };
    // Both team (3 + 2 > 4) and org (5 + 2 > 6) bind: the innermost is named.
    assert_eq!(
        (
            queue.as_str(),
            *resource,
            *capability,
            *allocated,
            *requested
        ),
        ("root.org.team", ResourceId::CPU, 4000, 3000, 2000)
    );
    assert_eq!(
        reason.to_string(),
        "queue root.org.team would go over its capability of 4 cpu: 3 allocated, the gang needs 2"
    );
    // Room frees: the job fits under the caps.
    for i in 0..2 {
        h.apply(ClusterEvent::PodFinished {
            pod: pod("o/a", 0, i),
            succeeded: true,
        })
        .unwrap();
    }
    h.settle();
    assert_eq!(
        h.bound("t/b"),
        0,
        "team is at 3 of its 4: two more pods would make 5"
    );
    h.apply(ClusterEvent::PodFinished {
        pod: pod("t/a", 0, 0),
        succeeded: true,
    })
    .unwrap();
    h.settle();
    assert_eq!(h.bound("t/b"), 2);
}

#[test]
fn strict_fifo_holds_the_queue_behind_its_head_best_effort_lets_others_pass() {
    for (ordering, small_runs) in [
        (QueueOrdering::StrictFifo, false),
        (QueueOrdering::BestEffort, true),
    ] {
        let mut h = Harness::new();
        h.node(node("n").cpu(4).build());
        let mut q = queue("root.q", 1);
        q.ordering = ordering;
        h.apply(ClusterEvent::QueuesConfigured(vec![q])).unwrap();
        h.submit(
            job("q/big")
                .task("t", 1, 8000)
                .queue("root.q")
                .submitted(0)
                .build(),
        );
        h.submit(
            job("q/small")
                .task("t", 1, 1000)
                .queue("root.q")
                .submitted(1)
                .build(),
        );
        h.settle();
        assert_eq!(h.bound("q/small") == 1, small_runs, "{ordering:?}");
    }
}

#[test]
fn an_invalid_configuration_is_refused_and_the_old_one_stays() {
    let mut h = Harness::new();
    h.node(node("n").cpu(4).build());
    h.apply(ClusterEvent::QueuesConfigured(vec![queue("root.a", 1)]))
        .unwrap();
    let mut bad = queue("root.b", 1);
    bad.guarantee = cpu(8);
    bad.capability = Some(cpu(2));
    let err = h
        .apply(ClusterEvent::QueuesConfigured(vec![bad]))
        .unwrap_err();
    assert!(matches!(err, EventError::InvalidQueues(_)));
    assert_eq!(
        err.to_string(),
        "queue root.b: guarantee 8000 of cpu is above capability 2000"
    );
    h.submit(job("a/j").task("t", 1, 1000).queue("root.a").build());
    h.submit(job("b/j").task("t", 1, 1000).queue("root.b").build());
    let d = h.cycle();
    assert!(
        d.iter()
            .any(|d| matches!(d, Decision::BindGang { job, .. } if job == "a/j"))
    );
    assert_eq!(
        h.engine.view().job("b/j").unwrap().reason,
        Some(Reason::QueueNotFound {
            queue: "root.b".into()
        })
    );
    h.submit(job("p/j").task("t", 1, 1000).queue("root").build());
    h.cycle();
    assert_eq!(
        h.engine.view().job("p/j").unwrap().reason,
        Some(Reason::QueueNotLeaf {
            queue: "root".into()
        })
    );
}

#[test]
fn the_view_shows_each_queues_quota_usage_jobs_and_reasons() {
    let mut h = Harness::new();
    h.node(node("n").cpu(10).build());
    let mut a = queue("root.a", 1);
    a.capability = Some(cpu(2));
    h.apply(ClusterEvent::QueuesConfigured(vec![a, queue("root.b", 3)]))
        .unwrap();
    h.submit(job("a/1").task("t", 2, 1000).queue("root.a").build());
    h.submit(job("a/2").task("t", 1, 1000).queue("root.a").build());
    h.submit(job("b/1").task("t", 1, 1000).queue("root.b").build());
    h.settle();
    let queues = h.engine.view().queues();
    let a = queues
        .iter()
        .find(|q| q.info.spec.name == "root.a")
        .unwrap();
    assert_eq!(a.info.allocated.get(ResourceId::CPU), 2000);
    assert_eq!((a.running_jobs, a.pending_jobs), (1, 1));
    assert_eq!(a.top_reasons, vec![("over_capability".to_string(), 1)]);
    let b = queues
        .iter()
        .find(|q| q.info.spec.name == "root.b")
        .unwrap();
    // Deserved by water-filling: a asks for 3 cpu in all (2 running, 1 pending), b for 1.
    assert_eq!(b.info.deserved.get(ResourceId::CPU), 1000);
    assert_eq!(a.info.deserved.get(ResourceId::CPU), 3000);
    let root = queues.iter().find(|q| q.info.spec.name == "root").unwrap();
    assert_eq!(root.info.allocated.get(ResourceId::CPU), 3000);
    assert_eq!(h.engine.view().job("a/2").unwrap().phase, JobPhase::Pending);
}

#[test]
fn extra_pods_beyond_min_member_stay_within_the_cap() {
    // Found by the simulator's property test: cap 6 cpu, two 4-cpu nodes, min_member 1 with
    // tasks of 1x1 cpu and 3x2 cpu. Every extra pod counts against the cap, across nodes too.
    let mut h = Harness::new();
    h.node(node("a").cpu(4).build());
    h.node(node("b").cpu(4).build());
    let mut q = queue("root.q0", 1);
    q.capability = Some(cpu(6));
    h.apply(ClusterEvent::QueuesConfigured(vec![q])).unwrap();
    h.submit(
        job("q/j")
            .task("one", 1, 1000)
            .task("two", 3, 2000)
            .min_member(1)
            .queue("root.q0")
            .build(),
    );
    h.settle();
    assert_eq!(
        usage(&h)["root.q0"],
        5000,
        "1 + 2 x 2 cpu: a third 2-cpu pod would make 7"
    );
    h.assert_safe();
}

fn arb_caps() -> impl Strategy<Value = Vec<(usize, Option<i64>, u32)>> {
    // Six queues: root.p0, root.p1 and two leaves under each; each maybe capped.
    prop::collection::vec((0usize..1, prop::option::of(1i64..12), 1u32..5), 6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the caps, jobs and finishes, no queue at any level is ever allocated more than
    /// its capability.
    #[test]
    fn capability_is_never_exceeded(
        caps in arb_caps(),
        jobs in prop::collection::vec((0usize..4, 1u32..4, 1i64..4), 1..40),
        finishes in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let names = ["root.p0", "root.p1", "root.p0.a", "root.p0.b", "root.p1.a", "root.p1.b"];
        let specs: Vec<QueueSpec> = names
            .iter()
            .zip(&caps)
            .map(|(n, &(_, cap, w))| QueueSpec {
                weight: w,
                capability: cap.map(cpu),
                ..QueueSpec::new(*n)
            })
            .collect();
        let mut h = Harness::new();
        for i in 0..4 {
            h.node(node(&format!("n{i}")).cpu(8).build());
        }
        h.apply(ClusterEvent::QueuesConfigured(specs.clone())).unwrap();
        for (i, &(leaf, pods, cores)) in jobs.iter().enumerate() {
            h.submit(job(&format!("j/{i}")).task("t", pods, cores * 1000).queue(names[2 + leaf]).build());
        }
        let check = |h: &Harness| -> Result<(), TestCaseError> {
            let used = usage(h);
            for spec in &specs {
                let total: i64 = used
                    .iter()
                    .filter(|(q, _)| *q == &spec.name || q.starts_with(&format!("{}.", spec.name)))
                    .map(|(_, v)| *v)
                    .sum();
                if let Some(cap) = spec.capability {
                    prop_assert!(total <= cap.get(ResourceId::CPU), "{}: {} > {:?}", spec.name, total, cap);
                }
            }
            Ok(())
        };
        h.settle();
        check(&h)?;
        for f in finishes {
            let running: Vec<(String, u32)> = h
                .engine
                .view()
                .jobs()
                .filter(|j| j.pods.bound > 0)
                .map(|j| (j.job.name.clone(), j.job.tasks[0].replicas))
                .collect();
            if running.is_empty() {
                break;
            }
            let (name, replicas) = &running[f % running.len()];
            for i in 0..*replicas {
                let _ = h.apply(ClusterEvent::PodFinished { pod: pod(name, 0, i), succeeded: true });
            }
            h.settle();
            check(&h)?;
        }
        h.assert_safe();
    }
}

/// Pods named by the Evict decisions of a log, with their reason label.
fn evicted(log: &[Decision]) -> Vec<(String, &'static str)> {
    log.iter()
        .filter_map(|d| match d {
            Decision::Evict { pods, reason } => Some(
                pods.iter()
                    .map(|p| (format!("{}/{}", p.job, p.index), reason.as_str()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Cycles (one second each) until one evicts, or for a minute; no gang evicts before it has
/// waited `reclaim_delay` (30 s).
fn evictions_after_the_delay(h: &mut Harness) -> Vec<Decision> {
    let start = h.now;
    for _ in 0..60 {
        let d = h.cycle();
        if !evicted(&d).is_empty() {
            assert!(
                h.now.0 - start.0 > 30_000,
                "evicted {} ms after the gang arrived, before the 30 s delay",
                h.now.0 - start.0
            );
            return d;
        }
        h.carry_out(&d);
    }
    Vec::new()
}

/// Queue a borrowed the whole cluster while b was idle; b's gang reclaims whole gangs of a, the
/// youngest first and no more than it needs, and starts once they are gone. a keeps its
/// deserved share, so it cannot reclaim back.
#[test]
fn reclaim_takes_whole_gangs_youngest_first_from_the_queue_over_its_share() {
    let mut h = Harness::new();
    for i in 0..4 {
        h.node(node(&format!("n{i}")).cpu(8).mem_gib(64).build());
    }
    h.apply(ClusterEvent::QueuesConfigured(vec![
        queue("root.a", 1),
        queue("root.b", 1),
    ]))
    .unwrap();
    // Four gangs of a, each started in its own cycle: a0 oldest, a3 youngest.
    for i in 0..4 {
        h.submit(
            job(&format!("a{i}"))
                .task("w", 2, 4000)
                .queue("root.a")
                .build(),
        );
        h.settle();
    }
    assert_eq!(usage(&h)["root.a"], 32_000);
    h.submit(job("b0").task("w", 2, 4000).queue("root.b").build());
    let decisions = evictions_after_the_delay(&mut h);
    assert_eq!(
        evicted(&decisions),
        vec![
            ("a3/0".to_string(), "reclaim"),
            ("a3/1".to_string(), "reclaim")
        ],
        "exactly the youngest gang of a, whole"
    );
    h.carry_out(&decisions);
    h.settle();
    assert_eq!(
        h.bound("b0"),
        2,
        "b's gang starts in the room reclaimed for it"
    );
    assert_eq!(h.engine.view().job("a3").unwrap().phase, JobPhase::Pending);
    // Nothing else moves: a at its deserved 24 cpu, b at 8.
    let used = usage(&h);
    assert_eq!((used["root.a"], used["root.b"]), (24_000, 8_000));
    for _ in 0..50 {
        let d = h.cycle();
        assert!(evicted(&d).is_empty(), "no reclaim back: {d:?}");
        h.carry_out(&d);
    }
    h.assert_safe();
}

/// Inside a queue a higher-priority gang preempts lower-priority ones, whole, unless the queue
/// turns preemption off.
#[test]
fn higher_priority_preempts_lower_inside_a_queue_unless_the_queue_says_no() {
    for preemption in [true, false] {
        let mut h = Harness::new();
        for i in 0..2 {
            h.node(node(&format!("n{i}")).cpu(4).mem_gib(64).build());
        }
        h.apply(ClusterEvent::QueuesConfigured(vec![QueueSpec {
            preemption,
            ..queue("root.q", 1)
        }]))
        .unwrap();
        h.submit(
            job("low")
                .task("w", 2, 4000)
                .queue("root.q")
                .priority(1)
                .build(),
        );
        h.settle();
        h.submit(
            job("high")
                .task("w", 1, 4000)
                .queue("root.q")
                .priority(10)
                .build(),
        );
        let decisions = evictions_after_the_delay(&mut h);
        if preemption {
            assert_eq!(
                evicted(&decisions),
                vec![
                    ("low/0".to_string(), "preempt"),
                    ("low/1".to_string(), "preempt")
                ],
                "the whole lower-priority gang goes"
            );
            h.carry_out(&decisions);
            h.settle();
            assert_eq!(h.bound("high"), 1);
            assert_eq!(h.engine.view().job("low").unwrap().phase, JobPhase::Pending);
        } else {
            assert!(evicted(&decisions).is_empty(), "{decisions:?}");
            h.carry_out(&decisions);
            h.settle();
            assert_eq!(
                h.engine.view().job("high").unwrap().phase,
                JobPhase::Pending
            );
        }
        h.assert_safe();
    }
}

/// A contending job: queue index, pods, cores per pod, priority.
type Contender = (usize, u32, u32, i32);

fn arb_contest() -> impl Strategy<Value = (Vec<u32>, Vec<Contender>)> {
    (
        prop::collection::vec(1u32..4, 2..4),
        prop::collection::vec((0usize..3, 1u32..4, 1u32..5, 0i32..3), 4..24),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Queues of random weights contend with gangs that never end, all submitted at once, then
    /// some more arriving later: reclaim and preemption settle. Over 1,000 cycles no gang is
    /// ever cut below its minimum (the audit), every eviction takes a gang whole, and evictions
    /// stop: none in the last 500 cycles, and no job is evicted more than a few times.
    #[test]
    fn reclaim_and_preemption_never_loop(
        (weights, jobs) in arb_contest(),
    ) {
        let names: Vec<String> = (0..weights.len()).map(|i| format!("root.q{i}")).collect();
        let mut h = Harness::new();
        for i in 0..4 {
            h.node(node(&format!("n{i}")).cpu(8).mem_gib(64).build());
        }
        h.apply(ClusterEvent::QueuesConfigured(
            names.iter().zip(&weights).map(|(n, &w)| queue(n, w)).collect(),
        ))
        .unwrap();
        let mut evictions: BTreeMap<String, u32> = BTreeMap::new();
        for cycle in 0..1000 {
            // Half the jobs arrive at the start, the rest one per cycle after.
            for (i, &(q, pods, cores, priority)) in jobs.iter().enumerate() {
                let at = if i < jobs.len() / 2 { 0 } else { 10 + i };
                if at == cycle {
                    let q = &names[q % names.len()];
                    h.submit(
                        job(&format!("j{i}"))
                            .task("w", pods, cores as i64 * 1000)
                            .queue(q)
                            .priority(priority)
                            .build(),
                    );
                }
            }
            let d = h.cycle();
            for d in &d {
                if let Decision::Evict { pods, .. } = d {
                    let jobs: std::collections::BTreeSet<&str> =
                        pods.iter().map(|p| p.job.as_str()).collect();
                    for j in jobs {
                        let info = h.engine.view().job(j).unwrap();
                        prop_assert_eq!(
                            pods.iter().filter(|p| p.job == j).count() as u32,
                            info.pods.releasing,
                            "an eviction took part of gang {}", j
                        );
                        *evictions.entry(j.to_string()).or_default() += 1;
                    }
                    prop_assert!(cycle < 500, "eviction in cycle {cycle}: {d:?}");
                }
            }
            h.carry_out(&d);
            h.assert_safe();
        }
        for (j, n) in &evictions {
            prop_assert!(*n <= 3, "job {j} evicted {n} times");
        }
    }
}

/// The queue tree's allocated cpu per leaf, as the view reports it.
fn tree_allocated(h: &Harness) -> BTreeMap<String, i64> {
    h.engine
        .view()
        .queues()
        .into_iter()
        .map(|q| {
            (
                q.info.spec.name.clone(),
                q.info.allocated.get(ResourceId::CPU),
            )
        })
        .collect()
}

const TWO_QUEUES: [&str; 2] = ["root.b", "root.c"];

/// One 64-core node and two queues of weight 1, `root.b` and `root.c`.
fn two_queues() -> Harness {
    let mut h = Harness::new();
    h.node(node("n").cpu(64).build());
    h.apply(ClusterEvent::QueuesConfigured(
        TWO_QUEUES.map(|q| queue(q, 1)).to_vec(),
    ))
    .unwrap();
    h
}

#[test]
fn a_failed_pod_tearing_a_gang_down_releases_its_own_queue_only() {
    let mut h = two_queues();
    h.submit(job("ns/c1").task("t", 2, 2000).queue("root.c").build());
    h.submit(job("ns/b4").task("t", 4, 1000).queue("root.b").build());
    h.settle();
    assert_eq!(tree_allocated(&h)["root.c"], 4000);
    assert_eq!(tree_allocated(&h)["root.b"], 4000);
    // One pod of b4 fails: the gang is torn down.
    h.apply(ClusterEvent::PodFinished {
        pod: pod("ns/b4", 0, 0),
        succeeded: false,
    })
    .unwrap();
    h.settle();
    let used = usage(&h);
    let tree = tree_allocated(&h);
    assert_eq!(tree["root.c"], 4000, "tree {tree:?}, jobs {used:?}");
    assert_eq!(
        tree["root.b"],
        used.get("root.b").copied().unwrap_or(0),
        "tree {tree:?}, jobs {used:?}"
    );
    // Its controller re-creates the job; then it ends and is deleted.
    let _ = h.apply(ClusterEvent::JobSubmitted(
        job("ns/b4").task("t", 4, 1000).queue("root.b").build(),
    ));
    h.settle();
    let _ = h.apply(ClusterEvent::JobDeleted {
        job: "ns/b4".into(),
    });
    h.settle();
    let tree = tree_allocated(&h);
    assert_eq!(tree["root.c"], 4000, "tree {tree:?}");
    assert!(tree["root.b"] >= 0, "tree {tree:?}");
    h.assert_safe();
}

#[test]
fn queues_configured_again_keep_what_is_allocated() {
    let mut h = two_queues();
    h.submit(job("ns/c1").task("t", 2, 2000).queue("root.c").build());
    h.submit(job("ns/b4").task("t", 4, 1000).queue("root.b").build());
    h.settle();
    h.apply(ClusterEvent::QueuesConfigured(
        TWO_QUEUES.map(|q| queue(q, 1)).to_vec(),
    ))
    .unwrap();
    h.settle();
    let tree = tree_allocated(&h);
    assert_eq!((tree["root.b"], tree["root.c"]), (4000, 4000), "{tree:?}");
}

#[test]
fn a_running_job_submitted_again_stays_counted_once() {
    let mut h = two_queues();
    h.submit(job("ns/c1").task("t", 2, 2000).queue("root.c").build());
    h.settle();
    h.submit(job("ns/c1").task("t", 2, 2000).queue("root.c").build());
    h.settle();
    let _ = h.apply(ClusterEvent::JobSubmitted(
        job("ns/c1").task("t", 2, 2000).queue("root.b").build(),
    ));
    h.settle();
    let tree = tree_allocated(&h);
    assert_eq!((tree["root.b"], tree["root.c"]), (0, 4000), "{tree:?}");
}

/// A restarted scheduler may learn of running pods before of their queue (its watches sync in
/// any order): once the queue is configured, it counts them, and its capability holds.
#[test]
fn pods_adopted_before_their_queue_is_configured_count_against_it() {
    let mut h = Harness::new();
    h.node(node("n").cpu(64).build());
    h.apply(ClusterEvent::QueuesConfigured(vec![queue("root.b", 1)]))
        .unwrap();
    h.submit(job("ns/early").task("t", 2, 2000).queue("root.c").build());
    for i in 0..2 {
        h.apply(ClusterEvent::PodBound {
            pod: pod("ns/early", 0, i),
            node: "n".into(),
        })
        .unwrap();
    }
    let mut capped = queue("root.c", 1);
    capped.capability = Some(cpu(5));
    h.apply(ClusterEvent::QueuesConfigured(vec![
        queue("root.b", 1),
        capped,
    ]))
    .unwrap();
    assert_eq!(tree_allocated(&h)["root.c"], 4000);
    h.submit(job("ns/late").task("t", 1, 2000).queue("root.c").build());
    let d = h.cycle();
    assert!(
        matches!(
            unschedulable(&d, "ns/late"),
            Some(Reason::OverCapability { .. })
        ),
        "4 of 5 cpu are held; 2 more would pass the capability: {d:?}"
    );
    assert!(h.engine.view().accounting_errors().is_empty());
}

#[test]
fn pods_still_running_after_most_of_their_gang_finished_stay_counted() {
    let mut h = Harness::new();
    h.node(node("n").cpu(64).build());
    h.apply(ClusterEvent::QueuesConfigured(vec![queue("root.c", 1)]))
        .unwrap();
    h.submit(job("ns/g").task("t", 8, 2000).queue("root.c").build());
    h.settle();
    for i in 0..6 {
        h.apply(ClusterEvent::PodFinished {
            pod: pod("ns/g", 0, i),
            succeeded: true,
        })
        .unwrap();
    }
    h.settle();
    assert_eq!(
        tree_allocated(&h)["root.c"],
        4000,
        "{:?}",
        h.engine.view().job("ns/g").map(|j| (j.phase, j.pods))
    );
}
