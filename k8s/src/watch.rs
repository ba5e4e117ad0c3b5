//! kube-rs watchers for Nodes, all Pods, PodGroups of both flavours and Volcano Queues, feeding
//! the engine thread. Each watcher hands a (re)list, between `Init` and `InitDone`, over in
//! pages of [`LIST_PAGE`] objects ([`Change::Page`], the last one [`Change::Relisted`]): the
//! engine thread reads each page as it arrives, which keeps a fraction of each object, and swaps
//! the complete list in atomically at the last (kube-rs's reflector discipline, without holding
//! a million API objects at once). Each complete list of a kind is followed by [`Msg::Listed`];
//! a watch that broke is reported as [`Msg::Stale`] and relisted (see [`pump`]). The engine
//! thread cycles only while every kind is listed and none is stale.
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
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;

use crate::core::{Change, Input};
use crate::translate::Flavor;

/// What the engine thread receives.
#[derive(Debug)]
pub enum Msg {
    /// A change to apply.
    Input(Input),
    /// A complete list of one watched kind was delivered (as [`Change::Relisted`], just
    /// before): the view of that kind is whole and current again.
    Listed(&'static str),
    /// The watch of one kind broke: the view of it may miss changes until its next
    /// [`Msg::Listed`].
    Stale(&'static str),
}

/// Messages the engine thread's inbox holds at most. A watcher or the binder that finds it
/// full waits (back-pressure: a flood of API events slows the watch streams down, it does not
/// grow the inbox without bound or drop anything). A relist is one message, however long.
pub const ENGINE_INBOX: usize = 65_536;

/// Objects per page of a list handed to the engine thread: a page of full Pod objects is a
/// few megabytes.
pub const LIST_PAGE: usize = 500;

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

/// How many kinds report [`Msg::Listed`] (nodes, pods, three PodGroup flavours, queues,
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

/// How long a watcher waits before reopening after its watch broke: from 200 ms, doubling, up
/// to 5 s, with jitter (a replica back from a partition is in sync again within seconds; many
/// replicas do not relist in lock step).
fn reopen_backoff() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Feeds one kind's watch to the engine thread. `open` starts a watch from a fresh list.
///
/// A watch that broke (an error of any kind: the API unreachable, a 5xx, 410 Gone) makes this
/// kind [`Msg::Stale`] and is reopened from a fresh list after a backoff, never resumed from
/// its last resourceVersion as kube-rs's watcher would: whatever happened while it was broken
/// is then certainly in the view once [`Msg::Listed`] arrives, and the engine thread does not
/// cycle in between. A watch the server merely ended (its timeout) resumes where it was, as it
/// loses nothing.
async fn pump<K, S>(
    kind: &'static str,
    open: impl Fn() -> S + Send,
    wrap: impl Fn(Change<K>) -> Input + Send,
    tx: EngineTx,
) where
    K: Debug + Send,
    S: futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send,
{
    let mut backoff = reopen_backoff();
    loop {
        let mut stream = std::pin::pin!(open());
        let mut buffer = Vec::new();
        // No page of the list under way was sent yet (the next one is its first).
        let mut first = true;
        let mut listed = 0usize;
        while let Some(event) = stream.next().await {
            let input = match event {
                Ok(Event::Init) => {
                    buffer.clear();
                    first = true;
                    listed = 0;
                    continue;
                }
                Ok(Event::InitApply(k)) => {
                    buffer.push(k);
                    listed += 1;
                    if buffer.len() < LIST_PAGE {
                        continue;
                    }
                    let objects = std::mem::replace(&mut buffer, Vec::with_capacity(LIST_PAGE));
                    wrap(Change::Page {
                        first: std::mem::replace(&mut first, false),
                        objects,
                    })
                }
                Ok(Event::InitDone) => {
                    tracing::debug!(kind, objects = listed, "listed");
                    backoff = reopen_backoff();
                    // A list that fits one page still starts afresh: an earlier one may have
                    // broken off after some pages.
                    let start = first.then(|| {
                        Msg::Input(wrap(Change::Page {
                            first: true,
                            objects: Vec::new(),
                        }))
                    });
                    first = true;
                    let last = std::mem::take(&mut buffer);
                    for msg in start
                        .into_iter()
                        .chain([Msg::Input(wrap(Change::Relisted(last))), Msg::Listed(kind)])
                    {
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Ok(Event::Apply(k)) => wrap(Change::Apply(Box::new(k))),
                Ok(Event::Delete(k)) => wrap(Change::Delete(Box::new(k))),
                Err(e) => {
                    tracing::warn!(kind, error = %e, "watch broke; relisting after a backoff");
                    break;
                }
            };
            if tx.send(Msg::Input(input)).await.is_err() {
                return;
            }
        }
        if tx.send(Msg::Stale(kind)).await.is_err() {
            return;
        }
        tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(5))).await;
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
    tokio::spawn(pump(
        kind,
        move || watcher::watcher(api.clone(), config.clone()),
        wrap,
        tx,
    ))
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
        let _ = tx.send(Msg::Listed(kind)).await;
        return tokio::spawn(async {});
    }
    let config = watcher::Config::default().page_size(5000);
    tokio::spawn(pump(
        kind,
        move || watcher::watcher(api.clone(), config.clone()),
        wrap,
        tx,
    ))
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
        let _ = tx.send(Msg::Listed("queues")).await;
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
                tx.send(Msg::Listed(kind)).await.unwrap();
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sender.is_finished(), "held back by the full inbox");
        assert_eq!(depth.get(), 2);
        let mut got = Vec::new();
        while got.len() < SENT.len() {
            match rx.try_recv() {
                Ok(Msg::Listed(kind)) => got.push(kind),
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
        assert!(tx.send(Msg::Listed("gone")).await.is_err());
    }

    fn class(name: &str) -> k8s_openapi::api::scheduling::v1::PriorityClass {
        k8s_openapi::api::scheduling::v1::PriorityClass {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A watch that breaks makes its kind stale and is reopened from a fresh list, never
    /// resumed: the engine thread hears Stale, then the whole new list, then Listed. A list
    /// goes in pages of [`LIST_PAGE`], the first marked; one that broke off mid-list is
    /// followed by a list whose first page is marked, even when it fits in one.
    #[tokio::test]
    async fn a_broken_watch_is_reported_stale_and_relisted_whole() {
        type Pc = k8s_openapi::api::scheduling::v1::PriorityClass;
        let depth = prometheus::IntGauge::new("depth", "test").unwrap();
        let (tx, rx) = inbox(64, depth);
        let opened = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let times = opened.clone();
        let open = move || {
            let first = times.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            let events: Vec<Result<Event<Pc>, watcher::Error>> = if first {
                let mut events = vec![
                    Ok(Event::Init),
                    Ok(Event::InitApply(class("a"))),
                    Ok(Event::InitDone),
                    Ok(Event::Apply(class("b"))),
                    Ok(Event::Init),
                ];
                // A relist that breaks off after its first page (the server went away).
                events.extend(
                    (0..LIST_PAGE + 1).map(|i| Ok(Event::InitApply(class(&format!("p{i}"))))),
                );
                events.extend([
                    Err(watcher::Error::NoResourceVersion),
                    // Never read: the stream is dropped at the error.
                    Ok(Event::Apply(class("lost"))),
                ]);
                events
            } else {
                vec![
                    Ok(Event::Init),
                    Ok(Event::InitApply(class("a"))),
                    Ok(Event::InitApply(class("c"))),
                    Ok(Event::InitDone),
                ]
            };
            futures::stream::iter(events).chain(futures::stream::pending())
        };
        let task = tokio::spawn(pump("priorityclasses", open, Input::PriorityClass, tx));
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let names = |list: &[Pc]| {
            let names: Vec<String> = list
                .iter()
                .map(|c| c.metadata.name.clone().unwrap_or_default())
                .collect();
            if names.len() > 3 {
                format!("{} objects", names.len())
            } else {
                format!("{names:?}")
            }
        };
        while got.len() < 9 && std::time::Instant::now() < deadline {
            match rx.try_recv() {
                Ok(Msg::Listed(kind)) => got.push(format!("listed {kind}")),
                Ok(Msg::Stale(kind)) => got.push(format!("stale {kind}")),
                Ok(Msg::Input(Input::PriorityClass(Change::Page { first, objects }))) => {
                    got.push(format!("page first={first} {}", names(&objects)))
                }
                Ok(Msg::Input(Input::PriorityClass(Change::Relisted(list)))) => {
                    got.push(format!("relisted {}", names(&list)))
                }
                Ok(Msg::Input(Input::PriorityClass(Change::Apply(c)))) => {
                    got.push(format!("apply {}", c.metadata.name.unwrap_or_default()))
                }
                Ok(other) => panic!("{other:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        task.abort();
        assert_eq!(
            got,
            [
                "page first=true []",
                r#"relisted ["a"]"#,
                "listed priorityclasses",
                "apply b",
                &format!("page first=true {LIST_PAGE} objects"),
                "stale priorityclasses",
                "page first=true []",
                r#"relisted ["a", "c"]"#,
                "listed priorityclasses",
            ]
        );
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
