//! The `local` back end: every pool is a directory on a POSIX filesystem.
//!
//! Layout of a pool directory (mode 0700, owned by shoal's user):
//!
//! ```text
//! <pool>/shares/<instance-id>/               an ACTIVE instance's data root, mode 0750
//! <pool>/shares/<instance-id>.meta.json      {"share_id", "size_gb", "role"}: the allocation,
//!                                            for secondaries too
//! <pool>/shares/<instance-id>.access.json    {"rules": [...]}: the applied access rules
//! <pool>/shares/<instance-id>.quiesced       the instance is being promoted away from
//! <pool>/shares/.tmp-*                       work in progress; removed by `do_setup`
//! <pool>/replicas/<instance-id>/             a SECONDARY replica: the replication engine's
//!                                            directory (`v<N>/`, `current -> v<N>`, manifests)
//! <pool>/replicas/<instance-id>.state.json   replica bookkeeping: replication type, source
//!                                            point of the last clean sync, failed syncs in a row
//! ```
//!
//! What is persisted here and why: the directory is the share; the meta file records the
//! size the share was given, because a directory has no size of its own (size is enforced by
//! accounting: shrinking below the bytes held is refused; writes are checked once the data
//! plane serves the share). The access file records the rule set the share manager last
//! applied, so `ensure_share` after a restart and the NFS data plane of a later issue can
//! read it without the database. Everything else (usage, capacity) is measured.
//!
//! Which layout an instance has is read from the directories, never from the database: a
//! `replicas/<id>` directory makes it a secondary, otherwise a `shares/<id>` directory makes
//! it an active one. Replication itself (the `replica` submodule) only moves an instance
//! between the two layouts, through the engine in [`crate::replication`].
//!
//! Safety: only instance ids that are canonical lowercase UUIDs are joined into paths, pool
//! names are looked up among the configured pools and never joined, and a pool, `shares/`,
//! `replicas/` or instance directory that is a symbolic link is refused (deletion and usage
//! walks never follow links). The pool directory is private to shoal, so these checks guard
//! against mistakes and stray links rather than a hostile user racing the driver.
//!
//! Crash safety: a share is created as `.tmp-<id>` and renamed into place, its meta file is
//! written (temporary file, fsync, rename) before that rename, and a deletion first renames the
//! directory away; so an instance directory, once visible, is complete and sized, and every
//! half-done step leaves a `.tmp-*` entry that `do_setup` removes. `do_setup` leaves
//! `replicas/` alone: an interrupted sync is resumed by the engine on the next sync.
//!
//! Capacity is measured, never configured: total and free space come from `statvfs` of the
//! pool directory, so two pools on one filesystem each see its full size.

mod export;
mod journal;
mod replica;
mod snapshot;

pub use export::DataPlane;
pub use journal::Journals;

use std::any::Any;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, TMP_PREFIX};
use crate::{
    AccessRule, AccessRuleResult, BackendInfo, DriverError, ExportLocation, GIB, GIB_BYTES,
    ManageResult, PoolStats, ReplicaContext, ReplicaRef, ReplicaResult, ShareDriver,
    ShareInstanceRef, SnapshotRef, SnapshotResult, check_protocol, check_resize, effective_rules,
    round_gb, rules,
};

/// Mode of a share's root directory: shoal's user owns the data; its group may read it (for
/// operators' tooling), nobody else may.
const SHARE_DIR_MODE: u32 = 0o750;
/// Mode of a pool directory: it holds every project's data, so it is private to shoal.
const POOL_DIR_MODE: u32 = 0o700;

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

/// How long a secondary whose syncs fail still counts as `in_sync` after its last clean
/// sync, unless configured.
pub const REPLICATION_RPO_DEFAULT: Duration = Duration::from_secs(10 * 60);

/// How long a sync pauses at `sync_pause_after_entries` when `sync_pause` is not given.
pub const SYNC_PAUSE_DEFAULT: Duration = Duration::from_secs(10);

/// The `[backends.local]` table: replication settings of a local back end.
///
/// ```toml
/// [backends.local]
/// replication_rpo = "10m"
/// # test knob for kill -9 tests: pause every sync after 100 entries for 30 s
/// sync_pause_after_entries = 100
/// sync_pause = "30s"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalOptions {
    /// Recovery point objective: a secondary whose syncs fail (the active is unreachable)
    /// stays `in_sync` while its last clean sync reflects the active as of less than this
    /// long ago, then turns `out_of_sync`.
    #[serde(with = "humantime_serde")]
    pub replication_rpo: Duration,
    /// Test knob (kill -9 tests, never for production): every sync pauses after writing this
    /// many entries, for `sync_pause`, so a test can kill the process in mid-sync.
    pub sync_pause_after_entries: Option<u64>,
    /// How long the pause of `sync_pause_after_entries` lasts (default 10 s).
    #[serde(with = "humantime_serde")]
    pub sync_pause: Option<Duration>,
    /// Longest time between two syncs of a secondary that walk the whole active tree. In
    /// between, a secondary whose active is served over NFS (by this node or another) looks
    /// only at the paths the active's change journal recorded; the walk finds changes made
    /// behind the data plane's back.
    #[serde(with = "humantime_serde")]
    pub verify_interval: Duration,
}

/// How often a secondary's sync walks the whole source, unless configured.
pub const VERIFY_INTERVAL_DEFAULT: Duration = Duration::from_secs(60 * 60);

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            replication_rpo: REPLICATION_RPO_DEFAULT,
            sync_pause_after_entries: None,
            sync_pause: None,
            verify_interval: VERIFY_INTERVAL_DEFAULT,
        }
    }
}

/// Driver for directory-backed pools.
#[derive(Debug, Clone)]
pub struct LocalDriver {
    info: BackendInfo,
    pools: Vec<LocalPool>,
    options: LocalOptions,
    /// Reaches the replication endpoints of other nodes (secondaries of actives there).
    peers: Option<std::sync::Arc<shoal_replication::transport::PeerClient>>,
    /// The node's NFS server, when it serves this back end's instances.
    nfs: Option<DataPlane>,
}

/// Scheme of the `local://<host><path>` export locations (the admin-only one of an active is
/// how its secondaries find the data to sync from).
const LOCAL_SCHEME: &str = "local://";

/// Which layout an instance has on disk (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    /// `shares/<id>/`: the data root itself. Meta files written before replication have no
    /// role and are active.
    #[default]
    Active,
    /// `replicas/<id>/`: an engine directory with published versions.
    Secondary,
}

/// Contents of `<id>.meta.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ShareMeta {
    /// Share the instance belongs to, for operators reading a pool by hand.
    share_id: String,
    /// Allocated size in GiB.
    size_gb: u64,
    /// Layout of the instance, for operators; the directories are what the driver trusts.
    #[serde(default)]
    role: Role,
    /// `NFS` or `CIFS`: only NFS instances are exported by the data plane. Meta files written
    /// before the data plane have none and count as NFS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    share_proto: Option<String>,
}

