//! Placing one gang: a transaction over the [`Snapshot`].
//!
//! Pods of a task are identical, so a task is placed *by shape*: walk the nodes its class
//! indexes say can hold one, and put as many pods on each as fit (binpack) or one per node,
//! emptiest first (spread). Every change is logged; if the gang cannot have its minimum, the
//! log is undone in reverse (kube-scheduler's `revertFns`) and the snapshot is exactly as before.
//!
//! ```text
//!   begin --assume pod group by group--> all minimums met? --yes--> commit (log dropped)
//!                                              |
//!                                              no --> rollback (log undone in reverse) + FitError
//! ```
//!
//! GPU pods are packed fragmentation-aware: among the distinct free-GPU counts that can take the
//! pod, pick the one where placing leaves the fewest GPUs that the cluster's common GPU requests
//! could not use (after "Beware of Fragmentation", Weng et al., ATC '23), then the fullest.

use foldhash::fast::FixedState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use phalanx_model::{FilterReason, FitError, Lanes, PodSpec, ResourceId, Resources, Shortfall};
use serde::{Deserialize, Serialize};

use crate::snapshot::{Change, ClassId, NodeId, Snapshot};

/// How to choose among nodes that fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScorePolicy {
    /// Fill the fullest node that fits first; keeps whole nodes free for large pods and gangs.
    #[default]
    Binpack,
    /// Put each pod on the emptiest node that fits; spreads load and failure domains.
    Spread,
}

/// How many pods asked for each GPU count: the "common GPU requests" fragmentation is measured
/// against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuDemand {
    pods_by_gpus: BTreeMap<i64, u64>,
}

impl GpuDemand {
    /// Counts `pods` pods of `gpus` GPUs each.
    pub fn add(&mut self, gpus: i64, pods: u64) {
        if gpus > 0 && pods > 0 {
            *self.pods_by_gpus.entry(gpus).or_default() += pods;
        }
    }

    /// Weighted count of `free` GPUs that requests of the common sizes could not use.
    fn fragmentation(&self, free: i64) -> i128 {
        self.pods_by_gpus
            .iter()
            .map(|(&size, &pods)| {
                let stranded = if size > free { free } else { free % size };
                stranded as i128 * pods as i128
            })
            .sum()
    }
}

/// One logged change, undone in reverse on rollback.
#[derive(Debug, Clone, Copy)]
enum Undo {
    Assume(NodeId, Resources),
    Reserve(NodeId, Resources),
    Unreserve(NodeId, Resources),
}

/// Pods of one task placed on one node by a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Task index.
    pub task: u32,
    /// Node.
    pub node: NodeId,
    /// How many pods.
    pub count: u32,
}

/// A gang placement in progress: the changes made so far and how to undo them. It ends in
/// [`Transaction::rollback`] or [`Transaction::commit`]: dropped on the floor, it would leave
/// the snapshot changed with nobody accounting for it.
#[derive(Debug)]
#[must_use = "a transaction ends in Transaction::rollback or Transaction::commit"]
pub struct Transaction {
    undo: Vec<Undo>,
    /// Pods placed so far, group by group.
    pub placements: Vec<Placement>,
    /// Capacity held for this job per node, as it stands inside the transaction.
    pub reservations: BTreeMap<NodeId, Resources>,
    /// Nodes looked at.
    pub scanned: u64,
    /// What the job's queue may still be allocated (its headroom under every capability):
    /// placements and holds stop there.
    pub budget: Resources,
    /// The snapshot's generation and change-log position before the transaction's first
    /// change: a rollback restores the snapshot exactly, and both with it.
    start: Option<(u64, u64)>,
}

/// A task's pod shape, with the node classes its static filters admit, best first.
pub struct Shape<'a> {
    /// Task index.
    pub task: u32,
    /// The pod template.
    pub spec: &'a PodSpec,
    /// One pod's request, `pods` lane included.
    pub request: Resources,
    /// The lanes `request` names, for counting pods that fit.
    pub lanes: Lanes,
    /// Admitted classes with their preference tier (lower is better), best first.
    pub classes: Vec<(u8, ClassId)>,
}

impl<'a> Shape<'a> {
    /// The shape of a task, and the classes that admit it.
    pub fn new(snap: &Snapshot, task: u32, spec: &'a PodSpec) -> Self {
        let mut request = spec.requests;
        request.set(ResourceId::PODS, 1);
        let wants_gpu = request.get(ResourceId::GPU) > 0;
        let mut classes: Vec<(u8, ClassId)> = snap
            .classes()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.members > 0 && c.static_filter(spec).is_none())
            .map(|(i, c)| {
                // A pod without GPUs on a GPU node strands the node's GPUs: last resort.
                let strands_gpus = !wants_gpu && c.gpu_members > 0;
                let tier = (c.prefers_not(spec) as u8) * 2 + strands_gpus as u8;
                (tier, i as ClassId)
            })
            .collect();
        classes.sort_unstable();
        Shape {
            task,
            spec,
            request,
            lanes: Lanes::positive(&request),
            classes,
        }
    }

    /// Whether the admitted nodes together have room for `pods` pods, lane by lane. False means
    /// no placement exists; true does not promise one.
    pub fn may_fit(
        &self,
        snap: &Snapshot,
        pods: u32,
        reserved: &BTreeMap<NodeId, Resources>,
    ) -> bool {
        let mut free = reserved.values().fold(Resources::ZERO, |a, r| a + *r);
        for &(_, c) in &self.classes {
            free += snap.classes()[c as usize].free_total;
        }
        self.request.times(pods as u64).fits_in(&free)
    }
}

impl Transaction {
    /// Starts a transaction for a job holding `reservations`.
    pub fn begin(reservations: BTreeMap<NodeId, Resources>) -> Self {
        Transaction {
            undo: Vec::new(),
            placements: Vec::new(),
            reservations,
            scanned: 0,
            budget: Resources([i64::MAX; phalanx_model::MAX_RESOURCES]),
            start: None,
        }
    }

    /// Notes the snapshot's generation and log position before the first change.
    fn changing(&mut self, snap: &Snapshot) {
        self.start
            .get_or_insert((snap.generation(), snap.log_position()));
    }

    /// Whether counts of room speak for this transaction: it has changed nothing yet (the
    /// snapshot is the one counts are kept of) and holds no room for the job.
    fn counts_room(&self) -> bool {
        self.start.is_none() && self.reservations.is_empty()
    }

    /// Limits what the transaction may place and hold to `budget` (a queue's headroom).
    pub fn with_budget(mut self, budget: Resources) -> Self {
        self.budget = budget;
        self
    }

    /// Pods placed so far.
    pub fn placed(&self) -> u32 {
        self.placements.iter().map(|p| p.count).sum()
    }

    /// Keeps every change: the snapshot stays as the transaction left it, and the caller takes
    /// the pods placed and the room now held for the job (to record them as assumed and held).
    pub fn commit(self) -> (Vec<Placement>, BTreeMap<NodeId, Resources>) {
        (self.placements, self.reservations)
    }

