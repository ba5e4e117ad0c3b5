//! phalanx-k8s: the Kubernetes adapter behind `phalanx serve`. It drives the same
//! [`phalanx_scheduler::Engine`] as the simulator from a live cluster.
//!
//! Modules, one job each:
//! - [`translate`]: Kubernetes objects (Node, Pod, PodGroups, Volcano Queue) to the engine's
//!   vocabulary, as pure functions: the `phalanx-translate` crate, which the simulator's
//!   manifest converter calls too, so one rule decides what an object means.
//! - [`core`]: the adapter's state machine without I/O: watched changes in, engine events and
//!   cycles, bind orders and notices out.
//! - [`crd`]: the custom resources read, as Rust types; `deploy/crds/` is generated from them.
//! - [`config`]: the YAML configuration file.
//! - [`watch`]: kube-rs watchers feeding the engine thread.
//! - [`runner`]: the engine thread: one thread, fed by a channel, cycling on changes and on a period.
//! - [`binder`]: carries out bind orders with bounded concurrency, fenced by the lease.
//! - [`leader`]: leader election on a `coordination.k8s.io/v1` Lease.
//! - [`status`]: PodGroup status and Kubernetes Events, rate-limited.
//! - [`metrics`]: Prometheus metrics.
//! - [`admin`]: the axum admin API (`/metrics`, `/healthz`, `/readyz`, `/api/v1/...`).
//! - [`queue_admin`]: `phalanx queue set|create|close|open`, Queue changes checked as serve
//!   would before they are written.
//! - [`tls`]: HTTPS for the admin port.
//! - [`serve`]: wires them together.

pub mod admin;
pub mod binder;
pub mod config;
pub mod core;
pub mod crd;
pub mod leader;
pub mod metrics;
pub mod queue_admin;
pub mod runner;
pub mod serve;
pub mod status;
pub mod tls;
pub mod watch;

pub use phalanx_translate as translate;
