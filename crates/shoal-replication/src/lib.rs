//! The `local` back end's replication engine: keeps a secondary replica's directory a
//! complete, versioned copy of an active share's tree.
//!
//! # Layout of a replica directory
//! ```text
//! root/current            symlink -> v<N>: the published version, swapped by rename(2)
//! root/v<N>/              published version N (complete; never modified once published)
//! root/v<M>/              the retired previous version (complete), next sync's base
//! root/v<K>.manifest      what version K holds (see `manifest.rs`); written before publishing
//! root/staging-<ns>/      a version being built; started at <ns> (UNIX nanoseconds)
//! root/state.json         last confirmation of the published version (source point, clean)
//! root/.lock              flock: one sync/promote/adopt at a time per replica
//! ```
//! Persisted: the trees, their manifests and `state.json`. Derived: everything else (which
//! directory is the base, what changed) is recomputed by every sync from the listing.
//!
//! # One sync
//! 1. Walk the source and the published version at once (one shared two-thread queue).
//! 2. Tamper check: the published walk against its manifest (kind, size, mtime, mode, inode,
//!    link target). Anything different was changed behind the engine's back.
//! 3. Nothing changed (source equals the published manifest, nothing tampered): no new
//!    version, only `state.json` moves the source point. This costs about one parallel walk.
//! 4. Otherwise the retired version is renamed to `staging-<now>` and updated IN PLACE into the
//!    next version: only what differs from its manifest is written (renames detected by source
//!    inode are renamed, large files get block deltas, the rest is copied with
//!    `copy_file_range` on two threads). Entries flagged dirty or tampered are re-created.
//!    A file below the delta threshold that the retired version lacks but the published
//!    one holds as the source still has it (what the previous sync wrote: same size and
//!    mtime, not racy, dirty or tampered, the inode its manifest names) is hard-linked from
//!    the published version instead of read from the source again; for a peer source that
//!    saves the transfer. Large files are not linked (they keep a copy per slot for
//!    deltas); when the published copy is trusted the same way, the blocks the base's copy
//!    lacks are read from it instead of reading and hashing the whole source.
//! 5. Publish with as few syncs as durability needs: the manifest and `state.json` are
//!    written to `.tmp` names, one `syncfs` makes them and the whole staging tree durable,
//!    then rename manifest and staging -> `v<N+1>`, fsync(root) (the version exists under its
//!    name before anything points at it), swap `current` (symlink + rename) and rename
//!    `state.json`, fsync(root). The old published version becomes the next base.
//!    (Every written file also starts its own writeback as soon as it is complete, so the
//!    `syncfs` waits for little; see `copy::start_writeback`.)
//!
//! A crash at any point leaves `current` on a complete version. The next sync finds the
//! leftover `staging-<t>`, walks it (its manifest is unknown), and resumes from it: entries
//! whose ctime is at or after `t` were written by the interrupted sync and may have lost data
//! that never reached the disk, so their contents are compared with the source (BLAKE3) before
//! they are trusted; untouched entries keep their size/mtime quick check. Because of this,
//! files new to a staging tree are written straight under their final name (no temp + rename:
//! the staging tree is unpublished, and the ctime rule covers a torn write).
//!
//! # The second slot (measured choice)
//! Updating the retired version in place needs a second complete tree. A full copy at the
//! initial sync would double its writes (and `syncfs` time), so the first sync (and `adopt`)
//! instead builds the spare slot as a hard-link farm (a directory skeleton plus one `link(2)`
//! per file), except for files at or above the delta threshold, which get their own copy so
//! their first block delta patches it in place instead of duplicating a gigabyte first. The
//! first sync builds it from the staging tree while that tree's `syncfs` runs, and names it
//! after publishing (a leftover `spare-*` of an interrupted build is removed by the next
//! sync). Files are shared by two versions, so the engine never modifies a staging file in
//! place when its link count is above one: a changed small file is replaced (unlink + fresh
//! copy), a block delta or a mode change of a shared file first duplicates it (in-kernel
//! copy) and renames the duplicate over it. The published inode is therefore never written.
//! See docs/BENCHMARKS.md ("Replication").
//!
//! # Point in time
//! Each file copy re-checks the source's size and mtime after reading; a change is retried
//! once, then the copy is kept, flagged dirty (re-sent next time) and the sync is reported
//! not clean. Entries whose mtime is within [`SyncOptions::racy_window`] (default
//! [`RACY_WINDOW`], 100 ms) of the scan start are flagged racy: the next sync compares their
//! contents before trusting an equal size and mtime.
//!
//! The racy window only has to exceed the timestamp granularity of the source's filesystem: a
//! write that lands after the scan started gets an mtime of at least "scan start minus one
//! clock tick", so an entry whose mtime is older than that cannot be rewritten without its
//! mtime moving. ext4 (256-byte inodes), xfs, btrfs and tmpfs stamp files from the kernel's
//! coarse clock (one tick, 1–10 ms; finer with multigrain timestamps), so 100 ms leaves a wide
//! margin for that and for small clock slews. **Requirement:** pools (active and replica) are
//! local filesystems of this host with fine timestamps. A filesystem with 1 s or 2 s
//! timestamps (ext4 with 128-byte inodes, ext3, FAT) or a source stamped by another host's
//! clock (NFS) needs a window of several seconds (`racy_window`).
//!
//! # Timing
//! With `SHOAL_BENCH_TRACE=1` in the environment, every sync prints the time of each of its
//! phases to stderr (for `shoal bench replication`); otherwise the same line is a `debug`
//! tracing event.

#[cfg(test)]
mod alloc_probe;
mod changes;
mod copy;
pub mod failpoints;
pub mod fsutil;
pub mod journal;
mod manifest;
pub mod metrics;
pub mod peer_auth;
pub mod snapshot;
mod source;
pub mod transport;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

use copy::{CopyError, Written, chmod, disk_mode, remove_tree, set_mtime};
use manifest::{Entry, FLAG_DIRTY, FLAG_RACY, Kind, Manifest, State, Ts};
use source::{BatchItem, LocalSource, Source};
use walk::{WalkEntry, WalkResult, abs, walk_trees};

/// Entries modified less than this before a scan may change again within the same mtime
/// tick without their mtime moving; their contents are compared at the next sync. It only has
/// to exceed the filesystem's timestamp granularity (the kernel's coarse clock, a few ms on
/// ext4/xfs/btrfs/tmpfs); see the module doc for the requirement this puts on pools. It was
/// 2 s, which made every sync right after a burst of writes re-hash those files.
pub const RACY_WINDOW: Duration = Duration::from_millis(100);

/// At most this many directory renames are detected per sync (each costs a pass over the
/// manifest); beyond it, moved directories are copied.
const MAX_DIR_RENAMES: usize = 1000;

/// Threads that copy files into a staging tree.
const COPY_THREADS: usize = 2;

/// A batch of small files asked of a peer at once stays below this many bytes, so one
/// batch never holds a copy thread for long.
const BATCH_BYTES: u64 = 16 << 20;

/// Tuning and test knobs of one sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Readable secondaries publish their tree without write bits (files and directories).
    pub read_only: bool,
    /// Files at least this large are updated by block deltas instead of whole copies.
    pub delta_threshold: u64,
    /// Block size of block deltas.
    pub block_size: usize,
    /// Entries modified less than this before the scan are content-compared at the next sync
    /// (see [`RACY_WINDOW`]); raise it for sources with coarse timestamps.
    pub racy_window: Duration,
    /// Test knob (kill -9 tests): after writing this many entries into the staging version,
    /// sleep for the given time before going on, so a test can kill the process mid-sync.
    pub pause_after_entries: Option<(u64, Duration)>,
    /// Test knob (crash tests in-process): after writing this many entries into the staging
    /// version, stop the sync with an error, as if the process had died there.
    pub fail_after_entries: Option<u64>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            read_only: true,
            delta_threshold: 8 * 1024 * 1024,
            block_size: 64 * 1024,
            racy_window: RACY_WINDOW,
            pause_after_entries: None,
            fail_after_entries: None,
        }
    }
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// When the source scan started: the point in time the published version reflects.
    pub source_point: DateTime<Utc>,
    /// When the sync started and ended.
    pub started_at: DateTime<Utc>,
    /// End of the sync.
    pub finished_at: DateTime<Utc>,
    /// Version published after the sync (unchanged when nothing changed).
    pub version: u64,
    /// Whether this sync published a new version.
    pub published_new_version: bool,
    /// Entries (files, dirs, symlinks) in the source.
    pub files_total: u64,
    /// Bytes of regular files in the source.
    pub bytes_total: u64,
    /// Entries written (data or metadata).
    pub files_transferred: u64,
    /// File bytes written (block deltas count changed blocks only).
    pub bytes_transferred: u64,
    /// Entries removed.
    pub files_deleted: u64,
    /// Entries found renamed in the source and renamed in the copy instead of re-sent.
    pub files_renamed: u64,
    /// Entries of the published version found changed behind the engine's back (undone).
    pub tampered: u64,
    /// False when the source changed while it was read (the version is complete but not a
    /// point-in-time copy).
    pub clean: bool,
    /// Bytes received from a peer node for this sync (listing, hashes, file data and
    /// framing); 0 when the source was read from this host's filesystem.
    pub wire_bytes: u64,
    /// Whether the source tree was walked; false for a sync from a change list
    /// ([`ReplicaDir::sync_changes_from`]), which looks only at the changed paths.
    pub walked: bool,
    /// Source entries examined: the whole tree for a walk; for a change list the paths
    /// looked at again (changed paths, their parents, entries the last sync could not vouch
    /// for) plus the entries of directories that appeared as a whole.
    pub examined: u64,
}

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source tree cannot be read (missing or unreadable active pool).
    #[error("source {path} is unavailable: {source}")]
    SourceUnavailable {
        /// The source root.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing the replica failed (disk full, permissions...).
    #[error("replica {path}: {source}")]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

impl SyncError {
    /// The source tree could not be read.
    pub fn is_source_unavailable(&self) -> bool {
        matches!(self, SyncError::SourceUnavailable { .. })
    }

    /// Writing the replica failed because its filesystem is full (or over a disk quota).
    pub fn is_out_of_space(&self) -> bool {
        match self {
            SyncError::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
                    || source.raw_os_error() == Some(nix::libc::EDQUOT)
            }
            SyncError::SourceUnavailable { .. } => false,
        }
    }
}

