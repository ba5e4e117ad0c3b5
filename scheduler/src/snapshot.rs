//! The snapshot: the engine's table of nodes with what is allocated and reserved on each, the
//! node classes, and the free-capacity indexes a cycle places pods through.
//!
//! kube-scheduler copies its cache into a snapshot at the start of every cycle because informers
//! mutate the cache concurrently. Here events are applied between cycles, never during one, so
//! the engine's own table *is* a consistent snapshot for the whole cycle and nothing is copied.
//! Every change made during a cycle goes through [`Snapshot::assume`], [`Snapshot::release`],
//! [`Snapshot::reserve`] and [`Snapshot::unreserve`], which keep the indexes exact, so a gang
//! transaction can undo its changes in reverse order and leave the snapshot equal to what it was.
//!
//! **Node classes.** Nodes with the same taints, GPU presence, cordon state and values of every label key some
//! job's nodeSelector or affinity reads are interchangeable for the static filters. The filters
//! run once per class, not once per node, and each class keeps its nodes with a free pod slot
//! sorted by free cpu and by free GPUs, so a placement visits only nodes that can hold a pod. Label keys nobody selects
//! on (`kubernetes.io/hostname`, ...) do not split classes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use foldhash::fast::FixedState;

use phalanx_model::{
    FilterReason, Node, PodSpec, ResourceId, Resources, Taint, TaintEffect, tolerated,
};

/// Index of a node in the snapshot. Stable for the node's name for the engine's lifetime.
pub type NodeId = u32;
/// Index of a node class.
pub type ClassId = u32;

/// One node and what is committed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// The node as last reported.
    pub node: Node,
    /// Requests of pods assumed, bound or being released here.
    pub allocated: Resources,
    /// Capacity held here for jobs' `min_resources`, in total.
    pub reserved: Resources,
    /// The node's class, while it is live.
    pub class: ClassId,
    /// False once removed; the id stays with the name.
    pub live: bool,
    /// `allocatable - allocated - reserved`, kept by [`NodeEntry::refresh`] on every change:
    /// placement reads it far more often than it changes.
    free: Resources,
}

impl NodeEntry {
    /// What a pod of a job with no reservation here may still use.
    #[inline]
    pub fn free(&self) -> &Resources {
        &self.free
    }

    /// Works out [`NodeEntry::free`] again after the node, its allocation or its reservation
    /// changed.
    #[inline]
    fn refresh(&mut self) {
        self.free = self.node.allocatable - self.allocated - self.reserved;
    }
}

/// The static identity of a class: what the static filters look at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ClassKey {
    /// GPU nodes are never interchangeable with CPU-only ones: pods without GPUs keep off them.
    has_gpu: bool,
    unschedulable: bool,
    taints: Vec<Taint>,
    labels: BTreeMap<String, String>,
}

/// Interchangeable nodes, and their free-capacity indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    key: ClassKey,
    /// Live member nodes.
    pub members: u32,
    /// Members with GPUs.
    pub gpu_members: u32,
    /// Sum of members' free capacity: a gang asking for more than this cannot fit.
    pub free_total: Resources,
    /// `(free cpu, node)` for every member with a free pod slot.
    pub by_cpu: BTreeSet<(i64, NodeId)>,
    /// `(free GPUs, node)` for members with GPUs and a free pod slot.
    pub by_gpu: BTreeSet<(i64, NodeId)>,
}

impl Class {
    /// Why a pod with `spec` may not run on this class's nodes, if it may not.
    pub fn static_filter(&self, spec: &PodSpec) -> Option<FilterReason> {
        if self.key.unschedulable {
            return Some(FilterReason::NodeUnschedulable);
        }
        if spec
            .node_selector
            .iter()
            .any(|(k, v)| self.key.labels.get(k) != Some(v))
        {
            return Some(FilterReason::NodeSelectorMismatch);
        }
        if spec
            .affinity
            .as_ref()
            .is_some_and(|a| !a.matches(&self.key.labels))
        {
            return Some(FilterReason::NodeAffinityMismatch);
        }
        self.key
            .taints
            .iter()
            .find(|t| t.effect != TaintEffect::PreferNoSchedule && !tolerated(&spec.tolerations, t))
            .map(|t| FilterReason::UntoleratedTaint(t.clone()))
    }

