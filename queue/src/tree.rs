//! The queue tree: tenants' queues as a hierarchy (`root.team.sub`), their quotas, and which
//! queue's job goes next.
//!
//! - **Quotas.** Each queue has a weight, a guarantee, a deserved share and a capability. The
//!   one admission rule, `allocated + request <= capability` for the queue and every ancestor,
//!   lives in one function, [`QueueTree::headroom`]: the engine hands that headroom to the gang
//!   transaction as a budget, so no path can place past a cap.
//! - **Who goes next.** From the root down, among the children that have ready jobs: a child
//!   below its guarantee first, then the lowest weighted dominant share (DRF over the resources
//!   the cluster has, integer fixed point, so no floating-point ties), then the name. Each parent
//!   keeps its ready children in a priority queue, re-keyed when their allocation changes, so a
//!   pop costs O(depth · log siblings). Inside a leaf, [`JobQueue`] orders jobs.
//! - **Deserved shares** not set by the admin are worked out by weighted max-min water-filling
//!   over current demand (allocated + pending), level by level: a queue that asks for less than
//!   its share leaves the rest to its siblings.
//!
//! Jobs live only in leaf queues. Queues are created implicitly for a dotted path's parents;
//! before any configuration arrives, a queue a job names is created on demand with defaults.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use phalanx_model::{MAX_RESOURCES, QueueOrdering, QueueSpec, ResourceId, Resources};
use priority_queue::PriorityQueue;

use crate::{JobId, JobQueue, OrderKey};

/// Index of a queue in the tree.
pub type QueueId = u32;

const ROOT: QueueId = 0;

/// Fixed-point scale of shares: a share of 1.0 (the whole cluster) is `SHARE_ONE`.
pub const SHARE_ONE: u64 = 1 << 32;

/// A lane of [`Resources`] with no limit.
const UNLIMITED: i64 = i64::MAX;

/// Why a queue configuration is refused; the previous one stays in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueConfigError {
    /// The name is not a dotted path under `root`.
    #[error("queue {queue:?}: name must be a dotted path under root, like root.team.sub")]
    BadName {
        /// The name as written.
        queue: String,
    },
    /// The same queue is configured twice.
    #[error("queue {queue}: configured twice")]
    Duplicate {
        /// The queue.
        queue: String,
    },
    /// The weight is outside 1..=65535.
    #[error("queue {queue}: weight {weight} is outside 1..=65535")]
    Weight {
        /// The queue.
        queue: String,
        /// The weight given.
        weight: u32,
    },
    /// guarantee <= deserved <= capability does not hold for a resource.
    #[error("queue {queue}: {lower} {lower_amount} of {resource} is above {upper} {upper_amount}")]
    Order {
        /// The queue.
        queue: String,
        /// The resource.
        resource: String,
        /// `guarantee` or `deserved`.
        lower: &'static str,
        /// Its amount.
        lower_amount: i64,
        /// `deserved` or `capability`.
        upper: &'static str,
        /// Its amount.
        upper_amount: i64,
    },
    /// The children's guarantees add up to more than their parent's guarantee.
    #[error(
        "queue {queue}: its children's guarantees add up to {children} of {resource}, above its own guarantee {guarantee}"
    )]
    ChildGuarantees {
        /// The parent queue.
        queue: String,
        /// The resource.
        resource: String,
        /// The children's sum.
        children: i64,
        /// The parent's guarantee.
        guarantee: i64,
    },
}

/// Why a job cannot go into a queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// No such queue is configured.
    #[error("queue {0} is not configured")]
    NotFound(String),
    /// The queue has child queues; jobs go into leaves.
    #[error("queue {0} has child queues; submit to one of them")]
    NotLeaf(String),
}

/// A queue that would go over its capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverCapability {
    /// The queue whose cap binds (the job's queue or an ancestor).
    pub queue: String,
    /// The resource.
    pub resource: ResourceId,
    /// Its capability.
    pub capability: i64,
    /// What it has allocated.
    pub allocated: i64,
}

/// A queue's state, for views, metrics and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The configuration.
    pub spec: QueueSpec,
    /// Requests of pods placed (and capacity held) for jobs in the subtree.
    pub allocated: Resources,
    /// Its deserved share: as configured, or water-filled over demand.
    pub deserved: Resources,
    /// Pending demand of jobs in the subtree.
    pub pending: Resources,
    /// Weighted dominant share, in units of [`SHARE_ONE`].
    pub dominant_share: u64,
    /// The resource of which it holds the largest share of the cluster (`None` while it holds
    /// nothing).
    pub dominant_resource: Option<ResourceId>,
    /// Jobs ready to be tried in this queue (leaves only).
    pub ready: usize,
    /// Jobs set aside until the cluster changes (leaves only).
    pub parked: usize,
    /// Whether it has child queues.
    pub leaf: bool,
}

/// Sibling order: below guarantee first, then lowest weighted dominant share, then name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ChildKey {
    below_guarantee: bool,
    share: Reverse<u64>,
    name: Reverse<QueueId>,
}

type Heap<K, P> = PriorityQueue<K, P, foldhash::fast::FixedState>;

#[derive(Debug, Clone)]
struct Node {
    spec: QueueSpec,
    parent: Option<QueueId>,
    children: Vec<QueueId>,
    allocated: Resources,
    pending: Resources,
    jobs: JobQueue,
    /// Ready jobs in the subtree (a blocked strict-fifo leaf counts none).
    ready: u32,
    /// Children with ready jobs, best first.
    active: Heap<QueueId, ChildKey>,
    /// A strict-fifo leaf whose head job did not fit.
    blocked: bool,
}

/// The tree of queues and the jobs waiting in them.
#[derive(Debug, Clone)]
pub struct QueueTree {
    nodes: Vec<Node>,
    by_name: BTreeMap<String, QueueId>,
    /// Where each queued job is, with the demand it adds.
    jobs: BTreeMap<JobId, (QueueId, Resources)>,
    capacity: Resources,
    /// No configuration yet: queues a job names are created with defaults.
    auto_create: bool,
}

