//! Share back-end drivers, modelled on Manila's `ShareDriver` interface.
//!
//! A driver owns the pools of one back end (`host@backend`). The share manager calls it to
//! create, delete, resize and export share instances and to apply access rules; the periodic
//! reporter asks it for pool statistics. The `local` driver keeps each pool in a directory;
//! the `dummy` driver, like Manila's, stores shares only in memory and reports configured
//! capacities so the control plane can be exercised at scale and driven into failures.
//!
//! Durable truth (which shares exist, their sizes, their rules) lives in the database; a
//! driver holds the back-end side of it. Every share call is idempotent because the share
//! manager may run an operation twice after a crash: creating what exists returns the same
//! export locations, deleting what is gone succeeds.

pub mod dummy;
use shoal_replication::fsutil;
pub mod local;
use shoal_replication as replication;
mod rules;

use std::any::Any;
use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use dummy::{DummyDriver, DummyMethod, DummyOptions};
pub use local::{DataPlane, Journals, LocalDriver, LocalOptions};

/// Errors a driver reports. The share manager turns them into `error` states.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The pool's storage is missing or unreadable (e.g. its directory vanished), or the pool
    /// is not configured on this back end.
    #[error("pool {pool} is unavailable: {reason}")]
    PoolUnavailable {
        /// Pool name.
        pool: String,
        /// What went wrong.
        reason: String,
    },
    /// The request itself is malformed (an id that is not a UUID, an unsupported protocol,
    /// a resize in the wrong direction). Retrying it cannot help.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The share instance does not exist on the back end (e.g. `ensure_share` after its
    /// directory was lost, or any call on a dummy driver that restarted).
    #[error("share instance {share_instance_id} does not exist on the back end")]
    NotFound {
        /// Share instance id.
        share_instance_id: String,
    },
    /// Shrinking would cut below the data the share holds; Manila's
    /// `ShareShrinkingPossibleDataLoss`, which leaves the share in
    /// `shrinking_possible_data_loss_error`.
    #[error("share holds {used_bytes} bytes, more than the requested size")]
    ShrinkBelowUsage {
        /// Bytes currently used by the share.
        used_bytes: u64,
    },
    /// The data a replica is copied from cannot be read: the active's node is unreachable,
    /// refused the request, or serves no replication endpoint (or, on one host, the
    /// active's pool is gone).
    #[error("cannot read the active replica's data: {0}")]
    SourceUnavailable(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Capabilities and capacity of one pool, as Manila's `get_share_stats` reports them.
/// Serialised into the `pools.capabilities` column and shown by `/scheduler-stats/pools/detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStats {
    /// Pool name (the part after `#`).
    pub pool_name: String,
    /// Total capacity in GiB.
    pub total_capacity_gb: f64,
    /// Free capacity in GiB, after what shares already allocated.
    pub free_capacity_gb: f64,
    /// Sum of the sizes of shares placed on the pool, in GiB.
    pub allocated_capacity_gb: f64,
    /// Percentage of capacity the scheduler must leave free.
    pub reserved_percentage: u32,
    /// Whether the scheduler may over-commit (`free` counts allocations, not real usage).
    pub thin_provisioning: bool,
    /// Manila's capability; shoal drivers never manage share servers.
    pub driver_handles_share_servers: bool,
    /// Replication style the pool supports, if any.
    pub replication_type: Option<String>,
    /// Pools replicate only with pools of the same domain.
    pub replication_domain: Option<String>,
    /// The pool can take snapshots (Manila's `snapshot_support`).
    pub snapshot_support: bool,
    /// A share can be created from a snapshot (`create_share_from_snapshot_support`).
    #[serde(default)]
    pub create_share_from_snapshot_support: bool,
    /// A share can be reverted to its latest snapshot (`revert_to_snapshot_support`).
    #[serde(default)]
    pub revert_to_snapshot_support: bool,
    /// Snapshots are exported and take access rules (`mount_snapshot_support`).
    #[serde(default)]
    pub mount_snapshot_support: bool,
    /// Back-end name, Manila's `share_backend_name`.
    pub share_backend_name: String,
    /// Driver name, Manila's `vendor_name`/`driver_version` live beside it.
    pub driver_name: String,
    /// Protocol the pool serves, Manila's `storage_protocol`.
    pub storage_protocol: String,
    /// Replicas of this pool's shares on other nodes read the data from this node's
    /// replication endpoint (the scheduler places them elsewhere only when it serves one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replication_peer_transport: bool,
}

