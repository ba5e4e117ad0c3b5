//! Watch streams: one chunked HTTP response per watch, one JSON event per line.
//!
//! ```text
//!  start ─> initial ADDED (no resourceVersion) ─> [BOOKMARK initial-events-end]
//!        ─> replay kept events after the resourceVersion ─> live events ─┬─> timeout: close
//!                                                   every interval: BOOKMARK ├─> lagging too far: close
//!                                                                             └─> fault injector: close
//! ```
//! A watcher that falls behind the broadcast buffer is closed rather than slowed down; the client
//! re-watches from its last resourceVersion, exactly as after a dropped connection.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, sleep_until};

use crate::meta::obj_mut;
use crate::resources::ResourceDef;
use crate::server::AppState;
use crate::status::ApiError;
use crate::store::{EventType, Filter, Stored, WatchEvent};
use crate::table::{Render, partial_metadata, table};

/// Events already committed when a watcher wakes are sent as one chunk of up to about this many
/// bytes (whole lines: clients split the stream on newlines, not on chunks).
const COALESCE_BYTES: usize = 256 * 1024;

/// Query options of a watch.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents` (watch-list): initial state, then a bookmark marking its end.
    pub send_initial: bool,
    /// `timeoutSeconds`; the server default applies when absent.
    pub timeout: Option<Duration>,
    /// How objects are rendered: one-row Tables (`kubectl get -w`), metadata only, or in full.
    pub render: Render,
    /// The watch is of `events.k8s.io` Events: stored core Events are sent converted.
    pub events_api: bool,
}

struct Encoder {
    /// The resource as the client addressed it (bookmarks name its kind).
    res: Arc<ResourceDef>,
    /// The resource whose storage is watched (tables render its columns).
    stored: Arc<ResourceDef>,
    render: Render,
    events_api: bool,
}

impl Encoder {
    fn line(&self, kind: &str, json: &[u8]) -> Bytes {
        let mut buf = Vec::with_capacity(json.len() + 32);
        self.line_into(&mut buf, kind, json);
        Bytes::from(buf)
    }

