//! What a version of a replica holds, persisted next to it as `v<N>.manifest`, and the small
//! `state.json` of the replica directory.
//!
//! A manifest lists every entry of one version (relative path, kind, the source's mode, size,
//! mtime, the source inode it was copied from, the inode of the copy, symlink target, and for
//! large files the BLAKE3 hash of each block of the copy). It is the engine's memory of the
//! replica: change detection compares a fresh source walk with it instead of walking the
//! replica, tamper detection compares a walk of the published tree with it, and block deltas
//! reuse its block hashes instead of reading the old copy. It is derived data: a version whose
//! manifest is missing is walked instead.
//!
//! Format: a compact length-prefixed binary encoding (a JSON manifest of 20,000 entries costs
//! tens of milliseconds to write and parse, a noticeable share of a "nothing changed" sync),
//! ending with a BLAKE3 checksum of everything before it so a torn or foreign file is refused
//! rather than trusted. Written with tmp + fsync + rename.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"SHOALMF1";

/// Kind of a replicated entry. Special files (fifos, sockets, devices) are never replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
}

impl Kind {
    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::Dir => 0,
            Kind::File => 1,
            Kind::Symlink => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Kind::Dir),
            1 => Some(Kind::File),
            2 => Some(Kind::Symlink),
            _ => None,
        }
    }
}

/// A timestamp with nanoseconds, as the kernel keeps it (no loss, no range limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub(crate) struct Ts {
    pub sec: i64,
    pub nsec: u32,
}

/// The copy's data may not match the source even though size and mtime do (the source was
/// written within the filesystem's timestamp granularity of the copy): the next sync compares
/// contents before trusting the quick check.
pub(crate) const FLAG_RACY: u8 = 1;
/// The copy must not be trusted at all (the source changed while it was read, or the entry
/// was found tampered with): the next sync that uses this version as a base re-creates it.
pub(crate) const FLAG_DIRTY: u8 = 2;

/// One entry of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Relative path, `/`-separated bytes; empty for the version's root directory.
    pub path: Vec<u8>,
    pub kind: Kind,
    pub flags: u8,
    /// Permission bits of the source (the copy lacks the write bits when read-only).
    pub mode: u32,
    pub size: u64,
    pub mtime: Ts,
    /// Inode of the source entry it was copied from (0 = unknown): rename detection.
    pub src_ino: u64,
    /// Inode of the copy: tamper detection and block-hash trust.
    pub rep_ino: u64,
    /// Symlink target.
    pub target: Vec<u8>,
    /// BLAKE3 of each `block_size` block of the copy (large files only; may be empty).
    pub blocks: Vec<[u8; 32]>,
}

/// The manifest of one version.
#[derive(Debug, Clone, Default)]
pub(crate) struct Manifest {
    /// Whether the version's tree has its write bits removed.
    pub read_only: bool,
    /// Block size of `Entry::blocks`.
    pub block_size: u64,
    /// Source point of the sync that built the version.
    pub source_point_us: i64,
    /// Whether that sync was clean.
    pub clean: bool,
    /// Sorted by path.
    pub entries: Vec<Entry>,
}

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).expect("a path or link target is far below 4 GiB");
        self.u32(len);
        self.0.extend_from_slice(v);
    }
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.take(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub(crate) fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = self.u32()? as usize;
        self.take(len).map(<[u8]>::to_vec)
    }
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64 + self.entries.len() * 96));
        w.0.extend_from_slice(MAGIC);
        w.u8(u8::from(self.read_only));
        w.u8(u8::from(self.clean));
        w.u64(self.block_size);
        w.i64(self.source_point_us);
        w.u64(self.entries.len() as u64);
        for e in &self.entries {
            w.bytes(&e.path);
            w.u8(e.kind.code());
            w.u8(e.flags);
            w.u32(e.mode);
            w.u64(e.size);
            w.i64(e.mtime.sec);
            w.u32(e.mtime.nsec);
            w.u64(e.src_ino);
            w.u64(e.rep_ino);
            w.bytes(&e.target);
            w.u32(u32::try_from(e.blocks.len()).expect("block count fits u32"));
            for b in &e.blocks {
                w.0.extend_from_slice(b);
            }
        }
        let sum = blake3::hash(&w.0);
        w.0.extend_from_slice(sum.as_bytes());
        w.0
    }

    /// `None` when the bytes are not a complete manifest.
    pub(crate) fn decode(data: &[u8]) -> Option<Self> {
        let body_len = data.len().checked_sub(32)?;
        let (body, sum) = data.split_at(body_len);
        if blake3::hash(body).as_bytes() != sum {
            return None;
        }
        let mut r = Reader(body);
        if r.take(8)? != MAGIC {
            return None;
        }
        let read_only = r.u8()? != 0;
        let clean = r.u8()? != 0;
        let block_size = r.u64()?;
        let source_point_us = r.i64()?;
        let count = r.u64()?;
        // Bounded by the data: never trust a count to size an allocation.
        let mut entries = Vec::with_capacity(usize::try_from(count).ok()?.min(body.len() / 40));
        for _ in 0..count {
            let path = r.bytes()?;
            let kind = Kind::from_code(r.u8()?)?;
            let flags = r.u8()?;
            let mode = r.u32()?;
            let size = r.u64()?;
            let sec = r.i64()?;
            let nsec = r.u32()?;
            let src_ino = r.u64()?;
            let rep_ino = r.u64()?;
            let target = r.bytes()?;
            let nblocks = r.u32()? as usize;
            let raw = r.take(nblocks.checked_mul(32)?)?;
            let blocks = raw
                .chunks_exact(32)
                .map(|c| c.try_into().expect("32-byte chunk"))
                .collect();
            entries.push(Entry {
                path,
                kind,
                flags,
                mode,
                size,
                mtime: Ts { sec, nsec },
                src_ino,
                rep_ino,
                target,
                blocks,
            });
        }
        if !r.0.is_empty() {
            return None;
        }
        Some(Self {
            read_only,
            block_size,
            source_point_us,
            clean,
            entries,
        })
    }

    /// Reads `path`; `Ok(None)` when it is missing or not a valid manifest.
    pub(crate) fn load(path: &Path) -> io::Result<Option<Self>> {
        match fs::read(path) {
            Ok(data) => Ok(Self::decode(&data)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub(crate) fn into_map(self) -> HashMap<Vec<u8>, Entry> {
        self.entries
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect()
    }

    /// Bytes of the regular files it lists.
    pub(crate) fn file_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.size)
            .sum()
    }

    pub(crate) fn source_point(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.source_point_us).unwrap_or_default()
    }
}

