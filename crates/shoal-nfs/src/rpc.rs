//! ONC RPC over TCP: the listener, one reader and one writer per connection, record
//! marking, call headers, authentication flavors and the dispatch to the programs.
//!
//! Per connection, the reader decodes records and runs up to `MAX_IN_FLIGHT` calls at once
//! (Linux and libnfs clients pipeline many requests on one connection); each call's file
//! work runs on tokio's blocking pool, and the writer sends the replies in completion order
//! (RPC matches them by XID). A record larger than `MAX_RECORD` closes the connection.
//! Record and reply buffers go back to a small server-wide pool once used: a fresh 1 MiB
//! `Vec` per READ reply or WRITE record is a fresh `mmap` (page faults, page clearing,
//! `munmap`), which cost about a quarter of the server's CPU time in 1 MiB reads.
//! Nothing here is persisted; the write verifier is new with every server start, so that
//! clients resend the UNSTABLE writes they had not committed before a restart.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nfs3_types::xdr_codec::Pack;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::exports::Exports;
use crate::xdr::{Garbage, Xdr};

/// Largest record accepted: a 1 MiB WRITE plus headers, with room to spare.
pub(crate) const MAX_RECORD: usize = 1024 * 1024 + 64 * 1024;
/// Calls of one connection executed at once; the reader waits for a slot beyond that.
const MAX_IN_FLIGHT: usize = 32;
/// Buffers the pool keeps: enough for a few connections streaming 1 MiB calls, at most
/// about 17 MiB held.
const POOL_BUFFERS: usize = 16;
/// Buffers smaller than this are not worth keeping (malloc serves them from its heap).
const POOL_MIN_CAPACITY: usize = 64 * 1024;
/// Largest credential or verifier body (RFC 5531).
const MAX_AUTH_BODY: usize = 400;

const LAST_FRAGMENT: u32 = 0x8000_0000;
const MSG_CALL: u32 = 0;
const MSG_REPLY: u32 = 1;
const MSG_ACCEPTED: u32 = 0;
const MSG_DENIED: u32 = 1;
const SUCCESS: u32 = 0;
const PROG_UNAVAIL: u32 = 1;
const PROG_MISMATCH: u32 = 2;
const PROC_UNAVAIL: u32 = 3;
const GARBAGE_ARGS: u32 = 4;
const SYSTEM_ERR: u32 = 5;
const RPC_MISMATCH: u32 = 0;
const AUTH_ERROR: u32 = 1;
const AUTH_BADCRED: u32 = 1;
const AUTH_NONE: u32 = 0;
const AUTH_UNIX: u32 = 1;

/// Why a call is not answered with its procedure's result.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CallError {
    ProcUnavail,
    Garbage,
}

impl From<Garbage> for CallError {
    fn from(_: Garbage) -> CallError {
        CallError::Garbage
    }
}

/// What every call of one server shares.
pub(crate) struct ServerState {
    pub exports: Arc<Exports>,
    /// WRITE/COMMIT verifier: random per server start.
    pub write_verifier: [u8; 8],
    /// The port portmap GETPORT answers for NFS and MOUNT.
    pub port: u16,
    /// Used record and reply buffers, for reuse.
    pub buffers: BufferPool,
}

/// Large buffers kept for reuse by records and replies (see the module documentation).
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer, with the capacity of a used one when the pool has one.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    /// Keeps `buf` (emptied) if it is large, not oversized and the pool has room.
    pub(crate) fn give(&self, mut buf: Vec<u8>) {
        if !(POOL_MIN_CAPACITY..=2 * MAX_RECORD).contains(&buf.capacity()) {
            return;
        }
        buf.clear();
        if let Ok(mut free) = self.free.lock()
            && free.len() < POOL_BUFFERS
        {
            free.push(buf);
        }
    }
}

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum NfsError {
    #[error("cannot listen for NFS on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// An NFSv3 + MOUNT (+ portmap GETPORT) server on one TCP port.
pub struct NfsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<ServerState>,
}

impl NfsServer {
    /// Binds MOUNT, NFS (and portmap GETPORT answering this port) on one TCP port.
    pub async fn bind(listen: SocketAddr, exports: Arc<Exports>) -> Result<NfsServer, NfsError> {
        let bind_err = |source| NfsError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let mut write_verifier = [0u8; 8];
        if getrandom::getrandom(&mut write_verifier).is_err() {
            // Without the OS generator the start time still differs between starts.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            write_verifier = (now.as_nanos() as u64).to_be_bytes();
        }
        Ok(NfsServer {
            listener,
            local_addr,
            state: Arc::new(ServerState {
                exports,
                write_verifier,
                port: local_addr.port(),
                buffers: BufferPool::default(),
            }),
        })
    }

