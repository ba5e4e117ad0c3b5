//! End-to-end tests of `phalanx serve` against the in-process API emulator (started by each
//! test, on loopback): gangs bound whole or not at all, a pending gang that starts once room
//! appears, pods bound by another scheduler counted, restarts, two replicas, DAG order, queues,
//! binds retried through API errors or backed off after failing for good, and bad input. Waits are bounded (generous timeouts); nothing asserts on wall time.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gangs_bind_whole_and_a_pending_gang_starts_when_room_appears() {
    let (emu, client) = emulator(2, "cpu=4,memory=16Gi,pods=110").await;
    let s = scheduler(&client, false, "solo").await;
    // Gang a: 3 x 2 cpu fits (8 cpu in all); gang b: 2 x 2 cpu does not fit beside it.
    bound_gang(&client, "a", 3, "2").await;
    create_group(&client, "b", json!({"minMember": 2}), json!({})).await;
    create_pods(
        &client,
        (0..2).map(|i| pod(&format!("b-{i}"), Some("b"), "2", None)),
    )
    .await;
    // b waits, whole: none of its pods is bound, and the API says why.
    let why = wait_for("gang b reported unschedulable", || async {
        let (code, v) = admin_get(&s, "/api/v1/jobs/default/b").await;
        (code == 200 && v["reason"]["label"] == "unschedulable").then_some(v)
    })
    .await;
    // Admitted (it asks no minResources: Volcano's enqueue admits it), not running.
    assert_eq!(why["phase"], "Inqueue", "{why}");
    assert!(
        why["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("Insufficient cpu"),
        "{why}"
    );
    assert_eq!(nodes_of(&client, "b-").await, vec![None, None]);
    // Its PodGroup reads Pending (a scheduler-plugins PodGroup has no Inqueue phase and no
    // conditions: the CRD has neither), and an event explains it.
    let groups: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &plugins_group());
    wait_for("status phase on b", || async {
        let g = groups.get("b").await.ok()?;
        (g.data["status"]["phase"] == "Pending" && g.data["status"].get("conditions").is_none())
            .then_some(())
    })
    .await;
    wait_for("FailedScheduling event on b", || async {
        events_for(&client, "b")
            .await
            .iter()
            .any(|(r, _)| r == "FailedScheduling")
            .then_some(())
    })
    .await;
    // Room appears: a's pods go; b starts.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..3 {
        pods.delete(&format!("a-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    wait_for("gang b bound", || async {
        all_bound(&nodes_of(&client, "b-").await, 2).then_some(())
    })
    .await;
    wait_for("b running in status", || async {
        let g = groups.get("b").await.ok()?;
        (g.data["status"]["phase"] == "Running").then_some(())
    })
    .await;
    let (code, metrics) = admin_get(&s, "/metrics").await;
    assert_eq!(code, 200);
    let text = metrics.as_str().unwrap_or_default().to_string();
    for name in [
        "volcano_e2e_scheduling_latency_milliseconds_bucket",
        "phalanx_gang_attempts_total{result=\"scheduled\"}",
        "phalanx_gang_scheduling_latency_seconds_count",
        "phalanx_pod_scheduling_latency_seconds_count",
        "phalanx_bind_duration_seconds_count",
        // Volcano's label is the Queue object's name; Phalanx's own is the path.
        "volcano_queue_allocated_milli_cpu{queue_name=\"default\"}",
        "phalanx_queue_allocated{queue=\"root.default\",resource=\"cpu\"}",
        "phalanx_evicted_pods_total{queue=\"root.default\",reason=\"reclaim\"} 0",
        "phalanx_leader 1",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    s.stop().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_bound_by_another_scheduler_is_never_double_booked() {
    let (emu, client) = emulator(1, "cpu=4,memory=16Gi,pods=110").await;
    // Another scheduler's pod holds 3 of the node's 4 cpus before we start.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let node = nodes.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let mut other = pod("other", None, "3", None);
    other.spec.as_mut().unwrap().scheduler_name = Some("default-scheduler".into());
    other.spec.as_mut().unwrap().node_name = Some(node);
    create_pods(&client, [other]).await;
    wait_for("the other pod running", || async {
        (phases_of(&client, "other").await == ["Running"]).then_some(())
    })
    .await;
    let s = scheduler(&client, false, "solo").await;
    wait_for("readiness", || async {
        (admin_get(&s, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    create_pods(&client, [pod("ours", None, "2", None)]).await;
    let why = wait_for("our pod reported pending", || async {
        let (_, v) = admin_get(&s, "/api/v1/jobs/default/pod-ours").await;
        (v["reason"]["label"] == "unschedulable").then_some(v)
    })
    .await;
    assert_eq!(nodes_of(&client, "ours").await, vec![None], "{why}");
    // The other pod ends: ours fits now, and the kubelet admits it (no OutOfcpu).
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete("other", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("our pod running", || async {
        (phases_of(&client, "ours").await == ["Running"]).then_some(())
    })
    .await;
    s.stop().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_rebuilds_state_and_binds_nothing_twice() {
    let (emu, client) = emulator(2, "cpu=4,memory=16Gi,pods=110").await;
    let first = scheduler(&client, false, "first").await;
    let before = bound_gang(&client, "a", 3, "2").await;
    first.stop().await.unwrap();
    // While no scheduler runs: a gang that fits only if a is counted, and one that never fits.
    create_group(&client, "b", json!({"minMember": 1}), json!({})).await;
    create_pods(&client, [pod("b-0", Some("b"), "2", None)]).await;
    create_group(&client, "c", json!({"minMember": 2}), json!({})).await;
    create_pods(
        &client,
        (0..2).map(|i| pod(&format!("c-{i}"), Some("c"), "2", None)),
    )
    .await;
    let second = scheduler(&client, false, "second").await;
    wait_for("gang b bound", || async {
        all_bound(&nodes_of(&client, "b-").await, 1).then_some(())
    })
    .await;
    let (_, c) = wait_for("gang c pending with a reason", || async {
        let r = admin_get(&second, "/api/v1/jobs/default/c").await;
        (r.1["reason"]["label"] == "unschedulable").then_some(r)
    })
    .await;
    assert_eq!(c["phase"], "Inqueue");
    assert_eq!(
        nodes_of(&client, "a-").await,
        before,
        "a's pods stay where they were"
    );
    assert_eq!(nodes_of(&client, "c-").await, vec![None, None]);
    let (_, a) = admin_get(&second, "/api/v1/jobs/default/a").await;
    assert_eq!(a["phase"], "Running", "{a}");
    assert_eq!(a["pods"]["bound"], 3, "{a}");
    // Nothing was bound twice: no binding was refused, and every pod runs (no OutOfcpu).
    let metrics = admin_until(&second, "/metrics", |m| {
        m.as_str()
            .is_some_and(|t| t.contains("phalanx_pods_bound_total 1\n"))
    })
    .await;
    let text = metrics.as_str().unwrap_or_default();
    assert!(no_bind_failed(text), "{text}");
    assert!(text.contains("phalanx_pods_bound_total 1\n"), "{text}");
    wait_for("a and b running", || async {
        let mut p = phases_of(&client, "a-").await;
        p.extend(phases_of(&client, "b-").await);
        p.iter().all(|p| p == "Running").then_some(())
    })
    .await;
    second.stop().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_both_bind_and_the_standby_takes_over() {
    let (emu, client) = emulator(4, "cpu=8,memory=32Gi,pods=110").await;
    let one = scheduler(&client, true, "one").await;
    let two = scheduler(&client, true, "two").await;
    let leaders = || (one.shared.leader.is_leader(), two.shared.leader.is_leader());
    wait_for("a leader", || async {
        let (a, b) = leaders();
        (a || b).then_some(())
    })
    .await;
    create_pods(
        &client,
        (0..8).map(|i| pod(&format!("p-{i}"), None, "1", None)),
    )
    .await;
    for _ in 0..40 {
        let (a, b) = leaders();
        assert!(!(a && b), "both replicas lead at once");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_for("all bound", || async {
        all_bound(&nodes_of(&client, "p-").await, 8).then_some(())
    })
    .await;
    let bound = |r: &Running| r.shared.metrics.pods_bound.get();
    assert_eq!(bound(&one) + bound(&two), 8, "each pod bound once");
    assert!(
        bound(&one) == 0 || bound(&two) == 0,
        "only the leader binds"
    );
    // The leader stops; the standby takes over within the lease duration.
    let (leader, standby) = if one.shared.leader.is_leader() {
        (one, two)
    } else {
        (two, one)
    };
    leader.stop().await.unwrap();
    create_pods(
        &client,
        (8..12).map(|i| pod(&format!("p-{i}"), None, "1", None)),
    )
    .await;
    wait_for("the standby binds", || async {
        all_bound(&nodes_of(&client, "p-").await, 12).then_some(())
    })
    .await;
    assert_eq!(standby.shared.metrics.pods_bound.get(), 4);
    assert!(
        standby
            .shared
            .metrics
            .bind_failures
            .get_metric_with_label_values(&["rejected"])
            .unwrap()
            .get()
            == 0
    );
    wait_for("all running", || async {
        phases_of(&client, "p-")
            .await
            .iter()
            .all(|p| p == "Running")
            .then_some(())
    })
    .await;
    standby.stop().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_start_in_order() {
    let (emu, client) = emulator(2, "cpu=8,memory=32Gi,pods=110").await;
    let s = scheduler(&client, false, "solo").await;
    // The second stage is created first; it must wait for the first to succeed.
    create_group(
        &client,
        "train",
        json!({"minMember": 2}),
        json!({"phalanx.dev/depends-on": "prep"}),
    )
    .await;
    create_pods(
        &client,
        (0..2).map(|i| pod(&format!("train-{i}"), Some("train"), "1", None)),
    )
    .await;
    create_group(&client, "prep", json!({"minMember": 2}), json!({})).await;
    create_pods(
        &client,
        (0..2).map(|i| pod(&format!("prep-{i}"), Some("prep"), "1", Some("1"))),
    )
    .await;
    let (_, v) = wait_for("train waits for prep", || async {
        let r = admin_get(&s, "/api/v1/jobs/default/train").await;
        (r.1["reason"]["label"] == "waiting_for_dependencies").then_some(r)
    })
    .await;
    assert!(
        v["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("default/prep"),
        "{v}"
    );
    wait_for("train bound", || async {
        all_bound(&nodes_of(&client, "train-").await, 2).then_some(())
    })
    .await;
    // When train was bound, prep had succeeded.
    assert_eq!(
        phases_of(&client, "prep-").await,
        vec!["Succeeded", "Succeeded"]
    );
    s.stop().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_from_volcano_objects_cap_a_tenant_and_bad_input_is_explained() {
    let (emu, client) = emulator(2, "cpu=8,memory=32Gi,pods=110").await;
    let queues: Api<DynamicObject> = Api::all_with(client.clone(), &volcano_queue());
    for (name, spec) in [
        ("tenant-a", json!({"weight": 1, "capability": {"cpu": "2"}})),
        ("tenant-b", json!({"weight": 1})),
        (
            "broken",
            json!({"weight": 1, "capability": {"cpu": "lots"}}),
        ),
    ] {
        let q: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        queues.create(&PostParams::default(), &q).await.unwrap();
    }
    let s = scheduler(&client, false, "solo").await;
    // The broken queue is refused alone, with its field named; the others are configured.
    wait_for("InvalidQueue event", || async {
        events_for(&client, "broken")
            .await
            .iter()
            .any(|(r, m)| r == "InvalidQueue" && m.contains("capability"))
            .then_some(())
    })
    .await;
    let q = admin_until(&s, "/api/v1/queues", |v| {
        v["queues"]
            .as_array()
            .is_some_and(|l| l.iter().any(|q| q["name"] == "root.tenant-a"))
    })
    .await;
    assert!(
        q["configurationError"]
            .as_str()
            .is_some_and(|e| e.contains("root.broken")),
        "{q}"
    );
    assert!(
        q["queues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["name"] != "root.broken"),
        "{q}"
    );
    queues
        .delete("broken", &DeleteParams::default())
        .await
        .unwrap();
    admin_until(&s, "/api/v1/queues", |v| v["configurationError"].is_null()).await;
    // Volcano PodGroups in each tenant's queue.
    let vgroups: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &volcano_group());
    for (name, queue, min) in [
        ("va", "tenant-a", 2),
        ("vb", "tenant-b", 2),
        ("bad", "tenant-b", -1),
    ] {
        let g: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
            "metadata": {"name": name}, "spec": {"minMember": min, "queue": queue}
        }))
        .unwrap();
        vgroups.create(&PostParams::default(), &g).await.unwrap();
    }
    let vpod = |name: &str, group: &str| {
        let mut p = pod(name, None, "2", None);
        p.metadata.annotations = Some(
            [(
                "scheduling.k8s.io/group-name".to_string(),
                group.to_string(),
            )]
            .into(),
        );
        p
    };
    create_pods(
        &client,
        [
            vpod("va-0", "va"),
            vpod("va-1", "va"),
            vpod("vb-0", "vb"),
            vpod("vb-1", "vb"),
            vpod("bad-0", "bad"),
            vpod("lost-0", "no-such-group"),
        ],
    )
    .await;
    wait_for("tenant b's gang bound", || async {
        all_bound(&nodes_of(&client, "vb-").await, 2).then_some(())
    })
    .await;
    let (_, va) = wait_for("tenant a's gang over its capability", || async {
        let r = admin_get(&s, "/api/v1/jobs/default/va").await;
        (r.1["reason"]["label"] == "over_capability").then_some(r)
    })
    .await;
    assert!(
        va["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("root.tenant-a"),
        "{va}"
    );
    assert_eq!(nodes_of(&client, "va-").await, vec![None, None]);
    // A negative minMember and a missing PodGroup: events name the problem; nothing crashed.
    wait_for("InvalidPodGroup event", || async {
        events_for(&client, "bad")
            .await
            .iter()
            .any(|(r, m)| r == "InvalidPodGroup" && m.contains("spec.minMember"))
            .then_some(())
    })
    .await;
    // The event goes to the pod: a PodGroup that does not exist cannot carry it.
    wait_for("PodGroupNotFound event", || async {
        events_for(&client, "lost-0")
            .await
            .iter()
            .any(|(r, _)| r == "PodGroupNotFound")
            .then_some(())
    })
    .await;
    assert_eq!(nodes_of(&client, "bad-").await, vec![None]);
    assert_eq!(nodes_of(&client, "lost-").await, vec![None]);
    // Volcano PodGroup status is written too.
    wait_for("vb running in status", || async {
        let g = vgroups.get("vb").await.ok()?;
        (g.data["status"]["phase"] == "Running" && g.data["status"]["running"] == 2).then_some(())
    })
    .await;
    assert!(!s.is_finished());
    s.stop().await.unwrap();
    emu.shutdown().await;
}

/// A pod of ours in no group, in Volcano queue `queue`.
fn queued_pod(name: &str, queue: &str) -> Pod {
    let mut p = pod(name, None, "1", None);
    p.metadata.annotations = Some(
        [(
            "scheduling.volcano.sh/queue-name".to_string(),
            queue.to_string(),
        )]
        .into(),
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_of_equal_weight_share_a_full_cluster_evenly() {
    let (emu, client) = emulator(2, "cpu=4,memory=32Gi,pods=110").await;
    let queues: Api<DynamicObject> = Api::all_with(client.clone(), &volcano_queue());
    for name in ["tenant-a", "tenant-b"] {
        let q: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": name}, "spec": {"weight": 1}
        }))
        .unwrap();
        queues.create(&PostParams::default(), &q).await.unwrap();
    }
    // 16 one-cpu jobs, 8 per tenant, tenant a's first; 8 cpus in all. Everything is resident
    // before the scheduler starts, so the initial list is one batch, as in a simulation.
    create_pods(
        &client,
        (0..8).map(|i| queued_pod(&format!("a-{i}"), "tenant-a")),
    )
    .await;
    create_pods(
        &client,
        (0..8).map(|i| queued_pod(&format!("b-{i}"), "tenant-b")),
    )
    .await;
    let s = scheduler(&client, false, "solo").await;
    wait_for("the cluster full", || async {
        let mut n = nodes_of(&client, "a-").await;
        n.extend(nodes_of(&client, "b-").await);
        (n.iter().filter(|x| x.is_some()).count() == 8).then_some(())
    })
    .await;
    let count = |v: Vec<Option<String>>| v.iter().filter(|x| x.is_some()).count();
    assert_eq!(count(nodes_of(&client, "a-").await), 4, "tenant a's share");
    assert_eq!(count(nodes_of(&client, "b-").await), 4, "tenant b's share");
    let tenant_a = |q: &Value| {
        q["queues"]
            .as_array()?
            .iter()
            .find(|q| q["name"] == "root.tenant-a")
            .cloned()
    };
    let q = admin_until(&s, "/api/v1/queues", |q| {
        tenant_a(q).is_some_and(|a| a["allocated"]["cpu"] == 4000)
    })
    .await;
    let a = tenant_a(&q).unwrap();
    assert_eq!(a["allocated"]["cpu"], 4000, "{a}");
    assert_eq!(a["pendingJobs"], 4, "{a}");
    s.stop().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_api_errors_and_dropped_watches_still_bind_whole_gangs() {
    let faults = FaultConfig {
        error_rate: [("bind".to_string(), 0.3)].into(),
        watch_drop_after_ms: Some(400),
        ..FaultConfig::default()
    };
    let (emu, client) = emulator_with(3, "cpu=4,memory=32Gi,pods=110", faults).await;
    // Ten attempts: a bind failing ten times in a row at 30% is a one-in-170,000 event.
    let cfg = ServeConfig {
        bind_retries: 10,
        ..config(false)
    };
    let s = phalanx_k8s::serve::start(client.clone(), cfg, "solo".into())
        .await
        .unwrap();
    for g in 0..3 {
        let name = format!("g{g}");
        create_group(&client, &name, json!({"minMember": 4}), json!({})).await;
        create_pods(
            &client,
            (0..4).map(|i| pod(&format!("{name}-{i}"), Some(&name), "1", None)),
        )
        .await;
    }
    wait_for("every gang bound", || async {
        all_bound(&nodes_of(&client, "g").await, 12).then_some(())
    })
    .await;
    wait_for("every pod running (nothing double-booked)", || async {
        phases_of(&client, "g")
            .await
            .iter()
            .all(|p| p == "Running")
            .then_some(())
    })
    .await;
    // The 500s were retried, not reported as failed binds.
    wait_for("the binder to count 12 binds", || async {
        (s.shared.metrics.pods_bound.get() == 12).then_some(())
    })
    .await;
    for reason in ["rejected", "gave_up", "not_found"] {
        let failed = s
            .shared
            .metrics
            .bind_failures
            .with_label_values(&[reason])
            .get();
        assert_eq!(failed, 0, "{reason}");
    }
    let (_, metrics) = admin_get(&s, "/metrics").await;
    let text = metrics.as_str().unwrap_or_default().to_string();
    let count: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("phalanx_bind_duration_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert_eq!(count, 12.0, "one timed binding per pod, retries inside");
    s.stop().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_whose_binds_fail_for_good_backs_off_says_so_and_is_retried() {
    // Every bind gets a 500; with one attempt per binding, each fails for good.
    let faults = FaultConfig {
        error_rate: [("bind".to_string(), 1.0)].into(),
        ..FaultConfig::default()
    };
    let (emu, client) = emulator_with(2, "cpu=4,memory=16Gi,pods=110", faults).await;
    let cfg = ServeConfig {
        bind_retries: 1,
        bind_backoff_initial_ms: 200,
        bind_backoff_max_ms: 400,
        ..config(false)
    };
    let s = phalanx_k8s::serve::start(client.clone(), cfg, "solo".into())
        .await
        .unwrap();
    create_group(&client, "g", json!({"minMember": 2}), json!({})).await;
    create_pods(
        &client,
        (0..2).map(|i| pod(&format!("g-{i}"), Some("g"), "1", None)),
    )
    .await;
    // The jobs API says why the gang waits and when it is tried again (a scheduler-plugins
    // PodGroup has no conditions to carry it); after failures in a row the wait has doubled
    // to the maximum.
    let message = wait_for("a backoff in g's reason", || async {
        let (_, v) = admin_get(&s, "/api/v1/jobs/default/g").await;
        let m = v["reason"]["message"].as_str()?.to_string();
        (v["reason"]["label"] == "bind_failed" && m.contains("failed binds in a row")).then_some(m)
    })
    .await;
    assert!(message.contains("gave up after 1 attempts"), "{message}");
    assert!(message.contains("backs off for 0.400s"), "{message}");
    // The next try is a wall-clock time (RFC 3339).
    let at = message.rsplit("next try at ").next().unwrap();
    assert!(
        at.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "{message}"
    );
    wait_for("a FailedScheduling event naming the next try", || async {
        events_for(&client, "g")
            .await
            .iter()
            .any(|(r, m)| r == "FailedScheduling" && m.contains("next try at"))
            .then_some(())
    })
    .await;
    assert_eq!(nodes_of(&client, "g-").await, vec![None, None]);
    let gave_up = s
        .shared
        .metrics
        .bind_failures
        .with_label_values(&["gave_up"])
        .get();
    assert!(gave_up >= 2, "{gave_up}");
    // The API server recovers: the next try binds the whole gang.
    emu.state.faults.set_config(FaultConfig::default());
    wait_for("gang g bound", || async {
        all_bound(&nodes_of(&client, "g-").await, 2).then_some(())
    })
    .await;
    let groups: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &plugins_group());
    wait_for("g running in status", || async {
        let g = groups.get("g").await.ok()?;
        (g.data["status"]["phase"] == "Running").then_some(())
    })
    .await;
    s.stop().await.unwrap();
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volcano_queue_parent_chains_of_any_depth_and_a_loop_is_explained() {
    let (emu, client) = emulator(1, "cpu=4,memory=16Gi,pods=110").await;
    let queues: Api<DynamicObject> = Api::all_with(client.clone(), &volcano_queue());
    // team-a under ml under eng, created child first; and two queues naming each other.
    for (name, parent) in [
        ("team-a", "ml"),
        ("ml", "eng"),
        ("eng", "root"),
        ("loop-x", "loop-y"),
        ("loop-y", "loop-x"),
    ] {
        let q: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": name}, "spec": {"weight": 1, "parent": parent}
        }))
        .unwrap();
        queues.create(&PostParams::default(), &q).await.unwrap();
    }
    let s = scheduler(&client, false, "solo").await;
    wait_for("InvalidQueue event naming the loop", || async {
        events_for(&client, "loop-x")
            .await
            .iter()
            .any(|(r, m)| {
                r == "InvalidQueue"
                    && m.contains("spec.parent")
                    && m.contains("loop-x -> loop-y -> loop-x")
            })
            .then_some(())
    })
    .await;
    admin_until(&s, "/api/v1/queues", |q| {
        q["configurationError"]
            .as_str()
            .is_some_and(|e| e.contains("loops"))
    })
    .await;
    for name in ["loop-x", "loop-y"] {
        queues.delete(name, &DeleteParams::default()).await.unwrap();
    }
    wait_for("the chain configured", || async {
        let (_, q) = admin_get(&s, "/api/v1/queues").await;
        (q["configurationError"].is_null()
            && q["queues"]
                .as_array()?
                .iter()
                .any(|q| q["name"] == "root.eng.ml.team-a"))
        .then_some(())
    })
    .await;
    create_group(
        &client,
        "g",
        json!({"minMember": 1}),
        json!({"scheduling.volcano.sh/queue-name": "team-a"}),
    )
    .await;
    create_pods(&client, [pod("g-0", Some("g"), "1", None)]).await;
    wait_for("g bound", || async {
        all_bound(&nodes_of(&client, "g-").await, 1).then_some(())
    })
    .await;
    let job = admin_until(&s, "/api/v1/jobs/default/g", |j| j["pods"]["bound"] == 1).await;
    assert_eq!(job["queue"], "root.eng.ml.team-a", "{job}");
    s.stop().await.unwrap();
    emu.shutdown().await;
}

/// The names of the nodes, in order.
async fn node_names(client: &kube::Client) -> Vec<String> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let mut names: Vec<String> = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    names.sort();
    names
}

/// Millicores requested by the live pods bound to `node`.
async fn cpu_bound_on(client: &kube::Client, node: &str) -> i64 {
    let api: Api<Pod> = Api::all(client.clone());
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .map(|p| {
            p.spec.unwrap().containers[0]
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("cpu"))
                .map(|q| {
                    phalanx_model::Quantity::parse(&q.0)
                        .unwrap()
                        .milli_value()
                        .unwrap()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// Issue 14, defects 1 and 2, as they were found: a node deleted and created again under a
/// running gang keeps counting the gang's pods, and no bound pod is bound again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_deleted_and_created_again_under_a_gang_is_not_overcommitted() {
    let (emu, client) = emulator(3, "cpu=2,memory=16Gi,pods=110").await;
    let s = scheduler(&client, false, "solo").await;
    let placed = bound_gang(&client, "h", 4, "1").await;
    // A node holding two of h's pods (binpack fills nodes).
    let target = node_names(&client)
        .await
        .into_iter()
        .find(|n| placed.iter().filter(|p| p.as_deref() == Some(n)).count() == 2)
        .expect("a node with two pods of h");
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let mut saved = nodes.get(&target).await.unwrap();
    saved.metadata.resource_version = None;
    saved.metadata.uid = None;
    saved.metadata.creation_timestamp = None;
    nodes
        .delete(&target, &DeleteParams::default())
        .await
        .unwrap();
    // Long enough for several cycles and for a re-bind loop to show, short of pod GC.
    tokio::time::sleep(Duration::from_secs(3)).await;
    nodes.create(&PostParams::default(), &saved).await.unwrap();
    create_group(&client, "g", json!({"minMember": 2}), json!({})).await;
    create_pods(
        &client,
        (0..2).map(|i| {
            let mut p = pod(&format!("g-{i}"), Some("g"), "1", None);
            p.spec.as_mut().unwrap().node_selector =
                Some([("kubernetes.io/hostname".to_string(), target.clone())].into());
            p
        }),
    )
    .await;
    let g = admin_until(&s, "/api/v1/jobs/default/g", |v| {
        v["reason"]["label"] == "unschedulable"
    })
    .await;
    assert_eq!(g["phase"], "Inqueue", "{g}");
    assert_eq!(nodes_of(&client, "g-").await, vec![None, None]);
    assert!(cpu_bound_on(&client, &target).await <= 2000);
    assert_eq!(nodes_of(&client, "h-").await, placed, "h's pods stay bound");
    let h = admin_until(&s, "/api/v1/jobs/default/h", |v| v["pods"]["bound"] == 4).await;
    assert_eq!(h["phase"], "Running", "{h}");
    let (_, metrics) = admin_get(&s, "/metrics").await;
    let text = metrics.as_str().unwrap_or_default();
    assert!(no_bind_failed(text), "no bound pod is bound again: {text}");
    assert!(text.contains("phalanx_pods_bound_total 4\n"), "{text}");
    s.stop().await.unwrap();
    emu.shutdown().await;
}

/// A pod of the owned gang `name` (its controller would recreate it once deleted).
fn owned_pod(name: &str, group: &str, node: Option<&str>) -> Pod {
    let mut p = pod(name, Some(group), "1", None);
    p.metadata.owner_references = Some(vec![
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job", "name": group, "uid": "job-uid",
            "controller": true
        }))
        .unwrap(),
    ]);
    p.spec.as_mut().unwrap().node_name = node.map(str::to_string);
    p
}

/// Issue 14, defect 3: a scheduler that starts (or restarts) with part of a gang bound and no
/// room for the rest undoes it: the bound pods are deleted for their controller to recreate,
/// and the gang forms whole once there is room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_partly_bound_at_start_is_undone_not_left_partial() {
    let (emu, client) = emulator(2, "cpu=8,memory=64Gi,pods=110").await;
    let names = node_names(&client).await;
    // What a scheduler killed mid-bind leaves: 4 of a 10-pod owned gang bound (as its binds
    // landed), the 6 others pending, and the room they needed taken by other pods since.
    create_group(&client, "big", json!({"minMember": 10}), json!({})).await;
    create_pods(
        &client,
        (0..10).map(|i| owned_pod(&format!("big-{i}"), "big", (i < 4).then_some(&*names[0]))),
    )
    .await;
    let filler = |name: &str, cpu: &str, node: &str| {
        let mut p = pod(name, None, cpu, None);
        p.spec.as_mut().unwrap().scheduler_name = Some("default-scheduler".into());
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        p
    };
    create_pods(
        &client,
        [
            filler("fill-0", "4", &names[0]),
            filler("fill-1", "8", &names[1]),
        ],
    )
    .await;
    let s = scheduler(&client, false, "restarted").await;
    // The partial gang is undone: its bound pods are deleted.
    wait_for("the bound pods of big deleted", || async {
        let bound = nodes_of(&client, "big-").await;
        (bound.len() == 6 && bound.iter().all(Option::is_none)).then_some(())
    })
    .await;
    let big = admin_until(&s, "/api/v1/jobs/default/big", |v| {
        v["reason"]["label"] == "gang_incomplete"
    })
    .await;
    let message = big["reason"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("4 of the gang's 10 pods were bound and the rest found no room"),
        "{big}"
    );
    // Room appears and the controller recreates the deleted pods: the gang binds whole.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete("fill-1", &DeleteParams::default())
        .await
        .unwrap();
    create_pods(
        &client,
        (0..4).map(|i| owned_pod(&format!("big-{i}"), "big", None)),
    )
    .await;
    wait_for("big bound whole", || async {
        all_bound(&nodes_of(&client, "big-").await, 10).then_some(())
    })
    .await;
    s.stop().await.unwrap();
    emu.shutdown().await;
}

/// Issue 16: operators (the training operator, Volcano's job controller) create pods only once
/// their PodGroup is `Inqueue`. A PodGroup created before its pods is admitted when its queue
/// has room for its `minResources`, and stays `Pending` with an event naming the queue when it
/// has not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_podgroup_without_pods_goes_inqueue_when_its_queue_has_room() {
    let (emu, client) = emulator(2, "cpu=8,memory=32Gi,pods=110").await;
    let queues: Api<DynamicObject> = Api::all_with(client.clone(), &volcano_queue());
    let q: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
        "metadata": {"name": "small"}, "spec": {"weight": 1, "capability": {"cpu": "4"}}
    }))
    .unwrap();
    queues.create(&PostParams::default(), &q).await.unwrap();
    let s = scheduler(&client, false, "solo").await;
    admin_until(&s, "/api/v1/queues", |v| {
        v["queues"]
            .as_array()
            .is_some_and(|l| l.iter().any(|q| q["name"] == "root.small"))
    })
    .await;
    let groups: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &volcano_group());
    for (name, cpu) in [("fits", "3"), ("too-big", "6")] {
        let g: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
            "metadata": {"name": name},
            "spec": {"minMember": 2, "queue": "small", "minResources": {"cpu": cpu}}
        }))
        .unwrap();
        groups.create(&PostParams::default(), &g).await.unwrap();
    }
    let phase_of = |name: &'static str| {
        let groups = groups.clone();
        async move {
            groups.get(name).await.ok()?.data["status"]["phase"]
                .as_str()
                .map(str::to_string)
        }
    };
    wait_for("fits Inqueue", || async {
        (phase_of("fits").await.as_deref() == Some("Inqueue")).then_some(())
    })
    .await;
    let why = wait_for("an event on too-big naming the queue", || async {
        events_for(&client, "too-big")
            .await
            .into_iter()
            .find(|(r, _)| r == "Unschedulable")
            .map(|(_, m)| m)
    })
    .await;
    assert!(why.contains("queue root.small"), "{why}");
    assert_eq!(phase_of("too-big").await.as_deref(), Some("Pending"));
    s.stop().await.unwrap();
    emu.shutdown().await;
}

