//! Writing one entry into a staging tree: whole-file copies (in-kernel `copy_file_range`),
//! block deltas of large files, symlinks, and the metadata calls around them.
//!
//! Every function here checks the source did not change while it was read (size and mtime
//! before and after): a changed read is reported as [`CopyError::Changed`] so the caller can
//! retry once and then flag the sync as not clean. Nothing here ever opens a source path
//! through a symbolic link (`O_NOFOLLOW`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use super::manifest::{Entry, Ts};
use super::walk::{TMP_PREFIX, ts_mtime};

/// Read buffer of userspace copies and hashing.
const CHUNK: usize = 1 << 20;

/// A large file's copy starts the writeback of its data every this many bytes.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Starts writing back the dirty pages of `file` in `offset..offset + len` (`len` 0: to the
/// end) without waiting for them. A version is only published after a `syncfs`; starting the
/// writeback of each copy as soon as it is written keeps the disk busy during the copy instead
/// of leaving gigabytes for that final `syncfs` to wait for. Advisory: errors are ignored (the
/// `syncfs` reports write errors).
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range(2) only reads its integer arguments; the descriptor is valid
    // for the duration of the call because `file` is borrowed.
    unsafe {
        nix::libc::sync_file_range(
            file.as_raw_fd(),
            offset,
            len,
            nix::libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Why writing an entry did not succeed.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// The source entry is gone (or is no longer a regular file / link).
    Vanished,
    /// The source changed while it was read.
    Changed,
    /// Reading the source failed.
    Source(PathBuf, io::Error),
    /// Writing the replica failed.
    Replica(PathBuf, io::Error),
}

/// What a successful write produced, for the new manifest.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub size: u64,
    pub mtime: Ts,
    pub rep_ino: u64,
    pub blocks: Vec<[u8; 32]>,
    /// Bytes of file data written (changed blocks only for a delta).
    pub bytes: u64,
}

fn ts_spec(ts: Ts) -> TimeSpec {
    TimeSpec::new(ts.sec, i64::from(ts.nsec))
}

/// Sets the mtime of `path` (not following a symlink); atime is left alone.
pub(crate) fn set_mtime(path: &Path, ts: Ts) -> io::Result<()> {
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::UTIME_OMIT,
        &ts_spec(ts),
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

pub(crate) fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Mode bits of a copy: the source's, minus every write bit for a read-only replica.
pub(crate) fn disk_mode(mode: u32, read_only: bool) -> u32 {
    if read_only { mode & !0o222 } else { mode }
}

fn open_source(path: &Path) -> Result<(File, fs::Metadata), CopyError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(nix::libc::ENOENT) | Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR) => {
                CopyError::Vanished
            }
            _ => CopyError::Source(path.to_path_buf(), err),
        })?;
    let meta = file
        .metadata()
        .map_err(|err| CopyError::Source(path.to_path_buf(), err))?;
    if !meta.is_file() {
        return Err(CopyError::Vanished);
    }
    Ok((file, meta))
}

fn same_content_stamp(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && ts_mtime(a) == ts_mtime(b)
}

/// A fresh temporary name in `dir` (unique per process and call).
pub(crate) fn tmp_name(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut name = TMP_PREFIX.to_vec();
    name.extend_from_slice(
        format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
        .as_bytes(),
    );
    dir.join(std::ffi::OsStr::from_bytes(&name))
}

use std::os::unix::ffi::OsStrExt;

/// Copies `src` (until EOF) to `dst` in the kernel, falling back to a userspace copy where
/// `copy_file_range` is not supported. Large copies go in `WRITEBACK_EVERY` steps, each
/// starting its own writeback.
fn kernel_copy(src: &File, dst: &File) -> io::Result<u64> {
    let mut total: u64 = 0;
    loop {
        match nix::fcntl::copy_file_range(src, None, dst, None, WRITEBACK_EVERY as usize) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                if n as u64 == WRITEBACK_EVERY {
                    start_writeback(dst, total, n as u64);
                }
                total += n as u64;
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(
                nix::errno::Errno::EXDEV
                | nix::errno::Errno::ENOSYS
                | nix::errno::Errno::EINVAL
                | nix::errno::Errno::EOPNOTSUPP,
            ) if total == 0 => return user_copy(src, dst, None).map(|(n, _)| n),
            Err(err) => return Err(err.into()),
        }
    }
}

