//! Placement in a cycle: each popped job is attempted as one gang transaction (all of its minimum
//! or nothing), committed into bind decisions, or parked with the reason it did not fit.

use phalanx_model::{Binding, Decision, EvictReason, Job, Reason, Resources, Span, Time};
use phalanx_queue::{JobId, OrderKey};

use crate::gang::{Shape, Transaction, diagnose};
use crate::snapshot::{NodeId, Snapshot};

use super::*;

impl Engine {
    /// Pipelines changed since the last cycle: queued jobs whose chain of dependent work changed
    /// move in the queue.
    pub(super) fn reorder_critical_paths(&mut self) {
        for id in self.dag.refresh_tails() {
            let Some(s) = self.jobs[id as usize].as_ref() else {
                continue;
            };
            let (new, queued) = (self.order_key(&s.job, s.dag_node, id), s.queued);
            self.state_mut(id).key = new;
            if queued {
                self.queues.rekey_job(id, new);
                self.sleepers.rekey(id, new);
            }
        }
    }

    /// Sets a job that was popped aside until the cluster changes. `blocks_queue`: it is a gang
    /// that did not fit, which holds up a strict-fifo queue behind it.
    pub(super) fn park(&mut self, id: JobId, key: OrderKey, blocks_queue: bool) {
        let s = self.state_mut(id);
        s.queued = true;
        let demand = pending_demand(self.state(id));
        self.queues.set_demand(id, demand);
        self.queues.park(id, key, blocks_queue);
    }

    /// Tries to place the job's pending pods: the whole gang as one transaction if it is not
    /// running yet, else as many more pods as fit. A job that declares how long it runs may
    /// also borrow room held for blocked gangs it will be done before (backfill). A forming gang
    /// that finds no room reclaims, preempts, or has room held for it.
    pub(super) fn attempt(&mut self, id: JobId, key: OrderKey, out: &mut CycleOutcome) {
        let s = self.state(id);
        if matches!(s.phase, JobPhase::Succeeded | JobPhase::Failed) || s.counts.pending == 0 {
            return;
        }
        if s.counts.releasing > 0 {
            // Its last placement is still being torn down; it goes again when that is done.
            self.park(id, key, false);
            return;
        }
        out.report.attempts += 1;
        let need = Need::of(s);
        // Some of a forming gang's pods are bound already (adopted at start, or bound pods no
        // controller recreates that outlived an undo): it is completed now or undone, never
        // left to wait partly bound, and it fails once it has been partial too long.
        let partial = need.forming && s.counts.bound > 0;
        if !partial && s.partial_since.is_some() {
            self.state_mut(id).partial_since = None;
        }
        if partial {
            let now = self.last_cycle;
            let timeout = self.config.partial_gang_timeout;
            let s = self.state_mut(id);
            let since = *s.partial_since.get_or_insert(now);
            let waited = Span(now.0.saturating_sub(since.0));
            if waited >= timeout {
                let reason = Reason::PartialGangTimedOut {
                    bound: s.counts.bound,
                    needed: s.gang_need(),
                    waited,
                };
                self.fail_job(id, reason);
                return;
            }
        }
        let s = self.state(id);
        // Quota, from the one place it is computed: a gang whose minimum would take its queue
        // or an ancestor over capability is not tried; otherwise the headroom is the budget.
        let over = need
            .forming
            .then(|| {
                self.queues
                    .over_capability(&s.job.queue, &(need.minimum - need.held).clamp_zero())
            })
            .flatten();
        if let Some(over) = over {
            let reason = Reason::OverCapability {
                requested: need.minimum.get(over.resource),
                queue: over.queue,
                resource: over.resource,
                capability: over.capability,
                allocated: over.allocated,
            };
            if partial {
                self.undo_incomplete(id, reason);
            } else {
                self.not_placed(id, key, reason, true, out);
            }
            return;
        }
        let mut result = self.try_place(id, &need, true);
        if result.is_err() {
            let lendable = self.lendable(id);
            if !lendable.is_empty() && self.backfill_may_fit(id, &need, &lendable) {
                let before = (self.snapshot.generation(), self.snapshot.log_position());
                // The trial runs on room lent for a moment: counts of room taken over it would
                // name states the return undoes, so it works on copies of the job's counts.
                let scratch = {
                    let s = self.jobs[id as usize].as_ref().expect("live id");
                    let shapes = shapes_of(&self.snapshot, &s.job);
                    self.rooms
                        .scratch(&self.snapshot, &shapes, self.config.score)
                };
                self.lend(&lendable);
                let rooms = std::mem::replace(&mut self.rooms, scratch);
                let again = self.try_place(id, &need, false);
                self.rooms = rooms;
                let backfilled = again.is_ok();
                if let Ok(placed) = again {
                    out.report.backfilled += 1;
                    result = Ok(placed);
                }
                if self.take_back(&lendable) && !backfilled {
                    // Everything lent was held again and nothing placed: the snapshot is as it
                    // was, and counts of room kept over it need not follow a lend and its return.
                    self.snapshot.restore(before.0, before.1);
                }
            }
        }
        match result {
            Ok(placed) => {
                out.report.nodes_scanned += placed.txn.scanned;
                self.commit(id, key, placed, need, out);
            }
            Err(miss) => {
                out.report.nodes_scanned += miss.scanned;
                let reason = miss.reason.expect("the first try explains");
                if partial {
                    self.undo_incomplete(id, reason);
                    return;
                }
                if need.forming {
                    self.on_blocked(id, &need);
                }
                let asleep = self.sleep_on(id, &need);
                self.not_placed(id, key, reason, need.forming || miss.placeable == 0, out);
                if let Some(on) = asleep {
                    self.sleep(id, key, on);
                }
            }
        }
    }

