//! Jobs: one job is one gang. A job has tasks (roles such as driver/executor, master/worker);
//! each task is `replicas` identical pods. At least `min_member` pods of the job, and at least
//! each task's own minimum, are placed together or not at all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::node::{NodeAffinity, Toleration};
use crate::resource::{ResourceId, Resources};
use crate::time::{Span, Time};

/// The queue a job goes to when it names none.
pub const DEFAULT_QUEUE: &str = "root.default";

/// What one pod of a task needs and where it may run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodSpec {
    /// Resource requests of one pod. The `pods` lane is always 1 once the engine admits the job.
    pub requests: Resources,
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity, if any.
    pub affinity: Option<NodeAffinity>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// How long a pod runs once bound, where the job declares it (used to plan backfill).
    pub duration: Option<Span>,
}

impl PodSpec {
    /// Every node label key this pod's placement depends on.
    pub fn label_keys(&self) -> impl Iterator<Item = &str> {
        self.node_selector
            .keys()
            .map(String::as_str)
            .chain(self.affinity.iter().flat_map(NodeAffinity::keys))
    }
}

/// A role in a job: `replicas` identical pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Task name, unique in the job (`driver`, `worker`, ...).
    pub name: String,
    /// How many pods.
    pub replicas: u32,
    /// Pods of this task that must be in the gang (0: no per-task minimum).
    pub min_member: u32,
    /// The pod template.
    pub pod: PodSpec,
}

/// A job: one gang of pods scheduled all or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Unique name, conventionally `namespace/name`.
    pub name: String,
    /// Dotted queue path (`root.team`).
    pub queue: String,
    /// Higher goes first within a queue.
    pub priority: i32,
    /// Pods that must be placed together.
    pub min_member: u32,
    /// Capacity to hold for the job beyond its current pods (Spark: driver + executors).
    pub min_resources: Option<Resources>,
    /// Tasks, in order.
    pub tasks: Vec<Task>,
    /// Names of jobs that must succeed before this one is eligible.
    pub depends_on: Vec<String>,
    /// When the job was submitted.
    pub submit_time: Time,
}

/// Identifies one pod: replica `index` of task number `task` of `job`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PodRef {
    /// Job name.
    pub job: String,
    /// Index of the task in the job's `tasks`.
    pub task: u32,
    /// Replica index within the task.
    pub index: u32,
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[task {} #{}]", self.job, self.task, self.index)
    }
}

/// Why a job is malformed. Each variant names the job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum JobError {
    /// The job has no name.
    #[error("job has an empty name")]
    EmptyName,
    /// The job has no tasks, so no pods.
    #[error("job {job}: no tasks")]
    NoTasks {
        /// Job name.
        job: String,
    },
    /// A task has an empty name or the same name as another.
    #[error("job {job}: task name {task:?} is empty or repeated")]
    BadTaskName {
        /// Job name.
        job: String,
        /// Task name.
        task: String,
    },
    /// The tasks add up to no pods.
    #[error("job {job}: no pods (every task has replicas: 0)")]
    NoPods {
        /// Job name.
        job: String,
    },
    /// `min_member` is 0 or above the pods the job has.
    #[error(
        "job {job}: min_member {min_member} must be between 1 and the {replicas} pods of its tasks"
    )]
    MinMember {
        /// Job name.
        job: String,
        /// The min_member given.
        min_member: u32,
        /// Total replicas.
        replicas: u64,
    },
    /// A task's own minimum is above its replicas.
    #[error("job {job}: task {task} has min_member {min_member} above its {replicas} replicas")]
    TaskMinMember {
        /// Job name.
        job: String,
        /// Task name.
        task: String,
        /// The task's min_member.
        min_member: u32,
        /// The task's replicas.
        replicas: u32,
    },
    /// A request or `min_resources` has a negative amount.
    #[error("job {job}: {what} has a negative amount")]
    Negative {
        /// Job name.
        job: String,
        /// Which request.
        what: String,
    },
    /// The job depends on itself.
    #[error("job {job}: depends on itself")]
    SelfDependency {
        /// Job name.
        job: String,
    },
    /// A dependency is named twice or has an empty name.
    #[error("job {job}: dependency {dependency:?} is empty or named twice")]
    BadDependency {
        /// Job name.
        job: String,
        /// The dependency as written.
        dependency: String,
    },
    /// A dependency is in another namespace (names are `namespace/name`).
    #[error("job {job}: dependency {dependency} is in another namespace")]
    CrossNamespaceDependency {
        /// Job name.
        job: String,
        /// The dependency.
        dependency: String,
    },
}

/// The namespace of a `namespace/name` job name, if it has one.
pub fn namespace_of(name: &str) -> Option<&str> {
    name.split_once('/').map(|(ns, _)| ns)
}

impl Job {
    /// A job in the default queue, priority 0, with no tasks yet.
    pub fn new(name: impl Into<String>) -> Self {
        Job {
            name: name.into(),
            queue: DEFAULT_QUEUE.to_string(),
            priority: 0,
            min_member: 0,
            min_resources: None,
            tasks: Vec::new(),
            depends_on: Vec::new(),
            submit_time: Time::ZERO,
        }
    }

    /// Total pods over all tasks.
    pub fn replicas(&self) -> u64 {
        self.tasks.iter().map(|t| t.replicas as u64).sum()
    }

