//! Reservation planning for a blocked gang: which nodes will have room for it soonest, and when.
//!
//! A gang that does not fit now would starve behind a stream of small jobs, each of which fits in
//! the room one finishing pod leaves. So when a queue's head gang is blocked, the engine holds
//! for it the nodes this module picks: it estimates when every running pod will end (its declared
//! duration where the job gives one; otherwise as long again as it has run, at least
//! [`MIN_RUNTIME_ESTIMATE`]), finds the earliest instant at which enough of the gang's admitted
//! nodes are free, and returns those nodes with what to hold on each. The engine then holds the
//! room on them as it frees and backfills only work that ends before the expected start.
//!
//! The plan is a sweep over release times with a greedy fit at each probed instant, found by
//! binary search: O(releases + nodes · log nodes · log releases) per plan (the room freed is
//! summed on from probe to probe, not from the start), and a plan is made once per blocked
//! gang, not per cycle.

use std::collections::{BTreeMap, BTreeSet};

use phalanx_model::{Resources, Span, Time};

use crate::gang::Shape;
use crate::snapshot::{NodeId, Snapshot};

/// The least time a pod with no declared duration is expected to run on from now.
pub const MIN_RUNTIME_ESTIMATE: Span = Span(60_000);

/// A running pod's expected end: the room it gives back, where and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// Its node.
    pub node: NodeId,
    /// When it is expected to end.
    pub at: Time,
    /// Its request.
    pub amount: Resources,
}

impl Release {
    /// When a pod placed at `since` is expected to end, seen at `now`: at `since + duration`
    /// when the duration is declared (now, if it overran), else after running as long again as
    /// it has so far, and at least [`MIN_RUNTIME_ESTIMATE`] more.
    pub fn expected_end(since: Time, duration: Option<Span>, now: Time) -> Time {
        match duration {
            Some(d) => Time(since.0.saturating_add(d.0).max(now.0)),
            None => {
                let elapsed = now.0.saturating_sub(since.0);
                Time(now.0.saturating_add(elapsed.max(MIN_RUNTIME_ESTIMATE.0)))
            }
        }
    }
}

/// What planning found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// Hold this room and wait.
    Wait(ReservationPlan),
    /// The gang would fit right now: nothing to wait for (it missed for another reason, such as
    /// its queue's headroom).
    FitsNow,
    /// The gang would not fit even after every known release: only new or changed nodes help.
    Never,
}

/// What to hold for a blocked gang and when it is expected to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationPlan {
    /// Room to hold per node: the requests of the gang's pods planned there.
    pub want: BTreeMap<NodeId, Resources>,
    /// When enough room is expected to be free.
    pub start: Time,
}

