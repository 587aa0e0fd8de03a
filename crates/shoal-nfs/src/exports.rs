//! The export registry shared by the server and the driver.
//!
//! Owns, per exported share instance: its configuration (root, read-only flag, client
//! rules), the quota accounting (usage and limit), the quiesce state with its count of write
//! calls in progress, and the name table that lets file handles be resolved. None of it is
//! persisted: the driver re-exports after a restart; usage is recomputed by a walk of the
//! tree when an export is created; the name table is learned again from the clients'
//! LOOKUPs (a handle the table does not know is answered `NFS3ERR_STALE`, and the client
//! looks the name up again from its root handle, which needs no table).
//!
//! Every method is synchronous and cheap except `export` of a new root and
//! `recount_usage` (both walk the tree: call them off the async runtime) and
//! `set_quiesced(.., true)` (async: it waits for write calls in progress).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use nfs3_types::nfs3::nfsstat3;
use tokio::sync::Notify;

use crate::access::{AccessLevel, ClientRule};
use crate::fs;

/// What an export serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportRoot {
    /// The directory itself is the export root (an active share: `<pool>/shares/<id>`).
    Directory(PathBuf),
    /// A replication engine replica directory: the root is whatever its `current` symlink
    /// (relative, `current -> v<N>`) points to at the time of each call.
    Published(PathBuf),
}

/// How one share instance is exported.
#[derive(Clone, Debug)]
pub struct ExportSpec {
    pub root: ExportRoot,
    /// Served read-only whatever the rules say (readable secondary replicas: Manila's
    /// `cast_rules_to_readonly`).
    pub read_only: bool,
    pub rules: Vec<ClientRule>,
    /// Limit of the usage (see `Exports::usage_bytes`); `None`: no limit.
    pub quota_bytes: Option<u64>,
}

/// Errors of the registry's methods.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0:?} is not a canonical lowercase UUID")]
    InvalidId(String),
    #[error("share instance {0} is not exported")]
    NotExported(String),
    #[error("export root {path} is unusable: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What a successful modifying call changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Write,
    Create,
    Mkdir,
    Symlink,
    Link,
    Remove,
    Rmdir,
    Rename,
    Setattr,
}

/// One change made through the server. Paths are relative to the export root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// The changed object; for `Rename` the old name, for `Link` the existing file.
    pub path: PathBuf,
    /// `Rename`: the new name; `Link`: the new link. `None` otherwise.
    pub to: Option<PathBuf>,
}

/// Told of every change made through the server (to feed a replication change journal).
pub trait ChangeObserver: Send + Sync + 'static {
    /// Called after a change through the server succeeded and before the reply is sent;
    /// never for a failed call. Runs on a blocking thread of the call: keep it short.
    fn changed(&self, instance_id: &str, change: &Change);
}

/// Registry of what is exported, shared by the server and the driver. Changes apply to new
/// and to connected clients at once: every call looks its export up again.
pub struct Exports {
    by_uuid: RwLock<HashMap<[u8; 16], Arc<Export>>>,
    observer: RwLock<Option<Arc<dyn ChangeObserver>>>,
    /// Open files for READ/WRITE/COMMIT, shared by every server bound to this registry.
    pub(crate) files: FdCache,
}

impl Exports {
    pub fn new() -> Arc<Exports> {
        Arc::new(Exports {
            by_uuid: RwLock::new(HashMap::new()),
            observer: RwLock::new(None),
            files: FdCache::new(FD_CACHE_CAPACITY),
        })
    }

    /// The NFS path of an instance's export: `/shares/<instance_id>`.
    pub fn export_path(instance_id: &str) -> String {
        format!("/shares/{instance_id}")
    }

