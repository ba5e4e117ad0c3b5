//! Issue 17 end to end, as an admin does it: the emulator with two users (an admin and a
//! viewer), `phalanx serve` with its admin API behind TokenReview and SubjectAccessReview, and
//! the real `phalanx queue`, `phalanx jobs` and `phalanx queues` commands with each user's
//! kubeconfig. Kubernetes decides who may change a quota; the scheduler's next cycles follow the
//! change; a change serve would refuse is refused before anything is written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, PostParams};
use phalanx_emulator::auth::{Role, TokenUser};
use phalanx_emulator::kubelet::KubeletConfig;
use phalanx_emulator::{EmulatorConfig, NodeShape, RunningEmulator};
use phalanx_k8s::config::{AdminConfig, LeaderConfig, ServeConfig};
use serde_json::{Value, json};

// The end-to-end harness of the k8s crate's tests (emulator, waits, resources).
#[path = "../k8s/tests/common/mod.rs"]
mod common;
use common::{volcano_group, volcano_queue, wait_for};

/// A scratch folder with the users' kubeconfigs and an empty `$HOME` (no `~/.kube/config`).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("phalanx-admin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("home")).unwrap();
    dir
}

/// Runs `phalanx` with `args`, with no kubeconfig but the one given by flag.
fn phalanx(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phalanx"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("PHALANX_SERVER")
        .env("HOME", home)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run phalanx")
}