    /// Whether a backfill trial on the room held for `claimants` could place the job: false when
    /// the count of room, with that room added, leaves a forming one-task gang short (the trial
    /// would miss and leave everything as it was, so it is not made).
    fn backfill_may_fit(&mut self, id: JobId, need: &Need, claimants: &[JobId]) -> bool {
        let s = self.jobs[id as usize].as_ref().expect("live id");
        if !need.forming || s.job.tasks.len() != 1 || !s.reservations.is_empty() {
            return true;
        }
        let lent = self.lent_room(claimants);
        let shapes = shapes_of(&self.snapshot, &s.job);
        let policy = self.config.score;
        match self
            .rooms
            .room_with(&self.snapshot, &shapes[0], policy, &lent)
        {
            Some(can) => can.min(need.pending_by_task[0] as u64) >= need.gang_need as u64,
            None => true,
        }
    }

    /// The room held for `claimants`, per node: what a backfill trial may borrow.
    pub(super) fn lent_room(&self, claimants: &[JobId]) -> BTreeMap<NodeId, Resources> {
        let mut lent: BTreeMap<NodeId, Resources> = BTreeMap::new();
        for &c in claimants {
            for (&node, &held) in &self.state(c).reservations {
                *lent.entry(node).or_default() += held;
            }
        }
        lent
    }

    /// A partly bound gang whose other pods found no room is undone as after a failed bind:
    /// its bound pods are evicted (the adapter deletes those a controller recreates) and it
    /// backs off.
    pub(super) fn undo_incomplete(&mut self, id: JobId, why: Reason) {
        let s = self.state(id);
        let reason = Reason::GangIncomplete {
            bound: s.counts.bound,
            needed: s.gang_need(),
            why: Box::new(why),
            failures: s.bind_failures.saturating_add(1),
            backoff: Span(0),
            retry_at: None,
        };
        self.back_off(id, reason, EvictReason::GangBroken);
    }

