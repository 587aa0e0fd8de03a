//! The bytes of the replication protocol: request bodies and response frames.
//!
//! Requests are small binary bodies (paths are bytes, not always UTF-8). A response is a
//! sequence of frames `tag (1 byte) | length (u32 LE) | payload`, ending with an `M` frame:
//! the response MAC (see [`ClusterKey::response_mac`]) over every frame before it except
//! the bulk data frames (`D`, `B`). Those are covered by the hashes in the file's `T`
//! trailer, which the MAC covers, so the requester checks every byte it keeps without the
//! answering node hashing the data twice.
//!
//! [`ClusterKey::response_mac`]: crate::peer_auth::ClusterKey::response_mac

use crate::changes::{ChangeScan, Looked};
use crate::journal::Cursor;
use crate::manifest::{Kind, Reader, Ts, Writer};
use crate::walk::WalkEntry;

/// Listing entries (a batch of the walk).
pub(crate) const TAG_LIST: u8 = b'L';
/// End of a listing: vanished count and special files.
pub(crate) const TAG_LIST_END: u8 = b'W';
/// Start of a file: status and size.
pub(crate) const TAG_HEAD: u8 = b'H';
/// File data (not MACed; covered by the trailer's hash).
pub(crate) const TAG_DATA: u8 = b'D';
/// One block of a delta: index and data (not MACed; covered by the trailer's hashes).
pub(crate) const TAG_BLOCK: u8 = b'B';
/// End of a file: change check, final size and mtime, content or block hashes.
pub(crate) const TAG_TRAILER: u8 = b'T';
/// Hash answers.
pub(crate) const TAG_HASHES: u8 = b'S';
/// The source could not be read: a message, and the response ends.
pub(crate) const TAG_ERROR: u8 = b'E';
/// The response MAC; always the last frame.
pub(crate) const TAG_MAC: u8 = b'M';
/// First frame of a `changes` answer: the journal position taken before looking, and
/// whether the looked-at entries follow (see [`put_position`]).
pub(crate) const TAG_POSITION: u8 = b'C';
/// Looked-at results of a `changes` answer (a batch).
pub(crate) const TAG_LOOKED: u8 = b'K';
/// End of a `changes` answer: what was looked at and walked.
pub(crate) const TAG_LOOKED_END: u8 = b'Z';
/// The outcome of a `quiesce` or `unquiesce` request.
pub(crate) const TAG_QUIESCE: u8 = b'Q';

/// Largest payload of one frame the requester accepts.
pub(crate) const MAX_FRAME: usize = 8 << 20;

/// Bytes of one data frame.
pub(crate) const DATA_CHUNK: usize = 256 << 10;

/// `H` status: the file is there and follows.
pub(crate) const HEAD_OK: u8 = 0;
/// `H` status: the file is gone (or is no longer a regular file).
pub(crate) const HEAD_VANISHED: u8 = 1;

/// Whether a frame with this tag is fed to the response MAC.
pub(crate) fn maced(tag: u8) -> bool {
    tag != TAG_DATA && tag != TAG_BLOCK
}

/// Frame header bytes.
pub(crate) fn header(tag: u8, len: usize) -> [u8; 5] {
    let len = u32::try_from(len).expect("frames are far below 4 GiB");
    let l = len.to_le_bytes();
    [tag, l[0], l[1], l[2], l[3]]
}

/// Every request body: the epoch of the active replica the requester expects to read (its
/// node refuses any other), then the endpoint's own fields.
pub(crate) fn with_epoch(epoch: i64, request: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + request.len());
    body.extend_from_slice(&epoch.to_le_bytes());
    body.extend_from_slice(request);
    body
}

/// Splits a request body into its epoch and the rest.
pub(crate) fn split_epoch(body: &[u8]) -> Option<(i64, &[u8])> {
    let (epoch, rest) = body.split_first_chunk::<8>()?;
    Some((i64::from_le_bytes(*epoch), rest))
}

/// `POST walk`: the root to list.
pub(crate) fn walk_request(root: &[u8]) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.bytes(root);
    w.0
}