/// Contents of `<id>.access.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AccessFile {
    /// Rules applied to the share, in the order the share manager gave them.
    rules: Vec<AccessRule>,
}

/// Paths of one share instance, built only from a validated id.
#[derive(Debug, Clone)]
struct Instance {
    id: String,
    /// Pool name, for [`DriverError::PoolUnavailable`].
    pool: String,
    /// `<pool>/shares`, checked to be a real directory.
    shares: PathBuf,
    /// `<pool>/shares/<id>`.
    dir: PathBuf,
    /// `<pool>/replicas`; checked to be a real directory when it exists (a pool set up
    /// before replication has none until `do_setup` runs).
    replicas: PathBuf,
    /// `<pool>/replicas/<id>`, the engine directory of a secondary.
    replica_root: PathBuf,
}

impl Instance {
    fn state_name(&self) -> String {
        format!("{}.state.json", self.id)
    }

    fn quiesced_name(&self) -> String {
        format!("{}.quiesced", self.id)
    }

    /// Whether `replicas/<id>` exists (a secondary); a symbolic link or a file in its place
    /// is an error, never followed.
    fn replica_exists(&self) -> Result<bool, DriverError> {
        real_dir_exists(&self.replica_root)
    }

    /// The instance's layout, `None` when it does not exist on the back end.
    fn layout(&self) -> Result<Option<Role>, DriverError> {
        if self.replica_exists()? {
            Ok(Some(Role::Secondary))
        } else if self.exists()? {
            Ok(Some(Role::Active))
        } else {
            Ok(None)
        }
    }

    /// Fails with [`DriverError::NotFound`] unless the instance exists in either layout.
    fn require_any(&self) -> Result<Role, DriverError> {
        self.layout()?.ok_or_else(|| DriverError::NotFound {
            share_instance_id: self.id.clone(),
        })
    }

    fn meta_name(&self) -> String {
        format!("{}.meta.json", self.id)
    }

    fn access_name(&self) -> String {
        format!("{}.access.json", self.id)
    }

    /// The change journal of an active instance (see `journal.rs`).
    fn journal_name(&self) -> String {
        format!("{}.journal", self.id)
    }

    /// Where a half-created instance lives until it is renamed into place.
    fn creating(&self) -> PathBuf {
        self.shares.join(format!("{TMP_PREFIX}{}", self.id))
    }

    /// Where an instance being deleted is moved first, so it vanishes at once.
    fn deleting(&self) -> PathBuf {
        self.shares
            .join(format!("{TMP_PREFIX}{}.deleting", self.id))
    }

    /// Whether the instance directory exists; a symbolic link or a file in its place is an
    /// error, never followed.
    fn exists(&self) -> Result<bool, DriverError> {
        real_dir_exists(&self.dir)
    }

    fn read_meta(&self) -> Result<Option<ShareMeta>, DriverError> {
        read_json(&self.shares.join(self.meta_name()))
    }

    fn write_meta(
        &self,
        share: &ShareInstanceRef,
        size_gb: u64,
        role: Role,
    ) -> Result<(), DriverError> {
        let meta = ShareMeta {
            share_id: share.share_id.clone(),
            size_gb,
            role,
            share_proto: Some(share.share_proto.to_ascii_uppercase()),
        };
        write_json(&self.shares, &self.meta_name(), &meta)
    }

    /// The allocated size: the meta file's, or the caller's when the file was lost (it is
    /// rewritten then, the database being the source of truth for sizes).
    fn size_gb(&self, share: &ShareInstanceRef, role: Role) -> Result<u64, DriverError> {
        match self.read_meta()? {
            Some(meta) => Ok(meta.size_gb),
            None => {
                self.write_meta(share, share.size_gb, role)?;
                Ok(share.size_gb)
            }
        }
    }
}

impl LocalDriver {
    /// Builds the driver; nothing touches the disk until `do_setup`.
    pub fn new(info: BackendInfo, pools: Vec<LocalPool>, options: LocalOptions) -> Self {
        Self {
            info,
            pools,
            options,
            peers: None,
            nfs: None,
        }
    }

    /// Lets the node's NFS server serve this back end's instances (see [`DataPlane`]).
    pub fn with_data_plane(mut self, plane: DataPlane) -> Self {
        self.nfs = Some(plane);
        self
    }

    /// Lets the driver sync secondaries whose active lives on another node, through that
    /// node's replication endpoint.
    pub fn with_peer_client(
        mut self,
        client: std::sync::Arc<shoal_replication::transport::PeerClient>,
    ) -> Self {
        self.peers = Some(client);
        self
    }

    /// The pool directories of this back end (the roots its replication endpoint serves).
    pub fn pool_paths(&self) -> Vec<PathBuf> {
        self.pools.iter().map(|p| p.path.clone()).collect()
    }

    /// The access rules last recorded for `share` (empty when none were applied). The NFS data
    /// plane reads them from here.
    pub async fn applied_access_rules(
        &self,
        share: &ShareInstanceRef,
    ) -> Result<Vec<AccessRule>, DriverError> {
        let instance = self.instance(share)?;
        blocking(move || {
            instance.require_any()?;
            Ok(
                read_json::<AccessFile>(&instance.shares.join(instance.access_name()))?
                    .unwrap_or_default()
                    .rules,
            )
        })
        .await
    }

    fn pool_unavailable(pool: &LocalPool, reason: impl std::fmt::Display) -> DriverError {
        DriverError::PoolUnavailable {
            pool: pool.name.clone(),
            reason: reason.to_string(),
        }
    }

