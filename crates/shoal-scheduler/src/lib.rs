//! OpenStack Manila's filter scheduler as pure functions: given one share instance to
//! place and a snapshot of the candidate pools, pick the pool (`host@backend#pool`).
//!
//! The algorithm is Manila's `FilterScheduler._schedule_share` (see `README.md` next to
//! this crate's manifest for the walk-through):
//!
//! 1. drop pools whose share service is down or disabled (Manila's host manager does this
//!    before filtering; an admin's `only_host` hint may still reach a disabled service);
//! 2. run the filters of [`default_filters`] in order, each removing pools; the filter that
//!    removes the last candidate names the failure ([`NoValidHost::last_filter`]);
//! 3. weigh the survivors ([`default_weighers`]), best first, ties broken by pool name;
//! 4. "consume" the request on the winner ([`PoolState::consume`]), so a batch placed by
//!    calling [`schedule`] repeatedly on the same slice sees earlier placements.
//!
//! Nothing is persisted and nothing is read from anywhere but the arguments: no IO, no
//! clock, no randomness. The same snapshot and request always give the same answer. The
//! caller (the scheduler service) loads the snapshot from the `pools` and `services`
//! tables and writes the chosen host back with a compare-and-set.
//!
//! ```
//! use shoal_scheduler::{PoolState, ScheduleRequest, schedule};
//!
//! let pool = |name: &str, free: u64| PoolState {
//!     name: name.to_owned(),
//!     host: name.split('#').next().unwrap_or_default().to_owned(),
//!     backend: "b".to_owned(),
//!     pool: "p".to_owned(),
//!     availability_zone: "az1".to_owned(),
//!     capabilities: serde_json::json!({
//!         "total_capacity_gb": 100, "free_capacity_gb": free,
//!         "reserved_percentage": 0, "storage_protocol": "NFS",
//!     })
//!     .as_object()
//!     .cloned()
//!     .unwrap_or_default(),
//!     service_up: true,
//!     service_disabled: false,
//! };
//! let mut pools = vec![pool("h@b1#p", 30), pool("h@b2#p", 50)];
//! let req = ScheduleRequest { size_gb: 10, share_proto: "NFS".into(), ..Default::default() };
//!
//! assert_eq!(schedule(&req, &mut pools)?, "h@b2#p"); // most free space
//! assert_eq!(pools[1].capabilities["free_capacity_gb"], 40); // consumed
//! # Ok::<(), shoal_scheduler::NoValidHost>(())
//! ```

pub mod evaluator;
pub mod extra_specs_ops;
pub mod filters;
mod pool;
mod pyval;
mod request;
#[cfg(test)]
mod test_utils;
pub mod weighers;

#[cfg(test)]
mod tests;

pub use filters::{
    AffinityFilter, AntiAffinityFilter, AvailabilityZoneFilter, CapabilitiesFilter, CapacityFilter,
    CreateFromSnapshotFilter, DriverFilter, Filter, OnlyHostFilter, PEER_TRANSPORT_CAPABILITY,
    REPLICATION_ADDRESS_CAPABILITY, ReplicationPeerFilter, ShareReplicationFilter, default_filters,
};
pub use pool::{Capacity, MAX_OVER_SUBSCRIPTION_RATIO_DEFAULT, PoolState};
pub use request::{AffinityHint, BOOLEAN_EXTRA_SPECS, ReplicaRequest, ScheduleRequest};
pub use weighers::{
    CapacityWeigher, GoodnessWeigher, HostAffinityWeigher, WeighedPool, Weigher, default_weighers,
    weigh_pools,
};

/// No pool can take the request (Manila's `NoValidHost`, or `WillNotSchedule` when no
/// share service is usable at all).
///
/// `reason` is Manila's text, as users see it in the instance's error and messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct NoValidHost {
    /// Manila class name of the filter that eliminated the last candidate
    /// (`CapacityFilter`, ...); [`NoValidHost::NO_HOSTS`] when no pool had a usable
    /// service to begin with.
    pub last_filter: &'static str,
    /// The user-facing message.
    pub reason: String,
}

impl NoValidHost {
    /// [`NoValidHost::last_filter`] when no pool had an up and enabled service, so no
    /// filter ran.
    pub const NO_HOSTS: &'static str = "";

    /// The last filter left no pool standing.
    pub fn filtered(last_filter: &'static str) -> Self {
        // Manila formats "No valid host was found. %(reason)s." with a reason that already
        // ends in a period, then strips the doubled period.
        Self {
            last_filter,
            reason: format!(
                "No valid host was found. Failed to find a weighted host, the last executed \
                 filter was {last_filter}."
            ),
        }
    }