/// What is published right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Version number (1 for the first sync).
    pub version: u64,
    /// Directory of that version (a reader should open `ReplicaDir::current_path`).
    pub path: PathBuf,
    /// Source point of the version.
    pub source_point: DateTime<Utc>,
    /// Whether the sync that produced it was clean.
    pub clean: bool,
}

/// The on-disk state of one secondary replica: a directory holding complete versions and
/// a `current` link to the published one.
#[derive(Debug, Clone)]
pub struct ReplicaDir {
    root: PathBuf,
}

/// Wall-clock time of each phase of one sync (see "Timing" in the module doc).
struct Phases {
    start: Instant,
    last: Instant,
    marks: Vec<(&'static str, Duration)>,
}

impl Phases {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            last: now,
            marks: Vec::with_capacity(16),
        }
    }

    /// Ends the phase `name` (it started at the previous mark).
    fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.marks.push((name, now - self.last));
        self.last = now;
    }

    fn finish(self, what: &str) {
        let to_stderr =
            *TRACE.get_or_init(|| std::env::var_os("SHOAL_BENCH_TRACE").is_some_and(|v| v == "1"));
        if !to_stderr && !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let mut line = String::new();
        for (name, d) in &self.marks {
            line.push_str(&format!("{name} {:.1} ms, ", d.as_secs_f64() * 1e3));
        }
        line.push_str(&format!(
            "total {:.1} ms",
            self.start.elapsed().as_secs_f64() * 1e3
        ));
        if to_stderr {
            eprintln!("replication {what}: {line}");
        } else {
            tracing::debug!(phases = %line, "replication {what}: {line}");
        }
    }
}

/// Whether `SHOAL_BENCH_TRACE=1` (read once).
static TRACE: OnceLock<bool> = OnceLock::new();

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SyncError + '_ {
    move |source| SyncError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn now_ts() -> Ts {
    ts_of(SystemTime::now())
}

fn ts_of(t: SystemTime) -> Ts {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Ts {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: d.subsec_nanos(),
        },
        Err(_) => Ts::default(),
    }
}

fn ts_nanos(ts: Ts) -> i128 {
    i128::from(ts.sec) * 1_000_000_000 + i128::from(ts.nsec)
}

fn ts_from_nanos(n: i128) -> Ts {
    Ts {
        sec: i64::try_from(n.div_euclid(1_000_000_000)).unwrap_or(0),
        nsec: u32::try_from(n.rem_euclid(1_000_000_000)).unwrap_or(0),
    }
}

/// True when `path` is `dir` or inside it.
fn is_under(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/')
}

fn parent_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[..i],
        None => b"",
    }
}

fn show_path(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// The source listing of a change-list sync, or `None` when the sync must walk. It is given
/// the published manifest (`None` before the first version, when the answer is ignored
/// and the sync walks).
type Lister<'a> =
    &'a dyn Fn(Option<&Manifest>) -> Result<Option<changes::Listing>, walk::WalkError>;

/// How a sync learns what the source holds.
#[derive(Clone, Copy)]
enum Scan<'a> {
    /// Walk the source, and the published version for the tamper check.
    Walk,
    /// Ask the lister first (right after the scan start is taken); walk when it says so.
    Changes(Lister<'a>),
}

/// What `root` holds besides `current`.
#[derive(Debug, Default)]
struct Layout {
    /// Published version, from `current`.
    published: Option<u64>,
    /// Other `v<K>` directories.
    others: Vec<u64>,
    /// `staging-<ns>` directories: (name, start).
    staging: Vec<(String, Ts)>,
}

/// What a sync found in the source, for its report.
struct Totals {
    files: u64,
    bytes: u64,
    walked: bool,
    examined: u64,
}

/// The base a new version is built from.
struct Base {
    entries: HashMap<Vec<u8>, Entry>,
    /// Whether the base's modes lack write bits (for entries from a manifest).
    read_only: bool,
    /// Block size of the base's block hashes.
    block_size: u64,
}

impl Base {
    fn from_manifest(m: Manifest) -> Self {
        Self {
            read_only: m.read_only,
            block_size: m.block_size,
            entries: m.into_map(),
        }
    }
}

/// What to do with one source file or symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Not in the base: copy it.
    New,
    /// Content differs: replace or delta.
    Update,
    /// Equal size and mtime but racy/suspect: compare contents first.
    Verify,
    /// Only the mode differs.
    Chmod,
}

/// Result of one action.
enum Outcome {
    Written(Written, bool),
    Keep { rep_ino: u64 },
    Vanished,
}

