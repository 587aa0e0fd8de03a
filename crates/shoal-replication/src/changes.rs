//! The source listing of a sync driven by a change list instead of a tree walk.
//!
//! When every change to the source goes through one server that records which paths it
//! touched (the NFS data plane's change journal), the published manifest plus those paths is
//! the source: the manifest says what the source held at the published version's source
//! point, and only the recorded paths can differ since. This module builds the same
//! [`WalkResult`] a walk would, by `lstat`-ing only the changed paths (and their parent
//! directories, whose mtimes move with every create, remove and rename), so the rest of the
//! sync (compare, build, publish) is unchanged.
//!
//! It comes in two halves, so a secondary on another node shares the implementation:
//! [`look`] needs the tree and runs where it is (this host for a local source, the active's
//! node behind `POST /replication/v1/changes` for a peer); [`merge`] needs only the published
//! manifest and runs on the secondary's node. What crosses between them is a list of
//! [`Looked`] results, in path order (parents first).
//!
//! What it trusts and why that is safe: changes made behind the server's back are invisible
//! here, so the caller must still run a full walk from time to time (the periodic
//! verification) and whenever the change list may be incomplete. Entries the published
//! manifest flags racy or dirty are looked at again whatever the list says, because the last
//! sync could not vouch for them. A directory that appears in place of a non-directory (a
//! directory renamed or created with content the list names only by its root) is walked,
//! and only that subtree.
//!
//! Every path is resolved below the root with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)`: a changed path whose parent has since become a symbolic link is
//! gone from the tree (a walk would not descend into the link either), never looked at
//! through the link.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

use crate::journal::{ChangeJournal, Cursor, Since};
use crate::manifest::{FLAG_DIRTY, FLAG_RACY, Kind, Manifest};
use crate::walk::{WalkEntry, WalkError, WalkResult, entry_of, walk_trees};

/// What building a listing from a change list looked at.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChangeScan {
    /// Paths `lstat`-ed (the changed paths, their parents, racy or dirty entries).
    pub looked_at: u64,
    /// Entries found by walking subtrees that appeared as a whole (a directory renamed in).
    pub walked: u64,
}

/// One result of looking at the tree, in the order [`merge`] applies them.
#[derive(Debug, Clone)]
pub(crate) enum Looked {
    /// The path is gone (or a parent is no longer a directory): it and everything below it
    /// leave the listing.
    Gone(Vec<u8>),
    /// A fifo, socket or device now: it and everything below leave the listing, and it is
    /// reported as skipped.
    Special(Vec<u8>),
    /// The path as it is now. A directory the listing already had as one keeps its children.
    Found(WalkEntry),
    /// A directory new to the listing, replacing whatever was there; what lies below it
    /// follows as [`Looked::Below`] and [`Looked::BelowSpecial`].
    NewDir(WalkEntry),
    /// An entry below the last [`Looked::NewDir`] (its path relative to the root).
    Below(WalkEntry),
    /// A special file below the last [`Looked::NewDir`].
    BelowSpecial(Vec<u8>),
}

/// Removes `path` and everything below it from `map`, touching only those keys (a sorted
/// map keeps a subtree contiguous: `p/...` sorts between `p/` and `p0`, `0` following `/`).
fn remove_subtree(map: &mut BTreeMap<Vec<u8>, WalkEntry>, path: &[u8]) {
    map.remove(path);
    let mut lo = path.to_vec();
    lo.push(b'/');
    let mut hi = path.to_vec();
    hi.push(b'/' + 1);
    let below: Vec<Vec<u8>> = map.range(lo..hi).map(|(k, _)| k.clone()).collect();
    for key in below {
        map.remove(&key);
    }
}

/// Every ancestor of `path` (relative, `/`-separated), the root (`""`) included.
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    let cuts = path
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(|(i, _)| i);
    std::iter::once(&path[..0]).chain(cuts.map(move |i| &path[..i]))
}

