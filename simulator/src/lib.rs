//! phalanx-simulator: everything that feeds the engine offline. Today that is the seeded
//! synthetic workload family ([`synth`]) and the independent [`audit`] of decisions, which
//! `phalanx bench`, the criterion benches and the tests share; trace readers, the virtual-time
//! world and reports build on them.

pub mod audit;
pub mod synth;
