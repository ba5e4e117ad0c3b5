//! Job dependencies: DAG gating, failure propagation, missing dependencies, cycles, and the
//! critical-path order.

mod common;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use common::*;
use phalanx_model::{ClusterEvent, Decision, Job, JobError, Reason, Span, Time};
use phalanx_scheduler::{EngineConfig, EventError, JobPhase};
use proptest::prelude::*;

fn with_deps(mut j: Job, deps: &[&str]) -> Job {
    j.depends_on = deps.iter().map(|d| d.to_string()).collect();
    j
}

fn stage(name: &str, deps: &[&str]) -> Job {
    with_deps(job(name).task("t", 1, 1000).build(), deps)
}

fn started(d: &[Decision]) -> Vec<String> {
    d.iter()
        .filter_map(|d| match d {
            Decision::BindGang { job, .. } => Some(job.clone()),
            _ => None,
        })
        .collect()
}

/// The jobs the decisions failed, or said could not be placed (`unschedulable`), with why.
fn reasons(d: &[Decision], unschedulable: bool) -> BTreeMap<String, Reason> {
    d.iter()
        .filter_map(|d| match d {
            Decision::FailJob { job, cause: why } if !unschedulable => Some((job, why)),
            Decision::MarkUnschedulable { job, reason: why } if unschedulable => Some((job, why)),
            _ => None,
        })
        .map(|(job, why)| (job.clone(), why.clone()))
        .collect()
}

fn failed(d: &[Decision]) -> BTreeMap<String, Reason> {
    reasons(d, false)
}

fn unschedulable(d: &[Decision]) -> BTreeMap<String, Reason> {
    reasons(d, true)
}

/// Finishes every running pod of `name` with `ok`.
fn finish(h: &mut Harness, name: &str, ok: bool) {
    let n = h.engine.view().job(name).unwrap().job.tasks[0].replicas;
    for i in 0..n {
        h.apply(ClusterEvent::PodFinished {
            pod: pod(name, 0, i),
            succeeded: ok,
        })
        .unwrap();
    }
}

fn cluster() -> Harness {
    let mut h = Harness::new();
    h.node(node("a").cpu(64).build());
    h
}

#[test]
fn a_chain_starts_in_dependency_order() {
    let mut h = cluster();
    h.submit(stage("ns/c", &["ns/b"]));
    h.submit(stage("ns/b", &["ns/a"]));
    h.submit(stage("ns/a", &[]));
    let d = h.cycle();
    assert_eq!(started(&d), vec!["ns/a"]);
    assert_eq!(
        h.engine.view().job("ns/c").unwrap().reason,
        Some(Reason::WaitingForDependencies {
            jobs: vec!["ns/b".into()]
        })
    );
    // Submitted before the jobs they name, b and c were told those were missing.
    assert_eq!(
        unschedulable(&d).keys().collect::<Vec<_>>(),
        vec!["ns/b", "ns/c"]
    );
    h.carry_out(&d);
    assert!(started(&h.cycle()).is_empty(), "b waits while a runs");
    finish(&mut h, "ns/a", true);
    assert_eq!(started(&h.cycle()), vec!["ns/b"]);
    finish(&mut h, "ns/b", true);
    assert_eq!(started(&h.cycle()), vec!["ns/c"]);
}

#[test]
fn a_diamond_waits_for_both_branches_and_fan_out_goes_together() {
    let mut h = cluster();
    h.submit(stage("ns/src", &[]));
    for i in 0..10 {
        h.submit(stage(&format!("ns/mid{i}"), &["ns/src"]));
    }
    let mids: Vec<String> = (0..10).map(|i| format!("ns/mid{i}")).collect();
    let mid_refs: Vec<&str> = mids.iter().map(String::as_str).collect();
    h.submit(stage("ns/sink", &mid_refs));
    let d = h.cycle();
    assert_eq!(started(&d), vec!["ns/src"]);
    // Waiting is the normal course of a pipeline, like a pod's scheduling gate in
    // kube-scheduler: the reason says so, and no decision calls the job unschedulable.
    assert_eq!(unschedulable(&d), BTreeMap::new());
    assert_eq!(
        h.engine.view().job("ns/sink").unwrap().reason,
        Some(Reason::WaitingForDependencies {
            jobs: mids.iter().map(|m| m.as_str().into()).collect()
        })
    );
    h.carry_out(&d);
    h.settle();
    finish(&mut h, "ns/src", true);
    let d = h.cycle();
    assert_eq!(started(&d).len(), 10, "fan-out released together");
    h.carry_out(&d);
    for m in &mids[..9] {
        finish(&mut h, m, true);
    }
    assert!(
        started(&h.cycle()).is_empty(),
        "fan-in waits for the last branch"
    );
    finish(&mut h, &mids[9], true);
    assert_eq!(started(&h.cycle()), vec!["ns/sink"]);
}

