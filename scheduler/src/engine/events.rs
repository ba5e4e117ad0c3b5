//! Event handling: what each [`ClusterEvent`](phalanx_model::ClusterEvent) does to the jobs, the
//! queues and the snapshot (submit, update, delete, bind, bind failure, finish, evict, node
//! removal, queue configuration), and the undoing of gangs that fall below their minimum.

use std::collections::BTreeMap;
use std::sync::Arc;

use phalanx_model::{
    Decision, EvictReason, Job, PodRef, QueueSpec, Reason, ResourceId, Resources, Span, Time,
};
use phalanx_queue::dag::{NodeIndex as DagNode, PathLength, Released, Status as DagStatus};
use phalanx_queue::tree::PlacementError;
use phalanx_queue::{JobId, OrderKey};

use super::*;

impl Engine {
    /// Replaces the queue tree; a configuration that does not validate is refused whole and
    /// the previous one stays in force.
    pub(super) fn configure_queues(&mut self, specs: Vec<QueueSpec>) -> Result<(), EventError> {
        let lost = self.queues.configure(&specs)?;
        // What the new tree counts comes from what the jobs hold, not from the old tree: a job
        // placed (or adopted after a restart) while its queue was not configured is counted
        // from the moment its queue is.
        self.queues.recount(
            self.jobs
                .iter()
                .flatten()
                .map(|s| (s.job.queue.as_str(), s.accounted)),
        );
        for id in lost {
            self.state_mut(id).queued = false;
            self.enqueue(id);
        }
        // Jobs that waited for their queue to exist may go now.
        let waiting: Vec<JobId> = self
            .jobs
            .iter()
            .flatten()
            .filter(|s| {
                matches!(
                    s.reason,
                    Some(Reason::QueueNotFound { .. } | Reason::QueueNotLeaf { .. })
                )
            })
            .map(|s| self.by_name[s.job.name.as_str()])
            .collect();
        for id in waiting {
            self.enqueue(id);
        }
        self.cluster_grew = true;
        self.sleepers.wake_all = true;
        Ok(())
    }

    /// Brings what the queue tree counts for a job up to date with what it holds.
    pub(super) fn account(&mut self, id: JobId) {
        let Some(s) = self.jobs[id as usize].as_mut() else {
            return;
        };
        let now = s.held + s.reservations.values().fold(Resources::ZERO, |a, r| a + *r);
        if now != s.accounted {
            let old = std::mem::replace(&mut s.accounted, now);
            self.queues.allocate(&s.job.queue, old, false);
            self.queues.allocate(&s.job.queue, now, true);
            if let Some((ledger, _)) = self.ledger.as_mut() {
                ledger.take(&self.queues, &s.job.queue, old - now);
            }
        }
    }

