//! The `Store` trait: every durable read and write of shoal goes through it, so SQL lives only in
//! this crate and both engines obey one contract (checked by the shared test suite).
//!
//! Conventions: methods are verb-first; time-dependent methods take `now` from the caller so
//! tests control time; a missing row is `NotFound`, a duplicate or a lost compare-and-set is
//! `Conflict`, a quota charge over its limit is `QuotaExceeded`, an unreachable database is
//! `Unavailable`. Every write that touches several rows is one transaction: it happens
//! entirely or not at all, including the operations it enqueues.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;
use crate::model::{
    AvailabilityZoneRow, ClaimRequest, NewOperation, NewShareType, OperationCount,
    OperationNotices, OperationRow, OperationState, PoolRow, ServiceFilter, ServiceHeartbeat,
    ServiceRow, ShareTypeFilter, ShareTypeRow, ShareTypeUpdate,
};
use crate::model_identity::{
    IdentityProjectRow, IdentityUserRow, IdentityUserUpdate, NewIdentityProject, NewIdentityUser,
    RoleAssignmentRow,
};
use crate::model_shares::{
    AccessRuleRow, ExportLocationRow, InstanceRelease, MessageRow, NewAccessRule,
    NewExportLocation, NewShare, NewShareInstance, QuotaRequest, QuotaUsage, ReplicaSyncStatus,
    ReplicationRecord, ResizeCommit, ShareInstanceCas, ShareInstanceFilter, ShareInstanceRow,
    ShareInstanceUpdate, ShareListFilter, ShareRow, ShareUpdate,
};
use crate::model_snapshots::{
    NewSnapshot, NewSnapshotAccessRule, NewSnapshotExportLocation, NewSnapshotInstance,
    SnapshotAccessRuleRow, SnapshotExportLocationRow, SnapshotInstanceCas, SnapshotInstanceFilter,
    SnapshotInstanceRow, SnapshotListFilter, SnapshotRow, SnapshotUpdate,
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

    /// Deletes a share type with its specs and access list. `NotFound` if missing,
    /// `Conflict` if shares or share instances still use it.
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

    /// Wake-ups for the operation workers from every node on this database: on PostgreSQL a
    /// task `LISTEN`s on [`OPERATIONS_CHANNEL`](crate::OPERATIONS_CHANNEL), to which every
    /// enqueue notifies in its own transaction, reconnecting with backoff when the
    /// connection drops (then a [`Listening`](crate::OperationNotice::Listening) notice says
    /// that some may have been missed). When it returns, the first `LISTEN` has been tried
    /// (and, unless it failed, is active). `None` on SQLite, where every role of a
    /// deployment runs in one process and in-process wake-ups suffice. Polling stays the
    /// fallback either way: a notice can be lost, and retries wait for `not_before`.
    async fn listen_for_operations(&self) -> Option<OperationNotices>;

    /// Reads one operation.
    async fn get_operation(&self, id: i64) -> Result<OperationRow>;

    /// Operations in `state` (all when `None`), ordered by id.
    async fn list_operations(&self, state: Option<OperationState>) -> Result<Vec<OperationRow>>;

    /// Number of `pending` plus `running` operations (teardown checks, metrics).
    async fn count_unfinished_operations(&self) -> Result<i64>;

    /// Number of operations per kind and state, ordered by kind then state (metrics).
    async fn count_operations_by_kind(&self) -> Result<Vec<OperationCount>>;

    /// Deletes `done` and `failed` operations last updated before `finished_before`, in
    /// batches (so a SQLite writer never holds the lock for long); returns how many.
    /// Pending and running operations are never touched.
    async fn delete_finished_operations(&self, finished_before: DateTime<Utc>) -> Result<u64>;

    // ---- shares ----

    /// Creates a share with its metadata and first instance, charges `new.quota` directly
    /// to `in_use` and enqueues `new.operations`, in one transaction. `QuotaExceeded` (and
    /// any other error) leaves nothing behind. `Conflict` if the share or instance id
    /// exists, `NotFound` if the share type does not.
    async fn create_share(&self, new: NewShare) -> Result<(ShareRow, ShareInstanceRow)>;

    /// Reads a share with its metadata.
    async fn get_share(&self, id: Uuid) -> Result<ShareRow>;

    /// Shares matching the filter, with metadata, ordered by `created_at` then id.
    async fn list_shares(&self, filter: ShareListFilter) -> Result<Vec<ShareRow>>;

    /// Changes the given fields in one statement and sets `updated_at` to `now`.
    /// `NotFound` if missing.
    async fn update_share(
        &self,
        id: Uuid,
        update: ShareUpdate,
        now: DateTime<Utc>,
    ) -> Result<ShareRow>;

    /// Upserts the given metadata keys; with `replace_all`, also removes every other key.
    /// Returns the resulting metadata. Atomic; `NotFound` if the share is missing.
    async fn set_share_metadata(
        &self,
        id: Uuid,
        metadata: &BTreeMap<String, String>,
        replace_all: bool,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>>;

    /// Removes one metadata key. `NotFound` if the share or the key is missing.
    async fn delete_share_metadata_key(&self, id: Uuid, key: &str) -> Result<()>;

    /// Number of shares using the type, on the share or on any of its instances (share
    /// type deletion is refused while it is not zero).
    async fn count_shares_with_share_type(&self, share_type_id: Uuid) -> Result<i64>;

    // ---- share instances ----

    /// Adds an instance (a replica) to an existing share, charges `quota` directly to
    /// `in_use` and enqueues `operations`, in one transaction; `created_at` is `now`.
    /// `NotFound` if the share is missing, `Conflict` if the instance id exists,
    /// `QuotaExceeded` writes nothing.
    async fn create_share_instance(
        &self,
        share_id: Uuid,
        instance: NewShareInstance,
        quota: QuotaRequest,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<ShareInstanceRow>;

    /// Reads one share instance.
    async fn get_share_instance(&self, id: Uuid) -> Result<ShareInstanceRow>;

    /// Instances of a share in creation order (empty when the share does not exist).
    async fn list_share_instances(&self, share_id: Uuid) -> Result<Vec<ShareInstanceRow>>;

    /// Replicas (instances with a `replica_state`) in creation order, optionally only those
    /// of `share_id` and/or of shares owned by `project_id`.
    async fn list_share_replicas(
        &self,
        project_id: Option<&str>,
        share_id: Option<Uuid>,
    ) -> Result<Vec<ShareInstanceRow>>;

    /// Instances of every share matching `filter`, in creation order (admin listing).
    async fn list_all_share_instances(
        &self,
        filter: ShareInstanceFilter,
    ) -> Result<Vec<ShareInstanceRow>>;

    /// Instances placed on a share service `host@backend`: host `host@backend#<pool>` (or
    /// exactly `host@backend`), in creation order.
    async fn list_share_instances_on_host(
        &self,
        service_host: &str,
    ) -> Result<Vec<ShareInstanceRow>>;

    /// Compare-and-set on the status: applies `update` (and `updated_at = now`) only if the
    /// current status is one of `expected_statuses` (any status when empty), and enqueues
    /// `operations` in the same transaction, so they exist only if the update won.
    /// `Conflict` when the status is not expected, `NotFound` when the instance is missing.
    async fn update_share_instance_if(
        &self,
        id: Uuid,
        expected_statuses: &[&str],
        update: ShareInstanceUpdate,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<ShareInstanceRow>;

    /// Places an unscheduled instance for the scheduler: sets `host`, `availability_zone`,
    /// `scheduled_at = now` only while `host` is `""` and the status is `creating`, and
    /// enqueues `operations` in the same transaction. `Conflict` if already placed or no
    /// longer creating, `NotFound` if missing.
    async fn set_share_instance_host_if_unplaced(
        &self,
        id: Uuid,
        host: &str,
        availability_zone: &str,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<ShareInstanceRow>;

    /// Removes an instance with its export locations and access mappings; when it was the
    /// share's last instance, also the share with its metadata and access rules. Applies
    /// `release`, sized by the share's size read under its row lock, to `in_use` (negative
    /// deltas, clamped at zero) in the same transaction. Returns whether the share was
    /// removed. Idempotent: a missing instance gives `Ok(false)` and releases nothing.
    async fn delete_share_instance_and_maybe_share(
        &self,
        instance_id: Uuid,
        release: InstanceRelease,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    // ---- export locations ----

    /// Replaces the export locations of an instance with `locations` (in that order):
    /// locations whose path is kept keep their id and creation time, others are removed or
    /// added. Duplicate paths count once (first wins). Returns the new list.
    /// `NotFound` if the instance is missing.
    async fn replace_export_locations(
        &self,
        instance_id: Uuid,
        locations: Vec<NewExportLocation>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ExportLocationRow>>;

    /// Export locations of an instance in the order last reported (empty when the instance
    /// does not exist).
    async fn list_export_locations(&self, instance_id: Uuid) -> Result<Vec<ExportLocationRow>>;

    /// Reads one export location.
    async fn get_export_location(&self, id: Uuid) -> Result<ExportLocationRow>;

    // ---- access rules ----

    /// Inserts a rule with a `queued_to_apply` mapping per instance in `new.instance_ids`,
    /// moves those instances' `access_rules_status` from `active` to `syncing`, and enqueues
    /// `new.operations`, in one transaction. `Conflict` if the share already has a rule
    /// with the same type and target (or the id exists), `NotFound` if the share or an
    /// instance is missing.
    async fn insert_access_rule(&self, new: NewAccessRule) -> Result<AccessRuleRow>;

    /// Reads one rule with its per-instance states.
    async fn get_access_rule(&self, id: Uuid) -> Result<AccessRuleRow>;

    /// Rules of a share, ordered by `created_at` then id (empty when the share does not
    /// exist).
    async fn list_access_rules(&self, share_id: Uuid) -> Result<Vec<AccessRuleRow>>;

    /// Compare-and-set of one mapping's state: only if the current state is in `expected`
    /// (any when empty). `Conflict` when not expected, `NotFound` when the mapping is
    /// missing.
    async fn set_instance_access_state(
        &self,
        access_id: Uuid,
        instance_id: Uuid,
        expected: &[&str],
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Adds or overwrites the given metadata keys of a rule and keeps the others (Manila's
    /// `share_access_metadata_update`); returns all of the rule's metadata afterwards. The
    /// rule's `updated_at` is left alone. `NotFound` if the rule is missing.
    async fn set_access_rule_metadata(
        &self,
        access_id: Uuid,
        metadata: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>>;

    /// Removes one metadata key of a rule. `NotFound` if the rule or the key is missing.
    async fn delete_access_rule_metadata_key(&self, access_id: Uuid, key: &str) -> Result<()>;

    /// Starts denying a rule: every mapping → `queued_to_deny`, the mapped instances'
    /// `access_rules_status` `active` → `syncing`, and `operations` enqueued, in one
    /// transaction. `NotFound` if the rule is missing.
    async fn mark_access_rule_for_deny(
        &self,
        access_id: Uuid,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<AccessRuleRow>;

    /// Changes a rule's `access_level` and queues it for re-application: every mapping not
    /// being denied → `queued_to_update`, the mapped instances' `access_rules_status`
    /// `active` → `syncing`, and `operations` enqueued, in one transaction. `NotFound` if the
    /// rule is missing.
    async fn update_access_rule_level(
        &self,
        access_id: Uuid,
        access_level: &str,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<AccessRuleRow>;

    /// Removes the rule's mapping to one instance (a missing mapping is not an error), and
    /// the rule itself once no mapping is left. Returns whether the rule was removed.
    /// `NotFound` if the rule is missing.
    async fn remove_instance_access(&self, access_id: Uuid, instance_id: Uuid) -> Result<bool>;

    /// Maps existing rules to a (new) instance with the given state. Mappings that already
    /// exist are left alone, so retries are harmless. `NotFound` if the instance or a rule
    /// is missing.
    async fn add_instance_access_rows(
        &self,
        instance_id: Uuid,
        access_ids: &[Uuid],
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    // ---- replicas (queries in sql_replicas.rs) ----

    /// Compare-and-set on several instances of one share in one write transaction
    /// (promotion swaps roles atomically), and enqueues `operations` only if every update
    /// applied. Each update applies only if the instance's status is one of its
    /// `expected_statuses` (any when empty) and, when `expected_replica_state` is `Some`, its
    /// `replica_state` equals it (`Some(None)`: must be null); each sets `updated_at = now`.
    /// All or nothing: `Conflict` (nothing written, nothing enqueued) when any condition
    /// fails, `NotFound` when an instance is missing. Updates are applied in id order (so
    /// concurrent calls lock rows in the same order); an id given twice sees its first
    /// update. Returns the updated rows in the order given.
    async fn update_share_instances_if(
        &self,
        updates: Vec<ShareInstanceCas>,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ShareInstanceRow>>;

    /// Replica metadata of one instance (empty when none or when the instance is missing).
    async fn get_share_instance_metadata(
        &self,
        instance_id: Uuid,
    ) -> Result<BTreeMap<String, String>>;

    /// Replica metadata of many instances at once (lists); instances without metadata, or
    /// missing, are absent from the answer.
    async fn list_share_instance_metadata(
        &self,
        instance_ids: &[Uuid],
    ) -> Result<BTreeMap<Uuid, BTreeMap<String, String>>>;

    /// Upserts replica metadata keys; with `replace_all` also removes every other key.
    /// Returns the resulting metadata. Atomic; `NotFound` if the instance is missing. A key
    /// whose value is unchanged keeps its `updated_at`.
    async fn set_share_instance_metadata(
        &self,
        instance_id: Uuid,
        metadata: &BTreeMap<String, String>,
        replace_all: bool,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>>;

    /// Removes one replica metadata key. `NotFound` if the instance or the key is missing.
    async fn delete_share_instance_metadata_key(&self, instance_id: Uuid, key: &str) -> Result<()>;

    /// Takes the per-share replica lock (Manila's `locked-share-replica-operation-for-share`)
    /// for `holder` until `now + lease`: succeeds when the lock is free, expired (its lease
    /// ended strictly before `now`), or already held by `holder` (which renews it). Returns
    /// whether `holder` holds it now; of several concurrent callers on a free lock exactly
    /// one gets `true`. The lease makes a dead node's lock expire. The share need not exist.
    async fn try_lock_share(
        &self,
        share_id: Uuid,
        holder: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool>;

    /// Releases the lock if `holder` holds it (otherwise does nothing, also when the lock
    /// has expired and been taken by another holder).
    async fn unlock_share(&self, share_id: Uuid, holder: &str) -> Result<()>;

    /// Appends one sync to `replication_history`. `Conflict` if the id exists, `NotFound`
    /// if `share_instance_id` is missing. The history goes with its instance on deletion.
    async fn insert_replication_record(&self, record: ReplicationRecord) -> Result<()>;

    /// Every replica that is not `active` (`replica_state` set), with its newest sync and
    /// the source point of its newest clean sync, ordered by instance id (metrics: lag and
    /// the last sync's figures). Reads one history row per replica through the history's
    /// index, so its cost does not grow with the history.
    async fn list_replica_sync_status(&self) -> Result<Vec<ReplicaSyncStatus>>;

    /// The newest `limit` syncs of an instance (by `started_at`, then id), newest first.
    /// Empty when `limit <= 0` or the instance has none.
    async fn list_replication_history(
        &self,
        instance_id: Uuid,
        limit: i64,
    ) -> Result<Vec<ReplicationRecord>>;

    // ---- share lifecycle: manage, recycle bin (queries in sql_lifecycle.rs) ----

    /// Instances on `host` (exactly, or any pool `host#...`) that export `path` (Manila's
    /// "already managed" check), in creation order.
    async fn list_share_instances_by_export_path(
        &self,
        host: &str,
        path: &str,
    ) -> Result<Vec<ShareInstanceRow>>;

    /// Completes a manage in one transaction: instance `instance_id` gets `update` (and
    /// `updated_at = now`) only while its status is `manage_starting`, its share's size
    /// becomes `size_gb`, and `quota` is charged to `in_use` (limits in `quota.limits`, none
    /// for Manila's over-quota-allowed charge). `Conflict` (nothing written) when the status
    /// is not `manage_starting`, `NotFound` when the instance is missing.
    async fn finish_share_manage(
        &self,
        instance_id: Uuid,
        size_gb: i64,
        quota: QuotaRequest,
        update: ShareInstanceUpdate,
        now: DateTime<Utc>,
    ) -> Result<ShareInstanceRow>;

    /// Moves a share to the recycle bin: `is_soft_deleted = true`,
    /// `scheduled_to_be_deleted_at`, `updated_at = now`, only if it is not soft-deleted yet
    /// and every instance's status is one of `statuses`. `Conflict` otherwise, `NotFound` if
    /// the share is missing.
    async fn soft_delete_share(
        &self,
        id: Uuid,
        statuses: &[&str],
        scheduled_to_be_deleted_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ShareRow>;

    /// Takes a share out of the recycle bin (`is_soft_deleted = false`, no schedule,
    /// `updated_at = now`), only if it is soft-deleted and no instance's status is one of
    /// `blocking_statuses`. `Conflict` otherwise, `NotFound` if the share is missing.
    async fn restore_share(
        &self,
        id: Uuid,
        blocking_statuses: &[&str],
        now: DateTime<Utc>,
    ) -> Result<ShareRow>;

    /// Soft-deleted shares whose `scheduled_to_be_deleted_at` is at or before `now`, with
    /// metadata, earliest first (the purge's work list).
    async fn list_expired_soft_deleted_shares(&self, now: DateTime<Utc>) -> Result<Vec<ShareRow>>;
    // ---- snapshots (queries in sql_snapshots.rs) ----

    /// Creates a snapshot with its metadata and instances, charges `new.quota` directly to
    /// `in_use` and enqueues `new.operations`, in one transaction (the share row is locked
    /// first). `NotFound` if the share or a share instance is missing, `Conflict` if an id
    /// exists, `QuotaExceeded` writes nothing. Returns the snapshot as stored.
    async fn create_snapshot(&self, new: NewSnapshot) -> Result<SnapshotRow>;

    /// Reads a snapshot with its metadata and instances.
    async fn get_snapshot(&self, id: Uuid) -> Result<SnapshotRow>;

    /// Snapshots matching the filter with metadata and instances, ordered by `created_at`
    /// then id.
    async fn list_snapshots(&self, filter: SnapshotListFilter) -> Result<Vec<SnapshotRow>>;

    /// Changes the given fields and sets `updated_at` to `now`. `NotFound` if missing.
    async fn update_snapshot(
        &self,
        id: Uuid,
        update: SnapshotUpdate,
        now: DateTime<Utc>,
    ) -> Result<SnapshotRow>;

    /// Upserts snapshot metadata keys; with `replace_all` also removes every other key.
    /// Returns the resulting metadata. Atomic; `NotFound` if the snapshot is missing.
    async fn set_snapshot_metadata(
        &self,
        id: Uuid,
        metadata: &BTreeMap<String, String>,
        replace_all: bool,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>>;

    /// Removes one snapshot metadata key. `NotFound` if the snapshot or the key is missing.
    async fn delete_snapshot_metadata_key(&self, id: Uuid, key: &str) -> Result<()>;

    /// Reads one snapshot instance.
    async fn get_snapshot_instance(&self, id: Uuid) -> Result<SnapshotInstanceRow>;

    /// Snapshot instances matching the filter, in creation order.
    async fn list_snapshot_instances(
        &self,
        filter: SnapshotInstanceFilter,
    ) -> Result<Vec<SnapshotInstanceRow>>;

    /// Adds snapshot instances to existing snapshots (a new replica gets one per snapshot)
    /// and enqueues `operations`, in one transaction. An instance of the same snapshot on
    /// the same share instance that already exists is kept (retries are harmless); returns
    /// how many were added. `NotFound` if a snapshot or share instance is missing.
    async fn add_snapshot_instances(
        &self,
        instances: Vec<NewSnapshotInstance>,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<usize>;

    /// Compare-and-set on several snapshot instances in one transaction, enqueueing
    /// `operations` only if every update applied (all or nothing). Each applies only if the
    /// instance's status is one of its `expected_statuses` (any when empty) and sets
    /// `updated_at = now`. `Conflict` when a condition fails, `NotFound` when an instance is
    /// missing. Returns the updated rows in the order given.
    async fn update_snapshot_instances_if(
        &self,
        updates: Vec<SnapshotInstanceCas>,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SnapshotInstanceRow>>;

    /// Compare-and-set on share instances and snapshot instances together, all or nothing,
    /// with `operations` enqueued only if every update applied (a revert moves the share
    /// instance to `reverting` and its snapshot instance to `restoring` at once, and back).
    /// Conditions as in `update_share_instances_if` and `update_snapshot_instances_if`;
    /// `Conflict` or `NotFound` write nothing.
    async fn update_share_and_snapshot_instances_if(
        &self,
        share_updates: Vec<ShareInstanceCas>,
        snapshot_updates: Vec<SnapshotInstanceCas>,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Removes a snapshot instance with its export locations and access mappings; when it
    /// was the snapshot's last, also the snapshot with its metadata and access rules, and
    /// then applies `release` (negative deltas) in the same transaction. Returns whether the
    /// snapshot was removed. Idempotent: a missing instance gives `Ok(false)`.
    async fn delete_snapshot_instance(
        &self,
        instance_id: Uuid,
        release: QuotaRequest,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Replaces the export locations of a snapshot instance (paths kept keep their id).
    /// `NotFound` if the instance is missing.
    async fn replace_snapshot_export_locations(
        &self,
        instance_id: Uuid,
        locations: Vec<NewSnapshotExportLocation>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SnapshotExportLocationRow>>;

    /// Export locations of a snapshot instance in the order last reported.
    async fn list_snapshot_export_locations(
        &self,
        instance_id: Uuid,
    ) -> Result<Vec<SnapshotExportLocationRow>>;

    /// Inserts a snapshot access rule with a `queued_to_apply` mapping per instance and
    /// enqueues `new.operations`, in one transaction. `Conflict` if the snapshot has a rule
    /// with the same type and target, `NotFound` if the snapshot or an instance is missing.
    async fn insert_snapshot_access_rule(
        &self,
        new: NewSnapshotAccessRule,
    ) -> Result<SnapshotAccessRuleRow>;

    /// Reads one snapshot access rule with its per-instance states.
    async fn get_snapshot_access_rule(&self, id: Uuid) -> Result<SnapshotAccessRuleRow>;

    /// Rules of a snapshot, ordered by `created_at` then id.
    async fn list_snapshot_access_rules(
        &self,
        snapshot_id: Uuid,
    ) -> Result<Vec<SnapshotAccessRuleRow>>;

    /// Compare-and-set of one mapping's state (any current state when `expected` is empty).
    /// `Conflict` when not expected, `NotFound` when the mapping is missing.
    async fn set_snapshot_instance_access_state(
        &self,
        access_id: Uuid,
        instance_id: Uuid,
        expected: &[&str],
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Starts denying a snapshot rule: every mapping → `queued_to_deny`, and `operations`
    /// enqueued, in one transaction. `NotFound` if the rule is missing.
    async fn mark_snapshot_access_rule_for_deny(
        &self,
        access_id: Uuid,
        operations: Vec<NewOperation>,
        now: DateTime<Utc>,
    ) -> Result<SnapshotAccessRuleRow>;

    /// Removes the rule's mapping to one snapshot instance, and the rule once no mapping is
    /// left. Returns whether the rule was removed. `NotFound` if the rule is missing.
    async fn remove_snapshot_instance_access(
        &self,
        access_id: Uuid,
        instance_id: Uuid,
    ) -> Result<bool>;

    // ---- quotas ----

    /// The project's quota overrides (resource → hard limit, -1 = unlimited).
    async fn get_quota_overrides(&self, project_id: &str) -> Result<BTreeMap<String, i64>>;

    /// Upserts the given overrides; other resources keep theirs.
    async fn set_quota_overrides(
        &self,
        project_id: &str,
        limits: &BTreeMap<String, i64>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Removes every override of the project (back to defaults). No error when none exist.
    async fn delete_quota_overrides(&self, project_id: &str) -> Result<()>;

    /// Removes the project's overrides of the named resources only (one scope of per-user
    /// or per-share-type quotas). No error for names without a row.
    async fn delete_quota_override_keys(
        &self,
        project_id: &str,
        resources: &[String],
    ) -> Result<()>;

    /// The project's usage per resource (resources never charged are absent).
    async fn get_quota_usages(&self, project_id: &str) -> Result<BTreeMap<String, QuotaUsage>>;

    /// Reserves `req.deltas` against `req.limits` in one transaction and returns one
    /// reservation id per non-zero delta. Positive deltas are added to `reserved` (each
    /// one conditional on `in_use + reserved + delta <= limit`); negative ones only take
    /// effect on commit, as in Manila. `QuotaExceeded` reserves nothing.
    async fn reserve_quota(
        &self,
        req: QuotaRequest,
        expire_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>>;

    /// Commits reservations: their deltas move to `in_use` (clamped at zero) and leave
    /// `reserved`. Unknown ids (already committed, rolled back or expired) are skipped.
    async fn commit_reservations(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<()>;

    /// Finishes an extend or shrink (see [`ResizeCommit`]): sets the share's size, commits
    /// the reservations and corrects `replica_gigabytes` for replicas deleted or added
    /// since they were counted, in one transaction that holds the share's row lock, as
    /// instance deletes do. Idempotent. `NotFound` if the share is missing.
    async fn commit_share_resize(&self, commit: ResizeCommit, now: DateTime<Utc>) -> Result<()>;

    /// Rolls reservations back, releasing what they hold. Unknown ids are skipped.
    async fn rollback_reservations(&self, ids: &[Uuid], now: DateTime<Utc>) -> Result<()>;

    /// Rolls back every reservation whose `expire_at` is before `now`; returns how many.
    async fn expire_reservations(&self, now: DateTime<Utc>) -> Result<u64>;

    /// Changes `in_use` directly by `req.deltas` in one transaction: positive deltas are
    /// checked against `req.limits` (`QuotaExceeded` changes nothing), negative ones are
    /// clamped at zero.
    async fn charge_quota(&self, req: QuotaRequest, now: DateTime<Utc>) -> Result<()>;

    // ---- pool usage ----

    /// Allocated GiB per pool (`host@backend#pool`): the sum of share sizes over placed
    /// instances whose status is not `deleted`.
    async fn allocated_gb_by_pool(&self) -> Result<BTreeMap<String, u64>>;

    // ---- user messages ----

    /// Stores a message. `Conflict` if the id exists.
    async fn insert_message(&self, message: MessageRow) -> Result<()>;

    /// Messages of a project (all projects when `None`), ordered by `created_at` then id.
    /// Expired ones are included until `delete_expired_messages` runs.
    async fn list_messages(&self, project_id: Option<&str>) -> Result<Vec<MessageRow>>;

    /// Reads one message.
    async fn get_message(&self, id: Uuid) -> Result<MessageRow>;

    /// Deletes one message. `NotFound` if missing.
    async fn delete_message(&self, id: Uuid) -> Result<()>;

    /// Deletes messages whose `expires_at` is before `now`; returns how many.
    async fn delete_expired_messages(&self, now: DateTime<Utc>) -> Result<u64>;

    // ---- identity (built-in Keystone subset) ----

    /// Creates a project. `Conflict` if its name is taken in its domain or its id is taken.
    async fn insert_identity_project(&self, new: NewIdentityProject) -> Result<IdentityProjectRow>;

    /// Reads a project by id. `NotFound` if missing.
    async fn get_identity_project(&self, id: &str) -> Result<IdentityProjectRow>;

    /// Reads a project by its name within a domain. `NotFound` if missing.
    async fn get_identity_project_by_name(
        &self,
        domain_id: &str,
        name: &str,
    ) -> Result<IdentityProjectRow>;

    /// All projects, ordered by domain, then name.
    async fn list_identity_projects(&self) -> Result<Vec<IdentityProjectRow>>;

    /// Deletes a project with its role assignments; users that had it as their default
    /// project keep none. `NotFound` if missing.
    async fn delete_identity_project(&self, id: &str) -> Result<()>;

    /// Creates a user (`tokens_valid_after` and `updated_at` are `created_at`). `Conflict` if
    /// its name is taken in its domain or its id is taken, `NotFound` if `default_project_id`
    /// names no project.
    async fn insert_identity_user(&self, new: NewIdentityUser) -> Result<IdentityUserRow>;

    /// Reads a user by id. `NotFound` if missing.
    async fn get_identity_user(&self, id: &str) -> Result<IdentityUserRow>;

    /// Reads a user by its name within a domain. `NotFound` if missing.
    async fn get_identity_user_by_name(
        &self,
        domain_id: &str,
        name: &str,
    ) -> Result<IdentityUserRow>;

    /// All users, ordered by domain, then name.
    async fn list_identity_users(&self) -> Result<Vec<IdentityUserRow>>;

    /// Applies the `Some` fields of `update` in one statement, sets `updated_at` to `now` and
    /// returns the new row. `NotFound` if the user is missing or the new default project does
    /// not exist.
    async fn update_identity_user(
        &self,
        id: &str,
        update: IdentityUserUpdate,
        now: DateTime<Utc>,
    ) -> Result<IdentityUserRow>;

    /// Deletes a user with its role assignments. `NotFound` if missing.
    async fn delete_identity_user(&self, id: &str) -> Result<()>;

    /// Gives a user a role on a project. Granting a role the user already holds is a no-op.
    /// `NotFound` if the user or the project is missing.
    async fn grant_identity_role(&self, user_id: &str, project_id: &str, role: &str) -> Result<()>;

    /// Takes a role away. `NotFound` if the user did not hold it on that project.
    async fn revoke_identity_role(&self, user_id: &str, project_id: &str, role: &str)
    -> Result<()>;

    /// The role names a user holds on a project, sorted. Empty when there are none, also for
    /// an unknown user or project.
    async fn list_identity_roles(&self, user_id: &str, project_id: &str) -> Result<Vec<String>>;

    /// Every role assignment, ordered by user, project, then role.
    async fn list_identity_role_assignments(&self) -> Result<Vec<RoleAssignmentRow>>;

    /// Records that the token with `audit_id` is revoked until `expires_at` (when it would
    /// have expired anyway). Idempotent: revoking again keeps the first record.
    async fn revoke_identity_token(
        &self,
        audit_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Whether the token with `audit_id` was revoked (and its record not purged yet).
    async fn is_identity_token_revoked(&self, audit_id: &str) -> Result<bool>;

    /// Deletes revocation records whose `expires_at` is before `now`; returns how many.
    async fn delete_expired_identity_revocations(&self, now: DateTime<Utc>) -> Result<u64>;

    /// Returns the secret (hex) of signing key 1, storing `candidate_hex` as that key first if
    /// there is none. Safe under concurrent callers on any number of nodes: exactly one
    /// candidate is stored and every caller gets it back, so the result is `candidate_hex`
    /// only for the caller that created the key.
    async fn ensure_identity_signing_key(
        &self,
        candidate_hex: &str,
        now: DateTime<Utc>,
    ) -> Result<String>;
}
