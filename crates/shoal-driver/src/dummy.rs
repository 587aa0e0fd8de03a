//! The `dummy` back end, like Manila's dummy driver: it keeps shares in memory, reports the
//! capacities it was configured with, and can be slowed down and made to fail per method, so
//! the control plane can be run at scale and its failure paths driven from tests. It lives in
//! the product, not in test code, because benchmarks and operators' dry runs use it too.
//!
//! State: which share instances exist, their sizes, rules and (test-set) usage live in a
//! `Mutex<BTreeMap>` and nothing is persisted. A new `DummyDriver` (a restarted node) knows no
//! share, so `ensure_share`, `extend_share`, `update_access`... answer
//! [`DriverError::NotFound`] for shares created before the restart. That is deliberate: it is
//! how tests exercise the "back end lost the share" path.
//!
//! Replies follow Manila's dummy (`manila/tests/share/drivers/dummy.py`): three export
//! locations per share, and `update_access` serves only `ip` rules on NFS shares and only
//! `user` rules on CIFS shares; any other rule gets [`AccessRuleResult::Error`].
//!
//! Replicas are share instances too and live in the same map: `create_replica` answers
//! `in_sync` with three export locations and no sync record, `update_replica_state` answers
//! `in_sync`, and `promote_replica` answers `active` with the replica's locations, whatever
//! the share's `replication_type`, as Manila's dummy does. So a `writable` share's new replica
//! is `in_sync`, not `active`: it can be promoted, reset and resynced like any secondary
//! (Manila's tempest tests rely on that). Manila's dummy reports every other replica `in_sync`
//! from `promote_replica`; here the manager demotes the former active and its next
//! `update_replica_state` answers `in_sync`, which ends in the same states. The dummy never
//! moves data; the only sync it reports is an empty one for each promotion, spanning the
//! `promote_replica` call, so the replication history says when promotions ran (multi-node
//! tests check with it that two promotions of one share never overlap).
//!
//! Manage follows Manila's dummy too: `unmanage` forgets the share but remembers its mount
//! point (the part of its export path after `:/`) as unmanaged, and `manage_existing` succeeds
//! only for an export path whose mount point is such an unmanaged one (any address before it),
//! which it then consumes; the share gets fresh export locations as on create and size 1 GiB
//! (Manila's dummy always answers 1; the driver option `size` overrides it, for tests). Any
//! other path fails with Manila's "Invalid export specified..." text, so the share ends in
//! `manage_error`. Snapshots alike: `unmanage_snapshot` remembers the provider location and
//! `manage_existing_snapshot` adopts only such a location. Like the rest, this is in memory.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    AccessRule, AccessRuleResult, BackendInfo, DriverError, ExportLocation, GIB_BYTES,
    ManageResult, PoolStats, ReplicaContext, ReplicaRef, ReplicaResult, ShareDriver,
    ShareInstanceRef, SnapshotProgress, SnapshotRef, SnapshotResult, SyncRecord, check_protocol,
    check_resize, effective_rules,
};

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

/// A driver method that can be delayed or made to fail; the snake-case name is the key in
/// the `[backends.dummy]` tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DummyMethod {
    /// [`ShareDriver::do_setup`].
    DoSetup,
    /// [`ShareDriver::get_share_stats`].
    GetShareStats,
    /// [`ShareDriver::create_share`].
    CreateShare,
    /// [`ShareDriver::delete_share`].
    DeleteShare,
    /// [`ShareDriver::extend_share`].
    ExtendShare,
    /// [`ShareDriver::shrink_share`].
    ShrinkShare,
    /// [`ShareDriver::ensure_share`].
    EnsureShare,
    /// [`ShareDriver::update_access`].
    UpdateAccess,
    /// [`ShareDriver::get_share_usage_bytes`].
    GetShareUsageBytes,
    /// [`ShareDriver::create_replica`].
    CreateReplica,
    /// [`ShareDriver::delete_replica`].
    DeleteReplica,
    /// [`ShareDriver::promote_replica`].
    PromoteReplica,
    /// [`ShareDriver::update_replica_state`].
    UpdateReplicaState,
    /// [`ShareDriver::manage_existing`].
    ManageExisting,
    /// [`ShareDriver::unmanage`].
    Unmanage,
    /// [`ShareDriver::create_snapshot`].
    CreateSnapshot,
    /// [`ShareDriver::delete_snapshot`].
    DeleteSnapshot,
    /// [`ShareDriver::revert_to_snapshot`].
    RevertToSnapshot,
    /// [`ShareDriver::create_share_from_snapshot`].
    CreateShareFromSnapshot,
    /// [`ShareDriver::snapshot_update_access`].
    SnapshotUpdateAccess,
    /// [`ShareDriver::manage_existing_snapshot`].
    ManageExistingSnapshot,
    /// [`ShareDriver::unmanage_snapshot`].
    UnmanageSnapshot,
    /// [`ShareDriver::create_replica_snapshot`].
    CreateReplicaSnapshot,
    /// [`ShareDriver::update_replica_snapshot`].
    UpdateReplicaSnapshot,
}

impl DummyMethod {
    /// The method's name, as in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DoSetup => "do_setup",
            Self::GetShareStats => "get_share_stats",
            Self::CreateShare => "create_share",
            Self::DeleteShare => "delete_share",
            Self::ExtendShare => "extend_share",
            Self::ShrinkShare => "shrink_share",
            Self::EnsureShare => "ensure_share",
            Self::UpdateAccess => "update_access",
            Self::GetShareUsageBytes => "get_share_usage_bytes",
            Self::CreateReplica => "create_replica",
            Self::DeleteReplica => "delete_replica",
            Self::PromoteReplica => "promote_replica",
            Self::UpdateReplicaState => "update_replica_state",
            Self::ManageExisting => "manage_existing",
            Self::Unmanage => "unmanage",
            Self::CreateSnapshot => "create_snapshot",
            Self::DeleteSnapshot => "delete_snapshot",
            Self::RevertToSnapshot => "revert_to_snapshot",
            Self::CreateShareFromSnapshot => "create_share_from_snapshot",
            Self::SnapshotUpdateAccess => "snapshot_update_access",
            Self::ManageExistingSnapshot => "manage_existing_snapshot",
            Self::UnmanageSnapshot => "unmanage_snapshot",
            Self::CreateReplicaSnapshot => "create_replica_snapshot",
            Self::UpdateReplicaSnapshot => "update_replica_snapshot",
        }
    }
}

impl fmt::Display for DummyMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[backends.dummy]` table: per-method delays and failure probabilities.
///
/// ```toml
/// [backends.dummy.delays]
/// create_share = "3.98s"
/// [backends.dummy.fail]
/// delete_share = 0.1     # one call in ten fails
/// ```
///
/// Defaults are no delay and no failure, so tests and benchmarks pick their own timings.
/// The snapshot capability flags its pools report default to true, as Manila's dummy
/// (`snapshot_support`, `create_share_from_snapshot_support`, `revert_to_snapshot_support`,
/// `mount_snapshot_support`); set one to false to drive the paths of a back end without it.
/// Manila's dummy sleeps on every call (`dummy_driver_driver_methods_delays`, seconds):
/// create_share 3.98, ensure_share 1.05, do_setup 0.05, `_update_share_stats` 0.3,
/// create_replica 3.99, delete_replica 2.98, promote_replica 0.75, update_replica_state 0.85,
/// and 2.0 for every other call (delete_share, extend_share, shrink_share, update_access...);
/// [`DummyOptions::manila_timings`] builds that set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DummyOptions {
    /// How long each method sleeps before doing its work, as humantime durations (`"2s"`,
    /// `"850ms"`, `"3.98s"`).
    #[serde(with = "delay_map")]
    pub delays: BTreeMap<DummyMethod, Duration>,
    /// Probability in `0.0..=1.0` that a call of the method fails (after its delay, before
    /// any effect); `1.0` fails every call.
    #[serde(deserialize_with = "deserialize_probabilities")]
    pub fail: BTreeMap<DummyMethod, f64>,
    /// Pools report `snapshot_support`.
    pub snapshot_support: bool,
    /// Pools report `create_share_from_snapshot_support`.
    pub create_share_from_snapshot_support: bool,
    /// Pools report `revert_to_snapshot_support`.
    pub revert_to_snapshot_support: bool,
    /// Pools report `mount_snapshot_support` (snapshots get export locations and rules).
    pub mount_snapshot_support: bool,
}

impl Default for DummyOptions {
    fn default() -> Self {
        Self {
            delays: BTreeMap::new(),
            fail: BTreeMap::new(),
            snapshot_support: true,
            create_share_from_snapshot_support: true,
            revert_to_snapshot_support: true,
            mount_snapshot_support: true,
        }
    }
}

