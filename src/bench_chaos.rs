//! `phalanx bench chaos`: the promise (no partial gang, no overcommit, no lost job) under
//! combined faults, judged from the emulator's own records.
//!
//! The run: the emulator, `--replicas` `phalanx serve` processes electing a leader on one
//! Lease, each reaching the API through its own TCP proxy (so it can be cut off), and this
//! process as the workload (Volcano PodGroups of 1 to 8 pods across three queues, some
//! depending on an earlier job, a few pods failing), as the pods' controller (a failed or
//! vanished pod of an unfinished job is replaced, as Volcano's `RestartTask` policy does), and
//! as the chaos monkey. For `--duration` seconds, from one seed, it:
//! - kills the leader (SIGKILL, by its pid) about six times per run, restarting it 5 to 8 s later
//!   (after its 4 s lease ran out, so a standby takes over);
//!   a replica that exits on its own is restarted, as a kubelet restarts a container;
//! - cuts one replica off from the API for a while (its proxy drops every connection);
//! - takes nodes NotReady (their pods are evicted after 10 s), deletes nodes and re-creates them;
//! - drops every watch, compacts the store (410 Gone on resume);
//! - and leaves the emulator injecting API errors (500, 429), resourceVersion conflicts (409),
//!   watch drops and 410s, latency, and kubelet admission failures all along.
//!
//! Then the faults stop and the jobs drain for up to `--drain` seconds, and the verdict is read
//! from the emulator's audit journal (`GET /emulator/audit`: every bind with its sender and the
//! lease holder at that instant, every pod's end, every lease write) and its objects, never
//! from the schedulers. Each invariant must be zero, or the command fails:
//! - `partial_gangs`: a gang that has not yet run whole with some but fewer than `min_member`
//!   pods bound for longer than `--grace` seconds of leader time (leaderless time does not
//!   count: nobody can finish a gang then), outside its own teardown (once a pod of it ends, it
//!   is being torn down or finishing until it is empty again); a member re-run alone by its
//!   controller after the gang ran whole is not one;
//! - `overcommitted_nodes`: nodes whose kubelet refused a pod for lack of resources (`OutOf*`);
//! - `double_binds`: binds of a pod already bound to another node (the API server refuses
//!   them; each is a scheduler acting on a stale view);
//! - `non_leader_binds`: accepted binds sent by a replica that did not hold an unexpired lease;
//! - `capability_exceeded`: binds after which a queue's bound requests passed its capability;
//! - `jobs_lost`: jobs neither finished, nor running, nor pending with a reason on their group.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use phalanx_emulator::audit::Journal;
use phalanx_emulator::client::Conn;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::bench_e2e::{BoundPod, free_port};

/// The Lease the replicas elect a leader on (the `serve` default).
const LEASE: (&str, &str) = ("kube-system", "phalanx");
/// Label carrying a pod's job, so the controller sees only its own pods.
const JOB_LABEL: &str = "chaos.phalanx.dev/job";
/// The queues: name, weight, CPU capability in cores (None: uncapped).
const QUEUES: [(&str, u32, Option<u64>); 3] = [
    ("tenant-a", 2, Some(96)),
    ("tenant-b", 1, None),
    ("tenant-c", 1, Some(48)),
];

/// Options of `phalanx bench chaos`.
#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// Seconds of chaos (workload and faults); the drain comes after.
    #[arg(long, default_value_t = 600)]
    pub duration: u64,
    /// Seed of every random choice (workload, faults, timing of kills).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scheduler replicas (separate `phalanx serve` processes).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Nodes of the emulated cluster.
    #[arg(long, default_value_t = 24)]
    pub nodes: usize,
    /// Node shape.
    #[arg(long, default_value = "cpu=16,memory=64Gi,pods=110")]
    pub node_shape: String,
    /// Jobs submitted per second.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Seconds the jobs may take to drain once the chaos stops.
    #[arg(long = "drain", default_value_t = 120)]
    pub drain_s: u64,
    /// Seconds of leader time a gang may stay partly bound before it counts as partial.
    #[arg(long = "grace", default_value_t = 10.0)]
    pub grace_s: f64,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Also write the emulator's audit journal (every bind, pod end and lease write) here, for
    /// a post-mortem.
    #[arg(long, value_name = "FILE")]
    pub journal_out: Option<PathBuf>,
}

/// What `phalanx bench chaos --json` prints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChaosReport {
    /// The seed.
    pub seed: u64,
    /// Seconds of chaos.
    pub duration_s: u64,
    /// Scheduler replicas.
    pub replicas: usize,
    /// Nodes.
    pub nodes: usize,
    /// Jobs submitted.
    pub jobs: usize,
    /// Jobs whose every pod succeeded.
    pub jobs_finished: usize,
    /// Jobs the scheduler ended as failed (a dependency failed), with the cause on their group.
    pub jobs_failed: usize,
    /// Pods created, replacements included.
    pub pods_created: usize,
    /// Invariant: gangs partly bound beyond the grace, outside their own teardown.
    pub partial_gangs: u64,
    /// Invariant: nodes whose kubelet refused a pod for lack of resources.
    pub overcommitted_nodes: u64,
    /// Invariant: binds of a pod already bound elsewhere.
    pub double_binds: u64,
    /// Invariant: accepted binds by a replica that was not the leader then.
    pub non_leader_binds: u64,
    /// Invariant: binds that took a queue past its capability.
    pub capability_exceeded: u64,
    /// Invariant: jobs neither finished, running, nor pending with a reason.
    pub jobs_lost: u64,
    /// Changes the emulator's recorder missed (must be 0 for the verdict to stand).
    pub audit_missed: u64,
    /// Times leadership passed to a new holder or was re-acquired after expiring.
    pub failovers: u64,
    /// The longest time no replica held an unexpired lease, seconds.
    pub max_leaderless_s: f64,
    /// Faults injected, in total.
    pub faults_injected: u64,
    /// Faults injected, by kind (the emulator's counts and the monkey's).
    pub faults_by_kind: BTreeMap<String, u64>,
    /// Accepted binds per second, from the first to the last.
    pub pods_per_s: f64,
    /// 99th percentile seconds from a job's submission to its gang bound.
    pub gang_bound_p99_s: f64,
    /// Bind requests refused by the API server, for any reason.
    pub binds_refused: u64,
    /// The first violations found, described.
    pub violations: Vec<String>,
}

