//! phalanx-queue: who goes next.
//!
//! Today this is the order of jobs within a queue: higher priority first, then earlier submit
//! time, then earlier arrival (the engine's job id, assigned in event order, so ties are
//! deterministic). Jobs that could not be placed are *parked* until the cluster changes in a way
//! that could let them fit (capacity freed, nodes added), like kube-scheduler's unschedulable
//! pods pool: a cycle never retries a job against the same cluster.
//!
//! ```text
//!            push                       pop
//!   submit -------> [ ready, ordered ] -------> attempt --placed--> (out)
//!                        ^                          |
//!                        |  unpark (cluster grew)   | did not fit
//!                        +------- [ parked ] <------+
//! ```
//!
//! A parked job the engine knows cannot fit until a particular change (its pod shape's room
//! reaches its need) is put *asleep* instead: only [`JobQueue::wake`] makes it ready again, so a
//! change elsewhere in the cluster does not retry it (as kube-scheduler's QueueingHints keep a
//! pod in the unschedulable pool until an event its plugins say could help).
//!
//! Hierarchical fair-share queues, DRF between siblings and quota checks build on this.
//! [`dag`] is the gate in front of it: a job enters the queue only once every job it depends
//! on has succeeded.

pub mod dag;
pub mod tree;

use foldhash::fast::FixedState;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use phalanx_model::Time;
use priority_queue::PriorityQueue;

/// The engine's id of a job: assigned in arrival order, never reused.
pub type JobId = u32;

/// A lookup table keyed by name (jobs, DAG nodes). Hashing beats a B-tree of 100,000 names
/// that share long prefixes (`namespace/job-000123`). It is only ever looked up, never
/// iterated, and its hasher (foldhash, several times cheaper than SipHash on short names) has
/// a fixed seed, so it adds no order and no randomness to decisions. Keys are owned names; a
/// table that shares its names with another structure keys by `Arc<str>`, so each name is
/// stored once.
pub type NameMap<V, K = String> = std::collections::HashMap<K, V, FixedState>;

/// The order of a job within its queue; greater goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey {
    priority: i32,
    tail: dag::PathLength,
    submitted: Reverse<Time>,
    id: Reverse<JobId>,
}

impl OrderKey {
    /// Higher priority first, then the longer chain of dependent work behind the job (so a
    /// pipeline's critical path goes first), then earlier submission, then earlier arrival.
    pub fn new(priority: i32, tail: dag::PathLength, submitted: Time, id: JobId) -> Self {
        OrderKey {
            priority,
            tail,
            submitted: Reverse(submitted),
            id: Reverse(id),
        }
    }
}

/// Pending jobs of one queue: ready ones in order, parked and asleep ones set aside. Parked
/// jobs are kept in order and indexed by id, so finding, re-keying or removing one is
/// O(log n); asleep ones are indexed by id (each is woken by id).
#[derive(Debug, Clone, Default)]
pub struct JobQueue {
    ready: PriorityQueue<JobId, OrderKey, FixedState>,
    parked: BTreeSet<(Reverse<OrderKey>, JobId)>,
    /// The key each parked job is parked under (looked up, never iterated).
    parked_keys: HashMap<JobId, OrderKey, FixedState>,
    /// Asleep jobs and their keys: parked, but not woken by [`JobQueue::unpark_all`] (looked
    /// up, never iterated).
    asleep: HashMap<JobId, OrderKey, FixedState>,
}