/// `POST files`: the root, whether to check for changes, and the files (with the block
/// size to hash them by, 0 for a whole-file hash).
pub(crate) fn files_request(root: &[u8], check: bool, files: &[(&[u8], u32)]) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.bytes(root);
    w.u8(u8::from(check));
    w.u32(u32::try_from(files.len()).expect("a batch is small"));
    for (rel, block) in files {
        w.bytes(rel);
        w.u32(*block);
    }
    w.0
}

/// A parsed `files` request.
pub(crate) struct FilesRequest {
    pub root: Vec<u8>,
    pub check: bool,
    pub files: Vec<(Vec<u8>, u32)>,
}

pub(crate) fn parse_files(body: &[u8]) -> Option<FilesRequest> {
    let mut r = Reader(body);
    let root = r.bytes()?;
    let check = r.u8()? != 0;
    let n = r.u32()? as usize;
    // Each file takes at least 8 bytes: never trust a count to size an allocation.
    let mut files = Vec::with_capacity(n.min(r.0.len() / 8));
    for _ in 0..n {
        files.push((r.bytes()?, r.u32()?));
    }
    r.0.is_empty()
        .then_some(FilesRequest { root, check, files })
}

/// `POST delta`: the root, the file, the change check, the block size and the block
/// hashes of the requester's copy.
pub(crate) fn delta_request(
    root: &[u8],
    rel: &[u8],
    check: bool,
    block: u32,
    old: &[[u8; 32]],
) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64 + old.len() * 32));
    w.bytes(root);
    w.bytes(rel);
    w.u8(u8::from(check));
    w.u32(block);
    w.u32(u32::try_from(old.len()).expect("block count fits u32"));
    for h in old {
        w.0.extend_from_slice(h);
    }
    w.0
}

/// A parsed `delta` request.
pub(crate) struct DeltaRequest {
    pub root: Vec<u8>,
    pub rel: Vec<u8>,
    pub check: bool,
    pub block: u32,
    pub old: Vec<[u8; 32]>,
}

pub(crate) fn parse_delta(body: &[u8]) -> Option<DeltaRequest> {
    let mut r = Reader(body);
    let root = r.bytes()?;
    let rel = r.bytes()?;
    let check = r.u8()? != 0;
    let block = r.u32()?;
    let n = r.u32()? as usize;
    let mut old = Vec::with_capacity(n.min(r.0.len() / 32));
    for _ in 0..n {
        old.push(r.take(32)?.try_into().ok()?);
    }
    (r.0.is_empty() && block > 0).then_some(DeltaRequest {
        root,
        rel,
        check,
        block,
        old,
    })
}

/// `POST hash`: the root and the files.
pub(crate) fn hash_request(root: &[u8], rels: &[&[u8]]) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.bytes(root);
    w.u32(u32::try_from(rels.len()).expect("a batch is small"));
    for rel in rels {
        w.bytes(rel);
    }
    w.0
}

/// A parsed `hash` request.
pub(crate) fn parse_hash(body: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut r = Reader(body);
    let root = r.bytes()?;
    let n = r.u32()? as usize;
    let mut rels = Vec::with_capacity(n.min(r.0.len() / 4));
    for _ in 0..n {
        rels.push(r.bytes()?);
    }
    r.0.is_empty().then_some((root, rels))
}

pub(crate) fn parse_walk(body: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader(body);
    let root = r.bytes()?;
    r.0.is_empty().then_some(root)
}

/// `POST changes`: the root, the requester's cursor in the active's change journal (none:
/// only the position is wanted, the requester walks), the paths to look at whatever the
/// journal says (its published manifest's racy and dirty entries) and the directories of
/// that manifest (a directory not among them is walked where the tree is).
pub(crate) fn changes_request(
    root: &[u8],
    cursor: Option<Cursor>,
    must: &[Vec<u8>],
    dirs: &[Vec<u8>],
) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.bytes(root);
    match cursor {
        None => w.u8(0),
        Some(c) => {
            w.u8(1);
            w.0.extend_from_slice(&c.journal.to_le_bytes());
            w.u64(c.offset);
        }
    }
    for list in [must, dirs] {
        w.u32(u32::try_from(list.len()).expect("a path list fits u32"));
        for p in list {
            w.bytes(p);
        }
    }
    w.0
}