    /// Exports (or re-exports with new settings) share instance `instance_id` at
    /// `/shares/<instance_id>`. Re-exporting with the same root keeps handles, usage and
    /// the quiesce state; a new root forgets the name table (its handles become stale) and
    /// recounts the usage.
    ///
    /// Blocking: a new root's usage is computed here by walking the tree, so that the
    /// quota is right from the first call. Call it off the async runtime
    /// (`spawn_blocking`) for large trees.
    pub fn export(&self, instance_id: &str, spec: ExportSpec) -> Result<(), ExportError> {
        let uuid = parse_instance_id(instance_id)?;
        let root_fileid = check_root(&spec.root)?;
        let existing = self.get_uuid(&uuid);
        let same_root = existing
            .as_ref()
            .is_some_and(|export| export.config().root == spec.root);
        let usage = if same_root {
            None
        } else {
            Some(count_usage(&spec.root).map_err(|source| ExportError::Root {
                path: usage_path(&spec.root),
                source,
            })?)
        };
        let config = Arc::new(ExportConfig {
            root: spec.root,
            read_only: spec.read_only,
            rules: spec.rules,
            root_fileid,
        });
        let export = match existing {
            Some(export) => {
                *export.config.write().expect("config lock") = config;
                if let Some(usage) = usage {
                    export.names.clear();
                    export.usage.store(usage, Ordering::SeqCst);
                    self.files.purge_instance(&uuid);
                }
                export
            }
            None => {
                let export = Arc::new(Export::new(
                    instance_id.to_owned(),
                    uuid,
                    config,
                    usage.unwrap_or(0),
                ));
                self.by_uuid
                    .write()
                    .expect("exports lock")
                    .insert(uuid, export.clone());
                export
            }
        };
        export.set_quota(spec.quota_bytes);
        tracing::info!(share_instance.id = %instance_id, "exported share instance {instance_id}");
        Ok(())
    }

    /// Stops exporting `instance_id`: later calls on its handles get `NFS3ERR_STALE`, a MOUNT
    /// of its path `MNT3ERR_NOENT`. A call already in progress finishes.
    pub fn unexport(&self, instance_id: &str) {
        let Ok(uuid) = parse_instance_id(instance_id) else {
            return;
        };
        let removed = self.by_uuid.write().expect("exports lock").remove(&uuid);
        if removed.is_some() {
            // Drop our open files so that their space can be freed and the tree deleted.
            self.files.purge_instance(&uuid);
            tracing::info!(share_instance.id = %instance_id, "unexported share instance {instance_id}");
        }
    }

    /// Replaces the client rules; connected clients are checked against them on their next call.
    pub fn set_rules(&self, instance_id: &str, rules: Vec<ClientRule>) -> Result<(), ExportError> {
        let export = self.get(instance_id)?;
        let mut config = export.config.write().expect("config lock");
        let mut next = ExportConfig::clone(&config);
        next.rules = rules;
        *config = Arc::new(next);
        Ok(())
    }

    /// Sets or removes the quota. A smaller quota than the usage refuses growth, not rewrites.
    pub fn set_quota(
        &self,
        instance_id: &str,
        quota_bytes: Option<u64>,
    ) -> Result<(), ExportError> {
        self.get(instance_id)?.set_quota(quota_bytes);
        Ok(())
    }

    /// Quiesces (`true`) or resumes (`false`) writes. While quiesced, every modifying call is
    /// answered `NFS3ERR_JUKEBOX` (the client retries later) and reads go on. Quiescing
    /// returns once the modifying calls already in progress on the export have finished, so
    /// that afterwards nothing changes the tree through the server.
    pub async fn set_quiesced(&self, instance_id: &str, quiesced: bool) -> Result<(), ExportError> {
        let export = self.get(instance_id)?;
        export.quiesce.lock().expect("quiesce lock").quiesced = quiesced;
        if !quiesced {
            return Ok(());
        }
        loop {
            // Registered before the check: a guard dropping in between still wakes us.
            let drained = export.drained.notified();
            if export.quiesce.lock().expect("quiesce lock").in_flight == 0 {
                return Ok(());
            }
            drained.await;
        }
    }

    /// The quota accounting's current figure, `None` when not exported.
    pub fn usage_bytes(&self, instance_id: &str) -> Option<u64> {
        let export = self.get(instance_id).ok()?;
        Some(export.usage.load(Ordering::SeqCst))
    }

