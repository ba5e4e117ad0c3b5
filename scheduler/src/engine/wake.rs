//! Incremental wake-ups: which asleep gangs a change of the cluster retries (see
//! [`WakeUps`](super::config::WakeUps)).
//!
//! A gang asleep on a pod shape waits for the count of room kept for that shape ([`RoomMemo`])
//! to reach its need. Gangs asleep on one shape share one count, and those whose need the
//! count reaches are found in order of need, so a check looks at each asleep shape once and
//! at each gang it wakes, never at the others.
//!
//! Room is held (see [`crate::reserve`]) for at most one blocked gang per queue. So that the
//! gang the queue's order puts first can have room held for it, each queue with gangs asleep
//! has one *candidate* awake: a blocked gang that is retried after every change, as before
//! wake-ups were incremental. Once the candidate has room held, runs, leaves, or turns out to
//! have no plan, the queue's first asleep gang in queue order is woken to take its place.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use foldhash::fast::FixedState;

use phalanx_queue::{JobId, OrderKey};

use crate::gang::{RoomKey, RoomMemo};
use crate::snapshot::Snapshot;

use super::config::WakeUps;
use super::*;

/// What a gang that missed may sleep on ([`Engine::sleep_on`]).
pub(super) struct Sleep {
    /// Room for `need` pods of this shape,
    shape: RoomKey,
    need: u64,
    /// counting room held for others that it may borrow.
    borrows: bool,
}

/// What an asleep gang waits for, and what it is found by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Waits {
    /// Room for `need` pods of this shape.
    shape: u32,
    need: u64,
    /// Whether room held for others may be lent to it (backfill): the room it waits for
    /// counts that room in, and it is checked on its own.
    borrows: bool,
    /// Its queue and its key there.
    queue: Arc<str>,
    key: OrderKey,
    /// How long it declares it runs: it may borrow room held for a gang that starts later.
    runs: Option<u64>,
}

/// Gangs asleep until their shape has room, indexed by shape and need, and by queue.
#[derive(Debug, Clone, Default)]
pub(super) struct Sleepers {
    /// Shapes gangs ever slept on, by index (a shape's key is kept once).
    shapes: Vec<RoomKey>,
    shape_ids: HashMap<RoomKey, u32, FixedState>,
    /// Per shape, `(need, job)` of the gangs asleep on it that borrow nothing.
    by_shape: Vec<BTreeSet<(u64, JobId)>>,
    /// Shapes with such a gang asleep on them.
    active: BTreeSet<u32>,
    /// Asleep gangs that may borrow held room, each checked on its own.
    borrowing: BTreeSet<JobId>,
    /// Per queue, its asleep gangs, first in queue order first.
    by_queue: BTreeMap<Arc<str>, BTreeSet<(Reverse<OrderKey>, JobId)>>,
    /// What each asleep gang waits for.
    of_job: BTreeMap<JobId, Waits>,
    /// Gangs woken because their shape had room at the check: each is checked again when it
    /// comes up, and sleeps on if gangs before it took that room.
    woken: BTreeMap<JobId, Waits>,
    /// Per queue, the blocked gang kept awake so room may be held for it.
    candidates: BTreeMap<Arc<str>, JobId>,
    /// Set when something every asleep gang may wait on changed (nodes, queues): the next
    /// check wakes them all.
    pub(super) wake_all: bool,
    /// The node generation when they were last checked.
    nodes_seen: u64,
}

impl Sleepers {
    /// The index of a shape, kept from now on.
    fn shape_id(&mut self, shape: RoomKey) -> u32 {
        if let Some(&s) = self.shape_ids.get(&shape) {
            return s;
        }
        let s = self.shapes.len() as u32;
        self.shapes.push(shape.clone());
        self.shape_ids.insert(shape, s);
        self.by_shape.push(BTreeSet::new());
        s
    }

