//! The scheduler role (Manila's `FilterScheduler` driven by `manila-scheduler`): places an
//! unplaced share instance on a pool. It builds a snapshot of the pools from the share
//! services' latest reports, with allocations read fresh from the database (so placements
//! made since the last report count), runs `shoal-scheduler`'s pure filters and weighers,
//! and writes the chosen `host@backend#pool` with a compare-and-set together with the
//! creation operation for that host. No valid host leaves the instance in `error` with a
//! user message naming the filter that eliminated the last candidate.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use shoal_scheduler::{PoolState, ScheduleRequest};
use shoal_store::{OperationRow, ServiceFilter, ShareInstanceRow, ShareInstanceUpdate, StoreError};
use tracing::{info, warn};
use uuid::Uuid;

use super::OperationHandler;
use crate::{Core, CoreResult, messages, ops};

/// Handler of the scheduler queue.
pub struct SchedulerHandler {
    core: Arc<Core>,
}

impl SchedulerHandler {
    /// The handler.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// Snapshot of every pool with fresh allocations and service liveness.
    pub async fn pool_snapshot(&self) -> CoreResult<Vec<PoolState>> {
        let core = &self.core;
        let now = core.now();
        let services = core
            .store
            .list_services(ServiceFilter {
                host: None,
                binary: Some("manila-share".to_owned()),
            })
            .await?;
        let allocated = core.store.allocated_gb_by_pool().await?;
        let pools = core.store.list_pools().await?;
        Ok(pools
            .into_iter()
            .map(|pool| {
                let service = services.iter().find(|s| s.host == pool.host);
                let fresh = crate::services::is_up(core, pool.updated_at, now);
                let service_up = fresh
                    && service.is_some_and(|s| crate::services::is_up(core, s.updated_at, now));
                let mut capabilities = match pool.capabilities {
                    Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                // The report is up to one interval old; allocations are read now.
                let allocated_now = allocated.get(&pool.name).copied().unwrap_or(0) as f64;
                if let (Some(total), Some(free)) = (
                    capabilities
                        .get("total_capacity_gb")
                        .and_then(Value::as_f64),
                    capabilities.get("free_capacity_gb").and_then(Value::as_f64),
                ) {
                    capabilities.insert(
                        "free_capacity_gb".to_owned(),
                        Value::from(free.min(total - allocated_now).max(0.0)),
                    );
                    capabilities.insert(
                        "allocated_capacity_gb".to_owned(),
                        Value::from(allocated_now),
                    );
                }
                PoolState {
                    name: pool.name,
                    host: pool.host,
                    backend: pool.backend,
                    pool: pool.pool,
                    availability_zone: pool.availability_zone,
                    capabilities,
                    service_up,
                    service_disabled: service.is_none_or(|s| s.disabled),
                }
            })
            .collect())
    }

    async fn schedule_instance(&self, instance_id: Uuid) -> CoreResult<()> {
        let core = &self.core;
        let instance = match core.store.get_share_instance(instance_id).await {
            Ok(instance) => instance,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        if !instance.host.is_empty() || instance.status != "creating" {
            return Ok(()); // already placed (this operation ran before) or no longer wanted
        }
        let share = core.store.get_share(instance.share_id).await?;
        let extra_specs = match instance.share_type_id.or(share.share_type_id) {
            Some(type_id) => match core.store.get_share_type(type_id).await {
                Ok(t) => t.extra_specs,
                Err(StoreError::NotFound(_)) => BTreeMap::new(),
                Err(err) => return Err(err.into()),
            },
            None => BTreeMap::new(),
        };
        let siblings = core.store.list_share_instances(share.id).await?;
        let request = ScheduleRequest {
            size_gb: u64::try_from(share.size_gb).unwrap_or(0),
            share_proto: share.share_proto.clone(),
            availability_zone: instance.availability_zone.clone(),
            availability_zones: None,
            extra_specs,
            replication: None,
            only_host: None,
            excluded_hosts: siblings
                .iter()
                .filter(|s| s.id != instance.id && !s.host.is_empty())
                .map(|s| s.host.clone())
                .collect(),
        };
        let mut pools = self.pool_snapshot().await?;
        let now = core.now();
        match shoal_scheduler::schedule(&request, &mut pools) {
            Ok(pool_name) => {
                let az = pools
                    .iter()
                    .find(|p| p.name == pool_name)
                    .map(|p| p.availability_zone.clone());
                let create = ops::for_instance_host(
                    ops::CREATE_SHARE_INSTANCE,
                    instance.id,
                    &pool_name,
                    serde_json::json!({}),
                    now,
                );
                match core
                    .store
                    .set_share_instance_host_if_unplaced(
                        instance.id,
                        &pool_name,
                        az.as_deref().unwrap_or_default(),
                        create.into_iter().collect(),
                        now,
                    )
                    .await
                {
                    Ok(_) => {
                        info!(share.id = %share.id, share_instance.id = %instance.id, host = %pool_name, "scheduled share instance {} to {pool_name}", instance.id)
                    }
                    Err(StoreError::Conflict(_)) => {} // placed concurrently
                    Err(err) => return Err(err.into()),
                }
            }
            Err(no_host) => {
                warn!(share_instance.id = %instance.id, filter = no_host.last_filter, "no valid host for {}: {no_host}", instance.id);
                self.fail(&instance, &share.project_id, no_host.detail_id())
                    .await?;
            }
        }
        Ok(())
    }

    async fn fail(
        &self,
        instance: &ShareInstanceRow,
        project_id: &str,
        detail_id: &str,
    ) -> CoreResult<()> {
        let core = &self.core;
        let update = ShareInstanceUpdate {
            status: Some("error".to_owned()),
            ..Default::default()
        };
        match core
            .store
            .update_share_instance_if(instance.id, &["creating"], update, Vec::new(), core.now())
            .await
        {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(err) => return Err(err.into()),
        }
        let resource_type = if instance.replica_state.is_some() {
            "SHARE_REPLICA"
        } else {
            "SHARE"
        };
        let resource_id = if resource_type == "SHARE" {
            instance.share_id
        } else {
            instance.id
        };
        messages::record(
            core,
            project_id,
            resource_type,
            &resource_id.to_string(),
            messages::ACTION_ALLOCATE_HOST,
            detail_id,
            "ERROR",
        )
        .await
    }
}

#[async_trait]
impl OperationHandler for SchedulerHandler {
    async fn handle(&self, op: &OperationRow) -> CoreResult<()> {
        match op.kind.as_str() {
            ops::SCHEDULE_SHARE_INSTANCE => match Uuid::parse_str(&op.target_id) {
                Ok(id) => self.schedule_instance(id).await,
                Err(_) => Ok(()), // nothing sane to do with a malformed target; drop it
            },
            other => {
                warn!(
                    op.id = op.id,
                    "the scheduler has no handler for operation kind {other}"
                );
                Ok(())
            }
        }
    }
}
