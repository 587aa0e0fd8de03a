//! The file-system calls of the server, all relative to directory descriptors.
//!
//! Owns the rules that keep a client inside its export: every path the server opens is
//! opened below the export root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` and `O_NOFOLLOW`, and every name a client sends is one path
//! component used with an `*at` call that does not follow a trailing symbolic link. A
//! descriptor is only re-opened through `/proc/self/fd/N` (to get a readable/writable one
//! from an `O_PATH` one) when it refers to a regular file or a directory, where that magic
//! link cannot lead anywhere else. Nothing is cached here.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nfs3_types::nfs3::nfsstat3;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::libc;

use crate::handle::Btime;

/// The attributes of a file as statx reports them (birth time included).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Attr {
    pub ino: u64,
    pub btime: Btime,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Allocated 512-byte blocks.
    pub blocks: u64,
    pub rdev: (u32, u32),
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

impl Attr {
    pub(crate) fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub(crate) fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    pub(crate) fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
}

fn cstring(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn statx_raw(dir: libc::c_int, path: &CStr, flags: libc::c_int) -> io::Result<Attr> {
    // SAFETY: statx is plain data; the kernel fills it in.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stx` is a valid, writable statx.
    let rc = unsafe {
        libc::statx(
            dir,
            path.as_ptr(),
            flags | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let ts = |t: libc::statx_timestamp| (t.tv_sec, t.tv_nsec);
    let btime = if stx.stx_mask & libc::STATX_BTIME != 0 {
        Btime {
            sec: stx.stx_btime.tv_sec,
            nsec: stx.stx_btime.tv_nsec,
        }
    } else {
        Btime::default()
    };
    Ok(Attr {
        ino: stx.stx_ino,
        btime,
        mode: u32::from(stx.stx_mode),
        nlink: stx.stx_nlink,
        uid: stx.stx_uid,
        gid: stx.stx_gid,
        size: stx.stx_size,
        blocks: stx.stx_blocks,
        rdev: (stx.stx_rdev_major, stx.stx_rdev_minor),
        atime: ts(stx.stx_atime),
        mtime: ts(stx.stx_mtime),
        ctime: ts(stx.stx_ctime),
    })
}

/// The attributes of what `fd` refers to (any descriptor, `O_PATH` included).
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<Attr> {
    statx_raw(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

/// The attributes of `name` in `dir`, without following a symbolic link.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Attr> {
    statx_raw(dir.as_raw_fd(), &cstring(name)?, 0)
}

fn beneath(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        )
}

/// Opens `rel` (relative, possibly several components) below `root` as an `O_PATH`
/// descriptor: no symbolic link is followed, not even the last component (a symlink yields
/// a descriptor of the link itself), and nothing outside `root` can be reached.
pub(crate) fn open_path_beneath(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let rel: &OsStr = if rel.as_os_str().is_empty() {
        OsStr::new(".")
    } else {
        rel.as_os_str()
    };
    openat2(root, rel, beneath(OFlag::O_PATH)).map_err(io::Error::from)
}

/// Opens the directory `rel` below `root` as an `O_PATH` descriptor (see `open_path_beneath`).
pub(crate) fn open_dir_beneath(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let rel: &OsStr = if rel.as_os_str().is_empty() {
        OsStr::new(".")
    } else {
        rel.as_os_str()
    };
    openat2(root, rel, beneath(OFlag::O_PATH | OFlag::O_DIRECTORY)).map_err(io::Error::from)
}

/// The export root of a `Directory` export: the administrator's path (symlinks in it are
/// the administrator's business and are followed).
pub(crate) fn open_root_dir(path: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(fd)
}

/// The root of a `Published` export: `dir/current`, a relative symlink to a version
/// directory inside `dir`. Following it once, atomically, inside `dir` only.
pub(crate) fn open_published_root(dir: &Path) -> io::Result<OwnedFd> {
    let dir_fd = open_root_dir(dir)?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    Ok(openat2(&dir_fd, "current", how)?)
}

fn proc_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number")
}

/// A readable (and, with `write`, writable) descriptor of what the `O_PATH` descriptor `fd`
/// refers to. Callers guarantee (by statx of `fd`) that it is a regular file or a
/// directory: the magic link then leads to exactly that inode and nowhere else.
pub(crate) fn reopen(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<File> {
    let path = proc_path(fd);
    // SAFETY: the path is NUL-terminated; the result is checked.
    let raw = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor we own.
    Ok(unsafe { File::from_raw_fd(raw) })
}

/// The inode generation of what `fd` (a readable descriptor, not `O_PATH`) refers to, as
/// `FS_IOC_GETVERSION` reports it (ext4, xfs, btrfs: a new value for every new inode; what
/// knfsd puts in its handles); 0 where the file system keeps none.
pub(crate) fn generation(fd: BorrowedFd<'_>) -> io::Result<u32> {
    // The request is declared with a `long` argument, but file systems store an `int` into
    // its first bytes; a zeroed `long` takes either without writing out of bounds.
    let mut word: libc::c_long = 0;
    // SAFETY: `word` is a live, writable `long`, the size the request number declares.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_GETVERSION, &mut word) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL) => Ok(0),
            _ => Err(err),
        };
    }
    let bytes = word.to_ne_bytes();
    Ok(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Appends up to `len` bytes of `file` from `offset` to `buf`, fewer at the end of the file;
/// returns how many. The space is not zero-filled first: for a 1 MiB READ that doubled the
/// writes to the reply buffer (a `memset` was ~12% of the server's CPU in a cold-cache
/// sequential read).
pub(crate) fn read_at_append(
    file: &File,
    buf: &mut Vec<u8>,
    offset: u64,
    len: usize,
) -> io::Result<usize> {
    buf.reserve(len);
    let mut got = 0;
    while got < len {
        let spare = &mut buf.spare_capacity_mut()[..len - got];
        let at = offset
            .checked_add(got as u64)
            .and_then(|at| libc::off_t::try_from(at).ok())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `spare` is the buffer's own unused capacity, valid for writes of
        // `spare.len()` bytes; pread writes at most that many.
        let n =
            unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), at) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            break;
        }
        let n = n as usize;
        debug_assert!(n <= spare.len());
        // SAFETY: pread initialised the first `n` bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
        got += n;
    }
    Ok(got)
}

