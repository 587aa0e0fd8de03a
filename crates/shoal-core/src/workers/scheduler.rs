//! The scheduler role (Manila's `FilterScheduler` driven by `manila-scheduler`): places an
//! unplaced share instance on a pool. It builds a snapshot of the pools from the share
//! services' latest reports, with allocations read fresh from the database (so placements
//! made since the last report count), runs `shoal-scheduler`'s pure filters and weighers,
//! and writes the chosen `host@backend#pool` with a compare-and-set together with the
//! creation operation for that host. No valid host leaves the instance in `error` with a
//! user message naming the filter that eliminated the last candidate.
//!
//! Secondary replicas (spec `replication.md` §8) are scheduled the same way with the
//! replication side of the request filled in: the active replica's pool (the new one must
//! share its `replication_domain`), the share's `replication_type`, the type's zones, no
//! `share_backend_name`, and the pools of every other instance excluded. Their failure
//! sets `replica_state` `error` too, and their placement enqueues `create_share_replica`
//! instead of `create_share_instance`. The admin `only_host` hint travels in the
//! scheduling operation's payload.
//!
//! Manage (`schedule_manage_share`) does not choose a pool: it checks that the pool the
//! administrator named passes the filters for the share type, as Manila's
//! `host_passes_filters`, before the share service adopts the path.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use shoal_scheduler::{PoolState, ReplicaRequest, ScheduleRequest};
use shoal_store::{
    OperationRow, ServiceFilter, ShareInstanceRow, ShareInstanceUpdate, ShareRow, StoreError,
};
use tracing::{info, warn};
use uuid::Uuid;