    fn pool(&self, name: &str) -> Result<&LocalPool, DriverError> {
        self.pools
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| DriverError::PoolUnavailable {
                pool: name.to_owned(),
                reason: format!("no such pool on back end {}", self.info.backend_name),
            })
    }

    /// Validates the instance id and resolves its paths. Blocking, but only `lstat` calls.
    fn instance(&self, share: &ShareInstanceRef) -> Result<Instance, DriverError> {
        if !fsutil::is_canonical_uuid(&share.id) {
            return Err(DriverError::InvalidInput(format!(
                "share instance id {:?} is not a canonical lowercase UUID",
                share.id
            )));
        }
        let pool = self.pool(&share.pool)?;
        let shares = pool.path.join("shares");
        for dir in [&pool.path, &shares] {
            fsutil::require_real_dir(dir).map_err(|e| Self::pool_unavailable(pool, e))?;
        }
        let replicas = pool.path.join("replicas");
        if fs::symlink_metadata(&replicas).is_ok() {
            fsutil::require_real_dir(&replicas).map_err(|e| Self::pool_unavailable(pool, e))?;
        }
        Ok(Instance {
            id: share.id.clone(),
            pool: pool.name.clone(),
            dir: shares.join(&share.id),
            shares,
            replica_root: replicas.join(&share.id),
            replicas,
        })
    }

    /// Export locations of an active instance: `local://<host><absolute path>` of its data
    /// root, once preferred for clients and once admin-only. The admin-only one is how a
    /// secondary's back end finds the data to sync from, so every active has one. The path is
    /// canonical so it stays the same across restarts whatever the working directory.
    fn export_locations(
        host: &str,
        instance: &Instance,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        let path = location_path(host, &instance.shares, &instance.id)?;
        Ok(vec![
            ExportLocation {
                path: path.clone(),
                is_admin_only: false,
                preferred: true,
                metadata: BTreeMap::new(),
            },
            ExportLocation {
                path,
                is_admin_only: true,
                preferred: false,
                metadata: BTreeMap::new(),
            },
        ])
    }

    /// Pool statistics. Free space is `min(real free space, total − allocated)`, with
    /// `thin_provisioning: false`. Manila's thick semantic is that `free_capacity_gb` already
    /// excludes what shares were promised (an LVM volume takes its blocks at creation). A
    /// directory takes no space when it is created, so real free space alone would let the
    /// scheduler promise a pool many times over; subtracting the allocations keeps promises
    /// within the disk, and the `min` still shows space used by anything else on the
    /// filesystem (another pool, files outside shoal).
    ///
    /// Snapshots are allocated like shares (as an LVM back end's thick snapshots are): the
    /// database's `allocated_gb` counts share instances only, so the sizes recorded in the
    /// pool's snapshot meta files are added to it, in `allocated_capacity_gb` and in what is
    /// subtracted from free space. Their data itself shows in the `statvfs` free space.
    fn stats_of(&self, pool: &LocalPool, allocated_gb: u64) -> Result<PoolStats, DriverError> {
        let (total, free) =
            filesystem_space(&pool.path).map_err(|e| Self::pool_unavailable(pool, e))?;
        let snapshots_gb =
            snapshot::snapshot_allocated_gb(pool).map_err(|e| Self::pool_unavailable(pool, e))?;
        let allocated_gb = allocated_gb.saturating_add(snapshots_gb);
        let total_gb = total as f64 / GIB;
        let unpromised_gb = (total_gb - allocated_gb as f64).max(0.0);
        Ok(PoolStats {
            pool_name: pool.name.clone(),
            total_capacity_gb: round_gb(total_gb),
            free_capacity_gb: round_gb((free as f64 / GIB).min(unpromised_gb)),
            allocated_capacity_gb: allocated_gb as f64,
            reserved_percentage: pool.reserved_percentage,
            thin_provisioning: false,
            driver_handles_share_servers: false,
            replication_type: self.info.replication_type.clone(),
            replication_domain: self.info.replication_domain.clone(),
            snapshot_support: true,
            create_share_from_snapshot_support: true,
            revert_to_snapshot_support: true,
            mount_snapshot_support: true,
            share_backend_name: self.info.backend_name.clone(),
            driver_name: "local".to_owned(),
            storage_protocol: "NFS_CIFS".to_owned(),
            replication_peer_transport: true,
        })
    }
}

/// Creates the pool's `shares/` directory, refuses symbolic links, and removes the `.tmp-*`
/// entries an interrupted create, delete or file write left behind.
fn setup_pool(pool: &LocalPool) -> io::Result<()> {
    if fs::symlink_metadata(&pool.path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::other(format!(
            "{} is a symbolic link",
            pool.path.display()
        )));
    }
    let shares = pool.path.join("shares");
    let replicas = pool.path.join("replicas");
    fs::create_dir_all(&shares)?;
    fsutil::require_real_dir(&pool.path)?;
    fsutil::require_real_dir(&shares)?;
    // Only created: what is inside belongs to the replication engine, which resumes or
    // discards its own leftovers on the next sync.
    match fs::create_dir(&replicas) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
        _ => fsutil::require_real_dir(&replicas)?,
    }
    fs::set_permissions(&pool.path, fs::Permissions::from_mode(POOL_DIR_MODE))?;
    for entry in fs::read_dir(&shares)? {
        let entry = entry?;
        if entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(TMP_PREFIX.as_bytes())
        {
            tracing::info!(pool = %pool.name, entry = ?entry.file_name(), "removing leftover {:?} of pool {}", entry.file_name(), pool.name);
            // A share half-created from a snapshot may hold directories without write bits;
            // the engine's removal restores them on the way.
            crate::replication::snapshot::remove(&entry.path())
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
    }
    fsutil::fsync_dir(&shares)?;
    snapshot::setup_snapshots(pool)
}

fn create(
    host: &str,
    instance: &Instance,
    share: &ShareInstanceRef,
) -> Result<Vec<ExportLocation>, DriverError> {
    if instance.replica_exists()? {
        return Err(DriverError::InvalidInput(format!(
            "share instance {} is a secondary replica on this back end",
            instance.id
        )));
    }
    if instance.exists()? {
        // A retried create (or one racing another): make sure the size is recorded, then
        // answer as the first create did.
        instance.size_gb(share, Role::Active)?;
        return LocalDriver::export_locations(host, instance);
    }
    let creating = instance.creating();
    let context = || format!("creating {}", instance.dir.display());
    fsutil::remove_any(&creating).map_err(|e| io_error(e, context()))?;
    fs::DirBuilder::new()
        .mode(SHARE_DIR_MODE)
        .create(&creating)
        .map_err(|e| io_error(e, context()))?;
    // The umask may have cleared bits of the mode above.
    fs::set_permissions(&creating, fs::Permissions::from_mode(SHARE_DIR_MODE))
        .map_err(|e| io_error(e, context()))?;
    // The size goes first: an instance directory that is visible always has its meta file.
    instance.write_meta(share, share.size_gb, Role::Active)?;
    shoal_replication::failpoints::crash_point("share_create::after_mkdir");
    if let Err(err) = fs::rename(&creating, &instance.dir) {
        // Someone else put the instance in place meanwhile: theirs stands.
        if !instance.exists()? {
            return Err(io_error(err, context()));
        }
        fsutil::remove_any(&creating).map_err(|e| io_error(e, context()))?;
    }
    fsutil::fsync_dir(&instance.shares).map_err(|e| io_error(e, context()))?;
    tracing::info!(share_instance.id = %instance.id, "created share instance {} at {}", instance.id, instance.dir.display());
    LocalDriver::export_locations(host, instance)
}

