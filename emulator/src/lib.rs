//! phalanx-emulator: an in-memory Kubernetes API server with simulated kubelets and fault
//! injection, for end-to-end tests and benchmarks of `phalanx serve`.
//!
//! No real kube-apiserver can run on the project's machines, so this stands in for one: it speaks
//! the Kubernetes REST protocol on loopback (discovery, CRUD, list/watch, patch, binding, CRDs,
//! leases) well enough for kubectl and kube-rs, and its kubelets run bound pods for the duration
//! in their `phalanx.dev/duration` annotation. With `--token TOKEN=USER[,GROUP...]:ROLE` users it
//! also authenticates bearer tokens (401 without a known one) and authorizes by two roles,
//! `admin` (everything) and `view` (get, list, watch; other verbs 403), and answers TokenReviews
//! and SubjectAccessReviews about those users, for delegated authentication and authorization;
//! without users nothing is checked. It is *not* a Kubernetes: no etcd, no admission webhooks,
//! no RBAC (just those two roles), no controllers beyond pod garbage collection and
//! NotReady-node eviction, and no scheduling of its own (see the crate README).
//!
//! Modules, one job each:
//! - [`server`]: HTTP serving, startup, admin endpoints, fault injection in front of the API.
//! - [`api`]: URL routing, discovery, and the REST verbs and subresources.
//! - [`auth`]: bearer-token users, the admin/view authorization rule, TokenReview and
//!   SubjectAccessReview.
//! - [`watch`]: streaming watch responses with bookmarks and 410 handling.
//! - [`store`]: objects, resourceVersions, event history.
//! - [`resources`]: the served resources and CRD parsing.
//! - [`kubelet`]: simulated kubelets.
//! - [`events`]: `events.k8s.io/v1` as a view of core Events, and Event validation.
//! - [`podgc`]: kube-controller-manager's pod garbage collector (orphaned and terminated pods).
//! - [`faults`]: fault injection.
//! - [`patch`]: merge, strategic merge and JSON patch.
//! - [`selector`]: label and field selectors.
//! - [`table`]: server-side table output for kubectl.
//! - [`openapi`]: the OpenAPI v2 and v3 documents kubectl reads.
//! - [`quantity`]: resource quantities.
//! - [`status`]: Kubernetes `Status` errors.
//! - [`meta`]: timestamps, uids, JSON paths.
//! - [`client`]: a minimal HTTP/1.1 JSON client for the load generator and benchmarks.
//! - [`load`]: creates jobs from a trace file at a given rate.
//! - [`audit`]: the record of binds, pod ends and leader leases reliability runs judge by.
//! - [`cli`]: the `phalanx emulator` command line.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod client;
pub mod events;
pub mod faults;
pub mod kubelet;
pub mod load;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod podgc;
pub mod quantity;
pub mod resources;
pub mod selector;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod watch;

pub use server::{EmulatorConfig, NodeShape, RunningEmulator, start};
