//! Resources as a fixed vector: one `i64` lane per resource, in canonical units (millicores for
//! cpu, bytes for memory and ephemeral-storage, counts for everything else).
//!
//! The first [`ResourceId::WELL_KNOWN`] lanes are fixed (`cpu`, `memory`, `pods`,
//! `nvidia.com/gpu`, `ephemeral-storage`); extended resources (`rdma/hca`, `amd.com/gpu`, ...) get
//! the next free lane from a [`ResourceTable`], which only ever grows, so a vector built earlier
//! keeps its meaning. A fixed array keeps `fits` and `add` branch-free and allocation-free on the
//! engine's hot path.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Serialize};

use crate::quantity::{Quantity, QuantityError};

/// How many resource lanes a [`Resources`] vector has: 5 well-known plus 11 extended.
pub const MAX_RESOURCES: usize = 16;

// [`Lanes`] keeps a bit per lane in a `u16`.
const _: () = assert!(MAX_RESOURCES <= 16);

/// The lane of one resource in a [`Resources`] vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceId(pub u8);

impl ResourceId {
    /// `cpu`, in millicores.
    pub const CPU: ResourceId = ResourceId(0);
    /// `memory`, in bytes.
    pub const MEMORY: ResourceId = ResourceId(1);
    /// `pods`: pod slots on a node; every pod requests exactly one.
    pub const PODS: ResourceId = ResourceId(2);
    /// `nvidia.com/gpu`, whole devices.
    pub const GPU: ResourceId = ResourceId(3);
    /// `ephemeral-storage`, in bytes.
    pub const EPHEMERAL_STORAGE: ResourceId = ResourceId(4);
    /// How many lanes are fixed; extended resources start here.
    pub const WELL_KNOWN: usize = 5;
    const NAMES: [&'static str; Self::WELL_KNOWN] = [
        "cpu",
        "memory",
        "pods",
        "nvidia.com/gpu",
        "ephemeral-storage",
    ];

    /// The lane index.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The Kubernetes name of a well-known resource, `None` for an extended one.
    pub fn well_known_name(self) -> Option<&'static str> {
        Self::NAMES.get(self.index()).copied()
    }
}

/// The lanes a request asks a positive amount of, a bit per lane: what
/// [`Resources::count_fitting_lanes`] reads. Lanes at zero or below ask for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Lanes(u16);

impl Lanes {
    /// The lanes `request` asks a positive amount of.
    #[inline]
    pub fn positive(request: &Resources) -> Lanes {
        let mut bits = 0u16;
        for (i, &v) in request.0.iter().enumerate() {
            bits |= ((v > 0) as u16) << i;
        }
        Lanes(bits)
    }
}

/// A resource vector in canonical units. Missing resources are zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Resources(pub [i64; MAX_RESOURCES]);

impl Resources {
    /// The zero vector.
    pub const ZERO: Resources = Resources([0; MAX_RESOURCES]);

    /// A vector with one resource set.
    #[inline]
    pub fn of(id: ResourceId, amount: i64) -> Self {
        let mut r = Self::ZERO;
        r.0[id.index()] = amount;
        r
    }

    /// Sets one resource, builder style.
    pub fn with(mut self, id: ResourceId, amount: i64) -> Self {
        self.0[id.index()] = amount;
        self
    }

    /// The amount of one resource.
    #[inline]
    pub fn get(&self, id: ResourceId) -> i64 {
        self.0[id.index()]
    }

    /// Sets the amount of one resource.
    #[inline]
    pub fn set(&mut self, id: ResourceId, amount: i64) {
        self.0[id.index()] = amount;
    }

    /// True when every lane of `self` is at most the same lane of `other`.
    #[inline]
    pub fn fits_in(&self, other: &Resources) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a <= b)
    }

    /// True when every lane is zero.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&v| v == 0)
    }

    /// True when some lane is negative.
    #[inline]
    pub fn any_negative(&self) -> bool {
        self.0.iter().any(|&v| v < 0)
    }

    /// `self × n`, saturating (a request times a replica count).
    #[inline]
    pub fn times(&self, n: u64) -> Resources {
        if n == 1 {
            return *self;
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        Resources(self.0.map(|v| v.saturating_mul(n)))
    }

    /// Lane-wise maximum with zero.
    #[inline]
    pub fn clamp_zero(&self) -> Resources {
        Resources(self.0.map(|v| v.max(0)))
    }

    /// Lane-wise minimum.
    #[inline]
    pub fn min(&self, other: &Resources) -> Resources {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0.iter()) {
            *a = (*a).min(*b);
        }
        out
    }

    /// Lane-wise maximum.
    #[inline]
    pub fn max(&self, other: &Resources) -> Resources {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0.iter()) {
            *a = (*a).max(*b);
        }
        out
    }

    /// How many copies of `request` fit in `self` (`u64::MAX` for a zero request).
    #[inline]
    pub fn count_fitting(&self, request: &Resources) -> u64 {
        self.count_fitting_lanes(request, Lanes::positive(request))
    }

    /// [`Resources::count_fitting`] with the request's [`Lanes`] worked out beforehand: a count
    /// asked of many nodes for one request reads the few lanes it names (cpu, memory, pods)
    /// instead of all [`MAX_RESOURCES`].
    #[inline]
    pub fn count_fitting_lanes(&self, request: &Resources, lanes: Lanes) -> u64 {
        let named = || {
            let mut bits = lanes.0;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = bits.trailing_zeros() as usize % MAX_RESOURCES;
                    bits &= bits - 1;
                    (self.0[i], request.0[i])
                })
            })
        };
        // In a full cluster most room asked about holds not even one copy: compare before
        // dividing (a division costs as much as all the comparisons).
        if named().any(|(free, req)| free < req) {
            return 0;
        }
        // One pod slot is the usual request: no division for it.
        named()
            .map(|(free, req)| match req {
                1 => free as u64,
                _ => free as u64 / req as u64,
            })
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The lanes that are non-zero, as `(id, amount)`.
    pub fn iter_nonzero(&self) -> impl Iterator<Item = (ResourceId, i64)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0)
            .map(|(i, v)| (ResourceId(i as u8), *v))
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (id, v) in self.iter_nonzero() {
            match id.well_known_name() {
                Some(name) => m.entry(&name, &v),
                None => m.entry(&id.0, &v),
            };
        }
        m.finish()
    }
}

