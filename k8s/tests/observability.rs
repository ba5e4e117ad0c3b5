//! Issue 18: the Grafana dashboard (`deploy/grafana/phalanx.json`) and the alert rules
//! (`deploy/helm/phalanx/files/alerts.yaml`) use only metrics a running `phalanx serve`
//! exposes, under the names and labels it exposes them with.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

/// Every `phalanx_*` and `volcano_*` metric name in a PromQL expression.
fn metric_names(expr: &str, out: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = (expr[i..].starts_with("phalanx_") || expr[i..].starts_with("volcano_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            out.insert(expr[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
}

fn deploy(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_use_is_served() {
    let mut used = Vec::new();
    let dashboard: Value = serde_json::from_str(&deploy("grafana/phalanx.json")).unwrap();
    strings_at(&dashboard, "expr", &mut used);
    let templating = dashboard["templating"].to_string();
    used.push(templating);
    let alerts: Value = serde_norway::from_str(&deploy("helm/phalanx/files/alerts.yaml")).unwrap();
    let rules = alerts["groups"][0]["rules"].as_array().unwrap();
    assert!(rules.len() >= 4, "alerts: {rules:?}");
    strings_at(&alerts, "expr", &mut used);
    let mut names = BTreeSet::new();
    for e in &used {
        metric_names(e, &mut names);
    }
    assert!(names.len() > 15, "{names:?}");

    // A cluster with a capped queue, a gang that runs and one that waits.
    let (emu, client) = emulator(1, "cpu=4,memory=16Gi,pods=110").await;
    let queues: Api<DynamicObject> = Api::all_with(client.clone(), &volcano_queue());
    let q: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
        "metadata": {"name": "team"}, "spec": {"weight": 1, "capability": {"cpu": "3"}}
    }))
    .unwrap();
    queues.create(&PostParams::default(), &q).await.unwrap();
    let s = scheduler(&client, false, "solo").await;
    let team = json!({"scheduling.volcano.sh/queue-name": "team"});
    create_group(&client, "runs", json!({"minMember": 2}), team.clone()).await;
    create_pods(
        &client,
        (0..2).map(|i| pod(&format!("runs-{i}"), Some("runs"), "1", None)),
    )
    .await;
    create_group(&client, "waits", json!({"minMember": 2}), team).await;
    create_pods(
        &client,
        (0..2).map(|i| pod(&format!("waits-{i}"), Some("waits"), "1", None)),
    )
    .await;
    wait_for("runs bound", || async {
        all_bound(&nodes_of(&client, "runs-").await, 2).then_some(())
    })
    .await;
    // The engine thread publishes up to 100 ms after a change: poll for a while, then name
    // what is missing.
    let mut text = String::new();
    let mut missing = Vec::new();
    for _ in 0..100 {
        let (_, v) = admin_get(&s, "/metrics").await;
        text = v.as_str().unwrap_or_default().to_string();
        let served = |n: &str| {
            text.lines()
                .any(|l| l.starts_with(n) && l[n.len()..].starts_with(['{', ' ']))
        };
        missing = names.iter().filter(|n| !served(n)).cloned().collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(missing.is_empty(), "not in /metrics: {missing:?}\n{text}");
    assert!(text.contains("phalanx_queue_capability{queue=\"root.team\",resource=\"cpu\"} 3000"));
    s.stop().await.unwrap();
    emu.shutdown().await;
}
