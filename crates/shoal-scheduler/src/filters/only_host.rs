//! `OnlyHostFilter` (`manila/scheduler/filters/host.py`): the admin `only_host` hint.

use super::Filter;
use crate::{PoolState, ScheduleRequest};

/// Keeps only the pool named by the `only_host` hint. Without the hint every pool passes.
///
/// Manila compares the hint with the full pool name only. Here a hint without `#`
/// (`host@backend`) also selects every pool of that back end, so an admin need not know
/// pool names.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnlyHostFilter;

impl Filter for OnlyHostFilter {
    fn name(&self) -> &'static str {
        "OnlyHostFilter"
    }

    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool {
        let Some(only_host) = &req.only_host else {
            return true;
        };
        if only_host.contains('#') {
            pool.name == *only_host
        } else {
            pool.host == *only_host || pool.name == *only_host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{pool, request};

    #[test]
    fn only_host_table() {
        let p = pool("h1@b1#p1").build();
        for (hint, expected) in [
            (None, true),
            (Some("h1@b1#p1"), true),
            (Some("h1@b1#p2"), false),
            (Some("h1@b1"), true),
            (Some("h1@b2"), false),
            (Some("h1"), false),
            (Some("h2@b1#p1"), false),
        ] {
            let mut req = request(1);
            req.only_host = hint.map(str::to_owned);
            assert_eq!(OnlyHostFilter.passes(&p, &req), expected, "{hint:?}");
        }
    }
}