    /// Undoes every change in reverse order; the snapshot is as it was at [`Transaction::begin`].
    pub fn rollback(self, snap: &mut Snapshot) {
        for u in self.undo.into_iter().rev() {
            match u {
                Undo::Assume(n, r) => snap.release(n, r),
                Undo::Reserve(n, r) => snap.unreserve(n, r),
                Undo::Unreserve(n, r) => snap.reserve(n, r),
            }
        }
        if let Some((generation, position)) = self.start {
            snap.restore(generation, position);
        }
    }

    /// Places `count` pods of `shape` on `node`, using this job's reservation there first.
    fn assume(&mut self, snap: &mut Snapshot, shape: &Shape<'_>, node: NodeId, count: u32) {
        self.changing(snap);
        let amount = shape.request.times(count as u64);
        // Capacity already held for the job is already counted against its queue.
        let mut used = Resources::ZERO;
        if let Some(held) = self.reservations.get_mut(&node) {
            used = held.min(&amount).clamp_zero();
            if !used.is_zero() {
                *held -= used;
                snap.unreserve(node, used);
                self.undo.push(Undo::Unreserve(node, used));
            }
            if held.is_zero() {
                self.reservations.remove(&node);
            }
        }
        snap.assume(node, amount);
        self.undo.push(Undo::Assume(node, amount));
        self.budget -= amount - used;
        match self.placements.last_mut() {
            Some(p) if p.task == shape.task && p.node == node => p.count += count,
            _ => self.placements.push(Placement {
                task: shape.task,
                node,
                count,
            }),
        }
    }

    /// How many pods of `shape` fit on `node` for this job (its own reservation counts as free).
    fn fits_on(&self, snap: &Snapshot, shape: &Shape<'_>, node: NodeId) -> u64 {
        let free = snap.node(node).free();
        let fit = match self.reservations.get(&node) {
            Some(held) => (*free + *held).count_fitting_lanes(&shape.request, shape.lanes),
            None => free.count_fitting_lanes(&shape.request, shape.lanes),
        };
        fit.min(self.budget.count_fitting_lanes(&shape.request, shape.lanes))
    }

    /// Places up to `want` pods of `shape`; returns how many it placed.
    pub fn place(
        &mut self,
        snap: &mut Snapshot,
        shape: &Shape<'_>,
        want: u32,
        policy: ScorePolicy,
        gpus: &GpuDemand,
    ) -> u32 {
        if want == 0 {
            return 0;
        }
        let mut left = want;
        // Room held for this job comes first: that is what it was held for.
        let held: Vec<NodeId> = self.reservations.keys().copied().collect();
        for node in held {
            if left == 0 {
                break;
            }
            let entry = snap.node(node);
            let admitted = entry.live && shape.classes.iter().any(|&(_, c)| c == entry.class);
            if admitted {
                self.scanned += 1;
                let m = self.fits_on(snap, shape, node).min(left as u64) as u32;
                if m > 0 {
                    self.assume(snap, shape, node, m);
                    left -= m;
                }
            }
        }
        let gpu = shape.request.get(ResourceId::GPU);
        match policy {
            ScorePolicy::Binpack if gpu > 0 => {
                while left > 0 {
                    let Some((node, m)) = self.best_gpu_node(snap, shape, left, gpus) else {
                        break;
                    };
                    self.assume(snap, shape, node, m);
                    left -= m;
                }
            }
            ScorePolicy::Binpack => left = self.best_fit_cpu(snap, shape, left, None),
            ScorePolicy::Spread => {
                while left > 0 {
                    let Some(node) = self.emptiest_node(snap, shape, gpu > 0) else {
                        break;
                    };
                    self.assume(snap, shape, node, 1);
                    left -= 1;
                }
            }
        }
        want - left
    }

    /// The pods of `shape` a walk would place now, from the count of room kept for the shape:
    /// known only while the transaction has changed nothing and holds no room for the job.
    pub fn counted_room(
        &self,
        snap: &Snapshot,
        shape: &Shape<'_>,
        policy: ScorePolicy,
        rooms: &mut RoomMemo,
    ) -> Option<u64> {
        if !self.counts_room() {
            return None;
        }
        let room = rooms.room(snap, shape, policy)?;
        Some(room.min(self.budget.count_fitting_lanes(&shape.request, shape.lanes)))
    }

    /// [`Transaction::place`], keeping in `rooms` the count a walk that found the nodes short
    /// took on the way (it visited every node the shape may use and took all there was).
    pub fn place_counting(
        &mut self,
        snap: &mut Snapshot,
        shape: &Shape<'_>,
        want: u32,
        policy: ScorePolicy,
        gpus: &GpuDemand,
        rooms: &mut RoomMemo,
    ) -> u32 {
        let counts = want > 0 && self.counts_room();
        let budget_pods = self.budget.count_fitting_lanes(&shape.request, shape.lanes);
        let state = (snap.generation(), snap.log_position());
        let binpack_cpu = policy == ScorePolicy::Binpack && shape.request.get(ResourceId::GPU) <= 0;
        if counts
            && binpack_cpu
            && rooms.room(snap, shape, policy).is_some()
            && let Some(nodes) = rooms.nodes(snap, shape, policy)
        {
            return want - self.best_fit_cpu(snap, shape, want, Some(&nodes));
        }
        let got = self.place(snap, shape, want, policy, gpus);
        if counts && got < want && (got as u64) < budget_pods {
            rooms.record(shape, policy, state, got as u64);
        }
        got
    }

