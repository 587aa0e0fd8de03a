//! The change journal of an active share's tree: an append-only file of the relative paths
//! changed through the data plane, which lets a sync of a secondary look at exactly those
//! paths instead of walking the tree ([`crate::ReplicaDir::sync_changes_from`]).
//!
//! Format: a header (`SHOALJN1` and a random 16-byte journal id), then records: a tag byte
//! (`1` a changed path, `2` a restart), the path length (u32 LE), the path, and a checksum
//! (the first 4 bytes of BLAKE3 over tag, length and path). A torn last record, which a crash
//! in mid-append leaves, fails its checksum and is cut off when the journal is next opened.
//!
//! How a reader uses it: a [`Cursor`] is a position in one journal (its id and an offset).
//! A secondary keeps the cursor of the last sync it published; the next sync takes the
//! current position first, reads the paths recorded since its cursor, syncs them, and keeps
//! the position it took. Paths are recorded after the change is made and before the client
//! is answered, so a change whose record lies before that position was complete before the
//! sync started; a change recorded later is looked at again by the next sync.
//!
//! What it does not promise, and what covers it: records are written with `write(2)` and
//! never fsynced, and a change the process makes but dies before recording leaves no record.
//! A record that cannot be written (a full disk) breaks the journal: it serves no cursor
//! until it is reset. So every [`ChangeJournal::open`] (a process start) appends a restart record, and a cursor
//! before a restart is not served: the reader walks the tree once instead. A reset (a new
//! journal id) does the same; the journal resets itself when it outgrows its size limit.
//! Changes made behind the data plane's back are never in the journal: the periodic full
//! verification of the secondaries finds them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MAGIC: &[u8; 8] = b"SHOALJN1";
const HEADER_LEN: u64 = 8 + 16;
const TAG_PATH: u8 = 1;
const TAG_RESTART: u8 = 2;
/// Longest path recorded; longer ones (impossible on Linux, PATH_MAX is 4096) are refused.
const MAX_PATH: usize = 64 * 1024;

/// Size at which a journal starts over (its readers then walk once).
pub const JOURNAL_MAX_BYTES: u64 = 64 << 20;

/// A position in one journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Id of the journal (a new one at every reset).
    pub journal: u128,
    /// Byte offset in it.
    pub offset: u64,
}

/// What the journal holds since a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// The paths changed since the cursor (in record order, duplicates possible).
    Changed(Vec<Vec<u8>>),
    /// The cursor is not covered (another journal, a restart or a reset since): walk.
    Unknown,
}

/// One share's journal file.
#[derive(Debug)]
pub struct ChangeJournal {
    path: PathBuf,
    max_bytes: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    id: u128,
    len: u64,
    /// The path of the last record, so a stream of writes to one file records it once.
    last: Vec<u8>,
    /// A record could not be written: nothing since then can be vouched for until a reset.
    broken: bool,
}

fn checksum(tag: u8, path: &[u8]) -> [u8; 4] {
    let mut h = blake3::Hasher::new();
    h.update(&[tag]);
    h.update(&(path.len() as u32).to_le_bytes());
    h.update(path);
    let mut out = [0u8; 4];
    out.copy_from_slice(&h.finalize().as_bytes()[..4]);
    out
}

fn encode(tag: u8, path: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    out.extend_from_slice(&(path.len() as u32).to_le_bytes());
    out.extend_from_slice(path);
    out.extend_from_slice(&checksum(tag, path));
}