    /// Puts a pending job in its queue, or records why it cannot be.
    pub(super) fn enqueue(&mut self, id: JobId) {
        let s = self.jobs[id as usize].as_ref().expect("live id");
        if matches!(s.phase, JobPhase::Succeeded | JobPhase::Failed) || s.queued {
            return;
        }
        if s.backoff != Backoff::Off {
            // Backing off after a failed bind: the cycle that ends the wait queues it.
            return;
        }
        let gated = s.dag_node.filter(|&n| self.dag.unmet(n) > 0);
        let reason = if let Some(e) = &s.invalid {
            Reason::InvalidJob(e.clone())
        } else if let Some(n) = gated {
            if !self.dag.missing_any(n) {
                // The normal course of a pipeline, like a pod's scheduling gate in
                // kube-scheduler: the job was never tried, so no decision says it could not be
                // placed. Its reason says what it waits for; the view names the jobs, from the
                // gate, when asked. Building that list for every waiting job at submission was
                // most of what gating cost.
                self.state_mut(id).reason =
                    Some(Reason::WaitingForDependencies { jobs: Vec::new() });
                return;
            }
            // A name no job has yet may be a mistake, and the job fails if it stays missing:
            // that is worth a decision, with the names.
            Reason::DependencyMissing {
                jobs: self.dag.blockers(n).1,
            }
        } else {
            let demand = pending_demand(s);
            // Its chain of dependent work may have changed while it waited.
            let key = self.order_key(&s.job, s.dag_node, id);
            match self.queues.push(id, &s.job.queue, key, demand) {
                Ok(()) => {
                    let s = self.state_mut(id);
                    s.key = key;
                    s.queued = true;
                    if matches!(
                        s.reason,
                        Some(
                            Reason::QueueNotFound { .. }
                                | Reason::QueueNotLeaf { .. }
                                | Reason::InvalidJob(_)
                                | Reason::WaitingForDependencies { .. }
                                | Reason::DependencyMissing { .. }
                        )
                    ) {
                        s.reason = None;
                    }
                    return;
                }
                Err(PlacementError::NotFound(queue)) => Reason::QueueNotFound { queue },
                Err(PlacementError::NotLeaf(queue)) => Reason::QueueNotLeaf { queue },
            }
        };
        let s = self.state_mut(id);
        // A job missing a dependency keeps only the kind of its reason: the view works out the
        // names from the gate when asked, and the decision carries them now.
        s.reason = Some(match &reason {
            Reason::DependencyMissing { .. } => Reason::DependencyMissing { jobs: Vec::new() },
            other => other.clone(),
        });
        let job = s.job.name.clone();
        self.outbox
            .push(Decision::MarkUnschedulable { job, reason });
    }

    pub(super) fn dequeue(&mut self, id: JobId) {
        self.sleepers.forget(id);
        let s = self.state_mut(id);
        if s.queued {
            s.queued = false;
            self.queues.remove(id);
        }
    }

    pub(super) fn submit(&mut self, mut job: Job) -> Result<(), EventError> {
        for task in &mut job.tasks {
            task.pod.requests.set(ResourceId::PODS, 1);
        }
        if let Some((name, &id)) = self.by_name.get_key_value(job.name.as_str()) {
            let name = Arc::clone(name);
            return self.update(id, &name, job);
        }
        if job.name.is_empty() {
            // Nothing could ever refer to a nameless job: refuse it rather than store it.
            return Err(EventError::InvalidJob(phalanx_model::JobError::EmptyName));
        }
        let id = self.jobs.len() as JobId;
        // The gate refuses a cycle before anything else changes.
        let invalid = job.validate().err();
        let in_dag = invalid.is_none();
        let name: Arc<str> = Arc::from(job.name.as_str());
        let dag_node = if in_dag {
            self.gate(id, &name, &job)?
        } else {
            None
        };
        self.note_shapes(&job, None);
        self.count_priority(job.priority, true);
        let (pods, by_task, counts) = fresh_pods(&job);
        self.by_name.insert(name, id);
        self.jobs.push(Some(JobState {
            key: self.order_key(&job, dag_node, id),
            phase: JobPhase::Pending,
            by_task,
            pods,
            counts,
            held: Resources::ZERO,
            accounted: Resources::ZERO,
            reservations: BTreeMap::new(),
            reason: None,
            queued: false,
            in_dag,
            invalid,
            dag_node,
            started: Time::ZERO,
            claim: None,
            blocked_since: None,
            reclaim_tried: None,
            unplannable: None,
            bind_failures: 0,
            backoff: Backoff::Off,
            partial_since: None,
            undone: None,
            job,
        }));
        self.after_gate(id);
        Ok(())
    }

