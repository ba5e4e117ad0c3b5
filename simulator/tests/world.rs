//! The simulated world on the production engine: golden decision logs, determinism, the
//! baseline's barrier model, and property tests over random small traces that check what the
//! decision log must show (no node over capacity at any instant, gangs all or nothing, every
//! job accounted for; DAG order and queue capability once the engine has them).
//!
//! After merging with an engine that has the DAG gate and queue tree, the golden logs change
//! (dependents wait for their dependencies): regenerate them with `PHALANX_BLESS=1` and review.
//!
//! Golden files live in `tests/golden/`: `NAME.trace.jsonl` in, `NAME.decisions.jsonl` (and
//! `NAME.baseline.jsonl`) expected. Regenerate them with `PHALANX_BLESS=1 cargo test -p
//! phalanx-simulator --test world` and review the diff.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use phalanx_model::{ResourceId, Resources, Span, Time};
use phalanx_simulator::generator::{GenSpec, generate};
use phalanx_simulator::report::Summary;
use phalanx_simulator::trace::{self, Input, Scenario};
use phalanx_simulator::world::{self, Mode, RunStats, SimConfig};
use proptest::prelude::*;
use serde_json::Value;

fn run(sc: &Scenario, mode: Mode) -> (RunStats, Vec<u8>) {
    let mut log = Vec::new();
    let cfg = SimConfig {
        mode,
        ..SimConfig::default()
    };
    let stats = world::run(sc, &cfg, &mut log, &mut |_| {}).expect("in-memory logs write");
    (stats, log)
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn check_golden(name: &str, mode: Mode, suffix: &str) {
    let dir = golden_dir();
    let sc = trace::read_file(&dir.join(format!("{name}.trace.jsonl"))).unwrap();
    let (stats, log) = run(&sc, mode);
    let mut violations = check_log(&sc, &log, Span(1000));
    if mode == Mode::Baseline {
        // The baseline dissolves gangs on purpose.
        violations.retain(|m| !m.contains("gang "));
    }
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(stats.event_errors.is_empty(), "{:?}", stats.event_errors);
    let path = dir.join(format!("{name}.{suffix}.jsonl"));
    if std::env::var_os("PHALANX_BLESS").is_some() {
        std::fs::write(&path, &log).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with PHALANX_BLESS=1", path.display()));
    let got = String::from_utf8(log).unwrap();
    if want != got {
        for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
            assert_eq!(
                w,
                g,
                "{}: first difference on line {}",
                path.display(),
                i + 1
            );
        }
        assert_eq!(
            want.lines().count(),
            got.lines().count(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn golden_gangs() {
    check_golden("gangs", Mode::Gang, "decisions");
}

#[test]
fn golden_gangs_baseline() {
    check_golden("gangs", Mode::Baseline, "baseline");
}

#[test]
fn golden_node_failure() {
    check_golden("node-failure", Mode::Gang, "decisions");
}

#[test]
fn same_input_same_decision_log() {
    let sc = generate(&GenSpec::new(60, 3000, 11));
    let (a, la) = run(&sc, Mode::Gang);
    let (b, lb) = run(&sc, Mode::Gang);
    assert_eq!(a.decision_log_sha256, b.decision_log_sha256);
    assert_eq!(la, lb);
    assert!(a.decisions > 3000, "binds and finishes are logged");
    let v = check_log(&sc, &la, Span(1000));
    assert!(v.is_empty(), "{v:#?}");
    // A different seed gives a different log.
    let (c, _) = run(&generate(&GenSpec::new(60, 3000, 12)), Mode::Gang);
    assert_ne!(a.decision_log_sha256, c.decision_log_sha256);
}

#[test]
fn every_job_is_accounted_for() {
    let sc = generate(&GenSpec::embedded());
    let (stats, log) = run(&sc, Mode::Gang);
    let cap = sc
        .initial_nodes()
        .fold(Resources::ZERO, |a, n| a + n.allocatable);
    let s = Summary::new(&stats, &sc.queues, &sc.table, &cap, 1.0);
    assert_eq!(
        s.jobs as u64,
        s.jobs_succeeded
            + s.jobs_failed
            + s.jobs_deleted
            + s.jobs_pending_at_end
            + s.jobs_running_at_end
    );
    assert!(
        s.engine_event_errors.is_empty(),
        "{:?}",
        s.engine_event_errors
    );
    let ends = count_type(&log, "job_end");
    assert_eq!(ends, s.jobs_succeeded + s.jobs_failed + s.jobs_deleted);
    assert_eq!(count_type(&log, "submit"), s.jobs as u64);
    assert_eq!(count_type(&log, "node_down"), 1);
    let v = check_log(&sc, &log, Span(1000));
    assert!(v.is_empty(), "{v:#?}");
}

fn count_type(log: &[u8], t: &str) -> u64 {
    log.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter(|l| serde_json::from_slice::<Value>(l).unwrap()["type"].as_str() == Some(t))
        .count() as u64
}

/// A partial gang in the baseline holds capacity without progress; Phalanx holds none.
#[test]
fn baseline_holds_capacity_in_incomplete_gangs() {
    // Two 3-pod gangs of 2 cpu on two 4-cpu nodes: the baseline places pods of both
    // (2 + 2), neither reaches its barrier, and both wait forever.
    let text = r#"{"kind":"node","name":"n1","resources":{"cpu":4}}
{"kind":"node","name":"n2","resources":{"cpu":4}}
{"kind":"job","name":"a","tasks":[{"name":"w","replicas":3,"requests":{"cpu":2},"duration":10}]}
{"kind":"job","name":"b","tasks":[{"name":"w","replicas":3,"requests":{"cpu":2},"duration":10}]}
"#;
    let sc = trace::read(text.as_bytes(), "deadlock.jsonl").unwrap();
    let (gang, _) = run(&sc, Mode::Gang);
    assert!(
        gang.jobs
            .iter()
            .all(|j| j.state == world::JobEnd::Succeeded)
    );
    assert_eq!(gang.incomplete_gang_resource_s.iter().sum::<f64>(), 0.0);
    let (base, log) = run(&sc, Mode::Baseline);
    // FIFO, pod by pod: a's 3 pods fit, b gets the fourth slot and holds 2 cpu at its barrier
    // until a finishes at 10 s; then b's other pods arrive and it runs.
    assert!(
        base.jobs
            .iter()
            .all(|j| j.state == world::JobEnd::Succeeded)
    );
    assert_eq!(count_type(&log, "bind"), 6);
    let cpu = base
        .series
        .lanes
        .iter()
        .position(|l| *l == ResourceId::CPU)
        .unwrap();
    assert_eq!(base.incomplete_gang_resource_s[cpu], 2000.0 * 10.0);
}

/// Replays a decision log against the scenario and lists every violation of the safety
/// properties. `period` is how long the world may take to carry out the engine's reaction to a
/// node failure (one cycle).
fn check_log(sc: &Scenario, log: &[u8], period: Span) -> Vec<String> {
    let mut out = Vec::new();
    let mut alloc: HashMap<String, Resources> = HashMap::new();
    let mut caps: HashMap<String, Resources> = HashMap::new();
    for (_, i) in &sc.events {
        if let Input::Node(n) = i {
            caps.insert(n.name.clone(), n.allocatable);
        }
    }
    let jobs: HashMap<&str, usize> = sc
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.job.name.as_str(), i))
        .collect();
    let req = |j: usize, task: &str| {
        let t = sc.jobs[j]
            .job
            .tasks
            .iter()
            .find(|t| t.name == task)
            .unwrap();
        let mut r = t.pod.requests;
        r.set(ResourceId::PODS, 1);
        r
    };
    #[derive(Default, Clone)]
    struct J {
        bound: BTreeMap<(String, u64), String>,
        done: u64,
        ended: bool,
        broken_at: Option<Time>,
    }
    let mut st: Vec<J> = vec![J::default(); sc.jobs.len()];
    let mut now = Time::ZERO;
    let lines: Vec<Value> = log
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let end_instant = |st: &mut Vec<J>, now: Time, out: &mut Vec<String>| {
        for (i, j) in st.iter_mut().enumerate() {
            if j.ended || j.bound.is_empty() {
                j.broken_at = None;
                continue;
            }
            let job = &sc.jobs[i].job;
            // As the audit counts it: pods that ended on their own count towards the gang.
            let need = (job.min_member as u64).min(job.replicas());
            if (j.bound.len() as u64) + j.done < need {
                match j.broken_at {
                    Some(t) if now <= t + period => {}
                    _ => out.push(format!(
                        "{now}: gang {} has {} of {need} pods bound",
                        job.name,
                        j.bound.len()
                    )),
                }
            } else {
                j.broken_at = None;
            }
        }
    };
    for l in &lines {
        let t = Time::from_secs_f64(l["time"].as_f64().unwrap());
        if t < now {
            out.push(format!("time went backwards at {l}"));
        }
        if t > now {
            end_instant(&mut st, now, &mut out);
            now = t;
        }
        let job = l["job"].as_str().and_then(|j| jobs.get(j).copied());
        let key = || {
            (
                l["task"].as_str().unwrap().to_string(),
                l["index"].as_u64().unwrap(),
            )
        };
        match l["type"].as_str().unwrap() {
            "bind" => {
                let j = job.unwrap();
                let node = l["node"].as_str().unwrap().to_string();
                let r = req(j, l["task"].as_str().unwrap());
                let a = alloc.entry(node.clone()).or_default();
                *a += r;
                if !a.fits_in(&caps[&node]) {
                    out.push(format!("{now}: node {node} over capacity after {l}"));
                }
                if st[j].bound.insert(key(), node).is_some() {
                    out.push(format!("{now}: pod bound twice: {l}"));
                }
            }
            "finish" | "evict" => {
                let j = job.unwrap();
                match st[j].bound.remove(&key()) {
                    Some(node) => {
                        *alloc.get_mut(&node).unwrap() -= req(j, l["task"].as_str().unwrap());
                    }
                    None => out.push(format!("{now}: {l} of a pod not bound")),
                }
                if l["type"] == "finish" && l["succeeded"] == true {
                    st[j].done += 1;
                }
                if l["reason"] == "node_down" {
                    st[j].broken_at = Some(now);
                }
            }
            "job_end" => {
                let j = job.unwrap();
                if st[j].ended {
                    out.push(format!("{now}: job ended twice: {l}"));
                }
                st[j].ended = true;
            }
            _ => {}
        }
    }
    end_instant(&mut st, now, &mut out);
    out
}

/// Checks the DAG order: no pod of a job is bound before all its dependencies succeeded.
fn dag_violations(sc: &Scenario, log: &[u8]) -> Vec<String> {
    let mut succeeded: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for l in log.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(l).unwrap();
        let job = v["job"].as_str().unwrap_or("");
        match v["type"].as_str().unwrap() {
            "job_end" if v["state"] == "succeeded" => {
                succeeded.insert(job.to_string());
            }
            "bind" => {
                let j = sc.jobs.iter().find(|j| j.job.name == job).unwrap();
                for d in &j.job.depends_on {
                    if !succeeded.contains(d) {
                        out.push(format!("{job} bound before its dependency {d} succeeded"));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Checks queue capability: the requests bound in a queue never exceed its capability.
fn capability_violations(sc: &Scenario, log: &[u8]) -> Vec<String> {
    let caps: HashMap<&str, Resources> = sc
        .queues
        .iter()
        .filter_map(|q| q.capability.map(|c| (q.name.as_str(), c)))
        .collect();
    let mut used: HashMap<String, Resources> = HashMap::new();
    let mut out = Vec::new();
    for l in log.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(l).unwrap();
        let Some(job) = v["job"].as_str() else {
            continue;
        };
        let j = &sc.jobs.iter().find(|j| j.job.name == job).unwrap().job;
        let Some(task) = v["task"].as_str() else {
            continue;
        };
        let mut r = j
            .tasks
            .iter()
            .find(|t| t.name == task)
            .unwrap()
            .pod
            .requests;
        r.set(ResourceId::PODS, 0);
        let u = used.entry(j.queue.clone()).or_default();
        match v["type"].as_str().unwrap() {
            "bind" => {
                *u += r;
                // A capability limits only the resources it names (a zero lane is unlimited).
                if let Some(c) = caps.get(j.queue.as_str())
                    && c.iter_nonzero().any(|(id, cap)| u.get(id) > cap)
                {
                    out.push(format!("queue {} over its capability at {v}", j.queue));
                }
            }
            "finish" | "evict" => *u -= r,
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone)]
struct RJob {
    time: u32,
    tasks: Vec<(u32, u32, u32, u32)>, // replicas, cpu, gpu, duration
    min: u32,
    fails: bool,
    dep: Option<usize>,
    queue: usize,
}

fn trace_text(nodes: &[(u32, u32)], jobs: &[RJob], downs: &[(u32, usize, u32)]) -> String {
    let mut s = String::new();
    s.push_str(
        "{\"kind\":\"queue\",\"name\":\"root.q0\",\"weight\":2,\"capability\":{\"cpu\":6}}\n",
    );
    s.push_str("{\"kind\":\"queue\",\"name\":\"root.q1\",\"weight\":1}\n");
    for (i, (cpu, gpu)) in nodes.iter().enumerate() {
        s.push_str(&format!(
            "{{\"kind\":\"node\",\"name\":\"n{i}\",\"resources\":{{\"cpu\":{cpu},\"nvidia.com/gpu\":{gpu}}}}}\n"
        ));
    }
    for (i, j) in jobs.iter().enumerate() {
        let total: u32 = j.tasks.iter().map(|t| t.0).sum();
        let tasks: Vec<String> = j
            .tasks
            .iter()
            .enumerate()
            .map(|(k, (r, cpu, gpu, d))| {
                format!(
                    "{{\"name\":\"t{k}\",\"replicas\":{r},\"requests\":{{\"cpu\":{cpu},\"nvidia.com/gpu\":{gpu}}},\"duration\":{d}{}}}",
                    if j.fails && k == 0 { ",\"outcome\":\"failed\"" } else { "" }
                )
            })
            .collect();
        let dep = match j.dep {
            Some(d) if d < i => format!(",\"depends_on\":[\"j{d}\"]"),
            _ => String::new(),
        };
        s.push_str(&format!(
            "{{\"kind\":\"job\",\"time\":{},\"name\":\"j{i}\",\"queue\":\"root.q{}\",\"min_member\":{}{dep},\"tasks\":[{}]}}\n",
            j.time,
            j.queue,
            j.min.clamp(1, total),
            tasks.join(",")
        ));
    }
    for (t, n, back) in downs {
        let n = n % nodes.len();
        s.push_str(&format!(
            "{{\"kind\":\"node_down\",\"time\":{t},\"name\":\"n{n}\"}}\n"
        ));
        s.push_str(&format!(
            "{{\"kind\":\"node_up\",\"time\":{},\"name\":\"n{n}\"}}\n",
            t + back
        ));
    }
    s
}

fn rjob() -> impl Strategy<Value = RJob> {
    (
        0u32..60,
        prop::collection::vec((1u32..4, 0u32..4, 0u32..3, 1u32..40), 1..3),
        1u32..8,
        prop::bool::weighted(0.1),
        prop::option::weighted(0.3, 0usize..8),
        0usize..2,
    )
        .prop_map(|(time, tasks, min, fails, dep, queue)| RJob {
            time,
            tasks,
            min,
            fails,
            dep,
            queue,
        })
}

fn random_trace() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((2u32..9, prop::sample::select(vec![0u32, 0, 4])), 1..5),
        prop::collection::vec(rjob(), 1..10),
        prop::collection::vec((1u32..80, 0usize..5, 1u32..40), 0..2),
    )
        .prop_map(|(nodes, jobs, downs)| trace_text(&nodes, &jobs, &downs))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// No node over capacity at any instant, gangs all or nothing (a gang hit by a node
    /// failure is undone within one cycle), no pod bound twice, every job ends at most once,
    /// the engine refuses no event, and the run is deterministic.
    #[test]
    fn decision_logs_keep_the_safety_properties(text in random_trace()) {
        let sc = trace::read(text.as_bytes(), "random.jsonl").unwrap();
        for mode in [Mode::Gang, Mode::Baseline] {
            let (stats, log) = run(&sc, mode);
            prop_assert!(stats.event_errors.is_empty(), "{:?}\n{}", stats.event_errors, text);
            let mut v = check_log(&sc, &log, Span(1000));
            if mode == Mode::Baseline {
                // Baseline dissolves gangs on purpose: only capacity and double binds count.
                v.retain(|m| !m.contains("gang "));
            }
            prop_assert!(v.is_empty(), "{:?} {:#?}\n{}\n{}", mode, v, text, String::from_utf8_lossy(&log));
            let (again, _) = run(&sc, mode);
            prop_assert_eq!(&stats.decision_log_sha256, &again.decision_log_sha256);
        }
    }
}

/// DAG order in the decision log: no job is bound before every job it depends on has ended
/// successfully.
#[test]
fn no_job_runs_before_its_dependencies() {
    let runner = proptest::test_runner::TestRunner::default();
    let mut runner = runner;
    runner
        .run(&random_trace(), |text| {
            let sc = trace::read(text.as_bytes(), "random.jsonl").unwrap();
            let (_, log) = run(&sc, Mode::Gang);
            let v = dag_violations(&sc, &log);
            prop_assert!(v.is_empty(), "{v:#?}\n{text}");
            Ok(())
        })
        .unwrap();
}

/// Queue capability in the decision log: at no instant does a queue, at any level, hold more
/// than its capability. (It found an engine bug when first run: pods placed beyond
/// `min_member` across several nodes of one class were checked against a budget not yet counted
/// down; `tests/queues.rs` keeps the smallest case.)
#[test]
fn capability_is_never_exceeded() {
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&random_trace(), |text| {
            let sc = trace::read(text.as_bytes(), "random.jsonl").unwrap();
            let (_, log) = run(&sc, Mode::Gang);
            let v = capability_violations(&sc, &log);
            prop_assert!(v.is_empty(), "{v:#?}\n{text}");
            Ok(())
        })
        .unwrap();
}

/// The reader never panics on arbitrary lines, and rejects what it cannot read with a
/// file:line error.
#[test]
fn reader_survives_garbage() {
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(
            &prop::collection::vec(
                prop_oneof![
                    ".{0,80}",
                    Just(r#"{"kind":"job","name":"x","tasks":[]}"#.to_string()),
                    Just(r#"{"kind":"node","name":"n","resources":{"cpu":"-1"}}"#.to_string()),
                    Just(r#"{"kind":"node","name":"n","resources":{"cpu":1e400}}"#.to_string()),
                    Just(r#"{"kind":"job","time":"soon","name":"x","tasks":[]}"#.to_string()),
                    Just(r#"{"kind":"queue","name":"root.a","weight":0}"#.to_string()),
                    Just(r#"{"kind":"node","name":"n","resources":{"cpu":2}}"#.to_string()),
                ],
                0..6,
            ),
            |lines| {
                let text = lines.join("\n");
                if let Err(e) = trace::read(text.as_bytes(), "fuzz.jsonl") {
                    prop_assert!(e.to_string().starts_with("fuzz.jsonl:"), "{e}");
                }
                Ok(())
            },
        )
        .unwrap();
}

/// A job that arrives before a job it depends on is handed to the engine when that one
/// arrives, so the engine never sees a dependency on a job it does not know.
#[test]
fn dependents_wait_for_their_dependencies_to_arrive() {
    let text = r#"{"kind":"node","name":"n1","resources":{"cpu":4}}
{"kind":"job","time":0,"name":"late-child","depends_on":["parent"],"tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":5}]}
{"kind":"job","time":10,"name":"parent","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":5}]}
{"kind":"job","time":1,"name":"orphan","depends_on":["gone"],"tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":5}]}
{"kind":"job","time":20,"name":"gone","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":5}]}
{"kind":"job_delete","time":2,"name":"gone"}
"#;
    let sc = trace::read(text.as_bytes(), "order.jsonl").unwrap();
    let (stats, log) = run(&sc, Mode::Gang);
    assert!(stats.event_errors.is_empty(), "{:?}", stats.event_errors);
    let log = String::from_utf8(log).unwrap();
    let submits: Vec<&str> = log.lines().filter(|l| l.contains("\"submit\"")).collect();
    assert_eq!(
        submits,
        [
            r#"{"time":2.0,"type":"submit","job":"orphan"}"#,
            r#"{"time":10.0,"type":"submit","job":"parent"}"#,
            r#"{"time":10.0,"type":"submit","job":"late-child"}"#,
        ]
    );
    // Its wait counts from its arrival at 0.
    let child = sc
        .jobs
        .iter()
        .position(|j| j.job.name == "late-child")
        .unwrap();
    assert_eq!(stats.jobs[child].submit, Time::ZERO);
}

/// Goodput, work thrown away by evictions and stranded GPUs, worked out by hand on a trace
/// small enough to follow: one node of 4 CPUs and 2 GPUs; a GPU job that runs 100 s; a CPU
/// job that runs 50 s, is evicted when its node fails at 40 s, and runs again for 50 s after
/// the node returns at 60 s.
#[test]
fn goodput_evicted_work_and_stranded_gpus_add_up_by_hand() {
    let text = r#"{"kind":"node","name":"n1","resources":{"cpu":4,"memory":"16Gi","nvidia.com/gpu":2}}
{"kind":"job","time":0,"name":"gpu","tasks":[{"name":"w","replicas":1,"requests":{"cpu":2,"memory":"1Gi","nvidia.com/gpu":1},"duration":100}]}
{"kind":"job","time":0,"name":"cpu","tasks":[{"name":"w","replicas":1,"requests":{"cpu":2,"memory":"1Gi"},"duration":50}]}
{"kind":"node_down","time":40,"name":"n1"}
{"kind":"node_up","time":60,"name":"n1"}
"#;
    let sc = trace::read(text.as_bytes(), "by-hand.jsonl").unwrap();
    let (stats, _) = run(&sc, Mode::Gang);
    let lane = |id: ResourceId| stats.series.lanes.iter().position(|l| *l == id).unwrap();
    let (cpu, gpu) = (lane(ResourceId::CPU), lane(ResourceId::GPU));
    // Both pods bound at 0 and evicted at 40; rebound at 60 (or the first cycle after it).
    assert_eq!(stats.pods_evicted, 2);
    assert_eq!(stats.work_evicted_s[cpu], 2.0 * 2000.0 * 40.0);
    assert_eq!(stats.work_evicted_s[gpu], 40.0);
    let restart = stats.jobs[1].end.unwrap().as_secs_f64() - 50.0;
    assert!((60.0..62.0).contains(&restart), "rebound at {restart}");
    // Work done: the second runs only (the first runs were thrown away).
    assert_eq!(stats.work_done_s[cpu], 2000.0 * 100.0 + 2000.0 * 50.0);
    assert_eq!(stats.work_done_s[gpu], 100.0);
    // While both run, their 4 CPUs fill the node and its second GPU is stranded (40 s before
    // the failure, 50 s after); while only the GPU job runs, 2 CPUs are free: not stranded.
    assert_eq!(stats.stranded_gpu_s, 90.0);
    let summary = Summary::new(&stats, &sc.queues, &sc.table, &Resources::ZERO, 1.0);
    assert_eq!(summary.goodput_resource, "nvidia.com/gpu");
    let want = 100.0 / stats.cap_integral[gpu];
    assert!(
        (summary.goodput - want).abs() < 1e-12,
        "{}",
        summary.goodput
    );
    assert_eq!(
        summary.stranded_gpu_share,
        Some(90.0 / stats.cap_integral[gpu])
    );
    assert_eq!(summary.pods_evicted, 2);
}

/// A GPU left free on a node whose CPUs are taken is stranded for as long as they are.
#[test]
fn gpus_beside_exhausted_cpus_are_stranded() {
    let text = r#"{"kind":"node","name":"n1","resources":{"cpu":4,"memory":"16Gi","nvidia.com/gpu":2}}
{"kind":"job","time":0,"name":"gpu","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1,"memory":"1Gi","nvidia.com/gpu":1},"duration":100}]}
{"kind":"job","time":0,"name":"cpu","tasks":[{"name":"w","replicas":1,"requests":{"cpu":3,"memory":"1Gi"},"duration":30}]}
"#;
    let sc = trace::read(text.as_bytes(), "stranded.jsonl").unwrap();
    let (stats, _) = run(&sc, Mode::Gang);
    // 30 s with 1 GPU free and no CPU left for the smallest GPU pod (1 CPU).
    assert_eq!(stats.stranded_gpu_s, 30.0);
    let s = Summary::new(&stats, &sc.queues, &sc.table, &Resources::ZERO, 1.0);
    let gpu = stats
        .series
        .lanes
        .iter()
        .position(|l| *l == ResourceId::GPU)
        .unwrap();
    assert_eq!(s.stranded_gpu_share, Some(30.0 / stats.cap_integral[gpu]));
}

/// FIFO keeps gangs whole and ignores tenant queues and priorities: a later high-priority job
/// of another queue does not pass an earlier one.
#[test]
fn fifo_keeps_gangs_whole_in_arrival_order() {
    let text = r#"{"kind":"queue","name":"root.a","weight":1}
{"kind":"queue","name":"root.b","weight":100}
{"kind":"node","name":"n1","resources":{"cpu":4,"memory":"16Gi"}}
{"kind":"job","time":0,"name":"first","queue":"root.a","tasks":[{"name":"w","replicas":4,"requests":{"cpu":1},"duration":10}]}
{"kind":"job","time":0.1,"name":"early","queue":"root.a","tasks":[{"name":"w","replicas":4,"requests":{"cpu":1},"duration":10}]}
{"kind":"job","time":0.2,"name":"late","queue":"root.b","priority":100,"tasks":[{"name":"w","replicas":4,"requests":{"cpu":1},"duration":10}]}
"#;
    let sc = trace::read(text.as_bytes(), "fifo.jsonl").unwrap();
    let (stats, log) = run(&sc, Mode::Fifo);
    assert!(check_log(&sc, &log, Span(1000)).is_empty());
    let start = |i: usize| stats.jobs[i].first_start.unwrap();
    assert!(
        start(0) < start(1) && start(1) < start(2),
        "{:?}",
        stats.jobs
    );
}

/// Jobs, GPU asks and the GPUs left at the end of a fill, on a cluster small enough to count
/// by hand: two nodes of 4 GPUs; jobs asking 1 and 3 GPUs and one asking none.
#[test]
fn a_fill_asks_up_to_its_ratio_and_counts_the_gpus_left() {
    use phalanx_simulator::whatif;
    let text = r#"{"kind":"node","name":"n1","resources":{"cpu":64,"memory":"256Gi","nvidia.com/gpu":4}}
{"kind":"node","name":"n2","resources":{"cpu":64,"memory":"256Gi","nvidia.com/gpu":4}}
{"kind":"job","time":0,"name":"one","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1,"nvidia.com/gpu":1},"duration":10}]}
{"kind":"job","time":5,"name":"three","depends_on":["one"],"tasks":[{"name":"w","replicas":1,"requests":{"cpu":1,"nvidia.com/gpu":3},"duration":10}]}
{"kind":"job","time":9,"name":"cpu","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":10}]}
{"kind":"node_down","time":20,"name":"n2"}
"#;
    let base = trace::read(text.as_bytes(), "fill.jsonl").unwrap();
    let gpus_of = |j: &phalanx_simulator::trace::SimJob| -> i64 {
        j.job
            .tasks
            .iter()
            .map(|t| t.pod.requests.get(ResourceId::GPU) * i64::from(t.replicas))
            .sum()
    };
    let gpus = |sc: &Scenario| -> i64 { sc.jobs.iter().map(gpus_of).sum() };
    for seed in 0..20 {
        let mut sc = base.clone();
        let filled = whatif::fill(&mut sc, 1.5, seed).unwrap();
        // Asks stop short of 1.5 × 8 = 12 GPUs, at most one 3-GPU job short.
        assert_eq!(filled.gpus, 8.0);
        assert_eq!(filled.gpus_asked, gpus(&sc) as f64);
        assert!((9.0..=12.0).contains(&filled.gpus_asked), "{filled:?}");
        assert_eq!(filled.jobs, sc.jobs.len());
        assert_eq!(filled.copies, sc.jobs.len() - 3);
        // One per second, never ending, no dependencies; names unique; the node failure gone.
        let mut names = BTreeSet::new();
        for (i, j) in sc.jobs.iter().enumerate() {
            assert_eq!(
                j.job.submit_time,
                Time::ZERO + Span::from_secs_f64(i as f64)
            );
            assert!(j.job.depends_on.is_empty());
            assert!(
                j.job
                    .tasks
                    .iter()
                    .all(|t| t.pod.duration.unwrap() > Span::from_secs_f64(1e9))
            );
            assert!(names.insert(j.job.name.clone()), "{} twice", j.job.name);
        }
        assert!(
            sc.events
                .iter()
                .all(|(_, e)| !matches!(e, Input::NodeDown(_)))
        );
        let last = sc.jobs.last().unwrap().job.submit_time;
        assert_eq!(sc.end, Some(last + Span::from_secs_f64(60.0)));
        // The same seed draws the same jobs.
        let mut again = base.clone();
        whatif::fill(&mut again, 1.5, seed).unwrap();
        let names_of = |s: &Scenario| {
            s.jobs
                .iter()
                .map(|j| j.job.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names_of(&sc), names_of(&again));

        let (stats, _) = run(&sc, Mode::Gang);
        assert!(stats.stopped);
        let s = Summary::new(&stats, &sc.queues, &sc.table, &Resources::ZERO, 1.0);
        let end = s.gpus_at_end.expect("a stopped fill reports its GPUs");
        assert_eq!(end.gpus, 8.0);
        assert_eq!(end.allocated_gpus + end.unallocated_gpus, 8.0);
        // Allocated is what the started jobs ask; with a job pending, neither node has room
        // for it, so each has at most 2 GPUs free.
        let started: i64 = (0..sc.jobs.len())
            .filter(|&i| stats.jobs[i].first_start.is_some())
            .map(|i| gpus_of(&sc.jobs[i]))
            .sum();
        assert_eq!(end.allocated_gpus, started as f64);
        if end.jobs_pending > 0 {
            assert!(end.unallocated_gpus <= 4.0, "{end:?}");
        }
        assert_eq!(end.allocated_share, end.allocated_gpus / 8.0);
        let pending = stats
            .jobs
            .iter()
            .filter(|j| j.first_start.is_none())
            .count();
        assert_eq!(end.jobs_pending, pending as u64);
        assert_eq!(end.stranded_gpus, 0.0, "CPUs are plentiful");
    }
}

/// A GPU left beside exhausted CPUs at the end of a fill is unallocated and stranded.
#[test]
fn a_fill_counts_gpus_stranded_at_its_end() {
    use phalanx_simulator::whatif;
    let text = r#"{"kind":"node","name":"n1","resources":{"cpu":4,"memory":"16Gi","nvidia.com/gpu":2}}
{"kind":"job","time":0,"name":"big","tasks":[{"name":"w","replicas":1,"requests":{"cpu":4,"nvidia.com/gpu":1},"duration":10}]}
"#;
    let mut sc = trace::read(text.as_bytes(), "fill-stranded.jsonl").unwrap();
    // Half the cluster's 2 GPUs: exactly the one job (a copy would pass the target).
    let filled = whatif::fill(&mut sc, 0.5, 7).unwrap();
    assert_eq!((filled.jobs, filled.copies, filled.gpus_asked), (1, 0, 1.0));
    let (stats, _) = run(&sc, Mode::Gang);
    let s = Summary::new(&stats, &sc.queues, &sc.table, &Resources::ZERO, 1.0);
    let end = s.gpus_at_end.unwrap();
    assert_eq!(end.time_s, 60.0);
    assert_eq!(
        (end.allocated_gpus, end.unallocated_gpus, end.stranded_gpus),
        (1.0, 1.0, 1.0)
    );
    assert_eq!((end.allocated_share, end.stranded_share), (0.5, 0.5));
    assert_eq!(end.jobs_pending, 0);
}

/// A fill that cannot be made says why.
#[test]
fn a_fill_that_cannot_be_made_says_why() {
    use phalanx_simulator::whatif;
    let gpu = r#"{"kind":"node","name":"n1","resources":{"cpu":4,"nvidia.com/gpu":2}}
{"kind":"job","time":0,"name":"a","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1,"nvidia.com/gpu":1},"duration":10}]}
"#;
    let cpu_only = r#"{"kind":"node","name":"n1","resources":{"cpu":4}}
{"kind":"job","time":0,"name":"a","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":10}]}
"#;
    let no_gpu_asks = r#"{"kind":"node","name":"n1","resources":{"cpu":4,"nvidia.com/gpu":2}}
{"kind":"job","time":0,"name":"a","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":10}]}
"#;
    let err = |text: &str, ratio: f64| {
        let mut sc = trace::read(text.as_bytes(), "t.jsonl").unwrap();
        whatif::fill(&mut sc, ratio, 1).unwrap_err().to_string()
    };
    assert!(err(gpu, 0.0).contains("above 0"), "{}", err(gpu, 0.0));
    assert!(err(gpu, f64::NAN).contains("above 0"));
    assert!(
        err(gpu, 0.1).contains("0.2 GPUs are fewer than any job"),
        "{}",
        err(gpu, 0.1)
    );
    assert!(err(cpu_only, 1.0).contains("no node at time zero has GPUs"));
    assert!(err(no_gpu_asks, 1.0).contains("no job of the workload asks for GPUs"));
}

/// Waits are queueing delay: from when a job became eligible (its dependencies succeeded), not
/// from its submission; a job whose dependency failed never became eligible.
#[test]
fn waits_count_from_eligibility_not_submission() {
    let text = r#"{"kind":"node","name":"n1","resources":{"cpu":4,"memory":"16Gi"}}
{"kind":"job","time":0,"name":"prep","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":100}]}
{"kind":"job","time":0,"name":"train","depends_on":["prep"],"tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":10}]}
{"kind":"job","time":0,"name":"bad","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":5,"outcome":"failed"}]}
{"kind":"job","time":0,"name":"after-bad","depends_on":["bad"],"tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":5}]}
"#;
    let sc = trace::read(text.as_bytes(), "eligible.jsonl").unwrap();
    let (stats, _) = run(&sc, Mode::Gang);
    let prep_end = stats.jobs[0].end.unwrap();
    assert_eq!(prep_end, Time::ZERO + Span::from_secs_f64(100.0));
    // train became eligible when prep succeeded, and started within a cycle period of it.
    assert_eq!(stats.jobs[1].eligible, Some(prep_end));
    let start = stats.jobs[1].first_start.unwrap();
    assert!(
        start.since(prep_end) <= Span::from_secs_f64(1.0),
        "{start:?}"
    );
    assert_eq!(stats.jobs[3].eligible, None, "its dependency failed");
    let s = Summary::new(&stats, &sc.queues, &sc.table, &Resources::ZERO, 1.0);
    // Three waits, all within a period: none is the 100 s train spent behind prep.
    assert!(
        s.wait_p95_s <= 1.0 && s.wait_p99_s <= 1.0,
        "{} {}",
        s.wait_p95_s,
        s.wait_p99_s
    );
    let q = &s.queues["root.default"];
    assert!(q.p95_wait_s <= 1.0, "{q:?}");
}

