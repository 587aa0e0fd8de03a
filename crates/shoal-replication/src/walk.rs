//! Parallel, non-following walk of one or more trees at once.
//!
//! Several trees (the source and the published version) share one queue of directories served
//! by a few threads, so the two walks of a sync overlap and each core stays busy even when one
//! tree is a single deep directory. Nothing is followed: a symbolic link is reported as a link
//! with its target, and special files are counted, never opened.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use super::manifest::{Kind, Ts};

/// Threads of a walk (the machine kind has 2 cores; more only adds contention).
pub(crate) const WALK_THREADS: usize = 2;

/// Names the engine gives its own temporary files inside a staging tree.
pub(crate) const TMP_PREFIX: &[u8] = b".shoal-tmp-";

/// One entry found by a walk.
#[derive(Debug, Clone)]
pub(crate) struct WalkEntry {
    pub path: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub size: u64,
    pub mtime: Ts,
    pub ctime: Ts,
    pub ino: u64,
    pub target: Vec<u8>,
}

/// Result of walking one tree.
#[derive(Debug, Default)]
pub(crate) struct WalkResult {
    /// Sorted by path; the root itself first (empty path).
    pub entries: Vec<WalkEntry>,
    /// Fifos, sockets and devices that were skipped.
    pub specials: Vec<Vec<u8>>,
    /// Entries that vanished between being listed and being examined.
    pub vanished: u64,
}

/// A walk failure: which path, and why.
#[derive(Debug)]
pub(crate) struct WalkError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// Joins a relative byte path onto `root`.
pub(crate) fn abs(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    }
}

/// Relative path of `name` inside the directory `parent`.
pub(crate) fn child(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        p.extend_from_slice(parent);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

pub(crate) fn ts_mtime(m: &fs::Metadata) -> Ts {
    Ts {
        sec: m.mtime(),
        nsec: u32::try_from(m.mtime_nsec()).unwrap_or(0),
    }
}

fn ts_ctime(m: &fs::Metadata) -> Ts {
    Ts {
        sec: m.ctime(),
        nsec: u32::try_from(m.ctime_nsec()).unwrap_or(0),
    }
}

/// Converts metadata into an entry; `None` for special files.
pub(crate) fn entry_of(path: Vec<u8>, meta: &fs::Metadata, target: Vec<u8>) -> Option<WalkEntry> {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_symlink() {
        Kind::Symlink
    } else {
        return None;
    };
    Some(WalkEntry {
        path,
        kind,
        mode: meta.mode() & 0o7777,
        size: if kind == Kind::Dir { 0 } else { meta.len() },
        mtime: ts_mtime(meta),
        ctime: ts_ctime(meta),
        ino: meta.ino(),
        target,
    })
}

struct Queue {
    dirs: Vec<(usize, Vec<u8>)>,
    active: usize,
}

#[derive(Default)]
struct Partial {
    entries: Vec<WalkEntry>,
    specials: Vec<Vec<u8>>,
    vanished: u64,
    error: Option<WalkError>,
}

/// Walks every root (each must be a real directory) and returns one result per root, in order.
/// With `skip_tmp`, the engine's temporary names are not reported (staging trees only).
pub(crate) fn walk_trees(roots: &[&Path], skip_tmp: bool) -> Vec<Result<WalkResult, WalkError>> {
    let mut parts: Vec<Partial> = roots.iter().map(|_| Partial::default()).collect();
    let mut initial = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        match fs::symlink_metadata(root) {
            Ok(meta) if meta.is_dir() => {
                let e = entry_of(Vec::new(), &meta, Vec::new()).expect("a directory");
                parts[i].entries.push(e);
                initial.push((i, Vec::new()));
            }
            Ok(_) => {
                parts[i].error = Some(WalkError {
                    path: root.to_path_buf(),
                    source: io::Error::other("not a directory"),
                });
            }
            Err(source) => {
                parts[i].error = Some(WalkError {
                    path: root.to_path_buf(),
                    source,
                });
            }
        }
    }
    let queue = Mutex::new(Queue {
        dirs: initial,
        active: 0,
    });
    let wake = Condvar::new();
    let threads = WALK_THREADS.min(roots.len().max(1) * 4);
    let results: Vec<Vec<Partial>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| worker(roots, skip_tmp, &queue, &wake)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("walk worker does not panic"))
            .collect()
    });
    for per_thread in results {
        for (i, p) in per_thread.into_iter().enumerate() {
            parts[i].entries.extend(p.entries);
            parts[i].specials.extend(p.specials);
            parts[i].vanished += p.vanished;
            if parts[i].error.is_none() {
                parts[i].error = p.error;
            }
        }
    }
    parts
        .into_iter()
        .map(|mut p| match p.error {
            Some(err) => Err(err),
            None => {
                p.entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
                p.specials.sort_unstable();
                Ok(WalkResult {
                    entries: p.entries,
                    specials: p.specials,
                    vanished: p.vanished,
                })
            }
        })
        .collect()
}