    /// Adds a valid job's dependencies to the DAG gate; refuses a cycle, changing nothing.
    /// Returns the job's node in the gate, if it has one.
    pub(super) fn gate(
        &mut self,
        id: JobId,
        name: &Arc<str>,
        job: &Job,
    ) -> Result<Option<DagNode>, EventError> {
        let length = PathLength::of_job(job.declared_duration());
        let (jobs, by_name) = (&self.jobs, &self.by_name);
        let known = |name: &str| {
            let (name, &dep) = by_name.get_key_value(name)?;
            let status = match jobs[dep as usize].as_ref()?.phase {
                JobPhase::Pending | JobPhase::Running => DagStatus::Waiting,
                JobPhase::Succeeded => DagStatus::Succeeded,
                JobPhase::Failed => DagStatus::Failed,
            };
            Some((dep, status, Arc::clone(name)))
        };
        let added = self
            .dag
            .add(id, name, &job.depends_on, length, job.submit_time, known)?;
        for (other, node) in added.adopted {
            if let Some(s) = self.jobs[other as usize].as_mut() {
                s.dag_node = Some(node);
            }
        }
        Ok(added.node)
    }

    /// After a job entered the gate: queue it, or fail it at once when a dependency has already
    /// failed.
    pub(super) fn after_gate(&mut self, id: JobId) {
        let s = self.state(id);
        let is_failed =
            |n: Option<DagNode>| n.is_some_and(|n| self.dag.status(n) == DagStatus::Failed);
        if is_failed(s.dag_node) {
            let failed_dep = s
                .job
                .depends_on
                .iter()
                .find(|d| is_failed(self.dag.node_of(d)))
                .cloned()
                .unwrap_or_default();
            // Name the root cause: the ancestor the failed dependency itself failed for.
            let cause = match self
                .by_name
                .get(failed_dep.as_str())
                .map(|&d| self.state(d))
            {
                Some(JobState {
                    reason:
                        Some(Reason::DependencyFailed {
                            dependency,
                            deleted,
                        }),
                    ..
                }) => Reason::DependencyFailed {
                    dependency: dependency.clone(),
                    deleted: *deleted,
                },
                _ => Reason::DependencyFailed {
                    dependency: failed_dep,
                    deleted: false,
                },
            };
            self.fail_job(id, cause);
            return;
        }
        self.enqueue(id);
    }

    /// The queue order of a job: priority, its chain of dependent work, submission, arrival.
    pub(super) fn order_key(&self, job: &Job, dag_node: Option<DagNode>, id: JobId) -> OrderKey {
        let tail = match dag_node {
            Some(n) if self.config.critical_path => self.dag.tail(n),
            _ => PathLength::default(),
        };
        OrderKey::new(job.priority, tail, job.submit_time, id)
    }

    /// Records what the job's shapes mean for classes and GPU fragmentation.
    pub(super) fn note_shapes(&mut self, job: &Job, old: Option<&Job>) {
        for (i, task) in job.tasks.iter().enumerate() {
            let before = old.and_then(|o| o.tasks.get(i)).map_or(0, |t| t.replicas);
            self.gpu_demand.add(
                task.pod.requests.get(ResourceId::GPU),
                task.replicas.saturating_sub(before) as u64,
            );
            for key in task.pod.label_keys() {
                self.classes_dirty |= self.snapshot.select_key(key);
            }
        }
    }

