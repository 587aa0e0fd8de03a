//! A small NFSv3 client for tests, over `nfs3_client`: mount an export location, write and
//! read whole files by path, and see the NFS status a refused call gets. The kernel of the
//! test machines has no NFS client, so tests talk to shoal's server through this.

use std::net::SocketAddr;

use nfs3_client::nfs3_types::nfs3::{
    self, CREATE3args, LOOKUP3args, MKDIR3args, Nfs3Option, Nfs3Result, READ3args, REMOVE3args,
    WRITE3args, createhow3, diropargs3, nfs_fh3, nfsstat3, sattr3, stable_how,
};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::{Nfs3Connection, Nfs3ConnectionBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest piece a call reads or writes.
const CHUNK: usize = 256 * 1024;

/// `MNT3ERR_ACCES`: the export exists but no rule admits the client.
pub const MOUNT_ACCES: u32 = nfs3_client::nfs3_types::mount::mountstat3::MNT3ERR_ACCES as u32;
/// `MNT3ERR_NOENT`: no such export.
pub const MOUNT_NOENT: u32 = nfs3_client::nfs3_types::mount::mountstat3::MNT3ERR_NOENT as u32;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NfsError {
    /// MOUNT refused the export with this status (`mountstat3` as its number: the type
    /// has no equality).
    Mount(u32),
    /// An NFS call answered with this status.
    Status(nfsstat3),
    /// The connection or the RPC layer failed.
    Transport(String),
}

/// One mounted export.
pub struct NfsMount {
    conn: Nfs3Connection<Stream>,
    root: nfs_fh3,
}

/// A TCP connection for `nfs3_client` on which the peer closing the connection is an error.
/// (`nfs3_client`'s own tokio wrapper hands it a 0-byte read, which its read loop retries
/// forever: a test whose server was killed would spin instead of failing.)
pub struct Stream(TcpStream);

impl nfs3_client::io::AsyncRead for Stream {
    async fn async_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf).await?;
        if n == 0 && !buf.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(n)
    }
}

impl nfs3_client::io::AsyncWrite for Stream {
    async fn async_write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).await
    }
}

/// Connects [`Stream`]s (from any local port: shoal accepts unprivileged ones).
struct Connector;

impl nfs3_client::net::Connector for Connector {
    type Connection = Stream;

    async fn connect(&self, addr: SocketAddr) -> std::io::Result<Stream> {
        Ok(Stream(TcpStream::connect(addr).await?))
    }

    async fn connect_with_port(
        &self,
        addr: SocketAddr,
        _local_port: u16,
    ) -> std::io::Result<Stream> {
        self.connect(addr).await
    }
}

/// The path part of an NFS export location (`<address>:/shares/<id>` -> `/shares/<id>`).
pub fn export_path(location: &str) -> &str {
    let at = location
        .find(":/")
        .unwrap_or_else(|| panic!("{location} is not an NFS export location"));
    &location[at + 1..]
}

impl NfsMount {
    /// Mounts `path` of the server at `server` (MOUNT and NFS on the same port).
    pub async fn mount(server: SocketAddr, path: &str) -> Result<NfsMount, NfsError> {
        let conn = Nfs3ConnectionBuilder::new(Connector, server.ip().to_string(), path)
            .mount_port(server.port())
            .nfs3_port(server.port())
            .connect_from_privileged_port(false)
            .mount()
            .await
            .map_err(|err| match err {
                nfs3_client::ConnectError::Mount(nfs3_client::MountError::Denied(status)) => {
                    NfsError::Mount(status as u32)
                }
                other => NfsError::Transport(other.to_string()),
            })?;
        let root = conn.root_nfs_fh3();
        Ok(NfsMount { conn, root })
    }

    /// The handle of `path` (relative, `/`-separated), looked up from the root.
    pub async fn lookup(&mut self, path: &str) -> Result<nfs_fh3, NfsError> {
        let mut fh = self.root.clone();
        for name in path.split('/').filter(|n| !n.is_empty()) {
            let res = self
                .conn
                .lookup(&LOOKUP3args {
                    what: diropargs3 {
                        dir: fh,
                        name: name.as_bytes().into(),
                    },
                })
                .await
                .map_err(transport)?;
            fh = ok(res)?.object;
        }
        Ok(fh)
    }

