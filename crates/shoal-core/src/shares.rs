//! Shares: Manila's `share/api.py` (create, delete, extend, shrink, update, metadata) plus
//! the rules of the `shares` controller that are not about HTTP (list filters, sorting and
//! pagination, which instance the share shows).
//!
//! Persisted (through the store): the share row (what the user asked for, and what was fixed
//! at creation such as `replication_type`), its metadata, and its instances (status, host,
//! zone, export locations). Derived on every read, never stored:
//!
//! * the share's `status`, `availability_zone`, `host`, `share_network_id`,
//!   `share_server_id`, `share_type` and `progress`: those of the instance chosen by
//!   [`select_instance`] (Manila's `Share.instance`), normally the active replica;
//! * `has_replicas` ([`has_replicas`]) and the aggregate `access_rules_status`
//!   ([`access_rules_status`]);
//! * the snapshot capability flags, read from the share type's current extra specs (Manila
//!   copies them onto the share at creation; shoal has no snapshots yet, so the difference is
//!   only visible when a type's specs change after the fact).
//!
//! State changes are compare-and-set on the instance status and enqueue the back-end
//! operation in the same transaction ([`crate::ops`]), so a lost race is a clean refusal and
//! an accepted request always has its work queued. Quotas are charged inside the same
//! transaction as the share rows (create) or reserved and handed to the operation (extend).
//!
//! Policy lives in the API: functions that act on an existing share take a [`Share`] that
//! the caller already looked up and authorized.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use shoal_store::{
    InstanceRelease, NewShare, NewShareInstance, QuotaRequest, ShareInstanceRow,
    ShareInstanceUpdate, ShareListFilter, ShareRow, ShareTypeRow, ShareUpdate, StoreError,
};
use uuid::Uuid;

use crate::quotas::{self, Purpose};
use crate::scheduler_hints;
use crate::share_types::{self, Caller};
use crate::{Core, CoreError, CoreResult, ops};

// ---------------------------------------------------------------------------------------
// Statuses (manila/common/constants.py)
// ---------------------------------------------------------------------------------------

/// `creating`.
pub const STATUS_CREATING: &str = "creating";
/// `creating_from_snapshot` (shown as `creating` below 2.54).
pub const STATUS_CREATING_FROM_SNAPSHOT: &str = "creating_from_snapshot";
/// `available`.
pub const STATUS_AVAILABLE: &str = "available";
/// `error`.
pub const STATUS_ERROR: &str = "error";
/// `inactive`.
pub const STATUS_INACTIVE: &str = "inactive";
/// `deleting`.
pub const STATUS_DELETING: &str = "deleting";
/// `extending`.
pub const STATUS_EXTENDING: &str = "extending";
/// `shrinking`.
pub const STATUS_SHRINKING: &str = "shrinking";
/// `shrinking_possible_data_loss_error`: shrinking may be retried from it.
pub const STATUS_SHRINKING_POSSIBLE_DATA_LOSS_ERROR: &str = "shrinking_possible_data_loss_error";
/// `replication_change`: a replica is being promoted.
pub const STATUS_REPLICATION_CHANGE: &str = "replication_change";
/// `migrating_to`: a migration destination (its export locations are never listed).
pub const STATUS_MIGRATING_TO: &str = "migrating_to";
/// `replica_state` of the active replica.
pub const REPLICA_STATE_ACTIVE: &str = "active";

/// Statuses of work in progress (`constants.TRANSITIONAL_STATUSES`).
pub const TRANSITIONAL_STATUSES: [&str; 15] = [
    "creating",
    "deleting",
    "manage_starting",
    "unmanage_starting",
    "extending",
    "shrinking",
    "migrating",
    "migrating_to",
    "restoring",
    "reverting",
    "server_migrating",
    "server_migrating_to",
    "backup_restoring",
    "backup_creating",
    "ensuring",
];

/// Statuses a share can be deleted from without `force` (`share/api.py::delete`).
pub const DELETABLE_STATUSES: [&str; 3] = [STATUS_AVAILABLE, STATUS_ERROR, STATUS_INACTIVE];

/// Values `reset_status` accepts (`AdminActionsMixin.valid_statuses['status']`), in the
/// order the error message lists them.
pub const RESET_STATUSES: [&str; 8] = [
    "available",
    "creating",
    "deleting",
    "error",
    "error_deleting",
    "migrating",
    "migrating_to",
    "server_migrating",
];

/// Task states during which a share is busy (`constants.BUSY_TASK_STATES`).
pub const BUSY_TASK_STATES: [&str; 10] = [
    "migration_starting",
    "migration_in_progress",
    "migration_completing",
    "migration_driver_starting",
    "migration_driver_in_progress",
    "migration_driver_phase1_done",
    "data_copying_starting",
    "data_copying_in_progress",
    "data_copying_completing",
    "data_copying_completed",
];

/// Task states `reset_task_state` accepts besides `null` (`constants.TASK_STATE_STATUSES`),
/// in Manila's order.
pub const TASK_STATE_STATUSES: [&str; 14] = [
    "migration_starting",
    "migration_in_progress",
    "migration_completing",
    "migration_success",
    "migration_error",
    "migration_cancelled",
    "migration_driver_in_progress",
    "migration_driver_phase1_done",
    "data_copying_starting",
    "data_copying_in_progress",
    "data_copying_completing",
    "data_copying_completed",
    "data_copying_cancelled",
    "data_copying_error",
];

/// Longest `name`/`description` (`constants.DB_DISPLAY_FIELDS_MAX_LENGTH`).
pub const DISPLAY_FIELD_MAX_LENGTH: usize = 255;

/// webob's generic 404 text, the answer of most share lookups.
pub const GENERIC_NOT_FOUND: &str = "The resource could not be found.";
/// Text of Manila's bare `exception.NotFound()` (extend and shrink lookups).
pub const RESOURCE_NOT_FOUND: &str = "Resource could not be found.";
/// webob's generic 409 text (a `Conflict` escaping a controller that does not catch it).
pub const GENERIC_CONFLICT: &str = "There was a conflict when trying to complete your request.";
/// Manila's text for a refused metadata body.
pub const MALFORMED_BODY: &str = "Malformed request body";

// ---------------------------------------------------------------------------------------
// Small helpers with Manila's texts
// ---------------------------------------------------------------------------------------

/// Manila collapses a doubled final period in exception texts (`ManilaException.__init__`).
fn collapse_period(text: String) -> String {
    if text.ends_with("..") && !text.ends_with("...") {
        let mut text = text;
        text.pop();
        text
    } else {
        text
    }
}

/// `InvalidInput(reason)`: 400 `"Invalid input received: <reason>."`
pub fn invalid_input(reason: impl std::fmt::Display) -> CoreError {
    CoreError::bad_request(collapse_period(format!(
        "Invalid input received: {reason}."
    )))
}

/// `InvalidShare(reason)` text: `"Invalid share: <reason>."`
pub fn invalid_share_text(reason: impl std::fmt::Display) -> String {
    collapse_period(format!("Invalid share: {reason}."))
}

/// Python's `len()` of a string.
fn py_len(s: &str) -> usize {
    s.chars().count()
}

/// `common.check_display_field_length`: `name`/`description` (and their `display_` forms)
/// must not exceed 255 characters.
pub fn check_display_field_length(value: Option<&str>, field_name: &str) -> CoreResult<()> {
    match value {
        Some(v) if py_len(v) > DISPLAY_FIELD_MAX_LENGTH => Err(invalid_input(format!(
            "{field_name} can only be {DISPLAY_FIELD_MAX_LENGTH} characters long"
        ))),
        _ => Ok(()),
    }
}

/// `common.check_metadata_properties` for a JSON object: keys 1–255 characters, values
/// non-empty strings of at most 1023 characters. A non-string value is a malformed body
/// (Manila fails on it with a `TypeError`, shown as "Malformed request body" by the metadata
/// controller and as a 500 by share create).
pub fn validate_metadata(metadata: &Map<String, Value>) -> CoreResult<BTreeMap<String, String>> {
    let mut valid = BTreeMap::new();
    for (key, value) in metadata {
        if key.is_empty() {
            return Err(CoreError::bad_request("Metadata property key is blank."));
        }
        if py_len(key) > 255 {
            return Err(CoreError::bad_request(
                "Metadata property key is greater than 255 characters.",
            ));
        }
        let text = match value {
            Value::String(s) => s,
            // `not v` is true for these in Python, before `len()` could fail.
            Value::Null | Value::Bool(false) => {
                return Err(CoreError::bad_request("Metadata property value is blank."));
            }
            _ => return Err(CoreError::bad_request(MALFORMED_BODY)),
        };
        if text.is_empty() {
            return Err(CoreError::bad_request("Metadata property value is blank."));
        }
        if py_len(text) > 1023 {
            return Err(CoreError::bad_request(
                "Metadata property value is greater than 1023 characters.",
            ));
        }
        valid.insert(key.clone(), text.clone());
    }
    Ok(valid)
}

/// oslo's `strutils.is_int_like` followed by `int()`: an integer, or a string of one.
fn int_like(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let parsed: i64 = s.parse().ok()?;
            // `str(int(v)) == str(v)`: no sign, padding or leading zeros.
            (parsed.to_string() == *s).then_some(parsed)
        }
        _ => None,
    }
}