    /// Runs the job's placement as one transaction: every task's own minimum and the rest of the
    /// gang's (all or nothing while it is forming), then as many more pods as fit, then the hold
    /// for `min_resources`. On success the transaction is still applied to the snapshot, for
    /// [`Engine::commit`] to keep or a trial to roll back; on a miss it is rolled back and, when
    /// `explain`, the reason worked out.
    pub(super) fn try_place(
        &mut self,
        id: JobId,
        need: &Need,
        explain: bool,
    ) -> Result<Placed, Miss> {
        let Engine {
            jobs,
            snapshot,
            config,
            gpu_demand,
            queues,
            diagnosis,
            rooms,
            ..
        } = self;
        let s = jobs[id as usize].as_ref().expect("live id");
        // Room already held for the job is counted against its queue, and placing on it
        // takes nothing from the budget (see `Transaction::assume`): the budget is the headroom.
        let budget = queues.headroom(&s.job.queue);
        let shapes = shapes_of(snapshot, &s.job);
        // Cheap necessary conditions first: no transaction for a gang that cannot fit.
        let mut txn = Transaction::begin(s.reservations.clone()).with_budget(budget);
        let mut failed: Option<usize> = shapes
            .iter()
            .enumerate()
            .find(|(t, shape)| {
                need.task_need[*t] > 0
                    && !shape.may_fit(snapshot, need.task_need[*t], &txn.reservations)
            })
            .map(|(t, _)| t);
        let mut placed_by_task = vec![0u32; shapes.len()];
        // What the first task to change anything would have placed, when the count of room
        // kept for its shape shows it short without a walk.
        let mut counted: Option<u32> = None;
        let policy = config.score;
        if failed.is_none() {
            for (t, shape) in shapes.iter().enumerate() {
                let want = need.task_need[t];
                let short = (want > 0)
                    .then(|| txn.counted_room(snapshot, shape, policy, rooms))
                    .flatten()
                    .filter(|&can| can < want as u64);
                if let Some(can) = short {
                    counted = Some(can as u32);
                    failed = Some(t);
                    break;
                }
                let got = txn.place_counting(snapshot, shape, want, policy, gpu_demand, rooms);
                placed_by_task[t] += got;
                if got < want {
                    failed = Some(t);
                    break;
                }
            }
        }
        // A forming gang of one task whose minimum is the job's, not the task's: short by the
        // count of room kept for its shape, without a walk (the walk would place what the count
        // says and stop short of the gang).
        if failed.is_none() && need.forming && shapes.len() == 1 && txn.placed() == 0 {
            let want = need.pending_by_task[0];
            let can = (want > 0)
                .then(|| txn.counted_room(snapshot, &shapes[0], policy, rooms))
                .flatten()
                .map(|can| can.min(want as u64) as u32)
                .filter(|&can| can < need.gang_need);
            if let Some(can) = can {
                counted = Some(can);
                failed = Some(0);
            }
        }
        if failed.is_none() {
            for (t, shape) in shapes.iter().enumerate() {
                let want = need.pending_by_task[t] - placed_by_task[t];
                // A running job's further pods: none to place where the count shows no room.
                let none = want > 0 && txn.counted_room(snapshot, shape, policy, rooms) == Some(0);
                if !none {
                    placed_by_task[t] +=
                        txn.place_counting(snapshot, shape, want, policy, gpu_demand, rooms);
                }
            }
            if txn.placed() < need.gang_need {
                let t = (0..shapes.len())
                    .max_by_key(|&t| need.pending_by_task[t] - placed_by_task[t])
                    .unwrap_or(0);
                failed = Some(t);
            }
        }
        // Room for pods the job will create later (Spark executors): held on real nodes.
        let reserve_short = failed.is_none()
            && !hold_min_resources(
                snapshot,
                &mut txn,
                s,
                &shapes,
                &placed_by_task,
                need.forming,
            );
        if failed.is_none() && !reserve_short {
            return Ok(Placed { txn });
        }
        let (placeable, scanned) = (counted.unwrap_or(txn.placed()), txn.scanned);
        txn.rollback(snapshot);
        let reason = explain.then(|| match failed {
            Some(t) => {
                // The shortfall is judged on all pods of the task the gang needs at once.
                let needed = need.gang_need.max(need.task_need[t]);
                let of_task = need.pending_by_task[t].min(needed);
                Reason::Unschedulable(diagnose(
                    snapshot,
                    &shapes[t],
                    &s.job.tasks[t].name,
                    of_task,
                    needed,
                    placeable,
                    &s.reservations,
                    diagnosis,
                ))
            }
            None => Reason::Unschedulable(reservation_shortfall(snapshot, s, &shapes)),
        });
        Err(Miss {
            reason,
            placeable,
            scanned,
        })
    }

    /// Keeps a placement: its pods are assumed and bound by the adapter.
    pub(super) fn commit(
        &mut self,
        id: JobId,
        key: OrderKey,
        placed: Placed,
        need: Need,
        out: &mut CycleOutcome,
    ) {
        let now = self.last_cycle;
        let (placements, reservations) = placed.txn.commit();
        let s = self.jobs[id as usize].as_mut().expect("live id");
        let snapshot = &self.snapshot;
        // Room held for it while blocked is spent now; what is left was let go in the
        // transaction. Holds for `min_resources` stay.
        let had_claim = s.claim.take().is_some();
        let new_holds: Vec<String> = reservations
            .keys()
            .filter(|n| !s.reservations.contains_key(n))
            .map(|&n| snapshot.node(n).node.name.clone())
            .collect();
        s.reservations = reservations;
        // Placements take each task's pending pods in index order.
        let mut cursor = vec![0usize; s.pods.len()];
        let mut bindings = Vec::with_capacity(placements.iter().map(|p| p.count as usize).sum());
        for p in &placements {
            let t = p.task as usize;
            let name = &snapshot.node(p.node).node.name;
            for _ in 0..p.count {
                let index = cursor[t]
                    + s.pods[t][cursor[t]..]
                        .iter()
                        .position(|slot| slot.phase == PodPhase::Pending)
                        .expect("placements take pending pods");
                cursor[t] = index + 1;
                s.set(t, index, PodPhase::Assumed, Some(p.node));
                s.pods[t][index].since = now;
                bindings.push(Binding {
                    task: p.task,
                    index: index as u32,
                    node: name.clone(),
                });
            }
        }
        out.report.pods_placed += bindings.len() as u32;
        out.report.jobs_placed += !bindings.is_empty() as u32;
        self.passed = self.blocked.len();
        if need.forming {
            s.started = now;
            s.blocked_since = None;
        }
        s.phase = JobPhase::Running;
        s.reason = None;
        s.undone = None;
        let job = s.job.name.clone();
        let more_pending = s.counts.pending > 0;
        if had_claim {
            self.claims.remove(&id);
        }
        if !new_holds.is_empty() {
            out.decisions.push(Decision::Reserve {
                job: job.clone(),
                nodes: new_holds,
            });
        }
        if !bindings.is_empty() {
            out.decisions.push(Decision::BindGang { job, bindings });
        }
        self.account(id);
        if more_pending {
            // The rest of its pods wait for room, without holding up the queue.
            self.park(id, key, false);
        }
    }