impl Default for QueueTree {
    fn default() -> Self {
        Self::new()
    }
}

fn lane_name(id: ResourceId) -> String {
    id.well_known_name()
        .map_or_else(|| format!("extended resource #{}", id.0), str::to_string)
}

/// The lanes shares are computed over: every resource but pod slots.
fn share_lanes() -> impl Iterator<Item = ResourceId> {
    (0..MAX_RESOURCES as u8)
        .map(ResourceId)
        .filter(|&r| r != ResourceId::PODS)
}

impl QueueTree {
    /// A tree with `root` and `root.default`, creating queues that jobs name until configured.
    pub fn new() -> Self {
        let mut tree = Self::build(&[]).expect("an empty configuration is valid");
        tree.auto_create = true;
        tree
    }

    /// A tree from an admin's configuration, validated. Parents are implicit; `root` and
    /// `root.default` always exist.
    pub fn configured(specs: &[QueueSpec]) -> Result<Self, QueueConfigError> {
        Self::build(specs)
    }

    fn build(specs: &[QueueSpec]) -> Result<Self, QueueConfigError> {
        let mut by_spec: BTreeMap<String, QueueSpec> = BTreeMap::new();
        for spec in specs {
            validate(spec)?;
            if by_spec.insert(spec.name.clone(), spec.clone()).is_some() {
                return Err(QueueConfigError::Duplicate {
                    queue: spec.name.clone(),
                });
            }
        }
        // Every name and its implicit parents, in name order: ids follow names, so sibling
        // ties broken by id are broken by name.
        let mut names: BTreeMap<String, QueueSpec> = BTreeMap::new();
        names.insert("root".into(), QueueSpec::new("root"));
        names.insert(
            phalanx_model::DEFAULT_QUEUE.into(),
            QueueSpec::new(phalanx_model::DEFAULT_QUEUE),
        );
        for name in by_spec.keys() {
            let mut path = String::new();
            for part in name.split('.') {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(part);
                names
                    .entry(path.clone())
                    .or_insert_with(|| QueueSpec::new(path.clone()));
            }
        }
        for (name, spec) in by_spec {
            names.insert(name, spec);
        }
        let mut tree = QueueTree {
            nodes: Vec::with_capacity(names.len()),
            by_name: BTreeMap::new(),
            jobs: BTreeMap::new(),
            capacity: Resources::ZERO,
            auto_create: false,
        };
        for (name, spec) in names {
            let id = tree.nodes.len() as QueueId;
            let parent = name.rsplit_once('.').map(|(p, _)| tree.by_name[p]);
            tree.nodes.push(Node {
                spec,
                parent,
                children: Vec::new(),
                allocated: Resources::ZERO,
                pending: Resources::ZERO,
                jobs: JobQueue::new(),
                ready: 0,
                active: Heap::default(),
                blocked: false,
            });
            if let Some(p) = parent {
                tree.nodes[p as usize].children.push(id);
            }
            tree.by_name.insert(name, id);
        }
        // Children's guarantees must fit an explicitly configured parent's.
        for node in &tree.nodes {
            if node.children.is_empty() || !specs.iter().any(|s| s.name == node.spec.name) {
                continue;
            }
            let sum = node.children.iter().fold(Resources::ZERO, |a, &c| {
                a + tree.nodes[c as usize].spec.guarantee
            });
            if let Some((r, children)) = sum
                .iter_nonzero()
                .find(|&(r, v)| v > node.spec.guarantee.get(r))
            {
                return Err(QueueConfigError::ChildGuarantees {
                    queue: node.spec.name.clone(),
                    resource: lane_name(r),
                    children,
                    guarantee: node.spec.guarantee.get(r),
                });
            }
        }
        Ok(tree)
    }

    /// The queue configuration in force, in name order.
    pub fn specs(&self) -> impl Iterator<Item = &QueueSpec> {
        self.nodes.iter().map(|n| &n.spec)
    }

    /// The leaf a job of queue `name` goes to, creating it if the tree is not configured yet.
    fn leaf(&mut self, name: &str) -> Result<QueueId, PlacementError> {
        let id = match self.by_name.get(name) {
            Some(&id) => id,
            None if self.auto_create && validate(&QueueSpec::new(name)).is_ok() => {
                self.create(name);
                self.by_name[name]
            }
            None => return Err(PlacementError::NotFound(name.to_string())),
        };
        if !self.nodes[id as usize].children.is_empty() {
            return Err(PlacementError::NotLeaf(name.to_string()));
        }
        Ok(id)
    }

    /// Adds a queue (and its parents) with defaults, rebuilding ids in name order and carrying
    /// over every job and allocation.
    fn create(&mut self, name: &str) {
        let mut specs: Vec<QueueSpec> = self.nodes.iter().map(|n| n.spec.clone()).collect();
        specs.push(QueueSpec::new(name));
        let mut fresh = Self::build(&specs).expect("default queues are valid");
        fresh.auto_create = true;
        fresh.set_capacity(self.capacity);
        self.move_into(&mut fresh);
        *self = fresh;
    }

    /// Moves every queued job and every leaf's allocation into `other`, by queue name. Returns
    /// the jobs whose queue `other` does not have.
    fn move_into(&mut self, other: &mut QueueTree) -> Vec<JobId> {
        let mut lost = Vec::new();
        for (id, node) in self.nodes.iter().enumerate() {
            if !node.children.is_empty() || node.allocated.is_zero() {
                continue;
            }
            let name = &self.nodes[id].spec.name;
            if let Some(&to) = other.by_name.get(name) {
                other.allocate_at(to, node.allocated, true);
            }
        }
        let jobs = std::mem::take(&mut self.jobs);
        for (job, (q, demand)) in jobs {
            let name = self.nodes[q as usize].spec.name.clone();
            let key = self.nodes[q as usize].jobs.key_of(job);
            let parked = self.nodes[q as usize].jobs.is_parked(job);
            match (other.leaf(&name), key) {
                (Ok(to), Some(key)) => {
                    other.insert(job, to, key, demand);
                    if parked {
                        other.nodes[to as usize].jobs.park(job, key);
                        other.refresh_ready(to);
                    }
                }
                _ => lost.push(job),
            }
        }
        lost
    }

