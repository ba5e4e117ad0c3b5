//! Emulator benchmarks, one number per target of issue 3 (run in release: `cargo bench -p
//! phalanx-emulator --bench emulator`):
//!
//! 1. memory: 5,000 nodes and 150,000 running pods resident, RSS (target <= 2 GiB);
//! 2. bindings: pods/binding requests per second over loopback from a concurrent HTTP/1.1
//!    client with 64 connections, kubelets on (target >= 10,000/s);
//! 3. watch: added latency from commit to receipt for 3 HTTP watchers (target p99 <= 5 ms).
//!
//! Each is run `EMU_BENCH_RUNS` times (default 3) and the median printed. Scale with
//! `EMU_BENCH_NODES`, `EMU_BENCH_PODS`, `EMU_BENCH_BINDS`, `EMU_BENCH_CONNS`, `EMU_BENCH_EVENTS`.
//! The server and the client share the machine (and this process), as on a CI box.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{Method, Request, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use phalanx_emulator::client::Conn;
use phalanx_emulator::kubelet::KubeletConfig;
use phalanx_emulator::{EmulatorConfig, NodeShape, RunningEmulator, api, start};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pod(name: &str, node: Option<&str>) -> serde_json::Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "scheduling.x-k8s.io/pod-group": "pg"},
                     "annotations": {"phalanx.dev/duration": "86400"}},
        "spec": {"schedulerName": "phalanx", "containers": [{"name": "main",
                 "image": "registry.k8s.io/pause:3.10",
                 "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}]},
    });
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

async fn emulator(nodes: usize, shape: &str) -> RunningEmulator {
    start(EmulatorConfig {
        nodes,
        shapes: vec![NodeShape::parse(shape).unwrap()],
        kubelet: KubeletConfig {
            start_delay: Duration::from_millis(10),
            ..KubeletConfig::default()
        },
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts")
}

/// 150,000 running pods on 5,000 nodes: RSS of this process (the server; no client here).
async fn memory(nodes: usize, pods: usize) -> (f64, f64) {
    let before = rss_kib("VmRSS:");
    let emu = emulator(nodes, "cpu=64,memory=512Gi,pods=110").await;
    let pods_def = emu.state.store.resolve("", "v1", "pods").unwrap();
    let t = Instant::now();
    for i in 0..pods {
        let node = format!("node-{:05}", i % nodes + 1);
        api::create(
            &emu.state,
            &pods_def,
            "default",
            pod(&format!("pod-{i:06}"), Some(&node)),
        )
        .unwrap();
    }
    // Wait until the kubelets have started every pod.
    loop {
        let running = emu
            .state
            .store
            .all("", "pods")
            .iter()
            .filter(|p| p.field("status.phase") == "Running")
            .count();
        if running == pods {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let rss = rss_kib("VmRSS:");
    println!(
        "  memory: {nodes} nodes, {pods} running pods in {secs:.1}s; RSS {:.0} MiB (process before start {:.0} MiB, peak {:.0} MiB)",
        rss as f64 / 1024.0,
        before as f64 / 1024.0,
        rss_kib("VmHWM:") as f64 / 1024.0
    );
    emu.shutdown().await;
    (rss as f64 / 1024.0, secs)
}

/// Binding throughput over loopback HTTP from `conns` concurrent connections.
async fn bindings(run: usize, binds: usize, conns: usize) -> (f64, f64) {
    let emu = emulator(100, "cpu=10000,memory=100Ti,pods=100000").await;
    let pods_def = emu.state.store.resolve("", "v1", "pods").unwrap();
    for i in 0..binds {
        api::create(
            &emu.state,
            &pods_def,
            "default",
            pod(&format!("b{run}-{i}"), None),
        )
        .unwrap();
    }
    let host = emu.addr.to_string();
    let next = Arc::new(AtomicUsize::new(0));
    // Requests are serialized before the clock starts: the client should cost the shared CPU as
    // little as possible, since what is measured is the server.
    let requests: Arc<Vec<(String, Bytes)>> = Arc::new(
        (0..binds)
            .map(|i| {
                let name = format!("b{run}-{i}");
                let body = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                  "target": {"kind": "Node", "name": format!("node-{:05}", i % 100 + 1)}});
                (
                    format!("/api/v1/namespaces/default/pods/{name}/binding"),
                    Bytes::from(serde_json::to_vec(&body).unwrap()),
                )
            })
            .collect(),
    );
    // The client runs on its own thread and runtime, like a separate process would.
    let cpu0 = cpu_secs();
    let client = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            let t = Instant::now();
            for _ in 0..conns {
                let (host, next, requests) = (host.clone(), next.clone(), requests.clone());
                tasks.push(tokio::spawn(async move {
                    let mut c = Conn::connect(&host).await.unwrap();
                    let mut errors = 0;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((path, body)) = requests.get(i) else {
                            break;
                        };
                        let (code, _) = c
                            .request(Method::POST, path, "application/json", body.clone())
                            .await
                            .unwrap();
                        if code != 201 {
                            errors += 1;
                        }
                    }
                    errors
                }));
            }
            let mut errors = 0;
            for t in tasks {
                errors += t.await.unwrap();
            }
            (t.elapsed().as_secs_f64(), errors)
        })
    });
    let (secs, errors) = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    let cpu = cpu_secs() - cpu0;
    let rate = binds as f64 / secs;
    // CPU per bind (server, kubelets and client together) tells what two uncontended cores
    // would sustain, whatever else the machine was doing during the run.
    println!(
        "  bindings run {run}: {binds} binds over {conns} connections in {secs:.2}s = {rate:.0}/s \
         ({errors} errors); CPU {:.1} us/bind incl. client => {:.0}/s on 2 free cores",
        cpu / binds as f64 * 1e6,
        2.0 * binds as f64 / cpu
    );
    emu.shutdown().await;
    (rate, 2.0 * binds as f64 / cpu)
}

