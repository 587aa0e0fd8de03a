//! The requesting side: a secondary's node reading the active's tree from the active's node.
//!
//! [`PeerSource`] is a `Source` of the engine, so a sync from a peer builds, checks and
//! publishes a version exactly as a local sync does. The engine is blocking and runs on
//! blocking threads; each request is driven on the node's tokio runtime through its
//! [`Handle`], and the response is read frame by frame as it arrives.
//!
//! What is checked before anything received counts: the response MAC (the answer comes from a
//! node holding the cluster secret and was not changed on the way), each file's content hash
//! or block hashes from its trailer, and the sizes. A response that breaks off, times out or
//! fails a check fails the sync, which leaves the published version as it was; files that
//! arrived whole stay in the staging tree, and the next sync confirms them with a hash
//! request instead of fetching them again. A large file that broke off keeps what arrived,
//! and the next sync asks only for the blocks it lacks.
//!
//! A secondary that follows the active's change journal syncs with
//! [`ReplicaDir::sync_from_peer_journal`]: one `changes` request replaces the walk when the
//! active's journal covers the secondary's cursor. A node too old to know the request
//! (404) or without a journal for the share is walked as before. [`PeerSource::quiesce`]
//! and [`PeerSource::unquiesce`] are a promotion's calls to the active's node; they wait
//! longer than the read timeout (the node holds the answer until the writes under way are
//! done), so they go through a client with a total deadline instead.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use tokio::runtime::Handle;

use super::wire::{self, Trailer};
use super::{HEADER_MAC, HEADER_NODE, HEADER_NONCE, HEADER_TIMESTAMP};
use crate::changes::{self, ChangeScan, Looked};
use crate::copy::{self, CopyError, Patched, Written};
use crate::journal::Cursor;
use crate::manifest::{Entry, Manifest, Reader};
use crate::peer_auth::{self, ClusterKey};
use crate::source::{BatchItem, Source};
use crate::walk::{WalkError, WalkResult, walk_trees};
use crate::{ReplicaDir, Scan, SyncError, SyncOptions, SyncReport};

/// Small files asked for in one request.
const BATCH_FILES: usize = 256;

/// A `changes` request larger than this (a published version with a great many
/// directories) is not sent with a cursor: the secondary walks instead. Below the
/// endpoint's request limit.
const MAX_CHANGES_REQUEST: usize = 32 << 20;

/// Time allowed for a `quiesce` answer beyond the wait it asks for.
const QUIESCE_MARGIN: Duration = Duration::from_secs(10);

/// Why the active's node did not quiesce (or unquiesce) its share.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuiesceFailure {
    /// The writes under way did not finish within the wait; the share stays quiesced until
    /// it is unquiesced.
    #[error("{0}")]
    TimedOut(String),
    /// The node answered but did not do it (it cannot, it is too old to know the request,
    /// or the fence refused it).
    #[error("{0}")]
    Refused(String),
    /// The node could not be reached.
    #[error("{0}")]
    Unreachable(String),
}

/// What the active's node answered a `changes` request.
#[derive(Debug)]
struct ChangesReply {
    /// Its journal's position before it looked; `None` when it keeps no journal of the share.
    position: Option<Cursor>,
    /// The looked-at paths, when its journal covered the cursor.
    looked: Option<(Vec<Looked>, ChangeScan)>,
}

/// Timeouts and TLS of the replication client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Connecting to a peer.
    pub connect_timeout: Duration,
    /// Silence on an open connection (no byte for this long) before the request fails.
    pub read_timeout: Duration,
    /// PEM of the CA that issues the peers' endpoint certificates: with it every peer is
    /// reached over HTTPS (see [`super::tls`]); without it, plain HTTP.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(10),
            tls_ca_pem: None,
        }
    }
}

/// A node's client of its peers' replication endpoints.
#[derive(Debug, Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    /// Without a read timeout, for requests that wait on purpose (`quiesce`); each gets a
    /// total deadline instead.
    control: reqwest::Client,
    key: ClusterKey,
    node: String,
    handle: Handle,
    scheme: &'static str,
}