/// A parsed `changes` request.
pub(crate) struct ChangesRequest {
    pub root: Vec<u8>,
    pub cursor: Option<Cursor>,
    pub must: Vec<Vec<u8>>,
    pub dirs: Vec<Vec<u8>>,
}

pub(crate) fn parse_changes(body: &[u8]) -> Option<ChangesRequest> {
    let mut r = Reader(body);
    let root = r.bytes()?;
    let cursor = match r.u8()? {
        0 => None,
        1 => Some(Cursor {
            journal: u128::from_le_bytes(r.take(16)?.try_into().ok()?),
            offset: r.u64()?,
        }),
        _ => return None,
    };
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let n = r.u32()? as usize;
        list.reserve(n.min(r.0.len() / 4));
        for _ in 0..n {
            list.push(r.bytes()?);
        }
    }
    let [must, dirs] = lists;
    r.0.is_empty().then_some(ChangesRequest {
        root,
        cursor,
        must,
        dirs,
    })
}

/// `C` frame: bit 0 of the flags says a position follows (the active has a journal), bit 1
/// that the journal covered the cursor (the looked-at entries follow; otherwise: walk).
pub(crate) fn put_position(position: Option<Cursor>, known: bool) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(25));
    w.u8(u8::from(position.is_some()) | (u8::from(known) << 1));
    if let Some(c) = position {
        w.0.extend_from_slice(&c.journal.to_le_bytes());
        w.u64(c.offset);
    }
    w.0
}

/// A parsed `C` frame: the position and whether looked-at entries follow.
pub(crate) fn get_position(payload: &[u8]) -> Option<(Option<Cursor>, bool)> {
    let mut r = Reader(payload);
    let flags = r.u8()?;
    if flags & !3 != 0 {
        return None;
    }
    let position = if flags & 1 != 0 {
        Some(Cursor {
            journal: u128::from_le_bytes(r.take(16)?.try_into().ok()?),
            offset: r.u64()?,
        })
    } else {
        None
    };
    r.0.is_empty().then_some((position, flags & 2 != 0))
}

/// One looked-at result of a `K` frame.
pub(crate) fn put_looked(w: &mut Writer, item: &Looked) {
    match item {
        Looked::Gone(p) => {
            w.u8(0);
            w.bytes(p);
        }
        Looked::Special(p) => {
            w.u8(1);
            w.bytes(p);
        }
        Looked::Found(e) => {
            w.u8(2);
            put_entry(w, e);
        }
        Looked::NewDir(e) => {
            w.u8(3);
            put_entry(w, e);
        }
        Looked::Below(e) => {
            w.u8(4);
            put_entry(w, e);
        }
        Looked::BelowSpecial(p) => {
            w.u8(5);
            w.bytes(p);
        }
    }
}

pub(crate) fn get_looked(r: &mut Reader<'_>) -> Option<Looked> {
    Some(match r.u8()? {
        0 => Looked::Gone(r.bytes()?),
        1 => Looked::Special(r.bytes()?),
        2 => Looked::Found(get_entry(r)?),
        3 => Looked::NewDir(get_entry(r)?),
        4 => Looked::Below(get_entry(r)?),
        5 => Looked::BelowSpecial(r.bytes()?),
        _ => return None,
    })
}

/// `Z` frame.
pub(crate) fn put_scan(scan: ChangeScan) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(16));
    w.u64(scan.looked_at);
    w.u64(scan.walked);
    w.0
}

pub(crate) fn get_scan(payload: &[u8]) -> Option<ChangeScan> {
    let mut r = Reader(payload);
    let scan = ChangeScan {
        looked_at: r.u64()?,
        walked: r.u64()?,
    };
    r.0.is_empty().then_some(scan)
}

