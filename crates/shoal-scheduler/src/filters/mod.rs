//! Host filters: each decides, for one pool and one request, whether the pool can take the
//! share. They run in Manila's default order ([`default_filters`]); a pool must pass every
//! one, and the first filter that leaves no pool standing is reported in
//! [`crate::NoValidHost::last_filter`].
//!
//! Filters are pure and hold at most per-request context computed once up front (the
//! active replica's replication domain), so running them twice on the same snapshot gives
//! the same answer.

mod affinity;
mod availability_zone;
mod capabilities;
mod capacity;
mod create_from_snapshot;
mod driver;
mod only_host;
mod replication_peer;
mod share_replication;

pub use affinity::{AffinityFilter, AntiAffinityFilter};
pub use availability_zone::AvailabilityZoneFilter;
pub use capabilities::{CapabilitiesFilter, capabilities_satisfied};
pub use capacity::CapacityFilter;
pub use create_from_snapshot::CreateFromSnapshotFilter;
pub use driver::DriverFilter;
pub use only_host::OnlyHostFilter;
pub use replication_peer::{
    PEER_TRANSPORT_CAPABILITY, REPLICATION_ADDRESS_CAPABILITY, ReplicationPeerFilter,
};
pub use share_replication::ShareReplicationFilter;

use crate::{PoolState, ScheduleRequest};

/// A host filter (Manila's `BaseHostFilter.host_passes`).
pub trait Filter {
    /// Manila's class name (`CapacityFilter`, ...): what user messages and
    /// [`crate::NoValidHost::last_filter`] show.
    fn name(&self) -> &'static str;

    /// Whether `pool` can take the share described by `req`.
    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool;
}

/// Manila's `scheduler_default_filters`, in order, for one request: `OnlyHostFilter`,
/// `AvailabilityZoneFilter`, `CapacityFilter`, `CapabilitiesFilter`, `DriverFilter`,
/// `ShareReplicationFilter`, then shoal's `ReplicationPeerFilter`, then
/// `CreateFromSnapshotFilter`, `AffinityFilter`, `AntiAffinityFilter`.
///
/// `pools` is the whole snapshot: the share replication filter looks the active replica's
/// pool up in it (among pools whose service is usable, as Manila does) to learn the
/// replication domain, the create-from-snapshot filter the snapshot's.
pub fn default_filters(req: &ScheduleRequest, pools: &[PoolState]) -> Vec<Box<dyn Filter>> {
    vec![
        Box::new(OnlyHostFilter),
        Box::new(AvailabilityZoneFilter),
        Box::new(CapacityFilter),
        Box::new(CapabilitiesFilter),
        Box::new(DriverFilter),
        Box::new(ShareReplicationFilter::for_request(req, pools)),
        Box::new(ReplicationPeerFilter::for_request(req, pools)),
        Box::new(CreateFromSnapshotFilter::for_request(req, pools)),
        Box::new(AffinityFilter),
        Box::new(AntiAffinityFilter),
    ]
}