/// Static facts of a back end that every pool report repeats.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// This node's host name (`host` of `host@backend#pool`); the `local` driver puts it in
    /// export locations so a client knows which node serves the share.
    pub host: String,
    /// Section name (`backend` of `host@backend#pool`).
    pub backend_name: String,
    /// Replication style advertised, if any.
    pub replication_type: Option<String>,
    /// Replication domain, if any.
    pub replication_domain: Option<String>,
}

/// The share instance a driver call is about: what Manila passes as the `share` dict,
/// reduced to what shoal's drivers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareInstanceRef {
    /// Share instance id (a UUID); a replica is an instance too, so drivers key on this, not
    /// on the share id.
    pub id: String,
    /// Id of the share the instance belongs to.
    pub share_id: String,
    /// Pool name, the part after `#` of the instance's host.
    pub pool: String,
    /// Size in GiB the instance must offer.
    pub size_gb: u64,
    /// `NFS` or `CIFS`.
    pub share_proto: String,
}

/// Where and how a share instance can be mounted (Manila's export location).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLocation {
    /// Path a client mounts, e.g. `10.0.0.10:/path/to/share`.
    pub path: String,
    /// Shown only to admins (Manila hides these from other users).
    pub is_admin_only: bool,
    /// The location clients should prefer when there are several.
    pub preferred: bool,
    /// Driver-specific metadata, shown from microversion 2.87.
    pub metadata: BTreeMap<String, String>,
}

/// One access rule as the driver sees it; the share manager keeps its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRule {
    /// Rule id (UUID); results are keyed by it.
    pub id: String,
    /// `ip`, `user`, `cert` or `cephx`.
    pub access_type: String,
    /// Whom the rule admits: an address or CIDR, a user or group name, a certificate CN, a
    /// cephx id.
    pub access_to: String,
    /// `rw` or `ro`.
    pub access_level: String,
}

/// Outcome of one rule of an `update_access` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessRuleResult {
    /// The back end applies the rule.
    Applied,
    /// The back end cannot apply the rule (the rule goes to `error`); the text says why.
    Error(String),
}

/// A share replica as the driver sees it (Manila passes replica dicts): the instance, its
/// full host and its state and export locations as the database holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRef {
    /// The instance (id, share id, pool, size, protocol).
    pub instance: ShareInstanceRef,
    /// `host@backend#pool` of the replica.
    pub host: String,
    /// `active`, `in_sync`, `out_of_sync`, `error`, or `None` while being created.
    pub replica_state: Option<String>,
    /// Export locations stored for the replica (the `local` driver finds an active
    /// replica's data through its admin-only location).
    pub export_locations: Vec<ExportLocation>,
    /// `host:port` of the replication endpoint of the node serving the replica's back end,
    /// as its share service last published it (`None`: the node serves none).
    pub replication_address: Option<String>,
    /// The replica's epoch (see `ShareInstanceRow::replica_epoch`): an active's node serves
    /// its data to peers only at this epoch.
    pub replica_epoch: i64,
}

/// What every replica call gets besides the replica itself.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaContext<'a> {
    /// The share's `replication_type`: `readable`, `dr` or `writable`.
    pub replication_type: &'a str,
    /// The share's current active replica, `None` when the share has none (then a sync
    /// source is missing and the driver decides from what it holds).
    pub active: Option<&'a ReplicaRef>,
    /// Every replica of the share (the active one and `replica` included), as Manila passes
    /// `replica_list`.
    pub replicas: &'a [ReplicaRef],
    /// The share's access rules (with their wanted levels; the driver casts them to `ro`
    /// on replicas whose `cast_rules_to_readonly` is set).
    pub access_rules: &'a [AccessRule],
    /// Whether the sync must read the whole source, whatever a change journal says: an
    /// admin's `resync` asks for a complete check.
    pub full_sync: bool,
}

