//! Where a sync reads the active's tree from: this host's filesystem ([`LocalSource`]) or
//! another node's replication endpoint (`transport::client::PeerSource`).
//!
//! The engine asks a source for the five things it reads: a listing, whole files, block
//! deltas of large files, content hashes, and whether the root is there at all. Everything
//! else (what to ask for, the staging tree, publishing) is the same for both, so a version
//! built from a peer carries every guarantee of one built from a local directory.

use std::io;
use std::path::{Path, PathBuf};

use crate::copy::{self, CopyError, Written};
use crate::manifest::Entry;
use crate::walk::{WalkError, WalkResult, abs, walk_trees};

/// The reads of one sync.
pub(crate) trait Source: Sync {
    /// Names the source in errors and logs (a path, or `node:path`).
    fn describe(&self) -> PathBuf;

    /// Checks the root is a directory (never following a link).
    fn check_root(&self) -> io::Result<()>;

    /// Walks the source and, at the same time, the local tree `published` (when given).
    fn walk_with(
        &self,
        published: Option<&Path>,
    ) -> (
        Result<WalkResult, WalkError>,
        Option<Result<WalkResult, WalkError>>,
    );

    /// BLAKE3 of the file `rel`.
    fn hash(&self, rel: &[u8]) -> io::Result<blake3::Hash>;

    /// Copies the file `rel` to the new path `dst` (see `copy::copy_file`).
    fn copy_file(
        &self,
        rel: &[u8],
        dst: &Path,
        mode: u32,
        blocks: Option<usize>,
        check: bool,
    ) -> Result<Written, CopyError>;

    /// Brings the existing copy `dst` to the file `rel` by blocks (see `copy::delta_file`).
    fn delta_file(
        &self,
        rel: &[u8],
        dst: &Path,
        mode: u32,
        block: usize,
        old: Option<&Entry>,
        check: bool,
    ) -> Result<Written, CopyError>;

    /// Copies several small files at once; one result per item, in order. A source that
    /// pays a round trip per request (a peer) answers a whole batch with one.
    fn copy_batch(&self, items: &[BatchItem<'_>]) -> Vec<Result<Written, CopyError>> {
        items
            .iter()
            .map(|i| self.copy_file(i.rel, i.dst, i.mode, None, i.check))
            .collect()
    }

    /// How many small new files the engine should hand to [`Source::copy_batch`] at once.
    fn batch_size(&self) -> usize {
        1
    }

    /// Bytes this source has received over the network so far (0 for a local source).
    fn wire_bytes(&self) -> u64 {
        0
    }
}

/// One file of a [`Source::copy_batch`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchItem<'a> {
    pub rel: &'a [u8],
    pub dst: &'a Path,
    pub mode: u32,
    pub check: bool,
}

/// A tree on this host, read directly.
pub(crate) struct LocalSource<'a> {
    pub root: &'a Path,
}

impl Source for LocalSource<'_> {
    fn describe(&self) -> PathBuf {
        self.root.to_path_buf()
    }

    fn check_root(&self) -> io::Result<()> {
        match std::fs::symlink_metadata(self.root) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(io::Error::other("not a directory")),
            Err(err) => Err(err),
        }
    }

    fn walk_with(
        &self,
        published: Option<&Path>,
    ) -> (
        Result<WalkResult, WalkError>,
        Option<Result<WalkResult, WalkError>>,
    ) {
        // One shared queue for both trees (see `walk`): the walks overlap.
        let mut roots: Vec<&Path> = vec![self.root];
        roots.extend(published);
        let mut walks = walk_trees(&roots, false).into_iter();
        let src = walks.next().expect("one result per root");
        (src, walks.next())
    }

    fn hash(&self, rel: &[u8]) -> io::Result<blake3::Hash> {
        copy::hash_file(&abs(self.root, rel))
    }

    fn copy_file(
        &self,
        rel: &[u8],
        dst: &Path,
        mode: u32,
        blocks: Option<usize>,
        check: bool,
    ) -> Result<Written, CopyError> {
        copy::copy_file(&abs(self.root, rel), dst, mode, blocks, check)
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
        copy::delta_file(&abs(self.root, rel), dst, mode, block, old, check)
    }
}
