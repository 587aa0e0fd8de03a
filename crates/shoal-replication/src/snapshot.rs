//! Snapshots of a tree, built with the replication engine's copy machinery, and the ways back
//! out of one: a writable copy (a share created from a snapshot), a copy of the snapshot itself
//! (a secondary replica's snapshot instance), and an in-place revert.
//!
//! # Layout of a snapshot container
//! ```text
//! <container>/tree/       the point-in-time copy, without write bits (files and directories)
//! <container>/manifest    what `tree` holds, with the SOURCE's modes (see `manifest.rs`)
//! ```
//! A container is built under a temporary name and renamed into place once `tree` and
//! `manifest` are durable (one `syncfs`), so a container with a manifest is always complete;
//! the caller removes leftovers of an interrupted build. An adopted (managed) container is the
//! exception: its `tree` is renamed in first (user data is never put under a temporary name
//! a cleanup would remove) and it counts as complete once its manifest exists.
//!
//! # Point in time
//! Files are copied with `copy_file_range` (which shares extents on reflink filesystems), on
//! the engine's two copy threads once the directories exist, with the engine's size/mtime
//! check around each read; a file that changed while it was read is copied
//! again, and if it changes again the snapshot fails instead of holding a torn file. A file
//! whose mtime lies within [`RACY_WINDOW`] of the scan start could change without its mtime
//! moving, so its copy is compared with the source by content before it is trusted. Nothing is
//! ever hard-linked: the share can change a linked inode in place.
//!
//! # Revert
//! Brings a live tree to exactly the manifest: entries the snapshot lacks are removed, missing
//! or different ones are copied from `tree` (under a temporary name, then renamed over the
//! old one), modes and mtimes are set last, directories deepest first. A file is left alone
//! when its kind, size and mtime match and its ctime is older than the snapshot (nothing
//! touched it since); a file of the same size touched since is compared by content first, so
//! only what differs is written. The snapshot is only read, so a crash mid-revert leaves a
//! tree the next run of the same revert completes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};

use super::copy::{
    CopyError, chmod, copy_file, disk_mode, hash_file, make_symlink, remove_tree, set_mtime,
    tmp_name,
};
use super::manifest::{Entry, Kind, Manifest, Ts};
use super::walk::{WalkEntry, abs, walk_trees};
use super::{COPY_THREADS, RACY_WINDOW, now_ts, ts_from_nanos, ts_nanos};

/// Name of the read-only tree inside a snapshot container.
pub const TREE: &str = "tree";
/// Name of the manifest inside a snapshot container.
pub const MANIFEST: &str = "manifest";

/// How often a file that changes while it is copied is tried before the snapshot fails.
const COPY_ATTEMPTS: usize = 2;