/// A job with a deadline meets it by succeeding in time; succeeding late, failing (itself or
/// through a dependency) or being still open when it passes are misses; a job still open whose
/// deadline lies after the end is not due, and a deleted one does not count.
#[test]
fn deadlines_are_met_missed_or_not_yet_due() {
    let text = r#"{"kind":"node","name":"n1","resources":{"cpu":1,"memory":"16Gi"}}
{"kind":"job","time":0,"name":"ok","priority":3,"deadline":20,"tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":10}]}
{"kind":"job","time":0,"name":"late","priority":2,"deadline":15,"tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":10}]}
{"kind":"job","time":0,"name":"bad","priority":1,"deadline":100,"tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":1,"outcome":"failed"}]}
{"kind":"job","time":0,"name":"after-bad","depends_on":["bad"],"deadline":1000,"tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":1}]}
{"kind":"job","time":0,"name":"stuck","deadline":5,"tasks":[{"name":"w","replicas":1,"requests":{"cpu":2},"duration":1}]}
{"kind":"job","time":0,"name":"far","deadline":1000000,"tasks":[{"name":"w","replicas":1,"requests":{"cpu":2},"duration":1}]}
{"kind":"job","time":0,"name":"gone","deadline":2,"tasks":[{"name":"w","replicas":1,"requests":{"cpu":2},"duration":1}]}
{"kind":"job","time":0,"name":"no-deadline","tasks":[{"name":"w","replicas":1,"requests":{"cpu":2},"duration":1}]}
{"kind":"job_delete","time":1,"name":"gone"}
"#;
    let sc = trace::read(text.as_bytes(), "deadlines.jsonl").unwrap();
    let (stats, _) = run(&sc, Mode::Gang);
    let s = Summary::new(&stats, &sc.queues, &sc.table, &Resources::ZERO, 1.0);
    let slo = s.slo.clone().expect("jobs carry deadlines");
    assert_eq!(
        (slo.met, slo.succeeded_late, slo.failed, slo.unfinished),
        (1, 1, 2, 1),
        "{slo:?}"
    );
    assert_eq!((slo.jobs, slo.missed, slo.not_due_at_end), (5, 4, 1));
    assert!((slo.miss_share - 0.8).abs() < 1e-12);
    // The late one ended about 5 s late; the stuck one was due at 5 s and the run ended past 20 s.
    assert!(slo.late_p95_s >= 15.0, "{slo:?}");
    // One queue: its figures are the whole run's.
    assert_eq!(s.queues["root.default"].slo.as_ref(), Some(&slo));
    // The summary carries it; without deadlines it is absent.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["slo"]["missed"], 4);
    let plain = trace::read(
        r#"{"kind":"node","name":"n1","resources":{"cpu":1}}
{"kind":"job","name":"a","tasks":[{"name":"w","replicas":1,"requests":{"cpu":1},"duration":1}]}
"#
        .as_bytes(),
        "plain.jsonl",
    )
    .unwrap();
    let (stats, _) = run(&plain, Mode::Gang);
    let s = Summary::new(&stats, &plain.queues, &plain.table, &Resources::ZERO, 1.0);
    assert!(s.slo.is_none());
    assert!(serde_json::to_value(&s).unwrap().get("slo").is_none());
}
