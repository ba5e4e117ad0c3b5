//! The `phalanx` command line, run as a user runs it.

use sha2::{Digest, Sha256};
use std::process::Command;

fn phalanx(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(args)
        .output()
        .expect("the phalanx binary runs")
}

/// Asserts the command succeeded, showing its stderr when it did not.
fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bench_json_reports_every_field_and_a_clean_audit() {
    let out = phalanx(&["bench", "--nodes", "200", "--pods", "6000", "--json"]);
    assert_ok(&out);
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
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["pods_placed"].as_u64().unwrap() < 4000, "{v}");
    assert_eq!(v["partial_gangs"], 0);
    assert_eq!(v["overcommitted_nodes"], 0);
}

#[test]
fn bench_kube_gang_shape_places_every_gang() {
    let out = phalanx(&["bench", "--shape", "kube-gang", "--gangs", "300", "--json"]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nodes"], 5000);
    assert_eq!(v["jobs_placed"], 300);
    assert_eq!(v["pods_placed"], 900);
}

#[test]
fn bench_e2e_measures_binds_and_each_dependency_link_through_the_emulator() {
    let out = phalanx(&[
        "bench",
        "e2e",
        "--nodes",
        "20",
        "--pods",
        "200",
        "--gang",
        "4",
        "--chain",
        "3",
        "--bursts",
        "2",
        "--burst-pause-s",
        "0.5",
        "--stall-s",
        "30",
        "--json",
    ]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Two bursts, and nothing dropped.
    assert_eq!(v["bound"], 200, "{v}");
    // The engine inbox was sampled, and it is bounded.
    let cap = v["engine_inbox_capacity"].as_u64().unwrap();
    assert!(
        cap > 0 && v["engine_inbox_max"].as_u64().unwrap() <= cap,
        "{v}"
    );
    // The emulator's own records agree: no gang left partial, no node overcommitted.
    assert_eq!(v["partial_gangs"], 0, "{v}");
    assert_eq!(v["overcommitted_nodes"], 0, "{v}");
    // Three links make two dependencies, each seen from the parent's success to the
    // dependent's bind: positive, and well under the links' one-second run time apart.
    assert_eq!(v["dependency_links"], 2, "{v}");
    let (p50, max) = (
        v["dependency_p50_ms"].as_f64().unwrap(),
        v["dependency_max_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && max >= p50 && max < 30_000.0, "{v}");
}

#[test]
fn bench_saturated_times_cycles_of_a_full_cluster_with_jobs_waiting() {
    let out = phalanx(&[
        "bench",
        "--shape",
        "saturated",
        "--nodes",
        "100",
        "--pods",
        "3000",
        "--cycles",
        "20",
        "--finish-per-cycle",
        "20",
        "--json",
    ]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["shape"], "saturated");
    assert!(v["cpu_allocated_share"].as_f64().unwrap() > 0.8, "{v}");
    // The fill leaves gaps that some of the 3,000 take; the rest, and the fill's leftovers, wait.
    assert!(v["pods_pending"].as_u64().unwrap() >= 1000, "{v}");
    assert!(v["jobs_pending"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["cycles"], 20);
    let (p50, p99) = (
        v["cycle_ms_p50"].as_f64().unwrap(),
        v["cycle_ms_p99"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p99 >= p50, "{v}");
    assert!(v["jobs_tried_per_cycle"].as_f64().unwrap() > 0.0, "{v}");
    assert!(
        v["pods_bound"].as_u64().unwrap() > 0,
        "pods finishing make room: {v}"
    );
    assert_eq!(v["partial_gangs"], 0);
    assert_eq!(v["overcommitted_nodes"], 0);
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

fn out_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("phalanx-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A JSON file the command wrote.
fn json_file(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn summary(dir: &std::path::Path) -> serde_json::Value {
    json_file(&dir.join("summary.json"))
}

#[test]
fn simulate_writes_the_contract_outputs() {
    let dir = out_dir("gen");
    let out = phalanx(&[
        "simulate",
        "--nodes",
        "60",
        "--pods",
        "1500",
        "--seed",
        "3",
        "--compare",
        "baseline",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_ok(&out);
    // In a pipe too: the summary, the per-queue table (as `phalanx queues`) and the files.
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(text.contains("jain fairness"), "{text}");
    let header = text
        .lines()
        .find(|l| l.starts_with("QUEUE"))
        .unwrap_or_else(|| panic!("no queue table:\n{text}"));
    for column in [
        "WEIGHT",
        "MEAN ALLOCATED",
        "GUARANTEE",
        "DESERVED",
        "CAPABILITY",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        text.contains(&format!("wrote {}", dir.join("decisions.jsonl").display())),
        "{text}"
    );
    let v = summary(&dir);
    for field in [
        "nodes",
        "jobs",
        "pods",
        "jobs_succeeded",
        "jobs_failed",
        "jobs_pending_at_end",
        "makespan_s",
        "wall_s",
        "events_per_s",
        "utilization",
        "queues",
        "jain_fairness",
        "decision_log_sha256",
        "incomplete_gang_resource_s",
        "baseline",
    ] {
        assert!(v.get(field).is_some(), "missing {field} in {v}");
    }
    assert_eq!(v["pods"], 1500);
    assert_eq!(v["queues"].as_object().unwrap().len(), 8, "8 tenants");
    for q in v["queues"].as_object().unwrap().values() {
        for f in [
            "mean_wait_s",
            "p95_wait_s",
            "mean_allocated_share",
            "deserved_share",
        ] {
            assert!(q.get(f).is_some(), "{f} in {q}");
        }
    }
    let log = std::fs::read(dir.join("decisions.jsonl")).unwrap();
    let digest: String = Sha256::digest(&log)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v["decision_log_sha256"], digest.as_str());
    // Every series, for notebooks: the time-weighted CPU use of `series.csv` is the summary's.
    for file in ["series.csv", "series-baseline.csv"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let mut rows = text.lines().map(|l| l.split(',').collect::<Vec<_>>());
        let header = rows.next().unwrap();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (t, alloc, cap) = (col("time_s"), col("allocated:cpu"), col("allocatable:cpu"));
        assert!(header.contains(&"pending_jobs") && header.contains(&"running_jobs"));
        let shares = header
            .iter()
            .filter(|h| h.starts_with("dominant_share:root."))
            .count();
        assert_eq!(shares, 8, "{header:?}");
        let rows: Vec<Vec<f64>> = rows
            .map(|r| {
                assert_eq!(r.len(), header.len());
                r.iter().map(|x| x.parse().unwrap()).collect()
            })
            .collect();
        // Each queue's jobs pending and running add up to the cluster's, at every sample.
        for total in ["pending_jobs", "running_jobs"] {
            let per_queue: Vec<usize> = (0..header.len())
                .filter(|k| header[*k].starts_with(&format!("{total}:root.")))
                .collect();
            assert_eq!(per_queue.len(), 8, "{total}: {header:?}");
            for r in &rows {
                let sum: f64 = per_queue.iter().map(|k| r[*k]).sum();
                assert_eq!(sum, r[col(total)], "{file}: {total} at {}", r[t]);
            }
        }
        let (mut used, mut offered) = (0.0, 0.0);
        for w in rows.windows(2) {
            assert!(
                w[0][t] <= w[1][t] && w[0][alloc] <= w[0][cap],
                "{file}: {:?}",
                w[0]
            );
            let dt = w[1][t] - w[0][t];
            used += w[0][alloc] * dt;
            offered += w[0][cap] * dt;
        }
        let want = if file == "series.csv" {
            v["utilization"]["cpu"].as_f64().unwrap()
        } else {
            v["baseline"]["utilization"]["cpu"].as_f64().unwrap()
        };
        assert!(
            (used / offered - want).abs() < 1e-6,
            "{file}: {} against {want}",
            used / offered
        );
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("baseline"));
    assert!(!html.contains("<script src"), "self-contained");
    // Each queue has its page beside the report, linked from it, with its figures per run.
    for q in v["queues"].as_object().unwrap().keys() {
        let file = format!("queue-{q}.html");
        assert!(html.contains(&format!("href=\"{file}\"")), "{file}");
        let page = std::fs::read_to_string(dir.join(&file)).unwrap();
        assert!(
            page.contains(&format!("queue {q}")) && page.contains("<svg"),
            "{file}"
        );
        assert!(page.contains("<th>phalanx</th><th>kube</th>"), "{file}");
    }
    // Same input, same log.
    let dir2 = out_dir("gen2");
    let out = phalanx(&[
        "simulate",
        "--nodes",
        "60",
        "--pods",
        "1500",
        "--seed",
        "3",
        "--quiet",
        "--out",
        dir2.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        summary(&dir2)["decision_log_sha256"],
        v["decision_log_sha256"]
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

#[test]
fn simulate_rejects_a_bad_trace_before_running() {
    let dir = out_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("bad.jsonl");
    std::fs::write(
        &trace,
        "{\"kind\":\"node\",\"name\":\"n\",\"resources\":{\"cpu\":4}}\n{\"kind\":\"job\",\"name\":\"j\",\"queue\":\"root.x\",\"tasks\":[{\"name\":\"w\",\"replicas\":1,\"requests\":{},\"duration\":1}]}\n",
    )
    .unwrap();
    let out = phalanx(&[
        "simulate",
        "--trace",
        trace.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.jsonl:2: field `queue`: unknown queue root.x"),
        "{err}"
    );
    assert!(
        !dir.join("out/decisions.jsonl").exists(),
        "nothing simulated"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_if_flags_change_the_scenario() {
    let dir = out_dir("whatif");
    std::fs::create_dir_all(&dir).unwrap();
    let queues = dir.join("queues.jsonl");
    std::fs::write(
        &queues,
        (0..8)
            .map(|i| {
                format!(
                    "{{\"kind\":\"queue\",\"name\":\"root.tenant-{}\",\"weight\":{}}}\n",
                    (b'a' + i) as char,
                    i + 1
                )
            })
            .collect::<String>(),
    )
    .unwrap();
    let out = phalanx(&[
        "simulate",
        "--nodes",
        "40",
        "--pods",
        "800",
        "--add-nodes",
        "10:cpu=64,memory=256Gi",
        "--add-nodes",
        "2:gpu-00000",
        "--scale-load",
        "1.5",
        "--queues",
        queues.to_str().unwrap(),
        "--quiet",
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_ok(&out);
    let v = summary(&dir.join("out"));
    assert_eq!(v["nodes"], 52);
    let pods = v["pods"].as_u64().unwrap();
    // Every job once, and about half of them twice (whole gangs, so pods vary more).
    assert!((800..=1600).contains(&pods) && pods > 800, "{pods}");
    assert!(
        (v["queues"]["root.tenant-h"]["deserved_share"]
            .as_f64()
            .unwrap()
            - 8.0 / 36.0)
            .abs()
            < 1e-9
    );
    // The queue file's quotas are the run's: the per-queue figures carry them.
    assert_eq!(v["queues"]["root.tenant-h"]["weight"], 8);
    assert!(v["queues"]["root.tenant-h"]["capability"].is_null());
    assert!(
        v["queues"]["root.tenant-h"]["mean_allocated"]["cpu"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let bad = phalanx(&[
        "simulate",
        "--nodes",
        "4",
        "--pods",
        "10",
        "--add-nodes",
        "x",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--add-nodes"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn trace_convert_feeds_simulate() {
    let manifests =
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/manifests"));
    if !manifests.exists() {
        eprintln!("skipped: {} is absent", manifests.display());
        return;
    }
    let out = phalanx(&[
        "trace",
        "convert",
        "--from",
        "k8s",
        manifests.to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported kind"));
    let dir = out_dir("k8s");
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("k8s.jsonl");
    std::fs::write(&trace, &out.stdout).unwrap();
    let sim = phalanx(&[
        "simulate",
        "--trace",
        trace.to_str().unwrap(),
        "--quiet",
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_ok(&sim);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn simulate_compare_alone_runs_the_builtin_scenarios_over_seeds() {
    let dir = out_dir("compare-builtin");
    let out = phalanx(&[
        "simulate",
        "--nodes",
        "40",
        "--pods",
        "800",
        "--compare",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("phalanx (reference)"), "{text}");
    assert!(text.contains("comparison.json"), "{text}");
    let v = json_file(&dir.join("comparison.json"));
    let names: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "fifo",
            "kube",
            "no-reclaim",
            "no-reservation",
            "phalanx",
            "spread"
        ]
    );
    for (name, s) in v.as_object().unwrap() {
        for key in [
            "goodput",
            "makespan_s",
            "jain_fairness",
            "wait_p95_s",
            "large_gang_wait_p95_s",
            "stranded_gpu_share",
        ] {
            assert!(s[key].is_number(), "{name}: {key} in {s}");
            // Three seeds: an interval for every metric.
            assert!(s["ci95"][key].is_number(), "{name}: ci95.{key}");
        }
        assert_eq!(s["seeds"], serde_json::json!([1, 2, 3]));
        assert_eq!(s["reference"], "phalanx");
        assert_eq!(s["vs_reference"].is_object(), name != "phalanx", "{name}");
        // Each run's summary is there, and the mean is the mean of them.
        let goodputs: Vec<f64> = s["summaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                json_file(&dir.join(p.as_str().unwrap()))["goodput"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        assert_eq!(goodputs.len(), 3);
        let mean = goodputs.iter().sum::<f64>() / 3.0;
        assert!((s["goodput"].as_f64().unwrap() - mean).abs() < 1e-12);
    }
    // Gangs stay whole under phalanx and fifo; the pod-by-pod policy holds partial gangs.
    assert_eq!(v["phalanx"]["incomplete_gang_share"], 0.0);
    assert_eq!(v["fifo"]["incomplete_gang_share"], 0.0);
    let html = std::fs::read_to_string(dir.join("comparison.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("no-reservation"));
    assert!(!html.contains("<script src"), "self-contained");
    // The phalanx run of seed 1 is the plain run of seed 1, decision for decision.
    let plain = out_dir("compare-plain");
    assert_ok(&phalanx(&[
        "simulate",
        "--nodes",
        "40",
        "--pods",
        "800",
        "--seed",
        "1",
        "--quiet",
        "--out",
        plain.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read(plain.join("decisions.jsonl")).unwrap(),
        std::fs::read(dir.join("phalanx/seed-1/decisions.jsonl")).unwrap()
    );
}

#[test]
fn simulate_compare_reads_a_scenario_file_and_names_its_errors() {
    let dir = out_dir("compare-file");
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("t.jsonl");
    std::fs::write(
        &trace,
        r#"{"kind":"node","name":"rack1-a","resources":{"cpu":8,"memory":"32Gi"},"labels":{"rack":"1"}}
{"kind":"node","name":"rack2-a","resources":{"cpu":8,"memory":"32Gi"},"labels":{"rack":"2"}}
{"kind":"job","time":0,"name":"a","tasks":[{"name":"w","replicas":1,"requests":{"cpu":4},"duration":100}]}
{"kind":"job","time":0,"name":"b","tasks":[{"name":"w","replicas":1,"requests":{"cpu":4},"duration":100}]}
{"kind":"job","time":0,"name":"c","tasks":[{"name":"w","replicas":1,"requests":{"cpu":4},"duration":100}]}
{"kind":"job","time":0,"name":"d","tasks":[{"name":"w","replicas":1,"requests":{"cpu":4},"duration":100}]}
"#,
    )
    .unwrap();
    let file = dir.join("what-if.yaml");
    std::fs::write(
        &file,
        "scenarios:\n  - name: now\n  - name: one-rack\n    remove-nodes: ['rack=2']\n  - name: more\n    add-nodes: ['2:cpu=8,memory=32Gi']\n",
    )
    .unwrap();
    let out_path = dir.join("out");
    let run = || {
        phalanx(&[
            "simulate",
            "--trace",
            trace.to_str().unwrap(),
            "--compare",
            file.to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
        ])
    };
    let out = run();
    assert_ok(&out);
    let v = json_file(&out_path.join("comparison.json"));
    // A trace runs once: no seeds, no intervals. 16 CPUs run the 4 jobs of 4 CPUs in 100 s;
    // one rack (8 CPUs) in two rounds; 32 CPUs no faster than 16.
    assert_eq!(v["now"]["seeds"], serde_json::json!([]));
    assert!(v["now"].get("ci95").is_none());
    assert_eq!(v["now"]["makespan_s"], 100.0);
    assert!(v["one-rack"]["makespan_s"].as_f64().unwrap() >= 200.0);
    assert_eq!(v["more"]["makespan_s"], 100.0);
    assert!(
        v["one-rack"]["vs_reference"]["makespan_s"]["mean"]
            .as_f64()
            .unwrap()
            >= 100.0
    );
    // Errors name the file, the line and the field.
    let fails_with = |text: &str| {
        std::fs::write(&file, text).unwrap();
        let out = run();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let err = fails_with("scenarios:\n  - name: a\n  - name: b\n    scale-lode: 2\n");
    assert!(
        err.contains(&format!("{}:4", file.display())) && err.contains("scale-lode"),
        "{err}"
    );
    let err = fails_with("scenarios:\n  - name: a\n    remove-nodes: ['rack=9']\n");
    assert!(
        err.contains("scenario a") && err.contains("rack=9") && err.contains("no node"),
        "{err}"
    );
}

/// The FGD paper's experiment over the Alibaba GPU 2023 trace: a fill to 1.3 times the
/// cluster's 6,212 GPUs, two draws, packing against spreading; and `docs/fgd.yaml`, the full
/// experiment, is a valid scenario file.
#[test]
fn simulate_compare_fills_the_alibaba_2023_cluster_as_the_fgd_paper() {
    let dir = out_dir("fgd");
    std::fs::create_dir_all(&dir).unwrap();
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/traces/alibaba-gpu-v2023"
    );
    let conv = phalanx(&["trace", "convert", "--from", "alibaba-gpu-2023", src]);
    assert_ok(&conv);
    let trace = dir.join("a23.jsonl");
    std::fs::write(&trace, &conv.stdout).unwrap();
    let file = dir.join("fgd.yaml");
    std::fs::write(
        &file,
        "fill: 1.3\nseeds: [42, 43]\nscenarios:\n  - name: binpack\n  - name: spread\n    score: spread\n",
    )
    .unwrap();
    let out_path = dir.join("out");
    let out = phalanx(&[
        "simulate",
        "--trace",
        trace.to_str().unwrap(),
        "--compare",
        file.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let v = json_file(&out_path.join("comparison.json"));
    for name in ["binpack", "spread"] {
        let s = &v[name];
        assert_eq!(s["seeds"], serde_json::json!([42, 43]), "{name}");
        for p in s["summaries"].as_array().unwrap() {
            let sum = json_file(&out_path.join(p.as_str().unwrap()));
            let end = &sum["gpus_at_end"];
            assert_eq!(end["gpus"], 6212.0, "{name}: {end}");
            let (alloc, unalloc) = (
                end["allocated_gpus"].as_f64().unwrap(),
                end["unallocated_gpus"].as_f64().unwrap(),
            );
            assert!((alloc + unalloc - 6212.0).abs() < 1e-6, "{name}: {end}");
            // Asked for 1.3 times the GPUs: the cluster is full to within its fragments, and
            // jobs are left waiting.
            assert!(alloc / 6212.0 > 0.9, "{name}: {end}");
            assert!(end["jobs_pending"].as_u64().unwrap() > 0, "{name}: {end}");
            assert!(
                end["stranded_gpus"].as_f64().unwrap() <= unalloc,
                "{name}: {end}"
            );
        }
        let share = s["gpu_allocated_share_end"].as_f64().unwrap();
        assert!(share > 0.9 && share <= 1.0, "{name}: {share}");
    }
    // Different draws: not the same runs.
    let binpack = &v["binpack"]["summaries"];
    let a = std::fs::read(out_path.join(binpack[0].as_str().unwrap())).unwrap();
    let b = std::fs::read(out_path.join(binpack[1].as_str().unwrap())).unwrap();
    assert_ne!(a, b);
    // The documented full experiment parses and validates.
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/fgd.yaml");
    let file = phalanx_simulator::compare::CompareFile::read(std::path::Path::new(docs)).unwrap();
    assert_eq!(file.fill, Some(1.3));
    assert_eq!(file.seeds.as_deref().map(<[u64]>::len), Some(10));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sweep split into parts (as the Indexed Job of deploy/sweep/ runs it) and merged gives the
/// comparison one `--compare` run gives; a missing part or a bad part number is named.
#[test]
fn report_merge_joins_the_parts_of_a_sweep_into_the_comparison() {
    let dir = out_dir("sweep");
    let whole = out_dir("sweep-whole");
    let file = dir.join("what-if.yaml");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        &file,
        "seeds: [1, 2]\nscenarios:\n  - name: phalanx\n  - name: fifo\n    policy: fifo\n  - name: spread\n    score: spread\n",
    )
    .unwrap();
    let parts = dir.join("parts");
    let sim = |out: &std::path::Path, part: Option<&str>| {
        let mut args = vec![
            "simulate",
            "--nodes",
            "40",
            "--pods",
            "800",
            "--compare",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(p) = part {
            args.extend(["--part", p]);
        }
        phalanx(&args)
    };
    let merge = || phalanx(&["report", "merge", parts.to_str().unwrap()]);
    // 6 runs in 4 parts: 2, 2, 1 and 1 runs.
    for k in 0..3 {
        assert_ok(&sim(&parts, Some(&format!("{k}/4"))));
    }
    let out = merge();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("1 of 4 parts missing (part-3-of-4.json)"),
        "{err}"
    );
    let out = sim(&parts, Some("3/4"));
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("phalanx report merge"), "{text}");
    let out = merge();
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("phalanx (reference)") && text.contains("comparison.html"),
        "{text}"
    );
    assert_ok(&sim(&whole, None));
    let (merged, direct) = (
        json_file(&parts.join("comparison.json")),
        json_file(&whole.join("comparison.json")),
    );
    for name in ["phalanx", "fifo", "spread"] {
        let (m, d) = (&merged[name], &direct[name]);
        assert_eq!(m["seeds"], d["seeds"]);
        assert_eq!(m["summaries"], d["summaries"]);
        for (key, want) in d.as_object().unwrap() {
            let Some(want) = want.as_f64() else { continue };
            if key == "wall_s" {
                continue;
            }
            let got = m[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: {key} missing"));
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{name}: {key} {got} against {want}"
            );
        }
        for p in m["summaries"].as_array().unwrap() {
            assert!(parts.join(p.as_str().unwrap()).is_file(), "{p}");
        }
        // Per queue too.
        let queues = d["queues"].as_object().unwrap();
        assert!(!queues.is_empty(), "{name}: no queue figures");
        for (q, figures) in queues {
            for (key, want) in figures.as_object().unwrap() {
                let Some(want) = want.as_f64() else { continue };
                let got = m["queues"][q][key]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{name}: {q} {key} missing"));
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{name}: {q} {key} {got} against {want}"
                );
            }
            assert!(parts.join(format!("queue-{q}.html")).is_file(), "{q}");
        }
    }
    let html = std::fs::read_to_string(parts.join("comparison.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("spread"));
    // Bad part numbers are refused before anything runs.
    let out = sim(&dir.join("bad"), Some("4/4"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("below the number of parts")
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&whole);
}
