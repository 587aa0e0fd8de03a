//! Rows and inputs for shares and what hangs off them: share instances (replicas), export
//! locations, access rules with their per-instance states, share metadata, quotas with
//! reservations, and user messages.
//!
//! Persisted as in Manila's models, but with hard deletes: a removed row is gone, never
//! marked `deleted`. Derived, never stored: a share's `status`, `host`, zone, `has_replicas`
//! and `access_rules_status` (the caller computes them from the instances, see
//! `replication.md` §10), an access rule's aggregate `state` (worst of
//! [`AccessRuleRow::instance_states`]), and effective quota limits (config defaults plus
//! [`Store::get_quota_overrides`](crate::Store::get_quota_overrides)).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::NewOperation;

/// A share: the user-visible object. Its state (status, host, zone, network) lives on its
/// instances; the share keeps what the user asked for and what was fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRow {
    /// Share id, chosen by the caller so the API can answer without reading back.
    pub id: Uuid,
    /// Owning project: visibility, quotas and policy targets.
    pub project_id: String,
    /// Creating user, shown from API 2.16.
    pub user_id: String,
    /// Display name; Manila allows null and duplicates.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Size in GiB; quota `gigabytes` and pool capacity are counted from it.
    pub size_gb: i64,
    /// Protocol (`NFS`, `CIFS`, ...), upper case.
    pub share_proto: String,
    /// Share type the share was created with (instances carry their own copy).
    pub share_type_id: Option<Uuid>,
    /// Visible to every project when true.
    pub is_public: bool,
    /// The type's `replication_type` extra spec, copied at creation: every replication check
    /// uses this copy, never the type's current spec.
    pub replication_type: Option<String>,
    /// Snapshot the share was created from.
    pub snapshot_id: Option<Uuid>,
    /// Share group the share belongs to.
    pub share_group_id: Option<Uuid>,
    /// Long-running task marker (migration), shown as `task_state`; blocks some actions.
    pub task_state: Option<String>,
    /// User metadata, sorted by key.
    pub metadata: BTreeMap<String, String>,
    /// Creation time; lists are ordered by it.
    pub created_at: DateTime<Utc>,
    /// Last update of the share row itself; null until first updated.
    pub updated_at: Option<DateTime<Utc>>,
    /// In the recycle bin (Manila 2.69 `soft_delete`): hidden from lists, purged at
    /// `scheduled_to_be_deleted_at` unless restored.
    #[serde(default)]
    pub is_soft_deleted: bool,
    /// When the purge deletes a soft-deleted share; null otherwise.
    #[serde(default)]
    pub scheduled_to_be_deleted_at: Option<DateTime<Utc>>,
}

/// Input of `Store::create_share`: the share, its first instance, the quota charge and the
/// operations to enqueue, all written in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewShare {
    /// The share row, stored as given (`created_at` is also the instance's creation time;
    /// `updated_at` is normally `None`). Its metadata is stored with it.
    pub share: ShareRow,
    /// The first instance.
    pub instance: NewShareInstance,
    /// Usage charged directly to `in_use` (e.g. `shares +1`, `gigabytes +size`);
    /// `QuotaExceeded` rolls everything back.
    pub quota: QuotaRequest,
    /// Work to enqueue (e.g. scheduling the instance), committed with the share.
    pub operations: Vec<NewOperation>,
}

/// A share instance to create (the share id and creation time come from the call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShareInstance {
    /// Instance id, chosen by the caller.
    pub id: Uuid,
    /// Initial status, normally `creating`.
    pub status: String,
    /// Initial replica state: `None` for the first instance of any share, `out_of_sync` for
    /// a new secondary replica.
    pub replica_state: Option<String>,
    /// `host@backend#pool`, or `""` until the scheduler places it.
    pub host: String,
    /// Requested zone name, if any; the scheduler may set it.
    pub availability_zone: Option<String>,
    /// Share type of the instance.
    pub share_type_id: Option<Uuid>,
    /// Share network (driver-handled share servers).
    pub share_network_id: Option<Uuid>,
    /// Share server, when already known.
    pub share_server_id: Option<Uuid>,
    /// Whether the backend gets every rule as read-only (secondaries of `readable` shares).
    pub cast_rules_to_readonly: bool,
    /// Initial access rules status, normally `active`.
    pub access_rules_status: String,
    /// Initial progress text, normally `None` (`100%` once created).
    pub progress: Option<String>,
    /// Replica metadata given at creation (API 2.95 `share_replica.metadata`), stored in
    /// `share_instance_metadata` in the same transaction as the instance. Normally empty for
    /// the first instance of a share.
    pub metadata: BTreeMap<String, String>,
}