    /// Replaces the configuration, keeping queued jobs and allocations where their queues
    /// still exist. On error nothing changes. Returns the jobs whose queue is gone; they are
    /// no longer queued.
    pub fn configure(&mut self, specs: &[QueueSpec]) -> Result<Vec<JobId>, QueueConfigError> {
        let mut fresh = Self::build(specs)?;
        fresh.set_capacity(self.capacity);
        let lost = self.move_into(&mut fresh);
        *self = fresh;
        Ok(lost)
    }

    /// Sets the cluster's allocatable capacity (the denominator of shares).
    pub fn set_capacity(&mut self, capacity: Resources) {
        if capacity == self.capacity {
            return;
        }
        self.capacity = capacity;
        for q in 0..self.nodes.len() as QueueId {
            self.rekey(q);
        }
    }

    fn key(&self, q: QueueId) -> ChildKey {
        let n = &self.nodes[q as usize];
        ChildKey {
            below_guarantee: below_guarantee(&n.allocated, &n.spec.guarantee),
            share: Reverse(self.share(q)),
            name: Reverse(q),
        }
    }

    /// Weighted dominant share of a queue, in units of [`SHARE_ONE`].
    fn share(&self, q: QueueId) -> u64 {
        let n = &self.nodes[q as usize];
        let dominant = self.dominant(q).map_or(0, |(_, share)| share);
        dominant / n.spec.weight.max(1) as u64
    }

    /// A queue's dominant resource and its share of the cluster's capacity of it, in units of
    /// [`SHARE_ONE`]; `None` when it holds nothing the cluster has.
    fn dominant(&self, q: QueueId) -> Option<(ResourceId, u64)> {
        let n = &self.nodes[q as usize];
        share_lanes()
            .filter(|&r| self.capacity.get(r) > 0)
            .map(|r| {
                let used = n.allocated.get(r).max(0) as u128;
                (
                    r,
                    (used * SHARE_ONE as u128 / self.capacity.get(r) as u128) as u64,
                )
            })
            // The first lane among equals, as `max_by_key` would pick the last.
            .fold(
                None,
                |best: Option<(ResourceId, u64)>, (r, share)| match best {
                    Some((_, b)) if b >= share => best,
                    _ => Some((r, share)),
                },
            )
            .filter(|&(_, share)| share > 0)
    }

    /// Re-keys `q` in its parent's heap (its share or guarantee status changed).
    fn rekey(&mut self, q: QueueId) {
        if let Some(p) = self.nodes[q as usize].parent {
            let key = self.key(q);
            self.nodes[p as usize].active.change_priority(&q, key);
        }
    }

    /// Recounts a leaf's ready jobs and carries the change up, adding or removing subtrees
    /// from their parents' heaps as they gain or lose ready jobs.
    fn refresh_ready(&mut self, leaf: QueueId) {
        let n = &self.nodes[leaf as usize];
        let now = if n.blocked {
            0
        } else {
            n.jobs.ready_len() as u32
        };
        let before = n.ready;
        if now == before {
            return;
        }
        let delta = now as i64 - before as i64;
        let mut q = leaf;
        loop {
            let n = &mut self.nodes[q as usize];
            let was = n.ready;
            n.ready = (n.ready as i64 + delta) as u32;
            let is = n.ready;
            let Some(p) = n.parent else { break };
            if was == 0 && is > 0 {
                let key = self.key(q);
                self.nodes[p as usize].active.push(q, key);
            } else if was > 0 && is == 0 {
                self.nodes[p as usize].active.remove(&q);
            }
            q = p;
        }
    }

    fn insert(&mut self, job: JobId, leaf: QueueId, key: OrderKey, demand: Resources) {
        self.nodes[leaf as usize].jobs.push(job, key);
        self.add_pending(leaf, demand, true);
        self.jobs.insert(job, (leaf, demand));
        self.refresh_ready(leaf);
    }

    fn add_pending(&mut self, leaf: QueueId, demand: Resources, add: bool) {
        let mut q = Some(leaf);
        while let Some(id) = q {
            let n = &mut self.nodes[id as usize];
            if add {
                n.pending += demand;
            } else {
                n.pending -= demand;
            }
            q = n.parent;
        }
    }

    /// Queues a job in its queue's leaf, with the demand of its pending pods.
    pub fn push(
        &mut self,
        job: JobId,
        queue: &str,
        key: OrderKey,
        demand: Resources,
    ) -> Result<(), PlacementError> {
        let leaf = self.leaf(queue)?;
        self.remove(job);
        self.insert(job, leaf, key, demand);
        Ok(())
    }

    /// Takes the next job: down from the root through the best ready child, then the leaf's
    /// next job. The job stays in the tree, counted as demand, until it is parked again or
    /// removed: the caller does one or the other once it has tried the job.
    pub fn pop(&mut self) -> Option<(JobId, OrderKey)> {
        let mut q = ROOT;
        while let Some((&child, _)) = self.nodes[q as usize].active.peek() {
            q = child;
        }
        let popped = self.nodes[q as usize].jobs.pop()?;
        self.refresh_ready(q);
        Some(popped)
    }

    /// Sets a popped job aside until [`QueueTree::unpark_all`]. With `blocks_queue`, a
    /// strict-fifo queue stops offering jobs until then.
    pub fn park(&mut self, job: JobId, key: OrderKey, blocks_queue: bool) {
        let Some(&(leaf, _)) = self.jobs.get(&job) else {
            return;
        };
        let n = &mut self.nodes[leaf as usize];
        n.jobs.park(job, key);
        if blocks_queue && n.spec.ordering == QueueOrdering::StrictFifo {
            n.blocked = true;
        }
        self.refresh_ready(leaf);
    }