    /// Recomputes the usage by walking the tree (blocking; for periodic reconciliation with
    /// changes made behind the server's back). A write racing the walk may be counted twice
    /// or not at all until the next recount.
    pub fn recount_usage(&self, instance_id: &str) -> io::Result<()> {
        let export = self
            .get(instance_id)
            .map_err(|err| io::Error::new(io::ErrorKind::NotFound, err))?;
        let usage = count_usage(&export.config().root)?;
        export.usage.store(usage, Ordering::SeqCst);
        Ok(())
    }

    /// Sets the observer told of every change made through the server.
    pub fn set_observer(&self, observer: Arc<dyn ChangeObserver>) {
        *self.observer.write().expect("observer lock") = Some(observer);
    }

    /// The exported instance ids.
    pub fn exported(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_uuid
            .read()
            .expect("exports lock")
            .values()
            .map(|export| export.id.clone())
            .collect();
        ids.sort();
        ids
    }

    pub(crate) fn get_uuid(&self, uuid: &[u8; 16]) -> Option<Arc<Export>> {
        self.by_uuid
            .read()
            .expect("exports lock")
            .get(uuid)
            .cloned()
    }

    fn get(&self, instance_id: &str) -> Result<Arc<Export>, ExportError> {
        let uuid = parse_instance_id(instance_id)?;
        self.get_uuid(&uuid)
            .ok_or_else(|| ExportError::NotExported(instance_id.to_owned()))
    }