/// A share instance: one copy of a share on one pool. The first instance is the share's
/// primary; later ones are replicas (`replication.md` §1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInstanceRow {
    /// Instance id (== replica id).
    pub id: Uuid,
    /// Parent share.
    pub share_id: Uuid,
    /// `creating`, `available`, `error`, `deleting`, ...; state changes are compare-and-set.
    pub status: String,
    /// `active`, `in_sync`, `out_of_sync`, `error`, or null for non-replicated instances.
    pub replica_state: Option<String>,
    /// `host@backend#pool`; `""` until scheduled. Decides which share service acts on it.
    pub host: String,
    /// Zone name.
    pub availability_zone: Option<String>,
    /// Share type of this instance.
    pub share_type_id: Option<Uuid>,
    /// Share network.
    pub share_network_id: Option<Uuid>,
    /// Share server hosting it (driver-handled share servers).
    pub share_server_id: Option<Uuid>,
    /// When true, the backend receives every rule as read-only.
    pub cast_rules_to_readonly: bool,
    /// `active`, `syncing` or `error`: whether the backend's rules match the stored ones.
    pub access_rules_status: String,
    /// Progress text (`100%` once created), shown from 2.54.
    pub progress: Option<String>,
    /// Creation time; instances of a share are listed in creation order.
    pub created_at: DateTime<Utc>,
    /// Last change; null until first updated.
    pub updated_at: Option<DateTime<Utc>>,
    /// When the scheduler placed it.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// When the backend finished creating it.
    pub launched_at: Option<DateTime<Utc>>,
    /// When it was deleted on the backend.
    pub terminated_at: Option<DateTime<Utc>>,
    /// Promotions of the share when this instance last became its active replica (0 for
    /// the first active): a node serves an active's data to peers only at this epoch, so a
    /// former active that comes back cannot pass for the active.
    pub replica_epoch: i64,
}

/// Input of `Store::update_share_instance_if`: `None` leaves a field unchanged,
/// `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareInstanceUpdate {
    /// New status.
    pub status: Option<String>,
    /// New replica state.
    pub replica_state: Option<Option<String>>,
    /// New host (`host@backend#pool`).
    pub host: Option<String>,
    /// New zone name.
    pub availability_zone: Option<Option<String>>,
    /// New share server (set when a driver-handled server is provisioned).
    pub share_server_id: Option<Option<Uuid>>,
    /// New read-only cast flag (changes on promotion).
    pub cast_rules_to_readonly: Option<bool>,
    /// New access rules status.
    pub access_rules_status: Option<String>,
    /// New progress text.
    pub progress: Option<Option<String>>,
    /// Set the launch time.
    pub launched_at: Option<DateTime<Utc>>,
    /// Set the termination time.
    pub terminated_at: Option<DateTime<Utc>>,
    /// Set the scheduling time.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// New replica epoch (a promoted replica gets one above every other of its share).
    pub replica_epoch: Option<i64>,
}

/// Input of `Store::update_share`: `None` leaves a field unchanged, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareUpdate {
    /// New display name.
    pub name: Option<Option<String>>,
    /// New display description.
    pub description: Option<Option<String>>,
    /// New visibility.
    pub is_public: Option<bool>,
    /// New size (extend/shrink); quota is charged separately.
    pub size_gb: Option<i64>,
    /// New task state.
    pub task_state: Option<Option<String>>,
}

/// Filter of `Store::list_shares`. The caller filters, sorts and paginates the rest in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareListFilter {
    /// `Some(project)`: that project's shares. `None`: every project's (admin `all_tenants`).
    pub project_id: Option<String>,
    /// With `project_id`, also the public shares of other projects.
    pub include_public: bool,
}

/// Filter of `Store::list_all_share_instances` (Manila's `share_instance_get_all`): every
/// condition that is `Some` must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareInstanceFilter {
    /// Instances with an export location of this id.
    pub export_location_id: Option<Uuid>,
    /// Instances with an export location of exactly this path.
    pub export_location_path: Option<String>,
    /// Placed on this host: `host` exactly, or any pool of it (`host#...`).
    pub host: Option<String>,
    /// In this status.
    pub status: Option<String>,
    /// On this share server.
    pub share_server_id: Option<Uuid>,
}