    /// Indexes a member by its free capacity. A node with no free pod slot can take no pod,
    /// so it is left out: placements never walk past full nodes.
    fn add_to_indexes(&mut self, id: NodeId, free: &Resources, has_gpu: bool) {
        if free.get(ResourceId::PODS) <= 0 {
            return;
        }
        self.by_cpu.insert((free.get(ResourceId::CPU), id));
        if has_gpu {
            self.by_gpu.insert((free.get(ResourceId::GPU), id));
        }
    }

    fn remove_from_indexes(&mut self, id: NodeId, free: &Resources, has_gpu: bool) {
        if free.get(ResourceId::PODS) <= 0 {
            return;
        }
        self.by_cpu.remove(&(free.get(ResourceId::CPU), id));
        if has_gpu {
            self.by_gpu.remove(&(free.get(ResourceId::GPU), id));
        }
    }

    /// Whether the class has a `PreferNoSchedule` taint the pod does not tolerate.
    pub fn prefers_not(&self, spec: &PodSpec) -> bool {
        self.key
            .taints
            .iter()
            .any(|t| t.effect == TaintEffect::PreferNoSchedule && !tolerated(&spec.tolerations, t))
    }
}

/// The engine's node table, classes and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    nodes: Vec<NodeEntry>,
    /// Looked up on every pod event, never walked in order: hashed.
    by_name: HashMap<String, NodeId, FixedState>,
    classes: Vec<Class>,
    class_of_key: BTreeMap<ClassKey, ClassId>,
    /// Label keys some job selects on; only these split classes.
    selected_keys: BTreeSet<String>,
    live_nodes: u32,
    /// Sum of allocatable over live nodes.
    capacity: Resources,
    /// A fresh id after every change (ids are never handed out twice); a rolled-back
    /// transaction puts back the id of the state it restored exactly, so equal generations
    /// mean equal snapshots.
    generation: Generation,
    /// Every change of a node's free room since the log was last trimmed.
    log: ChangeLog,
}

/// One change of a node's free room, in the order made: what lets a count kept over the nodes
/// (see [`crate::gang::RoomMemo`]) follow the snapshot without walking every node again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The node changed.
    pub node: NodeId,
    /// Its class at the time.
    pub class: ClassId,
    /// Its free room before; zero while it was not live (a node that is not live has room for
    /// nothing, and every pod asks for a pod slot).
    pub before: Resources,
    /// Its free room after; zero once it is not live.
    pub after: Resources,
    /// The snapshot's generation before the change.
    generation_before: u64,
}

/// The changes since a position. Positions count changes since the snapshot was made; a
/// rolled-back transaction takes its changes out again, so a position names one state as long
/// as the generation at it matches. Like [`Generation`], not part of what a snapshot is.
#[derive(Debug, Clone, Default)]
struct ChangeLog {
    /// The position of `changes[0]`.
    base: u64,
    changes: Vec<Change>,
}

impl PartialEq for ChangeLog {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ChangeLog {}

/// A snapshot's version. Not part of what a snapshot *is*: two snapshots with the same nodes,
/// allocations and holds compare equal whatever their histories.
#[derive(Debug, Clone, Copy, Default, Eq)]
struct Generation {
    /// The id of the current state.
    current: u64,
    /// The last id handed out.
    last: u64,
}

impl Generation {
    /// The state changed: a new id.
    fn bump(&mut self) {
        self.last += 1;
        self.current = self.last;
    }
}

impl PartialEq for Generation {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Snapshot {
    /// All node entries, live or not, by id.
    pub fn nodes(&self) -> &[NodeEntry] {
        &self.nodes
    }

