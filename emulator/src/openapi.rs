//! The OpenAPI documents kubectl reads: `/openapi/v2` (JSON, or the protobuf encoding of
//! gnostic's `openapi_v2.Document` that client-go asks for) and `/openapi/v3` with its
//! per-group-version documents.
//!
//! They carry no schemas, only what kubectl decides with: every resource's PATCH operation, its
//! `x-kubernetes-group-version-kind`, and the `fieldValidation` query parameter, so kubectl sees
//! that the server validates fields itself (the emulator accepts and ignores the parameter).
//!
//! Why v2 too: for a `kind: List` file, `kubectl apply` and `kubectl create` validate on the
//! client side (kubectl's v3 query-parameter verifier never vouches for `v1/List`), which needs
//! `/openapi/v2` in protobuf. Without it the command fails with "the server could not find the
//! requested resource". With a document that has no `definitions`, kubectl finds no schema for
//! the items and skips client-side validation, then sends each item as usual.
//!
//! ```text
//!  GET /openapi/v2   Accept: application/com.github.proto-openapi.spec.v2[@.]v1.0+protobuf -> protobuf
//!                    Accept: application/json (or anything else)                          -> JSON
//!  GET /openapi/v3                       -> {"paths": {"api/v1": {"serverRelativeURL": ...}}}
//!  GET /openapi/v3/api/v1, /apis/g/v     -> PATCH operations of that group-version
//! ```

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::api::{KUBE_VERSION, json_response};
use crate::resources::ResourceDef;
use crate::server::AppState;

/// The media type of the protobuf OpenAPI v2 document, as kube-openapi names it in responses.
/// Clients may ask for it by this name or by the deprecated
/// `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (what client-go sends); the
/// response always carries this one, which Go's `mime.ParseMediaType` can parse.
pub const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The query parameter kubectl looks for before it leaves field validation to the server.
const FIELD_VALIDATION: &str = "fieldValidation";

fn title() -> String {
    "Kubernetes (phalanx emulator)".to_string()
}

fn version() -> String {
    format!("v{}.{}.0", KUBE_VERSION.0, KUBE_VERSION.1)
}

/// The URL of one object of `r`, in OpenAPI path template form.
fn object_path(r: &ResourceDef) -> String {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
    } else {
        format!("{prefix}/{}/{{name}}", r.plural)
    }
}

fn gvk(r: &ResourceDef) -> Value {
    json!({"group": r.group, "version": r.version, "kind": r.kind})
}

fn operation_id(r: &ResourceDef) -> String {
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let group: String = r
        .group
        .split(['.', '-'])
        .next()
        .map(upper_first)
        .unwrap_or_default();
    format!(
        "patch{}{}{scope}{}",
        if r.group.is_empty() { "Core" } else { &group },
        upper_first(&r.version),
        r.kind
    )
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Resources sorted by path, so documents are stable.
fn sorted(state: &AppState) -> Vec<std::sync::Arc<ResourceDef>> {
    let mut rs = state.store.resources();
    rs.sort_by_key(|r| object_path(r));
    rs
}

/// Serves `/openapi/v2` and `/openapi/v3[/...]`; `None` for any other path.
pub fn serve(state: &AppState, path: &str, accept: &str) -> Option<Response> {
    let p = path.trim_matches('/');
    if p == "openapi/v2" {
        return Some(if accept.contains("com.github.proto-openapi.spec.v2") {
            protobuf_response(v2_protobuf(&sorted(state)))
        } else {
            json_response(200, &v2_json(&sorted(state)))
        });
    }
    let rest = p.strip_prefix("openapi/v3")?;
    v3(state, rest.trim_start_matches('/'))
}

fn protobuf_response(body: Vec<u8>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, OPENAPI_V2_PROTOBUF)
        .header(header::VARY, "Accept")
        .body(Body::from(body))
        .expect("static response parts are valid")
}

/// The OpenAPI v2 document as JSON.
pub fn v2_json(resources: &[std::sync::Arc<ResourceDef>]) -> Value {
    let mut paths = Map::new();
    for r in resources {
        paths.insert(
            object_path(r),
            json!({"patch": {
                "operationId": operation_id(r),
                "consumes": ["application/json-patch+json", "application/merge-patch+json",
                             "application/strategic-merge-patch+json", "application/apply-patch+yaml"],
                "produces": ["application/json"],
                "parameters": [{"uniqueItems": true, "type": "string", "name": FIELD_VALIDATION, "in": "query"}],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk(r),
            }}),
        );
    }
    json!({
        "swagger": "2.0",
        "info": {"title": title(), "version": version()},
        "paths": paths,
        "definitions": {},
    })
}