/// A size such as `new_size`: a JSON integer or a string of digits (the request schemas'
/// `non_negative_integer`); `None` otherwise.
pub fn parse_size(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// The share as the API sees it
// ---------------------------------------------------------------------------------------

/// Rank of a status in Manila's instance preference (`Share.instance`): lower is preferred.
/// `other` holds the non-transitional statuses outside the fixed list, in instance order.
fn status_rank(status: &str, other: &[&str]) -> usize {
    const PREFERRED: [&str; 6] = [
        "reverting",
        STATUS_REPLICATION_CHANGE,
        "migrating",
        "server_migrating",
        STATUS_AVAILABLE,
        STATUS_ERROR,
    ];
    if let Some(i) = PREFERRED.iter().position(|s| *s == status) {
        return i;
    }
    if let Some(i) = other.iter().position(|s| *s == status) {
        return PREFERRED.len() + i;
    }
    let transitional = TRANSITIONAL_STATUSES
        .iter()
        .position(|s| *s == status)
        .unwrap_or(TRANSITIONAL_STATUSES.len());
    PREFERRED.len() + other.len() + transitional
}

/// The instance a share shows (Manila's `Share.instance`): instances sorted by status
/// preference (`reverting`, `replication_change`, `migrating`, `server_migrating`,
/// `available`, `error`, other settled statuses, then transitional ones); unless the first
/// is in `replication_change`, only `active` replicas are kept when there are any; the first
/// wins. So a share normally shows its active replica, and during a promotion the replica
/// being promoted. `None` only for a share without instances.
pub fn select_instance(instances: &[ShareInstanceRow]) -> Option<&ShareInstanceRow> {
    let other: Vec<&str> = instances
        .iter()
        .map(|i| i.status.as_str())
        .filter(|s| !TRANSITIONAL_STATUSES.contains(s))
        .collect();
    let mut sorted: Vec<&ShareInstanceRow> = instances.iter().collect();
    // Stable, as Python's `sorted`.
    sorted.sort_by_key(|i| status_rank(&i.status, &other));
    let first = *sorted.first()?;
    if first.status == STATUS_REPLICATION_CHANGE {
        return Some(first);
    }
    sorted
        .iter()
        .find(|i| i.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE))
        .copied()
        .or(Some(first))
}

/// Manila's `Share.has_replicas`: more than one instance with a replica state (an errored
/// secondary counts; the lone active replica does not).
pub fn has_replicas(instances: &[ShareInstanceRow]) -> bool {
    instances.len() > 1
        && instances
            .iter()
            .filter(|i| i.replica_state.is_some())
            .count()
            > 1
}

/// The share's aggregate `access_rules_status` (one definition, in [`crate::share_access`]).
pub use crate::share_access::access_rules_status;

/// A share with everything its views and rules need.
#[derive(Debug, Clone)]
pub struct Share {
    /// The stored share with its metadata.
    pub row: ShareRow,
    /// Its instances in creation order.
    pub instances: Vec<ShareInstanceRow>,
    /// The share type of the shown instance (names in views, capability flags), if any.
    pub share_type: Option<ShareTypeRow>,
}

impl Share {
    /// Whose quota this share counts against: its project, its owner and its type.
    pub fn owner(&self) -> quotas::Owner<'_> {
        quotas::Owner {
            project_id: &self.row.project_id,
            user_id: &self.row.user_id,
            share_type_id: self.row.share_type_id,
        }
    }

    /// The instance the share shows ([`select_instance`]).
    pub fn instance(&self) -> Option<&ShareInstanceRow> {
        select_instance(&self.instances)
    }

    /// The share's status: its shown instance's.
    pub fn status(&self) -> Option<&str> {
        self.instance().map(|i| i.status.as_str())
    }

    /// [`has_replicas`] of the share.
    pub fn has_replicas(&self) -> bool {
        has_replicas(&self.instances)
    }

    /// [`access_rules_status`] of the share.
    pub fn access_rules_status(&self) -> &str {
        access_rules_status(&self.instances)
    }

    /// Manila's `Share.is_busy`: a migration task is running.
    pub fn is_busy(&self) -> bool {
        self.row
            .task_state
            .as_deref()
            .is_some_and(|t| BUSY_TASK_STATES.contains(&t))
    }

    /// A boolean capability of the share type (`snapshot_support`, ...), `false` when unset
    /// or invalid, as `get_share_attributes_from_share_type` infers it.
    pub fn capability(&self, key: &str) -> bool {
        self.share_type
            .as_ref()
            .and_then(|t| t.extra_specs.get(key))
            .and_then(|v| {
                share_types::parse_boolean_extra_spec(key, &Value::String(v.clone())).ok()
            })
            .unwrap_or(false)
    }

    /// Instances that are replicas (non-null `replica_state`, the active one included).
    pub fn replicas(&self) -> impl Iterator<Item = &ShareInstanceRow> {
        self.instances.iter().filter(|i| i.replica_state.is_some())
    }
}

/// Reads a share with its instances and type; `None` when `id` is not a UUID or no such
/// share exists. No visibility rule is applied.
pub async fn find_share(core: &Core, id: &str) -> CoreResult<Option<Share>> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    let row = match core.store.get_share(uuid).await {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let mut types = TypeCache::default();
    Ok(Some(assemble(core, row, &mut types).await?))
}

/// [`find_share`] restricted to what the caller may see: public shares, and private ones
/// for which `can_get` (the API's `share:get` policy check against the share's project)
/// holds. Manila's `share_api.get`.
pub async fn find_visible_share(
    core: &Core,
    id: &str,
    can_get: impl Fn(&ShareRow) -> bool,
) -> CoreResult<Option<Share>> {
    Ok(find_share(core, id)
        .await?
        .filter(|share| share.row.is_public || can_get(&share.row)))
}

/// Share types read while assembling shares, so a list reads each type once.
#[derive(Default)]
struct TypeCache(HashMap<Uuid, Option<ShareTypeRow>>);

impl TypeCache {
    async fn get(&mut self, core: &Core, id: Uuid) -> CoreResult<Option<ShareTypeRow>> {
        if let Some(found) = self.0.get(&id) {
            return Ok(found.clone());
        }
        let found = match core.store.get_share_type(id).await {
            Ok(row) => Some(row),
            Err(StoreError::NotFound(_)) => None,
            Err(other) => return Err(other.into()),
        };
        self.0.insert(id, found.clone());
        Ok(found)
    }
}

/// Adds instances and type to a share row.
async fn assemble(core: &Core, row: ShareRow, types: &mut TypeCache) -> CoreResult<Share> {
    let instances = core.store.list_share_instances(row.id).await?;
    let type_id = select_instance(&instances)
        .and_then(|i| i.share_type_id)
        .or(row.share_type_id);
    let share_type = match type_id {
        Some(id) => types.get(core, id).await?,
        None => None,
    };
    Ok(Share {
        row,
        instances,
        share_type,
    })
}

// ---------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------

/// A `POST /v2/shares` request whose JSON types the API has checked. Values Manila quotes
/// in its messages (`size`, `share_proto`) are kept as sent.
#[derive(Debug, Clone, Default)]
pub struct CreateShare {
    /// Owning project (the caller's).
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Whether the caller is an admin (share type visibility).
    pub is_admin: bool,
    /// Protocol as sent (`None` when missing).
    pub share_proto: Option<Value>,
    /// Size as sent (`None` when missing).
    pub size: Option<Value>,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Share type name or id (`share_type` or its alias `volume_type`).
    pub share_type: Option<String>,
    /// Zone name or id.
    pub availability_zone: Option<String>,
    /// User metadata as sent (`None`/null means none).
    pub metadata: Option<Value>,
    /// Share network (shoal has none, so any value is unknown).
    pub share_network_id: Option<String>,
    /// Source snapshot (shoal has none, so any value is unknown).
    pub snapshot_id: Option<String>,
    /// Share group (≥2.31; shoal has none).
    pub share_group_id: Option<String>,
    /// Visible to every project (the API checked `share:create_public_share`).
    pub is_public: bool,
    /// ≥2.48: refuse a zone outside the type's `availability_zones`.
    pub check_availability_zones_extra_spec: bool,
    /// ≥2.24: refuse a snapshot whose parent share lacks
    /// `create_share_from_snapshot_support`.
    pub check_create_share_from_snapshot_support: bool,
    /// ≥2.90: encryption key reference.
    pub encryption_key_ref: Option<String>,
    /// ≥2.65: `scheduler_hints` as sent (`only_host` already dropped below 2.67).
    pub scheduler_hints: Option<Value>,
}

/// Manila's error for a share network id that does not exist (shoal has no share networks).
fn share_network_not_found(id: &str) -> CoreError {
    CoreError::not_found(format!("Share network {id} could not be found."))
}

