//! Project quotas (Manila's `quota.py` for the resources shoal serves). Limits are the
//! configured defaults overridden per project; usage is kept by the store in `quota_usages`
//! and changes only inside the same transaction as the rows it accounts for (a share create
//! charges `shares`/`gigabytes` atomically with the insert), or through reservations that an
//! operation commits or rolls back (extend). So a crash can never leak usage.

use std::collections::BTreeMap;

use shoal_store::{QuotaRequest, StoreError};

use crate::{Core, CoreError, CoreResult};

/// Quota resources Manila shows before 2.53 (no replica quotas) — the full list is
/// [`crate::config::QuotaConfig::defaults`].
pub const REPLICA_RESOURCES: [&str; 2] = ["share_replicas", "replica_gigabytes"];

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
        limits.insert(resource, limit);
    }
    Ok(limits)
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
    let text = match resource.as_str() {
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
}
