//! `AffinityFilter` and `AntiAffinityFilter` (`manila/scheduler/filters/affinity.py`): the
//! `same_host` and `different_host` scheduler hints of share creation (2.65+). The caller
//! resolves the hint's shares to the pools their instances are on
//! ([`crate::AffinityHint`]); the filters only compare pool names, as Manila compares
//! `host_state.host` with the instances' `host`.

use super::Filter;
use crate::{AffinityHint, PoolState, ScheduleRequest};

/// Keeps the pools that hold an instance of every share named by `same_host`. Without the
/// hint every pool passes; with an unresolvable one none does.
#[derive(Debug, Clone, Copy, Default)]
pub struct AffinityFilter;

impl Filter for AffinityFilter {
    fn name(&self) -> &'static str {
        "AffinityFilter"
    }

    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool {
        match &req.same_host {
            None => true,
            Some(AffinityHint::Hosts(allowed)) => allowed.contains(&pool.name),
            Some(AffinityHint::Unresolved) => false,
        }
    }
}

/// Drops the pools that hold an instance of any share named by `different_host`. Without
/// the hint every pool passes; with an unresolvable one none does.
#[derive(Debug, Clone, Copy, Default)]
pub struct AntiAffinityFilter;

impl Filter for AntiAffinityFilter {
    fn name(&self) -> &'static str {
        "AntiAffinityFilter"
    }

    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool {
        match &req.different_host {
            None => true,
            Some(AffinityHint::Hosts(forbidden)) => !forbidden.contains(&pool.name),
            Some(AffinityHint::Unresolved) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{pool, request};

    fn hosts(names: &[&str]) -> Option<AffinityHint> {
        Some(AffinityHint::Hosts(
            names.iter().map(|n| (*n).to_owned()).collect(),
        ))
    }

    #[test]
    fn affinity_keeps_only_the_named_pools() {
        let p1 = pool("h@b#p1").build();
        let p2 = pool("h@b#p2").build();
        let mut req = request(1);
        assert!(AffinityFilter.passes(&p1, &req), "no hint");
        req.same_host = hosts(&["h@b#p1"]);
        assert!(AffinityFilter.passes(&p1, &req));
        assert!(!AffinityFilter.passes(&p2, &req));
        // The back end alone is not the pool (Manila compares full host strings).
        req.same_host = hosts(&["h@b"]);
        assert!(!AffinityFilter.passes(&p1, &req));
        req.same_host = hosts(&[]);
        assert!(
            !AffinityFilter.passes(&p1, &req),
            "shares on no common pool"
        );
        req.same_host = Some(AffinityHint::Unresolved);
        assert!(!AffinityFilter.passes(&p1, &req));
    }

    #[test]
    fn anti_affinity_drops_the_named_pools() {
        let p1 = pool("h@b#p1").build();
        let p2 = pool("h@b#p2").build();
        let mut req = request(1);
        assert!(AntiAffinityFilter.passes(&p1, &req), "no hint");
        req.different_host = hosts(&["h@b#p1"]);
        assert!(!AntiAffinityFilter.passes(&p1, &req));
        assert!(AntiAffinityFilter.passes(&p2, &req));
        req.different_host = hosts(&[]);
        assert!(AntiAffinityFilter.passes(&p1, &req));
        req.different_host = Some(AffinityHint::Unresolved);
        assert!(!AntiAffinityFilter.passes(&p2, &req));
    }

    #[test]
    fn contradictory_hints_leave_no_pool() {
        let pools = [pool("h@b#p1").build(), pool("h@b#p2").build()];
        let mut req = request(1);
        req.same_host = hosts(&["h@b#p1"]);
        req.different_host = hosts(&["h@b#p1"]);
        let mut snapshot = pools.to_vec();
        let err = crate::schedule(&req, &mut snapshot).unwrap_err();
        assert_eq!(err.last_filter, "AntiAffinityFilter");
        req.different_host = hosts(&["h@b#p2"]);
        assert_eq!(crate::schedule(&req, &mut snapshot).unwrap(), "h@b#p1");
    }
}
