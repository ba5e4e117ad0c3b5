//! Who is calling and what they may do: the `--token` users (a bearer token, a user name, groups
//! and the role `admin` or `view`), the one authorization rule, and the TokenReview and
//! SubjectAccessReview answers through which delegated authentication and authorization (as on
//! kube-scheduler's secure port) ask about those users.
//!
//! - **No users configured** (the default): nothing is checked, every request is allowed with or
//!   without `Authorization`, as before users existed. TokenReviews then answer
//!   `authenticated: false` for every token and SubjectAccessReviews `allowed: false` for every
//!   user: there are no users to recognise.
//! - **With users**: a request to a resource URL needs `Authorization: Bearer <token>` of a
//!   known user, else 401 `Unauthorized`; a `view` user may only get, list and watch, anything
//!   else is 403 `Forbidden` with kube-apiserver's message. Creating TokenReviews and
//!   SubjectAccessReviews is a `create`, so only `admin` users may (in a real cluster, those
//!   bound to `system:auth-delegator`). Discovery, OpenAPI, `/version`, the health endpoints and
//!   the emulator's own `/emulator/...` endpoints stay open.
//!
//! Roles are per user name; groups are reported in TokenReviews but grant nothing (there is no
//! RBAC, only the two roles). [`Auth::decide`] is the rule, used both for the emulator's own
//! requests and for SubjectAccessReview answers.

use std::fmt;

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::api::Target;
use crate::resources::ResourceDef;
use crate::status::{ApiError, FieldError};

/// The verbs a `view` user may use.
const READ_VERBS: [&str; 3] = ["get", "list", "watch"];

/// The group every authenticated user is in, as kube-apiserver adds it.
const AUTHENTICATED: &str = "system:authenticated";

/// A malformed or inconsistent `--token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not `TOKEN=USER[,GROUP...]:ROLE`.
    #[error("invalid --token {0:?}: expected TOKEN=USER[,GROUP...]:ROLE with ROLE admin or view")]
    Syntax(String),
    /// Two users share one token.
    #[error("a token of user {0:?} is given twice")]
    DuplicateToken(String),
    /// One user has tokens of different roles.
    #[error("user {0:?} has tokens with different roles")]
    RoleConflict(String),
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every verb on everything.
    Admin,
    /// Only get, list and watch.
    View,
}

impl Role {
    /// `admin` or `view`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::View => "view",
        }
    }
}

/// One `--token`: a bearer token and the user it authenticates.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenUser {
    /// The bearer token.
    pub token: String,
    /// User name (`username` in a TokenReview).
    pub user: String,
    /// Groups, without `system:authenticated` (added to every user).
    pub groups: Vec<String>,
    /// What the user may do.
    pub role: Role,
}

impl fmt::Debug for TokenUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenUser")
            .field("token", &"<redacted>")
            .field("user", &self.user)
            .field("groups", &self.groups)
            .field("role", &self.role)
            .finish()
    }
}

impl TokenUser {
    /// A user without groups.
    pub fn new(token: &str, user: &str, role: Role) -> Self {
        Self {
            token: token.to_string(),
            user: user.to_string(),
            groups: Vec::new(),
            role,
        }
    }

    /// Parses `TOKEN=USER[,GROUP...]:ROLE`. The token ends at the last `=` (so base64 padding
    /// may stay in it) and the role starts after the last `:` (so user names such as
    /// `system:serviceaccount:ns:name` work).
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let bad = || AuthError::Syntax(s.to_string());
        let (token, rest) = s.rsplit_once('=').ok_or_else(bad)?;
        let (who, role) = rest.rsplit_once(':').ok_or_else(bad)?;
        let role = match role {
            "admin" => Role::Admin,
            "view" => Role::View,
            _ => return Err(bad()),
        };
        let mut parts = who.split(',').map(str::trim);
        let user = parts.next().unwrap_or("");
        if token.is_empty() || user.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            token: token.to_string(),
            user: user.to_string(),
            groups: parts
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect(),
            role,
        })
    }

    /// The `uid` TokenReviews report (stable per user name).
    pub fn uid(&self) -> String {
        format!("phalanx-emulator-{}", self.user)
    }
}