/// Deletes an instance in whichever layout it has (the share manager may delete a secondary
/// through `delete_share` as well as through `delete_replica`), with every file beside it.
fn delete(instance: &Instance) -> Result<(), DriverError> {
    let context = || format!("deleting {}", instance.dir.display());
    replica::remove_secondary(instance)?;
    let deleting = instance.deleting();
    fsutil::remove_any(&deleting).map_err(|e| io_error(e, context()))?;
    if instance.exists()? {
        // One rename makes the instance vanish at once; the slow removal happens out of sight
        // (and `do_setup` finishes it after a crash).
        fs::rename(&instance.dir, &deleting).map_err(|e| io_error(e, context()))?;
        shoal_replication::failpoints::crash_point("share_delete::after_rename_away");
    }
    for path in [
        instance.shares.join(instance.meta_name()),
        instance.shares.join(instance.access_name()),
        instance.shares.join(instance.quiesced_name()),
        instance.shares.join(instance.journal_name()),
        instance.creating(),
        deleting,
    ] {
        fsutil::remove_any(&path).map_err(|e| io_error(e, context()))?;
    }
    fsutil::fsync_dir(&instance.shares).map_err(|e| io_error(e, context()))?;
    tracing::info!(share_instance.id = %instance.id, "deleted share instance {}", instance.id);
    Ok(())
}

fn resize(
    instance: &Instance,
    share: &ShareInstanceRef,
    new_size_gb: u64,
    extend: bool,
) -> Result<(), DriverError> {
    let role = instance.require_any()?;
    let current = instance.size_gb(share, role)?;
    check_resize(current, new_size_gb, extend)?;
    if !extend {
        let used_bytes = usage(instance, role)?;
        if used_bytes > new_size_gb.saturating_mul(GIB_BYTES) {
            return Err(DriverError::ShrinkBelowUsage { used_bytes });
        }
    }
    instance.write_meta(share, new_size_gb, role)
}

/// Bytes an instance holds: its data root's, or for a secondary its published version's.
fn usage(instance: &Instance, role: Role) -> Result<u64, DriverError> {
    match role {
        Role::Active => fsutil::tree_usage_bytes(&instance.dir)
            .map_err(|e| io_error(e, format!("measuring {}", instance.dir.display()))),
        Role::Secondary => replica::published_usage_bytes(instance),
    }
}

/// Validates every rule and records the valid ones. The local back end has no data plane
/// yet, so "applied" means recorded: enforcement arrives with the NFS server, which reads the
/// access file. As Manila's NFS helpers, an NFS share serves only `ip` rules; CIFS takes
/// `ip` and `user`.
fn update_access(
    instance: &Instance,
    share_proto: &str,
    all_rules: &[AccessRule],
    add: &[AccessRule],
    delete: &[AccessRule],
) -> Result<BTreeMap<String, AccessRuleResult>, DriverError> {
    instance.require_any()?;
    let nfs = share_proto.eq_ignore_ascii_case("NFS");
    let mut results = BTreeMap::new();
    let mut applied = Vec::new();
    for rule in effective_rules(all_rules, add, delete) {
        let verdict = match rule.access_type.as_str() {
            "user" if nfs => Err(format!(
                "Unsupported 'user' access type provided for '{}' share protocol.",
                share_proto.to_ascii_lowercase()
            )),
            "ip" | "user" => rules::validate_rule(&rule),
            "cert" | "cephx" => Err(format!(
                "access type {} is not supported by the local back end",
                rule.access_type
            )),
            other => Err(format!("unknown access type {other:?}")),
        };
        match verdict {
            Ok(()) => {
                results.insert(rule.id.clone(), AccessRuleResult::Applied);
                applied.push(rule);
            }
            Err(reason) => {
                results.insert(rule.id.clone(), AccessRuleResult::Error(reason));
            }
        }
    }
    write_json(
        &instance.shares,
        &instance.access_name(),
        &AccessFile { rules: applied },
    )?;
    Ok(results)
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DriverError> + Send + 'static,
) -> Result<T, DriverError> {
    tokio::task::spawn_blocking(work)
        .await
        .context("local driver task failed")?
}

fn io_error(err: io::Error, context: String) -> DriverError {
    DriverError::Other(anyhow::Error::from(err).context(context))
}

/// Whether `path` is a directory; a symbolic link or a file in its place is an error, never
/// followed.
fn real_dir_exists(path: &Path) -> Result<bool, DriverError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(true),
        Ok(_) => Err(DriverError::Other(anyhow::anyhow!(
            "{} exists but is not a directory (a symbolic link?); refusing to use it",
            path.display()
        ))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(io_error(err, format!("inspecting {}", path.display()))),
    }
}

/// `local://<host><canonical dir>/<name>`: the form of every export location of this driver.
fn location_path(host: &str, dir: &Path, name: &str) -> Result<String, DriverError> {
    let canonical =
        fs::canonicalize(dir).map_err(|e| io_error(e, format!("resolving {}", dir.display())))?;
    let path = canonical.join(name);
    let path = path.to_str().ok_or_else(|| {
        DriverError::Other(anyhow::anyhow!(
            "pool path {} is not valid UTF-8",
            canonical.display()
        ))
    })?;
    Ok(format!("local://{host}{path}"))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, DriverError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("parsing {}", path.display()))
            .map_err(DriverError::Other),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(io_error(err, format!("reading {}", path.display()))),
    }
}

fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), DriverError> {
    let bytes = serde_json::to_vec_pretty(value).context("encoding driver metadata")?;
    fsutil::write_atomic(dir, name, &bytes)
        .map_err(|e| io_error(e, format!("writing {}", dir.join(name).display())))
}

/// Total and available bytes of the filesystem holding `path`.
fn filesystem_space(path: &Path) -> io::Result<(u64, u64)> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let fragment = stat.fragment_size();
    Ok((stat.blocks() * fragment, stat.blocks_available() * fragment))
}

#[async_trait]
impl ShareDriver for LocalDriver {
    fn driver_name(&self) -> &'static str {
        "local"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn do_setup(&self) -> Result<(), DriverError> {
        for pool in self.pools.clone() {
            let name = pool.name.clone();
            blocking(move || setup_pool(&pool).map_err(|e| Self::pool_unavailable(&pool, e)))
                .await
                .inspect_err(|err| tracing::error!(pool = %name, error = %err, "setting up pool {name} failed: {err}"))?;
        }
        self.refresh_all_exports().await
    }

    /// Stats of the pools that can be measured. A pool whose directory vanished or became
    /// unreadable is left out (and logged), so the scheduler stops offering it while the
    /// back end's other pools keep working.
    async fn get_share_stats(
        &self,
        allocated_gb_by_pool: &BTreeMap<String, u64>,
    ) -> Result<Vec<PoolStats>, DriverError> {
        let mut stats = Vec::with_capacity(self.pools.len());
        for pool in &self.pools {
            let allocated = allocated_gb_by_pool.get(&pool.name).copied().unwrap_or(0);
            match self.stats_of(pool, allocated) {
                Ok(stat) => stats.push(stat),
                Err(err) => {
                    tracing::warn!(pool = %pool.name, error = %err, "leaving pool {} out of the report: {err}", pool.name)
                }
            }
        }
        Ok(stats)
    }

