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
//! `snapshots/`, `.tmp-*`) are refused, which also covers every other share's data, with one
//! exception: as in Manila, unmanage leaves the data where it is (at its export location or
//! `provider_location`) and only drops the driver's own files (meta, access, and a snapshot's
//! manifest after restoring its modes), so it is no longer an instance of this back end. Such
//! a released `shares/<name>` (share manage) or `snapshots/<name>` container (snapshot
//! manage), one without a `<name>.meta.json`, is adopted again; a live instance always has
//! its meta file (written before its directory appears, repaired by `ensure_share`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    AccessFile, LocalDriver, LocalPool, Role, blocking, io_error, location_path, read_json,
    real_dir_exists, write_json,
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

/// Where earlier versions moved unmanaged data; the directory itself is not adopted whole.
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

    /// After a failed build: removes the half-built copy and the allocation, so a snapshot
    /// in `error` holds no space (best effort: `do_setup` and `delete_snapshot` remove what
    /// is left).
    fn forget_failed_build(&self) {
        let _ = engine::remove(&self.building());
        let _ = fsutil::remove_any(&self.dir.join(self.meta_name()));
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
    /// to a directory inside `pool` that is not one of the driver's own. `released` names the
    /// internal directory (`shares` or `snapshots`) whose released entries (no meta file: an
    /// unmanaged instance left in place) this manage may adopt; the answer says whether the
    /// path is one of them. Blocking.
    fn adoptable_path(
        &self,
        pool: &LocalPool,
        given: &str,
        released: &str,
    ) -> Result<(PathBuf, bool), DriverError> {
        let invalid =
            |why: String| DriverError::InvalidInput(format!("cannot manage {given:?}: {why}"));
        // The NFS export location of an unmanaged instance, `<address>:/shares/<id>`: its
        // directory stayed in this pool's `shares/` (Manila's manage takes a driver's export
        // path).
        let nfs_dir;
        let given_nfs = given
            .split_once(":/shares/")
            .filter(|(host, id)| {
                !host.is_empty() && !host.contains('/') && fsutil::is_canonical_uuid(id)
            })
            .map(|(_, id)| id);
        let given = match given_nfs {
            Some(id) => {
                nfs_dir = pool.path.join("shares").join(id);
                nfs_dir
                    .to_str()
                    .ok_or_else(|| invalid("the pool path is not valid UTF-8".to_owned()))?
            }
            None => given,
        };
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
        let second = parts.next();
        let rest = parts.count();
        let is_released = match (&second, rest) {
            (Some(name), 0) if first == released && !name.starts_with(TMP_PREFIX) => {
                let meta = base.join(&first).join(format!("{name}.meta.json"));
                match fs::symlink_metadata(&meta) {
                    Ok(_) => {
                        return Err(invalid(format!(
                            "it is {name:?}, a live instance of this back end"
                        )));
                    }
                    Err(err) if err.kind() == io::ErrorKind::NotFound => true,
                    Err(err) => {
                        return Err(io_error(err, format!("inspecting {}", meta.display())));
                    }
                }
            }
            _ => false,
        };
        if !is_released
            && (INTERNAL_DIRS.contains(&first.as_str())
                || first.starts_with(TMP_PREFIX)
                || (first == UNMANAGED_DIR && second.is_none()))
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
        if is_released && released == "snapshots" && !real_dir_exists(&current.join(engine::TREE))?
        {
            return Err(invalid(
                "it is not a snapshot container (no tree)".to_owned(),
            ));
        }
        Ok((current, is_released))
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
                if instance.require_any()? == Role::Secondary {
                    // Its data may be older or newer than the active's at the snapshot's
                    // point in time: a secondary's instance is a copy of the active's.
                    return Err(DriverError::InvalidInput(format!(
                        "share instance {} is a secondary replica: its snapshot instances are \
                         copies of the active replica's (create_replica_snapshot)",
                        instance.id
                    )));
                }
                let source = instance.dir.clone();
                // The allocation goes first, like a share's: a visible snapshot is accounted.
                paths.write_meta(&snapshot, snapshot_size(&snapshot))?;
                let info = engine::take(&source, &paths.building(), &paths.container)
                    .inspect_err(|_| paths.forget_failed_build())
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
            instance.write_meta(&share, share.size_gb, Role::Active)?;
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
                let (from, released) = driver.adoptable_path(&pool, &given, "snapshots")?;
                let context = || format!("moving {} into {}", from.display(), paths.container.display());
                // The allocation goes first, as for a created snapshot: once the container
                // is in place it is a live instance, never adoptable by another manage.
                paths.write_meta(&snapshot, snapshot_size(&snapshot))?;
                if released {
                    // An unmanaged container left in place: adopted whole. A manifest left
                    // by an interrupted unmanage is not trusted; `seal` records the tree anew.
                    engine::unseal(&from).map_err(snapshot_error)?;
                    fsutil::remove_any(&from.join(engine::MANIFEST))
                        .map_err(|e| io_error(e, context()))?;
                    fs::rename(&from, &paths.container).map_err(|e| io_error(e, context()))?;
                } else {
                    match fs::create_dir(&paths.container) {
                        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                            return Err(io_error(err, context()));
                        }
                        _ => {}
                    }
                    fs::set_permissions(&paths.container, fs::Permissions::from_mode(0o700))
                        .map_err(|e| io_error(e, context()))?;
                    fs::rename(&from, paths.tree()).map_err(|e| io_error(e, context()))?;
                }
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
            // As in Manila the data stays at its provider location: the tree gets its recorded
            // modes back and the manifest goes (it would be stale once the tree is written
            // to); then the meta file, which makes it a live instance, goes last.
            if real_dir_exists(&paths.container)? {
                engine::unseal(&paths.container).map_err(snapshot_error)?;
                fsutil::remove_any(&paths.container.join(engine::MANIFEST))
                    .map_err(|e| io_error(e, context()))?;
                fsutil::fsync_dir(&paths.container).map_err(|e| io_error(e, context()))?;
                tracing::info!(snapshot_instance.id = %paths.id, "unmanaged snapshot instance {}; its data stays at {}", paths.id, paths.tree().display());
            }
            for name in [paths.access_name(), paths.meta_name()] {
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
                    .inspect_err(|_| paths.forget_failed_build())
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
                let (from, _) = driver.adoptable_path(&pool, &given, "shares")?;
                let bytes = fsutil::tree_usage_bytes(&from)
                    .map_err(|e| io_error(e, format!("measuring {}", from.display())))?;
                // The size goes first, as for a created share: a visible instance is sized.
                instance.write_meta(&share, size_for(bytes), Role::Active)?;
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
            instance.write_meta(&share, size_gb, Role::Active)?;
            Ok(ManageResult {
                size_gb,
                export_locations: LocalDriver::export_locations(&host, &instance)?,
            })
        })
        .await
    }

    pub(super) async fn unmanage_impl(&self, share: &ShareInstanceRef) -> Result<(), DriverError> {
        let instance = self.instance(share)?;
        blocking(move || {
            if instance.replica_exists()? {
                return Err(DriverError::InvalidInput(format!(
                    "share instance {} is a secondary replica; replicated shares cannot be \
                     unmanaged",
                    instance.id
                )));
            }
            let context = || format!("unmanaging {}", instance.dir.display());
            // As in Manila the data stays at its export location; dropping the driver's own
            // files (the meta file last: it makes the directory a live instance) leaves a
            // directory that manage adopts again.
            for path in [
                instance.shares.join(instance.access_name()),
                instance.shares.join(instance.quiesced_name()),
                instance.shares.join(instance.journal_name()),
                instance.shares.join(instance.meta_name()),
            ] {
                fsutil::remove_any(&path).map_err(|e| io_error(e, context()))?;
            }
            fsutil::fsync_dir(&instance.shares).map_err(|e| io_error(e, context()))?;
            if instance.exists()? {
                tracing::info!(share_instance.id = %instance.id, "unmanaged share instance {}; its data stays at {}", instance.id, instance.dir.display());
            }
            Ok(())
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    use super::*;
    use crate::BackendInfo;
    use crate::ShareDriver;
    use crate::local::replica::tests::{
        ACTIVE, Backend, SECONDARY, assert_no_write_bits, assert_same_tree, ctx, instance,
        names_in, set_mtime, setup, write_tree,
    };
    use crate::local::{LocalOptions, LocalPool};

    const SNAP: &str = "cccccccc-0000-4000-8000-000000000003";
    const SNAP2: &str = "dddddddd-0000-4000-8000-000000000004";
    const NEW: &str = "eeeeeeee-0000-4000-8000-000000000005";
    const NEW2: &str = "ffffffff-0000-4000-8000-000000000006";

    fn snap(id: &str, share: &ShareInstanceRef, backend: &str) -> SnapshotRef {
        SnapshotRef {
            id: id.into(),
            snapshot_id: "99999999-0000-4000-8000-000000000009".into(),
            share_instance: share.clone(),
            host: format!("node1@{backend}#{}", share.pool),
            size_gb: share.size_gb,
            provider_location: None,
        }
    }

    fn tree(b: &Backend, id: &str) -> PathBuf {
        b.pool().join("snapshots").join(id).join("tree")
    }

    /// `cp -a`: an independent reference copy (modes, mtimes, symlinks) to compare with.
    fn reference(src: &Path, dir: &Path) -> PathBuf {
        let dst = dir.join("reference");
        let status = Command::new("cp")
            .arg("-a")
            .arg(src)
            .arg(&dst)
            .status()
            .unwrap();
        assert!(status.success());
        dst
    }

    fn ino(path: &Path) -> u64 {
        fs::symlink_metadata(path).unwrap().ino()
    }

    /// An active share with the test tree (and a 50 MiB file when `big`), snapshotted.
    async fn share_with_snapshot(
        big: bool,
    ) -> (Backend, ShareInstanceRef, SnapshotRef, SnapshotResult) {
        let b = Backend::new("local1").await;
        let share = instance(ACTIVE);
        b.driver.create_share(&share).await.unwrap();
        write_tree(&b.shares().join(ACTIVE), big);
        let s = snap(SNAP, &share, "local1");
        let result = b.driver.create_snapshot(&s).await.unwrap();
        (b, share, s, result)
    }

    #[tokio::test]
    async fn snapshot_is_a_read_only_copy_that_later_writes_do_not_touch() {
        let (b, _share, s, result) = share_with_snapshot(true).await;
        let data = b.shares().join(ACTIVE);
        let refdir = tempfile::tempdir().unwrap();
        let expected = reference(&data, refdir.path());
        assert_eq!(result.progress, SnapshotProgress::Available);
        let container = fs::canonicalize(b.pool().join("snapshots").join(SNAP)).unwrap();
        assert_eq!(result.provider_location.as_deref(), container.to_str());
        let path = format!("local://node1{}/tree", container.display());
        let summary: Vec<_> = result
            .export_locations
            .iter()
            .map(|l| {
                (
                    l.path.as_str(),
                    l.is_admin_only,
                    l.metadata["access"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [(path.as_str(), false, "ro"), (path.as_str(), true, "ro")]
        );
        assert_same_tree(&data, &tree(&b, SNAP), true);
        assert_no_write_bits(&tree(&b, SNAP));
        // Never a hard link to a file the share can change in place.
        for name in ["big.bin", "empty", "docs/file 0 ✓.txt"] {
            assert_ne!(
                ino(&data.join(name)),
                ino(&tree(&b, SNAP).join(name)),
                "{name}"
            );
        }

        // Later writes, deletions and additions in the share leave the snapshot as it was.
        fs::write(data.join("docs/file 0 ✓.txt"), b"changed").unwrap();
        let big = fs::OpenOptions::new()
            .write(true)
            .open(data.join("big.bin"))
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&big, b"XXXX", 1 << 20).unwrap();
        fs::remove_file(data.join("empty")).unwrap();
        fs::write(data.join("new file"), b"new").unwrap();
        fs::set_permissions(data.join("with space"), fs::Permissions::from_mode(0o700)).unwrap();
        assert_same_tree(&expected, &tree(&b, SNAP), true);

        // A retried create answers the same and keeps the snapshot.
        assert_eq!(b.driver.create_snapshot(&s).await.unwrap(), result);
        assert_same_tree(&expected, &tree(&b, SNAP), true);
    }

    #[tokio::test]
    async fn revert_restores_exactly_and_rewrites_only_what_differs() {
        let (b, share, s, _) = share_with_snapshot(true).await;
        let data = b.shares().join(ACTIVE);
        let refdir = tempfile::tempdir().unwrap();
        let expected = reference(&data, refdir.path());
        let untouched = ino(&data.join("big.bin"));
        let untouched_small = ino(&data.join("docs/file 5 ✓.txt"));

        fs::write(data.join("docs/file 0 ✓.txt"), b"changed").unwrap();
        // Same size and mtime, other bytes: caught by the ctime rule.
        let same_size = data.join("file 4 ✓.txt");
        let meta = fs::metadata(&same_size).unwrap();
        fs::write(&same_size, "y".repeat(meta.len() as usize)).unwrap();
        set_mtime(&same_size, meta.modified().unwrap());
        fs::remove_file(data.join("empty")).unwrap();
        fs::remove_dir_all(data.join("docs/nested")).unwrap();
        fs::create_dir_all(data.join("added/deeper")).unwrap();
        fs::write(data.join("added/deeper/f"), b"added").unwrap();
        fs::set_permissions(data.join("added"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(data.join("file 9 ✓.txt"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::remove_file(data.join("dangling")).unwrap();
        std::os::unix::fs::symlink("elsewhere", data.join("dangling")).unwrap();
        fs::remove_file(data.join("link to file")).unwrap();
        fs::create_dir(data.join("link to file")).unwrap();
        fs::write(
            data.join(".shoal-tmp-1-1"),
            b"a leftover of an interrupted revert",
        )
        .unwrap();
        nix::unistd::mkfifo(&data.join("docs/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();

        b.driver.revert_to_snapshot(&s).await.unwrap();
        assert_same_tree(&expected, &data, false);
        assert_eq!(
            ino(&data.join("big.bin")),
            untouched,
            "unchanged data is not rewritten"
        );
        assert_eq!(ino(&data.join("docs/file 5 ✓.txt")), untouched_small);

        // A second run (as after a crash) changes nothing; the snapshot is intact.
        let rewritten = ino(&data.join("docs/file 0 ✓.txt"));
        b.driver.revert_to_snapshot(&s).await.unwrap();
        assert_eq!(ino(&data.join("docs/file 0 ✓.txt")), rewritten);
        assert_same_tree(&expected, &data, false);
        assert_same_tree(&expected, &tree(&b, SNAP), true);

        // The share keeps working as a share: writable again.
        fs::write(data.join("docs/file 0 ✓.txt"), b"writable").unwrap();
        let _ = share;
    }

    #[tokio::test]
    async fn revert_refuses_a_missing_snapshot_and_a_secondary() {
        let (a, b, active, secondary) = setup().await;
        let replicas = [active.clone(), secondary.clone()];
        b.driver
            .create_replica(&secondary, &ctx("readable", Some(&active), &replicas))
            .await
            .unwrap();
        let of_secondary = snap(SNAP2, &secondary.instance, "local2");
        assert!(matches!(
            b.driver.create_snapshot(&of_secondary).await,
            Err(DriverError::InvalidInput(_))
        ));
        let taken = a
            .driver
            .create_snapshot(&snap(SNAP, &active.instance, "local1"))
            .await
            .unwrap();
        let active_snap = SnapshotRef {
            provider_location: taken.provider_location,
            ..snap(SNAP, &active.instance, "local1")
        };
        b.driver
            .create_replica_snapshot(
                &secondary,
                &ctx("readable", Some(&active), &replicas),
                &of_secondary,
                &active_snap,
            )
            .await
            .unwrap();
        assert!(matches!(
            b.driver.revert_to_snapshot(&of_secondary).await,
            Err(DriverError::InvalidInput(_))
        ));
        let missing = snap(SNAP2, &active.instance, "local1");
        assert!(matches!(
            a.driver.revert_to_snapshot(&missing).await,
            Err(DriverError::Other(_))
        ));
    }

    fn two_pool_driver(dir: &Path) -> LocalDriver {
        LocalDriver::new(
            BackendInfo {
                host: "node1".into(),
                backend_name: "local1".into(),
                replication_type: None,
                replication_domain: None,
            },
            ["pool1", "pool2"]
                .into_iter()
                .map(|name| LocalPool {
                    name: name.into(),
                    path: dir.join(name),
                    reserved_percentage: 0,
                })
                .collect(),
            LocalOptions::default(),
        )
    }

    #[tokio::test]
    async fn share_from_snapshot_in_the_same_and_another_pool() {
        let dir = tempfile::tempdir().unwrap();
        let driver = two_pool_driver(dir.path());
        driver.do_setup().await.unwrap();
        let share = instance(ACTIVE);
        driver.create_share(&share).await.unwrap();
        let data = dir.path().join("pool1/shares").join(ACTIVE);
        write_tree(&data, false);
        let refdir = tempfile::tempdir().unwrap();
        let expected = reference(&data, refdir.path());
        let s = snap(SNAP, &share, "local1");
        driver.create_snapshot(&s).await.unwrap();
        fs::write(data.join("docs/file 0 ✓.txt"), b"later").unwrap();

        let same_pool = instance(NEW);
        let locations = driver
            .create_share_from_snapshot(&same_pool, &s)
            .await
            .unwrap();
        assert_eq!(locations, driver.ensure_share(&same_pool).await.unwrap());
        assert_same_tree(&expected, &dir.path().join("pool1/shares").join(NEW), false);
        let mut other_pool = instance(NEW2);
        other_pool.pool = "pool2".into();
        other_pool.size_gb = 3;
        driver
            .create_share_from_snapshot(&other_pool, &s)
            .await
            .unwrap();
        let copy = dir.path().join("pool2/shares").join(NEW2);
        assert_same_tree(&expected, &copy, false);
        fs::write(copy.join("docs/file 1 ✓.txt"), b"a writable share").unwrap();
        assert_same_tree(&expected, &tree_of(dir.path(), SNAP), true);
        // Retried: same answer, data kept; the size is the new share's.
        driver
            .create_share_from_snapshot(&other_pool, &s)
            .await
            .unwrap();
        assert_eq!(
            fs::read(copy.join("docs/file 1 ✓.txt")).unwrap(),
            b"a writable share"
        );
        let meta: serde_json::Value = serde_json::from_slice(
            &fs::read(
                dir.path()
                    .join("pool2/shares")
                    .join(format!("{NEW2}.meta.json")),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(meta["size_gb"], 3);

        // A snapshot that is not there, on another host, or named by a location that is not
        // a snapshot container, is refused and creates nothing.
        let fresh = instance("abababab-0000-4000-8000-000000000007");
        let mut gone = snap(SNAP2, &share, "local1");
        assert!(matches!(
            driver.create_share_from_snapshot(&fresh, &gone).await,
            Err(DriverError::Other(_))
        ));
        gone.host = "node2@local9#pool1".into();
        gone.provider_location = Some("/etc".into());
        assert!(matches!(
            driver.create_share_from_snapshot(&fresh, &gone).await,
            Err(DriverError::InvalidInput(_))
        ));
        gone.host = "node1@local9#pool1".into();
        assert!(matches!(
            driver.create_share_from_snapshot(&fresh, &gone).await,
            Err(DriverError::InvalidInput(_))
        ));
        assert!(!dir.path().join("pool1/shares").join(&fresh.id).exists());
    }

    fn tree_of(dir: &Path, id: &str) -> PathBuf {
        dir.join("pool1/snapshots").join(id).join("tree")
    }

    #[tokio::test]
    async fn secondary_snapshot_is_the_actives_snapshot_and_survives_promotion() {
        let (a, b, active, secondary) = setup().await;
        let data = a.shares().join(ACTIVE);
        write_tree(&data, false);
        let replicas = [active.clone(), secondary.clone()];
        let c = ctx("readable", Some(&active), &replicas);
        let created = b.driver.create_replica(&secondary, &c).await.unwrap();
        let secondary = b.replica(
            SECONDARY,
            Some("in_sync"),
            &created.export_locations.unwrap(),
        );
        let refdir = tempfile::tempdir().unwrap();
        let expected = reference(&data, refdir.path());

        let active_snap = snap(SNAP, &active.instance, "local1");
        let taken = a.driver.create_snapshot(&active_snap).await.unwrap();
        let active_snap = SnapshotRef {
            provider_location: taken.provider_location.clone(),
            ..active_snap
        };
        // The active moves on and the secondary follows before its snapshot instance is made.
        fs::write(data.join("docs/file 0 ✓.txt"), b"after the snapshot").unwrap();
        fs::remove_file(data.join("empty")).unwrap();
        let replicas = [active.clone(), secondary.clone()];
        let c = ctx("readable", Some(&active), &replicas);
        b.driver.update_replica_state(&secondary, &c).await.unwrap();
        assert_eq!(
            fs::read(b.current(SECONDARY).join("docs/file 0 ✓.txt")).unwrap(),
            b"after the snapshot"
        );

        let replica_snap = snap(SNAP2, &secondary.instance, "local2");
        let made = b
            .driver
            .create_replica_snapshot(&secondary, &c, &replica_snap, &active_snap)
            .await
            .unwrap();
        assert_eq!(made.progress, SnapshotProgress::Available);
        assert_eq!(made.export_locations.len(), 2);
        assert_same_tree(&expected, &tree(&b, SNAP2), true);
        assert_same_tree(&tree(&a, SNAP), &tree(&b, SNAP2), false);
        let again = b
            .driver
            .update_replica_snapshot(&secondary, &c, &replica_snap, &active_snap)
            .await
            .unwrap();
        assert_eq!(again, made);
        // A dr secondary's snapshot is not exported.
        let dr = b
            .driver
            .update_replica_snapshot(
                &secondary,
                &ctx("dr", Some(&active), &replicas),
                &replica_snap,
                &active_snap,
            )
            .await
            .unwrap();
        assert!(dr.export_locations.is_empty());

        // Promote the secondary: its snapshot still reverts its share and makes new shares.
        b.driver
            .promote_replica(&secondary, &c, None)
            .await
            .unwrap();
        let promoted = b.shares().join(SECONDARY);
        fs::write(promoted.join("written after promotion"), b"x").unwrap();
        b.driver.revert_to_snapshot(&replica_snap).await.unwrap();
        assert_same_tree(&expected, &promoted, false);
        b.driver
            .create_share_from_snapshot(&instance(NEW), &replica_snap)
            .await
            .unwrap();
        assert_same_tree(&expected, &b.shares().join(NEW), false);
        // And a back end on the same host copies from the other's snapshot by its location.
        let from_other = SnapshotRef {
            provider_location: made.provider_location.clone(),
            ..replica_snap.clone()
        };
        a.driver
            .create_share_from_snapshot(&instance(NEW2), &from_other)
            .await
            .unwrap();
        assert_same_tree(&expected, &a.shares().join(NEW2), false);
    }

    #[tokio::test]
    async fn setup_removes_half_built_snapshots_and_delete_is_idempotent() {
        let (b, share, s, _) = share_with_snapshot(false).await;
        let snapshots = b.pool().join("snapshots");
        // A build interrupted after some read-only directories were made.
        let half = snapshots.join(format!(".tmp-{SNAP2}"));
        fs::create_dir_all(half.join("tree/sub")).unwrap();
        fs::write(half.join("tree/sub/f"), b"x").unwrap();
        fs::set_permissions(half.join("tree/sub"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(half.join("tree"), fs::Permissions::from_mode(0o555)).unwrap();
        b.driver.do_setup().await.unwrap();
        assert_eq!(
            names_in(&snapshots),
            [SNAP.to_owned(), format!("{SNAP}.meta.json")]
        );
        // A retried create over a leftover starts afresh.
        fs::create_dir_all(half.join("tree/stale")).unwrap();
        let s2 = snap(SNAP2, &share, "local1");
        b.driver.create_snapshot(&s2).await.unwrap();
        assert!(!tree(&b, SNAP2).join("stale").exists());
        assert!(!half.exists());

        b.driver.delete_snapshot(&s).await.unwrap();
        b.driver.delete_snapshot(&s).await.unwrap();
        b.driver.delete_snapshot(&s2).await.unwrap();
        assert!(names_in(&snapshots).is_empty());
        assert!(matches!(
            b.driver.revert_to_snapshot(&s).await,
            Err(DriverError::Other(_))
        ));
        let mut bad = s.clone();
        bad.id = "../x".into();
        assert!(matches!(
            b.driver.delete_snapshot(&bad).await,
            Err(DriverError::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn snapshots_are_allocated_in_the_pool() {
        let (b, share, s, _) = share_with_snapshot(false).await;
        let allocated = BTreeMap::from([("pool1".to_owned(), 1)]);
        let stats = b
            .driver
            .get_share_stats(&allocated)
            .await
            .unwrap()
            .remove(0);
        assert!(stats.snapshot_support && stats.create_share_from_snapshot_support);
        assert!(stats.revert_to_snapshot_support && stats.mount_snapshot_support);
        assert_eq!(stats.allocated_capacity_gb, 2.0);
        let mut bigger = snap(SNAP2, &share, "local1");
        bigger.size_gb = 7;
        b.driver.create_snapshot(&bigger).await.unwrap();
        let stats = b
            .driver
            .get_share_stats(&allocated)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(stats.allocated_capacity_gb, 9.0);
        assert!(stats.free_capacity_gb <= stats.total_capacity_gb - 9.0 + 0.01);
        b.driver.delete_snapshot(&bigger).await.unwrap();
        b.driver.delete_snapshot(&s).await.unwrap();
        let stats = b
            .driver
            .get_share_stats(&allocated)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(stats.allocated_capacity_gb, 1.0);
    }

    #[tokio::test]
    async fn snapshot_access_rules_are_read_only_ip_rules() {
        let (b, _share, s, _) = share_with_snapshot(false).await;
        let rule = |id: &str, access_type: &str, to: &str| AccessRule {
            id: id.into(),
            access_type: access_type.into(),
            access_to: to.into(),
            access_level: "rw".into(),
        };
        let all = [
            rule("r1", "ip", "10.0.0.0/24"),
            rule("r2", "user", "alice"),
            rule("r3", "ip", "10.0.0.1/24"),
        ];
        let results = b
            .driver
            .snapshot_update_access(&s, &all, &all, &[])
            .await
            .unwrap();
        assert_eq!(results["r1"], AccessRuleResult::Applied);
        assert!(matches!(results["r2"], AccessRuleResult::Error(_)));
        assert!(matches!(results["r3"], AccessRuleResult::Error(_)));
        let file: AccessFile = read_json(
            &b.pool()
                .join("snapshots")
                .join(format!("{SNAP}.access.json")),
        )
        .unwrap()
        .unwrap();
        assert_eq!(file.rules.len(), 1);
        assert_eq!(file.rules[0].access_level, "ro");
        let results = b
            .driver
            .snapshot_update_access(&s, &[], &[], &all[..1])
            .await
            .unwrap();
        assert!(results.is_empty());
        let missing = snap(SNAP2, &s.share_instance, "local1");
        assert!(
            b.driver
                .snapshot_update_access(&missing, &all, &[], &[])
                .await
                .is_err()
        );
    }

    /// A writer bumps a version in the first page of a file, then in its last page, again
    /// and again (a page write is atomic to readers). At any moment the first page is as new
    /// as the last or one newer; a copy read while the writer runs (first page early, last
    /// page later) can show the last page newer, a state the file never had. Every snapshot
    /// must hold a real state or be refused.
    #[tokio::test]
    async fn a_file_that_keeps_changing_never_gives_a_torn_snapshot() {
        const PAGE: usize = 4096;
        const PAGES: usize = 2048;
        let b = Backend::new("local1").await;
        let share = instance(ACTIVE);
        b.driver.create_share(&share).await.unwrap();
        let path = b.shares().join(ACTIVE).join("hot");
        fs::write(&path, vec![0u8; PAGE * PAGES]).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (stop, path) = (stop.clone(), path.clone());
            std::thread::spawn(move || {
                let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
                let mut k = 1u8;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let page = [k; PAGE];
                    for i in [0, PAGES - 1] {
                        std::os::unix::fs::FileExt::write_all_at(&file, &page, (i * PAGE) as u64)
                            .unwrap();
                    }
                    k = k.wrapping_add(1);
                }
            })
        };
        for i in 0..4 {
            let id = format!("cccccccc-0000-4000-8000-00000000001{i}");
            let s = snap(&id, &share, "local1");
            match b.driver.create_snapshot(&s).await {
                Ok(_) => {
                    let copy = fs::read(tree(&b, &id).join("hot")).unwrap();
                    assert_eq!(copy.len(), PAGE * PAGES);
                    let (first, last) = (copy[0], copy[copy.len() - 1]);
                    assert!(
                        first.wrapping_sub(last) <= 1,
                        "the snapshot holds a state the file never had: first page {first}, \
                         last page {last}"
                    );
                }
                Err(err) => {
                    assert!(err.to_string().contains("kept changing"), "{err}");
                    assert!(!b.pool().join("snapshots").join(&id).exists());
                    let meta = b.pool().join("snapshots").join(format!("{id}.meta.json"));
                    assert!(!meta.exists(), "a failed snapshot allocates nothing");
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        // Once the writer stopped, the file is snapshotted normally.
        let s = snap(SNAP, &share, "local1");
        b.driver.create_snapshot(&s).await.unwrap();
        assert_eq!(
            fs::read(tree(&b, SNAP).join("hot")).unwrap(),
            fs::read(&path).unwrap()
        );
    }

    fn canonical_pool(b: &Backend) -> PathBuf {
        fs::canonicalize(b.pool()).unwrap()
    }

    #[tokio::test]
    async fn manage_then_unmanage_then_manage_again() {
        let b = Backend::new("local1").await;
        let incoming = canonical_pool(&b).join("incoming/data");
        fs::create_dir_all(&incoming).unwrap();
        write_tree(&incoming, false);
        let refdir = tempfile::tempdir().unwrap();
        let expected = reference(&incoming, refdir.path());
        let none = BTreeMap::new();

        let share = instance(NEW);
        let given = format!("local://node1{}", incoming.display());
        let managed = b
            .driver
            .manage_existing(&share, &given, &none)
            .await
            .unwrap();
        assert_eq!(managed.size_gb, 1);
        assert_eq!(
            managed.export_locations,
            b.driver.ensure_share(&share).await.unwrap()
        );
        assert!(!incoming.exists(), "moved, not copied");
        assert_same_tree(&expected, &b.shares().join(NEW), false);
        // Retried after the move: the same answer.
        assert_eq!(
            b.driver
                .manage_existing(&share, &given, &none)
                .await
                .unwrap(),
            managed
        );

        // The data stays at its export location; only the driver's files go.
        let location = managed.export_locations[0].path.clone();
        b.driver.unmanage(&share).await.unwrap();
        b.driver.unmanage(&share).await.unwrap();
        assert_eq!(names_in(&b.shares()), [NEW.to_owned()]);
        let left = canonical_pool(&b).join("shares").join(NEW);
        assert_same_tree(&expected, &left, false);

        // The unmanaged data can be managed again, by the export location it had; the size
        // is measured.
        fs::File::create(left.join("sparse"))
            .unwrap()
            .set_len(GIB_BYTES + 1)
            .unwrap();
        let again = instance(NEW2);
        let managed = b
            .driver
            .manage_existing(&again, &location, &none)
            .await
            .unwrap();
        assert_eq!(managed.size_gb, 2);
        assert!(b.shares().join(NEW2).join("sparse").exists());
        assert!(!left.exists());
        assert_eq!(
            names_in(&b.shares()),
            [NEW2.to_owned(), format!("{NEW2}.meta.json")]
        );
    }

    #[tokio::test]
    async fn manage_refuses_paths_outside_or_internal_to_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let driver = two_pool_driver(dir.path());
        driver.do_setup().await.unwrap();
        let existing = instance(ACTIVE);
        driver.create_share(&existing).await.unwrap();
        let s = snap(SNAP, &existing, "local1");
        driver.create_snapshot(&s).await.unwrap();
        let pool = fs::canonicalize(dir.path().join("pool1")).unwrap();
        let pool2 = fs::canonicalize(dir.path().join("pool2")).unwrap();
        fs::create_dir_all(pool.join("incoming/data")).unwrap();
        fs::write(pool.join("incoming/data/f"), b"keep").unwrap();
        fs::create_dir_all(pool2.join("elsewhere")).unwrap();
        fs::create_dir_all(pool.join(".tmp-x")).unwrap();
        fs::create_dir_all(pool.join("unmanaged")).unwrap();
        fs::write(pool.join("afile"), b"x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), pool.join("escape")).unwrap();
        std::os::unix::fs::symlink(pool.join("incoming"), pool.join("alias")).unwrap();
        let p = |rel: &str| format!("{}/{rel}", pool.display());
        let refused = [
            outside.path().display().to_string(),
            pool.display().to_string(),
            p(&format!("shares/{ACTIVE}")),
            p("shares"),
            p("replicas"),
            p(&format!("snapshots/{SNAP}/tree")),
            p(".tmp-x"),
            p("unmanaged"),
            p("escape"),
            p("alias/data"),
            p("incoming/../incoming/data"),
            "incoming/data".to_owned(),
            format!("local://node2{}", p("incoming/data")),
            "local://node1".to_owned(),
            p("nope"),
            p("afile"),
            format!("{}/elsewhere", pool2.display()),
        ];
        let share = instance(NEW);
        let none = BTreeMap::new();
        for given in &refused {
            assert!(
                matches!(
                    driver.manage_existing(&share, given, &none).await,
                    Err(DriverError::InvalidInput(_))
                ),
                "{given}"
            );
        }
        assert_eq!(fs::read(pool.join("incoming/data/f")).unwrap(), b"keep");
        assert!(!pool.join("shares").join(NEW).exists());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        // The same snapshot refusals: no location, or one inside the pool's own directories.
        let mut adopt = snap(SNAP2, &existing, "local1");
        assert!(matches!(
            driver.manage_existing_snapshot(&adopt, &none).await,
            Err(DriverError::InvalidInput(_))
        ));
        for live in [
            format!("shares/{ACTIVE}"),
            format!("snapshots/{SNAP}"),
            format!("snapshots/{SNAP}/tree"),
        ] {
            adopt.provider_location = Some(p(&live));
            assert!(
                matches!(
                    driver.manage_existing_snapshot(&adopt, &none).await,
                    Err(DriverError::InvalidInput(_))
                ),
                "{live}"
            );
        }
        assert!(pool.join("shares").join(ACTIVE).is_dir());
        assert!(pool.join("snapshots").join(SNAP).join("tree").is_dir());
        // And the path is fine once nothing is wrong with it; driver options the back end
        // does not use are ignored, as Manila's drivers do.
        let with_options = BTreeMap::from([("size".to_owned(), "1".to_owned())]);
        driver
            .manage_existing(&share, &p("incoming/data"), &with_options)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn manage_then_unmanage_a_snapshot() {
        let b = Backend::new("local1").await;
        let share = instance(ACTIVE);
        b.driver.create_share(&share).await.unwrap();
        fs::write(b.shares().join(ACTIVE).join("current data"), b"now").unwrap();
        let imported = canonical_pool(&b).join("imported");
        fs::create_dir(&imported).unwrap();
        write_tree(&imported, false);
        let refdir = tempfile::tempdir().unwrap();
        let expected = reference(&imported, refdir.path());
        let none = BTreeMap::new();

        let mut s = snap(SNAP, &share, "local1");
        s.provider_location = Some(imported.display().to_string());
        let managed = b.driver.manage_existing_snapshot(&s, &none).await.unwrap();
        let container = canonical_pool(&b).join("snapshots").join(SNAP);
        assert_eq!(managed.progress, SnapshotProgress::Available);
        assert_eq!(managed.size_gb, Some(1));
        assert_eq!(managed.provider_location.as_deref(), container.to_str());
        assert_eq!(managed.export_locations.len(), 2);
        assert!(!imported.exists());
        assert_same_tree(&expected, &tree(&b, SNAP), true);
        assert_no_write_bits(&tree(&b, SNAP));
        assert_eq!(
            b.driver.manage_existing_snapshot(&s, &none).await.unwrap(),
            managed
        );

        // It behaves like any snapshot: the share reverts to it.
        s.provider_location = managed.provider_location.clone();
        b.driver.revert_to_snapshot(&s).await.unwrap();
        assert_same_tree(&expected, &b.shares().join(ACTIVE), false);

        // The data stays at its provider location, with its modes back and no manifest.
        b.driver.unmanage_snapshot(&s).await.unwrap();
        b.driver.unmanage_snapshot(&s).await.unwrap();
        assert_eq!(names_in(&b.pool().join("snapshots")), [SNAP.to_owned()]);
        assert_eq!(names_in(&container), [engine::TREE.to_owned()]);
        assert_same_tree(&expected, &tree(&b, SNAP), false);

        // Managed again (with driver options it does not use) by that provider location.
        let mut again = snap(SNAP2, &share, "local1");
        again.provider_location = managed.provider_location.clone();
        let options = BTreeMap::from([("size".to_owned(), "1".to_owned())]);
        let readopted = b
            .driver
            .manage_existing_snapshot(&again, &options)
            .await
            .unwrap();
        let container2 = canonical_pool(&b).join("snapshots").join(SNAP2);
        assert_eq!(readopted.progress, SnapshotProgress::Available);
        assert_eq!(readopted.provider_location.as_deref(), container2.to_str());
        assert!(!container.exists());
        assert_same_tree(&expected, &tree(&b, SNAP2), true);
        assert_no_write_bits(&tree(&b, SNAP2));
        // A live snapshot's container is not adoptable by another manage.
        let mut thief = snap(SNAP, &share, "local1");
        thief.provider_location = readopted.provider_location.clone();
        assert!(matches!(
            b.driver.manage_existing_snapshot(&thief, &none).await,
            Err(DriverError::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn a_share_from_snapshot_must_hold_the_snapshot_data() {
        let b = Backend::new("local1").await;
        let share = instance(ACTIVE);
        b.driver.create_share(&share).await.unwrap();
        let imported = canonical_pool(&b).join("imported");
        fs::create_dir(&imported).unwrap();
        // Sparse: 1 GiB + 1 byte of apparent size without using the disk.
        fs::File::create(imported.join("big"))
            .unwrap()
            .set_len(GIB_BYTES + 1)
            .unwrap();
        let mut s = snap(SNAP, &share, "local1");
        s.provider_location = Some(imported.display().to_string());
        let managed = b
            .driver
            .manage_existing_snapshot(&s, &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(managed.size_gb, Some(2));
        let meta: SnapshotMeta =
            read_json(&b.pool().join("snapshots").join(format!("{SNAP}.meta.json")))
                .unwrap()
                .unwrap();
        assert_eq!(meta.size_gb, 2);
        assert!(matches!(
            b.driver
                .create_share_from_snapshot(&instance(NEW), &s)
                .await,
            Err(DriverError::InvalidInput(_))
        ));
        assert!(names_in(&b.shares()).iter().all(|n| !n.contains(NEW)));
    }
}