/// An export location of a share instance: a path clients mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLocationRow {
    /// Stable id: kept while the driver keeps reporting the same path, so clients' cached
    /// ids stay valid.
    pub id: Uuid,
    /// Instance exporting it.
    pub share_instance_id: Uuid,
    /// What to mount, e.g. `10.0.0.1:/shares/share-<id>`.
    pub path: String,
    /// Hidden from non-admin users.
    pub is_admin_only: bool,
    /// The driver's preferred path among several.
    pub preferred: bool,
    /// Driver metadata of the location (shown from 2.87).
    pub metadata: BTreeMap<String, String>,
    /// When the path was first reported.
    pub created_at: DateTime<Utc>,
    /// When the driver last reported it (as Manila, set on every replacement that keeps it).
    pub updated_at: Option<DateTime<Utc>>,
}

/// One export location in `Store::replace_export_locations`, in the driver's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExportLocation {
    /// Path; the identity of a location across replacements.
    pub path: String,
    /// Hidden from non-admin users.
    pub is_admin_only: bool,
    /// Preferred path.
    pub preferred: bool,
    /// Driver metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Input of `Store::insert_access_rule`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccessRule {
    /// Rule id, chosen by the caller.
    pub id: Uuid,
    /// Share the rule belongs to.
    pub share_id: Uuid,
    /// `ip`, `user`, `cert` or `cephx` (validated by the caller).
    pub access_type: String,
    /// Who gets access: a network, user name, certificate CN or cephx id.
    pub access_to: String,
    /// `rw` or `ro`.
    pub access_level: String,
    /// Secret returned by the backend (cephx); usually `None` at creation.
    pub access_key: Option<String>,
    /// Rule metadata (2.45+).
    pub metadata: BTreeMap<String, String>,
    /// Instances the rule applies to (every instance of the share); each gets a
    /// `queued_to_apply` mapping.
    pub instance_ids: Vec<Uuid>,
    /// Work to enqueue (applying the rule on each backend), committed with the rule.
    pub operations: Vec<NewOperation>,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// An access rule with its per-instance states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRuleRow {
    /// Rule id.
    pub id: Uuid,
    /// Share the rule belongs to.
    pub share_id: Uuid,
    /// `ip`, `user`, `cert` or `cephx`.
    pub access_type: String,
    /// Target of the rule; unique per share together with `access_type`.
    pub access_to: String,
    /// `rw` or `ro`.
    pub access_level: String,
    /// Backend secret (cephx).
    pub access_key: Option<String>,
    /// Rule metadata.
    pub metadata: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change of the rule itself.
    pub updated_at: Option<DateTime<Utc>>,
    /// State of the rule on each instance (`queued_to_apply`, `applying`, `active`,
    /// `queued_to_deny`, `denying`, `error`); the API shows the worst one.
    pub instance_states: BTreeMap<Uuid, String>,
}

/// A quota check and change for one project: what to add per resource, and the limits to
/// respect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaRequest {
    /// Project charged.
    pub project_id: String,
    /// Change per resource (`shares`, `gigabytes`, `share_replicas`, ...). Positive deltas
    /// are checked against the limit; zero and negative ones never fail.
    pub deltas: BTreeMap<String, i64>,
    /// Effective hard limit per resource, -1 = unlimited, computed by the caller from the
    /// config defaults and the project's overrides. A resource missing here is unlimited.
    pub limits: BTreeMap<String, i64>,
}

/// The quota usage the removal of one share instance gives back. The per-GiB part is sized
/// by the share's `size_gb` as read in the deleting transaction, under the share's row lock,
/// so an extend or shrink committed after the caller read the share is released at the size
/// it left, not the size the caller saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceRelease {
    /// Deltas applied as they are (`shares`, `share_replicas`), with the project charged.
    pub fixed: QuotaRequest,
    /// Deltas per GiB of the share (`gigabytes`, `replica_gigabytes`, usually -1).
    pub per_gib: BTreeMap<String, i64>,
}

impl InstanceRelease {
    /// The request to apply for a share of `size_gb`.
    pub fn sized(&self, size_gb: i64) -> QuotaRequest {
        let mut req = self.fixed.clone();
        for (resource, per_gib) in &self.per_gib {
            *req.deltas.entry(resource.clone()).or_default() += per_gib.saturating_mul(size_gb);
        }
        req
    }
}