/// `chmod` of a regular file or directory given by an `O_PATH` descriptor (see `reopen`).
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let path = proc_path(fd);
    // SAFETY: NUL-terminated path; result checked.
    if unsafe { libc::chmod(path.as_ptr(), (mode & 0o7777) as libc::mode_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One timestamp of a `utimensat` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetTime {
    Omit,
    Now,
    To(i64, u32),
}

fn timespec(t: SetTime) -> libc::timespec {
    match t {
        SetTime::Omit => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        SetTime::Now => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        SetTime::To(sec, nsec) => libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec.min(999_999_999) as libc::c_long,
        },
    }
}

/// Sets atime/mtime of a regular file or directory given by an `O_PATH` descriptor.
pub(crate) fn utimes_fd(fd: BorrowedFd<'_>, atime: SetTime, mtime: SetTime) -> io::Result<()> {
    let path = proc_path(fd);
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: NUL-terminated path, two timespecs; result checked.
    if unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets atime/mtime of `name` in `dir` itself (a symbolic link is not followed).
pub(crate) fn utimes_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    atime: SetTime,
    mtime: SetTime,
) -> io::Result<()> {
    let name = cstring(name)?;
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: NUL-terminated name, two timespecs; result checked.
    let rc = unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates `name` in `dir` as a regular file opened read-write, never through a symlink.
pub(crate) fn create_at(dir: BorrowedFd<'_>, name: &[u8], exclusive: bool) -> io::Result<File> {
    let mut flags = OFlag::O_CREAT | OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if exclusive {
        flags |= OFlag::O_EXCL;
    }
    let fd = nix::fcntl::openat(
        dir,
        OsStr::from_bytes(name),
        flags,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )?;
    Ok(File::from(fd))
}

pub(crate) fn mkdir_at(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    nix::sys::stat::mkdirat(
        dir,
        OsStr::from_bytes(name),
        nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777),
    )?;
    Ok(())
}

pub(crate) fn symlink_at(dir: BorrowedFd<'_>, name: &[u8], target: &[u8]) -> io::Result<()> {
    nix::unistd::symlinkat(OsStr::from_bytes(target), dir, OsStr::from_bytes(name))?;
    Ok(())
}

pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: &[u8], is_dir: bool) -> io::Result<()> {
    let flag = if is_dir {
        nix::unistd::UnlinkatFlags::RemoveDir
    } else {
        nix::unistd::UnlinkatFlags::NoRemoveDir
    };
    nix::unistd::unlinkat(dir, OsStr::from_bytes(name), flag)?;
    Ok(())
}