    /// Binpack without GPUs: classes best first; in each, nodes in ascending free cpu from the
    /// pod's request up, as many pods on each as fit. With `fitting` (the nodes with room for a
    /// pod, see [`RoomMemo`]), only those are visited, in the same order.
    fn best_fit_cpu(
        &mut self,
        snap: &mut Snapshot,
        shape: &Shape<'_>,
        mut left: u32,
        fitting: Option<&[(ClassId, i64, NodeId)]>,
    ) -> u32 {
        let cpu = shape.request.get(ResourceId::CPU);
        let mut picks: Vec<(NodeId, u32)> = Vec::new();
        for &(_, c) in &shape.classes {
            picks.clear();
            let nodes: Box<dyn Iterator<Item = NodeId> + '_> = match fitting {
                Some(walk) => {
                    let from = walk.partition_point(|&(class, free, _)| (class, free) < (c, cpu));
                    let to = walk.partition_point(|&(class, ..)| class <= c);
                    Box::new(walk[from..to.max(from)].iter().map(|&(_, _, n)| n))
                }
                None => Box::new(
                    snap.classes()[c as usize]
                        .by_cpu
                        .range((cpu, 0)..)
                        .map(|&(_, n)| n),
                ),
            };
            // Picks are applied after the walk, so the queue's budget is counted down here.
            let mut budget = self.budget.count_fitting_lanes(&shape.request, shape.lanes);
            for node in nodes {
                self.scanned += 1;
                let m = self.fits_on(snap, shape, node).min(left as u64).min(budget) as u32;
                budget -= m as u64;
                if m > 0 {
                    picks.push((node, m));
                    left -= m;
                    if left == 0 {
                        break;
                    }
                }
            }
            for &(node, m) in &picks {
                self.assume(snap, shape, node, m);
            }
            if left == 0 {
                break;
            }
        }
        left
    }

    /// Binpack with GPUs: the node whose free-GPU count, after taking as many pods as fit (up
    /// to `left`), strands the fewest GPUs; ties to the fuller node, then the better class.
    fn best_gpu_node(
        &mut self,
        snap: &Snapshot,
        shape: &Shape<'_>,
        left: u32,
        gpus: &GpuDemand,
    ) -> Option<(NodeId, u32)> {
        let gpu = shape.request.get(ResourceId::GPU);
        let mut best: Option<((u8, i128, i64), NodeId, u32)> = None;
        for &(tier, c) in &shape.classes {
            if best.as_ref().is_some_and(|b| b.0.0 < tier) {
                break;
            }
            let index = &snap.classes()[c as usize].by_gpu;
            let mut from = gpu;
            // One candidate per distinct free-GPU count: the first node with that count that
            // also has the cpu, memory and pod slots.
            while let Some(&(free_gpus, _)) = index.range((from, 0)..).next() {
                for &(_, node) in index.range((free_gpus, 0)..(free_gpus + 1, 0)) {
                    self.scanned += 1;
                    let m = self.fits_on(snap, shape, node).min(left as u64) as u32;
                    if m > 0 {
                        let after = free_gpus - gpu * m as i64;
                        let delta = gpus.fragmentation(after) - gpus.fragmentation(free_gpus);
                        let key = (tier, delta, free_gpus);
                        if best.as_ref().is_none_or(|b| key < b.0) {
                            best = Some((key, node, m));
                        }
                        break;
                    }
                }
                from = free_gpus + 1;
            }
        }
        best.map(|(_, node, m)| (node, m))
    }

    /// Spread: the node with the most free cpu (or GPUs) that fits one pod, best class tier first.
    fn emptiest_node(
        &mut self,
        snap: &Snapshot,
        shape: &Shape<'_>,
        by_gpu: bool,
    ) -> Option<NodeId> {
        let mut best: Option<((u8, std::cmp::Reverse<i64>), NodeId)> = None;
        for &(tier, c) in &shape.classes {
            if best.as_ref().is_some_and(|b| b.0.0 < tier) {
                break;
            }
            let class = &snap.classes()[c as usize];
            let index = if by_gpu { &class.by_gpu } else { &class.by_cpu };
            for &(free, node) in index.iter().rev() {
                self.scanned += 1;
                if self.fits_on(snap, shape, node) > 0 {
                    let key = (tier, std::cmp::Reverse(free));
                    if best.as_ref().is_none_or(|b| key < b.0) {
                        best = Some((key, node));
                    }
                    break;
                }
            }
        }
        best.map(|(_, node)| node)
    }

    /// Gives back `amount` of the job's hold on `node`.
    pub fn unreserve(&mut self, snap: &mut Snapshot, node: NodeId, amount: Resources) {
        self.changing(snap);
        if let Some(held) = self.reservations.get_mut(&node) {
            *held -= amount;
            if held.is_zero() {
                self.reservations.remove(&node);
            }
        }
        snap.unreserve(node, amount);
        self.undo.push(Undo::Unreserve(node, amount));
    }

    /// Holds `amount` for the job on nodes its shapes admit, fullest first; false (with
    /// partial holds logged for rollback) when the nodes do not have it all.
    pub fn reserve(&mut self, snap: &mut Snapshot, classes: &[ClassId], amount: Resources) -> bool {
        self.changing(snap);
        let mut left = amount.clamp_zero();
        for &c in classes {
            let nodes: Vec<NodeId> = snap.classes()[c as usize]
                .by_cpu
                .iter()
                .map(|&(_, n)| n)
                .collect();
            for node in nodes {
                if left.is_zero() {
                    return true;
                }
                self.scanned += 1;
                let take = snap
                    .node(node)
                    .free()
                    .clamp_zero()
                    .min(&left)
                    .min(&self.budget.clamp_zero());
                if !take.is_zero() {
                    left -= take;
                    snap.reserve(node, take);
                    self.undo.push(Undo::Reserve(node, take));
                    self.budget -= take;
                    *self.reservations.entry(node).or_default() += take;
                }
            }
        }
        left.is_zero()
    }
}

/// How many pods of one shape the nodes have room for, by shape, followed through the
/// snapshot's change log: in a full cluster, a gang that cannot have its minimum is known to
/// miss from this count without walking every node, and gangs of one shape share it.
///
/// The count is exactly what a placement walk of that shape would place with no room held for
/// the job and no queue budget in the way ([`Transaction::place`] places `min(room, budget,
/// want)`), so using it never changes a decision. It is only kept from a walk that found the
/// nodes short (which visited them all) and brought forward change by change; when the log no
/// longer reaches back to it, it is dropped and the next walk counts again.
#[derive(Debug, Clone, Default)]
pub struct RoomMemo {
    rooms: HashMap<RoomKey, Room, FixedState>,
    /// The last long stretches of the change log read, folded per node.
    folds: Folds,
    /// Placements answered from a count, since the engine started.
    pub hits: u64,
    /// Walks that found the nodes short (a count taken).
    pub misses: u64,
}

/// A pod shape as placement sees it: one pod's request, the classes that admit it, the policy.
/// What [`RoomMemo`] counts room for, and what a gang asleep until its shape has room waits on.
///
/// Its hash is worked out once, when it is made: the wake-up check looks the counts of every
/// asleep shape up each cycle, and hashing a request is hashing 16 lanes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomKey {
    /// Of the fields below (first, so that unequal keys differ at once).
    hash: u64,
    request: Resources,
    lanes: Lanes,
    classes: Vec<ClassId>,
    policy: ScorePolicy,
}

impl std::hash::Hash for RoomKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A count of pods and the snapshot state it is true at, with the nodes that have room for
/// one pod once a placement has asked for them.
#[derive(Debug, Clone)]
struct Room {
    pods: u64,
    position: u64,
    generation: u64,
    /// Every node with room for a pod: what a binpack walk visits of the class's `by_cpu`
    /// index, less the nodes it would find short.
    nodes: Option<NodeSet>,
}

/// A set of node ids, a bit per node: following a change costs a bit, and the walk's order
/// (class, free cpu, node) is made when a placement asks (see [`RoomMemo::nodes`]).
#[derive(Debug, Clone, Default)]
struct NodeSet {
    bits: Vec<u64>,
    len: usize,
}

impl NodeSet {
    fn insert(&mut self, node: NodeId) {
        let (word, bit) = (node as usize / 64, 1u64 << (node % 64));
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & bit == 0 {
            self.bits[word] |= bit;
            self.len += 1;
        }
    }

