//! Small blocking filesystem helpers of the `local` driver and its replication engine: id checks before anything
//! touches a path, crash-safe file replacement, and a usage walk that never follows
//! symbolic links. Callers run them on the blocking thread pool.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of every temporary entry in a `shares/` directory; `do_setup` removes what a crash
/// left behind with it.
pub const TMP_PREFIX: &str = ".tmp-";

/// True for a canonical lowercase hyphenated UUID (`8-4-4-4-12` hex digits). Only such ids
/// are joined into paths: they hold no `/`, no `..` and cannot collide with `.tmp-` names.
pub fn is_canonical_uuid(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
}

/// Checks `path` is a real directory, not a symbolic link to one (the last component only:
/// an operator may well put a pool under a symlinked mount point).
pub fn require_real_dir(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::other(format!(
            "{} is a symbolic link",
            path.display()
        )));
    }
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            path.display()
        )));
    }
    Ok(())
}

/// Flushes a directory's entries, so a rename or unlink in it survives a crash.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `dir/name` with `contents` atomically: a reader (or a crash) sees the old file or
/// the new one, never a torn one. The temporary file carries [`TMP_PREFIX`] and a per-process
/// counter, so concurrent writers never share one and `do_setup` can remove leftovers.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{name}.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: do_setup removes it otherwise.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes `path` whatever it is, without following a symbolic link; missing is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    // `remove_dir_all` does not follow symbolic links inside the tree either.
    let result = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Bytes of the regular files under `root`, counting each hard-linked file once. Symbolic
/// links are neither followed nor counted, so a link cannot make a share look bigger (or
/// smaller) than the data it holds. Entries that vanish during the walk are skipped.
pub fn tree_usage_bytes(root: &Path) -> io::Result<u64> {
    let mut total: u64 = 0;
    let mut seen_links: HashSet<(u64, u64)> = HashSet::new();
    // An explicit stack rather than recursion: a deep tree cannot overflow the thread stack.
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound && dir != root => continue,
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            // `DirEntry::metadata` does not traverse symbolic links.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            let file_type = meta.file_type();
            if file_type.is_dir() {
                stack.push(entry.path());
            } else if file_type.is_file() {
                if meta.nlink() > 1 && !seen_links.insert((meta.dev(), meta.ino())) {
                    continue;
                }
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uuids_only() {
        assert!(is_canonical_uuid("0a1b2c3d-4e5f-6789-abcd-ef0123456789"));
        for bad in [
            "0A1B2C3D-4E5F-6789-ABCD-EF0123456789",
            "0a1b2c3d4e5f6789abcdef0123456789",
            "{0a1b2c3d-4e5f-6789-abcd-ef0123456789}",
            "../../../../etc/passwd",
            "0a1b2c3d-4e5f-6789-abcd-ef012345678/",
            "0a1b2c3d-4e5f-6789-abcd-ef01234567890",
            "",
            ".tmp-0a1b2c3d-4e5f-6789-abcd-ef012345",
        ] {
            assert!(!is_canonical_uuid(bad), "{bad}");
        }
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "f.json", b"one").unwrap();
        write_atomic(dir.path(), "f.json", b"two").unwrap();
        assert_eq!(fs::read(dir.path().join("f.json")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f.json"]);
    }

    #[test]
    fn usage_counts_files_once_and_ignores_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("top"), vec![0u8; 100]).unwrap();
        fs::write(root.join("a/b/deep"), vec![0u8; 1000]).unwrap();
        fs::hard_link(root.join("a/b/deep"), root.join("a/hard")).unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, vec![0u8; 50_000]).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("dirlink")).unwrap();
        assert_eq!(tree_usage_bytes(&root).unwrap(), 1100);
    }

    #[test]
    fn remove_any_does_not_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep"), b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        remove_any(&link).unwrap();
        assert!(target.join("keep").exists());
        assert!(fs::symlink_metadata(&link).is_err());
        remove_any(&link).unwrap();
    }
}