    /// A resubmitted job: replaced while nothing of it runs; grown (more replicas, new tasks at
    /// the end) while it runs. `name` is the one it is known by, shared with the DAG gate.
    pub(super) fn update(
        &mut self,
        id: JobId,
        name: &Arc<str>,
        job: Job,
    ) -> Result<(), EventError> {
        let s = self.state(id);
        let reject = |why| {
            Err(EventError::JobUpdateRejected {
                job: job.name.clone(),
                why,
            })
        };
        if matches!(s.phase, JobPhase::Succeeded | JobPhase::Failed) {
            return reject("the job has ended");
        }
        if s.in_dag && s.job.depends_on != job.depends_on {
            return reject("its dependencies cannot change once it is admitted");
        }
        let invalid = job.validate().err();
        let enters_dag = !s.in_dag && invalid.is_none();
        let untouched = s.counts.pending == s.counts.unfinished() && s.reservations.is_empty();
        if !untouched {
            let grows = job.queue == s.job.queue
                && job.tasks.len() >= s.job.tasks.len()
                && s.job.tasks.iter().zip(&job.tasks).all(|(old, new)| {
                    old.name == new.name && old.pod == new.pod && new.replicas >= old.replicas
                });
            if !grows {
                return reject("pods of it are placed; tasks may only grow, in the same queue");
            }
        }
        let dag_node = if enters_dag {
            self.gate(id, name, &job)?
        } else {
            None
        };
        let old = self.state(id).job.clone();
        self.note_shapes(&job, Some(&old));
        self.count_priority(old.priority, false);
        self.count_priority(job.priority, true);
        self.dequeue(id);
        let s = self.state_mut(id);
        if untouched {
            (s.pods, s.by_task, s.counts) = fresh_pods(&job);
        } else {
            for (i, task) in job.tasks.iter().enumerate() {
                if i == s.pods.len() {
                    s.pods.push(Vec::new());
                    s.by_task.push(TaskCounts::default());
                }
                let added = task.replicas as usize - s.pods[i].len();
                s.pods[i].extend(std::iter::repeat_n(PodSlot::PENDING, added));
                s.counts.pending += added as u32;
                s.by_task[i].pending += added as u32;
            }
        }
        s.in_dag |= enters_dag;
        s.invalid = invalid;
        s.dag_node = s.dag_node.or(dag_node);
        s.job = job;
        let s = self.state(id);
        let key = self.order_key(&s.job, s.dag_node, id);
        self.state_mut(id).key = key;
        self.after_gate(id);
        Ok(())
    }

    pub(super) fn delete(&mut self, name: &str) -> Result<(), EventError> {
        let id = self.job_id(name)?;
        self.dequeue(id);
        self.claims.remove(&id);
        self.end_backoff(id);
        let s = self.jobs[id as usize].take().expect("live id");
        self.by_name.remove(name);
        self.count_priority(s.job.priority, false);
        self.queues.allocate(&s.job.queue, s.accounted, false);
        // Dependents of a job deleted before it succeeded will never run.
        if let Some(n) = s.dag_node {
            let released = self.dag.deleted(n);
            self.fail_dependents(released, true);
        }
        for (t, slots) in s.pods.iter().enumerate() {
            for slot in slots {
                if let (PodPhase::Assumed | PodPhase::Bound | PodPhase::Releasing, Some(node)) =
                    (slot.phase, slot.node)
                {
                    self.snapshot.release(node, s.request(t));
                }
            }
        }
        for (&node, &held) in &s.reservations {
            self.snapshot.unreserve(node, held);
        }
        // Decisions not yet handed out about the job are moot: its pods are gone.
        self.outbox.retain(|d| match d {
            Decision::BindGang { job, .. }
            | Decision::Reserve { job, .. }
            | Decision::MarkUnschedulable { job, .. }
            | Decision::FailJob { job, .. } => job != name,
            Decision::Evict { pods, .. } => pods.iter().all(|p| p.job != name),
        });
        self.cluster_grew = true;
        Ok(())
    }