/// `POST quiesce` and `POST unquiesce`: the root, the replica being promoted in its place,
/// and (quiesce) how long to wait for the writes under way, in milliseconds.
pub(crate) fn quiesce_request(root: &[u8], promoting: &[u8], wait_ms: u64) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.bytes(root);
    w.bytes(promoting);
    w.u64(wait_ms);
    w.0
}

/// A parsed `quiesce` or `unquiesce` request.
pub(crate) struct QuiesceRequest {
    pub root: Vec<u8>,
    pub promoting: Vec<u8>,
    pub wait_ms: u64,
}

pub(crate) fn parse_quiesce(body: &[u8]) -> Option<QuiesceRequest> {
    let mut r = Reader(body);
    let root = r.bytes()?;
    let promoting = r.bytes()?;
    let wait_ms = r.u64()?;
    r.0.is_empty().then_some(QuiesceRequest {
        root,
        promoting,
        wait_ms,
    })
}

/// `Q` status: done.
pub(crate) const QUIESCE_DONE: u8 = 0;
/// `Q` status: the writes under way did not finish within the wait (the share stays
/// quiesced until unquiesced).
pub(crate) const QUIESCE_TIMED_OUT: u8 = 1;
/// `Q` status: the node could not do it (a message follows).
pub(crate) const QUIESCE_FAILED: u8 = 2;

/// One listing entry.
pub(crate) fn put_entry(w: &mut Writer, e: &WalkEntry) {
    w.bytes(&e.path);
    w.u8(e.kind.code());
    w.u32(e.mode);
    w.u64(e.size);
    put_ts(w, e.mtime);
    put_ts(w, e.ctime);
    w.u64(e.ino);
    w.bytes(&e.target);
}

pub(crate) fn get_entry(r: &mut Reader<'_>) -> Option<WalkEntry> {
    Some(WalkEntry {
        path: r.bytes()?,
        kind: Kind::from_code(r.u8()?)?,
        mode: r.u32()?,
        size: r.u64()?,
        mtime: get_ts(r)?,
        ctime: get_ts(r)?,
        ino: r.u64()?,
        target: r.bytes()?,
    })
}

pub(crate) fn put_ts(w: &mut Writer, ts: Ts) {
    w.i64(ts.sec);
    w.u32(ts.nsec);
}

pub(crate) fn get_ts(r: &mut Reader<'_>) -> Option<Ts> {
    Some(Ts {
        sec: r.i64()?,
        nsec: r.u32()?,
    })
}

/// The `T` trailer of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trailer {
    /// The source changed while it was read (only reported when the request asked).
    pub changed: bool,
    /// Size and mtime after the read.
    pub size: u64,
    pub mtime: Ts,
    /// Whole-file hash (whole-file transfers) or one hash per block.
    pub hashes: Vec<[u8; 32]>,
}

pub(crate) fn put_trailer(t: &Trailer) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(32 + t.hashes.len() * 32));
    w.u8(u8::from(t.changed));
    w.u64(t.size);
    put_ts(&mut w, t.mtime);
    w.u32(u32::try_from(t.hashes.len()).expect("block count fits u32"));
    for h in &t.hashes {
        w.0.extend_from_slice(h);
    }
    w.0
}

