//! The share manager's manage and unmanage (Manila's `ShareManager.manage_share` and
//! `unmanage_share`), run by the share service that owns the instance's pool.
//!
//! Both start from the instance's status and do nothing when it has moved on, so a re-run
//! after a crash is harmless: the driver calls are idempotent (adopting or forgetting the
//! same instance twice answers the same), and the state change that ends each operation is
//! one transaction with its quota change (`finish_share_manage`,
//! `delete_share_instance_and_maybe_share`), so quota is never charged or released twice.

use shoal_driver::DriverError;
use shoal_store::{QuotaRequest, ShareInstanceUpdate, StoreError};
use tracing::{info, warn};
use uuid::Uuid;

use super::share_manager::ShareManagerHandler;
use crate::drivers::Backend;
use crate::ops::ManagePayload;
use crate::share_lifecycle::{
    STATUS_MANAGE_ERROR, STATUS_MANAGE_ERROR_UNMANAGING, STATUS_MANAGE_STARTING,
    STATUS_UNMANAGE_ERROR, STATUS_UNMANAGE_STARTING,
};
use crate::{Core, CoreResult, ErrorKind, export_locations, shares};

/// Sets `status` if the instance is still in `from`; a lost compare-and-set means another
/// run already moved it on.
async fn set_status(core: &Core, id: Uuid, from: &str, status: &str) -> CoreResult<()> {
    let update = ShareInstanceUpdate {
        status: Some(status.to_owned()),
        ..Default::default()
    };
    match core
        .store
        .update_share_instance_if(id, &[from], update, Vec::new(), core.now())
        .await
    {
        Ok(_) | Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

/// Adopts the path named at manage time: the driver reports size and export locations; the
/// size must pass the type's size limits; then size, quota (Manila allows going over it
/// here, so the administrator is not stuck with a half-managed share) and `available` are
/// written together. Any failure gives `manage_error`.
pub(crate) async fn manage(
    core: &Core,
    backend: &Backend,
    id: Uuid,
    payload: ManagePayload,
) -> CoreResult<()> {
    let instance = match core.store.get_share_instance(id).await {
        Ok(instance) => instance,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    if instance.status != STATUS_MANAGE_STARTING {
        return Ok(());
    }
    let share = match core.store.get_share(instance.share_id).await {
        Ok(share) => share,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let reference = ShareManagerHandler::instance_ref(&instance, &share);
    let outcome = backend
        .driver
        .manage_existing(&reference, &payload.export_path, &payload.driver_options)
        .await
        .map_err(|err| err.to_string())
        .and_then(|managed| {
            let size = i64::try_from(managed.size_gb).unwrap_or(0);
            if size <= 0 {
                return Err("Invalid share: Driver cannot calculate share size.".to_owned());
            }
            Ok((size, managed.export_locations))
        });
    let (size, locations) = match outcome {
        Ok(found) => found,
        Err(reason) => {
            warn!(share.id = %share.id, share_instance.id = %id, "managing {} failed: {reason}", payload.export_path);
            return set_status(core, id, STATUS_MANAGE_STARTING, STATUS_MANAGE_ERROR).await;
        }
    };
    let share_type = match instance.share_type_id {
        Some(type_id) => match core.store.get_share_type(type_id).await {
            Ok(row) => Some(row),
            Err(StoreError::NotFound(_)) => None,
            Err(err) => return Err(err.into()),
        },
        None => None,
    };
    if let Err(err) = shares::provision_filter_on_size(share_type.as_ref(), size, "create") {
        warn!(share.id = %share.id, share_instance.id = %id, "managed share {} does not fit its type: {err}", share.id);
        return set_status(core, id, STATUS_MANAGE_STARTING, STATUS_MANAGE_ERROR).await;
    }
    // Manila only warns when a managed share is over the per-share limit.
    match crate::quotas::check_per_share_limit(core, &share.project_id, size).await {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::OverLimit => {
            warn!(share.id = %share.id, "managed share {} is over the per-share limit: {err}", share.id);
        }
        Err(err) => return Err(err),
    }
    let now = core.now();
    core.store
        .replace_export_locations(id, export_locations::from_driver(locations), now)
        .await?;
    let mut deltas = vec![("shares".to_owned(), 1), ("gigabytes".to_owned(), size)];
    if share.replication_type.is_some() {
        deltas.push(("share_replicas".to_owned(), 1));
        deltas.push(("replica_gigabytes".to_owned(), size));
    }
    // No limits: over quota is allowed. The owner's and the type's usage count it too, as
    // Manila's reserve with `user_id` and `share_type_id` (and as unmanage releases it).
    let quota = crate::quotas::with_scopes(
        QuotaRequest {
            project_id: share.project_id.clone(),
            deltas: deltas.into_iter().collect(),
            limits: Default::default(),
        },
        &share.user_id,
        share.share_type_id,
    );
    let update = ShareInstanceUpdate {
        status: Some("available".to_owned()),
        // A share managed with a replication type is its own active replica.
        replica_state: share
            .replication_type
            .is_some()
            .then(|| Some("active".to_owned())),
        progress: Some(Some("100%".to_owned())),
        launched_at: Some(now),
        ..Default::default()
    };
    match core
        .store
        .finish_share_manage(id, size, quota, update, now)
        .await
    {
        Ok(_) => {
            info!(share.id = %share.id, share_instance.id = %id, "managed {} as share {} ({size} GiB)", payload.export_path, share.id);
            Ok(())
        }
        Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Lets the driver forget the instance (its data stays), then removes the rows with the
/// quota release in one transaction; `unmanage_error` when the driver refuses.
pub(crate) async fn unmanage(core: &Core, backend: &Backend, id: Uuid) -> CoreResult<()> {
    let instance = match core.store.get_share_instance(id).await {
        Ok(instance) => instance,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let status = instance.status.clone();
    if status != STATUS_UNMANAGE_STARTING && status != STATUS_MANAGE_ERROR_UNMANAGING {
        return Ok(());
    }
    let share = match core.store.get_share(instance.share_id).await {
        Ok(share) => share,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let reference = ShareManagerHandler::instance_ref(&instance, &share);
    if let Err(err) = backend.driver.unmanage(&reference).await {
        let err: DriverError = err;
        warn!(share.id = %share.id, share_instance.id = %id, error = %err, "share can not be unmanaged: {err}");
        return set_status(core, id, &status, STATUS_UNMANAGE_ERROR).await;
    }
    // A share whose manage failed never held quota.
    let release = if status == STATUS_MANAGE_ERROR_UNMANAGING {
        shoal_store::InstanceRelease::default()
    } else {
        shares::instance_release(&share, &instance, true)
    };
    core.store
        .delete_share_instance_and_maybe_share(id, release, core.now())
        .await?;
    info!(share.id = %share.id, share_instance.id = %id, "unmanaged share {}; its data is left on the back end", share.id);
    Ok(())
}