    /// Creates (or truncates) file `path` and writes `data` to it, each piece `FILE_SYNC`.
    pub async fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), NfsError> {
        let (dir, name) = split(path);
        let dir = self.lookup(dir).await?;
        let attrs = sattr3 {
            size: Nfs3Option::Some(0),
            ..sattr3::default()
        };
        let res = self
            .conn
            .create(&CREATE3args {
                where_: diropargs3 {
                    dir: dir.clone(),
                    name: name.as_bytes().into(),
                },
                how: createhow3::UNCHECKED(attrs),
            })
            .await
            .map_err(transport)?;
        let file = match ok(res)?.obj {
            Nfs3Option::Some(fh) => fh,
            Nfs3Option::None => self.lookup(path).await?,
        };
        self.write_at(&file, 0, data).await
    }

    /// Writes `data` at `offset` of `file`, `FILE_SYNC`.
    pub async fn write_at(
        &mut self,
        file: &nfs_fh3,
        offset: u64,
        data: &[u8],
    ) -> Result<(), NfsError> {
        let mut done = 0usize;
        while done < data.len() {
            let piece = &data[done..(done + CHUNK).min(data.len())];
            let res = self
                .conn
                .write(&WRITE3args {
                    file: file.clone(),
                    offset: offset + done as u64,
                    count: piece.len() as u32,
                    stable: stable_how::FILE_SYNC,
                    data: Opaque::borrowed(piece),
                })
                .await
                .map_err(transport)?;
            let written = ok(res)?.count as usize;
            if written == 0 {
                return Err(NfsError::Transport("the server wrote nothing".to_owned()));
            }
            done += written;
        }
        Ok(())
    }

    /// The whole content of file `path`.
    pub async fn read_file(&mut self, path: &str) -> Result<Vec<u8>, NfsError> {
        let file = self.lookup(path).await?;
        let mut out = Vec::new();
        loop {
            let res = self
                .conn
                .read(&READ3args {
                    file: file.clone(),
                    offset: out.len() as u64,
                    count: CHUNK as u32,
                })
                .await
                .map_err(transport)?;
            let read = ok(res)?;
            out.extend_from_slice(read.data.as_ref());
            if read.eof || read.count == 0 {
                return Ok(out);
            }
        }
    }

    /// Creates directory `path`.
    pub async fn mkdir(&mut self, path: &str) -> Result<(), NfsError> {
        let (dir, name) = split(path);
        let dir = self.lookup(dir).await?;
        let res = self
            .conn
            .mkdir(&MKDIR3args {
                where_: diropargs3 {
                    dir,
                    name: name.as_bytes().into(),
                },
                attributes: sattr3::default(),
            })
            .await
            .map_err(transport)?;
        ok(res).map(|_| ())
    }

    /// Removes file `path`.
    pub async fn remove(&mut self, path: &str) -> Result<(), NfsError> {
        let (dir, name) = split(path);
        let dir = self.lookup(dir).await?;
        let res = self
            .conn
            .remove(&REMOVE3args {
                object: diropargs3 {
                    dir,
                    name: name.as_bytes().into(),
                },
            })
            .await
            .map_err(transport)?;
        ok(res).map(|_| ())
    }

    /// GETATTR of the root: whether the export still answers this client.
    pub async fn getattr_root(&mut self) -> Result<nfs3::fattr3, NfsError> {
        let res = self
            .conn
            .getattr(&nfs3::GETATTR3args {
                object: self.root.clone(),
            })
            .await
            .map_err(transport)?;
        ok(res).map(|r| r.obj_attributes)
    }
}

fn split(path: &str) -> (&str, &str) {
    let path = path.trim_start_matches('/');
    match path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", path),
    }
}

fn ok<T, E>(res: Nfs3Result<T, E>) -> Result<T, NfsError> {
    match res {
        Nfs3Result::Ok(value) => Ok(value),
        Nfs3Result::Err((status, _)) => Err(NfsError::Status(status)),
    }
}

fn transport(err: impl std::fmt::Display) -> NfsError {
    NfsError::Transport(err.to_string())
}
