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
use std::sync::mpsc::{Receiver, SendError, SyncSender, TrySendError};
use std::time::Duration;

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

/// Messages the engine thread's inbox holds at most. A watcher or the binder that finds it
/// full waits (back-pressure: a flood of API events slows the watch streams down, it does not
/// grow the inbox without bound or drop anything). A relist is one message, however long.
pub const ENGINE_INBOX: usize = 65_536;

/// The longest a sender sleeps between tries while the inbox is full.
const FULL_PAUSE_MAX: Duration = Duration::from_millis(20);

/// The engine thread's inbox, bounded at `capacity` messages: the sender, and the receiver the
/// engine thread reads.
pub fn inbox(capacity: usize, depth: prometheus::IntGauge) -> (EngineTx, Receiver<Msg>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
    (EngineTx { tx, depth }, rx)
}

/// The engine thread's inbox: a bounded channel sender that counts what waits in it
/// (`phalanx_engine_queue_depth`; the engine thread counts down as it takes each message).
#[derive(Clone)]
pub struct EngineTx {
    tx: SyncSender<Msg>,
    depth: prometheus::IntGauge,
}

impl EngineTx {
    /// Sends `msg`, waiting (asynchronously: the task yields, no runtime thread blocks) while
    /// the inbox is full; fails only when the engine thread is gone. Messages of one sender
    /// arrive in the order sent.
    pub async fn send(&self, msg: Msg) -> Result<(), SendError<Msg>> {
        let mut msg = msg;
        let mut pause = Duration::from_millis(1);
        loop {
            // Counted before it can be taken, so the gauge never goes below zero.
            self.depth.inc();
            match self.tx.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(m)) => {
                    self.depth.dec();
                    msg = m;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(FULL_PAUSE_MAX);
                }
                Err(TrySendError::Disconnected(m)) => {
                    self.depth.dec();
                    return Err(SendError(m));
                }
            }
        }
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
                if tx
                    .send(Msg::Input(wrap(Change::Relisted(list))))
                    .await
                    .is_err()
                {
                    return;
                }
                if !synced {
                    synced = true;
                    if tx.send(Msg::Synced(kind)).await.is_err() {
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
        if tx.send(Msg::Input(input)).await.is_err() {
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
        let _ = tx
            .send(Msg::Input(wrap(Change::Relisted(Vec::new()))))
            .await;
        let _ = tx.send(Msg::Synced(kind)).await;
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
        let _ = tx.send(Msg::Synced("queues")).await;
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full inbox holds its sender back (the task waits, nothing grows) and, once the engine
    /// takes messages, every one arrives, in order; the depth gauge counts what waits.
    #[tokio::test]
    async fn a_full_inbox_holds_the_sender_back_and_loses_nothing() {
        const SENT: [&str; 5] = ["a", "b", "c", "d", "e"];
        let depth = prometheus::IntGauge::new("depth", "test").unwrap();
        let (tx, rx) = inbox(2, depth.clone());
        let sender = tokio::spawn(async move {
            for kind in SENT {
                tx.send(Msg::Synced(kind)).await.unwrap();
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sender.is_finished(), "held back by the full inbox");
        assert_eq!(depth.get(), 2);
        let mut got = Vec::new();
        while got.len() < SENT.len() {
            match rx.try_recv() {
                Ok(Msg::Synced(kind)) => got.push(kind),
                Ok(other) => panic!("{other:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        sender.await.unwrap();
        assert_eq!(got, SENT);
        // The engine thread counts down as it takes; this test took without counting.
        assert_eq!(depth.get(), 5);
        drop(rx);
        let (tx, rx) = inbox(1, depth);
        drop(rx);
        assert!(tx.send(Msg::Synced("gone")).await.is_err());
    }
}