impl DummyOptions {
    /// Manila's default dummy timings (see the type's documentation), no failures.
    pub fn manila_timings() -> Self {
        let secs = Duration::from_secs_f64;
        let delays = BTreeMap::from([
            (DummyMethod::DoSetup, secs(0.05)),
            (DummyMethod::GetShareStats, secs(0.3)),
            (DummyMethod::CreateShare, secs(3.98)),
            (DummyMethod::DeleteShare, secs(2.0)),
            (DummyMethod::ExtendShare, secs(2.0)),
            (DummyMethod::ShrinkShare, secs(2.0)),
            (DummyMethod::EnsureShare, secs(1.05)),
            (DummyMethod::UpdateAccess, secs(2.0)),
            (DummyMethod::CreateReplica, secs(3.99)),
            (DummyMethod::DeleteReplica, secs(2.98)),
            (DummyMethod::PromoteReplica, secs(0.75)),
            (DummyMethod::UpdateReplicaState, secs(0.85)),
            (DummyMethod::CreateSnapshot, secs(2.0)),
            (DummyMethod::DeleteSnapshot, secs(2.0)),
            (DummyMethod::RevertToSnapshot, secs(2.0)),
            (DummyMethod::CreateShareFromSnapshot, secs(2.0)),
            (DummyMethod::SnapshotUpdateAccess, secs(2.0)),
            (DummyMethod::ManageExistingSnapshot, secs(2.0)),
            (DummyMethod::UnmanageSnapshot, secs(2.0)),
            (DummyMethod::CreateReplicaSnapshot, secs(2.0)),
            (DummyMethod::UpdateReplicaSnapshot, secs(2.0)),
        ]);
        Self {
            delays,
            ..Self::default()
        }
    }

    /// Checks what serde cannot when options are built in code: probabilities in `0..=1`.
    pub fn validate(&self) -> Result<(), String> {
        for (method, probability) in &self.fail {
            check_probability(*method, *probability)?;
        }
        Ok(())
    }
}

fn check_probability(method: DummyMethod, probability: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&probability) {
        Ok(())
    } else {
        Err(format!(
            "dummy failure probability of {method} must be within 0.0..=1.0, not {probability}"
        ))
    }
}

fn deserialize_probabilities<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<DummyMethod, f64>, D::Error> {
    let map = BTreeMap::<DummyMethod, f64>::deserialize(d)?;
    for (method, probability) in &map {
        check_probability(*method, *probability).map_err(serde::de::Error::custom)?;
    }
    Ok(map)
}

/// Serde for a map of humantime durations (`humantime_serde` handles single values only).
mod delay_map {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use humantime_serde::Serde;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::DummyMethod;

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<DummyMethod, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(
            map.iter()
                .map(|(method, delay)| (method, Serde::from(*delay))),
        )
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<DummyMethod, Duration>, D::Error> {
        let map = BTreeMap::<DummyMethod, Serde<Duration>>::deserialize(d)?;
        Ok(map
            .into_iter()
            .map(|(method, delay)| (method, delay.into_inner()))
            .collect())
    }
}

/// One share instance the dummy holds.
#[derive(Debug, Clone)]
struct DummyShare {
    size_gb: u64,
    share_proto: String,
    export_locations: Vec<ExportLocation>,
    /// What `get_share_usage_bytes` reports; tests set it to drive the shrink refusal.
    usage_bytes: u64,
    rules: Vec<AccessRule>,
}

/// One snapshot instance the dummy holds.
#[derive(Debug, Clone)]
struct DummySnapshot {
    share_instance_id: String,
    provider_location: String,
    export_locations: Vec<ExportLocation>,
    rules: Vec<AccessRule>,
}

/// Driver that keeps shares in memory. Build it once per back end and share it (`Arc`); the
/// knobs take `&self`.
#[derive(Debug)]
pub struct DummyDriver {
    info: BackendInfo,
    pools: Vec<DummyPool>,
    knobs: Mutex<DummyOptions>,
    shares: Mutex<BTreeMap<String, DummyShare>>,
    /// Snapshot instances by id.
    snapshots: Mutex<BTreeMap<String, DummySnapshot>>,
    /// Mount points (export path after `:/`) of unmanaged shares, to the instance id they
    /// had: what `manage_existing` may adopt.
    unmanaged_shares: Mutex<BTreeMap<String, String>>,
    /// Provider locations of unmanaged snapshots, to the instance id they had: what
    /// `manage_existing_snapshot` may adopt.
    unmanaged_snapshots: Mutex<BTreeMap<String, String>>,
    /// State of the generator deciding injected failures (splitmix64). Fault injection needs
    /// no quality randomness, so no dependency is pulled in for it.
    rng: AtomicU64,
}

impl DummyDriver {
    /// Builds the driver with its configured delays and failures.
    pub fn new(info: BackendInfo, pools: Vec<DummyPool>, options: DummyOptions) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        Self {
            info,
            pools,
            knobs: Mutex::new(options),
            shares: Mutex::new(BTreeMap::new()),
            snapshots: Mutex::new(BTreeMap::new()),
            unmanaged_shares: Mutex::new(BTreeMap::new()),
            unmanaged_snapshots: Mutex::new(BTreeMap::new()),
            rng: AtomicU64::new(seed),
        }
    }

    /// Makes every later call of `method` sleep `delay` first (zero removes the delay).
    pub fn set_delay(&self, method: DummyMethod, delay: Duration) {
        let mut knobs = lock(&self.knobs);
        if delay.is_zero() {
            knobs.delays.remove(&method);
        } else {
            knobs.delays.insert(method, delay);
        }
    }

    /// Makes later calls of `method` fail with `probability` (clamped to `0.0..=1.0`; NaN
    /// counts as 0): `1.0` fails every call, `0.0` none.
    pub fn set_failure(&self, method: DummyMethod, probability: f64) {
        debug_assert!(
            (0.0..=1.0).contains(&probability),
            "probability {probability} out of range"
        );
        let probability = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        let mut knobs = lock(&self.knobs);
        if probability == 0.0 {
            knobs.fail.remove(&method);
        } else {
            knobs.fail.insert(method, probability);
        }
    }

    /// Sets the bytes a share instance reports as used, so tests can provoke
    /// [`DriverError::ShrinkBelowUsage`]. [`DriverError::NotFound`] if it does not exist.
    pub fn set_share_usage_bytes(
        &self,
        share_instance_id: &str,
        usage_bytes: u64,
    ) -> Result<(), DriverError> {
        let mut shares = lock(&self.shares);
        let share = shares
            .get_mut(share_instance_id)
            .ok_or_else(|| not_found(share_instance_id))?;
        share.usage_bytes = usage_bytes;
        Ok(())
    }

    /// Size the dummy holds for a share instance, if it exists.
    pub fn share_size_gb(&self, share_instance_id: &str) -> Option<u64> {
        lock(&self.shares).get(share_instance_id).map(|s| s.size_gb)
    }

    /// Rules last applied to a share instance, if it exists.
    pub fn applied_access_rules(&self, share_instance_id: &str) -> Option<Vec<AccessRule>> {
        lock(&self.shares)
            .get(share_instance_id)
            .map(|s| s.rules.clone())
    }

    /// Whether the dummy holds snapshot instance `id`.
    pub fn has_snapshot(&self, id: &str) -> bool {
        lock(&self.snapshots).contains_key(id)
    }

    /// Rules last applied to a snapshot instance, if it exists.
    pub fn applied_snapshot_rules(&self, id: &str) -> Option<Vec<AccessRule>> {
        lock(&self.snapshots).get(id).map(|s| s.rules.clone())
    }

    /// Ids of the snapshot instances the dummy holds, sorted.
    pub fn snapshot_ids(&self) -> Vec<String> {
        lock(&self.snapshots).keys().cloned().collect()
    }

    /// Records a snapshot instance of a share instance the dummy holds, unless it exists,
    /// and answers as Manila's dummy `create_snapshot` (provider location, and three export
    /// locations when snapshots are mountable).
    fn insert_snapshot(
        &self,
        snapshot: &SnapshotRef,
        provider_location: Option<&str>,
    ) -> Result<SnapshotResult, DriverError> {
        if !lock(&self.shares).contains_key(&snapshot.share_instance.id) {
            return Err(not_found(&snapshot.share_instance.id));
        }
        let mountable = lock(&self.knobs).mount_snapshot_support;
        let mut snapshots = lock(&self.snapshots);
        let state = snapshots.entry(snapshot.id.clone()).or_insert_with(|| {
            let location = provider_location.map_or_else(
                || {
                    format!(
                        "/path/to/fake/snapshot/snapshot_{}_{}",
                        snapshot.snapshot_id.replace('-', "_"),
                        snapshot.id.replace('-', "_")
                    )
                },
                str::to_owned,
            );
            let export_locations = if mountable {
                [
                    ("10.0.0.10", false),
                    ("10.0.0.20", false),
                    ("11.0.0.11", true),
                ]
                .into_iter()
                .map(|(ip, is_admin_only)| ExportLocation {
                    path: format!("{ip}:{location}"),
                    is_admin_only,
                    preferred: false,
                    metadata: BTreeMap::new(),
                })
                .collect()
            } else {
                Vec::new()
            };
            DummySnapshot {
                share_instance_id: snapshot.share_instance.id.clone(),
                provider_location: location,
                export_locations,
                rules: Vec::new(),
            }
        });
        Ok(SnapshotResult {
            progress: SnapshotProgress::Available,
            provider_location: Some(state.provider_location.clone()),
            size_gb: None,
            export_locations: state.export_locations.clone(),
        })
    }

    /// Applies the configured delay of `method`, then decides whether the call fails.
    async fn enter(&self, method: DummyMethod) -> Result<(), DriverError> {
        let (delay, probability) = {
            let knobs = lock(&self.knobs);
            (
                knobs.delays.get(&method).copied(),
                knobs.fail.get(&method).copied().unwrap_or(0.0),
            )
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let fails = probability >= 1.0 || (probability > 0.0 && self.next_unit() < probability);
        if fails {
            tracing::info!(method = %method, backend = %self.info.backend_name, "dummy driver: injected failure in {method}");
            return Err(DriverError::Other(anyhow::anyhow!(
                "dummy driver {}: injected failure in {method}",
                self.info.backend_name
            )));
        }
        Ok(())
    }

    /// A uniform number in `[0, 1)` (splitmix64).
    fn next_unit(&self) -> f64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .rng
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn check_pool(&self, share: &ShareInstanceRef) -> Result<(), DriverError> {
        if self.pools.iter().any(|p| p.name == share.pool) {
            Ok(())
        } else {
            Err(DriverError::PoolUnavailable {
                pool: share.pool.clone(),
                reason: format!("no such pool on back end {}", self.info.backend_name),
            })
        }
    }

    /// Records a share instance (a share's first instance or a replica) unless it exists, and
    /// returns its export locations; a retried create gets the same answer.
    fn insert(&self, share: &ShareInstanceRef) -> Result<Vec<ExportLocation>, DriverError> {
        check_protocol(share)?;
        self.check_pool(share)?;
        if share.size_gb == 0 {
            return Err(DriverError::InvalidInput(
                "a share size must be at least 1 GiB".to_owned(),
            ));
        }
        let mut shares = lock(&self.shares);
        let state = shares
            .entry(share.id.clone())
            .or_insert_with(|| DummyShare {
                size_gb: share.size_gb,
                share_proto: share.share_proto.clone(),
                export_locations: export_locations(share),
                usage_bytes: 0,
                rules: Vec::new(),
            });
        Ok(state.export_locations.clone())
    }

    /// Runs `f` on the share instance's state, or answers [`DriverError::NotFound`].
    fn with_share<T>(
        &self,
        share: &ShareInstanceRef,
        f: impl FnOnce(&mut DummyShare) -> Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        let mut shares = lock(&self.shares);
        let state = shares
            .get_mut(&share.id)
            .ok_or_else(|| not_found(&share.id))?;
        f(state)
    }
}