/// Errors of snapshot operations.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The tree to copy from cannot be read.
    #[error("source {path} is unavailable: {source}")]
    Source {
        /// Path involved.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// Writing the copy failed (disk full, permissions...).
    #[error("{path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// A file kept changing while it was copied: no consistent copy could be made.
    #[error("{path} kept changing while it was copied; no consistent snapshot could be taken")]
    Unstable {
        /// Relative path of the file.
        path: String,
    },
    /// The container is incomplete or does not match its manifest.
    #[error("snapshot {path} is damaged: {reason}")]
    Damaged {
        /// Container or entry.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// What a complete snapshot container holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// When the source scan started (the point in time the snapshot reflects).
    pub source_point: DateTime<Utc>,
    /// Entries (files, directories, symlinks).
    pub entries: u64,
    /// Bytes of regular files.
    pub bytes: u64,
}

fn info_of(m: &Manifest) -> SnapshotInfo {
    SnapshotInfo {
        source_point: m.source_point(),
        entries: m.entries.len() as u64,
        bytes: m.file_bytes(),
    }
}

/// The manifest of a complete container; `None` when it has none (absent or incomplete).
pub(crate) fn load(container: &Path) -> Result<Option<Manifest>, SnapshotError> {
    let path = container.join(MANIFEST);
    let manifest = Manifest::load(&path).map_err(io_err(&path))?;
    if manifest.is_none() && fs::symlink_metadata(&path).is_ok() {
        return Err(SnapshotError::Damaged {
            path,
            reason: "the manifest is unreadable".to_owned(),
        });
    }
    Ok(manifest)
}

/// What a complete container holds; `None` when it is not complete.
pub fn info(container: &Path) -> Result<Option<SnapshotInfo>, SnapshotError> {
    Ok(load(container)?.as_ref().map(info_of))
}

fn require(container: &Path) -> Result<Manifest, SnapshotError> {
    load(container)?.ok_or_else(|| SnapshotError::Damaged {
        path: container.to_path_buf(),
        reason: "it has no manifest".to_owned(),
    })
}

/// Removes a container or a leftover of one (read-only directories included). Missing is fine.
pub fn remove(path: &Path) -> Result<(), SnapshotError> {
    remove_tree(path).map_err(io_err(path))
}

/// Takes a snapshot of `source` into the container `dest`, building it in `building` (which
/// is removed first) and renaming it into place. Idempotent: a complete `dest` is kept.
pub fn take(source: &Path, building: &Path, dest: &Path) -> Result<SnapshotInfo, SnapshotError> {
    if let Some(m) = load(dest)? {
        return Ok(info_of(&m));
    }
    let scan_start = now_ts();
    let walked = walk_trees(&[source], false)
        .pop()
        .expect("one result")
        .map_err(|e| SnapshotError::Source {
            path: e.path,
            source: e.source,
        })?;
    let plan: Vec<Planned> = walked.entries.into_iter().map(Planned::from).collect();
    let written = build(source, &plan, building, Some(scan_start))?;
    let manifest = Manifest {
        read_only: true,
        block_size: 0,
        source_point_us: ts_nanos(scan_start).div_euclid(1000) as i64,
        clean: true,
        entries: Vec::new(),
    };
    finish(building, dest, manifest, plan, written)
}

/// Copies the complete container `source` into the container `dest` (built in `building`):
/// the same tree, modes, mtimes and point in time. Idempotent like [`take`].
pub fn copy_container(
    source: &Path,
    building: &Path,
    dest: &Path,
) -> Result<SnapshotInfo, SnapshotError> {
    if let Some(m) = load(dest)? {
        return Ok(info_of(&m));
    }
    let m = require(source).map_err(|e| match e {
        SnapshotError::Io { path, source } => SnapshotError::Source { path, source },
        other => other,
    })?;
    let plan: Vec<Planned> = m.entries.iter().map(Planned::from).collect();
    let written = build(&source.join(TREE), &plan, building, None)?;
    let manifest = Manifest {
        entries: Vec::new(),
        ..m
    };
    finish(building, dest, manifest, plan, written)
}

/// Writes a plain, writable copy of the container's tree at `dest` (which must not exist),
/// with the modes and mtimes the snapshot recorded, durable when this returns.
pub fn copy_out(container: &Path, dest: &Path) -> Result<SnapshotInfo, SnapshotError> {
    let m = require(container)?;
    let plan: Vec<Planned> = m.entries.iter().map(Planned::from).collect();
    let tree = container.join(TREE);
    copy_entries(&tree, &plan, dest, None, false)?;
    finish_dirs(dest, &plan, false)?;
    sync_tree(dest)?;
    Ok(info_of(&m))
}

/// One entry to create in a copy.
#[derive(Debug, Clone)]
struct Planned {
    path: Vec<u8>,
    kind: Kind,
    /// The source's mode (write bits included).
    mode: u32,
    size: u64,
    mtime: Ts,
    target: Vec<u8>,
    src_ino: u64,
}

impl From<WalkEntry> for Planned {
    fn from(e: WalkEntry) -> Self {
        Self {
            path: e.path,
            kind: e.kind,
            mode: e.mode,
            size: e.size,
            mtime: e.mtime,
            target: e.target,
            src_ino: e.ino,
        }
    }
}

impl From<&Entry> for Planned {
    fn from(e: &Entry) -> Self {
        Self {
            path: e.path.clone(),
            kind: e.kind,
            mode: e.mode,
            size: e.size,
            mtime: e.mtime,
            target: e.target.clone(),
            src_ino: e.src_ino,
        }
    }
}

/// What was written for one planned entry (`None`: it vanished from the source).
type Outcome = Option<(u64, Ts, u64)>;

/// Builds `building/tree` from `source` (fresh), without write bits; returns what was
/// written for each planned entry.
fn build(
    source: &Path,
    plan: &[Planned],
    building: &Path,
    scan_start: Option<Ts>,
) -> Result<Vec<Outcome>, SnapshotError> {
    remove_tree(building).map_err(io_err(building))?;
    fs::create_dir(building).map_err(io_err(building))?;
    chmod(building, 0o700).map_err(io_err(building))?;
    let tree = building.join(TREE);
    let written = copy_entries(source, plan, &tree, scan_start, true)?;
    finish_dirs(&tree, plan, true)?;
    Ok(written)
}

/// Writes the manifest, makes the container durable and renames it into place.
fn finish(
    building: &Path,
    dest: &Path,
    mut manifest: Manifest,
    plan: Vec<Planned>,
    written: Vec<Outcome>,
) -> Result<SnapshotInfo, SnapshotError> {
    manifest.entries = plan
        .into_iter()
        .zip(written)
        .filter_map(|(p, w)| {
            let (size, mtime, rep_ino) = w?;
            Some(Entry {
                path: p.path,
                kind: p.kind,
                flags: 0,
                mode: p.mode,
                size,
                mtime,
                src_ino: p.src_ino,
                rep_ino,
                target: p.target,
                blocks: Vec::new(),
            })
        })
        .collect();
    let mpath = building.join(MANIFEST);
    fs::write(&mpath, manifest.encode()).map_err(io_err(&mpath))?;
    sync_tree(building)?;
    fs::rename(building, dest).map_err(io_err(dest))?;
    if let Some(parent) = dest.parent() {
        File::open(parent)
            .and_then(|f| f.sync_all())
            .map_err(io_err(parent))?;
    }
    Ok(info_of(&manifest))
}

/// One `syncfs` of the filesystem holding `dir`: everything written into it is durable.
fn sync_tree(dir: &Path) -> Result<(), SnapshotError> {
    let f = File::open(dir).map_err(io_err(dir))?;
    nix::unistd::syncfs(&f).map_err(|e| io_err(dir)(e.into()))
}

/// Creates every planned entry under `dest` (which must not exist), reading files from
/// `source`. Directories are created owner-writable; [`finish_dirs`] sets their modes. With
/// `scan_start`, the source is live: files are checked for changes while read.
fn copy_entries(
    source: &Path,
    plan: &[Planned],
    dest: &Path,
    scan_start: Option<Ts>,
    read_only: bool,
) -> Result<Vec<Outcome>, SnapshotError> {
    let live = scan_start.is_some();
    let racy_from = scan_start.map(|t| ts_from_nanos(ts_nanos(t) - RACY_WINDOW.as_nanos() as i128));
    let mut out: Vec<Outcome> = vec![None; plan.len()];
    // Directories first, parents before children (the plan is sorted by path).
    let mut leaves = Vec::with_capacity(plan.len());
    for (i, p) in plan.iter().enumerate() {
        if p.kind != Kind::Dir {
            leaves.push(i);
            continue;
        }
        let dst = abs(dest, &p.path);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dst)
            .map_err(io_err(&dst))?;
        out[i] = Some((0, p.mtime, 0));
    }
    // Then files and symlinks on the engine's copy threads: per-file syscalls, not bandwidth,
    // dominate a tree of small files.
    let one = |i: usize| -> Result<Outcome, SnapshotError> {
        let p = &plan[i];
        let dst = abs(dest, &p.path);
        if p.kind == Kind::Symlink {
            let ino = make_symlink(&p.target, &dst, p.mtime).map_err(io_err(&dst))?;
            return Ok(Some((0, p.mtime, ino)));
        }
        let src = abs(source, &p.path);
        let racy = racy_from.is_some_and(|from| p.mtime >= from);
        copy_one(&src, &dst, p, disk_mode(p.mode, read_only), live, racy)
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let worker = || -> Result<Vec<(usize, Outcome)>, SnapshotError> {
        let mut mine = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let Some(&i) = leaves.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            match one(i) {
                Ok(outcome) => mine.push((i, outcome)),
                Err(err) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(err);
                }
            }
        }
        Ok(mine)
    };
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..COPY_THREADS).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("copy worker does not panic"))
            .collect()
    });
    for result in results {
        for (i, outcome) in result? {
            out[i] = outcome;
        }
    }
    Ok(out)
}

