//! `ShareReplicationFilter` (`manila/scheduler/filters/share_replication.py`), plus the
//! rule that a share never gets two instances on one pool.

use serde_json::Value;

use super::Filter;
use crate::{PoolState, ScheduleRequest};

/// Keeps pools that can replicate with the share's active replica.
///
/// * Every request: a pool in [`ScheduleRequest::excluded_hosts`] (it already holds an
///   instance of the share, in any state) fails.
/// * A new share whose type has a `replication_type` spec needs a pool reporting a
///   non-empty `replication_domain`, so replicas can be added later.
/// * A secondary replica ([`ScheduleRequest::replication`] set) needs a pool that reports
///   the same non-empty `replication_domain` as the active replica's pool, is not that
///   pool, and reports the share's `replication_type`. When the active replica's pool is
///   not among the usable pools (unknown, or its service down or disabled) its domain is
///   unknown and no pool passes, as in Manila.
///
/// Deliberate difference: Manila takes `replication_type` from the share *type* as it is
/// now and passes every pool when an admin removed it after the share was created. Here
/// the share's own `replication_type` ([`crate::ReplicaRequest::replication_type`]) is
/// always enforced.
#[derive(Debug, Clone, Default)]
pub struct ShareReplicationFilter {
    /// `replication_domain` of the active replica's pool, looked up once per request.
    active_replication_domain: Option<String>,
}

impl ShareReplicationFilter {
    /// A filter for a request whose active replica (if any) is in `active_replication_domain`.
    pub fn new(active_replication_domain: Option<String>) -> Self {
        Self {
            active_replication_domain,
        }
    }

    /// Looks the active replica's pool up among the usable pools of the snapshot (Manila
    /// uses the same host list it schedules from, without disabled services).
    pub fn for_request(req: &ScheduleRequest, pools: &[PoolState]) -> Self {
        let domain = req.replication.as_ref().and_then(|replication| {
            pools
                .iter()
                .filter(|p| p.service_usable(false))
                .find(|p| p.name == replication.active_replica_host)
                .and_then(PoolState::replication_domain)
        });
        Self::new(domain)
    }
}

impl Filter for ShareReplicationFilter {
    fn name(&self) -> &'static str {
        "ShareReplicationFilter"
    }

    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool {
        if req.excluded_hosts.contains(&pool.name) {
            return false;
        }
        let pool_domain = pool.replication_domain();
        let Some(replication) = &req.replication else {
            return !req.extra_specs.contains_key("replication_type") || pool_domain.is_some();
        };
        let (Some(pool_domain), Some(active_domain)) =
            (pool_domain, &self.active_replication_domain)
        else {
            return false;
        };
        pool_domain == *active_domain
            && pool.name != replication.active_replica_host
            && reports_replication_type(pool, &replication.replication_type)
    }
}

