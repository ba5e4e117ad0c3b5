//! Holds and reservations: room held for blocked gangs (claims, topped up each cycle), lent to
//! backfill jobs that will be done before and taken back, and `min_resources` held for running
//! jobs. Where to hold is planned by [`crate::reserve`].

use std::collections::{BTreeMap, BTreeSet};

use phalanx_model::{Decision, FitError, Resources, Time};
use phalanx_queue::JobId;

use crate::gang::{Shape, Transaction};
use crate::reserve::{self, Planned, Release};
use crate::snapshot::{ClassId, NodeId, Snapshot};

use super::*;

impl Engine {
    /// At the end of a cycle: room is held for the blocked gangs that later jobs passed, in the
    /// order they were tried (the queues' fair order), at most one per queue and
    /// [`EngineConfig::max_reservations`] in all.
    pub(super) fn hold_for_passed(&mut self, out: &mut CycleOutcome) {
        let passed: Vec<JobId> = self.blocked.drain(..self.passed).collect();
        self.blocked.clear();
        self.passed = 0;
        // What running pods free, and when, does not change while room is held: it is
        // gathered once, by the first gang that plans, for all of them.
        let mut running = None;
        for id in passed {
            // A gang put asleep after it was tried is not its queue's candidate for held room.
            if self.jobs[id as usize].is_some() && !self.queues.is_asleep(id) {
                self.hold_for(id, &mut running, out);
            }
        }
    }

    /// Holds room for a blocked gang on the nodes expected to free soonest.
    /// `running` caches [`Engine::running_releases`] for the cycle.
    pub(super) fn hold_for(
        &mut self,
        id: JobId,
        running: &mut Option<Vec<Release>>,
        out: &mut CycleOutcome,
    ) {
        let now = self.last_cycle;
        let s = self.state(id);
        if s.claim.is_some() || s.phase != JobPhase::Pending {
            return;
        }
        let need = Need::of(s);
        let mut waiting = 0;
        for &c in &self.claims {
            let other = self.state(c);
            if other.job.queue == s.job.queue {
                return;
            }
            waiting += other.claim.as_ref().is_some_and(|c| !c.evicted_for) as usize;
        }
        if waiting >= self.config.max_reservations {
            return;
        }
        let claimed = self.claim_releases(now);
        let running = running.get_or_insert_with(|| self.running_releases(now));
        let s = self.state(id);
        let shapes = shapes_of(&self.snapshot, &s.job);
        let promised = self.promised();
        match reserve::plan(
            &self.snapshot,
            &shapes,
            &need.plan_counts(),
            &[&claimed, running],
            &s.reservations,
            &promised,
        ) {
            Planned::Wait(plan) => {
                let nodes = plan
                    .want
                    .keys()
                    .map(|&n| self.snapshot.node(n).node.name.clone())
                    .collect();
                let job = s.job.name.clone();
                self.state_mut(id).claim = Some(Claim {
                    want: plan.want,
                    start: plan.start,
                    planned: now,
                    evicted_for: false,
                });
                self.claims.insert(id);
                self.claim_made(id);
                self.top_up(id);
                out.decisions.push(Decision::Reserve { job, nodes });
            }
            Planned::FitsNow => {}
            Planned::Never => self.state_mut(id).unplannable = Some(self.node_generation),
        }
    }

    /// Nodes another blocked gang still waits on: room that frees there is that gang's.
    pub(super) fn promised(&self) -> BTreeSet<NodeId> {
        let mut promised = BTreeSet::new();
        for &c in &self.claims {
            let other = self.state(c);
            if let Some(claim) = &other.claim {
                for (&node, want) in &claim.want {
                    let have = other.reservations.get(&node).copied().unwrap_or_default();
                    if !want.fits_in(&have) {
                        promised.insert(node);
                    }
                }
            }
        }
        promised
    }

    /// Room held for blocked gangs, freed as if their pods ran from their expected start; in
    /// order of when.
    pub(super) fn claim_releases(&self, now: Time) -> Vec<Release> {
        let mut out = Vec::new();
        for &c in &self.claims {
            let s = self.state(c);
            let Some(claim) = &s.claim else { continue };
            let runs = s
                .job
                .declared_duration()
                .unwrap_or(reserve::MIN_RUNTIME_ESTIMATE);
            let at = Time(claim.start.max(now).0.saturating_add(runs.0));
            for (&node, &amount) in &s.reservations {
                out.push(Release { node, at, amount });
            }
        }
        out.sort_unstable_by_key(|r| r.at);
        out
    }