    /// The bound address (the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `cancel` fires, then closes every connection and returns.
    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!(listen = %self.local_addr, "serving NFSv3 on {}", self.local_addr);
        let connections = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(
                        self.state.clone(),
                        stream,
                        peer,
                        cancel.child_token(),
                    ));
                }
                Err(err) => {
                    // Out of descriptors and the like: do not spin.
                    tracing::warn!(%err, "cannot accept an NFS connection: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        connections.close();
        connections.wait().await;
    }
}

async fn serve_connection(
    state: Arc<ServerState>,
    stream: TcpStream,
    peer: SocketAddr,
    cancel: CancellationToken,
) {
    // Access is decided by the peer address; a dual-stack socket shows IPv4 peers mapped.
    let client = peer.ip().to_canonical();
    tracing::debug!(%peer, "NFS connection from {peer}");
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let (replies, outgoing) = mpsc::channel::<Vec<u8>>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_replies(
        write_half,
        outgoing,
        cancel.clone(),
        state.clone(),
    ));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let record = tokio::select! {
            () = cancel.cancelled() => break,
            record = read_record(&mut reader, state.buffers.take()) => record,
        };
        let record = match record {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(err) => {
                tracing::debug!(%peer, %err, "closing NFS connection from {peer}: {err}");
                break;
            }
        };
        let slot = tokio::select! {
            () = cancel.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let state = state.clone();
        let replies = replies.clone();
        tokio::spawn(async move {
            let xid = record
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0);
            let call = tokio::task::spawn_blocking(move || {
                let reply = handle_record_into(&state, client, &record, state.buffers.take());
                state.buffers.give(record);
                reply
            });
            let reply = match call.await {
                Ok(reply) => reply,
                Err(err) => {
                    tracing::error!(%err, "an NFS call failed: {err}");
                    Some(finish(accepted_header(xid, SYSTEM_ERR)))
                }
            };
            if let Some(reply) = reply {
                let _ = replies.send(reply).await;
            }
            drop(slot);
        });
    }
    drop(replies);
    let _ = writer.await;
    tracing::debug!(%peer, "NFS connection from {peer} closed");
}

async fn write_replies(
    mut socket: OwnedWriteHalf,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    cancel: CancellationToken,
    state: Arc<ServerState>,
) {
    loop {
        let reply = tokio::select! {
            () = cancel.cancelled() => return,
            reply = outgoing.recv() => match reply {
                Some(reply) => reply,
                None => return,
            },
        };
        let written = tokio::select! {
            () = cancel.cancelled() => return,
            written = socket.write_all(&reply) => written,
        };
        if written.is_err() {
            return;
        }
        state.buffers.give(reply);
    }
}

/// Reads one record (all its fragments) into `record` (emptied first). `None`: the peer
/// closed between records.
async fn read_record<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut record: Vec<u8>,
) -> io::Result<Option<Vec<u8>>> {
    record.clear();
    let mut first = true;
    loop {
        let mut header = [0u8; 4];
        match reader.read_exact(&mut header).await {
            Ok(_) => {}
            Err(err) if first && err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(err) => return Err(err),
        }
        first = false;
        let header = u32::from_be_bytes(header);
        let len = (header & !LAST_FRAGMENT) as usize;
        if record.len() + len > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("record larger than {MAX_RECORD} bytes"),
            ));
        }
        let start = record.len();
        record.resize(start + len, 0);
        reader.read_exact(&mut record[start..]).await?;
        if header & LAST_FRAGMENT != 0 {
            return Ok(Some(record));
        }
    }
}