    fn remove(&mut self, node: NodeId) {
        let (word, bit) = (node as usize / 64, 1u64 << (node % 64));
        if let Some(w) = self.bits.get_mut(word)
            && *w & bit != 0
        {
            *w &= !bit;
            self.len -= 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.bits.iter().enumerate().flat_map(|(word, &bits)| {
            let mut left = bits;
            std::iter::from_fn(move || {
                if left == 0 {
                    return None;
                }
                let bit = left.trailing_zeros();
                left &= left - 1;
                Some((word * 64) as NodeId + bit as NodeId)
            })
        })
    }
}

/// The changes since one snapshot state, folded per node: the room before its first change and
/// after its last, in order of first change. Counts taken at that state (asleep shapes, brought
/// forward together each cycle) follow this shorter list instead of the whole log.
#[derive(Debug, Clone, Default)]
struct Folded {
    /// The state the changes start from: `(position, generation)`.
    from: (u64, u64),
    /// The state they reach: `(position, generation)` (generations are never reused, so a
    /// state rolled back and changed again is a different one).
    to: (u64, u64),
    /// `(node, class, room before, room after)`.
    changes: Vec<(NodeId, ClassId, Resources, Resources)>,
}

/// The last few long stretches of the change log read, folded per node. Counts are brought
/// forward from a handful of states (the last check, and the moments gangs fell asleep since),
/// so each stretch is folded once however the counts read them interleave.
#[derive(Debug, Clone, Default)]
struct Folds {
    /// Least recently read first.
    kept: Vec<Folded>,
    /// Scratch while folding: per node id, its index in the fold being made, or `NO_SLOT`.
    slot: Vec<u32>,
}

/// Below this many changes, a count reads the log itself.
const FOLD_MIN: usize = 64;

/// Stretches kept folded at once.
const FOLDS: usize = 8;

/// No entry for the node in [`Folds::slot`].
const NO_SLOT: u32 = u32::MAX;

impl Folds {
    /// The changes from the state `from` to `to`, folded: as kept, or folded now from
    /// `changes` when there are enough of them to be worth it. `None` when they are not kept
    /// and too few, or when a node's class changed on the way, which a fold cannot follow.
    fn get(&mut self, from: (u64, u64), to: (u64, u64), changes: &[Change]) -> Option<&Folded> {
        if let Some(i) = self.kept.iter().position(|f| f.from == from && f.to == to) {
            let f = self.kept.remove(i);
            self.kept.push(f);
            return self.kept.last();
        }
        if changes.len() < FOLD_MIN {
            return None;
        }
        let mut f = if self.kept.len() >= FOLDS {
            self.kept.remove(0)
        } else {
            Folded::default()
        };
        f.changes.clear();
        let folded = self.fold(&mut f.changes, changes);
        // The scratch is left clean for the next fold.
        for &(node, ..) in &f.changes {
            self.slot[node as usize] = NO_SLOT;
        }
        if !folded {
            return None;
        }
        f.from = from;
        f.to = to;
        self.kept.push(f);
        self.kept.last()
    }

    /// Folds `changes` into `out`; false when a node's class changed on the way.
    fn fold(
        &mut self,
        out: &mut Vec<(NodeId, ClassId, Resources, Resources)>,
        changes: &[Change],
    ) -> bool {
        for c in changes {
            let n = c.node as usize;
            if n >= self.slot.len() {
                self.slot.resize(n + 1, NO_SLOT);
            }
            match self.slot[n] {
                NO_SLOT => {
                    self.slot[n] = out.len() as u32;
                    out.push((c.node, c.class, c.before, c.after));
                }
                i => {
                    let entry = &mut out[i as usize];
                    if entry.1 != c.class {
                        return false;
                    }
                    entry.3 = c.after;
                }
            }
        }
        true
    }
}

/// Nodes with room kept for one shape; beyond, the walk goes back to the class indexes (with
/// that much room, most nodes it visits take pods).
const ROOM_NODES: usize = 512;

/// Shapes counted at once; beyond, the memo starts over (a safety bound, not a tuning knob).
const ROOM_SHAPES: usize = 1024;

impl RoomKey {
    /// The key of `shape` placed under `policy`.
    pub fn of(shape: &Shape<'_>, policy: ScorePolicy) -> Self {
        let mut classes: Vec<ClassId> = shape.classes.iter().map(|&(_, c)| c).collect();
        classes.sort_unstable();
        let hash = FixedState::default().hash_one((&shape.request, &classes, policy));
        RoomKey {
            hash,
            request: shape.request,
            lanes: shape.lanes,
            classes,
            policy,
        }
    }

    /// Pods of this shape a walk would put on a node with `free` room: as many as fit, except
    /// that binpack without GPUs walks only nodes with at least the pod's cpu free (which, for
    /// a pod asking no cpu, leaves out nodes whose cpu is overcommitted).
    fn fits(&self, free: &Resources) -> u64 {
        let skipped = self.policy == ScorePolicy::Binpack
            && self.request.get(ResourceId::GPU) <= 0
            && free.get(ResourceId::CPU) < self.request.get(ResourceId::CPU);
        if skipped {
            0
        } else {
            free.count_fitting_lanes(&self.request, self.lanes)
        }
    }
}

impl RoomMemo {
    /// Pods of `shape` the nodes have room for now, if counted before and still followable.
    pub fn room(&mut self, snap: &Snapshot, shape: &Shape<'_>, policy: ScorePolicy) -> Option<u64> {
        self.room_of(snap, &RoomKey::of(shape, policy))
    }

    /// [`RoomMemo::room`] for a shape known by its key.
    pub fn room_of(&mut self, snap: &Snapshot, key: &RoomKey) -> Option<u64> {
        let room = self.rooms.get_mut(key)?;
        let Some(changes) = snap.changes_since(room.position, room.generation) else {
            self.rooms.remove(key);
            return None;
        };
        let mut pods = room.pods as i128;
        let from = (room.position, room.generation);
        let to = (snap.log_position(), snap.generation());
        let folded = self.folds.get(from, to, changes);
        let mut follow = |node: NodeId, class: ClassId, was: &Resources, is: &Resources| {
            if key.classes.binary_search(&class).is_err() {
                return;
            }
            let (before, after) = (key.fits(was), key.fits(is));
            pods += after as i128 - before as i128;
            if let Some(nodes) = room.nodes.as_mut() {
                if after > 0 {
                    nodes.insert(node);
                } else if before > 0 {
                    nodes.remove(node);
                }
            }
        };
        if let Some(folded) = folded {
            for (node, class, was, is) in &folded.changes {
                follow(*node, *class, was, is);
            }
        } else {
            // A run of changes to one node (a gang's pods placed there one by one, or ending
            // together) counts as one: from the room before its first to the room after its
            // last.
            let mut i = 0;
            while i < changes.len() {
                let c = &changes[i];
                let mut last = c;
                while let Some(next) = changes.get(i + 1)
                    && next.node == c.node
                    && next.class == c.class
                {
                    last = next;
                    i += 1;
                }
                i += 1;
                follow(c.node, c.class, &c.before, &last.after);
            }
        }
        if room.nodes.as_ref().is_some_and(|n| n.len > ROOM_NODES) {
            room.nodes = None;
        }
        room.pods = pods.max(0) as u64;
        room.position = snap.log_position();
        room.generation = snap.generation();
        self.hits += 1;
        Some(room.pods)
    }

