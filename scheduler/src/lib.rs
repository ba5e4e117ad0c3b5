//! phalanx-scheduler: the engine every Phalanx front end drives, the Kubernetes adapter and
//! the simulator alike. It keeps the cluster [`Snapshot`], places each gang as one
//! [`Transaction`] (all of its minimum or nothing), and answers events with [`Decision`]s.
//!
//! ```
//! use phalanx_model::{ClusterEvent, Decision, Job, Node, PodSpec, ResourceId, Resources, Task, Time};
//! use phalanx_scheduler::{Engine, EngineConfig};
//!
//! let mut engine = Engine::new(EngineConfig::default());
//! let cap = Resources::of(ResourceId::CPU, 4000).with(ResourceId::PODS, 110);
//! engine.apply(ClusterEvent::NodeUpserted(Node::new("node-1", cap))).unwrap();
//! let mut job = Job::new("team-a/train");
//! job.min_member = 2;
//! job.tasks.push(Task {
//!     name: "worker".into(),
//!     replicas: 2,
//!     min_member: 0,
//!     pod: PodSpec { requests: Resources::of(ResourceId::CPU, 1500), ..Default::default() },
//! });
//! engine.apply(ClusterEvent::JobSubmitted(job)).unwrap();
//! let out = engine.cycle(Time::ZERO);
//! assert!(matches!(&out.decisions[0], Decision::BindGang { bindings, .. } if bindings.len() == 2));
//! ```
//!
//! [`Decision`]: phalanx_model::Decision

pub mod engine;
pub mod gang;
pub mod reserve;
pub mod snapshot;

pub use engine::{
    CycleOutcome, CycleReport, Engine, EngineConfig, EstimateBasis, EventError, JobInfo, JobPhase,
    NodeInfo, PodCounts, PodPhase, View, WakeUps,
};
pub use gang::{GpuDemand, Placement, ScorePolicy, Shape, Transaction};
pub use snapshot::{Class, NodeEntry, NodeId, Snapshot};