impl ReplicaDir {
    /// Opens (creating if needed) the replica directory `root`.
    pub fn open(root: &Path) -> Result<Self, SyncError> {
        fs::create_dir_all(root).map_err(io_err(root))?;
        let meta = fs::symlink_metadata(root).map_err(io_err(root))?;
        if !meta.is_dir() {
            return Err(SyncError::Io {
                path: root.to_path_buf(),
                source: io::Error::other("not a directory"),
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The replica directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path readers use: always resolves to a complete published version.
    pub fn current_path(&self) -> PathBuf {
        self.root.join("current")
    }

    fn version_path(&self, v: u64) -> PathBuf {
        self.root.join(format!("v{v}"))
    }

    fn manifest_path(&self, v: u64) -> PathBuf {
        self.root.join(format!("v{v}.manifest"))
    }

    fn published_version(&self) -> Result<Option<u64>, SyncError> {
        let link = self.current_path();
        match fs::read_link(&link) {
            Ok(target) => Ok(target
                .to_str()
                .and_then(|t| t.strip_prefix('v'))
                .and_then(|n| n.parse().ok())),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) if err.kind() == io::ErrorKind::InvalidInput => Ok(None),
            Err(err) => Err(io_err(&link)(err)),
        }
    }

    /// The published version, `None` before the first sync finished.
    pub fn published(&self) -> Result<Option<Published>, SyncError> {
        let Some(version) = self.published_version()? else {
            return Ok(None);
        };
        let path = self.version_path(version);
        let state_path = self.root.join("state.json");
        if let Ok(data) = fs::read(&state_path)
            && let Ok(state) = serde_json::from_slice::<State>(&data)
            && state.version == version
        {
            return Ok(Some(Published {
                version,
                path,
                source_point: state.source_point,
                clean: state.clean,
            }));
        }
        let mpath = self.manifest_path(version);
        let manifest = Manifest::load(&mpath).map_err(io_err(&mpath))?;
        Ok(Some(Published {
            version,
            path,
            source_point: manifest
                .as_ref()
                .map(Manifest::source_point)
                .unwrap_or_default(),
            clean: manifest.is_some_and(|m| m.clean),
        }))
    }

    fn lock(&self) -> Result<nix::fcntl::Flock<File>, SyncError> {
        let path = self.root.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, errno)| {
            SyncError::Io {
                path,
                source: errno.into(),
            }
        })
    }

    fn layout(&self) -> Result<Layout, SyncError> {
        let mut layout = Layout {
            published: self.published_version()?,
            ..Layout::default()
        };
        for item in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let item = item.map_err(io_err(&self.root))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
            if !is_dir {
                // A manifest temporary of an interrupted sync (the caller holds the lock, so
                // no sync is writing one): `stage_publish` and `build_spare` write theirs
                // again, and a "nothing changed" sync would otherwise never remove it (a
                // crash after publishing, with the first sync's spare half-built).
                if name
                    .strip_suffix(TMP_SUFFIX)
                    .is_some_and(|stem| stem.starts_with('v') && stem.ends_with(".manifest"))
                {
                    let p = item.path();
                    match fs::remove_file(&p) {
                        Err(err) if err.kind() != io::ErrorKind::NotFound => {
                            return Err(io_err(&p)(err));
                        }
                        _ => {}
                    }
                }
                continue;
            }
            if let Some(n) = name.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) {
                if Some(n) != layout.published {
                    layout.others.push(n);
                }
            } else if let Some(t) = name.strip_prefix("staging-") {
                let start = t.parse::<i128>().map(ts_from_nanos).unwrap_or_default();
                layout.staging.push((name.to_owned(), start));
            } else if name.starts_with("spare-") {
                // A spare slot whose build was interrupted (the caller holds the lock, so no
                // build is running): never named, never referenced.
                let p = item.path();
                remove_tree(&p).map_err(io_err(&p))?;
            }
        }
        layout.others.sort_unstable();
        Ok(layout)
    }

    fn write_state(&self, state: &State) -> Result<(), SyncError> {
        let data = serde_json::to_vec(state).expect("state serialises");
        write_durable(&self.root, "state.json", &data)
    }

    /// Moves the published version's source point forward (a "nothing changed" sync) without
    /// an fsync: if a crash loses or tears this write, `published` reads the previous
    /// `state.json` or, when it does not parse, the manifest header, both an older source
    /// point of the same unchanged version, so it is never reported fresher than it is.
    fn advance_state(&self, state: &State) -> Result<(), SyncError> {
        let data = serde_json::to_vec(state).expect("state serialises");
        let tmp = self.root.join(format!("state.json{TMP_SUFFIX}"));
        write_file(&tmp, &data).map_err(io_err(&tmp))?;
        fs::rename(&tmp, self.root.join("state.json")).map_err(io_err(&tmp))
    }

    fn write_manifest(&self, version: u64, manifest: &Manifest) -> Result<(), SyncError> {
        write_durable(
            &self.root,
            &format!("v{version}.manifest"),
            &manifest.encode(),
        )
    }

    /// Points `current` at `v<version>` atomically and durably.
    fn swap_current(&self, version: u64) -> Result<(), SyncError> {
        let tmp = self.root.join("current.tmp");
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("v{version}"), &tmp).map_err(io_err(&tmp))?;
        fs::rename(&tmp, self.current_path()).map_err(io_err(&tmp))?;
        fsync_dir(&self.root)
    }

    /// Brings the replica to the source's current state and publishes it atomically.
    /// Blocking (call from `spawn_blocking`). Safe after a crash mid-sync: leftovers are
    /// resumed or discarded, the published version is never modified.
    pub fn sync_from(&self, source: &Path, opts: &SyncOptions) -> Result<SyncReport, SyncError> {
        self.sync_with(&LocalSource { root: source }, opts)
    }

    /// A sync from the local tree `source` that does not walk it: the published version's
    /// manifest stands for the source, except for `changed` (relative paths that may have
    /// changed since the published version's source point, in any order, duplicates
    /// allowed), which are looked at again (see `changes.rs`). The caller vouches that
    /// nothing else changed; anything changed behind its back is found only by the next
    /// [`Self::sync_from`]. Without a published version (or its manifest) this is a
    /// `sync_from`.
    pub fn sync_changes_from(
        &self,
        source: &Path,
        changed: &[Vec<u8>],
        opts: &SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        let list = |published: Option<&Manifest>| {
            published
                .map(|m| changes::listing(source, m, changed))
                .transpose()
        };
        self.sync_scan(&LocalSource { root: source }, opts, Scan::Changes(&list))
    }

    /// A sync from the local tree `source` that follows its change journal: with a `cursor`
    /// the journal covers (and a published version), only the paths recorded since are
    /// looked at, as [`Self::sync_changes_from`] does; otherwise the source is walked.
    /// Returns the report and the journal's position taken before the source was looked at,
    /// the cursor of the next sync.
    pub fn sync_from_journal(
        &self,
        source: &Path,
        journal: &journal::ChangeJournal,
        cursor: Option<journal::Cursor>,
        opts: &SyncOptions,
    ) -> Result<(SyncReport, journal::Cursor), SyncError> {
        let position = std::cell::Cell::new(None);
        let list = |published: Option<&Manifest>| {
            let must = published.map(changes::must_look).unwrap_or_default();
            let dirs: HashSet<Vec<u8>> = published
                .map(changes::dirs_of)
                .unwrap_or_default()
                .into_iter()
                .collect();
            let cursor = cursor.filter(|_| published.is_some());
            let answer = changes::answer(source, journal, cursor, &must, &dirs)?;
            position.set(Some(answer.position));
            Ok(published
                .zip(answer.looked)
                .map(|(m, (looked, scan))| changes::listed(m, looked, scan)))
        };
        let report = self.sync_scan(&LocalSource { root: source }, opts, Scan::Changes(&list))?;
        let position = position
            .get()
            .expect("a sync that succeeded asked its lister");
        Ok((report, position))
    }

    /// One sync from any [`Source`]: this host's filesystem or a peer node.
    pub(crate) fn sync_with(
        &self,
        source: &dyn Source,
        opts: &SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        self.sync_scan(source, opts, Scan::Walk)
    }

    fn sync_scan(
        &self,
        source: &dyn Source,
        opts: &SyncOptions,
        scan: Scan<'_>,
    ) -> Result<SyncReport, SyncError> {
        let started_at = Utc::now();
        let mut phases = Phases::new();
        let _lock = self.lock()?;
        let source_name = source.describe();
        source
            .check_root()
            .map_err(|source_err| SyncError::SourceUnavailable {
                path: source_name.clone(),
                source: source_err,
            })?;
        let layout = self.layout()?;
        let pub_manifest = match layout.published {
            Some(v) => {
                let p = self.manifest_path(v);
                Manifest::load(&p).map_err(io_err(&p))?
            }
            None => None,
        };
        phases.mark("load");
        let scan_start = now_ts();
        let source_point = Utc::now();
        let racy_limit = ts_from_nanos(ts_nanos(scan_start) - opts.racy_window.as_nanos() as i128);

        let pub_path = layout.published.map(|v| self.version_path(v));
        let unavailable = |e: walk::WalkError| SyncError::SourceUnavailable {
            path: e.path,
            source: e.source,
        };
        let listed = match scan {
            Scan::Walk => None,
            Scan::Changes(list) => list(pub_manifest.as_ref())
                .map_err(unavailable)?
                .filter(|_| pub_manifest.is_some()),
        };
        // Nothing changed and nothing the last sync could not vouch for: the published
        // version is the source, without building its listing or comparing every entry.
        if let (Some(changes::Listing::Unchanged), Some(m), Some(version)) =
            (&listed, &pub_manifest, layout.published)
        {
            let totals = Totals {
                files: m.entries.len().saturating_sub(1) as u64,
                bytes: m.file_bytes(),
                walked: false,
                examined: 0,
            };
            return self.confirm_unchanged(
                version,
                source_point,
                started_at,
                totals,
                source,
                phases,
            );
        }
        let listed = listed.and_then(|l| match l {
            changes::Listing::Entries(src, scan) => Some((src, scan)),
            changes::Listing::Unchanged => None,
        });
        let (src, pub_walk, examined, walked) = match listed {
            Some((src, looked)) => {
                phases.mark("changes");
                (src, None, looked.looked_at + looked.walked, false)
            }
            None => {
                let (src, pub_walk) = source.walk_with(pub_path.as_deref());
                let src = src.map_err(unavailable)?;
                phases.mark("walk");
                let examined = src.entries.len() as u64;
                (src, pub_walk.and_then(Result::ok), examined, true)
            }
        };
        if !src.specials.is_empty() {
            tracing::warn!(
                source = %source_name.display(),
                count = src.specials.len(),
                first = %show_path(&src.specials[0]),
                "skipped {} special files (fifos, sockets, devices) in {}",
                src.specials.len(),
                source_name.display()
            );
        }
        let files_total = src.entries.len().saturating_sub(1) as u64;
        let bytes_total: u64 = src
            .entries
            .iter()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.size)
            .sum();

        // Tamper check of the published version.
        let tampered: Option<Vec<Vec<u8>>> = match (&pub_manifest, &pub_walk) {
            (Some(m), Some(w)) => Some(diff_published(m, w)),
            // A change-list sync trusts the published version (the next walk checks it).
            (Some(_), None) if !walked => Some(Vec::new()),
            _ => None,
        };
        let tampered_count = match &tampered {
            Some(t) => t.len() as u64,
            // A published version that cannot be walked or has no manifest is rebuilt.
            None => u64::from(layout.published.is_some()),
        };

        if let (Some(version), Some(m), Some(t)) = (layout.published, &pub_manifest, &tampered)
            && t.is_empty()
            && src.vanished == 0
            && let Some(cleared) = unchanged(&src, m, pub_path.as_deref(), source, racy_limit)
        {
            phases.mark("compare");
            if cleared {
                let mut m2 = m.clone();
                for e in &mut m2.entries {
                    if e.mtime < racy_limit {
                        e.flags &= !FLAG_RACY;
                    }
                }
                self.write_manifest(version, &m2)?;
            }
            let totals = Totals {
                files: files_total,
                bytes: bytes_total,
                walked,
                examined,
            };
            return self.confirm_unchanged(
                version,
                source_point,
                started_at,
                totals,
                source,
                phases,
            );
        }

        // Build a new version.
        phases.mark("compare");
        let tampered_paths = tampered.clone().unwrap_or_default();
        let (stg, base) = self.prepare_staging(&layout, pub_manifest.as_ref(), &tampered_paths)?;
        phases.mark("staging");
        let mut tampered_sorted = tampered_paths.clone();
        tampered_sorted.sort_unstable();
        let build = Build {
            src: source,
            stg: &stg,
            opts,
            racy_limit,
            base_read_only: base.read_only,
            base_block_size: base.block_size,
            // Only a published version the tamper check could vouch for.
            published: match (&pub_path, &pub_manifest, &tampered) {
                (Some(root), Some(manifest), Some(_)) => Some(PublishedVersion {
                    root: root.as_path(),
                    manifest,
                    tampered: &tampered_sorted,
                }),
                _ => None,
            },
            entries_written: AtomicU64::new(0),
            files_transferred: AtomicU64::new(0),
            bytes_transferred: AtomicU64::new(0),
            unclean: AtomicBool::new(src.vanished > 0),
        };
        let built = build.run(&src, base.entries, &mut phases)?;
        let clean = !build.unclean.load(Ordering::Relaxed);
        let files_transferred = build.files_transferred.load(Ordering::Relaxed);
        let bytes_transferred = build.bytes_transferred.load(Ordering::Relaxed);

        let version = layout.published.map_or(1, |v| v + 1);
        let manifest = Manifest {
            read_only: opts.read_only,
            block_size: opts.block_size as u64,
            source_point_us: source_point.timestamp_micros(),
            clean,
            entries: built.entries,
        };
        // The manifest and state go to temporary names first, so the one `syncfs` below
        // makes them durable together with the tree (no fsync of their own).
        let state = State {
            version,
            source_point,
            clean,
        };
        self.stage_publish(version, &manifest, &state)?;
        phases.mark("manifest");

        // The first sync also builds the spare slot (see the module doc), from the staging
        // tree while its `syncfs` runs: linking 20,000 files is CPU and metadata work that
        // overlaps the wait for the disk.
        let spare = version - 1;
        let want_spare =
            layout.published.is_none() && fs::symlink_metadata(self.version_path(spare)).is_err();

        // Durable before it is named a version.
        let stg_dir = File::open(&stg).map_err(io_err(&stg))?;
        let (synced, spare_built) = std::thread::scope(|scope| {
            let sync = scope.spawn(|| nix::unistd::syncfs(&stg_dir));
            let built =
                want_spare.then(|| self.build_spare(spare, &stg, &manifest, opts.delta_threshold));
            (sync.join().expect("syncfs does not panic"), built)
        });
        synced.map_err(|e| io_err(&stg)(e.into()))?;
        drop(stg_dir);
        phases.mark("syncfs");
        self.publish(&stg, version)?;
        phases.mark("publish");
        if let Some(built) = spare_built {
            // Optional: without a spare, the next sync links one from the published version.
            if let Err(err) = built.and_then(|()| self.finish_spare(spare)) {
                tracing::warn!(
                    replica = %self.root.display(),
                    "could not build the spare version of {}: {err}",
                    self.root.display()
                );
                let building = self.spare_building_path();
                let _ = remove_tree(&building);
            }
            phases.mark("spare");
        }

        // The old published version is now the retired base of the next sync: note what was
        // found tampered in it so that sync re-creates those entries.
        if let (Some(old), Some(mut m), Some(t)) = (layout.published, pub_manifest, tampered) {
            if !t.is_empty() {
                mark_dirty(&mut m, &t, pub_walk.as_ref());
                self.write_manifest(old, &m)?;
            }
        } else if let Some(old) = layout.published {
            // Unknown state: the next sync walks it instead.
            let p = self.manifest_path(old);
            let _ = fs::remove_file(&p);
        }
        self.gc_manifests()?;
        phases.mark("retire");
        phases.finish("new version");

        Ok(SyncReport {
            source_point,
            started_at,
            finished_at: Utc::now(),
            version,
            published_new_version: true,
            files_total,
            bytes_total,
            files_transferred,
            bytes_transferred,
            files_deleted: built.deleted,
            files_renamed: built.renamed,
            tampered: tampered_count,
            clean,
            wire_bytes: source.wire_bytes(),
            walked,
            examined,
        })
    }

    /// The end of a sync that found the source equal to published `version`: only
    /// `state.json` moves to the new source point.
    fn confirm_unchanged(
        &self,
        version: u64,
        source_point: DateTime<Utc>,
        started_at: DateTime<Utc>,
        totals: Totals,
        source: &dyn Source,
        mut phases: Phases,
    ) -> Result<SyncReport, SyncError> {
        self.advance_state(&State {
            version,
            source_point,
            clean: true,
        })?;
        phases.mark("state");
        phases.finish("unchanged");
        Ok(SyncReport {
            source_point,
            started_at,
            finished_at: Utc::now(),
            version,
            published_new_version: false,
            files_total: totals.files,
            bytes_total: totals.bytes,
            files_transferred: 0,
            bytes_transferred: 0,
            files_deleted: 0,
            files_renamed: 0,
            tampered: 0,
            clean: true,
            wire_bytes: source.wire_bytes(),
            walked: totals.walked,
            examined: totals.examined,
        })
    }

    /// Writes `v<version>.manifest.tmp` and `state.json.tmp` without syncing them: the
    /// caller's `syncfs` (same filesystem) makes their data durable with the tree's.
    fn stage_publish(
        &self,
        version: u64,
        manifest: &Manifest,
        state: &State,
    ) -> Result<(), SyncError> {
        let state_data = serde_json::to_vec(state).expect("state serialises");
        for (name, data) in [
            (
                format!("v{version}.manifest{TMP_SUFFIX}"),
                manifest.encode(),
            ),
            (format!("state.json{TMP_SUFFIX}"), state_data),
        ] {
            let tmp = self.root.join(name);
            write_file(&tmp, &data).map_err(io_err(&tmp))?;
        }
        Ok(())
    }

    /// Publishes the durable staging tree as `v<version>` (after `stage_publish` and a
    /// `syncfs`): renames the manifest and the tree into place, fsyncs the root so they
    /// exist under those names before anything points at them, then swaps `current` and
    /// `state.json` and fsyncs the root again. A crash in between leaves `current` on the
    /// previous complete version; `state.json` is only trusted when its version is the one
    /// `current` names, so it may be renamed in either order relative to `current`.
    fn publish(&self, stg: &Path, version: u64) -> Result<(), SyncError> {
        crate::failpoints::crash_point("sync::before_publish");
        let manifest_tmp = self.root.join(format!("v{version}.manifest{TMP_SUFFIX}"));
        fs::rename(&manifest_tmp, self.manifest_path(version)).map_err(io_err(&manifest_tmp))?;
        let dest = self.version_path(version);
        if fs::symlink_metadata(&dest).is_ok() {
            remove_tree(&dest).map_err(io_err(&dest))?;
        }
        fs::rename(stg, &dest).map_err(io_err(stg))?;
        fsync_dir(&self.root)?;
        crate::failpoints::crash_point("sync::before_swap");
        let tmp = self.root.join("current.tmp");
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("v{version}"), &tmp).map_err(io_err(&tmp))?;
        fs::rename(&tmp, self.current_path()).map_err(io_err(&tmp))?;
        let state_tmp = self.root.join(format!("state.json{TMP_SUFFIX}"));
        fs::rename(&state_tmp, self.root.join("state.json")).map_err(io_err(&state_tmp))?;
        fsync_dir(&self.root)?;
        crate::failpoints::crash_point("sync::after_publish");
        Ok(())
    }

    /// Removes manifests of versions that no longer exist.
    fn gc_manifests(&self) -> Result<(), SyncError> {
        for item in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let item = item.map_err(io_err(&self.root))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            // Also a leftover `stage_publish` temporary of a sync that did not publish.
            let stem = name.strip_suffix(TMP_SUFFIX).unwrap_or(name);
            if let Some(v) = stem
                .strip_suffix(".manifest")
                .and_then(|n| n.strip_prefix('v'))
                .and_then(|n| n.parse::<u64>().ok())
                && (stem.len() != name.len() || !self.version_path(v).is_dir())
            {
                let _ = fs::remove_file(item.path());
            }
        }
        Ok(())
    }

    /// Builds the spare slot next to the just-published `version` as a hard-link farm (see
    /// the module doc), when no other version exists.
    fn make_spare(
        &self,
        version: u64,
        manifest: &Manifest,
        copy_at_least: u64,
    ) -> Result<(), SyncError> {
        let Some(spare) = version.checked_sub(1) else {
            return Ok(());
        };
        if fs::symlink_metadata(self.version_path(spare)).is_ok() {
            return Ok(());
        }
        self.build_spare(spare, &self.version_path(version), manifest, copy_at_least)?;
        self.finish_spare(spare)
    }

    /// Where a spare slot is built before `finish_spare` names it.
    fn spare_building_path(&self) -> PathBuf {
        self.root.join(format!("spare-{}", std::process::id()))
    }

    /// Builds the spare slot `v<spare>` under a temporary name as a hard-link farm of the
    /// complete tree `from` (large files copied), and writes its manifest to a temporary
    /// name; `finish_spare` makes both durable and names them.
    fn build_spare(
        &self,
        spare: u64,
        from: &Path,
        manifest: &Manifest,
        copy_at_least: u64,
    ) -> Result<(), SyncError> {
        let building = self.spare_building_path();
        remove_tree(&building).map_err(io_err(&building))?;
        let spare_manifest =
            link_farm(from, &building, manifest, Some(copy_at_least)).map_err(io_err(&building))?;
        let tmp = self.root.join(format!("v{spare}.manifest{TMP_SUFFIX}"));
        write_file(&tmp, &spare_manifest.encode()).map_err(io_err(&tmp))?;
        Ok(())
    }

    /// Makes the spare built by `build_spare` durable (the copied large files must be on disk
    /// before a manifest vouches for them) and names it `v<spare>`.
    fn finish_spare(&self, spare: u64) -> Result<(), SyncError> {
        let building = self.spare_building_path();
        let dir = File::open(&building).map_err(io_err(&building))?;
        nix::unistd::syncfs(&dir).map_err(|e| io_err(&building)(e.into()))?;
        drop(dir);
        fs::rename(&building, self.version_path(spare)).map_err(io_err(&building))?;
        let tmp = self.root.join(format!("v{spare}.manifest{TMP_SUFFIX}"));
        fs::rename(&tmp, self.manifest_path(spare)).map_err(io_err(&tmp))?;
        fsync_dir(&self.root)
    }

    /// The retired version a new version is built from when no staging tree is left over:
    /// the newest with a manifest, else the newest (walked).
    fn retired_pick(&self, others: &[u64]) -> Option<u64> {
        others
            .iter()
            .rev()
            .copied()
            .find(|v| self.manifest_path(*v).is_file())
            .or_else(|| others.last().copied())
    }

    /// Picks and prepares the staging tree and its base (see the module doc).
    fn prepare_staging(
        &self,
        layout: &Layout,
        pub_manifest: Option<&Manifest>,
        tampered: &[Vec<u8>],
    ) -> Result<(PathBuf, Base), SyncError> {
        let now = now_ts();
        let fresh_name = format!("staging-{}", ts_nanos(now));
        let mut stg_choice: Option<(PathBuf, Base)> = None;

        // 1. A leftover staging tree from an interrupted sync: resume from it.
        let mut staging = layout.staging.clone();
        staging.sort_by_key(|(_, t)| *t);
        if let Some((name, start)) = staging.pop() {
            let path = self.root.join(&name);
            let base = walk_base(&path, Some(start))?;
            stg_choice = Some((path, base));
        }
        for (name, _) in staging {
            let p = self.root.join(name);
            remove_tree(&p).map_err(io_err(&p))?;
        }
        // 2. The retired version (the newest one with a manifest, else walked).
        let mut others = layout.others.clone();
        if stg_choice.is_none()
            && let Some(v) = self.retired_pick(&others)
        {
            others.retain(|o| *o != v);
            let from = self.version_path(v);
            let mpath = self.manifest_path(v);
            let loaded = Manifest::load(&mpath)
                .map_err(io_err(&mpath))?
                .map(Base::from_manifest);
            let path = self.root.join(&fresh_name);
            fs::rename(&from, &path).map_err(io_err(&from))?;
            let _ = fs::remove_file(&mpath);
            let base = match loaded {
                Some(base) => base,
                None => walk_base(&path, None)?,
            };
            stg_choice = Some((path, base));
        }
        for v in others {
            let p = self.version_path(v);
            remove_tree(&p).map_err(io_err(&p))?;
        }
        // 3. No spare: a hard-link farm of the published version, or an empty tree.
        let (stg, mut base) = match stg_choice {
            Some(choice) => choice,
            None => {
                let path = self.root.join(&fresh_name);
                match (layout.published, pub_manifest) {
                    (Some(v), Some(m)) => {
                        link_farm(&self.version_path(v), &path, m, None).map_err(io_err(&path))?;
                        (
                            path,
                            Base {
                                read_only: m.read_only,
                                block_size: m.block_size,
                                entries: m.clone().into_map(),
                            },
                        )
                    }
                    _ => {
                        fs::create_dir(&path).map_err(io_err(&path))?;
                        (
                            path,
                            Base {
                                read_only: false,
                                block_size: 0,
                                entries: HashMap::new(),
                            },
                        )
                    }
                }
            }
        };

        // Entries not to trust: flagged dirty, or tampered in the published version (which
        // may share inodes with this base). Remove them; they are re-created from the source.
        let mut dirty: Vec<Vec<u8>> = base
            .entries
            .values()
            .filter(|e| e.flags & FLAG_DIRTY != 0)
            .map(|e| e.path.clone())
            .chain(tampered.iter().cloned())
            .collect();
        dirty.sort_unstable();
        dirty.dedup();
        let mut last_removed: Option<Vec<u8>> = None;
        for p in dirty {
            if p.is_empty() {
                // The root itself: its metadata is always re-applied by the final dir pass.
                if let Some(e) = base.entries.get_mut(&p) {
                    e.flags &= !FLAG_DIRTY;
                }
                continue;
            }
            if last_removed.as_ref().is_some_and(|d| is_under(&p, d)) {
                continue;
            }
            let ap = abs(&stg, &p);
            ensure_writable(&abs(&stg, parent_of(&p)))?;
            remove_tree(&ap).map_err(io_err(&ap))?;
            base.entries.retain(|k, _| !is_under(k, &p));
            last_removed = Some(p);
        }

        // The build creates and removes entries in every directory it touches.
        let mut dirs: Vec<&Entry> = base
            .entries
            .values()
            .filter(|e| e.kind == Kind::Dir)
            .collect();
        dirs.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        for d in dirs {
            let have = disk_mode(d.mode, base.read_only);
            if have & 0o700 != 0o700 {
                let p = abs(&stg, &d.path);
                chmod(&p, have | 0o700).map_err(io_err(&p))?;
            }
        }
        Ok((stg, base))
    }

    /// Promotion: turns the published version into a plain writable tree at `dest` (which
    /// must not exist), restoring the source's modes, and removes the replica directory.
    /// Idempotent: if `dest` exists and the replica directory is gone, succeeds.
    pub fn promote_into(&self, dest: &Path) -> Result<(), SyncError> {
        if fs::symlink_metadata(dest).is_ok() {
            // Already moved (a re-run after a crash): finish removing the rest.
            return remove_tree(&self.root).map_err(io_err(&self.root));
        }
        if !self.root.is_dir() {
            return Err(SyncError::Io {
                path: self.root.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "replica directory is gone"),
            });
        }
        let lock = self.lock()?;
        let Some(version) = self.published_version()? else {
            return Err(SyncError::Io {
                path: self.current_path(),
                source: io::Error::new(io::ErrorKind::NotFound, "nothing is published"),
            });
        };
        let vpath = self.version_path(version);
        let mpath = self.manifest_path(version);
        match Manifest::load(&mpath).map_err(io_err(&mpath))? {
            Some(m) => {
                if m.read_only {
                    for e in m.entries.iter().filter(|e| e.kind != Kind::Symlink) {
                        let p = abs(&vpath, &e.path);
                        match chmod(&p, e.mode) {
                            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                            other => other.map_err(io_err(&p))?,
                        }
                    }
                }
            }
            None => {
                // Without a manifest the source modes are unknown: give the owner write.
                let walked = walk_trees(&[&vpath], false)
                    .pop()
                    .expect("one result")
                    .map_err(|e| io_err(&e.path)(e.source))?;
                for e in walked.entries.iter().filter(|e| e.kind != Kind::Symlink) {
                    let p = abs(&vpath, &e.path);
                    chmod(&p, e.mode | 0o200).map_err(io_err(&p))?;
                }
            }
        }
        fs::rename(&vpath, dest).map_err(io_err(dest))?;
        if let Some(parent) = dest.parent() {
            fsync_dir(parent)?;
        }
        crate::failpoints::crash_point("promote::after_move");
        drop(lock);
        remove_tree(&self.root).map_err(io_err(&self.root))
    }

    /// Demotion: takes an existing active tree `tree` (renamed, not copied) as the
    /// replica's published version, so later syncs only send differences.
    pub fn adopt(&self, tree: &Path, opts: &SyncOptions) -> Result<Published, SyncError> {
        let _lock = self.lock()?;
        let published = self.published_version()?;
        let version = published.map_or(1, |v| v + 1);
        let vpath = self.version_path(version);
        match fs::symlink_metadata(tree) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(SyncError::SourceUnavailable {
                    path: tree.to_path_buf(),
                    source: io::Error::other("not a directory"),
                });
            }
            Err(source) => {
                return Err(SyncError::SourceUnavailable {
                    path: tree.to_path_buf(),
                    source,
                });
            }
        }
        if fs::symlink_metadata(&vpath).is_ok() {
            remove_tree(&vpath).map_err(io_err(&vpath))?;
        }
        fs::rename(tree, &vpath).map_err(io_err(tree))?;
        fsync_dir(&self.root)?;
        let walked = walk_trees(&[&vpath], false)
            .pop()
            .expect("one result")
            .map_err(|e| io_err(&e.path)(e.source))?;
        let racy_limit = ts_from_nanos(ts_nanos(now_ts()) - opts.racy_window.as_nanos() as i128);
        let mut entries = Vec::with_capacity(walked.entries.len());
        for w in walked.entries {
            entries.push(Entry {
                flags: if w.kind == Kind::File && w.mtime >= racy_limit {
                    FLAG_RACY
                } else {
                    0
                },
                path: w.path,
                kind: w.kind,
                mode: w.mode,
                size: w.size,
                mtime: w.mtime,
                src_ino: 0,
                rep_ino: w.ino,
                target: w.target,
                blocks: Vec::new(),
            });
        }
        if opts.read_only {
            // Deepest first is not needed for modes, but keeps parents searchable until last.
            for e in entries.iter().rev().filter(|e| e.kind != Kind::Symlink) {
                let want = disk_mode(e.mode, true);
                if want != e.mode {
                    let p = abs(&vpath, &e.path);
                    chmod(&p, want).map_err(io_err(&p))?;
                }
            }
        }
        let source_point = Utc::now();
        let manifest = Manifest {
            read_only: opts.read_only,
            block_size: opts.block_size as u64,
            source_point_us: source_point.timestamp_micros(),
            clean: true,
            entries,
        };
        self.write_manifest(version, &manifest)?;
        self.swap_current(version)?;
        self.write_state(&State {
            version,
            source_point,
            clean: true,
        })?;
        self.gc_manifests()?;
        if published.is_none() {
            self.make_spare(version, &manifest, opts.delta_threshold)?;
        }
        Ok(Published {
            version,
            path: vpath,
            source_point,
            clean: true,
        })
    }

    /// Removes the replica directory and everything in it (write bits restored first).
    pub fn remove(&self) -> Result<(), SyncError> {
        remove_tree(&self.root).map_err(io_err(&self.root))
    }

    /// Test and audit helper: differences between the published tree and `source` (kind,
    /// content, mode with write bits masked when the version is read-only, mtime, symlink
    /// target), as human-readable lines. Empty means an exact copy.
    pub fn verify_against(&self, source: &Path) -> Result<Vec<String>, SyncError> {
        let Some(version) = self.published_version()? else {
            return Ok(vec!["nothing published".to_owned()]);
        };
        let vpath = self.version_path(version);
        let mpath = self.manifest_path(version);
        let read_only = Manifest::load(&mpath)
            .map_err(io_err(&mpath))?
            .is_none_or(|m| m.read_only);
        let mut walks = walk_trees(&[source, &vpath], false).into_iter();
        let src = walks.next().expect("one result per root").map_err(|e| {
            SyncError::SourceUnavailable {
                path: e.path,
                source: e.source,
            }
        })?;
        let rep = walks
            .next()
            .expect("one result per root")
            .map_err(|e| io_err(&e.path)(e.source))?;
        let mut diffs = Vec::new();
        let rmap: HashMap<&[u8], &WalkEntry> =
            rep.entries.iter().map(|e| (e.path.as_slice(), e)).collect();
        let smap: HashSet<&[u8]> = src.entries.iter().map(|e| e.path.as_slice()).collect();
        for s in &src.entries {
            let name = show_path(&s.path);
            let Some(r) = rmap.get(s.path.as_slice()) else {
                diffs.push(format!("missing: {name}"));
                continue;
            };
            if r.kind != s.kind {
                diffs.push(format!("kind: {name}"));
                continue;
            }
            if s.kind != Kind::Symlink && r.mode != disk_mode(s.mode, read_only) {
                diffs.push(format!("mode: {name} {:o} vs {:o}", r.mode, s.mode));
            }
            if r.mtime != s.mtime {
                diffs.push(format!("mtime: {name}"));
            }
            match s.kind {
                Kind::Symlink if r.target != s.target => diffs.push(format!("target: {name}")),
                Kind::File => {
                    let a = copy::hash_file(&abs(source, &s.path));
                    let b = copy::hash_file(&abs(&vpath, &s.path));
                    match (a, b) {
                        (Ok(a), Ok(b)) if a == b => {}
                        _ => diffs.push(format!("content: {name}")),
                    }
                }
                _ => {}
            }
        }
        for r in &rep.entries {
            if !smap.contains(r.path.as_slice()) {
                diffs.push(format!("extra: {}", show_path(&r.path)));
            }
        }
        Ok(diffs)
    }
}

