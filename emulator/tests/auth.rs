//! End-to-end tests of the emulator's `--token` users: bearer-token authentication, the
//! admin/view roles, TokenReview and SubjectAccessReview, and the kubeconfigs it writes for them.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use phalanx_emulator::auth::{Role, TokenUser};
use phalanx_emulator::cli::{CliError, ServeArgs, write_kubeconfigs};
use phalanx_emulator::kubelet::KubeletConfig;
use phalanx_emulator::{EmulatorConfig, NodeShape, RunningEmulator, start};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token";
const VIEWER: &str = "viewer-token";

/// An emulator with one node and the given users.
async fn emulator(tokens: Vec<TokenUser>) -> RunningEmulator {
    start(EmulatorConfig {
        nodes: 1,
        shapes: vec![NodeShape::parse("cpu=4,memory=8Gi").unwrap()],
        kubelet: KubeletConfig {
            start_delay: Duration::from_millis(20),
            stop_delay: Duration::from_millis(20),
        },
        tokens,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts")
}

/// `admin` (admin, group `ops`) and `viewer` (view).
fn users() -> Vec<TokenUser> {
    let mut admin = TokenUser::new(ADMIN, "admin", Role::Admin);
    admin.groups = vec!["ops".into()];
    vec![admin, TokenUser::new(VIEWER, "viewer", Role::View)]
}

/// A kube client from kubeconfig text, as `phalanx` builds one from a file.
async fn client_from(kubeconfig: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// One HTTP/1.1 request, with a bearer token if given: (status, body).
async fn raw(
    emu: &RunningEmulator,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Bytes) {
    let stream = tokio::net::TcpStream::connect(emu.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", emu.addr.to_string())
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = send
        .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

fn json_of(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b:?}"))
}

fn api_status(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn queues(client: &kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("scheduling.volcano.sh", "v1beta1", "Queue"),
        "queues",
    );
    Api::all_with(client.clone(), &ar)
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "pause"}]}
    }))
    .unwrap()
}

async fn token_review(client: &kube::Client, token: &str) -> Result<TokenReview, kube::Error> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
}

async fn access_review(
    client: &kube::Client,
    user: &str,
    verb: &str,
    resource: &str,
) -> SubjectAccessReview {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some("scheduling.volcano.sh".into()),
                resource: Some(resource.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
}

#[tokio::test]
async fn without_tokens_nothing_is_checked_and_nobody_is_known() {
    let emu = emulator(Vec::new()).await;
    for token in [None, Some("anything")] {
        let (code, body) = raw(&emu, "GET", "/api/v1/namespaces/default/pods", token, "").await;
        assert_eq!(code, 200, "{token:?}: {body:?}");
        let pod = r#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#;
        let (code, body) = raw(&emu, "POST", "/api/v1/namespaces/default/pods", token, pod).await;
        assert!(code == 201 || code == 409, "{token:?}: {code} {body:?}");
    }
    // The kubeconfig still carries the placeholder token, which nothing checks.
    let client = client_from(&emu.kubeconfig().unwrap()).await;
    assert!(emu.kubeconfig_for("admin").is_none());
    let status = token_review(&client, "anything")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.authenticated, Some(false));
    assert_eq!(status.error.as_deref(), Some("invalid bearer token"));
    let sar = access_review(&client, "admin", "get", "queues").await;
    assert!(!sar.status.unwrap().allowed);
    emu.shutdown().await;
}

