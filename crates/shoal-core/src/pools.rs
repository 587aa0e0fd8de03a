//! Storage pools as the scheduler sees them (`GET /v2/scheduler-stats/pools`). Pool rows are
//! written by the share role's [`crate::reporter`]; a pool whose owning service is down or
//! disabled, or whose report is older than `service_down_time`, is not offered.

use regex::Regex;
use serde_json::Value;
use shoal_store::PoolRow;

use crate::{Core, CoreError, CoreResult};

/// Filters of the pools API. `host`, `backend` and `pool` are regular expressions anchored at
/// the start, as in Manila's `host_manager._passes_filters`; `capabilities` must match the
/// pool's reported capabilities (a share type's extra specs, from `share_type=`).
#[derive(Debug, Clone, Default)]
pub struct PoolQuery {
    /// Regex on the host part.
    pub host: Option<String>,
    /// Regex on the back-end part.
    pub backend: Option<String>,
    /// Regex on the pool part.
    pub pool: Option<String>,
    /// Extra specs that must equal the pool's capabilities (case-insensitive strings).
    pub capabilities: Vec<(String, String)>,
}

fn anchored(pattern: &str) -> CoreResult<Regex> {
    Regex::new(&format!("^(?:{pattern})"))
        .map_err(|_| CoreError::bad_request(format!("Invalid regular expression: {pattern}")))
}

fn capability_matches(capabilities: &Value, key: &str, wanted: &str) -> bool {
    // Scoped keys (`capabilities:foo`) name the same capability; other scopes are not
    // capabilities and never exclude a pool, as in Manila's capabilities filter.
    let key = match key.split_once(':') {
        Some(("capabilities", rest)) => rest,
        Some(_) => return true,
        None => key,
    };
    let Some(value) = capabilities.get(key) else {
        return false;
    };
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        other => other.to_string(),
    };
    text.eq_ignore_ascii_case(wanted.trim())
}

/// Extra specs of the share type named or identified by `name_or_id`, for a capabilities
/// filter; `None` when no such type exists.
pub async fn share_type_specs(
    core: &Core,
    name_or_id: &str,
) -> CoreResult<Option<Vec<(String, String)>>> {
    let found = match uuid::Uuid::parse_str(name_or_id) {
        Ok(id) => core.store.get_share_type(id).await,
        Err(_) => core.store.get_share_type_by_name(name_or_id).await,
    };
    match found {
        Ok(row) => Ok(Some(row.extra_specs.into_iter().collect())),
        Err(shoal_store::StoreError::NotFound(_)) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// Pools that pass the query, ordered by name.
pub async fn list_pools(core: &Core, query: &PoolQuery) -> CoreResult<Vec<PoolRow>> {
    let host = query.host.as_deref().map(anchored).transpose()?;
    let backend = query.backend.as_deref().map(anchored).transpose()?;
    let pool = query.pool.as_deref().map(anchored).transpose()?;
    let pools = core.store.list_pools().await?;
    Ok(pools
        .into_iter()
        .filter(|p| {
            host.as_ref()
                .is_none_or(|re| re.is_match(p.host.split('@').next().unwrap_or("")))
        })
        .filter(|p| backend.as_ref().is_none_or(|re| re.is_match(&p.backend)))
        .filter(|p| pool.as_ref().is_none_or(|re| re.is_match(&p.pool)))
        .filter(|p| {
            query
                .capabilities
                .iter()
                .all(|(k, v)| capability_matches(&p.capabilities, k, v))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capability_matching_follows_manila_scopes() {
        let caps = json!({"replication_type": "readable", "driver_handles_share_servers": false});
        assert!(capability_matches(&caps, "replication_type", "readable"));
        assert!(capability_matches(
            &caps,
            "capabilities:replication_type",
            "readable"
        ));
        assert!(capability_matches(
            &caps,
            "driver_handles_share_servers",
            "False"
        ));
        assert!(!capability_matches(&caps, "replication_type", "dr"));
        assert!(!capability_matches(&caps, "missing", "x"));
        assert!(capability_matches(
            &caps,
            "provisioning:max_share_size",
            "10"
        ));
    }

    #[test]
    fn regexes_are_anchored_and_invalid_ones_are_400() {
        let re = anchored("node").unwrap();
        assert!(re.is_match("node1"));
        assert!(!re.is_match("xnode"));
        assert!(anchored("(").is_err());
    }
}