/// `share_types.provision_filter_on_size`: the type's `provisioning:*` size limits for
/// `operation` (`create`, `extend`, `admin-extend`, `shrink`).
pub(crate) fn provision_filter_on_size(
    share_type: Option<&ShareTypeRow>,
    size: i64,
    operation: &str,
) -> CoreResult<()> {
    let Some(share_type) = share_type else {
        return Ok(());
    };
    let spec = |key: &str| {
        share_type
            .extra_specs
            .get(key)
            .filter(|v| !v.is_empty())
            .and_then(|v| v.trim().parse::<i64>().ok().map(|n| (n, v.clone())))
    };
    let name = &share_type.name;
    if matches!(operation, "create" | "shrink")
        && let Some((min, text)) = spec(share_types::PROVISIONING_MIN_SHARE_SIZE)
        && size < min
    {
        return Err(invalid_input(format!(
            "Specified share size of '{size}' is less than the minimum required size of '{text}' for share type '{name}'."
        )));
    }
    if matches!(operation, "create" | "extend")
        && let Some((max, text)) = spec(share_types::PROVISIONING_MAX_SHARE_SIZE)
        && size > max
    {
        return Err(invalid_input(format!(
            "Specified share size of '{size}' is greater than the maximum allowable size of '{text}' for share type '{name}'."
        )));
    }
    if operation == "admin-extend"
        && let Some((max, text)) = spec(share_types::PROVISIONING_MAX_SHARE_EXTEND_SIZE)
        && size > max
    {
        return Err(invalid_input(format!(
            "Specified share size of '{size}' is greater than the maximum allowable extend size of '{text}' for share type '{name}'."
        )));
    }
    Ok(())
}

/// The default share type (`default_share_type`), if configured and existing.
async fn default_share_type(core: &Core) -> CoreResult<Option<ShareTypeRow>> {
    let Some(name) = core.config.api.default_share_type.as_deref() else {
        return Ok(None);
    };
    match core.store.get_share_type_by_name(name).await {
        Ok(row) => Ok(Some(row)),
        Err(StoreError::NotFound(_)) => {
            tracing::warn!("default share type {name} is not found, check default_share_type");
            Ok(None)
        }
        Err(other) => Err(other.into()),
    }
}

/// The first resource of `deltas` over its limit, in Manila's order of checks (`gigabytes`,
/// `shares`, then the replica quotas): the store refuses on whichever resource it meets
/// first, so this pre-check picks the message Manila would show.
async fn first_over_quota(
    core: &Core,
    req: &QuotaRequest,
    order: &[&str],
) -> CoreResult<Option<StoreError>> {
    let usages = core.store.get_quota_usages(&req.project_id).await?;
    for resource in order {
        let Some(delta) = req.deltas.get(*resource).copied() else {
            continue;
        };
        let limit = req.limits.get(*resource).copied().unwrap_or(-1);
        if delta <= 0 {
            continue;
        }
        let (in_use, reserved) = usages
            .get(*resource)
            .map_or((0, 0), |u| (u.in_use, u.reserved));
        if crate::quotas::exceeds(in_use, reserved, delta, limit) {
            return Ok(Some(StoreError::QuotaExceeded {
                resource: (*resource).to_owned(),
                requested: delta,
                in_use,
                reserved,
                limit,
            }));
        }
    }
    Ok(None)
}

/// Python's `repr()` of the list of enabled protocols, as Manila prints it.
fn protocols_repr(protocols: &[String]) -> String {
    let items: Vec<String> = protocols.iter().map(|p| format!("'{p}'")).collect();
    format!("[{}]", items.join(", "))
}

/// `POST /v2/shares`: validates in Manila's order, then writes the share, its `creating`
/// instance (no host yet), the quota charge and the scheduling operation in one
/// transaction. Returns the new share.
pub async fn create_share(core: &Core, req: CreateShare) -> CoreResult<Share> {
    // Zone (controller): by id or name.
    let mut availability_zone = None;
    if let Some(az) = req.availability_zone.as_deref().filter(|az| !az.is_empty()) {
        match core.store.get_availability_zone(az).await {
            Ok(row) => availability_zone = Some(row.name),
            Err(StoreError::NotFound(_)) => {
                return Err(CoreError::not_found(format!(
                    "Availability zone {az} could not be found."
                )));
            }
            Err(other) => return Err(other.into()),
        }
    }
    if let Some(group) = req.share_group_id.as_deref().filter(|g| !g.is_empty()) {
        return Err(CoreError::not_found(format!(
            "Share group {group} could not be found."
        )));
    }
    // Create from a snapshot (controller part): the snapshot must be visible, its parent
    // share must allow it (2.24+), and the parent's type is the default type.
    let mut source = None;
    if let Some(snapshot_id) = req.snapshot_id.as_deref().filter(|s| !s.is_empty()) {
        let snapshot = crate::snapshots::find_snapshot(core, snapshot_id)
            .await?
            .filter(|s| req.is_admin || s.row.project_id == req.project_id)
            .ok_or_else(|| {
                CoreError::not_found(format!(
                    "ShareSnapshotNotFound: Snapshot {snapshot_id} could not be found."
                ))
            })?;
        let parent = find_share(core, &snapshot.row.share_id.to_string())
            .await?
            .ok_or_else(|| CoreError::not_found(GENERIC_NOT_FOUND))?;
        if req.check_create_share_from_snapshot_support
            && !parent.capability(share_types::CREATE_SHARE_FROM_SNAPSHOT_SUPPORT)
        {
            return Err(CoreError::bad_request(format!(
                "A new share may not be created from snapshot '{snapshot_id}', because the snapshot's parent share does not have that capability."
            )));
        }
        source = Some((snapshot, parent));
    }
    if let Some(network) = req.share_network_id.as_deref().filter(|n| !n.is_empty()) {
        return Err(share_network_not_found(network));
    }

    // Share type: the one named, else the default (a share may have no type at all).
    let caller = Caller {
        project_id: &req.project_id,
        is_admin: req.is_admin,
    };
    let requested_type = req.share_type.as_deref().filter(|t| !t.is_empty());
    let share_type = match requested_type {
        Some(name_or_id) => Some(
            share_types::find_visible_by_name_or_id(core, caller, name_or_id)
                .await?
                .ok_or_else(|| CoreError::not_found("Share type not found."))?,
        ),
        // From a snapshot, the parent's type applies (below), not the default.
        None if source.is_some() => None,
        None => default_share_type(core).await?,
    };
    let spec = |key: &str| share_type.as_ref().and_then(|t| t.extra_specs.get(key));
    let dhss = spec(share_types::DRIVER_HANDLES_SHARE_SERVERS)
        .and_then(|v| share_types::bool_from_string(&Value::String(v.clone())))
        .unwrap_or(false);
    if dhss && source.is_none() {
        // Without share networks a DHSS type can never get one.
        return Err(CoreError::bad_request(
            "Share network must be set when the driver_handles_share_servers is true.",
        ));
    }
    if req.check_availability_zones_extra_spec
        && let Some(az) = availability_zone.as_deref()
        && let Some(type_azs) = spec(share_types::AVAILABILITY_ZONES).filter(|v| !v.is_empty())
        && !type_azs.split(',').any(|t| t == az)
    {
        let type_name = requested_type
            .map(str::to_owned)
            .or_else(|| share_type.as_ref().map(|t| t.name.clone()))
            .unwrap_or_default();
        return Err(CoreError::bad_request(format!(
            "Share type {type_name} is not supported within the availability zone chosen {az}."
        )));
    }
    if let Some(share_type) = share_type.as_ref() {
        if req.encryption_key_ref.is_some() {
            let supported = spec(share_types::ENCRYPTION_SUPPORT)
                .is_some_and(|v| v == "share" || v == "share_server");
            let name = &share_type.name;
            return Err(CoreError::bad_request(if supported {
                format!("Share type {name} must set dhss=True for share encryption.")
            } else {
                format!(
                    "Share type {name} extra-specs 'encryption_support' is missing valid value e.g. share, share_server."
                )
            }));
        }
        if spec(share_types::DEFAULT_QOS_TYPE).is_some_and(|v| !v.is_empty()) {
            return Err(CoreError::bad_request(format!(
                "The 'default_qos_type' specified in the share type {} does not exist.",
                share_type.name
            )));
        }
    }

    // share_api.create
    let metadata = match req.metadata.as_ref() {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => validate_metadata(map)?,
        // Python's `if not metadata` treats these as no metadata.
        Some(Value::Array(a)) if a.is_empty() => BTreeMap::new(),
        Some(Value::String(s)) if s.is_empty() => BTreeMap::new(),
        Some(Value::Bool(false)) => BTreeMap::new(),
        Some(_) => return Err(CoreError::bad_request(MALFORMED_BODY)),
    };
    if let Some((snapshot, _)) = &source
        && snapshot.status() != crate::snapshots::STATUS_AVAILABLE
    {
        return Err(CoreError::bad_request(
            "Invalid share snapshot: status must be 'available'.",
        ));
    }
    let size_value = match (&req.size, &source) {
        (None | Some(Value::Null), Some((snapshot, _))) => Value::from(snapshot.row.size_gb),
        (size, _) => size.clone().unwrap_or(Value::Null),
    };
    let size = int_like(&size_value).filter(|s| *s > 0).ok_or_else(|| {
        invalid_input(format!(
            "Share size '{}' must be an integer and greater than 0",
            share_types::py_str(&size_value)
        ))
    })?;
    if let Some((snapshot, _)) = &source
        && size < snapshot.row.size_gb
    {
        return Err(invalid_input(format!(
            "Share size '{size}' must be equal or greater than snapshot size"
        )));
    }
    provision_filter_on_size(share_type.as_ref(), size, "create")?;
    // From a snapshot: Manila's default (`use_scheduler_creating_share_from_snapshot` =
    // False) creates the share on the snapshot's pool, in the parent's zone, with the
    // parent's type.
    let mut share_type = share_type;
    let mut placement = None;
    if let Some((snapshot, parent)) = &source {
        let parent_instance = parent
            .instance()
            .ok_or_else(|| CoreError::not_found(GENERIC_NOT_FOUND))?;
        let scheduled = core.config.api.use_scheduler_creating_share_from_snapshot;
        match availability_zone.as_deref() {
            None => availability_zone = parent_instance.availability_zone.clone(),
            Some(az) if !scheduled && Some(az) != parent_instance.availability_zone.as_deref() => {
                return Err(invalid_input(
                    "The specified availability zone must be the same as the parent share when creating from snapshot.",
                ));
            }
            Some(_) => {}
        }
        match &share_type {
            None => share_type = parent.share_type.clone(),
            Some(t) if Some(t.id) != parent_instance.share_type_id => {
                return Err(invalid_input(
                    "Invalid share type specified: the requested share type must match the type of the source share. If a share type is not specified when requesting a new share from a snapshot, the share type of the source share will be applied to the new share",
                ));
            }
            Some(_) => {}
        }
        let snapshot_instance = snapshot
            .instance()
            .ok_or_else(|| CoreError::not_found(GENERIC_NOT_FOUND))?;
        let host = snapshot
            .share_instances
            .iter()
            .find(|i| i.id == snapshot_instance.share_instance_id)
            .map(|i| i.host.clone())
            .unwrap_or_default();
        // With the scheduler, the instance is placed like any other, within the snapshot's
        // back end or replication domain (the scheduler reads the snapshot from the share).
        let host = if scheduled { String::new() } else { host };
        placement = Some((snapshot.row.id, snapshot_instance.id, host));
    }
    let spec = |key: &str| share_type.as_ref().and_then(|t| t.extra_specs.get(key));
    let enabled = &core.config.api.enabled_share_protocols;
    let proto = match req.share_proto.as_ref() {
        Some(Value::String(p)) if enabled.iter().any(|e| e.eq_ignore_ascii_case(p)) => {
            p.to_uppercase()
        }
        other => {
            let provided = other.map_or_else(|| "None".to_owned(), share_types::py_str);
            return Err(invalid_input(format!(
                "Invalid share protocol provided: {}. It is either disabled or unsupported. Available protocols: {}",
                provided.to_uppercase(),
                protocols_repr(enabled)
            )));
        }
    };
    quotas::check_per_share_limit(core, &req.project_id, size).await?;
    let replication_type = spec(share_types::REPLICATION_TYPE)
        .filter(|v| !v.is_empty())
        .cloned();
    let mut deltas = vec![("shares", 1), ("gigabytes", size)];
    if replication_type.is_some() {
        deltas.extend([("share_replicas", 1), ("replica_gigabytes", size)]);
    }
    let owner = quotas::Owner {
        project_id: &req.project_id,
        user_id: &req.user_id,
        share_type_id: share_type.as_ref().map(|t| t.id),
    };
    let quota = quotas::scoped_request(core, owner, &deltas).await?;
    if let Some(over) = first_over_quota(
        core,
        &quota,
        &["gigabytes", "shares", "share_replicas", "replica_gigabytes"],
    )
    .await?
    {
        return Err(quotas::quota_error(over, Purpose::CreateShare));
    }

    // `save_scheduler_hints` (Manila runs it once the share row exists; shoal first, so a
    // bad hint leaves nothing behind). Visibility as `share:get`'s default.
    let hints = scheduler_hints::parse(core, req.scheduler_hints.as_ref(), req.is_admin, |s| {
        req.is_admin || s.project_id == req.project_id
    })
    .await?;
    let mut metadata = metadata;
    metadata.extend(hints.own_metadata());

    let now = core.now();
    let share_id = Uuid::new_v4();
    let instance_id = Uuid::new_v4();
    let mut schedule = ops::schedule(instance_id, now);
    schedule.payload = hints.payload();
    let type_id = share_type.as_ref().map(|t| t.id);
    let new = NewShare {
        share: ShareRow {
            id: share_id,
            project_id: req.project_id.clone(),
            user_id: req.user_id.clone(),
            name: req.name.clone(),
            description: req.description.clone(),
            size_gb: size,
            share_proto: proto,
            share_type_id: type_id,
            is_public: req.is_public,
            replication_type,
            snapshot_id: placement.as_ref().map(|(id, _, _)| *id),
            share_group_id: None,
            task_state: None,
            metadata,
            created_at: now,
            updated_at: None,
            is_soft_deleted: false,
            scheduled_to_be_deleted_at: None,
        },
        instance: NewShareInstance {
            id: instance_id,
            status: STATUS_CREATING.to_owned(),
            replica_state: None,
            host: placement
                .as_ref()
                .map(|(_, _, host)| host.clone())
                .unwrap_or_default(),
            availability_zone,
            share_type_id: type_id,
            share_network_id: None,
            share_server_id: None,
            cast_rules_to_readonly: false,
            access_rules_status: "active".to_owned(),
            progress: None,
            metadata: BTreeMap::new(),
        },
        quota,
        operations: match &placement {
            // Straight to the snapshot's back end, as Manila without the scheduler.
            Some((_, snapshot_instance_id, host)) if !host.is_empty() => ops::for_instance_host(
                ops::CREATE_SHARE_INSTANCE,
                instance_id,
                host,
                json!(ops::CreateInstancePayload {
                    snapshot_instance_id: Some(*snapshot_instance_id),
                }),
                now,
            )
            .into_iter()
            .collect(),
            _ => vec![schedule],
        },
    };
    let (row, instance) = core
        .store
        .create_share(new)
        .await
        .map_err(|e| quotas::quota_error(e, Purpose::CreateShare))?;
    core.wake_workers();
    if let Err(err) = scheduler_hints::record_on_named_shares(core, row.id, &hints).await {
        // The share exists and is being scheduled; only the bookkeeping keys are missing.
        tracing::warn!(share.id = %row.id, error = %err, "recording the scheduler hints of share {} failed: {err}", row.id);
    }
    tracing::info!(
        share.id = %row.id,
        share_instance.id = %instance.id,
        project.id = %row.project_id,
        "created share {} of {} GiB, instance {} waits for scheduling",
        row.id,
        row.size_gb,
        instance.id
    );
    Ok(Share {
        row,
        instances: vec![instance],
        share_type,
    })
}

