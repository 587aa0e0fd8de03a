//! Builds the configured back ends of this node: one [`ShareDriver`] per `[[backends]]`
//! section, keyed by `host@backend`.

use std::sync::Arc;

use shoal_driver::dummy::DummyPool;
use shoal_driver::local::LocalPool;
use shoal_driver::{BackendInfo, DataPlane, DummyDriver, LocalDriver, ShareDriver};
use shoal_replication::transport::PeerClient;

use crate::Config;
use crate::config::BackendConfig;

/// Capacity a dummy pool reports when the config gives none.
const DUMMY_CAPACITY_GB_DEFAULT: u64 = 1000;

/// A configured back end with its driver.
#[derive(Clone)]
pub struct Backend {
    /// `host@backend`, the share service's host.
    pub service_host: String,
    /// The back end's configuration.
    pub config: BackendConfig,
    /// The driver instance.
    pub driver: Arc<dyn ShareDriver>,
}

/// The directory of a pool of a `local` back end.
fn local_pool_path(config: &Config, pool: &crate::config::PoolConfig) -> std::path::PathBuf {
    config
        .pool_path(pool)
        .unwrap_or_else(|| config.data_dir.join(&pool.name))
}

/// The pool directories of every `local` back end of `config`: what this node's
/// replication endpoint serves.
pub fn local_pool_paths(config: &Config) -> Vec<std::path::PathBuf> {
    config
        .backends
        .iter()
        .filter(|b| b.driver == "local")
        .flat_map(|b| b.pools.iter().map(|p| local_pool_path(config, p)))
        .collect()
}

/// Instantiates every back end of `config`. Config validation has already checked names.
/// `peers` lets `local` back ends sync secondaries whose active is on another node; `nfs` is
/// the node's NFS data plane, which serves the instances of every `local` back end.
pub fn build_backends(
    config: &Config,
    peers: Option<Arc<PeerClient>>,
    nfs: Option<DataPlane>,
) -> Vec<Backend> {
    config
        .backends
        .iter()
        .map(|backend| {
            let info = BackendInfo {
                host: config.host.clone(),
                backend_name: backend.name.clone(),
                replication_type: backend.replication_type.clone(),
                replication_domain: backend.replication_domain.clone(),
            };
            let driver: Arc<dyn ShareDriver> = match backend.driver.as_str() {
                "dummy" => Arc::new(DummyDriver::new(
                    info,
                    backend
                        .pools
                        .iter()
                        .map(|p| DummyPool {
                            name: p.name.clone(),
                            total_capacity_gb: p
                                .total_capacity_gb
                                .unwrap_or(DUMMY_CAPACITY_GB_DEFAULT),
                            reserved_percentage: p.reserved_percentage,
                        })
                        .collect(),
                    backend.dummy.clone().unwrap_or_default(),
                )),
                _ => {
                    let driver = LocalDriver::new(
                        info,
                        backend
                            .pools
                            .iter()
                            .map(|p| LocalPool {
                                name: p.name.clone(),
                                path: local_pool_path(config, p),
                                reserved_percentage: p.reserved_percentage,
                            })
                            .collect(),
                        backend.local.clone().unwrap_or_default(),
                    );
                    let driver = match &peers {
                        Some(peers) => driver.with_peer_client(peers.clone()),
                        None => driver,
                    };
                    Arc::new(match &nfs {
                        Some(plane) => driver.with_data_plane(plane.clone()),
                        None => driver,
                    })
                }
            };
            Backend {
                service_host: format!("{}@{}", config.host, backend.name),
                config: backend.clone(),
                driver,
            }
        })
        .collect()
}