pub(crate) fn rename_at(
    from_dir: BorrowedFd<'_>,
    from: &[u8],
    to_dir: BorrowedFd<'_>,
    to: &[u8],
) -> io::Result<()> {
    nix::fcntl::renameat(
        from_dir,
        OsStr::from_bytes(from),
        to_dir,
        OsStr::from_bytes(to),
    )?;
    Ok(())
}

/// A new hard link `name` in `dir` to what the `O_PATH` descriptor `fd` refers to.
pub(crate) fn link_fd_at(
    fd: BorrowedFd<'_>,
    is_symlink: bool,
    dir: BorrowedFd<'_>,
    name: &[u8],
) -> io::Result<()> {
    let name = cstring(name)?;
    // AT_EMPTY_PATH links the descriptor's own inode without any lookup (it needs
    // CAP_DAC_READ_SEARCH, which a root server has).
    // SAFETY: NUL-terminated names; result checked.
    let rc = unsafe {
        libc::linkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOENT) || is_symlink {
        return Err(err);
    }
    // Without the capability: follow the descriptor's magic link. Safe for anything but a
    // symbolic link (which would be followed further), excluded above.
    let path = proc_path(fd);
    // SAFETY: as above.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            path.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The target of the symbolic link the `O_PATH` descriptor `fd` refers to.
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let target = nix::fcntl::readlinkat(fd, "")?;
    Ok(std::os::unix::ffi::OsStringExt::into_vec(target))
}

/// `statvfs` of the file system `fd` lives on.
pub(crate) fn statvfs_fd(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    // SAFETY: plain data filled in by the kernel.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and writable struct; result checked.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// One directory entry as `getdents64` reports it.
pub(crate) struct DirEntry {
    pub ino: u64,
    /// The position after this entry: the NFS cookie of the entry.
    pub next: u64,
    pub name: Vec<u8>,
}

/// Reads a directory with `getdents64`, resuming at a cookie (a `d_off` value, as Linux
/// NFS servers do: stable across calls and across changes of the directory).
pub(crate) struct DirReader {
    dir: File,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl DirReader {
    pub(crate) fn new(dir: File, cookie: u64) -> io::Result<DirReader> {
        if cookie != 0 {
            let offset =
                i64::try_from(cookie).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: valid descriptor; result checked.
            if unsafe { libc::lseek(dir.as_raw_fd(), offset, libc::SEEK_SET) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(DirReader {
            dir,
            buf: vec![0u8; 32 * 1024],
            pos: 0,
            len: 0,
        })
    }

    pub(crate) fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        if self.pos >= self.len {
            // SAFETY: the buffer is valid for its length; result checked.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    self.dir.as_raw_fd(),
                    self.buf.as_mut_ptr(),
                    self.buf.len(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                return Ok(None);
            }
            self.pos = 0;
            self.len = n as usize;
        }
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let rec = &self.buf[self.pos..self.len];
        let malformed = || io::Error::from_raw_os_error(libc::EIO);
        if rec.len() < 19 {
            return Err(malformed());
        }
        let ino = u64::from_ne_bytes(rec[0..8].try_into().map_err(|_| malformed())?);
        let off = i64::from_ne_bytes(rec[8..16].try_into().map_err(|_| malformed())?);
        let reclen = usize::from(u16::from_ne_bytes(
            rec[16..18].try_into().map_err(|_| malformed())?,
        ));
        if reclen < 19 || reclen > rec.len() {
            return Err(malformed());
        }
        let name_bytes = &rec[19..reclen];
        let name_len = name_bytes
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(name_bytes.len());
        let entry = DirEntry {
            ino,
            next: off as u64,
            name: name_bytes[..name_len].to_vec(),
        };
        self.pos += reclen;
        Ok(Some(entry))
    }
}

/// Bytes of file data below `root`: the sum of `st_size` of its regular files, a file with
/// several hard links counted once (the same rule as the replication engine's
/// `tree_usage_bytes`). Symbolic links are not followed.
pub(crate) fn tree_usage_bytes(root: &Path) -> io::Result<u64> {
    let mut total: u64 = 0;
    let mut seen_links = std::collections::HashSet::new();
    // An explicit stack: a deep tree cannot overflow the thread stack.
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound && dir != root => continue,
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                if meta.nlink() > 1 && !seen_links.insert((meta.dev(), meta.ino())) {
                    continue;
                }
                total = total.saturating_add(meta.len());
            }
        }
    }
    Ok(total)
}

