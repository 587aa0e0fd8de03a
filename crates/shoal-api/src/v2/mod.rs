//! Routes of the Manila v2 API, one module per resource (Manila's `manila/api/v2/`).
//! Paths are absolute (`/v2/...`); the project segment was already stripped by
//! [`crate::routing`].

pub mod availability_zones;
pub mod limits;
pub mod messages;
pub mod quota_sets;
pub mod scheduler_stats;
pub mod services;
pub mod share_access;
pub mod share_access_metadata;
pub mod share_access_rules;
pub mod share_export_locations;
pub mod share_instance_export_locations;
pub mod share_instances;
pub mod share_lifecycle;
pub mod share_migration;
pub mod share_replica_export_locations;
pub mod share_replica_metadata;
pub mod share_replicas;
pub mod share_snapshots;
pub mod share_types;
pub mod shares;

use crate::ApiState;
use crate::routes::Routes;

/// Every `/v2` route.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/", crate::versions::v2_root)
        .merge(share_types::router())
        .merge(shares::router())
        .merge(share_lifecycle::router())
        .merge(share_export_locations::router())
        .merge(share_instances::router())
        .merge(share_instance_export_locations::router())
        .merge(share_replicas::router())
        .merge(share_snapshots::router())
        .merge(share_replica_export_locations::router())
        .merge(share_replica_metadata::router())
        .merge(availability_zones::router())
        .merge(services::router())
        .merge(scheduler_stats::router())
        .merge(share_access_rules::router())
        .merge(share_access_metadata::router())
        .merge(quota_sets::router())
        .merge(limits::router())
        .merge(messages::router())
}
