//! Reclaim and preemption: a pure search ([`Engine::plan_reclaim`]) that picks whole gangs to evict
//! so a blocked gang fits and returns the plan, and [`Engine::apply_reclaim`], which carries it out.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_model::{EvictReason, Resources, Time};
use phalanx_queue::JobId;
use phalanx_queue::tree::ReclaimLedger;

use crate::snapshot::{ClassId, NodeId};

use super::*;

/// What a reclaim search chose ([`Engine::plan_reclaim`]): the gangs to evict, the cycle's
/// ledger as it stands once they are gone, and what the blocked gang will take per node.
pub(super) struct ReclaimPlan {
    victims: Vec<Victim>,
    ledger: ReclaimLedger,
    want: BTreeMap<NodeId, Resources>,
}

impl Engine {
    /// Looks for running gangs to evict for the blocked gang `id`: of other queues holding
    /// more than their deserved share, when its own queue is within its share (reclaim), or of
    /// lower priority in its own queue when the queue allows it (preemption). Candidates go
    /// lowest priority first, then youngest; enough of them are lifted to make room, then
    /// those the gang fits without are given back, largest first, so the fewest pods go. The
    /// chosen gangs are evicted whole and the room they leave is held for `id`. True when it
    /// evicted.
    pub(super) fn reclaim_for(&mut self, id: JobId, need: &Need) -> bool {
        self.reclaims_left -= 1;
        match self.plan_reclaim(id, need) {
            Some(plan) => {
                self.apply_reclaim(id, plan);
                true
            }
            None => false,
        }
    }