/// Userspace copy, hashing each `block` bytes when asked.
fn user_copy(mut src: &File, dst: &File, block: Option<usize>) -> io::Result<(u64, Vec<[u8; 32]>)> {
    let block = block.unwrap_or(CHUNK);
    // A whole number of blocks per read, so blocks never straddle two reads.
    let chunk = CHUNK.max(block) / block * block;
    let mut buf = vec![0u8; chunk];
    let mut hashes = Vec::new();
    let mut offset: u64 = 0;
    let mut flushed: u64 = 0;
    loop {
        let n = read_full(&mut src, &mut buf)?;
        if n == 0 {
            return Ok((offset, hashes));
        }
        for b in buf[..n].chunks(block) {
            hashes.push(*blake3::hash(b).as_bytes());
        }
        dst.write_all_at(&buf[..n], offset)?;
        offset += n as u64;
        if offset - flushed >= WRITEBACK_EVERY {
            start_writeback(dst, flushed, offset - flushed);
            flushed = offset;
        }
        if n < buf.len() {
            return Ok((offset, hashes));
        }
    }
}

/// Reads until `buf` is full or EOF.
pub(crate) fn read_full(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// BLAKE3 of each `block` bytes of `file`.
pub(crate) fn hash_blocks(mut file: &File, block: usize) -> io::Result<Vec<[u8; 32]>> {
    let chunk = CHUNK.max(block) / block * block;
    let mut buf = vec![0u8; chunk];
    let mut hashes = Vec::new();
    loop {
        let n = read_full(&mut file, &mut buf)?;
        for b in buf[..n].chunks(block) {
            hashes.push(*blake3::hash(b).as_bytes());
        }
        if n < buf.len() {
            return Ok(hashes);
        }
    }
}

/// BLAKE3 of a whole file (not following a symlink).
pub(crate) fn hash_file(path: &Path) -> io::Result<blake3::Hash> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    hash_open(&file)
}

/// BLAKE3 of an open file from its current offset to its end.
pub(crate) fn hash_open(file: &File) -> io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut reader = file;
    loop {
        let n = read_full(&mut reader, &mut buf)?;
        hasher.update(&buf[..n]);
        if n < buf.len() {
            return Ok(hasher.finalize());
        }
    }
}

/// Copies the source file `src` to the new path `dst` (which must not exist), with the mode
/// `mode` and the source's mtime. Large files (`blocks = Some(block size)`) go through
/// userspace so their block hashes come for free; the rest is copied in the kernel.
pub(crate) fn copy_file(
    src: &Path,
    dst: &Path,
    mode: u32,
    blocks: Option<usize>,
    check: bool,
) -> Result<Written, CopyError> {
    let (sfile, before) = open_source(src)?;
    let rep = |err| CopyError::Replica(dst.to_path_buf(), err);
    let dfile = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(rep)?;
    let result = (|| {
        let (size, hashes) = match blocks {
            Some(bs) => user_copy(&sfile, &dfile, Some(bs)).map_err(rep)?,
            None => (kernel_copy(&sfile, &dfile).map_err(rep)?, Vec::new()),
        };
        start_writeback(&dfile, 0, 0);
        let after = sfile
            .metadata()
            .map_err(|err| CopyError::Source(src.to_path_buf(), err))?;
        if check && (!same_content_stamp(&before, &after) || size != after.len()) {
            return Err(CopyError::Changed);
        }
        finish_file(&dfile, mode, ts_mtime(&after)).map_err(rep)?;
        let ino = dfile.metadata().map_err(rep)?.ino();
        Ok(Written {
            size,
            mtime: ts_mtime(&after),
            rep_ino: ino,
            blocks: hashes,
            bytes: size,
        })
    })();
    if result.is_err() {
        // A half-written copy must not stay under the final name.
        let _ = fs::remove_file(dst);
    }
    result
}

pub(crate) fn finish_file(file: &File, mode: u32, mtime: Ts) -> io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    nix::sys::stat::futimens(file, &TimeSpec::UTIME_OMIT, &ts_spec(mtime)).map_err(io::Error::from)
}