impl From<QuotaRequest> for InstanceRelease {
    fn from(fixed: QuotaRequest) -> Self {
        Self {
            fixed,
            per_gib: BTreeMap::new(),
        }
    }
}

/// The end of a successful extend or shrink, done in one transaction under the share's row
/// lock: the new size, the committed reservations and a correction for replicas added or
/// removed since the reservations were counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResizeCommit {
    /// Share resized.
    pub share_id: Uuid,
    /// Its new size in GiB.
    pub new_size: i64,
    /// Reservations taken when the resize was accepted.
    pub reservations: Vec<Uuid>,
    /// Replicas (`replica_state` set) the reservations were made for; `None` makes no
    /// correction (an operation queued before this was recorded).
    pub reserved_replicas: Option<i64>,
    /// Usage per replica per GiB of size change (`replica_gigabytes` and its scopes: 1),
    /// with the project charged. Charged × (replicas now − `reserved_replicas`) × (new
    /// size − old size), and only when the reservations were still there to commit, so a
    /// re-run changes nothing.
    pub per_replica_gib: QuotaRequest,
}

/// Usage of one resource by one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsage {
    /// Resource name.
    pub resource: String,
    /// Committed usage.
    pub in_use: i64,
    /// Held by pending reservations (positive deltas only, as in Manila).
    pub reserved: i64,
}

/// A user message (`GET /v2/messages`): a backend failure explained to the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    /// Message id.
    pub id: Uuid,
    /// Project that sees it.
    pub project_id: String,
    /// Request that led to it, if known.
    pub request_id: Option<String>,
    /// `SHARE`, `SHARE_REPLICA`, ...
    pub resource_type: String,
    /// Id of the resource concerned.
    pub resource_id: Option<String>,
    /// Manila action id (`001` allocate host, `002` create, ...).
    pub action_id: String,
    /// Manila detail id (`001` unknown error, ...).
    pub detail_id: String,
    /// `ERROR`, `WARNING` or `INFO`.
    pub message_level: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// After this, the message is removed by `Store::delete_expired_messages`.
    pub expires_at: DateTime<Utc>,
}

/// One compare-and-set of [`crate::Store::update_share_instances_if`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareInstanceCas {
    /// Instance to update.
    pub id: Uuid,
    /// Statuses the instance must have (any when empty).
    pub expected_statuses: Vec<String>,
    /// `replica_state` the instance must have, when `Some` (`Some(None)` = must be null).
    pub expected_replica_state: Option<Option<String>>,
    /// Changes to apply.
    pub update: ShareInstanceUpdate,
}

/// Where a non-active replica stands ([`Store::list_replica_sync_status`](crate::Store::list_replica_sync_status)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSyncStatus {
    /// The replica (share instance).
    pub instance_id: Uuid,
    /// Its `replica_state` (`in_sync`, `out_of_sync` or `error`).
    pub replica_state: String,
    /// Its newest sync, if it had one.
    pub latest: Option<ReplicationRecord>,
    /// The source point of its newest `clean` sync, if it had one.
    pub last_clean_source_point: Option<DateTime<Utc>>,
}

/// One sync of a replica (`replication_history`), as a driver reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRecord {
    /// Record id.
    pub id: Uuid,
    /// The replica that was synchronised.
    pub share_instance_id: Uuid,
    /// The active replica it was synchronised from, if known.
    pub source_instance_id: Option<Uuid>,
    /// Why it ran: `create`, `periodic`, `resync`, `promote`.
    pub trigger: String,
    /// Start of the sync.
    pub started_at: DateTime<Utc>,
    /// End of the sync.
    pub finished_at: DateTime<Utc>,
    /// Point in time of the source the published version reflects.
    pub source_point: Option<DateTime<Utc>>,
    /// Version published after the sync.
    pub version: i64,
    /// Entries in the source.
    pub files_total: i64,
    /// Bytes of regular files in the source.
    pub bytes_total: i64,
    /// Entries written.
    pub files_transferred: i64,
    /// File bytes written.
    pub bytes_transferred: i64,
    /// Entries removed.
    pub files_deleted: i64,
    /// `clean`, `inconsistent` or `failed`.
    pub outcome: String,
    /// Error text or notes.
    pub detail: Option<String>,
    /// Bytes received from the active's node (0 when the sync read this host's files).
    pub wire_bytes: i64,
}
