//! The NFSv3 procedures (RFC 1813), run on a blocking thread per call.
//!
//! Every call that takes a handle resolves it first (`Ctx::resolve`): the export must still
//! be exported, one of its rules must admit the client (else `NFS3ERR_ACCES`), and the file
//! must be found again below the current root with the same inode, birth time and inode
//! generation (else `NFS3ERR_STALE`; see `handle.rs`). Resolving a regular file or a
//! directory opens it through the descriptor cache (`exports.rs`), which tells the
//! generation and serves READ/WRITE/COMMIT. Modifying calls then need the read-write level (else `NFS3ERR_ROFS`)
//! and an unquiesced export (else `NFS3ERR_JUKEBOX`), account size changes against the
//! quota before touching data, and tell the observer after they succeeded.

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nfs3_types::nfs3::*;
use nfs3_types::xdr_codec::{List, Opaque, Void};
use nix::libc;

use crate::ExportRoot;
use crate::access::AccessLevel;
use crate::exports::{
    Change, ChangeKind, Export, ExportConfig, FdCache, OpenFile, ROOT_KEY, WriteGuard,
};
use crate::fs::{self, Attr, SetTime};
use crate::handle::{BadHandle, FileHandle};
use crate::rpc::{CallError, MAX_RECORD, ServerState, put};
use crate::xdr::Xdr;

/// Largest READ/WRITE (FSINFO rtmax/wtmax).
const MAX_IO: u32 = 1024 * 1024;
/// Preferred READDIR size (FSINFO dtpref).
const DIR_PREF: u32 = 64 * 1024;
/// Longest name of one path component.
pub(crate) const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4096;

type NfsResult<T> = Result<T, nfsstat3>;

fn io_status(err: io::Error) -> nfsstat3 {
    let status = fs::nfs_status(&err);
    if status == nfsstat3::NFS3ERR_IO {
        tracing::warn!(%err, "NFS call failed: {err}");
    } else {
        tracing::debug!(%err, "NFS call failed: {err}");
    }
    status
}

fn res<T, E>(result: NfsResult<T>, fail: impl FnOnce() -> E) -> Nfs3Result<T, E> {
    match result {
        Ok(ok) => Nfs3Result::Ok(ok),
        Err(status) => Nfs3Result::Err((status, fail())),
    }
}

fn empty_wcc() -> wcc_data {
    wcc_data::default()
}

pub(crate) fn dispatch(
    state: &ServerState,
    client: IpAddr,
    proc: u32,
    x: &mut Xdr<'_>,
    out: &mut Vec<u8>,
) -> Result<(), CallError> {
    let ctx = Ctx { state, client };
    match proc {
        0 => {}
        1 => {
            let fh = x.fh()?;
            put(out, &res(ctx.getattr(fh), || Void));
        }
        2 => {
            let fh = x.fh()?;
            let attrs = x.sattr3()?;
            let guard = if x.bool()? { Some(x.time()?) } else { None };
            put(
                out,
                &res(ctx.setattr(fh, &attrs, guard), SETATTR3resfail::default),
            );
        }
        3 => {
            let (dir, name) = x.dirop()?;
            put(out, &ctx.lookup(dir, name));
        }
        4 => {
            let fh = x.fh()?;
            let access = x.u32()?;
            put(out, &res(ctx.access(fh, access), ACCESS3resfail::default));
        }
        5 => {
            let fh = x.fh()?;
            put(out, &res(ctx.readlink(fh), READLINK3resfail::default));
        }
        6 => {
            let fh = x.fh()?;
            let offset = x.u64()?;
            let count = x.u32()?;
            let start = out.len();
            if let Err(status) = ctx.read(fh, offset, count, out) {
                out.truncate(start);
                put(out, &READ3res::Err((status, READ3resfail::default())));
            }
        }
        7 => {
            let fh = x.fh()?;
            let offset = x.u64()?;
            let count = x.u32()?;
            let stable = x.u32()?;
            let data = x.opaque(MAX_RECORD)?;
            let stable = match stable {
                0 => stable_how::UNSTABLE,
                1 => stable_how::DATA_SYNC,
                2 => stable_how::FILE_SYNC,
                _ => return Err(CallError::Garbage),
            };
            let len = data.len().min(count as usize);
            let written = ctx.write(fh, offset, stable, &data[..len]);
            if written.is_ok() {
                crate::metrics::written(len);
            }
            put(out, &res(written, WRITE3resfail::default));
        }
        8 => {
            let (dir, name) = x.dirop()?;
            let how = match x.u32()? {
                0 => How::Unchecked(x.sattr3()?),
                1 => How::Guarded(x.sattr3()?),
                2 => How::Exclusive(x.fixed8()?),
                _ => return Err(CallError::Garbage),
            };
            put(
                out,
                &res(ctx.create(dir, name, how), CREATE3resfail::default),
            );
        }
        9 => {
            let (dir, name) = x.dirop()?;
            let attrs = x.sattr3()?;
            put(
                out,
                &res(ctx.mkdir(dir, name, &attrs), MKDIR3resfail::default),
            );
        }
        10 => {
            let (dir, name) = x.dirop()?;
            let _attrs = x.sattr3()?;
            let target = x.name()?;
            put(
                out,
                &res(ctx.symlink(dir, name, target), SYMLINK3resfail::default),
            );
        }
        11 => {
            let (dir, name) = x.dirop()?;
            let kind = x.u32()?;
            put(
                out,
                &res(ctx.mknod(dir, name, kind), || MKNOD3resfail {
                    dir_wcc: empty_wcc(),
                }),
            );
        }
        12 => {
            let (dir, name) = x.dirop()?;
            put(
                out,
                &res(ctx.remove(dir, name, false), || REMOVE3resfail {
                    dir_wcc: empty_wcc(),
                }),
            );
        }
        13 => {
            let (dir, name) = x.dirop()?;
            let result = ctx.remove(dir, name, true).map(|ok| RMDIR3resok {
                dir_wcc: ok.dir_wcc,
            });
            put(
                out,
                &res(result, || RMDIR3resfail {
                    dir_wcc: empty_wcc(),
                }),
            );
        }
        14 => {
            let (from_dir, from) = x.dirop()?;
            let (to_dir, to) = x.dirop()?;
            put(
                out,
                &res(
                    ctx.rename(from_dir, from, to_dir, to),
                    RENAME3resfail::default,
                ),
            );
        }
        15 => {
            let fh = x.fh()?;
            let (dir, name) = x.dirop()?;
            put(
                out,
                &res(ctx.link(fh, dir, name), || LINK3resfail {
                    file_attributes: Nfs3Option::None,
                    linkdir_wcc: empty_wcc(),
                }),
            );
        }
        16 => {
            let fh = x.fh()?;
            let cookie = x.u64()?;
            let _verf = x.fixed8()?;
            let count = x.u32()?;
            put(
                out,
                &res(ctx.readdir(fh, cookie, count), READDIR3resfail::default),
            );
        }
        17 => {
            let fh = x.fh()?;
            let cookie = x.u64()?;
            let _verf = x.fixed8()?;
            // dircount is not enforced (as knfsd): maxcount bounds the reply
            let _dircount = x.u32()?;
            let maxcount = x.u32()?;
            put(
                out,
                &res(
                    ctx.readdirplus(fh, cookie, maxcount),
                    READDIRPLUS3resfail::default,
                ),
            );
        }
        18 => {
            let fh = x.fh()?;
            put(out, &res(ctx.fsstat(fh), FSSTAT3resfail::default));
        }
        19 => {
            let fh = x.fh()?;
            put(out, &res(ctx.fsinfo(fh), FSINFO3resfail::default));
        }
        20 => {
            let fh = x.fh()?;
            put(out, &res(ctx.pathconf(fh), PATHCONF3resfail::default));
        }
        21 => {
            let fh = x.fh()?;
            let _offset = x.u64()?;
            let _count = x.u32()?;
            put(
                out,
                &res(ctx.commit(fh), || COMMIT3resfail {
                    file_wcc: empty_wcc(),
                }),
            );
        }
        _ => return Err(CallError::ProcUnavail),
    }
    Ok(())
}