/// Brings the existing copy `dst` to the content of the source `src` by writing only the
/// blocks whose hash differs. `old` is the manifest entry of the copy: its block hashes are
/// trusted only while the copy's inode, size and mtime are still what it recorded. When the
/// copy has other links (`nlink > 1`), it is first duplicated so no other name sees the
/// patch.
pub(crate) fn delta_file(
    src: &Path,
    dst: &Path,
    mode: u32,
    block: usize,
    old: Option<&Entry>,
    check: bool,
) -> Result<Written, CopyError> {
    let (sfile, before) = open_source(src)?;
    delta_into(dst, mode, block, old, |tfile, old_hashes| {
        let blocks_total = before.len().div_ceil(block as u64);
        // Reading and hashing the source is the whole cost of a small change to a large
        // file: a checked delta of a large file does its second half on another thread.
        // (An unchecked retry stays sequential, so a source that shrinks and grows again
        // mid-read can never leave a gap.)
        let split =
            (check && before.len() >= PARALLEL_DELTA_MIN).then(|| blocks_total / 2 * block as u64);
        let delta = Delta {
            src: &sfile,
            dst: tfile,
            src_path: src,
            dst_path: dst,
            block,
            old: old_hashes,
        };
        let (hashes, written, offset) = match split {
            None => delta.range(0, None)?,
            Some(split) => {
                let (first, second) = std::thread::scope(|scope| {
                    let second = scope.spawn(|| delta.range(split, None));
                    let first = delta.range(0, Some(split));
                    (first, second.join().expect("delta thread does not panic"))
                });
                let (first, second) = (first?, second?);
                if first.2 != split {
                    // The source shrank while it was read.
                    return Err(CopyError::Changed);
                }
                let mut hashes = first.0;
                hashes.extend(second.0);
                (hashes, first.1 + second.1, split + second.2)
            }
        };
        let after = sfile
            .metadata()
            .map_err(|err| CopyError::Source(src.to_path_buf(), err))?;
        if check && (!same_content_stamp(&before, &after) || offset != after.len()) {
            return Err(CopyError::Changed);
        }
        Ok(Patched {
            hashes,
            written,
            size: offset,
            mtime: ts_mtime(&after),
        })
    })
}

/// Brings the existing copy `dst` to the content of `from`, another copy whose manifest
/// entry `of` the caller trusts (size, mtime and block hashes of `block` bytes): only the
/// blocks whose hash differs from `dst`'s are read from `from` and written, so nothing is
/// hashed but `dst` itself when its own hashes (`old`) are not trustworthy.
pub(crate) fn delta_from_copy(
    from: &Path,
    of: &Entry,
    dst: &Path,
    mode: u32,
    block: usize,
    old: Option<&Entry>,
) -> Result<Written, CopyError> {
    let ffile = File::open(from).map_err(|err| CopyError::Replica(from.to_path_buf(), err))?;
    delta_into(dst, mode, block, old, |tfile, old_hashes| {
        let mut buf = vec![0u8; block];
        let mut written = 0;
        for (i, hash) in of.blocks.iter().enumerate() {
            if old_hashes.get(i) == Some(hash) {
                continue;
            }
            let offset = i as u64 * block as u64;
            let n = read_full_at(&ffile, &mut buf, offset)
                .map_err(|err| CopyError::Replica(from.to_path_buf(), err))?;
            tfile
                .write_all_at(&buf[..n], offset)
                .map_err(|err| CopyError::Replica(dst.to_path_buf(), err))?;
            written += n as u64;
        }
        Ok(Patched {
            hashes: of.blocks.clone(),
            written,
            size: of.size,
            mtime: of.mtime,
        })
    })
}

/// What a patch of a copy produced (see [`delta_into`]).
pub(crate) struct Patched {
    /// Block hashes of the new contents.
    pub hashes: Vec<[u8; 32]>,
    /// Bytes written.
    pub written: u64,
    /// New size (the copy is truncated to it).
    pub size: u64,
    /// The source's mtime, given to the copy.
    pub mtime: Ts,
}