/// Whether the pool's `replication_type` capability (a string, or a list of them) is
/// `wanted`, compared case-insensitively as Manila's capability matching does.
fn reports_replication_type(pool: &PoolState, wanted: &str) -> bool {
    let is_wanted = |v: &Value| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(wanted));
    match pool.capability("replication_type") {
        Some(Value::Array(types)) => types.iter().any(is_wanted),
        Some(single) => is_wanted(single),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplicaRequest;
    use crate::test_utils::{pool, request};
    use serde_json::json;

    fn replica_request(active: &str, replication_type: &str) -> ScheduleRequest {
        let mut req = request(1);
        req.extra_specs
            .insert("replication_type".to_owned(), replication_type.to_owned());
        req.replication = Some(ReplicaRequest {
            active_replica_host: active.to_owned(),
            replication_type: replication_type.to_owned(),
        });
        req
    }

    #[test]
    fn replica_table() {
        let active = pool("h@dummy1#p1").replication("readable", "D1").build();
        let pools = vec![
            active.clone(),
            pool("h@dummy1#p2").replication("readable", "D1").build(),
            pool("h@dummy2#p1").replication("READABLE", "D1").build(),
            pool("h@dummy3#p1").replication("readable", "D2").build(),
            pool("h@dummy4#p1").replication("dr", "D1").build(),
            pool("h@dummy5#p1")
                .cap("replication_domain", json!("D1"))
                .build(),
            pool("h@dummy6#p1")
                .cap("replication_type", json!("readable"))
                .build(),
            pool("h@dummy7#p1")
                .cap("replication_type", json!(["dr", "readable"]))
                .cap("replication_domain", json!("D1"))
                .build(),
            pool("h@dummy8#p1").replication("readable", "").build(),
        ];
        let mut req = replica_request("h@dummy1#p1", "readable");
        req.excluded_hosts = vec!["h@dummy1#p1".to_owned(), "h@dummy2#p1".to_owned()];
        let filter = ShareReplicationFilter::for_request(&req, &pools);
        let passing: Vec<&str> = pools
            .iter()
            .filter(|p| filter.passes(p, &req))
            .map(|p| p.name.as_str())
            .collect();
        // p1 of dummy1 is the active, dummy2 is excluded (e.g. an errored replica),
        // dummy3 is another domain, dummy4 the wrong type, dummy5 reports no type,
        // dummy6 no domain, dummy8 an empty domain.
        assert_eq!(passing, ["h@dummy1#p2", "h@dummy7#p1"]);

        // the same pools without exclusions: the case-insensitive type match shows
        req.excluded_hosts.clear();
        let passing: Vec<&str> = pools
            .iter()
            .filter(|p| filter.passes(p, &req))
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(passing, ["h@dummy1#p2", "h@dummy2#p1", "h@dummy7#p1"]);
    }

    #[test]
    fn mismatched_replication_type_fails() {
        let pools = vec![
            pool("a@b#p").replication("dr", "D").build(),
            pool("c@d#p").replication("dr", "D").build(),
        ];
        let req = replica_request("a@b#p", "readable");
        let filter = ShareReplicationFilter::for_request(&req, &pools);
        assert!(!filter.passes(&pools[1], &req));
    }

    #[test]
    fn unknown_or_unusable_active_pool_fails_every_pool() {
        let mut pools = vec![
            pool("a@b#p").replication("readable", "D").build(),
            pool("c@d#p").replication("readable", "D").build(),
        ];
        let req = replica_request("x@y#z", "readable");
        let filter = ShareReplicationFilter::for_request(&req, &pools);
        assert!(!filter.passes(&pools[1], &req));

        let req = replica_request("a@b#p", "readable");
        pools[0].service_up = false;
        let filter = ShareReplicationFilter::for_request(&req, &pools);
        assert!(!filter.passes(&pools[1], &req));
        pools[0].service_up = true;
        pools[0].service_disabled = true;
        let filter = ShareReplicationFilter::for_request(&req, &pools);
        assert!(!filter.passes(&pools[1], &req));
        pools[0].service_disabled = false;
        let filter = ShareReplicationFilter::for_request(&req, &pools);
        assert!(filter.passes(&pools[1], &req));
    }

    #[test]
    fn new_shares() {
        let with_domain = pool("a@b#p").replication("readable", "D").build();
        let without_domain = pool("c@d#p").build();
        let filter = ShareReplicationFilter::new(None);

        let plain = request(1);
        assert!(filter.passes(&with_domain, &plain));
        assert!(filter.passes(&without_domain, &plain));

        let mut replicated = request(1);
        replicated
            .extra_specs
            .insert("replication_type".to_owned(), "readable".to_owned());
        assert!(filter.passes(&with_domain, &replicated));
        assert!(!filter.passes(&without_domain, &replicated));

        let mut excluded = plain.clone();
        excluded.excluded_hosts = vec!["a@b#p".to_owned()];
        assert!(!filter.passes(&with_domain, &excluded));
        assert!(filter.passes(&without_domain, &excluded));
    }
}