/// Whether `path` lies strictly below `dir` (`dir` non-empty).
fn strictly_below(path: &[u8], dir: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// A changed path as the journal gives it, made relative and plain: no leading or trailing
/// `/`, no empty, `.` or `..` component (such a path could name something outside the tree,
/// so it is refused rather than cleaned).
pub(crate) fn normalize(path: &[u8]) -> Option<Vec<u8>> {
    let trimmed: &[u8] = {
        let mut p = path;
        while let [b'/', rest @ ..] = p {
            p = rest;
        }
        while let [rest @ .., b'/'] = p {
            p = rest;
        }
        p
    };
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    let plain = trimmed
        .split(|b| *b == b'/')
        .all(|c| !c.is_empty() && c != b"." && c != b"..");
    plain.then(|| trimmed.to_vec())
}

/// The entries of `published` the last sync could not vouch for (flagged racy or dirty):
/// looked at again whatever the change list says.
pub(crate) fn must_look(published: &Manifest) -> Vec<Vec<u8>> {
    published
        .entries
        .iter()
        .filter(|e| e.flags & (FLAG_RACY | FLAG_DIRTY) != 0)
        .map(|e| e.path.clone())
        .collect()
}

/// The directories of `published` (what [`look`] asks to tell a new directory from one the
/// listing has).
pub(crate) fn dirs_of(published: &Manifest) -> Vec<Vec<u8>> {
    published
        .entries
        .iter()
        .filter(|e| e.kind == Kind::Dir)
        .map(|e| e.path.clone())
        .collect()
}

/// The paths to look at: every changed and must-look path and all their parents, sorted
/// (parents first).
pub(crate) fn todo(changed: &[Vec<u8>], must: &[Vec<u8>]) -> BTreeSet<Vec<u8>> {
    let mut todo: BTreeSet<Vec<u8>> = BTreeSet::new();
    for path in changed.iter().chain(must) {
        let Some(path) = normalize(path) else {
            // Not a path of this tree: nothing to look at, and nothing to trust either, so
            // the root is looked at (its listing is cheap) and the entry is ignored.
            todo.insert(Vec::new());
            continue;
        };
        for parent in ancestors(&path) {
            todo.insert(parent.to_vec());
        }
        todo.insert(path);
    }
    todo
}

/// Opens `rel` below the directory `root` without following any symbolic link (a final
/// link is opened itself, `O_PATH`). `None` when it is not there as a real path.
fn open_nofollow(root: &File, rel: &[u8]) -> io::Result<Option<File>> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let name: &OsStr = if rel.is_empty() {
        OsStr::new(".")
    } else {
        OsStr::from_bytes(rel)
    };
    match openat2(root, name, how) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EXDEV) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Looks at every path of `todo` (sorted, parents first) in the tree `root`. `was_dir`