/// Copies one file, retrying once when it changed while read; `None` when it vanished.
fn copy_one(
    src: &Path,
    dst: &Path,
    p: &Planned,
    mode: u32,
    live: bool,
    racy: bool,
) -> Result<Outcome, SnapshotError> {
    for _ in 0..COPY_ATTEMPTS {
        match copy_file(src, dst, mode, None, live) {
            Ok(w) => {
                if !live && w.size != p.size {
                    return Err(SnapshotError::Damaged {
                        path: src.to_path_buf(),
                        reason: format!("holds {} bytes, the manifest says {}", w.size, p.size),
                    });
                }
                // A file written within the timestamp granularity of the scan can change
                // without its mtime moving: only equal contents prove the copy consistent.
                if racy {
                    let same = hash_file(src).map_err(|e| SnapshotError::Source {
                        path: src.to_path_buf(),
                        source: e,
                    })? == hash_file(dst).map_err(io_err(dst))?;
                    if !same {
                        remove_copy(dst)?;
                        continue;
                    }
                }
                return Ok(Some((w.size, w.mtime, w.rep_ino)));
            }
            Err(CopyError::Changed) => continue,
            Err(CopyError::Vanished) if live => return Ok(None),
            Err(CopyError::Vanished) => {
                return Err(SnapshotError::Damaged {
                    path: src.to_path_buf(),
                    reason: "a file of the manifest is missing".to_owned(),
                });
            }
            Err(CopyError::Source(path, source)) => {
                return Err(SnapshotError::Source { path, source });
            }
            Err(CopyError::Replica(path, source)) => {
                return Err(SnapshotError::Io { path, source });
            }
        }
    }
    Err(SnapshotError::Unstable {
        path: show(&p.path),
    })
}