    /// Notes that `id` sleeps until its wait is over.
    fn insert(&mut self, id: JobId, waits: Waits) {
        self.forget(id);
        if waits.borrows {
            self.borrowing.insert(id);
        } else {
            self.by_shape[waits.shape as usize].insert((waits.need, id));
            self.active.insert(waits.shape);
        }
        self.by_queue
            .entry(Arc::clone(&waits.queue))
            .or_default()
            .insert((Reverse(waits.key), id));
        self.of_job.insert(id, waits);
    }

    /// Forgets `id`, asleep or woken, and returns what it waited for.
    pub(super) fn forget(&mut self, id: JobId) -> Option<Waits> {
        self.woken.remove(&id);
        let w = self.of_job.remove(&id)?;
        if w.borrows {
            self.borrowing.remove(&id);
        } else {
            let set = &mut self.by_shape[w.shape as usize];
            set.remove(&(w.need, id));
            if set.is_empty() {
                self.active.remove(&w.shape);
            }
        }
        if let Some(set) = self.by_queue.get_mut(&w.queue) {
            set.remove(&(Reverse(w.key), id));
            if set.is_empty() {
                self.by_queue.remove(&w.queue);
            }
        }
        Some(w)
    }

    /// An asleep gang's key in its queue changed.
    pub(super) fn rekey(&mut self, id: JobId, new: OrderKey) {
        let Some(w) = self.of_job.get_mut(&id) else {
            return;
        };
        if let Some(set) = self.by_queue.get_mut(&w.queue) {
            set.remove(&(Reverse(w.key), id));
            set.insert((Reverse(new), id));
        }
        w.key = new;
    }

    /// Gangs asleep.
    pub(super) fn len(&self) -> usize {
        self.of_job.len()
    }

    /// Gangs that do not borrow whose shape's count of room reached their need, or is no
    /// longer kept; `scan` checks each gang on its own instead of each shape (the reference).
    fn room_due(&mut self, rooms: &mut RoomMemo, snap: &Snapshot, scan: bool) -> Vec<JobId> {
        let mut due = Vec::new();
        if scan {
            for (&id, w) in &self.of_job {
                if w.borrows {
                    continue;
                }
                let room = rooms.room_of(snap, &self.shapes[w.shape as usize]);
                if room.is_none_or(|r| r >= w.need) {
                    due.push(id);
                }
            }
            return due;
        }
        for &shape in &self.active {
            let room = rooms.room_of(snap, &self.shapes[shape as usize]);
            let set = &self.by_shape[shape as usize];
            match room {
                None => due.extend(set.iter().map(|&(_, id)| id)),
                Some(r) => due.extend(set.range(..(r.saturating_add(1), 0)).map(|&(_, id)| id)),
            }
        }
        due
    }

    /// Asleep gangs that could borrow room held for a gang expected to start at `start`, at
    /// `now`.
    fn may_borrow(&self, start: u64, now: u64) -> Vec<JobId> {
        self.of_job
            .iter()
            .filter(|(_, w)| w.runs.is_some_and(|d| now.saturating_add(d) <= start))
            .map(|(&id, _)| id)
            .collect()
    }
}

