//! Manila's `services`: one row per (host, binary), kept alive by heartbeats from the
//! [`crate::reporter`]. Whether a service is `up` is derived, never stored: its last
//! heartbeat must be younger than `service_down_time`. Operators can disable a service so
//! that it gets no new work.

use chrono::{DateTime, Utc};
use shoal_store::{ServiceFilter, ServiceRow};

use crate::{Core, CoreError, CoreResult};

/// A service as the API shows it.
#[derive(Debug, Clone)]
pub struct ServiceView {
    /// The stored row.
    pub row: ServiceRow,
    /// True when the last heartbeat is recent enough.
    pub up: bool,
}

/// Filters of `GET /v2/services` (Manila `service_get_all_with_filters`).
#[derive(Debug, Clone, Default)]
pub struct ServiceQuery {
    /// Exact host.
    pub host: Option<String>,
    /// Exact binary.
    pub binary: Option<String>,
    /// Zone name.
    pub zone: Option<String>,
    /// `up` or `down`.
    pub state: Option<String>,
    /// `enabled` or `disabled`.
    pub status: Option<String>,
}

/// Whether a heartbeat at `updated_at` still counts at `now`.
pub fn is_up(core: &Core, updated_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let down_time = chrono::Duration::from_std(core.config.periodic.service_down_time)
        .unwrap_or(chrono::Duration::MAX);
    now.signed_duration_since(updated_at) <= down_time
}

/// Where the node of each share service (`host@backend`) serves its replication endpoint,
/// as last published; services that publish none are left out. One query serves a whole
/// replica set (see [`ReplicationAddresses::of`]).
pub async fn replication_addresses(core: &Core) -> CoreResult<ReplicationAddresses> {
    let rows = core
        .store
        .list_services(ServiceFilter {
            host: None,
            binary: Some(crate::config::Role::Share.binary().to_owned()),
        })
        .await?;
    Ok(ReplicationAddresses(
        rows.into_iter()
            .filter_map(|row| Some((row.host, row.replication_address?)))
            .collect(),
    ))
}

/// Replication endpoints by share service host (from [`replication_addresses`]).
#[derive(Debug, Default)]
pub struct ReplicationAddresses(std::collections::HashMap<String, String>);

impl ReplicationAddresses {
    /// The endpoint of the node behind `host` (`host@backend#pool` or `host@backend`).
    pub fn of(&self, host: &str) -> Option<String> {
        let service_host = host.split('#').next().unwrap_or(host);
        self.0.get(service_host).cloned()
    }
}

/// Services matching the query, in id order.
pub async fn list_services(core: &Core, query: &ServiceQuery) -> CoreResult<Vec<ServiceView>> {
    let rows = core
        .store
        .list_services(ServiceFilter {
            host: query.host.clone(),
            binary: query.binary.clone(),
        })
        .await?;
    let now = core.now();
    Ok(rows
        .into_iter()
        .map(|row| {
            let up = is_up(core, row.updated_at, now);
            ServiceView { row, up }
        })
        .filter(|s| {
            query
                .zone
                .as_ref()
                .is_none_or(|z| *z == s.row.availability_zone)
        })
        .filter(|s| {
            query
                .state
                .as_ref()
                .is_none_or(|st| st == if s.up { "up" } else { "down" })
        })
        .filter(|s| {
            let status = if s.row.disabled {
                "disabled"
            } else {
                "enabled"
            };
            query.status.as_ref().is_none_or(|st| st == status)
        })
        .collect())
}

/// Enables or disables the service `binary` on `host`.
pub async fn set_service_disabled(
    core: &Core,
    host: &str,
    binary: &str,
    disabled: bool,
    reason: Option<&str>,
) -> CoreResult<ServiceRow> {
    core.store
        .set_service_disabled(host, binary, disabled, reason)
        .await
        .map_err(|e| match e {
            shoal_store::StoreError::NotFound(_) => {
                CoreError::not_found(format!("Service {host} could not be found."))
            }
            other => other.into(),
        })
}
