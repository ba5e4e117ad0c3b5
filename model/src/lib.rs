//! phalanx-model