    /// The adapter saw a pod bound (ours, or adopted). Returns the pod's job.
    pub(super) fn pod_bound(&mut self, pod: &PodRef, node_name: &str) -> Result<JobId, EventError> {
        let (id, slot) = self.pod(pod)?;
        let node = self
            .snapshot
            .id_of(node_name)
            .filter(|&n| self.snapshot.node(n).live)
            .ok_or_else(|| EventError::UnknownNode(node_name.to_string()))?;
        let (t, i) = (pod.task as usize, pod.index as usize);
        let request = self.state(id).request(t);
        match slot.phase {
            PodPhase::Bound if slot.node == Some(node) => return Ok(id),
            PodPhase::Assumed if slot.node == Some(node) => {}
            // Its bind was in flight when its gang was undone, and went through: the room it
            // held meanwhile is where it runs.
            PodPhase::Releasing if slot.in_flight && slot.node == Some(node) => {}
            PodPhase::Releasing if slot.in_flight => {
                if let Some(old) = slot.node {
                    self.snapshot.release(old, request);
                }
                self.snapshot.assume(node, request);
            }
            // Bound where the engine has it, being evicted: nothing new.
            PodPhase::Releasing if slot.node == Some(node) => return Ok(id),
            // Bound somewhere other than assumed (or adopted after a restart): the world wins.
            PodPhase::Assumed | PodPhase::Pending => {
                if let Some(old) = slot.node {
                    self.snapshot.release(old, request);
                }
                self.snapshot.assume(node, request);
            }
            phase => {
                return Err(EventError::Conflict {
                    pod: pod.clone(),
                    phase,
                    event: "PodBound",
                });
            }
        }
        let now = self.last_cycle;
        let s = self.state_mut(id);
        s.set(t, i, PodPhase::Bound, Some(node));
        if slot.phase == PodPhase::Pending {
            // Adopted (bound by someone else, or before a restart): it has run since about now.
            s.pods[t][i].since = now;
        }
        let mut adopted_whole = false;
        if s.phase == JobPhase::Pending && s.counts.live() >= s.gang_need() {
            s.phase = JobPhase::Running;
            s.reason = None;
            s.undone = None;
            adopted_whole = s.backoff != Backoff::Off;
        }
        if s.phase == JobPhase::Running && s.counts.assumed == 0 {
            // The gang's placement bound whole: the next failed bind starts the backoff afresh.
            s.bind_failures = 0;
            s.partial_since = None;
        }
        if adopted_whole {
            // Bound after all while backing off (a bind reported failed had gone through): it
            // runs, and its other pending pods may go now.
            self.end_backoff(id);
            self.enqueue(id);
        } else if slot.in_flight && s.phase == JobPhase::Pending && s.undone.is_some() {
            // A bind of the undone placement went through: evicted at the next cycle unless
            // the rest of the gang shows up bound first. (A pod bound before the undo that
            // nobody would recreate is kept bound by the adapter on purpose: not this.)
            self.late_bound.insert(id);
        }
        Ok(id)
    }

    /// A bind of a gang's pod failed: the gang is undone and backs off. Returns the pod's job.
    pub(super) fn bind_failed(
        &mut self,
        pod: &PodRef,
        message: String,
    ) -> Result<JobId, EventError> {
        let (id, slot) = self.pod(pod)?;
        let (t, i) = (pod.task as usize, pod.index as usize);
        match slot.phase {
            PodPhase::Assumed => {}
            // Its gang was undone while this bind was in flight: the room it held is free now.
            PodPhase::Releasing if slot.in_flight => {
                let request = self.state(id).request(t);
                self.snapshot
                    .release(slot.node.expect("held pods have a node"), request);
                self.cluster_grew = true;
                let s = self.state_mut(id);
                s.set(t, i, PodPhase::Pending, None);
                self.account(id);
                return Ok(id);
            }
            // The gang was already undone by an earlier failure of another of its pods.
            PodPhase::Pending | PodPhase::Releasing => return Ok(id),
            phase => {
                return Err(EventError::Conflict {
                    pod: pod.clone(),
                    phase,
                    event: "BindFailed",
                });
            }
        }
        // Its own room is free at once; the rest of its gang is undone below. It may yet show
        // up bound (a bind reported failed that went through): then it is adopted, or evicted
        // unless its gang is whole (see `late_bound`).
        let request = self.state(id).request(t);
        self.snapshot
            .release(slot.node.expect("assumed pods have a node"), request);
        let s = self.state_mut(id);
        s.set(t, i, PodPhase::Pending, None);
        s.pods[t][i].in_flight = true;
        let failures = self.state(id).bind_failures.saturating_add(1);
        let reason = Reason::BindFailed {
            pod: pod.clone(),
            message,
            failures,
            backoff: Span(0),
            retry_at: None,
        };
        self.back_off(id, reason, EvictReason::GangBindFailed);
        Ok(id)
    }