    /// One node entry.
    #[inline]
    pub fn node(&self, id: NodeId) -> &NodeEntry {
        &self.nodes[id as usize]
    }

    /// The id of a node by name, live or not.
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// The classes, by id. A class with no members is kept (ids stay stable) and never matches.
    pub fn classes(&self) -> &[Class] {
        &self.classes
    }

    /// How many nodes are live.
    pub fn live_nodes(&self) -> u32 {
        self.live_nodes
    }

    /// Allocatable capacity summed over live nodes.
    pub fn capacity(&self) -> Resources {
        self.capacity
    }

    /// The snapshot's version: what was computed from it at one generation holds while the
    /// generation is the same.
    pub fn generation(&self) -> u64 {
        self.generation.current
    }

    /// Puts the generation and the change log back to a state the changes since were undone
    /// to exactly (a transaction's rollback): the undoing and what it undid leave the log.
    pub(crate) fn restore(&mut self, generation: u64, position: u64) {
        self.generation.current = generation;
        let keep = position.saturating_sub(self.log.base) as usize;
        self.log.changes.truncate(keep);
    }

    /// The position after the last change: with [`Snapshot::generation`], what names this state
    /// in [`Snapshot::changes_since`].
    pub fn log_position(&self) -> u64 {
        self.log.base + self.log.changes.len() as u64
    }

    /// The changes made since the state at `position` whose generation was `generation`, or
    /// `None` when the log no longer reaches back to it or that state was undone.
    pub fn changes_since(&self, position: u64, generation: u64) -> Option<&[Change]> {
        let end = self.log_position();
        if position < self.log.base || position > end {
            return None;
        }
        let at = (position - self.log.base) as usize;
        let generation_at = match self.log.changes.get(at) {
            Some(c) => c.generation_before,
            None => self.generation.current,
        };
        (generation_at == generation).then(|| &self.log.changes[at..])
    }

    /// Forgets the oldest changes once the log is twice `keep` long, keeping the last `keep`
    /// (between cycles: a count taken before the kept changes starts over from a walk of the
    /// nodes; one brought forward since is still followed). `keep` 0 forgets them all.
    pub fn trim_log(&mut self, keep: usize) {
        let len = self.log.changes.len();
        if len > keep.saturating_mul(2) {
            let drop = len - keep;
            self.log.changes.drain(..drop);
            self.log.base += drop as u64;
        }
    }

    /// The room a node offers placements: its free room while live, else none.
    fn room(&self, id: NodeId) -> Resources {
        let entry = &self.nodes[id as usize];
        if entry.live {
            *entry.free()
        } else {
            Resources::ZERO
        }
    }

    /// Moves to a new generation, noting that `id`'s room was `before` (a node keeps its class
    /// id while it is not live, so the class is the one the room was or is counted in).
    fn changed(&mut self, id: NodeId, before: Resources) {
        let generation_before = self.generation.current;
        self.generation.bump();
        self.log.changes.push(Change {
            node: id,
            class: self.nodes[id as usize].class,
            before,
            after: self.room(id),
            generation_before,
        });
    }

    /// Adds or updates a node. What is allocated or reserved on it stays.
    pub fn upsert_node(&mut self, node: Node) -> NodeId {
        let id = match self.by_name.get(&node.name) {
            Some(&id) => {
                self.unindex(id);
                let entry = &mut self.nodes[id as usize];
                entry.node = node;
                entry.refresh();
                id
            }
            None => {
                let id = self.nodes.len() as NodeId;
                self.by_name.insert(node.name.clone(), id);
                let mut entry = NodeEntry {
                    node,
                    allocated: Resources::ZERO,
                    reserved: Resources::ZERO,
                    class: 0,
                    live: false,
                    free: Resources::ZERO,
                };
                entry.refresh();
                self.nodes.push(entry);
                id
            }
        };
        self.index(id);
        id
    }