    /// The export a MOUNT path names and the rest of the path below its root:
    /// `/shares/<id>` and `/shares/<id>/` give an empty rest, `/shares/<id>/a/b` gives `a/b`.
    pub(crate) fn by_path<'p>(&self, path: &'p [u8]) -> Option<(Arc<Export>, &'p [u8])> {
        let rest = path.strip_prefix(b"/shares/")?;
        let (id, below) = match rest.iter().position(|b| *b == b'/') {
            Some(slash) => (&rest[..slash], &rest[slash + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let uuid = parse_instance_id(std::str::from_utf8(id).ok()?).ok()?;
        Some((self.get_uuid(&uuid)?, below))
    }

    pub(crate) fn all(&self) -> Vec<Arc<Export>> {
        let mut all: Vec<Arc<Export>> = self
            .by_uuid
            .read()
            .expect("exports lock")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Tells the observer of a change made through the server.
    pub(crate) fn notify(&self, export: &Export, change: Change) {
        let observer = self.observer.read().expect("observer lock").clone();
        if let Some(observer) = observer {
            observer.changed(&export.id, &change);
        }
    }
}

fn parse_instance_id(instance_id: &str) -> Result<[u8; 16], ExportError> {
    match uuid::Uuid::try_parse(instance_id) {
        Ok(uuid) if uuid.hyphenated().to_string() == instance_id => Ok(*uuid.as_bytes()),
        _ => Err(ExportError::InvalidId(instance_id.to_owned())),
    }
}

/// Checks that the root can be served; returns the fileid the root reports when it is not
/// the root directory's own inode (a published replica's root changes inode with every
/// version, and clients insist that a handle's fileid never changes, so the root reports
/// the inode of the replica directory itself, which is stable and outside the version trees).
fn check_root(root: &ExportRoot) -> Result<Option<u64>, ExportError> {
    let (path, published) = match root {
        ExportRoot::Directory(path) => (path, false),
        ExportRoot::Published(path) => (path, true),
    };
    let meta = std::fs::metadata(path).map_err(|source| ExportError::Root {
        path: path.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ExportError::Root {
            path: path.clone(),
            source: io::Error::from_raw_os_error(nix::libc::ENOTDIR),
        });
    }
    Ok(published.then_some(meta.ino()))
}

/// The usage of an export's tree by a walk. A replica that has published no version yet
/// (no `current`) holds nothing: it is exported, and served once `current` appears.
fn count_usage(root: &ExportRoot) -> io::Result<u64> {
    match fs::tree_usage_bytes(&usage_path(root)) {
        Err(err)
            if matches!(root, ExportRoot::Published(_))
                && err.kind() == io::ErrorKind::NotFound =>
        {
            Ok(0)
        }
        result => result,
    }
}

/// The directory whose tree the quota counts.
fn usage_path(root: &ExportRoot) -> PathBuf {
    match root {
        ExportRoot::Directory(path) => path.clone(),
        ExportRoot::Published(path) => path.join("current"),
    }
}

/// An export's settings; replaced as a whole so that a call sees one consistent version.
#[derive(Clone, Debug)]
pub(crate) struct ExportConfig {
    pub root: ExportRoot,
    pub read_only: bool,
    pub rules: Vec<ClientRule>,
    /// See `check_root`.
    pub root_fileid: Option<u64>,
}

impl ExportConfig {
    pub(crate) fn level_for(&self, client: std::net::IpAddr) -> Option<AccessLevel> {
        crate::access::effective_level(&self.rules, self.read_only, client)
    }
}

/// Stripes of the per-inode lock that serialises the size changes of one file.
const FILE_LOCKS: usize = 64;
/// No quota (stored in an atomic).
const NO_QUOTA: u64 = u64::MAX;

/// The state of one exported share instance.
pub(crate) struct Export {
    pub id: String,
    pub uuid: [u8; 16],
    /// NFS fsid: derived from the instance id, so each export looks like its own file system.
    pub fsid: u64,
    config: RwLock<Arc<ExportConfig>>,
    /// Bytes of file data in the tree, kept current by the server (see `reserve`).
    usage: AtomicU64,
    quota: AtomicU64,
    pub names: NameTable,
    quiesce: Mutex<QuiesceState>,
    drained: Notify,
    /// The inode of the root the last call found (0: none yet), to notice a published
    /// replica's switch to a new version (see `root_changed`).
    served_root: AtomicU64,
    /// Size changes of one inode (extending WRITE, truncate, remove) are made under its stripe,
    /// so that "size before" and "size after" of concurrent changes of one file do not
    /// interleave and the accounting stays exact.
    file_locks: Vec<Mutex<()>>,
}

#[derive(Default)]
struct QuiesceState {
    quiesced: bool,
    in_flight: usize,
}

impl Export {
    fn new(id: String, uuid: [u8; 16], config: Arc<ExportConfig>, usage: u64) -> Export {
        let hi = u64::from_be_bytes(uuid[..8].try_into().expect("8 bytes"));
        let lo = u64::from_be_bytes(uuid[8..].try_into().expect("8 bytes"));
        Export {
            id,
            uuid,
            fsid: hi ^ lo,
            config: RwLock::new(config),
            usage: AtomicU64::new(usage),
            quota: AtomicU64::new(NO_QUOTA),
            names: NameTable::default(),
            quiesce: Mutex::new(QuiesceState::default()),
            drained: Notify::new(),
            file_locks: (0..FILE_LOCKS).map(|_| Mutex::new(())).collect(),
            served_root: AtomicU64::new(0),
        }
    }

    /// Records that a call found the root at inode `ino`; whether that is another root
    /// than the previous call found (a published replica's new version).
    pub(crate) fn root_changed(&self, ino: u64) -> bool {
        let previous = self.served_root.swap(ino, Ordering::Relaxed);
        previous != 0 && previous != ino
    }

    pub(crate) fn config(&self) -> Arc<ExportConfig> {
        self.config.read().expect("config lock").clone()
    }

    fn set_quota(&self, quota: Option<u64>) {
        self.quota
            .store(quota.unwrap_or(NO_QUOTA), Ordering::SeqCst);
    }

    pub(crate) fn quota(&self) -> Option<u64> {
        match self.quota.load(Ordering::SeqCst) {
            NO_QUOTA => None,
            quota => Some(quota),
        }
    }

    pub(crate) fn usage(&self) -> u64 {
        self.usage.load(Ordering::SeqCst)
    }

    /// Adds `bytes` to the usage unless that would pass the quota (`NFS3ERR_DQUOT`, nothing
    /// reserved). One atomic compare-and-swap: concurrent writers cannot overshoot together.
    pub(crate) fn reserve(&self, bytes: u64) -> Result<(), nfsstat3> {
        if bytes == 0 {
            return Ok(());
        }
        let quota = self.quota.load(Ordering::SeqCst);
        self.usage
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |usage| {
                let next = usage.saturating_add(bytes);
                (quota == NO_QUOTA || next <= quota).then_some(next)
            })
            .map(|_| ())
            .map_err(|_| nfsstat3::NFS3ERR_DQUOT)
    }

    /// Corrects the usage after a change for which `reserved` bytes were reserved and the
    /// file grew by `grown` bytes (negative: shrank).
    pub(crate) fn settle(&self, reserved: u64, grown: i128) {
        let delta = grown - i128::from(reserved);
        if delta == 0 {
            return;
        }
        let magnitude = u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX);
        let _ = self
            .usage
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |usage| {
                Some(if delta > 0 {
                    usage.saturating_add(magnitude)
                } else {
                    usage.saturating_sub(magnitude)
                })
            });
    }

    /// The lock serialising size changes of inode `ino`.
    pub(crate) fn file_lock(&self, ino: u64) -> MutexGuard<'_, ()> {
        let stripe = (ino as usize) % self.file_locks.len();
        self.file_locks[stripe]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a modifying call; `NFS3ERR_JUKEBOX` while quiesced. The guard ends it.
    pub(crate) fn begin_write(self: &Arc<Self>) -> Result<WriteGuard, nfsstat3> {
        let mut state = self.quiesce.lock().expect("quiesce lock");
        if state.quiesced {
            return Err(nfsstat3::NFS3ERR_JUKEBOX);
        }
        state.in_flight += 1;
        Ok(WriteGuard {
            export: self.clone(),
        })
    }
}

