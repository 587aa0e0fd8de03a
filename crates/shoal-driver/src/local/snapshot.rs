//! Snapshot calls of the `local` driver (create, delete, revert, share from snapshot, access
//! to mountable snapshots, snapshots of secondary replicas) and manage/unmanage of shares and
//! snapshots.
//!
//! A snapshot instance lives in the pool of the share instance (or replica) it belongs to:
//!
//! ```text
//! <pool>/snapshots/<snapshot-instance-id>/tree/      the read-only point-in-time copy
//! <pool>/snapshots/<snapshot-instance-id>/manifest   what `tree` holds, with the share's modes
//! <pool>/snapshots/<snapshot-instance-id>.meta.json  {"snapshot_id", "share_instance_id",
//!                                                     "size_gb"}: the allocation
//! <pool>/snapshots/<snapshot-instance-id>.access.json rules of a mounted snapshot
//! <pool>/snapshots/.tmp-*                             work in progress; removed by `do_setup`
//! <pool>/unmanaged/<id>/                              data of an unmanaged share or snapshot
//! ```
//!
//! The copy, the revert and the container format are the replication engine's
//! ([`crate::replication::snapshot`]); this module decides where they live and what the
//! control plane is told. `provider_location` is the container's canonical absolute path:
//! a secondary's back end on the same host reads the active's snapshot through it, and it
//! never changes while the snapshot exists.
//!
//! Manage: the admin names a directory inside the share's pool (`local://<host><path>` or
//! the plain absolute path); it is renamed into the layout (never copied). Paths outside the
//! pool, through a symbolic link, or in the pool's own directories (`shares/`, `replicas/`,
//! `snapshots/`, `.tmp-*`) are refused, which also covers every other share's data. Unmanage
//! renames the data to `<pool>/unmanaged/<id>/`, which manage accepts again.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    AccessFile, LocalDriver, LocalPool, Role, blocking, io_error, location_path, read_json,
    real_dir_exists, replica, write_json,
};
use crate::fsutil::{self, TMP_PREFIX};
use crate::replication::snapshot::{self as engine, SnapshotError, SnapshotInfo};
use crate::{
    AccessRule, AccessRuleResult, DriverError, ExportLocation, GIB_BYTES, ManageResult,
    ReplicaContext, ReplicaRef, ShareInstanceRef, SnapshotProgress, SnapshotRef, SnapshotResult,
    check_protocol, effective_rules, rules,
};

/// Directories of a pool that belong to the driver; manage refuses them.
const INTERNAL_DIRS: [&str; 3] = ["shares", "replicas", "snapshots"];

/// Where unmanaged data goes.
const UNMANAGED_DIR: &str = "unmanaged";

/// Contents of `snapshots/<id>.meta.json`.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotMeta {
    /// Snapshot the instance belongs to, for operators reading a pool by hand.
    snapshot_id: String,
    /// Share instance (or replica) it is a snapshot of.
    share_instance_id: String,
    /// Allocated size in GiB, counted against the pool's capacity.
    size_gb: u64,
}

/// Paths of one snapshot instance, built only from a validated id.
#[derive(Debug, Clone)]
struct SnapPaths {
    id: String,
    /// The pool's directory.
    pool: PathBuf,
    /// `<pool>/snapshots`.
    dir: PathBuf,
    /// `<pool>/snapshots/<id>`.
    container: PathBuf,
}

impl SnapPaths {
    fn building(&self) -> PathBuf {
        self.dir.join(format!("{TMP_PREFIX}{}", self.id))
    }

    fn deleting(&self) -> PathBuf {
        self.dir.join(format!("{TMP_PREFIX}{}.deleting", self.id))
    }

    fn tree(&self) -> PathBuf {
        self.container.join(engine::TREE)
    }

    fn meta_name(&self) -> String {
        format!("{}.meta.json", self.id)
    }

    fn access_name(&self) -> String {
        format!("{}.access.json", self.id)
    }

    fn write_meta(&self, snapshot: &SnapshotRef, size_gb: u64) -> Result<(), DriverError> {
        let meta = SnapshotMeta {
            snapshot_id: snapshot.snapshot_id.clone(),
            share_instance_id: snapshot.share_instance.id.clone(),
            size_gb,
        };
        write_json(&self.dir, &self.meta_name(), &meta)
    }