#[tokio::test]
async fn requests_need_a_known_bearer_token_but_discovery_stays_open() {
    let emu = emulator(users()).await;
    let path = "/api/v1/namespaces/default/pods";
    for token in [None, Some("wrong-token")] {
        let (code, body) = raw(&emu, "GET", path, token, "").await;
        assert_eq!(code, 401, "{token:?}");
        assert_eq!(
            json_of(&body),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
    }
    let (code, _) = raw(&emu, "GET", path, Some(ADMIN), "").await;
    assert_eq!(code, 200);
    let (code, _) = raw(&emu, "GET", path, Some(VIEWER), "").await;
    assert_eq!(code, 200);
    // A write with no token is 401 too, and writes nothing.
    let pod = r#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#;
    let (code, _) = raw(&emu, "POST", path, None, pod).await;
    assert_eq!(code, 401);
    let (_, list) = raw(&emu, "GET", path, Some(ADMIN), "").await;
    assert_eq!(json_of(&list)["items"], json!([]));

    for open in [
        "/version",
        "/api",
        "/api/v1",
        "/apis",
        "/apis/authentication.k8s.io/v1",
        "/openapi/v3",
        "/healthz",
        "/readyz",
        "/livez",
        "/emulator/stats",
    ] {
        let (code, body) = raw(&emu, "GET", open, None, "").await;
        assert_eq!(code, 200, "{open}: {body:?}");
    }
    let (_, groups) = raw(&emu, "GET", "/apis", None, "").await;
    let names: Vec<Value> = json_of(&groups)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].clone())
        .collect();
    assert!(names.contains(&json!("authentication.k8s.io")), "{names:?}");
    assert!(names.contains(&json!("authorization.k8s.io")), "{names:?}");
    for (gv, plural, kind) in [
        ("authentication.k8s.io/v1", "tokenreviews", "TokenReview"),
        (
            "authorization.k8s.io/v1",
            "subjectaccessreviews",
            "SubjectAccessReview",
        ),
    ] {
        let (_, list) = raw(&emu, "GET", &format!("/apis/{gv}"), None, "").await;
        let list = json_of(&list);
        assert_eq!(list["groupVersion"], gv);
        let r = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == plural)
            .unwrap_or_else(|| panic!("{plural} in {list}"));
        assert_eq!(r["kind"], kind);
        assert_eq!(r["verbs"], json!(["create"]));
        assert_eq!(r["namespaced"], false);
    }
    // A review resource serves only create.
    let (code, _) = raw(
        &emu,
        "GET",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(code, 405);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_viewer_reads_queues_but_writes_are_forbidden_and_change_nothing() {
    let emu = emulator(users()).await;
    let admin = client_from(&emu.kubeconfig().unwrap()).await;
    let viewer = client_from(&emu.kubeconfig_for("viewer").unwrap()).await;
    let q: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
        "metadata": {"name": "q1"}, "spec": {"weight": 1}
    }))
    .unwrap();
    queues(&admin)
        .create(&PostParams::default(), &q)
        .await
        .unwrap();
    let before = queues(&admin).get("q1").await.unwrap();

    let listed = queues(&viewer).list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        queues(&viewer).get("q1").await.unwrap().data["spec"]["weight"],
        1
    );

    let pp = PatchParams::default();
    let weight = Patch::Merge(json!({"spec": {"weight": 5}}));
    let denied = api_status(queues(&viewer).patch("q1", &pp, &weight).await.unwrap_err());
    assert_eq!(denied.code, 403);
    assert_eq!(denied.reason, "Forbidden");
    assert_eq!(
        denied.message,
        "queues.scheduling.volcano.sh \"q1\" is forbidden: User \"viewer\" cannot patch resource \"queues\" in API group \"scheduling.volcano.sh\" at the cluster scope"
    );
    let details = denied.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("q1", "scheduling.volcano.sh", "queues")
    );
    let state = Patch::Merge(json!({"status": {"state": "Closed"}}));
    let denied = api_status(
        queues(&viewer)
            .patch_status("q1", &pp, &state)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        denied.message,
        "queues.scheduling.volcano.sh \"q1\" is forbidden: User \"viewer\" cannot patch resource \"queues/status\" in API group \"scheduling.volcano.sh\" at the cluster scope"
    );
    let denied = api_status(
        queues(&viewer)
            .delete("q1", &Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(denied.code, 403);
    let pods: Api<Pod> = Api::namespaced(viewer.clone(), "default");
    let denied = api_status(
        pods.create(&PostParams::default(), &pod("p"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        denied.message,
        "pods is forbidden: User \"viewer\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    assert_eq!(denied.details.unwrap().group, "");

    // Nothing was written.
    let after = queues(&admin).get("q1").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.data, before.data);

    // The admin may: a merge patch of the spec, then of `status` (as `phalanx queue set` and
    // Phalanx's status writer do), and a server-side apply of `status`.
    let patched = queues(&admin).patch("q1", &pp, &weight).await.unwrap();
    assert_eq!(patched.data["spec"]["weight"], 5);
    let patched = queues(&admin)
        .patch_status("q1", &pp, &state)
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["state"], "Closed");
    assert_eq!(patched.data["spec"]["weight"], 5);
    let apply = Patch::Apply(json!({
        "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
        "metadata": {"name": "q1"}, "status": {"state": "Open"}
    }));
    let applied = queues(&admin)
        .patch_status("q1", &PatchParams::apply("phalanx").force(), &apply)
        .await
        .unwrap();
    assert_eq!(applied.data["status"]["state"], "Open");
    assert_eq!(applied.data["spec"]["weight"], 5);
    emu.shutdown().await;
}

#[tokio::test]
async fn token_and_subject_access_reviews_answer_about_the_users() {
    let emu = emulator(users()).await;
    let admin = client_from(&emu.kubeconfig().unwrap()).await;
    let viewer = client_from(&emu.kubeconfig_for("viewer").unwrap()).await;

    let known = token_review(&admin, ADMIN).await.unwrap();
    assert_eq!(known.metadata, Default::default());
    let status = known.status.unwrap();
    assert_eq!(status.authenticated, Some(true));
    let user = status.user.unwrap();
    assert_eq!(user.username.as_deref(), Some("admin"));
    assert!(user.uid.is_some_and(|u| !u.is_empty()));
    assert_eq!(
        user.groups.unwrap(),
        vec!["ops".to_string(), "system:authenticated".to_string()]
    );
    let status = token_review(&admin, VIEWER).await.unwrap().status.unwrap();
    assert_eq!(status.authenticated, Some(true));
    assert_eq!(
        status.user.unwrap().username.as_deref(),
        Some("viewer"),
        "the token's user, not the caller's"
    );
    let status = token_review(&admin, "stolen")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.authenticated, Some(false));
    assert_eq!(status.error.as_deref(), Some("invalid bearer token"));
    let empty = api_status(token_review(&admin, "").await.unwrap_err());
    assert_eq!(empty.code, 400);

    let allowed = |s: SubjectAccessReview| {
        let st = s.status.unwrap();
        (st.allowed, st.reason.unwrap_or_default())
    };
    assert!(allowed(access_review(&admin, "admin", "patch", "queues").await).0);
    assert!(allowed(access_review(&admin, "viewer", "list", "queues").await).0);
    assert_eq!(
        allowed(access_review(&admin, "viewer", "patch", "queues").await),
        (
            false,
            "user \"viewer\" may only get, list and watch".to_string()
        )
    );
    let (ok, why) = allowed(access_review(&admin, "nobody", "get", "queues").await);
    assert!(!ok);
    assert!(why.contains("nobody"), "{why}");
    // Non-resource requests follow the same rule.
    let non_resource = |verb: &str| SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("viewer".into()),
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some("/metrics".into()),
                verb: Some(verb.into()),
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let sars = Api::<SubjectAccessReview>::all(admin.clone());
    let pp = PostParams::default();
    assert!(
        sars.create(&pp, &non_resource("get"))
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );
    assert!(
        !sars
            .create(&pp, &non_resource("post"))
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );
    // A review must say what about whom, as kube-apiserver validates it.
    let invalid = api_status(
        sars.create(&pp, &SubjectAccessReview::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(invalid.code, 422);
    assert!(
        invalid
            .message
            .starts_with("SubjectAccessReview.authorization.k8s.io \"\" is invalid: ["),
        "{}",
        invalid.message
    );

    // Only admins may ask (in a real cluster, system:auth-delegator).
    let denied = api_status(token_review(&viewer, ADMIN).await.unwrap_err());
    assert_eq!(denied.code, 403);
    assert_eq!(
        denied.message,
        "tokenreviews.authentication.k8s.io is forbidden: User \"viewer\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"
    );
    let denied = Api::<SubjectAccessReview>::all(viewer)
        .create(&pp, &non_resource("get"))
        .await
        .unwrap_err();
    assert_eq!(api_status(denied).code, 403);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_cli_writes_an_admin_and_a_viewer_kubeconfig() {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let dir = std::env::temp_dir().join(format!("emu-auth-kc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (admin_kc, viewer_kc): (PathBuf, PathBuf) = (dir.join("admin"), dir.join("viewer"));
    let args = Cli::try_parse_from([
        "emulator".to_string(),
        "--listen=127.0.0.1:0".into(),
        "--token=v-token=viewer,team-a:view".into(),
        "--token=a-token=alice:admin".into(),
        format!("--kubeconfig={}", admin_kc.display()),
        format!("--kubeconfig-for=viewer={}", viewer_kc.display()),
    ])
    .unwrap()
    .serve;
    let emu = start(args.config().unwrap()).await.unwrap();
    write_kubeconfigs(
        &emu,
        args.kubeconfig.as_deref(),
        &args.kubeconfigs_for().unwrap(),
    )
    .unwrap();
    let client = |path: &PathBuf| {
        let text = std::fs::read_to_string(path).unwrap();
        async move { client_from(&text).await }
    };
    let (admin, viewer) = (client(&admin_kc).await, client(&viewer_kc).await);
    // The first admin token, though a viewer's comes first.
    let who = token_review(&admin, "a-token").await.unwrap();
    assert_eq!(
        who.status.unwrap().user.unwrap().username.as_deref(),
        Some("alice")
    );
    let pods: Api<Pod> = Api::default_namespaced(viewer);
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let denied = pods.create(&PostParams::default(), &pod("p")).await;
    assert_eq!(api_status(denied.unwrap_err()).code, 403);
    Api::<Pod>::default_namespaced(admin)
        .create(&PostParams::default(), &pod("p"))
        .await
        .unwrap();
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    // A user no token has, or no admin for `--kubeconfig`, is an error.
    let unknown = write_kubeconfigs(&emu, None, &[("nobody".into(), dir.join("x"))]);
    assert!(matches!(unknown, Err(CliError::UnknownUser(u)) if u == "nobody"));
    emu.shutdown().await;
    let viewers_only = emulator(vec![TokenUser::new("v", "viewer", Role::View)]).await;
    let no_admin = write_kubeconfigs(&viewers_only, Some(&dir.join("y")), &[]);
    assert!(matches!(no_admin, Err(CliError::NoAdminToken)));
    viewers_only.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}