impl Add for Resources {
    type Output = Resources;
    #[inline]
    fn add(mut self, rhs: Resources) -> Resources {
        self += rhs;
        self
    }
}

impl AddAssign for Resources {
    #[inline]
    fn add_assign(&mut self, rhs: Resources) {
        for (a, b) in self.0.iter_mut().zip(rhs.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }
}

impl Sub for Resources {
    type Output = Resources;
    #[inline]
    fn sub(mut self, rhs: Resources) -> Resources {
        self -= rhs;
        self
    }
}

impl SubAssign for Resources {
    #[inline]
    fn sub_assign(&mut self, rhs: Resources) {
        for (a, b) in self.0.iter_mut().zip(rhs.0.iter()) {
            *a = a.saturating_sub(*b);
        }
    }
}

/// Why a named resource list could not become a [`Resources`] vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// The quantity of `resource` is malformed, negative or too large.
    #[error("resource {resource:?}: {source}")]
    Quantity {
        /// The resource name, as written.
        resource: String,
        /// What is wrong with its quantity.
        source: QuantityError,
    },
    /// More distinct extended resources than a vector has lanes.
    #[error(
        "resource {resource:?}: more than {} distinct extended resources in one cluster",
        MAX_RESOURCES - ResourceId::WELL_KNOWN
    )]
    TooManyExtended {
        /// The name that did not get a lane.
        resource: String,
    },
    /// The name is not a valid Kubernetes resource name.
    #[error("resource name {0:?} is not a valid Kubernetes resource name")]
    InvalidName(String),
}

/// Names of resources by lane: the well-known ones, then extended ones in order of first use.
///
/// Adapters (trace reader, Kubernetes watcher) own one table and build every vector through it;
/// the engine only sees vectors. The table only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceTable {
    extended: Vec<String>,
}

impl ResourceTable {
    /// A table with only the well-known resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lane of `name`, if it has one.
    pub fn lookup(&self, name: &str) -> Option<ResourceId> {
        if let Some(i) = ResourceId::NAMES.iter().position(|n| *n == name) {
            return Some(ResourceId(i as u8));
        }
        self.extended
            .iter()
            .position(|n| n == name)
            .map(|i| ResourceId((ResourceId::WELL_KNOWN + i) as u8))
    }

    /// The lane of `name`, giving it the next free lane when it is new.
    pub fn intern(&mut self, name: &str) -> Result<ResourceId, ResourceError> {
        if let Some(id) = self.lookup(name) {
            return Ok(id);
        }
        if name.is_empty() || name.len() > 253 || name.chars().any(char::is_whitespace) {
            return Err(ResourceError::InvalidName(name.to_string()));
        }
        if ResourceId::WELL_KNOWN + self.extended.len() >= MAX_RESOURCES {
            return Err(ResourceError::TooManyExtended {
                resource: name.to_string(),
            });
        }
        self.extended.push(name.to_string());
        Ok(ResourceId(
            (ResourceId::WELL_KNOWN + self.extended.len() - 1) as u8,
        ))
    }

    /// The Kubernetes name of a lane.
    pub fn name(&self, id: ResourceId) -> &str {
        match id.well_known_name() {
            Some(n) => n,
            None => self
                .extended
                .get(id.index() - ResourceId::WELL_KNOWN)
                .map(String::as_str)
                .unwrap_or("<unknown resource>"),
        }
    }