// ---------------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------------

/// Filters of a share list, already gated by microversion and admin rights by the API.
/// `None` means "not filtered".
#[derive(Debug, Clone, Default)]
pub struct ShareFilters {
    /// Exact display name (ignored when empty).
    pub name: Option<String>,
    /// Regular expression on the display name (`name~`, ignored when empty).
    pub name_like: Option<String>,
    /// Exact description (ignored when empty).
    pub description: Option<String>,
    /// Regular expression on the description (`description~`, ignored when empty).
    pub description_like: Option<String>,
    /// Status of an instance.
    pub status: Option<String>,
    /// Share type id of an instance.
    pub share_type_id: Option<String>,
    /// Source snapshot.
    pub snapshot_id: Option<String>,
    /// Share network of an instance.
    pub share_network_id: Option<String>,
    /// Share server of an instance.
    pub share_server_id: Option<String>,
    /// Host of an instance (admin).
    pub host: Option<String>,
    /// Owning project (only with `all_projects`).
    pub project_id: Option<String>,
    /// Share group.
    pub share_group_id: Option<String>,
    /// Every pair must be in the share's metadata.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Every pair must be in the extra specs of an instance's type.
    pub extra_specs: Option<BTreeMap<String, String>>,
    /// Id of an export location of an instance.
    pub export_location_id: Option<String>,
    /// Path of an export location of an instance.
    pub export_location_path: Option<String>,
    /// Zone name or id of an instance (≥2.97); an unknown zone lists nothing.
    pub availability_zone: Option<String>,
    /// `Some(true)` lists the recycle bin, which is always empty in shoal.
    pub is_soft_deleted: Option<bool>,
}

/// A share list request.
#[derive(Debug, Clone)]
pub struct ShareListQuery {
    /// The caller's project.
    pub project_id: String,
    /// List every project's shares (admin `all_tenants` allowed by policy).
    pub all_projects: bool,
    /// Also list other projects' public shares (`is_public=true`).
    pub include_public: bool,
    /// Filters.
    pub filters: ShareFilters,
    /// Sort key as sent (`name` is accepted for `display_name`).
    pub sort_key: String,
    /// `asc` or `desc` (any case).
    pub sort_dir: String,
    /// Page size; Manila applies `offset` only together with `limit`.
    pub limit: Option<usize>,
    /// Items to skip (with `limit`).
    pub offset: usize,
    /// Id of the last share of the previous page (the `shares_links` next link): the page
    /// starts after it and `offset` is ignored. Manila ignores markers on shares; shoal
    /// honours them so that following `next` links terminates.
    pub marker: Option<String>,
    /// Count the matches before paginating (`with_count`).
    pub with_count: bool,
}

impl Default for ShareListQuery {
    fn default() -> Self {
        Self {
            project_id: String::new(),
            all_projects: false,
            include_public: false,
            filters: ShareFilters::default(),
            sort_key: "created_at".to_owned(),
            sort_dir: "desc".to_owned(),
            limit: None,
            offset: 0,
            marker: None,
            with_count: false,
        }
    }
}

/// A page of shares.
#[derive(Debug, Clone)]
pub struct ShareList {
    /// The shares of the page, sorted.
    pub shares: Vec<Share>,
    /// Matches before pagination, when asked for.
    pub count: Option<usize>,
}

/// A comparable value of a sort key; `Null` sorts first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Null,
    Bool(bool),
    Int(i64),
    Time(DateTime<Utc>),
    Text(String),
}

