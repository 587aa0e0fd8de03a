//! Share lifecycle beyond create and delete: manage and unmanage (Manila's
//! `share/api.py::manage`/`unmanage`, 2.7+ `POST /v2/shares/manage` and the `unmanage`
//! action) and the recycle bin (2.69 `soft_delete`/`restore`, `share/api.py::soft_delete`).
//!
//! Manage writes the share with its instance already placed on the named pool, in
//! `manage_starting`, the named path as its export location and a `schedule_manage_share`
//! operation; nothing is charged to quota. The scheduler
//! ([`crate::workers::scheduler`]) runs its filters with the share type's extra specs and a
//! size of 0 and, when the named pool passes, enqueues `manage_share` for its share
//! service; otherwise the share goes to `manage_error` (Manila's `host_passes_filters`,
//! which sends no user message for manage). The share manager
//! ([`crate::workers::lifecycle`]) asks the driver to adopt the path and, in one
//! transaction, sets the size the driver reports, charges the quota (over-quota allowed, as
//! Manila) and moves the instance to `available`; or `manage_error`, whose share never
//! held quota, so neither unmanage nor delete releases any.
//!
//! Unmanage moves the instance to `unmanage_starting` (`manage_error_unmanaging` from
//! `manage_error`) with an `unmanage_share` operation; the share manager lets the driver
//! forget the share (the data stays) and removes the rows with the quota release in one
//! transaction, or sets `unmanage_error`.
//!
//! The recycle bin is two columns of the share (`is_soft_deleted`,
//! `scheduled_to_be_deleted_at`), set and cleared with conditional updates. A soft-deleted
//! share keeps its instances, quota and data, is hidden from lists unless asked for, and is
//! deleted through the normal delete pipeline by [`crate::recycle_bin`] once expired.

use std::collections::BTreeMap;

use serde_json::json;
use shoal_store::{
    NewExportLocation, NewShare, NewShareInstance, QuotaRequest, ServiceFilter,
    ShareInstanceUpdate, ShareRow, ShareTypeRow, StoreError,
};
use uuid::Uuid;

use crate::config::Role;
use crate::share_types;
use crate::shares::{
    self, DELETABLE_STATUSES, GENERIC_CONFLICT, STATUS_DELETING, Share, TRANSITIONAL_STATUSES,
    invalid_share_text,
};
use crate::{Core, CoreError, CoreResult, ops, services};

/// `manage_starting`: the driver is adopting the path.
pub const STATUS_MANAGE_STARTING: &str = "manage_starting";
/// `manage_error`: the adoption failed; the share holds no quota.
pub const STATUS_MANAGE_ERROR: &str = "manage_error";
/// `unmanage_starting`: the driver is forgetting the share.
pub const STATUS_UNMANAGE_STARTING: &str = "unmanage_starting";
/// `unmanage_error`: the driver could not forget the share.
pub const STATUS_UNMANAGE_ERROR: &str = "unmanage_error";
/// `manage_error_unmanaging`: unmanaging a share whose manage failed (no quota to release).
pub const STATUS_MANAGE_ERROR_UNMANAGING: &str = "manage_error_unmanaging";
/// `error_deleting`.
pub const STATUS_ERROR_DELETING: &str = "error_deleting";

/// Statuses a soft-deleted share cannot be restored from: its purge has begun.
pub const RESTORE_BLOCKING_STATUSES: [&str; 2] = [STATUS_DELETING, STATUS_ERROR_DELETING];

// ---------------------------------------------------------------------------------------
// Manage
// ---------------------------------------------------------------------------------------

/// `utils.validate_service_host`: the enabled share service `host@backend` (404 when
/// unknown or disabled, 400 when down).
pub async fn validate_service_host(
    core: &Core,
    service_host: &str,
) -> CoreResult<shoal_store::ServiceRow> {
    let service = core
        .store
        .list_services(ServiceFilter {
            host: Some(service_host.to_owned()),
            binary: Some(Role::Share.binary().to_owned()),
        })
        .await?
        .into_iter()
        .find(|s| !s.disabled)
        .ok_or_else(|| {
            CoreError::not_found(format!("Service {service_host} could not be found."))
        })?;
    if !services::is_up(core, service.updated_at, core.now()) {
        return Err(CoreError::bad_request(format!(
            "Service {service_host} is down."
        )));
    }
    Ok(service)
}

