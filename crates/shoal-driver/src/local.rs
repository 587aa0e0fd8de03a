//! The `local` back end: every pool is a directory on a POSIX filesystem.
//!
//! Layout of a pool directory: `shares/<instance-id>/` per share instance (from the next
//! issue on). Capacity is measured, never configured: total and free space come from
//! `statvfs` of the pool directory, so two pools on one filesystem each see its full size.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::{BackendInfo, DriverError, GIB, PoolStats, ShareDriver};

/// One configured pool of a local back end.
#[derive(Debug, Clone)]
pub struct LocalPool {
    /// Pool name.
    pub name: String,
    /// Pool directory (created by `do_setup`).
    pub path: PathBuf,
    /// Percentage the scheduler keeps free.
    pub reserved_percentage: u32,
}

/// Driver for directory-backed pools.
#[derive(Debug, Clone)]
pub struct LocalDriver {
    info: BackendInfo,
    pools: Vec<LocalPool>,
}

impl LocalDriver {
    /// Builds the driver; nothing touches the disk until `do_setup`.
    pub fn new(info: BackendInfo, pools: Vec<LocalPool>) -> Self {
        Self { info, pools }
    }

    fn pool_unavailable(pool: &LocalPool, reason: impl std::fmt::Display) -> DriverError {
        DriverError::PoolUnavailable { pool: pool.name.clone(), reason: reason.to_string() }
    }

    fn stats_of(&self, pool: &LocalPool) -> Result<PoolStats, DriverError> {
        let (total, free) = filesystem_space(&pool.path).map_err(|e| Self::pool_unavailable(pool, e))?;
        Ok(PoolStats {
            pool_name: pool.name.clone(),
            total_capacity_gb: round_gb(total as f64 / GIB),
            free_capacity_gb: round_gb(free as f64 / GIB),
            // No share is placed yet in this stage; allocations arrive with the shares issue.
            allocated_capacity_gb: 0.0,
            reserved_percentage: pool.reserved_percentage,
            thin_provisioning: false,
            driver_handles_share_servers: false,
            replication_type: self.info.replication_type.clone(),
            replication_domain: self.info.replication_domain.clone(),
            snapshot_support: false,
            share_backend_name: self.info.backend_name.clone(),
            driver_name: "local".to_owned(),
            storage_protocol: "NFS_CIFS".to_owned(),
        })
    }
}

/// Total and available bytes of the filesystem holding `path`.
fn filesystem_space(path: &Path) -> std::io::Result<(u64, u64)> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let fragment = stat.fragment_size();
    Ok((stat.blocks() * fragment, stat.blocks_available() * fragment))
}

fn round_gb(gb: f64) -> f64 {
    (gb * 100.0).round() / 100.0
}

#[async_trait]
impl ShareDriver for LocalDriver {
    fn driver_name(&self) -> &'static str {
        "local"
    }

    async fn do_setup(&self) -> Result<(), DriverError> {
        for pool in &self.pools {
            let shares = pool.path.join("shares");
            tokio::fs::create_dir_all(&shares).await.map_err(|e| Self::pool_unavailable(pool, e))?;
            // Pool directories hold every project's data: keep them private to shoal.
            set_private(&pool.path).await.map_err(|e| Self::pool_unavailable(pool, e))?;
        }
        Ok(())
    }

    /// Stats of the pools that can be measured. A pool whose directory vanished or became
    /// unreadable is left out (and logged), so the scheduler stops offering it while the
    /// back end's other pools keep working.
    async fn get_share_stats(&self) -> Result<Vec<PoolStats>, DriverError> {
        let mut stats = Vec::with_capacity(self.pools.len());
        for pool in &self.pools {
            match self.stats_of(pool) {
                Ok(stat) => stats.push(stat),
                Err(err) => tracing::warn!(pool = %pool.name, error = %err, "leaving pool {} out of the report: {err}", pool.name),
            }
        }
        Ok(stats)
    }
}

async fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(dir: &Path) -> LocalDriver {
        LocalDriver::new(
            BackendInfo {
                backend_name: "local1".into(),
                replication_type: Some("readable".into()),
                replication_domain: Some("d1".into()),
            },
            vec![LocalPool { name: "pool1".into(), path: dir.join("pool1"), reserved_percentage: 5 }],
        )
    }

    #[tokio::test]
    async fn setup_creates_private_pool_and_stats_measure_the_filesystem() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let driver = driver(dir.path());
        driver.do_setup().await.unwrap();
        let meta = std::fs::metadata(dir.path().join("pool1")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        assert!(dir.path().join("pool1/shares").is_dir());
        let stats = driver.get_share_stats().await.unwrap();
        assert_eq!(stats.len(), 1);
        let s = &stats[0];
        assert_eq!(s.pool_name, "pool1");
        assert!(s.total_capacity_gb > 0.0 && s.free_capacity_gb <= s.total_capacity_gb);
        assert_eq!(s.replication_domain.as_deref(), Some("d1"));
        assert_eq!(s.reserved_percentage, 5);
    }

    #[tokio::test]
    async fn vanished_pool_is_left_out_of_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let driver = driver(dir.path());
        assert!(driver.get_share_stats().await.unwrap().is_empty());
        let pool = &driver.pools[0];
        assert!(matches!(driver.stats_of(pool), Err(DriverError::PoolUnavailable { .. })));
    }
}