/// A modifying call in progress (see `Export::begin_write`).
pub(crate) struct WriteGuard {
    export: Arc<Export>,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut state = self
            .export
            .quiesce
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.in_flight -= 1;
        if state.in_flight == 0 {
            self.export.drained.notify_waiters();
        }
    }
}

/// The parent key of entries directly below the export root (no real inode is 0). The root
/// is not keyed by its inode because a published replica's root changes inode with every
/// version while the names below it stay.
pub(crate) const ROOT_KEY: u64 = 0;
/// Names remembered per inode (hard links): a handle still resolves after one name is removed.
const NAMES_PER_INODE: usize = 4;
/// Longest parent chain followed when building a path (a table corrupted into a loop ends here).
const MAX_DEPTH: usize = 2048;

/// Inode -> its known names: (parent directory key, name), most recent first.
type NameMap = HashMap<u64, Vec<(u64, Box<[u8]>)>>;

/// Inode -> the names (parent inode, name) it was last seen under, as learned from LOOKUP,
/// CREATE, READDIRPLUS and friends and updated by RENAME and REMOVE. Used to turn a handle
/// back into a path below the root; the result is always verified by inode, birth time and
/// generation, so a stale entry costs a `NFS3ERR_STALE`, never a wrong file. It grows with the number of
/// distinct files clients have looked at (about 100 bytes each) and is lost on restart.
#[derive(Default)]
pub(crate) struct NameTable {
    map: RwLock<NameMap>,
}

impl NameTable {
    /// `ino` is (also) called `name` in directory `parent` (`ROOT_KEY` for the root).
    pub(crate) fn learn(&self, ino: u64, parent: u64, name: &[u8]) {
        let mut map = self.map.write().expect("names lock");
        let names = map.entry(ino).or_default();
        if names
            .first()
            .is_some_and(|(p, n)| *p == parent && **n == *name)
        {
            return;
        }
        names.retain(|(p, n)| !(*p == parent && **n == *name));
        names.insert(0, (parent, name.into()));
        names.truncate(NAMES_PER_INODE);
    }

    /// `ino` is no longer called `name` in `parent`.
    pub(crate) fn forget(&self, ino: u64, parent: u64, name: &[u8]) {
        let mut map = self.map.write().expect("names lock");
        if let Some(names) = map.get_mut(&ino) {
            names.retain(|(p, n)| !(*p == parent && **n == *name));
            if names.is_empty() {
                map.remove(&ino);
            }
        }
    }

    fn clear(&self) {
        self.map.write().expect("names lock").clear();
    }