impl<T: Into<SortValue>> From<Option<T>> for SortValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(SortValue::Null, Into::into)
    }
}

impl From<String> for SortValue {
    fn from(value: String) -> Self {
        SortValue::Text(value)
    }
}

impl From<&str> for SortValue {
    fn from(value: &str) -> Self {
        SortValue::Text(value.to_owned())
    }
}

impl From<DateTime<Utc>> for SortValue {
    fn from(value: DateTime<Utc>) -> Self {
        SortValue::Time(value)
    }
}

/// The value of a sortable column (a share column, else one of the shown instance), or
/// `None` for a key Manila's models do not have.
fn sort_value(share: &Share, key: &str) -> Option<SortValue> {
    let row = &share.row;
    let instance = share.instance();
    let text = |v: Option<Uuid>| SortValue::from(v.map(|u| u.to_string()));
    Some(match key {
        "id" => SortValue::Text(row.id.to_string()),
        "created_at" => SortValue::Time(row.created_at),
        "updated_at" => row.updated_at.into(),
        "display_name" => row.name.clone().into(),
        "display_description" => row.description.clone().into(),
        "size" => SortValue::Int(row.size_gb),
        "share_proto" => row.share_proto.as_str().into(),
        "project_id" => row.project_id.as_str().into(),
        "user_id" => row.user_id.as_str().into(),
        "snapshot_id" => text(row.snapshot_id),
        "is_public" => SortValue::Bool(row.is_public),
        "share_group_id" => text(row.share_group_id),
        "task_state" => row.task_state.clone().into(),
        "replication_type" => row.replication_type.clone().into(),
        "status" => instance.map(|i| i.status.as_str()).into(),
        "host" => instance.map(|i| i.host.as_str()).into(),
        "share_type_id" => text(instance.and_then(|i| i.share_type_id)),
        "share_network_id" => text(instance.and_then(|i| i.share_network_id)),
        "share_server_id" => text(instance.and_then(|i| i.share_server_id)),
        "availability_zone" => instance.and_then(|i| i.availability_zone.clone()).into(),
        "access_rules_status" => instance.map(|i| i.access_rules_status.as_str()).into(),
        "progress" => instance.and_then(|i| i.progress.clone()).into(),
        _ => return None,
    })
}

/// A compiled `name~`/`description~` filter: a regular expression as the database would
/// apply it, or a substring when the text is not a valid expression.
enum LikeFilter {
    Regex(regex::Regex),
    Substring(String),
}

impl LikeFilter {
    fn new(pattern: &str) -> Self {
        match regex::Regex::new(pattern) {
            Ok(re) => LikeFilter::Regex(re),
            Err(_) => LikeFilter::Substring(pattern.to_owned()),
        }
    }

    fn matches(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return false;
        };
        match self {
            LikeFilter::Regex(re) => re.is_match(value),
            LikeFilter::Substring(s) => value.contains(s.as_str()),
        }
    }
}