pub(crate) fn get_trailer(payload: &[u8]) -> Option<Trailer> {
    let mut r = Reader(payload);
    let changed = r.u8()? != 0;
    let size = r.u64()?;
    let mtime = get_ts(&mut r)?;
    let n = r.u32()? as usize;
    let mut hashes = Vec::with_capacity(n.min(r.0.len() / 32));
    for _ in 0..n {
        hashes.push(r.take(32)?.try_into().ok()?);
    }
    r.0.is_empty().then_some(Trailer {
        changed,
        size,
        mtime,
        hashes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reproduce_a_lying_count_does_not_size_an_allocation() {
        // Found by the wire proptest: a 25-byte T frame (or delta request) claiming 2^32-1
        // hashes made the decoder reserve 32 MiB before finding the data short.
        let ts = Ts { sec: 0, nsec: 0 };
        let mut frame = put_trailer(&Trailer {
            changed: false,
            size: 0,
            mtime: ts,
            hashes: vec![],
        });
        let n = frame.len() - 4;
        frame[n..].copy_from_slice(&u32::MAX.to_le_bytes());
        let (parsed, largest) = crate::alloc_probe::largest_allocation(|| get_trailer(&frame));
        assert!(parsed.is_none());
        assert!(largest < 4096, "{largest} bytes reserved");
        let mut delta = delta_request(b"/r", b"f", false, 4096, &[]);
        let n = delta.len() - 4;
        delta[n..].copy_from_slice(&u32::MAX.to_le_bytes());
        let (parsed, largest) = crate::alloc_probe::largest_allocation(|| parse_delta(&delta));
        assert!(parsed.is_none());
        assert!(largest < 4096, "{largest} bytes reserved");
    }

    #[test]
    fn requests_round_trip_and_refuse_trailing_bytes() {
        let body = files_request(b"/p/shares/x", true, &[(b"a/b", 0), (b"c", 65536)]);
        let parsed = parse_files(&body).unwrap();
        assert_eq!(parsed.root, b"/p/shares/x");
        assert!(parsed.check);
        assert_eq!(
            parsed.files,
            vec![(b"a/b".to_vec(), 0), (b"c".to_vec(), 65536)]
        );
        let mut longer = body.clone();
        longer.push(0);
        assert!(parse_files(&longer).is_none());
        assert!(parse_files(&body[..body.len() - 1]).is_none());

        let old = [[7u8; 32], [9u8; 32]];
        let d = parse_delta(&delta_request(b"/r", b"big", false, 4096, &old)).unwrap();
        assert_eq!(
            (d.rel.as_slice(), d.check, d.block),
            (&b"big"[..], false, 4096)
        );
        assert_eq!(d.old, old.to_vec());
        assert!(parse_delta(&delta_request(b"/r", b"big", false, 0, &old)).is_none());

        let (root, rels) = parse_hash(&hash_request(b"/r", &[b"x", b"y"])).unwrap();
        assert_eq!((root.as_slice(), rels.len()), (&b"/r"[..], 2));

        let t = Trailer {
            changed: true,
            size: 5,
            mtime: Ts { sec: -3, nsec: 7 },
            hashes: vec![[1u8; 32]],
        };
        assert_eq!(get_trailer(&put_trailer(&t)).unwrap(), t);

        let cursor = Cursor {
            journal: u128::MAX - 5,
            offset: 77,
        };
        let c = parse_changes(&changes_request(
            b"/r",
            Some(cursor),
            &[b"racy".to_vec()],
            &[Vec::new(), b"d".to_vec()],
        ))
        .unwrap();
        assert_eq!(c.cursor, Some(cursor));
        assert_eq!((c.must.len(), c.dirs.len()), (1, 2));
        let mut longer = changes_request(b"/r", None, &[], &[]);
        assert!(parse_changes(&longer).unwrap().cursor.is_none());
        longer.push(0);
        assert!(parse_changes(&longer).is_none());
        for (position, known) in [(None, false), (Some(cursor), false), (Some(cursor), true)] {
            assert_eq!(
                get_position(&put_position(position, known)),
                Some((position, known))
            );
        }
        let q = parse_quiesce(&quiesce_request(b"/r", b"id", 1500)).unwrap();
        assert_eq!((q.promoting.as_slice(), q.wait_ms), (&b"id"[..], 1500));
    }

    /// Decoder properties (issue 13, item 7): every request body and response frame
    /// round-trips, and arbitrary or mutated bytes give `None`, never a panic or an
    /// allocation out of proportion to the input (a count field is not trusted).
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::alloc_probe::{allowance, largest_allocation};

        fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(any::<u8>(), 0..max)
        }

        fn arb_kind() -> impl Strategy<Value = Kind> {
            prop_oneof![Just(Kind::Dir), Just(Kind::File), Just(Kind::Symlink)]
        }

        fn arb_ts() -> impl Strategy<Value = Ts> {
            any::<(i64, u32)>().prop_map(|(sec, nsec)| Ts { sec, nsec })
        }

        fn arb_walk_entry() -> impl Strategy<Value = WalkEntry> {
            (
                bytes(16),
                arb_kind(),
                any::<(u32, u64, u64)>(),
                arb_ts(),
                arb_ts(),
                bytes(8),
            )
                .prop_map(|(path, kind, (mode, size, ino), mtime, ctime, target)| {
                    WalkEntry {
                        path,
                        kind,
                        mode,
                        size,
                        mtime,
                        ctime,
                        ino,
                        target,
                    }
                })
        }

        fn arb_looked() -> impl Strategy<Value = Looked> {
            prop_oneof![
                bytes(16).prop_map(Looked::Gone),
                bytes(16).prop_map(Looked::Special),
                arb_walk_entry().prop_map(Looked::Found),
                arb_walk_entry().prop_map(Looked::NewDir),
                arb_walk_entry().prop_map(Looked::Below),
                bytes(16).prop_map(Looked::BelowSpecial),
            ]
        }

        fn arb_cursor() -> impl Strategy<Value = Cursor> {
            any::<(u128, u64)>().prop_map(|(journal, offset)| Cursor { journal, offset })
        }

        /// One decoder, run for its allocations only.
        type Decoder<'a> = &'a dyn Fn(&[u8]);

        /// Runs every decoder on `data`; fails on a disproportionate allocation.
        fn decode_all(data: &[u8]) -> Result<(), TestCaseError> {
            let decoders: [(&str, Decoder<'_>); 12] = [
                ("split_epoch", &|d| {
                    let _ = split_epoch(d);
                }),
                ("parse_walk", &|d| {
                    let _ = parse_walk(d);
                }),
                ("parse_files", &|d| {
                    let _ = parse_files(d);
                }),
                ("parse_delta", &|d| {
                    let _ = parse_delta(d);
                }),
                ("parse_hash", &|d| {
                    let _ = parse_hash(d);
                }),
                ("parse_changes", &|d| {
                    let _ = parse_changes(d);
                }),
                ("parse_quiesce", &|d| {
                    let _ = parse_quiesce(d);
                }),
                ("get_position", &|d| {
                    let _ = get_position(d);
                }),
                ("get_scan", &|d| {
                    let _ = get_scan(d);
                }),
                ("get_trailer", &|d| {
                    let _ = get_trailer(d);
                }),
                ("get_entry", &|d| {
                    let _ = get_entry(&mut Reader(d));
                }),
                ("get_looked", &|d| {
                    let mut r = Reader(d);
                    while get_looked(&mut r).is_some() {}
                }),
            ];
            for (name, decode) in decoders {
                let ((), largest) = largest_allocation(|| decode(data));
                prop_assert!(
                    largest <= allowance(data.len()),
                    "{name} reserved {largest} bytes for {} input bytes",
                    data.len()
                );
            }
            Ok(())
        }

        /// A count or length field (u32) somewhere in `body` replaced by a large value.
        fn lie_about_a_count(body: &mut [u8], at: usize, value: u32) {
            if body.len() >= 4 {
                let at = at % (body.len() - 3);
                body[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn arbitrary_bytes_decode_or_are_refused(data in bytes(256)) {
                decode_all(&data)?;
            }

            #[test]
            fn requests_round_trip(
                root in bytes(24),
                rel in bytes(24),
                check in any::<bool>(),
                block in 1..=u32::MAX,
                files in proptest::collection::vec((bytes(16), any::<u32>()), 0..6),
                old in proptest::collection::vec(any::<[u8; 32]>(), 0..6),
                cursor in proptest::option::of(arb_cursor()),
                must in proptest::collection::vec(bytes(12), 0..5),
                dirs in proptest::collection::vec(bytes(12), 0..5),
                wait_ms in any::<u64>(),
                epoch in any::<i64>(),
            ) {
                prop_assert_eq!(parse_walk(&walk_request(&root)), Some(root.clone()));

                let file_refs: Vec<(&[u8], u32)> = files.iter().map(|(p, b)| (p.as_slice(), *b)).collect();
                let parsed = parse_files(&files_request(&root, check, &file_refs)).expect("files");
                prop_assert_eq!((&parsed.root, parsed.check, &parsed.files), (&root, check, &files));

                let parsed = parse_delta(&delta_request(&root, &rel, check, block, &old)).expect("delta");
                prop_assert_eq!((&parsed.root, &parsed.rel, parsed.check, parsed.block, &parsed.old), (&root, &rel, check, block, &old));

                let rels: Vec<&[u8]> = must.iter().map(Vec::as_slice).collect();
                prop_assert_eq!(parse_hash(&hash_request(&root, &rels)), Some((root.clone(), must.clone())));

                let parsed = parse_changes(&changes_request(&root, cursor, &must, &dirs)).expect("changes");
                prop_assert_eq!((&parsed.root, parsed.cursor, &parsed.must, &parsed.dirs), (&root, cursor, &must, &dirs));

                let parsed = parse_quiesce(&quiesce_request(&root, &rel, wait_ms)).expect("quiesce");
                prop_assert_eq!((&parsed.root, &parsed.promoting, parsed.wait_ms), (&root, &rel, wait_ms));

                let body = with_epoch(epoch, &root);
                prop_assert_eq!(split_epoch(&body), Some((epoch, root.as_slice())));
            }

            #[test]
            fn frames_round_trip(
                position in proptest::option::of(arb_cursor()),
                known in any::<bool>(),
                scan in any::<(u64, u64)>(),
                trailer in (any::<bool>(), any::<u64>(), arb_ts(), proptest::collection::vec(any::<[u8; 32]>(), 0..6)),
                looked in proptest::collection::vec(arb_looked(), 0..6),
            ) {
                prop_assert_eq!(get_position(&put_position(position, known)), Some((position, known)));
                let scan = ChangeScan { looked_at: scan.0, walked: scan.1 };
                prop_assert_eq!(get_scan(&put_scan(scan)), Some(scan));
                let (changed, size, mtime, hashes) = trailer;
                let t = Trailer { changed, size, mtime, hashes };
                prop_assert_eq!(get_trailer(&put_trailer(&t)), Some(t));
                // K frames: decoding then encoding again gives the same bytes.
                let mut w = Writer(Vec::new());
                for item in &looked {
                    put_looked(&mut w, item);
                }
                let mut r = Reader(&w.0);
                let mut again = Writer(Vec::new());
                for _ in 0..looked.len() {
                    put_looked(&mut again, &get_looked(&mut r).expect("looked"));
                }
                prop_assert!(r.0.is_empty());
                prop_assert_eq!(again.0, w.0);
            }

            #[test]
            fn lying_counts_and_mutations_are_refused_without_a_huge_allocation(
                root in bytes(12),
                at in any::<usize>(),
                value in prop_oneof![Just(u32::MAX), Just(1u32 << 20), Just(1u32 << 16), Just(4096u32), any::<u32>()],
                cut in any::<usize>(),
            ) {
                let old = [[7u8; 32]; 2];
                let samples = [
                    files_request(&root, true, &[(b"a", 0), (b"b", 4096)]),
                    delta_request(&root, b"f", false, 4096, &old),
                    hash_request(&root, &[b"x", b"y"]),
                    changes_request(&root, None, &[b"m".to_vec()], &[b"d".to_vec()]),
                    quiesce_request(&root, b"p", 5),
                    put_trailer(&Trailer { changed: false, size: 1, mtime: Ts::default(), hashes: old.to_vec() }),
                    put_position(Some(Cursor { journal: 1, offset: 2 }), true),
                ];
                for sample in samples {
                    let mut lying = sample.clone();
                    lie_about_a_count(&mut lying, at, value);
                    decode_all(&lying)?;
                    let mut short = sample;
                    short.truncate(cut % (short.len() + 1));
                    decode_all(&short)?;
                }
            }
        }
    }
}
