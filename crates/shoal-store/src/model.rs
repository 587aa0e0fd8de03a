//! Rows and inputs of the store: what is persisted, one struct per table (`*Row`), plus the
//! inputs of the write methods (`New*`, `ServiceHeartbeat`, `ClaimRequest`) and list filters.
//!
//! Persisted: share types with their extra specs and project access, availability zones,
//! services with their last heartbeat, per-pool capabilities, and durable operations.
//! Derived, never stored: whether a service is up (the caller compares `updated_at` with its
//! own `now` and `service_down_time`), whether an AZ is "in service" (computed from the
//! services table), and share type visibility (public flag plus access list).
//!
//! Timestamps are `DateTime<Utc>` truncated to microseconds, the precision both engines keep.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Input of `Store::insert_share_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShareType {
    /// Id chosen by the caller (a v4 UUID), so the API can answer before reading back.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text; Manila allows null.
    pub description: Option<String>,
    /// Public types are visible to every project; private ones only to projects on the access list.
    pub is_public: bool,
    /// Extra specs stored in the same transaction as the type.
    pub extra_specs: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A share type with its extra specs (the project access list is read separately).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareTypeRow {
    /// Share type id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text, may be null.
    pub description: Option<String>,
    /// Visible to every project when true.
    pub is_public: bool,
    /// All extra specs, sorted by key (required ones such as `driver_handles_share_servers`
    /// are validated by the caller, not here).
    pub extra_specs: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update of the type itself; null until it is first updated, as in Manila.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Input of `Store::update_share_type`: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareTypeUpdate {
    /// New unique name.
    pub name: Option<String>,
    /// New description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// New visibility. Access grants are kept either way (they matter again if the type
    /// goes back to private).
    pub is_public: Option<bool>,
}

/// Filter of `Store::list_share_types`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareTypeFilter {
    /// `Some(project)`: only types public or shared with that project. `None`: no visibility
    /// filter (admin view).
    pub visible_to_project: Option<String>,
    /// `Some(flag)`: only types whose `is_public` equals `flag`. `None`: all.
    pub is_public: Option<bool>,
}

/// An availability zone. Zones are created on demand, by the first service reporting in one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityZoneRow {
    /// Zone id (UUID), what Manila shows as `id`.
    pub id: Uuid,
    /// Unique zone name, what users pass as `availability_zone`.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Null until the zone is modified (nothing modifies zones yet).
    pub updated_at: Option<DateTime<Utc>>,
}

/// Input of `Store::record_service_heartbeat`: one periodic report of a running service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHeartbeat {
    /// Host name; for share services `host@backend`.
    pub host: String,
    /// Manila binary name, e.g. `manila-share`, `manila-scheduler`.
    pub binary: String,
    /// Message topic in Manila; kept for the os-services view.
    pub topic: String,
    /// Zone name; the zone is created if it does not exist yet.
    pub availability_zone: String,
    /// Heartbeat time; becomes the row's `updated_at`.
    pub now: DateTime<Utc>,
    /// `host:port` of the node's replication endpoint (share services of nodes that serve
    /// one); peers read an active replica's data there.
    pub replication_address: Option<String>,
}

/// A service row, joined with its availability zone name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRow {
    /// Integer id, as Manila's os-services shows it.
    pub id: i64,
    /// Host name.
    pub host: String,
    /// Binary name; (host, binary) is unique.
    pub binary: String,
    /// Topic.
    pub topic: String,
    /// Id of the zone the service last reported in.
    pub availability_zone_id: Uuid,
    /// Name of that zone.
    pub availability_zone: String,
    /// Disabled by an operator; a disabled share service gets no new shares.
    pub disabled: bool,
    /// Why it was disabled, if given.
    pub disabled_reason: Option<String>,
    /// Number of heartbeats received.
    pub report_count: i64,
    /// First heartbeat.
    pub created_at: DateTime<Utc>,
    /// Last heartbeat: the service is up when `now - updated_at <= service_down_time`.
    pub updated_at: DateTime<Utc>,
    /// `host:port` of the node's replication endpoint, as last published.
    pub replication_address: Option<String>,
}

/// Filter of `Store::list_services`; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFilter {
    /// Exact host.
    pub host: Option<String>,
    /// Exact binary.
    pub binary: Option<String>,
}