fn remove_copy(path: &Path) -> Result<(), SnapshotError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Sets every directory's mode (without write bits when `read_only`) and mtime, deepest first
/// (setting a child's metadata does not move its parent's mtime, creating entries does).
fn finish_dirs(root: &Path, plan: &[Planned], read_only: bool) -> Result<(), SnapshotError> {
    for p in plan.iter().rev().filter(|p| p.kind == Kind::Dir) {
        let path = abs(root, &p.path);
        chmod(&path, disk_mode(p.mode, read_only)).map_err(io_err(&path))?;
        set_mtime(&path, p.mtime).map_err(io_err(&path))?;
    }
    Ok(())
}

/// Adopts `container/tree` (already renamed in place) as a snapshot: records what it holds
/// in a manifest, then removes its write bits. Idempotent: with a manifest, only the write
/// bits are removed again (a crash may have stopped halfway).
pub fn seal(container: &Path) -> Result<SnapshotInfo, SnapshotError> {
    let tree = container.join(TREE);
    let m = match load(container)? {
        Some(m) => m,
        None => {
            let walked = walk_trees(&[&tree], false)
                .pop()
                .expect("one result")
                .map_err(|e| io_err(&e.path)(e.source))?;
            let m = Manifest {
                read_only: true,
                block_size: 0,
                source_point_us: Utc::now().timestamp_micros(),
                clean: true,
                entries: walked
                    .entries
                    .into_iter()
                    .map(|e| Entry {
                        path: e.path,
                        kind: e.kind,
                        flags: 0,
                        mode: e.mode,
                        size: e.size,
                        mtime: e.mtime,
                        src_ino: e.ino,
                        rep_ino: e.ino,
                        target: e.target,
                        blocks: Vec::new(),
                    })
                    .collect(),
            };
            crate::fsutil::write_atomic(container, MANIFEST, &m.encode())
                .map_err(io_err(container))?;
            m
        }
    };
    set_modes(&tree, &m, true)?;
    Ok(info_of(&m))
}

