//! Kubernetes `Status` error bodies: the one error type every API request can fail with.
//!
//! Clients branch on `code` and `reason` (kube-rs turns a 410 into a relist, client-go retries a
//! 409 Conflict), so each variant maps to exactly the code and reason kube-apiserver uses.

use serde_json::{Value, json};

/// A failed API request, rendered as a `meta.k8s.io/v1 Status` body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 404: the object, or the namespace or node it refers to, does not exist.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// Qualified resource, e.g. `pods` or `podgroups.scheduling.volcano.sh`.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409 AlreadyExists: create of a name that is taken.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// Qualified resource.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409 Conflict: stale resourceVersion, or a binding of an already bound pod.
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        /// Qualified resource.
        resource: String,
        /// Object name.
        name: String,
        /// Why.
        message: String,
    },
    /// 422 Invalid: the object fails validation.
    #[error("{resource} \"{name}\" is invalid: {message}")]
    Invalid {
        /// Qualified resource.
        resource: String,
        /// Object name.
        name: String,
        /// Which field and why.
        message: String,
    },
    /// 422 Invalid with per-field causes, as kube-apiserver's validation reports them:
    /// `Event "e1" is invalid: message: Invalid value: "": can have at most 1024 characters`.
    #[error("{kind} \"{name}\" is invalid: {}", FieldError::aggregate(.errors))]
    FieldsInvalid {
        /// The kind, qualified by its group unless core (`Event`, `Lease.coordination.k8s.io`).
        kind: String,
        /// Object name.
        name: String,
        /// What is wrong, one entry per field.
        errors: Vec<FieldError>,
    },
    /// 401: no bearer token, or one the emulator does not know (only with `--token` users).
    #[error("Unauthorized")]
    Unauthorized,
    /// 403: an authenticated user the authorizer does not allow, in kube-apiserver's words:
    /// `queues.scheduling.volcano.sh "q1" is forbidden: User "viewer" cannot patch resource
    /// "queues" in API group "scheduling.volcano.sh" at the cluster scope`.
    #[error("{resource}{} is forbidden: {message}", quoted_name(.name))]
    Forbidden {
        /// Qualified resource without subresource (`pods`, `queues.scheduling.volcano.sh`).
        resource: String,
        /// Object name; empty for requests to a collection.
        name: String,
        /// Who cannot do what, where.
        message: String,
    },
    /// 400: malformed request (bad JSON, bad selector, mismatched namespace).
    #[error("{0}")]
    BadRequest(String),
    /// 405: the verb is not supported on this resource.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 404 for a URL that names no resource at all.
    #[error("the server could not find the requested resource")]
    NoSuchPath,
    /// 410 Expired: a watch or continue token older than the kept history window.
    #[error("{0}")]
    Gone(String),
    /// 406: no media type in `Accept` that the emulator can produce (it produces JSON only).
    #[error("only the following media types are accepted: application/json")]
    NotAcceptable,
    /// 415: a body in an encoding the emulator does not speak (protobuf, CBOR).
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json, application/apply-patch+yaml"
    )]
    UnsupportedMediaType,
    /// 429: throttled, injected by the fault injector.
    #[error("Too many requests, please try again later.")]
    TooManyRequests,
    /// 500: an injected failure or a broken invariant.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// 504: a request that took too long (used for injected timeouts).
    #[error("Timeout: {0}")]
    Timeout(String),
}

impl ApiError {
    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } | Self::NoSuchPath => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::Invalid { .. } | Self::FieldsInvalid { .. } => 422,
            Self::BadRequest(_) => 400,
            Self::Unauthorized => 401,
            Self::Forbidden { .. } => 403,
            Self::MethodNotAllowed(_) => 405,
            Self::Gone(_) => 410,
            Self::NotAcceptable => 406,
            Self::UnsupportedMediaType => 415,
            Self::TooManyRequests => 429,
            Self::Internal(_) => 500,
            Self::Timeout(_) => 504,
        }
    }

    /// The machine-readable `reason` of the Status body.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } | Self::NoSuchPath => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Invalid { .. } | Self::FieldsInvalid { .. } => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden { .. } => "Forbidden",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::Gone(_) => "Expired",
            Self::NotAcceptable => "NotAcceptable",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::TooManyRequests => "TooManyRequests",
            Self::Internal(_) => "InternalError",
            Self::Timeout(_) => "Timeout",
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        self.reason()
    }

    /// The full `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            Self::NotFound { resource, name }
            | Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name, .. }
            | Self::Invalid { resource, name, .. } => {
                let (kind, group) = resource.split_once('.').unwrap_or((resource, ""));
                let mut d = json!({ "name": name, "kind": kind });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            Self::FieldsInvalid { kind, name, errors } => {
                let (kind, group) = kind.split_once('.').unwrap_or((kind, ""));
                let causes: Vec<Value> = errors
                    .iter()
                    .map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.field}))
                    .collect();
                let mut d = json!({ "name": name, "kind": kind, "causes": causes });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            Self::Forbidden { resource, name, .. } => {
                // apimachinery's `StatusDetails` leaves empty fields out.
                let (kind, group) = resource.split_once('.').unwrap_or((resource, ""));
                let mut d = json!({ "kind": kind });
                if !name.is_empty() {
                    d["name"] = json!(name);
                }
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            Self::TooManyRequests => Some(json!({ "retryAfterSeconds": 1 })),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

/// ` "name"` for a named object, nothing for a collection, as apimachinery's `NewForbidden`.
fn quoted_name(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" {name:?}")
    }
}