/// The NFS status for an OS error.
pub(crate) fn nfs_status(err: &io::Error) -> nfsstat3 {
    match err.raw_os_error() {
        Some(libc::ENOENT) => nfsstat3::NFS3ERR_NOENT,
        Some(libc::EEXIST) => nfsstat3::NFS3ERR_EXIST,
        Some(libc::ENOTDIR) => nfsstat3::NFS3ERR_NOTDIR,
        Some(libc::EISDIR) => nfsstat3::NFS3ERR_ISDIR,
        Some(libc::ENOTEMPTY) => nfsstat3::NFS3ERR_NOTEMPTY,
        Some(libc::ENOSPC) => nfsstat3::NFS3ERR_NOSPC,
        Some(libc::EDQUOT) => nfsstat3::NFS3ERR_DQUOT,
        Some(libc::EROFS) => nfsstat3::NFS3ERR_ROFS,
        Some(libc::EACCES) => nfsstat3::NFS3ERR_ACCES,
        Some(libc::EPERM) => nfsstat3::NFS3ERR_PERM,
        Some(libc::ENAMETOOLONG) => nfsstat3::NFS3ERR_NAMETOOLONG,
        Some(libc::EXDEV) => nfsstat3::NFS3ERR_XDEV,
        Some(libc::EINVAL) => nfsstat3::NFS3ERR_INVAL,
        Some(libc::ESTALE) => nfsstat3::NFS3ERR_STALE,
        Some(libc::EFBIG) => nfsstat3::NFS3ERR_FBIG,
        Some(libc::EMLINK) => nfsstat3::NFS3ERR_MLINK,
        Some(libc::ENXIO) => nfsstat3::NFS3ERR_NXIO,
        Some(libc::ENODEV) => nfsstat3::NFS3ERR_NODEV,
        Some(libc::EOPNOTSUPP) => nfsstat3::NFS3ERR_NOTSUPP,
        // a symbolic link met where the server does not follow one
        Some(libc::ELOOP) => nfsstat3::NFS3ERR_INVAL,
        _ => nfsstat3::NFS3ERR_IO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn open_beneath_refuses_symlinks_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/file"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("esc")).unwrap();
        std::os::unix::fs::symlink("sub", dir.path().join("inner")).unwrap();
        let root = open_root_dir(dir.path()).unwrap();
        let fd = open_path_beneath(root.as_fd(), Path::new("sub/file")).unwrap();
        assert!(stat_fd(fd.as_fd()).unwrap().is_file());
        // the link itself, never its target
        let fd = open_path_beneath(root.as_fd(), Path::new("esc")).unwrap();
        assert!(stat_fd(fd.as_fd()).unwrap().is_symlink());
        for bad in [
            "esc/passwd",
            "inner/file",
            "../x",
            "/etc/passwd",
            "sub/../../x",
        ] {
            assert!(
                open_path_beneath(root.as_fd(), Path::new(bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn stat_reports_birth_time_and_inode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"hello").unwrap();
        let root = open_root_dir(dir.path()).unwrap();
        let attr = stat_at(root.as_fd(), b"f").unwrap();
        let meta = std::fs::metadata(dir.path().join("f")).unwrap();
        assert_eq!(attr.ino, meta.ino());
        assert_eq!(attr.size, 5);
        assert!(attr.is_file());
        if let Ok(created) = meta.created() {
            let since = created.duration_since(std::time::UNIX_EPOCH).unwrap();
            assert_eq!(attr.btime.sec, since.as_secs() as i64);
        }
    }

    #[test]
    fn a_recreated_file_has_a_new_generation_where_the_file_system_keeps_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let generation_of = |path: &Path| generation(File::open(path).unwrap().as_fd()).unwrap();
        std::fs::write(&path, b"1").unwrap();
        let first = generation_of(&path);
        assert_eq!(generation_of(&path), first, "stable for one inode");
        assert_eq!(
            generation(File::open(dir.path()).unwrap().as_fd())
                .map(|_| ())
                .ok(),
            Some(()),
            "directories too"
        );
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, b"2").unwrap();
            seen.insert(generation_of(&path));
        }
        // ext4/xfs/btrfs (the test machines' /tmp) give each new inode a new generation;
        // tmpfs keeps none (all 0).
        assert!(seen.len() > 1 || seen == [0].into(), "{seen:?}");
    }

    #[test]
    fn read_at_append_appends_what_the_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let mut buf = b"head".to_vec();
        assert_eq!(read_at_append(&file, &mut buf, 10, 50_000).unwrap(), 50_000);
        assert_eq!(&buf[..4], b"head");
        assert_eq!(&buf[4..], &data[10..50_010]);
        // short at the end of the file, nothing past it
        let mut buf = Vec::with_capacity(8);
        assert_eq!(read_at_append(&file, &mut buf, 99_990, 4096).unwrap(), 10);
        assert_eq!(buf, &data[99_990..]);
        let mut buf = Vec::new();
        assert_eq!(read_at_append(&file, &mut buf, 200_000, 10).unwrap(), 0);
        assert!(buf.is_empty());
        assert!(read_at_append(&file, &mut buf, u64::MAX, 10).is_err());
    }

    #[test]
    fn dir_reader_resumes_at_cookies() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..500 {
            std::fs::write(dir.path().join(format!("f{i}")), b"").unwrap();
        }
        let root = open_root_dir(dir.path()).unwrap();
        let open = || reopen(root.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        let mut all = Vec::new();
        let mut cookie = 0;
        loop {
            let mut reader = DirReader::new(open(), cookie).unwrap();
            let mut page = 0;
            while page < 37 {
                let Some(entry) = reader.next_entry().unwrap() else {
                    break;
                };
                cookie = entry.next;
                all.push(entry.name);
                page += 1;
            }
            if page < 37 {
                break;
            }
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 502, "500 files plus . and ..");
    }

    #[test]
    fn usage_counts_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/a"), vec![0u8; 100]).unwrap();
        std::fs::hard_link(dir.path().join("d/a"), dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("c"), vec![0u8; 7]).unwrap();
        std::os::unix::fs::symlink("c", dir.path().join("l")).unwrap();
        assert_eq!(tree_usage_bytes(dir.path()).unwrap(), 107);
    }

    #[test]
    fn errno_mapping() {
        let s = |e| nfs_status(&io::Error::from_raw_os_error(e));
        assert_eq!(s(libc::ENOENT), nfsstat3::NFS3ERR_NOENT);
        assert_eq!(s(libc::ENOTEMPTY), nfsstat3::NFS3ERR_NOTEMPTY);
        assert_eq!(s(libc::EDQUOT), nfsstat3::NFS3ERR_DQUOT);
        assert_eq!(s(libc::EXDEV), nfsstat3::NFS3ERR_XDEV);
        assert_eq!(s(libc::EBUSY), nfsstat3::NFS3ERR_IO);
        assert_eq!(
            nfs_status(&io::Error::other("no errno")),
            nfsstat3::NFS3ERR_IO
        );
    }
}