    async fn create_share(
        &self,
        share: &ShareInstanceRef,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        check_protocol(share)?;
        if share.size_gb == 0 {
            return Err(DriverError::InvalidInput(
                "a share size must be at least 1 GiB".to_owned(),
            ));
        }
        let instance = self.instance(share)?;
        let (host, share, created) = (self.info.host.clone(), share.clone(), instance.clone());
        let locations = blocking(move || create(&host, &created, &share)).await?;
        self.refresh_export(&instance).await?;
        Ok(self.present(&instance.id, locations))
    }

    async fn delete_share(&self, share: &ShareInstanceRef) -> Result<(), DriverError> {
        let instance = self.instance(share)?;
        // No client may write into a tree on its way out.
        self.unexport(&instance.id);
        blocking(move || delete(&instance)).await
    }

    async fn extend_share(
        &self,
        share: &ShareInstanceRef,
        new_size_gb: u64,
    ) -> Result<(), DriverError> {
        let instance = self.instance(share)?;
        let (share, resized) = (share.clone(), instance.clone());
        blocking(move || resize(&resized, &share, new_size_gb, true)).await?;
        self.refresh_export(&instance).await
    }

    async fn shrink_share(
        &self,
        share: &ShareInstanceRef,
        new_size_gb: u64,
    ) -> Result<(), DriverError> {
        let instance = self.instance(share)?;
        let (share, resized) = (share.clone(), instance.clone());
        blocking(move || resize(&resized, &share, new_size_gb, false)).await?;
        self.refresh_export(&instance).await
    }

    async fn ensure_share(
        &self,
        share: &ShareInstanceRef,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        let instance = self.instance(share)?;
        let (host, share, ensured) = (self.info.host.clone(), share.clone(), instance.clone());
        let fallback_type = self.info.replication_type.clone();
        let locations = blocking(move || {
            let role = ensured.require_any()?;
            ensured.size_gb(&share, role)?;
            match role {
                Role::Active => LocalDriver::export_locations(&host, &ensured),
                Role::Secondary => {
                    replica::ensure_secondary(&host, &ensured, fallback_type.as_deref())
                }
            }
        })
        .await?;
        self.refresh_export(&instance).await?;
        Ok(self.present(&instance.id, locations))
    }

    async fn update_access(
        &self,
        share: &ShareInstanceRef,
        all_rules: &[AccessRule],
        add: &[AccessRule],
        delete: &[AccessRule],
    ) -> Result<BTreeMap<String, AccessRuleResult>, DriverError> {
        let instance = self.instance(share)?;
        let (all_rules, add, delete) = (all_rules.to_vec(), add.to_vec(), delete.to_vec());
        let (proto, updated) = (share.share_proto.clone(), instance.clone());
        let results =
            blocking(move || update_access(&updated, &proto, &all_rules, &add, &delete)).await?;
        // A rule is reported applied only once the NFS server enforces it.
        self.refresh_export(&instance).await?;
        Ok(results)
    }

    async fn get_share_usage_bytes(&self, share: &ShareInstanceRef) -> Result<u64, DriverError> {
        let instance = self.instance(share)?;
        blocking(move || {
            let role = instance.require_any()?;
            usage(&instance, role)
        })
        .await
    }

    async fn create_replica(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
    ) -> Result<ReplicaResult, DriverError> {
        let result = self.create_replica_impl(replica, ctx).await?;
        // Manila hands the share's rules (already cast to read-only for a readable
        // secondary) to `create_replica` for the driver to apply: record them as
        // `update_access` would, so the new replica's export admits the same clients.
        let instance = self.instance(&replica.instance)?;
        let (rules, proto) = (
            ctx.access_rules.to_vec(),
            replica.instance.share_proto.clone(),
        );
        blocking(move || update_access(&instance, &proto, &rules, &[], &[]).map(|_| ())).await?;
        self.replica_exported(replica, result, false).await
    }

    async fn delete_replica(&self, replica: &ReplicaRef) -> Result<(), DriverError> {
        let instance = self.instance(&replica.instance)?;
        self.unexport(&instance.id);
        blocking(move || delete(&instance)).await
    }

    async fn promote_replica(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        quiesce_wait: Option<Duration>,
    ) -> Result<ReplicaResult, DriverError> {
        let result = self
            .promote_replica_impl(replica, ctx, quiesce_wait)
            .await?;
        self.replica_exported(replica, result, false).await
    }

    async fn update_replica_state(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
    ) -> Result<ReplicaResult, DriverError> {
        let result = self.update_replica_state_impl(replica, ctx).await?;
        self.replica_exported(replica, result, true).await
    }

    async fn create_snapshot(&self, snapshot: &SnapshotRef) -> Result<SnapshotResult, DriverError> {
        self.create_snapshot_impl(snapshot).await
    }

    async fn delete_snapshot(&self, snapshot: &SnapshotRef) -> Result<(), DriverError> {
        self.delete_snapshot_impl(snapshot).await
    }

    async fn revert_to_snapshot(&self, snapshot: &SnapshotRef) -> Result<(), DriverError> {
        self.revert_to_snapshot_impl(snapshot).await?;
        // The tree was replaced under the server: handles of changed files go stale, the
        // quota's usage is measured again, and the secondaries walk (the journal starts over).
        let instance = self.instance(&snapshot.share_instance)?;
        if let Some(journal) = self.journal_of(&instance.id) {
            let reset = blocking(move || {
                journal
                    .reset()
                    .map_err(|e| io_error(e, "resetting a change journal".to_owned()))
            });
            reset.await?;
        }
        self.refresh_export(&instance).await?;
        self.recount_usage(&instance).await
    }

    async fn create_share_from_snapshot(
        &self,
        share: &ShareInstanceRef,
        snapshot: &SnapshotRef,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        let locations = self
            .create_share_from_snapshot_impl(share, snapshot)
            .await?;
        let instance = self.instance(share)?;
        self.refresh_export(&instance).await?;
        Ok(self.present(&instance.id, locations))
    }

    async fn snapshot_update_access(
        &self,
        snapshot: &SnapshotRef,
        all_rules: &[AccessRule],
        add: &[AccessRule],
        delete: &[AccessRule],
    ) -> Result<BTreeMap<String, AccessRuleResult>, DriverError> {
        self.snapshot_update_access_impl(snapshot, all_rules, add, delete)
            .await
    }