/// The frame of every block delta: makes the existing copy `dst` patchable (its own inode,
/// write bit), works out the copy's block hashes (`old` when still trustworthy, else read
/// from the copy), lets `patch` write the differing blocks (from a local file or a peer),
/// then truncates, stamps and, for a duplicated copy, renames it over `dst`.
pub(crate) fn delta_into(
    dst: &Path,
    mode: u32,
    block: usize,
    old: Option<&Entry>,
    patch: impl FnOnce(&File, &[[u8; 32]]) -> Result<Patched, CopyError>,
) -> Result<Written, CopyError> {
    let rep = |err| CopyError::Replica(dst.to_path_buf(), err);
    let cur = fs::symlink_metadata(dst).map_err(rep)?;
    let trusted = old.filter(|o| {
        o.rep_ino == cur.ino()
            && o.size == cur.len()
            && o.mtime == ts_mtime(&cur)
            && o.blocks.len() as u64 == cur.len().div_ceil(block as u64)
    });
    // Writable for the patch (a read-only replica's copy has no write bits).
    if cur.nlink() <= 1 && cur.mode() & 0o200 == 0 {
        chmod(dst, (cur.mode() & 0o7777) | 0o200).map_err(rep)?;
    }
    let (target_path, tfile) = if cur.nlink() > 1 {
        let parent = dst.parent().unwrap_or(Path::new("."));
        let tmp = tmp_name(parent);
        let tfile = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(rep)?;
        let old_file = File::open(dst).map_err(rep)?;
        if let Err(err) = kernel_copy(&old_file, &tfile) {
            let _ = fs::remove_file(&tmp);
            return Err(rep(err));
        }
        (tmp, tfile)
    } else {
        let tfile = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dst)
            .map_err(rep)?;
        (dst.to_path_buf(), tfile)
    };
    let result = (|| {
        let old_hashes = match trusted {
            Some(o) => o.blocks.clone(),
            None => hash_blocks(&tfile, block).map_err(rep)?,
        };
        let patched = patch(&tfile, &old_hashes)?;
        tfile.set_len(patched.size).map_err(rep)?;
        start_writeback(&tfile, 0, 0);
        finish_file(&tfile, mode, patched.mtime).map_err(rep)?;
        let ino = tfile.metadata().map_err(rep)?.ino();
        Ok(Written {
            size: patched.size,
            mtime: patched.mtime,
            rep_ino: ino,
            blocks: patched.hashes,
            bytes: patched.written,
        })
    })();
    if target_path != dst {
        match &result {
            Ok(_) => fs::rename(&target_path, dst).map_err(rep)?,
            Err(_) => {
                let _ = fs::remove_file(&target_path);
            }
        }
    }
    result
}

/// Files at least this large get their delta computed on two threads (tiny in tests, so the
/// engine's tests run the two-thread path).
const PARALLEL_DELTA_MIN: u64 = if cfg!(test) { 64 << 10 } else { 64 << 20 };

/// One block delta of a source file onto a copy (see `delta_file`).
struct Delta<'a> {
    src: &'a File,
    dst: &'a File,
    src_path: &'a Path,
    dst_path: &'a Path,
    block: usize,
    /// Block hashes of the copy as it is.
    old: &'a [[u8; 32]],
}

impl Delta<'_> {
    /// Brings the blocks from `start` (a block boundary) up to `end` (or the source's end)
    /// into the copy, writing only blocks whose hash differs. Returns the new hashes of the
    /// range, the bytes written and the bytes read.
    fn range(&self, start: u64, end: Option<u64>) -> Result<(Vec<[u8; 32]>, u64, u64), CopyError> {
        let block = self.block;
        let chunk = CHUNK.max(block) / block * block;
        let mut buf = vec![0u8; chunk];
        let mut hashes = Vec::new();
        let mut offset = start;
        let mut written: u64 = 0;
        loop {
            let want = end.map_or(chunk, |e| {
                chunk.min(usize::try_from(e - offset).unwrap_or(chunk))
            });
            if want == 0 {
                break;
            }
            let n = read_full_at(self.src, &mut buf[..want], offset)
                .map_err(|err| CopyError::Source(self.src_path.to_path_buf(), err))?;
            let first = usize::try_from(offset / block as u64).unwrap_or(usize::MAX);
            for (i, b) in buf[..n].chunks(block).enumerate() {
                let h = *blake3::hash(b).as_bytes();
                // A shorter last block of the old copy has another hash anyway.
                if self.old.get(first + i) != Some(&h) {
                    let at = offset + (i * block) as u64;
                    self.dst
                        .write_all_at(b, at)
                        .map_err(|err| CopyError::Replica(self.dst_path.to_path_buf(), err))?;
                    written += b.len() as u64;
                }
                hashes.push(h);
            }
            offset += n as u64;
            if n < want {
                break;
            }
        }
        Ok((hashes, written, offset - start))
    }
}

