//! How the names of Kubernetes queue objects become dotted queue paths under `root`: one name
//! alone ([`queue_path`]), and Volcano's `spec.parent` chains, however deep
//! ([`resolve_parent_chains`]). The Kubernetes adapter and the simulator's manifest converter
//! both place queues with these, so a workload served live and the same manifests simulated
//! land in the same queues.

use std::collections::BTreeMap;

use crate::job::DEFAULT_QUEUE;

/// The queue path of a queue object's name: `default` (or no name) is `root.default`, a name
/// already under `root` stays, any other is `root.<name>` (dots in it become dashes, as a dot
/// separates levels).
pub fn queue_path(name: &str) -> String {
    if name == "default" || name.is_empty() {
        DEFAULT_QUEUE.into()
    } else if name == "root" || name.starts_with("root.") {
        name.to_string()
    } else {
        format!("root.{}", segment(name))
    }
}

/// A queue object's own level of a dotted path: its name, dots made dashes.
pub fn segment(name: &str) -> String {
    name.replace('.', "-")
}

/// Where a queue object goes, as read from the object alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// At this path: it names no parent (or its place is given otherwise, such as by Volcano's
    /// `volcano.sh/hierarchy` annotation).
    Top(String),
    /// Under the queue object of this name (`spec.parent`), whose path is found by following
    /// its own link.
    Under(String),
}

impl Link {
    /// Where a queue object `name` with `spec.parent` `parent` goes: an absent, empty or `root`
    /// parent places it at its own [`queue_path`]; any other name puts it under that queue.
    pub fn of(name: &str, parent: Option<&str>) -> Link {
        match parent {
            Some(p) if !p.is_empty() && p != "root" => Link::Under(p.to_string()),
            _ => Link::Top(queue_path(name)),
        }
    }
}

/// A `spec.parent` chain that cannot be followed, reported on the queue whose `spec.parent`
/// breaks it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParentChainError {
    /// `child` names a parent no queue object has.
    #[error("queue {parent} does not exist (parent chain {child} -> {parent})")]
    Missing {
        /// The queue naming the parent.
        child: String,
        /// The name no queue has.
        parent: String,
    },
    /// The chain comes back to a queue on it: the queues of the loop, starting from the first
    /// by name, which is repeated at the end (`a -> b -> a`).
    #[error("the parent chain loops: {}", .ring.join(" -> "))]
    Loop {
        /// The loop.
        ring: Vec<String>,
    },
}

impl ParentChainError {
    /// The queue whose `spec.parent` breaks the chain.
    pub fn queue(&self) -> &str {
        match self {
            ParentChainError::Missing { child, .. } => child,
            ParentChainError::Loop { ring } => ring.first().map_or("", String::as_str),
        }
    }
}

/// Every queue object's path, with `spec.parent` chains followed: a queue under a parent is at
/// the parent's path and its own [`segment`] (`team-a` under `ml` under `eng` is
/// `root.eng.ml.team-a`). A chain ends at a [`Link::Top`] queue, or at `default`, which always
/// exists.
///
/// A queue whose chain cannot be followed gets `broken` of why (see [`ParentChainError`]); so
/// does every queue below the break, and every queue below an entry that is already an error
/// gets that error. The result depends only on the links, not on the map's order of walks.
pub fn resolve_parent_chains<E: Clone>(
    links: &BTreeMap<String, Result<Link, E>>,
    broken: impl Fn(ParentChainError) -> E,
) -> BTreeMap<String, Result<String, E>> {
    let mut paths: BTreeMap<String, Result<String, E>> = BTreeMap::new();
    for name in links.keys() {
        if !paths.contains_key(name) {
            walk(name, links, &broken, &mut paths);
        }
    }
    paths
}

