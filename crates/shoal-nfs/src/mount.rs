//! The MOUNT v3 program (root handles of exports) and the portmap v2 answers of the server.
//!
//! MOUNT hands out the root handle of `/shares/<id>` to a client that one of the export's
//! rules admits; it keeps no mount list (UMNT/UMNTALL are no-ops, DUMP is empty): access is
//! checked again on every NFS call anyway.
//!
//! A path below an export, `/shares/<id>/a/b`, mounts that directory (what Linux clients
//! and libnfs URLs with nested paths ask for), after the same rule check as the export
//! itself. It is walked one component at a time below the current root with the server's
//! rules (`fs.rs`): a `..` component or a symbolic link anywhere on the path is refused
//! (`MNT3ERR_ACCES`: the server never leaves the export and never follows a link), a
//! missing component is `MNT3ERR_NOENT`, a file on the path `MNT3ERR_NOTDIR` (as knfsd
//! answers). Each directory passed is entered in the name table, so that the handle
//! resolves like one learned by LOOKUP; like those, it is stale after a server restart (the
//! table is not persisted) and the client has to mount again.
//!
//! Portmap answers GETPORT for NFS v3 and MOUNT v3 over TCP with this server's own port, so
//! a client that asks the port it is talking to finds everything there; the server does not
//! register with a system rpcbind.

use std::ffi::OsStr;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nfs3_types::mount::{
    dirpath, export_node, fhandle3, mountres3, mountres3_ok, mountstat3, name,
};
use nfs3_types::xdr_codec::{List, Opaque};

use nix::libc;

use crate::access::AccessLevel;
use crate::exports::{Export, ROOT_KEY};
use crate::fs::{self, Attr};
use crate::handle::FileHandle;
use crate::nfs::NAME_MAX;
use crate::rpc::{CallError, ServerState, put};
use crate::xdr::Xdr;

/// Longest path a MNT may name.
const MNTPATHLEN: usize = 1024;

pub(crate) fn dispatch(
    state: &ServerState,
    client: IpAddr,
    proc: u32,
    x: &mut Xdr<'_>,
    out: &mut Vec<u8>,
) -> Result<(), CallError> {
    match proc {
        // NULL
        0 => Ok(()),
        // MNT
        1 => {
            let path = x.name()?;
            put(out, &mnt(state, client, path));
            Ok(())
        }
        // DUMP: no mount list is kept
        2 => {
            put(out, &false);
            Ok(())
        }
        // UMNT, UMNTALL
        3 => {
            x.name()?;
            Ok(())
        }
        4 => Ok(()),
        // EXPORT
        5 => {
            let exports = state.exports.all();
            let paths: Vec<String> = exports
                .iter()
                .map(|export| crate::Exports::export_path(&export.id))
                .collect();
            let list = List(
                paths
                    .iter()
                    .map(|path| export_node {
                        ex_dir: dirpath(Opaque::borrowed(path.as_bytes())),
                        ex_groups: List::<name<'_>>::default(),
                    })
                    .collect(),
            );
            put(out, &list);
            Ok(())
        }
        _ => Err(CallError::ProcUnavail),
    }
}

fn mnt(state: &ServerState, client: IpAddr, path: &[u8]) -> mountres3<'static> {
    if path.len() > MNTPATHLEN {
        return mountres3::Err(mountstat3::MNT3ERR_NAMETOOLONG);
    }
    let shown = String::from_utf8_lossy(path);
    let Some((export, below)) = state.exports.by_path(path) else {
        tracing::debug!(%client, "MNT of unknown path {shown}");
        return mountres3::Err(mountstat3::MNT3ERR_NOENT);
    };
    let config = export.config();
    let Some(level) = config.level_for(client) else {
        tracing::info!(%client, share_instance.id = %export.id, "MNT of {shown} refused: no rule admits {client}");
        return mountres3::Err(mountstat3::MNT3ERR_ACCES);
    };
    let root = match &config.root {
        crate::ExportRoot::Directory(dir) => fs::open_root_dir(dir),
        crate::ExportRoot::Published(dir) => fs::open_published_root(dir),
    };
    let root = match root {
        Ok(root) => root,
        Err(err) => {
            tracing::warn!(%err, share_instance.id = %export.id, "MNT of {shown}: the export root is unusable: {err}");
            return mountres3::Err(match err.raw_os_error() {
                Some(libc::ENOENT) => mountstat3::MNT3ERR_NOENT,
                Some(libc::ENOTDIR) => mountstat3::MNT3ERR_NOTDIR,
                _ => mountstat3::MNT3ERR_IO,
            });
        }
    };
    let handle = match subdirectory(state, &export, level, root.as_fd(), below) {
        Ok(handle) => handle,
        Err(status) => {
            tracing::debug!(%client, share_instance.id = %export.id, "MNT of {shown} refused: {status:?}");
            return mountres3::Err(status);
        }
    };
    tracing::debug!(%client, share_instance.id = %export.id, "MNT of {shown}");
    mountres3::Ok(mountres3_ok {
        fhandle: fhandle3(Opaque::owned(handle.encode().to_vec())),
        // AUTH_UNIX, what Linux clients use by default; AUTH_NONE is accepted as well.
        auth_flavors: vec![1],
    })
}