impl Engine {
    /// What a forming gang that just missed may sleep on: a shape of it whose count of room
    /// (with the room it may borrow) is kept and short of what the gang needs of it, when
    /// nothing but more room for that shape could place it (see [`WakeUps`]). `None`: it
    /// parks, and any change retries it.
    pub(super) fn sleep_on(&mut self, id: JobId, need: &Need) -> Option<Sleep> {
        if self.config.wake_ups == WakeUps::Always || !need.forming {
            return None;
        }
        let s = self.state(id);
        let quiet = s.counts.live() == 0
            && s.counts.releasing == 0
            && s.reservations.is_empty()
            && s.claim.is_none()
            && s.job.min_resources.is_none();
        if !quiet || self.queues.strict_fifo(&s.job.queue) {
            return None;
        }
        // Room could be held for it: its queue holds none and has no other candidate.
        let plannable = self.config.max_reservations > 0
            && s.unplannable != Some(self.node_generation)
            && !self
                .claims
                .iter()
                .any(|&c| c != id && self.state(c).job.queue == s.job.queue);
        if plannable {
            let queue = self.queue_name(id);
            match self.sleepers.candidates.get(&queue) {
                Some(&c) if c != id && self.is_candidate(c) => {}
                _ => {
                    self.sleepers.candidates.insert(queue, id);
                    return None;
                }
            }
        }
        let lent = self.lent_room(&self.lendable(id));
        let Engine {
            jobs,
            snapshot,
            rooms,
            config,
            ..
        } = self;
        let s = jobs[id as usize].as_ref().expect("live id");
        let shapes = shapes_of(snapshot, &s.job);
        if !lent.is_empty() && shapes.len() != 1 {
            // A trial on lent room is made for it whatever the counts say.
            return None;
        }
        let policy = config.score;
        // Each task needs its own minimum of its shape; a one-task gang needs all of it there.
        let wants: Vec<(usize, u64)> = if shapes.len() == 1 {
            vec![(0, need.gang_need.max(need.task_need[0]) as u64)]
        } else {
            need.task_need
                .iter()
                .enumerate()
                .map(|(t, &n)| (t, n as u64))
                .collect()
        };
        for (t, want) in wants {
            if want == 0 {
                continue;
            }
            let key = RoomKey::of(&shapes[t], policy);
            let room = rooms.room_of_with(snapshot, &key, &lent);
            if room.is_some_and(|r| r < want) {
                let borrows = !lent.is_empty();
                return Some(Sleep {
                    shape: key,
                    need: want,
                    borrows,
                });
            }
        }
        None
    }

    /// The name of a job's queue.
    fn queue_name(&self, id: JobId) -> Arc<str> {
        Arc::from(self.state(id).job.queue.as_str())
    }

    /// Whether a queue's candidate is still one: a blocked gang, awake in its queue, holding
    /// no room, with a plan possible.
    fn is_candidate(&self, id: JobId) -> bool {
        self.jobs[id as usize].as_ref().is_some_and(|s| {
            s.phase == JobPhase::Pending
                && s.queued
                && s.claim.is_none()
                && s.unplannable != Some(self.node_generation)
                && !self.queues.is_asleep(id)
        })
    }

    /// Puts a parked gang asleep until its shape has room for `need` pods (see
    /// [`Engine::sleep_on`]).
    pub(super) fn sleep(&mut self, id: JobId, key: OrderKey, on: Sleep) {
        let runs = self.state(id).job.declared_duration().map(|d| d.0);
        let waits = Waits {
            shape: self.sleepers.shape_id(on.shape),
            need: on.need,
            borrows: on.borrows,
            queue: self.queue_name(id),
            key,
            runs,
        };
        self.queues.sleep(id, key);
        self.sleepers.insert(id, waits);
    }

    /// Whether an asleep gang's wait is over now: its shape has room for its need, counting
    /// what it may borrow, or that room is no longer counted.
    fn wait_over(&mut self, id: JobId, w: &Waits) -> bool {
        let lent = if w.borrows {
            self.lent_room(&self.lendable(id))
        } else {
            BTreeMap::new()
        };
        let key = &self.sleepers.shapes[w.shape as usize];
        self.rooms
            .room_of_with(&self.snapshot, key, &lent)
            .is_none_or(|r| r >= w.need)
    }

