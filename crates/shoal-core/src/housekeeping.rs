//! Housekeeping of the scheduler role: what piles up in the database and has no owner to
//! clear it. Every `periodic.housekeeping_interval` it rolls back quota reservations past
//! their `expire_at` (Manila's scheduler runs `QUOTAS.expire` the same way; a reservation
//! normally ends in its worker's commit or rollback, and only one whose operation was lost
//! waits for this) and deletes `done` and `failed` operations older than
//! `periodic.finished_operation_retention` (Manila keeps its soft-deleted rows until an
//! operator runs `manila-manage db purge`; shoal's finished operations are its only such
//! rows, and nothing reads them but the metrics' per-state counts). Several scheduler nodes
//! may run it at once: both steps are idempotent.
//!
//! Tests call [`Housekeeping::run_once`] instead of waiting for the interval.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, info_span};

use crate::periodic::{FirstPass, run_every};
use crate::{Core, CoreResult};

/// What one pass cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HousekeepingPass {
    /// Quota reservations rolled back because they expired.
    pub reservations_expired: u64,
    /// Finished operations deleted.
    pub operations_deleted: u64,
}

/// The housekeeping task of one node.
pub struct Housekeeping {
    core: Arc<Core>,
}

impl Housekeeping {
    /// The housekeeping task of `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// One pass at the current time.
    pub async fn run_once(&self) -> CoreResult<HousekeepingPass> {
        let core = &self.core;
        let now = core.now();
        let reservations_expired = core.store.expire_reservations(now).await?;
        let retention =
            chrono::Duration::from_std(core.config.periodic.finished_operation_retention)
                .unwrap_or(chrono::Duration::MAX);
        let operations_deleted = match now.checked_sub_signed(retention) {
            Some(cut) => core.store.delete_finished_operations(cut).await?,
            None => 0,
        };
        let pass = HousekeepingPass {
            reservations_expired,
            operations_deleted,
        };
        if pass != HousekeepingPass::default() {
            info!(
                reservations_expired,
                operations_deleted,
                "housekeeping: {reservations_expired} expired reservations rolled back, \
                 {operations_deleted} finished operations deleted"
            );
        }
        Ok(pass)
    }

    /// Runs [`Self::run_once`] every `housekeeping_interval` until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let period = self.core.config.periodic.housekeeping_interval;
        run_every(
            period,
            FirstPass::AfterOnePeriod,
            cancel,
            || info_span!("housekeeping"),
            "housekeeping failed",
            || self.run_once(),
        )
        .await;
    }
}
