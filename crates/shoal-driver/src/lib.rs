//! Share back-end drivers, modelled on Manila's `ShareDriver` interface.
//!
//! A driver owns the pools of one back end (`host@backend`). The share role asks it for pool
//! statistics on every report interval and publishes them for the scheduler. The `local`
//! driver keeps each pool in a directory; the `dummy` driver, like Manila's, stores nothing
//! and reports configured capacities so the control plane can be exercised at scale.

pub mod dummy;
pub mod local;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use dummy::DummyDriver;
pub use local::LocalDriver;

/// Errors a driver reports. The share manager turns them into `error` states.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The pool's storage is missing or unreadable (e.g. its directory vanished).
    #[error("pool {pool} is unavailable: {reason}")]
    PoolUnavailable {
        /// Pool name.
        pool: String,
        /// What went wrong.
        reason: String,
    },
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Capabilities and capacity of one pool, as Manila's `get_share_stats` reports them.
/// Serialised into the `pools.capabilities` column and shown by `/scheduler-stats/pools/detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStats {
    /// Pool name (the part after `#`).
    pub pool_name: String,
    /// Total capacity in GiB.
    pub total_capacity_gb: f64,
    /// Free capacity in GiB, after what shares already allocated.
    pub free_capacity_gb: f64,
    /// Sum of the sizes of shares placed on the pool, in GiB.
    pub allocated_capacity_gb: f64,
    /// Percentage of capacity the scheduler must leave free.
    pub reserved_percentage: u32,
    /// Whether the scheduler may over-commit (`free` counts allocations, not real usage).
    pub thin_provisioning: bool,
    /// Manila's capability; shoal drivers never manage share servers.
    pub driver_handles_share_servers: bool,
    /// Replication style the pool supports, if any.
    pub replication_type: Option<String>,
    /// Pools replicate only with pools of the same domain.
    pub replication_domain: Option<String>,
    /// Snapshot support (not yet implemented by any shoal driver).
    pub snapshot_support: bool,
    /// Back-end name, Manila's `share_backend_name`.
    pub share_backend_name: String,
    /// Driver name, Manila's `vendor_name`/`driver_version` live beside it.
    pub driver_name: String,
    /// Protocol the pool serves, Manila's `storage_protocol`.
    pub storage_protocol: String,
}

/// Static facts of a back end that every pool report repeats.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// Section name (`backend` of `host@backend#pool`).
    pub backend_name: String,
    /// Replication style advertised, if any.
    pub replication_type: Option<String>,
    /// Replication domain, if any.
    pub replication_domain: Option<String>,
}

/// The interface every back end implements. Later issues add create/delete/extend/shrink,
/// update_access and the replica calls; only stats are needed by the pool reports.
#[async_trait]
pub trait ShareDriver: Send + Sync + 'static {
    /// Driver name (`local`, `dummy`).
    fn driver_name(&self) -> &'static str;
    /// Checks the back end can run: e.g. pool directories exist and are writable.
    async fn do_setup(&self) -> Result<(), DriverError>;
    /// Capacity and capabilities of every pool, freshly measured.
    async fn get_share_stats(&self) -> Result<Vec<PoolStats>, DriverError>;
}

/// Bytes in a GiB.
pub(crate) const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