impl ChaosReport {
    /// The invariants' sum: zero or the run failed.
    pub fn violations_total(&self) -> u64 {
        self.partial_gangs
            + self.overcommitted_nodes
            + self.double_binds
            + self.non_leader_binds
            + self.capability_exceeded
            + self.jobs_lost
            + self.audit_missed
    }

    /// The one-screen summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "phalanx bench chaos: seed {}, {} s, {} replicas, {} nodes\n\
             jobs {} ({} finished, {} failed by dependency), pods created {}\n\
             partial gangs {}, overcommitted nodes {}, double binds {}, non-leader binds {}, \
             capability exceeded {}, jobs lost {}, audit missed {}\n\
             failovers {}, longest without a leader {:.1} s\n\
             faults injected {}: {}\n\
             {:.1} pods bound/s, gang bound p99 {:.2} s, {} binds refused",
            self.seed,
            self.duration_s,
            self.replicas,
            self.nodes,
            self.jobs,
            self.jobs_finished,
            self.jobs_failed,
            self.pods_created,
            self.partial_gangs,
            self.overcommitted_nodes,
            self.double_binds,
            self.non_leader_binds,
            self.capability_exceeded,
            self.jobs_lost,
            self.audit_missed,
            self.failovers,
            self.max_leaderless_s,
            self.faults_injected,
            self.faults_by_kind
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.pods_per_s,
            self.gang_bound_p99_s,
            self.binds_refused,
        );
        for v in &self.violations {
            s.push_str("\nviolation: ");
            s.push_str(v);
        }
        s
    }
}

/// One job of the workload, as submitted.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// PodGroup name (also the job's name).
    pub name: String,
    /// Volcano queue.
    pub queue: String,
    /// Pods, all needed (`minMember`).
    pub min_member: usize,
    /// CPU request per pod, millicores.
    pub cpu_milli: u64,
    /// When its last object was created (Unix seconds).
    pub submitted: f64,
}

/// What the judge needs of the workload: the jobs, and which job each pod belongs to.
#[derive(Debug, Default)]
pub struct Workload {
    /// Jobs in submission order.
    pub jobs: Vec<JobSpec>,
    /// Pod name -> index into `jobs`.
    pub pod_job: HashMap<String, usize>,
}

/// The end state of a job, read from the emulator's objects after the drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every pod succeeded.
    Finished,
    /// Ended by the scheduler as failed, with a cause on its group.
    Failed,
    /// Some pod bound and not ended.
    Running,
    /// Pending, with a reason on its group.
    PendingWithReason,
    /// None of the above: lost.
    Lost,
}

/// The verdict of the journal over the workload.
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    /// See [`ChaosReport`].
    pub partial_gangs: u64,
    /// See [`ChaosReport`].
    pub overcommitted_nodes: u64,
    /// See [`ChaosReport`].
    pub double_binds: u64,
    /// See [`ChaosReport`].
    pub non_leader_binds: u64,
    /// See [`ChaosReport`].
    pub capability_exceeded: u64,
    /// See [`ChaosReport`].
    pub failovers: u64,
    /// See [`ChaosReport`].
    pub max_leaderless_s: f64,
    /// See [`ChaosReport`].
    pub pods_per_s: f64,
    /// See [`ChaosReport`].
    pub gang_bound_p99_s: f64,
    /// See [`ChaosReport`].
    pub binds_refused: u64,
    /// Described violations, first ones.
    pub violations: Vec<String>,
}

/// Intervals `[from, to)` in which no replica held an unexpired lease, from the first
/// acquisition to `end`.
pub fn leaderless(journal: &Journal, end: f64) -> Vec<(f64, f64)> {
    let mut gaps = Vec::new();
    let mut covered: Option<f64> = None;
    for r in &journal.leases {
        match (&r.holder, r.renew, r.duration_s) {
            (Some(_), Some(renew), Some(d)) => {
                if let Some(c) = covered
                    && r.t > c
                {
                    gaps.push((c, r.t));
                }
                covered = Some(covered.map_or(renew + d, |c| c.max(renew + d)));
            }
            _ => {
                // Released: leadership ends now.
                if let Some(c) = covered.as_mut() {
                    *c = c.min(r.t);
                }
            }
        }
    }
    if let Some(c) = covered
        && end > c
    {
        gaps.push((c, end));
    }
    gaps
}

fn overlap(gaps: &[(f64, f64)], from: f64, to: f64) -> f64 {
    gaps.iter()
        .map(|&(a, b)| (b.min(to) - a.max(from)).max(0.0))
        .sum()
}

