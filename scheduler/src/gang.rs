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

use std::collections::BTreeMap;

use phalanx_model::{FilterReason, FitError, PodSpec, ResourceId, Resources, Shortfall};
use serde::{Deserialize, Serialize};

use crate::snapshot::{ClassId, NodeId, Snapshot};

/// How to choose among nodes that fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

/// A gang placement in progress: the changes made so far and how to undo them. It ends in a
/// rollback, or is kept by the engine's commit (which takes its placements and holds): dropped
/// on the floor, it would leave the snapshot changed with nobody accounting for it.
#[derive(Debug)]
#[must_use = "a transaction ends in Transaction::rollback or is kept by a commit"]
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
    /// The snapshot's generation before the transaction's first change: a rollback restores
    /// the snapshot exactly, and its generation with it.
    start: Option<u64>,
}

/// A task's pod shape, with the node classes its static filters admit, best first.
pub struct Shape<'a> {
    /// Task index.
    pub task: u32,
    /// The pod template.
    pub spec: &'a PodSpec,
    /// One pod's request, `pods` lane included.
    pub request: Resources,
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

    /// Notes the snapshot's generation before the first change.
    fn changing(&mut self, snap: &Snapshot) {
        self.start.get_or_insert(snap.generation());
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

    /// Undoes every change in reverse order; the snapshot is as it was at [`Transaction::begin`].
    pub fn rollback(self, snap: &mut Snapshot) {
        for u in self.undo.into_iter().rev() {
            match u {
                Undo::Assume(n, r) => snap.release(n, r),
                Undo::Reserve(n, r) => snap.unreserve(n, r),
                Undo::Unreserve(n, r) => snap.reserve(n, r),
            }
        }
        if let Some(g) = self.start {
            snap.restore_generation(g);
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
        let mut free = snap.node(node).free();
        if let Some(held) = self.reservations.get(&node) {
            free += *held;
        }
        free.count_fitting(&shape.request)
            .min(self.budget.count_fitting(&shape.request))
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
            ScorePolicy::Binpack => left = self.best_fit_cpu(snap, shape, left),
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

    /// Binpack without GPUs: classes best first; in each, nodes in ascending free cpu from the
    /// pod's request up, as many pods on each as fit.
    fn best_fit_cpu(&mut self, snap: &mut Snapshot, shape: &Shape<'_>, mut left: u32) -> u32 {
        let cpu = shape.request.get(ResourceId::CPU);
        let mut picks: Vec<(NodeId, u32)> = Vec::new();
        for &(_, c) in &shape.classes {
            picks.clear();
            // Picks are applied after the walk, so the queue's budget is counted down here.
            let mut budget = self.budget.count_fitting(&shape.request);
            for &(_, node) in snap.classes()[c as usize].by_cpu.range((cpu, 0)..) {
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
        let unheld = |id: ResourceId| entry.node.allocatable.get(id) - entry.allocated.get(id);
        let Some(&(id, _)) = asked
            .iter()
            .find(|&&(id, amount)| unheld(id) - entry.reserved.get(id) < amount)
        else {
            continue;
        };
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
}
