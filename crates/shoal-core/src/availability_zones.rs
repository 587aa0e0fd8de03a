//! Availability zones. Zones are not configured on their own: a zone exists once a service
//! reports from it, and `GET /v2/availability-zones` lists the zones that have at least one
//! enabled service (Manila's `availability_zone_get_all`).

use shoal_store::AvailabilityZoneRow;

use crate::{Core, CoreResult};

/// Zones with an enabled service, ordered by name.
pub async fn list_availability_zones(core: &Core) -> CoreResult<Vec<AvailabilityZoneRow>> {
    Ok(core.store.list_availability_zones_in_service().await?)
}
