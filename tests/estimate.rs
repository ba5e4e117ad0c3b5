//! How good the estimated start the admin API shows is: on the starvation shape (a gang as big
//! as the cluster submitted behind an endless stream of small jobs that keeps the cluster
//! full), the estimate read right after the gang's first cycle against the start it really
//! gets, in virtual time with every pod's duration declared.

mod common;

use std::collections::BTreeMap;

use common::*;
use phalanx_model::{ClusterEvent, Decision, Span, Time};

/// Seeded durations without a random crate: a 64-bit LCG (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

/// Runs the shape with `seed`; returns (submitted, estimated at submission, started).
fn starvation(seed: u64) -> (Time, Time, Time) {
    let mut h = Harness::new();
    for i in 0..8 {
        h.node(node(&format!("n{i}")).cpu(8).build());
    }
    let mut rng = Lcg(seed);
    let mut ends: BTreeMap<(u64, String), ()> = BTreeMap::new();
    let mut durations: BTreeMap<String, u64> = BTreeMap::new();
    let big_at = 300_000;
    let mut estimate = None;
    let mut small = 0;
    for t in (0..4 * 3600 * 1000).step_by(1000) {
        let now = Time(t);
        // Two small jobs (one pod, 2 cpu, 1 to 10 minutes) arrive every 5 seconds: more than
        // the cluster finishes, so the line never empties.
        if t % 5000 == 0 {
            for _ in 0..2 {
                let name = format!("ns/small-{small}");
                small += 1;
                let d = rng.next(60, 600) * 1000;
                let mut j = job(&name).task("t", 1, 2000).submitted(t).build();
                j.tasks[0].pod.duration = Some(Span(d));
                durations.insert(name, d);
                h.submit(j);
            }
        }
        if t == big_at {
            let mut j = job("ns/big").task("w", 16, 4000).submitted(t).build();
            j.tasks[0].pod.duration = Some(Span(600_000));
            durations.insert("ns/big".into(), 600_000);
            h.submit(j);
        }
        // Pods whose time is up finish.
        while let Some(((end, _), ())) = ends.first_key_value() {
            if *end > t {
                break;
            }
            let ((_, pod), ()) = ends.pop_first().unwrap();
            let (job_name, index) = pod.rsplit_once('#').unwrap();
            h.apply(ClusterEvent::PodFinished {
                pod: common::pod(job_name, 0, index.parse().unwrap()),
                succeeded: true,
            })
            .unwrap();
        }
        let decisions = h.cycle_at(now);
        h.carry_out(&decisions);
        for d in &decisions {
            if let Decision::BindGang { job, bindings } = d {
                if job == "ns/big" {
                    let est = estimate.expect("an estimate was read at submission");
                    return (Time(big_at), est, now);
                }
                for b in bindings {
                    ends.insert((t + durations[job], format!("{job}#{}", b.index)), ());
                }
            }
        }
        if t == big_at {
            estimate = h.engine.view().forecast(10_000).get("ns/big").copied();
            assert!(estimate.is_some(), "no estimate for the gang at submission");
        }
    }
    panic!("the whole-cluster gang never started: starved");
}

#[test]
fn the_estimated_start_of_a_starved_gang_is_within_a_fifth_of_its_wait() {
    let mut worst: f64 = 0.0;
    for seed in 1..=5 {
        let (submitted, estimated, started) = starvation(seed);
        let wait = started.0 - submitted.0;
        let error = estimated.0.abs_diff(started.0) as f64 / wait as f64;
        println!(
            "seed {seed}: waited {:.0} s, estimated {:.0} s, error {:.1}% of the wait",
            wait as f64 / 1000.0,
            (estimated.0 - submitted.0) as f64 / 1000.0,
            error * 100.0
        );
        assert!(
            wait > 0,
            "the gang started at once: not the starvation shape"
        );
        worst = worst.max(error);
    }
    assert!(
        worst <= 0.20,
        "estimated start off by {:.1}% of the wait",
        worst * 100.0
    );
}