/// Appends an XDR value. Packing into a `Vec` cannot fail (no I/O, every field is far below
/// the 4 GiB an XDR length can express), but it is never unwrapped on a client's behalf.
pub(crate) fn put<T: Pack>(out: &mut Vec<u8>, value: &T) {
    if let Err(err) = value.pack(out) {
        tracing::error!(%err, "cannot encode an NFS reply: {err}");
    }
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// A reply record so far: the record mark (filled in by `finish`), then the accepted-reply
/// header with a null verifier and `stat`.
fn accepted_header(xid: u32, stat: u32) -> Vec<u8> {
    accepted_header_in(Vec::with_capacity(256), xid, stat)
}

/// [`accepted_header`] written into `out` (emptied first).
fn accepted_header_in(mut out: Vec<u8>, xid: u32, stat: u32) -> Vec<u8> {
    out.clear();
    out.extend_from_slice(&[0; 4]);
    for word in [xid, MSG_REPLY, MSG_ACCEPTED, AUTH_NONE, 0, stat] {
        put_u32(&mut out, word);
    }
    out
}

fn denied(xid: u32, body: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&[0; 4]);
    for word in [xid, MSG_REPLY, MSG_DENIED] {
        put_u32(&mut out, word);
    }
    for word in body {
        put_u32(&mut out, *word);
    }
    finish(out)
}

fn mismatch(xid: u32, version: u32) -> Vec<u8> {
    let mut out = accepted_header(xid, PROG_MISMATCH);
    put_u32(&mut out, version);
    put_u32(&mut out, version);
    finish(out)
}

/// Fills in the record mark: one fragment, the last.
fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&(LAST_FRAGMENT | len).to_be_bytes());
    out
}

/// Checks a credential: AUTH_NONE and well-formed AUTH_UNIX pass. The AUTH_UNIX ids are not
/// used (see the crate documentation: access is decided by client address only).
fn check_credential(flavor: u32, body: &[u8]) -> bool {
    match flavor {
        AUTH_NONE => true,
        AUTH_UNIX => {
            let mut x = Xdr::new(body);
            let well_formed = (|| -> Result<(), Garbage> {
                x.u32()?; // stamp
                x.opaque(255)?; // machine name
                x.u32()?; // uid
                x.u32()?; // gid
                let gids = x.u32()?;
                if gids > 16 {
                    return Err(Garbage);
                }
                for _ in 0..gids {
                    x.u32()?;
                }
                Ok(())
            })();
            well_formed.is_ok() && x.position() == body.len()
        }
        _ => false,
    }
}

/// Handles one record; `None` when there is nothing to answer (not a call).
#[cfg(test)]
pub(crate) fn handle_record(state: &ServerState, client: IpAddr, record: &[u8]) -> Option<Vec<u8>> {
    handle_record_into(state, client, record, Vec::new())
}

