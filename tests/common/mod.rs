//! Builders for nodes and jobs, and a harness that drives the engine the way a binder would,
//! records every decision, and audits them independently.
#![allow(dead_code)] // each test binary uses a different part of this module

use phalanx_model::{
    ClusterEvent, Decision, EvictReason, Job, Node, NodeAffinity, PodRef, PodSpec, Reason,
    ResourceId, Resources, SelectorOperator, SelectorRequirement, SelectorTerm, Span, Taint,
    TaintEffect, Task, Time, Toleration, TolerationOperator,
};
use phalanx_scheduler::{CycleReport, Engine, EngineConfig, EventError};
use phalanx_simulator::audit::Audit;
use sha2::{Digest, Sha256};

pub const GIB: i64 = 1 << 30;

/// Builds a node.
pub struct NodeB(Node);

pub fn node(name: &str) -> NodeB {
    NodeB(Node::new(
        name,
        Resources::of(ResourceId::CPU, 8000)
            .with(ResourceId::MEMORY, 32 * GIB)
            .with(ResourceId::PODS, 110),
    ))
}

impl NodeB {
    pub fn cpu(mut self, cores: i64) -> Self {
        self.0.allocatable.set(ResourceId::CPU, cores * 1000);
        self
    }
    pub fn mem_gib(mut self, gib: i64) -> Self {
        self.0.allocatable.set(ResourceId::MEMORY, gib * GIB);
        self
    }
    pub fn gpus(mut self, n: i64) -> Self {
        self.0.allocatable.set(ResourceId::GPU, n);
        self
    }
    pub fn pods(mut self, n: i64) -> Self {
        self.0.allocatable.set(ResourceId::PODS, n);
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0.labels.insert(k.into(), v.into());
        self
    }
    pub fn taint(mut self, k: &str, v: &str, effect: TaintEffect) -> Self {
        self.0.taints.push(Taint {
            key: k.into(),
            value: v.into(),
            effect,
        });
        self
    }
    pub fn cordoned(mut self) -> Self {
        self.0.unschedulable = true;
        self
    }
    pub fn build(self) -> Node {
        self.0
    }
}

/// Builds a job; `task` adds a task, and the other setters apply to the last task added.
pub struct JobB(Job);

pub fn job(name: &str) -> JobB {
    JobB(Job::new(name))
}

impl JobB {
    pub fn task(mut self, name: &str, replicas: u32, cpu_m: i64) -> Self {
        self.0.tasks.push(Task {
            name: name.into(),
            replicas,
            min_member: 0,
            pod: PodSpec {
                requests: Resources::of(ResourceId::CPU, cpu_m).with(ResourceId::MEMORY, GIB),
                ..Default::default()
            },
        });
        self
    }
    fn last(&mut self) -> &mut Task {
        self.0.tasks.last_mut().expect("add a task first")
    }
    pub fn gpus(mut self, n: i64) -> Self {
        self.last().pod.requests.set(ResourceId::GPU, n);
        self
    }
    pub fn mem_gib(mut self, gib: i64) -> Self {
        self.last().pod.requests.set(ResourceId::MEMORY, gib * GIB);
        self
    }
    pub fn task_min(mut self, n: u32) -> Self {
        self.last().min_member = n;
        self
    }
    pub fn selector(mut self, k: &str, v: &str) -> Self {
        self.last().pod.node_selector.insert(k.into(), v.into());
        self
    }
    pub fn affinity_in(mut self, k: &str, values: &[&str]) -> Self {
        self.last().pod.affinity = Some(NodeAffinity {
            terms: vec![SelectorTerm {
                match_expressions: vec![SelectorRequirement {
                    key: k.into(),
                    operator: SelectorOperator::In,
                    values: values.iter().map(|v| v.to_string()).collect(),
                }],
            }],
        });
        self
    }
    pub fn tolerate(mut self, k: &str) -> Self {
        self.last().pod.tolerations.push(Toleration {
            key: k.into(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: None,
        });
        self
    }
    pub fn min_member(mut self, n: u32) -> Self {
        self.0.min_member = n;
        self
    }
    pub fn priority(mut self, p: i32) -> Self {
        self.0.priority = p;
        self
    }
    pub fn queue(mut self, q: &str) -> Self {
        self.0.queue = q.into();
        self
    }
    pub fn min_resources(mut self, r: Resources) -> Self {
        self.0.min_resources = Some(r);
        self
    }
    pub fn submitted(mut self, t: u64) -> Self {
        self.0.submit_time = Time(t);
        self
    }
    /// Every pod of the job declares it runs `ms` milliseconds (it may backfill).
    pub fn runs(mut self, ms: u64) -> Self {
        for t in &mut self.0.tasks {
            t.pod.duration = Some(Span(ms));
        }
        self
    }
    /// min_member defaults to every pod of the job.
    pub fn build(mut self) -> Job {
        if self.0.min_member == 0 {
            self.0.min_member = self.0.replicas() as u32;
        }
        self.0
    }
}

pub fn pod(job: &str, task: u32, index: u32) -> PodRef {
    PodRef {
        job: job.into(),
        task,
        index,
    }
}

/// The reason a cycle gave for not placing job `name`, if it gave one.
pub fn unschedulable(d: &[Decision], name: &str) -> Option<Reason> {
    d.iter().find_map(|d| match d {
        Decision::MarkUnschedulable { job, reason } if job == name => Some(reason.clone()),
        _ => None,
    })
}

/// The pods of each `Evict` decision given for `why`, in order.
pub fn evictions(d: &[Decision], why: EvictReason) -> Vec<Vec<PodRef>> {
    d.iter()
        .filter_map(|d| match d {
            Decision::Evict { pods, reason } if *reason == why => Some(pods.clone()),
            _ => None,
        })
        .collect()
}

/// Drives an engine like a binder and kubelet would, recording and auditing every decision.
pub struct Harness {
    pub engine: Engine,
    pub audit: Audit,
    pub log: Vec<Decision>,
    pub reports: Vec<CycleReport>,
    pub now: Time,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(EngineConfig::default())
    }