/// The handle of the directory `below` the export root (`a/b`; empty: the root itself),
/// walked one component at a time (see the module documentation). Empty and `.`
/// components are skipped.
fn subdirectory(
    state: &ServerState,
    export: &Export,
    level: AccessLevel,
    root: BorrowedFd<'_>,
    below: &[u8],
) -> Result<FileHandle, mountstat3> {
    let mut found: Option<(OwnedFd, Attr)> = None;
    for part in below
        .split(|b| *b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
    {
        if part == b".." {
            return Err(mountstat3::MNT3ERR_ACCES);
        }
        if part.len() > NAME_MAX {
            return Err(mountstat3::MNT3ERR_NAMETOOLONG);
        }
        let (dir, parent) = match &found {
            Some((fd, attr)) => (fd.as_fd(), attr.ino),
            None => (root, ROOT_KEY),
        };
        let fd = fs::open_path_beneath(dir, Path::new(OsStr::from_bytes(part)))
            .map_err(|err| mount_status(&err))?;
        let attr = fs::stat_fd(fd.as_fd()).map_err(|err| mount_status(&err))?;
        if attr.is_symlink() {
            return Err(mountstat3::MNT3ERR_ACCES);
        }
        if !attr.is_dir() {
            return Err(mountstat3::MNT3ERR_NOTDIR);
        }
        export.names.learn(attr.ino, parent, part);
        found = Some((fd, attr));
    }
    let Some((fd, attr)) = found else {
        return Ok(FileHandle::root(export.uuid));
    };
    let (generation, _) =
        crate::nfs::identify(&state.exports.files, export, level, fd.as_fd(), &attr)
            .map_err(|err| mount_status(&err))?;
    Ok(FileHandle::file(
        export.uuid,
        attr.ino,
        attr.btime,
        generation,
    ))
}

/// The MOUNT status of a failed step of the walk below the root.
fn mount_status(err: &std::io::Error) -> mountstat3 {
    match err.raw_os_error() {
        Some(libc::ENOENT) => mountstat3::MNT3ERR_NOENT,
        Some(libc::ENOTDIR) => mountstat3::MNT3ERR_NOTDIR,
        Some(libc::ENAMETOOLONG) => mountstat3::MNT3ERR_NAMETOOLONG,
        // a symbolic link or a way out of the root met by openat2
        Some(libc::ELOOP | libc::EXDEV | libc::EACCES | libc::EPERM) => mountstat3::MNT3ERR_ACCES,
        _ => mountstat3::MNT3ERR_IO,
    }
}

/// Portmap v2: NULL, GETPORT and DUMP about this server; SET/UNSET refused.
pub(crate) fn portmap(
    state: &ServerState,
    proc: u32,
    x: &mut Xdr<'_>,
    out: &mut Vec<u8>,
) -> Result<(), CallError> {
    use nfs3_types::portmap::{IPPROTO_TCP, mapping};
    let ours = [
        (nfs3_types::nfs3::PROGRAM, nfs3_types::nfs3::VERSION),
        (nfs3_types::mount::PROGRAM, nfs3_types::mount::VERSION),
    ];
    match proc {
        0 => Ok(()),
        // SET, UNSET: nobody registers here
        1 | 2 => {
            for _ in 0..4 {
                x.u32()?;
            }
            put(out, &false);
            Ok(())
        }
        // GETPORT
        3 => {
            let prog = x.u32()?;
            let vers = x.u32()?;
            let prot = x.u32()?;
            let _port = x.u32()?;
            let port = if prot == IPPROTO_TCP && ours.contains(&(prog, vers)) {
                u32::from(state.port)
            } else {
                0
            };
            put(out, &port);
            Ok(())
        }
        // DUMP
        4 => {
            let list = List(
                ours.iter()
                    .map(|(prog, vers)| mapping {
                        prog: *prog,
                        vers: *vers,
                        prot: IPPROTO_TCP,
                        port: u32::from(state.port),
                    })
                    .collect(),
            );
            put(out, &list);
            Ok(())
        }
        _ => Err(CallError::ProcUnavail),
    }
}
