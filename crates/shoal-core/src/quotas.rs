//! Project quotas (Manila's `quota.py` for the resources shoal serves). Limits are the
//! configured defaults overridden per project; usage is kept by the store in `quota_usages`
//! and changes only inside the same transaction as the rows it accounts for (a share create
//! charges `shares`/`gigabytes` atomically with the insert), or through reservations that an
//! operation commits or rolls back (extend). So a crash can never leak usage. Per-user and
//! per-share-type limits and usage ([`Scope`]) ride on the same rows and the same checks.

use std::collections::BTreeMap;

use shoal_store::{QuotaRequest, StoreError};

use crate::{Core, CoreError, CoreResult};

/// Quota resources Manila shows before 2.53 (no replica quotas) — the full list is
/// [`crate::config::QuotaConfig::defaults`].
pub const REPLICA_RESOURCES: [&str; 2] = ["share_replicas", "replica_gigabytes"];

/// A quota scope below the project (Manila's per-user and per-share-type quotas).
///
/// Persisted without a schema change: a scoped limit or usage is a `quotas` /
/// `quota_usages` row of the project whose resource is `<resource>/user/<user id>` or
/// `<resource>/share_type/<type id>` ([`Scope::key`]). So the store's single conditional
/// `UPDATE` per row charges the project and its scopes in one transaction, and reservations,
/// commits, rollbacks and releases work on scoped rows exactly as on project rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The project itself.
    Project,
    /// One user of the project.
    User(&'a str),
    /// One share type in the project.
    ShareType(uuid::Uuid),
}

impl Scope<'_> {
    /// The row name of `resource` in this scope.
    pub fn key(&self, resource: &str) -> String {
        match self {
            Scope::Project => resource.to_owned(),
            Scope::User(user) => format!("{resource}/user/{user}"),
            Scope::ShareType(id) => format!("{resource}/share_type/{id}"),
        }
    }
}

/// Whether a quota row name belongs to a user or share-type scope.
pub fn is_scoped(resource: &str) -> bool {
    resource.contains('/')
}

/// The resource a (possibly scoped) row name is about.
pub fn base_resource(resource: &str) -> &str {
    resource.split('/').next().unwrap_or(resource)
}

/// Effective limits of `project_id`: defaults, then the project's overrides.
pub async fn effective_limits(core: &Core, project_id: &str) -> CoreResult<BTreeMap<String, i64>> {
    let mut limits: BTreeMap<String, i64> = core
        .config
        .quota
        .defaults()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for (resource, limit) in core.store.get_quota_overrides(project_id).await? {
        if !is_scoped(&resource) {
            limits.insert(resource, limit);
        }
    }
    Ok(limits)
}

/// Effective limits of a scope, keyed by plain resource names. A user's or share type's
/// limit defaults to the project's (Manila's `get_user_quotas` / `get_share_type_quotas`).
pub async fn scope_limits(
    core: &Core,
    project_id: &str,
    scope: Scope<'_>,
) -> CoreResult<BTreeMap<String, i64>> {
    let mut limits = effective_limits(core, project_id).await?;
    if scope == Scope::Project {
        return Ok(limits);
    }
    let overrides = core.store.get_quota_overrides(project_id).await?;
    for (resource, limit) in limits.iter_mut() {
        if let Some(scoped) = overrides.get(&scope.key(resource)) {
            *limit = *scoped;
        }
    }
    Ok(limits)
}

/// Whose usage a charge or release counts against, besides the project: the share's owner
/// and the share's type.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// Project charged.
    pub project_id: &'a str,
    /// User charged (the share's `user_id`).
    pub user_id: &'a str,
    /// Share type charged, if the share has one.
    pub share_type_id: Option<uuid::Uuid>,
}