/// Judges the journal: every invariant but `jobs_lost` (which needs the end state), and the
/// figures. `end` is when the run ended (Unix seconds).
pub fn judge(journal: &Journal, work: &Workload, end: f64, grace_s: f64) -> Verdict {
    let mut v = Verdict::default();
    let note = |v: &mut Vec<String>, s: String| {
        if v.len() < 20 {
            v.push(s);
        }
    };
    // Leadership.
    let gaps = leaderless(journal, end);
    v.max_leaderless_s = gaps.iter().map(|(a, b)| b - a).fold(0.0, f64::max);
    let mut prev: Option<&phalanx_emulator::audit::LeaseRecord> = None;
    for r in &journal.leases {
        if r.holder.is_none() {
            continue;
        }
        if let Some(p) = prev {
            let expired = match (p.renew, p.duration_s) {
                (Some(renew), Some(d)) => r.t > renew + d,
                _ => true,
            };
            if p.holder != r.holder || expired {
                v.failovers += 1;
            }
        }
        prev = Some(r);
    }
    // Binds.
    let mut bound: HashMap<&str, &str> = HashMap::new();
    let (mut first, mut last) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut accepted = 0u64;
    enum Ev<'a> {
        Bind(&'a str),
        End(&'a str),
    }
    let mut timeline: Vec<(f64, usize, Ev)> = Vec::new();
    for (i, b) in journal.binds.iter().enumerate() {
        if b.refused.is_some() {
            v.binds_refused += 1;
            if b.already_on.as_deref().is_some_and(|n| n != b.node) {
                v.double_binds += 1;
                note(
                    &mut v.violations,
                    format!(
                        "double bind: {} to {} by {:?}, already on {:?}",
                        b.pod, b.node, b.user, b.already_on
                    ),
                );
            }
            continue;
        }
        if let Some(n) = bound.insert(&b.pod, &b.node) {
            v.double_binds += 1;
            note(
                &mut v.violations,
                format!("double bind: {} accepted on {} and {n}", b.pod, b.node),
            );
        }
        if journal.lease.is_some() && b.leader.as_deref() != Some(b.user.as_str()) {
            v.non_leader_binds += 1;
            note(
                &mut v.violations,
                format!(
                    "non-leader bind: {} by {:?} while the lease was {:?}",
                    b.pod, b.user, b.leader
                ),
            );
        }
        accepted += 1;
        first = first.min(b.t);
        last = last.max(b.t);
        timeline.push((b.t, i, Ev::Bind(&b.pod)));
    }
    if accepted > 1 && last > first {
        v.pods_per_s = accepted as f64 / (last - first);
    }
    // Overcommit, as the kubelets saw it.
    let mut over: HashSet<&str> = HashSet::new();
    for (i, e) in journal.ends.iter().enumerate() {
        if let (Some(r), Some(n)) = (&e.reason, &e.node)
            && r.starts_with("OutOf")
            && over.insert(n)
        {
            note(
                &mut v.violations,
                format!("overcommit: kubelet on {n} refused {} ({r})", e.pod),
            );
        }
        timeline.push((e.t, journal.binds.len() + i, Ev::End(&e.pod)));
    }
    v.overcommitted_nodes = over.len() as u64;
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    // Gangs and queues over time.
    let pod_name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let caps: HashMap<&str, u64> = QUEUES
        .iter()
        .filter_map(|(q, _, c)| c.map(|c| (*q, c * 1000)))
        .collect();
    let mut used: HashMap<&str, u64> = HashMap::new();
    #[derive(Default, Clone)]
    struct Gang {
        held: usize,
        since: Option<f64>,
        torn: bool,
        complete: bool,
        bound_at: Option<f64>,
    }
    let mut gangs = vec![Gang::default(); work.jobs.len()];
    let mut holding: HashSet<String> = HashSet::new();
    // Ends an episode of a gang partly bound (at completion, at its first pod's end, or at the
    // end of the run): a violation when it lasted longer than the grace in leader time.
    let close = |g: &mut Gang, job: &JobSpec, to: f64, v: &mut Verdict| {
        if let Some(since) = g.since.take()
            && !g.torn
            && !g.complete
        {
            let led = (to - since) - overlap(&gaps, since, to);
            if led > grace_s {
                v.partial_gangs += 1;
                if v.violations.len() < 20 {
                    v.violations.push(format!(
                        "partial gang: {} had {} of {} pods bound for {led:.1} s of leader time",
                        job.name, g.held, job.min_member
                    ));
                }
            }
        }
    };
    for (t, _, ev) in &timeline {
        let (pod, bind) = match ev {
            Ev::Bind(p) => (pod_name(p), true),
            Ev::End(p) => (pod_name(p), false),
        };
        let Some(&j) = work.pod_job.get(&pod) else {
            continue;
        };
        let job = &work.jobs[j];
        let g = &mut gangs[j];
        if bind {
            if !holding.insert(pod) {
                continue;
            }
            if g.held == 0 {
                // A new episode, unless the gang has already run whole: then this is a member
                // re-run alone (its controller's RestartTask), not a gang forming.
                g.since = Some(*t);
                g.torn = false;
            }
            g.held += 1;
            if g.held >= job.min_member && !g.torn && !g.complete {
                close(g, job, *t, &mut v);
                g.complete = true;
                g.bound_at.get_or_insert(*t);
            }
            let u = used.entry(job.queue.as_str()).or_default();
            *u += job.cpu_milli;
            if let Some(cap) = caps.get(job.queue.as_str())
                && *u > *cap
            {
                v.capability_exceeded += 1;
                if v.violations.len() < 20 {
                    v.violations.push(format!(
                        "capability: queue {} at {} millicores over its {cap} after a bind of {}",
                        job.queue, u, job.name
                    ));
                }
            }
        } else {
            if !holding.remove(&pod) {
                continue;
            }
            g.held -= 1;
            close(g, job, *t, &mut v);
            g.torn = true;
            if let Some(u) = used.get_mut(job.queue.as_str()) {
                *u = u.saturating_sub(job.cpu_milli);
            }
            if g.held == 0 {
                g.since = None;
            }
        }
    }
    for (g, job) in gangs.iter_mut().zip(&work.jobs) {
        close(g, job, end, &mut v);
    }
    let mut waits: Vec<f64> = gangs
        .iter()
        .zip(&work.jobs)
        .filter_map(|(g, j)| g.bound_at.map(|b| (b - j.submitted).max(0.0)))
        .collect();
    waits.sort_by(f64::total_cmp);
    v.gang_bound_p99_s = waits
        .get(((waits.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0);
    v
}

/// A replica's process, its way to the API, and when it is due to start again.
struct Replica {
    identity: String,
    kubeconfig: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    restart_at: Option<Instant>,
    cut: watch::Sender<bool>,
    cut_until: Option<Instant>,
    starts: u32,
}

impl Replica {
    fn start(&mut self, dir: &Path) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.log", self.identity)))?;
        let child = Command::new(std::env::current_exe()?)
            .args(["serve", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .arg("--config")
            .arg(&self.config)
            .args(["--identity", &self.identity])
            .env(
                "RUST_LOG",
                std::env::var("PHALANX_CHAOS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting replica {}", self.identity))?;
        self.child = Some(child);
        self.restart_at = None;
        self.starts += 1;
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy from `listener` to `upstream` that drops every connection, and refuses new
/// ones, while `cut` is true: a network partition between one replica and the API.
async fn proxy(listener: TcpListener, upstream: String, cut: watch::Receiver<bool>) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        if *cut.borrow() {
            continue;
        }
        let (mut cut, upstream) = (cut.clone(), upstream.clone());
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = cut.wait_for(|c| *c) => {}
            }
        });
    }
}

/// The bench's own API client: one connection per request, retried through injected 500s and
/// 429s as any controller retries.
#[derive(Clone)]
struct ApiClient {
    host: String,
    token: String,
}

impl ApiClient {
    async fn call(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let bytes = body.map_or_else(bytes::Bytes::new, |b| {
            bytes::Bytes::from(serde_json::to_vec(b).unwrap_or_default())
        });
        let mut last = String::new();
        for attempt in 0..20u32 {
            let r = async {
                let mut c = Conn::connect(&self.host)
                    .await?
                    .with_token(Some(self.token.clone()));
                c.request(method.clone(), path, "application/json", bytes.clone())
                    .await
            }
            .await;
            match r {
                Ok((code @ (429 | 500 | 503), body)) => {
                    last = format!("{code} {}", String::from_utf8_lossy(&body));
                }
                Ok((code, body)) => {
                    return Ok((code, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt + 1))).await;
        }
        bail!("{method} {path}: gave up after 20 attempts: {last}")
    }

    async fn create(&self, path: &str, body: &Value) -> Result<()> {
        let (code, resp) = self.call(hyper::Method::POST, path, Some(body)).await?;
        if code >= 300 && code != 409 {
            bail!("POST {path}: {code} {resp}");
        }
        Ok(())
    }

    async fn post(&self, path: &str) -> Result<()> {
        let (code, resp) = self.call(hyper::Method::POST, path, None).await?;
        if code >= 300 {
            bail!("POST {path}: {code} {resp}");
        }
        Ok(())
    }
}

const GROUPS: &str = "/apis/scheduling.volcano.sh/v1beta1/namespaces/default/podgroups";
const PODS: &str = "/api/v1/namespaces/default/pods";

/// A pod slot of a job: the pod that fills it now, and whether it is done.
#[derive(Debug, Clone)]
struct Slot {
    pod: String,
    created: Instant,
    replaced: u32,
    done: bool,
}

/// The controller's and judge's shared view of the workload.
#[derive(Default)]
struct Shared {
    work: Workload,
    slots: Vec<Vec<Slot>>,
    pods_created: usize,
    pods_failing: u64,
}

fn pod_json(name: &str, job: &JobSpec, seconds: f64, fail: bool) -> Value {
    let mut annotations = json!({
        "scheduling.k8s.io/group-name": job.name,
        "phalanx.dev/duration": format!("{seconds:.1}"),
    });
    if fail {
        annotations["phalanx.dev/outcome"] = json!("failed");
    }
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {JOB_LABEL: job.name}, "annotations": annotations},
           "spec": {"schedulerName": "phalanx", "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "pause",
                      "resources": {"requests": {"cpu": format!("{}m", job.cpu_milli), "memory": "1Gi"}}}]}})
}