impl PeerClient {
    /// A client signing as `node` with `key`. Must be called inside a multi-threaded tokio
    /// runtime, which then carries every request.
    pub fn new(node: &str, key: ClusterKey, options: ClientOptions) -> io::Result<Self> {
        let ca = options
            .tls_ca_pem
            .as_deref()
            .map(reqwest::Certificate::from_pem)
            .transpose()
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the replication CA: {e}"),
                )
            })?;
        let build = |read_timeout: Option<Duration>| {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(options.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(30));
            if let Some(timeout) = read_timeout {
                builder = builder.read_timeout(timeout);
            }
            if let Some(ca) = &ca {
                builder = builder
                    .use_rustls_tls()
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(ca.clone())
                    .https_only(true);
            }
            builder.build().map_err(io::Error::other)
        };
        let scheme = if ca.is_some() { "https" } else { "http" };
        Ok(Self {
            http: build(Some(options.read_timeout))?,
            control: build(None)?,
            key,
            node: node.to_owned(),
            handle: Handle::current(),
            scheme,
        })
    }

    /// The tree `root` of the node whose replication endpoint is `address` (`host:port`),
    /// the data root of an active replica at `epoch` (the node refuses it at any other).
    pub fn source(&self, address: &str, root: &Path, epoch: i64) -> PeerSource<'_> {
        PeerSource {
            client: self,
            base: format!("{}://{address}", self.scheme),
            address: address.to_owned(),
            root: root.as_os_str().as_bytes().to_vec(),
            epoch,
            wire: AtomicU64::new(0),
        }
    }
}

/// Another node's share data root, read over its replication endpoint.
#[derive(Debug)]
pub struct PeerSource<'a> {
    client: &'a PeerClient,
    base: String,
    address: String,
    root: Vec<u8>,
    epoch: i64,
    wire: AtomicU64,
}

impl ReplicaDir {
    /// One sync from another node's tree (see [`ReplicaDir::sync_from`]).
    pub fn sync_from_peer(
        &self,
        source: &PeerSource<'_>,
        opts: &SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        self.sync_with(source, opts)
    }

    /// One sync from another node's tree that follows the active's change journal there:
    /// with a `cursor` its journal covers (and a published version here), only the paths
    /// recorded since are looked at, on that node; otherwise (no cursor, a journal that
    /// cannot say, a node without a journal of the share or too old to know the request)
    /// the tree is walked. Returns the report and the cursor of the next sync (the position
    /// the node took before looking; `None` when it keeps no journal).
    pub fn sync_from_peer_journal(
        &self,
        source: &PeerSource<'_>,
        cursor: Option<Cursor>,
        opts: &SyncOptions,
    ) -> Result<(SyncReport, Option<Cursor>), SyncError> {
        let position = std::cell::Cell::new(None);
        let list = |published: Option<&Manifest>| {
            let reply = source
                .changes(cursor.filter(|_| published.is_some()), published)
                .map_err(|err| WalkError {
                    path: source.describe(),
                    source: err,
                })?;
            position.set(reply.position);
            Ok(published
                .zip(reply.looked)
                .map(|(m, (looked, scan))| changes::listed(m, looked, scan)))
        };
        let report = self.sync_scan(source, opts, Scan::Changes(&list))?;
        Ok((report, position.get()))
    }
}