    fn chain(map: &NameMap, key: u64) -> Option<PathBuf> {
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut current = key;
        while current != ROOT_KEY {
            if parts.len() >= MAX_DEPTH {
                return None;
            }
            let (parent, name) = map.get(&current)?.first()?;
            parts.push(name);
            current = *parent;
        }
        let mut path = PathBuf::new();
        for part in parts.iter().rev() {
            path.push(OsStr::from_bytes(part));
        }
        Some(path)
    }

    /// Candidate paths of `ino`, most recently learned name first.
    pub(crate) fn paths(&self, ino: u64) -> Vec<PathBuf> {
        let map = self.map.read().expect("names lock");
        let Some(names) = map.get(&ino) else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|(parent, name)| {
                Self::chain(&map, *parent).map(|dir| dir.join(OsStr::from_bytes(name)))
            })
            .collect()
    }
}

/// Open regular files and directories, for READ/WRITE/COMMIT (a stream of calls does not
/// reopen the file for each) and for the inode generation of handles (`handle.rs`), which
/// only a readable descriptor tells. Keyed by instance, inode and birth time: a key never
/// names another file. Handles are still resolved on every call; a cached descriptor keeps
/// its inode allocated, so an object found under a cached key is the cached one, and its
/// generation (read once, at the open) is the object's. For the same reason entries go as
/// soon as the server knows the object is gone: on its REMOVE, RMDIR or RENAME over it,
/// when a handle of it turns out stale, when the export's root changes (a published
/// replica's new version), at unexport and at a re-export with a new root; else the least
/// recently used goes beyond `FD_CACHE_CAPACITY`.
pub(crate) struct FdCache {
    inner: Mutex<FdCacheInner>,
    capacity: usize,
}

const FD_CACHE_CAPACITY: usize = 256;

type FdKey = ([u8; 16], u64, crate::handle::Btime);

#[derive(Default)]
struct FdCacheInner {
    map: HashMap<FdKey, CachedFile>,
    tick: u64,
}

struct CachedFile {
    open: OpenFile,
    used: u64,
}

/// A descriptor from the cache.
#[derive(Clone)]
pub(crate) struct OpenFile {
    pub file: Arc<File>,
    /// Opened read-write (else read-only).
    pub writable: bool,
    /// The inode generation (`fs::generation`).
    pub generation: u32,
}

impl FdCache {
    fn new(capacity: usize) -> FdCache {
        FdCache {
            inner: Mutex::new(FdCacheInner::default()),
            capacity,
        }
    }

    /// The cached file for `key` (writable if `write`), or the result of `open()` (which
    /// returns the file and whether it is writable), cached.
    pub(crate) fn get_or_open(
        &self,
        key: FdKey,
        write: bool,
        open: impl FnOnce() -> io::Result<(File, bool)>,
    ) -> io::Result<OpenFile> {
        {
            let mut inner = self.inner.lock().expect("fd cache lock");
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(cached) = inner.map.get_mut(&key)
                && (cached.open.writable || !write)
            {
                cached.used = tick;
                return Ok(cached.open.clone());
            }
        }
        // Opened outside the lock: an open can block (slow storage).
        let (file, writable) = open()?;
        if write && !writable {
            return Err(io::Error::from_raw_os_error(nix::libc::EACCES));
        }
        self.insert(key, file, writable)
    }