    /// Sets a popped job aside until [`QueueTree::wake`] names it (see [`JobQueue::sleep`]).
    /// An asleep job never blocks its queue.
    pub fn sleep(&mut self, job: JobId, key: OrderKey) {
        let Some(&(leaf, _)) = self.jobs.get(&job) else {
            return;
        };
        self.nodes[leaf as usize].jobs.sleep(job, key);
        self.refresh_ready(leaf);
    }

    /// Makes an asleep job ready again; false when it is not asleep.
    pub fn wake(&mut self, job: JobId) -> bool {
        let Some(&(leaf, _)) = self.jobs.get(&job) else {
            return false;
        };
        let woken = self.nodes[leaf as usize].jobs.wake(job);
        if woken {
            self.refresh_ready(leaf);
        }
        woken
    }

    /// Whether a job is asleep.
    pub fn is_asleep(&self, job: JobId) -> bool {
        self.jobs
            .get(&job)
            .is_some_and(|&(leaf, _)| self.nodes[leaf as usize].jobs.is_asleep(job))
    }

    /// Makes every parked job ready again and unblocks strict-fifo queues (the cluster
    /// changed). Asleep jobs stay asleep.
    pub fn unpark_all(&mut self) {
        for leaf in 0..self.nodes.len() as QueueId {
            let n = &mut self.nodes[leaf as usize];
            if n.jobs.parked_len() == 0 && !n.blocked {
                continue;
            }
            n.jobs.unpark_all();
            n.blocked = false;
            self.refresh_ready(leaf);
        }
    }

    /// Removes a job wherever it is, with its demand.
    pub fn remove(&mut self, job: JobId) {
        if let Some((leaf, demand)) = self.jobs.remove(&job) {
            self.nodes[leaf as usize].jobs.remove(job);
            self.add_pending(leaf, demand, false);
            self.refresh_ready(leaf);
        }
    }

    /// Updates the demand a queued job adds (some of its pods were placed).
    pub fn set_demand(&mut self, job: JobId, demand: Resources) {
        if let Some(&(leaf, old)) = self.jobs.get(&job) {
            self.add_pending(leaf, old, false);
            self.add_pending(leaf, demand, true);
            self.jobs.insert(job, (leaf, demand));
        }
    }

    /// Changes a queued job's order key.
    pub fn rekey_job(&mut self, job: JobId, new: OrderKey) {
        if let Some(&(leaf, _)) = self.jobs.get(&job) {
            self.nodes[leaf as usize].jobs.rekey(job, new);
        }
    }

    /// Jobs ready to be tried.
    pub fn ready_len(&self) -> usize {
        self.nodes.iter().map(|n| n.jobs.ready_len()).sum()
    }

    /// Jobs parked.
    pub fn parked_len(&self) -> usize {
        self.nodes.iter().map(|n| n.jobs.parked_len()).sum()
    }

    /// All queued jobs.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True when no job is queued.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Counts `amount` as allocated (or no longer) to queue `name` and its ancestors. A tree
    /// that creates queues on demand creates `name`; otherwise an unknown queue counts nothing,
    /// and [`QueueTree::recount`] puts the amount in place once the queue is configured.
    pub fn allocate(&mut self, queue: &str, amount: Resources, add: bool) {
        let q = match self.by_name.get(queue) {
            Some(&q) => Some(q),
            None if self.auto_create && !amount.is_zero() => self.leaf(queue).ok(),
            None => None,
        };
        if let Some(q) = q {
            self.allocate_at(q, amount, add);
        }
    }

    /// Replaces every allocation with `held` (what each job holds, by its queue's name): the
    /// tree counts exactly what the jobs hold, whatever was configured when they were placed.
    pub fn recount<'a>(&mut self, held: impl IntoIterator<Item = (&'a str, Resources)>) {
        for id in 0..self.nodes.len() {
            self.nodes[id].allocated = Resources::ZERO;
            self.rekey(id as QueueId);
        }
        for (queue, amount) in held {
            self.allocate(queue, amount, true);
        }
    }

    fn allocate_at(&mut self, leaf: QueueId, amount: Resources, add: bool) {
        let mut q = Some(leaf);
        while let Some(id) = q {
            let n = &mut self.nodes[id as usize];
            if add {
                n.allocated += amount;
            } else {
                n.allocated -= amount;
            }
            q = n.parent;
            self.rekey(id);
        }
    }

    /// What queue `name` may still be allocated: for each resource, the least of
    /// `capability - allocated` over the queue and its ancestors. This is the one place the
    /// capability invariant is computed; placing within it keeps `allocated + request <=
    /// capability` at every level.
    pub fn headroom(&self, queue: &str) -> Resources {
        let mut room = Resources([UNLIMITED; MAX_RESOURCES]);
        let mut q = self.by_name.get(queue).copied();
        while let Some(id) = q {
            let n = &self.nodes[id as usize];
            if let Some(cap) = n.spec.capability {
                room = room.min(&(limits(&cap) - n.allocated).clamp_zero());
            }
            q = n.parent;
        }
        room
    }

    /// The level and resource whose capability a request of `amount` in queue `name` would
    /// exceed, if any.
    pub fn over_capability(&self, queue: &str, amount: &Resources) -> Option<OverCapability> {
        let mut q = self.by_name.get(queue).copied();
        while let Some(id) = q {
            let n = &self.nodes[id as usize];
            if let Some(cap) = n.spec.capability {
                let after = n.allocated + *amount;
                let cap = limits(&cap);
                if let Some((r, _)) = after.iter_nonzero().find(|&(r, v)| v > cap.get(r)) {
                    return Some(OverCapability {
                        queue: n.spec.name.clone(),
                        resource: r,
                        capability: cap.get(r),
                        allocated: n.allocated.get(r),
                    });
                }
            }
            q = n.parent;
        }
        None
    }

    /// Deserved shares by queue id: configured ones as set; the others by weighted max-min
    /// water-filling of the parent's deserved share over the children's demand (allocated +
    /// pending), level by level from the root, whose share is the cluster.
    pub fn deserved_shares(&self) -> Vec<Resources> {
        let mut deserved = vec![Resources::ZERO; self.nodes.len()];
        deserved[ROOT as usize] = self.capacity;
        // Ids are in name order, so a parent always comes before its children.
        for p in 0..self.nodes.len() {
            let children = &self.nodes[p].children;
            if children.is_empty() {
                continue;
            }
            let mut available = deserved[p];
            for &c in children {
                if let Some(d) = self.nodes[c as usize].spec.deserved {
                    deserved[c as usize] = d;
                    available -= d;
                }
            }
            let open: Vec<QueueId> = children
                .iter()
                .copied()
                .filter(|&c| self.nodes[c as usize].spec.deserved.is_none())
                .collect();
            for lane in 0..MAX_RESOURCES {
                let wants: Vec<(u64, i64)> = open
                    .iter()
                    .map(|&c| {
                        let n = &self.nodes[c as usize];
                        let demand = n.allocated.0[lane].saturating_add(n.pending.0[lane]);
                        (n.spec.weight.max(1) as u64, demand.max(0))
                    })
                    .collect();
                let shares = water_fill(available.0[lane].max(0), &wants);
                for (&c, share) in open.iter().zip(shares) {
                    deserved[c as usize].0[lane] = share;
                }
            }
        }
        deserved
    }

    /// Every queue's state, in name order.
    pub fn info(&self) -> Vec<QueueInfo> {
        let deserved = self.deserved_shares();
        (0..self.nodes.len() as QueueId)
            .map(|q| {
                let n = &self.nodes[q as usize];
                QueueInfo {
                    spec: n.spec.clone(),
                    allocated: n.allocated,
                    deserved: deserved[q as usize],
                    pending: n.pending,
                    dominant_share: self.share(q) * n.spec.weight.max(1) as u64,
                    dominant_resource: self.dominant(q).map(|(r, _)| r),
                    ready: n.jobs.ready_len(),
                    parked: n.jobs.parked_len(),
                    leaf: n.children.is_empty(),
                }
            })
            .collect()
    }
}