    /// `snapshot.provider_location` names the directory to adopt; driver options are ignored.
    async fn manage_existing_snapshot(
        &self,
        snapshot: &SnapshotRef,
        driver_options: &BTreeMap<String, String>,
    ) -> Result<SnapshotResult, DriverError> {
        ignore_driver_options(driver_options);
        self.manage_existing_snapshot_impl(snapshot).await
    }

    async fn unmanage_snapshot(&self, snapshot: &SnapshotRef) -> Result<(), DriverError> {
        self.unmanage_snapshot_impl(snapshot).await
    }

    async fn create_replica_snapshot(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        snapshot: &SnapshotRef,
        active_snapshot: &SnapshotRef,
    ) -> Result<SnapshotResult, DriverError> {
        self.replica_snapshot_impl(replica, ctx, snapshot, active_snapshot)
            .await
    }

    /// The copy is made in one call, so this only finishes one that was interrupted.
    async fn update_replica_snapshot(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        snapshot: &SnapshotRef,
        active_snapshot: &SnapshotRef,
    ) -> Result<SnapshotResult, DriverError> {
        self.replica_snapshot_impl(replica, ctx, snapshot, active_snapshot)
            .await
    }

    /// `export_path` is `local://<host><path>` or an absolute path inside the share's pool;
    /// driver options are ignored.
    async fn manage_existing(
        &self,
        share: &ShareInstanceRef,
        export_path: &str,
        driver_options: &BTreeMap<String, String>,
    ) -> Result<ManageResult, DriverError> {
        ignore_driver_options(driver_options);
        let mut managed = self.manage_existing_impl(share, export_path).await?;
        let instance = self.instance(share)?;
        self.refresh_export(&instance).await?;
        managed.export_locations = self.present(&instance.id, managed.export_locations);
        Ok(managed)
    }

    async fn unmanage(&self, share: &ShareInstanceRef) -> Result<(), DriverError> {
        // shoal stops serving the share; its data stays where it is.
        self.unexport(&share.id);
        self.unmanage_impl(share).await
    }
}