impl JobQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a job out of the parked or asleep set, if it is there; returns its key.
    fn unpark(&mut self, id: JobId) -> Option<OrderKey> {
        if let Some(key) = self.asleep.remove(&id) {
            return Some(key);
        }
        let key = self.parked_keys.remove(&id)?;
        self.parked.remove(&(Reverse(key), id));
        Some(key)
    }

    /// Adds a job as ready (or updates its key).
    pub fn push(&mut self, id: JobId, key: OrderKey) {
        self.unpark(id);
        self.ready.push(id, key);
    }

    /// Takes the next ready job.
    pub fn pop(&mut self) -> Option<(JobId, OrderKey)> {
        self.ready.pop()
    }

    /// The next ready job, without taking it.
    pub fn peek(&self) -> Option<(JobId, OrderKey)> {
        self.ready.peek().map(|(id, key)| (*id, *key))
    }

    /// Sets a job aside until [`JobQueue::unpark_all`].
    pub fn park(&mut self, id: JobId, key: OrderKey) {
        self.ready.remove(&id);
        self.unpark(id);
        self.parked.insert((Reverse(key), id));
        self.parked_keys.insert(id, key);
    }

    /// Sets a job aside until [`JobQueue::wake`] names it; [`JobQueue::unpark_all`] leaves it.
    pub fn sleep(&mut self, id: JobId, key: OrderKey) {
        self.ready.remove(&id);
        self.unpark(id);
        self.asleep.insert(id, key);
    }

    /// Makes an asleep job ready again; false when it is not asleep (it left the queue, or
    /// was queued or parked again since).
    pub fn wake(&mut self, id: JobId) -> bool {
        let Some(key) = self.asleep.remove(&id) else {
            return false;
        };
        self.ready.push(id, key);
        true
    }

    /// Whether a job is asleep.
    pub fn is_asleep(&self, id: JobId) -> bool {
        self.asleep.contains_key(&id)
    }

    /// Makes every parked job ready again (the cluster changed); asleep ones stay.
    pub fn unpark_all(&mut self) {
        self.parked_keys.clear();
        for (Reverse(key), id) in std::mem::take(&mut self.parked) {
            self.ready.push(id, key);
        }
    }

    /// The key of a queued job, ready or parked.
    pub fn key_of(&self, id: JobId) -> Option<OrderKey> {
        self.ready
            .get_priority(&id)
            .copied()
            .or_else(|| self.parked_keys.get(&id).copied())
            .or_else(|| self.asleep.get(&id).copied())
    }

    /// Whether a job is parked or asleep.
    pub fn is_parked(&self, id: JobId) -> bool {
        self.parked_keys.contains_key(&id) || self.asleep.contains_key(&id)
    }

    /// Changes a queued job's order key (its critical path grew), wherever it is.
    pub fn rekey(&mut self, id: JobId, new: OrderKey) {
        if let Some(key) = self.asleep.get_mut(&id) {
            *key = new;
        } else if self.unpark(id).is_some() {
            self.parked.insert((Reverse(new), id));
            self.parked_keys.insert(id, new);
        } else {
            self.ready.change_priority(&id, new);
        }
    }

    /// Removes a job wherever it is.
    pub fn remove(&mut self, id: JobId) {
        if self.ready.remove(&id).is_none() {
            self.unpark(id);
        }
    }

    /// Ready jobs.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Parked jobs, asleep ones included.
    pub fn parked_len(&self) -> usize {
        self.parked.len() + self.asleep.len()
    }

    /// Asleep jobs.
    pub fn asleep_len(&self) -> usize {
        self.asleep.len()
    }

    /// All jobs, ready, parked and asleep.
    pub fn len(&self) -> usize {
        self.ready.len() + self.parked_len()
    }

    /// True when no job is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_priority_then_submit_time_then_arrival() {
        let mut q = JobQueue::new();
        let none = dag::PathLength::default();
        q.push(0, OrderKey::new(0, none, Time(10), 0));
        q.push(1, OrderKey::new(5, none, Time(20), 1));
        q.push(2, OrderKey::new(0, none, Time(5), 2));
        q.push(3, OrderKey::new(0, none, Time(5), 3));
        let long = dag::PathLength {
            declared_ms: 0,
            stages: 3,
        };
        q.push(4, OrderKey::new(0, long, Time(50), 4));
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(id, _)| id)).collect();
        assert_eq!(order, vec![1, 4, 2, 3, 0]);
    }

    #[test]
    fn parked_jobs_wait_until_unparked() {
        let mut q = JobQueue::new();
        let k = OrderKey::new(0, dag::PathLength::default(), Time(0), 7);
        q.push(7, k);
        let (id, key) = q.pop().unwrap();
        q.park(id, key);
        assert!(q.pop().is_none());
        assert_eq!(q.len(), 1);
        q.unpark_all();
        assert_eq!(q.pop().map(|(id, _)| id), Some(7));
        q.park(7, k);
        let k2 = OrderKey::new(1, dag::PathLength::default(), Time(0), 7);
        q.rekey(7, k2);
        assert!(q.is_parked(7));
        assert_eq!(q.key_of(7), Some(k2));
        q.unpark_all();
        assert_eq!(q.pop(), Some((7, k2)));
        q.park(7, k2);
        q.remove(7);
        assert!(q.is_empty() && !q.is_parked(7));
        // Parked again under a new key, it is parked once, under that key.
        q.park(7, k);
        q.park(7, k2);
        assert_eq!((q.parked_len(), q.key_of(7)), (1, Some(k2)));
        q.push(7, k);
        assert_eq!((q.parked_len(), q.ready_len()), (0, 1));
    }
}
