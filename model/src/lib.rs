//! phalanx-model: the vocabulary every other crate speaks. Resources and quantities, nodes and
//! their predicates, pods, jobs (one job is one gang), queues, time, the events that go into the
//! engine and the decisions and reasons that come out. Data and pure functions only: no I/O, no
//! clock, no randomness.

pub mod event;
pub mod job;
pub mod node;
pub mod quantity;
pub mod queue;
pub mod queue_names;
pub mod resource;
pub mod time;

pub use event::{
    Binding, ClusterEvent, Decision, EvictReason, FilterReason, FitError, Reason, Shortfall,
};
pub use job::{DEFAULT_QUEUE, Job, JobError, PodRef, PodSpec, Task, namespace_of};
pub use node::{
    Node, NodeAffinity, SelectorOperator, SelectorRequirement, SelectorTerm, Taint, TaintEffect,
    Toleration, TolerationOperator, tolerated,
};
pub use quantity::{Quantity, QuantityError};
pub use queue::{Amount, QueueOrdering, QueueRecord, QueueRecordError, QueueSpec};
pub use queue_names::queue_path;
pub use resource::{Lanes, MAX_RESOURCES, ResourceError, ResourceId, ResourceTable, Resources};
pub use time::{Span, Time};