    /// The nodes with room for a pod of `shape`, for a shape whose room [`RoomMemo::room`] has
    /// just brought up to date, as `(class, free cpu, node)` in order: listed from the class
    /// indexes the first time, then followed.
    fn nodes(
        &mut self,
        snap: &Snapshot,
        shape: &Shape<'_>,
        policy: ScorePolicy,
    ) -> Option<Vec<(ClassId, i64, NodeId)>> {
        let key = RoomKey::of(shape, policy);
        let room = self.rooms.get_mut(&key)?;
        if room.position != snap.log_position() || room.generation != snap.generation() {
            return None;
        }
        if room.nodes.is_none() && room.pods as usize <= ROOM_NODES {
            let mut nodes = NodeSet::default();
            for &c in &key.classes {
                for &(_, node) in &snap.classes()[c as usize].by_cpu {
                    if key.fits(snap.node(node).free()) > 0 {
                        nodes.insert(node);
                    }
                }
            }
            room.nodes = Some(nodes);
        }
        let mut walk: Vec<(ClassId, i64, NodeId)> = room
            .nodes
            .as_ref()?
            .iter()
            .map(|n| {
                let entry = snap.node(n);
                (entry.class, entry.free().get(ResourceId::CPU), n)
            })
            .collect();
        walk.sort_unstable();
        Some(walk)
    }

    /// The count [`RoomMemo::room`] gives, as it would be with `extra` room on some nodes (room
    /// held for others, lent for a trial), or `None` where no count is kept for the shape.
    pub fn room_with(
        &mut self,
        snap: &Snapshot,
        shape: &Shape<'_>,
        policy: ScorePolicy,
        extra: &BTreeMap<NodeId, Resources>,
    ) -> Option<u64> {
        self.room_of_with(snap, &RoomKey::of(shape, policy), extra)
    }

    /// [`RoomMemo::room_with`] for a shape known by its key.
    pub fn room_of_with(
        &mut self,
        snap: &Snapshot,
        key: &RoomKey,
        extra: &BTreeMap<NodeId, Resources>,
    ) -> Option<u64> {
        let base = self.room_of(snap, key)?;
        let mut pods = base as i128;
        for (&node, &add) in extra {
            let entry = snap.node(node);
            if !entry.live || key.classes.binary_search(&entry.class).is_err() {
                continue;
            }
            let free = entry.free();
            pods += key.fits(&(*free + add)) as i128 - key.fits(free) as i128;
        }
        Some(pods.max(0) as u64)
    }