/// `share_types.get_share_type_by_name_or_id` as manage uses it: the named type (by id or
/// name, any visibility: manage is an admin call), or the default one.
pub async fn manage_share_type(core: &Core, name_or_id: Option<&str>) -> CoreResult<ShareTypeRow> {
    let Some(name_or_id) = name_or_id.filter(|t| !t.is_empty()) else {
        let missing = || CoreError::not_found("Default share type not found.");
        let Some(name) = core.config.api.default_share_type.as_deref() else {
            return Err(missing());
        };
        return match core.store.get_share_type_by_name(name).await {
            Ok(row) => Ok(row),
            Err(StoreError::NotFound(_)) => Err(missing()),
            Err(other) => Err(other.into()),
        };
    };
    let found = if share_types::is_uuid_like(name_or_id) {
        match Uuid::parse_str(name_or_id) {
            Ok(id) => core.store.get_share_type(id).await,
            Err(_) => Err(StoreError::NotFound(name_or_id.to_owned())),
        }
    } else {
        core.store.get_share_type_by_name(name_or_id).await
    };
    match found {
        Ok(row) => Ok(row),
        Err(StoreError::NotFound(_)) if share_types::is_uuid_like(name_or_id) => Err(
            CoreError::not_found(format!("Share type {name_or_id} could not be found.")),
        ),
        Err(StoreError::NotFound(_)) => Err(CoreError::not_found(format!(
            "Share type with name {name_or_id} could not be found."
        ))),
        Err(other) => Err(other.into()),
    }
}

/// A manage request the API has parsed and checked up to the share type.
#[derive(Debug, Clone)]
pub struct ManageShare {
    /// Owning project (the caller's, as Manila).
    pub project_id: String,
    /// Managing user.
    pub user_id: String,
    /// `host@backend#pool`.
    pub service_host: String,
    /// The share service (`validate_service_host`).
    pub service: shoal_store::ServiceRow,
    /// The path to adopt.
    pub export_path: String,
    /// Protocol, upper-cased.
    pub share_proto: String,
    /// The share type.
    pub share_type: ShareTypeRow,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Visibility.
    pub is_public: bool,
    /// Driver options, values as text.
    pub driver_options: BTreeMap<String, String>,
    /// 2.49+: share server (shoal has none, so any value is refused below).
    pub share_server_id: Option<String>,
}

/// `share_api.manage`: refuses a path already managed on that host, checks the type's
/// share-server mode, then writes the share (`manage_starting`, placed, its path as export
/// location) and the `manage_share` operation. Returns the new share.
pub async fn manage_share(core: &Core, req: ManageShare) -> CoreResult<Share> {
    let already = core
        .store
        .list_share_instances_by_export_path(&req.service_host, &req.export_path)
        .await?;
    if !already.is_empty() {
        tracing::error!(
            "found an existing share with export location {}",
            req.export_path
        );
        return Err(CoreError::conflict(invalid_share_text(
            "A share already exists with the export path specified.",
        )));
    }
    let spec = |key: &str| req.share_type.extra_specs.get(key);
    let dhss = spec(share_types::DRIVER_HANDLES_SHARE_SERVERS)
        .and_then(|v| share_types::bool_from_string(&serde_json::Value::String(v.clone())))
        .unwrap_or(false);
    if spec(share_types::DEFAULT_QOS_TYPE).is_some_and(|v| !v.is_empty()) {
        return Err(CoreError::bad_request(format!(
            "Share type {} extra-specs 'default_qos_type' specified qos_type does not exist.",
            req.share_type.name
        )));
    }
    if dhss && req.share_server_id.is_none() {
        return Err(CoreError::bad_request(
            "Share Server ID parameter is required when managing a share using a share type with driver_handles_share_servers extra-spec set to True.",
        ));
    }
    if !dhss && req.share_server_id.is_some() {
        return Err(CoreError::bad_request(
            "Share Server ID parameter is not expected when managing a share using a share type with driver_handles_share_servers extra-spec set to False.",
        ));
    }
    if req.share_server_id.is_some() {
        // shoal has no share servers.
        return Err(CoreError::bad_request(
            "Share Server specified was not found.",
        ));
    }
    let replication_type = spec(share_types::REPLICATION_TYPE)
        .filter(|v| !v.is_empty())
        .cloned();
    let now = core.now();
    let share_id = Uuid::new_v4();
    let instance_id = Uuid::new_v4();
    let payload = ops::ManagePayload {
        export_path: req.export_path.clone(),
        driver_options: req.driver_options.clone(),
    };
    if ops::service_host(&req.service_host).is_none() {
        return Err(CoreError::bad_request(
            "service_host parameter should contain pool.",
        ));
    }
    // As Manila, the scheduler first checks that the named pool passes its filters for the
    // share type; it then hands the share to the pool's share service.
    let op = ops::operation(
        ops::SCHEDULE_MANAGE_SHARE,
        instance_id,
        None,
        json!(payload),
        now,
    );
    let new = NewShare {
        share: ShareRow {
            id: share_id,
            project_id: req.project_id.clone(),
            user_id: req.user_id.clone(),
            name: req.name.clone(),
            description: req.description.clone(),
            // Unknown until the driver answers (Manila leaves it null); shown as null while
            // managing. One GiB keeps the column's positive-size rule.
            size_gb: 1,
            share_proto: req.share_proto.clone(),
            share_type_id: Some(req.share_type.id),
            is_public: req.is_public,
            replication_type,
            snapshot_id: None,
            share_group_id: None,
            task_state: None,
            metadata: BTreeMap::new(),
            created_at: now,
            updated_at: None,
            is_soft_deleted: false,
            scheduled_to_be_deleted_at: None,
        },
        instance: NewShareInstance {
            id: instance_id,
            status: STATUS_MANAGE_STARTING.to_owned(),
            replica_state: None,
            host: req.service_host.clone(),
            availability_zone: Some(req.service.availability_zone.clone()),
            share_type_id: Some(req.share_type.id),
            share_network_id: None,
            share_server_id: None,
            cast_rules_to_readonly: false,
            access_rules_status: "active".to_owned(),
            progress: None,
            metadata: BTreeMap::new(),
        },
        // Charged once the driver has told the size.
        quota: QuotaRequest {
            project_id: req.project_id.clone(),
            ..Default::default()
        },
        operations: vec![op],
    };
    let (row, instance) = core.store.create_share(new).await?;
    // The named path is the export location until the driver reports its own; it is also
    // what the "already managed" check above finds.
    core.store
        .replace_export_locations(
            instance.id,
            vec![NewExportLocation {
                path: req.export_path.clone(),
                is_admin_only: false,
                preferred: false,
                metadata: BTreeMap::new(),
            }],
            now,
        )
        .await?;
    core.wake_workers();
    tracing::info!(
        share.id = %row.id,
        share_instance.id = %instance.id,
        "managing {} on {} as share {}",
        req.export_path,
        req.service_host,
        row.id
    );
    let share_type = Some(req.share_type);
    Ok(Share {
        row,
        instances: vec![instance],
        share_type,
    })
}