/// Reads at `offset` until `buf` is full or EOF.
pub(crate) fn read_full_at(src: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Creates the symlink `dst` -> `target` with the mtime `mtime`; returns its inode.
pub(crate) fn make_symlink(target: &[u8], dst: &Path, mtime: Ts) -> io::Result<u64> {
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), dst)?;
    set_mtime(dst, mtime)?;
    Ok(fs::symlink_metadata(dst)?.ino())
}

/// Duplicates the copy `path` (which has other links) under a temporary name and renames it
/// over `path`, so a following metadata change touches only this version. Returns the new
/// inode.
pub(crate) fn unshare(path: &Path) -> io::Result<u64> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let tmp = tmp_name(parent);
    let result = (|| {
        let src = File::open(path)?;
        let dst = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        kernel_copy(&src, &dst)?;
        let meta = src.metadata()?;
        finish_file(&dst, meta.mode() & 0o7777, ts_mtime(&meta))?;
        fs::rename(&tmp, path)?;
        Ok(dst.metadata()?.ino())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Copies the replica file `from` to the new path `to` in the kernel, with `mode` and
/// `mtime`; returns the copy's inode.
pub(crate) fn duplicate(from: &Path, to: &Path, mode: u32, mtime: Ts) -> io::Result<u64> {
    let result = (|| {
        let src = File::open(from)?;
        let dst = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)?;
        kernel_copy(&src, &dst)?;
        start_writeback(&dst, 0, 0);
        finish_file(&dst, mode, mtime)?;
        Ok(dst.metadata()?.ino())
    })();
    if result.is_err() {
        let _ = fs::remove_file(to);
    }
    result
}

/// Removes `path` whatever it is, restoring the owner's write and search bits of directories
/// on the way (a read-only replica's directories have none), never following a symlink.
/// Missing is fine.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if !meta.is_dir() {
        return ignore_missing(fs::remove_file(path));
    }
    // Depth-first with an explicit stack: (dir, children already removed?).
    let mut stack = vec![(path.to_path_buf(), false)];
    while let Some((dir, done)) = stack.pop() {
        if done {
            ignore_missing(fs::remove_dir(&dir))?;
            continue;
        }
        let meta = match fs::symlink_metadata(&dir) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if meta.mode() & 0o700 != 0o700 {
            chmod(&dir, (meta.mode() & 0o7777) | 0o700)?;
        }
        stack.push((dir.clone(), true));
        for item in fs::read_dir(&dir)? {
            let item = item?;
            let ft = item.file_type()?;
            if ft.is_dir() {
                stack.push((item.path(), false));
            } else {
                ignore_missing(fs::remove_file(item.path()))?;
            }
        }
    }
    Ok(())
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_writes_only_changed_blocks_and_unshares_links() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let dst = dir.path().join("dst");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&src, &data).unwrap();
        let w = copy_file(&src, &dst, 0o444, Some(4096), true).unwrap();
        assert_eq!(w.bytes, 100_000);
        assert_eq!(w.blocks.len(), 25);
        assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o777, 0o444);
        let other = dir.path().join("other");
        fs::hard_link(&dst, &other).unwrap();
        let mut changed = data.clone();
        changed[50_000] ^= 0xff;
        changed.extend_from_slice(b"tail");
        fs::write(&src, &changed).unwrap();
        let old = Entry {
            path: b"dst".to_vec(),
            kind: super::super::manifest::Kind::File,
            flags: 0,
            mode: 0o644,
            size: w.size,
            mtime: w.mtime,
            src_ino: 0,
            rep_ino: w.rep_ino,
            target: vec![],
            blocks: w.blocks.clone(),
        };
        let d = delta_file(&src, &dst, 0o444, 4096, Some(&old), true).unwrap();
        // The changed block plus the grown last block.
        assert_eq!(d.bytes, 4096 + (100_004 - 24 * 4096));
        assert_eq!(fs::read(&dst).unwrap(), changed);
        assert_eq!(
            fs::read(&other).unwrap(),
            data,
            "the other link is untouched"
        );
        // Shrinking, in place this time.
        fs::write(&src, &data[..10_000]).unwrap();
        let d2 = delta_file(&src, &dst, 0o444, 4096, None, true).unwrap();
        assert_eq!(d2.bytes, 10_000 - 2 * 4096);
        assert_eq!(fs::read(&dst).unwrap(), &data[..10_000]);
    }
}