/// One synchronisation a driver ran, for `replication_history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// When the sync started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When it ended (clean, inconsistent or failed).
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// The point in time of the source the published version reflects (the start of the
    /// source scan); `None` when nothing was published.
    pub source_point: Option<chrono::DateTime<chrono::Utc>>,
    /// Version published by this sync (or still published, when nothing changed).
    pub version: u64,
    /// Entries (files, directories, symlinks) in the source.
    pub files_total: u64,
    /// Bytes of regular files in the source.
    pub bytes_total: u64,
    /// Entries whose data or metadata had to be written.
    pub files_transferred: u64,
    /// Bytes of file data written (a block delta counts only its changed blocks).
    pub bytes_transferred: u64,
    /// Entries removed because the source no longer has them.
    pub files_deleted: u64,
    /// `clean`, `inconsistent` (the source changed while it was read) or `failed`.
    pub outcome: String,
    /// Free text: the error of a failed sync, the tampered entries undone, ...
    pub detail: Option<String>,
    /// Bytes received from the active's node over the network (0 when the source was read
    /// from this host's filesystem).
    #[serde(default)]
    pub wire_bytes: u64,
}

/// Answer of `create_replica`, `promote_replica` and `update_replica_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaResult {
    /// The replica's observed state: `active`, `in_sync`, `out_of_sync` or `error`.
    pub replica_state: String,
    /// `Some` replaces the replica's export locations (an empty list removes them all, as
    /// for a `dr` secondary); `None` leaves them as they are.
    pub export_locations: Option<Vec<ExportLocation>>,
    /// The sync this call ran, if any.
    pub sync: Option<SyncRecord>,
}

/// A snapshot instance as the driver sees it (Manila's `snapshot` / `snapshot_instance`
/// dicts reduced to what shoal's drivers use). A snapshot of a replicated share has one
/// instance per replica; drivers key on the instance id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// Snapshot instance id (a UUID).
    pub id: String,
    /// Id of the snapshot the instance belongs to (shared by every instance of it).
    pub snapshot_id: String,
    /// The share instance (or replica) the snapshot instance is of.
    pub share_instance: ShareInstanceRef,
    /// `host@backend#pool` of that share instance.
    pub host: String,
    /// Size in GiB (the share's size when the snapshot was taken).
    pub size_gb: u64,
    /// What the driver returned when it created or adopted the snapshot instance; `None`
    /// before that.
    pub provider_location: Option<String>,
}

/// Progress of a snapshot instance on the back end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotProgress {
    /// The snapshot instance holds its complete point-in-time copy.
    Available,
    /// Still being built (e.g. a replica's copy of the active's snapshot): the share manager
    /// asks again with `update_replica_snapshot`.
    Creating,
}

/// Answer of the calls that create or adopt a snapshot instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotResult {
    /// Whether the instance is complete.
    pub progress: SnapshotProgress,
    /// Back-end identifier of the instance, stored and passed back in [`SnapshotRef`].
    pub provider_location: Option<String>,
    /// Size in GiB when the back end measured it (manage); `None` keeps the requested size.
    pub size_gb: Option<u64>,
    /// Export locations of a mountable snapshot (`mount_snapshot_support`); empty otherwise.
    pub export_locations: Vec<ExportLocation>,
}

/// Answer of `manage_existing`: what the adopted share is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManageResult {
    /// Size in GiB the share is given (the data it holds, rounded up to a whole GiB, at
    /// least 1).
    pub size_gb: u64,
    /// Export locations of the adopted share.
    pub export_locations: Vec<ExportLocation>,
}

fn unsupported<T>(driver: &str, what: &str) -> Result<T, DriverError> {
    Err(DriverError::InvalidInput(format!(
        "the {driver} driver does not support {what}"
    )))
}

