//! `phalanx bench e2e`: the emulator and `phalanx serve` as separate processes over loopback
//! HTTP, this process creating the workload and watching pods.
//!
//! Measured (wall clock, on whatever else the machine is doing):
//! - `pods_per_s`: pods bound per second, from the first pod created to the last bind seen;
//! - `e2e_p50_ms`/`e2e_p99_ms`: pod creation (the POST sent) to its bind seen on a watch;
//! - `dependency_p50_ms`/`dependency_max_ms`: a chain of `--chain` two-pod gangs, each
//!   depending on the one before (`phalanx.dev/depends-on`) and running one second in the
//!   emulator: time from a link's last pod seen `Succeeded` to its dependent's first bind seen,
//!   both on the bench's own watch (Slurm's `afterok` takes 1.5 to 2.7 s per link here);
//! - `restart_to_first_bind_s`: the scheduler is killed with every pod resident, one more pod
//!   is created, and a new scheduler process starts: time from its start to that pod's bind
//!   (it must list everything and rebuild its state first); `serve_restart_peak_rss_mib` is
//!   that new process's peak resident set (a relist of everything, read page by page).
//!
//! - `engine_inbox_max`: the most changes seen waiting for the scheduler's engine thread
//!   (`phalanx_engine_queue_depth`, sampled every 100 ms); the inbox holds at most
//!   `engine_inbox_capacity`, so a flood is held back at the watches, never queued without
//!   bound (and never dropped: `bound` must equal `pods`).
//!
//! The workload: scheduler-plugins PodGroups of `--gang` pods (1 cpu, 1 GiB each) that all
//! fit, created by `--clients` connections as fast as the emulator takes them, in `--bursts`
//! equal bursts `--burst-pause-s` apart. The flood of issue 20 is
//! `phalanx bench e2e --nodes 10000 --node-shape cpu=128,memory=1Ti,pods=110 --pods 1000000
//! --bursts 10 --chain 0`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher;
use phalanx_emulator::client::Conn;
use phalanx_simulator::report::peak_rss_mb_of;
use serde::Serialize;
use serde_json::json;

/// Options of `phalanx bench e2e`.
#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    /// Nodes of the emulated cluster.
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// Pods to create and bind.
    #[arg(long, default_value_t = 150_000)]
    pub pods: usize,
    /// Pods per PodGroup (minMember).
    #[arg(long, default_value_t = 10)]
    pub gang: usize,
    /// Node shape.
    #[arg(long, default_value = "cpu=64,memory=512Gi,pods=110")]
    pub node_shape: String,
    /// Concurrent connections creating the workload.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Give up after this many seconds without a new bind.
    #[arg(long, default_value_t = 120)]
    pub stall_s: u64,
    /// Links of the dependency chain measured after the workload is bound (0: none).
    #[arg(long, default_value_t = 5)]
    pub chain: usize,
    /// Create the workload in this many equal bursts.
    #[arg(long, default_value_t = 1)]
    pub bursts: usize,
    /// Seconds between bursts.
    #[arg(long = "burst-pause-s", default_value_t = 5.0)]
    pub burst_pause_s: f64,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

/// What `phalanx bench e2e --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct E2eReport {
    /// Nodes.
    pub nodes: usize,
    /// Pods created.
    pub pods: usize,
    /// Pods seen bound.
    pub bound: usize,
    /// Seconds from the first pod created to the last bind seen.
    pub bind_window_s: f64,
    /// Pods bound per second over that window.
    pub pods_per_s: f64,
    /// Seconds to create every object (pods and PodGroups).
    pub create_s: f64,
    /// Median creation-to-bind, milliseconds.
    pub e2e_p50_ms: f64,
    /// 99th percentile creation-to-bind, milliseconds.
    pub e2e_p99_ms: f64,
    /// Dependencies measured: links of the chain whose parent was seen to succeed and whose
    /// dependent was seen bound.
    pub dependency_links: usize,
    /// Median time from a parent's last pod succeeding to its dependent's first bind, ms.
    pub dependency_p50_ms: Option<f64>,
    /// The longest such time, ms.
    pub dependency_max_ms: Option<f64>,
    /// Seconds from a new scheduler process's start to its first bind, every pod resident.
    pub restart_to_first_bind_s: Option<f64>,
    /// Gangs left partly bound beyond 10 s, from the emulator's audit journal (see
    /// `phalanx bench chaos`).
    pub partial_gangs: u64,
    /// Nodes whose kubelet refused a pod for lack of resources, from the same journal.
    pub overcommitted_nodes: u64,
    /// Peak resident set of the scheduler process that took the workload, MiB.
    pub serve_peak_rss_mib: f64,
    /// Peak resident set of the scheduler process restarted with every pod resident, up to
    /// its first bind, MiB.
    pub serve_restart_peak_rss_mib: f64,
    /// Peak resident set of the emulator process, MiB.
    pub emulator_peak_rss_mib: f64,
    /// The most changes seen waiting for the engine thread (sampled every 100 ms).
    pub engine_inbox_max: u64,
    /// What the engine thread's inbox holds at most.
    pub engine_inbox_capacity: usize,
}