fn worker(roots: &[&Path], skip_tmp: bool, queue: &Mutex<Queue>, wake: &Condvar) -> Vec<Partial> {
    let mut out: Vec<Partial> = roots.iter().map(|_| Partial::default()).collect();
    loop {
        let (tree, rel) = {
            let mut q = queue.lock().expect("walk queue lock");
            loop {
                if let Some(item) = q.dirs.pop() {
                    q.active += 1;
                    break item;
                }
                if q.active == 0 {
                    wake.notify_all();
                    return out;
                }
                q = wake.wait(q).expect("walk queue lock");
            }
        };
        let mut subdirs = Vec::new();
        if out[tree].error.is_none() {
            read_one_dir(roots[tree], &rel, skip_tmp, &mut out[tree], &mut subdirs);
        }
        let mut q = queue.lock().expect("walk queue lock");
        q.active -= 1;
        q.dirs.extend(subdirs.into_iter().map(|d| (tree, d)));
        wake.notify_all();
    }
}

fn read_one_dir(
    root: &Path,
    rel: &[u8],
    skip_tmp: bool,
    out: &mut Partial,
    subdirs: &mut Vec<Vec<u8>>,
) {
    let dir = abs(root, rel);
    let iter = match fs::read_dir(&dir) {
        Ok(iter) => iter,
        // Removed since it was listed: the source is changing under us.
        Err(err) if err.kind() == io::ErrorKind::NotFound && !rel.is_empty() => {
            out.vanished += 1;
            return;
        }
        Err(source) => {
            out.error = Some(WalkError { path: dir, source });
            return;
        }
    };
    for item in iter {
        let item = match item {
            Ok(item) => item,
            Err(source) => {
                out.error = Some(WalkError {
                    path: dir.clone(),
                    source,
                });
                return;
            }
        };
        let name = item.file_name();
        if skip_tmp && name.as_bytes().starts_with(TMP_PREFIX) {
            continue;
        }
        let path = child(rel, name.as_bytes());
        // `DirEntry::metadata` is an lstat relative to the open directory.
        let meta = match item.metadata() {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                out.vanished += 1;
                continue;
            }
            Err(source) => {
                out.error = Some(WalkError {
                    path: abs(root, &path),
                    source,
                });
                return;
            }
        };
        let ft = meta.file_type();
        let target = if ft.is_symlink() {
            match fs::read_link(abs(root, &path)) {
                Ok(t) => t.into_os_string().into_vec(),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    out.vanished += 1;
                    continue;
                }
                Err(source) => {
                    out.error = Some(WalkError {
                        path: abs(root, &path),
                        source,
                    });
                    return;
                }
            }
        } else {
            Vec::new()
        };
        if ft.is_block_device() || ft.is_char_device() || ft.is_fifo() || ft.is_socket() {
            out.specials.push(path);
            continue;
        }
        let Some(entry) = entry_of(path, &meta, target) else {
            continue;
        };
        if entry.kind == Kind::Dir {
            subdirs.push(entry.path.clone());
        }
        out.entries.push(entry);
    }
}

use std::os::unix::ffi::OsStringExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_two_trees_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::create_dir_all(a.join("x/y")).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("x/y/f"), b"hello").unwrap();
        std::os::unix::fs::symlink(&b, a.join("link")).unwrap();
        fs::write(b.join(".shoal-tmp-1"), b"t").unwrap();
        fs::write(b.join("g"), b"g").unwrap();
        let res = walk_trees(&[&a, &b], true);
        let ra = res[0].as_ref().unwrap();
        let paths: Vec<&[u8]> = ra.entries.iter().map(|e| e.path.as_slice()).collect();
        assert_eq!(paths, [&b""[..], b"link", b"x", b"x/y", b"x/y/f"].to_vec());
        assert_eq!(ra.entries[1].kind, Kind::Symlink);
        assert_eq!(ra.entries[1].target, b.as_os_str().as_bytes());
        assert_eq!(ra.entries[4].size, 5);
        let rb = res[1].as_ref().unwrap();
        assert_eq!(rb.entries.len(), 2);
        let missing = walk_trees(&[&dir.path().join("nope")], false);
        assert!(missing[0].is_err());
    }
}