/// Latest reported state of one storage pool, as the scheduler reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolRow {
    /// `host@backend#pool`, the primary key and the value written to an instance's `host`.
    pub name: String,
    /// `host@backend`, the share service that owns the pool.
    pub host: String,
    /// Back-end name.
    pub backend: String,
    /// Pool name.
    pub pool: String,
    /// Availability zone name the pool serves.
    pub availability_zone: String,
    /// JSON object of capabilities as the driver reports them (total/free/allocated capacity,
    /// reserved_percentage, replication_type, replication_domain,
    /// driver_handles_share_servers, ...). Stored whole so new driver keys need no migration.
    pub capabilities: serde_json::Value,
    /// When the driver last reported; the scheduler ignores stale pools.
    pub updated_at: DateTime<Utc>,
}

/// How many operations of one kind are in one state ([`Store::count_operations_by_kind`](crate::Store::count_operations_by_kind)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationCount {
    /// Handler name.
    pub kind: String,
    /// The state counted.
    pub state: OperationState,
    /// Number of operations.
    pub count: i64,
}

/// Life cycle of an operation: `pending` → `running` → `done` | `failed`, with `running` →
/// `pending` on a retryable failure and `running` → `running` (new owner) on lease expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationState {
    /// Waiting to be claimed (possibly not before `not_before`).
    Pending,
    /// Claimed by `claimed_by` until `lease_until`.
    Running,
    /// Finished successfully.
    Done,
    /// Finished with an error that will not be retried.
    Failed,
}

impl OperationState {
    /// The text stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Pending => "pending",
            OperationState::Running => "running",
            OperationState::Done => "done",
            OperationState::Failed => "failed",
        }
    }
}

impl fmt::Display for OperationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OperationState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(OperationState::Pending),
            "running" => Ok(OperationState::Running),
            "done" => Ok(OperationState::Done),
            "failed" => Ok(OperationState::Failed),
            other => Err(format!("unknown operation state {other:?}")),
        }
    }
}

/// Input of `Store::insert_operation`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOperation {
    /// What to do, e.g. `create_share_instance`; the worker dispatches on it.
    pub kind: String,
    /// Id of the object the operation acts on (share instance id, ...).
    pub target_id: String,
    /// Share host (`host@backend`) that must run it; `None` for scheduler work.
    pub host: Option<String>,
    /// Arguments for the handler.
    pub payload: serde_json::Value,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// A durable unit of asynchronous work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationRow {
    /// Increasing id; claims take the lowest claimable id first.
    pub id: i64,
    /// Handler name.
    pub kind: String,
    /// Object acted on.
    pub target_id: String,
    /// Share host that must run it; `None` = scheduler work.
    pub host: Option<String>,
    /// Handler arguments.
    pub payload: serde_json::Value,
    /// Current state.
    pub state: OperationState,
    /// Number of claims so far (including the current one), for backoff and give-up decisions.
    pub attempts: i32,
    /// Worker that claimed it last; kept after completion for forensics.
    pub claimed_by: Option<String>,
    /// While `running`, the claim is valid until then; after it, another worker may take over.
    pub lease_until: Option<DateTime<Utc>>,
    /// A `pending` operation is not claimable before this time (retry backoff).
    pub not_before: Option<DateTime<Utc>>,
    /// Error text of the last failed attempt.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last state change.
    pub updated_at: DateTime<Utc>,
}

/// A wake-up for the operation workers, from [`Store::listen_for_operations`](crate::Store::listen_for_operations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationNotice {
    /// An operation of `kind` for `host` (`None` = scheduler work) was enqueued and its
    /// transaction committed, on this node or another.
    Enqueued {
        /// The operation's kind.
        kind: String,
        /// Share host (`host@backend`) that must run it; `None` for scheduler work.
        host: Option<String>,
    },
    /// The listener (re)connected: notices sent while it was away are lost, so every queue
    /// may hold work nobody was told about.
    Listening,
}

/// Receiving end of [`Store::listen_for_operations`](crate::Store::listen_for_operations).
/// Dropping it stops the listener.
pub type OperationNotices = tokio::sync::mpsc::Receiver<OperationNotice>;

/// Input of `Store::claim_next_operation`.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// Claiming worker's identity (e.g. `host@backend/<uuid>`), stored in `claimed_by`.
    pub worker: &'a str,
    /// `Some(host)`: operations for that share host. `None`: scheduler operations (host null).
    pub host: Option<&'a str>,
    /// Only these kinds, when given. An empty slice matches nothing.
    pub kinds: Option<&'a [&'a str]>,
    /// Current time: decides expired leases and `not_before`.
    pub now: DateTime<Utc>,
    /// Lease length; the worker must renew before `now + lease`.
    pub lease: Duration,
}