    /// Appends one event line to `buf`.
    fn line_into(&self, buf: &mut Vec<u8>, kind: &str, json: &[u8]) {
        buf.extend_from_slice(b"{\"type\":\"");
        buf.extend_from_slice(kind.as_bytes());
        buf.extend_from_slice(b"\",\"object\":");
        match self.render {
            Render::Full if self.events_api => {
                let v: Value = serde_json::from_slice(json).unwrap_or(Value::Null);
                let v = crate::events::from_core(v);
                buf.extend_from_slice(&serde_json::to_vec(&v).expect("a Value serializes"));
            }
            Render::Full => buf.extend_from_slice(json),
            Render::Table => {
                let v: Value = serde_json::from_slice(json).unwrap_or(Value::Null);
                let rv = v
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0);
                let t = table(&self.stored, &[v], rv, None);
                buf.extend_from_slice(&serde_json::to_vec(&t).expect("a Value serializes"));
            }
            Render::Metadata => {
                let v: Value = serde_json::from_slice(json).unwrap_or(Value::Null);
                let m = partial_metadata(&v);
                buf.extend_from_slice(&serde_json::to_vec(&m).expect("a Value serializes"));
            }
        }
        buf.extend_from_slice(b"}\n");
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut o = json!({
            "kind": self.res.kind, "apiVersion": self.res.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
        });
        if initial_end {
            o["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut buf = b"{\"type\":\"BOOKMARK\",\"object\":".to_vec();
        buf.extend_from_slice(&serde_json::to_vec(&o).expect("a Value serializes"));
        buf.extend_from_slice(b"}\n");
        Bytes::from(buf)
    }

    /// Renders a committed event for one watcher's selection: an object that enters the
    /// selection is ADDED, one that leaves it is DELETED (its previous state at the new rv).
    fn event(&self, ev: &WatchEvent, filter: &Filter) -> Option<Bytes> {
        let mut buf = Vec::new();
        self.event_into(&mut buf, ev, filter)
            .then(|| Bytes::from(buf))
    }

    /// [`Encoder::event`] appended to `buf`; false when the watcher does not see the event.
    fn event_into(&self, buf: &mut Vec<u8>, ev: &WatchEvent, filter: &Filter) -> bool {
        let now = filter.matches(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| filter.matches(p));
        match (ev.kind, before, now) {
            (EventType::Added, _, true) => self.line_into(buf, "ADDED", &ev.object.json),
            (EventType::Modified, true, true) => self.line_into(buf, "MODIFIED", &ev.object.json),
            (EventType::Modified, false, true) => self.line_into(buf, "ADDED", &ev.object.json),
            (EventType::Modified, true, false) => {
                let prev = ev.prev.as_ref().expect("matched a previous state");
                self.line_into(buf, "DELETED", &with_rv(prev, ev.rv))
            }
            (EventType::Deleted, _, true) => self.line_into(buf, "DELETED", &ev.object.json),
            _ => return false,
        }
        true
    }
}

fn with_rv(o: &Stored, rv: u64) -> Vec<u8> {
    let mut v = o.value();
    obj_mut(&mut v, "metadata").insert("resourceVersion".into(), json!(rv.to_string()));
    serde_json::to_vec(&v).expect("a Value serializes")
}

fn streaming(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .expect("static response parts are valid")
}

/// Starts a watch of `stored`'s objects, served as `res` (the same resource, except for
/// `events.k8s.io` Events, stored as core Events), and returns its streaming response. Errors
/// that kube-apiserver reports inside the stream (410 Expired) are sent as an `ERROR` event, as
/// it does.
pub fn watch_response(
    state: Arc<AppState>,
    res: Arc<ResourceDef>,
    stored: Arc<ResourceDef>,
    filter: Filter,
    from: Option<u64>,
    opts: WatchOptions,
) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let enc = Encoder {
        res,
        stored: stored.clone(),
        render: opts.render,
        events_api: opts.events_api,
    };
    let injected_gone = from.is_some_and(|r| r > 0) && state.faults.watch_gone();
    let start = if injected_gone {
        Err(ApiError::Gone(format!(
            "too old resource version: {} (injected)",
            from.unwrap_or(0)
        )))
    } else {
        state.store.watch(&stored, &filter, from, opts.send_initial)
    };
    let start = match start {
        Ok(s) => s,
        Err(e) => {
            let mut line = b"{\"type\":\"ERROR\",\"object\":".to_vec();
            line.extend_from_slice(&serde_json::to_vec(&e.to_status()).expect("serializes"));
            line.extend_from_slice(b"}\n");
            let _ = tx.try_send(Bytes::from(line));
            return streaming(rx);
        }
    };
    let timeout = opts.timeout.unwrap_or(state.default_watch_timeout);
    let lifetime = state
        .faults
        .watch_lifetime()
        .map_or(timeout, |l| l.min(timeout));
    let cut_short = lifetime < timeout;
    let deadline = Instant::now() + lifetime;
    let bookmark_every = state.bookmark_interval;
    let mut drop_signal = state.faults.drop_signal();
    tokio::spawn(async move {
        let mut live = start.rx;
        let mut last = start.rv;
        for o in &start.initial {
            if tx.send(enc.line("ADDED", &o.json)).await.is_err() {
                return;
            }
        }
        if opts.send_initial
            && opts.bookmarks
            && tx.send(enc.bookmark(start.rv, true)).await.is_err()
        {
            return;
        }
        for ev in &start.backlog {
            if ev.rv > last {
                last = ev.rv;
                if let Some(line) = enc.event(ev, &filter)
                    && tx.send(line).await.is_err()
                {
                    return;
                }
            }
        }
        let mut ticker = tokio::time::interval_at(Instant::now() + bookmark_every, bookmark_every);
        drop_signal.mark_unchanged();
        loop {
            tokio::select! {
                r = live.recv() => match r {
                    Ok(ev) => {
                        // Whatever else is already committed goes out in the same chunk: one
                        // channel send and one socket write per burst instead of per event.
                        let mut chunk = Vec::new();
                        let mut next = Some(ev);
                        while let Some(ev) = next.take() {
                            if ev.rv > last {
                                last = ev.rv;
                                enc.event_into(&mut chunk, &ev, &filter);
                            }
                            if chunk.len() < COALESCE_BYTES {
                                match live.try_recv() {
                                    Ok(ev) => next = Some(ev),
                                    Err(broadcast::error::TryRecvError::Empty) => {}
                                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                        tracing::debug!(resource = %enc.res.qualified(), lagged = n, "watcher fell behind; closing");
                                        return;
                                    }
                                    Err(broadcast::error::TryRecvError::Closed) => return,
                                }
                            }
                        }
                        if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(resource = %enc.res.qualified(), lagged = n, "watcher fell behind; closing");
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if opts.bookmarks => {
                    // Everything committed up to `now` is already in `live`: drain it first, so
                    // the bookmark never claims a resourceVersion whose events are still queued.
                    let now = state.store.current_rv();
                    loop {
                        match live.try_recv() {
                            Ok(ev) => {
                                if ev.rv > last {
                                    last = ev.rv;
                                    if let Some(line) = enc.event(&ev, &filter)
                                        && tx.send(line).await.is_err() {
                                            return;
                                        }
                                }
                            }
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(_) => return,
                        }
                    }
                    last = last.max(now);
                    if tx.send(enc.bookmark(last, false)).await.is_err() {
                        return;
                    }
                }
                _ = sleep_until(deadline) => {
                    if cut_short {
                        state.faults.count(crate::faults::kind::WATCH_DROP);
                    }
                    return;
                }
                _ = drop_signal.changed() => {
                    state.faults.count(crate::faults::kind::WATCH_DROP);
                    return;
                }
                _ = tx.closed() => return,
            }
        }
    });
    streaming(rx)
}
