//! `AvailabilityZoneFilter` (`manila/scheduler/filters/availability_zone.py`).

use super::Filter;
use crate::{PoolState, ScheduleRequest};

/// Keeps pools in the requested availability zone and, when the share type lists
/// `availability_zones`, in one of those.
///
/// Manila compares zone ids; the caller resolves names, so names are compared here.
/// Manila's multiple-subnet check (share networks with several subnets) does not apply:
/// this crate schedules driver-managed shares only.
#[derive(Debug, Clone, Copy, Default)]
pub struct AvailabilityZoneFilter;

impl Filter for AvailabilityZoneFilter {
    fn name(&self) -> &'static str {
        "AvailabilityZoneFilter"
    }

    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool {
        if let Some(az) = &req.availability_zone
            && pool.availability_zone != *az
        {
            return false;
        }
        let type_azs = req.type_availability_zones();
        type_azs.is_empty() || type_azs.contains(&pool.availability_zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{pool, request};

    #[test]
    fn availability_zone_table() {
        let p = pool("h@b#p").az("az1").build();
        let azs = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        for (requested, type_azs, spec, expected) in [
            (None, None, None, true),
            (Some("az1"), None, None, true),
            (Some("az2"), None, None, false),
            (Some("AZ1"), None, None, false),
            (None, azs(&["az1", "az2"]), None, true),
            (None, azs(&["az2"]), None, false),
            (None, azs(&[]), None, true),
            (Some("az1"), azs(&["az2"]), None, false),
            (Some("az2"), azs(&["az1", "az2"]), None, false),
            (None, None, Some("az2,az3"), false),
            (None, None, Some("az3, az1"), true),
            // an explicit list wins over the extra spec
            (None, azs(&["az1"]), Some("az2"), true),
        ] {
            let mut req = request(1);
            req.availability_zone = requested.map(str::to_owned);
            req.availability_zones = type_azs.clone();
            if let Some(spec) = spec {
                req.extra_specs
                    .insert("availability_zones".to_owned(), spec.to_owned());
            }
            assert_eq!(
                AvailabilityZoneFilter.passes(&p, &req),
                expected,
                "{requested:?} {type_azs:?} {spec:?}"
            );
        }
    }
}