/// The OpenAPI v2 document in protobuf: gnostic's `openapi.v2.Document` (the message client-go
/// decodes), with the same content as [`v2_json`].
pub fn v2_protobuf(resources: &[std::sync::Arc<ResourceDef>]) -> Vec<u8> {
    use pb::Message;
    // Field numbers of gnostic's OpenAPIv2.proto.
    let mut info = Message::default();
    info.string(1, &title()).string(2, &version());
    let mut paths = Message::default();
    for r in resources {
        let mut query = Message::default(); // QueryParameterSubSchema
        query
            .string(2, "query")
            .string(4, FIELD_VALIDATION)
            .string(6, "string")
            .boolean(20, true);
        let mut non_body = Message::default(); // NonBodyParameter
        non_body.message(3, &query);
        let mut parameter = Message::default(); // Parameter
        parameter.message(2, &non_body);
        let mut item = Message::default(); // ParametersItem
        item.message(1, &parameter);
        let mut response = Message::default(); // Response
        response.string(1, "OK");
        let mut response_value = Message::default(); // ResponseValue
        response_value.message(1, &response);
        let mut named_response = Message::default(); // NamedResponseValue
        named_response.string(1, "200").message(2, &response_value);
        let mut responses = Message::default(); // Responses
        responses.message(1, &named_response);
        let mut op = Message::default(); // Operation
        op.string(5, &operation_id(r));
        for c in [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ] {
            op.string(7, c);
        }
        op.string(6, "application/json")
            .message(8, &item)
            .message(9, &responses)
            .message(13, &vendor_extension("x-kubernetes-action", "patch\n"))
            .message(
                13,
                &vendor_extension(
                    "x-kubernetes-group-version-kind",
                    &format!(
                        "group: \"{}\"\nkind: {}\nversion: {}\n",
                        r.group, r.kind, r.version
                    ),
                ),
            );
        let mut path_item = Message::default(); // PathItem
        path_item.message(8, &op);
        let mut named = Message::default(); // NamedPathItem
        named.string(1, &object_path(r)).message(2, &path_item);
        paths.message(2, &named);
    }
    let mut doc = Message::default(); // Document
    doc.string(1, "2.0")
        .message(2, &info)
        .message(8, &paths)
        .message(9, &Message::default());
    doc.into_bytes()
}

/// A `NamedAny` vendor extension whose value is YAML, as gnostic encodes `x-` extensions.
fn vendor_extension(name: &str, yaml: &str) -> pb::Message {
    let mut any = pb::Message::default();
    any.string(2, yaml);
    let mut named = pb::Message::default();
    named.string(1, name).message(2, &any);
    named
}

