//! The `dummy` back end, like Manila's dummy driver: it stores nothing and reports the
//! capacities it was configured with, so the control plane can be run at scale and failure
//! paths can be driven from tests. It lives in the product, not in test code, because
//! benchmarks and operators' dry runs use it too.

use async_trait::async_trait;

use crate::{BackendInfo, DriverError, PoolStats, ShareDriver};

/// A configured dummy pool.
#[derive(Debug, Clone)]
pub struct DummyPool {
    /// Pool name.
    pub name: String,
    /// Capacity reported, in GiB.
    pub total_capacity_gb: u64,
    /// Percentage the scheduler keeps free.
    pub reserved_percentage: u32,
}

/// Driver that keeps no data.
#[derive(Debug, Clone)]
pub struct DummyDriver {
    info: BackendInfo,
    pools: Vec<DummyPool>,
}

impl DummyDriver {
    /// Builds the driver.
    pub fn new(info: BackendInfo, pools: Vec<DummyPool>) -> Self {
        Self { info, pools }
    }
}

#[async_trait]
impl ShareDriver for DummyDriver {
    fn driver_name(&self) -> &'static str {
        "dummy"
    }

    async fn do_setup(&self) -> Result<(), DriverError> {
        Ok(())
    }

    async fn get_share_stats(&self) -> Result<Vec<PoolStats>, DriverError> {
        Ok(self
            .pools
            .iter()
            .map(|pool| PoolStats {
                pool_name: pool.name.clone(),
                total_capacity_gb: pool.total_capacity_gb as f64,
                free_capacity_gb: pool.total_capacity_gb as f64,
                allocated_capacity_gb: 0.0,
                reserved_percentage: pool.reserved_percentage,
                thin_provisioning: false,
                driver_handles_share_servers: false,
                replication_type: self.info.replication_type.clone(),
                replication_domain: self.info.replication_domain.clone(),
                snapshot_support: false,
                share_backend_name: self.info.backend_name.clone(),
                driver_name: "dummy".to_owned(),
                storage_protocol: "NFS_CIFS".to_owned(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_configured_capacity() {
        let driver = DummyDriver::new(
            BackendInfo { backend_name: "dummy1".into(), replication_type: Some("writable".into()), replication_domain: None },
            vec![DummyPool { name: "fake_pool".into(), total_capacity_gb: 1000, reserved_percentage: 0 }],
        );
        let stats = driver.get_share_stats().await.unwrap();
        assert_eq!(stats[0].total_capacity_gb, 1000.0);
        assert_eq!(stats[0].free_capacity_gb, 1000.0);
        assert_eq!(stats[0].replication_type.as_deref(), Some("writable"));
    }
}
