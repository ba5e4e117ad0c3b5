//! Runs one variant of the DAG gate benchmark (`benches/dag.rs`) alone, so a profiler or
//! valgrind sees only it: `MODE=gate|controller cargo run --release --example dag_cost -- N`
//! runs it N times (0: only builds the workload, to subtract). Wall time varies by a third from
//! run to run on a shared 2-core VM; cachegrind's counts do not:
//! `MODE=gate valgrind --tool=cachegrind --cache-sim=yes target/release/examples/dag_cost 1`.

use std::hint::black_box;
use std::time::Instant;

#[path = "../benches/common/dag_workload.rs"]
mod workload;

fn main() {
    let times: usize = std::env::args()
        .nth(1)
        .map_or(Ok(1), |a| a.parse())
        .unwrap_or_else(|e| {
            eprintln!("dag_cost: the argument is how many runs: {e}");
            std::process::exit(2);
        });
    let mode = std::env::var("MODE").unwrap_or_else(|_| "gate".into());
    let run = match mode.as_str() {
        "gate" => workload::run,
        "controller" => workload::run_controlled,
        other => {
            eprintln!("dag_cost: MODE is gate or controller, not {other:?}");
            std::process::exit(2);
        }
    };
    let (nodes, jobs) = workload::workload(true);
    for _ in 0..times {
        let jobs = jobs.clone();
        let start = Instant::now();
        let cycles = black_box(run(&nodes, jobs));
        println!(
            "{mode}: {} jobs in {cycles} cycles, {:.3} s",
            workload::JOBS,
            start.elapsed().as_secs_f64()
        );
    }
}