/// What reclaim decides on: every queue's deserved share and allocation, frozen when a
/// blocked gang looks for victims, with what it has taken from each queue so far.
///
/// The rule, for a claimant queue `C` and a victim queue `V` whose paths part below their
/// lowest common ancestor `A`:
/// - `V`'s leaf is `reclaimable`, and every queue on `V`'s side below `A` holds more than its
///   deserved share of some resource the claimant asks for and the victim holds, and still
///   holds at least its share of each such resource once the victim is gone: only what a queue
///   borrowed is taken back, only victims that free what is asked for qualify, and a queue over
///   its share by less than a gang keeps it (no churn over fractions of a job when shares do
///   not divide evenly);
/// - every queue on `C`'s side below `A` stays within its deserved share once the claimant's
///   request is added: a queue never reclaims to go over what it deserves.
///
/// After reclaim, the victim side is still at or above its share and the claimant side not over
/// it, so the victim cannot reclaim back unless the deserved shares themselves move (the engine
/// adds a cool-down for that case).
#[derive(Debug, Clone)]
pub struct ReclaimLedger {
    /// Deserved share per queue id; a configured share's unnamed lanes are unlimited.
    deserved: Vec<Resources>,
    /// Allocation per queue id, less what was taken.
    allocated: Vec<Resources>,
}

impl QueueTree {
    /// Whether a job of queue `claimant` could reclaim from any queue at all: some other leaf
    /// queue is reclaimable and holds something. When not, no [`ReclaimLedger`] can name a
    /// victim queue (a ledger's allocations are at most the queues' own), so a caller may skip
    /// making one.
    pub fn may_reclaim_from_others(&self, claimant: &str) -> bool {
        let claimant = self.by_name.get(claimant).copied();
        self.nodes.iter().enumerate().any(|(q, n)| {
            Some(q as QueueId) != claimant
                && n.children.is_empty()
                && n.spec.reclaimable
                && !n.allocated.is_zero()
        })
    }

    /// A ledger of deserved shares and allocations as they stand, for one reclaim decision.
    pub fn reclaim_ledger(&self) -> ReclaimLedger {
        let deserved = self
            .deserved_shares()
            .into_iter()
            .zip(&self.nodes)
            .map(|(d, n)| {
                if n.spec.deserved.is_some() {
                    limits(&d)
                } else {
                    d
                }
            })
            .collect();
        ReclaimLedger {
            deserved,
            allocated: self.nodes.iter().map(|n| n.allocated).collect(),
        }
    }

    /// Whether a queue is strict-fifo (a blocked gang holds up the jobs behind it).
    pub fn strict_fifo(&self, queue: &str) -> bool {
        self.by_name
            .get(queue)
            .is_some_and(|&q| self.nodes[q as usize].spec.ordering == QueueOrdering::StrictFifo)
    }

    /// Whether queue `name` lets higher-priority jobs preempt lower-priority ones inside it.
    pub fn preemption(&self, queue: &str) -> bool {
        self.by_name
            .get(queue)
            .is_some_and(|&q| self.nodes[q as usize].spec.preemption)
    }

    /// The queue and its ancestors, leaf first.
    fn path(&self, q: QueueId) -> Vec<QueueId> {
        let mut path = vec![q];
        while let Some(p) = self.nodes[*path.last().expect("non-empty") as usize].parent {
            path.push(p);
        }
        path
    }
}