    /// The search of [`Engine::reclaim_for`]: which gangs to evict, or `None` when no choice
    /// makes room. It changes nothing: the gangs it lifts off the snapshot to try the blocked
    /// gang's placement are put back exactly (only the cycle's ledger is made, once, and kept).
    pub(super) fn plan_reclaim(&mut self, id: JobId, need: &Need) -> Option<ReclaimPlan> {
        let now = self.last_cycle;
        let s = self.state(id);
        let (queue, priority) = (s.job.queue.clone(), s.job.priority);
        let request = (need.minimum - need.held).clamp_zero();
        // Nothing could be evicted for it when no job held has a lower priority and no other
        // reclaimable queue holds anything: then the ledger, which looks at every job, is
        // spared.
        let preempt = self.queues.preemption(&queue)
            && self
                .priorities
                .first_key_value()
                .is_some_and(|(&p, _)| p < priority);
        let reclaim_possible = self.config.reclaim && self.queues.may_reclaim_from_others(&queue);
        if !preempt && !reclaim_possible {
            return None;
        }
        if self.ledger.is_none() {
            self.ledger = Some(self.reclaim_ledger());
        }
        let (cycle_ledger, floor) = self.ledger.as_ref().expect("made above");
        let mut ledger = cycle_ledger.clone();
        let preempt = preempt && floor.get(&queue).is_some_and(|&p| p < priority);
        let reclaim = self.config.reclaim && ledger.may_claim(&self.queues, &queue, &request);
        let victim_queues: BTreeSet<&str> = if reclaim {
            ledger
                .victim_queues(&self.queues, &queue, &request)
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        if victim_queues.is_empty() && !preempt {
            return None;
        }
        let guarded = |victim: &str| {
            self.reclaim_guard
                .get(&(queue.clone(), victim.to_string()))
                .is_some_and(|&until| until > now)
        };
        let mut candidates: Vec<Victim> = Vec::new();
        for (j, v) in self.jobs.iter().enumerate() {
            let Some(v) = v else { continue };
            let c = &v.counts;
            if j as JobId == id
                || v.phase != JobPhase::Running
                || c.assumed > 0
                || c.releasing > 0
                || c.bound == 0
            {
                continue;
            }
            let why = if v.job.queue == queue {
                if !(preempt && v.job.priority < priority) {
                    continue;
                }
                EvictReason::Preempt
            } else if victim_queues.contains(v.job.queue.as_str()) && !guarded(&v.job.queue) {
                EvictReason::Reclaim
            } else {
                continue;
            };
            candidates.push(Victim {
                id: j as JobId,
                priority: v.job.priority,
                started: v.started,
                pods: c.bound,
                why,
            });
        }
        // Not even every candidate together, with what is free, would make room: no search.
        let freed = candidates
            .iter()
            .fold(Resources::ZERO, |a, v| a + self.state(v.id).held);
        let free = shapes_of(&self.snapshot, &self.state(id).job)
            .iter()
            .flat_map(|sh| sh.classes.iter().map(|&(_, c)| c))
            .collect::<BTreeSet<ClassId>>()
            .into_iter()
            .fold(Resources::ZERO, |a, c| {
                a + self.snapshot.classes()[c as usize].free_total
            });
        if candidates.is_empty() || !request.fits_in(&(freed + free)) {
            return None;
        }
        // Lowest priority, then youngest (latest start, then latest arrival).
        candidates.sort_by_key(|v| {
            (
                v.priority,
                std::cmp::Reverse(v.started),
                std::cmp::Reverse(v.id),
            )
        });
        let mut chosen: Vec<Victim> = Vec::new();
        let mut fits = None;
        for v in candidates {
            let (vq, holds) = {
                let s = self.state(v.id);
                (s.job.queue.clone(), s.accounted)
            };
            if v.why == EvictReason::Reclaim
                && !ledger.may_take(&self.queues, &queue, &vq, &request, &holds)
            {
                continue;
            }
            self.lift(v.id, true);
            if v.why == EvictReason::Reclaim {
                ledger.take(&self.queues, &vq, holds);
            }
            chosen.push(v);
            if let Some(want) = self.trial(id, need) {
                fits = Some(want);
                break;
            }
            if chosen.len() >= MAX_VICTIMS {
                break;
            }
        }
        let Some(mut want) = fits else {
            for v in &chosen {
                self.lift(v.id, false);
            }
            return None;
        };
        // The fewest pods: give back the largest victims the gang can do without.
        if chosen.len() > 1 && chosen.len() <= MAX_PRUNED {
            let mut order: Vec<usize> = (0..chosen.len()).collect();
            order.sort_by_key(|&k| (std::cmp::Reverse(chosen[k].pods), k));
            let mut kept = vec![true; chosen.len()];
            for k in order {
                self.lift(chosen[k].id, false);
                match self.trial(id, need) {
                    Some(w) => {
                        want = w;
                        kept[k] = false;
                    }
                    None => self.lift(chosen[k].id, true),
                }
            }
            let mut k = 0;
            chosen.retain(|_| {
                k += 1;
                kept[k - 1]
            });
            // The ledger took from victims given back: start again from the cycle's.
            ledger = self.ledger.as_ref().expect("made above").0.clone();
            for v in &chosen {
                if v.why == EvictReason::Reclaim {
                    let s = self.state(v.id);
                    ledger.take(&self.queues, &s.job.queue, s.accounted);
                }
            }
        }
        for v in &chosen {
            self.lift(v.id, false);
        }
        Some(ReclaimPlan {
            victims: chosen,
            ledger,
            want,
        })
    }

    /// Carries out a reclaim plan for the blocked gang `id`: evicts each chosen gang whole
    /// (guarding its queue against reclaiming back during the cooldown), keeps the plan's
    /// ledger for the rest of the cycle, and holds for `id` the room it will take once freed.
    pub(super) fn apply_reclaim(&mut self, id: JobId, plan: ReclaimPlan) {
        let ReclaimPlan {
            victims,
            ledger,
            mut want,
        } = plan;
        let now = self.last_cycle;
        let queue = self.state(id).job.queue.clone();
        for v in &victims {
            let vq = self.state(v.id).job.queue.clone();
            if v.why == EvictReason::Reclaim {
                let until = Time(now.0.saturating_add(self.config.reclaim_cooldown.0));
                self.reclaim_guard.insert((vq, queue.clone()), until);
            }
            self.drop_claim(v.id);
            self.release_reservations(v.id);
            self.undo_gang(v.id, v.why);
            self.account(v.id);
        }
        if let Some((cycle_ledger, _)) = self.ledger.as_mut() {
            *cycle_ledger = ledger;
        }
        // Room held for it already stays held; the rest is what it will take once freed.
        let s = self.state_mut(id);
        for (&node, &held) in &s.reservations {
            let w = want.entry(node).or_default();
            *w = w.max(&held);
        }
        s.claim = Some(Claim {
            want,
            start: now,
            planned: now,
            evicted_for: true,
        });
        self.claims.insert(id);
        self.top_up(id);
    }

    /// Whether the gang would fit now; what it would take per node if so. Changes nothing.
    pub(super) fn trial(&mut self, id: JobId, need: &Need) -> Option<BTreeMap<NodeId, Resources>> {
        let Ok(Placed { txn }) = self.try_place(id, need, false) else {
            return None;
        };
        let s = self.state(id);
        let mut want: BTreeMap<NodeId, Resources> = BTreeMap::new();
        for p in &txn.placements {
            *want.entry(p.node).or_default() += s.request(p.task as usize).times(p.count as u64);
        }
        txn.rollback(&mut self.snapshot);
        Some(want)
    }

    /// Takes a running job's bound pods and held room off the snapshot (`off`), or puts them
    /// back; each undoes the other exactly.
    pub(super) fn lift(&mut self, id: JobId, off: bool) {
        let s = self.jobs[id as usize].as_ref().expect("live id");
        for (t, slots) in s.pods.iter().enumerate() {
            for slot in slots {
                if let (PodPhase::Bound, Some(node)) = (slot.phase, slot.node) {
                    if off {
                        self.snapshot.release(node, s.request(t));
                    } else {
                        self.snapshot.assume(node, s.request(t));
                    }
                }
            }
        }
        for (&node, &held) in &s.reservations {
            if off {
                self.snapshot.unreserve(node, held);
            } else {
                self.snapshot.reserve(node, held);
            }
        }
    }

    /// The cycle's reclaim ledger (pods being evicted already count as gone), and the lowest
    /// priority of a running gang per queue.
    pub(super) fn reclaim_ledger(&self) -> (ReclaimLedger, BTreeMap<String, i32>) {
        let mut ledger = self.queues.reclaim_ledger();
        let mut floor: BTreeMap<String, i32> = BTreeMap::new();
        for s in self.jobs.iter().flatten() {
            if s.phase == JobPhase::Running {
                match floor.get_mut(&s.job.queue) {
                    Some(p) => *p = (*p).min(s.job.priority),
                    None => {
                        floor.insert(s.job.queue.clone(), s.job.priority);
                    }
                }
            }
            if s.counts.releasing == 0 {
                continue;
            }
            let mut leaving = Resources::ZERO;
            for (t, slots) in s.pods.iter().enumerate() {
                let n = slots
                    .iter()
                    .filter(|p| p.phase == PodPhase::Releasing)
                    .count();
                leaving += s.request(t).times(n as u64);
            }
            ledger.take(&self.queues, &s.job.queue, leaving);
        }
        (ledger, floor)
    }
}