/// What a request (or a SubjectAccessReview) asks to do, as kube-apiserver's authorizer sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// User name.
    pub user: String,
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`), or the lower-case HTTP verb of a non-resource request.
    pub verb: String,
    /// API group; empty for core.
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource (`status`, `binding`, `eviction`); empty for none.
    pub subresource: String,
    /// Namespace; empty for cluster-scoped requests.
    pub namespace: String,
    /// Object name; empty for collections.
    pub name: String,
    /// The URL path of a non-resource request; `None` for resource requests.
    pub path: Option<String>,
}

impl Attributes {
    /// The attributes of a request by `user` to a resource URL.
    pub fn of_request(user: &str, verb: &str, t: &Target) -> Self {
        Self {
            user: user.to_string(),
            verb: verb.to_string(),
            group: t.res.group.clone(),
            resource: t.res.plural.clone(),
            subresource: t.sub.clone().unwrap_or_default(),
            namespace: t.namespace.clone().unwrap_or_default(),
            name: t.name.clone().unwrap_or_default(),
            path: None,
        }
    }

    /// The 403 kube-apiserver answers to a resource request its authorizer denies
    /// (`k8s.io/apiserver/pkg/endpoints/handlers/responsewriters.forbiddenMessage`, RBAC giving
    /// no reason).
    pub fn forbidden(&self) -> ApiError {
        let resource = if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", self.namespace)
        };
        ApiError::Forbidden {
            resource: if self.group.is_empty() {
                self.resource.clone()
            } else {
                format!("{}.{}", self.resource, self.group)
            },
            name: self.name.clone(),
            message: format!(
                "User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
                self.user, self.verb, self.group
            ),
        }
    }
}

/// An authorization answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or not.
    pub allowed: bool,
    /// Why, for SubjectAccessReview's `status.reason`.
    pub reason: String,
}

/// The configured users; empty means nothing is checked.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    users: Vec<TokenUser>,
}

impl Auth {
    /// The users of these tokens; a token must name one user, and a user has one role.
    pub fn new(users: Vec<TokenUser>) -> Result<Self, AuthError> {
        for (i, u) in users.iter().enumerate() {
            for earlier in &users[..i] {
                if earlier.token == u.token {
                    return Err(AuthError::DuplicateToken(u.user.clone()));
                }
                if earlier.user == u.user && earlier.role != u.role {
                    return Err(AuthError::RoleConflict(u.user.clone()));
                }
            }
        }
        Ok(Self { users })
    }

    /// True when users are configured, so requests are checked.
    pub fn enabled(&self) -> bool {
        !self.users.is_empty()
    }

    /// The user a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&TokenUser> {
        self.users.iter().find(|u| u.token == token)
    }

    /// A user's first token.
    pub fn user(&self, name: &str) -> Option<&TokenUser> {
        self.users.iter().find(|u| u.user == name)
    }

    /// The first token of an `admin` user (the one the emulator's kubeconfig carries).
    pub fn first_admin(&self) -> Option<&TokenUser> {
        self.users.iter().find(|u| u.role == Role::Admin)
    }

    /// The rule: may `a.user` do `a.verb` on `a.resource`? An `admin` user may do anything, a
    /// `view` user only get, list and watch, anyone else nothing.
    pub fn decide(&self, a: &Attributes) -> Decision {
        let (allowed, reason) = match self.user(&a.user).map(|u| u.role) {
            None => (
                false,
                format!("no token of the emulator belongs to user {:?}", a.user),
            ),
            Some(Role::Admin) => (true, format!("user {:?} has the admin role", a.user)),
            Some(Role::View) if READ_VERBS.contains(&a.verb.as_str()) => {
                (true, format!("user {:?} has the view role", a.user))
            }
            Some(Role::View) => (
                false,
                format!("user {:?} may only get, list and watch", a.user),
            ),
        };
        Decision { allowed, reason }
    }

    /// The user a request's bearer token belongs to; "" when no users are configured or the
    /// token is unknown.
    pub fn user_of(&self, headers: &HeaderMap) -> String {
        bearer(headers)
            .and_then(|token| self.authenticate(token))
            .map(|u| u.user.clone())
            .unwrap_or_default()
    }

    /// Authenticates and authorizes a request to a resource URL: `Ok` when no users are
    /// configured or the bearer token's user may do `verb` there; 401 or 403 otherwise.
    pub fn check(&self, headers: &HeaderMap, verb: &str, t: &Target) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
        }
        let user = bearer(headers)
            .and_then(|token| self.authenticate(token))
            .ok_or(ApiError::Unauthorized)?;
        let a = Attributes::of_request(&user.user, verb, t);
        if self.decide(&a).allowed {
            Ok(())
        } else {
            Err(a.forbidden())
        }
    }

    /// Answers a TokenReview or SubjectAccessReview (`res` is create-only): the posted object
    /// with its `status` filled in.
    pub fn review(&self, res: &ResourceDef, body: Value) -> Result<Value, ApiError> {
        let status = match res.plural.as_str() {
            "tokenreviews" => self.token_review(&body)?,
            "subjectaccessreviews" => self.access_review(&body)?,
            _ => return Err(ApiError::NoSuchPath),
        };
        let mut out = match body {
            Value::Object(m) => Value::Object(m),
            _ => json!({}),
        };
        out["apiVersion"] = json!(res.api_version());
        out["kind"] = json!(res.kind);
        if !out.get("metadata").is_some_and(Value::is_object) {
            out["metadata"] = json!({});
        }
        out["status"] = status;
        Ok(out)
    }

    fn token_review(&self, body: &Value) -> Result<Value, ApiError> {
        let token = body
            .pointer("/spec/token")
            .and_then(Value::as_str)
            .unwrap_or("");
        if token.is_empty() {
            return Err(ApiError::BadRequest(
                "token is required for TokenReview in authentication".into(),
            ));
        }
        let Some(u) = self.authenticate(token) else {
            return Ok(
                json!({"authenticated": false, "user": {}, "error": "invalid bearer token"}),
            );
        };
        let mut groups = u.groups.clone();
        groups.push(AUTHENTICATED.to_string());
        let mut status = json!({
            "authenticated": true,
            "user": {"username": u.user, "uid": u.uid(), "groups": groups},
        });
        // Static tokens are valid for any audience: the requested ones are granted.
        if let Some(a) = body
            .pointer("/spec/audiences")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            status["audiences"] = a.clone();
        }
        Ok(status)
    }

    fn access_review(&self, body: &Value) -> Result<Value, ApiError> {
        let spec = body.get("spec").cloned().unwrap_or(Value::Null);
        let attr = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
        let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
        let user = attr(&spec, "user");
        let has_groups = spec
            .get("groups")
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty());
        // kube-apiserver's ValidateSubjectAccessReviewSpec.
        let mut errors = Vec::new();
        match (resource, non_resource) {
            (Some(_), Some(n)) => errors.push(FieldError::invalid(
                "spec.nonResourceAttributes",
                n,
                "cannot be specified in combination with resourceAttributes",
            )),
            (None, None) => errors.push(FieldError::invalid(
                "spec.resourceAttributes",
                &Value::Null,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )),
            _ => {}
        }
        if user.is_empty() && !has_groups {
            errors.push(FieldError::invalid(
                "spec.user",
                &json!(user),
                "at least one of user or group must be specified",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::FieldsInvalid {
                kind: "SubjectAccessReview.authorization.k8s.io".into(),
                name: String::new(),
                errors,
            });
        }
        let a = match (resource, non_resource) {
            (Some(r), _) => Attributes {
                user,
                verb: attr(r, "verb"),
                group: attr(r, "group"),
                resource: attr(r, "resource"),
                subresource: attr(r, "subresource"),
                namespace: attr(r, "namespace"),
                name: attr(r, "name"),
                path: None,
            },
            (None, Some(n)) => Attributes {
                user,
                verb: attr(n, "verb"),
                path: Some(attr(n, "path")),
                ..Attributes::default()
            },
            (None, None) => unreachable!("validated above"),
        };
        let d = self.decide(&a);
        tracing::debug!(user = %a.user, verb = %a.verb, resource = %a.resource, allowed = d.allowed, "SubjectAccessReview");
        Ok(json!({"allowed": d.allowed, "reason": d.reason}))
    }
}

/// The bearer token of a request, parsed as kube-apiserver's bearer token authenticator does
/// (`Bearer` in any case, then the token up to the next space).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = v.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(vec![
            TokenUser::parse("t-admin=admin,ops:admin").unwrap(),
            TokenUser::parse("t-view=viewer:view").unwrap(),
        ])
        .unwrap()
    }

    fn attrs(user: &str, verb: &str) -> Attributes {
        Attributes {
            user: user.into(),
            verb: verb.into(),
            group: "scheduling.volcano.sh".into(),
            resource: "queues".into(),
            ..Attributes::default()
        }
    }

    #[test]
    fn tokens_parse() {
        let u = TokenUser::parse("abc==sa=system:serviceaccount:ns:name,g1,g2:view").unwrap();
        assert_eq!(u.token, "abc==sa");
        assert_eq!(u.user, "system:serviceaccount:ns:name");
        assert_eq!(u.groups, vec!["g1", "g2"]);
        assert_eq!(u.role, Role::View);
        assert_eq!(
            TokenUser::parse("t=alice:admin").unwrap(),
            TokenUser::new("t", "alice", Role::Admin)
        );
        for bad in [
            "t=alice",
            "t=alice:root",
            "alice:admin",
            "=alice:admin",
            "t=:view",
        ] {
            assert_eq!(
                TokenUser::parse(bad),
                Err(AuthError::Syntax(bad.into())),
                "{bad}"
            );
        }
        assert!(!format!("{u:?}").contains("abc"), "tokens are not logged");
    }

    #[test]
    fn users_are_consistent() {
        let t = |s: &str| TokenUser::parse(s).unwrap();
        assert_eq!(
            Auth::new(vec![t("x=a:admin"), t("x=b:view")]).unwrap_err(),
            AuthError::DuplicateToken("b".into())
        );
        assert_eq!(
            Auth::new(vec![t("x=a:admin"), t("y=a:view")]).unwrap_err(),
            AuthError::RoleConflict("a".into())
        );
        assert!(Auth::new(vec![t("x=a:admin"), t("y=a:admin")]).is_ok());
    }

    #[test]
    fn admin_may_do_anything_and_view_only_read() {
        let a = auth();
        for verb in ["get", "list", "watch", "create", "patch", "delete"] {
            assert!(a.decide(&attrs("admin", verb)).allowed, "{verb}");
        }
        for verb in ["get", "list", "watch"] {
            assert!(a.decide(&attrs("viewer", verb)).allowed, "{verb}");
        }
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            let d = a.decide(&attrs("viewer", verb));
            assert!(!d.allowed, "{verb}");
            assert_eq!(d.reason, "user \"viewer\" may only get, list and watch");
        }
        let d = a.decide(&attrs("mallory", "get"));
        assert!(!d.allowed);
        assert!(d.reason.contains("mallory"), "{}", d.reason);
        assert!(!Auth::default().decide(&attrs("admin", "get")).allowed);
    }

    #[test]
    fn forbidden_messages_match_kube_apiserver() {
        let mut a = attrs("viewer", "patch");
        a.name = "q1".into();
        assert_eq!(
            a.forbidden().to_string(),
            "queues.scheduling.volcano.sh \"q1\" is forbidden: User \"viewer\" cannot patch resource \"queues\" in API group \"scheduling.volcano.sh\" at the cluster scope"
        );
        a.subresource = "status".into();
        assert!(
            a.forbidden()
                .to_string()
                .contains("cannot patch resource \"queues/status\" in API group")
        );
        let pods = Attributes {
            user: "viewer".into(),
            verb: "create".into(),
            resource: "pods".into(),
            namespace: "default".into(),
            ..Attributes::default()
        };
        assert_eq!(
            pods.forbidden().to_string(),
            "pods is forbidden: User \"viewer\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\""
        );
    }

    #[test]
    fn bearer_tokens_are_read_like_kube_apiserver() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, v.parse().unwrap());
            m
        };
        assert_eq!(bearer(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&h("bearer abc extra")), Some("abc"));
        assert_eq!(bearer(&h("Basic abc")), None);
        assert_eq!(bearer(&h("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
