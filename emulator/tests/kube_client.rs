//! End-to-end tests of the emulator through kube-rs, the client `phalanx serve` uses.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, EvictParams, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use phalanx_emulator::faults::FaultConfig;
use phalanx_emulator::kubelet::KubeletConfig;
use phalanx_emulator::{EmulatorConfig, NodeShape, RunningEmulator, start};
use serde_json::json;

async fn emulator(nodes: usize, shape: &str) -> (RunningEmulator, kube::Client) {
    let cfg = EmulatorConfig {
        not_ready_eviction: Some(Duration::from_secs(3)),
        nodes,
        shapes: vec![NodeShape::parse(shape).unwrap()],
        kubelet: KubeletConfig {
            start_delay: Duration::from_millis(20),
            stop_delay: Duration::from_millis(50),
        },
        bookmark_interval: Duration::from_millis(200),
        ..EmulatorConfig::default()
    };
    let emu = start(cfg).await.expect("emulator starts");
    let config = kube::Config::new(emu.url().parse().unwrap());
    let client = kube::Client::try_from(config).expect("client");
    (emu, client)
}

fn pod(name: &str, cpu: &str, duration: Option<f64>) -> Pod {
    let mut ann = serde_json::Map::new();
    if let Some(d) = duration {
        ann.insert("phalanx.dev/duration".into(), json!(d.to_string()));
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "demo", "idx": name}, "annotations": ann},
        "spec": {"schedulerName": "phalanx", "containers": [{"name": "main", "image": "pause",
                 "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}
    }))
    .unwrap()
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn bind(pods: &Api<Pod>, name: &str, node: &str) -> Result<kube::core::Status, kube::Error> {
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    pods.create_subresource("binding", name, &PostParams::default(), &binding)
        .await
}

async fn wait_phase(pods: &Api<Pod>, name: &str, phase: &str) -> Pod {
    for _ in 0..200 {
        let p = pods.get(name).await.unwrap();
        if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("pod {name} never reached {phase}");
}

#[tokio::test]
async fn crud_conflicts_and_patches() {
    let (emu, client) = emulator(1, "cpu=4,memory=8Gi").await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let created = pods
        .create(&PostParams::default(), &pod("a", "1", None))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(
        created.spec.as_ref().unwrap().scheduler_name.as_deref(),
        Some("phalanx")
    );

    let dup = pods
        .create(&PostParams::default(), &pod("a", "1", None))
        .await;
    assert_eq!(code(dup.unwrap_err()), 409);

    // A replace with the current resourceVersion succeeds and bumps it; the old one conflicts.
    let mut fresh = pods.get("a").await.unwrap();
    fresh
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("x".into(), "1".into());
    let replaced = pods
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    let rv_old: u64 = fresh
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    let rv_new: u64 = replaced
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv_new > rv_old);
    let stale = pods.replace("a", &PostParams::default(), &fresh).await;
    assert_eq!(code(stale.unwrap_err()), 409);

    // Merge and strategic merge patches on metadata and status.
    let pp = PatchParams::default();
    pods.patch(
        "a",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"y": "2"}}})),
    )
    .await
    .unwrap();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    pods.patch_status("a", &pp, &Patch::Strategic(status))
        .await
        .unwrap();
    let status = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False"}]}});
    let p = pods
        .patch_status("a", &pp, &Patch::Strategic(status))
        .await
        .unwrap();
    let conds = p.status.unwrap().conditions.unwrap();
    assert_eq!(conds.len(), 2, "strategic merge keeps conditions by type");
    let labels = p.metadata.labels.unwrap();
    assert_eq!((labels["x"].as_str(), labels["y"].as_str()), ("1", "2"));
    // Pod specs are immutable: nodeName is set by binding, never by an update.
    let r = pods
        .patch(
            "a",
            &pp,
            &Patch::Merge(json!({"spec": {"nodeName": "node-00001"}})),
        )
        .await;
    assert_eq!(code(r.unwrap_err()), 422);
    // Status cannot be changed through the main resource.
    let p = pods
        .patch(
            "a",
            &pp,
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));

    // Unknown namespace and unknown object.
    let elsewhere: Api<Pod> = Api::namespaced(client.clone(), "nope");
    let r = elsewhere
        .create(&PostParams::default(), &pod("b", "1", None))
        .await;
    assert_eq!(code(r.unwrap_err()), 404);
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(pods.get("a").await.unwrap_err()), 404);

    // Namespaces.
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
    let ns = nss.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    emu.shutdown().await;
}