/// Handles one record, the reply of a call answered normally written into `buf`; `None`
/// when there is nothing to answer (not a call).
pub(crate) fn handle_record_into(
    state: &ServerState,
    client: IpAddr,
    record: &[u8],
    buf: Vec<u8>,
) -> Option<Vec<u8>> {
    let mut x = Xdr::new(record);
    let xid = x.u32().ok()?;
    if x.u32().ok()? != MSG_CALL {
        return None;
    }
    let header = (|| -> Result<_, Garbage> {
        let rpcvers = x.u32()?;
        let prog = x.u32()?;
        let vers = x.u32()?;
        let proc = x.u32()?;
        let cred_flavor = x.u32()?;
        let cred = x.opaque(MAX_AUTH_BODY)?;
        let _verf_flavor = x.u32()?;
        let _verf = x.opaque(MAX_AUTH_BODY)?;
        Ok((rpcvers, prog, vers, proc, cred_flavor, cred))
    })();
    let Ok((rpcvers, prog, vers, proc, cred_flavor, cred)) = header else {
        return Some(denied(xid, &[AUTH_ERROR, AUTH_BADCRED]));
    };
    if rpcvers != 2 {
        return Some(denied(xid, &[RPC_MISMATCH, 2, 2]));
    }
    if !check_credential(cred_flavor, cred) {
        tracing::debug!(%client, cred_flavor, "refused an RPC credential of flavor {cred_flavor}");
        return Some(denied(xid, &[AUTH_ERROR, AUTH_BADCRED]));
    }
    let mut out = accepted_header_in(buf, xid, SUCCESS);
    let body_at = out.len();
    let result = match (prog, vers) {
        (nfs3_types::nfs3::PROGRAM, nfs3_types::nfs3::VERSION) => {
            crate::nfs::dispatch(state, client, proc, &mut x, &mut out)
        }
        (nfs3_types::nfs3::PROGRAM, _) => return Some(mismatch(xid, 3)),
        (nfs3_types::mount::PROGRAM, nfs3_types::mount::VERSION) => {
            crate::mount::dispatch(state, client, proc, &mut x, &mut out)
        }
        (nfs3_types::mount::PROGRAM, _) => return Some(mismatch(xid, 3)),
        (nfs3_types::portmap::PROGRAM, nfs3_types::portmap::VERSION) => {
            crate::mount::portmap(state, proc, &mut x, &mut out)
        }
        (nfs3_types::portmap::PROGRAM, _) => return Some(mismatch(xid, 2)),
        _ => return Some(finish(accepted_header(xid, PROG_UNAVAIL))),
    };
    crate::metrics::call(prog, proc, &result, &out[body_at..], record.len());
    match result {
        Ok(()) => Some(finish(out)),
        Err(CallError::ProcUnavail) => Some(finish(accepted_header(xid, PROC_UNAVAIL))),
        Err(CallError::Garbage) => {
            tracing::debug!(%client, prog, proc, "garbage arguments");
            Some(finish(accepted_header(xid, GARBAGE_ARGS)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ServerState {
        ServerState {
            exports: Exports::new(),
            write_verifier: [1; 8],
            port: 2049,
            buffers: BufferPool::default(),
        }
    }

    fn call(prog: u32, vers: u32, proc: u32, cred: (u32, &[u8]), args: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [
            7u32,
            MSG_CALL,
            2,
            prog,
            vers,
            proc,
            cred.0,
            cred.1.len() as u32,
        ] {
            put_u32(&mut out, word);
        }
        out.extend_from_slice(cred.1);
        out.resize(out.len().div_ceil(4) * 4, 0);
        put_u32(&mut out, 0);
        put_u32(&mut out, 0);
        out.extend_from_slice(args);
        out
    }

    fn words(reply: &[u8]) -> Vec<u32> {
        reply
            .chunks(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    #[test]
    fn answers_rpc_errors() {
        let state = state();
        let none: (u32, &[u8]) = (AUTH_NONE, &[]);
        // NFS NULL
        let reply = handle_record(&state, local(), &call(100003, 3, 0, none, &[])).unwrap();
        assert_eq!(
            words(&reply)[1..],
            [7, MSG_REPLY, MSG_ACCEPTED, 0, 0, SUCCESS]
        );
        assert_eq!(words(&reply)[0], LAST_FRAGMENT | 24);
        // wrong version, unknown program, unknown procedure
        let reply = handle_record(&state, local(), &call(100003, 4, 0, none, &[])).unwrap();
        assert_eq!(words(&reply)[6..], [PROG_MISMATCH, 3, 3]);
        let reply = handle_record(&state, local(), &call(100099, 1, 0, none, &[])).unwrap();
        assert_eq!(words(&reply)[6..], [PROG_UNAVAIL]);
        let reply = handle_record(&state, local(), &call(100003, 3, 22, none, &[])).unwrap();
        assert_eq!(words(&reply)[6..], [PROC_UNAVAIL]);
        // GETATTR without its handle
        let reply = handle_record(&state, local(), &call(100003, 3, 1, none, &[])).unwrap();
        assert_eq!(words(&reply)[6..], [GARBAGE_ARGS]);
        // an RPCSEC_GSS credential
        let reply = handle_record(&state, local(), &call(100003, 3, 0, (6, &[0; 8]), &[])).unwrap();
        assert_eq!(
            words(&reply)[2..],
            [MSG_REPLY, MSG_DENIED, AUTH_ERROR, AUTH_BADCRED]
        );
        // RPC version 3
        let mut bad = call(100003, 3, 0, none, &[]);
        bad[8..12].copy_from_slice(&3u32.to_be_bytes());
        let reply = handle_record(&state, local(), &bad).unwrap();
        assert_eq!(
            words(&reply)[2..],
            [MSG_REPLY, MSG_DENIED, RPC_MISMATCH, 2, 2]
        );
        // a reply, not a call: no answer
        let mut not_call = call(100003, 3, 0, none, &[]);
        not_call[4..8].copy_from_slice(&MSG_REPLY.to_be_bytes());
        assert!(handle_record(&state, local(), &not_call).is_none());
        assert!(handle_record(&state, local(), &[1, 2]).is_none());
    }

    #[test]
    fn accepts_auth_unix_and_rejects_malformed_ones() {
        let state = state();
        let unix = nfs3_types::rpc::auth_unix {
            stamp: 1,
            machinename: nfs3_types::xdr_codec::Opaque::borrowed(b"client"),
            uid: 1000,
            gid: 1000,
            gids: vec![1, 2, 3],
        };
        let mut body = Vec::new();
        unix.pack(&mut body).unwrap();
        let reply = handle_record(
            &state,
            local(),
            &call(100003, 3, 0, (AUTH_UNIX, &body), &[]),
        )
        .unwrap();
        assert_eq!(words(&reply)[6..], [SUCCESS]);
        let reply = handle_record(
            &state,
            local(),
            &call(100003, 3, 0, (AUTH_UNIX, &body[..body.len() - 4]), &[]),
        )
        .unwrap();
        assert_eq!(words(&reply)[3..], [MSG_DENIED, AUTH_ERROR, AUTH_BADCRED]);
    }

    #[test]
    fn portmap_answers_this_port_for_nfs_and_mount_over_tcp() {
        let state = state();
        let none: (u32, &[u8]) = (AUTH_NONE, &[]);
        let getport = |prog: u32, vers: u32, prot: u32| {
            let mut args = Vec::new();
            for word in [prog, vers, prot, 0] {
                put_u32(&mut args, word);
            }
            let reply = handle_record(&state, local(), &call(100000, 2, 3, none, &args)).unwrap();
            words(&reply)[7]
        };
        assert_eq!(getport(100003, 3, 6), 2049);
        assert_eq!(getport(100005, 3, 6), 2049);
        assert_eq!(getport(100003, 3, 17), 0);
        assert_eq!(getport(100003, 4, 6), 0);
        assert_eq!(getport(100021, 4, 6), 0);
    }

    #[test]
    fn the_pool_hands_back_large_buffers_emptied_and_keeps_few() {
        let pool = BufferPool::default();
        assert_eq!(pool.take().capacity(), 0);
        let mut big = Vec::with_capacity(MAX_RECORD);
        big.extend_from_slice(b"left over");
        pool.give(big);
        pool.give(Vec::with_capacity(16)); // small: dropped
        pool.give(Vec::with_capacity(4 * MAX_RECORD)); // oversized: dropped
        let reused = pool.take();
        assert!(reused.is_empty() && reused.capacity() >= MAX_RECORD);
        assert_eq!(pool.take().capacity(), 0);
        for _ in 0..POOL_BUFFERS + 3 {
            pool.give(Vec::with_capacity(POOL_MIN_CAPACITY));
        }
        assert_eq!(pool.free.lock().unwrap().len(), POOL_BUFFERS);
        // A reused buffer holds nothing of the reply it carried before.
        let state = state();
        let mut used = Vec::with_capacity(MAX_RECORD);
        used.extend_from_slice(&[0xff; 1000]);
        let none: (u32, &[u8]) = (AUTH_NONE, &[]);
        let reply =
            handle_record_into(&state, local(), &call(100003, 3, 0, none, &[]), used).unwrap();
        assert_eq!(
            reply,
            handle_record(&state, local(), &call(100003, 3, 0, none, &[])).unwrap()
        );
    }

    #[tokio::test]
    async fn reads_multi_fragment_records_and_refuses_huge_ones() {
        let mut stream = Vec::new();
        put_u32(&mut stream, 3);
        stream.extend_from_slice(b"abc");
        put_u32(&mut stream, LAST_FRAGMENT | 2);
        stream.extend_from_slice(b"de");
        put_u32(&mut stream, LAST_FRAGMENT);
        let mut reader = stream.as_slice();
        assert_eq!(
            read_record(&mut reader, Vec::new()).await.unwrap().unwrap(),
            b"abcde"
        );
        assert_eq!(
            read_record(&mut reader, Vec::new()).await.unwrap().unwrap(),
            b""
        );
        assert!(
            read_record(&mut reader, Vec::new())
                .await
                .unwrap()
                .is_none()
        );

        let mut huge = Vec::new();
        put_u32(&mut huge, (MAX_RECORD as u32 - 10) & !LAST_FRAGMENT);
        huge.resize(MAX_RECORD - 6, 0);
        put_u32(&mut huge, LAST_FRAGMENT | 11);
        huge.extend_from_slice(&[0; 11]);
        let mut reader = huge.as_slice();
        assert!(read_record(&mut reader, Vec::new()).await.is_err());
        // truncated in the middle of a record
        let mut reader: &[u8] = &[0, 0, 0, 4, 1];
        assert!(read_record(&mut reader, Vec::new()).await.is_err());
    }
}