    /// The resources of all its pods together.
    pub fn total_request(&self) -> Resources {
        self.tasks.iter().fold(Resources::ZERO, |acc, t| {
            acc + t.pod.requests.times(t.replicas as u64)
        })
    }

    /// Checks the job's shape; the engine refuses to schedule a job that fails this.
    pub fn validate(&self) -> Result<(), JobError> {
        let job = || self.name.clone();
        if self.name.is_empty() {
            return Err(JobError::EmptyName);
        }
        if self.tasks.is_empty() {
            return Err(JobError::NoTasks { job: job() });
        }
        let mut names = BTreeSet::new();
        for t in &self.tasks {
            if t.name.is_empty() || !names.insert(t.name.as_str()) {
                return Err(JobError::BadTaskName {
                    job: job(),
                    task: t.name.clone(),
                });
            }
            if t.min_member > t.replicas {
                return Err(JobError::TaskMinMember {
                    job: job(),
                    task: t.name.clone(),
                    min_member: t.min_member,
                    replicas: t.replicas,
                });
            }
            if t.pod.requests.any_negative() {
                return Err(JobError::Negative {
                    job: job(),
                    what: format!("task {} requests", t.name),
                });
            }
        }
        let replicas = self.replicas();
        if replicas == 0 {
            return Err(JobError::NoPods { job: job() });
        }
        if self.min_member == 0 || self.min_member as u64 > replicas {
            return Err(JobError::MinMember {
                job: job(),
                min_member: self.min_member,
                replicas,
            });
        }
        if self.min_resources.is_some_and(|r| r.any_negative()) {
            return Err(JobError::Negative {
                job: job(),
                what: "min_resources".into(),
            });
        }
        if self.depends_on.contains(&self.name) {
            return Err(JobError::SelfDependency { job: job() });
        }
        // Most jobs name a handful of dependencies: a scan of the ones before beats a set.
        let mut seen = BTreeSet::new();
        let few = self.depends_on.len() <= 16;
        let namespace = namespace_of(&self.name);
        for (i, dep) in self.depends_on.iter().enumerate() {
            let repeated = if few {
                self.depends_on[..i].contains(dep)
            } else {
                !seen.insert(dep.as_str())
            };
            if dep.is_empty() || repeated {
                return Err(JobError::BadDependency {
                    job: job(),
                    dependency: dep.clone(),
                });
            }
            if let (Some(mine), Some(theirs)) = (namespace, namespace_of(dep))
                && mine != theirs
            {
                return Err(JobError::CrossNamespaceDependency {
                    job: job(),
                    dependency: dep.clone(),
                });
            }
        }
        Ok(())
    }

    /// The longest duration any of its pods declares, if every task declares one.
    pub fn declared_duration(&self) -> Option<Span> {
        self.tasks
            .iter()
            .map(|t| t.pod.duration)
            .try_fold(Span(0), |acc, d| d.map(|d| acc.max(d)))
    }

    /// Whether any pod of the job asks for GPUs.
    pub fn wants_gpu(&self) -> bool {
        self.tasks
            .iter()
            .any(|t| t.pod.requests.get(ResourceId::GPU) > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(replicas: u32, min_member: u32) -> Job {
        let mut j = Job::new("ns/j");
        j.min_member = min_member;
        j.tasks.push(Task {
            name: "worker".into(),
            replicas,
            min_member: 0,
            pod: PodSpec::default(),
        });
        j
    }

    #[test]
    fn validation_names_the_job_and_the_problem() {
        assert!(job(4, 4).validate().is_ok());
        let e = job(4, 5).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "job ns/j: min_member 5 must be between 1 and the 4 pods of its tasks"
        );
        assert!(matches!(
            job(4, 0).validate(),
            Err(JobError::MinMember { .. })
        ));
        assert!(matches!(job(0, 1).validate(), Err(JobError::NoPods { .. })));
        let mut j = job(4, 4);
        j.tasks.clear();
        assert!(matches!(j.validate(), Err(JobError::NoTasks { .. })));
        let mut j = job(4, 4);
        j.tasks[0].min_member = 5;
        assert!(matches!(j.validate(), Err(JobError::TaskMinMember { .. })));
        let mut j = job(4, 4);
        j.tasks.push(j.tasks[0].clone());
        assert!(matches!(j.validate(), Err(JobError::BadTaskName { .. })));
        let mut j = job(4, 4);
        j.tasks[0].pod.requests = Resources::of(ResourceId::CPU, -1);
        assert!(matches!(j.validate(), Err(JobError::Negative { .. })));
        let mut j = job(4, 4);
        j.depends_on.push("ns/j".into());
        assert!(matches!(j.validate(), Err(JobError::SelfDependency { .. })));
        let mut j = job(4, 4);
        j.depends_on = vec!["ns/a".into(), "ns/a".into()];
        assert!(matches!(j.validate(), Err(JobError::BadDependency { .. })));
        j.depends_on = vec![String::new()];
        assert!(matches!(j.validate(), Err(JobError::BadDependency { .. })));
        j.depends_on = vec!["other/a".into()];
        assert_eq!(
            j.validate().unwrap_err().to_string(),
            "job ns/j: dependency other/a is in another namespace"
        );
        j.depends_on = vec!["ns/a".into()];
        assert!(j.validate().is_ok());
        assert!(matches!(Job::new("").validate(), Err(JobError::EmptyName)));
    }
}