impl ReclaimLedger {
    /// The lanes in which queue `q` holds more than it deserves and `of` asks for something.
    fn over_in<'a>(
        &'a self,
        q: QueueId,
        of: &'a Resources,
    ) -> impl Iterator<Item = ResourceId> + 'a {
        let (a, d) = (&self.allocated[q as usize], &self.deserved[q as usize]);
        share_lanes().filter(move |&r| of.get(r) > 0 && a.get(r) > d.get(r))
    }

    /// Whether taking `amount` from queue `q` for a request of `request` frees something the
    /// request asks for that `q` holds beyond its share, and leaves `q` at or above its share
    /// in each such resource.
    fn yields(&self, q: QueueId, request: &Resources, amount: &Resources) -> bool {
        let a = &self.allocated[q as usize];
        let d = &self.deserved[q as usize];
        let mut lanes = self
            .over_in(q, request)
            .filter(|&r| amount.get(r) > 0)
            .peekable();
        lanes.peek().is_some() && lanes.all(|r| a.get(r) - amount.get(r) >= d.get(r))
    }

    fn within_with(&self, q: QueueId, request: &Resources) -> bool {
        let (a, d) = (&self.allocated[q as usize], &self.deserved[q as usize]);
        share_lanes()
            .filter(|&r| request.get(r) > 0)
            .all(|r| a.get(r).saturating_add(request.get(r)) <= d.get(r))
    }

    /// Whether a job of queue `claimant` asking for `request` may reclaim at all: its leaf stays
    /// within its deserved share. A cheap test before looking for victims.
    pub fn may_claim(&self, tree: &QueueTree, claimant: &str, request: &Resources) -> bool {
        tree.by_name
            .get(claimant)
            .is_some_and(|&c| self.within_with(c, request))
    }

    /// Whether a job of queue `claimant` asking for `request` may take `amount` from queue
    /// `victim` (see the type's docs). Never within one queue: that is preemption, by priority.
    pub fn may_take(
        &self,
        tree: &QueueTree,
        claimant: &str,
        victim: &str,
        request: &Resources,
        amount: &Resources,
    ) -> bool {
        let (Some(&c), Some(&v)) = (tree.by_name.get(claimant), tree.by_name.get(victim)) else {
            return false;
        };
        if c == v || !tree.nodes[v as usize].spec.reclaimable {
            return false;
        }
        let (cp, vp) = (tree.path(c), tree.path(v));
        // Below the common ancestor: the parts of the two paths that differ.
        let common = cp
            .iter()
            .rev()
            .zip(vp.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let c_side = &cp[..cp.len() - common];
        let v_side = &vp[..vp.len() - common];
        c_side.iter().all(|&q| self.within_with(q, request))
            && v_side.iter().all(|&q| self.yields(q, request, amount))
    }

    /// The leaf queues a job of queue `claimant` asking for `request` may take from now, in
    /// name order.
    pub fn victim_queues<'t>(
        &self,
        tree: &'t QueueTree,
        claimant: &str,
        request: &Resources,
    ) -> Vec<&'t str> {
        tree.by_name
            .iter()
            .filter(|&(_, &q)| {
                tree.nodes[q as usize].children.is_empty()
                    && self.over_in(q, request).next().is_some()
            })
            .map(|(name, _)| name.as_str())
            // Judged as if the victim held all of what is asked: which gangs of it qualify is
            // decided gang by gang.
            .filter(|victim| self.may_take(tree, claimant, victim, request, request))
            .collect()
    }

    /// Records `amount` taken from queue `victim` (and its ancestors).
    pub fn take(&mut self, tree: &QueueTree, victim: &str, amount: Resources) {
        if let Some(&v) = tree.by_name.get(victim) {
            for q in tree.path(v) {
                self.allocated[q as usize] -= amount;
            }
        }
    }
}

/// A capability or deserved share limits only the resources it names: a lane it leaves at zero
/// is unlimited. (The fixed vector cannot tell an explicit 0 from an absent resource, so a cap
/// of zero on one resource is not expressible; cap the queue at the parent instead.)
fn limits(r: &Resources) -> Resources {
    Resources(r.0.map(|v| if v == 0 { UNLIMITED } else { v }))
}

fn below_guarantee(allocated: &Resources, guarantee: &Resources) -> bool {
    share_lanes().any(|r| guarantee.get(r) > 0 && allocated.get(r) < guarantee.get(r))
}

/// Weighted max-min fair division of `available` among `(weight, demand)` claimants: nobody
/// gets more than it demands, and what one does not need goes to the others by weight.
pub fn water_fill(available: i64, wants: &[(u64, i64)]) -> Vec<i64> {
    let mut given = vec![0i64; wants.len()];
    let mut open: Vec<usize> = (0..wants.len()).filter(|&i| wants[i].1 > 0).collect();
    let mut left = available as i128;
    while !open.is_empty() && left > 0 {
        let total: i128 = open.iter().map(|&i| wants[i].0 as i128).sum();
        let mut saturated = Vec::new();
        for &i in &open {
            let share = left * wants[i].0 as i128 / total;
            if (wants[i].1 - given[i]) as i128 <= share {
                saturated.push(i);
            }
        }
        if saturated.is_empty() {
            for &i in &open {
                given[i] += (left * wants[i].0 as i128 / total) as i64;
            }
            break;
        }
        for &i in &saturated {
            left -= (wants[i].1 - given[i]) as i128;
            given[i] = wants[i].1;
        }
        open.retain(|i| !saturated.contains(i));
    }
    given
}

