//! Runs variants of the DAG gate benchmark (`benches/dag.rs`) in one process, so a profiler or
//! valgrind sees only them: `MODE=controller,gate cargo run --release --example dag_cost -- N`
//! runs each listed variant N times in turn (0: only builds the workload, to subtract). MODE
//! lists `gate`, `controller`, `plain` (no dependencies) and `floor` (the dependency
//! bookkeeping alone, no engine; its metered time is that bookkeeping) in any order, repeats
//! allowed;
//! alternating them in one process compares them under the same heap and cache state. Each
//! run prints its wall time and the time spent inside engine calls. Wall time varies by a
//! third from run to run on a shared 2-core VM; cachegrind's counts do not:
//! `MODE=gate valgrind --tool=cachegrind --cache-sim=yes target/release/examples/dag_cost 1`.

use std::hint::black_box;
use std::time::Instant;

use phalanx_model::{Job, Node};

#[path = "../benches/common/dag_workload.rs"]
mod workload;
use workload::EngineTime;

type Run = fn(&[Node], Vec<Job>, &mut EngineTime) -> u32;

/// The dependency bookkeeping alone, metered; returns the cycles an engine run would take.
fn floor(_: &[Node], jobs: Vec<Job>, spent: &mut EngineTime) -> u32 {
    use workload::Meter;
    spent.time(|| workload::bookkeeping(&jobs)) + 1
}

fn main() {
    let times: usize = std::env::args()
        .nth(1)
        .map_or(Ok(1), |a| a.parse())
        .unwrap_or_else(|e| {
            eprintln!("dag_cost: the argument is how many runs: {e}");
            std::process::exit(2);
        });
    let modes = std::env::var("MODE").unwrap_or_else(|_| "gate".into());
    let modes: Vec<(&str, Run, bool)> = modes
        .split(',')
        .map(|mode| match mode {
            "gate" => (mode, workload::run as Run, true),
            "controller" => (mode, workload::run_controlled as Run, true),
            "plain" => (mode, workload::run as Run, false),
            "floor" => (mode, floor as Run, true),
            other => {
                eprintln!("dag_cost: MODE lists gate, controller, plain or floor, not {other:?}");
                std::process::exit(2);
            }
        })
        .collect();
    let (nodes, piped) = workload::workload(true);
    let (_, plain) = workload::workload(false);
    for (mode, run, edges) in modes {
        for _ in 0..times {
            let jobs = if edges { piped.clone() } else { plain.clone() };
            let mut engine = EngineTime::default();
            let start = Instant::now();
            let cycles = black_box(run(&nodes, jobs, &mut engine));
            println!(
                "{mode}: {} jobs in {cycles} cycles, {:.3} s wall, {:.3} s in the engine",
                workload::JOBS,
                start.elapsed().as_secs_f64(),
                engine.0.as_secs_f64()
            );
        }
    }
}
