//! End-to-end tests of the emulator's fidelity to kube-apiserver, the kubelet and
//! kube-controller-manager, where what the scheduler's tests can catch depends on it.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Node, ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event as Publish, EventType, Recorder, Reporter};
use phalanx_emulator::kubelet::KubeletConfig;
use phalanx_emulator::podgc::PodGcConfig;
use phalanx_emulator::server::node_object;
use phalanx_emulator::{EmulatorConfig, NodeShape, RunningEmulator, start};
use serde_json::{Value, json};

async fn emulator(
    nodes: usize,
    shape: &str,
    pod_gc: PodGcConfig,
) -> (RunningEmulator, kube::Client) {
    let cfg = EmulatorConfig {
        nodes,
        shapes: vec![NodeShape::parse(shape).unwrap()],
        kubelet: KubeletConfig {
            start_delay: Duration::from_millis(20),
            stop_delay: Duration::from_millis(50),
        },
        pod_gc,
        ..EmulatorConfig::default()
    };
    let emu = start(cfg).await.expect("emulator starts");
    let client = kube::Client::try_from(kube::Config::new(emu.url().parse().unwrap())).unwrap();
    (emu, client)
}

/// One HTTP/1.1 request with the given headers: (status, content type, body).
async fn raw(
    emu: &RunningEmulator,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Bytes) {
    let stream = tokio::net::TcpStream::connect(emu.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", emu.addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = send
        .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        status,
        ct,
        resp.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn json_of(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b:?}"))
}

fn pod(name: &str, cpu: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"schedulerName": "phalanx", "containers": [{"name": "main", "image": "pause",
                 "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}
    }))
    .unwrap()
}

async fn bind(pods: &Api<Pod>, name: &str, node: &str) {
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    pods.create_subresource::<_, kube::core::Status>(
        "binding",
        name,
        &PostParams::default(),
        &binding,
    )
    .await
    .unwrap();
}