/// Builds a request charging `deltas` to the project, the user and the share type, each
/// against its own effective limit (Manila's `QUOTAS.reserve` with `user_id` and
/// `share_type_id`).
pub async fn scoped_request(
    core: &Core,
    owner: Owner<'_>,
    deltas: &[(&str, i64)],
) -> CoreResult<QuotaRequest> {
    let mut req = request(core, owner.project_id, deltas).await?;
    let mut scopes = vec![Scope::User(owner.user_id)];
    if let Some(type_id) = owner.share_type_id {
        scopes.push(Scope::ShareType(type_id));
    }
    for scope in scopes {
        let limits = scope_limits(core, owner.project_id, scope).await?;
        for (resource, delta) in deltas {
            let key = scope.key(resource);
            req.deltas.insert(key.clone(), *delta);
            req.limits
                .insert(key, limits.get(*resource).copied().unwrap_or(-1));
        }
    }
    Ok(req)
}

/// Adds the user and share-type rows of every project delta of `req` (a release needs no
/// limits: negative deltas never fail).
pub fn with_scopes(
    mut req: QuotaRequest,
    user_id: &str,
    share_type_id: Option<uuid::Uuid>,
) -> QuotaRequest {
    let project_deltas: Vec<(String, i64)> = req
        .deltas
        .iter()
        .filter(|(r, _)| !is_scoped(r))
        .map(|(r, d)| (r.clone(), *d))
        .collect();
    let mut scopes = vec![Scope::User(user_id)];
    if let Some(type_id) = share_type_id {
        scopes.push(Scope::ShareType(type_id));
    }
    for scope in scopes {
        for (resource, delta) in &project_deltas {
            req.deltas.insert(scope.key(resource), *delta);
        }
    }
    req
}

/// Builds a request charging `deltas` against the project's effective limits.
pub async fn request(
    core: &Core,
    project_id: &str,
    deltas: &[(&str, i64)],
) -> CoreResult<QuotaRequest> {
    Ok(QuotaRequest {
        project_id: project_id.to_owned(),
        deltas: deltas.iter().map(|(r, d)| ((*r).to_owned(), *d)).collect(),
        limits: effective_limits(core, project_id).await?,
    })
}

/// Manila's `check_is_share_size_within_per_share_quota_limit`.
pub async fn check_per_share_limit(core: &Core, project_id: &str, size_gb: i64) -> CoreResult<()> {
    let limits = effective_limits(core, project_id).await?;
    let limit = limits.get("per_share_gigabytes").copied().unwrap_or(-1);
    if limit >= 0 && size_gb > limit {
        return Err(CoreError::over_limit(format!(
            "ShareSizeExceedsLimit: Requested share size {size_gb} is larger than maximum allowed limit {limit}."
        )));
    }
    Ok(())
}

/// What a refused charge was for: Manila words the replica errors differently when a share
/// create (rather than a replica create) hit them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /v2/shares`.
    CreateShare,
    /// `POST /v2/share-replicas`.
    CreateReplica,
    /// Extending a share.
    Extend,
}

/// Translates a store quota refusal into Manila's 413 text (`check_if_share_quotas_exceeded`
/// and `check_if_replica_quotas_exceeded`); other errors pass through.
pub fn quota_error(err: StoreError, purpose: Purpose) -> CoreError {
    let StoreError::QuotaExceeded {
        resource, limit, ..
    } = &err
    else {
        return err.into();
    };
    let with_replication = purpose == Purpose::CreateShare;
    // A user's or share type's row is refused with the resource's own text.
    let text = match base_resource(resource) {
        "gigabytes" => "ShareSizeExceedsAvailableQuota: Requested share exceeds allowed project/user or share type gigabytes quota.".to_owned(),
        "shares" => format!(
            "ShareLimitExceeded: Maximum number of shares allowed ({limit}) either per project/user or share type quota is exceeded."
        ),
        "share_replicas" if with_replication => "ShareReplicasLimitExceeded: Failed while creating a share with replication support. Maximum number of allowed share-replicas is exceeded.".to_owned(),
        "share_replicas" => "ShareReplicasLimitExceeded: Maximum number of allowed share-replicas is exceeded.".to_owned(),
        "replica_gigabytes" if with_replication => "ShareReplicaSizeExceedsAvailableQuota: Failed while creating a share with replication support. Requested share replica exceeds allowed project/user or share type gigabytes quota.".to_owned(),
        "replica_gigabytes" => "ShareReplicaSizeExceedsAvailableQuota: Requested share replica exceeds allowed project/user or share type gigabytes quota.".to_owned(),
        other => format!("QuotaError: Quota exceeded for {other}."),
    };
    CoreError::over_limit(text)
}

