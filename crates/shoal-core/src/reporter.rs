//! The periodic report of the scheduler and share roles (Manila's `report_state` plus the
//! share manager's `_report_driver_status`): every `report_interval` each service records a
//! heartbeat, and each back end publishes fresh pool statistics for the scheduler. Pools a
//! back end stops reporting are removed so the scheduler never places work on them.
//!
//! Tests call [`Reporter::run_once`] instead of waiting for the interval.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use shoal_store::{PoolRow, ServiceHeartbeat, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::{info_span, warn};

use crate::config::Role;
use crate::drivers::Backend;
use crate::periodic::{FirstPass, run_every};
use crate::{Core, CoreResult};

/// Heartbeats and pool statistics of the roles running in this process.
pub struct Reporter {
    core: Arc<Core>,
    backends: Vec<Backend>,
    scheduler: bool,
    /// Published with each share service's heartbeat: where peers reach this node's
    /// replication endpoint.
    replication_address: Option<String>,
    /// Held for a whole report. A report measures the pools first and writes them after, so
    /// two overlapping reports (the periodic loop and a `run_once` from a test or the
    /// start-up) could finish in the wrong order: the one that measured first would write
    /// last and bring back a pool, or stale stats, the newer one had already replaced.
    turn: tokio::sync::Mutex<()>,
}

impl Reporter {
    /// Reporter for this node's roles; `backends` is empty unless the share role runs.
    pub fn new(core: Arc<Core>, backends: Vec<Backend>) -> Self {
        let scheduler = core.config.runs(Role::Scheduler);
        let replication_address = core.config.replication.advertised_address();
        Self {
            core,
            backends,
            scheduler,
            replication_address,
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Publishes `address` as this node's replication endpoint (the bound address when the
    /// configuration names port 0 and nothing to advertise).
    pub fn with_replication_address(mut self, address: Option<String>) -> Self {
        self.replication_address = address;
        self
    }

    /// One report: heartbeats, then pool stats of every back end. A failing back end is
    /// logged and skipped; its pools go stale and the scheduler stops offering them. Reports
    /// run one at a time: a call waits for a report under way to end, then measures afresh.
    pub async fn run_once(&self) -> CoreResult<()> {
        let _turn = self.turn.lock().await;
        let now = self.core.now();
        if self.scheduler {
            self.core
                .store
                .record_service_heartbeat(ServiceHeartbeat {
                    host: self.core.config.host.clone(),
                    binary: Role::Scheduler.binary().to_owned(),
                    topic: "manila-scheduler".to_owned(),
                    availability_zone: self.core.config.service_availability_zone(),
                    now,
                    replication_address: None,
                })
                .await?;
        }
        for backend in &self.backends {
            self.report_backend(backend).await?;
        }
        Ok(())
    }

    async fn report_backend(&self, backend: &Backend) -> CoreResult<()> {
        let store = &self.core.store;
        let now = self.core.now();
        store
            .record_service_heartbeat(ServiceHeartbeat {
                host: backend.service_host.clone(),
                binary: Role::Share.binary().to_owned(),
                topic: "manila-share".to_owned(),
                availability_zone: backend.config.availability_zone.clone(),
                now,
                replication_address: self.replication_address.clone(),
            })
            .await?;
        // Allocations come from the database, the only record of what is placed where.
        let prefix = format!("{}#", backend.service_host);
        let allocated_gb_by_pool: std::collections::BTreeMap<String, u64> = store
            .allocated_gb_by_pool()
            .await?
            .into_iter()
            .filter_map(|(name, gb)| name.strip_prefix(&prefix).map(|pool| (pool.to_owned(), gb)))
            .collect();
        let stats = match backend.driver.get_share_stats(&allocated_gb_by_pool).await {
            Ok(stats) => stats,
            Err(err) => {
                warn!(host = %backend.service_host, error = %err, "pool stats of {} failed: {err}", backend.service_host);
                return Ok(());
            }
        };
        let mut reported = BTreeSet::new();
        for stat in stats {
            let name = format!("{}#{}", backend.service_host, stat.pool_name);
            let mut capabilities = serde_json::to_value(&stat).map_err(anyhow::Error::from)?;
            if let Value::Object(map) = &mut capabilities {
                map.insert(
                    "timestamp".to_owned(),
                    Value::String(shoal_types::time::manila_timestamp(now)),
                );
                map.insert(
                    "availability_zone".to_owned(),
                    Value::String(backend.config.availability_zone.clone()),
                );
            }
            store
                .upsert_pool(&PoolRow {
                    name: name.clone(),
                    host: backend.service_host.clone(),
                    backend: backend.config.name.clone(),
                    pool: stat.pool_name.clone(),
                    availability_zone: backend.config.availability_zone.clone(),
                    capabilities,
                    updated_at: now,
                })
                .await?;
            reported.insert(name);
        }
        for pool in store.list_pools().await? {
            if pool.host == backend.service_host && !reported.contains(&pool.name) {
                // Already gone is the outcome wanted (e.g. the report of an old process
                // of this host, still shutting down, removed it first).
                match store.delete_pool(&pool.name).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    }

    /// Runs [`Self::run_once`] every `report_interval` until cancelled.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let period = self.core.config.periodic.report_interval;
        run_every(
            period,
            FirstPass::Now,
            cancel,
            || info_span!("report"),
            "service report failed",
            || self.run_once(),
        )
        .await;
    }
}