/// Suffix of files written before they are renamed into place.
const TMP_SUFFIX: &str = ".tmp";

/// Creates or truncates `path` and writes `data` (not synced).
fn write_file(path: &Path, data: &[u8]) -> io::Result<File> {
    use std::io::Write;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    Ok(f)
}

/// Writes `dir/name` with tmp + fsync + rename + fsync(dir).
fn write_durable(dir: &Path, name: &str, data: &[u8]) -> Result<(), SyncError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let result = (|| {
        write_file(&tmp, data)?.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        File::open(dir)?.sync_all()
    })();
    result.map_err(io_err(&tmp))
}

fn fsync_dir(dir: &Path) -> Result<(), SyncError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

fn ensure_writable(dir: &Path) -> Result<(), SyncError> {
    let meta = fs::symlink_metadata(dir).map_err(io_err(dir))?;
    if meta.is_dir() && meta.mode() & 0o700 != 0o700 {
        chmod(dir, (meta.mode() & 0o7777) | 0o700).map_err(io_err(dir))?;
    }
    Ok(())
}

/// A base from walking a tree whose manifest is unknown. With `started`, entries changed at
/// or after it (ctime) were written by an interrupted sync and are compared before trusted.
fn walk_base(path: &Path, started: Option<Ts>) -> Result<Base, SyncError> {
    let walked = walk_trees(&[path], false)
        .pop()
        .expect("one result")
        .map_err(|e| io_err(&e.path)(e.source))?;
    let mut entries = HashMap::with_capacity(walked.entries.len());
    for w in walked.entries {
        // An interrupted sync's temporary: not part of any version.
        let name = w.path.rsplit(|&b| b == b'/').next().unwrap_or(&[]);
        if name.starts_with(walk::TMP_PREFIX) {
            let p = abs(path, &w.path);
            remove_tree(&p).map_err(io_err(&p))?;
            continue;
        }
        let suspect = started.is_some_and(|t| w.ctime >= t);
        entries.insert(
            w.path.clone(),
            Entry {
                flags: if suspect && w.kind == Kind::File {
                    FLAG_RACY
                } else {
                    0
                },
                path: w.path,
                kind: w.kind,
                mode: w.mode,
                size: w.size,
                mtime: w.mtime,
                src_ino: 0,
                rep_ino: w.ino,
                target: w.target,
                blocks: Vec::new(),
            },
        );
    }
    // Children of a removed temporary directory were listed too.
    let removed: Vec<Vec<u8>> = entries
        .keys()
        .filter(|k| fs::symlink_metadata(abs(path, k)).is_err())
        .cloned()
        .collect();
    for k in removed {
        entries.remove(&k);
    }
    Ok(Base {
        entries,
        // Walked modes are the modes on disk.
        read_only: false,
        block_size: 0,
    })
}

