//! The admin port under requests nobody should send: oversized bodies, unknown methods and
//! paths, broken percent-encoding, absurd query values. Each gets a 4xx answer and the port
//! keeps serving; nothing panics.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_a_4xx_and_the_port_keeps_serving() {
    let (emu, client) = emulator(1, "cpu=4,memory=16Gi,pods=110").await;
    let s = scheduler(&client, false, "phalanx-0").await;
    let addr = s.addr.to_string();
    let ask = |method: Method, path: String, body: Bytes| {
        let addr = addr.clone();
        async move {
            let mut conn = Conn::connect(&addr).await.unwrap();
            conn.request(method, &path, "application/json", body)
                .await
                .map(|(code, _)| code)
                .unwrap_or(0)
        }
    };
    // A body bigger than the port reads: 413 from its Content-Length, before any handler.
    let big = Bytes::from(vec![b'x'; phalanx_k8s::admin::MAX_BODY + 1]);
    assert_eq!(ask(Method::POST, "/api/v1/queues".into(), big).await, 413);
    let long = "q".repeat(8 * 1024);
    let cases = [
        (Method::POST, "/api/v1/queues".to_string()),
        (Method::DELETE, "/api/v1/jobs/default/x".into()),
        (Method::GET, "/api/v1/jobs?state=sleeping".into()),
        (Method::GET, "/api/v1/jobs?state=%ZZ".into()),
        (Method::GET, "/api/v1/jobs?queue=%FF%FE%00".into()),
        (Method::GET, format!("/api/v1/jobs?queue={long}")),
        (Method::GET, "/api/v1/jobs/default".into()),
        (Method::GET, "/api/v1/jobs/a/b/c".into()),
        (Method::GET, "/api/v1/jobs/%00/%2F..".into()),
        (Method::GET, "/api/v1/events?limit=-1".into()),
        (
            Method::GET,
            "/api/v1/events?limit=99999999999999999999999".into(),
        ),
        (Method::GET, "/api/v1/nothing/here".into()),
        (Method::GET, "/ui/../../etc/passwd".into()),
        (Method::GET, "/nope".into()),
    ];
    for (method, path) in cases {
        let code = ask(method.clone(), path.clone(), Bytes::new()).await;
        assert!(
            (400..500).contains(&code) || code == 200,
            "{method} {path}: {code}"
        );
    }
    assert_eq!(ask(Method::GET, "/healthz".into(), Bytes::new()).await, 200);
    let (code, v) = admin_get(&s, "/api/v1/queues").await;
    assert_eq!(code, 200, "{v}");
    s.stop().await.unwrap();
    emu.shutdown().await;
}

/// Fuzzed requests: paths built from the port's routes and hostile segments (percent-encoded
/// bytes of every kind, `..`, NUL, long names), random query keys and values, every method.
/// Each gets an answer below 500 and the port keeps serving. `PROPTEST_CASES` sets how many
/// (default 256).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_paths_and_queries_never_get_a_5xx() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    let (emu, client) = emulator(1, "cpu=4,memory=16Gi,pods=110").await;
    let s = scheduler(&client, false, "phalanx-0").await;
    let addr = s.addr.to_string();
    let prefix = prop::sample::select(vec![
        "/api/v1/jobs",
        "/api/v1/jobs/default",
        "/api/v1/queues",
        "/api/v1/events",
        "/api/v1/whoami",
        "/api/v1",
        "/ui",
        "",
        "/metrics",
        "/healthz",
        "/readyz",
    ]);
    let segment = prop_oneof![
        "[A-Za-z0-9._~-]{0,12}",
        prop::collection::vec(any::<u8>(), 1..6)
            .prop_map(|b| { b.iter().map(|x| format!("%{x:02X}")).collect::<String>() }),
        prop::sample::select(vec![
            "..", ".", "%ZZ", "%", "%2F..%2F", "%00", "%FF%FE", "root.x"
        ])
        .prop_map(String::from),
        Just("n".repeat(300)),
    ];
    let query = prop::collection::vec(
        (
            prop::sample::select(vec![
                "state",
                "queue",
                "namespace",
                "limit",
                "since",
                "",
                "x",
            ]),
            prop_oneof![
                "[A-Za-z0-9._-]{0,10}",
                prop::sample::select(vec![
                    "-1",
                    "0",
                    "99999999999999999999",
                    "%ZZ",
                    "%FF",
                    "a%20b"
                ])
                .prop_map(String::from),
            ],
        ),
        0..4,
    );
    let method = prop::sample::select(vec![
        Method::GET,
        Method::GET,
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ]);
    let request = (method, prefix, prop::collection::vec(segment, 0..4), query).prop_map(
        |(m, prefix, segs, q)| {
            let mut path = prefix.to_string();
            for s in segs {
                path.push('/');
                path.push_str(&s);
            }
            if path.is_empty() {
                path.push('/');
            }
            if !q.is_empty() {
                let q: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
                path.push('?');
                path.push_str(&q.join("&"));
            }
            (m, path)
        },
    );
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256u32);
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let mut codes = std::collections::BTreeMap::new();
    for _ in 0..cases {
        let (method, path) = request.new_tree(&mut runner).unwrap().current();
        let mut conn = Conn::connect(&addr).await.unwrap();
        let code = conn
            .request(method.clone(), &path, "application/json", Bytes::new())
            .await
            .map(|(code, _)| code)
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
        assert!((200..500).contains(&code), "{method} {path}: {code}");
        *codes.entry(code).or_insert(0u32) += 1;
    }
    // The port still serves, and the fuzz reached more than one kind of answer.
    assert_eq!(
        admin_get(&s, "/api/v1/queues").await.0,
        200,
        "after the fuzz"
    );
    assert!(codes.len() > 2, "{codes:?}");
    s.stop().await.unwrap();
    emu.shutdown().await;
}
