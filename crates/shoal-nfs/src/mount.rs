//! The MOUNT v3 program (root handles of exports) and the portmap v2 answers of the server.
//!
//! MOUNT hands out the root handle of `/shares/<id>` to a client that one of the export's
//! rules admits; it keeps no mount list (UMNT/UMNTALL are no-ops, DUMP is empty): access is
//! checked again on every NFS call anyway. Portmap answers GETPORT for NFS v3 and MOUNT v3
//! over TCP with this server's own port, so a client that asks the port it is talking to
//! finds everything there; the server does not register with a system rpcbind.

use std::net::IpAddr;

use nfs3_types::mount::{
    dirpath, export_node, fhandle3, mountres3, mountres3_ok, mountstat3, name,
};
use nfs3_types::xdr_codec::{List, Opaque};

use crate::fs;
use crate::handle::FileHandle;
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
    let Some(export) = state.exports.by_path(path) else {
        tracing::debug!(%client, "MNT of unknown path {shown}");
        return mountres3::Err(mountstat3::MNT3ERR_NOENT);
    };
    let config = export.config();
    if config.level_for(client).is_none() {
        tracing::info!(%client, share_instance.id = %export.id, "MNT of {shown} refused: no rule admits {client}");
        return mountres3::Err(mountstat3::MNT3ERR_ACCES);
    }
    let root = match &config.root {
        crate::ExportRoot::Directory(dir) => fs::open_root_dir(dir),
        crate::ExportRoot::Published(dir) => fs::open_published_root(dir),
    };
    if let Err(err) = root {
        tracing::warn!(%err, share_instance.id = %export.id, "MNT of {shown}: the export root is unusable: {err}");
        return mountres3::Err(match err.raw_os_error() {
            Some(nix::libc::ENOENT) => mountstat3::MNT3ERR_NOENT,
            Some(nix::libc::ENOTDIR) => mountstat3::MNT3ERR_NOTDIR,
            _ => mountstat3::MNT3ERR_IO,
        });
    }
    tracing::debug!(%client, share_instance.id = %export.id, "MNT of {shown}");
    mountres3::Ok(mountres3_ok {
        fhandle: fhandle3(Opaque::owned(
            FileHandle::root(export.uuid).encode().to_vec(),
        )),
        // AUTH_UNIX, what Linux clients use by default; AUTH_NONE is accepted as well.
        auth_flavors: vec![1],
    })
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