/// The interface every back end implements.
///
/// Calls about one share instance are serialised by the share manager (per-share lock), so a
/// driver need not order concurrent calls on the same instance; calls on different instances
/// run concurrently.
#[async_trait]
pub trait ShareDriver: Send + Sync + 'static {
    /// Driver name (`local`, `dummy`).
    fn driver_name(&self) -> &'static str;

    /// The driver as [`Any`], so tests can reach driver-specific knobs (e.g.
    /// [`DummyDriver::set_failure`]) through an `Arc<dyn ShareDriver>`.
    fn as_any(&self) -> &dyn Any;

    /// Checks the back end can run and repairs what a crash left behind (e.g. the `local`
    /// driver creates pool directories and removes half-created shares).
    async fn do_setup(&self) -> Result<(), DriverError>;

    /// Capacity and capabilities of every pool, freshly measured.
    ///
    /// `allocated_gb_by_pool` is the sum of the sizes of the share instances placed on each
    /// pool (pool name → GiB), which the caller reads from the database; pools missing from
    /// the map have nothing allocated. The caller supplies it rather than the driver tracking
    /// it because the database is the one source of truth for placements: a driver-side
    /// counter would drift after crashes, restarts and operations the driver never sees
    /// (a share in `error` that still holds its allocation, a manual DB fix).
    async fn get_share_stats(
        &self,
        allocated_gb_by_pool: &BTreeMap<String, u64>,
    ) -> Result<Vec<PoolStats>, DriverError>;

    /// Creates the share instance and returns its export locations. Idempotent: if it
    /// already exists, returns the same export locations and succeeds.
    async fn create_share(
        &self,
        share: &ShareInstanceRef,
    ) -> Result<Vec<ExportLocation>, DriverError>;

    /// Deletes the share instance and its data. Idempotent: a missing instance is success.
    async fn delete_share(&self, share: &ShareInstanceRef) -> Result<(), DriverError>;

    /// Grows the instance to `new_size_gb`. `new_size_gb` equal to the current size succeeds
    /// (a retried operation); smaller is [`DriverError::InvalidInput`].
    async fn extend_share(
        &self,
        share: &ShareInstanceRef,
        new_size_gb: u64,
    ) -> Result<(), DriverError>;

    /// Shrinks the instance to `new_size_gb`, refusing with
    /// [`DriverError::ShrinkBelowUsage`] when it holds more data than that.
    async fn shrink_share(
        &self,
        share: &ShareInstanceRef,
        new_size_gb: u64,
    ) -> Result<(), DriverError>;

    /// After a restart: verifies the instance exists and returns its export locations;
    /// [`DriverError::NotFound`] when it does not.
    async fn ensure_share(
        &self,
        share: &ShareInstanceRef,
    ) -> Result<Vec<ExportLocation>, DriverError>;

    /// Brings the instance's access rules to `all_rules` (Manila's bulk semantic: `add` is
    /// already in `all_rules`, `delete` is not). Returns one result per rule of `all_rules`,
    /// keyed by rule id. Deleting a rule that was never applied is not an error.
    async fn update_access(
        &self,
        share: &ShareInstanceRef,
        all_rules: &[AccessRule],
        add: &[AccessRule],
        delete: &[AccessRule],
    ) -> Result<BTreeMap<String, AccessRuleResult>, DriverError>;

    /// Bytes of data the instance holds.
    async fn get_share_usage_bytes(&self, share: &ShareInstanceRef) -> Result<u64, DriverError>;

    /// Creates a secondary replica of `ctx.active` and runs its initial sync. Returns the
    /// replica's state (`in_sync` once the sync is clean) and its export locations (none
    /// for `dr`, read-only ones for `readable`). Idempotent: a replica that already exists
    /// is brought up to date instead. Drivers without replication refuse with
    /// [`DriverError::InvalidInput`], as Manila's base driver raises `NotImplementedError`.
    async fn create_replica(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
    ) -> Result<ReplicaResult, DriverError> {
        let _ = (replica, ctx);
        Err(DriverError::InvalidInput(format!(
            "the {} driver does not support replication",
            self.driver_name()
        )))
    }

    /// Deletes a replica (secondary or former active) and its data. Idempotent.
    async fn delete_replica(&self, replica: &ReplicaRef) -> Result<(), DriverError> {
        let _ = replica;
        Err(DriverError::InvalidInput(format!(
            "the {} driver does not support replication",
            self.driver_name()
        )))
    }

    /// Makes `replica` the active one: quiesces `ctx.active` for at most `quiesce_wait`,
    /// runs a final sync when the active is reachable (from the last good version when it
    /// is not), and turns the replica's data into a writable share. Returns the promoted
    /// replica's result (`active`, its new export locations). The former active is not
    /// touched here: it belongs to its own back end, which demotes it on its next
    /// `update_replica_state`.
    async fn promote_replica(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        quiesce_wait: Option<std::time::Duration>,
    ) -> Result<ReplicaResult, DriverError> {
        let _ = (replica, ctx, quiesce_wait);
        Err(DriverError::InvalidInput(format!(
            "the {} driver does not support replication",
            self.driver_name()
        )))
    }

    /// Brings a non-active replica up to date from `ctx.active` (periodic task and
    /// `resync`) and reports its state. A replica whose data is still laid out as an active
    /// share (a former active after a promotion) is first turned into a secondary.
    async fn update_replica_state(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
    ) -> Result<ReplicaResult, DriverError> {
        let _ = (replica, ctx);
        Err(DriverError::InvalidInput(format!(
            "the {} driver does not support replication",
            self.driver_name()
        )))
    }

    /// Takes a point-in-time, read-only snapshot of `snapshot.share_instance` (the active
    /// replica, for a replicated share). Idempotent: an instance that exists is returned as
    /// is.
    async fn create_snapshot(&self, snapshot: &SnapshotRef) -> Result<SnapshotResult, DriverError> {
        let _ = snapshot;
        unsupported(self.driver_name(), "snapshots")
    }

    /// Deletes a snapshot instance and its data. Idempotent: a missing one is success.
    async fn delete_snapshot(&self, snapshot: &SnapshotRef) -> Result<(), DriverError> {
        let _ = snapshot;
        unsupported(self.driver_name(), "snapshots")
    }

    /// Restores `snapshot.share_instance` to the snapshot's contents (Manila 2.27 revert; only
    /// to the share's latest snapshot, which the API checks).
    async fn revert_to_snapshot(&self, snapshot: &SnapshotRef) -> Result<(), DriverError> {
        let _ = snapshot;
        unsupported(self.driver_name(), "reverting to a snapshot")
    }

    /// Creates `share` as a copy of `snapshot` and returns its export locations. The snapshot
    /// may be on another pool (`snapshot.host`); a driver that cannot copy from there
    /// refuses with [`DriverError::InvalidInput`]. Idempotent like `create_share`.
    async fn create_share_from_snapshot(
        &self,
        share: &ShareInstanceRef,
        snapshot: &SnapshotRef,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        let _ = (share, snapshot);
        unsupported(self.driver_name(), "creating a share from a snapshot")
    }

    /// Brings a mountable snapshot's access rules to `all_rules` (same contract as
    /// `update_access`; snapshot rules are always read-only).
    async fn snapshot_update_access(
        &self,
        snapshot: &SnapshotRef,
        all_rules: &[AccessRule],
        add: &[AccessRule],
        delete: &[AccessRule],
    ) -> Result<BTreeMap<String, AccessRuleResult>, DriverError> {
        let _ = (snapshot, all_rules, add, delete);
        unsupported(self.driver_name(), "mountable snapshots")
    }

    /// Adopts a snapshot that exists on the back end (`snapshot.provider_location` names it)
    /// as a snapshot instance of `snapshot.share_instance`.
    async fn manage_existing_snapshot(
        &self,
        snapshot: &SnapshotRef,
        driver_options: &BTreeMap<String, String>,
    ) -> Result<SnapshotResult, DriverError> {
        let _ = (snapshot, driver_options);
        unsupported(self.driver_name(), "managing snapshots")
    }

    /// Forgets a snapshot instance and leaves its data on the back end.
    async fn unmanage_snapshot(&self, snapshot: &SnapshotRef) -> Result<(), DriverError> {
        let _ = snapshot;
        unsupported(self.driver_name(), "unmanaging snapshots")
    }

    /// Creates the snapshot instance `snapshot` of the secondary `replica`, holding exactly
    /// what `active_snapshot` (the active replica's instance of the same snapshot, already
    /// available) holds. May answer [`SnapshotProgress::Creating`] and finish in
    /// `update_replica_snapshot`.
    async fn create_replica_snapshot(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        snapshot: &SnapshotRef,
        active_snapshot: &SnapshotRef,
    ) -> Result<SnapshotResult, DriverError> {
        let _ = (replica, ctx, snapshot, active_snapshot);
        unsupported(self.driver_name(), "snapshots of replicated shares")
    }

    /// Periodic update of a secondary's snapshot instance that is not yet available (same
    /// arguments and answer as `create_replica_snapshot`).
    async fn update_replica_snapshot(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        snapshot: &SnapshotRef,
        active_snapshot: &SnapshotRef,
    ) -> Result<SnapshotResult, DriverError> {
        let _ = (replica, ctx, snapshot, active_snapshot);
        unsupported(self.driver_name(), "snapshots of replicated shares")
    }

    /// Adopts existing data as the share instance `share` (Manila's `manage_existing`).
    /// `export_path` is what the admin named (the driver decides which paths it accepts);
    /// the data must stay where it is or be moved without copying.
    async fn manage_existing(
        &self,
        share: &ShareInstanceRef,
        export_path: &str,
        driver_options: &BTreeMap<String, String>,
    ) -> Result<ManageResult, DriverError> {
        let _ = (share, export_path, driver_options);
        unsupported(self.driver_name(), "managing shares")
    }

    /// Forgets the share instance and leaves its data on the back end (Manila's `unmanage`).
    async fn unmanage(&self, share: &ShareInstanceRef) -> Result<(), DriverError> {
        let _ = share;
        unsupported(self.driver_name(), "unmanaging shares")
    }
}

