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
            Self::Invalid { .. } => 422,
            Self::BadRequest(_) => 400,
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
            Self::Invalid { .. } => "Invalid",
            Self::BadRequest(_) => "BadRequest",
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
            Self::TooManyRequests => Some(json!({ "retryAfterSeconds": 1 })),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
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
