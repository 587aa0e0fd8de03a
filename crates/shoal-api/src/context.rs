//! The request context every `/v2` handler receives: who is calling, at which microversion,
//! whether they are an admin, plus the helpers that enforce policy and version ranges in
//! Manila's order (policy before any lookup, so an unknown id under a denied rule is a 403).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use shoal_policy::{Credentials, Enforcer, Target};
use shoal_types::ApiVersion;

use crate::ApiState;
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::microversion::Microversion;
use crate::routing::UrlProject;

/// Per-request context (Manila's `RequestContext`).
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Authenticated caller.
    pub identity: Identity,
    /// Result of `context_is_admin` (always true under noauth).
    pub is_admin: bool,
    /// Negotiated microversion.
    pub mv: Microversion,
    /// Policy engine credentials derived from the identity.
    pub credentials: Credentials,
}

impl RequestContext {
    /// The caller's project.
    pub fn project_id(&self) -> &str {
        &self.identity.project_id
    }

    /// Effective version.
    pub fn version(&self) -> ApiVersion {
        self.mv.version
    }

    /// True when the version is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.mv.version.at_least(major, minor)
    }

    /// Enforces `rule` with the caller's own project as target (Manila's `@authorize`).
    pub fn authorize(&self, state: &ApiState, rule: &str) -> ApiResult<()> {
        self.authorize_target(state, rule, self.project_id())
    }

    /// Enforces `rule` against a resource owned by `project_id`.
    pub fn authorize_target(
        &self,
        state: &ApiState,
        rule: &str,
        project_id: &str,
    ) -> ApiResult<()> {
        let mut target = Target::new();
        target.insert("project_id".to_owned(), project_id.to_owned());
        target.insert("user_id".to_owned(), self.identity.user_id.clone());
        if state.policy.enforce(rule, &target, &self.credentials) {
            Ok(())
        } else {
            Err(ApiError::policy_denied())
        }
    }

    /// 404 unless the method exists at this version (`min..=max`, `max` None = open).
    pub fn require_version(&self, min: (u32, u32), max: Option<(u32, u32)>) -> ApiResult<()> {
        let max = max.map(|(a, b)| ApiVersion::new(a, b));
        if self.mv.matches(ApiVersion::new(min.0, min.1), max) {
            Ok(())
        } else {
            Err(ApiError::generic_not_found())
        }
    }

    /// 404 unless the method is reachable: experimentally in `[exp_min, ga)`, and without
    /// the flag from `ga` on (e.g. share replicas: 2.11 experimental, 2.56 GA).
    pub fn require_experimental(&self, exp_min: (u32, u32), ga: (u32, u32)) -> ApiResult<()> {
        let exp_min = ApiVersion::new(exp_min.0, exp_min.1);
        let ga = ApiVersion::new(ga.0, ga.1);
        if self.mv.version >= ga || (self.mv.experimental && self.mv.version >= exp_min) {
            Ok(())
        } else {
            Err(ApiError::generic_not_found())
        }
    }
}

/// Policy credentials of `identity`, with `is_admin` decided once: forced (noauth) or by
/// the `context_is_admin` rule. Every admin check of the API goes through here.
pub fn credentials(policy: &Enforcer, identity: &Identity) -> Credentials {
    let mut credentials = Credentials {
        user_id: identity.user_id.clone(),
        project_id: identity.project_id.clone(),
        roles: identity.roles.clone(),
        is_admin: identity.force_admin,
    };
    credentials.is_admin = identity.force_admin || policy.is_admin(&credentials);
    credentials
}

impl FromRequestParts<ApiState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let identity = parts.extensions.get::<Identity>().cloned().ok_or_else(|| {
            ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "unauthenticated")
        })?;
        let mv = parts
            .extensions
            .get::<Microversion>()
            .copied()
            .unwrap_or(Microversion {
                version: ApiVersion::MIN,
                experimental: false,
            });
        if let Some(UrlProject(project)) = parts.extensions.get::<UrlProject>()
            && *project != identity.project_id
        {
            return Err(ApiError::bad_request("Malformed request url"));
        }
        let credentials = credentials(&state.policy, &identity);
        let is_admin = credentials.is_admin;
        Ok(Self {
            identity,
            is_admin,
            mv,
            credentials,
        })
    }
}
