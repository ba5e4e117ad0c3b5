//! phalanx-simulator: everything that feeds the engine offline and measures what it did. The
//! native trace format ([`trace`]) and converters from other formats ([`convert`]), seeded
//! synthetic workloads ([`synth`], [`generator`]), what-if transformations ([`whatif`]), the
//! virtual-time world that drives the production engine ([`world`]), reports ([`report`], drawn
//! by the private `chart` module), one whole `phalanx simulate` run ([`simulate`]), what-if
//! comparisons of many runs ([`compare`]), and the independent [`audit`] of decisions.
//!
//! No tokio: a run is one synchronous loop over an agenda of events in virtual time. Two
//! threads help it: the run's decision log is hashed and written on a second thread
//! (the private `decision_log` module), and a comparison runs whole runs side by side (rayon).

pub mod audit;
mod chart;
pub mod compare;
pub mod convert;
mod decision_log;
pub mod generator;
pub mod report;
pub mod simulate;
pub mod synth;
pub mod trace;
pub mod whatif;
pub mod world;