#[tokio::test]
async fn list_selectors_and_paging() {
    let (emu, client) = emulator(2, "cpu=4,memory=8Gi").await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    for i in 0..7 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"), "100m", None))
            .await
            .unwrap();
    }
    bind(&pods, "p3", "node-00001").await.unwrap();
    let bound = pods
        .list(&ListParams::default().fields("spec.nodeName=node-00001"))
        .await
        .unwrap();
    assert_eq!(bound.items.len(), 1);
    let unbound = pods
        .list(&ListParams::default().fields("spec.nodeName=,spec.schedulerName=phalanx"))
        .await
        .unwrap();
    assert_eq!(unbound.items.len(), 6);
    let sel = pods
        .list(&ListParams::default().labels("app=demo,idx in (p1,p2,zz)"))
        .await
        .unwrap();
    assert_eq!(sel.items.len(), 2);
    let by_name = pods
        .list(&ListParams::default().fields("metadata.name=p5"))
        .await
        .unwrap();
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("p5"));

    // Pages of 3 cover everything once, in order.
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(3);
    loop {
        let page = pods.list(&lp).await.unwrap();
        names.extend(page.items.iter().map(|p| p.metadata.name.clone().unwrap()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(names, (0..7).map(|i| format!("p{i}")).collect::<Vec<_>>());

    let nodes: Api<Node> = Api::all(client);
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn watch_resumes_from_resource_version() {
    let (emu, client) = emulator(0, "cpu=1").await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(&PostParams::default(), &pod("w0", "1", None))
        .await
        .unwrap();
    let list = pods.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    pods.create(&PostParams::default(), &pod("w1", "1", None))
        .await
        .unwrap();
    pods.patch(
        "w0",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"z": "1"}}})),
    )
    .await
    .unwrap();
    pods.delete("w1", &DeleteParams::default()).await.unwrap();

    // A watch from the list's resourceVersion replays exactly what happened after it.
    let wp = WatchParams::default().timeout(5);
    let mut stream = pods.watch(&wp, &rv).await.unwrap().boxed();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(p) => seen.push(format!("ADDED {}", p.metadata.name.unwrap())),
            WatchEvent::Modified(p) => seen.push(format!("MODIFIED {}", p.metadata.name.unwrap())),
            WatchEvent::Deleted(p) => seen.push(format!("DELETED {}", p.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(seen, ["ADDED w1", "MODIFIED w0", "DELETED w1"]);

    // Bookmarks arrive when asked for.
    let wp = WatchParams::default().timeout(5); // bookmarks are on by default
    let mut stream = pods.watch(&wp, &rv).await.unwrap().boxed();
    let mut bookmark = false;
    for _ in 0..10 {
        if let WatchEvent::Bookmark(b) = stream.try_next().await.unwrap().unwrap() {
            bookmark = !b.metadata.resource_version.is_empty();
            break;
        }
    }
    assert!(bookmark);

    // After a compaction the old resourceVersion is gone: 410 in the stream.
    emu.state.store.compact();
    let mut stream = pods
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn kube_watcher_recovers_from_410_and_dropped_connections() {
    let (emu, client) = emulator(0, "cpu=1").await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(&PostParams::default(), &pod("r0", "1", None))
        .await
        .unwrap();
    let mut events = watcher(pods.clone(), watcher::Config::default()).boxed();
    let mut names = std::collections::BTreeSet::new();
    let next_name = |ev: watcher::Event<Pod>| match ev {
        watcher::Event::Apply(p) | watcher::Event::InitApply(p) => p.metadata.name,
        _ => None,
    };
    // Initial list.
    while !names.contains("r0") {
        if let Some(n) = next_name(events.try_next().await.unwrap().unwrap()) {
            names.insert(n);
        }
    }
    // Cut every watch and forget the history: the watcher's re-watch gets 410 and it relists.
    emu.state.store.compact();
    emu.state.faults.drop_all_watches();
    pods.create(&PostParams::default(), &pod("r1", "1", None))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !names.contains("r1") {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("watcher saw r1 in time")
            .unwrap();
        match ev {
            Ok(ev) => {
                if let Some(n) = next_name(ev) {
                    names.insert(n);
                }
            }
            // The watcher reports the 410 and recovers on the next poll.
            Err(e) => assert!(
                e.to_string().contains("410")
                    || e.to_string().contains("Expired")
                    || e.to_string().contains("too old"),
                "{e}"
            ),
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn binding_conflicts_and_kubelet_lifecycle() {
    let (emu, client) = emulator(2, "cpu=2,memory=8Gi").await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod("job-0", "2", Some(0.2)))
        .await
        .unwrap();
    let st = bind(&pods, "job-0", "node-00001").await.unwrap();
    assert_eq!(st.code, 201);
    assert_eq!(
        code(bind(&pods, "job-0", "node-00002").await.unwrap_err()),
        409
    );
    assert_eq!(
        code(bind(&pods, "missing", "node-00001").await.unwrap_err()),
        404
    );
    pods.create(&PostParams::default(), &pod("job-1", "2", None))
        .await
        .unwrap();
    assert_eq!(
        code(bind(&pods, "job-1", "no-such-node").await.unwrap_err()),
        404
    );
    let mut gated = pod("gated", "1", None);
    gated.spec.as_mut().unwrap().scheduling_gates = Some(vec![
        serde_json::from_value(json!({"name": "example.com/wait"})).unwrap(),
    ]);
    pods.create(&PostParams::default(), &gated).await.unwrap();
    assert_eq!(
        code(bind(&pods, "gated", "node-00001").await.unwrap_err()),
        409
    );

    let running = wait_phase(&pods, "job-0", "Running").await;
    let st = running.status.unwrap();
    assert!(st.pod_ip.is_some() && st.start_time.is_some());
    assert_eq!(
        running.spec.unwrap().node_name.as_deref(),
        Some("node-00001")
    );
    wait_phase(&pods, "job-0", "Succeeded").await;

    // Double-booking: two 2-CPU pods bound to one 2-CPU node; the kubelet rejects the second.
    pods.create(&PostParams::default(), &pod("x", "2", None))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("y", "1500m", None))
        .await
        .unwrap();
    bind(&pods, "x", "node-00002").await.unwrap();
    bind(&pods, "y", "node-00002").await.unwrap();
    let failed = wait_phase(&pods, "y", "Failed").await;
    assert_eq!(failed.status.unwrap().reason.as_deref(), Some("OutOfcpu"));
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::default_namespaced(client.clone());
    let about_y = events
        .list(&ListParams::default().fields("involvedObject.name=y,involvedObject.kind=Pod"))
        .await
        .unwrap();
    assert_eq!(about_y.items[0].reason.as_deref(), Some("OutOfcpu"));
    wait_phase(&pods, "x", "Running").await;

    // Graceful deletion of a running pod: terminating first, then gone.
    let deleted = pods.delete("x", &DeleteParams::default()).await.unwrap();
    let terminating = deleted.left().expect("a running pod terminates gracefully");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    for _ in 0..100 {
        if pods.get_opt("x").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pods.get_opt("x").await.unwrap().is_none());

    // Eviction of a bound pod goes through the same path.
    pods.create(&PostParams::default(), &pod("e", "1", None))
        .await
        .unwrap();
    bind(&pods, "e", "node-00002").await.unwrap();
    wait_phase(&pods, "e", "Running").await;
    pods.evict("e", &EvictParams::default()).await.unwrap();
    assert!(
        pods.get("e")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn leases_for_leader_election() {
    let (emu, client) = emulator(0, "cpu=1").await;
    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "phalanx-leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    let l = leases.create(&PostParams::default(), &lease).await.unwrap();
    // Two candidates read the same version; only the first update wins.
    let mut mine = l.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let mut theirs = l.clone();
    theirs.spec.as_mut().unwrap().holder_identity = Some("c".into());
    leases
        .replace("phalanx-leader", &PostParams::default(), &mine)
        .await
        .unwrap();
    let lost = leases
        .replace("phalanx-leader", &PostParams::default(), &theirs)
        .await;
    assert_eq!(code(lost.unwrap_err()), 409);
    let now = leases.get("phalanx-leader").await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_deref(), Some("b"));
    emu.shutdown().await;
}

#[tokio::test]
async fn crds_serve_their_resources() {
    let (emu, client) = emulator(0, "cpu=1").await;
    // The shipped Volcano PodGroup.
    let gvk = GroupVersionKind::gvk("scheduling.volcano.sh", "v1beta1", "PodGroup");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "podgroups");
    let pgs: Api<DynamicObject> = Api::default_namespaced_with(client.clone(), &ar);
    let pg: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
        "metadata": {"name": "pg1"}, "spec": {"minMember": 3, "queue": "default"}
    }))
    .unwrap();
    pgs.create(&PostParams::default(), &pg).await.unwrap();
    let got = pgs.get("pg1").await.unwrap();
    assert_eq!(got.data["spec"]["minMember"], 3);
    // Volcano's PodGroup CRD has no status subresource: /status is 404 as on a real cluster.
    let r = pgs
        .patch_status(
            "pg1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await;
    assert_eq!(code(r.unwrap_err()), 404);

    // A new cluster-scoped CRD becomes servable at once.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    let c = crds.create(&PostParams::default(), &crd).await.unwrap();
    assert!(
        c.status
            .unwrap()
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Established")
    );
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "size": 2
    }))
    .unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        code(widgets.list(&ListParams::default()).await.unwrap_err()),
        404
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn injected_faults_and_not_ready_nodes() {
    let (emu, client) = emulator(1, "cpu=2,memory=4Gi").await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let mut cfg = emu.state.faults.config();
    cfg.error_rate.insert("create".into(), 1.0);
    emu.state.faults.set_config(cfg);
    let r = pods
        .create(&PostParams::default(), &pod("f", "1", None))
        .await;
    assert_eq!(code(r.unwrap_err()), 500);
    emu.state.faults.set_config(FaultConfig {
        throttle_rate: 1.0,
        ..FaultConfig::default()
    });
    // kube-rs retries 429 with backoff by default; see the raw 429 without that.
    let mut raw = kube::Config::new(emu.url().parse().unwrap());
    raw.default_retry = false;
    let raw_pods: Api<Pod> = Api::default_namespaced(kube::Client::try_from(raw).unwrap());
    assert_eq!(code(raw_pods.get("f").await.unwrap_err()), 429);
    // Half the requests throttled: the retrying client gets through.
    emu.state.faults.set_config(FaultConfig {
        throttle_rate: 0.5,
        ..FaultConfig::default()
    });
    for _ in 0..5 {
        assert_eq!(code(pods.get("f").await.unwrap_err()), 404);
    }
    emu.state.faults.set_config(Default::default());

    // A NotReady node holds its pods where they are until it is Ready again.
    phalanx_emulator::server::set_node_ready(&emu.state, "node-00001", false).unwrap();
    let nodes: Api<Node> = Api::all(client);
    let n = nodes.get("node-00001").await.unwrap();
    let taints = n.spec.unwrap().taints.unwrap();
    assert!(
        taints
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable")
    );
    pods.create(&PostParams::default(), &pod("held", "1", None))
        .await
        .unwrap();
    bind(&pods, "held", "node-00001").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let p = pods.get("held").await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    phalanx_emulator::server::set_node_ready(&emu.state, "node-00001", true).unwrap();
    wait_phase(&pods, "held", "Running").await;

    // A client can also take a node NotReady by patching its status (strategic merge on the
    // conditions list); the kubelet then holds new pods there too.
    let ready = |status: &str| json!({"status": {"conditions": [{"type": "Ready", "status": status, "reason": "Test"}]}});
    let pp = PatchParams::default();
    let n = nodes
        .patch_status("node-00001", &pp, &Patch::Strategic(ready("False")))
        .await
        .unwrap();
    assert_eq!(
        n.status.unwrap().conditions.unwrap().len(),
        4,
        "merged by type"
    );
    pods.create(&PostParams::default(), &pod("held2", "100m", None))
        .await
        .unwrap();
    bind(&pods, "held2", "node-00001").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let p = pods.get("held2").await.unwrap();
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    nodes
        .patch_status("node-00001", &pp, &Patch::Strategic(ready("True")))
        .await
        .unwrap();
    wait_phase(&pods, "held2", "Running").await;

    // A node that stays NotReady past the eviction delay has its pods evicted; they stay
    // Terminating while the node is down and are gone once it is back.
    phalanx_emulator::server::set_node_ready(&emu.state, "node-00001", false).unwrap();
    let mut terminating = false;
    for _ in 0..500 {
        let p = pods.get("held").await.unwrap();
        if p.metadata.deletion_timestamp.is_some() {
            terminating = true;
            // Marked as evicted first, as upstream's taint eviction controller does.
            let disrupted = p
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .find(|c| c.type_ == "DisruptionTarget")
                .map(|c| (c.status.clone(), c.reason.clone()));
            assert_eq!(
                disrupted,
                Some(("True".into(), Some("DeletionByTaintManager".into())))
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(terminating, "pod on a NotReady node was not evicted");
    phalanx_emulator::server::set_node_ready(&emu.state, "node-00001", true).unwrap();
    for _ in 0..500 {
        if pods.get_opt("held").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pods.get_opt("held").await.unwrap().is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn selector_watch_sees_objects_enter_and_leave() {
    let (emu, client) = emulator(1, "cpu=8,memory=8Gi").await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(&PostParams::default(), &pod("s", "1", None))
        .await
        .unwrap();
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    // A scheduler watches unbound pods: binding makes the pod leave the selection (DELETED).
    let wp = WatchParams::default().fields("spec.nodeName=").timeout(5);
    let mut stream = pods.watch(&wp, &rv).await.unwrap().boxed();
    pods.create(&PostParams::default(), &pod("t", "1", None))
        .await
        .unwrap();
    bind(&pods, "t", "node-00001").await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(p) => seen.push(format!("ADDED {}", p.metadata.name.unwrap())),
            WatchEvent::Deleted(p) => {
                // The last state that matched, at the resourceVersion of the change.
                assert!(p.spec.unwrap().node_name.is_none());
                seen.push(format!("DELETED {}", p.metadata.name.unwrap()))
            }
            WatchEvent::Modified(p) => seen.push(format!("MODIFIED {}", p.metadata.name.unwrap())),
            _ => {}
        }
    }
    assert_eq!(seen, ["ADDED t", "DELETED t"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn kube_watcher_streaming_list() {
    let (emu, client) = emulator(0, "cpu=1").await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    for i in 0..3 {
        pods.create(&PostParams::default(), &pod(&format!("s{i}"), "1", None))
            .await
            .unwrap();
    }
    // sendInitialEvents=true: initial objects, then a bookmark marking the end of them.
    let cfg = watcher::Config::default().streaming_lists();
    let mut events = watcher(pods.clone(), cfg).boxed();
    let mut initial = 0;
    loop {
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::InitApply(_) => initial += 1,
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, 3);
    pods.create(&PostParams::default(), &pod("s3", "1", None))
        .await
        .unwrap();
    loop {
        if let watcher::Event::Apply(p) = events.try_next().await.unwrap().unwrap() {
            assert_eq!(p.metadata.name.as_deref(), Some("s3"));
            break;
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn kubeconfig_written_by_the_cli_works_with_kube_and_metadata_watches() {
    let (emu, _) = emulator(2, "cpu=1").await;
    let path = std::env::temp_dir().join(format!("emu-kubeconfig-{}", std::process::id()));
    phalanx_emulator::cli::write_kubeconfig(&path, &emu.url()).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    // Metadata-only list and watch, as kube's metadata watchers use them.
    let meta = nodes.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(meta.items.len(), 2);
    let metas: Api<kube::core::PartialObjectMeta<Node>> = Api::all(client);
    let mut events = watcher(metas, watcher::Config::default()).boxed();
    let mut seen = 0;
    while seen < 2 {
        if let watcher::Event::InitApply(m) = events.try_next().await.unwrap().unwrap() {
            assert!(m.metadata.name.unwrap().starts_with("node-"));
            seen += 1;
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn watches_end_on_timeout_and_survive_injected_drops() {
    let (emu, client) = emulator(0, "cpu=1").await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    // timeoutSeconds ends the stream (the outer timeout only guards against a hang).
    let wp = WatchParams::default().timeout(1).disable_bookmarks();
    let mut stream = pods.watch(&wp, "0").await.unwrap().boxed();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while stream.try_next().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "watch did not end after timeoutSeconds");

    // Every watch is cut after ~100 ms and one in two re-watches gets 410: kube's watcher
    // still sees every object.
    emu.state.faults.set_config(FaultConfig {
        watch_drop_after_ms: Some(100),
        watch_gone_rate: 0.5,
        ..FaultConfig::default()
    });
    let mut events = watcher(pods.clone(), watcher::Config::default()).boxed();
    let mut names = std::collections::BTreeSet::new();
    for i in 0..10 {
        pods.create(&PostParams::default(), &pod(&format!("d{i}"), "1", None))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let all_seen = tokio::time::timeout(Duration::from_secs(60), async {
        while names.len() < 10 {
            match events.next().await {
                Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => {
                    names.insert(p.metadata.name.unwrap());
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    assert!(all_seen.is_ok(), "watcher saw only {names:?}");
    assert_eq!(names.len(), 10);
    emu.shutdown().await;
}
