//! Storage pools as the scheduler sees them (`GET /v2/scheduler-stats/pools`). Pool rows are
//! written by the share role's [`crate::reporter`]; a pool whose owning service is down or
//! disabled, or whose report is older than `service_down_time`, is not offered.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Map;
use shoal_scheduler::filters::capabilities_satisfied;
use shoal_store::PoolRow;

use crate::{Core, CoreError, CoreResult};

/// Filters of the pools API (Manila's `host_manager.get_pools` with `_passes_filters`):
/// `name`, `host`, `backend` and `pool` are regular expressions matched at the start of the
/// pool's field (`re.match`); `capabilities` are a share type's extra specs, matched as the
/// capabilities filter does (`capabilities_satisfied`, with the extra-spec operators).
/// A query key that names no pool field (`unknown_keys`) fails every pool, as in Manila.
#[derive(Debug, Clone, Default)]
pub struct PoolQuery {
    /// Regex on the full name `host@backend#pool`.
    pub name: Option<String>,
    /// Regex on the host part.
    pub host: Option<String>,
    /// Regex on the back-end part.
    pub backend: Option<String>,
    /// Regex on the pool part.
    pub pool: Option<String>,
    /// Extra specs the pool's capabilities must satisfy (from `share_type=`, 2.23+).
    pub capabilities: BTreeMap<String, String>,
    /// The query had a key Manila would look up in the pool and not find.
    pub unknown_keys: bool,
}

/// The pool's fields as Manila's `get_pools` names them: `host` is the host alone.
pub fn host_name(pool: &PoolRow) -> &str {
    pool.host.split('@').next().unwrap_or_default()
}

fn anchored(pattern: &str) -> CoreResult<Regex> {
    Regex::new(&format!("^(?:{pattern})"))
        .map_err(|_| CoreError::bad_request(format!("Invalid regular expression: {pattern}")))
}

/// Extra specs of the share type named or identified by `name_or_id`, for a capabilities
/// filter; `None` when no such type exists.
pub async fn share_type_specs(
    core: &Core,
    name_or_id: &str,
) -> CoreResult<Option<BTreeMap<String, String>>> {
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

/// Whether `pool` passes `query` (regexes compiled by the caller).
fn passes(pool: &PoolRow, regexes: &[(Option<Regex>, &str)], query: &PoolQuery) -> bool {
    if query.unknown_keys {
        return false;
    }
    if !regexes
        .iter()
        .all(|(re, field)| re.as_ref().is_none_or(|re| re.is_match(field)))
    {
        return false;
    }
    if query.capabilities.is_empty() {
        return true;
    }
    let empty = Map::new();
    let capabilities = pool.capabilities.as_object().unwrap_or(&empty);
    capabilities_satisfied(capabilities, &query.capabilities)
}

/// Pools that pass the query, ordered by name. An invalid regex is a 400.
pub async fn list_pools(core: &Core, query: &PoolQuery) -> CoreResult<Vec<PoolRow>> {
    let compile = |p: &Option<String>| p.as_deref().map(anchored).transpose();
    let (name, host, backend, pool) = (
        compile(&query.name)?,
        compile(&query.host)?,
        compile(&query.backend)?,
        compile(&query.pool)?,
    );
    let pools = core.store.list_pools().await?;
    Ok(pools
        .into_iter()
        .filter(|p| {
            let regexes = [
                (name.clone(), p.name.as_str()),
                (host.clone(), host_name(p)),
                (backend.clone(), p.backend.as_str()),
                (pool.clone(), p.pool.as_str()),
            ];
            passes(p, &regexes, query)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(name: &str, caps: serde_json::Value) -> PoolRow {
        let (service, pool) = name.split_once('#').unwrap();
        PoolRow {
            name: name.to_owned(),
            host: service.to_owned(),
            backend: service.split_once('@').unwrap().1.to_owned(),
            pool: pool.to_owned(),
            availability_zone: "az1".to_owned(),
            capabilities: caps,
            updated_at: chrono::Utc::now(),
        }
    }

    fn check(p: &PoolRow, query: &PoolQuery) -> bool {
        let compile = |f: &Option<String>| f.as_deref().map(|r| anchored(r).unwrap());
        let regexes = [
            (compile(&query.name), p.name.as_str()),
            (compile(&query.host), host_name(p)),
            (compile(&query.backend), p.backend.as_str()),
            (compile(&query.pool), p.pool.as_str()),
        ];
        passes(p, &regexes, query)
    }

    #[test]
    fn regex_filters_match_at_the_start_of_each_field() {
        let p = pool("node1@lvm#pool_a", json!({}));
        assert_eq!(host_name(&p), "node1");
        let q = |f: fn(&mut PoolQuery)| {
            let mut q = PoolQuery::default();
            f(&mut q);
            q
        };
        assert!(check(&p, &q(|q| q.host = Some("node".into()))));
        assert!(check(&p, &q(|q| q.host = Some("node[0-9]$".into()))));
        assert!(!check(&p, &q(|q| q.host = Some("ode".into()))));
        assert!(
            !check(&p, &q(|q| q.host = Some("node1@".into()))),
            "host alone"
        );
        assert!(check(&p, &q(|q| q.backend = Some("lv".into()))));
        assert!(!check(&p, &q(|q| q.backend = Some("node1".into()))));
        assert!(check(&p, &q(|q| q.pool = Some("pool_.".into()))));
        assert!(check(&p, &q(|q| q.name = Some("node1@lvm#".into()))));
        assert!(!check(&p, &q(|q| q.name = Some("lvm".into()))));
        assert!(!check(&p, &q(|q| q.unknown_keys = true)));
    }

    #[test]
    fn capabilities_use_the_extra_spec_operators() {
        let p = pool(
            "n@b#p",
            json!({"replication_type": "readable", "driver_handles_share_servers": false,
                   "total_capacity_gb": 100}),
        );
        let with = |specs: &[(&str, &str)]| PoolQuery {
            capabilities: specs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        assert!(check(&p, &with(&[("replication_type", "readable")])));
        assert!(check(
            &p,
            &with(&[("capabilities:replication_type", "readable")])
        ));
        assert!(check(
            &p,
            &with(&[("driver_handles_share_servers", "<is> False")])
        ));
        assert!(check(&p, &with(&[("total_capacity_gb", ">= 50")])));
        assert!(!check(&p, &with(&[("total_capacity_gb", ">= 500")])));
        assert!(!check(&p, &with(&[("replication_type", "dr")])));
        assert!(!check(&p, &with(&[("missing", "x")])));
        assert!(check(&p, &with(&[("provisioning:max_share_size", "10")])));
    }

    #[test]
    fn invalid_regexes_are_400() {
        assert!(anchored("(").is_err());
    }
}