/// `state.json`: the last confirmation of the published version. A "nothing changed" sync
/// moves the source point forward without writing a new version or manifest; readers of
/// [`super::ReplicaDir::published`] take this when its version is the published one and the
/// manifest header otherwise (a crash between publishing and writing this file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub version: u64,
    pub source_point: DateTime<Utc>,
    pub clean: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_refuses_torn_data() {
        let m = Manifest {
            read_only: true,
            block_size: 4096,
            source_point_us: 1_700_000_000_123_456,
            clean: false,
            entries: vec![
                Entry {
                    path: b"".to_vec(),
                    kind: Kind::Dir,
                    flags: 0,
                    mode: 0o755,
                    size: 0,
                    mtime: Ts { sec: 5, nsec: 7 },
                    src_ino: 1,
                    rep_ino: 2,
                    target: vec![],
                    blocks: vec![],
                },
                Entry {
                    path: "d/é x".as_bytes().to_vec(),
                    kind: Kind::File,
                    flags: FLAG_RACY,
                    mode: 0o640,
                    size: 9000,
                    mtime: Ts { sec: -3, nsec: 999 },
                    src_ino: 10,
                    rep_ino: 11,
                    target: vec![],
                    blocks: vec![[7u8; 32], [9u8; 32], [1u8; 32]],
                },
            ],
        };
        let data = m.encode();
        let back = Manifest::decode(&data).expect("decodes");
        assert_eq!(back.entries, m.entries);
        assert!(back.read_only && !back.clean);
        assert_eq!(back.block_size, 4096);
        assert_eq!(back.source_point_us, m.source_point_us);
        assert!(Manifest::decode(&data[..data.len() - 1]).is_none());
        let mut flipped = data.clone();
        flipped[20] ^= 1;
        assert!(Manifest::decode(&flipped).is_none());
    }

    /// Decoder properties (issue 13, item 7): encode then decode gives the manifest back;
    /// arbitrary bytes and mutated valid manifests (re-sealed with a correct checksum, so
    /// the parser itself is exercised) give `None` or a manifest, never a panic, and never
    /// an allocation out of proportion to the input.
    mod props {
        use proptest::prelude::*;

        use super::*;
        use crate::alloc_probe::{allowance, largest_allocation};

        fn arb_entry() -> impl Strategy<Value = Entry> {
            (
                proptest::collection::vec(any::<u8>(), 0..24),
                prop_oneof![Just(Kind::Dir), Just(Kind::File), Just(Kind::Symlink)],
                any::<(u8, u32, u64, i64, u32, u64, u64)>(),
                proptest::collection::vec(any::<u8>(), 0..16),
                proptest::collection::vec(any::<[u8; 32]>(), 0..4),
            )
                .prop_map(
                    |(
                        path,
                        kind,
                        (flags, mode, size, sec, nsec, src_ino, rep_ino),
                        target,
                        blocks,
                    )| {
                        Entry {
                            path,
                            kind,
                            flags,
                            mode,
                            size,
                            mtime: Ts { sec, nsec },
                            src_ino,
                            rep_ino,
                            target,
                            blocks,
                        }
                    },
                )
        }

        fn arb_manifest() -> impl Strategy<Value = Manifest> {
            (
                any::<(bool, u64, i64, bool)>(),
                proptest::collection::vec(arb_entry(), 0..12),
            )
                .prop_map(
                    |((read_only, block_size, source_point_us, clean), entries)| Manifest {
                        read_only,
                        block_size,
                        source_point_us,
                        clean,
                        entries,
                    },
                )
        }

        /// `body` with a correct checksum appended.
        fn seal(mut body: Vec<u8>) -> Vec<u8> {
            let sum = blake3::hash(&body);
            body.extend_from_slice(sum.as_bytes());
            body
        }

        /// One change to an encoded body: overwrite a stretch with a given value (length
        /// and count fields become huge or zero), flip a byte, cut, insert or truncate.
        #[derive(Debug, Clone)]
        enum Mutation {
            Overwrite(usize, Vec<u8>),
            Flip(usize, u8),
            Remove(usize, usize),
            Insert(usize, Vec<u8>),
            Truncate(usize),
        }

        fn arb_mutation() -> impl Strategy<Value = Mutation> {
            let value = prop_oneof![
                Just(u32::MAX.to_le_bytes().to_vec()),
                Just(u64::MAX.to_le_bytes().to_vec()),
                Just((1u64 << 40).to_le_bytes().to_vec()),
                Just(0x0800_0000u32.to_le_bytes().to_vec()),
                Just(vec![0; 4]),
                proptest::collection::vec(any::<u8>(), 1..9),
            ];
            prop_oneof![
                (any::<usize>(), value).prop_map(|(at, v)| Mutation::Overwrite(at, v)),
                (any::<usize>(), 1..=255u8).prop_map(|(at, x)| Mutation::Flip(at, x)),
                (any::<usize>(), 1..40usize).prop_map(|(at, n)| Mutation::Remove(at, n)),
                (
                    any::<usize>(),
                    proptest::collection::vec(any::<u8>(), 1..40)
                )
                    .prop_map(|(at, v)| Mutation::Insert(at, v)),
                any::<usize>().prop_map(Mutation::Truncate),
            ]
        }

        fn apply(body: &mut Vec<u8>, mutation: &Mutation) {
            let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
            match mutation {
                Mutation::Overwrite(i, v) => {
                    let start = at(*i, body.len());
                    for (k, b) in v.iter().enumerate() {
                        if let Some(slot) = body.get_mut(start + k) {
                            *slot = *b;
                        }
                    }
                }
                Mutation::Flip(i, x) => {
                    let start = at(*i, body.len());
                    if let Some(slot) = body.get_mut(start) {
                        *slot ^= x;
                    }
                }
                Mutation::Remove(i, n) => {
                    let start = at(*i, body.len());
                    let end = (start + n).min(body.len());
                    body.drain(start..end);
                }
                Mutation::Insert(i, v) => {
                    let start = at(*i, body.len() + 1);
                    let tail = body.split_off(start);
                    body.extend_from_slice(v);
                    body.extend_from_slice(&tail);
                }
                Mutation::Truncate(i) => body.truncate(at(*i, body.len() + 1)),
            }
        }

        fn same(a: &Manifest, b: &Manifest) -> bool {
            a.read_only == b.read_only
                && a.clean == b.clean
                && a.block_size == b.block_size
                && a.source_point_us == b.source_point_us
                && a.entries == b.entries
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn encode_then_decode_gives_the_manifest_back(m in arb_manifest()) {
                let back = Manifest::decode(&m.encode());
                prop_assert!(back.as_ref().is_some_and(|back| same(back, &m)), "{back:?}");
            }

            #[test]
            fn arbitrary_bytes_are_refused(data in proptest::collection::vec(any::<u8>(), 0..512)) {
                let (decoded, largest) = largest_allocation(|| Manifest::decode(&data));
                prop_assert!(decoded.is_none());
                prop_assert!(largest <= allowance(data.len()), "{largest} bytes");
                // The same bytes with a valid checksum reach the parser.
                let sealed = seal(data);
                let (_, largest) = largest_allocation(|| Manifest::decode(&sealed));
                prop_assert!(largest <= allowance(sealed.len()), "{largest} bytes");
            }

            #[test]
            fn mutated_manifests_decode_or_are_refused(
                m in arb_manifest(),
                mutations in proptest::collection::vec(arb_mutation(), 1..4),
                reseal in any::<bool>(),
            ) {
                let mut data = m.encode();
                if reseal {
                    data.truncate(data.len() - 32);
                }
                for mutation in &mutations {
                    apply(&mut data, mutation);
                }
                if reseal {
                    data = seal(data);
                }
                let (decoded, largest) = largest_allocation(|| Manifest::decode(&data));
                prop_assert!(largest <= allowance(data.len()), "{largest} bytes for {}", data.len());
                if let Some(decoded) = decoded {
                    // Whatever decodes is a manifest that survives its own round trip.
                    let again = Manifest::decode(&decoded.encode());
                    prop_assert!(again.is_some_and(|again| same(&again, &decoded)));
                }
            }
        }
    }
}