// ---------------------------------------------------------------------------------------
// Unmanage
// ---------------------------------------------------------------------------------------

/// The `unmanage` action's checks (in Manila's order) and `share_api.unmanage`: the
/// instance goes to `unmanage_starting` (`manage_error_unmanaging` from `manage_error`)
/// with an `unmanage_share` operation for its back end. `allow_share_server` is 2.49+.
pub async fn unmanage_share(
    core: &Core,
    share: &Share,
    allow_share_server: bool,
) -> CoreResult<()> {
    let id = share.row.id;
    if share.row.is_soft_deleted {
        return Err(CoreError::forbidden(format!(
            "Share '{id} cannot be unmanaged, since it has been soft deleted."
        )));
    }
    if share.has_replicas() {
        return Err(CoreError::conflict(format!(
            "Share {id} has replicas. It cannot be unmanaged until all replicas are removed."
        )));
    }
    let Some(instance) = share.instance() else {
        return Err(CoreError::not_found(shares::GENERIC_NOT_FOUND));
    };
    let status = instance.status.as_str();
    if !allow_share_server && instance.share_server_id.is_some() {
        return Err(CoreError::forbidden(
            "Operation 'unmanage' is not supported for shares that are created on top of share servers (created with share-networks).",
        ));
    }
    if TRANSITIONAL_STATUSES.contains(&status) {
        return Err(CoreError::forbidden(format!(
            "Share with transitional state can not be unmanaged. Share '{id}' is in '{status}' state."
        )));
    }
    // The controller's own checks, before `share_api.unmanage` looks at the task state.
    let snapshots = shares::dependent_snapshots(core, id).await?;
    if snapshots > 0 {
        return Err(CoreError::forbidden(format!(
            "Share '{id}' can not be unmanaged because it has '{snapshots}' dependent snapshot(s)."
        )));
    }
    if share.is_busy() {
        return Err(shares::busy(share));
    }
    let (new_status, no_quota) = if status == STATUS_MANAGE_ERROR {
        (STATUS_MANAGE_ERROR_UNMANAGING, true)
    } else {
        (STATUS_UNMANAGE_STARTING, false)
    };
    let now = core.now();
    let update = ShareInstanceUpdate {
        status: Some(new_status.to_owned()),
        terminated_at: Some(now),
        ..Default::default()
    };
    let op = ops::for_instance_host(
        ops::UNMANAGE_SHARE,
        instance.id,
        &instance.host,
        json!({}),
        now,
    );
    let placed = op.is_some();
    match core
        .store
        .update_share_instance_if(
            instance.id,
            &[status],
            update,
            op.into_iter().collect(),
            now,
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => return Err(CoreError::conflict(GENERIC_CONFLICT)),
        Err(StoreError::NotFound(_)) => {
            return Err(CoreError::not_found(shares::GENERIC_NOT_FOUND));
        }
        Err(other) => return Err(other.into()),
    }
    if placed {
        core.wake_workers();
    } else {
        // Never placed: no back end holds anything, the rows go at once.
        let release = if no_quota {
            shoal_store::InstanceRelease::default()
        } else {
            shares::instance_release(&share.row, instance, true)
        };
        core.store
            .delete_share_instance_and_maybe_share(instance.id, release, now)
            .await?;
    }
    tracing::info!(share.id = %id, "unmanaging share {id}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Recycle bin
// ---------------------------------------------------------------------------------------

/// `share_api.soft_delete`: the checks of a delete (status, replicas, snapshots, task
/// state, in Manila's order), then the share moves to the recycle
/// bin until `now + periodic.soft_deleted_share_retention`.
pub async fn soft_delete_share(core: &Core, share: &Share) -> CoreResult<()> {
    let id = share.row.id;
    if share.row.is_soft_deleted {
        return Err(CoreError::forbidden(invalid_share_text(
            "The share has been soft deleted already",
        )));
    }
    let status_refused = || {
        CoreError::forbidden(invalid_share_text(
            "Share status must be one of ('available', 'error', 'inactive')",
        ))
    };
    if !DELETABLE_STATUSES.contains(&share.status().unwrap_or_default()) {
        return Err(status_refused());
    }
    if share.has_replicas() {
        return Err(CoreError::conflict(format!(
            "Share {id} has replicas. Remove the replicas before soft deleting the share."
        )));
    }
    // `InvalidShare`, which the controller answers with 403.
    let snapshots = shares::dependent_snapshots(core, id).await?;
    if snapshots > 0 {
        return Err(CoreError::forbidden(invalid_share_text(format!(
            "Share still has {snapshots} dependent snapshots."
        ))));
    }
    if share.is_busy() {
        // The controller turns ShareBusyException into a 403 here.
        return Err(CoreError::forbidden(shares::busy(share).to_string()));
    }
    let now = core.now();
    let retention = chrono::Duration::from_std(core.config.periodic.soft_deleted_share_retention)
        .unwrap_or(chrono::Duration::MAX);
    let scheduled = now.checked_add_signed(retention).unwrap_or(now);
    match core
        .store
        .soft_delete_share(id, &DELETABLE_STATUSES, scheduled, now)
        .await
    {
        Ok(_) => {
            tracing::info!(share.id = %id, "share {id} moved to the recycle bin until {scheduled}");
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Err(status_refused()),
        Err(StoreError::NotFound(_)) => Err(CoreError::not_found(shares::GENERIC_NOT_FOUND)),
        Err(other) => Err(other.into()),
    }
}

/// `restore`: `Ok(false)` when the share is not in the recycle bin (Manila answers 200 and
/// does nothing), `Ok(true)` when it was taken out; refused once its purge has begun.
pub async fn restore_share(core: &Core, share: &Share) -> CoreResult<bool> {
    if !share.row.is_soft_deleted {
        return Ok(false);
    }
    let id = share.row.id;
    let refused = || {
        CoreError::forbidden(format!(
            "Share {id} is being deleted or has suffered an error during deletion, cannot be restored."
        ))
    };
    if RESTORE_BLOCKING_STATUSES.contains(&share.status().unwrap_or_default()) {
        return Err(refused());
    }
    match core
        .store
        .restore_share(id, &RESTORE_BLOCKING_STATUSES, core.now())
        .await
    {
        Ok(_) => {
            tracing::info!(share.id = %id, "share {id} restored from the recycle bin");
            Ok(true)
        }
        Err(StoreError::Conflict(_)) => match core.store.get_share(id).await {
            // Restored concurrently: the same outcome as ours.
            Ok(row) if !row.is_soft_deleted => Ok(true),
            _ => Err(refused()),
        },
        Err(StoreError::NotFound(_)) => Err(CoreError::not_found(format!(
            "No share exists with ID {id}."
        ))),
        Err(other) => Err(other.into()),
    }
}
