//! The `Store` trait: every durable read and write of shoal goes through it, so SQL lives only in
//! this crate and both engines obey one contract (checked by the shared test suite).
//!
//! Conventions: methods are verb-first; time-dependent methods take `now` from the caller so
//! tests control time; a missing row is `NotFound`, a duplicate or a lost compare-and-set is
//! `Conflict`, an unreachable database is `Unavailable`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;
use crate::model::{
    AvailabilityZoneRow, ClaimRequest, NewOperation, NewShareType, OperationRow, OperationState,
    PoolRow, ServiceFilter, ServiceHeartbeat, ServiceRow, ShareTypeFilter, ShareTypeRow,
    ShareTypeUpdate,
};

/// Durable state of shoal. Used as `Arc<dyn Store>`; implemented by
/// [`SqliteStore`](crate::SqliteStore) and [`PgStore`](crate::PgStore).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- administration ----

    /// Engine name, `"sqlite"` or `"postgres"`, for logs and the health endpoint.
    fn backend_name(&self) -> &'static str;

    /// Applies the embedded migrations that have not run yet. Idempotent.
    async fn migrate(&self) -> Result<()>;

    /// Round-trips a trivial query; `Unavailable` when the database cannot be reached.
    async fn ping(&self) -> Result<()>;

    /// Closes the connection pool; later calls fail with `Unavailable`. For shutdown.
    async fn close(&self);

    // ---- share types ----

    /// Inserts a share type and its extra specs atomically. `Conflict` if the name is taken.
    async fn insert_share_type(&self, new: NewShareType) -> Result<ShareTypeRow>;

    /// Reads a share type by id, with its extra specs.
    async fn get_share_type(&self, id: Uuid) -> Result<ShareTypeRow>;

    /// Reads a share type by its unique name, with its extra specs.
    async fn get_share_type_by_name(&self, name: &str) -> Result<ShareTypeRow>;

    /// Lists share types ordered by name, with their extra specs.
    async fn list_share_types(&self, filter: ShareTypeFilter) -> Result<Vec<ShareTypeRow>>;

    /// Changes name, description and/or visibility in one statement and sets `updated_at` to
    /// `now`; specs and access grants are untouched. `NotFound` if missing, `Conflict` if the
    /// new name is taken.
    async fn update_share_type(
        &self,
        id: Uuid,
        update: ShareTypeUpdate,
        now: DateTime<Utc>,
    ) -> Result<ShareTypeRow>;

    /// Deletes a share type with its specs and access list. `NotFound` if missing.
    async fn delete_share_type(&self, id: Uuid) -> Result<()>;

    /// Inserts or overwrites the given extra specs (others are kept), atomically.
    /// `NotFound` if the type is missing.
    async fn set_share_type_extra_specs(
        &self,
        id: Uuid,
        specs: &BTreeMap<String, String>,
    ) -> Result<()>;

    /// Removes one extra spec. `NotFound` if the type or the key is missing.
    async fn delete_share_type_extra_spec(&self, id: Uuid, key: &str) -> Result<()>;

    /// Grants a project access to a (private) type. `NotFound` if the type is missing,
    /// `Conflict` if the project already has access.
    async fn add_share_type_access(&self, id: Uuid, project_id: &str) -> Result<()>;

    /// Revokes a project's access. `NotFound` if the type or the grant is missing.
    async fn remove_share_type_access(&self, id: Uuid, project_id: &str) -> Result<()>;

    /// Projects with access to the type, sorted. `NotFound` if the type is missing.
    async fn list_share_type_access(&self, id: Uuid) -> Result<Vec<String>>;

    // ---- availability zones ----

    /// Returns the zone called `name`, creating it if needed. Safe under concurrent callers:
    /// exactly one row is ever created per name.
    async fn ensure_availability_zone(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<AvailabilityZoneRow>;

    /// Reads a zone by id (when `name_or_id` parses as a UUID) or by name.
    async fn get_availability_zone(&self, name_or_id: &str) -> Result<AvailabilityZoneRow>;

    /// All zones, ordered by name.
    async fn list_availability_zones(&self) -> Result<Vec<AvailabilityZoneRow>>;

    /// Zones with at least one enabled service (Manila's `availability_zone_get_all`),
    /// ordered by name.
    async fn list_availability_zones_in_service(&self) -> Result<Vec<AvailabilityZoneRow>>;

    // ---- services ----

    /// Records a heartbeat: creates the service (and its zone) on first report, otherwise
    /// increments `report_count`, moves `updated_at` to `now` and refreshes topic and zone.
    async fn record_service_heartbeat(&self, beat: ServiceHeartbeat) -> Result<ServiceRow>;

    /// Services matching the filter, ordered by id.
    async fn list_services(&self, filter: ServiceFilter) -> Result<Vec<ServiceRow>>;

    /// Enables or disables a service; `reason` is stored (and cleared on enable if `None`).
    /// Does not touch `updated_at`, which stays the last heartbeat. `NotFound` if missing.
    async fn set_service_disabled(
        &self,
        host: &str,
        binary: &str,
        disabled: bool,
        reason: Option<&str>,
    ) -> Result<ServiceRow>;

    // ---- pools ----

    /// Inserts or replaces a pool's reported state.
    async fn upsert_pool(&self, pool: &PoolRow) -> Result<()>;

    /// All pools, ordered by name.
    async fn list_pools(&self) -> Result<Vec<PoolRow>>;

    /// Removes a pool (its back end is gone). `NotFound` if missing.
    async fn delete_pool(&self, name: &str) -> Result<()>;

    // ---- operations ----

    /// Enqueues a `pending` operation and returns it with its id.
    async fn insert_operation(&self, new: NewOperation) -> Result<OperationRow>;

    /// Claims the oldest claimable operation for `req.host` (pending and past `not_before`, or
    /// running with an expired lease): state → running, `claimed_by` = worker,
    /// `lease_until` = now + lease, attempts + 1. `None` when there is nothing to claim.
    async fn claim_next_operation(&self, req: ClaimRequest<'_>) -> Result<Option<OperationRow>>;

    /// Extends the lease of a running operation still owned by `worker`.
    /// `Conflict` if the worker lost it, `NotFound` if the operation does not exist.
    async fn renew_operation_lease(
        &self,
        id: i64,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<OperationRow>;

    /// Marks a running operation owned by `worker` as done. `Conflict` if it lost the claim.
    async fn complete_operation(
        &self,
        id: i64,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<OperationRow>;

    /// Records a failed attempt of an operation owned by `worker`. With `retry_at` it goes
    /// back to `pending`, claimable from `retry_at`; without, it ends `failed`.
    /// `Conflict` if the worker lost the claim.
    async fn fail_operation(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<OperationRow>;

    /// Reads one operation.
    async fn get_operation(&self, id: i64) -> Result<OperationRow>;

    /// Operations in `state` (all when `None`), ordered by id.
    async fn list_operations(&self, state: Option<OperationState>) -> Result<Vec<OperationRow>>;

    /// Number of `pending` plus `running` operations (teardown checks, metrics).
    async fn count_unfinished_operations(&self) -> Result<i64>;
}