/// says whether the listing being updated has a path as a directory; a directory it does
/// not have is walked. Runs where the tree is.
pub(crate) fn look(
    root: &Path,
    todo: &BTreeSet<Vec<u8>>,
    was_dir: &dyn Fn(&[u8]) -> bool,
) -> Result<(Vec<Looked>, ChangeScan), WalkError> {
    let fail = |rel: &[u8], source: io::Error| WalkError {
        path: crate::walk::abs(root, rel),
        source,
    };
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(root)
        .map_err(|e| fail(b"", e))?;
    let mut scan = ChangeScan::default();
    let mut out = Vec::with_capacity(todo.len());
    // The last directory walked whole: paths below it are covered by that walk.
    let mut walked_dir: Option<&[u8]> = None;
    for path in todo {
        if walked_dir.is_some_and(|d| strictly_below(path, d)) {
            continue;
        }
        scan.looked_at += 1;
        let Some(file) = open_nofollow(&dir, path).map_err(|e| fail(path, e))? else {
            if path.is_empty() {
                return Err(fail(path, io::ErrorKind::NotFound.into()));
            }
            out.push(Looked::Gone(path.clone()));
            continue;
        };
        let meta = file.metadata().map_err(|e| fail(path, e))?;
        let target = if meta.file_type().is_symlink() {
            match nix::fcntl::readlinkat(&file, "") {
                Ok(t) => t.into_vec(),
                Err(Errno::ENOENT) => {
                    out.push(Looked::Gone(path.clone()));
                    continue;
                }
                Err(err) => return Err(fail(path, err.into())),
            }
        } else {
            Vec::new()
        };
        let Some(entry) = entry_of(path.clone(), &meta, target) else {
            // A fifo, socket or device: never replicated.
            out.push(Looked::Special(path.clone()));
            continue;
        };
        if entry.kind != Kind::Dir || was_dir(path) {
            out.push(Looked::Found(entry));
            continue;
        }
        // A directory new to the listing: everything below it is new too. It is walked
        // through the descriptor just opened, so the walk starts below the root.
        let fd_path = PathBuf::from(format!("/proc/self/fd/{}/.", file.as_raw_fd()));
        let walked = walk_trees(&[&fd_path], false)
            .pop()
            .expect("one result per root")
            .map_err(|e| fail(path, e.source))?;
        out.push(Looked::NewDir(entry));
        let under = |rel: &[u8]| {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(rel);
            p
        };
        for mut e in walked.entries.into_iter().skip(1) {
            e.path = under(&e.path);
            scan.walked += 1;
            out.push(Looked::Below(e));
        }
        out.extend(
            walked
                .specials
                .iter()
                .map(|s| Looked::BelowSpecial(under(s))),
        );
        walked_dir = Some(path);
    }
    Ok((out, scan))
}

/// What a change list gives a sync in place of a walk.
pub(crate) enum Listing {
    /// The source listing (the published manifest with what was looked at applied), and
    /// what building it looked at.
    Entries(WalkResult, ChangeScan),
    /// Nothing was looked at: nothing changed since the published version's source point
    /// and the last sync vouched for every entry, so the published version is the source.
    Unchanged,
}

/// The listing of a sync from what [`look`] found for `published`.
pub(crate) fn listed(published: &Manifest, looked: Vec<Looked>, scan: ChangeScan) -> Listing {
    if looked.is_empty() {
        Listing::Unchanged
    } else {
        Listing::Entries(merge(published, looked), scan)
    }
}

/// The source listing: `published` with `looked` (from [`look`]) applied in order. Runs on
/// the secondary's node.
pub(crate) fn merge(published: &Manifest, looked: Vec<Looked>) -> WalkResult {
    let mut map: BTreeMap<Vec<u8>, WalkEntry> = published
        .entries
        .iter()
        .map(|e| {
            (
                e.path.clone(),
                WalkEntry {
                    path: e.path.clone(),
                    kind: e.kind,
                    mode: e.mode,
                    size: e.size,
                    mtime: e.mtime,
                    ctime: e.mtime,
                    ino: e.src_ino,
                    target: e.target.clone(),
                },
            )
        })
        .collect();
    let mut specials = Vec::new();
    for item in looked {
        match item {
            Looked::Gone(path) => remove_subtree(&mut map, &path),
            Looked::Special(path) => {
                remove_subtree(&mut map, &path);
                specials.push(path);
            }
            Looked::Found(entry) => {
                // A directory that was one keeps its children (their changes are listed on
                // their own); anything else replaces the whole subtree.
                let keeps_children = entry.kind == Kind::Dir
                    && map.get(&entry.path).is_some_and(|e| e.kind == Kind::Dir);
                if !keeps_children {
                    remove_subtree(&mut map, &entry.path);
                }
                map.insert(entry.path.clone(), entry);
            }
            Looked::NewDir(entry) => {
                remove_subtree(&mut map, &entry.path);
                map.insert(entry.path.clone(), entry);
            }
            Looked::Below(entry) => {
                map.insert(entry.path.clone(), entry);
            }
            Looked::BelowSpecial(path) => specials.push(path),
        }
    }
    specials.sort_unstable();
    WalkResult {
        entries: map.into_values().collect(),
        specials,
        vanished: 0,
    }
}