/// Submits jobs at `rate` per second until `stop`, each a Volcano PodGroup and its pods.
async fn submit(
    api: ApiClient,
    shared: Arc<Mutex<Shared>>,
    seed: u64,
    rate: f64,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6a6f6273);
    let mut n = 0usize;
    while !*stop.borrow() {
        let name = format!("job-{n:05}");
        let min_member = [1usize, 2, 4, 8][rng.random_range(0..4)];
        let cpu_milli = [500u64, 1000, 2000, 4000][rng.random_range(0..4)];
        let queue = QUEUES[rng.random_range(0..QUEUES.len())].0.to_string();
        let seconds = rng.random_range(3.0..20.0);
        let parent = (n > 0 && rng.random_bool(0.2))
            .then(|| format!("job-{:05}", n - 1 - rng.random_range(0..n.min(10))));
        let mut job = JobSpec {
            name: name.clone(),
            queue: queue.clone(),
            min_member,
            cpu_milli,
            submitted: 0.0,
        };
        let annotations = match &parent {
            Some(p) => json!({"phalanx.dev/depends-on": p}),
            None => json!({}),
        };
        api.create(
            GROUPS,
            &json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                    "metadata": {"name": name, "annotations": annotations},
                    "spec": {"minMember": min_member, "queue": queue}}),
        )
        .await?;
        let mut slots = Vec::new();
        for i in 0..min_member {
            let pod = format!("{name}-{i}");
            let fail = rng.random_bool(0.02);
            api.create(PODS, &pod_json(&pod, &job, seconds, fail))
                .await?;
            slots.push(Slot {
                pod,
                created: Instant::now(),
                replaced: 0,
                done: false,
            });
            if fail {
                shared
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .pods_failing += 1;
            }
        }
        job.submitted = phalanx_emulator::audit::now();
        {
            let mut s = shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            let j = s.work.jobs.len();
            for slot in &slots {
                s.work.pod_job.insert(slot.pod.clone(), j);
            }
            s.pods_created += slots.len();
            s.work.jobs.push(job);
            s.slots.push(slots);
        }
        n += 1;
        let gap = -(1.0 - rng.random_range(0.0..1.0f64)).ln() / rate.max(0.01);
        tokio::time::sleep(Duration::from_secs_f64(gap.min(5.0))).await;
    }
    Ok(())
}