    /// The canonical container path: the snapshot's `provider_location`.
    fn provider_location(&self) -> Result<String, DriverError> {
        let path = fs::canonicalize(&self.container)
            .map_err(|e| io_error(e, format!("resolving {}", self.container.display())))?;
        path.to_str().map(str::to_owned).ok_or_else(|| {
            DriverError::Other(anyhow::anyhow!(
                "pool path {} is not valid UTF-8",
                path.display()
            ))
        })
    }
}

/// Every engine failure is the back end's (a damaged or unreadable snapshot, a full disk, a
/// share that kept changing): the share manager puts the snapshot or share in `error`.
fn snapshot_error(err: SnapshotError) -> DriverError {
    DriverError::Other(anyhow::Error::from(err))
}

/// Creates `<pool>/snapshots` if missing and removes leftovers of interrupted builds and
/// deletions (`.tmp-*`). Called by `do_setup`.
pub(super) fn setup_snapshots(pool: &LocalPool) -> io::Result<()> {
    let dir = pool.path.join("snapshots");
    match fs::create_dir(&dir) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
        _ => fsutil::require_real_dir(&dir)?,
    }
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(TMP_PREFIX.as_bytes())
        {
            tracing::info!(pool = %pool.name, entry = ?entry.file_name(), "removing leftover snapshot work {:?} of pool {}", entry.file_name(), pool.name);
            // Read-only trees: the engine restores the write bits it removes.
            engine::remove(&entry.path()).map_err(|e| io::Error::other(e.to_string()))?;
        }
    }
    fsutil::fsync_dir(&dir)
}

/// GiB the snapshots of a pool hold allocated (the sum of their meta files).
pub(super) fn snapshot_allocated_gb(pool: &LocalPool) -> io::Result<u64> {
    let dir = pool.path.join("snapshots");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut total: u64 = 0;
    for entry in entries {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TMP_PREFIX) || !name.ends_with(".meta.json") {
            continue;
        }
        if let Ok(Some(meta)) = read_json::<SnapshotMeta>(&dir.join(name)) {
            total = total.saturating_add(meta.size_gb);
        }
    }
    Ok(total)
}

/// `size = used bytes rounded up to a GiB, at least 1`.
fn size_for(bytes: u64) -> u64 {
    bytes.div_ceil(GIB_BYTES).max(1)
}

/// The size a new snapshot instance is given: the share's size at the time (at least 1 GiB).
fn snapshot_size(snapshot: &SnapshotRef) -> u64 {
    snapshot.size_gb.max(1)
}