/// Whether adding `delta` to a usage of `in_use` + `reserved` goes over `limit` (negative:
/// unlimited). A total beyond `i64` is over whatever the limit says: the usage could not be
/// recorded (Manila's Python ints have no such bound; its scheduler then finds no pool big
/// enough, so no such share is ever made there either).
pub(crate) fn exceeds(in_use: i64, reserved: i64, delta: i64, limit: i64) -> bool {
    match in_use
        .checked_add(reserved)
        .and_then(|sum| sum.checked_add(delta))
    {
        None => true,
        Some(total) => limit >= 0 && total > limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exceeded(resource: &str) -> StoreError {
        StoreError::QuotaExceeded {
            resource: resource.to_owned(),
            requested: 1,
            in_use: 1,
            reserved: 0,
            limit: 1,
        }
    }

    #[test]
    fn scoped_keys_and_releases() {
        let t = uuid::Uuid::from_u128(9);
        assert_eq!(Scope::User("u1").key("shares"), "shares/user/u1");
        assert_eq!(
            Scope::ShareType(t).key("gigabytes"),
            format!("gigabytes/share_type/{t}")
        );
        assert_eq!(Scope::Project.key("shares"), "shares");
        assert!(is_scoped("shares/user/u1") && !is_scoped("shares"));
        assert_eq!(base_resource("gigabytes/share_type/x"), "gigabytes");
        let release = QuotaRequest {
            project_id: "p".to_owned(),
            deltas: BTreeMap::from([("shares".to_owned(), -1), ("gigabytes".to_owned(), -2)]),
            limits: BTreeMap::new(),
        };
        let scoped = with_scopes(release, "u1", Some(t));
        assert_eq!(scoped.deltas.len(), 6);
        assert_eq!(scoped.deltas["gigabytes/user/u1"], -2);
        assert_eq!(scoped.deltas[&format!("shares/share_type/{t}")], -1);
        let text = quota_error(exceeded("shares/user/u1"), Purpose::CreateShare).to_string();
        assert!(text.starts_with("ShareLimitExceeded"), "{text}");
    }

    #[test]
    fn manila_texts_per_resource_and_purpose() {
        let text = |r, p| quota_error(exceeded(r), p).to_string();
        assert!(
            text("shares", Purpose::CreateShare)
                .starts_with("ShareLimitExceeded: Maximum number of shares allowed (1)")
        );
        assert_eq!(
            text("share_replicas", Purpose::CreateShare),
            "ShareReplicasLimitExceeded: Failed while creating a share with replication support. Maximum number of allowed share-replicas is exceeded."
        );
        assert_eq!(
            text("share_replicas", Purpose::CreateReplica),
            "ShareReplicasLimitExceeded: Maximum number of allowed share-replicas is exceeded."
        );
        assert!(text("gigabytes", Purpose::Extend).starts_with("ShareSizeExceedsAvailableQuota"));
        assert_eq!(
            quota_error(exceeded("shares"), Purpose::CreateShare).kind(),
            crate::ErrorKind::OverLimit
        );
    }

    #[test]
    fn exceeds_is_over_on_overflow_whatever_the_limit() {
        assert!(!exceeds(1, 0, 1, -1));
        assert!(!exceeds(1, 1, 1, 3));
        assert!(exceeds(1, 1, 2, 3));
        assert!(exceeds(1, 0, i64::MAX, -1));
        assert!(exceeds(i64::MAX, 1, 1, i64::MAX));
        assert!(!exceeds(0, 0, i64::MAX, -1));
    }
}