/// A response being read: frames as they arrive, the running MAC, the bytes counted.
struct Frames<'a> {
    response: reqwest::Response,
    handle: &'a Handle,
    buf: BytesMut,
    mac: blake3::Hasher,
    wire: &'a AtomicU64,
    ended: bool,
    /// Payload bytes still to come of the `D` frame being handed out in pieces.
    data_left: usize,
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl Frames<'_> {
    /// The next frame. The `M` frame is checked here and ends the response; an `E` frame is
    /// the source's read error. A `D` frame that has not fully arrived comes in pieces, each
    /// as a `D` frame of its own, as the bytes arrive: file data is not gathered into a
    /// buffer first (it is not MACed, so nothing needs the whole frame at once).
    fn next(&mut self) -> io::Result<(u8, bytes::Bytes)> {
        if self.ended {
            return Err(bad("read past the end of a response"));
        }
        loop {
            if self.data_left > 0 && !self.buf.is_empty() {
                let n = self.data_left.min(self.buf.len());
                self.data_left -= n;
                return Ok((wire::TAG_DATA, self.buf.split_to(n).freeze()));
            }
            if self.data_left == 0 && self.buf.len() >= 5 {
                let len = u32::from_le_bytes(self.buf[1..5].try_into().expect("4 bytes")) as usize;
                if len > wire::MAX_FRAME {
                    return Err(bad(format!("a frame of {len} bytes is too large")));
                }
                if self.buf[0] == wire::TAG_DATA && self.buf.len() < 5 + len {
                    self.buf.advance(5);
                    self.data_left = len;
                    continue;
                }
                if self.buf.len() >= 5 + len {
                    let tag = self.buf[0];
                    let frame = self.buf.split_to(5 + len).freeze();
                    if tag == wire::TAG_MAC {
                        self.ended = true;
                        let expected =
                            std::mem::replace(&mut self.mac, blake3::Hasher::new()).finalize();
                        let got: [u8; 32] = frame[5..]
                            .try_into()
                            .map_err(|_| bad("a response MAC of the wrong size"))?;
                        // blake3::Hash compares in constant time.
                        if expected != blake3::Hash::from(got) {
                            return Err(bad("the response MAC does not verify"));
                        }
                        return Ok((tag, frame.slice(5..)));
                    }
                    if wire::maced(tag) {
                        self.mac.update(&frame);
                    }
                    if tag == wire::TAG_ERROR {
                        return Err(io::Error::other(format!(
                            "the peer could not read its source: {}",
                            String::from_utf8_lossy(&frame[5..])
                        )));
                    }
                    return Ok((tag, frame.slice(5..)));
                }
            }
            let chunk = self
                .handle
                .block_on(async { self.response.chunk().await })
                .map_err(io::Error::other)?;
            let Some(chunk) = chunk else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the response ended before its MAC",
                ));
            };
            self.wire.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            crate::metrics::received(chunk.len());
            if self.data_left > 0 && self.buf.is_empty() {
                // Straight from the received chunk; only what follows the frame is kept.
                let n = self.data_left.min(chunk.len());
                self.data_left -= n;
                self.buf.extend_from_slice(&chunk[n..]);
                return Ok((wire::TAG_DATA, chunk.slice(..n)));
            }
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Expects the end of the response (its verified MAC).
    fn finish(&mut self) -> io::Result<()> {
        match self.next()? {
            (wire::TAG_MAC, _) => Ok(()),
            (tag, _) => Err(bad(format!("unexpected frame {:?}", tag as char))),
        }
    }

    fn expect(&mut self, want: u8) -> io::Result<bytes::Bytes> {
        match self.next()? {
            (tag, payload) if tag == want => Ok(payload),
            (tag, _) => Err(bad(format!(
                "expected frame {:?}, got {:?}",
                want as char, tag as char
            ))),
        }
    }
}

/// A file's `H` frame: `None` when the file is gone, else its size.
fn parse_head(payload: &[u8]) -> io::Result<Option<u64>> {
    let mut r = Reader(payload);
    let status = r.u8().ok_or_else(|| bad("short H frame"))?;
    let size = r.u64().ok_or_else(|| bad("short H frame"))?;
    match status {
        wire::HEAD_OK => Ok(Some(size)),
        wire::HEAD_VANISHED => Ok(None),
        other => Err(bad(format!("unknown file status {other}"))),
    }
}

fn trailer(payload: &[u8]) -> io::Result<Trailer> {
    wire::get_trailer(payload).ok_or_else(|| bad("malformed T frame"))
}

