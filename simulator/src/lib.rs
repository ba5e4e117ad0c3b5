//! phalanx-simulator: everything that feeds the engine offline and measures what it did. The
//! native trace format ([`trace`]) and converters from other formats ([`convert`]), seeded
//! synthetic workloads ([`synth`], [`generator`]), what-if transformations ([`whatif`]), the
//! virtual-time world that drives the production engine ([`world`]), reports ([`report`], drawn
//! by the private `chart` module), one
//! whole `phalanx simulate` run ([`simulate`]), what-if comparisons of many runs
//! ([`compare`]), and the independent [`audit`] of decisions.
//!
//! No tokio: a run is one synchronous loop over a binary heap of events. Only a comparison
//! uses threads, to run whole runs side by side (rayon).

pub mod audit;
mod chart;
pub mod compare;
pub mod convert;
pub mod generator;
pub mod report;
pub mod simulate;
pub mod synth;
pub mod trace;
pub mod whatif;
pub mod world;