    /// Caches `file`, just opened (or created) for `key`, replacing what was cached for it.
    pub(crate) fn insert(&self, key: FdKey, file: File, writable: bool) -> io::Result<OpenFile> {
        let open = OpenFile {
            generation: fs::generation(std::os::fd::AsFd::as_fd(&file))?,
            file: Arc::new(file),
            writable,
        };
        let mut inner = self.inner.lock().expect("fd cache lock");
        inner.tick += 1;
        let used = inner.tick;
        inner.map.insert(
            key,
            CachedFile {
                open: open.clone(),
                used,
            },
        );
        if inner.map.len() > self.capacity {
            // Least recently used out; a linear scan of a few hundred entries per insert.
            if let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, cached)| cached.used)
                .map(|(key, _)| *key)
            {
                inner.map.remove(&oldest);
            }
        }
        Ok(open)
    }

    /// Forgets the open file of one inode (removed: its space must be freed).
    pub(crate) fn purge_inode(&self, instance: &[u8; 16], ino: u64) {
        self.inner
            .lock()
            .expect("fd cache lock")
            .map
            .retain(|(i, n, _), _| !(i == instance && *n == ino));
    }

    /// Forgets the open files of an instance (unexported, or its root changed).
    pub(crate) fn purge_instance(&self, instance: &[u8; 16]) {
        self.inner
            .lock()
            .expect("fd cache lock")
            .map
            .retain(|(i, _, _), _| i != instance);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const ID: &str = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";

    fn spec(root: &Path) -> ExportSpec {
        ExportSpec {
            root: ExportRoot::Directory(root.to_path_buf()),
            read_only: false,
            rules: vec![ClientRule::parse("127.0.0.1", "rw").unwrap()],
            quota_bytes: None,
        }
    }

    #[test]
    fn export_validates_ids_and_roots() {
        let dir = tempfile::tempdir().unwrap();
        let exports = Exports::new();
        for bad in [
            "0A1B2C3D-4E5F-6789-ABCD-EF0123456789",
            "0a1b2c3d4e5f6789abcdef0123456789",
            "x",
        ] {
            assert!(matches!(
                exports.export(bad, spec(dir.path())),
                Err(ExportError::InvalidId(_))
            ));
        }
        assert!(matches!(
            exports.export(ID, spec(&dir.path().join("missing"))),
            Err(ExportError::Root { .. })
        ));
        exports.export(ID, spec(dir.path())).unwrap();
        assert_eq!(exports.exported(), vec![ID.to_owned()]);
        assert_eq!(Exports::export_path(ID), format!("/shares/{ID}"));
        for (path, below) in [
            (format!("/shares/{ID}"), &b""[..]),
            (format!("/shares/{ID}/"), b""),
            (format!("/shares/{ID}/a/b"), b"a/b"),
        ] {
            let (export, rest) = exports.by_path(path.as_bytes()).expect("exported");
            assert_eq!((export.id.as_str(), rest), (ID, below), "{path}");
        }
        assert!(exports.by_path(b"/shares/other").is_none());
        assert!(
            exports
                .by_path(format!("/shares/{ID}x").as_bytes())
                .is_none()
        );
        assert!(exports.by_path(format!("/other/{ID}").as_bytes()).is_none());
        exports.unexport(ID);
        assert!(exports.exported().is_empty());
        assert!(matches!(
            exports.set_rules(ID, vec![]),
            Err(ExportError::NotExported(_))
        ));
    }

    #[test]
    fn usage_is_counted_at_export_and_reservations_respect_the_quota() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 1000]).unwrap();
        let exports = Exports::new();
        let mut spec = spec(dir.path());
        spec.quota_bytes = Some(1500);
        exports.export(ID, spec.clone()).unwrap();
        assert_eq!(exports.usage_bytes(ID), Some(1000));
        let export = exports.get(ID).unwrap();
        assert_eq!(export.reserve(600), Err(nfsstat3::NFS3ERR_DQUOT));
        export.reserve(500).unwrap();
        assert_eq!(export.usage(), 1500);
        export.settle(500, 100);
        assert_eq!(export.usage(), 1100);
        export.settle(0, -2000);
        assert_eq!(export.usage(), 0);
        exports.set_quota(ID, None).unwrap();
        export.reserve(u64::MAX / 2).unwrap();
        // re-export with the same root keeps the accounting; recount fixes it
        exports.export(ID, spec).unwrap();
        assert_eq!(exports.usage_bytes(ID), Some(u64::MAX / 2));
        exports.recount_usage(ID).unwrap();
        assert_eq!(exports.usage_bytes(ID), Some(1000));
    }

    #[test]
    fn a_replica_without_a_published_version_is_exported_empty() {
        let dir = tempfile::tempdir().unwrap();
        let exports = Exports::new();
        let mut spec = spec(dir.path());
        spec.root = ExportRoot::Published(dir.path().to_path_buf());
        exports.export(ID, spec).unwrap();
        assert_eq!(exports.usage_bytes(ID), Some(0));
        std::fs::create_dir(dir.path().join("v1")).unwrap();
        std::fs::write(dir.path().join("v1/f"), b"12345").unwrap();
        std::os::unix::fs::symlink("v1", dir.path().join("current")).unwrap();
        exports.recount_usage(ID).unwrap();
        assert_eq!(exports.usage_bytes(ID), Some(5));
    }

    #[test]
    fn concurrent_reservations_never_overshoot() {
        let dir = tempfile::tempdir().unwrap();
        let exports = Exports::new();
        let mut spec = spec(dir.path());
        spec.quota_bytes = Some(1000);
        exports.export(ID, spec).unwrap();
        let export = exports.get(ID).unwrap();
        let granted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        if export.reserve(3).is_ok() {
                            granted.fetch_add(3, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.load(Ordering::SeqCst), 999);
        assert_eq!(export.usage(), 999);
    }

    #[test]
    fn name_table_builds_paths_and_follows_renames() {
        let table = NameTable::default();
        table.learn(10, ROOT_KEY, b"dir");
        table.learn(11, 10, b"sub");
        table.learn(12, 11, b"file");
        assert_eq!(table.paths(12), vec![PathBuf::from("dir/sub/file")]);
        // a hard link: both names are candidates, newest first
        table.learn(12, ROOT_KEY, b"link");
        assert_eq!(
            table.paths(12),
            vec![PathBuf::from("link"), PathBuf::from("dir/sub/file")]
        );
        // renaming a directory moves everything below it
        table.forget(10, ROOT_KEY, b"dir");
        table.learn(10, ROOT_KEY, b"moved");
        table.forget(12, ROOT_KEY, b"link");
        assert_eq!(table.paths(12), vec![PathBuf::from("moved/sub/file")]);
        table.forget(12, 11, b"file");
        assert!(table.paths(12).is_empty());
        // a loop (impossible on disk, possible in a stale table) ends
        table.learn(20, 21, b"a");
        table.learn(21, 20, b"b");
        assert!(table.paths(20).is_empty());
    }

    #[tokio::test]
    async fn quiesce_waits_for_writes_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let exports = Exports::new();
        exports.export(ID, spec(dir.path())).unwrap();
        let export = exports.get(ID).unwrap();
        let guard = export.begin_write().unwrap();
        let exports2 = exports.clone();
        let quiesce = tokio::spawn(async move { exports2.set_quiesced(ID, true).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!quiesce.is_finished(), "a write is still in progress");
        assert_eq!(
            export.begin_write().err(),
            Some(nfsstat3::NFS3ERR_JUKEBOX),
            "new writes are refused at once"
        );
        drop(guard);
        quiesce.await.unwrap().unwrap();
        exports.set_quiesced(ID, false).await.unwrap();
        assert!(export.begin_write().is_ok());
    }

    #[test]
    fn a_new_root_is_noticed_once() {
        let dir = tempfile::tempdir().unwrap();
        let exports = Exports::new();
        exports.export(ID, spec(dir.path())).unwrap();
        let export = exports.get(ID).unwrap();
        assert!(!export.root_changed(10), "the first root");
        assert!(!export.root_changed(10));
        assert!(export.root_changed(11));
        assert!(!export.root_changed(11));
    }

    #[test]
    fn fd_cache_evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FdCache::new(2);
        let open = || Ok((File::open(dir.path()).unwrap(), false));
        let key = |ino| ([1u8; 16], ino, crate::handle::Btime::default());
        cache.get_or_open(key(1), false, open).unwrap();
        cache.get_or_open(key(2), false, open).unwrap();
        cache
            .get_or_open(key(1), false, || panic!("cached"))
            .unwrap();
        cache.get_or_open(key(3), false, open).unwrap();
        assert_eq!(cache.len(), 2);
        // 2 was least recently used
        cache
            .get_or_open(key(1), false, || panic!("cached"))
            .unwrap();
        assert!(
            cache.get_or_open(key(3), true, open).is_err(),
            "not writable"
        );
        cache.purge_inode(&[1u8; 16], 1);
        assert_eq!(cache.len(), 1);
        cache.purge_instance(&[1u8; 16]);
        assert_eq!(cache.len(), 0);
    }
}