impl PeerSource<'_> {
    fn request(&self, endpoint: &str, request: Vec<u8>) -> io::Result<Frames<'_>> {
        self.request_with(endpoint, request, None)
    }

    /// A request; with `deadline`, through the client without a read timeout, bounded by
    /// that total time instead.
    fn request_with(
        &self,
        endpoint: &str,
        request: Vec<u8>,
        deadline: Option<Duration>,
    ) -> io::Result<Frames<'_>> {
        let path = format!("/replication/v1/{endpoint}");
        let body = wire::with_epoch(self.epoch, &request);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let client = self.client;
        let sig = peer_auth::sign(&client.key, &client.node, "POST", &path, &body, now);
        let url = format!("{}{path}", self.base);
        // Built inside the runtime: reqwest arms its timeouts when the request is made.
        let response = client
            .handle
            .block_on(async {
                let builder = match deadline {
                    None => client.http.post(url),
                    Some(deadline) => client.control.post(url).timeout(deadline),
                };
                builder
                    .header(HEADER_NODE, &sig.node)
                    .header(HEADER_TIMESTAMP, sig.timestamp.to_string())
                    .header(HEADER_NONCE, &sig.nonce)
                    .header(HEADER_MAC, &sig.mac)
                    .body(body)
                    .send()
                    .await
            })
            .map_err(|err| {
                crate::metrics::asked(endpoint, "unreachable");
                io::Error::new(io::ErrorKind::ConnectionAborted, err.to_string())
            })?;
        let status = response.status();
        crate::metrics::asked(endpoint, status.as_str());
        if !status.is_success() {
            let text = client
                .handle
                .block_on(async { response.text().await })
                .unwrap_or_default();
            let kind = match status.as_u16() {
                401 | 403 | 409 => io::ErrorKind::PermissionDenied,
                // A node too old to know the request.
                404 => io::ErrorKind::Unsupported,
                _ => io::ErrorKind::Other,
            };
            return Err(io::Error::new(
                kind,
                format!("{} answered {endpoint} with {status}: {text}", self.address),
            ));
        }
        Ok(Frames {
            response,
            handle: &client.handle,
            buf: BytesMut::new(),
            mac: client.key.response_mac(&sig.nonce),
            wire: &self.wire,
            ended: false,
            data_left: 0,
        })
    }

    /// Asks the active's node for the paths changed since `cursor`, looked at there (see
    /// [`ReplicaDir::sync_from_peer_journal`]); without a cursor, only for its journal's
    /// position. A node that does not know the request answers as one without a journal.
    fn changes(
        &self,
        cursor: Option<Cursor>,
        published: Option<&Manifest>,
    ) -> io::Result<ChangesReply> {
        let mut body = Vec::new();
        if let (Some(cursor), Some(m)) = (cursor, published) {
            body = wire::changes_request(
                &self.root,
                Some(cursor),
                &changes::must_look(m),
                &changes::dirs_of(m),
            );
        }
        if body.is_empty() || body.len() > MAX_CHANGES_REQUEST {
            body = wire::changes_request(&self.root, None, &[], &[]);
        }
        let mut frames = match self.request("changes", body) {
            Ok(frames) => frames,
            Err(err) if err.kind() == io::ErrorKind::Unsupported => {
                return Ok(ChangesReply {
                    position: None,
                    looked: None,
                });
            }
            Err(err) => return Err(err),
        };
        let (position, known) = wire::get_position(&frames.expect(wire::TAG_POSITION)?)
            .ok_or_else(|| bad("malformed C frame"))?;
        if !known {
            frames.finish()?;
            return Ok(ChangesReply {
                position,
                looked: None,
            });
        }
        if position.is_none() {
            return Err(bad("looked-at paths without a journal position"));
        }
        let mut looked = Vec::new();
        loop {
            let (tag, payload) = frames.next()?;
            match tag {
                wire::TAG_LOOKED => {
                    let mut r = Reader(&payload);
                    let n = r.u32().ok_or_else(|| bad("short K frame"))?;
                    for _ in 0..n {
                        looked.push(wire::get_looked(&mut r).ok_or_else(|| bad("short K frame"))?);
                    }
                    if !r.0.is_empty() {
                        return Err(bad("trailing bytes in a K frame"));
                    }
                }
                wire::TAG_LOOKED_END => {
                    let scan = wire::get_scan(&payload).ok_or_else(|| bad("malformed Z frame"))?;
                    frames.finish()?;
                    return Ok(ChangesReply {
                        position,
                        looked: Some((looked, scan)),
                    });
                }
                other => return Err(bad(format!("unexpected frame {:?}", other as char))),
            }
        }
    }

    /// Asks the active's node to quiesce its share (this source's root) for the promotion
    /// of `promoting`: new writes are refused and the writes under way are waited for, at
    /// most `wait`. Blocking.
    pub fn quiesce(&self, promoting: &str, wait: Duration) -> Result<(), QuiesceFailure> {
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.quiesce_call("quiesce", promoting, wait_ms, wait + QUIESCE_MARGIN)
    }

    /// Asks the active's node to let its share take writes again (a promotion that
    /// failed). Blocking.
    pub fn unquiesce(&self, promoting: &str) -> Result<(), QuiesceFailure> {
        self.quiesce_call("unquiesce", promoting, 0, QUIESCE_MARGIN)
    }

    fn quiesce_call(
        &self,
        endpoint: &str,
        promoting: &str,
        wait_ms: u64,
        deadline: Duration,
    ) -> Result<(), QuiesceFailure> {
        let body = wire::quiesce_request(&self.root, promoting.as_bytes(), wait_ms);
        let answered = (|| {
            let mut frames = self.request_with(endpoint, body, Some(deadline))?;
            let payload = frames.expect(wire::TAG_QUIESCE)?;
            frames.finish()?;
            Ok::<_, io::Error>(payload)
        })();
        let payload = match answered {
            Ok(payload) => payload,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
                ) =>
            {
                return Err(QuiesceFailure::Refused(err.to_string()));
            }
            Err(err) => {
                return Err(QuiesceFailure::Unreachable(format!(
                    "{endpoint} on {}: {err}",
                    self.address
                )));
            }
        };
        let message = String::from_utf8_lossy(payload.get(1..).unwrap_or_default()).into_owned();
        match payload.first() {
            Some(&wire::QUIESCE_DONE) => Ok(()),
            Some(&wire::QUIESCE_TIMED_OUT) => Err(QuiesceFailure::TimedOut(message)),
            Some(&wire::QUIESCE_FAILED) => Err(QuiesceFailure::Refused(message)),
            _ => Err(QuiesceFailure::Refused(format!(
                "{} answered {endpoint} with a malformed Q frame",
                self.address
            ))),
        }
    }

    fn source_error(&self, err: io::Error) -> CopyError {
        CopyError::Source(self.describe(), err)
    }

    fn walk_remote(&self) -> io::Result<WalkResult> {
        let mut frames = self.request("walk", wire::walk_request(&self.root))?;
        let mut result = WalkResult::default();
        loop {
            let (tag, payload) = frames.next()?;
            let mut r = Reader(&payload);
            match tag {
                wire::TAG_LIST => {
                    let n = r.u32().ok_or_else(|| bad("short L frame"))?;
                    for _ in 0..n {
                        result
                            .entries
                            .push(wire::get_entry(&mut r).ok_or_else(|| bad("short L frame"))?);
                    }
                }
                wire::TAG_LIST_END => {
                    result.vanished = r.u64().ok_or_else(|| bad("short W frame"))?;
                    let n = r.u32().ok_or_else(|| bad("short W frame"))?;
                    for _ in 0..n {
                        result
                            .specials
                            .push(r.bytes().ok_or_else(|| bad("short W frame"))?);
                    }
                    frames.finish()?;
                    return Ok(result);
                }
                other => return Err(bad(format!("unexpected frame {:?}", other as char))),
            }
        }
    }

    /// Receives one file of a `files` response into the new path `dst`. Transport failures
    /// are `Err(io)` (the response is unusable); the file's own outcome is the inner result.
    fn receive(
        &self,
        frames: &mut Frames<'_>,
        dst: &Path,
        mode: u32,
        block: Option<usize>,
    ) -> io::Result<Result<Written, CopyError>> {
        let Some(_size) = parse_head(&frames.expect(wire::TAG_HEAD)?)? else {
            return Ok(Err(CopyError::Vanished));
        };
        let rep = |err| CopyError::Replica(dst.to_path_buf(), err);
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dst)
        {
            Ok(file) => file,
            Err(err) => return Ok(Err(rep(err))),
        };
        let mut receiving = Receiving {
            file: &file,
            block,
            whole: blake3::Hasher::new(),
            blocks: Vec::new(),
            partial: Vec::new(),
            size: 0,
        };
        let outcome = (|| -> io::Result<Result<Written, CopyError>> {
            let t = loop {
                match frames.next()? {
                    (wire::TAG_DATA, data) => {
                        if let Err(err) = receiving.write(&data) {
                            return Ok(Err(rep(err)));
                        }
                    }
                    (wire::TAG_TRAILER, payload) => break trailer(&payload)?,
                    (tag, _) => return Err(bad(format!("unexpected frame {:?}", tag as char))),
                }
            };
            let hashes = receiving.hashes();
            if t.size != receiving.size || t.hashes != hashes {
                return Err(bad(format!(
                    "{} does not match the source's hash",
                    dst.display()
                )));
            }
            if t.changed {
                return Ok(Err(CopyError::Changed));
            }
            copy::start_writeback(&file, 0, 0);
            Ok(copy::finish_file(&file, mode, t.mtime)
                .and_then(|()| file.metadata())
                .map(|meta| Written {
                    size: t.size,
                    mtime: t.mtime,
                    rep_ino: meta.ino(),
                    blocks: if block.is_some() { hashes } else { Vec::new() },
                    bytes: t.size,
                })
                .map_err(rep))
        })();
        let keep_partial = block.is_some() && outcome.is_err();
        if !matches!(outcome, Ok(Ok(_))) && !keep_partial {
            // A half-written copy must not stay under the final name (a large one may: the
            // next sync's block delta then asks only for what is missing).
            let _ = fs::remove_file(dst);
        }
        outcome
    }

    fn fetch(&self, items: &[(BatchItem<'_>, Option<usize>)]) -> Vec<Result<Written, CopyError>> {
        let check = items.iter().any(|(i, _)| i.check);
        let files: Vec<(&[u8], u32)> = items
            .iter()
            .map(|(i, block)| (i.rel, block.map_or(0, |b| b as u32)))
            .collect();
        let all_failed = |err: io::Error| -> Vec<Result<Written, CopyError>> {
            let msg = err.to_string();
            items
                .iter()
                .map(|_| Err(self.source_error(io::Error::new(err.kind(), msg.clone()))))
                .collect()
        };
        let mut frames = match self.request("files", wire::files_request(&self.root, check, &files))
        {
            Ok(frames) => frames,
            Err(err) => return all_failed(err),
        };
        let mut results = Vec::with_capacity(items.len());
        for (item, block) in items {
            match self.receive(&mut frames, item.dst, item.mode, *block) {
                Ok(result) => results.push(result),
                Err(err) => {
                    // The rest of the response is unusable: every file not yet confirmed
                    // fails with the transport error.
                    let mut rest = all_failed(err);
                    rest.drain(..results.len());
                    results.extend(rest);
                    return results;
                }
            }
        }
        if let Err(err) = frames.finish() {
            // Nothing of an unauthenticated response is kept.
            for (item, _) in items {
                let _ = fs::remove_file(item.dst);
            }
            return all_failed(err);
        }
        results
    }
}

/// A file being received: written as it comes and hashed the way its trailer is.
struct Receiving<'a> {
    file: &'a File,
    block: Option<usize>,
    whole: blake3::Hasher,
    blocks: Vec<[u8; 32]>,
    partial: Vec<u8>,
    size: u64,
}