impl E2eReport {
    /// The one-screen summary.
    pub fn human(&self) -> String {
        format!(
            "phalanx bench e2e: {} nodes, {} pods ({} bound)\n\
             bound {:.0} pods/s over {:.1} s (creation took {:.1} s)\n\
             creation to bind: p50 {:.0} ms, p99 {:.0} ms\n\
             dependency (parent succeeded to dependent bound): {}\n\
             restart to first bind with every pod resident: {}\n\
             from the emulator's records: {} partial gangs, {} overcommitted nodes\n\
             peak RSS: scheduler {:.0} MiB (restarted: {:.0} MiB), emulator {:.0} MiB\n\
             engine inbox: at most {} changes waiting (capacity {})",
            self.nodes,
            self.pods,
            self.bound,
            self.pods_per_s,
            self.bind_window_s,
            self.create_s,
            self.e2e_p50_ms,
            self.e2e_p99_ms,
            match (self.dependency_p50_ms, self.dependency_max_ms) {
                (Some(p50), Some(max)) => format!(
                    "p50 {p50:.0} ms, max {max:.0} ms over {} links",
                    self.dependency_links
                ),
                _ => "not measured".into(),
            },
            self.restart_to_first_bind_s
                .map(|s| format!("{s:.2} s"))
                .unwrap_or_else(|| "not measured (the bind was not seen)".into()),
            self.partial_gangs,
            self.overcommitted_nodes,
            self.serve_peak_rss_mib,
            self.serve_restart_peak_rss_mib,
            self.emulator_peak_rss_mib,
            self.engine_inbox_max,
            self.engine_inbox_capacity,
        )
    }
}

/// A child process killed when dropped (also when a signal stops the bench: its future is
/// dropped, see `main.rs`).
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn spawn(args: &[&str], log: &Path) -> Result<Proc> {
    let exe = std::env::current_exe()?;
    let out = std::fs::File::create(log)?;
    let child = Command::new(exe)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting phalanx {}", args.join(" ")))?;
    Ok(Proc(child))
}

fn serve(dir: &Path, kubeconfig: &Path, config: &Path, log: &str) -> Result<Proc> {
    spawn(
        &[
            "serve",
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--config",
            &config.display().to_string(),
        ],
        &dir.join(log),
    )
}

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