    pub fn with(config: EngineConfig) -> Self {
        Harness {
            engine: Engine::new(config),
            audit: Audit::new(),
            log: Vec::new(),
            reports: Vec::new(),
            now: Time::ZERO,
        }
    }

    /// Applies an event to the engine and the audit.
    pub fn apply(&mut self, event: ClusterEvent) -> Result<(), EventError> {
        self.engine.apply(event.clone())?;
        self.audit.on_event(&event);
        Ok(())
    }

    pub fn node(&mut self, n: Node) {
        self.apply(ClusterEvent::NodeUpserted(n)).unwrap();
    }

    pub fn submit(&mut self, j: Job) {
        self.apply(ClusterEvent::JobSubmitted(j)).unwrap();
    }

    /// One cycle a second after the last; decisions are recorded and audited but not carried
    /// out.
    pub fn cycle(&mut self) -> Vec<Decision> {
        self.cycle_at(Time(self.now.0 + 1000))
    }

    /// One cycle at `now` (for tests about time); recorded and audited like [`Harness::cycle`].
    pub fn cycle_at(&mut self, now: Time) -> Vec<Decision> {
        self.now = now;
        let out = self.engine.cycle(self.now);
        for d in &out.decisions {
            self.audit.on_decision(d);
        }
        self.log.extend(out.decisions.iter().cloned());
        self.reports.push(out.report);
        out.decisions
    }

    /// Carries out decisions as a well-behaved cluster would: every bind succeeds, every
    /// eviction happens.
    pub fn carry_out(&mut self, decisions: &[Decision]) {
        for d in decisions {
            match d {
                Decision::BindGang { .. } => {
                    for event in d.all_bound() {
                        self.apply(event).unwrap();
                    }
                }
                Decision::Evict { pods, .. } => {
                    for p in pods {
                        self.apply(ClusterEvent::PodEvicted { pod: p.clone() })
                            .unwrap();
                    }
                }
                _ => {}
            }
        }
    }

    /// Cycles and carries out until a cycle decides nothing.
    pub fn settle(&mut self) {
        for _ in 0..1000 {
            let d = self.cycle();
            if d.is_empty() {
                return;
            }
            self.carry_out(&d);
        }
        panic!("the engine kept deciding for 1000 cycles: a loop");
    }

    /// Pods bound per job, from the decisions.
    pub fn bound(&self, job: &str) -> usize {
        self.audit.placed(job)
    }

    /// SHA-256 of the decision log.
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(&self.log).unwrap();
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Asserts the audit found nothing wrong (at a quiet point: all feedback applied).
    pub fn assert_safe(&self) {
        assert_eq!(self.audit.overcommitted_nodes(), 0, "overcommitted nodes");
        assert_eq!(self.audit.partial_binds, 0, "BindGang left a gang partial");
        let partial: Vec<_> = self
            .audit
            .partial_jobs()
            .map(|(name, placed, ended)| {
                let info = self.engine.view().job(name).map(|j| (j.phase, j.pods));
                format!("{name}: audit placed {placed} ended {ended}; engine {info:?}")
            })
            .collect();
        assert!(
            partial.is_empty(),
            "partial gangs at a quiet point: {partial:#?}"
        );
        assert_eq!(self.audit.double_binds, 0, "pods bound twice");
        assert_eq!(
            self.audit.constraint_violations, 0,
            "taint/selector/affinity broken"
        );
        assert_eq!(
            self.audit.unknown_references, 0,
            "decisions about unknown objects"
        );
    }
}