/// The pods' controller: a slot whose pod failed gets its pod deleted and replaced; one whose
/// pod vanished (evicted, garbage-collected, deleted by a scheduler's rollback) is refilled;
/// one whose pod succeeded is done. Level-triggered over a reflector of the bench's pods.
async fn control(
    api: ApiClient,
    shared: Arc<Mutex<Shared>>,
    pods: kube::runtime::reflector::Store<BoundPod>,
) -> Result<()> {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut todo: Vec<(usize, usize, String, Option<String>)> = Vec::new();
        {
            let mut s = shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            for (j, slots) in s.slots.iter_mut().enumerate() {
                for (i, slot) in slots.iter_mut().enumerate() {
                    if slot.done {
                        continue;
                    }
                    let key = kube::runtime::reflector::ObjectRef::new(&slot.pod).within("default");
                    match pods
                        .get(&key)
                        .and_then(|p| p.status.phase.clone())
                        .as_deref()
                    {
                        Some("Succeeded") => slot.done = true,
                        Some("Failed") => {
                            todo.push((j, i, slot.pod.clone(), Some(slot.pod.clone())))
                        }
                        Some(_) => {}
                        None if pods.get(&key).is_none()
                            && slot.created.elapsed() > Duration::from_secs(5) =>
                        {
                            todo.push((j, i, slot.pod.clone(), None));
                        }
                        None => {}
                    }
                }
            }
        }
        for (j, i, old, failed) in todo {
            if let Some(f) = &failed {
                let (code, body) = api
                    .call(hyper::Method::DELETE, &format!("{PODS}/{f}"), None)
                    .await?;
                if code >= 300 && code != 404 {
                    bail!("deleting failed pod {f}: {code} {body}");
                }
            } else {
                // Vanished from the bench's view: make sure it is gone before refilling.
                let (code, _) = api
                    .call(hyper::Method::GET, &format!("{PODS}/{old}"), None)
                    .await?;
                if code != 404 {
                    continue;
                }
            }
            let (job, k) = {
                let s = shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                (s.work.jobs[j].clone(), s.slots[j][i].replaced + 1)
            };
            let pod = format!("{}-{i}-r{k}", job.name);
            let seconds = 3.0 + (k as f64);
            api.create(PODS, &pod_json(&pod, &job, seconds, false))
                .await?;
            let mut s = shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            s.work.pod_job.insert(pod.clone(), j);
            s.pods_created += 1;
            s.slots[j][i] = Slot {
                pod,
                created: Instant::now(),
                replaced: k,
                done: false,
            };
        }
    }
}

/// The current leader, read from the Lease.
async fn leader(api: &ApiClient) -> Option<String> {
    let path = format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases/{}",
        LEASE.0, LEASE.1
    );
    let (code, lease) = api.call(hyper::Method::GET, &path, None).await.ok()?;
    (code == 200)
        .then(|| {
            lease
                .pointer("/spec/holderIdentity")?
                .as_str()
                .map(str::to_string)
        })
        .flatten()
        .filter(|h| !h.is_empty())
}

