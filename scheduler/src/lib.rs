//! phalanx-scheduler