#[test]
fn a_failure_fails_exactly_the_transitive_dependents_naming_the_ancestor() {
    let mut h = cluster();
    h.submit(stage("ns/a", &[]));
    h.submit(stage("ns/b", &["ns/a"]));
    h.submit(stage("ns/c", &["ns/b"]));
    h.submit(stage("ns/free", &[]));
    h.submit(stage("ns/d", &["ns/free"]));
    h.settle();
    finish(&mut h, "ns/a", false);
    let d = h.cycle();
    let f = failed(&d);
    assert_eq!(f.keys().collect::<Vec<_>>(), vec!["ns/a", "ns/b", "ns/c"]);
    assert_eq!(
        f["ns/c"],
        Reason::DependencyFailed {
            dependency: "ns/a".into(),
            deleted: false
        }
    );
    assert_eq!(f["ns/c"].to_string(), "dependency ns/a failed");
    // A job submitted later on top of a failed chain fails at once, naming the root cause.
    h.submit(stage("ns/e", &["ns/c"]));
    let f = failed(&h.cycle());
    assert_eq!(
        f["ns/e"],
        Reason::DependencyFailed {
            dependency: "ns/a".into(),
            deleted: false
        }
    );
    finish(&mut h, "ns/free", true);
    assert_eq!(
        started(&h.cycle()),
        vec!["ns/d"],
        "the other branch is untouched"
    );
}

#[test]
fn deleting_a_dependency_before_it_succeeds_fails_its_dependents() {
    let mut h = cluster();
    h.submit(stage("ns/a", &[]));
    h.submit(stage("ns/b", &["ns/a"]));
    h.apply(ClusterEvent::JobDeleted { job: "ns/a".into() })
        .unwrap();
    let f = failed(&h.cycle());
    assert_eq!(
        f["ns/b"],
        Reason::DependencyFailed {
            dependency: "ns/a".into(),
            deleted: true
        }
    );
    // Deleting one that succeeded changes nothing for its dependents.
    h.submit(stage("ns/x", &[]));
    h.submit(stage("ns/y", &["ns/x"]));
    h.settle();
    finish(&mut h, "ns/x", true);
    h.apply(ClusterEvent::JobDeleted { job: "ns/x".into() })
        .unwrap();
    assert_eq!(started(&h.cycle()), vec!["ns/y"]);
}

#[test]
fn a_missing_dependency_waits_then_fails_after_the_timeout() {
    let mut h = Harness::with(EngineConfig {
        dependency_timeout: Span(60_000),
        ..Default::default()
    });
    h.node(node("a").build());
    h.submit(stage("ns/late", &["ns/never"]));
    h.submit(stage("ns/after", &["ns/late"]));
    h.submit(stage("ns/patient", &["ns/soon"]));
    let d = h.cycle();
    assert!(started(&d).is_empty());
    let missing = Reason::DependencyMissing {
        jobs: vec!["ns/never".into()],
    };
    assert_eq!(
        h.engine.view().job("ns/late").unwrap().reason,
        Some(missing.clone())
    );
    // A name no job has may be a mistake: a decision says so, with the names. ns/after waits
    // on a job that exists, and gets none.
    assert_eq!(
        unschedulable(&d),
        BTreeMap::from([
            ("ns/late".to_string(), missing),
            (
                "ns/patient".to_string(),
                Reason::DependencyMissing {
                    jobs: vec!["ns/soon".into()]
                }
            ),
        ])
    );
    // ns/soon appears in time: from then on the job waits for it to succeed.
    h.submit(stage("ns/soon", &[]));
    assert_eq!(
        h.engine.view().job("ns/patient").unwrap().reason,
        Some(Reason::WaitingForDependencies {
            jobs: vec!["ns/soon".into()]
        })
    );
    h.settle();
    finish(&mut h, "ns/soon", true);
    h.settle();
    assert_eq!(h.bound("ns/patient"), 1);
    // The harness clock moves 1 s per cycle: run past the 60 s timeout.
    let mut all = BTreeMap::new();
    for _ in 0..70 {
        all.extend(failed(&h.cycle()));
    }
    assert_eq!(
        all["ns/late"],
        Reason::DependencyMissing {
            jobs: vec!["ns/never".into()]
        }
    );
    assert_eq!(
        all["ns/after"],
        Reason::DependencyFailed {
            dependency: "ns/late".into(),
            deleted: false
        }
    );
    assert!(!all.contains_key("ns/patient"));
}