/// Follows `name`'s chain up to a queue whose path is known (or a break), then writes the path
/// of every queue on the way down into `paths`.
fn walk<E: Clone>(
    name: &str,
    links: &BTreeMap<String, Result<Link, E>>,
    broken: &impl Fn(ParentChainError) -> E,
    paths: &mut BTreeMap<String, Result<String, E>>,
) {
    let mut chain: Vec<&str> = vec![name];
    let top: Result<String, E> = loop {
        let here = *chain.last().expect("never empty");
        if let Some(known) = paths.get(here) {
            break known.clone();
        }
        let parent = match links.get(here) {
            Some(Ok(Link::Top(path))) => break Ok(path.clone()),
            Some(Ok(Link::Under(parent))) => parent.as_str(),
            Some(Err(e)) => break Err(e.clone()),
            // Only a parent can be missing (the walk starts at a queue object).
            None if queue_path(here) == DEFAULT_QUEUE => break Ok(DEFAULT_QUEUE.to_string()),
            None => {
                let child = chain[chain.len() - 2];
                break Err(broken(ParentChainError::Missing {
                    child: child.to_string(),
                    parent: here.to_string(),
                }));
            }
        };
        if let Some(at) = chain.iter().position(|&c| c == parent) {
            // Written from its first queue by name, so every walk into the loop says the same.
            let ring = &chain[at..];
            let first = (0..ring.len()).min_by_key(|&i| ring[i]).unwrap_or(0);
            let mut ring: Vec<String> = ring[first..]
                .iter()
                .chain(&ring[..first])
                .map(|q| q.to_string())
                .collect();
            ring.push(ring[0].clone());
            break Err(broken(ParentChainError::Loop { ring }));
        }
        chain.push(parent);
    };
    // Down again: each queue below the top goes under its parent's path. A missing parent is not
    // remembered: another queue naming it gets its own error.
    let last = chain.len() - 1;
    if links.contains_key(chain[last]) {
        paths
            .entry(chain[last].to_string())
            .or_insert_with(|| top.clone());
    }
    let mut path = top;
    for &q in chain[..last].iter().rev() {
        path = path.map(|p| format!("{p}.{}", segment(q)));
        paths.insert(q.to_string(), path.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(
        spec: &[(&str, Result<Link, &'static str>)],
    ) -> BTreeMap<String, Result<Link, String>> {
        spec.iter()
            .map(|(n, l)| (n.to_string(), l.clone().map_err(String::from)))
            .collect()
    }

    fn under(p: &str) -> Result<Link, &'static str> {
        Ok(Link::Under(p.into()))
    }

    fn resolve(
        l: &BTreeMap<String, Result<Link, String>>,
    ) -> BTreeMap<String, Result<String, String>> {
        resolve_parent_chains(l, |e| format!("{}: {e}", e.queue()))
    }

    #[test]
    fn names_alone_become_paths_under_root() {
        assert_eq!(queue_path("default"), "root.default");
        assert_eq!(queue_path(""), "root.default");
        assert_eq!(queue_path("team-a"), "root.team-a");
        assert_eq!(queue_path("root.eng"), "root.eng");
        assert_eq!(queue_path("a.b"), "root.a-b");
    }

    #[test]
    fn an_absent_empty_or_root_parent_leaves_the_queue_at_its_own_path() {
        for parent in [None, Some(""), Some("root")] {
            assert_eq!(Link::of("team", parent), Link::Top("root.team".into()));
        }
        assert_eq!(Link::of("team", Some("eng")), Link::Under("eng".into()));
    }

    #[test]
    fn chains_of_any_depth_end_at_a_top_queue_or_default() {
        let l = links(&[
            ("eng", Ok(Link::Top("root.eng".into()))),
            ("ml", under("eng")),
            ("team-a", under("ml")),
            ("team.b", under("team-a")),
            ("batch", under("default")),
        ]);
        let p = resolve(&l);
        assert_eq!(p["team.b"], Ok("root.eng.ml.team-a.team-b".to_string()));
        assert_eq!(p["team-a"], Ok("root.eng.ml.team-a".to_string()));
        assert_eq!(p["batch"], Ok("root.default.batch".to_string()));
        assert_eq!(p.len(), l.len());
    }

    #[test]
    fn a_missing_parent_is_reported_on_the_queue_naming_it_and_below() {
        let l = links(&[("new", under("later")), ("leaf", under("new"))]);
        let p = resolve(&l);
        let want = "new: queue later does not exist (parent chain new -> later)".to_string();
        assert_eq!(p["new"], Err(want.clone()));
        assert_eq!(p["leaf"], Err(want));
        assert!(!p.contains_key("later"));
    }

    #[test]
    fn a_loop_is_written_from_its_first_queue_whichever_walk_finds_it() {
        let l = links(&[
            ("ml", under("team-a")),
            ("team-a", under("eng")),
            ("eng", under("ml")),
            ("leaf", under("team-a")),
        ]);
        let p = resolve(&l);
        let want = "eng: the parent chain loops: eng -> ml -> team-a -> eng".to_string();
        for q in ["ml", "team-a", "eng", "leaf"] {
            assert_eq!(p[q], Err(want.clone()), "{q}");
        }
        // A queue naming itself is a loop of one.
        let p = resolve(&links(&[("self", under("self"))]));
        assert_eq!(
            p["self"],
            Err("self: the parent chain loops: self -> self".to_string())
        );
    }

    #[test]
    fn queues_below_an_invalid_one_share_its_error() {
        let l = links(&[
            ("bad", Err("Queue bad: spec.weight: -1")),
            ("child", under("bad")),
        ]);
        let p = resolve(&l);
        assert_eq!(p["child"], Err("Queue bad: spec.weight: -1".to_string()));
        assert_eq!(p["bad"], p["child"]);
    }
}
