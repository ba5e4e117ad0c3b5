//! A queue's configuration, as admins write it: weight and the three quota levels. The
//! arithmetic on them lives in `phalanx-queue`; this is only the vocabulary.

use serde::{Deserialize, Serialize};

use crate::resource::Resources;

/// One queue of the tree, by dotted path under `root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSpec {
    /// Dotted path, `root.team.sub`.
    pub name: String,
    /// Relative weight among siblings (1..=65535).
    pub weight: u32,
    /// Always available to this queue.
    pub guarantee: Resources,
    /// Its fair share; `None` means the weight-proportional share.
    pub deserved: Option<Resources>,
    /// Hard cap; `None` means unlimited.
    pub capability: Option<Resources>,
    /// Whether resources it holds beyond `deserved` may be reclaimed.
    pub reclaimable: bool,
}

impl QueueSpec {
    /// A queue with weight 1, no guarantee, weight-proportional share, no cap, reclaimable.
    pub fn new(name: impl Into<String>) -> Self {
        QueueSpec {
            name: name.into(),
            weight: 1,
            guarantee: Resources::ZERO,
            deserved: None,
            capability: None,
            reclaimable: true,
        }
    }
}