enum How {
    Unchecked(sattr3),
    Guarded(sattr3),
    Exclusive([u8; 8]),
}

/// The export root as it is for this call.
struct RootDir {
    fd: OwnedFd,
    /// Its real inode (changes with each published version).
    ino: u64,
    /// The fileid it reports (see `exports::check_root`).
    fileid: u64,
    attr: Attr,
}

/// A resolved handle.
struct Node {
    export: Arc<Export>,
    level: AccessLevel,
    root: RootDir,
    /// `O_PATH` descriptor of the object; `None` for the root itself.
    fd: Option<OwnedFd>,
    /// The object open, from the cache: regular files and directories below the root that
    /// the server may open (see `identify`).
    open: Option<OpenFile>,
    attr: Attr,
    /// Path below the root (empty for the root).
    rel: PathBuf,
    handle: FileHandle,
}

impl Node {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().unwrap_or(&self.root.fd).as_fd()
    }

    fn is_root(&self) -> bool {
        self.fd.is_none()
    }

    /// The key of this directory in the name table.
    fn key(&self) -> u64 {
        if self.is_root() {
            ROOT_KEY
        } else {
            self.attr.ino
        }
    }

    fn fileid(&self, ino: u64) -> u64 {
        if ino == self.root.ino {
            self.root.fileid
        } else {
            ino
        }
    }

    fn fattr(&self, a: &Attr) -> fattr3 {
        let type_ = match a.mode & libc::S_IFMT {
            libc::S_IFDIR => ftype3::NF3DIR,
            libc::S_IFLNK => ftype3::NF3LNK,
            libc::S_IFBLK => ftype3::NF3BLK,
            libc::S_IFCHR => ftype3::NF3CHR,
            libc::S_IFSOCK => ftype3::NF3SOCK,
            libc::S_IFIFO => ftype3::NF3FIFO,
            _ => ftype3::NF3REG,
        };
        fattr3 {
            type_,
            mode: a.mode & 0o7777,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            size: a.size,
            used: a.blocks.saturating_mul(512),
            rdev: specdata3 {
                specdata1: a.rdev.0,
                specdata2: a.rdev.1,
            },
            fsid: self.export.fsid,
            fileid: self.fileid(a.ino),
            atime: nfstime(a.atime),
            mtime: nfstime(a.mtime),
            ctime: nfstime(a.ctime),
        }
    }

    fn attr_of(&self, a: &Attr) -> post_op_attr {
        Nfs3Option::Some(self.fattr(a))
    }

    /// Fresh attributes of the object.
    fn post(&self) -> post_op_attr {
        match fs::stat_fd(self.fd()) {
            Ok(a) => self.attr_of(&a),
            Err(_) => Nfs3Option::None,
        }
    }

    /// wcc_data from the attributes at resolution to now.
    fn wcc(&self) -> wcc_data {
        wcc_data {
            before: Nfs3Option::Some(wcc(&self.attr)),
            after: self.post(),
        }
    }

    /// The handle of `a`, an object below this node's root with inode generation
    /// `generation`.
    fn handle_of(&self, a: &Attr, generation: u32) -> FileHandle {
        if a.ino == self.root.ino {
            FileHandle::root(self.export.uuid)
        } else {
            FileHandle::file(self.export.uuid, a.ino, a.btime, generation)
        }
    }

    /// Remembers that `a` (generation `generation`) is `name` in this directory and returns
    /// its handle.
    fn learn(&self, name: &[u8], a: &Attr, generation: u32) -> nfs_fh3 {
        if a.ino != self.root.ino {
            self.export.names.learn(a.ino, self.key(), name);
        }
        fh3(&self.handle_of(a, generation))
    }

    fn child_rel(&self, name: &[u8]) -> PathBuf {
        self.rel.join(std::ffi::OsStr::from_bytes(name))
    }
}

fn fh3(handle: &FileHandle) -> nfs_fh3 {
    nfs_fh3 {
        data: Opaque::owned(handle.encode()),
    }
}