    /// Converts a named list (`{"cpu": "500m", "memory": "1Gi"}`) into a vector: cpu in
    /// millicores, everything else in whole units, rounded up.
    pub fn parse<'a>(
        &mut self,
        list: impl IntoIterator<Item = (&'a String, &'a Quantity)>,
    ) -> Result<Resources, ResourceError> {
        let mut out = Resources::ZERO;
        for (name, q) in list {
            let id = self.intern(name)?;
            let amount = if id == ResourceId::CPU {
                q.milli_value()
            } else {
                q.value()
            }
            .map_err(|source| ResourceError::Quantity {
                resource: name.clone(),
                source,
            })?;
            out.set(id, amount);
        }
        Ok(out)
    }

    /// The vector as a named list of canonical amounts, for reports and views.
    pub fn to_named(&self, r: &Resources) -> BTreeMap<String, i64> {
        r.iter_nonzero()
            .map(|(id, v)| (self.name(id).to_string(), v))
            .collect()
    }

    /// Formats one amount for people: `1500m`/`1.5` cpu, `64Gi` memory, plain counts otherwise.
    pub fn format_amount(&self, id: ResourceId, amount: i64) -> String {
        format_amount(id, amount)
    }
}

/// Formats one amount of a resource for people (`2500m` cpu as `2.5`, bytes with binary suffixes).
pub fn format_amount(id: ResourceId, amount: i64) -> String {
    match id {
        ResourceId::CPU if amount % 1000 == 0 => format!("{}", amount / 1000),
        ResourceId::CPU => format!("{amount}m"),
        ResourceId::MEMORY | ResourceId::EPHEMERAL_STORAGE => {
            const UNITS: [(&str, u32); 5] =
                [("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];
            for (suffix, shift) in UNITS {
                let unit = 1i64 << shift;
                if amount.abs() >= unit && amount % unit == 0 {
                    return format!("{}{suffix}", amount / unit);
                }
            }
            format!("{amount}")
        }
        _ => format!("{amount}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_named_lists_into_lanes() {
        let mut t = ResourceTable::new();
        let list: BTreeMap<String, Quantity> = [
            ("cpu", "500m"),
            ("memory", "1Gi"),
            ("nvidia.com/gpu", "2"),
            ("rdma/hca", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect();
        let r = t.parse(&list).unwrap();
        assert_eq!(r.get(ResourceId::CPU), 500);
        assert_eq!(r.get(ResourceId::MEMORY), 1 << 30);
        assert_eq!(r.get(ResourceId::GPU), 2);
        let rdma = t.lookup("rdma/hca").unwrap();
        assert_eq!(rdma, ResourceId(5));
        assert_eq!(r.get(rdma), 1);
        assert_eq!(t.name(rdma), "rdma/hca");
        assert_eq!(t.to_named(&r)["cpu"], 500);
    }

    #[test]
    fn extended_lanes_run_out_with_a_clear_error() {
        let mut t = ResourceTable::new();
        for i in 0..MAX_RESOURCES - ResourceId::WELL_KNOWN {
            t.intern(&format!("example.com/r{i}")).unwrap();
        }
        let err = t.intern("example.com/one-too-many").unwrap_err();
        assert!(err.to_string().contains("one-too-many"), "{err}");
    }

    #[test]
    fn counts_how_many_copies_fit() {
        let free = Resources::of(ResourceId::CPU, 4000).with(ResourceId::MEMORY, 10);
        let req = Resources::of(ResourceId::CPU, 1000).with(ResourceId::MEMORY, 3);
        assert_eq!(free.count_fitting(&req), 3);
        assert_eq!(free.count_fitting(&Resources::ZERO), u64::MAX);
        assert!(req.fits_in(&free));
        assert!(!free.fits_in(&req));
        // Overcommitted room (negative free) holds none; one pod slot needs no division.
        let over = Resources::of(ResourceId::CPU, -500).with(ResourceId::PODS, 7);
        let pod = Resources::of(ResourceId::PODS, 1);
        assert_eq!(over.count_fitting(&pod), 7);
        assert_eq!(over.count_fitting(&pod.with(ResourceId::CPU, 1)), 0);
    }

    proptest::proptest! {
        /// The early answer and the one-slot shortcut give what dividing every lane gives.
        #[test]
        fn counting_copies_agrees_with_dividing_every_lane(
            free in proptest::collection::vec(-4i64..40, MAX_RESOURCES),
            req in proptest::collection::vec(-2i64..6, MAX_RESOURCES),
        ) {
            let (f, r) = (
                Resources(free.clone().try_into().unwrap()),
                Resources(req.clone().try_into().unwrap()),
            );
            let divided = free
                .iter()
                .zip(&req)
                .filter(|(_, r)| **r > 0)
                .map(|(f, r)| (*f).max(0) as u64 / *r as u64)
                .min()
                .unwrap_or(u64::MAX);
            proptest::prop_assert_eq!(f.count_fitting(&r), divided);
        }
    }

    #[test]
    fn formats_amounts_for_people() {
        assert_eq!(format_amount(ResourceId::CPU, 2500), "2500m");
        assert_eq!(format_amount(ResourceId::CPU, 8000), "8");
        assert_eq!(format_amount(ResourceId::MEMORY, 64 << 30), "64Gi");
        assert_eq!(format_amount(ResourceId::GPU, 3), "3");
    }
}
