//! Events the engine refuses: [`EventError`]. The engine's state is unchanged when one is returned.

use phalanx_model::PodRef;
use phalanx_queue::tree::QueueConfigError;

use super::*;

/// An event the engine cannot apply. The state is unchanged when `apply` returns one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event names a job the engine does not know.
    #[error("unknown job {0}")]
    UnknownJob(String),
    /// The event names a node the engine does not know (or that was removed).
    #[error("unknown node {0}")]
    UnknownNode(String),
    /// The job has no such task or replica.
    #[error("unknown pod {0}")]
    UnknownPod(PodRef),
    /// The event does not apply to a pod in this phase.
    #[error("{event} does not apply to pod {pod} in phase {phase:?}")]
    Conflict {
        /// The pod.
        pod: PodRef,
        /// Its phase.
        phase: PodPhase,
        /// The event kind.
        event: &'static str,
    },
    /// The job cannot be stored at all (it has no name).
    #[error("{0}")]
    InvalidJob(phalanx_model::JobError),
    /// The queue configuration is invalid; the previous one stays in force.
    #[error(transparent)]
    InvalidQueues(#[from] QueueConfigError),
    /// The job's dependencies would close a cycle; it was not admitted.
    #[error(transparent)]
    DependencyCycle(#[from] phalanx_queue::dag::CycleError),
    /// A resubmitted job changes what already runs.
    #[error("job {job}: update rejected: {why}")]
    JobUpdateRejected {
        /// Job name.
        job: String,
        /// Why.
        why: &'static str,
    },
}

impl EventError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            EventError::UnknownJob(_) => "unknown_job",
            EventError::UnknownNode(_) => "unknown_node",
            EventError::UnknownPod(_) => "unknown_pod",
            EventError::Conflict { .. } => "conflict",
            EventError::InvalidJob(_) => "invalid_job",
            EventError::DependencyCycle(_) => "dependency_cycle",
            EventError::InvalidQueues(_) => "invalid_queues",
            EventError::JobUpdateRejected { .. } => "job_update_rejected",
        }
    }
}