/// Builds `to` as a hard-link farm of the version `from` described by `manifest`: the same
/// directories (own inodes, same modes and mtimes) and one link per file and symlink.
fn link_farm(
    from: &Path,
    to: &Path,
    manifest: &Manifest,
    copy_at_least: Option<u64>,
) -> io::Result<Manifest> {
    let mut out = manifest.clone();
    fs::create_dir(to)?;
    for e in &mut out.entries {
        if e.path.is_empty() {
            continue;
        }
        let dst = abs(to, &e.path);
        match e.kind {
            Kind::Dir => fs::create_dir(&dst)?,
            // Large files get their own copy: their first block delta then patches it in
            // place instead of duplicating it first (see the module doc).
            Kind::File if copy_at_least.is_some_and(|t| e.size >= t) => {
                e.rep_ino = copy::duplicate(
                    &abs(from, &e.path),
                    &dst,
                    disk_mode(e.mode, manifest.read_only),
                    e.mtime,
                )?;
            }
            // `link(2)` does not follow a symlink: the link itself is shared.
            Kind::File | Kind::Symlink => fs::hard_link(abs(from, &e.path), &dst)?,
        }
    }
    for e in out.entries.iter().rev().filter(|e| e.kind == Kind::Dir) {
        let dst = abs(to, &e.path);
        chmod(&dst, disk_mode(e.mode, manifest.read_only))?;
        set_mtime(&dst, e.mtime)?;
    }
    Ok(out)
}

