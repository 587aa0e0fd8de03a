//! The recycle-bin purge (Manila's periodic `delete_expired_share`): every
//! `periodic.expired_share_check_interval` (1 hour, as Manila) the shares whose
//! `scheduled_to_be_deleted_at` has passed are deleted through the normal delete pipeline
//! ([`crate::shares::delete_share`]), so the back end, the rows and the quota go exactly as
//! for a `DELETE`. A share whose earlier purge failed (`error_deleting`) is put back to
//! `error` and deleted again, as Manila does.
//!
//! Nothing is persisted here: the work list is the `shares` rows themselves, and a delete
//! already under way (`deleting`) is left to its operation, so several nodes running the
//! task, or a task killed half-way, never delete twice (the delete is a compare-and-set).
//!
//! Tests call [`RecycleBin::purge_expired`] (or [`RecycleBin::run_once`]) instead of waiting.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shoal_store::{ShareInstanceUpdate, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn};

use crate::periodic::{FirstPass, run_every};
use crate::share_lifecycle::STATUS_ERROR_DELETING;
use crate::shares::{self, STATUS_DELETING, STATUS_ERROR};
use crate::{Core, CoreResult};

/// The periodic purge of expired soft-deleted shares.
pub struct RecycleBin {
    core: Arc<Core>,
}

impl RecycleBin {
    /// The purge task of `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// One pass at the current time.
    pub async fn run_once(&self) -> CoreResult<usize> {
        self.purge_expired(self.core.now()).await
    }

    /// Starts the deletion of every soft-deleted share expired at `now`; returns how many
    /// deletions were started. A share that cannot be deleted is logged and skipped.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> CoreResult<usize> {
        let core = &self.core;
        let mut started = 0;
        for row in core.store.list_expired_soft_deleted_shares(now).await? {
            let id = row.id.to_string();
            let Some(mut share) = shares::find_share(core, &id).await? else {
                continue;
            };
            if share.status() == Some(STATUS_DELETING) {
                continue;
            }
            if share.status() == Some(STATUS_ERROR_DELETING) {
                info!(share.id = %id, "share {id} was soft-deleted but a prior deletion attempt failed; resetting status and re-attempting deletion");
                for instance in &share.instances {
                    let update = ShareInstanceUpdate {
                        status: Some(STATUS_ERROR.to_owned()),
                        ..Default::default()
                    };
                    match core
                        .store
                        .update_share_instance_if(
                            instance.id,
                            &[STATUS_ERROR_DELETING],
                            update,
                            Vec::new(),
                            core.now(),
                        )
                        .await
                    {
                        Ok(_) | Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {}
                        Err(other) => return Err(other.into()),
                    }
                }
                let Some(reloaded) = shares::find_share(core, &id).await? else {
                    continue;
                };
                share = reloaded;
            } else {
                info!(share.id = %id, "share {id} has expired in the recycle bin, deleting it");
            }
            match shares::delete_share(core, &share, false).await {
                Ok(()) => started += 1,
                Err(err) => warn!(share.id = %id, error = %err, "purging share {id} failed: {err}"),
            }
        }
        Ok(started)
    }

    /// Runs [`Self::run_once`] every `expired_share_check_interval` until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let period = self.core.config.periodic.expired_share_check_interval;
        run_every(
            period,
            FirstPass::AfterOnePeriod,
            cancel,
            || info_span!("recycle_bin_purge"),
            "recycle bin purge failed",
            || self.run_once(),
        )
        .await;
    }
}
