//! The DAG gate: which jobs are eligible because every job they depend on has succeeded.
//!
//! Nodes are job names, including names a job depends on before that job exists (a
//! *placeholder*); edges run from a dependency to its dependent. Everything is incremental:
//! - a dependency succeeding decrements its dependents' unmet counts: O(out-degree);
//! - a new edge is checked for a cycle by one search from the new job towards the dependency;
//!   a cycle is refused with every job on it named, and nothing changes;
//! - a failure (or a deletion before success) marks every transitive dependent failed, each
//!   naming the ancestor that caused it;
//! - the *downstream tail* of a job (the longest chain of work behind it: declared durations
//!   summed, then stages counted) is recomputed lazily, in one reverse-topological pass over
//!   the jobs still waiting, once per cycle in which the graph changed
//!   ([`DagGate::refresh_tails`]): pushing it upstream on every arrival would cost
//!   O(ancestors) per job, quadratic on deep pipelines.
//!
//! Only jobs that have dependencies, or that some job depends on, are nodes: a job with
//! neither costs nothing here. When a job names a dependency the gate has not seen, the
//! caller says whether that job exists and how it stands.
//!
//! ```text
//!   placeholder --job arrives--> waiting (unmet > 0) --last dependency succeeds--> eligible
//!                                     |                                              |
//!                                     +--an ancestor fails or is deleted--> failed <-+
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use petgraph::Direction::{Incoming, Outgoing};
pub use petgraph::stable_graph::NodeIndex;
use petgraph::stable_graph::StableDiGraph;
use petgraph::visit::EdgeRef;
use phalanx_model::{Span, Time};

use crate::{JobId, NameMap};

/// Length of a chain of jobs: declared running time, then the number of stages (a stage with
/// no declared duration adds only to the count). Compared in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PathLength {
    /// Declared durations summed, milliseconds.
    pub declared_ms: u64,
    /// Jobs on the chain.
    pub stages: u32,
}

impl PathLength {
    /// The length of one job: its declared duration, if any, and one stage.
    pub fn of_job(duration: Option<Span>) -> Self {
        PathLength {
            declared_ms: duration.map_or(0, |d| d.0),
            stages: 1,
        }
    }

    fn then(self, other: PathLength) -> PathLength {
        PathLength {
            declared_ms: self.declared_ms.saturating_add(other.declared_ms),
            stages: self.stages.saturating_add(other.stages),
        }
    }
}

/// Where a name stands in the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Named by some job but not submitted (yet).
    Placeholder,
    /// Submitted, not ended.
    Waiting,
    /// Succeeded: its dependents may go.
    Succeeded,
    /// Failed, or deleted before it succeeded, or an ancestor did: its dependents never go.
    Failed,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Shared with the gate's name table: each name is stored once.
    name: Arc<str>,
    job: Option<JobId>,
    status: Status,
    /// Dependencies not yet succeeded.
    unmet: u32,
    /// Of those, the placeholders: names no job has yet.
    missing: u32,
    /// This job's own length.
    length: PathLength,
    /// The longest chain of work behind it (excluding itself).
    tail: PathLength,
    /// When it first waited on a placeholder.
    missing_since: Option<Time>,
    /// The [`DagGate::refresh_tails`] pass that last settled `tail`.
    epoch: u32,
}

/// A dependency cycle closed by a new job; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {}", .cycle.join(" -> "))]
pub struct CycleError {
    /// The jobs on the cycle, first repeated at the end (`a -> b -> c -> a`).
    pub cycle: Vec<String>,
}

/// What [`DagGate::add`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Added {
    /// The job's node, if it is part of a DAG (it has dependencies or is named by one). Keep
    /// it: every other call takes it, so no name is looked up on the hot path.
    pub node: Option<NodeIndex>,
    /// Known jobs that became nodes now because this job named them, with their nodes.
    pub adopted: Vec<(JobId, NodeIndex)>,
}