/// Runs `phalanx` with the words of `line` (paths here have no spaces).
fn cli(home: &Path, line: &str) -> Output {
    phalanx(home, &line.split_whitespace().collect::<Vec<_>>())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(what: &str, o: Output) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn refused(what: &str, o: Output) -> String {
    assert!(
        !o.status.success(),
        "{what} should fail\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    stderr(&o)
}

async fn client_from(kubeconfig: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// GET on the admin port with an optional bearer token: (status, JSON or text).
async fn admin_get(addr: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut conn = phalanx_emulator::client::Conn::connect(addr)
        .await
        .unwrap()
        .with_token(token.map(str::to_string));
    let (code, body) = conn
        .request(hyper::Method::GET, path, "text/plain", bytes::Bytes::new())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body).into_owned();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A Volcano gang: a PodGroup in `queue` and `n` pods of 4 cpu, each running `duration`.
async fn gang(client: &kube::Client, name: &str, queue: &str, n: usize, duration: &str) {
    let groups: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &volcano_group());
    let pg: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
        "metadata": {"name": name}, "spec": {"minMember": n, "queue": queue}
    }))
    .unwrap();
    groups.create(&PostParams::default(), &pg).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..n {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-{i}"),
                         "annotations": {"scheduling.k8s.io/group-name": name,
                                         "phalanx.dev/duration": duration}},
            "spec": {"schedulerName": "phalanx", "containers": [{"name": "main", "image": "pause",
                     "resources": {"requests": {"cpu": "4", "memory": "1Gi"}}}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
}

fn queue_of<'a>(queues: &'a Value, name: &str) -> &'a Value {
    queues["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["object"] == name))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_a_quota_through_kubernetes_and_a_viewer_sees_jobs_in_line() {
    let dir = scratch("quota");
    let home = dir.join("home");
    let emu: RunningEmulator = phalanx_emulator::start(EmulatorConfig {
        nodes: 2,
        shapes: vec![NodeShape::parse("cpu=8,memory=32Gi,pods=110").unwrap()],
        kubelet: KubeletConfig {
            start_delay: Duration::from_millis(20),
            stop_delay: Duration::from_millis(20),
        },
        bookmark_interval: Duration::from_millis(500),
        tokens: vec![
            TokenUser::new("alice-token", "alice", Role::Admin),
            TokenUser::new("bob-token", "bob", Role::View),
        ],
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let alice_kc = dir.join("alice.kubeconfig");
    let bob_kc = dir.join("bob.kubeconfig");
    std::fs::write(&alice_kc, emu.kubeconfig_for("alice").unwrap()).unwrap();
    std::fs::write(&bob_kc, emu.kubeconfig_for("bob").unwrap()).unwrap();
    let (alice_kc, bob_kc) = (alice_kc.to_str().unwrap(), bob_kc.to_str().unwrap());
    let alice = client_from(&emu.kubeconfig_for("alice").unwrap()).await;

    // Two tenants of equal weight; team-b's gangs may not be reclaimed (a steady cluster).
    let queues: Api<DynamicObject> = Api::all_with(alice.clone(), &volcano_queue());
    for (name, spec) in [
        ("team-a", json!({"weight": 1, "capability": {"cpu": "16"}})),
        ("team-b", json!({"weight": 1, "reclaimable": false})),
    ] {
        let q: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        queues.create(&PostParams::default(), &q).await.unwrap();
    }

    // The scheduler, as alice's service account would run it, with authentication on.
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        cycle_period_ms: 100,
        batch_window_ms: 5,
        status_interval_ms: 100,
        admin: AdminConfig::default(),
        leader_election: LeaderConfig {
            enabled: false,
            ..LeaderConfig::default()
        },
        ..ServeConfig::default()
    };
    assert!(config.admin.authentication, "on unless turned off");
    let running = phalanx_k8s::serve::start(alice.clone(), config, "phalanx-0".into())
        .await
        .expect("scheduler starts");
    let addr = running.addr.to_string();
    let server = format!("http://{addr}");

    // Health and metrics stay open; the API wants a Kubernetes identity.
    assert_eq!(admin_get(&addr, "/healthz", None).await.0, 200);
    assert_eq!(admin_get(&addr, "/metrics", None).await.0, 200);
    let (code, body) = admin_get(&addr, "/api/v1/queues", None).await;
    assert_eq!(
        (code, &body["reason"]),
        (401, &json!("Unauthorized")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{body}"
    );
    let (code, body) = admin_get(&addr, "/api/v1/queues", Some("made-up")).await;
    assert_eq!(code, 401, "{body}");
    let (code, body) = admin_get(&addr, "/api/v1/whoami", Some("bob-token")).await;
    assert_eq!((code, body["user"].as_str()), (200, Some("bob")), "{body}");
    let no_identity = refused(
        "phalanx jobs without a kubeconfig",
        cli(&home, &format!("jobs --server {server}")),
    );
    assert!(no_identity.contains("401"), "{no_identity}");

    // Each queue has a gang running (8 of the 16 cpus) and one waiting behind it.
    gang(&alice, "a-run", "team-a", 2, "300s").await;
    gang(&alice, "b-run", "team-b", 2, "300s").await;
    wait_for("a-run and b-run running", || async {
        let (_, v) = admin_get(&addr, "/api/v1/jobs?state=running", Some("bob-token")).await;
        (v["jobs"].as_array()?.len() == 2).then_some(())
    })
    .await;
    gang(&alice, "a-wait", "team-a", 2, "60s").await;
    gang(&alice, "b-wait", "team-b", 2, "60s").await;

    // `phalanx jobs --state pending`, as the viewer: each waiting gang first in its queue's
    // line, with an estimated start from the running gangs' declared durations.
    let json = wait_for("both waiting gangs with an estimated start", || async {
        let o = cli(
            &home,
            &format!("jobs --state pending -o json --server {server} --kubeconfig {bob_kc}"),
        );
        let v: Value = serde_json::from_slice(&o.stdout).ok()?;
        let jobs = v["jobs"].as_array()?;
        (jobs.len() == 2 && jobs.iter().all(|j| j["estimatedStart"].is_string())).then_some(v)
    })
    .await;
    for j in json["jobs"].as_array().unwrap() {
        assert_eq!(j["position"], 1, "{j}");
        assert_eq!(j["estimateBasis"], "declared durations", "{j}");
        // Inqueue: admitted by its queue (Volcano's word), waiting for room on the nodes.
        assert!(
            matches!(j["state"].as_str(), Some("Pending" | "Inqueue")),
            "{j}"
        );
    }
    let table = ok(
        "phalanx jobs --state pending",
        cli(
            &home,
            &format!("jobs --state pending --server {server} --kubeconfig {bob_kc}"),
        ),
    );
    println!("$ phalanx jobs --state pending\n{table}");
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("POSITION") && header.contains("ESTIMATED START"),
        "{table}"
    );
    let a_wait = table
        .lines()
        .find(|l| l.contains("default/a-wait"))
        .unwrap_or_else(|| panic!("no a-wait line:\n{table}"));
    let cells: Vec<&str> = a_wait.split_whitespace().collect();
    assert!(
        cells.contains(&"Inqueue") && cells.contains(&"0/2"),
        "{a_wait}"
    );
    // Position 1, then "in 4m59s" (the running gangs end within 300 s).
    let at = cells.iter().position(|c| *c == "in").expect("an estimate");
    assert_eq!(cells[at - 1], "1", "position before the estimate: {a_wait}");
    assert!(cells[at + 1].ends_with('s'), "{a_wait}");

    // Each Queue's status says it at a glance (`kubectl get queues`), as Volcano's does.
    let status = wait_for("team-a's Queue status", || async {
        let q = queues.get("team-a").await.ok()?;
        let s = q.data.get("status")?.clone();
        (s["running"] == 1 && s["inqueue"] == 1).then_some(s)
    })
    .await;
    assert_eq!(status["state"], "Open", "{status}");
    assert_eq!(status["allocated"]["cpu"], "8", "{status}");
    assert_eq!(status["dominantShare"], "0.500", "{status}");

    // Deserved shares as configured: equal weights, equal shares of the 16 cpus.
    let deserved = |v: &Value, q: &str| queue_of(v, q)["deserved"]["cpu"].as_i64();
    let v = wait_for("equal deserved shares", || async {
        let (_, v) = admin_get(&addr, "/api/v1/queues", Some("bob-token")).await;
        (deserved(&v, "team-a") == Some(8000)).then_some(v)
    })
    .await;
    assert_eq!(deserved(&v, "team-b"), Some(8000), "{v}");

    // The viewer may read queues but not change them: Kubernetes says no.
    let forbidden = refused(
        "queue set as the viewer",
        cli(
            &home,
            &format!("queue set team-a --weight 3 --kubeconfig {bob_kc}"),
        ),
    );
    assert!(
        forbidden.contains("Forbidden") && forbidden.contains("403"),
        "{forbidden}"
    );

    // A capability serve would refuse is refused before anything is written, in serve's words.
    let version = |q: DynamicObject| q.metadata.resource_version.unwrap();
    let before = version(queues.get("team-a").await.unwrap());
    let invalid = refused(
        "a negative capability",
        cli(
            &home,
            &format!("queue set team-a --capability cpu=-2 --kubeconfig {alice_kc}"),
        ),
    );
    assert!(
        invalid.contains("capability") && invalid.contains("cpu"),
        "{invalid}"
    );
    assert!(invalid.contains("nothing was written"), "{invalid}");
    let unreadable = refused(
        "a quantity that is not one",
        cli(
            &home,
            &format!("queue set team-a --capability cpu=lots --kubeconfig {alice_kc}"),
        ),
    );
    assert!(unreadable.contains("--capability"), "{unreadable}");
    assert_eq!(version(queues.get("team-a").await.unwrap()), before);

    // A dry run shows the change and writes nothing.
    let dry = ok(
        "queue set --dry-run",
        cli(
            &home,
            &format!("queue set team-a --weight 3 --dry-run --kubeconfig {alice_kc}"),
        ),
    );
    assert!(
        dry.contains("(dry run)") && dry.contains("spec.weight: 1 -> 3"),
        "{dry}"
    );
    assert_eq!(version(queues.get("team-a").await.unwrap()), before);

    // The admin's change is written, and the scheduler's shares follow it: 3:1.
    let set = ok(
        "queue set",
        cli(
            &home,
            &format!("queue set team-a --weight 3 --kubeconfig {alice_kc}"),
        ),
    );
    assert!(
        set.starts_with("queue.scheduling.volcano.sh/team-a patched"),
        "{set}"
    );
    let q = queues.get("team-a").await.unwrap();
    assert_eq!(q.data["spec"]["weight"], 3);
    assert_eq!(q.data["spec"]["capability"]["cpu"], "16", "the rest stays");
    let v = wait_for("deserved shares at 3:1", || async {
        let (_, v) = admin_get(&addr, "/api/v1/queues", Some("bob-token")).await;
        (deserved(&v, "team-a") == Some(12000)).then_some(v)
    })
    .await;
    assert_eq!(deserved(&v, "team-b"), Some(4000), "{v}");
    assert_eq!(queue_of(&v, "team-a")["weight"], 3, "{v}");
    let tree = ok(
        "phalanx queues",
        cli(
            &home,
            &format!("queues --server {server} --kubeconfig {bob_kc}"),
        ),
    );
    println!("$ phalanx queues\n{tree}");
    let team_a = tree
        .lines()
        .find(|l| l.trim_start().starts_with("team-a"))
        .unwrap_or_else(|| panic!("no team-a line:\n{tree}"));
    assert!(team_a.split_whitespace().any(|c| c == "3"), "{tree}");

    // Close and open go through the status subresource; serve holds a closed queue's jobs.
    ok(
        "queue close",
        cli(
            &home,
            &format!("queue close team-b --kubeconfig {alice_kc}"),
        ),
    );
    let b = wait_for("team-b closed, b-wait held back", || async {
        let (_, v) = admin_get(&addr, "/api/v1/jobs/default/b-wait", Some("bob-token")).await;
        (v["reason"]["label"] == "QueueClosed").then_some(v)
    })
    .await;
    assert!(
        b["reason"]["message"]
            .as_str()
            .unwrap()
            .contains("phalanx queue open team-b"),
        "{b}"
    );
    ok(
        "queue open",
        cli(&home, &format!("queue open team-b --kubeconfig {alice_kc}")),
    );
    wait_for("team-b open again", || async {
        let (_, v) = admin_get(&addr, "/api/v1/jobs/default/b-wait", Some("bob-token")).await;
        (v["reason"]["label"] != "QueueClosed").then_some(())
    })
    .await;

    running.stop().await.unwrap();
    emu.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// A self-signed certificate for 127.0.0.1 and its key, made with `openssl`: (cert, key).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=phalanx-admin"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // A server certificate, not a CA (rustls refuses a CA as the server's own).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian's openssl package) makes the test certificate");
    assert!(out.status.success(), "{}", stderr(&out));
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_serves_https_with_the_certificate_given() {
    let dir = scratch("tls");
    let home = dir.join("home");
    let (cert, key) = certificate(&dir);
    let emu = phalanx_emulator::start(EmulatorConfig {
        nodes: 1,
        tokens: vec![TokenUser::new("alice-token", "alice", Role::Admin)],
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let alice_kc = dir.join("alice.kubeconfig");
    std::fs::write(&alice_kc, emu.kubeconfig_for("alice").unwrap()).unwrap();
    let alice = client_from(&emu.kubeconfig_for("alice").unwrap()).await;

    // A key that is not the certificate's stops serve at start, naming both files.
    let (other_cert, _) = certificate(&dir.join("home"));
    let mut config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        leader_election: LeaderConfig {
            enabled: false,
            ..LeaderConfig::default()
        },
        admin: AdminConfig {
            tls_cert_file: Some(other_cert),
            tls_key_file: Some(key.clone()),
            ..AdminConfig::default()
        },
        ..ServeConfig::default()
    };
    let Err(e) = phalanx_k8s::serve::start(alice.clone(), config.clone(), "p".into()).await else {
        panic!("a certificate with another's key should not serve");
    };
    let e = e.to_string();
    assert!(e.contains("tlsCertFile") && e.contains("tlsKeyFile"), "{e}");

    config.admin.tls_cert_file = Some(cert.clone());
    let running = phalanx_k8s::serve::start(alice, config, "p".into())
        .await
        .expect("scheduler starts with HTTPS");
    let (https, http) = (
        format!("https://{}", running.addr),
        format!("http://{}", running.addr),
    );
    let kc = alice_kc.to_str().unwrap();
    let queues = ok(
        "phalanx queues over HTTPS, trusting the certificate",
        cli(
            &home,
            &format!(
                "queues --server {https} --kubeconfig {kc} --certificate-authority {}",
                cert.display()
            ),
        ),
    );
    assert!(queues.starts_with("QUEUE"), "{queues}");
    let untrusted = refused(
        "HTTPS with a certificate no CA vouches for",
        cli(&home, &format!("queues --server {https} --kubeconfig {kc}")),
    );
    assert!(untrusted.contains(&https), "{untrusted}");
    ok(
        "--insecure-skip-tls-verify",
        cli(
            &home,
            &format!("queues --server {https} --kubeconfig {kc} --insecure-skip-tls-verify"),
        ),
    );
    // Plain HTTP gets no answer from a TLS port.
    refused(
        "plain HTTP to the TLS port",
        cli(&home, &format!("queues --server {http} --kubeconfig {kc}")),
    );

    running.stop().await.unwrap();
    emu.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}