/// The `PodScheduled` condition of pod `name`: (status, reason, message).
async fn pod_scheduled(client: &kube::Client, name: &str) -> Option<(String, String, String)> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p = api.get(name).await.ok()?;
    let c = p
        .status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")?;
    Some((
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    ))
}

/// Issue 16, item 4: cluster-autoscaler and Karpenter add nodes only for pods marked
/// `PodScheduled=False`, reason `Unschedulable`. Every pending pod of a gang that finds no room
/// carries it, with the engine's message, until the gang is bound (binding sets it `True`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_a_gang_without_room_are_marked_unschedulable_until_bound() {
    let (emu, client) = emulator(1, "cpu=4,memory=16Gi,pods=110").await;
    let s = scheduler(&client, false, "solo").await;
    create_pods(&client, [pod("blocker", None, "3", Some("3"))]).await;
    wait_for("blocker bound", || async {
        all_bound(&nodes_of(&client, "blocker").await, 1).then_some(())
    })
    .await;
    create_group(&client, "wide", json!({"minMember": 2}), json!({})).await;
    create_pods(
        &client,
        (0..2).map(|i| pod(&format!("wide-{i}"), Some("wide"), "2", None)),
    )
    .await;
    for name in ["wide-0", "wide-1"] {
        let (status, reason, message) = wait_for("PodScheduled=False", || async {
            pod_scheduled(&client, name)
                .await
                .filter(|(s, _, _)| s == "False")
        })
        .await;
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "Unschedulable")
        );
        assert!(message.contains("cpu"), "{name}: {message}");
    }
    // A pod waiting for the rest of its gang is not one more nodes would help: no condition.
    create_group(&client, "short", json!({"minMember": 3}), json!({})).await;
    create_pods(&client, [pod("short-0", Some("short"), "1", None)]).await;
    // The blocker ends; the gang binds and the condition turns True.
    for name in ["wide-0", "wide-1"] {
        wait_for("PodScheduled=True", || async {
            pod_scheduled(&client, name)
                .await
                .filter(|(s, _, _)| s == "True")
        })
        .await;
    }
    assert_eq!(pod_scheduled(&client, "short-0").await, None);
    s.stop().await.unwrap();
    emu.shutdown().await;
}

/// Whether every `phalanx_bind_failures_total` series of a /metrics text is 0 (they exist at 0
/// from the start).
fn no_bind_failed(text: &str) -> bool {
    text.lines()
        .filter(|l| l.starts_with("phalanx_bind_failures_total{"))
        .all(|l| l.ends_with(" 0"))
}
