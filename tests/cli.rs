//! The `phalanx` command line, run as a user runs it.

use std::process::Command;

fn phalanx(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(args)
        .output()
        .expect("the phalanx binary runs")
}

#[test]
fn bench_json_reports_every_field_and_a_clean_audit() {
    let out = phalanx(&["bench", "--nodes", "200", "--pods", "6000", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "nodes",
        "pods",
        "jobs",
        "pods_placed",
        "jobs_placed",
        "wall_s",
        "pods_per_s",
        "us_per_pod",
        "job_attempt_us_p50",
        "job_attempt_us_p99",
        "partial_gangs",
        "overcommitted_nodes",
        "peak_rss_mb",
    ] {
        assert!(v.get(field).is_some(), "missing {field} in {v}");
    }
    assert_eq!(v["nodes"], 200);
    assert_eq!(v["pods"], 6000);
    assert_eq!(v["partial_gangs"], 0);
    assert_eq!(v["overcommitted_nodes"], 0);
    assert_eq!(v["other_violations"], 0);
    assert!(v["pods_placed"].as_u64().unwrap() > 4000, "{v}");
}

#[test]
fn bench_overloaded_cluster_places_what_fits_and_stays_safe() {
    let out = phalanx(&[
        "bench", "--nodes", "100", "--pods", "4000", "--demand", "1.6", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["pods_placed"].as_u64().unwrap() < 4000, "{v}");
    assert_eq!(v["partial_gangs"], 0);
    assert_eq!(v["overcommitted_nodes"], 0);
}

#[test]
fn bench_kube_gang_shape_places_every_gang() {
    let out = phalanx(&["bench", "--shape", "kube-gang", "--gangs", "300", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nodes"], 5000);
    assert_eq!(v["jobs_placed"], 300);
    assert_eq!(v["pods_placed"], 900);
}

#[test]
fn bench_human_summary_names_the_audit() {
    let out = phalanx(&["bench", "--nodes", "50", "--pods", "1000"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("partial gangs     0 (ok)"), "{text}");
    assert!(text.contains("overcommitted     0 (ok)"), "{text}");
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let out = phalanx(&["bench", "--nodes", "many"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'many' for '--nodes <NODES>'"),
        "{err}"
    );
    let out = phalanx(&["bench", "--demand", "NaN"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("must be a number above 0 and at most 10"),
        "{err}"
    );
}
