//! The `local` back end's replication engine: keeps a secondary replica's directory a
//! complete, versioned copy of an active share's tree.
//!
//! CONTRACT STUB: the public API below is fixed; bodies are filled in by the engine work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Tuning and test knobs of one sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Readable secondaries publish their tree without write bits (files and directories).
    pub read_only: bool,
    /// Files at least this large are updated by block deltas instead of whole copies.
    pub delta_threshold: u64,
    /// Block size of block deltas.
    pub block_size: usize,
    /// Test knob (kill -9 tests): after writing this many entries into the staging version,
    /// sleep for the given time before going on, so a test can kill the process mid-sync.
    pub pause_after_entries: Option<(u64, Duration)>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            read_only: true,
            delta_threshold: 8 * 1024 * 1024,
            block_size: 64 * 1024,
            pause_after_entries: None,
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

impl ReplicaDir {
    /// Opens (creating if needed) the replica directory `root`.
    pub fn open(root: &Path) -> Result<Self, SyncError> {
        let _ = root;
        unimplemented!("engine contract stub")
    }

    /// The replica directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path readers use: always resolves to a complete published version.
    pub fn current_path(&self) -> PathBuf {
        self.root.join("current")
    }

    /// The published version, `None` before the first sync finished.
    pub fn published(&self) -> Result<Option<Published>, SyncError> {
        unimplemented!("engine contract stub")
    }

    /// Brings the replica to the source's current state and publishes it atomically.
    /// Blocking (call from `spawn_blocking`). Safe after a crash mid-sync: leftovers are
    /// resumed or discarded, the published version is never modified.
    pub fn sync_from(&self, source: &Path, opts: &SyncOptions) -> Result<SyncReport, SyncError> {
        let _ = (source, opts);
        unimplemented!("engine contract stub")
    }

    /// Promotion: turns the published version into a plain writable tree at `dest` (which
    /// must not exist), restoring the source's modes, and removes the replica directory.
    /// Idempotent: if `dest` exists and the replica directory is gone, succeeds.
    pub fn promote_into(&self, dest: &Path) -> Result<(), SyncError> {
        let _ = dest;
        unimplemented!("engine contract stub")
    }

    /// Demotion: takes an existing active tree `tree` (renamed, not copied) as the
    /// replica's published version, so later syncs only send differences.
    pub fn adopt(&self, tree: &Path, opts: &SyncOptions) -> Result<Published, SyncError> {
        let _ = (tree, opts);
        unimplemented!("engine contract stub")
    }

    /// Removes the replica directory and everything in it (write bits restored first).
    pub fn remove(&self) -> Result<(), SyncError> {
        unimplemented!("engine contract stub")
    }
}
