//! The harness the end-to-end tests share: an API emulator on loopback, `phalanx serve`
//! against it, and helpers to create gangs and wait (bounded) for what the cluster shows.

#![allow(dead_code, unused_imports)] // each test crate uses its own share of the helpers

pub use std::time::Duration;

pub use bytes::Bytes;
pub use hyper::Method;
pub use k8s_openapi::api::core::v1::Pod;
pub use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
pub use phalanx_emulator::client::Conn;
pub use phalanx_emulator::faults::FaultConfig;
pub use phalanx_emulator::kubelet::KubeletConfig;
pub use phalanx_emulator::{EmulatorConfig, NodeShape, RunningEmulator, start};
pub use phalanx_k8s::config::{AdminConfig, LeaderConfig, ServeConfig};
pub use phalanx_k8s::serve::Running;
pub use serde_json::{Value, json};

pub const TIMEOUT: Duration = Duration::from_secs(30);

pub async fn emulator(nodes: usize, shape: &str) -> (RunningEmulator, kube::Client) {
    emulator_with(nodes, shape, FaultConfig::default()).await
}

pub async fn emulator_with(
    nodes: usize,
    shape: &str,
    faults: FaultConfig,
) -> (RunningEmulator, kube::Client) {
    let cfg = EmulatorConfig {
        faults,
        nodes,
        shapes: vec![NodeShape::parse(shape).unwrap()],
        kubelet: KubeletConfig {
            start_delay: Duration::from_millis(20),
            stop_delay: Duration::from_millis(20),
        },
        bookmark_interval: Duration::from_millis(500),
        ..EmulatorConfig::default()
    };
    let emu = start(cfg).await.expect("emulator starts");
    let config = kube::Config::new(emu.url().parse().unwrap());
    let client = kube::Client::try_from(config).expect("client");
    (emu, client)
}

pub fn config(leader: bool) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        cycle_period_ms: 100,
        batch_window_ms: 5,
        status_interval_ms: 100,
        // The admin API's own tests turn authentication on, against an emulator with tokens.
        admin: AdminConfig {
            authentication: false,
            ..AdminConfig::default()
        },
        leader_election: LeaderConfig {
            enabled: leader,
            lease_namespace: "kube-system".into(),
            lease_duration_seconds: 3,
            renew_period_seconds: 1,
            ..LeaderConfig::default()
        },
        ..ServeConfig::default()
    }
}

pub async fn scheduler(client: &kube::Client, leader: bool, identity: &str) -> Running {
    phalanx_k8s::serve::start(client.clone(), config(leader), identity.into())
        .await
        .expect("scheduler starts")
}

/// Polls `check` until it returns `Some`, for at most [`TIMEOUT`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn plugins_group() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("scheduling.x-k8s.io", "v1alpha1", "PodGroup"),
        "podgroups",
    )
}

pub fn volcano_group() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("scheduling.volcano.sh", "v1beta1", "PodGroup"),
        "podgroups",
    )
}

pub fn volcano_queue() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("scheduling.volcano.sh", "v1beta1", "Queue"),
        "queues",
    )
}

pub async fn create_group(client: &kube::Client, name: &str, spec: Value, annotations: Value) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &plugins_group());
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
        "metadata": {"name": name, "annotations": annotations}, "spec": spec
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

/// A pod of ours (`schedulerName: phalanx`) in scheduler-plugins group `group` (if any).
pub fn pod(name: &str, group: Option<&str>, cpu: &str, duration: Option<&str>) -> Pod {
    let mut labels = serde_json::Map::new();
    if let Some(g) = group {
        labels.insert("scheduling.x-k8s.io/pod-group".into(), json!(g));
    }
    let mut ann = serde_json::Map::new();
    if let Some(d) = duration {
        ann.insert("phalanx.dev/duration".into(), json!(d));
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels, "annotations": ann},
        "spec": {"schedulerName": "phalanx", "containers": [{"name": "main", "image": "pause",
                 "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}
    }))
    .unwrap()
}

pub async fn create_pods(client: &kube::Client, pods: impl IntoIterator<Item = Pod>) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    for p in pods {
        api.create(&PostParams::default(), &p).await.unwrap();
    }
}

/// Nodes of the pods whose name starts with `prefix` (None: not bound).
pub async fn nodes_of(client: &kube::Client, prefix: &str) -> Vec<Option<String>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut out: Vec<(String, Option<String>)> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.name.as_deref().unwrap_or("").starts_with(prefix))
        .map(|p| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                p.spec.and_then(|s| s.node_name),
            )
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

pub async fn phases_of(client: &kube::Client, prefix: &str) -> Vec<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.name.as_deref().unwrap_or("").starts_with(prefix))
        .map(|p| p.status.and_then(|s| s.phase).unwrap_or_default())
        .collect()
}

pub async fn admin_get(running: &Running, path: &str) -> (u16, Value) {
    let mut conn = Conn::connect(&running.addr.to_string()).await.unwrap();
    let (code, body) = conn
        .request(Method::GET, path, "text/plain", Bytes::new())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body).to_string();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Reads an admin path until `ok` holds: the engine thread publishes its view up to 100 ms
/// after a change, and the binder counts a bind only once the API answers, so what a test
/// sees in the cluster can be ahead of what the admin API and metrics say.
pub async fn admin_until(running: &Running, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("{path} to agree"), || async {
        let (code, v) = admin_get(running, path).await;
        (code == 200 && ok(&v)).then_some(v)
    })
    .await
}

pub async fn events_for(client: &kube::Client, name: &str) -> Vec<(String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::all(client.clone());
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

pub fn all_bound(nodes: &[Option<String>], n: usize) -> bool {
    nodes.len() == n && nodes.iter().all(Option::is_some)
}

/// Creates the scheduler-plugins gang `name` of `n` pods of `cpu` (minMember `n`) and waits
/// until it is bound whole; returns the nodes of its pods, in pod-name order.
pub async fn bound_gang(
    client: &kube::Client,
    name: &str,
    n: usize,
    cpu: &str,
) -> Vec<Option<String>> {
    create_group(client, name, json!({"minMember": n}), json!({})).await;
    create_pods(
        client,
        (0..n).map(|i| pod(&format!("{name}-{i}"), Some(name), cpu, None)),
    )
    .await;
    let prefix = format!("{name}-");
    wait_for(&format!("gang {name} bound"), || async {
        let nodes = nodes_of(client, &prefix).await;
        all_bound(&nodes, n).then_some(nodes)
    })
    .await
}

/// Every string value of `key` anywhere in `v` (objects and arrays searched to any depth), in
/// document order: the `schedulerName`s of a manifest, the `expr`s of a dashboard.
pub fn strings_at(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == key => out.push(s.clone()),
                    _ => strings_at(x, key, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| strings_at(x, key, out)),
        _ => {}
    }
}