    /// The counts kept for `shapes`, brought up to date and copied apart (without their node
    /// lists): what a trial on room changed for a moment and then restored may read and bring
    /// forward, while these stay true of the snapshot the trial returns to.
    pub fn scratch(
        &mut self,
        snap: &Snapshot,
        shapes: &[Shape<'_>],
        policy: ScorePolicy,
    ) -> RoomMemo {
        let mut out = RoomMemo::default();
        for shape in shapes {
            if self.room(snap, shape, policy).is_none() {
                continue;
            }
            let key = RoomKey::of(shape, policy);
            if let Some(r) = self.rooms.get(&key) {
                let copy = Room {
                    pods: r.pods,
                    position: r.position,
                    generation: r.generation,
                    nodes: None,
                };
                out.rooms.insert(key, copy);
            }
        }
        out
    }

    /// Notes that at the state `(generation, position)` the nodes had room for exactly `pods`
    /// pods of `shape`.
    pub fn record(
        &mut self,
        shape: &Shape<'_>,
        policy: ScorePolicy,
        (generation, position): (u64, u64),
        pods: u64,
    ) {
        if self.rooms.len() >= ROOM_SHAPES {
            self.rooms.clear();
        }
        self.misses += 1;
        self.rooms.insert(
            RoomKey::of(shape, policy),
            Room {
                pods,
                position,
                generation,
                nodes: None,
            },
        );
    }
}

/// What [`diagnose`] learns from one pass over the nodes for a pod shape: the same for every
/// blocked gang of that shape while the snapshot does not change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scan {
    /// Nodes per filter that rejected one pod.
    filtered: BTreeMap<FilterReason, u32>,
    /// Free room over the classes the shape may use.
    free_total: Resources,
}

/// The scans of [`diagnose`] by pod shape (one pod's request and the static filters it meets),
/// kept while the snapshot's generation stands: in a full cluster most gangs that miss are of
/// a few shapes, and their reason is worked out once per shape, not once per gang over every
/// node. Only scans without room held for the job itself are kept (those depend on the job).
#[derive(Debug, Clone, Default)]
pub struct DiagnosisCache {
    generation: u64,
    scans: Vec<(Resources, Vec<Option<FilterReason>>, Scan)>,
    /// Scans answered from the cache, and worked out, since the engine started.
    pub hits: u64,
    /// Scans worked out (a pass over the nodes).
    pub misses: u64,
}

/// Shapes kept at once; beyond, the cache starts over (a safety bound, not a tuning knob).
const DIAGNOSIS_SHAPES: usize = 256;

/// Explains why `pods` more pods of `shape` found no room: counts per filter over every live node
/// and the resource most short over the nodes the task may use. Room held for the job itself
/// (`own`) is free to it; a node short only because of room held for other gangs counts as
/// [`FilterReason::Reserved`], not as short of a resource. The pass over the nodes is shared
/// through `cache` by gangs of the same shape while the snapshot is unchanged; the answer is
/// the same as without it.
#[allow(clippy::too_many_arguments)]
pub fn diagnose(
    snap: &Snapshot,
    shape: &Shape<'_>,
    task_name: &str,
    pods: u32,
    needed: u32,
    placeable: u32,
    own: &BTreeMap<NodeId, Resources>,
    cache: &mut DiagnosisCache,
) -> FitError {
    let static_filter: Vec<Option<FilterReason>> = snap
        .classes()
        .iter()
        .map(|c| c.static_filter(shape.spec))
        .collect();
    let scan = if own.is_empty() {
        if cache.generation != snap.generation() || cache.scans.len() >= DIAGNOSIS_SHAPES {
            cache.generation = snap.generation();
            cache.scans.clear();
        }
        let found = cache
            .scans
            .iter()
            .find(|(request, filter, _)| *request == shape.request && *filter == static_filter);
        match found {
            Some((_, _, scan)) => {
                cache.hits += 1;
                scan.clone()
            }
            None => {
                cache.misses += 1;
                let scan = scan_nodes(snap, shape, &static_filter, own);
                cache
                    .scans
                    .push((shape.request, static_filter, scan.clone()));
                scan
            }
        }
    } else {
        cache.misses += 1;
        scan_nodes(snap, shape, &static_filter, own)
    };
    let Scan {
        filtered,
        free_total,
    } = scan;
    let requested = shape.request.times(pods as u64);
    let shortfall = requested
        .iter_nonzero()
        .filter(|&(id, want)| free_total.get(id).max(0) < want)
        .map(|(id, want)| Shortfall {
            resource: id,
            requested: want,
            free: free_total.get(id).max(0),
        })
        // The lane most short relative to what is asked.
        .max_by(|a, b| {
            let ra = (a.requested - a.free) as i128 * b.requested as i128;
            let rb = (b.requested - b.free) as i128 * a.requested as i128;
            ra.cmp(&rb).then(b.resource.cmp(&a.resource))
        });
    FitError {
        task: task_name.to_string(),
        needed,
        placeable,
        nodes: snap.live_nodes(),
        filtered,
        shortfall,
    }
}

/// The pass over the nodes of [`diagnose`].
fn scan_nodes(
    snap: &Snapshot,
    shape: &Shape<'_>,
    static_filter: &[Option<FilterReason>],
    own: &BTreeMap<NodeId, Resources>,
) -> Scan {
    let mut filtered: BTreeMap<FilterReason, u32> = BTreeMap::new();
    let mut free_total = Resources::ZERO;
    for (class, reason) in snap.classes().iter().zip(static_filter) {
        match reason {
            Some(reason) if class.members > 0 => {
                *filtered.entry(reason.clone()).or_default() += class.members
            }
            Some(_) => {}
            None => free_total += class.free_total,
        }
    }
    // Every live node the static filters admit, indexed or full, once: only the lanes the pod
    // asks for are looked at, and counted in an array.
    let asked: Vec<(ResourceId, i64)> = shape.request.iter_nonzero().collect();
    let mut short_in = [0u32; phalanx_model::MAX_RESOURCES];
    let mut held_for_others = 0;
    for (entry, n) in snap
        .nodes()
        .iter()
        .zip(0 as NodeId..)
        .filter(|(e, _)| e.live)
    {
        if static_filter[entry.class as usize].is_some() {
            continue;
        }
        // The node's free room is kept (one cache line for the usual lanes): most nodes are
        // told apart by it alone.
        let free = entry.free();
        let Some(&(id, _)) = asked.iter().find(|&&(id, amount)| free.get(id) < amount) else {
            continue;
        };
        let unheld = |id: ResourceId| entry.node.allocatable.get(id) - entry.allocated.get(id);
        if entry.reserved.get(id) == 0 {
            short_in[id.index()] += 1;
            continue;
        }
        // Room held here made it short: the job's own is free to it, other gangs' is not.
        let mine = own.get(&n);
        let others = |id: ResourceId| entry.reserved.get(id) - mine.map_or(0, |r| r.get(id));
        if asked
            .iter()
            .all(|&(id, amount)| unheld(id) - others(id) >= amount)
        {
            continue;
        }
        match asked.iter().find(|&&(id, amount)| unheld(id) < amount) {
            Some(&(id, _)) => short_in[id.index()] += 1,
            None => held_for_others += 1,
        }
    }
    for (lane, &n) in short_in.iter().enumerate() {
        if n > 0 {
            filtered.insert(FilterReason::Insufficient(ResourceId(lane as u8)), n);
        }
    }
    if held_for_others > 0 {
        filtered.insert(FilterReason::Reserved, held_for_others);
    }
    Scan {
        filtered,
        free_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_model::Node;

    fn node(cpu: i64, gpus: i64) -> Resources {
        Resources::of(ResourceId::CPU, cpu)
            .with(ResourceId::MEMORY, 1 << 40)
            .with(ResourceId::PODS, 110)
            .with(ResourceId::GPU, gpus)
    }

    fn spec(cpu: i64, gpus: i64) -> PodSpec {
        PodSpec {
            requests: Resources::of(ResourceId::CPU, cpu).with(ResourceId::GPU, gpus),
            ..Default::default()
        }
    }

    #[test]
    fn binpack_fills_the_fullest_node_first_and_rollback_restores_exactly() {
        let mut snap = Snapshot::default();
        let a = snap.upsert_node(Node::new("a", node(8000, 0)));
        let b = snap.upsert_node(Node::new("b", node(4000, 0)));
        let before = snap.clone();
        let spec = spec(2000, 0);
        let shape = Shape::new(&snap, 0, &spec);
        let mut txn = Transaction::begin(BTreeMap::new());
        assert_eq!(
            txn.place(
                &mut snap,
                &shape,
                3,
                ScorePolicy::Binpack,
                &GpuDemand::default()
            ),
            3
        );
        assert_eq!(
            txn.placements,
            vec![
                Placement {
                    task: 0,
                    node: b,
                    count: 2
                },
                Placement {
                    task: 0,
                    node: a,
                    count: 1
                }
            ]
        );
        assert_ne!(snap, before);
        txn.rollback(&mut snap);
        assert_eq!(snap, before);
    }

    #[test]
    fn spread_puts_each_pod_on_the_emptiest_node() {
        let mut snap = Snapshot::default();
        let a = snap.upsert_node(Node::new("a", node(8000, 0)));
        let b = snap.upsert_node(Node::new("b", node(8000, 0)));
        let spec = spec(1000, 0);
        let shape = Shape::new(&snap, 0, &spec);
        let mut txn = Transaction::begin(BTreeMap::new());
        txn.place(
            &mut snap,
            &shape,
            2,
            ScorePolicy::Spread,
            &GpuDemand::default(),
        );
        let nodes: Vec<_> = txn.placements.iter().map(|p| p.node).collect();
        assert!(nodes.contains(&a) && nodes.contains(&b), "{nodes:?}");
    }

    #[test]
    fn gpu_pods_avoid_stranding_gpus_the_common_requests_need() {
        // Free GPUs 3 and 4; workload mostly asks for 2 GPUs. A 1-GPU pod on the 3-GPU node
        // leaves 2 (usable); on the 4-GPU node it would leave 3 (one stranded).
        let mut snap = Snapshot::default();
        let three = snap.upsert_node(Node::new("three", node(64000, 8)));
        let four = snap.upsert_node(Node::new("four", node(64000, 8)));
        snap.assume(three, Resources::of(ResourceId::GPU, 5));
        snap.assume(four, Resources::of(ResourceId::GPU, 4));
        let mut demand = GpuDemand::default();
        demand.add(2, 100);
        demand.add(1, 10);
        let spec = spec(1000, 1);
        let shape = Shape::new(&snap, 0, &spec);
        let mut txn = Transaction::begin(BTreeMap::new());
        txn.place(&mut snap, &shape, 1, ScorePolicy::Binpack, &demand);
        assert_eq!(txn.placements[0].node, three);
        // A 4-GPU pod takes the exactly fitting node.
        let spec = spec_gpu4();
        let shape = Shape::new(&snap, 0, &spec);
        let mut txn = Transaction::begin(BTreeMap::new());
        txn.place(&mut snap, &shape, 1, ScorePolicy::Binpack, &demand);
        assert_eq!(txn.placements[0].node, four);
    }

    fn spec_gpu4() -> PodSpec {
        spec(1000, 4)
    }

    #[test]
    fn a_node_set_lists_its_members_in_order_across_words() {
        let mut set = NodeSet::default();
        for n in [200, 3, 64, 63, 127, 3] {
            set.insert(n);
        }
        set.remove(64);
        set.remove(500);
        set.remove(5);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![3, 63, 127, 200]);
        assert_eq!(set.len, 4);
    }

    /// Each stretch the folds give is the log folded per node (room before the first change,
    /// after the last, in order of first change), however many starting states are asked for
    /// and in whatever order, and folding leaves its scratch clean.
    #[test]
    fn folds_keep_several_stretches_each_the_log_folded_per_node() {
        let mut snap = Snapshot::default();
        for i in 0..130 {
            snap.upsert_node(Node::new(
                format!("n{i}"),
                Resources::of(ResourceId::CPU, 64_000).with(ResourceId::PODS, 110),
            ));
        }
        let one = Resources::of(ResourceId::CPU, 1000).with(ResourceId::PODS, 1);
        let mut marks = Vec::new();
        for round in 0..12u32 {
            marks.push((snap.log_position(), snap.generation()));
            for k in 0..80u32 {
                snap.assume(((round * 37 + k * 7) % 130) as NodeId, one);
            }
        }
        let to = (snap.log_position(), snap.generation());
        let mut folds = Folds::default();
        // More starting states than are kept, interleaved, each asked for twice.
        for &from in marks
            .iter()
            .chain(marks.iter().rev())
            .chain(marks.iter().step_by(3))
        {
            let changes = snap
                .changes_since(from.0, from.1)
                .expect("the log reaches back");
            let mut naive: Vec<(NodeId, ClassId, Resources, Resources)> = Vec::new();
            for c in changes {
                match naive.iter_mut().find(|e| e.0 == c.node) {
                    Some(e) => e.3 = c.after,
                    None => naive.push((c.node, c.class, c.before, c.after)),
                }
            }
            let got = folds.get(from, to, changes).expect("long enough to fold");
            assert_eq!((got.from, got.to), (from, to));
            assert_eq!(got.changes, naive);
            assert!(folds.kept.len() <= FOLDS);
            assert!(folds.slot.iter().all(|&s| s == NO_SLOT));
        }
        // A short stretch not kept is left to the caller.
        let from = to;
        for n in 0..10 {
            snap.assume(n, one);
        }
        let end = (snap.log_position(), snap.generation());
        let changes = snap
            .changes_since(from.0, from.1)
            .expect("the log reaches back");
        assert!(folds.get(from, end, changes).is_none());
    }

    #[test]
    fn cpu_pods_keep_off_gpu_nodes_while_cpu_nodes_have_room() {
        let mut snap = Snapshot::default();
        let gpu = snap.upsert_node(Node::new("gpu", node(4000, 8)));
        let cpu = snap.upsert_node(Node::new("cpu", node(64000, 0)));
        let spec = spec(2000, 0);
        let shape = Shape::new(&snap, 0, &spec);
        let mut txn = Transaction::begin(BTreeMap::new());
        txn.place(
            &mut snap,
            &shape,
            1,
            ScorePolicy::Binpack,
            &GpuDemand::default(),
        );
        assert_eq!(txn.placements[0].node, cpu);
        assert_ne!(txn.placements[0].node, gpu);
    }

    /// `diagnose` of `pods` pods of task `worker`, none placeable, with a cache of its own.
    fn why(
        snap: &Snapshot,
        shape: &Shape<'_>,
        pods: u32,
        own: &BTreeMap<NodeId, Resources>,
    ) -> FitError {
        let mut cache = DiagnosisCache::default();
        diagnose(snap, shape, "worker", pods, pods, 0, own, &mut cache)
    }

    #[test]
    fn diagnosis_names_filters_and_the_shortfall() {
        let mut snap = Snapshot::default();
        snap.upsert_node(Node::new("a", node(4000, 0)));
        let mut tainted = Node::new("b", node(4000, 0));
        tainted.taints.push(phalanx_model::Taint {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: phalanx_model::TaintEffect::NoSchedule,
        });
        snap.upsert_node(tainted);
        let spec = spec(8000, 0);
        let shape = Shape::new(&snap, 0, &spec);
        let fit = why(&snap, &shape, 2, &BTreeMap::new());
        assert_eq!(
            fit.filtered[&FilterReason::Insufficient(ResourceId::CPU)],
            1
        );
        assert_eq!(fit.filtered.len(), 2);
        let sf = fit.shortfall.unwrap();
        assert_eq!(
            (sf.resource, sf.requested, sf.free),
            (ResourceId::CPU, 16000, 4000)
        );
        let msg = fit.describe(None);
        assert!(msg.starts_with("0/2 nodes are available"), "{msg}");
        assert!(
            msg.contains("1 node(s) had untolerated taint {dedicated: gpu}"),
            "{msg}"
        );
        assert!(msg.contains("short of 12 cpu"), "{msg}");
    }

    #[test]
    fn a_diagnosis_is_shared_by_a_shape_until_the_snapshot_changes() {
        let mut snap = Snapshot::default();
        let a = snap.upsert_node(Node::new("a", node(4000, 0)));
        snap.upsert_node(Node::new("b", node(2000, 0)));
        let (big, small) = (spec(8000, 0), spec(3000, 0));
        let mut cache = DiagnosisCache::default();
        let fresh = |snap: &Snapshot, spec: &PodSpec, pods: u32| {
            why(snap, &Shape::new(snap, 0, spec), pods, &BTreeMap::new())
        };
        let mut cached = |snap: &Snapshot, spec: &PodSpec, pods: u32| {
            let shape = Shape::new(snap, 0, spec);
            let none = BTreeMap::new();
            diagnose(snap, &shape, "worker", pods, pods, 0, &none, &mut cache)
        };
        // Gangs of one shape and of different sizes: one pass over the nodes, the same answers.
        assert_eq!(cached(&snap, &big, 2), fresh(&snap, &big, 2));
        assert_eq!(cached(&snap, &big, 5), fresh(&snap, &big, 5));
        assert_eq!(cached(&snap, &small, 1), fresh(&snap, &small, 1));
        // A rolled-back transaction leaves the snapshot, and what was learnt from it, as it was.
        let generation = snap.generation();
        let shape = Shape::new(&snap, 0, &small);
        let mut txn = Transaction::begin(BTreeMap::new());
        assert_eq!(
            txn.place(
                &mut snap,
                &shape,
                1,
                ScorePolicy::Binpack,
                &GpuDemand::default()
            ),
            1
        );
        assert_ne!(snap.generation(), generation);
        txn.rollback(&mut snap);
        assert_eq!(snap.generation(), generation);
        assert_eq!(cached(&snap, &small, 1), fresh(&snap, &small, 1));
        // A change that stays is seen: node a filled, the small pod now finds no node.
        snap.assume(a, Resources::of(ResourceId::CPU, 4000));
        let after = cached(&snap, &small, 1);
        assert_eq!(after, fresh(&snap, &small, 1));
        assert_eq!(
            after.filtered[&FilterReason::Insufficient(ResourceId::CPU)],
            2
        );
        assert_eq!((cache.hits, cache.misses), (2, 3));
    }

    #[test]
    fn room_held_for_other_gangs_is_named_and_the_jobs_own_room_is_free_to_it() {
        let mut snap = Snapshot::default();
        let held = snap.upsert_node(Node::new("held", node(4000, 0)));
        snap.upsert_node(Node::new("small", node(1000, 0)));
        snap.reserve(held, Resources::of(ResourceId::CPU, 3000));
        let spec = spec(2000, 0);
        let shape = Shape::new(&snap, 0, &spec);
        // Another gang's room: 4 cpu, 3 of them held, so 1 free for this pod of 2.
        let fit = why(&snap, &shape, 1, &BTreeMap::new());
        assert_eq!(fit.filtered[&FilterReason::Reserved], 1, "{fit:?}");
        assert_eq!(
            fit.filtered[&FilterReason::Insufficient(ResourceId::CPU)],
            1
        );
        let msg = fit.describe(None);
        assert!(
            msg.contains("1 node(s) had their room held for a blocked gang"),
            "{msg}"
        );
        // The room is held for this very job: it may use it.
        let own = BTreeMap::from([(held, Resources::of(ResourceId::CPU, 3000))]);
        let fit = why(&snap, &shape, 1, &own);
        assert!(
            !fit.filtered.contains_key(&FilterReason::Reserved),
            "{fit:?}"
        );
        assert_eq!(fit.filtered.len(), 1, "only the small node: {fit:?}");
    }

    /// One step of [`a_count_of_room_places_exactly_as_a_walk`].
    #[derive(Debug, Clone)]
    enum Step {
        /// Place `want` pods of shape `shape` with `policy`; keep them or roll back.
        Place {
            shape: usize,
            want: u32,
            spread: bool,
            keep: bool,
        },
        /// Release a kept placement.
        Release(usize),
        /// Hold or give back cpu on a node.
        Hold {
            node: usize,
            cpu: i64,
            give_back: bool,
        },
        /// Take a node out, or bring it back.
        Toggle(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..4usize, 1..12u32, any::<bool>(), any::<bool>()).prop_map(
                |(shape, want, spread, keep)| Step::Place { shape, want, spread, keep }
            ),
            2 => (0..64usize).prop_map(Step::Release),
            1 => (0..6usize, 1..4i64, any::<bool>()).prop_map(|(node, cpu, give_back)| {
                Step::Hold { node, cpu: cpu * 1000, give_back }
            }),
            1 => (0..6usize).prop_map(Step::Toggle),
        ]
    }

