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
//! What it trusts and why that is safe: changes made behind the server's back are invisible
//! here, so the caller must still run a full walk from time to time (the periodic
//! verification) and whenever the change list may be incomplete. Entries the published
//! manifest flags racy or dirty are looked at again whatever the list says, because the last
//! sync could not vouch for them. A directory that appears in place of a non-directory (a
//! directory renamed or created with content the list names only by its root) is walked,
//! and only that subtree.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use crate::manifest::{FLAG_DIRTY, FLAG_RACY, Kind, Manifest};
use crate::walk::{WalkEntry, WalkError, WalkResult, abs, entry_of, walk_trees};

/// What building a listing from a change list looked at.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChangeScan {
    /// Paths `lstat`-ed (the changed paths, their parents, racy or dirty entries).
    pub looked_at: u64,
    /// Entries found by walking subtrees that appeared as a whole (a directory renamed in).
    pub walked: u64,
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

/// The source listing: `published` with every path of `changed` (and its parents) looked at
/// again on the local tree `root`.
pub(crate) fn listing(
    root: &Path,
    published: &Manifest,
    changed: &[Vec<u8>],
) -> Result<(WalkResult, ChangeScan), WalkError> {
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
    let mut todo: BTreeSet<Vec<u8>> = BTreeSet::new();
    for path in changed {
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
    for e in &published.entries {
        if e.flags & (FLAG_RACY | FLAG_DIRTY) != 0 {
            for parent in ancestors(&e.path) {
                todo.insert(parent.to_vec());
            }
            todo.insert(e.path.clone());
        }
    }
    let mut scan = ChangeScan::default();
    let mut specials = Vec::new();
    // Parents sort before their children, so a removed or replaced directory drops its
    // subtree before anything below it is looked at.
    for path in todo {
        scan.looked_at += 1;
        let full = abs(root, &path);
        let meta = match fs::symlink_metadata(&full) {
            Ok(meta) => meta,
            Err(err)
                if err.kind() == io::ErrorKind::NotFound
                    || err.raw_os_error() == Some(nix::libc::ENOTDIR) =>
            {
                if path.is_empty() {
                    return Err(WalkError {
                        path: full,
                        source: err,
                    });
                }
                remove_subtree(&mut map, &path);
                continue;
            }
            Err(source) => return Err(WalkError { path: full, source }),
        };
        let target = if meta.file_type().is_symlink() {
            match fs::read_link(&full) {
                Ok(t) => t.into_os_string().into_vec(),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    remove_subtree(&mut map, &path);
                    continue;
                }
                Err(source) => return Err(WalkError { path: full, source }),
            }
        } else {
            Vec::new()
        };
        let was_dir = map.get(&path).is_some_and(|e| e.kind == Kind::Dir);
        let Some(entry) = entry_of(path.clone(), &meta, target) else {
            // A fifo, socket or device: never replicated.
            remove_subtree(&mut map, &path);
            specials.push(path);
            continue;
        };
        if entry.kind != Kind::Dir || !was_dir {
            remove_subtree(&mut map, &path);
        }
        if entry.kind == Kind::Dir && !was_dir {
            // A directory new to the listing: everything below it is new too.
            let walked = walk_trees(&[&full], false)
                .pop()
                .expect("one result per root")?;
            for mut e in walked.entries.into_iter().skip(1) {
                let mut p = path.clone();
                p.push(b'/');
                p.extend_from_slice(&e.path);
                e.path = p;
                scan.walked += 1;
                map.insert(e.path.clone(), e);
            }
            specials.extend(walked.specials.into_iter().map(|s| {
                let mut p = path.clone();
                p.push(b'/');
                p.extend_from_slice(&s);
                p
            }));
        }
        map.insert(path, entry);
    }
    specials.sort_unstable();
    Ok((
        WalkResult {
            entries: map.into_values().collect(),
            specials,
            vanished: 0,
        },
        scan,
    ))
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