/// What happened to the dependents of a job that ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Jobs whose last unmet dependency just succeeded.
    pub eligible: Vec<JobId>,
    /// Jobs that will never run, with the ancestor that caused it.
    pub failed: Vec<(JobId, String)>,
}

/// The dependency graph of all jobs and the placeholders they name.
#[derive(Debug, Clone, Default)]
pub struct DagGate {
    graph: StableDiGraph<Entry, ()>,
    by_name: NameMap<NodeIndex, Arc<str>>,
    /// Jobs waiting on a placeholder, by when they started to: timeouts look only at the oldest.
    missing_since: BTreeSet<(Time, NodeIndex)>,
    /// Edges were added since the tails were last computed.
    tails_dirty: bool,
    /// The current [`DagGate::refresh_tails`] pass: a node whose `epoch` equals it is settled.
    epoch: u32,
}

impl DagGate {
    /// An empty gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new placeholder node for a name the gate has none for.
    fn new_node(&mut self, name: Arc<str>) -> NodeIndex {
        let n = self.graph.add_node(Entry {
            name: Arc::clone(&name),
            job: None,
            status: Status::Placeholder,
            unmet: 0,
            missing: 0,
            length: PathLength::default(),
            tail: PathLength::default(),
            missing_since: None,
            epoch: 0,
        });
        self.by_name.insert(name, n);
        n
    }

    /// Adds a job with its dependencies at `now`. Refuses (changing nothing) an edge that closes
    /// a cycle. The job is eligible when [`DagGate::unmet`] is zero and it has not failed.
    /// `known` tells, for a dependency the gate has no node for, whether that job exists, how it
    /// stands and the name it is known by (`None`: it does not exist, so it is missing). The
    /// gate keeps the names it is given, shared, rather than copies.
    pub fn add(
        &mut self,
        job: JobId,
        name: &Arc<str>,
        depends_on: &[String],
        length: PathLength,
        now: Time,
        known: impl Fn(&str) -> Option<(JobId, Status, Arc<str>)>,
    ) -> Result<Added, CycleError> {
        let existing = self.by_name.get(&**name).copied();
        if existing.is_none() && depends_on.is_empty() {
            // Nothing depends on it and it depends on nothing: not part of any DAG (yet).
            return Ok(Added::default());
        }
        let mut adopted = Vec::new();
        if let Some(n) = existing {
            // Jobs that waited for this name may be reachable from it: check before touching.
            for dep in depends_on {
                if let Some(&d) = self.by_name.get(dep.as_str())
                    && let Some(path) = self.path(n, d)
                {
                    let mut cycle: Vec<String> = path
                        .iter()
                        .map(|&i| String::from(&*self.graph[i].name))
                        .collect();
                    cycle.push(name.to_string());
                    return Err(CycleError { cycle });
                }
            }
        }
        let n = existing.unwrap_or_else(|| self.new_node(Arc::clone(name)));
        // A job added again (deleted, then submitted anew, kept meanwhile for its dependents):
        // its dependencies are the ones it names now, counted afresh.
        let stale: Vec<_> = self
            .graph
            .edges_directed(n, Incoming)
            .map(|e| e.id())
            .collect();
        for e in stale {
            self.graph.remove_edge(e);
        }
        let entry = &mut self.graph[n];
        entry.unmet = 0;
        entry.missing = 0;
        let was_placeholder = entry.status == Status::Placeholder;
        entry.job = Some(job);
        entry.status = Status::Waiting;
        entry.length = length;
        let mut ancestor_failed = false;
        for dep in depends_on {
            let d = match self.by_name.get(dep.as_str()) {
                Some(&d) => d,
                None => match known(dep) {
                    Some((id, status, name)) => {
                        let d = self.new_node(name);
                        self.graph[d].job = Some(id);
                        self.graph[d].status = status;
                        adopted.push((id, d));
                        d
                    }
                    None => self.new_node(Arc::from(dep.as_str())),
                },
            };
            self.graph.add_edge(d, n, ());
            self.tails_dirty = true;
            match self.graph[d].status {
                Status::Succeeded => {}
                Status::Failed => {
                    ancestor_failed = true;
                    self.graph[n].unmet += 1;
                }
                Status::Waiting => self.graph[n].unmet += 1,
                Status::Placeholder => {
                    self.graph[n].unmet += 1;
                    self.graph[n].missing += 1;
                }
            }
        }
        if ancestor_failed {
            self.graph[n].status = Status::Failed;
        }
        if self.missing_any(n) {
            self.set_missing_since(n, Some(now));
        }
        if was_placeholder {
            self.found(n);
        }
        Ok(Added {
            node: Some(n),
            adopted,
        })
    }

