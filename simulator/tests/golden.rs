//! Golden files: what `phalanx trace convert --from k8s` makes of each example manifest in
//! `deploy/examples/` (with `queues.yaml`, which defines the queues they name), stored as reviewed expected output in `tests/snapshots/`. A change in
//! what a manifest means shows up here as a diff to review.
//!
//! To re-bless after an intended change: `INSTA_UPDATE=always cargo test -p phalanx-simulator
//! --test golden`, then read the diff of `simulator/tests/snapshots/` before committing (or
//! `cargo insta review` where cargo-insta is installed). Under CI (`CI=true`) a mismatch fails
//! and nothing is written.

use std::path::Path;

use phalanx_simulator::convert;
use phalanx_simulator::trace;

/// The records (as the trace format writes them) and warnings of one example manifest.
fn converted(file: &str) -> String {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let dir = std::env::temp_dir().join(format!(
        "phalanx-golden-{}-{}",
        file.trim_end_matches(".yaml"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Each example goes with the tenants' Queues, as it is applied live.
    for f in [file, "queues.yaml"] {
        std::fs::copy(examples.join(f), dir.join(f)).unwrap();
    }
    let params = convert::k8s::Params {
        default_duration: 600.0,
        nodes: "2:cpu=32,memory=128Gi,nvidia.com/gpu=8".into(),
        skip_invalid: false,
    };
    let c = convert::k8s::convert(&dir, &params).unwrap_or_else(|e| panic!("{file}: {e}"));
    std::fs::remove_dir_all(&dir).ok();
    let mut out = Vec::new();
    trace::write_records(&mut out, &c.records).unwrap();
    let mut text = String::from_utf8(out).unwrap();
    // Warnings name files by their path: the scratch folder's name changes with every run.
    let scratch = dir.display().to_string();
    for w in &c.warnings {
        text.push_str(&format!(
            "# warning: {}\n",
            w.replace(&scratch, "MANIFESTS")
        ));
    }
    text
}

macro_rules! golden {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            insta::assert_snapshot!(converted($file));
        }
    };
}

golden!(podgroup, "podgroup.yaml");
golden!(pipeline, "pipeline.yaml");
golden!(queues, "queues.yaml");
golden!(pytorchjob, "pytorchjob.yaml");
golden!(spark_application, "spark-application.yaml");
golden!(volcano_job, "volcano-job.yaml");
golden!(mpijob, "mpijob.yaml");
golden!(trainjob, "trainjob.yaml");
golden!(raycluster, "raycluster.yaml");
golden!(kueue_pod_group, "kueue-pod-group.yaml");
golden!(upstream_gang, "upstream-gang.yaml");
