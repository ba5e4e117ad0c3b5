//! phalanx-simulator