/// `/openapi/v3` (`rest` empty) or one group-version's document (`rest` = `api/v1`,
/// `apis/{group}/{version}`).
fn v3(state: &AppState, rest: &str) -> Option<Response> {
    let mut gvs: Vec<(String, String)> = state
        .store
        .resources()
        .iter()
        .map(|r| (r.group.clone(), r.version.clone()))
        .collect();
    gvs.sort();
    gvs.dedup();
    let gv_path = |g: &str, v: &str| {
        if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        }
    };
    if rest.is_empty() {
        let paths: Map<String, Value> = gvs
            .iter()
            .map(|(g, v)| {
                let p = gv_path(g, v);
                let url = format!("/openapi/v3/{p}?hash={}", state.store.current_rv());
                (p, json!({"serverRelativeURL": url}))
            })
            .collect();
        return Some(json_response(200, &json!({"paths": paths})));
    }
    let (g, v) = gvs.iter().find(|(g, v)| gv_path(g, v) == rest)?;
    let mut paths = Map::new();
    for r in sorted(state) {
        if &r.group != g || &r.version != v {
            continue;
        }
        paths.insert(
            object_path(&r),
            json!({"patch": {
                "operationId": operation_id(&r),
                "x-kubernetes-group-version-kind": gvk(&r),
                "parameters": [{"name": FIELD_VALIDATION, "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}},
            }}),
        );
    }
    Some(json_response(
        200,
        &json!({"openapi": "3.0.0",
                "info": {"title": title(), "version": version()},
                "paths": paths, "components": {"schemas": {}}}),
    ))
}

/// A minimal protobuf writer: just the wire types the OpenAPI document needs.
mod pb {
    /// One message being encoded.
    #[derive(Debug, Default, Clone)]
    pub struct Message(Vec<u8>);

    fn varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    impl Message {
        fn key(&mut self, field: u32, wire_type: u8) {
            varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire_type));
        }

        fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
            self.key(field, 2);
            varint(&mut self.0, b.len() as u64);
            self.0.extend_from_slice(b);
            self
        }

        /// A `string` field.
        pub fn string(&mut self, field: u32, s: &str) -> &mut Self {
            self.bytes(field, s.as_bytes())
        }

        /// An embedded message field.
        pub fn message(&mut self, field: u32, m: &Message) -> &mut Self {
            self.bytes(field, &m.0)
        }

        /// A `bool` field.
        pub fn boolean(&mut self, field: u32, b: bool) -> &mut Self {
            self.key(field, 0);
            varint(&mut self.0, u64::from(b));
            self
        }

        /// The encoded message.
        pub fn into_bytes(self) -> Vec<u8> {
            self.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtins;
    use std::sync::Arc;

    /// Reads the length-delimited and varint fields of one protobuf message.
    fn fields(mut b: &[u8]) -> Vec<(u32, Result<Vec<u8>, u64>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let field = (key >> 3) as u32;
            match key & 7 {
                0 => out.push((field, Err(varint(&mut b)))),
                2 => {
                    let len = varint(&mut b) as usize;
                    out.push((field, Ok(b[..len].to_vec())));
                    b = &b[len..];
                }
                t => panic!("unexpected wire type {t}"),
            }
        }
        out
    }

    fn get(b: &[u8], field: u32) -> Vec<Vec<u8>> {
        fields(b)
            .into_iter()
            .filter(|(f, _)| *f == field)
            .filter_map(|(_, v)| v.ok())
            .collect()
    }

    #[test]
    fn protobuf_v2_document_has_the_patch_operations_kubectl_checks() {
        let defs: Vec<Arc<ResourceDef>> = builtins().into_iter().map(Arc::new).collect();
        let doc = v2_protobuf(&defs);
        assert_eq!(get(&doc, 1), vec![b"2.0".to_vec()], "swagger");
        let info = &get(&doc, 2)[0];
        assert_eq!(get(info, 2), vec![version().into_bytes()]);
        let paths = &get(&doc, 8)[0];
        let named = get(paths, 2);
        assert_eq!(named.len(), defs.len());
        let pods = named
            .iter()
            .find(|n| get(n, 1)[0] == b"/api/v1/namespaces/{namespace}/pods/{name}")
            .expect("the pods path");
        let patch = &get(&get(pods, 2)[0], 8)[0];
        let param = &get(patch, 8)[0];
        let query = &get(&get(&get(param, 1)[0], 2)[0], 3)[0];
        assert_eq!(get(query, 4), vec![b"fieldValidation".to_vec()]);
        assert_eq!(get(query, 2), vec![b"query".to_vec()]);
        let exts: Vec<(Vec<u8>, Vec<u8>)> = get(patch, 13)
            .iter()
            .map(|e| (get(e, 1)[0].clone(), get(&get(e, 2)[0], 2)[0].clone()))
            .collect();
        assert!(exts.contains(&(
            b"x-kubernetes-group-version-kind".to_vec(),
            b"group: \"\"\nkind: Pod\nversion: v1\n".to_vec()
        )));
    }

    #[test]
    fn json_v2_document_mirrors_the_protobuf_one() {
        let defs: Vec<Arc<ResourceDef>> = builtins().into_iter().map(Arc::new).collect();
        let doc = v2_json(&defs);
        assert_eq!(doc["swagger"], "2.0");
        let lease = &doc["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"]
            ["patch"];
        assert_eq!(
            lease["x-kubernetes-group-version-kind"],
            json!({"group": "coordination.k8s.io", "version": "v1", "kind": "Lease"})
        );
        assert_eq!(lease["parameters"][0]["name"], "fieldValidation");
        assert_eq!(operation_id(&defs[1]), "patchCoreV1Node");
    }
}