    /// Removes a node from placement. The caller has already released what ran there.
    pub fn remove_node(&mut self, id: NodeId) {
        if self.nodes[id as usize].live {
            self.unindex(id);
        }
    }

    /// Records that jobs select on label `key`. Returns true when that is new, in which case
    /// the classes must be rebuilt ([`Snapshot::rebuild_classes`]) before the next placement.
    pub fn select_key(&mut self, key: &str) -> bool {
        if self.selected_keys.contains(key) {
            return false;
        }
        self.selected_keys.insert(key.to_string());
        true
    }

    /// Recomputes every node's class from scratch (after new label keys became selected).
    pub fn rebuild_classes(&mut self) {
        let live: Vec<NodeId> = (0..self.nodes.len() as NodeId)
            .filter(|&id| self.nodes[id as usize].live)
            .collect();
        self.classes.clear();
        self.class_of_key.clear();
        self.live_nodes = 0;
        self.capacity = Resources::ZERO;
        for &id in &live {
            self.nodes[id as usize].live = false;
        }
        for id in live {
            self.index(id);
        }
        // Class ids changed: counts kept over classes start over.
        self.generation.bump();
        self.trim_log(0);
    }

    fn class_key(&self, node: &Node) -> ClassKey {
        let mut taints = node.taints.clone();
        taints.sort();
        ClassKey {
            has_gpu: node.allocatable.get(ResourceId::GPU) > 0,
            unschedulable: node.unschedulable,
            taints,
            labels: node
                .labels
                .iter()
                .filter(|(k, _)| self.selected_keys.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    fn index(&mut self, id: NodeId) {
        let key = self.class_key(&self.nodes[id as usize].node);
        let class = match self.class_of_key.get(&key) {
            Some(&c) => c,
            None => {
                let c = self.classes.len() as ClassId;
                self.class_of_key.insert(key.clone(), c);
                self.classes.push(Class {
                    key,
                    members: 0,
                    gpu_members: 0,
                    free_total: Resources::ZERO,
                    by_cpu: BTreeSet::new(),
                    by_gpu: BTreeSet::new(),
                });
                c
            }
        };
        let entry = &mut self.nodes[id as usize];
        entry.class = class;
        entry.live = true;
        self.live_nodes += 1;
        self.capacity += entry.node.allocatable;
        let has_gpu = entry.node.allocatable.get(ResourceId::GPU) > 0;
        let free = *entry.free();
        let c = &mut self.classes[class as usize];
        c.members += 1;
        c.gpu_members += has_gpu as u32;
        c.free_total += free;
        c.add_to_indexes(id, &free, has_gpu);
        self.changed(id, Resources::ZERO);
    }

    fn unindex(&mut self, id: NodeId) {
        let entry = &mut self.nodes[id as usize];
        if !entry.live {
            self.generation.bump();
            return;
        }
        entry.live = false;
        self.live_nodes -= 1;
        self.capacity -= entry.node.allocatable;
        let has_gpu = entry.node.allocatable.get(ResourceId::GPU) > 0;
        let free = *entry.free();
        let c = &mut self.classes[entry.class as usize];
        c.members -= 1;
        c.gpu_members -= has_gpu as u32;
        c.free_total -= free;
        c.remove_from_indexes(id, &free, has_gpu);
        self.changed(id, free);
    }

    /// Changes a node's allocation and reservation, keeping its class's indexes exact.
    #[inline]
    fn update(&mut self, id: NodeId, d_allocated: Resources, d_reserved: Resources, add: bool) {
        if d_allocated.is_zero() && d_reserved.is_zero() {
            return;
        }
        let before = self.room(id);
        let entry = &mut self.nodes[id as usize];
        if add {
            entry.allocated += d_allocated;
            entry.reserved += d_reserved;
        } else {
            entry.allocated -= d_allocated;
            entry.reserved -= d_reserved;
        }
        entry.refresh();
        if entry.live {
            let after = *entry.free();
            let has_gpu = entry.node.allocatable.get(ResourceId::GPU) > 0;
            let c = &mut self.classes[entry.class as usize];
            c.free_total -= before;
            c.free_total += after;
            c.remove_from_indexes(id, &before, has_gpu);
            c.add_to_indexes(id, &after, has_gpu);
        }
        self.changed(id, before);
    }

    /// Counts `amount` as allocated on the node (a pod assumed or adopted there).
    #[inline]
    pub fn assume(&mut self, id: NodeId, amount: Resources) {
        self.update(id, amount, Resources::ZERO, true);
    }

    /// Stops counting `amount` as allocated on the node (a pod forgotten, finished or evicted).
    #[inline]
    pub fn release(&mut self, id: NodeId, amount: Resources) {
        self.update(id, amount, Resources::ZERO, false);
    }

    /// Holds `amount` on the node for a job.
    pub fn reserve(&mut self, id: NodeId, amount: Resources) {
        self.update(id, Resources::ZERO, amount, true);
    }

    /// Gives back capacity held on the node.
    pub fn unreserve(&mut self, id: NodeId, amount: Resources) {
        self.update(id, Resources::ZERO, amount, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(m: i64) -> Resources {
        Resources::of(ResourceId::CPU, m).with(ResourceId::PODS, 10)
    }

    #[test]
    fn classes_split_only_on_selected_labels() {
        let mut s = Snapshot::default();
        for i in 0..4 {
            let mut n = Node::new(format!("n{i}"), cpu(4000));
            n.labels
                .insert("kubernetes.io/hostname".into(), format!("n{i}"));
            n.labels
                .insert("zone".into(), if i < 2 { "a" } else { "b" }.into());
            s.upsert_node(n);
        }
        assert_eq!(s.classes().iter().filter(|c| c.members > 0).count(), 1);
        assert!(s.select_key("zone"));
        assert!(!s.select_key("zone"));
        s.rebuild_classes();
        assert_eq!(s.classes().iter().filter(|c| c.members > 0).count(), 2);
        assert_eq!(s.live_nodes(), 4);
    }

    #[test]
    fn indexes_follow_assume_and_release_exactly() {
        let mut s = Snapshot::default();
        let a = s.upsert_node(Node::new("a", cpu(4000)));
        let b = s.upsert_node(Node::new("b", cpu(8000)));
        let before = s.clone();
        let one_pod = Resources::of(ResourceId::CPU, 1000).with(ResourceId::PODS, 1);
        s.assume(a, one_pod);
        s.reserve(b, Resources::of(ResourceId::CPU, 3000));
        let c = &s.classes()[0];
        assert!(c.by_cpu.contains(&(3000, a)));
        assert!(c.by_cpu.contains(&(5000, b)));
        assert_eq!(c.free_total.get(ResourceId::CPU), 8000);
        s.unreserve(b, Resources::of(ResourceId::CPU, 3000));
        s.release(a, one_pod);
        assert_eq!(s, before);
        // A node whose pod slots are all taken leaves the indexes, and comes back.
        s.assume(a, Resources::of(ResourceId::PODS, 10));
        assert!(!s.classes()[0].by_cpu.iter().any(|&(_, n)| n == a));
        assert_eq!(s.classes()[0].members, 2);
        s.release(a, Resources::of(ResourceId::PODS, 10));
        assert_eq!(s, before);
    }

    #[test]
    fn removed_nodes_leave_the_indexes_and_come_back_with_their_id() {
        let mut s = Snapshot::default();
        let a = s.upsert_node(Node::new("a", cpu(4000)));
        s.remove_node(a);
        assert_eq!(s.live_nodes(), 0);
        assert!(s.classes()[0].by_cpu.is_empty());
        assert_eq!(s.upsert_node(Node::new("a", cpu(4000))), a);
        assert_eq!(s.live_nodes(), 1);
    }
}