/// Whether one instance satisfies every per-instance filter (Manila joins the instances, so
/// a share matches when one instance matches them all).
async fn instance_matches(
    core: &Core,
    filters: &ShareFilters,
    zone: Option<&str>,
    instance: &ShareInstanceRow,
    types: &mut TypeCache,
) -> CoreResult<bool> {
    let uuid_eq = |want: &Option<String>, have: Option<Uuid>| match want {
        None => true,
        Some(w) => have.is_some_and(|h| h.to_string() == *w),
    };
    if filters
        .status
        .as_ref()
        .is_some_and(|s| *s != instance.status)
        || !uuid_eq(&filters.share_type_id, instance.share_type_id)
        || !uuid_eq(&filters.share_network_id, instance.share_network_id)
        || !uuid_eq(&filters.share_server_id, instance.share_server_id)
        || filters.host.as_ref().is_some_and(|h| *h != instance.host)
        || zone.is_some_and(|z| instance.availability_zone.as_deref() != Some(z))
    {
        return Ok(false);
    }
    if let Some(specs) = filters.extra_specs.as_ref() {
        let Some(type_id) = instance.share_type_id else {
            return Ok(false);
        };
        let Some(share_type) = types.get(core, type_id).await? else {
            return Ok(false);
        };
        if !specs
            .iter()
            .all(|(k, v)| share_type.extra_specs.get(k) == Some(v))
        {
            return Ok(false);
        }
    }
    if filters.export_location_id.is_some() || filters.export_location_path.is_some() {
        let locations = core.store.list_export_locations(instance.id).await?;
        let found = locations.iter().any(|el| {
            filters
                .export_location_id
                .as_ref()
                .is_none_or(|id| el.id.to_string() == *id)
                && filters
                    .export_location_path
                    .as_ref()
                    .is_none_or(|p| el.path == *p)
        });
        if !found {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /v2/shares[/detail]`: the caller's (or every project's) shares, filtered, sorted
/// (then by id, in the same direction) and paginated the way Manila's database layer does.
pub async fn list_shares(core: &Core, query: &ShareListQuery) -> CoreResult<ShareList> {
    let empty = || ShareList {
        shares: Vec::new(),
        count: query.with_count.then_some(0),
    };
    let sort_key = if query.sort_key == "name" {
        "display_name"
    } else {
        query.sort_key.as_str()
    };
    let descending = match query.sort_dir.to_lowercase().as_str() {
        "desc" => true,
        "asc" => false,
        _ => {
            return Err(invalid_input(format!(
                "Wrong sorting data provided: sort key is '{sort_key}' and sort direction is '{}'.",
                query.sort_dir
            )));
        }
    };
    let filters = &query.filters;
    let zone = match filters.availability_zone.as_deref() {
        None => None,
        Some(az) => match core.store.get_availability_zone(az).await {
            Ok(row) => Some(row.name),
            Err(StoreError::NotFound(_)) => return Ok(empty()),
            Err(other) => return Err(other.into()),
        },
    };
    let project_filter = if query.all_projects {
        filters.project_id.clone()
    } else {
        Some(query.project_id.clone())
    };
    let rows = core
        .store
        .list_shares(ShareListFilter {
            project_id: project_filter,
            include_public: query.include_public && !query.all_projects,
        })
        .await?;
    let name_like = filters
        .name_like
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(LikeFilter::new);
    let description_like = filters
        .description_like
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(LikeFilter::new);
    let uuid_eq = |want: &Option<String>, have: Option<Uuid>| match want {
        None => true,
        Some(w) => have.is_some_and(|h| h.to_string() == *w),
    };
    let mut types = TypeCache::default();
    let mut matched = Vec::new();
    for row in rows {
        let name = filters.name.as_deref().filter(|n| !n.is_empty());
        let description = filters.description.as_deref().filter(|d| !d.is_empty());
        if name.is_some_and(|n| row.name.as_deref() != Some(n))
            || (name.is_none()
                && name_like
                    .as_ref()
                    .is_some_and(|f| !f.matches(row.name.as_deref())))
            || description.is_some_and(|d| row.description.as_deref() != Some(d))
            || (description.is_none()
                && description_like
                    .as_ref()
                    .is_some_and(|f| !f.matches(row.description.as_deref())))
            // Soft-deleted shares are listed only when asked for, and then only they.
            || row.is_soft_deleted != filters.is_soft_deleted.unwrap_or(false)
            || !uuid_eq(&filters.snapshot_id, row.snapshot_id)
            || !uuid_eq(&filters.share_group_id, row.share_group_id)
            || filters
                .metadata
                .as_ref()
                .is_some_and(|m| m.iter().any(|(k, v)| row.metadata.get(k) != Some(v)))
        {
            continue;
        }
        let share = assemble(core, row, &mut types).await?;
        let mut any = false;
        for instance in &share.instances {
            if instance_matches(core, filters, zone.as_deref(), instance, &mut types).await? {
                any = true;
                break;
            }
        }
        if any {
            matched.push(share);
        }
    }
    // Validate the key even when nothing matched, as the database would.
    let probe = Share {
        row: ShareRow {
            id: Uuid::nil(),
            project_id: String::new(),
            user_id: String::new(),
            name: None,
            description: None,
            size_gb: 0,
            share_proto: String::new(),
            share_type_id: None,
            is_public: false,
            replication_type: None,
            snapshot_id: None,
            share_group_id: None,
            task_state: None,
            metadata: BTreeMap::new(),
            created_at: DateTime::<Utc>::MIN_UTC,
            updated_at: None,
            is_soft_deleted: false,
            scheduled_to_be_deleted_at: None,
        },
        instances: Vec::new(),
        share_type: None,
    };
    if sort_value(&probe, sort_key).is_none() {
        return Err(invalid_input(format!(
            "Wrong sorting key provided - '{sort_key}'."
        )));
    }
    matched.sort_by(|a, b| {
        let order = sort_value(a, sort_key)
            .cmp(&sort_value(b, sort_key))
            .then_with(|| a.row.id.to_string().cmp(&b.row.id.to_string()));
        if descending { order.reverse() } else { order }
    });
    let count = query.with_count.then_some(matched.len());
    let start = match query
        .marker
        .as_deref()
        .and_then(|m| matched.iter().position(|s| s.row.id.to_string() == m))
    {
        Some(position) => position + 1,
        None if query.limit.is_some() => query.offset,
        None => 0,
    };
    let shares: Vec<Share> = matched
        .into_iter()
        .skip(start)
        .take(query.limit.unwrap_or(usize::MAX))
        .collect();
    Ok(ShareList { shares, count })
}

/// Parses Manila's dict-literal query values (`metadata={'k': 'v'}`, `extra_specs=...`,
/// read with Python's `ast.literal_eval`): a flat object with string keys and scalar
/// values, in Python or JSON quoting. Values become strings as Python's `str()` would
/// render them. `None` when the text is not such a dict.
pub fn parse_dict_literal(text: &str) -> Option<BTreeMap<String, String>> {
    let mut parser = LiteralParser {
        chars: text.trim().chars().collect(),
        pos: 0,
    };
    let map = parser.dict()?;
    parser.skip_ws();
    (parser.pos == parser.chars.len()).then_some(map)
}

/// A tiny parser for [`parse_dict_literal`].
struct LiteralParser {
    chars: Vec<char>,
    pos: usize,
}

impl LiteralParser {
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.chars.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn dict(&mut self) -> Option<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        if !self.eat('{') {
            return None;
        }
        if self.eat('}') {
            return Some(map);
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            if !self.eat(':') {
                return None;
            }
            let value = self.scalar()?;
            map.insert(key, value);
            if self.eat(',') {
                if self.eat('}') {
                    return Some(map);
                }
                continue;
            }
            return self.eat('}').then_some(map);
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = *self.chars.get(self.pos)?;
        if quote != '\'' && quote != '"' {
            return None;
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = *self.chars.get(self.pos)?;
            self.pos += 1;
            match c {
                '\\' => {
                    let escaped = *self.chars.get(self.pos)?;
                    self.pos += 1;
                    out.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
                c if c == quote => return Some(out),
                c => out.push(c),
            }
        }
    }

    fn scalar(&mut self) -> Option<String> {
        self.skip_ws();
        let c = *self.chars.get(self.pos)?;
        if c == '\'' || c == '"' {
            return self.string();
        }
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
        {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        match word.as_str() {
            "" => None,
            "True" | "False" | "None" => Some(word),
            w if w.parse::<i64>().is_ok() || w.parse::<f64>().is_ok() => Some(word),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Update and metadata
// ---------------------------------------------------------------------------------------

/// `PUT /v2/shares/{id}` with the keys Manila accepts (`display_name`,
/// `display_description`, `is_public`); the API checked their types and policies.
pub async fn update_share(core: &Core, share: &Share, update: ShareUpdate) -> CoreResult<Share> {
    if let Some(Some(name)) = update.name.as_ref() {
        check_display_field_length(Some(name), "display_name")?;
    }
    if let Some(Some(description)) = update.description.as_ref() {
        check_display_field_length(Some(description), "display_description")?;
    }
    let row = match core
        .store
        .update_share(share.row.id, update, core.now())
        .await
    {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Err(CoreError::not_found(GENERIC_NOT_FOUND)),
        Err(other) => return Err(other.into()),
    };
    Ok(Share {
        row,
        instances: share.instances.clone(),
        share_type: share.share_type.clone(),
    })
}

/// The admin `reset_task_state` action: sets (or, with `None`, clears) the share's task
/// state as given, like Manila's `db.share_update`. A busy task state makes the share busy
/// for the checks that refuse busy shares (replica create, extend, ...).
pub async fn reset_share_task_state(
    core: &Core,
    share: &Share,
    task_state: Option<String>,
) -> CoreResult<Share> {
    let shown = task_state.clone().unwrap_or_else(|| "None".to_owned());
    let update = ShareUpdate {
        task_state: Some(task_state),
        ..Default::default()
    };
    let updated = update_share(core, share, update).await?;
    tracing::info!(share.id = %share.row.id, "reset task state of share {} to {shown}", share.row.id);
    Ok(updated)
}

/// Manila's `MetadataItemNotFound` as it reaches the client.
fn metadata_item_not_found() -> CoreError {
    CoreError::not_found("MetadataItemNotFound: Metadata item is not found.")
}

/// One metadata value of a share.
pub fn share_metadata_item(share: &Share, key: &str) -> CoreResult<String> {
    share
        .row
        .metadata
        .get(key)
        .cloned()
        .ok_or_else(metadata_item_not_found)
}

/// Sets metadata: with `replace_all` the share's metadata becomes exactly `metadata`
/// (`PUT`), otherwise the keys are upserted and the others kept (`POST`). Returns the
/// share's resulting metadata.
pub async fn set_share_metadata(
    core: &Core,
    share: &Share,
    metadata: &Map<String, Value>,
    replace_all: bool,
) -> CoreResult<BTreeMap<String, String>> {
    let valid = validate_metadata(metadata)?;
    match core
        .store
        .set_share_metadata(share.row.id, &valid, replace_all, core.now())
        .await
    {
        Ok(result) => Ok(result),
        Err(StoreError::NotFound(_)) => Err(CoreError::not_found("Share not found.")),
        Err(other) => Err(other.into()),
    }
}

/// Removes one metadata key; 404 (Manila's `MetadataItemNotFound` text) when absent.
pub async fn delete_share_metadata_key(core: &Core, share: &Share, key: &str) -> CoreResult<()> {
    share_metadata_item(share, key)?;
    match core
        .store
        .delete_share_metadata_key(share.row.id, key)
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(metadata_item_not_found()),
        Err(other) => Err(other.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Delete, reset status
// ---------------------------------------------------------------------------------------

/// The quota usage an instance gives back when its rows are removed: the share's `shares`
/// and `gigabytes` when it is the share's last instance, and `share_replicas` /
/// `replica_gigabytes` when it is (or, for the first instance of a replicated share, was
/// charged as) a replica. Manila's `_update_share_instance_usages`, except that a
/// replicated share whose primary never became `active` also releases its replica charge
/// (Manila leaks it). The gigabytes are per GiB: the store sizes them by the share's size
/// when the rows go, so a resize committed after `share` was read is released too. For the
/// share workers too.
pub fn instance_release(
    share: &ShareRow,
    instance: &ShareInstanceRow,
    is_last: bool,
) -> InstanceRelease {
    let mut counts = BTreeMap::new();
    let mut per_gib = BTreeMap::new();
    let replica = instance.replica_state.is_some() || (is_last && share.replication_type.is_some());
    if replica {
        counts.insert("share_replicas".to_owned(), -1);
        per_gib.insert("replica_gigabytes".to_owned(), -1);
    }
    if is_last {
        counts.insert("shares".to_owned(), -1);
        per_gib.insert("gigabytes".to_owned(), -1);
    }
    // The owner's and the share type's usage go down with the project's.
    let scoped = |deltas| {
        let req = QuotaRequest {
            project_id: share.project_id.clone(),
            deltas,
            limits: BTreeMap::new(),
        };
        quotas::with_scopes(req, &share.user_id, share.share_type_id)
    };
    InstanceRelease {
        fixed: scoped(counts),
        per_gib: scoped(per_gib).deltas,
    }
}

/// `ShareBusyException` as the client sees it.
pub(crate) fn busy(share: &Share) -> CoreError {
    CoreError::bad_request(collapse_period(format!(
        "Share is busy with an active task: Share {} is busy as part of an active task: {}.",
        share.row.id,
        share.row.task_state.as_deref().unwrap_or_default()
    )))
}

/// `share_snapshot_get_all_for_share`'s count: the snapshots of a share in any status
/// and of any project, which block its delete, soft delete and unmanage.
pub(crate) async fn dependent_snapshots(core: &Core, share_id: Uuid) -> CoreResult<usize> {
    Ok(core
        .store
        .list_snapshots(shoal_store::SnapshotListFilter {
            project_id: None,
            share_id: Some(share_id),
        })
        .await?
        .len())
}

/// `DELETE /v2/shares/{id}` (`force` = admin `force_delete`): status and replica checks,
/// then each placed instance goes to `deleting` with a delete operation for its host, and
/// each unplaced one is removed at once with its quota (Manila's API does the same for
/// host-less instances).
pub async fn delete_share(core: &Core, share: &Share, force: bool) -> CoreResult<()> {
    let status = share.status().unwrap_or_default();
    if !force && !DELETABLE_STATUSES.contains(&status) {
        return Err(CoreError::forbidden(invalid_share_text(
            "Share status must be one of ('available', 'error', 'inactive')",
        )));
    }
    if share.has_replicas() {
        return Err(CoreError::conflict(if force {
            GENERIC_CONFLICT.to_owned()
        } else {
            format!(
                "Share {} has replicas. Remove the replicas before deleting the share.",
                share.row.id
            )
        }));
    }
    // Manila's `InvalidShare`, which the share controller answers with 403.
    let snapshots = dependent_snapshots(core, share.row.id).await?;
    if snapshots > 0 {
        return Err(CoreError::forbidden(invalid_share_text(format!(
            "Share still has {snapshots} dependent snapshots."
        ))));
    }
    if share.is_busy() {
        return Err(busy(share));
    }
    // Manila's `delete_scheduler_hints`: the shares this one named forget it.
    scheduler_hints::forget_share(core, &share.row).await?;
    let expected: &[&str] = if force { &[] } else { &DELETABLE_STATUSES };
    let is_last = share.instances.len() == 1;
    let mut enqueued = false;
    for instance in &share.instances {
        // A share whose manage failed was never charged, so its delete releases nothing.
        let no_quota = instance.status == crate::share_lifecycle::STATUS_MANAGE_ERROR;
        let payload = json!(ops::DeletePayload { force, no_quota });
        let now = core.now();
        let update = ShareInstanceUpdate {
            status: Some(STATUS_DELETING.to_owned()),
            terminated_at: Some(now),
            ..Default::default()
        };
        let op = ops::for_instance_host(
            ops::DELETE_SHARE_INSTANCE,
            instance.id,
            &instance.host,
            payload.clone(),
            now,
        );
        let placed = op.is_some();
        // Also for an unplaced instance: `deleting` stops the scheduler from placing it.
        let updated = match core
            .store
            .update_share_instance_if(instance.id, expected, update, op.into_iter().collect(), now)
            .await
        {
            Ok(row) => row,
            Err(StoreError::NotFound(_)) => continue,
            Err(StoreError::Conflict(_)) => {
                return Err(CoreError::bad_request(
                    "Invalid share instance: Share instance status must be one of ('available', 'error', 'inactive').",
                ));
            }
            Err(other) => return Err(other.into()),
        };
        if placed {
            enqueued = true;
            continue;
        }
        if let Some(op) = ops::for_instance_host(
            ops::DELETE_SHARE_INSTANCE,
            updated.id,
            &updated.host,
            payload.clone(),
            now,
        ) {
            // The scheduler placed it between our read and our update.
            core.store.insert_operation(op).await?;
            enqueued = true;
            continue;
        }
        let release = if no_quota {
            InstanceRelease::default()
        } else {
            instance_release(&share.row, &updated, is_last)
        };
        core.store
            .delete_share_instance_and_maybe_share(updated.id, release, now)
            .await?;
    }
    if enqueued {
        core.wake_workers();
    }
    tracing::info!(share.id = %share.row.id, force, "deleting share {} (force: {force})", share.row.id);
    Ok(())
}

/// Admin `reset_status`: sets the status of the instance the share shows, without any
/// other check (Manila's `share_update` with a status).
pub async fn reset_share_status(core: &Core, share: &Share, status: &str) -> CoreResult<()> {
    let Some(instance) = share.instance() else {
        return Err(CoreError::not_found(GENERIC_NOT_FOUND));
    };
    let update = ShareInstanceUpdate {
        status: Some(status.to_owned()),
        ..Default::default()
    };
    match core
        .store
        .update_share_instance_if(instance.id, &[], update, Vec::new(), core.now())
        .await
    {
        Ok(_) => {
            tracing::info!(share.id = %share.row.id, share_instance.id = %instance.id, "reset status of share {} to {status}", share.row.id);
            Ok(())
        }
        Err(StoreError::NotFound(_)) => Err(CoreError::not_found(GENERIC_NOT_FOUND)),
        Err(other) => Err(other.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Extend, shrink
// ---------------------------------------------------------------------------------------

/// An extend request.
#[derive(Debug, Clone, Copy)]
pub struct Extend {
    /// Target size in GiB.
    pub new_size: i64,
    /// `force` (≥2.64, admin): skip the scheduler's capacity check.
    pub force: bool,
    /// The caller may go beyond the type's `provisioning:max_share_size`
    /// (`share:extend_beyond_max_share_size_spec`).
    pub beyond_max_share_size: bool,
}

/// `extend`: the share must be `available` and not busy; reserves `gigabytes` (and
/// `replica_gigabytes` × replicas for replicated shares), then moves the shown instance to
/// `extending` with the operation carrying the reservations. A lost race rolls the
/// reservations back.
pub async fn extend_share(core: &Core, share: &Share, req: Extend) -> CoreResult<()> {
    let id = share.row.id;
    let status = share.status().unwrap_or_default();
    if status != STATUS_AVAILABLE {
        return Err(CoreError::bad_request(invalid_share_text(format!(
            "Share {id} status must be 'available' to extend, but current status is: {status}."
        ))));
    }
    if share.is_busy() {
        return Err(busy(share));
    }
    let current = share.row.size_gb;
    let increase = req.new_size - current;
    if increase <= 0 {
        return Err(invalid_input(format!(
            "New size for extend must be greater than current size. (current: {current}, extended: {}).",
            req.new_size
        )));
    }
    quotas::check_per_share_limit(core, &share.row.project_id, req.new_size).await?;
    let operation = if req.beyond_max_share_size {
        "admin-extend"
    } else {
        "extend"
    };
    provision_filter_on_size(share.share_type.as_ref(), req.new_size, operation)?;
    let replicas = i64::try_from(share.replicas().count()).unwrap_or(i64::MAX);
    let mut deltas = vec![("gigabytes", increase)];
    if replicas > 0 {
        deltas.push(("replica_gigabytes", replicas.saturating_mul(increase)));
    }
    let quota = quotas::scoped_request(core, share.owner(), &deltas).await?;
    let refuse = |err: StoreError| -> CoreError {
        match &err {
            StoreError::QuotaExceeded { resource, .. }
                if quotas::base_resource(resource) == "gigabytes" =>
            {
                CoreError::forbidden(
                    "Requested share exceeds allowed project/user or share type gigabytes quota.",
                )
            }
            StoreError::QuotaExceeded { resource, .. }
                if quotas::base_resource(resource) == "replica_gigabytes" =>
            {
                CoreError::over_limit(format!(
                    "ShareReplicaSizeExceedsAvailableQuota: Failed while extending a share with replication support. There is no available quota to extend the share and its {replicas} replicas. Maximum number of allowed replica_gigabytes is exceeded."
                ))
            }
            _ => quotas::quota_error(err, Purpose::Extend),
        }
    };
    if let Some(over) = first_over_quota(core, &quota, &["gigabytes", "replica_gigabytes"]).await? {
        return Err(refuse(over));
    }
    let Some(instance) = share.instance() else {
        return Err(CoreError::not_found(RESOURCE_NOT_FOUND));
    };
    let now = core.now();
    let expire = chrono::Duration::from_std(core.config.quota.reservation_expire)
        .unwrap_or_else(|_| chrono::Duration::days(1));
    let reservations = core
        .store
        .reserve_quota(quota, now + expire, now)
        .await
        .map_err(refuse)?;
    let payload = json!(ops::ResizePayload {
        new_size: req.new_size,
        reservations: reservations.clone(),
        replicas: Some(replicas),
    });
    let result = match ops::for_instance_host(
        ops::EXTEND_SHARE_INSTANCE,
        instance.id,
        &instance.host,
        payload,
        now,
    ) {
        None => Err(CoreError::bad_request(invalid_share_text(format!(
            "Share {id} has no host"
        )))),
        Some(op) => {
            let update = ShareInstanceUpdate {
                status: Some(STATUS_EXTENDING.to_owned()),
                ..Default::default()
            };
            match core
                .store
                .update_share_instance_if(instance.id, &[STATUS_AVAILABLE], update, vec![op], now)
                .await
            {
                Ok(_) => Ok(()),
                Err(StoreError::Conflict(_)) | Err(StoreError::NotFound(_)) => {
                    Err(CoreError::bad_request(invalid_share_text(format!(
                        "Share {id} status must be 'available' to extend, but it changed meanwhile."
                    ))))
                }
                Err(other) => Err(other.into()),
            }
        }
    };
    if result.is_err() {
        if let Err(err) = core
            .store
            .rollback_reservations(&reservations, core.now())
            .await
        {
            tracing::warn!(share.id = %id, "could not roll back the extend reservations of share {id}: {err}");
        }
        return result;
    }
    core.wake_workers();
    tracing::info!(share.id = %id, share_instance.id = %instance.id, force = req.force, "extending share {id} from {current} to {} GiB", req.new_size);
    Ok(())
}

/// `shrink`: the share must be `available` (or `shrinking_possible_data_loss_error`) and
/// not busy, and the new size smaller but positive; the shown instance goes to `shrinking`
/// with the operation. The freed quota is a negative reservation, committed by the worker
/// when the back end succeeded.
pub async fn shrink_share(core: &Core, share: &Share, new_size: i64) -> CoreResult<()> {
    const VALID: [&str; 2] = [STATUS_AVAILABLE, STATUS_SHRINKING_POSSIBLE_DATA_LOSS_ERROR];
    let id = share.row.id;
    let status = share.status().unwrap_or_default().to_lowercase();
    if !VALID.contains(&status.as_str()) {
        return Err(CoreError::bad_request(invalid_share_text(format!(
            "Share {id} status must in ({}) to shrink, but current status is: {status}.",
            VALID.join(", ")
        ))));
    }
    if share.is_busy() {
        return Err(busy(share));
    }
    let current = share.row.size_gb;
    if current - new_size <= 0 || new_size <= 0 {
        return Err(invalid_input(format!(
            "New size for shrink must be less than current size and greater than 0 (current: {current}, new: {new_size})"
        )));
    }
    provision_filter_on_size(share.share_type.as_ref(), new_size, "shrink")?;
    let Some(instance) = share.instance() else {
        return Err(CoreError::not_found(RESOURCE_NOT_FOUND));
    };
    let now = core.now();
    // The quota freed by a shrink is held as a negative reservation that the share worker
    // commits when the back end has shrunk the share: committing is idempotent, so a crash
    // between the two can neither lose nor double the release.
    let decrease = current - new_size;
    let replicas = i64::try_from(share.replicas().count()).unwrap_or(i64::MAX);
    let mut deltas = vec![("gigabytes", -decrease)];
    if replicas > 0 {
        deltas.push(("replica_gigabytes", -replicas.saturating_mul(decrease)));
    }
    let quota = quotas::scoped_request(core, share.owner(), &deltas).await?;
    let expire = chrono::Duration::from_std(core.config.quota.reservation_expire)
        .unwrap_or_else(|_| chrono::Duration::days(1));
    let reservations = core.store.reserve_quota(quota, now + expire, now).await?;
    let rollback = |reservations: Vec<uuid::Uuid>| async move {
        if let Err(err) = core
            .store
            .rollback_reservations(&reservations, core.now())
            .await
        {
            tracing::warn!(share.id = %id, "could not roll back the shrink reservations of share {id}: {err}");
        }
    };
    let payload = json!(ops::ResizePayload {
        new_size,
        reservations: reservations.clone(),
        replicas: Some(replicas),
    });
    let Some(op) = ops::for_instance_host(
        ops::SHRINK_SHARE_INSTANCE,
        instance.id,
        &instance.host,
        payload,
        now,
    ) else {
        rollback(reservations).await;
        return Err(CoreError::bad_request(invalid_share_text(format!(
            "Share {id} has no host"
        ))));
    };
    let update = ShareInstanceUpdate {
        status: Some(STATUS_SHRINKING.to_owned()),
        ..Default::default()
    };
    match core
        .store
        .update_share_instance_if(instance.id, &VALID, update, vec![op], now)
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) | Err(StoreError::NotFound(_)) => {
            rollback(reservations).await;
            return Err(CoreError::bad_request(invalid_share_text(format!(
                "Share {id} status must in ({}) to shrink, but it changed meanwhile.",
                VALID.join(", ")
            ))));
        }
        Err(other) => {
            rollback(reservations).await;
            return Err(other.into());
        }
    }
    core.wake_workers();
    tracing::info!(share.id = %id, share_instance.id = %instance.id, "shrinking share {id} from {current} to {new_size} GiB");
    Ok(())
}

/// The paths shown by share views below 2.9: `export_locations` lists the paths of the
/// `available` active instances (of all `available` instances when none is active), admin-only
/// ones included; `export_location` is the first path of the shown instance.
pub async fn legacy_export_paths(
    core: &Core,
    share: &Share,
) -> CoreResult<(Option<String>, Vec<String>)> {
    let active: Vec<&ShareInstanceRow> = share
        .instances
        .iter()
        .filter(|i| i.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE))
        .collect();
    let selected: Vec<&ShareInstanceRow> = if active.is_empty() {
        share.instances.iter().collect()
    } else {
        active
    };
    let mut paths = Vec::new();
    for instance in selected
        .into_iter()
        .filter(|i| i.status == STATUS_AVAILABLE)
    {
        paths.extend(
            core.store
                .list_export_locations(instance.id)
                .await?
                .into_iter()
                .map(|el| el.path),
        );
    }
    let first = match share.instance() {
        Some(instance) => core
            .store
            .list_export_locations(instance.id)
            .await?
            .into_iter()
            .next()
            .map(|el| el.path),
        None => None,
    };
    Ok((first, paths))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(status: &str, replica_state: Option<&str>) -> ShareInstanceRow {
        ShareInstanceRow {
            id: Uuid::new_v4(),
            share_id: Uuid::nil(),
            status: status.to_owned(),
            replica_state: replica_state.map(str::to_owned),
            host: String::new(),
            availability_zone: None,
            share_type_id: None,
            share_network_id: None,
            share_server_id: None,
            cast_rules_to_readonly: false,
            access_rules_status: "active".to_owned(),
            progress: None,
            created_at: Utc::now(),
            updated_at: None,
            scheduled_at: None,
            launched_at: None,
            terminated_at: None,
            replica_epoch: 0,
        }
    }

    #[test]
    fn selects_active_replica_over_available_secondaries() {
        let instances = vec![
            instance("available", Some("in_sync")),
            instance("error", Some("active")),
            instance("creating", Some("out_of_sync")),
        ];
        assert_eq!(
            select_instance(&instances).map(|i| i.id),
            Some(instances[1].id)
        );
    }

    #[test]
    fn replication_change_wins_during_promotion() {
        let instances = vec![
            instance("available", Some("active")),
            instance("replication_change", Some("in_sync")),
        ];
        assert_eq!(
            select_instance(&instances).map(|i| i.id),
            Some(instances[1].id)
        );
    }

    #[test]
    fn without_replicas_status_order_decides() {
        let instances = vec![
            instance("creating", None),
            instance("extending_error", None),
            instance("error", None),
        ];
        assert_eq!(
            select_instance(&instances).map(|i| i.id),
            Some(instances[2].id)
        );
        let settled_before_transitional = vec![
            instance("deleting", None),
            instance("extending_error", None),
        ];
        assert_eq!(
            select_instance(&settled_before_transitional).map(|i| i.id),
            Some(settled_before_transitional[1].id)
        );
        assert!(select_instance(&[]).is_none());
    }

    #[test]
    fn has_replicas_needs_two_replica_instances() {
        assert!(!has_replicas(&[instance("available", Some("active"))]));
        assert!(!has_replicas(&[
            instance("available", Some("active")),
            instance("available", None)
        ]));
        assert!(has_replicas(&[
            instance("available", Some("active")),
            instance("error", Some("error"))
        ]));
    }

    #[test]
    fn access_rules_status_is_worst_of_available() {
        let mut a = instance("available", None);
        a.access_rules_status = "syncing".to_owned();
        let mut b = instance("creating", None);
        b.access_rules_status = "error".to_owned();
        assert_eq!(access_rules_status(&[a.clone(), b]), "syncing");
        let mut c = instance("available", None);
        c.access_rules_status = "error".to_owned();
        assert_eq!(access_rules_status(&[a, c]), "error");
    }

    #[test]
    fn metadata_rules() {
        let ok: Map<String, Value> = serde_json::from_value(json!({"k": "v"})).unwrap();
        assert_eq!(
            validate_metadata(&ok).unwrap().get("k").map(String::as_str),
            Some("v")
        );
        let blank: Map<String, Value> = serde_json::from_value(json!({"": "v"})).unwrap();
        assert_eq!(
            validate_metadata(&blank).unwrap_err().to_string(),
            "Metadata property key is blank."
        );
        let empty: Map<String, Value> = serde_json::from_value(json!({"k": ""})).unwrap();
        assert_eq!(
            validate_metadata(&empty).unwrap_err().to_string(),
            "Metadata property value is blank."
        );
        let long: Map<String, Value> =
            serde_json::from_value(json!({"k": "x".repeat(1024)})).unwrap();
        assert!(
            validate_metadata(&long)
                .unwrap_err()
                .to_string()
                .contains("1023")
        );
        let number: Map<String, Value> = serde_json::from_value(json!({"k": 5})).unwrap();
        assert_eq!(
            validate_metadata(&number).unwrap_err().to_string(),
            MALFORMED_BODY
        );
    }

    #[test]
    fn size_parsing_follows_is_int_like() {
        assert_eq!(int_like(&json!(3)), Some(3));
        assert_eq!(int_like(&json!("3")), Some(3));
        assert_eq!(int_like(&json!("03")), None);
        assert_eq!(int_like(&json!(1.5)), None);
        assert_eq!(int_like(&json!(true)), None);
        assert_eq!(parse_size(&json!("12")), Some(12));
        assert_eq!(parse_size(&json!("-1")), None);
        assert_eq!(parse_size(&json!(null)), None);
    }

    #[test]
    fn dict_literals() {
        let parsed = parse_dict_literal("{'a': 'b', \"c\": 1, 'd': True}").unwrap();
        assert_eq!(parsed.get("a").map(String::as_str), Some("b"));
        assert_eq!(parsed.get("c").map(String::as_str), Some("1"));
        assert_eq!(parsed.get("d").map(String::as_str), Some("True"));
        assert!(parse_dict_literal("{}").unwrap().is_empty());
        assert!(parse_dict_literal("['a']").is_none());
        assert!(parse_dict_literal("{'a': }").is_none());
        assert!(parse_dict_literal("{'a': 'b'} x").is_none());
    }

    #[test]
    fn messages_collapse_double_periods() {
        assert_eq!(
            invalid_input("Share size '0' must be an integer and greater than 0").to_string(),
            "Invalid input received: Share size '0' must be an integer and greater than 0."
        );
        assert_eq!(
            invalid_input("x.").to_string(),
            "Invalid input received: x."
        );
    }

    #[test]
    fn release_of_last_and_replica_instances() {
        let share = ShareRow {
            id: Uuid::nil(),
            project_id: "p".to_owned(),
            user_id: "u".to_owned(),
            name: None,
            description: None,
            size_gb: 3,
            share_proto: "NFS".to_owned(),
            share_type_id: None,
            is_public: false,
            replication_type: Some("readable".to_owned()),
            snapshot_id: None,
            share_group_id: None,
            task_state: None,
            metadata: BTreeMap::new(),
            created_at: Utc::now(),
            updated_at: None,
            is_soft_deleted: false,
            scheduled_to_be_deleted_at: None,
        };
        let last = instance_release(&share, &instance("error", None), true).sized(share.size_gb);
        assert_eq!(last.deltas.get("shares"), Some(&-1));
        assert_eq!(last.deltas.get("replica_gigabytes"), Some(&-3));
        let secondary = instance_release(&share, &instance("error", Some("error")), false);
        let secondary = secondary.sized(share.size_gb);
        assert_eq!(secondary.deltas.get("shares"), None);
        assert_eq!(secondary.deltas.get("share_replicas"), Some(&-1));
    }
}
