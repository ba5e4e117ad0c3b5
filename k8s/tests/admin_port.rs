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
