//! `DriverFilter` (`manila/scheduler/filters/driver.py`).

use super::Filter;
use crate::evaluator::{evaluate, reported_function, scheduler_variables};
use crate::{PoolState, ScheduleRequest};

/// Keeps pools whose back end's `filter_function` (an operator-configured expression the
/// driver reports among its capabilities, see [`crate::evaluator`]) is true for this
/// share. A pool without a filter function passes; one whose function cannot be
/// evaluated fails, as in Manila.
#[derive(Debug, Clone, Copy, Default)]
pub struct DriverFilter;

impl Filter for DriverFilter {
    fn name(&self) -> &'static str {
        "DriverFilter"
    }

    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool {
        let Some(function) = reported_function(pool, "filter_function") else {
            return true;
        };
        evaluate(&function, &scheduler_variables(pool, req)).is_ok_and(|v| v.truthy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{pool, request};
    use serde_json::json;

    #[test]
    fn driver_filter_table() {
        for (function, size, expected) in [
            (json!(null), 1, true),
            (json!("share.size < 10"), 9, true),
            (json!("share.size < 10"), 10, false),
            (json!("stats.free_capacity_gb - share.size >= 50"), 50, true),
            (
                json!("stats.free_capacity_gb - share.size >= 50"),
                51,
                false,
            ),
            (json!("capabilities.share_backend_name == 'b'"), 1, true),
            (json!("extra.storage_protocol == '<in> NFS'"), 1, true),
            (json!("stats.host != 'h@b#p'"), 1, false),
            (json!("share.size"), 1, true), // truthy result
            (json!("0"), 1, false),
            (json!("share.nope > 1"), 1, false), // error fails the pool
            (json!("1 +"), 1, false),
            (json!(1), 1, true), // str() of a non-string
        ] {
            let mut builder = pool("h@b#p").capacity(100, 100);
            if !function.is_null() {
                builder = builder.cap("filter_function", function.clone());
            }
            let p = builder.build();
            assert_eq!(
                DriverFilter.passes(&p, &request(size)),
                expected,
                "{function} size={size}"
            );
        }
    }
}