impl Receiving<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let mut file = self.file;
        file.write_all(data)?;
        self.size += data.len() as u64;
        match self.block {
            None => {
                self.whole.update(data);
            }
            Some(block) => {
                let mut data = data;
                if !self.partial.is_empty() {
                    let take = (block - self.partial.len()).min(data.len());
                    self.partial.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.partial.len() == block {
                        self.blocks.push(*blake3::hash(&self.partial).as_bytes());
                        self.partial.clear();
                    }
                }
                let whole_blocks = data.len() / block * block;
                self.blocks.extend(
                    data[..whole_blocks]
                        .chunks(block)
                        .map(|b| *blake3::hash(b).as_bytes()),
                );
                self.partial.extend_from_slice(&data[whole_blocks..]);
            }
        }
        if self.size % (8 << 20) < data.len() as u64 {
            copy::start_writeback(self.file, 0, 0);
        }
        Ok(())
    }

    fn hashes(&mut self) -> Vec<[u8; 32]> {
        match self.block {
            None => vec![*self.whole.finalize().as_bytes()],
            Some(_) => {
                let mut blocks = std::mem::take(&mut self.blocks);
                if !self.partial.is_empty() {
                    blocks.push(*blake3::hash(&self.partial).as_bytes());
                }
                blocks
            }
        }
    }
}