/// Added watch latency: commit (in-process write) to receipt by 3 HTTP watchers.
async fn watch_latency(run: usize, events: usize) -> (f64, f64) {
    let emu = emulator(0, "cpu=1").await;
    let pods_def = emu.state.store.resolve("", "v1", "pods").unwrap();
    for i in 0..100 {
        api::create(
            &emu.state,
            &pods_def,
            "default",
            pod(&format!("w{i}"), None),
        )
        .unwrap();
    }
    let rv0 = emu.state.store.current_rv();
    let commits = Arc::new(std::sync::Mutex::new(vec![None::<Instant>; events + 1]));
    let mut watchers = Vec::new();
    for _ in 0..3 {
        let host = emu.addr.to_string();
        watchers.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let req = Request::builder()
                .method(Method::GET)
                .uri(format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv0}&timeoutSeconds=120"))
                .header(header::HOST, &host)
                .body(Empty::<Bytes>::new())
                .unwrap();
            let mut body = send.send_request(req).await.unwrap().into_body();
            let mut received = Vec::with_capacity(events);
            let mut buf = Vec::new();
            while received.len() < events {
                let Some(frame) = body.frame().await else { break };
                let Ok(data) = frame.unwrap().into_data() else { continue };
                let now = Instant::now();
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let text = String::from_utf8_lossy(&line);
                    if let Some(rv) = text
                        .split("\"resourceVersion\":\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .and_then(|r| r.parse::<u64>().ok())
                    {
                        received.push((rv, now));
                    }
                }
            }
            received
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Writer: 2,000 pod updates per second.
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    for i in 0..events {
        if i % 2 == 0 {
            tick.tick().await;
        }
        let name = format!("w{}", i % 100);
        let o = emu
            .state
            .store
            .modify(&pods_def, "default", &name, |p| {
                p["metadata"]["annotations"]["seq"] = json!(i.to_string());
                Ok(())
            })
            .unwrap();
        let at = Instant::now();
        commits.lock().unwrap()[(o.rv - rv0) as usize - 1] = Some(at);
    }
    let mut lat = Vec::new();
    for w in watchers {
        let got = w.await.unwrap();
        let commits = commits.lock().unwrap();
        for (rv, at) in got {
            if let Some(Some(c)) = commits.get((rv - rv0) as usize - 1) {
                lat.push(at.saturating_duration_since(*c).as_secs_f64() * 1000.0);
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let (p50, p99) = (pct(0.50), pct(0.99));
    println!(
        "  watch run {run}: {} deliveries to 3 watchers at 2,000 writes/s: p50 {p50:.3} ms, p99 {p99:.3} ms, max {:.3} ms",
        lat.len(),
        lat[lat.len() - 1]
    );
    emu.shutdown().await;
    (p50, p99)
}

fn main() {
    // `cargo bench` passes flags such as `--bench`; a name filter selects one benchmark.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let runs = env("EMU_BENCH_RUNS", 3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if "memory".contains(&filter) {
            // First, in a fresh process, so nothing else counts in the RSS; one run per process
            // (run it several times for a median).
            println!("memory:");
            let (rss, _) = memory(
                env("EMU_BENCH_NODES", 5_000),
                env("EMU_BENCH_PODS", 150_000),
            )
            .await;
            println!("memory: {rss:.0} MiB RSS (target <= 2048 MiB)");
        }
        if "bindings".contains(&filter) {
            println!("bindings:");
            let (mut rates, mut implied) = (Vec::new(), Vec::new());
            for run in 0..runs {
                let (r, i) = bindings(
                    run,
                    env("EMU_BENCH_BINDS", 30_000),
                    env("EMU_BENCH_CONNS", 64),
                )
                .await;
                rates.push(r);
                implied.push(i);
            }
            println!(
                "bindings median: {:.0} binds/s wall; {:.0} binds/s on 2 free cores from CPU time (target >= 10,000)",
                median(rates),
                median(implied)
            );
        }
        if "watch".contains(&filter) {
            println!("watch:");
            let mut p99s = Vec::new();
            for run in 0..runs {
                p99s.push(watch_latency(run, env("EMU_BENCH_EVENTS", 20_000)).await.1);
            }
            println!(
                "watch median p99: {:.3} ms added latency (target <= 5 ms)",
                median(p99s)
            );
        }
    });
}