impl LocalDriver {
    fn snap_paths(&self, snapshot: &SnapshotRef) -> Result<SnapPaths, DriverError> {
        if !fsutil::is_canonical_uuid(&snapshot.id) {
            return Err(DriverError::InvalidInput(format!(
                "snapshot instance id {:?} is not a canonical lowercase UUID",
                snapshot.id
            )));
        }
        let pool = self.pool(&snapshot.share_instance.pool)?;
        let dir = pool.path.join("snapshots");
        fsutil::require_real_dir(&pool.path).map_err(|e| Self::pool_unavailable(pool, e))?;
        match fs::create_dir(&dir) {
            Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                return Err(Self::pool_unavailable(pool, err));
            }
            _ => fsutil::require_real_dir(&dir).map_err(|e| Self::pool_unavailable(pool, e))?,
        }
        Ok(SnapPaths {
            id: snapshot.id.clone(),
            pool: pool.path.clone(),
            container: dir.join(&snapshot.id),
            dir,
        })
    }

    /// Export locations of a mountable snapshot: its tree, read-only, once for clients and
    /// once admin-only, like a readable secondary's.
    fn snapshot_locations(
        host: &str,
        paths: &SnapPaths,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        let path = location_path(host, &paths.dir, &format!("{}/{}", paths.id, engine::TREE))?;
        let metadata = BTreeMap::from([("access".to_owned(), "ro".to_owned())]);
        Ok(vec![
            ExportLocation {
                path: path.clone(),
                is_admin_only: false,
                preferred: true,
                metadata: metadata.clone(),
            },
            ExportLocation {
                path,
                is_admin_only: true,
                preferred: false,
                metadata,
            },
        ])
    }

    fn available(
        host: &str,
        paths: &SnapPaths,
        size_gb: Option<u64>,
        exported: bool,
    ) -> Result<SnapshotResult, DriverError> {
        Ok(SnapshotResult {
            progress: SnapshotProgress::Available,
            provider_location: Some(paths.provider_location()?),
            size_gb,
            export_locations: if exported {
                Self::snapshot_locations(host, paths)?
            } else {
                Vec::new()
            },
        })
    }

    /// The container of a snapshot instance to read from: in one of this back end's pools
    /// when `snapshot.host` is ours, else through its `provider_location` on this host (another
    /// back end's pool), which must name a container `.../snapshots/<id>`.
    fn snapshot_source(&self, snapshot: &SnapshotRef) -> Result<PathBuf, DriverError> {
        let ours = format!(
            "{}@{}#{}",
            self.info.host, self.info.backend_name, snapshot.share_instance.pool
        );
        if snapshot.host == ours {
            return Ok(self.snap_paths(snapshot)?.container);
        }
        if !fsutil::is_canonical_uuid(&snapshot.id) {
            return Err(DriverError::InvalidInput(format!(
                "snapshot instance id {:?} is not a canonical lowercase UUID",
                snapshot.id
            )));
        }
        let host = snapshot.host.split('@').next().unwrap_or_default();
        if host != self.info.host {
            return Err(DriverError::InvalidInput(format!(
                "snapshot instance {} is on host {host:?}; copying snapshots between hosts is \
                 not supported yet (this back end is on {:?})",
                snapshot.id, self.info.host
            )));
        }
        let location = snapshot.provider_location.as_deref().ok_or_else(|| {
            DriverError::InvalidInput(format!(
                "snapshot instance {} has no provider location",
                snapshot.id
            ))
        })?;
        let path = PathBuf::from(location);
        let plain = path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        let is_container = path.file_name().is_some_and(|n| n == snapshot.id.as_str())
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "snapshots");
        if !path.is_absolute() || !plain || !is_container {
            return Err(DriverError::InvalidInput(format!(
                "provider location {location:?} of snapshot instance {} is not a snapshot of \
                 the local back end",
                snapshot.id
            )));
        }
        fsutil::require_real_dir(&path)
            .map_err(|e| io_error(e, format!("opening snapshot {}", path.display())))?;
        Ok(path)
    }

    /// Resolves a path an admin gave to manage (`local://<host><path>` or an absolute path)
    /// to a directory inside `pool` that is not one of the driver's own. Blocking.
    fn adoptable_path(&self, pool: &LocalPool, given: &str) -> Result<PathBuf, DriverError> {
        let invalid =
            |why: String| DriverError::InvalidInput(format!("cannot manage {given:?}: {why}"));
        let raw = match given.strip_prefix("local://") {
            Some(rest) => {
                let slash = rest
                    .find('/')
                    .ok_or_else(|| invalid("no absolute path after the host".to_owned()))?;
                let (host, path) = rest.split_at(slash);
                if host != self.info.host {
                    return Err(invalid(format!(
                        "it is on host {host:?}, this back end is on {:?}",
                        self.info.host
                    )));
                }
                path
            }
            None => given,
        };
        let path = Path::new(raw);
        let plain = path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !path.is_absolute() || !plain {
            return Err(invalid(
                "expected an absolute path without `.` or `..` components".to_owned(),
            ));
        }
        let inside = |p: &LocalPool| -> Option<(PathBuf, PathBuf)> {
            let canonical = fs::canonicalize(&p.path).ok()?;
            for base in [&canonical, &p.path] {
                if let Ok(rel) = path.strip_prefix(base) {
                    return Some((canonical.clone(), rel.to_path_buf()));
                }
            }
            None
        };
        let Some((base, rel)) = inside(pool) else {
            if let Some(other) = self.pools.iter().find(|p| inside(p).is_some()) {
                return Err(invalid(format!(
                    "it is in pool {}, not in pool {} of the share",
                    other.name, pool.name
                )));
            }
            return Err(invalid(format!("it is not inside pool {}", pool.name)));
        };
        let mut parts = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        let Some(first) = parts.next() else {
            return Err(invalid("it is the pool directory itself".to_owned()));
        };
        let rest = parts.count();
        if INTERNAL_DIRS.contains(&first.as_str())
            || first.starts_with(TMP_PREFIX)
            || (first == UNMANAGED_DIR && rest == 0)
        {
            return Err(invalid(format!(
                "it is inside the pool's own {first:?} directory"
            )));
        }
        // No component below the pool may be a symbolic link: a link could lead out of the
        // pool or into another share.
        let mut current = base.clone();
        for component in rel.components() {
            current.push(component);
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(invalid(format!("{} is a symbolic link", current.display())));
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return Err(invalid("no such directory".to_owned()));
                }
                Err(err) => return Err(io_error(err, format!("inspecting {}", current.display()))),
            }
        }
        if !fs::symlink_metadata(&current).is_ok_and(|m| m.is_dir()) {
            return Err(invalid("it is not a directory".to_owned()));
        }
        Ok(current)
    }

    pub(super) async fn create_snapshot_impl(
        &self,
        snapshot: &SnapshotRef,
    ) -> Result<SnapshotResult, DriverError> {
        let paths = self.snap_paths(snapshot)?;
        let instance = self.instance(&snapshot.share_instance)?;
        let (host, snapshot) = (self.info.host.clone(), snapshot.clone());
        blocking(move || {
            if engine::info(&paths.container).map_err(snapshot_error)?.is_none() {
                let source = match instance.require_any()? {
                    Role::Active => instance.dir.clone(),
                    // A secondary's snapshot is of its published version.
                    Role::Secondary => replica::published_tree(&instance)?.ok_or_else(|| {
                        DriverError::Other(anyhow::anyhow!(
                            "replica {} has no synced version to snapshot yet",
                            instance.id
                        ))
                    })?,
                };
                // The allocation goes first, like a share's: a visible snapshot is accounted.
                paths.write_meta(&snapshot, snapshot_size(&snapshot))?;
                let info = engine::take(&source, &paths.building(), &paths.container)
                    .inspect_err(|_| {
                        let _ = engine::remove(&paths.building());
                    })
                    .map_err(snapshot_error)?;
                tracing::info!(snapshot_instance.id = %paths.id, entries = info.entries, bytes = info.bytes, "created snapshot instance {} of share instance {}", paths.id, instance.id);
            }
            Self::available(&host, &paths, None, true)
        })
        .await
    }

    pub(super) async fn delete_snapshot_impl(
        &self,
        snapshot: &SnapshotRef,
    ) -> Result<(), DriverError> {
        let paths = self.snap_paths(snapshot)?;
        blocking(move || {
            let context = || format!("deleting snapshot {}", paths.container.display());
            let deleting = paths.deleting();
            engine::remove(&deleting).map_err(snapshot_error)?;
            if real_dir_exists(&paths.container)? {
                fs::rename(&paths.container, &deleting).map_err(|e| io_error(e, context()))?;
            }
            engine::remove(&deleting).map_err(snapshot_error)?;
            engine::remove(&paths.building()).map_err(snapshot_error)?;
            for name in [paths.meta_name(), paths.access_name()] {
                fsutil::remove_any(&paths.dir.join(name)).map_err(|e| io_error(e, context()))?;
            }
            fsutil::fsync_dir(&paths.dir).map_err(|e| io_error(e, context()))?;
            tracing::info!(snapshot_instance.id = %paths.id, "deleted snapshot instance {}", paths.id);
            Ok(())
        })
        .await
    }

    pub(super) async fn revert_to_snapshot_impl(
        &self,
        snapshot: &SnapshotRef,
    ) -> Result<(), DriverError> {
        let paths = self.snap_paths(snapshot)?;
        let instance = self.instance(&snapshot.share_instance)?;
        blocking(move || {
            if instance.require_any()? == Role::Secondary {
                return Err(DriverError::InvalidInput(format!(
                    "share instance {} is a secondary replica; revert its active replica",
                    instance.id
                )));
            }
            require_snapshot(&paths)?;
            let report = engine::revert(&paths.container, &instance.dir).map_err(snapshot_error)?;
            tracing::info!(snapshot_instance.id = %paths.id, written = report.written, removed = report.removed, "reverted share instance {} to snapshot instance {}", instance.id, paths.id);
            Ok(())
        })
        .await
    }

    pub(super) async fn create_share_from_snapshot_impl(
        &self,
        share: &ShareInstanceRef,
        snapshot: &SnapshotRef,
    ) -> Result<Vec<ExportLocation>, DriverError> {
        check_protocol(share)?;
        if share.size_gb == 0 {
            return Err(DriverError::InvalidInput(
                "a share size must be at least 1 GiB".to_owned(),
            ));
        }
        let instance = self.instance(share)?;
        let source = self.snapshot_source(snapshot)?;
        let (host, share) = (self.info.host.clone(), share.clone());
        let snapshot_id = snapshot.id.clone();
        blocking(move || {
            if instance.replica_exists()? {
                return Err(DriverError::InvalidInput(format!(
                    "share instance {} is a secondary replica on this back end",
                    instance.id
                )));
            }
            if instance.exists()? {
                instance.size_gb(&share, Role::Active)?;
                return LocalDriver::export_locations(&host, &instance);
            }
            let info = engine::info(&source).map_err(snapshot_error)?.ok_or_else(|| {
                DriverError::Other(anyhow::anyhow!(
                    "snapshot instance {snapshot_id} is not complete on the back end"
                ))
            })?;
            if info.bytes > share.size_gb.saturating_mul(GIB_BYTES) {
                return Err(DriverError::InvalidInput(format!(
                    "snapshot instance {snapshot_id} holds {} bytes, more than the {} GiB of \
                     the new share",
                    info.bytes, share.size_gb
                )));
            }
            let creating = instance.creating();
            let context = || format!("creating {}", instance.dir.display());
            engine::remove(&creating).map_err(snapshot_error)?;
            engine::copy_out(&source, &creating).map_err(snapshot_error)?;
            instance.write_meta(&share.share_id, share.size_gb, Role::Active)?;
            fs::rename(&creating, &instance.dir).map_err(|e| io_error(e, context()))?;
            fsutil::fsync_dir(&instance.shares).map_err(|e| io_error(e, context()))?;
            tracing::info!(share_instance.id = %instance.id, "created share instance {} from snapshot instance {snapshot_id}", instance.id);
            LocalDriver::export_locations(&host, &instance)
        })
        .await
    }

    pub(super) async fn snapshot_update_access_impl(
        &self,
        snapshot: &SnapshotRef,
        all_rules: &[AccessRule],
        add: &[AccessRule],
        delete: &[AccessRule],
    ) -> Result<BTreeMap<String, AccessRuleResult>, DriverError> {
        let paths = self.snap_paths(snapshot)?;
        let rules = effective_rules(all_rules, add, delete);
        blocking(move || {
            require_snapshot(&paths)?;
            let mut results = BTreeMap::new();
            let mut applied = Vec::new();
            for mut rule in rules {
                // A snapshot is read-only whatever level the rule asks for.
                rule.access_level = "ro".to_owned();
                let verdict = match rule.access_type.as_str() {
                    "ip" => rules::validate_rule(&rule),
                    other => Err(format!(
                        "access type {other} is not supported for snapshots of the local back end"
                    )),
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
                &paths.dir,
                &paths.access_name(),
                &AccessFile { rules: applied },
            )?;
            Ok(results)
        })
        .await
    }

    pub(super) async fn manage_existing_snapshot_impl(
        &self,
        snapshot: &SnapshotRef,
    ) -> Result<SnapshotResult, DriverError> {
        let paths = self.snap_paths(snapshot)?;
        let instance = self.instance(&snapshot.share_instance)?;
        let pool = self.pool(&snapshot.share_instance.pool)?.clone();
        let given = snapshot.provider_location.clone();
        let (host, snapshot, driver) = (self.info.host.clone(), snapshot.clone(), self.clone());
        blocking(move || {
            instance.require_any()?;
            let done = engine::info(&paths.container).map_err(snapshot_error)?.is_some();
            if !done && !real_dir_exists(&paths.tree())? {
                let given = given.ok_or_else(|| {
                    DriverError::InvalidInput(
                        "the provider location of the snapshot to manage is required".to_owned(),
                    )
                })?;
                let from = driver.adoptable_path(&pool, &given)?;
                let context = || format!("moving {} into {}", from.display(), paths.container.display());
                match fs::create_dir(&paths.container) {
                    Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(io_error(err, context()));
                    }
                    _ => {}
                }
                fs::set_permissions(&paths.container, fs::Permissions::from_mode(0o700))
                    .map_err(|e| io_error(e, context()))?;
                fs::rename(&from, paths.tree()).map_err(|e| io_error(e, context()))?;
                if let Some(parent) = from.parent() {
                    fsutil::fsync_dir(parent).map_err(|e| io_error(e, context()))?;
                }
                fsutil::fsync_dir(&paths.container).map_err(|e| io_error(e, context()))?;
            }
            let info: SnapshotInfo = engine::seal(&paths.container).map_err(snapshot_error)?;
            let size_gb = size_for(info.bytes);
            paths.write_meta(&snapshot, size_gb)?;
            tracing::info!(snapshot_instance.id = %paths.id, "managed snapshot instance {} ({size_gb} GiB)", paths.id);
            Self::available(&host, &paths, Some(size_gb), true)
        })
        .await
    }

    pub(super) async fn unmanage_snapshot_impl(
        &self,
        snapshot: &SnapshotRef,
    ) -> Result<(), DriverError> {
        let paths = self.snap_paths(snapshot)?;
        blocking(move || {
            let context = || format!("unmanaging snapshot {}", paths.container.display());
            if real_dir_exists(&paths.container)? {
                engine::unseal(&paths.container).map_err(snapshot_error)?;
                if real_dir_exists(&paths.tree())? {
                    let target = unmanaged_target(&paths.pool, &paths.id)?;
                    fs::rename(paths.tree(), &target).map_err(|e| io_error(e, context()))?;
                    tracing::info!(snapshot_instance.id = %paths.id, "unmanaged snapshot instance {}; its data is at {}", paths.id, target.display());
                }
                engine::remove(&paths.container).map_err(snapshot_error)?;
            }
            for name in [paths.meta_name(), paths.access_name()] {
                fsutil::remove_any(&paths.dir.join(name)).map_err(|e| io_error(e, context()))?;
            }
            fsutil::fsync_dir(&paths.dir).map_err(|e| io_error(e, context()))
        })
        .await
    }

    /// Creates (or finishes) a secondary's snapshot instance as a copy of the active's.
    pub(super) async fn replica_snapshot_impl(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        snapshot: &SnapshotRef,
        active_snapshot: &SnapshotRef,
    ) -> Result<SnapshotResult, DriverError> {
        if snapshot.share_instance.id != replica.instance.id {
            return Err(DriverError::InvalidInput(format!(
                "snapshot instance {} is not of replica {}",
                snapshot.id, replica.instance.id
            )));
        }
        if active_snapshot.id == snapshot.id {
            return Err(DriverError::InvalidInput(format!(
                "snapshot instance {} is the active replica's own",
                snapshot.id
            )));
        }
        let paths = self.snap_paths(snapshot)?;
        let source = self.snapshot_source(active_snapshot)?;
        // A `dr` secondary is not mounted, nor are its snapshots.
        let exported = ctx.replication_type != "dr";
        let (host, snapshot) = (self.info.host.clone(), snapshot.clone());
        blocking(move || {
            if engine::info(&paths.container).map_err(snapshot_error)?.is_none() {
                paths.write_meta(&snapshot, snapshot_size(&snapshot))?;
                engine::copy_container(&source, &paths.building(), &paths.container)
                    .inspect_err(|_| {
                        let _ = engine::remove(&paths.building());
                    })
                    .map_err(snapshot_error)?;
                tracing::info!(snapshot_instance.id = %paths.id, "created replica snapshot instance {} from {}", paths.id, source.display());
            }
            Self::available(&host, &paths, None, exported)
        })
        .await
    }

    pub(super) async fn manage_existing_impl(
        &self,
        share: &ShareInstanceRef,
        export_path: &str,
    ) -> Result<ManageResult, DriverError> {
        check_protocol(share)?;
        let instance = self.instance(share)?;
        let pool = self.pool(&share.pool)?.clone();
        let (host, share, driver) = (self.info.host.clone(), share.clone(), self.clone());
        let given = export_path.to_owned();
        blocking(move || {
            if instance.replica_exists()? {
                return Err(DriverError::InvalidInput(format!(
                    "share instance {} is a secondary replica on this back end",
                    instance.id
                )));
            }
            if !instance.exists()? {
                let from = driver.adoptable_path(&pool, &given)?;
                let bytes = fsutil::tree_usage_bytes(&from)
                    .map_err(|e| io_error(e, format!("measuring {}", from.display())))?;
                // The size goes first, as for a created share: a visible instance is sized.
                instance.write_meta(&share.share_id, size_for(bytes), Role::Active)?;
                let context = || format!("moving {} to {}", from.display(), instance.dir.display());
                fs::rename(&from, &instance.dir).map_err(|e| io_error(e, context()))?;
                if let Some(parent) = from.parent() {
                    fsutil::fsync_dir(parent).map_err(|e| io_error(e, context()))?;
                }
                fsutil::fsync_dir(&instance.shares).map_err(|e| io_error(e, context()))?;
                tracing::info!(share_instance.id = %instance.id, "managed {} as share instance {}", from.display(), instance.id);
            }
            // A retried manage finds the data already moved: the same answer.
            let bytes = fsutil::tree_usage_bytes(&instance.dir)
                .map_err(|e| io_error(e, format!("measuring {}", instance.dir.display())))?;
            let size_gb = match instance.read_meta()? {
                Some(meta) => meta.size_gb.max(size_for(bytes)),
                None => size_for(bytes),
            };
            instance.write_meta(&share.share_id, size_gb, Role::Active)?;
            Ok(ManageResult {
                size_gb,
                export_locations: LocalDriver::export_locations(&host, &instance)?,
            })
        })
        .await
    }

    pub(super) async fn unmanage_impl(&self, share: &ShareInstanceRef) -> Result<(), DriverError> {
        let instance = self.instance(share)?;
        let pool = self.pool(&share.pool)?.path.clone();
        blocking(move || {
            if instance.replica_exists()? {
                return Err(DriverError::InvalidInput(format!(
                    "share instance {} is a secondary replica; replicated shares cannot be \
                     unmanaged",
                    instance.id
                )));
            }
            let context = || format!("unmanaging {}", instance.dir.display());
            if instance.exists()? {
                let target = unmanaged_target(&pool, &instance.id)?;
                fs::rename(&instance.dir, &target).map_err(|e| io_error(e, context()))?;
                tracing::info!(share_instance.id = %instance.id, "unmanaged share instance {}; its data is at {}", instance.id, target.display());
            }
            for path in [
                instance.shares.join(instance.meta_name()),
                instance.shares.join(instance.access_name()),
                instance.shares.join(instance.quiesced_name()),
            ] {
                fsutil::remove_any(&path).map_err(|e| io_error(e, context()))?;
            }
            fsutil::fsync_dir(&instance.shares).map_err(|e| io_error(e, context()))
        })
        .await
    }
}

/// Fails unless the snapshot instance is complete on the back end.
fn require_snapshot(paths: &SnapPaths) -> Result<(), DriverError> {
    match engine::info(&paths.container).map_err(snapshot_error)? {
        Some(_) => Ok(()),
        None => Err(DriverError::Other(anyhow::anyhow!(
            "snapshot instance {} does not exist on the back end",
            paths.id
        ))),
    }
}

/// A free name `<pool>/unmanaged/<id>[.<n>]` (created parent) for data leaving the back end.
fn unmanaged_target(pool: &Path, id: &str) -> Result<PathBuf, DriverError> {
    let dir = pool.join(UNMANAGED_DIR);
    match fs::create_dir(&dir) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
            return Err(io_error(err, format!("creating {}", dir.display())));
        }
        _ => fsutil::require_real_dir(&dir)
            .map_err(|e| io_error(e, format!("opening {}", dir.display())))?,
    }
    let mut n = 0u32;
    loop {
        let name = if n == 0 {
            id.to_owned()
        } else {
            format!("{id}.{n}")
        };
        let path = dir.join(name);
        if fs::symlink_metadata(&path).is_err() {
            return Ok(path);
        }
        n += 1;
    }
}