/// The local back end uses no driver options on manage. As Manila's drivers do, options it
/// does not use are ignored (clients such as tempest pass e.g. `size` to every driver); they
/// are logged at debug so an operator can see what was dropped.
fn ignore_driver_options(driver_options: &BTreeMap<String, String>) {
    if !driver_options.is_empty() {
        tracing::debug!(
            options = ?driver_options.keys().collect::<Vec<_>>(),
            "the local back end ignores the driver options it was given on manage"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    const ID: &str = "5c0b8d6e-2f4a-4a7b-9c1d-3e5f7a9b1c2d";

    fn driver(dir: &Path) -> LocalDriver {
        LocalDriver::new(
            BackendInfo {
                host: "node1".into(),
                backend_name: "local1".into(),
                replication_type: Some("readable".into()),
                replication_domain: Some("d1".into()),
            },
            vec![LocalPool {
                name: "pool1".into(),
                path: dir.join("pool1"),
                reserved_percentage: 5,
            }],
            LocalOptions::default(),
        )
    }

    async fn ready(dir: &Path) -> LocalDriver {
        let driver = driver(dir);
        driver.do_setup().await.unwrap();
        driver
    }

    fn share(id: &str) -> ShareInstanceRef {
        ShareInstanceRef {
            id: id.into(),
            share_id: "0f0e0d0c-0b0a-4908-8706-050403020100".into(),
            pool: "pool1".into(),
            size_gb: 1,
            share_proto: "NFS".into(),
        }
    }

    fn shares_dir(dir: &Path) -> PathBuf {
        dir.join("pool1/shares")
    }

    fn meta_size(dir: &Path, id: &str) -> u64 {
        let meta: ShareMeta = serde_json::from_slice(
            &fs::read(shares_dir(dir).join(format!("{id}.meta.json"))).unwrap(),
        )
        .unwrap();
        meta.size_gb
    }

    fn rule(id: &str, access_type: &str, access_to: &str) -> AccessRule {
        AccessRule {
            id: id.into(),
            access_type: access_type.into(),
            access_to: access_to.into(),
            access_level: "rw".into(),
        }
    }

    #[tokio::test]
    async fn setup_creates_private_pool_and_stats_measure_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let meta = fs::metadata(dir.path().join("pool1")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        assert!(shares_dir(dir.path()).is_dir());
        let stats = driver.get_share_stats(&BTreeMap::new()).await.unwrap();
        assert_eq!(stats.len(), 1);
        let s = &stats[0];
        assert_eq!(s.pool_name, "pool1");
        assert!(s.total_capacity_gb > 0.0 && s.free_capacity_gb <= s.total_capacity_gb);
        assert_eq!(s.allocated_capacity_gb, 0.0);
        assert_eq!(s.replication_domain.as_deref(), Some("d1"));
        assert_eq!(s.reserved_percentage, 5);
    }

    #[tokio::test]
    async fn stats_subtract_allocations_from_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let before = driver
            .get_share_stats(&BTreeMap::new())
            .await
            .unwrap()
            .remove(0);
        let total = before.total_capacity_gb as u64;
        let allocated = BTreeMap::from([
            ("pool1".to_owned(), total.saturating_sub(1)),
            ("other".to_owned(), 5),
        ]);
        let after = driver.get_share_stats(&allocated).await.unwrap().remove(0);
        assert_eq!(after.allocated_capacity_gb, total.saturating_sub(1) as f64);
        assert!(
            after.free_capacity_gb <= before.total_capacity_gb - after.allocated_capacity_gb + 0.01,
            "{after:?}"
        );
        // Promised beyond the disk: nothing is free, never negative.
        let over = BTreeMap::from([("pool1".to_owned(), total * 3)]);
        assert_eq!(
            driver.get_share_stats(&over).await.unwrap()[0].free_capacity_gb,
            0.0
        );
    }

    #[tokio::test]
    async fn vanished_pool_is_left_out_of_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let driver = driver(dir.path());
        assert!(
            driver
                .get_share_stats(&BTreeMap::new())
                .await
                .unwrap()
                .is_empty()
        );
        let pool = &driver.pools[0];
        assert!(matches!(
            driver.stats_of(pool, 0),
            Err(DriverError::PoolUnavailable { .. })
        ));
    }

    #[tokio::test]
    async fn create_makes_a_private_directory_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let first = driver.create_share(&share(ID)).await.unwrap();
        let instance_dir = shares_dir(dir.path()).join(ID);
        let meta = fs::symlink_metadata(&instance_dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o750);
        // Owned by shoal's user, like the pool it was created in.
        assert_eq!(
            meta.uid(),
            fs::metadata(dir.path().join("pool1")).unwrap().uid()
        );
        assert_eq!(meta_size(dir.path(), ID), 1);

        fs::write(instance_dir.join("data"), b"kept").unwrap();
        let second = driver.create_share(&share(ID)).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(fs::read(instance_dir.join("data")).unwrap(), b"kept");
    }

    #[tokio::test]
    async fn export_location_names_host_and_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let locations = driver.create_share(&share(ID)).await.unwrap();
        let canonical = fs::canonicalize(shares_dir(dir.path()).join(ID)).unwrap();
        let path = format!("local://node1{}", canonical.display());
        // Once for clients, once admin-only: the latter is how a replica finds its source.
        assert_eq!(
            locations,
            [
                ExportLocation {
                    path: path.clone(),
                    is_admin_only: false,
                    preferred: true,
                    metadata: BTreeMap::new(),
                },
                ExportLocation {
                    path,
                    is_admin_only: true,
                    preferred: false,
                    metadata: BTreeMap::new(),
                }
            ]
        );
        assert!(locations[0].path.starts_with("local://node1/"));
    }

    #[tokio::test]
    async fn ids_are_validated_before_touching_paths() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        for bad in [
            "../../etc",
            "../5c0b8d6e-2f4a-4a7b-9c1d-3e5f7a9b1c",
            "5C0B8D6E-2F4A-4A7B-9C1D-3E5F7A9B1C2D",
            "5c0b8d6e2f4a4a7b9c1d3e5f7a9b1c2d",
            "/tmp/5c0b8d6e-2f4a-4a7b-9c1d-3e5f7a9b",
            ".tmp-5c0b8d6e-2f4a-4a7b-9c1d-3e5f7a9",
            "",
        ] {
            let share = share(bad);
            assert!(
                matches!(
                    driver.create_share(&share).await,
                    Err(DriverError::InvalidInput(_))
                ),
                "{bad}"
            );
            assert!(
                matches!(
                    driver.delete_share(&share).await,
                    Err(DriverError::InvalidInput(_))
                ),
                "{bad}"
            );
            assert!(
                matches!(
                    driver.ensure_share(&share).await,
                    Err(DriverError::InvalidInput(_))
                ),
                "{bad}"
            );
            assert!(
                matches!(
                    driver.extend_share(&share, 2).await,
                    Err(DriverError::InvalidInput(_))
                ),
                "{bad}"
            );
            assert!(
                matches!(
                    driver.get_share_usage_bytes(&share).await,
                    Err(DriverError::InvalidInput(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(fs::read_dir(shares_dir(dir.path())).unwrap().count(), 0);
        let mut unknown_pool = share(ID);
        unknown_pool.pool = "../pool1".into();
        assert!(matches!(
            driver.create_share(&unknown_pool).await,
            Err(DriverError::PoolUnavailable { .. })
        ));
        let mut bad_proto = share(ID);
        bad_proto.share_proto = "CEPHFS".into();
        assert!(matches!(
            driver.create_share(&bad_proto).await,
            Err(DriverError::InvalidInput(_))
        ));
        let mut zero = share(ID);
        zero.size_gb = 0;
        assert!(matches!(
            driver.create_share(&zero).await,
            Err(DriverError::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn symlinked_shares_or_pool_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::remove_dir(shares_dir(dir.path())).unwrap();
        std::os::unix::fs::symlink(&elsewhere, shares_dir(dir.path())).unwrap();
        assert!(matches!(
            driver.create_share(&share(ID)).await,
            Err(DriverError::PoolUnavailable { .. })
        ));
        assert!(matches!(
            driver.delete_share(&share(ID)).await,
            Err(DriverError::PoolUnavailable { .. })
        ));
        assert!(matches!(
            driver.do_setup().await,
            Err(DriverError::PoolUnavailable { .. })
        ));
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

        let linked_pool = tempfile::tempdir().unwrap();
        let real = linked_pool.path().join("real");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, linked_pool.path().join("pool1")).unwrap();
        let driver = self::driver(linked_pool.path());
        assert!(matches!(
            driver.do_setup().await,
            Err(DriverError::PoolUnavailable { .. })
        ));
        assert!(!real.join("shares").exists());
    }

    #[tokio::test]
    async fn symlinked_instance_directory_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let victim = dir.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("precious"), b"x").unwrap();
        std::os::unix::fs::symlink(&victim, shares_dir(dir.path()).join(ID)).unwrap();
        assert!(matches!(
            driver.delete_share(&share(ID)).await,
            Err(DriverError::Other(_))
        ));
        assert!(matches!(
            driver.create_share(&share(ID)).await,
            Err(DriverError::Other(_))
        ));
        assert!(matches!(
            driver.get_share_usage_bytes(&share(ID)).await,
            Err(DriverError::Other(_))
        ));
        assert!(victim.join("precious").exists());
    }

    #[tokio::test]
    async fn extend_and_shrink_update_the_accounting() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let s = share(ID);
        driver.create_share(&s).await.unwrap();
        driver.extend_share(&s, 5).await.unwrap();
        assert_eq!(meta_size(dir.path(), ID), 5);
        // A retried extend (the size already changed) succeeds; going down does not.
        driver.extend_share(&s, 5).await.unwrap();
        assert!(matches!(
            driver.extend_share(&s, 4).await,
            Err(DriverError::InvalidInput(_))
        ));
        driver.shrink_share(&s, 2).await.unwrap();
        assert_eq!(meta_size(dir.path(), ID), 2);
        assert!(matches!(
            driver.shrink_share(&s, 3).await,
            Err(DriverError::InvalidInput(_))
        ));
        let missing = share("00000000-0000-4000-8000-000000000000");
        assert!(matches!(
            driver.extend_share(&missing, 2).await,
            Err(DriverError::NotFound { .. })
        ));
        assert!(matches!(
            driver.shrink_share(&missing, 1).await,
            Err(DriverError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn shrink_below_usage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let mut s = share(ID);
        s.size_gb = 3;
        driver.create_share(&s).await.unwrap();
        let data = shares_dir(dir.path()).join(ID).join("big");
        // Sparse: 1 GiB + 1 byte of apparent size without using the disk.
        fs::File::create(&data)
            .unwrap()
            .set_len(GIB_BYTES + 1)
            .unwrap();
        assert_eq!(
            driver.get_share_usage_bytes(&s).await.unwrap(),
            GIB_BYTES + 1
        );
        match driver.shrink_share(&s, 1).await {
            Err(DriverError::ShrinkBelowUsage { used_bytes }) => {
                assert_eq!(used_bytes, GIB_BYTES + 1)
            }
            other => panic!("expected ShrinkBelowUsage, got {other:?}"),
        }
        assert_eq!(meta_size(dir.path(), ID), 3);
        driver.shrink_share(&s, 2).await.unwrap();
        assert_eq!(meta_size(dir.path(), ID), 2);
    }

    #[tokio::test]
    async fn usage_walks_the_tree_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let s = share(ID);
        driver.create_share(&s).await.unwrap();
        assert_eq!(driver.get_share_usage_bytes(&s).await.unwrap(), 0);
        let root = shares_dir(dir.path()).join(ID);
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), vec![1u8; 4096]).unwrap();
        fs::write(root.join("g"), vec![1u8; 10]).unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, vec![1u8; 100_000]).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        assert_eq!(driver.get_share_usage_bytes(&s).await.unwrap(), 4106);
    }

    #[tokio::test]
    async fn delete_removes_everything_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let s = share(ID);
        driver.create_share(&s).await.unwrap();
        driver
            .update_access(&s, &[rule("r1", "ip", "10.0.0.0/24")], &[], &[])
            .await
            .unwrap();
        fs::create_dir(shares_dir(dir.path()).join(ID).join("sub")).unwrap();
        fs::write(shares_dir(dir.path()).join(ID).join("sub/f"), b"data").unwrap();
        driver.delete_share(&s).await.unwrap();
        assert_eq!(fs::read_dir(shares_dir(dir.path())).unwrap().count(), 0);
        driver.delete_share(&s).await.unwrap();
        assert!(matches!(
            driver.ensure_share(&s).await,
            Err(DriverError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn setup_removes_leftovers_of_interrupted_work() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let shares = shares_dir(dir.path());
        driver.create_share(&share(ID)).await.unwrap();
        let half_created = shares.join(format!(".tmp-{}", "00000000-0000-4000-8000-000000000000"));
        fs::create_dir_all(half_created.join("x")).unwrap();
        fs::create_dir(shares.join(format!(".tmp-{ID}.deleting"))).unwrap();
        fs::write(shares.join(format!(".tmp-{ID}.meta.json.1.2")), b"{").unwrap();
        std::os::unix::fs::symlink(dir.path(), shares.join(".tmp-link")).unwrap();
        driver.do_setup().await.unwrap();
        let mut names: Vec<_> = fs::read_dir(&shares)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [ID.to_owned(), format!("{ID}.meta.json")]);
        assert!(dir.path().join("pool1").is_dir());
    }

    #[tokio::test]
    async fn create_finishes_over_a_half_created_instance() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        fs::create_dir(shares_dir(dir.path()).join(format!(".tmp-{ID}"))).unwrap();
        driver.create_share(&share(ID)).await.unwrap();
        assert!(shares_dir(dir.path()).join(ID).is_dir());
        assert!(!shares_dir(dir.path()).join(format!(".tmp-{ID}")).exists());
    }

    #[tokio::test]
    async fn ensure_returns_export_locations_and_repairs_a_lost_meta_file() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let mut s = share(ID);
        s.size_gb = 4;
        let created = driver.create_share(&s).await.unwrap();
        // A new driver instance, as after a restart.
        let restarted = ready(dir.path()).await;
        assert_eq!(restarted.ensure_share(&s).await.unwrap(), created);
        fs::remove_file(shares_dir(dir.path()).join(format!("{ID}.meta.json"))).unwrap();
        assert_eq!(restarted.ensure_share(&s).await.unwrap(), created);
        assert_eq!(meta_size(dir.path(), ID), 4);
        let missing = share("00000000-0000-4000-8000-000000000000");
        assert!(matches!(
            restarted.ensure_share(&missing).await,
            Err(DriverError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn access_rules_are_validated_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let s = share(ID);
        driver.create_share(&s).await.unwrap();
        let mut ro = rule("r-ro", "ip", "2001:db8::/64");
        ro.access_level = "ro".into();
        let all = vec![
            rule("r-ip", "ip", "10.0.0.0/24"),
            rule("r-host", "ip", "10.0.0.7"),
            ro.clone(),
            rule("r-user", "user", "alice"),
            rule("r-hostbits", "ip", "10.0.0.1/24"),
            rule("r-badip", "ip", "not-an-ip"),
            rule("r-baduser", "user", "a/b:c"),
            rule("r-cert", "cert", "client.example.com"),
            rule("r-cephx", "cephx", "alice"),
            rule("r-other", "krb", "x"),
        ];
        let results = driver.update_access(&s, &all, &all, &[]).await.unwrap();
        assert_eq!(results.len(), all.len());
        for id in ["r-ip", "r-host", "r-ro"] {
            assert_eq!(results[id], AccessRuleResult::Applied, "{id}");
        }
        assert_eq!(
            results["r-user"],
            AccessRuleResult::Error(
                "Unsupported 'user' access type provided for 'nfs' share protocol.".to_owned()
            ),
            "an NFS share serves only ip rules"
        );
        for id in [
            "r-hostbits",
            "r-badip",
            "r-baduser",
            "r-cert",
            "r-cephx",
            "r-other",
        ] {
            assert!(
                matches!(results[id], AccessRuleResult::Error(_)),
                "{id}: {:?}",
                results[id]
            );
        }
        let recorded = driver.applied_access_rules(&s).await.unwrap();
        let ids: Vec<_> = recorded.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r-ip", "r-host", "r-ro"]);
        assert_eq!(recorded[2], ro);
        // The file on disk is plain JSON the data plane can read.
        let file: serde_json::Value = serde_json::from_slice(
            &fs::read(shares_dir(dir.path()).join(format!("{ID}.access.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(file["rules"][0]["access_to"], "10.0.0.0/24");

        // Deny one rule, and one that was never applied: no error, the file follows.
        let remaining = vec![rule("r-ip", "ip", "10.0.0.0/24")];
        let results = driver
            .update_access(
                &s,
                &remaining,
                &[],
                &[
                    rule("r-user", "user", "alice"),
                    rule("r-never", "ip", "10.9.9.9"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            results,
            BTreeMap::from([("r-ip".to_owned(), AccessRuleResult::Applied)])
        );
        assert_eq!(driver.applied_access_rules(&s).await.unwrap(), remaining);

        let missing = share("00000000-0000-4000-8000-000000000000");
        assert!(matches!(
            driver.update_access(&missing, &remaining, &[], &[]).await,
            Err(DriverError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn cifs_shares_take_user_rules() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ready(dir.path()).await;
        let mut s = share(ID);
        s.share_proto = "CIFS".into();
        driver.create_share(&s).await.unwrap();
        let all = vec![
            rule("r-user", "user", "alice"),
            rule("r-baduser", "user", "a/b:c"),
            rule("r-ip", "ip", "10.0.0.0/24"),
        ];
        let results = driver.update_access(&s, &all, &all, &[]).await.unwrap();
        assert_eq!(results["r-user"], AccessRuleResult::Applied);
        assert_eq!(results["r-ip"], AccessRuleResult::Applied);
        assert!(matches!(results["r-baduser"], AccessRuleResult::Error(_)));
        let recorded = driver.applied_access_rules(&s).await.unwrap();
        let ids: Vec<_> = recorded.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r-user", "r-ip"]);
    }
}