/// What is wrong with one field, as in apimachinery's `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `message` or `series.count`.
    pub field: String,
    /// Which kind of problem.
    pub kind: FieldErrorKind,
    /// The offending value, already rendered (`""` for a string, JSON otherwise); empty for
    /// `Required`.
    pub value: String,
    /// Explanation, e.g. `can have at most 1024 characters`.
    pub detail: String,
}

/// The kinds of field errors the emulator reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueInvalid`.
    Invalid,
}

impl FieldErrorKind {
    /// The `reason` of a Status cause.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
        }
    }
}

impl FieldError {
    /// A missing required field.
    pub fn required(field: &str) -> Self {
        Self {
            field: field.to_string(),
            kind: FieldErrorKind::Required,
            value: String::new(),
            detail: String::new(),
        }
    }

    /// An invalid value; `value` is rendered as JSON (a string in quotes).
    pub fn invalid(field: &str, value: &Value, detail: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            kind: FieldErrorKind::Invalid,
            value: value.to_string(),
            detail: detail.into(),
        }
    }

    /// The error without its field: `Invalid value: "": can have at most 1024 characters`.
    pub fn body(&self) -> String {
        let mut s = match self.kind {
            FieldErrorKind::Required => "Required value".to_string(),
            FieldErrorKind::Invalid => format!("Invalid value: {}", self.value),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// One error as `field: body`, several as `[a: ..., b: ...]`, as apimachinery aggregates them.
    pub fn aggregate(errors: &[FieldError]) -> String {
        let each: Vec<String> = errors.iter().map(ToString::to_string).collect();
        match each.as_slice() {
            [one] => one.clone(),
            _ => format!("[{}]", each.join(", ")),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// A `Status` with `status: Success`, returned by binding, eviction and immediate deletes.
pub fn success(code: u16, details: Option<Value>) -> Value {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": code,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_render_like_apimachinery() {
        let e = ApiError::FieldsInvalid {
            kind: "Event".into(),
            name: "e1".into(),
            errors: vec![FieldError::invalid(
                "message",
                &json!(""),
                "can have at most 1024 characters",
            )],
        };
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(
            s["message"],
            "Event \"e1\" is invalid: message: Invalid value: \"\": can have at most 1024 characters"
        );
        assert_eq!(s["details"]["kind"], "Event");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "FieldValueInvalid", "field": "message",
                   "message": "Invalid value: \"\": can have at most 1024 characters"})
        );
        let two = ApiError::FieldsInvalid {
            kind: "Event".into(),
            name: "e2".into(),
            errors: vec![
                FieldError::required("action"),
                FieldError::required("reason"),
            ],
        };
        assert_eq!(
            two.to_string(),
            "Event \"e2\" is invalid: [action: Required value, reason: Required value]"
        );
    }

    #[test]
    fn unauthorized_and_forbidden_bodies_match_kube_apiserver() {
        let s = ApiError::Unauthorized.to_status();
        assert_eq!(
            s,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
        let named = ApiError::Forbidden {
            resource: "queues.scheduling.volcano.sh".into(),
            name: "q1".into(),
            message: "User \"viewer\" cannot patch resource \"queues\"".into(),
        }
        .to_status();
        assert_eq!(named["code"], 403);
        assert_eq!(named["reason"], "Forbidden");
        assert_eq!(
            named["message"],
            "queues.scheduling.volcano.sh \"q1\" is forbidden: User \"viewer\" cannot patch resource \"queues\""
        );
        assert_eq!(
            named["details"],
            json!({"name": "q1", "group": "scheduling.volcano.sh", "kind": "queues"})
        );
        let collection = ApiError::Forbidden {
            resource: "pods".into(),
            name: String::new(),
            message: "m".into(),
        }
        .to_status();
        assert_eq!(collection["message"], "pods is forbidden: m");
        assert_eq!(collection["details"], json!({"kind": "pods"}));
    }

    #[test]
    fn not_found_body_matches_kube_apiserver() {
        let e = ApiError::NotFound {
            resource: "podgroups.scheduling.volcano.sh".into(),
            name: "pg1".into(),
        };
        let s = e.to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(
            s["message"],
            "podgroups.scheduling.volcano.sh \"pg1\" not found"
        );
        assert_eq!(s["details"]["group"], "scheduling.volcano.sh");
        assert_eq!(s["details"]["kind"], "podgroups");
    }
}