/// The inode generation of the object the `O_PATH` descriptor `fd` refers to (attributes
/// `attr`, of export `export`) and, for a regular file or a directory, the object open from
/// the cache: read-write for a client that may write (so that its WRITEs find it), else
/// read-only. `(0, None)` for other objects, which cannot be opened, and for one the server
/// may not open (`EACCES`, `EPERM`; see `handle.rs`).
pub(crate) fn identify(
    files: &FdCache,
    export: &Export,
    level: AccessLevel,
    fd: BorrowedFd<'_>,
    attr: &Attr,
) -> io::Result<(u32, Option<OpenFile>)> {
    let key = (export.uuid, attr.ino, attr.btime);
    let opened = if attr.is_dir() {
        files.get_or_open(key, false, || {
            fs::reopen(fd, libc::O_RDONLY | libc::O_DIRECTORY).map(|dir| (dir, false))
        })
    } else if attr.is_file() {
        files.get_or_open(key, false, || {
            if level == AccessLevel::ReadWrite
                && let Ok(file) = fs::reopen(fd, libc::O_RDWR)
            {
                return Ok((file, true));
            }
            fs::reopen(fd, libc::O_RDONLY).map(|file| (file, false))
        })
    } else {
        return Ok((0, None));
    };
    match opened {
        Ok(open) => Ok((open.generation, Some(open))),
        Err(err) if matches!(err.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => Ok((0, None)),
        Err(err) => Err(err),
    }
}

fn nfstime((sec, nsec): (i64, u32)) -> nfstime3 {
    nfstime3 {
        seconds: u32::try_from(sec.max(0)).unwrap_or(u32::MAX),
        nseconds: nsec,
    }
}

fn wcc(a: &Attr) -> wcc_attr {
    wcc_attr {
        size: a.size,
        mtime: nfstime(a.mtime),
        ctime: nfstime(a.ctime),
    }
}

/// A client name: one path component, within NAME_MAX. knfsd answers `NFS3ERR_ACCES` for
/// the empty name and for names with "/" or NUL (its lookup_one_len refuses them).
fn check_name(name: &[u8]) -> NfsResult<()> {
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(nfsstat3::NFS3ERR_ACCES);
    }
    if name.len() > NAME_MAX {
        return Err(nfsstat3::NFS3ERR_NAMETOOLONG);
    }
    Ok(())
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

fn open_root(config: &ExportConfig) -> NfsResult<RootDir> {
    let fd = match &config.root {
        ExportRoot::Directory(dir) => fs::open_root_dir(dir),
        ExportRoot::Published(dir) => fs::open_published_root(dir),
    };
    let fd = fd.map_err(|err| match err.raw_os_error() {
        // the root is gone (share deleted, replica not yet published): old handles are stale
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => nfsstat3::NFS3ERR_STALE,
        _ => io_status(err),
    })?;
    let attr = fs::stat_fd(fd.as_fd()).map_err(io_status)?;
    Ok(RootDir {
        fileid: config.root_fileid.unwrap_or(attr.ino),
        ino: attr.ino,
        attr,
        fd,
    })
}

fn set_time_a(t: set_atime) -> SetTime {
    match t {
        set_atime::DONT_CHANGE => SetTime::Omit,
        set_atime::SET_TO_SERVER_TIME => SetTime::Now,
        set_atime::SET_TO_CLIENT_TIME(t) => SetTime::To(i64::from(t.seconds), t.nseconds),
    }
}

fn set_time_m(t: set_mtime) -> SetTime {
    match t {
        set_mtime::DONT_CHANGE => SetTime::Omit,
        set_mtime::SET_TO_SERVER_TIME => SetTime::Now,
        set_mtime::SET_TO_CLIENT_TIME(t) => SetTime::To(i64::from(t.seconds), t.nseconds),
    }
}

struct Ctx<'a> {
    state: &'a ServerState,
    client: IpAddr,
}