    /// Undoes a gang that cannot be had whole now and takes it out of its queue until a
    /// backoff ends: the next cycle starts the wait (the engine learns the time only then) and
    /// tells the adapter until when. Room held for its `min_resources` is let go meanwhile, so
    /// a gang that waits holds nothing; the next placement holds it again.
    pub(super) fn back_off(&mut self, id: JobId, reason: Reason, why: EvictReason) {
        self.dequeue(id);
        self.release_reservations(id);
        let s = self.state_mut(id);
        s.bind_failures = s.bind_failures.saturating_add(1);
        s.backoff = Backoff::Starting;
        s.reason = Some(reason);
        self.backoff_starting.insert(id);
        self.undo_gang(id, why);
        self.account(id);
    }

    /// Starts the backoff of the gangs whose bind failed since the last cycle, telling the
    /// adapter why each waits and until when.
    pub(super) fn start_backoffs(&mut self, now: Time, out: &mut CycleOutcome) {
        for id in std::mem::take(&mut self.backoff_starting) {
            let Some(s) = self.jobs[id as usize].as_mut() else {
                continue;
            };
            if s.backoff != Backoff::Starting {
                continue;
            }
            let wait = self.config.bind_backoff(s.bind_failures);
            let until = now + wait;
            s.backoff = Backoff::Until(until);
            self.backoff_due.insert((until, id));
            if let Some(reason) = &mut s.reason {
                reason.set_backoff(wait, until);
            }
            if let Some(reason) = s.reason.clone() {
                out.decisions.push(Decision::MarkUnschedulable {
                    job: s.job.name.clone(),
                    reason,
                });
            }
        }
    }

    /// Undoes again the gangs that pods of their undone placement joined (see `late_bound`)
    /// and that are still not whole: those pods are evicted.
    pub(super) fn undo_late_bound(&mut self) {
        for id in std::mem::take(&mut self.late_bound) {
            let Some(s) = self.jobs[id as usize].as_ref() else {
                continue;
            };
            if s.phase == JobPhase::Pending
                && s.counts.bound > 0
                && let Some(why) = s.undone
            {
                self.undo_gang(id, why);
            }
        }
    }

    /// Queues the gangs whose backoff has ended by `now`.
    pub(super) fn end_backoffs(&mut self, now: Time) {
        while let Some(&(due, id)) = self.backoff_due.first() {
            if due > now {
                break;
            }
            self.backoff_due.pop_first();
            if let Some(s) = self.jobs[id as usize].as_mut()
                && s.backoff == Backoff::Until(due)
            {
                s.backoff = Backoff::Off;
                self.enqueue(id);
            }
        }
    }

    /// Ends a job's backoff without queueing it (it was deleted, failed, or runs after all).
    pub(super) fn end_backoff(&mut self, id: JobId) {
        self.backoff_starting.remove(&id);
        self.late_bound.remove(&id);
        if let Some(s) = self.jobs[id as usize].as_mut() {
            if let Backoff::Until(due) = s.backoff {
                self.backoff_due.remove(&(due, id));
            }
            s.backoff = Backoff::Off;
        }
    }