/// Gives `container/tree` back the modes its manifest recorded (the inverse of [`seal`]),
/// so it can leave the back end as an ordinary tree. Missing entries are skipped.
pub fn unseal(container: &Path) -> Result<(), SnapshotError> {
    if let Some(m) = load(container)? {
        set_modes(&container.join(TREE), &m, false)?;
    }
    Ok(())
}

fn set_modes(tree: &Path, m: &Manifest, read_only: bool) -> Result<(), SnapshotError> {
    // Parents first when granting write bits, deepest first when taking them away, so every
    // directory stays searchable while its children are changed (for a non-root user).
    let entries: Vec<&Entry> = if read_only {
        m.entries.iter().rev().collect()
    } else {
        m.entries.iter().collect()
    };
    for e in entries.into_iter().filter(|e| e.kind != Kind::Symlink) {
        let path = abs(tree, &e.path);
        let mtime = (e.kind == Kind::Dir).then_some(e.mtime);
        match chmod(&path, disk_mode(e.mode, read_only)) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            other => other.map_err(io_err(&path))?,
        }
        if let Some(mtime) = mtime {
            set_mtime(&path, mtime).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

/// What a revert changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevertReport {
    /// Entries written (created or replaced from the snapshot).
    pub written: u64,
    /// Bytes of file data written.
    pub bytes_written: u64,
    /// Entries removed because the snapshot does not have them.
    pub removed: u64,
    /// Entries whose mode or mtime alone was restored.
    pub metadata_fixed: u64,
}

/// Brings the tree `target` (an existing directory) to exactly what the container holds.
pub fn revert(container: &Path, target: &Path) -> Result<RevertReport, SnapshotError> {
    revert_inner(container, target, None)
}

/// [`revert`], stopping with an error after `fail_after_writes` entries were written (crash
/// tests in-process: the tree is left as a killed revert would leave it).
fn revert_inner(
    container: &Path,
    target: &Path,
    fail_after_writes: Option<u64>,
) -> Result<RevertReport, SnapshotError> {
    let m = require(container)?;
    let tree = container.join(TREE);
    let point = ts_from_nanos(i128::from(m.source_point_us) * 1000);
    let trusted_before = ts_from_nanos(ts_nanos(point) - RACY_WINDOW.as_nanos() as i128);
    let walked = walk_trees(&[target], false)
        .pop()
        .expect("one result")
        .map_err(|e| io_err(&e.path)(e.source))?;
    let wanted: HashMap<&[u8], &Entry> = m.entries.iter().map(|e| (e.path.as_slice(), e)).collect();
    let mut report = RevertReport::default();

    // 1. Directories that stay get owner rwx while their contents change.
    for e in walked.entries.iter().filter(|e| e.kind == Kind::Dir) {
        if wanted
            .get(e.path.as_slice())
            .is_some_and(|w| w.kind == Kind::Dir)
            && e.mode & 0o700 != 0o700
        {
            let path = abs(target, &e.path);
            chmod(&path, e.mode | 0o700).map_err(io_err(&path))?;
        }
    }
    // 2. Remove what the snapshot lacks (or has as another kind); a removed directory takes
    //    its subtree with it.
    let mut present: HashMap<&[u8], &WalkEntry> = HashMap::new();
    let mut removed_dir: Option<&[u8]> = None;
    for e in &walked.entries {
        if let Some(dir) = removed_dir
            && e.path.starts_with(dir)
            && e.path.get(dir.len()) == Some(&b'/')
        {
            continue;
        }
        match wanted.get(e.path.as_slice()) {
            Some(w) if w.kind == e.kind => {
                present.insert(e.path.as_slice(), e);
            }
            _ => {
                let path = abs(target, &e.path);
                remove_tree(&path).map_err(io_err(&path))?;
                report.removed += 1;
                if e.kind == Kind::Dir {
                    removed_dir = Some(e.path.as_slice());
                }
            }
        }
    }
    // Fifos, sockets and devices are never in a snapshot.
    for special in &walked.specials {
        let path = abs(target, special);
        remove_copy(&path)?;
        report.removed += 1;
    }
    // 3. Create or replace what differs, parents first (the manifest is sorted by path).
    for w in &m.entries {
        if fail_after_writes.is_some_and(|n| report.written >= n) {
            return Err(SnapshotError::Io {
                path: target.to_path_buf(),
                source: io::Error::other("revert stopped by a test"),
            });
        }
        let path = abs(target, &w.path);
        let have = present.get(w.path.as_slice());
        match (w.kind, have) {
            (Kind::Dir, Some(_)) => {}
            (Kind::Dir, None) => {
                fs::create_dir(&path).map_err(io_err(&path))?;
                chmod(&path, 0o700).map_err(io_err(&path))?;
                report.written += 1;
            }
            (Kind::Symlink, Some(h)) if h.target == w.target => {
                if h.mtime != w.mtime {
                    set_mtime(&path, w.mtime).map_err(io_err(&path))?;
                    report.metadata_fixed += 1;
                }
            }
            (Kind::Symlink, _) => {
                let tmp = tmp_name(path.parent().unwrap_or(target));
                make_symlink(&w.target, &tmp, w.mtime).map_err(io_err(&tmp))?;
                fs::rename(&tmp, &path).map_err(io_err(&path))?;
                report.written += 1;
            }
            (Kind::File, have) => {
                let src = abs(&tree, &w.path);
                let same = match have {
                    Some(h) if h.size == w.size => {
                        (h.mtime == w.mtime && h.ctime < trusted_before)
                            || hash_file(&path).map_err(io_err(&path))?
                                == hash_file(&src).map_err(io_err(&src))?
                    }
                    _ => false,
                };
                if same {
                    let h = have.expect("an equal file exists");
                    let mut fixed = false;
                    if h.mode != w.mode {
                        chmod(&path, w.mode).map_err(io_err(&path))?;
                        fixed = true;
                    }
                    if h.mtime != w.mtime {
                        set_mtime(&path, w.mtime).map_err(io_err(&path))?;
                        fixed = true;
                    }
                    report.metadata_fixed += u64::from(fixed);
                    continue;
                }
                let tmp = tmp_name(path.parent().unwrap_or(target));
                let p = Planned::from(w);
                let Some((size, _, _)) = copy_one(&src, &tmp, &p, w.mode, false, false)? else {
                    unreachable!("copy_one reports a missing snapshot file as damage");
                };
                set_mtime(&tmp, w.mtime).map_err(io_err(&tmp))?;
                fs::rename(&tmp, &path).map_err(io_err(&path))?;
                report.written += 1;
                report.bytes_written += size;
            }
        }
    }
    // 4. Directory modes and mtimes, deepest first.
    for w in m.entries.iter().rev().filter(|w| w.kind == Kind::Dir) {
        let path = abs(target, &w.path);
        let have = present.get(w.path.as_slice());
        chmod(&path, w.mode).map_err(io_err(&path))?;
        set_mtime(&path, w.mtime).map_err(io_err(&path))?;
        if have.is_some_and(|h| h.mode != w.mode || h.mtime != w.mtime) {
            report.metadata_fixed += 1;
        }
    }
    sync_tree(target)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, data: &[u8]) {
        fs::write(path, data).unwrap();
    }

    #[test]
    fn revert_writes_only_what_differs_and_a_rerun_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let share = dir.path().join("share");
        fs::create_dir_all(share.join("d")).unwrap();
        for i in 0..50 {
            write(
                &share.join(format!("d/f{i}")),
                format!("file {i}").as_bytes(),
            );
        }
        let container = dir.path().join("snap");
        let info = take(&share, &dir.path().join("building"), &container).unwrap();
        assert_eq!(info.entries, 52);
        assert!(!dir.path().join("building").exists());
        assert_eq!(
            take(&share, &dir.path().join("building"), &container).unwrap(),
            info
        );

        write(&share.join("d/f3"), b"changed, longer than before");
        write(&share.join("new"), b"new");
        fs::remove_file(share.join("d/f7")).unwrap();
        let report = revert(&container, &share).unwrap();
        assert_eq!((report.written, report.removed), (2, 1), "{report:?}");
        assert_eq!(fs::read(share.join("d/f3")).unwrap(), b"file 3");
        assert_eq!(fs::read(share.join("d/f7")).unwrap(), b"file 7");
        assert!(!share.join("new").exists());
        let report = revert(&container, &share).unwrap();
        assert_eq!((report.written, report.removed), (0, 0), "{report:?}");
    }

    #[test]
    fn a_revert_stopped_midway_is_completed_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let share = dir.path().join("share");
        fs::create_dir_all(share.join("d")).unwrap();
        for i in 0..20 {
            write(
                &share.join(format!("d/f{i:02}")),
                format!("file {i}").as_bytes(),
            );
        }
        chmod(&share.join("d"), 0o550).unwrap();
        let container = dir.path().join("snap");
        take(&share, &dir.path().join("building"), &container).unwrap();
        let reference = dir.path().join("reference");
        copy_out(&container, &reference).unwrap();
        chmod(&share.join("d"), 0o750).unwrap();
        for i in (0..20).step_by(2) {
            write(
                &share.join(format!("d/f{i:02}")),
                b"changed after the snapshot",
            );
        }
        fs::remove_file(share.join("d/f05")).unwrap();
        write(&share.join("d/extra"), b"extra");

        assert!(revert_inner(&container, &share, Some(4)).is_err());
        let half: Vec<_> = (0..20)
            .filter(|i| {
                fs::read(share.join(format!("d/f{i:02}"))).ok()
                    == Some(format!("file {i}").into_bytes())
            })
            .collect();
        assert!(half.len() < 20, "stopped before the end: {half:?}");
        let report = revert(&container, &share).unwrap();
        assert_eq!(report.written + 4, 11, "{report:?}");
        let a = walk_trees(&[&share, &reference], false);
        let entries = |r: &Result<super::super::walk::WalkResult, _>| {
            r.as_ref()
                .unwrap()
                .entries
                .iter()
                .map(|e| (e.path.clone(), e.kind, e.mode, e.size, e.mtime))
                .collect::<Vec<_>>()
        };
        assert_eq!(entries(&a[0]), entries(&a[1]));
        for i in 0..20 {
            assert_eq!(
                fs::read(share.join(format!("d/f{i:02}"))).unwrap(),
                format!("file {i}").into_bytes()
            );
        }
    }

    #[test]
    fn a_container_without_manifest_is_not_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let container = dir.path().join("snap");
        fs::create_dir_all(container.join(TREE)).unwrap();
        assert_eq!(info(&container).unwrap(), None);
        assert!(matches!(
            revert(&container, dir.path()),
            Err(SnapshotError::Damaged { .. })
        ));
        write(&container.join(MANIFEST), b"torn");
        assert!(matches!(
            info(&container),
            Err(SnapshotError::Damaged { .. })
        ));
        // A copy whose tree lost a file is refused, not silently incomplete.
        let share = dir.path().join("share");
        fs::create_dir(&share).unwrap();
        write(&share.join("f"), b"data");
        let good = dir.path().join("good");
        take(&share, &dir.path().join("b"), &good).unwrap();
        chmod(&good.join(TREE), 0o700).unwrap();
        fs::remove_file(good.join(TREE).join("f")).unwrap();
        assert!(matches!(
            copy_out(&good, &dir.path().join("out")),
            Err(SnapshotError::Damaged { .. })
        ));
    }
}