async fn wait_phase(pods: &Api<Pod>, name: &str, phase: &str) -> Pod {
    for _ in 0..250 {
        let p = pods.get(name).await.unwrap();
        if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let p = pods.get(name).await.unwrap();
    panic!("pod {name} never reached {phase}: {:?}", p.status);
}

#[tokio::test]
async fn openapi_v2_is_served_in_protobuf_and_json_for_kubectl() {
    let (emu, _) = emulator(0, "cpu=1", PodGcConfig::default()).await;
    // What kubectl asks for before it validates a `kind: List` file on the client side.
    let (code, ct, body) = raw(
        &emu,
        "GET",
        "/openapi/v2?timeout=32s",
        &[(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )],
        "",
    )
    .await;
    assert_eq!(code, 200);
    // Go's mime.ParseMediaType (client-go) rejects the '@' form in a response.
    assert_eq!(
        ct,
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    // Field 1 of openapi.v2.Document, `swagger`, comes first: tag 0x0a, length 3, "2.0".
    assert_eq!(&body[..5], b"\x0a\x032.0");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("/api/v1/namespaces/{namespace}/pods/{name}"));
    assert!(text.contains("fieldValidation"));
    let (code, ct, body) = raw(
        &emu,
        "GET",
        "/openapi/v2",
        &[("accept", "application/json")],
        "",
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    let doc = json_of(&body);
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(
        doc["paths"]["/apis/events.k8s.io/v1/namespaces/{namespace}/events/{name}"]["patch"]["x-kubernetes-group-version-kind"]
            ["group"],
        "events.k8s.io"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn accept_is_negotiated_and_protobuf_bodies_are_refused() {
    let (emu, _) = emulator(1, "cpu=1", PodGcConfig::default()).await;
    let nodes = "/api/v1/nodes";
    // client-go configured for protobuf falls back to JSON, as for a custom resource.
    let (code, ct, body) = raw(
        &emu,
        "GET",
        nodes,
        &[(
            "accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )],
        "",
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    assert_eq!(json_of(&body)["kind"], "NodeList");
    // Protobuf only: 406 NotAcceptable, nothing the emulator can produce.
    let (code, _, body) = raw(
        &emu,
        "GET",
        nodes,
        &[("accept", "application/vnd.kubernetes.protobuf")],
        "",
    )
    .await;
    assert_eq!(code, 406);
    assert_eq!(json_of(&body)["reason"], "NotAcceptable");
    // Preference by q, not by position: the Table wins over plain JSON.
    let (code, _, body) = raw(
        &emu,
        "GET",
        nodes,
        &[(
            "accept",
            "application/json;q=0.5, application/json;as=Table;v=v1;g=meta.k8s.io",
        )],
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(json_of(&body)["kind"], "Table");
    // A write is negotiated before it happens.
    let cm = r#"{"metadata":{"name":"neg"}}"#;
    let path = "/api/v1/namespaces/default/configmaps";
    let (code, _, _) = raw(
        &emu,
        "POST",
        path,
        &[
            ("accept", "application/vnd.kubernetes.protobuf"),
            ("content-type", "application/json"),
        ],
        cm,
    )
    .await;
    assert_eq!(code, 406);
    let (code, _, _) = raw(&emu, "GET", &format!("{path}/neg"), &[], "").await;
    assert_eq!(code, 404, "a refused create stored nothing");
    // Protobuf request bodies are not decoded: 415, with a Status saying what is accepted.
    let (code, _, body) = raw(
        &emu,
        "POST",
        path,
        &[("content-type", "application/vnd.kubernetes.protobuf")],
        "k8s\0",
    )
    .await;
    assert_eq!(code, 415);
    assert!(
        json_of(&body)["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn events_k8s_io_and_core_events_are_one_storage() {
    let (emu, client) = emulator(0, "cpu=1", PodGcConfig::default()).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let p = pods
        .create(&PostParams::default(), &pod("p", "1"))
        .await
        .unwrap();
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some("default".into()),
        name: Some("p".into()),
        uid: p.metadata.uid.clone(),
        ..Default::default()
    };
    let new_api: Api<Event> = Api::default_namespaced(client.clone());
    let core: Api<CoreEvent> = Api::default_namespaced(client.clone());
    let mut core_watch = core
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();

    // The scheduler's path: kube-rs' Recorder writes events.k8s.io/v1, a repeat PATCHes series.
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "phalanx-scheduler".into(),
            instance: Some("phalanx-0".into()),
        },
    );
    let ev = Publish {
        type_: EventType::Warning,
        reason: "FailedScheduling".into(),
        note: Some("0/3 nodes are available".into()),
        action: "Scheduling".into(),
        secondary: None,
    };
    recorder.publish(&ev, &regarding).await.unwrap();
    recorder.publish(&ev, &regarding).await.unwrap();

    // `kubectl describe pod p` searches core events by involvedObject.
    let seen = core
        .list(&ListParams::default().fields("involvedObject.name=p,involvedObject.kind=Pod"))
        .await
        .unwrap();
    assert_eq!(seen.items.len(), 1, "{seen:?}");
    let c = &seen.items[0];
    assert_eq!(c.message.as_deref(), Some("0/3 nodes are available"));
    assert_eq!(c.reason.as_deref(), Some("FailedScheduling"));
    assert_eq!(c.type_.as_deref(), Some("Warning"));
    assert_eq!(c.action.as_deref(), Some("Scheduling"));
    assert_eq!(c.reporting_component.as_deref(), Some("phalanx-scheduler"));
    assert_eq!(c.reporting_instance.as_deref(), Some("phalanx-0"));
    assert_eq!(c.involved_object.uid, p.metadata.uid);
    assert!(c.event_time.is_some());
    assert_eq!(c.series.as_ref().and_then(|s| s.count), Some(2));
    assert!(c.source.as_ref().is_none_or(|s| s.component.is_none()));
    // The watch of core events saw the create and the series update.
    let first = core_watch.next().await.unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Added(e) if e.message.as_deref() == Some("0/3 nodes are available"))
    );
    assert!(matches!(
        core_watch.next().await.unwrap().unwrap(),
        WatchEvent::Modified(_)
    ));

    // The other way: a core event (the kubelet's kind) read through events.k8s.io/v1.
    let legacy: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "p.legacy"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
        "reason": "OutOfcpu", "message": "not enough cpu", "type": "Warning",
        "source": {"component": "kubelet", "host": "node-00001"},
        "count": 3, "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z",
    }))
    .unwrap();
    core.create(&PostParams::default(), &legacy).await.unwrap();
    let e = new_api.get("p.legacy").await.unwrap();
    assert_eq!(e.note.as_deref(), Some("not enough cpu"));
    assert_eq!(
        e.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("p")
    );
    assert_eq!(e.deprecated_count, Some(3));
    assert_eq!(
        e.deprecated_source
            .as_ref()
            .and_then(|s| s.component.as_deref()),
        Some("kubelet")
    );
    assert!(e.deprecated_first_timestamp.is_some() && e.deprecated_last_timestamp.is_some());
    let by_regarding = new_api
        .list(
            &ListParams::default().fields("regarding.name=p,reportingController=phalanx-scheduler"),
        )
        .await
        .unwrap();
    assert_eq!(by_regarding.items.len(), 1);
    assert_eq!(
        by_regarding.items[0].reporting_controller.as_deref(),
        Some("phalanx-scheduler")
    );
    assert_eq!(
        new_api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    // Deleting through one API deletes from both.
    new_api
        .delete("p.legacy", &DeleteParams::default())
        .await
        .unwrap();
    assert!(core.get_opt("p.legacy").await.unwrap().is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn an_event_note_over_1024_bytes_is_invalid() {
    let (emu, client) = emulator(0, "cpu=1", PodGcConfig::default()).await;
    let event = |name: &str, note: &str| {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "phalanx-scheduler", "reportingInstance": "phalanx-0",
            "action": "Scheduling", "reason": "FailedScheduling", "type": "Warning",
            "note": note,
            "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": "p"},
        })
    };
    let path = "/apis/events.k8s.io/v1/namespaces/default/events";
    let ct = [("content-type", "application/json")];
    let (code, _, _) = raw(
        &emu,
        "POST",
        path,
        &ct,
        &event("fits", &"x".repeat(1024)).to_string(),
    )
    .await;
    assert_eq!(code, 201);
    // 1000 characters of two bytes: what a limit counted in characters would let through.
    let long = "é".repeat(1000);
    let (code, _, body) = raw(&emu, "POST", path, &ct, &event("long", &long).to_string()).await;
    assert_eq!(code, 422);
    let st = json_of(&body);
    assert_eq!(st["reason"], "Invalid");
    assert_eq!(st["details"]["causes"][0]["field"], "message");
    assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert_eq!(
        st["message"],
        "Event \"long\" is invalid: message: Invalid value: \"\": can have at most 1024 characters"
    );
    // The same limit through the core API for a new-style event (eventTime set)...
    let core_path = "/api/v1/namespaces/default/events";
    let core_event = json!({
        "metadata": {"name": "core-long"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingComponent": "phalanx-scheduler", "reportingInstance": "phalanx-0",
        "action": "Scheduling", "reason": "FailedScheduling", "type": "Warning",
        "message": long,
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p"},
    });
    let (code, _, _) = raw(&emu, "POST", core_path, &ct, &core_event.to_string()).await;
    assert_eq!(code, 422);
    // ...and on a patch that grows the note of an existing event.
    let events: Api<Event> = Api::default_namespaced(client.clone());
    let err = events
        .patch(
            "fits",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"note": long})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_recreated_node_counts_the_pods_still_bound_to_it() {
    let (emu, client) = emulator(1, "cpu=4,memory=16Gi", PodGcConfig::default()).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    pods.create(&PostParams::default(), &pod("before", "3"))
        .await
        .unwrap();
    bind(&pods, "before", "node-00001").await;
    wait_phase(&pods, "before", "Running").await;

    // The node is deleted and re-created under the same name; its pod is still bound there.
    nodes
        .delete("node-00001", &DeleteParams::default())
        .await
        .unwrap();
    let shape = NodeShape::parse("cpu=4,memory=16Gi").unwrap();
    let again: Node = serde_json::from_value(node_object("node-00001", &shape, 1)).unwrap();
    nodes.create(&PostParams::default(), &again).await.unwrap();
    assert_eq!(
        pods.get("before")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .as_deref(),
        Some("node-00001")
    );

    // 3 of its 4 CPUs are taken by `before`: a second 3-CPU pod does not fit.
    pods.create(&PostParams::default(), &pod("after", "3"))
        .await
        .unwrap();
    bind(&pods, "after", "node-00001").await;
    let failed = wait_phase(&pods, "after", "Failed").await;
    let st = failed.status.unwrap();
    assert_eq!(st.reason.as_deref(), Some("OutOfcpu"));
    assert!(
        st.message.unwrap().contains("used: 3000"),
        "kubelet's message names the usage"
    );
    // A pod that fits is admitted.
    pods.create(&PostParams::default(), &pod("small", "1"))
        .await
        .unwrap();
    bind(&pods, "small", "node-00001").await;
    wait_phase(&pods, "small", "Running").await;

    // A pod created bound to a node name that does not exist yet runs once the node registers.
    let mut early = pod("early", "1");
    early.spec.as_mut().unwrap().node_name = Some("node-late".into());
    pods.create(&PostParams::default(), &early).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        pods.get("early")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Pending")
    );
    let late: Node = serde_json::from_value(node_object("node-late", &shape, 2)).unwrap();
    nodes.create(&PostParams::default(), &late).await.unwrap();
    wait_phase(&pods, "early", "Running").await;
    emu.shutdown().await;
}

#[tokio::test]
async fn pod_gc_deletes_orphans_after_the_quarantine_but_not_from_a_node_that_came_back() {
    let gc = PodGcConfig {
        period: Duration::from_millis(100),
        orphan_quarantine: Some(Duration::from_millis(1500)),
        terminated_threshold: 0,
    };
    let (emu, client) = emulator(2, "cpu=4,memory=16Gi", gc).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    for (p, n) in [("stays", "node-00001"), ("orphan", "node-00002")] {
        pods.create(&PostParams::default(), &pod(p, "1"))
            .await
            .unwrap();
        bind(&pods, p, n).await;
        wait_phase(&pods, p, "Running").await;
    }
    let shape = NodeShape::parse("cpu=4,memory=16Gi").unwrap();
    let mut watch = pods
        .watch(&WatchParams::default().fields("metadata.name=orphan"), "0")
        .await
        .unwrap()
        .boxed();
    nodes
        .delete("node-00001", &DeleteParams::default())
        .await
        .unwrap();
    nodes
        .delete("node-00002", &DeleteParams::default())
        .await
        .unwrap();
    // node-00001 comes back within the quarantine (the scheduler's tests: delete, wait, recreate).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let back: Node = serde_json::from_value(node_object("node-00001", &shape, 1)).unwrap();
    nodes.create(&PostParams::default(), &back).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        pods.get_opt("orphan").await.unwrap().is_none(),
        "orphaned pod deleted"
    );
    let stays = pods.get("stays").await.unwrap();
    assert_eq!(stays.spec.unwrap().node_name.as_deref(), Some("node-00001"));
    assert_eq!(stays.status.unwrap().phase.as_deref(), Some("Running"));
    // As upstream: marked Failed with DisruptionTarget first, then force-deleted.
    let mut saw_failed = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), watch.next()).await {
        match ev.unwrap() {
            WatchEvent::Modified(p) => {
                let st = p.status.unwrap();
                if st.phase.as_deref() == Some("Failed") {
                    let c = st.conditions.unwrap_or_default();
                    assert!(c.iter().any(|c| c.type_ == "DisruptionTarget"
                        && c.reason.as_deref() == Some("DeletionByPodGC")));
                    saw_failed = true;
                }
            }
            WatchEvent::Deleted(_) => {
                assert!(saw_failed, "marked Failed before deletion");
                emu.shutdown().await;
                return;
            }
            _ => {}
        }
    }
    panic!("no DELETED event for the orphaned pod");
}

#[tokio::test]
async fn pod_gc_is_off_with_no_quarantine() {
    let gc = PodGcConfig {
        period: Duration::from_millis(50),
        orphan_quarantine: None,
        terminated_threshold: 0,
    };
    let (emu, client) = emulator(1, "cpu=4,memory=16Gi", gc).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod("kept", "1"))
        .await
        .unwrap();
    bind(&pods, "kept", "node-00001").await;
    Api::<Node>::all(client.clone())
        .delete("node-00001", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(pods.get_opt("kept").await.unwrap().is_some());
    emu.shutdown().await;
}