    /// A forming gang found no room. Its queue reclaims or preempts for it when it may;
    /// otherwise it becomes a candidate for room held for it (see [`Engine::hold_for_passed`]).
    pub(super) fn on_blocked(&mut self, id: JobId, need: &Need) {
        let now = self.last_cycle;
        if let Some(claim) = &self.state(id).claim {
            if claim.stale(&self.snapshot, now) {
                self.drop_claim(id);
            } else if claim.evicted_for {
                // Room is being made for it: wait for the evictions.
                return;
            }
        }
        let (generation, max) = (self.node_generation, self.config.max_reservations);
        let delay = self.config.reclaim_delay.0;
        let s = self.state_mut(id);
        let since = *s.blocked_since.get_or_insert(now);
        // It evicts only once it has waited `reclaim_delay`, and searches again no sooner than
        // that after a search that found nothing.
        let waited = now.0.saturating_sub(since.0);
        let searched = s
            .reclaim_tried
            .is_some_and(|t| now.0.saturating_sub(t.0) < delay);
        if waited >= delay && !searched && self.reclaims_left > 0 {
            if self.reclaim_for(id, need) {
                return;
            }
            self.state_mut(id).reclaim_tried = Some(now);
        }
        // When it may search (again), it is tried again even if nothing else changes.
        let s = self.state(id);
        let due = match s.reclaim_tried {
            Some(t) => t.0.saturating_add(delay),
            None => since.0.saturating_add(delay),
        };
        if due > now.0 && (self.config.reclaim || self.queues.preemption(&s.job.queue)) {
            self.reclaim_due.insert((Time(due), id));
        }
        let s = self.state_mut(id);
        // A job that finds room as soon as some frees needs nothing held: only one blocked a
        // cycle after it first was, and passed by a job placed after it, gets room held.
        if s.claim.is_none() && since < now && max > 0 && s.unplannable != Some(generation) {
            self.blocked.push(id);
        }
    }

    /// A gang that was not placed: counts it, records why (telling the adapter when the reason
    /// changed), and parks it until the cluster changes. A gang that did not fit holds up a
    /// strict-fifo queue behind it.
    pub(super) fn not_placed(
        &mut self,
        id: JobId,
        key: OrderKey,
        reason: Reason,
        record: bool,
        out: &mut CycleOutcome,
    ) {
        *out.report
            .unschedulable
            .entry(reason.label().to_string())
            .or_default() += 1;
        let s = self.state_mut(id);
        let forming = s.phase == JobPhase::Pending;
        if record && forming {
            if s.reason.as_ref() != Some(&reason) {
                out.decisions.push(Decision::MarkUnschedulable {
                    job: s.job.name.clone(),
                    reason: reason.clone(),
                });
            }
            s.reason = Some(reason);
        }
        self.park(id, key, forming);
    }
}

/// Every task's pod shape, with the classes that admit it.
pub(super) fn shapes_of<'a>(snapshot: &Snapshot, job: &'a Job) -> Vec<Shape<'a>> {
    job.tasks
        .iter()
        .enumerate()
        .map(|(t, task)| Shape::new(snapshot, t as u32, &task.pod))
        .collect()
}

/// The least the gang's minimum asks for: every task's own minimum, and the rest of
/// `min_member` from the cheapest pods it has pending.
pub(super) fn gang_minimum(
    s: &JobState,
    task_need: &[u32],
    pending_by_task: &[u32],
    gang_need: u32,
) -> Resources {
    let mut minimum = Resources::ZERO;
    for (t, &n) in task_need.iter().enumerate() {
        minimum += s.request(t).times(n as u64);
    }
    let rest = gang_need.saturating_sub(task_need.iter().sum());
    if rest > 0 {
        let cheapest = (0..s.pods.len())
            .filter(|&t| pending_by_task[t] > 0)
            .map(|t| s.request(t))
            .reduce(|a, b| a.min(&b))
            .unwrap_or_default();
        minimum += cheapest.times(rest as u64);
    }
    minimum
}

/// Requests of a job's pending pods: what it adds to its queue's demand.
pub(super) fn pending_demand(s: &JobState) -> Resources {
    s.by_task
        .iter()
        .enumerate()
        .fold(Resources::ZERO, |acc, (t, c)| {
            acc + s.request(t).times(c.pending as u64)
        })
}
