//! phalanx-queue
