//! Share migration requests (Manila's `share/api.py::migration_start`,
//! `migration_complete`, `migration_cancel`, `migration_get_progress`).
//!
//! shoal has no share migration: no back end migrates a share (driver-assisted) and there is
//! no data service to copy one (host-assisted). The calls still answer as Manila's API
//! does up to the point where a migration would begin, so a client gets Manila's refusal
//! for a request Manila refuses (a replicated share is 409, a busy one 400, an unknown
//! destination 404, the current host with nothing to change is 200 `migration_success`),
//! and a request Manila would accept is refused with a 400 that says migration is not
//! supported. Nothing is written except where Manila writes without migrating (the 200).
//! As no migration ever starts, complete, cancel and progress answer what Manila answers
//! for a share with no migration in progress.

use shoal_store::{ShareTypeRow, ShareUpdate};

use crate::share_lifecycle::validate_service_host;
use crate::shares::{self, Share, invalid_share_text};
use crate::{Core, CoreError, CoreResult};

/// `task_state` Manila sets when the destination equals the source.
pub const TASK_STATE_MIGRATION_SUCCESS: &str = "migration_success";
/// `task_state` of a failed migration.
pub const TASK_STATE_MIGRATION_ERROR: &str = "migration_error";
/// `task_state` of a cancelled migration.
pub const TASK_STATE_MIGRATION_CANCELLED: &str = "migration_cancelled";

/// Validated `migration_start` body (2.29+).
#[derive(Debug, Clone)]
pub struct MigrationStart {
    /// Destination pool, `host@backend#pool`.
    pub host: String,
    /// `force_host_assisted_migration`.
    pub force_host_assisted_migration: bool,
    /// `preserve_metadata`.
    pub preserve_metadata: bool,
    /// `writable`.
    pub writable: bool,
    /// `nondisruptive`.
    pub nondisruptive: bool,
    /// `preserve_snapshots`.
    pub preserve_snapshots: bool,
    /// `new_share_type_id`, already looked up.
    pub new_share_type: Option<ShareTypeRow>,
}

/// Manila's `migration_start` checks, in its order, then the refusal of a migration no
/// back end can carry out. `Ok` only when the destination is the share's own pool and type:
/// Manila records `migration_success` and answers 200.
pub async fn migration_start(core: &Core, share: &Share, req: &MigrationStart) -> CoreResult<()> {
    if req.force_host_assisted_migration
        && (req.preserve_metadata || req.writable || req.nondisruptive || req.preserve_snapshots)
    {
        return Err(shares::invalid_input(
            "Invalid parameter combination. Cannot set parameters \"nondisruptive\", \
             \"writable\", \"preserve_snapshots\" or \"preserve_metadata\" to True when \
             enabling the \"force_host_assisted_migration\" option.",
        ));
    }
    if share.has_replicas() {
        return Err(CoreError::conflict(format!(
            "Share {} has replicas. Remove the replicas before attempting to migrate the share.",
            share.row.id
        )));
    }
    let Some(instance) = share.instance() else {
        return Err(CoreError::bad_request(invalid_share_text(format!(
            "Share {} has no instance.",
            share.row.id
        ))));
    };
    if instance.status != shares::STATUS_AVAILABLE {
        return Err(CoreError::bad_request(invalid_share_text(format!(
            "Share instance {} status must be available, but current status is: {}.",
            instance.id, instance.status
        ))));
    }
    if instance.access_rules_status == shares::STATUS_ERROR {
        return Err(CoreError::bad_request(invalid_share_text(format!(
            "Share instance {} access rules status must not be in error when attempting to \
             start a migration.",
            instance.id
        ))));
    }
    if share.is_busy() {
        return Err(shares::busy(share));
    }
    if req.force_host_assisted_migration
        && shares::dependent_snapshots(core, share.row.id).await? > 0
    {
        return Err(CoreError::conflict(format!(
            "Share {} must not have snapshots when using host-assisted migration.",
            share.row.id
        )));
    }
    let service_host = req.host.split('#').next().unwrap_or_default();
    validate_service_host(core, service_host).await?;
    let new_type_id = req
        .new_share_type
        .as_ref()
        .map(|t| t.id)
        .or(instance.share_type_id);
    if new_type_id == instance.share_type_id && req.host == instance.host {
        shares::update_share(
            core,
            share,
            ShareUpdate {
                task_state: Some(Some(TASK_STATE_MIGRATION_SUCCESS.to_owned())),
                ..Default::default()
            },
        )
        .await?;
        tracing::info!(share.id = %share.row.id, "migration of share {} to its own host {}: nothing to be done", share.row.id, req.host);
        return Ok(());
    }
    Err(CoreError::bad_request(format!(
        "Share {} cannot be migrated to {}: share migration is not supported by this \
         deployment (no back end migrates shares and there is no data service for \
         host-assisted migration).",
        share.row.id, req.host
    )))
}

/// Manila's `_migration_validate_error_message` for a share with no migration running.
fn no_migration_message(share: &Share) -> Option<String> {
    let id = share.row.id;
    match share.row.task_state.as_deref() {
        Some(TASK_STATE_MIGRATION_SUCCESS) => {
            Some(format!("Migration of share {id} has already completed."))
        }
        None | Some(TASK_STATE_MIGRATION_ERROR) => Some(format!(
            "There is no migration being performed for share {id} at this moment."
        )),
        Some(TASK_STATE_MIGRATION_CANCELLED) => {
            Some(format!("Migration of share {id} was already cancelled."))
        }
        Some("migration_driver_phase1_done" | "data_copying_completed") => Some(format!(
            "Migration of share {id} has already completed first phase."
        )),
        Some(_) => None,
    }
}

/// `migration_complete`: no migration ever reaches its first phase's end here.
pub fn migration_complete(share: &Share) -> CoreResult<()> {
    let message = no_migration_message(share).unwrap_or_else(|| {
        format!(
            "First migration phase of share {} not completed yet.",
            share.row.id
        )
    });
    Err(CoreError::bad_request(invalid_share_text(message)))
}

/// `migration_cancel`: there is never a migration to cancel.
pub fn migration_cancel(share: &Share) -> CoreResult<()> {
    let message = no_migration_message(share).unwrap_or_else(|| {
        format!(
            "Migration of share {} cannot be cancelled at this moment.",
            share.row.id
        )
    });
    Err(CoreError::bad_request(invalid_share_text(message)))
}

/// `migration_get_progress`: Manila's `_migration_get_progress_state` (100 once a
/// migration is over, 0 while one is starting), else its refusal.
pub fn migration_get_progress(share: &Share) -> CoreResult<u32> {
    const DONE: [&str; 10] = [
        TASK_STATE_MIGRATION_SUCCESS,
        "data_copying_error",
        TASK_STATE_MIGRATION_CANCELLED,
        "migration_cancel_in_progress",
        "migration_completing",
        "migration_driver_phase1_done",
        "data_copying_completed",
        "data_copying_completing",
        "data_copying_cancelled",
        TASK_STATE_MIGRATION_ERROR,
    ];
    const STARTING: [&str; 4] = [
        "migration_starting",
        "migration_driver_starting",
        "data_copying_starting",
        "migration_in_progress",
    ];
    match share.row.task_state.as_deref() {
        Some(t) if DONE.contains(&t) => Ok(100),
        Some(t) if STARTING.contains(&t) => Ok(0),
        _ => {
            let message = no_migration_message(share).unwrap_or_else(|| {
                format!(
                    "Migration progress of share {} cannot be obtained at this moment.",
                    share.row.id
                )
            });
            Err(CoreError::bad_request(invalid_share_text(message)))
        }
    }
}