fn validate(spec: &QueueSpec) -> Result<(), QueueConfigError> {
    let name = &spec.name;
    let ok = name == "root"
        || (name.starts_with("root.")
            && name.split('.').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }));
    if !ok {
        return Err(QueueConfigError::BadName {
            queue: name.clone(),
        });
    }
    if !(1..=65535).contains(&spec.weight) {
        return Err(QueueConfigError::Weight {
            queue: name.clone(),
            weight: spec.weight,
        });
    }
    let unlimited = Resources([UNLIMITED; MAX_RESOURCES]);
    let deserved = spec.deserved.as_ref().map_or(unlimited, limits);
    let capability = spec.capability.as_ref().map_or(unlimited, limits);
    let pairs = [
        ("guarantee", &spec.guarantee, "deserved", &deserved),
        ("deserved", &deserved, "capability", &capability),
        ("guarantee", &spec.guarantee, "capability", &capability),
    ];
    for (lower, lo, upper, hi) in pairs {
        for lane in 0..MAX_RESOURCES as u8 {
            let r = ResourceId(lane);
            if lo.get(r) > hi.get(r) && lo.get(r) != UNLIMITED {
                return Err(QueueConfigError::Order {
                    queue: name.clone(),
                    resource: lane_name(r),
                    lower,
                    lower_amount: lo.get(r),
                    upper,
                    upper_amount: hi.get(r),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_model::Time;

    fn gpus(n: i64) -> Resources {
        Resources::of(ResourceId::GPU, n)
    }

    fn spec(name: &str, weight: u32) -> QueueSpec {
        QueueSpec {
            weight,
            ..QueueSpec::new(name)
        }
    }

    fn key(id: JobId) -> OrderKey {
        OrderKey::new(0, Default::default(), Time(id as u64), id)
    }

    #[test]
    fn validation_names_the_queue_and_field() {
        let bad = |s: QueueSpec| QueueTree::configured(&[s]).unwrap_err().to_string();
        assert_eq!(
            bad(spec("team", 1)),
            "queue \"team\": name must be a dotted path under root, like root.team.sub"
        );
        assert_eq!(
            bad(spec("root.a", 0)),
            "queue root.a: weight 0 is outside 1..=65535"
        );
        let mut s = spec("root.a", 1);
        s.guarantee = gpus(8);
        s.capability = Some(gpus(4));
        assert_eq!(
            bad(s),
            "queue root.a: guarantee 8 of nvidia.com/gpu is above capability 4"
        );
        let mut parent = spec("root.p", 1);
        parent.guarantee = gpus(4);
        let mut a = spec("root.p.a", 1);
        a.guarantee = gpus(3);
        let mut b = spec("root.p.b", 1);
        b.guarantee = gpus(2);
        let e = QueueTree::configured(&[parent, a, b]).unwrap_err();
        assert!(matches!(
            e,
            QueueConfigError::ChildGuarantees {
                children: 5,
                guarantee: 4,
                ..
            }
        ));
        assert!(matches!(
            QueueTree::configured(&[spec("root.a", 1), spec("root.a", 2)]),
            Err(QueueConfigError::Duplicate { .. })
        ));
    }

    #[test]
    fn reclaim_from_others_needs_another_reclaimable_queue_holding_something() {
        let mut fixed = spec("root.fixed", 1);
        fixed.reclaimable = false;
        let mut t = QueueTree::configured(&[spec("root.a", 1), spec("root.b", 1), fixed]).unwrap();
        t.set_capacity(gpus(100));
        // Nobody holds anything: nothing to reclaim from.
        assert!(!t.may_reclaim_from_others("root.a"));
        // Only the claimant holds: still nothing.
        t.allocate("root.a", gpus(10), true);
        assert!(!t.may_reclaim_from_others("root.a"));
        // A queue that may not be reclaimed from does not count.
        t.allocate("root.fixed", gpus(10), true);
        assert!(!t.may_reclaim_from_others("root.a"));
        // Another reclaimable queue holds: a ledger is worth making, for either side.
        t.allocate("root.b", gpus(10), true);
        assert!(t.may_reclaim_from_others("root.a"));
        assert!(t.may_reclaim_from_others("root.b"));
        // A queue the tree does not know claims from all of them.
        assert!(t.may_reclaim_from_others("root.unknown"));
    }

    #[test]
    fn siblings_take_turns_by_weighted_dominant_share() {
        let mut t = QueueTree::configured(&[spec("root.a", 1), spec("root.b", 3)]).unwrap();
        t.set_capacity(gpus(100));
        for j in 0..4 {
            t.push(j, "root.a", key(j), gpus(10)).unwrap();
            t.push(10 + j, "root.b", key(10 + j), gpus(10)).unwrap();
        }
        // Both at zero: the name breaks the tie.
        let (first, _) = t.pop().unwrap();
        assert_eq!(first, 0);
        t.allocate("root.a", gpus(10), true);
        // a: 10% / 1, b: 0% -> b; then b 10% / 3 < a 10% -> b again, until b's 30% / 3 = a's.
        let mut order = Vec::new();
        for _ in 0..4 {
            let (j, _) = t.pop().unwrap();
            order.push(j);
            t.allocate(if j < 10 { "root.a" } else { "root.b" }, gpus(10), true);
        }
        assert_eq!(order, vec![10, 11, 12, 1]);
    }

    #[test]
    fn a_queue_below_its_guarantee_goes_first() {
        let mut g = spec("root.small", 1);
        g.guarantee = gpus(20);
        let mut t = QueueTree::configured(&[g, spec("root.big", 100)]).unwrap();
        t.set_capacity(gpus(100));
        t.allocate("root.small", gpus(10), true);
        t.push(1, "root.big", key(1), gpus(1)).unwrap();
        t.push(2, "root.small", key(2), gpus(1)).unwrap();
        assert_eq!(t.pop().unwrap().0, 2, "below guarantee beats a lower share");
    }

    #[test]
    fn headroom_is_the_tightest_cap_up_the_tree() {
        let mut p = spec("root.org", 1);
        p.capability = Some(gpus(10));
        let mut c = spec("root.org.team", 1);
        c.capability = Some(gpus(8));
        let mut t = QueueTree::configured(&[p, c, spec("root.org.other", 1)]).unwrap();
        t.allocate("root.org.other", gpus(4), true);
        assert_eq!(t.headroom("root.org.team").get(ResourceId::GPU), 6);
        t.allocate("root.org.team", gpus(5), true);
        assert_eq!(t.headroom("root.org.team").get(ResourceId::GPU), 1);
        let over = t.over_capability("root.org.team", &gpus(2)).unwrap();
        assert_eq!(
            (over.queue.as_str(), over.capability, over.allocated),
            ("root.org", 10, 9)
        );
        assert_eq!(t.headroom("root.default").get(ResourceId::GPU), UNLIMITED);
    }

    #[test]
    fn strict_fifo_blocks_behind_its_head_and_best_effort_does_not() {
        let mut s = spec("root.strict", 1);
        s.ordering = QueueOrdering::StrictFifo;
        let mut t = QueueTree::configured(&[s, spec("root.loose", 1)]).unwrap();
        for (j, q) in [
            (0, "root.strict"),
            (1, "root.strict"),
            (2, "root.loose"),
            (3, "root.loose"),
        ] {
            t.push(j, q, key(j), Resources::ZERO).unwrap();
        }
        let mut seen = Vec::new();
        while let Some((j, k)) = t.pop() {
            seen.push(j);
            t.park(j, k, true);
        }
        // Equal shares: root.loose sorts first. Job 1 never comes: it waits behind its head.
        assert_eq!(seen, vec![2, 3, 0]);
        t.unpark_all();
        assert_eq!(t.ready_len(), 4);
    }

    #[test]
    fn water_filling_gives_unused_share_to_siblings() {
        // 90 to split 1:1:1; one asks for 10, so the others get 40 each.
        assert_eq!(
            water_fill(90, &[(1, 10), (1, 100), (1, 100)]),
            vec![10, 40, 40]
        );
        assert_eq!(water_fill(90, &[(1, 100), (2, 100)]), vec![30, 60]);
        assert_eq!(water_fill(90, &[(1, 0), (1, 5)]), vec![0, 5]);
        let mut t = QueueTree::configured(&[spec("root.a", 1), spec("root.b", 2)]).unwrap();
        t.set_capacity(gpus(90));
        t.push(1, "root.a", key(1), gpus(100)).unwrap();
        t.push(2, "root.b", key(2), gpus(100)).unwrap();
        let info = t.info();
        let d = |n: &str| {
            info.iter()
                .find(|i| i.spec.name == n)
                .unwrap()
                .deserved
                .get(ResourceId::GPU)
        };
        assert_eq!((d("root.a"), d("root.b")), (30, 60));
    }

    #[test]
    fn unconfigured_trees_create_queues_and_configuring_keeps_jobs() {
        let mut t = QueueTree::new();
        t.push(1, "root.team-a", key(1), gpus(1)).unwrap();
        t.allocate("root.team-a", gpus(2), true);
        assert_eq!(t.len(), 1);
        let lost = t.configure(&[spec("root.team-b", 1)]).unwrap();
        assert_eq!(lost, vec![1], "root.team-a is gone");
        assert_eq!(
            t.push(1, "root.team-a", key(1), gpus(1)),
            Err(PlacementError::NotFound("root.team-a".into()))
        );
        assert_eq!(
            t.push(2, "root", key(2), gpus(1)),
            Err(PlacementError::NotLeaf("root".into()))
        );
        // A bad configuration leaves the old one in force.
        assert!(t.configure(&[spec("root.x", 0)]).is_err());
        assert!(t.push(3, "root.team-b", key(3), gpus(1)).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A leaf: guarantee, allocation at the start, weight.
        type Leaf = (i64, i64, u32);
        /// A job: its leaf, its GPUs.
        type Waiting = (usize, i64);

        /// Two teams of three leaves; guarantees on leaves (within their team's), start
        /// allocations and jobs at random.
        fn arb_tree() -> impl Strategy<Value = (Vec<Leaf>, Vec<Waiting>)> {
            (
                prop::collection::vec((0i64..12, 0i64..12, 1u32..5), 6),
                prop::collection::vec((0usize..6, 1i64..4), 1..60),
            )
        }

        fn leaf(i: usize) -> String {
            format!("root.t{}.q{}", i / 3, i % 3)
        }

        proptest! {
            /// At every level, while some sibling with jobs waiting is below its guarantee,
            /// the next job comes from a sibling below its guarantee; placing jobs one after
            /// another keeps that true as allocations move.
            #[test]
            fn below_guarantee_is_served_before_above((leaves, jobs) in arb_tree()) {
                let mut specs = Vec::new();
                for team in 0..2 {
                    let mut t = spec(&format!("root.t{team}"), 1);
                    t.guarantee = gpus(leaves[team * 3..team * 3 + 3].iter().map(|l| l.0).sum());
                    specs.push(t);
                }
                for (i, &(guarantee, _, weight)) in leaves.iter().enumerate() {
                    let mut q = spec(&leaf(i), weight);
                    q.guarantee = gpus(guarantee);
                    specs.push(q);
                }
                let mut t = QueueTree::configured(&specs).unwrap();
                t.set_capacity(gpus(1000));
                for (i, &(_, start, _)) in leaves.iter().enumerate() {
                    t.allocate(&leaf(i), gpus(start), true);
                }
                let mut demand = BTreeMap::new();
                for (j, &(q, n)) in jobs.iter().enumerate() {
                    t.push(j as JobId, &leaf(q), key(j as JobId), gpus(n)).unwrap();
                    demand.insert(j as JobId, (q, n));
                }
                let info = |t: &QueueTree, name: &str| {
                    let id = t.by_name[name] as usize;
                    (
                        t.nodes[id].ready > 0,
                        below_guarantee(&t.nodes[id].allocated, &t.nodes[id].spec.guarantee),
                    )
                };
                while let Some((j, _)) = t.pop() {
                    let (q, n) = demand[&j];
                    // Teams, then the team's leaves (the popped job has left its leaf's count:
                    // it still had work waiting if it was ready before the pop).
                    let chosen_team = format!("root.t{}", q / 3);
                    let teams_below: Vec<bool> = (0..2)
                        .map(|team| format!("root.t{team}"))
                        .filter(|name| *name == chosen_team || info(&t, name).0)
                        .map(|name| info(&t, &name).1)
                        .collect();
                    if teams_below.iter().any(|&b| b) {
                        prop_assert!(info(&t, &chosen_team).1, "a team above its guarantee went first");
                    }
                    let leaves_below: Vec<bool> = (0..3)
                        .map(|k| leaf(q / 3 * 3 + k))
                        .filter(|name| *name == leaf(q) || info(&t, name).0)
                        .map(|name| info(&t, &name).1)
                        .collect();
                    if leaves_below.iter().any(|&b| b) {
                        prop_assert!(info(&t, &leaf(q)).1, "a leaf above its guarantee went first");
                    }
                    t.allocate(&leaf(q), gpus(n), true);
                    t.remove(j);
                }
            }
        }
    }
}