    /// What running pods free and when they are expected to end (see
    /// [`Release::expected_end`]); pods being torn down free now. Pods of one job that free
    /// together on one node are one release. In order of the expected end,
    /// so that each plan made from it merges rather than sorts.
    pub(super) fn running_releases(&self, now: Time) -> Vec<Release> {
        let mut out: Vec<Release> = Vec::new();
        // A gang's pods on one node, placed together, free together: one release. A run of
        // them is counted, and its amount made once.
        let mut push = |node: NodeId, at: Time, amount: Resources| match out.last_mut() {
            Some(last) if last.node == node && last.at == at => last.amount += amount,
            _ => out.push(Release { node, at, amount }),
        };
        for s in self.jobs.iter().flatten() {
            let c = &s.counts;
            if c.assumed + c.bound + c.releasing == 0 {
                continue;
            }
            for (t, slots) in s.pods.iter().enumerate() {
                let duration = s.job.tasks[t].pod.duration;
                let request = s.request(t);
                let mut run: Option<(NodeId, Time, u64)> = None;
                for slot in slots {
                    let at = match slot.phase {
                        PodPhase::Assumed | PodPhase::Bound => {
                            Release::expected_end(slot.since, duration, now)
                        }
                        PodPhase::Releasing => now,
                        _ => continue,
                    };
                    let Some(node) = slot.node else { continue };
                    match &mut run {
                        Some((n, a, pods)) if *n == node && *a == at => *pods += 1,
                        _ => {
                            if let Some((n, a, pods)) = run.replace((node, at, 1)) {
                                push(n, a, request.times(pods));
                            }
                        }
                    }
                }
                if let Some((n, a, pods)) = run {
                    push(n, a, request.times(pods));
                }
            }
        }
        // Sorted by key and position rather than moved about whole: a release is mostly its
        // amount, 16 lanes.
        let mut order: Vec<(Time, u32)> = out
            .iter()
            .enumerate()
            .map(|(i, r)| (r.at, i as u32))
            .collect();
        order.sort_unstable();
        order.into_iter().map(|(_, i)| out[i as usize]).collect()
    }

    /// Holds for every blocked gang what has freed on its nodes since the last cycle, before
    /// any job is tried, so nothing else takes it.
    pub(super) fn top_up_claims(&mut self) {
        // Gangs room is being made for by eviction first: the room was freed for them.
        let mut claims: Vec<(bool, JobId)> = self
            .claims
            .iter()
            .map(|&c| {
                let evicted_for = self.state(c).claim.as_ref().is_some_and(|c| c.evicted_for);
                (!evicted_for, c)
            })
            .collect();
        claims.sort_unstable();
        for (_, id) in claims {
            self.top_up(id);
        }
    }

    /// Holds for a blocked gang what its nodes have free, up to what it wants there and within
    /// its queue's headroom.
    pub(super) fn top_up(&mut self, id: JobId) {
        let Engine {
            jobs,
            snapshot,
            queues,
            ..
        } = self;
        let s = jobs[id as usize].as_mut().expect("live id");
        let Some(claim) = &s.claim else {
            return;
        };
        let mut room = queues.headroom(&s.job.queue);
        for (&node, &want) in &claim.want {
            let entry = snapshot.node(node);
            if !entry.live {
                continue;
            }
            let have = s.reservations.get(&node).copied().unwrap_or_default();
            let add = (want - have)
                .clamp_zero()
                .min(&entry.free().clamp_zero())
                .min(&room);
            if !add.is_zero() {
                snapshot.reserve(node, add);
                *s.reservations.entry(node).or_default() += add;
                room -= add;
            }
        }
        self.account(id);
    }

    /// Holds again, on nodes that are there, the `min_resources` room of running jobs whose
    /// held node went away; a job that finds no room yet tries again next cycle.
    pub(super) fn rehold_min_resources(&mut self) {
        let mut short = Vec::new();
        for id in std::mem::take(&mut self.rehold) {
            let Engine {
                jobs,
                snapshot,
                queues,
                ..
            } = self;
            let Some(s) = jobs[id as usize].as_mut() else {
                continue;
            };
            if s.phase != JobPhase::Running || s.job.min_resources.is_none() {
                continue;
            }
            let shapes = shapes_of(snapshot, &s.job);
            let mut txn = Transaction::begin(s.reservations.clone())
                .with_budget(queues.headroom(&s.job.queue));
            let none = vec![0; shapes.len()];
            if hold_min_resources(snapshot, &mut txn, s, &shapes, &none, true) {
                s.reservations = txn.commit().1;
                self.account(id);
            } else {
                txn.rollback(snapshot);
                short.push(id);
            }
        }
        self.rehold.extend(short);
    }

    /// Lets go of the room held for a blocked gang.
    pub(super) fn drop_claim(&mut self, id: JobId) {
        self.claims.remove(&id);
        let s = self.state_mut(id);
        if s.claim.take().is_some() && s.job.min_resources.is_none() {
            self.release_reservations(id);
            self.account(id);
        }
    }

