//! Fixture builders for the unit tests and proptests.

use serde_json::{Map, Value, json};

use crate::{PoolState, ScheduleRequest};

/// Builds a [`PoolState`] with an up, enabled service in `az1` and the capabilities of a
/// plain thick NFS/CIFS pool: 100 GiB total, 100 free, nothing reserved.
pub(crate) struct PoolBuilder(PoolState);

/// A builder for the pool `name` (`host@backend#pool`).
pub(crate) fn pool(name: &str) -> PoolBuilder {
    let (host, pool) = name.split_once('#').unwrap_or((name, ""));
    let backend = host.split_once('@').map_or("", |(_, b)| b);
    let mut caps = Map::new();
    for (k, v) in [
        ("total_capacity_gb", json!(100)),
        ("free_capacity_gb", json!(100)),
        ("allocated_capacity_gb", json!(0)),
        ("reserved_percentage", json!(0)),
        ("thin_provisioning", json!(false)),
        ("driver_handles_share_servers", json!(false)),
        ("snapshot_support", json!(true)),
        ("storage_protocol", json!("NFS_CIFS")),
        ("share_backend_name", json!(backend)),
    ] {
        caps.insert(k.to_owned(), v);
    }
    PoolBuilder(PoolState {
        name: name.to_owned(),
        host: host.to_owned(),
        backend: backend.to_owned(),
        pool: pool.to_owned(),
        availability_zone: "az1".to_owned(),
        capabilities: caps,
        service_up: true,
        service_disabled: false,
    })
}

impl PoolBuilder {
    pub(crate) fn cap(mut self, key: &str, value: Value) -> Self {
        self.0.capabilities.insert(key.to_owned(), value);
        self
    }

    pub(crate) fn capacity(self, total: u64, free: u64) -> Self {
        self.cap("total_capacity_gb", json!(total))
            .cap("free_capacity_gb", json!(free))
    }

    pub(crate) fn thin(self) -> Self {
        self.cap("thin_provisioning", json!(true))
    }

    pub(crate) fn replication(self, replication_type: &str, domain: &str) -> Self {
        self.cap("replication_type", json!(replication_type))
            .cap("replication_domain", json!(domain))
    }

    pub(crate) fn az(mut self, az: &str) -> Self {
        self.0.availability_zone = az.to_owned();
        self
    }

    pub(crate) fn down(mut self) -> Self {
        self.0.service_up = false;
        self
    }

    pub(crate) fn disabled(mut self) -> Self {
        self.0.service_disabled = true;
        self
    }

    pub(crate) fn build(self) -> PoolState {
        self.0
    }
}

/// An NFS share of `size_gb` with no type constraints.
pub(crate) fn request(size_gb: u64) -> ScheduleRequest {
    ScheduleRequest {
        size_gb,
        share_proto: "NFS".to_owned(),
        ..ScheduleRequest::default()
    }
}