use super::OperationHandler;
use crate::share_lifecycle::{STATUS_MANAGE_ERROR, STATUS_MANAGE_STARTING};
use crate::shares::REPLICA_STATE_ACTIVE;
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
                // Where the pool's node serves replication (ReplicationPeerFilter).
                if let Some(address) = service.and_then(|s| s.replication_address.clone()) {
                    capabilities.insert(
                        shoal_scheduler::REPLICATION_ADDRESS_CAPABILITY.to_owned(),
                        Value::String(address),
                    );
                }
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

    async fn schedule_instance(&self, instance_id: Uuid, payload: &Value) -> CoreResult<()> {
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
        let mut extra_specs = match instance.share_type_id.or(share.share_type_id) {
            Some(type_id) => match core.store.get_share_type(type_id).await {
                Ok(t) => t.extra_specs,
                Err(StoreError::NotFound(_)) => BTreeMap::new(),
                Err(err) => return Err(err.into()),
            },
            None => BTreeMap::new(),
        };
        let siblings = core.store.list_share_instances(share.id).await?;
        let replication = replica_request(&share, &instance, &siblings);
        if replication.is_some() {
            // A replica may land on another back end of the replication domain (§8).
            extra_specs.remove("share_backend_name");
        }
        let is_replica = replication.is_some();
        // Affinity hints are resolved now, against where the named shares are at this
        // moment, as Manila's filters do.
        let (same_host, different_host) = crate::scheduler_hints::resolve(core, payload).await?;
        // A share created from a snapshot goes near it (CreateFromSnapshotFilter,
        // HostAffinityWeigher) and is created from the snapshot's shown instance.
        let source = match (share.snapshot_id, is_replica) {
            (Some(snapshot_id), false) => self.snapshot_source(snapshot_id).await?,
            _ => None,
        };
        let request = ScheduleRequest {
            size_gb: u64::try_from(share.size_gb).unwrap_or(0),
            share_proto: share.share_proto.clone(),
            availability_zone: instance.availability_zone.clone(),
            availability_zones: type_availability_zones(&extra_specs),
            extra_specs,
            replication,
            only_host: only_host_hint(payload),
            // Every other instance's pool, whatever its state: an errored replica that was
            // placed still blocks its pool (one replica per pool).
            excluded_hosts: siblings
                .iter()
                .filter(|s| s.id != instance.id && !s.host.is_empty())
                .map(|s| s.host.clone())
                .collect(),
            same_host,
            different_host,
            snapshot_host: source.as_ref().map(|s| s.host.clone()),
            snapshot_availability_zone: source.as_ref().and_then(|s| s.availability_zone.clone()),
        };
        let mut pools = self.pool_snapshot().await?;
        let now = core.now();
        match shoal_scheduler::schedule(&request, &mut pools) {
            Ok(pool_name) => {
                let az = pools
                    .iter()
                    .find(|p| p.name == pool_name)
                    .map(|p| p.availability_zone.clone());
                let kind = if is_replica {
                    ops::CREATE_SHARE_REPLICA
                } else {
                    ops::CREATE_SHARE_INSTANCE
                };
                let payload = match &source {
                    Some(source) => serde_json::json!(ops::CreateInstancePayload {
                        snapshot_instance_id: Some(source.snapshot_instance_id),
                    }),
                    None => serde_json::json!({}),
                };
                let create = ops::for_instance_host(kind, instance.id, &pool_name, payload, now);
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
                        info!(share.id = %share.id, share_instance.id = %instance.id, host = %pool_name, replica = is_replica, "scheduled share instance {} to {pool_name}", instance.id)
                    }
                    Err(StoreError::Conflict(_)) => {} // placed concurrently
                    Err(err) => return Err(err.into()),
                }
            }
            Err(no_host) => {
                warn!(share_instance.id = %instance.id, filter = no_host.last_filter, "no valid host for {}: {no_host}", instance.id);
                self.fail(
                    &instance,
                    &share.project_id,
                    is_replica,
                    no_host.detail_id(),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Manila's `SchedulerManager.manage_share`: the pool named in a manage request must
    /// pass the default filters for the share type's extra specs with a size of 0
    /// (`host_passes_filters`); then the pool's share service gets `manage_share`, enqueued
    /// with a compare-and-set on `manage_starting` so an instance unmanaged or deleted
    /// meanwhile gets nothing. Otherwise the share goes to `manage_error` (no user message:
    /// Manila sends none here). A second run after a crash may enqueue `manage_share` again,
    /// which the share manager ignores once the instance has left `manage_starting`.
    async fn manage_share(&self, instance_id: Uuid, payload: &Value) -> CoreResult<()> {
        let core = &self.core;
        let instance = match core.store.get_share_instance(instance_id).await {
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
        let extra_specs = match instance.share_type_id.or(share.share_type_id) {
            Some(type_id) => match core.store.get_share_type(type_id).await {
                Ok(t) => t.extra_specs,
                Err(StoreError::NotFound(_)) => BTreeMap::new(),
                Err(err) => return Err(err.into()),
            },
            None => BTreeMap::new(),
        };
        let request = manage_request(&share, extra_specs);
        let pools = self.pool_snapshot().await?;
        let now = core.now();
        let target: Vec<PoolState> = pools
            .into_iter()
            .filter(|p| p.name == instance.host)
            .collect();
        match shoal_scheduler::filter_pools(&request, &target) {
            Ok(_) => {
                let manage = ops::for_instance_host(
                    ops::MANAGE_SHARE,
                    instance.id,
                    &instance.host,
                    payload.clone(),
                    now,
                );
                match core
                    .store
                    .update_share_instance_if(
                        instance.id,
                        &[STATUS_MANAGE_STARTING],
                        ShareInstanceUpdate::default(),
                        manage.into_iter().collect(),
                        now,
                    )
                    .await
                {
                    Ok(_) => {
                        info!(share.id = %share.id, share_instance.id = %instance.id, host = %instance.host, "pool {} passes the filters for managing share {}", instance.host, share.id);
                    }
                    Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Err(no_host) => {
                warn!(share.id = %share.id, share_instance.id = %instance.id, filter = no_host.last_filter, "Failed to schedule manage_share: Cannot place share {} on {}, the last executed filter was {}.", share.id, instance.host, no_host.last_filter);
                let update = ShareInstanceUpdate {
                    status: Some(STATUS_MANAGE_ERROR.to_owned()),
                    ..Default::default()
                };
                match core
                    .store
                    .update_share_instance_if(
                        instance.id,
                        &[STATUS_MANAGE_STARTING],
                        update,
                        Vec::new(),
                        now,
                    )
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    }

    /// Where the snapshot a share is created from lives: the pool and zone of its shown
    /// instance's share instance. `None` when the snapshot or its instance is gone (the
    /// share is then scheduled like any other and its creation fails on the back end).
    async fn snapshot_source(&self, snapshot_id: Uuid) -> CoreResult<Option<SnapshotSource>> {
        let Some(snapshot) =
            crate::snapshots::find_snapshot(&self.core, &snapshot_id.to_string()).await?
        else {
            return Ok(None);
        };
        let Some(instance) = snapshot.instance() else {
            return Ok(None);
        };
        Ok(snapshot
            .share_instances
            .iter()
            .find(|s| s.id == instance.share_instance_id)
            .map(|s| SnapshotSource {
                snapshot_instance_id: instance.id,
                host: s.host.clone(),
                availability_zone: s.availability_zone.clone(),
            }))
    }

    /// No valid host: the instance goes to `error` (a replica also to `replica_state`
    /// `error`, spec §6.3) and the project gets a message naming the last filter.
    async fn fail(
        &self,
        instance: &ShareInstanceRow,
        project_id: &str,
        is_replica: bool,
        detail_id: &str,
    ) -> CoreResult<()> {
        let core = &self.core;
        let update = ShareInstanceUpdate {
            status: Some("error".to_owned()),
            replica_state: is_replica.then(|| Some("error".to_owned())),
            ..Default::default()
        };
        match core
            .store
            .update_share_instance_if(instance.id, &["creating"], update, Vec::new(), core.now())
            .await
        {
            Ok(_) => {}
            // Deleted or no longer creating meanwhile: nothing failed that anyone waits for.
            Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => return Ok(()),
            Err(err) => return Err(err.into()),
        }
        let (resource_type, resource_id) = if instance.replica_state.is_some() {
            (messages::RESOURCE_SHARE_REPLICA, instance.id)
        } else {
            (messages::RESOURCE_SHARE, instance.share_id)
        };
        messages::record(
            core,
            project_id,
            resource_type,
            &resource_id.to_string(),
            messages::ACTION_ALLOCATE_HOST,
            detail_id,
            messages::LEVEL_ERROR,
        )
        .await
    }
}

/// The snapshot instance a share is created from, for scheduling.
struct SnapshotSource {
    snapshot_instance_id: Uuid,
    /// `host@backend#pool` of the snapshot instance's share instance.
    host: String,
    availability_zone: Option<String>,
}

/// The replication side of the request when `instance` is a secondary replica: the share
/// is replicated and the instance has a `replica_state` (the share's first instance has
/// none until it is created). The active replica is the first other instance whose
/// `replica_state` is `active` with a pool; when there is none (deleted meanwhile), its
/// host is empty, no pool shares its unknown replication domain, and the replica fails
/// scheduling with the ShareReplication filter rather than being placed as a primary.
fn replica_request(
    share: &ShareRow,
    instance: &ShareInstanceRow,
    siblings: &[ShareInstanceRow],
) -> Option<ReplicaRequest> {
    let replication_type = share
        .replication_type
        .as_deref()
        .filter(|t| !t.is_empty())?;
    instance.replica_state.as_ref()?;
    let active_replica_host = siblings
        .iter()
        .filter(|s| s.id != instance.id && !s.host.is_empty())
        .find(|s| s.replica_state.as_deref() == Some(REPLICA_STATE_ACTIVE))
        .map(|s| s.host.clone())
        .unwrap_or_default();
    Some(ReplicaRequest {
        active_replica_host,
        replication_type: replication_type.to_owned(),
    })
}

/// The request Manila's `manage` builds for the scheduler (`_get_request_spec_dict` with
/// `size=0`): the share's protocol and its type's extra specs and zones; no zone of its
/// own, no replication, no hints.
fn manage_request(share: &ShareRow, extra_specs: BTreeMap<String, String>) -> ScheduleRequest {
    ScheduleRequest {
        size_gb: 0,
        share_proto: share.share_proto.clone(),
        availability_zones: type_availability_zones(&extra_specs),
        extra_specs,
        ..Default::default()
    }
}

/// The type's `availability_zones` extra spec as a list (`None` when unset or empty).
fn type_availability_zones(extra_specs: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let azs: Vec<String> = extra_specs
        .get("availability_zones")?
        .split(',')
        .map(str::trim)
        .filter(|az| !az.is_empty())
        .map(str::to_owned)
        .collect();
    (!azs.is_empty()).then_some(azs)
}

/// The `only_host` hint of a scheduling operation. The API puts it in the payload only for
/// admins, so it is honoured as given.
fn only_host_hint(payload: &Value) -> Option<String> {
    payload
        .get("only_host")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

#[async_trait]
impl OperationHandler for SchedulerHandler {
    async fn handle(&self, op: &OperationRow) -> CoreResult<()> {
        match op.kind.as_str() {
            ops::SCHEDULE_SHARE_INSTANCE => match Uuid::parse_str(&op.target_id) {
                Ok(id) => self.schedule_instance(id, &op.payload).await,
                Err(_) => Ok(()), // nothing sane to do with a malformed target; drop it
            },
            ops::SCHEDULE_MANAGE_SHARE => match Uuid::parse_str(&op.target_id) {
                Ok(id) => self.manage_share(id, &op.payload).await,
                Err(_) => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn share(replication_type: Option<&str>) -> ShareRow {
        ShareRow {
            id: Uuid::new_v4(),
            project_id: "p".to_owned(),
            user_id: "u".to_owned(),
            name: None,
            description: None,
            size_gb: 1,
            share_proto: "NFS".to_owned(),
            share_type_id: None,
            is_public: false,
            replication_type: replication_type.map(str::to_owned),
            snapshot_id: None,
            share_group_id: None,
            task_state: None,
            metadata: BTreeMap::new(),
            created_at: chrono::Utc::now(),
            updated_at: None,
            is_soft_deleted: false,
            scheduled_to_be_deleted_at: None,
        }
    }

    fn instance(host: &str, replica_state: Option<&str>) -> ShareInstanceRow {
        ShareInstanceRow {
            id: Uuid::new_v4(),
            share_id: Uuid::nil(),
            status: "creating".to_owned(),
            replica_state: replica_state.map(str::to_owned),
            host: host.to_owned(),
            availability_zone: None,
            share_type_id: None,
            share_network_id: None,
            share_server_id: None,
            cast_rules_to_readonly: false,
            access_rules_status: "active".to_owned(),
            progress: None,
            created_at: chrono::Utc::now(),
            updated_at: None,
            scheduled_at: None,
            launched_at: None,
            terminated_at: None,
            replica_epoch: 0,
        }
    }

    #[test]
    fn secondaries_get_the_active_replica_host() {
        let active = instance("h@b1#p", Some("active"));
        let other = instance("h@b2#p", Some("in_sync"));
        let new = instance("", Some("out_of_sync"));
        let siblings = vec![other.clone(), active.clone(), new.clone()];
        let req = replica_request(&share(Some("readable")), &new, &siblings);
        assert_eq!(
            req,
            Some(ReplicaRequest {
                active_replica_host: "h@b1#p".to_owned(),
                replication_type: "readable".to_owned(),
            })
        );
    }

    #[test]
    fn primaries_are_not_replica_requests() {
        // The first instance of a replicated share has no replica_state yet.
        let first = instance("", None);
        let siblings = vec![first.clone()];
        assert_eq!(replica_request(&share(Some("dr")), &first, &siblings), None);
        // A share without replication never builds one.
        let odd = instance("", Some("out_of_sync"));
        assert_eq!(
            replica_request(&share(None), &odd, std::slice::from_ref(&odd)),
            None
        );
    }

    #[test]
    fn secondary_without_active_replica_has_no_active_host() {
        let new = instance("", Some("out_of_sync"));
        let errored = instance("h@b1#p", Some("error"));
        let req = replica_request(&share(Some("dr")), &new, &[errored, new.clone()]);
        assert_eq!(req.map(|r| r.active_replica_host), Some(String::new()));
    }

    #[test]
    fn type_zones_and_only_host() {
        let specs = |v: &str| BTreeMap::from([("availability_zones".to_owned(), v.to_owned())]);
        assert_eq!(
            type_availability_zones(&specs("az1, az2")),
            Some(vec!["az1".to_owned(), "az2".to_owned()])
        );
        assert_eq!(type_availability_zones(&specs("")), None);
        assert_eq!(type_availability_zones(&BTreeMap::new()), None);

        assert_eq!(
            only_host_hint(&json!({"only_host": "h@b#p"})).as_deref(),
            Some("h@b#p")
        );
        assert_eq!(only_host_hint(&json!({})), None);
        assert_eq!(only_host_hint(&json!({"only_host": ""})), None);
        assert_eq!(only_host_hint(&json!(null)), None);
    }
}