    /// Blocked gangs whose held room job `id` may borrow: it declares how long it runs, and it
    /// will be done before they are expected to start.
    pub(super) fn lendable(&self, id: JobId) -> Vec<JobId> {
        if self.claims.is_empty() {
            return Vec::new();
        }
        let Some(duration) = self.state(id).job.declared_duration() else {
            return Vec::new();
        };
        let done = self.last_cycle.0.saturating_add(duration.0);
        self.claims
            .iter()
            .copied()
            .filter(|&c| c != id)
            .filter(|&c| {
                self.state(c)
                    .claim
                    .as_ref()
                    .is_some_and(|cl| !cl.evicted_for && cl.start.0 >= done)
            })
            .collect()
    }

    /// Makes the room held for `claimants` free for one backfill try.
    pub(super) fn lend(&mut self, claimants: &[JobId]) {
        for &c in claimants {
            let s = self.jobs[c as usize].as_ref().expect("live id");
            for (&node, &held) in &s.reservations {
                self.snapshot.unreserve(node, held);
            }
        }
    }

    /// Holds again for `claimants` what [`Engine::lend`] freed, less what backfill took. True
    /// when all of it is held again.
    pub(super) fn take_back(&mut self, claimants: &[JobId]) -> bool {
        let mut whole = true;
        for &c in claimants {
            let s = self.jobs[c as usize].as_mut().expect("live id");
            let snapshot = &mut self.snapshot;
            s.reservations.retain(|&node, held| {
                let take = held.min(&snapshot.node(node).free().clamp_zero());
                snapshot.reserve(node, take);
                whole &= take == *held;
                *held = take;
                !take.is_zero()
            });
            self.account(c);
        }
        whole
    }
}

pub(super) fn reservation_shortfall(
    snapshot: &Snapshot,
    s: &JobState,
    shapes: &[Shape<'_>],
) -> FitError {
    let min = s.job.min_resources.unwrap_or_default();
    let mut free = Resources::ZERO;
    let mut seen = BTreeSet::new();
    for sh in shapes {
        for &(_, c) in &sh.classes {
            if seen.insert(c) {
                free += snapshot.classes()[c as usize].free_total;
            }
        }
    }
    let shortfall = min
        .iter_nonzero()
        .filter(|&(r, want)| free.get(r) < want)
        .map(|(resource, requested)| phalanx_model::Shortfall {
            resource,
            requested,
            free: free.get(resource).max(0),
        })
        .next();
    FitError {
        task: "min_resources".into(),
        needed: s.gang_need(),
        placeable: s.gang_need(),
        nodes: snapshot.live_nodes(),
        filtered: BTreeMap::new(),
        shortfall,
    }
}

/// Holds capacity for the job's `min_resources` beyond what its placed pods use, on nodes its
/// tasks may use, best class tier first; or gives back what pods that arrived have used since,
/// and any room held while it was blocked beyond that.
/// False when the room cannot be held (the transaction must roll back).
pub(super) fn hold_min_resources(
    snapshot: &mut Snapshot,
    txn: &mut Transaction,
    s: &JobState,
    shapes: &[Shape<'_>],
    placed_by_task: &[u32],
    forming: bool,
) -> bool {
    // Without `min_resources` nothing is wanted: room held while the gang was blocked goes.
    let min = s.job.min_resources.unwrap_or_default();
    let running = (0..s.pods.len())
        .map(|t| {
            s.request(t)
                .times((s.by_task[t].live + placed_by_task[t]) as u64)
        })
        .fold(Resources::ZERO, |a, b| a + b);
    let held = txn
        .reservations
        .values()
        .fold(Resources::ZERO, |a, r| a + *r);
    let wanted = (min - running).clamp_zero();
    let more = (wanted - held).clamp_zero();
    if forming && !more.is_zero() {
        let mut best_tier: BTreeMap<ClassId, u8> = BTreeMap::new();
        for &(tier, c) in shapes.iter().flat_map(|sh| sh.classes.iter()) {
            let t = best_tier.entry(c).or_insert(tier);
            *t = (*t).min(tier);
        }
        let mut classes: Vec<(u8, ClassId)> = best_tier.into_iter().map(|(c, t)| (t, c)).collect();
        classes.sort_unstable();
        let ids: Vec<ClassId> = classes.into_iter().map(|(_, c)| c).collect();
        return txn.reserve(snapshot, &ids, more);
    }
    // Pods that arrived have used the hold: give back what is no longer wanted, lowest node first.
    let mut excess = (held - wanted).clamp_zero();
    let nodes: Vec<NodeId> = txn.reservations.keys().copied().collect();
    for node in nodes {
        if excess.is_zero() {
            break;
        }
        let give = txn.reservations[&node].min(&excess);
        excess -= give;
        txn.unreserve(snapshot, node, give);
    }
    true
}