/// Tamper check: paths of the published walk that differ from its manifest (or exist in only
/// one of them).
fn diff_published(m: &Manifest, w: &WalkResult) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    let (a, b) = (&m.entries, &w.entries);
    while i < a.len() || j < b.len() {
        let ord = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.path.cmp(&y.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                out.push(a[i].path.clone());
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j].path.clone());
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&a[i], &b[j]);
                let same = x.kind == y.kind
                    && x.rep_ino == y.ino
                    && x.mtime == y.mtime
                    && (x.kind != Kind::File || x.size == y.size)
                    && (x.kind == Kind::Symlink || disk_mode(x.mode, m.read_only) == y.mode)
                    && x.target == y.target;
                if !same {
                    out.push(x.path.clone());
                }
                i += 1;
                j += 1;
            }
        }
    }
    out.extend(w.specials.iter().cloned());
    out
}

/// Flags `paths` dirty in `m` (the published manifest about to be retired); paths the
/// manifest does not know (added behind the engine's back) get a dirty placeholder so the
/// sync that reuses the version removes them.
fn mark_dirty(m: &mut Manifest, paths: &[Vec<u8>], walk: Option<&WalkResult>) {
    let set: HashSet<&[u8]> = paths.iter().map(Vec::as_slice).collect();
    for e in &mut m.entries {
        if set.contains(e.path.as_slice()) {
            e.flags |= FLAG_DIRTY;
        }
    }
    let known: HashSet<Vec<u8>> = m.entries.iter().map(|e| e.path.clone()).collect();
    for p in paths {
        if known.contains(p) {
            continue;
        }
        let kind = walk
            .and_then(|w| w.entries.iter().find(|e| &e.path == p))
            .map_or(Kind::File, |e| e.kind);
        m.entries.push(Entry {
            path: p.clone(),
            kind,
            flags: FLAG_DIRTY,
            mode: 0,
            size: 0,
            mtime: Ts::default(),
            src_ino: 0,
            rep_ino: 0,
            target: Vec::new(),
            blocks: Vec::new(),
        });
    }
    m.entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
}

/// `Some(cleared_racy)` when the source equals the published manifest (racy entries compared
/// by content); `None` when something changed.
fn unchanged(
    src: &WalkResult,
    m: &Manifest,
    pub_path: Option<&Path>,
    source: &dyn Source,
    racy_limit: Ts,
) -> Option<bool> {
    if src.entries.len() != m.entries.len() {
        return None;
    }
    let mut cleared = false;
    for (s, e) in src.entries.iter().zip(&m.entries) {
        let same = s.path == e.path
            && s.kind == e.kind
            && e.flags & FLAG_DIRTY == 0
            && s.mtime == e.mtime
            && s.target == e.target
            && (s.kind != Kind::File || s.size == e.size)
            && (s.kind == Kind::Symlink || s.mode == e.mode);
        if !same {
            return None;
        }
        if e.flags & FLAG_RACY != 0 {
            let pub_path = pub_path?;
            let a = source.hash(&s.path).ok()?;
            let b = copy::hash_file(&abs(pub_path, &e.path)).ok()?;
            if a != b {
                return None;
            }
            if e.mtime < racy_limit {
                cleared = true;
            }
        }
    }
    Some(cleared)
}

/// What a build produced besides counters.
struct Built {
    entries: Vec<Entry>,
    deleted: u64,
    renamed: u64,
}

/// The published version as a build sees it: a local copy of whatever it holds as the
/// source still has it.
struct PublishedVersion<'a> {
    /// `v<N>`.
    root: &'a Path,
    /// Its manifest (entries sorted by path).
    manifest: &'a Manifest,
    /// Its entries changed behind the engine's back (sorted): never linked.
    tampered: &'a [Vec<u8>],
}

/// One build of a staging tree into the next version.
struct Build<'a> {
    src: &'a dyn Source,
    stg: &'a Path,
    opts: &'a SyncOptions,
    racy_limit: Ts,
    base_read_only: bool,
    base_block_size: u64,
    published: Option<PublishedVersion<'a>>,
    entries_written: AtomicU64,
    files_transferred: AtomicU64,
    bytes_transferred: AtomicU64,
    unclean: AtomicBool,
}