/// Bytes in a GiB.
pub(crate) const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Bytes in a GiB, for exact size arithmetic.
pub(crate) const GIB_BYTES: u64 = 1024 * 1024 * 1024;

/// Checks `share_proto` is one the drivers serve (Manila's dummy refuses others the same way).
pub(crate) fn check_protocol(share: &ShareInstanceRef) -> Result<(), DriverError> {
    if share.share_proto.eq_ignore_ascii_case("NFS")
        || share.share_proto.eq_ignore_ascii_case("CIFS")
    {
        Ok(())
    } else {
        Err(DriverError::InvalidInput(format!(
            "unsupported share protocol {:?}: expected NFS or CIFS",
            share.share_proto
        )))
    }
}

/// Checks a resize goes in the announced direction. Equal sizes pass both ways so a retried
/// operation (the size was already changed before a crash) succeeds.
pub(crate) fn check_resize(current_gb: u64, new_gb: u64, extend: bool) -> Result<(), DriverError> {
    let (ok, verb) = if extend {
        (new_gb >= current_gb, "extend")
    } else {
        (new_gb <= current_gb, "shrink")
    };
    if new_gb == 0 {
        return Err(DriverError::InvalidInput(
            "a share size must be at least 1 GiB".to_owned(),
        ));
    }
    if ok {
        Ok(())
    } else {
        Err(DriverError::InvalidInput(format!(
            "cannot {verb} a {current_gb} GiB share to {new_gb} GiB"
        )))
    }
}