impl Source for PeerSource<'_> {
    fn describe(&self) -> PathBuf {
        let mut name = format!("{}:", self.address).into_bytes();
        name.extend_from_slice(&self.root);
        PathBuf::from(std::ffi::OsStr::from_bytes(&name))
    }

    fn check_root(&self) -> io::Result<()> {
        // The walk checks it on the peer, which answers with an `E` frame when it is not a
        // real directory.
        Ok(())
    }

    fn walk_with(
        &self,
        published: Option<&Path>,
    ) -> (
        Result<WalkResult, WalkError>,
        Option<Result<WalkResult, WalkError>>,
    ) {
        std::thread::scope(|scope| {
            let local = published.map(|p| scope.spawn(move || walk_trees(&[p], false)));
            let remote = self.walk_remote().map_err(|source| WalkError {
                path: self.describe(),
                source,
            });
            let local = local.map(|h| {
                h.join()
                    .expect("a walk does not panic")
                    .pop()
                    .expect("one result per root")
            });
            (remote, local)
        })
    }

    fn hash(&self, rel: &[u8]) -> io::Result<blake3::Hash> {
        let mut frames = self.request("hash", wire::hash_request(&self.root, &[rel]))?;
        let payload = frames.expect(wire::TAG_HASHES)?;
        frames.finish()?;
        match payload.first() {
            Some(&wire::HEAD_OK) if payload.len() == 33 => {
                let h: [u8; 32] = payload[1..].try_into().expect("32 bytes");
                Ok(blake3::Hash::from(h))
            }
            Some(&wire::HEAD_VANISHED) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the file is gone from the source",
            )),
            _ => Err(bad("malformed S frame")),
        }
    }

    fn copy_file(
        &self,
        rel: &[u8],
        dst: &Path,
        mode: u32,
        blocks: Option<usize>,
        check: bool,
    ) -> Result<Written, CopyError> {
        let item = BatchItem {
            rel,
            dst,
            mode,
            check,
        };
        self.fetch(&[(item, blocks)])
            .pop()
            .expect("one result per item")
    }

    fn delta_file(
        &self,
        rel: &[u8],
        dst: &Path,
        mode: u32,
        block: usize,
        old: Option<&Entry>,
        check: bool,
    ) -> Result<Written, CopyError> {
        copy::delta_into(dst, mode, block, old, |tfile, old_hashes| {
            let body = wire::delta_request(&self.root, rel, check, block as u32, old_hashes);
            let patched = (|| -> io::Result<Result<Patched, CopyError>> {
                let mut frames = self.request("delta", body)?;
                if parse_head(&frames.expect(wire::TAG_HEAD)?)?.is_none() {
                    frames.finish()?;
                    return Ok(Err(CopyError::Vanished));
                }
                let mut received: Vec<(usize, [u8; 32])> = Vec::new();
                let mut written: u64 = 0;
                let t = loop {
                    match frames.next()? {
                        (wire::TAG_BLOCK, payload) => {
                            let mut payload = payload;
                            if payload.len() < 8 {
                                return Err(bad("short B frame"));
                            }
                            let index = payload.get_u64_le() as usize;
                            let at = index as u64 * block as u64;
                            if let Err(err) = tfile.write_all_at(&payload, at) {
                                return Ok(Err(CopyError::Replica(dst.to_path_buf(), err)));
                            }
                            written += payload.len() as u64;
                            received.push((index, *blake3::hash(&payload).as_bytes()));
                        }
                        (wire::TAG_TRAILER, payload) => break trailer(&payload)?,
                        (tag, _) => {
                            return Err(bad(format!("unexpected frame {:?}", tag as char)));
                        }
                    }
                };
                frames.finish()?;
                // Every block sent must hash to the trailer's value, and every block not
                // sent must be one the copy already had.
                let sent_ok = received.iter().all(|(i, h)| t.hashes.get(*i) == Some(h));
                let mut was_sent = vec![false; t.hashes.len()];
                for (i, _) in &received {
                    if let Some(slot) = was_sent.get_mut(*i) {
                        *slot = true;
                    }
                }
                let kept_ok = t
                    .hashes
                    .iter()
                    .zip(&was_sent)
                    .enumerate()
                    .all(|(i, (h, sent))| *sent || old_hashes.get(i) == Some(h));
                let size_ok = t.size.div_ceil(block as u64) == t.hashes.len() as u64;
                if !(sent_ok && kept_ok && size_ok) {
                    return Err(bad(format!(
                        "{} does not match the source's block hashes",
                        dst.display()
                    )));
                }
                if t.changed {
                    return Ok(Err(CopyError::Changed));
                }
                Ok(Ok(Patched {
                    hashes: t.hashes,
                    written,
                    size: t.size,
                    mtime: t.mtime,
                }))
            })();
            patched.unwrap_or_else(|err| Err(self.source_error(err)))
        })
    }

    fn copy_batch(&self, items: &[BatchItem<'_>]) -> Vec<Result<Written, CopyError>> {
        let items: Vec<(BatchItem<'_>, Option<usize>)> = items.iter().map(|i| (*i, None)).collect();
        self.fetch(&items)
    }

    fn batch_size(&self) -> usize {
        BATCH_FILES
    }

    fn wire_bytes(&self) -> u64 {
        self.wire.load(Ordering::Relaxed)
    }
}

/// Properties of the response frame reader (issue 13, item 7): a response of valid frames
/// is read to its verified MAC; arbitrary bytes and mutated responses (lying lengths,
/// flipped, cut) end in an error or the MAC, never a panic, a hang or a huge allocation.
/// The body arrives as one chunk here.
#[cfg(test)]
mod frame_props {
    use proptest::prelude::*;

    use super::*;
    use crate::alloc_probe::{allowance, largest_allocation};
    use crate::peer_auth::ClusterKey;

    const NONCE: &str = "nonce-1";

    fn key() -> ClusterKey {
        ClusterKey::derive(b"fuzz secret")
    }

    /// Reads `body` as a response until the MAC frame or an error; returns the frames read
    /// and whether the response ended with a verified MAC.
    fn read_all(runtime: &tokio::runtime::Runtime, body: Vec<u8>) -> (usize, bool) {
        let wire = AtomicU64::new(0);
        let mut frames = Frames {
            response: reqwest::Response::from(axum::http::Response::new(body)),
            handle: runtime.handle(),
            buf: BytesMut::new(),
            mac: key().response_mac(NONCE),
            wire: &wire,
            ended: false,
            data_left: 0,
        };
        let mut read = 0;
        // Every frame consumes at least one byte (a D piece) or five: the loop is bounded.
        loop {
            match frames.next() {
                Ok((wire::TAG_MAC, _)) => return (read, true),
                Ok(_) => read += 1,
                Err(_) => return (read, false),
            }
        }
    }

    /// A well-formed response: the frames, then the MAC over the MACed ones.
    fn response(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut mac = key().response_mac(NONCE);
        let mut out = Vec::new();
        for (tag, payload) in frames {
            let mut frame = wire::header(*tag, payload.len()).to_vec();
            frame.extend_from_slice(payload);
            if wire::maced(*tag) {
                mac.update(&frame);
            }
            out.extend_from_slice(&frame);
        }
        out.extend_from_slice(&wire::header(wire::TAG_MAC, 32));
        out.extend_from_slice(mac.finalize().as_bytes());
        out
    }

    fn arb_frames() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
        let tag = prop_oneof![
            Just(wire::TAG_LIST),
            Just(wire::TAG_HEAD),
            Just(wire::TAG_DATA),
            Just(wire::TAG_BLOCK),
            Just(wire::TAG_TRAILER),
            Just(wire::TAG_HASHES),
            Just(wire::TAG_POSITION),
        ];
        proptest::collection::vec((tag, proptest::collection::vec(any::<u8>(), 0..64)), 0..8)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn valid_responses_are_read_to_their_mac(frames in arb_frames()) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let (read, verified) = read_all(&runtime, response(&frames));
            prop_assert!(verified);
            prop_assert_eq!(read, frames.len());
        }

        #[test]
        fn arbitrary_bytes_end_in_an_error_or_the_mac(
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let len = body.len();
            let ((_, verified), largest) = largest_allocation(|| read_all(&runtime, body));
            prop_assert!(!verified, "a random body carried a valid MAC");
            prop_assert!(largest <= allowance(len) + 64 * 1024, "{largest} bytes");
        }

        #[test]
        fn mutated_responses_end_in_an_error_or_the_mac(
            frames in arb_frames(),
            at in any::<usize>(),
            lie in prop_oneof![Just(u32::MAX), Just(8u32 << 20), Just((8u32 << 20) + 1), any::<u32>()],
            flip in any::<(usize, u8)>(),
            cut in any::<usize>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let mut body = response(&frames);
            // A length field (after any tag byte) that lies.
            let i = at % body.len();
            let end = (i + 5).min(body.len());
            let lie = lie.to_le_bytes();
            for (k, slot) in body[i + 1..end].iter_mut().enumerate() {
                *slot = lie[k];
            }
            let j = flip.0 % body.len();
            body[j] ^= flip.1;
            body.truncate(cut % (body.len() + 1));
            let len = body.len();
            let (_, largest) = largest_allocation(|| read_all(&runtime, body));
            prop_assert!(largest <= allowance(len) + 64 * 1024, "{largest} bytes");
        }
    }
}