    /// Wakes the asleep gangs whose wait is over, and in each queue without room held and
    /// without a candidate, its first asleep gang that may have a plan: they are ready for
    /// the next attempts. After a change every gang may wait on, all of them.
    pub(super) fn wake_due(&mut self) {
        let generation = self.node_generation;
        if self.sleepers.len() == 0 {
            self.sleepers.candidates.clear();
            self.sleepers.wake_all = false;
            self.sleepers.nodes_seen = generation;
            return;
        }
        if std::mem::take(&mut self.sleepers.wake_all) || generation != self.sleepers.nodes_seen {
            self.sleepers.nodes_seen = generation;
            let all: Vec<JobId> = self.sleepers.of_job.keys().copied().collect();
            for id in all {
                self.wake(id);
            }
            return;
        }
        let scan = self.config.wake_ups == WakeUps::Scan;
        let mut due = self
            .sleepers
            .room_due(&mut self.rooms, &self.snapshot, scan);
        // Gangs that may borrow the same held room, asleep on one shape, share one count.
        let mut counted: BTreeMap<(u32, Vec<JobId>), Option<u64>> = BTreeMap::new();
        let borrowing: Vec<JobId> = self.sleepers.borrowing.iter().copied().collect();
        for id in borrowing {
            let w = &self.sleepers.of_job[&id];
            let (shape, need) = (w.shape, w.need);
            let lenders = self.lendable(id);
            let room = match counted.get(&(shape, lenders.clone())) {
                Some(&room) => room,
                None => {
                    let lent = self.lent_room(&lenders);
                    let key = &self.sleepers.shapes[shape as usize];
                    let room = self.rooms.room_of_with(&self.snapshot, key, &lent);
                    counted.insert((shape, lenders), room);
                    room
                }
            };
            if room.is_none_or(|r| r >= need) {
                due.push(id);
            }
        }
        for id in due {
            if let Some(w) = self.sleepers.forget(id) {
                self.queues.wake(id);
                self.sleepers.woken.insert(id, w);
            }
        }
        let mut candidates = std::mem::take(&mut self.sleepers.candidates);
        candidates.retain(|_, c| self.is_candidate(*c));
        let held: BTreeSet<&str> = self
            .claims
            .iter()
            .map(|&c| self.state(c).job.queue.as_str())
            .collect();
        let mut first = Vec::new();
        for (queue, set) in &self.sleepers.by_queue {
            if candidates.contains_key(queue)
                || held.contains(&**queue)
                || self.config.max_reservations == 0
            {
                continue;
            }
            let plannable = set
                .iter()
                .map(|&(_, id)| id)
                .find(|&id| self.state(id).unplannable != Some(generation));
            if let Some(id) = plannable {
                candidates.insert(Arc::clone(queue), id);
                first.push(id);
            }
        }
        self.sleepers.candidates = candidates;
        for id in first {
            self.wake(id);
        }
    }

    /// A gang woken because its shape had room, now popped: if gangs before it took that
    /// room, it sleeps on without a try (true).
    pub(super) fn sleeps_on(&mut self, id: JobId, key: OrderKey) -> bool {
        let Some(w) = self.sleepers.woken.remove(&id) else {
            return false;
        };
        if self.wait_over(id, &w) {
            return false;
        }
        let w = Waits { key, ..w };
        self.queues.sleep(id, key);
        self.sleepers.insert(id, w);
        true
    }

    /// Wakes one gang, if it is asleep: something about it changed.
    pub(super) fn wake(&mut self, id: JobId) {
        self.sleepers.forget(id);
        self.queues.wake(id);
    }

    /// The names of the asleep gangs, in id order.
    pub(super) fn asleep_names(&self) -> Vec<String> {
        self.sleepers
            .of_job
            .keys()
            .map(|&id| self.state(id).job.name.clone())
            .collect()
    }

    /// See [`View::asleep_that_fit`].
    pub(super) fn asleep_that_fit(&self) -> Vec<String> {
        let mut fit = Vec::new();
        for &id in self.sleepers.of_job.keys() {
            let mut trial = self.clone();
            let need = Need::of(trial.state(id));
            trial.rooms = RoomMemo::default();
            let mut placed = trial.try_place(id, &need, false).is_ok();
            let lendable = trial.lendable(id);
            if !placed && !lendable.is_empty() {
                trial.lend(&lendable);
                trial.rooms = RoomMemo::default();
                placed = trial.try_place(id, &need, false).is_ok();
            }
            if placed {
                fit.push(self.state(id).job.name.clone());
            }
        }
        fit
    }

    /// Room was held for a blocked gang: asleep gangs that would be done before it starts
    /// may borrow it (backfill) and are woken.
    pub(super) fn claim_made(&mut self, id: JobId) {
        let Some(claim) = &self.state(id).claim else {
            return;
        };
        for other in self.sleepers.may_borrow(claim.start.0, self.last_cycle.0) {
            self.wake(other);
        }
    }
}