    /// Undoes a gang whole: bound pods are evicted, and pods whose bind is in flight keep their
    /// room until its outcome is known (kube-scheduler's assume: a pod's room is let go only
    /// when its bind failed, else another gang could be placed where it then lands); the job
    /// is pending.
    pub(super) fn undo_gang(&mut self, id: JobId, why: EvictReason) {
        let mut evict = Vec::new();
        let s = self.jobs[id as usize].as_mut().expect("live id");
        for t in 0..s.pods.len() {
            for i in 0..s.pods[t].len() {
                let slot = s.pods[t][i];
                match slot.phase {
                    PodPhase::Assumed => {
                        s.set(t, i, PodPhase::Releasing, slot.node);
                        s.pods[t][i].in_flight = true;
                    }
                    PodPhase::Bound => {
                        s.set(t, i, PodPhase::Releasing, slot.node);
                        evict.push(PodRef {
                            job: s.job.name.clone(),
                            task: t as u32,
                            index: i as u32,
                        });
                    }
                    _ => {}
                }
            }
        }
        if s.phase == JobPhase::Running {
            s.phase = JobPhase::Pending;
        }
        s.undone = Some(why);
        if !evict.is_empty() {
            self.outbox.push(Decision::Evict {
                pods: evict,
                reason: why,
            });
        }
        self.cluster_grew = true;
        self.enqueue(id);
    }

    /// After pods of a running job were lost: undo the gang if it fell below its minimum.
    pub(super) fn check_gang(&mut self, id: JobId) {
        let s = self.state(id);
        if s.phase == JobPhase::Running && s.counts.live() < s.gang_need() {
            self.undo_gang(id, EvictReason::GangBroken);
        } else if s.counts.pending > 0 {
            self.enqueue(id);
        }
    }