#[test]
fn a_cycle_is_refused_naming_every_job_and_nothing_else_is_disturbed() {
    let mut h = cluster();
    h.submit(stage("ns/a", &["ns/c"]));
    h.submit(stage("ns/b", &["ns/a"]));
    h.submit(stage("ns/ok", &[]));
    let before = h.engine.view().jobs().count();
    let err = h
        .apply(ClusterEvent::JobSubmitted(stage("ns/c", &["ns/b"])))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "dependency cycle: ns/c -> ns/a -> ns/b -> ns/c"
    );
    assert!(matches!(err, EventError::DependencyCycle(_)));
    assert_eq!(h.engine.view().jobs().count(), before);
    assert_eq!(started(&h.cycle()), vec!["ns/ok"]);
    // ns/c without the closing edge is admitted, and the chain runs.
    h.submit(stage("ns/c", &[]));
    h.settle();
    assert_eq!(h.bound("ns/c"), 1);
}

#[test]
fn bad_dependencies_are_invalid_jobs_named_clearly() {
    let mut h = cluster();
    h.submit(stage("ns/self", &["ns/self"]));
    h.submit(stage("ns/twice", &["ns/a", "ns/a"]));
    h.submit(stage("ns/far", &["other/a"]));
    h.submit(stage("ns/blank", &[""]));
    let d = h.cycle();
    let reasons: BTreeMap<String, String> = d
        .iter()
        .filter_map(|d| match d {
            Decision::MarkUnschedulable {
                job,
                reason: Reason::InvalidJob(e),
            } => Some((job.clone(), e.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(reasons["ns/self"], "job ns/self: depends on itself");
    assert_eq!(
        reasons["ns/twice"],
        "job ns/twice: dependency \"ns/a\" is empty or named twice"
    );
    assert_eq!(
        reasons["ns/far"],
        "job ns/far: dependency other/a is in another namespace"
    );
    assert!(matches!(
        h.engine.view().job("ns/blank").unwrap().reason,
        Some(Reason::InvalidJob(JobError::BadDependency { .. }))
    ));
    assert!(started(&d).is_empty());
}

/// A small virtual-time loop: every pod runs for its declared duration. Returns the makespan.
fn makespan(config: EngineConfig, jobs: &[Job], slots: i64) -> u64 {
    let mut h = Harness::with(config);
    h.node(node("n").cpu(slots).build());
    for j in jobs {
        h.submit(j.clone());
    }
    let durations: BTreeMap<String, u64> = jobs
        .iter()
        .map(|j| (j.name.clone(), j.tasks[0].pod.duration.unwrap().0))
        .collect();
    let mut now = 0u64;
    let mut running: BinaryHeap<Reverse<(u64, String, u32)>> = BinaryHeap::new();
    loop {
        let out = h.engine.cycle(Time(now));
        for d in &out.decisions {
            if let Decision::BindGang { job, bindings } = d {
                for b in bindings {
                    h.apply(ClusterEvent::PodBound {
                        pod: pod(job, b.task, b.index),
                        node: b.node.clone(),
                    })
                    .unwrap();
                    running.push(Reverse((now + durations[job], job.clone(), b.index)));
                }
            }
        }
        let Some(Reverse((t, job, index))) = running.pop() else {
            break;
        };
        now = t;
        h.apply(ClusterEvent::PodFinished {
            pod: pod(&job, 0, index),
            succeeded: true,
        })
        .unwrap();
    }
    assert!(
        h.engine
            .view()
            .jobs()
            .all(|j| j.phase == JobPhase::Succeeded)
    );
    now
}

#[test]
fn the_critical_path_goes_first_and_shortens_the_makespan() {
    // Two slots. Four independent 10 s jobs were submitted before a three-stage pipeline of
    // 10 s stages. FIFO runs the independents first and the pipeline after them (50 s); with
    // the critical path first, the pipeline's stages overlap with the independents (40 s).
    let ten = Span(10_000);
    let mut jobs = Vec::new();
    for i in 0..4 {
        let mut j = job(&format!("ns/solo{i}"))
            .task("t", 1, 1000)
            .submitted(0)
            .build();
        j.tasks[0].pod.duration = Some(ten);
        jobs.push(j);
    }
    for (name, deps) in [
        ("ns/p1", vec![]),
        ("ns/p2", vec!["ns/p1"]),
        ("ns/p3", vec!["ns/p2"]),
    ] {
        let mut j = with_deps(job(name).task("t", 1, 1000).submitted(1).build(), &deps);
        j.tasks[0].pod.duration = Some(ten);
        jobs.push(j);
    }
    let fifo = makespan(
        EngineConfig {
            critical_path: false,
            ..Default::default()
        },
        &jobs,
        2,
    );
    let cp = makespan(EngineConfig::default(), &jobs, 2);
    println!("pipeline makespan: FIFO {fifo} ms, critical path first {cp} ms");
    assert_eq!((fifo, cp), (50_000, 40_000));
}

/// A random DAG over `n` jobs: job i depends on a few of the jobs before it.
fn arb_dag(max: usize) -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<usize>, BTreeSet<usize>)> {
    (2usize..max).prop_flat_map(|n| {
        (
            (0..n)
                .map(|i| prop::collection::btree_set(0..i.max(1), 0..=(i.min(3))))
                .collect::<Vec<_>>(),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            prop::collection::btree_set(0..n, 0..=(n / 10)),
        )
            .prop_map(move |(deps, order, fails)| {
                let deps = deps
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| d.into_iter().filter(|&x| x < i).collect())
                    .collect();
                (deps, order, fails)
            })
    })
}

fn name(i: usize) -> String {
    format!("ns/j{i:04}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Jobs submitted in random order, some of whose pods fail: no job starts before all its
    /// dependencies succeeded, and exactly the transitive dependents of a failed job fail.
    #[test]
    fn dependency_order_and_failure_propagation_hold_on_random_dags((deps, order, fails) in arb_dag(400)) {
        let n = deps.len();
        let mut h = Harness::new();
        h.node(node("big").cpu(100_000).pods(100_000).build());
        for &i in &order {
            let d: Vec<String> = deps[i].iter().map(|&x| name(x)).collect();
            let refs: Vec<&str> = d.iter().map(String::as_str).collect();
            h.submit(with_deps(job(&name(i)).task("t", 1, 10).build(), &refs));
        }
        let mut succeeded = BTreeSet::new();
        let mut ended_failed: BTreeMap<String, Reason> = BTreeMap::new();
        for _ in 0..(4 * n + 10) {
            let d = h.cycle();
            if d.is_empty() { break; }
            for job in started(&d) {
                let i: usize = job[4..].parse().unwrap();
                for &x in &deps[i] {
                    prop_assert!(succeeded.contains(&x), "{job} started before {} succeeded", name(x));
                }
            }
            ended_failed.extend(failed(&d));
            h.carry_out(&d);
            for job in started(&d) {
                let i: usize = job[4..].parse().unwrap();
                let ok = !fails.contains(&i);
                h.apply(ClusterEvent::PodFinished { pod: pod(&job, 0, 0), succeeded: ok }).unwrap();
                if ok { succeeded.insert(i); }
            }
        }
        // Independently: a job must fail iff it or an ancestor was made to fail.
        let mut doomed = vec![false; n];
        for i in 0..n {
            doomed[i] = fails.contains(&i) || deps[i].iter().any(|&x| doomed[x]);
        }
        for (i, &doomed) in doomed.iter().enumerate() {
            let phase = h.engine.view().job(&name(i)).unwrap().phase;
            if doomed {
                prop_assert_eq!(phase, JobPhase::Failed, "{} should have failed", name(i));
                if !fails.contains(&i) {
                    let Some(Reason::DependencyFailed { dependency, .. }) = ended_failed.get(&name(i)) else {
                        panic!("{} failed without a dependency cause", name(i));
                    };
                    let a: usize = dependency[4..].parse().unwrap();
                    prop_assert!(fails.contains(&a), "cause {dependency} is a job that failed itself");
                }
            } else {
                prop_assert_eq!(phase, JobPhase::Succeeded, "{} should have succeeded", name(i));
            }
        }
    }

    /// Random edges in any direction, submitted one job at a time: a submission is refused iff
    /// it closes a cycle among the admitted jobs' edges, checked by an independent search.
    #[test]
    fn every_cycle_is_detected_and_nothing_else_is_refused(
        edges in prop::collection::vec(prop::collection::btree_set(0usize..60, 0..3), 2..60),
    ) {
        let n = edges.len();
        let mut h = cluster();
        // dependent -> dependencies, for admitted jobs only.
        let mut admitted: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, d) in edges.iter().enumerate() {
            let d: Vec<usize> = d.iter().copied().filter(|&x| x < n && x != i).collect();
            // i closes a cycle iff some dependency of i already (transitively) depends on i.
            let mut stack: Vec<usize> = d.clone();
            let mut seen = BTreeSet::new();
            let mut cycle = false;
            while let Some(x) = stack.pop() {
                if x == i { cycle = true; break; }
                if seen.insert(x) {
                    stack.extend(admitted.get(&x).into_iter().flatten().copied());
                }
            }
            let names: Vec<String> = d.iter().map(|&x| name(x)).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let result = h.apply(ClusterEvent::JobSubmitted(stage(&name(i), &refs)));
            prop_assert_eq!(result.is_err(), cycle, "job {} deps {:?}: {:?}", i, d, result);
            if !cycle {
                admitted.insert(i, d);
            }
        }
    }
}