/// Manila's dummy export locations: a preferred and a non-preferred location on two public
/// addresses, and an admin-only one on the service address. The preferred one comes first so
/// views that show only the first path (before microversion 2.9) show a usable one.
fn export_locations(share: &ShareInstanceRef) -> Vec<ExportLocation> {
    let mountpoint = format!(
        "/path/to/fake/share/share_{}_{}",
        share.share_id.replace('-', "_"),
        share.id.replace('-', "_")
    );
    [
        ("10.0.0.10", false, true),
        ("10.0.0.20", false, false),
        ("11.0.0.11", true, false),
    ]
    .into_iter()
    .map(|(ip, is_admin_only, preferred)| ExportLocation {
        path: format!("{ip}:{mountpoint}"),
        is_admin_only,
        preferred,
        metadata: BTreeMap::new(),
    })
    .collect()
}

/// The mount point of an export path, the part after its last `:/` (Manila's dummy compares
/// only that, so the address may differ).
fn mount_point(export_path: &str) -> &str {
    export_path.rsplit(":/").next().unwrap_or(export_path)
}

/// The instance id Manila's dummy reads out of a dummy path (`..._<share id>_<instance id>`
/// after `prefix`), or the whole path when it is not one; only for error texts.
fn id_from_path(path: &str, prefix: &str) -> String {
    match path.split(prefix).nth(1) {
        Some(rest) => rest.get(37..).unwrap_or_default().replace('_', "-"),
        None => path.to_owned(),
    }
}

/// The size a managed share or snapshot gets: the driver option `size` when given (a shoal
/// test knob), else 1 GiB as Manila's dummy answers.
fn managed_size(driver_options: &BTreeMap<String, String>) -> Result<u64, DriverError> {
    match driver_options.get("size") {
        None => Ok(1),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|size| *size > 0)
            .ok_or_else(|| {
                DriverError::InvalidInput(format!(
                    "driver option size must be a positive integer, got {text:?}"
                ))
            }),
    }
}

fn not_found(share_instance_id: &str) -> DriverError {
    DriverError::NotFound {
        share_instance_id: share_instance_id.to_owned(),
    }
}