/// Runs the benchmark.
pub async fn run(args: &E2eArgs) -> Result<E2eReport> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("phalanx-bench-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    let port = free_port()?;
    let emulator = spawn(
        &[
            "emulator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--nodes",
            &args.nodes.to_string(),
            "--node-shape",
            &args.node_shape,
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--watch-window",
            &(args.pods * 4 + 100_000).to_string(),
            "--bookmark-interval-s",
            "5",
        ],
        &dir.join("emulator.log"),
    )?;
    let host = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !kubeconfig.exists() {
        if Instant::now() > deadline {
            bail!(
                "the emulator did not start (see {})",
                dir.join("emulator.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let config = dir.join("config.yaml");
    let admin = free_port()?;
    std::fs::write(
        &config,
        format!(
            "leaderElection: {{enabled: false}}\nlisten: 127.0.0.1:{admin}\nbindConcurrency: 128\n"
        ),
    )?;
    let client = kube::Client::try_from(kube::Config::new(format!("http://{host}").parse()?))?;
    let (seen, succeeded): (Seen, Seen) = (Arc::default(), Arc::default());
    let watch = tokio::spawn(watch_binds(
        client.clone(),
        Arc::clone(&seen),
        Arc::clone(&succeeded),
    ));
    let mut scheduler = serve(&dir, &kubeconfig, &config, "serve.log")?;
    wait_ready(admin, Duration::from_secs(120)).await?;

    let inbox_max = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = tokio::spawn(sample_inbox(admin, Arc::clone(&inbox_max)));

    // Create the workload, in bursts.
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let start = Instant::now();
    let groups = args.pods.div_ceil(args.gang.max(1));
    let bursts = args.bursts.clamp(1, groups.max(1));
    for burst in 0..bursts {
        if burst > 0 {
            tokio::time::sleep(Duration::from_secs_f64(args.burst_pause_s.max(0.0))).await;
        }
        let (from, to) = (groups * burst / bursts, groups * (burst + 1) / bursts);
        create_groups(args, &host, from..to, &created).await?;
    }
    let create_s = start.elapsed().as_secs_f64();
    let bound = wait_bound(&seen, args.pods, Duration::from_secs(args.stall_s)).await;
    let (mut lat, mut last) = (Vec::new(), start);
    {
        let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let created = created.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        for (pod, at) in created.iter() {
            if let Some(b) = seen.get(pod) {
                lat.push(b.saturating_duration_since(*at).as_secs_f64() * 1000.0);
                last = last.max(*b);
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let window = last.saturating_duration_since(start).as_secs_f64();
    let mut dependency = chain(&host, args, &seen, &succeeded).await?;
    dependency.sort_by(f64::total_cmp);

    let serve_peak_rss_mib = peak_rss_mb_of(&scheduler.0.id().to_string());
    sampler.abort();
    // Restart with everything resident: kill the scheduler, add one pod, start a new one.
    drop(scheduler);
    let probe = "restart-probe";
    let mut conn = Conn::connect(&host).await?;
    conn.post_json(
        "/api/v1/namespaces/default/pods",
        &pod_json(probe, None, None),
    )
    .await?;
    let t0 = Instant::now();
    scheduler = serve(&dir, &kubeconfig, &config, "serve-restart.log")?;
    let mut restart = None;
    while t0.elapsed() < Duration::from_secs(args.stall_s) {
        if let Some(b) = seen.lock().ok().and_then(|s| s.get(probe).copied()) {
            restart = Some(b.saturating_duration_since(t0).as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let serve_restart_peak_rss_mib = peak_rss_mb_of(&scheduler.0.id().to_string());
    drop(scheduler);
    watch.abort();
    // The verdict on the promise, from the emulator's own records.
    let mut work = crate::bench_chaos::Workload::default();
    let mut gang = |name: String, members: usize| {
        for i in 0..members {
            work.pod_job.insert(format!("{name}-{i}"), work.jobs.len());
        }
        work.jobs.push(crate::bench_chaos::JobSpec {
            name,
            queue: String::new(),
            min_member: members,
            cpu_milli: 1000,
            submitted: 0.0,
        });
    };
    for g in 0..groups {
        gang(
            format!("g{g:06}"),
            args.gang.max(1).min(args.pods - g * args.gang.max(1)),
        );
    }
    for k in 0..args.chain {
        gang(format!("dep-{k}"), 2);
    }
    let (code, body) = conn
        .request(
            hyper::Method::GET,
            "/emulator/audit",
            "application/json",
            bytes::Bytes::new(),
        )
        .await?;
    if code != 200 {
        bail!("reading the emulator's audit: {code}");
    }
    let journal: phalanx_emulator::audit::Journal = serde_json::from_slice(&body)?;
    let verdict = crate::bench_chaos::judge(&journal, &work, phalanx_emulator::audit::now(), 10.0);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(E2eReport {
        nodes: args.nodes,
        pods: args.pods,
        bound,
        bind_window_s: window,
        pods_per_s: if window > 0.0 {
            bound as f64 / window
        } else {
            0.0
        },
        create_s,
        e2e_p50_ms: pct(0.50),
        e2e_p99_ms: pct(0.99),
        dependency_links: dependency.len(),
        dependency_p50_ms: dependency
            .get(dependency.len().saturating_sub(1) / 2)
            .copied(),
        dependency_max_ms: dependency.last().copied(),
        restart_to_first_bind_s: restart,
        partial_gangs: verdict.partial_gangs,
        overcommitted_nodes: verdict.overcommitted_nodes,
        serve_peak_rss_mib,
        serve_restart_peak_rss_mib,
        emulator_peak_rss_mib: peak_rss_mb_of(&emulator.0.id().to_string()),
        engine_inbox_max: inbox_max.load(std::sync::atomic::Ordering::Relaxed),
        engine_inbox_capacity: phalanx_k8s::watch::ENGINE_INBOX,
    })
}

/// Creates the dependency chain (`dep-0` <- `dep-1` <- ...; two pods of one second each per
/// link, all created at once) and returns, per link, milliseconds from the parent's last pod
/// seen `Succeeded` to the dependent's first pod seen bound.
async fn chain(host: &str, args: &E2eArgs, seen: &Seen, succeeded: &Seen) -> Result<Vec<f64>> {
    const MEMBERS: usize = 2;
    if args.chain == 0 {
        return Ok(Vec::new());
    }
    let mut conn = Conn::connect(host).await?;
    for k in 0..args.chain {
        let name = format!("dep-{k}");
        let annotations = match k {
            0 => json!({}),
            _ => json!({"phalanx.dev/depends-on": format!("dep-{}", k - 1)}),
        };
        create_group(&mut conn, &name, MEMBERS, annotations).await?;
        for i in 0..MEMBERS {
            let pod = format!("{name}-{i}");
            create_pod(&mut conn, &pod_json(&pod, Some(&name), Some("1"))).await?;
        }
    }
    // Every link runs a second; allow each the stall limit.
    let last = format!("dep-{}-0", args.chain - 1);
    let deadline = Instant::now() + Duration::from_secs(args.stall_s);
    while Instant::now() < deadline {
        if succeeded.lock().is_ok_and(|s| s.contains_key(&last)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let succeeded = succeeded.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let at = |map: &HashMap<String, Instant>, k: usize| -> Vec<Instant> {
        (0..MEMBERS)
            .filter_map(|i| map.get(&format!("dep-{k}-{i}")).copied())
            .collect()
    };
    let mut links = Vec::new();
    for k in 1..args.chain {
        let (done, bound) = (at(&succeeded, k - 1), at(&seen, k));
        if done.len() == MEMBERS
            && let (Some(parent), Some(child)) = (done.iter().max(), bound.iter().min())
        {
            links.push(child.saturating_duration_since(*parent).as_secs_f64() * 1000.0);
        }
    }
    Ok(links)
}

/// Creates scheduler-plugins PodGroup `name` of `members` in `default`.
async fn create_group(
    conn: &mut Conn,
    name: &str,
    members: usize,
    annotations: serde_json::Value,
) -> Result<()> {
    let (code, body) = conn
        .post_json(
            "/apis/scheduling.x-k8s.io/v1alpha1/namespaces/default/podgroups",
            &json!({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                    "metadata": {"name": name, "annotations": annotations},
                    "spec": {"minMember": members}}),
        )
        .await?;
    if code >= 300 {
        bail!(
            "creating PodGroup {name}: {code} {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// Creates a pod (see [`pod_json`]) in `default`.
async fn create_pod(conn: &mut Conn, pod: &serde_json::Value) -> Result<()> {
    let (code, body) = conn
        .post_json("/api/v1/namespaces/default/pods", pod)
        .await?;
    if code >= 300 {
        let name = &pod["metadata"]["name"];
        bail!(
            "creating pod {name}: {code} {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// A 1-cpu pod of ours, in `group`, that the emulator runs for `duration` seconds if given.
fn pod_json(name: &str, group: Option<&str>, duration: Option<&str>) -> serde_json::Value {
    let labels = match group {
        Some(g) => json!({"scheduling.x-k8s.io/pod-group": g}),
        None => json!({}),
    };
    let annotations = match duration {
        Some(d) => json!({"phalanx.dev/duration": d}),
        None => json!({}),
    };
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels, "annotations": annotations},
           "spec": {"schedulerName": "phalanx", "containers": [{"name": "main", "image": "pause",
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}})
}

/// Creates PodGroups `range` (numbered as in the whole workload) and their pods over
/// `--clients` connections, recording when each pod was sent.
async fn create_groups(
    args: &E2eArgs,
    host: &str,
    range: std::ops::Range<usize>,
    created: &Arc<Mutex<HashMap<String, Instant>>>,
) -> Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(range.start));
    let end = range.end;
    let mut tasks = Vec::new();
    for _ in 0..args.clients.max(1) {
        let (host, created, next) = (host.to_string(), Arc::clone(created), Arc::clone(&next));
        let (pods, gang) = (args.pods, args.gang.max(1));
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&host).await?;
            loop {
                let g = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if g >= end {
                    return anyhow::Ok(());
                }
                let members = gang.min(pods - g * gang);
                let name = format!("g{g:06}");
                create_group(&mut conn, &name, members, json!({})).await?;
                for i in 0..members {
                    let pod = format!("{name}-{i}");
                    let at = Instant::now();
                    create_pod(&mut conn, &pod_json(&pod, Some(&name), None)).await?;
                    created
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))?
                        .insert(pod, at);
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Keeps the highest `phalanx_engine_queue_depth` the scheduler at `port` reports, every
/// 100 ms, until aborted.
async fn sample_inbox(port: u16, max: Arc<std::sync::atomic::AtomicU64>) {
    let mut conn = None;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if conn.is_none() {
            conn = Conn::connect(&format!("127.0.0.1:{port}")).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        match c
            .request(
                hyper::Method::GET,
                "/metrics",
                "text/plain",
                bytes::Bytes::new(),
            )
            .await
        {
            Ok((200, body)) => {
                let depth = String::from_utf8_lossy(&body)
                    .lines()
                    .find_map(|l| l.strip_prefix("phalanx_engine_queue_depth "))
                    .and_then(|v| v.trim().parse::<f64>().ok());
                if let Some(d) = depth {
                    max.fetch_max(d.max(0.0) as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
            _ => conn = None,
        }
    }
}

async fn wait_ready(port: u16, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(mut c) = Conn::connect(&format!("127.0.0.1:{port}")).await
            && let Ok((200, _)) = c
                .request(
                    hyper::Method::GET,
                    "/readyz",
                    "text/plain",
                    bytes::Bytes::new(),
                )
                .await
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the scheduler did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_bound(seen: &Seen, pods: usize, stall: Duration) -> usize {
    let (mut count, mut since) = (0, Instant::now());
    loop {
        let now = seen.lock().map(|s| s.len()).unwrap_or(0);
        if now >= pods {
            return now;
        }
        if now != count {
            (count, since) = (now, Instant::now());
        } else if since.elapsed() > stall {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the bench's own watch reads of a pod: its name and node, nothing else (the scheduler
/// under test parses whole pods; the observer need not pay for that on the same two cores).
#[derive(Clone, Debug, serde::Deserialize)]
pub(crate) struct BoundPod {
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: BoundSpec,
    #[serde(default)]
    pub(crate) status: BoundStatus,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct BoundStatus {
    pub(crate) phase: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct BoundSpec {
    #[serde(rename = "nodeName")]
    pub(crate) node_name: Option<String>,
}

impl kube::Resource for BoundPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Watches bound pods only (`fieldSelector=spec.nodeName!=`, as `kubectl get pods -w` with that
/// selector would): a bind turns into an ADDED event, the time it is seen is the bind time;
/// the time a pod is first seen `Succeeded` goes to `succeeded`.
async fn watch_binds(client: kube::Client, seen: Seen, succeeded: Seen) {
    let api: kube::Api<BoundPod> = kube::Api::namespaced(client, "default");
    let config = watcher::Config::default().fields("spec.nodeName!=");
    let mut stream = std::pin::pin!(watcher::watcher(api, config));
    while let Some(ev) = stream.next().await {
        let pod = match ev {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
            _ => continue,
        };
        let Some(name) = pod.metadata.name else {
            continue;
        };
        if pod.status.phase.as_deref() == Some("Succeeded")
            && let Ok(mut s) = succeeded.lock()
        {
            s.entry(name.clone()).or_insert_with(Instant::now);
        }
        if pod.spec.node_name.as_ref().is_some_and(|n| !n.is_empty())
            && let Ok(mut s) = seen.lock()
        {
            s.entry(name).or_insert_with(Instant::now);
        }
    }
}
