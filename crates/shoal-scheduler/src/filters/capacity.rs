//! `CapacityFilter` (`manila/scheduler/filters/capacity.py`).

use super::Filter;
use crate::pool::Capacity;
use crate::{PoolState, ScheduleRequest};

/// Keeps pools with room for the share, exactly as Manila computes it:
///
/// * `free_capacity_gb` missing or not a number: fail (the stats report is broken);
///   `"unknown"` (or `"infinite"`): pass, the back end will say if it is wrong;
/// * `reserved = reserved_percentage / 100`; with `total_capacity_gb` `"unknown"` the
///   pool passes only when nothing is reserved and `size <= free`;
/// * `total <= 0`: fail;
/// * `free = floor(free_capacity_gb - total * reserved)`;
/// * thin provisioning (the pool reports `thin_provisioning` true and the type does not
///   opt out, see [`ScheduleRequest::use_thin_logic`]): with a ratio
///   `max_over_subscription_ratio >= 1`, fail when
///   `(provisioned_capacity_gb + size) / total > ratio`, else pass when
///   `free * ratio >= size`; a ratio below 1 fails;
/// * thick: pass when `free >= size`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CapacityFilter;

impl Filter for CapacityFilter {
    fn name(&self) -> &'static str {
        "CapacityFilter"
    }

    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool {
        #[expect(
            clippy::cast_precision_loss,
            reason = "share sizes are far below 2^52 GiB"
        )]
        let size = req.size_gb as f64;
        let free = match pool.free_capacity() {
            Capacity::Gb(free) => free,
            Capacity::Unknown | Capacity::Infinite => return true,
            Capacity::Missing | Capacity::Invalid => return false,
        };
        let Some(reserved_percentage) = pool.reserved_percentage() else {
            return false;
        };
        let reserved = reserved_percentage / 100.0;
        let total = match pool.total_capacity() {
            Capacity::Gb(total) => total,
            // Without a total the reserved share cannot be computed.
            Capacity::Unknown | Capacity::Infinite => return reserved == 0.0 && size <= free,
            // Manila requires the key; a pool without it has no usable total.
            Capacity::Missing | Capacity::Invalid => return false,
        };
        if total <= 0.0 {
            return false;
        }
        let free = (free - total * reserved).floor();

        if req.use_thin_logic() && pool.thin_provisioning() {
            let ratio = pool.max_over_subscription_ratio();
            if ratio < 1.0 {
                return false;
            }
            let provisioned = pool.provisioned_capacity_gb().unwrap_or(0.0);
            if (provisioned + size) / total > ratio {
                return false;
            }
            return free * ratio >= size;
        }
        free >= size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{pool, request};
    use serde_json::json;

    #[test]
    fn thick_capacity_table() {
        // (total, free, reserved %, size, passes)
        let rows = [
            (json!(100), json!(10), json!(0), 10, true),
            (json!(100), json!(10), json!(0), 11, false),
            (json!(100), json!(10.9), json!(0), 11, false), // floor(10.9) = 10
            (json!(100), json!(20), json!(10), 10, true),   // 20 - 10 reserved
            (json!(100), json!(20), json!(10), 11, false),
            (json!(100), json!(20), json!(15), 5, true), // floor(20 - 15) = 5
            (json!(100), json!(20), json!(15.5), 5, false), // floor(4.5) = 4
            (json!(100), json!(5), json!(10), 0, false), // free below the reserve
            (json!(0), json!(10), json!(0), 1, false),   // total <= 0
            (json!(-1), json!(10), json!(0), 1, false),
            (json!("unknown"), json!(10), json!(0), 10, true),
            (json!("unknown"), json!(10), json!(0), 11, false),
            (json!("unknown"), json!(10), json!(5), 1, false),
            (json!(100), json!("unknown"), json!(50), 1000, true),
            (json!(100), json!("infinite"), json!(50), 1000, true),
            (json!("infinite"), json!(10), json!(0), 10, true),
            (json!(100), json!(null), json!(0), 1, false),
            (json!(100), json!("lots"), json!(0), 1, false),
            (json!(null), json!(10), json!(0), 1, false),
            (json!(100), json!(10), json!("x"), 1, false),
            (json!("100"), json!("10"), json!("0"), 10, true), // numeric strings
        ];
        for (total, free, reserved, size, expected) in rows {
            let p = pool("h@b#p")
                .cap("total_capacity_gb", total.clone())
                .cap("free_capacity_gb", free.clone())
                .cap("reserved_percentage", reserved.clone())
                .build();
            assert_eq!(
                CapacityFilter.passes(&p, &request(size)),
                expected,
                "total={total} free={free} reserved={reserved} size={size}"
            );
        }
    }

    #[test]
    fn thin_capacity_table() {
        // (free, reserved %, ratio, provisioned, size, type thin spec, passes); total = 100
        let rows = [
            // 100 * 2.0 = 200 may be provisioned: 150 + 50 fits exactly
            (json!(30), json!(0), json!(2.0), json!(150), 50, None, true),
            (json!(30), json!(0), json!(2.0), json!(150), 51, None, false),
            // within the ratio, but the virtual free space (10 * 2) is too small
            (json!(10), json!(0), json!(2.0), json!(150), 50, None, false),
            // and the virtual free space must hold it: floor(10 - 0) * 2 = 20
            (json!(10), json!(0), json!(2.0), json!(0), 21, None, false),
            (json!(10), json!(0), json!(2.0), json!(0), 20, None, true),
            // reserved space is taken off before multiplying: (30 - 10) * 2 = 40
            (json!(30), json!(10), json!(2.0), json!(0), 40, None, true),
            (json!(30), json!(10), json!(2.0), json!(0), 41, None, false),
            // ratio 1 still limits provisioning
            (json!(50), json!(0), json!(1), json!(90), 11, None, false),
            (json!(50), json!(0), json!(1), json!(90), 10, None, true),
            // ratio < 1 is invalid: the pool fails for thin shares...
            (json!(50), json!(0), json!(0.5), json!(0), 1, None, false),
            // ... but not for a type that asks for thick: then plain free >= size
            (
                json!(50),
                json!(0),
                json!(0.5),
                json!(0),
                1,
                Some("False"),
                true,
            ),
            // default ratio (20) when the pool does not report one
            (
                json!(10),
                json!(0),
                json!(null),
                json!(1990),
                10,
                None,
                true,
            ),
            (
                json!(10),
                json!(0),
                json!(null),
                json!(1991),
                10,
                None,
                false,
            ),
            // the type may opt out of thin logic: thick rule, free 10
            (
                json!(10),
                json!(0),
                json!(2.0),
                json!(0),
                11,
                Some("<is> False"),
                false,
            ),
            (
                json!(10),
                json!(0),
                json!(2.0),
                json!(0),
                11,
                Some("<is> True"),
                true,
            ),
            (
                json!(10),
                json!(0),
                json!(2.0),
                json!(0),
                11,
                Some("True"),
                true,
            ),
        ];
        for (free, reserved, ratio, provisioned, size, thin_spec, expected) in rows {
            let mut builder = pool("h@b#p")
                .thin()
                .cap("total_capacity_gb", json!(100))
                .cap("free_capacity_gb", free.clone())
                .cap("reserved_percentage", reserved.clone())
                .cap("provisioned_capacity_gb", provisioned.clone());
            if !ratio.is_null() {
                builder = builder.cap("max_over_subscription_ratio", ratio.clone());
            }
            let p = builder.build();
            let mut req = request(size);
            if let Some(spec) = thin_spec {
                req.extra_specs
                    .insert("thin_provisioning".to_owned(), spec.to_owned());
            }
            assert_eq!(
                CapacityFilter.passes(&p, &req),
                expected,
                "free={free} reserved={reserved} ratio={ratio} prov={provisioned} size={size} spec={thin_spec:?}"
            );
        }
    }

    #[test]
    fn thin_pool_without_provisioned_uses_allocated() {
        let p = pool("h@b#p")
            .thin()
            .capacity(100, 100)
            .cap("max_over_subscription_ratio", json!(1.0))
            .cap("allocated_capacity_gb", json!(95))
            .build();
        assert!(CapacityFilter.passes(&p, &request(5)));
        assert!(!CapacityFilter.passes(&p, &request(6)));
    }
}