/// Locks a mutex; a panic while holding it cannot leave these maps half-updated in a way that
/// matters to a dummy, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl ShareDriver for DummyDriver {
    fn driver_name(&self) -> &'static str {
        "dummy"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn do_setup(&self) -> Result<(), DriverError> {
        lock(&self.knobs)
            .validate()
            .map_err(DriverError::InvalidInput)?;
        self.enter(DummyMethod::DoSetup).await
    }

    /// Configured capacities; free space is what the allocations leave (the dummy is thick:
    /// a share takes its whole size when created).
    async fn get_share_stats(
        &self,
        allocated_gb_by_pool: &BTreeMap<String, u64>,
    ) -> Result<Vec<PoolStats>, DriverError> {
        self.enter(DummyMethod::GetShareStats).await?;
        let knobs = lock(&self.knobs).clone();
        Ok(self
            .pools
            .iter()
            .map(|pool| {
                let allocated = allocated_gb_by_pool.get(&pool.name).copied().unwrap_or(0);
                PoolStats {
                    pool_name: pool.name.clone(),
                    total_capacity_gb: pool.total_capacity_gb as f64,
                    free_capacity_gb: pool.total_capacity_gb.saturating_sub(allocated) as f64,
                    allocated_capacity_gb: allocated as f64,
                    reserved_percentage: pool.reserved_percentage,
                    thin_provisioning: false,
                    driver_handles_share_servers: false,
                    replication_type: self.info.replication_type.clone(),
                    replication_domain: self.info.replication_domain.clone(),
                    snapshot_support: knobs.snapshot_support,
                    create_share_from_snapshot_support: knobs.create_share_from_snapshot_support,
                    revert_to_snapshot_support: knobs.revert_to_snapshot_support,
                    mount_snapshot_support: knobs.mount_snapshot_support,
                    share_backend_name: self.info.backend_name.clone(),
                    driver_name: "dummy".to_owned(),
                    storage_protocol: "NFS_CIFS".to_owned(),
                    replication_peer_transport: false,
                }
            })
            .collect())
    }

    async fn create_share(
        &self,
        share: &ShareInstanceRef,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        self.enter(DummyMethod::CreateShare).await?;
        self.insert(share)
    }

    async fn delete_share(&self, share: &ShareInstanceRef) -> Result<(), DriverError> {
        self.enter(DummyMethod::DeleteShare).await?;
        lock(&self.shares).remove(&share.id);
        Ok(())
    }

    async fn extend_share(
        &self,
        share: &ShareInstanceRef,
        new_size_gb: u64,
    ) -> Result<(), DriverError> {
        self.enter(DummyMethod::ExtendShare).await?;
        self.with_share(share, |state| {
            check_resize(state.size_gb, new_size_gb, true)?;
            state.size_gb = new_size_gb;
            Ok(())
        })
    }

    async fn shrink_share(
        &self,
        share: &ShareInstanceRef,
        new_size_gb: u64,
    ) -> Result<(), DriverError> {
        self.enter(DummyMethod::ShrinkShare).await?;
        self.with_share(share, |state| {
            check_resize(state.size_gb, new_size_gb, false)?;
            if state.usage_bytes > new_size_gb.saturating_mul(GIB_BYTES) {
                return Err(DriverError::ShrinkBelowUsage {
                    used_bytes: state.usage_bytes,
                });
            }
            state.size_gb = new_size_gb;
            Ok(())
        })
    }

    async fn ensure_share(
        &self,
        share: &ShareInstanceRef,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        self.enter(DummyMethod::EnsureShare).await?;
        self.with_share(share, |state| Ok(state.export_locations.clone()))
    }

    async fn update_access(
        &self,
        share: &ShareInstanceRef,
        all_rules: &[AccessRule],
        add: &[AccessRule],
        delete: &[AccessRule],
    ) -> Result<BTreeMap<String, AccessRuleResult>, DriverError> {
        self.enter(DummyMethod::UpdateAccess).await?;
        self.with_share(share, |state| {
            let proto = state.share_proto.to_ascii_lowercase();
            let mut results = BTreeMap::new();
            let mut applied = Vec::new();
            for rule in effective_rules(all_rules, add, delete) {
                let access_type = rule.access_type.to_ascii_lowercase();
                let served = matches!((proto.as_str(), access_type.as_str()), ("nfs", "ip") | ("cifs", "user"));
                if served {
                    results.insert(rule.id.clone(), AccessRuleResult::Applied);
                    applied.push(rule);
                } else {
                    // Manila's wording (InvalidShareAccess of the dummy driver).
                    let reason = format!("Unsupported '{access_type}' access type provided for '{proto}' share protocol.");
                    results.insert(rule.id.clone(), AccessRuleResult::Error(reason));
                }
            }
            state.rules = applied;
            Ok(results)
        })
    }

    async fn get_share_usage_bytes(&self, share: &ShareInstanceRef) -> Result<u64, DriverError> {
        self.enter(DummyMethod::GetShareUsageBytes).await?;
        self.with_share(share, |state| Ok(state.usage_bytes))
    }

    /// Adopts a share this dummy unmanaged before, found by the mount point of
    /// `export_path`, with fresh export locations as on create; anything else is refused with
    /// Manila's text. Managing an instance it already holds answers the same again, so a
    /// retried operation is harmless.
    async fn manage_existing(
        &self,
        share: &ShareInstanceRef,
        export_path: &str,
        driver_options: &BTreeMap<String, String>,
    ) -> Result<ManageResult, DriverError> {
        self.enter(DummyMethod::ManageExisting).await?;
        check_protocol(share)?;
        self.check_pool(share)?;
        let size_gb = managed_size(driver_options)?;
        let mut shares = lock(&self.shares);
        if let Some(state) = shares.get(&share.id) {
            return Ok(ManageResult {
                size_gb: state.size_gb,
                export_locations: state.export_locations.clone(),
            });
        }
        let mount_point = mount_point(export_path);
        if lock(&self.unmanaged_shares).remove(mount_point).is_none() {
            return Err(DriverError::InvalidInput(format!(
                "Invalid export specified, existing share {} could not be found",
                id_from_path(export_path, "share_")
            )));
        }
        let state = DummyShare {
            size_gb,
            share_proto: share.share_proto.clone(),
            export_locations: export_locations(share),
            usage_bytes: 0,
            rules: Vec::new(),
        };
        let result = ManageResult {
            size_gb: state.size_gb,
            export_locations: state.export_locations.clone(),
        };
        shares.insert(share.id.clone(), state);
        Ok(result)
    }

    /// Forgets the share instance and remembers its mount point as unmanaged, so it can be
    /// managed again; an unknown one is already forgotten.
    async fn unmanage(&self, share: &ShareInstanceRef) -> Result<(), DriverError> {
        self.enter(DummyMethod::Unmanage).await?;
        if let Some(state) = lock(&self.shares).remove(&share.id) {
            let mut unmanaged = lock(&self.unmanaged_shares);
            for location in &state.export_locations {
                unmanaged.insert(mount_point(&location.path).to_owned(), share.id.clone());
            }
        }
        Ok(())
    }

    /// Manila's dummy: the replica exists at once and is `in_sync`, for every replication
    /// type (`writable` included: Manila's dummy makes no replica `active` on creation).
    async fn create_replica(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
    ) -> Result<ReplicaResult, DriverError> {
        let _ = ctx;
        self.enter(DummyMethod::CreateReplica).await?;
        let export_locations = self.insert(&replica.instance)?;
        Ok(ReplicaResult {
            replica_state: "in_sync".to_owned(),
            export_locations: Some(export_locations),
            sync: None,
        })
    }

    async fn delete_replica(&self, replica: &ReplicaRef) -> Result<(), DriverError> {
        self.enter(DummyMethod::DeleteReplica).await?;
        lock(&self.shares).remove(&replica.instance.id);
        Ok(())
    }

    /// The replica becomes `active` and keeps its export locations; the dummy has nothing to
    /// quiesce or sync, so `quiesce_wait` is not waited for. The call is reported as a final
    /// sync that moved nothing, from its start to its end (configured delay included), so
    /// the replication history shows when each promotion ran on the back end.
    async fn promote_replica(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        quiesce_wait: Option<Duration>,
    ) -> Result<ReplicaResult, DriverError> {
        let _ = (ctx, quiesce_wait);
        let started_at = chrono::Utc::now();
        self.enter(DummyMethod::PromoteReplica).await?;
        let export_locations = self.with_share(&replica.instance, |state| {
            Ok(state.export_locations.clone())
        })?;
        Ok(ReplicaResult {
            replica_state: "active".to_owned(),
            export_locations: Some(export_locations),
            sync: Some(SyncRecord {
                started_at,
                finished_at: chrono::Utc::now(),
                source_point: None,
                version: 0,
                files_total: 0,
                bytes_total: 0,
                files_transferred: 0,
                bytes_transferred: 0,
                files_deleted: 0,
                outcome: "clean".to_owned(),
                detail: Some("dummy back end: no data moved".to_owned()),
                wire_bytes: 0,
            }),
        })
    }

    /// Always `in_sync` for a replica the dummy holds, whatever the replication type, as
    /// Manila's dummy answers.
    async fn update_replica_state(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
    ) -> Result<ReplicaResult, DriverError> {
        let _ = ctx;
        self.enter(DummyMethod::UpdateReplicaState).await?;
        self.with_share(&replica.instance, |_| Ok(()))?;
        Ok(ReplicaResult {
            replica_state: "in_sync".to_owned(),
            export_locations: None,
            sync: None,
        })
    }

    /// Manila's dummy: the snapshot exists at once (`available`), at
    /// `/path/to/fake/snapshot/snapshot_<snapshot>_<instance>`.
    async fn create_snapshot(&self, snapshot: &SnapshotRef) -> Result<SnapshotResult, DriverError> {
        self.enter(DummyMethod::CreateSnapshot).await?;
        self.insert_snapshot(snapshot, None)
    }

    async fn delete_snapshot(&self, snapshot: &SnapshotRef) -> Result<(), DriverError> {
        self.enter(DummyMethod::DeleteSnapshot).await?;
        lock(&self.snapshots).remove(&snapshot.id);
        Ok(())
    }

    /// Nothing to restore in memory; the snapshot and the share must both exist.
    async fn revert_to_snapshot(&self, snapshot: &SnapshotRef) -> Result<(), DriverError> {
        self.enter(DummyMethod::RevertToSnapshot).await?;
        let of_share = lock(&self.snapshots)
            .get(&snapshot.id)
            .map(|s| s.share_instance_id.clone());
        if of_share.as_deref() != Some(snapshot.share_instance.id.as_str()) {
            return Err(DriverError::InvalidInput(format!(
                "snapshot instance {} of share instance {} does not exist on back end {}",
                snapshot.id, snapshot.share_instance.id, self.info.backend_name
            )));
        }
        self.with_share(&snapshot.share_instance, |_| Ok(()))
    }

    /// Creates the share as `create_share` does; the snapshot may live on another back end
    /// (the dummy copies nothing, so it need not be reachable).
    async fn create_share_from_snapshot(
        &self,
        share: &ShareInstanceRef,
        snapshot: &SnapshotRef,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        let _ = snapshot;
        self.enter(DummyMethod::CreateShareFromSnapshot).await?;
        self.insert(share)
    }

    /// Serves `ip` rules (read-only) on a snapshot the dummy holds.
    async fn snapshot_update_access(
        &self,
        snapshot: &SnapshotRef,
        all_rules: &[AccessRule],
        add: &[AccessRule],
        delete: &[AccessRule],
    ) -> Result<BTreeMap<String, AccessRuleResult>, DriverError> {
        self.enter(DummyMethod::SnapshotUpdateAccess).await?;
        let mut snapshots = lock(&self.snapshots);
        let state = snapshots.get_mut(&snapshot.id).ok_or_else(|| {
            DriverError::InvalidInput(format!("snapshot instance {} does not exist", snapshot.id))
        })?;
        let mut results = BTreeMap::new();
        let mut applied = Vec::new();
        for rule in effective_rules(all_rules, add, delete) {
            if rule.access_type.eq_ignore_ascii_case("ip") {
                results.insert(rule.id.clone(), AccessRuleResult::Applied);
                applied.push(rule);
            } else {
                let reason = format!(
                    "Unsupported '{}' access type provided for a snapshot.",
                    rule.access_type
                );
                results.insert(rule.id.clone(), AccessRuleResult::Error(reason));
            }
        }
        state.rules = applied;
        Ok(results)
    }

    /// Adopts a snapshot this dummy unmanaged before, found by its provider location, of a
    /// share instance it holds; anything else is refused with Manila's text. A retry of a
    /// manage that succeeded answers the same again.
    async fn manage_existing_snapshot(
        &self,
        snapshot: &SnapshotRef,
        driver_options: &BTreeMap<String, String>,
    ) -> Result<SnapshotResult, DriverError> {
        self.enter(DummyMethod::ManageExistingSnapshot).await?;
        let size_gb = managed_size(driver_options)?;
        let Some(location) = snapshot
            .provider_location
            .as_deref()
            .filter(|l| !l.is_empty())
        else {
            return Err(DriverError::InvalidInput(
                "provider_location is required to manage a snapshot".to_owned(),
            ));
        };
        let held = lock(&self.snapshots)
            .get(&snapshot.id)
            .is_some_and(|s| s.provider_location == location);
        if !held && !lock(&self.unmanaged_snapshots).contains_key(location) {
            return Err(DriverError::InvalidInput(format!(
                "Invalid provider location specified, existing snapshot {} could not be found",
                id_from_path(location, "snapshot_")
            )));
        }
        let mut result = self.insert_snapshot(snapshot, Some(location))?;
        lock(&self.unmanaged_snapshots).remove(location);
        result.size_gb = Some(size_gb);
        Ok(result)
    }

    /// Forgets the snapshot instance and remembers its provider location as unmanaged, so it
    /// can be managed again.
    async fn unmanage_snapshot(&self, snapshot: &SnapshotRef) -> Result<(), DriverError> {
        self.enter(DummyMethod::UnmanageSnapshot).await?;
        if let Some(state) = lock(&self.snapshots).remove(&snapshot.id) {
            lock(&self.unmanaged_snapshots).insert(state.provider_location, snapshot.id.clone());
        }
        Ok(())
    }

    /// The secondary's copy exists at once, like Manila's dummy; the active's instance must
    /// exist here when it is on this back end.
    async fn create_replica_snapshot(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        snapshot: &SnapshotRef,
        active_snapshot: &SnapshotRef,
    ) -> Result<SnapshotResult, DriverError> {
        let _ = (replica, ctx, active_snapshot);
        self.enter(DummyMethod::CreateReplicaSnapshot).await?;
        self.insert_snapshot(snapshot, None)
    }

    async fn update_replica_snapshot(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        snapshot: &SnapshotRef,
        active_snapshot: &SnapshotRef,
    ) -> Result<SnapshotResult, DriverError> {
        let _ = (replica, ctx, active_snapshot);
        self.enter(DummyMethod::UpdateReplicaSnapshot).await?;
        self.insert_snapshot(snapshot, None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn driver() -> DummyDriver {
        DummyDriver::new(
            BackendInfo {
                host: "node1".into(),
                backend_name: "dummy1".into(),
                replication_type: Some("writable".into()),
                replication_domain: None,
            },
            vec![DummyPool {
                name: "fake_pool".into(),
                total_capacity_gb: 1000,
                reserved_percentage: 0,
            }],
            DummyOptions::default(),
        )
    }

    fn share(id: &str, proto: &str) -> ShareInstanceRef {
        ShareInstanceRef {
            id: id.into(),
            share_id: "11111111-2222-4333-8444-555555555555".into(),
            pool: "fake_pool".into(),
            size_gb: 2,
            share_proto: proto.into(),
        }
    }

    fn rule(id: &str, access_type: &str) -> AccessRule {
        AccessRule {
            id: id.into(),
            access_type: access_type.into(),
            access_to: "x".into(),
            access_level: "rw".into(),
        }
    }

    fn replica_ref(id: &str, replica_state: Option<&str>) -> ReplicaRef {
        ReplicaRef {
            instance: share(id, "NFS"),
            host: "node1@dummy1#fake_pool".into(),
            replica_state: replica_state.map(str::to_owned),
            export_locations: Vec::new(),
            replication_address: None,
            replica_epoch: 0,
        }
    }

    fn ctx<'a>(
        replication_type: &'a str,
        active: Option<&'a ReplicaRef>,
        replicas: &'a [ReplicaRef],
    ) -> ReplicaContext<'a> {
        ReplicaContext {
            replication_type,
            active,
            replicas,
            access_rules: &[],
            full_sync: false,
        }
    }

    fn snapshot_of(id: &str, share_instance: &str) -> SnapshotRef {
        SnapshotRef {
            id: id.into(),
            snapshot_id: "99999999-2222-4333-8444-555555555555".into(),
            share_instance: share(share_instance, "NFS"),
            host: "node1@dummy1#fake_pool".into(),
            size_gb: 2,
            provider_location: None,
        }
    }

    #[tokio::test]
    async fn snapshot_lifecycle_answers_like_manilas_dummy() {
        let d = driver();
        let stats = d.get_share_stats(&BTreeMap::new()).await.unwrap();
        assert!(stats[0].snapshot_support && stats[0].create_share_from_snapshot_support);
        assert!(stats[0].revert_to_snapshot_support && stats[0].mount_snapshot_support);
        // The share must exist first.
        let snap = snapshot_of("snap-1", "share-1");
        assert!(matches!(
            d.create_snapshot(&snap).await,
            Err(DriverError::NotFound { .. })
        ));
        d.create_share(&share("share-1", "NFS")).await.unwrap();
        let created = d.create_snapshot(&snap).await.unwrap();
        assert_eq!(created.progress, SnapshotProgress::Available);
        let location = created.provider_location.clone().unwrap();
        assert!(location.starts_with("/path/to/fake/snapshot/snapshot_99999999_"));
        assert_eq!(created.export_locations.len(), 3);
        assert!(created.export_locations[2].is_admin_only);
        assert_eq!(
            d.create_snapshot(&snap).await.unwrap(),
            created,
            "idempotent"
        );
        d.revert_to_snapshot(&snap).await.unwrap();
        assert!(
            d.revert_to_snapshot(&snapshot_of("snap-1", "other"))
                .await
                .is_err()
        );
        let results = d
            .snapshot_update_access(&snap, &[], &[rule("r1", "ip"), rule("r2", "user")], &[])
            .await
            .unwrap();
        assert_eq!(results["r1"], AccessRuleResult::Applied);
        assert!(matches!(results["r2"], AccessRuleResult::Error(_)));
        assert_eq!(d.applied_snapshot_rules("snap-1").unwrap().len(), 1);
        d.create_share_from_snapshot(&share("share-2", "NFS"), &snap)
            .await
            .unwrap();
        assert_eq!(d.share_size_gb("share-2"), Some(2));
        d.delete_snapshot(&snap).await.unwrap();
        d.delete_snapshot(&snap).await.unwrap();
        assert!(!d.has_snapshot("snap-1"));

        // Manage: only a provider location this dummy unmanaged, as Manila's dummy.
        let old = snapshot_of("snap-3", "share-1");
        let location = d.create_snapshot(&old).await.unwrap().provider_location;
        d.unmanage_snapshot(&old).await.unwrap();
        assert!(!d.has_snapshot("snap-3"));
        let mut managed = snapshot_of("snap-2", "share-1");
        assert!(
            d.manage_existing_snapshot(&managed, &BTreeMap::new())
                .await
                .is_err()
        );
        managed.provider_location = Some("/unknown".into());
        let err = d
            .manage_existing_snapshot(&managed, &BTreeMap::new())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            DriverError::InvalidInput(
                "Invalid provider location specified, existing snapshot /unknown could not be found"
                    .into()
            )
            .to_string()
        );
        managed.provider_location = location.clone();
        let adopted = d
            .manage_existing_snapshot(&managed, &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(adopted.provider_location, location);
        assert_eq!(adopted.size_gb, Some(1));
        assert_eq!(adopted.export_locations.len(), 3);
        // A retry answers the same; another snapshot cannot take the location again.
        let again = d
            .manage_existing_snapshot(&managed, &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(again, adopted);
        let mut other = snapshot_of("snap-4", "share-1");
        other.provider_location = location.clone();
        assert!(
            d.manage_existing_snapshot(&other, &BTreeMap::new())
                .await
                .is_err()
        );
        d.unmanage_snapshot(&managed).await.unwrap();
        assert!(d.snapshot_ids().is_empty());
        // Unmanaged again, it can be managed again, with the size asked for.
        let options = BTreeMap::from([("size".to_owned(), "5".to_owned())]);
        let sized = d.manage_existing_snapshot(&other, &options).await.unwrap();
        assert_eq!(sized.size_gb, Some(5));
        assert!(d.has_snapshot("snap-4"));
    }

    #[tokio::test]
    async fn snapshot_capabilities_and_failures_are_configurable() {
        let d = DummyDriver::new(
            driver().info.clone(),
            vec![DummyPool {
                name: "fake_pool".into(),
                total_capacity_gb: 10,
                reserved_percentage: 0,
            }],
            DummyOptions {
                snapshot_support: false,
                mount_snapshot_support: false,
                ..DummyOptions::default()
            },
        );
        let stats = d.get_share_stats(&BTreeMap::new()).await.unwrap();
        assert!(!stats[0].snapshot_support && !stats[0].mount_snapshot_support);
        assert!(stats[0].revert_to_snapshot_support);
        d.create_share(&share("share-1", "NFS")).await.unwrap();
        d.set_failure(DummyMethod::CreateSnapshot, 1.0);
        let snap = snapshot_of("snap-1", "share-1");
        assert!(d.create_snapshot(&snap).await.is_err());
        assert!(!d.has_snapshot("snap-1"));
        d.set_failure(DummyMethod::CreateSnapshot, 0.0);
        let created = d.create_snapshot(&snap).await.unwrap();
        assert!(created.export_locations.is_empty(), "not mountable");
        let toml: DummyOptions =
            toml::from_str("snapshot_support = false\n[fail]\ncreate_snapshot = 0.5").unwrap();
        assert!(!toml.snapshot_support && toml.revert_to_snapshot_support);
        assert_eq!(toml.fail[&DummyMethod::CreateSnapshot], 0.5);
    }

    #[tokio::test]
    async fn replica_lifecycle_answers_like_manilas_dummy() {
        let driver = driver();
        let active = replica_ref("active", Some("active"));
        driver.create_share(&active.instance).await.unwrap();
        let secondary = replica_ref("secondary", None);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("readable", Some(&active), &replicas);

        let created = driver.create_replica(&secondary, &ctx).await.unwrap();
        assert_eq!(created.replica_state, "in_sync");
        assert_eq!(created.sync, None);
        let locations = created.export_locations.unwrap();
        assert_eq!(locations, export_locations(&secondary.instance));
        assert_eq!(
            locations
                .iter()
                .map(|l| (l.is_admin_only, l.preferred))
                .collect::<Vec<_>>(),
            [(false, true), (false, false), (true, false)]
        );
        // A retried create answers the same; the replica is a share instance like any other.
        let again = driver.create_replica(&secondary, &ctx).await.unwrap();
        assert_eq!(again.export_locations.as_deref(), Some(&locations[..]));
        assert_eq!(driver.share_size_gb("secondary"), Some(2));
        assert_eq!(
            driver.ensure_share(&secondary.instance).await.unwrap(),
            locations
        );

        let updated = driver.update_replica_state(&secondary, &ctx).await.unwrap();
        assert_eq!(
            updated,
            ReplicaResult {
                replica_state: "in_sync".into(),
                export_locations: None,
                sync: None,
            }
        );

        let promoted = driver
            .promote_replica(&secondary, &ctx, Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(promoted.replica_state, "active");
        assert_eq!(promoted.export_locations, Some(locations));
        let sync = promoted.sync.expect("a promotion reports its (empty) sync");
        assert!(sync.started_at <= sync.finished_at);
        assert_eq!(
            (sync.outcome.as_str(), sync.files_transferred),
            ("clean", 0)
        );
        // The former active is brought up to date like any secondary.
        let demoted = driver.update_replica_state(&active, &ctx).await.unwrap();
        assert_eq!(demoted.replica_state, "in_sync");

        driver.delete_replica(&secondary).await.unwrap();
        driver.delete_replica(&secondary).await.unwrap();
        assert_eq!(driver.share_size_gb("secondary"), None);
        assert!(matches!(
            driver.update_replica_state(&secondary, &ctx).await,
            Err(DriverError::NotFound { .. })
        ));
        assert!(matches!(
            driver.promote_replica(&secondary, &ctx, None).await,
            Err(DriverError::NotFound { .. })
        ));
    }

    /// Manila's dummy answers the same for every replication type: a new replica of a
    /// `writable` share is `in_sync` (not `active`), so it can be reset and promoted.
    #[tokio::test]
    async fn replies_do_not_depend_on_the_replication_type() {
        for replication_type in ["readable", "dr", "writable"] {
            let driver = driver();
            let active = replica_ref("active", Some("active"));
            driver.create_share(&active.instance).await.unwrap();
            let secondary = replica_ref("secondary", None);
            let replicas = [active.clone(), secondary.clone()];
            let ctx = ctx(replication_type, Some(&active), &replicas);
            let created = driver.create_replica(&secondary, &ctx).await.unwrap();
            assert_eq!(created.replica_state, "in_sync", "{replication_type}");
            assert_eq!(
                created.export_locations.as_deref().map(<[_]>::len),
                Some(3),
                "{replication_type}"
            );
            let updated = driver.update_replica_state(&secondary, &ctx).await.unwrap();
            assert_eq!(updated.replica_state, "in_sync", "{replication_type}");
            let promoted = driver
                .promote_replica(&secondary, &ctx, None)
                .await
                .unwrap();
            assert_eq!(promoted.replica_state, "active", "{replication_type}");
            let demoted = driver.update_replica_state(&active, &ctx).await.unwrap();
            assert_eq!(demoted.replica_state, "in_sync", "{replication_type}");
        }
    }

    #[tokio::test]
    async fn replica_creation_checks_pool_and_protocol() {
        let driver = driver();
        let mut elsewhere = replica_ref("r", None);
        elsewhere.instance.pool = "other".into();
        let ctx = ctx("dr", None, &[]);
        assert!(matches!(
            driver.create_replica(&elsewhere, &ctx).await,
            Err(DriverError::PoolUnavailable { .. })
        ));
        let mut glusterfs = replica_ref("r", None);
        glusterfs.instance.share_proto = "GLUSTERFS".into();
        assert!(matches!(
            driver.create_replica(&glusterfs, &ctx).await,
            Err(DriverError::InvalidInput(_))
        ));
        assert_eq!(driver.share_size_gb("r"), None);
    }

    #[tokio::test]
    async fn replica_methods_fail_on_demand_without_effect() {
        let driver = driver();
        let active = replica_ref("active", Some("active"));
        driver.create_share(&active.instance).await.unwrap();
        let secondary = replica_ref("secondary", None);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("readable", Some(&active), &replicas);

        driver.set_failure(DummyMethod::CreateReplica, 1.0);
        let err = driver.create_replica(&secondary, &ctx).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("injected failure in create_replica"),
            "{err}"
        );
        assert_eq!(driver.share_size_gb("secondary"), None);
        driver.set_failure(DummyMethod::CreateReplica, 0.0);
        driver.create_replica(&secondary, &ctx).await.unwrap();

        for (method, name) in [
            (DummyMethod::UpdateReplicaState, "update_replica_state"),
            (DummyMethod::PromoteReplica, "promote_replica"),
            (DummyMethod::DeleteReplica, "delete_replica"),
        ] {
            driver.set_failure(method, 1.0);
            let err = match method {
                DummyMethod::UpdateReplicaState => driver
                    .update_replica_state(&secondary, &ctx)
                    .await
                    .unwrap_err(),
                DummyMethod::PromoteReplica => driver
                    .promote_replica(&secondary, &ctx, None)
                    .await
                    .unwrap_err(),
                _ => driver.delete_replica(&secondary).await.unwrap_err(),
            };
            assert!(matches!(err, DriverError::Other(_)), "{name}");
            assert!(
                err.to_string()
                    .contains(&format!("injected failure in {name}")),
                "{err}"
            );
            driver.set_failure(method, 0.0);
        }
        assert_eq!(
            driver.share_size_gb("secondary"),
            Some(2),
            "the failed delete kept the replica"
        );
        driver.delete_replica(&secondary).await.unwrap();
        assert_eq!(driver.share_size_gb("secondary"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn replica_delays_are_honoured() {
        let driver = driver();
        let active = replica_ref("active", Some("active"));
        driver.create_share(&active.instance).await.unwrap();
        let secondary = replica_ref("secondary", None);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("dr", Some(&active), &replicas);
        let timings = DummyOptions::manila_timings();
        for method in [
            DummyMethod::CreateReplica,
            DummyMethod::UpdateReplicaState,
            DummyMethod::PromoteReplica,
            DummyMethod::DeleteReplica,
        ] {
            driver.set_delay(method, timings.delays[&method]);
        }
        let start = tokio::time::Instant::now();
        driver.create_replica(&secondary, &ctx).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(3990));
        let start = tokio::time::Instant::now();
        driver.update_replica_state(&secondary, &ctx).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(850));
        let start = tokio::time::Instant::now();
        driver
            .promote_replica(&secondary, &ctx, None)
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(750));
        let start = tokio::time::Instant::now();
        driver.delete_replica(&secondary).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(2980));
    }

    #[tokio::test]
    async fn reports_configured_capacity_minus_allocations() {
        let driver = driver();
        let stats = driver.get_share_stats(&BTreeMap::new()).await.unwrap();
        assert_eq!(stats[0].total_capacity_gb, 1000.0);
        assert_eq!(stats[0].free_capacity_gb, 1000.0);
        assert_eq!(stats[0].replication_type.as_deref(), Some("writable"));
        let stats = driver
            .get_share_stats(&BTreeMap::from([("fake_pool".to_owned(), 300)]))
            .await
            .unwrap();
        assert_eq!(
            (stats[0].allocated_capacity_gb, stats[0].free_capacity_gb),
            (300.0, 700.0)
        );
        let stats = driver
            .get_share_stats(&BTreeMap::from([("fake_pool".to_owned(), 3000)]))
            .await
            .unwrap();
        assert_eq!(stats[0].free_capacity_gb, 0.0);
    }

    #[tokio::test]
    async fn create_is_idempotent_with_manilas_three_export_locations() {
        let driver = driver();
        let s = share("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "NFS");
        let locations = driver.create_share(&s).await.unwrap();
        let path = "/path/to/fake/share/share_11111111_2222_4333_8444_555555555555_aaaaaaaa_bbbb_4ccc_8ddd_eeeeeeeeeeee";
        let summary: Vec<_> = locations
            .iter()
            .map(|l| (l.path.as_str(), l.is_admin_only, l.preferred))
            .collect();
        assert_eq!(
            summary,
            [
                (format!("10.0.0.10:{path}").as_str(), false, true),
                (format!("10.0.0.20:{path}").as_str(), false, false),
                (format!("11.0.0.11:{path}").as_str(), true, false),
            ]
        );
        assert_eq!(driver.create_share(&s).await.unwrap(), locations);
        assert_eq!(driver.ensure_share(&s).await.unwrap(), locations);
        assert_eq!(driver.share_size_gb(&s.id), Some(2));
    }

    #[tokio::test]
    async fn create_checks_protocol_pool_and_size() {
        let driver = driver();
        assert!(matches!(
            driver.create_share(&share("a", "GLUSTERFS")).await,
            Err(DriverError::InvalidInput(_))
        ));
        let mut elsewhere = share("a", "NFS");
        elsewhere.pool = "other".into();
        assert!(matches!(
            driver.create_share(&elsewhere).await,
            Err(DriverError::PoolUnavailable { .. })
        ));
        let mut zero = share("a", "NFS");
        zero.size_gb = 0;
        assert!(matches!(
            driver.create_share(&zero).await,
            Err(DriverError::InvalidInput(_))
        ));
        assert_eq!(driver.share_size_gb("a"), None);
    }

    #[tokio::test]
    async fn delete_is_idempotent_and_state_does_not_survive_a_restart() {
        let driver = driver();
        let s = share("a", "CIFS");
        driver.create_share(&s).await.unwrap();
        driver.delete_share(&s).await.unwrap();
        driver.delete_share(&s).await.unwrap();
        assert!(matches!(
            driver.ensure_share(&s).await,
            Err(DriverError::NotFound { .. })
        ));

        driver.create_share(&s).await.unwrap();
        let restarted = self::driver();
        assert!(matches!(
            restarted.ensure_share(&s).await,
            Err(DriverError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn resize_and_usage() {
        let driver = driver();
        let s = share("a", "NFS");
        assert!(matches!(
            driver.extend_share(&s, 3).await,
            Err(DriverError::NotFound { .. })
        ));
        assert!(matches!(
            driver.get_share_usage_bytes(&s).await,
            Err(DriverError::NotFound { .. })
        ));
        assert!(driver.set_share_usage_bytes("a", 1).is_err());
        driver.create_share(&s).await.unwrap();
        driver.extend_share(&s, 5).await.unwrap();
        assert_eq!(driver.share_size_gb("a"), Some(5));
        assert!(matches!(
            driver.extend_share(&s, 4).await,
            Err(DriverError::InvalidInput(_))
        ));
        driver.shrink_share(&s, 3).await.unwrap();
        assert_eq!(driver.share_size_gb("a"), Some(3));
        assert_eq!(driver.get_share_usage_bytes(&s).await.unwrap(), 0);
        driver
            .set_share_usage_bytes("a", 2 * GIB_BYTES + 1)
            .unwrap();
        assert_eq!(
            driver.get_share_usage_bytes(&s).await.unwrap(),
            2 * GIB_BYTES + 1
        );
        match driver.shrink_share(&s, 2).await {
            Err(DriverError::ShrinkBelowUsage { used_bytes }) => {
                assert_eq!(used_bytes, 2 * GIB_BYTES + 1)
            }
            other => panic!("expected ShrinkBelowUsage, got {other:?}"),
        }
        assert_eq!(driver.share_size_gb("a"), Some(3));
    }

    #[tokio::test]
    async fn access_policy_is_ip_for_nfs_and_user_for_cifs() {
        let driver = driver();
        let nfs = share("n", "NFS");
        let cifs = share("c", "CIFS");
        driver.create_share(&nfs).await.unwrap();
        driver.create_share(&cifs).await.unwrap();
        let all = [
            rule("ip", "ip"),
            rule("user", "user"),
            rule("cert", "cert"),
            rule("cephx", "cephx"),
        ];

        let results = driver.update_access(&nfs, &all, &[], &[]).await.unwrap();
        assert_eq!(results["ip"], AccessRuleResult::Applied);
        for id in ["user", "cert", "cephx"] {
            assert!(
                matches!(&results[id], AccessRuleResult::Error(m) if m.contains("'nfs' share protocol")),
                "{id}"
            );
        }
        assert_eq!(
            driver.applied_access_rules("n").unwrap(),
            [rule("ip", "ip")]
        );

        let results = driver.update_access(&cifs, &all, &[], &[]).await.unwrap();
        assert_eq!(results["user"], AccessRuleResult::Applied);
        for id in ["ip", "cert", "cephx"] {
            assert!(matches!(results[id], AccessRuleResult::Error(_)), "{id}");
        }

        // Denying a rule, including one never applied, is not an error.
        let results = driver
            .update_access(&nfs, &[], &[], &[rule("ip", "ip"), rule("never", "ip")])
            .await
            .unwrap();
        assert!(results.is_empty());
        assert_eq!(driver.applied_access_rules("n").unwrap(), []);
        assert!(matches!(
            driver
                .update_access(&share("x", "NFS"), &[], &[], &[])
                .await,
            Err(DriverError::NotFound { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn delays_are_honoured() {
        let driver = Arc::new(driver());
        driver.set_delay(DummyMethod::CreateShare, Duration::from_secs(4));
        let start = tokio::time::Instant::now();
        let task = {
            let driver = driver.clone();
            tokio::spawn(async move { driver.create_share(&share("a", "NFS")).await })
        };
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(3900)).await;
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        assert_eq!(
            driver.share_size_gb("a"),
            None,
            "the work happens after the delay"
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        task.await.unwrap().unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        assert_eq!(driver.share_size_gb("a"), Some(2));

        // Other methods are not slowed down, and zero removes a delay.
        let start = tokio::time::Instant::now();
        driver.ensure_share(&share("a", "NFS")).await.unwrap();
        driver.set_delay(DummyMethod::CreateShare, Duration::ZERO);
        driver.create_share(&share("b", "NFS")).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn configured_delays_apply_from_the_start() {
        let options = DummyOptions {
            delays: BTreeMap::from([(DummyMethod::DoSetup, Duration::from_millis(50))]),
            fail: BTreeMap::new(),
            ..DummyOptions::default()
        };
        let driver = DummyDriver::new(driver().info, driver().pools, options);
        let start = tokio::time::Instant::now();
        driver.do_setup().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(50));
    }

    #[tokio::test]
    async fn failure_injection_at_one_and_zero() {
        let driver = driver();
        let s = share("a", "NFS");
        driver.set_failure(DummyMethod::CreateShare, 1.0);
        for _ in 0..20 {
            let err = driver.create_share(&s).await.unwrap_err();
            assert!(matches!(err, DriverError::Other(_)));
            assert!(
                err.to_string().contains("injected failure in create_share"),
                "{err}"
            );
        }
        assert_eq!(
            driver.share_size_gb("a"),
            None,
            "a failed call has no effect"
        );
        driver.set_failure(DummyMethod::CreateShare, 0.0);
        for _ in 0..20 {
            driver.create_share(&s).await.unwrap();
        }
        driver.set_failure(DummyMethod::DeleteShare, 1.0);
        assert!(driver.delete_share(&s).await.is_err());
        assert_eq!(driver.share_size_gb("a"), Some(2));
        assert!(
            driver.ensure_share(&s).await.is_ok(),
            "other methods are unaffected"
        );
    }

    #[tokio::test]
    async fn failure_injection_in_between_is_random() {
        let driver = driver();
        driver.set_failure(DummyMethod::GetShareStats, 0.5);
        let mut failures = 0;
        for _ in 0..1000 {
            if driver.get_share_stats(&BTreeMap::new()).await.is_err() {
                failures += 1;
            }
        }
        // Binomial(1000, 0.5): outside 350..650 has a probability below 1e-20.
        assert!((350..650).contains(&failures), "{failures}");
    }

    #[tokio::test]
    async fn configured_failures_and_their_validation() {
        let fail_setup = DummyOptions {
            delays: BTreeMap::new(),
            fail: BTreeMap::from([(DummyMethod::DoSetup, 1.0)]),
            ..DummyOptions::default()
        };
        let driver = DummyDriver::new(driver().info, driver().pools, fail_setup);
        assert!(matches!(
            driver.do_setup().await,
            Err(DriverError::Other(_))
        ));
        let invalid = DummyOptions {
            delays: BTreeMap::new(),
            fail: BTreeMap::from([(DummyMethod::DoSetup, 1.5)]),
            ..DummyOptions::default()
        };
        let driver = DummyDriver::new(driver.info.clone(), driver.pools.clone(), invalid);
        assert!(matches!(
            driver.do_setup().await,
            Err(DriverError::InvalidInput(_))
        ));
    }

    #[test]
    fn options_deserialize_from_toml_and_reject_mistakes() {
        let options: DummyOptions = toml::from_str(
            r#"
            delays = { create_share = "3.98s", update_access = "2s", promote_replica = "750ms" }
            fail = { delete_share = 0.25, ensure_share = 1 }
            "#,
        )
        .unwrap();
        assert_eq!(
            options.delays[&DummyMethod::CreateShare],
            Duration::from_millis(3980)
        );
        assert_eq!(
            options.delays[&DummyMethod::PromoteReplica],
            Duration::from_millis(750)
        );
        assert_eq!(options.fail[&DummyMethod::DeleteShare], 0.25);
        assert_eq!(options.fail[&DummyMethod::EnsureShare], 1.0);
        let round_trip: DummyOptions = toml::from_str(&toml::to_string(&options).unwrap()).unwrap();
        assert_eq!(round_trip, options);
        assert_eq!(
            toml::from_str::<DummyOptions>("").unwrap(),
            DummyOptions::default()
        );

        for bad in [
            r#"delays = { create_shares = "1s" }"#,
            r#"delays = { create_share = "soon" }"#,
            r#"fail = { create_share = 1.5 }"#,
            r#"fail = { create_share = -0.1 }"#,
            r#"failures = { create_share = 0.5 }"#,
        ] {
            assert!(toml::from_str::<DummyOptions>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manila_timings_match_the_reference() {
        let timings = DummyOptions::manila_timings();
        assert_eq!(
            timings.delays[&DummyMethod::CreateShare],
            Duration::from_millis(3980)
        );
        assert_eq!(
            timings.delays[&DummyMethod::UpdateAccess],
            Duration::from_secs(2)
        );
        assert_eq!(
            timings.delays[&DummyMethod::UpdateReplicaState],
            Duration::from_millis(850)
        );
        assert!(timings.fail.is_empty());
        timings.validate().unwrap();
    }

    #[tokio::test]
    async fn manage_adopts_only_what_was_unmanaged() {
        let driver = driver();
        let old = share("old", "NFS");
        let created = driver.create_share(&old).await.unwrap();
        let path = created[0].path.clone();
        let mount = path.split_once(":/").unwrap().1.to_owned();
        let m1 = share("m1", "NFS");
        let mut options = BTreeMap::new();
        // Still managed: not adoptable.
        let err = driver
            .manage_existing(&m1, &path, &options)
            .await
            .unwrap_err();
        assert!(matches!(err, DriverError::InvalidInput(_)), "{err}");
        assert_eq!(
            err.to_string(),
            DriverError::InvalidInput(
                "Invalid export specified, existing share old could not be found".into()
            )
            .to_string(),
            "Manila reads the instance id out of the path"
        );
        driver.unmanage(&old).await.unwrap();
        assert_eq!(driver.share_size_gb("old"), None);
        // Unmanaging what is not there is not an error.
        driver.unmanage(&old).await.unwrap();

        // An unknown path, and a bad protocol, are refused and consume nothing.
        let err = driver
            .manage_existing(&m1, "10.0.0.1:/legacy/export", &options)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            DriverError::InvalidInput(
                "Invalid export specified, existing share 10.0.0.1:/legacy/export could not be found"
                    .into()
            )
            .to_string()
        );
        assert!(matches!(
            driver
                .manage_existing(&share("m1", "GLUSTERFS"), &path, &options)
                .await,
            Err(DriverError::InvalidInput(_))
        ));
        for bad in ["0", "-1", "many"] {
            options.insert("size".to_owned(), bad.to_owned());
            let err = driver
                .manage_existing(&m1, &path, &options)
                .await
                .unwrap_err();
            assert!(matches!(err, DriverError::InvalidInput(_)), "{bad}: {err}");
        }
        options.clear();

        // The known mount point, behind any address: size 1, fresh export locations.
        let managed = driver
            .manage_existing(&m1, &format!("192.0.2.1:/{mount}"), &options)
            .await
            .unwrap();
        assert_eq!(managed.size_gb, 1);
        assert_eq!(managed.export_locations, export_locations(&m1));
        assert_eq!(driver.share_size_gb("m1"), Some(1));
        let again = driver.manage_existing(&m1, &path, &options).await.unwrap();
        assert_eq!(again, managed, "a retry answers the same");
        assert!(
            driver
                .manage_existing(&share("m2", "NFS"), &path, &options)
                .await
                .is_err(),
            "consumed"
        );

        // Unmanaged, managed again with the size asked for.
        driver.unmanage(&m1).await.unwrap();
        options.insert("size".to_owned(), "7".to_owned());
        let m2 = share("m2", "NFS");
        let sized = driver
            .manage_existing(&m2, &managed.export_locations[1].path, &options)
            .await
            .unwrap();
        assert_eq!(sized.size_gb, 7);
        driver.set_failure(DummyMethod::ManageExisting, 1.0);
        assert!(
            driver
                .manage_existing(&share("m3", "NFS"), "p", &BTreeMap::new())
                .await
                .is_err()
        );
        driver.set_failure(DummyMethod::Unmanage, 1.0);
        assert!(driver.unmanage(&m2).await.is_err());
        assert_eq!(driver.share_size_gb("m2"), Some(7));
    }

    #[test]
    fn method_names_match_serde() {
        for method in [
            DummyMethod::DoSetup,
            DummyMethod::GetShareUsageBytes,
            DummyMethod::UpdateReplicaState,
            DummyMethod::ManageExisting,
        ] {
            assert_eq!(serde_json::to_value(method).unwrap(), method.as_str());
        }
    }
}