    /// Pods of `spec` a walk with `policy` would find room for, by visiting every node.
    fn walked_room(snap: &Snapshot, spec: &PodSpec, policy: ScorePolicy) -> u64 {
        let shape = Shape::new(snap, 0, spec);
        let key = RoomKey::of(&shape, policy);
        snap.nodes()
            .iter()
            .filter(|e| e.live && key.classes.contains(&e.class))
            .map(|e| key.fits(e.free()))
            .sum()
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The count of room kept through the change log, and the walk over the nodes it
        /// lists, place exactly as the plain walk over the class indexes: same pods, same
        /// nodes, same snapshot after, through placements kept and rolled back, holds, and
        /// nodes leaving and coming back; and the count with held room lent is the walk's over
        /// the snapshot with that room free.
        #[test]
        fn a_count_of_room_places_exactly_as_a_walk(
            steps in prop::collection::vec(step(), 1..60),
        ) {
            let mut snap = Snapshot::default();
            let sizes = [(8000, 16), (16000, 24), (4000, 64), (32000, 32), (8000, 8), (16000, 0)];
            for (i, &(cpu, gib)) in sizes.iter().enumerate() {
                let mut n = Node::new(
                    format!("n{i}"),
                    Resources::of(ResourceId::CPU, cpu)
                        .with(ResourceId::MEMORY, gib << 30)
                        .with(ResourceId::PODS, 110)
                        .with(ResourceId::GPU, if i == 5 { 4 } else { 0 }),
                );
                n.labels.insert("kubernetes.io/hostname".into(), n.name.clone());
                snap.upsert_node(n);
            }
            let nodes: Vec<Node> = snap.nodes().iter().map(|e| e.node.clone()).collect();
            let specs: Vec<PodSpec> = [(1000, 4, 0), (3000, 2, 0), (500, 8, 0), (2000, 1, 1)]
                .iter()
                .map(|&(cpu, gib, gpu)| PodSpec {
                    requests: Resources::of(ResourceId::CPU, cpu)
                        .with(ResourceId::MEMORY, gib << 30)
                        .with(ResourceId::GPU, gpu),
                    ..Default::default()
                })
                .collect();
            let mut rooms = RoomMemo::default();
            let mut kept: Vec<(NodeId, Resources)> = Vec::new();
            for step in steps {
                match step {
                    Step::Place { shape, want, spread, keep } => {
                        let policy = if spread { ScorePolicy::Spread } else { ScorePolicy::Binpack };
                        let spec = &specs[shape];
                        let shape = Shape::new(&snap, 0, spec);
                        let truth = walked_room(&snap, spec, policy);
                        // With the room held on nodes lent, as for a backfill trial, the count
                        // is the walk's over the snapshot with that room free.
                        let held: BTreeMap<NodeId, Resources> = snap
                            .nodes()
                            .iter()
                            .enumerate()
                            .filter(|(_, e)| !e.reserved.is_zero())
                            .map(|(i, e)| (i as NodeId, e.reserved))
                            .collect();
                        let mut lent = snap.clone();
                        for (&n, &r) in &held {
                            lent.unreserve(n, r);
                        }
                        if let Some(room) = rooms.room_with(&snap, &shape, policy, &held) {
                            prop_assert_eq!(room, walked_room(&lent, spec, policy));
                        }
                        let mut plain_snap = snap.clone();
                        let mut plain = Transaction::begin(BTreeMap::new());
                        let expected =
                            plain.place(&mut plain_snap, &shape, want, policy, &GpuDemand::default());
                        let mut txn = Transaction::begin(BTreeMap::new());
                        if let Some(room) = txn.counted_room(&snap, &shape, policy, &mut rooms) {
                            prop_assert_eq!(room, truth);
                        }
                        let got = txn.place_counting(
                            &mut snap, &shape, want, policy, &GpuDemand::default(), &mut rooms,
                        );
                        prop_assert_eq!(got, expected);
                        prop_assert_eq!(&txn.placements, &plain.placements);
                        prop_assert_eq!(&snap, &plain_snap);
                        if keep {
                            for p in &txn.placements {
                                let amount = shape.request.times(p.count as u64);
                                kept.push((p.node, amount));
                            }
                            drop(txn.placements);
                        } else {
                            txn.rollback(&mut snap);
                        }
                    }
                    Step::Release(i) if !kept.is_empty() => {
                        let (node, amount) = kept.swap_remove(i % kept.len());
                        snap.release(node, amount);
                    }
                    Step::Release(_) => {}
                    Step::Hold { node, cpu, give_back } => {
                        let amount = Resources::of(ResourceId::CPU, cpu);
                        if give_back {
                            if snap.node(node as NodeId).reserved.get(ResourceId::CPU) >= cpu {
                                snap.unreserve(node as NodeId, amount);
                            }
                        } else {
                            snap.reserve(node as NodeId, amount);
                        }
                    }
                    Step::Toggle(node) => {
                        let id = node as NodeId;
                        if snap.node(id).live {
                            snap.remove_node(id);
                        } else {
                            snap.upsert_node(nodes[node].clone());
                        }
                    }
                }
            }
        }
    }
}
