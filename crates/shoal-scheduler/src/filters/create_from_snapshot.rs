//! `CreateFromSnapshotFilter` (`manila/scheduler/filters/create_from_snapshot.py`): where a
//! share created from a snapshot may go when the scheduler places it.

use super::Filter;
use crate::{PoolState, ScheduleRequest};

/// Keeps, for a share created from a snapshot ([`ScheduleRequest::snapshot_host`] set),
/// the pools of the snapshot's back end and the pools in the replication domain of the
/// snapshot's pool; every pool passes for other requests.
#[derive(Debug, Clone, Default)]
pub struct CreateFromSnapshotFilter {
    /// `replication_domain` of the snapshot's pool, looked up once per request.
    snapshot_replication_domain: Option<String>,
}

impl CreateFromSnapshotFilter {
    /// Looks the snapshot's pool up among all pools of the snapshot (its domain is a fact of
    /// the pool, whether or not its service takes new work).
    pub fn for_request(req: &ScheduleRequest, pools: &[PoolState]) -> Self {
        let snapshot_replication_domain = req.snapshot_host.as_ref().and_then(|host| {
            pools
                .iter()
                .find(|p| &p.name == host)
                .and_then(PoolState::replication_domain)
        });
        Self {
            snapshot_replication_domain,
        }
    }
}

/// `host@backend` of a `host@backend#pool`.
fn backend_of(host: &str) -> &str {
    host.split_once('#').map_or(host, |(backend, _)| backend)
}

impl Filter for CreateFromSnapshotFilter {
    fn name(&self) -> &'static str {
        "CreateFromSnapshotFilter"
    }

    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool {
        let Some(snapshot_host) = &req.snapshot_host else {
            return true;
        };
        if backend_of(snapshot_host) == pool.host {
            return true;
        }
        self.snapshot_replication_domain
            .as_ref()
            .is_some_and(|domain| pool.replication_domain().as_ref() == Some(domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{pool, request};

    #[test]
    fn same_back_end_or_same_replication_domain() {
        let pools = vec![
            pool("h@b1#p1")
                .cap("replication_domain", "d1".into())
                .build(),
            pool("h@b1#p2").build(),
            pool("h@b2#p1")
                .cap("replication_domain", "d1".into())
                .build(),
            pool("h@b3#p1")
                .cap("replication_domain", "d2".into())
                .build(),
            pool("h@b4#p1").build(),
        ];
        let mut req = request(1);
        let plain = CreateFromSnapshotFilter::for_request(&req, &pools);
        assert!(
            pools.iter().all(|p| plain.passes(p, &req)),
            "no snapshot: all pass"
        );
        req.snapshot_host = Some("h@b1#p1".to_owned());
        let filter = CreateFromSnapshotFilter::for_request(&req, &pools);
        let passing: Vec<&str> = pools
            .iter()
            .filter(|p| filter.passes(p, &req))
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(passing, ["h@b1#p1", "h@b1#p2", "h@b2#p1"]);
        // A snapshot pool without a domain: its back end only.
        req.snapshot_host = Some("h@b4#p1".to_owned());
        let filter = CreateFromSnapshotFilter::for_request(&req, &pools);
        let passing: Vec<&str> = pools
            .iter()
            .filter(|p| filter.passes(p, &req))
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(passing, ["h@b4#p1"]);
    }
}