    /// A pod ended; its job may have succeeded or failed with it. Returns the pod's job.
    pub(super) fn pod_finished(
        &mut self,
        pod: &PodRef,
        succeeded: bool,
    ) -> Result<JobId, EventError> {
        let (id, slot) = self.pod(pod)?;
        let (t, i) = (pod.task as usize, pod.index as usize);
        match slot.phase {
            PodPhase::Assumed | PodPhase::Bound | PodPhase::Releasing => {
                let request = self.state(id).request(t);
                self.snapshot
                    .release(slot.node.expect("placed pods have a node"), request);
                self.cluster_grew = true;
            }
            // It ran where the engine could not see it (bound, before a restart, to a node that
            // is gone) and has ended: it holds nothing, and it must not be placed again.
            PodPhase::Pending => {}
            phase => {
                return Err(EventError::Conflict {
                    pod: pod.clone(),
                    phase,
                    event: "PodFinished",
                });
            }
        }
        let s = self.state_mut(id);
        if slot.phase == PodPhase::Releasing && !succeeded {
            // It ended while its gang was being undone (the eviction, or a failure it would
            // have had anyway): it runs again with the gang.
            s.set(t, i, PodPhase::Pending, None);
            return Ok(id);
        }
        // One that succeeded while its gang was being undone has done its work: a pod never
        // runs twice, and placing it again would bind a pod object that has ended.
        let ended = if succeeded {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
        s.set(t, i, ended, None);
        if !succeeded && s.phase != JobPhase::Failed {
            self.fail_job(id, Reason::PodFailed { pod: pod.clone() });
        } else if matches!(s.phase, JobPhase::Running | JobPhase::Pending)
            && s.counts.unfinished() == 0
        {
            // Every pod ended well (a gang adopted as it finished counts as having run).
            s.phase = JobPhase::Succeeded;
            s.reason = None;
            let dag_node = s.dag_node;
            self.release_reservations(id);
            self.dequeue(id);
            // Dependents whose last dependency this was may go; the others wait on fewer jobs,
            // which the view works out when asked.
            if let Some(n) = dag_node {
                let mut eligible = std::mem::take(&mut self.released);
                self.dag.succeeded(n, &mut eligible);
                for &job in &eligible {
                    self.enqueue(job);
                }
                eligible.clear();
                self.released = eligible;
            }
        }
        Ok(id)
    }

    /// Fails a job and, through the DAG gate, every job that depends on it.
    pub(super) fn fail_job(&mut self, id: JobId, cause: Reason) {
        self.mark_failed(id, cause);
        if let Some(n) = self.state(id).dag_node {
            let released = self.dag.failed(n);
            self.fail_dependents(released, false);
        }
    }

    /// Fails one job: its other pods are evicted or forgotten and it leaves the queue.
    pub(super) fn mark_failed(&mut self, id: JobId, cause: Reason) {
        self.end_backoff(id);
        self.undo_gang(id, EvictReason::JobFailed);
        self.dequeue(id);
        self.release_reservations(id);
        let s = self.state_mut(id);
        s.phase = JobPhase::Failed;
        s.reason = Some(cause.clone());
        let job = s.job.name.clone();
        self.outbox.push(Decision::FailJob { job, cause });
        self.account(id);
    }

    /// Fails the dependents the gate released as failed, naming the ancestor that caused it.
    pub(super) fn fail_dependents(&mut self, released: Released, deleted: bool) {
        for (id, dependency) in released.failed {
            if self.jobs[id as usize].is_some() {
                self.mark_failed(
                    id,
                    Reason::DependencyFailed {
                        dependency,
                        deleted,
                    },
                );
            }
        }
    }

    /// Lets go of all room held for a job, for `min_resources` or while it was blocked.
    pub(super) fn release_reservations(&mut self, id: JobId) {
        let s = self.state_mut(id);
        if s.claim.take().is_some() {
            self.claims.remove(&id);
        }
        let held = std::mem::take(&mut self.state_mut(id).reservations);
        for (node, amount) in held {
            self.snapshot.unreserve(node, amount);
        }
    }

    /// A pod was evicted: it is pending again. Returns the pod's job.
    pub(super) fn pod_evicted(&mut self, pod: &PodRef) -> Result<JobId, EventError> {
        let (id, slot) = self.pod(pod)?;
        let (t, i) = (pod.task as usize, pod.index as usize);
        match slot.phase {
            PodPhase::Assumed | PodPhase::Bound | PodPhase::Releasing => {}
            PodPhase::Pending => return Ok(id),
            phase => {
                return Err(EventError::Conflict {
                    pod: pod.clone(),
                    phase,
                    event: "PodEvicted",
                });
            }
        }
        let request = self.state(id).request(t);
        self.snapshot
            .release(slot.node.expect("placed pods have a node"), request);
        self.cluster_grew = true;
        self.state_mut(id).set(t, i, PodPhase::Pending, None);
        self.check_gang(id);
        Ok(id)
    }

    pub(super) fn remove_node(&mut self, name: &str) -> Result<(), EventError> {
        let node = self
            .snapshot
            .id_of(name)
            .filter(|&n| self.snapshot.node(n).live)
            .ok_or_else(|| EventError::UnknownNode(name.to_string()))?;
        let (mut hit, mut unheld) = (Vec::new(), Vec::new());
        for (id, s) in self.jobs.iter_mut().enumerate() {
            let Some(s) = s else { continue };
            let mut lost = false;
            for t in 0..s.pods.len() {
                let request = s.job.tasks[t].pod.requests;
                for i in 0..s.pods[t].len() {
                    if s.pods[t][i].node == Some(node) {
                        self.snapshot.release(node, request);
                        s.set(t, i, PodPhase::Pending, None);
                        lost = true;
                    }
                }
            }
            if let Some(held) = s.reservations.remove(&node) {
                self.snapshot.unreserve(node, held);
                unheld.push(id as JobId);
                if s.phase == JobPhase::Running && s.job.min_resources.is_some() {
                    // A forming gang holds again when it is next tried; a running one would
                    // never be, so the cycle does it.
                    self.rehold.insert(id as JobId);
                }
            }
            if lost {
                hit.push(id as JobId);
            }
        }
        self.snapshot.remove_node(node);
        self.node_generation += 1;
        for &id in &hit {
            self.check_gang(id);
        }
        // Pods lost and capacity no longer held both leave their queue's count.
        for id in hit.into_iter().chain(unheld) {
            self.account(id);
        }
        self.cluster_grew = true;
        Ok(())
    }
}