/// Plans where `need[t]` pods of each of `shapes` will fit soonest, given the lists of what
/// frees and when, `releases` (each in any order;
/// a list in order of time is merged, not sorted), and the room already `held` for the gang, on nodes
/// other than the `promised` ones (what frees there goes to gangs planned earlier).
pub fn plan(
    snap: &Snapshot,
    shapes: &[Shape<'_>],
    need: &[u32],
    releases: &[&[Release]],
    held: &BTreeMap<NodeId, Resources>,
    promised: &BTreeSet<NodeId>,
) -> Planned {
    // Candidate nodes: live ones some needed shape admits.
    let mut slot = vec![usize::MAX; snap.nodes().len()];
    let mut nodes: Vec<NodeId> = Vec::new();
    let mut admits: Vec<Vec<bool>> = Vec::new();
    for (i, entry) in snap.nodes().iter().enumerate() {
        if !entry.live || promised.contains(&(i as NodeId)) {
            continue;
        }
        let admitted: Vec<bool> = shapes
            .iter()
            .zip(need)
            .map(|(sh, &n)| n > 0 && sh.classes.iter().any(|&(_, c)| c == entry.class))
            .collect();
        if admitted.iter().any(|&a| a) {
            slot[i] = nodes.len();
            nodes.push(i as NodeId);
            admits.push(admitted);
        }
    }
    let base: Vec<Resources> = nodes
        .iter()
        .map(|&n| {
            snap.node(n).free().clamp_zero() + held.get(&n).copied().unwrap_or(Resources::ZERO)
        })
        .collect();
    // Only the instants matter (a prefix ends where the time changes, and free room is a
    // sum), so the releases on candidate nodes are put in order of time alone.
    let mut relevant: Vec<(Time, usize, Resources)> = Vec::new();
    for list in releases {
        let on_candidates = list
            .iter()
            .filter(|r| slot.get(r.node as usize).is_some_and(|&s| s != usize::MAX))
            .map(|r| (r.at, slot[r.node as usize], r.amount));
        relevant = merge_by_time(relevant, on_candidates.collect());
    }
    // Free room after a prefix of the releases is summed on from the longest prefix probed
    // that did not fit (the search below only probes beyond it), so each release is added a
    // few times in all rather than once per probe; the sums are made in the same order.
    let mut short: (usize, Vec<Resources>) = (0, base.clone());
    let mut fits_at = |until: usize| -> Option<Vec<(usize, Resources)>> {
        if until < short.0 {
            short = (0, base.clone());
        }
        let mut free = short.1.clone();
        for &(_, i, amount) in &relevant[short.0..until] {
            free[i] += amount;
        }
        let placed = greedy_fit(&free, &admits, shapes, need);
        if placed.is_none() {
            short = (until, free);
        }
        placed
    };
    if fits_at(0).is_some() {
        return Planned::FitsNow;
    }
    // The smallest prefix of releases after which the gang fits; prefixes end on a time
    // boundary so every release of one instant counts together.
    let ends: Vec<usize> = (1..=relevant.len())
        .filter(|&k| k == relevant.len() || relevant[k].0 != relevant[k - 1].0)
        .collect();
    match ends.last() {
        Some(&last) if fits_at(last).is_some() => {}
        _ => return Planned::Never,
    }
    let (mut lo, mut hi) = (0, ends.len() - 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fits_at(ends[mid]).is_some() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let until = ends[lo];
    let Some(placed) = fits_at(until) else {
        return Planned::Never;
    };
    let mut want: BTreeMap<NodeId, Resources> = BTreeMap::new();
    for (i, amount) in placed {
        *want.entry(nodes[i]).or_default() += amount;
    }
    Planned::Wait(ReservationPlan {
        want,
        start: relevant[until - 1].0,
    })
}

/// Two lists of releases as one in order of time: sorted first unless already in order (as
/// [`crate::engine`] gives running pods' releases), then merged in one pass.
fn merge_by_time(
    a: Vec<(Time, usize, Resources)>,
    mut b: Vec<(Time, usize, Resources)>,
) -> Vec<(Time, usize, Resources)> {
    if !b.is_sorted_by_key(|r| r.0) {
        b.sort_unstable_by_key(|r| r.0);
    }
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        let next = if x.0 <= y.0 { a.next() } else { b.next() };
        out.extend(next);
    }
    out.extend(a);
    out.extend(b);
    out
}

/// Places `need[t]` pods of each shape on nodes with room `free`, the roomiest nodes first so the
/// gang takes as few nodes as it can; what each node takes, or `None` when they do not all fit.
fn greedy_fit(
    free: &[Resources],
    admits: &[Vec<bool>],
    shapes: &[Shape<'_>],
    need: &[u32],
) -> Option<Vec<(usize, Resources)>> {
    let mut free = free.to_vec();
    let mut taken = Vec::new();
    for (t, shape) in shapes.iter().enumerate() {
        let mut left = need[t] as u64;
        if left == 0 {
            continue;
        }
        let mut order: Vec<(u64, usize)> = (0..free.len())
            .filter(|&i| admits[i][t])
            .map(|i| (free[i].count_fitting_lanes(&shape.request, shape.lanes), i))
            .filter(|&(fit, _)| fit > 0)
            .collect();
        order.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (fit, i) in order {
            let m = fit.min(left);
            let amount = shape.request.times(m);
            free[i] -= amount;
            taken.push((i, amount));
            left -= m;
            if left == 0 {
                break;
            }
        }
        if left > 0 {
            return None;
        }
    }
    Some(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_model::{Node, PodSpec, ResourceId};

    fn cpu(m: i64) -> Resources {
        Resources::of(ResourceId::CPU, m).with(ResourceId::PODS, 110)
    }

    /// Three 8-cpu nodes, full: `a` frees 4 cpu at 10 s and 4 more at 50 s, `b` frees 8 at
    /// 20 s, `c` frees 8 at 30 s.
    fn cluster() -> (Snapshot, Vec<Release>) {
        let mut snap = Snapshot::default();
        let ids: Vec<NodeId> = ["a", "b", "c"]
            .iter()
            .map(|n| snap.upsert_node(Node::new(*n, cpu(8000))))
            .collect();
        for &n in &ids {
            snap.assume(n, Resources::of(ResourceId::CPU, 8000));
        }
        let r = |node, at: u64, m| Release {
            node,
            at: Time(at * 1000),
            amount: Resources::of(ResourceId::CPU, m),
        };
        let releases = vec![
            r(ids[0], 50, 4000),
            r(ids[2], 30, 8000),
            r(ids[0], 10, 4000),
            r(ids[1], 20, 8000),
        ];
        (snap, releases)
    }

    /// The plan for `pods` pods of `pod_cpu` millicores each, nothing held or promised.
    fn plan_cpu(snap: &Snapshot, releases: &[Release], pods: u32, pod_cpu: i64) -> Planned {
        let spec = PodSpec {
            requests: Resources::of(ResourceId::CPU, pod_cpu),
            ..Default::default()
        };
        let shapes = [Shape::new(snap, 0, &spec)];
        plan(
            snap,
            &shapes,
            &[pods],
            &[releases],
            &BTreeMap::new(),
            &BTreeSet::new(),
        )
    }

    fn plan_for(pods: u32, pod_cpu: i64) -> Planned {
        let (snap, releases) = cluster();
        plan_cpu(&snap, &releases, pods, pod_cpu)
    }

    #[test]
    fn the_earliest_instant_with_room_and_the_fewest_nodes() {
        // 12 cpu: a's 4 at 10 s and b's 8 at 20 s.
        let Planned::Wait(p) = plan_for(3, 4000) else {
            panic!("expected a plan")
        };
        assert_eq!(p.start, Time(20_000));
        assert_eq!(
            p.want.values().map(|r| r.get(ResourceId::CPU)).sum::<i64>(),
            12_000
        );
        assert_eq!(p.want.len(), 2);
        // An 8-cpu pod needs a whole node: b at 20 s, not a (whole only at 50 s).
        let Planned::Wait(p) = plan_for(1, 8000) else {
            panic!("expected a plan")
        };
        assert_eq!((p.start, p.want.len()), (Time(20_000), 1));
        // Everything: at 50 s.
        let Planned::Wait(p) = plan_for(6, 4000) else {
            panic!("expected a plan")
        };
        assert_eq!(p.start, Time(50_000));
    }

    #[test]
    fn too_big_for_the_cluster_is_never_and_nothing_to_wait_for_fits_now() {
        assert_eq!(plan_for(7, 4000), Planned::Never);
        assert_eq!(plan_for(1, 9000), Planned::Never);
        assert_eq!(plan_for(0, 4000), Planned::FitsNow);
    }

    #[test]
    fn expected_ends() {
        let (s, now) = (Time(100_000), Time(130_000));
        // Declared: from its start; overrun: now.
        assert_eq!(
            Release::expected_end(s, Some(Span(60_000)), now),
            Time(160_000)
        );
        assert_eq!(Release::expected_end(s, Some(Span(10_000)), now), now);
        // Undeclared: as long again as it ran, at least the minimum.
        assert_eq!(Release::expected_end(s, None, now), Time(190_000));
        assert_eq!(Release::expected_end(now, None, now), Time(190_000));
        let s = Time(0);
        assert_eq!(Release::expected_end(s, None, now), Time(260_000));
    }

    proptest::proptest! {
        /// The room summed on from probe to probe is the room summed from the start: for one
        /// shape (where more room never fits fewer pods) the plan starts at the first instant
        /// after which the pods fit, found by trying every instant in turn.
        #[test]
        fn the_plan_starts_at_the_first_instant_with_room(
            used in proptest::collection::vec(0i64..=8, 1..6),
            ends in proptest::collection::vec((0usize..6, 1u64..40, 1i64..=4), 0..24),
            pods in 1u32..12,
            pod_cpu in 1i64..=4,
        ) {
            let mut snap = Snapshot::default();
            let ids: Vec<NodeId> = (0..used.len())
                .map(|i| snap.upsert_node(Node::new(format!("n{i}"), cpu(8000))))
                .collect();
            for (&n, &u) in ids.iter().zip(&used) {
                snap.assume(n, Resources::of(ResourceId::CPU, u * 1000));
            }
            let releases: Vec<Release> = ends
                .iter()
                .map(|&(n, at, c)| Release {
                    node: ids[n % ids.len()],
                    at: Time(at * 1000),
                    amount: Resources::of(ResourceId::CPU, c * 1000),
                })
                .collect();
            let planned = plan_cpu(&snap, &releases, pods, pod_cpu * 1000);
            // Room per node after every release up to `t`, summed from the start.
            let fits_by = |t: Option<Time>| {
                let mut free: Vec<i64> = ids
                    .iter()
                    .map(|&n| snap.node(n).free().get(ResourceId::CPU))
                    .collect();
                for r in releases.iter().filter(|r| t.is_some_and(|t| r.at <= t)) {
                    free[r.node as usize] += r.amount.get(ResourceId::CPU);
                }
                let fit: u64 = free.iter().map(|f| (f.max(&0) / (pod_cpu * 1000)) as u64).sum();
                fit >= pods as u64
            };
            let mut instants: Vec<Time> = releases.iter().map(|r| r.at).collect();
            instants.sort_unstable();
            instants.dedup();
            if fits_by(None) {
                proptest::prop_assert_eq!(planned, Planned::FitsNow);
            } else if let Some(start) = instants.iter().copied().find(|&t| fits_by(Some(t))) {
                let Planned::Wait(p) = &planned else {
                    return Err(proptest::test_runner::TestCaseError::fail(format!(
                        "{planned:?}, expected a start at {start:?}"
                    )));
                };
                proptest::prop_assert_eq!(p.start, start);
                let held: i64 = p.want.values().map(|r| r.get(ResourceId::CPU)).sum();
                proptest::prop_assert_eq!(held, pods as i64 * pod_cpu * 1000);
            } else {
                proptest::prop_assert_eq!(planned, Planned::Never);
            }
        }
    }
}