    /// No share service was usable (all down or disabled, or no pools at all).
    pub fn no_hosts() -> Self {
        Self {
            last_filter: Self::NO_HOSTS,
            reason: "There are no hosts to fulfill this provisioning request. Are share \
                     backend services down?"
                .to_owned(),
        }
    }

    /// Whether this is the "no usable share service" case rather than a filter failure.
    pub fn is_no_hosts(&self) -> bool {
        self.last_filter == Self::NO_HOSTS
    }

    /// The id of the user message detail Manila records for this failure
    /// (`manila/message/message_field.py`): a filter-specific detail (`007`
    /// AvailabilityZone, `008` Capabilities, `009` Capacity, `010` Driver, `014`
    /// ShareReplication, `016` CreateFromSnapshot; shoal's `901` ReplicationPeer), `002`
    /// (no valid host) for the other
    /// filters, and `028` (back
    /// ends not ready) when no service was usable.
    pub fn detail_id(&self) -> &'static str {
        match self.last_filter {
            Self::NO_HOSTS => "028",
            "AvailabilityZoneFilter" => "007",
            "CapabilitiesFilter" => "008",
            "CapacityFilter" => "009",
            "DriverFilter" => "010",
            "ShareReplicationFilter" => "014",
            // shoal's own detail (no Manila equivalent): see `ReplicationPeerFilter`.
            "ReplicationPeerFilter" => "901",
            "CreateFromSnapshotFilter" => "016",
            _ => "002",
        }
    }
}

/// The pools that pass every default filter for `req`, in input order.
///
/// Errors with [`NoValidHost`] when none does (or none has a usable service).
pub fn filter_pools<'a>(
    req: &ScheduleRequest,
    pools: &'a [PoolState],
) -> Result<Vec<&'a PoolState>, NoValidHost> {
    let filters = default_filters(req, pools);
    let filters: Vec<&dyn Filter> = filters.iter().map(AsRef::as_ref).collect();
    run_filters(req, pools, &filters)
}

/// Runs `filters` in order over the pools whose service is usable; see [`filter_pools`].
pub fn run_filters<'a>(
    req: &ScheduleRequest,
    pools: &'a [PoolState],
    filters: &[&dyn Filter],
) -> Result<Vec<&'a PoolState>, NoValidHost> {
    let only_host = req.only_host.is_some();
    let mut candidates: Vec<&PoolState> = pools
        .iter()
        .filter(|p| p.service_usable(only_host))
        .collect();
    if candidates.is_empty() {
        return Err(NoValidHost::no_hosts());
    }
    for filter in filters {
        candidates.retain(|p| filter.passes(p, req));
        if candidates.is_empty() {
            return Err(NoValidHost::filtered(filter.name()));
        }
    }
    Ok(candidates)
}

/// Picks the pool for `req` with Manila's default filters and weighers, consumes the
/// request's size on it, and returns its name (`host@backend#pool`).
///
/// Call it repeatedly on the same `pools` to place a batch: each call sees the capacity
/// taken by the previous ones.
pub fn schedule(req: &ScheduleRequest, pools: &mut [PoolState]) -> Result<String, NoValidHost> {
    let filters = default_filters(req, pools);
    let filters: Vec<&dyn Filter> = filters.iter().map(AsRef::as_ref).collect();
    let weighers = default_weighers();
    let weighers: Vec<&dyn Weigher> = weighers.iter().map(AsRef::as_ref).collect();
    schedule_with(req, pools, &filters, &weighers)
}

/// [`schedule`] with explicit filters and weighers (for tests, or an operator's choice).
pub fn schedule_with(
    req: &ScheduleRequest,
    pools: &mut [PoolState],
    filters: &[&dyn Filter],
    weighers: &[&dyn Weigher],
) -> Result<String, NoValidHost> {
    let best = {
        let candidates = run_filters(req, pools, filters)?;
        let weighed = weigh_pools(req, &candidates, weighers);
        let best = weighed
            .first()
            .map(|w| w.pool)
            .ok_or_else(NoValidHost::no_hosts)?;
        pools.iter().position(|p| std::ptr::eq(p, best))
    };
    let Some(pool) = best.and_then(|index| pools.get_mut(index)) else {
        // The winner is one of `pools` by construction.
        debug_assert!(false, "weighed pool not found in the snapshot");
        return Err(NoValidHost::no_hosts());
    };
    pool.consume(req.size_gb);
    Ok(pool.name.clone())
}