/// What the side holding the tree answers a secondary that follows its change journal.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The journal's position, taken before anything was looked at: a change recorded after
    /// it is looked at by the next sync.
    pub position: Cursor,
    /// The paths changed since the requester's cursor, looked at; `None` when the journal
    /// cannot say (no cursor, another journal, a restart or reset since): walk.
    pub looked: Option<(Vec<Looked>, ChangeScan)>,
}

/// The active's half of a change-list sync, the same for a secondary on this host and one
/// on another node: takes the journal's position, reads the paths recorded since `cursor`
/// and looks at them (with `must` and every parent) in the tree `root`. `dirs` are the
/// directories of the requester's published manifest.
pub(crate) fn answer(
    root: &Path,
    journal: &ChangeJournal,
    cursor: Option<Cursor>,
    must: &[Vec<u8>],
    dirs: &HashSet<Vec<u8>>,
) -> Result<Answer, WalkError> {
    let position = journal.position();
    let Some(cursor) = cursor else {
        return Ok(Answer {
            position,
            looked: None,
        });
    };
    let changed = match journal.since(cursor) {
        Ok(Since::Changed(paths)) => paths,
        Ok(Since::Unknown) => {
            return Ok(Answer {
                position,
                looked: None,
            });
        }
        Err(err) => {
            tracing::warn!(journal = %journal.path().display(), error = %err, "reading the change journal {} failed: {err}; the secondary walks the source", journal.path().display());
            return Ok(Answer {
                position,
                looked: None,
            });
        }
    };
    let looked = look(root, &todo(&changed, must), &|p| dirs.contains(p))?;
    Ok(Answer {
        position,
        looked: Some(looked),
    })
}

/// The source listing: `published` with every path of `changed` (and its parents, and the
/// entries it flags racy or dirty) looked at again on the local tree `root`.
pub(crate) fn listing(
    root: &Path,
    published: &Manifest,
    changed: &[Vec<u8>],
) -> Result<Listing, WalkError> {
    let todo = todo(changed, &must_look(published));
    let dirs: HashSet<Vec<u8>> = dirs_of(published).into_iter().collect();
    let (looked, scan) = look(root, &todo, &|p| dirs.contains(p))?;
    Ok(listed(published, looked, scan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_refuses_paths_that_leave_the_tree() {
        assert_eq!(normalize(b"/a/b/").as_deref(), Some(&b"a/b"[..]));
        assert_eq!(normalize(b"a").as_deref(), Some(&b"a"[..]));
        assert_eq!(normalize(b"/").as_deref(), Some(&b""[..]));
        assert_eq!(normalize(b"a/../b"), None);
        assert_eq!(normalize(b"a//b"), None);
        assert_eq!(normalize(b"./a"), None);
    }

    #[test]
    fn ancestors_and_subtrees() {
        let got: Vec<&[u8]> = ancestors(b"a/b/c").collect();
        assert_eq!(got, vec![&b""[..], b"a", b"a/b"]);
        let entry = |p: &[u8]| WalkEntry {
            path: p.to_vec(),
            kind: Kind::File,
            mode: 0,
            size: 0,
            mtime: crate::manifest::Ts::default(),
            ctime: crate::manifest::Ts::default(),
            ino: 0,
            target: Vec::new(),
        };
        let mut map: BTreeMap<Vec<u8>, WalkEntry> =
            [&b"a"[..], b"a-b", b"a/x", b"a/y/z", b"a0", b"ab"]
                .iter()
                .map(|p| (p.to_vec(), entry(p)))
                .collect();
        remove_subtree(&mut map, b"a");
        let left: Vec<&[u8]> = map.keys().map(Vec::as_slice).collect();
        assert_eq!(left, vec![&b"a-b"[..], b"a0", b"ab"]);
    }
}
