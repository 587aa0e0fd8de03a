//! Rows and inputs for share snapshots: the snapshot (what the user asked for), its
//! instances (one per share instance, so one per replica of a replicated share), snapshot
//! metadata, the export locations of mountable snapshot instances, and snapshot access rules
//! with their per-instance states.
//!
//! Persisted as in Manila's `share_snapshots`, `share_snapshot_instances`,
//! `share_snapshot_metadata`, `share_snapshot_instance_export_locations`,
//! `share_snapshot_access_map` and `share_snapshot_instance_access_map`, with hard deletes.
//! Derived, never stored: a snapshot's `status` and `progress` (computed by the caller from
//! its instances, as Manila's `ShareSnapshot.status` / `aggregate_status` properties) and an
//! access rule's aggregate state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::NewOperation;
use crate::model_shares::QuotaRequest;

/// A share snapshot with its metadata and instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRow {
    /// Snapshot id, chosen by the caller.
    pub id: Uuid,
    /// The share it is a snapshot of.
    pub share_id: Uuid,
    /// Owning project (the share's): visibility, quotas and policy targets.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Size in GiB (quota `snapshot_gigabytes`).
    pub size_gb: i64,
    /// The share's size when the snapshot was taken.
    pub share_size: i64,
    /// The share's protocol.
    pub share_proto: String,
    /// User metadata (2.73+), sorted by key.
    pub metadata: BTreeMap<String, String>,
    /// Creation time; lists are ordered by it.
    pub created_at: DateTime<Utc>,
    /// Last update of the snapshot row; null until first updated.
    pub updated_at: Option<DateTime<Utc>>,
    /// Instances in creation order (read back; ignored on insert).
    pub instances: Vec<SnapshotInstanceRow>,
}

/// One snapshot instance: the snapshot on one share instance (replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInstanceRow {
    /// Snapshot instance id.
    pub id: Uuid,
    /// The snapshot it belongs to.
    pub snapshot_id: Uuid,
    /// The share instance it is of.
    pub share_instance_id: Uuid,
    /// `creating`, `available`, `error`, `deleting`, `error_deleting`, `restoring`, ...
    pub status: String,
    /// Progress text (`0%` .. `100%`).
    pub progress: Option<String>,
    /// What the driver returned when it created or adopted the instance.
    pub provider_location: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change; null until first updated.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A snapshot instance to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshotInstance {
    /// Instance id, chosen by the caller.
    pub id: Uuid,
    /// Snapshot it belongs to.
    pub snapshot_id: Uuid,
    /// Share instance it is of.
    pub share_instance_id: Uuid,
    /// Initial status, normally `creating`.
    pub status: String,
    /// Initial progress, normally `0%`.
    pub progress: Option<String>,
    /// Known provider location (manage), else `None`.
    pub provider_location: Option<String>,
}

/// Input of `Store::create_snapshot`: all written in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSnapshot {
    /// The snapshot row (its `instances` are ignored), stored as given with its metadata.
    pub snapshot: SnapshotRow,
    /// Its instances (their `snapshot_id` must be the snapshot's id).
    pub instances: Vec<NewSnapshotInstance>,
    /// Usage charged directly to `in_use` (`snapshots +1`, `snapshot_gigabytes +size`).
    pub quota: QuotaRequest,
    /// Work to enqueue, committed with the snapshot.
    pub operations: Vec<NewOperation>,
}

/// Filter of `Store::list_snapshots`; the caller filters, sorts and paginates the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotListFilter {
    /// Only this project's snapshots (`None`: every project's).
    pub project_id: Option<String>,
    /// Only snapshots of this share.
    pub share_id: Option<Uuid>,
}

/// Filter of `Store::list_snapshot_instances`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotInstanceFilter {
    /// Only instances of this snapshot.
    pub snapshot_id: Option<Uuid>,
    /// Only instances on this share instance.
    pub share_instance_id: Option<Uuid>,
}

/// Input of `Store::update_snapshot`: `None` leaves a field unchanged, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotUpdate {
    /// New display name.
    pub name: Option<Option<String>>,
    /// New display description.
    pub description: Option<Option<String>>,
    /// New size (manage measures it).
    pub size_gb: Option<i64>,
}

/// Changes of a snapshot instance: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotInstanceUpdate {
    /// New status.
    pub status: Option<String>,
    /// New progress.
    pub progress: Option<Option<String>>,
    /// New provider location.
    pub provider_location: Option<Option<String>>,
}

/// One compare-and-set of `Store::update_snapshot_instances_if`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotInstanceCas {
    /// Instance to update.
    pub id: Uuid,
    /// Statuses it must have (any when empty).
    pub expected_statuses: Vec<String>,
    /// Changes to apply.
    pub update: SnapshotInstanceUpdate,
}

/// An export location of a mountable snapshot instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotExportLocationRow {
    /// Stable id while the driver keeps reporting the path.
    pub id: Uuid,
    /// Snapshot instance exporting it.
    pub snapshot_instance_id: Uuid,
    /// What to mount.
    pub path: String,
    /// Hidden from non-admin users.
    pub is_admin_only: bool,
    /// When first reported.
    pub created_at: DateTime<Utc>,
    /// When last reported.
    pub updated_at: Option<DateTime<Utc>>,
}

/// One snapshot export location in `Store::replace_snapshot_export_locations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshotExportLocation {
    /// Path; the identity of a location across replacements.
    pub path: String,
    /// Hidden from non-admin users.
    pub is_admin_only: bool,
}

/// Input of `Store::insert_snapshot_access_rule`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSnapshotAccessRule {
    /// Rule id, chosen by the caller.
    pub id: Uuid,
    /// Snapshot the rule belongs to.
    pub snapshot_id: Uuid,
    /// `ip`, `user`, `cert` or `cephx`.
    pub access_type: String,
    /// Who gets (read-only) access.
    pub access_to: String,
    /// Snapshot instances the rule applies to; each gets a `queued_to_apply` mapping.
    pub instance_ids: Vec<Uuid>,
    /// Work to enqueue, committed with the rule.
    pub operations: Vec<NewOperation>,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// A snapshot access rule with its per-instance states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotAccessRuleRow {
    /// Rule id.
    pub id: Uuid,
    /// Snapshot the rule belongs to.
    pub snapshot_id: Uuid,
    /// `ip`, `user`, `cert` or `cephx`.
    pub access_type: String,
    /// Target; unique per snapshot together with `access_type`.
    pub access_to: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: Option<DateTime<Utc>>,
    /// State per snapshot instance; the API shows the worst.
    pub instance_states: BTreeMap<Uuid, String>,
}