/// The end state of every job.
fn outcomes(
    shared: &Shared,
    groups: &Value,
    pods: &kube::runtime::reflector::Store<BoundPod>,
) -> Vec<Outcome> {
    let by_name: HashMap<&str, &Value> = groups["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| Some((g.pointer("/metadata/name")?.as_str()?, g)))
        .collect();
    let mut running: HashSet<String> = HashSet::new();
    for p in pods.state() {
        let bound = p.spec.node_name.as_ref().is_some_and(|n| !n.is_empty());
        let ended = matches!(p.status.phase.as_deref(), Some("Succeeded" | "Failed"));
        if bound
            && !ended
            && let Some(j) = p.metadata.labels.as_ref().and_then(|l| l.get(JOB_LABEL))
        {
            running.insert(j.clone());
        }
    }
    shared
        .work
        .jobs
        .iter()
        .zip(&shared.slots)
        .map(|(job, slots)| {
            let group = by_name.get(job.name.as_str());
            let phase = group
                .and_then(|g| g.pointer("/status/phase"))
                .and_then(Value::as_str);
            let reason = group
                .and_then(|g| g.pointer("/status/conditions"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    c["type"] == "Unschedulable"
                        && c["message"].as_str().is_some_and(|m| !m.is_empty())
                });
            if slots.iter().all(|s| s.done) {
                Outcome::Finished
            } else if phase == Some("Completed") {
                Outcome::Failed
            } else if running.contains(&job.name) || phase == Some("Running") {
                Outcome::Running
            } else if reason {
                Outcome::PendingWithReason
            } else {
                Outcome::Lost
            }
        })
        .collect()
}

/// Runs the chaos benchmark and judges it.
pub async fn run(args: &ChaosArgs) -> Result<ChaosReport> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("phalanx-bench-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let host = format!("127.0.0.1:{port}");
    let identities: Vec<String> = (0..args.replicas.max(1))
        .map(|i| format!("phalanx-{i}"))
        .collect();
    let mut emu_args: Vec<String> = [
        "emulator",
        "--listen",
        &host,
        "--nodes",
        &args.nodes.to_string(),
        "--node-shape",
        &args.node_shape,
        "--kubeconfig",
        &dir.join("kubeconfig").display().to_string(),
        "--token",
        "tok-bench=bench:admin",
        "--audit-lease",
        &format!("{}/{}", LEASE.0, LEASE.1),
        "--watch-window",
        "500000",
        "--not-ready-eviction-s",
        "10",
        "--pod-gc-orphan-after-s",
        "5",
        "--start-delay-ms",
        "200",
        "--stop-delay-ms",
        "300",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for id in &identities {
        emu_args.push("--token".into());
        emu_args.push(format!("tok-{id}={id}:admin"));
    }
    let emu_log = std::fs::File::create(dir.join("emulator.log"))?;
    let emulator = crate::bench_e2e::Proc(
        Command::new(std::env::current_exe()?)
            .args(&emu_args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(emu_log)
            .spawn()
            .context("starting the emulator")?,
    );
    let result = drive(args, &dir, &host, &identities).await;
    drop(emulator);
    if result.as_ref().is_ok_and(|r| r.violations_total() == 0) {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("phalanx bench chaos: logs kept in {}", dir.display());
    }
    result
}

async fn drive(
    args: &ChaosArgs,
    dir: &Path,
    host: &str,
    identities: &[String],
) -> Result<ChaosReport> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("kubeconfig").exists() {
        if Instant::now() > deadline {
            bail!(
                "the emulator did not start (see {})",
                dir.join("emulator.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let api = ApiClient {
        host: host.to_string(),
        token: "tok-bench".into(),
    };
    for (name, weight, cap) in QUEUES {
        let mut spec = json!({"weight": weight});
        if let Some(c) = cap {
            spec["capability"] = json!({"cpu": c.to_string()});
        }
        api.create(
            "/apis/scheduling.volcano.sh/v1beta1/queues",
            &json!({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
                    "metadata": {"name": name}, "spec": spec}),
        )
        .await?;
    }
    let (_, nodes) = api.call(hyper::Method::GET, "/api/v1/nodes", None).await?;
    let node_names: Vec<String> = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.pointer("/metadata/name")?.as_str().map(str::to_string))
        .collect();
    let shape = phalanx_emulator::NodeShape::parse(&args.node_shape)?;

    // Replicas, each behind its own proxy.
    let mut replicas = Vec::new();
    for id in identities {
        let proxy_port = free_port()?;
        let listener = TcpListener::bind(("127.0.0.1", proxy_port)).await?;
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(proxy(listener, host.to_string(), cut_rx));
        let kubeconfig = dir.join(format!("{id}.kubeconfig"));
        std::fs::write(
            &kubeconfig,
            phalanx_emulator::server::kubeconfig_yaml(
                &format!("http://127.0.0.1:{proxy_port}"),
                id,
                &format!("tok-{id}"),
            ),
        )?;
        let config = dir.join(format!("{id}.yaml"));
        let admin = free_port()?;
        std::fs::write(
            &config,
            format!(
                "leaderElection: {{enabled: true, leaseDurationSeconds: 4, renewPeriodSeconds: 1}}\n\
                 listen: 127.0.0.1:{admin}\nbindConcurrency: 32\n"
            ),
        )?;
        let mut r = Replica {
            identity: id.clone(),
            kubeconfig,
            config,
            child: None,
            restart_at: None,
            cut,
            cut_until: None,
            starts: 0,
        };
        r.start(dir)?;
        replicas.push(r);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while leader(&api).await.is_none() {
        if Instant::now() > deadline {
            bail!("no replica became leader (logs in {})", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The bench's view of its pods.
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(dir.join("kubeconfig"))?,
            &Default::default(),
        )
        .await?,
    )?;
    let (reader, writer) = kube::runtime::reflector::store::<BoundPod>();
    let pods_api: kube::Api<BoundPod> = kube::Api::namespaced(client, "default");
    let reflect = tokio::spawn(
        kube::runtime::reflector(
            writer,
            kube::runtime::watcher(
                pods_api,
                kube::runtime::watcher::Config::default().labels(JOB_LABEL),
            ),
        )
        .for_each(|_| futures::future::ready(())),
    );

    // Faults on, workload and controller started.
    let faults = json!({
        "errorRate": {"*": 0.01},
        "latencyMs": {"list": 50},
        "throttleRate": 0.005,
        "watchDropAfterMs": 20000,
        "watchGoneRate": 0.2,
        "conflictRate": 0.05,
        "admissionRejectRate": 0.01,
    });
    let (code, body) = api
        .call(hyper::Method::PUT, "/emulator/faults", Some(&faults))
        .await?;
    if code != 200 {
        bail!("setting faults: {code} {body}");
    }
    let shared: Arc<Mutex<Shared>> = Arc::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let submitter = tokio::spawn(submit(
        api.clone(),
        shared.clone(),
        args.seed,
        args.rate,
        stop_rx,
    ));
    let controller = tokio::spawn(control(api.clone(), shared.clone(), reader.clone()));

    // The monkey.
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut chaos: BTreeMap<String, u64> = BTreeMap::new();
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let kill_every = Duration::from_secs_f64((args.duration as f64 / 6.0).max(10.0));
    let mut next_kill = start + kill_every.mul_f64(rng.random_range(0.4..0.8));
    let mut next_act = start + Duration::from_secs_f64(rng.random_range(1.0..4.0));
    let mut not_ready: Vec<(String, Instant)> = Vec::new();
    let mut deleted: Vec<(String, Instant)> = Vec::new();
    let mut actions: Vec<Value> = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = Instant::now();
        supervise(&mut replicas, dir, now)?;
        if submitter.is_finished() || controller.is_finished() {
            break;
        }
        if now >= next_kill {
            next_kill = now + kill_every.mul_f64(rng.random_range(0.7..1.3));
            match leader(&api).await {
                Some(id) => {
                    if let Some(r) = replicas.iter_mut().find(|r| r.identity == id) {
                        r.kill();
                        // Back after the lease would have expired: a standby takes over first
                        // (a replica restarted sooner resumes its own unexpired lease).
                        r.restart_at =
                            Some(now + Duration::from_secs_f64(rng.random_range(5.0..8.0)));
                        *chaos.entry("leader_killed".into()).or_default() += 1;
                        actions.push(json!({"t": phalanx_emulator::audit::now(), "kind": "leader_killed", "target": id}));
                    }
                }
                None => next_kill = now + Duration::from_secs(1),
            }
        }
        for r in &mut replicas {
            if r.cut_until.is_some_and(|t| now >= t) {
                r.cut_until = None;
                let _ = r.cut.send(false);
            }
        }
        for (n, _) in not_ready.extract_if(.., |(_, t)| now >= *t) {
            api.post(&format!("/emulator/nodes/{n}/ready")).await?;
        }
        for (n, _) in deleted.extract_if(.., |(_, t)| now >= *t) {
            let index = node_names.iter().position(|x| *x == n).unwrap_or(0);
            api.create(
                "/api/v1/nodes",
                &phalanx_emulator::server::node_object(&n, &shape, index + 1),
            )
            .await?;
        }
        if now < next_act {
            continue;
        }
        next_act = now + Duration::from_secs_f64(rng.random_range(1.0..5.0));
        let faulted: HashSet<&String> = not_ready.iter().chain(&deleted).map(|(n, _)| n).collect();
        let node = node_names[rng.random_range(0..node_names.len().max(1))].clone();
        let kind = match rng.random_range(0..10) {
            0..=1 if replicas.iter().all(|r| r.cut_until.is_none()) => {
                let r = rng.random_range(0..replicas.len());
                replicas[r].cut_until =
                    Some(now + Duration::from_secs_f64(rng.random_range(5.0..15.0)));
                let _ = replicas[r].cut.send(true);
                ("replica_cut_off", replicas[r].identity.clone())
            }
            2..=4 if !faulted.contains(&node) => {
                api.post(&format!("/emulator/nodes/{node}/not-ready"))
                    .await?;
                not_ready.push((
                    node.clone(),
                    now + Duration::from_secs_f64(rng.random_range(5.0..20.0)),
                ));
                ("node_not_ready", node)
            }
            5..=6 if !faulted.contains(&node) => {
                let (code, body) = api
                    .call(
                        hyper::Method::DELETE,
                        &format!("/api/v1/nodes/{node}"),
                        None,
                    )
                    .await?;
                if code >= 300 {
                    bail!("deleting node {node}: {code} {body}");
                }
                deleted.push((
                    node.clone(),
                    now + Duration::from_secs_f64(rng.random_range(3.0..15.0)),
                ));
                ("node_deleted", node)
            }
            7..=8 => {
                api.post("/emulator/drop-watches").await?;
                ("watches_dropped_at_once", String::new())
            }
            9 => {
                api.post("/emulator/compact").await?;
                ("store_compacted", String::new())
            }
            _ => continue,
        };
        *chaos.entry(kind.0.into()).or_default() += 1;
        actions
            .push(json!({"t": phalanx_emulator::audit::now(), "kind": kind.0, "target": kind.1}));
    }
    // Stop: no more jobs, faults off, everything healed and running.
    let _ = stop_tx.send(true);
    let submitted = submitter.await;
    let (code, body) = api
        .call(hyper::Method::PUT, "/emulator/faults", Some(&json!({})))
        .await?;
    if code != 200 {
        bail!("clearing faults: {code} {body}");
    }
    for r in &mut replicas {
        r.cut_until = None;
        let _ = r.cut.send(false);
    }
    for (n, _) in not_ready.drain(..) {
        api.post(&format!("/emulator/nodes/{n}/ready")).await?;
    }
    for (n, _) in deleted.drain(..) {
        let index = node_names.iter().position(|x| *x == n).unwrap_or(0);
        api.create(
            "/api/v1/nodes",
            &phalanx_emulator::server::node_object(&n, &shape, index + 1),
        )
        .await?;
    }
    submitted??;
    let chaos_end = Instant::now();
    // Drain: until every job finished or failed, or the drain time is up.
    let mut groups = Value::Null;
    while chaos_end.elapsed() < Duration::from_secs(args.drain_s) {
        supervise(&mut replicas, dir, Instant::now())?;
        if controller.is_finished() {
            break;
        }
        let (code, g) = api.call(hyper::Method::GET, GROUPS, None).await?;
        if code == 200 {
            groups = g;
        }
        let settled = {
            let s = shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            outcomes(&s, &groups, &reader)
                .iter()
                .all(|o| matches!(o, Outcome::Finished | Outcome::Failed))
        };
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if controller.is_finished() {
        controller.await??;
        bail!("the controller stopped");
    }
    controller.abort();
    // The verdict, from the emulator's records.
    let run_end = phalanx_emulator::audit::now();
    let (code, journal) = api
        .call(hyper::Method::GET, "/emulator/audit", None)
        .await?;
    if code != 200 {
        bail!("reading the audit: {code}");
    }
    let journal: Journal = serde_json::from_value(journal).context("the audit journal")?;
    if let Some(path) = &args.journal_out {
        let s = shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let jobs: Vec<Value> = s
            .work
            .jobs
            .iter()
            .map(|j| {
                json!({"name": j.name, "queue": j.queue, "minMember": j.min_member,
                            "cpuMilli": j.cpu_milli, "submitted": j.submitted})
            })
            .collect();
        std::fs::write(
            path,
            serde_json::to_vec(&json!({"journal": journal, "jobs": jobs, "chaos": actions}))?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    let (_, g) = api.call(hyper::Method::GET, GROUPS, None).await?;
    groups = g;
    for r in &mut replicas {
        r.kill();
    }
    reflect.abort();
    let s = shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let outcome = outcomes(&s, &groups, &reader);
    let v = judge(&journal, &s.work, run_end, args.grace_s);
    let mut violations = v.violations.clone();
    let mut jobs_lost = 0;
    for (job, o) in s.work.jobs.iter().zip(&outcome) {
        if *o == Outcome::Lost {
            jobs_lost += 1;
            if violations.len() < 20 {
                violations.push(format!(
                    "lost job: {} is not finished, running or pending with a reason",
                    job.name
                ));
            }
        }
    }
    let mut faults_by_kind = journal.faults_by_kind.clone();
    faults_by_kind.extend(chaos);
    if s.pods_failing > 0 {
        faults_by_kind.insert("pod_failed".into(), s.pods_failing);
    }
    Ok(ChaosReport {
        seed: args.seed,
        duration_s: args.duration,
        replicas: replicas.len(),
        nodes: node_names.len(),
        jobs: s.work.jobs.len(),
        jobs_finished: outcome.iter().filter(|o| **o == Outcome::Finished).count(),
        jobs_failed: outcome.iter().filter(|o| **o == Outcome::Failed).count(),
        pods_created: s.pods_created,
        partial_gangs: v.partial_gangs,
        overcommitted_nodes: v.overcommitted_nodes,
        double_binds: v.double_binds,
        non_leader_binds: v.non_leader_binds,
        capability_exceeded: v.capability_exceeded,
        jobs_lost,
        audit_missed: journal.missed,
        failovers: v.failovers,
        max_leaderless_s: v.max_leaderless_s,
        faults_injected: faults_by_kind.values().sum(),
        faults_by_kind,
        pods_per_s: v.pods_per_s,
        gang_bound_p99_s: v.gang_bound_p99_s,
        binds_refused: v.binds_refused,
        violations,
    })
}

/// Restarts replicas that are due, and schedules a restart for any that exited on its own.
fn supervise(replicas: &mut [Replica], dir: &Path, now: Instant) -> Result<()> {
    for r in replicas.iter_mut() {
        if let Some(c) = r.child.as_mut()
            && c.try_wait()?.is_some()
        {
            r.child = None;
            r.restart_at = Some(now + Duration::from_secs(1));
        }
        if r.child.is_none() && r.restart_at.is_some_and(|t| now >= t) {
            r.start(dir)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_emulator::audit::{BindRecord, EndRecord, LeaseRecord};

    fn bind(t: f64, pod: &str, node: &str) -> BindRecord {
        BindRecord {
            t,
            pod: format!("default/{pod}"),
            node: node.into(),
            user: "r0".into(),
            leader: Some("r0".into()),
            refused: None,
            already_on: None,
        }
    }

    fn end(t: f64, pod: &str) -> EndRecord {
        EndRecord {
            t,
            pod: format!("default/{pod}"),
            how: "Succeeded".into(),
            reason: None,
            node: Some("n".into()),
        }
    }

    fn lease(t: f64, holder: &str) -> LeaseRecord {
        LeaseRecord {
            t,
            holder: Some(holder.into()),
            renew: Some(t),
            duration_s: Some(4.0),
        }
    }

    /// One job `j` of `pods` pods (min_member all), `cpu` millicores each, in `queue`.
    fn work(pods: usize, cpu: u64, queue: &str) -> Workload {
        Workload {
            jobs: vec![JobSpec {
                name: "j".into(),
                queue: queue.into(),
                min_member: pods,
                cpu_milli: cpu,
                submitted: 0.0,
            }],
            pod_job: (0..pods).map(|i| (format!("j-{i}"), 0)).collect(),
        }
    }

    #[test]
    fn a_gang_left_partly_bound_is_partial_unless_torn_down_or_leaderless() {
        let w = work(4, 1000, "tenant-b");
        let mut j = Journal {
            binds: vec![bind(0.0, "j-0", "n"), bind(0.0, "j-1", "n")],
            ..Journal::default()
        };
        assert_eq!(judge(&j, &w, 30.0, 10.0).partial_gangs, 1);
        // Completed within the grace: whole.
        let mut whole = j.clone();
        whole
            .binds
            .extend([bind(1.0, "j-2", "n"), bind(1.0, "j-3", "n")]);
        let v = judge(&whole, &w, 30.0, 10.0);
        assert_eq!((v.partial_gangs, v.gang_bound_p99_s), (0, 1.0));
        // Completed, but only after the grace: partial.
        let mut late = j.clone();
        late.binds
            .extend([bind(20.0, "j-2", "n"), bind(20.0, "j-3", "n")]);
        assert_eq!(judge(&late, &w, 30.0, 10.0).partial_gangs, 1);
        // Run whole, ended, then one member re-run alone by its controller: no partial gang.
        let mut rerun = whole.clone();
        rerun
            .ends
            .extend((0..4).map(|i| end(5.0, &format!("j-{i}"))));
        rerun.binds.push(bind(6.0, "j-3", "n"));
        assert_eq!(judge(&rerun, &w, 30.0, 10.0).partial_gangs, 0);
        // Torn down (a member ended) before the grace: its own teardown.
        let mut torn = j.clone();
        torn.ends.push(end(2.0, "j-0"));
        assert_eq!(judge(&torn, &w, 30.0, 10.0).partial_gangs, 0);
        // Nobody led for most of the wait: only leader time counts.
        j.lease = Some("kube-system/phalanx".into());
        j.leases = vec![lease(-1.0, "r0"), lease(26.0, "r1")];
        assert_eq!(judge(&j, &w, 30.0, 10.0).partial_gangs, 0);
    }

    #[test]
    fn binds_are_judged_by_the_lease_and_by_where_the_pod_already_is() {
        let w = work(2, 1000, "tenant-b");
        let mut stale = bind(1.0, "j-1", "m");
        stale.refused = Some("already assigned".into());
        stale.already_on = Some("n".into());
        let mut retry = stale.clone();
        retry.node = "n".into();
        let mut usurper = bind(0.5, "j-1", "n");
        usurper.user = "r1".into();
        let j = Journal {
            lease: Some("kube-system/phalanx".into()),
            binds: vec![bind(0.0, "j-0", "n"), usurper, stale, retry],
            leases: vec![lease(-1.0, "r0")],
            ..Journal::default()
        };
        let v = judge(&j, &w, 2.0, 10.0);
        assert_eq!(v.non_leader_binds, 1, "{:?}", v.violations);
        assert_eq!(
            v.double_binds, 1,
            "a retry to the same node is no double bind"
        );
        assert_eq!(v.binds_refused, 2);
    }

    #[test]
    fn a_queue_over_its_capability_is_counted_per_bind_and_ends_release() {
        // tenant-c is capped at 48 cores: 8 pods of 7 cores pass it at the 7th.
        let w = work(8, 7000, "tenant-c");
        let mut j = Journal {
            binds: (0..8).map(|i| bind(0.0, &format!("j-{i}"), "n")).collect(),
            ..Journal::default()
        };
        assert_eq!(judge(&j, &w, 1.0, 10.0).capability_exceeded, 2);
        // Two pods ended before the last two binds: 6 held, 42 cores, within it.
        j.binds[7].t = 2.0;
        j.binds[6].t = 2.0;
        j.ends.extend([end(1.0, "j-0"), end(1.0, "j-1")]);
        assert_eq!(judge(&j, &w, 3.0, 10.0).capability_exceeded, 0);
    }

    #[test]
    fn leaderless_time_and_failovers_come_from_the_lease_writes() {
        let j = Journal {
            lease: Some("kube-system/phalanx".into()),
            leases: vec![lease(0.0, "a"), lease(1.0, "a"), lease(10.0, "b")],
            ..Journal::default()
        };
        assert_eq!(leaderless(&j, 20.0), vec![(5.0, 10.0), (14.0, 20.0)]);
        let v = judge(&j, &Workload::default(), 20.0, 10.0);
        assert_eq!((v.failovers, v.max_leaderless_s), (1, 6.0));
    }
}
