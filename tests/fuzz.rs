//! Fuzzed input: every parser a user or a cluster hands text to, fed mutations of real inputs.
//! Each case starts from a valid document (a generated trace, the manifests users submit in
//! `../shared/manifests`, rows of the real Alibaba traces in `../shared/traces`, the default
//! `serve` configuration, queue records) and applies a few random mutations: a value replaced by
//! something hostile (huge or negative numbers, broken quantities, control characters, empty
//! or nested containers), a key removed or added, the text cut short or spliced with random
//! bytes. The parser must not panic, and a rejection must name where: the file, and the line
//! where the format has lines.
//!
//! CI runs proptest's default number of cases per parser (256). Run longer with, e.g.,
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz`; a failure prints the smallest input
//! that shows it, and proptest keeps it in `tests/fuzz.proptest-regressions` to try first.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use phalanx_k8s::config::ServeConfig;
use phalanx_model::{QueueRecord, ResourceTable};
use phalanx_simulator::convert::{alibaba_batch, alibaba_gpu, helios, k8s};
use phalanx_simulator::generator::{GenSpec, generate};
use phalanx_simulator::trace;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared");

/// A value a hostile or careless writer might put anywhere.
fn hostile() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "",
        " ",
        "-1",
        "0",
        "1e400",
        "-1e400",
        "99999999999999999999999",
        "NaN",
        "Infinity",
        "500m",
        "1.5",
        "0.0001m",
        "64Gi",
        "-5Gi",
        "1Ei",
        "1e18",
        "8Zi",
        "abc",
        "a/b/c",
        "root..x",
        "root.",
        ".",
        "..",
        "/",
        "%00",
        "\u{0}",
        "\u{202e}",
        "日本語",
        "null",
        "true",
        "{",
        "[",
        "\"",
        "\\",
        "Succeeded",
        "Failed",
        "NoSchedule",
        "In",
        "Exists",
        "v1",
        "Pod",
    ]);
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(Value::from),
        prop::sample::select(vec![
            0i64,
            -1,
            1,
            2,
            i64::MAX,
            i64::MIN,
            u32::MAX as i64,
            1 << 53
        ])
        .prop_map(Value::from),
        words.prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!([null, {}, []])),
        Just(json!({"a": {"b": {"c": [1, "x"]}}})),
    ]
}

/// Field names worth adding where they are not expected (or twice).
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "kind",
            "name",
            "time",
            "queue",
            "replicas",
            "requests",
            "duration",
            "min_member",
            "depends_on",
            "deadline",
            "resources",
            "weight",
            "capability",
            "metadata",
            "spec",
            "annotations",
            "labels",
            "minMember",
            "minResources",
            "schedulerName",
            "priority",
            "apiVersion",
            "queues",
            "cyclePeriodMs",
            "parent",
        ])
        .prop_map(String::from),
        "[a-zA-Z_]{1,12}",
    ]
}

/// One mutation of a JSON document.
#[derive(Debug, Clone)]
enum Mutation {
    /// The value at a place replaced.
    Replace(Index, Value),
    /// The value at a place removed (from its object or array).
    Remove(Index),
    /// A field added to an object at a place.
    Add(Index, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), hostile()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => any::<Index>().prop_map(Mutation::Remove),
        1 => (any::<Index>(), field_name(), hostile()).prop_map(|(i, k, v)| Mutation::Add(i, k, v)),
    ]
}

/// Every place in a document, as JSON pointers, parents before children.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(c, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn mutate(doc: &mut Value, m: &Mutation) {
    let mut places = Vec::new();
    pointers(doc, String::new(), &mut places);
    match m {
        Mutation::Replace(i, v) => {
            let p = i.get(&places).as_str();
            if let Some(slot) = doc.pointer_mut(p) {
                *slot = v.clone();
            }
        }
        Mutation::Remove(i) => {
            let p = i.get(&places).as_str();
            let Some((parent, last)) = p.rsplit_once('/') else {
                return;
            };
            match doc.pointer_mut(parent) {
                Some(Value::Object(o)) => {
                    o.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(a)) => {
                    if let Ok(k) = last.parse::<usize>()
                        && k < a.len()
                    {
                        a.remove(k);
                    }
                }
                _ => {}
            }
        }
        Mutation::Add(i, k, v) => {
            if let Some(Value::Object(o)) = doc.pointer_mut(i.get(&places).as_str()) {
                o.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A cut or a splice of random bytes into a text.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Cut(Index),
    Splice(Index, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => Just(Damage::None),
        1 => any::<Index>().prop_map(Damage::Cut),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Damage::Splice(i, b)),
    ]
}

fn damaged(text: &str, d: &Damage) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    match d {
        Damage::None => {}
        Damage::Cut(i) if !b.is_empty() => b.truncate(i.index(b.len())),
        Damage::Splice(i, bytes) => {
            let at = i.index(b.len() + 1);
            b.splice(at..at, bytes.iter().copied());
        }
        Damage::Cut(_) => {}
    }
    b
}

/// A fresh folder under the target directory for one case.
fn case_dir(what: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "fuzz-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The lines of a small generated trace, with queues, pipelines, failures and deadlines.
fn trace_lines() -> Vec<Value> {
    let sc = generate(&GenSpec {
        deadlines: 0.5,
        ..GenSpec::new(4, 60, 7)
    });
    trace::to_records(&sc)
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

/// The first `n` lines of a file of the shared traces.
fn head(path: &str, n: usize) -> Vec<String> {
    use std::io::BufRead;
    let path = format!("{SHARED}/traces/{path}");
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (CI has ../shared beside the checkout)"));
    std::io::BufReader::new(file)
        .lines()
        .take(n)
        .map(|l| l.unwrap())
        .collect()
}

/// CSV rows with some cells replaced by hostile text.
fn mutate_csv(lines: &[String], cells: &[(Index, Index, Value)]) -> String {
    let mut rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    for (r, c, v) in cells {
        let r = r.index(rows.len());
        if rows[r].is_empty() {
            continue;
        }
        let c = c.index(rows[r].len());
        rows[r][c] = match v {
            Value::String(s) => s.replace(['\n', '"'], ""),
            other => other.to_string().replace(['\n', '"', ','], ""),
        };
    }
    rows.iter().map(|r| r.join(",") + "\n").collect()
}

fn cells() -> impl Strategy<Value = Vec<(Index, Index, Value)>> {
    prop::collection::vec((any::<Index>(), any::<Index>(), hostile()), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("tests/fuzz.proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    /// Trace JSONL (`simulate --trace`): a rejection names the file and a line of it.
    #[test]
    fn trace_lines_never_panic_and_errors_name_file_and_line(
        picks in prop::collection::vec((any::<Index>(), prop::collection::vec(mutation(), 1..4)), 1..4),
        damage in damage(),
    ) {
        let mut lines = trace_lines();
        for (i, ms) in &picks {
            let k = i.index(lines.len());
            for m in ms {
                mutate(&mut lines[k], m);
            }
        }
        let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
        let bytes = damaged(&text, &damage);
        let count = bytes.split(|b| *b == b'\n').count();
        if let Err(e) = trace::read(bytes.as_slice(), "fuzz.jsonl") {
            let msg = e.to_string();
            prop_assert!(msg.starts_with("fuzz.jsonl:"), "{msg}");
            if let trace::TraceError::Record { line, .. } = e {
                prop_assert!(line >= 1 && line <= count, "line {line} of {count}: {msg}");
            }
        }
    }

    /// Kubernetes manifests through the translation (`trace convert --from k8s`, the reading
    /// `serve` shares): a rejection names the file.
    #[test]
    fn manifests_never_panic_and_errors_name_the_file(
        file in any::<Index>(),
        muts in prop::collection::vec(mutation(), 1..5),
        skip_invalid in any::<bool>(),
    ) {
        let mut files: Vec<PathBuf> = Vec::new();
        for dir in ["volcano", "scheduler-plugins", "spark-operator", "training-operator", "kueue"] {
            for e in std::fs::read_dir(format!("{SHARED}/manifests/{dir}")).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "yaml") {
                    files.push(p);
                }
            }
        }
        files.sort();
        let src = file.get(&files);
        let text = std::fs::read_to_string(src).unwrap();
        let mut docs: Vec<Value> = Vec::new();
        for d in serde_norway::Deserializer::from_str(&text) {
            if let Ok(v) = <Value as serde::Deserialize>::deserialize(d)
                && !v.is_null()
            {
                docs.push(v);
            }
        }
        prop_assume!(!docs.is_empty());
        for (k, m) in muts.iter().enumerate() {
            let n = docs.len();
            mutate(&mut docs[k % n], m);
        }
        let dir = case_dir("k8s");
        let out: String = docs
            .iter()
            .map(|d| format!("---\n{}", serde_norway::to_string(d).unwrap()))
            .collect();
        std::fs::write(dir.join("fuzz.yaml"), out).unwrap();
        let params = k8s::Params {
            default_duration: 60.0,
            nodes: "2:cpu=8,memory=32Gi".into(),
            skip_invalid,
        };
        let got = k8s::convert(&dir, &params);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = got {
            // Each object that cannot be read is named by its place in the file, or (for a
            // reference no manifest satisfies) by its kind and name.
            let msg = e.to_string();
            let named = |l: &str| {
                l.contains("fuzz.yaml")
                    || l.split_once(": ").is_some_and(|(head, _)| head.split(' ').count() == 2)
            };
            let lines: Vec<&str> = msg.lines().collect();
            let objects = if lines.len() > 1 { &lines[1..] } else { &lines[..] };
            prop_assert!(
                objects.iter().all(|l| named(l)),
                "{} (skip_invalid {}): {msg}",
                src.display(),
                skip_invalid
            );
        }
    }

    /// The Alibaba 2017 batch converter on damaged rows of the real trace: a rejection names
    /// the file and the line.
    #[test]
    fn alibaba_batch_rows_never_panic(cells in cells(), damage in damage()) {
        let text = mutate_csv(&head("alibaba-v2017-batch/batch_task.csv", 200), &cells);
        let dir = case_dir("alibaba-batch");
        std::fs::write(dir.join("batch_task.csv"), damaged(&text, &damage)).unwrap();
        let params = alibaba_batch::Params { max_gang: 64, nodes: 10, until: None };
        let got = alibaba_batch::convert(&dir, &params);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = got {
            let msg = e.to_string();
            prop_assert!(msg.contains("batch_task.csv:"), "{msg}");
        }
    }

    /// The Alibaba GPU 2023 converter on damaged rows of the real node and pod lists.
    #[test]
    fn alibaba_gpu_rows_never_panic(nodes in cells(), pods in cells(), damage in damage()) {
        let dir = case_dir("alibaba-gpu");
        let csv = dir.join("csv");
        std::fs::create_dir_all(&csv).unwrap();
        let node_text = mutate_csv(&head("alibaba-gpu-v2023/csv/openb_node_list_all_node.csv", 60), &nodes);
        let pod_text = mutate_csv(&head("alibaba-gpu-v2023/csv/openb_pod_list_default.csv", 120), &pods);
        std::fs::write(csv.join("openb_node_list_all_node.csv"), node_text).unwrap();
        std::fs::write(csv.join("openb_pod_list_default.csv"), damaged(&pod_text, &damage)).unwrap();
        let got = alibaba_gpu::convert(&dir, None);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = got {
            let msg = e.to_string();
            prop_assert!(msg.contains("openb_"), "{msg}");
        }
    }

    /// The Helios VC quota converter on damaged rows of the real per-VC GPU counts.
    #[test]
    fn helios_rows_never_panic(cells in cells(), damage in damage()) {
        let text = mutate_csv(&head("helios-vc/Earth_vcs/Earth_gpu_number.csv", 40), &cells);
        let dir = case_dir("helios");
        let file = dir.join("Earth_gpu_number.csv");
        std::fs::write(&file, damaged(&text, &damage)).unwrap();
        let got = helios::convert(&file, None);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = got {
            let msg = e.to_string();
            prop_assert!(msg.contains("Earth_gpu_number.csv"), "{msg}");
        }
    }

    /// The `serve` configuration file: parse, validate, and everything read from it.
    #[test]
    fn the_serve_config_never_panics(muts in prop::collection::vec(mutation(), 1..5), damage in damage()) {
        let mut doc = serde_json::to_value(ServeConfig::default()).unwrap();
        for m in &muts {
            mutate(&mut doc, m);
        }
        let text = serde_norway::to_string(&doc).unwrap();
        let text = String::from_utf8_lossy(&damaged(&text, &damage)).into_owned();
        if let Ok(config) = ServeConfig::parse(&text)
            && config.validate().is_ok()
        {
            let _ = config.engine();
            let _ = config.cycle_period();
            let _ = config.scheduler_names();
        }
    }

    /// Queue records (`queues.source: file`, queue files of `phalanx queues`, traces): read,
    /// then turned into queue specs, which refuse what is wrong with a named field.
    #[test]
    fn queue_records_never_panic(muts in prop::collection::vec(mutation(), 1..5)) {
        let mut doc = json!([
            {"name": "root.research", "weight": 2, "guarantee": {"nvidia.com/gpu": 16},
             "deserved": {"nvidia.com/gpu": 32}, "capability": {"nvidia.com/gpu": 64, "cpu": "500"},
             "reclaimable": true},
            {"name": "root.prod", "ordering": "strict-fifo", "preemption": false},
        ]);
        for m in &muts {
            mutate(&mut doc, m);
        }
        let text = serde_norway::to_string(&doc).unwrap();
        if let Ok(records) = serde_norway::from_str::<Vec<QueueRecord>>(&text) {
            let mut table = ResourceTable::new();
            for r in &records {
                if let Err(e) = r.to_spec(&mut table) {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