/// Rounds GiB to two decimals, as Manila's drivers report them.
pub(crate) fn round_gb(gb: f64) -> f64 {
    (gb * 100.0).round() / 100.0
}

/// Splits the rules an `update_access` call leaves on the share: `all_rules`, plus any rule of
/// `add` the caller forgot to put in it, minus every rule of `delete`.
pub(crate) fn effective_rules(
    all_rules: &[AccessRule],
    add: &[AccessRule],
    delete: &[AccessRule],
) -> Vec<AccessRule> {
    let mut rules: Vec<AccessRule> = all_rules.to_vec();
    for rule in add {
        if !rules.iter().any(|r| r.id == rule.id) {
            rules.push(rule.clone());
        }
    }
    rules.retain(|r| !delete.iter().any(|d| d.id == r.id));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str) -> AccessRule {
        AccessRule {
            id: id.to_owned(),
            access_type: "ip".to_owned(),
            access_to: "10.0.0.1".to_owned(),
            access_level: "rw".to_owned(),
        }
    }

    #[test]
    fn effective_rules_merge_add_and_drop_delete() {
        let ids = |rules: Vec<AccessRule>| rules.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(effective_rules(
                &[rule("a"), rule("b")],
                &[rule("b"), rule("c")],
                &[rule("a")]
            )),
            ["b", "c"]
        );
        assert!(effective_rules(&[], &[], &[rule("never-applied")]).is_empty());
    }

    #[test]
    fn resize_direction_and_retries() {
        assert!(check_resize(1, 2, true).is_ok());
        assert!(check_resize(2, 2, true).is_ok());
        assert!(check_resize(2, 2, false).is_ok());
        assert!(matches!(
            check_resize(2, 1, true),
            Err(DriverError::InvalidInput(_))
        ));
        assert!(matches!(
            check_resize(1, 2, false),
            Err(DriverError::InvalidInput(_))
        ));
        assert!(matches!(
            check_resize(1, 0, false),
            Err(DriverError::InvalidInput(_))
        ));
    }

    #[test]
    fn protocols() {
        let mut share = ShareInstanceRef {
            id: "x".into(),
            share_id: "y".into(),
            pool: "p".into(),
            size_gb: 1,
            share_proto: "NFS".into(),
        };
        assert!(check_protocol(&share).is_ok());
        share.share_proto = "cifs".into();
        assert!(check_protocol(&share).is_ok());
        share.share_proto = "GLUSTERFS".into();
        assert!(matches!(
            check_protocol(&share),
            Err(DriverError::InvalidInput(_))
        ));
    }
}