impl Build<'_> {
    /// Counts one written entry and applies the test knobs.
    fn written(&self) -> Result<(), SyncError> {
        let n = self.entries_written.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some((after, pause)) = self.opts.pause_after_entries
            && n == after
        {
            // Kill tests wait for this line to know the sync is in mid-flight.
            tracing::info!(
                entries = n,
                "sync paused after {n} entries for {pause:?} (sync_pause_after_entries)"
            );
            std::thread::sleep(pause);
        }
        if self.opts.fail_after_entries.is_some_and(|after| n >= after) {
            return Err(SyncError::Io {
                path: self.stg.to_path_buf(),
                source: io::Error::other("injected failure (fail_after_entries)"),
            });
        }
        Ok(())
    }

    fn have_mode(&self, e: &Entry) -> u32 {
        disk_mode(e.mode, self.base_read_only)
    }

    fn want_mode(&self, s: &WalkEntry) -> u32 {
        disk_mode(s.mode, self.opts.read_only)
    }

    fn run(
        &self,
        src: &WalkResult,
        mut b: HashMap<Vec<u8>, Entry>,
        phases: &mut Phases,
    ) -> Result<Built, SyncError> {
        let s = &src.entries;
        let s_index: HashMap<&[u8], usize> = s
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.as_slice(), i))
            .collect();
        let stg = self.stg;
        let mut renamed: u64 = 0;
        let mut deleted: u64 = 0;

        // Directory renames (by source inode), shallowest first; the base is re-keyed.
        for _ in 0..MAX_DIR_RENAMES {
            let vanished: HashMap<u64, Vec<u8>> = b
                .values()
                .filter(|e| e.kind == Kind::Dir && e.src_ino != 0 && !e.path.is_empty())
                .filter(|e| {
                    s_index
                        .get(e.path.as_slice())
                        .is_none_or(|&i| s[i].kind != Kind::Dir)
                })
                .map(|e| (e.src_ino, e.path.clone()))
                .collect();
            if vanished.is_empty() {
                break;
            }
            let found = s.iter().find_map(|n| {
                if n.kind != Kind::Dir || b.contains_key(&n.path) {
                    return None;
                }
                let old = vanished.get(&n.ino)?;
                if is_under(&n.path, old) {
                    return None;
                }
                // Every ancestor must be (or become) a directory.
                let mut p = parent_of(&n.path);
                while !p.is_empty() {
                    if b.get(p).is_some_and(|e| e.kind != Kind::Dir) {
                        return None;
                    }
                    p = parent_of(p);
                }
                Some((old.clone(), n.path.clone()))
            });
            let Some((old, new)) = found else { break };
            let parent = abs(stg, parent_of(&new));
            fs::create_dir_all(&parent).map_err(io_err(&parent))?;
            ensure_writable(&parent)?;
            ensure_writable(&abs(stg, parent_of(&old)))?;
            if fs::rename(abs(stg, &old), abs(stg, &new)).is_err() {
                break;
            }
            let moved: Vec<Vec<u8>> = b.keys().filter(|k| is_under(k, &old)).cloned().collect();
            for k in moved {
                let mut e = b.remove(&k).expect("listed key");
                let mut nk = new.clone();
                nk.extend_from_slice(&k[old.len()..]);
                e.path = nk.clone();
                b.insert(nk, e);
            }
            renamed += 1;
        }

        // Kind changes (and new symlink targets): remove the old entry.
        let mut changed_kind: Vec<Vec<u8>> = b
            .values()
            .filter(|e| !e.path.is_empty())
            .filter(|e| {
                s_index.get(e.path.as_slice()).is_some_and(|&i| {
                    s[i].kind != e.kind || (e.kind == Kind::Symlink && s[i].target != e.target)
                })
            })
            .map(|e| e.path.clone())
            .collect();
        changed_kind.sort_unstable();
        let mut last: Option<Vec<u8>> = None;
        for p in changed_kind {
            if last.as_ref().is_some_and(|d| is_under(&p, d)) {
                continue;
            }
            let ap = abs(stg, &p);
            remove_tree(&ap).map_err(io_err(&ap))?;
            let before = b.len();
            b.retain(|k, _| !is_under(k, &p));
            // Descendants that the source no longer has count as deleted.
            deleted += (before - b.len()).saturating_sub(1) as u64;
            last = Some(p);
        }

        // New directories, parents first.
        for n in s
            .iter()
            .filter(|e| e.kind == Kind::Dir && !e.path.is_empty())
        {
            if b.contains_key(&n.path) {
                continue;
            }
            let p = abs(stg, &n.path);
            match fs::create_dir(&p) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
                Err(err) => return Err(io_err(&p)(err)),
            }
            self.files_transferred.fetch_add(1, Ordering::Relaxed);
            self.written()?;
        }

        // File and symlink renames (by source inode, same size and mtime).
        let mut vanished_files: HashMap<u64, Vec<u8>> = b
            .values()
            .filter(|e| e.kind != Kind::Dir && e.src_ino != 0 && e.flags & FLAG_DIRTY == 0)
            .filter(|e| !s_index.contains_key(e.path.as_slice()))
            .map(|e| (e.src_ino, e.path.clone()))
            .collect();
        if !vanished_files.is_empty() {
            for n in s.iter().filter(|e| e.kind != Kind::Dir) {
                if b.contains_key(&n.path) {
                    continue;
                }
                let Some(old) = vanished_files.get(&n.ino) else {
                    continue;
                };
                let oe = &b[old];
                if oe.kind != n.kind
                    || oe.size != n.size
                    || oe.mtime != n.mtime
                    || oe.target != n.target
                {
                    continue;
                }
                let old = vanished_files.remove(&n.ino).expect("present");
                let from = abs(stg, &old);
                let to = abs(stg, &n.path);
                ensure_writable(&abs(stg, parent_of(&old)))?;
                if fs::rename(&from, &to).is_ok() {
                    let mut e = b.remove(&old).expect("present");
                    e.path = n.path.clone();
                    b.insert(n.path.clone(), e);
                    renamed += 1;
                }
            }
        }

        // Deletions: what the base has and the source does not.
        let mut gone: Vec<Vec<u8>> = b
            .keys()
            .filter(|k| !k.is_empty() && !s_index.contains_key(k.as_slice()))
            .cloned()
            .collect();
        gone.sort_unstable();
        let mut last: Option<Vec<u8>> = None;
        for p in gone {
            b.remove(&p);
            deleted += 1;
            if last.as_ref().is_some_and(|d| is_under(&p, d)) {
                continue;
            }
            let ap = abs(stg, &p);
            remove_tree(&ap).map_err(io_err(&ap))?;
            last = Some(p);
        }

        // Files and symlinks: decide, then write on two threads, largest first.
        let mut work: Vec<(usize, Action)> = Vec::new();
        for (i, n) in s.iter().enumerate() {
            if n.kind == Kind::Dir {
                continue;
            }
            let action = match b.get(&n.path) {
                None => Action::New,
                Some(e) if n.kind == Kind::Symlink => {
                    if e.mtime != n.mtime {
                        Action::New
                    } else {
                        continue;
                    }
                }
                Some(e) if e.size != n.size || e.mtime != n.mtime || e.flags & FLAG_DIRTY != 0 => {
                    Action::Update
                }
                Some(e) if e.flags & FLAG_RACY != 0 => Action::Verify,
                Some(e) if self.have_mode(e) != self.want_mode(n) => Action::Chmod,
                Some(_) => continue,
            };
            work.push((i, action));
        }
        // The base is the version before the published one, so what the previous sync
        // wrote differs from it too; the published version has those files as the source
        // still has them, and a link costs no data (nor a request to a peer).
        phases.mark("plan");
        let mut linked = HashMap::new();
        if self.published.is_some() {
            let mut rest = Vec::with_capacity(work.len());
            for (i, action) in work {
                match action {
                    Action::New | Action::Update => match self.link_published(&s[i])? {
                        Some(outcome) => {
                            linked.insert(i, outcome);
                        }
                        None => rest.push((i, action)),
                    },
                    Action::Verify | Action::Chmod => rest.push((i, action)),
                }
            }
            work = rest;
            phases.mark("link");
        }
        work.sort_by_key(|(i, _)| std::cmp::Reverse(s[*i].size));
        let mut outcomes = self.run_work(s, &b, &work)?;
        outcomes.extend(linked);
        phases.mark("copy");

        // Directory metadata, deepest first (a child's changes move its parent's mtime).
        let mut dir_ino: HashMap<usize, u64> = HashMap::new();
        for (i, n) in s.iter().enumerate().rev() {
            if n.kind != Kind::Dir {
                continue;
            }
            let p = abs(stg, &n.path);
            let meta = fs::symlink_metadata(&p).map_err(io_err(&p))?;
            let want = self.want_mode(n);
            if meta.mode() & 0o7777 != want {
                chmod(&p, want).map_err(io_err(&p))?;
                let counted_new = !b.contains_key(&n.path) && !n.path.is_empty();
                let mode_changed = b
                    .get(&n.path)
                    .is_some_and(|e| self.have_mode(e) & 0o7777 != want);
                if mode_changed && !counted_new {
                    self.files_transferred.fetch_add(1, Ordering::Relaxed);
                }
            }
            if walk::ts_mtime(&meta) != n.mtime {
                set_mtime(&p, n.mtime).map_err(io_err(&p))?;
            }
            dir_ino.insert(i, meta.ino());
        }
        phases.mark("dirs");

        // The new manifest, in source order.
        let mut entries = Vec::with_capacity(s.len());
        // Base entries are moved out (each source path occurs once), not cloned.
        for (i, n) in s.iter().enumerate() {
            let base = b.remove(&n.path);
            let entry = match n.kind {
                Kind::Dir => Some(Entry {
                    path: n.path.clone(),
                    kind: Kind::Dir,
                    flags: 0,
                    mode: n.mode,
                    size: 0,
                    mtime: n.mtime,
                    src_ino: n.ino,
                    rep_ino: dir_ino.get(&i).copied().unwrap_or(0),
                    target: Vec::new(),
                    blocks: Vec::new(),
                }),
                _ => match outcomes.get(&i) {
                    Some(Outcome::Vanished) => None,
                    Some(Outcome::Written(w, dirty)) => Some(Entry {
                        path: n.path.clone(),
                        kind: n.kind,
                        flags: if *dirty {
                            FLAG_DIRTY
                        } else if w.mtime >= self.racy_limit && n.kind == Kind::File {
                            FLAG_RACY
                        } else {
                            0
                        },
                        mode: n.mode,
                        size: w.size,
                        mtime: w.mtime,
                        src_ino: n.ino,
                        rep_ino: w.rep_ino,
                        target: n.target.clone(),
                        blocks: w.blocks.clone(),
                    }),
                    Some(Outcome::Keep { rep_ino }) => base.map(|e| Entry {
                        rep_ino: *rep_ino,
                        ..self.carried(e, n)
                    }),
                    None => base.map(|e| self.carried(e, n)),
                },
            };
            if let Some(e) = entry {
                entries.push(e);
            }
        }
        phases.mark("entries");
        Ok(Built {
            entries,
            deleted,
            renamed,
        })
    }

    /// The published version's copy of regular file `n` and its manifest entry, when that
    /// copy is trusted to equal the source: its entry has the source's size and mtime and is
    /// neither racy, dirty nor tampered, its block hashes are of this sync's block size, and
    /// the inode on disk is still the one the entry names, with the mode the new version
    /// wants. Such a copy is never written in place (see the module doc), so it can be
    /// linked or read from instead of the source.
    fn published_copy(&self, n: &WalkEntry) -> Option<(PathBuf, &Entry)> {
        let published = self.published.as_ref()?;
        if n.kind != Kind::File
            || published.manifest.block_size != self.opts.block_size as u64
            || published
                .tampered
                .binary_search_by(|t| t.as_slice().cmp(&n.path))
                .is_ok()
        {
            return None;
        }
        let entries = &published.manifest.entries;
        let at = entries
            .binary_search_by(|e| e.path.as_slice().cmp(&n.path))
            .ok()?;
        let e = &entries[at];
        if e.kind != Kind::File
            || e.flags & (FLAG_RACY | FLAG_DIRTY) != 0
            || e.size != n.size
            || e.mtime != n.mtime
        {
            return None;
        }
        let from = abs(published.root, &n.path);
        let meta = fs::symlink_metadata(&from).ok()?;
        let same = meta.is_file()
            && meta.ino() == e.rep_ino
            && meta.len() == n.size
            && walk::ts_mtime(&meta) == n.mtime
            && meta.mode() & 0o7777 == self.want_mode(n);
        same.then_some((from, e))
    }

    /// Links the published version's copy of regular file `n` into the staging tree when
    /// [`Self::published_copy`] trusts it. Large files are left to [`Self::try_write`]: they
    /// keep a copy of their own in each slot so block deltas patch them in place (see the
    /// module doc), and a link would make the next delta duplicate them whole. `None`: not
    /// linked.
    fn link_published(&self, n: &WalkEntry) -> Result<Option<Outcome>, SyncError> {
        if n.size >= self.opts.delta_threshold {
            return Ok(None);
        }
        let Some((from, e)) = self.published_copy(n) else {
            return Ok(None);
        };
        let dp = abs(self.stg, &n.path);
        match fs::remove_file(&dp) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(SyncError::Io {
                    path: dp,
                    source: err,
                });
            }
            _ => {}
        }
        if fs::hard_link(&from, &dp).is_err() {
            // Too many links, another filesystem: a copy does the same job.
            return Ok(None);
        }
        self.written()?;
        Ok(Some(Outcome::Written(
            Written {
                size: e.size,
                mtime: e.mtime,
                rep_ino: e.rep_ino,
                blocks: e.blocks.clone(),
                bytes: 0,
            },
            false,
        )))
    }

    /// A base entry kept as it is, with the source's current identity.
    fn carried(&self, e: Entry, n: &WalkEntry) -> Entry {
        let blocks_valid = self.base_block_size == self.opts.block_size as u64;
        Entry {
            path: if e.path == n.path {
                e.path
            } else {
                n.path.clone()
            },
            kind: e.kind,
            flags: if e.mtime >= self.racy_limit && e.kind == Kind::File {
                FLAG_RACY
            } else {
                0
            },
            mode: n.mode,
            size: e.size,
            mtime: e.mtime,
            src_ino: n.ino,
            rep_ino: e.rep_ino,
            target: e.target,
            blocks: if blocks_valid { e.blocks } else { Vec::new() },
        }
    }

    /// Splits the work into units for the copy threads: one entry each, except runs of
    /// small whole-file copies, which go to the source as batches when it prefers them.
    fn units<'w>(
        &self,
        s: &[WalkEntry],
        work: &'w [(usize, Action)],
    ) -> Vec<&'w [(usize, Action)]> {
        let batch = self.src.batch_size().max(1);
        let batchable = |&(i, action): &(usize, Action)| {
            s[i].kind == Kind::File
                && s[i].size < self.opts.delta_threshold
                && matches!(action, Action::New | Action::Update)
        };
        let mut units = Vec::new();
        let mut start = 0;
        while start < work.len() {
            let mut end = start + 1;
            if batch > 1 && batchable(&work[start]) {
                let mut bytes = s[work[start].0].size;
                while end < work.len()
                    && end - start < batch
                    && bytes < BATCH_BYTES
                    && batchable(&work[end])
                {
                    bytes += s[work[end].0].size;
                    end += 1;
                }
            }
            units.push(&work[start..end]);
            start = end;
        }
        units
    }

    fn run_work(
        &self,
        s: &[WalkEntry],
        b: &HashMap<Vec<u8>, Entry>,
        work: &[(usize, Action)],
    ) -> Result<HashMap<usize, Outcome>, SyncError> {
        let units = self.units(s, work);
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<HashMap<usize, Outcome>> = Mutex::new(HashMap::new());
        let first_error: Mutex<Option<SyncError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..COPY_THREADS {
                scope.spawn(|| {
                    let mut local = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&unit) = units.get(k) else {
                            break;
                        };
                        let done = match unit {
                            [(i, action)] => self
                                .do_one(&s[*i], b.get(&s[*i].path), *action)
                                .map(|outcome| local.push((*i, outcome))),
                            batch => self.do_batch(s, b, batch, &mut local),
                        };
                        if let Err(err) = done {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .expect("error slot lock")
                                .get_or_insert(err);
                            break;
                        }
                    }
                    results.lock().expect("results lock").extend(local);
                });
            }
        });
        if let Some(err) = first_error.into_inner().expect("error slot lock") {
            return Err(err);
        }
        Ok(results.into_inner().expect("results lock"))
    }

    /// Copies a batch of small files with one request to the source. A file that changed
    /// while it was read goes through [`Self::write_file`] (retry, then unchecked copy).
    fn do_batch(
        &self,
        s: &[WalkEntry],
        b: &HashMap<Vec<u8>, Entry>,
        batch: &[(usize, Action)],
        out: &mut Vec<(usize, Outcome)>,
    ) -> Result<(), SyncError> {
        let dsts: Vec<PathBuf> = batch
            .iter()
            .map(|(i, _)| abs(self.stg, &s[*i].path))
            .collect();
        for dp in &dsts {
            match fs::remove_file(dp) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(io_err(dp)(err)),
                _ => {}
            }
        }
        let items: Vec<BatchItem<'_>> = batch
            .iter()
            .zip(&dsts)
            .map(|((i, _), dp)| BatchItem {
                rel: &s[*i].path,
                dst: dp,
                mode: self.want_mode(&s[*i]),
                check: true,
            })
            .collect();
        let results = self.src.copy_batch(&items);
        for (((i, _), dp), result) in batch.iter().zip(&dsts).zip(results) {
            let n = &s[*i];
            let outcome = match result {
                Ok(w) => Outcome::Written(w, false),
                Err(CopyError::Changed) => {
                    self.write_file(n, b.get(&n.path), dp, self.want_mode(n))?
                }
                Err(CopyError::Vanished) => {
                    self.unclean.store(true, Ordering::Relaxed);
                    remove_tree(dp).map_err(io_err(dp))?;
                    Outcome::Vanished
                }
                Err(CopyError::Source(path, source)) => {
                    return Err(SyncError::SourceUnavailable { path, source });
                }
                Err(CopyError::Replica(path, source)) => {
                    return Err(SyncError::Io { path, source });
                }
            };
            if let Outcome::Written(w, _) = &outcome {
                self.bytes_transferred.fetch_add(w.bytes, Ordering::Relaxed);
            }
            self.files_transferred.fetch_add(1, Ordering::Relaxed);
            self.written()?;
            out.push((*i, outcome));
        }
        Ok(())
    }

    fn do_one(
        &self,
        n: &WalkEntry,
        base: Option<&Entry>,
        action: Action,
    ) -> Result<Outcome, SyncError> {
        let dp = abs(self.stg, &n.path);
        let want = self.want_mode(n);
        let outcome = match (n.kind, action) {
            (Kind::Symlink, _) => {
                let _ = fs::remove_file(&dp);
                let ino = copy::make_symlink(&n.target, &dp, n.mtime).map_err(io_err(&dp))?;
                Outcome::Written(
                    Written {
                        size: n.size,
                        mtime: n.mtime,
                        rep_ino: ino,
                        blocks: Vec::new(),
                        bytes: 0,
                    },
                    false,
                )
            }
            (_, Action::Chmod) => {
                let meta = fs::symlink_metadata(&dp).map_err(io_err(&dp))?;
                let ino = if meta.nlink() > 1 {
                    copy::unshare(&dp).map_err(io_err(&dp))?
                } else {
                    meta.ino()
                };
                chmod(&dp, want).map_err(io_err(&dp))?;
                Outcome::Keep { rep_ino: ino }
            }
            (_, Action::Verify) => {
                let a = self.src.hash(&n.path);
                let c = copy::hash_file(&dp);
                match (a, c) {
                    (Ok(a), Ok(c)) if a == c => {
                        let meta = fs::symlink_metadata(&dp).map_err(io_err(&dp))?;
                        let mut ino = meta.ino();
                        if meta.mode() & 0o7777 != want {
                            if meta.nlink() > 1 {
                                ino = copy::unshare(&dp).map_err(io_err(&dp))?;
                            }
                            chmod(&dp, want).map_err(io_err(&dp))?;
                        }
                        return Ok(Outcome::Keep { rep_ino: ino });
                    }
                    _ => self.write_file(n, base, &dp, want)?,
                }
            }
            (_, Action::New | Action::Update) => self.write_file(n, base, &dp, want)?,
        };
        if let Outcome::Written(w, _) = &outcome {
            self.bytes_transferred.fetch_add(w.bytes, Ordering::Relaxed);
        }
        self.files_transferred.fetch_add(1, Ordering::Relaxed);
        self.written()?;
        Ok(outcome)
    }

    /// Copies or delta-updates one file. A source that changes while it is read is
    /// retried once; then the copy is kept as read, flagged dirty, and the sync is not clean.
    fn write_file(
        &self,
        n: &WalkEntry,
        base: Option<&Entry>,
        dp: &Path,
        want: u32,
    ) -> Result<Outcome, SyncError> {
        for (attempt, check) in [true, true, false].into_iter().enumerate() {
            match self.try_write(n, base, dp, want, check) {
                Ok(w) => return Ok(Outcome::Written(w, !check)),
                Err(CopyError::Changed) => {
                    if attempt == 1 {
                        self.unclean.store(true, Ordering::Relaxed);
                    }
                }
                Err(CopyError::Vanished) => {
                    self.unclean.store(true, Ordering::Relaxed);
                    remove_tree(dp).map_err(io_err(dp))?;
                    return Ok(Outcome::Vanished);
                }
                Err(CopyError::Source(path, source)) => {
                    return Err(SyncError::SourceUnavailable { path, source });
                }
                Err(CopyError::Replica(path, source)) => {
                    return Err(SyncError::Io { path, source });
                }
            }
        }
        // Only an unchecked copy reports `Changed`, which it never does.
        self.unclean.store(true, Ordering::Relaxed);
        remove_tree(dp).map_err(io_err(dp))?;
        Ok(Outcome::Vanished)
    }

    fn try_write(
        &self,
        n: &WalkEntry,
        base: Option<&Entry>,
        dp: &Path,
        want: u32,
        check: bool,
    ) -> Result<Written, CopyError> {
        let big = n.size >= self.opts.delta_threshold;
        let existing = base.filter(|e| e.kind == Kind::File);
        if big && existing.is_some() && dp.is_file() {
            let trusted = existing.filter(|_| self.base_block_size == self.opts.block_size as u64);
            // The published version already holds the source's content with its block
            // hashes (the previous sync's delta, which the base lacks): the differing blocks
            // come from that copy, without reading and hashing the whole source again.
            if let Some((from, e)) = self.published_copy(n)
                && e.blocks.len() as u64 == e.size.div_ceil(self.opts.block_size as u64)
            {
                return copy::delta_from_copy(&from, e, dp, want, self.opts.block_size, trusted);
            }
            return self
                .src
                .delta_file(&n.path, dp, want, self.opts.block_size, trusted, check);
        }
        match fs::remove_file(dp) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(CopyError::Replica(dp.to_path_buf(), err));
            }
            _ => {}
        }
        self.src.copy_file(
            &n.path,
            dp,
            want,
            big.then_some(self.opts.block_size),
            check,
        )
    }
}
