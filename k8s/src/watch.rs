//! kube-rs watchers for Nodes, all Pods, PodGroups of both flavours and Volcano Queues, feeding
//! the engine thread. Each watcher buffers a (re)list between `Init` and `InitDone` and hands it
//! over whole, as [`Change::Relisted`], so the engine thread swaps it in atomically (kube-rs's
//! reflector discipline). The first complete list of each kind is also reported as
//! [`Msg::Synced`]: the first cycle waits for all of them.
//!
//! A resource that is not served (no PodGroup CRD of one flavour, no Volcano Queue CRD, a
//! cluster older than the upstream gang API of Kubernetes 1.35) counts as an empty list, with a warning: a cluster need not run Volcano to use the
//! scheduler-plugins flavour, or vice versa.

use std::fmt::Debug;
use std::sync::mpsc::{SendError, Sender};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;

use crate::core::{Change, Input};
use crate::translate::Flavor;

/// What the engine thread receives.
#[derive(Debug)]
pub enum Msg {
    /// A change to apply.
    Input(Input),
    /// The first complete list of one watched kind was delivered.
    Synced(&'static str),
}

/// The engine thread's inbox: a channel sender that counts what waits in it
/// (`phalanx_engine_queue_depth`; the engine thread counts down as it takes each message).
#[derive(Clone)]
pub struct EngineTx {
    tx: Sender<Msg>,
    depth: prometheus::IntGauge,
}

impl EngineTx {
    /// Wraps `tx`, counting in `depth`.
    pub fn new(tx: Sender<Msg>, depth: prometheus::IntGauge) -> Self {
        EngineTx { tx, depth }
    }

    /// Sends `msg`; fails only when the engine thread is gone.
    pub fn send(&self, msg: Msg) -> Result<(), SendError<Msg>> {
        self.depth.inc();
        self.tx.send(msg).inspect_err(|_| self.depth.dec())
    }
}

/// How many kinds report [`Msg::Synced`] (nodes, pods, three PodGroup flavours, queues,
/// priority classes).
pub const KINDS: usize = 7;

/// The ApiResource of a PodGroup flavour.
pub fn group_resource(flavor: Flavor) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(flavor.group(), flavor.version(), "PodGroup"),
        "podgroups",
    )
}

/// The ApiResource of Volcano Queues.
pub fn queue_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("scheduling.volcano.sh", "v1beta1", "Queue"),
        "queues",
    )
}

async fn pump<K>(
    kind: &'static str,
    stream: impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send,
    wrap: impl Fn(Change<K>) -> Input + Send,
    tx: EngineTx,
) where
    K: Debug + Send,
{
    let mut stream = std::pin::pin!(stream);
    let mut buffer = Vec::new();
    let mut synced = false;
    while let Some(event) = stream.next().await {
        let input = match event {
            Ok(Event::Init) => {
                buffer.clear();
                continue;
            }
            Ok(Event::InitApply(k)) => {
                buffer.push(k);
                continue;
            }
            Ok(Event::InitDone) => {
                let list = std::mem::take(&mut buffer);
                tracing::debug!(kind, objects = list.len(), "listed");
                if tx.send(Msg::Input(wrap(Change::Relisted(list)))).is_err() {
                    return;
                }
                if !synced {
                    synced = true;
                    if tx.send(Msg::Synced(kind)).is_err() {
                        return;
                    }
                }
                continue;
            }
            Ok(Event::Apply(k)) => wrap(Change::Apply(Box::new(k))),
            Ok(Event::Delete(k)) => wrap(Change::Delete(Box::new(k))),
            Err(e) => {
                tracing::warn!(kind, error = %e, "watch failed; retrying with backoff");
                continue;
            }
        };
        if tx.send(Msg::Input(input)).is_err() {
            return;
        }
    }
}

fn watch_typed<K>(
    api: Api<K>,
    kind: &'static str,
    wrap: impl Fn(Change<K>) -> Input + Send + 'static,
    tx: EngineTx,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let config = watcher::Config::default().page_size(5000);
    let stream = watcher::watcher(api, config).default_backoff();
    tokio::spawn(pump(kind, stream, wrap, tx))
}

async fn watch_dynamic(
    client: kube::Client,
    resource: ApiResource,
    kind: &'static str,
    wrap: impl Fn(Change<DynamicObject>) -> Input + Send + 'static,
    tx: EngineTx,
) -> tokio::task::JoinHandle<()> {
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    if let Err(kube::Error::Api(s)) = api.list(&ListParams::default().limit(1)).await
        && s.code == 404
    {
        tracing::warn!(
            kind,
            "resource not served (CRD not installed); treated as empty"
        );
        let _ = tx.send(Msg::Input(wrap(Change::Relisted(Vec::new()))));
        let _ = tx.send(Msg::Synced(kind));
        return tokio::spawn(async {});
    }
    let config = watcher::Config::default().page_size(5000);
    let stream = watcher::watcher(api, config).default_backoff();
    tokio::spawn(pump(kind, stream, wrap, tx))
}

/// Starts every watcher; they run until their receiver is gone or they are aborted.
pub async fn start(
    client: kube::Client,
    watch_queues: bool,
    tx: EngineTx,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![
        watch_typed(
            Api::<Node>::all(client.clone()),
            "nodes",
            Input::Node,
            tx.clone(),
        ),
        watch_typed(
            Api::<Pod>::all(client.clone()),
            "pods",
            Input::Pod,
            tx.clone(),
        ),
        watch_typed(
            Api::<k8s_openapi::api::scheduling::v1::PriorityClass>::all(client.clone()),
            "priorityclasses",
            Input::PriorityClass,
            tx.clone(),
        ),
    ];
    for (flavor, kind) in [
        (Flavor::Volcano, "podgroups.scheduling.volcano.sh"),
        (Flavor::SchedulerPlugins, "podgroups.scheduling.x-k8s.io"),
        (Flavor::Upstream, "podgroups.scheduling.k8s.io"),
    ] {
        tasks.push(
            watch_dynamic(
                client.clone(),
                group_resource(flavor),
                kind,
                move |c| Input::Group(flavor, c),
                tx.clone(),
            )
            .await,
        );
    }
    if watch_queues {
        tasks.push(
            watch_dynamic(client, queue_resource(), "queues", Input::Queue, tx.clone()).await,
        );
    } else {
        let _ = tx.send(Msg::Synced("queues"));
    }
    tasks
}