    /// The node of a name, if it has one.
    pub fn node_of(&self, name: &str) -> Option<NodeIndex> {
        self.by_name.get(name).copied()
    }

    fn set_missing_since(&mut self, n: NodeIndex, since: Option<Time>) {
        if let Some(old) = self.graph[n].missing_since {
            self.missing_since.remove(&(old, n));
        }
        if let Some(t) = since {
            self.missing_since.insert((t, n));
        }
        self.graph[n].missing_since = since;
    }

    /// Shortest path of names from `from` to `to` along dependency edges, if any.
    fn path(&self, from: NodeIndex, to: NodeIndex) -> Option<Vec<NodeIndex>> {
        let mut parent: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(at) = queue.pop_front() {
            if at == to {
                let mut path = vec![to];
                let mut cur = to;
                while let Some(&p) = parent.get(&cur) {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            for next in self.graph.neighbors_directed(at, Outgoing) {
                if seen.insert(next) {
                    parent.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// Recomputes the downstream tail of every job still waiting, if edges were added since
    /// the last time: one pass, reverse topological, over waiting jobs and the edges between
    /// them. Returns the eligible jobs (no unmet dependency) whose tail changed, as only they
    /// can be queued and move in the queue; the others take their tail when they become
    /// eligible. The order depends only on the graph.
    pub fn refresh_tails(&mut self) -> Vec<JobId> {
        if !std::mem::take(&mut self.tails_dirty) {
            return Vec::new();
        }
        // Each pass marks the nodes it settles with its own number, in the nodes themselves:
        // no side table the size of the graph to allocate and touch.
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // Wrapped: no stale mark may equal the new number.
            for e in self.graph.node_weights_mut() {
                e.epoch = 0;
            }
            self.epoch = 1;
        }
        let epoch = self.epoch;
        let bound = petgraph::visit::NodeIndexable::node_bound(&self.graph);
        let settled = |g: &StableDiGraph<Entry, ()>, n: NodeIndex| g[n].epoch == epoch;
        let mut changed = Vec::new();
        let mut stack = Vec::new();
        // Newest first: jobs mostly arrive after what they depend on, so a node's dependents
        // are usually settled by the time it is reached and one look at them does it.
        for root in (0..bound).rev().map(NodeIndex::new) {
            if !self.waiting(root) || settled(&self.graph, root) {
                continue;
            }
            stack.push(root);
            // Iterative post-order: a node's tail is known once all its waiting dependents' are.
            while let Some(&n) = stack.last() {
                if settled(&self.graph, n) {
                    stack.pop();
                    continue;
                }
                let mut tail = Some(PathLength::default());
                for d in self.graph.neighbors_directed(n, Outgoing) {
                    if !self.waiting(d) {
                        continue;
                    }
                    let e = &self.graph[d];
                    if e.epoch == epoch {
                        tail = tail.map(|m| m.max(e.length.then(e.tail)));
                    } else {
                        stack.push(d);
                        tail = None;
                    }
                }
                let Some(tail) = tail else {
                    continue;
                };
                stack.pop();
                let e = &mut self.graph[n];
                e.epoch = epoch;
                if e.tail != tail {
                    e.tail = tail;
                    if let Some(job) = e.job.filter(|_| e.unmet == 0) {
                        changed.push(job);
                    }
                }
            }
        }
        changed
    }

    fn waiting(&self, n: NodeIndex) -> bool {
        self.graph
            .node_weight(n)
            .is_some_and(|e| e.status == Status::Waiting)
    }

    fn missing(&self, n: NodeIndex) -> impl Iterator<Item = &Arc<str>> {
        self.graph
            .neighbors_directed(n, Incoming)
            .filter(|&d| self.graph[d].status == Status::Placeholder)
            .map(|d| &self.graph[d].name)
    }

    /// Whether a job waits on a name no job has yet.
    pub fn missing_any(&self, n: NodeIndex) -> bool {
        self.graph[n].missing > 0
    }

    /// Dependencies of a job not yet succeeded.
    pub fn unmet(&self, n: NodeIndex) -> u32 {
        self.graph[n].unmet
    }

    /// Where a node stands.
    pub fn status(&self, n: NodeIndex) -> Status {
        self.graph[n].status
    }

    /// The longest chain of work behind a job, as of the last [`DagGate::refresh_tails`].
    pub fn tail(&self, n: NodeIndex) -> PathLength {
        self.graph[n].tail
    }

    /// Unfinished dependencies of a job, split into (submitted, missing), each in name order.
    /// The names are shared with the gate, not copied.
    pub fn blockers(&self, n: NodeIndex) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
        let (mut waiting, mut missing) = (Vec::new(), Vec::new());
        for d in self.graph.neighbors_directed(n, Incoming) {
            let e = &self.graph[d];
            match e.status {
                Status::Placeholder => missing.push(Arc::clone(&e.name)),
                Status::Waiting | Status::Failed => waiting.push(Arc::clone(&e.name)),
                Status::Succeeded => {}
            }
        }
        waiting.sort_unstable();
        missing.sort_unstable();
        (waiting, missing)
    }

    /// A job succeeded: dependents whose last unmet dependency it was become eligible; they
    /// are appended to `eligible` in id order (a buffer the caller keeps, as this runs once
    /// per job).
    pub fn succeeded(&mut self, n: NodeIndex, eligible: &mut Vec<JobId>) {
        if self.graph[n].status == Status::Succeeded {
            return;
        }
        self.graph[n].status = Status::Succeeded;
        let from = eligible.len();
        let mut dependents = self.graph.neighbors_directed(n, Outgoing).detach();
        while let Some(d) = dependents.next_node(&self.graph) {
            let e = &mut self.graph[d];
            e.unmet = e.unmet.saturating_sub(1);
            if e.unmet == 0
                && e.status == Status::Waiting
                && let Some(job) = e.job
            {
                eligible.push(job);
            }
        }
        eligible[from..].sort_unstable();
    }

    /// A job failed (or was deleted before it succeeded): every transitive dependent fails,
    /// naming it as the cause.
    pub fn failed(&mut self, n: NodeIndex) -> Released {
        if self.graph[n].status == Status::Succeeded {
            return Released::default();
        }
        let name = String::from(&*self.graph[n].name);
        self.graph[n].status = Status::Failed;
        self.set_missing_since(n, None);
        let mut out = Released::default();
        let mut work = vec![n];
        while let Some(at) = work.pop() {
            let dependents: Vec<NodeIndex> = self.graph.neighbors_directed(at, Outgoing).collect();
            for d in dependents {
                let e = &mut self.graph[d];
                if e.status == Status::Waiting {
                    e.status = Status::Failed;
                    if let Some(job) = e.job {
                        out.failed.push((job, name.clone()));
                    }
                    self.set_missing_since(d, None);
                    work.push(d);
                }
            }
        }
        out.failed.sort_unstable();
        out
    }

    /// A job was deleted. Before success this fails its dependents (see [`DagGate::failed`]);
    /// after success its name stays, as succeeded, while jobs depend on it. A job that nobody
    /// had named when it was deleted is forgotten: a job naming it later finds it missing.
    pub fn deleted(&mut self, n: NodeIndex) -> Released {
        let out = self.failed(n);
        let e = &mut self.graph[n];
        e.job = None;
        if e.status != Status::Succeeded
            && self.graph.neighbors_directed(n, Outgoing).next().is_none()
        {
            // Nothing depends on it any more: forget it entirely.
            self.set_missing_since(n, None);
            if let Some(e) = self.graph.remove_node(n) {
                self.by_name.remove(&e.name);
            }
        }
        out
    }

    /// Jobs that have waited on a missing dependency for `timeout` or longer at `now`, with
    /// the names still missing. Looks only at the expired waits.
    pub fn expired(&self, now: Time, timeout: Span) -> Vec<(JobId, Vec<Arc<str>>)> {
        let Some(cutoff) = now.0.checked_sub(timeout.0) else {
            return Vec::new();
        };
        let mut out: Vec<(JobId, Vec<Arc<str>>)> = self
            .missing_since
            .range(..=(Time(cutoff), NodeIndex::end()))
            .filter_map(|&(_, n)| {
                let e = &self.graph[n];
                let job = e.job.filter(|_| e.status == Status::Waiting)?;
                let mut missing: Vec<Arc<str>> = self.missing(n).cloned().collect();
                missing.sort_unstable();
                (!missing.is_empty()).then_some((job, missing))
            })
            .collect();
        out.sort();
        out
    }

    /// A job arrived at node `n`, which was a placeholder: its dependents miss one name fewer,
    /// and no longer wait on a missing name unless another is still missing.
    fn found(&mut self, n: NodeIndex) {
        let mut dependents = self.graph.neighbors_directed(n, Outgoing).detach();
        while let Some(d) = dependents.next_node(&self.graph) {
            let e = &mut self.graph[d];
            e.missing = e.missing.saturating_sub(1);
            if e.missing == 0 && e.missing_since.is_some() {
                self.set_missing_since(d, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The gate and what its caller knows of every job, as the engine keeps it.
    #[derive(Default)]
    struct Jobs {
        g: DagGate,
        known: BTreeMap<String, (JobId, Status)>,
    }

    impl Jobs {
        fn add_at(
            &mut self,
            id: JobId,
            name: &str,
            on: &[&str],
            len: PathLength,
            now: Time,
        ) -> Result<(), CycleError> {
            let known = &self.known;
            self.g.add(id, &Arc::from(name), &deps(on), len, now, |n| {
                known.get(n).map(|&(id, status)| (id, status, Arc::from(n)))
            })?;
            self.known.insert(name.to_string(), (id, Status::Waiting));
            Ok(())
        }
        fn add(&mut self, id: JobId, name: &str, on: &[&str]) -> Result<(), CycleError> {
            self.add_at(id, name, on, PathLength::of_job(None), Time::ZERO)
        }
        fn n(&self, name: &str) -> Option<NodeIndex> {
            self.g.node_of(name)
        }
        fn unmet(&self, name: &str) -> u32 {
            self.n(name).map_or(0, |n| self.g.unmet(n))
        }
        fn status(&self, name: &str) -> Option<Status> {
            self.n(name).map(|n| self.g.status(n))
        }
        fn tail(&self, name: &str) -> PathLength {
            self.n(name)
                .map_or(PathLength::default(), |n| self.g.tail(n))
        }
        fn blockers(&self, name: &str) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
            self.n(name)
                .map_or_else(Default::default, |n| self.g.blockers(n))
        }
        fn set(&mut self, name: &str, status: Status) {
            if let Some(e) = self.known.get_mut(name) {
                e.1 = status;
            }
        }
        fn succeeded(&mut self, name: &str) -> Released {
            self.set(name, Status::Succeeded);
            let mut out = Released::default();
            if let Some(n) = self.n(name) {
                self.g.succeeded(n, &mut out.eligible);
            }
            out
        }
        fn failed(&mut self, name: &str) -> Released {
            self.set(name, Status::Failed);
            self.n(name)
                .map_or_else(Released::default, |n| self.g.failed(n))
        }
        fn deleted(&mut self, name: &str) -> Released {
            self.known.remove(name);
            self.n(name)
                .map_or_else(Released::default, |n| self.g.deleted(n))
        }
    }

    #[test]
    fn a_chain_releases_one_stage_at_a_time() {
        let mut j = Jobs::default();
        j.add(0, "a", &[]).unwrap();
        j.add(1, "b", &["a"]).unwrap();
        j.add(2, "c", &["b"]).unwrap();
        assert_eq!((j.unmet("a"), j.unmet("b"), j.unmet("c")), (0, 1, 1));
        j.g.refresh_tails();
        assert_eq!(j.tail("a").stages, 2, "b and c are behind a");
        assert_eq!(j.succeeded("a").eligible, vec![1]);
        assert_eq!(j.succeeded("b").eligible, vec![2]);
    }

    /// A job deleted while a dependent waits on it keeps its node; submitted again (a job its
    /// controller restarted), it depends on what it names now, counted once: its old edges
    /// neither linger nor count twice.
    #[test]
    fn a_job_added_again_depends_on_what_it_names_now() {
        let mut j = Jobs::default();
        j.add(0, "a", &[]).unwrap();
        j.add(1, "x", &[]).unwrap();
        j.add(2, "b", &["a", "x"]).unwrap();
        j.add(3, "c", &["b"]).unwrap();
        assert_eq!(j.deleted("b").failed, vec![(3, "b".into())]);
        // Both come back, b first (as the adapter takes a restarted job back in).
        j.deleted("c");
        j.add(2, "b", &["a"]).unwrap();
        j.add(3, "c", &["b"]).unwrap();
        assert_eq!(j.unmet("b"), 1, "only a, once");
        assert_eq!(j.unmet("c"), 1);
        assert!(
            j.succeeded("x").eligible.is_empty(),
            "b no longer waits on x"
        );
        assert_eq!(j.succeeded("a").eligible, vec![2]);
        assert_eq!(j.succeeded("b").eligible, vec![3]);
    }

    #[test]
    fn a_diamond_waits_for_both_sides() {
        let mut j = Jobs::default();
        j.add(0, "a", &[]).unwrap();
        j.add(1, "b", &["a"]).unwrap();
        j.add(2, "c", &["a"]).unwrap();
        j.add(3, "d", &["b", "c"]).unwrap();
        assert_eq!(j.succeeded("a").eligible, vec![1, 2]);
        assert!(j.succeeded("b").eligible.is_empty());
        assert_eq!(j.succeeded("c").eligible, vec![3]);
    }

    #[test]
    fn a_cycle_is_refused_with_every_job_named_and_nothing_changed() {
        let mut j = Jobs::default();
        // c waits for a, which does not exist yet; b waits for c.
        j.add(0, "c", &["a"]).unwrap();
        j.add(1, "b", &["c"]).unwrap();
        let err = j.add(2, "a", &["b"]).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: a -> c -> b -> a");
        assert_eq!(j.status("a"), Some(Status::Placeholder), "a was not added");
        // Jobs outside the cycle are unaffected; a may come back without the cycle.
        j.add(3, "x", &[]).unwrap();
        j.add(2, "a", &["x"]).unwrap();
        assert_eq!(j.succeeded("x").eligible, vec![2]);
    }

    #[test]
    fn failure_reaches_exactly_the_transitive_dependents() {
        let mut j = Jobs::default();
        j.add(0, "a", &[]).unwrap();
        j.add(1, "b", &["a"]).unwrap();
        j.add(2, "c", &["b"]).unwrap();
        j.add(3, "other", &[]).unwrap();
        j.add(4, "d", &["other", "c"]).unwrap();
        let r = j.failed("a");
        assert_eq!(
            r.failed,
            vec![(1, "a".into()), (2, "a".into()), (4, "a".into())]
        );
        assert_eq!(j.status("other"), Some(Status::Waiting));
        // A job arriving later that depends on a failed job fails at once.
        j.add(5, "late", &["c"]).unwrap();
        assert_eq!(j.status("late"), Some(Status::Failed));
    }

    #[test]
    fn missing_dependencies_expire_after_the_timeout() {
        let mut j = Jobs::default();
        j.add_at(0, "b", &["a"], PathLength::of_job(None), Time(1_000))
            .unwrap();
        let ten_min = Span(600_000);
        assert!(j.g.expired(Time(600_999), ten_min).is_empty());
        assert_eq!(
            j.g.expired(Time(601_000), ten_min),
            vec![(0, vec!["a".into()])]
        );
        j.add(1, "a", &[]).unwrap();
        assert!(j.g.expired(Time(10_000_000), ten_min).is_empty());
    }

    #[test]
    fn tails_are_the_longest_chain_of_waiting_work_behind_a_job() {
        let mut j = Jobs::default();
        let len = |s| PathLength::of_job(Some(Span(s)));
        j.add_at(0, "a", &["x"], len(10), Time::ZERO).unwrap();
        j.add_at(1, "b", &["a"], len(100), Time::ZERO).unwrap();
        j.add_at(2, "c", &["b"], len(1000), Time::ZERO).unwrap();
        j.add_at(3, "d", &["a"], len(5), Time::ZERO).unwrap();
        assert!(
            j.g.refresh_tails().is_empty(),
            "a waits for x, the rest for a: none can be queued, so none is reported"
        );
        assert_eq!(
            j.tail("a"),
            PathLength {
                declared_ms: 1100,
                stages: 2
            }
        );
        assert_eq!(
            j.tail("b"),
            PathLength {
                declared_ms: 1000,
                stages: 1
            }
        );
        assert_eq!(j.tail("c"), PathLength::default());
        assert!(j.g.refresh_tails().is_empty(), "nothing changed since");
        // Work that has run is no longer behind anyone.
        j.succeeded("x");
        j.succeeded("a");
        j.succeeded("b");
        j.add_at(4, "e", &["c"], len(1), Time::ZERO).unwrap();
        assert_eq!(j.g.refresh_tails(), vec![2]);
        assert_eq!(
            j.tail("c"),
            PathLength {
                declared_ms: 1,
                stages: 1
            }
        );
    }

    #[test]
    fn jobs_outside_any_dag_cost_nothing_until_named() {
        let mut j = Jobs::default();
        j.add(0, "solo", &[]).unwrap();
        assert_eq!(j.status("solo"), None, "no node for a job outside any DAG");
        j.succeeded("solo");
        j.add(1, "next", &["solo"]).unwrap();
        assert_eq!(j.unmet("next"), 0, "the caller said solo had succeeded");
    }

    #[test]
    fn deletion_fails_dependents_only_before_success() {
        let mut j = Jobs::default();
        j.add(0, "a", &[]).unwrap();
        j.add(1, "b", &["a"]).unwrap();
        j.succeeded("a");
        assert!(j.deleted("a").failed.is_empty());
        assert_eq!(j.status("b"), Some(Status::Waiting));
        j.add(2, "x", &[]).unwrap();
        j.add(3, "y", &["x"]).unwrap();
        assert_eq!(j.deleted("x").failed, vec![(3, "x".into())]);
        // A job named only after it succeeded and was deleted is missing: nothing remembers it.
        j.add(4, "gone", &[]).unwrap();
        j.succeeded("gone");
        j.deleted("gone");
        j.add(5, "orphan", &["gone"]).unwrap();
        assert_eq!(j.blockers("orphan").1, vec![Arc::from("gone")]);
    }
}