/// Parses records from `data` (which starts at a record boundary). Returns the records and
/// the length of the valid prefix.
fn decode(data: &[u8]) -> (Vec<(u8, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while data.len() - at >= 9 {
        let tag = data[at];
        let len = u32::from_le_bytes(data[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
        if !matches!(tag, TAG_PATH | TAG_RESTART) || len > MAX_PATH || data.len() - at < 9 + len {
            break;
        }
        let path = &data[at + 5..at + 5 + len];
        if data[at + 5 + len..at + 9 + len] != checksum(tag, path) {
            break;
        }
        out.push((tag, path));
        at += 9 + len;
    }
    (out, at)
}

/// A random id (a v4 UUID's bits).
fn new_id() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

impl ChangeJournal {
    /// Opens (creating or starting over when unreadable) the journal at `path` and records a
    /// restart: cursors from before it are not served.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with_limit(path, JOURNAL_MAX_BYTES)
    }

    /// [`Self::open`] with another size limit (tests).
    pub fn open_with_limit(path: &Path, max_bytes: u64) -> io::Result<Self> {
        let inner = match Self::load(path)? {
            Some(inner) => inner,
            None => Self::create(path)?,
        };
        let journal = Self {
            path: path.to_path_buf(),
            max_bytes,
            inner: Mutex::new(inner),
        };
        journal.append(TAG_RESTART, b"")?;
        Ok(journal)
    }

    /// An existing journal with its torn tail cut off; `None` when there is none or its
    /// header is not a journal's.
    fn load(path: &Path) -> io::Result<Option<Inner>> {
        let mut file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        if data.len() < HEADER_LEN as usize || &data[..8] != MAGIC {
            return Ok(None);
        }
        let id = u128::from_le_bytes(data[8..24].try_into().expect("16 bytes"));
        let (_, valid) = decode(&data[HEADER_LEN as usize..]);
        let len = HEADER_LEN + valid as u64;
        if len < data.len() as u64 {
            file.set_len(len)?;
        }
        file.seek(SeekFrom::Start(len))?;
        Ok(Some(Inner {
            file,
            id,
            len,
            last: Vec::new(),
            broken: false,
        }))
    }

    /// A fresh, empty journal with a new id, put in place with one rename.
    fn create(path: &Path) -> io::Result<Inner> {
        let id = new_id();
        let tmp = path.with_extension("journal-tmp");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&id.to_le_bytes());
        file.write_all(&header)?;
        fs::rename(&tmp, path)?;
        Ok(Inner {
            file,
            id,
            len: HEADER_LEN,
            last: Vec::new(),
            broken: false,
        })
    }

    fn append(&self, tag: u8, path: &[u8]) -> io::Result<()> {
        if path.len() > MAX_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path too long for the change journal",
            ));
        }
        let mut inner = self.inner.lock().expect("journal lock");
        if tag == TAG_PATH && inner.last == path {
            return Ok(());
        }
        if inner.len >= self.max_bytes {
            *inner = Self::create(&self.path)?;
        }
        let mut record = Vec::with_capacity(9 + path.len());
        encode(tag, path, &mut record);
        if let Err(err) = inner.file.write_all(&record) {
            inner.broken = true;
            return Err(err);
        }
        inner.len += record.len() as u64;
        inner.last = if tag == TAG_PATH {
            path.to_vec()
        } else {
            Vec::new()
        };
        Ok(())
    }

    /// Records that `path` (relative to the share's root) changed. Called after the change
    /// and before it is acknowledged.
    pub fn record(&self, path: &[u8]) -> io::Result<()> {
        self.append(TAG_PATH, path)
    }

    /// The position after the last record.
    pub fn position(&self) -> Cursor {
        let inner = self.inner.lock().expect("journal lock");
        Cursor {
            journal: inner.id,
            offset: inner.len,
        }
    }

    /// The paths recorded since `cursor`, or [`Since::Unknown`] when the journal cannot say.
    pub fn since(&self, cursor: Cursor) -> io::Result<Since> {
        let (id, len, mut file) = {
            let inner = self.inner.lock().expect("journal lock");
            if inner.broken {
                return Ok(Since::Unknown);
            }
            (inner.id, inner.len, inner.file.try_clone()?)
        };
        if cursor.journal != id || cursor.offset < HEADER_LEN || cursor.offset > len {
            return Ok(Since::Unknown);
        }
        let mut data = vec![0u8; (len - cursor.offset) as usize];
        read_exact_at(&mut file, &mut data, cursor.offset)?;
        let (records, valid) = decode(&data);
        if valid != data.len() {
            // The cursor does not fall on a record boundary: not one this journal gave.
            return Ok(Since::Unknown);
        }
        let mut paths = Vec::with_capacity(records.len());
        for (tag, path) in records {
            if tag == TAG_RESTART {
                return Ok(Since::Unknown);
            }
            paths.push(path.to_vec());
        }
        Ok(Since::Changed(paths))
    }

    /// Starts the journal over (a new id): every reader walks once. For a tree replaced
    /// under the data plane (a revert to a snapshot).
    pub fn reset(&self) -> io::Result<()> {
        let mut inner = self.inner.lock().expect("journal lock");
        *inner = Self::create(&self.path)?;
        Ok(())
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_exact_at(file: &mut File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(since: Since) -> Vec<String> {
        match since {
            Since::Changed(paths) => paths
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect(),
            Since::Unknown => panic!("the journal cannot say"),
        }
    }

    #[test]
    fn records_since_a_cursor_and_collapses_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.journal");
        let j = ChangeJournal::open(&path).unwrap();
        let start = j.position();
        assert_eq!(changed(j.since(start).unwrap()), Vec::<String>::new());
        j.record(b"a/b").unwrap();
        j.record(b"a/b").unwrap();
        j.record(b"c").unwrap();
        let mid = j.position();
        j.record(b"a/b").unwrap();
        assert_eq!(changed(j.since(start).unwrap()), ["a/b", "c", "a/b"]);
        assert_eq!(changed(j.since(mid).unwrap()), ["a/b"]);
        // A cursor of another journal, or inside a record, is not served.
        let foreign = Cursor {
            journal: start.journal ^ 1,
            offset: start.offset,
        };
        assert_eq!(j.since(foreign).unwrap(), Since::Unknown);
        let inside = Cursor {
            offset: start.offset + 3,
            ..start
        };
        assert_eq!(j.since(inside).unwrap(), Since::Unknown);
    }

    #[test]
    fn a_restart_cuts_a_torn_tail_and_invalidates_older_cursors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.journal");
        let j = ChangeJournal::open(&path).unwrap();
        let before = j.position();
        j.record(b"kept").unwrap();
        let after = j.position();
        drop(j);
        // A crash in mid-append: half a record at the end.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[TAG_PATH, 9, 0, 0, 0, b'x']).unwrap();
        drop(f);
        let j = ChangeJournal::open(&path).unwrap();
        assert_eq!(j.position().journal, before.journal, "the same journal");
        assert_eq!(j.since(before).unwrap(), Since::Unknown, "a restart since");
        assert_eq!(j.since(after).unwrap(), Since::Unknown, "a restart since");
        let now = j.position();
        j.record(b"new").unwrap();
        assert_eq!(changed(j.since(now).unwrap()), ["new"]);
        // The torn bytes are gone: header, restart, "kept", restart, "new".
        let len = fs::metadata(&path).unwrap().len();
        assert_eq!(len, HEADER_LEN + 9 + (9 + 4) + 9 + (9 + 3));
    }

    #[test]
    fn outgrowing_the_limit_or_a_reset_starts_a_new_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.journal");
        let j = ChangeJournal::open_with_limit(&path, 200).unwrap();
        let start = j.position();
        for i in 0..20 {
            j.record(format!("file-{i}").as_bytes()).unwrap();
        }
        assert_ne!(j.position().journal, start.journal);
        assert_eq!(j.since(start).unwrap(), Since::Unknown);
        let pos = j.position();
        j.reset().unwrap();
        assert_eq!(j.since(pos).unwrap(), Since::Unknown);
        // A foreign file in its place is replaced, not trusted.
        fs::write(&path, b"not a journal at all").unwrap();
        let j = ChangeJournal::open(&path).unwrap();
        let p = j.position();
        j.record(b"x").unwrap();
        assert_eq!(changed(j.since(p).unwrap()), ["x"]);
    }
}