impl Ctx<'_> {
    fn resolve(&self, fh: &[u8]) -> NfsResult<Node> {
        let handle = FileHandle::decode(fh).map_err(|bad| match bad {
            BadHandle::Malformed => nfsstat3::NFS3ERR_BADHANDLE,
            BadHandle::Outdated => nfsstat3::NFS3ERR_STALE,
        })?;
        let export = self
            .state
            .exports
            .get_uuid(&handle.instance)
            .ok_or(nfsstat3::NFS3ERR_STALE)?;
        let config = export.config();
        let Some(level) = config.level_for(self.client) else {
            tracing::debug!(client = %self.client, share_instance.id = %export.id, "no rule admits {}", self.client);
            return Err(nfsstat3::NFS3ERR_ACCES);
        };
        let root = open_root(&config)?;
        if export.root_changed(root.ino) {
            // A published replica's new version: descriptors of the old one would keep
            // its files allocated after the replication engine deletes it.
            self.state.exports.files.purge_instance(&export.uuid);
        }
        if handle.root {
            let attr = root.attr;
            return Ok(Node {
                export,
                level,
                root,
                fd: None,
                open: None,
                attr,
                rel: PathBuf::new(),
                handle,
            });
        }
        for rel in export.names.paths(handle.ino) {
            let Ok(fd) = fs::open_path_beneath(root.fd.as_fd(), &rel) else {
                continue;
            };
            let Ok(attr) = fs::stat_fd(fd.as_fd()) else {
                continue;
            };
            if attr.ino != handle.ino || attr.btime != handle.btime {
                continue;
            }
            let (generation, open) =
                identify(&self.state.exports.files, &export, level, fd.as_fd(), &attr)
                    .map_err(io_status)?;
            // 0 on either side: not known when the handle was made, or not readable now.
            if generation != handle.generation && generation != 0 && handle.generation != 0 {
                continue;
            }
            return Ok(Node {
                export,
                level,
                root,
                fd: Some(fd),
                open,
                attr,
                rel,
                handle,
            });
        }
        // A descriptor of the file the handle named (deleted behind the server's back, say)
        // would keep it allocated for nothing.
        self.state
            .exports
            .files
            .purge_inode(&export.uuid, handle.ino);
        Err(nfsstat3::NFS3ERR_STALE)
    }

    /// Starts a modifying call on `node`'s export.
    fn begin_write(&self, node: &Node) -> NfsResult<WriteGuard> {
        if node.level != AccessLevel::ReadWrite {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        node.export.begin_write()
    }

    fn notify(&self, node: &Node, kind: ChangeKind, path: PathBuf, to: Option<PathBuf>) {
        self.state
            .exports
            .notify(&node.export, Change { kind, path, to });
    }

    /// An open regular file (the one resolving opened, else from the cache). Callers
    /// checked that `node` is one.
    fn open_file(&self, node: &Node, write: bool) -> NfsResult<Arc<File>> {
        if let Some(open) = &node.open
            && (open.writable || !write)
        {
            return Ok(open.file.clone());
        }
        let key = (node.export.uuid, node.attr.ino, node.attr.btime);
        self.state
            .exports
            .files
            .get_or_open(key, write, || {
                let flags = if write { libc::O_RDWR } else { libc::O_RDONLY };
                fs::reopen(node.fd(), flags).map(|file| (file, write))
            })
            .map(|open| open.file)
            .map_err(io_status)
    }

    /// `name` in directory `dir` (a symbolic link itself, not followed): its attributes and
    /// inode generation.
    fn child(&self, dir: &Node, name: &[u8]) -> NfsResult<(Attr, u32)> {
        let fd = fs::open_path_beneath(dir.fd(), Path::new(std::ffi::OsStr::from_bytes(name)))
            .map_err(io_status)?;
        self.identified(dir, fd.as_fd())
    }

    /// The attributes and inode generation of what `fd` (`O_PATH`, below `near`'s root)
    /// refers to.
    fn identified(&self, near: &Node, fd: BorrowedFd<'_>) -> NfsResult<(Attr, u32)> {
        let attr = fs::stat_fd(fd).map_err(io_status)?;
        if attr.ino == near.root.ino {
            return Ok((attr, 0));
        }
        let (generation, _) = identify(
            &self.state.exports.files,
            &near.export,
            near.level,
            fd,
            &attr,
        )
        .map_err(io_status)?;
        Ok((attr, generation))
    }

    /// Sets the size of a regular file, accounting the change against the quota first.
    fn resize(&self, export: &Export, ino: u64, file: &File, size: u64) -> NfsResult<()> {
        let _lock = export.file_lock(ino);
        let before = fs::stat_fd(file.as_fd()).map_err(io_status)?.size;
        let grow = size.saturating_sub(before);
        export.reserve(grow)?;
        let result = file.set_len(size);
        let after = match fs::stat_fd(file.as_fd()) {
            Ok(a) => a.size,
            Err(_) if result.is_ok() => size,
            Err(_) => before,
        };
        export.settle(grow, i128::from(after) - i128::from(before));
        result.map_err(io_status)
    }

    fn getattr(&self, fh: &[u8]) -> NfsResult<GETATTR3resok> {
        let node = self.resolve(fh)?;
        Ok(GETATTR3resok {
            obj_attributes: node.fattr(&node.attr),
        })
    }

    fn setattr(
        &self,
        fh: &[u8],
        attrs: &sattr3,
        guard: Option<nfstime3>,
    ) -> NfsResult<SETATTR3resok> {
        let node = self.resolve(fh)?;
        let _write = self.begin_write(&node)?;
        let before = node.attr;
        if let Some(ctime) = guard
            && ctime != nfstime(before.ctime)
        {
            return Err(nfsstat3::NFS3ERR_NOT_SYNC);
        }
        // One OS user serves every client: ownership cannot be given away (all_squash).
        if let Nfs3Option::Some(uid) = attrs.uid
            && uid != before.uid
        {
            return Err(nfsstat3::NFS3ERR_PERM);
        }
        if let Nfs3Option::Some(gid) = attrs.gid
            && gid != before.gid
        {
            return Err(nfsstat3::NFS3ERR_PERM);
        }
        let regular_or_dir = before.is_file() || before.is_dir();
        if let Nfs3Option::Some(size) = attrs.size {
            if before.is_dir() {
                return Err(nfsstat3::NFS3ERR_ISDIR);
            }
            if !before.is_file() {
                return Err(nfsstat3::NFS3ERR_INVAL);
            }
            let file = self.open_file(&node, true)?;
            self.resize(&node.export, node.attr.ino, &file, size)?;
        }
        if let Nfs3Option::Some(mode) = attrs.mode {
            // Linux cannot change a symlink's mode; knfsd ignores the request likewise.
            if regular_or_dir {
                fs::chmod_fd(node.fd(), mode).map_err(io_status)?;
            }
        }
        let atime = set_time_a(attrs.atime);
        let mtime = set_time_m(attrs.mtime);
        if atime != SetTime::Omit || mtime != SetTime::Omit {
            if regular_or_dir {
                fs::utimes_fd(node.fd(), atime, mtime).map_err(io_status)?;
            } else {
                // A symlink (or other special file): through its directory, not followed.
                let (Some(parent), Some(name)) = (node.rel.parent(), node.rel.file_name()) else {
                    return Err(nfsstat3::NFS3ERR_INVAL);
                };
                let dir = fs::open_dir_beneath(node.root.fd.as_fd(), parent)
                    .map_err(|_| nfsstat3::NFS3ERR_STALE)?;
                fs::utimes_at(dir.as_fd(), name.as_bytes(), atime, mtime).map_err(io_status)?;
            }
        }
        let obj_wcc = node.wcc();
        self.notify(&node, ChangeKind::Setattr, node.rel.clone(), None);
        Ok(SETATTR3resok { obj_wcc })
    }

    fn lookup(&self, dir_fh: &[u8], name: &[u8]) -> LOOKUP3res {
        let dir = match self.resolve(dir_fh) {
            Ok(dir) => dir,
            Err(status) => return Nfs3Result::Err((status, LOOKUP3resfail::default())),
        };
        let dir_attributes = dir.attr_of(&dir.attr);
        let found = (|| -> NfsResult<(nfs_fh3, Attr)> {
            if !dir.attr.is_dir() {
                return Err(nfsstat3::NFS3ERR_NOTDIR);
            }
            check_name(name)?;
            match name {
                b"." => Ok((fh3(&dir.handle), dir.attr)),
                // ".." of the root is the root: nothing above it is served
                b".." if dir.is_root() => Ok((fh3(&dir.handle), dir.attr)),
                b".." => {
                    // the parent on the path the directory was found by
                    let parent = dir.rel.parent().unwrap_or(Path::new(""));
                    let fd = fs::open_dir_beneath(dir.root.fd.as_fd(), parent)
                        .map_err(|_| nfsstat3::NFS3ERR_STALE)?;
                    let (attr, generation) = self.identified(&dir, fd.as_fd())?;
                    Ok((fh3(&dir.handle_of(&attr, generation)), attr))
                }
                _ => {
                    let (attr, generation) = self.child(&dir, name)?;
                    Ok((dir.learn(name, &attr, generation), attr))
                }
            }
        })();
        match found {
            Ok((object, attr)) => Nfs3Result::Ok(LOOKUP3resok {
                object,
                obj_attributes: dir.attr_of(&attr),
                dir_attributes,
            }),
            Err(status) => Nfs3Result::Err((status, LOOKUP3resfail { dir_attributes })),
        }
    }

    fn access(&self, fh: &[u8], wanted: u32) -> NfsResult<ACCESS3resok> {
        let node = self.resolve(fh)?;
        let mut allowed = ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_EXECUTE;
        if node.level == AccessLevel::ReadWrite {
            allowed |= ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;
        }
        // Mode bits are not enforced per user, but a file nobody may execute is not executable.
        if !node.attr.is_dir() && node.attr.mode & 0o111 == 0 {
            allowed &= !ACCESS3_EXECUTE;
        }
        Ok(ACCESS3resok {
            obj_attributes: node.attr_of(&node.attr),
            access: wanted & allowed,
        })
    }

    fn readlink(&self, fh: &[u8]) -> NfsResult<READLINK3resok<'static>> {
        let node = self.resolve(fh)?;
        if !node.attr.is_symlink() {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let target = fs::readlink_fd(node.fd()).map_err(io_status)?;
        Ok(READLINK3resok {
            symlink_attributes: node.attr_of(&node.attr),
            data: nfspath3(Opaque::owned(target)),
        })
    }

    /// READ, encoded straight into `out` (the data is read into the reply buffer).
    fn read(&self, fh: &[u8], offset: u64, count: u32, out: &mut Vec<u8>) -> NfsResult<()> {
        let node = self.resolve(fh)?;
        if node.attr.is_dir() {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        }
        if !node.attr.is_file() {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let file = self.open_file(&node, false)?;
        let count = count.min(MAX_IO) as usize;
        put(out, &nfsstat3::NFS3_OK);
        put(out, &node.attr_of(&node.attr));
        let fields = out.len();
        out.extend_from_slice(&[0; 12]); // count, eof, data length
        let data = out.len();
        let got = fs::read_at_append(&file, out, offset, count).map_err(io_status)?;
        crate::metrics::read(got);
        out.resize(data + got.div_ceil(4) * 4, 0);
        let eof = got < count || offset.saturating_add(got as u64) >= node.attr.size;
        out[fields..fields + 4].copy_from_slice(&(got as u32).to_be_bytes());
        out[fields + 4..fields + 8].copy_from_slice(&u32::from(eof).to_be_bytes());
        out[fields + 8..fields + 12].copy_from_slice(&(got as u32).to_be_bytes());
        Ok(())
    }

    fn write(
        &self,
        fh: &[u8],
        offset: u64,
        stable: stable_how,
        data: &[u8],
    ) -> NfsResult<WRITE3resok> {
        let node = self.resolve(fh)?;
        let _write = self.begin_write(&node)?;
        if node.attr.is_dir() {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        }
        if !node.attr.is_file() {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= i64::MAX as u64)
            .ok_or(nfsstat3::NFS3ERR_FBIG)?;
        let file = self.open_file(&node, true)?;
        let export = &node.export;
        let before;
        {
            // Size before, reservation, write and size after of one file do not interleave.
            let _lock = export.file_lock(node.attr.ino);
            before = fs::stat_fd(file.as_fd()).map_err(io_status)?;
            let grow = end.saturating_sub(before.size);
            export.reserve(grow)?;
            let result = file.write_all_at(data, offset);
            let after = fs::stat_fd(file.as_fd()).map(|a| a.size);
            let after = match (&result, after) {
                (_, Ok(size)) => size,
                (Ok(()), Err(_)) => before.size.max(end),
                (Err(_), Err(_)) => before.size,
            };
            export.settle(grow, i128::from(after) - i128::from(before.size));
            result.map_err(io_status)?;
        }
        let committed = if stable == stable_how::UNSTABLE {
            stable_how::UNSTABLE
        } else {
            file.sync_all().map_err(io_status)?;
            stable_how::FILE_SYNC
        };
        let after = fs::stat_fd(file.as_fd())
            .map(|a| node.attr_of(&a))
            .unwrap_or_default();
        self.notify(&node, ChangeKind::Write, node.rel.clone(), None);
        Ok(WRITE3resok {
            file_wcc: wcc_data {
                before: Nfs3Option::Some(wcc(&before)),
                after,
            },
            count: data.len() as u32,
            committed,
            verf: writeverf3(self.state.write_verifier),
        })
    }

    /// Resolves a directory for a modifying call on `name` in it.
    fn dir_for_change(&self, dir_fh: &[u8], name: &[u8]) -> NfsResult<(Node, WriteGuard)> {
        let dir = self.resolve(dir_fh)?;
        let guard = self.begin_write(&dir)?;
        if !dir.attr.is_dir() {
            return Err(nfsstat3::NFS3ERR_NOTDIR);
        }
        check_name(name)?;
        Ok((dir, guard))
    }

    fn create(&self, dir_fh: &[u8], name: &[u8], how: How) -> NfsResult<CREATE3resok> {
        let (dir, _write) = self.dir_for_change(dir_fh, name)?;
        if is_dot(name) {
            return Err(nfsstat3::NFS3ERR_EXIST);
        }
        let dfd = dir.fd();
        let (file, created) = match &how {
            How::Guarded(_) => (fs::create_at(dfd, name, true).map_err(io_status)?, true),
            How::Unchecked(_) => match fs::create_at(dfd, name, true) {
                Ok(file) => (file, true),
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                    // An existing file is kept (only a requested size applies). A symlink
                    // there is not followed: ELOOP, answered EXIST.
                    let file = fs::create_at(dfd, name, false).map_err(|err| {
                        match err.raw_os_error() {
                            Some(libc::ELOOP) => nfsstat3::NFS3ERR_EXIST,
                            _ => io_status(err),
                        }
                    })?;
                    (file, false)
                }
                Err(err) => return Err(io_status(err)),
            },
            How::Exclusive(verf) => {
                // The verifier is kept in atime/mtime as knfsd does (high bits cleared), so
                // that a retransmitted create finds its own file and succeeds.
                let mtime =
                    i64::from(u32::from_be_bytes(verf[..4].try_into().expect("4")) & 0x7fff_ffff);
                let atime =
                    i64::from(u32::from_be_bytes(verf[4..].try_into().expect("4")) & 0x7fff_ffff);
                match fs::create_at(dfd, name, true) {
                    Ok(file) => {
                        fs::utimes_fd(file.as_fd(), SetTime::To(atime, 0), SetTime::To(mtime, 0))
                            .map_err(io_status)?;
                        (file, true)
                    }
                    Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                        let (attr, generation) = self.child(&dir, name)?;
                        if !(attr.is_file()
                            && attr.size == 0
                            && attr.mtime.0 == mtime
                            && attr.atime.0 == atime)
                        {
                            return Err(nfsstat3::NFS3ERR_EXIST);
                        }
                        let obj = dir.learn(name, &attr, generation);
                        return Ok(CREATE3resok {
                            obj: Nfs3Option::Some(obj),
                            obj_attributes: dir.attr_of(&attr),
                            dir_wcc: dir.wcc(),
                        });
                    }
                    Err(err) => return Err(io_status(err)),
                }
            }
        };
        if let How::Unchecked(attrs) | How::Guarded(attrs) = &how {
            let fresh = fs::stat_fd(file.as_fd()).map_err(io_status)?;
            if created {
                // The requested mode exactly (creation applied the server's umask).
                let mode = match attrs.mode {
                    Nfs3Option::Some(mode) => mode & 0o7777,
                    Nfs3Option::None => 0o644,
                };
                if fresh.mode & 0o7777 != mode {
                    file.set_permissions(std::fs::Permissions::from_mode(mode))
                        .map_err(io_status)?;
                }
            }
            if let Nfs3Option::Some(size) = attrs.size {
                self.resize(&dir.export, fresh.ino, &file, size)?;
            }
        }
        let changed = created || matches!(&how, How::Unchecked(a) if a.size.is_some());
        let attr = fs::stat_fd(file.as_fd()).map_err(io_status)?;
        // The new file's descriptor goes to the cache: it tells the generation, and the
        // client's WRITEs that usually follow find it there.
        let generation = if attr.is_file() {
            let key = (dir.export.uuid, attr.ino, attr.btime);
            let open = self
                .state
                .exports
                .files
                .insert(key, file, true)
                .map_err(io_status)?;
            open.generation
        } else {
            0
        };
        let obj = dir.learn(name, &attr, generation);
        let dir_wcc = dir.wcc();
        if changed {
            self.notify(&dir, ChangeKind::Create, dir.child_rel(name), None);
        }
        Ok(CREATE3resok {
            obj: Nfs3Option::Some(obj),
            obj_attributes: dir.attr_of(&attr),
            dir_wcc,
        })
    }

    fn mkdir(&self, dir_fh: &[u8], name: &[u8], attrs: &sattr3) -> NfsResult<MKDIR3resok> {
        let (dir, _write) = self.dir_for_change(dir_fh, name)?;
        if is_dot(name) {
            return Err(nfsstat3::NFS3ERR_EXIST);
        }
        let mode = match attrs.mode {
            Nfs3Option::Some(mode) => mode & 0o7777,
            Nfs3Option::None => 0o755,
        };
        fs::mkdir_at(dir.fd(), name, mode).map_err(io_status)?;
        let fd = fs::open_path_beneath(dir.fd(), Path::new(std::ffi::OsStr::from_bytes(name)))
            .map_err(io_status)?;
        let mut attr = fs::stat_fd(fd.as_fd()).map_err(io_status)?;
        if attr.is_dir() && attr.mode & 0o7777 != mode {
            // mkdir applied the server's umask; the client asked for this mode
            fs::chmod_fd(fd.as_fd(), mode).map_err(io_status)?;
            attr = fs::stat_fd(fd.as_fd()).map_err(io_status)?;
        }
        let (generation, _) = identify(
            &self.state.exports.files,
            &dir.export,
            dir.level,
            fd.as_fd(),
            &attr,
        )
        .map_err(io_status)?;
        let obj = dir.learn(name, &attr, generation);
        let dir_wcc = dir.wcc();
        self.notify(&dir, ChangeKind::Mkdir, dir.child_rel(name), None);
        Ok(MKDIR3resok {
            obj: Nfs3Option::Some(obj),
            obj_attributes: dir.attr_of(&attr),
            dir_wcc,
        })
    }

    fn symlink(&self, dir_fh: &[u8], name: &[u8], target: &[u8]) -> NfsResult<SYMLINK3resok> {
        let (dir, _write) = self.dir_for_change(dir_fh, name)?;
        if is_dot(name) {
            return Err(nfsstat3::NFS3ERR_EXIST);
        }
        if target.len() > PATH_MAX {
            return Err(nfsstat3::NFS3ERR_NAMETOOLONG);
        }
        if target.is_empty() || target.contains(&0) {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        // The target is stored as given: the server never follows a symlink itself.
        fs::symlink_at(dir.fd(), name, target).map_err(io_status)?;
        let (attr, generation) = self.child(&dir, name)?;
        let obj = dir.learn(name, &attr, generation);
        let dir_wcc = dir.wcc();
        self.notify(&dir, ChangeKind::Symlink, dir.child_rel(name), None);
        Ok(SYMLINK3resok {
            obj: Nfs3Option::Some(obj),
            obj_attributes: dir.attr_of(&attr),
            dir_wcc,
        })
    }

    fn mknod(&self, dir_fh: &[u8], name: &[u8], kind: u32) -> NfsResult<MKNOD3resok> {
        let (_dir, _write) = self.dir_for_change(dir_fh, name)?;
        match kind {
            // regular files, directories and symlinks have their own procedures
            1 | 2 | 5 => Err(nfsstat3::NFS3ERR_BADTYPE),
            // devices, sockets and fifos are not served
            _ => Err(nfsstat3::NFS3ERR_NOTSUPP),
        }
    }

    fn remove(&self, dir_fh: &[u8], name: &[u8], is_dir: bool) -> NfsResult<REMOVE3resok> {
        let (dir, _write) = self.dir_for_change(dir_fh, name)?;
        if is_dot(name) {
            // knfsd: REMOVE of a dot entry is ACCES; RFC 1813: RMDIR of one is INVAL
            return Err(if is_dir {
                nfsstat3::NFS3ERR_INVAL
            } else {
                nfsstat3::NFS3ERR_ACCES
            });
        }
        let dfd = dir.fd();
        let target = fs::stat_at(dfd, name).map_err(io_status)?;
        let export = &dir.export;
        let _lock = export.file_lock(target.ino);
        // Again under the lock: a WRITE that was extending the file has finished now.
        let target = fs::stat_at(dfd, name).map_err(io_status)?;
        fs::unlink_at(dfd, name, is_dir).map_err(io_status)?;
        if target.is_file() && target.nlink <= 1 {
            export.settle(0, -i128::from(target.size));
        }
        if target.is_dir() || (target.is_file() && target.nlink <= 1) {
            // gone: our descriptor would keep its inode (and space) allocated
            self.state
                .exports
                .files
                .purge_inode(&export.uuid, target.ino);
        }
        export.names.forget(target.ino, dir.key(), name);
        let dir_wcc = dir.wcc();
        let kind = if is_dir {
            ChangeKind::Rmdir
        } else {
            ChangeKind::Remove
        };
        self.notify(&dir, kind, dir.child_rel(name), None);
        Ok(REMOVE3resok { dir_wcc })
    }

    fn rename(
        &self,
        from_fh: &[u8],
        from: &[u8],
        to_fh: &[u8],
        to: &[u8],
    ) -> NfsResult<RENAME3resok> {
        let from_dir = self.resolve(from_fh)?;
        let to_dir = self.resolve(to_fh)?;
        if from_dir.export.uuid != to_dir.export.uuid {
            return Err(nfsstat3::NFS3ERR_XDEV);
        }
        let _write = self.begin_write(&from_dir)?;
        if !from_dir.attr.is_dir() || !to_dir.attr.is_dir() {
            return Err(nfsstat3::NFS3ERR_NOTDIR);
        }
        check_name(from)?;
        check_name(to)?;
        if is_dot(from) || is_dot(to) {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let export = &from_dir.export;
        let source = fs::stat_at(from_dir.fd(), from).map_err(io_status)?;
        let replaced = match fs::stat_at(to_dir.fd(), to) {
            Ok(attr) if attr.ino != source.ino => Some(attr),
            _ => None,
        };
        let _lock = replaced.map(|attr| export.file_lock(attr.ino));
        fs::rename_at(from_dir.fd(), from, to_dir.fd(), to).map_err(io_status)?;
        if let Some(replaced) = replaced {
            if replaced.is_file() && replaced.nlink <= 1 {
                export.settle(0, -i128::from(replaced.size));
            }
            if replaced.is_dir() || (replaced.is_file() && replaced.nlink <= 1) {
                self.state
                    .exports
                    .files
                    .purge_inode(&export.uuid, replaced.ino);
            }
            export.names.forget(replaced.ino, to_dir.key(), to);
        }
        export.names.forget(source.ino, from_dir.key(), from);
        if source.ino != from_dir.root.ino {
            export.names.learn(source.ino, to_dir.key(), to);
        }
        let fromdir_wcc = from_dir.wcc();
        let todir_wcc = to_dir.wcc();
        self.notify(
            &from_dir,
            ChangeKind::Rename,
            from_dir.child_rel(from),
            Some(to_dir.child_rel(to)),
        );
        Ok(RENAME3resok {
            fromdir_wcc,
            todir_wcc,
        })
    }

    fn link(&self, fh: &[u8], dir_fh: &[u8], name: &[u8]) -> NfsResult<LINK3resok> {
        let file = self.resolve(fh)?;
        let dir = self.resolve(dir_fh)?;
        if file.export.uuid != dir.export.uuid {
            return Err(nfsstat3::NFS3ERR_XDEV);
        }
        let _write = self.begin_write(&dir)?;
        if !dir.attr.is_dir() {
            return Err(nfsstat3::NFS3ERR_NOTDIR);
        }
        check_name(name)?;
        if is_dot(name) {
            return Err(nfsstat3::NFS3ERR_EXIST);
        }
        if file.attr.is_dir() {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        }
        fs::link_fd_at(file.fd(), file.attr.is_symlink(), dir.fd(), name).map_err(io_status)?;
        dir.learn(name, &file.attr, file.handle.generation);
        let linkdir_wcc = dir.wcc();
        self.notify(
            &dir,
            ChangeKind::Link,
            file.rel.clone(),
            Some(dir.child_rel(name)),
        );
        Ok(LINK3resok {
            file_attributes: file.post(),
            linkdir_wcc,
        })
    }

    /// Entries of a directory from `cookie` on, as many as `budget` bytes of reply allow
    /// (`size` tells the encoded size of one). `Ok((entries, eof))`.
    fn entries<T>(
        &self,
        dir: &Node,
        cookie: u64,
        budget: usize,
        mut make: impl FnMut(&Node, fs::DirEntry, u64) -> (T, usize),
    ) -> NfsResult<(Vec<T>, bool)> {
        if !dir.attr.is_dir() {
            return Err(nfsstat3::NFS3ERR_NOTDIR);
        }
        let handle = fs::reopen(dir.fd(), libc::O_RDONLY | libc::O_DIRECTORY).map_err(io_status)?;
        let mut reader =
            fs::DirReader::new(handle, cookie).map_err(|_| nfsstat3::NFS3ERR_BAD_COOKIE)?;
        let mut used = 0;
        let mut entries = Vec::new();
        loop {
            let Some(entry) = reader.next_entry().map_err(io_status)? else {
                return Ok((entries, true));
            };
            let fileid = match entry.name.as_slice() {
                b"." => dir.fileid(dir.attr.ino),
                b".." if dir.is_root() => dir.root.fileid,
                b".." => fs::stat_at(dir.fd(), b"..")
                    .map(|a| dir.fileid(a.ino))
                    .unwrap_or(entry.ino),
                _ => dir.fileid(entry.ino),
            };
            let (item, size) = make(dir, entry, fileid);
            if used + size > budget {
                if entries.is_empty() {
                    return Err(nfsstat3::NFS3ERR_TOOSMALL);
                }
                return Ok((entries, false));
            }
            used += size;
            entries.push(item);
        }
    }

    fn readdir(&self, fh: &[u8], cookie: u64, count: u32) -> NfsResult<READDIR3resok<'static>> {
        let dir = self.resolve(fh)?;
        // status, dir attributes, verifier, end of list, eof
        let overhead = 4 + 88 + 8 + 4 + 4;
        let budget = (count as usize)
            .min(MAX_RECORD / 2)
            .saturating_sub(overhead);
        let (entries, eof) = self.entries(&dir, cookie, budget, |_, entry, fileid| {
            let size = 4 + 8 + 4 + entry.name.len().div_ceil(4) * 4 + 8;
            let item = entry3 {
                fileid,
                name: filename3(Opaque::owned(entry.name)),
                cookie: entry.next,
            };
            (item, size)
        })?;
        Ok(READDIR3resok {
            dir_attributes: dir.attr_of(&dir.attr),
            cookieverf: cookieverf3::default(),
            reply: dirlist3 {
                entries: List(entries),
                eof,
            },
        })
    }

    fn readdirplus(
        &self,
        fh: &[u8],
        cookie: u64,
        maxcount: u32,
    ) -> NfsResult<READDIRPLUS3resok<'static>> {
        let dir = self.resolve(fh)?;
        let overhead = 4 + 88 + 8 + 4 + 4;
        let budget = (maxcount as usize)
            .min(MAX_RECORD / 2)
            .saturating_sub(overhead);
        let (entries, eof) = self.entries(&dir, cookie, budget, |dir, entry, fileid| {
            let (attrs, handle) = match entry.name.as_slice() {
                b"." => (dir.attr_of(&dir.attr), Nfs3Option::Some(fh3(&dir.handle))),
                b".." => (Nfs3Option::None, Nfs3Option::None),
                name => match self.child(dir, name) {
                    Ok((attr, generation)) => (
                        dir.attr_of(&attr),
                        Nfs3Option::Some(dir.learn(name, &attr, generation)),
                    ),
                    // gone since it was listed
                    Err(_) => (Nfs3Option::None, Nfs3Option::None),
                },
            };
            let size = 4
                + 8
                + 4
                + entry.name.len().div_ceil(4) * 4
                + 8
                + if attrs.is_some() { 88 } else { 4 }
                + match &handle {
                    Nfs3Option::Some(fh) => 8 + fh.data.len(),
                    Nfs3Option::None => 4,
                };
            let item = entryplus3 {
                fileid,
                name: filename3(Opaque::owned(entry.name)),
                cookie: entry.next,
                name_attributes: attrs,
                name_handle: handle,
            };
            (item, size)
        })?;
        Ok(READDIRPLUS3resok {
            dir_attributes: dir.attr_of(&dir.attr),
            cookieverf: cookieverf3::default(),
            reply: dirlistplus3 {
                entries: List(entries),
                eof,
            },
        })
    }

    fn fsstat(&self, fh: &[u8]) -> NfsResult<FSSTAT3resok> {
        let node = self.resolve(fh)?;
        let st = fs::statvfs_fd(node.root.fd.as_fd()).map_err(io_status)?;
        let unit = st.f_frsize;
        let mut tbytes = st.f_blocks.saturating_mul(unit);
        let mut fbytes = st.f_bfree.saturating_mul(unit);
        let mut abytes = st.f_bavail.saturating_mul(unit);
        if let Some(quota) = node.export.quota() {
            let room = quota.saturating_sub(node.export.usage());
            tbytes = quota;
            fbytes = fbytes.min(room);
            abytes = abytes.min(room);
        }
        Ok(FSSTAT3resok {
            obj_attributes: node.attr_of(&node.attr),
            tbytes,
            fbytes,
            abytes,
            tfiles: st.f_files,
            ffiles: st.f_ffree,
            afiles: st.f_favail,
            invarsec: 0,
        })
    }

    fn fsinfo(&self, fh: &[u8]) -> NfsResult<FSINFO3resok> {
        let node = self.resolve(fh)?;
        Ok(FSINFO3resok {
            obj_attributes: node.attr_of(&node.attr),
            rtmax: MAX_IO,
            rtpref: MAX_IO,
            rtmult: 4096,
            wtmax: MAX_IO,
            wtpref: MAX_IO,
            wtmult: 4096,
            dtpref: DIR_PREF,
            maxfilesize: i64::MAX as u64,
            time_delta: nfstime3 {
                seconds: 0,
                nseconds: 1,
            },
            properties: FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
        })
    }

    fn pathconf(&self, fh: &[u8]) -> NfsResult<PATHCONF3resok> {
        let node = self.resolve(fh)?;
        Ok(PATHCONF3resok {
            obj_attributes: node.attr_of(&node.attr),
            linkmax: 65000,
            name_max: NAME_MAX as u32,
            no_trunc: true,
            chown_restricted: true,
            case_insensitive: false,
            case_preserving: true,
        })
    }

    fn commit(&self, fh: &[u8]) -> NfsResult<COMMIT3resok> {
        let node = self.resolve(fh)?;
        if node.attr.is_dir() {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        }
        if !node.attr.is_file() {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let file = self.open_file(&node, false)?;
        file.sync_all().map_err(io_status)?;
        Ok(COMMIT3resok {
            file_wcc: node.wcc(),
            verf: writeverf3(self.state.write_verifier),
        })
    }
}
